/*
 * key.c - DKIM key records (RFC 6376 §3.6.1, RFC 8463 §4) and fetching
 * them through the caller's lookup callback.
 *
 * Untrusted input: TXT data from DNS. The record goes through the shared
 * tag-list parser; the key bytes go to OpenSSL's DER decoders only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509.h>

#include "dkim.h"
#include "dkim_internal.h"

static EVP_PKEY *
decode_pubkey(enum dkim_keytype type, const unsigned char *der, size_t len)
{
	const unsigned char *q = der;
	EVP_PKEY *pk;

	if (type == DKIM_KEY_ED25519) {
		/* RFC 8463 §4: p= is the raw 32-byte public key. */
		if (len == 32)
			return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
			    NULL, der, len);
		pk = d2i_PUBKEY(NULL, &q, (long)len);
		if (pk && (EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519 ||
		    q != der + len)) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
		return pk;
	}
	/* RFC 6376 says SubjectPublicKeyInfo; some publish the bare PKCS#1
	 * RSAPublicKey, which OpenDKIM and dkimpy also accept. */
	pk = d2i_PUBKEY(NULL, &q, (long)len);
	if (pk && (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA ||
	    q != der + len)) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	if (pk == NULL) {
		q = der;
		pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)len);
		if (pk && q != der + len) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
	}
	return pk;
}

