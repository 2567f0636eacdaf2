/*
 * authres_out.c - printing results for people and for programs.
 *
 * Peer-supplied text (d=, s=, b= of a signature) reaches this file: in the
 * A-R header it is written as a token only when every byte is a token
 * character, otherwise as an escaped quoted-string; in JSON it is escaped
 * and never produces invalid UTF-8.
 */
#include <string.h>

#include "report.h"

/* token_ok - RFC 2045 token characters plus '@' and '.', which RFC 8601
 * pvalues allow for addresses and domains. */
static bool
token_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 32 || c >= 127 || strchr("()<>,;:\\\"/[]?=", c))
			return false;
	}
	return true;
}

static void
ar_value(FILE *fp, const char *s)
{
	if (token_ok(s)) {
		fputs(s, fp);
		return;
	}
	fputc('"', fp);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fputc('\\', fp);
		if (c < 32 || c == 127)
			c = '?';
		fputc(c, fp);
	}
	fputc('"', fp);
}

/* ar_comment - a reason as an RFC 5322 comment. */
static void
ar_comment(FILE *fp, const char *s)
{
	fputc('(', fp);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '(' || c == ')' || c == '\\')
			fputc('\\', fp);
		if (c < 32 || c == 127)
			c = '?';
		fputc(c, fp);
	}
	fputc(')', fp);
}

void
report_ar(FILE *fp, const char *authserv_id, const struct dkim_verification *v,
    const struct arc_result *arc)
{
	size_t k;

	fputs("Authentication-Results: ", fp);
	ar_value(fp, authserv_id);
	if (v->n == 0)
		fputs(";\n\tdkim=none (no signatures)", fp);
	for (k = 0; k < v->n; k++) {
		const struct dkim_sigresult *r = &v->r[k];
		char b8[9];

		fputs(";\n\tdkim=", fp);
		fputs(dkim_result_str(r->result), fp);
		fputc(' ', fp);
		ar_comment(fp, r->reason);
		if (r->d[0]) {
			fputs(" header.d=", fp);
			ar_value(fp, r->d);
		}
		if (r->s[0]) {
			fputs(" header.s=", fp);
			ar_value(fp, r->s);
		}
		if (r->b[0]) {
			snprintf(b8, sizeof(b8), "%s", r->b);
			fputs(" header.b=", fp);
			ar_value(fp, b8);
		}
	}
	fputs(";\n\tarc=", fp);
	fputs(arc_cv_str(arc->cv), fp);
	fputc(' ', fp);
	ar_comment(fp, arc->reason);
	if (arc->oldest_pass > 0)
		fprintf(fp, " header.oldest-pass=%u", arc->oldest_pass);
	fputc('\n', fp);
}

/* buf_value - ar_value into a buffer. */
static void
buf_value(struct dkim_buf *b, const char *s)
{
	if (token_ok(s)) {
		dkim_buf_adds(b, s);
		return;
	}
	dkim_buf_addc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			dkim_buf_addc(b, '\\');
		dkim_buf_addc(b, (unsigned char)*s < 32 ? '?' : *s);
	}
	dkim_buf_addc(b, '"');
}

void
report_resinfo(struct dkim_buf *out, const struct dkim_verification *v,
    const struct arc_result *arc)
{
	size_t k;

	if (v->n == 0)
		dkim_buf_adds(out, "dkim=none");
	for (k = 0; k < v->n; k++) {
		const struct dkim_sigresult *r = &v->r[k];
		char b8[9];

		if (k)
			dkim_buf_adds(out, "; ");
		dkim_buf_addf(out, "dkim=%s", dkim_result_str(r->result));
		if (r->d[0]) {
			dkim_buf_adds(out, " header.d=");
			buf_value(out, r->d);
		}
		if (r->s[0]) {
			dkim_buf_adds(out, " header.s=");
			buf_value(out, r->s);
		}
		if (r->b[0]) {
			snprintf(b8, sizeof(b8), "%s", r->b);
			dkim_buf_adds(out, " header.b=");
			buf_value(out, b8);
		}
	}
	dkim_buf_addf(out, "; arc=%s", arc_cv_str(arc->cv));
	if (arc->oldest_pass > 0)
		dkim_buf_addf(out, " header.oldest-pass=%u", arc->oldest_pass);
}

/* utf8_len - length of a valid UTF-8 sequence at s, or 0. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

void
json_string(FILE *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', fp);
	while (*p) {
		size_t n = utf8_len(p);

		if (n == 0) {
			fputs("\\ufffd", fp);
			p++;
		} else if (n > 1) {
			fwrite(p, 1, n, fp);
			p += n;
		} else {
			if (*p == '"' || *p == '\\')
				fprintf(fp, "\\%c", *p);
			else if (*p < 0x20 || *p == 0x7f)
				fprintf(fp, "\\u%04x", *p);
			else
				fputc(*p, fp);
			p++;
		}
	}
	fputc('"', fp);
}

void
report_json(FILE *fp, const struct dkim_verification *v,
    const struct arc_result *arc)
{
	report_json_open(fp, v, arc);
	fputs("}\n", fp);
}

void
report_json_open(FILE *fp, const struct dkim_verification *v,
    const struct arc_result *arc)
{
	size_t k;

	fputs("{\"dkim\":[", fp);
	for (k = 0; k < v->n; k++) {
		const struct dkim_sigresult *r = &v->r[k];
		char b8[9];

		snprintf(b8, sizeof(b8), "%s", r->b);
		fputs(k ? ",{" : "{", fp);
		fputs("\"result\":", fp);
		json_string(fp, dkim_result_str(r->result));
		fputs(",\"reason\":", fp);
		json_string(fp, r->reason);
		fputs(",\"d\":", fp);
		json_string(fp, r->d);
		fputs(",\"s\":", fp);
		json_string(fp, r->s);
		fputs(",\"a\":", fp);
		json_string(fp, r->a);
		fputs(",\"b\":", fp);
		json_string(fp, b8);
		fputc('}', fp);
	}
	fprintf(fp, "],\"arc\":{\"result\":\"%s\",\"instances\":%u,"
	    "\"oldest_pass\":%u,\"reason\":", arc_cv_str(arc->cv),
	    arc->instances, arc->oldest_pass);
	json_string(fp, arc->reason);
	fputc('}', fp);
}
