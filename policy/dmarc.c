/*
 * dmarc.c - DMARC evaluation (RFC 9989, and RFC 7489 on request).
 *
 * What reaches this file from the wire: the From field values, the d=
 * domains of DKIM signatures, the SPF domain, and the TXT records DNS
 * returns for _dmarc names. All of it is read as (ptr, len) with bounds;
 * nothing here walks to a NUL inside such data. Names are normalized into
 * fixed DMARC_DOMAIN_MAX buffers (a DNS name is at most 253 octets).
 *
 * It owns nothing beyond one evaluation: a per-call cache of the _dmarc
 * answers (so a Tree Walk for an identifier reuses what the author's walk
 * asked, RFC 9989 Appendix B.4.1) is allocated and freed inside the call.
 * The only I/O is libpsl reading the Public Suffix List in dmarc_psl_load.
 *
 * SECURITY: the number of DNS questions is capped per Tree Walk (8, RFC
 * 9989 §4.10) and per evaluation (max_queries); relaxed alignment only
 * walks an identifier that ends in the author's Organizational Domain, so
 * unrelated identifiers cost no queries at all.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpsl.h>

#include "addr.h"
#include "dmarc.h"

/* ------------------------------------------------------------ helpers */

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* ci_is - (p, n) equals the lowercase literal s, ignoring ASCII case. */
static bool
ci_is(const char *p, size_t n, const char *s)
{
	size_t i;

	if (strlen(s) != n)
		return false;
	for (i = 0; i < n; i++)
		if (lower(p[i]) != s[i])
			return false;
	return true;
}

/* show - a printable rendering of untrusted bytes for reasons, cut at
 * 80 characters. */
static const char *
show(const char *p, size_t n, char *buf, size_t cap)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)p[i];

		if (o >= 80) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
	}
	buf[o] = '\0';
	return buf;
}

/* A reason under construction: pieces joined with "; ", cut safely. */
struct says {
	char *buf;
	size_t cap, len;
};

static void say(struct says *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
say(struct says *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->len + 1 >= s->cap)
		return;
	if (s->len > 0) {
		n = snprintf(s->buf + s->len, s->cap - s->len, "; ");
		s->len += (size_t)n;
		if (s->len >= s->cap) {
			s->len = s->cap - 1;
			return;
		}
	}
	va_start(ap, fmt);
	n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	s->len += (size_t)n;
	if (s->len >= s->cap)
		s->len = s->cap - 1;
}

static void
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ------------------------------------------------ names and A-labels */

/* utf8_next - decode one scalar value from p[*i..n); false on any
 * ill-formed sequence (overlong, surrogate, beyond U+10FFFF). */
static bool
utf8_next(const unsigned char *p, size_t n, size_t *i, uint32_t *cp)
{
	unsigned char c = p[*i];
	size_t need, k;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		(*i)++;
		return true;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1; v = c & 0x1f; min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2; v = c & 0x0f; min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3; v = c & 0x07; min = 0x10000;
	} else
		return false;
	if (*i + need >= n)
		return false;
	for (k = 1; k <= need; k++) {
		unsigned char d = p[*i + k];

		if ((d & 0xc0) != 0x80)
			return false;
		v = (v << 6) | (d & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return false;
	*cp = v;
	*i += need + 1;
	return true;
}

/* Punycode parameters, RFC 3492 §5. */
enum {
	PC_BASE = 36, PC_TMIN = 1, PC_TMAX = 26, PC_SKEW = 38,
	PC_DAMP = 700, PC_BIAS = 72, PC_N = 128,
};

static uint32_t
pc_adapt(uint32_t delta, uint32_t points, bool first)
{
	uint32_t k = 0;

	delta = first ? delta / PC_DAMP : delta / 2;
	delta += delta / points;
	while (delta > ((PC_BASE - PC_TMIN) * PC_TMAX) / 2) {
		delta /= PC_BASE - PC_TMIN;
		k += PC_BASE;
	}
	return k + (PC_BASE - PC_TMIN + 1) * delta / (delta + PC_SKEW);
}

static char
pc_digit(uint32_t d)
{
	return d < 26 ? (char)('a' + d) : (char)('0' + d - 26);
}

/*
 * alabel - one label holding non-ASCII bytes, as "xn--" and its Punycode
 * (RFC 3492 §6.3). ASCII letters are lowercased first; other characters
 * are taken as given (no case folding or normalization: IDNA2008 expects
 * NFC input, and mail software sends it that way). Writes at most 63
 * characters to out; false if the label does not fit or is not UTF-8.
 */
static bool
alabel(const char *p, size_t n, char *out, size_t *outlen)
{
	uint32_t cp[64], m, delta = 0, bias = PC_BIAS, cur = PC_N, h, b = 0;
	size_t ncp = 0, i = 0, o = 0, j;

	while (i < n) {
		if (ncp == sizeof(cp) / sizeof(cp[0]) ||
		    !utf8_next((const unsigned char *)p, n, &i, &cp[ncp]))
			return false;
		if (cp[ncp] < 0x80) {
			char c = lower((char)cp[ncp]);

			if (!isalnum((unsigned char)c) && c != '-' && c != '_')
				return false;
			cp[ncp] = (uint32_t)c;
		}
		ncp++;
	}
	memcpy(out, "xn--", 4);
	o = 4;
	for (j = 0; j < ncp; j++)
		if (cp[j] < 0x80) {
			if (o >= 63)
				return false;
			out[o++] = (char)cp[j];
			b++;
		}
	if (b > 0) {
		if (o >= 63)
			return false;
		out[o++] = '-';
	}
	for (h = b; h < ncp;) {
		m = UINT32_MAX;
		for (j = 0; j < ncp; j++)
			if (cp[j] >= cur && cp[j] < m)
				m = cp[j];
		/* ncp <= 64 and m <= 0x10ffff keep this far from overflow */
		delta += (m - cur) * (h + 1);
		cur = m;
		for (j = 0; j < ncp; j++) {
			if (cp[j] < cur)
				delta++;
			if (cp[j] == cur) {
				uint32_t q = delta, k, t;

				for (k = PC_BASE;; k += PC_BASE) {
					t = k <= bias ? PC_TMIN :
					    k >= bias + PC_TMAX ? PC_TMAX :
					    k - bias;
					if (q < t)
						break;
					if (o >= 63)
						return false;
					out[o++] = pc_digit(t + (q - t) %
					    (PC_BASE - t));
					q = (q - t) / (PC_BASE - t);
				}
				if (o >= 63)
					return false;
				out[o++] = pc_digit(q);
				bias = pc_adapt(delta, h + 1, h == b);
				delta = 0;
				h++;
			}
		}
		delta++;
		cur++;
	}
	*outlen = o;
	return true;
}

bool
dmarc_domain_normalize(const char *p, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	if (p == NULL || out == NULL || outlen == 0)
		return false;
	out[0] = '\0';
	if (len > 0 && p[len - 1] == '.')
		len--;
	if (len == 0)
		return false;
	while (i <= len) {
		size_t s = i, n, j;
		bool ascii = true;
		char lab[64];
		size_t labn = 0;

		while (i < len && p[i] != '.') {
			if ((unsigned char)p[i] >= 0x80)
				ascii = false;
			i++;
		}
		n = i - s;
		if (n == 0)
			return false;
		if (ascii) {
			if (n > 63)
				return false;
			for (j = 0; j < n; j++) {
				char c = lower(p[s + j]);

				if (!isalnum((unsigned char)c) && c != '-' &&
				    c != '_')
					return false;
				lab[labn++] = c;
			}
		} else if (!alabel(p + s, n, lab, &labn))
			return false;
		if (o + (o > 0) + labn > 253 || o + (o > 0) + labn >= outlen)
			return false;
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, lab, labn);
		o += labn;
		i++;			/* the dot, or one past the end */
	}
	out[o] = '\0';
	return true;
}

