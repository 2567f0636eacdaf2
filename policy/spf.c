/*
 * spf.c - Sender Policy Framework (RFC 7208): check_host() for the HELO
 * and MAIL FROM identities, over DNS handed in through pdns.h.
 *
 * Why we evaluate SPF ourselves instead of through libspf2 (DESIGN.md
 * planned libspf2). Debian's libspf2 1.2.10 disagreed with RFC 7208 (and
 * with pyspf) on about 9% of measured cases, for six reasons:
 *   1. it has no void-lookup limit (§4.6.4);
 *   2. it counts the 10 DNS-querying terms per record, not across the
 *      includes and redirects of one evaluation (§4.1, §4.6.4);
 *   3. it acts on redirect= where the modifier stands, instead of only
 *      after every mechanism failed to match and only when the record
 *      has no "all" (§5.1, §6.1);
 *   4. %{d2}-style right-hand-part selection and custom delimiters are
 *      expanded wrongly (§7.3);
 *   5. an include whose target errs is treated as not matching, where the
 *      §5.2 table says temperror and permerror propagate (and none is a
 *      permerror);
 *   6. "exists:" with an empty domain-spec is accepted (§5.7, §7.1).
 * Working around these would mean parsing every record ourselves anyway
 * (to count terms across includes, to move redirect, to reject empty
 * exists:), re-expanding macros ourselves, and wrapping libspf2's own DNS
 * layer to count void answers and to feed it pdns.h. That is most of
 * check_host() written beside libspf2 and then reconciled with it. The
 * project rule is that when working around libspf2 grows more complex
 * than evaluating those parts ourselves, we evaluate them ourselves; here
 * that is every part, so this file is the whole evaluator, written from
 * RFC 7208 and checked against the RFC's own examples and against pyspf
 * (tests/spf/, with pyspf's own deviations documented there).
 *
 * Owns: nothing beyond one call. An evaluation context lives on the
 * caller's stack; DNS answers are freed before each function returns.
 *
 * SECURITY: untrusted bytes arrive from the SMTP peer (HELO argument,
 * reverse-path) and from DNS (SPF and explanation records, MX and PTR
 * names; the PTR zone belongs to whoever owns the client address). All of
 * it is handled as (ptr, len) and bounded: a record is syntax-checked in
 * full before any term is evaluated (§4.6), names built by macros are cut
 * to 253 octets (§7.3) and checked before they are queried, and the work
 * one evaluation can cause is capped by §4.6.4 (10 DNS terms, 10 MX or PTR
 * names per term, 2 void lookups), which also bounds the recursion depth
 * through include and redirect to 11 frames.
 *
 * Interpretations where RFC 7208 leaves a choice (each is tested):
 *   - a "void lookup" is one DNS query made for a term (a, mx and its
 *     address lookups, ptr and its address lookups, exists, %{p}) that
 *     answers NXDOMAIN or no records; exp= lookups never count (§6.2
 *     happens after the result);
 *   - mx and ptr look up every name first (as §5.4 and §5.5 describe)
 *     and compare afterwards, so an error on a later name is not hidden by
 *     an earlier match;
 *   - a target name that is not a usable DNS name after expansion (empty
 *     label, label over 63 octets) makes a, mx, ptr and exists not match
 *     (the §4.8 choice), and makes include and redirect permerror (none
 *     via §4.3, then §5.2 / §6.1);
 *   - the macro letters c, r and t outside an explanation string are a
 *     syntax error (§7.2 "allowed only in exp text"), also in the value of
 *     an unknown modifier;
 *   - %{p} and the ptr mechanism skip names whose address lookup fails
 *     and treat a failed PTR lookup as no names (§5.5, §7.3).
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "spf.h"

/* ------------------------------------------------------------ characters */

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* ieq - case-insensitive comparison of (p, n) with the lowercase word w. */
static bool
ieq(const char *p, size_t n, const char *w)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (w[i] == '\0' || lower(p[i]) != w[i])
			return false;
	return w[n] == '\0';
}

/* in_domain - does the name a equal b, or end in "." b? Case-insensitive. */
static bool
in_domain(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b), i;

	if (nb == 0 || na < nb)
		return false;
	for (i = 0; i < nb; i++)
		if (lower(a[na - nb + i]) != lower(b[i]))
			return false;
	return na == nb || a[na - nb - 1] == '.';
}

/* ---------------------------------------------------------- text helpers */

/* copy_cut - copy (p, n) into dst[cap], ending in "..." if it is cut. */
static void
copy_cut(char *dst, size_t cap, const char *p, size_t n)
{
	if (cap == 0)
		return;
	if (n < cap) {
		memcpy(dst, p, n);
		dst[n] = '\0';
		return;
	}
	memcpy(dst, p, cap - 1);
	dst[cap - 1] = '\0';
	if (cap > 4)
		memcpy(dst + cap - 4, "...", 3);
}

/* printable - (p, n) made safe for a reason string: bytes outside
 * %x20-7E become \xNN, and the result is cut to fit out. */
static const char *
printable(char *out, size_t cap, const char *p, size_t n)
{
	size_t i, j = 0;

	for (i = 0; i < n && j + 5 < cap; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c > 0x7e || c == '\\')
			j += (size_t)snprintf(out + j, cap - j, "\\x%02x", c);
		else
			out[j++] = (char)c;
	}
	if (i < n && j + 4 <= cap) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
	return out;
}

/* ------------------------------------------------------------ addresses */

/* parse_ip4 - dotted quad as RFC 7208 §5.6 ip4-network: four qnum, no
 * leading zeros. */
static bool
parse_ip4(const char *p, size_t n, unsigned char out[4])
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		size_t start = i;
		unsigned v = 0;

		while (i < n && is_digit((unsigned char)p[i]) && i - start < 3)
			v = v * 10 + (unsigned)(p[i++] - '0');
		if (i == start || v > 255 || (p[start] == '0' && i - start > 1))
			return false;
		out[part] = (unsigned char)v;
		if (part < 3) {
			if (i >= n || p[i] != '.')
				return false;
			i++;
		}
	}
	return i == n;
}

/* parse_ip6 - RFC 4291 §2.2 text form (inet_pton does the work). */
static bool
parse_ip6(const char *p, size_t n, unsigned char out[16])
{
	char buf[64];
	size_t i;

	if (n == 0 || n >= sizeof(buf))
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!is_digit(c) && !(lower((char)c) >= 'a' &&
		    lower((char)c) <= 'f') && c != ':' && c != '.')
			return false;
		buf[i] = (char)c;
	}
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, out) == 1;
}

/* prefix_match - do the first bits bits of a and b agree? */
static bool
prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* ---------------------------------------------------------- domain names */

/*
 * domain_ok - RFC 7208 §4.3: a well-formed, multi-label domain name. A
 * final dot is allowed. Address literals ("[192.0.2.1]"), bytes outside
 * %x21-7E, empty or long labels and an all-numeric top label (an IPv4
 * address, RFC 3696 §2) are not domains.
 */
