/*
 * fuzz_spf.c - libFuzzer target for the SPF evaluator (policy/spf.c) and
 * the zone-file parser that feeds it DNS (relay/zonefile.c).
 *
 * Input: the first byte picks the identity (bit 0: helo instead of
 * mailfrom) and whether spf_check_both runs too (bit 1). The rest is a
 * zone file, then a line "%%", then one query line of three
 * tab-separated fields: client address, HELO argument, reverse-path
 * (empty: the null reverse-path). A missing query line uses
 * 192.0.2.1, mail.example.com and user@example.com. Every record of
 * the zone, including the SPF records and their macros, comes from the
 * input.
 *
 * Besides "no crash, no leak, no overread" (ASan, UBSan), it traps when
 * a promise of spf.h breaks:
 *   - spf_check returns DKIM_OK, or DKIM_E_ARG only for a client address
 *     that does not parse, and the result is one of enum spf_res;
 *   - every string of spf_result is NUL-terminated inside its array;
 *   - the §4.6.4 limits hold: at most SPF_MAX_DNS_TERMS DNS-querying
 *     terms are evaluated (one more may be counted, the one refused), at
 *     most one void lookup past SPF_MAX_VOID_LOOKUPS, and the DNS is asked
 *     a bounded number of questions;
 *   - pass, fail, softfail and neutral name the deciding term;
 *   - evaluating again gives the same result, byte for byte.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/; spf.dict holds the record and zone-file tokens for
 * -dict=.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "fuzz_input.h"
#include "spf.h"
#include "zonefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/*
 * The most questions one evaluation may ask: 10 DNS terms, each an MX
 * with 10 exchanges looked up as A and AAAA, the records themselves,
 * and an exp= (§4.6.4 bounds all of it; this is a loose ceiling).
 */
#define MAX_QUESTIONS 512

struct counted {
	struct zonefile *z;
	unsigned calls;
};

/* counted_lookup - zonefile_lookup, counting the questions. */
static enum pdns_rc
counted_lookup(void *arg, const char *qname, enum pdns_type type,
    struct pdns_answer *out)
{
	struct counted *c = arg;

	c->calls++;
	CHECK(qname != NULL && strlen(qname) <= 253);
	return zonefile_lookup(c->z, qname, type, out);
}

/* terminated - s holds a NUL within n bytes. */
static bool
terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

/* check_result - the promises about one spf_result. */
static void
check_result(const struct spf_result *r)
{
	CHECK(r->result >= SPF_NONE && r->result <= SPF_PERMERROR);
	CHECK(terminated(r->sender, sizeof(r->sender)));
	CHECK(terminated(r->domain, sizeof(r->domain)));
	CHECK(terminated(r->mechanism, sizeof(r->mechanism)));
	CHECK(terminated(r->reason, sizeof(r->reason)));
	CHECK(terminated(r->explanation, sizeof(r->explanation)));
	CHECK(r->dns_terms <= SPF_MAX_DNS_TERMS + 1);
	CHECK(r->void_lookups <= SPF_MAX_VOID_LOOKUPS + 1);
	if (r->result == SPF_PASS || r->result == SPF_FAIL ||
	    r->result == SPF_SOFTFAIL || r->result == SPF_NEUTRAL)
		CHECK(r->mechanism[0] != '\0');
	CHECK(spf_res_str(r->result) != NULL);
}

/* field - the next tab-separated field of (*p, *n); NULL when none. */
static const char *
field(const char **p, size_t *n, size_t *len)
{
	const char *s = *p, *t;

	if (s == NULL)
		return NULL;
	if ((t = memchr(s, '\t', *n)) != NULL) {
		*len = (size_t)(t - s);
		*n -= *len + 1;
		*p = t + 1;
	} else {
		*len = *n;
		*p = NULL;
		*n = 0;
	}
	return s;
}

