/*
 * test_verify.c - dkim_verify end to end over served key records and a
 * fixed clock: the RFC 8463 Appendix A message exactly as printed, then
 * one row per failure reason a verifier reports (RFC 6376 §6.1, RFC 8301),
 * and the max_signatures cap.
 *
 * Most signatures come from dkim_sign. Cases dkim_sign rightly refuses to
 * produce (a 512-bit key, rsa-sha1, i= outside d=, From unsigned) are
 * signed here by hand with simple/simple canonicalization, which needs no
 * library code at all: the hash input is the header lines as they are
 * followed by the signature field up to "b=".
 */
#include <criterion/criterion.h>

#include <openssl/x509.h>

#include "keys.h"

#define T0 1700000000

static const char rfc8463_msg[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    " date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n"
    "\r\n";

static const char base_headers[] =
    "From: Alice <alice@example.com>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: lunch\r\n"
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "Message-ID: <1@example.com>\r\n";
static const char base_body[] = "Shall we?\r\n";

/* ------------------------------------------------------------- helpers */

static char *
concat(const char *a, const char *b, const char *c)
{
	size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
	char *s = malloc(na + nb + nc + 1);

	cr_assert(s != NULL);
	memcpy(s, a, na);
	memcpy(s + na, b, nb);
	memcpy(s + na + nb, c, nc + 1);
	return s;
}

static char *
base_message(void)
{
	return concat(base_headers, "\r\n", base_body);
}

static void
sign_opts(struct dkim_sign_opts *o, enum dkim_alg alg, const char *sel,
    EVP_PKEY *key)
{
	dkim_sign_opts_init(o);
	o->alg = alg;
	o->hcanon = DKIM_CANON_RELAXED;
	o->bcanon = DKIM_CANON_RELAXED;
	o->domain = "example.com";
	o->selector = sel;
	o->identity = NULL;
	o->headers = NULL;
	o->nheaders = 0;
	o->now = T0;
	o->expire = 0;
	o->body_length = false;
	o->key = key;
}

/* prepend_signature - dkim_sign text and return field + text (malloc'd). */
static char *
prepend_signature(const char *text, const struct dkim_sign_opts *o)
{
	struct dkim_msg *m = NULL;
	struct dkim_buf out;
	char why[DKIM_WHY_MAX] = "";
	enum dkim_status st;
	char *r;

	cr_assert(dkim_msg_parse(text, strlen(text), NULL, &m, NULL, 0) ==
	    DKIM_OK, "test setup: message does not parse");
	dkim_buf_init(&out, 0);
	st = dkim_sign(m, o, &out, why, sizeof(why));
	cr_assert(st == DKIM_OK && out.len > 0, "test setup: dkim_sign status "
	    "%d (%s)", st, why);
	r = concat(out.p, text, "");
	dkim_buf_free(&out);
	dkim_msg_free(m);
	return r;
}

/* sign_base - the base message signed by dkim_sign. */
static char *
sign_base(enum dkim_alg alg, const char *sel, int64_t now, int64_t expire,
    const char *identity)
{
	EVP_PKEY *key = alg == DKIM_ALG_ED25519_SHA256 ? load_ed_key() :
	    load_rsa_key();
	struct dkim_sign_opts o;
	char *msg = base_message(), *r;

	cr_assert(key != NULL);
	sign_opts(&o, alg, sel, key);
	o.now = now;
	o.expire = expire;
	o.identity = identity;
	r = prepend_signature(msg, &o);
	free(msg);
	EVP_PKEY_free(key);
	return r;
}

/*
 * hand_sign - a simple/simple signature built without the library. tags is
 * the field value up to (not including) bh=; hashed is the exact header
 * lines h= selects, in h= order; the message is the signature, headers,
 * an empty line and body. The body must already be in simple canonical
 * form (ends in one CRLF).
 */
static char *
hand_sign(EVP_PKEY *key, const EVP_MD *md, const char *tags,
    const char *hashed, const char *headers, const char *body)
{
	unsigned char bh[EVP_MAX_MD_SIZE], *sig;
	unsigned int bhlen = 0;
	size_t siglen = 0;
	char *bh64, *sig64, *prefix, *input, *field, *tail, *msg;
	size_t n;
	EVP_MD_CTX *ctx;

	cr_assert(EVP_Digest(body, strlen(body), bh, &bhlen, md, NULL));
	bh64 = b64(bh, bhlen);
	n = strlen(tags) + strlen(bh64) + 64;
	prefix = malloc(n);
	snprintf(prefix, n, "DKIM-Signature: %s; bh=%s; b=", tags, bh64);
	input = concat(hashed, prefix, "");

	ctx = EVP_MD_CTX_new();
	cr_assert(EVP_DigestSignInit(ctx, NULL, md, NULL, key) == 1);
	cr_assert(EVP_DigestSign(ctx, NULL, &siglen, (unsigned char *)input,
	    strlen(input)) == 1);
	sig = malloc(siglen);
	cr_assert(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)input,
	    strlen(input)) == 1, "hand_sign: signing failed");
	EVP_MD_CTX_free(ctx);
	sig64 = b64(sig, siglen);

	field = concat(prefix, sig64, "\r\n");
	tail = concat(headers, "\r\n", body);
	msg = concat(field, tail, "");
	free(bh64);
	free(prefix);
	free(input);
	free(sig);
	free(sig64);
	free(field);
	free(tail);
	return msg;
}

