/*
 * footer.c - the MIME-aware list footer (footer.h).
 *
 * The work is in two steps. plan_make reads the message and decides what
 * to do, without writing anything: append inside a single text/plain part,
 * add a part to multipart/mixed, or wrap. Then one emitter writes the new
 * message. A message that could take the footer in place but fails a
 * check on the way (charset, encoding, a broken structure, a cap) is
 * wrapped, and the plan records why; wrapping never reinterprets a byte of
 * the original, so it is safe for anything dkim_msg_parse accepts.
 *
 * What is read of the message: the top-level header fields (via
 * dkim_msg_parse), the Content-Type, Content-Transfer-Encoding and
 * Content-Disposition values (RFC 2045 §5.1 with RFC 822 comments and
 * quoted strings; RFC 2231 parameters are skipped), the delimiter lines of
 * a multipart body (RFC 2046 §5.1.1) and, below multipart/mixed, the
 * header of every body part, recursively for nested multiparts, so that a
 * broken structure anywhere is wrapped rather than added to. An append to
 * a format=flowed part also reads the last line of its (decoded) text.
 *
 * SECURITY: all of it is untrusted and read as (ptr, len). The number of
 * parts, the nesting depth, the size of each part header, the boundary
 * and comment nesting are capped (footer.h); every cap that stops a walk
 * is named in the reason. Recursion is bounded by FOOTER_MAX_DEPTH.
 * Output goes to the caller's dkim_buf and stops at its ceiling.
 */
#define _GNU_SOURCE		/* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "footer.h"

#define CRLF		"\r\n"
#define NAME_MAX_LEN	128	/* media type, subtype names (RFC 6838) */
#define CHARSET_MAX	64
#define LINE_MAX_SMTP	998	/* RFC 5322 §2.1.1, without CRLF */
#define QP_LINE		76	/* RFC 2045 §6.7 (5) */
#define B64_LINE	76	/* RFC 2045 §6.8 */
#define BOUNDARY_TRIES	64

/* ------------------------------------------------------------ helpers */

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* ci_is - (p, n) equals the literal s, ignoring ASCII case. */
static bool
ci_is(const char *p, size_t n, const char *s)
{
	return strlen(s) == n && strncasecmp(p, s, n) == 0;
}

static bool
ends_crlf(const char *p, size_t n)
{
	return n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n';
}

/* add_field - a header field's raw bytes and its CRLF. */
static void
add_field(struct dkim_buf *out, const struct dkim_field *f)
{
	dkim_buf_add(out, f->raw, f->raw_len);
	dkim_buf_adds(out, CRLF);
}

/* ----------------------------------------------------------- the footer */

/* The footer as configured, with its line ends made uniform. */
struct ftext {
	struct dkim_buf lines;	/* owned: every line ends in one '\n' */
	bool ascii;
	size_t longest;		/* octets of the longest line, no '\n' */
};

