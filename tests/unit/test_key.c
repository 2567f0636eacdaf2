/*
 * test_key.c - DKIM key records (RFC 6376 §3.6.1, RFC 8463 §4.2) through
 * dkim_key_parse, the TXT record container, and dkim_key_fetch over a
 * served table of records.
 */
#include <criterion/criterion.h>

#include <strings.h>

#include <openssl/x509.h>

#include "unit.h"

/* RFC 8463 Appendix A.2, the two p= values. */
#define RFC8463_RSA "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR" \
	"iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC" \
	"DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3" \
	"Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
#define RFC8463_ED "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

/* RFC 8032 §7.1 TEST 1 public key, the bytes behind RFC8463_ED. */
static const unsigned char ed_pub[32] = {
	0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3,
	0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25,
	0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
};

enum { F = 0, T = 1, X = 2 };	/* X: don't check */

struct key_case {
	const char *desc;
	const char *rec;
	enum dkim_keytype type;
	unsigned bits;		/* 0: not checked */
	int revoked, testing, strict, sha256, sha1, email;
};

#define RSA_FLAGS(t, s) DKIM_KEY_RSA, 1024, F, t, s
#define ALL_OK T, T, T

static const struct key_case ok_cases[] = {
	{ "RFC 8463 rsa record", "v=DKIM1; k=rsa; p=" RFC8463_RSA,
	    RSA_FLAGS(F, F), ALL_OK },
	{ "no v=", "k=rsa; p=" RFC8463_RSA, RSA_FLAGS(F, F), ALL_OK },
	{ "k= defaults to rsa", "p=" RFC8463_RSA, RSA_FLAGS(F, F), ALL_OK },
	{ "trailing ';' and FWS", "v=DKIM1;k=rsa;p=" RFC8463_RSA "; ",
	    RSA_FLAGS(F, F), ALL_OK },
	{ "RFC 8463 ed25519 record", "v=DKIM1; k=ed25519; p=" RFC8463_ED,
	    DKIM_KEY_ED25519, 0, F, F, F, ALL_OK },
	{ "revoked rsa", "v=DKIM1; p=", DKIM_KEY_RSA, 0, T, F, F, X, X, X },
	{ "revoked, WSP after p=", "v=DKIM1; k=rsa; p= ", DKIM_KEY_RSA, 0,
	    T, F, F, X, X, X },
	{ "revoked ed25519", "v=DKIM1; k=ed25519; p=", DKIM_KEY_ED25519, 0,
	    T, F, F, X, X, X },
	{ "t=y testing", "v=DKIM1; t=y; p=" RFC8463_RSA, RSA_FLAGS(T, F),
	    ALL_OK },
	{ "t=s strict", "v=DKIM1; t=s; p=" RFC8463_RSA, RSA_FLAGS(F, T),
	    ALL_OK },
	{ "t=y:s", "v=DKIM1; t=y:s; p=" RFC8463_RSA, RSA_FLAGS(T, T), ALL_OK },
	{ "t= with FWS", "v=DKIM1; t = y :\r\n s ; p=" RFC8463_RSA,
	    RSA_FLAGS(T, T), ALL_OK },
	{ "unknown flags ignored", "v=DKIM1; t=x:y; p=" RFC8463_RSA,
	    RSA_FLAGS(T, F), ALL_OK },
	{ "only unknown flags", "t=q; p=" RFC8463_RSA, RSA_FLAGS(F, F),
	    ALL_OK },
	{ "h=sha1 only", "v=DKIM1; h=sha1; p=" RFC8463_RSA, RSA_FLAGS(F, F),
	    F, T, T },
	{ "h=sha256 only", "v=DKIM1; h=sha256; p=" RFC8463_RSA,
	    RSA_FLAGS(F, F), T, F, T },
	{ "h=sha1:sha256", "v=DKIM1; h=sha1:sha256; p=" RFC8463_RSA,
	    RSA_FLAGS(F, F), T, T, T },
	{ "h= unknown ignored", "v=DKIM1; h=sha512 : sha256; p=" RFC8463_RSA,
	    RSA_FLAGS(F, F), T, F, T },
	{ "h= only unknown", "v=DKIM1; h=sha512; p=" RFC8463_RSA,
	    RSA_FLAGS(F, F), F, F, T },
	{ "s=email", "v=DKIM1; s=email; p=" RFC8463_RSA, RSA_FLAGS(F, F),
	    T, T, T },
	{ "s=*", "v=DKIM1; s=*; p=" RFC8463_RSA, RSA_FLAGS(F, F), T, T, T },
	{ "s=other", "v=DKIM1; s=other; p=" RFC8463_RSA, RSA_FLAGS(F, F),
	    T, T, F },
	{ "s=other:email", "v=DKIM1; s=other:email; p=" RFC8463_RSA,
	    RSA_FLAGS(F, F), T, T, T },
	{ "s= with FWS and *", "v=DKIM1; s = other : * ; p=" RFC8463_RSA,
	    RSA_FLAGS(F, F), T, T, T },
	{ "unknown tags ignored", "v=DKIM1; n=notes for humans; x_y=1; p="
	    RFC8463_RSA, RSA_FLAGS(F, F), ALL_OK },
	{ "p= split by FWS", "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNA"
	    "DCBiQKBgQDkHlOQoBTzWR iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16"
	    "JYi0Qvx/byYzCNb3W91y3FutAC\r\n DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMK"
	    "rM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3\r\n\t Ip3G+2kryOTIKT+l/K4w3Q "
	    "IDAQAB", RSA_FLAGS(F, F), ALL_OK },
	{ "ed25519 p= split by FWS", "v=DKIM1; k=ed25519; p=11qYAYKxCrfV "
	    "S/7TyWQHOg7hcv\r\n PapiMlrwIaaPcHURo=", DKIM_KEY_ED25519, 0,
	    F, F, F, ALL_OK },
};

