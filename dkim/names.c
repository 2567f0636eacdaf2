/*
 * names.c - the text names of the library's enums, as RFC 6376 and RFC 8601
 * spell them.
 */
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "dkim.h"

const char *
dkim_status_str(enum dkim_status st)
{
	switch (st) {
	case DKIM_OK:			return "ok";
	case DKIM_E_NOMEM:		return "out of memory";
	case DKIM_E_EMPTY:		return "empty message";
	case DKIM_E_LINE_TOO_LONG:	return "line too long";
	case DKIM_E_TOO_MANY_HEADERS:	return "too many header fields";
	case DKIM_E_HEADER_TOO_BIG:	return "header section too large";
	case DKIM_E_MALFORMED:		return "not a message";
	case DKIM_E_SYNTAX:		return "syntax error";
	case DKIM_E_KEY:		return "unusable key";
	case DKIM_E_CRYPTO:		return "cryptographic operation failed";
	case DKIM_E_LIMIT:		return "limit exceeded";
	case DKIM_E_ARG:		return "invalid argument";
	}
	return "unknown status";
}

const char *
dkim_result_str(enum dkim_result r)
{
	switch (r) {
	case DKIM_RES_NONE:		return "none";
	case DKIM_RES_PASS:		return "pass";
	case DKIM_RES_FAIL:		return "fail";
	case DKIM_RES_NEUTRAL:		return "neutral";
	case DKIM_RES_POLICY:		return "policy";
	case DKIM_RES_TEMPERROR:	return "temperror";
	case DKIM_RES_PERMERROR:	return "permerror";
	}
	return "permerror";
}

const char *
dkim_canon_str(enum dkim_canon c)
{
	return c == DKIM_CANON_RELAXED ? "relaxed" : "simple";
}

const char *
dkim_alg_str(enum dkim_alg a)
{
	switch (a) {
	case DKIM_ALG_RSA_SHA256:	return "rsa-sha256";
	case DKIM_ALG_ED25519_SHA256:	return "ed25519-sha256";
	case DKIM_ALG_RSA_SHA1:		return "rsa-sha1";
	}
	return "unknown";
}

/* Algorithm names are compared case-insensitively, as dkimpy and
 * Mail::DKIM do; RFC 6376 does not make a= case-sensitive in practice. */
bool
dkim_alg_parse(const char *p, size_t n, enum dkim_alg *out)
{
	static const struct {
		const char *name;
		enum dkim_alg alg;
	} tab[] = {
		{ "rsa-sha256", DKIM_ALG_RSA_SHA256 },
		{ "ed25519-sha256", DKIM_ALG_ED25519_SHA256 },
		{ "rsa-sha1", DKIM_ALG_RSA_SHA1 },
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (strlen(tab[i].name) == n &&
		    strncasecmp(tab[i].name, p, n) == 0) {
			*out = tab[i].alg;
			return true;
		}
	}
	return false;
}

enum dkim_alg
dkim_alg_for_key(EVP_PKEY *key)
{
	return EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ?
	    DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256;
}

/*
 * The digests, fetched from the provider once. OpenSSL 3 looks the
 * algorithm up again on every EVP_DigestInit_ex given EVP_sha256(), which
 * costs as much as hashing a short header block; a fetched EVP_MD skips
 * that. If a fetch fails, the built-in handles still work.
 */
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static const EVP_MD *md_sha1, *md_sha256;

static void
md_fetch(void)
{
	EVP_MD *s1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	EVP_MD *s256 = EVP_MD_fetch(NULL, "SHA256", NULL);

	md_sha1 = s1 ? s1 : EVP_sha1();
	md_sha256 = s256 ? s256 : EVP_sha256();
}

const EVP_MD *
dkim_alg_md(enum dkim_alg a)
{
	pthread_once(&md_once, md_fetch);
	return a == DKIM_ALG_RSA_SHA1 ? md_sha1 : md_sha256;
}
