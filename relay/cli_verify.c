/*
 * cli_verify.c - `arcrelay verify`: the authentication story of a message
 * as a receiving server would tell it: every DKIM signature, the ARC
 * chain, and with an envelope (--ip, --helo, --mail-from) SPF; DMARC for
 * the author domain. One Authentication-Results header, or JSON.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cli.h"

static void
verify_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: arcrelay verify [--dns-file F | --resolver R] [--now EPOCH]\n"
	    "         [--authserv-id ID] [--ip ADDR --helo NAME --mail-from ADDR]\n"
	    "         [--dmarc-mode rfc9989|rfc7489] [--json] [FILE|-]\n"
	    "  --dns-file F      answer lookups from zone file F instead of "
	    "DNS\n"
	    "  --resolver R      system (the default: /etc/resolv.conf) or "
	    "IP[@PORT]\n"
	    "  --now EPOCH       evaluate as if the time were EPOCH\n"
	    "  --authserv-id ID  the authserv-id of the header "
	    "(default: host name)\n"
	    "  --ip, --helo, --mail-from  the SMTP envelope, for SPF and "
	    "DMARC's SPF leg;\n"
	    "                    without them SPF is not evaluated and DMARC "
	    "uses DKIM alone\n"
	    "  --dmarc-mode M    rfc9989 (DNS Tree Walk, the default) or "
	    "rfc7489 (Public\n"
	    "                    Suffix List, pct=)\n"
	    "  --json            print one JSON object instead\n"
	    "Exit status: 0 when evaluation finished, whatever the "
	    "results; 2 on bad usage or input.\n");
}

int
cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dns-file", required_argument, NULL, 'd' },
		{ "resolver", required_argument, NULL, 'R' },
		{ "now", required_argument, NULL, 'n' },
		{ "authserv-id", required_argument, NULL, 'a' },
		{ "ip", required_argument, NULL, 'i' },
		{ "helo", required_argument, NULL, 'H' },
		{ "mail-from", required_argument, NULL, 'm' },
		{ "dmarc-mode", required_argument, NULL, 'M' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dnsfile = NULL, *path = "-", *resolver = NULL;
	char authserv[256] = "", why[DKIM_WHY_MAX];
	bool json = false;
	struct auth_request ar;
	struct auth_results res;
	struct dkim_verify_opts vo;
	struct cli_dns dns = { 0 };
	struct dmarc_psl *psl = NULL;
	struct cli_input in;
	int c, rc = EXIT_USAGE;

	memset(&ar, 0, sizeof(ar));
	ar.now = (int64_t)time(NULL);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dnsfile = optarg; break;
		case 'R': resolver = optarg; break;
		case 'i': ar.ip = optarg; break;
		case 'H': ar.helo = optarg; break;
		case 'm': ar.mail_from = optarg; break;
		case 'j': json = true; break;
		case 'n':
			if (!cli_parse_int64(optarg, &ar.now)) {
				cli_err("verify", "--now takes seconds since "
				    "the epoch, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'a':
			snprintf(authserv, sizeof(authserv), "%s", optarg);
			break;
		case 'M':
			if (strcmp(optarg, "rfc9989") == 0)
				ar.dmarc_mode = DMARC_MODE_RFC9989;
			else if (strcmp(optarg, "rfc7489") == 0)
				ar.dmarc_mode = DMARC_MODE_RFC7489;
			else {
				cli_err("verify", "--dmarc-mode is rfc9989 or "
				    "rfc7489, not '%s'", optarg);
				return EXIT_USAGE;
			}
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
	if ((ar.helo || ar.mail_from) && ar.ip == NULL) {
		cli_err("verify", "--helo and --mail-from need --ip");
		return EXIT_USAGE;
	}
	if (authserv[0] == '\0' && gethostname(authserv, sizeof(authserv) - 1))
		snprintf(authserv, sizeof(authserv), "localhost");
	ar.receiver = authserv;
	if (ar.dmarc_mode == DMARC_MODE_RFC7489 && (psl = dmarc_psl_load(
	    DMARC_PSL_DEBIAN, why, sizeof(why))) == NULL) {
		cli_err("verify", "%s", why);
		return EXIT_USAGE;
	}
	ar.psl = psl;
	dkim_verify_opts_init(&vo);
	if (!cli_dns_open("verify", dnsfile, resolver, &dns, &vo))
		goto out;
	if (!cli_read_message("verify", path, &in))
		goto out;
	if (auth_evaluate(in.msg, &dns.dns, &ar, &res) != DKIM_OK) {
		cli_err("verify", "out of memory");
		auth_results_free(&res);
		cli_input_free(&in);
		goto out;
	}
	if (json)
		auth_print_json(stdout, &res);
	else if (!auth_print_ar(stdout, &res, authserv))
		cli_err("verify", "cannot write the header for authserv-id "
		    "'%s'", authserv);
	rc = fflush(stdout) == 0 ? EXIT_DONE : EXIT_USAGE;
	auth_results_free(&res);
	cli_input_free(&in);
out:
	cli_dns_close(&dns);
	dmarc_psl_free(psl);
	return rc;
}