/* ------------------------------------------------ From: address lists */

/* From values are read by addr_parse (addr.h). The first mailbox's domain, compacted (CFWS dropped, UTF-8 allowed),
 * before normalization: four octets for each of a DNS name's. */
#define FROM_DOMAIN_RAW (DMARC_DOMAIN_MAX * 4)

/*
 * mailbox_domain - the normalized domain of one mailbox of the From value
 * v into dom (DMARC_DOMAIN_MAX); DMARC_AUTHOR_BAD_DOMAIN with why when it
 * is a literal, too long or not a DNS name.
 */
static enum dmarc_author_rc
mailbox_domain(const char *v, const struct addr_mailbox *mb, char *dom,
    char *why, size_t whylen)
{
	struct dkim_buf raw;
	enum dmarc_author_rc rc = DMARC_AUTHOR_OK;
	char tmp[128];

	dom[0] = '\0';
	if (mb->literal) {
		snprintf(why, whylen,
		    "From address has an address literal, not a domain");
		return DMARC_AUTHOR_BAD_DOMAIN;
	}
	dkim_buf_init(&raw, FROM_DOMAIN_RAW);
	if (!addr_compact(v, mb->domain, &raw)) {
		rc = DMARC_AUTHOR_BAD_DOMAIN;
		if (mb->domain.len > FROM_DOMAIN_RAW)
			snprintf(why, whylen, "From domain is too long for a "
			    "DNS name (%zu octets)", mb->domain.len);
		else
			snprintf(why, whylen, "out of memory");
	} else if (!dmarc_domain_normalize(raw.len ? raw.p : "", raw.len,
	    dom, DMARC_DOMAIN_MAX)) {
		rc = DMARC_AUTHOR_BAD_DOMAIN;
		snprintf(why, whylen, "From domain \"%s\" is not a valid DNS "
		    "name", show(raw.p, raw.len, tmp, sizeof(tmp)));
		dom[0] = '\0';
	}
	dkim_buf_free(&raw);
	return rc;
}

/*
 * one_domain - several mailboxes in the one From field: true when they
 * all have the same domain, which is then the Author Domain (RFC 9989
 * §5.3.1 and RFC 7489 §6.6.1 count domains, not mailboxes).
 */
static bool
one_domain(const struct dmarc_span *from, size_t n, char *dom)
{
	struct addr_mailbox *mb = calloc(n, sizeof(*mb));
	struct addr_result res;
	char d[DMARC_DOMAIN_MAX], why[DKIM_WHY_MAX];
	bool same;
	size_t i;

	if (mb == NULL)
		return false;
	same = addr_parse(from->p, from->len, mb, n, NULL, 0, &res) ==
	    ADDR_OK && res.nmailbox == n && mailbox_domain(from->p, &mb[0],
	    dom, why, sizeof(why)) == DMARC_AUTHOR_OK;
	for (i = 1; same && i < n; i++)
		same = mailbox_domain(from->p, &mb[i], d, why, sizeof(why)) ==
		    DMARC_AUTHOR_OK && strcmp(d, dom) == 0;
	free(mb);
	if (!same)
		dom[0] = '\0';
	return same;
}

void
dmarc_author_parse(const struct dmarc_span *from, size_t nfrom,
    struct dmarc_author *out)
{
	struct addr_mailbox mb;
	struct addr_result res;
	enum addr_status st = ADDR_OK;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->fields = nfrom;
	if (nfrom == 0 || from == NULL) {
		out->rc = DMARC_AUTHOR_NO_FROM;
		snprintf(out->why, sizeof(out->why),
		    "message has no From field");
		return;
	}
	for (i = 0; i < nfrom; i++) {
		st = addr_parse(from[i].p, from[i].len, &mb, 1, NULL, 0, &res);
		if (st == ADDR_EMPTY)
			st = ADDR_OK;	/* counted as no address below */
		out->addresses += res.nmailbox;
		/* an extra field that does not parse is one more field */
		if (st != ADDR_OK && nfrom > 1 && res.nmailbox == 0)
			out->addresses++;
	}
	if (nfrom > 1) {
		out->rc = DMARC_AUTHOR_MULTI_FROM;
		snprintf(out->why, sizeof(out->why),
		    "message has %zu From fields: DMARC needs exactly one "
		    "(RFC 5322 §3.6, RFC 9989 §5.3.1)", nfrom);
		return;
	}
	if (st == ADDR_E_TOO_MANY) {
		out->rc = DMARC_AUTHOR_MULTI_ADDRESS;
		snprintf(out->why, sizeof(out->why),
		    "message has more than %d From addresses: DMARC needs "
		    "exactly one (RFC 9989 §5.3.1)", ADDR_MAILBOX_MAX);
		return;
	}
	if (st != ADDR_OK) {
		out->rc = DMARC_AUTHOR_SYNTAX;
		snprintf(out->why, sizeof(out->why),
		    "From field is not a valid address list: %s at offset %zu",
		    addr_status_str(st), res.err_off);
		return;
	}
	if (res.nmailbox == 0) {
		out->rc = DMARC_AUTHOR_NO_ADDRESS;
		snprintf(out->why, sizeof(out->why),
		    "From field has no address (an empty group?): no author "
		    "domain (RFC 9989 §5.3.1)");
		return;
	}
	if (res.nmailbox > 1) {
		if (one_domain(&from[0], res.nmailbox, out->domain)) {
			out->rc = DMARC_AUTHOR_OK;
			return;
		}
		out->rc = DMARC_AUTHOR_MULTI_ADDRESS;
		snprintf(out->why, sizeof(out->why),
		    "message has %zu From addresses, not all in one domain: "
		    "DMARC needs exactly one Author Domain (RFC 9989 §5.3.1)",
		    res.nmailbox);
		return;
	}
	out->rc = mailbox_domain(from[0].p, &mb, out->domain, out->why,
	    sizeof(out->why));
}

size_t
dmarc_from_values(const struct dkim_msg *msg, struct dmarc_span *out,
    size_t max)
{
	size_t i, n = 0;

	if (msg == NULL)
		return 0;
	for (i = 0; i < msg->nfields; i++) {
		const struct dkim_field *fl = &msg->fields[i];

		if (!dkim_field_is(fl, "from"))
			continue;
		if (n < max && out != NULL) {
			out[n].p = fl->raw + fl->value_off;
			out[n].len = fl->raw_len - fl->value_off;
		}
		n++;
	}
	return n;
}

/* ------------------------------------------------------------ records */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_hex(char c)
{
	return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f');
}

static bool
parse_request(const char *v, size_t n, enum dmarc_policy *out)
{
	if (ci_is(v, n, "none"))
		*out = DMARC_POLICY_NONE;
	else if (ci_is(v, n, "quarantine"))
		*out = DMARC_POLICY_QUARANTINE;
	else if (ci_is(v, n, "reject"))
		*out = DMARC_POLICY_REJECT;
	else
		return false;
	return true;
}

