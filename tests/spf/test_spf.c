/*
 * test_spf.c - policy/spf.c against RFC 7208, one table per topic. Every
 * case serves its own zone (relay/zonefile.c) and states the result it
 * wants; the deciding mechanism, a piece of the reason and the explanation
 * are checked where a case names them. The libspf2 suite holds one test
 * per way Debian's libspf2 1.2.10 departs from the RFC (see spf.c).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "spf.h"
#include "zonefile.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define FROM	"strong-bad@email.example.com"
#define HELO	"mail.example.org"
#define IP	"192.0.2.3"
#define IP6	"2001:db8::cb01"

struct spf_case {
	const char *desc;
	const char *zone;
	const char *ip;		/* NULL: IP */
	const char *from;	/* NULL: FROM; "" the null reverse-path */
	const char *helo;	/* NULL: HELO */
	enum spf_identity id;
	enum spf_res want;
	const char *mech;	/* NULL: not checked */
	const char *reason;	/* a substring; NULL: not checked */
	const char *exp;	/* NULL: not checked */
};

static const struct pdns *
serve(const char *zone, struct zonefile **zp, struct pdns *dns)
{
	char why[DKIM_WHY_MAX];

	*zp = zonefile_parse(zone, strlen(zone), why, sizeof(why));
	cr_assert_not_null(*zp, "zone does not parse: %s", why);
	dns->fn = zonefile_lookup;
	dns->arg = *zp;
	return dns;
}

static void
request(struct spf_request *req, const char *ip, const char *from,
    const char *helo, enum spf_identity id)
{
	memset(req, 0, sizeof(*req));
	req->ip = ip ? ip : IP;
	req->ip_len = strlen(req->ip);
	req->mail_from = from ? from : FROM;
	req->mail_from_len = strlen(req->mail_from);
	req->helo = helo ? helo : HELO;
	req->helo_len = strlen(req->helo);
	req->identity = id;
	req->receiver = "mx.receiver.test";
	req->now = 1234567890;
}

/* check - evaluate one case and compare with what it wants. */
static void
check(const struct spf_case *c)
{
	struct zonefile *z;
	struct pdns dns;
	struct spf_request req;
	struct spf_result res;
	enum dkim_status st;

	serve(c->zone, &z, &dns);
	request(&req, c->ip, c->from, c->helo, c->id);
	st = spf_check(&dns, &req, &res);
	cr_expect_eq(st, DKIM_OK, "%s: status %s", c->desc,
	    dkim_status_str(st));
	cr_expect_eq(res.result, c->want, "%s: got %s, want %s (%s)",
	    c->desc, spf_res_str(res.result), spf_res_str(c->want),
	    res.reason);
	if (c->mech)
		cr_expect_str_eq(res.mechanism, c->mech, "%s: mechanism "
		    "got \"%s\", want \"%s\"", c->desc, res.mechanism, c->mech);
	if (c->reason)
		cr_expect(strstr(res.reason, c->reason) != NULL, "%s: reason "
		    "got \"%s\", want it to contain \"%s\"", c->desc,
		    res.reason, c->reason);
	if (c->exp)
		cr_expect_str_eq(res.explanation, c->exp, "%s: explanation "
		    "got \"%s\", want \"%s\"", c->desc, res.explanation,
		    c->exp);
	zonefile_free(z);
}

static void
check_all(const struct spf_case *cases, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		check(&cases[i]);
}

#define SPF(dom, rec)	dom ". TXT \"" rec "\"\n"
#define MF		SPF_ID_MAILFROM
#define HE		SPF_ID_HELO
#define D		"email.example.com"

/* ------------------------------------------------------------ mechanisms */

static const struct spf_case all_cases[] = {
	{ "-all", SPF(D, "v=spf1 -all"), NULL, NULL, NULL, MF, SPF_FAIL,
	    "-all", "sender IP 192.0.2.3 matched -all in " D, "" },
	{ "+all", SPF(D, "v=spf1 +all"), NULL, NULL, NULL, MF, SPF_PASS,
	    "+all", NULL, NULL },
	{ "all", SPF(D, "v=spf1 all"), NULL, NULL, NULL, MF, SPF_PASS, "all",
	    NULL, NULL },
	{ "~all", SPF(D, "v=spf1 ~all"), NULL, NULL, NULL, MF, SPF_SOFTFAIL,
	    "~all", NULL, NULL },
	{ "?all", SPF(D, "v=spf1 ?all"), NULL, NULL, NULL, MF, SPF_NEUTRAL,
	    "?all", NULL, NULL },
	{ "terms after all are never tested", SPF(D, "v=spf1 all -all"),
	    NULL, NULL, NULL, MF, SPF_PASS, "all", NULL, NULL },
	{ "no mechanisms: neutral", SPF(D, "v=spf1"), NULL, NULL, NULL, MF,
	    SPF_NEUTRAL, "default (no match)", "default result neutral", NULL },
	{ "ALL in capitals", SPF(D, "v=spf1 -ALL"), NULL, NULL, NULL, MF,
	    SPF_FAIL, "-ALL", NULL, NULL },
};

Test(mechanisms, all)
{
	check_all(all_cases, NELEM(all_cases));
}

