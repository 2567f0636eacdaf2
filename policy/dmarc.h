/*
 * dmarc.h - DMARC evaluation: RFC 9989 (the default) and RFC 7489 (a
 * switch in the request).
 *
 * Given the From field value(s), the DKIM results and the SPF result of a
 * message, dmarc_evaluate finds the Author Domain, discovers the DMARC
 * Policy Record and the Organizational Domain (RFC 9989: the DNS Tree
 * Walk of §4.10; RFC 7489: the Public Suffix List, §3.2 and §6.6.3),
 * checks identifier alignment and says which policy applies and why.
 *
 * The library never resolves: every DNS question goes through the pdns
 * interface handed in. It never prints and never aborts on input. The only
 * I/O is dmarc_psl_load, which lets libpsl read a Public Suffix List file
 * once into a context the caller owns. Untrusted bytes (From values, d=
 * domains, SPF domains, TXT records) travel as (ptr, len).
 */
#ifndef ARCRELAY_DMARC_H
#define ARCRELAY_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim.h"
#include "pdns.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DMARC_DOMAIN_MAX	256	/* a DNS name (253) and a NUL, rounded */
#define DMARC_REASON_MAX	512
#define DMARC_MAX_DKIM		32	/* passing DKIM results considered */
#define DMARC_DEFAULT_MAX_QUERIES 64	/* DNS questions per evaluation */
#define DMARC_HARD_MAX_QUERIES	128	/* ceiling for max_queries */
#define DMARC_WALK_MAX		8	/* queries per Tree Walk, §4.10 */

/* Debian's copy of the Public Suffix List (package publicsuffix). */
#define DMARC_PSL_DEBIAN "/usr/share/publicsuffix/public_suffix_list.dat"

enum dmarc_mode {
	DMARC_MODE_RFC9989 = 0,	/* DNS Tree Walk, psd=, np=, t= */
	DMARC_MODE_RFC7489,	/* Public Suffix List, pct= */
};

enum dmarc_res {
	DMARC_RES_NONE = 0,	/* no policy record: DMARC does not apply */
	DMARC_RES_PASS,		/* an authenticated identifier aligned */
	DMARC_RES_FAIL,		/* a policy applies and nothing aligned */
	DMARC_RES_TEMPERROR,	/* a DNS answer needed did not come */
	DMARC_RES_PERMERROR,	/* not evaluable: From field(s), bad DNS */
};

