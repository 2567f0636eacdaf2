/*
 * test_tags.c - RFC 6376 §3.2 tag=value lists through dkim_tags_parse.
 *
 * Each table row is one tag-list and the tags (name, value, value_off) the
 * parser must report, or a list the parser must refuse with DKIM_E_SYNTAX
 * and a reason. Offsets are written out by hand and cross-checked against
 * the input so a typo in the table shows up as a table error, not as a
 * library bug.
 */
#include <criterion/criterion.h>

#include "unit.h"

#define ANY_OFF ((size_t)-1)	/* value_off not checked (empty values) */

struct want_tag {
	const char *name;
	const char *value;
	size_t off;
};

struct ok_case {
	const char *desc;
	const char *in;
	size_t len;		/* 0: strlen(in) */
	size_t n;
	struct want_tag tags[4];
};

static const struct ok_case ok_cases[] = {
	{ "one tag", "v=1", 0, 1, { { "v", "1", 2 } } },
	{ "two tags", "v=1; a=rsa-sha256", 0, 2,
	    { { "v", "1", 2 }, { "a", "rsa-sha256", 7 } } },
	{ "WSP around name, '=' and value", " v = 1 ; a = b ", 0, 2,
	    { { "v", "1", 5 }, { "a", "b", 13 } } },
	{ "FWS before a tag name", "v=1;\r\n\ta=2", 0, 2,
	    { { "v", "1", 2 }, { "a", "2", 9 } } },
	{ "FWS between name and '='", "v\r\n =1", 0, 1,
	    { { "v", "1", 5 } } },
	{ "FWS between '=' and value", "v=\r\n 1", 0, 1,
	    { { "v", "1", 5 } } },
	{ "WSP and FWS on both sides of a value", "v= \r\n\t 1 \r\n ;a=2", 0, 2,
	    { { "v", "1", 7 }, { "a", "2", 15 } } },
	{ "folding inside a value is kept", "h=from:\r\n to; x=y", 0, 2,
	    { { "h", "from:\r\n to", 2 }, { "x", "y", 16 } } },
	{ "WSP and folding inside a value are kept", "b=abc \r\n def ghi", 0, 1,
	    { { "b", "abc \r\n def ghi", 2 } } },
	{ "internal SP and HTAB runs are kept", "n=hello  world\tx", 0, 1,
	    { { "n", "hello  world\tx", 2 } } },
	{ "trailing ';'", "v=1;", 0, 1, { { "v", "1", 2 } } },
	{ "trailing ';' and SP", "v=1; ", 0, 1, { { "v", "1", 2 } } },
	{ "trailing ';' and FWS", "v=1;\t \r\n ", 0, 1, { { "v", "1", 2 } } },
	{ "trailing WSP without ';'", "v=1 \t", 0, 1, { { "v", "1", 2 } } },
	{ "empty value then a tag", "a=; b=2", 0, 2,
	    { { "a", "", 2 }, { "b", "2", 6 } } },
	{ "empty value at the end", "a=", 0, 1, { { "a", "", 2 } } },
	{ "empty value with WSP", "a= ;b=x", 0, 2,
	    { { "a", "", ANY_OFF }, { "b", "x", 6 } } },
	{ "names with digits and '_'", "a_b=1; A1=2; Z=3", 0, 3,
	    { { "a_b", "1", 4 }, { "A1", "2", 10 }, { "Z", "3", 15 } } },
	{ "names are case-sensitive, not duplicates", "a=1; A=2", 0, 2,
	    { { "a", "1", 2 }, { "A", "2", 7 } } },
	{ "'=' inside values", "b=ab+/==; c=x=y", 0, 2,
	    { { "b", "ab+/==", 2 }, { "c", "x=y", 12 } } },
	{ "every VALCHAR boundary",
	    "a=!\"#$%&'()*+,-./09:<=>?@AZ[\\]^_`az{|}~", 0, 1,
	    { { "a", "!\"#$%&'()*+,-./09:<=>?@AZ[\\]^_`az{|}~", 2 } } },
	{ "length bounds the input, not NUL", "v=1; a=2", 3, 1,
	    { { "v", "1", 2 } } },
	{ "length stops before junk", "a=1;;", 4, 1, { { "a", "1", 2 } } },
};

