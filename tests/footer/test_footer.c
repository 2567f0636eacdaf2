/*
 * test_footer.c - the MIME-aware footer (policy/footer.c) as tables.
 *
 * Every row is a message, a footer, what footer_apply must answer (its
 * return, how, a piece of why) and optionally the exact output or pieces
 * of it. Besides, every successful row is held to the invariant of its
 * shape:
 *   appended   the input is a prefix of the output (base64: the header
 *              is, and the decoded body is the old one plus the footer;
 *              quoted-printable: lines stay within 76 and the decoded body
 *              is the old one plus the footer; a row's tail, when it has
 *              one, stands for the footer: what a flowed part gets)
 *   new part   the output is the input with one piece inserted right
 *              before the close delimiter, and that piece is a part
 *   wrapped    the output is exactly: the non-Content-* fields, the new
 *              MIME fields, "--B", the Content-* fields, the body
 *              unchanged, "--B", the footer part, "--B--", with B found
 *              nowhere in the input
 *
 *   shape_*     one table per shape: text/plain, multipart/mixed, wrap
 *   malformed_* broken MIME and the caps, each wrapped with its reason
 *   refuse_*    what footer_apply must refuse
 *   qp_*, b64_* the encoders, against hand-made expectations
 *   flowed_*    format=flowed parts (RFC 3676): the footer's lines, the
 *               end of the part's last paragraph, in every encoding
 *   robust_*    every prefix and many mutations of a rich message: no
 *               crash, and the invariants whenever it answers
 */
#define _GNU_SOURCE		/* memmem */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "footer.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The footer most rows use: a signature separator with its space. */
#define FOOT		"-- \nThe example list\nhttps://lists.example.org/ex\n"
#define FOOT_CRLF	"-- \r\nThe example list\r\n" \
			"https://lists.example.org/ex\r\n"
/* A footer with UTF-8 and an '='. */
#define FOOT8		"Liste für alle: a=b\n"
#define FOOT8_CRLF	"Liste für alle: a=b\r\n"

#define H	"From: a@example.org\r\nTo: list@example.org\r\n" \
		"Subject: hi\r\nMIME-Version: 1.0\r\n"
#define TP	"Content-Type: text/plain; charset=us-ascii\r\n"

enum enc { PLAIN = 0, QP, B64 };

struct fcase {
	const char *desc;
	const char *msg;
	const char *footer;	/* NULL: FOOT */
	bool ok;
	enum footer_how how;
	const char *why;	/* a substring; "" for empty; NULL unchecked */
	enum enc enc;		/* appended: how the body is encoded */
	const char *want;	/* the exact output; NULL: not checked */
	const char *has[3];	/* pieces the output must contain */
	const char *dec;	/* base64: the decoded body wanted */
	const char *bnd;	/* new part: the boundary */
	size_t max;		/* output ceiling; 0: the default */
	const char *tail;	/* appended, not base64: the decoded text
				 * after the old one and its line end, CRLF;
				 * NULL: the footer as configured */
};

/* ------------------------------------------------------------ helpers */

