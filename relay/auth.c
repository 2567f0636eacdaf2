/*
 * auth.c - DKIM, ARC, SPF and DMARC of one message, and how the results
 * are written (see auth.h). The lookups of DKIM, ARC and SPF share one
 * budget per message; DMARC has one of its own (bounded by dmarc.h's
 * max_queries), because the sender chooses the d= and MAIL FROM domains:
 * had they spent or stalled DMARC's budget, a spoofed From of a p=reject
 * domain would come out temperror (RFC 9989 §5.3.6), which is never
 * rejected, instead of fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "report.h"

static enum dmarc_spf
spf_for_dmarc(enum spf_res r)
{
	switch (r) {
	case SPF_PASS:		return DMARC_SPF_PASS;
	case SPF_FAIL:		return DMARC_SPF_FAIL;
	case SPF_SOFTFAIL:	return DMARC_SPF_SOFTFAIL;
	case SPF_NEUTRAL:	return DMARC_SPF_NEUTRAL;
	case SPF_TEMPERROR:	return DMARC_SPF_TEMPERROR;
	case SPF_PERMERROR:	return DMARC_SPF_PERMERROR;
	case SPF_NONE:		break;
	}
	return DMARC_SPF_NONE;
}

enum dkim_status
auth_evaluate(const struct dkim_msg *msg, const struct pdns *dns,
    const struct auth_request *req, struct auth_results *out)
{
	struct pdns_budget budget, dbudget;
	struct pdns bdns = pdns_budget_init(&budget, dns, req->max_lookups ?
	    req->max_lookups : 100);
	/* the author's _dmarc names, its Tree Walk and the existence test
	 * for np=: at most DMARC_HARD_MAX_QUERIES, whatever went before */
	struct pdns ddns = pdns_budget_init(&dbudget, dns,
	    DMARC_HARD_MAX_QUERIES + 1);
	struct dkim_verify_opts vo;
	struct dmarc_request dr;
	struct dmarc_span from[8];
	struct dmarc_dkim dk[DMARC_MAX_DKIM];
	enum dkim_status st;
	size_t k, nd = 0;

	memset(out, 0, sizeof(*out));
	dkim_verify_opts_init(&vo);
	vo.now = req->now;
	vo.lookup = pdns_dkim_lookup;
	vo.lookup_arg = &bdns;
	vo.keycache = req->keycache;
	if ((st = dkim_verify(msg, &vo, &out->dkim)) != DKIM_OK)
		return st;
	if ((st = arc_validate(msg, &vo, 0, &out->arc)) != DKIM_OK)
		return st;

	dmarc_request_init(&dr);
	if (req->ip) {
		struct spf_request sr;

		memset(&sr, 0, sizeof(sr));
		sr.ip = req->ip;
		sr.ip_len = strlen(req->ip);
		sr.helo = req->helo ? req->helo : "";
		sr.helo_len = strlen(sr.helo);
		sr.mail_from = req->mail_from ? req->mail_from : "";
		sr.mail_from_len = strlen(sr.mail_from);
		sr.receiver = req->receiver;
		sr.now = req->now;
		out->have_envelope = true;
		if ((st = spf_check_both(&bdns, &sr, &out->spf_helo,
		    &out->spf_mailfrom)) != DKIM_OK)
			return st;
		out->spf_helo_done = sr.helo_len > 0;
		dr.spf = spf_for_dmarc(out->spf_mailfrom.result);
		dr.spf_domain = out->spf_mailfrom.domain;
		dr.spf_domain_len = strlen(out->spf_mailfrom.domain);
	} else {
		snprintf(out->note, sizeof(out->note), "no envelope given: "
		    "SPF not evaluated, DMARC by DKIM alone");
		dr.spf = DMARC_SPF_NONE;
	}
	for (k = 0; k < out->dkim->n && nd < DMARC_MAX_DKIM; k++) {
		const struct dkim_sigresult *r = &out->dkim->r[k];

		/* passes, and temporary failures: one of a d= that would
		 * align makes DMARC temperror, not fail (RFC 9989 §5.3.6) */
		if ((r->result != DKIM_RES_PASS &&
		    r->result != DKIM_RES_TEMPERROR) || r->sig == NULL)
			continue;
		dk[nd].domain = r->sig->d;
		dk[nd].domain_len = strlen(r->sig->d);
		dk[nd].pass = r->result == DKIM_RES_PASS;
		dk[nd].temperror = !dk[nd].pass;
		nd++;
	}
	dr.from = from;
	dr.nfrom = dmarc_from_values(msg, from, sizeof(from) /
	    sizeof(from[0]));
	dr.dkim = dk;
	dr.ndkim = nd;
	dr.opt.mode = req->dmarc_mode;
	dr.opt.psl = req->psl;
	dr.opt.pct_draw = req->pct_draw;
	if ((st = dmarc_evaluate(&ddns, &dr, &out->dmarc)) != DKIM_OK)
		return st;
	out->lookups_exhausted = budget.exhausted || dbudget.exhausted;
	return DKIM_OK;
}