static EVP_PKEY *
rsa_keygen(unsigned bits)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;

	cr_assert(ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1);
	cr_assert(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) == 1);
	cr_assert(EVP_PKEY_keygen(ctx, &k) == 1, "RSA-%u keygen failed", bits);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* The 512-bit key is generated once per process and served as "short". */
static EVP_PKEY *short_key;
static char short_record[512];
static struct dns_entry short_entry[1];

static void
make_short_key(void)
{
	unsigned char *der = NULL;
	int n;
	char *p;

	if (short_key != NULL)
		return;
	short_key = rsa_keygen(512);
	n = i2d_PUBKEY(short_key, &der);
	cr_assert(n > 0);
	p = b64(der, (size_t)n);
	snprintf(short_record, sizeof(short_record), "v=DKIM1; k=rsa; p=%s", p);
	free(p);
	OPENSSL_free(der);
	short_entry[0].qname = "short._domainkey.example.com";
	short_entry[0].rc = DKIM_LOOKUP_OK;
	short_entry[0].rec1[0] = short_record;
}

struct verified {
	struct dkim_msg *m;
	struct dkim_verification *v;
	struct dns dns;
};

/* verify_text - parse and verify text at now; max_signatures 0: default. */
static void
verify_text(const char *text, int64_t now, size_t max_signatures,
    struct verified *out)
{
	struct dkim_verify_opts o;
	enum dkim_status st;

	memset(out, 0, sizeof(*out));
	dns_init(&out->dns);
	if (short_key != NULL) {
		out->dns.extra = short_entry;
		out->dns.nextra = 1;
	}
	st = dkim_msg_parse(text, strlen(text), NULL, &out->m, NULL, 0);
	cr_assert(st == DKIM_OK, "test setup: message does not parse (%d)",
	    st);
	dkim_verify_opts_init(&o);
	o.now = now;
	o.lookup = dns_lookup;
	o.lookup_arg = &out->dns;
	if (max_signatures)
		o.max_signatures = max_signatures;
	st = dkim_verify(out->m, &o, &out->v);
	cr_assert(st == DKIM_OK && out->v != NULL, "dkim_verify status got %d, "
	    "want DKIM_OK", st);
}

static void
verified_free(struct verified *x)
{
	dkim_verification_free(x->v);
	dkim_msg_free(x->m);
}

/* replace - text with the first `from` replaced by `to` (malloc'd). */
static char *
replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *head, *r;

	cr_assert(at != NULL, "test setup: \"%s\" not in text", from);
	head = strndup(text, (size_t)(at - text));
	r = concat(head, to, at + strlen(from));
	free(head);
	return r;
}

/* ---------------------------------------------------- RFC 8463 Appendix A */

Test(verify, rfc8463_appendix_a)
{
	static const struct {
		const char *s, *a;
		unsigned bits;
		const char *b;
	} want[] = {
		{ "brisbane", "ed25519-sha256", 0,
		    "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus"
		    "Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==" },
		{ "test", "rsa-sha256", 1024,
		    "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3"
		    "DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz"
		    "dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=" },
	};
	struct verified x;

	verify_text(rfc8463_msg, 1528637909 + 86400, 0, &x);
	cr_assert(x.v->n == 2, "signatures got %zu, want 2", x.v->n);
	cr_expect(x.v->ignored == 0, "ignored got %zu, want 0", x.v->ignored);
	for (size_t i = 0; i < 2; i++) {
		const struct dkim_sigresult *r = &x.v->r[i];

		cr_expect(r->result == DKIM_RES_PASS, "signature %zu (%s): "
		    "result got %s (%s), want pass", i, want[i].a,
		    dkim_result_str(r->result), r->reason);
		cr_expect(r->field_index == i, "signature %zu: field_index got "
		    "%zu, want %zu", i, r->field_index, i);
		cr_expect(strcmp(r->d, "football.example.com") == 0,
		    "signature %zu: d got \"%s\"", i, escs(r->d));
		cr_expect(strcmp(r->s, want[i].s) == 0, "signature %zu: s got "
		    "\"%s\", want \"%s\"", i, escs(r->s), want[i].s);
		cr_expect(strcmp(r->a, want[i].a) == 0, "signature %zu: a got "
		    "\"%s\", want \"%s\"", i, escs(r->a), want[i].a);
		cr_expect(strcmp(r->i, "@football.example.com") == 0,
		    "signature %zu: i got \"%s\"", i, escs(r->i));
		cr_expect(strcmp(r->b, want[i].b) == 0, "signature %zu: b got "
		    "\"%s\", want \"%s\"", i, escs(r->b), want[i].b);
		cr_expect(!r->testing, "signature %zu: testing got 1", i);
		if (want[i].bits)
			cr_expect(r->key_bits == want[i].bits, "signature %zu: "
			    "key_bits got %u, want %u", i, r->key_bits,
			    want[i].bits);
		cr_expect(r->sig != NULL, "signature %zu: sig got NULL", i);
	}
	cr_expect(x.dns.queries == 2, "DNS queries got %u, want 2",
	    x.dns.queries);
	verified_free(&x);
}