static void
check_flag(const char *desc, const char *what, bool got, int want)
{
	if (want == X)
		return;
	cr_expect(got == (want == T), "%s: %s got %d, want %d", desc, what,
	    got, want);
}

Test(key, valid_records)
{
	for (size_t i = 0; i < NELEM(ok_cases); i++) {
		const struct key_case *c = &ok_cases[i];
		struct dkim_key *k = NULL;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;

		st = dkim_key_parse(c->rec, strlen(c->rec), &k, why,
		    sizeof(why));
		cr_expect(st == DKIM_OK && k != NULL, "%s: status got %d (%s), "
		    "want DKIM_OK", c->desc, st, why);
		if (st != DKIM_OK || k == NULL)
			continue;
		cr_expect(k->type == c->type, "%s: type got %d, want %d",
		    c->desc, k->type, c->type);
		check_flag(c->desc, "revoked", k->revoked, c->revoked);
		check_flag(c->desc, "testing", k->testing, c->testing);
		check_flag(c->desc, "strict", k->strict, c->strict);
		check_flag(c->desc, "allow_sha256", k->allow_sha256, c->sha256);
		check_flag(c->desc, "allow_sha1", k->allow_sha1, c->sha1);
		check_flag(c->desc, "email_ok", k->email_ok, c->email);
		if (c->revoked == T)
			cr_expect(k->pkey == NULL, "%s: pkey got %p, want NULL "
			    "for a revoked key", c->desc, (void *)k->pkey);
		else
			cr_expect(k->pkey != NULL, "%s: pkey got NULL, want a "
			    "key", c->desc);
		if (c->bits != 0)
			cr_expect(k->bits == c->bits, "%s: bits got %u, want %u",
			    c->desc, k->bits, c->bits);
		if (k->pkey != NULL && c->type == DKIM_KEY_ED25519) {
			unsigned char raw[64];
			size_t rawlen = sizeof(raw);

			cr_expect(EVP_PKEY_get_raw_public_key(k->pkey, raw,
			    &rawlen) == 1 && rawlen == 32 &&
			    memcmp(raw, ed_pub, 32) == 0, "%s: ed25519 key got "
			    "%zu bytes \"%s\", want the RFC 8032 test 1 key",
			    c->desc, rawlen, esc(raw, rawlen));
		}
		dkim_key_free(k);
	}
}

struct bad_key {
	const char *desc;
	const char *rec;
	bool key_material;	/* DKIM_E_KEY is an acceptable status too */
};

