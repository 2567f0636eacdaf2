/*
 * test_canon.c - RFC 6376 §3.4 header and body canonicalization.
 *
 * Tables of (algorithm, input, canonical output), the §3.4.5 examples
 * verbatim, the empty-body digests printed in §3.4.3/§3.4.4, and a
 * property test: the streaming canonicalizer fed random bodies in random
 * chunks must match a deliberately naive reference written here (split on
 * CRLF, fix each line, trim the end), with and without an l= limit.
 */
#include <criterion/criterion.h>

#include "unit.h"

#define S DKIM_CANON_SIMPLE
#define R DKIM_CANON_RELAXED

static const char *
cname(enum dkim_canon c)
{
	return c == R ? "relaxed" : "simple";
}

/* ------------------------------------------------------------ headers */

struct hdr_case {
	enum dkim_canon c;
	const char *raw;
	const char *want;	/* without the CRLF */
};

static const struct hdr_case hdr_cases[] = {
	/* simple: not one byte changes (§3.4.1) */
	{ S, "SUBJect: AbC", "SUBJect: AbC" },
	{ S, "B : Y\t\r\n\tZ  ", "B : Y\t\r\n\tZ  " },
	{ S, "Subject:  a   b  ", "Subject:  a   b  " },
	{ S, "X:", "X:" },
	/* relaxed (§3.4.2) */
	{ R, "SUBJect: AbC", "subject:AbC" },
	{ R, "MiXeD-Case_Name9: v", "mixed-case_name9:v" },
	{ R, "To: ABC <A@B.EXAMPLE>", "to:ABC <A@B.EXAMPLE>" },
	{ R, "Subject:  a   b  ", "subject:a b" },
	{ R, "Subject : x", "subject:x" },
	{ R, "Subject \t : x", "subject:x" },
	{ R, "Subject\t:\tx\t", "subject:x" },
	{ R, "Subject:x", "subject:x" },
	{ R, "Subject: a\r\n b\r\n\tc", "subject:a b c" },
	{ R, "Subject: a \r\n  b", "subject:a b" },
	{ R, "Subject:a\r\n b", "subject:a b" },
	{ R, "Subject:\r\n x", "subject:x" },
	{ R, "Subject: x\r\n ", "subject:x" },
	{ R, "Subject:", "subject:" },
	{ R, "Subject: \t ", "subject:" },
	{ R, "Subject: \r\n ", "subject:" },
	{ R, "X-Tab:\ta\t\tb", "x-tab:a b" },
	{ R, "X-Mix: a \t \t b", "x-mix:a b" },
	{ R, "Subject: a  :  b", "subject:a : b" },
	{ R, "Received: from a:b (c)", "received:from a:b (c)" },
	{ R, "X: \xc3\xa9  \xc3\xa9", "x:\xc3\xa9 \xc3\xa9" },
	{ R, "A: X", "a:X" },
	{ R, "B : Y\t\r\n\tZ  ", "b:Y Z" },
	{ R, "DKIM-Signature: v=1;\r\n b=", "dkim-signature:v=1; b=" },
};

Test(canon, header_fields)
{
	for (size_t i = 0; i < NELEM(hdr_cases); i++) {
		const struct hdr_case *c = &hdr_cases[i];

		for (int crlf = 0; crlf <= 1; crlf++) {
			struct dkim_buf b;
			char want[256];
			bool ok;

			snprintf(want, sizeof(want), "%s%s", c->want,
			    crlf ? "\r\n" : "");
			dkim_buf_init(&b, 0);
			ok = dkim_canon_header(c->c, c->raw, strlen(c->raw),
			    crlf, &b);
			cr_expect(ok, "%s \"%s\" crlf=%d: returned false",
			    cname(c->c), escs(c->raw), crlf);
			cr_expect(same(b.p, b.len, want),
			    "%s \"%s\" crlf=%d: got \"%s\", want \"%s\"",
			    cname(c->c), escs(c->raw), crlf, esc(b.p, b.len),
			    escs(want));
			dkim_buf_free(&b);
		}
	}
}