/* The same message, altered after signing: both signatures must break. */
Test(verify, rfc8463_altered)
{
	static const struct {
		const char *desc, *from, *to, *reason;
	} rows[] = {
		{ "signed header changed", "Subject: Is dinner ready?",
		    "Subject: Is dinner ready!", "signature did not verify" },
		{ "body changed", "We lost the game.", "We won the game.",
		    "body hash did not verify" },
		{ "a second From added", "From: Joe",
		    "From: Mallory <m@example.org>\r\nFrom: Joe",
		    "signature did not verify" },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		char *text = replace(rfc8463_msg, rows[i].from, rows[i].to);
		struct verified x;

		verify_text(text, 1528637909 + 86400, 0, &x);
		cr_expect(x.v->n == 2, "%s: signatures got %zu, want 2",
		    rows[i].desc, x.v->n);
		for (size_t j = 0; j < x.v->n; j++) {
			cr_expect(x.v->r[j].result == DKIM_RES_FAIL,
			    "%s: signature %zu result got %s, want fail",
			    rows[i].desc, j, dkim_result_str(x.v->r[j].result));
			cr_expect(strcmp(x.v->r[j].reason, rows[i].reason) == 0,
			    "%s: signature %zu reason got \"%s\", want \"%s\"",
			    rows[i].desc, j, x.v->r[j].reason, rows[i].reason);
		}
		verified_free(&x);
		free(text);
	}
}

/* Relaxed/relaxed tolerates refolding, whitespace and field-name case. */
Test(verify, rfc8463_relaxed_tolerates_whitespace)
{
	char *a = replace(rfc8463_msg, "Subject: Is dinner ready?",
	    "Subject:   Is dinner\r\n\tready?  ");
	char *b = replace(a, "We lost the game.  Are", "We lost  the game. \t"
	    "Are");
	char *c = replace(b, "Joe.\r\n\r\n", "Joe.  \r\n\r\n \r\n\r\n");
	char *d = replace(c, "DKIM-Signature: v=1; a=rsa", "dkim-signature:v=1; "
	    "a=rsa");
	struct verified x;

	verify_text(d, 1528637909 + 86400, 0, &x);
	cr_expect(x.v->n == 2, "signatures got %zu, want 2", x.v->n);
	for (size_t j = 0; j < x.v->n; j++)
		cr_expect(x.v->r[j].result == DKIM_RES_PASS, "signature %zu: "
		    "result got %s (%s), want pass", j,
		    dkim_result_str(x.v->r[j].result), x.v->r[j].reason);
	verified_free(&x);
	free(a);
	free(b);
	free(c);
	free(d);
}

/* ------------------------------------------------------ failure reasons */

static char *
b_rsa_pass(void)
{
	return sign_base(DKIM_ALG_RSA_SHA256, "rsa", T0, 0, NULL);
}

static char *
b_ed_pass(void)
{
	return sign_base(DKIM_ALG_ED25519_SHA256, "ed", T0, 0, NULL);
}

static char *
b_body_changed(void)
{
	char *s = sign_base(DKIM_ALG_RSA_SHA256, "rsa", T0, 0, NULL);
	char *r = replace(s, "Shall we?", "Shall we not?");

	free(s);
	return r;
}

static char *
b_header_changed(void)
{
	char *s = sign_base(DKIM_ALG_ED25519_SHA256, "ed", T0, 0, NULL);
	char *r = replace(s, "Subject: lunch", "Subject: dinner");

	free(s);
	return r;
}

