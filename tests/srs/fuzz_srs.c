/*
 * fuzz_srs.c - libFuzzer target for policy/srs.c.
 *
 * Each input is one address, read both as the recipient of a bounce to our
 * SRS domain (srs_reverse) and as the sender of a message we forward
 * (srs_forward). Besides "no crash, no overread" (ASan), it holds the
 * module to the promises of srs.h and traps when one breaks:
 *   - no more than SRS_ADDR_MAX octets are read: a longer input is handed
 *     in without its NUL, and both calls must refuse it;
 *   - nothing is written past outlen (every output buffer is an exact-size
 *     allocation, several sizes down to 1); an SRS_OK result fits outlen
 *     and SRS_ADDR_MAX - 1, a failure leaves ""; a smaller buffer gives the
 *     same answer, or SRS_TOOLONG when the result does not fit;
 *   - the why sentence is never empty, always terminated, printable ASCII
 *     (it never quotes the input);
 *   - SRS_NOT_SRS exactly when srs_is_srs says no; an address that
 *     reverses is one srs_forward takes as a sender;
 *   - what srs_forward makes reverses, with the same clock: an ordinary
 *     sender to itself, an SRS0 sender to itself, an SRS1 sender to the
 *     first forwarder's SRS0 address (Guarded); the same in any case
 *     (case smashing); an SRS0 result is still good after max_age days and
 *     expired one day later; a sender at our domain comes back unchanged.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define DOMAIN	"fwd.example.net"
#define NOW	INT64_C(1700000000)	/* timestamp "G3" */
#define DAY	INT64_C(86400)
#define MAX_AGE	21			/* the default */

/* "k1" is the secret of the unit tests' Mail::SRS vectors, so seeds made
 * from them verify; the second one is the rotated-out key. */
static const char *const secrets[] = { "k1", "k0-older" };
static const struct srs_config cfg = { DOMAIN, secrets, 2, 0 };

/* Output sizes tried besides SRS_ADDR_MAX. */
static const size_t small_out[] = { 1, 6, 24, 64, 200 };

/* Reason sizes: the usual one, and one that cuts every sentence. */
static const size_t why_sizes[] = { SRS_WHY_MAX, 9 };

