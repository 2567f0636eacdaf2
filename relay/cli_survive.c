/*
 * cli_survive.c - `arcrelay survive`: will this message survive DMARC
 * after arcrelay has handled it for this recipient?
 *
 * The message goes through pipeline_process, the function the daemon's
 * workers run, with the rules of the given configuration. The output is
 * then judged as the downstream receiver would judge it: every DKIM
 * signature, SPF of the relay's address for the (rewritten) envelope
 * sender, DMARC for the final From, the ARC chain; and DMARC once more for
 * a receiver that trusts this sealer's ARC results (RFC 7489 §6.7, a local
 * policy override).
 *
 * When the relay's own key record is not in DNS (a key just made, a test
 * zone), the judgement assumes it is published, and says so.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cli.h"
#include "config.h"
#include "pipeline.h"
#include "rcpt.h"
#include "report.h"

static void
survive_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: arcrelay survive [--config F] [--dns-file F] [--rcpt ADDR]\n"
	    "         [--relay-ip IP] [--client-ip IP --helo NAME] "
	    "[--mail-from ADDR]\n"
	    "         [--now EPOCH] [--output FILE] [--json] [FILE|-]\n"
	    "  --config F       the daemon's configuration (default: the "
	    "embedded one)\n"
	    "  --dns-file F     answer lookups from zone file F instead of "
	    "DNS\n"
	    "  --rcpt ADDR      the recipient (default: the first list or "
	    "forward)\n"
	    "  --relay-ip IP    the address downstream sees the relay send "
	    "from (SPF)\n"
	    "  --client-ip IP, --helo NAME  where the message came from "
	    "(SPF before)\n"
	    "  --mail-from ADDR the envelope sender (default: Return-Path, "
	    "else From)\n"
	    "  --output FILE    also write the message as the relay would "
	    "send it\n"
	    "  --json           print one JSON object instead of the table\n"
	    "Verdicts: survives-aligned-dkim, survives-aligned-spf, "
	    "survives-no-policy,\n"
	    "survives-if-arc-trusted, fails. Exit status: 0 when the "
	    "evaluation finished.\n");
}

/* ------------------------------------------------------ our key record */

/* DNS with the relay's own key records answered when DNS has none. */
struct overlay {
	struct pdns inner;
	char name[2][300];
	char *rec[2];
	bool used;
};

static enum pdns_rc
overlay_lookup(void *arg, const char *qname, enum pdns_type type,
    struct pdns_answer *out)
{
	struct overlay *ov = arg;
	enum pdns_rc rc = pdns_lookup(&ov->inner, qname, type, out);
	size_t i, n = strlen(qname);

	if (type != PDNS_TXT || (rc != PDNS_NXDOMAIN && rc != PDNS_NODATA))
		return rc;
	if (n > 0 && qname[n - 1] == '.')
		n--;
	for (i = 0; i < 2; i++)
		if (ov->rec[i] != NULL && strlen(ov->name[i]) == n &&
		    strncasecmp(ov->name[i], qname, n) == 0) {
			pdns_answer_clear(out);
			if (!pdns_add_txt(out, ov->rec[i], strlen(ov->rec[i])))
				return PDNS_TEMPFAIL;
			ov->used = true;
			return PDNS_OK;
		}
	return rc;
}

static void
overlay_add(struct overlay *ov, int i, EVP_PKEY *k, const char *sel,
    const char *dom)
{
	if (k == NULL)
		return;
	snprintf(ov->name[i], sizeof(ov->name[i]), "%s._domainkey.%s", sel,
	    dom);
	ov->rec[i] = cli_key_record(k);
}

/* survive_keys - the configured keys; for the embedded default without
 * a key file yet, a key made for this run (nothing is written). */
