/*
 * test_config.c - relay/config.c: arcrelay.conf through config_load, and
 * config_duration, config_size and config_default.
 *
 * Each row of the load tables is a configuration file, written to a
 * temporary directory, and either the fields it must give (rendered as
 * text by field_text) or the exact "file:line: reason" it must be refused
 * with. In a row "@D@" stands for that directory, where setup() leaves
 * key, certificate and zone files, and "@F@" for the row's own file.
 */
#include <sys/stat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define LIT(s) s, sizeof(s) - 1	/* a literal with its length (NULs too) */

static char dir[256];		/* the temporary directory */

/*
 * Files
 */

static void
write_file(const char *path, const char *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	cr_assert(fp != NULL, "cannot create %s", path);
	cr_assert(fwrite(data, 1, len, fp) == len, "cannot write %s", path);
	cr_assert(fclose(fp) == 0, "cannot write %s", path);
}

static void
write_key(const char *name, EVP_PKEY *k, const char *pass)
{
	char path[512];
	FILE *fp;

	cr_assert(k != NULL, "cannot generate %s", name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert((fp = fopen(path, "w")) != NULL, "cannot create %s", path);
	cr_assert(PEM_write_PrivateKey(fp, k,
	    pass != NULL ? EVP_aes_256_cbc() : NULL,
	    (const unsigned char *)pass, pass != NULL ? (int)strlen(pass) : 0,
	    NULL, NULL) == 1, "cannot write %s", path);
	fclose(fp);
	EVP_PKEY_free(k);
}

static void
in_dir(const char *name, char *path, size_t n)
{
	snprintf(path, n, "%s/%s", dir, name);
}

/*
 * setup - the files the rows point at:
 *   ed.key rsa.key   usable DKIM keys (Ed25519, RSA 1024)
 *   short.key        RSA 512, too short to sign with
 *   ec.key           P-256: a private key, but not one DKIM signs with
 *   enc.key          Ed25519, encrypted with a passphrase
 *   junk.key         text, no key
 *   locked.key       Ed25519, mode 000
 *   cert.pem zone.txt  readable files; sub/ a directory
 */
static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");
	char path[512];

	snprintf(dir, sizeof(dir), "%s/arcrelay-config-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	cr_assert(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
	write_key("ed.key", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), NULL);
	write_key("rsa.key", EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024), NULL);
	write_key("short.key", EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512), NULL);
	write_key("ec.key", EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
	    NULL);
	write_key("enc.key", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
	    "secret");
	write_key("locked.key", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
	    NULL);
	in_dir("locked.key", path, sizeof(path));
	cr_assert(chmod(path, 0) == 0);
	in_dir("junk.key", path, sizeof(path));
	write_file(path, "not a key\n", 10);
	in_dir("cert.pem", path, sizeof(path));
	write_file(path, "-----BEGIN CERTIFICATE-----\n", 28);
	in_dir("zone.txt", path, sizeof(path));
	write_file(path, "example.com. TXT \"v=spf1 -all\"\n", 31);
	in_dir("members.txt", path, sizeof(path));
	write_file(path, LIT("# the dev list\nm1@a.example\n\n  M2@B.example"
	    "  # a comment\nm1@A.EXAMPLE\n"));
	in_dir("footer.txt", path, sizeof(path));
	write_file(path, LIT("Line one\nLine two\n"));
	in_dir("secret.txt", path, sizeof(path));
	write_file(path, LIT("old-secret-from-a-file\n"));
	in_dir("sub", path, sizeof(path));
	cr_assert(mkdir(path, 0700) == 0);
}

static void
teardown(void)
{
	static const char *const names[] = { "ed.key", "rsa.key",
	    "short.key", "ec.key", "enc.key", "locked.key", "junk.key",
	    "cert.pem", "zone.txt", "row.conf", "members.txt", "footer.txt",
	    "secret.txt" };
	char path[512];
	size_t i;

	if (dir[0] == '\0')
		return;
	for (i = 0; i < NELEM(names); i++) {
		in_dir(names[i], path, sizeof(path));
		unlink(path);
	}
	in_dir("sub", path, sizeof(path));
	rmdir(path);
	rmdir(dir);
}

TestSuite(config, .init = setup, .fini = teardown);

/* subst - a copy of n bytes of in with @D@ and @F@ replaced. */
static char *
subst(const char *in, size_t n, const char *file, size_t *outlen)
{
	size_t cap = n + 1, len = 0, i;
	char *out;

	for (i = 0; i + 3 <= n; i++)
		if (memcmp(in + i, "@D@", 3) == 0 ||
		    memcmp(in + i, "@F@", 3) == 0)
			cap += strlen(dir) + strlen(file);
	cr_assert((out = malloc(cap)) != NULL);
	for (i = 0; i < n; ) {
		const char *rep = NULL;

		if (i + 3 <= n && memcmp(in + i, "@D@", 3) == 0)
			rep = dir;
		else if (i + 3 <= n && memcmp(in + i, "@F@", 3) == 0)
			rep = file;
		if (rep != NULL) {
			memcpy(out + len, rep, strlen(rep));
			len += strlen(rep);
			i += 3;
		} else
			out[len++] = in[i++];
	}
	out[len] = '\0';
	if (outlen != NULL)
		*outlen = len;
	return out;
}

/* load_text - write text (n bytes; 0: strlen) as @D@/row.conf and load. */
static struct relay_config *
load_text(const char *text, size_t n, char *file, size_t filelen,
    char *why, size_t whylen)
{
	size_t len;
	char *body;
	struct relay_config *c;

	in_dir("row.conf", file, filelen);
	body = subst(text, n != 0 ? n : strlen(text), file, &len);
	write_file(file, body, len);
	free(body);
	why[0] = '\0';
	c = config_load(file, why, whylen);
	unlink(file);
	return c;
}

/*
 * field_text - one field of c as text: numbers in decimal, lists apart by
 * spaces, domains as NAME=TARGET, NULL as "(null)".
 */
static const char *
field_text(const struct relay_config *c, const char *f)
{
	static char buf[4][1024];
	static unsigned next;
	char *b = buf[next++ % 4];
	size_t i, n = 0, sz = sizeof(buf[0]);

#define STR(name) if (strcmp(f, #name) == 0) \
	return c->name != NULL ? c->name : "(null)";
#define NUM(name) if (strcmp(f, #name) == 0) { \
	snprintf(b, sz, "%llu", (unsigned long long)c->name); return b; }

	STR(hostname) STR(authserv_id) STR(spool) STR(pid_file) STR(user) STR(tls_cert)
	STR(tls_key) STR(resolver) STR(records) STR(deliver)
	STR(sign_domain) STR(sign_selector) STR(sign_key) STR(arc_domain)
	STR(arc_selector) STR(arc_key) STR(path)
	NUM(max_message_size) NUM(max_recipients) NUM(max_sessions)
	NUM(max_sessions_per_ip) NUM(max_errors) NUM(idle_timeout)
	NUM(workers) NUM(dns_timeout) NUM(lifetime)
