/*
 * config.c - arcrelay.conf, read and checked (see config.h).
 *
 * A line is split by split_line(), which does no I/O; the loader then
 * looks the section or key up in the tables ("The tables", below)
 * and hands the value to that key's setter. Adding a section is a key
 * table, at most a begin/end hook, and one row in sections[].
 *
 * Owns: the relay_config it returns and every string and array in it.
 *
 * SECURITY: the file is trusted configuration, but it is still read with
 * bounds (line length, number of listen and retry entries) and every value
 * is checked before the daemon acts on it. Key files are opened only to
 * check that they hold a private key; an encrypted key is refused rather
 * than prompting for a passphrase.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config.h"
#include "listhdr.h"

#define CFG_LINE_MAX	4096	/* bytes in one line, without its newline */
#define CFG_LISTEN_MAX	64
#define CFG_RETRY_MAX	32
#define CFG_KEYS_MAX	32	/* keys in one section's table */
#define CFG_SECTIONS_MAX 16	/* rows in sections[] */

#define MIB		(1024ULL * 1024)
#define DAY		86400U

/* The defaults, as config.h states them. */
#define DEF_LISTEN	"127.0.0.1:2525"
#define DEF_SPOOL	"./var/spool"
#define DEF_DELIVER	"maildir:./var/outbox"
#define DEF_SELECTOR	"arcrelay"
#define DEF_KEY		"./var/keys/arcrelay.private"
#define DEF_NO_DOMAIN	"localhost.localdomain"

static const unsigned def_retry[] = { 60, 300, 1800, 7200 };

/*
 * Splitting lines (no I/O)
 */

enum line_kind { LINE_BLANK, LINE_SECTION, LINE_KEY };

struct cfg_line {
	enum line_kind kind;
	char *name;		/* section or key name; points into the line */
	char *arg;		/* section: its NAME or NULL; key: the value */
};

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static char *
skip_ws(char *p)
{
	while (is_ws(*p))
		p++;
	return p;
}

/* rest_ok - after a value or header only whitespace and a comment. */
static bool
rest_ok(const char *p)
{
	while (is_ws(*p))
		p++;
	return *p == '\0' || *p == '#';
}

static bool
is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* A section's NAME: one word, no brackets, quotes or comment sign. */
static bool
is_arg_char(char c)
{
	return c != '\0' && !is_ws(c) && c != '[' && c != ']' && c != '"' &&
	    c != '#';
}

/* split_quoted - p at the opening quote; unescapes \" and \\ in place. */
static bool
split_quoted(char *p, char **value, const char **reason)
{
	char *r = p + 1, *w = p;

	*value = w;
	for (;;) {
		if (*r == '\0') {
			*reason = "unterminated quoted value";
			return false;
		}
		if (*r == '"')
			break;
		if (*r == '\\') {
			if (r[1] != '"' && r[1] != '\\') {
				*reason = "only \\\" and \\\\ may be escaped "
				    "in a quoted value";
				return false;
			}
			r++;
		}
		*w++ = *r++;
	}
	*w = '\0';
	if (!rest_ok(r + 1)) {
		*reason = "junk after the quoted value";
		return false;
	}
	return true;
}

/*
 * split_line - one line without its newline, split in place. A '#'
 * starts a comment at the start of the line or after whitespace, so
 * "a#b" keeps its '#'; quoting keeps spaces and '#' at either end.
 */
static bool
split_line(char *line, struct cfg_line *out, const char **reason)
{
	char *p = skip_ws(line), *end;

	out->name = out->arg = NULL;
	if (*p == '\0' || *p == '#') {
		out->kind = LINE_BLANK;
		return true;
	}
	if (*p == '[') {
		out->kind = LINE_SECTION;
		p = skip_ws(p + 1);
		out->name = p;
		while (is_name_char(*p))
			p++;
		end = p;
		p = skip_ws(p);
		if (p != end && is_arg_char(*p)) {
			out->arg = p;
			while (is_arg_char(*p))
				p++;
			if (is_ws(*p)) {
				*p = '\0';
				p = skip_ws(p + 1);
			}
		}
		if (end == out->name || *p != ']' || !rest_ok(p + 1)) {
			*reason = "expected [section] or [section NAME]";
			return false;
		}
		*p = '\0';
		*end = '\0';
		return true;
	}
	out->kind = LINE_KEY;
	out->name = p;
	while (is_name_char(*p))
		p++;
	end = p;
	p = skip_ws(p);
	if (end == out->name || *p != '=') {
		*reason = "expected key = value";
		return false;
	}
	*end = '\0';
	p = skip_ws(p + 1);
	if (*p == '"')
		return split_quoted(p, &out->arg, reason);
	out->arg = p;
	for (end = p; *end != '\0'; end++)
		if (*end == '#' && is_ws(end[-1]))
			break;
	while (end > p && is_ws(end[-1]))
		end--;
	*end = '\0';
	return true;
}

/*
 * Numbers, durations, sizes, names and addresses
 */

/* digits - a run of decimal digits, no sign; false on overflow. */
static bool
digits(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*sp = s;
	*out = v;
	return true;
}

bool
config_duration(const char *s, unsigned *out)
{
	uint64_t v, mul = 1;

	if (s == NULL || !digits(&s, &v))
		return false;
	switch (*s) {
	case '\0':
		break;
	case 's':
		s++;
		break;
	case 'm':
		mul = 60;
		s++;
		break;
	case 'h':
		mul = 3600;
		s++;
		break;
	case 'd':
		mul = DAY;
		s++;
		break;
	default:
		return false;
	}
	if (*s != '\0' || v > UINT_MAX / mul)
		return false;
	*out = (unsigned)(v * mul);
	return true;
}

bool
config_size(const char *s, uint64_t *out)
{
	uint64_t v, mul = 1;

	if (s == NULL || !digits(&s, &v))
		return false;
	switch (*s) {
	case '\0':
		break;
	case 'k': case 'K':
		mul = 1024;
		s++;
		break;
	case 'm': case 'M':
		mul = MIB;
		s++;
		break;
	case 'g': case 'G':
		mul = 1024 * MIB;
		s++;
		break;
	default:
		return false;
	}
	if (*s != '\0' || v > UINT64_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

/* fmt_duration - seconds in the largest unit that divides them. */
static void
fmt_duration(uint64_t v, char *buf, size_t n)
{
	if (v != 0 && v % DAY == 0)
		snprintf(buf, n, "%llud", (unsigned long long)(v / DAY));
	else if (v != 0 && v % 3600 == 0)
		snprintf(buf, n, "%lluh", (unsigned long long)(v / 3600));
	else if (v != 0 && v % 60 == 0)
		snprintf(buf, n, "%llum", (unsigned long long)(v / 60));
	else
		snprintf(buf, n, "%llus", (unsigned long long)v);
}

static void
fmt_size(uint64_t v, char *buf, size_t n)
{
	if (v != 0 && v % (1024 * MIB) == 0)
		snprintf(buf, n, "%lluG", (unsigned long long)(v / (1024 * MIB)));
	else if (v != 0 && v % MIB == 0)
		snprintf(buf, n, "%lluM", (unsigned long long)(v / MIB));
	else if (v != 0 && v % 1024 == 0)
		snprintf(buf, n, "%lluk", (unsigned long long)(v / 1024));
	else
		snprintf(buf, n, "%llu", (unsigned long long)v);
}

#define NAME_UNDERSCORE	0x1	/* '_' in labels (DKIM domains, selectors) */
#define NAME_NUMERIC	0x2	/* an all-digit last label (selectors) */

/*
 * dns_name_ok - dot-separated labels of letters, digits and '-', 1-63
 * octets each, at most 253 in all, one final dot allowed. Unless
 * NAME_NUMERIC, an all-digit last label is refused: in a host name that
 * is a mistyped IPv4 address.
 */
static bool
dns_name_ok(const char *s, unsigned flags)
{
	size_t n = strlen(s), label = 0, i;
	bool digits_only = true;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (i = 0; i <= n; i++) {
		char ch = i < n ? s[i] : '.';

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-' ||
			    s[i - label] == '-')
				return false;
			if (i < n)
				digits_only = true;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)ch) && ch != '-' &&
		    !((flags & NAME_UNDERSCORE) && ch == '_'))
			return false;
		if (!isdigit((unsigned char)ch))
			digits_only = false;
		if (++label > 63)
			return false;
	}
	return !digits_only || (flags & NAME_NUMERIC);
}