/* utf8_valid - well-formed UTF-8: no overlongs, surrogates or > U+10FFFF. */
static bool
utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0, j, k;
	uint32_t cp, min;

	while (i < n) {
		unsigned char c = p[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else
			return false;
		if (n - i <= k)
			return false;
		for (j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* ftext_make - check the footer and split it into '\n'-ended lines. */
static bool
ftext_make(const char *footer, struct ftext *ft, char *why, size_t whylen)
{
	size_t n, i, col = 0;

	dkim_buf_init(&ft->lines, FOOTER_MAX_TEXT + 2);
	ft->ascii = true;
	ft->longest = 0;
	n = footer ? strnlen(footer, FOOTER_MAX_TEXT + 1) : 0;
	if (n == 0) {
		snprintf(why, whylen, "empty footer");
		return false;
	}
	if (n > FOOTER_MAX_TEXT) {
		snprintf(why, whylen, "footer longer than %d octets",
		    FOOTER_MAX_TEXT);
		return false;
	}
	if (!utf8_valid((const unsigned char *)footer, n)) {
		snprintf(why, whylen, "footer is not UTF-8");
		return false;
	}
	for (i = 0; i < n; i++) {
		char c = footer[i];

		if (c == '\r' && i + 1 < n && footer[i + 1] == '\n')
			continue;
		if (c == '\r' || c == '\n') {
			dkim_buf_addc(&ft->lines, '\n');
			if (col > ft->longest)
				ft->longest = col;
			col = 0;
			continue;
		}
		if ((unsigned char)c >= 0x80)
			ft->ascii = false;
		dkim_buf_addc(&ft->lines, c);
		col++;
	}
	if (col > 0) {
		dkim_buf_addc(&ft->lines, '\n');
		if (col > ft->longest)
			ft->longest = col;
	}
	if (ft->lines.failed) {
		snprintf(why, whylen, "out of memory");
		dkim_buf_free(&ft->lines);
		return false;
	}
	return true;
}

/* footer_plain - the footer lines as they are, each ended with nl. */
static void
footer_plain(struct dkim_buf *out, const struct ftext *ft, const char *nl)
{
	const char *p = ft->lines.p, *end = p + ft->lines.len, *e;

	while (p < end) {
		e = memchr(p, '\n', (size_t)(end - p));
		dkim_buf_add(out, p, (size_t)(e - p));
		dkim_buf_adds(out, nl);
		p = e + 1;
	}
}

/*
 * qp_line - one line in quoted-printable (RFC 2045 §6.7): '=', controls
 * and 8-bit octets as =XX, white space at the end of the line too, soft
 * line breaks so that no encoded line passes 76 characters. A leading
 * "From " is written =46rom so that no mbox on the way mangles it.
 */
static void
qp_line(struct dkim_buf *out, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = p[i];
		bool last = i + 1 == n, lit;
		char tok[3];
		size_t tl;

		lit = (c >= 33 && c <= 126 && c != '=') ||
		    ((c == ' ' || c == '\t') && !last);
		if (i == 0 && n >= 5 && memcmp(p, "From ", 5) == 0)
			lit = false;
		if (lit) {
			tok[0] = (char)c;
			tl = 1;
		} else {
			tok[0] = '=';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 15];
			tl = 3;
		}
		/* A line that goes on keeps a column for its soft break. */
		if (col + tl > (last ? QP_LINE : QP_LINE - 1)) {
			dkim_buf_adds(out, "=" CRLF);
			col = 0;
		}
		dkim_buf_add(out, tok, tl);
		col += tl;
	}
	dkim_buf_adds(out, CRLF);
}

/* footer_qp - the footer lines in quoted-printable, CRLF line breaks. */
static void
footer_qp(struct dkim_buf *out, const struct ftext *ft)
{
	const char *p = ft->lines.p, *end = p + ft->lines.len, *e;

	while (p < end) {
		e = memchr(p, '\n', (size_t)(end - p));
		qp_line(out, (const unsigned char *)p, (size_t)(e - p));
		p = e + 1;
	}
}

/*
 * footer_part - the header and body of the footer's own part. 7bit for an
 * ASCII footer; 8bit where the enclosing entity's domain allows 8-bit
 * octets (RFC 2045 §6.4: a 7bit multipart cannot hold an 8bit part);
 * quoted-printable otherwise and for lines over 998 octets. True when
 * the part is 8bit.
 */
static bool
footer_part(struct dkim_buf *out, const struct ftext *ft, bool domain8)
{
	bool qp = ft->longest > LINE_MAX_SMTP || (!ft->ascii && !domain8);

	dkim_buf_addf(out, "Content-Type: text/plain; charset=%s" CRLF
	    "Content-Transfer-Encoding: %s" CRLF
	    "Content-Disposition: inline" CRLF CRLF,
	    ft->ascii ? "us-ascii" : "utf-8",
	    qp ? "quoted-printable" : ft->ascii ? "7bit" : "8bit");
	if (qp)
		footer_qp(out, ft);
	else
		footer_plain(out, ft, CRLF);
	return !qp && !ft->ascii;
}

/* ----------------------------------------------------- format=flowed */

/*
 * A text/plain part with format=flowed (RFC 3676) is read by its reader
 * as paragraphs: a line that ends in a space is a soft break and joins
 * the next line (§4.2). Two things follow for an append. The footer's
 * own lines must read back as the fixed lines they are (ftext_flowed),
 * and the footer must not join the last paragraph of the part when that
 * ends in a soft break (flow_end). DelSp=yes (§4.2) only says that the
 * reader deletes the space of a soft break when it joins; which lines
 * join is the same, so it changes nothing here and is not read.
 */

/*
 * ftext_flowed - the footer ft as it goes into a flowed part, into fl.
 * Trailing spaces go, since they would make a soft break, except on the
 * signature separator "-- ", which is neither fixed nor flowed (§4.3). A
 * line that then starts with a space, ">" or "From " gets one more space
 * in front (space-stuffing, §4.4), which the reader takes away again;
 * without it the line shows shifted or quoted (§4.5), and "From " would
 * be mangled by an mbox on the way. False when out of memory.
 */
static bool
ftext_flowed(const struct ftext *ft, struct ftext *fl)
{
	const char *p = ft->lines.p, *end = p + ft->lines.len, *e;
	size_t n;

	/* Stuffing adds one octet to a line of at least one. */
	dkim_buf_init(&fl->lines, 2 * ft->lines.len + 2);
	fl->ascii = ft->ascii;
	fl->longest = 0;
	while (p < end) {
		e = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)(e - p);
		if (!(n == 3 && memcmp(p, "-- ", 3) == 0))
			while (n > 0 && p[n - 1] == ' ')
				n--;
		if (n > 0 && (p[0] == ' ' || p[0] == '>' ||
		    (n >= 5 && memcmp(p, "From ", 5) == 0))) {
			dkim_buf_addc(&fl->lines, ' ');
			if (n + 1 > fl->longest)
				fl->longest = n + 1;
		} else if (n > fl->longest)
			fl->longest = n;
		dkim_buf_add(&fl->lines, p, n);
		dkim_buf_addc(&fl->lines, '\n');
		p = e + 1;
	}
	return !fl->lines.failed;
}

/*
 * One line as a flowed reader takes it apart (§4.2, §4.5), fed octet by
 * octet so that no line of the message is copied: the quote marks, then
 * one stuffing space that is not content (§4.4), then the content, of
 * which only the length and the last three octets matter here.
 */
struct fline {
	enum { FL_MARKS, FL_STUFF, FL_TEXT } at;
	size_t depth;		/* quote marks '>' */
	size_t len;		/* octets of content */
	char tail[3];		/* its last three octets */
};

static void
fline_reset(struct fline *l)
{
	memset(l, 0, sizeof(*l));
	l->at = FL_MARKS;
}

/* fline_add - one more octet; a line feed (decoded from "=0A", say)
 * starts a new line. */
static void
fline_add(struct fline *l, char c)
{
	if (c == '\n') {
		fline_reset(l);
		return;
	}
	if (l->at == FL_MARKS) {
		if (c == '>') {
			l->depth++;
			return;
		}
		l->at = FL_STUFF;
	}
	if (l->at == FL_STUFF) {
		l->at = FL_TEXT;
		if (c == ' ')
			return;
	}
	l->tail[0] = l->tail[1];
	l->tail[1] = l->tail[2];
	l->tail[2] = c;
	l->len++;
}

/* fline_soft - does the line end in a soft break? The signature
 * separator "-- ", quoted or not, does not (§4.3). */
static bool
fline_soft(const struct fline *l)
{
	if (l->len == 3 && memcmp(l->tail, "-- ", 3) == 0)
		return false;
	return l->len > 0 && l->tail[2] == ' ';
}

/* fline_last - the last line of the text (p, n); its line end, LF or
 * CRLF, is no part of it. */
static void
fline_last(struct fline *l, const char *p, size_t n)
{
	size_t s;

	if (n > 0 && p[n - 1] == '\n')
		n--;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	for (s = n; s > 0 && p[s - 1] != '\n'; s--)
		;
	fline_reset(l);
	for (; s < n; s++)
		fline_add(l, p[s]);
}

/*
 * fline_qp_last - the last decoded line of the quoted-printable text (p,
 * n), RFC 2045 §6.7: white space at the end of an encoded line is
 * padding, a '=' left there a soft line break, "=XX" one octet; a broken
 * escape is taken as it stands, as lenient decoders do.
 */