#undef STR
#undef NUM
	b[0] = '\0';
	if (strcmp(f, "loopback_any_rcpt") == 0)
		return c->loopback_any_rcpt ? "true" : "false";
	if (strcmp(f, "eightbit") == 0)
		return c->eightbit_bounce ? "bounce" : "send";
	if (strcmp(f, "listen") == 0) {
		for (i = 0; i < c->nlisten; i++)
			n += (size_t)snprintf(b + n, sz - n, "%s%s",
			    i ? " " : "", c->listen[i]);
		return b;
	}
	if (strcmp(f, "retry") == 0) {
		for (i = 0; i < c->nretry; i++)
			n += (size_t)snprintf(b + n, sz - n, "%s%u",
			    i ? " " : "", c->retry[i]);
		return b;
	}
	if (strcmp(f, "domains") == 0) {
		for (i = 0; i < c->ndomains; i++)
			n += (size_t)snprintf(b + n, sz - n, "%s%s=%s",
			    i ? " " : "", c->domains[i].name,
			    c->domains[i].deliver != NULL ?
			    c->domains[i].deliver : "(null)");
		return b;
	}
	if (strcmp(f, "lists") == 0) {
		const struct rules *r = c->rules;

		for (i = 0; r != NULL && i < r->nlists; i++) {
			const struct rules_list *l = &r->lists[i];
			size_t m;

			n += (size_t)snprintf(b + n, sz - n, "%s%s name=%s "
			    "bounces=%s posters=%s from=%d dmarc=%s reply=%d "
			    "tag=%s "
			    "id=%s mailto=%s https=%s verp=%s kept=%s "
			    "footer=%s members=",
			    i ? " | " : "", l->addr, l->name, l->bounces,
			    l->posters_any ? "any" : "members",
			    (int)l->from_rewrite, l->dmarc_relay ? "relay" :
			    "refuse", (int)l->reply_to,
			    l->subject_tag ? l->subject_tag : "-",
			    l->list_id ? l->list_id : "-",
			    l->unsub_mailto ? l->unsub_mailto : "-",
			    l->unsub_https ? l->unsub_https : "-",
			    l->verp ? "yes" : "no", l->bounce_discard ?
			    "discard" : l->bounce_maildir ? l->bounce_maildir :
			    "(null)", l->footer ? l->footer : "-");
			for (m = 0; m < l->nmembers; m++)
				n += (size_t)snprintf(b + n, sz - n, "%s%s",
				    m ? "," : "", l->members[m]);
		}
		return b;
	}
	if (strcmp(f, "forwards") == 0) {
		const struct rules *r = c->rules;

		for (i = 0; r != NULL && i < r->nforwards; i++) {
			const struct rules_forward *fw = &r->forwards[i];
			size_t m;

			n += (size_t)snprintf(b + n, sz - n, "%s%s srs=%s to=",
			    i ? " | " : "", fw->addr, fw->srs ? "yes" : "no");
			for (m = 0; m < fw->nto; m++)
				n += (size_t)snprintf(b + n, sz - n, "%s%s",
				    m ? "," : "", fw->to[m]);
		}
		return b;
	}
	if (strcmp(f, "srs") == 0) {
		const struct rules *r = c->rules;

		if (r == NULL || r->srs.domain == NULL)
			return "(null)";
		n += (size_t)snprintf(b + n, sz - n, "%s max_age=%u secrets=",
		    r->srs.domain, r->srs.max_age_days);
		for (i = 0; i < r->srs.nsecrets; i++)
			n += (size_t)snprintf(b + n, sz - n, "%s%s",
			    i ? "," : "", r->srs.secrets[i]);
		return b;
	}
	if (strcmp(f, "trusted_arc") == 0) {
		const struct rules *r = c->rules;

		for (i = 0; r != NULL && i < r->ntrusted_arc; i++)
			n += (size_t)snprintf(b + n, sz - n, "%s%s",
			    i ? "," : "", r->trusted_arc[i]);
		return n ? b : "-";
	}
	cr_assert_fail("field_text: no field %s", f);
	return NULL;
}

/* Every field, for the whole-config comparisons. */
static const char *const all_fields[] = {
	"listen", "hostname", "authserv_id", "spool", "pid_file", "user",
	"max_message_size", "max_recipients", "max_sessions",
	"max_sessions_per_ip", "max_errors", "idle_timeout", "tls_cert",
	"tls_key", "workers", "loopback_any_rcpt", "resolver", "records",
	"dns_timeout", "deliver", "retry", "lifetime", "eightbit",
	"sign_domain",
	"sign_selector", "sign_key", "arc_domain", "arc_selector", "arc_key",
	"domains", "lists", "forwards", "srs", "path",
};

struct want_field {
	const char *field;
	const char *want;	/* @D@ and @F@ substituted */
};

/* check_fields - every listed field of c against its want. */
static void
check_fields(const char *desc, const struct relay_config *c,
    const struct want_field *w, size_t n, const char *file)
{
	size_t i;

	for (i = 0; i < n && w[i].field != NULL; i++) {
		char *want = subst(w[i].want, strlen(w[i].want), file, NULL);
		const char *got = field_text(c, w[i].field);

		cr_expect(strcmp(got, want) == 0, "%s: %s: got \"%s\", want "
		    "\"%s\"", desc, w[i].field, got, want);
		free(want);
	}
}

/*
 * config_duration and config_size
 */

struct duration_case {
	const char *in;
	bool ok;
	unsigned want;
};

static const struct duration_case duration_cases[] = {
	{ "0", true, 0 },
	{ "90", true, 90 },
	{ "90s", true, 90 },
	{ "5m", true, 300 },
	{ "2h", true, 7200 },
	{ "5d", true, 432000 },
	{ "007m", true, 420 },
	{ "4294967295", true, UINT_MAX },
	{ "4294967295s", true, UINT_MAX },
	{ "49710d", true, 4294944000U },
	{ "", false, 0 },
	{ "s", false, 0 },
	{ "m5", false, 0 },
	{ "5x", false, 0 },
	{ "5M", false, 0 },	/* minutes are m; M is a size */
	{ "5 m", false, 0 },
	{ " 5", false, 0 },
	{ "5 ", false, 0 },
	{ "-5", false, 0 },
	{ "+5", false, 0 },
	{ "1.5h", false, 0 },
	{ "5mm", false, 0 },
	{ "1h30m", false, 0 },
	{ "4294967296", false, 0 },
	{ "49711d", false, 0 },
	{ "71582789m", false, 0 },
	{ "99999999999999999999999", false, 0 },
};

Test(config, duration)
{
	size_t i;

	for (i = 0; i < NELEM(duration_cases); i++) {
		const struct duration_case *t = &duration_cases[i];
		unsigned got = 12345;
		bool ok = config_duration(t->in, &got);

		cr_expect(ok == t->ok, "config_duration(\"%s\"): got %s, "
		    "want %s", t->in, ok ? "ok" : "refused",
		    t->ok ? "ok" : "refused");
		if (ok && t->ok)
			cr_expect(got == t->want, "config_duration(\"%s\"): "
			    "got %u, want %u", t->in, got, t->want);
	}
	cr_expect(!config_duration(NULL, &(unsigned){ 0 }),
	    "config_duration(NULL) accepted");
}

struct size_case {
	const char *in;
	bool ok;
	uint64_t want;
};

static const struct size_case size_cases[] = {
	{ "0", true, 0 },
	{ "1000", true, 1000 },
	{ "10k", true, 10240 },
	{ "10K", true, 10240 },
	{ "50M", true, 52428800 },
	{ "50m", true, 52428800 },
	{ "1G", true, 1073741824 },
	{ "1g", true, 1073741824 },
	{ "17179869183G", true, 17179869183ULL << 30 },
	{ "18446744073709551615", true, UINT64_MAX },
	{ "", false, 0 },
	{ "k", false, 0 },
	{ "10Q", false, 0 },
	{ "10kb", false, 0 },
	{ "10KiB", false, 0 },
	{ "1T", false, 0 },
	{ "1.5M", false, 0 },
	{ "-1", false, 0 },
	{ "+1", false, 0 },
	{ " 1", false, 0 },
	{ "1 ", false, 0 },
	{ "10 M", false, 0 },
	{ "18446744073709551616", false, 0 },
	{ "17179869184G", false, 0 },
	{ "18014398509481984k", false, 0 },
};

Test(config, size)
{
	size_t i;

	for (i = 0; i < NELEM(size_cases); i++) {
		const struct size_case *t = &size_cases[i];
		uint64_t got = 12345;
		bool ok = config_size(t->in, &got);

		cr_expect(ok == t->ok, "config_size(\"%s\"): got %s, want %s",
		    t->in, ok ? "ok" : "refused", t->ok ? "ok" : "refused");
		if (ok && t->ok)
			cr_expect(got == t->want, "config_size(\"%s\"): got "
			    "%llu, want %llu", t->in, (unsigned long long)got,
			    (unsigned long long)t->want);
	}
	cr_expect(!config_size(NULL, &(uint64_t){ 0 }),
	    "config_size(NULL) accepted");
}

/*
 * Valid files
 */

struct ok_case {
	const char *desc;
	const char *text;
	struct want_field want[12];
};