void
auth_results_free(struct auth_results *r)
{
	dkim_verification_free(r->dkim);
	r->dkim = NULL;
}

/* ---------------------------------------------------------------- output */

static void
add(struct authres_result *res, const char *ptype, const char *prop,
    const char *value)
{
	if (res && value && value[0])
		authres_add_prop(res, ptype, prop, value);
}

struct authres *
auth_authres(const struct auth_results *r, const char *authserv_id,
    bool comments)
{
	struct authres *ar = authres_new(authserv_id);
	struct authres_result *res;
	char b8[9], num[16];
	size_t k;

	if (ar == NULL)
		return NULL;
#define COMMENT(res, text) do { if (comments && (res) && (text)[0]) \
	authres_set_comment((res), (text)); } while (0)
	for (k = 0; r->dkim && k < r->dkim->n; k++) {
		const struct dkim_sigresult *s = &r->dkim->r[k];

		res = authres_add_result(ar, "dkim",
		    dkim_result_str(s->result), NULL);
		COMMENT(res, s->reason);
		add(res, "header", "d", s->d);
		add(res, "header", "s", s->s);
		snprintf(b8, sizeof(b8), "%s", s->b);
		add(res, "header", "b", b8);
	}
	if (r->dkim && r->dkim->n == 0) {
		res = authres_add_result(ar, "dkim", "none", NULL);
		COMMENT(res, "no signatures");
	}
	res = authres_add_result(ar, "arc", arc_cv_str(r->arc.cv), NULL);
	COMMENT(res, r->arc.reason);
	if (r->arc.oldest_pass > 0) {
		snprintf(num, sizeof(num), "%u", r->arc.oldest_pass);
		add(res, "header", "oldest-pass", num);
	}
	if (r->have_envelope) {
		res = authres_add_result(ar, "spf",
		    spf_res_str(r->spf_mailfrom.result), NULL);
		COMMENT(res, r->spf_mailfrom.reason);
		add(res, "smtp", "mailfrom", r->spf_mailfrom.sender);
		if (r->spf_helo_done) {
			res = authres_add_result(ar, "spf",
			    spf_res_str(r->spf_helo.result), NULL);
			COMMENT(res, r->spf_helo.reason);
			add(res, "smtp", "helo", r->spf_helo.domain);
		}
	}
	res = authres_add_result(ar, "dmarc", dmarc_res_str(r->dmarc.result),
	    NULL);
	COMMENT(res, r->dmarc.reason);
	add(res, "header", "from", r->dmarc.author_domain);
#undef COMMENT
	return ar;
}

