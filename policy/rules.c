/*
 * rules.c - which rule claims a recipient, and a list's changes (see
 * rules.h).
 *
 * SECURITY: recipients and senders come off the wire; they are compared,
 * never interpreted, except SRS addresses, which srs.c parses under its
 * own bounds and checks by HMAC before anything trusts them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authres.h"
#include "footer.h"
#include "listhdr.h"
#include "rules.h"
#include "srs.h"

struct rules *
rules_new(void)
{
	struct rules *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->refs = 1;
	return r;
}

struct rules *
rules_ref(struct rules *r)
{
	if (r != NULL)
		__atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
	return r;
}

static void
free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
rules_unref(struct rules *r)
{
	size_t i;

	if (r == NULL || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (i = 0; i < r->nlists; i++) {
		struct rules_list *l = &r->lists[i];

		free(l->addr);
		free(l->name);
		free_strv(l->members, l->nmembers);
		free(l->members_file);
		free(l->subject_tag);
		free(l->footer);
		free(l->list_id);
		free(l->unsub_mailto);
		free(l->unsub_https);
		free(l->bounces);
		free(l->bounce_maildir);
	}
	free(r->lists);
	for (i = 0; i < r->nforwards; i++) {
		free(r->forwards[i].addr);
		free_strv(r->forwards[i].to, r->forwards[i].nto);
	}
	free(r->forwards);
	free(r->srs.domain);
	free_strv(r->srs.secrets, r->srs.nsecrets);
	free_strv(r->trusted_arc, r->ntrusted_arc);
	free(r);
}

bool
rules_addr_eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

bool
rules_is_member(const struct rules_list *l, const char *addr)
{
	size_t i;

	for (i = 0; i < l->nmembers; i++)
		if (rules_addr_eq(l->members[i], addr))
			return true;
	return false;
}

bool
rules_add_member(struct rules_list *l, const char *addr)
{
	char **nv;

	if (rules_is_member(l, addr))
		return true;
	if ((nv = realloc(l->members, (l->nmembers + 1) * sizeof(*nv))) ==
	    NULL)
		return false;
	l->members = nv;
	if ((nv[l->nmembers] = strdup(addr)) == NULL)
		return false;
	l->nmembers++;
	return true;
}

bool
rules_may_post(const struct rules_list *l, const char *sender)
{
	if (sender == NULL || sender[0] == '\0')
		return false;
	return l->posters_any || rules_is_member(l, sender);
}

static void
srs_cfg(const struct rules *r, struct srs_config *c)
{
	memset(c, 0, sizeof(*c));
	c->domain = r->srs.domain;
	c->secrets = (const char *const *)r->srs.secrets;
	c->nsecrets = r->srs.nsecrets;
	c->max_age_days = r->srs.max_age_days;
}

/* verp_plain - an octet VERP writes as it is. */
static bool
verp_plain(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* verp_enc - (s, n) VERP-encoded onto out at *o; false past outlen. */
static bool
verp_enc(const char *s, size_t n, char *out, size_t outlen, size_t *o)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (*o + (verp_plain((char)c) ? 1 : 3) >= outlen)
			return false;
		if (verp_plain((char)c))
			out[(*o)++] = (char)c;
		else {
			out[(*o)++] = '+';
			out[(*o)++] = hex[c >> 4];
			out[(*o)++] = hex[c & 15];
		}
	}
	out[*o] = '\0';
	return true;
}

/* bounces_local - the length of NAME-bounces, l->bounces' local part. */
static size_t
bounces_local(const struct rules_list *l)
{
	return (size_t)(strrchr(l->bounces, '@') - l->bounces);
}

void
rules_list_sender(const struct rules_list *l, const char *member,
    char *out, size_t outlen)
{
	const char *at = strrchr(member, '@');
	size_t bl = bounces_local(l), o = bl + 1;
	char buf[RULES_LOCAL_MAX + 1];

	/* buf holds the local part only: a longer one does not fit. */
	if (l->verp && at != NULL && bl + 1 < sizeof(buf)) {
		memcpy(buf, l->bounces, bl);
		buf[bl] = '+';
		if (verp_enc(member, (size_t)(at - member), buf, sizeof(buf),
		    &o) && o + 1 < sizeof(buf)) {
			buf[o++] = '=';
			if (verp_enc(at + 1, strlen(at + 1), buf, sizeof(buf),
			    &o) && snprintf(out, outlen, "%s%s", buf,
			    l->bounces + bl) < (int)outlen)
				return;
		}
	}
	snprintf(out, outlen, "%s", l->bounces);
}

