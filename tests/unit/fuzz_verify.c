/*
 * fuzz_verify.c - libFuzzer target for DKIM verification (dkim/verify.c
 * and everything it calls: key fetching and the key cache, body and
 * header hashing, signature checks).
 *
 * The first byte of an input picks the verifier options: how many
 * signatures are evaluated (1 to 8), the minimum RSA size (1024 or 2048
 * bits), the clock skew (300 or 0 seconds) and the time (a day after the
 * RFC 8463 example was signed, or 2005). The rest is the message (LF
 * lines are made CRLF when it holds no CRLF). Keys come from
 * fuzz_lookup.h: the RFC 8463 test keys under their names and ours, or a
 * record taken from the message's X-Fuzz-Key fields (selector "fuzz").
 * Besides "no crash, no leak, no overread" (ASan), it traps when a
 * promise of dkim.h breaks:
 *   - dkim_verify finishes with DKIM_OK; n is at most the configured
 *     limit and n + ignored is the number of DKIM-Signature fields; the
 *     results are in field order, each at a DKIM-Signature field;
 *   - every result is one of pass ... permerror (never none) with a
 *     non-empty reason; the reported d, s, a, b and i are present and
 *     agree with the parsed signature; one that did not parse is a
 *     permerror; a pass has a key of the signature's type, at least the
 *     minimum size when RSA;
 *   - verifying again through a two-entry key cache gives the same
 *     results and reasons, and so does dkim_verify_sig on each parsed
 *     signature alone.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/verify/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim.h"
#include "fuzz_lookup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define RFC8463_T 1528637909

/* check_result - the promises about one result of v. */
static void
check_result(const struct dkim_msg *m, const struct dkim_verify_opts *o,
    const struct dkim_sigresult *r)
{
	const struct dkim_sig *s = r->sig;

	CHECK(r->result > DKIM_RES_NONE && r->result <= DKIM_RES_PERMERROR);
	CHECK(r->reason[0] != '\0' &&
	    strnlen(r->reason, sizeof(r->reason)) < sizeof(r->reason));
	CHECK(r->field_index < m->nfields &&
	    dkim_field_is(&m->fields[r->field_index], "DKIM-Signature"));
	CHECK(r->d && r->s && r->a && r->b && r->i);
	if (s == NULL) {
		CHECK(r->result == DKIM_RES_PERMERROR);
		return;
	}
	CHECK(s->kind == DKIM_SIG_DKIM);
	CHECK(strcmp(r->d, s->d) == 0 && strcmp(r->s, s->s) == 0 &&
	    strcmp(r->a, s->alg_text) == 0 && strcmp(r->b, s->b_text) == 0 &&
	    strcmp(r->i, s->i) == 0);
	if (r->result == DKIM_RES_PASS) {
		CHECK(s->alg != DKIM_ALG_RSA_SHA1);
		CHECK(s->alg == DKIM_ALG_ED25519_SHA256 ||
		    r->key_bits >= o->min_rsa_bits);
		CHECK(!s->has_x || o->now <= s->x);
	}
}

/* same_results - two verifications of one message agree. */
static void
same_results(const struct dkim_verification *a,
    const struct dkim_verification *b)
{
	size_t k;

	CHECK(a->n == b->n && a->ignored == b->ignored);
	for (k = 0; k < a->n; k++) {
		CHECK(a->r[k].result == b->r[k].result &&
		    a->r[k].field_index == b->r[k].field_index &&
		    a->r[k].testing == b->r[k].testing &&
		    a->r[k].key_bits == b->r[k].key_bits);
		CHECK(strcmp(a->r[k].reason, b->r[k].reason) == 0);
	}
}

/* check_alone - dkim_verify_sig on each parsed signature by itself. */
static void
check_alone(const struct dkim_msg *m, const struct dkim_verify_opts *o,
    const struct dkim_verification *v)
{
	size_t k;

	for (k = 0; k < v->n; k++) {
		struct dkim_sigresult r;

		if (v->r[k].sig == NULL)
			continue;
		memset(&r, 0, sizeof(r));
		r.field_index = v->r[k].field_index;
		r.sig = v->r[k].sig;
		CHECK(dkim_verify_sig(m, o, NULL, &r) == DKIM_OK);
		CHECK(r.result == v->r[k].result &&
		    strcmp(r.reason, v->r[k].reason) == 0);
	}
}

/* one - verify (p, n) under the options sel picks. */
static void
one(const char *p, size_t n, unsigned sel)
{
	struct dkim_verify_opts o;
	struct dkim_verification *v = NULL, *again = NULL;
	struct dkim_keycache *kc;
	struct dkim_msg *m = NULL;
	struct fuzz_lookup l;
	size_t k, nsig = 0;

	if (dkim_msg_parse(p, n, NULL, &m, NULL, 0) != DKIM_OK)
		return;
	fuzz_lookup_init(&l, m);
	dkim_verify_opts_init(&o);
	o.max_signatures = 1 + (sel & 7);
	o.min_rsa_bits = sel & 8 ? 2048 : 1024;
	o.clock_skew = sel & 16 ? 0 : 300;
	o.now = sel & 32 ? 1112400000 : RFC8463_T + 86400;
	o.lookup = fuzz_lookup_fn;
	o.lookup_arg = &l;
	CHECK(dkim_verify(m, &o, &v) == DKIM_OK && v != NULL);
	for (k = 0; k < m->nfields; k++)
		if (dkim_field_is(&m->fields[k], "DKIM-Signature"))
			nsig++;
	CHECK(v->n <= o.max_signatures && v->n + v->ignored == nsig);
	for (k = 0; k < v->n; k++) {
		check_result(m, &o, &v->r[k]);
		CHECK(k == 0 || v->r[k].field_index > v->r[k - 1].field_index);
	}
	check_alone(m, &o, v);

	CHECK((kc = dkim_keycache_new(2)) != NULL);
	o.keycache = kc;
	CHECK(dkim_verify(m, &o, &again) == DKIM_OK);
	same_results(v, again);
	dkim_verification_free(again);
	again = NULL;
	/* Once more with the keys now cached. */
	CHECK(dkim_verify(m, &o, &again) == DKIM_OK);
	same_results(v, again);
	dkim_verification_free(again);
	dkim_keycache_free(kc);
	dkim_verification_free(v);
	dkim_msg_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_lookup_message(data, size, one);
	return 0;
}
