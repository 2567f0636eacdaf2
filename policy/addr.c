/*
 * addr.c - RFC 5322 address lists (§3.4, with the obsolete forms of
 * §4.4): one lexer and one recursive-descent parser over its tokens.
 *
 * What reaches this file from the wire: header field values (From, and
 * whatever else a caller reads as an address list or a phrase), as
 * (ptr, len). Nothing here walks to a NUL or past len.
 *
 * It owns nothing: results are spans of the caller's value, written into
 * the caller's arrays.
 *
 * SECURITY: every loop moves forward through the value, and group bodies
 * are the only nesting (one level), so time is linear in the length,
 * which is capped (ADDR_VALUE_MAX) along with the mailboxes
 * (ADDR_MAILBOX_MAX) and the depth of nested comments (ADDR_NEST_MAX).
 */
#include <string.h>

#include "addr.h"

/* ------------------------------------------------------------ the lexer */

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* is_atext - RFC 5322 §3.2.3 atext, and octets from 0x80 up (RFC 6532
 * §3.2 lets UTF-8 stand wherever atext does). */
static bool
is_atext(unsigned char c)
{
	if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
is_special(char c)
{
	return c != '\0' && strchr("<>@,;:.", c) != NULL;
}

/* skip_cfws - white space and nested comments from *pos on; ADDR_OK, or
 * the error with *at where it is (*pos is then end). */
static enum addr_status
skip_cfws(const char *v, size_t end, size_t *pos, size_t *at)
{
	size_t i = *pos, open = 0, depth = 0;

	while (i < end) {
		char c = v[i];

		if (depth == 0) {
			if (is_fws(c)) {
				i++;
				continue;
			}
			if (c != '(')
				break;
			open = i;
		}
		if (c == '\\') {
			if (i + 1 >= end)
				break;	/* an escape of nothing: not closed */
			i += 2;
			continue;
		}
		if (c == '\0') {
			*at = i;
			*pos = end;
			return ADDR_E_NUL;
		}
		if (c == '(' && ++depth > ADDR_NEST_MAX) {
			*at = i;
			*pos = end;
			return ADDR_E_TOO_DEEP;
		}
		if (c == ')')
			depth--;
		i++;
	}
	if (depth > 0) {
		*at = open;
		*pos = end;
		return ADDR_E_COMMENT;
	}
	*pos = i;
	return ADDR_OK;
}

/* quoted - a quoted-string or domain-literal at *pos, ending in close. */
static void
quoted(const char *v, size_t end, size_t *pos, char close,
    struct addr_token *t)
{
	size_t i = *pos + 1, nul = end;

	t->kind = close == '"' ? ADDR_TOK_QUOTED : ADDR_TOK_LITERAL;
	while (i < end && v[i] != close) {
		if (v[i] == '\\' && i + 1 < end)
			i++;	/* quoted-pair, obs-qp: any octet */
		else if (v[i] == '\0' && nul == end)
			nul = i;
		i++;
	}
	if (i >= end) {
		t->kind = ADDR_TOK_BAD;
		t->err = close == '"' ? ADDR_E_QUOTE : ADDR_E_LITERAL;
		t->len = end - t->off;
		*pos = end;
		return;
	}
	*pos = i + 1;
	t->len = *pos - t->off;
	if (nul < end) {
		t->kind = ADDR_TOK_BAD;
		t->err = ADDR_E_NUL;
		t->off = nul;
		t->len = 1;
	}
}

void
addr_token_next(const char *v, size_t end, size_t *pos, struct addr_token *t)
{
	size_t start = *pos, at = 0, i;
	unsigned char c;
	enum addr_status st;

	memset(t, 0, sizeof(*t));
	if (start >= end) {
		t->off = end;
		t->glued = true;
		return;
	}
	if ((st = skip_cfws(v, end, pos, &at)) != ADDR_OK) {
		t->kind = ADDR_TOK_BAD;
		t->err = st;
		t->off = at;
		t->len = end - at;
		return;
	}
	t->off = *pos;
	t->glued = *pos == start;
	if (*pos >= end)
		return;
	c = (unsigned char)v[*pos];
	if (c == '"' || c == '[') {
		quoted(v, end, pos, c == '"' ? '"' : ']', t);
		return;
	}
	if (is_special((char)c)) {
		t->kind = ADDR_TOK_SPECIAL;
		t->len = 1;
		(*pos)++;
		return;
	}
	if (is_atext(c)) {
		for (i = *pos; i < end && is_atext((unsigned char)v[i]); i++)
			;
		t->kind = ADDR_TOK_ATOM;
		t->len = i - *pos;
		*pos = i;
		return;
	}
	t->kind = ADDR_TOK_BAD;
	t->err = c == ')' ? ADDR_E_PAREN : c == '\0' ? ADDR_E_NUL : ADDR_E_CHAR;
	t->len = 1;
	(*pos)++;
}

/* in_run - an atom or a dot: what a run of a word is made of. */
static bool
in_run(const char *v, const struct addr_token *t)
{
	return t->kind == ADDR_TOK_ATOM ||
	    (t->kind == ADDR_TOK_SPECIAL && v[t->off] == '.');
}

bool
addr_word_next(const char *v, size_t end, size_t *pos, struct addr_word *w)
{
	struct addr_token t;
	size_t at;

	addr_token_next(v, end, pos, &t);
	w->off = t.off;
	w->len = t.len;
	w->quoted = t.kind == ADDR_TOK_QUOTED;
	if (w->quoted)
		return true;
	if (!in_run(v, &t))
		return false;
	for (;;) {
		at = *pos;
		addr_token_next(v, end, &at, &t);
		if (!t.glued || !in_run(v, &t))
			return true;
		w->len = t.off + t.len - w->off;
		*pos = at;
	}
}

bool
addr_compact(const char *v, struct addr_span s, struct dkim_buf *out)
{
	struct addr_token t;
	size_t pos = s.off;

	if (v == NULL && s.len > 0)
		return false;
	for (;;) {
		addr_token_next(v, s.off + s.len, &pos, &t);
		if (t.kind == ADDR_TOK_END)
			return !out->failed;
		if (t.kind == ADDR_TOK_BAD)
			return false;
		dkim_buf_add(out, v + t.off, t.len);
	}
}

bool
addr_unquote(const char *p, size_t n, struct dkim_buf *out)
{
	size_t i;

	if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
		p++;
		n -= 2;
	}
	for (i = 0; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n')
			continue;
		if (p[i] == '\\' && i + 1 < n)
			i++;
		dkim_buf_addc(out, p[i]);
	}
	return !out->failed;
}

