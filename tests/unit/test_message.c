/*
 * test_message.c - the message model: dkim_msg_parse splitting an RFC 5322
 * message into fields and body (names, raw bytes with folding, offsets),
 * each hard limit and malformation with its own status, random junk that
 * must never crash, and the CLI helper dkim_crlf_from_lf.
 */
#include <criterion/criterion.h>

#include "unit.h"

#define ANY ((size_t)-1)

struct want_field {
	const char *name;
	const char *raw;
	size_t value_off;
	size_t offset;
};

struct msg_case {
	const char *desc;
	const char *in;
	size_t nfields;
	struct want_field f[3];
	const char *body;
	size_t body_off;	/* ANY: not checked */
};

static const struct msg_case msg_cases[] = {
	{ "two fields and a body", "From: a\r\nTo: b\r\n\r\nbody\r\n", 2,
	    { { "From", "From: a", 5, 0 }, { "To", "To: b", 3, 9 } },
	    "body\r\n", 18 },
	{ "folded field keeps its folding",
	    "Subject: a\r\n b\r\n\tc\r\nTo: x\r\n\r\n", 2,
	    { { "Subject", "Subject: a\r\n b\r\n\tc", 8, 0 },
	      { "To", "To: x", 3, 20 } },
	    "", 29 },
	{ "WSP before the colon", "Subject \t: x\r\nX: y\r\n\r\nB", 2,
	    { { "Subject", "Subject \t: x", 10, 0 }, { "X", "X: y", 2, 14 } },
	    "B", 22 },
	{ "WSP-only continuation line", "X: a \r\n \t\r\n b\r\n\r\n", 1,
	    { { "X", "X: a \r\n \t\r\n b", 2, 0 } }, "", 17 },
	{ "no empty line: empty body", "From: a\r\nTo: b\r\n", 2,
	    { { "From", "From: a", 5, 0 }, { "To", "To: b", 3, 9 } },
	    "", ANY },
	{ "no final CRLF", "From: a", 1, { { "From", "From: a", 5, 0 } },
	    "", ANY },
	{ "only the empty line and a body", "\r\nhello\r\n", 0, { { 0 } },
	    "hello\r\n", 2 },
	{ "empty body after the empty line", "From: a\r\n\r\n", 1,
	    { { "From", "From: a", 5, 0 } }, "", 11 },
	{ "only the first empty line ends the header",
	    "A: 1\r\n\r\n\r\nB: 2\r\n", 1, { { "A", "A: 1", 2, 0 } },
	    "\r\nB: 2\r\n", 8 },
	{ "empty value and a colon in a value",
	    "X:\r\nMessage-ID: <a:b@c>\r\n\r\n", 2,
	    { { "X", "X:", 2, 0 },
	      { "Message-ID", "Message-ID: <a:b@c>", 11, 4 } },
	    "", 27 },
	{ "bare CR and LF in the body are data", "A: 1\r\n\r\nx\ry\nz", 1,
	    { { "A", "A: 1", 2, 0 } }, "x\ry\nz", 8 },
	{ "8-bit bytes in a value", "Subject: \xc3\xa9\r\n\r\n", 1,
	    { { "Subject", "Subject: \xc3\xa9", 8, 0 } }, "", 15 },
	{ "ftext boundaries in a name", "!~#;<: v\r\n\r\n", 1,
	    { { "!~#;<", "!~#;<: v", 6, 0 } }, "", 12 },
};