/*
 * uri_ok - a dmarc-uri (RFC 9989 §4.8): scheme ":" then URI characters
 * (RFC 3986 §2: unreserved, reserved, pct-encoded; ',' and '!' must be
 * encoded), optionally followed by the obsolete "!" size suffix.
 */
static bool
uri_ok(const char *p, size_t n)
{
	size_t i, end = n;

	for (i = n; i > 0; i--)
		if (p[i - 1] == '!')
			break;
	if (i > 0) {
		size_t j = i;

		while (j < n && is_digit(p[j]))
			j++;
		if (j == i)
			return false;
		if (j < n && strchr("kmgtKMGT", p[j]) != NULL && p[j] != '\0')
			j++;
		if (j != n)
			return false;
		end = i - 1;
	}
	if (end == 0 || !is_alpha(p[0]))
		return false;
	for (i = 1; i < end && (is_alpha(p[i]) || is_digit(p[i]) ||
	    p[i] == '+' || p[i] == '-' || p[i] == '.'); i++)
		;
	if (i >= end || p[i] != ':' || i + 1 >= end)
		return false;
	for (i++; i < end; i++) {
		char c = p[i];

		if (c == '%') {
			if (i + 2 >= end)
				return false;
			if (!is_hex(p[i + 1]) || !is_hex(p[i + 2]))
				return false;
			i += 2;
			continue;
		}
		if (is_alpha(c) || is_digit(c) ||
		    (c != '\0' && strchr("-._~:/?#[]@$&'()*+;=", c) != NULL))
			continue;
		return false;
	}
	return true;
}

static bool
urilist_ok(const char *v, size_t n)
{
	size_t i = 0;

	while (i <= n) {
		size_t s = i, e;

		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (s < e && is_wsp(v[s]))
			s++;
		while (e > s && is_wsp(v[e - 1]))
			e--;
		if (e > s && uri_ok(v + s, e - s))
			return true;
		i++;
	}
	return false;
}

enum rtag {
	RT_P, RT_SP, RT_NP, RT_ADKIM, RT_ASPF, RT_PSD, RT_T, RT_PCT,
	RT_RUA, RT_RUF, RT_FO, RT_RF, RT_RI, RT_UNKNOWN
};

static const char *const rtag_names[] = {
	"p", "sp", "np", "adkim", "aspf", "psd", "t", "pct",
	"rua", "ruf", "fo", "rf", "ri",
};

/* one_tag - apply one tag=value; false if the value is not valid for
 * the tag (the tag is then ignored, §4.8). */
static bool
one_tag(enum rtag t, const char *v, size_t n, struct dmarc_record *r)
{
	enum dmarc_policy pol;
	size_t i;
	unsigned pct = 0;

	switch (t) {
	case RT_P:
	case RT_SP:
	case RT_NP:
		if (!parse_request(v, n, &pol)) {
			if (t == RT_P)
				r->p_bad = true;
			else if (t == RT_SP)
				r->sp_bad = true;
			else
				r->np_bad = true;
			return false;
		}
		if (t == RT_P)
			r->p = pol;
		else if (t == RT_SP)
			r->sp = pol;
		else
			r->np = pol;
		return true;
	case RT_ADKIM:
	case RT_ASPF:
		if (n != 1 || (lower(v[0]) != 'r' && lower(v[0]) != 's'))
			return false;
		*(t == RT_ADKIM ? &r->adkim : &r->aspf) = lower(v[0]) == 's' ?
		    DMARC_ALIGN_STRICT : DMARC_ALIGN_RELAXED;
		return true;
	case RT_PSD:
		if (n != 1)
			return false;
		switch (lower(v[0])) {
		case 'y': r->psd = DMARC_PSD_Y; return true;
		case 'n': r->psd = DMARC_PSD_N; return true;
		case 'u': r->psd = DMARC_PSD_U; return true;
		}
		return false;
	case RT_T:
		if (n != 1 || (lower(v[0]) != 'y' && lower(v[0]) != 'n'))
			return false;
		r->testing = lower(v[0]) == 'y';
		return true;
	case RT_PCT:
		/* RFC 7489 §6.4: 1*3DIGIT, and §6.3: 0 to 100 */
		if (n < 1 || n > 3)
			return false;
		for (i = 0; i < n; i++) {
			if (!is_digit(v[i]))
				return false;
			pct = pct * 10 + (unsigned)(v[i] - '0');
		}
		if (pct > 100)
			return false;
		r->pct = pct;
		return true;
	case RT_RUA:
		r->has_rua = true;
		r->rua_ok = urilist_ok(v, n);
		return r->rua_ok;
	case RT_RUF:
	case RT_FO:
	case RT_RF:
	case RT_RI:
		return true;	/* reporting only: nothing to evaluate */
	case RT_UNKNOWN:
		break;
	}
	return false;
}

bool
dmarc_record_parse(const char *p, size_t len, struct dmarc_record *r)
{
	size_t i = 0;
	unsigned seen = 0;

	memset(r, 0, sizeof(*r));
	r->pct = 100;
	if (p == NULL)
		return false;
	/* dmarc-version = "v" *WSP "=" *WSP %s"DMARC1", then a separator
	 * or the end. */
	if (len < 1 || lower(p[0]) != 'v')
		return false;
	for (i = 1; i < len && is_wsp(p[i]); i++)
		;
	if (i >= len || p[i] != '=')
		return false;
	for (i++; i < len && is_wsp(p[i]); i++)
		;
	if (len - i < 6 || memcmp(p + i, "DMARC1", 6) != 0)
		return false;
	for (i += 6; i < len && is_wsp(p[i]); i++)
		;
	if (i < len && p[i] != ';')
		return false;

	while (i < len) {
		size_t s, e, ns, ne, k;
		enum rtag t = RT_UNKNOWN;
		bool ok = true;

		i++;			/* the ';' */
		s = i;
		while (i < len && p[i] != ';')
			i++;
		e = i;
		while (s < e && is_wsp(p[s]))
			s++;
		while (e > s && is_wsp(p[e - 1]))
			e--;
		if (s == e)
			continue;	/* empty tag-spec: nothing to ignore */
		/* dmarc-tag = 1*ALPHA equals 1*dmarc-value */
		ns = s;
		while (s < e && is_alpha(p[s]))
			s++;
		ne = s;
		while (s < e && is_wsp(p[s]))
			s++;
		if (ne == ns || s >= e || p[s] != '=')
			ok = false;
		else {
			for (s++; s < e && is_wsp(p[s]); s++)
				;
			if (s == e)
				ok = false;
			for (k = s; ok && k < e; k++) {
				unsigned char c = (unsigned char)p[k];

				if (c < 0x20 || c > 0x7e)
					ok = false;
			}
		}
		if (ok) {
			for (k = 0; k < sizeof(rtag_names) /
			    sizeof(rtag_names[0]); k++)
				if (ci_is(p + ns, ne - ns, rtag_names[k])) {
					t = (enum rtag)k;
					break;
				}
			if (t == RT_UNKNOWN || (seen & (1u << t)) != 0)
				ok = false;
			else {
				seen |= 1u << t;
				ok = one_tag(t, p + s, e - s, r);
			}
		}
		if (!ok)
			r->ignored++;
	}
	return true;
}

/* ---------------------------------------------------------------- PSL */

struct dmarc_psl {
	psl_ctx_t *owned;	/* owned: from psl_load_file, or NULL */
	const psl_ctx_t *ctx;	/* what lookups use */
};

