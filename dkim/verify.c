/*
 * verify.c - DKIM verification (RFC 6376 §6): every DKIM-Signature up to
 * a limit gets an RFC 8601 result and the precise reason a person can act
 * on.
 *
 * Untrusted input: the message and the key records the callback returns.
 * The checks run in the order of §6.1: the signature field, then the key,
 * then the body hash, then the signature itself; the first that fails
 * decides the reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dkim.h"
#include "dkim_internal.h"

void
dkim_verify_opts_init(struct dkim_verify_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_signatures = 10;
	o->now = (int64_t)time(NULL);
	o->clock_skew = 300;
	o->min_rsa_bits = 1024;
}

void
dkim_select_headers(const struct dkim_msg *msg, char *const *h, size_t nh,
    long exclude, long *idx)
{
	bool *used = calloc(msg->nfields ? msg->nfields : 1, sizeof(bool));
	size_t k;

	for (k = 0; k < nh; k++) {
		size_t j = msg->nfields, hl = strlen(h[k]);

		idx[k] = -1;
		if (used == NULL)
			continue;
		/* §5.4.2: instances are taken from the bottom up. */
		while (j-- > 0) {
			if (used[j] || (long)j == exclude ||
			    !dkim_field_is_n(&msg->fields[j], h[k], hl))
				continue;
			used[j] = true;
			idx[k] = (long)j;
			break;
		}
	}
	free(used);
}

bool
dkim_sig_field_stripped(const struct dkim_field *f, const struct dkim_sig *sig,
    struct dkim_buf *out)
{
	size_t end = sig->b_end;

	if (sig->b_off > f->raw_len || end > f->raw_len || sig->b_off > end)
		return false;
	while (end < f->raw_len && (f->raw[end] == ' ' ||
	    f->raw[end] == '\t' || f->raw[end] == '\r' || f->raw[end] == '\n'))
		end++;
	dkim_buf_add(out, f->raw, sig->b_off);
	dkim_buf_add(out, f->raw + end, f->raw_len - end);
	return !out->failed;
}

enum dkim_status
dkim_header_digest(const struct dkim_msg *msg, char *const *h, size_t nh,
    long exclude, enum dkim_canon c, const char *sigraw, size_t siglen,
    const EVP_MD *md, unsigned char *dg, unsigned int *dglen)
{
	struct dkim_buf in;
	long *idx;
	size_t k;
	enum dkim_status st = DKIM_OK;

	if ((idx = calloc(nh ? nh : 1, sizeof(long))) == NULL)
		return DKIM_E_NOMEM;
	dkim_select_headers(msg, h, nh, exclude, idx);
	dkim_buf_init(&in, 0);
	for (k = 0; k < nh; k++) {
		const struct dkim_field *f;

		if (idx[k] < 0)
			continue;
		f = &msg->fields[idx[k]];
		dkim_canon_header(c, f->raw, f->raw_len, true, &in);
	}
	dkim_canon_header(c, sigraw, siglen, false, &in);
	if (in.failed)
		st = DKIM_E_NOMEM;
	else if (!EVP_Digest(in.p, in.len, dg, dglen, md, NULL))
		st = DKIM_E_CRYPTO;
	dkim_buf_free(&in);
	free(idx);
	return st;
}

/* Body hashes already computed for this message, by canon and length. */
struct dkim_bhcache {
	struct {
		enum dkim_canon c;
		enum dkim_alg alg;
		int64_t limit;
		unsigned char dg[EVP_MAX_MD_SIZE];
		unsigned int dglen;
		uint64_t canon_len;
	} e[8];
	size_t n;
};

static enum dkim_status
body_digest(const struct dkim_msg *msg, struct dkim_bhcache *bc,
    const struct dkim_sig *sig, const unsigned char **dg, unsigned int *dglen,
    uint64_t *canon_len)
{
	int64_t limit = sig->has_l ? (int64_t)sig->l : -1;
	unsigned char tmp[EVP_MAX_MD_SIZE];
	enum dkim_status st;
	size_t k;

	for (k = 0; k < bc->n; k++) {
		if (bc->e[k].c == sig->bcanon && bc->e[k].limit == limit &&
		    dkim_alg_md(bc->e[k].alg) == dkim_alg_md(sig->alg)) {
			*dg = bc->e[k].dg;
			*dglen = bc->e[k].dglen;
			*canon_len = bc->e[k].canon_len;
			return DKIM_OK;
		}
	}
	k = bc->n < 8 ? bc->n++ : 7;
	st = dkim_body_hash(sig->bcanon, dkim_alg_md(sig->alg), msg->body,
	    msg->body_len, limit, tmp, &bc->e[k].dglen, &bc->e[k].canon_len);
	if (st != DKIM_OK)
		return st;
	memcpy(bc->e[k].dg, tmp, bc->e[k].dglen);
	bc->e[k].c = sig->bcanon;
	bc->e[k].alg = sig->alg;
	bc->e[k].limit = limit;
	*dg = bc->e[k].dg;
	*dglen = bc->e[k].dglen;
	*canon_len = bc->e[k].canon_len;
	return DKIM_OK;
}

