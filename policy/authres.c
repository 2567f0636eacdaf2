/*
 * authres.c - Authentication-Results (RFC 8601) and ARC-Authentication-
 * Results (RFC 8617 §4.1.1): parse, build, format, and recognise our own.
 *
 * The parser is tolerant where the field is used in the wild: CFWS and
 * nested comments anywhere the grammar allows them, quoted-strings, a
 * version after the authserv-id or a method, "none", bare pvalues that are
 * not MIME tokens (base64 in header.b, SRS addresses, IPv6 literals),
 * Microsoft's headers without an authserv-id and its "action=none"
 * properties without a ptype. A resinfo it cannot read is skipped up to
 * the next ';' and recorded; only a broken start of the field (instance,
 * authserv-id, version) or a hard cap fails the whole header, because
 * nothing after a broken start can be attributed to anyone.
 *
 * SECURITY: every byte here is untrusted. All scanning is bounded by len;
 * the value is refused beyond AUTHRES_MAX_LEN, results and properties are
 * capped, so allocation is O(len). The formatter writes only what it can
 * prove is safe in a header (keywords, tokens, quoted-strings without
 * control characters), so no CR, LF or NUL from a caller or a parsed
 * header can reach its output.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"

/* ------------------------------------------------------------ characters */

static bool
is_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_ctl(int c)
{
	return (c >= 0 && c < 0x20) || c == 0x7f;
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* MIME tspecials (RFC 2045 §5.1). */
static bool
is_tspecial(int c)
{
	return c != '\0' && strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* A MIME token octet; 8-bit octets are let in for RFC 6532 identifiers. */
static bool
is_tokenc(int c)
{
	return c > 0x20 && c != 0x7f && !is_tspecial(c);
}

/* Keywords (method, result, ptype, property): RFC 5321 Ldh-str, plus '_'
 * which some generators use. */
static bool
is_kwc(int c)
{
	return is_alnum(c) || c == '-' || c == '_';
}

/* A bare pvalue runs to white space, ';', a comment or a quote. This is
 * wider than a token on purpose: base64 '/' and '=', SRS '=', "a@b". */
static bool
is_barec(int c)
{
	return c > 0x20 && c != 0x7f && c != '(' && c != ')' && c != ';' &&
	    c != '"' && c != '\\';
}

/* RFC 5322 atext, with UTF-8 octets as RFC 6531 allows. */
static bool
is_atext(int c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c)) ||
	    c >= 0x80;
}

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* word_is - do the n octets at p spell the lowercase word w, in any case? */
static bool
word_is(const char *p, size_t n, const char *w)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (w[i] == '\0' || lower(p[i]) != w[i])
			return false;
	return w[n] == '\0';
}

/* ----------------------------------------------------------------- lexer */

struct lex {
	const char *p;
	size_t len;
	size_t pos;
	const char *err;	/* why the last step failed (static text) */
};

static int
peek(const struct lex *lx)
{
	return lx->pos < lx->len ? (unsigned char)lx->p[lx->pos] : -1;
}

static bool
lx_fail(struct lex *lx, const char *err)
{
	lx->err = err;
	return false;
}

static const char *
lx_why(const struct lex *lx)
{
	return lx->err ? lx->err : "syntax error";
}

/*
 * lx_comment - step over one comment at '(' (nested, quoted-pairs). With
 * keep, its text goes there unfolded and unescaped, inner parentheses kept.
 */
static bool
lx_comment(struct lex *lx, struct dkim_buf *keep)
{
	size_t depth = 0;

	while (lx->pos < lx->len) {
		int c = (unsigned char)lx->p[lx->pos];

		if (c == '\\') {
			int q;

			if (lx->pos + 1 >= lx->len)
				break;
			q = (unsigned char)lx->p[lx->pos + 1];
			if (is_ctl(q) && q != '\t')
				return lx_fail(lx, "control character in comment");
			if (keep)
				dkim_buf_addc(keep, (char)q);
			lx->pos += 2;
			continue;
		}
		lx->pos++;
		if (c == '(') {
			if (depth++ > 0 && keep)
				dkim_buf_addc(keep, '(');
		} else if (c == ')') {
			if (--depth == 0)
				return true;
			if (keep)
				dkim_buf_addc(keep, ')');
		} else if (c == '\r' || c == '\n') {
			/* unfolding */
		} else if (is_ctl(c) && c != '\t') {
			lx->pos--;
			return lx_fail(lx, "control character in comment");
		} else if (keep) {
			dkim_buf_addc(keep, (char)c);
		}
	}
	lx->pos = lx->len;
	return lx_fail(lx, "unterminated comment");
}

/* lx_cfws - skip [CFWS]; the first comment's text goes to keep if given. */
static bool
lx_cfws(struct lex *lx, struct dkim_buf *keep)
{
	int c;

	while ((c = peek(lx)) >= 0) {
		if (is_fws(c)) {
			lx->pos++;
		} else if (c == '(') {
			if (!lx_comment(lx, keep))
				return false;
			keep = NULL;
		} else {
			break;
		}
	}
	return true;
}

/* lx_quoted - step over a quoted-string at '"'; its content, unescaped and
 * unfolded, is appended to out if given. */
