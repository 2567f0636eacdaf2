/*
 * test_addr.c - RFC 5322 address lists (policy/addr.c) as tables.
 *
 * Every row is an input and what it must give; a failure says got/want
 * with the row's description, bytes shown by tests/unit/unit.h's esc. A
 * parse is shown as the list written again from its spans (addr_show.h):
 * [name " "] ["<" route] local "@" domain [">"] for a mailbox, name ":"
 * members ";" for a group, ", " between, so a span one octet off shows.
 *
 *   parse_*    the grammar: good lists, the statuses and offsets of bad
 *              ones, 8-bit and NUL octets, every prefix of the good rows
 *   caps_*     ADDR_VALUE_MAX, ADDR_MAILBOX_MAX, ADDR_NEST_MAX
 *   room_*     less room than mailboxes, no room, argument errors
 *   lex_*      addr_token_next, addr_word_next, addr_compact,
 *              addr_unquote
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "addr_show.h"
#include "unit.h"

#define ROOM	16
#define ANY	((size_t)-1)

/* ------------------------------------------------------------ helpers */

static const char *
st_name(enum addr_status st)
{
	static const char *const names[] = {
		"OK", "EMPTY", "E_GROUP_OPEN", "E_COMMENT", "E_PAREN",
		"E_QUOTE", "E_LITERAL", "E_NUL", "E_CHAR", "E_TOKEN",
		"E_PHRASE", "E_LOCAL", "E_AT", "E_DOMAIN", "E_ANGLE",
		"E_ANGLE_EMPTY", "E_ROUTE", "E_GROUP_NAME", "E_GROUP_NESTED",
		"E_SEPARATOR", "E_TOO_LONG", "E_TOO_MANY", "E_TOO_DEEP",
		"E_ARGS",
	};

	return (size_t)st < NELEM(names) ? names[st] : "(bad status)";
}

/* expect_text - b holds the n octets of want (n 0: strlen(want)), or a
 * got/want failure for desc. */
static void
expect_text(const struct dkim_buf *b, const char *want, size_t n,
    const char *desc)
{
	if (n == 0)
		n = strlen(want);
	cr_expect(b->len == n && (n == 0 || memcmp(b->p, want, n) == 0),
	    "%s: got \"%s\", want \"%s\"", desc, esc(b->p, b->len),
	    esc(want, n));
}

/* A parse with room for ROOM of each. */
struct got {
	struct addr_mailbox mb[ROOM];
	struct addr_group grp[ROOM];
	struct addr_result res;
	enum addr_status st;
};

static void
parse(const char *v, size_t len, struct got *g)
{
	memset(g, 0, sizeof(*g));
	g->st = addr_parse(v, len, g->mb, ROOM, g->grp, ROOM, &g->res);
}

/* shown - the parse of v in g written again, into b (reset first). */
static void
shown(struct dkim_buf *b, const char *v, const struct got *g)
{
	dkim_buf_reset(b);
	show_list(b, v, g->mb, g->res.nmailbox < ROOM ? g->res.nmailbox :
	    ROOM, g->grp, g->res.ngroup < ROOM ? g->res.ngroup : ROOM);
}

/* -------------------------------------------------------------- parse */

struct good {
	const char *desc;
	const char *v;
	size_t len;		/* 0: strlen(v) */
	const char *want;	/* the parse, shown (addr_show.h) */
	size_t nmailbox, ngroup;
	enum addr_status st;	/* ADDR_OK unless said */
	size_t want_len;	/* 0: strlen(want) */
};