static bool
domain_ok(const char *p, size_t n)
{
	size_t i, label = 0, labels = 0, top_start = 0;
	bool top_numeric = true;

	if (n > 0 && p[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || p[0] == '[')
		return false;
	for (i = 0; i <= n; i++) {
		if (i == n || p[i] == '.') {
			if (label == 0 || label > 63)
				return false;
			labels++;
			label = 0;
			if (i < n)
				top_start = i + 1;
			continue;
		}
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
			return false;
		label++;
	}
	for (i = top_start; i < n; i++)
		if (!is_digit((unsigned char)p[i]))
			top_numeric = false;
	return labels >= 2 && !top_numeric;
}

/* qname_ok - a name we can put in a query: labels of 1..63 octets, no NUL,
 * at most 253 octets, no final dot (callers strip it). */
static bool
qname_ok(const char *p, size_t n)
{
	size_t i, label = 0;

	if (n == 0 || n > 253)
		return false;
	for (i = 0; i <= n; i++) {
		if (i == n || p[i] == '.') {
			if (label == 0 || label > 63)
				return false;
			label = 0;
		} else if (p[i] == '\0') {
			return false;
		} else {
			label++;
		}
	}
	return true;
}

/* toplabel_ok - RFC 7208 §7.1 toplabel: alphanumerics with at least one
 * letter, or an LDH label with a '-' that starts and ends alphanumeric. */
static bool
toplabel_ok(const char *p, size_t n)
{
	size_t i;
	bool alpha = false, dash = false;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '-')
			dash = true;
		else if (is_alpha(c))
			alpha = true;
		else if (!is_digit(c))
			return false;
	}
	if (dash)
		return is_alnum((unsigned char)p[0]) &&
		    is_alnum((unsigned char)p[n - 1]);
	return alpha;
}

/* ----------------------------------------------------------- evaluation */

#define WHY_MAX SPF_REASON_MAX

/* The evaluation context of one check_host() call tree. */
struct spf_eval {
	const struct pdns *dns;
	int family;			/* AF_INET (also when mapped), AF_INET6 */
	unsigned char ip[16];
	char ip_i[80];			/* %{i}: dotted quad or nibbles */
	char ip_c[80];			/* %{c}: for people */

	const char *sender;		/* <sender>: local "@" domain */
	size_t sender_len, local_len;	/* local part = sender[0, local) */
	const char *helo;
	size_t helo_len;
	const char *receiver;
	char now[24];

	unsigned terms, voids;		/* §4.6.4 counters */
	bool limits_off;		/* computing the explanation */

	bool ptr_done;			/* %{p}: names validated once */
	size_t nptr;
	char ptr_names[SPF_MAX_PTR_NAMES][SPF_DOMAIN_MAX];

	/* what decided */
	enum spf_res err;		/* when a term returned an exception */
	char why[WHY_MAX];
	char err_term[SPF_MECH_MAX];	/* the term being evaluated */
	char inner_term[SPF_MECH_MAX];	/* last non-include match */
	char inner_domain[SPF_DOMAIN_MAX];
	char top_term[SPF_MECH_MAX];	/* the match at include depth 0 */
	char top_domain[SPF_DOMAIN_MAX];
	char redirected_from[SPF_DOMAIN_MAX];
	char *explanation;		/* out->explanation */
};

/* fail_with - record an exception of a term and its reason. */
static void
fail_with(struct spf_eval *ev, enum spf_res res, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail_with(struct spf_eval *ev, enum spf_res res, const char *fmt, ...)
{
	va_list ap;
	int n;

	ev->err = res;
	va_start(ap, fmt);
	n = vsnprintf(ev->why, sizeof(ev->why), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(ev->why))
		memcpy(ev->why + sizeof(ev->why) - 4, "...", 4);
}

/* ----------------------------------------------------------------- terms */

enum tkind {
	T_ALL, T_INCLUDE, T_A, T_MX, T_PTR, T_IP4, T_IP6, T_EXISTS,
	T_REDIRECT, T_EXP, T_UNKNOWN,
};

/* The mechanisms' names (RFC 7208 §5), indexed by their enum tkind. */
static const char *const mech_names[] = {
	[T_ALL] = "all", [T_INCLUDE] = "include", [T_A] = "a", [T_MX] = "mx",
	[T_PTR] = "ptr", [T_IP4] = "ip4", [T_IP6] = "ip6",
	[T_EXISTS] = "exists",
};

struct term {
	enum tkind kind;
	enum spf_res qual;		/* for mechanisms */
	const char *text;		/* the whole term, in the record */
	size_t len;
	const char *spec;		/* domain-spec; NULL when absent */
	size_t spec_len;
	int cidr4, cidr6;		/* -1 when not given */
	unsigned char net[16];		/* ip4 / ip6 network */
};

static bool
is_mechanism(enum tkind k)
{
	return k <= T_EXISTS;
}

/* ---------------------------------------------------------------- macros */

#define ALLOW_CRT	0x01	/* c, r, t: explanation strings only */
#define ALLOW_SP	0x02	/* explain-string = *( macro-string / SP ) */

enum item { IT_LITERAL, IT_PERCENT, IT_SPACE, IT_URLSPACE, IT_MACRO };

struct macro {
	char letter;			/* lowercase */
	bool upper;			/* URL-escape the expansion */
	unsigned digits;		/* rightmost parts kept; 0: all */
	bool reverse;
	const char *delims;		/* NULL: split on "." */
	size_t ndelims;
	bool transform;			/* any transformer or delimiter */
};

/*
 * next_item - the item of a macro-string at p[i] (§7.1): one literal byte
 * or one macro-expand. Returns its length, or 0 with why set on a syntax
 * error.
 */
static size_t
next_item(const char *p, size_t n, size_t i, unsigned allow, enum item *it,
    struct macro *m, char *why, size_t whylen)
{
	static const char letters[] = "slodiphvcrt";
	static const char delims[] = ".-+,/_=";
	unsigned char c = (unsigned char)p[i];
	size_t j;

	if (c != '%') {
		if ((c >= 0x21 && c <= 0x7e) || (c == ' ' && (allow & ALLOW_SP))) {
			*it = IT_LITERAL;
			return 1;
		}
		snprintf(why, whylen, "byte 0x%02x not allowed in a "
		    "macro-string (RFC 7208 §7.1)", c);
		return 0;
	}
	if (i + 1 >= n) {
		snprintf(why, whylen, "'%%' at the end of a macro-string "
		    "(RFC 7208 §7.3)");
		return 0;
	}
	switch (p[i + 1]) {
	case '%':
		*it = IT_PERCENT;
		return 2;
	case '_':
		*it = IT_SPACE;
		return 2;
	case '-':
		*it = IT_URLSPACE;
		return 2;
	case '{':
		break;
	default:
		snprintf(why, whylen, "'%%' not followed by '{', '%%', '-' or "
		    "'_' (RFC 7208 §7.3)");
		return 0;
	}
	j = i + 2;
	if (j >= n || !is_alpha((unsigned char)p[j]) ||
	    strchr(letters, lower(p[j])) == NULL) {
		snprintf(why, whylen, "unknown macro letter in %%{...} "
		    "(RFC 7208 §7.2)");
		return 0;
	}
	memset(m, 0, sizeof(*m));
	m->letter = lower(p[j]);
	m->upper = p[j] >= 'A' && p[j] <= 'Z';
	if (strchr("crt", m->letter) && !(allow & ALLOW_CRT)) {
		snprintf(why, whylen, "macro %%{%c} is allowed only in "
		    "explanation text (RFC 7208 §7.2)", p[j]);
		return 0;
	}
	j++;
	if (j < n && is_digit((unsigned char)p[j])) {
		unsigned v = 0;

		while (j < n && is_digit((unsigned char)p[j])) {
			if (v < 100000)
				v = v * 10 + (unsigned)(p[j] - '0');
			j++;
		}
		if (v == 0) {
			snprintf(why, whylen, "macro transformer digit 0 "
			    "(RFC 7208 §7.3: it MUST be nonzero)");
			return 0;
		}
		m->digits = v;
		m->transform = true;
	}
	if (j < n && lower(p[j]) == 'r') {
		m->reverse = true;
		m->transform = true;
		j++;
	}
	m->delims = p + j;
	while (j < n && p[j] != '\0' && strchr(delims, p[j]) != NULL)
		j++;
	m->ndelims = (size_t)(p + j - m->delims);
	if (m->ndelims > 0)
		m->transform = true;
	else
		m->delims = NULL;
	if (j >= n || p[j] != '}') {
		snprintf(why, whylen, "malformed macro %%{...} "
		    "(RFC 7208 §7.1)");
		return 0;
	}
	*it = IT_MACRO;
	return j + 1 - i;
}

/* macro_string_ok - (p, n) is a macro-string (or explain-string). */
static bool
macro_string_ok(const char *p, size_t n, unsigned allow, char *why,
    size_t whylen)
{
	size_t i = 0, k;
	enum item it;
	struct macro m;

	while (i < n) {
		if ((k = next_item(p, n, i, allow, &it, &m, why, whylen)) == 0)
			return false;
		i += k;
	}
	return true;
}

/*
 * domain_spec_ok - §7.1 domain-spec = macro-string domain-end, where
 * domain-end is "." toplabel [ "." ] or a macro-expand.
 */
static bool
domain_spec_ok(const char *p, size_t n, char *why, size_t whylen)
{
	size_t i = 0, k, lit_start = 0, e, dot;
	enum item it = IT_LITERAL;
	struct macro m;

	if (n == 0) {
		snprintf(why, whylen, "empty domain-spec (RFC 7208 §7.1)");
		return false;
	}
	while (i < n) {
		if ((k = next_item(p, n, i, 0, &it, &m, why, whylen)) == 0)
			return false;
		i += k;
		if (it != IT_LITERAL)
			lit_start = i;
	}
	if (it != IT_LITERAL)
		return true;		/* ends with a macro-expand */
	e = n;
	if (p[e - 1] == '.')
		e--;
	for (dot = e; dot > lit_start && p[dot - 1] != '.'; dot--)
		;
	if (dot > lit_start && toplabel_ok(p + dot, e - dot))
		return true;
	snprintf(why, whylen, "domain-spec must end in a macro or in '.' and "
	    "a valid top label (RFC 7208 §7.1)");
	return false;
}

/*
 * A sink collects an expansion. Bytes before skip are only counted (the
 * last of them remembered); later bytes are stored while they fit.
 */
struct sink {
	char *buf;
	size_t cap;			/* including room for a NUL */
	size_t len, total, skip;
	bool cut;			/* bytes were dropped at the end */
};

static void
sink_put(struct sink *s, const char *p, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++, s->total++) {
		if (s->total < s->skip)
			continue;
		if (s->len + 1 < s->cap)
			s->buf[s->len++] = p[k];
		else
			s->cut = true;
	}
}

