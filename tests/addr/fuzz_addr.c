/*
 * fuzz_addr.c - libFuzzer target for policy/addr.c.
 *
 * The first byte of an input chooses how much room addr_parse gets (bits
 * 0-1: 0, 1, 3 or ROOM mailboxes; bit 2: no groups or ROOM); the rest is
 * a field value. Besides "no crash, no leak, no overread" (ASan), it holds
 * the module to the promises of addr.h and traps when one breaks:
 *   - the status is one of the enum's and has a string; an error's offset
 *     is within the value; the counts stay under the caps;
 *   - the room given changes nothing but what is filled in: no room at
 *     all gives the same status, offset and counts, and the entries
 *     filled are the same;
 *   - the spans lie inside the value, in order, each mailbox's parts in
 *     order (name, route, local part, domain) and after the one before;
 *     a mailbox's group and the groups' first/count agree; each span
 *     lexes cleanly (addr_compact) and a literal flag means brackets;
 *   - when everything was read and fits the room, the list written again
 *     from its spans (addr_show.h) parses to the same mailboxes and
 *     groups, with spans of the same octets;
 *   - the lexer moves forward on every token, a value that parses holds
 *     no bad token, and an error is found no later than the first bad
 *     token; addr_word_next ends; addr_unquote takes every quoted string.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "addr_show.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define ROOM	64	/* entries of the larger arrays */

/* A parse and the room it had. */
struct run {
	struct addr_mailbox mb[ROOM];
	struct addr_group grp[ROOM];
	size_t mb_max, grp_max;
	struct addr_result res;
};

/* span_end - one past the span's last octet. */
static size_t
span_end(struct addr_span s)
{
	return s.off + s.len;
}

/* check_span - s lies in v[0, len) after *at, lexes cleanly, and moves
 * *at past itself; an empty span is not there and checks nothing. */
static void
check_span(const char *v, size_t len, struct addr_span s, size_t *at)
{
	struct dkim_buf b;

	if (s.len == 0)
		return;
	CHECK(s.off >= *at && s.off <= len && s.len <= len - s.off);
	dkim_buf_init(&b, 0);
	CHECK(addr_compact(v, s, &b));
	CHECK(b.len > 0 && b.len <= s.len);
	dkim_buf_free(&b);
	*at = span_end(s);
}

/* check_entries - the filled mailboxes and groups of r against v. */
static void
check_entries(const char *v, size_t len, const struct run *r)
{
	size_t nmb = r->res.nmailbox < r->mb_max ? r->res.nmailbox : r->mb_max;
	size_t ngrp = r->res.ngroup < r->grp_max ? r->res.ngroup : r->grp_max;
	size_t i, at = 0, g;

	for (i = 0; i < nmb; i++) {
		const struct addr_mailbox *m = &r->mb[i];

		check_span(v, len, m->name, &at);
		check_span(v, len, m->route, &at);
		CHECK(m->local.len > 0 && m->domain.len > 0);
		CHECK(m->route.len == 0 || m->angle);
		check_span(v, len, m->local, &at);
		check_span(v, len, m->domain, &at);
		CHECK(m->literal == (v[m->domain.off] == '[' &&
		    v[span_end(m->domain) - 1] == ']'));
		CHECK(m->group <= r->res.ngroup);
		if (m->group > 0 && m->group <= ngrp) {
			g = m->group - 1;
			CHECK(i >= r->grp[g].first &&
			    i < r->grp[g].first + r->grp[g].count);
			CHECK(span_end(r->grp[g].name) <= m->local.off);
		}
	}
	for (g = 0; g < ngrp; g++) {
		CHECK(r->grp[g].name.len > 0 &&
		    span_end(r->grp[g].name) <= len);
		CHECK(r->grp[g].first + r->grp[g].count <= r->res.nmailbox);
		for (i = r->grp[g].first; i < r->grp[g].first +
		    r->grp[g].count && i < nmb; i++)
			CHECK(r->mb[i].group == g + 1);
	}
}

/* parse - v with the room of r, and the promises of one parse. */
static void
parse(const char *v, size_t len, struct run *r)
{
	enum addr_status st;

	st = addr_parse(v, len, r->mb, r->mb_max, r->grp, r->grp_max,
	    &r->res);
	CHECK(st == r->res.status && st < ADDR_E_ARGS);
	CHECK(addr_status_str(st)[0] != '\0');
	CHECK(r->res.err_off <= len);
	CHECK(r->res.nmailbox <= ADDR_MAILBOX_MAX);
	CHECK(r->res.ngroup <= r->res.naddress + 1);
	CHECK((st == ADDR_EMPTY) == (st <= ADDR_E_GROUP_OPEN &&
	    r->res.naddress == 0));
	if (len > ADDR_VALUE_MAX)
		CHECK(st == ADDR_E_TOO_LONG);
	check_entries(v, len, r);
}

/* same_span - span a of va and span b of vb hold the same octets. */
static bool
same_span(const char *va, struct addr_span a, const char *vb,
    struct addr_span b)
{
	return a.len == b.len && (a.len == 0 ||
	    memcmp(va + a.off, vb + b.off, a.len) == 0);
}

