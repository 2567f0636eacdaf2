/*
 * sign.c - DKIM signing (RFC 6376 §5, RFC 8463): rsa-sha256 and
 * ed25519-sha256, the default header list with From oversigned, t=,
 * optional x= and l=, and a field folded deterministically at 78 columns.
 *
 * The field is folded first with an empty b=; that exact text is what is
 * hashed, and the signature is then appended after "b=" without touching
 * a byte before it, so simple header canonicalization holds too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim.h"
#include "dkim_internal.h"

const char *const dkim_default_headers[] = {
	"from", "reply-to", "subject", "date", "to", "cc", "message-id",
	"in-reply-to", "references", "mime-version", "content-type",
	"content-transfer-encoding", "content-id", "content-description",
	"resent-date", "resent-from", "resent-to", "resent-cc",
	"resent-message-id", "list-id", "list-help", "list-unsubscribe",
	"list-unsubscribe-post", "list-subscribe", "list-post", "list-owner",
	"list-archive", "sender", NULL,
};

/* The AMS default (RFC 8617 §4.1.2): what a list or forwarder changes or
 * must vouch for, DKIM-Signature included; never ARC fields or A-R. */
static const char *const ams_default_headers[] = {
	"from", "to", "cc", "subject", "date", "message-id", "reply-to",
	"in-reply-to", "references", "mime-version", "content-type",
	"content-transfer-encoding", "list-id", "list-help",
	"list-unsubscribe", "list-unsubscribe-post", "list-subscribe",
	"list-post", "list-owner", "list-archive", "sender", "dkim-signature",
	NULL,
};

static bool
arc_or_ar(const char *name)
{
	return strcasecmp(name, "arc-seal") == 0 ||
	    strcasecmp(name, "arc-message-signature") == 0 ||
	    strcasecmp(name, "arc-authentication-results") == 0 ||
	    strcasecmp(name, "authentication-results") == 0;
}

void
dkim_sign_opts_init(struct dkim_sign_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->alg = DKIM_ALG_RSA_SHA256;
	o->hcanon = DKIM_CANON_RELAXED;
	o->bcanon = DKIM_CANON_RELAXED;
	o->now = -1;
}

/* header_list - h= as one colon-joined string, plus the names split. */
static bool
header_list(const struct dkim_msg *msg, const struct dkim_sign_opts *o,
    unsigned instance, struct dkim_buf *hl, char ***names, size_t *nnames)
{
	const char *const *defaults = instance ? ams_default_headers :
	    dkim_default_headers;
	size_t cap = 0, j, k;
	char **v = NULL;

	*names = NULL;
	*nnames = 0;
#define ADD(s) do { \
	if (*nnames == cap) { \
		char **nv; \
		cap = cap ? cap * 2 : 32; \
		if ((nv = realloc(v, cap * sizeof(*v))) == NULL) \
			goto nomem; \
		v = nv; \
	} \
	if ((v[*nnames] = dkim_strndup((s), strlen(s))) == NULL) \
		goto nomem; \
	(*nnames)++; \
} while (0)
	if (o->headers) {
		for (k = 0; k < o->nheaders; k++)
			ADD(o->headers[k]);
	} else {
		for (k = 0; defaults[k]; k++) {
			size_t dl = strlen(defaults[k]);

			for (j = 0; j < msg->nfields; j++)
				if (dkim_field_is_n(&msg->fields[j],
				    defaults[k], dl))
					ADD(defaults[k]);
		}
		ADD("from");	/* oversigned: one more than there are */
	}
#undef ADD
	*names = v;
	for (k = 0; k < *nnames; k++) {
		if (k)
			dkim_buf_addc(hl, ':');
		dkim_buf_adds(hl, v[k]);
	}
	return !hl->failed;
nomem:
	for (k = 0; k < *nnames; k++)
		free(v[k]);
	free(v);
	*names = NULL;
	*nnames = 0;
	return false;
}

static bool
valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126 ||
		    s[i] == ':' || s[i] == ';')
			return false;
	return true;
}