static const struct ok_case ok_cases[] = {
	{ "an empty file gives the defaults, without loopback_any_rcpt", "",
	    { { "listen", "127.0.0.1:2525" }, { "spool", "./var/spool" },
	      { "pid_file", "./var/spool/arcrelay.pid" },
	      { "max_message_size", "52428800" }, { "idle_timeout", "300" },
	      { "deliver", "maildir:./var/outbox" },
	      { "retry", "60 300 1800 7200" }, { "lifetime", "432000" },
	      { "eightbit", "send" },
	      { "loopback_any_rcpt", "false" }, { "path", "@F@" } } },
	{ "comments, blank lines and empty sections",
	    "# a comment\n\n   \t\n\t# indented comment\n[server] # why\n"
	    "[dns]\n[delivery]\n[arc]\n",
	    { { "listen", "127.0.0.1:2525" }, { "resolver", "system" },
	      { "arc_domain", "(null)" }, { "arc_key", "(null)" },
	      { "domains", "" } } },
	{ "hostname: lowercase, final dot dropped; derived defaults follow",
	    "[server]\nhostname = MX.Example.COM.  # trailing comment\n",
	    { { "hostname", "mx.example.com" },
	      { "authserv_id", "mx.example.com" },
	      { "sign_domain", "example.com" },
	      { "sign_selector", "arcrelay" },
	      { "sign_key", "./var/keys/arcrelay.private" } } },
	{ "a two-label hostname is its own signing domain",
	    "[server]\nhostname = example.net\n",
	    { { "sign_domain", "example.net" } } },
	{ "a bare hostname has no domain",
	    "[server]\nhostname = mailhost\n",
	    { { "hostname", "mailhost" },
	      { "sign_domain", "localhost.localdomain" } } },
	{ "authserv_id of its own",
	    "[server]\nhostname = mx.example.com\nauthserv_id = ar.example\n",
	    { { "authserv_id", "ar.example" } } },
	{ "listen repeats and replaces the default",
	    "[server]\nlisten = 0.0.0.0:25\nlisten = [::1]:2525\n"
	    "listen = localhost:587\nlisten = [2001:db8::1]:25\n",
	    { { "listen", "0.0.0.0:25 [::1]:2525 localhost:587 "
	        "[2001:db8::1]:25" } } },
	{ "[server] numbers, sizes and durations",
	    "[server]\nmax_message_size = 10M\nmax_recipients = 1000\n"
	    "max_sessions = 2000\nmax_sessions_per_ip = 5\nmax_errors = 3\n"
	    "idle_timeout = 90s\nworkers = 8\n",
	    { { "max_message_size", "10485760" },
	      { "max_recipients", "1000" }, { "max_sessions", "2000" },
	      { "max_sessions_per_ip", "5" }, { "max_errors", "3" },
	      { "idle_timeout", "90" }, { "workers", "8" } } },
	{ "range ends are accepted",
	    "[server]\nmax_message_size = 1k\nmax_recipients = 100000\n"
	    "idle_timeout = 1d\nworkers = 1\n[dns]\ntimeout = 5m\n"
	    "[delivery]\nlifetime = 365d\nretry = 1s 30d\n",
	    { { "max_message_size", "1024" },
	      { "max_recipients", "100000" }, { "idle_timeout", "86400" },
	      { "workers", "1" }, { "dns_timeout", "300" },
	      { "lifetime", "31536000" }, { "retry", "1 2592000" } } },
	{ "max_message_size at its top",
	    "[server]\nmax_message_size = 16G\n",
	    { { "max_message_size", "17179869184" } } },
	{ "user and spool; the pid file follows the spool",
	    "[server]\nuser = arc-relay_1\nspool = /var/spool/arcrelay\n",
	    { { "user", "arc-relay_1" },
	      { "spool", "/var/spool/arcrelay" },
	      { "pid_file", "/var/spool/arcrelay/arcrelay.pid" } } },
	{ "pid_file of its own",
	    "[server]\npid_file = /run/arcrelay.pid\nspool = /var/q\n",
	    { { "pid_file", "/run/arcrelay.pid" }, { "spool", "/var/q" } } },
	{ "quoting keeps spaces and '#'; a bare '#' inside a word stays",
	    "[server]\nspool = \" /var/spool # not a comment \"\n"
	    "[delivery]\ndeliver = maildir:./out#1  # a comment\n",
	    { { "spool", " /var/spool # not a comment " },
	      { "deliver", "maildir:./out#1" } } },
	{ "quoted escapes and a comment after the quote",
	    "[server]\nspool = \"a\\\"b\\\\c\"\t# comment\n",
	    { { "spool", "a\"b\\c" } } },
	{ "tabs, CRLF line ends, no final newline",
	    "[server]\r\n\tworkers\t=\t4\t\r\n[dns]\r\ntimeout=7",
	    { { "workers", "4" }, { "dns_timeout", "7" } } },
	{ "spaces inside the brackets",
	    "[ server ]\nworkers = 3\n[  domain   example.com  ]\n",
	    { { "workers", "3" }, { "domains", "example.com=(null)" } } },
	{ "a value holding '=' and spaces",
	    "[delivery]\ndeliver = maildir:./a=b c\n",
	    { { "deliver", "maildir:./a=b c" } } },
	{ "STARTTLS certificate and key",
	    "[server]\ntls_cert = @D@/cert.pem\ntls_key = @D@/ec.key\n",
	    { { "tls_cert", "@D@/cert.pem" }, { "tls_key", "@D@/ec.key" } } },
	{ "[dns] resolver IP@PORT, records, timeout",
	    "[dns]\nresolver = 127.0.0.1@5353\nrecords = @D@/zone.txt\n"
	    "timeout = 10s\n",
	    { { "resolver", "127.0.0.1@5353" },
	      { "records", "@D@/zone.txt" }, { "dns_timeout", "10" } } },
	{ "resolver IPv6 without a port", "[dns]\nresolver = ::1\n",
	    { { "resolver", "::1" } } },
	{ "resolver IPv6 with a port", "[dns]\nresolver = 2001:db8::53@53\n",
	    { { "resolver", "2001:db8::53@53" } } },
	{ "resolver IPv4 without a port", "[dns]\nresolver = 192.0.2.53\n",
	    { { "resolver", "192.0.2.53" } } },
	{ "deliver to a bracketed relay host; retry and lifetime",
	    "[delivery]\ndeliver = smtp:[mail.example.net]:587\n"
	    "retry = 30s 1m  1m\t1h\nlifetime = 2d\n",
	    { { "deliver", "smtp:[mail.example.net]:587" },
	      { "retry", "30 60 60 3600" }, { "lifetime", "172800" } } },
	{ "eightbit bounce", "[delivery]\neightbit = bounce\n",
	    { { "eightbit", "bounce" }, { "lifetime", "432000" } } },
	{ "eightbit send", "[delivery]\neightbit = send\n",
	    { { "eightbit", "send" } } },
	{ "deliver smtp:HOST:PORT", "[delivery]\ndeliver = smtp:relay.example:25\n",
	    { { "deliver", "smtp:relay.example:25" } } },
	{ "deliver smtp:IPv4:PORT", "[delivery]\ndeliver = smtp:192.0.2.1:2525\n",
	    { { "deliver", "smtp:192.0.2.1:2525" } } },
	{ "deliver smtp:[IPv4]:PORT",
	    "[delivery]\ndeliver = smtp:[192.0.2.1]:25\n",
	    { { "deliver", "smtp:[192.0.2.1]:25" } } },
	{ "deliver smtp:[IPv6]:PORT",
	    "[delivery]\ndeliver = smtp:[2001:db8::25]:25\n",
	    { { "deliver", "smtp:[2001:db8::25]:25" } } },
	{ "deliver mx, retry as one duration",
	    "[delivery]\ndeliver = mx\nretry = 10m\n",
	    { { "deliver", "mx" }, { "retry", "600" } } },
	{ "[signing] with an Ed25519 key",
	    "[signing]\ndomain = Example.COM\nselector = Sel-1\n"
	    "key = @D@/ed.key\n",
	    { { "sign_domain", "example.com" }, { "sign_selector", "sel-1" },
	      { "sign_key", "@D@/ed.key" }, { "arc_domain", "(null)" },
	      { "arc_selector", "(null)" }, { "arc_key", "(null)" } } },
	{ "[signing] with an RSA key and a numeric, dotted selector",
	    "[signing]\nkey = @D@/rsa.key\nselector = 2024\n"
	    "domain = mail_x.example.org\n",
	    { { "sign_domain", "mail_x.example.org" },
	      { "sign_selector", "2024" }, { "sign_key", "@D@/rsa.key" } } },
	{ "[arc] with only its own selector",
	    "[signing]\ndomain = example.com\nselector = dkim\n"
	    "key = @D@/ed.key\n[arc]\nselector = arc.2024\n",
	    { { "arc_selector", "arc.2024" }, { "arc_domain", "(null)" },
	      { "arc_key", "(null)" } } },
	{ "[arc] with domain, selector and key",
	    "[arc]\ndomain = arc.example\nselector = seal\nkey = @D@/rsa.key\n",
	    { { "arc_domain", "arc.example" }, { "arc_selector", "seal" },
	      { "arc_key", "@D@/rsa.key" } } },
	{ "[arc] key with its own domain",
	    "[arc]\nkey = @D@/ed.key\ndomain = arc.example\n",
	    { { "arc_key", "@D@/ed.key" }, { "arc_selector", "(null)" } } },
	{ "[domain NAME] blocks, normalised, with and without a target",
	    "[domain Example.COM.]\ndeliver = smtp:[mx.example.net]:25\n"
	    "[domain lists.example.org]\n[domain example.net]\n"
	    "deliver = mx\n",
	    { { "domains", "example.com=smtp:[mx.example.net]:25 "
	        "lists.example.org=(null) example.net=mx" } } },
	{ "[list] with every key; members inline, deduplicated",
	    "[list Announce@Lists.Example]\nmembers = a@x.example, b@Y.Example\n"
	    "members = A@X.EXAMPLE c@z.example\nname = The Announce List\n"
	    "posters = any\nsubject_tag = [announce]\n"
	    "footer = --\\nTo leave: mail announce-leave\n"
	    "from_rewrite = always\ndmarc_reject = relay\nreply_to = list\n"
	    "list_id = Announce <announce.lists.example>\n"
	    "unsubscribe = mailto:leave-{list} https://lists.example/u?l={list}\n"
	    "verp = no\nbounces = maildir:/var/mail/announce-bounces\n",
	    { { "lists", "Announce@lists.example name=The Announce List "
	        "bounces=Announce-bounces@lists.example posters=any from=1 "
	        "dmarc=relay reply=1 tag=[announce] id=Announce <announce.lists.example> "
	        "mailto=leave-Announce@lists.example "
	        "https=https://lists.example/u?l=Announce@lists.example "
	        "verp=no kept=/var/mail/announce-bounces "
	        "footer=--\nTo leave: mail announce-leave "
	        "members=a@x.example,b@y.example,c@z.example" } } },
	{ "[list] bounces = discard; the spool given after the list",
	    "[list a@lists.example]\nmembers = b@x.example\n"
	    "bounces = discard\n[list c@lists.example]\nmembers = d@x.example\n"
	    "[server]\nspool = /srv/spool\n",
	    { { "lists", "a@lists.example name=a "
	        "bounces=a-bounces@lists.example posters=members from=0 "
	        "dmarc=refuse reply=0 tag=- id=- mailto=- https=- verp=yes kept=discard "
	        "footer=- members=b@x.example | c@lists.example name=c "
	        "bounces=c-bounces@lists.example posters=members from=0 "
	        "dmarc=refuse reply=0 tag=- id=- mailto=- https=- verp=yes "
	        "kept=/srv/spool/bounces footer=- members=d@x.example" } } },
	{ "[list] of 56 octets: NAME-bounces has the 64 RFC 5321 allows",
	    "[list aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaa@lists.example]\nmembers = b@x.example\n",
	    { { "lists", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaa@lists.example name=aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaa "
	        "bounces=aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaa-bounces@lists.example posters=members from=0 "
	        "dmarc=refuse reply=0 tag=- id=- mailto=- https=- verp=yes "
	        "kept=./var/spool/bounces footer=- members=b@x.example" } } },
	{ "[list] defaults; members and footer from files",
	    "[list dev@lists.example]\nmembers = file:@D@/members.txt\n"
	    "footer = file:@D@/footer.txt\n",
	    { { "lists", "dev@lists.example name=dev "
	        "bounces=dev-bounces@lists.example posters=members from=0 "
	        "dmarc=refuse reply=0 tag=- id=- mailto=- https=- "
	        "verp=yes kept=./var/spool/bounces "
	        "footer=Line one\nLine two\n members=m1@a.example,M2@b.example" } } },
	{ "[forward] with srs, and [srs] with two secrets",
	    "[forward bob@corp.example]\nto = bob@home.example\n"
	    "to = b2@home.example, bob@HOME.example\n"
	    "[forward carol@corp.example]\nto = carol@else.example\nsrs = no\n"
	    "[srs]\ndomain = Fwd.Corp.Example\nsecret = 0123456789abcdef\n"
	    "secret = file:@D@/secret.txt\nmax_age = 10d\n",
	    { { "forwards", "bob@corp.example srs=yes "
	        "to=bob@home.example,b2@home.example | carol@corp.example "
	        "srs=no to=carol@else.example" },
	      { "srs", "fwd.corp.example max_age=10 "
	        "secrets=0123456789abcdef,old-secret-from-a-file" } } },
	{ "NAME-bounces at another domain, or a longer local part: no clash",
	    "[list a@lists.example]\nmembers = b@x.example\n"
	    "[forward a-bounces@other.example]\nto = c@x.example\nsrs = no\n"
	    "[forward a-bouncesx@lists.example]\nto = d@x.example\nsrs = no\n"
	    "[forward a-bounces+@lists.example]\nto = e@x.example\nsrs = no\n",
	    { { "forwards", "a-bounces@other.example srs=no to=c@x.example | "
	        "a-bouncesx@lists.example srs=no to=d@x.example | "
	        "a-bounces+@lists.example srs=no to=e@x.example" } } },
	{ "[policy] trusted_arc, repeatable, commas or blanks, lowercased",
	    "[policy]\ntrusted_arc = Hop.Example, fwd.example\n"
	    "trusted_arc = m365.example.net\n",
	    { { "trusted_arc", "hop.example,fwd.example,m365.example.net" } } },
	{ "sections in any order, each once",
	    "[delivery]\ndeliver = mx\n[server]\nworkers = 4\n"
	    "[domain a.example]\n[dns]\ntimeout = 2\n[domain b.example]\n",
	    { { "deliver", "mx" }, { "workers", "4" }, { "dns_timeout", "2" },
	      { "domains", "a.example=(null) b.example=(null)" } } },
};

