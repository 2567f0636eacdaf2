/*
 * test_listhdr.c - the list header changes (policy/listhdr.c) as tables.
 *
 * Every row is an input and the output it must give; a failure says
 * got/want with the row's description (CR and LF shown as \r \n).
 *
 *   subject_*   the tag: plain, already there, in RFC 2047 words (B, Q,
 *               split, unpadded), missing, folded, long lines; its reverse
 *   from_*      From rewriting: display names, local parts, quoting,
 *               encoded and non-ASCII names, lists, groups, junk
 *   reply_*     the three Reply-To modes
 *   list_*      List-Id, List-Post, List-Unsubscribe(-Post), Precedence
 *   loop_*      listhdr_has_list_id
 *   bytes_*     unchanged fields keep their bytes and order, body too
 *   errors_*    options and messages refused with a reason; junk
 */
#define _GNU_SOURCE	/* asprintf */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listhdr.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define TAG "[announce]"

/* ------------------------------------------------------------ helpers */

/* esc - s with CR, LF and other controls visible; a few at a time. */
static const char *
esc(const char *s, size_t n)
{
	static char ring[8][4096];
	static int k;
	char *o = ring[k++ & 7];
	size_t i, j = 0;

	if (s == NULL)
		return "(null)";
	for (i = 0; i < n && j + 8 < sizeof(ring[0]); i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r')
			j += (size_t)sprintf(o + j, "\\r");
		else if (c == '\n')
			j += (size_t)sprintf(o + j, "\\n");
		else if (c < 0x20 || c == 0x7f)
			j += (size_t)sprintf(o + j, "\\x%02x", c);
		else
			o[j++] = (char)c;
	}
	o[j] = '\0';
	return o;
}

static const char *
esz(const char *s)
{
	return esc(s, s ? strlen(s) : 0);
}

static struct listhdr_opts
opts(void)
{
	struct listhdr_opts o;

	memset(&o, 0, sizeof(o));
	o.list_addr = "announce@lists.example";
	o.list_name = "Announce";
	o.reply_to = LISTHDR_REPLY_NONE;
	return o;
}

/* apply - listhdr_apply that must succeed; the result NUL-terminated. */
static char *
apply(const struct listhdr_opts *o, const char *msg, size_t len,
    const char *desc)
{
	struct dkim_buf out;
	char why[256] = "";
	size_t n;
	char *p;

	dkim_buf_init(&out, 0);
	cr_assert(listhdr_apply(o, msg, len, &out, why, sizeof(why)),
	    "%s: listhdr_apply failed: %s", desc, why);
	p = dkim_buf_take(&out, &n);
	cr_assert_not_null(p, "%s: empty result", desc);
	return p;
}

static char *
apply_s(const struct listhdr_opts *o, const char *msg, const char *desc)
{
	return apply(o, msg, strlen(msg), desc);
}

/* field - the raw bytes (no final CRLF) of the nth field called name,
 * malloc'd; NULL when there is none. */
static char *
field(const char *msg, const char *name, size_t nth)
{
	struct dkim_msg *m;
	char *r = NULL;
	size_t i;

	cr_assert_eq(dkim_msg_parse(msg, strlen(msg), NULL, &m, NULL, 0),
	    DKIM_OK, "result does not parse: %s", esz(msg));
	for (i = 0; i < m->nfields; i++) {
		if (!dkim_field_is(&m->fields[i], name) || nth-- > 0)
			continue;
		r = strndup(m->fields[i].raw, m->fields[i].raw_len);
		break;
	}
	dkim_msg_free(m);
	return r;
}

static size_t
count(const char *msg, const char *name)
{
	struct dkim_msg *m;
	size_t i, n = 0;

	cr_assert_eq(dkim_msg_parse(msg, strlen(msg), NULL, &m, NULL, 0),
	    DKIM_OK, "result does not parse: %s", esz(msg));
	for (i = 0; i < m->nfields; i++)
		if (dkim_field_is(&m->fields[i], name))
			n++;
	dkim_msg_free(m);
	return n;
}

/* expect_field - the nth `name` field is want (NULL: there is none). */
static void
expect_field(const char *msg, const char *name, size_t nth,
    const char *want, const char *desc)
{
	char *got = field(msg, name, nth);

	if (want == NULL)
		cr_expect_null(got, "%s: %s #%zu got %s, want none", desc,
		    name, nth, esz(got));
	else
		cr_expect(got != NULL && strcmp(got, want) == 0,
		    "%s: %s #%zu\n got  %s\n want %s", desc, name, nth,
		    esz(got), esz(want));
	free(got);
}

/* max_line - the longest line of s, CRLF not counted; the first line
 * starts at column col (after a field name). */
static size_t
max_line_at(const char *s, size_t n, size_t col)
{
	size_t i, best = col;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
			col = 0;
			i++;
			continue;
		}
		if (++col > best)
			best = col;
	}
	return best;
}

static size_t
max_line(const char *s, size_t n)
{
	return max_line_at(s, n, 0);
}

/* unfold - s with its CRLFs removed, malloc'd. */
static char *
unfold(const char *s, size_t n)
{
	char *o = malloc(n + 1);
	size_t i, j = 0;

	cr_assert_not_null(o);
	for (i = 0; i < n; i++) {
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
			i++;
			continue;
		}
		o[j++] = s[i];
	}
	o[j] = '\0';
	return o;
}

/* ------------------------------------------------------------- subject */

struct subject_case {
	const char *desc;
	const char *value;
	const char *want;
	bool changed;
	const char *untagged;	/* untag of want; NULL: value itself */
};