/* sink_put_value - bytes of a macro value, URL-escaped for uppercase
 * macros (§7.3: everything outside RFC 3986 "unreserved"). */
static void
sink_put_value(struct sink *s, const char *p, size_t n, bool escape)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k;

	if (!escape) {
		sink_put(s, p, n);
		return;
	}
	for (k = 0; k < n; k++) {
		unsigned char c = (unsigned char)p[k];
		char e[3];

		if (is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			sink_put(s, p + k, 1);
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		sink_put(s, e, 3);
	}
}

static bool
is_delim(const struct macro *m, char c)
{
	if (m->delims == NULL)
		return c == '.';
	return memchr(m->delims, c, m->ndelims) != NULL;
}

/*
 * emit_macro - §7.3 transformation: split the value on the delimiters,
 * reverse if asked, keep the rightmost digits parts, join with ".".
 * Leading, trailing and repeated delimiters give empty parts.
 */
static void
emit_macro(struct sink *s, const struct macro *m, const char *v, size_t vn)
{
	size_t parts = 1, keep, i, skip, end, pos, start;
	unsigned seen;

	if (!m->transform) {
		sink_put_value(s, v, vn, m->upper);
		return;
	}
	for (i = 0; i < vn; i++)
		if (is_delim(m, v[i]))
			parts++;
	keep = (m->digits == 0 || m->digits >= parts) ? parts : m->digits;
	if (!m->reverse) {
		/* parts [parts - keep, parts): skip the first ones */
		skip = parts - keep;
		for (i = 0, seen = 0; i < vn && seen < skip; i++)
			if (is_delim(m, v[i]))
				seen++;
		for (start = i; i <= vn; i++) {
			if (i == vn || is_delim(m, v[i])) {
				sink_put_value(s, v + start, i - start,
				    m->upper);
				if (i < vn)
					sink_put(s, ".", 1);
				start = i + 1;
			}
		}
		return;
	}
	/* reversed: the rightmost keep parts of the reversed list are the
	 * first keep parts of the value, last one first */
	for (end = 0, seen = 0; end < vn; end++)
		if (is_delim(m, v[end]) && ++seen == keep)
			break;
	pos = end;
	for (;;) {
		start = pos;
		while (start > 0 && !is_delim(m, v[start - 1]))
			start--;
		sink_put_value(s, v + start, pos - start, m->upper);
		if (start == 0)
			break;
		sink_put(s, ".", 1);
		pos = start - 1;
	}
}

static enum spf_res validate_ptrs(struct spf_eval *ev,
    char names[][SPF_DOMAIN_MAX], size_t *nnames);

/* macro_p - the value of %{p} for the current domain (§7.3). Returns
 * false when computing it exceeded the void-lookup limit. */
static bool
macro_p(struct spf_eval *ev, const char *domain, const char **v)
{
	size_t i;

	if (!ev->ptr_done) {
		if (validate_ptrs(ev, ev->ptr_names, &ev->nptr) != SPF_NONE)
			return false;
		ev->ptr_done = true;
	}
	*v = "unknown";
	if (ev->nptr == 0)
		return true;
	for (i = 0; i < ev->nptr; i++)
		if (strcasecmp(ev->ptr_names[i], domain) == 0) {
			*v = ev->ptr_names[i];
			return true;
		}
	for (i = 0; i < ev->nptr; i++)
		if (in_domain(ev->ptr_names[i], domain)) {
			*v = ev->ptr_names[i];
			return true;
		}
	*v = ev->ptr_names[0];
	return true;
}

/*
 * expand - run a (syntax-checked) macro-string into s, with domain as
 * %{d}. Returns false when %{p} hit a processing limit (ev->err set).
 */
static bool
expand(struct spf_eval *ev, const char *domain, const char *p, size_t n,
    unsigned allow, struct sink *s)
{
	size_t i = 0, k;
	enum item it;
	struct macro m;
	char why[8];

	while (i < n) {
		const char *v = "";
		size_t vn = (size_t)-1;	/* -1: NUL-terminated */

		k = next_item(p, n, i, allow, &it, &m, why, sizeof(why));
		if (k == 0)		/* checked before; cannot happen */
			return false;
		switch (it) {
		case IT_LITERAL:
			sink_put(s, p + i, 1);
			break;
		case IT_PERCENT:
			sink_put(s, "%", 1);
			break;
		case IT_SPACE:
			sink_put(s, " ", 1);
			break;
		case IT_URLSPACE:
			sink_put(s, "%20", 3);
			break;
		case IT_MACRO:
			switch (m.letter) {
			case 's':
				v = ev->sender;
				vn = ev->sender_len;
				break;
			case 'l':
				v = ev->sender;
				vn = ev->local_len;
				break;
			case 'o':
				v = ev->sender + ev->local_len + 1;
				vn = ev->sender_len - ev->local_len - 1;
				break;
			case 'd':
				v = domain;
				break;
			case 'i':
				v = ev->ip_i;
				break;
			case 'p':
				if (!macro_p(ev, domain, &v))
					return false;
				break;
			case 'v':
				v = ev->family == AF_INET ? "in-addr" : "ip6";
				break;
			case 'h':
				v = ev->helo;
				vn = ev->helo_len;
				break;
			case 'c':
				v = ev->ip_c;
				break;
			case 'r':
				v = ev->receiver;
				break;
			case 't':
				v = ev->now;
				break;
			}
			if (vn == (size_t)-1)
				vn = strlen(v);
			emit_macro(s, &m, v, vn);
			break;
		}
		i += k;
	}
	return true;
}

