/*
 * cli_serve.c - `arcrelay serve`: the daemon. It wires the parts together:
 * SMTP sessions on the event loop (smtpd), the pipeline on worker threads
 * (authenticate, sign, seal, queue before the 250), and delivery on the
 * loop (deliver). It decides which recipients are accepted: only
 * addresses a rule claims, never an open relay.
 *
 * SIGTERM/SIGINT: stop accepting, let sessions and the pipeline finish
 * within a grace period, then exit. SIGHUP: reload keys and the relay
 * domains from the configuration without dropping connections. SIGUSR1:
 * flush, every pending recipient due now (`arcrelay queue --flush` sends
 * it, finding the daemon through [server] pid_file, written here before
 * the privilege drop and removed at a clean exit); one that comes during
 * the start is held until the loop runs, then done.
 *
 * The configured maildirs are made at start (as root, then given to
 * [server] user) and on reload, and checked as the user the daemon runs
 * as: a maildir it cannot write stops the start, or the reload, at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cli.h"
#include "config.h"
#include "deliver.h"
#include "dns.h"
#include "log.h"
#include "maildir.h"
#include "pidfile.h"
#include "pipeline.h"
#include "rcpt.h"
#include "queue.h"
#include "smtpd.h"
#include "wake.h"
#include "zonefile.h"

#define GRACE_SECONDS 30

struct relay {
	struct relay_config *cfg;	/* owned; replaced on SIGHUP */
	pthread_mutex_t cfg_mu;		/* cfg is read by the rcpt hook only
					 * on the loop thread; the lock
					 * guards the swap */
	struct event_base *base;
	struct dns_resolver *res;
	struct zonefile *zf;
	struct pdns dns;
	struct queue *q;
	struct deliver *dl;
	struct pipeline *pl;
	struct smtpd *sd;
	SSL_CTX *tls;
	struct event *ev_term, *ev_int, *ev_hup, *ev_usr1, *ev_grace;
	bool pid_written;		/* cfg->pid_file is ours to remove */
	struct wake *done_wake;		/* the pipeline's jobs are done */
	pthread_mutex_t done_mu;
	size_t done_n, done_cap;	/* under done_mu */
	struct pipeline_job **done_v;	/* under done_mu: for on_done */
	bool stopping;
	int64_t stop_deadline;
	struct pipeline_keys bounce_keys;	/* under cfg_mu: signs bounces */
	struct dmarc_psl *psl;		/* [policy] dmarc = rfc7489 */
	uint64_t reload_txn;		/* loop thread: smtpd_next_txn_serial
					 * at the last reload */
};

/* --------------------------------------------------------------- keys */

static EVP_PKEY *
load_or_make_key(const char *path,
    const char *domain, const char *selector, bool may_create, char *why,
    size_t whylen)
{
	EVP_PKEY *k = cli_load_key(path, why, whylen);
	FILE *fp;
	char dir[1024], *slash;
	char *rec;
	int fd;

	if (k || !may_create || access(path, F_OK) == 0)
		return k;
	/* The embedded default: make the key on first start and print the
	 * record to publish, once. */
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		for (char *p = dir + 1; *p; p++)
			if (*p == '/') {
				*p = '\0';
				mkdir(dir, 0700);
				*p = '/';
			}
		mkdir(dir, 0700);
	}
	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)) == NULL ||
	    (fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0 ||
	    (fp = fdopen(fd, "w")) == NULL) {
		snprintf(why, whylen, "cannot create %s: %s", path,
		    strerror(errno));
		EVP_PKEY_free(k);
		return NULL;
	}
	PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	if ((rec = cli_key_record(k)) != NULL) {
		printf("arcrelay: made a new signing key %s\n"
		    "publish this record in DNS so receivers can verify its "
		    "signatures:\n", path);
		cli_print_record(stdout, selector, domain, rec);
		fflush(stdout);
		free(rec);
	}
	return k;
}

static bool
load_keys(const struct relay_config *cfg, struct pipeline_keys *k, char *why,
    size_t whylen)
{
	/* The embedded default's key, and the default path of a file with
	 * no [signing] section, are made on first start. */
	bool create = cfg->path == NULL ||
	    strcmp(cfg->sign_key, "./var/keys/arcrelay.private") == 0;

	memset(k, 0, sizeof(*k));
	k->sign_key = load_or_make_key(cfg->sign_key, cfg->sign_domain,
	    cfg->sign_selector, create, why, whylen);
	if (k->sign_key == NULL)
		return false;
	return cli_keys_finish(cfg, k, why, whylen);
}

/* sign_bounce - our DKIM signature on the bounces we send (delivery's
 * worker threads call it). out gets the signed message (malloc'd). */
