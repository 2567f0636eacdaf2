/*
 * tags.c - the one strict tag=value list parser (RFC 6376 §3.2), shared by
 * DKIM-Signature, ARC-Message-Signature, ARC-Seal and key records.
 *
 * Untrusted input: header values and DNS TXT data. The parser writes only
 * into the fixed taglist (DKIM_MAX_TAGS entries) and reports the first rule
 * broken with the offset where it happened.
 */
#include <string.h>
#include <strings.h>

#include "dkim.h"
#include "dkim_internal.h"

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
is_alnumpunc(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

/* VALCHAR = %x21-3A / %x3C-7E */
static bool
is_valchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != ';';
}

/*
 * skip_fws - step over WSP and folds (CRLF followed by WSP). Returns false
 * at a CR or LF that is not part of a fold.
 */
static bool
skip_fws(const char *p, size_t n, size_t *i)
{
	while (*i < n) {
		if (is_wsp(p[*i])) {
			(*i)++;
		} else if (p[*i] == '\r' && *i + 2 < n && p[*i + 1] == '\n' &&
		    is_wsp(p[*i + 2])) {
			*i += 3;
		} else if (p[*i] == '\r' || p[*i] == '\n') {
			return false;
		} else {
			break;
		}
	}
	return true;
}

enum dkim_status
dkim_tags_parse(const char *p, size_t n, struct dkim_taglist *out,
    char *why, size_t whylen)
{
	size_t i = 0, k;

	out->n = 0;
	for (;;) {
		struct dkim_tag t;
		size_t vend;

		if (!skip_fws(p, n, &i))
			goto badnl;
		if (i == n) {
			/* End of text: fine at the start or after one ';'. */
			return DKIM_OK;
		}
		if (p[i] == ';') {
			dkim_whyf(why, whylen, "empty tag at offset %zu", i);
			return DKIM_E_SYNTAX;
		}
		if (!is_alpha(p[i])) {
			dkim_whyf(why, whylen, "bad tag name at offset %zu", i);
			return DKIM_E_SYNTAX;
		}
		t.name = p + i;
		while (i < n && is_alnumpunc(p[i]))
			i++;
		t.name_len = (size_t)(p + i - t.name);
		if (!skip_fws(p, n, &i))
			goto badnl;
		if (i == n || p[i] != '=') {
			dkim_whyf(why, whylen, "tag %.*s: expected '=' at "
			    "offset %zu", (int)t.name_len, t.name, i);
			return DKIM_E_SYNTAX;
		}
		i++;
		if (!skip_fws(p, n, &i))
			goto badnl;
		t.value = p + i;
		t.value_off = i;
		vend = i;
		while (i < n && p[i] != ';') {
			if (is_valchar((unsigned char)p[i])) {
				do
					i++;
				while (i < n &&
				    is_valchar((unsigned char)p[i]));
				vend = i;
			} else if (is_wsp(p[i]) || p[i] == '\r' ||
			    p[i] == '\n') {
				if (!skip_fws(p, n, &i))
					goto badnl;
			} else {
				dkim_whyf(why, whylen, "tag %.*s: invalid "
				    "character 0x%02x in value",
				    (int)t.name_len, t.name,
				    (unsigned char)p[i]);
				return DKIM_E_SYNTAX;
			}
		}
		t.value_len = vend - t.value_off;
		for (k = 0; k < out->n; k++) {
			if (out->tags[k].name_len == t.name_len &&
			    memcmp(out->tags[k].name, t.name, t.name_len) == 0) {
				dkim_whyf(why, whylen, "duplicate tag %.*s",
				    (int)t.name_len, t.name);
				return DKIM_E_SYNTAX;
			}
		}
		if (out->n == DKIM_MAX_TAGS) {
			dkim_whyf(why, whylen, "more than %d tags",
			    DKIM_MAX_TAGS);
			return DKIM_E_SYNTAX;
		}
		out->tags[out->n++] = t;
		if (i == n)
			return DKIM_OK;
		i++;	/* the ';' */
		if (!skip_fws(p, n, &i))
			goto badnl;
		if (i == n)
			return DKIM_OK;	/* trailing ';' */
	}
badnl:
	dkim_whyf(why, whylen, "line break not followed by white space at "
	    "offset %zu", i);
	return DKIM_E_SYNTAX;
}

const struct dkim_tag *
dkim_tags_get(const struct dkim_taglist *tl, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < tl->n; i++)
		if (tl->tags[i].name_len == n &&
		    memcmp(tl->tags[i].name, name, n) == 0)
			return &tl->tags[i];
	return NULL;
}

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool
dkim_list_next(const char *p, size_t n, size_t *pos, const char **item,
    size_t *ilen)
{
	size_t i = *pos, a, b;

	if (i > n)
		return false;
	a = i;
	while (i < n && p[i] != ':')
		i++;
	b = i;
	while (a < b && is_fws(p[a]))
		a++;
	while (b > a && is_fws(p[b - 1]))
		b--;
	*item = p + a;
	*ilen = b - a;
	*pos = i + 1;	/* past the ':', or past the end */
	return true;
}

bool
dkim_list_has(const char *p, size_t n, const char *word)
{
	size_t pos = 0, len, wl = strlen(word);
	const char *it;

	while (dkim_list_next(p, n, &pos, &it, &len))
		if (len == wl && strncasecmp(it, word, wl) == 0)
			return true;
	return false;
}