Test(tags, valid_lists)
{
	for (size_t i = 0; i < NELEM(ok_cases); i++) {
		const struct ok_case *c = &ok_cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		struct dkim_taglist tl;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;

		memset(&tl, 0xa5, sizeof(tl));
		st = dkim_tags_parse(c->in, len, &tl, why, sizeof(why));
		cr_expect(st == DKIM_OK, "%s: \"%s\": status got %d (%s, %s), "
		    "want DKIM_OK", c->desc, esc(c->in, len), st,
		    dkim_status_str(st), why);
		if (st != DKIM_OK)
			continue;
		cr_expect(tl.n == c->n, "%s: \"%s\": tag count got %zu, want "
		    "%zu", c->desc, esc(c->in, len), tl.n, c->n);
		for (size_t j = 0; j < c->n && j < tl.n; j++) {
			const struct want_tag *w = &c->tags[j];
			const struct dkim_tag *g = &tl.tags[j];

			/* The table itself must be consistent. */
			if (w->off != ANY_OFF)
				cr_assert(w->off + strlen(w->value) <= len &&
				    memcmp(c->in + w->off, w->value,
				    strlen(w->value)) == 0,
				    "table error in %s tag %zu", c->desc, j);
			cr_expect(same(g->name, g->name_len, w->name),
			    "%s: tag %zu name got \"%s\", want \"%s\"",
			    c->desc, j, esc(g->name, g->name_len),
			    escs(w->name));
			cr_expect(same(g->value, g->value_len, w->value),
			    "%s: tag %s value got \"%s\", want \"%s\"",
			    c->desc, w->name, esc(g->value, g->value_len),
			    escs(w->value));
			if (w->off == ANY_OFF)
				continue;
			cr_expect(g->value_off == w->off,
			    "%s: tag %s value_off got %zu, want %zu",
			    c->desc, w->name, g->value_off, w->off);
			cr_expect(g->value == c->in + g->value_off,
			    "%s: tag %s value pointer got in+%td, want "
			    "in+value_off (%zu)", c->desc, w->name,
			    g->value - c->in, g->value_off);
			cr_expect(g->name >= c->in && g->name < c->in + len,
			    "%s: tag %s name does not point into the text",
			    c->desc, w->name);
		}
	}
}

/* Empty values are present; omitted tags are absent (RFC 6376 §3.2). */
struct get_case {
	const char *in;
	const char *name;
	const char *want;	/* NULL: tag must be absent */
};

static const struct get_case get_cases[] = {
	{ "a=; b=2", "a", "" },
	{ "a=; b=2", "b", "2" },
	{ "a=; b=2", "c", NULL },
	{ "a=; b=2", "", NULL },
	{ "a=1; A=2", "a", "1" },
	{ "a=1; A=2", "A", "2" },
	{ "bh=x; b=y", "b", "y" },
	{ "bh=x; b=y", "bh", "x" },
	{ "bh=x", "b", NULL },
	{ "abc=1", "ab", NULL },
};

Test(tags, get_empty_versus_omitted)
{
	for (size_t i = 0; i < NELEM(get_cases); i++) {
		const struct get_case *c = &get_cases[i];
		struct dkim_taglist tl;
		const struct dkim_tag *t;
		enum dkim_status st;

		st = dkim_tags_parse(c->in, strlen(c->in), &tl, NULL, 0);
		cr_assert(st == DKIM_OK, "\"%s\": status got %d, want DKIM_OK",
		    escs(c->in), st);
		t = dkim_tags_get(&tl, c->name);
		if (c->want == NULL) {
			cr_expect(t == NULL, "\"%s\" get(%s): got \"%s\", want "
			    "absent", escs(c->in), c->name,
			    t ? esc(t->value, t->value_len) : "");
			continue;
		}
		cr_expect(t != NULL, "\"%s\" get(%s): got absent, want \"%s\"",
		    escs(c->in), c->name, c->want);
		if (t != NULL)
			cr_expect(same(t->value, t->value_len, c->want),
			    "\"%s\" get(%s): got \"%s\", want \"%s\"",
			    escs(c->in), c->name, esc(t->value, t->value_len),
			    c->want);
	}
}

struct bad_case {
	const char *desc;
	const char *in;
	size_t len;		/* 0: strlen(in) */
};