enum dkim_status
dkim_key_parse(const char *p, size_t len, struct dkim_key **out, char *why,
    size_t whylen)
{
	struct dkim_taglist tl;
	const struct dkim_tag *t;
	struct dkim_key *k;
	unsigned char *der;
	size_t derlen;
	enum dkim_status st;

	*out = NULL;
	if ((st = dkim_tags_parse(p, len, &tl, why, whylen)) != DKIM_OK)
		return st;
	if ((t = dkim_tags_get(&tl, "v")) != NULL) {
		if (t != &tl.tags[0]) {
			dkim_whyf(why, whylen, "v= is not the first tag");
			return DKIM_E_SYNTAX;
		}
		if (t->value_len != 5 || memcmp(t->value, "DKIM1", 5) != 0) {
			dkim_whyf(why, whylen, "v= is not DKIM1");
			return DKIM_E_SYNTAX;
		}
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return DKIM_E_NOMEM;
	k->type = DKIM_KEY_RSA;
	if ((t = dkim_tags_get(&tl, "k")) != NULL) {
		if (t->value_len == 3 && strncasecmp(t->value, "rsa", 3) == 0)
			k->type = DKIM_KEY_RSA;
		else if (t->value_len == 7 &&
		    strncasecmp(t->value, "ed25519", 7) == 0)
			k->type = DKIM_KEY_ED25519;
		else {
			dkim_whyf(why, whylen, "unknown key type k=%.*s",
			    (int)(t->value_len > 16 ? 16 : t->value_len),
			    t->value);
			goto syntax;
		}
	}
	k->allow_sha256 = k->allow_sha1 = true;
	if ((t = dkim_tags_get(&tl, "h")) != NULL) {
		k->allow_sha256 = dkim_list_has(t->value, t->value_len, "sha256");
		k->allow_sha1 = dkim_list_has(t->value, t->value_len, "sha1");
	}
	k->email_ok = true;
	if ((t = dkim_tags_get(&tl, "s")) != NULL)
		k->email_ok = dkim_list_has(t->value, t->value_len, "*") ||
		    dkim_list_has(t->value, t->value_len, "email");
	if ((t = dkim_tags_get(&tl, "t")) != NULL) {
		k->testing = dkim_list_has(t->value, t->value_len, "y");
		k->strict = dkim_list_has(t->value, t->value_len, "s");
	}
	if ((t = dkim_tags_get(&tl, "p")) == NULL) {
		dkim_whyf(why, whylen, "missing tag p=");
		goto syntax;
	}
	if (t->value_len == 0) {
		k->revoked = true;
		*out = k;
		return DKIM_OK;
	}
	if ((der = dkim_b64_decode(t->value, t->value_len, &derlen)) == NULL) {
		dkim_whyf(why, whylen, "bad base64 in p=");
		goto syntax;
	}
	k->pkey = decode_pubkey(k->type, der, derlen);
	free(der);
	if (k->pkey == NULL) {
		dkim_whyf(why, whylen, "p= is not a valid %s public key",
		    k->type == DKIM_KEY_RSA ? "rsa" : "ed25519");
		goto syntax;
	}
	k->bits = (unsigned)EVP_PKEY_get_bits(k->pkey);
	*out = k;
	return DKIM_OK;
syntax:
	dkim_key_free(k);
	return DKIM_E_SYNTAX;
}

void
dkim_key_free(struct dkim_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

struct keycache_entry {
	char *rec;		/* owned: the record text */
	size_t len;
	struct dkim_key key;	/* owns one reference to key.pkey */
};

struct dkim_keycache {
	struct keycache_entry *e;
	size_t n, max, next;	/* next: the slot replaced when full */
};

struct dkim_keycache *
dkim_keycache_new(size_t max_entries)
{
	struct dkim_keycache *kc = calloc(1, sizeof(*kc));

	if (kc == NULL)
		return NULL;
	kc->max = max_entries ? max_entries : 64;
	if ((kc->e = calloc(kc->max, sizeof(*kc->e))) == NULL) {
		free(kc);
		return NULL;
	}
	return kc;
}

void
dkim_keycache_free(struct dkim_keycache *kc)
{
	size_t i;

	if (kc == NULL)
		return;
	for (i = 0; i < kc->n; i++) {
		free(kc->e[i].rec);
		EVP_PKEY_free(kc->e[i].key.pkey);
	}
	free(kc->e);
	free(kc);
}

/* key_copy - a caller-owned copy sharing the EVP_PKEY by reference. */
static struct dkim_key *
key_copy(const struct dkim_key *k)
{
	struct dkim_key *c = malloc(sizeof(*c));

	if (c == NULL)
		return NULL;
	*c = *k;
	if (c->pkey && !EVP_PKEY_up_ref(c->pkey)) {
		free(c);
		return NULL;
	}
	return c;
}

/* parse_cached - dkim_key_parse through the cache. */
static enum dkim_status
parse_cached(struct dkim_keycache *kc, const char *rec, size_t len,
    struct dkim_key **out, char *why, size_t whylen)
{
	struct keycache_entry *slot;
	enum dkim_status st;
	char *copy;
	size_t i;

	if (kc == NULL)
		return dkim_key_parse(rec, len, out, why, whylen);
	for (i = 0; i < kc->n; i++) {
		if (kc->e[i].rec && kc->e[i].len == len &&
		    memcmp(kc->e[i].rec, rec, len) == 0)
			return (*out = key_copy(&kc->e[i].key)) ? DKIM_OK :
			    DKIM_E_NOMEM;
	}
	if ((st = dkim_key_parse(rec, len, out, why, whylen)) != DKIM_OK)
		return st;
	if ((copy = dkim_strndup(rec, len)) == NULL)
		return DKIM_OK;		/* not cached; the key is still good */
	if (kc->n < kc->max) {
		slot = &kc->e[kc->n++];
	} else {
		slot = &kc->e[kc->next];
		kc->next = (kc->next + 1) % kc->max;
		free(slot->rec);
		EVP_PKEY_free(slot->key.pkey);
	}
	slot->rec = copy;
	slot->len = len;
	slot->key = **out;
	if (slot->key.pkey && !EVP_PKEY_up_ref(slot->key.pkey)) {
		free(slot->rec);
		memset(slot, 0, sizeof(*slot));	/* an empty slot never matches */
	}
	return DKIM_OK;
}

struct dkim_key *
dkim_key_fetch(dkim_lookup_fn fn, void *arg, const char *selector,
    const char *domain, enum dkim_result *res, char *why, size_t whylen)
{
	return dkim_key_fetch_cached(NULL, fn, arg, selector, domain, res,
	    why, whylen);
}

struct dkim_key *
dkim_key_fetch_cached(struct dkim_keycache *kc, dkim_lookup_fn fn, void *arg,
    const char *selector, const char *domain, enum dkim_result *res,
    char *why, size_t whylen)
{
	char qname[512], first[DKIM_WHY_MAX] = "";
	struct dkim_txt *txt;
	struct dkim_key *key = NULL;
	enum dkim_lookup_rc rc;
	size_t i;
	int n;

	*res = DKIM_RES_PERMERROR;
	n = snprintf(qname, sizeof(qname), "%s._domainkey.%s", selector,
	    domain);
	if (n < 0 || n > 253) {
		dkim_whyf(why, whylen, "no key for signature (name too long)");
		return NULL;
	}
	if (fn == NULL) {
		*res = DKIM_RES_TEMPERROR;
		dkim_whyf(why, whylen, "DNS temporary failure (no resolver)");
		return NULL;
	}
	if ((txt = dkim_txt_new()) == NULL) {
		*res = DKIM_RES_TEMPERROR;
		dkim_whyf(why, whylen, "out of memory");
		return NULL;
	}
	rc = fn(arg, qname, txt);
	switch (rc) {
	case DKIM_LOOKUP_OK:
		break;
	case DKIM_LOOKUP_TEMPFAIL:
		*res = DKIM_RES_TEMPERROR;
		dkim_whyf(why, whylen, "DNS temporary failure");
		goto out;
	case DKIM_LOOKUP_NOTFOUND:
		dkim_whyf(why, whylen, "no key for signature");
		goto out;
	case DKIM_LOOKUP_PERMFAIL:
	default:
		dkim_whyf(why, whylen, "no key for signature (DNS error)");
		goto out;
	}
	if (dkim_txt_count(txt) == 0) {
		dkim_whyf(why, whylen, "no key for signature");
		goto out;
	}
	/* §3.6.2.2: with several records, use the first one that parses. */
	for (i = 0; i < dkim_txt_count(txt) && key == NULL; i++) {
		char detail[DKIM_WHY_MAX] = "";
		const char *rec;
		size_t len;

		if ((rec = dkim_txt_get(txt, i, &len)) == NULL)
			continue;
		if (parse_cached(kc, rec, len, &key, detail,
		    sizeof(detail)) != DKIM_OK && first[0] == '\0')
			snprintf(first, sizeof(first), "%s", detail);
	}
	if (key == NULL)
		dkim_whyf(why, whylen, "bad key record syntax (%s)",
		    first[0] ? first : "record too large");
out:
	dkim_txt_free(txt);
	return key;
}