struct dmarc_psl *
dmarc_psl_load(const char *path, char *why, size_t whylen)
{
	struct dmarc_psl *l;

	if (path == NULL)
		path = DMARC_PSL_DEBIAN;
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		if (why)
			snprintf(why, whylen, "out of memory");
		return NULL;
	}
	if ((l->owned = psl_load_file(path)) == NULL) {
		if (why)
			snprintf(why, whylen,
			    "cannot load the Public Suffix List from %s", path);
		free(l);
		return NULL;
	}
	l->ctx = l->owned;
	return l;
}

struct dmarc_psl *
dmarc_psl_builtin(char *why, size_t whylen)
{
	struct dmarc_psl *l;
	const psl_ctx_t *b = psl_builtin();

	if (b == NULL) {
		if (why)
			snprintf(why, whylen,
			    "libpsl has no built-in Public Suffix List");
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		if (why)
			snprintf(why, whylen, "out of memory");
		return NULL;
	}
	l->ctx = b;
	return l;
}

void
dmarc_psl_free(struct dmarc_psl *l)
{
	if (l == NULL)
		return;
	if (l->owned != NULL)
		psl_free(l->owned);
	free(l);
}

/* psl_org - RFC 7489 §3.2: the registrable domain (public suffix plus one
 * label) of a normalized name, or "" when name is itself a public suffix. */
static void
psl_org(const struct dmarc_psl *l, const char *name, char *out, size_t cap)
{
	const char *r = psl_registrable_domain(l->ctx, name);

	copy_str(out, cap, r != NULL ? r : "");
}

/* ---------------------------------------------------------- DNS cache */

enum qstate {
	Q_NONE = 0,		/* no DMARC record at the name */
	Q_ONE,			/* exactly one: rec */
	Q_MULTI,		/* several: all discarded */
	Q_FAIL,			/* temporary or permanent failure: rc */
};

struct qent {
	char name[DMARC_DOMAIN_MAX];	/* the domain, without _dmarc. */
	enum qstate st;
	enum pdns_rc rc;
	size_t nrec;			/* DMARC records among the TXT */
	struct dmarc_record rec;
};

struct dctx {
	const struct pdns *dns;
	const struct dmarc_options *opt;
	unsigned max_q;
	unsigned asked;			/* DNS questions sent */
	struct qent *q;			/* owned, max_q entries */
	size_t nq;
	struct qent over;		/* returned when the budget is spent */
	bool budget_spent;
	bool saw_multi;			/* some name had several records */
	char multi_name[DMARC_DOMAIN_MAX];
};

static bool
ctx_init(struct dctx *c, const struct pdns *dns,
    const struct dmarc_options *opt)
{
	memset(c, 0, sizeof(*c));
	c->dns = dns;
	c->opt = opt;
	c->max_q = opt->max_queries ? opt->max_queries :
	    DMARC_DEFAULT_MAX_QUERIES;
	if (c->max_q > DMARC_HARD_MAX_QUERIES)
		c->max_q = DMARC_HARD_MAX_QUERIES;
	c->q = calloc(c->max_q, sizeof(*c->q));
	return c->q != NULL;
}

static void
ctx_free(struct dctx *c)
{
	free(c->q);
	c->q = NULL;
}

/* dq - the DMARC records at _dmarc.name, asked once per evaluation. */
static const struct qent *
dq(struct dctx *c, const char *name)
{
	struct pdns_answer a;
	struct qent *e;
	char qname[DMARC_DOMAIN_MAX + 8];
	size_t i;

	for (i = 0; i < c->nq; i++)
		if (strcmp(c->q[i].name, name) == 0)
			return &c->q[i];
	if (c->nq >= c->max_q) {
		c->budget_spent = true;
		memset(&c->over, 0, sizeof(c->over));
		copy_str(c->over.name, sizeof(c->over.name), name);
		c->over.st = Q_FAIL;
		c->over.rc = PDNS_TEMPFAIL;
		return &c->over;
	}
	e = &c->q[c->nq++];
	memset(e, 0, sizeof(*e));
	copy_str(e->name, sizeof(e->name), name);
	if (strlen(name) + 7 > 253) {
		/* _dmarc.name cannot exist: nothing to ask */
		e->st = Q_NONE;
		e->rc = PDNS_NXDOMAIN;
		return e;
	}
	snprintf(qname, sizeof(qname), "_dmarc.%s", name);
	c->asked++;
	e->rc = pdns_lookup(c->dns, qname, PDNS_TXT, &a);
	switch (e->rc) {
	case PDNS_OK:
		for (i = 0; i < a.n; i++) {
			struct dmarc_record r;

			if (a.rr[i].type != PDNS_TXT || a.rr[i].txt == NULL ||
			    !dmarc_record_parse(a.rr[i].txt, a.rr[i].txt_len,
			    &r))
				continue;
			if (e->nrec++ == 0)
				e->rec = r;
		}
		e->st = e->nrec == 0 ? Q_NONE : e->nrec == 1 ? Q_ONE : Q_MULTI;
		if (e->st == Q_MULTI && !c->saw_multi) {
			c->saw_multi = true;
			copy_str(c->multi_name, sizeof(c->multi_name), name);
		}
		break;
	case PDNS_NXDOMAIN:
	case PDNS_NODATA:
		e->st = Q_NONE;
		break;
	case PDNS_TEMPFAIL:
	case PDNS_PERMFAIL:
	default:
		e->st = Q_FAIL;
		break;
	}
	pdns_answer_clear(&a);
	return e;
}

/* ---------------------------------------------------- DNS Tree Walk */

struct walk {
	char dom[DMARC_DOMAIN_MAX];
	size_t nl;			/* labels of dom */
	size_t off[128];		/* off[j]: suffix with nl - j labels */
	struct {
		size_t k;		/* labels of the name */
		const struct qent *q;
	} found[DMARC_WALK_MAX];
	size_t nfound;
	const struct qent *fail;	/* the lookup that stopped it */
	size_t asked;			/* names looked at */
	size_t last_k;			/* labels of the last name asked */
	size_t org_k;			/* labels of the Organizational Domain */
};

static const char *
suffix(const struct walk *w, size_t k)
{
	return w->dom + w->off[w->nl - k];
}

static void
walk_labels(struct walk *w, const char *dom)
{
	size_t i;

	copy_str(w->dom, sizeof(w->dom), dom);
	w->nl = 1;
	w->off[0] = 0;
	for (i = 0; w->dom[i] != '\0'; i++)
		if (w->dom[i] == '.' && w->nl < 128)
			w->off[w->nl++] = i + 1;
}

/*
 * walk_run - RFC 9989 §4.10: ask the start domain, then (shortened to 7
 * labels when it has 8 or more) each parent, stopping at a single record
 * with psd=y or psd=n; at most 8 queries. Then pick the Organizational
 * Domain as §4.10.2 does, longest name to shortest: psd=n is it; psd=y
 * (not at the start) makes it the name one label below; otherwise the
 * record with the fewest labels; no record at all leaves the start domain.
 */
