/*
 * listhdr.c - the header side of a list post: subject tag, From rewriting,
 * Reply-To and the List-* fields (RFC 2369, RFC 2919, RFC 8058).
 *
 * What reaches this file from the wire: the whole message. It is split by
 * dkim_msg_parse (whose caps bound the header), and only three kinds of
 * value are read closely: Subject (RFC 2047 words decoded to look for the
 * tag), From (an RFC 5322 address list read by addr_parse, to find the
 * author's display name) and List-Id (its <identifier>, found with the
 * same lexer, for loop detection). Everything else is
 * copied as bytes. Decoded text never goes back into a header unencoded
 * unless it is printable: control characters, CR and LF included, become
 * spaces, and bytes that are not UTF-8 become U+FFFD.
 *
 * It owns nothing beyond one call; temporary buffers are freed before
 * returning.
 *
 * SECURITY: the options are checked as strictly as the message, since
 * they are written into header fields: no control characters anywhere,
 * addresses of dot-atom shape, URIs without white space or angle brackets.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "listhdr.h"

#define NOPE		((size_t)-1)
#define EW_CHARS	63	/* encoded text of a 75-octet UTF-8 Q word */
#define DNAME_PIECES	16	/* pieces of a display name kept */
#define UNTAG_JOINS	40	/* folds the untagging tries to undo */
#define SUBJECT_COL	8	/* "Subject:" */
#define STR_(x)		#x
#define STR(x)		STR_(x)	/* a number macro as a string literal */

/* ------------------------------------------------------------- helpers */

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 'a' - 'A') : c;
}

static bool
ci_eq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

/* ci_find - offset of the first occurrence of nd in h, ASCII letters
 * compared without case; NOPE when there is none. */
static size_t
ci_find(const char *h, size_t hn, const char *nd, size_t nn)
{
	size_t i;

	if (nn == 0 || nn > hn)
		return NOPE;
	for (i = 0; i + nn <= hn; i++)
		if (lower(h[i]) == lower(nd[0]) && ci_eq(h + i, nd, nn))
			return i;
	return NOPE;
}

/* buf_cut - drop the bytes of b past n. */
static void
buf_cut(struct dkim_buf *b, size_t n)
{
	if (n < b->len) {
		b->len = n;
		b->p[n] = '\0';
	}
}

/* is_atext - RFC 5322 §3.2.3 atext (ASCII only). */
static bool
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* utf8_seq - the length of the well-formed UTF-8 sequence at p (RFC 3629
 * §4: no overlong forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t need, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 1;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		need = 2;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		need = 3;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < need + 1 || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i <= need; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return need + 1;
}

/* utf8_put - append code point cp (< 0x10000 here) as UTF-8. */
static void
utf8_put(struct dkim_buf *b, uint32_t cp)
{
	if (cp < 0x80)
		dkim_buf_addc(b, (char)cp);
	else if (cp < 0x800) {
		dkim_buf_addc(b, (char)(0xc0 | (cp >> 6)));
		dkim_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else {
		dkim_buf_addc(b, (char)(0xe0 | (cp >> 12)));
		dkim_buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		dkim_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	}
}

/* ------------------------------------------------------------- options */

/* The options once checked, with their defaults filled in. */
struct lopts {
	const struct listhdr_opts *o;
	size_t local_len;		/* of o->list_addr */
	const char *name;		/* list display name */
	char namebuf[LISTHDR_OPT_MAX + 1];
	char id[2 * LISTHDR_OPT_MAX + 4]; /* the List-Id value */
	size_t id_off, id_len;		/* the identifier between < > */
	const char *tag;		/* NULL: no tag */
	size_t tag_len;
	char post[3 * LISTHDR_OPT_MAX + 16];	/* the list's mailto: URI */
	char unsub[3 * LISTHDR_OPT_MAX + 16];	/* mailto: URI, or "" */
	const char *https;		/* NULL: none */
};

static bool
given(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* opt_text - s fits LISTHDR_OPT_MAX and holds no control character. */
static bool
opt_text(const char *s)
{
	size_t i, n = strnlen(s, LISTHDR_OPT_MAX + 1);

	if (n > LISTHDR_OPT_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static bool
ascii_graph(const char *s, size_t n, bool space_ok)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > 0x7e || c < 0x20 || (c == ' ' && !space_ok))
			return false;
	}
	return true;
}

/* dot_atom - RFC 5322 dot-atom-text. */
static bool
dot_atom(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || p[0] == '.' || p[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		if (p[i] == '.') {
			if (p[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)p[i]))
			return false;
	}
	return true;
}

/* host_name - labels of letters, digits and '-', at most 253 octets. */
static bool
host_name(const char *p, size_t n)
{
	size_t i, label = 0;

	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		char c = p[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-') {
			if (++label > 63)
				return false;
		} else
			return false;
	}
	return label > 0;
}

/* addr_shape - local@domain with a dot-atom local part; *local gets the
 * local part's length. */
static bool
addr_shape(const char *s, size_t *local)
{
	const char *at = strrchr(s, '@');

	if (at == NULL || !dot_atom(s, (size_t)(at - s)) ||
	    !host_name(at + 1, strlen(at + 1)))
		return false;
	*local = (size_t)(at - s);
	return true;
}

/* uri_shape - printable ASCII with nothing that would end a <URI>. */
static bool
uri_shape(const char *s)
{
	size_t n = strlen(s);

	return ascii_graph(s, n, false) && strpbrk(s, "<>\"") == NULL;
}

/* mailto_uri - "mailto:" and the address, with the local part's octets
 * that RFC 6068 wants escaped written as %XX. */
