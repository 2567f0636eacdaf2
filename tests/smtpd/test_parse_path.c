/*
 * test_parse_path.c - smtpd_parse_path, the RFC 5321 §4.1.2 Path parser:
 * what it accepts is handed to the rcpt hook exactly as sent, what it
 * refuses never reaches the hook.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "smtpd.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *
esc(const char *p, size_t n)
{
	static char out[2048];
	size_t o = 0, i;

	for (i = 0; i < n && o + 5 < sizeof(out); i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o,
			    "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

Test(parse_path, table)
{
	static const struct {
		const char *in;		/* NUL-terminated, unless len set */
		size_t len;
		bool ok;
		const char *want;	/* the mailbox, when ok */
		const char *rest;	/* what follows '>', when ok */
	} rows[] = {
		{ "<user@example.net>", 0, true, "user@example.net", "" },
		{ "<>", 0, true, "", "" },
		{ "<> SIZE=10", 0, true, "", " SIZE=10" },
		{ "<a@b.c> BODY=8BITMIME", 0, true, "a@b.c", " BODY=8BITMIME" },
		/* The relay tricks are paths: the hook decides. */
		{ "<user%other@example.net>", 0, true,
		  "user%other@example.net", "" },
		{ "<\"user@other\"@example.net>", 0, true,
		  "\"user@other\"@example.net", "" },
		{ "<user!other@example.net>", 0, true, "user!other@example.net",
		  "" },
		{ "<USER@EXAMPLE.NET>", 0, true, "USER@EXAMPLE.NET", "" },
		{ "<user@example.net.>", 0, true, "user@example.net.", "" },
		{ "<\"a\\\"b\"@x.org>", 0, true, "\"a\\\"b\"@x.org", "" },
		{ "<\"sp ace\"@x.org>", 0, true, "\"sp ace\"@x.org", "" },
		{ "<first.last+tag@sub.x-y.org>", 0, true,
		  "first.last+tag@sub.x-y.org", "" },
		{ "<u@[192.0.2.1]>", 0, true, "u@[192.0.2.1]", "" },
		{ "<u@[IPv6:2001:db8::1]>", 0, true, "u@[IPv6:2001:db8::1]", "" },
		/* Source routes are refused here, before any hook. */
		{ "<@a:user@b>", 0, false, NULL, NULL },
		{ "<@a,@b:user@c>", 0, false, NULL, NULL },
		/* Malformed. */
		{ "", 0, false, NULL, NULL },
		{ "<", 0, false, NULL, NULL },
		{ "user@example.net", 0, false, NULL, NULL },
		{ "<user@example.net", 0, false, NULL, NULL },
		{ "<user>", 0, false, NULL, NULL },
		{ "<@example.net>", 0, false, NULL, NULL },
		{ "<user@>", 0, false, NULL, NULL },
		{ "<.user@x.org>", 0, false, NULL, NULL },
		{ "<user.@x.org>", 0, false, NULL, NULL },
		{ "<us..er@x.org>", 0, false, NULL, NULL },
		{ "<us er@x.org>", 0, false, NULL, NULL },
		{ "<user@-x.org>", 0, false, NULL, NULL },
		{ "<user@x-.org>", 0, false, NULL, NULL },
		{ "<user@x..org>", 0, false, NULL, NULL },
		{ "<user@x.org..>", 0, false, NULL, NULL },
		{ "<user@.>", 0, false, NULL, NULL },
		{ "<user@x_y.org>", 0, false, NULL, NULL },
		{ "<user@a@b>", 0, false, NULL, NULL },
		{ "<\"open@x.org>", 0, false, NULL, NULL },
		{ "<u@[300.1.1.1]>", 0, false, NULL, NULL },
		{ "<u@[foo]>", 0, false, NULL, NULL },
		{ "<u@[IPv6:zz::1]>", 0, false, NULL, NULL },
		{ "<u@[192.0.2.1>", 0, false, NULL, NULL },
		{ "<u\xc3\xa9@x.org>", 0, false, NULL, NULL },
		{ "<\"\xff\"@x.org>", 0, false, NULL, NULL },
		{ "<u\x01@x.org>", 0, false, NULL, NULL },
		{ "<u\0v@x.org>", 11, false, NULL, NULL },
		/* The length bounds the parse: no reading past it. */
		{ "<user@example.net>", 10, false, NULL, NULL },
		{ "<user@example.net>", 17, false, NULL, NULL },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		size_t n = rows[i].len ? rows[i].len : strlen(rows[i].in);
		char out[300];
		const char *rest = NULL;
		bool ok = smtpd_parse_path(rows[i].in, n, out, sizeof(out),
		    &rest);

		cr_expect(ok == rows[i].ok, "row %zu \"%s\": got %s, want %s", i,
		    esc(rows[i].in, n), ok ? "ok" : "refused",
		    rows[i].ok ? "ok" : "refused");
		if (!ok || !rows[i].ok)
			continue;
		cr_expect(strcmp(out, rows[i].want) == 0,
		    "row %zu: got \"%s\", want \"%s\"", i, out, rows[i].want);
		cr_expect(rest && strcmp(rest, rows[i].rest) == 0,
		    "row %zu: rest got \"%s\", want \"%s\"", i,
		    rest ? rest : "(null)", rows[i].rest);
	}
}

Test(parse_path, limits)
{
	char in[400], out[400];
	const char *rest;
	size_t n;

	/* Local part: 64 octets ok, 65 refused (§4.5.3.1.1). */
	memset(in, 0, sizeof(in));
	in[0] = '<';
	memset(in + 1, 'a', 64);
	strcpy(in + 65, "@x.org>");
	cr_expect(smtpd_parse_path(in, strlen(in), out, sizeof(out), &rest),
	    "64-octet local part: got refused, want ok");
	in[0] = '<';
	memset(in + 1, 'a', 65);
	strcpy(in + 66, "@x.org>");
	cr_expect(!smtpd_parse_path(in, strlen(in), out, sizeof(out), &rest),
	    "65-octet local part: got ok, want refused");

	/* A label of 64 octets is refused, 63 is fine. */
	snprintf(in, sizeof(in), "<u@%.*s.org>", 63,
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	cr_expect(smtpd_parse_path(in, strlen(in), out, sizeof(out), &rest),
	    "63-octet label: got refused, want ok");
	snprintf(in, sizeof(in), "<u@%.*s.org>", 64,
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	cr_expect(!smtpd_parse_path(in, strlen(in), out, sizeof(out), &rest),
	    "64-octet label: got ok, want refused");

	/* The whole path at most 256 octets with its brackets (§4.5.3.1.3). */
	strcpy(in, "<u@");
	n = 3;
	while (n < 250) {
		memcpy(in + n, "abcdefghi.", 10);
		n += 10;
	}
	strcpy(in + n, "org>");
	cr_expect(!smtpd_parse_path(in, strlen(in), out, sizeof(out), &rest),
	    "a %zu-octet path: got ok, want refused", strlen(in));

	/* An output buffer too small refuses rather than truncates. */
	cr_expect(!smtpd_parse_path("<user@example.net>", 18, out, 10, &rest),
	    "small out: got ok, want refused");
	cr_expect(out[0] == '\0', "small out: got \"%s\", want empty", out);
}
