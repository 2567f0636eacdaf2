/*
 * test_dmarc.c - DMARC evaluation (policy/dmarc.c) as tables.
 *
 * Every row is an input and the outputs it must produce, and a failure
 * says got/want with the row's description. DNS is a zone file served by
 * relay/zonefile.c (a `name SERVFAIL` line makes that name fail
 * temporarily); a recording wrapper checks which names a Tree Walk asked.
 *
 *   from_*      the Author Domain: address lists, groups, comments, IDN
 *   record_*    DMARC record grammar (RFC 9989 §4.7, §4.8)
 *   walk_*      Organizational Domain by Tree Walk (§4.10, Appendix B.4)
 *   rfc9989_*   evaluation, each row citing the RFC 9989 section it
 *               was derived from by hand
 *   rfc7489_*   RFC 7489 mode: the PSL (§3.2), discovery (§6.6.3), pct=
 *   api_*       argument errors, names, Punycode, helpers
 *   auth_*      relay/auth.c: DMARC's own DNS beside DKIM's and SPF's
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "auth.h"
#include "dmarc.h"
#include "zonefile.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ helpers */

struct recdns {
	struct zonefile *zf;
	size_t n;
	char names[40][DMARC_DOMAIN_MAX + 16];
};

static enum pdns_rc
rec_lookup(void *arg, const char *qname, enum pdns_type type,
    struct pdns_answer *out)
{
	struct recdns *r = arg;

	if (r->n < NELEM(r->names))
		snprintf(r->names[r->n], sizeof(r->names[0]), "%s", qname);
	r->n++;
	return zonefile_lookup(r->zf, qname, type, out);
}

static struct zonefile *
zone(const char *text)
{
	char why[256];
	struct zonefile *z = zonefile_parse(text, strlen(text), why,
	    sizeof(why));

	cr_assert_not_null(z, "zone does not parse: %s", why);
	return z;
}

static const char *
nz(const char *s)
{
	return s ? s : "(null)";
}

/* ---------------------------------------------------- the author domain */

struct from_case {
	const char *desc;
	const char *v[3];
	size_t nv;
	enum dmarc_author_rc rc;
	const char *domain;	/* rc OK */
	size_t addresses;	/* (size_t)-1: not checked */
};

#define ANY ((size_t)-1)