static bool
ipv4_ok(const char *s)
{
	struct in_addr a;

	return inet_pton(AF_INET, s, &a) == 1;
}

static bool
ipv6_ok(const char *s)
{
	struct in6_addr a;

	return inet_pton(AF_INET6, s, &a) == 1;
}

static bool
port_ok(const char *s)
{
	uint64_t v;

	return digits(&s, &v) && *s == '\0' && v >= 1 && v <= 65535;
}

/*
 * hostport_check - "HOST:PORT" or "[HOST]:PORT"; NULL or a reason. HOST
 * is an IPv4 address or a name; in brackets an IPv6 address, and a name
 * or IPv4 address too if bracket_names (smtp:[relayhost]:PORT).
 */
static const char *
hostport_check(const char *s, bool bracket_names)
{
	char host[256];
	const char *h, *colon;
	size_t hl;
	bool bracketed = *s == '[';

	if (bracketed) {
		const char *rb = strchr(s, ']');

		if (rb == NULL)
			return "no closing ]";
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
		if (*colon != ':')
			return "no :PORT";
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return "no :PORT";
		h = s;
		hl = (size_t)(colon - s);
		if (memchr(h, ':', hl) != NULL)
			return "an IPv6 address goes in [brackets]";
	}
	if (hl == 0)
		return "no host";
	if (hl >= sizeof(host))
		return "host too long";
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (!port_ok(colon + 1))
		return "port must be 1 to 65535";
	if (bracketed && ipv6_ok(host))
		return NULL;
	if (bracketed && !bracket_names)
		return "only an IPv6 address goes in [brackets]";
	if (!ipv4_ok(host) && !dns_name_ok(host, 0))
		return "bad host";
	return NULL;
}

/* target_check - a delivery target; NULL or a reason. */
static const char *
target_check(const char *v)
{
	if (strcmp(v, "mx") == 0)
		return NULL;
	if (strncmp(v, "maildir:", 8) == 0)
		return v[8] != '\0' ? NULL : "maildir: needs a PATH";
	if (strncmp(v, "smtp:", 5) == 0)
		return hostport_check(v + 5, true);
	return "not maildir:PATH, smtp:[HOST]:PORT, smtp:HOST:PORT or mx";
}

/* RFC 2045 token: what RFC 8601 allows for an unquoted authserv-id. */
static bool
token_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f ||
		    strchr("()<>@,;:\\\"/[]?=", *s) != NULL)
			return false;
	return true;
}

static bool
user_ok(const char *s)
{
	if (*s == '\0' || *s == '-' || strlen(s) > 32)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("._-", *s) == NULL)
			return false;
	return true;
}

/* lower_name - a copy, lowercase, without its final dot. */
static char *
lower_name(const char *s)
{
	char *d = strdup(s);
	size_t n;

	if (d == NULL)
		return NULL;
	for (n = 0; d[n] != '\0'; n++)
		d[n] = (char)tolower((unsigned char)d[n]);
	if (n > 0 && d[n - 1] == '.')
		d[n - 1] = '\0';
	return d;
}

/* file_check - a readable regular file; NULL or a reason. */
static const char *
file_check(const char *path)
{
	struct stat st;

	if (access(path, R_OK) != 0 || stat(path, &st) != 0)
		return strerror(errno);
	if (!S_ISREG(st.st_mode))
		return "not a regular file";
	return NULL;
}

/* Never prompt on the terminal for an encrypted key. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

/*
 * pem_key_check - a PEM private key, RSA (1024 bits or more) or Ed25519
 * if dkim is set (what the signer accepts), any type otherwise (TLS).
 */
static const char *
pem_key_check(const char *path, bool dkim)
{
	const char *why = NULL;
	EVP_PKEY *k = NULL;
	BIO *bio;
	int id;

	if ((bio = BIO_new_file(path, "r")) != NULL)
		k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (k == NULL)
		return "no unencrypted PEM private key in the file";
	id = EVP_PKEY_get_base_id(k);
	if (dkim && id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519)
		why = "not an RSA or Ed25519 key";
	else if (dkim && id == EVP_PKEY_RSA && EVP_PKEY_get_bits(k) < 1024)
		why = "RSA key shorter than 1024 bits";
	EVP_PKEY_free(k);
	return why;
}

/*
 * The loader
 */

struct loader;
struct key_def;

/* A key's setter: checks v and stores it in field (in the section's
 * struct); false after fail(). */
typedef bool (*key_set)(struct loader *L, const struct key_def *k,
    void *field, const char *v);

struct key_def {
	const char *name;
	key_set set;
	size_t off;		/* the field in the section's struct */
	uint64_t lo, hi;	/* range of numbers, sizes and durations */
	bool repeat;		/* may appear more than once */
};

struct section_def {
	const char *name;
	bool named;		/* [name NAME]: NAME required; else refused */
	const struct key_def *keys;
	size_t nkeys;
	/* the struct the keys land in (NULL: the config); NULL after fail() */
	void *(*begin)(struct loader *L, const char *arg);
	/* checks once the section is complete (at the next header or EOF) */
	bool (*end)(struct loader *L);
};

struct loader {
	struct relay_config *c;
	const char *path;
	size_t lineno;
	char *why;
	size_t whylen;

	const struct section_def *sec;	/* the current one, or NULL */
	void *base;			/* where its keys land */
	size_t sec_at;			/* the line of its header */
	size_t key_at[CFG_KEYS_MAX];	/* line each of its keys was set */
	size_t seen_at[CFG_SECTIONS_MAX]; /* unnamed sections: header line */

	bool listen_set;		/* the file's listen replaced the default */
	size_t *domain_at;		/* owned: header line of each domain */
	size_t srs_needed_at;		/* a forward's "srs = yes" line */
};

static bool
fail_at(struct loader *L, size_t line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The reason is printed and logged as it is: no octet of the file
	 * may move a terminal's cursor or start a log line of its own. */
	for (char *c = msg; *c != '\0'; c++)
		if (((unsigned char)*c < ' ' && *c != '\t') || *c == 0x7f)
			*c = '?';
	if (L->why != NULL && L->whylen > 0)
		snprintf(L->why, L->whylen, "%s:%zu: %s", L->path, line, msg);
	return false;
}

/* bad - a value refused: "KEY: "VALUE": reason" at the current line. */
static bool
bad(struct loader *L, const struct key_def *k, const char *v,
    const char *reason)
{
	return fail_at(L, L->lineno, "%s: \"%s\": %s", k->name, v, reason);
}

static bool
no_memory(struct loader *L)
{
	return fail_at(L, L->lineno, "out of memory");
}

static bool
put_str(struct loader *L, char **field, char *v)
{
	if (v == NULL)
		return no_memory(L);
	free(*field);
	*field = v;
	return true;
}