static bool
sign_bounce(void *arg, const char *msg, size_t len, char **out,
    size_t *outlen)
{
	struct relay *r = arg;
	struct pipeline_keys k;
	struct dkim_msg *m;
	struct dkim_buf b;
	bool ok = false;

	pthread_mutex_lock(&r->cfg_mu);
	ok = pipeline_keys_copy(&k, &r->bounce_keys);
	pthread_mutex_unlock(&r->cfg_mu);
	if (!ok || k.sign_key == NULL) {
		pipeline_keys_clear(&k);
		return false;
	}
	ok = false;
	dkim_buf_init(&b, 0);
	if (dkim_msg_parse(msg, len, NULL, &m, NULL, 0) == DKIM_OK) {
		ok = pipeline_dkim_sign(&k, m, (int64_t)time(NULL), &b, NULL,
		    0) == DKIM_OK && dkim_buf_add(&b, msg, len);
		dkim_msg_free(m);
	}
	if (ok)
		*out = dkim_buf_take(&b, outlen);
	dkim_buf_free(&b);
	pipeline_keys_clear(&k);
	return ok;
}

/* local_bounce - a bounce delivery would send to one of our lists'
 * bounce addresses is taken here, under the rules now in force
 * (delivery's worker threads call it). */
static enum deliver_local
local_bounce(void *arg, const char *rcpt, const char *id, const char *msg,
    size_t len, char *why, size_t whylen)
{
	struct relay *r = arg;
	struct rules *ru;
	enum pipeline_local lr;

	pthread_mutex_lock(&r->cfg_mu);
	ru = rules_ref(r->cfg->rules);
	pthread_mutex_unlock(&r->cfg_mu);
	lr = pipeline_local_bounce(ru, r->cfg->hostname, rcpt, id, msg, len,
	    why, whylen);
	rules_unref(ru);
	return lr == PIPE_LOCAL_KEPT ? DELIVER_LOCAL_KEPT :
	    lr == PIPE_LOCAL_FAILED ? DELIVER_LOCAL_FAILED : DELIVER_LOCAL_NO;
}

/* ---------------------------------------------------------- recipients */

/* rcpt_hook - rcpt_check under the configuration lock. */
static bool
rcpt_hook(void *arg, const struct smtpd_peer *peer, const char *mail_from,
    const char *rcpt, char *reply, size_t replylen)
{
	struct relay *r = arg;
	bool ok;

	pthread_mutex_lock(&r->cfg_mu);
	ok = rcpt_check(r->cfg, peer->loopback, mail_from, rcpt,
	    (int64_t)time(NULL), reply, replylen);
	pthread_mutex_unlock(&r->cfg_mu);
	return ok;
}

static const char *
route(void *arg, const char *rcpt_domain)
{
	struct relay *r = arg;
	const char *t = NULL;
	size_t i;

	pthread_mutex_lock(&r->cfg_mu);
	for (i = 0; i < r->cfg->ndomains; i++)
		if (strcasecmp(r->cfg->domains[i].name, rcpt_domain) == 0)
			t = r->cfg->domains[i].deliver;
	pthread_mutex_unlock(&r->cfg_mu);
	return t;
}

/*
 * deliver_self_from - tell delivery the addresses the server listens on
 * (as bound, names resolved), so that an MX pointing at this machine is
 * taken for this relay even under another name.
 */
static bool
deliver_self_from(struct deliver *dl, const struct smtpd *sd, char *why,
    size_t whylen)
{
	size_t n = smtpd_addrs(sd, NULL, 0);
	struct sockaddr_storage *a = calloc(n ? n : 1, sizeof(*a));
	bool ok;

	if (a == NULL) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	n = smtpd_addrs(sd, a, n);
	ok = deliver_self(dl, a, n, why, whylen);
	free(a);
	return ok;
}

/* ------------------------------------------------------------ maildirs */

/*
 * cfg_maildir - the i-th place cfg may deliver to: the [delivery] target,
 * the [domain] ones, the lists' bounces. *dir is the maildir's path, or
 * NULL when that place is not a maildir. False past the last.
 */
static bool
cfg_maildir(const struct relay_config *cfg, size_t i, const char **dir)
{
	const char *t = NULL;
	size_t nlists = cfg->rules ? cfg->rules->nlists : 0;

	if (i == 0)
		t = cfg->deliver;
	else if (i - 1 < cfg->ndomains)
		t = cfg->domains[i - 1].deliver;
	else if (i - 1 - cfg->ndomains < nlists) {
		*dir = cfg->rules->lists[i - 1 - cfg->ndomains].bounce_maildir;
		return true;
	} else
		return false;
	*dir = t != NULL && strncmp(t, "maildir:", 8) == 0 ? t + 8 : NULL;
	return true;
}

