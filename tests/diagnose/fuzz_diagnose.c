/*
 * fuzz_diagnose.c - libFuzzer target for `arcrelay diagnose`
 * (relay/diagnose.c): explaining every DKIM signature and ARC-Message-
 * Signature of a message, which means verifying them again under many
 * guesses of what changed.
 *
 * The first byte of an input picks the time (bit 6: 2005 instead of a
 * day after the RFC 8463 example, as in fuzz_arc). The rest is the
 * message (LF lines are made CRLF when it holds no CRLF). Keys come from
 * tests/unit/fuzz_lookup.h, served here through the pdns interface
 * diagnose asks: the RFC 8463 and ARC suite keys, and records from the
 * message's own X-Fuzz-Key fields (selector "fuzz").
 *
 * Besides "no crash, no leak, no overread" (ASan, UBSan), it traps when
 * a promise of diagnose.h breaks:
 *   - diagnose_message finishes with DKIM_OK and a report;
 *   - a signature that does not verify is never explained as a pass, and
 *     one that verifies has no other cause than pass or a testing key;
 *   - every string is set and NUL-terminated inside its array, at most
 *     DIAGNOSE_MAX_ALSO further findings, an appended line cut within
 *     DIAGNOSE_LINE_MAX octets;
 *   - hops are numbered 1..N in order, N at most ARC_MAX_SETS, and every
 *     "broke after hop" names one of them.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/, seeded with the messages tests/diagnose/run.sh breaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diagnose.h"
#include "../unit/fuzz_lookup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* txt_lookup - a pdns_lookup_fn over fuzz_lookup_fn (TXT only). */
static enum pdns_rc
txt_lookup(void *arg, const char *qname, enum pdns_type type,
    struct pdns_answer *out)
{
	struct dkim_txt *t;
	enum dkim_lookup_rc rc;
	enum pdns_rc prc = PDNS_NODATA;

	pdns_answer_init(out);
	if (type != PDNS_TXT)
		return PDNS_NODATA;
	CHECK((t = dkim_txt_new()) != NULL);
	rc = fuzz_lookup_fn(arg, qname, t);
	switch (rc) {
	case DKIM_LOOKUP_OK:
		for (size_t i = 0; i < dkim_txt_count(t); i++) {
			size_t len;
			const char *p = dkim_txt_get(t, i, &len);

			CHECK(pdns_add_txt(out, p, len));
			prc = PDNS_OK;
		}
		break;
	case DKIM_LOOKUP_NOTFOUND:
		prc = PDNS_NXDOMAIN;
		break;
	case DKIM_LOOKUP_TEMPFAIL:
		prc = PDNS_TEMPFAIL;
		break;
	case DKIM_LOOKUP_PERMFAIL:
		prc = PDNS_PERMFAIL;
		break;
	}
	dkim_txt_free(t);
	return prc;
}

/* set - s is a string, NUL-terminated within n bytes when n > 0. */
static bool
set(const char *s, size_t n)
{
	return s != NULL && (n == 0 || memchr(s, '\0', n) != NULL);
}

/* check_sig - the promises about one explained signature. */
static void
check_sig(const struct diagnose_sig *s, size_t nhop)
{
	CHECK(set(s->d, 0) && set(s->s, 0) && set(s->b, 0) &&
	    set(s->b_full, 0));
	CHECK(strlen(s->b) <= 8);
	CHECK(set(s->reason, sizeof(s->reason)));
	CHECK(set(s->cause.detail, sizeof(s->cause.detail)));
	CHECK(set(s->arc_detail, sizeof(s->arc_detail)));
	CHECK(s->nalso <= DIAGNOSE_MAX_ALSO);
	for (size_t i = 0; i < s->nalso; i++)
		CHECK(set(s->also[i].detail, sizeof(s->also[i].detail)) &&
		    s->also[i].cause != DIAGNOSE_PASS);
	CHECK(diagnose_cause_str(s->cause.cause) != NULL);
	if (s->result != DKIM_RES_PASS)
		CHECK(s->cause.cause != DIAGNOSE_PASS);
	else
		CHECK(s->cause.cause == DIAGNOSE_PASS ||
		    s->cause.cause == DIAGNOSE_KEY_TESTING);
	if (s->first_appended != NULL)
		CHECK(strlen(s->first_appended) <= DIAGNOSE_LINE_MAX);
	CHECK(s->broke_after_hop <= nhop && s->passed_at_hop <= nhop);
}

/* one - diagnose (p, n) under the time sel picks. */
static void
one(const char *p, size_t n, unsigned sel)
{
	struct diagnose_report *rep = NULL;
	struct diagnose_opts o;
	struct fuzz_lookup *l;
	struct dkim_msg *m = NULL;
	struct pdns dns;

	if (dkim_msg_parse(p, n, NULL, &m, NULL, 0) != DKIM_OK)
		return;
	CHECK((l = malloc(sizeof(*l))) != NULL);
	fuzz_lookup_init(l, m);
	dns.fn = txt_lookup;
	dns.arg = l;
	memset(&o, 0, sizeof(o));
	o.dns = &dns;
	o.now = sel & 64 ? 1112400000 : 1528637909 + 86400;
	CHECK(diagnose_message(m, &o, &rep) == DKIM_OK && rep != NULL);
	CHECK(rep->nsig <= 10 && (rep->nsig == 0 || rep->sig != NULL));
	CHECK(rep->nhop <= ARC_MAX_SETS);
	for (size_t k = 0; k < rep->nsig; k++) {
		CHECK(rep->sig[k].kind == DKIM_SIG_DKIM);
		check_sig(&rep->sig[k], rep->nhop);
	}
	for (size_t k = 0; k < rep->nhop; k++) {
		const struct diagnose_hop *h = &rep->hop[k];

		CHECK(h->instance == k + 1);
		CHECK(set(h->authserv_id, 0));
		for (size_t j = 0; j < h->nrec; j++)
			CHECK(set(h->rec[j].result, 0) &&
			    set(h->rec[j].d, 0) && set(h->rec[j].s, 0) &&
			    set(h->rec[j].b, 0));
		if (h->has_ams)
			check_sig(&h->ams, rep->nhop);
	}
	CHECK(rep->broke_after_hop <= rep->nhop);
	diagnose_report_free(rep);
	free(l);
	dkim_msg_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_lookup_message(data, size, one);
	return 0;
}
