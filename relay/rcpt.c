/*
 * rcpt.c - the RCPT decision (see rcpt.h).
 *
 * SECURITY: rcpt comes off the wire, already parsed by smtpd_parse_path
 * (source routes refused there). A downstream might still act on '%',
 * '!' or ':' in a local part, or on a quoted one, so those are refused
 * here before any rule is asked.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rcpt.h"

bool
rcpt_check(const struct relay_config *cfg, bool loopback, const char *sender,
    const char *rcpt, int64_t now, char *reply, size_t replylen)
{
	const char *at = strrchr(rcpt, '@');
	const struct rules_list *l;
	const char *domain;
	struct rules_match m;
	size_t i, dl;

	if (at == NULL || at == rcpt || at[1] == '\0') {
		snprintf(reply, replylen, "550 5.1.3 bad recipient address");
		return false;
	}
	domain = at + 1;
	dl = strlen(domain);
	for (i = 0; rcpt + i < at; i++)
		if (strchr("%!@\":", rcpt[i]) != NULL) {
			snprintf(reply, replylen, "550 5.7.1 relaying denied");
			return false;
		}
	if (domain[dl - 1] == '.' || domain[0] == '[') {
		snprintf(reply, replylen, "550 5.7.1 relaying denied");
		return false;
	}
	rules_match(cfg->rules, rcpt, now, &m);
	switch (m.kind) {
	case RULE_LIST:
		l = &cfg->rules->lists[m.index];
		if (rules_may_post(l, sender))
			return true;
		if (sender == NULL || sender[0] == '\0')
			snprintf(reply, replylen, "550 5.7.1 %s takes no "
			    "bounces (null sender)", l->addr);
		else
			snprintf(reply, replylen, "550 5.7.1 %s accepts posts "
			    "from its members only", l->addr);
		return false;
	case RULE_FORWARD:
	case RULE_SRS:
	case RULE_LIST_BOUNCE:	/* bounces come from anyone, <> too */
		return true;
	case RULE_SRS_BAD:
		snprintf(reply, replylen, "550 5.1.1 no such address: %s",
		    m.why);
		return false;
	case RULE_NONE:
		break;
	}
	if (cfg->loopback_any_rcpt && loopback)
		return true;
	for (i = 0; i < cfg->ndomains; i++)
		if (strcasecmp(cfg->domains[i].name, domain) == 0)
			return true;
	snprintf(reply, replylen, "550 5.7.1 relaying denied");
	return false;
}