/* cannot_deliver - why: the user the daemon runs as cannot use dir. */
static void
cannot_deliver(const struct relay_config *cfg, const char *dir,
    const char *reason, char *why, size_t whylen)
{
	if (cfg->user != NULL)
		snprintf(why, whylen, "user %s cannot deliver to maildir:%s: "
		    "%s", cfg->user, dir, reason);
	else
		snprintf(why, whylen, "cannot deliver to maildir:%s: %s", dir,
		    reason);
}

/*
 * maildirs_prepare - make every maildir cfg names, before the first
 * message needs it. Started as root with [server] user, what is made here
 * is given to that user (maildir_prepare leaves existing ones alone).
 */
static bool
maildirs_prepare(const struct relay_config *cfg, char *why, size_t whylen)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	const char *dir;
	char w[768];
	size_t i;

	if (cfg->user != NULL && geteuid() == 0) {
		struct passwd *pw = getpwnam(cfg->user);

		if (pw == NULL) {
			snprintf(why, whylen, "no such user: %s", cfg->user);
			return false;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	for (i = 0; cfg_maildir(cfg, i, &dir); i++) {
		if (dir == NULL || maildir_prepare(dir, uid, gid, w,
		    sizeof(w)))
			continue;
		/* Often a maildir that is there but not ours (on reload, as
		 * the user): say which directory and whose it is. */
		if (uid == (uid_t)-1 && !maildir_usable(dir, w, sizeof(w)))
			cannot_deliver(cfg, dir, w, why, whylen);
		else
			snprintf(why, whylen, "cannot make maildir %s: %s",
			    dir, w);
		return false;
	}
	return true;
}

/*
 * maildirs_usable - this process, as it will run, can deliver into every
 * maildir cfg names: refused now, with the directory at fault, rather
 * than at each delivery later.
 */
static bool
maildirs_usable(const struct relay_config *cfg, char *why, size_t whylen)
{
	const char *dir;
	char w[768];
	size_t i;

	for (i = 0; cfg_maildir(cfg, i, &dir); i++)
		if (dir != NULL && !maildir_usable(dir, w, sizeof(w))) {
			cannot_deliver(cfg, dir, w, why, whylen);
			return false;
		}
	return true;
}

/* ------------------------------------------------------------- messages */

static char *
sdup(const char *s)
{
	return strdup(s ? s : "");
}

/* message_hook - the message goes to the pipeline, which reads the
 * spool file through the borrowed fd before its reply returns it. */
static void
message_hook(void *arg, struct smtpd_txn *txn)
{
	struct relay *r = arg;
	const struct smtpd_peer *peer = smtpd_txn_peer(txn);
	struct pipeline_job *job = calloc(1, sizeof(*job));
	size_t k, n = smtpd_txn_nrcpt(txn);

	if (job == NULL || (job->rcpt = calloc(n ? n : 1,
	    sizeof(char *))) == NULL) {
		free(job);
		smtpd_txn_done(txn, "451 4.3.0 temporary local problem");
		return;
	}
	job->fd = smtpd_txn_data(txn, &job->size);
	job->client_ip = sdup(peer->addr);
	job->helo = sdup(peer->helo);
	job->session_id = sdup(peer->session_id);
	job->sender = sdup(smtpd_txn_sender(txn));
	job->tls = peer->tls;
	for (k = 0; k < n; k++)
		job->rcpt[job->nrcpt++] = sdup(smtpd_txn_rcpt(txn, k));
	job->token = txn;
	/*
	 * A reload between RCPT and the end of DATA may have dropped a rule
	 * that took a recipient (a list removed, say). If one happened since
	 * this transaction's MAIL, check the recipients again under the
	 * rules in force now. Either way pin those rules to the job, so that
	 * the pipeline routes by the rules the recipients were accepted
	 * under; a recipient they no longer take gets the whole message
	 * deferred, and the retry meets the new rules at RCPT.
	 */
	k = job->nrcpt;
	pthread_mutex_lock(&r->cfg_mu);
	if (smtpd_txn_serial(txn) < r->reload_txn)
		for (k = 0; k < job->nrcpt; k++) {
			char why[256];

			if (!rcpt_check(r->cfg, peer->loopback, job->sender,
			    job->rcpt[k], (int64_t)time(NULL), why,
			    sizeof(why)))
				break;
		}
	if (k == job->nrcpt)
		job->rules = rules_ref(r->cfg->rules);
	pthread_mutex_unlock(&r->cfg_mu);
	if (k < job->nrcpt) {
		log_event(LOG_LVL_INFO, job->session_id, "rcpt=%s "
		    "result=deferred reason=\"no longer accepted after a "
		    "reload\"", job->rcpt[k]);
		pipeline_job_free(job);
		smtpd_txn_done(txn, "451 4.3.0 the relay's rules changed during "
		    "this transaction, try again");
		return;
	}
	pipeline_submit(r->pl, job);
}

/* done_cb - on a worker thread: the job goes to the loop, which sends
 * the reply and hands what was queued to delivery, so one wake-up of the
 * loop serves both. */
static void
done_cb(void *arg, struct pipeline_job *job)
{
	struct relay *r = arg;

	pthread_mutex_lock(&r->done_mu);
	if (r->done_n == r->done_cap) {
		size_t nc = r->done_cap ? r->done_cap * 2 : 64;
		struct pipeline_job **nv = realloc(r->done_v,
		    nc * sizeof(*nv));

		if (nv == NULL) {
			/* Reply from here; what was queued stays on disk
			 * for a restart to pick up. */
			pthread_mutex_unlock(&r->done_mu);
			smtpd_txn_done(job->token, job->reply);
			pipeline_job_free(job);
			return;
		}
		r->done_v = nv;
		r->done_cap = nc;
	}
	if (r->done_n == 0)
		wake_up(r->done_wake);	/* on_done takes all there are */
	r->done_v[r->done_n++] = job;
	pthread_mutex_unlock(&r->done_mu);
}

/* on_done - on the loop: the replies to the end of DATA, and the queued
 * messages to delivery. */
static void
on_done(void *arg)
{
	struct relay *r = arg;
	struct pipeline_job **v;
	size_t n, i;

	pthread_mutex_lock(&r->done_mu);
	v = r->done_v;
	n = r->done_n;
	r->done_v = NULL;
	r->done_n = r->done_cap = 0;
	pthread_mutex_unlock(&r->done_mu);
	for (i = 0; i < n; i++) {
		size_t k;

		smtpd_txn_done(v[i]->token, v[i]->reply);
		v[i]->token = NULL;
		for (k = 0; v[i]->queued && k < v[i]->nqenv; k++) {
			deliver_add_data(r->dl, &v[i]->qenv[k],
			    v[i]->qdata[k], v[i]->qlen[k]);
			v[i]->qdata[k] = NULL;	/* delivery's now */
		}
		pipeline_job_free(v[i]);
	}
	free(v);
}

/* A zone file ([dns] records) answers delivery's MX/A/AAAA lookups too,
 * delivered on the next loop turn as an async answer would be. */
struct zone_query {
	enum pdns_rc rc;
	struct pdns_answer ans;
	dns_async_cb cb;
	void *arg;
};

static void
zone_answer(evutil_socket_t fd, short what, void *arg)
{
	struct zone_query *z = arg;

	z->cb(z->arg, z->rc, &z->ans);
	pdns_answer_clear(&z->ans);
	free(z);
}

static bool
zone_lookup_async(void *arg, const char *qname, enum pdns_type type,
    dns_async_cb cb, void *cbarg)
{
	struct relay *r = arg;
	struct zone_query *z = calloc(1, sizeof(*z));
	struct timeval now = { 0, 0 };

	if (z == NULL)
		return false;
	z->rc = zonefile_lookup(r->zf, qname, type, &z->ans);
	z->cb = cb;
	z->arg = cbarg;
	if (event_base_once(r->base, -1, EV_TIMEOUT, zone_answer, z,
	    &now) != 0) {
		pdns_answer_clear(&z->ans);
		free(z);
		return false;
	}
	return true;
}

/* --------------------------------------------------------------- signals */

static void
check_stopped(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	struct timeval tv = { 0, 100000 };

	if ((smtpd_sessions(r->sd) == 0 && pipeline_busy(r->pl) == 0) ||
	    (int64_t)time(NULL) >= r->stop_deadline) {
		if (smtpd_sessions(r->sd))
			smtpd_close_all(r->sd);
		log_event(LOG_LVL_INFO, NULL, "event=stopped");
		event_base_loopexit(r->base, NULL);
		return;
	}
	evtimer_add(r->ev_grace, &tv);
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct relay *r = arg;

	if (r->stopping)
		return;
	r->stopping = true;
	r->stop_deadline = (int64_t)time(NULL) + GRACE_SECONDS;
	log_event(LOG_LVL_INFO, NULL, "event=stopping signal=%d grace=%ds",
	    (int)sig, GRACE_SECONDS);
	smtpd_stop(r->sd);
	check_stopped(-1, 0, r);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct relay *r = arg;
	struct relay_config *nc;
	struct pipeline_keys keys;
	char why[512];

	if (r->cfg->path == NULL) {
		log_event(LOG_LVL_INFO, NULL, "event=reload keys=kept "
		    "reason=\"embedded configuration\"");
		return;
	}
	if ((nc = config_load(r->cfg->path, why, sizeof(why))) == NULL ||
	    !maildirs_prepare(nc, why, sizeof(why)) ||
	    !maildirs_usable(nc, why, sizeof(why)) ||
	    !load_keys(nc, &keys, why, sizeof(why))) {
		log_event(LOG_LVL_ERR, NULL, "event=reload result=refused "
		    "reason=\"%s\"", why);
		config_free(nc);
		return;
	}
	pipeline_set_keys(r->pl, &keys);
	dkim_crypto_forget();	/* the old keys' prepared contexts */
	pthread_mutex_lock(&r->cfg_mu);
	pipeline_keys_clear(&r->bounce_keys);
	r->bounce_keys = keys;		/* takes the references */
	/* Listen addresses, spool and limits need a restart; domains and
	 * keys take effect now. */
	{
		struct cfg_domain *d = r->cfg->domains;
		size_t n = r->cfg->ndomains;

		struct rules *ru = r->cfg->rules;

		r->cfg->domains = nc->domains;
		r->cfg->ndomains = nc->ndomains;
		nc->domains = d;
		nc->ndomains = n;
		/* Lists (members files re-read), forwards and SRS too. */
		r->cfg->rules = nc->rules;
		nc->rules = ru;
	}
	/* Transactions begun before now are checked again at the end of
	 * DATA (message_hook). */
	r->reload_txn = smtpd_next_txn_serial(r->sd);
	pthread_mutex_unlock(&r->cfg_mu);
	config_free(nc);
	log_event(LOG_LVL_INFO, NULL, "event=reload result=ok");
}

/*
 * usr1_block - hold SIGUSR1 pending (block) or let it in (unblock). It is
 * blocked first thing, before any thread exists, so every thread the
 * daemon starts inherits the block and the signal can only be taken by
 * the loop's thread, once the loop's handler is in place and the queue
 * is loaded. `arcrelay queue --flush` may signal as soon as the pid file
 * is there: until the loop is ready, the flush waits instead of being
 * lost, and SIGUSR1's default action (to terminate) never applies.
 */
static void
usr1_block(bool block)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	(void)pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

/* on_usr1 - flush: what waits for a retry is tried now. */
static void
on_usr1(evutil_socket_t sig, short what, void *arg)
{
	struct relay *r = arg;

	log_event(LOG_LVL_INFO, NULL, "event=flush messages=%zu",
	    deliver_flush(r->dl));
}

/* ------------------------------------------------------------------ main */

static SSL_CTX *
tls_ctx(const struct relay_config *cfg, char *why, size_t whylen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) !=
	    1 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(why, whylen, "TLS: cannot use %s and %s",
		    cfg->tls_cert, cfg->tls_key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * drop_privileges - once the listeners are bound and the keys read, run
 * as [server] user: the spool is handed to that user first. Keys re-read
 * on SIGHUP must then be readable by it.
 */
static bool
drop_privileges(const struct relay_config *cfg, char *why, size_t whylen)
{
	static const char *const sub[] = { "", "/tmp", "/queue", "/corrupt" };
	struct passwd *pw;
	char path[1024];
	size_t i;

	if (cfg->user == NULL)
		return true;
	if (geteuid() != 0) {
		snprintf(why, whylen, "user = %s needs arcrelay to start as "
		    "root", cfg->user);
		return false;
	}
	if ((pw = getpwnam(cfg->user)) == NULL) {
		snprintf(why, whylen, "no such user: %s", cfg->user);
		return false;
	}
	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", cfg->spool, sub[i]);
		if (chown(path, pw->pw_uid, pw->pw_gid) != 0 && errno != ENOENT) {
			snprintf(why, whylen, "cannot give %.200s to %s: %s", path,
			    cfg->user, strerror(errno));
			return false;
		}
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0 ||
	    setuid(0) == 0) {
		snprintf(why, whylen, "cannot become %s: %s", cfg->user,
		    strerror(errno));
		return false;
	}
	return true;
}

static int
tmpfile_cb(void *arg, char *path, size_t pathlen)
{
	return queue_tmpfile(((struct relay *)arg)->q, path, pathlen);
}

static void
serve_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: arcrelay serve [--config FILE] [--check]\n"
	    "Without --config: listen on 127.0.0.1:2525, keep spool and keys "
	    "under ./var/,\ndeliver to maildir:./var/outbox, accept any "
	    "recipient from loopback clients.\n"
	    "--check: read the configuration and everything it names (keys, "
	    "certificate,\nzone file, maildirs, user), print what would run "
	    "and the key records to\npublish, and exit: 0 when all is usable, "
	    "1 when something is not, 2 when\nthe file itself is refused. "
	    "Nothing is written.\n");
}

