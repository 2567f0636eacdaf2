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

/* parse_h - the colon-separated field names of h=, FWS trimmed. */
static enum dkim_status
parse_h(const char *p, size_t n, struct dkim_sig *s, bool skip_empty,
    char *why, size_t whylen)
{
	size_t pos = 0, cap = 0, len, k;
	const char *it;

	while (dkim_list_next(p, n, &pos, &it, &len)) {
		char **nh;

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
		if (s->nh == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nh = realloc(s->h, cap * sizeof(*nh))) == NULL)
				return DKIM_E_NOMEM;
			s->h = nh;
		}
		if ((s->h[s->nh] = dkim_strndup(it, len)) == NULL)
			return DKIM_E_NOMEM;
		s->nh++;
	}
	return DKIM_OK;
}

static bool
take_b64(const struct dkim_tag *t, unsigned char **out, size_t *outlen)
{
	return (*out = dkim_b64_decode(t->value, t->value_len, outlen)) !=
	    NULL;
}

/* strip_fws - copy of a value with all FWS removed (b= text). */
static char *
strip_fws(const char *p, size_t n)
{
	char *s = malloc(n + 1);
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
	size_t k;
	enum dkim_status st;
	uint64_t u;

	*out = NULL;
	if ((unsigned)kind > DKIM_SIG_ARC_SEAL)
		return DKIM_E_ARG;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return DKIM_E_NOMEM;
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
	if ((s->alg_text = dkim_strndup(t->value, t->value_len)) == NULL)
		NOMEM();
	if (!dkim_alg_parse(t->value, t->value_len, &s->alg))
		FAIL("unsupported algorithm a=%.*s",
		    (int)(t->value_len > 32 ? 32 : t->value_len), t->value);

	t = dkim_tags_get(tl, "d");
	/* §3.5: d= is a domain-name, at least two labels. */
	if (!dkim_valid_domain(t->value, t->value_len) ||
	    memchr(t->value, '.', t->value_len) == NULL)
		FAIL("bad domain in d=");
	if ((s->d = dkim_strndup(t->value, t->value_len)) == NULL)
		NOMEM();

	t = dkim_tags_get(tl, "s");
	if (!dkim_valid_domain(t->value, t->value_len))
		FAIL("bad selector in s=");
	if ((s->s = dkim_strndup(t->value, t->value_len)) == NULL)
		NOMEM();

	t = dkim_tags_get(tl, "b");
	if (t->value_len == 0)
		FAIL("b= is empty");
	if (!take_b64(t, &s->b, &s->b_len))
		FAIL("bad base64 in b=");
	if ((s->b_text = strip_fws(t->value, t->value_len)) == NULL)
		NOMEM();
	s->b_end = f->value_off + t->value_off + t->value_len;
	s->b_off = f->value_off + t->value_off;
	while (s->b_off > f->value_off && is_fws(f->raw[s->b_off - 1]))
		s->b_off--;

	if (kind != DKIM_SIG_ARC_SEAL) {
		t = dkim_tags_get(tl, "bh");
		if (!take_b64(t, &s->bh, &s->bh_len) || s->bh_len == 0)
			FAIL("bad base64 in bh=");
		t = dkim_tags_get(tl, "h");
		/* The ARC suite and its reference validators read an AMS h=
		 * leniently: empty names are skipped. */
		if ((st = parse_h(t->value, t->value_len, s,
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
			s->i = dkim_strndup(t->value, t->value_len);
		} else {
			size_t dl = strlen(s->d);

			if ((s->i = malloc(dl + 2)) != NULL) {
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
	size_t k;

	if (s == NULL)
		return;
	free(s->alg_text);
	free(s->d);
	free(s->s);
	free(s->i);
	for (k = 0; k < s->nh; k++)
		free(s->h[k]);
	free(s->h);
	free(s->b);
	free(s->b_text);
	free(s->bh);
	free(s);
}
