/*
 * fuzz_lookup.h - the key lookup of the fuzz targets that verify
 * (tests/unit/fuzz_verify.c, tests/arc/fuzz_arc.c). Header-only.
 *
 * Names are answered from a fixed table or from the input itself, so
 * that a mutated message reaches every path of key fetching and
 * signature checking:
 *   - selector "fuzz" (any domain): one TXT record per X-Fuzz-Key field
 *     of the message, its value cut into 255-octet strings as DNS would
 *     carry it; no such field is NOTFOUND;
 *   - selector "permfail": PERMFAIL;
 *   - dummy._domainkey.example.org: the RSA key of the ARC test suite
 *     (the RFC 8463 test key);
 *   - anything else: the served records of keys.h (the RFC 8463 keys
 *     under football.example.com and example.com, revoked, testing,
 *     strict, tempfail, several records...), NOTFOUND for the rest.
 * Every question is recorded so that a target can hold a caller to a
 * lookup budget. fuzz_lookup_message is the targets' input prologue.
 */
#ifndef ARCRELAY_TESTS_FUZZ_LOOKUP_H
#define ARCRELAY_TESTS_FUZZ_LOOKUP_H

#include <strings.h>

#include "dkim.h"
#include "fuzz_input.h"
#include "keys.h"

#define FUZZ_LOOKUP_NAMES 128	/* questions recorded */

struct fuzz_lookup {
	const struct dkim_msg *msg;	/* borrowed: X-Fuzz-Key fields */
	struct dns dns;			/* keys.h's served records */
	unsigned calls;
	bool repeated;			/* a name was asked twice */
	char names[FUZZ_LOOKUP_NAMES][256];
};

/* fuzz_lookup_init - a lookup serving msg's X-Fuzz-Key records. */
static inline void
fuzz_lookup_init(struct fuzz_lookup *l, const struct dkim_msg *msg)
{
	memset(l, 0, sizeof(*l));
	l->msg = msg;
	dns_init(&l->dns);
}

/* fuzz_lookup_add_field - f's value as one record of 255-octet strings. */
static inline void
fuzz_lookup_add_field(const struct dkim_field *f, struct dkim_txt *out)
{
	const char *v = f->raw + f->value_off;
	size_t n = f->raw_len - f->value_off;

	dkim_txt_add_record(out);
	do {
		size_t k = n < 255 ? n : 255;

		dkim_txt_add_string(out, v, k);
		v += k;
		n -= k;
	} while (n > 0);
}

/* fuzz_lookup_fn - the dkim_lookup_fn; arg is a struct fuzz_lookup. */
static inline enum dkim_lookup_rc
fuzz_lookup_fn(void *arg, const char *qname, struct dkim_txt *out)
{
	struct fuzz_lookup *l = arg;
	unsigned i, seen = l->calls < FUZZ_LOOKUP_NAMES ? l->calls :
	    FUZZ_LOOKUP_NAMES;
	bool any = false;
	size_t j;

	for (i = 0; i < seen; i++)
		if (strcasecmp(l->names[i], qname) == 0)
			l->repeated = true;
	if (l->calls < FUZZ_LOOKUP_NAMES)
		snprintf(l->names[l->calls], sizeof(l->names[0]), "%s", qname);
	l->calls++;
	if (strncasecmp(qname, "permfail._domainkey.", 20) == 0)
		return DKIM_LOOKUP_PERMFAIL;
	if (strcasecmp(qname, "dummy._domainkey.example.org") == 0) {
		static const char *const rec[MAX_STRINGS] = {
		    "v=DKIM1; k=rsa; p=" RFC8463_RSA_P };

		dns_add(out, rec);
		return DKIM_LOOKUP_OK;
	}
	if (strncasecmp(qname, "fuzz._domainkey.", 16) != 0)
		return dns_lookup(&l->dns, qname, out);
	for (j = 0; l->msg != NULL && j < l->msg->nfields; j++) {
		if (!dkim_field_is(&l->msg->fields[j], "X-Fuzz-Key"))
			continue;
		fuzz_lookup_add_field(&l->msg->fields[j], out);
		any = true;
	}
	return any ? DKIM_LOOKUP_OK : DKIM_LOOKUP_NOTFOUND;
}

/*
 * fuzz_lookup_message - the input prologue of both targets: the first
 * byte is sel, the rest the message, given to one made CRLF when it
 * holds no CRLF at all.
 */
static inline void
fuzz_lookup_message(const uint8_t *data, size_t size,
    void (*one)(const char *, size_t, unsigned))
{
	unsigned sel;
	size_t n, crlf_len;
	bool converted;
	char *p, *crlf;

	if ((p = fuzz_input(data, size, &sel, &n)) == NULL)
		return;
	crlf = dkim_crlf_from_lf(p, n, &crlf_len, &converted);
	if (crlf != NULL)
		one(crlf, crlf_len, sel);
	else
		one(p, n, sel);
	free(crlf);
	free(p);
}

#endif