/* key_line - where key name of the current section was set, or 0. */
static size_t
key_line(const struct loader *L, const char *name)
{
	size_t i;

	for (i = 0; i < L->sec->nkeys; i++)
		if (strcmp(L->sec->keys[i].name, name) == 0)
			return L->key_at[i];
	return 0;
}

/* The setters */

static bool
set_path(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	return put_str(L, field, strdup(v));
}

static bool
set_file(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	const char *why = file_check(v);

	if (why != NULL)
		return bad(L, k, v, why);
	return put_str(L, field, strdup(v));
}

static bool
set_tls_key(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	const char *why = file_check(v);

	if (why == NULL)
		why = pem_key_check(v, false);
	if (why != NULL)
		return bad(L, k, v, why);
	return put_str(L, field, strdup(v));
}

static bool
set_dkim_key(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	const char *why = file_check(v);

	if (why == NULL)
		why = pem_key_check(v, true);
	if (why != NULL)
		return bad(L, k, v, why);
	return put_str(L, field, strdup(v));
}

static bool
set_hostname(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	if (!dns_name_ok(v, 0))
		return bad(L, k, v, "not a host name");
	return put_str(L, field, lower_name(v));
}

/* A signing domain: the signer wants at least two labels. */
static bool
set_sign_domain(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	const char *dot = strchr(v, '.');

	if (!dns_name_ok(v, NAME_UNDERSCORE) || dot == NULL || dot[1] == '\0')
		return bad(L, k, v, "not a domain name with a dot");
	return put_str(L, field, lower_name(v));
}

static bool
set_selector(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	if (!dns_name_ok(v, NAME_UNDERSCORE | NAME_NUMERIC) ||
	    v[strlen(v) - 1] == '.')
		return bad(L, k, v, "not a selector");
	return put_str(L, field, lower_name(v));
}

static bool
set_token(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	if (!token_ok(v))
		return bad(L, k, v, "not a single token (no spaces or "
		    "()<>@,;:\\\"/[]?=)");
	return put_str(L, field, strdup(v));
}

static bool
set_dmarc_mode(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	if (strcmp(v, "rfc9989") == 0)
		*(int *)field = 0;
	else if (strcmp(v, "rfc7489") == 0)
		*(int *)field = 1;
	else
		return bad(L, k, v, "not rfc9989 or rfc7489");
	return true;
}

static bool
set_user(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	if (!user_ok(v))
		return bad(L, k, v, "not a user name");
	return put_str(L, field, strdup(v));
}

/* check_range - v in k's range, which is shown in the key's unit. */
static bool
check_range(struct loader *L, const struct key_def *k, const char *v,
    uint64_t x, void (*fmt)(uint64_t, char *, size_t))
{
	char lo[32], hi[32], msg[96];

	if (x >= k->lo && x <= k->hi)
		return true;
	if (fmt != NULL) {
		fmt(k->lo, lo, sizeof(lo));
		fmt(k->hi, hi, sizeof(hi));
	} else {
		snprintf(lo, sizeof(lo), "%llu", (unsigned long long)k->lo);
		snprintf(hi, sizeof(hi), "%llu", (unsigned long long)k->hi);
	}
	snprintf(msg, sizeof(msg), "out of range (%s to %s)", lo, hi);
	return bad(L, k, v, msg);
}

static bool
set_uint(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	const char *s = v;
	uint64_t x;

	if (!digits(&s, &x) || *s != '\0')
		return bad(L, k, v, "not a number");
	if (!check_range(L, k, v, x, NULL))
		return false;
	*(unsigned *)field = (unsigned)x;
	return true;
}

static bool
set_size(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	uint64_t x;

	if (!config_size(v, &x))
		return bad(L, k, v, "not a size (like 1000, 10k, 50M, 1G)");
	if (!check_range(L, k, v, x, fmt_size))
		return false;
	*(uint64_t *)field = x;
	return true;
}

static bool
set_duration(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	unsigned x;

	if (!config_duration(v, &x))
		return bad(L, k, v, "not a duration (like 90s, 5m, 2h, 5d)");
	if (!check_range(L, k, v, x, fmt_duration))
		return false;
	*(unsigned *)field = x;
	return true;
}

/* listen: the first one in the file replaces the default, the rest add. */
static bool
set_listen(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	struct relay_config *c = L->c;
	const char *why;
	char **nl, *s;
	size_t i;

	if ((why = hostport_check(v, false)) != NULL)
		return bad(L, k, v, why);
	if (!L->listen_set) {
		for (i = 0; i < c->nlisten; i++)
			free(c->listen[i]);
		c->nlisten = 0;
		L->listen_set = true;
	}
	for (i = 0; i < c->nlisten; i++)
		if (strcmp(c->listen[i], v) == 0)
			return bad(L, k, v, "listed twice");
	if (c->nlisten == CFG_LISTEN_MAX)
		return bad(L, k, v, "too many listen addresses (at most 64)");
	if ((s = strdup(v)) == NULL)
		return no_memory(L);
	if ((nl = realloc(c->listen, (c->nlisten + 1) * sizeof(*nl))) == NULL) {
		free(s);
		return no_memory(L);
	}
	nl[c->nlisten++] = s;
	c->listen = nl;
	return true;
}

static bool
set_resolver(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	char ip[64];
	const char *at = strrchr(v, '@');
	size_t n = at != NULL ? (size_t)(at - v) : strlen(v);

	if (strcmp(v, "system") != 0) {
		if (n >= sizeof(ip))
			return bad(L, k, v, "not system or IP[@PORT]");
		memcpy(ip, v, n);
		ip[n] = '\0';
		if (!ipv4_ok(ip) && !ipv6_ok(ip))
			return bad(L, k, v, "not system or IP[@PORT]");
		if (at != NULL && !port_ok(at + 1))
			return bad(L, k, v, "port must be 1 to 65535");
	}
	return put_str(L, field, strdup(v));
}

static bool
set_target(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	const char *why = target_check(v);

	if (why != NULL)
		return bad(L, k, v, why);
	return put_str(L, field, strdup(v));
}

/* retry: durations apart by spaces; the schedule never goes down. */
static bool
set_retry(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	struct relay_config *c = L->c;
	unsigned got[CFG_RETRY_MAX], *r;
	char word[32], msg[160];
	size_t n = 0, len;
	const char *p = v;

	for (;;) {
		while (is_ws(*p))
			p++;
		if (*p == '\0')
			break;
		for (len = 0; p[len] != '\0' && !is_ws(p[len]); len++)
			;
		if (n == CFG_RETRY_MAX)
			return bad(L, k, v, "more than 32 durations");
		if (len >= sizeof(word))
			return bad(L, k, v, "not durations (like 1m 5m 30m 2h)");
		memcpy(word, p, len);
		word[len] = '\0';
		p += len;
		if (!config_duration(word, &got[n])) {
			snprintf(msg, sizeof(msg), "\"%s\" is not a duration "
			    "(like 90s, 5m, 2h, 5d)", word);
			return bad(L, k, v, msg);
		}
		if (got[n] < k->lo || got[n] > k->hi) {
			char lo[32], hi[32];

			fmt_duration(k->lo, lo, sizeof(lo));
			fmt_duration(k->hi, hi, sizeof(hi));
			snprintf(msg, sizeof(msg), "\"%s\" is out of range "
			    "(%s to %s)", word, lo, hi);
			return bad(L, k, v, msg);
		}
		if (n > 0 && got[n] < got[n - 1]) {
			snprintf(msg, sizeof(msg), "not ascending (%s after a "
			    "longer wait)", word);
			return bad(L, k, v, msg);
		}
		n++;
	}
	if (n == 0)
		return bad(L, k, v, "no durations");
	if ((r = malloc(n * sizeof(*r))) == NULL)
		return no_memory(L);
	memcpy(r, got, n * sizeof(*r));
	free(c->retry);
	c->retry = r;
	c->nretry = n;
	return true;
}

