/*
 * test_crypto.c - dkim_digest_sign / dkim_digest_verify through the
 * per-thread cache of prepared contexts: more keys than the cache holds,
 * signing and verifying with the same key in turn, a mismatch that must
 * not stick to the key, a key freed and another allocated in its place,
 * and several threads sharing keys.
 */
#include <pthread.h>

#include <criterion/criterion.h>

#include <openssl/x509.h>

#include "unit.h"

#define NKEYS 12	/* more than the cache's slots */

struct keyset {
	EVP_PKEY *k[NKEYS];
	enum dkim_alg alg[NKEYS];
};

static EVP_PKEY *
gen(bool ed)
{
	EVP_PKEY *k = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);

	cr_assert(k != NULL, "test setup: keygen failed");
	return k;
}

static void
keyset_make(struct keyset *ks)
{
	for (size_t i = 0; i < NKEYS; i++) {
		bool ed = i % 3 == 2;

		ks->k[i] = gen(ed);
		ks->alg[i] = ed ? DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256;
	}
}

static void
keyset_free(struct keyset *ks)
{
	for (size_t i = 0; i < NKEYS; i++)
		EVP_PKEY_free(ks->k[i]);
}

/* digest_for - a distinct 32-byte digest per (key, round). */
static void
digest_for(unsigned char dg[32], size_t key, unsigned round)
{
	for (size_t j = 0; j < 32; j++)
		dg[j] = (unsigned char)(key * 31 + round * 7 + j);
}

/*
 * check_round - sign with every key, then for each signature: it verifies
 * with its own key, not with the next key, not over another digest, and
 * still verifies with its own key after those mismatches. Returns the
 * number of wrong answers (so threads can report them).
 */
static unsigned
check_round(const struct keyset *ks, unsigned round, bool report)
{
	unsigned char dg[32], other[32], *sig[NKEYS];
	size_t len[NKEYS];
	unsigned wrong = 0;

	for (size_t i = 0; i < NKEYS; i++) {
		digest_for(dg, i, round);
		if (dkim_digest_sign(ks->k[i], ks->alg[i], dg, 32, &sig[i],
		    &len[i]) != DKIM_OK) {
			if (report)
				cr_log_error("key %zu round %u: sign failed", i,
				    round);
			sig[i] = NULL;
			wrong++;
		}
	}
	for (size_t i = 0; i < NKEYS; i++) {
		size_t j = (i + 3) % NKEYS;	/* same algorithm as i */
		struct {
			const char *what;
			bool got, want;
		} c[4];

		if (sig[i] == NULL)
			continue;
		digest_for(dg, i, round);
		digest_for(other, i, round + 1);
		c[0].what = "own key";
		c[0].got = dkim_digest_verify(ks->k[i], ks->alg[i], dg, 32,
		    sig[i], len[i]);
		c[0].want = true;
		c[1].what = "another key";
		c[1].got = dkim_digest_verify(ks->k[j], ks->alg[j], dg, 32,
		    sig[i], len[i]);
		c[1].want = false;
		c[2].what = "another digest";
		c[2].got = dkim_digest_verify(ks->k[i], ks->alg[i], other, 32,
		    sig[i], len[i]);
		c[2].want = false;
		c[3].what = "own key after the mismatches";
		c[3].got = dkim_digest_verify(ks->k[i], ks->alg[i], dg, 32,
		    sig[i], len[i]);
		c[3].want = true;
		for (size_t n = 0; n < NELEM(c); n++) {
			if (c[n].got == c[n].want)
				continue;
			wrong++;
			if (report)
				cr_log_error("key %zu round %u, %s: got %d, "
				    "want %d", i, round, c[n].what, c[n].got,
				    c[n].want);
		}
		free(sig[i]);
	}
	return wrong;
}

Test(crypto, more_keys_than_slots)
{
	struct keyset ks;
	unsigned wrong = 0;

	keyset_make(&ks);
	for (unsigned r = 0; r < 3; r++)
		wrong += check_round(&ks, r, true);
	cr_expect_eq(wrong, 0, "got %u wrong answers, want 0", wrong);
	keyset_free(&ks);
}

Test(crypto, wrong_algorithm_for_key)
{
	EVP_PKEY *rsa = gen(false), *ed = gen(true);
	unsigned char dg[32] = { 1 }, *sig;
	size_t len;
	enum dkim_status st;

	st = dkim_digest_sign(rsa, DKIM_ALG_ED25519_SHA256, dg, 32, &sig, &len);
	cr_expect_eq(st, DKIM_E_KEY, "ed25519 with an RSA key: got %s, want "
	    "%s", dkim_status_str(st), dkim_status_str(DKIM_E_KEY));
	st = dkim_digest_sign(ed, DKIM_ALG_RSA_SHA256, dg, 32, &sig, &len);
	cr_expect_eq(st, DKIM_E_KEY, "rsa-sha256 with an Ed25519 key: got %s, "
	    "want %s", dkim_status_str(st), dkim_status_str(DKIM_E_KEY));
	cr_assert_eq(dkim_digest_sign(ed, DKIM_ALG_ED25519_SHA256, dg, 32,
	    &sig, &len), DKIM_OK);
	cr_expect(!dkim_digest_verify(rsa, DKIM_ALG_ED25519_SHA256, dg, 32,
	    sig, len), "an Ed25519 signature checked with an RSA key passed");
	cr_expect(dkim_digest_verify(ed, DKIM_ALG_ED25519_SHA256, dg, 32, sig,
	    len), "the Ed25519 signature does not verify");
	free(sig);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
}