static const struct from_case from_cases[] = {
	{ "plain addr-spec", { "user@example.com" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "angle-addr alone", { "<user@example.com>" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "display name, mixed-case domain",
	    { "John Doe <john@Example.COM>" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "quoted display name holding ',' '<' '@'",
	    { "\"Doe, John <x@evil.example>\" <john@example.com>" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "comments everywhere (RFC 5322 A.5)",
	    { "Pete(A nice \\) chap) <pete(his account)@silly.test(his "
	    "host)>" }, 1, DMARC_AUTHOR_OK, "silly.test", 1 },
	{ "nested comments", { "(a (b) c) user@example.com (x(y)z)" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "encoded-word display name (Q)",
	    { "=?UTF-8?Q?J=C3=B6rg?= <joerg@example.de>" }, 1,
	    DMARC_AUTHOR_OK, "example.de", 1 },
	{ "encoded-word display name (B)",
	    { "=?utf-8?b?SsO2cmc=?= <j@example.org>" }, 1,
	    DMARC_AUTHOR_OK, "example.org", 1 },
	{ "obs-phrase with a dot", { "John Q. Public <jqp@example.com>" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "folded value with CRLF", { " John Doe\r\n <john@example.com>\r\n" },
	    1, DMARC_AUTHOR_OK, "example.com", 1 },
	{ "obs-route in angle-addr",
	    { "Mary <@node.test,@relay.test:mary@example.net>" }, 1,
	    DMARC_AUTHOR_OK, "example.net", 1 },
	{ "obs-route starting with ','",
	    { "Mary <,@node.test,,@relay.test:mary@example.net>" }, 1,
	    DMARC_AUTHOR_OK, "example.net", 1 },
	/* RFC 5322 §4.4 obs-domain-list: "," between the route's domains;
	 * the old parser took "@a@b" */
	{ "obs-route domains without ','",
	    { "Mary <@node.test@relay.test:mary@example.net>" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "obs-domain with CFWS between atoms",
	    { "user@ example (c) . com" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "obs-local-part with CFWS", { "john . doe @example.com" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "quoted local part holding '@'", { "\"a@b\"@example.com" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "UTF-8 local part (RFC 6532)", { "j\xc3\xb6rg@example.com" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "U-label converted to A-label (RFC 9989 §5.3.1)",
	    { "user@b\xc3\xbc" "cher.example" }, 1,
	    DMARC_AUTHOR_OK, "xn--bcher-kva.example", 1 },
	{ "U-label with ASCII capitals",
	    { "user@B\xc3\xbc" "CHER.Example" }, 1,
	    DMARC_AUTHOR_OK, "xn--bcher-kva.example", 1 },
	{ "CJK U-label", { "u@\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.jp" }, 1,
	    DMARC_AUTHOR_OK, "xn--wgv71a119e.jp", 1 },
	{ "A-label form kept, lowercased", { "user@XN--BCHER-KVA.example" },
	    1, DMARC_AUTHOR_OK, "xn--bcher-kva.example", 1 },
	{ "A-label in angle-addr", { "<u@mail.xn--55qx5d.cn>" }, 1,
	    DMARC_AUTHOR_OK, "mail.xn--55qx5d.cn", 1 },
	{ "trailing empty list element (obs)", { "user@example.com," }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "group with one member", { "Team: user@example.com;" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 1 },
	{ "group with two members",
	    { "Team: a@example.com, b@example.org;" }, 1,
	    DMARC_AUTHOR_MULTI_ADDRESS, NULL, 2 },
	{ "empty group", { "undisclosed-recipients:;" }, 1,
	    DMARC_AUTHOR_NO_ADDRESS, NULL, 0 },
	{ "empty value", { "" }, 1, DMARC_AUTHOR_NO_ADDRESS, NULL, 0 },
	/* RFC 9989 §5.3.1, RFC 7489 §6.6.1: what counts is the domains;
	 * several mailboxes of one domain give one Author Domain */
	{ "two addresses, same domain", { "a@example.com, b@example.com" },
	    1, DMARC_AUTHOR_OK, "example.com", 2 },
	{ "two addresses, same domain in other case and form",
	    { "a@Example.COM, B <b@example (c) . com>" }, 1,
	    DMARC_AUTHOR_OK, "example.com", 2 },
	{ "same domain, U-label and A-label",
	    { "a@b\xc3\xbc" "cher.example, b@xn--bcher-kva.example" }, 1,
	    DMARC_AUTHOR_OK, "xn--bcher-kva.example", 2 },
	{ "group of two, same domain", { "Team: a@example.com, b@example.com;" },
	    1, DMARC_AUTHOR_OK, "example.com", 2 },
	{ "same domain, then a subdomain",
	    { "a@example.com, b@example.com, c@mail.example.com" }, 1,
	    DMARC_AUTHOR_MULTI_ADDRESS, NULL, 3 },
	{ "two addresses, one a literal",
	    { "a@example.com, b@[192.0.2.1]" }, 1,
	    DMARC_AUTHOR_MULTI_ADDRESS, NULL, 2 },
	{ "two addresses, different domains",
	    { "a@example.com, \"B\" <b@example.net>" }, 1,
	    DMARC_AUTHOR_MULTI_ADDRESS, NULL, 2 },
	{ "three addresses and a group",
	    { "a@x.example, G: b@y.example;, c@z.example" }, 1,
	    DMARC_AUTHOR_MULTI_ADDRESS, NULL, 3 },
	{ "two From fields", { "a@example.com", "b@example.com" }, 2,
	    DMARC_AUTHOR_MULTI_FROM, NULL, 2 },
	{ "two From fields, one bad", { "a@example.com", "garbage" }, 2,
	    DMARC_AUTHOR_MULTI_FROM, NULL, ANY },
	{ "no From field", { NULL }, 0, DMARC_AUTHOR_NO_FROM, NULL, 0 },
	{ "domain literal", { "user@[192.0.2.1]" }, 1,
	    DMARC_AUTHOR_BAD_DOMAIN, NULL, 1 },
	{ "domain with a character DNS names lack", { "user@exa!mple.com" },
	    1, DMARC_AUTHOR_BAD_DOMAIN, NULL, 1 },
	{ "domain with invalid UTF-8", { "user@ex\xff.com" }, 1,
	    DMARC_AUTHOR_BAD_DOMAIN, NULL, 1 },
	{ "label of 64 octets",
	    { "u@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    ".example" }, 1, DMARC_AUTHOR_BAD_DOMAIN, NULL, 1 },
	{ "trailing dot after the domain", { "user@example.com." }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "empty label", { "user@example..com" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "comment not closed", { "user@example.com (oops" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "quoted string not closed", { "\"John <j@example.com>" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "angle-addr not closed", { "John <j@example.com" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "display name without address", { "John Doe" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "no local part", { "@example.com" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "no domain", { "user@" }, 1, DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "two '@'", { "a@b@example.com" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "addresses without ','", { "a@example.com b@example.com" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "group inside a group", { "A: B: c@example.com;;" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "group not closed", { "Team: a@example.com" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "empty angle-addr", { "<>" }, 1, DMARC_AUTHOR_SYNTAX, NULL, ANY },
	{ "unbalanced ')'", { "a@example.com)" }, 1,
	    DMARC_AUTHOR_SYNTAX, NULL, ANY },
};

Test(from, table)
{
	size_t i, j;

	for (i = 0; i < NELEM(from_cases); i++) {
		const struct from_case *c = &from_cases[i];
		struct dmarc_span sp[3];
		struct dmarc_author a;

		for (j = 0; j < c->nv; j++) {
			sp[j].p = c->v[j];
			sp[j].len = strlen(c->v[j]);
		}
		dmarc_author_parse(sp, c->nv, &a);
		cr_expect_eq(a.rc, c->rc, "%s: rc got %s, want %s (%s)",
		    c->desc, dmarc_author_rc_str(a.rc),
		    dmarc_author_rc_str(c->rc), a.why);
		if (c->rc == DMARC_AUTHOR_OK)
			cr_expect_str_eq(a.domain, c->domain,
			    "%s: domain got %s, want %s", c->desc, a.domain,
			    c->domain);
		else
			cr_expect(a.why[0] != '\0', "%s: no reason", c->desc);
		if (c->addresses != ANY)
			cr_expect_eq(a.addresses, c->addresses,
			    "%s: addresses got %zu, want %zu", c->desc,
			    a.addresses, c->addresses);
	}
}

/* NUL octets, which the table above cannot hold. RFC 5322 §3.2.2: ctext
 * has no NUL either, so a comment holding one is bad syntax too (the old
 * parser skipped it); after a backslash it is the obs-qp of §4.1. */
static const struct {
	const char *desc;
	const char *v;
	size_t len;
	enum dmarc_author_rc rc;
	const char *why;	/* a substring of the reason, or NULL */
} nul_cases[] = {
	{ "in the domain", "user@exa\0mple.com", 17, DMARC_AUTHOR_SYNTAX,
	    "NUL octet at offset 8" },
	{ "in a comment", "user@example.com (a\0b)", 22, DMARC_AUTHOR_SYNTAX,
	    "NUL octet at offset 19" },
	{ "escaped in a comment", "user@example.com (a\\\0b)", 23,
	    DMARC_AUTHOR_OK },
};

Test(from, nul_bytes)
{
	size_t i;

	for (i = 0; i < NELEM(nul_cases); i++) {
		struct dmarc_span sp = { nul_cases[i].v, nul_cases[i].len };
		struct dmarc_author a;

		dmarc_author_parse(&sp, 1, &a);
		cr_expect_eq(a.rc, nul_cases[i].rc, "%s: got %s, want %s (%s)",
		    nul_cases[i].desc, dmarc_author_rc_str(a.rc),
		    dmarc_author_rc_str(nul_cases[i].rc), a.why);
		if (nul_cases[i].why)
			cr_expect(strstr(a.why, nul_cases[i].why) != NULL,
			    "%s: got \"%s\"", nul_cases[i].desc, a.why);
	}
}

/* RFC 5322 sets no length for a domain: one longer than any DNS name is
 * a bad domain, not bad syntax (the old parser said "domain is too
 * long" as a syntax error). */
Test(from, domain_too_long)
{
	char v[2048];
	size_t k = (size_t)sprintf(v, "user@"), i;
	struct dmarc_span sp;
	struct dmarc_author a;

	for (i = 0; i < 600; i++)
		k += (size_t)sprintf(v + k, "a.");
	k += (size_t)sprintf(v + k, "com");
	sp.p = v;
	sp.len = k;
	dmarc_author_parse(&sp, 1, &a);
	cr_expect_eq(a.rc, DMARC_AUTHOR_BAD_DOMAIN, "got %s (%s)",
	    dmarc_author_rc_str(a.rc), a.why);
	cr_expect(strstr(a.why, "too long for a DNS name") != NULL,
	    "got \"%s\"", a.why);
	cr_expect_eq(a.addresses, 1);
}

/* Past ADDR_MAILBOX_MAX mailboxes the count stops, still several. */
Test(from, mailbox_cap)
{
	size_t n = ADDR_MAILBOX_MAX + 1, i, k = 0;
	char *v = malloc(4 * n);
	struct dmarc_span sp;
	struct dmarc_author a;

	cr_assert_not_null(v);
	for (i = 0; i < n; i++)
		k += (size_t)sprintf(v + k, "%sa@b", i ? "," : "");
	sp.p = v;
	sp.len = k;
	dmarc_author_parse(&sp, 1, &a);
	cr_expect_eq(a.rc, DMARC_AUTHOR_MULTI_ADDRESS, "got %s (%s)",
	    dmarc_author_rc_str(a.rc), a.why);
	free(v);
}

Test(from, length_bound_not_nul)
{
	/* the span ends before the domain's last label: the parser must not
	 * read past it */
	static const char v[] = "user@example.comXX";
	struct dmarc_span sp = { v, sizeof(v) - 4 };
	struct dmarc_author a;

	dmarc_author_parse(&sp, 1, &a);
	cr_expect_eq(a.rc, DMARC_AUTHOR_OK);
	cr_expect_str_eq(a.domain, "example.co");
}

Test(from, reasons_are_specific)
{
	struct dmarc_span sp[2] = { { "a@x.example, b@y.example", 24 },
	    { "c@z.example", 11 } };
	struct dmarc_author a;

	dmarc_author_parse(sp, 1, &a);
	cr_expect(strstr(a.why, "message has 2 From addresses") != NULL,
	    "got \"%s\"", a.why);
	dmarc_author_parse(sp, 2, &a);
	cr_expect(strstr(a.why, "message has 2 From fields") != NULL,
	    "got \"%s\"", a.why);
}

/* ------------------------------------------------------------ records */

struct rec_case {
	const char *desc;
	const char *txt;
	bool dmarc;
	struct dmarc_record w;
};

static const struct rec_case rec_cases[] = {
	{ "v only: no p= (valid; §4.10.1 decides later)", "v=DMARC1",
	    true, { .pct = 100 } },
	{ "p=reject", "v=DMARC1; p=reject", true,
	    { .p = DMARC_POLICY_REJECT, .pct = 100 } },
	{ "WSP around '=' and ';' (§4.8 equals, dmarc-sep)",
	    "v = DMARC1 ;\tp = quarantine ; sp=none", true,
	    { .p = DMARC_POLICY_QUARANTINE, .sp = DMARC_POLICY_NONE,
	    .pct = 100 } },
	{ "trailing separator", "v=DMARC1;p=none;", true,
	    { .p = DMARC_POLICY_NONE, .pct = 100 } },
	{ "empty tag-specs", "v=DMARC1;;p=none; ;", true,
	    { .p = DMARC_POLICY_NONE, .pct = 100 } },
	{ "all tags",
	    "v=DMARC1; p=reject; sp=quarantine; np=none; adkim=s; aspf=s; "
	    "psd=n; t=y; pct=50; fo=1; rua=mailto:a@example.com; "
	    "ruf=mailto:f@example.com; rf=afrf; ri=3600", true,
	    { .p = DMARC_POLICY_REJECT, .sp = DMARC_POLICY_QUARANTINE,
	    .np = DMARC_POLICY_NONE, .adkim = DMARC_ALIGN_STRICT,
	    .aspf = DMARC_ALIGN_STRICT, .psd = DMARC_PSD_N, .testing = true,
	    .pct = 50, .has_rua = true, .rua_ok = true } },
	{ "keywords and tag names are case-insensitive",
	    "v=DMARC1; P=REJECT; ADKIM=S; Psd=Y", true,
	    { .p = DMARC_POLICY_REJECT, .adkim = DMARC_ALIGN_STRICT,
	    .psd = DMARC_PSD_Y, .pct = 100 } },
	{ "DMARC1 is case-sensitive (§4.7 v)", "v=dmarc1; p=reject", false,
	    { .pct = 100 } },
	{ "V= (ABNF literals ignore case)", "V=DMARC1; p=none", true,
	    { .p = DMARC_POLICY_NONE, .pct = 100 } },
	{ "v not first (§4.7 v)", "p=reject; v=DMARC1", false,
	    { .pct = 100 } },
	{ "leading space before v", " v=DMARC1; p=reject", false,
	    { .pct = 100 } },
	{ "version with trailing characters", "v=DMARC10; p=reject", false,
	    { .pct = 100 } },
	{ "no separator after the version", "v=DMARC1 p=reject", false,
	    { .pct = 100 } },
	{ "SPF record", "v=spf1 -all", false, { .pct = 100 } },
	{ "empty", "", false, { .pct = 100 } },
	{ "unknown tags ignored (§4.7)", "v=DMARC1; p=none; x=y; future=1",
	    true, { .p = DMARC_POLICY_NONE, .pct = 100, .ignored = 2 } },
	{ "bad adkim falls back to r (§4.8)", "v=DMARC1; p=none; adkim=x",
	    true, { .p = DMARC_POLICY_NONE, .pct = 100, .ignored = 1 } },
	{ "tag without '='", "v=DMARC1; p=none; aspf", true,
	    { .p = DMARC_POLICY_NONE, .pct = 100, .ignored = 1 } },
	{ "tag with empty value", "v=DMARC1; p=none; sp=", true,
	    { .p = DMARC_POLICY_NONE, .pct = 100, .ignored = 1 } },
	{ "tag name not ALPHA", "v=DMARC1; p=none; a_b=1; 9=2", true,
	    { .p = DMARC_POLICY_NONE, .pct = 100, .ignored = 2 } },
	{ "value with a tab inside", "v=DMARC1; p=no\tne", true,
	    { .p_bad = false, .pct = 100, .ignored = 1 } },
	{ "bad p", "v=DMARC1; p=bogus", true,
	    { .p_bad = true, .pct = 100, .ignored = 1 } },
	{ "bad sp and np", "v=DMARC1; p=none; sp=all; np=1", true,
	    { .p = DMARC_POLICY_NONE, .sp_bad = true, .np_bad = true,
	    .pct = 100, .ignored = 2 } },
	{ "repeated p: first wins", "v=DMARC1; p=reject; p=none", true,
	    { .p = DMARC_POLICY_REJECT, .pct = 100, .ignored = 1 } },
	{ "pct=0", "v=DMARC1; p=reject; pct=0", true,
	    { .p = DMARC_POLICY_REJECT, .pct = 0 } },
	{ "pct=101 is bad: 100", "v=DMARC1; p=reject; pct=101", true,
	    { .p = DMARC_POLICY_REJECT, .pct = 100, .ignored = 1 } },
	{ "pct=abc is bad: 100", "v=DMARC1; p=reject; pct=abc", true,
	    { .p = DMARC_POLICY_REJECT, .pct = 100, .ignored = 1 } },
	{ "psd=u explicit", "v=DMARC1; psd=u", true,
	    { .psd = DMARC_PSD_U, .pct = 100 } },
	{ "psd=x is bad: u", "v=DMARC1; psd=x", true,
	    { .psd = DMARC_PSD_U, .pct = 100, .ignored = 1 } },
	{ "t=n", "v=DMARC1; p=reject; t=n", true,
	    { .p = DMARC_POLICY_REJECT, .pct = 100 } },
	{ "t=yes is bad", "v=DMARC1; p=reject; t=yes", true,
	    { .p = DMARC_POLICY_REJECT, .pct = 100, .ignored = 1 } },
	{ "rua list, second URI valid",
	    "v=DMARC1; rua=bogus, mailto:a@example.com", true,
	    { .has_rua = true, .rua_ok = true, .pct = 100 } },
	{ "rua with obsolete size suffix",
	    "v=DMARC1; rua=mailto:a@example.com!10m", true,
	    { .has_rua = true, .rua_ok = true, .pct = 100 } },
	{ "rua with percent-encoding",
	    "v=DMARC1; rua=mailto:a%2Cb@example.com", true,
	    { .has_rua = true, .rua_ok = true, .pct = 100 } },
	{ "rua without a scheme", "v=DMARC1; rua=a@example.com", true,
	    { .has_rua = true, .rua_ok = false, .pct = 100, .ignored = 1 } },
	{ "rua with a space inside a URI",
	    "v=DMARC1; rua=mailto:a b@example.com", true,
	    { .has_rua = true, .rua_ok = false, .pct = 100, .ignored = 1 } },
	{ "B.2.5 record", "v=DMARC1; p=quarantine; "
	    "rua=mailto:dmarc-feedback@example.com,"
	    "mailto:tld-test@thirdparty.example.net; t=y", true,
	    { .p = DMARC_POLICY_QUARANTINE, .testing = true, .has_rua = true,
	    .rua_ok = true, .pct = 100 } },
};

Test(record, table)
{
	size_t i;

	for (i = 0; i < NELEM(rec_cases); i++) {
		const struct rec_case *c = &rec_cases[i];
		const struct dmarc_record *w = &c->w;
		struct dmarc_record g;
		bool is = dmarc_record_parse(c->txt, strlen(c->txt), &g);

		cr_expect_eq(is, c->dmarc, "%s: is-DMARC got %d, want %d",
		    c->desc, is, c->dmarc);
		if (!is || !c->dmarc)
			continue;
#define F(f) cr_expect_eq(g.f, w->f, "%s: " #f " got %d, want %d", \
		    c->desc, (int)g.f, (int)w->f)
		F(p); F(sp); F(np); F(p_bad); F(sp_bad); F(np_bad);
		F(adkim); F(aspf); F(psd); F(testing); F(pct);
		F(has_rua); F(rua_ok); F(ignored);
#undef F
	}
}

Test(record, length_bound_not_nul)
{
	static const char txt[] = "v=DMARC1; p=rejectXYZ";
	struct dmarc_record r;

	cr_assert(dmarc_record_parse(txt, sizeof(txt) - 4, &r));
	cr_expect_eq(r.p, DMARC_POLICY_REJECT);
}

/* ------------------------------------------------------------ Tree Walk */

struct walk_case {
	const char *cite;
	const char *zone;
	const char *start;
	const char *org;
	const char *asked[9];	/* the exact query sequence, NULL-ended */
};

static const char z_b41[] =
    "_dmarc.example.com. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.signing.example.com. TXT \"v=DMARC1; p=none\"\n";
static const char z_b43[] =
    "_dmarc.bank.example. TXT \"v=DMARC1; p=reject; psd=y\"\n"
    "_dmarc.giant.bank.example. TXT \"v=DMARC1; p=quarantine\"\n";
static const char z_4102a[] =
    "_dmarc.mail.example.com. TXT \"v=DMARC1; p=none\"\n"
    "_dmarc.example.com. TXT \"v=DMARC1; p=reject\"\n";
static const char z_4102b[] =
    "_dmarc.mail.example.com. TXT \"v=DMARC1; p=none; psd=n\"\n"
    "_dmarc.example.com. TXT \"v=DMARC1; p=reject\"\n";
static const char z_4102c[] =
    "_dmarc.com. TXT \"v=DMARC1; p=reject; psd=y\"\n";
static const char z_multi[] =
    "_dmarc.mail.example.com. TXT \"v=DMARC1; p=none; psd=n\"\n"
    "_dmarc.mail.example.com. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.example.com. TXT \"v=DMARC1; p=reject\"\n";
static const char z_none[] = "example.com. A 192.0.2.1\n";
static const char z_notdmarc[] =
    "_dmarc.mail.example.com. TXT \"v=DMARC2; p=none; psd=n\"\n"
    "_dmarc.example.com. TXT \"v=DMARC1; p=reject\"\n";

static const struct walk_case walk_cases[] = {
	{ "B.4.1 author", z_b41, "example.com", "example.com",
	    { "_dmarc.example.com", "_dmarc.com" } },
	{ "B.4.1 DKIM identifier", z_b41, "signing.example.com",
	    "example.com", { "_dmarc.signing.example.com",
	    "_dmarc.example.com", "_dmarc.com" } },
	{ "B.4.2 deep author, shortened to 7 labels", z_b41,
	    "a.b.c.d.e.f.g.h.i.j.k.example.com", "example.com",
	    { "_dmarc.a.b.c.d.e.f.g.h.i.j.k.example.com",
	    "_dmarc.g.h.i.j.k.example.com", "_dmarc.h.i.j.k.example.com",
	    "_dmarc.i.j.k.example.com", "_dmarc.j.k.example.com",
	    "_dmarc.k.example.com", "_dmarc.example.com", "_dmarc.com" } },
	{ "B.4.3 author with its own record below psd=y", z_b43,
	    "giant.bank.example", "giant.bank.example",
	    { "_dmarc.giant.bank.example", "_dmarc.bank.example" } },
	{ "B.4.3 MAIL FROM domain", z_b43, "mail.giant.bank.example",
	    "giant.bank.example", { "_dmarc.mail.giant.bank.example",
	    "_dmarc.giant.bank.example", "_dmarc.bank.example" } },
	{ "B.4.3 DKIM identifier", z_b43, "mail.mega.bank.example",
	    "mega.bank.example", { "_dmarc.mail.mega.bank.example",
	    "_dmarc.mega.bank.example", "_dmarc.bank.example" } },
	{ "§4.10 example: 13 labels, no records, 8 queries", z_none,
	    "a.b.c.d.e.f.g.h.i.j.mail.example.com",
	    "a.b.c.d.e.f.g.h.i.j.mail.example.com",
	    { "_dmarc.a.b.c.d.e.f.g.h.i.j.mail.example.com",
	    "_dmarc.g.h.i.j.mail.example.com", "_dmarc.h.i.j.mail.example.com",
	    "_dmarc.i.j.mail.example.com", "_dmarc.j.mail.example.com",
	    "_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com" } },
	{ "§4.10.2 first example: fewest labels wins", z_4102a,
	    "a.mail.example.com", "example.com",
	    { "_dmarc.a.mail.example.com", "_dmarc.mail.example.com",
	    "_dmarc.example.com", "_dmarc.com" } },
	{ "§4.10.2 second example: psd=n stops the walk", z_4102b,
	    "a.mail.example.com", "mail.example.com",
	    { "_dmarc.a.mail.example.com", "_dmarc.mail.example.com" } },
	{ "§4.10.2 last example: psd=y at com", z_4102c,
	    "a.mail.example.com", "example.com",
	    { "_dmarc.a.mail.example.com", "_dmarc.mail.example.com",
	    "_dmarc.example.com", "_dmarc.com" } },
	{ "§4.10.2: psd=y at the start domain itself", z_b43,
	    "bank.example", "bank.example",
	    { "_dmarc.bank.example" } },
	{ "§4.10.2: no record anywhere: the start domain", z_none,
	    "mail.example.com", "mail.example.com",
	    { "_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com" } },
	{ "§4.10 step 6: several records at a name are discarded", z_multi,
	    "x.mail.example.com", "example.com",
	    { "_dmarc.x.mail.example.com", "_dmarc.mail.example.com",
	    "_dmarc.example.com", "_dmarc.com" } },
	{ "§4.10 step 6: a record not v=DMARC1 is discarded", z_notdmarc,
	    "x.mail.example.com", "example.com",
	    { "_dmarc.x.mail.example.com", "_dmarc.mail.example.com",
	    "_dmarc.example.com", "_dmarc.com" } },
	{ "§4.10 step 4: 8 labels: the parent has 7", z_none,
	    "a.b.c.d.e.f.example.com", "a.b.c.d.e.f.example.com",
	    { "_dmarc.a.b.c.d.e.f.example.com", "_dmarc.b.c.d.e.f.example.com",
	    "_dmarc.c.d.e.f.example.com", "_dmarc.d.e.f.example.com",
	    "_dmarc.e.f.example.com", "_dmarc.f.example.com",
	    "_dmarc.example.com", "_dmarc.com" } },
	{ "§4.10 step 4: 9 labels: straight to 7", z_none,
	    "z.a.b.c.d.e.f.example.com", "z.a.b.c.d.e.f.example.com",
	    { "_dmarc.z.a.b.c.d.e.f.example.com",
	    "_dmarc.b.c.d.e.f.example.com", "_dmarc.c.d.e.f.example.com",
	    "_dmarc.d.e.f.example.com", "_dmarc.e.f.example.com",
	    "_dmarc.f.example.com", "_dmarc.example.com", "_dmarc.com" } },
	{ "§4.10 step 4: 7 labels: 7 queries", z_none,
	    "b.c.d.e.f.example.com", "b.c.d.e.f.example.com",
	    { "_dmarc.b.c.d.e.f.example.com", "_dmarc.c.d.e.f.example.com",
	    "_dmarc.d.e.f.example.com", "_dmarc.e.f.example.com",
	    "_dmarc.f.example.com", "_dmarc.example.com", "_dmarc.com" } },
	{ "§4.10.2 rule 2 after shortening: one label below psd=y",
	    "_dmarc.example.com. TXT \"v=DMARC1; p=reject; psd=y\"\n",
	    "a.b.c.d.e.f.g.h.i.j.k.example.com", "k.example.com",
	    { "_dmarc.a.b.c.d.e.f.g.h.i.j.k.example.com",
	    "_dmarc.g.h.i.j.k.example.com", "_dmarc.h.i.j.k.example.com",
	    "_dmarc.i.j.k.example.com", "_dmarc.j.k.example.com",
	    "_dmarc.k.example.com", "_dmarc.example.com" } },
};

Test(walk, table)
{
	size_t i, j;
	struct dmarc_options opt = { .mode = DMARC_MODE_RFC9989 };

	for (i = 0; i < NELEM(walk_cases); i++) {
		const struct walk_case *c = &walk_cases[i];
		struct recdns r = { .zf = zone(c->zone) };
		struct pdns dns = { rec_lookup, &r };
		char org[DMARC_DOMAIN_MAX];
		enum pdns_rc rc;
		unsigned q;
		enum dkim_status st = dmarc_org_domain(&dns, &opt, c->start,
		    strlen(c->start), org, sizeof(org), &rc, &q);

		cr_expect_eq(st, DKIM_OK, "%s: status %s", c->cite,
		    dkim_status_str(st));
		cr_expect_eq(rc, PDNS_OK, "%s: DNS %s", c->cite,
		    pdns_rc_str(rc));
		cr_expect_str_eq(org, c->org, "%s: org got %s, want %s",
		    c->cite, org, c->org);
		for (j = 0; c->asked[j] != NULL; j++) {
			cr_expect(j < r.n, "%s: query %zu missing (want %s)",
			    c->cite, j + 1, c->asked[j]);
			if (j < r.n)
				cr_expect_str_eq(r.names[j], c->asked[j],
				    "%s: query %zu got %s, want %s", c->cite,
				    j + 1, r.names[j], c->asked[j]);
		}
		cr_expect_eq(r.n, j, "%s: %zu queries, want %zu", c->cite,
		    r.n, j);
		cr_expect_leq(r.n, DMARC_WALK_MAX, "%s: more than 8", c->cite);
		cr_expect_eq(q, r.n, "%s: counted %u", c->cite, q);
		zonefile_free(r.zf);
	}
}

Test(walk, tempfail_stops_the_walk)
{
	struct recdns r = { .zf = zone("_dmarc.example.com. SERVFAIL\n") };
	struct pdns dns = { rec_lookup, &r };
	struct dmarc_options opt = { .mode = DMARC_MODE_RFC9989 };
	char org[DMARC_DOMAIN_MAX];
	enum pdns_rc rc;

	cr_assert_eq(dmarc_org_domain(&dns, &opt, "a.example.com", 13, org,
	    sizeof(org), &rc, NULL), DKIM_OK);
	cr_expect_eq(rc, PDNS_TEMPFAIL, "got %s", pdns_rc_str(rc));
	cr_expect_str_eq(org, "");
	cr_expect_eq(r.n, 2);
	zonefile_free(r.zf);
}

/* --------------------------------------------------- evaluation tables */

struct want {
	enum dmarc_res res;
	enum dmarc_policy policy;
	enum dmarc_policy_src src;
	enum dmarc_policy disp;
	const char *pdom;	/* NULL: not checked */
	const char *org;	/* NULL: not checked */
	enum dmarc_ident aligned;
	const char *adom;	/* NULL: not checked */
	bool testing, sampled;
	const char *reason;	/* a substring of the reason, or NULL */
};

struct ecase {
	const char *cite;
	const char *desc;
	const char *from;
	const char *from2;	/* a second From field */
	const char *dkim[3];	/* passing d=; "!d" for a failing one, "?d"
				 * for a temporary failure */
	enum dmarc_spf spf;
	const char *spf_domain;
	unsigned draw;
	unsigned max_queries;
	struct want w;
};

#define P_ABS DMARC_POLICY_ABSENT
#define P_NONE DMARC_POLICY_NONE
#define P_QUAR DMARC_POLICY_QUARANTINE
#define P_REJ DMARC_POLICY_REJECT
#define R_NONE DMARC_RES_NONE
#define R_PASS DMARC_RES_PASS
#define R_FAIL DMARC_RES_FAIL
#define R_TEMP DMARC_RES_TEMPERROR
#define R_PERM DMARC_RES_PERMERROR
#define S_NONE DMARC_SRC_NONE
#define S_P DMARC_SRC_P
#define S_SP DMARC_SRC_SP
#define S_NP DMARC_SRC_NP
#define S_DEF DMARC_SRC_DEFAULT
#define I_NONE DMARC_IDENT_NONE
#define I_DKIM DMARC_IDENT_DKIM
#define I_SPF DMARC_IDENT_SPF
#define SPF_PASS DMARC_SPF_PASS

static void
run_cases(const char *zonetext, enum dmarc_mode mode,
    const struct ecase *cases, size_t n)
{
	struct zonefile *zf = zone(zonetext);
	struct pdns dns = { zonefile_lookup, zf };
	struct dmarc_psl *psl = NULL;
	char why[256];
	size_t i, j;

	if (mode == DMARC_MODE_RFC7489) {
		psl = dmarc_psl_load(NULL, why, sizeof(why));
		cr_assert_not_null(psl, "%s", why);
	}
	for (i = 0; i < n; i++) {
		const struct ecase *c = &cases[i];
		const struct want *w = &c->w;
		struct dmarc_span from[2];
		struct dmarc_dkim dk[3];
		struct dmarc_request req;
		struct dmarc_result g;
		enum dkim_status st;
		size_t nd = 0;

		dmarc_request_init(&req);
		req.opt.mode = mode;
		req.opt.psl = psl;
		req.opt.pct_draw = c->draw;
		req.opt.max_queries = c->max_queries;
		from[0].p = c->from;
		from[0].len = c->from ? strlen(c->from) : 0;
		from[1].p = c->from2;
		from[1].len = c->from2 ? strlen(c->from2) : 0;
		req.from = from;
		req.nfrom = c->from == NULL ? 0 : c->from2 == NULL ? 1 : 2;
		for (j = 0; j < 3 && c->dkim[j] != NULL; j++) {
			bool temp = c->dkim[j][0] == '?';
			bool fail = c->dkim[j][0] == '!' || temp;

			dk[nd].domain = c->dkim[j] + fail;
			dk[nd].domain_len = strlen(c->dkim[j] + fail);
			dk[nd].temperror = temp;
			dk[nd++].pass = !fail;
		}
		req.dkim = dk;
		req.ndkim = nd;
		req.spf = c->spf;
		req.spf_domain = c->spf_domain;
		req.spf_domain_len = c->spf_domain ? strlen(c->spf_domain) : 0;

		st = dmarc_evaluate(&dns, &req, &g);
		cr_expect_eq(st, DKIM_OK, "%s %s: status %s", c->cite, c->desc,
		    dkim_status_str(st));
		cr_expect_eq(g.result, w->res,
		    "%s %s: result got %s, want %s (%s)", c->cite, c->desc,
		    dmarc_res_str(g.result), dmarc_res_str(w->res), g.reason);
		cr_expect_eq(g.policy, w->policy,
		    "%s %s: policy got %s, want %s (%s)", c->cite, c->desc,
		    dmarc_policy_str(g.policy), dmarc_policy_str(w->policy),
		    g.reason);
		cr_expect_eq(g.policy_src, w->src,
		    "%s %s: policy from got %s, want %s (%s)", c->cite,
		    c->desc, dmarc_policy_src_str(g.policy_src),
		    dmarc_policy_src_str(w->src), g.reason);
		cr_expect_eq(g.disposition, w->disp,
		    "%s %s: disposition got %s, want %s (%s)", c->cite,
		    c->desc, dmarc_policy_str(g.disposition),
		    dmarc_policy_str(w->disp), g.reason);
		if (w->pdom)
			cr_expect_str_eq(g.policy_domain, w->pdom,
			    "%s %s: policy domain got \"%s\", want \"%s\"",
			    c->cite, c->desc, g.policy_domain, w->pdom);
		if (w->org)
			cr_expect_str_eq(g.org_domain, w->org,
			    "%s %s: org domain got \"%s\", want \"%s\"",
			    c->cite, c->desc, g.org_domain, w->org);
		cr_expect_eq(g.aligned, w->aligned,
		    "%s %s: aligned got %s, want %s (%s)", c->cite, c->desc,
		    dmarc_ident_str(g.aligned), dmarc_ident_str(w->aligned),
		    g.reason);
		if (w->adom)
			cr_expect_str_eq(g.aligned_domain, w->adom,
			    "%s %s: aligned domain got \"%s\", want \"%s\"",
			    c->cite, c->desc, g.aligned_domain, w->adom);
		cr_expect_eq(g.testing, w->testing, "%s %s: testing got %d",
		    c->cite, c->desc, g.testing);
		cr_expect_eq(g.sampled_out, w->sampled,
		    "%s %s: sampled out got %d", c->cite, c->desc,
		    g.sampled_out);
		cr_expect(g.reason[0] != '\0', "%s %s: no reason", c->cite,
		    c->desc);
		if (w->reason)
			cr_expect(strstr(g.reason, w->reason) != NULL,
			    "%s %s: reason \"%s\" lacks \"%s\"", c->cite,
			    c->desc, g.reason, w->reason);
		cr_expect_leq(g.queries, c->max_queries ? c->max_queries :
		    DMARC_DEFAULT_MAX_QUERIES, "%s %s: %u queries", c->cite,
		    c->desc, g.queries);
	}
	dmarc_psl_free(psl);
	zonefile_free(zf);
}

/* ------------------------------------------------------ RFC 9989 mode */

static const char z9989[] =
    /* B.1, B.3.1, B.4.1, B.4.2 */
    "_dmarc.example.com. TXT \"v=DMARC1; p=reject; aspf=r; "
	"rua=mailto:dmarc-feedback@example.com\"\n"
    "_dmarc.signing.example.com. TXT \"v=DMARC1; p=none\"\n"
    "example.com. A 192.0.2.10\n"
    "child.example.com. A 192.0.2.11\n"
    /* B.4.3 and PSD-registered domains */
    "_dmarc.bank.example. TXT \"v=DMARC1; p=reject; psd=y\"\n"
    "_dmarc.giant.bank.example. TXT \"v=DMARC1; p=quarantine\"\n"
    "_dmarc.strictbank.bank.example. TXT \"v=DMARC1; p=reject; adkim=s; "
	"aspf=s\"\n"
    /* strict alignment */
    "_dmarc.strict.test. TXT \"v=DMARC1; p=reject; adkim=s; aspf=s\"\n"
    "_dmarc.dkims.test. TXT \"v=DMARC1; p=reject; adkim=s\"\n"
    /* sp= and np= */
    "_dmarc.policy.test. TXT \"v=DMARC1; p=reject; sp=quarantine; "
	"np=none\"\n"
    "exists.policy.test. A 192.0.2.20\n"
    "txtonly.policy.test. TXT \"hello\"\n"
    "_dmarc.nosp.test. TXT \"v=DMARC1; p=quarantine\"\n"
    "_dmarc.onlynp.test. TXT \"v=DMARC1; p=none; np=reject\"\n"
    "exists.onlynp.test. MX 10 mx.onlynp.test.\n"
    "_dmarc.spnp.test. TXT \"v=DMARC1; p=none; sp=quarantine\"\n"
    /* t= */
    "_dmarc.t-reject.test. TXT \"v=DMARC1; p=reject; t=y\"\n"
    "_dmarc.t-quar.test. TXT \"v=DMARC1; p=quarantine; t=y\"\n"
    "_dmarc.t-none.test. TXT \"v=DMARC1; p=none; t=y\"\n"
    "_dmarc.t-no.test. TXT \"v=DMARC1; p=reject; t=n\"\n"
    /* psd=n, and the §11.8 hazard without it */
    "_dmarc.mail.psdn.test. TXT \"v=DMARC1; p=quarantine; psd=n\"\n"
    "_dmarc.psdn.test. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.mail.hazard.test. TXT \"v=DMARC1; p=quarantine\"\n"
    "_dmarc.hazard.test. TXT \"v=DMARC1; p=reject\"\n"
    /* invalid, missing and multiple records */
    "_dmarc.notfirst.test. TXT \"p=reject; v=DMARC1\"\n"
    "_dmarc.spf1.test. TXT \"v=spf1 -all\"\n"
    "_dmarc.mixed.test. TXT \"v=spf1 -all\"\n"
    "_dmarc.mixed.test. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.badp.test. TXT \"v=DMARC1; p=bogus\"\n"
    "_dmarc.badprua.test. TXT \"v=DMARC1; p=bogus; "
	"rua=mailto:r@badprua.test\"\n"
    "_dmarc.badsp.test. TXT \"v=DMARC1; p=reject; sp=bogus\"\n"
    "_dmarc.nop.test. TXT \"v=DMARC1; rua=mailto:r@nop.test\"\n"
    "_dmarc.bare.test. TXT \"v=DMARC1\"\n"
    "_dmarc.badpbadrua.test. TXT \"v=DMARC1; p=bogus; "
	"rua=r@badpbadrua.test\"\n"
    "_dmarc.nopbadrua.test. TXT \"v=DMARC1; rua=r@nopbadrua.test\"\n"
    "_dmarc.nopsp.test. TXT \"v=DMARC1; sp=reject\"\n"
    "_dmarc.nopsprua.test. TXT \"v=DMARC1; sp=reject; "
	"rua=mailto:r@nopsprua.test\"\n"
    "_dmarc.junk.test. TXT \"v=DMARC1; p=quarantine; adkim=x; foo=bar; "
	"aspf\"\n"
    "_dmarc.multi.test. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.multi.test. TXT \"v=DMARC1; p=none\"\n"
    "_dmarc.m.orgm.test. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.m.orgm.test. TXT \"v=DMARC1; p=none\"\n"
    "_dmarc.orgm.test. TXT \"v=DMARC1; p=quarantine\"\n"
    "_dmarc.split.test. TXT \"v=DMARC1; p=\" \"reject\"\n"
    /* DNS failures */
    "_dmarc.sf.test. SERVFAIL\n"
    "_dmarc.walkfail.test. SERVFAIL\n"
    "_dmarc.idfail.test. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.x.idfail.test. SERVFAIL\n"
    "_dmarc.exfail.test. TXT \"v=DMARC1; p=reject; np=quarantine\"\n"
    "nx.exfail.test. SERVFAIL\n"
    "_dmarc.ok.tldfail. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.tldfail. SERVFAIL\n";

static const struct ecase rfc9989_alignment[] = {
	/* DKIM, relaxed (§3.2.10.1, §4.4.1) */
	{ "§3.2.10.2", "DKIM relaxed, same domain", "x@example.com", NULL,
	    { "example.com" }, 0, NULL, 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", NULL, I_DKIM,
	    "example.com" } },
	{ "§3.2.10.1", "DKIM relaxed, identifier is a subdomain",
	    "x@example.com", NULL, { "mail.example.com" }, 0, NULL, 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", "example.com",
	    I_DKIM, "mail.example.com" } },
	{ "B.1.2 ex.2", "DKIM relaxed, identifier is the parent",
	    "sender@child.example.com", NULL, { "example.com" }, 0, NULL, 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", "example.com",
	    I_DKIM, "example.com" } },
	{ "B.1.2 ex.3", "DKIM relaxed, unrelated domain",
	    "sender@child.example.com", NULL, { "example.net" }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", "example.com",
	    I_NONE, "", .reason = "d=example.net not aligned" } },
	{ "B.4.3", "DKIM relaxed, PSD-registered siblings",
	    "x@giant.bank.example", NULL, { "mail.mega.bank.example" }, 0,
	    NULL, 0, 0,
	    { R_FAIL, P_QUAR, S_P, P_QUAR, "giant.bank.example",
	    "giant.bank.example", I_NONE, "" } },
	{ "B.4.3", "DKIM relaxed, under the same PSD-registered domain",
	    "x@giant.bank.example", NULL, { "mail.giant.bank.example" }, 0,
	    NULL, 0, 0,
	    { R_PASS, P_QUAR, S_P, P_NONE, "giant.bank.example",
	    "giant.bank.example", I_DKIM, "mail.giant.bank.example" } },
	{ "§4.4", "DKIM d= compared case-insensitively",
	    "x@strict.test", NULL, { "STRICT.Test" }, 0, NULL, 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "strict.test", NULL, I_DKIM,
	    "strict.test" } },
	/* DKIM, strict (§3.2.10.2) */
	{ "B.1.2 ex.1", "DKIM strict, same domain", "x@strict.test", NULL,
	    { "strict.test" }, 0, NULL, 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "strict.test", "", I_DKIM,
	    "strict.test" } },
	{ "§3.2.10.2", "DKIM strict, identifier is a subdomain",
	    "x@strict.test", NULL, { "mail.strict.test" }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "strict.test", "", I_NONE, "" } },
	{ "§3.2.10.2", "DKIM strict, identifier is the parent",
	    "x@a.strict.test", NULL, { "strict.test" }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "strict.test", NULL, I_NONE, "" } },
	{ "§3.2.10.2", "DKIM strict, unrelated", "x@strict.test", NULL,
	    { "example.com" }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "strict.test", NULL, I_NONE, "" } },
	{ "§3.2.10.2", "DKIM strict, PSD-registered domain itself",
	    "x@strictbank.bank.example", NULL, { "strictbank.bank.example" },
	    0, NULL, 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "strictbank.bank.example", NULL,
	    I_DKIM, "strictbank.bank.example" } },
	{ "§3.2.10.2", "DKIM strict, below a PSD-registered domain",
	    "x@strictbank.bank.example", NULL,
	    { "mail.strictbank.bank.example" }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "strictbank.bank.example", NULL,
	    I_NONE, "" } },
	/* SPF, relaxed (§4.4.2) */
	{ "B.1.1 ex.1", "SPF relaxed, same domain", "sender@example.com",
	    NULL, { NULL }, SPF_PASS, "example.com", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", NULL, I_SPF,
	    "example.com" } },
	{ "B.1.1 ex.2", "SPF relaxed, MAIL FROM a subdomain",
	    "sender@example.com", NULL, { NULL }, SPF_PASS,
	    "child.example.com", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", "example.com",
	    I_SPF, "child.example.com" } },
	{ "§3.2.10.1", "SPF relaxed, MAIL FROM the parent",
	    "sender@child.example.com", NULL, { NULL }, SPF_PASS,
	    "example.com", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", "example.com",
	    I_SPF, "example.com" } },
	{ "B.1.1 ex.3", "SPF relaxed, unrelated",
	    "sender@child.example.com", NULL, { NULL }, SPF_PASS,
	    "example.net", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", NULL, I_NONE, "",
	    .reason = "SPF pass for example.net not aligned" } },
	{ "B.4.3", "SPF relaxed, MAIL FROM under the PSD-registered org",
	    "x@giant.bank.example", NULL, { NULL }, SPF_PASS,
	    "mail.giant.bank.example", 0, 0,
	    { R_PASS, P_QUAR, S_P, P_NONE, "giant.bank.example",
	    "giant.bank.example", I_SPF, "mail.giant.bank.example" } },
	{ "B.4.3", "SPF relaxed, PSD-registered sibling",
	    "x@giant.bank.example", NULL, { NULL }, SPF_PASS,
	    "mega.bank.example", 0, 0,
	    { R_FAIL, P_QUAR, S_P, P_QUAR, "giant.bank.example", NULL,
	    I_NONE, "" } },
	/* SPF, strict */
	{ "§3.2.10.2", "SPF strict, same domain", "x@strict.test", NULL,
	    { NULL }, SPF_PASS, "strict.test", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "strict.test", NULL, I_SPF,
	    "strict.test" } },
	{ "§3.2.10.2", "SPF strict, MAIL FROM a subdomain", "x@strict.test",
	    NULL, { NULL }, SPF_PASS, "bounce.strict.test", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "strict.test", NULL, I_NONE, "" } },
	{ "§3.2.10.2", "SPF strict, MAIL FROM the parent",
	    "x@a.strict.test", NULL, { NULL }, SPF_PASS, "strict.test", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "strict.test", NULL, I_NONE, "" } },
	{ "§3.2.10.2", "SPF strict, unrelated", "x@strict.test", NULL,
	    { NULL }, SPF_PASS, "example.net", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "strict.test", NULL, I_NONE, "" } },
	{ "§3.2.10.2", "SPF strict, PSD-registered domain itself",
	    "x@strictbank.bank.example", NULL, { NULL }, SPF_PASS,
	    "strictbank.bank.example", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, NULL, NULL, I_SPF,
	    "strictbank.bank.example" } },
	{ "§3.2.10.2", "SPF strict, below a PSD-registered domain",
	    "x@strictbank.bank.example", NULL, { NULL }, SPF_PASS,
	    "mail.strictbank.bank.example", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, NULL, NULL, I_NONE, "" } },
	/* modes apart; results that do not count */
	{ "§4.7 adkim/aspf", "adkim=s, aspf=r: DKIM sub fails, SPF sub "
	    "passes", "x@dkims.test", NULL, { "mail.dkims.test" }, SPF_PASS,
	    "bounce.dkims.test", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "dkims.test", "dkims.test", I_SPF,
	    "bounce.dkims.test" } },
	{ "§4.4.1", "a failing DKIM signature does not count",
	    "x@example.com", NULL, { "!example.com" }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", NULL, I_NONE, "",
	    .reason = "no passing DKIM signature" } },
	{ "§4.4.2", "SPF softfail with an aligned domain does not count",
	    "x@example.com", NULL, { NULL }, DMARC_SPF_SOFTFAIL,
	    "example.com", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", NULL, I_NONE, "",
	    .reason = "SPF softfail" } },
	{ "§4.4.1", "any one aligned DKIM identifier is enough",
	    "x@example.com", NULL, { "example.net", "!example.com",
	    "news.example.com" }, 0, NULL, 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", NULL, I_DKIM,
	    "news.example.com" } },
	{ "§5.3.5", "both aligned: DKIM reported first", "x@example.com",
	    NULL, { "example.com" }, SPF_PASS, "example.com", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", NULL, I_DKIM,
	    "example.com", .reason = "SPF example.com aligned" } },
	{ "B.3.1", "SMTP session example", "x@example.com", NULL,
	    { "example.com" }, SPF_PASS, "mail.example.com", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", "example.com",
	    I_DKIM, "example.com" } },
	{ "B.4.1", "simple organizational and policy example",
	    "x@example.com", NULL, { "signing.example.com" }, SPF_PASS,
	    "example.com", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", "example.com",
	    I_DKIM, "signing.example.com" } },
	{ "B.4.1", "same, nothing passes: policy of the author domain",
	    "x@example.com", NULL, { "!signing.example.com" },
	    DMARC_SPF_FAIL, "example.com", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", NULL, I_NONE, "" } },
	{ "B.4.2", "deep tree walk example",
	    "x@a.b.c.d.e.f.g.h.i.j.k.example.com", NULL,
	    { "signing.example.com" }, SPF_PASS, "example.com", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", "example.com",
	    I_DKIM, "signing.example.com" } },
	{ "B.4.2", "deep tree walk, nothing passes: policy of example.com",
	    "x@a.b.c.d.e.f.g.h.i.j.k.example.com", NULL, { NULL },
	    DMARC_SPF_FAIL, "example.com", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", "example.com",
	    I_NONE, "" } },
	{ "B.4.3", "example with a PSD DMARC policy record",
	    "x@giant.bank.example", NULL, { "mail.mega.bank.example" },
	    SPF_PASS, "mail.giant.bank.example", 0, 0,
	    { R_PASS, P_QUAR, S_P, P_NONE, "giant.bank.example",
	    "giant.bank.example", I_SPF, "mail.giant.bank.example" } },
};

