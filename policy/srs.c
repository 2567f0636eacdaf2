/*
 * srs.c - Sender Rewriting Scheme addresses, byte for byte those of Perl's
 * Mail::SRS::Guarded 0.31 with its defaults (see srs.h for the shapes).
 *
 * The facts that make us interoperable, as Mail::SRS defines them:
 *   - SRS0 local part: SRS0=hash=TT=host=user. The hash is HMAC-SHA1 keyed
 *     with the secret over lc(TT) . lc(host) . lc(user), the three fields
 *     concatenated with nothing between them; base64 (A-Z a-z 0-9 + /) of
 *     the 20 octets, cut to its first 4 characters.
 *   - SRS1 local part: SRS1=hash=first=rest, where rest is the SRS0 local
 *     part of the first forwarder with its "SRS0" cut off but its
 *     separator kept (hence the "==" in SRS1 addresses); the hash is over
 *     lc(first) . lc(rest). SRS1 has no timestamp.
 *   - TT is the day number (seconds / 86400) modulo 1024, two characters
 *     of the RFC 4648 base32 alphabet A-Z 2-7, high five bits first. A
 *     timestamp is valid while today - TT, modulo 1024, is at most MaxAge.
 *   - On the way in, "SRS0" and "SRS1" match in any case and may be
 *     followed by '=', '+' or '-'; every later separator is '='. The host
 *     field is everything up to the next '=', the user field the rest (it
 *     may hold '=' itself), so no escaping is ever needed.
 *   - A hash verifies when it is a prefix (at least 4 characters) of the
 *     full base64 HMAC under any of the secrets, ignoring case.
 * Lowercasing is ASCII only, as Perl's lc is on byte strings: octets
 * above 0x7f (SMTPUTF8 addresses) are hashed as they are.
 *
 * Owns: nothing; every call works on the caller's buffers and the stack.
 *
 * SECURITY: srs_reverse() takes recipient addresses that anyone on the
 * Internet can send to our SRS domain; srs_forward() takes the MAIL FROM
 * of a message we forward. Neither reads more than SRS_ADDR_MAX octets of
 * its input, every field is bounded by the input, and the output is
 * written with snprintf() into the caller's buffer with its size. The
 * hash is compared without an early exit and against every secret, so
 * the time taken does not tell how much of a guess was right. Why
 * sentences never quote the input.
 */
#include "srs.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SRS_HASH_EMIT	4	/* hash characters we write (HashLength) */
#define SRS_HASH_MIN	4	/* shortest hash accepted (HashMin) */
#define SRS_HASH_FULL	27	/* base64 of 20 octets without its '=' */
#define SRS_B64_SIZE	29	/* EVP_EncodeBlock() of 20 octets, NUL */
#define SRS_MAX_AGE	21	/* days, Mail::SRS's default */
#define SRS_DAY		86400
#define SRS_TICKS	1024	/* two base32 characters */
#define SRS_TAG_LEN	5	/* "SRS0=" */

static const char srs_b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* A piece of the address being worked on; not NUL-terminated. */
struct srs_span {
	const char *p;
	size_t n;
};

/* srs_lc - ASCII lowercase, the only folding Mail::SRS does. */
static unsigned char
srs_lc(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* srs_ieq - are the n octets of a and b equal ignoring ASCII case? */
static bool
srs_ieq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (srs_lc((unsigned char)a[i]) != srs_lc((unsigned char)b[i]))
			return false;
	return true;
}

/* srs_octet_ok - may c stand in an address we read or write? Not space,
 * controls, or what would need or end a quoted string or path. */
static bool
srs_octet_ok(unsigned char c)
{
	return c > ' ' && c != 0x7f && c != '"' && c != '\\' && c != '<' &&
	    c != '>';
}

/* srs_is_sep - may c follow the SRS0 / SRS1 tag? */
static bool
srs_is_sep(char c)
{
	return c == '=' || c == '+' || c == '-';
}

/* srs_tag - 0 or 1 when the n octets at p start with SRS0 / SRS1 and a
 * separator, -1 otherwise. */
