/*
 * fuzz_sig.c - libFuzzer target for the tag-list, signature and key
 * record parsers (dkim/tags.c, dkim/sig.c, dkim/key.c, dkim/b64.c).
 *
 * The first byte of an input says how the signature field is named (with
 * or without WSP before the colon); the rest is one text, read as a tag
 * list, as the value of a DKIM-Signature, ARC-Message-Signature and
 * ARC-Seal, as a key record, as base64 and as an algorithm name. Besides
 * "no crash, no leak, no overread" (ASan), it traps when a promise of
 * dkim.h breaks:
 *   - dkim_tags_parse fails with a reason; on success every name is
 *     ALPHA *(ALPHA / DIGIT / "_"), unique, every value lies at its
 *     value_off with no FWS at either end and no ';', there are at most
 *     DKIM_MAX_TAGS, and the list written back as "name=value;..." parses
 *     to the same names and values;
 *   - dkim_sig_parse and dkim_sig_from_tags agree, status and result; a
 *     parsed signature has the tags its kind requires with valid values,
 *     b= located in the raw field so that dkim_sig_field_stripped leaves
 *     the field without them, and written back with dkim_fold_field from
 *     its parsed values it parses to the same values;
 *   - dkim_key_parse fails with a reason; a key has a consistent type,
 *     size and revocation, and written back as a record (p= re-encoded
 *     from the parsed key) it parses to an equal key with the same flags;
 *   - what dkim_b64_decode accepts encodes and decodes to the same bytes.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/sig/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509.h>

#include "dkim.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define SIG_TAGS_MAX 16	/* tags a signature is written back with */

static const char *const kind_field[] = { "DKIM-Signature",
    "ARC-Message-Signature", "ARC-Seal" };

static bool
is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* same_tags - two tag lists with equal names and values, in order. */
static bool
same_tags(const struct dkim_taglist *a, const struct dkim_taglist *b)
{
	size_t k;

	if (a->n != b->n)
		return false;
	for (k = 0; k < a->n; k++) {
		const struct dkim_tag *x = &a->tags[k], *y = &b->tags[k];

		if (x->name_len != y->name_len || x->value_len != y->value_len ||
		    memcmp(x->name, y->name, x->name_len) != 0 ||
		    memcmp(x->value, y->value, x->value_len) != 0)
			return false;
	}
	return true;
}

/* check_tags - dkim_tags_parse on (p, n); its result is left in tl. */
static bool
check_tags(const char *p, size_t n, struct dkim_taglist *tl)
{
	struct dkim_taglist back;
	struct dkim_buf w;
	char why[DKIM_WHY_MAX] = "";
	size_t k, j;

	if (dkim_tags_parse(p, n, tl, why, sizeof(why)) != DKIM_OK) {
		CHECK(why[0] != '\0' && strnlen(why, sizeof(why)) < sizeof(why));
		return false;
	}
	CHECK(tl->n <= DKIM_MAX_TAGS);
	dkim_buf_init(&w, 0);
	for (k = 0; k < tl->n; k++) {
		const struct dkim_tag *t = &tl->tags[k];

		CHECK(t->name >= p && t->name + t->name_len <= p + n);
		CHECK(t->name_len > 0 && is_alpha(t->name[0]));
		for (j = 1; j < t->name_len; j++)
			CHECK(is_alpha(t->name[j]) || t->name[j] == '_' ||
			    (t->name[j] >= '0' && t->name[j] <= '9'));
		for (j = 0; j < k; j++)
			CHECK(tl->tags[j].name_len != t->name_len ||
			    memcmp(tl->tags[j].name, t->name,
			    t->name_len) != 0);
		CHECK(t->value == p + t->value_off &&
		    t->value_off + t->value_len <= n);
		CHECK(memchr(t->value, ';', t->value_len) == NULL);
		if (t->value_len > 0)
			CHECK(!is_fws(t->value[0]) &&
			    !is_fws(t->value[t->value_len - 1]));
		dkim_buf_add(&w, t->name, t->name_len);
		dkim_buf_addc(&w, '=');
		dkim_buf_add(&w, t->value, t->value_len);
		dkim_buf_addc(&w, ';');
	}
	CHECK(!w.failed);
	CHECK(dkim_tags_parse(w.p ? w.p : "", w.len, &back, NULL, 0) ==
	    DKIM_OK);
	CHECK(same_tags(tl, &back));
	dkim_buf_free(&w);
	return true;
}

