/*
 * diagnose.c - explain failing DKIM signatures and ARC-Message-Signatures
 * by recomputing them: the body hash over prefixes and plausible earlier
 * forms of the body, the header hash over the fields with one reversal
 * or another applied, and the key record as the DNS served it.
 *
 * Untrusted input: the whole message and the key records. Edited forms
 * of the header are copies of the field array pointing at fresh bytes,
 * built per trial and freed after it; the number of trials is capped. The
 * only I/O is the key lookups through the caller's struct pdns.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authres.h"
#include "diagnose.h"

static const char *const cause_names[] = {
	[DIAGNOSE_PASS] = "pass",
	[DIAGNOSE_BODY_APPENDED] = "body-appended",
	[DIAGNOSE_BODY_CANON] = "body-canon",
	[DIAGNOSE_BODY_LINE_ENDINGS] = "body-line-endings",
	[DIAGNOSE_BODY_WHITESPACE] = "body-whitespace",
	[DIAGNOSE_BODY_CHANGED] = "body-changed",
	[DIAGNOSE_HEADER_SUBJECT_TAG] = "header-subject-tag",
	[DIAGNOSE_HEADER_FROM_REWRITTEN] = "header-from-rewritten",
	[DIAGNOSE_HEADER_REFOLDED] = "header-refolded",
	[DIAGNOSE_HEADER_ADDED] = "header-added",
	[DIAGNOSE_HEADER_CHANGED] = "header-changed",
	[DIAGNOSE_KEY_MISSING] = "key-missing",
	[DIAGNOSE_KEY_DNS] = "key-dns",
	[DIAGNOSE_KEY_REVOKED] = "key-revoked",
	[DIAGNOSE_KEY_TESTING] = "key-testing",
	[DIAGNOSE_KEY_TYPE] = "key-type",
	[DIAGNOSE_KEY_TOO_SHORT] = "key-too-short",
	[DIAGNOSE_KEY_MALFORMED] = "key-malformed",
	[DIAGNOSE_KEY_HASH] = "key-hash",
	[DIAGNOSE_KEY_SERVICE] = "key-service",
	[DIAGNOSE_KEY_STRICT] = "key-strict",
	[DIAGNOSE_EXPIRED] = "expired",
	[DIAGNOSE_FUTURE] = "future",
	[DIAGNOSE_SIG_MALFORMED] = "sig-malformed",
	[DIAGNOSE_SIG_ALGORITHM] = "sig-algorithm",
	[DIAGNOSE_UNEXPLAINED] = "unexplained",
};

const char *
diagnose_cause_str(enum diagnose_cause c)
{
	if ((unsigned)c >= sizeof(cause_names) / sizeof(cause_names[0]))
		return "unexplained";
	return cause_names[c];
}

/* note - record a finding: the first becomes the cause, later ones go to
 * also[] while there is room. */
static void __attribute__((format(printf, 3, 4)))
note(struct diagnose_sig *ds, enum diagnose_cause c, const char *fmt, ...)
{
	struct diagnose_finding *f;
	va_list ap;

	if (ds->cause.cause == DIAGNOSE_PASS)
		f = &ds->cause;
	else if (ds->nalso < DIAGNOSE_MAX_ALSO)
		f = &ds->also[ds->nalso++];
	else
		return;
	f->cause = c;
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
}

/*
 * esc - (p, n) as printable ASCII for a sentence: quotes and backslashes
 * escaped, every other byte outside 0x20..0x7e as \xNN, cut at max input
 * octets with "...". out must hold 4 * max + 8 bytes.
 */
