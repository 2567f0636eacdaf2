/*
 * cli_keygen.c - `arcrelay keygen`: make a signing key (RSA or Ed25519),
 * write it as PEM with mode 0600, and write the TXT record to publish in
 * zone-file syntax, split into strings of at most 255 bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"

static void
keygen_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: arcrelay keygen --domain D --selector S "
	    "[--type rsa|ed25519] [--bits 2048] [--out DIR]\n"
	    "Writes DIR/S.private (PEM, mode 0600) and DIR/S.txt (the TXT "
	    "record).\n");
}

/* open_new - create path for writing with mode, refusing to overwrite. */
static FILE *
open_new(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	FILE *fp;

	if (fd < 0)
		return NULL;
	if ((fp = fdopen(fd, "w")) == NULL)
		close(fd);
	return fp;
}

int
cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "selector", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "bits", required_argument, NULL, 'b' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *domain = NULL, *selector = NULL, *outdir = ".";
	bool ed = false;
	int64_t bits = 2048;
	char path[4096], *rec = NULL;
	EVP_PKEY *k = NULL;
	FILE *fp;
	int c, rc = EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': domain = optarg; break;
		case 's': selector = optarg; break;
		case 'o': outdir = optarg; break;
		case 't':
			if (strcmp(optarg, "rsa") == 0)
				ed = false;
			else if (strcmp(optarg, "ed25519") == 0)
				ed = true;
			else {
				cli_err("keygen", "--type is rsa or ed25519, "
				    "not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'b':
			if (!cli_parse_int64(optarg, &bits) || bits < 1024 ||
			    bits > 8192) {
				cli_err("keygen", "--bits must be 1024 to "
				    "8192 (RFC 8301 forbids shorter keys)");
				return EXIT_USAGE;
			}
			break;
		case 'h':
			keygen_usage(stdout);
			return EXIT_DONE;
		default:
			keygen_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc || domain == NULL || selector == NULL ||
	    strchr(selector, '/') || selector[0] == '.') {
		cli_err("keygen", "--domain and --selector (a DNS label) are "
		    "required");
		return EXIT_USAGE;
	}
	k = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (k == NULL || (rec = cli_key_record(k)) == NULL) {
		cli_err("keygen", "key generation failed");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s.private", outdir, selector);
	if ((fp = open_new(path, 0600)) == NULL) {
		cli_err("keygen", "cannot create %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (!PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL) ||
	    fclose(fp) != 0) {
		cli_err("keygen", "cannot write %s", path);
		goto out;
	}

	snprintf(path, sizeof(path), "%s/%s.txt", outdir, selector);
	if ((fp = open_new(path, 0644)) == NULL) {
		cli_err("keygen", "cannot create %s: %s", path,
		    strerror(errno));
		goto out;
	}
	cli_print_record(fp, selector, domain, rec);
	if (fclose(fp) != 0) {
		cli_err("keygen", "cannot write %s", path);
		goto out;
	}
	printf("wrote %s/%s.private and %s\n", outdir, selector, path);
	rc = EXIT_DONE;
out:
	free(rec);
	EVP_PKEY_free(k);
	return rc;
}