/* b_b_altered - one base64 character of b= changed. */
static char *
b_b_altered(void)
{
	char *s = sign_base(DKIM_ALG_RSA_SHA256, "rsa", T0, 0, NULL);
	char *end = strstr(s, "\r\nFrom:");
	char *p = NULL;

	/* the last "b=" that starts a tag (after ';' or FWS), not bh= */
	for (char *q = s; q < end; q++)
		if (q[0] == 'b' && q[1] == '=' && (q[-1] == ' ' ||
		    q[-1] == ';' || q[-1] == '\t' || q[-1] == '\n'))
			p = q + 2;
	cr_assert(p != NULL, "test setup: no b= in \"%s\"", escs(s));
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	p += 8;
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	*p = *p == 'Q' ? 'R' : 'Q';
	return s;
}

static char *
b_signed_tag_altered(void)
{
	char *s = sign_base(DKIM_ALG_RSA_SHA256, "rsa", T0, 0, NULL);
	char *r = replace(s, "t=1700000000", "t=1700000001");

	free(s);
	return r;
}

static char *
b_nokey(void)
{
	return sign_base(DKIM_ALG_RSA_SHA256, "nokey", T0, 0, NULL);
}

static char *
b_notfound(void)
{
	return sign_base(DKIM_ALG_ED25519_SHA256, "notfound", T0, 0, NULL);
}

static char *
b_revoked(void)
{
	return sign_base(DKIM_ALG_RSA_SHA256, "revoked", T0, 0, NULL);
}

static char *
b_tempfail(void)
{
	return sign_base(DKIM_ALG_RSA_SHA256, "tempfail", T0, 0, NULL);
}

static char *
b_badkey(void)
{
	return sign_base(DKIM_ALG_RSA_SHA256, "bad", T0, 0, NULL);
}

static char *
b_spf_first(void)
{
	return sign_base(DKIM_ALG_RSA_SHA256, "spf", T0, 0, NULL);
}

static char *
b_expired(void)
{
	return sign_base(DKIM_ALG_RSA_SHA256, "rsa", T0, 3600, NULL);
}

static char *
b_future(void)
{
	return sign_base(DKIM_ALG_ED25519_SHA256, "ed", T0 + 3600, 0, NULL);
}

static char *
b_within_skew(void)
{
	return sign_base(DKIM_ALG_ED25519_SHA256, "ed", T0 + 200, 0, NULL);
}

#define HAND_HEADERS \
    "From: Alice <alice@example.com>\r\n" \
    "To: Bob <bob@example.net>\r\n" \
    "Subject: lunch\r\n"

static char *
hand(const char *alg, const char *sel, const char *extra, const char *h,
    const char *hashed, EVP_PKEY *key, const EVP_MD *md)
{
	char tags[512];

	snprintf(tags, sizeof(tags), "v=1; a=%s; c=simple/simple; "
	    "d=example.com; s=%s; t=%d;%s h=%s", alg, sel, T0, extra, h);
	return hand_sign(key, md, tags, hashed, HAND_HEADERS, base_body);
}

static char *
b_hand_pass(void)
{
	EVP_PKEY *k = load_rsa_key();
	char *r = hand("rsa-sha256", "rsa", "", "from:to:subject",
	    HAND_HEADERS, k, EVP_sha256());

	EVP_PKEY_free(k);
	return r;
}

static char *
b_short(void)
{
	make_short_key();
	return hand("rsa-sha256", "short", "", "from:to:subject", HAND_HEADERS,
	    short_key, EVP_sha256());
}

static char *
b_sha1(void)
{
	EVP_PKEY *k = load_rsa_key();
	char *r = hand("rsa-sha1", "rsa", "", "from:to:subject", HAND_HEADERS,
	    k, EVP_sha1());

	EVP_PKEY_free(k);
	return r;
}

static char *
b_i_outside_d(void)
{
	EVP_PKEY *k = load_rsa_key();
	char *r = hand("rsa-sha256", "rsa", " i=@other.example;",
	    "from:to:subject", HAND_HEADERS, k, EVP_sha256());

	EVP_PKEY_free(k);
	return r;
}

static char *
b_from_unsigned(void)
{
	EVP_PKEY *k = load_rsa_key();
	char *r = hand("rsa-sha256", "rsa", "", "to:subject",
	    "To: Bob <bob@example.net>\r\nSubject: lunch\r\n", k,
	    EVP_sha256());

	EVP_PKEY_free(k);
	return r;
}

/* l= larger than the canonical body (§3.5: MUST NOT be). */
static char *
b_l_too_big(void)
{
	EVP_PKEY *k = load_rsa_key();
	char *r = hand("rsa-sha256", "rsa", " l=1000;", "from:to:subject",
	    HAND_HEADERS, k, EVP_sha256());

	EVP_PKEY_free(k);
	return r;
}

static char *
b_strict_subdomain(void)
{
	return sign_base(DKIM_ALG_RSA_SHA256, "strict", T0, 0,
	    "@mail.example.com");
}