/* dkim_canon_header appends to what the buffer already holds. */
Test(canon, header_appends)
{
	static const struct {
		enum dkim_canon c;
		const char *want;
	} rows[] = {
		{ S, "prefix|Subject :  x \r\n" },
		{ R, "prefix|subject:x\r\n" },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct dkim_buf b;

		dkim_buf_init(&b, 0);
		dkim_buf_adds(&b, "prefix|");
		dkim_canon_header(rows[i].c, "Subject :  x ", 13, true, &b);
		cr_expect(same(b.p, b.len, rows[i].want), "%s: got \"%s\", "
		    "want \"%s\"", cname(rows[i].c), esc(b.p, b.len),
		    escs(rows[i].want));
		dkim_buf_free(&b);
	}
}

/* --------------------------------------------------------------- bodies */

/* canon_body - run the streaming canonicalizer over (p, n) in one feed. */
static void
canon_body(enum dkim_canon c, int64_t limit, const char *p, size_t n,
    struct collect *out, uint64_t *full)
{
	struct dkim_bodycanon *bc;

	memset(out, 0, sizeof(*out));
	bc = dkim_bodycanon_new(c, limit, collect_sink, out);
	cr_assert(bc != NULL, "dkim_bodycanon_new returned NULL");
	dkim_bodycanon_feed(bc, p, n);
	dkim_bodycanon_finish(bc);
	if (full != NULL)
		*full = dkim_bodycanon_length(bc);
	dkim_bodycanon_free(bc);
}

struct body_case {
	const char *desc;
	enum dkim_canon c;
	const char *in;
	const char *want;
};

static const struct body_case body_cases[] = {
	/* simple (§3.4.3): only "*CRLF" at the end becomes one CRLF */
	{ "empty body", S, "", "\r\n" },
	{ "only CRLF", S, "\r\n", "\r\n" },
	{ "only empty lines", S, "\r\n\r\n\r\n", "\r\n" },
	{ "no final CRLF", S, "abc", "abc\r\n" },
	{ "one line", S, "abc\r\n", "abc\r\n" },
	{ "trailing empty lines", S, "abc\r\n\r\n\r\n", "abc\r\n" },
	{ "empty lines inside kept", S, "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n" },
	{ "leading empty lines kept", S, "\r\n\r\na\r\n", "\r\n\r\na\r\n" },
	{ "WSP-only lines at the end kept", S, "a \r\n \r\n\t\r\n",
	    "a \r\n \r\n\t\r\n" },
	{ "WSP-only lines then empty lines", S, "a\r\n \r\n\r\n\r\n",
	    "a\r\n \r\n" },
	{ "WSP runs kept", S, "a  \t b \r\n", "a  \t b \r\n" },
	{ "WSP only, no CRLF", S, "  \t ", "  \t \r\n" },
	{ "bare CR is data", S, "a\rb\r\n", "a\rb\r\n" },
	{ "bare LF is data", S, "a\nb\r\n", "a\nb\r\n" },
	{ "bare CR at the end", S, "a\r", "a\r\r\n" },
	{ "bare LF at the end", S, "a\n", "a\n\r\n" },
	{ "only LF", S, "\n", "\n\r\n" },
	{ "LF LF is not an empty line", S, "a\r\n\n\n", "a\r\n\n\n\r\n" },
	{ "CR before CRLF", S, "a\r\r\n\r\n", "a\r\r\n" },
	{ "CRLF then bare CR", S, "a\r\n\r", "a\r\n\r\r\n" },
	{ "8-bit bytes", S, "\xc3\xa9\r\n\r\n", "\xc3\xa9\r\n" },
	/* relaxed (§3.4.4) */
	{ "empty body", R, "", "" },
	{ "only CRLF", R, "\r\n", "" },
	{ "only empty lines", R, "\r\n\r\n\r\n", "" },
	{ "only WSP lines", R, " \r\n\t\r\n  \t \r\n", "" },
	{ "WSP only, no CRLF", R, "   ", "" },
	{ "no final CRLF", R, "abc", "abc\r\n" },
	{ "no final CRLF, trailing WSP", R, "abc \t", "abc\r\n" },
	{ "one line", R, "abc\r\n", "abc\r\n" },
	{ "WSP runs become one SP", R, "a  b\t\tc \t d\r\n", "a b c d\r\n" },
	{ "WSP before CRLF removed", R, "a \t \r\nb \r\n", "a\r\nb\r\n" },
	{ "leading WSP becomes one SP", R, "\t\t a\r\n", " a\r\n" },
	{ "trailing empty lines", R, "a\r\n\r\n\r\n", "a\r\n" },
	{ "trailing WSP-only lines", R, "a\r\n  \r\n \t\r\n", "a\r\n" },
	{ "WSP-only line inside becomes empty", R, "a\r\n \r\n\r\nb\r\n",
	    "a\r\n\r\n\r\nb\r\n" },
	{ "leading empty lines kept", R, "\r\n \r\na\r\n", "\r\n\r\na\r\n" },
	{ "bare CR is not a line end", R, "a \rb\r\n", "a \rb\r\n" },
	{ "bare CR after WSP is data", R, "a \r\r\n", "a \r\r\n" },
	{ "bare LF is not a line end", R, "a \nb \r\n", "a \nb\r\n" },
	{ "bare CR at the end", R, "a\r", "a\r\r\n" },
	{ "bare LF at the end", R, "a\n", "a\n\r\n" },
	{ "WSP around a bare LF", R, "a \t\n\t b", "a \n b\r\n" },
	{ "8-bit bytes are not WSP", R, "\xc3\xa9 \t\xc3\xa9 \r\n",
	    "\xc3\xa9 \xc3\xa9\r\n" },
	{ "NBSP is not WSP", R, "a\xc2\xa0\r\n", "a\xc2\xa0\r\n" },
};

