/*
 * zonefile.c - a small reader for zone-file records, the --dns-file
 * backend of the lookup interface. The file is trusted configuration, but
 * it is still parsed with bounds: a bad line is reported with its number.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "zonefile.h"

struct zrec {
	char *name;		/* owned: lowercase, no final dot */
	char type[12];
	char **str;		/* owned: rdata tokens (TXT: the strings) */
	size_t *len;
	size_t nstr;
};

struct zonefile {
	struct zrec *r;
	size_t n, cap;
};

/* One token of a line: a word or a quoted string. */
struct ztok {
	char *s;		/* owned, unescaped */
	size_t len;
	bool quoted;
};

struct zline {
	struct ztok *t;
	size_t n, cap;
	bool leading_ws;	/* the owner is the previous one */
	size_t lineno;
};

static void
zline_clear(struct zline *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->t[i].s);
	l->n = 0;
}

static bool
zline_add(struct zline *l, const char *p, size_t n, bool quoted)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct ztok *nt = realloc(l->t, nc * sizeof(*nt));

		if (nt == NULL)
			return false;
		l->t = nt;
		l->cap = nc;
	}
	if ((l->t[l->n].s = malloc(n + 1)) == NULL)
		return false;
	memcpy(l->t[l->n].s, p, n);
	l->t[l->n].s[n] = '\0';
	l->t[l->n].len = n;
	l->t[l->n].quoted = quoted;
	l->n++;
	return true;
}