/* ----------------------------------------------------------- the parser */

struct parse {
	const char *v;
	size_t len;
	size_t pos;		/* where the lexer goes on */
	struct addr_token t;	/* the token being looked at */
	struct addr_mailbox *mb;
	size_t mb_max;
	struct addr_group *grp;
	size_t grp_max;
	struct addr_result *res;
};

static void
adv(struct parse *P)
{
	addr_token_next(P->v, P->len, &P->pos, &P->t);
}

static bool
at_special(const struct parse *P, char c)
{
	return P->t.kind == ADDR_TOK_SPECIAL && P->v[P->t.off] == c;
}

/* fail_at - stop with st found at off; a lexical error at the current
 * token says more, so it wins. Returns false for the callers to pass up. */
static bool
fail_at(struct parse *P, enum addr_status st, size_t off)
{
	if (P->t.kind == ADDR_TOK_BAD) {
		st = P->t.err;
		off = P->t.off;
	}
	P->res->status = st;
	P->res->err_off = off;
	return false;
}

/* fail - stop with st at the current token. */
static bool
fail(struct parse *P, enum addr_status st)
{
	return fail_at(P, st, P->t.off);
}

/* end_of - the offset just past the current token. */
static size_t
end_of(const struct parse *P)
{
	return P->t.off + P->t.len;
}

/* words - a run of words and dots (a display name, or a local part) into
 * *sp; how many there were. *local_ok: it is word *("." word), the
 * obs-local-part of §4.4 (a dot-atom is one too). */
static size_t
words(struct parse *P, struct addr_span *sp, bool *local_ok)
{
	size_t n = 0;
	bool ok = true, last_dot = true;

	sp->off = P->t.off;
	sp->len = 0;
	for (;;) {
		bool dot = at_special(P, '.');

		if (!dot && P->t.kind != ADDR_TOK_ATOM &&
		    P->t.kind != ADDR_TOK_QUOTED)
			break;
		if (dot == last_dot)
			ok = false;	/* two words, or two dots, in a row */
		last_dot = dot;
		sp->len = end_of(P) - sp->off;
		n++;
		adv(P);
	}
	*local_ok = ok && n > 0 && !last_dot;
	return n;
}

/* domain - dot-atom, obs-domain (CFWS around the dots) or a literal,
 * into m. */
