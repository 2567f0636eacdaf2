/*
 * test_authres_nomem.c - policy/authres.c when memory runs out, and how
 * much it asks for.
 *
 * The executable is linked with --wrap=malloc,calloc,realloc, so every
 * allocation made by libpolicy and libdkim goes through the counters
 * below (Criterion is a shared library and is not affected). Each
 * operation is run again and again with its 1st, 2nd, ... allocation
 * failing until it runs to the end without meeting the failure; each time
 * it must report the failure as a value (DKIM_E_NOMEM / NULL / false) and,
 * in the sanitizer build, leak nothing.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "authres.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long fail_at = -1;	/* allocations to let through; -1: never fail */
static bool failed;		/* the armed failure happened */
static size_t asked;		/* bytes requested since the last reset */
static size_t calls;

static bool
should_fail(size_t n)
{
	calls++;
	asked += n;
	if (fail_at < 0)
		return false;
	if (fail_at-- == 0) {
		failed = true;
		return true;
	}
	return false;
}

void *
__wrap_malloc(size_t n)
{
	return should_fail(n) ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
	return should_fail(n * m) ? NULL : __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
	return should_fail(n) ? NULL : __real_realloc(p, n);
}

static const char gmail[] = " mx.google.com;\r\n"
    "       dkim=pass header.i=@example.com header.s=20230601 "
    "header.b=Ko7r+3/b;\r\n"
    "       spf=pass (google.com: domain of a@example.com designates "
    "192.0.2.1 as permitted sender) smtp.mailfrom=\"john doe\"@example.com;"
    "\r\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) "
    "header.from=example.com reason=\"x\" action=none; bad resinfo";

static const char aar[] = " i=1; \"lists.example.org\" 1; arc=none; "
    "spf=pass smtp.mfrom=jqd@d1.example; dkim=pass (1024-bit key) "
    "header.i=@d1.example; dmarc=pass; none";

/* Each op returns true when it ran to the end, false when it reported an
 * allocation failure; anything else is a test failure inside the op. */
typedef bool (*op_fn)(void);

static bool
op_parse(const char *in, size_t len, unsigned flags)
{
	struct authres *ar = (struct authres *)1;
	enum authres_err err = AUTHRES_E_NONE;
	enum dkim_status st;

	st = authres_parse_ex(in, len, flags, &ar, &err, NULL, 0);
	if (st == DKIM_OK) {
		authres_free(ar);
		return true;
	}
	fail_at = -1;
	cr_expect(st == DKIM_E_NOMEM && err == AUTHRES_E_NOMEM && ar == NULL,
	    "parse under memory failure: got %s/%s", dkim_status_str(st),
	    authres_err_str(err));
	return false;
}

static bool
op_parse_ar(void)
{
	return op_parse(gmail, sizeof(gmail) - 1, 0);
}

static bool
op_parse_aar(void)
{
	return op_parse(aar, sizeof(aar) - 1, AUTHRES_PARSE_AAR);
}

static bool
op_build_format(void)
{
	struct authres *ar = authres_new("relay.example");
	struct authres_result *r;
	struct dkim_buf b;
	bool ok = false;

	if (ar == NULL)
		return false;
	if ((r = authres_add_result(ar, "dkim", "pass", "ok")) == NULL ||
	    !authres_add_prop(r, "header", "d", "example.com") ||
	    !authres_add_prop(r, "header", "b", "ab/cdefg") ||
	    !authres_set_comment(r, "2048-bit key") ||
	    (r = authres_add_result(ar, "spf", "pass", NULL)) == NULL ||
	    !authres_add_prop(r, "smtp", "mailfrom", "a@example.com"))
		goto out;
	dkim_buf_init(&b, 0);
	dkim_buf_adds(&b, "X");
	if (b.failed) {
		dkim_buf_free(&b);
		goto out;
	}
	ok = authres_format(ar, false, 0, true, &b);
	if (!ok) {
		fail_at = -1;
		cr_expect(b.len == 1 && !b.failed, "format failure changed "
		    "the buffer (len %zu)", b.len);
	}
	dkim_buf_free(&b);
out:
	authres_free(ar);
	return ok;
}

static void
every_failure(const char *name, op_fn op)
{
	long n;

	for (n = 0; n < 10000; n++) {
		bool done;

		failed = false;
		fail_at = n;
		done = op();
		fail_at = -1;
		if (!failed) {
			cr_expect(done, "%s: did not finish without a failure",
			    name);
			cr_expect(n > 0, "%s: allocates nothing?", name);
			return;
		}
		cr_expect(!done, "%s: allocation %ld failed but the operation "
		    "reported success", name, n + 1);
	}
	cr_expect_fail("%s: still allocating after 10000 allocations", name);
}

Test(authres_nomem, parse)
{
	every_failure("parse A-R", op_parse_ar);
}

Test(authres_nomem, parse_aar)
{
	every_failure("parse AAR", op_parse_aar);
}

Test(authres_nomem, build_and_format)
{
	every_failure("build and format", op_build_format);
}

Test(authres_nomem, is_ours_does_not_allocate)
{
	calls = 0;
	fail_at = 0;
	cr_expect(authres_is_ours(gmail, sizeof(gmail) - 1, "mx.google.com"));
	fail_at = -1;
	cr_expect(calls == 0, "is_ours made %zu allocations", calls);
}

/* Bytes requested while parsing adversarial headers of the largest
 * allowed size stay a small multiple of the input. */
static char *
fill(const char *head, const char *unit, size_t total)
{
	size_t hl = strlen(head), ul = strlen(unit), i;
	char *s = __real_malloc(total + 1);

	cr_assert(s != NULL && total >= hl);
	memcpy(s, head, hl);
	for (i = hl; i < total; i++)
		s[i] = unit[(i - hl) % ul];
	s[total] = '\0';
	return s;
}

Test(authres_nomem, allocation_is_linear)
{
	static const struct {
		const char *desc, *head, *unit;
	} cases[] = {
		{ "one long reason", " r.example; dkim=pass reason=", "x" },
		{ "one long comment", " r.example; dkim=pass (", "c" },
		{ "many short values", " r.example", "; a=b c.d=e f.g=h" },
		{ "quoted local-parts", " r.example; spf=pass",
		    " smtp.mailfrom=\"a b\"@c.example" },
		{ "broken resinfo", " r.example", "; (x) a b \"c\"" },
		{ "folding", " r.example", ";\r\n dkim\r\n =\r\n pass" },
	};
	const size_t len = AUTHRES_MAX_LEN;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *in = fill(cases[i].head, cases[i].unit, len);
		struct authres *ar = NULL;

		asked = 0;
		(void)authres_parse(in, len, &ar, NULL, 0);
		cr_expect(asked <= 8 * len + 16384, "%s: %zu bytes asked for "
		    "a %zu-byte header", cases[i].desc, asked, len);
		authres_free(ar);
		free(in);
	}
}