static int
srs_tag(const char *p, size_t n)
{
	if (n < SRS_TAG_LEN || !srs_ieq(p, "SRS", 3) || !srs_is_sep(p[4]))
		return -1;
	return p[3] == '0' ? 0 : p[3] == '1' ? 1 : -1;
}

/* srs_b32_val - the value of one base32 character (any case), or -1. */
static int
srs_b32_val(char c)
{
	unsigned char u = srs_lc((unsigned char)c);

	if (u >= 'a' && u <= 'z')
		return u - 'a';
	if (u >= '2' && u <= '7')
		return 26 + (u - '2');
	return -1;
}

/* srs_b64_form - is s 4 to 27 characters of the base64 alphabet? */
static bool
srs_b64_form(struct srs_span s)
{
	size_t i;

	if (s.n < SRS_HASH_MIN || s.n > SRS_HASH_FULL)
		return false;
	for (i = 0; i < s.n; i++) {
		unsigned char c = srs_lc((unsigned char)s.p[i]);

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '+' || c == '/'))
			return false;
	}
	return true;
}

/* srs_day - today's timestamp value: the day number modulo 1024 (the day
 * of a time before 1970 is rounded down, so the cycle stays regular). */
static unsigned
srs_day(int64_t now)
{
	int64_t d = now / SRS_DAY;

	if (now % SRS_DAY < 0)
		d--;
	return (unsigned)(((d % SRS_TICKS) + SRS_TICKS) % SRS_TICKS);
}

/*
 * srs_split - check that the n octets at a are local@host with exactly one
 * '@', both parts non-empty, and none of the octets that cannot stand
 * unquoted in an SMTP path (space, controls, '"', '\', '<', '>'). NULL and
 * the parts on success, else the reason.
 */
static const char *
srs_split(const char *a, size_t n, struct srs_span *local,
    struct srs_span *host)
{
	const char *at = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];

		if (!srs_octet_ok(c))
			return "contains a space, control character, quote, "
			    "backslash or angle bracket";
		if (c == '@') {
			if (at != NULL)
				return "has more than one '@'";
			at = a + i;
		}
	}
	if (at == NULL)
		return "has no '@'";
	local->p = a;
	local->n = (size_t)(at - a);
	host->p = at + 1;
	host->n = n - local->n - 1;
	if (local->n == 0)
		return "has an empty local part";
	if (host->n == 0)
		return "has an empty domain";
	return NULL;
}

/* srs_fields - split s at '=' into at most max fields, the last one
 * taking the rest (with any '=' in it); the number of fields found. */
static size_t
srs_fields(struct srs_span s, struct srs_span *f, size_t max)
{
	size_t k = 0;

	while (k + 1 < max) {
		const char *eq = memchr(s.p, '=', s.n);

		if (eq == NULL)
			break;
		f[k].p = s.p;
		f[k].n = (size_t)(eq - s.p);
		k++;
		s.n -= f[k - 1].n + 1;
		s.p = eq + 1;
	}
	f[k++] = s;
	return k;
}

/* srs_srs1_split - split what follows "SRS1<sep>" into hash, first
 * forwarder's host and its SRS0 part; true when there are the three, the
 * host is not empty and the SRS0 part starts with its separator. */
static bool
srs_srs1_split(struct srs_span body, struct srs_span f[3])
{
	return srs_fields(body, f, 3) == 3 && f[1].n > 0 && f[2].n > 0 &&
	    srs_is_sep(f[2].p[0]);
}

/* srs_config_ok - does c have a usable domain and non-empty secrets? */
static bool
srs_config_ok(const struct srs_config *c)
{
	size_t i, n;

	if (c == NULL || c->domain == NULL || c->secrets == NULL ||
	    c->nsecrets == 0)
		return false;
	n = strnlen(c->domain, SRS_ADDR_MAX);
	if (n == 0 || n == SRS_ADDR_MAX || strpbrk(c->domain, "=@") != NULL)
		return false;
	for (i = 0; i < n; i++)
		if (!srs_octet_ok((unsigned char)c->domain[i]))
			return false;
	for (i = 0; i < c->nsecrets; i++)
		if (c->secrets[i] == NULL || c->secrets[i][0] == '\0' ||
		    strlen(c->secrets[i]) > INT_MAX)
			return false;
	return true;
}

