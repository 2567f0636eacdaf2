/*
 * sig.c - parse and validate DKIM-Signature, ARC-Message-Signature and
 * ARC-Seal values (RFC 6376 §3.5 and §6.1.1, RFC 8617 §4.1).
 *
 * Untrusted input: the field value. Every tag is checked against its
 * syntax; the first problem found becomes the reason. Validators run
 * straight down and return; nothing here accepts on a fallback path.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim.h"
#include "dkim_internal.h"

#define DKIM_MAX_H 1000	/* names in h=; bounds header selection work */

/* A table of the tags each kind requires and forbids. */
struct kind_rules {
	const char *required[9];
	const char *forbidden[3];
};

static const struct kind_rules rules[] = {
	[DKIM_SIG_DKIM] = {
		{ "v", "a", "b", "bh", "d", "h", "s", NULL },
		{ NULL },
	},
	[DKIM_SIG_ARC_MS] = {
		{ "i", "a", "b", "bh", "d", "h", "s", NULL },
		{ NULL },
	},
	[DKIM_SIG_ARC_SEAL] = {
		{ "i", "a", "b", "cv", "d", "s", NULL },
		{ "h", NULL },
	},
};

bool
dkim_domain_within(const char *sub, size_t sublen, const char *dom,
    size_t domlen)
{
	if (sublen < domlen || domlen == 0)
		return false;
	if (strncasecmp(sub + sublen - domlen, dom, domlen) != 0)
		return false;
	return sublen == domlen || sub[sublen - domlen - 1] == '.';
}

/* dkim_valid_domain - dot-separated labels of letters, digits, '-' and
 * '_'. */
bool
dkim_valid_domain(const char *p, size_t n)
{
	size_t i, label = 0;

	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* parse_uint - a decimal number of at most maxdigits digits. */
static bool
parse_uint(const char *p, size_t n, size_t maxdigits, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > maxdigits)
		return false;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return true;
}

static bool
parse_canon_word(const char *p, size_t n, enum dkim_canon *out)
{
	if (n == 6 && strncasecmp(p, "simple", 6) == 0)
		*out = DKIM_CANON_SIMPLE;
	else if (n == 7 && strncasecmp(p, "relaxed", 7) == 0)
		*out = DKIM_CANON_RELAXED;
	else
		return false;
	return true;
}

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * A parsed signature is one allocation: the struct, then the h= pointer
 * array, then every string and decoded value, carved off in order. Each
 * is a copy or a decoding of one tag's value, so twice the length of all
 * values bounds the whole (sig_size); freeing is one free().
 */
struct arena {
	char *p;
	size_t left;
};

static void *
arena_take(struct arena *a, size_t n)
{
	void *r = a->p;

	if (n > a->left)
		return NULL;	/* sig_size is wrong: fail, never overrun */
	a->p += n;
	a->left -= n;
	return r;
}