/* same_sig - the parsed values of two signatures (not their offsets);
 * with text, b= as written too (base64 may carry bits that decoding
 * drops, so a re-encoded b= can differ in its last character). */
static bool
same_sig(const struct dkim_sig *a, const struct dkim_sig *b, bool text)
{
	size_t k;

	if (a->kind != b->kind || a->alg != b->alg ||
	    strcmp(a->alg_text, b->alg_text) != 0 || a->hcanon != b->hcanon ||
	    a->bcanon != b->bcanon || strcmp(a->d, b->d) != 0 ||
	    strcmp(a->s, b->s) != 0 || (a->i == NULL) != (b->i == NULL) ||
	    (a->i && strcmp(a->i, b->i) != 0) || a->instance != b->instance ||
	    a->cv != b->cv || a->nh != b->nh || a->b_len != b->b_len ||
	    memcmp(a->b, b->b, a->b_len) != 0 ||
	    (text && strcmp(a->b_text, b->b_text) != 0) || a->bh_len != b->bh_len ||
	    (a->bh_len && memcmp(a->bh, b->bh, a->bh_len) != 0) ||
	    a->has_l != b->has_l || a->l != b->l || a->has_t != b->has_t ||
	    a->t != b->t || a->has_x != b->has_x || a->x != b->x)
		return false;
	for (k = 0; k < a->nh; k++)
		if (strcmp(a->h[k], b->h[k]) != 0)
			return false;
	return true;
}

/* make_field - a field over raw with the name ending at name_len. */
static struct dkim_field
make_field(const char *raw, size_t len, size_t name_len, size_t value_off)
{
	struct dkim_field f;

	memset(&f, 0, sizeof(f));
	f.name = raw;
	f.name_len = name_len;
	f.raw = raw;
	f.raw_len = len;
	f.value_off = value_off;
	return f;
}

/* tag - "name=value" of a formatted value into tags[*n]. */
static void
tag(char **tags, size_t *n, const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 2;

	CHECK(*n < SIG_TAGS_MAX && (tags[*n] = malloc(len)) != NULL);
	snprintf(tags[*n], len, "%s=%s", name, value);
	(*n)++;
}

/* check_refold - s written back by dkim_fold_field parses to s. */
static void
check_refold(const struct dkim_sig *s)
{
	const char *name = kind_field[s->kind];
	char *tags[SIG_TAGS_MAX], num[32], *b64;
	struct dkim_buf out, h;
	struct dkim_field f;
	struct dkim_sig *back = NULL;
	size_t n = 0, k, len;

	dkim_buf_init(&out, 0);
	dkim_buf_init(&h, 0);
	if (s->kind == DKIM_SIG_DKIM)
		tag(tags, &n, "v", "1");
	tag(tags, &n, "a", s->alg_text);
	if (s->kind != DKIM_SIG_DKIM) {
		snprintf(num, sizeof(num), "%u", s->instance);
		tag(tags, &n, "i", num);
	} else if (s->i != NULL) {
		tag(tags, &n, "i", s->i);
	}
	if (s->kind == DKIM_SIG_ARC_SEAL)
		tag(tags, &n, "cv", s->cv == DKIM_CV_PASS ? "pass" :
		    s->cv == DKIM_CV_FAIL ? "fail" : "none");
	else {
		snprintf(num, sizeof(num), "%s/%s", dkim_canon_str(s->hcanon),
		    dkim_canon_str(s->bcanon));
		tag(tags, &n, "c", num);
		for (k = 0; k < s->nh; k++) {
			if (k)
				dkim_buf_addc(&h, ':');
			dkim_buf_adds(&h, s->h[k]);
		}
		CHECK(!h.failed);
		tag(tags, &n, "h", h.p ? h.p : "");
		CHECK((b64 = dkim_b64_encode(s->bh, s->bh_len)) != NULL);
		tag(tags, &n, "bh", b64);
		free(b64);
		if (s->has_l) {
			snprintf(num, sizeof(num), "%llu",
			    (unsigned long long)s->l);
			tag(tags, &n, "l", num);
		}
		if (s->has_x) {
			snprintf(num, sizeof(num), "%lld", (long long)s->x);
			tag(tags, &n, "x", num);
		}
	}
	tag(tags, &n, "d", s->d);
	tag(tags, &n, "s", s->s);
	if (s->has_t) {
		snprintf(num, sizeof(num), "%lld", (long long)s->t);
		tag(tags, &n, "t", num);
	}
	CHECK((b64 = dkim_b64_encode(s->b, s->b_len)) != NULL);
	tag(tags, &n, "b", b64);
	free(b64);

	CHECK(dkim_fold_field(&out, name, (const char *const *)tags, n));
	/* The field ends in CRLF; the model's raw bytes do not. */
	CHECK(out.len > 2 && memcmp(out.p + out.len - 2, "\r\n", 2) == 0);
	len = out.len - 2;
	f = make_field(out.p, len, strlen(name), strlen(name) + 1);
	CHECK(out.p[f.value_off - 1] == ':');
	CHECK(dkim_sig_parse(&f, s->kind, &back, NULL, 0) == DKIM_OK);
	CHECK(same_sig(s, back, false));
	dkim_sig_free(back);
	for (k = 0; k < n; k++)
		free(tags[k]);
	dkim_buf_free(&out);
	dkim_buf_free(&h);
}