Test(message, parse_valid)
{
	for (size_t i = 0; i < NELEM(msg_cases); i++) {
		const struct msg_case *c = &msg_cases[i];
		size_t len = strlen(c->in);
		struct dkim_msg *m = NULL;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;

		st = dkim_msg_parse(c->in, len, NULL, &m, why, sizeof(why));
		cr_expect(st == DKIM_OK, "%s: status got %d (%s: %s), want "
		    "DKIM_OK", c->desc, st, dkim_status_str(st), why);
		if (st != DKIM_OK)
			continue;
		cr_expect(m->data == c->in && m->len == len, "%s: data/len "
		    "got %p/%zu, want the input %p/%zu", c->desc,
		    (const void *)m->data, m->len, (const void *)c->in, len);
		cr_expect(m->nfields == c->nfields, "%s: fields got %zu, want "
		    "%zu", c->desc, m->nfields, c->nfields);
		for (size_t j = 0; j < c->nfields && j < m->nfields; j++) {
			const struct dkim_field *g = &m->fields[j];
			const struct want_field *w = &c->f[j];

			cr_expect(same(g->name, g->name_len, w->name),
			    "%s: field %zu name got \"%s\", want \"%s\"",
			    c->desc, j, esc(g->name, g->name_len),
			    escs(w->name));
			cr_expect(same(g->raw, g->raw_len, w->raw),
			    "%s: field %zu raw got \"%s\", want \"%s\"",
			    c->desc, j, esc(g->raw, g->raw_len), escs(w->raw));
			cr_expect(g->value_off == w->value_off,
			    "%s: field %zu value_off got %zu, want %zu",
			    c->desc, j, g->value_off, w->value_off);
			cr_expect(g->offset == w->offset,
			    "%s: field %zu offset got %zu, want %zu", c->desc,
			    j, g->offset, w->offset);
			cr_expect(g->raw == c->in + w->offset && g->name == g->raw,
			    "%s: field %zu does not point into the input at "
			    "its offset", c->desc, j);
		}
		cr_expect(same(m->body, m->body_len, c->body),
		    "%s: body got \"%s\", want \"%s\"", c->desc,
		    esc(m->body, m->body_len), escs(c->body));
		if (c->body_off != ANY) {
			cr_expect(m->body_off == c->body_off, "%s: body_off got "
			    "%zu, want %zu", c->desc, m->body_off, c->body_off);
			cr_expect(m->body == c->in + c->body_off, "%s: body "
			    "pointer got in+%td, want in+%zu", c->desc,
			    m->body - c->in, c->body_off);
		}
		dkim_msg_free(m);
	}
}

Test(message, field_is_case_insensitive)
{
	static const struct {
		const char *name;
		bool want;
	} rows[] = {
		{ "Subject", true }, { "subject", true }, { "SUBJECT", true },
		{ "sUbJeCt", true }, { "subjec", false }, { "subjects", false },
		{ "", false }, { "Subject ", false },
	};
	static const char in[] = "Subject : x\r\n\r\n";
	struct dkim_msg *m = NULL;

	cr_assert(dkim_msg_parse(in, strlen(in), NULL, &m, NULL, 0) ==
	    DKIM_OK);
	for (size_t i = 0; i < NELEM(rows); i++) {
		bool got = dkim_field_is(&m->fields[0], rows[i].name);

		cr_expect(got == rows[i].want, "field \"Subject\" is \"%s\": "
		    "got %d, want %d", rows[i].name, got, rows[i].want);
	}
	dkim_msg_free(m);
}

struct err_case {
	const char *desc;
	const char *in;
	size_t len;		/* 0: strlen(in) */
	struct dkim_limits lim;	/* zeroes: library defaults */
	enum dkim_status want;
};

#define L(line, nh, bytes) { (line), (nh), (bytes) }
#define DEF L(0, 0, 0)

static const char long_body[] = "a: 1\r\n\r\n"
    "0123456789012345678901234567890123456789012345678901234567890123456789";