Test(config, load_ok)
{
	char file[512], why[1024];
	size_t i;

	for (i = 0; i < NELEM(ok_cases); i++) {
		const struct ok_case *t = &ok_cases[i];
		struct relay_config *c = load_text(t->text, 0, file,
		    sizeof(file), why, sizeof(why));

		cr_expect(c != NULL, "%s: refused: %s", t->desc, why);
		if (c == NULL)
			continue;
		check_fields(t->desc, c, t->want, NELEM(t->want), file);
		config_free(c);
	}
}

/* A line of exactly the limit loads; one byte more is refused below. */
Test(config, line_at_limit)
{
	char file[512], why[1024], *text;
	const char *head = "[server]\nspool = ";
	size_t hl = strlen("spool = "), n = strlen(head) + 4096 - hl;
	struct relay_config *c;

	cr_assert((text = malloc(n + 2)) != NULL);
	memcpy(text, head, strlen(head));
	memset(text + strlen(head), 'a', n - strlen(head));
	text[n] = '\n';
	text[n + 1] = '\0';
	c = load_text(text, 0, file, sizeof(file), why, sizeof(why));
	cr_expect(c != NULL, "4096-byte line refused: %s", why);
	if (c != NULL)
		cr_expect(strlen(c->spool) == 4096 - hl, "spool: got %zu "
		    "bytes, want %zu", strlen(c->spool), 4096 - hl);
	config_free(c);
	text[n] = 'a';		/* now 4097 bytes */
	c = load_text(text, n + 1, file, sizeof(file), why, sizeof(why));
	cr_expect(c == NULL, "4097-byte line accepted");
	{
		char want[600];

		snprintf(want, sizeof(want), "%s:2: line longer than 4096 "
		    "bytes", file);
		cr_expect(strcmp(why, want) == 0, "got \"%s\", want \"%s\"",
		    why, want);
	}
	config_free(c);
	free(text);
}

/*
 * Refused files
 */

struct err_case {
	const char *text;
	size_t len;		/* 0: strlen(text) */
	const char *want;	/* "@F@:LINE: reason" */
};