static void
fline_qp_last(struct fline *l, const char *p, size_t n)
{
	size_t s = 0, e, end, i;
	bool ended = false, soft;
	int hi, lo;

	fline_reset(l);
	while (s < n) {
		for (e = s; e < n && p[e] != '\n'; e++)
			;
		end = dkim_qp_line(p, s, e, &soft);
		if (ended)
			fline_reset(l);
		for (i = s; i < end; i++) {
			if (p[i] == '=' && end - i >= 3 &&
			    (hi = dkim_hex_digit(p[i + 1])) >= 0 &&
			    (lo = dkim_hex_digit(p[i + 2])) >= 0) {
				fline_add(l, (char)(hi << 4 | lo));
				i += 2;
			} else
				fline_add(l, p[i]);
		}
		ended = !soft;
		s = e < n ? e + 1 : n;
	}
}

/*
 * flow_end - the text out holds from offset from on ends with a line
 * end; when its last line is a soft break, end the paragraph with an
 * empty line that carries the paragraph's quote marks: it adds nothing
 * to the paragraph (§4.2), and a line of another quote depth, which
 * would end it too, shows as a line of its own (§4.5). qp: the text is
 * quoted-printable and so is the new line.
 */
static void
flow_end(struct dkim_buf *out, size_t from, bool qp, const char *nl)
{
	struct fline l;
	struct dkim_buf marks;
	size_t i;

	if (out->failed)
		return;
	if (qp)
		fline_qp_last(&l, out->p + from, out->len - from);
	else
		fline_last(&l, out->p + from, out->len - from);
	if (!fline_soft(&l))
		return;
	if (!qp) {
		for (i = 0; i < l.depth; i++)
			dkim_buf_addc(out, '>');
		dkim_buf_adds(out, nl);
		return;
	}
	/* Deep enough quoting passes 76 columns: qp_line breaks it. */
	dkim_buf_init(&marks, out->max);
	for (i = 0; i < l.depth; i++)
		dkim_buf_addc(&marks, '>');
	if (marks.failed)
		out->failed = true;
	else
		qp_line(out, (const unsigned char *)marks.p, marks.len);
	dkim_buf_free(&marks);
}

/* ------------------------------------------------------ MIME field syntax */

/* A scanner over one field value (folding kept: CR and LF are FWS). */
struct lex {
	const char *p;
	size_t n, i;
	const char *err;	/* the first syntax problem, constant text */
};

static bool
tspecial(unsigned char c)
{
	return c != 0 && strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* token_char - RFC 2045 token; eight-bit octets only where allowed. */
static bool
token_char(unsigned char c, bool allow8)
{
	if (c >= 0x80)
		return allow8;
	return c > 32 && c < 127 && !tspecial(c);
}

/* lex_cfws - skip white space and RFC 822 comments (nested, with
 * quoted-pairs); false on an unterminated or too deeply nested one. */
static bool
lex_cfws(struct lex *lx)
{
	while (lx->i < lx->n) {
		char c = lx->p[lx->i];
		unsigned depth = 0;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			lx->i++;
			continue;
		}
		if (c != '(')
			return true;
		do {
			c = lx->p[lx->i++];
			if (c == '\\') {
				if (lx->i < lx->n)
					lx->i++;
			} else if (c == '(') {
				if (++depth > FOOTER_MAX_COMMENTS) {
					lx->err = "comments nested too deep";
					return false;
				}
			} else if (c == ')')
				depth--;
		} while (depth > 0 && lx->i < lx->n);
		if (depth > 0) {
			lx->err = "unterminated comment";
			return false;
		}
	}
	return true;
}

/* lex_token - a token at the current position into (*s, *len). */
static bool
lex_token(struct lex *lx, bool allow8, const char **s, size_t *len)
{
	size_t start = lx->i;

	while (lx->i < lx->n &&
	    token_char((unsigned char)lx->p[lx->i], allow8))
		lx->i++;
	*s = lx->p + start;
	*len = lx->i - start;
	return *len > 0;
}

/* lex_value - a parameter value, token or quoted-string, unquoted into
 * dst (cap octets, NUL added); *over is set when it did not fit. */
static bool
lex_value(struct lex *lx, char *dst, size_t cap, size_t *dlen, bool *over)
{
	const char *s;
	size_t len, o = 0;

	*over = false;
	if (lx->i < lx->n && lx->p[lx->i] == '"') {
		lx->i++;
		for (;;) {
			char c;

			if (lx->i >= lx->n) {
				lx->err = "unterminated quoted string";
				return false;
			}
			c = lx->p[lx->i++];
			if (c == '"')
				break;
			if (c == '\r' || c == '\n')
				continue;	/* unfolding */
			if (c == '\\') {
				if (lx->i >= lx->n)
					continue;
				c = lx->p[lx->i++];
			}
			if (o + 1 < cap)
				dst[o++] = c;
			else
				*over = true;
		}
	} else {
		if (!lex_token(lx, true, &s, &len)) {
			lx->err = "parameter without a value";
			return false;
		}
		for (; len > 0; s++, len--) {
			if (o + 1 < cap)
				dst[o++] = *s;
			else
				*over = true;
		}
	}
	dst[o] = '\0';
	*dlen = o;
	return true;
}

/* The parameters this file acts on. */
struct mparams {
	char boundary[FOOTER_MAX_BOUNDARY + 2];
	size_t boundary_len;
	bool has_boundary;
	char charset[CHARSET_MAX];	/* lowercase */
	bool has_charset;
	bool flowed;		/* a format parameter says "flowed" */
};

/* check_boundary - RFC 2046 boundaries are 1..70 octets of a safe set;
 * we take up to FOOTER_MAX_BOUNDARY printable ASCII octets. */
static bool
check_boundary(struct lex *lx, const struct mparams *mp, bool over)
{
	size_t i;

	if (over || mp->boundary_len > FOOTER_MAX_BOUNDARY) {
		lx->err = "boundary longer than the cap";
		return false;
	}
	if (mp->boundary_len == 0) {
		lx->err = "empty boundary";
		return false;
	}
	for (i = 0; i < mp->boundary_len; i++) {
		unsigned char c = (unsigned char)mp->boundary[i];

		if (c < 0x20 || c > 0x7e) {
			lx->err = "boundary with an octet outside printable "
			    "ASCII";
			return false;
		}
	}
	return true;
}

/* lex_params - *(";" attribute "=" value) to the end of the value. Empty
 * parameters (";;", a trailing ";") are tolerated; unknown attributes,
 * RFC 2231 ones ("name*0*=...") included, are read and skipped. */