static const struct bad_key bad_keys[] = {
	{ "v= not first", "k=rsa; v=DKIM1; p=" RFC8463_RSA, false },
	{ "v= not first, after p=", "p=" RFC8463_RSA "; v=DKIM1", false },
	{ "v=DKIM2", "v=DKIM2; p=" RFC8463_RSA, false },
	{ "v=DKIM1.0 (string comparison)", "v=DKIM1.0; p=" RFC8463_RSA,
	    false },
	{ "v=dkim1 (ABNF %x44.4B.49.4D.31)", "v=dkim1; p=" RFC8463_RSA,
	    false },
	{ "v= empty", "v=; p=" RFC8463_RSA, false },
	{ "v=spf1", "v=spf1 ip4:192.0.2.0/24 -all", false },
	{ "k= unknown", "v=DKIM1; k=dsa; p=" RFC8463_RSA, false },
	{ "k= empty", "v=DKIM1; k=; p=" RFC8463_RSA, false },
	{ "p= missing", "v=DKIM1; k=rsa", false },
	{ "p= missing, only v=", "v=DKIM1", false },
	{ "p= missing, t=y", "v=DKIM1; t=y; n=x", false },
	{ "duplicate p=", "v=DKIM1; p=" RFC8463_RSA "; p=" RFC8463_RSA,
	    false },
	{ "empty tag-spec", "v=DKIM1; p=" RFC8463_RSA ";;", false },
	{ "empty record", "", false },
	{ "p= not base64", "v=DKIM1; k=rsa; p=MIGf!!!!", false },
	{ "p= base64 of junk", "v=DKIM1; k=rsa; p=AAAAAAAA", true },
	{ "p= truncated SPKI", "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GN",
	    true },
	{ "rsa SPKI under k=ed25519", "v=DKIM1; k=ed25519; p=" RFC8463_RSA,
	    true },
	{ "ed25519 bytes under k=rsa", "v=DKIM1; k=rsa; p=" RFC8463_ED, true },
	{ "ed25519 key of 31 bytes", "v=DKIM1; k=ed25519; "
	    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUQ==", true },
	{ "ed25519 key of 33 bytes", "v=DKIM1; k=ed25519; "
	    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURoA", true },
};

Test(key, refused_records)
{
	for (size_t i = 0; i < NELEM(bad_keys); i++) {
		const struct bad_key *c = &bad_keys[i];
		struct dkim_key *k = NULL;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;
		bool ok;

		st = dkim_key_parse(c->rec, strlen(c->rec), &k, why,
		    sizeof(why));
		ok = st == DKIM_E_SYNTAX || (c->key_material &&
		    st == DKIM_E_KEY);
		cr_expect(ok, "%s: \"%s\": status got %d (%s), want "
		    "DKIM_E_SYNTAX%s", c->desc, escs(c->rec), st,
		    dkim_status_str(st), c->key_material ? " or DKIM_E_KEY" :
		    "");
		if (st != DKIM_OK)
			cr_expect(why[0] != '\0', "%s: reason got \"\", want one",
			    c->desc);
		if (st == DKIM_OK)
			dkim_key_free(k);
	}
}

/* spki_b64 - the SubjectPublicKeyInfo of pkey in base64; caller frees. */
static char *
spki_b64(EVP_PKEY *pkey)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pkey, &der);
	char *s;

	cr_assert(n > 0, "i2d_PUBKEY failed");
	s = b64(der, (size_t)n);
	OPENSSL_free(der);
	return s;
}

static EVP_PKEY *
rsa_keygen(unsigned bits)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;

	cr_assert(ctx != NULL);
	cr_assert(EVP_PKEY_keygen_init(ctx) == 1);
	cr_assert(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) == 1);
	cr_assert(EVP_PKEY_keygen(ctx, &k) == 1, "RSA %u keygen failed", bits);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* Generated keys: bits reported, and the parsed key is the same key. */
