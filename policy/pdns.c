/*
 * pdns.c - answer sets for the DNS lookup interface, and the adapter that
 * serves DKIM key lookups from it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pdns.h"

void
pdns_answer_init(struct pdns_answer *a)
{
	memset(a, 0, sizeof(*a));
}

void
pdns_answer_clear(struct pdns_answer *a)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		free(a->rr[i].name);
		free(a->rr[i].txt);
	}
	free(a->rr);
	pdns_answer_init(a);
}

static struct pdns_rr *
add_rr(struct pdns_answer *a, enum pdns_type type)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 8;
		struct pdns_rr *nr;

		if (nc > 4096 || (nr = realloc(a->rr, nc * sizeof(*nr))) == NULL)
			return NULL;
		a->rr = nr;
		a->cap = nc;
	}
	memset(&a->rr[a->n], 0, sizeof(a->rr[a->n]));
	a->rr[a->n].type = type;
	return &a->rr[a->n++];
}

bool
pdns_add_txt(struct pdns_answer *a, const char *p, size_t n)
{
	struct pdns_rr *r = add_rr(a, PDNS_TXT);

	if (r == NULL || (r->txt = malloc(n + 1)) == NULL)
		return false;
	memcpy(r->txt, p, n);
	r->txt[n] = '\0';
	r->txt_len = n;
	r->txt_strings = 1;
	r->txt_longest = n;
	return true;
}

bool
pdns_append_txt(struct pdns_answer *a, const char *p, size_t n)
{
	struct pdns_rr *r;
	char *nt;

	if (a->n == 0 || a->rr[a->n - 1].type != PDNS_TXT)
		return pdns_add_txt(a, p, n);
	r = &a->rr[a->n - 1];
	if (r->txt_len + n > 65536 ||
	    (nt = realloc(r->txt, r->txt_len + n + 1)) == NULL)
		return false;
	memcpy(nt + r->txt_len, p, n);
	r->txt = nt;
	r->txt_len += n;
	r->txt[r->txt_len] = '\0';
	r->txt_strings++;
	if (n > r->txt_longest)
		r->txt_longest = n;
	return true;
}

bool
pdns_add_addr(struct pdns_answer *a, enum pdns_type type,
    const unsigned char *addr)
{
	struct pdns_rr *r = add_rr(a, type);

	if (r == NULL)
		return false;
	memcpy(r->addr, addr, type == PDNS_A ? 4 : 16);
	return true;
}

bool
pdns_add_name(struct pdns_answer *a, enum pdns_type type, uint16_t pref,
    const char *name)
{
	struct pdns_rr *r = add_rr(a, type);
	size_t n = strlen(name), i;

	if (r == NULL)
		return false;
	while (n > 1 && name[n - 1] == '.')
		n--;
	if ((r->name = malloc(n + 1)) == NULL)
		return false;
	for (i = 0; i < n; i++)
		r->name[i] = (name[i] >= 'A' && name[i] <= 'Z') ?
		    (char)(name[i] - 'A' + 'a') : name[i];
	r->name[n] = '\0';
	r->pref = pref;
	return true;
}

enum pdns_rc
pdns_lookup(const struct pdns *d, const char *qname, enum pdns_type type,
    struct pdns_answer *out)
{
	pdns_answer_init(out);
	if (d == NULL || d->fn == NULL)
		return PDNS_TEMPFAIL;
	return d->fn(d->arg, qname, type, out);
}

static enum pdns_rc
budget_lookup(void *arg, const char *qname, enum pdns_type type,
    struct pdns_answer *out)
{
	struct pdns_budget *b = arg;
	struct timespec t0, t1;
	enum pdns_rc rc;

	if (b->used >= b->max || b->stalled) {
		b->exhausted = b->used >= b->max;
		pdns_answer_init(out);
		return PDNS_TEMPFAIL;
	}
	b->used++;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = pdns_lookup(&b->inner, qname, type, out);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* A temporary failure that took a second or more is a server not
	 * answering, not a SERVFAIL: don't wait for it again. */
	if (rc == PDNS_TEMPFAIL && (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 1000)
		b->stalled = true;
	return rc;
}

struct pdns
pdns_budget_init(struct pdns_budget *b, const struct pdns *inner,
    unsigned max)
{
	struct pdns d = { budget_lookup, b };

	b->inner = *inner;
	b->max = max;
	b->used = 0;
	b->exhausted = false;
	b->stalled = false;
	return d;
}

const char *
pdns_rc_str(enum pdns_rc rc)
{
	switch (rc) {
	case PDNS_OK:		return "ok";
	case PDNS_NXDOMAIN:	return "NXDOMAIN";
	case PDNS_NODATA:	return "no records";
	case PDNS_TEMPFAIL:	return "temporary DNS failure";
	case PDNS_PERMFAIL:	return "permanent DNS failure";
	}
	return "DNS failure";
}

enum dkim_lookup_rc
pdns_dkim_lookup(void *arg, const char *qname, struct dkim_txt *out)
{
	struct pdns_answer a;
	enum pdns_rc rc = pdns_lookup(arg, qname, PDNS_TXT, &a);
	enum dkim_lookup_rc drc = DKIM_LOOKUP_OK;
	size_t i;

	switch (rc) {
	case PDNS_OK:
		for (i = 0; i < a.n; i++)
			if (a.rr[i].type == PDNS_TXT &&
			    (!dkim_txt_add_record(out) ||
			    !dkim_txt_add_string(out, a.rr[i].txt,
			    a.rr[i].txt_len)))
				drc = DKIM_LOOKUP_TEMPFAIL;
		break;
	case PDNS_NXDOMAIN:
	case PDNS_NODATA:
		drc = DKIM_LOOKUP_NOTFOUND;
		break;
	case PDNS_TEMPFAIL:
		drc = DKIM_LOOKUP_TEMPFAIL;
		break;
	case PDNS_PERMFAIL:
		drc = DKIM_LOOKUP_PERMFAIL;
		break;
	}
	pdns_answer_clear(&a);
	return drc;
}