/* key_from - a fresh EVP_PKEY from the same bytes each time, so that the
 * allocations made for it repeat and a freed key's address comes back. */
static EVP_PKEY *
key_from(bool ed, const unsigned char *der, size_t derlen, unsigned seed)
{
	unsigned char raw[32];
	const unsigned char *p = der;

	if (!ed)
		return d2i_AutoPrivateKey(NULL, &p, (long)derlen);
	for (size_t j = 0; j < sizeof(raw); j++)
		raw[j] = (unsigned char)(seed * 13 + j);
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw,
	    sizeof(raw));
}

/*
 * A key the caller frees stays alive in the cache (the cache and the
 * prepared context both hold references), so a new key made from the same
 * kind of bytes, which the allocator would otherwise place at the freed
 * key's address, is never given the old key's context: the old key's
 * signature must not verify with the new key, and the new key's must.
 */
Test(crypto, key_replaced_at_same_address)
{
	unsigned char dg[32] = { 7 }, *sig_old, *sig_new, *der[2] = { 0 };
	int derlen[2];

	for (int i = 0; i < 2; i++) {
		EVP_PKEY *k = gen(false);

		derlen[i] = i2d_PrivateKey(k, &der[i]);
		cr_assert(derlen[i] > 0, "test setup: i2d_PrivateKey failed");
		EVP_PKEY_free(k);
	}
	for (unsigned round = 0; round < 20; round++) {
		bool ed = round % 2;
		enum dkim_alg alg = ed ? DKIM_ALG_ED25519_SHA256 :
		    DKIM_ALG_RSA_SHA256;
		EVP_PKEY *a = key_from(ed, der[0], (size_t)derlen[0], round),
		    *b;

		size_t lo, ln;

		cr_assert(a != NULL, "test setup: key does not load");
		cr_assert_eq(dkim_digest_sign(a, alg, dg, 32, &sig_old, &lo),
		    DKIM_OK);
		cr_assert(dkim_digest_verify(a, alg, dg, 32, sig_old, lo));
		EVP_PKEY_free(a);
		b = key_from(ed, der[1], (size_t)derlen[1], round + 1000);
		cr_assert(b != NULL, "test setup: key does not load");
		cr_assert_eq(dkim_digest_sign(b, alg, dg, 32, &sig_new, &ln),
		    DKIM_OK);
		cr_expect(!dkim_digest_verify(b, alg, dg, 32, sig_old, lo),
		    "round %u: the freed key's signature verified with the "
		    "key that replaced it", round);
		cr_expect(dkim_digest_verify(b, alg, dg, 32, sig_new, ln),
		    "round %u: the new key's own signature does not verify",
		    round);
		free(sig_old);
		free(sig_new);
		EVP_PKEY_free(b);
	}
	OPENSSL_free(der[0]);
	OPENSSL_free(der[1]);
}

struct worker_arg {
	const struct keyset *ks;
	unsigned id, wrong;
};

static void *
worker(void *arg)
{
	struct worker_arg *w = arg;

	for (unsigned r = 0; r < 6; r++)
		w->wrong += check_round(w->ks, w->id * 100 + r, false);
	return NULL;
}

Test(crypto, threads_share_keys)
{
	struct keyset ks;
	struct worker_arg w[4];
	pthread_t th[4];

	keyset_make(&ks);
	for (unsigned i = 0; i < NELEM(th); i++) {
		w[i] = (struct worker_arg){ &ks, i, 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, worker, &w[i]), 0);
	}
	for (unsigned i = 0; i < NELEM(th); i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(w[i].wrong, 0, "thread %u: got %u wrong answers, "
		    "want 0", i, w[i].wrong);
	}
	keyset_free(&ks);
}

static int freed_mark;

static void
on_key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (ptr == &freed_mark)
		freed_mark = 1;
}

/* The cache keeps a key alive after its owner frees it, until
 * dkim_crypto_forget and the thread's next operation let it go. */
Test(crypto, forget_releases_keys)
{
	int idx = EVP_PKEY_get_ex_new_index(0, NULL, NULL, NULL, on_key_free);
	EVP_PKEY *k = gen(false), *other = gen(true);
	unsigned char dg[32] = { 3 }, *sig;
	size_t len;

	cr_assert(idx >= 0, "test setup: no ex_data index");
	cr_assert(EVP_PKEY_set_ex_data(k, idx, &freed_mark));
	cr_assert_eq(dkim_digest_sign(k, DKIM_ALG_RSA_SHA256, dg, 32, &sig,
	    &len), DKIM_OK);
	free(sig);
	EVP_PKEY_free(k);
	cr_expect_eq(freed_mark, 0, "the key was freed while its prepared "
	    "context was still cached");
	dkim_crypto_forget();
	cr_assert_eq(dkim_digest_sign(other, DKIM_ALG_ED25519_SHA256, dg, 32,
	    &sig, &len), DKIM_OK);
	free(sig);
	cr_expect_eq(freed_mark, 1, "after dkim_crypto_forget and another "
	    "operation the key is still held");
	EVP_PKEY_free(other);
}