static bool
lx_quoted(struct lex *lx, struct dkim_buf *out)
{
	lx->pos++;
	while (lx->pos < lx->len) {
		int c = (unsigned char)lx->p[lx->pos];

		if (c == '"') {
			lx->pos++;
			return true;
		}
		if (c == '\\') {
			if (lx->pos + 1 >= lx->len)
				break;
			c = (unsigned char)lx->p[lx->pos + 1];
			if (is_ctl(c) && c != '\t')
				return lx_fail(lx,
				    "control character in quoted-string");
			lx->pos++;
		} else if (c == '\r' || c == '\n') {
			lx->pos++;
			continue;
		} else if (is_ctl(c) && c != '\t') {
			return lx_fail(lx, "control character in quoted-string");
		}
		if (out)
			dkim_buf_addc(out, (char)c);
		lx->pos++;
	}
	lx->pos = lx->len;
	return lx_fail(lx, "unterminated quoted-string");
}

/* lx_run - step over octets accepted by ok(); returns how many. */
static size_t
lx_run(struct lex *lx, bool (*ok)(int))
{
	size_t a = lx->pos;

	while (lx->pos < lx->len && ok((unsigned char)lx->p[lx->pos]))
		lx->pos++;
	return lx->pos - a;
}

/* lx_number - 1..9 digits into *v. */
static bool
lx_number(struct lex *lx, unsigned *v)
{
	size_t a = lx->pos, n;

	n = lx_run(lx, is_digit);
	if (n == 0)
		return lx_fail(lx, "expected a number");
	if (n > 9)
		return lx_fail(lx, "number too long");
	*v = 0;
	for (; a < lx->pos; a++)
		*v = *v * 10 + (unsigned)(lx->p[a] - '0');
	return true;
}

/*
 * lx_skip_resinfo - recovery: move to the next ';' that is outside quotes
 * and comments, or to the end. Control characters are simply passed over.
 */
static void
lx_skip_resinfo(struct lex *lx)
{
	size_t depth = 0;
	bool inq = false;

	while (lx->pos < lx->len) {
		char c = lx->p[lx->pos];

		if (c == '\\' && (inq || depth > 0)) {
			lx->pos += 2;
			continue;
		}
		if (inq) {
			if (c == '"')
				inq = false;
		} else if (depth > 0) {
			if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} else if (c == '"') {
			inq = true;
		} else if (c == '(') {
			depth = 1;
		} else if (c == ';') {
			return;
		}
		lx->pos++;
	}
	lx->pos = lx->len;
}

/* ------------------------------------------------------- the field start */

/* A span of the value holding an authserv-id, quoted or not. */
struct span {
	size_t off, len;
	bool quoted;		/* off/len exclude the quotes */
};

/* span_next - the next logical octet of an id span (quoted-pairs undone,
 * folding dropped); -1 at the end. */
static int
span_next(const char *p, const struct span *s, size_t *i)
{
	while (*i < s->len) {
		char c = p[s->off + (*i)++];

		if (!s->quoted)
			return (unsigned char)c;
		if (c == '\r' || c == '\n')
			continue;
		if (c == '\\' && *i < s->len)
			c = p[s->off + (*i)++];
		return (unsigned char)c;
	}
	return -1;
}

enum start {
	START_ID,		/* an authserv-id in the span */
	START_EMPTY,		/* nothing but CFWS */
	START_NO_ID,		/* ';' or a method comes first */
	START_BAD,		/* lx->err says why */
};

/*
 * lex_id - [CFWS] authserv-id, stopping after the id. For a header that
 * begins with a method ("spf=pass ..."), pos is left on the method.
 */
static enum start
lex_id(struct lex *lx, struct span *id)
{
	size_t a;
	int c;

	if (!lx_cfws(lx, NULL))
		return START_BAD;
	c = peek(lx);
	if (c < 0)
		return START_EMPTY;
	if (c == ';')
		return START_NO_ID;
	a = lx->pos;
	if (c == '"') {
		if (!lx_quoted(lx, NULL))
			return START_BAD;
		id->off = a + 1;
		id->len = lx->pos - a - 2;
		id->quoted = true;
		return START_ID;
	}
	if (!is_tokenc(c)) {
		lx_fail(lx, "no authserv-id");
		return START_BAD;
	}
	lx_run(lx, is_tokenc);
	id->off = a;
	id->len = lx->pos - a;
	id->quoted = false;
	/* A token followed by '=' or '/' is a method: there is no id. */
	{
		struct lex look = *lx;

		if (lx_cfws(&look, NULL) && (peek(&look) == '=' ||
		    peek(&look) == '/')) {
			lx->pos = a;
			id->len = 0;
			return START_NO_ID;
		}
	}
	return START_ID;
}