static bool
lex_params(struct lex *lx, struct mparams *mp)
{
	char scratch[256];

	for (;;) {
		const char *a;
		size_t alen, vlen, i;
		bool over;

		if (!lex_cfws(lx))
			return false;
		if (lx->i >= lx->n)
			return true;
		if (lx->p[lx->i] != ';') {
			lx->err = "junk where ';' was expected";
			return false;
		}
		lx->i++;
		if (!lex_cfws(lx))
			return false;
		if (lx->i >= lx->n || lx->p[lx->i] == ';')
			continue;
		if (!lex_token(lx, false, &a, &alen)) {
			lx->err = "parameter name expected";
			return false;
		}
		if (!lex_cfws(lx))
			return false;
		if (lx->i >= lx->n || lx->p[lx->i] != '=') {
			lx->err = "'=' expected after a parameter name";
			return false;
		}
		lx->i++;
		if (!lex_cfws(lx))
			return false;
		if (ci_is(a, alen, "boundary")) {
			if (mp->has_boundary) {
				lx->err = "two boundary parameters";
				return false;
			}
			if (!lex_value(lx, mp->boundary, sizeof(mp->boundary),
			    &mp->boundary_len, &over) ||
			    !check_boundary(lx, mp, over))
				return false;
			mp->has_boundary = true;
		} else if (ci_is(a, alen, "charset")) {
			if (mp->has_charset) {
				lx->err = "two charset parameters";
				return false;
			}
			if (!lex_value(lx, mp->charset, sizeof(mp->charset),
			    &vlen, &over))
				return false;
			if (over) {
				lx->err = "charset name too long";
				return false;
			}
			/* RFC 2978 names are printable ASCII without space. */
			for (i = 0; i < vlen; i++) {
				unsigned char c = (unsigned char)mp->charset[i];

				if (c <= 0x20 || c >= 0x7f) {
					lx->err = "charset with an octet "
					    "outside printable ASCII";
					return false;
				}
				mp->charset[i] = lower(mp->charset[i]);
			}
			mp->has_charset = true;
		} else if (ci_is(a, alen, "format")) {
			/* RFC 3676 §4.1, values case-insensitive (RFC
			 * 2045 §5.1). Of two format parameters, one that
			 * says flowed wins: the flowed rules are harmless
			 * to a fixed reader, the reverse is not. */
			if (!lex_value(lx, scratch, sizeof(scratch), &vlen,
			    &over))
				return false;
			if (!over && ci_is(scratch, vlen, "flowed"))
				mp->flowed = true;
		} else if (!lex_value(lx, scratch, sizeof(scratch), &vlen,
		    &over))
			return false;
	}
}

/* A parsed Content-Type. */
struct ctype {
	char type[NAME_MAX_LEN + 1];	/* lowercase */
	char subtype[NAME_MAX_LEN + 1];	/* lowercase */
	struct mparams par;
};

/* lex_name - a type or subtype name, lowercased into dst. */
static bool
lex_name(struct lex *lx, char *dst)
{
	const char *s;
	size_t len, i;

	if (!lex_token(lx, false, &s, &len)) {
		lx->err = "media type name expected";
		return false;
	}
	if (len > NAME_MAX_LEN) {
		lx->err = "media type name too long";
		return false;
	}
	for (i = 0; i < len; i++)
		dst[i] = lower(s[i]);
	dst[len] = '\0';
	return true;
}

/* ctype_parse - RFC 2045 §5.1: type "/" subtype *(";" parameter). */
static bool
ctype_parse(const char *p, size_t n, struct ctype *ct, const char **err)
{
	struct lex lx = { p, n, 0, NULL };

	memset(ct, 0, sizeof(*ct));
	if (!lex_cfws(&lx) || !lex_name(&lx, ct->type) || !lex_cfws(&lx))
		goto bad;
	if (lx.i >= lx.n || lx.p[lx.i] != '/') {
		lx.err = "'/' expected after the type";
		goto bad;
	}
	lx.i++;
	if (!lex_cfws(&lx) || !lex_name(&lx, ct->subtype) ||
	    !lex_params(&lx, &ct->par))
		goto bad;
	return true;
bad:
	*err = lx.err;
	return false;
}

enum cte { CTE_7BIT, CTE_8BIT, CTE_BINARY, CTE_QP, CTE_BASE64, CTE_OTHER };

/* cte_parse - RFC 2045 §6.1: one token, comments around it allowed. */
static bool
cte_parse(const char *p, size_t n, enum cte *enc, const char **err)
{
	struct lex lx = { p, n, 0, NULL };
	const char *s;
	size_t len;

	if (!lex_cfws(&lx))
		goto bad;
	if (!lex_token(&lx, false, &s, &len)) {
		lx.err = "encoding name expected";
		goto bad;
	}
	if (!lex_cfws(&lx))
		goto bad;
	if (lx.i < lx.n) {
		lx.err = "junk after the encoding";
		goto bad;
	}
	*enc = ci_is(s, len, "7bit") ? CTE_7BIT : ci_is(s, len, "8bit") ?
	    CTE_8BIT : ci_is(s, len, "binary") ? CTE_BINARY :
	    ci_is(s, len, "quoted-printable") ? CTE_QP :
	    ci_is(s, len, "base64") ? CTE_BASE64 : CTE_OTHER;
	return true;
bad:
	*err = lx.err;
	return false;
}

/* disp_inline - RFC 2183: is the disposition type "inline"? Anything
 * unreadable counts as not inline (§2.8 treats unknown as attachment). */
static bool
disp_inline(const char *p, size_t n)
{
	struct lex lx = { p, n, 0, NULL };
	const char *s;
	size_t len;

	return lex_cfws(&lx) && lex_token(&lx, false, &s, &len) &&
	    ci_is(s, len, "inline");
}

/* What one header (the message's or a part's) says about its content. */
struct mime {
	struct ctype type;	/* text/plain when there is no Content-Type */
	enum cte enc;		/* 7bit when absent */
	bool is_inline;		/* no Content-Disposition, or "inline" */
};

/* field_value - the bytes after the colon. */
static void
field_value(const struct dkim_field *f, const char **p, size_t *n)
{
	*p = f->raw + f->value_off;
	*n = f->raw_len - f->value_off;
}

/* mime_read - the MIME fields of a header; false, with a reason, when
 * one is repeated or does not parse. */
