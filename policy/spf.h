/*
 * spf.h - Sender Policy Framework (RFC 7208): may this client IP use this
 * HELO name or MAIL FROM domain?
 *
 * check_host() is evaluated by policy/spf.c itself, with every DNS query
 * going through the pdns.h interface (see the file header of spf.c for why
 * not libspf2). Nothing here resolves, prints or keeps state between
 * calls; one call is one evaluation with its own §4.6.4 budget.
 *
 * Untrusted input: the HELO argument and the reverse-path come from the
 * SMTP peer and are passed as (ptr, len); the records come from DNS.
 */
#ifndef ARCRELAY_SPF_H
#define ARCRELAY_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>		/* AF_INET, AF_INET6 */

#include "dkim.h"
#include "pdns.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The results of RFC 7208 §2.6, spelled by spf_res_str() as RFC 8601
 * §2.7.2 does ("none", "neutral", "pass", ...). */
enum spf_res {
	SPF_NONE = 0,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

/* Which identity is checked (RFC 7208 §2.3, §2.4). */
enum spf_identity {
	SPF_ID_MAILFROM = 0,	/* A-R property smtp.mailfrom */
	SPF_ID_HELO,		/* A-R property smtp.helo */
};

/* RFC 7208 §4.6.4 processing limits. */
#define SPF_MAX_DNS_TERMS	10	/* include a mx ptr exists redirect */
#define SPF_MAX_VOID_LOOKUPS	2	/* NXDOMAIN or empty answers */
#define SPF_MAX_MX_NAMES	10	/* more MX records: permerror */
#define SPF_MAX_PTR_NAMES	10	/* more PTR records: rest ignored */

/* Hard caps of this implementation. */
#define SPF_SENDER_MAX	1024	/* longest HELO / reverse-path evaluated */
#define SPF_DOMAIN_MAX	254	/* a domain name (253 octets) and its NUL */
#define SPF_MECH_MAX	256	/* spf_result.mechanism, cut with "..." */
#define SPF_REASON_MAX	384	/* spf_result.reason, cut with "..." */
#define SPF_EXP_MAX	512	/* spf_result.explanation (§6.2 MAY limit) */

/*
 * spf_request - one SMTP transaction, as the receiver saw it.
 *
 * The client address is either text in (ip, ip_len) ("192.0.2.1",
 * "2001:db8::1", "::ffff:192.0.2.1") or, when ip is NULL, family
 * (AF_INET / AF_INET6) and addr (4 or 16 bytes). An IPv4-mapped IPv6
 * address is evaluated as the IPv4 address it carries (RFC 7208 §5).
 */
struct spf_request {
	const char *ip;			/* not owned; NULL: use family/addr */
	size_t ip_len;
	int family;
	unsigned char addr[16];

	const char *helo;		/* EHLO/HELO argument, not owned */
	size_t helo_len;
	const char *mail_from;		/* reverse-path without <>; len 0:
					 * the null reverse-path */
	size_t mail_from_len;

	enum spf_identity identity;	/* what spf_check() checks */
	const char *receiver;		/* %{r}, NUL-terminated; NULL:
					 * "unknown" */
	long long now;			/* %{t}, seconds since the epoch;
					 * 0: the current time */
};

/*
 * spf_result - the outcome of one check_host() evaluation. All strings
 * are NUL-terminated and bounded. sender and explanation carry bytes
 * chosen by the peer or a DNS publisher: escape them before logging.
 */
struct spf_result {
	enum spf_res result;
	enum spf_identity identity;
	char sender[SPF_SENDER_MAX + 16]; /* <sender> as checked, local@domain
					 * ("postmaster@" + HELO for the HELO
					 * identity and the null sender) */
	char domain[SPF_DOMAIN_MAX];	/* the <domain> checked first */
	char mechanism[SPF_MECH_MAX];	/* the term that decided, as written
					 * ("ip4:192.0.2.0/24", "-all",
					 * "include:_spf.example.net"), or
					 * "default (no match)"; "" for none
					 * and record-level errors */
	char reason[SPF_REASON_MAX];	/* for people: "sender IP 192.0.2.1
					 * matched ip4:192.0.2.0/24 in
					 * example.com" */
	char explanation[SPF_EXP_MAX];	/* exp= text when the result is fail
					 * and the record has one (§6.2) */
	unsigned dns_terms;		/* DNS-querying terms evaluated */
	unsigned void_lookups;		/* of which answers were void */
};

/* spf_res_str - the RFC 8601 name of a result ("softfail"). */
const char *spf_res_str(enum spf_res r);

/* spf_identity_str - "mailfrom" or "helo" (RFC 7208 §9.1 identity). */
const char *spf_identity_str(enum spf_identity id);

/*
 * spf_check - evaluate check_host() for req->identity: for SPF_ID_HELO the
 * <sender> is postmaster@HELO (§2.3, §4.3); for SPF_ID_MAILFROM it is the
 * reverse-path, or postmaster@HELO when that is null (§2.4). out is always
 * filled. Returns DKIM_OK when an SPF result was reached (any result,
 * including temperror/permerror); DKIM_E_ARG for a NULL argument or a
 * client address that does not parse (out says so, result temperror);
 * DKIM_E_NOMEM when memory ran out (result temperror).
 */
enum dkim_status spf_check(const struct pdns *dns,
    const struct spf_request *req, struct spf_result *out);

/*
 * spf_check_both - what a receiver does (§2.3, §2.4): the HELO identity
 * first, then the MAIL FROM identity; both are always evaluated and
 * reported (each with its own §4.6.4 budget). A HELO that is not a
 * multi-label domain name gives helo->result none. Returns the worse of
 * the two statuses.
 */
enum dkim_status spf_check_both(const struct pdns *dns,
    const struct spf_request *req, struct spf_result *helo,
    struct spf_result *mailfrom);

#ifdef __cplusplus
}
#endif

#endif
