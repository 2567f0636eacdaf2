/*
 * footer_tool.c - run footer_apply over one message file, for
 * check_mime.py and by hand:
 *
 *   footer_tool MESSAGE FOOTER OUTPUT
 *
 * MESSAGE is read as it is (CRLF expected, nothing converted); FOOTER is
 * the footer text. The new message is written to OUTPUT and one line
 * "how<TAB>why" to stdout. Exit 0 when footer_apply succeeded, 1 when it
 * refused (the line then says "refused<TAB>why"), 2 on usage or I/O errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "footer.h"

/* slurp - the whole file, NUL-terminated; NULL on error. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL, *np;
	size_t n = 0, cap = 0, got;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 65536;
			if ((np = realloc(p, cap + 1)) == NULL) {
				free(p);
				fclose(f);
				return NULL;
			}
			p = np;
		}
		got = fread(p + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(p);
		fclose(f);
		return NULL;
	}
	fclose(f);
	p[n] = '\0';
	*len = n;
	return p;
}

int
main(int argc, char **argv)
{
	struct dkim_buf out;
	enum footer_how how;
	char why[DKIM_WHY_MAX], *msg, *footer;
	size_t mlen, flen;
	FILE *f;
	bool ok;

	if (argc != 4) {
		fprintf(stderr, "usage: footer_tool MESSAGE FOOTER OUTPUT\n");
		return 2;
	}
	if ((msg = slurp(argv[1], &mlen)) == NULL ||
	    (footer = slurp(argv[2], &flen)) == NULL) {
		perror("footer_tool: read");
		return 2;
	}
	dkim_buf_init(&out, 0);
	ok = footer_apply(msg, mlen, footer, &out, &how, why, sizeof(why));
	printf("%s\t%s\n", ok ? footer_how_str(how) : "refused", why);
	if (ok) {
		if ((f = fopen(argv[3], "wb")) == NULL ||
		    fwrite(out.p, 1, out.len, f) != out.len || fclose(f) != 0) {
			perror("footer_tool: write");
			return 2;
		}
	}
	dkim_buf_free(&out);
	free(msg);
	free(footer);
	return ok ? 0 : 1;
}
