/*
 * cli_diagnose.c - `arcrelay diagnose`: for every DKIM signature and
 * ARC-Message-Signature that does not verify, the most specific cause
 * that recomputing proves (relay/diagnose.c), as text for people or as
 * one JSON object.
 *
 * Peer-supplied text (d=, s=, b=, authserv-ids, appended lines) reaches
 * the output; JSON goes through json_string, and the sentences the
 * diagnosis writes already have their quoted parts escaped.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "diagnose.h"
#include "report.h"

static void
diagnose_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: arcrelay diagnose [--dns-file F | --resolver R] "
	    "[--now EPOCH] [--json] [FILE|-]\n"
	    "  --dns-file F   answer lookups from zone file F instead of DNS\n"
	    "  --resolver R   system (the default) or IP[@PORT]\n"
	    "  --now EPOCH    evaluate as if the time were EPOCH\n"
	    "  --json         print one JSON object instead\n"
	    "For each DKIM signature and ARC-Message-Signature that fails, "
	    "the cause that\nrecomputing proves: appended lines, changed "
	    "line ends or white space, a subject\ntag, a rewritten From, "
	    "re-folding, an added field, or a key record problem;\nand "
	    "along an ARC chain, the hop after which a signature broke.\n"
	    "Exit status: 0 when the evaluation finished, whatever it found; "
	    "2 on bad usage\nor input.\n");
}

/* ------------------------------------------------------------------ text */

static void
text_sig(FILE *fp, const char *title, const struct diagnose_sig *ds)
{
	size_t k;

	fprintf(fp, "%s d=%s s=%s b=%s: %s (%s)\n", title, ds->d, ds->s,
	    ds->b, dkim_result_str(ds->result), ds->reason);
	if (ds->cause.cause != DIAGNOSE_PASS)
		fprintf(fp, "  cause: %s: %s\n",
		    diagnose_cause_str(ds->cause.cause), ds->cause.detail);
	for (k = 0; k < ds->nalso; k++)
		fprintf(fp, "  also: %s: %s\n",
		    diagnose_cause_str(ds->also[k].cause), ds->also[k].detail);
	if (ds->arc_detail[0])
		fprintf(fp, "  arc: %s\n", ds->arc_detail);
}

static void
print_text(FILE *fp, const struct diagnose_report *r)
{
	size_t k, j;
	char title[64];

	if (r->nsig == 0)
		fprintf(fp, "no DKIM signatures\n");
	for (k = 0; k < r->nsig; k++)
		text_sig(fp, "DKIM-Signature", &r->sig[k]);
	for (k = 0; k < r->nhop; k++) {
		const struct diagnose_hop *hop = &r->hop[k];

		snprintf(title, sizeof(title), "ARC-Message-Signature i=%u",
		    hop->instance);
		if (hop->has_ams)
			text_sig(fp, title, &hop->ams);
		else
			fprintf(fp, "%s: missing or unreadable\n", title);
		if (!hop->has_aar) {
			fprintf(fp, "  no readable ARC-Authentication-Results "
			    "i=%u\n", hop->instance);
			continue;
		}
		fprintf(fp, "  hop %u (%s) recorded:", hop->instance,
		    hop->authserv_id[0] ? hop->authserv_id : "no authserv-id");
		if (hop->nrec == 0)
			fprintf(fp, " no dkim results");
		for (j = 0; j < hop->nrec; j++)
			fprintf(fp, "%s dkim=%s header.d=%s%s%s", j ? ";" : "",
			    hop->rec[j].result, hop->rec[j].d,
			    hop->rec[j].b[0] ? " header.b=" : "",
			    hop->rec[j].b);
		fputc('\n', fp);
	}
	if (r->nhop > 0)
		fprintf(fp, "ARC chain: %s (%s)\n", arc_cv_str(r->chain.cv),
		    r->chain.reason);
	if (r->broke_after_hop)
		fprintf(fp, "broke after hop %u\n", r->broke_after_hop);
}

/* ------------------------------------------------------------------ JSON */

/* member - ',"name":"value"' (no comma when first). */
static void
member(FILE *fp, bool first, const char *name, const char *value)
{
	fprintf(fp, "%s\"%s\":", first ? "" : ",", name);
	json_string(fp, value);
}

/* member_hop - ',"name":N', or null for hop 0. */
static void
member_hop(FILE *fp, const char *name, unsigned hop)
{
	fprintf(fp, ",\"%s\":", name);
	if (hop)
		fprintf(fp, "%u", hop);
	else
		fputs("null", fp);
}

static void
json_finding(FILE *fp, const struct diagnose_finding *f)
{
	member(fp, true, "cause", diagnose_cause_str(f->cause));
	member(fp, false, "detail", f->cause == DIAGNOSE_PASS ?
	    "the signature verifies" : f->detail);
}

