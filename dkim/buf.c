/*
 * buf.c - the growable byte buffer with a ceiling used for everything the
 * library builds: canonical headers, folded signature fields, reasons.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkim.h"
#include "dkim_internal.h"

#define BUF_DEFAULT_MAX ((size_t)64 * 1024 * 1024)

void
dkim_buf_init(struct dkim_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max ? max : BUF_DEFAULT_MAX;
}

/* buf_reserve - make room for n more bytes plus a NUL. */
static bool
buf_reserve(struct dkim_buf *b, size_t n)
{
	size_t need, cap;
	char *np;

	if (b->failed)
		return false;
	if (n > b->max || b->len > b->max - n) {
		b->failed = true;
		return false;
	}
	need = b->len + n + 1;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	if ((np = realloc(b->p, cap)) == NULL) {
		b->failed = true;
		return false;
	}
	b->p = np;
	b->cap = cap;
	return true;
}

char *
dkim_buf_space(struct dkim_buf *b, size_t n)
{
	return buf_reserve(b, n) ? b->p + b->len : NULL;
}

void
dkim_buf_commit(struct dkim_buf *b, size_t n)
{
	b->len += n;
	b->p[b->len] = '\0';
}

bool
dkim_buf_add(struct dkim_buf *b, const void *p, size_t n)
{
	if (!buf_reserve(b, n))
		return false;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}

bool
dkim_buf_addc(struct dkim_buf *b, char c)
{
	return dkim_buf_add(b, &c, 1);
}

bool
dkim_buf_adds(struct dkim_buf *b, const char *s)
{
	return dkim_buf_add(b, s, strlen(s));
}

bool
dkim_buf_addf(struct dkim_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_reserve(b, (size_t)n)) {
		b->failed = true;
		return false;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return true;
}

void
dkim_buf_reset(struct dkim_buf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->p)
		b->p[0] = '\0';
}

char *
dkim_buf_take(struct dkim_buf *b, size_t *len)
{
	char *p = b->p;

	if (p == NULL)
		p = calloc(1, 1);
	if (len)
		*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	b->failed = false;
	return p;
}

void
dkim_buf_free(struct dkim_buf *b)
{
	if (b == NULL)
		return;
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void
dkim_whyf(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

char *
dkim_strndup(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		return NULL;
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}
