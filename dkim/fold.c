/*
 * fold.c - deterministic folding of signature fields at 78 columns
 * (RFC 5322 §2.1.1 recommends 78). Breaks go between tags, after ':'
 * inside h=, and anywhere inside base64 values, where RFC 6376 §2.8 lets
 * FWS stand. The same input always gives the same bytes.
 */
#include <string.h>

#include "dkim.h"

#define FOLD_COLS 78

/* current_col - the length of the last line in out. */
static size_t
current_col(const struct dkim_buf *out)
{
	size_t i = out->len;

	while (i > 0 && out->p[i - 1] != '\n')
		i--;
	return out->len - i;
}

static void
fold_break(struct dkim_buf *out, size_t *col)
{
	dkim_buf_add(out, "\r\n ", 3);
	*col = 1;
}

/* How a tag's value may be split. */
enum split { SPLIT_NONE, SPLIT_COLON, SPLIT_ANY };

static enum split
split_of(const char *tag, size_t namelen)
{
	if (namelen == 1 && tag[0] == 'h')
		return SPLIT_COLON;
	if ((namelen == 1 && tag[0] == 'b') ||
	    (namelen == 2 && tag[0] == 'b' && tag[1] == 'h'))
		return SPLIT_ANY;
	return SPLIT_NONE;
}

/* append_atoms - value text split into atoms that may not be broken. */
static void
append_atoms(struct dkim_buf *out, size_t *col, const char *v, size_t n,
    enum split sp, bool semi)
{
	size_t i = 0;

	while (i < n && sp == SPLIT_ANY) {
		/* Any octet may start a line: fill this one, keeping the
		 * ';' after the last octet on the same line. */
		size_t k = *col < FOLD_COLS ? FOLD_COLS - *col : 0;

		if (k > n - i)
			k = n - i;
		if (semi && k > 0 && i + k == n && *col + k + 1 > FOLD_COLS)
			k--;
		if (k == 0) {
			if (*col > 1) {
				fold_break(out, col);
				continue;
			}
			k = 1;	/* a line holds at least one octet */
		}
		dkim_buf_add(out, v + i, k);
		*col += k;
		i += k;
	}
	while (i < n) {
		size_t a = i, len;

		if (sp == SPLIT_COLON) {
			while (i < n && v[i] != ':')
				i++;
			if (i < n)
				i++;	/* keep ':' with its name */
		} else
			i = n;
		len = i - a + (i == n && semi ? 1 : 0);
		if (*col + len > FOLD_COLS && *col > 1)
			fold_break(out, col);
		dkim_buf_add(out, v + a, i - a);
		*col += i - a;
	}
	if (semi) {
		dkim_buf_addc(out, ';');
		(*col)++;
	}
}

bool
dkim_fold_append(struct dkim_buf *out, const char *value)
{
	size_t col = current_col(out);

	append_atoms(out, &col, value, strlen(value), SPLIT_ANY, false);
	dkim_buf_add(out, "\r\n", 2);
	return !out->failed;
}

bool
dkim_fold_field(struct dkim_buf *out, const char *name,
    const char *const *tags, size_t ntags)
{
	size_t col, k;

	dkim_buf_adds(out, name);
	dkim_buf_addc(out, ':');
	col = current_col(out);
	for (k = 0; k < ntags; k++) {
		const char *t = tags[k], *eq = strchr(t, '=');
		bool semi = k + 1 < ntags;
		size_t len = strlen(t) + (semi ? 1 : 0), nl;

		if (eq == NULL)
			eq = t + strlen(t);
		nl = (size_t)(eq - t);
		/* An empty b= gets its value appended later: keep room for
		 * some of it so the line never breaks right after "b=". */
		if (strcmp(t, "b=") == 0 && col + 1 + len + 8 > FOLD_COLS)
			fold_break(out, &col);
		if (col + 1 + len <= FOLD_COLS) {
			dkim_buf_addc(out, ' ');
			dkim_buf_adds(out, t);
			if (semi)
				dkim_buf_addc(out, ';');
			col += 1 + len;
			continue;
		}
		if (1 + len <= FOLD_COLS || split_of(t, nl) == SPLIT_NONE ||
		    col + 1 + nl + 2 > FOLD_COLS) {
			fold_break(out, &col);
		} else {
			dkim_buf_addc(out, ' ');
			col++;
		}
		if (col + len <= FOLD_COLS) {
			dkim_buf_adds(out, t);
			if (semi)
				dkim_buf_addc(out, ';');
			col += len;
			continue;
		}
		dkim_buf_add(out, t, nl + (*eq ? 1 : 0));
		col += nl + (*eq ? 1 : 0);
		if (*eq)
			append_atoms(out, &col, eq + 1, strlen(eq + 1),
			    split_of(t, nl), semi);
	}
	dkim_buf_add(out, "\r\n", 2);
	return !out->failed;
}
