/*
 * pipeline.c - authenticate, sign, seal and queue (see pipeline.h).
 *
 * Untrusted input: the message and the client's HELO. The HELO goes into
 * our Received field only after every byte outside printable ASCII has
 * been replaced, so a client cannot inject a header. Headers the relay did
 * not mean to change keep their bytes: the new fields are prepended and
 * forged Authentication-Results are cut out whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arc.h"
#include "log.h"
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

enum pipeline_rc
pipeline_process(const struct pipeline_opts *o, const struct pipeline_keys *k,
    struct dkim_keycache *kc, const struct pipeline_env *env,
    const char *data, size_t len, struct dkim_buf *out,
    struct auth_results *resout, char *reply, size_t replylen)
{
	struct dkim_msg *m = NULL, *m1 = NULL, *m2 = NULL;
	struct dkim_buf clean, b1, sig, aar, fields;
	struct auth_request ar;
	struct auth_results res;
	struct arc_seal_opts ao;
	char why[DKIM_WHY_MAX] = "";
	int64_t now = o->now ? o->now : (int64_t)time(NULL);
	enum pipeline_rc rc = PIPE_TEMPFAIL;
	size_t removed;
	enum dkim_status st;

	memset(&res, 0, sizeof(res));
	dkim_buf_init(&clean, 0);
	dkim_buf_init(&b1, 0);
	dkim_buf_init(&sig, 0);
	dkim_buf_init(&aar, 0);
	dkim_buf_init(&fields, 0);
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

	memset(&ar, 0, sizeof(ar));
	ar.ip = env->client_ip && env->client_ip[0] ? env->client_ip : NULL;
	ar.helo = env->helo;
	ar.mail_from = env->sender ? env->sender : "";
	ar.receiver = o->hostname;
	ar.now = now;
	ar.keycache = kc;
	ar.dmarc_mode = o->dmarc_mode;
	ar.psl = o->psl;
	if (auth_evaluate(m, &o->dns, &ar, &res) != DKIM_OK ||
	    !auth_aar_results(&res, o->authserv_id, &aar))
		goto nomem;

	/* Our Received field, then our DKIM signature over that message. */
	add_received(&b1, o, env, now);
	dkim_buf_add(&b1, removed ? clean.p : data, removed ? clean.len : len);
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

	/* Then the ARC set, over everything above (RFC 8617 §5.1 step 1). */
	arc_seal_opts_init(&ao);
	ao.domain = k->arc_domain ? k->arc_domain : k->sign_domain;
	ao.selector = k->arc_selector ? k->arc_selector : k->sign_selector;
	ao.key = k->arc_key ? k->arc_key : k->sign_key;
	ao.alg = dkim_alg_for_key(ao.key);
	ao.authserv_id = o->authserv_id;
	ao.results = aar.p;
	ao.now = now;
	st = arc_seal(m2, &res.arc, &ao, &fields, why, sizeof(why));
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
	rc = PIPE_TEMPFAIL;
out:
	if (resout && rc == PIPE_OK)
		*resout = res;
	else
		auth_results_free(&res);
	dkim_msg_free(m);
	dkim_msg_free(m1);
	dkim_msg_free(m2);
	dkim_buf_free(&clean);
	dkim_buf_free(&b1);
	dkim_buf_free(&sig);
	dkim_buf_free(&aar);
	dkim_buf_free(&fields);
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

/* read_all - the DATA file; NULL with errno on failure. */
static char *
read_all(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	char *buf;
	size_t got = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) != 0 || (buf = malloc((size_t)sb.st_size + 1)) ==
	    NULL) {
		close(fd);
		return NULL;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

static void
run_job(struct pipeline *p, struct pipeline_job *job,
    const struct pipeline_keys *keys, struct dkim_keycache *kc)
{
	struct pipeline_env env;
	struct dkim_buf out;
	struct auth_results res;
	char why[DKIM_WHY_MAX];
	size_t len, k;
	char *data = read_all(job->path, &len);
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
	env.sender = job->sender;
	env.rcpt = (const char *const *)job->rcpt;
	env.nrcpt = job->nrcpt;
	env.session_id = job->session_id;
	dkim_buf_init(&out, (size_t)1 << 31);
	rc = pipeline_process(&p->opts, keys, kc, &env, data, len, &out, &res,
	    job->reply, sizeof(job->reply));
	free(data);
	if (rc != PIPE_OK) {
		dkim_buf_free(&out);
		log_event(LOG_LVL_INFO, job->session_id, "result=%s reply=\"%s\"",
		    rc == PIPE_REJECT ? "rejected" : "deferred", job->reply);
		return;
	}
	memset(&job->qenv, 0, sizeof(job->qenv));
	job->qenv.sender = strdup(job->sender ? job->sender : "");
	job->qenv.rcpt = calloc(job->nrcpt ? job->nrcpt : 1,
	    sizeof(*job->qenv.rcpt));
	job->qenv.first_seen = (int64_t)time(NULL);
	if (job->qenv.sender == NULL || job->qenv.rcpt == NULL) {
		snprintf(job->reply, sizeof(job->reply),
		    "451 4.3.0 temporary local problem");
		goto done;
	}
	for (k = 0; k < job->nrcpt; k++) {
		job->qenv.rcpt[k].addr = strdup(job->rcpt[k]);
		job->qenv.rcpt[k].state = Q_PENDING;
		job->qenv.rcpt[k].next_retry = job->qenv.first_seen;
		job->qenv.nrcpt++;
	}
	if (!queue_commit(p->q, out.p, out.len, &job->qenv, why, sizeof(why))) {
		log_event(LOG_LVL_ERR, job->session_id, "queue=failed "
		    "reason=\"%s\"", why);
		snprintf(job->reply, sizeof(job->reply),
		    "451 4.3.0 cannot queue the message now");
		goto done;
	}
	job->queued = true;
	snprintf(job->reply, sizeof(job->reply), "250 2.0.0 Ok: queued as %s",
	    job->qenv.id);
	{
		char ipq[80];

		log_event(LOG_LVL_INFO, job->qenv.id, "session=%s client=%s "
		    "size=%zu dkim=%s arc=%s spf=%s dmarc=%s",
		    job->session_id ? job->session_id : "-",
		    log_quote(job->client_ip ? job->client_ip : "", 
		    job->client_ip ? strlen(job->client_ip) : 0, ipq,
		    sizeof(ipq)), out.len,
		    res.dkim && res.dkim->n ? dkim_result_str(
		    res.dkim->r[0].result) : "none", arc_cv_str(res.arc.cv),
		    res.have_envelope ? spf_res_str(res.spf_mailfrom.result) :
		    "none", dmarc_res_str(res.dmarc.result));
	}
done:
	auth_results_free(&res);
	dkim_buf_free(&out);
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
		unlink(job->path);
		p->done(p->arg, job);

		pthread_mutex_lock(&p->mu);
		p->busy--;
		pthread_cond_broadcast(&p->cv);
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
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
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
	for (k = 0; k < job->qenv.nrcpt; k++) {
		free(job->qenv.rcpt[k].addr);
		free(job->qenv.rcpt[k].last_reply);
	}
	free(job->qenv.rcpt);
	free(job->qenv.sender);
	free(job);
}