/*
 * srs_mac - base64 of HMAC-SHA1(secret, the fields lowercased and
 * concatenated) into b64 (28 characters and NUL, the last one padding).
 * False if the data would not fit (it cannot: fields are pieces of one
 * bounded address) or OpenSSL fails.
 */
static bool
srs_mac(const char *secret, const struct srs_span *f, size_t nf,
    char b64[SRS_B64_SIZE])
{
	unsigned char data[SRS_ADDR_MAX], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t i, j, n = 0;
	bool ok;

	for (i = 0; i < nf; i++) {
		if (f[i].n > sizeof(data) - n)
			return false;
		for (j = 0; j < f[i].n; j++)
			data[n++] = srs_lc((unsigned char)f[i].p[j]);
	}
	ok = HMAC(EVP_sha1(), secret, (int)strlen(secret), data, n, md,
	    &mdlen) != NULL && mdlen == 20;
	if (ok)
		EVP_EncodeBlock((unsigned char *)b64, md, (int)mdlen);
	OPENSSL_cleanse(md, sizeof(md));
	return ok;
}

/*
 * srs_verify - does hash (already of srs_b64_form) start the HMAC of the
 * fields under some secret, ignoring case? *exact says whether one
 * matched with case as well (else a remote MTA changed it).
 */
static bool
srs_verify(const struct srs_config *c, struct srs_span hash,
    const struct srs_span *f, size_t nf, bool *exact)
{
	char b64[SRS_B64_SIZE];
	bool any = false;
	size_t i, j;

	*exact = false;
	for (i = 0; i < c->nsecrets; i++) {
		unsigned diff = 0, fdiff = 0;

		if (!srs_mac(c->secrets[i], f, nf, b64))
			continue;
		for (j = 0; j < hash.n; j++) {
			unsigned char g = (unsigned char)hash.p[j];
			unsigned char w = (unsigned char)b64[j];

			diff |= (unsigned)(g ^ w);
			fdiff |= (unsigned)(srs_lc(g) ^ srs_lc(w));
		}
		*exact |= diff == 0;
		any |= fdiff == 0;
	}
	OPENSSL_cleanse(b64, sizeof(b64));
	return any;
}

/* srs_put - format the result into out; SRS_TOOLONG (and "") when it does
 * not fit outlen or SRS_ADDR_MAX. */
static enum srs_rc
srs_put(char *out, size_t outlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum srs_rc
srs_put(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= outlen || r >= SRS_ADDR_MAX) {
		out[0] = '\0';
		return SRS_TOOLONG;
	}
	return SRS_OK;
}