static void
walk_run(struct dctx *c, const char *dom, struct walk *w)
{
	size_t k, i;

	memset(w, 0, sizeof(*w));
	walk_labels(w, dom);
	k = w->nl;
	for (;;) {
		const struct qent *q = dq(c, suffix(w, k));

		w->asked++;
		w->last_k = k;
		if (q->st == Q_FAIL) {
			w->fail = q;
			return;
		}
		if (q->st == Q_ONE) {
			w->found[w->nfound].k = k;
			w->found[w->nfound].q = q;
			w->nfound++;
			if (q->rec.psd != DMARC_PSD_U)
				break;
		}
		if (k == 1 || w->nfound == DMARC_WALK_MAX)
			break;
		k = k == w->nl ? (w->nl - 1 < 7 ? w->nl - 1 : 7) : k - 1;
	}
	w->org_k = w->nl;
	for (i = 0; i < w->nfound; i++) {
		const struct dmarc_record *r = &w->found[i].q->rec;

		if (r->psd == DMARC_PSD_N) {
			w->org_k = w->found[i].k;
			return;
		}
		if (r->psd == DMARC_PSD_Y && w->found[i].k != w->nl) {
			w->org_k = w->found[i].k + 1;
			return;
		}
	}
	if (w->nfound > 0)
		w->org_k = w->found[w->nfound - 1].k;
}

/* walk_record - the record the walk found at the name with k labels. */
static const struct qent *
walk_record(const struct walk *w, size_t k)
{
	size_t i;

	for (i = 0; i < w->nfound; i++)
		if (w->found[i].k == k)
			return w->found[i].q;
	return NULL;
}

/* ------------------------------------------------------------ alignment */

enum aln { ALN_NO = 0, ALN_YES, ALN_ERR };

/* The evaluation's state beyond the DNS cache. */
struct eval {
	struct dctx c;
	const struct dmarc_request *req;
	struct dmarc_result *out;
	struct walk aw;			/* the author's Tree Walk */
	bool aw_done;
	struct walk iw;			/* scratch: an identifier's walk */
	char orgA[DMARC_DOMAIN_MAX];	/* RFC 7489: PSL org of the author */
	const struct qent *err;		/* first DNS failure in alignment */
	bool budget;
};

static bool
under(const char *name, const char *org)
{
	size_t n = strlen(name), m = strlen(org);

	if (n == m)
		return strcmp(name, org) == 0;
	return n > m && name[n - m - 1] == '.' &&
	    strcmp(name + n - m, org) == 0;
}

/* author_walk - the author's walk, run once; false on a DNS failure. */
static bool
author_walk(struct eval *ev)
{
	if (!ev->aw_done) {
		walk_run(&ev->c, ev->out->author_domain, &ev->aw);
		ev->aw_done = true;
		if (ev->aw.fail == NULL)
			copy_str(ev->out->org_domain,
			    sizeof(ev->out->org_domain),
			    suffix(&ev->aw, ev->aw.org_k));
	}
	return ev->aw.fail == NULL;
}

static enum aln
aligned(struct eval *ev, const char *id, enum dmarc_align mode)
{
	const char *author = ev->out->author_domain;
	char orgI[DMARC_DOMAIN_MAX];

	/* Identical names align in both modes (RFC 9989 §3.2.10.2, §4.10.2
	 * first bullet: no walk is needed). */
	if (strcmp(id, author) == 0)
		return ALN_YES;
	if (mode == DMARC_ALIGN_STRICT)
		return ALN_NO;
	if (ev->out->mode == DMARC_MODE_RFC7489) {
		if (ev->orgA[0] == '\0')
			return ALN_NO;
		psl_org(ev->c.opt->psl, id, orgI, sizeof(orgI));
		return strcmp(orgI, ev->orgA) == 0 ? ALN_YES : ALN_NO;
	}
	if (!author_walk(ev)) {
		if (ev->err == NULL)
			ev->err = ev->aw.fail;
		return ALN_ERR;
	}
	/* An Organizational Domain is the name itself or a parent, so the
	 * two can only be equal if id lies under the author's. */
	if (!under(id, ev->out->org_domain))
		return ALN_NO;
	walk_run(&ev->c, id, &ev->iw);
	if (ev->iw.fail != NULL) {
		if (ev->err == NULL)
			ev->err = ev->iw.fail;
		return ALN_ERR;
	}
	return strcmp(suffix(&ev->iw, ev->iw.org_k), ev->out->org_domain) ==
	    0 ? ALN_YES : ALN_NO;
}

/* ------------------------------------------------------------- strings */

const char *
dmarc_res_str(enum dmarc_res r)
{
	switch (r) {
	case DMARC_RES_NONE:		return "none";
	case DMARC_RES_PASS:		return "pass";
	case DMARC_RES_FAIL:		return "fail";
	case DMARC_RES_TEMPERROR:	return "temperror";
	case DMARC_RES_PERMERROR:	return "permerror";
	}
	return "permerror";
}

const char *
dmarc_policy_str(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_ABSENT:	return "absent";
	case DMARC_POLICY_NONE:		return "none";
	case DMARC_POLICY_QUARANTINE:	return "quarantine";
	case DMARC_POLICY_REJECT:	return "reject";
	}
	return "absent";
}

const char *
dmarc_policy_src_str(enum dmarc_policy_src s)
{
	switch (s) {
	case DMARC_SRC_NONE:	return "none";
	case DMARC_SRC_P:	return "p";
	case DMARC_SRC_SP:	return "sp";
	case DMARC_SRC_NP:	return "np";
	case DMARC_SRC_DEFAULT:	return "default";
	}
	return "none";
}

const char *
dmarc_ident_str(enum dmarc_ident i)
{
	switch (i) {
	case DMARC_IDENT_NONE:	return "none";
	case DMARC_IDENT_DKIM:	return "dkim";
	case DMARC_IDENT_SPF:	return "spf";
	}
	return "none";
}

const char *
dmarc_mode_str(enum dmarc_mode m)
{
	return m == DMARC_MODE_RFC7489 ? "rfc7489" : "rfc9989";
}

const char *
dmarc_author_rc_str(enum dmarc_author_rc rc)
{
	switch (rc) {
	case DMARC_AUTHOR_OK:			return "ok";
	case DMARC_AUTHOR_NO_FROM:		return "no From field";
	case DMARC_AUTHOR_MULTI_FROM:		return "several From fields";
	case DMARC_AUTHOR_NO_ADDRESS:		return "no From address";
	case DMARC_AUTHOR_MULTI_ADDRESS:	return "several From addresses";
	case DMARC_AUTHOR_SYNTAX:		return "From syntax";
	case DMARC_AUTHOR_BAD_DOMAIN:		return "bad From domain";
	}
	return "From syntax";
}

static const char *
spf_str(enum dmarc_spf s)
{
	switch (s) {
	case DMARC_SPF_NONE:		return "none";
	case DMARC_SPF_PASS:		return "pass";
	case DMARC_SPF_FAIL:		return "fail";
	case DMARC_SPF_SOFTFAIL:	return "softfail";
	case DMARC_SPF_NEUTRAL:		return "neutral";
	case DMARC_SPF_TEMPERROR:	return "temperror";
	case DMARC_SPF_PERMERROR:	return "permerror";
	}
	return "none";
}

static const char *
align_str(enum dmarc_align a)
{
	return a == DMARC_ALIGN_STRICT ? "strict" : "relaxed";
}

/* ---------------------------------------------------------- evaluation */

void
dmarc_request_init(struct dmarc_request *req)
{
	memset(req, 0, sizeof(*req));
	req->opt.mode = DMARC_MODE_RFC9989;
}

