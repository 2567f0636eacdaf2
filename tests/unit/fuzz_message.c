/*
 * fuzz_message.c - libFuzzer target for the message model and the
 * canonicalizers (dkim/message.c, dkim/canon.c).
 *
 * The first byte of an input picks one of four dkim_limits (the defaults
 * or smaller ones), a body length limit and the seed of the chunking;
 * the rest is the message, parsed as given and, when it holds no CRLF,
 * also as dkim_crlf_from_lf converts it. Besides "no crash, no leak, no
 * overread" (ASan), it traps when a promise of dkim.h breaks:
 *   - dkim_msg_parse fails with a reason, and under smaller limits only
 *     where the defaults fail or a limit is hit; where both succeed the
 *     fields are the same. A parsed message is a partition of the input:
 *     fields in order, each ending in CRLF, names of printable octets
 *     before the colon, no NUL and no CR or LF outside folds, then the
 *     body; no line, field count or header size beyond the limits;
 *   - dkim_field_is finds every field under its name in any case and not
 *     under a longer or shorter one;
 *   - simple header canonicalization is the raw field; relaxed has a
 *     lowercase name, no CR, LF, HTAB, WSP run, or WSP at either end of
 *     the value, is the same from the simple output and canonicalizes to
 *     itself;
 *   - body canonicalization (of the body, or of the whole input when it
 *     does not parse) fed in chunks split at points drawn from the input
 *     equals one feed, under a limit too (a prefix, the length still the
 *     whole); relaxed output has no HTAB, no WSP run and no WSP before a
 *     CRLF; both end in one CRLF (relaxed: unless empty); dkim_body_hash
 *     is the SHA-256 of that output, and dkim_body_prefix_match finds the
 *     whole body for it.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/message/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dkim.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define NLIMITS 4

static const struct dkim_limits limits[NLIMITS] = {
	{ DKIM_DEFAULT_MAX_LINE, DKIM_DEFAULT_MAX_HEADERS,
	    DKIM_DEFAULT_MAX_HEADER_BYTES },
	{ 998, 100, 65536 },
	{ 78, 8, 512 },
	{ 1, 1, 3 },
};

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_limit(enum dkim_status st)
{
	return st == DKIM_E_LINE_TOO_LONG || st == DKIM_E_TOO_MANY_HEADERS ||
	    st == DKIM_E_HEADER_TOO_BIG;
}

/* same_bytes - equal byte strings; a dkim_buf holds NULL while empty. */
static bool
same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* collect - a dkim_sink_fn appending to a dkim_buf. */
static void
collect(void *arg, const void *p, size_t n)
{
	dkim_buf_add(arg, p, n);
}

/* next_rand - xorshift64, the chunk sizes. */
static uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* check_structure - a parsed message partitions (p, len) as promised. */
static void
check_structure(const char *p, size_t len, const struct dkim_msg *m,
    const struct dkim_limits *lim)
{
	size_t i, k, pos = 0;

	CHECK(m->data == p && m->len == len);
	CHECK(m->nfields <= lim->max_headers);
	for (i = 0; i < m->nfields; i++) {
		const struct dkim_field *f = &m->fields[i];
		size_t line = 0;

		CHECK(f->offset == pos && f->raw == p + pos);
		CHECK(f->name == f->raw && f->name_len > 0);
		CHECK(f->value_off > f->name_len && f->value_off <= f->raw_len);
		CHECK(f->raw[f->value_off - 1] == ':');
		for (k = 0; k < f->name_len; k++)
			CHECK((unsigned char)f->raw[k] > 32 &&
			    (unsigned char)f->raw[k] < 127 && f->raw[k] != ':');
		for (; k < f->value_off - 1; k++)
			CHECK(is_wsp(f->raw[k]));
		for (k = 0; k < f->raw_len; k++) {
			CHECK(f->raw[k] != '\0' && f->raw[k] != '\n');
			if (f->raw[k] == '\r') {
				CHECK(k + 2 < f->raw_len &&
				    f->raw[k + 1] == '\n' &&
				    is_wsp(f->raw[k + 2]));
				CHECK(line <= lim->max_line);
				line = 0;
				k++;
				continue;
			}
			line++;
		}
		CHECK(line <= lim->max_line);
		pos += f->raw_len;
		/* Every field ends in CRLF but a last line at the end. */
		if (pos < len) {
			CHECK(pos + 2 <= len && p[pos] == '\r' &&
			    p[pos + 1] == '\n');
			pos += 2;
		}
	}
	CHECK(m->body_off <= len && m->body == p + m->body_off &&
	    m->body_len == len - m->body_off);
	CHECK(m->body_off <= lim->max_header_bytes);
	if (m->body_off == pos + 2)
		CHECK(p[pos] == '\r' && p[pos + 1] == '\n');
	else
		CHECK(m->body_off == pos && pos == len);
}