Test(rfc9989, alignment)
{
	run_cases(z9989, DMARC_MODE_RFC9989, rfc9989_alignment,
	    NELEM(rfc9989_alignment));
}

static const struct ecase rfc9989_policy[] = {
	/* p, sp, np (§4.10.1, §4.7) */
	{ "§4.10.1", "record of the author domain: p=", "x@example.com",
	    NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", NULL, I_NONE, "",
	    .reason = "policy reject from p= of _dmarc.example.com" } },
	{ "§4.10.1", "existing subdomain: sp=", "x@exists.policy.test",
	    NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_QUAR, S_SP, P_QUAR, "policy.test", "policy.test",
	    I_NONE, "" } },
	{ "§4.7 np, §3.2.13", "non-existent subdomain (NXDOMAIN): np=",
	    "x@nx.policy.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_NONE, S_NP, P_NONE, "policy.test", "policy.test",
	    I_NONE, "", .reason = "does not exist" } },
	{ "§4.7 np, §3.2.13", "below a non-existent name: np=",
	    "x@a.b.nx.policy.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_NONE, S_NP, P_NONE, "policy.test", NULL, I_NONE,
	    "" } },
	{ "A.4", "NODATA means the name exists: sp=",
	    "x@txtonly.policy.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_QUAR, S_SP, P_QUAR, "policy.test", NULL, I_NONE,
	    "" } },
	{ "§4.7 np", "np= does not apply to the domain itself",
	    "x@policy.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "policy.test", NULL, I_NONE, "" } },
	{ "§4.7 sp", "no sp=: subdomains get p=", "x@a.nosp.test", NULL,
	    { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_QUAR, S_P, P_QUAR, "nosp.test", NULL, I_NONE, "" } },
	{ "§4.7 np", "np= only, non-existent subdomain",
	    "x@nx.onlynp.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_NP, P_REJ, "onlynp.test", NULL, I_NONE, "" } },
	{ "§4.7 np", "np= only, existing subdomain (MX): p=",
	    "x@exists.onlynp.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_NONE, S_P, P_NONE, "onlynp.test", NULL, I_NONE, "" } },
	{ "§4.7 np", "no np=: non-existent subdomain gets sp=",
	    "x@nx.spnp.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_QUAR, S_SP, P_QUAR, "spnp.test", NULL, I_NONE, "" } },
	/* t= (§4.7 t, A.6) */
	{ "§4.7 t", "t=y lowers reject to quarantine", "x@t-reject.test",
	    NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_QUAR, "t-reject.test", NULL, I_NONE, "",
	    .testing = true, .reason = "t=y" } },
	{ "§4.7 t", "t=y lowers quarantine to none", "x@t-quar.test", NULL,
	    { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_QUAR, S_P, P_NONE, "t-quar.test", NULL, I_NONE, "",
	    .testing = true } },
	{ "§4.7 t", "t=y has no effect on p=none", "x@t-none.test", NULL,
	    { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_NONE, S_P, P_NONE, "t-none.test", NULL, I_NONE,
	    "" } },
	{ "§4.7 t", "t=n applies the policy", "x@t-no.test", NULL, { NULL },
	    0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "t-no.test", NULL, I_NONE, "" } },
	{ "§4.7 t", "t=y on a pass is still reported", "x@t-reject.test",
	    NULL, { "t-reject.test" }, 0, NULL, 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "t-reject.test", NULL, I_DKIM,
	    "t-reject.test", .testing = true } },
	/* psd= (§4.7 psd, §4.10.1, §4.10.2, §11.8) */
	{ "§4.10.2 rule 1", "psd=n makes its domain the org",
	    "x@a.mail.psdn.test", NULL, { "psdn.test" }, 0, NULL, 0, 0,
	    { R_FAIL, P_QUAR, S_P, P_QUAR, "mail.psdn.test",
	    "mail.psdn.test", I_NONE, "" } },
	{ "§4.10.2 rule 1", "psd=n: identifier under it aligns",
	    "x@a.mail.psdn.test", NULL, { "b.mail.psdn.test" }, 0, NULL, 0, 0,
	    { R_PASS, P_QUAR, S_P, P_NONE, "mail.psdn.test",
	    "mail.psdn.test", I_DKIM, "b.mail.psdn.test" } },
	{ "§11.8", "without psd=n the fewest-labels record is the org",
	    "x@a.mail.hazard.test", NULL, { "evil.hazard.test" }, 0, NULL, 0,
	    0, { R_PASS, P_REJ, S_P, P_NONE, "hazard.test", "hazard.test",
	    I_DKIM, "evil.hazard.test" } },
	{ "§4.10.1", "PSD policy when the org publishes none",
	    "x@nopolicy.bank.example", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "bank.example",
	    "nopolicy.bank.example", I_NONE, "" } },
	{ "§4.10.1 note", "PSD policy not used below an org with a record",
	    "x@sub.giant.bank.example", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_QUAR, S_P, P_QUAR, "giant.bank.example",
	    "giant.bank.example", I_NONE, "" } },
	{ "§4.10.2", "psd=y at the author domain itself",
	    "x@bank.example", NULL, { "bank.example" }, 0, NULL, 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "bank.example", NULL, I_DKIM,
	    "bank.example" } },
	{ "§4.10.2 rule 2", "PSD siblings do not align relaxed",
	    "x@nopolicy.bank.example", NULL, { "other.bank.example" }, 0,
	    NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "bank.example",
	    "nopolicy.bank.example", I_NONE, "" } },
	/* missing, invalid and multiple records */
	{ "§4.10.1", "no record anywhere: none", "x@nodmarc.test", NULL,
	    { "nodmarc.test" }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "", NULL, I_NONE, "",
	    .reason = "no DMARC policy record" } },
	{ "§4.7 v", "v= not first: record ignored", "x@notfirst.test",
	    NULL, { NULL }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "", NULL, I_NONE, "" } },
	{ "§4.10 step 2", "a record that is not DMARC is discarded",
	    "x@spf1.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "", NULL, I_NONE, "" } },
	{ "§4.10 step 2", "one DMARC record among other TXT applies",
	    "x@mixed.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "mixed.test", NULL, I_NONE, "" } },
	/* §4.10.1: without a valid p= (missing or invalid), p=none only
	 * when rua= has a valid URI, else no DMARC at all; §4.7's "treated
	 * as if it included p=none" for a missing p= refers to that rule. */
	{ "§4.10.1", "invalid p= and no rua=: DMARC not applied",
	    "x@badp.test", NULL, { "badp.test" }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "badp.test", NULL, I_NONE, "",
	    .reason = "has an invalid p= and no valid rua=: DMARC not "
	    "applied (RFC 9989 §4.10.1)" } },
	{ "§4.10.1", "invalid p= with a valid rua=: p=none",
	    "x@badprua.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_NONE, S_DEF, P_NONE, "badprua.test", NULL, I_NONE,
	    "", .reason = "has an invalid p= but a valid rua=: taken as "
	    "p=none (RFC 9989 §4.10.1)" } },
	{ "§4.10.1", "invalid p= and an rua= with no valid URI: DMARC not "
	    "applied", "x@badpbadrua.test", NULL, { "badpbadrua.test" }, 0,
	    NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "badpbadrua.test", NULL, I_NONE,
	    "", .reason = "has an invalid p= and no valid rua=" } },
	{ "§4.7 p, §4.10.1", "no p= with a valid rua=: p=none",
	    "x@nop.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_NONE, S_DEF, P_NONE, "nop.test", NULL, I_NONE, "",
	    .reason = "has no p= but a valid rua=: taken as p=none "
	    "(RFC 9989 §4.10.1)" } },
	{ "§4.7 p, §4.10.1", "no p= and no rua=: DMARC not applied, even "
	    "with an aligned pass", "x@bare.test", NULL, { "bare.test" }, 0,
	    NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "bare.test", NULL, I_NONE, "",
	    .reason = "has no p= and no valid rua=: DMARC not applied "
	    "(RFC 9989 §4.10.1)" } },
	{ "§4.7 p, §4.10.1", "no p= and an rua= with no valid URI: DMARC not "
	    "applied", "x@nopbadrua.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "nopbadrua.test", NULL, I_NONE,
	    "", .reason = "has no p= and no valid rua=" } },
	{ "§4.7 p, §4.10.1", "no p= but sp=, no rua=: not applied to a "
	    "subdomain either", "x@a.nopsp.test", NULL, { NULL }, 0, NULL, 0,
	    0, { R_NONE, P_ABS, S_NONE, P_NONE, "nopsp.test", NULL, I_NONE,
	    "", .reason = "has no p= and no valid rua=" } },
	{ "§4.7 p, §4.10.1", "no p= but sp= and a valid rua=: p=none for a "
	    "subdomain, not sp=", "x@a.nopsprua.test", NULL, { NULL }, 0,
	    NULL, 0, 0,
	    { R_FAIL, P_NONE, S_DEF, P_NONE, "nopsprua.test", NULL, I_NONE,
	    "", .reason = "has no p= but a valid rua=: taken as p=none" } },
	{ "§4.10.1", "invalid sp= and no rua=: DMARC not applied",
	    "x@badsp.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "badsp.test", NULL, I_NONE,
	    "" } },
	{ "§4.8", "bad adkim= falls back to relaxed", "x@junk.test", NULL,
	    { "sub.junk.test" }, 0, NULL, 0, 0,
	    { R_PASS, P_QUAR, S_P, P_NONE, "junk.test", "junk.test", I_DKIM,
	    "sub.junk.test" } },
	{ "§4.10 step 2", "several records at the author: discarded, none "
	    "above", "x@multi.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "", NULL, I_NONE, "",
	    .reason = "discarded" } },
	{ "§4.10 step 2", "several records at the author: the walk "
	    "continues", "x@m.orgm.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_QUAR, S_P, P_QUAR, "orgm.test", "orgm.test", I_NONE,
	    "", .reason = "discarded" } },
	{ "§4.5", "TXT strings are joined", "x@split.test", NULL, { NULL },
	    0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "split.test", NULL, I_NONE, "" } },
	{ "§5.3.1", "U-label author domain looked up as A-label",
	    "x@b\xc3\xbc" "cher.example.com", NULL, { "example.com" }, 0, NULL,
	    0, 0, { R_PASS, P_REJ, S_P, P_NONE, "example.com", "example.com",
	    I_DKIM, "example.com" } },
};