static const struct good goods[] = {
	{ "addr-spec", "user@example.com", 0, "user@example.com", 1 },
	{ "angle-addr", "<user@example.com>", 0, "<user@example.com>", 1 },
	{ "name-addr", "John Doe <john@example.com>", 0,
	    "John Doe <john@example.com>", 1 },
	{ "quoted display name holding ',' '<' '@'",
	    "\"Doe, John <x@evil.example>\" <john@example.com>", 0,
	    "\"Doe, John <x@evil.example>\" <john@example.com>", 1 },
	{ "comments around the parts (RFC 5322 A.5)",
	    "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
	    0, "Pete <pete@silly.test>", 1 },
	{ "comments inside a span stay in it",
	    "John (the) Doe <j(x).d@example (y). com>", 0,
	    "John (the) Doe <j(x).d@example (y). com>", 1 },
	{ "nested comments everywhere",
	    "(a (b (c)) d) user(x(y)z)@(p(q))example.com (r(s(t)))", 0,
	    "user@example.com", 1 },
	{ "comment holding quotes, brackets, '<' and escapes",
	    "(\" [ < \\( \\\\) a@example.com", 0, "a@example.com", 1 },
	{ "obs-phrase: dots in the display name",
	    "John Q. Public <jqp@example.com>", 0,
	    "John Q. Public <jqp@example.com>", 1 },
	{ "display name starting with a dot", ". J <j@example.com>", 0,
	    ". J <j@example.com>", 1 },
	{ "quoted and plain words in one name",
	    "Dr. \"J. R.\" Smith <s@example.com>", 0,
	    "Dr. \"J. R.\" Smith <s@example.com>", 1 },
	{ "empty quoted display name", "\"\" <x@example.net>", 0,
	    "\"\" <x@example.net>", 1 },
	{ "encoded word", "=?UTF-8?Q?J=C3=B6rg?= <joerg@example.de>", 0,
	    "=?UTF-8?Q?J=C3=B6rg?= <joerg@example.de>", 1 },
	{ "folded, ending in CRLF", " John Doe\r\n <john@example.com>\r\n", 0,
	    "John Doe <john@example.com>", 1 },
	{ "folded between every token",
	    "\r\n John\r\n\t<\r\n j\r\n .\r\n d\r\n @\r\n x\r\n .\r\n y\r\n >",
	    0, "John <j\r\n .\r\n d@x\r\n .\r\n y>", 1 },
	{ "folded inside a quoted string", "\"John\r\n Doe\" <j@example.com>",
	    0, "\"John\r\n Doe\" <j@example.com>", 1 },
	{ "tabs", "\ta@example.com,\tb@example.com\t", 0,
	    "a@example.com, b@example.com", 2 },
	{ "obs-route", "Mary <@node.test,@relay.test:mary@example.net>", 0,
	    "Mary <@node.test,@relay.test:mary@example.net>", 1 },
	{ "obs-route: leading and doubled commas",
	    "<,@a.example,,@b.example:u@c.example>", 0,
	    "<,@a.example,,@b.example:u@c.example>", 1 },
	{ "obs-route with CFWS and a literal",
	    "<@a.example (x) , @[192.0.2.1] : u@c.example>", 0,
	    "<@a.example (x) , @[192.0.2.1] :u@c.example>", 1 },
	{ "obs-route: a comma before ':'", "<@a.example,:u@c.example>", 0,
	    "<@a.example,:u@c.example>", 1 },
	{ "obs-domain: CFWS around the dots", "user@ example (c) . com", 0,
	    "user@example (c) . com", 1 },
	{ "obs-local-part: CFWS around the dots", "john . doe @example.com",
	    0, "john . doe@example.com", 1 },
	{ "quoted local part holding '@'", "\"a@b\"@example.com", 0,
	    "\"a@b\"@example.com", 1 },
	{ "quoted local part with escaped quote and backslash",
	    "\"a\\\"b\\\\c\"@example.com", 0,
	    "\"a\\\"b\\\\c\"@example.com", 1 },
	{ "empty quoted local part", "\"\"@example.com", 0,
	    "\"\"@example.com", 1 },
	{ "quoted strings and atoms joined by dots",
	    "\"a\".b.\"c d\"@example.com", 0, "\"a\".b.\"c d\"@example.com",
	    1 },
	{ "dot-atom with every atext character",
	    "!#$%&'*+-/=?^_`{|}~.09AZaz@example.com", 0,
	    "!#$%&'*+-/=?^_`{|}~.09AZaz@example.com", 1 },
	{ "domain literal", "user@[192.0.2.1]", 0, "user@[192.0.2.1]", 1 },
	{ "domain literal with FWS and a quoted-pair",
	    "<user@[ IPv6:2001:db8::1 \\] ]>", 0,
	    "<user@[ IPv6:2001:db8::1 \\] ]>", 1 },
	{ "UTF-8 everywhere (RFC 6532)",
	    "J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc" "cher.example>", 0,
	    "J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc" "cher.example>", 1 },
	{ "8-bit octets that are not UTF-8 are atext too",
	    "\xff\xfe\x80 <a\xff@example.com>", 0,
	    "\xff\xfe\x80 <a\xff@example.com>", 1 },
	{ "controls inside quotes, comments and literals (obs-NO-WS-CTL)",
	    "\"a\x01\x7f\" <x@[\x02]> (\x1f\x7f)", 0,
	    "\"a\x01\x7f\" <x@[\x02]>", 1 },
	{ "escaped NUL in a quoted string (obs-qp)",
	    "\"a\\\0b\" <x@example.com>", 22,
	    "\"a\\\0b\" <x@example.com>", 1, 0, ADDR_OK, 22 },
	{ "escaped NUL in a comment (obs-qp)", "(\\\0) x@example.com", 18,
	    "x@example.com", 1 },
	{ "two addresses", "a@example.com, B <b@example.net>", 0,
	    "a@example.com, B <b@example.net>", 2 },
	{ "empty members (obs-addr-list)",
	    ", a@example.com,, (c) ,b@example.net ,", 0,
	    "a@example.com, b@example.net", 2 },
	{ "group", "Friends: Carol <carol@example.org>, dave@example.org;", 0,
	    "Friends: Carol <carol@example.org>, dave@example.org;", 2, 1 },
	{ "empty group", "undisclosed-recipients:;", 0,
	    "undisclosed-recipients:;", 0, 1 },
	{ "group of CFWS", "G: (nobody) ;", 0, "G:;", 0, 1 },
	{ "group with empty members (obs-group-list)",
	    "G: , a@example.com ,, ;", 0, "G: a@example.com;", 1, 1 },
	{ "groups among mailboxes",
	    "a@x.example, G: b@y.example;, c@z.example, H:;", 0,
	    "a@x.example, G: b@y.example;, c@z.example, H:;", 3, 2 },
	{ "empty group first", "H:;, a@x.example", 0, "H:;, a@x.example",
	    1, 1 },
	{ "group with a quoted name and CFWS after ';'",
	    "\"The Team\" : a@x.example ; (end)", 0,
	    "\"The Team\": a@x.example;", 1, 1 },
	{ "group name with a dot", "Dr. Who's: a@x.example;", 0,
	    "Dr. Who's: a@x.example;", 1, 1 },
	{ "group without its ';': all read, status says so",
	    "Team: a@example.com, B <b@example.org>", 0,
	    "Team: a@example.com, B <b@example.org>;", 2, 1,
	    ADDR_E_GROUP_OPEN },
	{ "group without members or ';'", "G: ", 0, "G:;", 0, 1,
	    ADDR_E_GROUP_OPEN },
	{ "empty value", "", 0, "", 0, 0, ADDR_EMPTY },
	{ "only CFWS", " (c) \r\n ", 0, "", 0, 0, ADDR_EMPTY },
	{ "only commas", " , ,, ", 0, "", 0, 0, ADDR_EMPTY },
};