enum dmarc_policy {
	DMARC_POLICY_ABSENT = 0,	/* no record, or tag not present */
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

/* Which tag of the record the policy came from. */
enum dmarc_policy_src {
	DMARC_SRC_NONE = 0,	/* no policy */
	DMARC_SRC_P,
	DMARC_SRC_SP,
	DMARC_SRC_NP,
	DMARC_SRC_DEFAULT,	/* p= missing or invalid (or sp=, np=), taken
				 * as p=none for a valid rua= (RFC 9989
				 * §4.10.1) */
};

enum dmarc_align { DMARC_ALIGN_RELAXED = 0, DMARC_ALIGN_STRICT };

enum dmarc_psd { DMARC_PSD_U = 0, DMARC_PSD_Y, DMARC_PSD_N };

/* The SPF result as the caller's SPF check produced it (RFC 7208 §2.6). */
enum dmarc_spf {
	DMARC_SPF_NONE = 0,
	DMARC_SPF_PASS,
	DMARC_SPF_FAIL,
	DMARC_SPF_SOFTFAIL,
	DMARC_SPF_NEUTRAL,
	DMARC_SPF_TEMPERROR,
	DMARC_SPF_PERMERROR,
};

/* Which identifier produced the pass. */
enum dmarc_ident { DMARC_IDENT_NONE = 0, DMARC_IDENT_DKIM, DMARC_IDENT_SPF };

/* -------------------------------------------------------- author domain */

/* Bytes of a From field value: everything after the ':', folding kept. */
struct dmarc_span {
	const char *p;
	size_t len;
};

enum dmarc_author_rc {
	DMARC_AUTHOR_OK = 0,		/* one field, one domain */
	DMARC_AUTHOR_NO_FROM,		/* no From field at all */
	DMARC_AUTHOR_MULTI_FROM,	/* more than one From field */
	DMARC_AUTHOR_NO_ADDRESS,	/* e.g. only an empty group */
	DMARC_AUTHOR_MULTI_ADDRESS,	/* mailboxes of several domains */
	DMARC_AUTHOR_SYNTAX,		/* not an RFC 5322 address list */
	DMARC_AUTHOR_BAD_DOMAIN,	/* address literal, not a DNS name */
};

struct dmarc_author {
	enum dmarc_author_rc rc;
	size_t fields;			/* From fields given */
	size_t addresses;		/* mailboxes found (all fields) */
	char domain[DMARC_DOMAIN_MAX];	/* rc OK: lowercase, A-labels */
	char why[DKIM_WHY_MAX];		/* rc not OK: what is wrong */
};

/*
 * dmarc_author_parse - the Author Domain (RFC 9989 §5.3.1, RFC 7489
 * §6.6.1) from the From field values, read by addr_parse (addr.h): RFC
 * 5322 §3.4 address lists with the obsolete forms of §4.4 (display names
 * with obs-phrase dots, comments, angle-addr with obs-route, groups, CFWS
 * between the parts of a domain). A group without its ';' is a syntax
 * error here; more than ADDR_MAILBOX_MAX mailboxes are several addresses;
 * a domain that is not a DNS name (a literal, too long, bad labels) is a
 * bad domain, not bad syntax. A domain in U-labels is
 * converted to A-labels (RFC 3492 Punycode; input is taken as already
 * NFC). Exactly one field with exactly one domain gives DMARC_AUTHOR_OK:
 * one address, or several whose domains normalize to the same name (RFC
 * 9989 §5.3.1 and RFC 7489 §6.6.1 count domains; addresses then says how
 * many). Anything else is reported as such and never guessed at.
 */
void dmarc_author_parse(const struct dmarc_span *from, size_t nfrom,
    struct dmarc_author *out);

/*
 * dmarc_from_values - collect the values of the From fields of a parsed
 * message into out (at most max). Returns how many From fields there are,
 * which can exceed max.
 */
size_t dmarc_from_values(const struct dkim_msg *msg, struct dmarc_span *out,
    size_t max);

/* dmarc_domain_normalize - lowercase, drop one final dot, U-labels to
 * A-labels, check label and name lengths and characters. */
bool dmarc_domain_normalize(const char *p, size_t len, char *out,
    size_t outlen);

/* ------------------------------------------------------- policy records */

struct dmarc_record {
	enum dmarc_policy p, sp, np;	/* ABSENT when the tag is missing */
	bool p_bad, sp_bad, np_bad;	/* tag present with a bad value */
	enum dmarc_align adkim, aspf;	/* default relaxed */
	enum dmarc_psd psd;		/* default u */
	bool testing;			/* t=y */
	unsigned pct;			/* RFC 7489: 0..100, default 100 */
	bool has_rua;			/* rua= present */
	bool rua_ok;			/* ... with a valid reporting URI */
	unsigned ignored;		/* tag-specs ignored (unknown, bad,
					 * repeated) */
};

/*
 * dmarc_record_parse - parse one TXT record (its strings already joined).
 * Returns false when it is not a DMARC record: it does not start with the
 * tag v=DMARC1 (RFC 9989 §4.7). Otherwise fills out; tag-specs that are
 * unknown or do not match their grammar are ignored (§4.8), the first of
 * a repeated tag wins. Tag names and keyword values are case-insensitive,
 * the value DMARC1 is not.
 */
bool dmarc_record_parse(const char *p, size_t len, struct dmarc_record *out);

/* ---------------------------------------------------- public suffix list */

/* A libpsl context, for RFC 7489 mode. */
struct dmarc_psl;

/* dmarc_psl_load - libpsl reads path (NULL: DMARC_PSL_DEBIAN) once. The
 * caller owns the result and shares it between threads read-only. */
struct dmarc_psl *dmarc_psl_load(const char *path, char *why, size_t whylen);
/* dmarc_psl_builtin - the list compiled into libpsl (may be older). */
struct dmarc_psl *dmarc_psl_builtin(char *why, size_t whylen);
void dmarc_psl_free(struct dmarc_psl *psl);

/* --------------------------------------------------------- evaluation */

struct dmarc_options {
	enum dmarc_mode mode;
	const struct dmarc_psl *psl;	/* RFC 7489 mode: required */
	/* RFC 7489 mode, pct=: the caller's uniformly random draw 0..99;
	 * the policy is applied when draw < pct (§6.3 pseudocode). */
	unsigned pct_draw;
	unsigned max_queries;		/* 0: DMARC_DEFAULT_MAX_QUERIES */
};

/* One DKIM signature's result; only passing ones count (§4.4.1). A
 * temporary failure (the key could not be fetched for now) of a d= that
 * would align makes a message that nothing else passes temperror, not
 * fail (RFC 7489 §6.6.2, RFC 9989 §5.3.6). */
struct dmarc_dkim {
	const char *domain;		/* d= as in the signature */
	size_t domain_len;
	bool pass;
	bool temperror;			/* not pass: DKIM temperror */
};

struct dmarc_request {
	const struct dmarc_span *from;	/* From field values, in order */
	size_t nfrom;
	const struct dmarc_dkim *dkim;
	size_t ndkim;
	enum dmarc_spf spf;
	/* The domain SPF evaluated: the MAIL FROM domain, or the HELO
	 * domain when the reverse-path was null (RFC 7208 §2.4). */
	const char *spf_domain;
	size_t spf_domain_len;
	struct dmarc_options opt;
};

struct dmarc_result {
	enum dmarc_res result;
	char reason[DMARC_REASON_MAX];	/* for a person: what and why */
	enum dmarc_mode mode;