static const struct err_case err_cases[] = {
	/* Lines and sections */
	{ "hostname = mx.example\n", 0,
	    "@F@:1: hostname: outside a section" },
	{ "# fine\n\n[foo]\n", 0, "@F@:3: unknown section [foo]" },
	{ "[list owners]\n", 0,
	    "@F@:1: [list owners]: not an address local@domain" },
	{ "[list a@lists.example]\nname = A\n", 0,
	    "@F@:1: [list a@lists.example] has no members" },
	/* 57 octets: NAME-bounces would have 65, over RFC 5321's 64 */
	{ "[list aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@"
	    "lists.example]\nmembers = b@x.example\n", 0,
	    "@F@:1: [list aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaa@lists.example]: its bounce address aaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bounces@lists.example has a "
	    "local part over 64 octets" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "[forward A@Lists.Example]\n", 0,
	    "@F@:3: [forward A@Lists.Example]: the address already has a "
	    "[list] rule" },
	/* A rule on a list's bounce address would never see its mail. */
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "[forward A-Bounces@Lists.Example]\nto = c@x.example\n", 0,
	    "@F@:3: [forward A-Bounces@Lists.Example]: the address is a "
	    "bounce address of [list a@lists.example]" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "[forward a-bounces+b=x.example@lists.example]\n"
	    "to = c@x.example\n", 0,
	    "@F@:3: [forward a-bounces+b=x.example@lists.example]: the address "
	    "is a bounce address of [list a@lists.example]" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "[list a-bounces@lists.example]\nmembers = b@x.example\n", 0,
	    "@F@:3: [list a-bounces@lists.example]: the address is a bounce "
	    "address of [list a@lists.example]" },
	{ "[forward a-bounces@LISTS.example]\nto = c@x.example\n"
	    "[list A@lists.example]\nmembers = b@x.example\n", 0,
	    "@F@:3: [list A@lists.example]: [forward a-bounces@lists.example] "
	    "has one of its bounce addresses" },
	{ "[list a-bounces+x@lists.example]\nmembers = b@x.example\n"
	    "[list a@lists.example]\nmembers = b@x.example\n", 0,
	    "@F@:3: [list a@lists.example]: [list a-bounces+x@lists.example] "
	    "has one of its bounce addresses" },
	{ "[list a@lists.example]\nmembers = b@x.example, c@\n", 0,
	    "@F@:2: members: \"c@\": not an address local@domain" },
	{ "[list a@lists.example]\nmembers = \"b c\"@x.example\n", 0,
	    "@F@:2: junk after the quoted value" },
	{ "[list a@lists.example]\nmembers = b%c@x.example\n", 0,
	    "@F@:2: members: \"b%c@x.example\": not an address local@domain" },
	{ "[list a@lists.example]\nmembers = file:@D@/nope.txt\n", 0,
	    "@F@:2: members: \"file:@D@/nope.txt\": No such file or "
	    "directory" },
	{ "[list a@lists.example]\nmembers = b@x.example\nposters = all\n",
	    0, "@F@:3: posters: \"all\": not members or any" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "from_rewrite = yes\n", 0,
	    "@F@:3: from_rewrite: \"yes\": not dmarc, always or never" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "dmarc_reject = accept\n", 0,
	    "@F@:3: dmarc_reject: \"accept\": not refuse or relay" },
	{ "[policy]\ntrusted_arc = hop.example localhost\n", 0,
	    "@F@:2: trusted_arc: \"localhost\": not a domain name with a dot" },
	{ "[list a@lists.example]\nmembers = b@x.example\nreply_to = me\n",
	    0, "@F@:3: reply_to: \"me\": not author, list or none" },
	{ "[list a@lists.example]\nmembers = b@x.example\nverp = maybe\n",
	    0, "@F@:3: verp: \"maybe\": not no or yes" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "bounces = /var/mail/b\n", 0,
	    "@F@:3: bounces: \"/var/mail/b\": not maildir:PATH or discard" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "bounces = maildir:\n", 0,
	    "@F@:3: bounces: \"maildir:\": not maildir:PATH or discard" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "unsubscribe = http://x.example/u\n", 0,
	    "@F@:3: unsubscribe: \"http://x.example/u\": not mailto:ADDR or "
	    "https://..." },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "unsubscribe = mailto:a@x.example mailto:b@x.example\n", 0,
	    "@F@:3: unsubscribe: \"mailto:b@x.example\": a second URI of "
	    "this kind" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "unsubscribe = mailto:nobody\n", 0,
	    "@F@:3: unsubscribe: \"mailto:nobody\": not mailto: and an "
	    "address" },
	/* list_id and subject_tag: the checks their messages would meet */
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "list_id = Announce\n", 0,
	    "@F@:3: [list a@lists.example] list_id: \"Announce\": needs exactly one <list-label.namespace> (RFC 2919)" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "list_id = <a.x> <b.x>\n", 0,
	    "@F@:3: [list a@lists.example] list_id: \"<a.x> <b.x>\": needs exactly one <list-label.namespace> (RFC 2919)" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "list_id = >a.x<\n", 0,
	    "@F@:3: [list a@lists.example] list_id: \">a.x<\": needs exactly one <list-label.namespace> (RFC 2919)" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "list_id = A <announce>\n", 0,
	    "@F@:3: [list a@lists.example] list_id: \"A <announce>\": the identifier between < > is not dot-atom text with a dot in it (RFC 2919)" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "list_id = <a..x>\n", 0,
	    "@F@:3: [list a@lists.example] list_id: \"<a..x>\": the identifier between < > is not dot-atom text with a dot in it (RFC 2919)" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "list_id = <a x.example>\n", 0,
	    "@F@:3: [list a@lists.example] list_id: \"<a x.example>\": the identifier between < > is not dot-atom text with a dot in it (RFC 2919)" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "list_id = Caf\xc3\xa9 <a.x>\n", 0,
	    "@F@:3: [list a@lists.example] list_id: \"Caf\xc3\xa9 <a.x>\": not printable ASCII of at most 512 octets" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "list_id = \"A\tB <a.x>\"\n", 0,
	    "@F@:3: [list a@lists.example] list_id: \"A\tB <a.x>\": not printable ASCII of at most 512 octets" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "subject_tag = \"[a] \"\n", 0,
	    "@F@:3: [list a@lists.example] subject_tag: \"[a] \": a space at its start or end" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "subject_tag = [caf\xc3\xa9]\n", 0,
	    "@F@:3: [list a@lists.example] subject_tag: \"[caf\xc3\xa9]\": not printable ASCII" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    "subject_tag = \"\t[a]\"\n", 0,
	    "@F@:3: [list a@lists.example] subject_tag: \"\t[a]\": not printable ASCII" },
	{ "[list a@lists.example]\nmembers = b@x.example\n"
	    /* 129 octets */
	    "subject_tag = [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n", 0,
	    "@F@:3: [list a@lists.example] subject_tag: \"[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\": empty or longer than 128 octets" },
	{ "[forward a@corp.example]\nsrs = no\n", 0,
	    "@F@:1: [forward a@corp.example] has no to" },
	{ "[forward a@corp.example]\nto = b@x.example\nsrs = maybe\n", 0,
	    "@F@:3: srs: \"maybe\": not no or yes" },
	{ "[forward a@corp.example]\nto = b@x.example\nsrs = yes\n", 0,
	    "@F@:3: srs = yes without an [srs] section" },
	{ "[srs]\nsecret = 0123456789abcdef\n", 0,
	    "@F@:1: [srs] is missing domain" },
	{ "[srs]\ndomain = fwd.example\n", 0,
	    "@F@:1: [srs] is missing secret" },
	{ "[srs]\ndomain = fwd.example\nsecret = short\n", 0,
	    "@F@:3: secret: \"...\": a secret needs at least 16 characters" },
	{ "[srs]\ndomain = fwd\n", 0,
	    "@F@:2: domain: \"fwd\": not a domain name with a dot" },
	{ "[srs]\ndomain = fwd.example\nsecret = 0123456789abcdef\n"
	    "max_age = 2000d\n", 0,
	    "@F@:4: max_age: \"2000d\": out of range (1d to 1000d)" },
	{ "[Server]\n", 0, "@F@:1: unknown section [Server]" },
	{ "[server]\n[dns]\n[server]\n", 0,
	    "@F@:3: duplicate [server] (first at line 1)" },
	{ "[signing]\ndomain = a.example\nselector = s\nkey = @D@/ed.key\n"
	    "[signing]\n", 0, "@F@:5: duplicate [signing] (first at line 1)" },
	{ "[server mx]\n", 0, "@F@:1: [server] takes no name" },
	{ "[domain]\n", 0, "@F@:1: [domain] needs a name: [domain NAME]" },
	{ "[domain a.example]\n\n[domain A.Example.]\n", 0,
	    "@F@:3: duplicate [domain a.example] (first at line 1)" },
	{ "[domain bad_name.example]\n", 0,
	    "@F@:1: [domain bad_name.example]: not a domain name" },
	{ "[domain 192.0.2.1]\n", 0,
	    "@F@:1: [domain 192.0.2.1]: not a domain name" },
	{ "[server\n", 0, "@F@:1: expected [section] or [section NAME]" },
	{ "[server] workers = 2\n", 0,
	    "@F@:1: expected [section] or [section NAME]" },
	{ "[domain a.example b.example]\n", 0,
	    "@F@:1: expected [section] or [section NAME]" },
	{ "[]\n", 0, "@F@:1: expected [section] or [section NAME]" },
	{ "[ser.ver]\n", 0, "@F@:1: expected [section] or [section NAME]" },
	{ "[domain \"a.example\"]\n", 0,
	    "@F@:1: expected [section] or [section NAME]" },
	{ "[server]\nhostname\n", 0, "@F@:2: expected key = value" },
	{ "[server]\n= mx.example\n", 0, "@F@:2: expected key = value" },
	{ "[server]\nmax-errors = 3\n", 0, "@F@:2: expected key = value" },
	{ "[server]\nfoo = 1\n", 0, "@F@:2: unknown key foo in [server]" },
	{ "[server]\nHostname = mx.example\n", 0,
	    "@F@:2: unknown key Hostname in [server]" },
	{ "[dns]\nretry = 1m\n", 0, "@F@:2: unknown key retry in [dns]" },
	{ "[domain a.example]\nselector = x\n", 0,
	    "@F@:2: unknown key selector in [domain]" },
	{ "[server]\nhostname = a.example\n# c\nhostname = b.example\n", 0,
	    "@F@:4: duplicate key hostname (first at line 2)" },
	{ "[domain a.example]\ndeliver = mx\ndeliver = mx\n", 0,
	    "@F@:3: duplicate key deliver (first at line 2)" },
	{ "[server]\nhostname =\n", 0, "@F@:2: hostname: empty value" },
	{ "[server]\nhostname =   # nothing\n", 0,
	    "@F@:2: hostname: empty value" },
	{ "[server]\nspool = \"\"\n", 0, "@F@:2: spool: empty value" },
	{ "[server]\nspool = \"abc\n", 0, "@F@:2: unterminated quoted value" },
	{ "[server]\nspool = \"abc\" def\n", 0,
	    "@F@:2: junk after the quoted value" },
	{ "[server]\nspool = \"a\\nb\"\n", 0,
	    "@F@:2: only \\\" and \\\\ may be escaped in a quoted value" },
	{ "[server]\nspool = a\001b\n", 0,
	    "@F@:2: control character in the line" },
	{ "[server]\nspool = a\rb\n", 0,
	    "@F@:2: control character in the line" },
	{ LIT("[server]\nspool = a\0b\n"), "@F@:2: NUL byte in the line" },
	{ "[forward a@\177example.org]\nto = b@example.net\n", 0,
	    "@F@:1: control character in the line" },
	{ "[server]\nworkers = 2\n[bogus]\nworkers = x\n", 0,
	    "@F@:3: unknown section [bogus]" },	/* the first error wins */

	/* Numbers, sizes, durations */
	{ "[server]\nmax_recipients = 0\n", 0,
	    "@F@:2: max_recipients: \"0\": out of range (1 to 100000)" },
	{ "[server]\nmax_recipients = 100001\n", 0,
	    "@F@:2: max_recipients: \"100001\": out of range (1 to 100000)" },
	{ "[server]\nmax_recipients = abc\n", 0,
	    "@F@:2: max_recipients: \"abc\": not a number" },
	{ "[server]\nmax_recipients = -1\n", 0,
	    "@F@:2: max_recipients: \"-1\": not a number" },
	{ "[server]\nmax_recipients = 1.5\n", 0,
	    "@F@:2: max_recipients: \"1.5\": not a number" },
	{ "[server]\nmax_recipients = 10k\n", 0,
	    "@F@:2: max_recipients: \"10k\": not a number" },
	{ "[server]\nmax_sessions = 99999999999999999999999\n", 0,
	    "@F@:2: max_sessions: \"99999999999999999999999\": not a number" },
	{ "[server]\nmax_sessions = 4294967296\n", 0,
	    "@F@:2: max_sessions: \"4294967296\": out of range (1 to 100000)" },
	{ "[server]\nmax_sessions_per_ip = 0\n", 0,
	    "@F@:2: max_sessions_per_ip: \"0\": out of range (1 to 100000)" },
	{ "[server]\nmax_errors = 10001\n", 0,
	    "@F@:2: max_errors: \"10001\": out of range (1 to 10000)" },
	{ "[server]\nworkers = 0\n", 0,
	    "@F@:2: workers: \"0\": out of range (1 to 256)" },
	{ "[server]\nworkers = 257\n", 0,
	    "@F@:2: workers: \"257\": out of range (1 to 256)" },
	{ "[policy]\ndmarc = rfc1234\n", 0,
	    "@F@:2: dmarc: \"rfc1234\": not rfc9989 or rfc7489" },
	{ "[server]\nmax_message_size = 10Q\n", 0,
	    "@F@:2: max_message_size: \"10Q\": not a size (like 1000, 10k, "
	    "50M, 1G)" },
	{ "[server]\nmax_message_size = 1000\n", 0,
	    "@F@:2: max_message_size: \"1000\": out of range (1k to 16G)" },
	{ "[server]\nmax_message_size = 17G\n", 0,
	    "@F@:2: max_message_size: \"17G\": out of range (1k to 16G)" },
	{ "[server]\nidle_timeout = 5x\n", 0,
	    "@F@:2: idle_timeout: \"5x\": not a duration (like 90s, 5m, 2h, "
	    "5d)" },
	{ "[server]\nidle_timeout = 5 m\n", 0,
	    "@F@:2: idle_timeout: \"5 m\": not a duration (like 90s, 5m, 2h, "
	    "5d)" },
	{ "[server]\nidle_timeout = 0\n", 0,
	    "@F@:2: idle_timeout: \"0\": out of range (1s to 1d)" },
	{ "[server]\nidle_timeout = 25h\n", 0,
	    "@F@:2: idle_timeout: \"25h\": out of range (1s to 1d)" },
	{ "[dns]\ntimeout = 6m\n", 0,
	    "@F@:2: timeout: \"6m\": out of range (1s to 5m)" },
	{ "[delivery]\nlifetime = 30s\n", 0,
	    "@F@:2: lifetime: \"30s\": out of range (1m to 365d)" },
	{ "[delivery]\neightbit = convert\n", 0,
	    "@F@:2: eightbit: \"convert\": not send or bounce" },
	{ "[delivery]\nretry = 5m 1m\n", 0,
	    "@F@:2: retry: \"5m 1m\": not ascending (1m after a longer "
	    "wait)" },
	{ "[delivery]\nretry = 1m 5x\n", 0,
	    "@F@:2: retry: \"1m 5x\": \"5x\" is not a duration (like 90s, "
	    "5m, 2h, 5d)" },
	{ "[delivery]\nretry = 0 1m\n", 0,
	    "@F@:2: retry: \"0 1m\": \"0\" is out of range (1s to 30d)" },
	{ "[delivery]\nretry = 1m,5m\n", 0,
	    "@F@:2: retry: \"1m,5m\": \"1m,5m\" is not a duration (like 90s, "
	    "5m, 2h, 5d)" },
	{ "[delivery]\nretry = \" \"\n", 0,
	    "@F@:2: retry: \" \": no durations" },
	{ "[delivery]\nretry = 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 "
	    "19 20 21 22 23 24 25 26 27 28 29 30 31 32 33\n", 0,
	    "@F@:2: retry: \"1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 "
	    "20 21 22 23 24 25 26 27 28 29 30 31 32 33\": more than 32 "
	    "durations" },

	/* Names and addresses */
	{ "[server]\nlisten = 127.0.0.1\n", 0,
	    "@F@:2: listen: \"127.0.0.1\": no :PORT" },
	{ "[server]\nlisten = 127.0.0.1:0\n", 0,
	    "@F@:2: listen: \"127.0.0.1:0\": port must be 1 to 65535" },
	{ "[server]\nlisten = 127.0.0.1:65536\n", 0,
	    "@F@:2: listen: \"127.0.0.1:65536\": port must be 1 to 65535" },
	{ "[server]\nlisten = 127.0.0.1:25x\n", 0,
	    "@F@:2: listen: \"127.0.0.1:25x\": port must be 1 to 65535" },
	{ "[server]\nlisten = 127.0.0.1:\n", 0,
	    "@F@:2: listen: \"127.0.0.1:\": port must be 1 to 65535" },
	{ "[server]\nlisten = :25\n", 0, "@F@:2: listen: \":25\": no host" },
	{ "[server]\nlisten = ::1:25\n", 0,
	    "@F@:2: listen: \"::1:25\": an IPv6 address goes in [brackets]" },
	{ "[server]\nlisten = [::1:25\n", 0,
	    "@F@:2: listen: \"[::1:25\": no closing ]" },
	{ "[server]\nlisten = [::1]\n", 0,
	    "@F@:2: listen: \"[::1]\": no :PORT" },
	{ "[server]\nlisten = [127.0.0.1]:25\n", 0,
	    "@F@:2: listen: \"[127.0.0.1]:25\": only an IPv6 address goes in "
	    "[brackets]" },
	{ "[server]\nlisten = 256.1.1.1:25\n", 0,
	    "@F@:2: listen: \"256.1.1.1:25\": bad host" },
	{ "[server]\nlisten = bad_host:25\n", 0,
	    "@F@:2: listen: \"bad_host:25\": bad host" },
	{ "[server]\nlisten = 127.0.0.1:25\nlisten = [::1]:25\n"
	    "listen = 127.0.0.1:25\n", 0,
	    "@F@:4: listen: \"127.0.0.1:25\": listed twice" },
	{ "[server]\nhostname = bad_host.example\n", 0,
	    "@F@:2: hostname: \"bad_host.example\": not a host name" },
	{ "[server]\nhostname = -mx.example\n", 0,
	    "@F@:2: hostname: \"-mx.example\": not a host name" },
	{ "[server]\nhostname = mx..example\n", 0,
	    "@F@:2: hostname: \"mx..example\": not a host name" },
	{ "[server]\nhostname = 192.0.2.1\n", 0,
	    "@F@:2: hostname: \"192.0.2.1\": not a host name" },
	{ "[server]\nhostname = \"mx example\"\n", 0,
	    "@F@:2: hostname: \"mx example\": not a host name" },
	{ "[server]\nauthserv_id = \"a b\"\n", 0,
	    "@F@:2: authserv_id: \"a b\": not a single token (no spaces or "
	    "()<>@,;:\\\"/[]?=)" },
	{ "[server]\nauthserv_id = a;b\n", 0,
	    "@F@:2: authserv_id: \"a;b\": not a single token (no spaces or "
	    "()<>@,;:\\\"/[]?=)" },
	{ "[server]\nuser = \"a b\"\n", 0,
	    "@F@:2: user: \"a b\": not a user name" },
	{ "[server]\nuser = -root\n", 0,
	    "@F@:2: user: \"-root\": not a user name" },
	{ "[dns]\nresolver = 1.2.3\n", 0,
	    "@F@:2: resolver: \"1.2.3\": not system or IP[@PORT]" },
	{ "[dns]\nresolver = System\n", 0,
	    "@F@:2: resolver: \"System\": not system or IP[@PORT]" },
	{ "[dns]\nresolver = ns.example\n", 0,
	    "@F@:2: resolver: \"ns.example\": not system or IP[@PORT]" },
	{ "[dns]\nresolver = 127.0.0.1:53\n", 0,
	    "@F@:2: resolver: \"127.0.0.1:53\": not system or IP[@PORT]" },
	{ "[dns]\nresolver = 127.0.0.1@0\n", 0,
	    "@F@:2: resolver: \"127.0.0.1@0\": port must be 1 to 65535" },
	{ "[dns]\nresolver = ::1@\n", 0,
	    "@F@:2: resolver: \"::1@\": port must be 1 to 65535" },
	{ "[delivery]\ndeliver = ftp:mx.example\n", 0,
	    "@F@:2: deliver: \"ftp:mx.example\": not maildir:PATH, "
	    "smtp:[HOST]:PORT, smtp:HOST:PORT or mx" },
	{ "[delivery]\ndeliver = MX\n", 0,
	    "@F@:2: deliver: \"MX\": not maildir:PATH, smtp:[HOST]:PORT, "
	    "smtp:HOST:PORT or mx" },
	{ "[delivery]\ndeliver = maildir:\n", 0,
	    "@F@:2: deliver: \"maildir:\": maildir: needs a PATH" },
	{ "[delivery]\ndeliver = smtp:mx.example\n", 0,
	    "@F@:2: deliver: \"smtp:mx.example\": no :PORT" },
	{ "[delivery]\ndeliver = smtp:[mx.example]\n", 0,
	    "@F@:2: deliver: \"smtp:[mx.example]\": no :PORT" },
	{ "[delivery]\ndeliver = smtp:[mx.example]:0\n", 0,
	    "@F@:2: deliver: \"smtp:[mx.example]:0\": port must be 1 to "
	    "65535" },
	{ "[delivery]\ndeliver = smtp:[mx_1.example]:25\n", 0,
	    "@F@:2: deliver: \"smtp:[mx_1.example]:25\": bad host" },
	{ "[delivery]\ndeliver = smtp:2001:db8::1:25\n", 0,
	    "@F@:2: deliver: \"smtp:2001:db8::1:25\": an IPv6 address goes "
	    "in [brackets]" },
	{ "[domain a.example]\ndeliver = bogus\n", 0,
	    "@F@:2: deliver: \"bogus\": not maildir:PATH, smtp:[HOST]:PORT, "
	    "smtp:HOST:PORT or mx" },

	/* Files and keys */
	{ "[dns]\nrecords = /nonexistent/zone.txt\n", 0,
	    "@F@:2: records: \"/nonexistent/zone.txt\": No such file or "
	    "directory" },
	{ "[dns]\nrecords = @D@/sub\n", 0,
	    "@F@:2: records: \"@D@/sub\": not a regular file" },
	{ "[server]\ntls_cert = @D@/cert.pem\nworkers = 2\n", 0,
	    "@F@:2: tls_cert without tls_key" },
	{ "[server]\nworkers = 2\ntls_key = @D@/ed.key\n[dns]\n", 0,
	    "@F@:3: tls_key without tls_cert" },
	{ "[server]\ntls_cert = /nonexistent/cert.pem\n", 0,
	    "@F@:2: tls_cert: \"/nonexistent/cert.pem\": No such file or "
	    "directory" },
	{ "[server]\ntls_cert = @D@/cert.pem\ntls_key = @D@/junk.key\n", 0,
	    "@F@:3: tls_key: \"@D@/junk.key\": no unencrypted PEM private "
	    "key in the file" },
	{ "[server]\ntls_cert = @D@/cert.pem\ntls_key = @D@/sub\n", 0,
	    "@F@:3: tls_key: \"@D@/sub\": not a regular file" },
	{ "[signing]\n", 0,
	    "@F@:1: [signing] is missing domain, selector, key" },
	{ "# keys\n[signing]\ndomain = example.com\n[dns]\n", 0,
	    "@F@:2: [signing] is missing selector, key" },
	{ "[signing]\nselector = s\nkey = @D@/ed.key\n", 0,
	    "@F@:1: [signing] is missing domain" },
	{ "[signing]\ndomain = example.com\nselector = s\n"
	    "key = /nonexistent/k.pem\n", 0,
	    "@F@:4: key: \"/nonexistent/k.pem\": No such file or directory" },
	{ "[signing]\nkey = @D@/junk.key\n", 0,
	    "@F@:2: key: \"@D@/junk.key\": no unencrypted PEM private key "
	    "in the file" },
	{ "[signing]\nkey = @D@/cert.pem\n", 0,
	    "@F@:2: key: \"@D@/cert.pem\": no unencrypted PEM private key "
	    "in the file" },
	{ "[signing]\nkey = @D@/enc.key\n", 0,
	    "@F@:2: key: \"@D@/enc.key\": no unencrypted PEM private key "
	    "in the file" },
	{ "[signing]\nkey = @D@/ec.key\n", 0,
	    "@F@:2: key: \"@D@/ec.key\": not an RSA or Ed25519 key" },
	{ "[signing]\nkey = @D@/short.key\n", 0,
	    "@F@:2: key: \"@D@/short.key\": RSA key shorter than 1024 bits" },
	{ "[signing]\nkey = @D@/sub\n", 0,
	    "@F@:2: key: \"@D@/sub\": not a regular file" },
	{ "[signing]\ndomain = localhost\n", 0,
	    "@F@:2: domain: \"localhost\": not a domain name with a dot" },
	{ "[signing]\ndomain = \"example com\"\n", 0,
	    "@F@:2: domain: \"example com\": not a domain name with a dot" },
	{ "[signing]\nselector = sel.\n", 0,
	    "@F@:2: selector: \"sel.\": not a selector" },
	{ "[signing]\nselector = a..b\n", 0,
	    "@F@:2: selector: \"a..b\": not a selector" },
	{ "[arc]\nkey = @D@/ed.key\n", 0,
	    "@F@:2: [arc] key without its own selector or domain" },
	{ "[arc]\nkey = @D@/ec.key\n", 0,
	    "@F@:2: key: \"@D@/ec.key\": not an RSA or Ed25519 key" },
	{ "[arc]\ndomain = arc\n", 0,
	    "@F@:2: domain: \"arc\": not a domain name with a dot" },
};

