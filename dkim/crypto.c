/*
 * crypto.c - the two signature primitives DKIM and ARC use, over OpenSSL 3
 * EVP interfaces only. Both sign the digest of the header hash input:
 * RSA as PKCS#1 v1.5 with the digest's DigestInfo (RFC 6376 §3.3), Ed25519
 * as PureEdDSA over the 32-byte SHA-256 digest (RFC 8463 §3).
 *
 * Setting up an OpenSSL 3 context for a key (fetching the algorithm from
 * the provider, setting padding and digest) costs about a sixth of an
 * RSA-2048 verification. A relay signs every message with the same key
 * and verifies most signatures with keys it saw moments ago, so each
 * thread keeps the contexts of its last few keys ready: an RSA context is
 * used again as it is (OpenSSL allows any number of operations on one
 * initialised context), an Ed25519 one is copied before each use because
 * a one-shot EVP_DigestSign/Verify finishes its context. The cache holds
 * a reference to each key, so a key pointer is never mistaken for a later
 * key allocated at the same address.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "dkim.h"

#define PREP_SLOTS 8

struct prep {
	EVP_PKEY *key;		/* one reference; NULL: slot empty */
	enum dkim_alg alg;
	bool sign;
	EVP_PKEY_CTX *pctx;	/* RSA: ready for EVP_PKEY_sign/verify */
	EVP_MD_CTX *tmpl;	/* Ed25519: initialised, copied per use */
};

struct prep_cache {
	struct prep e[PREP_SLOTS];
	unsigned next;		/* the slot replaced when all are full */
	unsigned gen;		/* prep_gen when the slots were filled */
	EVP_MD_CTX *work;	/* Ed25519: the copy an operation finishes */
};

static pthread_once_t prep_once = PTHREAD_ONCE_INIT;
static pthread_key_t prep_key;
static bool prep_key_ok;
static atomic_uint prep_gen;	/* bumped by dkim_crypto_forget */

static bool
is_rsa_alg(enum dkim_alg alg)
{
	return alg == DKIM_ALG_RSA_SHA256 || alg == DKIM_ALG_RSA_SHA1;
}

static void
prep_clear(struct prep *p)
{
	EVP_PKEY_CTX_free(p->pctx);
	EVP_MD_CTX_free(p->tmpl);
	EVP_PKEY_free(p->key);
	p->pctx = NULL;
	p->tmpl = NULL;
	p->key = NULL;
}

/* prep_cache_free - the thread-exit destructor of a thread's cache. */
static void
prep_cache_free(void *arg)
{
	struct prep_cache *pc = arg;
	size_t i;

	for (i = 0; i < PREP_SLOTS; i++)
		prep_clear(&pc->e[i]);
	EVP_MD_CTX_free(pc->work);
	free(pc);
}

static void
prep_init(void)
{
	prep_key_ok = pthread_key_create(&prep_key, prep_cache_free) == 0;
}

/* prep_cache - this thread's cache, made on first use; NULL without one
 * (then every operation sets up its own context, as slowly as before). */
static struct prep_cache *
prep_cache(void)
{
	struct prep_cache *pc;

	pthread_once(&prep_once, prep_init);
	if (!prep_key_ok)
		return NULL;
	if ((pc = pthread_getspecific(prep_key)) != NULL) {
		unsigned g = atomic_load(&prep_gen);

		if (pc->gen != g) {	/* keys were forgotten: drop all */
			for (size_t i = 0; i < PREP_SLOTS; i++)
				prep_clear(&pc->e[i]);
			pc->gen = g;
		}
		return pc;
	}
	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		return NULL;
	pc->gen = atomic_load(&prep_gen);
	if ((pc->work = EVP_MD_CTX_new()) == NULL ||
	    pthread_setspecific(prep_key, pc) != 0) {
		EVP_MD_CTX_free(pc->work);
		free(pc);
		return NULL;
	}
	return pc;
}