/* lex_version - after the id: [CFWS [version [CFWS]]], then ';' or end. */
static bool
lex_version(struct lex *lx, unsigned *version)
{
	size_t a = lx->pos;
	int c;

	*version = 0;
	if (!lx_cfws(lx, NULL))
		return false;
	c = peek(lx);
	if (is_digit(c)) {
		if (lx->pos == a)
			return lx_fail(lx, "junk after authserv-id");
		if (!lx_number(lx, version))
			return lx_fail(lx, "bad version after authserv-id");
		c = peek(lx);
		if (c >= 0 && !is_fws(c) && c != '(' && c != ';')
			return lx_fail(lx, "junk after version");
		if (!lx_cfws(lx, NULL))
			return false;
		c = peek(lx);
	}
	if (c >= 0 && c != ';')
		return lx_fail(lx, "junk after authserv-id");
	return true;
}

/* lex_instance - AAR: [CFWS] "i" [CFWS] "=" [CFWS] 1*DIGIT [CFWS] ";" */
static bool
lex_instance(struct lex *lx, unsigned *inst)
{
	if (!lx_cfws(lx, NULL))
		return false;
	if (peek(lx) != 'i')
		return lx_fail(lx, "does not start with i=");
	lx->pos++;
	if (!lx_cfws(lx, NULL))
		return false;
	if (peek(lx) != '=')
		return lx_fail(lx, "does not start with i=");
	lx->pos++;
	if (!lx_cfws(lx, NULL))
		return false;
	if (!lx_number(lx, inst))
		return lx_fail(lx, "i= is not a number");
	if (*inst < 1 || *inst > AUTHRES_MAX_INSTANCE)
		return lx_fail(lx, "i= out of range 1..50");
	if (!lx_cfws(lx, NULL))
		return false;
	if (peek(lx) != ';')
		return lx_fail(lx, "no ';' after i=");
	lx->pos++;
	return true;
}

bool
authres_is_ours(const char *value, size_t len, const char *authserv_id)
{
	struct lex lx = { value, len, 0, NULL };
	struct span id;
	size_t i = 0, j;
	int c;

	if (value == NULL || authserv_id == NULL || authserv_id[0] == '\0')
		return false;
	if (lex_id(&lx, &id) != START_ID)
		return false;
	/* The id must end where a reader would end it, or it is another. */
	c = peek(&lx);
	if (c >= 0 && !is_fws(c) && c != '(' && c != ';')
		return false;
	for (j = 0; authserv_id[j] != '\0'; j++) {
		c = span_next(value, &id, &i);
		if (c < 0 || lower((char)c) != lower(authserv_id[j]))
			return false;
	}
	return span_next(value, &id, &i) < 0;
}

/* ------------------------------------------------------------ the model */

/* Registered methods and their result codes (IANA "Email Authentication
 * Methods" and "Result Names"). */
static const struct {
	const char *method;
	const char *results;	/* space-separated */
} methods[] = {
	{ "arc", "none pass fail" },
	{ "auth", "none pass fail temperror permerror" },
	{ "dkim", "none pass fail policy neutral temperror permerror" },
	{ "dkim-adsp", "none pass unknown fail discard nxdomain temperror "
	    "permerror" },
	{ "dkim-atps", "none pass fail temperror permerror neutral" },
	{ "dmarc", "none pass fail temperror permerror" },
	{ "dnswl", "pass none temperror permerror" },
	{ "domainkeys", "none pass fail policy neutral temperror permerror" },
	{ "iprev", "pass fail temperror permerror" },
	{ "rrvs", "none unknown pass fail temperror permerror" },
	{ "sender-id", "none pass fail softfail policy neutral temperror "
	    "permerror hardfail" },
	{ "smime", "none pass fail policy neutral temperror permerror" },
	{ "spf", "none pass fail softfail policy neutral temperror permerror "
	    "hardfail" },
	{ "vbr", "none pass fail temperror permerror" },
};

static bool
word_in(const char *w, const char *list)
{
	size_t n = strlen(w);

	while (*list) {
		size_t m = strcspn(list, " ");

		if (m == n && memcmp(list, w, n) == 0)
			return true;
		list += m;
		while (*list == ' ')
			list++;
	}
	return false;
}

static unsigned
classify(const struct authres_result *r)
{
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].method, r->method) == 0)
			return (word_in(r->result, methods[i].results) ? 0 :
			    AUTHRES_R_UNKNOWN_RESULT) |
			    (r->method_version > 1 ? AUTHRES_R_UNKNOWN_VERSION : 0);
	return AUTHRES_R_UNKNOWN_METHOD |
	    (r->method_version > 1 ? AUTHRES_R_UNKNOWN_VERSION : 0);
}