static void
check_refused(const char *text, size_t len, const char *want_fmt)
{
	char file[512], why[1024], *want;
	struct relay_config *c = load_text(text, len, file, sizeof(file),
	    why, sizeof(why));

	want = subst(want_fmt, strlen(want_fmt), file, NULL);
	cr_expect(c == NULL, "accepted, want \"%s\"", want);
	cr_expect(strcmp(why, want) == 0, "got \"%s\", want \"%s\"", why,
	    want);
	free(want);
	config_free(c);
}

Test(config, load_refused)
{
	size_t i;

	for (i = 0; i < NELEM(err_cases); i++)
		check_refused(err_cases[i].text, err_cases[i].len,
		    err_cases[i].want);
}

/* Root reads anything, so the mode-000 file only counts for others. */
Test(config, unreadable_key)
{
	if (geteuid() == 0) {
		teardown();	/* a skipped test gets no .fini */
		cr_skip_test("running as root: access(R_OK) always succeeds");
	}
	check_refused("[signing]\nkey = @D@/locked.key\n", 0,
	    "@F@:2: key: \"@D@/locked.key\": Permission denied");
}

Test(config, missing_file)
{
	char why[512];
	const char *path = "/nonexistent/arcrelay.conf";

	cr_expect(config_load(path, why, sizeof(why)) == NULL);
	cr_expect(strcmp(why, "/nonexistent/arcrelay.conf: No such file or "
	    "directory") == 0, "got \"%s\"", why);
}