Test(canon, bodies)
{
	for (size_t i = 0; i < NELEM(body_cases); i++) {
		const struct body_case *c = &body_cases[i];
		struct collect got;
		uint64_t full = 0;

		canon_body(c->c, -1, c->in, strlen(c->in), &got, &full);
		cr_expect(same(got.p, got.len, c->want),
		    "%s %s: \"%s\" got \"%s\", want \"%s\"", cname(c->c),
		    c->desc, escs(c->in), esc(got.p, got.len), escs(c->want));
		cr_expect(full == strlen(c->want), "%s %s: length got %llu, "
		    "want %zu", cname(c->c), c->desc,
		    (unsigned long long)full, strlen(c->want));
		collect_free(&got);
	}
}

struct limit_case {
	enum dkim_canon c;
	const char *in;
	int64_t limit;
	const char *want;
	uint64_t full;
};

static const struct limit_case limit_cases[] = {
	{ S, "hello world\r\nmore\r\n", 0, "", 19 },
	{ S, "hello world\r\nmore\r\n", 5, "hello", 19 },
	{ S, "hello world\r\nmore\r\n", 13, "hello world\r\n", 19 },
	{ S, "hello world\r\nmore\r\n", 19, "hello world\r\nmore\r\n", 19 },
	{ S, "hello world\r\nmore\r\n", 1000, "hello world\r\nmore\r\n", 19 },
	{ S, "", 0, "", 2 },
	{ S, "", 1, "\r", 2 },
	{ S, "", 2, "\r\n", 2 },
	{ S, "a\r\n\r\n\r\n", 4, "a\r\n", 3 },
	{ R, "a  b \r\nc\r\n\r\n", 3, "a b", 8 },
	{ R, "a  b \r\nc\r\n\r\n", 4, "a b\r", 8 },
	{ R, "a  b \r\nc\r\n\r\n", 6, "a b\r\nc", 8 },
	{ R, "a  b \r\nc\r\n\r\n", 7, "a b\r\nc\r", 8 },
	{ R, "", 0, "", 0 },
	{ R, "", 10, "", 0 },
	{ R, "x", 1, "x", 3 },
};