/* ---------------------------------------------------------------- check */

#define CHECK_PROBLEM(...) do { cli_err("serve", __VA_ARGS__); \
	problems++; } while (0)

/*
 * check_key - report the key at path for d=domain s=selector and print
 * its record; a missing key that serve would make is no problem.
 */
static unsigned
check_key(const char *what, const char *path, const char *domain,
    const char *selector, bool may_create)
{
	char why[512], *rec;
	EVP_PKEY *k;
	unsigned problems = 0;

	if (may_create && access(path, F_OK) != 0) {
		printf("%s: d=%s s=%s, key %s not made yet: serve makes it on "
		    "first start and prints its record\n", what, domain,
		    selector, path);
		return 0;
	}
	if ((k = cli_load_key(path, why, sizeof(why))) == NULL) {
		CHECK_PROBLEM("%s key: %s", what, why);
		return problems;
	}
	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA &&
	    EVP_PKEY_get_bits(k) < 1024)
		CHECK_PROBLEM("%s key %s: %d bits; receivers refuse RSA keys "
		    "under 1024 bits (RFC 8301)", what, path,
		    EVP_PKEY_get_bits(k));
	printf("%s: d=%s s=%s, key %s (%s, %d bits); publish:\n", what,
	    domain, selector, path, EVP_PKEY_get_base_id(k) ==
	    EVP_PKEY_ED25519 ? "ed25519" : "rsa", EVP_PKEY_get_bits(k));
	if ((rec = cli_key_record(k)) != NULL)
		cli_print_record(stdout, selector, domain, rec);
	free(rec);
	EVP_PKEY_free(k);
	return problems;
}