/* A short why buffer is cut, never overrun; a NULL one is allowed. */
Test(config, short_why)
{
	char file[512], why[8];
	struct relay_config *c;

	in_dir("row.conf", file, sizeof(file));
	write_file(file, "[foo]\n", 6);
	memset(why, 'x', sizeof(why));
	cr_expect(config_load(file, why, sizeof(why)) == NULL);
	cr_expect(memchr(why, '\0', sizeof(why)) != NULL, "why not ended");
	cr_expect((c = config_load(file, NULL, 0)) == NULL);
	unlink(file);
}

/*
 * The embedded default and the sample
 */

static const struct want_field default_fields[] = {
	{ "listen", "127.0.0.1:2525" },
	{ "spool", "./var/spool" },
	{ "user", "(null)" },
	{ "max_message_size", "52428800" },
	{ "max_recipients", "100" },
	{ "max_sessions", "500" },
	{ "max_sessions_per_ip", "20" },
	{ "max_errors", "10" },
	{ "idle_timeout", "300" },
	{ "tls_cert", "(null)" },
	{ "tls_key", "(null)" },
	{ "workers", "8" },
	{ "loopback_any_rcpt", "true" },
	{ "resolver", "system" },
	{ "records", "(null)" },
	{ "dns_timeout", "5" },
	{ "deliver", "maildir:./var/outbox" },
	{ "retry", "60 300 1800 7200" },
	{ "lifetime", "432000" },
	{ "sign_selector", "arcrelay" },
	{ "sign_key", "./var/keys/arcrelay.private" },
	{ "arc_domain", "(null)" },
	{ "arc_selector", "(null)" },
	{ "arc_key", "(null)" },
	{ "domains", "" },
	{ "path", "(null)" },
};