static bool
domain(struct parse *P, struct addr_mailbox *m)
{
	m->domain.off = P->t.off;
	if (P->t.kind == ADDR_TOK_LITERAL) {
		m->domain.len = P->t.len;
		m->literal = true;
		adv(P);
		return true;
	}
	for (;;) {
		if (P->t.kind != ADDR_TOK_ATOM)
			return fail(P, ADDR_E_DOMAIN);
		m->domain.len = end_of(P) - m->domain.off;
		adv(P);
		if (!at_special(P, '.'))
			return true;
		adv(P);
	}
}

/* route - obs-route at '@' or ',': *(CFWS / ",") "@" domain
 * *("," [CFWS] ["@" domain]) ":" (§4.4). Its domains are read, not kept. */
static bool
route(struct parse *P, struct addr_mailbox *m)
{
	struct addr_mailbox hop;

	memset(&hop, 0, sizeof(hop));
	m->route.off = P->t.off;
	while (at_special(P, ','))
		adv(P);
	if (!at_special(P, '@'))
		return fail(P, ADDR_E_ROUTE);
	adv(P);
	if (!domain(P, &hop))
		return false;
	while (at_special(P, ',')) {
		adv(P);
		if (at_special(P, '@')) {
			adv(P);
			if (!domain(P, &hop))
				return false;
		}
	}
	if (!at_special(P, ':'))
		return fail(P, ADDR_E_ROUTE);
	m->route.len = end_of(P) - m->route.off;
	adv(P);
	return true;
}

/* angle - after '<': [obs-route] addr-spec '>'. */
static bool
angle(struct parse *P, struct addr_mailbox *m)
{
	bool local_ok;

	m->angle = true;
	if (at_special(P, '>'))
		return fail(P, ADDR_E_ANGLE_EMPTY);
	if ((at_special(P, '@') || at_special(P, ',')) && !route(P, m))
		return false;
	if (words(P, &m->local, &local_ok) == 0 || !local_ok)
		return fail_at(P, ADDR_E_LOCAL, m->local.off);
	if (!at_special(P, '@'))
		return fail(P, ADDR_E_AT);
	adv(P);
	if (!domain(P, m))
		return false;
	if (!at_special(P, '>'))
		return fail(P, ADDR_E_ANGLE);
	adv(P);
	return true;
}

/* add_mailbox - count m (stored when there is room); false past the cap. */
static bool
add_mailbox(struct parse *P, const struct addr_mailbox *m, size_t at)
{
	struct addr_result *r = P->res;

	if (r->nmailbox == ADDR_MAILBOX_MAX) {
		r->status = ADDR_E_TOO_MANY;
		r->err_off = at;
		return false;
	}
	if (r->nmailbox < P->mb_max)
		P->mb[r->nmailbox] = *m;
	if (m->group > 0 && m->group <= P->grp_max)
		P->grp[m->group - 1].count++;
	r->nmailbox++;
	return true;
}

/* member_end - after a member: ',' or the end (or ';' in a group) must
 * follow. empty: the member was empty, so what follows was the trouble. */
static bool
member_end(struct parse *P, bool in_group, bool empty)
{
	if (P->t.kind == ADDR_TOK_END || at_special(P, ',') ||
	    (in_group && at_special(P, ';')))
		return true;
	return fail(P, empty ? ADDR_E_TOKEN : ADDR_E_SEPARATOR);
}

static bool member(struct parse *P, size_t group, bool *empty);

/* group_body - after "name:": [group-list] ";" (§3.4); the group-list
 * may hold empty members (obs-group-list, obs-mbox-list). */
static bool
group_body(struct parse *P, struct addr_span name)
{
	size_t g = ++P->res->ngroup;
	bool empty;

	if (g <= P->grp_max) {
		P->grp[g - 1].name = name;
		P->grp[g - 1].first = P->res->nmailbox;
		P->grp[g - 1].count = 0;
	}
	for (;;) {
		if (at_special(P, ';')) {
			adv(P);
			return true;
		}
		if (P->t.kind == ADDR_TOK_END) {
			P->res->status = ADDR_E_GROUP_OPEN;
			P->res->err_off = P->len;
			return true;
		}
		if (at_special(P, ',')) {
			adv(P);
			continue;
		}
		if (!member(P, g, &empty) || !member_end(P, true, empty))
			return false;
	}
}