static void
lower_nodot(char *s)
{
	size_t n = strlen(s);

	for (char *q = s; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	if (n > 1 && s[n - 1] == '.')
		s[n - 1] = '\0';
}

/* full_name - owner name made absolute against the origin. */
static char *
full_name(const char *tok, const char *origin)
{
	size_t n = strlen(tok);
	char *s;

	if (strcmp(tok, "@") == 0)
		s = strdup(origin[0] ? origin : ".");
	else if ((n > 0 && tok[n - 1] == '.') || origin[0] == '\0')
		s = strdup(tok);
	else {
		if ((s = malloc(n + strlen(origin) + 2)) != NULL)
			sprintf(s, "%s.%s", tok, origin);
	}
	if (s)
		lower_nodot(s);
	return s;
}

static bool
is_type(const char *s)
{
	static const char *const types[] = { "TXT", "MX", "A", "AAAA",
	    "CNAME", "PTR", "SERVFAIL", NULL };

	for (size_t i = 0; types[i]; i++)
		if (strcasecmp(s, types[i]) == 0)
			return true;
	return false;
}

/* zone_record - turn one logical line into a record. */
static bool
zone_record(struct zonefile *z, struct zline *l, char *origin, size_t olen,
    char **prev, char *why, size_t whylen)
{
	size_t i = 0, k;
	struct zrec rec;
	char *name;

	if (l->n == 0)
		return true;
	if (!l->t[0].quoted && strcasecmp(l->t[0].s, "$ORIGIN") == 0) {
		if (l->n != 2) {
			snprintf(why, whylen, "line %zu: $ORIGIN takes one "
			    "name", l->lineno);
			return false;
		}
		snprintf(origin, olen, "%s", l->t[1].s);
		lower_nodot(origin);
		return true;
	}
	if (!l->t[0].quoted && strcasecmp(l->t[0].s, "$TTL") == 0)
		return true;
	if (l->leading_ws) {
		if (*prev == NULL) {
			snprintf(why, whylen, "line %zu: no owner name",
			    l->lineno);
			return false;
		}
		name = strdup(*prev);
	} else {
		name = full_name(l->t[i++].s, origin);
	}
	if (name == NULL)
		return false;
	if (i < l->n && !l->t[i].quoted && isdigit((unsigned char)l->t[i].s[0]))
		i++;	/* TTL */
	if (i < l->n && !l->t[i].quoted && strcasecmp(l->t[i].s, "IN") == 0)
		i++;
	if (i < l->n && !l->t[i].quoted && isdigit((unsigned char)l->t[i].s[0]))
		i++;	/* TTL after the class */
	if (i >= l->n || l->t[i].quoted || !is_type(l->t[i].s)) {
		snprintf(why, whylen, "line %zu: expected a record type "
		    "(TXT, MX, A, AAAA, CNAME)", l->lineno);
		free(name);
		return false;
	}
	memset(&rec, 0, sizeof(rec));
	rec.name = name;
	snprintf(rec.type, sizeof(rec.type), "%s", l->t[i].s);
	for (k = 0; rec.type[k]; k++)
		rec.type[k] = (char)toupper((unsigned char)rec.type[k]);
	i++;
	if (strcmp(rec.type, "SERVFAIL") != 0 && i >= l->n) {
		snprintf(why, whylen, "line %zu: %s record without data",
		    l->lineno, rec.type);
		free(name);
		return false;
	}
	rec.nstr = l->n - i;
	rec.str = calloc(rec.nstr + 1, sizeof(char *));
	rec.len = calloc(rec.nstr + 1, sizeof(size_t));
	if (rec.str == NULL || rec.len == NULL) {
		free(rec.str);
		free(rec.len);
		free(name);
		return false;
	}
	for (k = 0; k < rec.nstr; k++) {
		rec.str[k] = l->t[i + k].s;
		rec.len[k] = l->t[i + k].len;
		l->t[i + k].s = NULL;
	}
	if (z->n == z->cap) {
		size_t nc = z->cap ? z->cap * 2 : 64;
		struct zrec *nr = realloc(z->r, nc * sizeof(*nr));

		if (nr == NULL)
			return false;
		z->r = nr;
		z->cap = nc;
	}
	z->r[z->n++] = rec;
	free(*prev);
	*prev = strdup(rec.name);
	return *prev != NULL;
}

struct zonefile *
zonefile_parse(const char *p, size_t len, char *why, size_t whylen)
{
	struct zonefile *z = calloc(1, sizeof(*z));
	struct zline l;
	struct dkim_buf tok;
	char origin[256] = "", *prev = NULL;
	size_t i = 0, lineno = 1;
	int paren = 0;
	bool ok = false, line_start = true;

	memset(&l, 0, sizeof(l));
	dkim_buf_init(&tok, 65536);
	if (z == NULL)
		return NULL;
	l.lineno = 1;
	while (i <= len) {
		char c = i < len ? p[i] : '\n';

		if (line_start) {
			l.leading_ws = c == ' ' || c == '\t';
			line_start = false;
		}
		if (c == ';') {
			while (i < len && p[i] != '\n')
				i++;
			continue;
		}
		if (c == '\n') {
			if (paren == 0) {
				if (!zone_record(z, &l, origin, sizeof(origin),
				    &prev, why, whylen))
					goto out;
				zline_clear(&l);
				line_start = true;
			}
			lineno++;
			if (paren == 0)
				l.lineno = lineno;
			i++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r') {
			i++;
			continue;
		}
		if (c == '(' || c == ')') {
			paren += c == '(' ? 1 : -1;
			if (paren < 0 || paren > 1) {
				snprintf(why, whylen, "line %zu: unbalanced "
				    "parentheses", lineno);
				goto out;
			}
			i++;
			continue;
		}
		dkim_buf_reset(&tok);
		if (c == '"') {
			i++;
			while (i < len && p[i] != '"') {
				if (p[i] == '\n') {
					snprintf(why, whylen, "line %zu: "
					    "unterminated string", lineno);
					goto out;
				}
				if (p[i] == '\\' && i + 1 < len) {
					if (i + 3 < len &&
					    isdigit((unsigned char)p[i + 1]) &&
					    isdigit((unsigned char)p[i + 2]) &&
					    isdigit((unsigned char)p[i + 3])) {
						int v = (p[i + 1] - '0') * 100 +
						    (p[i + 2] - '0') * 10 +
						    (p[i + 3] - '0');
						if (v > 255) {
							snprintf(why, whylen,
							    "line %zu: bad "
							    "escape", lineno);
							goto out;
						}
						dkim_buf_addc(&tok, (char)v);
						i += 4;
						continue;
					}
					i++;
				}
				dkim_buf_addc(&tok, p[i++]);
			}
			if (i >= len) {
				snprintf(why, whylen, "line %zu: unterminated "
				    "string", lineno);
				goto out;
			}
			i++;
			if (tok.failed || !zline_add(&l, tok.p ? tok.p : "",
			    tok.len, true))
				goto nomem;
			continue;
		}
		while (i < len && !memchr(" \t\r\n;()\"", p[i], 8))
			dkim_buf_addc(&tok, p[i++]);
		if (tok.failed || !zline_add(&l, tok.p, tok.len, false))
			goto nomem;
	}
	if (paren != 0) {
		snprintf(why, whylen, "line %zu: unclosed parenthesis", lineno);
		goto out;
	}
	ok = true;
	goto out;
nomem:
	snprintf(why, whylen, "line %zu: out of memory or token too long",
	    lineno);
out:
	zline_clear(&l);
	free(l.t);
	free(prev);
	dkim_buf_free(&tok);
	if (!ok) {
		zonefile_free(z);
		return NULL;
	}
	return z;
}

struct zonefile *
zonefile_load(const char *path, char *why, size_t whylen)
{
	char inner[DKIM_WHY_MAX];
	size_t len;
	char *text = cli_read_file(path, 64 * 1024 * 1024, &len, why, whylen);
	struct zonefile *z;

	if (text == NULL)
		return NULL;
	z = zonefile_parse(text, len, inner, sizeof(inner));
	if (z == NULL)
		snprintf(why, whylen, "%s: %s", path, inner);
	free(text);
	return z;
}

void
zonefile_free(struct zonefile *z)
{
	size_t i, k;

	if (z == NULL)
		return;
	for (i = 0; i < z->n; i++) {
		for (k = 0; k < z->r[i].nstr; k++)
			free(z->r[i].str[k]);
		free(z->r[i].str);
		free(z->r[i].len);
		free(z->r[i].name);
	}
	free(z->r);
	free(z);
}

static const char *
type_name(enum pdns_type t)
{
	switch (t) {
	case PDNS_A:	return "A";
	case PDNS_AAAA:	return "AAAA";
	case PDNS_MX:	return "MX";
	case PDNS_TXT:	return "TXT";
	case PDNS_PTR:	return "PTR";
	}
	return "?";
}

/* add_rdata - one zone record into the answer. */
static bool
add_rdata(const struct zrec *r, enum pdns_type type, struct pdns_answer *out)
{
	unsigned char addr[16];
	size_t k;

	switch (type) {
	case PDNS_TXT:
		if (!pdns_add_txt(out, r->nstr ? r->str[0] : "",
		    r->nstr ? r->len[0] : 0))
			return false;
		for (k = 1; k < r->nstr; k++)
			if (!pdns_append_txt(out, r->str[k], r->len[k]))
				return false;
		return true;
	case PDNS_A:
	case PDNS_AAAA:
		if (r->nstr != 1 || inet_pton(type == PDNS_A ? AF_INET :
		    AF_INET6, r->str[0], addr) != 1)
			return true;	/* a bad address is skipped */
		return pdns_add_addr(out, type, addr);
	case PDNS_MX:
		if (r->nstr != 2)
			return true;
		return pdns_add_name(out, type, (uint16_t)atoi(r->str[0]),
		    r->str[1]);
	case PDNS_PTR:
		return r->nstr == 1 ? pdns_add_name(out, type, 0, r->str[0]) :
		    true;
	}
	return true;
}

enum pdns_rc
zonefile_lookup(void *arg, const char *qname, enum pdns_type type,
    struct pdns_answer *out)
{
	struct zonefile *z = arg;
	char name[512];
	size_t i;
	int depth;
	bool exists;

	pdns_answer_init(out);
	snprintf(name, sizeof(name), "%s", qname);
	lower_nodot(name);
	for (depth = 0; depth < 8; depth++) {
		const char *cname = NULL;

		exists = false;
		for (i = 0; i < z->n; i++) {
			if (strcmp(z->r[i].name, name) != 0)
				continue;
			exists = true;
			if (strcmp(z->r[i].type, "SERVFAIL") == 0) {
				pdns_answer_clear(out);
				return PDNS_TEMPFAIL;
			}
			if (strcmp(z->r[i].type, "CNAME") == 0 &&
			    z->r[i].nstr == 1)
				cname = z->r[i].str[0];
			if (strcmp(z->r[i].type, type_name(type)) != 0)
				continue;
			if (!add_rdata(&z->r[i], type, out)) {
				pdns_answer_clear(out);
				return PDNS_TEMPFAIL;
			}
		}
		if (out->n > 0)
			return PDNS_OK;
		if (cname == NULL)
			return exists ? PDNS_NODATA : PDNS_NXDOMAIN;
		snprintf(name, sizeof(name), "%s", cname);
		lower_nodot(name);
	}
	return PDNS_PERMFAIL;	/* a CNAME loop */
}
