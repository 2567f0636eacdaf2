/*
 * message.c - the message model: split an RFC 5322 message into header
 * fields and body without copying or altering a byte.
 *
 * Untrusted input: the whole message. Every loop is bounded by the input
 * length and by struct dkim_limits; each limit has its own status so a
 * caller can say which one was hit. Header lines end in CRLF only: a bare
 * CR or LF, or a NUL, in the header section means the input is not a
 * message (callers convert LF-only files at their boundary).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim.h"
#include "dkim_internal.h"

static bool
field_name_char(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* msg_add_field - append a field, growing the array geometrically. */
static bool
msg_add_field(struct dkim_msg *m, size_t *cap, const struct dkim_field *f)
{
	if (m->nfields == *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		struct dkim_field *nf;

		nf = realloc(m->fields, ncap * sizeof(*nf));
		if (nf == NULL)
			return false;
		m->fields = nf;
		*cap = ncap;
	}
	m->fields[m->nfields++] = *f;
	return true;
}

/* parse_field_start - fill name/value_off of a field from its first line. */
static bool
parse_field_start(const char *line, size_t n, struct dkim_field *f)
{
	size_t i = 0, name_end;

	while (i < n && field_name_char((unsigned char)line[i]))
		i++;
	if (i == 0)
		return false;
	name_end = i;
	/* RFC 5322 §4.5.3 (obsolete syntax) allows WSP before the colon. */
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i >= n || line[i] != ':')
		return false;
	f->name = line;
	f->name_len = name_end;
	f->value_off = i + 1;
	return true;
}

enum dkim_status
dkim_msg_parse(const char *p, size_t len, const struct dkim_limits *lim,
    struct dkim_msg **out, char *why, size_t whylen)
{
	struct dkim_limits def = { DKIM_DEFAULT_MAX_LINE,
	    DKIM_DEFAULT_MAX_HEADERS, DKIM_DEFAULT_MAX_HEADER_BYTES };
	struct dkim_msg *m;
	struct dkim_field cur;
	size_t pos = 0, cap = 0, lineno = 0;
	bool have_cur = false;
	enum dkim_status st = DKIM_OK;

	*out = NULL;
	if (lim == NULL)
		lim = &def;
	if (len == 0) {
		dkim_whyf(why, whylen, "empty message");
		return DKIM_E_EMPTY;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return DKIM_E_NOMEM;
	m->data = p;
	m->len = len;
	memset(&cur, 0, sizeof(cur));

	while (pos < len) {
		const char *line = p + pos;
		const char *nl, *bad;
		size_t linelen, next;

		lineno++;
		nl = memchr(line, '\n', len - pos);
		if (nl == NULL) {
			linelen = len - pos;	/* last line, no CRLF */
			next = len;
		} else {
			if (nl == line || nl[-1] != '\r') {
				dkim_whyf(why, whylen,
				    "bare LF in header line %zu", lineno);
				st = DKIM_E_MALFORMED;
				goto fail;
			}
			linelen = (size_t)(nl - 1 - line);
			next = pos + linelen + 2;
		}
		if (linelen > lim->max_line) {
			dkim_whyf(why, whylen, "header line %zu is too long",
			    lineno);
			st = DKIM_E_LINE_TOO_LONG;
			goto fail;
		}
		if (next > lim->max_header_bytes) {
			dkim_whyf(why, whylen,
			    "header section too large at line %zu", lineno);
			st = DKIM_E_HEADER_TOO_BIG;
			goto fail;
		}
		if ((bad = memchr(line, '\r', linelen)) != NULL ||
		    (bad = memchr(line, '\0', linelen)) != NULL) {
			dkim_whyf(why, whylen, *bad == '\r' ?
			    "bare CR in header line %zu" :
			    "NUL byte in header line %zu", lineno);
			st = DKIM_E_MALFORMED;
			goto fail;
		}
		if (linelen == 0 && nl != NULL) {
			/* The empty line: the body follows. */
			pos = next;
			break;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			if (!have_cur) {
				dkim_whyf(why, whylen, "line %zu continues no "
				    "header field", lineno);
				st = DKIM_E_MALFORMED;
				goto fail;
			}
			cur.raw_len = (size_t)(line + linelen - cur.raw);
			pos = next;
			continue;
		}
		if (have_cur && !msg_add_field(m, &cap, &cur)) {
			st = DKIM_E_NOMEM;
			goto fail;
		}
		have_cur = false;
		if (m->nfields >= lim->max_headers) {
			dkim_whyf(why, whylen, "more than the allowed number of "
			    "header fields at line %zu", lineno);
			st = DKIM_E_TOO_MANY_HEADERS;
			goto fail;
		}
		memset(&cur, 0, sizeof(cur));
		if (!parse_field_start(line, linelen, &cur)) {
			dkim_whyf(why, whylen,
			    "line %zu is not a header field", lineno);
			st = DKIM_E_MALFORMED;
			goto fail;
		}
		cur.raw = line;
		cur.raw_len = linelen;
		cur.offset = pos;
		have_cur = true;
		pos = next;
	}
	if (have_cur && !msg_add_field(m, &cap, &cur)) {
		st = DKIM_E_NOMEM;
		goto fail;
	}
	/* RFC 5322 §3.5 lets the header section be empty, but only an
	 * input that opens with the empty line says so. */
	if (m->nfields == 0 && !(len >= 2 && p[0] == '\r' && p[1] == '\n')) {
		dkim_whyf(why, whylen, "no header fields");
		st = DKIM_E_MALFORMED;
		goto fail;
	}
	m->body_off = pos;
	m->body = p + pos;
	m->body_len = len - pos;
	*out = m;
	return DKIM_OK;
fail:
	dkim_msg_free(m);
	return st;
}

bool
dkim_has_8bit(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

void
dkim_msg_free(struct dkim_msg *m)
{
	if (m == NULL)
		return;
	free(m->fields);
	free(m);
}

bool
dkim_field_is(const struct dkim_field *f, const char *name)
{
	return dkim_field_is_n(f, name, strlen(name));
}

bool
dkim_field_is_n(const struct dkim_field *f, const char *name, size_t n)
{
	return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

char *
dkim_crlf_from_lf(const char *p, size_t len, size_t *outlen, bool *converted)
{
	size_t i, nlf = 0, o = 0;
	char *out;

	*converted = false;
	for (i = 0; i < len; i++) {
		if (p[i] == '\n') {
			if (i > 0 && p[i - 1] == '\r')
				return NULL;	/* has CRLF: leave as is */
			nlf++;
		}
	}
	if (nlf == 0)
		return NULL;
	if ((out = malloc(len + nlf + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (p[i] == '\n')
			out[o++] = '\r';
		out[o++] = p[i];
	}
	out[o] = '\0';
	*outlen = o;
	*converted = true;
	return out;
}
