/*
 * cli_seal.c - `arcrelay seal`: verify the incoming DKIM signatures and
 * ARC chain, then add ARC set N+1 (AS, AMS, AAR, in that order) and print
 * the message. With --use-authres the AAR carries the results of the
 * message's own Authentication-Results fields for our authserv-id.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"
#include "auth.h"
#include "zonefile.h"

static void
seal_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: arcrelay seal --domain D --selector S --key PEM "
	    "--authserv-id ID\n"
	    "         [--dns-file F | --resolver R] [--now EPOCH] "
	    "[--headers a:b:c] "
	    "[--use-authres] [FILE|-]\n"
	    "  --headers LIST  fields the ARC-Message-Signature covers "
	    "(default: the ARC list)\n"
	    "  --use-authres   take the AAR results from the message's "
	    "Authentication-Results\n"
	    "                  fields for ID instead of computing them\n");
}

/*
 * authres_results - the resinfo text of every Authentication-Results
 * field whose authserv-id is id, top to bottom, joined with "; ".
 */
static bool
authres_results(const struct dkim_msg *msg, const char *id,
    struct dkim_buf *out)
{
	size_t j;
	bool any = false;

	for (j = 0; j < msg->nfields; j++) {
		const struct dkim_field *f = &msg->fields[j];
		const char *p = f->raw + f->value_off, *end = f->raw + f->raw_len;
		const char *semi;

		/* Whose header it is, as the A-R parser decides it; the
		 * results are then copied as written, comments and all. */
		if (!dkim_field_is(f, "Authentication-Results") ||
		    !authres_is_ours(p, (size_t)(end - p), id))
			continue;
		if ((semi = memchr(p, ';', (size_t)(end - p))) == NULL)
			continue;	/* "id" alone, or "id; none" below */
		p = semi + 1;
		while (p < end && strchr(" \t\r\n", *p))
			p++;
		while (end > p && strchr(" \t\r\n;", end[-1]))
			end--;
		if (p == end || ((size_t)(end - p) == 4 &&
		    strncasecmp(p, "none", 4) == 0))
			continue;
		if (any)
			dkim_buf_adds(out, "; ");
		dkim_buf_add(out, p, (size_t)(end - p));
		any = true;
	}
	return !out->failed;
}

int
cmd_seal(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "selector", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'k' },
		{ "authserv-id", required_argument, NULL, 'a' },
		{ "dns-file", required_argument, NULL, 'D' },
		{ "now", required_argument, NULL, 'n' },
		{ "headers", required_argument, NULL, 'H' },
		{ "use-authres", no_argument, NULL, 'u' },
		{ "resolver", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct arc_seal_opts so;
	struct dkim_verify_opts vo;
	struct auth_request ar;
	struct auth_results res;
	struct cli_dns dns = { 0 };
	struct cli_input in;
	struct dkim_buf results, fields;
	const char *keyfile = NULL, *dnsfile = NULL, *path = "-";
	const char *resolver = NULL;
	const char *hlist = NULL;
	char *hstore = NULL, **hv = NULL;
	char why[DKIM_WHY_MAX] = "";
	bool use_authres = false;
	size_t nh = 0;
	int c, rc = EXIT_USAGE;

	arc_seal_opts_init(&so);
	dkim_verify_opts_init(&vo);
	so.now = vo.now;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': so.domain = optarg; break;
		case 's': so.selector = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'a': so.authserv_id = optarg; break;
		case 'D': dnsfile = optarg; break;
		case 'H': hlist = optarg; break;
		case 'u': use_authres = true; break;
		case 'n':
			if (!cli_parse_int64(optarg, &vo.now)) {
				cli_err("seal", "--now takes seconds since the "
				    "epoch, not '%s'", optarg);
				return EXIT_USAGE;
			}
			so.now = vo.now;
			break;
		case 'R':
			resolver = optarg;
			break;
		case 'h':
			seal_usage(stdout);
			return EXIT_DONE;
		default:
			seal_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		path = argv[optind++];
	if (optind < argc || !so.domain || !so.selector || !keyfile ||
	    !so.authserv_id) {
		cli_err("seal", optind < argc ? "one message at a time" :
		    "--domain, --selector, --key and --authserv-id are "
		    "required");
		return EXIT_USAGE;
	}
	if ((so.key = cli_load_key(keyfile, why, sizeof(why))) == NULL) {
		cli_err("seal", "%s", why);
		return EXIT_USAGE;
	}
	so.alg = dkim_alg_for_key(so.key);
	if (hlist) {
		if ((hv = cli_split_list(hlist, &hstore, &nh)) == NULL) {
			cli_err("seal", "out of memory");
			goto out_key;
		}
		so.headers = (const char *const *)hv;
		so.nheaders = nh;
	}
	if (!cli_dns_open("seal", dnsfile, resolver, &dns, &vo))
		goto out_key;
	if (!cli_read_message("seal", path, &in))
		goto out_key;
	dkim_buf_init(&results, 0);
	dkim_buf_init(&fields, 0);
	memset(&ar, 0, sizeof(ar));
	ar.now = vo.now;
	ar.receiver = so.authserv_id;
	if (auth_evaluate(in.msg, &dns.dns, &ar, &res) != DKIM_OK) {
		cli_err("seal", "out of memory");
		goto out;
	}
	if (use_authres)
		authres_results(in.msg, so.authserv_id, &results);
	else
		auth_aar_results(&res, so.authserv_id, &results);
	so.results = results.p;
	if (arc_seal(in.msg, &res.arc, &so, &fields, why, sizeof(why)) !=
	    DKIM_OK) {
		cli_err("seal", "%s", why);
		goto out;
	}
	rc = cli_write_message(&in, fields.p, fields.len) ? EXIT_DONE :
	    EXIT_USAGE;
out:
	auth_results_free(&res);
	dkim_buf_free(&results);
	dkim_buf_free(&fields);
	cli_input_free(&in);
out_key:
	cli_dns_close(&dns);
	free(hv);
	free(hstore);
	EVP_PKEY_free(so.key);
	return rc;
}