static const struct bad_case bad_cases[] = {
	{ "duplicate tag", "v=1; v=2", 0 },
	{ "duplicate tag, not adjacent", "a=1; b=2; a=3", 0 },
	{ "duplicate tag, same value", "d=x; d=x", 0 },
	{ "name starts with a digit", "1a=x", 0 },
	{ "name starts with '_'", "_a=x", 0 },
	{ "name contains '-'", "a-b=x", 0 },
	{ "name contains '.'", "a.b=x", 0 },
	{ "SP inside a name", "a b=x", 0 },
	{ "FWS inside a name", "a\r\n b=x", 0 },
	{ "control char in a name", "a\x01=x", 0 },
	{ "8-bit byte in a name", "\xc3\xa9=x", 0 },
	{ "missing '='", "ab", 0 },
	{ "missing '=' in the second tag-spec", "a=1; b", 0 },
	{ "missing '=' before ';'", "a; b=1", 0 },
	{ "empty name", "=1", 0 },
	{ "empty name after WSP", " =1", 0 },
	{ "empty name in the second tag-spec", "a=1; =2", 0 },
	{ "empty tag-spec in the middle", "a=1;;b=2", 0 },
	{ "empty tag-spec with WSP", "a=1; ;b=2", 0 },
	{ "leading empty tag-spec", ";a=1", 0 },
	{ "two trailing ';'", "a=1;;", 0 },
	{ "only ';'", ";", 0 },
	{ "control char in a value", "a=x\x01y", 0 },
	{ "DEL in a value", "a=x\x7fy", 0 },
	{ "ESC in a value", "a=\x1b[0m", 0 },
	{ "8-bit bytes in a value", "a=caf\xc3\xa9", 0 },
	{ "lone 8-bit byte as a value", "a=\x80", 0 },
	{ "NUL in a value", "a=x\0y", 5 },
	{ "bare CR between tags", "a=1\rb=2", 0 },
	{ "bare LF between tags", "a=1\nb=2", 0 },
	{ "CRLF not followed by WSP", "a=1\r\nb=2", 0 },
	{ "CRLF not followed by WSP after ';'", "a=1;\r\nb=2", 0 },
	{ "bare CR followed by SP in a value", "a=x\r y", 0 },
	{ "bare LF followed by SP in a value", "a=x\n y", 0 },
	{ "two CRLFs before WSP", "a=x\r\n\r\n y", 0 },
	{ "bare CR at the end", "a=x\r", 0 },
};

Test(tags, syntax_errors)
{
	for (size_t i = 0; i < NELEM(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		struct dkim_taglist tl;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;

		st = dkim_tags_parse(c->in, len, &tl, why, sizeof(why));
		cr_expect(st == DKIM_E_SYNTAX, "%s: \"%s\": status got %d (%s), "
		    "want DKIM_E_SYNTAX", c->desc, esc(c->in, len), st,
		    dkim_status_str(st));
		if (st == DKIM_E_SYNTAX)
			cr_expect(why[0] != '\0', "%s: \"%s\": reason got \"\", "
			    "want a reason", c->desc, esc(c->in, len));
	}
}

/* many_tags - "t0=x;t1=x;..." with n tags; caller frees. */
static char *
many_tags(size_t n, size_t *len)
{
	char *s = malloc(n * 8 + 1);
	size_t o = 0;

	cr_assert(s != NULL);
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(s + o, "%st%zu=x", i ? ";" : "", i);
	*len = o;
	return s;
}

Test(tags, tag_count_limit)
{
	static const struct {
		size_t n;
		enum dkim_status want;
	} rows[] = {
		{ 1, DKIM_OK },
		{ DKIM_MAX_TAGS - 1, DKIM_OK },
		{ DKIM_MAX_TAGS, DKIM_OK },
		{ DKIM_MAX_TAGS + 1, DKIM_E_SYNTAX },
		{ DKIM_MAX_TAGS * 2, DKIM_E_SYNTAX },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct dkim_taglist tl;
		char why[DKIM_WHY_MAX] = "";
		size_t len;
		char *s = many_tags(rows[i].n, &len);
		enum dkim_status st = dkim_tags_parse(s, len, &tl, why,
		    sizeof(why));

		cr_expect(st == rows[i].want, "%zu tags: status got %d (%s), "
		    "want %d", rows[i].n, st, why, rows[i].want);
		if (st == DKIM_OK && rows[i].want == DKIM_OK) {
			cr_expect(tl.n == rows[i].n, "%zu tags: count got %zu, "
			    "want %zu", rows[i].n, tl.n, rows[i].n);
			cr_expect(same(tl.tags[tl.n - 1].value,
			    tl.tags[tl.n - 1].value_len, "x"),
			    "%zu tags: last value got \"%s\", want \"x\"",
			    rows[i].n, esc(tl.tags[tl.n - 1].value,
			    tl.tags[tl.n - 1].value_len));
		}
		if (st != DKIM_OK && rows[i].want != DKIM_OK)
			cr_expect(why[0] != '\0', "%zu tags: reason got \"\", "
			    "want a reason", rows[i].n);
		free(s);
	}
}

/* A reason must fit any buffer the caller gives, including a tiny one. */
Test(tags, reason_respects_buffer_size)
{
	char why[4];

	memset(why, 'Z', sizeof(why));
	cr_expect(dkim_tags_parse("v=1; v=2", 8, &(struct dkim_taglist){0},
	    why, 3) == DKIM_E_SYNTAX);
	cr_expect(why[3] == 'Z', "byte past whylen got 0x%02x, want "
	    "untouched 'Z'", (unsigned char)why[3]);
	cr_expect(memchr(why, '\0', 3) != NULL, "reason in 3 bytes got no "
	    "NUL, want a NUL-terminated prefix");
}