Test(parse, good)
{
	size_t i;

	for (i = 0; i < NELEM(goods); i++) {
		const struct good *c = &goods[i];
		size_t len = c->len ? c->len : strlen(c->v);
		struct got g;
		struct dkim_buf b;

		parse(c->v, len, &g);
		dkim_buf_init(&b, 0);
		shown(&b, c->v, &g);
		cr_expect_eq(g.st, c->st, "%s: status got %s (at %zu), want %s",
		    c->desc, st_name(g.st), g.res.err_off, st_name(c->st));
		cr_expect_eq(g.res.status, g.st, "%s: res.status %s", c->desc,
		    st_name(g.res.status));
		expect_text(&b, c->want, c->want_len, c->desc);
		dkim_buf_free(&b);
		cr_expect_eq(g.res.nmailbox, c->nmailbox,
		    "%s: mailboxes got %zu, want %zu", c->desc,
		    g.res.nmailbox, c->nmailbox);
		cr_expect_eq(g.res.ngroup, c->ngroup,
		    "%s: groups got %zu, want %zu", c->desc, g.res.ngroup,
		    c->ngroup);
	}
}

/* The flags and the group numbers of a few parses. */
Test(parse, flags)
{
	struct got g;
	const char *v = "a@[1.2.3.4], G: <b@x.example>, c@y.example;, "
	    "<@r.example:d@z.example>";

	parse(v, strlen(v), &g);
	cr_assert_eq(g.st, ADDR_OK, "got %s", st_name(g.st));
	cr_assert_eq(g.res.nmailbox, 4);
	cr_expect(g.mb[0].literal && !g.mb[0].angle && g.mb[0].group == 0,
	    "a: literal %d angle %d group %zu", g.mb[0].literal,
	    g.mb[0].angle, g.mb[0].group);
	cr_expect(!g.mb[1].literal && g.mb[1].angle && g.mb[1].group == 1,
	    "b: literal %d angle %d group %zu", g.mb[1].literal,
	    g.mb[1].angle, g.mb[1].group);
	cr_expect(!g.mb[2].angle && g.mb[2].group == 1, "c: angle %d group "
	    "%zu", g.mb[2].angle, g.mb[2].group);
	cr_expect(g.mb[3].angle && g.mb[3].group == 0 &&
	    g.mb[3].route.len == strlen("@r.example:"), "d: angle %d group "
	    "%zu route %zu", g.mb[3].angle, g.mb[3].group, g.mb[3].route.len);
	cr_expect(g.grp[0].first == 1 && g.grp[0].count == 2,
	    "group first %zu count %zu, want 1 and 2", g.grp[0].first,
	    g.grp[0].count);
	cr_expect_eq(g.res.naddress, 3, "addresses got %zu, want 3",
	    g.res.naddress);
}

struct bad {
	const char *desc;
	const char *v;
	size_t len;		/* 0: strlen(v) */
	enum addr_status st;
	size_t off;		/* res.err_off */
	size_t nmailbox;	/* read before the error */
};

