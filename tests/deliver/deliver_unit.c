/*
 * deliver_unit.c - the parts of delivery that need no network: SMTP reply
 * parsing (smtpc_reply_parse), RFC 3464 report building (bounce_build,
 * bounce_date) and maildir delivery. Tables of input and expected output.
 *
 * usage: deliver_unit WORKDIR
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounce.h"
#include "maildir.h"
#include "smtpc.h"

static int passed, failed;

#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; \
	printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); \
	printf("\n"); } } while (0)

/* ---------------------------------------------------------- replies */

static const struct {
	const char *text;
	int code;
	enum smtpc_class cls;
	const char *status;
	bool remote;
} replies[] = {
	{ "250 2.0.0 queued as 12", 250, SMTPC_OK, "2.0.0", true },
	{ "550 5.1.1 <a@b>: no such user", 550, SMTPC_PERM, "5.1.1", true },
	{ "451 4.3.0 busy", 451, SMTPC_TEMP, "4.3.0", true },
	{ "452 4.2.2", 452, SMTPC_TEMP, "4.2.2", true },
	{ "556 5.1.10 null MX", 556, SMTPC_PERM, "5.1.10", true },
	{ "550 4.1.1 class differs", 550, SMTPC_PERM, "", true },
	{ "550 5.1.1234 too long", 550, SMTPC_PERM, "", true },
	{ "554 no enhanced code", 554, SMTPC_PERM, "", true },
	{ "250", 250, SMTPC_OK, "", true },
	{ "connect to x[1.2.3.4]:25: refused", 0, SMTPC_TEMP, "", false },
	{ "2500 not a code", 0, SMTPC_TEMP, "", false },
	{ "", 0, SMTPC_TEMP, "", false },
};

static void
test_replies(void)
{
	size_t i;

	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		struct smtpc_reply r;

		smtpc_reply_parse(&r, replies[i].text);
		CHECK(r.code == replies[i].code && r.cls == replies[i].cls &&
		    strcmp(r.status, replies[i].status) == 0 &&
		    r.remote == replies[i].remote,
		    "reply '%s': got code %d class %d status '%s' remote %d, "
		    "want %d %d '%s' %d", replies[i].text, r.code, (int)r.cls,
		    r.status, r.remote, replies[i].code, (int)replies[i].cls,
		    replies[i].status, replies[i].remote);
	}
}

/* ------------------------------------------------------------ bounces */

static void
test_dates(void)
{
	static const struct { int64_t t; const char *want; } rows[] = {
		{ 0, "Thu, 01 Jan 1970 00:00:00 +0000" },
		{ 1764583200, "Mon, 01 Dec 2025 10:00:00 +0000" },
		{ 951782400, "Tue, 29 Feb 2000 00:00:00 +0000" },
	};
	size_t i;
	char out[64];

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bounce_date(rows[i].t, out, sizeof(out));
		CHECK(strcmp(out, rows[i].want) == 0, "date %lld: got '%s', "
		    "want '%s'", (long long)rows[i].t, out, rows[i].want);
	}
}

static char *
build(const char *msg, size_t len, const struct bounce_rcpt *r, size_t n,
    size_t *outlen)
{
	struct bounce_info bi;
	struct dkim_buf b;

	memset(&bi, 0, sizeof(bi));
	bi.hostname = "relay.test";
	bi.queue_id = "Q1";
	bi.sender = "alice@snd.test";
	bi.arrival = 1764583200;
	bi.now = 1764586800;
	bi.rcpt = r;
	bi.nrcpt = n;
	bi.msg = msg;
	bi.len = len;
	dkim_buf_init(&b, 0);
	if (!bounce_build(&bi, &b)) {
		dkim_buf_free(&b);
		return NULL;
	}
	return dkim_buf_take(&b, outlen);
}