static char *
copy(const char *p, size_t n, bool lc)
{
	char *s = malloc(n + 1);
	size_t i;

	if (s == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		s[i] = lc ? lower(p[i]) : p[i];
	s[n] = '\0';
	return s;
}

static void
result_clear(struct authres_result *r)
{
	size_t i;

	for (i = 0; i < r->np; i++) {
		free(r->p[i].ptype);
		free(r->p[i].property);
		free(r->p[i].value);
	}
	free(r->p);
	free(r->method);
	free(r->result);
	free(r->reason);
	free(r->comment);
	memset(r, 0, sizeof(*r));
}

void
authres_free(struct authres *ar)
{
	size_t i;

	if (ar == NULL)
		return;
	for (i = 0; i < ar->n; i++)
		result_clear(&ar->r[i]);
	free(ar->r);
	free(ar->authserv_id);
	free(ar);
}

static struct authres *
ar_alloc(const char *id, size_t idlen)
{
	struct authres *ar = calloc(1, sizeof(*ar));

	if (ar == NULL)
		return NULL;
	if ((ar->authserv_id = copy(id, idlen, false)) == NULL) {
		free(ar);
		return NULL;
	}
	return ar;
}

struct authres *
authres_new(const char *authserv_id)
{
	if (authserv_id == NULL)
		return NULL;
	return ar_alloc(authserv_id, strlen(authserv_id));
}

/* add_result - a new result from (ptr, len) pieces; NULL when full (*full
 * set) or out of memory. The slot array is allocated once, whole, so
 * results never move. */
static struct authres_result *
add_result(struct authres *ar, const char *m, size_t mlen, unsigned mver,
    const char *res, size_t rlen, bool *full)
{
	struct authres_result *r;

	*full = false;
	if (ar->n >= AUTHRES_MAX_RESULTS) {
		*full = true;
		return NULL;
	}
	if (ar->r == NULL &&
	    (ar->r = calloc(AUTHRES_MAX_RESULTS, sizeof(*ar->r))) == NULL)
		return NULL;
	r = &ar->r[ar->n];
	memset(r, 0, sizeof(*r));
	r->method = copy(m, mlen, true);
	r->result = copy(res, rlen, true);
	if (r->method == NULL || r->result == NULL) {
		result_clear(r);
		return NULL;
	}
	r->method_version = mver;
	r->flags = classify(r);
	ar->n++;
	return r;
}

struct authres_result *
authres_add_result(struct authres *ar, const char *method, const char *result,
    const char *reason)
{
	struct authres_result *r;
	bool full;

	if (ar == NULL || method == NULL || result == NULL)
		return NULL;
	r = add_result(ar, method, strlen(method), 0, result, strlen(result),
	    &full);
	if (r == NULL)
		return NULL;
	if (reason != NULL &&
	    (r->reason = copy(reason, strlen(reason), false)) == NULL) {
		result_clear(r);
		ar->n--;
		return NULL;
	}
	return r;
}

static bool
ptype_known(const char *t)
{
	return strcmp(t, "smtp") == 0 || strcmp(t, "header") == 0 ||
	    strcmp(t, "body") == 0 || strcmp(t, "policy") == 0;
}

/* add_prop - the property array grows one step at a time up to the cap;
 * nothing outside holds pointers into it. *full is set at the cap. */
static bool
add_prop(struct authres_result *r, const char *t, size_t tlen,
    const char *pr, size_t plen, const char *v, size_t vlen, bool *full)
{
	struct authres_prop *np, *p;

	*full = false;
	if (r->np >= AUTHRES_MAX_PROPS) {
		*full = true;
		return false;
	}
	if ((np = realloc(r->p, (r->np + 1) * sizeof(*np))) == NULL)
		return false;
	r->p = np;
	p = &r->p[r->np];
	p->ptype = copy(t, tlen, true);
	p->property = copy(pr, plen, true);
	p->value = copy(v, vlen, false);
	if (p->ptype == NULL || p->property == NULL || p->value == NULL) {
		free(p->ptype);
		free(p->property);
		free(p->value);
		return false;
	}
	p->flags = ptype_known(p->ptype) ? 0 : AUTHRES_P_UNKNOWN_PTYPE;
	r->np++;
	return true;
}

bool
authres_add_prop(struct authres_result *r, const char *ptype,
    const char *property, const char *value)
{
	bool full;

	if (r == NULL || ptype == NULL || property == NULL || value == NULL)
		return false;
	return add_prop(r, ptype, strlen(ptype), property, strlen(property),
	    value, strlen(value), &full);
}

bool
authres_set_comment(struct authres_result *r, const char *comment)
{
	char *c = NULL;

	if (r == NULL)
		return false;
	if (comment != NULL &&
	    (c = copy(comment, strlen(comment), false)) == NULL)
		return false;
	free(r->comment);
	r->comment = c;
	return true;
}

const char *
authres_prop_get(const struct authres_result *r, const char *ptype,
    const char *property)
{
	bool mailfrom;
	size_t i;

	if (r == NULL || ptype == NULL || property == NULL)
		return NULL;
	mailfrom = strcmp(ptype, "smtp") == 0 &&
	    strcmp(property, "mailfrom") == 0;
	for (i = 0; i < r->np; i++) {
		const struct authres_prop *p = &r->p[i];

		if (strcmp(p->ptype, ptype) != 0)
			continue;
		if (strcmp(p->property, property) == 0 ||
		    (mailfrom && strcmp(p->property, "mfrom") == 0))
			return p->value;
	}
	return NULL;
}

const char *
authres_err_str(enum authres_err e)
{
	switch (e) {
	case AUTHRES_E_NONE:		return "ok";
	case AUTHRES_E_ARG:		return "invalid argument";
	case AUTHRES_E_NOMEM:		return "out of memory";
	case AUTHRES_E_EMPTY:		return "empty header";
	case AUTHRES_E_TOO_LONG:	return "header too long";
	case AUTHRES_E_TOO_MANY_RESULTS: return "too many results";
	case AUTHRES_E_TOO_MANY_PROPS:	return "too many properties";
	case AUTHRES_E_BAD_INSTANCE:	return "bad instance";
	case AUTHRES_E_BAD_AUTHSERV_ID:	return "bad authserv-id";
	}
	return "unknown error";
}

/* --------------------------------------------------------------- parsing */

struct parse {
	struct lex lx;
	struct authres *ar;
	struct dkim_buf tmp;	/* scratch for unquoted values */
	struct dkim_buf cmt;	/* scratch for the result's comment */
	enum authres_err err;	/* set with a fatal outcome */
	const char *why;	/* static reason for a skip */
	bool added;		/* this resinfo has added a result */
};

enum ri {
	RI_OK,			/* a result was added */
	RI_EMPTY,		/* nothing between two ';' */
	RI_NONE,		/* the word "none" alone */
	RI_SKIP,		/* malformed; why says how */
	RI_FATAL,		/* cap or memory; err says which */
};

static enum ri
ri_skip(struct parse *ps, const char *why)
{
	ps->why = why ? why : "syntax error";
	return RI_SKIP;
}

static enum ri
ri_fatal(struct parse *ps, enum authres_err err)
{
	ps->err = err;
	return RI_FATAL;
}

/*
 * read_pvalue - [CFWS] (quoted-string / bare / "quoted"@domain) into
 * ps->tmp. The value must be followed by white space, a comment, ';' or
 * the end.
 */
static bool
read_pvalue(struct parse *ps)
{
	struct lex *lx = &ps->lx;
	int c;

	dkim_buf_reset(&ps->tmp);
	if (!lx_cfws(lx, NULL))
		return false;
	c = peek(lx);
	if (c == '"') {
		size_t a = lx->pos;

		if (!lx_quoted(lx, &ps->tmp))
			return false;
		if (peek(lx) == '@') {
			/* An addr-spec with a quoted local-part is kept as
			 * written, quotes and all: that is its text. */
			size_t i;

			dkim_buf_reset(&ps->tmp);
			lx_run(lx, is_barec);
			for (i = a; i < lx->pos; i++)
				if (lx->p[i] != '\r' && lx->p[i] != '\n')
					dkim_buf_addc(&ps->tmp, lx->p[i]);
		}
	} else {
		size_t a = lx->pos, n = lx_run(lx, is_barec);

		dkim_buf_add(&ps->tmp, lx->p + a, n);
	}
	c = peek(lx);
	if (c >= 0 && !is_fws(c) && c != '(' && c != ';')
		return lx_fail(lx, "junk after a value");
	return true;
}

static char *
tmp_take(struct parse *ps)
{
	return copy(ps->tmp.p ? ps->tmp.p : "", ps->tmp.len, false);
}

/*
 * parse_resinfo - one methodspec [reasonspec] *propspec, from just after a
 * ';' (or the start of a header without an id) up to the next ';' or end.
 */
static enum ri
parse_resinfo(struct parse *ps)
{
	struct lex *lx = &ps->lx;
	struct authres *ar = ps->ar;
	struct authres_result *r;
	const char *m, *res;
	size_t mlen, rlen;
	unsigned mver = 0;
	bool full;
	int c;

	if (!lx_cfws(lx, NULL))
		return ri_skip(ps, lx->err);
	c = peek(lx);
	if (c < 0 || c == ';')
		return RI_EMPTY;
	m = lx->p + lx->pos;
	if ((mlen = lx_run(lx, is_kwc)) == 0)
		return ri_skip(ps, "expected a method name");
	if (!lx_cfws(lx, NULL))
		return ri_skip(ps, lx->err);
	if (peek(lx) == '/') {
		lx->pos++;
		if (!lx_cfws(lx, NULL))
			return ri_skip(ps, lx->err);
		if (!lx_number(lx, &mver))
			return ri_skip(ps, "bad method version");
		if (!lx_cfws(lx, NULL))
			return ri_skip(ps, lx->err);
	}
	if (peek(lx) != '=') {
		c = peek(lx);
		if (mver == 0 && (c < 0 || c == ';') &&
		    word_is(m, mlen, "none"))
			return RI_NONE;
		return ri_skip(ps, "no '=' after the method");
	}
	lx->pos++;
	if (!lx_cfws(lx, NULL))
		return ri_skip(ps, lx->err);
	res = lx->p + lx->pos;
	if ((rlen = lx_run(lx, is_kwc)) == 0)
		return ri_skip(ps, "no result after the method");
	c = peek(lx);
	if (c >= 0 && !is_fws(c) && c != '(' && c != ';')
		return ri_skip(ps, "junk after the result");

	if ((r = add_result(ar, m, mlen, mver, res, rlen, &full)) == NULL)
		return ri_fatal(ps, full ? AUTHRES_E_TOO_MANY_RESULTS :
		    AUTHRES_E_NOMEM);
	ps->added = true;

	/* The comment right after the result is the one people read. */
	dkim_buf_reset(&ps->cmt);
	if (!lx_cfws(lx, &ps->cmt))
		return ri_skip(ps, lx->err);
	if (ps->cmt.failed)
		return ri_fatal(ps, AUTHRES_E_NOMEM);
	if (ps->cmt.len > 0 &&
	    (r->comment = copy(ps->cmt.p, ps->cmt.len, false)) == NULL)
		return ri_fatal(ps, AUTHRES_E_NOMEM);

	for (;;) {
		const char *t, *pr = NULL;
		size_t tlen, plen = 0;

		if (!lx_cfws(lx, NULL))
			return ri_skip(ps, lx->err);
		c = peek(lx);
		if (c < 0 || c == ';')
			return RI_OK;
		t = lx->p + lx->pos;
		if ((tlen = lx_run(lx, is_kwc)) == 0)
			return ri_skip(ps, "expected a property");
		if (!lx_cfws(lx, NULL))
			return ri_skip(ps, lx->err);
		if (peek(lx) == '.') {
			lx->pos++;
			if (!lx_cfws(lx, NULL))
				return ri_skip(ps, lx->err);
			pr = lx->p + lx->pos;
			if ((plen = lx_run(lx, is_kwc)) == 0)
				return ri_skip(ps, "no property after '.'");
			if (!lx_cfws(lx, NULL))
				return ri_skip(ps, lx->err);
		}
		if (peek(lx) != '=')
			return ri_skip(ps, "no '=' after a property");
		lx->pos++;
		if (!read_pvalue(ps))
			return ri_skip(ps, lx->err);
		if (ps->tmp.failed)
			return ri_fatal(ps, AUTHRES_E_NOMEM);
		if (pr == NULL && word_is(t, tlen, "reason")) {
			if (r->reason != NULL)
				return ri_skip(ps, "two reasons");
			if ((r->reason = tmp_take(ps)) == NULL)
				return ri_fatal(ps, AUTHRES_E_NOMEM);
			continue;
		}
		if (pr == NULL) {
			/* "action=none": kept, with no ptype. */
			pr = t;
			plen = tlen;
			tlen = 0;
		}
		if (!add_prop(r, t, tlen, pr, plen, ps->tmp.p ? ps->tmp.p : "",
		    ps->tmp.len, &full))
			return ri_fatal(ps, full ? AUTHRES_E_TOO_MANY_PROPS :
			    AUTHRES_E_NOMEM);
	}
}

static void
note_skip(struct authres *ar, size_t off, size_t len, const char *why)
{
	if (ar->nskip < AUTHRES_MAX_SKIPS) {
		ar->skip[ar->nskip].off = off;
		ar->skip[ar->nskip].len = len;
		ar->skip[ar->nskip].why = why;
	}
	ar->nskip++;
}

static void
whyf(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
whyf(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static enum dkim_status
status_of(enum authres_err e)
{
	switch (e) {
	case AUTHRES_E_NONE:		return DKIM_OK;
	case AUTHRES_E_ARG:		return DKIM_E_ARG;
	case AUTHRES_E_NOMEM:		return DKIM_E_NOMEM;
	case AUTHRES_E_EMPTY:		return DKIM_E_EMPTY;
	case AUTHRES_E_TOO_LONG:
	case AUTHRES_E_TOO_MANY_RESULTS:
	case AUTHRES_E_TOO_MANY_PROPS:	return DKIM_E_LIMIT;
	case AUTHRES_E_BAD_INSTANCE:
	case AUTHRES_E_BAD_AUTHSERV_ID:	return DKIM_E_SYNTAX;
	}
	return DKIM_E_SYNTAX;
}

/*
 * parse_results - every resinfo to the end. lx is on the first ';' or, in
 * a header that starts with a method, on that method.
 */
static bool
parse_results(struct parse *ps, bool at_method)
{
	struct lex *lx = &ps->lx;
	struct authres *ar = ps->ar;
	size_t none_off = 0, none_len = 0;

	for (;;) {
		size_t start;

		if (!at_method) {
			if (lx->pos >= lx->len)
				break;
			lx->pos++;	/* the ';' */
		}
		at_method = false;
		start = lx->pos;
		ps->added = false;
		switch (parse_resinfo(ps)) {
		case RI_OK:
		case RI_EMPTY:
			break;
		case RI_NONE:
			if (ar->n == 0 && !ar->none) {
				ar->none = true;
				none_off = start;
				none_len = lx->pos - start;
			} else {
				note_skip(ar, start, lx->pos - start,
				    "'none' among results");
			}
			break;
		case RI_SKIP:
			/* Nothing of a broken resinfo is kept. */
			if (ps->added)
				result_clear(&ar->r[--ar->n]);
			lx->pos = start;
			lx_skip_resinfo(lx);
			note_skip(ar, start, lx->pos - start, ps->why);
			break;
		case RI_FATAL:
			return false;
		}
	}
	if (ar->none && ar->n > 0) {
		ar->none = false;
		note_skip(ar, none_off, none_len, "'none' among results");
	}
	return true;
}

enum dkim_status
authres_parse_ex(const char *value, size_t len, unsigned flags,
    struct authres **out, enum authres_err *errp, char *why, size_t whylen)
{
	struct parse ps;
	struct span id = { 0, 0, false };
	enum authres_err err = AUTHRES_E_NONE;
	enum start st;
	unsigned inst = 0, version = 0;
	bool aar = (flags & AUTHRES_PARSE_AAR) != 0;

	memset(&ps, 0, sizeof(ps));
	dkim_buf_init(&ps.tmp, AUTHRES_MAX_LEN + 1);
	dkim_buf_init(&ps.cmt, AUTHRES_MAX_LEN + 1);
	whyf(why, whylen, "%s", "");
	if (out != NULL)
		*out = NULL;
	if (out == NULL || (value == NULL && len > 0)) {
		err = AUTHRES_E_ARG;
		whyf(why, whylen, "no value or no place for the result");
		goto fail;
	}
	if (len > AUTHRES_MAX_LEN) {
		err = AUTHRES_E_TOO_LONG;
		whyf(why, whylen, "header value is %zu octets, the limit is %d",
		    len, AUTHRES_MAX_LEN);
		goto fail;
	}
	ps.lx.p = value;
	ps.lx.len = len;

	if (aar && !lex_instance(&ps.lx, &inst)) {
		err = AUTHRES_E_BAD_INSTANCE;
		whyf(why, whylen, "ARC-Authentication-Results %s (offset %zu)",
		    lx_why(&ps.lx), ps.lx.pos);
		goto fail;
	}
	st = lex_id(&ps.lx, &id);
	if (st == START_EMPTY) {
		err = aar ? AUTHRES_E_BAD_AUTHSERV_ID : AUTHRES_E_EMPTY;
		whyf(why, whylen, aar ? "no authserv-id after i=%u" :
		    "empty header value", inst);
		goto fail;
	}
	if (st == START_BAD ||
	    (st == START_ID && !lex_version(&ps.lx, &version))) {
		err = AUTHRES_E_BAD_AUTHSERV_ID;
		whyf(why, whylen, "%s (offset %zu)", lx_why(&ps.lx), ps.lx.pos);
		goto fail;
	}

	/* The id text, unquoted and unfolded. */
	{
		size_t i = 0;
		int c;

		while ((c = span_next(value, &id, &i)) >= 0)
			dkim_buf_addc(&ps.tmp, (char)c);
		if (ps.tmp.failed ||
		    (ps.ar = ar_alloc(ps.tmp.p ? ps.tmp.p : "", ps.tmp.len))
		    == NULL) {
			err = AUTHRES_E_NOMEM;
			whyf(why, whylen, "out of memory");
			goto fail;
		}
	}
	ps.ar->instance = inst;
	ps.ar->version = version;
	if (version != 0 && version != 1)
		ps.ar->flags |= AUTHRES_F_UNKNOWN_VERSION;
	if (st == START_NO_ID || ps.ar->authserv_id[0] == '\0')
		ps.ar->flags |= AUTHRES_F_NO_AUTHSERV_ID;

	if (!parse_results(&ps, st == START_NO_ID && peek(&ps.lx) != ';')) {
		err = ps.err;
		if (err == AUTHRES_E_TOO_MANY_RESULTS)
			whyf(why, whylen, "more than %d results",
			    AUTHRES_MAX_RESULTS);
		else if (err == AUTHRES_E_TOO_MANY_PROPS)
			whyf(why, whylen, "more than %d properties in result "
			    "%zu", AUTHRES_MAX_PROPS, ps.ar->n);
		else
			whyf(why, whylen, "out of memory");
		goto fail;
	}
	if (ps.ar->nskip > 0)
		whyf(why, whylen, "skipped %zu malformed resinfo, the first at "
		    "offset %zu: %s", ps.ar->nskip, ps.ar->skip[0].off,
		    ps.ar->skip[0].why);
	dkim_buf_free(&ps.tmp);
	dkim_buf_free(&ps.cmt);
	*out = ps.ar;
	if (errp)
		*errp = AUTHRES_E_NONE;
	return DKIM_OK;

fail:
	authres_free(ps.ar);
	dkim_buf_free(&ps.tmp);
	dkim_buf_free(&ps.cmt);
	if (errp)
		*errp = err;
	return status_of(err);
}

enum dkim_status
authres_parse(const char *value, size_t len, struct authres **out,
    char *why, size_t whylen)
{
	return authres_parse_ex(value, len, 0, out, NULL, why, whylen);
}

enum dkim_status
authres_parse_aar(const char *value, size_t len, struct authres **out,
    char *why, size_t whylen)
{
	return authres_parse_ex(value, len, AUTHRES_PARSE_AAR, out, NULL, why,
	    whylen);
}

/* ------------------------------------------------------------ formatting */

static bool
is_keyword(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!is_kwc((unsigned char)*s))
			return false;
	return true;
}

static bool
is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!is_tokenc((unsigned char)*s) || (unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* is_domain - DKIM domain-name: dot-separated labels of letters, digits,
 * '-' and '_'. */
static bool
is_domain(const char *s)
{
	size_t run = 0;

	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s == '.') {
			if (run == 0)
				return false;
			run = 0;
		} else if (is_kwc((unsigned char)*s)) {
			run++;
		} else {
			return false;
		}
	}
	return run > 0;
}

/* is_local_quoted - a quoted-string local-part as the parser keeps it:
 * '"' qcontent '"', from s up to end. */
static bool
is_local_quoted(const char *s, const char *end)
{
	if (end - s < 2 || *s != '"' || end[-1] != '"')
		return false;
	for (s++; s < end - 1; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\\') {
			if (++s >= end - 1)
				return false;
			c = (unsigned char)*s;
			if (is_ctl(c) && c != '\t')
				return false;
		} else if (c == '"' || (is_ctl(c) && c != '\t')) {
			return false;
		}
	}
	return true;
}

