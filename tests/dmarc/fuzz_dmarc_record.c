/*
 * fuzz_dmarc_record.c - libFuzzer target for the DMARC policy record
 * parser (dmarc_record_parse in policy/dmarc.c).
 *
 * The first byte of an input picks a tag appended in the second check
 * below; the rest is one TXT record (its strings joined). Besides "no
 * crash, no leak, no overread" (ASan), it traps when a promise of
 * dmarc.h breaks:
 *   - a record is accepted only when it opens with "v", WSP, "=", WSP and
 *     "DMARC1" followed by WSP, ';' or the end;
 *   - every field is in range: policies, alignments, psd, pct at most
 *     100; a policy tag marked bad left its policy absent; rua_ok only
 *     with has_rua; no more tag-specs ignored than there are ';';
 *   - the record written back from its parsed fields parses to the same
 *     fields with nothing ignored;
 *   - one more tag-spec after the record, unknown or repeating a tag
 *     already present, is ignored and changes nothing else.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static const char *const extra[] = { "; zz=1", ";x=", "; p=reject",
    "; pct=0", "; adkim=s", "; sp=quarantine", "; t=y", "; psd=y" };

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* opens_ok - does (p, n) start with the version tag dmarc.h describes? */
static bool
opens_ok(const char *p, size_t n)
{
	size_t i = 1;

	if (n == 0 || (p[0] != 'v' && p[0] != 'V'))
		return false;
	while (i < n && is_wsp(p[i]))
		i++;
	if (i == n || p[i++] != '=')
		return false;
	while (i < n && is_wsp(p[i]))
		i++;
	if (n - i < 6 || memcmp(p + i, "DMARC1", 6) != 0)
		return false;
	for (i += 6; i < n && is_wsp(p[i]); i++)
		;
	return i == n || p[i] == ';';
}

/* same_fields - two records alike in everything but ignored and rua. */
static bool
same_fields(const struct dmarc_record *a, const struct dmarc_record *b)
{
	return a->p == b->p && a->sp == b->sp && a->np == b->np &&
	    a->adkim == b->adkim && a->aspf == b->aspf && a->psd == b->psd &&
	    a->testing == b->testing && a->pct == b->pct;
}

static const char *
policy_word(enum dmarc_policy p)
{
	return p == DMARC_POLICY_NONE ? "none" :
	    p == DMARC_POLICY_QUARANTINE ? "quarantine" : "reject";
}

/* check_rewrite - r written back parses to the same fields. */
static void
check_rewrite(const struct dmarc_record *r)
{
	struct dmarc_record back;
	struct dkim_buf b;

	dkim_buf_init(&b, 0);
	dkim_buf_adds(&b, "v=DMARC1");
	if (r->p != DMARC_POLICY_ABSENT)
		dkim_buf_addf(&b, "; p=%s", policy_word(r->p));
	if (r->sp != DMARC_POLICY_ABSENT)
		dkim_buf_addf(&b, "; sp=%s", policy_word(r->sp));
	if (r->np != DMARC_POLICY_ABSENT)
		dkim_buf_addf(&b, "; np=%s", policy_word(r->np));
	dkim_buf_addf(&b, "; adkim=%c; aspf=%c; psd=%c; t=%c; pct=%u",
	    r->adkim == DMARC_ALIGN_STRICT ? 's' : 'r',
	    r->aspf == DMARC_ALIGN_STRICT ? 's' : 'r',
	    r->psd == DMARC_PSD_Y ? 'y' : r->psd == DMARC_PSD_N ? 'n' : 'u',
	    r->testing ? 'y' : 'n', r->pct);
	CHECK(!b.failed);
	CHECK(dmarc_record_parse(b.p, b.len, &back));
	CHECK(same_fields(r, &back) && back.ignored == 0 && !back.p_bad &&
	    !back.sp_bad && !back.np_bad && !back.has_rua);
	dkim_buf_free(&b);
}

/* check_extra - (p, n) with tag-spec x after it. */
static void
check_extra(const char *p, size_t n, const struct dmarc_record *r,
    const char *x)
{
	struct dmarc_record more;
	size_t xl = strlen(x);
	char *q;
	bool ignored;

	/* The new tag-spec is ignored only when its tag is already there
	 * or unknown; a tag after a bad one of its name still counts as
	 * repeated. */
	if (strcmp(x, "; p=reject") == 0)
		ignored = r->p != DMARC_POLICY_ABSENT || r->p_bad;
	else if (strcmp(x, "; sp=quarantine") == 0)
		ignored = r->sp != DMARC_POLICY_ABSENT || r->sp_bad;
	else if (x[2] == 'z' || x[1] == 'x')
		ignored = true;
	else
		return;	/* its tag's presence is not in the record */
	if (!ignored)
		return;
	CHECK((q = malloc(n + xl)) != NULL);
	memcpy(q, p, n);
	memcpy(q + n, x, xl);
	CHECK(dmarc_record_parse(q, n + xl, &more));
	CHECK(same_fields(r, &more) && more.ignored == r->ignored + 1 &&
	    more.p_bad == r->p_bad && more.sp_bad == r->sp_bad &&
	    more.np_bad == r->np_bad && more.has_rua == r->has_rua &&
	    more.rua_ok == r->rua_ok);
	free(q);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record r;
	unsigned sel, semis = 0;
	size_t n, i;
	char *p;

	if ((p = fuzz_input(data, size, &sel, &n)) == NULL)
		return 0;
	if (!dmarc_record_parse(p, n, &r)) {
		CHECK(!opens_ok(p, n));
		free(p);
		return 0;
	}
	CHECK(opens_ok(p, n));
	CHECK(r.p <= DMARC_POLICY_REJECT && r.sp <= DMARC_POLICY_REJECT &&
	    r.np <= DMARC_POLICY_REJECT);
	CHECK(r.adkim <= DMARC_ALIGN_STRICT && r.aspf <= DMARC_ALIGN_STRICT &&
	    r.psd <= DMARC_PSD_N && r.pct <= 100);
	CHECK(!r.p_bad || r.p == DMARC_POLICY_ABSENT);
	CHECK(!r.sp_bad || r.sp == DMARC_POLICY_ABSENT);
	CHECK(!r.np_bad || r.np == DMARC_POLICY_ABSENT);
	CHECK(!r.rua_ok || r.has_rua);
	for (i = 0; i < n; i++)
		semis += p[i] == ';';
	CHECK(r.ignored <= semis);
	check_rewrite(&r);
	check_extra(p, n, &r, extra[sel % (sizeof(extra) / sizeof(extra[0]))]);
	free(p);
	return 0;
}