Test(rfc9989, policy)
{
	run_cases(z9989, DMARC_MODE_RFC9989, rfc9989_policy,
	    NELEM(rfc9989_policy));
}

static const struct ecase rfc9989_errors[] = {
	/* From (§5.3.1, §4.4, §11.5) */
	{ "§5.3.1", "two From domains: permerror", "a@example.com, "
	    "b@example.net", NULL, { "example.com" }, 0, NULL, 0, 0,
	    { R_PERM, P_ABS, S_NONE, P_NONE, "", "", I_NONE, "",
	    .reason = "message has 2 From addresses" } },
	{ "§5.3.1", "two From addresses, one domain: evaluated",
	    "a@example.com, b@example.com", NULL, { "evil.example" }, 0,
	    NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", NULL, I_NONE, "",
	    .reason = "2 From addresses, all in example.com" } },
	{ "§5.3.1", "two From fields: permerror", "a@example.com",
	    "a@example.com", { "example.com" }, 0, NULL, 0, 0,
	    { R_PERM, P_ABS, S_NONE, P_NONE, "", "", I_NONE, "",
	    .reason = "message has 2 From fields" } },
	{ "§5.3.1", "no From field: permerror", NULL, NULL, { NULL }, 0,
	    NULL, 0, 0,
	    { R_PERM, P_ABS, S_NONE, P_NONE, "", "", I_NONE, "",
	    .reason = "no From field" } },
	{ "§5.3.1", "empty group: permerror", "undisclosed-recipients:;",
	    NULL, { NULL }, 0, NULL, 0, 0,
	    { R_PERM, P_ABS, S_NONE, P_NONE, "", "", I_NONE, "" } },
	{ "§4.4", "malformed From: permerror", "John <john@example.com",
	    NULL, { NULL }, 0, NULL, 0, 0,
	    { R_PERM, P_ABS, S_NONE, P_NONE, "", "", I_NONE, "",
	    .reason = "not a valid address list" } },
	/* DNS (§4.10.1 last paragraphs, §5.3.6) */
	{ "§5.3.6", "author lookup fails temporarily", "x@sf.test", NULL,
	    { "sf.test" }, 0, NULL, 0, 0,
	    { R_TEMP, P_ABS, S_NONE, P_NONE, "", NULL, I_NONE, "",
	    .reason = "_dmarc.sf.test failed" } },
	{ "§5.3.6", "tree walk lookup fails temporarily",
	    "x@a.walkfail.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_TEMP, P_ABS, S_NONE, P_NONE, "", NULL, I_NONE, "",
	    .reason = "_dmarc.walkfail.test failed" } },
	{ "§5.3.6", "identifier's walk fails: temperror", "x@idfail.test",
	    NULL, { "x.idfail.test" }, 0, NULL, 0, 0,
	    { R_TEMP, P_REJ, S_P, P_NONE, "idfail.test", NULL, I_NONE, "",
	    .reason = "_dmarc.x.idfail.test failed" } },
	{ "§5.3.5", "identifier's walk fails but another aligns: pass",
	    "x@idfail.test", NULL, { "x.idfail.test" }, SPF_PASS,
	    "idfail.test", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "idfail.test", NULL, I_SPF,
	    "idfail.test" } },
	{ "§4.10.2", "org walk fails but strict comparison suffices",
	    "x@ok.tldfail", NULL, { "ok.tldfail" }, 0, NULL, 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "ok.tldfail", "", I_DKIM,
	    "ok.tldfail" } },
	{ "§5.3.6", "org walk needed and fails", "x@ok.tldfail", NULL,
	    { "a.ok.tldfail" }, 0, NULL, 0, 0,
	    { R_TEMP, P_REJ, S_P, P_NONE, "ok.tldfail", "", I_NONE, "",
	    .reason = "_dmarc.tldfail failed" } },
	{ "§3.2.13", "existence test for np= fails: temperror",
	    "x@nx.exfail.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_TEMP, P_ABS, S_NONE, P_NONE, "exfail.test", NULL, I_NONE, "",
	    .reason = "cannot tell whether nx.exfail.test exists" } },
	{ "§3.2.13", "existence test fails on a pass: still pass",
	    "x@nx.exfail.test", NULL, { "exfail.test" }, 0, NULL, 0, 0,
	    { R_PASS, P_ABS, S_NONE, P_NONE, "exfail.test", NULL, I_DKIM,
	    "exfail.test" } },
	/* A temporary failure of SPF or DKIM for an identifier that would
	 * align, and nothing passing: neither pass nor fail (RFC 9989
	 * §5.3.6; RFC 7489 §6.6.2 says so outright). One that could not
	 * align anyway changes nothing: a sender cannot turn a fail into a
	 * temperror with a domain of its own whose DNS does not answer. */
	{ "§5.3.6", "SPF temperror, aligned domain: temperror",
	    "x@example.com", NULL, { NULL }, DMARC_SPF_TEMPERROR,
	    "bounce.example.com", 0, 0,
	    { R_TEMP, P_REJ, S_P, P_NONE, "example.com", NULL, I_NONE, "",
	    .reason = "SPF temperror for bounce.example.com" } },
	{ "§5.3.6", "SPF temperror, unrelated domain: fail",
	    "x@example.com", NULL, { NULL }, DMARC_SPF_TEMPERROR,
	    "example.net", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", NULL, I_NONE, "" } },
	{ "§5.3.6", "SPF temperror, strict and not identical: fail",
	    "x@strict.test", NULL, { NULL }, DMARC_SPF_TEMPERROR,
	    "bounce.strict.test", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "strict.test", NULL, I_NONE, "" } },
	{ "§5.3.6", "DKIM temperror, aligned d=: temperror",
	    "x@example.com", NULL, { "?example.com" }, 0, NULL, 0, 0,
	    { R_TEMP, P_REJ, S_P, P_NONE, "example.com", NULL, I_NONE, "",
	    .reason = "DKIM temperror for d=example.com" } },
	{ "§5.3.6", "DKIM temperror, unrelated d=: fail",
	    "x@example.com", NULL, { "?evil.example" }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", NULL, I_NONE, "" } },
	{ "§5.3.5", "DKIM temperror but SPF aligns: pass",
	    "x@example.com", NULL, { "?example.com" }, SPF_PASS,
	    "example.com", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", NULL, I_SPF,
	    "example.com" } },
	{ "§5.3.6", "DKIM fail (not temporary), aligned d=: fail",
	    "x@example.com", NULL, { "!example.com" }, DMARC_SPF_FAIL,
	    "example.com", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", NULL, I_NONE, "" } },
	{ "§4.10", "query budget spent: temperror",
	    "x@a.b.c.d.e.f.g.h.i.j.k.example.com", NULL, { NULL }, 0, NULL, 0,
	    3, { R_TEMP, P_ABS, S_NONE, P_NONE, "", NULL, I_NONE, "",
	    .reason = "budget" } },
};