static const struct bad bads[] = {
	/* lexical */
	{ "comment not closed", "a@example.com (oops", 0, ADDR_E_COMMENT,
	    14, 1 },
	{ "nested comment not closed", "((a) b a@example.com", 0,
	    ADDR_E_COMMENT, 0 },
	{ "comment ending in a backslash", "a@example.com (x\\)", 0,
	    ADDR_E_COMMENT, 14, 1 },
	{ "')' outside a comment", "a@example.com)", 0, ADDR_E_PAREN, 13,
	    1 },
	{ "quoted string not closed", "\"John <j@example.com>", 0,
	    ADDR_E_QUOTE, 0 },
	{ "quoted string ending in a backslash", "\"a\\\"@example.com", 0,
	    ADDR_E_QUOTE, 0 },
	{ "domain literal not closed", "a@[1.2.3.4", 0, ADDR_E_LITERAL, 2 },
	{ "NUL in an atom", "user@exa\0mple.com", 17, ADDR_E_NUL, 8, 1 },
	{ "NUL in a quoted string", "\"a\0b\"@example.com", 17, ADDR_E_NUL,
	    2 },
	{ "NUL in a comment", "(a\0b) a@example.com", 19, ADDR_E_NUL, 2 },
	{ "NUL in a domain literal", "a@[1\0]", 6, ADDR_E_NUL, 4 },
	{ "NUL alone", "\0", 1, ADDR_E_NUL, 0 },
	{ "control character outside quotes", "a\x01@example.com", 0,
	    ADDR_E_CHAR, 1 },
	{ "DEL outside quotes", "a@example.com\x7f", 0, ADDR_E_CHAR, 13, 1 },
	{ "']' outside a literal", "a]@example.com", 0, ADDR_E_CHAR, 1 },
	{ "backslash outside quotes", "a\\b@example.com", 0, ADDR_E_CHAR, 1 },
	/* addresses */
	{ "'>' where an address starts", "a@example.com, >", 0, ADDR_E_TOKEN,
	    15, 1 },
	{ "literal where an address starts", "[192.0.2.1]", 0, ADDR_E_TOKEN,
	    0 },
	{ "';' outside a group after an empty member", ", ;", 0,
	    ADDR_E_TOKEN, 2 },
	{ "display name without an address", "John Doe", 0, ADDR_E_PHRASE,
	    8 },
	{ "display name then the next address", "John Doe, a@example.com", 0,
	    ADDR_E_PHRASE, 8 },
	{ "display name then a literal", "John [x] <a@example.com>", 0,
	    ADDR_E_PHRASE, 5 },
	{ "no local part", "@example.com", 0, ADDR_E_LOCAL, 0 },
	{ "two dots in a local part (§3.4.1, §4.4)", "a..b@example.com", 0,
	    ADDR_E_LOCAL, 0 },
	{ "local part starting with a dot", ".a@example.com", 0, ADDR_E_LOCAL,
	    0 },
	{ "local part ending with a dot", "x, a.@example.com", 0,
	    ADDR_E_PHRASE, 1 },
	{ "local part ending with a dot, first", "a.@example.com", 0,
	    ADDR_E_LOCAL, 0 },
	{ "two words in a local part", "John Doe@example.com", 0,
	    ADDR_E_LOCAL, 0 },
	{ "quoted name without angle brackets",
	    "\"John Doe\" john@example.com", 0, ADDR_E_LOCAL, 0 },
	{ "bad local part in angle brackets", "J <a..b@example.com>", 0,
	    ADDR_E_LOCAL, 3 },
	{ "empty local part in angle brackets", "<@>", 0, ADDR_E_DOMAIN, 2 },
	{ "no '@'", "<john>", 0, ADDR_E_AT, 5 },
	{ "no domain", "user@", 0, ADDR_E_DOMAIN, 5 },
	{ "empty label", "user@example..com", 0, ADDR_E_DOMAIN, 13 },
	{ "dot after the domain", "user@example.com.", 0, ADDR_E_DOMAIN,
	    17 },
	{ "domain starting with a dot", "user@.example.com", 0,
	    ADDR_E_DOMAIN, 5 },
	{ "two '@'", "a@b@example.com", 0, ADDR_E_SEPARATOR, 3, 1 },
	{ "white space between atoms of a domain", "user@example com", 0,
	    ADDR_E_SEPARATOR, 13, 1 },
	{ "angle-addr not closed", "John <j@example.com", 0, ADDR_E_ANGLE,
	    19 },
	{ "angle-addr not closed before ','", "<j@example.com, b@c.example",
	    0, ADDR_E_ANGLE, 14 },
	{ "empty angle-addr", "<>", 0, ADDR_E_ANGLE_EMPTY, 1 },
	{ "route without ':'", "<@a.example u@b.example>", 0, ADDR_E_ROUTE,
	    12 },
	{ "route domains without ',' between (§4.4)",
	    "<@a.example@b.example:u@c.example>", 0, ADDR_E_ROUTE, 11 },
	{ "route of commas only", "<,u@c.example>", 0, ADDR_E_ROUTE, 2 },
	{ "route without a domain", "<@:u@c.example>", 0, ADDR_E_DOMAIN,
	    2 },
	{ "group without a name", ": a@example.com;", 0, ADDR_E_GROUP_NAME,
	    0 },
	{ "group inside a group", "A: B: c@example.com;;", 0,
	    ADDR_E_GROUP_NESTED, 4 },
	{ "addresses without ','", "a@example.com b@example.com", 0,
	    ADDR_E_SEPARATOR, 14, 1 },
	{ "group members without ','", "G: a@x.example b@y.example;", 0,
	    ADDR_E_SEPARATOR, 15, 1 },
	{ "group then an address without ','",
	    "G: a@x.example; b@y.example", 0, ADDR_E_SEPARATOR, 16, 1 },
	{ "';' after an address outside a group", "a@example.com;", 0,
	    ADDR_E_SEPARATOR, 13, 1 },
	{ "error after two mailboxes: they are counted",
	    "a@x.example, G: b@y.example, <c>;", 0, ADDR_E_AT, 31, 2 },
};