/* longest_line - the longest line (without CRLF) in p. */
static size_t
longest_line(const char *p, size_t n)
{
	size_t i, start = 0, best = 0;

	for (i = 0; i < n; i++)
		if (p[i] == '\n') {
			size_t l = i - start - (i > start && p[i - 1] == '\r');

			if (l > best)
				best = l;
			start = i + 1;
		}
	return best;
}

static bool
has_bare_lf(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return true;
	return false;
}

static void
test_bounce(void)
{
	static const char msg[] = "From: a@snd.test\r\nSubject: hello\r\n"
	    "\r\nthe body stays home\r\n";
	struct bounce_rcpt r[2];
	char *out, *big, *p;
	size_t n, k;

	memset(r, 0, sizeof(r));
	r[0].addr = "x@dst.test";
	r[0].status = "5.1.1";
	r[0].diag = "550 5.1.1 no such user";
	r[0].diag_smtp = true;
	r[0].remote_mta = "mx.dst.test";
	r[0].last_attempt = 1764586800;
	/* A reply with CR LF and a forged field must not forge one. */
	r[1].addr = "y@dst.test";
	r[1].status = "4.4.7";
	r[1].expired = true;
	r[1].diag = "452 4.2.2 full\r\nAction: delivered and this reply is "
	    "long enough that it has to be folded over more than one line "
	    "of the report";
	r[1].diag_smtp = true;
	out = build(msg, sizeof(msg) - 1, r, 2, &n);
	CHECK(out != NULL, "bounce_build failed");
	if (out == NULL)
		return;
	CHECK(strstr(out, "Content-Type: multipart/report; report-type="
	    "delivery-status;") != NULL, "multipart/report missing");
	CHECK(strstr(out, "\r\nReporting-MTA: dns; relay.test\r\n") != NULL,
	    "Reporting-MTA missing");
	CHECK(strstr(out, "\r\nArrival-Date: Mon, 01 Dec 2025 10:00:00 "
	    "+0000\r\n") != NULL, "Arrival-Date missing");
	CHECK(strstr(out, "\r\n\r\nFinal-Recipient: rfc822; x@dst.test\r\n"
	    "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.dst.test"
	    "\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n") != NULL,
	    "first recipient group wrong:\n%s", out);
	CHECK(strstr(out, "\r\nAction: delivered") == NULL,
	    "a reply forged a field");
	CHECK(strstr(out, "Status: 4.4.7\r\n") != NULL, "expired status");
	CHECK(strstr(out, "Subject: hello\r\n") != NULL, "headers returned");
	CHECK(strstr(out, "stays home") == NULL, "body returned");
	CHECK(longest_line(out, n) <= 78, "a line of %zu octets",
	    longest_line(out, n));
	CHECK(!has_bare_lf(out, n), "bare LF in the report");
	CHECK(strstr(out, "Content-Transfer-Encoding") == NULL,
	    "7-bit report marked 8bit");
	free(out);

	/* The boundary avoids what the headers contain. */
	{
		static const char m2[] = "Subject: =_arcrelay_dsn_1764586800_"
		    "Q1_0\r\n\r\nx\r\n";

		out = build(m2, sizeof(m2) - 1, r, 1, &n);
		CHECK(out && strstr(out, "boundary=\"=_arcrelay_dsn_"
		    "1764586800_Q1_1\"") != NULL, "boundary not moved on");
		free(out);
	}
	/* 8-bit headers: the parts say so. */
	{
		static const char m3[] = "Subject: caf\xc3\xa9\r\n\r\nx\r\n";

		out = build(m3, sizeof(m3) - 1, r, 1, &n);
		CHECK(out && strstr(out, "Content-Transfer-Encoding: 8bit\r\n")
		    != NULL, "8-bit headers not marked");
		free(out);
	}
	/* No body at all: every line is header; no blank line: the same. */
	{
		static const char m4[] = "Subject: only headers\r\n";

		out = build(m4, sizeof(m4) - 1, r, 1, &n);
		CHECK(out && strstr(out, "\r\n\r\nSubject: only headers\r\n\r\n"
		    "--") != NULL, "header-only message");
		free(out);
	}
	/* Huge headers are cut at a line end within the cap. */
	k = BOUNCE_HEADERS_MAX * 2;
	big = malloc(k + 64);
	for (p = big; (size_t)(p - big) + 80 < k;) {
		memcpy(p, "X-Filler: ", 10);
		memset(p + 10, 'f', 60);
		memcpy(p + 70, "\r\n", 2);
		p += 72;
	}
	memcpy(p, "\r\nbody\r\n", 8);
	p += 8;
	out = build(big, (size_t)(p - big), r, 1, &n);
	CHECK(out != NULL, "big headers: build failed");
	if (out) {
		const char *h = strstr(out, "text/rfc822-headers");
		const char *end = out + n;
		size_t filler = 0;
		const char *q;

		for (q = h; q && (q = strstr(q, "X-Filler: ")) != NULL; q++)
			filler++;
		CHECK(filler > 0 && filler * 72 <= BOUNCE_HEADERS_MAX,
		    "big headers: %zu lines kept", filler);
		CHECK(strstr(out, "cut short") != NULL, "big headers: no note");
		CHECK(n < BOUNCE_HEADERS_MAX + 4096, "big headers: %zu bytes",
		    n);
		CHECK(end - out > 8 && memcmp(end - 4, "--\r\n", 4) == 0,
		    "big headers: closing boundary");
		free(out);
	}
	free(big);
}