static const struct subject_case subject_cases[] = {
	{ "plain", " Hello", " " TAG " Hello", true },
	{ "already tagged", " " TAG " Hello", " " TAG " Hello", false },
	{ "tag in other case", " [ANNOUNCE] Hello", " [ANNOUNCE] Hello",
	    false },
	{ "Re: with the tag", " Re: " TAG " Hello", " Re: " TAG " Hello",
	    false },
	{ "tag glued to text", " Fwd:" TAG "x", " Fwd:" TAG "x", false },
	{ "Re: without the tag", " Re: Hello", " " TAG " Re: Hello", true },
	{ "B word, no tag", " =?UTF-8?B?w5xiZXIgZGllIFNhY2hl?=",
	    " " TAG " =?UTF-8?B?w5xiZXIgZGllIFNhY2hl?=", true },
	{ "B word holding the tag",
	    " =?UTF-8?B?W2Fubm91bmNlXSDDnGJlciBkaWUgU2FjaGU=?=",
	    " =?UTF-8?B?W2Fubm91bmNlXSDDnGJlciBkaWUgU2FjaGU=?=", false },
	{ "B word holding the tag, padding missing",
	    " =?utf-8?b?W2Fubm91bmNlXQ?= x",
	    " =?utf-8?b?W2Fubm91bmNlXQ?= x", false },
	{ "B word after Re: holding the tag",
	    " =?UTF-8?B?UmU6IFthbm5vdW5jZV0gR3LDvMOfZQ==?=",
	    " =?UTF-8?B?UmU6IFthbm5vdW5jZV0gR3LDvMOfZQ==?=", false },
	{ "Q word, no tag", " =?ISO-8859-1?Q?=DCber_alles?=",
	    " " TAG " =?ISO-8859-1?Q?=DCber_alles?=", true },
	{ "Q word holding the tag", " =?UTF-8?Q?=5Bannounce=5D_=C3=9Cber?=",
	    " =?UTF-8?Q?=5Bannounce=5D_=C3=9Cber?=", false },
	{ "tag split over two Q words (space between dropped)",
	    " =?UTF-8?Q?=5Bann?= =?UTF-8?Q?ounce=5D_x?=",
	    " =?UTF-8?Q?=5Bann?= =?UTF-8?Q?ounce=5D_x?=", false },
	{ "tag split over a folded pair of Q words",
	    " =?UTF-8?Q?=5Bann?=\r\n =?UTF-8?Q?ounce=5D?=",
	    " =?UTF-8?Q?=5Bann?=\r\n =?UTF-8?Q?ounce=5D?=", false },
	{ "plain text then a Q word: the space is kept, no tag",
	    " [ann =?UTF-8?Q?ounce=5D?=",
	    " " TAG " [ann =?UTF-8?Q?ounce=5D?=", true },
	{ "encoded word glued to text (lenient readers decode it)",
	    " Re:=?UTF-8?Q?=5Bannounce=5D?= x",
	    " Re:=?UTF-8?Q?=5Bannounce=5D?= x", false },
	{ "not an encoded word: bad base64 is text",
	    " =?UTF-8?B?****?=", " " TAG " =?UTF-8?B?****?=", true },
	{ "charset with a language (RFC 2231)",
	    " =?utf-8*en?q?=5Bannounce=5D?=", " =?utf-8*en?q?=5Bannounce=5D?=",
	    false },
	{ "empty", "", " " TAG, true, " " },
	{ "a space", " ", " " TAG, true },
	{ "no space after the colon", "Hello", " " TAG " Hello", true,
	    " Hello" },
	{ "tab after the colon", "\tHello", "\t" TAG " Hello", true },
	{ "folded", " Re: something\r\n continued",
	    " " TAG " Re: something\r\n continued", true },
	{ "folded before the first word", "\r\n Hello",
	    "\r\n " TAG " Hello", true },
	{ "folded, tagged on the second line", " Re: a\r\n " TAG " b",
	    " Re: a\r\n " TAG " b", false },
	{ "8-bit UTF-8 (RFC 6532)", " Gr\xc3\xbc\xc3\x9f" "e",
	    " " TAG " Gr\xc3\xbc\xc3\x9f" "e", true },
	{ "first line just fits once tagged",
	    /* "Subject: " 9 + "[announce] " 11 + 58 = 78 columns */
	    " aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee ffffffff",
	    " " TAG " aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee "
	    "ffffffff", true },
	{ "first line one column too long once tagged: refolded",
	    " aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee fffffffff",
	    " " TAG " aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee\r\n"
	    " fffffffff", true },
	{ "refolding leaves the next lines alone",
	    " aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee fffffffff\r\n"
	    "\tnext line",
	    " " TAG " aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee\r\n"
	    " fffffffff\r\n\tnext line", true },
	{ "one long word: the break goes after the tag",
	    " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxx",
	    " " TAG "\r\n xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxx", true },
};

Test(subject, table)
{
	size_t i;

	for (i = 0; i < NELEM(subject_cases); i++) {
		const struct subject_case *c = &subject_cases[i];
		struct dkim_buf out, back;
		bool changed = !c->changed;
		const char *uwant = c->untagged ? c->untagged : c->value;

		dkim_buf_init(&out, 0);
		cr_expect(listhdr_subject(TAG, c->value, strlen(c->value),
		    &out, &changed), "%s: failed", c->desc);
		cr_expect(out.len == strlen(c->want) &&
		    memcmp(out.p, c->want, out.len) == 0,
		    "%s:\n got  %s\n want %s", c->desc, esc(out.p, out.len),
		    esz(c->want));
		cr_expect_eq(changed, c->changed, "%s: changed got %d, want %d",
		    c->desc, changed, c->changed);
		cr_expect_leq(max_line_at(out.p, out.len, 8), 78,
		    "%s: a line over 78 columns", c->desc);
		dkim_buf_init(&back, 0);
		if (c->changed) {
			cr_expect(listhdr_untag_subject(TAG, out.p, out.len,
			    &back), "%s: untag failed on %s", c->desc,
			    esc(out.p, out.len));
			cr_expect(back.len == strlen(uwant) && (back.len == 0 ||
			    memcmp(back.p, uwant, back.len) == 0),
			    "%s: untag\n got  %s\n want %s", c->desc,
			    esc(back.p, back.len), esz(uwant));
		}
		dkim_buf_free(&out);
		dkim_buf_free(&back);
	}
}

/* untag of values listhdr_subject never produces */
Test(subject, untag_refuses)
{
	static const char *const v[] = {
		" Hello", " Re: " TAG " Hello", " " TAG "Hello",
		" x " TAG " y", TAG " Hello", " " TAG " " TAG " Hello",
		" " TAG "\r\n\tHello", "",
	};
	size_t i;

	for (i = 0; i < NELEM(v); i++) {
		struct dkim_buf out;

		dkim_buf_init(&out, 0);
		cr_expect_not(listhdr_untag_subject(TAG, v[i], strlen(v[i]),
		    &out), "untag of %s gave %s", esz(v[i]),
		    esc(out.p, out.len));
		dkim_buf_free(&out);
	}
}

/* Long lines: folded to 78 columns where a space allows, text kept. */
Test(subject, long_lines)
{
	static const size_t words[] = { 5, 12, 40, 100 };
	char v[4096];
	size_t i, k, n;

	for (i = 0; i < NELEM(words); i++) {
		struct dkim_buf out, back;
		char *u, *want;
		bool changed;

		n = 0;
		for (k = 0; k < words[i]; k++)
			n += (size_t)snprintf(v + n, sizeof(v) - n, " w%zu%.*s",
			    k, (int)(k % 9), "abcdefghi");
		dkim_buf_init(&out, 0);
		cr_assert(listhdr_subject(TAG, v, n, &out, &changed));
		cr_expect(changed);
		cr_expect_leq(max_line_at(out.p, out.len, 8), 78,
		    "%zu words: a line of %zu columns: %s", words[i],
		    max_line_at(out.p, out.len, 8), esc(out.p, out.len));
		u = unfold(out.p, out.len);
		cr_assert(asprintf(&want, " " TAG "%s", v) > 0);
		cr_expect_str_eq(u, want, "%zu words: unfolded\n got  %s\n"
		    " want %s", words[i], u, want);
		dkim_buf_init(&back, 0);
		cr_expect(listhdr_untag_subject(TAG, out.p, out.len, &back),
		    "%zu words: untag failed", words[i]);
		cr_expect(back.len == n && memcmp(back.p, v, n) == 0,
		    "%zu words: untag\n got  %s\n want %s", words[i],
		    esc(back.p, back.len), esc(v, n));
		free(u);
		free(want);
		dkim_buf_free(&out);
		dkim_buf_free(&back);
	}
}

/* A line over 998 octets is not refolded: the tag gets its own line. */
Test(subject, overlong_line)
{
	size_t n = 3000, i;
	char *v = malloc(n + 1);
	struct dkim_buf out, back;
	bool changed;

	cr_assert_not_null(v);
	for (i = 0; i < n; i++)
		v[i] = (i % 10 == 0) ? ' ' : 'a';
	v[n] = '\0';
	dkim_buf_init(&out, 0);
	cr_assert(listhdr_subject(TAG, v, n, &out, &changed));
	cr_expect(changed);
	cr_expect(out.len == n + 13 && memcmp(out.p, " " TAG "\r\n", 13) == 0
	    && memcmp(out.p + 13, v, n) == 0, "got %.40s...",
	    esc(out.p, out.len));
	dkim_buf_init(&back, 0);
	cr_expect(listhdr_untag_subject(TAG, out.p, out.len, &back));
	cr_expect(back.len == n && memcmp(back.p, v, n) == 0);
	free(v);
	dkim_buf_free(&out);
	dkim_buf_free(&back);
}