Test(parse, bad)
{
	size_t i;

	for (i = 0; i < NELEM(bads); i++) {
		const struct bad *c = &bads[i];
		size_t len = c->len ? c->len : strlen(c->v);
		struct got g;

		parse(c->v, len, &g);
		cr_expect_eq(g.st, c->st, "%s: status got %s (at %zu), want %s",
		    c->desc, st_name(g.st), g.res.err_off, st_name(c->st));
		cr_expect_eq(g.res.err_off, c->off, "%s: offset got %zu, "
		    "want %zu", c->desc, g.res.err_off, c->off);
		cr_expect_eq(g.res.nmailbox, c->nmailbox, "%s: mailboxes got "
		    "%zu, want %zu", c->desc, g.res.nmailbox, c->nmailbox);
		cr_expect_str_neq(addr_status_str(g.st), "unknown status",
		    "%s: no string for %s", c->desc, st_name(g.st));
	}
}

/* Every status has its own string. */
Test(parse, status_strings)
{
	enum addr_status a, b;

	for (a = ADDR_OK; a <= ADDR_E_ARGS; a++) {
		cr_expect(addr_status_str(a)[0] != '\0', "%s: empty",
		    st_name(a));
		for (b = ADDR_OK; b < a; b++)
			cr_expect_str_neq(addr_status_str(a),
			    addr_status_str(b), "%s and %s share \"%s\"",
			    st_name(a), st_name(b), addr_status_str(a));
	}
	cr_expect_str_eq(addr_status_str((enum addr_status)999),
	    "unknown status");
}

/* Every prefix of every good row (an exact-size copy, so a read past the
 * end is seen under ASan): a status, an offset inside, spans inside. */
Test(parse, prefixes)
{
	size_t i, k, j;

	for (i = 0; i < NELEM(goods); i++) {
		const struct good *c = &goods[i];
		size_t len = c->len ? c->len : strlen(c->v);

		for (k = 0; k <= len; k++) {
			char *p = malloc(k ? k : 1);
			struct got g;

			cr_assert_not_null(p);
			memcpy(p, c->v, k);
			parse(p, k, &g);
			cr_expect(g.res.err_off <= k, "%s, %zu octets: offset "
			    "%zu", c->desc, k, g.res.err_off);
			for (j = 0; j < g.res.nmailbox && j < ROOM; j++)
				cr_expect(g.mb[j].domain.off +
				    g.mb[j].domain.len <= k,
				    "%s, %zu octets: mailbox %zu ends past it",
				    c->desc, k, j);
			free(p);
		}
	}
}

/* Random octets from the grammar's alphabet never crash; an error is
 * inside the value and what parsed lies inside it. */
Test(parse, junk)
{
	static const char alphabet[] = "ab. <>@,;:\"\\()[]=?\t\r\n\x80\xc3\xff"
	    "\x01";
	struct rng r = { 5322 };
	size_t round, i;

	for (round = 0; round < 20000; round++) {
		char v[64];
		size_t n = rng_below(&r, sizeof(v));
		struct got g;

		for (i = 0; i < n; i++)
			v[i] = alphabet[rng_below(&r, sizeof(alphabet) - 1)];
		parse(v, n, &g);
		cr_expect(g.st < ADDR_E_ARGS && g.res.err_off <= n,
		    "\"%s\": status %s at %zu", esc(v, n), st_name(g.st),
		    g.res.err_off);
		for (i = 0; i < g.res.nmailbox && i < ROOM; i++)
			cr_expect(g.mb[i].domain.off + g.mb[i].domain.len <= n,
			    "\"%s\": mailbox %zu ends past the value",
			    esc(v, n), i);
	}
}

/* --------------------------------------------------------------- caps */

/* fill - n octets: "a@example.com (" xxx... ")", for the length cap. */
static char *
fill(size_t n)
{
	char *p = malloc(n);

	cr_assert_not_null(p);
	memset(p, 'x', n);
	memcpy(p, "a@example.com (", 15);
	p[n - 1] = ')';
	return p;
}

