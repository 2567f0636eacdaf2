/*
 * test_authres.c - Authentication-Results (RFC 8601) and ARC-
 * Authentication-Results (RFC 8617 §4.1.1) through policy/authres.h.
 *
 * The parse tables hold a header value and a one-line description of what
 * the parser must return, written by describe() below:
 *
 *   [i=N ]id<authserv-id>[ v=N][ none][ noid][ unkver][ skip=N]
 *   ; method[/N]=result[ (comment)][ reason<text>][ ptype.prop<value>]...
 *
 * with "!m", "!r", "!v" after a result whose method, result code (of a
 * known method) or method version is unknown and "!p" after a property
 * with an unknown ptype. A difference is reported as got/want with the
 * input. Every header that parses with an authserv-id is also pushed
 * through format -> parse -> format, which must be stable. RFC 8601
 * Appendix B.1 is a message without the field, so it has no row; B.2 to
 * B.7 all do.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------- helpers */

/* esc - printable rendering of n bytes for failure messages (rotating
 * static buffers, long input cut with "..."). */
static const char *
esc(const char *p, size_t n)
{
	static char bufs[8][1200];
	static unsigned next;
	char *o = bufs[next++ % 8];
	size_t i, j = 0;

	if (p == NULL)
		return "(null)";
	for (i = 0; i < n && j < sizeof(bufs[0]) - 8; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r')
			j += (size_t)sprintf(o + j, "\\r");
		else if (c == '\n')
			j += (size_t)sprintf(o + j, "\\n");
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

/* What describe() shows; round trips leave out what formatting changes
 * by design (the instance, "none" for no results, dropped comments). */
#define D_ALL		0x0f
#define D_SKIPS		0x01
#define D_COMMENTS	0x02
#define D_INSTANCE	0x04
#define D_NONE		0x08

/* describe - the one-line rendering the tables are written in. Caller
 * frees. */
static char *
describe(const struct authres *ar, unsigned what)
{
	struct dkim_buf b;
	size_t i, j;

	dkim_buf_init(&b, 0);
	if ((what & D_INSTANCE) && ar->instance)
		dkim_buf_addf(&b, "i=%u ", ar->instance);
	dkim_buf_addf(&b, "id<%s>", ar->authserv_id);
	if (ar->version)
		dkim_buf_addf(&b, " v=%u", ar->version);
	if ((what & D_NONE) && ar->none)
		dkim_buf_adds(&b, " none");
	if (ar->flags & AUTHRES_F_NO_AUTHSERV_ID)
		dkim_buf_adds(&b, " noid");
	if (ar->flags & AUTHRES_F_UNKNOWN_VERSION)
		dkim_buf_adds(&b, " unkver");
	if ((what & D_SKIPS) && ar->nskip)
		dkim_buf_addf(&b, " skip=%zu", ar->nskip);
	for (i = 0; i < ar->n; i++) {
		const struct authres_result *r = &ar->r[i];

		dkim_buf_addf(&b, "; %s", r->method);
		if (r->method_version)
			dkim_buf_addf(&b, "/%u", r->method_version);
		dkim_buf_addf(&b, "=%s", r->result);
		if ((what & D_COMMENTS) && r->comment)
			dkim_buf_addf(&b, " (%s)", r->comment);
		if (r->reason)
			dkim_buf_addf(&b, " reason<%s>", r->reason);
		for (j = 0; j < r->np; j++) {
			const struct authres_prop *p = &r->p[j];

			dkim_buf_addc(&b, ' ');
			if (p->ptype[0])
				dkim_buf_addf(&b, "%s.", p->ptype);
			dkim_buf_addf(&b, "%s<%s>", p->property, p->value);
			if (p->flags & AUTHRES_P_UNKNOWN_PTYPE)
				dkim_buf_adds(&b, "!p");
		}
		if (r->flags & AUTHRES_R_UNKNOWN_METHOD)
			dkim_buf_adds(&b, " !m");
		if (r->flags & AUTHRES_R_UNKNOWN_RESULT)
			dkim_buf_adds(&b, " !r");
		if (r->flags & AUTHRES_R_UNKNOWN_VERSION)
			dkim_buf_adds(&b, " !v");
	}
	return dkim_buf_take(&b, NULL);
}

/* fmt - authres_format into a fresh string, NULL when it refuses. */
static char *
fmt(const struct authres *ar, bool arc, unsigned inst, bool comments)
{
	struct dkim_buf b;

	dkim_buf_init(&b, 0);
	if (!authres_format(ar, arc, inst, comments, &b)) {
		cr_expect(b.len == 0, "refused format left %zu bytes", b.len);
		dkim_buf_free(&b);
		return NULL;
	}
	return dkim_buf_take(&b, NULL);
}

/*
 * roundtrip - format(parse(x)) must parse to the same results (comments,
 * reasons, properties) and format again to the same text, for A-R with and
 * without comments and for AAR.
 */
static void
roundtrip(const char *desc, const struct authres *ar)
{
	static const struct { bool arc, comments; } modes[] = {
		{ false, true }, { false, false }, { true, false },
	};
	for (size_t m = 0; m < NELEM(modes); m++) {
		bool arc = modes[m].arc, cm = modes[m].comments;
		unsigned what = (cm && !arc) ? D_COMMENTS : 0;
		char *f1, *f2, *d2, *want = describe(ar, what);
		struct authres *ar2 = NULL;
		char why[DKIM_WHY_MAX];
		enum dkim_status st;

		f1 = fmt(ar, arc, arc ? 7 : 0, cm);
		cr_assert(f1 != NULL, "%s: format refused a parsed header "
		    "(arc=%d)", desc, arc);
		st = arc ? authres_parse_aar(f1, strlen(f1), &ar2, why,
		    sizeof(why)) : authres_parse(f1, strlen(f1), &ar2, why,
		    sizeof(why));
		cr_assert(st == DKIM_OK, "%s: output does not parse: %s\n  "
		    "output: %s", desc, why, esc(f1, strlen(f1)));
		cr_expect(ar2->nskip == 0, "%s: output has skipped parts\n  "
		    "output: %s", desc, f1);
		d2 = describe(ar2, what);
		cr_expect(strcmp(d2, want) == 0,
		    "%s: round trip changed the results\n  got:  %s\n"
		    "  want: %s\n  via:  %s", desc, d2, want, f1);
		f2 = fmt(ar2, arc, arc ? 7 : 0, cm);
		cr_assert(f2 != NULL, "%s: format refused its own output", desc);
		cr_expect(strcmp(f1, f2) == 0, "%s: format is not stable "
		    "(arc=%d comments=%d)\n  first:  %s\n  second: %s", desc,
		    arc, cm, f1, f2);
		free(f1);
		free(f2);
		free(d2);
		free(want);
		authres_free(ar2);
	}
}

/* --------------------------------------------------------- parse tables */

struct pcase {
	const char *desc;
	const char *in;
	const char *want;	/* describe() of the result */
};

static void
run_parse_table(const struct pcase *t, size_t n, bool aar)
{
	for (size_t i = 0; i < n; i++) {
		const struct pcase *c = &t[i];
		struct authres *ar = NULL;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;
		char *got;

		st = aar ? authres_parse_aar(c->in, strlen(c->in), &ar, why,
		    sizeof(why)) : authres_parse(c->in, strlen(c->in), &ar,
		    why, sizeof(why));
		cr_assert(st == DKIM_OK, "%s: got %s (%s), want ok\n  in: %s",
		    c->desc, dkim_status_str(st), why,
		    esc(c->in, strlen(c->in)));
		cr_assert(ar != NULL, "%s: ok but no result", c->desc);
		got = describe(ar, D_ALL);
		cr_expect(strcmp(got, c->want) == 0,
		    "%s:\n  got:  %s\n  want: %s\n  in:   %s", c->desc, got,
		    c->want, esc(c->in, strlen(c->in)));
		if (ar->authserv_id[0] != '\0')
			roundtrip(c->desc, ar);
		free(got);
		authres_free(ar);
	}
}

/* RFC 8601 Appendix B, field values as printed there (B.1 has no field). */
static const struct pcase rfc8601_cases[] = {
	{ "B.2 service provided, no authentication done",
	    " example.org 1; none",
	    "id<example.org> v=1 none" },
	{ "B.3 SPF",
	    " example.com;\r\n          spf=pass smtp.mailfrom=example.net",
	    "id<example.com>; spf=pass smtp.mailfrom<example.net>" },
	{ "B.4 first field: SMTP AUTH and SPF",
	    " example.com;\r\n"
	    "          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n"
	    "          spf=pass smtp.mailfrom=example.net",
	    "id<example.com>; auth=pass (cram-md5) smtp.auth<sender@example.net>"
	    "; spf=pass smtp.mailfrom<example.net>" },
	{ "B.4 second field: iprev with a policy property",
	    " example.com; iprev=pass\r\n          policy.iprev=192.0.2.200",
	    "id<example.com>; iprev=pass policy.iprev<192.0.2.200>" },
	{ "B.5 first field: DKIM with a comment",
	    " example.com;\r\n"
	    "          dkim=pass (good signature) header.d=example.com",
	    "id<example.com>; dkim=pass (good signature) header.d<example.com>" },
	{ "B.5 second field: AUTH pass, SPF fail",
	    " example.com;\r\n"
	    "          auth=pass (cram-md5) smtp.auth=sender@example.com;\r\n"
	    "          spf=fail smtp.mailfrom=example.com",
	    "id<example.com>; auth=pass (cram-md5) smtp.auth<sender@example.com>"
	    "; spf=fail smtp.mailfrom<example.com>" },
	{ "B.6 first field: reasons as quoted-strings",
	    " example.com;\r\n"
	    "      dkim=pass reason=\"good signature\"\r\n"
	    "        header.i=@mail-router.example.net;\r\n"
	    "      dkim=fail reason=\"bad signature\"\r\n"
	    "        header.i=@newyork.example.com",
	    "id<example.com>; dkim=pass reason<good signature> "
	    "header.i<@mail-router.example.net>; dkim=fail reason<bad signature>"
	    " header.i<@newyork.example.com>" },
	{ "B.6 second field",
	    " example.net;\r\n"
	    "      dkim=pass (good signature) header.i=@newyork.example.com",
	    "id<example.net>; dkim=pass (good signature) "
	    "header.i<@newyork.example.com>" },
	{ "B.7 comment-heavy example",
	    " foo.example.net (foobar) 1 (baz);\r\n"
	    "    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n"
	    "      policy (A dot can go here) . (like that) expired\r\n"
	    "      (this surprised me) = (as I wasn't expecting it) 1362471462",
	    "id<foo.example.net> v=1; dkim/1=fail policy.expired<1362471462>" },
};

Test(authres, rfc8601_appendix_b)
{
	run_parse_table(rfc8601_cases, NELEM(rfc8601_cases), false);
}

/* Headers as the big providers write them. */
static const struct pcase world_cases[] = {
	{ "Gmail",
	    " mx.google.com;\r\n"
	    "       dkim=pass header.i=@example.com header.s=20230601 "
	    "header.b=AbCd1234;\r\n"
	    "       spf=pass (google.com: domain of alice@example.com designates"
	    " 209.85.220.41 as permitted sender) smtp.mailfrom=alice@example.com"
	    ";\r\n"
	    "       dmarc=pass (p=REJECT sp=REJECT dis=NONE) "
	    "header.from=example.com",
	    "id<mx.google.com>; dkim=pass header.i<@example.com> "
	    "header.s<20230601> header.b<AbCd1234>; spf=pass (google.com: domain"
	    " of alice@example.com designates 209.85.220.41 as permitted sender)"
	    " smtp.mailfrom<alice@example.com>; dmarc=pass (p=REJECT sp=REJECT "
	    "dis=NONE) header.from<example.com>" },
	{ "Gmail: header.b with base64 '+' and '/', bare",
	    " mx.google.com; dkim=pass header.i=@example.com "
	    "header.s=20230601 header.b=Ko7r+3/b",
	    "id<mx.google.com>; dkim=pass header.i<@example.com> "
	    "header.s<20230601> header.b<Ko7r+3/b>" },
	{ "Gmail: SPF softfail with a bare IP comment and an SRS sender",
	    " mx.google.com; spf=softfail (google.com: domain of transitioning"
	    " SRS0=AbCd=TT=example.org=bob@list.example.net does not designate"
	    " 192.0.2.9 as permitted sender) smtp.mailfrom=\"SRS0=AbCd=TT=exam"
	    "ple.org=bob@list.example.net\"",
	    "id<mx.google.com>; spf=softfail (google.com: domain of "
	    "transitioning SRS0=AbCd=TT=example.org=bob@list.example.net does "
	    "not designate 192.0.2.9 as permitted sender) smtp.mailfrom<SRS0="
	    "AbCd=TT=example.org=bob@list.example.net>" },
	{ "Microsoft 365 without an authserv-id, the brief's example",
	    " spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=x.com; dkim=pass "
	    "(signature was verified) header.d=x.com;dmarc=pass action=none "
	    "header.from=x.com;compauth=pass reason=100",
	    "id<> noid; spf=pass (sender IP is 1.2.3.4) smtp.mailfrom<x.com>; "
	    "dkim=pass (signature was verified) header.d<x.com>; dmarc=pass "
	    "action<none>!p header.from<x.com>; compauth=pass reason<100> !m" },
	{ "Microsoft 365 with an id and a folded tail",
	    " mx.microsoft.com 1; spf=pass\r\n smtp.mailfrom=x.com; dmarc=pass"
	    "\r\n action=none header.from=x.com; dkim=pass header.d=x.com; "
	    "arc=none",
	    "id<mx.microsoft.com> v=1; spf=pass smtp.mailfrom<x.com>; "
	    "dmarc=pass action<none>!p header.from<x.com>; dkim=pass "
	    "header.d<x.com>; arc=none" },
	{ "Microsoft 365 starting with spf=, header.d=none, trailing ';'",
	    "spf=none (sender IP is 192.0.2.7) smtp.mailfrom=contoso.com; "
	    "dkim=none (message not signed) header.d=none;dmarc=none "
	    "action=none header.from=contoso.com;compauth=fail reason=001;",
	    "id<> noid; spf=none (sender IP is 192.0.2.7) "
	    "smtp.mailfrom<contoso.com>; dkim=none (message not signed) "
	    "header.d<none>; dmarc=none action<none>!p header.from<contoso.com>;"
	    " compauth=fail reason<001> !m" },
	{ "Microsoft 365 with an empty authserv-id",
	    " ; spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=x.com",
	    "id<> noid; spf=pass (sender IP is 1.2.3.4) smtp.mailfrom<x.com>" },
	{ "Microsoft 365 with a dkim/version-less empty id and softpass",
	    ";dkim=pass header.d=x.com;compauth=softpass reason=201",
	    "id<> noid; dkim=pass header.d<x.com>; compauth=softpass "
	    "reason<201> !m" },
	{ "Yahoo: no space before the comment, trailing ';'",
	    " atlas-production.v2.mail.yahoo.com; dkim=pass header.i=@x.com "
	    "header.s=s1; spf=pass smtp.mailfrom=x.com; dmarc=pass(p=REJECT) "
	    "header.from=x.com;",
	    "id<atlas-production.v2.mail.yahoo.com>; dkim=pass header.i<@x.com>"
	    " header.s<s1>; spf=pass smtp.mailfrom<x.com>; dmarc=pass "
	    "(p=REJECT) header.from<x.com>" },
	{ "Fastmail/Cyrus style with smtp.helo and iprev",
	    " mx3.messagingengine.com;\r\n    dkim=pass (2048-bit rsa key "
	    "sha256) header.d=example.com header.i=@example.com "
	    "header.b=AbCdEfGh header.a=rsa-sha256 header.s=fm1;\r\n    "
	    "iprev=pass smtp.remote-ip=192.0.2.1 (mail.example.com);\r\n    "
	    "spf=pass smtp.mailfrom=a@example.com smtp.helo=mail.example.com",
	    "id<mx3.messagingengine.com>; dkim=pass (2048-bit rsa key sha256) "
	    "header.d<example.com> header.i<@example.com> header.b<AbCdEfGh> "
	    "header.a<rsa-sha256> header.s<fm1>; iprev=pass "
	    "smtp.remote-ip<192.0.2.1>; spf=pass smtp.mailfrom<a@example.com> "
	    "smtp.helo<mail.example.com>" },
	{ "ARC result with header.oldest-pass and smtp.remote-ip",
	    " relay.example; arc=pass header.oldest-pass=2 "
	    "smtp.remote-ip=203.0.113.5",
	    "id<relay.example>; arc=pass header.oldest-pass<2> "
	    "smtp.remote-ip<203.0.113.5>" },
	{ "IPv6 literal, not a token, still read bare",
	    " relay.example; iprev=pass smtp.remote-ip=2001:db8::25",
	    "id<relay.example>; iprev=pass smtp.remote-ip<2001:db8::25>" },
	{ "folded everywhere, LF-only and tabs",
	    "\r\n\trelay.example\r\n\t;\r\n\tdkim\r\n\t=\r\n\tpass\r\n\t"
	    "header.d\r\n\t=\r\n\texample.com\n\t;\tspf=pass",
	    "id<relay.example>; dkim=pass header.d<example.com>; spf=pass" },
	{ "comments everywhere, nested and with quoted-pairs",
	    " (a) relay.example (b (c) \\) d) ; (e) dkim (f) = (g) pass "
	    "(h \\(i\\)) header (j) . (k) d (l) = (m) example.com (n) ; (o)",
	    "id<relay.example>; dkim=pass (h (i)) header.d<example.com>" },
	{ "quoted authserv-id and quoted values",
	    " \"relay.example\"; dkim=pass header.s=\"my sel\" "
	    "header.d=\"example.com\"",
	    "id<relay.example>; dkim=pass header.s<my sel> header.d<example.com>"
	    },
	{ "quoted local-part kept as the address text",
	    " relay.example; spf=pass smtp.mailfrom=\"john doe\"@example.com",
	    "id<relay.example>; spf=pass smtp.mailfrom<\"john doe\"@example.com>"
	    },
	{ "reason as a token and comment before reason",
	    " relay.example; dkim=fail (bad) reason=expired header.d=x.com",
	    "id<relay.example>; dkim=fail (bad) reason<expired> header.d<x.com>"
	    },
	{ "method versions, unknown ones flagged",
	    " relay.example; dkim/1=pass; spf/2=pass; x-foo=bar",
	    "id<relay.example>; dkim/1=pass; spf/2=pass !v; x-foo=bar !m" },
	{ "header version 2 is kept but flagged",
	    " relay.example 2; dkim=pass",
	    "id<relay.example> v=2 unkver; dkim=pass" },
	{ "upper-case keywords come back lower-case, values as written",
	    " Relay.Example; DKIM=Pass Header.D=Example.COM",
	    "id<Relay.Example>; dkim=pass header.d<Example.COM>" },
	{ "unknown ptype kept and flagged; body ptype known",
	    " relay.example; x-scan=clean x-av.engine=clam body.hash=abc",
	    "id<relay.example>; x-scan=clean x-av.engine<clam>!p body.hash<abc>"
	    " !m" },
	{ "authserv-id alone (no results) is read as none",
	    " relay.example", "id<relay.example>" },
	{ "none with comments",
	    " relay.example (x); (y) none (z)", "id<relay.example> none" },
	{ "UTF-8 authserv-id and value (RFC 6532)",
	    " r\xc3\xa9lais.example; spf=pass smtp.mailfrom=j\xc3\xb6rg@"
	    "example.com",
	    "id<r\xc3\xa9lais.example>; spf=pass smtp.mailfrom<j\xc3\xb6rg@"
	    "example.com>" },
	{ "quoted empty authserv-id is no id",
	    " \"\"; spf=pass", "id<> noid; spf=pass" },
	{ "raw 8-bit octets that are not UTF-8 are kept as data",
	    " relay.example; dkim=pass header.d=\xff\xfe.example "
	    "(\x80\x81) header.s=\"\xc0\"",
	    "id<relay.example>; dkim=pass header.d<\xff\xfe.example> "
	    "header.s<\xc0>" },
	{ "empty pvalue",
	    " relay.example; dkim=none header.d=\"\"",
	    "id<relay.example>; dkim=none header.d<>" },
};

Test(authres, real_world)
{
	run_parse_table(world_cases, NELEM(world_cases), false);
}

/* Tolerance: the broken part is skipped, the rest is kept. */
static const struct pcase skip_cases[] = {
	{ "missing '=' after a method",
	    " relay.example; dkim pass; spf=pass",
	    "id<relay.example> skip=1; spf=pass" },
	{ "missing result",
	    " relay.example; dkim=; spf=pass",
	    "id<relay.example> skip=1; spf=pass" },
	{ "property without '='",
	    " relay.example; dkim=pass header.d example.com; spf=pass",
	    "id<relay.example> skip=1; spf=pass" },
	{ "junk character in a resinfo",
	    " relay.example; dkim=pass <x>; spf=pass",
	    "id<relay.example> skip=1; spf=pass" },
	{ "unterminated comment swallows the rest",
	    " relay.example; spf=pass; dkim=pass (oops; dmarc=pass",
	    "id<relay.example> skip=1; spf=pass" },
	{ "unterminated quote swallows the rest",
	    " relay.example; spf=pass; dkim=pass header.s=\"oops; dmarc=pass",
	    "id<relay.example> skip=1; spf=pass" },
	{ "';' inside a quoted string of a broken resinfo does not resync",
	    " relay.example; dkim pass reason=\"a;b\"; spf=pass",
	    "id<relay.example> skip=1; spf=pass" },
	{ "NUL byte in a value",
	    " relay.example; dkim=pass header.d=ex\0ample; spf=pass",
	    "id<relay.example>; dkim=pass header.d<ex>" },
	{ "two reasons",
	    " relay.example; dkim=fail reason=a reason=b; spf=pass",
	    "id<relay.example> skip=1; spf=pass" },
	{ "none among results",
	    " relay.example; none; spf=pass",
	    "id<relay.example> skip=1; spf=pass" },
	{ "results then none",
	    " relay.example; spf=pass; none",
	    "id<relay.example> skip=1; spf=pass" },
	{ "empty resinfo between ';' is not an error",
	    " relay.example;; ;spf=pass;;",
	    "id<relay.example>; spf=pass" },
	{ "property keyword missing after '.'",
	    " relay.example; dkim=pass header.=x; spf=fail",
	    "id<relay.example> skip=1; spf=fail" },
	{ "bad method version",
	    " relay.example; dkim/x=pass; spf=fail",
	    "id<relay.example> skip=1; spf=fail" },
};

Test(authres, skips_malformed_resinfo)
{
	run_parse_table(skip_cases, NELEM(skip_cases), false);
}

/* The NUL case above is cut by strlen(); feed the real bytes too. */
Test(authres, nul_byte_with_length)
{
	static const char in[] = " relay.example; dkim=pass header.d=ex\0ample;"
	    " spf=pass";
	struct authres *ar = NULL;
	char why[DKIM_WHY_MAX];
	char *got;

	cr_assert(authres_parse(in, sizeof(in) - 1, &ar, why, sizeof(why)) ==
	    DKIM_OK, "%s", why);
	got = describe(ar, D_ALL);
	cr_expect(strcmp(got, "id<relay.example> skip=1; spf=pass") == 0,
	    "got %s", got);
	cr_expect(ar->skip[0].off == 15 && ar->skip[0].len == 28,
	    "skip span got %zu+%zu, want 15+28", ar->skip[0].off,
	    ar->skip[0].len);
	cr_expect(strstr(why, "skipped 1") != NULL, "why: %s", why);
	free(got);
	authres_free(ar);
}

/* ARC-Authentication-Results (RFC 8617 §4.1.1 and its Appendix B). */
static const struct pcase aar_cases[] = {
	{ "the brief's example, with smtp.mfrom",
	    " i=1; lists.example.org; arc=none; spf=pass smtp.mfrom=jqd@"
	    "d1.example; dkim=pass (1024-bit key) header.i=@d1.example; "
	    "dmarc=pass",
	    "i=1 id<lists.example.org>; arc=none; spf=pass smtp.mfrom<jqd@"
	    "d1.example>; dkim=pass (1024-bit key) header.i<@d1.example>; "
	    "dmarc=pass" },
	{ "RFC 8617 B.2 i=1",
	    " i=1; lists.example.org; spf=pass\r\n    smtp.mfrom=jqd@d1.example;"
	    " dkim=pass (512-bit key)\r\n    header.i=@d1.example; dmarc=pass",
	    "i=1 id<lists.example.org>; spf=pass smtp.mfrom<jqd@d1.example>; "
	    "dkim=pass (512-bit key) header.i<@d1.example>; dmarc=pass" },
	{ "RFC 8617 B.3 i=2",
	    " i=2; gmail.example; spf=fail\r\n    smtp.from=jqd@d1.example; "
	    "dkim=fail (512-bit key)\r\n    header.i=@example.org; dmarc=fail; "
	    "arc=pass\r\n    (as.1.lists.example.org=pass, "
	    "ams.1.lists.example.org=pass)",
	    "i=2 id<gmail.example>; spf=fail smtp.from<jqd@d1.example>; "
	    "dkim=fail (512-bit key) header.i<@example.org>; dmarc=fail; "
	    "arc=pass (as.1.lists.example.org=pass, "
	    "ams.1.lists.example.org=pass)" },
	{ "RFC 8617 B.3 i=3, nested comment",
	    " i=3; clochette.example.org; spf=fail\r\n    smtp.from=jqd@d1.exam"
	    "ple; dkim=fail (512-bit key)\r\n    header.i=@d1.example; "
	    "dmarc=fail; arc=pass (as.2.gmail.example=pass,\r\n    "
	    "ams.2.gmail.example=pass, as.1.lists.example.org=pass,\r\n    "
	    "ams.1.lists.example.org=fail (message has been altered))",
	    "i=3 id<clochette.example.org>; spf=fail smtp.from<jqd@d1.example>;"
	    " dkim=fail (512-bit key) header.i<@d1.example>; dmarc=fail; "
	    "arc=pass (as.2.gmail.example=pass,    ams.2.gmail.example=pass, "
	    "as.1.lists.example.org=pass,    ams.1.lists.example.org=fail "
	    "(message has been altered))" },
	{ "Gmail AAR",
	    " i=1; mx.google.com;\r\n       dkim=pass header.i=@example.com "
	    "header.s=20230601 header.b=\"Ko7r+3/b\";\r\n       arc=pass (i=1 "
	    "spf=pass spfdomain=example.com dkim=pass dkdomain=example.com "
	    "dmarc=pass fromdomain=example.com);\r\n       spf=pass (google.com"
	    ": domain of a@example.com designates 192.0.2.1 as permitted "
	    "sender) smtp.mailfrom=a@example.com;\r\n       dmarc=pass (p=NONE "
	    "sp=NONE dis=NONE) header.from=example.com",
	    "i=1 id<mx.google.com>; dkim=pass header.i<@example.com> "
	    "header.s<20230601> header.b<Ko7r+3/b>; arc=pass (i=1 spf=pass "
	    "spfdomain=example.com dkim=pass dkdomain=example.com dmarc=pass "
	    "fromdomain=example.com); spf=pass (google.com: domain of "
	    "a@example.com designates 192.0.2.1 as permitted sender) "
	    "smtp.mailfrom<a@example.com>; dmarc=pass (p=NONE sp=NONE dis=NONE)"
	    " header.from<example.com>" },
	{ "Microsoft 365 AAR with a version",
	    " i=1; mx.microsoft.com 1; spf=pass smtp.mailfrom=x.com; "
	    "dmarc=pass action=none header.from=x.com; dkim=pass "
	    "header.d=x.com; arc=none",
	    "i=1 id<mx.microsoft.com> v=1; spf=pass smtp.mailfrom<x.com>; "
	    "dmarc=pass action<none>!p header.from<x.com>; dkim=pass "
	    "header.d<x.com>; arc=none" },
	{ "CFWS around i= and a two-digit instance",
	    " (c) i (c) = (c) 12 (c) ; relay.example; none",
	    "i=12 id<relay.example> none" },
	{ "instance 50 is the last one allowed",
	    "i=50;relay.example;arc=fail",
	    "i=50 id<relay.example>; arc=fail" },
};

Test(authres, aar)
{
	run_parse_table(aar_cases, NELEM(aar_cases), true);
}

/* ------------------------------------------------------------ failures */

struct fcase {
	const char *desc;
	const char *in;
	bool aar;
	enum dkim_status st;
	enum authres_err err;
};

static const struct fcase fail_cases[] = {
	{ "empty", "", false, DKIM_E_EMPTY, AUTHRES_E_EMPTY },
	{ "only CFWS", " \r\n (comment) \t", false, DKIM_E_EMPTY,
	    AUTHRES_E_EMPTY },
	{ "unterminated comment before the id", " (relay.example; spf=pass",
	    false, DKIM_E_SYNTAX, AUTHRES_E_BAD_AUTHSERV_ID },
	{ "unterminated quoted id", " \"relay.example; spf=pass", false,
	    DKIM_E_SYNTAX, AUTHRES_E_BAD_AUTHSERV_ID },
	{ "junk after the id", " relay.example spf=pass", false,
	    DKIM_E_SYNTAX, AUTHRES_E_BAD_AUTHSERV_ID },
	{ "tspecial right after the id", " relay.example@x; spf=pass", false,
	    DKIM_E_SYNTAX, AUTHRES_E_BAD_AUTHSERV_ID },
	{ "junk after the version", " relay.example 1x; spf=pass", false,
	    DKIM_E_SYNTAX, AUTHRES_E_BAD_AUTHSERV_ID },
	{ "version too long", " relay.example 12345678901; spf=pass", false,
	    DKIM_E_SYNTAX, AUTHRES_E_BAD_AUTHSERV_ID },
	{ "two ids", " relay.example 1 2; spf=pass", false, DKIM_E_SYNTAX,
	    AUTHRES_E_BAD_AUTHSERV_ID },
	{ "starts with a tspecial", " <relay.example>; spf=pass", false,
	    DKIM_E_SYNTAX, AUTHRES_E_BAD_AUTHSERV_ID },
	{ "NUL in the id", " relay\0", false, DKIM_E_SYNTAX,
	    AUTHRES_E_BAD_AUTHSERV_ID },
	{ "AAR without i=", " relay.example; spf=pass", true, DKIM_E_SYNTAX,
	    AUTHRES_E_BAD_INSTANCE },
	{ "AAR i=0", " i=0; relay.example; spf=pass", true, DKIM_E_SYNTAX,
	    AUTHRES_E_BAD_INSTANCE },
	{ "AAR i=51", " i=51; relay.example; spf=pass", true, DKIM_E_SYNTAX,
	    AUTHRES_E_BAD_INSTANCE },
	{ "AAR i= without a number", " i=; relay.example", true,
	    DKIM_E_SYNTAX, AUTHRES_E_BAD_INSTANCE },
	{ "AAR i=1 without ';'", " i=1 relay.example; spf=pass", true,
	    DKIM_E_SYNTAX, AUTHRES_E_BAD_INSTANCE },
	{ "AAR upper-case I=", " I=1; relay.example; none", true,
	    DKIM_E_SYNTAX, AUTHRES_E_BAD_INSTANCE },
	{ "AAR with nothing after i=", " i=1;  ", true, DKIM_E_SYNTAX,
	    AUTHRES_E_BAD_AUTHSERV_ID },
	{ "AAR huge instance", " i=99999999999999999999; r.example", true,
	    DKIM_E_SYNTAX, AUTHRES_E_BAD_INSTANCE },
};

Test(authres, failures)
{
	for (size_t i = 0; i < NELEM(fail_cases); i++) {
		const struct fcase *c = &fail_cases[i];
		size_t len = strlen(c->in);
		struct authres *ar = (struct authres *)1;
		enum authres_err err = AUTHRES_E_NONE;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;

		if (strcmp(c->desc, "NUL in the id") == 0)
			len = 7;
		st = authres_parse_ex(c->in, len, c->aar ? AUTHRES_PARSE_AAR :
		    0, &ar, &err, why, sizeof(why));
		cr_expect(st == c->st && err == c->err,
		    "%s: got %s/%s, want %s/%s\n  in: %s", c->desc,
		    dkim_status_str(st), authres_err_str(err),
		    dkim_status_str(c->st), authres_err_str(c->err),
		    esc(c->in, len));
		cr_expect(ar == NULL, "%s: failure left a result", c->desc);
		cr_expect(why[0] != '\0', "%s: failure without a reason",
		    c->desc);
	}
}

Test(authres, bad_arguments)
{
	struct authres *ar;
	enum authres_err err;

	cr_expect(authres_parse_ex(NULL, 3, 0, &ar, &err, NULL, 0) ==
	    DKIM_E_ARG && err == AUTHRES_E_ARG);
	cr_expect(authres_parse_ex("x", 1, 0, NULL, &err, NULL, 0) ==
	    DKIM_E_ARG && err == AUTHRES_E_ARG);
	cr_expect(authres_parse(NULL, 0, &ar, NULL, 0) == DKIM_E_EMPTY);
	cr_expect(!authres_is_ours(NULL, 0, "x"));
	cr_expect(!authres_is_ours("x", 1, NULL));
	cr_expect(!authres_is_ours("x", 1, ""));
	authres_free(NULL);
}

/* ---------------------------------------------------------------- caps */

static char *
repeat(const char *head, const char *unit, size_t times, size_t *len)
{
	size_t hl = strlen(head), ul = strlen(unit), i;
	char *s = malloc(hl + ul * times + 1);

	cr_assert(s != NULL);
	memcpy(s, head, hl);
	for (i = 0; i < times; i++)
		memcpy(s + hl + i * ul, unit, ul);
	s[hl + ul * times] = '\0';
	*len = hl + ul * times;
	return s;
}

struct capcase {
	const char *desc;
	const char *head, *unit;
	size_t times;
	enum dkim_status st;
	enum authres_err err;
	size_t n;		/* results wanted on success */
};

static const struct capcase cap_cases[] = {
	{ "64 results is the limit", " relay.example", "; spf=pass", 64,
	    DKIM_OK, AUTHRES_E_NONE, 64 },
	{ "65 results", " relay.example", "; spf=pass", 65, DKIM_E_LIMIT,
	    AUTHRES_E_TOO_MANY_RESULTS, 0 },
	{ "10,000 results", " relay.example", ";a=b", 10000, DKIM_E_LIMIT,
	    AUTHRES_E_TOO_MANY_RESULTS, 0 },
	{ "16 properties is the limit", " relay.example; dkim=pass",
	    " header.d=x", 16, DKIM_OK, AUTHRES_E_NONE, 1 },
	{ "17 properties", " relay.example; dkim=pass", " header.d=x", 17,
	    DKIM_E_LIMIT, AUTHRES_E_TOO_MANY_PROPS, 0 },
	{ "100 KB header", " relay.example; dkim=pass reason=", "x", 100000,
	    DKIM_E_LIMIT, AUTHRES_E_TOO_LONG, 0 },
	{ "64 KiB exactly is allowed", " relay.example; dkim=pass reason=",
	    "x", 65536 - 33,	/* the head is 33 octets */ DKIM_OK, AUTHRES_E_NONE, 1 },
	{ "10,000 broken resinfo are skipped, not an error", " relay.example",
	    ";=", 10000, DKIM_OK, AUTHRES_E_NONE, 0 },
	{ "deeply nested comment", " relay.example; spf=pass ", "(", 30000,
	    DKIM_OK, AUTHRES_E_NONE, 0 },
};

Test(authres, caps)
{
	for (size_t i = 0; i < NELEM(cap_cases); i++) {
		const struct capcase *c = &cap_cases[i];
		struct authres *ar = NULL;
		enum authres_err err = AUTHRES_E_NONE;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;
		size_t len;
		char *in = repeat(c->head, c->unit, c->times, &len);

		st = authres_parse_ex(in, len, 0, &ar, &err, why, sizeof(why));
		cr_expect(st == c->st && err == c->err,
		    "%s: got %s/%s (%s), want %s/%s", c->desc,
		    dkim_status_str(st), authres_err_str(err), why,
		    dkim_status_str(c->st), authres_err_str(c->err));
		if (st == DKIM_OK && ar != NULL)
			cr_expect(ar->n == c->n, "%s: got %zu results, want %zu",
			    c->desc, ar->n, c->n);
		if (st != DKIM_OK)
			cr_expect(strstr(why, "limit") || strstr(why, "more than"),
			    "%s: reason does not name the cap: %s", c->desc, why);
		authres_free(ar);
		free(in);
	}
}

/* Every byte value in every position of a real header: no crash, and a
 * success always formats to something that parses back. */
Test(authres, byte_mutations)
{
	const char *base = " mx.google.com; dkim=pass (c) header.i=@x.com "
	    "reason=\"a b\"; spf=pass smtp.mailfrom=a@x.com";
	size_t len = strlen(base);
	char *buf = malloc(len);

	cr_assert(buf != NULL);
	for (size_t pos = 0; pos < len; pos++) {
		for (int b = 0; b < 256; b++) {
			struct authres *ar = NULL;
			struct dkim_buf out;

			memcpy(buf, base, len);
			buf[pos] = (char)b;
			(void)authres_is_ours(buf, len, "mx.google.com");
			if (authres_parse(buf, len, &ar, NULL, 0) != DKIM_OK)
				continue;
			dkim_buf_init(&out, 0);
			if (authres_format(ar, false, 0, true, &out)) {
				struct authres *ar2 = NULL;

				cr_expect(authres_parse(out.p, out.len, &ar2,
				    NULL, 0) == DKIM_OK && ar2->nskip == 0,
				    "byte 0x%02x at %zu: output does not parse: "
				    "%s", b, pos, esc(out.p, out.len));
				authres_free(ar2);
			}
			dkim_buf_free(&out);
			authres_free(ar);
		}
	}
	free(buf);
}

/* ------------------------------------------------------------- is_ours */

struct ocase {
	const char *in;
	const char *id;
	bool want;
};

static const struct ocase ours_cases[] = {
	{ " relay.example; spf=pass", "relay.example", true },
	{ "relay.example;spf=pass", "relay.example", true },
	{ " RELAY.Example; spf=pass", "relay.example", true },
	{ " relay.example 1; none", "relay.example", true },
	{ " (forged) relay.example (x) 1 (y); dkim=pass", "relay.example",
	    true },
	{ "\r\n\trelay.example\r\n\t; dkim=pass", "relay.example", true },
	{ " \"relay.example\"; dkim=pass", "relay.example", true },
	{ " \"relay\\.example\"; dkim=pass", "relay.example", true },
	{ " relay.example", "relay.example", true },
	{ " relay.example garbage; dkim=pass", "relay.example", true },
	{ " relay.example (unterminated; dkim=pass", "relay.example", true },
	{ " relay.example; dkim=pass (unterminated", "relay.example", true },
	{ " relay.example.evil; dkim=pass", "relay.example", false },
	{ " evil.relay.example; dkim=pass", "relay.example", false },
	{ " relay.exampl; dkim=pass", "relay.example", false },
	{ " relay.example@evil; dkim=pass", "relay.example", false },
	{ " \"relay.example\"x; dkim=pass", "relay.example", false },
	{ " \"relay.example; dkim=pass", "relay.example", false },
	{ " (relay.example; dkim=pass", "relay.example", false },
	{ " (relay.example) other.example; dkim=pass", "relay.example", false },
	{ " ; dkim=pass", "relay.example", false },
	{ "", "relay.example", false },
	{ "spf=pass smtp.mailfrom=relay.example", "relay.example", false },
	{ " relay.example=pass", "relay.example", false },
	{ " i=1; relay.example; arc=none", "relay.example", false },
	{ " other.example; x=relay.example", "relay.example", false },
};

Test(authres, is_ours)
{
	for (size_t i = 0; i < NELEM(ours_cases); i++) {
		const struct ocase *c = &ours_cases[i];
		bool got = authres_is_ours(c->in, strlen(c->in), c->id);

		cr_expect(got == c->want, "is_ours(%s, %s): got %d, want %d",
		    esc(c->in, strlen(c->in)), c->id, got, c->want);
	}
}

Test(authres, is_ours_ignores_length_cap)
{
	size_t len;
	char *in = repeat(" relay.example; dkim=pass reason=", "x", 200000,
	    &len);

	cr_expect(authres_is_ours(in, len, "relay.example"),
	    "a 200 KB forgery must still be recognised");
	free(in);
}

/* ------------------------------------------------- builder and formatter */

static struct authres *
sample(void)
{
	struct authres *ar = authres_new("relay.example");
	struct authres_result *d, *s;

	cr_assert(ar != NULL);
	d = authres_add_result(ar, "dkim", "pass", NULL);
	s = authres_add_result(ar, "spf", "pass", NULL);
	cr_assert(d != NULL && s != NULL);
	/* d must still be valid after another result was added. */
	cr_assert(authres_add_prop(d, "header", "d", "example.com"));
	cr_assert(authres_add_prop(d, "header", "s", "sel"));
	cr_assert(authres_add_prop(d, "header", "b", "abcdefgh"));
	cr_assert(authres_set_comment(d, "2048-bit key"));
	cr_assert(authres_add_prop(s, "smtp", "mailfrom", "a@example.com"));
	cr_assert(authres_add_result(ar, "arc", "none", NULL) != NULL);
	return ar;
}

struct fmtcase {
	const char *desc;
	bool arc;
	unsigned inst;
	bool comments;
	const char *want;
};

static const struct fmtcase fmt_cases[] = {
	{ "AAR, the brief's example", true, 1, true,
	    " i=1; relay.example; dkim=pass header.d=example.com header.s=sel "
	    "header.b=abcdefgh; spf=pass smtp.mailfrom=a@example.com; arc=none" },
	{ "A-R with comments", false, 0, true,
	    " relay.example; dkim=pass (2048-bit key) header.d=example.com "
	    "header.s=sel header.b=abcdefgh; spf=pass "
	    "smtp.mailfrom=a@example.com; arc=none" },
	{ "A-R without comments", false, 0, false,
	    " relay.example; dkim=pass header.d=example.com header.s=sel "
	    "header.b=abcdefgh; spf=pass smtp.mailfrom=a@example.com; arc=none" },
	{ "AAR instance 50", true, 50, false,
	    " i=50; relay.example; dkim=pass header.d=example.com header.s=sel "
	    "header.b=abcdefgh; spf=pass smtp.mailfrom=a@example.com; arc=none" },
};

Test(authres, format_builder)
{
	struct authres *ar = sample();

	for (size_t i = 0; i < NELEM(fmt_cases); i++) {
		const struct fmtcase *c = &fmt_cases[i];
		char *got = fmt(ar, c->arc, c->inst, c->comments);

		cr_expect(got != NULL && strcmp(got, c->want) == 0,
		    "%s:\n  got:  %s\n  want: %s", c->desc, got ? got : "(refused)",
		    c->want);
		free(got);
	}
	cr_expect(fmt(ar, true, 0, false) == NULL, "AAR without an instance");
	cr_expect(fmt(ar, true, 51, false) == NULL, "AAR instance 51");
	authres_free(ar);
}

struct qcase {
	const char *desc;
	const char *value;
	const char *want;	/* how the pvalue is written */
};

static const struct qcase quote_cases[] = {
	{ "token", "example.com", "example.com" },
	{ "@domain", "@example.com", "@example.com" },
	{ "address", "a.b+c@example.com", "a.b+c@example.com" },
	{ "SRS address keeps '=' bare", "SRS0=Ab=TT=x.org=u@r.example",
	    "SRS0=Ab=TT=x.org=u@r.example" },
	{ "quoted local-part", "\"john doe\"@example.com",
	    "\"john doe\"@example.com" },
	{ "base64 with '/' and '='", "ab/c=", "\"ab/c=\"" },
	{ "IPv6", "2001:db8::1", "\"2001:db8::1\"" },
	{ "space", "my sel", "\"my sel\"" },
	{ "quote and backslash", "a\"b\\c", "\"a\\\"b\\\\c\"" },
	{ "empty", "", "\"\"" },
	{ "two '@' with a broken local-part", "a@@b.example",
	    "\"a@@b.example\"" },
	{ "dot at the end of the domain", "a@b.example.", "\"a@b.example.\"" },
	{ "UTF-8 in a token is quoted", "j\xc3\xb6rg", "\"j\xc3\xb6rg\"" },
	{ "UTF-8 local-part is an address", "j\xc3\xb6rg@x.example",
	    "j\xc3\xb6rg@x.example" },
	{ "escaped closing quote is no quoted local-part", "\"a\\\"@x.example",
	    "\"\\\"a\\\\\\\"@x.example\"" },
	{ "quoted local-part with a quoted-pair", "\"a\\\"b\"@x.example",
	    "\"a\\\"b\"@x.example" },
};

Test(authres, format_quoting)
{
	for (size_t i = 0; i < NELEM(quote_cases); i++) {
		const struct qcase *c = &quote_cases[i];
		struct authres *ar = authres_new("r.example");
		struct authres_result *r;
		struct authres *back = NULL;
		char want[256], *got;

		r = authres_add_result(ar, "spf", "pass", NULL);
		cr_assert(authres_add_prop(r, "smtp", "mailfrom", c->value));
		snprintf(want, sizeof(want), " r.example; spf=pass "
		    "smtp.mailfrom=%s", c->want);
		got = fmt(ar, false, 0, true);
		cr_expect(got != NULL && strcmp(got, want) == 0,
		    "%s:\n  got:  %s\n  want: %s", c->desc, got ? got : "(refused)",
		    want);
		if (got != NULL) {
			cr_expect(authres_parse(got, strlen(got), &back, NULL, 0)
			    == DKIM_OK && back->n == 1 && back->r[0].np == 1 &&
			    strcmp(back->r[0].p[0].value, c->value) == 0,
			    "%s: value does not read back", c->desc);
			authres_free(back);
		}
		free(got);
		authres_free(ar);
	}
}

Test(authres, format_reason_and_versions)
{
	struct authres *ar = authres_new("relay.example");
	struct authres_result *r;
	char *got;

	ar->version = 1;
	r = authres_add_result(ar, "DKIM", "FAIL", "body hash did not verify");
	cr_assert(r != NULL);
	r->method_version = 1;
	cr_assert(authres_add_prop(r, "header", "d", "x.example"));
	r = authres_add_result(ar, "compauth", "pass", "100");
	cr_assert(authres_add_prop(r, "", "action", "none"));
	got = fmt(ar, false, 0, true);
	cr_expect(got != NULL && strcmp(got, " relay.example 1; dkim/1=fail "
	    "reason=\"body hash did not verify\" header.d=x.example; "
	    "compauth=pass reason=\"100\" action=none") == 0, "got %s", got);
	free(got);
	authres_free(ar);
}

Test(authres, format_none_and_quoted_id)
{
	struct authres *ar = authres_new("relay example");
	char *got = fmt(ar, false, 0, true);

	cr_expect(got != NULL && strcmp(got, " \"relay example\"; none") == 0,
	    "got %s", got);
	free(got);
	got = fmt(ar, true, 3, true);
	cr_expect(got != NULL && strcmp(got, " i=3; \"relay example\"; none")
	    == 0, "got %s", got);
	free(got);
	authres_free(ar);
}

/* The formatter refuses what it cannot write safely, and leaves the
 * buffer as it was. */
struct rcase {
	const char *desc;
	const char *id, *method, *result, *reason, *ptype, *prop, *value;
	const char *comment;
};

static const struct rcase refuse_cases[] = {
	{ "empty authserv-id", "", "spf", "pass", NULL, NULL, NULL, NULL, NULL },
	{ "CRLF in the id", "r.example\r\nBcc: x", "spf", "pass", NULL, NULL,
	    NULL, NULL, NULL },
	{ "method not a keyword", "r.example", "spf pass", "pass", NULL, NULL,
	    NULL, NULL, NULL },
	{ "result not a keyword", "r.example", "spf", "pa;ss", NULL, NULL,
	    NULL, NULL, NULL },
	{ "empty result", "r.example", "spf", "", NULL, NULL, NULL, NULL,
	    NULL },
	{ "LF in a value", "r.example", "spf", "pass", NULL, "smtp",
	    "mailfrom", "a\nb", NULL },
	{ "NUL-free but ESC in a value", "r.example", "spf", "pass", NULL,
	    "smtp", "mailfrom", "a\x1b", NULL },
	{ "ptype not a keyword", "r.example", "spf", "pass", NULL, "sm tp",
	    "mailfrom", "x", NULL },
	{ "empty property", "r.example", "spf", "pass", NULL, "smtp", "", "x",
	    NULL },
	{ "control character in a quoted local-part", "r.example", "spf",
	    "pass", NULL, "smtp", "mailfrom", "\"a\x01\"@x.example", NULL },
	{ "no ptype and property reason", "r.example", "spf", "pass", NULL, "",
	    "reason", "x", NULL },
};

Test(authres, format_refuses)
{
	for (size_t i = 0; i < NELEM(refuse_cases); i++) {
		const struct rcase *c = &refuse_cases[i];
		struct authres *ar = authres_new(c->id);
		struct authres_result *r;
		struct dkim_buf b;

		cr_assert(ar != NULL);
		r = authres_add_result(ar, c->method, c->result, c->reason);
		cr_assert(r != NULL, "%s: builder refused", c->desc);
		if (c->ptype)
			cr_assert(authres_add_prop(r, c->ptype, c->prop,
			    c->value));
		if (c->comment)
			cr_assert(authres_set_comment(r, c->comment));
		dkim_buf_init(&b, 0);
		dkim_buf_adds(&b, "keep");
		cr_expect(!authres_format(ar, false, 0, true, &b),
		    "%s: format accepted it: %s", c->desc, b.p);
		cr_expect(b.len == 4 && strcmp(b.p, "keep") == 0 && !b.failed,
		    "%s: buffer changed to %s", c->desc, esc(b.p, b.len));
		dkim_buf_free(&b);
		authres_free(ar);
	}
}

/* Free text cannot smuggle a header line: control characters in comments
 * and reasons come out as spaces. */
Test(authres, format_sanitizes_free_text)
{
	struct authres *ar = authres_new("r.example");
	struct authres_result *r;
	char *got;

	r = authres_add_result(ar, "dkim", "fail", "a\r\nX-Evil: 1");
	cr_assert(authres_set_comment(r, "b\rc\x01(d)"));
	got = fmt(ar, false, 0, true);
	cr_expect(got != NULL && strcmp(got, " r.example; dkim=fail "
	    "(b c \\(d\\)) reason=\"a  X-Evil: 1\"") == 0, "got %s",
	    got ? esc(got, strlen(got)) : "(refused)");
	free(got);
	authres_free(ar);
}

Test(authres, format_ceiling)
{
	struct authres *ar = sample();
	struct dkim_buf b;

	dkim_buf_init(&b, 40);
	cr_expect(!authres_format(ar, false, 0, true, &b), "fit in 40 bytes?");
	cr_expect(b.len == 0 && !b.failed, "buffer not restored");
	dkim_buf_free(&b);
	authres_free(ar);
}

Test(authres, builder_caps)
{
	struct authres *ar = authres_new("r.example");
	struct authres_result *first = NULL, *r;
	size_t i;

	for (i = 0; i < AUTHRES_MAX_RESULTS; i++) {
		r = authres_add_result(ar, "spf", "pass", NULL);
		cr_assert(r != NULL, "result %zu refused", i);
		if (first == NULL)
			first = r;
	}
	cr_expect(authres_add_result(ar, "spf", "pass", NULL) == NULL,
	    "result past the cap accepted");
	cr_expect(first == &ar->r[0], "results moved");
	for (i = 0; i < AUTHRES_MAX_PROPS; i++)
		cr_assert(authres_add_prop(first, "smtp", "helo", "x"));
	cr_expect(!authres_add_prop(first, "smtp", "helo", "x"),
	    "property past the cap accepted");
	cr_expect(authres_add_result(ar, NULL, "pass", NULL) == NULL);
	cr_expect(!authres_add_prop(first, "smtp", NULL, "x"));
	cr_expect(authres_new(NULL) == NULL);
	cr_expect(authres_set_comment(first, NULL) && first->comment == NULL);
	authres_free(ar);
}

Test(authres, classification)
{
	struct authres *ar = authres_new("r.example");
	struct authres_result *r;

	r = authres_add_result(ar, "dkim", "pass", NULL);
	cr_expect(r->flags == 0, "dkim=pass flags %#x", r->flags);
	r = authres_add_result(ar, "dkim", "softfail", NULL);
	cr_expect(r->flags == AUTHRES_R_UNKNOWN_RESULT, "dkim=softfail");
	r = authres_add_result(ar, "spf", "softfail", NULL);
	cr_expect(r->flags == 0, "spf=softfail");
	r = authres_add_result(ar, "compauth", "pass", NULL);
	cr_expect(r->flags & AUTHRES_R_UNKNOWN_METHOD, "compauth");
	cr_expect(authres_add_prop(r, "policy", "x", "y") &&
	    r->p[0].flags == 0, "policy ptype");
	cr_expect(authres_add_prop(r, "", "action", "none") &&
	    r->p[1].flags == AUTHRES_P_UNKNOWN_PTYPE, "empty ptype");
	authres_free(ar);
}

Test(authres, prop_get)
{
	static const char in[] = " i=1; lists.example.org; spf=pass "
	    "smtp.mfrom=jqd@d1.example; dkim=pass header.i=@d1.example "
	    "header.d=d1.example";
	struct authres *ar = NULL;

	cr_assert(authres_parse_aar(in, sizeof(in) - 1, &ar, NULL, 0) ==
	    DKIM_OK);
	cr_expect(strcmp(authres_prop_get(&ar->r[0], "smtp", "mailfrom"),
	    "jqd@d1.example") == 0, "smtp.mfrom as smtp.mailfrom");
	cr_expect(strcmp(authres_prop_get(&ar->r[1], "header", "d"),
	    "d1.example") == 0);
	cr_expect(authres_prop_get(&ar->r[1], "header", "s") == NULL);
	cr_expect(authres_prop_get(&ar->r[1], "smtp", "mfrom") == NULL);
	authres_free(ar);
}

Test(authres, error_names)
{
	for (int e = AUTHRES_E_NONE; e <= AUTHRES_E_BAD_AUTHSERV_ID; e++)
		cr_expect(strcmp(authres_err_str((enum authres_err)e),
		    "unknown error") != 0, "error %d has no name", e);
}
