/*
 * rules.h - the recipients a rule claims and the changes it asks for:
 * mailing lists ([list NAME@DOMAIN]), forwarding aliases ([forward
 * ADDR]) and the SRS reverse path for bounces ([srs]). Rules are data
 * from the config file (relay/config.c fills them); this module answers
 * "who is this recipient?" and applies a list's changes to a message. It
 * does no I/O.
 *
 * A rule set is shared, read-only, between the event loop (RCPT checks)
 * and the worker threads (the pipeline), and replaced as a whole on
 * SIGHUP: it is reference counted.
 */
#ifndef ARCRELAY_RULES_H
#define ARCRELAY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arc.h"
#include "dkim.h"

#define RULES_ADDR_MAX	512

enum rules_from {
	RULES_FROM_DMARC = 0,	/* rewrite when the author domain's DMARC
				 * policy is quarantine or reject */
	RULES_FROM_ALWAYS,
	RULES_FROM_NEVER,
};

enum rules_reply_to {
	RULES_REPLY_AUTHOR = 0,	/* the original From (when rewritten) */
	RULES_REPLY_LIST,
	RULES_REPLY_NONE,
};

struct rules_list {
	char *addr;		/* NAME@DOMAIN, as configured (domain lowercase) */
	char *name;		/* display name: `name`, else NAME */
	char **members;		/* distinct, in order of first mention */
	size_t nmembers;
	char *members_file;	/* file:PATH it came from, or NULL */
	bool posters_any;	/* posters = any (default: members) */
	char *subject_tag;	/* or NULL */
	char *footer;		/* text, or NULL */
	enum rules_from from_rewrite;
	bool dmarc_relay;	/* dmarc_reject = relay: relay posts that fail
				 * a DMARC reject policy (default: refuse) */
	enum rules_reply_to reply_to;
	char *list_id;		/* or NULL: derived from addr */
	char *unsub_mailto;	/* address (no "mailto:"), or NULL */
	char *unsub_https;	/* https URI, or NULL */
	char *bounces;		/* NAME-bounces@DOMAIN */
	bool verp;		/* per-member senders (verp = yes, default) */
	bool bounce_discard;	/* bounces = discard: logged, not kept */
	char *bounce_maildir;	/* bounces = maildir:PATH; relay/config.c
				 * fills SPOOL/bounces when not given */
};

struct rules_forward {
	char *addr;
	char **to;
	size_t nto;
	bool srs;
};

struct rules_srs {
	char *domain;		/* NULL: no [srs] section */
	char **secrets;		/* the first signs, all verify */
	size_t nsecrets;
	unsigned max_age_days;
};

struct rules {
	struct rules_list *lists;
	size_t nlists;
	struct rules_forward *forwards;
	size_t nforwards;
	struct rules_srs srs;
	char **trusted_arc;	/* [policy] trusted_arc: sealer domains, lower */
	size_t ntrusted_arc;
	int refs;		/* rules_ref / rules_unref */
};

enum rules_kind {
	RULE_NONE = 0,		/* no rule claims it (relay domains decide) */
	RULE_LIST,
	RULE_FORWARD,
	RULE_SRS,		/* a bounce to one of our SRS addresses */
	RULE_SRS_BAD,		/* looks like ours, but forged/expired/bad */
	RULE_LIST_BOUNCE,	/* a list's NAME-bounces[+...] address */
};

struct rules_match {
	enum rules_kind kind;
	size_t index;		/* into lists[] or forwards[] */
	char addr[RULES_ADDR_MAX];	/* RULE_SRS: where the bounce goes;
					 * RULE_LIST_BOUNCE: the address its
					 * VERP part names, "" when none */
	char why[160];		/* RULE_SRS_BAD: for the 550 */
};

struct rules *rules_new(void);
struct rules *rules_ref(struct rules *r);
void rules_unref(struct rules *r);

/* rules_addr_eq - addresses equal for rule purposes: case-insensitive
 * (RFC 5321 §2.4 lets a host treat local parts so; people expect it). */
