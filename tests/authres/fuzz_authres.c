/*
 * fuzz_authres.c - libFuzzer target for policy/authres.c.
 *
 * Each input is one header value, read both as Authentication-Results and
 * as ARC-Authentication-Results. Besides "no crash, no leak, no overread"
 * (ASan), it holds the module to its promises and traps when one breaks:
 *   - whatever format writes parses again, skips nothing, keeps the number
 *     of results, and formats to the same text a second time;
 *   - format never writes CR, LF or NUL;
 *   - a header that parses with an authserv-id is "ours" for that id.
 * The same function runs in every ctest through fuzz_replay.c over corpus/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* check_format - the format -> parse -> format promises for one mode. */
static void
check_format(const struct authres *ar, bool arc, bool comments)
{
	struct dkim_buf a, b;
	struct authres *back = NULL;
	enum dkim_status st;
	size_t i;

	dkim_buf_init(&a, 0);
	dkim_buf_init(&b, 0);
	if (!authres_format(ar, arc, arc ? 3 : 0, comments, &a)) {
		CHECK(a.len == 0);
		dkim_buf_free(&a);
		return;
	}
	for (i = 0; i < a.len; i++)
		CHECK(a.p[i] != '\r' && a.p[i] != '\n' && a.p[i] != '\0');
	st = arc ? authres_parse_aar(a.p, a.len, &back, NULL, 0) :
	    authres_parse(a.p, a.len, &back, NULL, 0);
	CHECK(st == DKIM_OK);
	CHECK(back->nskip == 0);
	CHECK(back->n == ar->n);
	CHECK(strcmp(back->authserv_id, ar->authserv_id) == 0);
	for (i = 0; i < ar->n; i++) {
		CHECK(strcmp(back->r[i].method, ar->r[i].method) == 0);
		CHECK(strcmp(back->r[i].result, ar->r[i].result) == 0);
		CHECK(back->r[i].np == ar->r[i].np);
	}
	CHECK(authres_format(back, arc, arc ? 3 : 0, comments, &b));
	CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
	if (!arc)
		CHECK(authres_is_ours(a.p, a.len, ar->authserv_id));
	authres_free(back);
	dkim_buf_free(&a);
	dkim_buf_free(&b);
}

static void
one(const char *p, size_t len, unsigned flags)
{
	struct authres *ar = NULL;
	char why[DKIM_WHY_MAX];

	if (authres_parse_ex(p, len, flags, &ar, NULL, why, sizeof(why)) !=
	    DKIM_OK) {
		CHECK(ar == NULL);
		return;
	}
	CHECK(ar != NULL && ar->n <= AUTHRES_MAX_RESULTS);
	if (!(flags & AUTHRES_PARSE_AAR) && ar->authserv_id[0] != '\0')
		CHECK(authres_is_ours(p, len, ar->authserv_id));
	check_format(ar, false, true);
	check_format(ar, false, false);
	check_format(ar, true, false);
	authres_free(ar);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so reading one byte too far is caught. */
	char *p = malloc(size ? size : 1);

	if (p == NULL)
		return 0;
	if (size)
		memcpy(p, data, size);
	one(p, size, 0);
	one(p, size, AUTHRES_PARSE_AAR);
	(void)authres_is_ours(p, size, "relay.example");
	(void)authres_is_ours(p, size, "mx.google.com");
	free(p);
	return 0;
}