Test(rfc9989, errors)
{
	run_cases(z9989, DMARC_MODE_RFC9989, rfc9989_errors,
	    NELEM(rfc9989_errors));
}

Test(rfc9989, relaxed_alignment_skips_unrelated_walks)
{
	/* §4.10.2 asks for Tree Walks of identifiers; one that does not end
	 * in the author's Organizational Domain cannot share it, so none
	 * is needed. */
	struct recdns r = { .zf = zone(z9989) };
	struct pdns dns = { rec_lookup, &r };
	struct dmarc_span from = { "x@example.com", 13 };
	struct dmarc_dkim dk = { "a.b.c.d.e.f.example.net", 23, true };
	struct dmarc_request req;
	struct dmarc_result res;

	dmarc_request_init(&req);
	req.from = &from;
	req.nfrom = 1;
	req.dkim = &dk;
	req.ndkim = 1;
	cr_assert_eq(dmarc_evaluate(&dns, &req, &res), DKIM_OK);
	cr_expect_eq(res.result, DMARC_RES_FAIL);
	cr_expect_eq(r.n, 2, "asked %zu names", r.n);
	cr_expect_str_eq(r.names[0], "_dmarc.example.com");
	cr_expect_str_eq(r.names[1], "_dmarc.com");
	zonefile_free(r.zf);
}

