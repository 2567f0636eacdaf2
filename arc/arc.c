/*
 * arc.c - ARC chain validation (RFC 8617 §5.2) and sealing (§5.1).
 *
 * Untrusted input: the ARC fields of the message and the key records.
 * The chain is bounded (50 sets) before anything is verified, and key
 * lookups pass through a per-message memo with a budget of distinct
 * names. Canonicalization, hashing and signatures are libdkim's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arc.h"

/* One ARC set as found in the message: field indexes, -1 when absent. */
struct arc_set {
	long aar, ams, as;
	struct dkim_sig *ams_sig;	/* owned */
	struct dkim_sig *as_sig;	/* owned */
};

struct chain {
	struct arc_set set[ARC_MAX_SETS + 1];	/* [1..n] */
	unsigned n;
};

const char *
arc_cv_str(enum dkim_cv cv)
{
	return cv == DKIM_CV_PASS ? "pass" : cv == DKIM_CV_FAIL ? "fail" :
	    "none";
}

static void
chain_free(struct chain *c)
{
	unsigned i;

	for (i = 1; i <= ARC_MAX_SETS; i++) {
		dkim_sig_free(c->set[i].ams_sig);
		dkim_sig_free(c->set[i].as_sig);
	}
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* aar_instance - the N of an AAR's leading "i=N;" (§4.1.1), or 0. */
static unsigned
aar_instance(const struct dkim_field *f)
{
	const char *p = f->raw + f->value_off, *end = f->raw + f->raw_len;
	unsigned v = 0, digits = 0;

	while (p < end && is_wsp(*p))
		p++;
	if (p >= end || *p != 'i')
		return 0;
	p++;
	while (p < end && is_wsp(*p))
		p++;
	if (p >= end || *p != '=')
		return 0;
	p++;
	while (p < end && is_wsp(*p))
		p++;
	while (p < end && *p >= '0' && *p <= '9' && digits < 4) {
		v = v * 10 + (unsigned)(*p++ - '0');
		digits++;
	}
	while (p < end && is_wsp(*p))
		p++;
	if (digits == 0 || p >= end || *p != ';')
		return 0;
	return v;
}

/* tag_instance - the i= of an AMS or AS, read from its tag list. */
static unsigned
tag_instance(const struct dkim_field *f)
{
	struct dkim_taglist tl;
	const struct dkim_tag *t;
	unsigned v = 0;
	size_t k;

	if (dkim_tags_parse(f->raw + f->value_off, f->raw_len - f->value_off,
	    &tl, NULL, 0) != DKIM_OK || (t = dkim_tags_get(&tl, "i")) == NULL)
		return 0;
	if (t->value_len == 0 || t->value_len > 4)
		return 0;
	for (k = 0; k < t->value_len; k++) {
		if (t->value[k] < '0' || t->value[k] > '9')
			return 0;
		v = v * 10 + (unsigned)(t->value[k] - '0');
	}
	return v;
}

enum field_kind { F_NONE, F_AAR, F_AMS, F_AS };

static enum field_kind
field_kind(const struct dkim_field *f)
{
	if (dkim_field_is(f, "ARC-Seal"))
		return F_AS;
	if (dkim_field_is(f, "ARC-Message-Signature"))
		return F_AMS;
	if (dkim_field_is(f, "ARC-Authentication-Results"))
		return F_AAR;
	return F_NONE;
}

static const char *const kind_name[] = { "", "ARC-Authentication-Results",
    "ARC-Message-Signature", "ARC-Seal" };

/*
 * chain_collect - find the sets and check their structure (§5.2 steps 1
 * and 3A/3B). Returns false with a reason when the structure is broken.
 */
static bool
chain_collect(const struct dkim_msg *msg, struct chain *c, char *why,
    size_t whylen, bool *too_many)
{
	unsigned i;
	size_t j;

	memset(c, 0, sizeof(*c));
	*too_many = false;
	for (i = 0; i <= ARC_MAX_SETS; i++)
		c->set[i].aar = c->set[i].ams = c->set[i].as = -1;
	for (j = 0; j < msg->nfields; j++) {
		const struct dkim_field *f = &msg->fields[j];
		enum field_kind k = field_kind(f);
		long *slot;

		if (k == F_NONE)
			continue;
		i = k == F_AAR ? aar_instance(f) : tag_instance(f);
		if (i == 0) {
			snprintf(why, whylen, "%s with no valid instance tag",
			    kind_name[k]);
			return false;
		}
		if (i > ARC_MAX_SETS) {
			*too_many = true;
			snprintf(why, whylen, "more than %d ARC sets (i=%u)",
			    ARC_MAX_SETS, i);
			return false;
		}
		slot = k == F_AAR ? &c->set[i].aar : k == F_AMS ?
		    &c->set[i].ams : &c->set[i].as;
		if (*slot >= 0) {
			snprintf(why, whylen, "two %s fields with i=%u",
			    kind_name[k], i);
			return false;
		}
		*slot = (long)j;
		if (i > c->n)
			c->n = i;
	}
	for (i = 1; i <= c->n; i++) {
		const char *missing = c->set[i].aar < 0 ? kind_name[F_AAR] :
		    c->set[i].ams < 0 ? kind_name[F_AMS] :
		    c->set[i].as < 0 ? kind_name[F_AS] : NULL;

		if (missing) {
			snprintf(why, whylen, "ARC set %u has no %s", i,
			    missing);
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------ memoized lookups */

#define MEMO_MAX (2 * ARC_MAX_SETS + 2)

struct memo {
	dkim_lookup_fn fn;
	void *arg;
	unsigned budget;
	bool exhausted;
	size_t n;
	struct {
		char *name;
		enum dkim_lookup_rc rc;
		struct dkim_txt *txt;
	} e[MEMO_MAX];
};

static void
txt_copy(const struct dkim_txt *from, struct dkim_txt *to)
{
	size_t i, len;
	const char *p;

	for (i = 0; i < dkim_txt_count(from); i++) {
		if ((p = dkim_txt_get(from, i, &len)) == NULL)
			continue;
		dkim_txt_add_record(to);
		dkim_txt_add_string(to, p, len);
	}
}

static enum dkim_lookup_rc
memo_lookup(void *arg, const char *qname, struct dkim_txt *out)
{
	struct memo *m = arg;
	size_t i;

	for (i = 0; i < m->n; i++) {
		if (strcasecmp(m->e[i].name, qname) == 0) {
			txt_copy(m->e[i].txt, out);
			return m->e[i].rc;
		}
	}
	if (m->n >= m->budget || m->n >= MEMO_MAX || m->fn == NULL) {
		m->exhausted = true;
		return DKIM_LOOKUP_PERMFAIL;
	}
	if ((m->e[m->n].txt = dkim_txt_new()) == NULL ||
	    (m->e[m->n].name = strdup(qname)) == NULL) {
		dkim_txt_free(m->e[m->n].txt);
		return DKIM_LOOKUP_TEMPFAIL;
	}
	m->e[m->n].rc = m->fn(m->arg, qname, m->e[m->n].txt);
	txt_copy(m->e[m->n].txt, out);
	return m->e[m->n++].rc;
}

static void
memo_free(struct memo *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		free(m->e[i].name);
		dkim_txt_free(m->e[i].txt);
	}
}

/* ------------------------------------------------------- validation */

/* seal_input - the AS(upto) signing scope (§5.1.1): sets 1..upto in the
 * order AAR, AMS, AS, relaxed, the last AS without b= and CRLF. */
static bool
seal_input(const struct dkim_msg *msg, const struct chain *c, unsigned upto,
    struct dkim_buf *in)
{
	unsigned i;

	for (i = 1; i <= upto; i++) {
		const struct dkim_field *aar = &msg->fields[c->set[i].aar];
		const struct dkim_field *ams = &msg->fields[c->set[i].ams];
		const struct dkim_field *as = &msg->fields[c->set[i].as];

		dkim_canon_header(DKIM_CANON_RELAXED, aar->raw, aar->raw_len,
		    true, in);
		dkim_canon_header(DKIM_CANON_RELAXED, ams->raw, ams->raw_len,
		    true, in);
		if (i < upto) {
			dkim_canon_header(DKIM_CANON_RELAXED, as->raw,
			    as->raw_len, true, in);
		} else {
			struct dkim_buf s;

			dkim_buf_init(&s, 0);
			dkim_sig_field_stripped(as, c->set[i].as_sig, &s);
			dkim_canon_header(DKIM_CANON_RELAXED, s.p ? s.p : "",
			    s.len, false, in);
			if (s.failed)
				in->failed = true;
			dkim_buf_free(&s);
		}
	}
	return !in->failed;
}

/* verify_seal - one ARC-Seal; returns false with a reason. */
static bool
verify_seal(const struct dkim_msg *msg, const struct chain *c, unsigned i,
    const struct dkim_verify_opts *o, char *why, size_t whylen)
{
	const struct dkim_sig *sig = c->set[i].as_sig;
	struct dkim_key *key;
	enum dkim_result res;
	struct dkim_buf in;
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dglen;
	bool ok;

	if (sig->alg == DKIM_ALG_RSA_SHA1) {
		snprintf(why, whylen, "rsa-sha1 not accepted (RFC 8301)");
		return false;
	}
	key = dkim_key_fetch_cached(o->keycache, o->lookup, o->lookup_arg,
	    sig->s, sig->d, &res, why, whylen);
	if (key == NULL)
		return false;
	if (!dkim_key_acceptable(key, sig, o, &res, why, whylen)) {
		dkim_key_free(key);
		return false;
	}
	dkim_buf_init(&in, 0);
	ok = seal_input(msg, c, i, &in) &&
	    EVP_Digest(in.p, in.len, dg, &dglen, dkim_alg_md(sig->alg), NULL);
	ok = ok && dkim_digest_verify(key->pkey, sig->alg, dg, dglen, sig->b,
	    sig->b_len);
	if (!ok)
		snprintf(why, whylen, "signature did not verify");
	dkim_buf_free(&in);
	dkim_key_free(key);
	return ok;
}

/* verify_ams - one ARC-Message-Signature through libdkim's verifier. */
static bool
verify_ams(const struct dkim_msg *msg, const struct chain *c, unsigned i,
    const struct dkim_verify_opts *o, struct dkim_bhcache *bc, char *why,
    size_t whylen, bool *nomem)
{
	struct dkim_sigresult r;
	bool ok;

	memset(&r, 0, sizeof(r));
	r.field_index = (size_t)c->set[i].ams;
	r.sig = c->set[i].ams_sig;
	*nomem = dkim_verify_sig(msg, o, bc, &r) == DKIM_E_NOMEM;
	ok = r.result == DKIM_RES_PASS;
	if (!ok)
		snprintf(why, whylen, "%s", r.reason);
	return ok;
}

#define CHAIN_FAIL(...) do { out->cv = DKIM_CV_FAIL; \
	snprintf(out->reason, sizeof(out->reason), __VA_ARGS__); \
	goto done; } while (0)

enum dkim_status
arc_validate(const struct dkim_msg *msg, const struct dkim_verify_opts *vo,
    unsigned budget, struct arc_result *out)
{
	struct chain *c;
	struct memo memo;
	struct dkim_verify_opts o = *vo;
	struct dkim_bhcache *bc;
	char why[DKIM_WHY_MAX] = "", pwhy[DKIM_WHY_MAX];
	enum dkim_status st = DKIM_OK;
	bool too_many, nomem = false;
	unsigned i;

	memset(out, 0, sizeof(*out));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return DKIM_E_NOMEM;
	if ((bc = dkim_bhcache_new()) == NULL) {
		free(c);
		return DKIM_E_NOMEM;
	}
	memset(&memo, 0, sizeof(memo));
	memo.fn = vo->lookup;
	memo.arg = vo->lookup_arg;
	memo.budget = budget ? budget : ARC_DEFAULT_LOOKUP_BUDGET;
	o.lookup = memo_lookup;
	o.lookup_arg = &memo;

	if (!chain_collect(msg, c, why, sizeof(why), &too_many)) {
		out->instances = c->n;
		CHAIN_FAIL("%s", why);
	}
	out->instances = c->n;
	if (c->n == 0) {
		out->cv = DKIM_CV_NONE;
		snprintf(out->reason, sizeof(out->reason), "no ARC sets");
		goto done;
	}
	for (i = c->n; i >= 1; i--) {
		if (dkim_sig_parse(&msg->fields[c->set[i].as],
		    DKIM_SIG_ARC_SEAL, &c->set[i].as_sig, pwhy,
		    sizeof(pwhy)) != DKIM_OK)
			CHAIN_FAIL("ARC-Seal i=%u: %.150s", i, pwhy);
		/* §5.2 step 2: the newest seal's verdict stands. */
		if (i == c->n && c->set[i].as_sig->cv == DKIM_CV_FAIL)
			CHAIN_FAIL("ARC-Seal i=%u says cv=fail", i);
		if (dkim_sig_parse(&msg->fields[c->set[i].ams],
		    DKIM_SIG_ARC_MS, &c->set[i].ams_sig, pwhy,
		    sizeof(pwhy)) != DKIM_OK)
			CHAIN_FAIL("ARC-Message-Signature i=%u: %.140s", i, pwhy);
	}
	/* §5.2 step 3C */
	for (i = 1; i <= c->n; i++) {
		enum dkim_cv want = i == 1 ? DKIM_CV_NONE : DKIM_CV_PASS;

		if (c->set[i].as_sig->cv != want)
			CHAIN_FAIL("ARC-Seal i=%u has cv=%s, must be %s", i,
			    arc_cv_str(c->set[i].as_sig->cv),
			    arc_cv_str(want));
	}
	/* §5.2 step 4 */
	if (!verify_ams(msg, c, c->n, &o, bc, why, sizeof(why), &nomem))
		CHAIN_FAIL("ARC-Message-Signature i=%u: %.100s%s", c->n, why,
		    memo.exhausted ? " (key lookup budget exhausted)" : "");
	/* §5.2 step 6, before the optional step 5 so that the budget goes
	 * to what decides the chain. */
	for (i = c->n; i >= 1; i--)
		if (!verify_seal(msg, c, i, &o, why, sizeof(why)))
			CHAIN_FAIL("ARC-Seal i=%u: %.110s%s", i, why,
			    memo.exhausted ? " (key lookup budget exhausted)" :
			    "");
	/* §5.2 step 5: oldest-pass. Out of lookups, it reports the lowest
	 * instance actually verified, which claims no more than is known. */
	out->oldest_pass = 0;
	for (i = c->n - 1; i >= 1 && !nomem; i--) {
		if (!verify_ams(msg, c, i, &o, bc, why, sizeof(why), &nomem)) {
			out->oldest_pass = i + 1;
			break;
		}
	}
	out->cv = DKIM_CV_PASS;
	snprintf(out->sealer, sizeof(out->sealer), "%s",
	    c->set[c->n].as_sig->d);
	snprintf(out->reason, sizeof(out->reason), "%u ARC set%s verified",
	    c->n, c->n == 1 ? "" : "s");
done:
	if (nomem)
		st = DKIM_E_NOMEM;
	memo_free(&memo);
	dkim_bhcache_free(bc);
	chain_free(c);
	free(c);
	return st;
}

/* ---------------------------------------------------------- sealing */

void
arc_seal_opts_init(struct arc_seal_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->alg = DKIM_ALG_RSA_SHA256;
	o->now = -1;
}

/* build_aar - "ARC-Authentication-Results: i=N; id; results", folded
 * between words at 78 columns (§4.1.1). */
static bool
build_aar(struct dkim_buf *out, unsigned inst, const char *authserv,
    const char *results)
{
	struct dkim_buf words;
	size_t col, i = 0;

	if (results == NULL || results[0] == '\0')
		results = "none";
	dkim_buf_init(&words, 0);
	dkim_buf_addf(&words, "i=%u; %s; %s", inst, authserv, results);
	if (words.failed)
		return false;
	dkim_buf_adds(out, "ARC-Authentication-Results:");
	col = strlen("ARC-Authentication-Results:");
	while (i < words.len) {
		size_t a, n;

		while (i < words.len && is_wsp(words.p[i]))
			i++;
		a = i;
		while (i < words.len && !is_wsp(words.p[i]))
			i++;
		n = i - a;
		if (n == 0)
			break;
		if (col + 1 + n > 78 && col > 1) {
			dkim_buf_add(out, "\r\n", 2);
			col = 0;
		}
		dkim_buf_addc(out, ' ');
		dkim_buf_add(out, words.p + a, n);
		col += 1 + n;
	}
	dkim_buf_add(out, "\r\n", 2);
	dkim_buf_free(&words);
	return !out->failed;
}

enum dkim_status
arc_seal(const struct dkim_msg *msg, const struct arc_result *chain,
    const struct arc_seal_opts *o, struct dkim_buf *out, char *why,
    size_t whylen)
{
	struct chain *c;
	struct dkim_sign_opts so;
	struct dkim_buf aar, ams, as, in;
	struct dkim_taglist tl;
	const struct dkim_tag *cvt;
	char tbuf[4][96], *b64 = NULL;
	const char *tags[7];
	unsigned char dg[EVP_MAX_MD_SIZE], *sig = NULL;
	unsigned int dglen;
	size_t siglen, k;
	unsigned inst;
	enum dkim_cv cv;
	enum dkim_status st;
	bool too_many, structured;

	if (o->key == NULL || o->domain == NULL || o->selector == NULL ||
	    o->authserv_id == NULL) {
		snprintf(why, whylen, "sealing needs a key, a domain, a "
		    "selector and an authserv-id");
		return DKIM_E_ARG;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return DKIM_E_NOMEM;
	structured = chain_collect(msg, c, why, whylen, &too_many);
	if (too_many || c->n >= ARC_MAX_SETS) {
		snprintf(why, whylen, "the chain already has %d ARC sets; a "
		    "51st is not allowed (RFC 8617 §4.2.1)", ARC_MAX_SETS);
		free(c);
		return DKIM_E_LIMIT;
	}
	/* §5.1 step 2: a chain whose newest seal says cv=fail ends there. */
	if (c->n > 0 && c->set[c->n].as >= 0) {
		const struct dkim_field *f = &msg->fields[c->set[c->n].as];

		if (dkim_tags_parse(f->raw + f->value_off, f->raw_len -
		    f->value_off, &tl, NULL, 0) == DKIM_OK &&
		    (cvt = dkim_tags_get(&tl, "cv")) != NULL &&
		    cvt->value_len == 4 &&
		    strncasecmp(cvt->value, "fail", 4) == 0) {
			snprintf(why, whylen, "the newest ARC-Seal (i=%u) "
			    "says cv=fail; the chain is not extended "
			    "(RFC 8617 §5.1)", c->n);
			free(c);
			return DKIM_E_LIMIT;
		}
	}
	inst = c->n + 1;
	cv = c->n == 0 ? DKIM_CV_NONE :
	    (structured && chain->cv == DKIM_CV_PASS) ? DKIM_CV_PASS :
	    DKIM_CV_FAIL;

	dkim_buf_init(&aar, 0);
	dkim_buf_init(&ams, 0);
	dkim_buf_init(&as, 0);
	dkim_buf_init(&in, 0);
	st = DKIM_E_NOMEM;
	if (!build_aar(&aar, inst, o->authserv_id, o->results))
		goto out;

	dkim_sign_opts_init(&so);
	so.alg = o->alg;
	so.hcanon = so.bcanon = DKIM_CANON_RELAXED;
	so.domain = o->domain;
	so.selector = o->selector;
	so.now = o->now;
	so.headers = o->headers;
	so.nheaders = o->nheaders;
	so.key = o->key;
	if ((st = dkim_sign_ams(msg, &so, inst, &ams, why, whylen)) != DKIM_OK)
		goto out;

	snprintf(tbuf[0], sizeof(tbuf[0]), "i=%u", inst);
	snprintf(tbuf[1], sizeof(tbuf[1]), "a=%s", dkim_alg_str(o->alg));
	snprintf(tbuf[2], sizeof(tbuf[2]), "t=%" PRId64, o->now < 0 ? 0 :
	    o->now);
	snprintf(tbuf[3], sizeof(tbuf[3]), "cv=%s", arc_cv_str(cv));
	for (k = 0; k < 4; k++)
		tags[k] = tbuf[k];
	{
		struct dkim_buf d, s;

		dkim_buf_init(&d, 0);
		dkim_buf_init(&s, 0);
		dkim_buf_addf(&d, "d=%s", o->domain);
		dkim_buf_addf(&s, "s=%s", o->selector);
		tags[4] = d.p;
		tags[5] = s.p;
		tags[6] = "b=";
		st = DKIM_E_NOMEM;
		if (!d.failed && !s.failed)
			dkim_fold_field(&as, "ARC-Seal", tags, 7);
		dkim_buf_free(&d);
		dkim_buf_free(&s);
		if (as.failed || as.len < 2)
			goto out;
	}

	/* The signing scope: earlier sets unless the chain failed
	 * (§5.1.2), then the new AAR and AMS, then this seal. */
	if (cv != DKIM_CV_FAIL && c->n > 0) {
		for (k = 1; k <= c->n; k++) {
			const long idx[3] = { c->set[k].aar, c->set[k].ams,
			    c->set[k].as };

			for (int m = 0; m < 3; m++) {
				const struct dkim_field *f =
				    &msg->fields[idx[m]];

				dkim_canon_header(DKIM_CANON_RELAXED, f->raw,
				    f->raw_len, true, &in);
			}
		}
	}
	dkim_canon_header(DKIM_CANON_RELAXED, aar.p, aar.len - 2, true, &in);
	dkim_canon_header(DKIM_CANON_RELAXED, ams.p, ams.len - 2, true, &in);
	dkim_canon_header(DKIM_CANON_RELAXED, as.p, as.len - 2, false, &in);
	if (in.failed)
		goto out;
	st = DKIM_E_CRYPTO;
	if (!EVP_Digest(in.p, in.len, dg, &dglen, dkim_alg_md(o->alg), NULL))
		goto out;
	if ((st = dkim_digest_sign(o->key, o->alg, dg, dglen, &sig,
	    &siglen)) != DKIM_OK) {
		snprintf(why, whylen, "the key could not sign");
		goto out;
	}
	st = DKIM_E_NOMEM;
	if ((b64 = dkim_b64_encode(sig, siglen)) == NULL)
		goto out;
	as.len -= 2;
	if (!dkim_fold_append(&as, b64))
		goto out;
	dkim_buf_add(out, as.p, as.len);
	dkim_buf_add(out, ams.p, ams.len);
	dkim_buf_add(out, aar.p, aar.len);
	st = out->failed ? DKIM_E_NOMEM : DKIM_OK;
out:
	if (st == DKIM_E_NOMEM)
		snprintf(why, whylen, "out of memory");
	free(b64);
	free(sig);
	dkim_buf_free(&aar);
	dkim_buf_free(&ams);
	dkim_buf_free(&as);
	dkim_buf_free(&in);
	free(c);
	return st;
}