/* Section hooks */

/* [server]: TLS needs both halves; say so at the one that is there. */
static bool
server_end(struct loader *L)
{
	size_t cert = key_line(L, "tls_cert"), key = key_line(L, "tls_key");

	if (cert != 0 && key == 0)
		return fail_at(L, cert, "tls_cert without tls_key");
	if (key != 0 && cert == 0)
		return fail_at(L, key, "tls_key without tls_cert");
	return true;
}

/* [signing]: all three or the section is refused. */
static bool
signing_end(struct loader *L)
{
	static const char *const need[] = { "domain", "selector", "key" };
	char missing[64] = "";
	size_t i;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (key_line(L, need[i]) == 0)
			snprintf(missing + strlen(missing),
			    sizeof(missing) - strlen(missing), "%s%s",
			    missing[0] != '\0' ? ", " : "", need[i]);
	if (missing[0] != '\0')
		return fail_at(L, L->sec_at, "[signing] is missing %s",
		    missing);
	return true;
}

/*
 * [arc]: a key of its own under the signing domain and selector could
 * never verify (that record holds the signing key), so it needs its own
 * selector or domain.
 */
static bool
arc_end(struct loader *L)
{
	size_t key = key_line(L, "key");

	if (key != 0 && key_line(L, "selector") == 0 &&
	    key_line(L, "domain") == 0)
		return fail_at(L, key, "[arc] key without its own selector "
		    "or domain");
	return true;
}

/* [domain NAME]: one block per recipient domain. */
static void *
domain_begin(struct loader *L, const char *arg)
{
	struct relay_config *c = L->c;
	struct cfg_domain *nd;
	size_t *na, i;
	char *name;

	if (!dns_name_ok(arg, 0)) {
		fail_at(L, L->lineno, "[domain %s]: not a domain name", arg);
		return NULL;
	}
	if ((name = lower_name(arg)) == NULL) {
		no_memory(L);
		return NULL;
	}
	for (i = 0; i < c->ndomains; i++)
		if (strcmp(c->domains[i].name, name) == 0) {
			fail_at(L, L->lineno, "duplicate [domain %s] (first at "
			    "line %zu)", name, L->domain_at[i]);
			free(name);
			return NULL;
		}
	nd = realloc(c->domains, (c->ndomains + 1) * sizeof(*nd));
	if (nd != NULL)
		c->domains = nd;
	na = realloc(L->domain_at, (c->ndomains + 1) * sizeof(*na));
	if (na != NULL)
		L->domain_at = na;
	if (nd == NULL || na == NULL) {
		free(name);
		no_memory(L);
		return NULL;
	}
	na[c->ndomains] = L->lineno;
	nd[c->ndomains].name = name;
	nd[c->ndomains].deliver = NULL;
	return &nd[c->ndomains++];
}

/*
 * Rules: [list ADDR], [forward ADDR], [srs]
 */

#define CFG_FILE_MAX	(4 * 1024 * 1024)	/* members, footer, secret */
#define CFG_MEMBERS_MAX	100000

/*
 * addr_ok - local@domain as a rule names it: a dot-atom local part (RFC
 * 5322 §3.2.3; no quoting, no routing characters) and a host name.
 */
static bool
addr_ok(const char *s)
{
	const char *at = strrchr(s, '@');
	const char *p;

	if (at == NULL || at == s || at - s > 64 || s[0] == '.' ||
	    at[-1] == '.' || !dns_name_ok(at + 1, 0) ||
	    at[strlen(at) - 1] == '.')
		return false;
	for (p = s; p < at; p++)
		if (!isalnum((unsigned char)*p) &&
		    strchr("!#$&'*+-/=?^_`{|}~.", *p) == NULL)
			return false;
		else if (*p == '.' && p[1] == '.')
			return false;
	return true;
}

/* lower_addr - the address with its domain in lowercase. */
static char *
lower_addr(const char *s)
{
	char *d = strdup(s), *at;

	if (d != NULL && (at = strrchr(d, '@')) != NULL)
		for (; *at != '\0'; at++)
			*at = (char)tolower((unsigned char)*at);
	return d;
}

/*
 * read_small - a whole file given as file:PATH, NUL-terminated, with no
 * NUL byte inside; NULL with a reason.
 */
static char *
read_small(const char *path, const char **reason)
{
	FILE *fp;
	char *buf;
	size_t n;
	const char *r;

	if ((r = file_check(path)) != NULL) {
		*reason = r;
		return NULL;
	}
	if ((fp = fopen(path, "r")) == NULL) {
		*reason = strerror(errno);
		return NULL;
	}
	if ((buf = malloc(CFG_FILE_MAX + 1)) == NULL) {
		fclose(fp);
		*reason = "out of memory";
		return NULL;
	}
	n = fread(buf, 1, CFG_FILE_MAX + 1, fp);
	if (ferror(fp) || n > CFG_FILE_MAX || memchr(buf, '\0', n) != NULL) {
		*reason = ferror(fp) ? "read error" : n > CFG_FILE_MAX ?
		    "file larger than 4 MiB" : "NUL byte in the file";
		fclose(fp);
		free(buf);
		return NULL;
	}
	fclose(fp);
	buf[n] = '\0';
	return buf;
}

/* value_or_file - v itself, or the contents of PATH for "file:PATH". */
static char *
value_or_file(struct loader *L, const struct key_def *k, const char *v,
    bool *failed)
{
	const char *reason = NULL;
	char *s;

	*failed = false;
	if (strncmp(v, "file:", 5) != 0)
		return strdup(v);
	if ((s = read_small(v + 5, &reason)) == NULL) {
		*failed = true;
		bad(L, k, v, reason);
	}
	return s;
}

static bool
is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * add_addrs - each address in s (separated by commas, blanks or lines;
 * in a file, '#' starts a comment) through add; false after fail(). file
 * is the PATH of file:PATH (NULL for an inline value): a bad address is
 * reported with its line in that file.
 */
static bool
add_addrs(struct loader *L, const struct key_def *k, char *s,
    const char *file, bool (*add)(struct loader *, const char *))
{
	char *p = s;
	size_t line = 1;

	while (*p != '\0') {
		char *e, save;

		if (is_sep(*p)) {
			line += *p == '\n';
			p++;
			continue;
		}
		if (file && *p == '#') {
			while (*p != '\0' && *p != '\n')
				p++;
			continue;
		}
		for (e = p; *e != '\0' && !is_sep(*e); e++)
			;
		save = *e;
		*e = '\0';
		if (!addr_ok(p) && file != NULL)
			return fail_at(L, L->lineno, "%s: %.200s line %zu: "
			    "\"%.100s\": not an address local@domain", k->name,
			    file, line, p);
		if (!addr_ok(p))
			return bad(L, k, p, "not an address local@domain");
		if (!add(L, p))
			return false;
		*e = save;
		p = e;
	}
	return true;
}

static bool
add_member(struct loader *L, const char *a)
{
	struct rules_list *l = L->base;
	char *la = lower_addr(a);
	bool ok = la != NULL && l->nmembers < CFG_MEMBERS_MAX &&
	    rules_add_member(l, la);

	free(la);
	if (!ok && l->nmembers >= CFG_MEMBERS_MAX)
		return fail_at(L, L->lineno, "more than %d members",
		    CFG_MEMBERS_MAX);
	return ok || no_memory(L);
}