/* ------------------------------------------------------------ maildir */

static size_t
count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
test_maildir(const char *work)
{
	char dir[1024], p[4096], name[1400], first[1400], why[512];
	static const char msg[] = "Subject: x\r\n\r\nbody\r\n";
	FILE *f;
	int i;
	bool ok = true;

	snprintf(dir, sizeof(dir), "%s/a/b/Maildir", work);
	for (i = 0; i < 50; i++) {
		if (!maildir_deliver(dir, msg, sizeof(msg) - 1, name,
		    sizeof(name), why, sizeof(why))) {
			ok = false;
			printf("  maildir: %s\n", why);
			break;
		}
		if (i == 0)
			snprintf(first, sizeof(first), "%s", name);
	}
	CHECK(ok, "maildir deliveries failed");
	snprintf(p, sizeof(p), "%s/new", dir);
	CHECK(count_dir(p) == 50, "new/ has %zu files, want 50 (unique "
	    "names)", count_dir(p));
	snprintf(p, sizeof(p), "%s/tmp", dir);
	CHECK(count_dir(p) == 0, "tmp/ not empty");
	snprintf(p, sizeof(p), "%s/cur", dir);
	CHECK(count_dir(p) == 0, "cur/ missing or not empty");
	snprintf(p, sizeof(p), "%s/new/%s", dir, first);
	if ((f = fopen(p, "rb")) != NULL) {
		char buf[64];
		size_t n = fread(buf, 1, sizeof(buf), f);

		fclose(f);
		CHECK(n == sizeof(msg) - 1 && memcmp(buf, msg, n) == 0,
		    "stored bytes differ");
	} else {
		CHECK(0, "cannot open %s", p);
	}
	/* A path through a regular file cannot be a maildir. */
	snprintf(p, sizeof(p), "%s/plainfile", work);
	if ((f = fopen(p, "w")) != NULL)
		fclose(f);
	snprintf(dir, sizeof(dir), "%s/plainfile/box", work);
	why[0] = '\0';
	CHECK(!maildir_deliver(dir, msg, sizeof(msg) - 1, name, sizeof(name),
	    why, sizeof(why)) && why[0] != '\0', "delivery under a file "
	    "succeeded");
}

int
main(int argc, char **argv)
{
	char cmd[1200];

	if (argc != 2) {
		fprintf(stderr, "usage: deliver_unit WORKDIR\n");
		return 2;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", argv[1],
	    argv[1]);
	if (system(cmd) != 0)
		return 2;
	test_replies();
	test_dates();
	test_bounce();
	test_maildir(argv[1]);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