static void
json_sig(FILE *fp, const struct diagnose_sig *ds)
{
	size_t k;

	member(fp, true, "d", ds->d);
	member(fp, false, "s", ds->s);
	member(fp, false, "b", ds->b);
	member(fp, false, "result", dkim_result_str(ds->result));
	member(fp, false, "reason", ds->reason);
	fputc(',', fp);
	json_finding(fp, &ds->cause);
	fprintf(fp, ",\"appended_lines\":%llu,\"first_appended_line\":",
	    (unsigned long long)ds->appended_lines);
	if (ds->first_appended)
		json_string(fp, ds->first_appended);
	else
		fputs("null", fp);
	fprintf(fp, ",\"testing\":%s,\"also\":[", ds->key_testing ? "true" :
	    "false");
	for (k = 0; k < ds->nalso; k++) {
		fputs(k ? ",{" : "{", fp);
		json_finding(fp, &ds->also[k]);
		fputc('}', fp);
	}
	fputc(']', fp);
}

static void
print_json(FILE *fp, const struct diagnose_report *r)
{
	size_t k, j;

	fputs("{\"signatures\":[", fp);
	for (k = 0; k < r->nsig; k++) {
		const struct diagnose_sig *ds = &r->sig[k];

		fputs(k ? ",{" : "{", fp);
		json_sig(fp, ds);
		member_hop(fp, "passed_at_hop", ds->passed_at_hop);
		member_hop(fp, "broke_after_hop", ds->broke_after_hop);
		member(fp, false, "arc_detail", ds->arc_detail);
		fputc('}', fp);
	}
	fputs("],\"arc\":[", fp);
	for (k = 0; k < r->nhop; k++) {
		const struct diagnose_hop *hop = &r->hop[k];

		fprintf(fp, "%s{\"i\":%u", k ? "," : "", hop->instance);
		member(fp, false, "authserv_id", hop->authserv_id);
		member(fp, false, "ams", hop->has_ams ?
		    dkim_result_str(hop->ams.result) : "missing");
		if (hop->has_ams) {
			fputc(',', fp);
			json_sig(fp, &hop->ams);
		}
		fputs(",\"recorded\":[", fp);
		for (j = 0; j < hop->nrec; j++) {
			fputs(j ? ",{" : "{", fp);
			member(fp, true, "result", hop->rec[j].result);
			member(fp, false, "d", hop->rec[j].d);
			member(fp, false, "s", hop->rec[j].s);
			member(fp, false, "b", hop->rec[j].b);
			fputc('}', fp);
		}
		fputs("]}", fp);
	}
	fputs("],\"arc_chain\":{", fp);
	member(fp, true, "result", arc_cv_str(r->chain.cv));
	member(fp, false, "reason", r->chain.reason);
	fputc('}', fp);
	member_hop(fp, "broke_after_hop", r->broke_after_hop);
	fputs("}\n", fp);
}

int
cmd_diagnose(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dns-file", required_argument, NULL, 'd' },
		{ "resolver", required_argument, NULL, 'R' },
		{ "now", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dnsfile = NULL, *resolver = NULL, *path = "-";
	struct diagnose_opts dopt;
	struct diagnose_report *rep = NULL;
	struct dkim_verify_opts vo;
	struct cli_dns dns = { 0 };
	struct cli_input in;
	bool json = false;
	int c, rc = EXIT_USAGE;

	memset(&dopt, 0, sizeof(dopt));
	dopt.now = (int64_t)time(NULL);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dnsfile = optarg; break;
		case 'R': resolver = optarg; break;
		case 'j': json = true; break;
		case 'n':
			if (!cli_parse_int64(optarg, &dopt.now)) {
				cli_err("diagnose", "--now takes seconds since "
				    "the epoch, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			diagnose_usage(stdout);
			return EXIT_DONE;
		default:
			diagnose_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		path = argv[optind++];
	if (optind < argc) {
		cli_err("diagnose", "one message at a time");
		return EXIT_USAGE;
	}
	dkim_verify_opts_init(&vo);
	if (!cli_dns_open("diagnose", dnsfile, resolver, &dns, &vo))
		goto out;
	if (!cli_read_message("diagnose", path, &in))
		goto out;
	dopt.dns = &dns.dns;
	if (diagnose_message(in.msg, &dopt, &rep) != DKIM_OK) {
		cli_err("diagnose", "out of memory");
	} else {
		if (json)
			print_json(stdout, rep);
		else
			print_text(stdout, rep);
		rc = fflush(stdout) == 0 ? EXIT_DONE : EXIT_USAGE;
	}
	diagnose_report_free(rep);
	cli_input_free(&in);
out:
	cli_dns_close(&dns);
	return rc;
}
