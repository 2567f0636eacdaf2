/*
 * cli_common.c - input handling for the CLI. This is the boundary where
 * LF-only files become CRLF messages (once, here, never in the library),
 * and where unreadable or oversized input becomes one clear line on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cli.h"
#include "config.h"
#include "pipeline.h"
#include "dns.h"
#include "zonefile.h"

void
cli_err(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "arcrelay %s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

char *
cli_read_file(const char *path, size_t max, size_t *len, char *why,
    size_t whylen)
{
	FILE *fp;
	char *buf = NULL, *nb;
	size_t cap = 0, n = 0, got;

	if (strcmp(path, "-") == 0)
		fp = stdin;
	else if ((fp = fopen(path, "rb")) == NULL) {
		snprintf(why, whylen, "cannot open %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	for (;;) {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 131072;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				snprintf(why, whylen, "out of memory");
				goto fail;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, fp);
		n += got;
		if (n > max) {
			snprintf(why, whylen, "%s is larger than %zu bytes",
			    path, max);
			goto fail;
		}
		if (got == 0)
			break;
	}
	if (ferror(fp)) {
		snprintf(why, whylen, "cannot read %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (fp != stdin)
		fclose(fp);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	if (fp != stdin)
		fclose(fp);
	free(buf);
	return NULL;
}

bool
cli_read_message(const char *prog, const char *path, struct cli_input *in)
{
	char why[DKIM_WHY_MAX];
	enum dkim_status st;

	memset(in, 0, sizeof(*in));
	in->raw = cli_read_file(path, CLI_MAX_INPUT, &in->raw_len, why,
	    sizeof(why));
	if (in->raw == NULL) {
		cli_err(prog, "%s", why);
		return false;
	}
	in->crlf = dkim_crlf_from_lf(in->raw, in->raw_len, &in->crlf_len,
	    &in->converted);
	if (in->crlf == NULL) {
		in->crlf = in->raw;
		in->crlf_len = in->raw_len;
	}
	why[0] = '\0';
	st = dkim_msg_parse(in->crlf, in->crlf_len, NULL, &in->msg, why,
	    sizeof(why));
	if (st != DKIM_OK) {
		cli_err(prog, "%s: not a message: %s", path,
		    why[0] ? why : dkim_status_str(st));
		cli_input_free(in);
		return false;
	}
	return true;
}

void
cli_input_free(struct cli_input *in)
{
	dkim_msg_free(in->msg);
	if (in->crlf != in->raw)
		free(in->crlf);
	free(in->raw);
	memset(in, 0, sizeof(*in));
}

EVP_PKEY *
cli_load_key(const char *path, char *why, size_t whylen)
{
	char *pem;
	size_t len;
	BIO *bio;
	EVP_PKEY *k;

	if ((pem = cli_read_file(path, 1024 * 1024, &len, why, whylen)) == NULL)
		return NULL;
	bio = BIO_new_mem_buf(pem, (int)len);
	k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	free(pem);
	if (k == NULL)
		snprintf(why, whylen, "%s holds no PEM private key", path);
	return k;
}

bool
cli_parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end != '\0' || v < 0)
		return false;
	*out = (int64_t)v;
	return true;
}

bool
cli_dns_open(const char *prog, const char *dnsfile, const char *upstream,
    struct cli_dns *d, struct dkim_verify_opts *vo)
{
	char why[DKIM_WHY_MAX];

	memset(d, 0, sizeof(*d));
	if (dnsfile == NULL) {
		struct dns_config cfg = { upstream, 0, NULL };

		if ((d->res = dns_resolver_new(&cfg, why, sizeof(why))) ==
		    NULL) {
			cli_err(prog, "%s", why);
			return false;
		}
		d->dns = dns_pdns(d->res);
	} else {
		if ((d->zf = zonefile_load(dnsfile, why, sizeof(why))) ==
		    NULL) {
			cli_err(prog, "%s", why);
			return false;
		}
		d->dns.fn = zonefile_lookup;
		d->dns.arg = d->zf;
	}
	vo->lookup = pdns_dkim_lookup;
	vo->lookup_arg = &d->dns;
	return true;
}

void
cli_dns_close(struct cli_dns *d)
{
	zonefile_free(d->zf);
	dns_resolver_free(d->res);
	memset(d, 0, sizeof(*d));
}

bool
cli_write_message(const struct cli_input *in, const char *prefix, size_t len)
{
	size_t i;

	if (in->converted) {
		for (i = 0; i < len; i++)
			if (!(prefix[i] == '\r' && i + 1 < len &&
			    prefix[i + 1] == '\n'))
				fputc(prefix[i], stdout);
	} else {
		fwrite(prefix, 1, len, stdout);
	}
	fwrite(in->raw, 1, in->raw_len, stdout);
	return fflush(stdout) == 0 && !ferror(stdout);
}

char **
cli_split_list(const char *list, char **store, size_t *n)
{
	char **v, *tok, *save = NULL;

	*n = 0;
	if ((*store = strdup(list)) == NULL)
		return NULL;
	if ((v = calloc(strlen(list) / 2 + 2, sizeof(*v))) == NULL) {
		free(*store);
		*store = NULL;
		return NULL;
	}
	for (tok = strtok_r(*store, ":", &save); tok;
	    tok = strtok_r(NULL, ":", &save))
		v[(*n)++] = tok;
	return v;
}

char *
cli_public_b64(EVP_PKEY *k)
{
	unsigned char raw[32], *der = NULL;
	size_t rawlen = sizeof(raw);
	char *b64;
	int n;

	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(k, raw, &rawlen) != 1)
			return NULL;
		return dkim_b64_encode(raw, rawlen);
	}
	if ((n = i2d_PUBKEY(k, &der)) <= 0)
		return NULL;
	b64 = dkim_b64_encode(der, (size_t)n);
	OPENSSL_free(der);
	return b64;
}

char *
cli_key_record(EVP_PKEY *k)
{
	struct dkim_buf rec;
	char *b64 = cli_public_b64(k);

	if (b64 == NULL)
		return NULL;
	dkim_buf_init(&rec, 0);
	dkim_buf_addf(&rec, "v=DKIM1; k=%s; p=%s",
	    EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? "ed25519" : "rsa",
	    b64);
	free(b64);
	if (rec.failed) {
		dkim_buf_free(&rec);
		return NULL;
	}
	return rec.p;
}

void
cli_print_record(FILE *fp, const char *selector, const char *domain,
    const char *rec)
{
	size_t len = strlen(rec);

	fprintf(fp, "%s._domainkey.%s. IN TXT (", selector, domain);
	for (size_t off = 0; off < len; off += 255) {
		size_t n = len - off > 255 ? 255 : len - off;

		fprintf(fp, "\n    \"%.*s\"", (int)n, rec + off);
	}
	fprintf(fp, " )\n");
}

bool
cli_keys_finish(const struct relay_config *cfg, struct pipeline_keys *k,
    char *why, size_t whylen)
{
	k->sign_domain = strdup(cfg->sign_domain);
	k->sign_selector = strdup(cfg->sign_selector);
	k->rules = rules_ref(cfg->rules);
	if (cfg->arc_key) {
		if ((k->arc_key = cli_load_key(cfg->arc_key, why, whylen)) ==
		    NULL) {
			pipeline_keys_clear(k);
			return false;
		}
		k->arc_domain = strdup(cfg->arc_domain ? cfg->arc_domain :
		    cfg->sign_domain);
		k->arc_selector = strdup(cfg->arc_selector ?
		    cfg->arc_selector : cfg->sign_selector);
	}
	if (k->sign_domain == NULL || k->sign_selector == NULL ||
	    (cfg->arc_key && (k->arc_domain == NULL ||
	    k->arc_selector == NULL))) {
		snprintf(why, whylen, "out of memory");
		pipeline_keys_clear(k);
		return false;
	}
	return true;
}