/*
 * expand_name - a domain-spec made into a query name (§4.8, §7.3): a final
 * dot dropped, then whole labels dropped from the left until at most 253
 * octets remain. name gets "" when the result is not a usable name.
 * Returns false when expansion itself failed (ev->err set).
 */
static bool
expand_name(struct spf_eval *ev, const char *domain, const char *spec,
    size_t spec_len, char name[SPF_DOMAIN_MAX])
{
	char win[640];
	struct sink s;
	size_t total, w, j;

	name[0] = '\0';
	memset(&s, 0, sizeof(s));
	s.skip = (size_t)-1;
	if (!expand(ev, domain, spec, spec_len, 0, &s))
		return false;
	total = s.total;
	memset(&s, 0, sizeof(s));
	s.buf = win;
	s.cap = sizeof(win);
	s.skip = total > sizeof(win) - 1 ? total - (sizeof(win) - 1) : 0;
	if (!expand(ev, domain, spec, spec_len, 0, &s))
		return false;
	w = s.len;
	if (w > 0 && win[w - 1] == '.') {
		w--;
		total--;
	}
	j = 0;
	if (total > 253) {
		/* the window is longer than 254, so the cut is inside it */
		for (j = w - 253; j < w && win[j - 1] != '.'; j++)
			;
	}
	if (!qname_ok(win + j, w - j))
		return true;
	memcpy(name, win + j, w - j);
	name[w - j] = '\0';
	return true;
}

/* ------------------------------------------------------------ term syntax */

/* cidr_ok - §5.6 ip4-cidr-length / ip6-cidr-length digits. */
static bool
cidr_ok(const char *p, size_t n, unsigned max, int *out)
{
	unsigned v = 0;
	size_t i;

	if (n == 0 || n > (max > 99 ? 3u : 2u) || (p[0] == '0' && n > 1))
		return false;
	for (i = 0; i < n; i++) {
		if (!is_digit((unsigned char)p[i]))
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v > max)
		return false;
	*out = (int)v;
	return true;
}

/* trailing_cidr - if p[0, *n) ends in "/" DIGITS, the index of the '/'. */
static bool
trailing_cidr(const char *p, size_t n, size_t *slash)
{
	size_t d = n;

	while (d > 0 && is_digit((unsigned char)p[d - 1]))
		d--;
	if (d == n || d == 0 || p[d - 1] != '/')
		return false;
	*slash = d - 1;
	return true;
}

/*
 * parse_term - one term (§4.6.1, §12). Mechanisms and modifiers are told
 * apart as §4.6.1 says: a name followed by '=' is a modifier.
 */
static bool
parse_term(const char *p, size_t n, struct term *t, char *why, size_t whylen)
{
	char shown[96];
	size_t i = 0, j, rn, slash;
	int k;
	const char *r;

	memset(t, 0, sizeof(*t));
	t->text = p;
	t->len = n;
	t->cidr4 = t->cidr6 = -1;
	t->qual = SPF_PASS;

	/* modifier: name "=" ... */
	if (is_alpha((unsigned char)p[0])) {
		for (j = 1; j < n && (is_alnum((unsigned char)p[j]) ||
		    p[j] == '-' || p[j] == '_' || p[j] == '.'); j++)
			;
		if (j < n && p[j] == '=') {
			const char *v = p + j + 1;
			size_t vn = n - j - 1;
			char inner[160];

			if (ieq(p, j, "redirect"))
				t->kind = T_REDIRECT;
			else if (ieq(p, j, "exp"))
				t->kind = T_EXP;
			else
				t->kind = T_UNKNOWN;
			if (t->kind == T_UNKNOWN) {
				if (macro_string_ok(v, vn, 0, inner,
				    sizeof(inner)))
					return true;
			} else {
				t->spec = v;
				t->spec_len = vn;
				if (domain_spec_ok(v, vn, inner, sizeof(inner)))
					return true;
			}
			snprintf(why, whylen, "\"%s\": %s",
			    printable(shown, sizeof(shown), p, n), inner);
			return false;
		}
	}

	switch (p[0]) {
	case '+': t->qual = SPF_PASS; i = 1; break;
	case '-': t->qual = SPF_FAIL; i = 1; break;
	case '~': t->qual = SPF_SOFTFAIL; i = 1; break;
	case '?': t->qual = SPF_NEUTRAL; i = 1; break;
	}
	for (j = i; j < n && p[j] != ':' && p[j] != '/'; j++)
		;
	t->kind = T_UNKNOWN;
	for (k = T_ALL; k <= T_EXISTS; k++)
		if (ieq(p + i, j - i, mech_names[k]))
			t->kind = (enum tkind)k;
	if (t->kind == T_UNKNOWN) {
		snprintf(why, whylen, "unknown mechanism \"%s\" (RFC 7208 "
		    "§4.6.1)", printable(shown, sizeof(shown), p, n));
		return false;
	}
	r = p + j;
	rn = n - j;

	switch (t->kind) {
	case T_ALL:
		if (rn == 0)
			return true;
		break;
	case T_INCLUDE:
	case T_EXISTS:
	case T_PTR:
		if (rn == 0 && t->kind == T_PTR)
			return true;
		if (rn == 0 || r[0] != ':')
			break;
		t->spec = r + 1;
		t->spec_len = rn - 1;
		if (domain_spec_ok(t->spec, t->spec_len, why, whylen))
			return true;
		goto bad_spec;
	case T_A:
	case T_MX:
		if (trailing_cidr(r, rn, &slash)) {
			if (slash > 0 && r[slash - 1] == '/') {
				/* "//" ip6-cidr-length, maybe after an ip4 one */
				if (!cidr_ok(r + slash + 1, rn - slash - 1,
				    128, &t->cidr6))
					goto bad_cidr;
				rn = slash - 1;
				if (trailing_cidr(r, rn, &slash)) {
					if (!cidr_ok(r + slash + 1,
					    rn - slash - 1, 32, &t->cidr4))
						goto bad_cidr;
					rn = slash;
				}
			} else {
				if (!cidr_ok(r + slash + 1, rn - slash - 1,
				    32, &t->cidr4))
					goto bad_cidr;
				rn = slash;
			}
		}
		if (rn == 0)
			return true;
		if (r[0] != ':')
			break;
		t->spec = r + 1;
		t->spec_len = rn - 1;
		if (domain_spec_ok(t->spec, t->spec_len, why, whylen))
			return true;
		goto bad_spec;
	case T_IP4:
	case T_IP6:
		if (rn < 2 || r[0] != ':')
			break;
		r++;
		rn--;
		for (slash = 0; slash < rn && r[slash] != '/'; slash++)
			;
		if (t->kind == T_IP4 ? !parse_ip4(r, slash, t->net) :
		    !parse_ip6(r, slash, t->net)) {
			snprintf(why, whylen, "\"%s\": not an %s network "
			    "(RFC 7208 §5.6)", printable(shown, sizeof(shown),
			    p, n), t->kind == T_IP4 ? "IPv4" : "IPv6");
			return false;
		}
		if (slash < rn && !cidr_ok(r + slash + 1, rn - slash - 1,
		    t->kind == T_IP4 ? 32 : 128,
		    t->kind == T_IP4 ? &t->cidr4 : &t->cidr6))
			goto bad_cidr;
		return true;
	default:
		break;
	}
	snprintf(why, whylen, "\"%s\" does not follow the syntax of %s "
	    "(RFC 7208 §5)", printable(shown, sizeof(shown), p, n),
	    mech_names[t->kind]);
	return false;
bad_cidr:
	snprintf(why, whylen, "\"%s\": bad CIDR prefix length (RFC 7208 "
	    "§5.6)", printable(shown, sizeof(shown), p, n));
	return false;
bad_spec:
	{
		char inner[160];

		snprintf(inner, sizeof(inner), "%s", why);
		snprintf(why, whylen, "\"%s\": %s",
		    printable(shown, sizeof(shown), p, n), inner);
	}
	return false;
}

