/*
 * fuzz_arc.c - libFuzzer target for ARC chain validation (arc/arc.c, on
 * libdkim's parsers, canonicalization and signature checks).
 *
 * The first byte of an input picks the lookup budget (bits 0-5: 0, the
 * default, to 63 names) and the time (bit 6: 2005 instead of a day after
 * the RFC 8463 example, so that t= of the ARC suite's sets and ours are
 * in the past either way). The rest is the message (LF lines are made
 * CRLF when it holds no CRLF). Keys come from tests/unit/fuzz_lookup.h:
 * the ARC suite's key, the RFC 8463 test keys, or records from the
 * message's X-Fuzz-Key fields (selector "fuzz"). Besides "no crash, no
 * leak, no overread" (ASan), it traps when a promise of arc.h breaks:
 *   - arc_validate finishes with DKIM_OK; cv is none, pass or fail with a
 *     non-empty reason; instances is at most ARC_MAX_SETS; none means no
 *     set was found, pass means at least one, and oldest_pass is 0 or an
 *     instance from 2 up to the newest;
 *   - the lookup callback is asked at most the budget's number of times
 *     and never twice for one name;
 *   - validating again through a key cache gives the same result;
 *   - sealing, then validating what was sealed, agrees with the first
 *     result: a chain that passed (or was absent) passes with one more
 *     instance, a failed one stays failed, and a refusal to seal comes
 *     with a reason. Bit 7 of the first byte seals with RSA instead of
 *     Ed25519. Every line of the new set fits in 78 columns.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arc.h"
#include "../unit/fuzz_lookup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* check_result - the promises about one arc_result. */
static void
check_result(const struct arc_result *r)
{
	CHECK(r->cv == DKIM_CV_NONE || r->cv == DKIM_CV_PASS ||
	    r->cv == DKIM_CV_FAIL);
	CHECK(r->reason[0] != '\0' &&
	    strnlen(r->reason, sizeof(r->reason)) < sizeof(r->reason));
	CHECK(r->instances <= ARC_MAX_SETS);
	if (r->cv == DKIM_CV_NONE)
		CHECK(r->instances == 0 && r->oldest_pass == 0);
	if (r->cv == DKIM_CV_PASS)
		CHECK(r->instances >= 1 && (r->oldest_pass == 0 ||
		    (r->oldest_pass >= 2 && r->oldest_pass <= r->instances)));
	if (r->cv == DKIM_CV_FAIL)
		CHECK(r->oldest_pass == 0);
}

/* seal_key - the RFC 8463 test key of the given kind, loaded once. */
static EVP_PKEY *
seal_key(bool rsa)
{
	static EVP_PKEY *k[2];

	if (k[rsa] == NULL)
		CHECK((k[rsa] = rsa ? load_rsa_key() : load_ed_key()) != NULL);
	return k[rsa];
}

/* check_lines - every line of the new ARC set is at most 78 columns. */
static void
check_lines(const char *p, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
			i++;
			col = 0;
		} else {
			CHECK(++col <= 78);
		}
	}
}

/*
 * reseal - seal m, whose chain validated as r, then validate the result:
 * the verdict has to follow from r (RFC 8617 §5.1).
 */
static void
reseal(const struct dkim_msg *m, const char *p, size_t n,
    const struct arc_result *r, const struct dkim_verify_opts *vo,
    unsigned sel)
{
	struct arc_seal_opts so;
	struct dkim_verify_opts o = *vo;
	struct arc_result after;
	struct dkim_buf out, whole;
	struct dkim_msg *m2 = NULL;
	struct fuzz_lookup *l;
	char why[DKIM_WHY_MAX] = "";
	bool rsa = sel & 128;
	enum dkim_status st;

	arc_seal_opts_init(&so);
	so.domain = "example.com";
	so.selector = rsa ? "rsa" : "ed";
	so.authserv_id = "relay.example.org";
	so.results = "dkim=pass header.d=example.com";
	so.key = seal_key(rsa);
	so.alg = rsa ? DKIM_ALG_RSA_SHA256 : DKIM_ALG_ED25519_SHA256;
	so.now = o.now;
	dkim_buf_init(&out, 0);
	st = arc_seal(m, r, &so, &out, why, sizeof(why));
	if (st != DKIM_OK) {
		CHECK(why[0] != '\0');
		CHECK(st != DKIM_E_LIMIT || r->cv == DKIM_CV_FAIL ||
		    r->instances >= ARC_MAX_SETS);
		dkim_buf_free(&out);
		return;
	}
	CHECK(!out.failed && out.len > 0);
	check_lines(out.p, out.len);
	dkim_buf_init(&whole, 0);
	dkim_buf_add(&whole, out.p, out.len);
	dkim_buf_add(&whole, p, n);
	CHECK(!whole.failed);
	dkim_buf_free(&out);
	/* Three more fields may pass the header limits; that is no bug. */
	if (dkim_msg_parse(whole.p, whole.len, NULL, &m2, NULL, 0) !=
	    DKIM_OK) {
		dkim_buf_free(&whole);
		return;
	}
	CHECK((l = malloc(sizeof(*l))) != NULL);
	fuzz_lookup_init(l, m2);
	o.lookup_arg = l;
	o.keycache = NULL;
	CHECK(arc_validate(m2, &o, 0, &after) == DKIM_OK);
	check_result(&after);
	if (r->cv == DKIM_CV_FAIL) {
		CHECK(after.cv == DKIM_CV_FAIL);
	} else {
		CHECK(after.cv == DKIM_CV_PASS);
		CHECK(after.instances == r->instances + 1);
		CHECK(strcmp(after.sealer, "example.com") == 0);
	}
	free(l);
	dkim_msg_free(m2);
	dkim_buf_free(&whole);
}

/* one - validate (p, n) under the options sel picks. */
static void
one(const char *p, size_t n, unsigned sel)
{
	struct dkim_verify_opts o;
	struct arc_result r, again;
	struct dkim_keycache *kc;
	struct dkim_msg *m = NULL;
	struct fuzz_lookup *l;
	unsigned budget = sel & 63;

	if (dkim_msg_parse(p, n, NULL, &m, NULL, 0) != DKIM_OK)
		return;
	CHECK((l = malloc(sizeof(*l))) != NULL);
	fuzz_lookup_init(l, m);
	dkim_verify_opts_init(&o);
	o.now = sel & 64 ? 1112400000 : 1528637909 + 86400;
	o.lookup = fuzz_lookup_fn;
	o.lookup_arg = l;
	CHECK(arc_validate(m, &o, budget, &r) == DKIM_OK);
	check_result(&r);
	CHECK(l->calls <= (budget ? budget : ARC_DEFAULT_LOOKUP_BUDGET));
	CHECK(!l->repeated);

	CHECK((kc = dkim_keycache_new(4)) != NULL);
	o.keycache = kc;
	fuzz_lookup_init(l, m);
	CHECK(arc_validate(m, &o, budget, &again) == DKIM_OK);
	CHECK(again.cv == r.cv && again.instances == r.instances &&
	    again.oldest_pass == r.oldest_pass &&
	    strcmp(again.reason, r.reason) == 0);
	dkim_keycache_free(kc);
	o.keycache = NULL;
	reseal(m, p, n, &r, &o, sel);
	free(l);
	dkim_msg_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_lookup_message(data, size, one);
	return 0;
}