static char *
b_strict_exact(void)
{
	return sign_base(DKIM_ALG_RSA_SHA256, "strict", T0, 0,
	    "user@example.com");
}

static char *
b_sha1only_key(void)
{
	return sign_base(DKIM_ALG_RSA_SHA256, "sha1only", T0, 0, NULL);
}

static char *
b_other_service(void)
{
	return sign_base(DKIM_ALG_RSA_SHA256, "otherservice", T0, 0, NULL);
}

static char *
b_ed_with_rsa_record(void)
{
	return sign_base(DKIM_ALG_ED25519_SHA256, "rsa", T0, 0, NULL);
}

enum match { EXACT, PREFIX, NOT_PASS, IS_PASS };

struct vcase {
	const char *desc;
	char *(*build)(void);
	int64_t now;
	enum dkim_result want;
	const char *reason;
	enum match match;	/* NOT_PASS: only "anything but pass" */
};

#define NOW (T0 + 60)

static const struct vcase vcases[] = {
	{ "rsa-sha256 signed by dkim_sign", b_rsa_pass, NOW, DKIM_RES_PASS,
	    "", IS_PASS },
	{ "ed25519-sha256 signed by dkim_sign", b_ed_pass, NOW, DKIM_RES_PASS,
	    "", IS_PASS },
	{ "signed by hand (checks the helper)", b_hand_pass, NOW,
	    DKIM_RES_PASS, "", IS_PASS },
	{ "first TXT record is not a DKIM key", b_spf_first, NOW,
	    DKIM_RES_PASS, "", IS_PASS },
	{ "t= ahead but within clock_skew", b_within_skew, T0, DKIM_RES_PASS,
	    "", IS_PASS },
	{ "strict key, i= domain equal to d=", b_strict_exact, NOW,
	    DKIM_RES_PASS, "", IS_PASS },
	{ "body changed", b_body_changed, NOW, DKIM_RES_FAIL,
	    "body hash did not verify", EXACT },
	{ "signed header changed", b_header_changed, NOW, DKIM_RES_FAIL,
	    "signature did not verify", EXACT },
	{ "b= altered", b_b_altered, NOW, DKIM_RES_FAIL,
	    "signature did not verify", EXACT },
	{ "a tag of the signature altered", b_signed_tag_altered, NOW,
	    DKIM_RES_FAIL, "signature did not verify", EXACT },
	{ "no record at the name", b_nokey, NOW, DKIM_RES_PERMERROR,
	    "no key for signature", EXACT },
	{ "NOTFOUND from the lookup", b_notfound, NOW, DKIM_RES_PERMERROR,
	    "no key for signature", EXACT },
	/* §6.1.2 step 7: "treat this as a failed signature check" */
	{ "p= empty", b_revoked, NOW, DKIM_RES_FAIL, "key revoked", EXACT },
	/* the signature parsed and a key was found, but it failed a test
	 * (RFC 8601 §2.7.1 "fail"); RFC 8301 §3: "permanently failed" */
	{ "x= in the past", b_expired, T0 + 7200, DKIM_RES_FAIL,
	    "signature expired", EXACT },
	{ "t= beyond clock_skew", b_future, T0, DKIM_RES_FAIL,
	    "signature from the future", EXACT },
	{ "512-bit RSA key", b_short, NOW, DKIM_RES_FAIL,
	    "key too short (512 bits)", EXACT },
	{ "rsa-sha1", b_sha1, NOW, DKIM_RES_FAIL,
	    "rsa-sha1 not accepted (RFC 8301)", EXACT },
	/* the signature or key record is unusable: permerror */
	{ "key record with an empty tag-spec", b_badkey, NOW,
	    DKIM_RES_PERMERROR, "bad key record syntax", PREFIX },
	{ "i= outside d=", b_i_outside_d, NOW, DKIM_RES_PERMERROR,
	    "i= not within d=", EXACT },
	{ "h= without From", b_from_unsigned, NOW, DKIM_RES_PERMERROR,
	    "From not signed", EXACT },
	{ "TEMPFAIL from the lookup", b_tempfail, NOW, DKIM_RES_TEMPERROR,
	    "DNS temporary failure", EXACT },
	/* RFC requirements whose reason text the header does not fix */
	{ "strict key (t=s), i= in a subdomain", b_strict_subdomain, NOW,
	    DKIM_RES_PASS, "", NOT_PASS },
	{ "key h=sha1 only, a=rsa-sha256 (§6.1.2 step 6)", b_sha1only_key,
	    NOW, DKIM_RES_PASS, "", NOT_PASS },
	{ "key s=other (§3.6.1)", b_other_service, NOW, DKIM_RES_PASS, "",
	    NOT_PASS },
	{ "ed25519 signature, rsa key (§6.1.2 step 8)", b_ed_with_rsa_record,
	    NOW, DKIM_RES_PASS, "", NOT_PASS },
	{ "l= larger than the body (§3.5)", b_l_too_big, NOW, DKIM_RES_PASS,
	    "", NOT_PASS },
};