/* ------------------------------------------------------ RFC 7489 mode */

static const char z7489[] =
    "_dmarc.example.co.uk. TXT \"v=DMARC1; p=reject; sp=quarantine\"\n"
    "_dmarc.co.uk. TXT \"v=DMARC1; p=none\"\n"
    "_dmarc.foo.blogspot.com. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.blogspot.com. TXT \"v=DMARC1; p=none\"\n"
    "_dmarc.example.com. TXT \"v=DMARC1; p=reject; aspf=r\"\n"
    "_dmarc.strict.example.org. TXT \"v=DMARC1; p=reject; adkim=s; "
	"aspf=s\"\n"
    "_dmarc.pct.test. TXT \"v=DMARC1; p=reject; pct=20\"\n"
    "_dmarc.pctq.test. TXT \"v=DMARC1; p=quarantine; pct=0\"\n"
    "_dmarc.pctbad.test. TXT \"v=DMARC1; p=reject; pct=101\"\n"
    "_dmarc.a.multiat.test. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.a.multiat.test. TXT \"v=DMARC1; p=none\"\n"
    "_dmarc.multiat.test. TXT \"v=DMARC1; p=quarantine\"\n"
    "_dmarc.multiorg.test. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.multiorg.test. TXT \"v=DMARC1; p=none\"\n"
    "_dmarc.spauthor.test. TXT \"v=DMARC1; p=reject; sp=none\"\n"
    "_dmarc.np7489.test. TXT \"v=DMARC1; p=reject; np=none\"\n"
    "_dmarc.t7489.test. TXT \"v=DMARC1; p=reject; t=y\"\n"
    "_dmarc.nop.test. TXT \"v=DMARC1; rua=mailto:r@nop.test\"\n"
    "_dmarc.bare.test. TXT \"v=DMARC1; sp=reject\"\n"
    "_dmarc.badsp.test. TXT \"v=DMARC1; p=reject; sp=bogus\"\n"
    "_dmarc.psd.test. TXT \"v=DMARC1; p=quarantine; psd=y\"\n"
    "_dmarc.b.unlisted. TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.a.xn--55qx5d.cn. TXT \"v=DMARC1; p=quarantine\"\n"
    "_dmarc.sf.test. SERVFAIL\n"
    "_dmarc.sforg.test. SERVFAIL\n";