/*
 * sign_field - the DKIM-Signature (instance 0) or the
 * ARC-Message-Signature of ARC instance `instance`: the same tags but
 * for v= and i=, and the same hashing (RFC 8617 §4.1.2).
 */
static enum dkim_status
sign_field(const struct dkim_msg *msg, const struct dkim_sign_opts *o,
    unsigned instance, struct dkim_buf *out, char *why, size_t whylen)
{
	struct dkim_buf hl, field;
	char **names = NULL;
	size_t nnames = 0, k, ntags = 0;
	char *tags[12], *bh64 = NULL, *b64 = NULL;
	unsigned char bh[EVP_MAX_MD_SIZE], dg[EVP_MAX_MD_SIZE], *sig = NULL;
	unsigned int bhlen, dglen;
	size_t siglen;
	uint64_t canon_len;
	bool from = false;
	int base;
	enum dkim_status st;

	if (msg == NULL || o == NULL || o->key == NULL || o->domain == NULL ||
	    o->selector == NULL) {
		dkim_whyf(why, whylen, "signing needs a key, a domain and a "
		    "selector");
		return DKIM_E_ARG;
	}
	/* Never emit a field our own verifier would refuse to parse. */
	if (!dkim_valid_domain(o->domain, strlen(o->domain)) ||
	    strchr(o->domain, '.') == NULL) {
		dkim_whyf(why, whylen, "bad signing domain '%.64s'", o->domain);
		return DKIM_E_ARG;
	}
	if (!dkim_valid_domain(o->selector, strlen(o->selector))) {
		dkim_whyf(why, whylen, "bad selector '%.64s'", o->selector);
		return DKIM_E_ARG;
	}
	base = EVP_PKEY_get_base_id(o->key);
	if (o->alg == DKIM_ALG_RSA_SHA1) {
		dkim_whyf(why, whylen, "rsa-sha1 is not used for signing "
		    "(RFC 8301)");
		return DKIM_E_ARG;
	}
	if ((o->alg == DKIM_ALG_RSA_SHA256 && base != EVP_PKEY_RSA) ||
	    (o->alg == DKIM_ALG_ED25519_SHA256 && base != EVP_PKEY_ED25519)) {
		dkim_whyf(why, whylen, "the key does not fit %s",
		    dkim_alg_str(o->alg));
		return DKIM_E_KEY;
	}
	if (base == EVP_PKEY_RSA && EVP_PKEY_get_bits(o->key) < 1024) {
		dkim_whyf(why, whylen, "key too short (%d bits)",
		    EVP_PKEY_get_bits(o->key));
		return DKIM_E_KEY;
	}
	if (o->identity) {
		const char *at = strrchr(o->identity, '@');

		/* i= is dkim-quoted-printable (§2.11): refuse anything that
		 * would need encoding rather than emit it raw. */
		for (k = 0; o->identity[k]; k++) {
			unsigned char c = (unsigned char)o->identity[k];

			if (c < 0x21 || c > 0x7e || c == ';' || c == '=') {
				dkim_whyf(why, whylen, "bad character in "
				    "i= identity");
				return DKIM_E_ARG;
			}
		}

		if (at == NULL || !dkim_valid_domain(at + 1, strlen(at + 1)) ||
		    !dkim_domain_within(at + 1, strlen(at + 1),
		    o->domain, strlen(o->domain))) {
			dkim_whyf(why, whylen, "i= not within d=");
			return DKIM_E_ARG;
		}
	}
	if (o->headers)
		for (k = 0; k < o->nheaders; k++) {
			if (!valid_name(o->headers[k])) {
				dkim_whyf(why, whylen, "bad header name in "
				    "the list to sign");
				return DKIM_E_ARG;
			}
			if (strcasecmp(o->headers[k], "from") == 0)
				from = true;
			if (instance && arc_or_ar(o->headers[k])) {
				dkim_whyf(why, whylen, "an ARC-Message-"
				    "Signature never signs %s (RFC 8617 "
				    "§4.1.2)", o->headers[k]);
				return DKIM_E_ARG;
			}
		}
	if (o->headers && !from) {
		dkim_whyf(why, whylen, "From must be signed (RFC 6376 §5.4)");
		return DKIM_E_ARG;
	}

	dkim_buf_init(&hl, 0);
	dkim_buf_init(&field, 0);
	memset(tags, 0, sizeof(tags));
	st = DKIM_E_NOMEM;
	if (!header_list(msg, o, instance, &hl, &names, &nnames))
		goto out;
	st = dkim_body_hash(o->bcanon, dkim_alg_md(o->alg), msg->body,
	    msg->body_len, -1, bh, &bhlen, &canon_len);
	if (st != DKIM_OK)
		goto out;
	st = DKIM_E_NOMEM;
	if ((bh64 = dkim_b64_encode(bh, bhlen)) == NULL)
		goto out;

#define TAG(...) do { struct dkim_buf tb; dkim_buf_init(&tb, 0); \
	if (!dkim_buf_addf(&tb, __VA_ARGS__)) { dkim_buf_free(&tb); \
	goto out; } tags[ntags++] = dkim_buf_take(&tb, NULL); } while (0)
	if (instance)
		TAG("i=%u", instance);
	else
		TAG("v=1");
	TAG("a=%s", dkim_alg_str(o->alg));
	TAG("c=%s/%s", dkim_canon_str(o->hcanon), dkim_canon_str(o->bcanon));
	TAG("d=%s", o->domain);
	TAG("s=%s", o->selector);
	if (o->now >= 0)
		TAG("t=%" PRId64, o->now);
	if (o->now >= 0 && o->expire > 0)
		TAG("x=%" PRId64, o->now + o->expire);
	if (o->identity && !instance)
		TAG("i=%s", o->identity);
	if (o->body_length)
		TAG("l=%" PRIu64, canon_len);
	TAG("h=%s", hl.p);
	TAG("bh=%s", bh64);
	TAG("b=");
