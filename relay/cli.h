/*
 * cli.h - what the subcommands of the arcrelay binary share: reading a
 * message from a file or stdin, the LF-to-CRLF boundary, loading keys,
 * and the exit statuses of the CLI contract.
 */
#ifndef ARCRELAY_CLI_H
#define ARCRELAY_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "dkim.h"
#include "pdns.h"

#define EXIT_DONE	0	/* evaluation finished, whatever the result */
#define EXIT_USAGE	2	/* usage, unreadable input, not a message */

#define CLI_MAX_INPUT	((size_t)256 * 1024 * 1024)

/* An input message as read, and as the library sees it (CRLF). */
struct cli_input {
	char *raw;		/* owned: the bytes as read */
	size_t raw_len;
	char *crlf;		/* owned when converted, else == raw */
	size_t crlf_len;
	bool converted;		/* the input was LF-only */
	struct dkim_msg *msg;	/* owned */
};

/* cli_read_message - read FILE or "-" and parse it; prints the reason and
 * returns false on failure. */
bool cli_read_message(const char *prog, const char *path,
    struct cli_input *in);
void cli_input_free(struct cli_input *in);

/* cli_read_file - the whole file (or stdin for "-"), at most max bytes. */
char *cli_read_file(const char *path, size_t max, size_t *len, char *why,
    size_t whylen);

/* cli_load_key - a PEM private key (PKCS#8 or traditional). */
EVP_PKEY *cli_load_key(const char *path, char *why, size_t whylen);

struct relay_config;
struct pipeline_keys;

/* cli_keys_finish - with k->sign_key loaded: the signing domain and
 * selector, the rules and the [arc] key of cfg into k (cleared on
 * failure). */
bool cli_keys_finish(const struct relay_config *cfg, struct pipeline_keys *k,
    char *why, size_t whylen);

/* cli_public_b64 - a key record's p= value: the SubjectPublicKeyInfo
 * DER for RSA, the raw 32-byte key for Ed25519 (RFC 8463 §4.2). */
char *cli_public_b64(EVP_PKEY *k);

/* cli_key_record - the key record for k, "v=DKIM1; k=rsa|ed25519; p=..."
 * (malloc'd), or NULL. */
char *cli_key_record(EVP_PKEY *k);

/* cli_print_record - rec as a zone-file TXT line for selector._domainkey.
 * domain, in quoted character-strings of at most 255 octets. */
void cli_print_record(FILE *fp, const char *selector, const char *domain,
    const char *rec);

/* cli_parse_epoch - a non-negative decimal number of seconds. */
bool cli_parse_int64(const char *s, int64_t *out);

/* The DNS a command uses: a zone file (--dns-file) or the resolver. */
struct cli_dns {
	struct zonefile *zf;		/* owned, with --dns-file */
	struct dns_resolver *res;	/* owned, otherwise */
	struct pdns dns;	/* what policy/ and the DKIM adapter call */
};

/* cli_dns_open - answer lookups from --dns-file F, or else resolve through
 * upstream ("system" when NULL, or IP[@PORT]); point vo's key lookups at
 * it. Prints the reason and returns false on failure. */
bool cli_dns_open(const char *prog, const char *dnsfile, const char *upstream,
    struct cli_dns *d, struct dkim_verify_opts *vo);
void cli_dns_close(struct cli_dns *d);

/* cli_write_message - write prefix (CRLF lines) and then the input's
 * original bytes; an LF-only input gets the prefix with LF line ends. */
bool cli_write_message(const struct cli_input *in, const char *prefix,
    size_t len);

/* cli_split_list - "from:to:subject" as an array of names; *store owns
 * the bytes and the array is the caller's too (free both). */
char **cli_split_list(const char *list, char **store, size_t *n);

void cli_err(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The subcommands. */
int cmd_verify(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_seal(int argc, char **argv);
int cmd_testkey(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_diagnose(int argc, char **argv);
int cmd_survive(int argc, char **argv);

#endif
