/*
 * unit.h - small helpers shared by the libdkim unit tests: printable
 * renderings of untrusted bytes for got/want messages, a seeded PRNG, and
 * a sink that collects canonical output. Header-only (static inline) so
 * each test executable stays a single .c file.
 */
#ifndef ARCRELAY_TESTS_UNIT_H
#define ARCRELAY_TESTS_UNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dkim.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * esc - render n bytes as a C-ish string literal body: \r \n \t \\ \" and
 * \xNN for anything unprintable. Uses one of eight rotating static
 * buffers, so up to eight results can appear in one failure message.
 * Long inputs are cut with "...".
 */
static inline const char *
esc(const void *p, size_t n)
{
	static char bufs[8][1024];
	static unsigned next;
	char *o = bufs[next++ % 8];
	const unsigned char *s = p;
	size_t i, j = 0;

	if (p == NULL)
		return "(null)";
	for (i = 0; i < n && j < sizeof(bufs[0]) - 8; i++) {
		unsigned char c = s[i];

		if (c == '\r')
			j += (size_t)sprintf(o + j, "\\r");
		else if (c == '\n')
			j += (size_t)sprintf(o + j, "\\n");
		else if (c == '\t')
			j += (size_t)sprintf(o + j, "\\t");
		else if (c == '\\' || c == '"')
			j += (size_t)sprintf(o + j, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			j += (size_t)sprintf(o + j, "\\x%02x", c);
		else
			o[j++] = (char)c;
	}
	if (i < n)
		j += (size_t)sprintf(o + j, "...");
	o[j] = '\0';
	return o;
}

/* escs - esc() of a NUL-terminated string. */
static inline const char *
escs(const char *s)
{
	return s == NULL ? "(null)" : esc(s, strlen(s));
}

/* same - do (p, n) and the NUL-terminated want hold the same bytes? */
static inline bool
same(const void *p, size_t n, const char *want)
{
	size_t wn = strlen(want);

	return n == wn && (n == 0 || memcmp(p, want, n) == 0);
}

/* A sink that appends canonical bytes to a malloc'd buffer. */
struct collect {
	char *p;
	size_t len, cap;
	bool failed;
};

static inline void
collect_sink(void *arg, const void *p, size_t n)
{
	struct collect *c = arg;

	if (n == 0 || c->failed)
		return;
	if (c->len + n + 1 > c->cap) {
		size_t ncap = (c->len + n + 1) * 2;
		char *np = realloc(c->p, ncap);

		if (np == NULL) {
			c->failed = true;
			return;
		}
		c->p = np;
		c->cap = ncap;
	}
	memcpy(c->p + c->len, p, n);
	c->len += n;
	c->p[c->len] = '\0';
}

static inline void
collect_free(struct collect *c)
{
	free(c->p);
	memset(c, 0, sizeof(*c));
}

/* A seeded xorshift64* generator: deterministic runs, reproducible seeds. */
struct rng {
	uint64_t s;
};

static inline uint64_t
rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1DULL;
}

/* rng_below - a value in [0, n); n > 0. */
static inline size_t
rng_below(struct rng *r, size_t n)
{
	return (size_t)(rng_next(r) % n);
}

/* b64 - base64 of (p, n) with OpenSSL's encoder, not the library's, so
 * tests do not check the library against itself. Caller frees. */
static inline char *
b64(const void *p, size_t n)
{
	char *o = malloc(4 * ((n + 2) / 3) + 1);

	if (o != NULL)
		EVP_EncodeBlock((unsigned char *)o, p, (int)n);
	return o;
}

/* sha256_b64 - base64 of SHA-256(p, n); caller frees. */
static inline char *
sha256_b64(const void *p, size_t n)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL))
		return NULL;
	return b64(md, mdlen);
}

#endif