	enum dmarc_author_rc author_rc;
	size_t from_fields, from_addresses;
	char author_domain[DMARC_DOMAIN_MAX];

	/* Where the applied record was found; "" when there is none. */
	char policy_domain[DMARC_DOMAIN_MAX];
	/* Organizational Domain of the author domain; "" when it was not
	 * needed (RFC 9989 §4.10.2 lists when) or cannot be had. */
	char org_domain[DMARC_DOMAIN_MAX];
	bool have_record;
	struct dmarc_record record;	/* the applied record */

	enum dmarc_policy policy;	/* the policy for the author domain */
	enum dmarc_policy_src policy_src;
	/* What to do with this message: the policy on fail, lowered one
	 * step by t=y (RFC 9989) or by pct= sampling (RFC 7489); none on
	 * any other result. */
	enum dmarc_policy disposition;
	bool testing;			/* t=y: the policy is not applied */
	bool sampled_out;		/* pct= left this message out */
	bool author_exists_known;	/* np= needed the existence test */
	bool author_exists;

	enum dmarc_ident aligned;	/* the identifier that passed */
	char aligned_domain[DMARC_DOMAIN_MAX];
	bool dkim_aligned, spf_aligned;	/* both are checked */
	char dkim_domain[DMARC_DOMAIN_MAX];	/* the aligned d= */
	char spf_domain[DMARC_DOMAIN_MAX];	/* normalized SPF domain */

	unsigned queries;		/* DNS questions asked */
};

/* dmarc_request_init - zero the request: RFC 9989 mode, no identifiers. */
void dmarc_request_init(struct dmarc_request *req);

/*
 * dmarc_evaluate - evaluate one message. out is always filled; every
 * outcome about the message, including a bad From field or a DNS failure,
 * is a result with a reason and DKIM_OK. Other statuses mean the call was
 * wrong or memory ran out: DKIM_E_ARG (NULL pointers, RFC 7489 mode
 * without a PSL, pct_draw above 99), DKIM_E_NOMEM.
 */
enum dkim_status dmarc_evaluate(const struct pdns *dns,
    const struct dmarc_request *req, struct dmarc_result *out);

/*
 * dmarc_org_domain - the Organizational Domain of name alone: RFC 9989
 * §4.10.2 by Tree Walk through dns, or RFC 7489 §3.2 from opt->psl.
 * *dnsrc is PDNS_OK when it was determined, otherwise the DNS failure
 * that stopped the walk. For tests and diagnostics.
 */
enum dkim_status dmarc_org_domain(const struct pdns *dns,
    const struct dmarc_options *opt, const char *name, size_t len,
    char *out, size_t outlen, enum pdns_rc *dnsrc, unsigned *queries);

const char *dmarc_res_str(enum dmarc_res r);
const char *dmarc_policy_str(enum dmarc_policy p);
const char *dmarc_policy_src_str(enum dmarc_policy_src s);
const char *dmarc_ident_str(enum dmarc_ident i);
const char *dmarc_mode_str(enum dmarc_mode m);
const char *dmarc_author_rc_str(enum dmarc_author_rc rc);

#ifdef __cplusplus
}
#endif

#endif
