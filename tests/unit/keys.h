/*
 * keys.h - the published test keys of RFC 8463 Appendix A (RSA in PEM,
 * Ed25519 as the RFC 8032 §7.1 TEST 1 seed), their DNS records as
 * printed, and a served-records lookup callback for dkim_verify. Shared
 * by test_verify.c and test_sign.c; header-only.
 */
#ifndef ARCRELAY_TESTS_KEYS_H
#define ARCRELAY_TESTS_KEYS_H

#include <strings.h>

#include <openssl/pem.h>

#include "unit.h"

static const char rfc8463_rsa_pem[] =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi\n"
    "Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM\n"
    "KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB\n"
    "AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm\n"
    "6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe\n"
    "zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy\n"
    "6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc\n"
    "uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy\n"
    "WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd\n"
    "WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a\n"
    "licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst\n"
    "o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe\n"
    "uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL\n"
    "-----END RSA PRIVATE KEY-----\n";

/* nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A= */
static const unsigned char rfc8463_ed_seed[32] = {
	0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4,
	0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19,
	0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
};

#define RFC8463_ED_P "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define RFC8463_RSA_P "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR" \
	"iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC" \
	"DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3" \
	"Ip3G+2kryOTIKT+l/K4w3QIDAQAB"

static inline EVP_PKEY *
load_rsa_key(void)
{
	BIO *bio = BIO_new_mem_buf(rfc8463_rsa_pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);

	BIO_free(bio);
	return k;
}

static inline EVP_PKEY *
load_ed_key(void)
{
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
	    rfc8463_ed_seed, sizeof(rfc8463_ed_seed));
}

/* ------------------------------------------------------ served records */

#define MAX_STRINGS 6

/* One DNS name: a lookup result and up to two TXT records, each a list of
 * character-strings joined by the library. */
struct dns_entry {
	const char *qname;
	enum dkim_lookup_rc rc;
	const char *rec1[MAX_STRINGS];
	const char *rec2[MAX_STRINGS];
};

struct dns {
	const struct dns_entry *tab;
	size_t n;
	const struct dns_entry *extra;	/* built at run time, may be NULL */
	size_t nextra;
	unsigned queries;
	char last[256];
};

static inline void
dns_add(struct dkim_txt *out, const char *const *strs)
{
	if (strs[0] == NULL)
		return;
	dkim_txt_add_record(out);
	for (size_t i = 0; i < MAX_STRINGS && strs[i] != NULL; i++)
		dkim_txt_add_string(out, strs[i], strlen(strs[i]));
}

static inline enum dkim_lookup_rc
dns_lookup(void *arg, const char *qname, struct dkim_txt *out)
{
	struct dns *d = arg;

	d->queries++;
	snprintf(d->last, sizeof(d->last), "%s", qname);
	for (int pass = 0; pass < 2; pass++) {
		const struct dns_entry *t = pass ? d->extra : d->tab;
		size_t n = pass ? d->nextra : d->n;

		for (size_t i = 0; t != NULL && i < n; i++) {
			if (strcasecmp(t[i].qname, qname) != 0)
				continue;
			if (t[i].rc == DKIM_LOOKUP_OK) {
				dns_add(out, t[i].rec1);
				dns_add(out, t[i].rec2);
			}
			return t[i].rc;
		}
	}
	return DKIM_LOOKUP_NOTFOUND;
}

/* The records every test serves. */
static const struct dns_entry dns_table[] = {
	/* RFC 8463 Appendix A.2, strings exactly as published */
	{ "brisbane._domainkey.football.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" },
	    { NULL } },
	{ "test._domainkey.football.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR",
	      "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC",
	      "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3",
	      "Ip3G+2kryOTIKT+l/K4w3QIDAQAB" },
	    { NULL } },
	/* our own names, same two keys */
	{ "rsa._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; k=rsa; p=" RFC8463_RSA_P }, { NULL } },
	{ "ed._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; k=ed25519; p=" RFC8463_ED_P }, { NULL } },
	{ "spf._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=spf1 -all" }, { "v=DKIM1; k=rsa; p=" RFC8463_RSA_P } },
	{ "revoked._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; k=rsa; p=" }, { NULL } },
	{ "tempfail._domainkey.example.com", DKIM_LOOKUP_TEMPFAIL,
	    { NULL }, { NULL } },
	{ "notfound._domainkey.example.com", DKIM_LOOKUP_NOTFOUND,
	    { NULL }, { NULL } },
	{ "bad._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; k=rsa;; p=" RFC8463_RSA_P }, { NULL } },
	{ "testing._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; t=y; p=" RFC8463_RSA_P }, { NULL } },
	{ "strict._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; t=s; p=" RFC8463_RSA_P }, { NULL } },
	{ "sha1only._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; h=sha1; p=" RFC8463_RSA_P }, { NULL } },
	{ "otherservice._domainkey.example.com", DKIM_LOOKUP_OK,
	    { "v=DKIM1; s=other; p=" RFC8463_RSA_P }, { NULL } },
};

static inline void
dns_init(struct dns *d)
{
	memset(d, 0, sizeof(*d));
	d->tab = dns_table;
	d->n = NELEM(dns_table);
}

#endif