static bool
set_members(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	struct rules_list *l = L->base;
	bool failed, ok;
	char *s = value_or_file(L, k, v, &failed);

	if (s == NULL)
		return failed ? false : no_memory(L);
	if (strncmp(v, "file:", 5) == 0 && l->members_file == NULL &&
	    (l->members_file = strdup(v + 5)) == NULL) {
		free(s);
		return no_memory(L);
	}
	ok = add_addrs(L, k, s, strncmp(v, "file:", 5) == 0 ? v + 5 : NULL,
	    add_member);
	free(s);
	return ok;
}

/* choice - v as the index of one of the words in opts ("a|b|c"). */
static bool
choice(struct loader *L, const struct key_def *k, const char *v,
    const char *const *opts, size_t n, int *out)
{
	char reason[128] = "not ";
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v, opts[i]) == 0) {
			*out = (int)i;
			return true;
		}
	for (i = 0; i < n; i++)
		snprintf(reason + strlen(reason), sizeof(reason) -
		    strlen(reason), "%s%s", opts[i], i + 2 < n ? ", " :
		    i + 1 < n ? " or " : "");
	return bad(L, k, v, reason);
}

/* set_two - a key with two spellings: o[0] sets *field false, o[1] true. */
static bool
set_two(struct loader *L, const struct key_def *k, void *field,
    const char *v, const char *const o[2])
{
	int i;

	if (!choice(L, k, v, o, 2, &i))
		return false;
	*(bool *)field = i == 1;
	return true;
}

static bool
set_posters(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	static const char *const o[] = { "members", "any" };

	return set_two(L, k, field, v, o);
}

static bool
set_eightbit(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	static const char *const o[] = { "send", "bounce" };

	return set_two(L, k, field, v, o);
}

static bool
set_dmarc_reject(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	static const char *const o[] = { "refuse", "relay" };

	return set_two(L, k, field, v, o);
}

/* In the order of enum rules_from and enum rules_reply_to. */
static bool
set_from_rewrite(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	static const char *const o[] = { "dmarc", "always", "never" };

	return choice(L, k, v, o, 3, field);
}

static bool
set_reply_to(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	static const char *const o[] = { "author", "list", "none" };

	return choice(L, k, v, o, 3, field);
}

static bool
set_yesno(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	static const char *const o[] = { "no", "yes" };

	return set_two(L, k, field, v, o);
}

/* A one-line text for a header field: printable, no line breaks. */
static bool
set_text(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	const unsigned char *p;

	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < ' ' || *p == 0x7f)
			return bad(L, k, v, "control character");
	return put_str(L, field, strdup(v));
}

/*
 * list_checked - a list's value that goes into a header field, refused
 * now with the reason its messages would later be refused for (the check
 * is policy/listhdr's own), naming the list.
 */
static bool
list_checked(struct loader *L, const struct key_def *k, void *field,
    const char *v, const char *reason)
{
	if (reason != NULL)
		return fail_at(L, L->lineno, "[list %s] %s: \"%s\": %s",
		    ((struct rules_list *)L->base)->addr, k->name, v, reason);
	return put_str(L, field, strdup(v));
}

static bool
set_list_id(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	return list_checked(L, k, field, v, listhdr_list_id_check(v));
}

static bool
set_subject_tag(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	return list_checked(L, k, field, v, listhdr_subject_tag_check(v));
}

/* bounces - maildir:PATH, where a list's bounces are kept, or discard. */
static bool
set_bounces(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	struct rules_list *l = L->base;

	(void)field;
	if (strcmp(v, "discard") == 0) {
		l->bounce_discard = true;
		free(l->bounce_maildir);
		l->bounce_maildir = NULL;
		return true;
	}
	if (strncmp(v, "maildir:", 8) != 0 || v[8] == '\0')
		return bad(L, k, v, "not maildir:PATH or discard");
	l->bounce_discard = false;
	return put_str(L, &l->bounce_maildir, strdup(v + 8));
}

/*
 * footer - inline text ("\n" in it starts a new line) or file:PATH, UTF-8
 * either way: it is appended to messages as is.
 */
static bool
set_footer(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	bool failed;
	char *s = value_or_file(L, k, v, &failed), *r, *w;

	if (s == NULL)
		return failed ? false : no_memory(L);
	if (strncmp(v, "file:", 5) != 0)
		for (r = w = s; *r != '\0'; r++)
			if (r[0] == '\\' && r[1] == 'n') {
				*w++ = '\n';
				r++;
			} else
				*w++ = *r;
	else
		w = s + strlen(s);
	*w = '\0';
	return put_str(L, field, s);
}

/*
 * unsubscribe - "mailto:ADDR" and/or "https://..." (separated by blanks
 * or commas, or repeated); "{list}" in either stands for the list address.
 */
static bool
set_unsubscribe(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	struct rules_list *l = L->base;
	char *s = strdup(v), *p, *save = NULL;
	bool ok = true;

	if (s == NULL)
		return no_memory(L);
	for (p = strtok_r(s, ", \t", &save); p != NULL && ok;
	    p = strtok_r(NULL, ", \t", &save)) {
		struct dkim_buf b;
		const char *q;
		char **dst;

		if (strncmp(p, "mailto:", 7) == 0)
			dst = &l->unsub_mailto;
		else if (strncmp(p, "https://", 8) == 0 && p[8] != '\0')
			dst = &l->unsub_https;
		else {
			ok = bad(L, k, p, "not mailto:ADDR or https://...");
			break;
		}
		if (*dst != NULL) {
			ok = bad(L, k, p, "a second URI of this kind");
			break;
		}
		dkim_buf_init(&b, 4096);
		for (q = dst == &l->unsub_mailto ? p + 7 : p; *q != '\0'; q++)
			if (strncmp(q, "{list}", 6) == 0) {
				dkim_buf_adds(&b, l->addr);
				q += 5;
			} else if ((unsigned char)*q <= ' ' || *q == '<' ||
			    *q == '>' || (unsigned char)*q >= 0x7f) {
				b.failed = true;
				break;
			} else
				dkim_buf_addc(&b, *q);
		if (b.failed || b.len == 0 || (dst == &l->unsub_mailto &&
		    !addr_ok(b.p))) {
			dkim_buf_free(&b);
			ok = bad(L, k, p, dst == &l->unsub_mailto ?
			    "not mailto: and an address" :
			    "not a URI without spaces or <>");
			break;
		}
		*dst = dkim_buf_take(&b, NULL);
	}
	free(s);
	(void)field;
	return ok;
}

static struct rules *
need_rules(struct loader *L)
{
	if (L->c->rules == NULL && (L->c->rules = rules_new()) == NULL)
		no_memory(L);
	return L->c->rules;
}

/* The name of a [list ADDR] or [forward ADDR] section, not yet used. */
static char *
rule_addr(struct loader *L, const char *sec, const char *arg)
{
	struct rules *r = need_rules(L);
	size_t i;
	char *a;

	if (r == NULL)
		return NULL;
	if (!addr_ok(arg)) {
		fail_at(L, L->lineno, "[%s %s]: not an address local@domain",
		    sec, arg);
		return NULL;
	}
	for (i = 0; i < r->nlists + r->nforwards; i++)
		if (rules_addr_eq(i < r->nlists ? r->lists[i].addr :
		    r->forwards[i - r->nlists].addr, arg)) {
			fail_at(L, L->lineno, "[%s %s]: the address already "
			    "has a [%s] rule", sec, arg, i < r->nlists ?
			    "list" : "forward");
			return NULL;
		}
	/* rules_match would give the list's bounce handling the mail, and
	 * the rule would never see it. */
	for (i = 0; i < r->nlists; i++)
		if (rules_is_list_bounce(&r->lists[i], arg)) {
			fail_at(L, L->lineno, "[%s %s]: the address is a "
			    "bounce address of [list %s]", sec, arg,
			    r->lists[i].addr);
			return NULL;
		}
	if ((a = lower_addr(arg)) == NULL)
		no_memory(L);
	return a;
}