Test(caps, value_length)
{
	struct got g;
	char *p = fill(ADDR_VALUE_MAX);

	parse(p, ADDR_VALUE_MAX, &g);
	cr_expect_eq(g.st, ADDR_OK, "%d octets: got %s", ADDR_VALUE_MAX,
	    st_name(g.st));
	free(p);
	p = fill(ADDR_VALUE_MAX + 1);
	parse(p, ADDR_VALUE_MAX + 1, &g);
	cr_expect_eq(g.st, ADDR_E_TOO_LONG, "%d octets: got %s",
	    ADDR_VALUE_MAX + 1, st_name(g.st));
	cr_expect_eq(g.res.err_off, ADDR_VALUE_MAX, "offset got %zu",
	    g.res.err_off);
	cr_expect_eq(g.res.nmailbox, 0);
	free(p);
}

/* list - n mailboxes "a@b," (inside "G:" ... ";" when group). */
static char *
list(size_t n, bool group, size_t *len)
{
	char *p = malloc(4 * n + 8);
	size_t i, k = 0;

	cr_assert_not_null(p);
	if (group)
		k += (size_t)sprintf(p, "G:");
	for (i = 0; i < n; i++)
		k += (size_t)sprintf(p + k, "%sa@b", i ? "," : "");
	if (group)
		p[k++] = ';';
	*len = k;
	return p;
}

Test(caps, mailboxes)
{
	int group;

	for (group = 0; group < 2; group++) {
		size_t len;
		char *p = list(ADDR_MAILBOX_MAX, group, &len);
		struct got g;

		parse(p, len, &g);
		cr_expect_eq(g.st, ADDR_OK, "%d mailboxes%s: got %s",
		    ADDR_MAILBOX_MAX, group ? " in a group" : "",
		    st_name(g.st));
		cr_expect_eq(g.res.nmailbox, ADDR_MAILBOX_MAX);
		free(p);
		p = list(ADDR_MAILBOX_MAX + 1, group, &len);
		parse(p, len, &g);
		cr_expect_eq(g.st, ADDR_E_TOO_MANY, "%d mailboxes%s: got %s",
		    ADDR_MAILBOX_MAX + 1, group ? " in a group" : "",
		    st_name(g.st));
		cr_expect_eq(g.res.nmailbox, ADDR_MAILBOX_MAX,
		    "read before the cap: %zu", g.res.nmailbox);
		cr_expect_eq(g.res.err_off, (group ? 2 : 0) +
		    4 * (size_t)ADDR_MAILBOX_MAX, "offset got %zu",
		    g.res.err_off);
		free(p);
	}
}

/* nest - n comments, one inside the other, before "a@b". */
static char *
nest(size_t n, size_t *len)
{
	char *p = malloc(2 * n + 4);

	cr_assert_not_null(p);
	memset(p, '(', n);
	memset(p + n, ')', n);
	memcpy(p + 2 * n, "a@b", 3);
	*len = 2 * n + 3;
	return p;
}

Test(caps, nesting)
{
	struct got g;
	size_t len;
	char *p = nest(ADDR_NEST_MAX, &len);

	parse(p, len, &g);
	cr_expect_eq(g.st, ADDR_OK, "%d deep: got %s", ADDR_NEST_MAX,
	    st_name(g.st));
	free(p);
	p = nest(ADDR_NEST_MAX + 1, &len);
	parse(p, len, &g);
	cr_expect_eq(g.st, ADDR_E_TOO_DEEP, "%d deep: got %s",
	    ADDR_NEST_MAX + 1, st_name(g.st));
	cr_expect_eq(g.res.err_off, ADDR_NEST_MAX, "offset got %zu",
	    g.res.err_off);
	free(p);
}

/* --------------------------------------------------------------- room */

/* Less room than there are mailboxes and groups: the first are filled,
 * all are counted; no room at all gives the same counts. */
Test(room, less_than_needed)
{
	const char *v = "a@x.example, G: b@x.example, c@x.example;, "
	    "H: d@x.example;, e@x.example";
	struct addr_mailbox mb[2];
	struct addr_group grp[1];
	struct addr_result res, bare;
	struct dkim_buf b;

	cr_assert_eq(addr_parse(v, strlen(v), mb, 2, grp, 1, &res), ADDR_OK);
	cr_expect(res.nmailbox == 5 && res.ngroup == 2 && res.naddress == 4,
	    "counts %zu %zu %zu, want 5 2 4", res.nmailbox, res.ngroup,
	    res.naddress);
	dkim_buf_init(&b, 0);
	show_list(&b, v, mb, 2, grp, 1);
	expect_text(&b, "a@x.example, G: b@x.example;", 0, "first entries");
	dkim_buf_free(&b);
	cr_expect_eq(grp[0].count, 2, "group count got %zu", grp[0].count);
	cr_assert_eq(addr_parse(v, strlen(v), NULL, 0, NULL, 0, &bare),
	    ADDR_OK);
	cr_expect(bare.nmailbox == 5 && bare.ngroup == 2 && bare.naddress == 4,
	    "no room: counts %zu %zu %zu", bare.nmailbox, bare.ngroup,
	    bare.naddress);
}