static bool
survive_keys(const struct relay_config *cfg, struct pipeline_keys *k)
{
	char why[512];

	memset(k, 0, sizeof(*k));
	if (cfg->path == NULL && access(cfg->sign_key, F_OK) != 0)
		k->sign_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
		    (size_t)2048);
	else
		k->sign_key = cli_load_key(cfg->sign_key, why, sizeof(why));
	if (k->sign_key == NULL) {
		cli_err("survive", "%s", cfg->path ? why :
		    "cannot make a signing key");
		return false;
	}
	if (!cli_keys_finish(cfg, k, why, sizeof(why))) {
		cli_err("survive", "%s", why);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ envelope */

/* angle_addr - the address inside <...> of a field value (or the bare
 * value), into out. */
static void
angle_addr(const struct dkim_field *f, char *out, size_t outlen)
{
	const char *v = f->raw + f->value_off, *e = f->raw + f->raw_len;
	const char *lt = memchr(v, '<', (size_t)(e - v)), *gt;

	if (lt != NULL && (gt = memchr(lt, '>', (size_t)(e - lt))) != NULL) {
		v = lt + 1;
		e = gt;
	}
	while (v < e && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		e--;
	snprintf(out, outlen, "%.*s", (int)(e - v), v);
}

static void
default_sender(const struct dkim_msg *m, char *out, size_t outlen)
{
	size_t i;

	out[0] = '\0';
	for (i = 0; i < m->nfields; i++)
		if (dkim_field_is(&m->fields[i], "Return-Path")) {
			angle_addr(&m->fields[i], out, outlen);
			return;
		}
	for (i = 0; i < m->nfields; i++)
		if (dkim_field_is(&m->fields[i], "From")) {
			angle_addr(&m->fields[i], out, outlen);
			return;
		}
}

static const char *
default_rcpt(const struct relay_config *cfg)
{
	if (cfg->rules != NULL && cfg->rules->nlists > 0)
		return cfg->rules->lists[0].addr;
	if (cfg->rules != NULL && cfg->rules->nforwards > 0)
		return cfg->rules->forwards[0].addr;
	return NULL;
}

/*
 * rcpt_accepted - the RCPT check the daemon makes before DATA
 * (rcpt_check, as a client that is not on loopback would meet it, except
 * under the embedded default, which takes every recipient from the local
 * user). False with the reason in why.
 */
static bool
rcpt_accepted(const struct relay_config *cfg, const char *rcpt,
    const char *sender, int64_t now, char *why, size_t whylen)
{
	char reply[RULES_ADDR_MAX + 200];
	const char *text = reply;

	if (rcpt_check(cfg, cfg->loopback_any_rcpt, sender, rcpt, now, reply,
	    sizeof(reply)))
		return true;
	/* "550 5.7.1 relaying denied": the words after the codes */
	while (*text != '\0' && *text != ' ')
		text++;
	while (*text == ' ')
		text++;
	while (*text != '\0' && *text != ' ')
		text++;
	while (*text == ' ')
		text++;
	snprintf(why, whylen, "refused at RCPT: %s", text);
	return false;
}

/* ------------------------------------------------------------- verdict */

struct judgement {
	struct dmarc_result trusted;	/* DMARC with our ARC trusted */
	char trusted_note[200];
	const char *verdict;
	char reason[2048];
};

/* aligned_dkim - the passing DKIM signature DMARC aligned with, if any. */
static const struct dkim_sigresult *
aligned_dkim(const struct auth_results *a)
{
	size_t i;

	if (a->dkim == NULL || !a->dmarc.dkim_aligned)
		return NULL;
	for (i = 0; i < a->dkim->n; i++)
		if (a->dkim->r[i].result == DKIM_RES_PASS &&
		    strcasecmp(a->dkim->r[i].d, a->dmarc.aligned_domain) ==
		    0)
			return &a->dkim->r[i];
	return NULL;
}

static void
judge(const struct auth_results *before, const struct auth_results *after,
    const char *sealer, struct judgement *j)
{
	const struct dkim_sigresult *dk = aligned_dkim(after);
	bool arc_ok = after->arc.cv == DKIM_CV_PASS;

	j->trusted = after->dmarc;
	if (after->dmarc.result == DMARC_RES_FAIL && arc_ok &&
	    before->dmarc.result == DMARC_RES_PASS) {
		j->trusted.result = DMARC_RES_PASS;
		snprintf(j->trusted.reason, sizeof(j->trusted.reason),
		    "local policy override (RFC 7489 §6.7): the ARC chain "
		    "validates and %s recorded dmarc=pass on arrival", sealer);
	} else if (after->dmarc.result == DMARC_RES_FAIL) {
		snprintf(j->trusted_note, sizeof(j->trusted_note), "%s",
		    !arc_ok ? "no override: the ARC chain does not validate" :
		    "no override: the message did not pass DMARC on arrival "
		    "either");
	}

	if (after->dmarc.result == DMARC_RES_PASS && dk != NULL) {
		j->verdict = "survives-aligned-dkim";
		snprintf(j->reason, sizeof(j->reason), "the DKIM signature of "
		    "d=%s passes and aligns with From domain %s",
		    dk->d, after->dmarc.author_domain);
	} else if (after->dmarc.result == DMARC_RES_PASS) {
		j->verdict = "survives-aligned-spf";
		snprintf(j->reason, sizeof(j->reason), "only SPF aligns (%s "
		    "for %s): one more forwarding hop breaks it",
		    spf_res_str(after->spf_mailfrom.result),
		    after->spf_mailfrom.domain);
	} else if (after->dmarc.result == DMARC_RES_NONE) {
		j->verdict = "survives-no-policy";
		snprintf(j->reason, sizeof(j->reason), "From domain %s "
		    "publishes no DMARC policy: %s", after->dmarc.author_domain,
		    after->dmarc.reason);
	} else if (j->trusted.result == DMARC_RES_PASS) {
		j->verdict = "survives-if-arc-trusted";
		snprintf(j->reason, sizeof(j->reason), "DMARC fails after "
		    "the relay (%s); a receiver that trusts %s's ARC seal "
		    "accepts it", after->dmarc.reason, sealer);
	} else {
		j->verdict = "fails";
		snprintf(j->reason, sizeof(j->reason), "DMARC %s after the "
		    "relay: %s; %s", dmarc_res_str(after->dmarc.result),
		    after->dmarc.reason, j->trusted_note[0] ? j->trusted_note :
		    "and ARC cannot help");
		return;
	}
	/* A list that rewrites From makes a message pass under its own
	 * domain whatever it was on arrival: say so when it was not (with
	 * the envelope known, so that SPF had its say). */
	if (before->have_envelope && before->dmarc.result == DMARC_RES_FAIL &&
	    after->dmarc.result == DMARC_RES_PASS &&
	    strcasecmp(before->dmarc.author_domain,
	    after->dmarc.author_domain) != 0) {
		size_t n = strlen(j->reason);

		snprintf(j->reason + n, sizeof(j->reason) - n, "; but it "
		    "failed DMARC for %s on arrival and passes only because "
		    "From was rewritten", before->dmarc.author_domain);
	}
}

/* --------------------------------------------------------------- output */

static void
print_json(const struct auth_results *before,
    const struct auth_results *after, const struct judgement *j,
    const char *rcpt, const char *rule, const char *sender,
    const struct overlay *ov)
{
	fputs("{\"rcpt\":", stdout);
	json_string(stdout, rcpt);
	fputs(",\"rule\":", stdout);
	json_string(stdout, rule);
	fputs(",\"sender\":", stdout);
	json_string(stdout, sender);
	fputs(",\"before\":", stdout);
	auth_print_json_obj(stdout, before);
	fputs(",\"after\":", stdout);
	auth_print_json_obj(stdout, after);
	fputs(",\"after_trusted_arc\":{\"dmarc\":", stdout);
	auth_print_dmarc_json(stdout, &j->trusted, j->trusted_note);
	fputs("},\"verdict\":", stdout);
	json_string(stdout, j->verdict);
	fputs(",\"reason\":", stdout);
	json_string(stdout, j->reason);
	if (ov->used) {
		fputs(",\"note\":", stdout);
		json_string(stdout, "the relay's key record is not in DNS; "
		    "judged as if published");
	}
	fputs("}\n", stdout);
}

static void
dkim_cell(const struct auth_results *a, size_t i, char *out, size_t n)
{
	const struct dkim_sigresult *r = &a->dkim->r[i];

	snprintf(out, n, "%s d=%s s=%s%s%s", dkim_result_str(r->result),
	    r->d, r->s, r->reason[0] ? ": " : "", r->reason);
}

/* spf_cell - the SPF result and the domain checked, for the table. */
static void
spf_cell(const struct auth_results *r, const char *option, char *out,
    size_t n)
{
	if (!r->have_envelope)
		snprintf(out, n, "none (no %s)", option);
	else if (r->spf_mailfrom.domain[0])
		snprintf(out, n, "%s for %s",
		    spf_res_str(r->spf_mailfrom.result),
		    r->spf_mailfrom.domain);
	else
		snprintf(out, n, "%s", spf_res_str(r->spf_mailfrom.result));
}

/* dmarc_cell - the DMARC result, the From domain and its policy. */
static void
dmarc_cell(const struct auth_results *r, char *out, size_t n)
{
	if (r->dmarc.author_domain[0])
		snprintf(out, n, "%s for %s (p=%s)",
		    dmarc_res_str(r->dmarc.result), r->dmarc.author_domain,
		    dmarc_policy_str(r->dmarc.policy));
	else
		snprintf(out, n, "%s", dmarc_res_str(r->dmarc.result));
}

static void
row(const char *what, const char *b, const char *a)
{
	printf("%-7s %-44.44s %s\n", what, b, a);
}

static void
print_table(const struct auth_results *before,
    const struct auth_results *after, const struct judgement *j,
    const char *rcpt, const char *rule, const char *sender,
    const struct overlay *ov)
{
	char b[300], a[300];
	size_t nb = before->dkim ? before->dkim->n : 0;
	size_t na = after->dkim ? after->dkim->n : 0, i;

	printf("recipient %s (%s), envelope sender <%s>\n\n", rcpt, rule,
	    sender);
	row("", "BEFORE (as it arrived)", "AFTER (as downstream sees it)");
	for (i = 0; i < nb || i < na || i == 0; i++) {
		b[0] = a[0] = '\0';
		if (i < nb)
			dkim_cell(before, i, b, sizeof(b));
		if (i < na)
			dkim_cell(after, i, a, sizeof(a));
		row(i == 0 ? "dkim" : "", nb || i ? b : "none",
		    na || i ? a : "none");
	}
	snprintf(b, sizeof(b), "%s", arc_cv_str(before->arc.cv));
	snprintf(a, sizeof(a), "%s", arc_cv_str(after->arc.cv));
	row("arc", b, a);
	spf_cell(before, "--client-ip", b, sizeof(b));
	spf_cell(after, "--relay-ip", a, sizeof(a));
	row("spf", b, a);
	dmarc_cell(before, b, sizeof(b));
	dmarc_cell(after, a, sizeof(a));
	row("dmarc", b, a);
	printf("\nDMARC where our ARC seal is trusted: %s%s%s\n",
	    dmarc_res_str(j->trusted.result),
	    j->trusted.result != after->dmarc.result ? " - " : "",
	    j->trusted.result != after->dmarc.result ? j->trusted.reason : "");
	printf("verdict: %s: %s\n", j->verdict, j->reason);
	if (ov->used)
		printf("note: the relay's key record is not in DNS; judged as "
		    "if published\n");
}

/* print_refusal - the message would not be accepted at all. */
static void
print_refusal(bool json, const char *rcpt, const char *why)
{
	if (!json) {
		printf("recipient %s: %s\nverdict: fails\n", rcpt, why);
		return;
	}
	fputs("{\"rcpt\":", stdout);
	json_string(stdout, rcpt);
	fputs(",\"verdict\":\"fails\",\"reason\":", stdout);
	json_string(stdout, why);
	fputs("}\n", stdout);
}

/* ----------------------------------------------------------------- main */

struct survive_args {
	const char *config, *dnsfile, *rcpt, *relay_ip, *client_ip, *helo;
	const char *mail_from, *output, *path;
	int64_t now;
	bool json;
};

static int
parse_args(int argc, char **argv, struct survive_args *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "dns-file", required_argument, NULL, 'd' },
		{ "rcpt", required_argument, NULL, 'r' },
		{ "relay-ip", required_argument, NULL, 'R' },
		{ "client-ip", required_argument, NULL, 'i' },
		{ "helo", required_argument, NULL, 'H' },
		{ "mail-from", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "now", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->path = "-";
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
		case 'd': a->dnsfile = optarg; break;
		case 'r': a->rcpt = optarg; break;
		case 'R': a->relay_ip = optarg; break;
		case 'i': a->client_ip = optarg; break;
		case 'H': a->helo = optarg; break;
		case 'm': a->mail_from = optarg; break;
		case 'o': a->output = optarg; break;
		case 'j': a->json = true; break;
		case 'n':
			if (!cli_parse_int64(optarg, &a->now)) {
				cli_err("survive", "--now takes seconds since "
				    "the epoch, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			survive_usage(stdout);
			return EXIT_DONE;
		default:
			survive_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		a->path = argv[optind++];
	if (optind < argc) {
		cli_err("survive", "one message at a time");
		return EXIT_USAGE;
	}
	if (a->helo && !a->client_ip) {
		cli_err("survive", "--helo needs --client-ip");
		return EXIT_USAGE;
	}
	return -1;
}

static bool
write_output(const char *path, const struct dkim_buf *m)
{
	FILE *fp = fopen(path, "wb");
	bool ok = fp != NULL && fwrite(m->p, 1, m->len, fp) == m->len;

	if (fp != NULL && fclose(fp) != 0)
		ok = false;
	if (!ok)
		cli_err("survive", "cannot write %s", path);
	return ok;
}

int
cmd_survive(int argc, char **argv)
{
	struct survive_args a;
	struct relay_config *cfg = NULL;
	struct pipeline_keys keys;
	struct pipeline_opts po;
	struct pipeline_env env;
	struct pipeline_result r;
	struct auth_request ar;
	struct auth_results after;
	struct dkim_verify_opts vo;
	struct cli_dns dns = { 0 };
	struct dmarc_psl *psl = NULL;
	struct overlay ov;
	struct cli_input in;
	struct dkim_msg *om = NULL;
	struct judgement j;
	char why[1024], sender[RULES_ADDR_MAX];
	char reply[RULES_ADDR_MAX * 2 + 100];
	const char *rcpt;
	const struct pipeline_out *out;
	const char *osender;
	int rc;

	if ((rc = parse_args(argc, argv, &a)) >= 0)
		return rc;
	rc = EXIT_USAGE;
	memset(&keys, 0, sizeof(keys));
	memset(&ov, 0, sizeof(ov));
	memset(&r, 0, sizeof(r));
	memset(&after, 0, sizeof(after));
	memset(&in, 0, sizeof(in));
	cfg = a.config ? config_load(a.config, why, sizeof(why)) :
	    config_default();
	if (cfg == NULL) {
		cli_err("survive", "%s", a.config ? why : "out of memory");
		return EXIT_USAGE;
	}
	if ((rcpt = a.rcpt ? a.rcpt : default_rcpt(cfg)) == NULL) {
		cli_err("survive", "no --rcpt, and the configuration has no "
		    "[list] or [forward] to default to");
		goto out;
	}
	if (cfg->dmarc_mode == 1 && (psl = dmarc_psl_load(DMARC_PSL_DEBIAN,
	    why, sizeof(why))) == NULL) {
		cli_err("survive", "%s", why);
		goto out;
	}
	dkim_verify_opts_init(&vo);
	if (!survive_keys(cfg, &keys) ||
	    !cli_dns_open("survive", a.dnsfile ? a.dnsfile : cfg->records,
	    cfg->resolver, &dns, &vo) ||
	    !cli_read_message("survive", a.path, &in))
		goto out;

	ov.inner = dns.dns;
	overlay_add(&ov, 0, keys.sign_key, keys.sign_selector,
	    keys.sign_domain);
	if (keys.arc_key != NULL)
		overlay_add(&ov, 1, keys.arc_key, keys.arc_selector,
		    keys.arc_domain);
	memset(&po, 0, sizeof(po));
	po.hostname = cfg->hostname;
	po.authserv_id = cfg->authserv_id;
	po.dns.fn = overlay_lookup;
	po.dns.arg = &ov;
	po.dmarc_mode = cfg->dmarc_mode ? DMARC_MODE_RFC7489 :
	    DMARC_MODE_RFC9989;
	po.psl = psl;
	po.now = a.now ? a.now : (int64_t)time(NULL);

	if (a.mail_from)
		snprintf(sender, sizeof(sender), "%s", a.mail_from);
	else
		default_sender(in.msg, sender, sizeof(sender));
	memset(&env, 0, sizeof(env));
	env.client_ip = a.client_ip;
	env.helo = a.helo ? a.helo : a.client_ip ? "unknown" : NULL;
	env.sender = sender;
	env.rcpt = &rcpt;
	env.nrcpt = 1;
	env.session_id = "survive";

	if (!rcpt_accepted(cfg, rcpt, sender, po.now, reply, sizeof(reply))) {
		print_refusal(a.json, rcpt, reply);
		rc = EXIT_DONE;
		goto out;
	}
	switch (pipeline_process(&po, &keys, NULL, &env, in.crlf, in.crlf_len,
	    &r, reply, sizeof(reply))) {
	case PIPE_OK:
		break;
	case PIPE_REJECT:
		print_refusal(a.json, rcpt, reply);
		rc = EXIT_DONE;
		goto out;
	case PIPE_TEMPFAIL:
		cli_err("survive", "the relay would defer this message: %s",
		    reply);
		goto out;
	}
	if (r.nouts == 0) {
		cli_err("survive", "nothing would be delivered for %s", rcpt);
		goto out;
	}
	out = &r.outs[0];
	/* A list under VERP: the first member's copy, as the daemon sends. */
	osender = out->senders != NULL && out->nrcpt > 0 ? out->senders[0] :
	    out->sender;
	if (a.output && !write_output(a.output, &r.msgs[out->msg]))
		goto out;
	if (dkim_msg_parse(r.msgs[out->msg].p, r.msgs[out->msg].len, NULL, &om,
	    why, sizeof(why)) != DKIM_OK) {
		cli_err("survive", "the relay's output does not parse: %s", why);
		goto out;
	}

	/* Downstream: the relay's address, our host name, the new sender. */
	memset(&ar, 0, sizeof(ar));
	ar.ip = a.relay_ip;
	ar.helo = a.relay_ip ? cfg->hostname : NULL;
	ar.mail_from = a.relay_ip ? osender : NULL;
	ar.receiver = "downstream.invalid";
	ar.now = po.now;
	ar.dmarc_mode = po.dmarc_mode;
	ar.psl = psl;
	if (auth_evaluate(om, &po.dns, &ar, &after) != DKIM_OK) {
		cli_err("survive", "out of memory");
		goto out;
	}
	memset(&j, 0, sizeof(j));
	judge(&r.auth, &after, cfg->authserv_id, &j);
	if (a.json)
		print_json(&r.auth, &after, &j, rcpt, out->label, osender,
		    &ov);
	else
		print_table(&r.auth, &after, &j, rcpt, out->label, osender,
		    &ov);
	rc = fflush(stdout) == 0 ? EXIT_DONE : EXIT_USAGE;
out:
	auth_results_free(&after);
	pipeline_result_free(&r);
	dkim_msg_free(om);
	cli_input_free(&in);
	pipeline_keys_clear(&keys);
	free(ov.rec[0]);
	free(ov.rec[1]);
	cli_dns_close(&dns);
	dmarc_psl_free(psl);
	config_free(cfg);
	return rc;
}