static void
mailto_uri(char *out, size_t cap, const char *addr, size_t local)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o;

	o = (size_t)snprintf(out, cap, "mailto:");
	for (i = 0; i < local && o + 4 < cap; i++) {
		unsigned char c = (unsigned char)addr[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~!$'*+=", c) != NULL)
			out[o++] = (char)c;
		else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	snprintf(out + o, cap - o, "%s", addr + local);
}

/*
 * list_id_shape - NULL when s can be a List-Id value, else why not:
 * printable ASCII within LISTHDR_OPT_MAX, with exactly one "<...>"
 * holding dot-atom-text with at least one dot (RFC 2919 §2:
 * list-label "." list-id-namespace), and *off and *len the place of the
 * identifier.
 */
static const char *
list_id_shape(const char *s, size_t *off, size_t *len)
{
	const char *lt, *gt;

	if (!opt_text(s) || !ascii_graph(s, strlen(s), true))
		return "not printable ASCII of at most "
		    STR(LISTHDR_OPT_MAX) " octets";
	lt = strchr(s, '<');
	gt = strchr(s, '>');
	if (lt == NULL || gt == NULL || gt < lt || strchr(lt + 1, '<') ||
	    strchr(gt + 1, '>'))
		return "needs exactly one <list-label.namespace> (RFC 2919)";
	*off = (size_t)(lt + 1 - s);
	*len = (size_t)(gt - lt - 1);
	if (!dot_atom(lt + 1, *len) || memchr(lt + 1, '.', *len) == NULL)
		return "the identifier between < > is not dot-atom text with "
		    "a dot in it (RFC 2919)";
	return NULL;
}

const char *
listhdr_list_id_check(const char *v)
{
	size_t off, len;

	return v != NULL ? list_id_shape(v, &off, &len) : "no value";
}

/* tag_shape - NULL when tag can be a subject tag, else why not. */
static const char *
tag_shape(const char *tag, size_t *n)
{
	if (tag == NULL)
		return "no value";
	*n = strnlen(tag, LISTHDR_TAG_MAX + 1);
	if (*n == 0 || *n > LISTHDR_TAG_MAX)
		return "empty or longer than " STR(LISTHDR_TAG_MAX) " octets";
	if (!ascii_graph(tag, *n, true))
		return "not printable ASCII";
	if (tag[0] == ' ' || tag[*n - 1] == ' ')
		return "a space at its start or end";
	return NULL;
}

const char *
listhdr_subject_tag_check(const char *tag)
{
	size_t n;

	return tag_shape(tag, &n);
}

static bool
utf8_text(const char *s)
{
	size_t i = 0, n = strlen(s), k;

	while (i < n) {
		if ((k = utf8_seq((const unsigned char *)s + i, n - i)) == 0)
			return false;
		i += k;
	}
	return true;
}

/* opts_check - check o and fill L; false with a reason. */
static bool
opts_check(const struct listhdr_opts *o, struct lopts *L, char *why,
    size_t whylen)
{
	const char *fields[] = { o ? o->list_addr : NULL,
	    o ? o->list_name : NULL, o ? o->list_id : NULL,
	    o ? o->subject_tag : NULL, o ? o->unsub_mailto : NULL,
	    o ? o->unsub_https : NULL };
	const char *bad;
	size_t i;

	memset(L, 0, sizeof(*L));
	if (o == NULL || !given(o->list_addr)) {
		snprintf(why, whylen, "no list address");
		return false;
	}
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (fields[i] != NULL && !opt_text(fields[i])) {
			snprintf(why, whylen, "an option is longer than %d "
			    "octets or holds a control character",
			    LISTHDR_OPT_MAX);
			return false;
		}
	}
	L->o = o;
	if (!addr_shape(o->list_addr, &L->local_len)) {
		snprintf(why, whylen, "list address is not local@domain");
		return false;
	}
	if (given(o->list_name)) {
		if (!utf8_text(o->list_name)) {
			snprintf(why, whylen, "list name is not UTF-8");
			return false;
		}
		L->name = o->list_name;
	} else {
		snprintf(L->namebuf, sizeof(L->namebuf), "%.*s",
		    (int)L->local_len, o->list_addr);
		L->name = L->namebuf;
	}
	if (given(o->list_id)) {
		snprintf(L->id, sizeof(L->id), "%s", o->list_id);
		if ((bad = list_id_shape(L->id, &L->id_off, &L->id_len)) !=
		    NULL) {
			snprintf(why, whylen, "list id: %s", bad);
			return false;
		}
	} else {
		snprintf(L->id, sizeof(L->id), "<%.*s.%s>",
		    (int)L->local_len, o->list_addr,
		    o->list_addr + L->local_len + 1);
		L->id_off = 1;
		L->id_len = strlen(L->id) - 2;
	}
	if (given(o->subject_tag)) {
		if ((bad = tag_shape(o->subject_tag, &L->tag_len)) != NULL) {
			snprintf(why, whylen, "subject tag: %s", bad);
			return false;
		}
		L->tag = o->subject_tag;
	}
	mailto_uri(L->post, sizeof(L->post), o->list_addr, L->local_len);
	if (given(o->unsub_mailto)) {
		size_t local;

		if (strncasecmp(o->unsub_mailto, "mailto:", 7) == 0 &&
		    uri_shape(o->unsub_mailto))
			snprintf(L->unsub, sizeof(L->unsub), "%s",
			    o->unsub_mailto);
		else if (addr_shape(o->unsub_mailto, &local))
			mailto_uri(L->unsub, sizeof(L->unsub),
			    o->unsub_mailto, local);
		else {
			snprintf(why, whylen, "unsubscribe address is neither "
			    "local@domain nor a mailto: URI");
			return false;
		}
	}
	if (given(o->unsub_https)) {
		if (strncasecmp(o->unsub_https, "https://", 8) != 0 ||
		    strlen(o->unsub_https) == 8 ||
		    !uri_shape(o->unsub_https)) {
			snprintf(why, whylen, "unsubscribe URI is not an "
			    "https: URI (RFC 8058 §3.1)");
			return false;
		}
		L->https = o->unsub_https;
	}
	if (o->reply_to != LISTHDR_REPLY_LIST &&
	    o->reply_to != LISTHDR_REPLY_AUTHOR &&
	    o->reply_to != LISTHDR_REPLY_NONE) {
		snprintf(why, whylen, "unknown Reply-To mode %d",
		    (int)o->reply_to);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------- folding */

/* A field being written as words that may be folded between. */
struct fold {
	struct dkim_buf *out;
	size_t col;
	bool word;	/* a word stands on the current line */
};

static void
fold_begin(struct fold *f, struct dkim_buf *out, const char *name)
{
	f->out = out;
	dkim_buf_adds(out, name);
	dkim_buf_addc(out, ':');
	f->col = strlen(name) + 1;
	f->word = false;
}

/* fold_word - a space or a fold, then the word. */
static void
fold_word(struct fold *f, const char *p, size_t n)
{
	if (f->word && f->col + 1 + n > LISTHDR_COLUMNS) {
		dkim_buf_add(f->out, "\r\n ", 3);
		f->col = 1;
	} else {
		dkim_buf_addc(f->out, ' ');
		f->col++;
	}
	dkim_buf_add(f->out, p, n);
	f->col += n;
	f->word = true;
}

/* fold_text - words separated by single spaces; a fold replaces no byte
 * (it goes before a space), so unfolding gives the text back. */
static void
fold_text(struct fold *f, const char *p, size_t n)
{
	size_t i = 0, j;

	for (;;) {
		for (j = i; j < n && p[j] != ' '; j++)
			;
		fold_word(f, p + i, j - i);
		if (j >= n)
			break;
		i = j + 1;
	}
}

static void
fold_end(struct fold *f)
{
	dkim_buf_add(f->out, "\r\n", 2);
}

/* ------------------------------------------------------------ RFC 2047 */

struct ew {
	const char *cs;		/* charset, language (RFC 2231 §5) cut off */
	size_t cs_len;
	char enc;		/* 'B' or 'Q' */
	const char *text;
	size_t text_len;
	size_t len;		/* of the whole encoded word */
};

/*
 * ew_parse - an encoded word at the start of p (RFC 2047 §2):
 * "=?" charset ["*" language] "?" B|Q "?" encoded-text "?=". Leniency
 * where decoders are lenient: no 75-octet limit.
 */
static bool
ew_parse(const char *p, size_t n, struct ew *e)
{
	size_t i = 2;
	const char *star;

	if (n < 7 || p[0] != '=' || p[1] != '?')
		return false;
	while (i < n && p[i] != '?' && p[i] > ' ' && p[i] < 0x7f)
		i++;
	if (i == 2 || i + 2 >= n || p[i] != '?' || p[i + 2] != '?')
		return false;
	e->cs = p + 2;
	e->cs_len = i - 2;
	if ((star = memchr(e->cs, '*', e->cs_len)) != NULL)
		e->cs_len = (size_t)(star - e->cs);
	if (e->cs_len == 0)
		return false;
	e->enc = (char)(p[i + 1] & ~0x20);
	if (e->enc != 'B' && e->enc != 'Q')
		return false;
	i += 3;
	e->text = p + i;
	while (i < n && p[i] != '?') {
		if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)
			return false;
		i++;
	}
	if (i + 1 >= n || p[i + 1] != '=')
		return false;
	e->text_len = (size_t)(p + i - e->text);
	e->len = i + 2;
	return true;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* ew_decode - the octets of an encoded word; false for bad base64.
 * Base64 missing its padding is accepted. */
static bool
ew_decode(const struct ew *e, struct dkim_buf *out)
{
	size_t i;

	if (e->enc == 'B') {
		struct dkim_buf t;
		unsigned char *d;
		size_t dn = 0;

		if (e->text_len % 4 == 1)
			return false;
		dkim_buf_init(&t, 0);
		dkim_buf_add(&t, e->text, e->text_len);
		while (t.len % 4 != 0)
			dkim_buf_addc(&t, '=');
		d = t.failed ? NULL : dkim_b64_decode(t.p, t.len, &dn);
		dkim_buf_free(&t);
		if (d == NULL)
			return false;
		dkim_buf_add(out, d, dn);
		free(d);
		return true;
	}
	for (i = 0; i < e->text_len; i++) {
		char c = e->text[i];
		int h, l;

		if (c == '_')
			c = ' ';
		else if (c == '=' && i + 2 < e->text_len &&
		    (h = hexval(e->text[i + 1])) >= 0 &&
		    (l = hexval(e->text[i + 2])) >= 0) {
			c = (char)(h * 16 + l);
			i += 2;
		}
		dkim_buf_addc(out, c);
	}
	return true;
}

/*
 * decode_unstructured - a folded unstructured value as the reader sees
 * it: CRLF removed, encoded words decoded to their octets (any charset),
 * white space between two encoded words dropped (RFC 2047 §6.2). Encoded
 * words are found anywhere, as lenient readers find them, so a tag hidden
 * in one is seen.
 */
static void
decode_unstructured(const char *v, size_t n, struct dkim_buf *out)
{
	struct dkim_buf w;
	size_t i = 0, ws = NOPE;
	bool after_ew = false;
	struct ew e;

	dkim_buf_init(&w, 0);
	while (i < n) {
		char c = v[i];

		if (c == '\r' || c == '\n') {
			i++;
			continue;
		}
		if (is_wsp(c)) {
			if (after_ew && ws == NOPE)
				ws = out->len;
			dkim_buf_addc(out, c);
			i++;
			continue;
		}
		if (c == '=' && ew_parse(v + i, n - i, &e)) {
			dkim_buf_reset(&w);
			if (ew_decode(&e, &w)) {
				if (after_ew && ws != NOPE)
					buf_cut(out, ws);
				dkim_buf_add(out, w.p, w.len);
				i += e.len;
				after_ew = true;
				ws = NOPE;
				continue;
			}
		}
		dkim_buf_addc(out, c);
		after_ew = false;
		ws = NOPE;
		i++;
	}
	dkim_buf_free(&w);
}

/* ------------------------------------------------------------- subject */

/* value_shape - CR and LF appear only as folding (CRLF then WSP), and no
 * NUL: what dkim_msg_parse lets through. */
static bool
value_shape(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (v[i] == '\0')
			return false;
		if (v[i] == '\r') {
			if (i + 2 >= n || v[i + 1] != '\n' || !is_wsp(v[i + 2]))
				return false;
			i++;
		} else if (v[i] == '\n')
			return false;
	}
	return true;
}

/* subject_has_tag - 1 when the decoded value holds the tag, 0 when not,
 * -1 when memory ran out. */
static int
subject_has_tag(const char *tag, size_t tn, const char *v, size_t n)
{
	struct dkim_buf d;
	int r;

	dkim_buf_init(&d, 0);
	decode_unstructured(v, n, &d);
	r = d.failed ? -1 : ci_find(d.p, d.len, tag, tn) != NOPE;
	dkim_buf_free(&d);
	return r;
}

/*
 * fold_line - append one line's text s starting at column col, folded
 * before white space so that lines stay within LISTHDR_COLUMNS where a
 * break exists. Only white space at offsets from first to before limit
 * may take a fold (a tag with spaces in it stays whole on its line, so
 * that listhdr_untag_subject finds it). A line never consists of white
 * space alone.
 */
static void
fold_line(struct dkim_buf *out, const char *s, size_t n, size_t col,
    size_t first, size_t limit)
{
	size_t pos = 0, b, best, start;

	while (col + (n - pos) > LISTHDR_COLUMNS) {
		best = NOPE;
		for (start = pos; start < n && is_wsp(s[start]); start++)
			;
		for (b = start + 1 > first ? start + 1 : first;
		    b < n && b < limit; b++) {
			if (!is_wsp(s[b]))
				continue;
			if (col + (b - pos) <= LISTHDR_COLUMNS)
				best = b;
			else {
				if (best == NOPE)
					best = b;	/* an overlong word */
				break;
			}
		}
		if (best == NOPE)
			break;
		dkim_buf_add(out, s + pos, best - pos);
		dkim_buf_add(out, "\r\n", 2);
		pos = best;
		col = 0;
	}
	dkim_buf_add(out, s + pos, n - pos);
}

/*
 * subject_add - listhdr_subject for a field whose value starts at column
 * namecol. The tag goes before the first non-blank byte; the line it lands
 * on is refolded (unless longer than LISTHDR_LINE_MAX, when the tag gets
 * a line of its own); the other lines are copied.
 */
static bool
subject_add(const char *tag, size_t tn, const char *v, size_t n,
    size_t namecol, struct dkim_buf *out, bool *changed)
{
	struct dkim_buf line;
	size_t i, e, col, k;
	int has;

	*changed = false;
	if (!value_shape(v, n))
		return false;
	if ((has = subject_has_tag(tag, tn, v, n)) < 0)
		return false;
	if (has) {
		dkim_buf_add(out, v, n);
		return !out->failed;
	}
	*changed = true;
	for (i = 0; i < n && is_fws(v[i]); i++)
		;
	if (i == n) {
		dkim_buf_add(out, v, n);
		if (n == 0 || !is_wsp(v[n - 1]))
			dkim_buf_addc(out, ' ');
		dkim_buf_add(out, tag, tn);
		return !out->failed;
	}
	if (i == 0) {
		dkim_buf_addc(out, ' ');
		col = namecol + 1;
	} else {
		dkim_buf_add(out, v, i);
		col = namecol + i;
		for (k = i; k > 0; k--)
			if (v[k - 1] == '\n') {
				col = i - k;
				break;
			}
	}
	for (e = i; e < n && v[e] != '\r'; e++)
		;
	dkim_buf_init(&line, 0);
	dkim_buf_add(&line, tag, tn);
	dkim_buf_addc(&line, ' ');
	dkim_buf_add(&line, v + i, e - i);
	if (!line.failed)
		fold_line(out, line.p, line.len, col, tn,
		    e - i > LISTHDR_LINE_MAX ? tn + 1 : line.len);
	else
		out->failed = true;
	dkim_buf_free(&line);
	dkim_buf_add(out, v + e, n - e);
	return !out->failed;
}

bool
listhdr_subject(const char *tag, const char *value, size_t len,
    struct dkim_buf *out, bool *changed)
{
	bool ch;
	size_t tn;

	if (changed == NULL)
		changed = &ch;
	*changed = false;
	if (tag_shape(tag, &tn) != NULL || (value == NULL && len > 0))
		return false;
	return subject_add(tag, tn, value ? value : "", len, SUBJECT_COL,
	    out, changed);
}

/* untag_try - is cand a value listhdr_subject turns into value? */
static bool
untag_try(const char *tag, size_t tn, const struct dkim_buf *cand,
    const char *value, size_t len)
{
	struct dkim_buf re;
	bool changed, ok;

	dkim_buf_init(&re, 0);
	ok = subject_add(tag, tn, cand->len ? cand->p : "", cand->len,
	    SUBJECT_COL, &re, &changed) && changed && re.len == len &&
	    memcmp(re.len ? re.p : "", value, len) == 0;
	dkim_buf_free(&re);
	return ok;
}

bool
listhdr_untag_subject(const char *tag, const char *value, size_t len,
    struct dkim_buf *out)
{
	struct dkim_buf cand, best;
	size_t tn, idx, k, rest, j, pos, joined;
	bool ok = false;

	if (tag_shape(tag, &tn) != NULL || value == NULL ||
	    !value_shape(value, len))
		return false;
	if ((idx = ci_find(value, len, tag, tn)) == NOPE)
		return false;
	for (k = 0; k < idx; k++)
		if (!is_fws(value[k]))
			return false;
	rest = idx + tn;
	if (rest < len) {
		if (value[rest] == ' ')
			rest++;
		else if (rest + 2 < len && value[rest] == '\r' &&
		    value[rest + 2] == ' ')
			rest += 3;
		else
			return false;
	}
	dkim_buf_init(&cand, 0);
	dkim_buf_init(&best, 0);
	/* Try the original with j of the folds after the tag undone. */
	for (j = 0; j <= UNTAG_JOINS; j++) {
		dkim_buf_reset(&cand);
		dkim_buf_add(&cand, value, idx);
		joined = 0;
		for (pos = rest; pos < len; pos++) {
			if (value[pos] == '\r' && joined < j) {
				joined++;
				pos++;	/* skip CRLF, keep the WSP */
				continue;
			}
			dkim_buf_addc(&cand, value[pos]);
		}
		if (cand.failed)
			break;
		if (untag_try(tag, tn, &cand, value, len)) {
			dkim_buf_reset(&best);
			dkim_buf_add(&best, cand.len ? cand.p : "", cand.len);
			ok = !best.failed;
		}
		if (joined < j)
			break;	/* no more folds to undo */
	}
	if (ok)
		dkim_buf_add(out, best.len ? best.p : "", best.len);
	dkim_buf_free(&cand);
	dkim_buf_free(&best);
	return ok && !out->failed;
}

/* ---------------------------------------------- addresses (RFC 5322 §3.4) */

/* What the From rewriting needs of a From value: its first mailbox and
 * its first group, read by addr_parse. */
struct from {
	struct addr_mailbox mb;
	struct addr_group grp;
	struct addr_result res;
};

/*
 * from_parse - is v an address list with at least one member? A group
 * whose ';' is missing at the end of the value still counts: everything
 * in it was read, and readers (Python's email among them) take it.
 */
static bool
from_parse(struct from *f, const char *v, size_t n)
{
	enum addr_status st;

	memset(f, 0, sizeof(*f));
	st = addr_parse(v, n, &f->mb, 1, &f->grp, 1, &f->res);
	return st == ADDR_OK || st == ADDR_E_GROUP_OPEN;
}

/* ------------------------------------------------------- display names */

/*
 * A display name being built: UTF-8 text, and encoded words in charsets
 * we do not convert, kept as they came (they decode the same anywhere).
 */
struct dname {
	struct dkim_buf b;
	struct {
		size_t off, len;
		bool raw;	/* an encoded word, copied */
	} pc[DNAME_PIECES];
	size_t n;
	size_t cap;		/* octets of b allowed */
};

/* dname_piece - room for n octets in a piece of kind raw; false when the
 * name is full. */
static bool
dname_piece(struct dname *d, size_t n, bool raw)
{
	if (d->b.len + n > d->cap)
		return false;
	if (d->n > 0 && !raw && !d->pc[d->n - 1].raw)
		return true;	/* text continues the text piece */
	if (d->n == DNAME_PIECES)
		return false;
	d->pc[d->n].off = d->b.len;
	d->pc[d->n].len = 0;
	d->pc[d->n].raw = raw;
	d->n++;
	return true;
}

/* dname_text - UTF-8 text made printable: controls become spaces, bytes
 * that are not UTF-8 become U+FFFD. Cut at a character at the cap. */
static void
dname_text(struct dname *d, const char *p, size_t n)
{
	static const char repl[] = "\xef\xbf\xbd";
	size_t i = 0, k;

	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		const char *s = p + i;

		k = utf8_seq((const unsigned char *)s, n - i);
		if (k == 1 && (c < 0x20 || c == 0x7f))
			s = " ";
		else if (k == 0)
			s = repl;
		if (!dname_piece(d, k ? k : 3, false))
			return;
		dkim_buf_add(&d->b, s, k ? k : 3);
		d->pc[d->n - 1].len += k ? k : 3;
		i += k ? k : 1;
	}
}

