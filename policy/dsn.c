/*
 * dsn.c - RFC 3464 delivery status notifications, read (see dsn.h).
 *
 * The message is walked as MIME (RFC 2045/2046) only as far as needed to
 * find the first message/delivery-status part whose parent is a
 * multipart/report; that part's body (decoded first when it is in
 * base64 or quoted-printable) is then read as groups of fields.
 * One reader serves every header-like block (the message's header, each
 * part's header, each status group): a field and its folded lines become
 * one unfolded value in a fixed buffer of DSN_MAX_FIELD octets.
 *
 * SECURITY: every byte comes from whoever sent the bounce. Nothing is
 * trusted to be NUL-terminated, counted or closed: lengths bound every
 * scan, the caps of dsn.h bound the work, and strings copied out have
 * their control characters replaced, so a report cannot split a log line
 * that quotes it (the daemon escapes them again all the same).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim.h"
#include "dsn.h"

#define WHY(...) do { if (w->why != NULL && w->whylen > 0) \
	snprintf(w->why, w->whylen, __VA_ARGS__); } while (0)

/* ------------------------------------------------------ header blocks */

/* One unfolded field: name points into the input, the value is a copy. */
struct fld {
	const char *name;
	size_t name_len;
	char val[DSN_MAX_FIELD + 1];	/* NUL-terminated, trimmed */
	size_t len;
	bool over;			/* the value was longer: cut */
};

enum rf { RF_FIELD, RF_END, RF_BAD };

/* line_at - the line at pos: its length without CR LF, and where the
 * next one starts. */
static size_t
line_at(const char *p, size_t n, size_t pos, size_t *next)
{
	const char *nl = memchr(p + pos, '\n', n - pos);
	size_t e = nl != NULL ? (size_t)(nl - p) : n;

	*next = nl != NULL ? e + 1 : n;
	if (e > pos && p[e - 1] == '\r')
		e--;
	return e - pos;
}

static void
fld_add(struct fld *f, const char *s, size_t k)
{
	size_t i;

	for (i = 0; i < k; i++) {
		unsigned char c = (unsigned char)s[i];

		if (f->len == DSN_MAX_FIELD) {
			f->over = true;
			return;
		}
		f->val[f->len++] = c == '\t' || (c >= ' ' && c != 0x7f) ?
		    (char)c : '?';
	}
}

/*
 * read_field - the field at *pos of the block (p, n) into f. RF_END at
 * the empty line that ends a block (consumed) or at the end of input;
 * RF_BAD for a line that is not a field (consumed, with its folds).
 */
static enum rf
read_field(const char *p, size_t n, size_t *pos, struct fld *f)
{
	size_t next, k, i, b;
	const char *s;
	bool colon;

	if (*pos >= n)
		return RF_END;
	s = p + *pos;
	k = line_at(p, n, *pos, &next);
	*pos = next;
	if (k == 0)
		return RF_END;
	f->len = 0;
	f->over = false;
	for (i = 0; i < k && s[i] != ':'; i++)
		;
	for (b = i; b > 0 && (s[b - 1] == ' ' || s[b - 1] == '\t'); b--)
		;
	f->name = s;
	f->name_len = b;
	if (i < k)
		fld_add(f, s + i + 1, k - i - 1);
	colon = i < k;
	/* Folded lines belong to it, a field or not. */
	while (*pos < n && (p[*pos] == ' ' || p[*pos] == '\t')) {
		s = p + *pos;
		k = line_at(p, n, *pos, &next);
		*pos = next;
		fld_add(f, s, k);
	}
	if (!colon || b == 0 || f->name[0] == ' ' || f->name[0] == '\t')
		return RF_BAD;
	for (b = 0; b < f->name_len; b++)
		if ((unsigned char)f->name[b] <= ' ' ||
		    (unsigned char)f->name[b] >= 0x7f)
			return RF_BAD;
	while (f->len > 0 && (f->val[f->len - 1] == ' ' ||
	    f->val[f->len - 1] == '\t'))
		f->len--;
	for (i = 0; i < f->len && (f->val[i] == ' ' || f->val[i] == '\t');
	    i++)
		;
	memmove(f->val, f->val + i, f->len - i);
	f->len -= i;
	f->val[f->len] = '\0';
	return RF_FIELD;
}