static void *
list_begin(struct loader *L, const char *arg)
{
	char *a = rule_addr(L, "list", arg), *at;
	struct rules *r = L->c->rules;
	struct rules_list *nl, *l;
	size_t i;

	if (a == NULL)
		return NULL;
	if ((nl = realloc(r->lists, (r->nlists + 1) * sizeof(*nl))) == NULL) {
		free(a);
		no_memory(L);
		return NULL;
	}
	r->lists = nl;
	l = &nl[r->nlists++];
	memset(l, 0, sizeof(*l));
	l->addr = a;
	l->verp = true;
	at = strrchr(a, '@');
	l->name = strndup(a, (size_t)(at - a));
	if ((l->bounces = malloc(strlen(a) + sizeof("-bounces"))) != NULL)
		sprintf(l->bounces, "%.*s-bounces%s", (int)(at - a), a, at);
	if (l->name == NULL || l->bounces == NULL) {
		no_memory(L);
		return NULL;
	}
	/* Posts go out from it and bounces come back to it: our own RCPT
	 * takes no local part over RFC 5321's 64 octets. */
	if ((size_t)(at - a) + strlen("-bounces") > 64) {
		fail_at(L, L->lineno, "[list %s]: its bounce address %s has a "
		    "local part over 64 octets", arg, l->bounces);
		return NULL;
	}
	/* The other way round from rule_addr: a rule that came first. */
	for (i = 0; i + 1 < r->nlists + r->nforwards; i++) {
		const char *o = i + 1 < r->nlists ? r->lists[i].addr :
		    r->forwards[i + 1 - r->nlists].addr;

		if (rules_is_list_bounce(l, o)) {
			fail_at(L, L->lineno, "[list %s]: [%s %s] has one of "
			    "its bounce addresses", arg, i + 1 < r->nlists ?
			    "list" : "forward", o);
			return NULL;
		}
	}
	return l;
}

static bool
list_end(struct loader *L)
{
	struct rules_list *l = L->base;

	if (l->nmembers == 0)
		return fail_at(L, L->sec_at, "[list %s] has no members",
		    l->addr);
	return true;
}

static void *
forward_begin(struct loader *L, const char *arg)
{
	char *a = rule_addr(L, "forward", arg);
	struct rules *r = L->c->rules;
	struct rules_forward *nf, *f;

	if (a == NULL)
		return NULL;
	if ((nf = realloc(r->forwards, (r->nforwards + 1) * sizeof(*nf))) ==
	    NULL) {
		free(a);
		no_memory(L);
		return NULL;
	}
	r->forwards = nf;
	f = &nf[r->nforwards++];
	memset(f, 0, sizeof(*f));
	f->addr = a;
	f->srs = true;
	return f;
}

static bool
add_to(struct loader *L, const char *a)
{
	struct rules_forward *f = L->base;
	char **nv;
	size_t i;

	for (i = 0; i < f->nto; i++)
		if (rules_addr_eq(f->to[i], a))
			return true;
	if (f->nto >= 1000)
		return fail_at(L, L->lineno, "more than 1000 addresses in to");
	if ((nv = realloc(f->to, (f->nto + 1) * sizeof(*nv))) == NULL)
		return no_memory(L);
	f->to = nv;
	if ((nv[f->nto] = lower_addr(a)) == NULL)
		return no_memory(L);
	f->nto++;
	return true;
}

static bool
set_to(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	char *s = strdup(v);
	bool ok;

	if (s == NULL)
		return no_memory(L);
	ok = add_addrs(L, k, s, NULL, add_to);
	free(s);
	return ok;
}

static bool
forward_end(struct loader *L)
{
	struct rules_forward *f = L->base;

	if (f->nto == 0)
		return fail_at(L, L->sec_at, "[forward %s] has no to",
		    f->addr);
	if (key_line(L, "srs") == 0)
		return true;
	/* srs = yes said explicitly needs [srs]: checked at the end of
	 * the file (the section may come later). */
	if (f->srs && L->srs_needed_at == 0)
		L->srs_needed_at = key_line(L, "srs");
	return true;
}

static void *
srs_begin(struct loader *L, const char *arg)
{
	struct rules *r = need_rules(L);

	(void)arg;
	if (r != NULL)
		r->srs.max_age_days = 21;
	return r != NULL ? &r->srs : NULL;
}

static bool
set_srs_domain(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	if (!dns_name_ok(v, 0) || strchr(v, '.') == NULL)
		return bad(L, k, v, "not a domain name with a dot");
	return put_str(L, field, lower_name(v));
}

/* trusted_arc - repeatable: domains whose ARC seals the lists believe
 * (rules_arc_vouches), separated by commas or blanks. */
static bool
set_trusted_arc(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	struct rules *r = need_rules(L);
	char *s = strdup(v), *p, *save = NULL, **nv;
	bool ok = true;

	(void)field;
	if (r == NULL || s == NULL) {
		free(s);
		return r == NULL ? false : no_memory(L);
	}
	for (p = strtok_r(s, ", \t", &save); p != NULL && ok;
	    p = strtok_r(NULL, ", \t", &save)) {
		char *d;

		if (!dns_name_ok(p, 0) || strchr(p, '.') == NULL)
			ok = bad(L, k, p, "not a domain name with a dot");
		else if (r->ntrusted_arc >= 64)
			ok = bad(L, k, p, "more than 64 trusted sealers");
		else if ((nv = realloc(r->trusted_arc, (r->ntrusted_arc + 1) *
		    sizeof(*nv))) == NULL || (r->trusted_arc = nv,
		    d = lower_name(p)) == NULL)
			ok = no_memory(L);
		else
			nv[r->ntrusted_arc++] = d;
	}
	free(s);
	return ok;
}

/* secret - repeatable: the first signs, every one verifies (rotation). */
static bool
set_secret(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	struct rules_srs *s = L->base;
	bool failed;
	char *sec = value_or_file(L, k, v, &failed), **nv;
	size_t n;

	if (sec == NULL)
		return failed ? false : no_memory(L);
	n = strlen(sec);
	while (n > 0 && (sec[n - 1] == '\n' || sec[n - 1] == '\r'))
		sec[--n] = '\0';
	if (n < 16) {
		free(sec);
		return bad(L, k, strncmp(v, "file:", 5) == 0 ? v : "...",
		    "a secret needs at least 16 characters");
	}
	if (s->nsecrets >= 16 || (nv = realloc(s->secrets,
	    (s->nsecrets + 1) * sizeof(*nv))) == NULL) {
		free(sec);
		return s->nsecrets >= 16 ? bad(L, k, "...",
		    "more than 16 secrets") : no_memory(L);
	}
	s->secrets = nv;
	nv[s->nsecrets++] = sec;
	(void)field;
	return true;
}

static bool
set_max_age(struct loader *L, const struct key_def *k, void *field,
    const char *v)
{
	unsigned secs;

	if (!set_duration(L, k, &secs, v))
		return false;
	*(unsigned *)field = (secs + DAY - 1) / DAY;
	return true;
}

static bool
srs_end(struct loader *L)
{
	struct rules_srs *s = L->base;

	if (s->domain == NULL)
		return fail_at(L, L->sec_at, "[srs] is missing domain");
	if (s->nsecrets == 0)
		return fail_at(L, L->sec_at, "[srs] is missing secret");
	return true;
}