static void
dname_raw(struct dname *d, const char *p, size_t n)
{
	if (!dname_piece(d, n, true))
		return;
	dkim_buf_add(&d->b, p, n);
	d->pc[d->n - 1].len = n;
}

/* Windows-1252 0x80..0x9f; 0 marks the five unassigned positions. */
static const uint16_t cp1252_c1[32] = {
	0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
	0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
};

static bool
cs_is(const struct ew *e, const char *const *names)
{
	for (; *names; names++)
		if (strlen(*names) == e->cs_len && ci_eq(e->cs, *names,
		    e->cs_len))
			return true;
	return false;
}

/* dname_ew - an encoded word of a phrase: UTF-8, ASCII, Latin-1 and
 * Windows-1252 are converted; other charsets are kept as encoded. */
static void
dname_ew(struct dname *d, const struct ew *e, const char *tok, size_t n)
{
	static const char *const utf8[] = { "utf-8", "utf8", "us-ascii",
	    "ascii", NULL };
	static const char *const latin1[] = { "iso-8859-1", "iso8859-1",
	    "iso_8859-1", "latin1", "latin-1", "l1", NULL };
	static const char *const cp1252[] = { "windows-1252", "cp1252",
	    NULL };
	struct dkim_buf w, u;
	bool win;
	size_t i;

	dkim_buf_init(&w, 0);
	if (!ew_decode(e, &w))
		dname_text(d, tok, n);	/* not really an encoded word */
	else if (cs_is(e, utf8))
		dname_text(d, w.p, w.len);
	else if ((win = cs_is(e, cp1252)) || cs_is(e, latin1)) {
		dkim_buf_init(&u, 0);
		for (i = 0; i < w.len; i++) {
			unsigned char c = (unsigned char)w.p[i];
			uint32_t cp = c;

			if (win && c >= 0x80 && c < 0xa0)
				cp = cp1252_c1[c - 0x80] ? cp1252_c1[c - 0x80] :
				    0xfffd;
			utf8_put(&u, cp);
		}
		if (!u.failed)
			dname_text(d, u.p, u.len);
		dkim_buf_free(&u);
	} else
		dname_raw(d, tok, n);
	dkim_buf_free(&w);
}