static bool
fld_is(const struct fld *f, const char *name)
{
	return strlen(name) == f->name_len &&
	    strncasecmp(f->name, name, f->name_len) == 0;
}

/* ------------------------------------------------------- Content-Type */

struct ctype {
	char type[64], sub[64];		/* lowercase; "" when absent */
	char boundary[DSN_MAX_BOUNDARY + 1];
	bool boundary_over;		/* longer than the cap */
};

/* skip_cfws - white space and (nested, escaped) comments. */
static const char *
skip_cfws(const char *s)
{
	unsigned depth = 0;

	for (;;) {
		if (*s == ' ' || *s == '\t')
			s++;
		else if (*s == '(') {
			depth = 1;
			for (s++; *s != '\0' && depth > 0; s++)
				if (*s == '\\' && s[1] != '\0')
					s++;
				else if (*s == '(' && depth < 32)
					depth++;
				else if (*s == ')')
					depth--;
		} else
			return s;
	}
}

static bool
tspecial(char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* token - an RFC 2045 token into dst (cap with NUL; lower when asked);
 * the end, or NULL for no token. */
static const char *
token(const char *s, char *dst, size_t cap, bool lower, bool *over)
{
	size_t o = 0;

	*over = false;
	while ((unsigned char)*s > ' ' && (unsigned char)*s < 0x7f &&
	    !tspecial(*s)) {
		if (o + 1 < cap)
			dst[o++] = lower ? (char)tolower((unsigned char)*s) :
			    *s;
		else
			*over = true;
		s++;
	}
	dst[o] = '\0';
	return o > 0 || *over ? s : NULL;
}

/* quoted - a quoted-string's content into dst; the end past the quote. */
static const char *
quoted(const char *s, char *dst, size_t cap, bool *over)
{
	size_t o = 0;

	*over = false;
	for (s++; *s != '\0' && *s != '"'; s++) {
		if (*s == '\\' && s[1] != '\0')
			s++;
		if (o + 1 < cap)
			dst[o++] = *s;
		else
			*over = true;
	}
	dst[o] = '\0';
	return *s == '"' ? s + 1 : s;
}

/* ctype_parse - type, subtype and boundary of a Content-Type value;
 * junk after them ends the parameters, as MIME readers do. */
static void
ctype_parse(const char *v, struct ctype *ct)
{
	char name[64], value[DSN_MAX_BOUNDARY + 1];
	const char *s;
	bool over;

	memset(ct, 0, sizeof(*ct));
	if ((s = token(skip_cfws(v), ct->type, sizeof(ct->type), true,
	    &over)) == NULL)
		return;
	s = skip_cfws(s);
	if (*s != '/' || (s = token(skip_cfws(s + 1), ct->sub,
	    sizeof(ct->sub), true, &over)) == NULL) {
		ct->type[0] = ct->sub[0] = '\0';
		return;
	}
	for (;;) {
		s = skip_cfws(s);
		if (*s != ';')
			return;
		s = skip_cfws(s + 1);
		if ((s = token(s, name, sizeof(name), true, &over)) == NULL)
			return;
		s = skip_cfws(s);
		if (*s != '=')
			return;
		s = skip_cfws(s + 1);
		if (*s == '"')
			s = quoted(s, value, sizeof(value), &over);
		else if ((s = token(s, value, sizeof(value), false, &over)) ==
		    NULL)
			return;
		if (strcmp(name, "boundary") == 0 && ct->boundary[0] == '\0' &&
		    !ct->boundary_over) {
			memcpy(ct->boundary, value, sizeof(value));
			ct->boundary_over = over;
		}
	}
}

/* ------------------------------------------------------------ the walk */

struct walk {
	struct dsn *d;
	size_t parts;
	size_t decoded;			/* octets of encoded multiparts */
	char *why;
	size_t whylen;
};

static enum dsn_rc read_status(struct walk *w, const char *p, size_t n);

/* A body's Content-Transfer-Encoding; any other value is read as it
 * stands (7bit, 8bit, binary, or one nobody decodes). */
enum cte { CTE_IDENTITY, CTE_QP, CTE_BASE64 };

/* part_header - Content-Type and transfer encoding of the part at (p,
 * n), and where its body starts. */
static enum dsn_rc
part_header(struct walk *w, const char *p, size_t n, struct ctype *ct,
    enum cte *enc, size_t *body)
{
	struct fld *f = malloc(sizeof(*f));
	size_t pos = 0, nf = 0;
	bool have_ct = false;
	enum rf r;

	if (f == NULL)
		return DSN_E_NOMEM;
	memset(ct, 0, sizeof(*ct));
	*enc = CTE_IDENTITY;
	while ((r = read_field(p, n, &pos, f)) != RF_END) {
		if (++nf > DSN_MAX_HEADER_FIELDS) {
			free(f);
			WHY("more than %d fields in a header",
			    DSN_MAX_HEADER_FIELDS);
			return DSN_E_LIMIT;
		}
		if (r != RF_FIELD)
			continue;
		if (fld_is(f, "Content-Type") && !have_ct) {
			ctype_parse(f->val, ct);
			have_ct = true;
		} else if (fld_is(f, "Content-Transfer-Encoding")) {
			size_t k = strcspn(f->val, " \t(");

			*enc = k == 6 && strncasecmp(f->val, "base64", k) == 0 ?
			    CTE_BASE64 : k == 16 && strncasecmp(f->val,
			    "quoted-printable", k) == 0 ? CTE_QP : CTE_IDENTITY;
		}
	}
	free(f);
	*body = pos;
	return DSN_OK;
}

/* delim - is the line (s, k) the delimiter of b, and the close one? */
static bool
delim(const char *s, size_t k, const char *b, size_t blen, bool *close)
{
	size_t i;

	if (k < blen + 2 || s[0] != '-' || s[1] != '-' ||
	    memcmp(s + 2, b, blen) != 0)
		return false;
	i = blen + 2;
	*close = k >= i + 2 && s[i] == '-' && s[i + 1] == '-';
	if (*close)
		i += 2;
	for (; i < k; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

static enum dsn_rc walk_part(struct walk *w, const char *p, size_t n,
    unsigned depth, bool parent_report);

/* walk_multipart - each body part between the delimiters of b, until one
 * answers; a missing close delimiter ends the last part at the end (a
 * report cut short still reads). */
static enum dsn_rc
walk_multipart(struct walk *w, const char *p, size_t n, const char *b,
    unsigned depth, bool report)
{
	size_t pos = 0, start = SIZE_MAX, blen = strlen(b), next, k, end;
	enum dsn_rc rc;
	bool close;

	while (pos < n) {
		k = line_at(p, n, pos, &next);
		if (delim(p + pos, k, b, blen, &close)) {
			if (start != SIZE_MAX) {
				end = pos;
				if (end > start && p[end - 1] == '\n')
					end--;
				if (end > start && p[end - 1] == '\r')
					end--;
				rc = walk_part(w, p + start, end - start,
				    depth + 1, report);
				if (rc != DSN_E_NOT_DSN)
					return rc;
			}
			if (close)
				return DSN_E_NOT_DSN;
			start = next;
		}
		pos = next;
	}
	if (start != SIZE_MAX && start < n)
		return walk_part(w, p + start, n - start, depth + 1, report);
	return DSN_E_NOT_DSN;
}

/* decode_body - the body (p, n) in base64 or quoted-printable into a
 * new buffer *out (at most n octets; the caller frees it); what names
 * the body in the reason when it does not decode. */
static enum dsn_rc
decode_body(struct walk *w, enum cte enc, const char *p, size_t n,
    const char *what, char **out, size_t *outlen)
{
	size_t line = 0;

	if (enc == CTE_BASE64) {
		if ((*out = (char *)dkim_b64_decode(p, n, outlen)) == NULL) {
			WHY("%s is not valid base64", what);
			return DSN_E_MALFORMED;
		}
		return DSN_OK;
	}
	if ((*out = dkim_qp_decode(p, n, outlen, &line)) != NULL)
		return DSN_OK;
	if (line == 0)
		return DSN_E_NOMEM;
	WHY("%s is not valid quoted-printable (a bad escape on its line %zu)",
	    what, line);
	return DSN_E_MALFORMED;
}

/*
 * walk_multipart_encoded - a multipart body in base64 or quoted-
 * printable. RFC 2045 §6.4 allows neither, but some reporting MTAs
 * encode the whole report: it is decoded, within DSN_MAX_DECODED octets
 * for the whole message, and walked.
 */
static enum dsn_rc
walk_multipart_encoded(struct walk *w, enum cte enc, const char *p,
    size_t n, const char *b, unsigned depth, bool report)
{
	enum dsn_rc rc;
	size_t dlen;
	char *dec;

	if (n > DSN_MAX_DECODED - w->decoded) {
		WHY("encoded multipart bodies over %d octets",
		    DSN_MAX_DECODED);
		return DSN_E_LIMIT;
	}
	w->decoded += n;
	if ((rc = decode_body(w, enc, p, n, "a multipart body", &dec,
	    &dlen)) != DSN_OK)
		return rc;
	rc = walk_multipart(w, dec, dlen, b, depth, report);
	free(dec);
	return rc;
}

static enum dsn_rc
walk_part(struct walk *w, const char *p, size_t n, unsigned depth,
    bool parent_report)
{
	struct ctype ct;
	size_t body, dlen;
	enum cte enc;
	enum dsn_rc rc;
	char *dec;

	if (depth > DSN_MAX_DEPTH) {
		WHY("more than %d multipart levels", DSN_MAX_DEPTH);
		return DSN_E_LIMIT;
	}
	if (++w->parts > DSN_MAX_PARTS) {
		WHY("more than %d MIME parts", DSN_MAX_PARTS);
		return DSN_E_LIMIT;
	}
	if ((rc = part_header(w, p, n, &ct, &enc, &body)) != DSN_OK)
		return rc;
	if (strcmp(ct.type, "multipart") == 0) {
		bool report = strcmp(ct.sub, "report") == 0;

		if (ct.boundary_over) {
			WHY("a boundary longer than %d octets",
			    DSN_MAX_BOUNDARY);
			return DSN_E_LIMIT;
		}
		if (ct.boundary[0] == '\0')
			return DSN_E_NOT_DSN;
		if (enc != CTE_IDENTITY)
			return walk_multipart_encoded(w, enc, p + body,
			    n - body, ct.boundary, depth, report);
		return walk_multipart(w, p + body, n - body, ct.boundary,
		    depth, report);
	}
	if (!parent_report || strcmp(ct.type, "message") != 0 ||
	    (strcmp(ct.sub, "delivery-status") != 0 &&
	    strcmp(ct.sub, "global-delivery-status") != 0))
		return DSN_E_NOT_DSN;
	if (n - body > DSN_MAX_STATUS) {
		WHY("a status part over %d octets", DSN_MAX_STATUS);
		return DSN_E_LIMIT;
	}
	if (enc == CTE_IDENTITY)
		return read_status(w, p + body, n - body);
	if ((rc = decode_body(w, enc, p + body, n - body, "the status part",
	    &dec, &dlen)) != DSN_OK)
		return rc;
	/* Never more octets than the encoding, but the cap is the cap. */
	if (dlen > DSN_MAX_STATUS) {
		WHY("a decoded status part over %d octets", DSN_MAX_STATUS);
		rc = DSN_E_LIMIT;
	} else
		rc = read_status(w, dec, dlen);
	free(dec);
	return rc;
}

/* ------------------------------------------------------- status groups */

/* copy_str - (s, k) trimmed into dst (cap with NUL), lowercase when
 * asked, a tab left inside (a fold) as a space: no control character
 * reaches the caller. False when it does not fit. */
static bool
copy_str(char *dst, size_t cap, const char *s, size_t k, bool lower)
{
	size_t i;

	while (k > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		k--;
	}
	while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t'))
		k--;
	if (k >= cap)
		return false;
	for (i = 0; i < k; i++)
		dst[i] = s[i] == '\t' ? ' ' : lower ?
		    (char)tolower((unsigned char)s[i]) : s[i];
	dst[k] = '\0';
	return true;
}

/* typed - "type; value" into its parts: the type lowercase; without a
 * ';' the type is "" and the whole is the value. */
static bool
typed(const struct fld *f, char *type, size_t tcap, const char **v,
    size_t *vlen)
{
	const char *semi = memchr(f->val, ';', f->len);

	if (semi == NULL) {
		type[0] = '\0';
		*v = f->val;
		*vlen = f->len;
		return true;
	}
	*v = semi + 1;
	*vlen = f->len - (size_t)(semi + 1 - f->val);
	return copy_str(type, tcap, f->val, (size_t)(semi - f->val), true);
}

/* recipient - an address-type ";" generic-address field, <> removed. */
static bool
recipient(const struct fld *f, char *type, char *addr)
{
	const char *v;
	size_t k;

	if (!typed(f, type, DSN_TYPE_MAX, &v, &k))
		return false;
	while (k > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		k--;
	}
	while (k > 0 && (v[k - 1] == ' ' || v[k - 1] == '\t'))
		k--;
	if (k >= 2 && v[0] == '<' && v[k - 1] == '>') {
		v++;
		k -= 2;
	}
	return copy_str(addr, DSN_ADDR_MAX, v, k, false);
}

static bool
action_ok(const char *a)
{
	static const char *const kw[] = { "failed", "delayed", "delivered",
	    "relayed", "expanded" };
	size_t i;

	for (i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
		if (strcmp(a, kw[i]) == 0)
			return true;
	return false;
}

/* status_code - RFC 3464 §2.3.4: class "." subject "." detail, class 2,
 * 4 or 5, up to three digits each after it; a comment may follow. */
static bool
status_code(const char *v, char *out, size_t cap)
{
	const char *s = v;
	int part;

	if (*s != '2' && *s != '4' && *s != '5')
		return false;
	s++;
	for (part = 0; part < 2; part++) {
		int d = 0;

		if (*s++ != '.')
			return false;
		while (isdigit((unsigned char)*s) && d < 4) {
			s++;
			d++;
		}
		if (d == 0 || d > 3)
			return false;
	}
	if (*s != '\0' && *s != ' ' && *s != '\t' && *s != '(')
		return false;
	return copy_str(out, cap, v, (size_t)(s - v), false);
}

/* diag_text - the text, white space runs as one space, cut with "...". */
static void
diag_text(char *dst, const char *s, size_t k, bool over)
{
	size_t o = 0, i;
	bool cut = over;

	for (i = 0; i < k; i++) {
		bool ws = s[i] == ' ' || s[i] == '\t';

		if (ws && (o == 0 || dst[o - 1] == ' '))
			continue;
		if (o + 1 >= DSN_DIAG_MAX - 3) {
			cut = true;
			break;
		}
		dst[o++] = ws ? ' ' : s[i];
	}
	while (o > 0 && dst[o - 1] == ' ')
		o--;
	if (cut) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

/* One group's findings. */
struct group {
	struct dsn_rcpt r;
	bool final, orig, action, status, diag, mta;
	bool recipient;			/* a per-recipient field seen */
};

/* group_field - one field of a status group into g. */
static enum dsn_rc
group_field(struct walk *w, const struct fld *f, struct group *g, size_t gi)
{
	const char *v;
	size_t k;

	if (fld_is(f, "Reporting-MTA")) {
		char type[DSN_TYPE_MAX];

		/* Only for the log: an overlong name is cut, not refused. */
		if (!g->mta && typed(f, type, sizeof(type), &v, &k)) {
			g->mta = true;
			if (k >= sizeof(w->d->reporting_mta))
				k = sizeof(w->d->reporting_mta) - 1;
			copy_str(w->d->reporting_mta,
			    sizeof(w->d->reporting_mta), v, k, false);
		}
		return DSN_OK;
	}
	if (fld_is(f, "Final-Recipient") || fld_is(f, "Original-Recipient")) {
		bool fin = fld_is(f, "Final-Recipient");
		bool *seen = fin ? &g->final : &g->orig;

		g->recipient = true;
		if (*seen)
			return DSN_OK;
		*seen = true;
		if (f->over || !recipient(f, fin ? g->r.final_type :
		    g->r.orig_type, fin ? g->r.final_addr : g->r.orig_addr)) {
			WHY("%.*s in recipient group %zu longer than its cap",
			    (int)f->name_len, f->name, gi);
			return DSN_E_LIMIT;
		}
		if (fin && g->r.final_addr[0] == '\0') {
			WHY("an empty Final-Recipient in recipient group %zu",
			    gi);
			return DSN_E_MALFORMED;
		}
		return DSN_OK;
	}
	if (fld_is(f, "Action")) {
		g->recipient = true;
		if (g->action)
			return DSN_OK;
		g->action = true;
		k = strcspn(f->val, " \t(");
		if (!copy_str(g->r.action, sizeof(g->r.action), f->val, k,
		    true) || !action_ok(g->r.action)) {
			WHY("Action \"%.40s\" in recipient group %zu is not "
			    "failed, delayed, delivered, relayed or expanded",
			    f->val, gi);
			return DSN_E_MALFORMED;
		}
		return DSN_OK;
	}
	if (fld_is(f, "Status")) {
		g->recipient = true;
		if (g->status)
			return DSN_OK;
		g->status = true;
		if (!status_code(f->val, g->r.status, sizeof(g->r.status))) {
			WHY("Status \"%.40s\" in recipient group %zu is not "
			    "a status code", f->val, gi);
			return DSN_E_MALFORMED;
		}
		return DSN_OK;
	}
	if (fld_is(f, "Diagnostic-Code")) {
		g->recipient = true;
		if (g->diag)
			return DSN_OK;
		g->diag = true;
		if (!typed(f, g->r.diag_type, DSN_TYPE_MAX, &v, &k)) {
			WHY("a Diagnostic-Code type in recipient group %zu "
			    "longer than its cap", gi);
			return DSN_E_LIMIT;
		}
		diag_text(g->r.diag, v, k, f->over);
	}
	return DSN_OK;
}

/* group_end - a finished group: per-message, or a recipient to keep. */
static enum dsn_rc
group_end(struct walk *w, struct group *g, size_t gi)
{
	struct dsn *d = w->d;
	struct dsn_rcpt *nr;

	if (!g->recipient)
		return DSN_OK;
	if (!g->final || !g->action || !g->status) {
		WHY("no %s in recipient group %zu", !g->final ?
		    "Final-Recipient" : !g->action ? "Action" : "Status", gi);
		return DSN_E_MALFORMED;
	}
	if (d->nrcpt == DSN_MAX_RCPTS) {
		WHY("more than %d recipient groups", DSN_MAX_RCPTS);
		return DSN_E_LIMIT;
	}
	if ((nr = realloc(d->rcpt, (d->nrcpt + 1) * sizeof(*nr))) == NULL)
		return DSN_E_NOMEM;
	d->rcpt = nr;
	nr[d->nrcpt++] = g->r;
	return DSN_OK;
}

/*
 * read_status - the body of the status part: groups of fields apart by
 * empty lines. The per-message group is the one without recipient
 * fields (RFC 3464 puts it first; a report that leaves it out still
 * reads).
 */
static enum dsn_rc
read_status(struct walk *w, const char *p, size_t n)
{
	struct fld *f = malloc(sizeof(*f));
	struct group *g = malloc(sizeof(*g));
	size_t pos = 0, gi = 0, nf;
	enum dsn_rc rc = DSN_OK;
	enum rf r;

	if (f == NULL || g == NULL) {
		rc = DSN_E_NOMEM;
		goto out;
	}
	while (pos < n && rc == DSN_OK) {
		memset(g, 0, sizeof(*g));
		nf = 0;
		while (rc == DSN_OK && (r = read_field(p, n, &pos, f)) !=
		    RF_END) {
			if (nf == 0)
				gi++;
			if (++nf > DSN_MAX_GROUP_FIELDS) {
				WHY("more than %d fields in status group %zu",
				    DSN_MAX_GROUP_FIELDS, gi);
				rc = DSN_E_LIMIT;
			} else if (r == RF_BAD) {
				WHY("a line in status group %zu is not a "
				    "field", gi);
				rc = DSN_E_MALFORMED;
			} else
				rc = group_field(w, f, g, gi);
		}
		if (rc == DSN_OK && nf > 0)
			rc = group_end(w, g, gi);
	}
	if (rc == DSN_OK && w->d->nrcpt == 0) {
		WHY("the status part has no per-recipient fields");
		rc = DSN_E_MALFORMED;
	}
out:
	free(f);
	free(g);
	return rc;
}

/* ----------------------------------------------------------------- API */

enum dsn_rc
dsn_parse(const char *msg, size_t len, struct dsn **out, char *why,
    size_t whylen)
{
	struct walk w;
	enum dsn_rc rc;

	*out = NULL;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	memset(&w, 0, sizeof(w));
	w.why = why;
	w.whylen = whylen;
	if ((w.d = calloc(1, sizeof(*w.d))) == NULL)
		return DSN_E_NOMEM;
	rc = walk_part(&w, msg != NULL ? msg : "", msg != NULL ? len : 0, 1,
	    false);
	if (rc == DSN_E_NOT_DSN && why != NULL && whylen > 0 &&
	    why[0] == '\0')
		snprintf(why, whylen, "no message/delivery-status part in a "
		    "multipart/report");
	if (rc == DSN_E_NOMEM && why != NULL && whylen > 0)
		snprintf(why, whylen, "out of memory");
	if (rc != DSN_OK) {
		dsn_free(w.d);
		return rc;
	}
	*out = w.d;
	return DSN_OK;
}

void
dsn_free(struct dsn *d)
{
	if (d == NULL)
		return;
	free(d->rcpt);
	free(d);
}

/* addr_is - an rfc822 (or untyped) address equal to addr? */
static bool
addr_is(const char *type, const char *a, const char *addr)
{
	return a[0] != '\0' && (type[0] == '\0' ||
	    strcmp(type, "rfc822") == 0) && strcasecmp(a, addr) == 0;
}

const struct dsn_rcpt *
dsn_find(const struct dsn *d, const char *addr)
{
	size_t i;

	for (i = 0; d != NULL && i < d->nrcpt; i++)
		if (addr_is(d->rcpt[i].final_type, d->rcpt[i].final_addr,
		    addr) || addr_is(d->rcpt[i].orig_type,
		    d->rcpt[i].orig_addr, addr))
			return &d->rcpt[i];
	return NULL;
}

const char *
dsn_rc_str(enum dsn_rc rc)
{
	switch (rc) {
	case DSN_OK:
		return "ok";
	case DSN_E_NOT_DSN:
		return "not a DSN";
	case DSN_E_MALFORMED:
		return "malformed";
	case DSN_E_LIMIT:
		return "limit";
	case DSN_E_NOMEM:
		return "no memory";
	}
	return "unknown";
}