/* ip_parses - text (p, n) is an IPv4 or IPv6 address inet_pton takes. */
static bool
ip_parses(const char *p, size_t n)
{
	char buf[64];
	unsigned char a[16];

	if (n == 0 || n >= sizeof(buf) || memchr(p, '\0', n) != NULL)
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return inet_pton(AF_INET, buf, a) == 1 ||
	    inet_pton(AF_INET6, buf, a) == 1;
}

/* one - evaluate the query of the input against its zone. */
static void
one(const char *p, size_t n, unsigned sel)
{
	static const char sep[] = "\n%%\n";
	char why[DKIM_WHY_MAX];
	const char *q = NULL, *ip = "192.0.2.1", *helo = "mail.example.com",
	    *from = "user@example.com";
	size_t qn = 0, zn = n, ipn = 9, helon = 16, fromn = 16, k;
	struct spf_request req;
	struct spf_result *r, *again, *helo_r;
	struct counted c;
	struct pdns dns;
	enum dkim_status st;

	for (k = 0; k + 4 <= n; k++)
		if (memcmp(p + k, sep, 4) == 0) {
			zn = k + 1;
			q = p + k + 4;
			qn = n - k - 4;
			break;
		}
	if (q != NULL) {
		const char *f;
		size_t len;

		if (qn > 0 && q[qn - 1] == '\n')
			qn--;
		if ((f = field(&q, &qn, &len)) != NULL) {
			ip = f;
			ipn = len;
		}
		if ((f = field(&q, &qn, &len)) != NULL) {
			helo = f;
			helon = len;
		}
		if ((f = field(&q, &qn, &len)) != NULL) {
			from = f;
			fromn = len;
		}
	}
	if ((c.z = zonefile_parse(p, zn, why, sizeof(why))) == NULL) {
		CHECK(why[0] != '\0');
		return;
	}
	c.calls = 0;
	dns.fn = counted_lookup;
	dns.arg = &c;

	memset(&req, 0, sizeof(req));
	req.ip = ip;
	req.ip_len = ipn;
	req.helo = helo;
	req.helo_len = helon;
	req.mail_from = from;
	req.mail_from_len = fromn;
	req.identity = sel & 1 ? SPF_ID_HELO : SPF_ID_MAILFROM;
	req.receiver = "relay.example.org";
	req.now = 1700000000;

	CHECK((r = malloc(sizeof(*r))) != NULL);
	CHECK((again = calloc(1, sizeof(*again))) != NULL);
	CHECK((helo_r = malloc(sizeof(*helo_r))) != NULL);
	memset(r, 0xa5, sizeof(*r));
	st = spf_check(&dns, &req, r);
	CHECK(st == DKIM_OK || st == DKIM_E_ARG);
	CHECK(st == DKIM_OK || !ip_parses(ip, ipn));
	check_result(r);
	CHECK(c.calls <= MAX_QUESTIONS);

	/* Again, from a different starting state: the same bytes out. */
	c.calls = 0;
	CHECK(spf_check(&dns, &req, again) == st);
	CHECK(r->result == again->result &&
	    r->dns_terms == again->dns_terms &&
	    r->void_lookups == again->void_lookups &&
	    strcmp(r->sender, again->sender) == 0 &&
	    strcmp(r->domain, again->domain) == 0 &&
	    strcmp(r->mechanism, again->mechanism) == 0 &&
	    strcmp(r->reason, again->reason) == 0 &&
	    strcmp(r->explanation, again->explanation) == 0);

	if (sel & 2) {
		c.calls = 0;
		st = spf_check_both(&dns, &req, helo_r, again);
		CHECK(st == DKIM_OK || st == DKIM_E_ARG);
		check_result(helo_r);
		check_result(again);
		CHECK(c.calls <= 2 * MAX_QUESTIONS);
	}
	free(helo_r);
	free(again);
	free(r);
	zonefile_free(c.z);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned sel;
	size_t n;
	char *p;

	if ((p = fuzz_input(data, size, &sel, &n)) == NULL)
		return 0;
	one(p, n, sel);
	free(p);
	return 0;
}