/* The hostname's domain, worked out here independently of config.c. */
static void
want_sign_domain(const char *host, char *out, size_t n)
{
	const char *dot = strchr(host, '.');

	if (dot == NULL)
		snprintf(out, n, "localhost.localdomain");
	else if (strchr(dot + 1, '.') != NULL)
		snprintf(out, n, "%s", dot + 1);
	else
		snprintf(out, n, "%s", host);
}

Test(config, embedded_default)
{
	struct relay_config *c = config_default();
	char host[256], want[256];
	size_t i;

	cr_assert(c != NULL, "config_default failed");
	check_fields("config_default", c, default_fields,
	    NELEM(default_fields), "");
	cr_assert(c->hostname != NULL && c->hostname[0] != '\0');
	if (gethostname(host, sizeof(host)) == 0 && strchr(host, '_') == NULL) {
		host[sizeof(host) - 1] = '\0';
		for (i = 0; host[i] != '\0'; i++)
			if (host[i] >= 'A' && host[i] <= 'Z')
				host[i] = (char)(host[i] - 'A' + 'a');
		if (i > 0 && host[i - 1] == '.')
			host[i - 1] = '\0';
		cr_expect(strcmp(c->hostname, host) == 0, "hostname: got "
		    "\"%s\", want \"%s\"", c->hostname, host);
	}
	cr_expect(strcmp(c->authserv_id, c->hostname) == 0, "authserv_id: "
	    "got \"%s\", want the hostname \"%s\"", c->authserv_id,
	    c->hostname);
	want_sign_domain(c->hostname, want, sizeof(want));
	cr_expect(strcmp(c->sign_domain, want) == 0, "sign_domain: got "
	    "\"%s\", want \"%s\"", c->sign_domain, want);
	config_free(c);
	config_free(NULL);
}

/*
 * The sample's active lines are the defaults: loading it gives the
 * embedded default in every field but the file's path and
 * loopback_any_rcpt.
 */
Test(config, sample_loads)
{
	char why[1024];
	struct relay_config *s = config_load(ARCRELAY_SAMPLE_CONF, why,
	    sizeof(why));
	struct relay_config *d = config_default();
	size_t i;

	cr_assert(s != NULL, "%s refused: %s", ARCRELAY_SAMPLE_CONF, why);
	cr_assert(d != NULL);
	for (i = 0; i < NELEM(all_fields); i++) {
		const char *f = all_fields[i], *got, *want;

		if (strcmp(f, "path") == 0 ||
		    strcmp(f, "loopback_any_rcpt") == 0)
			continue;
		got = field_text(s, f);
		want = field_text(d, f);
		cr_expect(strcmp(got, want) == 0, "sample %s: got \"%s\", want "
		    "\"%s\"", f, got, want);
	}
	cr_expect(strcmp(s->path, ARCRELAY_SAMPLE_CONF) == 0);
	cr_expect(!s->loopback_any_rcpt, "loopback_any_rcpt set by a file");
	config_free(s);
	config_free(d);
}

/*
 * The sample, with every commented-out "#key = value" line switched on
 * and its paths pointed at the test's files, must load too: the
 * documented examples are valid.
 */
Test(config, sample_examples_load)
{
	FILE *in = fopen(ARCRELAY_SAMPLE_CONF, "r");
	char file[512], why[1024], line[1024], *text = NULL, *body;
	size_t len = 0, n;
	FILE *out = open_memstream(&text, &len);
	struct relay_config *c;

	cr_assert(in != NULL && out != NULL);
	while (fgets(line, sizeof(line), in) != NULL) {
		const char *p = line;

		/* "#key = value" and "#[section]": examples, not prose */
		if (line[0] == '#' && (line[1] == '[' ||
		    (line[1] >= 'a' && line[1] <= 'z' &&
		    strstr(line, " = ") != NULL)))
			p = line + 1;
		if (strncmp(p, "tls_cert = ", 11) == 0)
			p = "tls_cert = @D@/cert.pem\n";
		else if (strncmp(p, "tls_key = ", 10) == 0)
			p = "tls_key = @D@/rsa.key\n";
		else if (strncmp(p, "records = ", 10) == 0)
			p = "records = @D@/zone.txt\n";
		else if (strncmp(p, "key = ", 6) == 0)
			p = "key = @D@/ed.key\n";
		fputs(p, out);
	}
	fclose(in);
	fclose(out);
	in_dir("row.conf", file, sizeof(file));
	body = subst(text, len, file, &n);
	c = load_text(body, n, file, sizeof(file), why, sizeof(why));
	cr_expect(c != NULL, "sample with its examples on refused: %s", why);
	if (c != NULL) {
		cr_expect(c->nlisten == 2, "listen: got %zu, want 2",
		    c->nlisten);
		cr_expect(c->tls_cert != NULL && c->arc_key != NULL &&
		    c->ndomains == 2, "examples not switched on");
	}
	config_free(c);
	free(body);
	free(text);
}