/* next_term - the next SP-separated term of a record from *pos. */
static bool
next_term(const char *rec, size_t len, size_t *pos, const char **tp,
    size_t *tn)
{
	size_t i = *pos, start;

	while (i < len && rec[i] == ' ')
		i++;
	if (i >= len) {
		*pos = i;
		return false;
	}
	start = i;
	while (i < len && rec[i] != ' ')
		i++;
	*tp = rec + start;
	*tn = i - start;
	*pos = i;
	return true;
}

/* is_spf_record - §4.5: begins with exactly "v=spf1", then SP or end. */
static bool
is_spf_record(const char *p, size_t n)
{
	return n >= 6 && ieq(p, 6, "v=spf1") && (n == 6 || p[6] == ' ');
}

/* --------------------------------------------------------------- lookups */

enum lk { LK_OK, LK_VOID, LK_TEMP, LK_LIMIT };

/*
 * lookup - one query made for a term. A void answer (NXDOMAIN, no records)
 * is counted against §4.6.4 and is LK_LIMIT (ev->err permerror) once there
 * are too many; other DNS errors are LK_TEMP (ev->err temperror, which
 * the caller may ignore). The answer is always initialised.
 */
static enum lk
lookup(struct spf_eval *ev, const char *name, enum pdns_type type,
    struct pdns_answer *a)
{
	static const char *const tn[] = { [PDNS_A] = "A", [PDNS_PTR] = "PTR",
	    [PDNS_MX] = "MX", [PDNS_TXT] = "TXT", [PDNS_AAAA] = "AAAA" };
	enum pdns_rc rc = pdns_lookup(ev->dns, name, type, a);
	size_t i, n = 0;

	if (rc == PDNS_OK)
		for (i = 0; i < a->n; i++)
			if (a->rr[i].type == type)
				n++;
	if (rc == PDNS_OK && n > 0)
		return LK_OK;
	if (rc == PDNS_OK || rc == PDNS_NXDOMAIN || rc == PDNS_NODATA) {
		ev->voids++;
		if (!ev->limits_off && ev->voids > SPF_MAX_VOID_LOOKUPS) {
			fail_with(ev, SPF_PERMERROR, "more than %d void DNS "
			    "lookups, the last %s %s (RFC 7208 §4.6.4)",
			    SPF_MAX_VOID_LOOKUPS, tn[type], name);
			return LK_LIMIT;
		}
		return LK_VOID;
	}
	fail_with(ev, SPF_TEMPERROR, "%s looking up %s %s",
	    pdns_rc_str(rc), tn[type], name);
	return LK_TEMP;
}

/* addr_type - A for an IPv4 client, AAAA for IPv6 (§5). */
static enum pdns_type
addr_type(const struct spf_eval *ev)
{
	return ev->family == AF_INET ? PDNS_A : PDNS_AAAA;
}

/* addr_match - does an answer hold an address in the client's prefix? */
static bool
addr_match(const struct spf_eval *ev, const struct pdns_answer *a,
    const struct term *t)
{
	enum pdns_type type = addr_type(ev);
	unsigned bits;
	size_t i;

	if (type == PDNS_A)
		bits = t->cidr4 >= 0 ? (unsigned)t->cidr4 : 32;
	else
		bits = t->cidr6 >= 0 ? (unsigned)t->cidr6 : 128;
	for (i = 0; i < a->n; i++)
		if (a->rr[i].type == type &&
		    prefix_match(a->rr[i].addr, ev->ip, bits))
			return true;
	return false;
}

/*
 * validate_ptrs - §5.5: the client's PTR names whose addresses include the
 * client, looking at the first 10 names only. A failed PTR lookup gives no
 * names; a name whose address lookup fails is skipped. Returns SPF_NONE,
 * or SPF_PERMERROR when the void-lookup limit was exceeded.
 */
static enum spf_res
validate_ptrs(struct spf_eval *ev, char names[][SPF_DOMAIN_MAX],
    size_t *nnames)
{
	static const char hex[] = "0123456789abcdef";
	char rev[80];
	struct pdns_answer pa, aa;
	enum pdns_type type = addr_type(ev);
	size_t i, k, seen = 0, bytes = ev->family == AF_INET ? 4 : 16;
	enum lk lk;
	int j = 0;

	*nnames = 0;
	if (ev->family == AF_INET)
		j = snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa",
		    ev->ip[3], ev->ip[2], ev->ip[1], ev->ip[0]);
	else {
		for (i = 16; i > 0; i--)
			j += snprintf(rev + j, sizeof(rev) - (size_t)j,
			    "%c.%c.", hex[ev->ip[i - 1] & 15],
			    hex[ev->ip[i - 1] >> 4]);
		snprintf(rev + j, sizeof(rev) - (size_t)j, "ip6.arpa");
	}
	lk = lookup(ev, rev, PDNS_PTR, &pa);
	if (lk != LK_OK) {
		pdns_answer_clear(&pa);
		/* §5.5: a DNS error here is "no match", not temperror */
		return lk == LK_LIMIT ? SPF_PERMERROR : SPF_NONE;
	}
	for (i = 0; i < pa.n && seen < SPF_MAX_PTR_NAMES; i++) {
		const char *name = pa.rr[i].name;
		bool ok = false;

		if (pa.rr[i].type != PDNS_PTR)
			continue;
		seen++;
		if (name == NULL || !qname_ok(name, strlen(name)))
			continue;
		lk = lookup(ev, name, type, &aa);
		if (lk == LK_LIMIT) {
			pdns_answer_clear(&aa);
			pdns_answer_clear(&pa);
			return SPF_PERMERROR;
		}
		for (k = 0; lk == LK_OK && k < aa.n; k++)
			if (aa.rr[k].type == type &&
			    memcmp(aa.rr[k].addr, ev->ip, bytes) == 0)
				ok = true;
		pdns_answer_clear(&aa);
		if (ok)
			snprintf(names[(*nnames)++], SPF_DOMAIN_MAX, "%s",
			    name);
	}
	pdns_answer_clear(&pa);
	return SPF_NONE;
}

/* ------------------------------------------------------------ check_host */

enum mres { M_NOMATCH, M_MATCH, M_ERROR };

static enum spf_res check_host(struct spf_eval *ev, const char *domain,
    unsigned depth, char *why_none, size_t why_none_len);

static bool
count_term(struct spf_eval *ev)
{
	if (++ev->terms > SPF_MAX_DNS_TERMS) {
		fail_with(ev, SPF_PERMERROR, "too many DNS lookups: more than "
		    "%d DNS-querying terms (RFC 7208 §4.6.4)",
		    SPF_MAX_DNS_TERMS);
		return false;
	}
	return true;
}

/* target - the <target-name> of a mechanism: its domain-spec expanded, or
 * the current domain. */
static bool
target(struct spf_eval *ev, const char *domain, const struct term *t,
    char name[SPF_DOMAIN_MAX])
{
	if (t->spec == NULL) {
		snprintf(name, SPF_DOMAIN_MAX, "%s", domain);
		return true;
	}
	return expand_name(ev, domain, t->spec, t->spec_len, name);
}