static bool
mime_read(const struct dkim_field *fl, size_t nf, struct mime *mi,
    char *why, size_t whylen)
{
	const struct dkim_field *ct = NULL, *cte = NULL, *cd = NULL;
	size_t i, nct = 0, ncte = 0, ncd = 0;
	const char *p, *err = NULL;
	size_t n;

	for (i = 0; i < nf; i++) {
		if (dkim_field_is(&fl[i], "content-type"))
			ct = &fl[i], nct++;
		else if (dkim_field_is(&fl[i], "content-transfer-encoding"))
			cte = &fl[i], ncte++;
		else if (dkim_field_is(&fl[i], "content-disposition"))
			cd = &fl[i], ncd++;
	}
	if (nct > 1 || ncte > 1) {
		snprintf(why, whylen, "%zu %s fields", nct > 1 ? nct : ncte,
		    nct > 1 ? "Content-Type" : "Content-Transfer-Encoding");
		return false;
	}
	memset(mi, 0, sizeof(*mi));
	if (ct != NULL) {
		field_value(ct, &p, &n);
		if (!ctype_parse(p, n, &mi->type, &err)) {
			snprintf(why, whylen, "unparsable Content-Type: %s",
			    err);
			return false;
		}
	} else {
		strcpy(mi->type.type, "text");
		strcpy(mi->type.subtype, "plain");
	}
	mi->enc = CTE_7BIT;
	if (cte != NULL) {
		field_value(cte, &p, &n);
		if (!cte_parse(p, n, &mi->enc, &err)) {
			snprintf(why, whylen, "unparsable "
			    "Content-Transfer-Encoding: %s", err);
			return false;
		}
	}
	mi->is_inline = true;
	if (cd != NULL) {
		field_value(cd, &p, &n);
		mi->is_inline = ncd == 1 && disp_inline(p, n);
	}
	return true;
}

static bool
is_multipart(const struct mime *mi)
{
	return strcmp(mi->type.type, "multipart") == 0;
}

/* identity_enc - RFC 2045 §6.4: composite types only take these. */
static bool
identity_enc(enum cte e)
{
	return e == CTE_7BIT || e == CTE_8BIT || e == CTE_BINARY;
}

/* --------------------------------------------------- multipart structure */

/* One walk over a multipart tree. */
struct walk {
	size_t parts;		/* body parts seen so far, all levels */
	char *why;
	size_t whylen;
};

/*
 * delim_line - is the line at p + s a delimiter line of boundary b (RFC
 * 2046 §5.1.1: "--" boundary, "--" for the close delimiter, transport
 * padding, then CRLF or the end of the body)? 1 for a delimiter, 2 for
 * the close delimiter, 0 for neither, -1 for a delimiter line ended by a
 * bare CR or LF (readers disagree on those). *next is where the following
 * line starts.
 */
static int
delim_line(const char *p, size_t n, size_t s, const char *b, size_t blen,
    size_t *next)
{
	size_t i = s;
	int kind = 1;

	if (n - s < 2 + blen || p[s] != '-' || p[s + 1] != '-' ||
	    memcmp(p + s + 2, b, blen) != 0)
		return 0;
	i += 2 + blen;
	if (n - i >= 2 && p[i] == '-' && p[i + 1] == '-') {
		kind = 2;
		i += 2;
	}
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i == n) {
		*next = n;
		return kind;
	}
	if (n - i >= 2 && p[i] == '\r' && p[i + 1] == '\n') {
		*next = i + 2;
		return kind;
	}
	return (p[i] == '\r' || p[i] == '\n') ? -1 : 0;
}

static bool walk_multipart(struct walk *w, const char *p, size_t n,
    const struct mparams *mp, unsigned depth, size_t *close);

/* walk_part - one body part: its header must parse, and a multipart
 * inside must be whole. */
static bool
walk_part(struct walk *w, const char *p, size_t n, unsigned depth)
{
	const struct dkim_limits lim = { FOOTER_MAX_PART_HEADER,
	    FOOTER_MAX_PART_FIELDS, FOOTER_MAX_PART_HEADER };
	struct dkim_msg *m;
	struct mime mi;
	enum dkim_status st;
	char pw[DKIM_WHY_MAX];
	size_t close, no = w->parts;
	bool ok = true;

	if (n == 0)
		return true;	/* an empty part: no header, no body */
	st = dkim_msg_parse(p, n, &lim, &m, pw, sizeof(pw));
	switch (st) {
	case DKIM_OK:
		break;
	case DKIM_E_LINE_TOO_LONG:
	case DKIM_E_HEADER_TOO_BIG:
		snprintf(w->why, w->whylen, "part %zu: header larger than %d "
		    "octets", no, FOOTER_MAX_PART_HEADER);
		return false;
	case DKIM_E_TOO_MANY_HEADERS:
		snprintf(w->why, w->whylen, "part %zu: more than %d header "
		    "fields", no, FOOTER_MAX_PART_FIELDS);
		return false;
	default:
		snprintf(w->why, w->whylen, "part %zu: %s", no,
		    st == DKIM_E_NOMEM ? "out of memory" : pw);
		return false;
	}
	if (!mime_read(m->fields, m->nfields, &mi, pw, sizeof(pw))) {
		snprintf(w->why, w->whylen, "part %zu: %s", no, pw);
		ok = false;
	} else if (is_multipart(&mi)) {
		if (!mi.type.par.has_boundary) {
			snprintf(w->why, w->whylen, "part %zu: multipart "
			    "without a boundary parameter", no);
			ok = false;
		} else if (!identity_enc(mi.enc)) {
			snprintf(w->why, w->whylen, "part %zu: multipart "
			    "with a Content-Transfer-Encoding other than 7bit, "
			    "8bit or binary", no);
			ok = false;
		} else
			ok = walk_multipart(w, m->body, m->body_len,
			    &mi.type.par, depth + 1, &close);
	}
	dkim_msg_free(m);
	return ok;
}

/*
 * walk_multipart - find the delimiters of one multipart body (p, n) and
 * walk each part. *close receives the offset of the CRLF that starts the
 * close delimiter: the place for a new part. The epilogue is not read.
 */
