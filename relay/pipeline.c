/*
 * pipeline.c - authenticate, sign, seal and queue (see pipeline.h); and
 * mail to a list's bounce addresses, from a client or from the relay's
 * own delivery (pipeline_local_bounce), read and kept by one code path.
 *
 * Untrusted input: the message and the client's HELO. The HELO goes into
 * our Received field only after every byte outside printable ASCII has
 * been replaced, so a client cannot inject a header. Headers the relay did
 * not mean to change keep their bytes: the new fields are prepended and
 * forged Authentication-Results are cut out whole.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arc.h"
#include "bounce.h"
#include "log.h"
#include "maildir.h"
#include "pipeline.h"

/* ---------------------------------------------------------------- keys */

void
pipeline_keys_clear(struct pipeline_keys *k)
{
	EVP_PKEY_free(k->sign_key);
	EVP_PKEY_free(k->arc_key);
	free(k->sign_domain);
	free(k->sign_selector);
	free(k->arc_domain);
	free(k->arc_selector);
	rules_unref(k->rules);
	memset(k, 0, sizeof(*k));
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

bool
pipeline_keys_copy(struct pipeline_keys *dst, const struct pipeline_keys *src)
{
	memset(dst, 0, sizeof(*dst));
	if ((src->sign_key && !EVP_PKEY_up_ref(src->sign_key)) ||
	    (src->arc_key && !EVP_PKEY_up_ref(src->arc_key)))
		return false;
	dst->sign_key = src->sign_key;
	dst->arc_key = src->arc_key;
	dst->sign_domain = dup_or_null(src->sign_domain);
	dst->sign_selector = dup_or_null(src->sign_selector);
	dst->arc_domain = dup_or_null(src->arc_domain);
	dst->arc_selector = dup_or_null(src->arc_selector);
	dst->rules = rules_ref(src->rules);
	return true;
}

/* ------------------------------------------------------------ one message */

/* sanitize - peer text for our own header: printable ASCII only. */
static void
sanitize(struct dkim_buf *b, const char *s, size_t max)
{
	size_t i;

	for (i = 0; s && s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		dkim_buf_addc(b, c > 32 && c < 127 && c != '(' && c != ')' ?
		    (char)c : '?');
	}
	if (!s || !s[0])
		dkim_buf_adds(b, "unknown");
}

static void
add_received(struct dkim_buf *out, const struct pipeline_opts *o,
    const struct pipeline_env *env, int64_t now)
{
	char date[64];
	time_t t = (time_t)now;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	dkim_buf_adds(out, "Received: from ");
	sanitize(out, env->helo, 200);
	dkim_buf_adds(out, " (");
	sanitize(out, env->client_ip, 60);
	dkim_buf_addf(out, ")\r\n\tby %s (arcrelay) with %s", o->hostname,
	    env->tls ? "ESMTPS" : "ESMTP");
	if (env->session_id && env->session_id[0]) {
		dkim_buf_adds(out, " id ");
		sanitize(out, env->session_id, 30);
	}
	dkim_buf_addf(out, ";\r\n\t%s\r\n", date);
}

/* add_received_local - our Received field on a bounce the relay made
 * and keeps itself (pipeline_local_bounce): no client, no SMTP. */
static void
add_received_local(struct dkim_buf *out, const char *hostname,
    const char *id, int64_t now)
{
	char date[64];

	bounce_date(now, date, sizeof(date));
	dkim_buf_addf(out, "Received: by %s (arcrelay) with local id ",
	    hostname);
	sanitize(out, id, 30);
	dkim_buf_addf(out, ";\r\n\t%s\r\n", date);
}

/* strip_forged - the message without A-R fields claiming our id. */
static bool
strip_forged(const struct dkim_msg *m, const char *authserv_id,
    struct dkim_buf *out, size_t *removed)
{
	size_t j, from = 0;

	*removed = 0;
	for (j = 0; j < m->nfields; j++) {
		const struct dkim_field *f = &m->fields[j];
		size_t end = f->offset + f->raw_len + 2;

		if (!dkim_field_is(f, "Authentication-Results") ||
		    !authres_is_ours(f->raw + f->value_off,
		    f->raw_len - f->value_off, authserv_id))
			continue;
		dkim_buf_add(out, m->data + from, f->offset - from);
		from = end <= m->len ? end : m->len;
		(*removed)++;
	}
	dkim_buf_add(out, m->data + from, m->len - from);
	return !out->failed;
}

enum dkim_status
pipeline_dkim_sign(const struct pipeline_keys *k, const struct dkim_msg *m,
    int64_t now, struct dkim_buf *out, char *why, size_t whylen)
{
	struct dkim_sign_opts so;

	dkim_sign_opts_init(&so);
	so.alg = dkim_alg_for_key(k->sign_key);
	so.domain = k->sign_domain;
	so.selector = k->sign_selector;
	so.now = now;
	so.key = k->sign_key;
	return dkim_sign(m, &so, out, why, whylen);
}

#define REPLY(...) snprintf(reply, replylen, __VA_ARGS__)

/*
 * seal_one - our Received field, our DKIM signature over that message,
 * then the ARC set over everything above (RFC 8617 §5.1 step 1): the
 * whole message the relay hands on, appended to out. content is the
 * message after the rules' changes; res and aar describe what arrived.
 */
static enum pipeline_rc
seal_one(const struct pipeline_opts *o, const struct pipeline_keys *k,
    const struct pipeline_env *env, const struct auth_results *res,
    const char *aar, const char *content, size_t len, int64_t now,
    struct dkim_buf *out, char *reply, size_t replylen)
{
	struct dkim_msg *m1 = NULL, *m2 = NULL;
	struct dkim_buf b1, sig, fields;
	struct arc_seal_opts ao;
	char why[DKIM_WHY_MAX] = "";
	enum pipeline_rc rc = PIPE_TEMPFAIL;
	enum dkim_status st;

	dkim_buf_init(&b1, 0);
	dkim_buf_init(&sig, 0);
	dkim_buf_init(&fields, 0);
	add_received(&b1, o, env, now);
	dkim_buf_add(&b1, content, len);
	if (b1.failed || dkim_msg_parse(b1.p, b1.len, NULL, &m1, why,
	    sizeof(why)) != DKIM_OK)
		goto nomem;
	if ((st = pipeline_dkim_sign(k, m1, now, &sig, why, sizeof(why))) !=
	    DKIM_OK) {
		REPLY("451 4.3.0 cannot sign: %s", why);
		goto out;
	}
	dkim_buf_add(&sig, b1.p, b1.len);
	if (sig.failed || dkim_msg_parse(sig.p, sig.len, NULL, &m2, why,
	    sizeof(why)) != DKIM_OK)
		goto nomem;

	arc_seal_opts_init(&ao);
	ao.domain = k->arc_domain ? k->arc_domain : k->sign_domain;
	ao.selector = k->arc_selector ? k->arc_selector : k->sign_selector;
	ao.key = k->arc_key ? k->arc_key : k->sign_key;
	ao.alg = dkim_alg_for_key(ao.key);
	ao.authserv_id = o->authserv_id;
	ao.results = aar;
	ao.now = now;
	st = arc_seal(m2, &res->arc, &ao, &fields, why, sizeof(why));
	if (st == DKIM_E_LIMIT) {
		/* §5.1: a chain that ended stays ended; the message still
		 * goes on with our DKIM signature. */
		log_event(LOG_LVL_INFO, env->session_id, "arc=not-sealed "
		    "reason=\"%s\"", why);
	} else if (st != DKIM_OK) {
		REPLY("451 4.3.0 cannot seal: %s", why);
		goto out;
	}
	dkim_buf_add(out, fields.p, fields.len);
	dkim_buf_add(out, sig.p, sig.len);
	if (out->failed)
		goto nomem;
	rc = PIPE_OK;
	goto out;
nomem:
	REPLY("451 4.3.0 temporary local problem");
out:
	dkim_msg_free(m1);
	dkim_msg_free(m2);
	dkim_buf_free(&b1);
	dkim_buf_free(&sig);
	dkim_buf_free(&fields);
	return rc;
}

void
pipeline_result_free(struct pipeline_result *r)
{
	size_t i, j;

	if (r == NULL)
		return;
	for (i = 0; i < r->nmsgs; i++)
		dkim_buf_free(&r->msgs[i]);
	free(r->msgs);
	for (i = 0; i < r->nouts; i++) {
		free(r->outs[i].sender);
		for (j = 0; j < r->outs[i].nrcpt; j++) {
			free(r->outs[i].rcpt[j]);
			if (r->outs[i].senders != NULL)
				free(r->outs[i].senders[j]);
		}
		free(r->outs[i].rcpt);
		free(r->outs[i].senders);
	}
	free(r->outs);
	for (i = 0; i < r->nbounces; i++) {
		free(r->bounces[i].list);
		free(r->bounces[i].rcpt);
		free(r->bounces[i].maildir);
		free(r->bounces[i].members);
	}
	free(r->bounces);
	dkim_buf_free(&r->bounce_msg);
	auth_results_free(&r->auth);
	memset(r, 0, sizeof(*r));
}

/* new_msg - a fresh message slot in r; its index, or -1. */
static int
new_msg(struct pipeline_result *r)
{
	struct dkim_buf *nm = realloc(r->msgs, (r->nmsgs + 1) * sizeof(*nm));

	if (nm == NULL)
		return -1;
	r->msgs = nm;
	dkim_buf_init(&nm[r->nmsgs], (size_t)1 << 31);
	return (int)r->nmsgs++;
}

/*
 * out_for - the output for (msg, sender, label), created when new; NULL
 * on no memory. Outputs with the same bytes and sender share one queue
 * entry, so plain relaying and SRS bounces go out together.
 */
static struct pipeline_out *
out_for(struct pipeline_result *r, size_t msg, const char *sender,
    bool per_rcpt, const char *label)
{
	struct pipeline_out *no, *po;
	size_t i;

	for (i = 0; i < r->nouts; i++)
		if (r->outs[i].msg == msg && !per_rcpt &&
		    !r->outs[i].per_rcpt && strcmp(r->outs[i].sender,
		    sender) == 0)
			return &r->outs[i];
	if ((no = realloc(r->outs, (r->nouts + 1) * sizeof(*no))) == NULL)
		return NULL;
	r->outs = no;
	po = &no[r->nouts];
	memset(po, 0, sizeof(*po));
	po->msg = msg;
	po->per_rcpt = per_rcpt;
	snprintf(po->label, sizeof(po->label), "%s", label);
	if ((po->sender = strdup(sender)) == NULL)
		return NULL;
	r->nouts++;
	return po;
}

static bool
out_add_rcpt(struct pipeline_out *po, const char *addr)
{
	char **nv;
	size_t i;

	for (i = 0; i < po->nrcpt; i++)
		if (rules_addr_eq(po->rcpt[i], addr))
			return true;
	if ((nv = realloc(po->rcpt, (po->nrcpt + 1) * sizeof(*nv))) == NULL)
		return false;
	po->rcpt = nv;
	if ((nv[po->nrcpt] = strdup(addr)) == NULL)
		return false;
	po->nrcpt++;
	return true;
}

/* rewrite_from - does this list rewrite From for this message, which
 * failed DMARC (dmarc_failed says how that is judged)? */
static bool
rewrite_from(const struct rules_list *l, const struct auth_results *res,
    bool failed)
{
	switch (l->from_rewrite) {
	case RULES_FROM_ALWAYS:
		return true;
	case RULES_FROM_NEVER:
		return false;
	case RULES_FROM_DMARC:
		break;
	}
	/* A post that fails DMARC keeps its From: under the list's domain
	 * it would pass downstream, vouched for by the list, although its
	 * author's domain disowns it. Downstream then applies that
	 * domain's policy as if there were no list. */
	if (failed)
		return false;
	/* When the policy could not be learnt, assume the strict one: a
	 * needless rewrite costs less than a rejected post. */
	return res->dmarc.policy == DMARC_POLICY_QUARANTINE ||
	    res->dmarc.policy == DMARC_POLICY_REJECT ||
	    res->dmarc.result == DMARC_RES_TEMPERROR;
}

struct pl_ctx {
	const struct pipeline_opts *o;
	const struct pipeline_keys *k;
	const struct pipeline_env *env;	/* NULL: a bounce of our own */
	const char *local_id;	/* then: the queue id it is about */
	const char *content;	/* after forged A-R were removed */
	size_t len;
	const char *aar;
	int64_t now;
	const struct dkim_msg *msg;	/* content, parsed */
	int plain;		/* the unmodified message's slot, -1: none */
	bool dsn_read;		/* dsn, dsn_rc and dsn_why are set */
	struct dsn *dsn;	/* owned: the message as a DSN, or NULL */
	enum dsn_rc dsn_rc;
	char dsn_why[160];
};

/*
 * dmarc_failed - did the message fail DMARC here, SPF included (`arcrelay
 * survive` without an envelope cannot tell), with no trusted ARC sealer
 * vouching that it passed where it arrived before (rules_arc_vouches)?
 */
static bool
dmarc_failed(const struct pl_ctx *c, const struct rules *rules,
    const struct auth_results *res, const char *list)
{
	char sealer[256];

	if (!res->have_envelope || res->dmarc.result != DMARC_RES_FAIL)
		return false;
	if (!rules_arc_vouches(rules, c->msg, &res->arc,
	    res->dmarc.author_domain, sealer, sizeof(sealer)))
		return true;
	log_event(LOG_LVL_INFO, c->env->session_id, "list=%s dmarc=fail "
	    "override=arc sealer=%s", list, sealer);
	return false;
}

/* plain_msg - the unmodified message, sealed once for every output
 * that carries it (relay, forward, SRS bounce). */
static enum pipeline_rc
plain_msg(struct pl_ctx *c, struct pipeline_result *r, size_t *slot,
    char *reply, size_t replylen)
{
	enum pipeline_rc rc;
	int i;

	if (c->plain < 0) {
		if ((i = new_msg(r)) < 0) {
			REPLY("451 4.3.0 temporary local problem");
			return PIPE_TEMPFAIL;
		}
		rc = seal_one(c->o, c->k, c->env, &r->auth, c->aar, c->content,
		    c->len, c->now, &r->msgs[i], reply, replylen);
		if (rc != PIPE_OK)
			return rc;
		c->plain = i;
	}
	*slot = (size_t)c->plain;
	return PIPE_OK;
}

/* verp_senders - each member's own sender for a list's output. */
static bool
verp_senders(const struct rules_list *l, struct pipeline_out *po)
{
	char buf[RULES_ADDR_MAX];
	size_t j;

	if ((po->senders = calloc(po->nrcpt ? po->nrcpt : 1,
	    sizeof(*po->senders))) == NULL)
		return false;
	for (j = 0; j < po->nrcpt; j++) {
		rules_list_sender(l, po->rcpt[j], buf, sizeof(buf));
		if ((po->senders[j] = strdup(buf)) == NULL)
			return false;
	}
	return true;
}

/* bounced_fill - member's line from the report's group g (NULL: the
 * report says nothing of it). */
static void
bounced_fill(struct pipeline_bounced *b, const char *member,
    const struct dsn_rcpt *g)
{
	snprintf(b->member, sizeof(b->member), "%s", member);
	snprintf(b->action, sizeof(b->action), "%s", g ? g->action :
	    "unknown");
	snprintf(b->status, sizeof(b->status), "%s", g ? g->status :
	    "unknown");
	if (g != NULL && g->diag_type[0] != '\0')
		snprintf(b->diag, sizeof(b->diag), "%s; %s", g->diag_type,
		    g->diag);
	else
		snprintf(b->diag, sizeof(b->diag), "%s", g ? g->diag : "");
}

/* bounce_add_member - member (as l has it) into b unless there (verp:
 * a VERP address named it); false on no memory. */
static bool
bounce_add_member(struct pipeline_bounce *b, const char *member,
    const struct dsn_rcpt *g, bool verp)
{
	struct pipeline_bounced *nm;
	size_t i;

	for (i = 0; i < b->nmembers; i++)
		if (rules_addr_eq(b->members[i].member, member)) {
			b->members[i].verp |= verp;
			return true;
		}
	if ((nm = realloc(b->members, (b->nmembers + 1) * sizeof(*nm))) ==
	    NULL)
		return false;
	b->members = nm;
	bounced_fill(&nm[b->nmembers], member, g);
	nm[b->nmembers++].verp = verp;
	return true;
}

/* list_member - l's own spelling of addr when it is a member, or NULL. */
static const char *
list_member(const struct rules_list *l, const char *addr)
{
	size_t i;

	for (i = 0; i < l->nmembers; i++)
		if (rules_addr_eq(l->members[i], addr))
			return l->members[i];
	return NULL;
}

/*
 * bounce_members - who the bounce b is about: the member the VERP
 * address names (verp, "" for none) when it is one, with the report's
 * group for it (or its first failure: the member may forward); else every
 * recipient of the report that is a member (looked up once per list).
 * None: b->why says why.
 */
static bool
bounce_members(const struct pl_ctx *c, const struct rules_list *l,
    const char *verp, struct pipeline_bounce *b)
{
	const struct dsn *d = c->dsn;
	const struct dsn_rcpt *g;
	const char *mem;
	size_t i;

	if (verp[0] != '\0' && (mem = list_member(l, verp)) != NULL) {
		b->verp = true;
		if ((g = dsn_find(d, mem)) == NULL && d != NULL) {
			for (i = 0; i < d->nrcpt && g == NULL; i++)
				if (strcmp(d->rcpt[i].action, "failed") == 0)
					g = &d->rcpt[i];
			if (g == NULL)
				g = &d->rcpt[0];
		}
		return bounce_add_member(b, mem, g, true);
	}
	for (i = 0; d != NULL && !b->dsn_done && i < d->nrcpt; i++) {
		const struct dsn_rcpt *x = &d->rcpt[i];

		mem = NULL;
		if (x->final_type[0] == '\0' ||
		    strcmp(x->final_type, "rfc822") == 0)
			mem = list_member(l, x->final_addr);
		if (mem == NULL && (x->orig_type[0] == '\0' ||
		    strcmp(x->orig_type, "rfc822") == 0))
			mem = list_member(l, x->orig_addr);
		if (mem != NULL && !bounce_add_member(b, mem, x, false))
			return false;
	}
	b->dsn_done = true;
	if (b->nmembers > 0)
		return true;
	if (verp[0] != '\0')
		snprintf(b->why, sizeof(b->why), "the VERP address names %.*s, "
		    "not a member", 120, verp);
	else if (d == NULL)
		snprintf(b->why, sizeof(b->why), "%s: %s",
		    dsn_rc_str(c->dsn_rc), c->dsn_why);
	else
		snprintf(b->why, sizeof(b->why), "no recipient of the report "
		    "is a member");
	return true;
}

/*
 * list_bounce - mail to l's bounce address rcpt: read as a DSN (once per
 * message), the members it is about found, and a record for the caller,
 * who keeps the message and logs. One record per list, whatever number
 * of its bounce addresses the message names, so each member is logged
 * once. Nothing is queued for it.
 */
static enum pipeline_rc
list_bounce(struct pl_ctx *c, struct pipeline_result *r,
    const struct rules_list *l, const char *rcpt, const char *verp,
    char *reply, size_t replylen)
{
	struct pipeline_bounce *nb, *b;
	size_t i;

	for (i = 0; i < r->nbounces; i++)
		if (strcmp(r->bounces[i].list, l->addr) == 0) {
			if (!bounce_members(c, l, verp, &r->bounces[i]))
				goto nomem;
			return PIPE_OK;
		}
	if (!l->bounce_discard && l->bounce_maildir == NULL) {
		REPLY("451 4.3.0 no place to keep bounces for %s", l->addr);
		return PIPE_TEMPFAIL;
	}
	if (!c->dsn_read) {
		c->dsn_rc = dsn_parse(c->content, c->len, &c->dsn, c->dsn_why,
		    sizeof(c->dsn_why));
		c->dsn_read = true;
		if (c->dsn_rc == DSN_E_NOMEM)
			goto nomem;
	}
	if (r->nbounces == 0) {
		dkim_buf_init(&r->bounce_msg, (size_t)1 << 31);
		if (c->env != NULL)
			add_received(&r->bounce_msg, c->o, c->env, c->now);
		else
			add_received_local(&r->bounce_msg, c->o->hostname,
			    c->local_id, c->now);
		dkim_buf_add(&r->bounce_msg, c->content, c->len);
		if (r->bounce_msg.failed)
			goto nomem;
	}
	if ((nb = realloc(r->bounces, (r->nbounces + 1) * sizeof(*nb))) ==
	    NULL)
		goto nomem;
	r->bounces = nb;
	b = &nb[r->nbounces++];
	memset(b, 0, sizeof(*b));
	if ((b->list = strdup(l->addr)) == NULL ||
	    (b->rcpt = strdup(rcpt)) == NULL ||
	    (!l->bounce_discard &&
	    (b->maildir = strdup(l->bounce_maildir)) == NULL) ||
	    !bounce_members(c, l, verp, b))
		goto nomem;
	return PIPE_OK;
nomem:
	REPLY("451 4.3.0 temporary local problem");
	return PIPE_TEMPFAIL;
}

/* route_rcpt - one envelope recipient into its output(s). */
static enum pipeline_rc
route_rcpt(struct pl_ctx *c, struct pipeline_result *r, const char *rcpt,
    char *reply, size_t replylen)
{
	const struct rules *rules = c->k->rules;
	struct rules_match m;
	struct pipeline_out *po;
	enum pipeline_rc rc;
	char label[RULES_ADDR_MAX + 16], why[200];
	size_t slot, j;

	rules_match(rules, rcpt, c->now, &m);
	switch (m.kind) {
	case RULE_NONE:
	case RULE_SRS:
		if ((rc = plain_msg(c, r, &slot, reply, replylen)) != PIPE_OK)
			return rc;
		if ((po = out_for(r, slot, c->env->sender, false,
		    "relay")) == NULL || !out_add_rcpt(po, m.kind == RULE_SRS ?
		    m.addr : rcpt))
			goto nomem;
		return PIPE_OK;
	case RULE_SRS_BAD:
		/* Accepted at RCPT, expired since: the bounce has nowhere
		 * to go. */
		log_event(LOG_LVL_INFO, c->env->session_id, "rcpt=%s "
		    "result=dropped reason=\"%s\"", rcpt, m.why);
		return PIPE_OK;
	case RULE_FORWARD: {
		const struct rules_forward *f = &rules->forwards[m.index];
		char sender[RULES_ADDR_MAX];

		if (!rules_forward_sender(rules, f, c->env->sender, c->now,
		    sender, sizeof(sender), why, sizeof(why))) {
			REPLY("451 4.3.0 %s", why);
			return PIPE_TEMPFAIL;
		}
		if ((rc = plain_msg(c, r, &slot, reply, replylen)) != PIPE_OK)
			return rc;
		snprintf(label, sizeof(label), "forward %s", f->addr);
		if ((po = out_for(r, slot, sender, false, label)) == NULL)
			goto nomem;
		for (j = 0; j < f->nto; j++)
			if (!out_add_rcpt(po, f->to[j]))
				goto nomem;
		return PIPE_OK;
	}
	case RULE_LIST: {
		const struct rules_list *l = &rules->lists[m.index];
		struct dkim_buf mod;
		bool failed;
		int i;

		snprintf(label, sizeof(label), "list %s", l->addr);
		for (j = 0; j < r->nouts; j++)
			if (strcmp(r->outs[j].label, label) == 0)
				return PIPE_OK;		/* named twice */
		if (rules_list_loop(l, c->content, c->len)) {
			REPLY("550 5.4.6 mail loop: the message already "
			    "carries the List-Id of %s", l->addr);
			return PIPE_REJECT;
		}
		/*
		 * The author's domain asks receivers to reject mail that
		 * fails DMARC (p=reject, not lowered by t=y or pct=), and the
		 * list is the receiver: its copies would only be rejected by
		 * each member's server, and bounce to the list.
		 * X.7.26: several authentication checks failed (RFC 7372).
		 */
		failed = dmarc_failed(c, rules, &r->auth, l->addr);
		if (failed && r->auth.dmarc.disposition ==
		    DMARC_POLICY_REJECT && !l->dmarc_relay) {
			REPLY("550 5.7.26 the author's domain publishes a "
			    "DMARC policy of reject, and this message fails "
			    "DMARC");
			return PIPE_REJECT;
		}
		dkim_buf_init(&mod, (size_t)1 << 31);
		if (!rules_list_apply(l, rewrite_from(l, &r->auth, failed),
		    c->content, c->len, &mod, why, sizeof(why)) ||
		    (i = new_msg(r)) < 0) {
			dkim_buf_free(&mod);
			REPLY("451 4.3.0 cannot apply the list's changes");
			log_event(LOG_LVL_ERR, c->env->session_id, "list=%s "
			    "error=\"%s\"", l->addr, why);
			return PIPE_TEMPFAIL;
		}
		rc = seal_one(c->o, c->k, c->env, &r->auth, c->aar, mod.p,
		    mod.len, c->now, &r->msgs[i], reply, replylen);
		dkim_buf_free(&mod);
		if (rc != PIPE_OK)
			return rc;
		if ((po = out_for(r, (size_t)i, l->bounces, true, label)) ==
		    NULL)
			goto nomem;
		for (j = 0; j < l->nmembers; j++)
			if (!out_add_rcpt(po, l->members[j]))
				goto nomem;
		if (l->verp && !verp_senders(l, po))
			goto nomem;
		return PIPE_OK;
	}
	case RULE_LIST_BOUNCE:
		return list_bounce(c, r, &rules->lists[m.index], rcpt, m.addr,
		    reply, replylen);
	}
nomem:
	REPLY("451 4.3.0 temporary local problem");
	return PIPE_TEMPFAIL;
}

enum pipeline_rc
pipeline_process(const struct pipeline_opts *o, const struct pipeline_keys *k,
    struct dkim_keycache *kc, const struct pipeline_env *env,
    const char *data, size_t len, struct pipeline_result *r, char *reply,
    size_t replylen)
{
	struct dkim_msg *m = NULL;
	struct dkim_buf clean, aar;
	struct auth_request ar;
	struct pl_ctx c;
	char why[DKIM_WHY_MAX] = "";
	enum pipeline_rc rc = PIPE_TEMPFAIL;
	size_t removed, i;
	enum dkim_status st;

	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	dkim_buf_init(&clean, 0);
	dkim_buf_init(&aar, 0);
	st = dkim_msg_parse(data, len, NULL, &m, why, sizeof(why));
	if (st != DKIM_OK) {
		REPLY("554 5.6.0 not an RFC 5322 message: %s",
		    why[0] ? why : dkim_status_str(st));
		rc = PIPE_REJECT;
		goto out;
	}
	/* Forged results claiming our authserv-id go before anything reads
	 * them (RFC 8601 §5). */
	if (!strip_forged(m, o->authserv_id, &clean, &removed))
		goto nomem;
	if (removed) {
		dkim_msg_free(m);
		m = NULL;
		if (dkim_msg_parse(clean.p, clean.len, NULL, &m, why,
		    sizeof(why)) != DKIM_OK) {
			REPLY("554 5.6.0 not an RFC 5322 message: %s", why);
			rc = PIPE_REJECT;
			goto out;
		}
	}

	/* What arrived is evaluated once; the AAR records it, before any
	 * rule changes the message. */
	memset(&ar, 0, sizeof(ar));
	ar.ip = env->client_ip && env->client_ip[0] ? env->client_ip : NULL;
	ar.helo = env->helo;
	ar.mail_from = env->sender ? env->sender : "";
	ar.receiver = o->hostname;
	ar.now = o->now ? o->now : (int64_t)time(NULL);
	ar.keycache = kc;
	ar.dmarc_mode = o->dmarc_mode;
	ar.psl = o->psl;
	if (auth_evaluate(m, &o->dns, &ar, &r->auth) != DKIM_OK ||
	    !auth_aar_results(&r->auth, o->authserv_id, &aar))
		goto nomem;

	c.o = o;
	c.k = k;
	c.env = env;
	c.content = removed ? clean.p : data;
	c.len = removed ? clean.len : len;
	c.aar = aar.p;
	c.now = ar.now;
	c.msg = m;
	c.plain = -1;
	for (i = 0; i < env->nrcpt; i++)
		if ((rc = route_rcpt(&c, r, env->rcpt[i], reply, replylen)) !=
		    PIPE_OK)
			goto out;
	rc = PIPE_OK;
	goto out;
nomem:
	REPLY("451 4.3.0 temporary local problem");
	rc = PIPE_TEMPFAIL;
out:
	if (rc != PIPE_OK)
		pipeline_result_free(r);
	dsn_free(c.dsn);
	dkim_msg_free(m);
	dkim_buf_free(&clean);
	dkim_buf_free(&aar);
	return rc;
}

/* ---------------------------------------------------------- the workers */

struct pipeline {
	struct pipeline_opts opts;
	struct queue *q;
	pipeline_done_fn done;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pipeline_keys keys;	/* under mu */
	unsigned generation;		/* bumped by pipeline_set_keys */
	struct pipeline_job **jobs;	/* a ring of pending jobs */
	size_t head, count, cap;
	unsigned busy;
	bool stopping;
	pthread_t *threads;
	unsigned nthreads;
};

/* read_data - the message: the first size bytes of the DATA file at fd
 * (malloc'd, NUL-terminated); NULL on failure, a short file included. */
static char *
read_data(int fd, size_t size)
{
	char *buf;
	size_t got = 0;

	if (fd < 0 || size == SIZE_MAX || (buf = malloc(size + 1)) == NULL)
		return NULL;
	while (got < size) {
		ssize_t n = pread(fd, buf + got, size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return NULL;
		}
		got += (size_t)n;
	}
	buf[size] = '\0';
	return buf;
}

/* env_new - a fresh envelope for sender and rcpt[0..n). */
static bool
env_fill(struct q_envelope *e, const char *sender, char *const *rcpt,
    size_t n, int64_t now)
{
	size_t k;

	memset(e, 0, sizeof(*e));
	e->first_seen = now;
	if ((e->sender = strdup(sender)) == NULL ||
	    (e->rcpt = calloc(n ? n : 1, sizeof(*e->rcpt))) == NULL)
		return false;
	for (k = 0; k < n; k++) {
		if ((e->rcpt[k].addr = strdup(rcpt[k])) == NULL)
			return false;
		e->rcpt[k].state = Q_PENDING;
		e->rcpt[k].next_retry = now;
		e->nrcpt++;
	}
	return true;
}

static void
env_clear(struct q_envelope *e)
{
	size_t k;

	for (k = 0; k < e->nrcpt; k++) {
		free(e->rcpt[k].addr);
		free(e->rcpt[k].last_reply);
	}
	free(e->rcpt);
	free(e->sender);
	memset(e, 0, sizeof(*e));
}

/*
 * queue_all - every output of r durably queued, or none: a failure part
 * way removes what was committed, so the 4xx that follows leaves nothing
 * behind for the client's retry to duplicate. The bytes of a message
 * queued once move from r to the job, for delivery.
 */
static bool
queue_all(struct pipeline *p, struct pipeline_job *job,
    struct pipeline_result *r, char *why, size_t whylen)
{
	size_t i, k, n = 0, *uses = NULL, *slot = NULL;
	int64_t now = (int64_t)time(NULL);

	for (i = 0; i < r->nouts; i++)
		n += r->outs[i].per_rcpt ? r->outs[i].nrcpt :
		    r->outs[i].nrcpt > 0;
	if ((job->qenv = calloc(n ? n : 1, sizeof(*job->qenv))) == NULL ||
	    (job->qdata = calloc(n ? n : 1, sizeof(*job->qdata))) == NULL ||
	    (job->qlen = calloc(n ? n : 1, sizeof(*job->qlen))) == NULL ||
	    (slot = calloc(n ? n : 1, sizeof(*slot))) == NULL ||
	    (uses = calloc(r->nmsgs ? r->nmsgs : 1, sizeof(*uses))) == NULL) {
		free(slot);
		snprintf(why, whylen, "out of memory");
		return false;
	}
	for (i = 0; i < r->nouts; i++) {
		const struct pipeline_out *po = &r->outs[i];
		const struct dkim_buf *msg = &r->msgs[po->msg];
		size_t per = po->per_rcpt ? 1 : po->nrcpt;

		for (k = 0; k < po->nrcpt; k += per) {
			struct q_envelope *e = &job->qenv[job->nqenv];

			if (!env_fill(e, po->senders != NULL ?
			    po->senders[k] : po->sender, po->rcpt + k, per,
			    now)) {
				env_clear(e);
				snprintf(why, whylen, "out of memory");
				goto undo;
			}
			if (!queue_commit(p->q, msg->p, msg->len, e, why,
			    whylen)) {
				env_clear(e);
				goto undo;
			}
			slot[job->nqenv++] = po->msg;
			uses[po->msg]++;
		}
	}
	for (k = 0; k < job->nqenv; k++)
		if (uses[slot[k]] == 1)
			job->qdata[k] = dkim_buf_take(&r->msgs[slot[k]],
			    &job->qlen[k]);
	free(slot);
	free(uses);
	return true;
undo:
	for (i = 0; i < job->nqenv; i++) {
		queue_remove(p->q, job->qenv[i].id);
		env_clear(&job->qenv[i]);
	}
	job->nqenv = 0;
	free(slot);
	free(uses);
	return false;
}

/*
 * reply_ids - the 250 for a message queued several times (a list, a
 * forward beside a relay): every queue id that fits the reply, so the
 * client's log can be matched with ours, then how many more there are.
 */
static void
reply_ids(struct pipeline_job *job)
{
	/* Room kept for " and NNNNNN more" after the last id listed. */
	const size_t room = sizeof(job->reply) - 24;
	size_t i, n;

	n = (size_t)snprintf(job->reply, sizeof(job->reply),
	    "250 2.0.0 Ok: queued as %s", job->qenv[0].id);
	for (i = 1; i < job->nqenv; i++) {
		size_t idlen = strlen(job->qenv[i].id);

		if (n + 1 + idlen > room && i + 1 < job->nqenv)
			break;
		if (n + 1 + idlen >= sizeof(job->reply))
			break;
		n += (size_t)snprintf(job->reply + n, sizeof(job->reply) - n,
		    " %s", job->qenv[i].id);
	}
	if (i < job->nqenv)
		snprintf(job->reply + n, sizeof(job->reply) - n,
		    " and %zu more", job->nqenv - i);
}

/* A bounce kept: the maildir and the file's name under new/. */
struct kept {
	const char *dir;	/* borrowed from the result */
	char name[1200];
};

static void unkeep_bounces(const struct kept *kept, size_t n);

/*
 * keep_bounces - the message of r's bounces durably in each maildir they
 * name (once per maildir), before the 250; on failure what was written
 * is taken back and false returns the reason. kept has r->nbounces
 * entries; *nkept says how many are used.
 */
static bool
keep_bounces(const struct pipeline_result *r, struct kept *kept,
    size_t *nkept, char *why, size_t whylen)
{
	size_t i, j;

	*nkept = 0;
	for (i = 0; i < r->nbounces; i++) {
		const char *dir = r->bounces[i].maildir;

		for (j = 0; dir != NULL && j < *nkept; j++)
			if (strcmp(kept[j].dir, dir) == 0)
				dir = NULL;
		if (dir == NULL)
			continue;
		kept[*nkept].dir = dir;
		if (!maildir_deliver(dir, r->bounce_msg.p, r->bounce_msg.len,
		    kept[*nkept].name, sizeof(kept[*nkept].name), why,
		    whylen)) {
			unkeep_bounces(kept, *nkept);
			*nkept = 0;
			return false;
		}
		(*nkept)++;
	}
	return true;
}

/* unkeep_bounces - remove the files keep_bounces wrote (the 4xx that
 * follows brings the message again). */
static void
unkeep_bounces(const struct kept *kept, size_t n)
{
	char path[4096 + 1300];
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/new/%s", kept[i].dir,
		    kept[i].name);
		unlink(path);
	}
}

