/*
 * cli_testkey.c - `arcrelay testkey`: is the published key record for a
 * selector usable with this private key? Each problem is named on its own
 * line; the exit status is 0 when the record is fine, 1 when there are
 * problems, 2 for usage errors.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void
testkey_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: arcrelay testkey --domain D --selector S --key PEM "
	    "[--dns-file F | --resolver R]\n"
	    "Checks that S._domainkey.D publishes a record that parses, "
	    "matches the key,\nis not revoked or in test mode, is long "
	    "enough, and fits DNS limits.\n");
}

int
cmd_testkey(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "selector", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'k' },
		{ "dns-file", required_argument, NULL, 'D' },
		{ "resolver", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *domain = NULL, *selector = NULL, *keyfile = NULL;
	const char *dnsfile = NULL, *resolver = NULL;
	struct dkim_verify_opts vo;
	struct cli_dns dns = { 0 };
	struct pdns_answer ans;
	struct dkim_key *key = NULL;
	EVP_PKEY *priv = NULL;
	char qname[512], why[DKIM_WHY_MAX];
	enum pdns_rc rc;
	size_t i, problems = 0;
	int c, status = EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': domain = optarg; break;
		case 's': selector = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'D': dnsfile = optarg; break;
		case 'R': resolver = optarg; break;
		case 'h':
			testkey_usage(stdout);
			return EXIT_DONE;
		default:
			testkey_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc || !domain || !selector || !keyfile) {
		cli_err("testkey", "--domain, --selector and --key are "
		    "required");
		return EXIT_USAGE;
	}
	if ((priv = cli_load_key(keyfile, why, sizeof(why))) == NULL) {
		cli_err("testkey", "%s", why);
		return EXIT_USAGE;
	}
	dkim_verify_opts_init(&vo);
	if (!cli_dns_open("testkey", dnsfile, resolver, &dns, &vo))
		goto out;
	snprintf(qname, sizeof(qname), "%s._domainkey.%s", selector, domain);
	printf("record: %s\n", qname);
#define PROBLEM(...) do { printf("problem: "); printf(__VA_ARGS__); \
	printf("\n"); problems++; } while (0)
	rc = pdns_lookup(&dns.dns, qname, PDNS_TXT, &ans);
	if (rc != PDNS_OK) {
		PROBLEM("no record (%s)", pdns_rc_str(rc));
		goto report;
	}
	if (ans.n > 1)
		PROBLEM("%zu TXT records at the name; verifiers may pick any",
		    ans.n);
	for (i = 0; i < ans.n; i++) {
		const struct pdns_rr *r = &ans.rr[i];

		if (r->txt_longest > 255)
			PROBLEM("a string of %zu bytes: DNS allows 255 per "
			    "string (split it into several quoted strings)",
			    r->txt_longest);
		if (r->txt_len > 4000)
			PROBLEM("record of %zu bytes: too large for many "
			    "resolvers", r->txt_len);
	}
	why[0] = '\0';
	if (dkim_key_parse(ans.rr[0].txt, ans.rr[0].txt_len, &key, why,
	    sizeof(why)) != DKIM_OK) {
		PROBLEM("bad key record syntax (%s)", why);
		goto report;
	}
	if (key->revoked) {
		PROBLEM("key revoked (p= is empty)");
		goto report;
	}
	if (key->testing)
		PROBLEM("key in test mode (t=y): receivers may treat "
		    "failures as passes");
	if (!key->allow_sha256)
		PROBLEM("h= does not allow sha256");
	if (!key->email_ok)
		PROBLEM("s= does not allow email");
	if (key->type == DKIM_KEY_RSA && key->bits < 1024)
		PROBLEM("key too short (%u bits; RFC 8301 requires 1024, "
		    "2048 is usual)", key->bits);
	if ((key->type == DKIM_KEY_ED25519) !=
	    (EVP_PKEY_get_base_id(priv) == EVP_PKEY_ED25519))
		PROBLEM("the record is k=%s but the private key is %s",
		    key->type == DKIM_KEY_ED25519 ? "ed25519" : "rsa",
		    EVP_PKEY_get_base_id(priv) == EVP_PKEY_ED25519 ?
		    "ed25519" : "rsa");
	else if (EVP_PKEY_eq(key->pkey, priv) != 1)
		PROBLEM("the published key does not match the private key");
	if (problems == 0)
		printf("ok: %s key, %u bits%s\n", key->type == DKIM_KEY_RSA ?
		    "rsa" : "ed25519", key->bits,
		    ans.secure ? ", DNSSEC-secured" : "");
report:
	pdns_answer_clear(&ans);
	status = problems ? 1 : EXIT_DONE;
out:
	dkim_key_free(key);
	cli_dns_close(&dns);
	EVP_PKEY_free(priv);
	return status;
}