/*
 * member - one member of an address list: a mailbox, a group (not inside
 * one: group is then its number), or nothing at all (obs-addr-list,
 * obs-mbox-list), which sets *empty.
 */
static bool
member(struct parse *P, size_t group, bool *empty)
{
	struct addr_mailbox m;
	struct addr_span phrase;
	size_t start = P->t.off;
	bool local_ok;
	size_t n = words(P, &phrase, &local_ok);

	memset(&m, 0, sizeof(m));
	m.group = group;
	*empty = false;
	if (P->t.kind == ADDR_TOK_BAD)
		return fail(P, ADDR_E_CHAR);
	if (at_special(P, '<')) {
		if (n > 0)
			m.name = phrase;
		adv(P);
		return angle(P, &m) && add_mailbox(P, &m, start);
	}
	if (at_special(P, '@')) {
		if (n == 0 || !local_ok)
			return fail_at(P, ADDR_E_LOCAL, start);
		m.local = phrase;
		adv(P);
		return domain(P, &m) && add_mailbox(P, &m, start);
	}
	if (at_special(P, ':')) {
		if (group > 0)
			return fail(P, ADDR_E_GROUP_NESTED);
		if (n == 0)
			return fail(P, ADDR_E_GROUP_NAME);
		adv(P);
		return group_body(P, phrase);
	}
	if (n > 0)
		return fail(P, ADDR_E_PHRASE);
	*empty = true;
	return true;
}

enum addr_status
addr_parse(const char *v, size_t len, struct addr_mailbox *mb, size_t mb_max,
    struct addr_group *grp, size_t grp_max, struct addr_result *res)
{
	struct parse P;
	bool empty;

	if (res == NULL)
		return ADDR_E_ARGS;
	memset(res, 0, sizeof(*res));
	if ((v == NULL && len > 0) || (mb == NULL && mb_max > 0) ||
	    (grp == NULL && grp_max > 0))
		return res->status = ADDR_E_ARGS;
	if (len > ADDR_VALUE_MAX) {
		res->err_off = ADDR_VALUE_MAX;
		return res->status = ADDR_E_TOO_LONG;
	}
	memset(&P, 0, sizeof(P));
	P.v = v;
	P.len = len;
	P.mb = mb;
	P.mb_max = mb_max;
	P.grp = grp;
	P.grp_max = grp_max;
	P.res = res;
	adv(&P);
	for (;;) {
		if (!member(&P, 0, &empty) || !member_end(&P, false, empty))
			return res->status;
		if (!empty)
			res->naddress++;
		if (P.t.kind == ADDR_TOK_END)
			break;
		adv(&P);		/* the ',' */
	}
	if (res->naddress == 0)
		res->status = ADDR_EMPTY;
	return res->status;
}

const char *
addr_status_str(enum addr_status st)
{
	switch (st) {
	case ADDR_OK:		  return "ok";
	case ADDR_EMPTY:	  return "no address";
	case ADDR_E_GROUP_OPEN:	  return "group is not closed by ';'";
	case ADDR_E_COMMENT:	  return "comment is not closed";
	case ADDR_E_PAREN:	  return "unbalanced ')'";
	case ADDR_E_QUOTE:	  return "quoted string is not closed";
	case ADDR_E_LITERAL:	  return "domain literal is not closed";
	case ADDR_E_NUL:	  return "NUL octet";
	case ADDR_E_CHAR:	  return "unexpected character";
	case ADDR_E_TOKEN:	  return "no address starts like this";
	case ADDR_E_PHRASE:	  return "display name without an address";
	case ADDR_E_LOCAL:	  return "address has no valid local part";
	case ADDR_E_AT:		  return "address has no '@'";
	case ADDR_E_DOMAIN:	  return "address has no valid domain after "
				      "'@'";
	case ADDR_E_ANGLE:	  return "address is not closed by '>'";
	case ADDR_E_ANGLE_EMPTY:  return "empty address <>";
	case ADDR_E_ROUTE:	  return "bad source route";
	case ADDR_E_GROUP_NAME:	  return "group has no name";
	case ADDR_E_GROUP_NESTED: return "group inside a group";
	case ADDR_E_SEPARATOR:	  return "expected ',' between addresses";
	case ADDR_E_TOO_LONG:	  return "value is too long";
	case ADDR_E_TOO_MANY:	  return "too many mailboxes";
	case ADDR_E_TOO_DEEP:	  return "comments nested too deep";
	case ADDR_E_ARGS:	  return "no value or no room for the result";
	}
	return "unknown status";
}