/* is_local_dot - dot-atom-text: atext runs joined by single dots. */
static bool
is_local_dot(const char *s, const char *end)
{
	bool prev_dot = true;

	if (s == end)
		return false;
	for (; s < end; s++) {
		if (*s == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
		} else if (is_atext((unsigned char)*s)) {
			prev_dot = false;
		} else {
			return false;
		}
	}
	return !prev_dot;
}

/* is_addr - [local-part] "@" domain-name, which RFC 8601 asks identities
 * to be written as, unquoted. */
static bool
is_addr(const char *s)
{
	const char *at = strrchr(s, '@');

	if (at == NULL || !is_domain(at + 1))
		return false;
	return at == s || is_local_dot(s, at) || is_local_quoted(s, at);
}

/*
 * put_quoted - open text close, with '"' and '\' (and in comments '(' and
 * ')') escaped. Control characters have no safe spelling in a header: in
 * free text (comments, reasons) they become spaces, anywhere else they
 * make the value unwritable.
 */
static bool
put_quoted(struct dkim_buf *out, const char *s, char open, char close,
    bool freetext)
{
	dkim_buf_addc(out, open);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (is_ctl(c) && c != '\t') {
			if (!freetext)
				return false;
			c = ' ';
		}
		if (c == '\\' || c == '"' || (open == '(' &&
		    (c == '(' || c == ')')))
			dkim_buf_addc(out, '\\');
		dkim_buf_addc(out, (char)c);
	}
	dkim_buf_addc(out, close);
	return true;
}

