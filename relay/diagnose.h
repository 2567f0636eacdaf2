/*
 * diagnose.h - why a DKIM signature or ARC-Message-Signature does not
 * verify, as far as recomputing can prove it: a body that only matches
 * without its last lines, with other line ends, white space or
 * canonicalization; a header signature that verifies again once a subject
 * tag, a From rewrite, re-folding or an added field is undone; a key
 * record that is missing, revoked, of the wrong type, too short or
 * mangled; and along an ARC chain, the hop after which a signature broke.
 *
 * Every cause reported here was shown by making the signature verify (or
 * the body hash match) again, or read off the key record; what cannot be
 * shown is said as such ("signed header fields were changed").
 *
 * Untrusted input: the message, its signatures and AARs, and the key
 * records. No I/O except key lookups through the struct pdns handed in.
 */
#ifndef ARCRELAY_DIAGNOSE_H
#define ARCRELAY_DIAGNOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arc.h"
#include "dkim.h"
#include "pdns.h"

enum diagnose_cause {
	DIAGNOSE_PASS = 0,
	DIAGNOSE_BODY_APPENDED,		/* lines were added at the end */
	DIAGNOSE_BODY_CANON,		/* only the other body c= matches */
	DIAGNOSE_BODY_LINE_ENDINGS,	/* CRLF <-> LF conversion */
	DIAGNOSE_BODY_WHITESPACE,	/* trailing white space changed */
	DIAGNOSE_BODY_CHANGED,		/* nothing above explains it */
	DIAGNOSE_HEADER_SUBJECT_TAG,	/* "[list] " put into Subject */
	DIAGNOSE_HEADER_FROM_REWRITTEN,	/* From replaced, X-Original-From */
	DIAGNOSE_HEADER_REFOLDED,	/* c=simple and folding changed */
	DIAGNOSE_HEADER_ADDED,		/* a signed name gained an instance */
	DIAGNOSE_HEADER_CHANGED,	/* nothing above explains it */
	DIAGNOSE_KEY_MISSING,		/* NXDOMAIN or no TXT record */
	DIAGNOSE_KEY_DNS,		/* the lookup failed */
	DIAGNOSE_KEY_REVOKED,		/* p= empty */
	DIAGNOSE_KEY_TESTING,		/* t=y */
	DIAGNOSE_KEY_TYPE,		/* k= does not fit a= or p= */
	DIAGNOSE_KEY_TOO_SHORT,		/* RSA below 1024 bits */
	DIAGNOSE_KEY_MALFORMED,		/* record or p= does not parse */
	DIAGNOSE_KEY_HASH,		/* key h= excludes sha256 */
	DIAGNOSE_KEY_SERVICE,		/* key s= excludes email */
	DIAGNOSE_KEY_STRICT,		/* t=s and i= in a subdomain */
	DIAGNOSE_EXPIRED,		/* x= has passed */
	DIAGNOSE_FUTURE,		/* t= lies ahead */
	DIAGNOSE_SIG_MALFORMED,		/* the field does not parse */
	DIAGNOSE_SIG_ALGORITHM,		/* rsa-sha1 (RFC 8301) */
	DIAGNOSE_UNEXPLAINED,		/* fails, and no check says why */
};

/* diagnose_cause_str - the machine code ("body-appended"). */
const char *diagnose_cause_str(enum diagnose_cause c);

#define DIAGNOSE_DETAIL_MAX	512
#define DIAGNOSE_MAX_ALSO	6
#define DIAGNOSE_LINE_MAX	80	/* octets of an appended line kept */

struct diagnose_finding {
	enum diagnose_cause cause;
	char detail[DIAGNOSE_DETAIL_MAX];	/* one sentence */
};

/* One signature: a DKIM-Signature, or the AMS of an ARC hop. */
struct diagnose_sig {
	enum dkim_sig_kind kind;
	size_t field_index;		/* in msg->fields */
	char *d, *s, *b;		/* owned; b= is its first 8 characters;
					 * "" when the field did not parse */
	char *b_full;			/* owned: b= without FWS, or "" */
	enum dkim_result result;	/* what the verifier says now */
	char reason[DKIM_WHY_MAX];	/* and its reason */
	struct diagnose_finding cause;	/* the first problem found, in the
					 * verifier's order; PASS (or
					 * KEY_TESTING) when it verifies */
	struct diagnose_finding also[DIAGNOSE_MAX_ALSO]; /* further ones */
	size_t nalso;
	bool key_testing;		/* the key record says t=y */
	uint64_t appended_lines;	/* with BODY_APPENDED */
	char *first_appended;		/* owned or NULL: the first appended
					 * line that is not empty, cut at a
					 * character boundary within
					 * DIAGNOSE_LINE_MAX octets */
	unsigned passed_at_hop;		/* newest ARC hop whose AAR recorded
					 * dkim=pass for it; 0: none */
	unsigned broke_after_hop;	/* 0: not known */
	char arc_detail[DIAGNOSE_DETAIL_MAX]; /* "" when nothing to say */
};

/* A dkim result an ARC hop recorded in its AAR. */
struct diagnose_record {
	char *result, *d, *s, *b;	/* owned; "" when absent */
};

struct diagnose_hop {
	unsigned instance;
	bool has_aar, has_ams;
	char *authserv_id;		/* owned; "" without a readable AAR */
	struct diagnose_record *rec;	/* owned array */
	size_t nrec;
	struct diagnose_sig ams;	/* with has_ams */
};

struct diagnose_report {
	struct diagnose_sig *sig;	/* owned: DKIM signatures, in header
					 * order (at most the verifier's 10) */
	size_t nsig;
	struct diagnose_hop *hop;	/* owned: hop[k] is instance k + 1 */
	size_t nhop;
	struct arc_result chain;	/* arc_validate's verdict */
	unsigned broke_after_hop;	/* of the first failing signature that
					 * has one; 0: none */
};

struct diagnose_opts {
	const struct pdns *dns;		/* borrowed: key lookups */
	int64_t now;			/* seconds since the epoch */
};

/*
 * diagnose_message - verify every DKIM signature and ARC-Message-
 * Signature of msg and explain each one that fails. Returns DKIM_OK when
 * the evaluation finished, whatever it found; DKIM_E_NOMEM otherwise.
 * *out is the caller's (diagnose_report_free).
 */
enum dkim_status diagnose_message(const struct dkim_msg *msg,
    const struct diagnose_opts *o, struct diagnose_report **out);
void diagnose_report_free(struct diagnose_report *r);

#endif