/*
 * The tables
 */

#define CFG(f)	offsetof(struct relay_config, f)
#define DOM(f)	offsetof(struct cfg_domain, f)
#define NKEYS(t) (sizeof(t) / sizeof((t)[0]))

static const struct key_def server_keys[] = {
	{ "listen", set_listen, 0, 0, 0, true },
	{ "hostname", set_hostname, CFG(hostname), 0, 0, false },
	{ "authserv_id", set_token, CFG(authserv_id), 0, 0, false },
	{ "spool", set_path, CFG(spool), 0, 0, false },
	{ "pid_file", set_path, CFG(pid_file), 0, 0, false },
	{ "user", set_user, CFG(user), 0, 0, false },
	{ "max_message_size", set_size, CFG(max_message_size), 1024,
	    16 * 1024 * MIB, false },
	{ "max_recipients", set_uint, CFG(max_recipients), 1, 100000, false },
	{ "max_sessions", set_uint, CFG(max_sessions), 1, 100000, false },
	{ "max_sessions_per_ip", set_uint, CFG(max_sessions_per_ip), 1,
	    100000, false },
	{ "max_errors", set_uint, CFG(max_errors), 1, 10000, false },
	{ "idle_timeout", set_duration, CFG(idle_timeout), 1, DAY, false },
	{ "tls_cert", set_file, CFG(tls_cert), 0, 0, false },
	{ "tls_key", set_tls_key, CFG(tls_key), 0, 0, false },
	{ "workers", set_uint, CFG(workers), 1, 256, false },
};

static const struct key_def dns_keys[] = {
	{ "resolver", set_resolver, CFG(resolver), 0, 0, false },
	{ "records", set_file, CFG(records), 0, 0, false },
	{ "timeout", set_duration, CFG(dns_timeout), 1, 300, false },
};

static const struct key_def policy_keys[] = {
	{ "dmarc", set_dmarc_mode, CFG(dmarc_mode), 0, 0, false },
	{ "trusted_arc", set_trusted_arc, 0, 0, 0, true },
};

static const struct key_def delivery_keys[] = {
	{ "deliver", set_target, CFG(deliver), 0, 0, false },
	{ "retry", set_retry, 0, 1, 30 * DAY, false },
	{ "lifetime", set_duration, CFG(lifetime), 60, 365 * DAY, false },
	{ "eightbit", set_eightbit, CFG(eightbit_bounce), 0, 0, false },
};

static const struct key_def signing_keys[] = {
	{ "domain", set_sign_domain, CFG(sign_domain), 0, 0, false },
	{ "selector", set_selector, CFG(sign_selector), 0, 0, false },
	{ "key", set_dkim_key, CFG(sign_key), 0, 0, false },
};

static const struct key_def arc_keys[] = {
	{ "domain", set_sign_domain, CFG(arc_domain), 0, 0, false },
	{ "selector", set_selector, CFG(arc_selector), 0, 0, false },
	{ "key", set_dkim_key, CFG(arc_key), 0, 0, false },
};

#define LST(f)	offsetof(struct rules_list, f)
#define FWD(f)	offsetof(struct rules_forward, f)
#define SRS(f)	offsetof(struct rules_srs, f)

static const struct key_def list_keys[] = {
	{ "members", set_members, 0, 0, 0, true },
	{ "name", set_text, LST(name), 0, 0, false },
	{ "posters", set_posters, LST(posters_any), 0, 0, false },
	{ "subject_tag", set_subject_tag, LST(subject_tag), 0, 0, false },
	{ "footer", set_footer, LST(footer), 0, 0, false },
	{ "from_rewrite", set_from_rewrite, LST(from_rewrite), 0, 0, false },
	{ "dmarc_reject", set_dmarc_reject, LST(dmarc_relay), 0, 0, false },
	{ "reply_to", set_reply_to, LST(reply_to), 0, 0, false },
	{ "list_id", set_list_id, LST(list_id), 0, 0, false },
	{ "unsubscribe", set_unsubscribe, 0, 0, 0, true },
	{ "verp", set_yesno, LST(verp), 0, 0, false },
	{ "bounces", set_bounces, 0, 0, 0, false },
};

static const struct key_def forward_keys[] = {
	{ "to", set_to, 0, 0, 0, true },
	{ "srs", set_yesno, FWD(srs), 0, 0, false },
};

static const struct key_def srs_keys[] = {
	{ "domain", set_srs_domain, SRS(domain), 0, 0, false },
	{ "secret", set_secret, 0, 0, 0, true },
	{ "max_age", set_max_age, SRS(max_age_days), DAY, 1000 * DAY, false },
};

static const struct key_def domain_keys[] = {
	{ "deliver", set_target, DOM(deliver), 0, 0, false },
};

/* A key table and its length; a table too long for key_at[] fails to
 * compile (the array size goes negative). */
#define KEYS(t)	t, NKEYS(t) + 0 * sizeof(char[NKEYS(t) <= CFG_KEYS_MAX ? 1 : -1])

static const struct section_def sections[] = {
	{ "server", false, KEYS(server_keys), NULL, server_end },
	{ "dns", false, KEYS(dns_keys), NULL, NULL },
	{ "policy", false, KEYS(policy_keys), NULL, NULL },
	{ "delivery", false, KEYS(delivery_keys), NULL, NULL },
	{ "signing", false, KEYS(signing_keys), NULL, signing_end },
	{ "arc", false, KEYS(arc_keys), NULL, arc_end },
	{ "domain", true, KEYS(domain_keys), domain_begin, NULL },
	{ "list", true, KEYS(list_keys), list_begin, list_end },
	{ "forward", true, KEYS(forward_keys), forward_begin, forward_end },
	{ "srs", false, KEYS(srs_keys), srs_begin, srs_end },
};

_Static_assert(NKEYS(sections) <= CFG_SECTIONS_MAX, "raise CFG_SECTIONS_MAX");

/*
 * Loading
 */

static bool
end_section(struct loader *L)
{
	bool ok = L->sec == NULL || L->sec->end == NULL || L->sec->end(L);

	L->sec = NULL;
	L->base = NULL;
	return ok;
}

static bool
on_section(struct loader *L, const char *name, const char *arg)
{
	const struct section_def *sd = NULL;
	size_t i;

	if (!end_section(L))
		return false;
	for (i = 0; i < NKEYS(sections); i++)
		if (strcmp(sections[i].name, name) == 0)
			sd = &sections[i];
	if (sd == NULL)
		return fail_at(L, L->lineno, "unknown section [%s]", name);
	if (sd->named && arg == NULL)
		return fail_at(L, L->lineno, "[%s] needs a name: [%s NAME]",
		    name, name);
	if (!sd->named && arg != NULL)
		return fail_at(L, L->lineno, "[%s] takes no name", name);
	if (!sd->named) {
		size_t *seen = &L->seen_at[sd - sections];

		if (*seen != 0)
			return fail_at(L, L->lineno, "duplicate [%s] (first "
			    "at line %zu)", name, *seen);
		*seen = L->lineno;
	}
	memset(L->key_at, 0, sizeof(L->key_at));
	L->sec_at = L->lineno;
	L->base = sd->begin != NULL ? sd->begin(L, arg) : L->c;
	if (L->base == NULL)
		return false;
	L->sec = sd;
	return true;
}