/* verp_dec - (s, n) decoded onto out at *o; false on a bad escape, an
 * octet VERP would have escaped, or no room. */
static bool
verp_dec(const char *s, size_t n, char *out, size_t outlen, size_t *o)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '+') {
			int hi, lo;

			if (i + 2 >= n)
				return false;
			if ((hi = dkim_hex_digit(s[i + 1])) < 0 ||
			    (lo = dkim_hex_digit(s[i + 2])) < 0)
				return false;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (!verp_plain(c))
			return false;
		if (*o + 1 >= outlen || c == '\0')
			return false;
		out[(*o)++] = c;
	}
	out[*o] = '\0';
	return true;
}

bool
rules_verp_member(const struct rules_list *l, const char *rcpt, char *out,
    size_t outlen)
{
	const char *at = strrchr(rcpt, '@'), *v, *eq;
	size_t bl = bounces_local(l), o = 0;

	if (at == NULL || strcasecmp(at, l->bounces + bl) != 0 ||
	    (size_t)(at - rcpt) <= bl + 1 ||
	    strncasecmp(rcpt, l->bounces, bl) != 0 || rcpt[bl] != '+')
		return false;
	v = rcpt + bl + 1;
	if ((eq = memchr(v, '=', (size_t)(at - v))) == NULL || eq == v ||
	    eq + 1 == at || memchr(eq + 1, '=', (size_t)(at - eq - 1)))
		return false;
	if (!verp_dec(v, (size_t)(eq - v), out, outlen, &o) ||
	    o + 1 >= outlen)
		return false;
	out[o++] = '@';
	return verp_dec(eq + 1, (size_t)(at - eq - 1), out, outlen, &o);
}

bool
rules_is_list_bounce(const struct rules_list *l, const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');
	size_t bl = bounces_local(l);

	if (rules_addr_eq(l->bounces, rcpt))
		return true;
	return at != NULL && (size_t)(at - rcpt) > bl + 1 &&
	    rcpt[bl] == '+' && strncasecmp(rcpt, l->bounces, bl) == 0 &&
	    strcasecmp(at, l->bounces + bl) == 0;
}

void
rules_match(const struct rules *r, const char *rcpt, int64_t now,
    struct rules_match *m)
{
	const char *at = strrchr(rcpt, '@');
	size_t i;

	memset(m, 0, sizeof(*m));
	if (r == NULL)
		return;
	for (i = 0; i < r->nlists; i++)
		if (rules_addr_eq(r->lists[i].addr, rcpt)) {
			m->kind = RULE_LIST;
			m->index = i;
			return;
		}
	for (i = 0; i < r->nforwards; i++)
		if (rules_addr_eq(r->forwards[i].addr, rcpt)) {
			m->kind = RULE_FORWARD;
			m->index = i;
			return;
		}
	for (i = 0; i < r->nlists; i++)
		if (rules_is_list_bounce(&r->lists[i], rcpt)) {
			m->kind = RULE_LIST_BOUNCE;
			m->index = i;
			if (!rules_verp_member(&r->lists[i], rcpt, m->addr,
			    sizeof(m->addr)))
				m->addr[0] = '\0';
			return;
		}
	if (r->srs.domain != NULL && at != NULL &&
	    strcasecmp(at + 1, r->srs.domain) == 0 && srs_is_srs(rcpt)) {
		struct srs_config c;
		enum srs_rc rc;

		srs_cfg(r, &c);
		rc = srs_reverse(&c, rcpt, now, m->addr, sizeof(m->addr),
		    m->why, sizeof(m->why));
		m->kind = rc == SRS_OK ? RULE_SRS : RULE_SRS_BAD;
		if (rc != SRS_OK && m->why[0] == '\0')
			snprintf(m->why, sizeof(m->why), "%s", srs_rc_str(rc));
	}
}

/* local_routes - a source-routing character ('%', '!', ':') in the local
 * part of addr. */
static bool
local_routes(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t n = at != NULL ? (size_t)(at - addr) : strlen(addr);

	return strcspn(addr, "%!:") < n;
}