/* Two originals fold to the same value: the one with the longer first
 * line (more folds undone) is given back. */
Test(subject, untag_ambiguous)
{
	const char *a = " aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee "
	    "fffffffff";
	const char *b = " aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee"
	    "\r\n fffffffff";
	struct dkim_buf oa, ob, back;
	bool ch;

	dkim_buf_init(&oa, 0);
	dkim_buf_init(&ob, 0);
	dkim_buf_init(&back, 0);
	cr_assert(listhdr_subject(TAG, a, strlen(a), &oa, &ch));
	cr_assert(listhdr_subject(TAG, b, strlen(b), &ob, &ch));
	cr_expect(oa.len == ob.len && memcmp(oa.p, ob.p, oa.len) == 0,
	    "got %s and %s", esc(oa.p, oa.len), esc(ob.p, ob.len));
	cr_expect(listhdr_untag_subject(TAG, oa.p, oa.len, &back));
	cr_expect(back.len == strlen(a) && memcmp(back.p, a, back.len) == 0,
	    "got %s want %s", esc(back.p, back.len), esz(a));
	dkim_buf_free(&oa);
	dkim_buf_free(&ob);
	dkim_buf_free(&back);
}

Test(subject, refused)
{
	static const struct {
		const char *desc, *tag, *value;
	} rows[] = {
		{ "NULL tag", NULL, " x" },
		{ "empty tag", "", " x" },
		{ "tag with LF", "[a\n]", " x" },
		{ "tag with 8-bit", "[\xc3\xa4]", " x" },
		{ "tag with a space at its end", "[a] ", " x" },
		{ "bare LF in value", TAG, " x\ny" },
		{ "bare CR in value", TAG, " x\ry" },
		{ "CRLF not followed by WSP", TAG, " x\r\ny" },
		{ "CRLF at the end", TAG, " x\r\n" },
	};
	size_t i;

	for (i = 0; i < NELEM(rows); i++) {
		struct dkim_buf out;
		bool ch;

		dkim_buf_init(&out, 0);
		cr_expect_not(listhdr_subject(rows[i].tag, rows[i].value,
		    strlen(rows[i].value), &out, &ch), "%s: accepted",
		    rows[i].desc);
		cr_expect_not(listhdr_untag_subject(rows[i].tag, rows[i].value,
		    strlen(rows[i].value), &out), "%s: untag accepted",
		    rows[i].desc);
		dkim_buf_free(&out);
	}
}

/* The Subject field in a message: in place, name bytes kept; added when
 * missing; only the first of two tagged. */
Test(subject, in_message)
{
	struct listhdr_opts o = opts();
	char *r;

	o.subject_tag = TAG;
	r = apply_s(&o, "A: 1\r\nSUBJECT :  hi\r\nB: 2\r\n\r\nbody",
	    "name as written");
	cr_expect(strncmp(r, "A: 1\r\nSUBJECT :  " TAG " hi\r\nB: 2\r\n", 33)
	    == 0, "got %s", esz(r));
	free(r);
	r = apply_s(&o, "A: 1\r\n\r\nbody", "missing");
	expect_field(r, "Subject", 0, "Subject: " TAG, "missing");
	free(r);
	r = apply_s(&o, "Subject: one\r\nSubject: two\r\n\r\n", "two");
	expect_field(r, "Subject", 0, "Subject: " TAG " one", "two");
	expect_field(r, "Subject", 1, "Subject: two", "two");
	free(r);
	o.subject_tag = NULL;
	r = apply_s(&o, "Subject: one\r\n\r\n", "no tag");
	expect_field(r, "Subject", 0, "Subject: one", "no tag");
	free(r);
}

/* ---------------------------------------------------------------- From */

struct from_case {
	const char *desc;
	const char *from;	/* value after "From:" */
	const char *want;	/* the From field written */
};

#define LA "<announce@lists.example>"