static const struct err_case err_cases[] = {
	{ "empty input", "", 0, DEF, DKIM_E_EMPTY },
	/* max_line: octets of one physical line, CRLF excluded */
	{ "line of exactly max_line", "abcd: 1234\r\n\r\n", 0,
	    L(10, 100, 1000), DKIM_OK },
	{ "line of max_line + 1", "abcd: 12345\r\n\r\n", 0,
	    L(10, 100, 1000), DKIM_E_LINE_TOO_LONG },
	{ "long continuation line", "a: 1\r\n 12345678901\r\n\r\n", 0,
	    L(10, 100, 1000), DKIM_E_LINE_TOO_LONG },
	{ "folded field with short lines", "abcd: 1234\r\n 123456789\r\n\r\n",
	    0, L(10, 100, 1000), DKIM_OK },
	{ "long body lines are not header lines", long_body, 0,
	    L(10, 100, 1000), DKIM_OK },
	/* max_headers: fields, not lines */
	{ "exactly max_headers fields", "a: 1\r\nb: 2\r\n\r\n", 0,
	    L(100, 2, 1000), DKIM_OK },
	{ "max_headers + 1 fields", "a: 1\r\nb: 2\r\nc: 3\r\n\r\n", 0,
	    L(100, 2, 1000), DKIM_E_TOO_MANY_HEADERS },
	{ "continuation lines are not fields",
	    "a: 1\r\n x\r\n y\r\nb: 2\r\n\r\n", 0, L(100, 2, 1000), DKIM_OK },
	/* max_header_bytes */
	{ "small header block", "a: 1\r\nb: 2\r\n\r\n", 0, L(100, 100, 20),
	    DKIM_OK },
	{ "header block over max_header_bytes",
	    "a: 0123456789\r\nb: 0123456789\r\n\r\n", 0, L(100, 100, 20),
	    DKIM_E_HEADER_TOO_BIG },
	{ "one folded field over max_header_bytes",
	    "a: 01234\r\n 0123456\r\n 0123456\r\n\r\n", 0, L(100, 100, 20),
	    DKIM_E_HEADER_TOO_BIG },
	{ "the body does not count", long_body, 0, L(100, 100, 20), DKIM_OK },
	/* malformed */
	{ "first line is a continuation (SP)", " From: a\r\n\r\n", 0, DEF,
	    DKIM_E_MALFORMED },
	{ "first line is a continuation (HTAB)", "\tFrom: a\r\n\r\n", 0, DEF,
	    DKIM_E_MALFORMED },
	{ "line without a colon", "From a\r\n\r\n", 0, DEF, DKIM_E_MALFORMED },
	{ "second line without a colon", "From: a\r\nnocolon\r\n\r\n", 0, DEF,
	    DKIM_E_MALFORMED },
	{ "bare name", "From\r\n\r\n", 0, DEF, DKIM_E_MALFORMED },
	{ "empty field name", ": a\r\n\r\n", 0, DEF, DKIM_E_MALFORMED },
	{ "control char in a name", "Fr\x01om: a\r\n\r\n", 0, DEF,
	    DKIM_E_MALFORMED },
	{ "DEL in a name", "Fr\x7fom: a\r\n\r\n", 0, DEF, DKIM_E_MALFORMED },
	{ "8-bit byte in a name", "Fr\xc3om: a\r\n\r\n", 0, DEF,
	    DKIM_E_MALFORMED },
	{ "SP inside a name", "Fr om: a\r\n\r\n", 0, DEF, DKIM_E_MALFORMED },
	{ "NUL in a name", "Fr\0om: a\r\n\r\n", 12, DEF, DKIM_E_MALFORMED },
};

Test(message, parse_errors_and_limits)
{
	for (size_t i = 0; i < NELEM(err_cases); i++) {
		const struct err_case *c = &err_cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		const struct dkim_limits *lim =
		    c->lim.max_line ? &c->lim : NULL;
		struct dkim_msg *m = NULL;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;

		st = dkim_msg_parse(c->in, len, lim, &m, why, sizeof(why));
		cr_expect(st == c->want, "%s: \"%s\": status got %d (%s: %s), "
		    "want %d (%s)", c->desc, esc(c->in, len), st,
		    dkim_status_str(st), why, c->want,
		    dkim_status_str(c->want));
		if (st == DKIM_OK) {
			dkim_msg_free(m);
			continue;
		}
		if (c->want != DKIM_OK)
			cr_expect(why[0] != '\0', "%s: reason got \"\", want one",
			    c->desc);
	}
}

/* Invariants every successful parse must satisfy. */
static void
check_invariants(const char *p, size_t n, const struct dkim_msg *m,
    unsigned it)
{
	size_t prev_end = 0;

	cr_assert(m->body_off <= n && m->body_off + m->body_len == n &&
	    m->body == p + m->body_off, "junk %u: body [%zu,+%zu) outside "
	    "input of %zu", it, m->body_off, m->body_len, n);
	for (size_t j = 0; j < m->nfields; j++) {
		const struct dkim_field *f = &m->fields[j];

		cr_assert(f->raw == p + f->offset && f->offset >= prev_end &&
		    f->offset + f->raw_len <= m->body_off,
		    "junk %u: field %zu [%zu,+%zu) misplaced", it, j,
		    f->offset, f->raw_len);
		cr_assert(f->name == f->raw && f->name_len > 0 &&
		    f->name_len < f->value_off && f->value_off <= f->raw_len &&
		    f->raw[f->value_off - 1] == ':', "junk %u: field %zu "
		    "name/value_off inconsistent", it, j);
		prev_end = f->offset + f->raw_len;
	}
}