static int
mx_order(const void *a, const void *b)
{
	const struct pdns_rr *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

/* eval_mech - one mechanism against the client (§5). */
static enum mres
eval_mech(struct spf_eval *ev, const char *domain, const struct term *t,
    unsigned depth)
{
	char name[SPF_DOMAIN_MAX], inner[WHY_MAX];
	struct pdns_answer a, b;
	enum spf_res r;
	enum lk lk;
	size_t i, n;
	bool match;

	switch (t->kind) {
	case T_ALL:
		return M_MATCH;
	case T_IP4:
		return ev->family == AF_INET && prefix_match(t->net, ev->ip,
		    t->cidr4 >= 0 ? (unsigned)t->cidr4 : 32) ?
		    M_MATCH : M_NOMATCH;
	case T_IP6:
		return ev->family == AF_INET6 && prefix_match(t->net, ev->ip,
		    t->cidr6 >= 0 ? (unsigned)t->cidr6 : 128) ?
		    M_MATCH : M_NOMATCH;
	default:
		break;
	}

	if (!count_term(ev) || !target(ev, domain, t, name))
		return M_ERROR;

	switch (t->kind) {
	case T_INCLUDE:
		if (name[0] == '\0') {
			fail_with(ev, SPF_PERMERROR, "include target is not a "
			    "valid domain name (RFC 7208 §4.3, §5.2)");
			return M_ERROR;
		}
		inner[0] = '\0';
		r = check_host(ev, name, depth + 1, inner, sizeof(inner));
		switch (r) {
		case SPF_PASS:
			return M_MATCH;
		case SPF_FAIL:
		case SPF_SOFTFAIL:
		case SPF_NEUTRAL:
			return M_NOMATCH;
		case SPF_NONE:
			fail_with(ev, SPF_PERMERROR, "include of %s gives none "
			    "(%s), a permerror (RFC 7208 §5.2)", name, inner);
			return M_ERROR;
		default:
			ev->err = r;	/* temperror, permerror: as they are */
			return M_ERROR;
		}
	case T_A:
		if (name[0] == '\0')
			return M_NOMATCH;
		lk = lookup(ev, name, addr_type(ev), &a);
		match = lk == LK_OK && addr_match(ev, &a, t);
		pdns_answer_clear(&a);
		return lk >= LK_TEMP ? M_ERROR : match ? M_MATCH : M_NOMATCH;
	case T_MX:
		if (name[0] == '\0')
			return M_NOMATCH;
		lk = lookup(ev, name, PDNS_MX, &a);
		if (lk != LK_OK) {
			pdns_answer_clear(&a);
			return lk >= LK_TEMP ? M_ERROR : M_NOMATCH;
		}
		for (i = 0, n = 0; i < a.n; i++)
			if (a.rr[i].type == PDNS_MX)
				n++;
		if (n > SPF_MAX_MX_NAMES) {
			fail_with(ev, SPF_PERMERROR, "%zu MX records for %s, "
			    "more than %d (RFC 7208 §4.6.4)", n, name,
			    SPF_MAX_MX_NAMES);
			pdns_answer_clear(&a);
			return M_ERROR;
		}
		qsort(a.rr, a.n, sizeof(a.rr[0]), mx_order);
		match = false;
		for (i = 0; i < a.n; i++) {
			const char *mx = a.rr[i].name;

			if (a.rr[i].type != PDNS_MX || mx == NULL ||
			    !qname_ok(mx, strlen(mx)))
				continue;
			lk = lookup(ev, mx, addr_type(ev), &b);
			if (lk == LK_OK && addr_match(ev, &b, t))
				match = true;
			pdns_answer_clear(&b);
			if (lk >= LK_TEMP) {
				pdns_answer_clear(&a);
				return M_ERROR;
			}
		}
		pdns_answer_clear(&a);
		return match ? M_MATCH : M_NOMATCH;
	case T_PTR: {
		char names[SPF_MAX_PTR_NAMES][SPF_DOMAIN_MAX];

		if (validate_ptrs(ev, names, &n) != SPF_NONE)
			return M_ERROR;
		if (name[0] == '\0')
			return M_NOMATCH;
		for (i = 0; i < n; i++)
			if (in_domain(names[i], name))
				return M_MATCH;
		return M_NOMATCH;
	}
	case T_EXISTS:
		if (name[0] == '\0')
			return M_NOMATCH;
		lk = lookup(ev, name, PDNS_A, &a);
		pdns_answer_clear(&a);
		return lk >= LK_TEMP ? M_ERROR : lk == LK_OK ? M_MATCH :
		    M_NOMATCH;
	default:
		return M_NOMATCH;
	}
}

/*
 * explain - §6.2: the explanation for a fail decided in this record.
 * Problems of any kind mean no explanation; lookups here do not count.
 */
static void
explain(struct spf_eval *ev, const char *domain, const struct term *exp)
{
	char name[SPF_DOMAIN_MAX], why[WHY_MAX];
	struct pdns_answer a;
	struct sink s;
	const char *txt = NULL;
	size_t i, n = 0, txt_len = 0;
	enum spf_res saved = ev->err;

	ev->limits_off = true;
	if (!expand_name(ev, domain, exp->spec, exp->spec_len, name) ||
	    name[0] == '\0')
		goto out;
	if (pdns_lookup(ev->dns, name, PDNS_TXT, &a) == PDNS_OK) {
		for (i = 0; i < a.n; i++)
			if (a.rr[i].type == PDNS_TXT) {
				n++;
				txt = a.rr[i].txt;
				txt_len = a.rr[i].txt_len;
			}
		if (n == 1 && macro_string_ok(txt, txt_len,
		    ALLOW_CRT | ALLOW_SP, why, sizeof(why))) {
			memset(&s, 0, sizeof(s));
			s.buf = ev->explanation;
			s.cap = SPF_EXP_MAX;
			if (!expand(ev, domain, txt, txt_len,
			    ALLOW_CRT | ALLOW_SP, &s))
				s.len = 0;
			/* §6.2: US-ASCII only; peer bytes from %{l} and
			 * friends are replaced */
			for (i = 0; i < s.len; i++)
				if ((unsigned char)s.buf[i] < 0x20 ||
				    (unsigned char)s.buf[i] > 0x7e)
					s.buf[i] = '?';
			s.buf[s.len] = '\0';
		}
	}
	pdns_answer_clear(&a);
out:
	ev->limits_off = false;
	ev->err = saved;
}

/*
 * check_host - RFC 7208 §4 for one <domain>. depth counts includes (0: the
 * record whose result is the final one, also through redirects). For a
 * none result, why_none says why. Exceptions leave their reason in
 * ev->why.
 */
static enum spf_res
check_host(struct spf_eval *ev, const char *domain, unsigned depth,
    char *why_none, size_t why_none_len)
{
	char why[WHY_MAX], shown[SPF_DOMAIN_MAX + 8], name[SPF_DOMAIN_MAX];
	char inner[WHY_MAX];
	struct pdns_answer ans;
	struct term t, redirect, exp;
	const char *rec = NULL, *tp;
	size_t i, rec_len = 0, nrec = 0, pos, tn;
	bool has_all = false, has_redirect = false, has_exp = false;
	enum pdns_rc rc;
	enum spf_res r;
	enum mres m;

	if (!domain_ok(domain, strlen(domain))) {
		snprintf(why_none, why_none_len, "\"%s\" is not a valid "
		    "multi-label domain name (RFC 7208 §4.3)",
		    printable(shown, sizeof(shown), domain, strlen(domain)));
		return SPF_NONE;
	}

	/* §4.4, §4.5: the TXT records, exactly one of them "v=spf1" */
	rc = pdns_lookup(ev->dns, domain, PDNS_TXT, &ans);
	switch (rc) {
	case PDNS_OK:
		break;
	case PDNS_NXDOMAIN:
		snprintf(why_none, why_none_len, "%s does not exist "
		    "(NXDOMAIN)", domain);
		pdns_answer_clear(&ans);
		return SPF_NONE;
	case PDNS_NODATA:
		snprintf(why_none, why_none_len, "no SPF record at %s (no TXT "
		    "records)", domain);
		pdns_answer_clear(&ans);
		return SPF_NONE;
	default:
		fail_with(ev, SPF_TEMPERROR, "%s looking up TXT %s (RFC 7208 "
		    "§4.4)", pdns_rc_str(rc), domain);
		ev->err_term[0] = '\0';
		pdns_answer_clear(&ans);
		return SPF_TEMPERROR;
	}
	for (i = 0; i < ans.n; i++)
		if (ans.rr[i].type == PDNS_TXT &&
		    is_spf_record(ans.rr[i].txt, ans.rr[i].txt_len)) {
			nrec++;
			rec = ans.rr[i].txt;
			rec_len = ans.rr[i].txt_len;
		}
	if (nrec == 0) {
		snprintf(why_none, why_none_len, "no SPF record at %s",
		    domain);
		pdns_answer_clear(&ans);
		return SPF_NONE;
	}
	if (nrec > 1) {
		fail_with(ev, SPF_PERMERROR, "%zu SPF records at %s, one "
		    "allowed (RFC 7208 §4.5)", nrec, domain);
		ev->err_term[0] = '\0';
		pdns_answer_clear(&ans);
		return SPF_PERMERROR;
	}

	/* §4.6: the whole record is syntax-checked before evaluation */
	memset(&redirect, 0, sizeof(redirect));
	memset(&exp, 0, sizeof(exp));
	for (pos = 6; next_term(rec, rec_len, &pos, &tp, &tn); ) {
		if (!parse_term(tp, tn, &t, why, sizeof(why))) {
			fail_with(ev, SPF_PERMERROR, "syntax error in the SPF "
			    "record of %s: %s", domain, why);
			copy_cut(ev->err_term, sizeof(ev->err_term), tp, tn);
			pdns_answer_clear(&ans);
			return SPF_PERMERROR;
		}
		if (t.kind == T_ALL)
			has_all = true;
		if ((t.kind == T_REDIRECT && has_redirect) ||
		    (t.kind == T_EXP && has_exp)) {
			fail_with(ev, SPF_PERMERROR, "%s= appears twice in "
			    "the SPF record of %s (RFC 7208 §6)",
			    t.kind == T_EXP ? "exp" : "redirect", domain);
			copy_cut(ev->err_term, sizeof(ev->err_term), tp, tn);
			pdns_answer_clear(&ans);
			return SPF_PERMERROR;
		}
		if (t.kind == T_REDIRECT) {
			has_redirect = true;
			redirect = t;
		}
		if (t.kind == T_EXP) {
			has_exp = true;
			exp = t;
		}
	}

	/* §4.6.2: mechanisms left to right */
	for (pos = 6; next_term(rec, rec_len, &pos, &tp, &tn); ) {
		(void)parse_term(tp, tn, &t, why, sizeof(why));
		if (!is_mechanism(t.kind))
			continue;
		m = eval_mech(ev, domain, &t, depth);
		if (m == M_ERROR) {
			if (ev->err_term[0] == '\0')
				copy_cut(ev->err_term, sizeof(ev->err_term),
				    tp, tn);
			r = ev->err;
			pdns_answer_clear(&ans);
			return r;
		}
		if (m == M_NOMATCH)
			continue;
		if (t.kind != T_INCLUDE) {
			copy_cut(ev->inner_term, sizeof(ev->inner_term), tp,
			    tn);
			snprintf(ev->inner_domain, sizeof(ev->inner_domain),
			    "%s", domain);
		}
		if (depth == 0) {
			copy_cut(ev->top_term, sizeof(ev->top_term), tp, tn);
			snprintf(ev->top_domain, sizeof(ev->top_domain), "%s",
			    domain);
			if (t.qual == SPF_FAIL && has_exp)
				explain(ev, domain, &exp);
		}
		pdns_answer_clear(&ans);
		return t.qual;
	}

	/* §6.1: redirect only when nothing matched and there is no "all" */
	if (has_redirect && !has_all) {
		char rterm[SPF_MECH_MAX];
		bool ok;

		/* the record is freed before recursing: keep what we need */
		copy_cut(rterm, sizeof(rterm), redirect.text, redirect.len);
		ok = count_term(ev) && expand_name(ev, domain, redirect.spec,
		    redirect.spec_len, name);
		pdns_answer_clear(&ans);
		if (ok && (name[0] == '\0' || !domain_ok(name, strlen(name)))) {
			fail_with(ev, SPF_PERMERROR, "redirect target of %s "
			    "is not a valid domain name (RFC 7208 §6.1)",
			    domain);
			ok = false;
		}
		if (!ok) {
			snprintf(ev->err_term, sizeof(ev->err_term), "%s",
			    rterm);
			return ev->err;
		}
		if (depth == 0 && ev->redirected_from[0] == '\0')
			snprintf(ev->redirected_from,
			    sizeof(ev->redirected_from), "%s", domain);
		inner[0] = '\0';
		r = check_host(ev, name, depth, inner, sizeof(inner));
		if (r == SPF_NONE) {
			fail_with(ev, SPF_PERMERROR, "redirect from %s: %s "
			    "(RFC 7208 §6.1)", domain, inner);
			snprintf(ev->err_term, sizeof(ev->err_term), "%s",
			    rterm);
			return SPF_PERMERROR;
		}
		return r;
	}

	/* §4.7 */
	if (depth == 0) {
		snprintf(ev->top_term, sizeof(ev->top_term),
		    "default (no match)");
		snprintf(ev->top_domain, sizeof(ev->top_domain), "%s", domain);
	}
	pdns_answer_clear(&ans);
	return SPF_NEUTRAL;
}

/* ------------------------------------------------------------ public API */

const char *
spf_res_str(enum spf_res r)
{
	switch (r) {
	case SPF_NONE:		return "none";
	case SPF_NEUTRAL:	return "neutral";
	case SPF_PASS:		return "pass";
	case SPF_FAIL:		return "fail";
	case SPF_SOFTFAIL:	return "softfail";
	case SPF_TEMPERROR:	return "temperror";
	case SPF_PERMERROR:	return "permerror";
	}
	return "permerror";
}

const char *
spf_identity_str(enum spf_identity id)
{
	return id == SPF_ID_HELO ? "helo" : "mailfrom";
}

/* client_ip - the request's address into ev; false if it does not parse. */
static bool
client_ip(struct spf_eval *ev, const struct spf_request *req)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0xff, 0xff };
	static const char hex[] = "0123456789abcdef";
	unsigned char a[16];
	size_t i, j;

	if (req->ip != NULL) {
		if (parse_ip4(req->ip, req->ip_len, a))
			ev->family = AF_INET;
		else if (parse_ip6(req->ip, req->ip_len, a))
			ev->family = AF_INET6;
		else
			return false;
	} else if (req->family == AF_INET || req->family == AF_INET6) {
		ev->family = req->family;
		memcpy(a, req->addr, req->family == AF_INET ? 4 : 16);
	} else {
		return false;
	}
	if (ev->family == AF_INET6 && memcmp(a, mapped, 12) == 0) {
		ev->family = AF_INET;
		memmove(a, a + 12, 4);
	}
	memset(ev->ip, 0, sizeof(ev->ip));
	if (ev->family == AF_INET) {
		memcpy(ev->ip, a, 4);
		snprintf(ev->ip_i, sizeof(ev->ip_i), "%u.%u.%u.%u", a[0],
		    a[1], a[2], a[3]);
		snprintf(ev->ip_c, sizeof(ev->ip_c), "%s", ev->ip_i);
		return true;
	}
	memcpy(ev->ip, a, 16);
	for (i = 0, j = 0; i < 16; i++) {
		ev->ip_i[j++] = hex[a[i] >> 4];
		ev->ip_i[j++] = '.';
		ev->ip_i[j++] = hex[a[i] & 15];
		ev->ip_i[j++] = '.';
	}
	ev->ip_i[j - 1] = '\0';
	if (inet_ntop(AF_INET6, a, ev->ip_c, sizeof(ev->ip_c)) == NULL)
		return false;
	return true;
}