/* dname_words - the words of span sp of v as a reader shows them: a
 * phrase (words joined by one space, none between adjacent encoded words)
 * or, with tight, a local part (words joined by nothing). */
static void
dname_words(struct dname *d, const char *v, struct addr_span sp, bool tight)
{
	struct dkim_buf q;
	struct addr_word w;
	struct ew ew;
	size_t pos = sp.off;
	bool prev = false, prev_ew = false, is_ew;

	dkim_buf_init(&q, 0);
	while (addr_word_next(v, sp.off + sp.len, &pos, &w)) {
		const char *p = v + w.off;

		is_ew = !tight && !w.quoted && ew_parse(p, w.len, &ew) &&
		    ew.len == w.len;
		if (prev && !tight && !(prev_ew && is_ew))
			dname_text(d, " ", 1);
		if (is_ew)
			dname_ew(d, &ew, p, w.len);
		else if (!w.quoted)
			dname_text(d, p, w.len);
		else {
			dkim_buf_reset(&q);
			addr_unquote(p, w.len, &q);
			if (q.len)
				dname_text(d, q.p, q.len);
		}
		prev = true;
		prev_ew = is_ew;
	}
	dkim_buf_free(&q);
}

/* dname_trim - no spaces at the ends of the text; true when something is
 * left. */