#define RESULT(res, ...) do { r->result = (res); \
	snprintf(r->reason, sizeof(r->reason), __VA_ARGS__); goto out; } \
	while (0)

bool
dkim_key_acceptable(const struct dkim_key *key, const struct dkim_sig *sig,
    const struct dkim_verify_opts *o, enum dkim_result *res, char *why,
    size_t whylen)
{
	*res = DKIM_RES_PERMERROR;
	if (key->revoked) {
		*res = DKIM_RES_FAIL;
		dkim_whyf(why, whylen, "key revoked");
		return false;
	}
	if ((sig->alg == DKIM_ALG_ED25519_SHA256) !=
	    (key->type == DKIM_KEY_ED25519)) {
		dkim_whyf(why, whylen, "key type k=%s does not match a=%s",
		    key->type == DKIM_KEY_ED25519 ? "ed25519" : "rsa",
		    dkim_alg_str(sig->alg));
		return false;
	}
	if (!key->allow_sha256) {
		dkim_whyf(why, whylen, "key h= does not allow sha256");
		return false;
	}
	if (!key->email_ok) {
		dkim_whyf(why, whylen, "key s= does not allow email");
		return false;
	}
	if (key->strict && sig->kind == DKIM_SIG_DKIM) {
		const char *at = strrchr(sig->i, '@');

		if (at == NULL || strcasecmp(at + 1, sig->d) != 0) {
			dkim_whyf(why, whylen,
			    "i= domain must equal d= (key t=s)");
			return false;
		}
	}
	if (key->type == DKIM_KEY_RSA && key->bits < o->min_rsa_bits) {
		*res = DKIM_RES_FAIL;
		dkim_whyf(why, whylen, "key too short (%u bits)", key->bits);
		return false;
	}
	return true;
}

struct dkim_bhcache *
dkim_bhcache_new(void)
{
	return calloc(1, sizeof(struct dkim_bhcache));
}

void
dkim_bhcache_free(struct dkim_bhcache *bc)
{
	free(bc);
}

enum dkim_status
dkim_verify_sig(const struct dkim_msg *msg, const struct dkim_verify_opts *o,
    struct dkim_bhcache *cache, struct dkim_sigresult *r)
{
	const struct dkim_sig *sig = r->sig;
	const struct dkim_field *f = &msg->fields[r->field_index];
	struct dkim_bhcache local;
	struct dkim_key *key = NULL;
	enum dkim_result kres;
	const unsigned char *bdg;
	unsigned char hdg[EVP_MAX_MD_SIZE];
	unsigned int bdglen, hdglen;
	uint64_t canon_len;
	struct dkim_buf stripped;
	enum dkim_status st = DKIM_OK;
	char why[DKIM_WHY_MAX];

	dkim_buf_init(&stripped, 0);
	if (cache == NULL) {
		local.n = 0;
		cache = &local;
	}
	if (sig->alg == DKIM_ALG_RSA_SHA1)
		RESULT(DKIM_RES_FAIL, "rsa-sha1 not accepted (RFC 8301)");
	if (sig->has_x && o->now > sig->x)
		RESULT(DKIM_RES_FAIL, "signature expired");
	if (sig->has_t && sig->t > o->now + o->clock_skew)
		RESULT(DKIM_RES_FAIL, "signature from the future");

	why[0] = '\0';
	key = dkim_key_fetch_cached(o->keycache, o->lookup, o->lookup_arg,
	    sig->s, sig->d, &kres, why, sizeof(why));
	if (key == NULL)
		RESULT(kres, "%s", why);
	r->testing = key->testing;
	r->key_bits = key->bits;
	if (!dkim_key_acceptable(key, sig, o, &kres, r->reason,
	    sizeof(r->reason))) {
		r->result = kres;
		goto out;
	}

	if ((st = body_digest(msg, cache, sig, &bdg, &bdglen, &canon_len)) !=
	    DKIM_OK)
		goto out;
	if (sig->has_l && sig->l > canon_len)
		RESULT(DKIM_RES_FAIL, "l= exceeds body length (l=%llu, body "
		    "%llu)", (unsigned long long)sig->l,
		    (unsigned long long)canon_len);
	if (bdglen != sig->bh_len || memcmp(bdg, sig->bh, bdglen) != 0)
		RESULT(DKIM_RES_FAIL, "body hash did not verify");