Test(key, generated_keys_and_bits, .timeout = 120)
{
	static const unsigned sizes[] = { 512, 1024, 2048, 3072 };

	for (size_t i = 0; i < NELEM(sizes); i++) {
		EVP_PKEY *gen = sizes[i] == 2048 ?
		    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048) :
		    rsa_keygen(sizes[i]);
		char *p, rec[2048];
		struct dkim_key *k = NULL;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;

		cr_assert(gen != NULL, "keygen %u failed", sizes[i]);
		p = spki_b64(gen);
		snprintf(rec, sizeof(rec), "v=DKIM1; k=rsa; p=%s", p);
		st = dkim_key_parse(rec, strlen(rec), &k, why, sizeof(why));
		cr_expect(st == DKIM_OK, "RSA %u: status got %d (%s), want "
		    "DKIM_OK", sizes[i], st, why);
		if (st == DKIM_OK) {
			cr_expect(k->type == DKIM_KEY_RSA && k->bits ==
			    sizes[i], "RSA %u: got type %d bits %u, want rsa "
			    "%u", sizes[i], k->type, k->bits, sizes[i]);
			cr_expect(k->pkey != NULL &&
			    EVP_PKEY_eq(k->pkey, gen) == 1, "RSA %u: parsed "
			    "key is not the generated key", sizes[i]);
			dkim_key_free(k);
		}
		free(p);
		EVP_PKEY_free(gen);
	}
	/* RFC 6376 §3.6.1 names the bare RSAPublicKey (PKCS#1) for k=rsa;
	 * a SubjectPublicKeyInfo with trailing junk is not a key. */
	{
		EVP_PKEY *gen = rsa_keygen(1024);
		unsigned char *der = NULL, *spki = NULL, *junk;
		int n = i2d_PublicKey(gen, &der), sn = i2d_PUBKEY(gen, &spki);
		char *p, rec[1024];
		struct dkim_key *k = NULL;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;

		cr_assert(n > 0 && sn > 0);
		p = b64(der, (size_t)n);
		snprintf(rec, sizeof(rec), "v=DKIM1; k=rsa; p=%s", p);
		st = dkim_key_parse(rec, strlen(rec), &k, why, sizeof(why));
		cr_expect(st == DKIM_OK && k != NULL && k->bits == 1024 &&
		    EVP_PKEY_eq(k->pkey, gen) == 1, "PKCS#1 RSAPublicKey: "
		    "status got %d (%s), want the key", st, why);
		dkim_key_free(k);
		free(p);

		junk = malloc((size_t)sn + 1);
		memcpy(junk, spki, (size_t)sn);
		junk[sn] = 0;
		p = b64(junk, (size_t)sn + 1);
		snprintf(rec, sizeof(rec), "v=DKIM1; k=rsa; p=%s", p);
		k = NULL;
		st = dkim_key_parse(rec, strlen(rec), &k, why, sizeof(why));
		cr_expect(st != DKIM_OK, "SPKI + one junk byte: status got "
		    "DKIM_OK, want a refusal");
		if (st == DKIM_OK)
			dkim_key_free(k);
		free(p);
		free(junk);
		OPENSSL_free(der);
		OPENSSL_free(spki);
		EVP_PKEY_free(gen);
	}
	/* An Ed25519 key generated here and published as its raw 32 bytes. */
	{
		EVP_PKEY *gen = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		unsigned char raw[32];
		size_t rawlen = sizeof(raw);
		char *p, rec[256];
		struct dkim_key *k = NULL;
		char why[DKIM_WHY_MAX] = "";

		cr_assert(gen != NULL);
		cr_assert(EVP_PKEY_get_raw_public_key(gen, raw, &rawlen) == 1);
		p = b64(raw, rawlen);
		snprintf(rec, sizeof(rec), "v=DKIM1; k=ed25519; p=%s", p);
		cr_expect(dkim_key_parse(rec, strlen(rec), &k, why,
		    sizeof(why)) == DKIM_OK, "ed25519: %s", why);
		if (k != NULL) {
			cr_expect(k->type == DKIM_KEY_ED25519 &&
			    EVP_PKEY_eq(k->pkey, gen) == 1, "ed25519: parsed "
			    "key is not the generated key");
			dkim_key_free(k);
		}
		free(p);
		EVP_PKEY_free(gen);
	}
}