/*
 * serve_check - `serve --check`: everything the start would read, read
 * and reported, nothing written, no socket bound. Exit status 0 when
 * all of it is usable, 1 when something is not (each problem on one
 * stderr line), 2 when the configuration itself is refused.
 */
static int
serve_check(const char *cfgpath)
{
	struct relay_config *cfg;
	struct dns_resolver *res;
	struct zonefile *zf;
	SSL_CTX *tls;
	const char *dir;
	char why[1024];
	unsigned problems = 0;
	size_t i;
	bool create;

	cfg = cfgpath ? config_load(cfgpath, why, sizeof(why)) :
	    config_default();
	if (cfg == NULL) {
		cli_err("serve", "%s", cfgpath ? why : "out of memory");
		return EXIT_USAGE;
	}
	printf("configuration: %s\n", cfgpath ? cfgpath :
	    "the embedded default");
	for (i = 0; i < cfg->nlisten; i++)
		printf("listen: %s\n", cfg->listen[i]);
	printf("hostname: %s, authserv-id: %s\n", cfg->hostname,
	    cfg->authserv_id);
	printf("delivery: %s; %zu relay domain(s), %zu list(s), %zu "
	    "forward(s)\n", cfg->deliver, cfg->ndomains,
	    cfg->rules ? cfg->rules->nlists : 0,
	    cfg->rules ? cfg->rules->nforwards : 0);

	create = cfg->path == NULL ||
	    strcmp(cfg->sign_key, "./var/keys/arcrelay.private") == 0;
	problems += check_key("DKIM signing", cfg->sign_key,
	    cfg->sign_domain, cfg->sign_selector, create);
	if (cfg->arc_key)
		problems += check_key("ARC sealing", cfg->arc_key,
		    cfg->arc_domain ? cfg->arc_domain : cfg->sign_domain,
		    cfg->arc_selector ? cfg->arc_selector :
		    cfg->sign_selector, false);
	if (cfg->tls_cert) {
		if ((tls = tls_ctx(cfg, why, sizeof(why))) == NULL)
			CHECK_PROBLEM("%s", why);
		else
			printf("STARTTLS: %s\n", cfg->tls_cert);
		SSL_CTX_free(tls);
	}
	if (cfg->records) {
		if ((zf = zonefile_load(cfg->records, why, sizeof(why))) ==
		    NULL)
			CHECK_PROBLEM("%s", why);
		zonefile_free(zf);
	} else {
		struct dns_config dcfg = { cfg->resolver,
		    cfg->dns_timeout * 1000, NULL };

		if ((res = dns_resolver_new(&dcfg, why, sizeof(why))) == NULL)
			CHECK_PROBLEM("%s", why);
		dns_resolver_free(res);
	}
	if (cfg->dmarc_mode == 1) {
		struct dmarc_psl *psl = dmarc_psl_load(DMARC_PSL_DEBIAN, why,
		    sizeof(why));

		if (psl == NULL)
			CHECK_PROBLEM("%s", why);
		dmarc_psl_free(psl);
	}
	if (cfg->user != NULL && getpwnam(cfg->user) == NULL)
		CHECK_PROBLEM("no such user: %s", cfg->user);
	/* A maildir that is not there yet is made at start; one that is
	 * there must be usable (checked as this process, so as root when
	 * serve would start as root and then become [server] user). */
	for (i = 0; cfg_maildir(cfg, i, &dir); i++) {
		char sub[1100];
		struct stat st;

		if (dir == NULL)
			continue;
		snprintf(sub, sizeof(sub), "%s/tmp", dir);
		if (stat(dir, &st) != 0)
			printf("maildir %s: made at start\n", dir);
		else if (!S_ISDIR(st.st_mode))
			CHECK_PROBLEM("maildir %s: not a directory", dir);
		else if (access(sub, F_OK) != 0 && access(dir, W_OK | X_OK) == 0)
			printf("maildir %s: tmp/, new/ and cur/ made at start\n",
			    dir);
		else if (!maildir_usable(dir, why, sizeof(why)))
			CHECK_PROBLEM("maildir %s: %s", dir, why);
	}
	config_free(cfg);
	if (problems) {
		printf("%u problem(s); serve would not start\n", problems);
		return 1;
	}
	printf("configuration OK\n");
	return EXIT_DONE;
}