/* check_sig - one kind of signature field over the value (v, n). */
static void
check_sig(enum dkim_sig_kind kind, bool wsp, const char *v, size_t n,
    const struct dkim_taglist *tl)
{
	const char *name = kind_field[kind];
	size_t nl = strlen(name), pre = nl + (wsp ? 3 : 1), k;
	char *raw = malloc(pre + n + 1), why[DKIM_WHY_MAX] = "";
	struct dkim_sig *s = NULL, *t = NULL;
	struct dkim_field f;
	struct dkim_buf st;
	enum dkim_status a, b;

	CHECK(raw != NULL);
	memcpy(raw, name, nl);
	memcpy(raw + nl, wsp ? " \t:" : ":", pre - nl);
	if (n)
		memcpy(raw + pre, v, n);
	f = make_field(raw, pre + n, nl, pre);
	a = dkim_sig_parse(&f, kind, &s, why, sizeof(why));
	/* Inputs are small: out of memory can only mean the signature's
	 * single allocation was sized too small. */
	CHECK(a != DKIM_E_NOMEM);
	CHECK(strnlen(why, sizeof(why)) < sizeof(why));
	CHECK((a == DKIM_OK) == (s != NULL));
	if (a != DKIM_OK)
		CHECK(why[0] != '\0');
	if (tl != NULL) {
		b = dkim_sig_from_tags(&f, kind, tl, &t, NULL, 0);
		CHECK(a == b);
		CHECK(a != DKIM_OK || same_sig(s, t, true));
		CHECK(a != DKIM_OK || (s->b_off == t->b_off &&
		    s->b_end == t->b_end));
		dkim_sig_free(t);
	} else {
		CHECK(a == DKIM_E_SYNTAX);
	}
	if (a != DKIM_OK) {
		free(raw);
		return;
	}
	CHECK(s->kind == kind && s->alg_text && s->d && s->s && s->b_text);
	CHECK((unsigned)s->alg <= DKIM_ALG_RSA_SHA1);
	CHECK(s->b_len > 0 && s->b_text[0] != '\0');
	CHECK(kind == DKIM_SIG_ARC_SEAL ? s->nh == 0 && s->bh_len == 0 :
	    s->bh_len > 0);
	CHECK(kind == DKIM_SIG_DKIM ? s->i != NULL && s->instance == 0 :
	    s->instance >= 1 && s->instance <= 9999);
	CHECK(!s->has_x || !s->has_t || s->x > s->t);
	/* b= sits in the value: '=' right before it, its text at the end. */
	CHECK(s->b_off >= f.value_off && s->b_off < s->b_end &&
	    s->b_end <= f.raw_len && raw[s->b_off - 1] == '=');
	CHECK(!is_fws(raw[s->b_end - 1]) && raw[s->b_end - 1] != ';');
	CHECK(s->b_end == f.raw_len || is_fws(raw[s->b_end]) ||
	    raw[s->b_end] == ';');
	dkim_buf_init(&st, 0);
	CHECK(dkim_sig_field_stripped(&f, s, &st));
	CHECK(st.len < f.raw_len && memcmp(st.p, raw, s->b_off) == 0);
	for (k = s->b_end; k < f.raw_len && is_fws(raw[k]); k++)
		;
	CHECK(st.len == s->b_off + f.raw_len - k &&
	    memcmp(st.p + s->b_off, raw + k, f.raw_len - k) == 0);
	dkim_buf_free(&st);
	check_refold(s);
	dkim_sig_free(s);
	free(raw);
}