/* has_ctl - control characters (and NUL) that no SMTP argument carries. */
static bool
has_ctl(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] == 0x7f)
			return true;
	return false;
}

/* finish - out->reason and out->mechanism from what decided. */
static void
finish(struct spf_eval *ev, struct spf_result *out, enum spf_res r,
    const char *why_none)
{
	char via[SPF_DOMAIN_MAX + 32] = "";
	int n = 0;

	out->result = r;
	out->dns_terms = ev->terms;
	out->void_lookups = ev->voids;
	if (ev->redirected_from[0] != '\0')
		snprintf(via, sizeof(via), " (redirected from %s)",
		    ev->redirected_from);
	switch (r) {
	case SPF_NONE:
		n = snprintf(out->reason, sizeof(out->reason), "%s", why_none);
		break;
	case SPF_TEMPERROR:
	case SPF_PERMERROR:
		snprintf(out->mechanism, sizeof(out->mechanism), "%s",
		    ev->err_term);
		n = snprintf(out->reason, sizeof(out->reason), "%s", ev->why);
		break;
	default:
		snprintf(out->mechanism, sizeof(out->mechanism), "%s",
		    ev->top_term);
		if (strcmp(ev->top_term, "default (no match)") == 0)
			n = snprintf(out->reason, sizeof(out->reason), "no "
			    "mechanism matched sender IP %s in %s%s; default "
			    "result neutral (RFC 7208 §4.7)", ev->ip_c,
			    ev->top_domain, via);
		else if (strcmp(ev->top_term, ev->inner_term) == 0 &&
		    strcmp(ev->top_domain, ev->inner_domain) == 0)
			n = snprintf(out->reason, sizeof(out->reason), "sender "
			    "IP %s matched %s in %s%s", ev->ip_c, ev->top_term,
			    ev->top_domain, via);
		else
			n = snprintf(out->reason, sizeof(out->reason), "sender "
			    "IP %s matched %s in %s, included by %s in %s%s",
			    ev->ip_c, ev->inner_term, ev->inner_domain,
			    ev->top_term, ev->top_domain, via);
		break;
	}
	if (n >= (int)sizeof(out->reason))
		memcpy(out->reason + sizeof(out->reason) - 4, "...", 4);
}