static bool
walk_multipart(struct walk *w, const char *p, size_t n,
    const struct mparams *mp, unsigned depth, size_t *close)
{
	const char *b = mp->boundary;
	size_t blen = mp->boundary_len, s = 0, part = 0, next = 0, e;
	bool open = false, bare = false;
	int k, shown = blen > 60 ? 60 : (int)blen;

	if (depth > FOOTER_MAX_DEPTH) {
		snprintf(w->why, w->whylen, "multipart nesting deeper than %d",
		    FOOTER_MAX_DEPTH);
		return false;
	}
	while (s < n) {
		k = delim_line(p, n, s, b, blen, &next);
		if (k != 0 && bare)
			k = -1;
		if (k < 0) {
			snprintf(w->why, w->whylen, "a delimiter line of "
			    "boundary \"%.*s\" next to a bare CR or LF", shown,
			    b);
			return false;
		}
		if (k > 0) {
			if (!open && k == 2) {
				snprintf(w->why, w->whylen, "boundary \"%.*s\" "
				    "closes before its first part", shown, b);
				return false;
			}
			if (open && !walk_part(w, p + part,
			    s >= part + 2 ? s - 2 - part : 0, depth))
				return false;
			if (k == 2) {
				*close = s - 2;
				return true;
			}
			open = true;
			if (++w->parts > FOOTER_MAX_PARTS) {
				snprintf(w->why, w->whylen, "more than %d MIME "
				    "parts", FOOTER_MAX_PARTS);
				return false;
			}
			part = s = next;
			bare = false;
			continue;
		}
		for (e = s; e < n && p[e] != '\r' && p[e] != '\n'; e++)
			;
		if (e == n)
			break;
		bare = !(p[e] == '\r' && e + 1 < n && p[e + 1] == '\n');
		s = bare ? e + 1 : e + 2;
	}
	snprintf(w->why, w->whylen, open ? "no closing delimiter for boundary "
	    "\"%.*s\"" : "boundary \"%.*s\" never found in the body", shown,
	    b);
	return false;
}

/* -------------------------------------------------------------- planning */

struct plan {
	enum footer_how how;
	char why[DKIM_WHY_MAX];	/* "" unless a fallback to wrapping */
	struct mime mi;		/* the top-level MIME fields, if they read */
	bool mi_ok;
	size_t close;		/* new part: body offset of the close
				 * delimiter's CRLF */
	unsigned char *dec;	/* owned: base64 append, the decoded body */
	size_t declen;
	bool flowed;		/* append to a format=flowed part: */
	struct ftext flow;	/* owned: the footer as it goes there */
};

static bool
charset_is_utf8(const char *cs)
{
	return strcmp(cs, "utf-8") == 0 || strcmp(cs, "utf8") == 0;
}

/* charset_ascii_compatible - ASCII bytes appended after a line end mean
 * ASCII text (cs is lowercase). True for every charset mail uses except
 * the wide Unicode forms, UTF-7 and HZ (where '+' and '~' are escapes)
 * and EBCDIC. */
static bool
charset_ascii_compatible(const char *cs)
{
	static const char *const wide[] = { "utf-16", "utf16", "utf-32",
	    "utf32", "ucs-2", "ucs2", "ucs-4", "ucs4", "iso-10646-ucs",
	    "unicode", "utf-7", "utf7", "hz-gb", "ebcdic", "cp037",
	    "ibm037", "ibm-037", "cp500", "ibm500", "cp875", "cp1026",
	    "ibm1026", "cp1140", "ibm1140" };
	size_t i;

	for (i = 0; i < sizeof(wide) / sizeof(wide[0]); i++)
		if (strncmp(cs, wide[i], strlen(wide[i])) == 0)
			return false;
	return true;
}

/* plan_plain - can the footer go inside this single text/plain part? */
static void
plan_plain(const struct dkim_msg *m, const struct ftext *ft, struct plan *pl)
{
	const struct mime *mi = &pl->mi;
	const char *cs = mi->type.par.has_charset ? mi->type.par.charset :
	    "us-ascii";
	bool long_line;

	if (mi->type.par.flowed) {
		if (!ftext_flowed(ft, &pl->flow)) {
			snprintf(pl->why, sizeof(pl->why), "out of memory");
			return;
		}
		pl->flowed = true;
		ft = &pl->flow;		/* stuffing may lengthen a line */
	}
	long_line = ft->longest > LINE_MAX_SMTP;
	if (!mi->is_inline) {
		snprintf(pl->why, sizeof(pl->why), "text/plain with a "
		    "disposition other than inline");
		return;
	}
	if (!charset_ascii_compatible(cs)) {
		snprintf(pl->why, sizeof(pl->why), "charset \"%s\" is not "
		    "ASCII-compatible", cs);
		return;
	}
	if (!ft->ascii && !charset_is_utf8(cs)) {
		snprintf(pl->why, sizeof(pl->why), "the footer is not ASCII "
		    "and the part's charset is \"%s\"", cs);
		return;
	}
	switch (mi->enc) {
	case CTE_7BIT:
		if (!ft->ascii) {
			snprintf(pl->why, sizeof(pl->why), "a 7bit part cannot "
			    "take a non-ASCII footer");
			return;
		}
		/* FALLTHROUGH */
	case CTE_8BIT:
		if (long_line) {
			snprintf(pl->why, sizeof(pl->why), "a footer line of "
			    "%zu octets is too long for a %s part", ft->longest,
			    mi->enc == CTE_7BIT ? "7bit" : "8bit");
			return;
		}
		break;
	case CTE_BINARY:
	case CTE_QP:
		break;
	case CTE_BASE64:
		pl->dec = dkim_b64_decode(m->body, m->body_len, &pl->declen);
		if (pl->dec == NULL) {
			snprintf(pl->why, sizeof(pl->why), "the base64 body "
			    "does not decode");
			return;
		}
		break;
	default:
		snprintf(pl->why, sizeof(pl->why), "unknown "
		    "Content-Transfer-Encoding");
		return;
	}
	pl->how = FOOTER_APPENDED;
}

/* part_holds_delimiter - does a line of the part (p, n) begin with "--"
 * and the boundary of mp? A reader would take it for a delimiter (RFC
 * 2046 §5.1.1: the delimiter must not occur inside a part), whatever
 * follows it on the line. */
static bool
part_holds_delimiter(const char *p, size_t n, const struct mparams *mp)
{
	size_t s = 0, blen = mp->boundary_len;
	const char *e;

	while (s < n) {
		if (n - s >= 2 + blen && p[s] == '-' && p[s + 1] == '-' &&
		    memcmp(p + s + 2, mp->boundary, blen) == 0)
			return true;
		if ((e = memchr(p + s, '\n', n - s)) == NULL)
			break;
		s = (size_t)(e - p) + 1;
	}
	return false;
}