/* check_again - r's list written again parses to the same list. */
static void
check_again(const char *v, const struct run *r)
{
	static struct run again;
	struct dkim_buf b;
	size_t i, g;

	dkim_buf_init(&b, 0);
	show_list(&b, v, r->mb, r->res.nmailbox, r->grp, r->res.ngroup);
	CHECK(!b.failed);
	again.mb_max = again.grp_max = ROOM;
	CHECK(addr_parse(b.p, b.len, again.mb, ROOM, again.grp, ROOM,
	    &again.res) == (r->res.naddress ? ADDR_OK : ADDR_EMPTY));
	CHECK(again.res.nmailbox == r->res.nmailbox &&
	    again.res.ngroup == r->res.ngroup &&
	    again.res.naddress == r->res.naddress);
	for (i = 0; i < r->res.nmailbox; i++) {
		const struct addr_mailbox *m = &r->mb[i], *n = &again.mb[i];

		CHECK(m->angle == n->angle && m->literal == n->literal &&
		    m->group == n->group);
		CHECK(same_span(v, m->name, b.p, n->name));
		CHECK(same_span(v, m->route, b.p, n->route));
		CHECK(same_span(v, m->local, b.p, n->local));
		CHECK(same_span(v, m->domain, b.p, n->domain));
	}
	for (g = 0; g < r->res.ngroup; g++) {
		CHECK(again.grp[g].first == r->grp[g].first &&
		    again.grp[g].count == r->grp[g].count);
		CHECK(same_span(v, r->grp[g].name, b.p, again.grp[g].name));
	}
	dkim_buf_free(&b);
}

/* check_lexer - tokens and words over the whole value; the offset of
 * the first bad token (len when there is none). */
static size_t
check_lexer(const char *v, size_t len)
{
	struct addr_token t;
	struct addr_word w;
	struct dkim_buf q;
	size_t pos = 0, before, bad = len, words = 0;

	dkim_buf_init(&q, 0);
	for (;;) {
		before = pos;
		addr_token_next(v, len, &pos, &t);
		CHECK(pos <= len && t.off <= len && t.len <= len - t.off);
		if (t.kind == ADDR_TOK_END)
			break;
		CHECK(pos > before && t.off >= before);
		if (t.kind == ADDR_TOK_BAD && bad == len)
			bad = t.off;
		if (t.kind == ADDR_TOK_QUOTED) {
			dkim_buf_reset(&q);
			CHECK(addr_unquote(v + t.off, t.len, &q));
			CHECK(q.len + 2 <= t.len);
		}
	}
	dkim_buf_free(&q);
	pos = 0;
	while (addr_word_next(v, len, &pos, &w)) {
		CHECK(w.off + w.len <= pos && pos <= len);
		CHECK(++words <= len);
	}
	return bad;
}

/* same_mailbox - the entries of a and b are equal, field by field. */
static bool
same_mailbox(const struct addr_mailbox *a, const struct addr_mailbox *b)
{
	return a->name.off == b->name.off && a->name.len == b->name.len &&
	    a->route.off == b->route.off && a->route.len == b->route.len &&
	    a->local.off == b->local.off && a->local.len == b->local.len &&
	    a->domain.off == b->domain.off && a->domain.len == b->domain.len &&
	    a->angle == b->angle && a->literal == b->literal &&
	    a->group == b->group;
}

/* check_room - r's parse against one with all the room and one with
 * none: same status and counts, and the same entries where r had room. */
static void
check_room(const char *v, size_t len, const struct run *r)
{
	static struct run big;
	struct addr_result bare;
	size_t i;

	CHECK(addr_parse(v, len, NULL, 0, NULL, 0, &bare) == r->res.status);
	CHECK(bare.err_off == r->res.err_off &&
	    bare.nmailbox == r->res.nmailbox &&
	    bare.ngroup == r->res.ngroup &&
	    bare.naddress == r->res.naddress);
	big.mb_max = big.grp_max = ROOM;
	parse(v, len, &big);
	for (i = 0; i < r->mb_max && i < r->res.nmailbox; i++)
		CHECK(same_mailbox(&big.mb[i], &r->mb[i]));
	for (i = 0; i < r->grp_max && i < r->res.ngroup; i++)
		CHECK(memcmp(&big.grp[i], &r->grp[i], sizeof(r->grp[i])) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t mb_rooms[4] = { 0, 1, 3, ROOM };
	static struct run r;
	unsigned sel;
	size_t n, bad;
	char *p;

	if ((p = fuzz_input(data, size, &sel, &n)) == NULL)
		return 0;
	r.mb_max = mb_rooms[sel & 3];
	r.grp_max = sel & 4 ? ROOM : 0;
	parse(p, n, &r);
	check_room(p, n, &r);
	bad = check_lexer(p, n);
	if (r.res.status <= ADDR_E_GROUP_OPEN)
		CHECK(bad == n);
	else if (r.res.status != ADDR_E_TOO_LONG)
		CHECK(r.res.err_off <= bad);
	if (r.res.status <= ADDR_E_GROUP_OPEN && r.mb_max == ROOM &&
	    r.grp_max == ROOM && r.res.nmailbox <= ROOM &&
	    r.res.ngroup <= ROOM)
		check_again(p, &r);
	free(p);
	return 0;
}