Test(verify, results_and_reasons, .timeout = 60)
{
	for (size_t i = 0; i < NELEM(vcases); i++) {
		const struct vcase *c = &vcases[i];
		char *text = c->build();
		struct verified x;
		const struct dkim_sigresult *r;

		verify_text(text, c->now, 0, &x);
		cr_expect(x.v->n == 1, "%s: signatures got %zu, want 1",
		    c->desc, x.v->n);
		if (x.v->n < 1) {
			verified_free(&x);
			free(text);
			continue;
		}
		r = &x.v->r[0];
		switch (c->match) {
		case NOT_PASS:
			cr_expect(r->result != DKIM_RES_PASS &&
			    r->result != DKIM_RES_NONE, "%s: result got %s "
			    "(%s), want a failure", c->desc,
			    dkim_result_str(r->result), r->reason);
			break;
		case EXACT:
		case PREFIX:
			cr_expect(r->result == c->want, "%s: result got %s "
			    "(%s), want %s", c->desc,
			    dkim_result_str(r->result), r->reason,
			    dkim_result_str(c->want));
			cr_expect(c->match == EXACT ?
			    strcmp(r->reason, c->reason) == 0 :
			    strncmp(r->reason, c->reason,
			    strlen(c->reason)) == 0, "%s: reason got \"%s\", "
			    "want \"%s\"%s", c->desc, r->reason, c->reason,
			    c->match == PREFIX ? "..." : "");
			break;
		case IS_PASS:
			cr_expect(r->result == DKIM_RES_PASS, "%s: result got %s "
			    "(%s), want pass", c->desc,
			    dkim_result_str(r->result), r->reason);
			cr_expect(strcmp(r->d, "example.com") == 0, "%s: d got "
			    "\"%s\"", c->desc, escs(r->d));
			break;
		}
		verified_free(&x);
		free(text);
	}
}

Test(verify, query_name_and_key_details)
{
	char *text = sign_base(DKIM_ALG_RSA_SHA256, "testing", T0, 0, NULL);
	struct verified x;

	verify_text(text, NOW, 0, &x);
	cr_assert(x.v->n == 1);
	cr_expect(strcmp(x.dns.last, "testing._domainkey.example.com") == 0,
	    "qname got \"%s\", want \"testing._domainkey.example.com\"",
	    x.dns.last);
	cr_expect(x.v->r[0].result == DKIM_RES_PASS, "result got %s (%s), "
	    "want pass", dkim_result_str(x.v->r[0].result),
	    x.v->r[0].reason);
	cr_expect(x.v->r[0].testing, "testing got 0, want 1 (key has t=y)");
	cr_expect(x.v->r[0].key_bits == 1024, "key_bits got %u, want 1024",
	    x.v->r[0].key_bits);
	cr_expect(strcmp(x.v->r[0].s, "testing") == 0 &&
	    strcmp(x.v->r[0].a, "rsa-sha256") == 0 &&
	    strcmp(x.v->r[0].i, "@example.com") == 0, "s/a/i got %s/%s/%s, "
	    "want testing/rsa-sha256/@example.com", x.v->r[0].s,
	    x.v->r[0].a, x.v->r[0].i);
	verified_free(&x);
	free(text);
}

/* ------------------------------------------------- several signatures */

/* sign_n - the base message with n signatures, newest first. */
static char *
sign_n(size_t n, const char *const *sels)
{
	EVP_PKEY *key = load_rsa_key();
	char *text = base_message();

	for (size_t i = 0; i < n; i++) {
		struct dkim_sign_opts o;
		char *next;

		sign_opts(&o, DKIM_ALG_RSA_SHA256, sels[i], key);
		next = prepend_signature(text, &o);
		free(text);
		text = next;
	}
	EVP_PKEY_free(key);
	return text;
}

