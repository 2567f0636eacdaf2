/*
 * crypto.c - the two signature primitives DKIM and ARC use, over OpenSSL 3
 * EVP interfaces only. Both sign the digest of the header hash input:
 * RSA as PKCS#1 v1.5 with the digest's DigestInfo (RFC 6376 §3.3), Ed25519
 * as PureEdDSA over the 32-byte SHA-256 digest (RFC 8463 §3).
 */
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "dkim.h"

static bool
is_rsa_alg(enum dkim_alg alg)
{
	return alg == DKIM_ALG_RSA_SHA256 || alg == DKIM_ALG_RSA_SHA1;
}

/* rsa_ctx - a PKEY context set up for PKCS#1 v1.5 with the alg's digest. */
static EVP_PKEY_CTX *
rsa_ctx(EVP_PKEY *key, enum dkim_alg alg, bool sign)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);

	if (ctx == NULL)
		return NULL;
	if ((sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, dkim_alg_md(alg)) <= 0) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

enum dkim_status
dkim_digest_sign(EVP_PKEY *key, enum dkim_alg alg, const unsigned char *dg,
    size_t dglen, unsigned char **sig, size_t *siglen)
{
	size_t len = 0;
	unsigned char *out;
	int ok;

	*sig = NULL;
	if (is_rsa_alg(alg)) {
		EVP_PKEY_CTX *ctx;

		if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
			return DKIM_E_KEY;
		if ((ctx = rsa_ctx(key, alg, true)) == NULL)
			return DKIM_E_CRYPTO;
		if (EVP_PKEY_sign(ctx, NULL, &len, dg, dglen) <= 0 ||
		    (out = malloc(len)) == NULL) {
			EVP_PKEY_CTX_free(ctx);
			return DKIM_E_CRYPTO;
		}
		ok = EVP_PKEY_sign(ctx, out, &len, dg, dglen) > 0;
		EVP_PKEY_CTX_free(ctx);
	} else {
		EVP_MD_CTX *md;

		if (EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519)
			return DKIM_E_KEY;
		if ((md = EVP_MD_CTX_new()) == NULL)
			return DKIM_E_NOMEM;
		if (EVP_DigestSignInit(md, NULL, NULL, NULL, key) <= 0 ||
		    EVP_DigestSign(md, NULL, &len, dg, dglen) <= 0 ||
		    (out = malloc(len)) == NULL) {
			EVP_MD_CTX_free(md);
			return DKIM_E_CRYPTO;
		}
		ok = EVP_DigestSign(md, out, &len, dg, dglen) > 0;
		EVP_MD_CTX_free(md);
	}
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
	bool ok;

	if (is_rsa_alg(alg)) {
		EVP_PKEY_CTX *ctx;

		if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA ||
		    (ctx = rsa_ctx(key, alg, false)) == NULL)
			return false;
		ok = EVP_PKEY_verify(ctx, sig, siglen, dg, dglen) == 1;
		EVP_PKEY_CTX_free(ctx);
	} else {
		EVP_MD_CTX *md;

		if (EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519 ||
		    (md = EVP_MD_CTX_new()) == NULL)
			return false;
		ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) > 0 &&
		    EVP_DigestVerify(md, sig, siglen, dg, dglen) == 1;
		EVP_MD_CTX_free(md);
	}
	return ok;
}