/* The RFC 8463 record as published: four character-strings. */
Test(key, txt_records_concatenate_strings)
{
	static const char *const strs[] = {
		"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR",
		"iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC",
		"DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3",
		"Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
	};
	struct dkim_txt *t = dkim_txt_new();
	const char *got;
	size_t len = 0;

	cr_assert(t != NULL);
	cr_expect(dkim_txt_count(t) == 0, "new: count got %zu, want 0",
	    dkim_txt_count(t));
	cr_assert(dkim_txt_add_record(t));
	cr_assert(dkim_txt_add_string(t, "v=spf1 ", 7));
	cr_assert(dkim_txt_add_string(t, "-all", 4));
	cr_assert(dkim_txt_add_record(t));
	for (size_t i = 0; i < NELEM(strs); i++)
		cr_assert(dkim_txt_add_string(t, strs[i], strlen(strs[i])));
	cr_assert(dkim_txt_add_record(t));	/* an empty record */
	cr_expect(dkim_txt_count(t) == 3, "count got %zu, want 3",
	    dkim_txt_count(t));
	got = dkim_txt_get(t, 0, &len);
	cr_expect(same(got, len, "v=spf1 -all"), "record 0 got \"%s\", want "
	    "\"v=spf1 -all\"", esc(got, len));
	got = dkim_txt_get(t, 1, &len);
	cr_expect(same(got, len, "v=DKIM1; k=rsa; p=" RFC8463_RSA), "record 1 "
	    "got \"%s\", want the strings joined with nothing between",
	    esc(got, len));
	got = dkim_txt_get(t, 2, &len);
	cr_expect(got != NULL && len == 0, "record 2 got %zu bytes, want 0",
	    len);
	dkim_txt_free(t);
	dkim_txt_free(NULL);
}

/* ------------------------------------------------------- dkim_key_fetch */

struct served {
	const char *qname;
	enum dkim_lookup_rc rc;
	const char *recs[3];
};

static const struct served served[] = {
	{ "rsa._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=spf1 -all", "v=DKIM1; k=rsa; p=" RFC8463_RSA } },
	{ "ed._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; k=ed25519; p=" RFC8463_ED } },
	{ "temp._domainkey.example.com", DKIM_LOOKUP_TEMPFAIL, { NULL } },
	{ "perm._domainkey.example.com", DKIM_LOOKUP_PERMFAIL, { NULL } },
	{ "empty._domainkey.example.com", DKIM_LOOKUP_OK, { NULL } },
	{ "bad._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; k=rsa;; p=" RFC8463_RSA } },
};

static char last_qname[256];

static enum dkim_lookup_rc
serve(void *arg, const char *qname, struct dkim_txt *out)
{
	(void)arg;
	snprintf(last_qname, sizeof(last_qname), "%s", qname);
	for (size_t i = 0; i < NELEM(served); i++) {
		if (strcasecmp(served[i].qname, qname) != 0)
			continue;
		for (size_t j = 0; j < NELEM(served[i].recs) &&
		    served[i].recs[j] != NULL; j++) {
			dkim_txt_add_record(out);
			dkim_txt_add_string(out, served[i].recs[j],
			    strlen(served[i].recs[j]));
		}
		return served[i].rc;
	}
	return DKIM_LOOKUP_NOTFOUND;
}

Test(key, fetch_through_the_callback)
{
	static const struct {
		const char *sel;
		bool found;
		enum dkim_result res;	/* when not found */
		const char *why;	/* reason prefix when not found */
	} rows[] = {
		{ "rsa", true, 0, NULL },
		{ "ed", true, 0, NULL },
		{ "nokey", false, DKIM_RES_PERMERROR, "no key for signature" },
		{ "temp", false, DKIM_RES_TEMPERROR, "DNS temporary failure" },
		{ "bad", false, DKIM_RES_PERMERROR, "bad key record syntax" },
		{ "perm", false, DKIM_RES_PERMERROR, "" },
		{ "empty", false, DKIM_RES_PERMERROR, "" },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		enum dkim_result res = DKIM_RES_NONE;
		char why[DKIM_WHY_MAX] = "", want_q[128];
		struct dkim_key *k;

		k = dkim_key_fetch(serve, NULL, rows[i].sel, "example.com",
		    &res, why, sizeof(why));
		snprintf(want_q, sizeof(want_q), "%s._domainkey.example.com",
		    rows[i].sel);
		cr_expect(strcmp(last_qname, want_q) == 0, "%s: qname got "
		    "\"%s\", want \"%s\"", rows[i].sel, last_qname, want_q);
		if (rows[i].found) {
			cr_expect(k != NULL, "%s: got no key (%s), want one",
			    rows[i].sel, why);
			dkim_key_free(k);
			continue;
		}
		cr_expect(k == NULL, "%s: got a key, want none", rows[i].sel);
		dkim_key_free(k);
		cr_expect(res == rows[i].res, "%s: result got %s, want %s",
		    rows[i].sel, dkim_result_str(res),
		    dkim_result_str(rows[i].res));
		cr_expect(strncmp(why, rows[i].why, strlen(rows[i].why)) == 0,
		    "%s: reason got \"%s\", want \"%s...\"", rows[i].sel, why,
		    rows[i].why);
	}
}