static const char *
esc(const char *p, size_t n, size_t max, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < n && i < max && o + 8 < outlen; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c > 0x7e) {
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	if (i < n && o + 4 <= outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ------------------------------------------------------------ key record */

/* tag_text - a tag's value of a record, printable, for a sentence. */
static const char *
tag_text(const char *rec, size_t len, const char *name, char *out,
    size_t outlen)
{
	struct dkim_taglist tl;
	const struct dkim_tag *t;

	if (dkim_tags_parse(rec, len, &tl, NULL, 0) != DKIM_OK ||
	    (t = dkim_tags_get(&tl, name)) == NULL)
		return "";
	return esc(t->value, t->value_len, 40, out, outlen);
}

/* record_with - rec with tag t's value replaced by (v, n), or with
 * ";name=v" appended when t is NULL. */
static bool
record_with(const char *rec, size_t len, const struct dkim_tag *t,
    const char *name, const char *v, size_t n, struct dkim_buf *out)
{
	if (t != NULL) {
		dkim_buf_add(out, rec, t->value_off);
		dkim_buf_add(out, v, n);
		dkim_buf_add(out, rec + t->value_off + t->value_len,
		    len - t->value_off - t->value_len);
	} else {
		size_t e = len;

		while (e > 0 && (is_wsp(rec[e - 1]) || rec[e - 1] == ';'))
			e--;
		dkim_buf_add(out, rec, e);
		dkim_buf_addf(out, "; %s=", name);
		dkim_buf_add(out, v, n);
	}
	return !out->failed;
}

/* parse_edited - dkim_key_parse of an edited record; NULL if it fails. */
static struct dkim_key *
parse_edited(const char *rec, size_t len, const struct dkim_tag *t,
    const char *name, const char *v, size_t n)
{
	struct dkim_buf b;
	struct dkim_key *k = NULL;

	dkim_buf_init(&b, len + n + 16);
	if (record_with(rec, len, t, name, v, n, &b) &&
	    dkim_key_parse(b.p, b.len, &k, NULL, 0) != DKIM_OK)
		k = NULL;
	dkim_buf_free(&b);
	if (k != NULL && k->revoked) {
		dkim_key_free(k);
		k = NULL;
	}
	return k;
}

static const char *
keytype_str(enum dkim_keytype t)
{
	return t == DKIM_KEY_ED25519 ? "ed25519" : "rsa";
}

/* der_total - the length a DER SEQUENCE at d claims, header included. */
static bool
der_total(const unsigned char *d, size_t n, size_t *total)
{
	size_t len = 0, k, i;

	if (n < 2 || d[0] != 0x30)
		return false;
	if (d[1] < 0x80) {
		*total = 2 + (size_t)d[1];
		return true;
	}
	k = d[1] & 0x7f;
	if (k == 0 || k > 4 || n < 2 + k)
		return false;
	for (i = 0; i < k; i++)
		len = len << 8 | d[2 + i];
	*total = 2 + k + len;
	return true;
}

static bool
is_b64(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

/*
 * key_p_problem - what is wrong with the p= of a record that does not
 * parse: the other key type, quotes or other bytes that are not base64,
 * lost characters, or a DER key cut short.
 */
static void
key_p_problem(struct diagnose_sig *ds, const char *qname,
    const struct pdns_rr *rr, const struct dkim_taglist *tl,
    const struct dkim_sig *sig)
{
	const char *rec = rr->txt;
	size_t len = rr->txt_len, n, i, nb64 = 0, quote = SIZE_MAX;
	size_t bad = SIZE_MAX, derlen, total;
	const struct dkim_tag *p = dkim_tags_get(tl, "p");
	const struct dkim_tag *kt = dkim_tags_get(tl, "k");
	enum dkim_keytype said = DKIM_KEY_RSA;
	struct dkim_key *k;
	unsigned char *der;
	char e[128], clean[8192];
	size_t nclean = 0;
	bool wsp = false;

	if (kt && kt->value_len == 7 && strncasecmp(kt->value, "ed25519", 7) ==
	    0)
		said = DKIM_KEY_ED25519;
	/* The right key under the wrong k= (or none). */
	for (int alt = 0; alt < 2; alt++) {
		const char *name = alt ? "ed25519" : "rsa";

		if ((enum dkim_keytype)alt == said)
			continue;
		if ((k = parse_edited(rec, len, kt, "k", name,
		    strlen(name))) == NULL)
			continue;
		note(ds, DIAGNOSE_KEY_TYPE, "the record at %s says k=%s but "
		    "p= holds an %s key (%u bits); the signature is a=%s",
		    qname, kt ? esc(kt->value, kt->value_len, 16, e,
		    sizeof(e)) : "rsa (no k=)", name, k->bits,
		    dkim_alg_str(sig->alg));
		dkim_key_free(k);
		return;
	}
	n = p->value_len;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p->value[i];

		if (c == '"' || c == '\\') {
			if (quote == SIZE_MAX)
				quote = i;
		} else if (is_wsp((char)c) || c == '\r' || c == '\n') {
			wsp = true;
		} else if (!is_b64(c)) {
			if (bad == SIZE_MAX)
				bad = i;
		} else {
			nb64++;
			if (nclean < sizeof(clean))
				clean[nclean++] = (char)c;
		}
	}
	if (quote != SIZE_MAX) {
		if (bad == SIZE_MAX && nclean < sizeof(clean) &&
		    (k = parse_edited(rec, len, p, "p", clean, nclean)) !=
		    NULL) {
			note(ds, DIAGNOSE_KEY_MALFORMED, "p= at %s holds a "
			    "quote character at position %zu: the record's "
			    "strings were pasted with their quotes (\"...\" "
			    "\"...\" inside one string); without the quotes "
			    "and spaces it is a valid %u-bit %s key", qname,
			    quote, k->bits, keytype_str(k->type));
			dkim_key_free(k);
		} else {
			note(ds, DIAGNOSE_KEY_MALFORMED, "p= at %s holds a "
			    "quote character at position %zu: the record's "
			    "strings were pasted with their quotes", qname,
			    quote);
		}
		return;
	}
	if (bad != SIZE_MAX) {
		note(ds, DIAGNOSE_KEY_MALFORMED, "p= at %s holds \"%s\" at "
		    "position %zu, which is not base64", qname,
		    esc(p->value + bad, 1, 1, e, sizeof(e)), bad);
		return;
	}
	if (nb64 % 4 != 0) {
		note(ds, DIAGNOSE_KEY_MALFORMED, "p= at %s has %zu base64 "
		    "characters, not a multiple of 4: characters are missing "
		    "(p= truncated, or a string split that lost some)%s",
		    qname, nb64, wsp ? "; it also holds white space" : "");
		return;
	}
	if ((der = dkim_b64_decode(p->value, n, &derlen)) == NULL) {
		note(ds, DIAGNOSE_KEY_MALFORMED, "p= at %s is not valid base64 "
		    "(misplaced padding)", qname);
		return;
	}
	if (der_total(der, derlen, &total) && total > derlen)
		note(ds, DIAGNOSE_KEY_MALFORMED, "p= at %s is truncated: the "
		    "key's DER says %zu octets, p= holds %zu (the record has "
		    "%zu string%s of at most %zu octets)", qname, total,
		    derlen, rr->txt_strings, rr->txt_strings == 1 ? "" : "s",
		    rr->txt_longest);
	else if (der_total(der, derlen, &total) && total < derlen)
		note(ds, DIAGNOSE_KEY_MALFORMED, "p= at %s has %zu octets "
		    "after the end of the DER key", qname, derlen - total);
	else if (said == DKIM_KEY_ED25519)
		note(ds, DIAGNOSE_KEY_MALFORMED, "p= at %s decodes to %zu "
		    "octets, which are not an ed25519 key (32 octets)", qname,
		    derlen);
	else
		note(ds, DIAGNOSE_KEY_MALFORMED, "p= at %s decodes to %zu "
		    "octets that are not an RSA public key", qname, derlen);
	free(der);
}

/* key_unparsed - no TXT record at the name parses as a key: say why,
 * looking at the one that is most like a key record. */
static void
key_unparsed(struct diagnose_sig *ds, const char *qname,
    const struct pdns_answer *ans, const struct dkim_sig *sig)
{
	const struct pdns_rr *rr = NULL;
	struct dkim_taglist tl;
	char why[DKIM_WHY_MAX] = "", e[200];
	struct dkim_key *k = NULL;
	size_t i;

	for (i = 0; i < ans->n && rr == NULL; i++)
		if (ans->rr[i].type == PDNS_TXT &&
		    dkim_tags_parse(ans->rr[i].txt, ans->rr[i].txt_len, &tl,
		    NULL, 0) == DKIM_OK && dkim_tags_get(&tl, "p") != NULL)
			rr = &ans->rr[i];
	for (i = 0; i < ans->n && rr == NULL; i++)
		if (ans->rr[i].type == PDNS_TXT)
			rr = &ans->rr[i];
	if (rr == NULL) {
		note(ds, DIAGNOSE_KEY_MISSING, "no key record: %s has no TXT "
		    "record", qname);
		return;
	}
	if (dkim_tags_parse(rr->txt, rr->txt_len, &tl, why, sizeof(why)) !=
	    DKIM_OK) {
		note(ds, DIAGNOSE_KEY_MALFORMED, "the record at %s is not a "
		    "tag list (%s)%s", qname, why, memchr(rr->txt, '"',
		    rr->txt_len) ? ": it holds a quote character, so its "
		    "strings were probably pasted with their quotes" : "");
		return;
	}
	if (dkim_tags_get(&tl, "p") == NULL) {
		note(ds, DIAGNOSE_KEY_MALFORMED, "the TXT record at %s is not "
		    "a DKIM key (no p=): \"%s\"", qname, esc(rr->txt,
		    rr->txt_len, 40, e, sizeof(e)));
		return;
	}
	if (dkim_key_parse(rr->txt, rr->txt_len, &k, why, sizeof(why)) ==
	    DKIM_OK) {
		dkim_key_free(k);	/* parsed after all: nothing to say */
		return;
	}
	if (strstr(why, "p=") == NULL) {
		note(ds, DIAGNOSE_KEY_MALFORMED, "the record at %s does not "
		    "parse: %s", qname, why);
		return;
	}
	key_p_problem(ds, qname, rr, &tl, sig);
}

/*
 * key_examine - fetch the key of sig the way a verifier does and note
 * every problem the record has for it. Returns the key when its public
 * key can still check the header hash (a too short key can), else NULL.
 */
static struct dkim_key *
key_examine(const struct diagnose_opts *o, const struct dkim_sig *sig,
    struct diagnose_sig *ds, bool *nomem)
{
	char qname[512], e[128];
	struct pdns_answer ans;
	struct dkim_key *key = NULL;
	const struct pdns_rr *rr = NULL;
	enum pdns_rc rc;
	enum dkim_status st;
	size_t i;
	int n;

	n = snprintf(qname, sizeof(qname), "%s._domainkey.%s", sig->s,
	    sig->d);
	if (n < 0 || n > 253) {
		note(ds, DIAGNOSE_KEY_MISSING, "the key name s._domainkey.d "
		    "is longer than DNS allows");
		return NULL;
	}
	rc = pdns_lookup(o->dns, qname, PDNS_TXT, &ans);
	switch (rc) {
	case PDNS_NXDOMAIN:
		note(ds, DIAGNOSE_KEY_MISSING, "no key record: %s does not "
		    "exist (NXDOMAIN)", qname);
		goto out;
	case PDNS_NODATA:
		note(ds, DIAGNOSE_KEY_MISSING, "no key record: %s exists but "
		    "has no TXT record", qname);
		goto out;
	case PDNS_TEMPFAIL:
	case PDNS_PERMFAIL:
		note(ds, DIAGNOSE_KEY_DNS, "the lookup of %s failed (%s)%s",
		    qname, pdns_rc_str(rc), rc == PDNS_TEMPFAIL ?
		    ": try again later" : "");
		goto out;
	case PDNS_OK:
		break;
	}
	/* RFC 6376 §3.6.2.2: the first record that parses is the key. */
	for (i = 0; i < ans.n && key == NULL; i++) {
		if (ans.rr[i].type != PDNS_TXT)
			continue;
		st = dkim_key_parse(ans.rr[i].txt, ans.rr[i].txt_len, &key,
		    NULL, 0);
		if (st == DKIM_E_NOMEM)
			*nomem = true;
		if (st == DKIM_OK)
			rr = &ans.rr[i];
	}
	if (key == NULL) {
		key_unparsed(ds, qname, &ans, sig);
		goto out;
	}
	ds->key_testing = key->testing;
	if (key->revoked) {
		note(ds, DIAGNOSE_KEY_REVOKED, "the key at %s is revoked: its "
		    "p= is empty", qname);
		goto drop;
	}
	if ((sig->alg == DKIM_ALG_ED25519_SHA256) !=
	    (key->type == DKIM_KEY_ED25519)) {
		note(ds, DIAGNOSE_KEY_TYPE, "the key at %s is k=%s but the "
		    "signature is a=%s", qname, keytype_str(key->type),
		    dkim_alg_str(sig->alg));
		goto drop;
	}
	if (!key->allow_sha256)
		note(ds, DIAGNOSE_KEY_HASH, "the key at %s has h=%s, which "
		    "does not allow sha256", qname, tag_text(rr->txt,
		    rr->txt_len, "h", e, sizeof(e)));
	if (!key->email_ok)
		note(ds, DIAGNOSE_KEY_SERVICE, "the key at %s has s=%s: it is "
		    "not for email", qname, tag_text(rr->txt, rr->txt_len,
		    "s", e, sizeof(e)));
	if (key->strict && sig->kind == DKIM_SIG_DKIM) {
		const char *at = strrchr(sig->i, '@');

		if (at == NULL || strcasecmp(at + 1, sig->d) != 0)
			note(ds, DIAGNOSE_KEY_STRICT, "the key at %s has t=s: "
			    "i= must be in d=%s itself, not \"%s\"", qname,
			    sig->d, esc(sig->i, strlen(sig->i), 60, e,
			    sizeof(e)));
	}
	if (key->type == DKIM_KEY_RSA && key->bits < 1024)
		note(ds, DIAGNOSE_KEY_TOO_SHORT, "the key at %s has %u bits: "
		    "RFC 8301 requires at least 1024 (2048 is usual)", qname,
		    key->bits);
	goto out;
drop:
	dkim_key_free(key);
	key = NULL;
out:
	pdns_answer_clear(&ans);
	return key;
}

/* ------------------------------------------------------------------ body */

/* body_matches - does the body hash of (body, len) under c equal bh=? */
static bool
body_matches(const struct dkim_sig *sig, enum dkim_canon c, const char *body,
    size_t len, uint64_t *canon_len, bool *err)
{
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dglen;

	if (dkim_body_hash(c, dkim_alg_md(sig->alg), body, len, sig->has_l ?
	    (int64_t)sig->l : -1, dg, &dglen, canon_len) != DKIM_OK) {
		*err = true;
		return false;
	}
	return dglen == sig->bh_len && memcmp(dg, sig->bh, dglen) == 0;
}

/* The earlier forms of a body that transit commonly produces the
 * current one from, each undone by one rewrite. */
enum body_form {
	BF_CRLF,	/* bare LF restored to CRLF */
	BF_LF,		/* CRLF read as bare LF */
	BF_CRCRLF,	/* CR CR LF back to CRLF */
	BF_NOTRAIL,	/* trailing white space of each line removed */
	BF_SIGDASH,	/* "--" lines back to "-- " */
};

/* body_rewrite - the body in an earlier form; false when the rewrite
 * would change nothing (or memory ran out: out->failed). */
static bool
body_rewrite(enum body_form form, const char *p, size_t n,
    struct dkim_buf *out)
{
	size_t i, line = 0;
	bool changed = false;

	for (i = 0; i < n; i++) {
		char c = p[i];

		switch (form) {
		case BF_CRLF:
			if (c == '\n' && (i == 0 || p[i - 1] != '\r')) {
				dkim_buf_addc(out, '\r');
				changed = true;
			}
			break;
		case BF_LF:
			if (c == '\r' && i + 1 < n && p[i + 1] == '\n') {
				changed = true;
				continue;
			}
			break;
		case BF_CRCRLF:
			if (c == '\r' && i + 2 < n && p[i + 1] == '\r' &&
			    p[i + 2] == '\n') {
				changed = true;
				continue;
			}
			break;
		case BF_NOTRAIL:
			if (is_wsp(c)) {
				size_t j = i;

				while (j < n && is_wsp(p[j]))
					j++;
				if (j == n || (p[j] == '\r' && j + 1 < n &&
				    p[j + 1] == '\n')) {
					changed = true;
					i = j - 1;
					continue;
				}
			}
			break;
		case BF_SIGDASH:
			if (c == '\r' && i + 1 < n && p[i + 1] == '\n' &&
			    i - line == 2 && p[line] == '-' &&
			    p[line + 1] == '-') {
				dkim_buf_addc(out, ' ');
				changed = true;
			}
			break;
		}
		dkim_buf_addc(out, c);
		if (c == '\n')
			line = i + 1;
	}
	return changed && !out->failed;
}

static const struct {
	enum body_form form;
	enum diagnose_cause cause;
	bool simple_only;	/* relaxed ignores the difference anyway */
	const char *what;
} body_forms[] = {
	{ BF_CRLF, DIAGNOSE_BODY_LINE_ENDINGS, false,
	    "the body's CRLF line ends were turned into bare LF in transit: "
	    "with CRLF restored the body hash matches" },
	{ BF_LF, DIAGNOSE_BODY_LINE_ENDINGS, false,
	    "the signer hashed bare LF line ends that were turned into CRLF "
	    "later: with every CRLF read as LF the body hash matches" },
	{ BF_CRCRLF, DIAGNOSE_BODY_LINE_ENDINGS, false,
	    "line ends were doubled to CR CR LF in transit: with CRLF "
	    "restored the body hash matches" },
	{ BF_NOTRAIL, DIAGNOSE_BODY_WHITESPACE, true,
	    "trailing white space was added to lines in transit: with it "
	    "removed the body hash matches (c=.../relaxed ignores it)" },
	{ BF_SIGDASH, DIAGNOSE_BODY_WHITESPACE, true,
	    "the trailing space of the signature separator \"-- \" was "
	    "removed in transit: with it restored the body hash matches" },
};

/* appended_report - count the lines after the matching prefix and keep
 * the first one that is not empty. */
static bool
appended_report(struct diagnose_sig *ds, const char *p, size_t n)
{
	size_t i = 0, lines = 0;
	const char *first = NULL;
	size_t flen = 0, cut;
	char e[4 * DIAGNOSE_LINE_MAX + 8];

	while (i < n) {
		const char *lf = memchr(p + i, '\n', n - i);
		size_t end = lf ? (size_t)(lf - p) + 1 : n, len = end - i;
		size_t k;

		if (len >= 2 && p[end - 1] == '\n' && p[end - 2] == '\r')
			len -= 2;
		for (k = 0; first == NULL && k < len; k++)
			if (!is_wsp(p[i + k])) {
				first = p + i;
				flen = len;
			}
		lines++;
		i = end;
	}
	if (first == NULL) {
		first = "";
		flen = 0;
	}
	cut = flen < DIAGNOSE_LINE_MAX ? flen : DIAGNOSE_LINE_MAX;
	if (cut < flen)		/* not inside a UTF-8 sequence */
		while (cut > 0 && ((unsigned char)first[cut] & 0xc0) == 0x80)
			cut--;
	if (memchr(first, '\0', cut))
		cut = (size_t)((const char *)memchr(first, '\0', cut) - first);
	if ((ds->first_appended = malloc(cut + 1)) == NULL)
		return false;
	memcpy(ds->first_appended, first, cut);
	ds->first_appended[cut] = '\0';
	ds->appended_lines = lines;
	note(ds, DIAGNOSE_BODY_APPENDED, "%zu line%s appended after "
	    "signing; the first that is not empty: \"%s\"", lines,
	    lines == 1 ? " was" : "s were", esc(first, flen,
	    DIAGNOSE_LINE_MAX, e, sizeof(e)));
	return true;
}

/*
 * body_diagnose - the body hash does not match: find the longest
 * matching prefix, then earlier forms, then the other canonicalization.
 * Returns false on allocation failure.
 */
static bool
body_diagnose(const struct dkim_msg *msg, const struct dkim_sig *sig,
    struct diagnose_sig *ds)
{
	const char *body = msg->body ? msg->body : "";
	enum dkim_canon other = sig->bcanon == DKIM_CANON_SIMPLE ?
	    DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
	uint64_t clen = 0;
	size_t plen, k;
	bool found, err = false;

	if (dkim_body_prefix_match(sig->bcanon, dkim_alg_md(sig->alg), body,
	    msg->body_len, sig->has_l ? (int64_t)sig->l : -1, sig->bh,
	    sig->bh_len, &found, &plen) == DKIM_E_NOMEM)
		return false;
	if (found && plen < msg->body_len)
		return appended_report(ds, body + plen, msg->body_len - plen);
	for (k = 0; k < sizeof(body_forms) / sizeof(body_forms[0]); k++) {
		struct dkim_buf b;
		bool hit;

		if (body_forms[k].simple_only &&
		    sig->bcanon != DKIM_CANON_SIMPLE)
			continue;
		dkim_buf_init(&b, msg->body_len * 2 + 16);
		hit = body_rewrite(body_forms[k].form, body, msg->body_len,
		    &b) && body_matches(sig, sig->bcanon, b.p, b.len, NULL,
		    &err);
		if (b.failed) {
			dkim_buf_free(&b);
			return false;
		}
		dkim_buf_free(&b);
		if (hit) {
			note(ds, body_forms[k].cause, "%s", body_forms[k].what);
			return true;
		}
	}
	if (body_matches(sig, other, body, msg->body_len, NULL, &err)) {
		note(ds, DIAGNOSE_BODY_CANON, "signed with c=%s/%s but the "
		    "body only matches with %s: %s", dkim_canon_str(
		    sig->hcanon), dkim_canon_str(sig->bcanon),
		    dkim_canon_str(other), other == DKIM_CANON_RELAXED ?
		    "white space was changed in transit" : "the signer did "
		    "not canonicalize as c= says");
		return true;
	}
	body_matches(sig, sig->bcanon, body, msg->body_len, &clen, &err);
	if (sig->has_l && clen < sig->l)
		note(ds, DIAGNOSE_BODY_CHANGED, "the body is shorter than the "
		    "%llu octets l= covers (%llu now): lines were removed or "
		    "shortened", (unsigned long long)sig->l,
		    (unsigned long long)clen);
	else
		note(ds, DIAGNOSE_BODY_CHANGED, "the body was re-encoded or "
		    "changed otherwise: no prefix of it, no line-end or "
		    "white-space change and no other canonicalization "
		    "matches bh=");
	return true;
}

/* ---------------------------------------------------------------- header */

/*
 * The reversals tried on the header fields. A trial applies at most one
 * option of each group to a copy of the field array and checks the
 * header hash; fewer reversals are tried before more.
 */
enum hedit {
	HE_TAG,		/* take a leading "[tag] " out of Subject */
	HE_FROM,	/* From from X-Original-From; arg: a Reply-To to drop
			 * too, or -1 */
	HE_FOLD,	/* re-fold the signed fields; arg: enum fold_mode,
			 * arg2: the signature field too */
	HE_DROP,	/* drop field arg, an instance h= does not cover */
};

enum fold_mode { FM_UNFOLD, FM_COLLAPSE, FM_TO_SPACE, FM_TO_TAB, FM_REFOLD,
	FM_COUNT };

struct hopt {
	enum hedit kind;
	long arg;
	int arg2;
};

#define HG_MAX		6
#define HO_MAX		12
#define HTRIALS_MAX	400		/* per signature */
#define HTRIAL_BYTES	(32u << 20)	/* header octets hashed, per signature */
#define FOLD_COLUMNS	78

struct hctx {
	const struct dkim_msg *msg;
	const struct dkim_sig *sig;
	long sigidx;
	EVP_PKEY *pkey;
	long xof;			/* X-Original-From, or -1 */
	struct hopt opt[HG_MAX][HO_MAX];
	size_t nopt[HG_MAX], ngroups;
	const struct hopt *pick[HG_MAX]; /* the trial's reversals */
	size_t npick;
	bool *signed_name;		/* owned: per field, named in h= */
	unsigned trials, max_trials;
	bool nomem;
};

/* signed_names - for each field, whether h= lists its name. */
static bool *
signed_names(const struct dkim_msg *msg, const struct dkim_sig *sig)
{
	bool *v = calloc(msg->nfields ? msg->nfields : 1, sizeof(*v));
	size_t j, k;

	for (j = 0; v != NULL && j < msg->nfields; j++)
		for (k = 0; k < sig->nh && !v[j]; k++)
			v[j] = dkim_field_is(&msg->fields[j], sig->h[k]);
	return v;
}

static bool
is_reply_word(const char *p, size_t n)
{
	static const char *const words[] = { "re", "fw", "fwd", "aw", "wg",
	    "sv", "vs", "tr", "antw", "rif", NULL };
	size_t k;

	for (k = 0; words[k]; k++)
		if (strlen(words[k]) == n && strncasecmp(p, words[k], n) == 0)
			return true;
	return false;
}

/* subject_untag - Subject without its leading "[tag] " (after any
 * "Re:"-like prefixes); *toff and *tlen locate the tag in raw. */
static bool
subject_untag(const char *raw, size_t len, struct dkim_buf *out,
    size_t *toff, size_t *tlen)
{
	const char *colon = memchr(raw, ':', len);
	size_t q, r, e, w;

	if (colon == NULL)
		return false;
	q = (size_t)(colon - raw) + 1;
	for (;;) {
		while (q < len && (is_wsp(raw[q]) || raw[q] == '\r' ||
		    raw[q] == '\n'))
			q++;
		for (w = q; w < len && w - q < 5 && ((raw[w] >= 'a' &&
		    raw[w] <= 'z') || (raw[w] >= 'A' && raw[w] <= 'Z')); w++)
			;
		if (w > q && w < len && raw[w] == ':' &&
		    is_reply_word(raw + q, w - q)) {
			q = w + 1;
			continue;
		}
		break;
	}
	if (q >= len || raw[q] != '[')
		return false;
	for (r = q + 1; r < len && r - q < 100 && raw[r] != ']' &&
	    raw[r] != '\r' && raw[r] != '\n'; r++)
		;
	if (r >= len || raw[r] != ']')
		return false;
	for (e = r + 1; e < len && is_wsp(raw[e]); e++)
		;
	dkim_buf_add(out, raw, q);
	dkim_buf_add(out, raw + e, len - e);
	*toff = q;
	*tlen = r + 1 - q;
	return true;
}

/* fold - the field (raw, len) with its folding redone in one way. */
static void
fold(enum fold_mode m, const char *raw, size_t len, struct dkim_buf *out)
{
	size_t i, col = 0, start;

	if (m == FM_REFOLD) {
		struct dkim_buf flat;

		dkim_buf_init(&flat, len + 1);
		fold(FM_UNFOLD, raw, len, &flat);
		for (i = 0; i < flat.len; ) {
			start = i;
			while (i < flat.len && is_wsp(flat.p[i]))
				i++;
			while (i < flat.len && !is_wsp(flat.p[i]))
				i++;
			if (start > 0 && col + (i - start) > FOLD_COLUMNS &&
			    col > 0) {
				dkim_buf_add(out, "\r\n", 2);
				col = 0;
			}
			dkim_buf_add(out, flat.p + start, i - start);
			col += i - start;
		}
		if (flat.failed)
			out->failed = true;
		dkim_buf_free(&flat);
		return;
	}
	for (i = 0; i < len; i++) {
		bool brk = raw[i] == '\r' && i + 2 < len && raw[i + 1] == '\n' &&
		    is_wsp(raw[i + 2]);

		if (brk && m == FM_UNFOLD) {
			i++;
			continue;
		}
		if (brk && m == FM_COLLAPSE) {
			while (out->len > 0 && is_wsp(out->p[out->len - 1]))
				out->len--;
			dkim_buf_addc(out, ' ');
			for (i += 2; i + 1 < len && is_wsp(raw[i + 1]); i++)
				;
			continue;
		}
		if (brk && (m == FM_TO_SPACE || m == FM_TO_TAB)) {
			dkim_buf_add(out, m == FM_TO_SPACE ? "\r\n " : "\r\n\t",
			    3);
			i += 2;
			continue;
		}
		dkim_buf_addc(out, raw[i]);
	}
}

/* apply - one reversal to field k, whose bytes are now (raw, len); false
 * when it does not touch the field. */
static bool
apply(const struct hctx *h, const struct hopt *o, size_t k, const char *raw,
    size_t len, struct dkim_buf *out)
{
	const struct dkim_field *f = &h->msg->fields[k];
	size_t toff, tlen;

	switch (o->kind) {
	case HE_TAG:
		return dkim_field_is(f, "Subject") && subject_untag(raw, len,
		    out, &toff, &tlen);
	case HE_FROM: {
		const struct dkim_field *x = &h->msg->fields[h->xof];
		const char *colon;

		if (!dkim_field_is(f, "From") ||
		    (colon = memchr(raw, ':', len)) == NULL)
			return false;
		dkim_buf_add(out, raw, (size_t)(colon - raw) + 1);
		dkim_buf_add(out, x->raw + x->value_off,
		    x->raw_len - x->value_off);
		return true;
	}
	case HE_FOLD:
		if ((long)k == h->sigidx ? !o->arg2 : !h->signed_name[k])
			return false;
		fold((enum fold_mode)o->arg, raw, len, out);
		return true;
	case HE_DROP:
		break;
	}
	return false;
}

/* set_raw - point field f at new bytes and find its name again. */
static void
set_raw(struct dkim_field *f, const char *p, size_t n)
{
	const char *colon = memchr(p, ':', n);
	size_t nl = colon ? (size_t)(colon - p) : n;

	f->raw = p;
	f->raw_len = n;
	f->value_off = colon ? nl + 1 : n;
	while (nl > 0 && is_wsp(p[nl - 1]))
		nl--;
	f->name = p;
	f->name_len = nl;
}

/* header_verifies - the header hash of sig over fields[0..n), whose
 * signature field is sigidx, checked with the key. */
static bool
header_verifies(const struct hctx *h, const struct dkim_field *fields,
    size_t n, long sigidx, bool reparse)
{
	struct dkim_msg view;
	struct dkim_sig *again = NULL;
	const struct dkim_sig *s = h->sig;
	struct dkim_buf stripped;
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dglen;
	bool ok = false;

	memset(&view, 0, sizeof(view));
	view.fields = (struct dkim_field *)fields;
	view.nfields = n;
	if (reparse) {
		if (dkim_sig_parse(&fields[sigidx], s->kind, &again, NULL,
		    0) != DKIM_OK)
			return false;
		s = again;
	}
	dkim_buf_init(&stripped, 0);
	if (dkim_sig_field_stripped(&fields[sigidx], s, &stripped) &&
	    dkim_header_digest(&view, s->h, s->nh, sigidx, s->hcanon,
	    stripped.p ? stripped.p : "", stripped.len, dkim_alg_md(s->alg),
	    dg, &dglen) == DKIM_OK)
		ok = dkim_digest_verify(h->pkey, s->alg, dg, dglen, s->b,
		    s->b_len);
	dkim_buf_free(&stripped);
	dkim_sig_free(again);
	return ok;
}

/* trial - apply the picked reversals to a copy of the fields and check
 * the header hash. */
static bool
trial(struct hctx *h)
{
	const struct dkim_msg *msg = h->msg;
	size_t n = msg->nfields, k, j, m = 0;
	struct dkim_field *f = calloc(n, sizeof(*f));
	char **store = calloc(n, sizeof(*store));
	bool *drop = calloc(n, sizeof(*drop));
	bool ok = false, reparse = false;
	long sigidx = -1;

	h->trials++;
	if (f == NULL || store == NULL || drop == NULL) {
		h->nomem = true;
		goto out;
	}
	for (j = 0; j < h->npick; j++) {
		const struct hopt *o = h->pick[j];

		if (o->kind == HE_DROP || (o->kind == HE_FROM && o->arg >= 0))
			drop[o->arg] = true;
	}
	for (k = 0; k < n; k++) {
		const char *raw = msg->fields[k].raw;
		size_t len = msg->fields[k].raw_len;
		char *cur = NULL;

		if (drop[k])
			continue;
		f[m] = msg->fields[k];
		for (j = 0; j < h->npick; j++) {
			struct dkim_buf b;

			dkim_buf_init(&b, 2 * len + 1024 + (h->xof >= 0 ?
			    msg->fields[h->xof].raw_len : 0));
			if (apply(h, h->pick[j], k, raw, len, &b) &&
			    !b.failed) {
				free(cur);
				cur = dkim_buf_take(&b, &len);
				if (cur == NULL)
					cur = strdup("");
				raw = cur;
			}
			if (b.failed || raw == NULL)
				h->nomem = true;
			dkim_buf_free(&b);
		}
		if (h->nomem) {
			free(cur);
			goto out;
		}
		if (cur != NULL) {
			store[k] = cur;
			set_raw(&f[m], cur, len);
			if ((long)k == h->sigidx)
				reparse = true;
		}
		if ((long)k == h->sigidx)
			sigidx = (long)m;
		m++;
	}
	if (sigidx >= 0)
		ok = header_verifies(h, f, m, sigidx, reparse);
out:
	for (k = 0; store && k < n; k++)
		free(store[k]);
	free(store);
	free(drop);
	free(f);
	return ok;
}

/* search - try every way of using exactly `left` more groups from g on. */
static bool
search(struct hctx *h, size_t g, size_t left)
{
	size_t i;

	if (left == 0)
		return trial(h);
	if (h->ngroups - g < left || h->trials >= h->max_trials || h->nomem)
		return false;
	for (i = 0; i < h->nopt[g]; i++) {
		h->pick[h->npick++] = &h->opt[g][i];
		if (search(h, g + 1, left - 1))
			return true;
		h->npick--;
	}
	return search(h, g + 1, left);
}

/* name_count - fields named name, the signature field not counted. */
static size_t
name_count(const struct hctx *h, const char *name)
{
	size_t j, n = 0;

	for (j = 0; j < h->msg->nfields; j++)
		if ((long)j != h->sigidx &&
		    dkim_field_is(&h->msg->fields[j], name))
			n++;
	return n;
}

/* h_count - how often h= lists name, and whether index k is its first. */
static size_t
h_count(const struct dkim_sig *sig, size_t k, bool *first)
{
	size_t j, n = 0;

	*first = true;
	for (j = 0; j < sig->nh; j++) {
		if (strcasecmp(sig->h[j], sig->h[k]) != 0)
			continue;
		if (j < k)
			*first = false;
		n++;
	}
	return n;
}

/* groups_build - the reversals that apply to this message at all. */
static void
groups_build(struct hctx *h)
{
	const struct dkim_msg *msg = h->msg;
	size_t j, k, g, toff, tlen;
	bool first;

	for (j = 0; j < msg->nfields; j++) {
		struct dkim_buf b;
		const struct dkim_field *f = &msg->fields[j];

		dkim_buf_init(&b, 0);
		if (dkim_field_is(f, "Subject") && h->nopt[0] == 0 &&
		    subject_untag(f->raw, f->raw_len, &b, &toff, &tlen))
			h->opt[0][h->nopt[0]++] = (struct hopt){ HE_TAG, 0, 0 };
		dkim_buf_free(&b);
		if (dkim_field_is(f, "X-Original-From") && h->xof < 0)
			h->xof = (long)j;
	}
	if (h->xof >= 0 && name_count(h, "From") > 0) {
		h->opt[1][h->nopt[1]++] = (struct hopt){ HE_FROM, -1, 0 };
		for (j = 0; j < msg->nfields && h->nopt[1] < 5; j++)
			if (dkim_field_is(&msg->fields[j], "Reply-To"))
				h->opt[1][h->nopt[1]++] =
				    (struct hopt){ HE_FROM, (long)j, 0 };
	}
	/* Folding matters to simple header canonicalization only. */
	for (k = 0; h->sig->hcanon == DKIM_CANON_SIMPLE && k < FM_COUNT;
	    k++) {
		for (int withsig = 0; withsig < 2; withsig++) {
			bool changes = false;

			for (j = 0; j < msg->nfields && !changes; j++) {
				const struct dkim_field *f = &msg->fields[j];
				struct dkim_buf b;

				if ((long)j == h->sigidx ? !withsig :
				    !h->signed_name[j])
					continue;
				dkim_buf_init(&b, 2 * f->raw_len + 16);
				fold((enum fold_mode)k, f->raw, f->raw_len, &b);
				changes = b.len != f->raw_len ||
				    memcmp(b.p, f->raw, b.len) != 0;
				dkim_buf_free(&b);
			}
			if (changes)
				h->opt[2][h->nopt[2]++] = (struct hopt){
				    HE_FOLD, (long)k, withsig };
		}
	}
	/* Names with more instances than h= covers: drop one of them. */
	g = 3;
	for (k = 0; k < h->sig->nh && g < HG_MAX; k++) {
		size_t want = h_count(h->sig, k, &first);

		if (!first || name_count(h, h->sig->h[k]) <= want)
			continue;
		for (j = 0; j < msg->nfields && h->nopt[g] < HO_MAX; j++)
			if ((long)j != h->sigidx &&
			    dkim_field_is(&msg->fields[j], h->sig->h[k]))
				h->opt[g][h->nopt[g]++] =
				    (struct hopt){ HE_DROP, (long)j, 0 };
		g++;
	}
	/* Keep the groups dense: the search walks 0..ngroups. */
	h->ngroups = 0;
	for (g = 0; g < HG_MAX; g++) {
		if (h->nopt[g] == 0)
			continue;
		if (g != h->ngroups) {
			memcpy(h->opt[h->ngroups], h->opt[g], sizeof(h->opt[g]));
			h->nopt[h->ngroups] = h->nopt[g];
			h->nopt[g] = 0;
		}
		h->ngroups++;
	}
}

/* refolded_names - which fields the winning fold option changed. */
static void
refolded_names(const struct hctx *h, const struct hopt *o, char *out,
    size_t outlen)
{
	size_t j, used = 0;

	out[0] = '\0';
	for (j = 0; j < h->msg->nfields; j++) {
		const struct dkim_field *f = &h->msg->fields[j];
		struct dkim_buf b;
		bool changed;

		if ((long)j == h->sigidx ? !o->arg2 : !h->signed_name[j])
			continue;
		dkim_buf_init(&b, 2 * f->raw_len + 16);
		fold((enum fold_mode)o->arg, f->raw, f->raw_len, &b);
		changed = b.len != f->raw_len || memcmp(b.p, f->raw, b.len);
		dkim_buf_free(&b);
		if (changed && used + f->name_len + 3 < outlen) {
			used += (size_t)snprintf(out + used, outlen - used,
			    "%s%.*s", used ? ", " : "", (int)f->name_len,
			    f->name);
		}
	}
}

/* header_report - name what the winning trial undid. */
static void
header_report(struct hctx *h, struct diagnose_sig *ds)
{
	const struct dkim_msg *msg = h->msg;
	char e[4 * 120 + 8], names[200];
	size_t i, j, toff, tlen;

	for (i = 0; i < h->npick; i++) {
		const struct hopt *o = h->pick[i];

		switch (o->kind) {
		case HE_TAG:
			for (j = 0; j < msg->nfields; j++) {
				const struct dkim_field *f = &msg->fields[j];
				struct dkim_buf b;
				bool tagged;

				if (!dkim_field_is(f, "Subject"))
					continue;
				dkim_buf_init(&b, 0);
				tagged = subject_untag(f->raw, f->raw_len, &b,
				    &toff, &tlen);
				dkim_buf_free(&b);
				if (!tagged)
					continue;
				note(ds, DIAGNOSE_HEADER_SUBJECT_TAG, "header "
				    "Subject was changed: the tag \"%s\" was "
				    "put in after signing", esc(f->raw + toff,
				    tlen, 100, e, sizeof(e)));
				break;
			}
			break;
		case HE_FROM: {
			const struct dkim_field *x = &msg->fields[h->xof];
			const char *v = x->raw + x->value_off;
			size_t n = x->raw_len - x->value_off;

			while (n > 0 && is_wsp(*v)) {
				v++;
				n--;
			}
			note(ds, DIAGNOSE_HEADER_FROM_REWRITTEN, "header From "
			    "was changed: it was rewritten after signing, and "
			    "with the original kept in X-Original-From (\"%s\") "
			    "the signature verifies%s", esc(v, n, 100, e,
			    sizeof(e)), o->arg >= 0 ? "; a Reply-To field was "
			    "added then too" : "");
			break;
		}
		case HE_FOLD:
			refolded_names(h, o, names, sizeof(names));
			note(ds, DIAGNOSE_HEADER_REFOLDED, "headers were "
			    "re-folded in transit (%s); with relaxed header "
			    "canonicalization the signature would pass",
			    names[0] ? names : "white space only");
			break;
		case HE_DROP: {
			const struct dkim_field *f = &msg->fields[o->arg];
			const char *name = NULL;
			size_t signd = 0;

			for (j = 0; j < h->sig->nh; j++)
				if (dkim_field_is(f, h->sig->h[j])) {
					name = h->sig->h[j];
					signd++;
				}
			if (name == NULL)
				break;
			note(ds, DIAGNOSE_HEADER_ADDED, "%zu %.*s fields now, "
			    "%zu signed: a field was added after signing",
			    name_count(h, name), (int)f->name_len, f->name,
			    signd);
			break;
		}
		}
	}
}

/* header_unproven - nothing undid the change: list h= and what the
 * counts of signed names say. */
static void
header_unproven(struct hctx *h, struct diagnose_sig *ds)
{
	char hl[220], more[240];
	size_t k, used = 0, mused = 0, now, want;
	bool first;

	hl[0] = more[0] = '\0';
	for (k = 0; k < h->sig->nh && used + 8 < sizeof(hl); k++)
		used += (size_t)snprintf(hl + used, sizeof(hl) - used, "%s%s",
		    k ? ":" : "", h->sig->h[k]);
	if (k < h->sig->nh && used + 4 < sizeof(hl))
		snprintf(hl + used, sizeof(hl) - used, "...");
	for (k = 0; k < h->sig->nh && mused + 8 < sizeof(more); k++) {
		want = h_count(h->sig, k, &first);
		if (!first)
			continue;
		now = name_count(h, h->sig->h[k]);
		if (now > want)
			mused += (size_t)snprintf(more + mused, sizeof(more) -
			    mused, "; %zu %s fields now, %zu signed", now,
			    h->sig->h[k], want);
		else if (now == 0)
			mused += (size_t)snprintf(more + mused, sizeof(more) -
			    mused, "; no %s field now (oversigned, or removed "
			    "after signing)", h->sig->h[k]);
	}
	note(ds, DIAGNOSE_HEADER_CHANGED, "signed header fields were changed: "
	    "h=%s%s", hl, more);
}

/*
 * header_diagnose - check the header hash of sig as the message is, and
 * when it fails, find the fewest reversals that make it verify. Returns
 * false on allocation failure.
 */
static bool
header_diagnose(const struct dkim_msg *msg, const struct dkim_sig *sig,
    size_t sigidx, EVP_PKEY *pkey, struct diagnose_sig *ds)
{
	struct hctx *h = calloc(1, sizeof(*h));
	size_t level;
	bool found = false, nomem;

	if (h == NULL)
		return false;
	h->msg = msg;
	h->sig = sig;
	h->sigidx = (long)sigidx;
	h->pkey = pkey;
	h->xof = -1;
	/* Each trial hashes about the whole header block once. */
	h->max_trials = HTRIAL_BYTES / (unsigned)(msg->body_off < 1024 ? 1024 :
	    msg->body_off > HTRIAL_BYTES ? HTRIAL_BYTES : msg->body_off);
	if (h->max_trials > HTRIALS_MAX)
		h->max_trials = HTRIALS_MAX;
	if ((h->signed_name = signed_names(msg, sig)) == NULL) {
		free(h);
		return false;
	}
	if (header_verifies(h, msg->fields, msg->nfields, (long)sigidx,
	    false)) {
		free(h->signed_name);
		free(h);
		return true;
	}
	groups_build(h);
	for (level = 1; level <= h->ngroups && !found && !h->nomem; level++)
		found = search(h, 0, level);
	if (found)
		header_report(h, ds);
	else if (!h->nomem)
		header_unproven(h, ds);
	nomem = h->nomem;
	free(h->signed_name);
	free(h);
	return !nomem;
}

/* --------------------------------------------------------- one signature */

/* sig_identity - d, s and b= of the diagnosis (copies; "" for NULL). */
static bool
sig_identity(struct diagnose_sig *ds, const char *d, const char *s,
    const char *b)
{
	char b8[9];

	snprintf(b8, sizeof(b8), "%s", b ? b : "");
	ds->d = strdup(d ? d : "");
	ds->s = strdup(s ? s : "");
	ds->b = strdup(b8);
	ds->b_full = strdup(b ? b : "");
	return ds->d && ds->s && ds->b && ds->b_full;
}

/*
 * sig_diagnose - explain one signature the verifier decided as r: the
 * checks run in the verifier's order (signature, time, key, body,
 * header), and each one that fails adds a finding. Returns false on
 * allocation failure.
 */
static bool
sig_diagnose(const struct dkim_msg *msg, const struct diagnose_opts *o,
    const struct dkim_verify_opts *vo, const struct dkim_sigresult *r,
    struct diagnose_sig *ds)
{
	const struct dkim_sig *sig = r->sig;
	struct dkim_key *key;
	bool nomem = false, ok = true, err = false;

	ds->field_index = r->field_index;
	ds->result = r->result;
	snprintf(ds->reason, sizeof(ds->reason), "%s", r->reason);
	if (sig == NULL) {
		note(ds, DIAGNOSE_SIG_MALFORMED, "the signature field does "
		    "not parse: %s", r->reason);
		return true;
	}
	ds->kind = sig->kind;
	if (r->result == DKIM_RES_PASS) {
		ds->key_testing = r->testing;
		if (r->testing)
			note(ds, DIAGNOSE_KEY_TESTING, "the signature "
			    "verifies, but the key record says t=y "
			    "(testing): receivers may treat the message as "
			    "unsigned");
		return true;
	}
	if (sig->alg == DKIM_ALG_RSA_SHA1)
		note(ds, DIAGNOSE_SIG_ALGORITHM, "a=rsa-sha1 is not accepted "
		    "any more (RFC 8301): the signer must use rsa-sha256");
	if (sig->has_x && vo->now > sig->x)
		note(ds, DIAGNOSE_EXPIRED, "the signature expired %lld "
		    "seconds ago (x=%lld)", (long long)(vo->now - sig->x),
		    (long long)sig->x);
	if (sig->has_t && sig->t > vo->now + vo->clock_skew)
		note(ds, DIAGNOSE_FUTURE, "the signature is dated %lld "
		    "seconds ahead (t=%lld): the signer's clock is wrong",
		    (long long)(sig->t - vo->now), (long long)sig->t);
	key = key_examine(o, sig, ds, &nomem);
	if (!body_matches(sig, sig->bcanon, msg->body ? msg->body : "",
	    msg->body_len, NULL, &err) && !err)
		ok = body_diagnose(msg, sig, ds);
	if (ok && key != NULL && key->pkey != NULL)
		ok = header_diagnose(msg, sig, r->field_index, key->pkey, ds);
	if (ds->key_testing)
		note(ds, DIAGNOSE_KEY_TESTING, "the key record says t=y "
		    "(testing): the domain asks receivers to treat a failing "
		    "signature as if the message were unsigned");
	if (ds->cause.cause == DIAGNOSE_PASS)
		note(ds, DIAGNOSE_UNEXPLAINED, "the verifier says \"%s\"; "
		    "recomputing found no more specific cause", r->reason);
	dkim_key_free(key);
	return ok && !nomem;
}

/* ------------------------------------------------------------- ARC hops */

/* hop_ams - verify and explain the AMS at field j, parsed as sig (which
 * stays the caller's). */
static bool
hop_ams(const struct dkim_msg *msg, const struct diagnose_opts *o,
    const struct dkim_verify_opts *vo, struct dkim_bhcache *bc, size_t j,
    struct dkim_sig *sig, struct diagnose_hop *hop)
{
	struct dkim_sigresult r;

	memset(&r, 0, sizeof(r));
	r.field_index = j;
	r.sig = sig;
	if (dkim_verify_sig(msg, vo, bc, &r) == DKIM_E_NOMEM)
		return false;
	hop->has_ams = true;
	hop->ams.kind = DKIM_SIG_ARC_MS;
	return sig_identity(&hop->ams, sig->d, sig->s, sig->b_text) &&
	    sig_diagnose(msg, o, vo, &r, &hop->ams);
}

/* hop_aar - the authserv-id and dkim results an AAR recorded. */
static bool
hop_aar(const struct authres *ar, struct diagnose_hop *hop)
{
	size_t k;

	hop->has_aar = true;
	if ((hop->authserv_id = strdup(ar->authserv_id)) == NULL ||
	    (hop->rec = calloc(ar->n ? ar->n : 1, sizeof(*hop->rec))) == NULL)
		return false;
	for (k = 0; k < ar->n; k++) {
		const struct authres_result *res = &ar->r[k];
		struct diagnose_record *rec = &hop->rec[hop->nrec];
		const char *d = authres_prop_get(res, "header", "d");
		const char *s = authres_prop_get(res, "header", "s");
		const char *b = authres_prop_get(res, "header", "b");

		if (strcmp(res->method, "dkim") != 0)
			continue;
		hop->nrec++;
		rec->result = strdup(res->result);
		rec->d = strdup(d ? d : "");
		rec->s = strdup(s ? s : "");
		rec->b = strdup(b ? b : "");
		if (!rec->result || !rec->d || !rec->s || !rec->b)
			return false;
	}
	return true;
}

/* hops_collect - one entry per ARC instance: its AMS, verified and
 * explained, and what its AAR recorded. */
static bool
hops_collect(const struct dkim_msg *msg, const struct diagnose_opts *o,
    const struct dkim_verify_opts *vo, struct diagnose_report *rep)
{
	struct dkim_bhcache *bc = dkim_bhcache_new();
	size_t j;
	bool ok = bc != NULL;

	rep->hop = calloc(ARC_MAX_SETS, sizeof(*rep->hop));
	if (rep->hop == NULL)
		ok = false;
	for (j = 0; ok && j < msg->nfields; j++) {
		const struct dkim_field *f = &msg->fields[j];
		struct diagnose_hop *hop;
		struct authres *ar = NULL;
		unsigned i;

		if (dkim_field_is(f, "ARC-Message-Signature")) {
			struct dkim_sig *sig = NULL;

			/* One that does not parse is left out here; the
			 * chain's verdict names it. */
			if (dkim_sig_parse(f, DKIM_SIG_ARC_MS, &sig, NULL, 0) ==
			    DKIM_E_NOMEM)
				ok = false;
			if (sig == NULL || (i = sig->instance) > ARC_MAX_SETS ||
			    rep->hop[i - 1].has_ams) {
				dkim_sig_free(sig);
				continue;
			}
			hop = &rep->hop[i - 1];
			ok = hop_ams(msg, o, vo, bc, j, sig, hop);
			dkim_sig_free(sig);
		} else if (dkim_field_is(f, "ARC-Authentication-Results")) {
			if (authres_parse_aar(f->raw + f->value_off,
			    f->raw_len - f->value_off, &ar, NULL, 0) !=
			    DKIM_OK)
				continue;
			i = ar->instance;
			if (i < 1 || i > ARC_MAX_SETS ||
			    rep->hop[i - 1].has_aar) {
				authres_free(ar);
				continue;
			}
			hop = &rep->hop[i - 1];
			ok = hop_aar(ar, hop);
			authres_free(ar);
		} else {
			continue;
		}
		hop->instance = i;
		if (i > rep->nhop)
			rep->nhop = i;
	}
	for (j = 0; ok && j < rep->nhop; j++) {
		rep->hop[j].instance = (unsigned)j + 1;
		if (rep->hop[j].authserv_id == NULL &&
		    (rep->hop[j].authserv_id = strdup("")) == NULL)
			ok = false;
	}
	dkim_bhcache_free(bc);
	return ok;
}

static bool
rec_matches(const struct diagnose_record *rec, const struct diagnose_sig *ds)
{
	return rec->d[0] && strcasecmp(rec->d, ds->d) == 0 &&
	    (!rec->s[0] || strcasecmp(rec->s, ds->s) == 0) &&
	    (!rec->b[0] || strncmp(ds->b_full, rec->b, strlen(rec->b)) == 0);
}

/* hop_result - what hop i recorded for ds, or NULL. */
static const char *
hop_result(const struct diagnose_report *rep, unsigned i,
    const struct diagnose_sig *ds)
{
	const struct diagnose_hop *hop = &rep->hop[i - 1];
	size_t k;

	for (k = 0; k < hop->nrec; k++)
		if (rec_matches(&hop->rec[k], ds))
			return hop->rec[k].result;
	return NULL;
}

/*
 * arc_story - where along the chain a failing DKIM signature broke: the
 * newest hop whose AAR recorded a pass for it, and whether that hop's
 * AMS still verifies (then the hop itself changed the message after its
 * check) or not (then the change came after it sealed).
 */
static void
arc_story(const struct diagnose_report *rep, struct diagnose_sig *ds)
{
	char *out = ds->arc_detail;
	size_t len = sizeof(ds->arc_detail), n;
	unsigned i, pass = 0, seen = 0, later = 0, intact = 0;
	const char *res, *seen_res = NULL, *later_res = NULL;
	const struct diagnose_hop *hp;

	if (ds->result == DKIM_RES_PASS || rep->nhop == 0)
		return;
	for (i = 1; i <= rep->nhop; i++) {
		if ((res = hop_result(rep, i, ds)) == NULL)
			continue;
		if (seen == 0) {
			seen = i;
			seen_res = res;
		}
		if (strcmp(res, "pass") == 0)
			pass = i;
	}
	if (seen == 0) {
		snprintf(out, len, "no ARC hop recorded a result for this "
		    "signature");
		return;
	}
	if (pass == 0) {
		snprintf(out, len, "hop i=%u (%s) already recorded dkim=%s for "
		    "it: the signature was broken before it reached the ARC "
		    "chain", seen, rep->hop[seen - 1].authserv_id, seen_res);
		return;
	}
	for (i = pass + 1; i <= rep->nhop && later == 0; i++)
		if ((res = hop_result(rep, i, ds)) != NULL) {
			later = i;
			later_res = res;
		}
	for (i = pass + 1; i <= rep->nhop && intact == 0; i++)
		if (rep->hop[i - 1].has_ams &&
		    rep->hop[i - 1].ams.result == DKIM_RES_PASS)
			intact = i;
	ds->passed_at_hop = pass;
	ds->broke_after_hop = pass;
	hp = &rep->hop[pass - 1];
	n = (size_t)snprintf(out, len, "the signature d=%s passed at hop "
	    "i=%u (%s, AAR) and fails now; ", ds->d, pass, hp->authserv_id);
	if (n >= len)
		return;
	if (hp->has_ams && hp->ams.result == DKIM_RES_PASS) {
		snprintf(out + n, len - n, "AMS i=%u still verifies, so the "
		    "message is as hop %u sealed it: the change was made at "
		    "hop %u (%s), after it recorded the pass", pass, pass, pass,
		    hp->authserv_id);
		return;
	}
	n += (size_t)snprintf(out + n, len - n, "AMS i=%u %s, so the change "
	    "happened after hop %u (%s) sealed the message", pass,
	    hp->has_ams ? "fails too" : "is missing", pass, hp->authserv_id);
	if (n < len && intact)
		n += (size_t)snprintf(out + n, len - n, " and before hop i=%u "
		    "(%s) sealed it (AMS i=%u verifies)", intact,
		    rep->hop[intact - 1].authserv_id, intact);
	else if (n < len)
		n += (size_t)snprintf(out + n, len - n, ", on the way from the "
		    "last hop to here");
	if (n < len && later)
		snprintf(out + n, len - n, "; hop i=%u (%s) recorded dkim=%s",
		    later, rep->hop[later - 1].authserv_id, later_res);
}

/* ---------------------------------------------------------------- report */

enum dkim_status
diagnose_message(const struct dkim_msg *msg, const struct diagnose_opts *o,
    struct diagnose_report **out)
{
	struct diagnose_report *rep;
	struct dkim_verification *v = NULL;
	struct dkim_verify_opts vo;
	enum dkim_status st;
	bool ok = true;
	size_t k;

	*out = NULL;
	if (msg == NULL || o == NULL)
		return DKIM_E_ARG;
	if ((rep = calloc(1, sizeof(*rep))) == NULL)
		return DKIM_E_NOMEM;
	dkim_verify_opts_init(&vo);
	vo.now = o->now;
	vo.lookup = pdns_dkim_lookup;
	vo.lookup_arg = (void *)o->dns;
	if ((st = dkim_verify(msg, &vo, &v)) != DKIM_OK)
		goto fail;
	if (v->n && (rep->sig = calloc(v->n, sizeof(*rep->sig))) == NULL)
		ok = false;
	for (k = 0; ok && k < v->n; k++) {
		const struct dkim_sigresult *r = &v->r[k];

		rep->nsig++;
		rep->sig[k].kind = DKIM_SIG_DKIM;
		ok = sig_identity(&rep->sig[k], r->d, r->s, r->b) &&
		    sig_diagnose(msg, o, &vo, r, &rep->sig[k]);
	}
	if (ok)
		ok = hops_collect(msg, o, &vo, rep);
	if (ok && rep->nhop > 0) {
		if ((st = arc_validate(msg, &vo, 0, &rep->chain)) != DKIM_OK)
			goto fail;
	} else {
		rep->chain.cv = DKIM_CV_NONE;
		snprintf(rep->chain.reason, sizeof(rep->chain.reason),
		    "no ARC sets");
	}
	for (k = 0; ok && k < rep->nsig; k++) {
		arc_story(rep, &rep->sig[k]);
		if (rep->broke_after_hop == 0)
			rep->broke_after_hop = rep->sig[k].broke_after_hop;
	}
	if (!ok) {
		st = DKIM_E_NOMEM;
		goto fail;
	}
	dkim_verification_free(v);
	*out = rep;
	return DKIM_OK;
fail:
	dkim_verification_free(v);
	diagnose_report_free(rep);
	return st;
}

static void
sig_free(struct diagnose_sig *ds)
{
	free(ds->d);
	free(ds->s);
	free(ds->b);
	free(ds->b_full);
	free(ds->first_appended);
}

void
diagnose_report_free(struct diagnose_report *r)
{
	size_t k, j;

	if (r == NULL)
		return;
	for (k = 0; k < r->nsig; k++)
		sig_free(&r->sig[k]);
	free(r->sig);
	for (k = 0; r->hop && k < ARC_MAX_SETS; k++) {
		struct diagnose_hop *hop = &r->hop[k];

		sig_free(&hop->ams);
		free(hop->authserv_id);
		for (j = 0; j < hop->nrec; j++) {
			free(hop->rec[j].result);
			free(hop->rec[j].d);
			free(hop->rec[j].s);
			free(hop->rec[j].b);
		}
		free(hop->rec);
	}
	free(r->hop);
	free(r);
}