/* log_bounces - one line per member a bounce is about, or one saying
 * why none was found; peer text quoted. */
static void
log_bounces(const struct pipeline_result *r, const char *id)
{
	char q[5][RULES_ADDR_MAX * 2 + 8];
	size_t i, j;

	for (i = 0; i < r->nbounces; i++) {
		const struct pipeline_bounce *b = &r->bounces[i];

		log_quote(b->list, strlen(b->list), q[0], sizeof(q[0]));
		if (b->nmembers == 0) {
			log_event(LOG_LVL_INFO, id, "event=list_bounce_unparsed "
			    "list=%s rcpt=%s verp=%s kept=%s reason=%s", q[0],
			    log_quote(b->rcpt, strlen(b->rcpt), q[1],
			    sizeof(q[1])), b->verp ? "yes" : "no",
			    b->maildir ? "maildir" : "discarded",
			    log_quote(b->why, strlen(b->why), q[2],
			    sizeof(q[2])));
			continue;
		}
		for (j = 0; j < b->nmembers; j++) {
			const struct pipeline_bounced *m = &b->members[j];

			log_event(LOG_LVL_INFO, id, "event=list_bounce list=%s "
			    "member=%s action=%s status=%s diag=%s verp=%s "
			    "kept=%s", q[0], log_quote(m->member,
			    strlen(m->member), q[1], sizeof(q[1])),
			    log_quote(m->action, strlen(m->action), q[2],
			    sizeof(q[2])), log_quote(m->status,
			    strlen(m->status), q[3], sizeof(q[3])),
			    log_quote(m->diag, strlen(m->diag), q[4],
			    sizeof(q[4])), m->verp ? "yes" : "no",
			    b->maildir ? "maildir" : "discarded");
		}
	}
}