static bool
dname_trim(struct dname *d)
{
	size_t k;

	while (d->n > 0 && !d->pc[0].raw && d->pc[0].len > 0 &&
	    d->b.p[d->pc[0].off] == ' ') {
		d->pc[0].off++;
		d->pc[0].len--;
	}
	if (d->n > 0 && !d->pc[d->n - 1].raw) {
		k = d->n - 1;
		while (d->pc[k].len > 0 &&
		    d->b.p[d->pc[k].off + d->pc[k].len - 1] == ' ')
			d->pc[k].len--;
		/* The last piece ends the buffer: text added later must
		 * follow what is left of it. */
		buf_cut(&d->b, d->pc[k].off + d->pc[k].len);
	}
	for (k = 0; k < d->n; k++)
		if (d->pc[k].len > 0)
			return true;
	return false;
}

/*
 * dname_author - who wrote it, from the From value: the first mailbox's
 * display name, else its local part, else the group's name. Nothing when
 * the value is not an address list (the list alone is named then).
 */
static void
dname_author(struct dname *d, const char *v, size_t n)
{
	struct from f;

	if (!from_parse(&f, v, n))
		return;
	if (f.res.nmailbox > 0 && f.mb.name.len > 0) {
		dname_words(d, v, f.mb.name, false);
		if (dname_trim(d))
			return;
		d->n = 0;
		dkim_buf_reset(&d->b);
	}
	if (f.res.nmailbox > 0)
		dname_words(d, v, f.mb.local, true);
	else if (f.res.ngroup > 0)
		dname_words(d, v, f.grp.name, false);
	if (!dname_trim(d)) {
		d->n = 0;
		dkim_buf_reset(&d->b);
	}
}

