/*
 * test_diagnose.c - dkim_body_prefix_match, the one-pass search for the
 * longest prefix of a body whose body hash is the signed one: a table of
 * (canonicalization, l=, body as signed, body now, expected prefix), with
 * the trailing-empty-line rules of both canonicalizations, l=, bare LFs
 * and bodies long enough to cross the canonicalizer's buffers.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dkim.h"

#define S DKIM_CANON_SIMPLE
#define R DKIM_CANON_RELAXED
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct prefix_case {
	const char *name;
	enum dkim_canon c;
	int64_t limit;		/* -1: no l= */
	const char *signed_body;
	const char *now_body;
	bool found;
	size_t prefix;
};

static const struct prefix_case cases[] = {
	{ "footer, simple", S, -1, "Hello\r\n", "Hello\r\n-- \r\nlist\r\n",
	    true, 7 },
	{ "footer, relaxed", R, -1, "Hello\r\n", "Hello\r\n-- \r\nlist\r\n",
	    true, 7 },
	{ "signed with empty lines at the end: the longest prefix", S, -1,
	    "Hello\r\n\r\n", "Hello\r\n\r\n-- \r\nlist\r\n", true, 9 },
	{ "relaxed drops trailing WSP and empty lines", R, -1,
	    "Hello  \r\n\r\n\r\n", "Hello\r\n\r\nfooter", true, 9 },
	{ "empty body signed, simple", S, -1, "", "footer\r\n", true, 0 },
	{ "empty body signed, relaxed", R, -1, "", "footer\r\n", true, 0 },
	{ "unchanged", S, -1, "a\r\nb\r\n", "a\r\nb\r\n", true, 6 },
	{ "unchanged, no final CRLF", S, -1, "a\r\nb", "a\r\nb", true, 4 },
	{ "changed line", S, -1, "a\r\nb\r\n", "a\r\nc\r\n", false, 0 },
	{ "changed first line", R, -1, "a\r\nb\r\n", "x\r\nb\r\n", false, 0 },
	{ "l= covers the start only", S, 3, "a\r\nb\r\n", "a\r\nxyz\r\n",
	    true, 8 },
	{ "l= longer than the prefix", S, 6, "a\r\nb\r\n", "a\r\nc\r\n",
	    false, 0 },
	{ "a bare LF is not a line end", S, -1, "a\r\n", "a\r\nb\nc\r\n",
	    true, 3 },
	{ "relaxed, trailing WSP on the last signed line", R, -1, "a \r\n",
	    "a \r\nb\r\n", true, 4 },
	{ "simple keeps trailing WSP", S, -1, "a\r\n", "a \r\nb\r\n", false,
	    0 },
};

static void
run_case(const struct prefix_case *t, const char *sb, size_t sblen,
    const char *nb, size_t nblen)
{
	unsigned char want[EVP_MAX_MD_SIZE];
	unsigned int wantlen;
	size_t got = 12345;
	bool found = !t->found;

	cr_assert_eq(dkim_body_hash(t->c, EVP_sha256(), sb, sblen, t->limit,
	    want, &wantlen, NULL), DKIM_OK, "%s: hashing", t->name);
	cr_assert_eq(dkim_body_prefix_match(t->c, EVP_sha256(), nb, nblen,
	    t->limit, want, wantlen, &found, &got), DKIM_OK, "%s: status",
	    t->name);
	cr_expect_eq(found, t->found, "%s: found: got %d, want %d", t->name,
	    found, t->found);
	if (t->found)
		cr_expect_eq(got, t->prefix, "%s: prefix: got %zu, want %zu",
		    t->name, got, t->prefix);
}

Test(prefix, table)
{
	size_t k;

	for (k = 0; k < NELEM(cases); k++)
		run_case(&cases[k], cases[k].signed_body,
		    strlen(cases[k].signed_body), cases[k].now_body,
		    strlen(cases[k].now_body));
}

/* Bodies larger than the canonicalizer's 4 KiB buffer, with lines long
 * enough to take its direct path, so the hash state copied at each line
 * end must already hold everything before it. The tail starts with an
 * empty line, which canonicalization drops, so the prefix includes it. */
Test(prefix, long_bodies)
{
	static const enum dkim_canon canons[] = { S, R };
	static const size_t widths[] = { 10, 700, 5000 };
	size_t w, c, i, n;

	for (c = 0; c < NELEM(canons); c++) {
		for (w = 0; w < NELEM(widths); w++) {
			size_t lines = 40, len = lines * (widths[w] + 2);
			const char *tail = "\r\n-- \r\nfooter  \t\r\n\r\n";
			char *body = malloc(len + strlen(tail) + 1);
			struct prefix_case t = { "long", canons[c], -1, NULL,
			    NULL, true, len + 2 };

			cr_assert_not_null(body);
			for (i = 0, n = 0; i < lines; i++) {
				memset(body + n, i % 3 ? 'x' : ' ', widths[w]);
				body[n] = (char)('a' + i % 26);
				n += widths[w];
				body[n++] = '\r';
				body[n++] = '\n';
			}
			memcpy(body + n, tail, strlen(tail) + 1);
			run_case(&t, body, len, body, len + strlen(tail));
			free(body);
		}
	}
}