Test(verify, max_signatures)
{
	static const char *const sels[] = { "rsa", "rsa", "rsa", "rsa" };
	static const struct {
		size_t nsig, max, want_n, want_ignored;
	} rows[] = {
		{ 3, 2, 2, 1 },
		{ 4, 1, 1, 3 },
		{ 3, 3, 3, 0 },
		{ 3, 0, 3, 0 },		/* default: 10 */
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		char *text = sign_n(rows[i].nsig, sels);
		struct verified x;

		verify_text(text, NOW, rows[i].max, &x);
		cr_expect(x.v->n == rows[i].want_n && x.v->ignored ==
		    rows[i].want_ignored, "%zu signatures, max %zu: got n=%zu "
		    "ignored=%zu, want n=%zu ignored=%zu", rows[i].nsig,
		    rows[i].max, x.v->n, x.v->ignored, rows[i].want_n,
		    rows[i].want_ignored);
		for (size_t j = 0; j < x.v->n; j++) {
			cr_expect(x.v->r[j].result == DKIM_RES_PASS,
			    "%zu signatures: #%zu result got %s (%s)",
			    rows[i].nsig, j, dkim_result_str(x.v->r[j].result),
			    x.v->r[j].reason);
			cr_expect(x.v->r[j].field_index == j, "%zu signatures: "
			    "#%zu field_index got %zu, want %zu", rows[i].nsig,
			    j, x.v->r[j].field_index, j);
		}
		cr_expect(x.dns.queries == rows[i].want_n, "%zu signatures, max "
		    "%zu: DNS queries got %u, want %zu (ignored ones must not "
		    "be looked up)", rows[i].nsig, rows[i].max, x.dns.queries,
		    rows[i].want_n);
		verified_free(&x);
		free(text);
	}
}

Test(verify, no_signature)
{
	char *text = base_message();
	struct verified x;

	verify_text(text, NOW, 0, &x);
	cr_expect(x.v->n == 0 && x.v->ignored == 0, "got n=%zu ignored=%zu, "
	    "want 0 and 0", x.v->n, x.v->ignored);
	cr_expect(x.dns.queries == 0, "DNS queries got %u, want 0",
	    x.dns.queries);
	verified_free(&x);
	free(text);
}

/* Each signature stands alone: a bad one does not spoil a good one. */
Test(verify, independent_results_in_header_order)
{
	static const char *const sels[] = { "nokey", "rsa" };
	char *signed2 = sign_n(2, sels);	/* rsa on top, nokey below */
	char *text = concat("DKIM-Signature: this is not a tag list\r\n",
	    signed2, "");
	struct verified x;
	static const struct {
		size_t field;
		enum dkim_result res;
		const char *reason;	/* NULL: any */
	} want[] = {
		{ 0, 0, NULL },
		{ 1, DKIM_RES_PASS, "" },
		{ 2, DKIM_RES_PERMERROR, "no key for signature" },
	};

	verify_text(text, NOW, 0, &x);
	cr_assert(x.v->n == 3, "signatures got %zu, want 3", x.v->n);
	for (size_t j = 0; j < 3; j++) {
		const struct dkim_sigresult *r = &x.v->r[j];

		cr_expect(r->field_index == want[j].field, "#%zu field_index "
		    "got %zu, want %zu", j, r->field_index, want[j].field);
		if (want[j].reason == NULL) {
			cr_expect(r->result != DKIM_RES_PASS && r->result !=
			    DKIM_RES_NONE && r->result != DKIM_RES_TEMPERROR,
			    "#%zu (unparsable) result got %s, want a "
			    "permanent failure", j, dkim_result_str(r->result));
			cr_expect(r->sig == NULL && r->reason[0] != '\0',
			    "#%zu (unparsable): sig got %p reason \"%s\", want "
			    "NULL and a reason", j, (void *)r->sig, r->reason);
			cr_expect(r->d != NULL && r->s != NULL && r->a != NULL &&
			    r->b != NULL && r->i != NULL, "#%zu (unparsable): "
			    "d/s/a/b/i must be strings, not NULL", j);
			continue;
		}
		cr_expect(r->result == want[j].res, "#%zu result got %s (%s), "
		    "want %s", j, dkim_result_str(r->result), r->reason,
		    dkim_result_str(want[j].res));
		if (want[j].reason[0] != '\0')
			cr_expect(strcmp(r->reason, want[j].reason) == 0,
			    "#%zu reason got \"%s\", want \"%s\"", j, r->reason,
			    want[j].reason);
	}
	verified_free(&x);
	free(text);
	free(signed2);
}

/* dkim_select_headers: RFC 6376 §5.4.2, instances taken bottom-up, a name
 * with no instance left selects nothing, the signature itself never. */