static bool
put_value(struct dkim_buf *out, const char *s)
{
	if (is_token(s) || is_addr(s))
		return dkim_buf_adds(out, s);
	return put_quoted(out, s, '"', '"', false);
}

static bool
put_result(struct dkim_buf *out, const struct authres_result *r,
    bool comments)
{
	size_t i;

	if (r->method == NULL || r->result == NULL || !is_keyword(r->method) ||
	    !is_keyword(r->result))
		return false;
	dkim_buf_addf(out, "; %s", r->method);
	if (r->method_version > 0)
		dkim_buf_addf(out, "/%u", r->method_version);
	dkim_buf_addf(out, "=%s", r->result);
	if (comments && r->comment != NULL && r->comment[0] != '\0') {
		dkim_buf_addc(out, ' ');
		if (!put_quoted(out, r->comment, '(', ')', true))
			return false;
	}
	if (r->reason != NULL) {
		dkim_buf_adds(out, " reason=");
		if (!put_quoted(out, r->reason, '"', '"', true))
			return false;
	}
	for (i = 0; i < r->np; i++) {
		const struct authres_prop *p = &r->p[i];

		if (p->ptype == NULL || p->property == NULL ||
		    p->value == NULL || !is_keyword(p->property))
			return false;
		dkim_buf_addc(out, ' ');
		if (p->ptype[0] != '\0') {
			if (!is_keyword(p->ptype))
				return false;
			dkim_buf_addf(out, "%s.", p->ptype);
		} else if (strcmp(p->property, "reason") == 0) {
			return false;	/* would read back as a reason */
		}
		dkim_buf_addf(out, "%s=", p->property);
		if (!put_value(out, p->value))
			return false;
	}
	return true;
}