Test(canon, body_length_limit)
{
	for (size_t i = 0; i < NELEM(limit_cases); i++) {
		const struct limit_case *c = &limit_cases[i];
		struct collect got;
		uint64_t full = 0;

		canon_body(c->c, c->limit, c->in, strlen(c->in), &got, &full);
		cr_expect(same(got.p, got.len, c->want),
		    "%s l=%lld \"%s\": got \"%s\", want \"%s\"", cname(c->c),
		    (long long)c->limit, escs(c->in), esc(got.p, got.len),
		    escs(c->want));
		cr_expect(full == c->full, "%s l=%lld \"%s\": length got %llu, "
		    "want %llu (all canonical octets, limit or not)",
		    cname(c->c), (long long)c->limit, escs(c->in),
		    (unsigned long long)full, (unsigned long long)c->full);
		collect_free(&got);
	}
}

/* The digests printed in RFC 6376 §3.4.3 and §3.4.4 for an empty body. */
Test(canon, empty_body_hashes)
{
	static const struct {
		enum dkim_canon c;
		const char *md;
		const char *body;
		const char *want;
		uint64_t len;
	} rows[] = {
		{ S, "sha256", "", "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=", 2 },
		{ S, "sha256", "\r\n\r\n", "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=", 2 },
		{ S, "sha1", "", "uoq1oCgLlTqpdDX/iUbLy7J1Wic=", 2 },
		{ R, "sha256", "", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", 0 },
		{ R, "sha256", " \r\n\r\n", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", 0 },
		{ R, "sha1", "", "2jmj7l5rSw0yVb/vlWAYkK/YBwk=", 0 },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		unsigned char dg[EVP_MAX_MD_SIZE];
		unsigned int dglen = 0;
		uint64_t clen = 99;
		const EVP_MD *md = strcmp(rows[i].md, "sha1") == 0 ?
		    EVP_sha1() : EVP_sha256();
		enum dkim_status st;
		char *got;

		st = dkim_body_hash(rows[i].c, md, rows[i].body,
		    strlen(rows[i].body), -1, dg, &dglen, &clen);
		cr_expect(st == DKIM_OK, "%s %s: status got %d, want DKIM_OK",
		    cname(rows[i].c), rows[i].md, st);
		got = b64(dg, dglen);
		cr_expect(strcmp(got, rows[i].want) == 0, "%s %s of \"%s\": "
		    "got %s, want %s", cname(rows[i].c), rows[i].md,
		    escs(rows[i].body), got, rows[i].want);
		cr_expect(clen == rows[i].len, "%s %s: canon_len got %llu, "
		    "want %llu", cname(rows[i].c), rows[i].md,
		    (unsigned long long)clen, (unsigned long long)rows[i].len);
		free(got);
	}
}

/* dkim_body_hash honours l= and still reports the full canonical length. */
Test(canon, body_hash_with_limit)
{
	static const char body[] = "Hi.\r\n\r\nWe lost the game.  Are you "
	    "hungry yet?\r\n\r\nJoe.\r\n\r\n";
	static const struct {
		enum dkim_canon c;
		int64_t limit;
		const char *canon;	/* what must be hashed */
		uint64_t full;
	} rows[] = {
		{ R, -1, "Hi.\r\n\r\nWe lost the game. Are you hungry "
		    "yet?\r\n\r\nJoe.\r\n", 54 },
		{ R, 5, "Hi.\r\n", 54 },
		{ S, -1, "Hi.\r\n\r\nWe lost the game.  Are you hungry "
		    "yet?\r\n\r\nJoe.\r\n", 55 },
		{ S, 7, "Hi.\r\n\r\n", 55 },
		{ S, 0, "", 55 },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		unsigned char dg[EVP_MAX_MD_SIZE];
		unsigned int dglen = 0;
		uint64_t clen = 0;
		char *got, *want;

		cr_assert(dkim_body_hash(rows[i].c, EVP_sha256(), body,
		    strlen(body), rows[i].limit, dg, &dglen, &clen) ==
		    DKIM_OK);
		got = b64(dg, dglen);
		want = sha256_b64(rows[i].canon, strlen(rows[i].canon));
		cr_expect(strcmp(got, want) == 0, "%s l=%lld: got %s, want %s "
		    "(sha256 of \"%s\")", cname(rows[i].c),
		    (long long)rows[i].limit, got, want,
		    escs(rows[i].canon));
		cr_expect(clen == rows[i].full, "%s l=%lld: canon_len got "
		    "%llu, want %llu", cname(rows[i].c),
		    (long long)rows[i].limit, (unsigned long long)clen,
		    (unsigned long long)rows[i].full);
		free(got);
		free(want);
	}
	/* The RFC 8463 Appendix A body hash, relaxed. */
	{
		unsigned char dg[EVP_MAX_MD_SIZE];
		unsigned int dglen = 0;
		char *got;

		dkim_body_hash(R, EVP_sha256(), body, strlen(body), -1, dg,
		    &dglen, NULL);
		got = b64(dg, dglen);
		cr_expect(strcmp(got, "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJV"
		    "Ozv8=") == 0, "RFC 8463 bh: got %s, want 2jUSOH9NhtVGCQWNr9"
		    "BrIAPreKQjO6Sn7XIkfJVOzv8=", got);
		free(got);
	}
}

/* ---------------------------------------------- RFC 6376 §3.4.5 examples */

static const char example_msg[] =
    "A: X\r\n"
    "B : Y\t\r\n"
    "\tZ  \r\n"
    "\r\n"
    " C \r\n"
    "D \t E\r\n"
    "\r\n"
    "\r\n";

Test(canon, rfc6376_examples)
{
	static const struct {
		const char *name;
		enum dkim_canon hc, bc;
		const char *headers;
		const char *body;
	} rows[] = {
		{ "Example 1 (relaxed/relaxed)", R, R,
		    "a:X\r\nb:Y Z\r\n", " C\r\nD E\r\n" },
		{ "Example 2 (simple/simple)", S, S,
		    "A: X\r\nB : Y\t\r\n\tZ  \r\n", " C \r\nD \t E\r\n" },
		{ "Example 3 (relaxed/simple)", R, S,
		    "a:X\r\nb:Y Z\r\n", " C \r\nD \t E\r\n" },
	};
	struct dkim_msg *m = NULL;
	enum dkim_status st;

	st = dkim_msg_parse(example_msg, strlen(example_msg), NULL, &m,
	    NULL, 0);
	cr_assert(st == DKIM_OK, "parse: status got %d, want DKIM_OK", st);
	cr_assert(m->nfields == 2, "parse: fields got %zu, want 2",
	    m->nfields);
	for (size_t i = 0; i < NELEM(rows); i++) {
		struct dkim_buf h;
		struct collect b;

		dkim_buf_init(&h, 0);
		for (size_t j = 0; j < m->nfields; j++)
			dkim_canon_header(rows[i].hc, m->fields[j].raw,
			    m->fields[j].raw_len, true, &h);
		cr_expect(same(h.p, h.len, rows[i].headers),
		    "%s headers: got \"%s\", want \"%s\"", rows[i].name,
		    esc(h.p, h.len), escs(rows[i].headers));
		canon_body(rows[i].bc, -1, m->body, m->body_len, &b, NULL);
		cr_expect(same(b.p, b.len, rows[i].body),
		    "%s body: got \"%s\", want \"%s\"", rows[i].name,
		    esc(b.p, b.len), escs(rows[i].body));
		collect_free(&b);
		dkim_buf_free(&h);
	}
	dkim_msg_free(m);
}

Test(canon, names)
{
	cr_expect(strcmp(dkim_canon_str(S), "simple") == 0, "got %s, want "
	    "simple", dkim_canon_str(S));
	cr_expect(strcmp(dkim_canon_str(R), "relaxed") == 0, "got %s, want "
	    "relaxed", dkim_canon_str(R));
}

/* -------------------------------------------------- reference + property */

static void
ref_add(struct collect *o, const char *p, size_t n)
{
	collect_sink(o, p, n);
}

/*
 * ref_simple - RFC 6376 §3.4.3 read literally: add a CRLF if the body does
 * not end in one (an empty body included), then fold "*CRLF" at the end
 * into a single CRLF.
 */
static void
ref_simple(const char *p, size_t n, struct collect *o)
{
	ref_add(o, p, n);
	if (o->len < 2 || memcmp(o->p + o->len - 2, "\r\n", 2) != 0)
		ref_add(o, "\r\n", 2);
	while (o->len >= 4 && memcmp(o->p + o->len - 4, "\r\n\r\n", 4) == 0)
		o->len -= 2;
}

/*
 * ref_relaxed - RFC 6376 §3.4.4: cut the body into lines at each CRLF (the
 * bytes after the last CRLF are one more line, if any); in each line turn
 * every SP/HTAB run into one SP and drop a final SP; emit line + CRLF; then
 * remove the empty lines at the end.
 */
static void
ref_relaxed(const char *p, size_t n, struct collect *o)
{
	size_t start = 0;

	while (start < n) {
		size_t end = start;
		bool wsp = false;

		while (end < n && !(p[end] == '\r' && end + 1 < n &&
		    p[end + 1] == '\n'))
			end++;
		for (size_t i = start; i < end; i++) {
			if (p[i] == ' ' || p[i] == '\t') {
				wsp = true;
				continue;
			}
			if (wsp)
				ref_add(o, " ", 1);
			wsp = false;
			ref_add(o, &p[i], 1);
		}
		/* a final WSP run is simply never emitted */
		ref_add(o, "\r\n", 2);
		start = end + 2;	/* past the CRLF, or past n */
	}
	while (o->len == 2 || (o->len >= 4 &&
	    memcmp(o->p + o->len - 4, "\r\n\r\n", 4) == 0))
		o->len -= 2;
}

static void
ref_body(enum dkim_canon c, const char *p, size_t n, struct collect *o)
{
	memset(o, 0, sizeof(*o));
	ref_add(o, "", 0);
	if (c == S)
		ref_simple(p, n, o);
	else
		ref_relaxed(p, n, o);
}

/* The reference must itself agree with the hand-written tables. */
Test(canon, reference_matches_tables)
{
	for (size_t i = 0; i < NELEM(body_cases); i++) {
		const struct body_case *c = &body_cases[i];
		struct collect o;

		ref_body(c->c, c->in, strlen(c->in), &o);
		cr_expect(same(o.p, o.len, c->want), "reference %s %s: got "
		    "\"%s\", want \"%s\"", cname(c->c), c->desc,
		    esc(o.p, o.len), escs(c->want));
		collect_free(&o);
	}
	{
		struct collect o;

		const char *b = strstr(example_msg, "\r\n\r\n") + 4;

		ref_body(R, b, strlen(b), &o);
		cr_expect(same(o.p, o.len, " C\r\nD E\r\n"), "reference "
		    "example 1 body: got \"%s\"", esc(o.p, o.len));
		collect_free(&o);
	}
}

/* random_body - tokens weighted toward the bytes canonicalization cares
 * about: SP, HTAB, CR, LF, CRLF, a letter and an 8-bit byte. */
static size_t
random_body(struct rng *r, char *out, size_t cap)
{
	static const struct {
		const char *tok;
		unsigned weight;
	} toks[] = {
		{ " ", 5 }, { "\t", 3 }, { "\r", 3 }, { "\n", 3 },
		{ "\r\n", 6 }, { "a", 5 }, { "\xc3", 1 }, { "\r\n\r\n", 1 },
	};
	unsigned total = 0;
	size_t ntok = rng_below(r, 4) == 0 ? rng_below(r, 8) :
	    rng_below(r, 120);
	size_t n = 0;

	for (size_t i = 0; i < NELEM(toks); i++)
		total += toks[i].weight;
	for (size_t t = 0; t < ntok; t++) {
		unsigned pick = (unsigned)rng_below(r, total);
		size_t k = 0;

		while (pick >= toks[k].weight)
			pick -= toks[k++].weight;
		if (n + strlen(toks[k].tok) > cap)
			break;
		memcpy(out + n, toks[k].tok, strlen(toks[k].tok));
		n += strlen(toks[k].tok);
	}
	return n;
}

enum chunking { WHOLE, ONE_BYTE, SMALL_WITH_EMPTY, RANDOM_WIDE, NCHUNKINGS };

static const char *const chunking_name[] = {
	"whole", "1-byte", "0..7 with empty feeds", "random"
};

/* stream - feed (p, n) through the canonicalizer split as chunking says. */
static void
stream(enum dkim_canon c, int64_t limit, const char *p, size_t n,
    enum chunking how, struct rng *r, struct collect *out, uint64_t *full)
{
	struct dkim_bodycanon *bc;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	bc = dkim_bodycanon_new(c, limit, collect_sink, out);
	cr_assert(bc != NULL);
	if (how == SMALL_WITH_EMPTY)
		dkim_bodycanon_feed(bc, p, 0);
	while (pos < n) {
		size_t k;

		switch (how) {
		case WHOLE:
			k = n;
			break;
		case ONE_BYTE:
			k = 1;
			break;
		case SMALL_WITH_EMPTY:
			k = rng_below(r, 8);
			break;
		default:
			k = 1 + rng_below(r, n);
			break;
		}
		if (k > n - pos)
			k = n - pos;
		dkim_bodycanon_feed(bc, p + pos, k);
		pos += k;
	}
	if (how == SMALL_WITH_EMPTY)
		dkim_bodycanon_feed(bc, p + n, 0);
	dkim_bodycanon_finish(bc);
	*full = dkim_bodycanon_length(bc);
	dkim_bodycanon_free(bc);
}

Test(canon, property_streaming_equals_reference)
{
	enum { ITERATIONS = 3000 };
	struct rng r = { 0x9e3779b97f4a7c15ULL };
	static char body[1024];
	unsigned failures = 0;

	for (unsigned it = 0; it < ITERATIONS && failures < 10; it++) {
		size_t n = random_body(&r, body, sizeof(body));

		for (int ci = 0; ci < 2; ci++) {
			enum dkim_canon c = ci ? R : S;
			struct collect want;

			ref_body(c, body, n, &want);
			for (int li = 0; li < 3; li++) {
				int64_t limit = li == 0 ? -1 : li == 1 ? 0 :
				    (int64_t)rng_below(&r, want.len + 4);
				size_t wlen = limit >= 0 &&
				    (uint64_t)limit < want.len ?
				    (size_t)limit : want.len;

				for (int h = 0; h < NCHUNKINGS; h++) {
					struct collect got;
					uint64_t full = 0;
					bool ok;

					stream(c, limit, body, n,
					    (enum chunking)h, &r, &got,
					    &full);
					ok = got.len == wlen && (wlen == 0 ||
					    memcmp(got.p, want.p, wlen) == 0);
					ok = ok && full == want.len;
					cr_expect(ok, "iteration %u %s l=%lld "
					    "%s chunks, body \"%s\": got "
					    "\"%s\" (length %llu), want "
					    "\"%s\" (length %zu)", it,
					    cname(c), (long long)limit,
					    chunking_name[h], esc(body, n),
					    esc(got.p, got.len),
					    (unsigned long long)full,
					    esc(want.p, wlen), want.len);
					if (!ok)
						failures++;
					collect_free(&got);
				}
			}
			collect_free(&want);
		}
	}
}

/* dkim_body_hash over random bodies = SHA-256 of the reference output. */
Test(canon, property_body_hash_equals_reference)
{
	struct rng r = { 0x243f6a8885a308d3ULL };
	static char body[1024];
	unsigned failures = 0;

	for (unsigned it = 0; it < 500 && failures < 10; it++) {
		size_t n = random_body(&r, body, sizeof(body));

		for (int ci = 0; ci < 2; ci++) {
			enum dkim_canon c = ci ? R : S;
			struct collect want;
			unsigned char dg[EVP_MAX_MD_SIZE];
			unsigned int dglen = 0;
			uint64_t clen = 0;
			int64_t limit;
			size_t wlen;
			char *g, *w;

			ref_body(c, body, n, &want);
			limit = rng_below(&r, 2) ? -1 :
			    (int64_t)rng_below(&r, want.len + 2);
			wlen = limit >= 0 && (uint64_t)limit < want.len ?
			    (size_t)limit : want.len;
			cr_assert(dkim_body_hash(c, EVP_sha256(), body, n,
			    limit, dg, &dglen, &clen) == DKIM_OK);
			g = b64(dg, dglen);
			w = sha256_b64(want.p, wlen);
			if (strcmp(g, w) != 0 || clen != want.len)
				failures++;
			cr_expect(strcmp(g, w) == 0 && clen == want.len,
			    "iteration %u %s l=%lld body \"%s\": got %s "
			    "(canon_len %llu), want %s (canon_len %zu)", it,
			    cname(c), (long long)limit, esc(body, n), g,
			    (unsigned long long)clen, w, want.len);
			free(g);
			free(w);
			collect_free(&want);
		}
	}
}

/*
 * ref_relaxed_header - §3.4.2 step by step on a field the generator below
 * builds (every CRLF in it is followed by WSP): lowercase the name, drop
 * the CRLFs of folds, turn WSP runs into one SP, drop WSP at the end of
 * the value and around the first colon.
 */
static void
ref_relaxed_header(const char *raw, size_t n, struct collect *o)
{
	const char *colon = memchr(raw, ':', n);
	size_t nameend = (size_t)(colon - raw), i;
	bool wsp = false, started = false;

	memset(o, 0, sizeof(*o));
	while (nameend > 0 && (raw[nameend - 1] == ' ' ||
	    raw[nameend - 1] == '\t'))
		nameend--;
	for (i = 0; i < nameend; i++) {
		char c = raw[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		ref_add(o, &c, 1);
	}
	ref_add(o, ":", 1);
	for (i = (size_t)(colon - raw) + 1; i < n; i++) {
		if (raw[i] == '\r' || raw[i] == '\n')
			continue;	/* unfolding */
		if (raw[i] == ' ' || raw[i] == '\t') {
			wsp = true;
			continue;
		}
		if (wsp && started)
			ref_add(o, " ", 1);
		wsp = false;
		started = true;
		ref_add(o, &raw[i], 1);
	}
}

/* random_field - Name *WSP ":" value, with folds, WSP runs and colons. */
static size_t
random_field(struct rng *r, char *out, size_t cap)
{
	static const char namechars[] = "aZx-Q_9";
	static const char *const vtoks[] = {
		" ", " ", "\t", "\r\n ", "\r\n\t", "a", "B", ":", "\xc3", "  ",
	};
	size_t n = 0, k = 1 + rng_below(r, 6);

	for (size_t i = 0; i < k; i++)
		out[n++] = namechars[rng_below(r, sizeof(namechars) - 1)];
	for (size_t i = rng_below(r, 3); i > 0; i--)
		out[n++] = rng_below(r, 2) ? ' ' : '\t';
	out[n++] = ':';
	for (size_t i = rng_below(r, 30); i > 0; i--) {
		const char *t = vtoks[rng_below(r, NELEM(vtoks))];

		if (n + strlen(t) >= cap)
			break;
		memcpy(out + n, t, strlen(t));
		n += strlen(t);
	}
	return n;
}

Test(canon, property_header_fields_equal_reference)
{
	struct rng r = { 0x0123456789abcdefULL };
	char raw[256];
	unsigned failures = 0;

	for (unsigned it = 0; it < 5000 && failures < 10; it++) {
		size_t n = random_field(&r, raw, sizeof(raw));
		struct collect want;
		struct dkim_buf rel, sim;
		bool ok;

		ref_relaxed_header(raw, n, &want);
		dkim_buf_init(&rel, 0);
		dkim_buf_init(&sim, 0);
		dkim_canon_header(R, raw, n, false, &rel);
		dkim_canon_header(S, raw, n, true, &sim);
		ok = rel.len == want.len && (want.len == 0 ||
		    memcmp(rel.p, want.p, want.len) == 0);
		cr_expect(ok, "iteration %u relaxed \"%s\": got \"%s\", want "
		    "\"%s\"", it, esc(raw, n), esc(rel.p, rel.len),
		    esc(want.p, want.len));
		cr_expect(sim.len == n + 2 && memcmp(sim.p, raw, n) == 0 &&
		    memcmp(sim.p + n, "\r\n", 2) == 0, "iteration %u simple "
		    "\"%s\": got \"%s\", want the field unchanged + CRLF", it,
		    esc(raw, n), esc(sim.p, sim.len));
		failures += !ok;
		dkim_buf_free(&rel);
		dkim_buf_free(&sim);
		collect_free(&want);
	}
}