/* prep_setup - initialise p's context for key, alg and direction. */
static bool
prep_setup(struct prep *p, EVP_PKEY *key, enum dkim_alg alg, bool sign)
{
	p->alg = alg;
	p->sign = sign;
	if (is_rsa_alg(alg)) {
		if ((p->pctx = EVP_PKEY_CTX_new(key, NULL)) == NULL ||
		    (sign ? EVP_PKEY_sign_init(p->pctx) :
		    EVP_PKEY_verify_init(p->pctx)) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_padding(p->pctx,
		    RSA_PKCS1_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_signature_md(p->pctx,
		    dkim_alg_md(alg)) <= 0)
			return false;
	} else {
		if ((p->tmpl = EVP_MD_CTX_new()) == NULL ||
		    (sign ? EVP_DigestSignInit(p->tmpl, NULL, NULL, NULL,
		    key) : EVP_DigestVerifyInit(p->tmpl, NULL, NULL, NULL,
		    key)) <= 0)
			return false;
	}
	if (!EVP_PKEY_up_ref(key))
		return false;
	p->key = key;
	return true;
}

/*
 * prep_get - a ready context for key, alg and direction: from this
 * thread's cache, or set up into a free or the oldest slot. *own is set
 * when there is no cache and the caller must free the returned slot.
 */
static struct prep *
prep_get(EVP_PKEY *key, enum dkim_alg alg, bool sign, bool *own)
{
	struct prep_cache *pc = prep_cache();
	struct prep *p;
	size_t i;

	*own = pc == NULL;
	if (pc == NULL) {
		if ((p = calloc(1, sizeof(*p))) == NULL)
			return NULL;
		if (!prep_setup(p, key, alg, sign)) {
			prep_clear(p);
			free(p);
			return NULL;
		}
		return p;
	}
	for (i = 0; i < PREP_SLOTS; i++) {
		p = &pc->e[i];
		if (p->key == key && p->alg == alg && p->sign == sign)
			return p;
	}
	for (i = 0; i < PREP_SLOTS && pc->e[i].key != NULL; i++)
		;
	if (i == PREP_SLOTS) {
		i = pc->next;
		pc->next = (pc->next + 1) % PREP_SLOTS;
	}
	p = &pc->e[i];
	prep_clear(p);
	if (!prep_setup(p, key, alg, sign)) {
		prep_clear(p);
		return NULL;
	}
	return p;
}

/* prep_done - after an operation: a context that reported an error (not
 * a mere mismatch) is dropped, so a fault never sticks to a key. */
static void
prep_done(struct prep *p, bool own, bool failed)
{
	if (own || failed)
		prep_clear(p);
	if (own)
		free(p);
}

/* ed_ctx - the Ed25519 context an operation finishes: a copy of the
 * template, into the thread's work context or a new one (*tmp). */
static EVP_MD_CTX *
ed_ctx(struct prep *p, bool own, EVP_MD_CTX **tmp)
{
	struct prep_cache *pc = own ? NULL : pthread_getspecific(prep_key);
	EVP_MD_CTX *w;

	*tmp = NULL;
	if (pc != NULL)
		w = pc->work;
	else if ((w = *tmp = EVP_MD_CTX_new()) == NULL)
		return NULL;
	return EVP_MD_CTX_copy_ex(w, p->tmpl) ? w : NULL;
}

enum dkim_status
dkim_digest_sign(EVP_PKEY *key, enum dkim_alg alg, const unsigned char *dg,
    size_t dglen, unsigned char **sig, size_t *siglen)
{
	struct prep *p;
	EVP_MD_CTX *md = NULL, *tmp = NULL;
	unsigned char *out = NULL;
	size_t len = 0;
	bool own, ok;

	*sig = NULL;
	if (EVP_PKEY_get_base_id(key) !=
	    (is_rsa_alg(alg) ? EVP_PKEY_RSA : EVP_PKEY_ED25519))
		return DKIM_E_KEY;
	if ((p = prep_get(key, alg, true, &own)) == NULL)
		return DKIM_E_CRYPTO;
	if (p->pctx != NULL) {
		ok = EVP_PKEY_sign(p->pctx, NULL, &len, dg, dglen) > 0 &&
		    (out = malloc(len)) != NULL &&
		    EVP_PKEY_sign(p->pctx, out, &len, dg, dglen) > 0;
	} else {
		/* An Ed25519 signature is 64 bytes; asking first would
		 * finish the copied context. */
		len = 64;
		ok = (out = malloc(len)) != NULL &&
		    (md = ed_ctx(p, own, &tmp)) != NULL &&
		    EVP_DigestSign(md, out, &len, dg, dglen) > 0;
		EVP_MD_CTX_free(tmp);
	}
	prep_done(p, own, !ok);
	if (!ok) {
		free(out);
		return DKIM_E_CRYPTO;
	}
	*sig = out;
	*siglen = len;
	return DKIM_OK;
}

bool
dkim_digest_verify(EVP_PKEY *key, enum dkim_alg alg, const unsigned char *dg,
    size_t dglen, const unsigned char *sig, size_t siglen)
{
	struct prep *p;
	EVP_MD_CTX *md, *tmp = NULL;
	bool own;
	int rc = -1;

	if (EVP_PKEY_get_base_id(key) !=
	    (is_rsa_alg(alg) ? EVP_PKEY_RSA : EVP_PKEY_ED25519))
		return false;
	if ((p = prep_get(key, alg, false, &own)) == NULL)
		return false;
	if (p->pctx != NULL)
		rc = EVP_PKEY_verify(p->pctx, sig, siglen, dg, dglen);
	else if ((md = ed_ctx(p, own, &tmp)) != NULL)
		rc = EVP_DigestVerify(md, sig, siglen, dg, dglen);
	EVP_MD_CTX_free(tmp);
	/* 0 is a signature that does not match; below 0 is an error. */
	prep_done(p, own, rc < 0);
	return rc == 1;
}

void
dkim_crypto_forget(void)
{
	atomic_fetch_add(&prep_gen, 1);
}