Test(room, arguments)
{
	struct addr_mailbox mb[1];
	struct addr_result res;

	cr_expect_eq(addr_parse("a@b", 3, mb, 1, NULL, 0, NULL), ADDR_E_ARGS);
	cr_expect_eq(addr_parse(NULL, 3, mb, 1, NULL, 0, &res), ADDR_E_ARGS);
	cr_expect_eq(res.status, ADDR_E_ARGS);
	cr_expect_eq(addr_parse("a@b", 3, NULL, 1, NULL, 0, &res),
	    ADDR_E_ARGS);
	cr_expect_eq(addr_parse("a@b", 3, NULL, 0, NULL, 1, &res),
	    ADDR_E_ARGS);
	cr_expect_eq(addr_parse(NULL, 0, NULL, 0, NULL, 0, &res), ADDR_EMPTY);
}

/* ---------------------------------------------------------------- lex */

/* tokens - every token of (v, n) into b as text: kind letter, ':' and
 * the octets (A atom, Q quoted, L literal, S special), "+" before a glued
 * one, "B:" status "@" offset for a bad one, "E" at the end. */
static void
tokens(const char *v, size_t n, struct dkim_buf *b)
{
	struct addr_token t;
	size_t pos = 0, k = 0;

	do {
		addr_token_next(v, n, &pos, &t);
		if (b->len > 0)
			dkim_buf_adds(b, " ");
		if (t.glued && k++ > 0 && t.kind != ADDR_TOK_END)
			dkim_buf_adds(b, "+");
		if (t.kind == ADDR_TOK_END)
			dkim_buf_adds(b, "E");
		else if (t.kind == ADDR_TOK_BAD)
			dkim_buf_addf(b, "B:%s@%zu", st_name(t.err), t.off);
		else {
			dkim_buf_addf(b, "%c:", "EAQLSB"[t.kind]);
			dkim_buf_add(b, v + t.off, t.len);
		}
	} while (t.kind != ADDR_TOK_END && b->len < 2000);
}

/* words - the words of (v, n) into b, '|' between, quoted ones marked
 * "q:". */
static void
words(const char *v, size_t n, struct dkim_buf *b)
{
	struct addr_word w;
	size_t pos = 0;

	while (addr_word_next(v, n, &pos, &w)) {
		if (b->len > 0)
			dkim_buf_adds(b, "|");
		dkim_buf_adds(b, w.quoted ? "q:" : "");
		dkim_buf_add(b, v + w.off, w.len);
	}
}

/* unquote - addr_unquote of (v, n) into b; "(false)" when it fails. */
static void
unquote(const char *v, size_t n, struct dkim_buf *b)
{
	if (!addr_unquote(v, n, b)) {
		b->failed = false;
		dkim_buf_adds(b, "(false)");
	}
}

struct lexcase {
	const char *desc;
	const char *v;
	size_t len;		/* 0: strlen(v) */
	const char *want;
	size_t want_len;	/* 0: strlen(want) */
};

/* lex_table - show(v) of each row against its want. */
static void
lex_table(const struct lexcase *rows, size_t n,
    void (*show)(const char *, size_t, struct dkim_buf *))
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct lexcase *c = &rows[i];
		struct dkim_buf b;

		dkim_buf_init(&b, 0);
		show(c->v, c->len ? c->len : strlen(c->v), &b);
		expect_text(&b, c->want, c->want_len, c->desc);
		dkim_buf_free(&b);
	}
}

static const struct lexcase lexes[] = {
	{ "atoms and a glued dot", "John Q. Public", 0,
	    "A:John A:Q +S:. A:Public E" },
	{ "every special", "<>@,;:.", 0,
	    "S:< +S:> +S:@ +S:, +S:; +S:: +S:. E" },
	{ "CFWS skipped, glue broken by a comment", " (c) a(b)@ \"q\" [x]",
	    0, "A:a S:@ Q:\"q\" L:[x] E" },
	{ "folding", "a\r\n b\r\n", 0, "A:a A:b E" },
	{ "quoted string with escapes", "\"\\\"\\\\\"x", 0,
	    "Q:\"\\\"\\\\\" +A:x E" },
	{ "literal with FWS", "[ 1.2 ]", 0, "L:[ 1.2 ] E" },
	{ "8-bit atom", "\x80\xff", 0, "A:\x80\xff E" },
	{ "stray octets move on", "a\x01" "b]c", 0,
	    "A:a +B:E_CHAR@1 +A:b +B:E_CHAR@3 +A:c E" },
	{ "')' alone", ")a", 0, "B:E_PAREN@0 +A:a E" },
	{ "NUL in a quoted string: past the string", "\"a\0b\" c", 7,
	    "B:E_NUL@2 A:c E" },
	{ "NUL in a comment: to the end", "a (x\0) b", 8, "A:a B:E_NUL@4 E" },
	{ "NUL alone", "a\0b", 3, "A:a +B:E_NUL@1 +A:b E" },
	{ "comment not closed: to the end", "a (x (y) b", 0,
	    "A:a B:E_COMMENT@2 E" },
	{ "quoted string not closed", "a \"bc", 0, "A:a B:E_QUOTE@2 E" },
	{ "literal not closed", "a [bc", 0, "A:a B:E_LITERAL@2 E" },
	{ "empty", "", 0, "E" },
	{ "only CFWS", " (x) ", 0, "E" },
};