bool rules_addr_eq(const char *a, const char *b);

/* rules_match - which rule claims rcpt (an address off the wire). */
void rules_match(const struct rules *r, const char *rcpt, int64_t now,
    struct rules_match *m);

/* rules_is_member - is addr one of the list's members? */
bool rules_is_member(const struct rules_list *l, const char *addr);

/* rules_may_post - may this envelope sender post to the list? A null
 * sender never may (bounces are not distributed). */
bool rules_may_post(const struct rules_list *l, const char *sender);

/*
 * VERP (variable envelope return paths): each member's copy of a post
 * goes out from NAME-bounces+LOCAL=MDOMAIN@DOMAIN for the member
 * LOCAL@MDOMAIN, so a bounce names the member by the address it comes
 * back to. In LOCAL and MDOMAIN every octet but a letter, a digit, '.',
 * '-' and '_' is written as '+' and two uppercase hex digits ("a+b" is
 * "a+2Bb", "x=y" is "x+3Dy"): the one '=' left splits the two, no
 * character a relay might route on ('%', '!', ':') appears, and the
 * encoding reverses exactly. When the local part would pass RFC 5321's
 * 64 octets the copy goes from NAME-bounces@DOMAIN instead.
 */
#define RULES_LOCAL_MAX	64

/* rules_list_sender - the envelope sender of member's copy of a post to
 * l: the VERP address when l->verp and it fits, else l->bounces. */
void rules_list_sender(const struct rules_list *l, const char *member,
    char *out, size_t outlen);

/* rules_is_list_bounce - is rcpt l's NAME-bounces@DOMAIN, or one of its
 * NAME-bounces+ANYTHING@DOMAIN (any case)? rules_match gives such a
 * recipient RULE_LIST_BOUNCE unless a list or forward has the very
 * address, which relay/config.c refuses. */
bool rules_is_list_bounce(const struct rules_list *l, const char *rcpt);

/* rules_verp_member - the member the VERP address rcpt (one of l's
 * NAME-bounces+...@DOMAIN) names, decoded into out; false when rcpt is
 * no such address or does not decode. Membership is not checked. */
bool rules_verp_member(const struct rules_list *l, const char *rcpt,
    char *out, size_t outlen);

/* rules_forward_sender - the envelope sender for a forward: SRS-rewritten
 * when the forward asks for it and [srs] exists; the null sender stays
 * null. False (why) when it cannot be rewritten. */
bool rules_forward_sender(const struct rules *r,
    const struct rules_forward *f, const char *sender, int64_t now,
    char *out, size_t outlen, char *why, size_t whylen);

/* rules_add_member - append addr unless present; false on no memory. */
bool rules_add_member(struct rules_list *l, const char *addr);

/*
 * rules_list_apply - a list post: the footer (MIME-aware), then the
 * header changes (subject tag, From rewriting when rewrite_from, Reply-To,
 * List-* fields, Precedence). The whole new message is appended to out.
 */
bool rules_list_apply(const struct rules_list *l, bool rewrite_from,
    const char *msg, size_t len, struct dkim_buf *out, char *why,
    size_t whylen);

/* rules_list_loop - does msg already carry this list's List-Id? */
bool rules_list_loop(const struct rules_list *l, const char *msg,
    size_t len);

/*
 * rules_arc_vouches - may a DMARC failure here be overridden by the ARC
 * chain (RFC 8617 §7.2, a receiver's local policy)? True when the chain
 * validated (cv=pass), its newest seal's d= (arc->sealer) is among
 * r->trusted_arc, and the ARC-Authentication-Results of that instance
 * records dmarc=pass with header.from equal to author_domain. The
 * sealer's domain goes to sealer (when true).
 */
bool rules_arc_vouches(const struct rules *r, const struct dkim_msg *m,
    const struct arc_result *arc, const char *author_domain,
    char *sealer, size_t sealerlen);

#endif
