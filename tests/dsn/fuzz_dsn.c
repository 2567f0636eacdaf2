/*
 * fuzz_dsn.c - libFuzzer target for policy/dsn.c.
 *
 * The first byte of an input picks an address to look up in the report;
 * the rest is the message. Besides "no crash, no leak, no overread"
 * (ASan), it holds the module to the promises of dsn.h and traps when one
 * breaks:
 *   - a result is a dsn_rc value; on DSN_OK there is a report with 1 to
 *     DSN_MAX_RCPTS groups, otherwise none, and a reason;
 *   - every string is NUL-terminated within its array and holds no
 *     control character but none at all; types and Action are lowercase,
 *     Action is one of the five keywords, Status is class.subject.detail,
 *     Final-Recipient is not empty;
 *   - dsn_find gives a group of the report or NULL, and finds each
 *     group's own rfc822 Final-Recipient (or an earlier group).
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static const char *const lookups[] = { "m1@dest.example", "a@dest.example",
    "nobody@nowhere.example", "" };

/* str_ok - NUL within cap, no control octets, lowercase when asked. */
static void
str_ok(const char *s, size_t cap, bool lower)
{
	size_t n = strnlen(s, cap), i;

	CHECK(n < cap);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		CHECK(c >= ' ' && c != 0x7f);
		if (lower)
			CHECK(!(c >= 'A' && c <= 'Z'));
	}
}

static void
status_ok(const char *s)
{
	size_t i = 1, part;

	CHECK(s[0] == '2' || s[0] == '4' || s[0] == '5');
	for (part = 0; part < 2; part++) {
		size_t d = 0;

		CHECK(s[i++] == '.');
		while (s[i] >= '0' && s[i] <= '9') {
			i++;
			d++;
		}
		CHECK(d >= 1 && d <= 3);
	}
	CHECK(s[i] == '\0');
}

static void
check(const struct dsn *d, const char *lookup)
{
	static const char *const kw[] = { "failed", "delayed", "delivered",
	    "relayed", "expanded" };
	const struct dsn_rcpt *g;
	size_t i, k;
	bool ok;

	CHECK(d->nrcpt >= 1 && d->nrcpt <= DSN_MAX_RCPTS);
	str_ok(d->reporting_mta, sizeof(d->reporting_mta), false);
	for (i = 0; i < d->nrcpt; i++) {
		const struct dsn_rcpt *r = &d->rcpt[i];

		str_ok(r->final_type, sizeof(r->final_type), true);
		str_ok(r->final_addr, sizeof(r->final_addr), false);
		str_ok(r->orig_type, sizeof(r->orig_type), true);
		str_ok(r->orig_addr, sizeof(r->orig_addr), false);
		str_ok(r->action, sizeof(r->action), true);
		str_ok(r->status, sizeof(r->status), false);
		str_ok(r->diag_type, sizeof(r->diag_type), true);
		str_ok(r->diag, sizeof(r->diag), false);
		CHECK(r->final_addr[0] != '\0');
		for (k = 0, ok = false; k < 5; k++)
			ok |= strcmp(r->action, kw[k]) == 0;
		CHECK(ok);
		status_ok(r->status);
		if (r->final_type[0] == '\0' ||
		    strcmp(r->final_type, "rfc822") == 0) {
			g = dsn_find(d, r->final_addr);
			/* the first group naming it, this one or before */
			CHECK(g != NULL && g <= r);
		}
	}
	g = dsn_find(d, lookup);
	CHECK(g == NULL || (g >= d->rcpt && g < d->rcpt + d->nrcpt));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsn *d = NULL;
	char why[160];
	enum dsn_rc rc;
	unsigned sel;
	size_t n;
	char *p;

	if ((p = fuzz_input(data, size, &sel, &n)) == NULL)
		return 0;
	memset(why, 'x', sizeof(why));
	rc = dsn_parse(p, n, &d, why, sizeof(why));
	CHECK(strnlen(why, sizeof(why)) < sizeof(why));
	CHECK(rc == DSN_OK || rc == DSN_E_NOT_DSN || rc == DSN_E_MALFORMED ||
	    rc == DSN_E_LIMIT || rc == DSN_E_NOMEM);
	if (rc == DSN_OK) {
		CHECK(d != NULL);
		check(d, lookups[sel % 4]);
	} else {
		CHECK(d == NULL && why[0] != '\0');
	}
	dsn_free(d);
	free(p);
	return 0;
}