/* srs_why - write the reason sentence (if why is given) and return rc. */
static enum srs_rc
srs_why(char *why, size_t whylen, enum srs_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum srs_rc
srs_why(char *why, size_t whylen, enum srs_rc rc, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* srs_make_srs0 - SRS0=hash=TT=host=user@domain for an ordinary sender. */
static enum srs_rc
srs_make_srs0(const struct srs_config *c, struct srs_span host,
    struct srs_span user, int64_t now, char *out, size_t outlen)
{
	unsigned day = srs_day(now);
	char ts[3] = { srs_b32[day >> 5], srs_b32[day & 31], '\0' };
	struct srs_span f[3] = { { ts, 2 }, host, user };
	char b64[SRS_B64_SIZE];

	if (!srs_mac(c->secrets[0], f, 3, b64))
		return SRS_BAD_INPUT;
	return srs_put(out, outlen, "SRS0=%.*s=%s=%.*s=%.*s@%s",
	    SRS_HASH_EMIT, b64, ts, (int)host.n, host.p, (int)user.n, user.p,
	    c->domain);
}

/* srs_make_srs1 - SRS1=hash=first=rest@domain, rest being the SRS0 part
 * (with its leading separator) of the first forwarder, first its host. */
static enum srs_rc
srs_make_srs1(const struct srs_config *c, struct srs_span first,
    struct srs_span rest, char *out, size_t outlen)
{
	struct srs_span f[2] = { first, rest };
	char b64[SRS_B64_SIZE];

	if (!srs_mac(c->secrets[0], f, 2, b64))
		return SRS_BAD_INPUT;
	return srs_put(out, outlen, "SRS1=%.*s=%.*s=%.*s@%s", SRS_HASH_EMIT,
	    b64, (int)first.n, first.p, (int)rest.n, rest.p, c->domain);
}

enum srs_rc
srs_forward(const struct srs_config *c, const char *sender, int64_t now,
    char *out, size_t outlen)
{
	struct srs_span local, host, body, f[3];
	size_t n;

	if (out == NULL || outlen == 0)
		return SRS_TOOLONG;
	out[0] = '\0';
	if (!srs_config_ok(c) || sender == NULL)
		return SRS_BAD_INPUT;
	n = strnlen(sender, SRS_ADDR_MAX);
	if (n == SRS_ADDR_MAX)
		return SRS_TOOLONG;
	if (srs_split(sender, n, &local, &host) != NULL ||
	    memchr(host.p, '=', host.n) != NULL)
		return SRS_BAD_INPUT;

	if (host.n == strlen(c->domain) && srs_ieq(host.p, c->domain, host.n))
		return srs_put(out, outlen, "%s", sender);

	body.p = local.p + SRS_TAG_LEN;
	body.n = local.n >= SRS_TAG_LEN ? local.n - SRS_TAG_LEN : 0;
	switch (srs_tag(local.p, local.n)) {
	case 0:
		/* We are the second hop: keep the SRS0 part, separator
		 * included, and its host. */
		body.p--;
		body.n++;
		return srs_make_srs1(c, host, body, out, outlen);
	case 1:
		/* A later hop: keep the first forwarder, drop the one we
		 * got it from (Guarded). */
		if (srs_srs1_split(body, f))
			return srs_make_srs1(c, f[1], f[2], out, outlen);
		break;
	}
	return srs_make_srs0(c, host, local, now, out, outlen);
}

/* srs_reverse0 - the original sender of an SRS0 local part (body is what
 * follows "SRS0<sep>"). */
static enum srs_rc
srs_reverse0(const struct srs_config *c, struct srs_span body, int64_t now,
    char *out, size_t outlen, char *why, size_t whylen)
{
	struct srs_span f[4];
	unsigned max_age = c->max_age_days ? c->max_age_days : SRS_MAX_AGE;
	unsigned age;
	int hi, lo;
	bool exact;
	enum srs_rc rc;

	if (srs_fields(body, f, 4) < 4)
		return srs_why(why, whylen, SRS_MALFORMED,
		    "SRS0 address has fewer than four fields");
	if (!srs_b64_form(f[0]))
		return srs_why(why, whylen, SRS_MALFORMED,
		    "SRS0 hash is not 4 to 27 base64 characters");
	hi = f[1].n == 2 ? srs_b32_val(f[1].p[0]) : -1;
	lo = f[1].n == 2 ? srs_b32_val(f[1].p[1]) : -1;
	if (hi < 0 || lo < 0)
		return srs_why(why, whylen, SRS_MALFORMED,
		    "SRS0 timestamp is not two base32 characters");
	if (f[2].n == 0 || f[3].n == 0)
		return srs_why(why, whylen, SRS_MALFORMED,
		    "SRS0 address has an empty %s field",
		    f[2].n == 0 ? "host" : "user");
	if (!srs_verify(c, f[0], f + 1, 3, &exact))
		return srs_why(why, whylen, SRS_BAD_HASH,
		    "SRS0 hash does not verify (forged, or made with a "
		    "secret no longer configured)");
	age = (srs_day(now) + SRS_TICKS - (unsigned)(hi * 32 + lo)) %
	    SRS_TICKS;
	if (age > max_age) {
		if (age > SRS_TICKS / 2)
			return srs_why(why, whylen, SRS_EXPIRED,
			    "SRS0 timestamp is %u days in the future",
			    SRS_TICKS - age);
		return srs_why(why, whylen, SRS_EXPIRED,
		    "SRS0 timestamp is %u days old (limit %u)", age, max_age);
	}
	rc = srs_put(out, outlen, "%.*s@%.*s", (int)f[3].n, f[3].p,
	    (int)f[2].n, f[2].p);
	if (rc != SRS_OK)
		return srs_why(why, whylen, rc, "reversed address too long");
	return srs_why(why, whylen, SRS_OK, "SRS0 address reversed to the "
	    "original sender%s", exact ? "" : " (hash matched ignoring case)");
}

/* srs_reverse1 - the first forwarder's SRS0 address in an SRS1 local part
 * (body is what follows "SRS1<sep>"). */
static enum srs_rc
srs_reverse1(const struct srs_config *c, struct srs_span body, char *out,
    size_t outlen, char *why, size_t whylen)
{
	struct srs_span f[3];
	bool exact;
	enum srs_rc rc;

	if (!srs_srs1_split(body, f))
		return srs_why(why, whylen, SRS_MALFORMED,
		    "SRS1 address does not split into hash, host and SRS0 "
		    "part");
	if (memchr(f[0].p, '.', f[0].n) != NULL)
		return srs_why(why, whylen, SRS_MALFORMED,
		    "SRS1 address has no hash (the format before Mail::SRS "
		    "0.28 is not accepted)");
	if (!srs_b64_form(f[0]))
		return srs_why(why, whylen, SRS_MALFORMED,
		    "SRS1 hash is not 4 to 27 base64 characters");
	if (!srs_verify(c, f[0], f + 1, 2, &exact))
		return srs_why(why, whylen, SRS_BAD_HASH,
		    "SRS1 hash does not verify (forged, or made with a "
		    "secret no longer configured)");
	rc = srs_put(out, outlen, "SRS0%.*s@%.*s", (int)f[2].n, f[2].p,
	    (int)f[1].n, f[1].p);
	if (rc != SRS_OK)
		return srs_why(why, whylen, rc, "reversed address too long");
	return srs_why(why, whylen, SRS_OK, "SRS1 address reversed to the "
	    "first forwarder's SRS0 address%s",
	    exact ? "" : " (hash matched ignoring case)");
}

enum srs_rc
srs_reverse(const struct srs_config *c, const char *addr, int64_t now,
    char *out, size_t outlen, char *why, size_t whylen)
{
	struct srs_span local, host, body;
	const char *bad;
	size_t n;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (out == NULL || outlen == 0)
		return srs_why(why, whylen, SRS_TOOLONG, "no output buffer");
	out[0] = '\0';
	if (!srs_is_srs(addr))
		return srs_why(why, whylen, SRS_NOT_SRS,
		    "not an SRS address");
	if (!srs_config_ok(c))
		return srs_why(why, whylen, SRS_BAD_INPUT,
		    "SRS domain or secret not configured");
	n = strnlen(addr, SRS_ADDR_MAX);
	if (n == SRS_ADDR_MAX)
		return srs_why(why, whylen, SRS_MALFORMED,
		    "SRS address longer than %d octets", SRS_ADDR_MAX - 1);
	if ((bad = srs_split(addr, n, &local, &host)) != NULL)
		return srs_why(why, whylen, SRS_MALFORMED, "SRS address %s",
		    bad);
	body.p = local.p + SRS_TAG_LEN;
	body.n = local.n - SRS_TAG_LEN;
	if (srs_tag(local.p, local.n) == 0)
		return srs_reverse0(c, body, now, out, outlen, why, whylen);
	return srs_reverse1(c, body, out, outlen, why, whylen);
}

bool
srs_is_srs(const char *addr)
{
	return addr != NULL &&
	    srs_tag(addr, strnlen(addr, SRS_TAG_LEN)) >= 0;
}

const char *
srs_rc_str(enum srs_rc rc)
{
	switch (rc) {
	case SRS_OK:		return "ok";
	case SRS_NOT_SRS:	return "not-srs";
	case SRS_MALFORMED:	return "malformed";
	case SRS_BAD_HASH:	return "bad-hash";
	case SRS_EXPIRED:	return "expired";
	case SRS_TOOLONG:	return "too-long";
	case SRS_BAD_INPUT:	return "bad-input";
	}
	return "unknown";
}