#undef TAG
	if (!dkim_fold_field(&field, instance ? "ARC-Message-Signature" :
	    "DKIM-Signature",
	    (const char *const *)tags, ntags))
		goto out;
	/* Hash the field exactly as folded, without its final CRLF. */
	st = dkim_header_digest(msg, names, nnames, -1, o->hcanon, field.p,
	    field.len - 2, dkim_alg_md(o->alg), dg, &dglen);
	if (st != DKIM_OK)
		goto out;
	if ((st = dkim_digest_sign(o->key, o->alg, dg, dglen, &sig,
	    &siglen)) != DKIM_OK) {
		dkim_whyf(why, whylen, "the key could not sign");
		goto out;
	}
	st = DKIM_E_NOMEM;
	if ((b64 = dkim_b64_encode(sig, siglen)) == NULL)
		goto out;
	field.len -= 2;
	if (!dkim_fold_append(&field, b64) ||
	    !dkim_buf_add(out, field.p, field.len))
		goto out;
	st = DKIM_OK;
out:
	if (st == DKIM_E_NOMEM)
		dkim_whyf(why, whylen, "out of memory");
	for (k = 0; k < ntags; k++)
		free(tags[k]);
	for (k = 0; k < nnames; k++)
		free(names[k]);
	free(names);
	free(bh64);
	free(b64);
	free(sig);
	dkim_buf_free(&hl);
	dkim_buf_free(&field);
	return st;
}

enum dkim_status
dkim_sign(const struct dkim_msg *msg, const struct dkim_sign_opts *o,
    struct dkim_buf *out, char *why, size_t whylen)
{
	return sign_field(msg, o, 0, out, why, whylen);
}

enum dkim_status
dkim_sign_ams(const struct dkim_msg *msg, const struct dkim_sign_opts *o,
    unsigned instance, struct dkim_buf *out, char *why, size_t whylen)
{
	if (instance == 0) {
		dkim_whyf(why, whylen, "ARC instances start at 1");
		return DKIM_E_ARG;
	}
	return sign_field(msg, o, instance, out, why, whylen);
}