enum pipeline_local
pipeline_local_bounce(const struct rules *rules, const char *hostname,
    const char *rcpt, const char *id, const char *msg, size_t len,
    char *why, size_t whylen)
{
	struct pipeline_opts o;
	struct pipeline_result r;
	struct rules_match m;
	struct pl_ctx c;
	struct kept *kept = NULL;
	enum pipeline_local rc = PIPE_LOCAL_FAILED;
	char reply[256];
	size_t nkept = 0;

	rules_match(rules, rcpt, (int64_t)time(NULL), &m);
	if (m.kind != RULE_LIST_BOUNCE)
		return PIPE_LOCAL_NO;
	memset(&o, 0, sizeof(o));
	o.hostname = hostname;
	memset(&c, 0, sizeof(c));
	c.o = &o;
	c.local_id = id;
	c.content = msg;
	c.len = len;
	c.now = (int64_t)time(NULL);
	c.plain = -1;
	memset(&r, 0, sizeof(r));
	if (list_bounce(&c, &r, &rules->lists[m.index], rcpt, m.addr, reply,
	    sizeof(reply)) != PIPE_OK) {
		snprintf(why, whylen, "%s", reply);
		goto out;
	}
	if ((kept = calloc(r.nbounces ? r.nbounces : 1, sizeof(*kept))) ==
	    NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	if (!keep_bounces(&r, kept, &nkept, why, whylen))
		goto out;
	log_bounces(&r, id);
	rc = PIPE_LOCAL_KEPT;
out:
	free(kept);
	dsn_free(c.dsn);
	pipeline_result_free(&r);
	return rc;
}

static void
run_job(struct pipeline *p, struct pipeline_job *job,
    const struct pipeline_keys *keys, struct dkim_keycache *kc)
{
	struct pipeline_env env;
	struct pipeline_result r;
	struct pipeline_keys pinned;
	struct kept *kept = NULL;
	char why[DKIM_WHY_MAX], ipq[80];
	size_t len = job->size, i, size = 0, nkept = 0;
	char *data = read_data(job->fd, len);
	enum pipeline_rc rc;

	if (data == NULL) {
		snprintf(job->reply, sizeof(job->reply),
		    "451 4.3.0 temporary local problem (spool)");
		return;
	}
	memset(&env, 0, sizeof(env));
	env.client_ip = job->client_ip;
	env.helo = job->helo;
	env.tls = job->tls;
	env.sender = job->sender ? job->sender : "";
	env.rcpt = (const char *const *)job->rcpt;
	env.nrcpt = job->nrcpt;
	env.session_id = job->session_id;
	if (job->rules != NULL) {
		/* Route by the rules the recipients were accepted under,
		 * even if a reload has swapped them since (the keys are
		 * the worker's own copy; only .rules differs). */
		pinned = *keys;
		pinned.rules = job->rules;
		keys = &pinned;
	}
	rc = pipeline_process(&p->opts, keys, kc, &env, data, len, &r,
	    job->reply, sizeof(job->reply));
	free(data);
	if (rc != PIPE_OK) {
		log_event(LOG_LVL_INFO, job->session_id, "result=%s reply=\"%s\"",
		    rc == PIPE_REJECT ? "rejected" : "deferred", job->reply);
		return;
	}
	for (i = 0; i < r.nmsgs; i++)
		size += r.msgs[i].len;
	if ((kept = calloc(r.nbounces ? r.nbounces : 1, sizeof(*kept))) ==
	    NULL || !keep_bounces(&r, kept, &nkept, why, sizeof(why))) {
		log_event(LOG_LVL_ERR, job->session_id, "bounce=not-kept "
		    "reason=\"%s\"", kept ? why : "out of memory");
		snprintf(job->reply, sizeof(job->reply),
		    "451 4.3.0 cannot keep the bounce now");
		goto done;
	}
	if (!queue_all(p, job, &r, why, sizeof(why))) {
		unkeep_bounces(kept, nkept);
		log_event(LOG_LVL_ERR, job->session_id, "queue=failed "
		    "reason=\"%s\"", why);
		snprintf(job->reply, sizeof(job->reply),
		    "451 4.3.0 cannot queue the message now");
		goto done;
	}
	log_bounces(&r, job->session_id);
	job->queued = job->nqenv > 0;
	if (job->nqenv == 0 && r.nbounces > 0)
		snprintf(job->reply, sizeof(job->reply),
		    "250 2.0.0 Ok: bounce received");
	else if (job->nqenv == 0)
		snprintf(job->reply, sizeof(job->reply),
		    "250 2.0.0 Ok: nothing to deliver");
	else if (job->nqenv == 1)
		snprintf(job->reply, sizeof(job->reply),
		    "250 2.0.0 Ok: queued as %s", job->qenv[0].id);
	else
		reply_ids(job);
	log_event(LOG_LVL_INFO, job->nqenv ? job->qenv[0].id : NULL,
	    "session=%s client=%s size=%zu queued=%zu dkim=%s arc=%s spf=%s "
	    "dmarc=%s", job->session_id ? job->session_id : "-",
	    log_quote(job->client_ip ? job->client_ip : "", job->client_ip ?
	    strlen(job->client_ip) : 0, ipq, sizeof(ipq)), size, job->nqenv,
	    r.auth.dkim && r.auth.dkim->n ? dkim_result_str(
	    r.auth.dkim->r[0].result) : "none", arc_cv_str(r.auth.arc.cv),
	    r.auth.have_envelope ? spf_res_str(r.auth.spf_mailfrom.result) :
	    "none", dmarc_res_str(r.auth.dmarc.result));
	for (i = 0; i < r.nouts; i++)
		if (strcmp(r.outs[i].label, "relay") != 0)
			log_event(LOG_LVL_INFO, job->nqenv ? job->qenv[0].id :
			    NULL, "rule=\"%s\" sender=<%s> recipients=%zu%s",
			    r.outs[i].label, r.outs[i].sender, r.outs[i].nrcpt,
			    r.outs[i].senders ? " verp=yes" : "");
done:
	free(kept);
	pipeline_result_free(&r);
}

static void *
worker(void *arg)
{
	struct pipeline *p = arg;
	struct pipeline_keys keys;
	struct dkim_keycache *kc = dkim_keycache_new(256);
	unsigned gen = 0;

	memset(&keys, 0, sizeof(keys));
	pthread_mutex_lock(&p->mu);
	pipeline_keys_copy(&keys, &p->keys);
	gen = p->generation;
	for (;;) {
		struct pipeline_job *job;

		while (p->count == 0 && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->count == 0 && p->stopping)
			break;
		job = p->jobs[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		p->busy++;
		if (gen != p->generation) {
			pipeline_keys_clear(&keys);
			pipeline_keys_copy(&keys, &p->keys);
			gen = p->generation;
		}
		pthread_mutex_unlock(&p->mu);

		run_job(p, job, &keys, kc);
		p->done(p->arg, job);

		pthread_mutex_lock(&p->mu);
		p->busy--;
	}
	pthread_mutex_unlock(&p->mu);
	pipeline_keys_clear(&keys);
	dkim_keycache_free(kc);
	return NULL;
}

struct pipeline *
pipeline_new(unsigned workers, const struct pipeline_opts *o,
    const struct pipeline_keys *keys, struct queue *q, pipeline_done_fn done,
    void *arg)
{
	struct pipeline *p = calloc(1, sizeof(*p));
	unsigned i;

	if (p == NULL)
		return NULL;
	p->opts = *o;
	p->q = q;
	p->done = done;
	p->arg = arg;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (!pipeline_keys_copy(&p->keys, keys))
		goto fail;
	p->cap = 1024;
	if ((p->jobs = calloc(p->cap, sizeof(*p->jobs))) == NULL)
		goto fail;
	workers = workers ? workers : 8;	/* as the config's default */
	if ((p->threads = calloc(workers, sizeof(*p->threads))) == NULL)
		goto fail;
	for (i = 0; i < workers; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
			break;
		p->nthreads++;
	}
	if (p->nthreads == 0)
		goto fail;
	return p;
fail:
	pipeline_keys_clear(&p->keys);
	free(p->jobs);
	free(p->threads);
	free(p);
	return NULL;
}

void
pipeline_submit(struct pipeline *p, struct pipeline_job *job)
{
	pthread_mutex_lock(&p->mu);
	if (p->count == p->cap) {
		struct pipeline_job **nj = calloc(p->cap * 2, sizeof(*nj));
		size_t i;

		if (nj == NULL) {
			pthread_mutex_unlock(&p->mu);
			snprintf(job->reply, sizeof(job->reply),
			    "451 4.3.0 too busy, try again later");
			p->done(p->arg, job);
			return;
		}
		for (i = 0; i < p->count; i++)
			nj[i] = p->jobs[(p->head + i) % p->cap];
		free(p->jobs);
		p->jobs = nj;
		p->head = 0;
		p->cap *= 2;
	}
	p->jobs[(p->head + p->count) % p->cap] = job;
	p->count++;
	pthread_mutex_unlock(&p->mu);
	/* After the unlock: the worker woken does not block on the mutex. */
	pthread_cond_signal(&p->cv);
}

void
pipeline_set_keys(struct pipeline *p, const struct pipeline_keys *keys)
{
	struct pipeline_keys nk, old;

	if (!pipeline_keys_copy(&nk, keys))
		return;
	pthread_mutex_lock(&p->mu);
	old = p->keys;
	p->keys = nk;
	p->generation++;
	pthread_mutex_unlock(&p->mu);
	pipeline_keys_clear(&old);
}

unsigned
pipeline_busy(struct pipeline *p)
{
	unsigned n;

	pthread_mutex_lock(&p->mu);
	n = (unsigned)p->count + p->busy;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void
pipeline_free(struct pipeline *p)
{
	unsigned i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pipeline_keys_clear(&p->keys);
	free(p->jobs);
	free(p->threads);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void
pipeline_job_free(struct pipeline_job *job)
{
	size_t k;

	if (job == NULL)
		return;
	free(job->client_ip);
	free(job->helo);
	free(job->sender);
	free(job->session_id);
	for (k = 0; k < job->nrcpt; k++)
		free(job->rcpt[k]);
	free(job->rcpt);
	rules_unref(job->rules);
	for (k = 0; k < job->nqenv; k++) {
		env_clear(&job->qenv[k]);
		free(job->qdata[k]);
	}
	free(job->qenv);
	free(job->qdata);
	free(job->qlen);
	free(job);
}