static void
dns_failure(struct eval *ev, struct says *s, const struct qent *q)
{
	ev->out->result = q->rc == PDNS_PERMFAIL ? DMARC_RES_PERMERROR :
	    DMARC_RES_TEMPERROR;
	if (q == &ev->c.over)
		say(s, "DNS query budget (%u) spent before _dmarc.%s",
		    ev->c.max_q, q->name);
	else
		say(s, "DNS lookup of _dmarc.%s failed: %s", q->name,
		    pdns_rc_str(q->rc));
	say(s, "DMARC result cannot be determined (RFC 9989 §5.3.6)");
}

static enum dmarc_policy
lower_one(enum dmarc_policy p)
{
	if (p == DMARC_POLICY_REJECT)
		return DMARC_POLICY_QUARANTINE;
	return p == DMARC_POLICY_ABSENT ? p : DMARC_POLICY_NONE;
}

/*
 * discover - find the record to apply and the domain it is at. Returns the
 * cache entry, or NULL with the result already set (none or an error).
 */
static const struct qent *
discover(struct eval *ev, struct says *s)
{
	struct dmarc_result *out = ev->out;
	const char *author = out->author_domain;
	const struct qent *qa = dq(&ev->c, author), *qo, *pol = NULL;
	size_t i;

	if (qa->st == Q_FAIL) {
		dns_failure(ev, s, qa);
		return NULL;
	}
	if (qa->st == Q_ONE) {
		copy_str(out->policy_domain, sizeof(out->policy_domain),
		    author);
		return qa;
	}
	if (out->mode == DMARC_MODE_RFC7489) {
		/* §6.6.3 steps 1-5: the author domain, then the
		 * Organizational Domain if different; several records at
		 * either name end policy discovery. */
		if (qa->st == Q_MULTI) {
			say(s, "%zu DMARC records at _dmarc.%s: DMARC not "
			    "applied (RFC 7489 §6.6.3 step 5)", qa->nrec,
			    author);
			return NULL;
		}
		if (ev->orgA[0] == '\0' || strcmp(ev->orgA, author) == 0) {
			say(s, "no DMARC record at _dmarc.%s%s", author,
			    ev->orgA[0] == '\0' ? " (a public suffix: no "
			    "organizational domain)" : "");
			return NULL;
		}
		qo = dq(&ev->c, ev->orgA);
		if (qo->st == Q_FAIL) {
			dns_failure(ev, s, qo);
			return NULL;
		}
		if (qo->st == Q_MULTI) {
			say(s, "%zu DMARC records at _dmarc.%s: DMARC not "
			    "applied (RFC 7489 §6.6.3 step 5)", qo->nrec,
			    ev->orgA);
			return NULL;
		}
		if (qo->st == Q_NONE) {
			say(s, "no DMARC record at _dmarc.%s or _dmarc.%s",
			    author, ev->orgA);
			return NULL;
		}
		copy_str(out->policy_domain, sizeof(out->policy_domain),
		    ev->orgA);
		return qo;
	}

	/* RFC 9989 §4.10.1: no record for the author itself, so the record
	 * of its Organizational Domain, else that of its PSD. */
	if (!author_walk(ev)) {
		dns_failure(ev, s, ev->aw.fail);
		return NULL;
	}
	pol = walk_record(&ev->aw, ev->aw.org_k);
	if (pol == NULL)
		for (i = 0; i < ev->aw.nfound; i++)
			if (ev->aw.found[i].q->rec.psd == DMARC_PSD_Y)
				pol = ev->aw.found[i].q;
	if (pol == NULL) {
		say(s, "no DMARC policy record for %s: Tree Walk asked "
		    "_dmarc.%s up to _dmarc.%s (%zu names)", author, author,
		    suffix(&ev->aw, ev->aw.last_k), ev->aw.asked);
		if (ev->c.saw_multi)
			say(s, "several records at _dmarc.%s were discarded "
			    "(RFC 9989 §4.10 step 2)", ev->c.multi_name);
		return NULL;
	}
	copy_str(out->policy_domain, sizeof(out->policy_domain), pol->name);
	return pol;
}

/* author_exists - RFC 9989 §3.2.13 and A.4: only NXDOMAIN means the name
 * does not exist; NODATA means it does. */
static bool
author_exists(struct eval *ev, enum pdns_rc *rc)
{
	struct pdns_answer a;

	if (ev->c.asked >= ev->c.max_q) {
		ev->c.budget_spent = true;
		*rc = PDNS_TEMPFAIL;
		return false;
	}
	ev->c.asked++;
	*rc = pdns_lookup(ev->c.dns, ev->out->author_domain, PDNS_A, &a);
	pdns_answer_clear(&a);
	return *rc != PDNS_NXDOMAIN;
}

/*
 * policy_flaw - what keeps r's policy tags from being used as they
 * stand ("no p=", "an invalid p=", ...), or NULL when nothing does.
 * RFC 9989 §4.10.1 (RFC 7489 §6.6.3 step 6 alike): a record that lacks
 * a valid p=, or has an sp= (or, under RFC 9989, an np=) that is not
 * valid, is read as p=none when its rua= holds at least one valid URI,
 * and otherwise DMARC is not applied to the message at all. A missing
 * p= is one way of lacking a valid one: §4.7 says such a record "is
 * treated as if it included p=none (see Section 4.10.1)", and §4.10.1
 * is where that happens, under its rua= condition.
 */
static const char *
policy_flaw(const struct dmarc_record *r, enum dmarc_mode mode)
{
	if (r->p_bad)
		return "an invalid p=";
	if (r->p == DMARC_POLICY_ABSENT)
		return "no p=";
	if (r->sp_bad)
		return "an invalid sp=";
	if (mode == DMARC_MODE_RFC9989 && r->np_bad)
		return "an invalid np=";
	return NULL;
}

/* flaw_cite - where policy_flaw's rule is written, for the reason. */
static const char *
flaw_cite(enum dmarc_mode mode)
{
	return mode == DMARC_MODE_RFC7489 ? "RFC 7489 §6.6.3 step 6" :
	    "RFC 9989 §4.10.1";
}

/* choose_policy - which tag applies to the author domain; false when a
 * needed existence test failed (rc set). */
static bool
choose_policy(struct eval *ev, const struct dmarc_record *r, struct says *s,
    enum pdns_rc *rc)
{
	struct dmarc_result *out = ev->out;
	bool sub = strcmp(out->policy_domain, out->author_domain) != 0;

	*rc = PDNS_OK;
	if (policy_flaw(r, out->mode) != NULL) {
		/* only with a valid rua= (dmarc_evaluate stops the others) */
		out->policy = DMARC_POLICY_NONE;
		out->policy_src = DMARC_SRC_DEFAULT;
		return true;
	}
	if (!sub) {
		/* the record of the author domain itself: p= */
		out->policy = r->p;
		out->policy_src = DMARC_SRC_P;
		return true;
	}
	if (out->mode == DMARC_MODE_RFC9989 && r->np != DMARC_POLICY_ABSENT) {
		bool ex = author_exists(ev, rc);

		if (*rc == PDNS_TEMPFAIL || *rc == PDNS_PERMFAIL) {
			say(s, "cannot tell whether %s exists (np= needs it): "
			    "%s", out->author_domain, pdns_rc_str(*rc));
			out->policy = DMARC_POLICY_ABSENT;
			return false;
		}
		out->author_exists_known = true;
		out->author_exists = ex;
		if (!ex) {
			out->policy = r->np;
			out->policy_src = DMARC_SRC_NP;
			return true;
		}
	}
	if (r->sp != DMARC_POLICY_ABSENT) {
		out->policy = r->sp;
		out->policy_src = DMARC_SRC_SP;
	} else {
		out->policy = r->p;
		out->policy_src = DMARC_SRC_P;
	}
	return true;
}