/* from_plain - the name is ASCII text only: it can be a quoted-string. */
static bool
from_plain(const struct dname *d)
{
	size_t k, i;

	for (k = 0; k < d->n; k++) {
		if (d->pc[k].raw)
			return false;
		for (i = 0; i < d->pc[k].len; i++)
			if ((unsigned char)d->b.p[d->pc[k].off + i] >= 0x80)
				return false;
	}
	return true;
}

/* q_plain - an octet a Q word in a phrase may hold as it is (letters,
 * digits, "!*+-/", RFC 2047 §5(3)), or a space (written as '_'). */
static bool
q_plain(unsigned char c)
{
	return c == ' ' || (c < 0x80 && is_atext(c) &&
	    strchr("=?_#$%&'^`{|}~", c) == NULL);
}

/* q_words - UTF-8 text as =?UTF-8?Q?...?= words of at most 75 octets,
 * each holding whole characters, with the phrase alphabet of RFC 2047
 * §5(3). */
static void
q_words(struct fold *f, const char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	struct dkim_buf w;
	size_t i = 0, k, j, need, budget;

	dkim_buf_init(&w, 0);
	while (i < n) {
		/* The first word of a line may not move to the next one: it
		 * gets what room is left on the line, if that is worth it. */
		budget = EW_CHARS;
		if (!f->word && f->col + 13 + EW_CHARS > LISTHDR_COLUMNS &&
		    f->col + 13 + 12 <= LISTHDR_COLUMNS)
			budget = LISTHDR_COLUMNS - f->col - 13;
		dkim_buf_reset(&w);
		dkim_buf_adds(&w, "=?UTF-8?Q?");
		while (i < n) {
			k = utf8_seq((const unsigned char *)p + i, n - i);
			if (k == 0)
				k = 1;	/* cannot happen: text is clean */
			for (need = 0, j = 0; j < k; j++)
				need += q_plain((unsigned char)p[i + j]) ? 1 : 3;
			if (w.len - 10 + need > budget && w.len > 10)
				break;
			for (j = 0; j < k; j++) {
				unsigned char c = (unsigned char)p[i + j];

				if (c == ' ')
					dkim_buf_addc(&w, '_');
				else if (q_plain(c))
					dkim_buf_addc(&w, (char)c);
				else {
					dkim_buf_addc(&w, '=');
					dkim_buf_addc(&w, hex[c >> 4]);
					dkim_buf_addc(&w, hex[c & 15]);
				}
			}
			i += k;
		}
		dkim_buf_adds(&w, "?=");
		if (!w.failed)
			fold_word(f, w.p, w.len);
		else
			f->out->failed = true;
	}
	dkim_buf_free(&w);
}

/* plain_word - a word a phrase may hold as it is: atext only, and not
 * taken for an encoded word. */
static bool
plain_word(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || (n >= 2 && p[0] == '=' && p[1] == '?'))
		return false;
	for (i = 0; i < n; i++)
		if (!is_atext((unsigned char)p[i]))
			return false;
	return true;
}

/* A phrase being written as plain words and UTF-8 encoded words. */
struct phrase {
	struct fold *f;
	struct dkim_buf run;	/* words waiting to be encoded together */
	bool spaced;		/* a space came since the last word */
	bool after_raw;		/* the last word written was a kept one */
};

static void
phrase_flush(struct phrase *ph)
{
	if (ph->run.len > 0)
		q_words(ph->f, ph->run.p, ph->run.len);
	dkim_buf_reset(&ph->run);
}

/* phrase_word - a word; coded ones gather in the run, with their spaces,
 * and so does one glued to a kept encoded word. */
static void
phrase_word(struct phrase *ph, const char *w, size_t n, bool glued_next)
{
	bool glued = glued_next || (!ph->spaced && ph->after_raw);

	if (!glued && plain_word(w, n)) {
		phrase_flush(ph);
		fold_word(ph->f, w, n);
	} else {
		if (ph->spaced && (ph->run.len > 0 || ph->after_raw))
			dkim_buf_addc(&ph->run, ' ');
		dkim_buf_add(&ph->run, w, n);
	}
	ph->spaced = false;
	ph->after_raw = false;
}

/*
 * coded_phrase - a display name that is not plain ASCII. Readers differ
 * on the white space between two encoded words (RFC 2047 §6.2 drops it,
 * Python's email package keeps it), so two encoded words stand next to
 * each other only where that cannot be helped: a run of non-ASCII words
 * longer than one encoded word, or next to a word kept as it came.
 */
static void
coded_phrase(struct fold *f, const struct dname *d)
{
	struct phrase ph = { f, { 0 }, false, false };
	size_t k, i, j;

	dkim_buf_init(&ph.run, 0);
	for (k = 0; k < d->n; k++) {
		const char *p = d->b.p + d->pc[k].off;
		size_t n = d->pc[k].len;
		bool next_raw = k + 1 < d->n && d->pc[k + 1].raw;

		if (d->pc[k].raw) {
			/* White space between encoded words is dropped by
			 * readers: a space before this one goes in the run. */
			if (ph.spaced && ph.run.len > 0)
				dkim_buf_addc(&ph.run, ' ');
			phrase_flush(&ph);
			fold_word(f, p, n);
			ph.spaced = false;
			ph.after_raw = true;
			continue;
		}
		for (i = 0; i < n; i = j) {
			if (p[i] == ' ') {
				ph.spaced = true;
				j = i + 1;
				continue;
			}
			for (j = i; j < n && p[j] != ' '; j++)
				;
			phrase_word(&ph, p + i, j - i, j == n && next_raw);
		}
	}
	phrase_flush(&ph);
	if (ph.run.failed)
		f->out->failed = true;
	dkim_buf_free(&ph.run);
}