static const struct spf_case ip_cases[] = {
	{ "ip4 network match", SPF(D, "v=spf1 ip4:192.0.2.0/24 -all"), NULL,
	    NULL, NULL, MF, SPF_PASS, "ip4:192.0.2.0/24",
	    "sender IP 192.0.2.3 matched ip4:192.0.2.0/24 in " D, NULL },
	{ "ip4 outside", SPF(D, "v=spf1 ip4:192.0.2.0/24 -all"),
	    "198.51.100.1", NULL, NULL, MF, SPF_FAIL, "-all", NULL, NULL },
	{ "ip4 without length is /32", SPF(D, "v=spf1 ip4:192.0.2.4 -all"),
	    NULL, NULL, NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "ip4 /32", SPF(D, "v=spf1 ip4:192.0.2.3/32 -all"), NULL, NULL, NULL,
	    MF, SPF_PASS, NULL, NULL, NULL },
	{ "ip4 /31", SPF(D, "v=spf1 ip4:192.0.2.2/31 -all"), NULL, NULL, NULL,
	    MF, SPF_PASS, NULL, NULL, NULL },
	{ "ip4 /0", SPF(D, "v=spf1 ip4:1.1.1.1/0 -all"), "203.0.113.9", NULL,
	    NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "ip4 network with host bits", SPF(D, "v=spf1 ip4:192.0.2.77/24"),
	    NULL, NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "ip4 never matches an IPv6 client", SPF(D, "v=spf1 ip4:0.0.0.0/0"),
	    IP6, NULL, NULL, MF, SPF_NEUTRAL, "default (no match)", NULL,
	    NULL },
	{ "ip6 match", SPF(D, "v=spf1 ip6:2001:db8::/32 -all"), IP6, NULL,
	    NULL, MF, SPF_PASS, "ip6:2001:db8::/32", NULL, NULL },
	{ "ip6 without length is /128", SPF(D, "v=spf1 ip6:2001:db8::cb02 "
	    "-all"), IP6, NULL, NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "ip6 /127", SPF(D, "v=spf1 ip6:2001:db8::cb00/127 -all"), IP6, NULL,
	    NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "ip6 in capitals", SPF(D, "v=spf1 IP6:2001:DB8::CB01 -all"), IP6,
	    NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "ip6 never matches an IPv4 client", SPF(D, "v=spf1 ip6:::/0"), NULL,
	    NULL, NULL, MF, SPF_NEUTRAL, NULL, NULL, NULL },
	{ "ip6 /33", SPF(D, "v=spf1 ip6:cafe:babe:8000::/33"),
	    "cafe:babe:8000::1", NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	/* §5: an IPv4-mapped client is an IPv4 client */
	{ "IPv4-mapped client matches ip4",
	    SPF(D, "v=spf1 -ip4:192.0.2.3 ip6:::ffff:192.0.2.3"),
	    "::ffff:192.0.2.3", NULL, NULL, MF, SPF_FAIL, "-ip4:192.0.2.3",
	    "sender IP 192.0.2.3 matched", NULL },
	{ "IPv4-mapped client never matches ip6",
	    SPF(D, "v=spf1 ip6:::ffff:0:0/96 ip6:::/0"), "::FFFF:192.0.2.3",
	    NULL, NULL, MF, SPF_NEUTRAL, NULL, NULL, NULL },
};

Test(mechanisms, ip4_ip6)
{
	check_all(ip_cases, NELEM(ip_cases));
}

#define HOSTS \
	"host.example.com. A 192.0.2.200\n" \
	"host.example.com. AAAA 2001:db8::beef\n" \
	"v4only.example.com. A 192.0.2.3\n"

static const struct spf_case a_cases[] = {
	{ "a: the domain's own address", SPF(D, "v=spf1 a -all")
	    D ". A 192.0.2.3\n", NULL, NULL, NULL, MF, SPF_PASS, "a",
	    "matched a in " D, NULL },
	{ "a:host", SPF(D, "v=spf1 a:v4only.example.com -all") HOSTS, NULL,
	    NULL, NULL, MF, SPF_PASS, "a:v4only.example.com", NULL, NULL },
	{ "a:host other address", SPF(D, "v=spf1 a:host.example.com -all")
	    HOSTS, NULL, NULL, NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "a/24", SPF(D, "v=spf1 a:host.example.com/24 -all") HOSTS, NULL,
	    NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "a/0 with no A records does not match",
	    SPF(D, "v=spf1 a:nothing.example.com/0 -all") HOSTS, NULL, NULL,
	    NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "IPv6 client looks at AAAA", SPF(D, "v=spf1 a:host.example.com "
	    "-all") HOSTS, "2001:db8::beef", NULL, NULL, MF, SPF_PASS, NULL,
	    NULL, NULL },
	{ "IPv6 client ignores A", SPF(D, "v=spf1 a:v4only.example.com/0 "
	    "-all") HOSTS, IP6, NULL, NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "a//64 for IPv6", SPF(D, "v=spf1 a:host.example.com//64 -all")
	    HOSTS, IP6, NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "a/24 is not an IPv6 length", SPF(D, "v=spf1 a:host.example.com/24 "
	    "-all") HOSTS, IP6, NULL, NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "dual cidr, IPv4 side", SPF(D, "v=spf1 a:host.example.com/24//64 "
	    "-all") HOSTS, NULL, NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "dual cidr, IPv6 side", SPF(D, "v=spf1 a:host.example.com/24//64 "
	    "-all") HOSTS, IP6, NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "a//33 is a valid IPv6 length", SPF(D, "v=spf1 a//33 -all"), NULL,
	    NULL, NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "a with ':' and '/' inside the domain-spec",
	    SPF(D, "v=spf1 a:foo:bar/baz.example.com -all")
	    "foo:bar/baz.example.com. A 192.0.2.3\n", NULL, NULL, NULL, MF,
	    SPF_PASS, NULL, NULL, NULL },
	{ "a: many addresses, no limit", SPF(D, "v=spf1 a -all")
	    D ". A 192.0.2.11\n" D ". A 192.0.2.12\n" D ". A 192.0.2.13\n"
	    D ". A 192.0.2.14\n" D ". A 192.0.2.15\n" D ". A 192.0.2.16\n"
	    D ". A 192.0.2.17\n" D ". A 192.0.2.18\n" D ". A 192.0.2.19\n"
	    D ". A 192.0.2.20\n" D ". A 192.0.2.21\n" D ". A 192.0.2.3\n",
	    NULL, NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
};

Test(mechanisms, a)
{
	check_all(a_cases, NELEM(a_cases));
}

static const struct spf_case mx_cases[] = {
	{ "mx", SPF(D, "v=spf1 mx -all") D ". MX 10 v4only.example.com.\n"
	    HOSTS, NULL, NULL, NULL, MF, SPF_PASS, "mx", NULL, NULL },
	{ "mx:domain/24", SPF(D, "v=spf1 mx:example.com/24 -all")
	    "example.com. MX 10 host.example.com.\n" HOSTS, NULL, NULL, NULL,
	    MF, SPF_PASS, "mx:example.com/24", NULL, NULL },
	{ "mx for IPv6 looks at AAAA", SPF(D, "v=spf1 mx//64 -all")
	    D ". MX 10 host.example.com.\n" HOSTS, IP6, NULL, NULL, MF,
	    SPF_PASS, NULL, NULL, NULL },
	{ "no implicit MX (§5.4)", SPF(D, "v=spf1 mx -all") D ". A 192.0.2.3\n",
	    NULL, NULL, NULL, MF, SPF_FAIL, "-all", NULL, NULL },
	{ "second MX matches", SPF(D, "v=spf1 mx -all")
	    D ". MX 10 host.example.com.\n" D ". MX 20 v4only.example.com.\n"
	    HOSTS, NULL, NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "an MX host that errs is temperror, even after a match",
	    SPF(D, "v=spf1 mx -all") D ". MX 10 v4only.example.com.\n"
	    D ". MX 20 broken.example.com.\n" "broken.example.com. SERVFAIL\n"
	    HOSTS, NULL, NULL, NULL, MF, SPF_TEMPERROR, "mx",
	    "broken.example.com", NULL },
};

Test(mechanisms, mx)
{
	check_all(mx_cases, NELEM(mx_cases));
}

#define PTR3 "3.2.0.192.in-addr.arpa. PTR "

static const struct spf_case ptr_cases[] = {
	{ "ptr, validated name in the domain", SPF("example.com", "v=spf1 ptr "
	    "-all") PTR3 "mail.example.com.\n" "mail.example.com. A 192.0.2.3\n",
	    NULL, "u@example.com", NULL, MF, SPF_PASS, "ptr", NULL, NULL },
	{ "ptr: the name itself", SPF("example.com", "v=spf1 ptr -all")
	    PTR3 "example.com.\n" "example.com. A 192.0.2.3\n", NULL,
	    "u@example.com", NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "ptr:domain", SPF(D, "v=spf1 ptr:example.org -all")
	    PTR3 "mx.example.org.\n" "mx.example.org. A 192.0.2.3\n", NULL,
	    NULL, NULL, MF, SPF_PASS, "ptr:example.org", NULL, NULL },
	{ "ptr: not within (bad-example.com)", SPF("example.com", "v=spf1 ptr "
	    "-all") PTR3 "mail.bad-example.com.\n"
	    "mail.bad-example.com. A 192.0.2.3\n", NULL, "u@example.com", NULL,
	    MF, SPF_FAIL, NULL, NULL, NULL },
	{ "ptr: name does not validate", SPF("example.com", "v=spf1 ptr -all")
	    PTR3 "mail.example.com.\n" "mail.example.com. A 192.0.2.99\n",
	    NULL, "u@example.com", NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "ptr: PTR lookup error is no match (§5.5)",
	    SPF("example.com", "v=spf1 ptr ~all")
	    "3.2.0.192.in-addr.arpa. SERVFAIL\n", NULL, "u@example.com", NULL,
	    MF, SPF_SOFTFAIL, "~all", NULL, NULL },
	{ "ptr: a name whose A lookup errs is skipped",
	    SPF("example.com", "v=spf1 ptr -all")
	    PTR3 "a.example.com.\n" PTR3 "b.example.com.\n"
	    "a.example.com. SERVFAIL\n" "b.example.com. A 192.0.2.3\n", NULL,
	    "u@example.com", NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "ptr for IPv6", SPF("example.com", "v=spf1 ptr -all")
	    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
	    "ip6.arpa. PTR v6.example.com.\n" "v6.example.com. AAAA " IP6 "\n",
	    IP6, "u@example.com", NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "ptr with cidr is a syntax error", SPF(D, "v=spf1 ptr/0 -all"),
	    NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, "syntax error", NULL },
};

Test(mechanisms, ptr)
{
	check_all(ptr_cases, NELEM(ptr_cases));
}

static const struct spf_case exists_cases[] = {
	{ "exists: an A record", SPF(D, "v=spf1 exists:ok.example.com -all")
	    "ok.example.com. A 127.0.0.2\n", NULL, NULL, NULL, MF, SPF_PASS,
	    "exists:ok.example.com", NULL, NULL },
	{ "exists: no A record", SPF(D, "v=spf1 exists:no.example.com -all"),
	    NULL, NULL, NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "exists looks up A also for IPv6 clients",
	    SPF(D, "v=spf1 exists:six.example.com -all")
	    "six.example.com. AAAA 2001:db8::1\n", IP6, NULL, NULL, MF,
	    SPF_FAIL, NULL, NULL, NULL },
	{ "exists: an A record, IPv6 client",
	    SPF(D, "v=spf1 exists:ok.example.com -all")
	    "ok.example.com. A 127.0.0.2\n", IP6, NULL, NULL, MF, SPF_PASS,
	    NULL, NULL, NULL },
	{ "exists: DNS error", SPF(D, "v=spf1 exists:err.example.com -all")
	    "err.example.com. SERVFAIL\n", NULL, NULL, NULL, MF,
	    SPF_TEMPERROR, "exists:err.example.com", "err.example.com", NULL },
	{ "exists without ':'", SPF(D, "v=spf1 exists"), NULL, NULL, NULL, MF,
	    SPF_PERMERROR, NULL, "syntax error", NULL },
	{ "exists with cidr", SPF(D, "v=spf1 exists:ok.example.com/24"), NULL,
	    NULL, NULL, MF, SPF_PERMERROR, NULL, NULL, NULL },
};

Test(mechanisms, exists)
{
	check_all(exists_cases, NELEM(exists_cases));
}

/* §5.2, the table: what the included evaluation causes */
#define INC(rec) SPF(D, "v=spf1 include:inc.example.com ~all") \
	SPF("inc.example.com", rec)

static const struct spf_case include_cases[] = {
	{ "include pass matches", INC("v=spf1 ip4:192.0.2.3 -all"), NULL, NULL,
	    NULL, MF, SPF_PASS, "include:inc.example.com",
	    "sender IP 192.0.2.3 matched ip4:192.0.2.3 in inc.example.com, "
	    "included by include:inc.example.com in " D, NULL },
	{ "include fail does not match", INC("v=spf1 -all"), NULL, NULL, NULL,
	    MF, SPF_SOFTFAIL, "~all", NULL, NULL },
	{ "include softfail does not match", INC("v=spf1 ~all"), NULL, NULL,
	    NULL, MF, SPF_SOFTFAIL, "~all", NULL, NULL },
	{ "include neutral does not match", INC("v=spf1 ?all"), NULL, NULL,
	    NULL, MF, SPF_SOFTFAIL, "~all", NULL, NULL },
	{ "include default neutral does not match", INC("v=spf1"), NULL, NULL,
	    NULL, MF, SPF_SOFTFAIL, NULL, NULL, NULL },
	{ "include temperror is temperror",
	    SPF(D, "v=spf1 include:inc.example.com ~all")
	    "inc.example.com. SERVFAIL\n", NULL, NULL, NULL, MF, SPF_TEMPERROR,
	    "include:inc.example.com", NULL, NULL },
	{ "include permerror is permerror", INC("v=spf1 moo"), NULL, NULL,
	    NULL, MF, SPF_PERMERROR, "moo", "inc.example.com", NULL },
	{ "include none is permerror",
	    SPF(D, "v=spf1 include:inc.example.com ~all")
	    "inc.example.com. TXT \"not spf\"\n", NULL, NULL, NULL, MF,
	    SPF_PERMERROR, "include:inc.example.com", "gives none", NULL },
	{ "include of a missing domain is permerror",
	    SPF(D, "v=spf1 include:nowhere.example.com ~all"), NULL, NULL, NULL,
	    MF, SPF_PERMERROR, NULL, "NXDOMAIN", NULL },
	{ "-include", SPF(D, "v=spf1 -include:inc.example.com +all")
	    SPF("inc.example.com", "v=spf1 ip4:192.0.2.0/24"), NULL, NULL, NULL,
	    MF, SPF_FAIL, "-include:inc.example.com", NULL, NULL },
	{ "include of a domain with a final dot",
	    SPF(D, "v=spf1 include:inc.example.com. -all")
	    SPF("inc.example.com", "v=spf1 +all"), NULL, NULL, NULL, MF,
	    SPF_PASS, NULL, NULL, NULL },
	{ "include without a domain", SPF(D, "v=spf1 include -all"), NULL,
	    NULL, NULL, MF, SPF_PERMERROR, NULL, NULL, NULL },
	{ "include with cidr", SPF(D, "v=spf1 include:inc.example.com/24 "
	    "-all"), NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, NULL, NULL },
};

Test(mechanisms, include)
{
	check_all(include_cases, NELEM(include_cases));
}

/* ------------------------------------------------------------- modifiers */

static const struct spf_case redirect_cases[] = {
	{ "redirect", SPF(D, "v=spf1 redirect=_spf.example.com")
	    SPF("_spf.example.com", "v=spf1 ip4:192.0.2.0/24 -all"), NULL, NULL,
	    NULL, MF, SPF_PASS, "ip4:192.0.2.0/24",
	    "in _spf.example.com (redirected from " D ")", NULL },
	{ "redirect result fail", SPF(D, "v=spf1 redirect=_spf.example.com")
	    SPF("_spf.example.com", "v=spf1 -all"), NULL, NULL, NULL, MF,
	    SPF_FAIL, "-all", NULL, NULL },
	{ "redirect is ignored when the record has all",
	    SPF(D, "v=spf1 redirect=_spf.example.com ?all")
	    SPF("_spf.example.com", "v=spf1 +all"), NULL, NULL, NULL, MF,
	    SPF_NEUTRAL, "?all", NULL, NULL },
	{ "redirect to a domain without record is permerror",
	    SPF(D, "v=spf1 redirect=nowhere.example.com"), NULL, NULL, NULL, MF,
	    SPF_PERMERROR, "redirect=nowhere.example.com", "NXDOMAIN", NULL },
	{ "redirect to a non-SPF TXT is permerror",
	    SPF(D, "v=spf1 redirect=txt.example.com")
	    "txt.example.com. TXT \"hello\"\n", NULL, NULL, NULL, MF,
	    SPF_PERMERROR, NULL, NULL, NULL },
	{ "redirect to a malformed name is permerror",
	    SPF(D, "v=spf1 redirect=%{l}"), NULL, NULL, NULL, MF,
	    SPF_PERMERROR, NULL, "not a valid domain", NULL },
	{ "redirect with macros and a final dot",
	    SPF(D, "v=spf1 redirect=%{d}.d.spf.example.com.")
	    SPF(D ".d.spf.example.com", "v=spf1 ip4:192.0.2.3"), NULL, NULL,
	    NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "redirect chain", SPF(D, "v=spf1 redirect=r1.example.com")
	    SPF("r1.example.com", "v=spf1 redirect=r2.example.com")
	    SPF("r2.example.com", "v=spf1 ~all"), NULL, NULL, NULL, MF,
	    SPF_SOFTFAIL, "~all", NULL, NULL },
	{ "redirect temperror", SPF(D, "v=spf1 redirect=r1.example.com")
	    "r1.example.com. SERVFAIL\n", NULL, NULL, NULL, MF, SPF_TEMPERROR,
	    NULL, NULL, NULL },
	{ "redirect twice", SPF(D, "v=spf1 redirect=a.example.com "
	    "redirect=a.example.com"), NULL, NULL, NULL, MF, SPF_PERMERROR,
	    NULL, "appears twice", NULL },
	{ "redirect with an empty domain-spec",
	    SPF(D, "v=spf1 ?all redirect="), NULL, NULL, NULL, MF,
	    SPF_PERMERROR, NULL, NULL, NULL },
	{ "redirect=-all is a syntax error", SPF(D, "v=spf1 redirect=-all "
	    "?all"), NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, NULL, NULL },
	{ "redirect: is a mechanism (unknown)", SPF(D, "v=spf1 ip4:192.0.2.3 "
	    "redirect:r1.example.com"), NULL, NULL, NULL, MF, SPF_PERMERROR,
	    NULL, "unknown mechanism", NULL },
	{ "REDIRECT in capitals", SPF(D, "v=spf1 REDIRECT=r1.example.com")
	    SPF("r1.example.com", "v=spf1 -all"), NULL, NULL, NULL, MF,
	    SPF_FAIL, NULL, NULL, NULL },
};

Test(modifiers, redirect)
{
	check_all(redirect_cases, NELEM(redirect_cases));
}

#define EXPZ(rec, text) SPF(D, rec) "explain.example.com. TXT \"" text "\"\n"

static const struct spf_case exp_cases[] = {
	{ "exp on fail", EXPZ("v=spf1 -all exp=explain.example.com",
	    "%{i} is not one of %{d}'s designated mail servers."), NULL, NULL,
	    NULL, MF, SPF_FAIL, "-all", NULL,
	    "192.0.2.3 is not one of " D "'s designated mail servers." },
	{ "no exp on softfail", EXPZ("v=spf1 ~all exp=explain.example.com",
	    "no"), NULL, NULL, NULL, MF, SPF_SOFTFAIL, NULL, NULL, "" },
	{ "no exp on pass", EXPZ("v=spf1 +all exp=explain.example.com",
	    "no"), NULL, NULL, NULL, MF, SPF_PASS, NULL, NULL, "" },
	{ "exp macros c, r, t", EXPZ("v=spf1 -all exp=explain.example.com",
	    "%{c} at %{r} %{t}"), NULL, NULL, NULL, MF, SPF_FAIL, NULL, NULL,
	    "192.0.2.3 at mx.receiver.test 1234567890" },
	{ "exp %{c} for IPv6", EXPZ("v=spf1 -all exp=explain.example.com",
	    "%{c} %{v}"), IP6, NULL, NULL, MF, SPF_FAIL, NULL, NULL,
	    "2001:db8::cb01 ip6" },
	{ "exp: trailing dot kept in the text",
	    EXPZ("v=spf1 -all exp=explain.example.com.", "This is a test."),
	    NULL, NULL, NULL, MF, SPF_FAIL, NULL, NULL, "This is a test." },
	{ "exp: two TXT records means none",
	    EXPZ("v=spf1 -all exp=explain.example.com", "one")
	    "explain.example.com. TXT \"two\"\n", NULL, NULL, NULL, MF,
	    SPF_FAIL, NULL, NULL, "" },
	{ "exp: no TXT", SPF(D, "v=spf1 -all exp=nothing.example.com"), NULL,
	    NULL, NULL, MF, SPF_FAIL, NULL, NULL, "" },
	{ "exp: DNS error", SPF(D, "v=spf1 -all exp=explain.example.com")
	    "explain.example.com. SERVFAIL\n", NULL, NULL, NULL, MF, SPF_FAIL,
	    NULL, NULL, "" },
	{ "exp: syntax error in the text",
	    EXPZ("v=spf1 -all exp=explain.example.com", "The %{x}-files."),
	    NULL, NULL, NULL, MF, SPF_FAIL, NULL, NULL, "" },
	{ "exp: non-ASCII text", EXPZ("v=spf1 -all exp=explain.example.com",
	    "\\239\\187\\191Explanation"), NULL, NULL, NULL, MF, SPF_FAIL,
	    NULL, NULL, "" },
	{ "exp: empty domain-spec is permerror", SPF(D, "v=spf1 exp= -all"),
	    NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, NULL, NULL },
	{ "exp=-all is a syntax error", SPF(D, "v=spf1 exp=-all"), NULL, NULL,
	    NULL, MF, SPF_PERMERROR, NULL, NULL, NULL },
	{ "exp twice", SPF(D, "v=spf1 exp=a.example.com -all "
	    "exp=b.example.com"), NULL, NULL, NULL, MF, SPF_PERMERROR, NULL,
	    "appears twice", NULL },
	{ "exp of an include target is not used",
	    SPF(D, "v=spf1 include:inc.example.com -all exp=exp3.example.com")
	    SPF("inc.example.com", "v=spf1 -all exp=exp1.example.com")
	    "exp1.example.com. TXT \"No-see-um\"\n"
	    "exp3.example.com. TXT \"Correct!\"\n", NULL, NULL, NULL, MF,
	    SPF_FAIL, "-all", NULL, "Correct!" },
	{ "redirect: the original exp is not used",
	    SPF(D, "v=spf1 exp=exp1.example.com redirect=r.example.com")
	    SPF("r.example.com", "v=spf1 -all")
	    "exp1.example.com. TXT \"No-see-um\"\n", NULL, NULL, NULL, MF,
	    SPF_FAIL, NULL, NULL, "" },
	{ "redirect: the target's exp is used",
	    SPF(D, "v=spf1 exp=exp1.example.com redirect=r.example.com")
	    SPF("r.example.com", "v=spf1 -all exp=exp2.example.com")
	    "exp1.example.com. TXT \"No-see-um\"\n"
	    "exp2.example.com. TXT \"See me.\"\n", NULL, NULL, NULL, MF,
	    SPF_FAIL, NULL, NULL, "See me." },
	{ "exp lookups are not void lookups",
	    SPF(D, "v=spf1 a:nx1.example.com a:nx2.example.com "
	    "exp=nx3.example.com -all"), NULL, NULL, NULL, MF, SPF_FAIL,
	    "-all", NULL, "" },
	{ "exp: %{p} in the text", EXPZ("v=spf1 -all exp=explain.example.com",
	    "connect from %{p}") PTR3 "mx.example.org.\n"
	    "mx.example.org. A 192.0.2.3\n", NULL, NULL, NULL, MF, SPF_FAIL,
	    NULL, NULL, "connect from mx.example.org" },
	{ "exp: %{p} without validated name", EXPZ("v=spf1 -all "
	    "exp=explain.example.com", "connect from %{p}"), NULL, NULL, NULL,
	    MF, SPF_FAIL, NULL, NULL, "connect from unknown" },
	{ "exp: uppercase macro URL-escapes", EXPZ("v=spf1 -all "
	    "exp=msg8.%{D2}", "") "msg8.example.com. TXT "
	    "\"http://example.com/why.html?l=%{L}\"\n", NULL,
	    "jack&jill=up@" D, NULL, MF, SPF_FAIL, NULL, NULL,
	    "http://example.com/why.html?l=jack%26jill%3Dup" },
};

Test(modifiers, exp)
{
	check_all(exp_cases, NELEM(exp_cases));
}

static const struct spf_case unknown_mod_cases[] = {
	{ "unknown modifiers are ignored, even repeated",
	    SPF(D, "v=spf1 moo=bar ip4:192.0.2.3 moo=baz op=x -all op=y"), NULL,
	    NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "name with '-', '_' and '.'", SPF(D, "v=spf1 moo.cow-far_out=man:dog"
	    "/cat ip4:192.0.2.3 -all"), NULL, NULL, NULL, MF, SPF_PASS, NULL,
	    NULL, NULL },
	{ "an old default= modifier means nothing", SPF(D, "v=spf1 "
	    "default=pass"), NULL, NULL, NULL, MF, SPF_NEUTRAL, NULL, NULL,
	    NULL },
	{ "empty value", SPF(D, "v=spf1 moo= -all"), NULL, NULL, NULL, MF,
	    SPF_FAIL, NULL, NULL, NULL },
	{ "value must be a macro-string", SPF(D, "v=spf1 -all foo=%abc"), NULL,
	    NULL, NULL, MF, SPF_PERMERROR, NULL, "syntax error", NULL },
	{ "name must start with a letter", SPF(D, "v=spf1 1up=foo"), NULL,
	    NULL, NULL, MF, SPF_PERMERROR, NULL, NULL, NULL },
	{ "empty name", SPF(D, "v=spf1 =all"), NULL, NULL, NULL, MF,
	    SPF_PERMERROR, NULL, NULL, NULL },
	{ "'/' before '=' makes a mechanism",
	    SPF(D, "v=spf1 moo.cow/far_out=man:dog/cat ip4:192.0.2.3 -all"),
	    NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, NULL, NULL },
	{ "':' before '=' makes a mechanism",
	    SPF(D, "v=spf1 moo.cow:far_out=man:dog/cat ip4:192.0.2.3 -all"),
	    NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, NULL, NULL },
};

Test(modifiers, unknown)
{
	check_all(unknown_mod_cases, NELEM(unknown_mod_cases));
}

/* ---------------------------------------------------- records and syntax */

static const struct spf_case record_cases[] = {
	{ "no such domain: none", "other.example.com. A 192.0.2.3\n", NULL,
	    NULL, NULL, MF, SPF_NONE, "", "NXDOMAIN", NULL },
	{ "no TXT: none", D ". A 192.0.2.3\n", NULL, NULL, NULL, MF, SPF_NONE,
	    NULL, "no SPF record", NULL },
	{ "TXT but not SPF: none", D ". TXT \"hello\"\n", NULL, NULL, NULL, MF,
	    SPF_NONE, NULL, NULL, NULL },
	{ "v=spf10 is not v=spf1", SPF(D, "v=spf10 -all"), NULL, NULL, NULL,
	    MF, SPF_NONE, NULL, NULL, NULL },
	{ "v=spf10 beside a real one", SPF(D, "v=spf10") SPF(D, "v=spf1 mx")
	    D ". MX 0 v4only.example.com.\n" HOSTS, NULL, NULL, NULL, MF,
	    SPF_PASS, NULL, NULL, NULL },
	{ "version is case-insensitive", SPF(D, "V=sPf1 ~all"), NULL, NULL,
	    NULL, MF, SPF_SOFTFAIL, NULL, NULL, NULL },
	{ "two SPF records: permerror", SPF(D, "v=spf1 -all")
	    SPF(D, "V=sPf1 +all"), NULL, NULL, NULL, MF, SPF_PERMERROR, "",
	    "2 SPF records", NULL },
	{ "other TXT records are ignored", SPF(D, "v=spf1 -all")
	    D ". TXT \"google-site-verification=x\"\n" D ". TXT \"\\150\"\n",
	    NULL, NULL, NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "strings are joined without spaces", D ". TXT \"v=spf1 ip4:192.0.2"
	    "\" \".3 -all\"\n", NULL, NULL, NULL, MF, SPF_PASS, NULL, NULL,
	    NULL },
	{ "joined strings need their own space", D ". TXT \"v=spf1\" "
	    "\"+all\"\n", NULL, NULL, NULL, MF, SPF_NONE, NULL, NULL, NULL },
	{ "several spaces and a trailing one", SPF(D, "v=spf1   ip4:192.0.2.3"
	    "    -all "), NULL, NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "TXT lookup error: temperror", D ". SERVFAIL\n", NULL, NULL, NULL,
	    MF, SPF_TEMPERROR, "", "looking up TXT " D, NULL },
};

Test(records, selection)
{
	check_all(record_cases, NELEM(record_cases));
}

/* §4.6: a syntax error anywhere is permerror, before anything is
 * evaluated (the first term would pass). */
static const char *const bad_terms[] = {
	"moo", "-all.", "-all/8", "-all:foobar", "=a", "ip4", "ip4:",
	"ip4:192.0.2", "ip4:192.0.2.1/33", "ip4:192.0.2.1/032",
	"ip4:192.0.2.01", "ip4:192.0.2.256", "ip4:192.0.2.1//32",
	"ip4:192.0.2.1:8080", "ip4:192.0.2.1/", "ip6", "ip6:", "ip6::CAFE::BABE",
	"ip6:::1.1.1.1/129", "ip6:::1.1.1.1//33", "ip6:2001:db8::/0128",
	"a:", "a/33", "a//129", "a/24/64", "a:example.com:8080", "a:abc.123",
	"a:museum", "a:museum.", "a:example.-com", "a:foo-bar", "a:111.222.33.44",
	"a:%{d}.", "mx:", "mx/33", "mx//129", "mx:abc.123", "mx:example.-com",
	"include:", "include", "include:example.com/24", "exists:", "exists",
	"exists:%(ir).sbl.example.com", "exists:foo%.sbl.example.com",
	"exists:%{a}.example.com", "exists:%{d0}.example.com",
	"exists:%{d}x", "exists:%{ir", "exists:%{i!}.example.com",
	"exists:%{c}.example.com", "exists:%{r}.example.com",
	"exists:%{t}.example.com", "exp=%{r}.example.com", "ptr:", "ptr/24",
	"a:foo\\009bar.example.com", "\\200all", "a:\\239\\187\\191x.example.net",
	"+", "redirect", "exp", "redirect=", "exp=", "redirect=foo",
};

Test(records, syntax_errors)
{
	char zone[512], desc[160];
	size_t i;

	for (i = 0; i < NELEM(bad_terms); i++) {
		struct spf_case c = { desc, zone, NULL, NULL, NULL, MF,
		    SPF_PERMERROR, NULL, "syntax error", NULL };

		snprintf(zone, sizeof(zone), D ". TXT \"v=spf1 ip4:192.0.2.3 "
		    "%s -all\"\n", bad_terms[i]);
		snprintf(desc, sizeof(desc), "bad term %s", bad_terms[i]);
		check(&c);
	}
}

static const char *const good_terms[] = {
	"ip4:0.0.0.0/0", "ip4:255.255.255.255", "ip6:::", "ip6:::1",
	"ip6:::ffff:1.2.3.4/96", "ip6:1:2:3:4:5:6:7:8/128",
	"a:example.xn--zckzah", "a:foo.1-2", "a/0//0", "mx/32//128",
	"a:%{d}", "exists:%%.%_.%-.example.com", "exists:%{lr-+,/_=}.x.example",
	"exists:%{d1}.x.example", "exists:%{d127r}.x.example",
	"exists:%{D}.example", "ptr:%{d2}", "include:%{o}.x.example",
	"x=%{c}%{r}%{t}", "a:foo.example.", "a:.com",
};

Test(records, good_syntax)
{
	char zone[512], desc[160];
	size_t i;

	for (i = 0; i < NELEM(good_terms); i++) {
		/* the good term comes after a matching ip4, so only its
		 * syntax matters */
		struct spf_case c = { desc, zone, NULL, NULL, NULL, MF,
		    SPF_PASS, "ip4:192.0.2.3", NULL, NULL };

		snprintf(zone, sizeof(zone), D ". TXT \"v=spf1 ip4:192.0.2.3 "
		    "%s -all\"\n", good_terms[i]);
		snprintf(desc, sizeof(desc), "good term %s", good_terms[i]);
		if (strncmp(good_terms[i], "x=", 2) == 0) {
			c.want = SPF_PERMERROR;	/* c, r, t: exp text only */
			c.mech = NULL;
		}
		check(&c);
	}
}

/* ------------------------------------------------- identities (§2, §4.3) */

static const struct spf_case identity_cases[] = {
	{ "HELO identity", SPF(HELO, "v=spf1 a -all") HELO ". A 192.0.2.3\n",
	    NULL, NULL, NULL, HE, SPF_PASS, "a", "in " HELO, NULL },
	{ "HELO: %{s} is postmaster@helo", SPF(HELO, "v=spf1 -all "
	    "exp=e.example.com") "e.example.com. TXT \"%{s} %{l} %{o} %{h}\"\n",
	    NULL, NULL, NULL, HE, SPF_FAIL, NULL, NULL,
	    "postmaster@" HELO " postmaster " HELO " " HELO },
	{ "HELO address literal: none", SPF(HELO, "v=spf1 +all"), NULL, NULL,
	    "[192.0.2.3]", HE, SPF_NONE, "", "not a valid", NULL },
	{ "HELO single label: none", "OEMCOMPUTER. TXT \"v=spf1 +all\"\n",
	    NULL, NULL, "OEMCOMPUTER", HE, SPF_NONE, NULL, NULL, NULL },
	{ "HELO IP address: none", "", NULL, NULL,
	    "192.0.2.3", HE, SPF_NONE, NULL, NULL, NULL },
	{ "null sender uses the HELO domain", SPF(HELO, "v=spf1 -all "
	    "exp=e.example.com") "e.example.com. TXT \"%{s}\"\n", NULL, "",
	    NULL, MF, SPF_FAIL, NULL, NULL, "postmaster@" HELO },
	{ "no local-part: postmaster", SPF("example.net", "v=spf1 -all "
	    "exp=e.example.com") "e.example.com. TXT \"%{s} %{l}\"\n", NULL,
	    "@example.net", NULL, MF, SPF_FAIL, NULL, NULL,
	    "postmaster@example.net postmaster" },
	{ "sender without @ is a domain", SPF("example.net", "v=spf1 -all "
	    "exp=e.example.com") "e.example.com. TXT \"%{s}\"\n", NULL,
	    "example.net", NULL, MF, SPF_FAIL, NULL, NULL,
	    "postmaster@example.net" },
	{ "label of 63 octets", SPF("a12345678901234567890123456789012345678901"
	    "234567890123456789012.example.com", "v=spf1 -all"), NULL,
	    "u@a123456789012345678901234567890123456789012345678901234567890"
	    "12.example.com", NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "label of 64 octets: none", "", NULL, "u@a123456789012345678901234"
	    "678901234567890123456789012345678901234.example.com", NULL, MF,
	    SPF_NONE, NULL, NULL, NULL },
	{ "empty label: none", "", NULL, "u@A...example.com", NULL, MF,
	    SPF_NONE, NULL, NULL, NULL },
	{ "address literal domain: none", "", NULL, "foo@[192.0.2.3]", NULL,
	    MF, SPF_NONE, NULL, NULL, NULL },
	{ "final dot in the sender domain", SPF("example.net", "v=spf1 -all"),
	    NULL, "u@example.net.", NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "domain case does not matter", SPF("example.net", "v=spf1 -all"),
	    NULL, "u@EXAMPLE.Net", NULL, MF, SPF_FAIL, NULL, NULL, NULL },
	{ "spaces in a local-part", SPF("example.net", "v=spf1 -all "
	    "exp=e.example.com") "e.example.com. TXT \"%{l} in implementation"
	    "\"\n", NULL, "Macro Error@example.net", NULL, MF, SPF_FAIL, NULL,
	    NULL, "Macro Error in implementation" },
};

Test(identities, helo_and_mailfrom)
{
	check_all(identity_cases, NELEM(identity_cases));
}

Test(identities, check_both)
{
	const char *zone = SPF(HELO, "v=spf1 a -all") HELO ". A 192.0.2.3\n"
	    SPF(D, "v=spf1 ~all");
	struct zonefile *z;
	struct pdns dns;
	struct spf_request req;
	struct spf_result helo, mf;

	serve(zone, &z, &dns);
	request(&req, NULL, NULL, NULL, MF);
	cr_assert_eq(spf_check_both(&dns, &req, &helo, &mf), DKIM_OK);
	cr_expect_eq(helo.identity, SPF_ID_HELO);
	cr_expect_eq(helo.result, SPF_PASS, "helo got %s",
	    spf_res_str(helo.result));
	cr_expect_str_eq(helo.domain, HELO);
	cr_expect_str_eq(helo.sender, "postmaster@" HELO);
	cr_expect_eq(mf.identity, SPF_ID_MAILFROM);
	cr_expect_eq(mf.result, SPF_SOFTFAIL, "mailfrom got %s",
	    spf_res_str(mf.result));
	cr_expect_str_eq(mf.domain, D);
	cr_expect_str_eq(mf.sender, FROM);

	/* a bad HELO: none for it, MAIL FROM still evaluated */
	req.helo = "[192.0.2.3]";
	req.helo_len = strlen(req.helo);
	cr_assert_eq(spf_check_both(&dns, &req, &helo, &mf), DKIM_OK);
	cr_expect_eq(helo.result, SPF_NONE);
	cr_expect_eq(mf.result, SPF_SOFTFAIL);
	zonefile_free(z);
}

Test(api, names_and_arguments)
{
	struct spf_request req;
	struct spf_result res;
	struct zonefile *z;
	struct pdns dns;
	static const char *const names[] = { "none", "neutral", "pass",
	    "fail", "softfail", "temperror", "permerror" };
	int i;

	for (i = SPF_NONE; i <= SPF_PERMERROR; i++)
		cr_expect_str_eq(spf_res_str((enum spf_res)i), names[i]);
	cr_expect_str_eq(spf_identity_str(SPF_ID_HELO), "helo");
	cr_expect_str_eq(spf_identity_str(SPF_ID_MAILFROM), "mailfrom");

	serve(SPF(D, "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"), &z,
	    &dns);
	request(&req, "not-an-ip", NULL, NULL, MF);
	cr_expect_eq(spf_check(&dns, &req, &res), DKIM_E_ARG);
	cr_expect_eq(res.result, SPF_TEMPERROR);
	cr_expect(strstr(res.reason, "not an IP address") != NULL);
	cr_expect_eq(spf_check(&dns, NULL, &res), DKIM_E_ARG);
	cr_expect_eq(spf_check(&dns, &req, NULL), DKIM_E_ARG);

	/* the address as bytes */
	request(&req, NULL, NULL, NULL, MF);
	req.ip = NULL;
	req.family = AF_INET;
	memcpy(req.addr, "\xc0\x00\x02\x03", 4);
	cr_expect_eq(spf_check(&dns, &req, &res), DKIM_OK);
	cr_expect_eq(res.result, SPF_PASS, "got %s", spf_res_str(res.result));
	req.family = AF_INET6;
	memcpy(req.addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	cr_expect_eq(spf_check(&dns, &req, &res), DKIM_OK);
	cr_expect_eq(res.result, SPF_PASS);
	memcpy(req.addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff\xc6\x33\x64\x01", 16);
	cr_expect_eq(spf_check(&dns, &req, &res), DKIM_OK);
	cr_expect_eq(res.result, SPF_FAIL, "mapped 198.51.100.1: got %s",
	    spf_res_str(res.result));
	cr_expect(strstr(res.reason, "198.51.100.1") != NULL, "%s",
	    res.reason);

	/* no resolver: temperror, not a crash */
	request(&req, NULL, NULL, NULL, MF);
	cr_expect_eq(spf_check(NULL, &req, &res), DKIM_OK);
	cr_expect_eq(res.result, SPF_TEMPERROR);

	/* the identity from the wire may be junk */
	req.mail_from = "a\0b@" D;
	req.mail_from_len = 4 + strlen(D);
	cr_expect_eq(spf_check(&dns, &req, &res), DKIM_OK);
	cr_expect_eq(res.result, SPF_NONE);
	zonefile_free(z);
}

/* ---------------------------------------------------------------- macros */

/* RFC 7208 §7.4, exactly: <sender> strong-bad@email.example.com, IPv4
 * 192.0.2.3, IPv6 2001:db8::cb01, PTR mx.example.org. Each macro is run
 * as an explanation (the text is returned as it expands). */
static const struct {
	const char *macro, *want;
} rfc_7_4[] = {
	{ "%{s}", "strong-bad@email.example.com" },
	{ "%{o}", "email.example.com" },
	{ "%{d}", "email.example.com" },
	{ "%{d4}", "email.example.com" },
	{ "%{d3}", "email.example.com" },
	{ "%{d2}", "example.com" },
	{ "%{d1}", "com" },
	{ "%{dr}", "com.example.email" },
	{ "%{d2r}", "example.email" },
	{ "%{l}", "strong-bad" },
	{ "%{l-}", "strong.bad" },
	{ "%{lr}", "strong-bad" },
	{ "%{lr-}", "bad.strong" },
	{ "%{l1r-}", "strong" },
	{ "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
	{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
	{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
	    "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
	{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
	    "3.2.0.192.in-addr.strong.lp._spf.example.com" },
	{ "%{d2}.trusted-domains.example.net",
	    "example.com.trusted-domains.example.net" },
};

#define RFC_ZONE(text) \
	SPF(D, "v=spf1 -all exp=explain.example.com") \
	"explain.example.com. TXT \"" text "\"\n" \
	PTR3 "mx.example.org.\n" "mx.example.org. A 192.0.2.3\n"

Test(macros, rfc7208_7_4_examples)
{
	char zone[1024], desc[128];
	size_t i;

	for (i = 0; i < NELEM(rfc_7_4); i++) {
		struct spf_case c = { desc, zone, NULL, NULL, NULL, MF,
		    SPF_FAIL, "-all", NULL, rfc_7_4[i].want };

		snprintf(zone, sizeof(zone), RFC_ZONE("%s"), rfc_7_4[i].macro);
		snprintf(desc, sizeof(desc), "§7.4 %s", rfc_7_4[i].macro);
		check(&c);
	}
}

Test(macros, rfc7208_7_4_ipv6)
{
	struct spf_case c = { "§7.4 IPv6", RFC_ZONE("%{ir}.%{v}._spf.%{d2}"),
	    IP6, NULL, NULL, MF, SPF_FAIL, NULL, NULL,
	    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
	    "ip6._spf.example.com" };

	check(&c);
}

/* The §7.4 macro-strings used where they belong: as names to look up.
 * Each expansion is published, so exists: matches only if it is right. */
Test(macros, rfc7208_7_4_as_names)
{
	char zone[1024], desc[128];
	size_t i;

	for (i = 14; i < NELEM(rfc_7_4); i++) {
		struct spf_case c = { desc, zone, NULL, NULL, NULL, MF,
		    SPF_PASS, NULL, NULL, NULL };

		snprintf(zone, sizeof(zone), D ". TXT \"v=spf1 exists:%s "
		    "-all\"\n%s. A 127.0.0.2\n", rfc_7_4[i].macro,
		    rfc_7_4[i].want);
		snprintf(desc, sizeof(desc), "exists:%s", rfc_7_4[i].macro);
		check(&c);
	}
}

static const struct spf_case macro_cases[] = {
	{ "%% and %- in a name", SPF(D, "v=spf1 a:macro%%percent%-url-space."
	    "example.com -all") "macro%percent%20url-space.example.com. "
	    "A 192.0.2.3\n", NULL, NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "%% %_ %- in an explanation", EXPZ("v=spf1 -all "
	    "exp=explain.example.com", "100%% a%_b%-c"), NULL, NULL, NULL, MF,
	    SPF_FAIL, NULL, NULL, "100% a b%20c" },
	{ "%{p}: the domain itself preferred", SPF(D, "v=spf1 exists:%{p}.ok."
	    "example.net -all") PTR3 "mx.other.test.\n" PTR3 D ".\n"
	    "mx.other.test. A 192.0.2.3\n" D ". A 192.0.2.3\n"
	    D ".ok.example.net. A 127.0.0.2\n", NULL, NULL, NULL, MF,
	    SPF_PASS, NULL, NULL, NULL },
	{ "%{p}: a subdomain preferred", SPF(D, "v=spf1 exists:%{p}.ok."
	    "example.net -all") PTR3 "mx.other.test.\n" PTR3 "mx." D ".\n"
	    "mx.other.test. A 192.0.2.3\n" "mx." D ". A 192.0.2.3\n"
	    "mx." D ".ok.example.net. A 127.0.0.2\n", NULL, NULL, NULL, MF,
	    SPF_PASS, NULL, NULL, NULL },
	{ "%{p}: unknown when nothing validates", SPF(D, "v=spf1 "
	    "exists:%{p}.ok.example.net -all") PTR3 "mx.other.test.\n"
	    "unknown.ok.example.net. A 127.0.0.2\n", NULL, NULL, NULL, MF,
	    SPF_PASS, NULL, NULL, NULL },
	{ "%{p}: unknown on a PTR error", SPF(D, "v=spf1 exists:%{p}.ok."
	    "example.net -all") "3.2.0.192.in-addr.arpa. SERVFAIL\n"
	    "unknown.ok.example.net. A 127.0.0.2\n", NULL, NULL, NULL, MF,
	    SPF_PASS, NULL, NULL, NULL },
	{ "%{h} is the HELO argument", SPF(D, "v=spf1 -a:%{h} +all")
	    HELO ". A 192.0.2.3\n", NULL, NULL, NULL, MF, SPF_FAIL, "-a:%{h}",
	    NULL, NULL },
	{ "%{H} of a domain literal is queried, no match",
	    SPF(D, "v=spf1 a:%{H} -all"), NULL, NULL, "[192.0.2.3]", MF,
	    SPF_FAIL, "-all", NULL, NULL },
	{ "several delimiters", SPF(D, "v=spf1 exists:%{l2r+-}.user.%{d2}")
	    "bar.foo.user.example.com. A 127.0.0.2\n", NULL,
	    "foo-bar+zip+quux@" D, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "split, reverse, right-hand parts", SPF(D, "v=spf1 exists:%{i}."
	    "%{l2r-}.user.%{d2}") "192.0.2.3.gladstone.philip.user.example.com."
	    " A 127.0.0.2\n", NULL, "philip-gladstone-test@" D, NULL, MF,
	    SPF_PASS, NULL, NULL, NULL },
	{ "delimiters rejoin with '.' for every letter",
	    SPF("a-b.example.com", "v=spf1 -all exp=explain.example.com")
	    "explain.example.com. TXT \"%{d-} %{o-} %{h-.}\"\n",
	    NULL, "u@a-b.example.com", "x-y.example.org", MF, SPF_FAIL, NULL,
	    NULL, "a.b.example.com a.b.example.com x.y.example.org" },
	{ "empty parts are kept", EXPZ("v=spf1 -all exp=explain.example.com",
	    "[%{l.}] [%{l1}] [%{lr}]"), NULL, ".a..b.@" D, NULL, MF, SPF_FAIL,
	    NULL, NULL, "[.a..b.] [] [.b..a.]" },
	{ "more digits than parts", EXPZ("v=spf1 -all exp=explain.example.com",
	    "%{d127} %{d999999999999}"), NULL, NULL, NULL, MF, SPF_FAIL, NULL,
	    NULL, D " " D },
	{ "uppercase macros URL-escape", EXPZ("v=spf1 -all "
	    "exp=explain.example.com", "%{S} %{L} %{O}"), NULL, "a~b_c.d/e@" D,
	    NULL, MF, SPF_FAIL, NULL, NULL,
	    "a~b_c.d%2Fe%40" D " a~b_c.d%2Fe " D },
	{ "%{i2r} for IPv6", EXPZ("v=spf1 -all exp=explain.example.com",
	    "%{i2r} %{i1}"), IP6, NULL, NULL, MF, SPF_FAIL, NULL, NULL,
	    "0.2 1" },
	{ "c, r, t only in explanations", SPF(D, "v=spf1 a:%{t}.example.com"),
	    NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, "explanation", NULL },
};

Test(macros, expansion)
{
	check_all(macro_cases, NELEM(macro_cases));
}

/* §7.3: an expanded name over 253 octets loses labels on the left. */
Test(macros, truncation_to_253)
{
	/* o = 29 octets; "foobar" + 9 x ".o" + ".example.com" = 288 */
	const char *rec = "v=spf1 exists:foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}."
	    "%{o}.%{o}.%{o}.example.com -all";
	const char *o = "somewhat.long.exp.example.com";
	char zone[2048], want[512];
	size_t len, cut;
	int i;

	/* build the 253-octet tail the RFC asks for */
	snprintf(want, sizeof(want), "foobar");
	for (i = 0; i < 9; i++) {
		strcat(want, ".");
		strcat(want, o);
	}
	strcat(want, ".example.com");
	len = strlen(want);
	cr_assert_gt(len, 253);
	for (cut = len - 253; want[cut - 1] != '.'; cut++)
		;
	cr_assert_leq(len - cut, 253);
	snprintf(zone, sizeof(zone), "%s. TXT \"%s\"\n%s. A 127.0.0.2\n", o,
	    rec, want + cut);
	{
		struct spf_case c = { "253-octet truncation", zone, NULL,
		    "test@somewhat.long.exp.example.com", NULL, MF, SPF_PASS,
		    NULL, NULL, NULL };

		check(&c);
	}
}

/* ---------------------------------------------------------------- limits */

static const struct spf_case limit_cases[] = {
	{ "10 DNS terms: at the limit", SPF(D, "v=spf1 a mx a mx a mx a mx a "
	    "ptr ip4:192.0.2.3 -all") D ". A 192.0.2.8\n"
	    D ". MX 10 " D ".\n", NULL, NULL, NULL, MF, SPF_PASS,
	    "ip4:192.0.2.3", NULL, NULL },
	{ "11 DNS terms: permerror", SPF(D, "v=spf1 a mx a mx a mx a mx a ptr "
	    "a ip4:192.0.2.3 -all") D ". A 192.0.2.8\n" D ". MX 10 " D ".\n",
	    NULL, NULL, NULL, MF, SPF_PERMERROR, "a",
	    "too many DNS lookups", NULL },
	{ "terms after a match are not counted", SPF(D, "v=spf1 a "
	    "include:inc.example.com ip4:192.0.2.3 mx -all") D ". A 192.0.2.8\n"
	    SPF("inc.example.com", "v=spf1 a a a a a a a a")
	    "inc.example.com. A 192.0.2.10\n", NULL, NULL, NULL, MF, SPF_PASS,
	    NULL, NULL, NULL },
	{ "counted across includes", SPF(D, "v=spf1 a include:inc.example.com "
	    "a ip4:192.0.2.3 -all") D ". A 192.0.2.8\n"
	    SPF("inc.example.com", "v=spf1 a a a a a a a a")
	    "inc.example.com. A 192.0.2.10\n", NULL, NULL, NULL, MF,
	    SPF_PERMERROR, NULL, "RFC 7208 §4.6.4", NULL },
	{ "redirect counts", SPF(D, "v=spf1 a a a a a a a a a "
	    "redirect=r.example.com") D ". A 192.0.2.8\n"
	    SPF("r.example.com", "v=spf1 a -all") "r.example.com. A 192.0.2.3\n",
	    NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, "too many", NULL },
	{ "redirect at the limit", SPF(D, "v=spf1 a a a a a a a a "
	    "redirect=r.example.com") D ". A 192.0.2.8\n"
	    SPF("r.example.com", "v=spf1 a -all") "r.example.com. A 192.0.2.3\n",
	    NULL, NULL, NULL, MF, SPF_PASS, "a", "redirected from", NULL },
	{ "an unused redirect does not count", SPF(D, "v=spf1 a a a a a a a a "
	    "a a ip4:192.0.2.3 redirect=r.example.com") D ". A 192.0.2.8\n",
	    NULL, NULL, NULL, MF, SPF_PASS, NULL, NULL, NULL },
	{ "10 MX names", SPF(D, "v=spf1 mx -all")
	    D ". MX 0 m0.example.com.\n" D ". MX 1 m1.example.com.\n"
	    D ". MX 2 m2.example.com.\n" D ". MX 3 m3.example.com.\n"
	    D ". MX 4 m4.example.com.\n" D ". MX 5 m5.example.com.\n"
	    D ". MX 6 m6.example.com.\n" D ". MX 7 m7.example.com.\n"
	    D ". MX 8 m8.example.com.\n" D ". MX 9 m9.example.com.\n"
	    "m0.example.com. A 192.0.2.100\n" "m1.example.com. A 192.0.2.101\n"
	    "m2.example.com. A 192.0.2.102\n" "m3.example.com. A 192.0.2.103\n"
	    "m4.example.com. A 192.0.2.104\n" "m5.example.com. A 192.0.2.105\n"
	    "m6.example.com. A 192.0.2.106\n" "m7.example.com. A 192.0.2.107\n"
	    "m8.example.com. A 192.0.2.108\n" "m9.example.com. A 192.0.2.3\n",
	    NULL, NULL, NULL, MF, SPF_PASS, "mx", NULL, NULL },
	{ "11 MX names: permerror", SPF(D, "v=spf1 mx -all")
	    D ". MX 0 m0.example.com.\n" D ". MX 1 m1.example.com.\n"
	    D ". MX 2 m2.example.com.\n" D ". MX 3 m3.example.com.\n"
	    D ". MX 4 m4.example.com.\n" D ". MX 5 m5.example.com.\n"
	    D ". MX 6 m6.example.com.\n" D ". MX 7 m7.example.com.\n"
	    D ". MX 8 m8.example.com.\n" D ". MX 9 m9.example.com.\n"
	    D ". MX 10 m10.example.com.\n" "m0.example.com. A 192.0.2.3\n",
	    NULL, NULL, NULL, MF, SPF_PERMERROR, "mx", "11 MX records", NULL },
	{ "PTR: only the first 10 names", SPF("example.com", "v=spf1 ptr ?all")
	    PTR3 "e1.example.org.\n" PTR3 "e2.example.org.\n"
	    PTR3 "e3.example.org.\n" PTR3 "e4.example.org.\n"
	    PTR3 "e5.example.org.\n" PTR3 "e6.example.org.\n"
	    PTR3 "e7.example.org.\n" PTR3 "e8.example.org.\n"
	    PTR3 "e9.example.org.\n" PTR3 "e10.example.org.\n"
	    PTR3 "mail.example.com.\n" "mail.example.com. A 192.0.2.3\n"
	    "e1.example.org. A 192.0.2.50\n" "e2.example.org. A 192.0.2.50\n"
	    "e3.example.org. A 192.0.2.50\n" "e4.example.org. A 192.0.2.50\n"
	    "e5.example.org. A 192.0.2.50\n" "e6.example.org. A 192.0.2.50\n"
	    "e7.example.org. A 192.0.2.50\n" "e8.example.org. A 192.0.2.50\n"
	    "e9.example.org. A 192.0.2.50\n" "e10.example.org. A 192.0.2.50\n",
	    NULL, "u@example.com", NULL, MF, SPF_NEUTRAL, "?all", NULL, NULL },
	{ "2 void lookups: at the limit", SPF(D, "v=spf1 a:nx1.example.com "
	    "a:nx2.example.com ?all"), NULL, NULL, NULL, MF, SPF_NEUTRAL,
	    NULL, NULL, NULL },
	{ "3 void lookups: permerror", SPF(D, "v=spf1 a:nx1.example.com "
	    "a:nx2.example.com a:nx3.example.com ?all"), NULL, NULL, NULL, MF,
	    SPF_PERMERROR, "a:nx3.example.com", "more than 2 void DNS lookups",
	    NULL },
	{ "NODATA is void too", SPF(D, "v=spf1 mx:nomx1.example.com "
	    "exists:nomx1.example.com a:nomx2.example.com ?all")
	    "nomx1.example.com. TXT \"x\"\n" "nomx2.example.com. MX 1 a.b.\n",
	    NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, "void", NULL },
	{ "void lookups of MX hosts count", SPF(D, "v=spf1 mx a:nx1.example.com"
	    " ?all") D ". MX 1 nx2.example.com.\n" D ". MX 2 nx3.example.com.\n",
	    NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, "void", NULL },
	{ "DNS errors are not void", SPF(D, "v=spf1 ptr ptr a:nx1.example.com "
	    "a:nx2.example.com ?all") "3.2.0.192.in-addr.arpa. SERVFAIL\n",
	    NULL, NULL, NULL, MF, SPF_NEUTRAL, NULL, NULL, NULL },
};

Test(limits, rfc7208_4_6_4)
{
	check_all(limit_cases, NELEM(limit_cases));
}

static const struct spf_case loop_cases[] = {
	{ "include loop", SPF(D, "v=spf1 include:b.example.com")
	    SPF("b.example.com", "v=spf1 include:" D), NULL, NULL, NULL, MF,
	    SPF_PERMERROR, NULL, "too many DNS lookups", NULL },
	{ "include of itself", SPF(D, "v=spf1 include:%{d} -all"), NULL, NULL,
	    NULL, MF, SPF_PERMERROR, NULL, "too many DNS lookups", NULL },
	{ "include of itself after a match is fine",
	    SPF(D, "v=spf1 ip4:192.0.2.3 include:" D " -all"), NULL, NULL, NULL,
	    MF, SPF_PASS, "ip4:192.0.2.3", NULL, NULL },
	{ "redirect loop", SPF(D, "v=spf1 ip4:198.51.100.1 redirect=" D),
	    NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, "too many", NULL },
	{ "include and redirect loop", SPF(D, "v=spf1 include:b.example.com "
	    "redirect=b.example.com") SPF("b.example.com", "v=spf1 redirect=" D),
	    NULL, NULL, NULL, MF, SPF_PERMERROR, NULL, "too many", NULL },
};

Test(limits, loops)
{
	check_all(loop_cases, NELEM(loop_cases));
}

static const struct spf_case temperror_cases[] = {
	{ "SERVFAIL for the record", D ". SERVFAIL\n", NULL, NULL, NULL, MF,
	    SPF_TEMPERROR, "", "temporary DNS failure", NULL },
	{ "SERVFAIL for an a: target", SPF(D, "v=spf1 a:sf.example.com -all")
	    "sf.example.com. SERVFAIL\n", NULL, NULL, NULL, MF, SPF_TEMPERROR,
	    "a:sf.example.com", "A sf.example.com", NULL },
	{ "SERVFAIL for an mx: target", SPF(D, "v=spf1 mx:sf.example.com "
	    "-all") "sf.example.com. SERVFAIL\n", NULL, NULL, NULL, MF,
	    SPF_TEMPERROR, "mx:sf.example.com", "MX sf.example.com", NULL },
	{ "SERVFAIL deep in an include", SPF(D, "v=spf1 include:i.example.com "
	    "-all") SPF("i.example.com", "v=spf1 include:j.example.com")
	    SPF("j.example.com", "v=spf1 exists:sf.example.com")
	    "sf.example.com. SERVFAIL\n", NULL, NULL, NULL, MF, SPF_TEMPERROR,
	    "exists:sf.example.com", NULL, NULL },
	{ "a SERVFAIL after the match is not looked at",
	    SPF(D, "v=spf1 ip4:192.0.2.3 a:sf.example.com")
	    "sf.example.com. SERVFAIL\n", NULL, NULL, NULL, MF, SPF_PASS, NULL,
	    NULL, NULL },
};

Test(limits, temperror)
{
	check_all(temperror_cases, NELEM(temperror_cases));
}

/* ------------------------------------------- libspf2 1.2.10 deviations */

/* 1. libspf2 has no void-lookup limit; RFC 7208 §4.6.4 stops at two. */
Test(libspf2, void_lookup_limit)
{
	struct spf_case c = { "no void-lookup limit in libspf2",
	    SPF(D, "v=spf1 a:nx1.example.com mx:nx2.example.com "
	    "exists:nx3.example.com ip4:192.0.2.3"), NULL, NULL, NULL, MF,
	    SPF_PERMERROR, "exists:nx3.example.com", "void", NULL };

	check(&c);
}

/* 2. libspf2 counts 10 terms per record; §4.1 and §4.6.4 count them over
 * the whole evaluation, includes and redirects together. */
Test(libspf2, lookup_limit_across_includes)
{
	struct spf_case c = { "the 10-term limit spans includes",
	    SPF(D, "v=spf1 a:h.example.com include:i1.example.com")
	    SPF("i1.example.com", "v=spf1 a:h.example.com a:h.example.com "
	    "a:h.example.com include:i2.example.com")
	    SPF("i2.example.com", "v=spf1 a:h.example.com a:h.example.com "
	    "a:h.example.com redirect=i3.example.com")
	    SPF("i3.example.com", "v=spf1 a:h.example.com ip4:192.0.2.3")
	    "h.example.com. A 198.51.100.1\n", NULL, NULL, NULL, MF,
	    SPF_PERMERROR, NULL, "too many DNS lookups", NULL };

	/* 1 + 1 + 3 + 1 + 3 + 1 (redirect) + 1 = 11 before the ip4 */
	check(&c);
}

/* 3. libspf2 acts on redirect= where it stands; §6.1 applies it only when
 * every mechanism failed to match, and never with an "all". */
Test(libspf2, redirect_position)
{
	static const struct spf_case cases[] = {
		{ "redirect first, ip4 after: the ip4 decides",
		    SPF(D, "v=spf1 redirect=r.example.com ip4:192.0.2.3")
		    SPF("r.example.com", "v=spf1 -all"), NULL, NULL, NULL, MF,
		    SPF_PASS, "ip4:192.0.2.3", NULL, NULL },
		{ "redirect first, nothing matches: redirect applies",
		    SPF(D, "v=spf1 redirect=r.example.com ip4:192.0.2.3")
		    SPF("r.example.com", "v=spf1 -all"), "198.51.100.1", NULL,
		    NULL, MF, SPF_FAIL, "-all", "redirected from", NULL },
		{ "redirect with all anywhere is ignored",
		    SPF(D, "v=spf1 redirect=r.example.com ~all")
		    SPF("r.example.com", "v=spf1 -all"), NULL, NULL, NULL, MF,
		    SPF_SOFTFAIL, "~all", NULL, NULL },
	};

	check_all(cases, NELEM(cases));
}

/* 4. libspf2 gets %{d2} and custom delimiters wrong; §7.3: the rightmost
 * parts, split on the given delimiters, rejoined with ".". */
Test(libspf2, macro_d2_and_delimiters)
{
	static const struct spf_case cases[] = {
		{ "%{d2}", SPF(D, "v=spf1 exists:%{d2}.x.example.net -all")
		    "example.com.x.example.net. A 127.0.0.2\n", NULL, NULL,
		    NULL, MF, SPF_PASS, NULL, NULL, NULL },
		{ "%{d2} of a two-label domain", SPF("example.com", "v=spf1 "
		    "exists:%{d2}.x.example.net -all")
		    "example.com.x.example.net. A 127.0.0.2\n", NULL,
		    "u@example.com", NULL, MF, SPF_PASS, NULL, NULL, NULL },
		{ "%{l-} and %{lr-}", EXPZ("v=spf1 -all exp=explain.example.com",
		    "%{l-} %{lr-} %{l1r-} %{l2r+-}"), NULL,
		    "foo-bar+zip@" D, NULL, MF, SPF_FAIL, NULL, NULL,
		    "foo.bar+zip bar+zip.foo foo bar.foo" },
		{ "%{d2r} and %{dr}", EXPZ("v=spf1 -all exp=explain.example.com",
		    "%{d2r} %{dr} %{d1}"), NULL, NULL, NULL, MF, SPF_FAIL, NULL,
		    NULL, "example.email com.example.email com" },
		{ "delimiters on the domain",
		    SPF("mail-in.example.com", "v=spf1 -all "
		    "exp=explain.example.com")
		    "explain.example.com. TXT \"%{d-} %{d3.-} %{d2r-}\"\n",
		    NULL, "u@mail-in.example.com", NULL, MF, SPF_FAIL, NULL,
		    NULL, "mail.in.example.com in.example.com "
		    "in.example.com.mail" },
	};

	check_all(cases, NELEM(cases));
}

/* 5. libspf2 treats an include whose target errs as not matching; §5.2:
 * temperror and permerror propagate, none is a permerror. */
Test(libspf2, include_error_propagates)
{
	static const struct spf_case cases[] = {
		{ "include target permerror",
		    INC("v=spf1 ip4:192.0.2.300"), NULL, NULL, NULL, MF,
		    SPF_PERMERROR, NULL, NULL, NULL },
		{ "include target temperror",
		    SPF(D, "v=spf1 include:inc.example.com ~all")
		    SPF("inc.example.com", "v=spf1 a:sf.example.com")
		    "sf.example.com. SERVFAIL\n", NULL, NULL, NULL, MF,
		    SPF_TEMPERROR, NULL, NULL, NULL },
		{ "include target none",
		    SPF(D, "v=spf1 include:none.example.com ~all")
		    "none.example.com. A 192.0.2.3\n", NULL, NULL, NULL, MF,
		    SPF_PERMERROR, NULL, "gives none", NULL },
	};

	check_all(cases, NELEM(cases));
}

/* 6. libspf2 accepts "exists:" with nothing after it; §5.7 and §7.1 need
 * a domain-spec, so the record has a syntax error. */
Test(libspf2, empty_exists)
{
	static const struct spf_case cases[] = {
		{ "exists: empty", SPF(D, "v=spf1 ip4:192.0.2.3 exists: -all"),
		    NULL, NULL, NULL, MF, SPF_PERMERROR, "exists:",
		    "empty domain-spec", NULL },
		{ "exists: empty, last", SPF(D, "v=spf1 exists:"), NULL, NULL,
		    NULL, MF, SPF_PERMERROR, NULL, NULL, NULL },
	};

	check_all(cases, NELEM(cases));
}