/* The identifiers, normalized. */
struct ids {
	char dkim[DMARC_MAX_DKIM][DMARC_DOMAIN_MAX];
	size_t ndkim;
	size_t skipped;			/* passing beyond DMARC_MAX_DKIM */
	size_t bad;			/* passing with an unusable d= */
	bool spf;			/* SPF pass with a usable domain */
	bool spf_bad;
};

static void
collect_ids(const struct dmarc_request *req, struct ids *ids,
    struct dmarc_result *out)
{
	size_t i;

	for (i = 0; i < req->ndkim; i++) {
		const struct dmarc_dkim *d = &req->dkim[i];

		if (!d->pass)
			continue;
		if (ids->ndkim == DMARC_MAX_DKIM) {
			ids->skipped++;
			continue;
		}
		if (d->domain == NULL || !dmarc_domain_normalize(d->domain,
		    d->domain_len, ids->dkim[ids->ndkim], DMARC_DOMAIN_MAX)) {
			ids->bad++;
			continue;
		}
		ids->ndkim++;
	}
	if (req->spf_domain != NULL && dmarc_domain_normalize(req->spf_domain,
	    req->spf_domain_len, out->spf_domain, sizeof(out->spf_domain)))
		ids->spf = req->spf == DMARC_SPF_PASS;
	else {
		out->spf_domain[0] = '\0';
		ids->spf_bad = req->spf == DMARC_SPF_PASS;
	}
}

/* check_ids - alignment of every identifier; fills the aligned fields and
 * says what did not align. */
static void
check_ids(struct eval *ev, const struct dmarc_record *r,
    const struct ids *ids, struct says *why)
{
	struct dmarc_result *out = ev->out;
	size_t i;
	char list[DMARC_REASON_MAX / 2];
	size_t ll = 0;
	bool spf_err = false;

	list[0] = '\0';
	for (i = 0; i < ids->ndkim && !out->dkim_aligned; i++) {
		enum aln a = aligned(ev, ids->dkim[i], r->adkim);

		if (a == ALN_YES) {
			out->dkim_aligned = true;
			copy_str(out->dkim_domain, sizeof(out->dkim_domain),
			    ids->dkim[i]);
		} else {
			if (ll + 1 < sizeof(list))
				ll += (size_t)snprintf(list + ll,
				    sizeof(list) - ll, "%sd=%s%s",
				    ll ? ", " : "", ids->dkim[i],
				    a == ALN_ERR ? " (DNS failure)" : "");
			if (ll >= sizeof(list))
				ll = sizeof(list) - 1;
		}
	}
	if (ids->spf) {
		enum aln a = aligned(ev, out->spf_domain, r->aspf);

		out->spf_aligned = a == ALN_YES;
		spf_err = a == ALN_ERR;
	}

	if (out->dkim_aligned) {
		out->aligned = DMARC_IDENT_DKIM;
		copy_str(out->aligned_domain, sizeof(out->aligned_domain),
		    out->dkim_domain);
		say(why, "DKIM d=%s aligned with %s (%s)", out->dkim_domain,
		    out->author_domain, align_str(r->adkim));
	} else if (out->spf_aligned) {
		out->aligned = DMARC_IDENT_SPF;
		copy_str(out->aligned_domain, sizeof(out->aligned_domain),
		    out->spf_domain);
	}
	if (out->spf_aligned)
		say(why, "SPF %s aligned with %s (%s)", out->spf_domain,
		    out->author_domain, align_str(r->aspf));
	if (out->aligned != DMARC_IDENT_NONE)
		return;

	say(why, "no authenticated identifier aligned with %s",
	    out->author_domain);
	if (ids->ndkim == 0)
		say(why, "no passing DKIM signature%s",
		    ids->bad ? " with a usable d=" : "");
	else
		say(why, "DKIM %s not aligned (%s)", list,
		    align_str(r->adkim));
	if (ids->spf)
		say(why, "SPF pass for %s not aligned (%s)%s",
		    out->spf_domain, align_str(r->aspf),
		    spf_err ? " (DNS failure)" : "");
	else if (ids->spf_bad)
		say(why, "SPF pass for an unusable domain");
	else
		say(why, "SPF %s", spf_str(ev->req->spf));
}

/*
 * transient - nothing aligned: was an identifier that would have aligned
 * left undecided by a temporary error of its own check? Then the message
 * neither passes nor fails (RFC 9989 §5.3.6: a DNS query DMARC needed did
 * not complete; RFC 7489 §6.6.2 says it of SPF and DKIM outright). Only
 * identifiers that would align count: a sender must not turn a fail into
 * a temperror with a domain of its own whose DNS does not answer.
 */
static bool
transient(struct eval *ev, const struct dmarc_record *r, struct says *why)
{
	const struct dmarc_request *req = ev->req;
	char dom[DMARC_DOMAIN_MAX];
	size_t i;

	for (i = 0; i < req->ndkim; i++) {
		const struct dmarc_dkim *d = &req->dkim[i];

		if (d->pass || !d->temperror || d->domain == NULL ||
		    !dmarc_domain_normalize(d->domain, d->domain_len, dom,
		    sizeof(dom)) || aligned(ev, dom, r->adkim) == ALN_NO)
			continue;
		say(why, "DKIM temperror for d=%s, which would align: DMARC "
		    "result cannot be determined (RFC 9989 §5.3.6)", dom);
		return true;
	}
	if (req->spf == DMARC_SPF_TEMPERROR && ev->out->spf_domain[0] !=
	    '\0' && aligned(ev, ev->out->spf_domain, r->aspf) != ALN_NO) {
		say(why, "SPF temperror for %s, which would align: DMARC "
		    "result cannot be determined (RFC 9989 §5.3.6)",
		    ev->out->spf_domain);
		return true;
	}
	return false;
}