int
cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfgpath = NULL;
	struct relay r;
	struct pipeline_keys keys;
	struct pipeline_opts po;
	struct deliver_config dc;
	struct smtpd_config sc;
	struct smtpd_hooks hooks = { rcpt_hook, message_hook };
	char why[1024];
	size_t i;
	int c, rc = EXIT_USAGE;
	bool check = false;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'h':
			serve_usage(stdout);
			return EXIT_DONE;
		default:
			serve_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		serve_usage(stderr);
		return EXIT_USAGE;
	}
	if (check)
		return serve_check(cfgpath);
	memset(&r, 0, sizeof(r));
	memset(&keys, 0, sizeof(keys));
	pthread_mutex_init(&r.cfg_mu, NULL);
	pthread_mutex_init(&r.done_mu, NULL);
	signal(SIGPIPE, SIG_IGN);
	usr1_block(true);
	log_init(false, LOG_LVL_INFO);
	r.cfg = cfgpath ? config_load(cfgpath, why, sizeof(why)) :
	    config_default();
	if (r.cfg == NULL) {
		cli_err("serve", "%s", cfgpath ? why : "out of memory");
		goto out;
	}
	if (!load_keys(r.cfg, &keys, why, sizeof(why))) {
		cli_err("serve", "%s", why);
		goto out;
	}
	if (r.cfg->records) {
		if ((r.zf = zonefile_load(r.cfg->records, why,
		    sizeof(why))) == NULL) {
			cli_err("serve", "%s", why);
			goto out;
		}
		r.dns.fn = zonefile_lookup;
		r.dns.arg = r.zf;
	}
	{
		struct dns_config dcfg = { r.cfg->resolver,
		    r.cfg->dns_timeout * 1000, NULL };

		if ((r.res = dns_resolver_new(&dcfg, why, sizeof(why))) ==
		    NULL) {
			cli_err("serve", "%s", why);
			goto out;
		}
		if (!r.zf)
			r.dns = dns_pdns(r.res);
	}
	if (r.cfg->tls_cert && (r.tls = tls_ctx(r.cfg, why,
	    sizeof(why))) == NULL) {
		cli_err("serve", "%s", why);
		goto out;
	}
	if ((r.q = queue_open(r.cfg->spool, why, sizeof(why))) == NULL) {
		cli_err("serve", "%s", why);
		goto out;
	}
	evthread_use_pthreads();
	if ((r.base = event_base_new()) == NULL || !dns_attach(r.res, r.base))
		goto out;

	memset(&dc, 0, sizeof(dc));
	dc.hostname = r.cfg->hostname;
	dc.target = r.cfg->deliver;
	dc.route = route;
	dc.route_arg = &r;
	dc.retry = r.cfg->retry;
	dc.nretry = r.cfg->nretry;
	dc.lifetime = r.cfg->lifetime;
	dc.eightbit_bounce = r.cfg->eightbit_bounce;
	pipeline_keys_copy(&r.bounce_keys, &keys);
	dc.sign_bounce = sign_bounce;
	dc.sign_arg = &r;
	dc.local_bounce = local_bounce;
	dc.local_arg = &r;
	if (r.zf) {
		dc.lookup = zone_lookup_async;
		dc.lookup_arg = &r;
	}
	if ((r.dl = deliver_new(r.base, r.q, r.res, &dc)) == NULL) {
		cli_err("serve", "cannot start delivery");
		goto out;
	}
	memset(&po, 0, sizeof(po));
	po.hostname = r.cfg->hostname;
	po.authserv_id = r.cfg->authserv_id;
	po.dns = r.dns;
	if (r.cfg->dmarc_mode == 1) {
		if ((r.psl = dmarc_psl_load(DMARC_PSL_DEBIAN, why,
		    sizeof(why))) == NULL) {
			cli_err("serve", "%s", why);
			goto out;
		}
		po.dmarc_mode = DMARC_MODE_RFC7489;
		po.psl = r.psl;
	}
	if ((r.done_wake = wake_new(r.base, on_done, &r)) == NULL) {
		cli_err("serve", "cannot make a pipe for the loop");
		goto out;
	}
	if ((r.pl = pipeline_new(r.cfg->workers, &po, &keys, r.q, done_cb,
	    &r)) == NULL) {
		cli_err("serve", "cannot start the pipeline");
		goto out;
	}
	memset(&sc, 0, sizeof(sc));
	sc.hostname = r.cfg->hostname;
	sc.max_message_size = r.cfg->max_message_size;
	sc.max_recipients = r.cfg->max_recipients;
	sc.max_errors = r.cfg->max_errors;
	sc.idle_timeout = r.cfg->idle_timeout;
	sc.max_sessions = r.cfg->max_sessions;
	sc.max_sessions_per_ip = r.cfg->max_sessions_per_ip;
	sc.tls = r.tls;
	sc.tmpfile = tmpfile_cb;
	if ((r.sd = smtpd_new(r.base, &sc, &hooks, &r)) == NULL)
		goto out;
	for (i = 0; i < r.cfg->nlisten; i++) {
		if (!smtpd_listen(r.sd, r.cfg->listen[i], why, sizeof(why))) {
			cli_err("serve", "%s", why);
			goto out;
		}
		log_event(LOG_LVL_INFO, NULL, "event=listening addr=%s",
		    r.cfg->listen[i]);
	}
	if (!deliver_self_from(r.dl, r.sd, why, sizeof(why)))
		log_event(LOG_LVL_ERR, NULL, "event=self_addrs reason=\"%s\"",
		    why);
	if (!maildirs_prepare(r.cfg, why, sizeof(why)) ||
	    !(r.pid_written = pidfile_write(r.cfg->pid_file, why,
	    sizeof(why))) ||
	    !drop_privileges(r.cfg, why, sizeof(why)) ||
	    !maildirs_usable(r.cfg, why, sizeof(why))) {
		cli_err("serve", "%s", why);
		goto out;
	}
	r.ev_grace = evtimer_new(r.base, check_stopped, &r);
	r.ev_term = evsignal_new(r.base, SIGTERM, on_term, &r);
	r.ev_int = evsignal_new(r.base, SIGINT, on_term, &r);
	r.ev_hup = evsignal_new(r.base, SIGHUP, on_hup, &r);
	r.ev_usr1 = evsignal_new(r.base, SIGUSR1, on_usr1, &r);
	if (!r.ev_grace || !r.ev_term || !r.ev_int ||
	    !r.ev_hup || !r.ev_usr1 || event_add(r.ev_term, NULL) ||
	    event_add(r.ev_int, NULL) || event_add(r.ev_hup, NULL) ||
	    event_add(r.ev_usr1, NULL))
		goto out;
	{
		size_t swept = queue_sweep_orphans(r.q);

		if (swept)
			log_event(LOG_LVL_INFO, NULL, "event=swept "
			    "orphans=%zu", swept);
	}
	log_event(LOG_LVL_INFO, NULL, "event=started queued=%zu",
	    deliver_load(r.dl));
	usr1_block(false);	/* a flush kept pending runs in the loop */
	event_base_dispatch(r.base);
	rc = EXIT_DONE;
out:
	/* Freeing ev_usr1 gives SIGUSR1 its default action back: the
	 * teardown below must not be cut short by it. */
	usr1_block(true);
	if (r.sd)
		smtpd_free(r.sd);
	pipeline_free(r.pl);	/* finishes queued jobs */
	if (r.base)
		on_done(&r);
	wake_free(r.done_wake);
	deliver_free(r.dl);
	if (r.ev_grace) event_free(r.ev_grace);
	if (r.ev_term) event_free(r.ev_term);
	if (r.ev_int) event_free(r.ev_int);
	if (r.ev_hup) event_free(r.ev_hup);
	if (r.ev_usr1) event_free(r.ev_usr1);
	/* Removed when the user the daemon became may; a file left behind
	 * names a process that is gone, which `queue --flush` reports. */
	if (r.pid_written)
		pidfile_remove(r.cfg->pid_file);
	queue_close(r.q);
	dns_resolver_free(r.res);
	zonefile_free(r.zf);
	SSL_CTX_free(r.tls);
	if (r.base)
		event_base_free(r.base);
	pipeline_keys_clear(&keys);
	pipeline_keys_clear(&r.bounce_keys);
	dmarc_psl_free(r.psl);
	config_free(r.cfg);
	return rc;
}