/* lc, uc - ASCII case, as srs.c folds it; ieq - equal ignoring it. */
static char
lc(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char
uc(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static bool
ieq(const char *a, const char *b)
{
	for (; *a && lc(*a) == lc(*b); a++, b++)
		;
	return lc(*a) == lc(*b);
}

/* check_result - an output buffer of outlen after a call that said rc:
 * terminated inside outlen, within SRS_ADDR_MAX, "" unless SRS_OK. */
static size_t
check_result(const char *out, size_t outlen, enum srs_rc rc)
{
	size_t n = strnlen(out, outlen);

	CHECK(n < outlen);
	CHECK(n < SRS_ADDR_MAX);
	CHECK(rc == SRS_OK || n == 0);
	return n;
}

/* reverse - srs_reverse at t into exact-size buffers; the result (with its
 * NUL) is copied to res. */
static enum srs_rc
reverse(const char *addr, int64_t t, size_t outlen, size_t whylen,
    char res[SRS_ADDR_MAX])
{
	char *out = malloc(outlen), *why = malloc(whylen);
	enum srs_rc rc;
	size_t n, i;

	if (out == NULL || why == NULL)
		abort();
	rc = srs_reverse(&cfg, addr, t, out, outlen, why, whylen);
	n = check_result(out, outlen, rc);
	memcpy(res, out, n + 1);
	CHECK(strnlen(why, whylen) < whylen);
	CHECK(whylen < 2 || why[0] != '\0');
	for (i = 0; why[i] != '\0'; i++)
		CHECK(why[i] >= 0x20 && why[i] < 0x7f);
	free(out);
	free(why);
	return rc;
}

/* forward - srs_forward into an exact-size buffer; the result to res. */
static enum srs_rc
forward(const char *sender, size_t outlen, char res[SRS_ADDR_MAX])
{
	char *out = malloc(outlen);
	enum srs_rc rc;
	size_t n;

	if (out == NULL)
		abort();
	rc = srs_forward(&cfg, sender, NOW, out, outlen);
	n = check_result(out, outlen, rc);
	memcpy(res, out, n + 1);
	free(out);
	return rc;
}

/* check_sizes - the answer with each smaller buffer, given the one with a
 * whole buffer. */
static void
check_sizes(const char *addr, bool fwd, enum srs_rc full_rc,
    const char *full)
{
	char res[SRS_ADDR_MAX];
	enum srs_rc rc;
	size_t i, k;

	for (i = 0; i < sizeof(small_out) / sizeof(small_out[0]); i++) {
		for (k = 0; k < (fwd ? 1 : 2); k++) {
			rc = fwd ? forward(addr, small_out[i], res) :
			    reverse(addr, NOW, small_out[i], why_sizes[k],
			    res);
			if (full_rc == SRS_OK &&
			    strlen(full) >= small_out[i]) {
				CHECK(rc == SRS_TOOLONG);
				continue;
			}
			CHECK(rc == full_rc);
			CHECK(strcmp(res, full) == 0);
		}
	}
}

/* srs_tag_of - 0 or 1 for a local part starting SRS0 / SRS1 (any case)
 * and a separator, -1 otherwise: the test's own reading of srs.h. */
static int
srs_tag_of(const char *a)
{
	if (strlen(a) < 5 || lc(a[0]) != 's' || lc(a[1]) != 'r' ||
	    lc(a[2]) != 's' || strchr("=+-", a[4]) == NULL)
		return -1;
	return a[3] == '0' ? 0 : a[3] == '1' ? 1 : -1;
}

/*
 * expected_back - what a bounce to forward(a) reverses to (srs.h): for an
 * SRS1 sender SRS1<sep>hash=first=<sep>rest@host, "SRS0<sep>rest@first";
 * for an SRS0 sender the sender with its tag in upper case; otherwise,
 * an SRS1 sender that does not split that way included, the sender.
 */
static void
expected_back(const char *a, char want[SRS_ADDR_MAX])
{
	const char *at = strchr(a, '@'), *e1, *e2;
	int tag = srs_tag_of(a);

	strcpy(want, a);
	if (tag == 0) {
		memcpy(want, "SRS0", 4);
		return;
	}
	if (tag != 1)
		return;
	e1 = memchr(a + 5, '=', (size_t)(at - (a + 5)));
	e2 = e1 ? memchr(e1 + 1, '=', (size_t)(at - (e1 + 1))) : NULL;
	if (e2 == NULL || e2 == e1 + 1 || e2 + 1 == at ||
	    strchr("=+-", e2[1]) == NULL)
		return;		/* does not split: an ordinary sender */
	strcpy(want, "SRS0");
	strncat(want, e2 + 1, (size_t)(at - (e2 + 1)));
	strcat(want, "@");
	strncat(want, e1 + 1, (size_t)(e2 - (e1 + 1)));
}

/* check_round_trip - the promises about forward's result f for a. */
static void
check_round_trip(const char *a, const char *f)
{
	char want[SRS_ADDR_MAX], back[SRS_ADDR_MAX], smashed[SRS_ADDR_MAX];
	const char *at = strchr(a, '@');
	enum srs_rc rc;
	size_t i, n;

	CHECK(at != NULL && strchr(at + 1, '@') == NULL);
	if (ieq(at + 1, DOMAIN)) {
		CHECK(strcmp(f, a) == 0);	/* ours already */
		return;
	}
	CHECK(srs_is_srs(f));
	expected_back(a, want);
	CHECK(reverse(f, NOW, SRS_ADDR_MAX, SRS_WHY_MAX, back) == SRS_OK);
	CHECK(strcmp(back, want) == 0);

	n = strlen(f);
	for (i = 0; i <= n; i++)
		smashed[i] = lc(f[i]);
	CHECK(reverse(smashed, NOW, SRS_ADDR_MAX, SRS_WHY_MAX, back) ==
	    SRS_OK);
	CHECK(ieq(back, want));
	for (i = 0; i <= n; i++)
		smashed[i] = uc(f[i]);
	CHECK(reverse(smashed, NOW, SRS_ADDR_MAX, SRS_WHY_MAX, back) ==
	    SRS_OK);
	CHECK(ieq(back, want));

	/* SRS0 carries a timestamp, SRS1 does not. */
	rc = reverse(f, NOW + MAX_AGE * DAY, SRS_ADDR_MAX, SRS_WHY_MAX, back);
	CHECK(rc == SRS_OK && strcmp(back, want) == 0);
	rc = reverse(f, NOW + (MAX_AGE + 1) * DAY, SRS_ADDR_MAX, SRS_WHY_MAX,
	    back);
	CHECK(rc == (f[3] == '0' ? SRS_EXPIRED : SRS_OK));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy; one of SRS_ADDR_MAX octets or more is cut
	 * there and gets no NUL, so reading past the cap is caught. */
	bool whole = size < SRS_ADDR_MAX;
	size_t n = whole ? size : SRS_ADDR_MAX;
	char *a = malloc(whole ? n + 1 : n);
	char rev[SRS_ADDR_MAX], fwd[SRS_ADDR_MAX], again[SRS_ADDR_MAX];
	enum srs_rc rrc, frc;
	bool is;

	if (a == NULL)
		return 0;
	memcpy(a, data, n);
	if (whole)
		a[n] = '\0';
	whole = whole || memchr(a, '\0', n) != NULL;

	is = srs_is_srs(a);
	rrc = reverse(a, NOW, SRS_ADDR_MAX, SRS_WHY_MAX, rev);
	CHECK((rrc == SRS_NOT_SRS) == !is);
	frc = forward(a, SRS_ADDR_MAX, fwd);
	if (!whole) {
		CHECK(rrc == (is ? SRS_MALFORMED : SRS_NOT_SRS));
		CHECK(frc == SRS_TOOLONG);
		free(a);
		return 0;
	}
	check_sizes(a, false, rrc, rev);
	check_sizes(a, true, frc, fwd);
	if (rrc == SRS_OK)
		CHECK(forward(rev, SRS_ADDR_MAX, again) != SRS_BAD_INPUT);
	if (frc == SRS_OK)
		check_round_trip(a, fwd);
	CHECK(!srs_is_srs(NULL));
	free(a);
	return 0;
}