Test(verify, select_headers_bottom_up)
{
	static const char text[] =
	    "Received: <A>\r\n"		/* 0 */
	    "Received: <B>\r\n"		/* 1 */
	    "DKIM-Signature: x\r\n"	/* 2 */
	    "Received: <C>\r\n"		/* 3 */
	    "From: f\r\n"		/* 4 */
	    "dkim-signature: y\r\n"	/* 5 */
	    "\r\n";
	static const struct {
		const char *desc;
		const char *h[6];
		size_t nh;
		long exclude;
		long want[6];
	} rows[] = {
		{ "§5.4.2 example: C then B", { "Received", "Received" }, 2, -1,
		    { 3, 1 } },
		{ "more names than instances", { "received", "RECEIVED",
		    "Received", "received" }, 4, -1, { 3, 1, 0, -1 } },
		{ "absent name selects nothing", { "from", "subject", "from" },
		    3, -1, { 4, -1, -1 } },
		{ "exclude the signature itself", { "dkim-signature",
		    "dkim-signature" }, 2, 5, { 2, -1 } },
		{ "other signatures are ordinary fields", { "DKIM-Signature",
		    "DKIM-Signature" }, 2, 2, { 5, -1 } },
		{ "interleaved names", { "received", "from", "received" }, 3,
		    -1, { 3, 4, 1 } },
	};
	struct dkim_msg *m = NULL;

	cr_assert(dkim_msg_parse(text, strlen(text), NULL, &m, NULL, 0) ==
	    DKIM_OK);
	for (size_t i = 0; i < NELEM(rows); i++) {
		long got[6];

		memset(got, 0x55, sizeof(got));
		dkim_select_headers(m, (char *const *)rows[i].h, rows[i].nh,
		    rows[i].exclude, got);
		for (size_t k = 0; k < rows[i].nh; k++)
			cr_expect(got[k] == rows[i].want[k], "%s: idx[%zu] (%s) "
			    "got %ld, want %ld", rows[i].desc, k, rows[i].h[k],
			    got[k], rows[i].want[k]);
	}
	dkim_msg_free(m);
}

/* A signature may sign an older DKIM-Signature (RFC 6376 §3.7: "other
 * DKIM-Signature header fields ... MAY be signed"); it never signs itself. */
Test(verify, signature_over_an_older_signature)
{
	static const char *const names[] = { "from", "subject",
	    "dkim-signature" };
	EVP_PKEY *key = load_ed_key();
	struct dkim_sign_opts o;
	char *older = sign_base(DKIM_ALG_RSA_SHA256, "rsa", T0, 0, NULL);
	char *both, *tampered;
	struct verified x;

	sign_opts(&o, DKIM_ALG_ED25519_SHA256, "ed", key);
	o.headers = names;
	o.nheaders = NELEM(names);
	both = prepend_signature(older, &o);

	verify_text(both, NOW, 0, &x);
	cr_assert(x.v->n == 2, "signatures got %zu, want 2", x.v->n);
	for (size_t j = 0; j < 2; j++)
		cr_expect(x.v->r[j].result == DKIM_RES_PASS, "#%zu: got %s "
		    "(%s), want pass", j, dkim_result_str(x.v->r[j].result),
		    x.v->r[j].reason);
	verified_free(&x);

	/* Changing the older signature breaks both. */
	tampered = replace(both, "s=rsa;", "s=rsa ;");
	verify_text(tampered, NOW, 0, &x);
	cr_assert(x.v->n == 2);
	for (size_t j = 0; j < 2; j++)
		cr_expect(x.v->r[j].result == DKIM_RES_FAIL &&
		    strcmp(x.v->r[j].reason, "signature did not verify") == 0,
		    "tampered #%zu: got %s (%s), want fail (signature did not "
		    "verify)", j, dkim_result_str(x.v->r[j].result),
		    x.v->r[j].reason);
	verified_free(&x);
	free(tampered);
	free(both);
	free(older);
	EVP_PKEY_free(key);
}

Test(verify, names_and_arguments)
{
	static const struct {
		enum dkim_result r;
		const char *want;	/* RFC 8601 §2.7.1 */
	} rows[] = {
		{ DKIM_RES_NONE, "none" }, { DKIM_RES_PASS, "pass" },
		{ DKIM_RES_FAIL, "fail" }, { DKIM_RES_NEUTRAL, "neutral" },
		{ DKIM_RES_POLICY, "policy" },
		{ DKIM_RES_TEMPERROR, "temperror" },
		{ DKIM_RES_PERMERROR, "permerror" },
	};
	struct dkim_verify_opts o;
	struct dkim_verification *v = (struct dkim_verification *)1;

	for (size_t i = 0; i < NELEM(rows); i++)
		cr_expect(strcmp(dkim_result_str(rows[i].r), rows[i].want) == 0,
		    "dkim_result_str(%d) got \"%s\", want \"%s\"", rows[i].r,
		    dkim_result_str(rows[i].r), rows[i].want);
	dkim_verify_opts_init(&o);
	cr_expect(o.max_signatures == 10 && o.clock_skew == 300 &&
	    o.min_rsa_bits == 1024, "defaults got max %zu skew %lld bits %u, "
	    "want 10, 300, 1024", o.max_signatures, (long long)o.clock_skew,
	    o.min_rsa_bits);
	cr_expect(dkim_verify(NULL, &o, &v) == DKIM_E_ARG, "NULL message: "
	    "want DKIM_E_ARG");
	dkim_verification_free(NULL);
}