/* check_key - dkim_key_parse on (p, n) and the record written back. */
static void
check_key(const char *p, size_t n)
{
	struct dkim_key *k = NULL, *back = NULL;
	struct dkim_buf rec;
	char why[DKIM_WHY_MAX] = "", *b64 = NULL;
	unsigned char *der = NULL;
	size_t derlen = 0;
	int len;

	if (dkim_key_parse(p, n, &k, why, sizeof(why)) != DKIM_OK) {
		CHECK(k == NULL && why[0] != '\0' &&
		    strnlen(why, sizeof(why)) < sizeof(why));
		return;
	}
	CHECK(k != NULL && (unsigned)k->type <= DKIM_KEY_ED25519);
	CHECK(k->revoked == (k->pkey == NULL));
	if (k->pkey != NULL) {
		CHECK(EVP_PKEY_get_base_id(k->pkey) == (k->type ==
		    DKIM_KEY_RSA ? EVP_PKEY_RSA : EVP_PKEY_ED25519));
		CHECK(k->bits == (unsigned)EVP_PKEY_get_bits(k->pkey) &&
		    k->bits > 0);
		if (k->type == DKIM_KEY_ED25519) {
			der = OPENSSL_malloc(32);
			derlen = 32;
			CHECK(der && EVP_PKEY_get_raw_public_key(k->pkey, der,
			    &derlen) == 1);
		} else {
			unsigned char *q = NULL;

			CHECK((len = i2d_PUBKEY(k->pkey, &q)) > 0);
			der = q;
			derlen = (size_t)len;
		}
		CHECK((b64 = dkim_b64_encode(der, derlen)) != NULL);
	}
	dkim_buf_init(&rec, 0);
	dkim_buf_addf(&rec, "v=DKIM1; k=%s; t=%s%s%s; p=%s",
	    k->type == DKIM_KEY_RSA ? "rsa" : "ed25519",
	    k->testing ? "y" : "n", k->strict ? ":s" : "",
	    k->email_ok ? "; s=email" : "; s=other", b64 ? b64 : "");
	if (!k->allow_sha256 || !k->allow_sha1)
		dkim_buf_addf(&rec, "; h=md5%s%s", k->allow_sha1 ? ":sha1" : "",
		    k->allow_sha256 ? ":sha256" : "");
	CHECK(!rec.failed);
	CHECK(dkim_key_parse(rec.p, rec.len, &back, NULL, 0) == DKIM_OK);
	CHECK(back->type == k->type && back->revoked == k->revoked &&
	    back->testing == k->testing && back->strict == k->strict &&
	    back->allow_sha256 == k->allow_sha256 &&
	    back->allow_sha1 == k->allow_sha1 &&
	    back->email_ok == k->email_ok && back->bits == k->bits);
	CHECK(k->pkey == NULL || EVP_PKEY_eq(k->pkey, back->pkey) == 1);
	dkim_buf_free(&rec);
	dkim_key_free(back);
	dkim_key_free(k);
	OPENSSL_free(der);
	free(b64);
}

/* check_b64 - decode, encode, decode. */
static void
check_b64(const char *p, size_t n)
{
	unsigned char *a, *b;
	size_t alen, blen;
	char *e;

	if ((a = dkim_b64_decode(p, n, &alen)) == NULL)
		return;
	CHECK(alen <= n / 4 * 3);
	CHECK((e = dkim_b64_encode(a, alen)) != NULL);
	CHECK((b = dkim_b64_decode(e, strlen(e), &blen)) != NULL);
	CHECK(blen == alen && memcmp(a, b, alen) == 0);
	free(a);
	free(b);
	free(e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_taglist tl;
	enum dkim_alg alg;
	unsigned sel;
	size_t n;
	bool ok;
	char *p;

	if ((p = fuzz_input(data, size, &sel, &n)) == NULL)
		return 0;
	ok = check_tags(p, n, &tl);
	check_sig(DKIM_SIG_DKIM, sel & 1, p, n, ok ? &tl : NULL);
	check_sig(DKIM_SIG_ARC_MS, sel & 2, p, n, ok ? &tl : NULL);
	check_sig(DKIM_SIG_ARC_SEAL, sel & 4, p, n, ok ? &tl : NULL);
	check_key(p, n);
	check_b64(p, n);
	if (dkim_alg_parse(p, n, &alg))
		CHECK(strlen(dkim_alg_str(alg)) == n &&
		    strncasecmp(dkim_alg_str(alg), p, n) == 0);
	free(p);
	return 0;
}
