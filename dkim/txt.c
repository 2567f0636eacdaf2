/*
 * txt.c - the TXT record set a lookup callback fills in. Each record is
 * the concatenation of its character-strings (RFC 6376 §3.6.2.2), built
 * here so that no lookup backend has to get it right on its own.
 */
#include <stdlib.h>
#include <string.h>

#include "dkim.h"

#define TXT_MAX_RECORDS	16
#define TXT_MAX_BYTES	65536	/* a whole DNS message cannot carry more */

struct dkim_txt {
	struct dkim_buf rec[TXT_MAX_RECORDS];
	size_t n;
	bool overflow;
};

struct dkim_txt *
dkim_txt_new(void)
{
	return calloc(1, sizeof(struct dkim_txt));
}

bool
dkim_txt_add_record(struct dkim_txt *t)
{
	if (t->n == TXT_MAX_RECORDS) {
		t->overflow = true;
		return false;
	}
	dkim_buf_init(&t->rec[t->n], TXT_MAX_BYTES);
	t->n++;
	return true;
}

bool
dkim_txt_add_string(struct dkim_txt *t, const char *p, size_t n)
{
	if (t->overflow)
		return false;
	if (t->n == 0 && !dkim_txt_add_record(t))
		return false;
	return dkim_buf_add(&t->rec[t->n - 1], p, n);
}

size_t
dkim_txt_count(const struct dkim_txt *t)
{
	return t->n;
}

const char *
dkim_txt_get(const struct dkim_txt *t, size_t i, size_t *len)
{
	if (i >= t->n || t->rec[i].failed) {
		*len = 0;
		return NULL;
	}
	*len = t->rec[i].len;
	return t->rec[i].p ? t->rec[i].p : "";
}

void
dkim_txt_free(struct dkim_txt *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		dkim_buf_free(&t->rec[i]);
	free(t);
}