Test(lex, tokens)
{
	lex_table(lexes, NELEM(lexes), tokens);
}

static const struct lexcase wordcases[] = {
	{ "a phrase", "John Q. Public", 0, "John|Q.|Public" },
	{ "dots glued to atoms on both sides", "a.b .c. d", 0, "a.b|.c.|d" },
	{ "dots apart", "a . b", 0, "a|.|b" },
	{ "a comment breaks the run", "a(x).b", 0, "a|.b" },
	{ "quoted words stand alone", "\"a b\".c\"d\"", 0,
	    "q:\"a b\"|.c|q:\"d\"" },
	{ "an encoded word with a dot inside", "=?utf-8?q?a.b?= x", 0,
	    "=?utf-8?q?a.b?=|x" },
	{ "stops at a special", "a b <c@d>", 0, "a|b" },
	{ "stops at a bad token", "a \x01 b", 0, "a" },
	{ "empty", "", 0, "" },
};

Test(lex, words)
{
	lex_table(wordcases, NELEM(wordcases), words);
}

Test(lex, words_in_a_span)
{
	const char *v = "John Doe <j@example.com>";
	struct addr_mailbox mb;
	struct addr_result res;
	struct addr_word w;
	size_t pos, n = 0;

	cr_assert_eq(addr_parse(v, strlen(v), &mb, 1, NULL, 0, &res), ADDR_OK);
	pos = mb.name.off;
	while (addr_word_next(v, mb.name.off + mb.name.len, &pos, &w))
		n++;
	cr_expect_eq(n, 2, "words in the name: %zu", n);
	cr_expect_eq(pos, mb.name.off + mb.name.len, "pos %zu", pos);
}

struct compactcase {
	const char *desc;
	const char *v;
	size_t max;		/* ceiling, 0: none */
	const char *want;	/* NULL: false */
};

static const struct compactcase compacts[] = {
	{ "obs-local-part", "john . doe", 0, "john.doe" },
	{ "obs-domain with a comment", "example (c). com", 0, "example.com" },
	{ "quoted string kept", "\"a b\" . c", 0, "\"a b\".c" },
	{ "literal kept", "[ 1.2.3.4 ]", 0, "[ 1.2.3.4 ]" },
	{ "folded", "a\r\n .\r\n b", 0, "a.b" },
	{ "empty", "", 0, "" },
	{ "does not lex", "a (x", 0, NULL },
	{ "over the ceiling", "abcd", 3, NULL },
	{ "at the ceiling", "ab . c", 4, "ab.c" },
};

Test(lex, compact)
{
	size_t i;

	for (i = 0; i < NELEM(compacts); i++) {
		const struct compactcase *c = &compacts[i];
		struct addr_span s = { 0, strlen(c->v) };
		struct dkim_buf b;
		bool ok;

		dkim_buf_init(&b, c->max);
		ok = addr_compact(c->v, s, &b);
		cr_expect_eq(ok, c->want != NULL, "%s: got %s, want %s",
		    c->desc, ok ? "true" : "false", c->want ? "true" : "false");
		if (ok && c->want)
			expect_text(&b, c->want, 0, c->desc);
		dkim_buf_free(&b);
	}
}

/* A span in the middle of a value: only its own octets. */
Test(lex, compact_span)
{
	const char *v = "Pete <pete . r(x)@ silly (y) . test>";
	struct addr_mailbox mb;
	struct addr_result res;
	struct dkim_buf b;

	cr_assert_eq(addr_parse(v, strlen(v), &mb, 1, NULL, 0, &res), ADDR_OK);
	dkim_buf_init(&b, 0);
	cr_assert(addr_compact(v, mb.local, &b));
	cr_expect_str_eq(b.p, "pete.r", "local got \"%s\"", b.p);
	dkim_buf_reset(&b);
	cr_assert(addr_compact(v, mb.domain, &b));
	cr_expect_str_eq(b.p, "silly.test", "domain got \"%s\"", b.p);
	dkim_buf_free(&b);
}

static const struct lexcase unquotes[] = {
	{ "escaped quote", "\"a\\\"b\"", 0, "a\"b" },
	{ "escaped backslash", "\"a\\\\\"", 0, "a\\" },
	{ "folding removed, WSP kept", "\"a\r\n b\"", 0, "a b" },
	{ "empty", "\"\"", 0, "" },
	{ "escaped NUL", "\"\\\0\"", 4, "\0", 1 },
	{ "no quotes around: the octets as they are", "a\\b", 0, "ab" },
};

Test(lex, unquote)
{
	lex_table(unquotes, NELEM(unquotes), unquote);
}

Test(lex, unquote_ceiling)
{
	struct dkim_buf b;

	dkim_buf_init(&b, 2);
	cr_expect_not(addr_unquote("\"abc\"", 5, &b));
	dkim_buf_free(&b);
}