/* from_field - "From: <name> <list address>" folded. */
static void
from_field(struct dkim_buf *out, const struct dname *d, const char *addr)
{
	struct fold f;
	struct dkim_buf t;
	size_t k, i;

	fold_begin(&f, out, "From");
	dkim_buf_init(&t, 0);
	if (from_plain(d)) {
		dkim_buf_addc(&t, '"');
		for (k = 0; k < d->n; k++)
			for (i = 0; i < d->pc[k].len; i++) {
				char c = d->b.p[d->pc[k].off + i];

				if (c == '"' || c == '\\')
					dkim_buf_addc(&t, '\\');
				dkim_buf_addc(&t, c);
			}
		dkim_buf_addc(&t, '"');
		if (!t.failed)
			fold_text(&f, t.p, t.len);
	} else
		coded_phrase(&f, d);
	dkim_buf_reset(&t);
	dkim_buf_addf(&t, "<%s>", addr);
	if (!t.failed)
		fold_word(&f, t.p, t.len);
	if (t.failed)
		out->failed = true;
	dkim_buf_free(&t);
	fold_end(&f);
}

/* ------------------------------------------------------------ the post */

/* The fields listhdr_apply writes, in the order new ones are appended. */
enum slot {
	SL_SUBJECT, SL_FROM, SL_XOF, SL_REPLY, SL_ID, SL_POST, SL_UNSUB,
	SL_UNSUB_POST, SL_PREC, SL_N
};

static const char *const slot_name[SL_N] = {
	"Subject", "From", "X-Original-From", "Reply-To", "List-Id",
	"List-Post", "List-Unsubscribe", "List-Unsubscribe-Post", "Precedence",
};

static int
slot_of(const struct dkim_field *f)
{
	int s;

	for (s = 0; s < SL_N; s++)
		if (dkim_field_is(f, slot_name[s]))
			return s;
	return -1;
}

static void
field_value(const struct dkim_field *f, const char **v, size_t *n)
{
	*v = f->raw + f->value_off;
	*n = f->raw_len - f->value_off;
}

/* The post being built: for each slot, the field we write (when ours),
 * and what becomes of the fields of that name already there. */
struct post {
	struct dkim_buf val[SL_N];	/* whole fields, CRLF ended */
	bool ours[SL_N];		/* we write this field */
	bool owned[SL_N];		/* fields of this name are replaced */
	bool placed[SL_N];
	struct dkim_buf xof;		/* X-Original-From fields */
};

/* build_list_fields - List-Id, List-Post, List-Unsubscribe(-Post),
 * Precedence. */
