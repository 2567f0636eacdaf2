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
 *   - validating again through a key cache gives the same result.
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
	free(l);
	dkim_msg_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_lookup_message(data, size, one);
	return 0;
}