bool
authres_format(const struct authres *ar, bool arc, unsigned instance,
    bool comments, struct dkim_buf *out)
{
	size_t mark, i;
	bool ok = true;

	if (ar == NULL || out == NULL || out->failed)
		return false;
	mark = out->len;
	if (arc) {
		if (instance == 0)
			instance = ar->instance;
		if (instance < 1 || instance > AUTHRES_MAX_INSTANCE)
			return false;
		dkim_buf_addf(out, " i=%u;", instance);
		comments = false;
	}
	if (ar->authserv_id == NULL || ar->authserv_id[0] == '\0') {
		ok = false;
	} else {
		/* A token or a quoted-string: an id has no addr form. */
		dkim_buf_addc(out, ' ');
		ok = is_token(ar->authserv_id) ?
		    dkim_buf_adds(out, ar->authserv_id) :
		    put_quoted(out, ar->authserv_id, '"', '"', false);
	}
	if (ok && ar->version > 0)
		dkim_buf_addf(out, " %u", ar->version);
	for (i = 0; ok && i < ar->n; i++)
		ok = put_result(out, &ar->r[i], comments);
	if (ok && ar->n == 0)
		dkim_buf_adds(out, "; none");
	if (!ok || out->failed) {
		/* Back to what the caller had, ceiling hit or not. */
		out->failed = false;
		out->len = mark;
		if (out->p)
			out->p[mark] = '\0';
		return false;
	}
	return true;
}