enum dkim_status
spf_check(const struct pdns *dns, const struct spf_request *req,
    struct spf_result *out)
{
	struct spf_eval *ev;
	char why_none[WHY_MAX] = "", shown[96];
	const char *helo, *from, *at = NULL, *dom, *what;
	size_t helo_len, from_len, local_len, dom_len, i;
	enum spf_res r;

	if (out == NULL)
		return DKIM_E_ARG;
	memset(out, 0, sizeof(*out));
	out->result = SPF_TEMPERROR;
	if (req == NULL) {
		snprintf(out->reason, sizeof(out->reason), "no request");
		return DKIM_E_ARG;
	}
	out->identity = req->identity;
	if ((ev = calloc(1, sizeof(*ev))) == NULL) {
		snprintf(out->reason, sizeof(out->reason), "out of memory");
		return DKIM_E_NOMEM;
	}
	ev->dns = dns;
	ev->explanation = out->explanation;
	if (!client_ip(ev, req)) {
		snprintf(out->reason, sizeof(out->reason), "client address "
		    "\"%s\" is not an IP address", req->ip ? printable(shown,
		    sizeof(shown), req->ip, req->ip_len) : "(none)");
		free(ev);
		return DKIM_E_ARG;
	}

	/* §2.3, §2.4, §4.3: <sender> and <domain> */
	helo = req->helo ? req->helo : "";
	helo_len = req->helo ? req->helo_len : 0;
	from = req->mail_from ? req->mail_from : "";
	from_len = req->mail_from ? req->mail_from_len : 0;
	if (req->identity == SPF_ID_HELO)
		what = "HELO";
	else if (from_len == 0)
		what = "null MAIL FROM, so HELO";
	else
		what = "MAIL FROM domain";
	if (req->identity == SPF_ID_HELO || from_len == 0) {
		from = helo;
		from_len = helo_len;
		local_len = 0;
		dom = helo;
	} else {
		for (i = from_len; i > 0; i--)
			if (from[i - 1] == '@') {
				at = from + i - 1;
				break;
			}
		local_len = at ? (size_t)(at - from) : 0;
		dom = at ? at + 1 : from;
	}
	dom_len = from_len - (size_t)(dom - from);
	if (from_len > SPF_SENDER_MAX || has_ctl(from, from_len)) {
		out->result = SPF_NONE;
		snprintf(out->reason, sizeof(out->reason), "%s identity is "
		    "longer than %d octets or holds control characters",
		    spf_identity_str(req->identity), SPF_SENDER_MAX);
		free(ev);
		return DKIM_OK;
	}
	if (dom_len > 0 && dom[dom_len - 1] == '.')
		dom_len--;	/* a final dot is allowed (§4.3) */
	snprintf(out->sender, sizeof(out->sender), "%.*s@%.*s",
	    local_len ? (int)local_len : 10, local_len ? from : "postmaster",
	    (int)dom_len, dom);
	ev->sender = out->sender;
	ev->sender_len = strlen(out->sender);
	ev->local_len = local_len ? local_len : 10;
	ev->helo = helo;	/* %{h} only; bounded like the identities */
	ev->helo_len = helo_len > SPF_SENDER_MAX ? SPF_SENDER_MAX : helo_len;
	ev->receiver = req->receiver ? req->receiver : "unknown";
	snprintf(ev->now, sizeof(ev->now), "%lld",
	    req->now ? req->now : (long long)time(NULL));

	if (!domain_ok(dom, dom_len)) {
		out->result = SPF_NONE;
		printable(out->domain, sizeof(out->domain), dom, dom_len);
		snprintf(out->reason, sizeof(out->reason), "%s \"%s\" is not "
		    "a valid multi-label domain name (RFC 7208 §4.3)", what,
		    out->domain);
		free(ev);
		return DKIM_OK;
	}
	memcpy(out->domain, dom, dom_len);
	out->domain[dom_len] = '\0';

	r = check_host(ev, out->domain, 0, why_none, sizeof(why_none));
	finish(ev, out, r, why_none);
	if (r != SPF_FAIL)
		out->explanation[0] = '\0';
	free(ev);
	return DKIM_OK;
}

enum dkim_status
spf_check_both(const struct pdns *dns, const struct spf_request *req,
    struct spf_result *helo, struct spf_result *mailfrom)
{
	struct spf_request r;
	enum dkim_status s1, s2;

	if (req == NULL || helo == NULL || mailfrom == NULL) {
		if (helo)
			memset(helo, 0, sizeof(*helo));
		if (mailfrom)
			memset(mailfrom, 0, sizeof(*mailfrom));
		return DKIM_E_ARG;
	}
	r = *req;
	r.identity = SPF_ID_HELO;
	s1 = spf_check(dns, &r, helo);
	r.identity = SPF_ID_MAILFROM;
	s2 = spf_check(dns, &r, mailfrom);
	return s1 != DKIM_OK ? s1 : s2;
}