static const struct ecase rfc7489_cases[] = {
	/* Organizational Domain from the PSL (§3.2) */
	{ "§3.2", "co.uk: org is example.co.uk, sp= applies",
	    "x@mail.example.co.uk", NULL, { "example.co.uk" }, 0, NULL, 0, 0,
	    { R_PASS, P_QUAR, S_SP, P_NONE, "example.co.uk", "example.co.uk",
	    I_DKIM, "example.co.uk" } },
	{ "§6.6.3 step 1", "author's own record: p=", "x@example.co.uk",
	    NULL, { "!example.co.uk" }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.co.uk", "example.co.uk",
	    I_NONE, "" } },
	{ "§3.1.1", "d=co.uk never aligns", "x@example.co.uk", NULL,
	    { "co.uk" }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.co.uk", NULL, I_NONE,
	    "" } },
	{ "§3.2", "co.uk siblings do not align", "x@example.co.uk", NULL,
	    { "other.co.uk" }, SPF_PASS, "bounce.other.co.uk", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.co.uk", NULL, I_NONE,
	    "" } },
	{ "§3.1.2", "SPF relaxed under co.uk", "x@example.co.uk", NULL,
	    { NULL }, SPF_PASS, "bounce.example.co.uk", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.co.uk", NULL, I_SPF,
	    "bounce.example.co.uk" } },
	{ "§3.2", "private PSL section: foo.blogspot.com is an org",
	    "x@bar.foo.blogspot.com", NULL, { "foo.blogspot.com" }, 0, NULL, 0,
	    0, { R_PASS, P_REJ, S_P, P_NONE, "foo.blogspot.com",
	    "foo.blogspot.com", I_DKIM, "foo.blogspot.com" } },
	{ "§3.2", "private PSL section: blogspot siblings do not align",
	    "x@foo.blogspot.com", NULL, { "other.blogspot.com" }, 0, NULL, 0,
	    0, { R_FAIL, P_REJ, S_P, P_REJ, "foo.blogspot.com", NULL, I_NONE,
	    "" } },
	{ "§3.2", "TLD not in the PSL: the default rule '*'",
	    "x@a.b.unlisted", NULL, { "c.b.unlisted" }, 0, NULL, 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "b.unlisted", "b.unlisted", I_DKIM,
	    "c.b.unlisted" } },
	{ "§6.6.1", "IDN author domain: A-label, PSL rule 公司.cn",
	    "x@mail.a.\xe5\x85\xac\xe5\x8f\xb8.cn", NULL, { NULL }, 0, NULL, 0,
	    0, { R_FAIL, P_QUAR, S_P, P_QUAR, "a.xn--55qx5d.cn",
	    "a.xn--55qx5d.cn", I_NONE, "" } },
	/* §3.1.2 example */
	{ "§3.1.2", "cbg.bounces.example.com aligns relaxed",
	    "payments@example.com", NULL, { NULL }, SPF_PASS,
	    "cbg.bounces.example.com", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "example.com", "example.com", I_SPF,
	    "cbg.bounces.example.com" } },
	{ "§3.1.1", "strict: d= of the parent does not align",
	    "x@strict.example.org", NULL, { "example.org" }, SPF_PASS,
	    "bounce.strict.example.org", 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "strict.example.org",
	    "example.org", I_NONE, "" } },
	{ "§3.1.1", "strict: the same name aligns", "x@strict.example.org",
	    NULL, { NULL }, SPF_PASS, "Strict.Example.ORG", 0, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "strict.example.org", NULL, I_SPF,
	    "strict.example.org" } },
	{ "§6.6.3", "a record between author and org is not consulted",
	    "x@news.strict.example.org", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "", "example.org", I_NONE, "",
	    .reason = "_dmarc.example.org" } },
	/* policy discovery (§6.6.3) */
	{ "§6.6.3 step 5", "several records at the author: none",
	    "x@a.multiat.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "", NULL, I_NONE, "",
	    .reason = "step 5" } },
	{ "§6.6.3 step 5", "several records at the org: none",
	    "x@a.multiorg.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "", NULL, I_NONE, "" } },
	{ "§6.6.3 step 3", "no record at author or org: none",
	    "x@a.nothing.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "", "nothing.test", I_NONE,
	    "" } },
	{ "§6.6.3 step 6", "no p= but rua=: p=none", "x@nop.test", NULL,
	    { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_NONE, S_DEF, P_NONE, "nop.test", NULL, I_NONE, "" } },
	{ "§6.6.3 step 6", "no p= and no rua=: none", "x@bare.test", NULL,
	    { NULL }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "bare.test", NULL, I_NONE, "" } },
	{ "§6.6.3 step 6", "invalid sp= and no rua=: none",
	    "x@a.badsp.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_NONE, P_ABS, S_NONE, P_NONE, "badsp.test", NULL, I_NONE,
	    "" } },
	{ "§6.3 sp", "sp= at the author's own record is not used",
	    "x@spauthor.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "spauthor.test", NULL, I_NONE, "" } },
	{ "§6.3 sp", "sp= for a subdomain", "x@a.spauthor.test", NULL,
	    { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_NONE, S_SP, P_NONE, "spauthor.test", NULL, I_NONE,
	    "" } },
	{ "§6.3", "np= is not an RFC 7489 tag", "x@nx.np7489.test", NULL,
	    { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "np7489.test", NULL, I_NONE, "" } },
	{ "§6.3", "t= is not an RFC 7489 tag", "x@t7489.test", NULL,
	    { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "t7489.test", NULL, I_NONE, "" } },
	{ "§3.2", "psd= is not an RFC 7489 tag: the PSL decides",
	    "x@a.psd.test", NULL, { "b.psd.test" }, 0, NULL, 0, 0,
	    { R_PASS, P_QUAR, S_P, P_NONE, "psd.test", "psd.test", I_DKIM,
	    "b.psd.test" } },
	/* pct= (§6.3, §6.6.4) */
	{ "§6.6.4", "pct=20, draw 19: sampled, reject", "x@pct.test", NULL,
	    { NULL }, 0, NULL, 19, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "pct.test", NULL, I_NONE, "" } },
	{ "§6.6.4", "pct=20, draw 20: not sampled, quarantine",
	    "x@pct.test", NULL, { NULL }, 0, NULL, 20, 0,
	    { R_FAIL, P_REJ, S_P, P_QUAR, "pct.test", NULL, I_NONE, "",
	    .sampled = true, .reason = "pct=20, draw 20" } },
	{ "§6.6.4", "pct=20, draw 99: not sampled, quarantine",
	    "x@pct.test", NULL, { NULL }, 0, NULL, 99, 0,
	    { R_FAIL, P_REJ, S_P, P_QUAR, "pct.test", NULL, I_NONE, "",
	    .sampled = true } },
	{ "§6.6.4", "pct=0 quarantine, draw 0: not sampled, none",
	    "x@pctq.test", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_QUAR, S_P, P_NONE, "pctq.test", NULL, I_NONE, "",
	    .sampled = true } },
	{ "§6.3 pct", "default pct=100, draw 99: sampled",
	    "x@example.com", NULL, { NULL }, 0, NULL, 99, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", NULL, I_NONE, "" } },
	{ "§6.3 pct", "pct=101 is invalid: 100", "x@pctbad.test", NULL,
	    { NULL }, 0, NULL, 99, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "pctbad.test", NULL, I_NONE, "" } },
	{ "§6.6.4", "pct does not touch a pass", "x@pct.test", NULL,
	    { "pct.test" }, 0, NULL, 99, 0,
	    { R_PASS, P_REJ, S_P, P_NONE, "pct.test", NULL, I_DKIM,
	    "pct.test" } },
	{ "§6.6.2", "SPF temperror, aligned: temperror", "x@example.co.uk",
	    NULL, { NULL }, DMARC_SPF_TEMPERROR, "bounce.example.co.uk", 0, 0,
	    { R_TEMP, P_REJ, S_P, P_NONE, "example.co.uk", NULL, I_NONE, "",
	    .reason = "SPF temperror" } },
	{ "§6.6.2", "DKIM temperror, other org: fail", "x@example.co.uk",
	    NULL, { "?other.co.uk" }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.co.uk", NULL, I_NONE,
	    "" } },
	/* DNS and From */
	{ "§6.6.3", "author lookup fails: temperror", "x@sf.test", NULL,
	    { NULL }, 0, NULL, 0, 0,
	    { R_TEMP, P_ABS, S_NONE, P_NONE, "", NULL, I_NONE, "" } },
	{ "§6.6.3", "org lookup fails: temperror", "x@a.sforg.test", NULL,
	    { NULL }, 0, NULL, 0, 0,
	    { R_TEMP, P_ABS, S_NONE, P_NONE, "", "sforg.test", I_NONE, "" } },
	{ "§6.6.1", "two From domains: permerror",
	    "a@example.com, b@example.org", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_PERM, P_ABS, S_NONE, P_NONE, "", "", I_NONE, "" } },
	{ "§6.6.1", "two From addresses, a single domain: evaluated",
	    "a@example.com, b@example.com", NULL, { NULL }, 0, NULL, 0, 0,
	    { R_FAIL, P_REJ, S_P, P_REJ, "example.com", NULL, I_NONE, "" } },
};