static const struct from_case from_cases[] = {
	{ "display name", " Alice Example <alice@example.org>",
	    "From: \"Alice Example via Announce\" " LA },
	{ "addr-spec only", " alice@example.org",
	    "From: \"alice via Announce\" " LA },
	{ "angle-addr only", " <alice@example.org>",
	    "From: \"alice via Announce\" " LA },
	{ "quoted name with escapes",
	    " \"Doe, John \\\"JD\\\" \\\\o/\" <jd@example.com>",
	    "From: \"Doe, John \\\"JD\\\" \\\\o/ via Announce\" " LA },
	{ "quoted local part", " \"john doe\"@example.com",
	    "From: \"john doe via Announce\" " LA },
	{ "spaces around a quoted name", " \"  Alice  \" <a@example.com>",
	    "From: \"Alice via Announce\" " LA },
	{ "spaces around an encoded name",
	    " =?UTF-8?Q?_J=C3=B6rg_?= <j@example.de>",
	    "From: =?UTF-8?Q?J=C3=B6rg?= via Announce " LA },
	{ "empty display name", " \"\" <x@example.net>",
	    "From: \"x via Announce\" " LA },
	{ "obs-phrase", " John Q. Public <jqp@example.com>",
	    "From: \"John Q. Public via Announce\" " LA },
	{ "comments (RFC 5322 A.5)",
	    " Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
	    "From: \"Pete via Announce\" " LA },
	{ "folded value", " Alice\r\n <alice@example.org>",
	    "From: \"Alice via Announce\" " LA },
	{ "encoded name, UTF-8 Q", " =?UTF-8?Q?J=C3=B6rg?= <j@example.de>",
	    "From: =?UTF-8?Q?J=C3=B6rg?= via Announce " LA },
	{ "encoded name, B, two words",
	    " =?utf-8?b?SsO2cmc=?= =?utf-8?b?IE3DvGxsZXI=?= <j@example.de>",
	    "From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= via Announce " LA },
	{ "encoded name, ISO-8859-1", " =?ISO-8859-1?Q?J=F6rg?= <j@example.de>",
	    "From: =?UTF-8?Q?J=C3=B6rg?= via Announce " LA },
	{ "encoded name, windows-1252 quotes",
	    " =?windows-1252?Q?=93Q=94?= <q@example.com>",
	    "From: =?UTF-8?Q?=E2=80=9CQ=E2=80=9D?= via Announce " LA },
	{ "encoded name, ASCII only: a quoted-string",
	    " =?us-ascii?Q?Alice_=22A=22?= <a@example.com>",
	    "From: \"Alice \\\"A\\\" via Announce\" " LA },
	{ "encoded name, a charset kept as it came",
	    " =?KOI8-R?B?8NLJ18XU?= <p@example.ru>",
	    "From: =?KOI8-R?B?8NLJ18XU?= via Announce " LA },
	{ "encoded name, kept charset glued to a UTF-8 word",
	    " =?KOI8-R?B?8NLJ18XU?= =?UTF-8?Q?_=C3=A4?= <p@example.ru>",
	    "From: =?KOI8-R?B?8NLJ18XU?= =?UTF-8?Q?_=C3=A4?= via Announce\r\n "
	    LA },
	{ "encoded name, kept charset, then a non-ASCII word",
	    " =?KOI8-R?B?8NLJ18XU?= \xc3\xa4 <p@example.ru>",
	    "From: =?KOI8-R?B?8NLJ18XU?= =?UTF-8?Q?_=C3=A4?= via Announce\r\n "
	    LA },
	{ "encoded name, a non-ASCII word, then a kept charset",
	    " \xc3\xa4 =?KOI8-R?B?8NLJ18XU?= <p@example.ru>",
	    "From: =?UTF-8?Q?=C3=A4_?= =?KOI8-R?B?8NLJ18XU?= via Announce\r\n "
	    LA },
	{ "encoded name, plain word glued to a kept charset",
	    " =?KOI8-R?B?8NLJ18XU?= =?UTF-8?Q?x?= <p@example.ru>",
	    "From: =?KOI8-R?B?8NLJ18XU?= =?UTF-8?Q?x?= via Announce\r\n " LA },
	{ "encoded word with CR LF inside becomes spaces",
	    " =?UTF-8?Q?a=0D=0ABcc=3A_x=40evil.example?= <a@example.com>",
	    "From: \"a  Bcc: x@evil.example via Announce\" " LA },
	{ "encoded word with NUL inside",
	    " =?UTF-8?Q?a=00b?= <a@example.com>",
	    "From: \"a b via Announce\" " LA },
	{ "raw UTF-8 name (RFC 6532)", " J\xc3\xb6rg <j@example.de>",
	    "From: =?UTF-8?Q?J=C3=B6rg?= via Announce " LA },
	{ "raw Latin-1 byte: not UTF-8, replaced",
	    " \"J\xf6rg\" <j@example.de>",
	    "From: =?UTF-8?Q?J=EF=BF=BDrg?= via Announce " LA },
	{ "non-ASCII and plain words mixed",
	    " Dr. J\xc3\xb6rg von M\xc3\xbcller <j@example.de>",
	    "From: =?UTF-8?Q?Dr=2E_J=C3=B6rg?= von =?UTF-8?Q?M=C3=BCller?= via "
	    "Announce\r\n " LA },
	{ "non-ASCII words in a row share one encoded word",
	    " \xc3\xa4\xc3\xa4 \xc3\xb6\xc3\xb6 x <j@example.de>",
	    "From: =?UTF-8?Q?=C3=A4=C3=A4_=C3=B6=C3=B6?= x via Announce\r\n "
	    LA },
	{ "UTF-8 local part, no display name", " j\xc3\xb6rg@example.de",
	    "From: =?UTF-8?Q?j=C3=B6rg?= via Announce " LA },
	{ "an encoded-word lookalike in quotes is text",
	    " \"=?x?q?y?=\" <a@example.com>",
	    "From: \"=?x?q?y?= via Announce\" " LA },
	{ "two addresses: the first is named",
	    " alice@example.org, Bob <bob@example.net>",
	    "From: \"alice via Announce\" " LA },
	{ "two addresses, the first with a name",
	    " Bob <bob@example.net>, alice@example.org",
	    "From: \"Bob via Announce\" " LA },
	{ "group", " Friends: Carol <carol@example.org>, dave@example.org;",
	    "From: \"Carol via Announce\" " LA },
	{ "empty group: its name", " undisclosed-recipients:;",
	    "From: \"undisclosed-recipients via Announce\" " LA },
	{ "obs-route", " Mary <@node.test,@relay.test:mary@example.net>",
	    "From: \"Mary via Announce\" " LA },
	{ "obs-route starting with ',' (RFC 5322 §4.4 obs-domain-list)",
	    " Mary <,@node.test:mary@example.net>",
	    "From: \"Mary via Announce\" " LA },
	{ "obs-local-part with CFWS", " john . doe (x) @example.org",
	    "From: \"john.doe via Announce\" " LA },
	{ "group without its ';': everything was read",
	    " Friends: Carol <carol@example.org>",
	    "From: \"Carol via Announce\" " LA },
	/* Not address lists (RFC 5322 §3.2.3 dot-atom, §3.4.1, §4.4
	 * obs-local-part and obs-domain), so the list alone is named: the
	 * old parser took '.' for an atom character and words side by side
	 * for a local part, and named "a..b", "JohnDoe", "John Doejohn". */
	{ "two dots in a row in the local part", " a..b@example.org",
	    "From: \"Announce\" " LA },
	{ "local part ending in a dot", " alice.@example.org",
	    "From: \"Announce\" " LA },
	{ "two words as a local part", " John Doe@example.org",
	    "From: \"Announce\" " LA },
	{ "quoted name without angle brackets",
	    " \"John Doe\" john@example.org", "From: \"Announce\" " LA },
	{ "white space inside the domain", " alice@example org",
	    "From: \"Announce\" " LA },
	{ "domain ending in a dot", " alice@example.org.",
	    "From: \"Announce\" " LA },
	{ "route domains without ',' between",
	    " Mary <@a.test@b.test:mary@example.net>",
	    "From: \"Announce\" " LA },
	{ "garbage", " <<<", "From: \"Announce\" " LA },
	{ "garbage, unclosed quote", " \"Alice <alice@example.org>",
	    "From: \"Announce\" " LA },
	{ "garbage, unclosed comment", " Alice (x <alice@example.org>",
	    "From: \"Announce\" " LA },
	{ "empty", "", "From: \"Announce\" " LA },
	{ "8-bit junk", " \xff\xfe\x80 <a@example.com>",
	    "From: =?UTF-8?Q?=EF=BF=BD=EF=BF=BD=EF=BF=BD?= via Announce\r\n "
	    LA },
};

Test(from, table)
{
	struct listhdr_opts o = opts();
	size_t i;

	o.rewrite_from = true;
	for (i = 0; i < NELEM(from_cases); i++) {
		const struct from_case *c = &from_cases[i];
		char *msg, *r, *xof;

		cr_assert(asprintf(&msg, "To: x@example.com\r\nFrom:%s\r\n"
		    "Subject: s\r\n\r\nbody\r\n", c->from) > 0);
		r = apply_s(&o, msg, c->desc);
		expect_field(r, "From", 0, c->want, c->desc);
		cr_expect_eq(count(r, "From"), 1, "%s: From fields", c->desc);
		cr_assert(asprintf(&xof, "X-Original-From:%s", c->from) > 0);
		expect_field(r, "X-Original-From", 0, xof, c->desc);
		cr_expect_leq(max_line(r, strlen(r)), 998, "%s", c->desc);
		free(xof);
		free(msg);
		free(r);
	}
}

