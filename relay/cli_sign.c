/*
 * cli_sign.c - `arcrelay sign`: prepend a DKIM-Signature and write the
 * message to stdout with every other byte unchanged. An LF-only input is
 * signed as its CRLF form and written back with LF line ends.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void
sign_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: arcrelay sign --domain D --selector S --key PEM\n"
	    "         [--algorithm rsa-sha256|ed25519-sha256] "
	    "[--canon relaxed/relaxed]\n"
	    "         [--headers from:to:subject] [--now EPOCH] "
	    "[--expire SECS] [--body-length]\n"
	    "         [--identity ADDR] [FILE|-]\n"
	    "  --algorithm     default: the key's type (rsa-sha256 for "
	    "RSA keys)\n"
	    "  --canon H/B     simple or relaxed each; default "
	    "relaxed/relaxed\n"
	    "  --headers LIST  fields to sign, colon-separated; default: the "
	    "usual list,\n"
	    "                  with From signed once more than it occurs\n"
	    "  --expire SECS   add x= SECS after t=\n"
	    "  --body-length   add l= covering the whole body\n");
}

static bool
parse_canon(const char *s, enum dkim_canon *h, enum dkim_canon *b)
{
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);

#define WORD(p, n, out) \
	((n) == 6 && strncmp((p), "simple", 6) == 0 ? \
	    (*(out) = DKIM_CANON_SIMPLE, true) : \
	 (n) == 7 && strncmp((p), "relaxed", 7) == 0 ? \
	    (*(out) = DKIM_CANON_RELAXED, true) : false)
	if (!WORD(s, hl, h))
		return false;
	*b = DKIM_CANON_SIMPLE;
	return slash == NULL || WORD(slash + 1, strlen(slash + 1), b);
#undef WORD
}

int
cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "selector", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'k' },
		{ "algorithm", required_argument, NULL, 'a' },
		{ "canon", required_argument, NULL, 'c' },
		{ "headers", required_argument, NULL, 'H' },
		{ "now", required_argument, NULL, 'n' },
		{ "expire", required_argument, NULL, 'x' },
		{ "body-length", no_argument, NULL, 'l' },
		{ "identity", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct dkim_sign_opts so;
	const char *keyfile = NULL, *path = "-", *alg = NULL;
	const char *hlist = NULL;
	char *hstore = NULL, **hv = NULL, why[DKIM_WHY_MAX] = "";
	struct dkim_buf field;
	struct cli_input in;
	enum dkim_status st;
	int c, rc = EXIT_USAGE;

	dkim_sign_opts_init(&so);
	so.now = (int64_t)time(NULL);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': so.domain = optarg; break;
		case 's': so.selector = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'a': alg = optarg; break;
		case 'i': so.identity = optarg; break;
		case 'l': so.body_length = true; break;
		case 'c':
			if (!parse_canon(optarg, &so.hcanon, &so.bcanon)) {
				cli_err("sign", "--canon takes simple or "
				    "relaxed, as H/B: not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'H':
			hlist = optarg;
			break;
		case 'n':
			if (!cli_parse_int64(optarg, &so.now)) {
				cli_err("sign", "--now takes seconds since the "
				    "epoch, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'x':
			if (!cli_parse_int64(optarg, &so.expire) ||
			    so.expire == 0) {
				cli_err("sign", "--expire takes a positive "
				    "number of seconds, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			sign_usage(stdout);
			return EXIT_DONE;
		default:
			sign_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		path = argv[optind++];
	if (optind < argc || !so.domain || !so.selector || !keyfile) {
		cli_err("sign", optind < argc ? "one message at a time" :
		    "--domain, --selector and --key are required");
		return EXIT_USAGE;
	}
	if ((so.key = cli_load_key(keyfile, why, sizeof(why))) == NULL) {
		cli_err("sign", "%s", why);
		return EXIT_USAGE;
	}
	if (alg == NULL)
		so.alg = dkim_alg_for_key(so.key);
	else if (!dkim_alg_parse(alg, strlen(alg), &so.alg) ||
	    so.alg == DKIM_ALG_RSA_SHA1) {
		cli_err("sign", "--algorithm is rsa-sha256 or ed25519-sha256, "
		    "not '%s'", alg);
		goto out_key;
	}
	if (hlist) {
		size_t n;

		if ((hv = cli_split_list(hlist, &hstore, &n)) == NULL) {
			cli_err("sign", "out of memory");
			goto out_key;
		}
		so.headers = (const char *const *)hv;
		so.nheaders = n;
	}
	if (!cli_read_message("sign", path, &in))
		goto out_key;
	dkim_buf_init(&field, 0);
	st = dkim_sign(in.msg, &so, &field, why, sizeof(why));
	if (st != DKIM_OK) {
		cli_err("sign", "%s", why[0] ? why : dkim_status_str(st));
	} else {
		rc = cli_write_message(&in, field.p, field.len) ? EXIT_DONE :
		    EXIT_USAGE;
	}
	dkim_buf_free(&field);
	cli_input_free(&in);
out_key:
	free(hv);
	free(hstore);
	EVP_PKEY_free(so.key);
	return rc;
}