/* plan_mixed - is this multipart/mixed whole enough to add a part to, and
 * can the footer's part stand in it? */
static void
plan_mixed(const struct dkim_msg *m, const struct ftext *ft, struct plan *pl)
{
	struct walk w = { 0, pl->why, sizeof(pl->why) };
	const struct mparams *mp = &pl->mi.type.par;
	struct dkim_buf fpart;

	if (!identity_enc(pl->mi.enc)) {
		snprintf(pl->why, sizeof(pl->why), "multipart with a "
		    "Content-Transfer-Encoding other than 7bit, 8bit or "
		    "binary");
		return;
	}
	if (!pl->mi.type.par.has_boundary) {
		snprintf(pl->why, sizeof(pl->why), "multipart/mixed without a "
		    "boundary parameter");
		return;
	}
	if (!walk_multipart(&w, m->body, m->body_len, mp, 1, &pl->close))
		return;
	/* The part as emit_new_part writes it. */
	dkim_buf_init(&fpart, 0);
	footer_part(&fpart, ft, pl->mi.enc != CTE_7BIT);
	if (fpart.failed)
		snprintf(pl->why, sizeof(pl->why), "out of memory");
	else if (part_holds_delimiter(fpart.p, fpart.len, mp))
		snprintf(pl->why, sizeof(pl->why), "the footer holds a line "
		    "that starts with the delimiter of boundary \"%.*s\"",
		    mp->boundary_len > 60 ? 60 : (int)mp->boundary_len,
		    mp->boundary);
	else
		pl->how = FOOTER_NEW_PART;
	dkim_buf_free(&fpart);
}

/* plan_make - decide how the footer goes in; wrapping is the default. */
static void
plan_make(const struct dkim_msg *m, const struct ftext *ft, struct plan *pl)
{
	memset(pl, 0, sizeof(*pl));
	pl->how = FOOTER_WRAPPED;
	if (!mime_read(m->fields, m->nfields, &pl->mi, pl->why,
	    sizeof(pl->why)))
		return;
	pl->mi_ok = true;
	if (strcmp(pl->mi.type.type, "text") == 0 &&
	    strcmp(pl->mi.type.subtype, "plain") == 0)
		plan_plain(m, ft, pl);
	else if (is_multipart(&pl->mi) &&
	    strcmp(pl->mi.type.subtype, "mixed") == 0)
		plan_mixed(m, ft, pl);
}

/* --------------------------------------------------------------- output */

/* add_header - the message's header section as it is, made whole: a last
 * field without CRLF gets one, a missing empty line is added. */
static void
add_header(struct dkim_buf *out, const struct dkim_msg *m)
{
	const char *p = m->data;
	size_t off = m->body_off;
	bool has_sep = ends_crlf(p, off) && (off == 2 ||
	    ends_crlf(p, off - 2));

	dkim_buf_add(out, p, off);
	if (has_sep)
		return;
	if (!ends_crlf(p, off))
		dkim_buf_adds(out, CRLF);
	dkim_buf_adds(out, CRLF);
}

/* emit_append - the footer inside the single text/plain part; in a
 * flowed one, after the end of its last paragraph (flow_end). */
static void
emit_append(struct dkim_buf *out, const struct dkim_msg *m,
    const struct ftext *ft, const struct plan *pl)
{
	const char *b = m->body;
	size_t n = m->body_len, end, i, from;
	struct dkim_buf dec;
	char *enc;
	const char *nl;

	if (pl->flowed)
		ft = &pl->flow;
	add_header(out, m);
	if (pl->mi.enc == CTE_BASE64) {
		/* Decode, add, encode again: the footer follows the body's
		 * own line ends (LF-only text exists in base64). */
		const char *d = (const char *)pl->dec;

		nl = memchr(d, '\n', pl->declen) && !memmem(d, pl->declen,
		    CRLF, 2) ? "\n" : CRLF;
		dkim_buf_init(&dec, out->max);
		dkim_buf_add(&dec, d, pl->declen);
		if (pl->declen > 0 && d[pl->declen - 1] != '\n')
			dkim_buf_adds(&dec, nl);
		if (pl->flowed)
			flow_end(&dec, 0, false, nl);
		footer_plain(&dec, ft, nl);
		enc = dec.failed ? NULL : dkim_b64_encode(
		    (const unsigned char *)dec.p, dec.len);
		dkim_buf_free(&dec);
		if (enc == NULL) {
			out->failed = true;
			return;
		}
		n = strlen(enc);
		for (i = 0; i < n; i += B64_LINE) {
			dkim_buf_add(out, enc + i, n - i < B64_LINE ?
			    n - i : B64_LINE);
			dkim_buf_adds(out, CRLF);
		}
		free(enc);
		return;
	}
	from = out->len;
	dkim_buf_add(out, b, n);
	if (n > 0 && !ends_crlf(b, n))
		dkim_buf_adds(out, CRLF);
	if (pl->mi.enc != CTE_QP) {
		if (pl->flowed)
			flow_end(out, from, false, CRLF);
		footer_plain(out, ft, CRLF);
		return;
	}
	/* A last line that ends in a soft break ('=' and maybe padding)
	 * would run into the footer: end it with a hard break first. */
	end = ends_crlf(b, n) ? n - 2 : n;
	while (end > 0 && (b[end - 1] == ' ' || b[end - 1] == '\t'))
		end--;
	if (end > 0 && b[end - 1] == '=')
		dkim_buf_adds(out, CRLF);
	if (pl->flowed)
		flow_end(out, from, true, CRLF);
	footer_qp(out, ft);
}

/* emit_new_part - the footer part just before the close delimiter. */
static void
emit_new_part(struct dkim_buf *out, const struct dkim_msg *m,
    const struct ftext *ft, const struct plan *pl)
{
	size_t at = m->body_off + pl->close;
	const struct mparams *mp = &pl->mi.type.par;

	dkim_buf_add(out, m->data, at);
	dkim_buf_adds(out, CRLF "--");
	dkim_buf_add(out, mp->boundary, mp->boundary_len);
	dkim_buf_adds(out, CRLF);
	footer_part(out, ft, pl->mi.enc != CTE_7BIT);
	dkim_buf_add(out, m->data + at, m->len - at);
}