/* fold_ar - break a formatted A-R value after each top-level ';'. */
static void
fold_ar(FILE *fp, const char *v, size_t n)
{
	size_t i;
	int depth = 0;
	bool quoted = false;

	for (i = 0; i < n; i++) {
		char c = v[i];

		if ((quoted || depth) && c == '\\' && i + 1 < n) {
			fputc(c, fp);
			fputc(v[++i], fp);
			continue;
		}
		if (c == '"' && !depth)
			quoted = !quoted;
		else if (c == '(' && !quoted)
			depth++;
		else if (c == ')' && !quoted && depth)
			depth--;
		if (c == ';' && !quoted && !depth) {
			fputs(";\n\t", fp);
			while (i + 1 < n && v[i + 1] == ' ')
				i++;
			continue;
		}
		fputc(c, fp);
	}
	fputc('\n', fp);
}

bool
auth_print_ar(FILE *fp, const struct auth_results *r, const char *authserv_id)
{
	struct authres *ar = auth_authres(r, authserv_id, true);
	struct dkim_buf b;
	bool ok;

	dkim_buf_init(&b, 0);
	ok = ar && authres_format(ar, false, 0, true, &b);
	if (ok) {
		fputs("Authentication-Results:", fp);
		fold_ar(fp, b.p, b.len);
	}
	dkim_buf_free(&b);
	authres_free(ar);
	return ok;
}

bool
auth_aar_results(const struct auth_results *r, const char *authserv_id,
    struct dkim_buf *out)
{
	struct authres *ar = auth_authres(r, authserv_id, false);
	struct dkim_buf b;
	size_t pl = strlen(authserv_id) + 3;
	bool ok;

	dkim_buf_init(&b, 0);
	ok = ar && authres_format(ar, false, 0, false, &b) && b.len >= pl &&
	    b.p[0] == ' ' && strncmp(b.p + 1, authserv_id, pl - 3) == 0 &&
	    b.p[pl - 2] == ';';
	if (ok)
		dkim_buf_add(out, b.p + pl, b.len - pl);
	dkim_buf_free(&b);
	authres_free(ar);
	return ok && !out->failed;
}

void
auth_print_dmarc_json(FILE *fp, const struct dmarc_result *d,
    const char *note)
{
	fputs("{\"result\":", fp);
	json_string(fp, dmarc_res_str(d->result));
	fputs(",\"reason\":", fp);
	json_string(fp, d->reason);
	fputs(",\"domain\":", fp);
	json_string(fp, d->author_domain);
	fputs(",\"policy\":", fp);
	json_string(fp, dmarc_policy_str(d->policy));
	fputs(",\"aligned_by\":", fp);
	json_string(fp, d->aligned == DMARC_IDENT_NONE ? "" :
	    dmarc_ident_str(d->aligned));
	if (note && note[0]) {
		fputs(",\"note\":", fp);
		json_string(fp, note);
	}
	fputc('}', fp);
}

void
auth_print_json(FILE *fp, const struct auth_results *r)
{
	auth_print_json_obj(fp, r);
	fputc('\n', fp);
}

void
auth_print_json_obj(FILE *fp, const struct auth_results *r)
{
	report_json_open(fp, r->dkim, &r->arc);
	fputs(",\"spf\":{\"result\":", fp);
	if (r->have_envelope) {
		json_string(fp, spf_res_str(r->spf_mailfrom.result));
		fputs(",\"reason\":", fp);
		json_string(fp, r->spf_mailfrom.reason);
		fputs(",\"domain\":", fp);
		json_string(fp, r->spf_mailfrom.domain);
		fputs(",\"mechanism\":", fp);
		json_string(fp, r->spf_mailfrom.mechanism);
		if (r->spf_helo_done) {
			fputs(",\"helo\":{\"result\":", fp);
			json_string(fp, spf_res_str(r->spf_helo.result));
			fputs(",\"reason\":", fp);
			json_string(fp, r->spf_helo.reason);
			fputs(",\"domain\":", fp);
			json_string(fp, r->spf_helo.domain);
			fputc('}', fp);
		}
	} else {
		json_string(fp, "none");
		fputs(",\"reason\":", fp);
		json_string(fp, "not evaluated: no envelope (client "
		    "address, HELO and MAIL FROM)");
	}
	fputs("},\"dmarc\":", fp);
	auth_print_dmarc_json(fp, &r->dmarc, r->note);
	fputc('}', fp);
}