Test(message, binary_junk_never_crashes)
{
	static const char alphabet[] = "\r\n\r\n: \t\t:aX\xff\x01";
	struct rng r = { 0xdeadbeefcafef00dULL };
	const struct dkim_limits small = { 16, 4, 64 };
	unsigned parsed = 0;

	for (unsigned it = 0; it < 20000; it++) {
		size_t n = 1 + rng_below(&r, 80);
		char *p = malloc(n);	/* exact size: overreads show in ASan */
		struct dkim_msg *m = NULL;
		char why[DKIM_WHY_MAX];

		cr_assert(p != NULL);
		if (it % 2 == 0) {
			for (size_t k = 0; k < n; k++)
				p[k] = rng_below(&r, 8) == 0 ?
				    (char)rng_next(&r) :
				    alphabet[rng_below(&r,
				    sizeof(alphabet) - 1)];
		} else {
			/* mostly well-formed: mutate a real message */
			static const char tmpl[] =
			    "From: a\r\nSubject: b\r\n c\r\nX :\r\n"
			    "To:\td\r\n\r\nbody\r\n";

			free(p);
			n = sizeof(tmpl) - 1;
			p = malloc(n);
			cr_assert(p != NULL);
			memcpy(p, tmpl, n);
			for (size_t k = rng_below(&r, 3); k > 0; k--)
				p[rng_below(&r, n)] = rng_below(&r, 2) ?
				    alphabet[rng_below(&r,
				    sizeof(alphabet) - 1)] : (char)rng_next(&r);
			n = 1 + rng_below(&r, n);	/* and truncate */
		}
		if (dkim_msg_parse(p, n, (it & 1) ? &small : NULL, &m, why,
		    sizeof(why)) == DKIM_OK) {
			check_invariants(p, n, m, it);
			parsed++;
			dkim_msg_free(m);
		}
		free(p);
	}
	cr_log_info("junk: %u of 20000 inputs parsed", parsed);
}

/* dkim_crlf_from_lf - LF-only text becomes CRLF; text with CRLF is left. */
enum crlf_kind { CONVERT, KEEP, NOTHING_TO_DO };

Test(message, crlf_from_lf)
{
	static const struct {
		const char *in;
		enum crlf_kind kind;
		const char *want;	/* the bytes a caller ends up with */
	} rows[] = {
		{ "a\nb\n", CONVERT, "a\r\nb\r\n" },
		{ "\n\n", CONVERT, "\r\n\r\n" },
		{ "From: a\n\nbody\n", CONVERT, "From: a\r\n\r\nbody\r\n" },
		{ "a\rb\n", CONVERT, "a\rb\r\n" },
		{ "\na", CONVERT, "\r\na" },
		{ "a\r\nb\n", KEEP, "a\r\nb\n" },
		{ "a\nb\r\n", KEEP, "a\nb\r\n" },
		{ "\r\n", KEEP, "\r\n" },
		/* No LF at all: a copy or NULL both leave the bytes alone. */
		{ "abc", NOTHING_TO_DO, "abc" },
		{ "a\rb", NOTHING_TO_DO, "a\rb" },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		size_t outlen = 12345;
		bool conv = !(rows[i].kind == CONVERT);
		char *got = dkim_crlf_from_lf(rows[i].in, strlen(rows[i].in),
		    &outlen, &conv);
		const char *eff = got ? got : rows[i].in;
		size_t efflen = got ? outlen : strlen(rows[i].in);

		if (rows[i].kind == CONVERT)
			cr_expect(got != NULL && conv, "\"%s\": got %s/"
			    "converted=%d, want a copy/converted=1",
			    escs(rows[i].in), got ? "copy" : "NULL", conv);
		if (rows[i].kind == KEEP)
			cr_expect(got == NULL && !conv, "\"%s\": got %s/"
			    "converted=%d, want NULL/converted=0",
			    escs(rows[i].in), got ? "copy" : "NULL", conv);
		cr_expect(conv == (got != NULL), "\"%s\": converted got %d "
		    "with %s result", escs(rows[i].in), conv,
		    got ? "a copy" : "a NULL");
		cr_expect(same(eff, efflen, rows[i].want), "\"%s\": got \"%s\", "
		    "want \"%s\"", escs(rows[i].in), esc(eff, efflen),
		    escs(rows[i].want));
		free(got);
	}
}