static bool
on_key(struct loader *L, const char *name, const char *value)
{
	const struct key_def *k = NULL;
	size_t i;

	if (L->sec == NULL)
		return fail_at(L, L->lineno, "%s: outside a section", name);
	for (i = 0; i < L->sec->nkeys; i++)
		if (strcmp(L->sec->keys[i].name, name) == 0) {
			k = &L->sec->keys[i];
			break;
		}
	if (k == NULL)
		return fail_at(L, L->lineno, "unknown key %s in [%s]", name,
		    L->sec->name);
	if (L->key_at[i] != 0 && !k->repeat)
		return fail_at(L, L->lineno, "duplicate key %s (first at line "
		    "%zu)", name, L->key_at[i]);
	if (*value == '\0')
		return fail_at(L, L->lineno, "%s: empty value", name);
	if (!k->set(L, k, (char *)L->base + k->off, value))
		return false;
	if (L->key_at[i] == 0)
		L->key_at[i] = L->lineno;
	return true;
}

static bool
on_line(struct loader *L, char *line, size_t n)
{
	struct cfg_line cl;
	const char *reason = NULL;
	size_t i;

	if (n > CFG_LINE_MAX)
		return fail_at(L, L->lineno, "line longer than %d bytes",
		    CFG_LINE_MAX);
	for (i = 0; i < n; i++)
		if (((unsigned char)line[i] < ' ' && line[i] != '\t') ||
		    line[i] == 0x7f)
			return fail_at(L, L->lineno, line[i] == '\0' ?
			    "NUL byte in the line" :
			    "control character in the line");
	if (!split_line(line, &cl, &reason))
		return fail_at(L, L->lineno, "%s", reason);
	switch (cl.kind) {
	case LINE_SECTION:
		return on_section(L, cl.name, cl.arg);
	case LINE_KEY:
		return on_key(L, cl.name, cl.arg);
	case LINE_BLANK:
		break;
	}
	return true;
}

/* default_hostname - gethostname(), lowercase; "localhost" if unusable. */
static char *
default_hostname(void)
{
	char buf[256];

	if (gethostname(buf, sizeof(buf)) != 0)
		buf[0] = '\0';
	buf[sizeof(buf) - 1] = '\0';
	if (!dns_name_ok(buf, 0))
		return strdup("localhost");
	return lower_name(buf);
}

/*
 * host_domain - the domain a host name sits in: "mx.example.com" gives
 * "example.com"; a two-label name is a domain already; a bare name has
 * none, so "localhost.localdomain".
 */
static const char *
host_domain(const char *h)
{
	const char *dot = strchr(h, '.');

	if (dot == NULL)
		return DEF_NO_DOMAIN;
	return strchr(dot + 1, '.') != NULL ? dot + 1 : h;
}

static char **
str_list(const char *s)
{
	char **l = calloc(1, sizeof(*l));

	if (l != NULL && (l[0] = strdup(s)) == NULL) {
		free(l);
		l = NULL;
	}
	return l;
}

/* config_base - the defaults that do not follow from the hostname. */
static struct relay_config *
config_base(void)
{
	struct relay_config *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->listen = str_list(DEF_LISTEN);
	c->nlisten = c->listen != NULL ? 1 : 0;
	c->hostname = default_hostname();
	c->spool = strdup(DEF_SPOOL);
	c->max_message_size = 50 * MIB;
	c->max_recipients = 100;
	c->max_sessions = 500;
	c->max_sessions_per_ip = 20;
	c->max_errors = 10;
	c->idle_timeout = 300;
	c->workers = 8;
	c->resolver = strdup("system");
	c->dns_timeout = 5;
	c->deliver = strdup(DEF_DELIVER);
	if ((c->retry = malloc(sizeof(def_retry))) != NULL) {
		memcpy(c->retry, def_retry, sizeof(def_retry));
		c->nretry = sizeof(def_retry) / sizeof(def_retry[0]);
	}
	c->lifetime = 5 * DAY;
	c->sign_selector = strdup(DEF_SELECTOR);
	c->sign_key = strdup(DEF_KEY);
	if (c->listen == NULL || c->hostname == NULL || c->spool == NULL ||
	    c->resolver == NULL || c->deliver == NULL || c->retry == NULL ||
	    c->sign_selector == NULL || c->sign_key == NULL) {
		config_free(c);
		return NULL;
	}
	return c;
}

/* config_finish - the defaults that follow from the (final) hostname
 * and spool. */
static bool
config_finish(struct relay_config *c)
{
	size_t i;

	for (i = 0; c->rules != NULL && i < c->rules->nlists; i++) {
		struct rules_list *l = &c->rules->lists[i];

		if (l->bounce_discard || l->bounce_maildir != NULL)
			continue;
		if ((l->bounce_maildir = malloc(strlen(c->spool) +
		    sizeof("/bounces"))) == NULL)
			return false;
		sprintf(l->bounce_maildir, "%s/bounces", c->spool);
	}
	if (c->pid_file == NULL) {
		if ((c->pid_file = malloc(strlen(c->spool) +
		    sizeof("/arcrelay.pid"))) == NULL)
			return false;
		sprintf(c->pid_file, "%s/arcrelay.pid", c->spool);
	}
	if (c->authserv_id == NULL &&
	    (c->authserv_id = strdup(c->hostname)) == NULL)
		return false;
	if (c->sign_domain == NULL &&
	    (c->sign_domain = strdup(host_domain(c->hostname))) == NULL)
		return false;
	return true;
}

struct relay_config *
config_default(void)
{
	struct relay_config *c = config_base();

	if (c == NULL)
		return NULL;
	if (!config_finish(c)) {
		config_free(c);
		return NULL;
	}
	c->loopback_any_rcpt = true;
	return c;
}

struct relay_config *
config_load(const char *path, char *why, size_t whylen)
{
	struct loader L;
	FILE *fp;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool ok = true;

	memset(&L, 0, sizeof(L));
	if (path == NULL) {
		if (why != NULL && whylen > 0)
			snprintf(why, whylen, "no configuration file given");
		return NULL;
	}
	L.path = path;
	L.why = why;
	L.whylen = whylen;
	if ((fp = fopen(path, "r")) == NULL) {
		if (why != NULL && whylen > 0)
			snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((L.c = config_base()) == NULL) {
		fclose(fp);
		if (why != NULL && whylen > 0)
			snprintf(why, whylen, "%s: out of memory", path);
		return NULL;
	}
	while (ok && (n = getline(&line, &cap, fp)) != -1) {
		L.lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		ok = on_line(&L, line, (size_t)n);
	}
	if (ok && ferror(fp))
		ok = fail_at(&L, L.lineno + 1, "read error: %s",
		    strerror(errno));
	if (ok)
		ok = end_section(&L);
	if (ok && L.srs_needed_at != 0 && L.c->rules->srs.domain == NULL)
		ok = fail_at(&L, L.srs_needed_at, "srs = yes without an [srs] "
		    "section");
	if (ok && (L.c->path = strdup(path)) == NULL)
		ok = no_memory(&L);
	if (ok && !config_finish(L.c))
		ok = no_memory(&L);
	free(line);
	free(L.domain_at);
	fclose(fp);
	if (!ok) {
		config_free(L.c);
		return NULL;
	}
	return L.c;
}

void
config_free(struct relay_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	free(c->listen);
	free(c->hostname);
	free(c->authserv_id);
	free(c->spool);
	free(c->pid_file);
	free(c->user);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->resolver);
	free(c->records);
	free(c->deliver);
	free(c->retry);
	free(c->sign_domain);
	free(c->sign_selector);
	free(c->sign_key);
	free(c->arc_domain);
	free(c->arc_selector);
	free(c->arc_key);
	for (i = 0; i < c->ndomains; i++) {
		free(c->domains[i].name);
		free(c->domains[i].deliver);
	}
	free(c->domains);
	rules_unref(c->rules);
	free(c->path);
	free(c);
}