/* esc - bytes made readable for a failure message (static buffer). */
static const char *
esc(const char *p, size_t n)
{
	static char buf[8192];
	size_t i, o = 0;

	for (i = 0; i < n && o + 8 < sizeof(buf); i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r')
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\r");
		else if (c == '\n')
			o += (size_t)snprintf(buf + o, sizeof(buf) - o,
			    "\\n\n");
		else if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o,
			    "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

static struct dkim_msg *
parse(const char *p, size_t n, const char *desc)
{
	struct dkim_msg *m;
	char why[DKIM_WHY_MAX] = "";

	cr_assert_eq(dkim_msg_parse(p, n, NULL, &m, why, sizeof(why)),
	    DKIM_OK, "%s: output does not parse: %s", desc, why);
	return m;
}

/* footer_crlf - the footer as footer_apply writes it in plain text. */
static void
footer_crlf(const char *f, struct dkim_buf *o)
{
	size_t i, n = strlen(f);

	for (i = 0; i < n; i++) {
		if (f[i] == '\r' && i + 1 < n && f[i + 1] == '\n')
			continue;
		if (f[i] == '\r' || f[i] == '\n')
			dkim_buf_adds(o, "\r\n");
		else
			dkim_buf_addc(o, f[i]);
	}
	if (n > 0 && f[n - 1] != '\n' && f[n - 1] != '\r')
		dkim_buf_adds(o, "\r\n");
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* qp_decode - RFC 2045 §6.7 decoding, strict enough to catch our bugs:
 * lowercase hex and a lone '=' fail the test. */
static void
qp_decode(const char *p, size_t n, struct dkim_buf *o, const char *desc)
{
	size_t s = 0;

	while (s < n) {
		const char *e = memmem(p + s, n - s, "\r\n", 2);
		size_t end = e ? (size_t)(e - p) : n, le = end, i;
		bool soft = false;

		while (le > s && (p[le - 1] == ' ' || p[le - 1] == '\t'))
			le--;
		if (le > s && p[le - 1] == '=') {
			soft = true;
			le--;
		}
		for (i = s; i < le; i++) {
			if (p[i] != '=') {
				dkim_buf_addc(o, p[i]);
				continue;
			}
			cr_assert(i + 2 < le && hexval(p[i + 1]) >= 0 &&
			    hexval(p[i + 2]) >= 0, "%s: bad QP escape at %zu",
			    desc, i);
			dkim_buf_addc(o, (char)(hexval(p[i + 1]) * 16 +
			    hexval(p[i + 2])));
			i += 2;
		}
		if (e != NULL && !soft)
			dkim_buf_adds(o, "\r\n");
		s = e ? end + 2 : n;
	}
}

/* lines_within - no line of (p, n) is longer than max octets. */
static void
lines_within(const char *p, size_t n, size_t max, const char *desc)
{
	size_t s = 0;

	while (s < n) {
		const char *e = memmem(p + s, n - s, "\r\n", 2);
		size_t end = e ? (size_t)(e - p) : n;

		cr_expect(end - s <= max, "%s: a line of %zu octets (max %zu): "
		    "%s", desc, end - s, max, esc(p + s, end - s));
		s = e ? end + 2 : n;
	}
}

static bool
ends_with_crlf(const char *p, size_t n)
{
	return n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n';
}

static bool
is_content(const struct dkim_field *f)
{
	return f->name_len >= 8 && strncasecmp(f->name, "content-", 8) == 0;
}

/* check_appended - the invariant of an append. */
static void
check_appended(const struct fcase *c, const char *msg, size_t len,
    const struct dkim_buf *out)
{
	struct dkim_msg *in = parse(msg, len, c->desc);
	struct dkim_msg *m = parse(out->p, out->len, c->desc);
	struct dkim_buf want, got;
	const char *footer = c->footer ? c->footer : FOOT;

	dkim_buf_init(&want, 0);
	dkim_buf_init(&got, 0);
	if (c->enc == B64) {
		cr_expect(out->len >= in->body_off && memcmp(out->p, msg,
		    in->body_off) == 0, "%s: the header changed", c->desc);
		lines_within(m->body, m->body_len, 76, c->desc);
		if (c->dec != NULL) {
			size_t dl = 0;
			unsigned char *d = dkim_b64_decode(m->body, m->body_len,
			    &dl);

			cr_assert_not_null(d, "%s: output body is not base64",
			    c->desc);
			cr_expect(dl == strlen(c->dec) && memcmp(d, c->dec,
			    dl) == 0, "%s: decoded body\ngot:  %s\nwant: %s",
			    c->desc, esc((char *)d, dl), c->dec);
			free(d);
		}
	} else {
		cr_expect(out->len > len && memcmp(out->p, msg, len) == 0,
		    "%s: the input is not a prefix of the output", c->desc);
	}
	if (c->enc == QP) {
		lines_within(m->body, m->body_len, 76, c->desc);
		qp_decode(in->body, in->body_len, &want, c->desc);
		if (want.len > 0 && !ends_with_crlf(want.p, want.len))
			dkim_buf_adds(&want, "\r\n");
		if (c->tail != NULL)
			dkim_buf_adds(&want, c->tail);
		else
			footer_crlf(footer, &want);
		qp_decode(m->body, m->body_len, &got, c->desc);
		cr_expect(got.len == want.len && memcmp(got.p, want.p,
		    got.len) == 0, "%s: decoded QP body\ngot:  %s", c->desc,
		    esc(got.p, got.len));
	} else if (c->enc == PLAIN) {
		if (c->tail != NULL)
			dkim_buf_adds(&want, c->tail);
		else
			footer_crlf(footer, &want);
		cr_expect(out->len >= want.len && memcmp(out->p + out->len -
		    want.len, want.p, want.len) == 0, "%s: the output does not "
		    "end with the footer", c->desc);
	}
	dkim_buf_free(&want);
	dkim_buf_free(&got);
	dkim_msg_free(in);
	dkim_msg_free(m);
}

/* close_delimiter - the first "\r\n--B--" that ends its line, padding
 * allowed. */
static const char *
close_delimiter(const char *msg, size_t len, const char *close)
{
	const char *at = msg, *end = msg + len, *q;
	size_t cl = strlen(close);

	while ((at = memmem(at, (size_t)(end - at), close, cl)) != NULL) {
		for (q = at + cl; q < end && (*q == ' ' || *q == '\t'); q++)
			;
		if (q == end || (end - q >= 2 && q[0] == '\r' && q[1] == '\n'))
			return at;
		at++;
	}
	return NULL;
}

/* check_new_part - the input with one part inserted before its close. */
static void
check_new_part(const struct fcase *c, const char *msg, size_t len,
    const struct dkim_buf *out)
{
	char close[256], open[256];
	const char *at;
	size_t k, ins;
	struct dkim_msg *m;

	cr_assert_not_null(c->bnd, "%s: row without a boundary", c->desc);
	snprintf(close, sizeof(close), "\r\n--%s--", c->bnd);
	snprintf(open, sizeof(open), "\r\n--%s\r\nContent-Type: text/plain; "
	    "charset=", c->bnd);
	at = close_delimiter(msg, len, close);
	cr_assert_not_null(at, "%s: no close delimiter in the row", c->desc);
	k = (size_t)(at - msg);
	ins = out->len - len;
	cr_assert(out->len > len, "%s: output not longer", c->desc);
	cr_expect(memcmp(out->p, msg, k) == 0, "%s: the bytes before the "
	    "close delimiter changed", c->desc);
	cr_expect(memcmp(out->p + k + ins, msg + k, len - k) == 0, "%s: the "
	    "close delimiter or the epilogue changed", c->desc);
	cr_expect(strncmp(out->p + k, open, strlen(open)) == 0, "%s: the "
	    "inserted piece is not a text/plain part: %s", c->desc,
	    esc(out->p + k, ins < 200 ? ins : 200));
	cr_expect(ends_with_crlf(out->p + k, ins), "%s: the footer part "
	    "does not end with CRLF", c->desc);
	m = parse(out->p, out->len, c->desc);
	dkim_msg_free(m);
}

/* wrap_boundary - the boundary of the output's Content-Type. */
static void
wrap_boundary(const struct dkim_msg *m, char *b, size_t cap,
    const char *desc)
{
	const char *key = "Content-Type: multipart/mixed; boundary=\"";
	size_t i, n = 0, k = strlen(key);

	b[0] = '\0';
	for (i = 0; i < m->nfields; i++) {
		const struct dkim_field *f = &m->fields[i];

		if (!dkim_field_is(f, "content-type"))
			continue;
		n++;
		cr_assert(f->raw_len > k + 1 && memcmp(f->raw, key, k) == 0 &&
		    f->raw[f->raw_len - 1] == '"' && f->raw_len - k - 1 < cap,
		    "%s: top Content-Type is %s", desc,
		    esc(f->raw, f->raw_len));
		memcpy(b, f->raw + k, f->raw_len - k - 1);
		b[f->raw_len - k - 1] = '\0';
	}
	cr_assert_eq(n, 1, "%s: %zu Content-Type fields at the top", desc, n);
}

/* check_wrapped - the exact layout of a wrap around the input. */
static void
check_wrapped(const struct fcase *c, const char *msg, size_t len,
    const struct dkim_buf *out)
{
	struct dkim_msg *in = parse(msg, len, c->desc);
	struct dkim_msg *m = parse(out->p, out->len, c->desc);
	struct dkim_buf want;
	char b[128], tail[160];
	size_t i, mv = 0;
	const char *p;

	wrap_boundary(m, b, sizeof(b), c->desc);
	cr_expect(memmem(msg, len, b, strlen(b)) == NULL, "%s: boundary %s "
	    "occurs in the input", c->desc, b);
	dkim_buf_init(&want, 0);
	for (i = 0; i < in->nfields; i++) {
		if (is_content(&in->fields[i]))
			continue;
		if (dkim_field_is(&in->fields[i], "mime-version"))
			mv++;
		dkim_buf_add(&want, in->fields[i].raw, in->fields[i].raw_len);
		dkim_buf_adds(&want, "\r\n");
	}
	if (mv == 0)
		dkim_buf_adds(&want, "MIME-Version: 1.0\r\n");
	dkim_buf_addf(&want, "Content-Type: multipart/mixed; boundary=\"%s\""
	    "\r\n", b);
	cr_expect(out->len > want.len && memcmp(out->p, want.p, want.len) ==
	    0, "%s: top header\ngot:  %s", c->desc,
	    esc(out->p, out->len < want.len + 40 ? out->len : want.len + 40));
	/* Maybe a Content-Transfer-Encoding, then the body. */
	p = memmem(out->p, out->len, "\r\n\r\n", 4);
	cr_assert_not_null(p, "%s: no body", c->desc);
	dkim_buf_reset(&want);
	dkim_buf_addf(&want, "\r\n\r\n--%s\r\n", b);
	for (i = 0; i < in->nfields; i++)
		if (is_content(&in->fields[i])) {
			dkim_buf_add(&want, in->fields[i].raw,
			    in->fields[i].raw_len);
			dkim_buf_adds(&want, "\r\n");
		}
	dkim_buf_adds(&want, "\r\n");
	dkim_buf_add(&want, in->body, in->body_len);
	dkim_buf_addf(&want, "\r\n--%s\r\nContent-Type: text/plain; charset=",
	    b);
	cr_expect((size_t)(out->p + out->len - p) > want.len &&
	    memcmp(p, want.p, want.len) == 0, "%s: first part\ngot:  %s",
	    c->desc, esc(p, 300));
	snprintf(tail, sizeof(tail), "\r\n--%s--\r\n", b);
	cr_expect(out->len > strlen(tail) && strcmp(out->p + out->len -
	    strlen(tail), tail) == 0, "%s: no close delimiter at the end",
	    c->desc);
	cr_expect(ends_with_crlf(out->p, out->len - strlen(tail)), "%s: the "
	    "footer part does not end with CRLF", c->desc);
	dkim_buf_free(&want);
	dkim_msg_free(in);
	dkim_msg_free(m);
}

/* run - one row against a message of len bytes. */
static void
run(const struct fcase *c, const char *msg, size_t len)
{
	struct dkim_buf out;
	enum footer_how how = FOOTER_APPENDED;
	char why[DKIM_WHY_MAX] = "x";
	size_t i;
	bool ok;

	dkim_buf_init(&out, c->max);
	ok = footer_apply(msg, len, c->footer ? c->footer : FOOT, &out, &how,
	    why, sizeof(why));
	cr_expect_eq(ok, c->ok, "%s: returned %d, want %d (why: %s)", c->desc,
	    ok, c->ok, why);
	if (c->why != NULL && c->why[0] == '\0')
		cr_expect_str_empty(why, "%s: why got \"%s\", want \"\"",
		    c->desc, why);
	else if (c->why != NULL)
		cr_expect(strstr(why, c->why) != NULL, "%s: why got \"%s\", "
		    "want it to contain \"%s\"", c->desc, why, c->why);
	if (!ok || !c->ok) {
		dkim_buf_free(&out);
		return;
	}
	cr_expect_eq(how, c->how, "%s: how got %s, want %s (why: %s)",
	    c->desc, footer_how_str(how), footer_how_str(c->how), why);
	if (c->want != NULL)
		cr_expect(out.len == strlen(c->want) && memcmp(out.p, c->want,
		    out.len) == 0, "%s: output\ngot:\n%s", c->desc,
		    esc(out.p, out.len));
	for (i = 0; i < NELEM(c->has) && c->has[i]; i++)
		cr_expect(memmem(out.p, out.len, c->has[i],
		    strlen(c->has[i])) != NULL, "%s: output lacks \"%s\":\n%s",
		    c->desc, c->has[i], esc(out.p, out.len));
	if (how == c->how) {
		if (how == FOOTER_APPENDED)
			check_appended(c, msg, len, &out);
		else if (how == FOOTER_NEW_PART)
			check_new_part(c, msg, len, &out);
		else
			check_wrapped(c, msg, len, &out);
	}
	dkim_buf_free(&out);
}

static void
run_all(const struct fcase *cases, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		run(&cases[i], cases[i].msg, strlen(cases[i].msg));
}

/* set_footer - give the row whose description holds key a footer too
 * long to write in a table. */
static void
set_footer(struct fcase *rows, size_t n, const char *key, const char *f)
{
	size_t i, hit = 0;

	for (i = 0; i < n; i++)
		if (strstr(rows[i].desc, key) != NULL) {
			rows[i].footer = f;
			hit++;
		}
	cr_assert_eq(hit, 1, "%zu rows match \"%s\"", hit, key);
}

#define AP	FOOTER_APPENDED
#define NP	FOOTER_NEW_PART
#define WR	FOOTER_WRAPPED

/* ------------------------------------------------- text/plain, appended */

static const struct fcase plain_cases[] = {
	{ "text/plain 7bit", H TP "Content-Transfer-Encoding: 7bit\r\n\r\n"
	    "Hello.\r\n", NULL, true, AP, "", PLAIN, H TP
	    "Content-Transfer-Encoding: 7bit\r\n\r\nHello.\r\n" FOOT_CRLF },
	{ "no Content-Type at all (RFC 2045 §5.2)",
	    "From: a@example.org\r\nSubject: hi\r\n\r\nHello.\r\n", NULL, true,
	    AP, "", PLAIN, "From: a@example.org\r\nSubject: hi\r\n\r\n"
	    "Hello.\r\n" FOOT_CRLF },
	/* The message is 7bit, so the wrap stays 7bit: the footer part is
	 * quoted-printable and there is no top-level 8bit label. */
	{ "no Content-Type, UTF-8 footer: us-ascii cannot take it",
	    "From: a@example.org\r\n\r\nHello.\r\n", FOOT8, true, WR,
	    "\"us-ascii\"", PLAIN, NULL, { "Content-Transfer-Encoding: "
	    "quoted-printable\r\nContent-Disposition: inline\r\n\r\n"
	    "Liste f=C3=BCr alle: a=3Db\r\n" } },
	{ "text/plain 8bit utf-8, UTF-8 footer", H "Content-Type: text/plain; "
	    "charset=\"UTF-8\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	    "Grüße\r\n", FOOT8, true, AP, "", PLAIN, H "Content-Type: "
	    "text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: 8bit"
	    "\r\n\r\nGrüße\r\n" FOOT8_CRLF },
	{ "charset spelled utf8", H "Content-Type: text/plain; charset=utf8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\nx\r\n", FOOT8, true, AP,
	    "", PLAIN },
	{ "binary utf-8", H "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: binary\r\n\r\nx\r\n", FOOT8, true, AP,
	    "", PLAIN },
	{ "iso-8859-1 with an ASCII footer: appended", H "Content-Type: "
	    "text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: "
	    "8bit\r\n\r\nGr\xfc\xdf" "e\r\n", NULL, true, AP, "", PLAIN },
	{ "iso-8859-1 with a UTF-8 footer: wrapped", H "Content-Type: "
	    "text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: "
	    "8bit\r\n\r\nGr\xfc\xdf" "e\r\n", FOOT8, true, WR,
	    "the footer is not ASCII and the part's charset is \"iso-8859-1\"",
	    PLAIN, NULL, { "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\nContent-Disposition: inline"
	    "\r\n\r\n" FOOT8_CRLF } },
	{ "charset read across folding and comments", H "Content-Type: "
	    "text/plain;\r\n\t(the charset) charset=\r\n ISO-8859-1 (latin)\r\n"
	    "\r\nx\r\n", FOOT8, true, WR, "\"iso-8859-1\"" },
	{ "utf-16 takes no ASCII footer", H "Content-Type: text/plain; "
	    "charset=UTF-16\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	    "//5oAGkA\r\n", NULL, true, WR, "not ASCII-compatible" },
	{ "7bit utf-8 part, UTF-8 footer: 7bit cannot take it", H "Content-"
	    "Type: text/plain; charset=utf-8\r\n\r\nx\r\n", FOOT8, true, WR,
	    "7bit part" },
	{ "type, subtype, attribute names in any case, comments, quotes", H
	    "Content-Type: (c1) TEXT (c2) / Plain (c3 (nested) \\) ) ; (c4) "
	    "CharSet = \"us-ascii\" (c5)\r\n\r\nx\r\n", NULL, true, AP, "",
	    PLAIN },
	{ "trailing ';' and empty parameters", H "Content-Type: text/plain;;"
	    " charset=us-ascii;\r\n\r\nx\r\n", NULL, true, AP, "", PLAIN },
	{ "RFC 2231 parameters are skipped", H "Content-Type: text/plain; "
	    "title*0*=us-ascii'en'This%20is; title*1=\" fun\"; charset*=x\r\n"
	    "\r\nx\r\n", NULL, true, AP, "", PLAIN },
	{ "format=flowed and other parameters", H "Content-Type: text/plain; "
	    "format=flowed; delsp=yes; charset=us-ascii\r\n\r\nx\r\n", NULL,
	    true, AP, "", PLAIN },
	{ "CTE in upper case with a comment", H TP "Content-Transfer-Encoding:"
	    " 8BIT (raw)\r\n\r\nx\r\n", NULL, true, AP, "", PLAIN },
	{ "body without a final CRLF", H TP "\r\nHello.", NULL, true, AP, "",
	    PLAIN, H TP "\r\nHello.\r\n" FOOT_CRLF },
	{ "empty body", H TP "\r\n", NULL, true, AP, "", PLAIN,
	    H TP "\r\n" FOOT_CRLF },
	{ "header only, no empty line", H TP, NULL, true, AP, "", PLAIN,
	    H TP "\r\n" FOOT_CRLF },
	{ "header only, last field without CRLF", "Subject: x", NULL, true,
	    AP, "", PLAIN, "Subject: x\r\n\r\n" FOOT_CRLF },
	{ "a message of just the empty line", "\r\n", NULL, true, AP, "",
	    PLAIN, "\r\n" FOOT_CRLF },
	{ "footer with CRLF, LF and lone CR line ends, no final one", H TP
	    "\r\nx\r\n", "a\r\nb\nc\rd", true, AP, "", PLAIN,
	    H TP "\r\nx\r\na\r\nb\r\nc\r\nd\r\n" },
	{ "text/plain attachment is wrapped", H TP "Content-Disposition: "
	    "attachment; filename=notes.txt\r\n\r\nx\r\n", NULL, true, WR,
	    "disposition other than inline" },
	{ "Content-Disposition inline stays appended", H TP "Content-"
	    "Disposition: INLINE\r\n\r\nx\r\n", NULL, true, AP, "", PLAIN },
	{ "unknown transfer encoding", H TP "Content-Transfer-Encoding: "
	    "x-uuencode\r\n\r\nbegin 644 x\r\n", NULL, true, WR,
	    "unknown Content-Transfer-Encoding" },
};

Test(shape, text_plain)
{
	run_all(plain_cases, NELEM(plain_cases));
}

/* -------------------------------------------------- quoted-printable */

#define QPH	H "Content-Type: text/plain; charset=utf-8\r\n" \
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
#define X10	"xxxxxxxxxx"
#define X70	X10 X10 X10 X10 X10 X10 X10

static const struct fcase qp_cases[] = {
	{ "QP: '=', UTF-8, trailing space, From", QPH "caf=C3=A9\r\n",
	    "a=b ü\nFrom x \n", true, AP, "", QP,
	    QPH "caf=C3=A9\r\na=3Db =C3=BC\r\n=46rom x=20\r\n" },
	{ "QP: trailing tab and a line of one space", QPH "x\r\n", "t\t\n \n",
	    true, AP, "", QP, QPH "x\r\nt=09\r\n=20\r\n" },
	{ "QP: 76 characters fit one line", QPH "x\r\n", X70 "xxxxxx\n",
	    true, AP, "", QP, QPH "x\r\n" X70 "xxxxxx\r\n" },
	{ "QP: 77 characters take a soft break after 75", QPH "x\r\n",
	    X70 "xxxxxxx\n", true, AP, "", QP,
	    QPH "x\r\n" X70 "xxxxx=\r\nxx\r\n" },
	{ "QP: an escape never straddles the break", QPH "x\r\n",
	    X70 "xxxx=y\n", true, AP, "", QP,
	    QPH "x\r\n" X70 "xxxx=\r\n=3Dy\r\n" },
	{ "QP: a long UTF-8 line with '='", QPH "x\r\n",
	    "ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü=ü\n",
	    true, AP, "", QP },
	{ "QP: a 2000-octet footer line", QPH "x\r\n", NULL, true, AP, "",
	    QP },
	{ "QP: body ending in a soft break gets a hard one", QPH "abc=\r\n",
	    "f\n", true, AP, "", QP, QPH "abc=\r\n\r\nf\r\n" },
	{ "QP: soft break and padding, no CRLF", QPH "abc= \t", "f\n", true,
	    AP, "", QP, QPH "abc= \t\r\n\r\nf\r\n" },
	{ "QP: body without a final CRLF", QPH "abc", "f\n", true, AP, "", QP,
	    QPH "abc\r\nf\r\n" },
	{ "QP: empty body", QPH, "f\n", true, AP, "", QP, QPH "f\r\n" },
	{ "QP: us-ascii part, ASCII footer with '='", H TP "Content-Transfer-"
	    "Encoding: Quoted-Printable\r\n\r\nx\r\n", "a=b\n", true, AP, "",
	    QP },
};

Test(qp, table)
{
	struct fcase rows[NELEM(qp_cases)];
	char longline[2002];

	memset(longline, 'y', 2000);
	longline[2000] = '\n';
	longline[2001] = '\0';
	memcpy(rows, qp_cases, sizeof(rows));
	set_footer(rows, NELEM(rows), "2000-octet", longline);
	run_all(rows, NELEM(rows));
}

/* ------------------------------------------------------------- base64 */

#define B64H	H "Content-Type: text/plain; charset=utf-8\r\n" \
		"Content-Transfer-Encoding: base64\r\n\r\n"
#define FOX	"The quick brown fox jumps over the lazy dog. "

static const struct fcase b64_cases[] = {
	{ "base64 CRLF text", B64H "SGVsbG8NCldvcmxkDQo=\r\n", NULL, true, AP,
	    "", B64, NULL, { 0 }, "Hello\r\nWorld\r\n" FOOT_CRLF },
	{ "base64 LF-only text gets an LF footer", B64H
	    "bGluZSBvbmUKbGluZSB0d28K\r\n", NULL, true, AP, "", B64, NULL,
	    { 0 }, "line one\nline two\n" FOOT },
	{ "base64 text without a final line end", B64H
	    "bm8gbmV3bGluZSBhdCBlbmQ=\r\n", "f\n", true, AP, "", B64, NULL,
	    { 0 }, "no newline at end\r\nf\r\n" },
	{ "base64 UTF-8 text, UTF-8 footer", B64H "R3LDvMOfZQ0K\r\n", FOOT8,
	    true, AP, "", B64, NULL, { 0 }, "Grüße\r\n" FOOT8_CRLF },
	{ "base64 over several 76-column lines", B64H
	    "VGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZy4gVGhl"
	    "IHF1aWNrIGJy\r\nb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZy4gVGhl"
	    "IHF1aWNrIGJyb3duIGZveCBqdW1w\r\ncyBvdmVyIHRoZSBsYXp5IGRvZy4gVGhl"
	    "IHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBs\r\nYXp5IGRvZy4gDQo="
	    "\r\n", NULL, true, AP, "", B64, NULL, { 0 },
	    FOX FOX FOX FOX "\r\n" FOOT_CRLF },
	{ "base64 empty body", B64H, "f\n", true, AP, "", B64,
	    B64H "Zg0K\r\n", { 0 }, "f\r\n" },
	{ "base64 exact output", B64H "SGVsbG8NCg==\r\n", "f\n", true, AP,
	    "", B64, B64H "SGVsbG8NCmYNCg==\r\n" },
	{ "truncated base64 is wrapped", B64H "SGVsbG8NCldvcmxkDQ\r\n", NULL,
	    true, WR, "base64 body does not decode" },
	{ "base64 with junk is wrapped", B64H "SGVs*bG8=\r\n", NULL, true,
	    WR, "base64 body does not decode" },
	{ "base64 with data after padding is wrapped", B64H
	    "SGVsbG8=\r\nSGVsbG8=\r\n", NULL, true, WR, "does not decode" },
};

Test(b64, table)
{
	run_all(b64_cases, NELEM(b64_cases));
}

/* ---------------------------------------------- multipart/mixed, new part */

#define MIXED(b)	H "Content-Type: multipart/mixed; boundary=\"" b \
			"\"\r\n\r\n"
#define FPART7		"Content-Type: text/plain; charset=us-ascii\r\n" \
			"Content-Transfer-Encoding: 7bit\r\n" \
			"Content-Disposition: inline\r\n\r\n"

#define NESTED	MIXED("b1") \
	"--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n" \
	"--b2\r\nContent-Type: text/plain\r\n\r\nplain\r\n" \
	"--b2\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b2--\r\n\r\n" \
	"--b1\r\nContent-Type: image/png; name=\"x.png\"\r\n" \
	"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b1--\r\n"

static const struct fcase mixed_cases[] = {
	{ "mixed with preamble and epilogue", MIXED("b1") "A preamble.\r\n"
	    "--b1\r\nContent-Type: text/plain\r\n\r\nPart one.\r\n"
	    "--b1\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
	    "--b1--\r\nEpilogue.\r\n", NULL, true, NP, "", PLAIN,
	    MIXED("b1") "A preamble.\r\n"
	    "--b1\r\nContent-Type: text/plain\r\n\r\nPart one.\r\n"
	    "--b1\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
	    "--b1\r\n" FPART7 FOOT_CRLF "\r\n--b1--\r\nEpilogue.\r\n",
	    { 0 }, NULL, "b1" },
	{ "mixed with a nested alternative", NESTED, NULL, true, NP, "",
	    PLAIN, NULL, { 0 }, NULL, "b1" },
	{ "transport padding after delimiters", MIXED("b1") "--b1 \t\r\n"
	    "Content-Type: text/plain\r\n\r\none\r\n--b1\t\r\n\r\ntwo\r\n"
	    "--b1--  \r\n", NULL, true, NP, "", PLAIN, NULL, { 0 }, NULL,
	    "b1" },
	{ "lines that only look like delimiters", MIXED("b1") "--b1\r\n\r\n"
	    "--b1x\r\n--b1 junk\r\n --b1\r\n---b1\r\n--b1--x\r\n--b1\r\n\r\n"
	    "two\r\n--b1--\r\n", NULL, true, NP, "", PLAIN, NULL, { 0 }, NULL,
	    "b1" },
	{ "UTF-8 footer in a 7bit multipart: quoted-printable part", NESTED,
	    FOOT8, true, NP, "", PLAIN, NULL, { "Content-Type: text/plain; "
	    "charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
	    "Content-Disposition: inline\r\n\r\nListe f=C3=BCr alle: a=3Db\r\n"
	    "\r\n--b1--" }, NULL, "b1" },
	{ "UTF-8 footer in an 8bit multipart: 8bit part", H "Content-Type: "
	    "multipart/mixed; boundary=b1\r\nContent-Transfer-Encoding: 8bit"
	    "\r\n\r\n--b1\r\n\r\nx\r\n--b1--\r\n", FOOT8, true, NP, "", PLAIN,
	    NULL, { "Content-Transfer-Encoding: 8bit\r\nContent-Disposition: "
	    "inline\r\n\r\n" FOOT8_CRLF "\r\n--b1--" }, NULL, "b1" },
	{ "a quoted boundary with specials", MIXED("=_a b:c/d?") "--=_a b:c/d?"
	    "\r\n\r\nx\r\n--=_a b:c/d?--\r\n", NULL, true, NP, "", PLAIN, NULL,
	    { 0 }, NULL, "=_a b:c/d?" },
	{ "an unquoted boundary, folded parameter list", H "Content-Type: "
	    "multipart/mixed;\r\n boundary=b1 (a comment)\r\n\r\n--b1\r\n\r\n"
	    "x\r\n--b1--\r\n", NULL, true, NP, "", PLAIN, NULL, { 0 }, NULL,
	    "b1" },
	{ "close delimiter at the very end, no CRLF", MIXED("b1") "--b1\r\n"
	    "\r\nx\r\n--b1--", NULL, true, NP, "", PLAIN, MIXED("b1")
	    "--b1\r\n\r\nx\r\n--b1\r\n" FPART7 FOOT_CRLF "\r\n--b1--", { 0 },
	    NULL, "b1" },
	{ "an empty part", MIXED("b1") "--b1\r\n\r\n--b1--\r\n", NULL, true,
	    NP, "", PLAIN, NULL, { 0 }, NULL, "b1" },
	{ "a part with a header and no empty line", MIXED("b1") "--b1\r\n"
	    "Content-Type: text/plain\r\n--b1--\r\n", NULL, true, NP, "",
	    PLAIN, NULL, { 0 }, NULL, "b1" },
	{ "message/rfc822 inside is not entered", MIXED("b1") "--b1\r\n"
	    "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n"
	    "Content-Type: multipart/mixed; boundary=in\r\n\r\nno delimiters"
	    "\r\n--b1--\r\n", NULL, true, NP, "", PLAIN, NULL, { 0 }, NULL,
	    "b1" },
	{ "a footer line over 998 octets goes quoted-printable", NESTED,
	    NULL, true, NP, "", PLAIN, NULL, { "Content-Transfer-Encoding: "
	    "quoted-printable" }, NULL, "b1" },
	{ "the epilogue may hold more delimiters", MIXED("b1") "--b1\r\n\r\n"
	    "x\r\n--b1--\r\n--b1\r\n--b1--\r\n", NULL, true, NP, "", PLAIN,
	    MIXED("b1") "--b1\r\n\r\nx\r\n--b1\r\n" FPART7 FOOT_CRLF
	    "\r\n--b1--\r\n--b1\r\n--b1--\r\n", { 0 }, NULL, "b1" },
};

Test(shape, multipart_mixed)
{
	struct fcase rows[NELEM(mixed_cases)];
	static char longline[1200];

	memset(longline, 'z', 1100);
	longline[1100] = '\0';
	memcpy(rows, mixed_cases, sizeof(rows));
	set_footer(rows, NELEM(rows), "998", longline);
	run_all(rows, NELEM(rows));
}

/* --------------------------------------------------------------- wrap */

static const struct fcase wrap_cases[] = {
	{ "multipart/alternative", H "Content-Type: multipart/alternative; "
	    "boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\n"
	    "plain\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
	    "--alt--\r\n", NULL, true, WR, "", PLAIN, NULL,
	    { FPART7 FOOT_CRLF } },
	{ "multipart/signed", H "Content-Type: multipart/signed; protocol="
	    "\"application/pgp-signature\"; micalg=pgp-sha256;\r\n boundary="
	    "\"sig\"\r\n\r\n--sig\r\nContent-Type: text/plain\r\n\r\nsigned "
	    "text\r\n--sig\r\nContent-Type: application/pgp-signature\r\n\r\n"
	    "-----BEGIN PGP SIGNATURE-----\r\nAAAA\r\n-----END PGP SIGNATURE"
	    "-----\r\n--sig--\r\n", NULL, true, WR, "" },
	{ "multipart/related", H "Content-Type: multipart/related; type="
	    "\"text/html\"; boundary=rel\r\n\r\n--rel\r\nContent-Type: "
	    "text/html\r\n\r\n<img src=\"cid:a\">\r\n--rel\r\n"
	    "Content-ID: <a>\r\nContent-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n"
	    "\r\nR0lGODlh\r\n--rel--\r\n", NULL, true, WR, "" },
	{ "multipart/digest", H "Content-Type: multipart/digest; boundary=d\r\n"
	    "\r\n--d\r\n\r\nSubject: one\r\n\r\nbody\r\n--d--\r\n", NULL, true,
	    WR, "" },
	{ "text/html single part, no MIME-Version", "From: a@example.org\r\n"
	    "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-"
	    "Encoding: quoted-printable\r\nSubject: s\r\n\r\n<p>caf=C3=A9</p>"
	    "\r\n", NULL, true, WR, "", PLAIN, NULL, { "MIME-Version: 1.0\r\n"
	    } },
	{ "text/html 8bit: the top says 8bit", H "Content-Type: Text/HTML\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n<p>Grüße</p>\r\n", NULL,
	    true, WR, "", PLAIN, NULL, { "\r\nContent-Transfer-Encoding: 8bit"
	    "\r\n\r\n--=_footer_" } },
	{ "binary: the top says binary", H "Content-Type: application/"
	    "octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x01\x02",
	    NULL, true, WR, "", PLAIN, NULL, { "\r\nContent-"
	    "Transfer-Encoding: binary\r\n\r\n--=_footer_" } },
	{ "application/octet-stream with its Content-* fields", "Content-ID: "
	    "<x@y>\r\nFrom: a@example.org\r\nContent-Type: application/"
	    "octet-stream; name=\"r\xc3\xa9sum\xc3\xa9.pdf\"\r\nSubject: file"
	    "\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: "
	    "attachment;\r\n filename=x.pdf\r\nContent-Description: a file\r\n"
	    "content-language: en\r\n\r\nJVBERi0xLjQK\r\n", NULL, true, WR,
	    "" },
	{ "message/rfc822", H "Content-Type: message/rfc822\r\n\r\n"
	    "Subject: inner\r\n\r\ninner body\r\n", NULL, true, WR, "" },
	{ "text/html header only", "Subject: x\r\nContent-Type: text/html",
	    NULL, true, WR, "" },
	{ "image/png with an empty body", H "Content-Type: image/png\r\n\r\n",
	    NULL, true, WR, "" },
	{ "a wrap keeps one MIME-Version", H "Content-Type: text/html\r\n\r\n"
	    "<p>x</p>\r\n", NULL, true, WR, "" },
};

Test(shape, wrap)
{
	run_all(wrap_cases, NELEM(wrap_cases));
}

/* The binary row holds a NUL: run it with its length. */
Test(shape, wrap_binary_with_nul)
{
	static const char msg[] = H "Content-Type: application/octet-stream"
	    "\r\nContent-Transfer-Encoding: binary\r\n\r\n\x01\x02\x00\x03"
	    "\r\n--=_footer_x\r\n";
	const struct fcase c = { "binary body with a NUL", msg, NULL, true,
	    WR, "" };

	run(&c, msg, sizeof(msg) - 1);
}

/* A UTF-8 footer that goes quoted-printable leaves the top 7bit. */
Test(shape, wrap_top_stays_7bit)
{
	const char *msg = H "Content-Type: text/html\r\n\r\n<p>x</p>\r\n";
	char footer[1300];
	struct dkim_buf out;
	enum footer_how how;
	char why[DKIM_WHY_MAX];

	memset(footer, 'y', 1200);
	memcpy(footer, "ü", 2);
	footer[1200] = '\0';
	dkim_buf_init(&out, 0);
	cr_assert(footer_apply(msg, strlen(msg), footer, &out, &how, why,
	    sizeof(why)), "refused: %s", why);
	cr_expect(strstr(out.p, "Content-Transfer-Encoding: 8bit") == NULL,
	    "8bit label with a quoted-printable footer:\n%s",
	    esc(out.p, out.len));
	cr_expect(strstr(out.p, "Content-Transfer-Encoding: quoted-printable"
	    "\r\nContent-Disposition: inline\r\n\r\n=C3=BCyyy") != NULL,
	    "no quoted-printable footer part:\n%s", esc(out.p, out.len));
	dkim_buf_free(&out);
}

Test(shape, wrap_mime_version_once)
{
	const char *msg = wrap_cases[NELEM(wrap_cases) - 1].msg;
	struct dkim_buf out;
	enum footer_how how;
	char why[DKIM_WHY_MAX];
	const char *p;
	size_t n = 0;

	dkim_buf_init(&out, 0);
	cr_assert(footer_apply(msg, strlen(msg), FOOT, &out, &how, why,
	    sizeof(why)), "refused: %s", why);
	for (p = out.p; (p = strstr(p, "MIME-Version:")) != NULL; p++)
		n++;
	cr_expect_eq(n, 1, "MIME-Version %zu times, want 1", n);
	dkim_buf_free(&out);
}

/* ------------------------------------------------ format=flowed (RFC 3676) */

/*
 * In a format=flowed part a line that ends in a space joins the next one
 * (§4.2). Appended to such a part, the footer loses the trailing spaces
 * of its lines but for "-- " (§4.3) and has a line that starts with a
 * space, ">" or "From " space-stuffed (§4.4); a last line of the part
 * that is a soft break is ended first by an empty line with its quote
 * marks (§4.2, §4.5). Every row says the exact output, or the decoded
 * text after the old one (tail).
 */

#define FLOWED	H "Content-Type: text/plain; charset=us-ascii; format=flowed" \
		"\r\n\r\n"
#define FLQP	H "Content-Type: text/plain; charset=utf-8; format=flowed\r\n" \
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
#define FLB64	H "Content-Type: text/plain; charset=utf-8; format=flowed\r\n" \
		"Content-Transfer-Encoding: base64\r\n\r\n"
/* A footer with every line the rules touch, and what a flowed part gets. */
#define FOOTF	"-- \nThe list  \n   \n indented\n>not quoted\nFrom the owner \n" \
		"Fromage\n--  \n\tTab\t\nend"
#define FOOTF_CRLF "-- \r\nThe list\r\n\r\n  indented\r\n >not quoted\r\n" \
		" From the owner\r\nFromage\r\n--\r\n\tTab\t\r\nend\r\n"
#define FOOTF_QP "--=20\r\nThe list\r\n\r\n  indented\r\n >not quoted\r\n" \
		" From the owner\r\nFromage\r\n--\r\n\tTab=09\r\nend\r\n"

static const struct fcase flowed_cases[] = {
	/* The footer's own lines. */
	{ .desc = "flowed: footer lines stripped and stuffed", .msg = FLOWED
	    "Hello.\r\n", .footer = FOOTF, .ok = true, .how = AP, .why = "",
	    .want = FLOWED "Hello.\r\n" FOOTF_CRLF, .tail = FOOTF_CRLF },
	{ .desc = "flowed: the footer most rows use keeps its \"-- \"", .msg =
	    FLOWED "Hello.\r\n", .ok = true, .how = AP, .why = "", .want =
	    FLOWED "Hello.\r\n" FOOT_CRLF },
	{ .desc = "flowed: a footer of spaces is one empty line", .msg = FLOWED
	    "x\r\n", .footer = "   ", .ok = true, .how = AP, .why = "",
	    .want = FLOWED "x\r\n\r\n", .tail = "\r\n" },
	{ .desc = "flowed: a stuffed line keeps its own leading spaces", .msg =
	    FLOWED "x\r\n", .footer = "  two  \n> \n", .ok = true, .how = AP,
	    .why = "", .want = FLOWED "x\r\n   two\r\n >\r\n", .tail =
	    "   two\r\n >\r\n" },
	/* Without format=flowed, nothing changes. */
	{ .desc = "no format parameter: the footer as configured", .msg = H TP
	    "\r\nHello \r\n", .footer = FOOTF, .ok = true, .how = AP, .why = "",
	    .want = H TP "\r\nHello \r\n-- \r\nThe list  \r\n   \r\n indented"
	    "\r\n>not quoted\r\nFrom the owner \r\nFromage\r\n--  \r\n\tTab\t"
	    "\r\nend\r\n" },
	{ .desc = "format=fixed: the footer as configured", .msg = H
	    "Content-Type: text/plain; format=fixed\r\n\r\nsoft \r\n",
	    .footer = "a \n>b\n", .ok = true, .how = AP, .why = "", .want = H
	    "Content-Type: text/plain; format=fixed\r\n\r\nsoft \r\na \r\n>b"
	    "\r\n" },
	{ .desc = "format=flowed on multipart/mixed means nothing", .msg = H
	    "Content-Type: multipart/mixed; format=flowed; boundary=b1\r\n\r\n"
	    "--b1\r\n\r\nsoft \r\n--b1--\r\n", .footer = "a \n", .ok = true,
	    .how = NP, .why = "", .has = { "\r\n\r\na \r\n\r\n--b1--" },
	    .bnd = "b1" },
	/* How the parameter is written. */
	{ .desc = "flowed: quoted value in any case, DelSp=Yes", .msg = H
	    "Content-Type: text/plain; format=\"Flowed\"; DelSp=Yes\r\n\r\n"
	    "soft \r\n", .footer = "a \n", .ok = true, .how = AP, .why = "",
	    .want = H "Content-Type: text/plain; format=\"Flowed\"; DelSp=Yes"
	    "\r\n\r\nsoft \r\n\r\na\r\n", .tail = "\r\na\r\n" },
	{ .desc = "flowed: FORMAT=FLOWED with comments and folding", .msg = H
	    "Content-Type: text/plain;\r\n FORMAT (how) =\r\n\tFLOWED (RFC "
	    "3676); delsp=\"yes\"\r\n\r\nsoft \r\n", .footer = "a \n", .ok =
	    true, .how = AP, .why = "", .tail = "\r\na\r\n" },
	{ .desc = "flowed: of two format parameters, flowed wins", .msg = H
	    "Content-Type: text/plain; format=fixed; format=flowed\r\n\r\n"
	    "soft \r\n", .footer = "a \n", .ok = true, .how = AP, .why = "",
	    .tail = "\r\na\r\n" },
	{ .desc = "flowed: an RFC 2231 format* is skipped", .msg = H
	    "Content-Type: text/plain; format*=''flowed\r\n\r\nsoft \r\n",
	    .footer = "a \n", .ok = true, .how = AP, .why = "", .tail =
	    "a \r\n" },
	{ .desc = "flowed: a value that only starts with flowed", .msg = H
	    "Content-Type: text/plain; format=flowedx\r\n\r\nsoft \r\n",
	    .footer = "a \n", .ok = true, .how = AP, .why = "", .tail =
	    "a \r\n" },
	/* The end of the part's text. */
	{ .desc = "flowed: a soft last line is ended first", .msg = FLOWED
	    "A paragraph that \r\nflows \r\n", .ok = true, .how = AP, .why = "",
	    .want = FLOWED "A paragraph that \r\nflows \r\n\r\n" FOOT_CRLF,
	    .tail = "\r\n" FOOT_CRLF },
	{ .desc = "flowed: a soft last line without CRLF", .msg = FLOWED
	    "flows ", .footer = "f\n", .ok = true, .how = AP, .why = "", .want =
	    FLOWED "flows \r\n\r\nf\r\n", .tail = "\r\nf\r\n" },
	{ .desc = "flowed: delsp=yes, soft last line", .msg = H "Content-Type: "
	    "text/plain; format=flowed; delsp=yes\r\n\r\nbro \r\nken \r\n",
	    .footer = "f\n", .ok = true, .how = AP, .why = "", .tail =
	    "\r\nf\r\n" },
	{ .desc = "flowed: a fixed last line needs nothing", .msg = FLOWED
	    "flows \r\nends\r\n", .footer = "f\n", .ok = true, .how = AP,
	    .why = "", .want = FLOWED "flows \r\nends\r\nf\r\n" },
	{ .desc = "flowed: a soft quoted line is ended at its depth", .msg =
	    FLOWED "> quoted \r\n", .footer = "f\n", .ok = true, .how = AP,
	    .why = "", .want = FLOWED "> quoted \r\n>\r\nf\r\n" },
	{ .desc = "flowed: depth three, unstuffed", .msg = FLOWED ">>>deep "
	    "\r\n", .footer = "f\n", .ok = true, .how = AP, .why = "", .want =
	    FLOWED ">>>deep \r\n>>>\r\nf\r\n" },
	{ .desc = "flowed: the signature separator is not soft", .msg = FLOWED
	    "Bob\r\n-- \r\n", .footer = "f\n", .ok = true, .how = AP, .why =
	    "", .want = FLOWED "Bob\r\n-- \r\nf\r\n" },
	{ .desc = "flowed: a quoted, stuffed signature separator neither",
	    .msg = FLOWED "> -- \r\n", .footer = "f\n", .ok = true, .how = AP,
	    .why = "", .want = FLOWED "> -- \r\nf\r\n" },
	{ .desc = "flowed: a stuffed \"-- \" is the separator too", .msg =
	    FLOWED " -- \r\n", .footer = "f\n", .ok = true, .how = AP, .why =
	    "", .want = FLOWED " -- \r\nf\r\n" },
	{ .desc = "flowed: \"--  \" is a soft line", .msg = FLOWED "--  \r\n",
	    .footer = "f\n", .ok = true, .how = AP, .why = "", .want = FLOWED
	    "--  \r\n\r\nf\r\n" },
	{ .desc = "flowed: one space is a stuffed empty line, fixed", .msg =
	    FLOWED "x\r\n \r\n", .footer = "f\n", .ok = true, .how = AP,
	    .why = "", .want = FLOWED "x\r\n \r\nf\r\n" },
	{ .desc = "flowed: two spaces are a stuffed soft line", .msg = FLOWED
	    "x\r\n  \r\n", .footer = "f\n", .ok = true, .how = AP, .why = "",
	    .want = FLOWED "x\r\n  \r\n\r\nf\r\n" },
	{ .desc = "flowed: a tab at the end is no soft break", .msg = FLOWED
	    "x\t\r\n", .footer = "f\n", .ok = true, .how = AP, .why = "",
	    .want = FLOWED "x\t\r\nf\r\n" },
	{ .desc = "flowed: an empty body", .msg = FLOWED, .footer = "f \n",
	    .ok = true, .how = AP, .why = "", .want = FLOWED "f\r\n", .tail =
	    "f\r\n" },
	{ .desc = "flowed: header only", .msg = H "Content-Type: text/plain; "
	    "format=flowed", .footer = "f \n", .ok = true, .how = AP, .why = "",
	    .want = H "Content-Type: text/plain; format=flowed\r\n\r\nf\r\n",
	    .tail = "f\r\n" },
	{ .desc = "flowed 8bit UTF-8, soft last line", .msg = H "Content-Type: "
	    "text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-"
	    "Encoding: 8bit\r\n\r\nGrüße \r\n", .footer = FOOT8, .ok = true,
	    .how = AP, .why = "", .tail = "\r\n" FOOT8_CRLF },
	/* Quoted-printable: the rules read the decoded text. */
	{ .desc = "flowed QP: footer lines stripped and stuffed", .msg = FLQP
	    "x\r\n", .footer = FOOTF, .ok = true, .how = AP, .why = "", .enc =
	    QP, .want = FLQP "x\r\n" FOOTF_QP, .tail = FOOTF_CRLF },
	{ .desc = "flowed QP: \"=20\" at the end is a soft line", .msg = FLQP
	    "soft=20\r\n", .footer = "f\n", .ok = true, .how = AP, .why = "",
	    .enc = QP, .want = FLQP "soft=20\r\n\r\nf\r\n", .tail = "\r\nf\r\n"
	    },
	{ .desc = "flowed QP: padding after \"=20\"", .msg = FLQP "soft=20 \t"
	    "\r\n", .footer = "f\n", .ok = true, .how = AP, .why = "", .enc =
	    QP, .want = FLQP "soft=20 \t\r\n\r\nf\r\n", .tail = "\r\nf\r\n" },
	{ .desc = "flowed QP: a bare trailing space is padding, fixed",
	    .msg = FLQP "fixed \r\n", .footer = "f\n", .ok = true, .how = AP,
	    .why = "", .enc = QP, .want = FLQP "fixed \r\nf\r\n" },
	{ .desc = "flowed QP: a space before a soft break", .msg = FLQP
	    "abc =\r\n", .footer = "f\n", .ok = true, .how = AP, .why = "",
	    .enc = QP, .want = FLQP "abc =\r\n\r\n\r\nf\r\n", .tail =
	    "\r\nf\r\n" },
	{ .desc = "flowed QP: soft break, then the text goes on fixed",
	    .msg = FLQP "abc=20=\r\ndef\r\n", .footer = "f\n", .ok = true, .how =
	    AP, .why = "", .enc = QP, .want = FLQP "abc=20=\r\ndef\r\nf\r\n" },
	{ .desc = "flowed QP: a soft line over several encoded lines", .msg =
	    FLQP "one =\r\ntwo=\r\n=20\r\n", .footer = "f\n", .ok = true, .how =
	    AP, .why = "", .enc = QP, .want = FLQP "one =\r\ntwo=\r\n=20\r\n"
	    "\r\nf\r\n", .tail = "\r\nf\r\n" },
	{ .desc = "flowed QP: no final CRLF", .msg = FLQP "soft=20", .footer =
	    "f\n", .ok = true, .how = AP, .why = "", .enc = QP, .want = FLQP
	    "soft=20\r\n\r\nf\r\n", .tail = "\r\nf\r\n" },
	{ .desc = "flowed QP: quote marks encoded", .msg = FLQP "=3E=3E x=20"
	    "\r\n", .footer = "f\n", .ok = true, .how = AP, .why = "", .enc =
	    QP, .want = FLQP "=3E=3E x=20\r\n>>\r\nf\r\n", .tail =
	    ">>\r\nf\r\n" },
	{ .desc = "flowed QP: an encoded signature separator", .msg = FLQP
	    "=2D-=20\r\n", .footer = "f\n", .ok = true, .how = AP, .why = "",
	    .enc = QP, .want = FLQP "=2D-=20\r\nf\r\n" },
	/* Base64: the decoded text, its own line ends. */
	{ .desc = "flowed base64: soft last line, CRLF", .msg = FLB64
	    "SGVsbG8gDQp3b3JsZCANCg==\r\n", .footer = FOOTF, .ok = true, .how =
	    AP, .why = "", .enc = B64, .dec = "Hello \r\nworld \r\n\r\n"
	    FOOTF_CRLF },
	{ .desc = "flowed base64: soft last line, LF only", .msg = FLB64
	    "b25lIAp0d28gCg==\r\n", .footer = "f \n>g\n", .ok = true, .how = AP,
	    .why = "", .enc = B64, .dec = "one \ntwo \n\nf\n >g\n" },
	{ .desc = "flowed base64: quoted soft line", .msg = FLB64
	    "PiBxdW90ZWQgDQo=\r\n", .footer = "f\n", .ok = true, .how = AP,
	    .why = "", .enc = B64, .dec = "> quoted \r\n>\r\nf\r\n" },
	{ .desc = "flowed base64: soft, no final line end", .msg = FLB64
	    "ZW5kcyBzb2Z0IA==\r\n", .footer = "f\n", .ok = true, .how = AP,
	    .why = "", .enc = B64, .dec = "ends soft \r\n\r\nf\r\n" },
	{ .desc = "flowed base64: ends with the separator", .msg = FLB64
	    "SGkNCi0tIA0K\r\n", .footer = "f\n", .ok = true, .how = AP, .why =
	    "", .enc = B64, .dec = "Hi\r\n-- \r\nf\r\n" },
	{ .desc = "flowed base64: fixed last line", .msg = FLB64
	    "Zml4ZWQNCg==\r\n", .footer = "f \n", .ok = true, .how = AP, .why =
	    "", .enc = B64, .dec = "fixed\r\nf\r\n" },
	/* Footers that go into a part of their own: no flowed rules. */
	{ .desc = "flowed text in multipart/alternative: wrapped", .msg = H
	    "Content-Type: multipart/alternative; boundary=alt\r\n\r\n--alt\r\n"
	    "Content-Type: text/plain; format=flowed; delsp=yes\r\n\r\nA para"
	    "graph that \r\nflows \r\n--alt\r\nContent-Type: text/html\r\n\r\n"
	    "<p>A paragraph that flows</p>\r\n--alt--\r\n", .footer = FOOTF,
	    .ok = true, .how = WR, .why = "", .has = { "Content-Type: text/"
	    "plain; format=flowed; delsp=yes\r\n\r\nA paragraph that \r\nflows "
	    "\r\n--alt\r\n", FPART7 "-- \r\nThe list  \r\n" } },
	{ .desc = "flowed text in multipart/mixed: a new part", .msg =
	    MIXED("b1") "--b1\r\nContent-Type: text/plain; format=flowed\r\n"
	    "\r\nflows \r\n--b1--\r\n", .footer = "a \n>b\n", .ok = true, .how =
	    NP, .why = "", .want = MIXED("b1") "--b1\r\nContent-Type: text/"
	    "plain; format=flowed\r\n\r\nflows \r\n--b1\r\n" FPART7 "a \r\n>b"
	    "\r\n\r\n--b1--\r\n", .bnd = "b1" },
	{ .desc = "flowed, but the charset cannot take the footer: wrapped",
	    .msg = H "Content-Type: text/plain; charset=iso-8859-1; format="
	    "flowed\r\nContent-Transfer-Encoding: 8bit\r\n\r\nsoft \r\n",
	    .footer = FOOT8, .ok = true, .how = WR, .why = "\"iso-8859-1\"" },
};

Test(flowed, table)
{
	run_all(flowed_cases, NELEM(flowed_cases));
}

/*
 * Decoders take lowercase hex and broken escapes too (the table's strict
 * decoder does not, so these compare the exact output only).
 */
Test(flowed, qp_lenient_decoding)
{
	static const struct {
		const char *body, *want;
	} rows[] = {
		{ "=3e=3e x=20\r\n", "=3e=3e x=20\r\n>>\r\nf\r\n" },
		{ "=2d=2d=20\r\n", "=2d=2d=20\r\nf\r\n" },
		{ "a=2 \r\n", "a=2 \r\nf\r\n" },
		{ "a=\r\n", "a=\r\n\r\nf\r\n" },
		{ "a =x=20\r\n", "a =x=20\r\n\r\nf\r\n" },
		/* An encoded line feed starts a decoded line. */
		{ "x=0D=0A> y=20\r\n", "x=0D=0A> y=20\r\n>\r\nf\r\n" },
		{ "x=20=0D=0A\r\n", "x=20=0D=0A\r\nf\r\n" },
	};
	struct dkim_buf msg, out, want;
	enum footer_how how;
	char why[DKIM_WHY_MAX];
	size_t i;

	for (i = 0; i < NELEM(rows); i++) {
		dkim_buf_init(&msg, 0);
		dkim_buf_init(&out, 0);
		dkim_buf_init(&want, 0);
		dkim_buf_adds(&msg, FLQP);
		dkim_buf_adds(&msg, rows[i].body);
		dkim_buf_adds(&want, FLQP);
		dkim_buf_adds(&want, rows[i].want);
		cr_assert(footer_apply(msg.p, msg.len, "f", &out, &how, why,
		    sizeof(why)), "%s: refused: %s", rows[i].body, why);
		cr_expect(how == AP && out.len == want.len && memcmp(out.p,
		    want.p, out.len) == 0, "%s\ngot:  %s", esc(rows[i].body,
		    strlen(rows[i].body)), esc(out.p, out.len));
		dkim_buf_free(&msg);
		dkim_buf_free(&out);
		dkim_buf_free(&want);
	}
}

/* A paragraph quoted 100 deep, over a soft break, ends with 100 marks,
 * which quoted-printable breaks at 76 columns. */
Test(flowed, qp_deep_quote)
{
	struct fcase c = { .desc = "flowed QP: 100 quote marks", .footer =
	    "f\n", .ok = true, .how = AP, .why = "", .enc = QP };
	struct dkim_buf msg, want, tail;
	size_t i;

	dkim_buf_init(&msg, 0);
	dkim_buf_init(&want, 0);
	dkim_buf_init(&tail, 0);
	dkim_buf_adds(&msg, FLQP);
	for (i = 0; i < 100; i++)
		dkim_buf_adds(&msg, i == 70 ? "=\r\n>" : ">");
	dkim_buf_adds(&msg, " x=20\r\n");
	dkim_buf_add(&want, msg.p, msg.len);
	for (i = 0; i < 100; i++) {
		dkim_buf_addc(&tail, '>');
		if (i == 74)
			dkim_buf_adds(&want, ">=\r\n");
		else
			dkim_buf_addc(&want, '>');
	}
	dkim_buf_adds(&want, "\r\nf\r\n");
	dkim_buf_adds(&tail, "\r\nf\r\n");
	c.msg = msg.p;
	c.want = want.p;
	c.tail = tail.p;
	run(&c, msg.p, msg.len);
	dkim_buf_free(&msg);
	dkim_buf_free(&want);
	dkim_buf_free(&tail);
}

/*
 * Stuffing lengthens a line and stripping shortens one: in an 8bit part
 * a 998-octet footer line fits, and 999 do not (RFC 5322 §2.1.1).
 */
#define F8	H "Content-Type: text/plain%s\r\nContent-Transfer-Encoding: " \
		"8bit\r\n\r\nx\r\n"

Test(flowed, stuffing_and_line_length)
{
	static char gt[1000], sp[1001], sptail[1003], m[256], mf[256];
	struct fcase rows[] = {
		{ .desc = "flowed: '>' and 997 octets are stuffed to 999",
		    .msg = mf, .footer = gt, .ok = true, .how = WR, .why =
		    "a footer line of 999 octets is too long for a 8bit part" },
		{ .desc = "not flowed: '>' and 997 octets fit", .msg = m,
		    .footer = gt, .ok = true, .how = AP, .why = "" },
		{ .desc = "flowed: 998 octets and a space fit", .msg = mf,
		    .footer = sp, .ok = true, .how = AP, .why = "", .tail =
		    sptail },
		{ .desc = "not flowed: 998 octets and a space do not fit",
		    .msg = m, .footer = sp, .ok = true, .how = WR, .why =
		    "a footer line of 999 octets" },
	};

	snprintf(m, sizeof(m), F8, "");
	snprintf(mf, sizeof(mf), F8, "; format=flowed");
	memset(gt, 'g', 998);
	gt[0] = '>';
	gt[998] = '\n';
	memset(sp, 's', 998);
	sp[998] = ' ';
	sp[999] = '\n';
	memcpy(sptail, sp, 998);
	memcpy(sptail + 998, "\r\n", 3);
	run_all(rows, NELEM(rows));
}

/* ------------------------------------------------- malformed: wrapped */

#define PART	"--b1\r\nContent-Type: text/plain\r\n\r\nx\r\n"

static const struct fcase malformed_cases[] = {
	{ "mixed without a boundary", H "Content-Type: multipart/mixed\r\n\r\n"
	    PART "--b1--\r\n", NULL, true, WR, "multipart/mixed without a "
	    "boundary parameter" },
	{ "boundary absent from the body", MIXED("b1") "--other\r\n\r\nx\r\n"
	    "--other--\r\n", NULL, true, WR, "boundary \"b1\" never found in "
	    "the body" },
	{ "no closing delimiter", MIXED("b1") PART PART, NULL, true, WR,
	    "no closing delimiter for boundary \"b1\"" },
	{ "close delimiter before any part", MIXED("b1") "--b1--\r\n", NULL,
	    true, WR, "closes before its first part" },
	{ "empty multipart body", MIXED("b1"), NULL, true, WR,
	    "never found" },
	{ "boundaries are case-sensitive", MIXED("AbC") "--abc\r\n\r\nx\r\n"
	    "--abc--\r\n", NULL, true, WR, "never found" },
	{ "delimiter after a bare LF", MIXED("b1") PART "text\n--b1--\r\n",
	    NULL, true, WR, "bare CR or LF" },
	{ "delimiter ended by a bare LF", MIXED("b1") "--b1\n\r\nx\r\n"
	    "--b1--\r\n", NULL, true, WR, "bare CR or LF" },
	{ "8-bit garbage in the Content-Type", H "Content-Type: text/pl\xe4in"
	    "\r\n\r\nx\r\n", NULL, true, WR, "unparsable Content-Type" },
	{ "control bytes in the Content-Type", H "Content-Type: \x01\x02/\x7f"
	    "\r\n\r\nx\r\n", NULL, true, WR, "unparsable Content-Type" },
	{ "unterminated comment", H "Content-Type: text/plain (oops\r\n\r\n"
	    "x\r\n", NULL, true, WR, "unterminated comment" },
	{ "unterminated quoted boundary", H "Content-Type: multipart/mixed; "
	    "boundary=\"b1\r\n\r\n" PART "--b1--\r\n", NULL, true, WR,
	    "unterminated quoted string" },
	{ "no subtype", H "Content-Type: text\r\n\r\nx\r\n", NULL, true, WR,
	    "'/' expected" },
	{ "empty Content-Type", H "Content-Type:\r\n\r\nx\r\n", NULL, true,
	    WR, "media type name expected" },
	{ "junk after the subtype", H "Content-Type: text/plain garbage\r\n"
	    "\r\nx\r\n", NULL, true, WR, "junk where ';'" },
	{ "parameter without '='", H "Content-Type: text/plain; charset\r\n"
	    "\r\nx\r\n", NULL, true, WR, "'=' expected" },
	{ "parameter without a value", H "Content-Type: text/plain; "
	    "charset=\r\n\r\nx\r\n", NULL, true, WR, "without a value" },
	{ "two boundary parameters", H "Content-Type: multipart/mixed; "
	    "boundary=b1; Boundary=b2\r\n\r\n" PART "--b1--\r\n", NULL, true,
	    WR, "two boundary parameters" },
	{ "empty boundary", H "Content-Type: multipart/mixed; boundary=\"\""
	    "\r\n\r\n--\r\n\r\nx\r\n----\r\n", NULL, true, WR,
	    "empty boundary" },
	{ "boundary with a TAB", H "Content-Type: multipart/mixed; boundary="
	    "\"a\tb\"\r\n\r\n--a\tb\r\n\r\nx\r\n--a\tb--\r\n", NULL, true, WR,
	    "outside printable ASCII" },
	{ "charset with an 8-bit octet", H "Content-Type: text/plain; "
	    "charset=\"utf-8\xe4\"\r\n\r\nx\r\n", NULL, true, WR,
	    "charset with an octet outside printable ASCII" },
	{ "two Content-Type fields", H TP TP "\r\nx\r\n", NULL, true, WR,
	    "2 Content-Type fields" },
	{ "two Content-Transfer-Encoding fields", H TP "Content-Transfer-"
	    "Encoding: 7bit\r\nContent-Transfer-Encoding: base64\r\n\r\nx\r\n",
	    NULL, true, WR, "2 Content-Transfer-Encoding fields" },
	{ "unparsable Content-Transfer-Encoding", H TP "Content-Transfer-"
	    "Encoding: 8bit junk\r\n\r\nx\r\n", NULL, true, WR,
	    "unparsable Content-Transfer-Encoding" },
	{ "multipart in base64", H "Content-Type: multipart/mixed; boundary="
	    "b1\r\nContent-Transfer-Encoding: base64\r\n\r\n" PART "--b1--\r\n",
	    NULL, true, WR, "other than 7bit, 8bit or binary" },
	{ "inner multipart without a boundary", MIXED("b1") "--b1\r\n"
	    "Content-Type: multipart/alternative\r\n\r\nx\r\n--b1--\r\n", NULL,
	    true, WR, "part 1: multipart without a boundary parameter" },
	{ "inner multipart never closed", MIXED("b1") "--b1\r\nContent-Type: "
	    "multipart/alternative; boundary=b2\r\n\r\n--b2\r\n\r\nx\r\n"
	    "--b1--\r\n", NULL, true, WR, "no closing delimiter for boundary "
	    "\"b2\"" },
	{ "inner part with an unparsable Content-Type", MIXED("b1") PART
	    "--b1\r\nContent-Type: ;;\r\n\r\nx\r\n--b1--\r\n", NULL, true, WR,
	    "part 2: unparsable Content-Type" },
	{ "inner part without a header", MIXED("b1") "--b1\r\nJust text, no "
	    "header\r\n--b1--\r\n", NULL, true, WR, "part 1: line 1 is not a "
	    "header field" },
	{ "inner part header with a bare LF", MIXED("b1") "--b1\r\nContent-"
	    "Type: text/plain\nX: y\r\n\r\nx\r\n--b1--\r\n", NULL, true, WR,
	    "part 1: bare LF" },
};

Test(malformed, table)
{
	run_all(malformed_cases, NELEM(malformed_cases));
}

/* nest - multipart/mixed over depth-1 nested multipart/mixed levels. */
static void
nest(struct dkim_buf *b, unsigned depth)
{
	unsigned i;

	dkim_buf_adds(b, H);
	for (i = 0; i < depth; i++)
		dkim_buf_addf(b, "Content-Type: multipart/mixed; boundary="
		    "\"n%u\"\r\n\r\n--n%u\r\n", i, i);
	dkim_buf_adds(b, "\r\nleaf\r\n");
	for (i = depth; i-- > 0;)
		dkim_buf_addf(b, "--n%u--\r\n", i);
}

Test(malformed, nesting_depth)
{
	struct fcase ok = { "nesting at the cap", NULL, NULL, true, NP, "",
	    PLAIN, NULL, { 0 }, NULL, "n0" };
	struct fcase deep = { "nesting over the cap", NULL, NULL, true, WR,
	    "multipart nesting deeper than 16" };
	struct dkim_buf b;

	dkim_buf_init(&b, 0);
	nest(&b, FOOTER_MAX_DEPTH);
	run(&ok, b.p, b.len);
	dkim_buf_reset(&b);
	nest(&b, FOOTER_MAX_DEPTH + 1);
	run(&deep, b.p, b.len);
	dkim_buf_free(&b);
}

Test(malformed, part_count)
{
	struct fcase ok = { "parts at the cap", NULL, NULL, true, NP, "",
	    PLAIN, NULL, { 0 }, NULL, "b1" };
	struct fcase many = { "parts over the cap", NULL, NULL, true, WR,
	    "more than 1000 MIME parts" };
	struct dkim_buf b;
	size_t i;

	dkim_buf_init(&b, 0);
	dkim_buf_adds(&b, MIXED("b1"));
	for (i = 0; i < FOOTER_MAX_PARTS; i++)
		dkim_buf_adds(&b, PART);
	dkim_buf_adds(&b, "--b1--\r\n");
	run(&ok, b.p, b.len);
	dkim_buf_reset(&b);
	dkim_buf_adds(&b, MIXED("b1"));
	for (i = 0; i <= FOOTER_MAX_PARTS; i++)
		dkim_buf_adds(&b, PART);
	dkim_buf_adds(&b, "--b1--\r\n");
	run(&many, b.p, b.len);
	dkim_buf_free(&b);
}

Test(malformed, part_header_caps)
{
	struct fcase big = { "part header over the cap", NULL, NULL, true, WR,
	    "part 1: header larger than 65536 octets" };
	struct fcase fields = { "part fields over the cap", NULL, NULL, true,
	    WR, "part 1: more than 256 header fields" };
	struct dkim_buf b;
	size_t i;

	dkim_buf_init(&b, 0);
	dkim_buf_adds(&b, MIXED("b1") "--b1\r\nX-Big: ");
	for (i = 0; i < FOOTER_MAX_PART_HEADER; i++)
		dkim_buf_addc(&b, 'a');
	dkim_buf_adds(&b, "\r\n\r\nx\r\n--b1--\r\n");
	run(&big, b.p, b.len);
	dkim_buf_reset(&b);
	dkim_buf_adds(&b, MIXED("b1") "--b1\r\n");
	for (i = 0; i <= FOOTER_MAX_PART_FIELDS; i++)
		dkim_buf_adds(&b, "X-F: 1\r\n");
	dkim_buf_adds(&b, "\r\nx\r\n--b1--\r\n");
	run(&fields, b.p, b.len);
	dkim_buf_free(&b);
}

/* comments - a Content-Type with depth nested comments. */
static void
comments(struct dkim_buf *b, unsigned depth)
{
	unsigned i;

	dkim_buf_reset(b);
	dkim_buf_adds(b, H "Content-Type: text/plain ");
	for (i = 0; i < depth; i++)
		dkim_buf_addc(b, '(');
	for (i = 0; i < depth; i++)
		dkim_buf_addc(b, ')');
	dkim_buf_adds(b, "\r\n\r\nx\r\n");
}

Test(malformed, comment_depth)
{
	struct fcase ok = { "comments nested to the cap", NULL, NULL, true,
	    AP, "", PLAIN };
	struct fcase deep = { "comments nested over the cap", NULL, NULL,
	    true, WR, "comments nested too deep" };
	struct dkim_buf b;

	dkim_buf_init(&b, 0);
	comments(&b, FOOTER_MAX_COMMENTS);
	run(&ok, b.p, b.len);
	comments(&b, FOOTER_MAX_COMMENTS + 1);
	run(&deep, b.p, b.len);
	dkim_buf_free(&b);
}

Test(malformed, boundary_length)
{
	char bnd[FOOTER_MAX_BOUNDARY + 2];
	struct fcase ok = { "boundary at the cap", NULL, NULL, true, NP, "",
	    PLAIN, NULL, { 0 }, NULL, bnd };
	struct fcase lng = { "boundary over the cap", NULL, NULL, true, WR,
	    "boundary longer than the cap" };
	struct dkim_buf b;
	size_t n;

	for (n = FOOTER_MAX_BOUNDARY; n <= FOOTER_MAX_BOUNDARY + 1; n++) {
		memset(bnd, 'q', n);
		bnd[n] = '\0';
		dkim_buf_init(&b, 0);
		dkim_buf_addf(&b, H "Content-Type: multipart/mixed; boundary="
		    "\"%s\"\r\n\r\n--%s\r\n\r\nx\r\n--%s--\r\n", bnd, bnd, bnd);
		run(n == FOOTER_MAX_BOUNDARY ? &ok : &lng, b.p, b.len);
		dkim_buf_free(&b);
	}
}

/* --------------------------------------------------------- refusals */

static const struct fcase refuse_cases[] = {
	{ "a line that is not a header field", H "this is not a header\r\n"
	    "\r\nx\r\n", NULL, false, WR, "not a message: line 5 is not a "
	    "header field" },
	{ "8-bit garbage in a field name", "Fr\xf6m: a\r\n\r\nx\r\n", NULL,
	    false, WR, "not a message" },
	{ "a bare LF in the header", "From: a\nSubject: b\r\n\r\nx\r\n", NULL,
	    false, WR, "not a message: bare LF" },
	{ "a continuation with no field", " folded\r\nFrom: a\r\n\r\nx\r\n",
	    NULL, false, WR, "not a message: line 1 continues no header" },
	{ "empty message", "", NULL, false, WR, "not a message: empty" },
	{ "empty footer", H TP "\r\nx\r\n", "", false, WR, "empty footer" },
	{ "footer not UTF-8 (Latin-1 byte)", H TP "\r\nx\r\n", "caf\xe9\n",
	    false, WR, "footer is not UTF-8" },
	{ "footer not UTF-8 (overlong '/')", H TP "\r\nx\r\n", "\xc0\xaf",
	    false, WR, "footer is not UTF-8" },
	{ "footer not UTF-8 (surrogate)", H TP "\r\nx\r\n", "\xed\xa0\x80",
	    false, WR, "footer is not UTF-8" },
	{ "footer not UTF-8 (cut sequence)", H TP "\r\nx\r\n", "ab\xe2\x82",
	    false, WR, "footer is not UTF-8" },
	{ "output ceiling", H TP "\r\nx\r\n", NULL, false, WR, "does not fit "
	    "the output buffer", PLAIN, NULL, { 0 }, NULL, NULL, 100 },
	{ "output ceiling while wrapping", H "Content-Type: text/html\r\n\r\n"
	    "x\r\n", NULL, false, WR, "does not fit", PLAIN, NULL, { 0 }, NULL,
	    NULL, 200 },
};

Test(refuse, table)
{
	run_all(refuse_cases, NELEM(refuse_cases));
}

Test(refuse, footer_too_long)
{
	char *f = malloc(FOOTER_MAX_TEXT + 2);
	struct fcase c = { "footer over the cap", H TP "\r\nx\r\n", NULL,
	    false, WR, "footer longer than 65536 octets" };

	cr_assert_not_null(f);
	memset(f, 'f', FOOTER_MAX_TEXT + 1);
	f[FOOTER_MAX_TEXT + 1] = '\0';
	c.footer = f;
	run(&c, c.msg, strlen(c.msg));
	free(f);
}

Test(refuse, header_line_too_long)
{
	struct fcase c = { "top header line over the dkim cap", NULL, NULL,
	    false, WR, "not a message: header line 1 is too long" };
	struct dkim_buf b;
	size_t i;

	dkim_buf_init(&b, 0);
	dkim_buf_adds(&b, "X-Long: ");
	for (i = 0; i < DKIM_DEFAULT_MAX_LINE; i++)
		dkim_buf_addc(&b, 'l');
	dkim_buf_adds(&b, "\r\n\r\nx\r\n");
	run(&c, b.p, b.len);
	dkim_buf_free(&b);
}

Test(api, names_and_null_arguments)
{
	struct dkim_buf out;
	enum footer_how how;

	cr_expect_str_eq(footer_how_str(FOOTER_APPENDED), "appended");
	cr_expect_str_eq(footer_how_str(FOOTER_NEW_PART), "new part");
	cr_expect_str_eq(footer_how_str(FOOTER_WRAPPED), "wrapped");
	dkim_buf_init(&out, 0);
	cr_expect(!footer_apply(NULL, 5, FOOT, &out, &how, NULL, 0),
	    "NULL message with a length accepted");
	cr_expect(!footer_apply("A: b\r\n", 6, NULL, &out, NULL, NULL, 0),
	    "NULL footer accepted");
	cr_expect(footer_apply("A: b\r\n\r\nx", 9, FOOT, &out, NULL, NULL, 0),
	    "NULL how and why refused");
	dkim_buf_free(&out);
}

/* Output is appended to what out already holds. */
Test(api, appends_to_out)
{
	struct dkim_buf out;
	enum footer_how how;
	char why[DKIM_WHY_MAX];
	const char *msg = "A: b\r\n\r\nx\r\n";

	dkim_buf_init(&out, 0);
	dkim_buf_adds(&out, "Received: x\r\n");
	cr_assert(footer_apply(msg, strlen(msg), "f", &out, &how, why,
	    sizeof(why)), "refused: %s", why);
	cr_expect_str_eq(out.p, "Received: x\r\nA: b\r\n\r\nx\r\nf\r\n");
	dkim_buf_free(&out);
}

/* --------------------------------------------------------- robustness */

#define RICH	H "Content-Type: multipart/mixed;\r\n boundary=\"b1\" " \
	"(outer)\r\n\r\npreamble\r\n" \
	"--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n" \
	"--b2\r\nContent-Type: text/plain; charset=utf-8\r\n" \
	"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\n" \
	"x\r\n--b2\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: " \
	"base64\r\n\r\nPHA+eDwvcD4=\r\n--b2--\r\n" \
	"--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\n" \
	"inner\r\n--b1--\r\nepilogue\r\n"

/* robust_one - footer_apply on arbitrary bytes: no crash, a reason when
 * it refuses, and the invariants of what it says it did. */
static void
robust_one(const char *msg, size_t len, const char *desc)
{
	struct fcase c = { desc, msg, NULL, true, WR, NULL, PLAIN, NULL,
	    { 0 }, NULL, "b1" };
	struct dkim_buf out;
	enum footer_how how;
	char why[DKIM_WHY_MAX];
	struct dkim_msg *in, *m;

	dkim_buf_init(&out, 0);
	if (!footer_apply(msg, len, FOOT, &out, &how, why, sizeof(why))) {
		cr_expect(why[0] != '\0', "%s: refused without a reason", desc);
		dkim_buf_free(&out);
		return;
	}
	m = parse(out.p, out.len, desc);
	in = parse(msg, len, desc);
	if (how == FOOTER_WRAPPED)
		check_wrapped(&c, msg, len, &out);
	else if (how == FOOTER_NEW_PART)
		cr_expect(out.len > len && memmem(out.p, out.len, FOOT_CRLF,
		    strlen(FOOT_CRLF)) != NULL, "%s: no footer part", desc);
	else
		cr_expect(memcmp(out.p, msg, in->body_off) == 0, "%s: header "
		    "changed by an append", desc);
	dkim_msg_free(in);
	dkim_msg_free(m);
	dkim_buf_free(&out);
}

/* A flowed quoted-printable part: every cut of its escapes, soft breaks
 * and quote marks. */
#define RICH_FLOWED	H "Content-Type: text/plain; charset=utf-8;\r\n" \
	" format=\"Flowed\"; DelSp=yes\r\nContent-Transfer-Encoding: " \
	"quoted-printable\r\n\r\n> quoted =\r\nsoft=20\r\n>> -- \r\n" \
	"=3E last=C3=A9=20=\r\n"

static const char *const rich[] = { RICH, RICH_FLOWED };

Test(robust, every_prefix)
{
	size_t r, n, len;
	char desc[64];

	for (r = 0; r < NELEM(rich); r++) {
		len = strlen(rich[r]);
		for (n = 0; n <= len; n++) {
			snprintf(desc, sizeof(desc), "message %zu, prefix of "
			    "%zu octets", r, n);
			robust_one(rich[r], n, desc);
		}
	}
}

Test(robust, mutations)
{
	static const char pick[] = "-\r\n\"();=b \t\\*\0\xff>";
	const char *msg;
	size_t len, i, k;
	uint32_t seed = 12345;
	char *buf = malloc(strlen(RICH) + strlen(RICH_FLOWED)), desc[64];

	cr_assert_not_null(buf);
	for (i = 0; i < 6000; i++) {
		msg = rich[i % NELEM(rich)];
		len = strlen(msg);
		memcpy(buf, msg, len);
		for (k = 0; k < 1 + i % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			buf[(seed >> 8) % len] = pick[(seed >> 20) %
			    (sizeof(pick) - 1)];
		}
		snprintf(desc, sizeof(desc), "mutation %zu", i);
		robust_one(buf, len, desc);
	}
	free(buf);
}