static enum dkim_status
evaluate(struct eval *ev)
{
	struct dmarc_result *out = ev->out;
	const struct dmarc_request *req = ev->req;
	struct dmarc_author au;
	struct says why = { out->reason, sizeof(out->reason), 0 };
	const struct qent *pq;
	struct dmarc_record rec;
	struct ids *ids;
	enum pdns_rc erc;
	const char *flaw;
	bool policy_ok;

	out->disposition = DMARC_POLICY_NONE;
	dmarc_author_parse(req->from, req->nfrom, &au);
	out->author_rc = au.rc;
	out->from_fields = au.fields;
	out->from_addresses = au.addresses;
	if (au.rc != DMARC_AUTHOR_OK) {
		out->result = DMARC_RES_PERMERROR;
		say(&why, "%s", au.why);
		return DKIM_OK;
	}
	copy_str(out->author_domain, sizeof(out->author_domain), au.domain);
	if (au.addresses > 1)
		say(&why, "%zu From addresses, all in %s: one Author Domain "
		    "(RFC 9989 §5.3.1)", au.addresses, au.domain);
	if (out->mode == DMARC_MODE_RFC7489) {
		psl_org(req->opt.psl, out->author_domain, ev->orgA,
		    sizeof(ev->orgA));
		copy_str(out->org_domain, sizeof(out->org_domain), ev->orgA);
	}

	if ((pq = discover(ev, &why)) == NULL)
		goto done;	/* none, or a DNS error: result set */
	rec = pq->rec;
	out->have_record = true;
	out->record = rec;
	if ((flaw = policy_flaw(&rec, out->mode)) != NULL && !rec.rua_ok) {
		out->result = DMARC_RES_NONE;
		say(&why, "DMARC record at _dmarc.%s has %s and no valid rua=: "
		    "DMARC not applied (%s)", out->policy_domain, flaw,
		    flaw_cite(out->mode));
		goto done;
	}

	if ((ids = calloc(1, sizeof(*ids))) == NULL)
		return DKIM_E_NOMEM;
	collect_ids(req, ids, out);
	check_ids(ev, &rec, ids, &why);
	if (ids->skipped)
		say(&why, "%zu passing DKIM results beyond the first %d "
		    "ignored", ids->skipped, DMARC_MAX_DKIM);
	free(ids);

	if (out->aligned != DMARC_IDENT_NONE)
		out->result = DMARC_RES_PASS;
	else if (ev->err != NULL) {
		out->result = ev->err->rc == PDNS_PERMFAIL ?
		    DMARC_RES_PERMERROR : DMARC_RES_TEMPERROR;
		if (ev->err == &ev->c.over)
			say(&why, "DNS query budget (%u) spent before "
			    "_dmarc.%s", ev->c.max_q, ev->err->name);
		else
			say(&why, "DNS lookup of _dmarc.%s failed: %s",
			    ev->err->name, pdns_rc_str(ev->err->rc));
		say(&why, "alignment cannot be determined "
		    "(RFC 9989 §5.3.6)");
	} else if (transient(ev, &rec, &why))
		out->result = DMARC_RES_TEMPERROR;
	else
		out->result = DMARC_RES_FAIL;

	policy_ok = choose_policy(ev, &rec, &why, &erc);
	if (!policy_ok && out->result == DMARC_RES_FAIL)
		out->result = erc == PDNS_PERMFAIL ? DMARC_RES_PERMERROR :
		    DMARC_RES_TEMPERROR;
	if (out->policy_src == DMARC_SRC_DEFAULT && flaw != NULL)
		say(&why, "record has %s but a valid rua=: taken as p=none "
		    "(%s)", flaw, flaw_cite(out->mode));
	if (policy_ok)
		say(&why, "policy %s from %s= of _dmarc.%s%s",
		    dmarc_policy_str(out->policy),
		    out->policy_src == DMARC_SRC_DEFAULT ? "default p" :
		    dmarc_policy_src_str(out->policy_src), out->policy_domain,
		    out->policy_src == DMARC_SRC_NP ? " (author domain does "
		    "not exist)" : "");

	if (out->result == DMARC_RES_FAIL) {
		out->disposition = out->policy;
		if (out->mode == DMARC_MODE_RFC9989 && rec.testing &&
		    out->policy > DMARC_POLICY_NONE) {
			out->testing = true;
			out->disposition = lower_one(out->policy);
			say(&why, "t=y: the owner is testing, %s not applied "
			    "(%s instead, RFC 9989 §4.7)",
			    dmarc_policy_str(out->policy),
			    dmarc_policy_str(out->disposition));
		}
		if (out->mode == DMARC_MODE_RFC7489 && rec.pct < 100 &&
		    req->opt.pct_draw >= rec.pct) {
			out->sampled_out = true;
			out->disposition = lower_one(out->policy);
			say(&why, "pct=%u, draw %u: message not sampled, %s "
			    "instead of %s (RFC 7489 §6.6.4)", rec.pct,
			    req->opt.pct_draw,
			    dmarc_policy_str(out->disposition),
			    dmarc_policy_str(out->policy));
		}
	} else if (out->mode == DMARC_MODE_RFC9989 && rec.testing)
		out->testing = true;
done:
	if (ev->c.saw_multi && out->result != DMARC_RES_NONE &&
	    out->mode == DMARC_MODE_RFC9989)
		say(&why, "several records at _dmarc.%s were discarded "
		    "(RFC 9989 §4.10 step 2)", ev->c.multi_name);
	return DKIM_OK;
}

enum dkim_status
dmarc_evaluate(const struct pdns *dns, const struct dmarc_request *req,
    struct dmarc_result *out)
{
	struct eval *ev;
	enum dkim_status st;

	if (out == NULL)
		return DKIM_E_ARG;
	memset(out, 0, sizeof(*out));
	if (req == NULL || (req->nfrom > 0 && req->from == NULL) ||
	    (req->ndkim > 0 && req->dkim == NULL) ||
	    (req->opt.mode != DMARC_MODE_RFC9989 &&
	    req->opt.mode != DMARC_MODE_RFC7489) ||
	    (req->opt.mode == DMARC_MODE_RFC7489 &&
	    (req->opt.psl == NULL || req->opt.pct_draw > 99))) {
		out->result = DMARC_RES_PERMERROR;
		snprintf(out->reason, sizeof(out->reason),
		    "bad DMARC request (caller error)");
		return DKIM_E_ARG;
	}
	out->mode = req->opt.mode;
	if ((ev = calloc(1, sizeof(*ev))) == NULL ||
	    !ctx_init(&ev->c, dns, &req->opt)) {
		free(ev);
		out->result = DMARC_RES_TEMPERROR;
		snprintf(out->reason, sizeof(out->reason), "out of memory");
		return DKIM_E_NOMEM;
	}
	ev->req = req;
	ev->out = out;
	st = evaluate(ev);
	out->queries = ev->c.asked;
	if (st != DKIM_OK) {
		out->result = DMARC_RES_TEMPERROR;
		snprintf(out->reason, sizeof(out->reason), "out of memory");
	}
	ctx_free(&ev->c);
	free(ev);
	return st;
}

enum dkim_status
dmarc_org_domain(const struct pdns *dns, const struct dmarc_options *opt,
    const char *name, size_t len, char *out, size_t outlen,
    enum pdns_rc *dnsrc, unsigned *queries)
{
	char dom[DMARC_DOMAIN_MAX];
	struct dctx *c;
	struct walk *w;

	if (dnsrc)
		*dnsrc = PDNS_OK;
	if (queries)
		*queries = 0;
	if (opt == NULL || out == NULL || outlen == 0 || name == NULL)
		return DKIM_E_ARG;
	out[0] = '\0';
	if (!dmarc_domain_normalize(name, len, dom, sizeof(dom)))
		return DKIM_E_SYNTAX;
	if (opt->mode == DMARC_MODE_RFC7489) {
		if (opt->psl == NULL)
			return DKIM_E_ARG;
		psl_org(opt->psl, dom, out, outlen);
		return DKIM_OK;
	}
	c = calloc(1, sizeof(*c));
	w = calloc(1, sizeof(*w));
	if (c == NULL || w == NULL || !ctx_init(c, dns, opt)) {
		free(c);
		free(w);
		return DKIM_E_NOMEM;
	}
	walk_run(c, dom, w);
	if (w->fail != NULL) {
		if (dnsrc)
			*dnsrc = w->fail->rc;
	} else
		copy_str(out, outlen, suffix(w, w->org_k));
	if (queries)
		*queries = c->asked;
	ctx_free(c);
	free(c);
	free(w);
	return DKIM_OK;
}
