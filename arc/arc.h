/*
 * arc.h - the Authenticated Received Chain (RFC 8617): validate the chain
 * a message carries and seal it with one more ARC set.
 *
 * Everything DKIM-shaped (canonicalization, hashing, signatures, keys,
 * folding) comes from libdkim; this module adds only what is ARC's own:
 * the structure of the sets, the ARC-Seal's signing scope and the rules
 * for chain validation status. No I/O: keys arrive through the same
 * lookup interface as in dkim/.
 */
#ifndef ARCRELAY_ARC_H
#define ARCRELAY_ARC_H

#include "dkim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ARC_MAX_SETS 50			/* RFC 8617 §4.2.1 */
/* Distinct key names one message may look up: the newest AMS and a seal
 * per set, which is all that deciding the chain needs. oldest-pass uses
 * what is left. A forged chain costs no more, and stops at its first
 * seal that does not verify. */
#define ARC_DEFAULT_LOOKUP_BUDGET (ARC_MAX_SETS + 1)

struct arc_result {
	enum dkim_cv cv;	/* none, pass or fail */
	unsigned instances;	/* N, the highest instance found (0: none) */
	unsigned oldest_pass;	/* §5.2 step 5; 0 when every AMS verifies */
	char sealer[256];	/* cv=pass: d= of the newest ARC-Seal */
	char reason[DKIM_WHY_MAX];
};

const char *arc_cv_str(enum dkim_cv cv);

/*
 * arc_validate - RFC 8617 §5.2 over msg. Key lookups go through
 * o->lookup, answered at most once per name and for at most
 * lookup_budget distinct names (0: the default), so a forged chain of
 * 50 sets cannot make a hundred queries. The seals are checked before
 * the optional oldest-pass scan, which stops (reporting the lowest
 * instance it did verify) when the budget runs out. DNS errors fail the
 * chain (§5.2.1). Returns DKIM_OK when validation finished, whatever the
 * result.
 */
enum dkim_status arc_validate(const struct dkim_msg *msg,
    const struct dkim_verify_opts *o, unsigned lookup_budget,
    struct arc_result *out);

struct arc_seal_opts {
	const char *domain;	/* d= */
	const char *selector;	/* s= */
	const char *authserv_id;
	const char *results;	/* the AAR's resinfo text; NULL or "": none */
	EVP_PKEY *key;		/* borrowed */
	enum dkim_alg alg;
	int64_t now;		/* t= of AMS and AS */
	const char *const *headers; /* AMS h=; NULL: the ARC default list */
	size_t nheaders;
};

void arc_seal_opts_init(struct arc_seal_opts *o);

/*
 * arc_seal - add ARC set N+1 to msg, whose chain was validated as chain.
 * out receives ARC-Seal, ARC-Message-Signature and
 * ARC-Authentication-Results, in that order, each folded and ending in
 * CRLF, to prepend to the message. The earlier sets are never touched.
 * Refuses (DKIM_E_LIMIT with a reason) when the newest seal already says
 * cv=fail or the chain has 50 sets (§5.1). A chain found failed here is
 * sealed cv=fail over the new set alone (§5.1.2).
 */
enum dkim_status arc_seal(const struct dkim_msg *msg,
    const struct arc_result *chain, const struct arc_seal_opts *o,
    struct dkim_buf *out, char *why, size_t whylen);

#ifdef __cplusplus
}
#endif

#endif