static void
build_list_fields(struct post *P, const struct lopts *L)
{
	struct fold f;
	struct dkim_buf t;

	fold_begin(&f, &P->val[SL_ID], "List-Id");
	fold_text(&f, L->id, strlen(L->id));
	fold_end(&f);
	dkim_buf_addf(&P->val[SL_POST], "List-Post: <%s>\r\n", L->post);
	if (L->unsub[0] || L->https) {
		dkim_buf_init(&t, 0);
		fold_begin(&f, &P->val[SL_UNSUB], "List-Unsubscribe");
		if (L->unsub[0]) {
			dkim_buf_addf(&t, "<%s>%s", L->unsub,
			    L->https ? "," : "");
			fold_word(&f, t.p, t.len);
		}
		if (L->https) {
			dkim_buf_reset(&t);
			dkim_buf_addf(&t, "<%s>", L->https);
			fold_word(&f, t.p, t.len);
		}
		if (t.failed)
			P->val[SL_UNSUB].failed = true;
		dkim_buf_free(&t);
		fold_end(&f);
		P->ours[SL_UNSUB] = true;
	}
	if (L->https) {
		/* RFC 8058 §3.1: only with an HTTPS URI to POST to. */
		dkim_buf_adds(&P->val[SL_UNSUB_POST],
		    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
		P->ours[SL_UNSUB_POST] = true;
	}
	dkim_buf_adds(&P->val[SL_PREC], "Precedence: list\r\n");
	P->ours[SL_ID] = P->ours[SL_POST] = P->ours[SL_PREC] = true;
	P->owned[SL_ID] = P->owned[SL_POST] = P->owned[SL_UNSUB] =
	    P->owned[SL_UNSUB_POST] = P->owned[SL_PREC] = true;
}

/* build_from - From, X-Original-From and (author mode) Reply-To. */
static void
build_from(struct post *P, const struct lopts *L, const struct dkim_msg *m,
    bool has_reply)
{
	struct dname d;
	const char *v = NULL;
	size_t i, n = 0;
	bool first = true;
	struct from fp;

	memset(&d, 0, sizeof(d));
	dkim_buf_init(&d.b, 0);
	d.cap = LISTHDR_NAME_MAX;
	for (i = 0; i < m->nfields; i++) {
		const char *fv;
		size_t fn;

		if (!dkim_field_is(&m->fields[i], "From"))
			continue;
		field_value(&m->fields[i], &fv, &fn);
		if (first) {
			v = fv;
			n = fn;
			first = false;
		}
		dkim_buf_adds(&P->xof, "X-Original-From:");
		dkim_buf_add(&P->xof, fv, fn);
		dkim_buf_add(&P->xof, "\r\n", 2);
	}
	if (v != NULL)
		dname_author(&d, v, n);
	d.cap = d.b.len + LISTHDR_OPT_MAX + 8;
	if (d.n > 0)
		dname_text(&d, " via ", 5);
	dname_text(&d, L->name, strlen(L->name));
	if (d.b.failed)
		P->val[SL_FROM].failed = true;
	else
		from_field(&P->val[SL_FROM], &d, L->o->list_addr);
	dkim_buf_free(&d.b);
	P->ours[SL_FROM] = P->owned[SL_FROM] = true;
	P->ours[SL_XOF] = false;	/* P->xof goes right after From */
	P->owned[SL_XOF] = true;
	if (L->o->reply_to == LISTHDR_REPLY_AUTHOR && !has_reply &&
	    v != NULL && from_parse(&fp, v, n) && fp.res.nmailbox > 0) {
		dkim_buf_adds(&P->val[SL_REPLY], "Reply-To:");
		dkim_buf_add(&P->val[SL_REPLY], v, n);
		dkim_buf_add(&P->val[SL_REPLY], "\r\n", 2);
		P->ours[SL_REPLY] = true;
	}
}

/* emit_subject - the first Subject field, tagged, its name as written. */
static bool
emit_subject(struct dkim_buf *out, const struct lopts *L,
    const struct dkim_field *f)
{
	const char *v;
	size_t n;
	bool changed;

	field_value(f, &v, &n);
	dkim_buf_add(out, f->raw, f->value_off);
	if (!subject_add(L->tag, L->tag_len, v, n, f->value_off, out,
	    &changed))
		return false;
	dkim_buf_add(out, "\r\n", 2);
	return true;
}

bool
listhdr_apply(const struct listhdr_opts *o, const char *msg, size_t len,
    struct dkim_buf *out, char *why, size_t whylen)
{
	struct lopts L;
	struct post P;
	struct dkim_msg *m = NULL;
	char mwhy[DKIM_WHY_MAX];
	enum dkim_status st;
	bool has_reply = false, ok = false;
	size_t i;
	int s;

	if (why == NULL)
		whylen = 0;	/* snprintf(NULL, 0, ...) writes nothing */
	if (out == NULL || (msg == NULL && len > 0)) {
		snprintf(why, whylen, "no message or no output buffer");
		return false;
	}
	if (!opts_check(o, &L, why, whylen))
		return false;
	mwhy[0] = '\0';
	if ((st = dkim_msg_parse(msg, len, NULL, &m, mwhy, sizeof(mwhy))) !=
	    DKIM_OK) {
		snprintf(why, whylen, "not a message: %s", mwhy[0] ? mwhy :
		    dkim_status_str(st));
		return false;
	}
	memset(&P, 0, sizeof(P));
	for (s = 0; s < SL_N; s++)
		dkim_buf_init(&P.val[s], 0);
	dkim_buf_init(&P.xof, 0);
	for (i = 0; i < m->nfields; i++)
		if (dkim_field_is(&m->fields[i], "Reply-To"))
			has_reply = true;

	if (L.tag) {
		dkim_buf_adds(&P.val[SL_SUBJECT], "Subject: ");
		dkim_buf_add(&P.val[SL_SUBJECT], L.tag, L.tag_len);
		dkim_buf_add(&P.val[SL_SUBJECT], "\r\n", 2);
		P.ours[SL_SUBJECT] = true;
	}
	if (o->rewrite_from)
		build_from(&P, &L, m, has_reply);
	if (o->reply_to == LISTHDR_REPLY_LIST) {
		dkim_buf_addf(&P.val[SL_REPLY], "Reply-To: %s\r\n",
		    o->list_addr);
		P.ours[SL_REPLY] = P.owned[SL_REPLY] = true;
	}
	build_list_fields(&P, &L);

	for (i = 0; i < m->nfields; i++) {
		const struct dkim_field *f = &m->fields[i];

		s = slot_of(f);
		if (s == SL_SUBJECT && P.ours[s] && !P.placed[s]) {
			if (!emit_subject(out, &L, f))
				goto done;
			P.placed[s] = true;
			continue;
		}
		if (s >= 0 && s != SL_SUBJECT && P.owned[s]) {
			if (P.ours[s] && !P.placed[s])
				dkim_buf_add(out, P.val[s].p, P.val[s].len);
			P.placed[s] = true;
			continue;
		}
		dkim_buf_add(out, f->raw, f->raw_len);
		dkim_buf_add(out, "\r\n", 2);
	}
	for (s = 0; s < SL_N; s++) {
		if (P.ours[s] && !P.placed[s])
			dkim_buf_add(out, P.val[s].p, P.val[s].len);
		if (s == SL_FROM && P.xof.len)
			dkim_buf_add(out, P.xof.p, P.xof.len);
	}
	dkim_buf_add(out, "\r\n", 2);
	dkim_buf_add(out, m->body, m->body_len);
	ok = true;
	for (s = 0; s < SL_N; s++)
		if (P.val[s].failed)
			ok = false;
	if (P.xof.failed)
		ok = false;
done:
	if (!ok || out->failed) {
		snprintf(why, whylen, "the result does not fit the output "
		    "buffer (%zu octets at most)", out->max);
		ok = false;
	}
	for (s = 0; s < SL_N; s++)
		dkim_buf_free(&P.val[s]);
	dkim_buf_free(&P.xof);
	dkim_msg_free(m);
	return ok;
}

/* list_id_of - the identifier between < > in a List-Id value, skipping
 * a phrase with its quoted-strings and comments (RFC 2919 §3). */
static bool
list_id_of(const char *v, size_t n, const char **id, size_t *idn)
{
	struct addr_token t;
	const char *gt;
	size_t s = 0, e;

	for (;;) {
		addr_token_next(v, n, &s, &t);
		if (t.kind == ADDR_TOK_END)
			return false;
		if (t.kind == ADDR_TOK_SPECIAL && v[t.off] == '<')
			break;
	}
	if ((gt = memchr(v + s, '>', n - s)) == NULL)
		return false;
	e = (size_t)(gt - v);
	while (s < e && is_fws(v[s]))
		s++;
	while (e > s && is_fws(v[e - 1]))
		e--;
	*id = v + s;
	*idn = e - s;
	return e > s;
}

bool
listhdr_has_list_id(const struct listhdr_opts *o, const char *msg,
    size_t len)
{
	struct lopts L;
	struct dkim_msg *m = NULL;
	const char *v, *id;
	size_t i, n, idn;
	bool found = false;

	if (msg == NULL || !opts_check(o, &L, NULL, 0))
		return false;
	if (dkim_msg_parse(msg, len, NULL, &m, NULL, 0) != DKIM_OK)
		return false;
	for (i = 0; i < m->nfields && !found; i++) {
		if (!dkim_field_is(&m->fields[i], "List-Id"))
			continue;
		field_value(&m->fields[i], &v, &n);
		found = list_id_of(v, n, &id, &idn) && idn == L.id_len &&
		    ci_eq(id, L.id + L.id_off, idn);
	}
	dkim_msg_free(m);
	return found;
}