	if (!dkim_sig_field_stripped(f, sig, &stripped)) {
		st = DKIM_E_NOMEM;
		goto out;
	}
	st = dkim_header_digest(msg, sig->h, sig->nh, (long)r->field_index,
	    sig->hcanon, stripped.p, stripped.len, dkim_alg_md(sig->alg), hdg,
	    &hdglen);
	if (st != DKIM_OK)
		goto out;
	if (!dkim_digest_verify(key->pkey, sig->alg, hdg, hdglen, sig->b,
	    sig->b_len))
		RESULT(DKIM_RES_FAIL, "signature did not verify");
	RESULT(DKIM_RES_PASS, "signature verified");
out:
	dkim_buf_free(&stripped);
	dkim_key_free(key);
	return st;
}

/* copy_tag - the raw value of a tag for reporting, "" when absent. */
static char *
copy_tag(const struct dkim_taglist *tl, bool ok, const char *name,
    bool strip)
{
	const struct dkim_tag *t = ok ? dkim_tags_get(tl, name) : NULL;
	char *s;
	size_t i, o = 0;

	if (t == NULL)
		return dkim_strndup("", 0);
	if ((s = malloc(t->value_len + 1)) == NULL)
		return NULL;
	for (i = 0; i < t->value_len; i++) {
		char c = t->value[i];

		if (strip && (c == ' ' || c == '\t' || c == '\r' || c == '\n'))
			continue;
		s[o++] = c;
	}
	s[o] = '\0';
	return s;
}

enum dkim_status
dkim_verify(const struct dkim_msg *msg, const struct dkim_verify_opts *o,
    struct dkim_verification **out)
{
	struct dkim_verification *v;
	struct dkim_bhcache cache;
	size_t j, nsig = 0;
	enum dkim_status st = DKIM_OK;

	*out = NULL;
	if (msg == NULL || o == NULL)
		return DKIM_E_ARG;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return DKIM_E_NOMEM;
	for (j = 0; j < msg->nfields; j++)
		if (dkim_field_is(&msg->fields[j], "DKIM-Signature"))
			nsig++;
	if (nsig > o->max_signatures) {
		v->ignored = nsig - o->max_signatures;
		nsig = o->max_signatures;
	}
	if (nsig && (v->r = calloc(nsig, sizeof(*v->r))) == NULL) {
		free(v);
		return DKIM_E_NOMEM;
	}
	cache.n = 0;
	for (j = 0; j < msg->nfields && v->n < nsig; j++) {
		const struct dkim_field *f = &msg->fields[j];
		struct dkim_sigresult *r;
		struct dkim_taglist tl;
		bool tags_ok;
		char why[DKIM_WHY_MAX] = "";

		if (!dkim_field_is(f, "DKIM-Signature"))
			continue;
		r = &v->r[v->n++];
		r->field_index = j;
		tags_ok = dkim_tags_parse(f->raw + f->value_off,
		    f->raw_len - f->value_off, &tl, why, sizeof(why)) ==
		    DKIM_OK;
		r->d = copy_tag(&tl, tags_ok, "d", false);
		r->s = copy_tag(&tl, tags_ok, "s", false);
		r->a = copy_tag(&tl, tags_ok, "a", false);
		r->b = copy_tag(&tl, tags_ok, "b", true);
		r->i = copy_tag(&tl, tags_ok, "i", false);
		if (!r->d || !r->s || !r->a || !r->b || !r->i) {
			st = DKIM_E_NOMEM;
			break;
		}
		st = tags_ok ? dkim_sig_from_tags(f, DKIM_SIG_DKIM, &tl,
		    &r->sig, why, sizeof(why)) : DKIM_E_SYNTAX;
		if (st == DKIM_E_NOMEM)
			break;
		if (st != DKIM_OK) {
			st = DKIM_OK;
			r->result = DKIM_RES_PERMERROR;
			snprintf(r->reason, sizeof(r->reason), "%s", why);
			continue;
		}
		if (r->sig->i && r->i[0] == '\0') {
			free(r->i);
			if ((r->i = dkim_strndup(r->sig->i,
			    strlen(r->sig->i))) == NULL) {
				st = DKIM_E_NOMEM;
				break;
			}
		}
		if ((st = dkim_verify_sig(msg, o, &cache, r)) != DKIM_OK)
			break;
	}
	if (st != DKIM_OK) {
		dkim_verification_free(v);
		return st;
	}
	*out = v;
	return DKIM_OK;
}

void
dkim_verification_free(struct dkim_verification *v)
{
	size_t k;

	if (v == NULL)
		return;
	for (k = 0; k < v->n; k++) {
		free(v->r[k].d);
		free(v->r[k].s);
		free(v->r[k].a);
		free(v->r[k].b);
		free(v->r[k].i);
		dkim_sig_free(v->r[k].sig);
	}
	free(v->r);
	free(v);
}