static char *
arena_strndup(struct arena *a, const char *p, size_t n)
{
	char *s = arena_take(a, n + 1);

	if (s != NULL) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* h_slots - room for the names of h=: one more than its colons. */
static size_t
h_slots(const struct dkim_tag *h)
{
	size_t k, n = 1;

	for (k = 0; h != NULL && k < h->value_len; k++)
		n += h->value[k] == ':';
	return n;
}

/*
 * sig_size - the octets of one allocation for tl's signature. Per tag at
 * most two values' worth: b= keeps its text and its decoding, d= its copy
 * and the default i= "@d"; every other tag one copy or decoding.
 */
static size_t
sig_size(const struct dkim_taglist *tl, size_t slots)
{
	size_t k, n = sizeof(struct dkim_sig) + slots * sizeof(char *) + 16;

	for (k = 0; k < tl->n; k++)
		n += 2 * tl->tags[k].value_len + 8;
	return n;
}

/* parse_h - the colon-separated field names of h=, FWS trimmed, into
 * s->h (room for slots names). */
static enum dkim_status
parse_h(const char *p, size_t n, struct dkim_sig *s, struct arena *a,
    size_t slots, bool skip_empty, char *why, size_t whylen)
{
	size_t pos = 0, len, k;
	const char *it;

	while (dkim_list_next(p, n, &pos, &it, &len)) {
		if (len == 0 && skip_empty)
			continue;
		if (len == 0) {
			dkim_whyf(why, whylen, "empty field name in h=");
			return DKIM_E_SYNTAX;
		}
		for (k = 0; k < len; k++) {
			unsigned char c = (unsigned char)it[k];

			if (c < 33 || c > 126) {
				dkim_whyf(why, whylen,
				    "bad field name in h=");
				return DKIM_E_SYNTAX;
			}
		}
		if (s->nh == DKIM_MAX_H) {
			dkim_whyf(why, whylen, "more than %d names in h=",
			    DKIM_MAX_H);
			return DKIM_E_SYNTAX;
		}
		if (s->nh == slots ||
		    (s->h[s->nh] = arena_strndup(a, it, len)) == NULL)
			return DKIM_E_NOMEM;
		s->nh++;
	}
	return DKIM_OK;
}

/* take_b64 - decode t's value into the arena; false on bad base64 or
 * when the arena is short (*nomem). */
static bool
take_b64(struct arena *a, const struct dkim_tag *t, unsigned char **out,
    size_t *outlen, bool *nomem)
{
	*out = arena_take(a, DKIM_B64_DECODED_MAX(t->value_len));
	*nomem = *out == NULL;
	return *out != NULL && dkim_b64_decode_into(t->value, t->value_len,
	    *out, outlen);
}

/* strip_fws - copy of a value with all FWS removed (b= text). */
static char *
strip_fws(struct arena *a, const char *p, size_t n)
{
	char *s = arena_take(a, n + 1);
	size_t i, o = 0;

	if (s == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (!is_fws(p[i]))
			s[o++] = p[i];
	s[o] = '\0';
	return s;
}

#define FAIL(...) do { dkim_whyf(why, whylen, __VA_ARGS__); \
	st = DKIM_E_SYNTAX; goto out; } while (0)
#define NOMEM() do { st = DKIM_E_NOMEM; goto out; } while (0)

enum dkim_status
dkim_sig_parse(const struct dkim_field *f, enum dkim_sig_kind kind,
    struct dkim_sig **out, char *why, size_t whylen)
{
	struct dkim_taglist tl;
	enum dkim_status st;

	*out = NULL;
	if ((unsigned)kind > DKIM_SIG_ARC_SEAL)
		return DKIM_E_ARG;
	if ((st = dkim_tags_parse(f->raw + f->value_off,
	    f->raw_len - f->value_off, &tl, why, whylen)) != DKIM_OK)
		return st;
	return dkim_sig_from_tags(f, kind, &tl, out, why, whylen);
}

enum dkim_status
dkim_sig_from_tags(const struct dkim_field *f, enum dkim_sig_kind kind,
    const struct dkim_taglist *tl, struct dkim_sig **out, char *why,
    size_t whylen)
{
	const struct dkim_tag *t;
	const struct kind_rules *r;
	struct dkim_sig *s;
	struct arena a;
	size_t k, slots, size;
	enum dkim_status st;
	uint64_t u;
	bool nomem;

	*out = NULL;
	if ((unsigned)kind > DKIM_SIG_ARC_SEAL)
		return DKIM_E_ARG;
	slots = h_slots(dkim_tags_get(tl, "h"));
	size = sig_size(tl, slots);
	if ((s = malloc(size)) == NULL)
		return DKIM_E_NOMEM;
	memset(s, 0, sizeof(*s));
	s->h = (char **)(void *)(s + 1);
	a.p = (char *)(s->h + slots);
	a.left = size - sizeof(*s) - slots * sizeof(char *);
	s->kind = kind;
	r = &rules[kind];
	st = DKIM_OK;

	for (k = 0; r->required[k]; k++)
		if (dkim_tags_get(tl, r->required[k]) == NULL)
			FAIL("missing tag %s=", r->required[k]);
	for (k = 0; r->forbidden[k]; k++)
		if (dkim_tags_get(tl, r->forbidden[k]) != NULL)
			FAIL("tag %s= not allowed here", r->forbidden[k]);

	if (kind == DKIM_SIG_DKIM) {
		t = dkim_tags_get(tl, "v");
		if (t->value_len != 1 || t->value[0] != '1')
			FAIL("unsupported version v=%.*s",
			    (int)(t->value_len > 16 ? 16 : t->value_len),
			    t->value);
	}

	t = dkim_tags_get(tl, "a");
	if ((s->alg_text = arena_strndup(&a, t->value, t->value_len)) == NULL)
		NOMEM();
	if (!dkim_alg_parse(t->value, t->value_len, &s->alg))
		FAIL("unsupported algorithm a=%.*s",
		    (int)(t->value_len > 32 ? 32 : t->value_len), t->value);

	t = dkim_tags_get(tl, "d");
	/* §3.5: d= is a domain-name, at least two labels. */
	if (!dkim_valid_domain(t->value, t->value_len) ||
	    memchr(t->value, '.', t->value_len) == NULL)
		FAIL("bad domain in d=");
	if ((s->d = arena_strndup(&a, t->value, t->value_len)) == NULL)
		NOMEM();

	t = dkim_tags_get(tl, "s");
	if (!dkim_valid_domain(t->value, t->value_len))
		FAIL("bad selector in s=");
	if ((s->s = arena_strndup(&a, t->value, t->value_len)) == NULL)
		NOMEM();

	t = dkim_tags_get(tl, "b");
	if (t->value_len == 0)
		FAIL("b= is empty");
	if (!take_b64(&a, t, &s->b, &s->b_len, &nomem)) {
		if (nomem)
			NOMEM();
		FAIL("bad base64 in b=");
	}
	if ((s->b_text = strip_fws(&a, t->value, t->value_len)) == NULL)
		NOMEM();
	s->b_end = f->value_off + t->value_off + t->value_len;
	s->b_off = f->value_off + t->value_off;
	while (s->b_off > f->value_off && is_fws(f->raw[s->b_off - 1]))
		s->b_off--;

	if (kind != DKIM_SIG_ARC_SEAL) {
		t = dkim_tags_get(tl, "bh");
		if (!take_b64(&a, t, &s->bh, &s->bh_len, &nomem) ||
		    s->bh_len == 0) {
			if (nomem)
				NOMEM();
			FAIL("bad base64 in bh=");
		}
		t = dkim_tags_get(tl, "h");
		/* The ARC suite and its reference validators read an AMS h=
		 * leniently: empty names are skipped. */
		if ((st = parse_h(t->value, t->value_len, s, &a, slots,
		    kind == DKIM_SIG_ARC_MS, why, whylen)) != DKIM_OK)
			goto out;
		if ((t = dkim_tags_get(tl, "c")) != NULL) {
			const char *slash = memchr(t->value, '/', t->value_len);
			size_t hl = slash ? (size_t)(slash - t->value) :
			    t->value_len;

			if (!parse_canon_word(t->value, hl, &s->hcanon))
				FAIL("unknown canonicalization c=%.*s",
				    (int)(t->value_len > 32 ? 32 :
				    t->value_len), t->value);
			s->bcanon = DKIM_CANON_SIMPLE;
			if (slash && !parse_canon_word(slash + 1,
			    t->value_len - hl - 1, &s->bcanon))
				FAIL("unknown canonicalization c=%.*s",
				    (int)(t->value_len > 32 ? 32 :
				    t->value_len), t->value);
		}
		if ((t = dkim_tags_get(tl, "l")) != NULL) {
			/* RFC 6376 allows 76 digits; more than 2^63 octets
			 * cannot occur, so such a value is refused. */
			if (!parse_uint(t->value, t->value_len, 18, &s->l))
				FAIL("bad body length l=");
			s->has_l = true;
		}
		if ((t = dkim_tags_get(tl, "q")) != NULL &&
		    !dkim_list_has(t->value, t->value_len, "dns/txt"))
			FAIL("unsupported query method q=");
	}

	if ((t = dkim_tags_get(tl, "t")) != NULL) {
		if (!parse_uint(t->value, t->value_len, 18, &u))
			FAIL("bad timestamp t=");
		s->has_t = true;
		s->t = (int64_t)u;
	}
	if (kind != DKIM_SIG_ARC_SEAL &&
	    (t = dkim_tags_get(tl, "x")) != NULL) {
		if (!parse_uint(t->value, t->value_len, 18, &u))
			FAIL("bad expiration x=");
		s->has_x = true;
		s->x = (int64_t)u;
		/* §3.5 says x= MUST be greater than t=. */
		if (s->has_t && s->x <= s->t)
			FAIL("x= is not after t=");
	}

	if (kind == DKIM_SIG_DKIM) {
		const char *at;

		if ((t = dkim_tags_get(tl, "i")) != NULL) {
			at = NULL;
			for (k = t->value_len; k > 0; k--)
				if (t->value[k - 1] == '@') {
					at = t->value + k - 1;
					break;
				}
			if (at == NULL)
				FAIL("bad identity i=");
			if (!dkim_domain_within(at + 1,
			    (size_t)(t->value + t->value_len - at - 1),
			    s->d, strlen(s->d)))
				FAIL("i= not within d=");
			s->i = arena_strndup(&a, t->value, t->value_len);
		} else {
			size_t dl = strlen(s->d);

			if ((s->i = arena_take(&a, dl + 2)) != NULL) {
				s->i[0] = '@';
				memcpy(s->i + 1, s->d, dl + 1);
			}
		}
		if (s->i == NULL)
			NOMEM();
	} else {
		t = dkim_tags_get(tl, "i");
		if (!parse_uint(t->value, t->value_len, 4, &u) || u == 0)
			FAIL("bad instance i=");
		s->instance = (unsigned)u;
	}

	if (kind == DKIM_SIG_ARC_SEAL) {
		t = dkim_tags_get(tl, "cv");
		if (t->value_len == 4 && strncasecmp(t->value, "none", 4) == 0)
			s->cv = DKIM_CV_NONE;
		else if (t->value_len == 4 &&
		    strncasecmp(t->value, "pass", 4) == 0)
			s->cv = DKIM_CV_PASS;
		else if (t->value_len == 4 &&
		    strncasecmp(t->value, "fail", 4) == 0)
			s->cv = DKIM_CV_FAIL;
		else
			FAIL("bad chain validation cv=");
	} else if (kind == DKIM_SIG_ARC_MS) {
		/* RFC 8617 §4.1.2 keeps ARC fields out of h=; validators
		 * refuse an AMS that covers an ARC-Seal, whose own scope
		 * would then include itself. */
		for (k = 0; k < s->nh; k++)
			if (strcasecmp(s->h[k], "arc-seal") == 0)
				FAIL("h= includes ARC-Seal");
	} else {
		bool from = false;

		for (k = 0; k < s->nh; k++)
			if (strcasecmp(s->h[k], "from") == 0)
				from = true;
		if (!from)
			FAIL("From not signed");
	}
out:
	if (st != DKIM_OK) {
		dkim_sig_free(s);
		return st;
	}
	*out = s;
	return DKIM_OK;
}

void
dkim_sig_free(struct dkim_sig *s)
{
	free(s);	/* everything it points to is in the same block */
}
