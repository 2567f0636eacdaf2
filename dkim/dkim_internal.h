/*
 * dkim_internal.h - helpers shared by the files of libdkim only.
 */
#ifndef ARCRELAY_DKIM_INTERNAL_H
#define ARCRELAY_DKIM_INTERNAL_H

#include "dkim.h"

/* dkim_buf_space - room for n more bytes (NULL once the buffer failed);
 * dkim_buf_commit then counts the bytes actually written there. */
char *dkim_buf_space(struct dkim_buf *b, size_t n);
void dkim_buf_commit(struct dkim_buf *b, size_t n);

/*
 * dkim_list_next - step through a colon-separated list (h=, q=, key h=,
 * s=, t=) with FWS trimmed around each item. *pos starts at 0; returns
 * false after the last item. Empty items are returned as empty.
 */
bool dkim_list_next(const char *p, size_t n, size_t *pos, const char **item,
    size_t *ilen);

/* dkim_list_has - does the list contain word (case-insensitive)? */
bool dkim_list_has(const char *p, size_t n, const char *word);

/* dkim_valid_domain - the d= and s= syntax: dot-separated labels of
 * letters, digits, '-' and '_' (d= also needs two labels, checked apart). */
bool dkim_valid_domain(const char *p, size_t n);

/* dkim_strndup - NUL-terminated copy of (p, n); NULL on allocation failure. */
char *dkim_strndup(const char *p, size_t n);

/* dkim_domain_within - true when sub equals dom or is a subdomain of it,
 * compared case-insensitively (RFC 6376 §3.5, i= tag). */
bool dkim_domain_within(const char *sub, size_t sublen, const char *dom,
    size_t domlen);

#endif