/* Long names: lines within 78 columns, encoded words within 75. */
Test(from, long_names)
{
	static const char *const names[] = {
		"Alice Bartholomew Catherine Dorothea Eleanor Frederica "
		"Gwendolyn Henrietta",
		"\xc3\x84lice B\xc3\xa4rtholomew C\xc3\xa4therine "
		"D\xc3\xb6rothea \xc3\x89leanor Fr\xc3\xa9" "derica "
		"Gw\xc3\xa9ndolyn H\xc3\xa9nrietta",
		"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe6\x97\xa5\xe6\x9c\xac"
		"\xe8\xaa\x9e\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe6\x97\xa5"
		"\xe6\x9c\xac\xe8\xaa\x9e\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"
		"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	};
	struct listhdr_opts o = opts();
	size_t i;

	o.rewrite_from = true;
	for (i = 0; i < NELEM(names); i++) {
		char *msg, *r, *f, *p, *q;

		cr_assert(asprintf(&msg, "From: %s <a@example.com>\r\n\r\n",
		    names[i]) > 0);
		r = apply_s(&o, msg, names[i]);
		f = field(r, "From", 0);
		cr_assert_not_null(f);
		cr_expect_leq(max_line(f, strlen(f)), 78, "%s: %s", names[i],
		    esz(f));
		for (p = f; (p = strstr(p, "=?")) != NULL; p = q + 2) {
			q = strstr(p + 10, "?=");
			cr_assert_not_null(q, "%s: open encoded word",
			    names[i]);
			cr_expect_leq((size_t)(q + 2 - p), 75,
			    "%s: long encoded word in %s", names[i], esz(f));
		}
		free(f);
		free(msg);
		free(r);
	}
}

/* The author's name is cut at LISTHDR_NAME_MAX octets, on a character. */
Test(from, name_cap)
{
	struct listhdr_opts o = opts();
	char name[2 * LISTHDR_NAME_MAX + 1], *msg, *r, *f;
	size_t i;

	for (i = 0; i < 2 * LISTHDR_NAME_MAX; i += 2)
		memcpy(name + i, "\xc3\xa4", 2);
	name[2 * LISTHDR_NAME_MAX] = '\0';
	o.rewrite_from = true;
	cr_assert(asprintf(&msg, "From: %s <a@example.com>\r\n\r\n", name) > 0);
	r = apply_s(&o, msg, "name cap");
	f = field(r, "From", 0);
	cr_assert_not_null(f);
	/* LISTHDR_NAME_MAX / 2 characters of =C3=A4, 6 octets each. */
	{
		size_t n = 0;
		const char *p = f;

		while ((p = strstr(p, "=C3=A4")) != NULL) {
			n++;
			p += 6;
		}
		cr_expect_eq(n, LISTHDR_NAME_MAX / 2, "got %zu characters", n);
	}
	free(f);
	free(msg);
	free(r);
}

Test(from, fields)
{
	struct listhdr_opts o = opts();
	char *r;

	o.rewrite_from = true;
	r = apply_s(&o, "From: a@example.com\r\nFrom: B <b@example.com>\r\n"
	    "X-Original-From: upstream@example.net\r\n\r\n", "two From");
	cr_expect_eq(count(r, "From"), 1);
	expect_field(r, "From", 0, "From: \"a via Announce\" " LA, "two From");
	expect_field(r, "X-Original-From", 0, "X-Original-From: a@example.com",
	    "two From");
	expect_field(r, "X-Original-From", 1,
	    "X-Original-From: B <b@example.com>", "two From");
	expect_field(r, "X-Original-From", 2, NULL, "two From");
	free(r);

	r = apply_s(&o, "To: x@example.com\r\n\r\n", "no From");
	expect_field(r, "From", 0, "From: \"Announce\" " LA, "no From");
	expect_field(r, "X-Original-From", 0, NULL, "no From");
	free(r);

	o.list_name = NULL;
	r = apply_s(&o, "From: a@example.com\r\n\r\n", "no list name");
	expect_field(r, "From", 0, "From: \"a via announce\" " LA,
	    "no list name");
	free(r);

	o.list_name = "\xc3\x85nnounce";
	r = apply_s(&o, "From: a@example.com\r\n\r\n", "non-ASCII list name");
	expect_field(r, "From", 0, "From: a via =?UTF-8?Q?=C3=85nnounce?= "
	    LA, "non-ASCII list name");
	free(r);

	o = opts();
	r = apply_s(&o, "From: a@example.com\r\nX-Original-From: u@x.example"
	    "\r\n\r\n", "not rewritten");
	expect_field(r, "From", 0, "From: a@example.com", "not rewritten");
	expect_field(r, "X-Original-From", 0, "X-Original-From: u@x.example",
	    "not rewritten");
	free(r);
}

/* ------------------------------------------------------------ Reply-To */

struct reply_case {
	const char *desc;
	const char *from;
	const char *reply;	/* existing Reply-To fields (CRLF ended) */
	bool rewrite;
	enum listhdr_reply_to mode;
	const char *want[3];	/* Reply-To fields in the result */
};

static const struct reply_case reply_cases[] = {
	{ "list, none there", "A <a@example.com>", "", true,
	    LISTHDR_REPLY_LIST, { "Reply-To: announce@lists.example" } },
	{ "list, From not rewritten", "A <a@example.com>", "", false,
	    LISTHDR_REPLY_LIST, { "Reply-To: announce@lists.example" } },
	{ "list replaces the author's", "A <a@example.com>",
	    "Reply-To: b@example.com\r\nReply-To: c@example.com\r\n", true,
	    LISTHDR_REPLY_LIST, { "Reply-To: announce@lists.example" } },
	{ "author, none there: From's value", "A <a@example.com>", "", true,
	    LISTHDR_REPLY_AUTHOR, { "Reply-To: A <a@example.com>" } },
	{ "author, two addresses", "a@example.com, b@example.com", "", true,
	    LISTHDR_REPLY_AUTHOR,
	    { "Reply-To: a@example.com, b@example.com" } },
	{ "author keeps the author's own", "A <a@example.com>",
	    "Reply-To: b@example.com\r\n", true, LISTHDR_REPLY_AUTHOR,
	    { "Reply-To: b@example.com" } },
	{ "author, From not rewritten: nothing", "A <a@example.com>", "",
	    false, LISTHDR_REPLY_AUTHOR, { NULL } },
	{ "author, garbage From: nothing", "<<<", "", true,
	    LISTHDR_REPLY_AUTHOR, { NULL } },
	{ "author, empty group: nothing", "undisclosed:;", "", true,
	    LISTHDR_REPLY_AUTHOR, { NULL } },
	{ "author, From not an address list (§4.4): nothing",
	    "John Doe@example.com", "", true, LISTHDR_REPLY_AUTHOR, { NULL } },
	{ "author, group without ';': From's value", "G: a@example.com", "",
	    true, LISTHDR_REPLY_AUTHOR, { "Reply-To: G: a@example.com" } },
	{ "none leaves it", "A <a@example.com>",
	    "Reply-To: b@example.com\r\n", true, LISTHDR_REPLY_NONE,
	    { "Reply-To: b@example.com" } },
	{ "none adds nothing", "A <a@example.com>", "", true,
	    LISTHDR_REPLY_NONE, { NULL } },
	{ "none keeps two", "A <a@example.com>",
	    "Reply-To: b@example.com\r\nReply-To: c@example.com\r\n", false,
	    LISTHDR_REPLY_NONE,
	    { "Reply-To: b@example.com", "Reply-To: c@example.com" } },
};

Test(reply, modes)
{
	size_t i, k;

	for (i = 0; i < NELEM(reply_cases); i++) {
		const struct reply_case *c = &reply_cases[i];
		struct listhdr_opts o = opts();
		char *msg, *r;

		o.rewrite_from = c->rewrite;
		o.reply_to = c->mode;
		cr_assert(asprintf(&msg, "From: %s\r\n%sSubject: s\r\n\r\n",
		    c->from, c->reply) > 0);
		r = apply_s(&o, msg, c->desc);
		for (k = 0; k < 3; k++) {
			expect_field(r, "Reply-To", k, c->want[k], c->desc);
			if (c->want[k] == NULL)
				break;
		}
		free(msg);
		free(r);
	}
}

/* A replaced Reply-To keeps its place; an added one goes at the end. */
Test(reply, position)
{
	struct listhdr_opts o = opts();
	char *r;

	o.reply_to = LISTHDR_REPLY_LIST;
	r = apply_s(&o, "A: 1\r\nReply-To: x@example.com\r\nB: 2\r\n\r\n",
	    "in place");
	cr_expect(strncmp(r, "A: 1\r\nReply-To: announce@lists.example\r\n"
	    "B: 2\r\n", 46) == 0, "got %s", esz(r));
	free(r);
}

/* ------------------------------------------------------------- List-* */

struct list_case {
	const char *desc;
	const char *id;
	const char *mailto, *https;
	const char *want_id, *want_unsub, *want_post;
};

static const struct list_case list_cases[] = {
	{ "nothing given", NULL, NULL, NULL,
	    "List-Id: <announce.lists.example>", NULL, NULL },
	{ "mailto only", NULL, "announce-unsubscribe@lists.example", NULL,
	    "List-Id: <announce.lists.example>",
	    "List-Unsubscribe: <mailto:announce-unsubscribe@lists.example>",
	    NULL },
	{ "https only", NULL, NULL, "https://lists.example/u/announce",
	    "List-Id: <announce.lists.example>",
	    "List-Unsubscribe: <https://lists.example/u/announce>",
	    "List-Unsubscribe-Post: List-Unsubscribe=One-Click" },
	{ "both", "Announce <announce.lists.example>",
	    "announce-unsubscribe@lists.example",
	    "https://lists.example/u/announce",
	    "List-Id: Announce <announce.lists.example>",
	    "List-Unsubscribe: <mailto:announce-unsubscribe@lists.example>,"
	    "\r\n <https://lists.example/u/announce>",
	    "List-Unsubscribe-Post: List-Unsubscribe=One-Click" },
	{ "a mailto: URI with a subject",
	    "\"The List\" <announce.lists.example>",
	    "mailto:announce-request@lists.example?subject=unsubscribe", NULL,
	    "List-Id: \"The List\" <announce.lists.example>",
	    "List-Unsubscribe: "
	    "<mailto:announce-request@lists.example?subject=unsubscribe>",
	    NULL },
	{ "an address that wants %-escapes", NULL, "un?sub#x%y@lists.example",
	    NULL, "List-Id: <announce.lists.example>",
	    "List-Unsubscribe: <mailto:un%3Fsub%23x%25y@lists.example>",
	    NULL },
};

Test(list, fields)
{
	size_t i;

	for (i = 0; i < NELEM(list_cases); i++) {
		const struct list_case *c = &list_cases[i];
		struct listhdr_opts o = opts();
		char *r;

		o.list_id = c->id;
		o.unsub_mailto = c->mailto;
		o.unsub_https = c->https;
		r = apply_s(&o, "From: a@example.com\r\nSubject: s\r\n\r\nb",
		    c->desc);
		expect_field(r, "List-Id", 0, c->want_id, c->desc);
		expect_field(r, "List-Post", 0,
		    "List-Post: <mailto:announce@lists.example>", c->desc);
		expect_field(r, "List-Unsubscribe", 0, c->want_unsub, c->desc);
		expect_field(r, "List-Unsubscribe-Post", 0, c->want_post,
		    c->desc);
		expect_field(r, "Precedence", 0, "Precedence: list", c->desc);
		expect_field(r, "Precedence", 1, NULL, c->desc);
		free(r);
	}
}

/* The whole header, in order: upstream list fields replaced in place,
 * List-Help kept, new fields at the end. */
Test(list, order)
{
	struct listhdr_opts o = opts();
	const char *msg =
	    "Received: from a\r\n"
	    "List-Id: Upstream <up.example.net>\r\n"
	    "From: Alice <alice@example.org>\r\n"
	    "List-Help: <mailto:help@example.net>\r\n"
	    "List-Unsubscribe: <mailto:leave@example.net>\r\n"
	    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
	    "Subject: hi\r\n"
	    "Precedence: bulk\r\n"
	    "Precedence: junk\r\n"
	    "\r\n"
	    "body\r\n";
	const char *want =
	    "Received: from a\r\n"
	    "List-Id: <announce.lists.example>\r\n"
	    "From: \"Alice via Announce\" <announce@lists.example>\r\n"
	    "List-Help: <mailto:help@example.net>\r\n"
	    "List-Unsubscribe: <mailto:bye@lists.example>\r\n"
	    "Subject: " TAG " hi\r\n"
	    "Precedence: list\r\n"
	    "X-Original-From: Alice <alice@example.org>\r\n"
	    "Reply-To: announce@lists.example\r\n"
	    "List-Post: <mailto:announce@lists.example>\r\n"
	    "\r\n"
	    "body\r\n";
	char *r;

	o.subject_tag = TAG;
	o.rewrite_from = true;
	o.reply_to = LISTHDR_REPLY_LIST;
	o.unsub_mailto = "bye@lists.example";
	r = apply_s(&o, msg, "order");
	cr_expect_str_eq(r, want, "\n got  %s\n want %s", esz(r), esz(want));
	free(r);
}

/* ---------------------------------------------------------------- loop */

struct loop_case {
	const char *desc;
	const char *msg;
	const char *list_id;	/* o->list_id; NULL: derived */
	bool want;
};

static const struct loop_case loop_cases[] = {
	{ "exact", "List-Id: Announce <announce.lists.example>\r\n\r\n",
	    "Announce <announce.lists.example>", true },
	{ "derived id", "List-Id: <announce.lists.example>\r\n\r\n", NULL,
	    true },
	{ "other phrase, same id", "List-Id: \"Other\" <announce.lists.example>"
	    "\r\n\r\n", "Announce <announce.lists.example>", true },
	{ "case differs", "List-Id: <ANNOUNCE.Lists.Example>\r\n\r\n", NULL,
	    true },
	{ "field name case differs",
	    "LIST-ID: <announce.lists.example>\r\n\r\n",
	    NULL, true },
	{ "white space inside <>",
	    "List-Id: < announce.lists.example >\r\n\r\n",
	    NULL, true },
	{ "folded", "List-Id: Announce\r\n <announce.lists.example>\r\n\r\n",
	    NULL, true },
	{ "second List-Id field", "List-Id: <up.example.net>\r\n"
	    "List-Id: <announce.lists.example>\r\n\r\n", NULL, true },
	{ "different list", "List-Id: <other.lists.example>\r\n\r\n", NULL,
	    false },
	{ "a longer id", "List-Id: <announce.lists.example.net>\r\n\r\n", NULL,
	    false },
	{ "a shorter id", "List-Id: <announce.lists>\r\n\r\n", NULL, false },
	{ "the id only in the phrase",
	    "List-Id: \"<announce.lists.example>\" <x.example>\r\n\r\n", NULL,
	    false },
	{ "the id only in a comment",
	    "List-Id: (<announce.lists.example>) <x.example>\r\n\r\n", NULL,
	    false },
	{ "no List-Id", "List-Post: <mailto:announce@lists.example>\r\n\r\n",
	    NULL, false },
	{ "unclosed <", "List-Id: <announce.lists.example\r\n\r\n", NULL,
	    false },
	{ "not a message", "List-Id <announce.lists.example>\r\n\r\n", NULL,
	    false },
};

Test(loop, table)
{
	size_t i;

	for (i = 0; i < NELEM(loop_cases); i++) {
		const struct loop_case *c = &loop_cases[i];
		struct listhdr_opts o = opts();
		bool got;

		o.list_id = c->list_id;
		got = listhdr_has_list_id(&o, c->msg, strlen(c->msg));
		cr_expect_eq(got, c->want, "%s: got %d, want %d", c->desc, got,
		    c->want);
	}
}

/* What listhdr_apply writes, listhdr_has_list_id finds. */
Test(loop, round_trip)
{
	struct listhdr_opts o = opts();
	char *r;

	o.list_id = "The Announce list <Announce.Lists.Example>";
	r = apply_s(&o, "Subject: x\r\n\r\n", "round trip");
	cr_expect(listhdr_has_list_id(&o, r, strlen(r)));
	o.list_id = NULL;
	cr_expect(listhdr_has_list_id(&o, r, strlen(r)));
	o.list_addr = "other@lists.example";
	cr_expect_not(listhdr_has_list_id(&o, r, strlen(r)));
	free(r);
}

/* --------------------------------------------------------------- bytes */

/* The fields listhdr_apply may touch, with everything on. */
static bool
touched(const struct dkim_field *f)
{
	static const char *const names[] = { "Subject", "From",
	    "X-Original-From", "Reply-To", "List-Id", "List-Post",
	    "List-Unsubscribe", "List-Unsubscribe-Post", "Precedence" };
	size_t i;

	for (i = 0; i < NELEM(names); i++)
		if (dkim_field_is(f, names[i]))
			return true;
	return false;
}

Test(bytes, unchanged_fields)
{
	static const char msg[] =
	    "Return-Path: <a@example.org>\r\n"
	    "Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n"
	    "\tby lists.example with ESMTPS id 1234\r\n"
	    "\tfor <announce@lists.example>; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	    "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s;\r\n"
	    "  h=From:To:Subject; bh=abc=; b=def\r\n"
	    "From : Alice <alice@example.org>\r\n"
	    "To:announce@lists.example\r\n"
	    "Cc:   \t  lots of space   \r\n"
	    "X-8bit: caf\xc3\xa9 \xff\r\n"
	    "X-Empty:\r\n"
	    "Subject: hi\r\n"
	    "x-weird-CASE: Value\r\n"
	    "List-Archive: <https://example.net/archive>\r\n"
	    "Received: second\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    "From the body: not a header\r\n"
	    "Subject: neither\r\n"
	    "\r\n"
	    "\x00\x01 binary \xff\r\n"
	    "no final CRLF";
	struct listhdr_opts o = opts();
	struct dkim_msg *a, *b;
	size_t i, j;
	char *r;
	size_t rlen;
	struct dkim_buf out;
	char why[256];

	o.subject_tag = TAG;
	o.rewrite_from = true;
	o.reply_to = LISTHDR_REPLY_LIST;
	o.unsub_mailto = "bye@lists.example";
	o.unsub_https = "https://lists.example/u";
	dkim_buf_init(&out, 0);
	cr_assert(listhdr_apply(&o, msg, sizeof(msg) - 1, &out, why,
	    sizeof(why)), "%s", why);
	r = dkim_buf_take(&out, &rlen);
	cr_assert_eq(dkim_msg_parse(msg, sizeof(msg) - 1, NULL, &a, NULL, 0),
	    DKIM_OK);
	cr_assert_eq(dkim_msg_parse(r, rlen, NULL, &b, NULL, 0), DKIM_OK);
	for (i = 0, j = 0; i < a->nfields; i++) {
		if (touched(&a->fields[i]))
			continue;
		while (j < b->nfields && touched(&b->fields[j]))
			j++;
		cr_assert_lt(j, b->nfields, "field %zu missing", i);
		cr_expect(a->fields[i].raw_len == b->fields[j].raw_len &&
		    memcmp(a->fields[i].raw, b->fields[j].raw,
		    a->fields[i].raw_len) == 0, "field %zu\n got  %s\n want %s",
		    i, esc(b->fields[j].raw, b->fields[j].raw_len),
		    esc(a->fields[i].raw, a->fields[i].raw_len));
		j++;
	}
	while (j < b->nfields && touched(&b->fields[j]))
		j++;
	cr_expect_eq(j, b->nfields, "extra fields in the result");
	cr_expect(a->body_len == b->body_len && memcmp(a->body, b->body,
	    a->body_len) == 0, "body changed");
	dkim_msg_free(a);
	dkim_msg_free(b);
	free(r);
}

/* Nothing asked: the message comes back with only the List-* fields,
 * and a header without its empty line gets one. */
Test(bytes, nothing_asked)
{
	struct listhdr_opts o = opts();
	char *r;

	r = apply_s(&o, "Subject: s\r\nFrom: a@example.com\r\n\r\nx", "plain");
	cr_expect_str_eq(r, "Subject: s\r\nFrom: a@example.com\r\n"
	    "List-Id: <announce.lists.example>\r\n"
	    "List-Post: <mailto:announce@lists.example>\r\n"
	    "Precedence: list\r\n\r\nx", "got %s", esz(r));
	free(r);
	r = apply_s(&o, "Subject: s", "header only");
	cr_expect_str_eq(r, "Subject: s\r\n"
	    "List-Id: <announce.lists.example>\r\n"
	    "List-Post: <mailto:announce@lists.example>\r\n"
	    "Precedence: list\r\n\r\n", "got %s", esz(r));
	free(r);
	r = apply_s(&o, "\r\nbody", "empty header");
	cr_expect_str_eq(r, "List-Id: <announce.lists.example>\r\n"
	    "List-Post: <mailto:announce@lists.example>\r\n"
	    "Precedence: list\r\n\r\nbody", "got %s", esz(r));
	free(r);
}

/* -------------------------------------------------------------- errors */

struct opt_case {
	const char *desc;
	const char *addr, *name, *id, *tag, *mailto, *https;
	int mode;
	const char *why;	/* a part of the reason */
};

static const struct opt_case opt_cases[] = {
	{ "no address", NULL, .why = "no list address" },
	{ "empty address", "", .why = "no list address" },
	{ "address without @", "announce", .why = "local@domain" },
	{ "address with a space", "an nounce@lists.example",
	    .why = "local@domain" },
	{ "address with a bad domain", "a@lists..example",
	    .why = "local@domain" },
	{ "address with CRLF", "a@lists.example\r\nBcc: x@y",
	    .why = "control character" },
	{ "name with LF", "a@lists.example", "A\nB", .why = "control" },
	{ "name not UTF-8", "a@lists.example", "A\xff", .why = "not UTF-8" },
	{ "id without <>", "a@lists.example", NULL, "announce.lists.example",
	    .why = "list id" },
	{ "id without a dot", "a@lists.example", NULL, "<announce>",
	    .why = "list id" },
	{ "id with two <>", "a@lists.example", NULL, "<a.b> <c.d>",
	    .why = "list id" },
	{ "tag with a space at its start", "a@lists.example", NULL, NULL,
	    " [a]", .why = "subject tag" },
	{ "tag not ASCII", "a@lists.example", NULL, NULL, "[\xc3\xa4]",
	    .why = "subject tag" },
	{ "unsubscribe address bad", "a@lists.example", NULL, NULL, NULL,
	    "not an address", .why = "unsubscribe address" },
	{ "unsubscribe mailto: URI with <", "a@lists.example", NULL, NULL, NULL,
	    "mailto:<x@y>", .why = "unsubscribe address" },
	{ "unsubscribe over http", "a@lists.example", NULL, NULL, NULL, NULL,
	    "http://lists.example/u", .why = "https" },
	{ "unsubscribe URI with a space", "a@lists.example", NULL, NULL, NULL,
	    NULL, "https://lists.example/u x", .why = "https" },
	{ "unsubscribe URI empty host", "a@lists.example", NULL, NULL, NULL,
	    NULL, "https://", .why = "https" },
	{ "unknown Reply-To mode", "a@lists.example", .mode = 7,
	    .why = "Reply-To mode" },
};

Test(errors, options)
{
	size_t i;

	for (i = 0; i < NELEM(opt_cases); i++) {
		const struct opt_case *c = &opt_cases[i];
		struct listhdr_opts o;
		struct dkim_buf out;
		char why[256] = "";
		const char *msg = "Subject: s\r\n\r\n";

		memset(&o, 0, sizeof(o));
		o.list_addr = c->addr;
		o.list_name = c->name;
		o.list_id = c->id;
		o.subject_tag = c->tag;
		o.unsub_mailto = c->mailto;
		o.unsub_https = c->https;
		o.reply_to = (enum listhdr_reply_to)(c->mode ? c->mode :
		    LISTHDR_REPLY_NONE);
		dkim_buf_init(&out, 0);
		cr_expect_not(listhdr_apply(&o, msg, strlen(msg), &out, why,
		    sizeof(why)), "%s: accepted", c->desc);
		cr_expect(strstr(why, c->why) != NULL, "%s: reason got '%s', "
		    "want '%s'", c->desc, why, c->why);
		cr_expect_not(listhdr_has_list_id(&o, msg, strlen(msg)),
		    "%s: loop check accepted the options", c->desc);
		dkim_buf_free(&out);
	}
}

Test(errors, option_too_long)
{
	struct listhdr_opts o = opts();
	char big[LISTHDR_OPT_MAX + 2];
	struct dkim_buf out;
	char why[256] = "";

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	o.list_name = big;
	dkim_buf_init(&out, 0);
	cr_expect_not(listhdr_apply(&o, "S: s\r\n\r\n", 8, &out, why,
	    sizeof(why)));
	cr_expect(strstr(why, "longer than") != NULL, "reason %s", why);
	dkim_buf_free(&out);
	big[LISTHDR_OPT_MAX] = '\0';
	dkim_buf_init(&out, 0);
	cr_expect(listhdr_apply(&o, "S: s\r\n\r\n", 8, &out, why,
	    sizeof(why)), "%s", why);
	dkim_buf_free(&out);
}

struct msg_case {
	const char *desc;
	const char *msg;
	size_t len;		/* 0: strlen */
	const char *why;
};

static const struct msg_case msg_cases[] = {
	{ "empty", "", 0, "empty message" },
	{ "NUL in a header", "Subject: a\0b\r\n\r\n", 15, "NUL" },
	{ "bare LF", "Subject: a\nFrom: b\r\n\r\n", 0, "bare LF" },
	{ "bare CR", "Subject: a\rb\r\n\r\n", 0, "bare CR" },
	{ "not a field", "hello world\r\n\r\n", 0, "not a header field" },
	{ "continuation first", " x\r\nSubject: a\r\n\r\n", 0,
	    "continues no header field" },
};

Test(errors, messages)
{
	struct listhdr_opts o = opts();
	size_t i;

	o.subject_tag = TAG;
	o.rewrite_from = true;
	for (i = 0; i < NELEM(msg_cases); i++) {
		const struct msg_case *c = &msg_cases[i];
		size_t len = c->len ? c->len : strlen(c->msg);
		struct dkim_buf out;
		char why[256] = "";

		dkim_buf_init(&out, 0);
		cr_expect_not(listhdr_apply(&o, c->msg, len, &out, why,
		    sizeof(why)), "%s: accepted", c->desc);
		cr_expect(strstr(why, "not a message") && strstr(why, c->why),
		    "%s: reason got '%s', want '%s'", c->desc, why, c->why);
		cr_expect_not(listhdr_has_list_id(&o, c->msg, len), "%s",
		    c->desc);
		dkim_buf_free(&out);
	}
}

Test(errors, ceiling)
{
	struct listhdr_opts o = opts();
	struct dkim_buf out;
	char why[256] = "";
	const char *msg = "Subject: s\r\n\r\nbody";

	dkim_buf_init(&out, 64);
	cr_expect_not(listhdr_apply(&o, msg, strlen(msg), &out, why,
	    sizeof(why)));
	cr_expect(strstr(why, "does not fit") != NULL, "reason %s", why);
	dkim_buf_free(&out);
	cr_expect_not(listhdr_apply(&o, msg, strlen(msg), NULL, why,
	    sizeof(why)));
}

/* A very long header line and a very long folded subject. */
Test(errors, long_lines)
{
	struct listhdr_opts o = opts();
	size_t n = 60000, i;
	char *msg = malloc(n + 8192), *r, *s;
	size_t k;

	cr_assert_not_null(msg);
	k = (size_t)sprintf(msg, "From: ");
	for (i = 0; i < n; i++)
		msg[k++] = (i % 7 == 6) ? ' ' : 'x';
	k += (size_t)sprintf(msg + k, " <a@example.com>\r\nSubject:");
	for (i = 0; i < 2000; i++)
		k += (size_t)sprintf(msg + k, "%s", i % 2 ? "\r\n w" : " w");
	msg[k] = '\0';
	o.subject_tag = TAG;
	o.rewrite_from = true;
	r = apply(&o, msg, k, "long lines");
	s = field(r, "From", 0);
	cr_assert_not_null(s);
	cr_expect_leq(strlen(s), 6 + 2 + LISTHDR_NAME_MAX + 64 + 30,
	    "From too long: %zu", strlen(s));
	free(s);
	s = field(r, "Subject", 0);
	cr_assert_not_null(s);
	cr_expect(strncmp(s, "Subject: " TAG " w\r\n w", 25) == 0, "%.40s",
	    esz(s));
	free(s);
	free(r);
	free(msg);
}

/* Junk: random header bytes never crash; what is accepted parses back. */
Test(errors, junk)
{
	static const char alphabet[] = "ab <>@,;:\"\\()[]=?_.\t\r\n\x80\xc3"
	    "\xa4\xff\x01";
	struct listhdr_opts o = opts();
	uint32_t seed = 12345;
	size_t round, i;

	o.subject_tag = TAG;
	o.rewrite_from = true;
	o.reply_to = LISTHDR_REPLY_AUTHOR;
	for (round = 0; round < 3000; round++) {
		char msg[512];
		size_t k = 0, n;
		struct dkim_buf out;
		char why[256];

		seed = seed * 1103515245u + 12345u;
		k += (size_t)sprintf(msg, round % 2 ? "From:" : "Subject:");
		n = (seed >> 16) % 200;
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			msg[k++] = alphabet[(seed >> 16) % (sizeof(alphabet)
			    - 1)];
		}
		k += (size_t)sprintf(msg + k, "\r\n\r\nb");
		dkim_buf_init(&out, 0);
		if (listhdr_apply(&o, msg, k, &out, why, sizeof(why))) {
			struct dkim_msg *m;

			cr_expect_eq(dkim_msg_parse(out.p, out.len, NULL, &m,
			    NULL, 0), DKIM_OK, "round %zu: result does not "
			    "parse: %s", round, esc(out.p, out.len));
			dkim_msg_free(m);
		} else
			cr_expect(why[0] != '\0', "round %zu: no reason",
			    round);
		(void)listhdr_has_list_id(&o, msg, k);
		dkim_buf_free(&out);
	}
}