bool
rules_forward_sender(const struct rules *r, const struct rules_forward *f,
    const char *sender, int64_t now, char *out, size_t outlen, char *why,
    size_t whylen)
{
	struct srs_config c;
	enum srs_rc rc;

	if (!f->srs || r->srs.domain == NULL || sender == NULL ||
	    sender[0] == '\0') {
		if (snprintf(out, outlen, "%s", sender ? sender : "") >=
		    (int)outlen) {
			snprintf(why, whylen, "sender address too long");
			return false;
		}
		return true;
	}
	srs_cfg(r, &c);
	/* The daemon refuses recipients with routing characters in the
	 * local part (relay/cli_serve.c rcpt_hook), so a bounce to an SRS
	 * address carrying one would be refused: such a sender goes on as
	 * it is, and its bounces go to it directly. */
	rc = local_routes(sender) ? SRS_BAD_INPUT :
	    srs_forward(&c, sender, now, out, outlen);
	if (rc == SRS_BAD_INPUT) {
		/* A sender SRS cannot carry (a quoted local part, junk) goes
		 * on as it is: SPF may fail downstream, the mail still
		 * flows. */
		snprintf(out, outlen, "%s", sender);
		return strlen(sender) < outlen;
	}
	if (rc != SRS_OK) {
		snprintf(why, whylen, "SRS rewriting failed: %s",
		    srs_rc_str(rc));
		return false;
	}
	return true;
}

static void
hdr_opts(const struct rules_list *l, bool rewrite_from,
    struct listhdr_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->list_addr = l->addr;
	o->list_name = l->name;
	o->list_id = l->list_id;
	o->subject_tag = l->subject_tag;
	o->rewrite_from = rewrite_from;
	o->reply_to = l->reply_to == RULES_REPLY_LIST ? LISTHDR_REPLY_LIST :
	    l->reply_to == RULES_REPLY_NONE ? LISTHDR_REPLY_NONE :
	    LISTHDR_REPLY_AUTHOR;
	o->unsub_mailto = l->unsub_mailto;
	o->unsub_https = l->unsub_https;
}

bool
rules_list_loop(const struct rules_list *l, const char *msg, size_t len)
{
	struct listhdr_opts o;

	hdr_opts(l, false, &o);
	return listhdr_has_list_id(&o, msg, len);
}

bool
rules_list_apply(const struct rules_list *l, bool rewrite_from,
    const char *msg, size_t len, struct dkim_buf *out, char *why,
    size_t whylen)
{
	struct listhdr_opts o;
	struct dkim_buf withfooter;
	enum footer_how how;
	bool ok;

	hdr_opts(l, rewrite_from, &o);
	if (l->footer == NULL)
		return listhdr_apply(&o, msg, len, out, why, whylen);
	dkim_buf_init(&withfooter, out->max);
	ok = footer_apply(msg, len, l->footer, &withfooter, &how, why,
	    whylen) && listhdr_apply(&o, withfooter.p, withfooter.len, out,
	    why, whylen);
	dkim_buf_free(&withfooter);
	return ok;
}

/* aar_dmarc_pass - does the AAR of instance n say dmarc=pass for
 * author_domain? */
static bool
aar_dmarc_pass(const struct dkim_msg *m, unsigned n,
    const char *author_domain)
{
	char why[DKIM_WHY_MAX];
	size_t i, j;

	for (i = 0; i < m->nfields; i++) {
		const struct dkim_field *f = &m->fields[i];
		struct authres *ar;
		bool pass = false, mine;

		if (!dkim_field_is(f, "ARC-Authentication-Results") ||
		    authres_parse_aar(f->raw + f->value_off, f->raw_len -
		    f->value_off, &ar, why, sizeof(why)) != DKIM_OK)
			continue;
		mine = ar->instance == n;
		for (j = 0; mine && j < ar->n; j++) {
			const struct authres_result *res = &ar->r[j];
			const char *from = authres_prop_get(res, "header",
			    "from");

			if (strcmp(res->method, "dmarc") == 0 &&
			    strcmp(res->result, "pass") == 0 && from != NULL &&
			    strcasecmp(from, author_domain) == 0)
				pass = true;
		}
		authres_free(ar);
		if (mine)
			return pass;
	}
	return false;
}

bool
rules_arc_vouches(const struct rules *r, const struct dkim_msg *m,
    const struct arc_result *arc, const char *author_domain, char *sealer,
    size_t sealerlen)
{
	size_t i;

	if (r == NULL || arc->cv != DKIM_CV_PASS || author_domain == NULL ||
	    author_domain[0] == '\0')
		return false;
	for (i = 0; i < r->ntrusted_arc; i++)
		if (strcasecmp(r->trusted_arc[i], arc->sealer) == 0)
			break;
	if (i == r->ntrusted_arc || !aar_dmarc_pass(m, arc->instances,
	    author_domain))
		return false;
	snprintf(sealer, sealerlen, "%s", r->trusted_arc[i]);
	return true;
}
