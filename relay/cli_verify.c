/*
 * cli_verify.c - `arcrelay verify`: evaluate every DKIM signature and the
 * ARC chain of a message and print one Authentication-Results header, or
 * JSON.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "report.h"
#include "zonefile.h"

static void
verify_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: arcrelay verify [--dns-file F | --resolver R] [--now EPOCH] "
	    "[--authserv-id ID] [--json] [FILE|-]\n"
	    "  --dns-file F      answer key lookups from zone file F "
	    "instead of DNS\n"
	    "  --resolver R      system (the default: /etc/resolv.conf) or "
	    "IP[@PORT]\n"
	    "  --now EPOCH       evaluate as if the time were EPOCH\n"
	    "  --authserv-id ID  the authserv-id of the header "
	    "(default: host name)\n"
	    "  --json            print one JSON object instead\n"
	    "Exit status: 0 when evaluation finished, whatever the "
	    "results; 2 on bad usage or input.\n");
}

int
cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dns-file", required_argument, NULL, 'd' },
		{ "now", required_argument, NULL, 'n' },
		{ "authserv-id", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "resolver", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dnsfile = NULL, *path = "-", *resolver = NULL;
	char authserv[256] = "";
	bool json = false;
	struct dkim_verify_opts vo;
	struct cli_dns dns = { 0 };
	struct dkim_verification *v = NULL;
	struct arc_result arc;
	struct cli_input in;
	int c, rc = EXIT_USAGE;

	dkim_verify_opts_init(&vo);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dnsfile = optarg;
			break;
		case 'n':
			if (!cli_parse_int64(optarg, &vo.now)) {
				cli_err("verify", "--now takes seconds since "
				    "the epoch, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'a':
			snprintf(authserv, sizeof(authserv), "%s", optarg);
			break;
		case 'j':
			json = true;
			break;
		case 'R':
			resolver = optarg;
			break;
		case 'h':
			verify_usage(stdout);
			return EXIT_DONE;
		default:
			verify_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		path = argv[optind++];
	if (optind < argc) {
		cli_err("verify", "one message at a time");
		return EXIT_USAGE;
	}
	if (authserv[0] == '\0' && gethostname(authserv, sizeof(authserv) - 1))
		snprintf(authserv, sizeof(authserv), "localhost");
	if (!cli_dns_open("verify", dnsfile, resolver, &dns, &vo))
		return EXIT_USAGE;
	if (!cli_read_message("verify", path, &in))
		goto out;
	if (dkim_verify(in.msg, &vo, &v) != DKIM_OK ||
	    arc_validate(in.msg, &vo, 0, &arc) != DKIM_OK) {
		cli_err("verify", "out of memory");
		dkim_verification_free(v);
		cli_input_free(&in);
		goto out;
	}
	if (json)
		report_json(stdout, v, &arc);
	else
		report_ar(stdout, authserv, v, &arc);
	rc = fflush(stdout) == 0 ? EXIT_DONE : EXIT_USAGE;
	dkim_verification_free(v);
	cli_input_free(&in);
out:
	cli_dns_close(&dns);
	return rc;
}