/* check_name - dkim_field_is on f under its own name and near misses. */
static void
check_name(const struct dkim_field *f)
{
	char name[1024];
	size_t k, n = f->name_len;

	if (n + 2 > sizeof(name))
		return;
	memcpy(name, f->name, n);
	name[n] = '\0';
	CHECK(dkim_field_is(f, name));
	for (k = 0; k < n; k++)
		if (name[k] >= 'a' && name[k] <= 'z')
			name[k] = (char)(name[k] - 'a' + 'A');
		else if (name[k] >= 'A' && name[k] <= 'Z')
			name[k] = (char)(name[k] - 'A' + 'a');
	CHECK(dkim_field_is(f, name));
	name[n] = 'x';
	name[n + 1] = '\0';
	CHECK(!dkim_field_is(f, name));
	name[n - 1] = '\0';
	CHECK(n == 1 ? !dkim_field_is(f, "") : !dkim_field_is(f, name));
}

/* check_relaxed - the shape of one relaxed header field (CRLF gone). */
static void
check_relaxed(const struct dkim_field *f, const char *o, size_t n)
{
	size_t k;

	CHECK(n > f->name_len && o[f->name_len] == ':');
	for (k = 0; k < f->name_len; k++) {
		char c = f->name[k];

		CHECK(o[k] == (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
	}
	for (k = f->name_len + 1; k < n; k++) {
		CHECK(o[k] != '\r' && o[k] != '\n' && o[k] != '\t');
		if (o[k] == ' ')
			CHECK(k > f->name_len + 1 && k + 1 < n &&
			    o[k + 1] != ' ');
	}
}

/* check_header - both header canonicalizations of one field. */
static void
check_header(const struct dkim_field *f)
{
	struct dkim_buf s, r, r2, again;

	dkim_buf_init(&s, 0);
	dkim_buf_init(&r, 0);
	dkim_buf_init(&r2, 0);
	dkim_buf_init(&again, 0);
	CHECK(dkim_canon_header(DKIM_CANON_SIMPLE, f->raw, f->raw_len, true,
	    &s));
	CHECK(s.len == f->raw_len + 2 && memcmp(s.p, f->raw, f->raw_len) == 0 &&
	    memcmp(s.p + f->raw_len, "\r\n", 2) == 0);
	CHECK(dkim_canon_header(DKIM_CANON_RELAXED, f->raw, f->raw_len, true,
	    &r));
	CHECK(r.len >= 2 && memcmp(r.p + r.len - 2, "\r\n", 2) == 0);
	check_relaxed(f, r.p, r.len - 2);
	CHECK(dkim_canon_header(DKIM_CANON_RELAXED, s.p, s.len - 2, false,
	    &r2));
	CHECK(r2.len == r.len - 2 && same_bytes(r2.p, r2.len, r.p, r2.len));
	CHECK(dkim_canon_header(DKIM_CANON_RELAXED, r2.p, r2.len, false,
	    &again));
	CHECK(same_bytes(again.p, again.len, r2.p, r2.len));
	dkim_buf_free(&s);
	dkim_buf_free(&r);
	dkim_buf_free(&r2);
	dkim_buf_free(&again);
}

/* canon_body - canonicalize (p, n) into out, in chunks when seed != 0. */
static uint64_t
canon_body(enum dkim_canon c, int64_t limit, const char *p, size_t n,
    uint64_t seed, struct dkim_buf *out)
{
	struct dkim_bodycanon *bc = dkim_bodycanon_new(c, limit, collect, out);
	size_t pos = 0;
	uint64_t total;

	CHECK(bc != NULL);
	if (seed == 0) {
		dkim_bodycanon_feed(bc, p, n);
	} else {
		while (pos < n) {
			/* Mostly small chunks, empty ones too, a few long. */
			uint64_t r = next_rand(&seed);
			size_t k = (size_t)(r % 8 == 0 ? r % 700 : r % 5);

			if (k > n - pos)
				k = n - pos;
			dkim_bodycanon_feed(bc, p + pos, k);
			pos += k;
		}
	}
	dkim_bodycanon_finish(bc);
	dkim_bodycanon_feed(bc, "x", 1);	/* ignored after finish */
	dkim_bodycanon_finish(bc);
	total = dkim_bodycanon_length(bc);
	dkim_bodycanon_free(bc);
	CHECK(!out->failed);
	return total;
}

/* check_body_shape - the canonical body's own rules. */
static void
check_body_shape(enum dkim_canon c, const char *o, size_t n)
{
	size_t k;

	if (c == DKIM_CANON_RELAXED) {
		if (n == 0)
			return;
		for (k = 0; k < n; k++) {
			CHECK(o[k] != '\t');
			/* A bare CR is line content, so " \r" may stay. */
			if (o[k] == ' ')
				CHECK(k + 2 < n && o[k + 1] != ' ' &&
				    (o[k + 1] != '\r' || o[k + 2] != '\n'));
		}
	}
	CHECK(n >= 2 && memcmp(o + n - 2, "\r\n", 2) == 0);
	CHECK(n == 2 || n < 4 || memcmp(o + n - 4, "\r\n\r\n", 4) != 0);
}

/* check_body - one canonicalization of a body, streamed and one-shot. */
static void
check_body(enum dkim_canon c, const char *p, size_t n, uint64_t seed,
    int64_t limit)
{
	struct dkim_buf one, chunked, lim;
	unsigned char dg[EVP_MAX_MD_SIZE], want[EVP_MAX_MD_SIZE];
	unsigned int dglen, wantlen;
	uint64_t total, t2, t3, canon_len;
	size_t keep, prefix;
	bool found;

	dkim_buf_init(&one, 0);
	dkim_buf_init(&chunked, 0);
	dkim_buf_init(&lim, 0);
	total = canon_body(c, -1, p, n, 0, &one);
	CHECK(total == one.len);
	check_body_shape(c, one.p, one.len);
	t2 = canon_body(c, -1, p, n, seed | 1, &chunked);
	CHECK(t2 == total && same_bytes(chunked.p, chunked.len, one.p, one.len));
	t3 = canon_body(c, limit, p, n, seed * 31 + 7, &lim);
	keep = (uint64_t)limit < total ? (size_t)limit : (size_t)total;
	CHECK(t3 == total && same_bytes(lim.p, lim.len, one.p, keep));

	CHECK(EVP_Digest(one.p ? one.p : "", one.len, want, &wantlen, EVP_sha256(), NULL));
	CHECK(dkim_body_hash(c, EVP_sha256(), p, n, -1, dg, &dglen,
	    &canon_len) == DKIM_OK);
	CHECK(dglen == wantlen && memcmp(dg, want, dglen) == 0 &&
	    canon_len == total);
	CHECK(dkim_body_prefix_match(c, EVP_sha256(), p, n, -1, want, wantlen,
	    &found, &prefix) == DKIM_OK);
	CHECK(found && prefix == n);
	dkim_buf_free(&one);
	dkim_buf_free(&chunked);
	dkim_buf_free(&lim);
}

/* parse - dkim_msg_parse with lim, its reason checked. */
static enum dkim_status
parse(const char *p, size_t n, const struct dkim_limits *lim,
    struct dkim_msg **m)
{
	char why[DKIM_WHY_MAX] = "";
	enum dkim_status st = dkim_msg_parse(p, n, lim, m, why, sizeof(why));

	CHECK(strnlen(why, sizeof(why)) < sizeof(why));
	if (st == DKIM_OK)
		CHECK(*m != NULL);
	else
		CHECK(*m == NULL && why[0] != '\0');
	return st;
}

/* one - every check on one message text. */
static void
one(const char *p, size_t n, const struct dkim_limits *lim, uint64_t seed,
    int64_t limit)
{
	struct dkim_msg *m = NULL, *d = NULL;
	enum dkim_status st, dst;
	size_t i;

	st = parse(p, n, lim, &m);
	dst = parse(p, n, NULL, &d);
	if (st == DKIM_OK) {
		CHECK(dst == DKIM_OK && d->nfields == m->nfields &&
		    d->body_off == m->body_off);
		for (i = 0; i < m->nfields; i++)
			CHECK(memcmp(&m->fields[i], &d->fields[i],
			    sizeof(m->fields[i])) == 0);
		check_structure(p, n, m, lim);
	} else if (dst == DKIM_OK) {
		CHECK(is_limit(st));
	}
	if (dst == DKIM_OK) {
		check_structure(p, n, d, &limits[0]);
		for (i = 0; i < d->nfields; i++) {
			check_name(&d->fields[i]);
			check_header(&d->fields[i]);
		}
		check_body(DKIM_CANON_SIMPLE, d->body, d->body_len, seed, limit);
		check_body(DKIM_CANON_RELAXED, d->body, d->body_len, seed,
		    limit);
	} else {
		check_body(DKIM_CANON_SIMPLE, p, n, seed, limit);
		check_body(DKIM_CANON_RELAXED, p, n, seed, limit);
	}
	dkim_msg_free(m);
	dkim_msg_free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned sel;
	size_t n, i, crlf_len;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	int64_t limit;
	bool converted;
	char *p, *crlf;

	if ((p = fuzz_input(data, size, &sel, &n)) == NULL)
		return 0;
	for (i = 0; i < n; i++)
		seed = (seed ^ (unsigned char)p[i]) * 0x100000001b3ULL;
	/* Bits 2-7: a body length limit from 0 to 63 times 8 octets. */
	limit = (int64_t)(sel >> 2) * 8;
	one(p, n, &limits[sel % NLIMITS], seed, limit);
	crlf = dkim_crlf_from_lf(p, n, &crlf_len, &converted);
	CHECK(converted == (crlf != NULL));
	if (crlf != NULL) {
		CHECK(crlf_len > n && memchr(p, '\n', n) != NULL);
		one(crlf, crlf_len, &limits[sel % NLIMITS], seed, limit);
		free(crlf);
	}
	free(p);
	return 0;
}
