/*
 * report.c - results as JSON for programs (the A-R header for people
 * is policy's authres_format, see auth.c).
 *
 * Peer-supplied text (d=, s=, b= of a signature) reaches this file; it is
 * escaped and never produces invalid UTF-8.
 */
#include <string.h>

#include "report.h"

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