Test(rfc7489, table)
{
	run_cases(z7489, DMARC_MODE_RFC7489, rfc7489_cases,
	    NELEM(rfc7489_cases));
}

Test(rfc7489, at_most_two_queries)
{
	struct recdns r = { .zf = zone(z7489) };
	struct pdns dns = { rec_lookup, &r };
	struct dmarc_span from = { "x@a.b.c.d.e.f.g.h.example.co.uk", 31 };
	struct dmarc_request req;
	struct dmarc_result res;
	char why[256];
	struct dmarc_psl *psl = dmarc_psl_load(NULL, why, sizeof(why));

	cr_assert_not_null(psl, "%s", why);
	dmarc_request_init(&req);
	req.opt.mode = DMARC_MODE_RFC7489;
	req.opt.psl = psl;
	req.from = &from;
	req.nfrom = 1;
	cr_assert_eq(dmarc_evaluate(&dns, &req, &res), DKIM_OK);
	cr_expect_eq(r.n, 2, "asked %zu", r.n);
	cr_expect_str_eq(r.names[1], "_dmarc.example.co.uk");
	cr_expect_eq(res.policy_src, DMARC_SRC_SP);
	dmarc_psl_free(psl);
	zonefile_free(r.zf);
}

/* ------------------------------------------------------------------ API */

Test(api, bad_requests)
{
	struct dmarc_request req;
	struct dmarc_result res;
	struct dmarc_span from = { "x@example.com", 13 };

	cr_expect_eq(dmarc_evaluate(NULL, NULL, &res), DKIM_E_ARG);
	cr_expect_eq(dmarc_evaluate(NULL, NULL, NULL), DKIM_E_ARG);
	dmarc_request_init(&req);
	req.nfrom = 1;		/* from is NULL */
	cr_expect_eq(dmarc_evaluate(NULL, &req, &res), DKIM_E_ARG);
	req.from = &from;
	req.opt.mode = DMARC_MODE_RFC7489;	/* no PSL */
	cr_expect_eq(dmarc_evaluate(NULL, &req, &res), DKIM_E_ARG);
	cr_expect(res.reason[0] != '\0');
}

Test(api, draw_out_of_range)
{
	struct dmarc_request req;
	struct dmarc_result res;
	char why[256];
	struct dmarc_psl *psl = dmarc_psl_load(NULL, why, sizeof(why));

	cr_assert_not_null(psl, "%s", why);
	dmarc_request_init(&req);
	req.opt.mode = DMARC_MODE_RFC7489;
	req.opt.psl = psl;
	req.opt.pct_draw = 100;
	cr_expect_eq(dmarc_evaluate(NULL, &req, &res), DKIM_E_ARG);
	dmarc_psl_free(psl);
}

Test(api, null_dns_is_temperror)
{
	struct dmarc_request req;
	struct dmarc_result res;
	struct dmarc_span from = { "x@example.com", 13 };

	dmarc_request_init(&req);
	req.from = &from;
	req.nfrom = 1;
	cr_assert_eq(dmarc_evaluate(NULL, &req, &res), DKIM_OK);
	cr_expect_eq(res.result, DMARC_RES_TEMPERROR, "got %s",
	    dmarc_res_str(res.result));
}

Test(api, psl_load)
{
	char why[256];
	struct dmarc_psl *p = dmarc_psl_load("/nonexistent/psl.dat", why,
	    sizeof(why));

	cr_expect_null(p);
	cr_expect(strstr(why, "/nonexistent/psl.dat") != NULL, "%s", why);
	p = dmarc_psl_builtin(why, sizeof(why));
	cr_expect_not_null(p, "%s", why);
	dmarc_psl_free(p);
	dmarc_psl_free(NULL);
}

Test(api, org_domain_psl)
{
	static const struct { const char *in, *org; } t[] = {
		{ "a.b.example.com", "example.com" },
		{ "mail.example.co.uk", "example.co.uk" },
		{ "co.uk", "" },
		{ "EXAMPLE.COM.", "example.com" },
		{ "www.ck", "www.ck" },
		{ "a.b.ck", "a.b.ck" },
		{ "x.y.unlisted", "y.unlisted" },
	};
	char why[256], org[DMARC_DOMAIN_MAX];
	struct dmarc_options opt = { .mode = DMARC_MODE_RFC7489 };
	size_t i;

	opt.psl = dmarc_psl_load(NULL, why, sizeof(why));
	cr_assert_not_null(opt.psl, "%s", why);
	for (i = 0; i < NELEM(t); i++) {
		cr_expect_eq(dmarc_org_domain(NULL, &opt, t[i].in,
		    strlen(t[i].in), org, sizeof(org), NULL, NULL), DKIM_OK);
		cr_expect_str_eq(org, t[i].org, "%s: got %s, want %s",
		    t[i].in, org, t[i].org);
	}
	dmarc_psl_free((struct dmarc_psl *)opt.psl);
}

Test(api, normalize)
{
	static const struct { const char *in, *out; } t[] = {
		{ "Example.COM", "example.com" },
		{ "example.com.", "example.com" },
		{ "b\xc3\xbc" "cher.example", "xn--bcher-kva.example" },
		{ "m\xc3\xbc" "nchen.de", "xn--mnchen-3ya.de" },
		{ "\xc3\xb1.example", "xn--ida.example" },
		{ "\xe4\xb8\xad\xe5\x9b\xbd", "xn--fiqs8s" },
		{ "\xe5\x85\xac\xe5\x8f\xb8.cn", "xn--55qx5d.cn" },
		{ "3\xe5\xb9\xb4" "B\xe7\xb5\x84\xe9\x87\x91\xe5\x85\xab\xe5\x85"
		    "\x88\xe7\x94\x9f", "xn--3b-ww4c5e180e575a65lsy2b" },
		{ "\xc3\xbc-x", "xn---x-wka" },
		{ "\xcf\x80\xce\xb1\xcf\x81\xce\xac\xce\xb4\xce\xb5\xce\xb9"
		    "\xce\xb3\xce\xbc\xce\xb1", "xn--hxajbheg2az3al" },
		{ "_dmarc.example.com", "_dmarc.example.com" },
		{ "", NULL },
		{ ".", NULL },
		{ "a..b", NULL },
		{ ".a", NULL },
		{ "a b.example", NULL },
		{ "\xed\xa0\x80.example", NULL },	/* a surrogate */
		{ "\xc0\xaf.example", NULL },		/* overlong */
		{ "\xe4\xb8", NULL },			/* truncated */
	};
	char out[DMARC_DOMAIN_MAX], big[300];
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		bool ok = dmarc_domain_normalize(t[i].in, strlen(t[i].in), out,
		    sizeof(out));

		cr_expect_eq(ok, t[i].out != NULL, "\"%s\": ok got %d",
		    t[i].in, ok);
		if (ok && t[i].out)
			cr_expect_str_eq(out, t[i].out, "got %s, want %s", out,
			    t[i].out);
	}
	/* 254 octets is too long for a name */
	memset(big, 'a', sizeof(big));
	for (i = 63; i < 254; i += 64)
		big[i] = '.';
	cr_expect(!dmarc_domain_normalize(big, 254, out, sizeof(out)));
	cr_expect(dmarc_domain_normalize(big, 253, out, sizeof(out)),
	    "253 octets fit");
	cr_expect(!dmarc_domain_normalize(big, 10, out, 5), "small buffer");
	cr_expect(!dmarc_domain_normalize(NULL, 0, out, sizeof(out)));
}

Test(api, from_values)
{
	static const char m[] = "From: A <a@example.com>\r\n"
	    "To: b@example.net\r\nfrom:c@example.org\r\n\r\nbody\r\n";
	struct dkim_msg *msg;
	struct dmarc_span sp[4];
	size_t n;

	cr_assert_eq(dkim_msg_parse(m, sizeof(m) - 1, NULL, &msg, NULL, 0),
	    DKIM_OK);
	n = dmarc_from_values(msg, sp, 4);
	cr_expect_eq(n, 2);
	cr_expect(sp[0].len == 18 && memcmp(sp[0].p, " A <a@example.com>",
	    18) == 0, "got %.*s", (int)sp[0].len, sp[0].p);
	cr_expect(sp[1].len == 13 && memcmp(sp[1].p, "c@example.org", 13) ==
	    0);
	cr_expect_eq(dmarc_from_values(msg, sp, 1), 2, "counts beyond max");
	dkim_msg_free(msg);
}

Test(api, strings)
{
	cr_expect_str_eq(dmarc_res_str(DMARC_RES_TEMPERROR), "temperror");
	cr_expect_str_eq(dmarc_policy_str(DMARC_POLICY_QUARANTINE),
	    "quarantine");
	cr_expect_str_eq(dmarc_policy_src_str(DMARC_SRC_NP), "np");
	cr_expect_str_eq(dmarc_ident_str(DMARC_IDENT_SPF), "spf");
	cr_expect_str_eq(dmarc_mode_str(DMARC_MODE_RFC7489), "rfc7489");
	cr_expect_str_eq(nz(NULL), "(null)");
}

/* ------------------------------------------- relay/auth.c: DMARC's DNS */

/*
 * What a sender controls (its DKIM d= keys, its SPF record) must not
 * leave DMARC without DNS: a spoofed From of a p=reject domain would
 * come out temperror instead of fail, which nobody rejects (RFC 9989
 * §5.3.6) and which a list answers by rewriting From.
 */
struct slowdns {
	struct zonefile *zf;
	unsigned slow_ms;	/* for names under evil.example */
};

static enum pdns_rc
slow_lookup(void *arg, const char *qname, enum pdns_type type,
    struct pdns_answer *out)
{
	struct slowdns *s = arg;
	size_t n = strlen(qname);

	if (n >= 13 && strcmp(qname + n - 13, ".evil.example") == 0) {
		struct timespec ts = { s->slow_ms / 1000,
		    (long)(s->slow_ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
		return PDNS_TEMPFAIL;
	}
	return zonefile_lookup(s->zf, qname, type, out);
}

static void
auth_spoof(unsigned max_lookups, unsigned slow_ms, int nsig)
{
	static const char sig[] = "DKIM-Signature: v=1; a=rsa-sha256; "
	    "d=k%d.evil.example; s=s; h=from; bh=AAAA; b=AAAA\r\n";
	char m[2048];
	size_t k = 0;
	int i;
	struct slowdns s = { zone("_dmarc.example.com. TXT "
	    "\"v=DMARC1; p=reject\"\n"), slow_ms };
	struct pdns dns = { slow_lookup, &s };
	struct auth_request req;
	struct auth_results res;
	struct dkim_msg *msg;

	for (i = 0; i < nsig; i++)
		k += (size_t)snprintf(m + k, sizeof(m) - k, sig, i);
	k += (size_t)snprintf(m + k, sizeof(m) - k, "From: ceo@example.com"
	    "\r\nSubject: pay\r\n\r\nbody\r\n");
	cr_assert_eq(dkim_msg_parse(m, k, NULL, &msg, NULL, 0), DKIM_OK);
	memset(&req, 0, sizeof(req));
	req.now = 1700000000;
	req.max_lookups = max_lookups;
	cr_assert_eq(auth_evaluate(msg, &dns, &req, &res), DKIM_OK);
	cr_expect_eq(res.dmarc.result, DMARC_RES_FAIL, "result got %s, want "
	    "fail (%s)", dmarc_res_str(res.dmarc.result), res.dmarc.reason);
	cr_expect_eq(res.dmarc.disposition, DMARC_POLICY_REJECT,
	    "disposition got %s, want reject",
	    dmarc_policy_str(res.dmarc.disposition));
	auth_results_free(&res);
	dkim_msg_free(msg);
	zonefile_free(s.zf);
}

Test(auth, dmarc_not_starved_by_spent_budget)
{
	auth_spoof(3, 0, 3);	/* three key lookups use the budget up */
}

Test(auth, dmarc_not_starved_by_stalled_budget)
{
	auth_spoof(0, 1100, 1);	/* one slow failure stalls the budget */
}