/* pick_boundary - a boundary found neither in the message nor in the
 * footer part. Candidates come from a digest of the message, so the
 * output is reproducible and a message cannot guess its boundary. "=_"
 * never occurs in quoted-printable or base64 text. */
static bool
pick_boundary(const struct dkim_msg *m, const struct dkim_buf *fpart,
    char *b, size_t cap)
{
	unsigned char seed[EVP_MAX_MD_SIZE + 4], md[EVP_MAX_MD_SIZE];
	unsigned int slen, mdlen, i, j, k;

	if (!EVP_Digest(m->data, m->len, seed, &slen, EVP_sha256(), NULL))
		return false;
	for (i = 0; i < BOUNDARY_TRIES; i++) {
		memcpy(seed + slen, &i, 4);
		if (!EVP_Digest(seed, slen + 4, md, &mdlen, EVP_sha256(), NULL))
			return false;
		j = (unsigned)snprintf(b, cap, "=_footer_");
		for (k = 0; k < 12 && j + 3 < cap; k++)
			j += (unsigned)snprintf(b + j, cap - j, "%02x", md[k]);
		if (memmem(m->data, m->len, b, j) == NULL &&
		    (fpart->len == 0 || memmem(fpart->p, fpart->len, b, j) ==
		    NULL))
			return true;
	}
	return false;
}

static bool
is_content_field(const struct dkim_field *f)
{
	return f->name_len >= 8 && ci_is(f->name, 8, "content-");
}

/*
 * emit_wrap - the original as the first part of a new multipart/mixed:
 * the top-level header keeps every field but the Content-* ones, which
 * open the first part with their bytes unchanged, over the body as it
 * was. The top level says 8bit (or binary) when a part needs it.
 */
static bool
emit_wrap(struct dkim_buf *out, const struct dkim_msg *m,
    const struct ftext *ft, const struct plan *pl, char *why, size_t whylen)
{
	struct dkim_buf fpart;
	char b[64];
	size_t i;
	bool mime_version = false, part8;
	const char *domain = NULL;

	/* A 7-bit message stays 7-bit: the relay may hand it to a server
	 * that does not offer 8BITMIME (RFC 6152), so a non-ASCII footer
	 * goes quoted-printable unless the message is 8-bit already. */
	dkim_buf_init(&fpart, out->max);
	part8 = footer_part(&fpart, ft, pl->mi_ok &&
	    (pl->mi.enc == CTE_8BIT || pl->mi.enc == CTE_BINARY));
	if (fpart.failed) {
		dkim_buf_free(&fpart);
		out->failed = true;
		return true;
	}
	if (!pick_boundary(m, &fpart, b, sizeof(b))) {
		dkim_buf_free(&fpart);
		snprintf(why, whylen, "no boundary free of the message's text");
		return false;
	}
	if (pl->mi_ok && pl->mi.enc == CTE_BINARY)
		domain = "binary";
	else if (part8 || (pl->mi_ok && pl->mi.enc == CTE_8BIT))
		domain = "8bit";
	for (i = 0; i < m->nfields; i++) {
		if (is_content_field(&m->fields[i]))
			continue;
		if (dkim_field_is(&m->fields[i], "mime-version"))
			mime_version = true;
		add_field(out, &m->fields[i]);
	}
	if (!mime_version)
		dkim_buf_adds(out, "MIME-Version: 1.0" CRLF);
	dkim_buf_addf(out, "Content-Type: multipart/mixed; boundary=\"%s\""
	    CRLF, b);
	if (domain != NULL)
		dkim_buf_addf(out, "Content-Transfer-Encoding: %s" CRLF,
		    domain);
	dkim_buf_addf(out, CRLF "--%s" CRLF, b);
	for (i = 0; i < m->nfields; i++)
		if (is_content_field(&m->fields[i]))
			add_field(out, &m->fields[i]);
	dkim_buf_adds(out, CRLF);
	dkim_buf_add(out, m->body, m->body_len);
	dkim_buf_addf(out, CRLF "--%s" CRLF, b);
	dkim_buf_add(out, fpart.p, fpart.len);
	dkim_buf_addf(out, CRLF "--%s--" CRLF, b);
	dkim_buf_free(&fpart);
	return true;
}

/* ----------------------------------------------------------- public API */

const char *
footer_how_str(enum footer_how h)
{
	switch (h) {
	case FOOTER_APPENDED:
		return "appended";
	case FOOTER_NEW_PART:
		return "new part";
	case FOOTER_WRAPPED:
		return "wrapped";
	}
	return "?";
}

bool
footer_apply(const char *msg, size_t len, const char *footer,
    struct dkim_buf *out, enum footer_how *how, char *why, size_t whylen)
{
	struct ftext ft;
	struct dkim_msg *m;
	struct plan pl;
	enum dkim_status st;
	char pw[DKIM_WHY_MAX];
	bool ok = true;

	if (why == NULL)
		whylen = 0;	/* snprintf then writes nothing */
	if (how != NULL)
		*how = FOOTER_WRAPPED;
	snprintf(why, whylen, "%s", "");
	if (out == NULL || (msg == NULL && len > 0)) {
		snprintf(why, whylen, "no message or no output buffer");
		return false;
	}
	if (!ftext_make(footer, &ft, why, whylen))
		return false;
	pw[0] = '\0';
	st = dkim_msg_parse(msg, len, NULL, &m, pw, sizeof(pw));
	if (st != DKIM_OK) {
		snprintf(why, whylen, "not a message: %s", pw[0] ? pw :
		    dkim_status_str(st));
		dkim_buf_free(&ft.lines);
		return false;
	}
	plan_make(m, &ft, &pl);
	switch (pl.how) {
	case FOOTER_APPENDED:
		emit_append(out, m, &ft, &pl);
		break;
	case FOOTER_NEW_PART:
		emit_new_part(out, m, &ft, &pl);
		break;
	case FOOTER_WRAPPED:
		ok = emit_wrap(out, m, &ft, &pl, why, whylen);
		break;
	}
	if (ok && out->failed) {
		snprintf(why, whylen, "the new message does not fit the output "
		    "buffer (%zu octets)", out->max);
		ok = false;
	}
	if (ok) {
		snprintf(why, whylen, "%s", pl.why);
		if (how != NULL)
			*how = pl.how;
	}
	free(pl.dec);
	dkim_buf_free(&pl.flow.lines);
	dkim_msg_free(m);
	dkim_buf_free(&ft.lines);
	return ok;
}
