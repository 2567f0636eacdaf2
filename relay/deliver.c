/*
 * deliver.c - delivery of queued messages (see deliver.h).
 *
 * A message is always in one of five states: WAIT (a timer runs until
 * its next retry), DUE (in line for one of the attempt slots), READ (a
 * disk worker reads its bytes), SEND (its recipients, grouped by target,
 * are being delivered) and SAVE (a disk worker writes the outcome: the
 * bounce, if any, then the updated envelope, or removes the message).
 * After SAVE it is WAIT again, or gone.
 *
 * Recipients are grouped by target: one group per maildir, one per
 * relayhost, one per recipient domain for `mx` (at most RCPT_MAX each).
 * An SMTP group waits on its destination, which owns the resolved
 * addresses and up to DEST_SESSIONS connections; a connection that ends a
 * transaction takes the next waiting group (connection reuse), or stays
 * idle for SESSION_IDLE seconds.
 *
 * Threads: all of this runs on the loop thread except the disk work
 * (queue_read, maildir delivery, building, signing and committing
 * bounces, queue_update, queue_remove), done by DISK_THREADS workers that
 * hand results back through a wake-up of the loop (wake.h). A message has
 * one disk task or one attempt in flight at a time, so its envelope is
 * never touched by two threads at once. A message just committed comes
 * with its bytes (deliver_add_data), so its first attempt reads nothing
 * back from the queue. DNS is asynchronous (dns_lookup_async, or the lookup
 * hook of the configuration); nothing here blocks the loop.
 *
 * Order of writes, for crash safety: a bounce is committed before the
 * envelope that marks its recipients final (queued, or kept by
 * local_bounce when its recipient is one of the relay's own list bounce
 * addresses); if it cannot be, those recipients stay pending and are
 * tried again later. Final log
 * lines are written once the outcome is saved.
 *
 * SECURITY: untrusted input here is SMTP replies (smtpc.c keeps them
 * printable ASCII), DNS answers (at most MX_MAX hosts and ADDR_MAX
 * addresses per destination; a null MX is honoured, an MX naming this
 * relay or resolving to one of its addresses is skipped) and the queued
 * envelope (smtpc refuses addresses with control characters before they
 * reach the wire). Peer text reaches the log only through log_quote.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "bounce.h"
#include "deliver.h"
#include "log.h"
#include "maildir.h"
#include "smtpc.h"
#include "wake.h"

#define DISK_THREADS 2		/* workers for queue and maildir I/O */
#define DEST_SESSIONS 4		/* connections to one destination */
#define SESSION_IDLE 5		/* seconds an idle connection is kept */
#define SESSION_TXN_MAX 100	/* transactions per connection */
#define ADDR_MAX 10		/* addresses tried per destination */
#define MX_MAX 10		/* MX hosts looked at */
#define ADDR_TTL 300		/* seconds resolved addresses are reused */
#define RCPT_MAX 100		/* recipients per transaction */
#define ACTIVE_PER_CONN 4	/* attempt slots per allowed connection */
#define RELAY_MAX 320
#define KEPT_MAX (4u << 20)	/* bytes of new messages kept in memory */

static const unsigned default_retry[] = { 60, 300, 1800, 7200 };

/* ------------------------------------------------------------- types */

enum m_state { M_WAIT, M_DUE, M_READ, M_SEND, M_SAVE };

/* One recipient's outcome in the current attempt. */
struct attempt {
	bool tried;
	struct smtpc_reply r;
	char relay[RELAY_MAX];		/* host[ip]:port, maildir:..., none */
	char mta[256];			/* the server's name, for the DSN */
	bool bounced;			/* in this attempt's bounce */
	bool reverted;			/* bounce failed: pending again */
};

struct dmsg {
	struct deliver *d;
	struct q_envelope env;		/* owned copy */
	enum m_state st;
	struct event *timer;		/* owned */
	char *data;			/* owned during an attempt */
	size_t len;
	char *kept;			/* owned: the queued bytes, handed over
					 * at the commit, for the first attempt */
	size_t kept_len;
	struct attempt *at;		/* owned: env.nrcpt entries */
	struct dgroup *groups;		/* owned: this attempt's groups */
	size_t groups_left;
	int64_t now;			/* when the attempt started */
	bool flush;			/* flushed during the attempt: what it
					 * did not try is due when it ends */
	bool need8;			/* 8-bit data, for 8BITMIME servers
					 * only (eightbit_bounce) */
	struct dmsg *prev, *next;	/* d->msgs */
	struct dmsg *due_next;
};

enum g_kind { G_MAILDIR, G_SMTP, G_FAIL };
enum d_kind { D_RELAY, D_MX };

struct dgroup {
	struct dmsg *m;
	enum g_kind kind;
	char *target;			/* owned: maildir path or dest key */
	enum d_kind dkind;
	char *name;			/* owned: relay host or domain */
	uint16_t port;
	bool need8;			/* only servers offering 8BITMIME */
	size_t *idx;			/* owned: recipient indexes */
	const char **rcpt;		/* owned array, borrowed strings */
	size_t n;
	struct smtpc_reply *rep;	/* owned: n results */
	struct smtpc_msg sm;
	struct ddest *dest;
	struct dgroup *wnext;		/* the destination's waiting line */
	struct dgroup *next;		/* m->groups */
};

enum a_state { A_NONE, A_BUSY, A_READY, A_FAILED };

struct ddest {
	struct deliver *d;
	char *key;			/* owned */
	enum d_kind kind;
	char *name;			/* owned */
	uint16_t port;
	bool need8;			/* sessions need 8BITMIME */
	enum a_state ast;
	int64_t resolved_at;
	struct smtpc_addr *addrs;	/* owned */
	size_t naddrs;
	struct smtpc_reply aerr;	/* why resolving failed */
	struct dresolve *rs;		/* in progress */
	struct dsess *sess;		/* owned list */
	unsigned nsess, nopening;
	bool throttle;			/* a connect failed: no new ones
					 * while others are open */
	struct dgroup *whead, *wtail;	/* waiting groups */
	size_t nwait;
	struct ddest *prev, *next;
};

enum s_state { S_OPENING, S_BUSY, S_IDLE, S_QUITTING };

struct dsess {
	struct deliver *d;
	struct ddest *dest;		/* NULL once quitting */
	struct smtpc *c;		/* owned */
	enum s_state st;
	struct dgroup *g;		/* the group being sent */
	struct event *idle;		/* owned */
	struct dsess *prev, *next;
};

/* One MX (or implicit MX) host and what its lookups gave. */
struct rhost {
	char *name;			/* owned */
	uint16_t pref;
	long order;			/* tie-break among equal preferences */
	unsigned char v4[ADDR_MAX][4], v6[ADDR_MAX][16];
	size_t n4, n6;
	bool temp;			/* a lookup failed temporarily */
};

struct dresolve {
	struct deliver *d;		/* NULL: deliver is gone */
	struct ddest *dest;
	unsigned pending;		/* lookups not answered */
	unsigned issuing;		/* > 0 while lookups are started */
	bool in_start;
	bool mx_done;
	struct rhost *h;		/* owned */
	size_t nh;
	bool failed;
	struct smtpc_reply err;
	struct dresolve *prev, *next;	/* d->resolves */
};

struct rlookup {
	struct dresolve *rs;
	size_t host;			/* SIZE_MAX: the MX lookup */
	enum pdns_type type;
};

enum t_kind { T_READ, T_MAILDIR, T_SAVE };

struct dtask {
	enum t_kind kind;
	struct dmsg *m;
	struct dgroup *g;		/* T_MAILDIR */
	/* T_READ */
	char *data;
	size_t len;
	/* T_SAVE */
	struct bounce_rcpt *brcpt;	/* owned array, borrowed strings */
	size_t nb;
	bool bounce_ok;
	struct q_envelope benv;		/* the committed bounce */
	enum deliver_local local;	/* local_bounce's answer */
	bool removed;
	char why[256];
	struct dtask *next;
};

struct deliver {
	struct event_base *base;
	struct queue *q;
	struct dns_resolver *dns;
	struct deliver_config cfg;	/* strings below are owned copies */
	char *hostname, *target;
	unsigned *retry;		/* owned */
	size_t nretry;
	unsigned lifetime, max_conn, max_active;
	SSL_CTX *tls;			/* owned */
	struct smtpc_config scfg;
	struct sockaddr_storage *self;	/* owned: the relay's addresses */
	size_t nself;

	struct dmsg *msgs;		/* owned list */
	size_t nmsgs;
	size_t kept;			/* bytes in the messages' kept */
	struct dmsg *due_head, *due_tail;
	size_t nactive;
	struct ddest *dests;		/* owned list */
	struct dsess *quitting;		/* owned: sessions saying QUIT */
	unsigned nconn;
	struct dresolve *resolves;	/* in progress */
	bool stopping;

	pthread_t th[DISK_THREADS];
	size_t nth;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct dtask *todo_head, *todo_tail;	/* under mu */
	struct dtask *done_head;		/* under mu */
	bool quit;				/* under mu */
	size_t ntasks;			/* submitted, not yet completed */
	struct wake *done_wake;		/* owned; woken by the workers */
};

static void schedule(struct dmsg *m);
static void pump(struct deliver *d);
static void finish_attempt(struct dmsg *m);
static void dest_kick(struct ddest *dest);
static void dest_gc(struct ddest *dest);
static void kick_all(struct deliver *d);

/* ------------------------------------------------------------ helpers */

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

static char *
xstrdup(const char *s)
{
	return strdup(s ? s : "");
}

static void
env_clear(struct q_envelope *e)
{
	size_t i;

	free(e->sender);
	for (i = 0; i < e->nrcpt; i++) {
		free(e->rcpt[i].addr);
		free(e->rcpt[i].last_reply);
	}
	free(e->rcpt);
	memset(e, 0, sizeof(*e));
}

static bool
env_copy(struct q_envelope *dst, const struct q_envelope *src)
{
	size_t i;

	memset(dst, 0, sizeof(*dst));
	memcpy(dst->id, src->id, sizeof(dst->id));
	dst->id[sizeof(dst->id) - 1] = '\0';
	dst->first_seen = src->first_seen;
	dst->is_bounce = src->is_bounce;
	if ((dst->sender = xstrdup(src->sender)) == NULL)
		goto fail;
	if (src->nrcpt && (dst->rcpt = calloc(src->nrcpt,
	    sizeof(*dst->rcpt))) == NULL)
		goto fail;
	for (i = 0; i < src->nrcpt; i++) {
		dst->rcpt[i] = src->rcpt[i];
		dst->rcpt[i].addr = xstrdup(src->rcpt[i].addr);
		dst->rcpt[i].last_reply = src->rcpt[i].last_reply ?
		    strdup(src->rcpt[i].last_reply) : NULL;
		dst->nrcpt = i + 1;
		if (dst->rcpt[i].addr == NULL || (src->rcpt[i].last_reply &&
		    dst->rcpt[i].last_reply == NULL))
			goto fail;
	}
	return true;
fail:
	env_clear(dst);
	return false;
}

static bool
all_final(const struct q_envelope *e)
{
	size_t i;

	for (i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].state == Q_PENDING)
			return false;
	return true;
}

static unsigned
interval(const struct deliver *d, unsigned attempts)
{
	size_t k = attempts > 0 ? attempts - 1 : 0;

	return d->retry[k < d->nretry ? k : d->nretry - 1];
}

/* next_time - when to try again after attempt number `attempts`, never
 * later than the end of the lifetime (the last try happens then). */
static int64_t
next_time(const struct deliver *d, const struct q_envelope *e,
    unsigned attempts, int64_t now)
{
	int64_t t = now + interval(d, attempts);
	int64_t end = e->first_seen + (int64_t)d->lifetime;

	if (t > end)
		t = end > now ? end : now + 1;
	return t;
}

static const char *
rcpt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at && at[1] ? at + 1 : NULL;
}

static void
lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* ------------------------------------------------------- disk workers */

/*
 * bounce_queue - the report (msg, len) signed when a signer is set and
 * committed to the queue for the failed message's sender, the envelope
 * in t->benv; false (t->why) when it is not on disk.
 */
static bool
bounce_queue(struct deliver *d, struct dtask *t, const char *msg,
    size_t len)
{
	const struct q_envelope *e = &t->m->env;
	char *signed_msg = NULL;
	size_t signed_len = 0;
	bool ok;

	if (d->cfg.sign_bounce && d->cfg.sign_bounce(d->cfg.sign_arg, msg,
	    len, &signed_msg, &signed_len)) {
		msg = signed_msg;
		len = signed_len;
	}
	memset(&t->benv, 0, sizeof(t->benv));
	t->benv.sender = strdup("");
	t->benv.rcpt = calloc(1, sizeof(*t->benv.rcpt));
	if (t->benv.sender && t->benv.rcpt) {
		t->benv.nrcpt = 1;
		t->benv.rcpt[0].addr = strdup(e->sender);
		t->benv.rcpt[0].state = Q_PENDING;
		t->benv.rcpt[0].next_retry = t->m->now;
	}
	t->benv.first_seen = t->m->now;
	t->benv.is_bounce = true;
	ok = t->benv.nrcpt == 1 && t->benv.rcpt[0].addr != NULL &&
	    queue_commit(d->q, msg, len, &t->benv, t->why, sizeof(t->why));
	if (!ok && t->why[0] == '\0')
		snprintf(t->why, sizeof(t->why), "out of memory");
	free(signed_msg);
	return ok;
}

static void
task_run(struct deliver *d, struct dtask *t)
{
	struct dmsg *m = t->m;

	switch (t->kind) {
	case T_READ:
		t->data = queue_read(d->q, m->env.id, &t->len);
		break;
	case T_MAILDIR: {
		struct dgroup *g = t->g;
		char name[1400], why[512];
		size_t k;

		if (maildir_deliver(g->target, m->data, m->len, name,
		    sizeof(name), why, sizeof(why))) {
			for (k = 0; k < g->n; k++)
				smtpc_reply_set(&g->rep[k], SMTPC_OK, "2.0.0",
				    "delivered to maildir as new/%s", name);
		} else {
			for (k = 0; k < g->n; k++)
				smtpc_reply_set(&g->rep[k], SMTPC_TEMP,
				    "4.3.0", "maildir delivery failed: %s",
				    why);
		}
		break;
	}
	case T_SAVE: {
		struct q_envelope *e = &m->env;
		size_t k;

		if (t->nb > 0) {
			struct bounce_info bi;
			struct dkim_buf b;

			memset(&bi, 0, sizeof(bi));
			bi.hostname = d->hostname;
			bi.queue_id = e->id;
			bi.sender = e->sender;
			bi.arrival = e->first_seen;
			bi.now = m->now;
			bi.rcpt = t->brcpt;
			bi.nrcpt = t->nb;
			bi.msg = m->data ? m->data : "";
			bi.len = m->data ? m->len : 0;
			dkim_buf_init(&b, 0);
			t->bounce_ok = bounce_build(&bi, &b);
			if (t->bounce_ok && d->cfg.local_bounce != NULL)
				t->local = d->cfg.local_bounce(d->cfg.local_arg,
				    e->sender, e->id, b.p, b.len, t->why,
				    sizeof(t->why));
			if (!t->bounce_ok)
				snprintf(t->why, sizeof(t->why), "cannot "
				    "build the report (out of memory)");
			else if (t->local == DELIVER_LOCAL_FAILED)
				t->bounce_ok = false;	/* why: its reason */
			else if (t->local == DELIVER_LOCAL_NO)
				t->bounce_ok = bounce_queue(d, t, b.p, b.len);
			dkim_buf_free(&b);
			if (!t->bounce_ok) {
				env_clear(&t->benv);
				/* No report on disk: those recipients are
				 * not final yet; try them again later. */
				for (k = 0; k < e->nrcpt; k++) {
					if (!m->at[k].bounced)
						continue;
					m->at[k].reverted = true;
					e->rcpt[k].state = Q_PENDING;
					e->rcpt[k].next_retry = m->now +
					    interval(d, e->rcpt[k].attempts);
				}
			}
		}
		if (all_final(e)) {
			t->removed = queue_remove(d->q, e->id);
			if (!t->removed)
				log_event(LOG_LVL_ERR, e->id, "event=remove "
				    "status=failed");
		} else {
			char why[256];

			if (!queue_update(d->q, e, why, sizeof(why)))
				log_event(LOG_LVL_ERR, e->id, "event=update "
				    "status=failed reason=\"%s\"", why);
		}
		break;
	}
	}
}

static void *
worker(void *arg)
{
	struct deliver *d = arg;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		struct dtask *t;

		while (d->todo_head == NULL && !d->quit)
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->quit)
			break;
		t = d->todo_head;
		d->todo_head = t->next;
		if (d->todo_head == NULL)
			d->todo_tail = NULL;
		pthread_mutex_unlock(&d->mu);
		task_run(d, t);
		pthread_mutex_lock(&d->mu);
		/* The first result of a round wakes the loop; done_cb takes
		 * all that arrive until it runs. */
		if (d->done_head == NULL)
			wake_up(d->done_wake);
		t->next = d->done_head;
		d->done_head = t;
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static struct dtask *
task_new(enum t_kind kind, struct dmsg *m)
{
	struct dtask *t = calloc(1, sizeof(*t));

	if (t) {
		t->kind = kind;
		t->m = m;
	}
	return t;
}

static void
submit(struct deliver *d, struct dtask *t)
{
	t->next = NULL;
	d->ntasks++;
	pthread_mutex_lock(&d->mu);
	if (d->todo_tail)
		d->todo_tail->next = t;
	else
		d->todo_head = t;
	d->todo_tail = t;
	pthread_mutex_unlock(&d->mu);
	/* After the unlock: the worker woken does not block on the mutex. */
	pthread_cond_signal(&d->cv);
}

static void
task_free(struct dtask *t)
{
	if (t == NULL)
		return;
	free(t->data);
	free(t->brcpt);
	env_clear(&t->benv);
	free(t);
}

/* ------------------------------------------------------------- logging */

static void
log_rcpt(const struct dmsg *m, size_t i, const char *status, int64_t now,
    const char *extra)
{
	const struct attempt *a = &m->at[i];
	char addr[600], relay[RELAY_MAX + 8], reply[SMTPC_TEXT_MAX + 64];
	const char *text = a->tried ? a->r.text :
	    m->env.rcpt[i].last_reply ? m->env.rcpt[i].last_reply : "";
	const char *ad = m->env.rcpt[i].addr;

	log_quote(ad, strlen(ad), addr, sizeof(addr));
	log_quote(a->tried && a->relay[0] ? a->relay : "none",
	    strlen(a->tried && a->relay[0] ? a->relay : "none"), relay,
	    sizeof(relay));
	log_quote(text, strlen(text), reply, sizeof(reply));
	log_event(LOG_LVL_INFO, m->env.id, "to=<%s> status=%s relay=%s "
	    "delay=%llds reply=%s%s", addr, status, relay,
	    (long long)(now - m->env.first_seen), reply, extra ? extra : "");
}

/* ---------------------------------------------------- message lifetime */

static void attempt_clear(struct dmsg *m);

static void
msg_free(struct dmsg *m)
{
	if (m == NULL)
		return;
	if (m->kept) {
		m->d->kept -= m->kept_len;
		free(m->kept);
	}
	attempt_clear(m);
	if (m->timer)
		event_free(m->timer);
	env_clear(&m->env);
	free(m);
}

static void
msg_unlink(struct dmsg *m)
{
	struct deliver *d = m->d;

	if (m->prev)
		m->prev->next = m->next;
	else
		d->msgs = m->next;
	if (m->next)
		m->next->prev = m->prev;
	d->nmsgs--;
}

/* due_push - a waiting message joins the end of the line for a slot. */
static void
due_push(struct dmsg *m)
{
	struct deliver *d = m->d;

	m->st = M_DUE;
	m->due_next = NULL;
	if (d->due_tail)
		d->due_tail->due_next = m;
	else
		d->due_head = m;
	d->due_tail = m;
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dmsg *m = arg;

	due_push(m);
	pump(m->d);
}

/* due_now - every pending recipient of m (but those tried, when tried is
 * given) retried at the next attempt; false when none is pending. The
 * envelope on disk keeps the old times until that attempt saves it. */
static bool
due_now(struct dmsg *m, int64_t now, const struct attempt *tried)
{
	bool any = false;
	size_t i;

	for (i = 0; i < m->env.nrcpt; i++) {
		struct q_rcpt *r = &m->env.rcpt[i];

		if (r->state != Q_PENDING || (tried && tried[i].tried))
			continue;
		if (r->next_retry > now)
			r->next_retry = now;
		any = true;
	}
	return any;
}

/* schedule - the message waits for its earliest pending recipient. */
static void
schedule(struct dmsg *m)
{
	struct deliver *d = m->d;
	int64_t due = INT64_MAX, now = now_s();
	struct timeval tv = { 0, 0 };
	size_t i;

	for (i = 0; i < m->env.nrcpt; i++)
		if (m->env.rcpt[i].state == Q_PENDING &&
		    m->env.rcpt[i].next_retry < due)
			due = m->env.rcpt[i].next_retry;
	m->st = M_WAIT;
	if (due == INT64_MAX)
		due = now;	/* nothing pending: the attempt cleans up */
	if (due > now)
		tv.tv_sec = (time_t)(due - now);
	(void)d;
	evtimer_add(m->timer, &tv);
}

/* add_env - a queued message to deliver; data (owned, may be NULL) is
 * its bytes, kept for the first attempt while KEPT_MAX allows. */
static bool
add_env(struct deliver *d, const struct q_envelope *env, char *data,
    size_t len)
{
	struct dmsg *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		free(data);
		return false;
	}
	m->d = d;
	if (data && len > 0 && len <= KEPT_MAX - d->kept) {
		m->kept = data;
		m->kept_len = len;
		d->kept += len;
	} else {
		free(data);
	}
	if (!env_copy(&m->env, env) || (m->timer = evtimer_new(d->base,
	    timer_cb, m)) == NULL) {
		msg_free(m);
		return false;
	}
	m->next = d->msgs;
	if (d->msgs)
		d->msgs->prev = m;
	d->msgs = m;
	d->nmsgs++;
	schedule(m);
	return true;
}

/* attempt_clear - drop what one attempt held (groups, bytes, results). */
static void
attempt_clear(struct dmsg *m)
{
	struct dgroup *g, *gn;

	for (g = m->groups; g; g = gn) {
		gn = g->next;
		free(g->target);
		free(g->name);
		free(g->idx);
		free(g->rcpt);
		free(g->rep);
		free(g);
	}
	m->groups = NULL;
	free(m->data);
	m->data = NULL;
	m->len = 0;
	free(m->at);
	m->at = NULL;
}

/* attempt_end - the attempt is over: a flush that came during it makes
 * what it did not try due now; then what it held goes. */
static void
attempt_end(struct dmsg *m)
{
	if (m->flush && m->at)
		(void)due_now(m, m->now, m->at);
	m->flush = false;
	attempt_clear(m);
}

/* ------------------------------------------------------------- groups */

/* group_done - a group's results are in g->rep: record them. */
static void
group_done(struct dgroup *g, const char *relay, const char *mta)
{
	struct dmsg *m = g->m;
	size_t k;

	for (k = 0; k < g->n; k++) {
		struct attempt *a = &m->at[g->idx[k]];

		a->tried = true;
		a->r = g->rep[k];
		snprintf(a->relay, sizeof(a->relay), "%s", relay ? relay : "");
		snprintf(a->mta, sizeof(a->mta), "%s", mta ? mta : "");
	}
	if (--m->groups_left == 0)
		finish_attempt(m);
}

static void
group_fail(struct dgroup *g, const struct smtpc_reply *r, const char *relay,
    const char *mta)
{
	size_t k;

	for (k = 0; k < g->n; k++)
		g->rep[k] = *r;
	group_done(g, relay, mta);
}

/*
 * parse_target - what a target string means for one recipient. Returns
 * false (with r set) for a recipient that cannot go there.
 */
static bool
parse_target(struct deliver *d, const char *id, const char *target,
    const char *rcpt, bool m8, struct dgroup *g, struct smtpc_reply *r)
{
	if (strncmp(target, "maildir:", 8) == 0 && target[8]) {
		g->kind = G_MAILDIR;
		g->target = xstrdup(target + 8);
		return g->target != NULL;
	}
	if (strcmp(target, "mx") == 0) {
		const char *dom = rcpt_domain(rcpt);

		if (dom == NULL) {
			smtpc_reply_set(r, SMTPC_PERM, "5.1.3", "recipient "
			    "address has no domain");
			return false;
		}
		g->kind = G_SMTP;
		g->dkind = D_MX;
		g->name = xstrdup(dom);
		g->port = (uint16_t)(d->cfg.mx_port ? d->cfg.mx_port : 25);
	} else if (strncmp(target, "smtp:", 5) == 0 && target[5]) {
		const char *h = target + 5, *end, *colon;
		char host[256];
		size_t hn;
		long port = 25;

		if (h[0] == '[') {
			if ((end = strchr(h, ']')) == NULL)
				goto bad;
			h++;
			hn = (size_t)(end - h);
			colon = end[1] == ':' ? end + 1 : NULL;
			if (end[1] && colon == NULL)
				goto bad;
		} else {
			colon = strrchr(h, ':');
			hn = colon ? (size_t)(colon - h) : strlen(h);
		}
		if (hn == 0 || hn >= sizeof(host))
			goto bad;
		memcpy(host, h, hn);
		host[hn] = '\0';
		if (colon) {
			char *e;

			port = strtol(colon + 1, &e, 10);
			if (*e || port < 1 || port > 65535)
				goto bad;
		}
		g->kind = G_SMTP;
		g->dkind = D_RELAY;
		g->name = xstrdup(host);
		g->port = (uint16_t)port;
	} else {
		goto bad;
	}
	if (g->name == NULL)
		return false;
	lower(g->name);
	{
		char key[400];

		/* 8-bit mail that needs 8BITMIME has destinations of its
		 * own: their sessions pass over servers without it. */
		g->need8 = m8;
		snprintf(key, sizeof(key), "%s:%s:%u%s", g->dkind == D_MX ?
		    "mx" : "relay", g->name, (unsigned)g->port,
		    m8 ? ":8bitmime" : "");
		g->target = xstrdup(key);
	}
	return g->target != NULL;
bad:
	/* A configuration mistake: keep the mail, complain, retry. */
	smtpc_reply_set(r, SMTPC_TEMP, "4.3.5", "bad delivery target '%s'",
	    target);
	{
		char t[300];

		log_event(LOG_LVL_WARN, id, "event=config reason=\"bad "
		    "delivery target\" target=%s", log_quote(target,
		    strlen(target), t, sizeof(t)));
	}
	return false;
}

static struct dgroup *
group_new(struct dmsg *m, size_t cap)
{
	struct dgroup *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->m = m;
	g->idx = calloc(cap, sizeof(*g->idx));
	g->rcpt = calloc(cap, sizeof(*g->rcpt));
	g->rep = calloc(cap, sizeof(*g->rep));
	if (!g->idx || !g->rcpt || !g->rep) {
		free(g->idx);
		free(g->rcpt);
		free(g->rep);
		free(g);
		return NULL;
	}
	g->next = m->groups;
	m->groups = g;
	return g;
}

/* place - put recipient i into its group (made as needed). */
static void
place(struct dmsg *m, size_t i)
{
	struct deliver *d = m->d;
	const char *addr = m->env.rcpt[i].addr, *dom = rcpt_domain(addr);
	const char *target = NULL;
	struct dgroup probe, *g;
	struct smtpc_reply r;
	char ldom[256];

	if (dom && d->cfg.route) {
		snprintf(ldom, sizeof(ldom), "%s", dom);
		lower(ldom);
		target = d->cfg.route(d->cfg.route_arg, ldom);
	}
	if (target == NULL)
		target = d->target;
	memset(&probe, 0, sizeof(probe));
	if (!parse_target(d, m->env.id, target, addr, m->need8, &probe,
	    &r)) {
		free(probe.target);
		free(probe.name);
		m->at[i].tried = true;
		m->at[i].r = r;
		snprintf(m->at[i].relay, sizeof(m->at[i].relay), "none");
		return;
	}
	for (g = m->groups; g; g = g->next)
		if (g->kind == probe.kind && g->n < RCPT_MAX &&
		    strcmp(g->target, probe.target) == 0)
			break;
	if (g == NULL) {
		size_t cap = m->env.nrcpt < RCPT_MAX ? m->env.nrcpt : RCPT_MAX;

		if ((g = group_new(m, cap)) == NULL) {
			free(probe.target);
			free(probe.name);
			m->at[i].tried = true;
			smtpc_reply_set(&m->at[i].r, SMTPC_TEMP, "4.3.0",
			    "out of memory");
			return;
		}
		g->kind = probe.kind;
		g->dkind = probe.dkind;
		g->target = probe.target;
		g->name = probe.name;
		g->port = probe.port;
		g->need8 = probe.need8;
	} else {
		free(probe.target);
		free(probe.name);
	}
	g->idx[g->n] = i;
	g->rcpt[g->n] = addr;
	g->n++;
}

/* ------------------------------------------------------- destinations */

static struct ddest *
dest_get(struct deliver *d, const struct dgroup *g)
{
	struct ddest *x;

	for (x = d->dests; x; x = x->next)
		if (strcmp(x->key, g->target) == 0)
			return x;
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->d = d;
	x->key = xstrdup(g->target);
	x->name = xstrdup(g->name);
	x->kind = g->dkind;
	x->port = g->port;
	x->need8 = g->need8;
	if (x->key == NULL || x->name == NULL) {
		free(x->key);
		free(x->name);
		free(x);
		return NULL;
	}
	x->next = d->dests;
	if (d->dests)
		d->dests->prev = x;
	d->dests = x;
	return x;
}

static void
dest_free(struct ddest *x)
{
	free(x->key);
	free(x->name);
	free(x->addrs);
	free(x);
}

/* dest_gc - a destination with nothing to do is forgotten. */
static void
dest_gc(struct ddest *x)
{
	struct deliver *d = x->d;

	if (x->nsess > 0 || x->whead != NULL || x->ast == A_BUSY)
		return;
	if (x->prev)
		x->prev->next = x->next;
	else
		d->dests = x->next;
	if (x->next)
		x->next->prev = x->prev;
	dest_free(x);
}

static void
wait_push(struct ddest *x, struct dgroup *g, bool front)
{
	g->dest = x;
	g->wnext = NULL;
	if (front) {
		g->wnext = x->whead;
		x->whead = g;
		if (x->wtail == NULL)
			x->wtail = g;
	} else {
		if (x->wtail)
			x->wtail->wnext = g;
		else
			x->whead = g;
		x->wtail = g;
	}
	x->nwait++;
}

static struct dgroup *
wait_pop(struct ddest *x)
{
	struct dgroup *g = x->whead;

	if (g) {
		x->whead = g->wnext;
		if (x->whead == NULL)
			x->wtail = NULL;
		g->wnext = NULL;
		x->nwait--;
	}
	return g;
}

/* fail_waiting - every waiting group gets r. */
static void
fail_waiting(struct ddest *x, const struct smtpc_reply *r, const char *relay)
{
	struct dgroup *g;

	while ((g = wait_pop(x)) != NULL)
		group_fail(g, r, relay, NULL);
}

/* ---------------------------------------------------------- resolving */

static void resolve_finish(struct dresolve *rs, bool kick);

static bool
do_lookup(struct deliver *d, const char *name, enum pdns_type type,
    dns_async_cb cb, void *arg)
{
	if (d->cfg.lookup)
		return d->cfg.lookup(d->cfg.lookup_arg, name, type, cb, arg);
	if (d->dns)
		return dns_lookup_async(d->dns, name, type, cb, arg);
	return false;
}

static void
rs_check(struct dresolve *rs)
{
	if (rs->pending == 0 && rs->issuing == 0 && !rs->in_start)
		resolve_finish(rs, true);
}

static void addr_cb(void *arg, enum pdns_rc rc, struct pdns_answer *ans);

static void
issue(struct dresolve *rs, size_t host, enum pdns_type type)
{
	struct rlookup *lk = calloc(1, sizeof(*lk));

	if (lk == NULL) {
		rs->h[host].temp = true;
		return;
	}
	lk->rs = rs;
	lk->host = host;
	lk->type = type;
	rs->pending++;
	if (!do_lookup(rs->d, rs->h[host].name, type, addr_cb, lk)) {
		rs->pending--;
		rs->h[host].temp = true;
		free(lk);
	}
}

static void
issue_hosts(struct dresolve *rs)
{
	size_t i;

	rs->issuing++;
	for (i = 0; i < rs->nh && rs->d; i++) {
		issue(rs, i, PDNS_A);
		if (rs->d)
			issue(rs, i, PDNS_AAAA);
	}
	rs->issuing--;
}

static void
addr_cb(void *arg, enum pdns_rc rc, struct pdns_answer *ans)
{
	struct rlookup *lk = arg;
	struct dresolve *rs = lk->rs;
	struct rhost *h = &rs->h[lk->host];
	size_t i;

	if (rs->d != NULL) {
		if (rc == PDNS_OK) {
			for (i = 0; i < ans->n; i++) {
				if (ans->rr[i].type == PDNS_A && lk->type ==
				    PDNS_A && h->n4 < ADDR_MAX)
					memcpy(h->v4[h->n4++], ans->rr[i].addr,
					    4);
				else if (ans->rr[i].type == PDNS_AAAA &&
				    lk->type == PDNS_AAAA && h->n6 < ADDR_MAX)
					memcpy(h->v6[h->n6++], ans->rr[i].addr,
					    16);
			}
		} else if (rc == PDNS_TEMPFAIL || rc == PDNS_PERMFAIL) {
			h->temp = true;
		}
	}
	free(lk);
	rs->pending--;
	rs_check(rs);
}

static int
host_cmp(const void *a, const void *b)
{
	const struct rhost *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* is_self - an MX host name that is this relay's own name. */
static bool
is_self(const struct deliver *d, const char *name)
{
	size_t n = strlen(d->hostname);

	if (n > 0 && d->hostname[n - 1] == '.')
		n--;
	return strlen(name) == n && strncasecmp(name, d->hostname, n) == 0;
}

/* self_addr - an address (AF_INET: 4 bytes, AF_INET6: 16) that is one of
 * this relay's own (deliver_self). */
static bool
self_addr(const struct deliver *d, int family, const unsigned char *a)
{
	size_t i;

	for (i = 0; i < d->nself; i++) {
		const struct sockaddr_storage *x = &d->self[i];

		if (x->ss_family != family)
			continue;
		if (family == AF_INET && memcmp(&((const struct
		    sockaddr_in *)x)->sin_addr, a, 4) == 0)
			return true;
		if (family == AF_INET6 && memcmp(&((const struct
		    sockaddr_in6 *)x)->sin6_addr, a, 16) == 0)
			return true;
	}
	return false;
}

/* host_is_self - an MX host with an address of this relay's is this
 * relay, whatever its name. */
static bool
host_is_self(const struct deliver *d, const struct rhost *h)
{
	size_t k;

	for (k = 0; k < h->n4; k++)
		if (self_addr(d, AF_INET, h->v4[k]))
			return true;
	for (k = 0; k < h->n6; k++)
		if (self_addr(d, AF_INET6, h->v6[k]))
			return true;
	return false;
}

/*
 * cut_hosts - of the first n hosts of rs->h (best first), keep at most
 * MX_MAX that are preferred to this relay (self: its preference, < 0
 * when it is not among them) and free the rest. False (rs->err, a
 * permanent failure) when this relay is the best MX left.
 */
static bool
cut_hosts(struct dresolve *rs, size_t n, long self)
{
	size_t i, keep;

	for (keep = 0; keep < n && keep < MX_MAX &&
	    (self < 0 || rs->h[keep].pref < self); keep++)
		;
	for (i = keep; i < n; i++)
		free(rs->h[i].name);
	rs->nh = keep;
	if (keep == 0 && self >= 0) {
		rs->failed = true;
		smtpc_reply_set(&rs->err, SMTPC_PERM, "5.4.6", "mail for %s "
		    "loops back to this relay (it is the best MX left)",
		    rs->dest->name);
		return false;
	}
	return true;
}

/*
 * cut_self - once the addresses are in: the first MX host (rs->h is best
 * first) that resolves to one of this relay's addresses is this relay
 * under another name, so it and every host not preferred to it go, as
 * mx_hosts does for this relay's name (RFC 5321 5.1). An implicit MX (the
 * domain's own address) counts too; a relayhost never does, it is
 * configured. False (rs->err) when nothing is left.
 */
static bool
cut_self(struct dresolve *rs)
{
	size_t i;

	if (rs->dest->kind != D_MX || rs->d->nself == 0)
		return true;
	for (i = 0; i < rs->nh && !host_is_self(rs->d, &rs->h[i]); i++)
		;
	return i == rs->nh || cut_hosts(rs, rs->nh, rs->h[i].pref);
}

/*
 * mx_hosts - the MX hosts of an answer into rs->h, best first, ties in
 * random order (RFC 5321 5.1), at most MX_MAX of them. When this relay
 * is one of them, it and every host not preferred to it are dropped
 * (5.1: they would hand the mail back); none left is a permanent
 * failure. False with rs->err set on failure; rs->nh == 0 when the
 * answer held no MX record.
 */
static bool
mx_hosts(struct dresolve *rs, const struct pdns_answer *ans)
{
	struct deliver *d = rs->d;
	size_t i, n = 0;
	long self = -1;		/* preference of this relay, if listed */

	if ((rs->h = calloc(ans->n ? ans->n : 1, sizeof(*rs->h))) == NULL) {
		rs->failed = true;
		smtpc_reply_set(&rs->err, SMTPC_TEMP, "4.3.0",
		    "out of memory");
		return false;
	}
	for (i = 0; i < ans->n; i++) {
		struct rhost *h = &rs->h[n];

		if (ans->rr[i].type != PDNS_MX || !ans->rr[i].name)
			continue;
		if (is_self(d, ans->rr[i].name)) {
			if (self < 0 || ans->rr[i].pref < self)
				self = ans->rr[i].pref;
			continue;
		}
		if ((h->name = strdup(ans->rr[i].name)) == NULL)
			continue;
		h->pref = ans->rr[i].pref;
		h->order = random();
		n++;
	}
	qsort(rs->h, n, sizeof(*rs->h), host_cmp);
	return cut_hosts(rs, n, self);
}

static void
mx_cb(void *arg, enum pdns_rc rc, struct pdns_answer *ans)
{
	struct rlookup *lk = arg;
	struct dresolve *rs = lk->rs;
	struct deliver *d = rs->d;
	size_t i;

	free(lk);
	rs->pending--;
	if (d == NULL) {
		rs_check(rs);
		return;
	}
	rs->mx_done = true;
	switch (rc) {
	case PDNS_OK:
		for (i = 0; i < ans->n; i++) {
			const char *nm = ans->rr[i].name;

			if (ans->rr[i].type == PDNS_MX && nm &&
			    (nm[0] == '\0' || strcmp(nm, ".") == 0)) {
				/* RFC 7505: this domain takes no mail. */
				rs->failed = true;
				smtpc_reply_set(&rs->err, SMTPC_PERM, "5.1.10",
				    "domain %s does not accept mail (null MX)",
				    rs->dest->name);
				break;
			}
		}
		if (rs->failed)
			break;
		if (!mx_hosts(rs, ans))
			break;
		if (rs->nh > 0) {
			issue_hosts(rs);
			break;
		}
		/* No MX record in the answer at all: as NODATA. */
		/* FALLTHROUGH */
	case PDNS_NODATA:
		/* No MX: the domain itself is the host (RFC 5321 5.1). */
		free(rs->h);
		rs->h = NULL;
		if ((rs->h = calloc(1, sizeof(*rs->h))) == NULL ||
		    (rs->h[0].name = strdup(rs->dest->name)) == NULL) {
			rs->failed = true;
			smtpc_reply_set(&rs->err, SMTPC_TEMP, "4.3.0",
			    "out of memory");
			break;
		}
		rs->nh = 1;
		issue_hosts(rs);
		break;
	case PDNS_NXDOMAIN:
		rs->failed = true;
		smtpc_reply_set(&rs->err, SMTPC_PERM, "5.1.2", "domain %s "
		    "does not exist (MX lookup: %s)", rs->dest->name,
		    pdns_rc_str(rc));
		break;
	default:
		rs->failed = true;
		smtpc_reply_set(&rs->err, SMTPC_TEMP, "4.4.3", "MX lookup for "
		    "%s failed: %s", rs->dest->name, pdns_rc_str(rc));
		break;
	}
	rs_check(rs);
}

static void
rs_unlink(struct dresolve *rs)
{
	struct deliver *d = rs->d;

	if (d == NULL)
		return;
	if (rs->prev)
		rs->prev->next = rs->next;
	else
		d->resolves = rs->next;
	if (rs->next)
		rs->next->prev = rs->prev;
}

static void
rs_free(struct dresolve *rs)
{
	size_t i;

	for (i = 0; i < rs->nh; i++)
		free(rs->h[i].name);
	free(rs->h);
	free(rs);
}

/* resolve_finish - the address list, in order: hosts by preference, each
 * host's IPv4 addresses, then its IPv6 ones. */
static void
resolve_finish(struct dresolve *rs, bool kick)
{
	struct ddest *x = rs->dest;
	struct smtpc_addr *a = NULL;
	size_t i, k, n = 0;
	bool temp = false;

	if (rs->d == NULL) {		/* deliver is gone */
		rs_free(rs);
		return;
	}
	rs_unlink(rs);
	x->rs = NULL;
	if (!rs->failed)
		(void)cut_self(rs);
	if (!rs->failed) {
		if ((a = calloc(ADDR_MAX, sizeof(*a))) == NULL) {
			rs->failed = true;
			smtpc_reply_set(&rs->err, SMTPC_TEMP, "4.3.0",
			    "out of memory");
		}
		for (i = 0; a && i < rs->nh && n < ADDR_MAX; i++) {
			struct rhost *h = &rs->h[i];

			temp |= h->temp;
			for (k = 0; k < h->n4 && n < ADDR_MAX; k++, n++) {
				struct sockaddr_in *s4 = (void *)&a[n].sa;

				s4->sin_family = AF_INET;
				memcpy(&s4->sin_addr, h->v4[k], 4);
				a[n].salen = sizeof(*s4);
				snprintf(a[n].host, sizeof(a[n].host), "%s",
				    h->name);
			}
			for (k = 0; k < h->n6 && n < ADDR_MAX; k++, n++) {
				struct sockaddr_in6 *s6 = (void *)&a[n].sa;

				s6->sin6_family = AF_INET6;
				memcpy(&s6->sin6_addr, h->v6[k], 16);
				a[n].salen = sizeof(*s6);
				snprintf(a[n].host, sizeof(a[n].host), "%s",
				    h->name);
			}
		}
		if (a && n == 0) {
			rs->failed = true;
			if (temp || x->kind == D_RELAY)
				smtpc_reply_set(&rs->err, SMTPC_TEMP, "4.4.3",
				    "no address found for %s%s", rs->nh ?
				    rs->h[0].name : x->name, temp ?
				    " (temporary DNS failure)" : "");
			else
				smtpc_reply_set(&rs->err, SMTPC_PERM, "5.4.4",
				    "no address found for %s", rs->nh ?
				    rs->h[0].name : x->name);
		}
	}
	free(x->addrs);
	x->addrs = NULL;
	x->naddrs = 0;
	if (rs->failed) {
		free(a);
		x->ast = A_FAILED;
		x->aerr = rs->err;
	} else {
		x->addrs = a;
		x->naddrs = n;
		x->ast = A_READY;
		x->resolved_at = now_s();
	}
	rs_free(rs);
	if (kick) {
		dest_kick(x);
		dest_gc(x);
	}
}

/* resolve_start - find the addresses of a destination; may finish
 * before it returns (an IP literal, or a lookup that answers at once). */
static void
resolve_start(struct ddest *x)
{
	struct deliver *d = x->d;
	struct dresolve *rs = calloc(1, sizeof(*rs));
	unsigned char buf[16];

	if (rs == NULL) {
		x->ast = A_FAILED;
		smtpc_reply_set(&x->aerr, SMTPC_TEMP, "4.3.0",
		    "out of memory");
		return;
	}
	rs->d = d;
	rs->dest = x;
	rs->in_start = true;
	rs->next = d->resolves;
	if (d->resolves)
		d->resolves->prev = rs;
	d->resolves = rs;
	x->rs = rs;
	x->ast = A_BUSY;
	if (x->kind == D_RELAY) {
		if ((rs->h = calloc(1, sizeof(*rs->h))) == NULL ||
		    (rs->h[0].name = strdup(x->name)) == NULL) {
			rs->failed = true;
			smtpc_reply_set(&rs->err, SMTPC_TEMP, "4.3.0",
			    "out of memory");
		} else if (inet_pton(AF_INET, x->name, buf) == 1) {
			rs->nh = 1;
			memcpy(rs->h[0].v4[0], buf, 4);
			rs->h[0].n4 = 1;
		} else if (inet_pton(AF_INET6, x->name, buf) == 1) {
			rs->nh = 1;
			memcpy(rs->h[0].v6[0], buf, 16);
			rs->h[0].n6 = 1;
		} else {
			rs->nh = 1;
			issue_hosts(rs);
		}
	} else {
		struct rlookup *lk = calloc(1, sizeof(*lk));

		if (lk == NULL) {
			rs->failed = true;
			smtpc_reply_set(&rs->err, SMTPC_TEMP, "4.3.0",
			    "out of memory");
		} else {
			lk->rs = rs;
			lk->host = SIZE_MAX;
			lk->type = PDNS_MX;
			rs->pending++;
			if (!do_lookup(d, x->name, PDNS_MX, mx_cb, lk)) {
				rs->pending--;
				free(lk);
				rs->failed = true;
				smtpc_reply_set(&rs->err, SMTPC_TEMP, "4.4.3",
				    "MX lookup for %s could not start (no "
				    "resolver)", x->name);
			}
		}
	}
	rs->in_start = false;
	if (rs->pending == 0 && rs->issuing == 0)
		resolve_finish(rs, false);
}

/* ----------------------------------------------------------- sessions */

static void sess_open_cb(void *arg, struct smtpc *c,
    const struct smtpc_reply *err);
static void sess_sent_cb(void *arg, struct smtpc *c, struct smtpc_msg *m,
    bool fresh);
static void sess_lost_cb(void *arg, struct smtpc *c);

static const struct smtpc_handler sess_handler = {
	sess_open_cb, sess_sent_cb, sess_lost_cb,
};

static void
idle_cb(evutil_socket_t fd, short what, void *arg);

static struct dsess *
sess_new(struct ddest *x)
{
	struct deliver *d = x->d;
	struct dsess *s = calloc(1, sizeof(*s));
	struct smtpc_config sc = d->scfg;

	if (s == NULL)
		return NULL;
	s->d = d;
	s->dest = x;
	s->st = S_OPENING;
	sc.need_8bitmime = x->need8;
	if ((s->idle = evtimer_new(d->base, idle_cb, s)) == NULL ||
	    (s->c = smtpc_open(d->base, &sc, x->addrs, x->naddrs,
	    x->port, &sess_handler, s)) == NULL) {
		if (s->idle)
			event_free(s->idle);
		free(s);
		return NULL;
	}
	s->next = x->sess;
	if (x->sess)
		x->sess->prev = s;
	x->sess = s;
	x->nsess++;
	x->nopening++;
	d->nconn++;
	return s;
}

/* sess_drop - forget a session: QUIT politely when it can, else close. */
static void
sess_drop(struct dsess *s, bool quit)
{
	struct ddest *x = s->dest;
	struct deliver *d = x->d;

	if (s->prev)
		s->prev->next = s->next;
	else
		x->sess = s->next;
	if (s->next)
		s->next->prev = s->prev;
	x->nsess--;
	if (s->st == S_OPENING)
		x->nopening--;
	d->nconn--;
	evtimer_del(s->idle);
	s->g = NULL;
	if (quit) {
		/* Kept until the QUIT is answered (sess_lost_cb). */
		s->dest = NULL;
		s->st = S_QUITTING;
		s->prev = NULL;
		s->next = d->quitting;
		if (d->quitting)
			d->quitting->prev = s;
		d->quitting = s;
		smtpc_quit(s->c);
		return;
	}
	smtpc_free(s->c);
	event_free(s->idle);
	free(s);
}

static void
sess_send(struct dsess *s, struct dgroup *g)
{
	struct dmsg *m = g->m;
	struct smtpc_reply r;

	s->st = S_BUSY;
	s->g = g;
	evtimer_del(s->idle);
	g->sm.sender = m->env.sender;
	g->sm.rcpt = g->rcpt;
	g->sm.nrcpt = g->n;
	g->sm.data = m->data;
	g->sm.len = m->len;
	g->sm.res = g->rep;
	if (!smtpc_send(s->c, &g->sm)) {
		s->g = NULL;
		smtpc_reply_set(&r, SMTPC_TEMP, "4.3.0", "cannot start a "
		    "transaction with %s", smtpc_peer(s->c));
		group_fail(g, &r, smtpc_peer(s->c), NULL);
		sess_drop(s, false);
	}
}

/* sess_take - an open, idle session takes the next waiting group, or
 * waits for one a little while. */
static void
sess_take(struct dsess *s)
{
	struct ddest *x = s->dest;
	struct timeval tv = { SESSION_IDLE, 0 };
	struct dgroup *g;

	s->st = S_IDLE;
	if ((g = wait_pop(x)) != NULL) {
		sess_send(s, g);
		return;
	}
	if (x->d->stopping) {
		sess_drop(s, true);
		return;
	}
	evtimer_add(s->idle, &tv);
}

static void
sess_open_cb(void *arg, struct smtpc *c, const struct smtpc_reply *err)
{
	struct dsess *s = arg;
	struct ddest *x = s->dest;
	struct deliver *d = x->d;

	if (err == NULL) {
		x->nopening--;
		x->throttle = false;
		s->st = S_IDLE;
		log_event(LOG_LVL_DEBUG, NULL, "event=connected relay=%s "
		    "tls=%s", smtpc_peer(c), smtpc_tls_active(c) ? "yes" :
		    "no");
		if (smtpc_tls_error(c)) {
			char why[SMTPC_TEXT_MAX + 8];
			const char *e = smtpc_tls_error(c);

			log_event(LOG_LVL_WARN, NULL, "event=tls_fallback "
			    "relay=%s reason=%s", smtpc_peer(c),
			    log_quote(e, strlen(e), why, sizeof(why)));
		}
		sess_take(s);
		dest_gc(x);
		return;
	}
	{
		struct smtpc_reply r = *err;
		char relay[RELAY_MAX];

		snprintf(relay, sizeof(relay), "%s", smtpc_peer(c));
		sess_drop(s, false);
		/* The destination is likely down for everyone: no new
		 * connections while others are open, and the waiting
		 * groups fail with this reason unless an open session
		 * can carry them. */
		x->throttle = true;
		if (x->nsess == x->nopening)
			fail_waiting(x, &r, relay);
	}
	kick_all(d);
	dest_gc(x);
}

static void
sess_sent_cb(void *arg, struct smtpc *c, struct smtpc_msg *sm, bool fresh)
{
	struct dsess *s = arg;
	struct ddest *x = s->dest;
	struct deliver *d = x->d;
	struct dgroup *g = s->g;
	struct dsess *o, *on;

	s->g = NULL;
	if (fresh) {
		/* A reused connection was dead, or closed with a 421: so
		 * are its idle siblings, most likely. Try again on a new
		 * one. */
		wait_push(x, g, true);
		sess_drop(s, false);
		for (o = x->sess; o; o = on) {
			on = o->next;
			if (o->st == S_IDLE)
				sess_drop(o, false);
		}
		kick_all(d);
		dest_gc(x);
		return;
	}
	group_done(g, smtpc_peer(c), smtpc_peer_host(c));
	if (smtpc_usable(c) && smtpc_transactions(c) < SESSION_TXN_MAX)
		sess_take(s);
	else
		sess_drop(s, smtpc_usable(c));
	kick_all(d);
	dest_gc(x);
}

static void
sess_lost_cb(void *arg, struct smtpc *c)
{
	struct dsess *s = arg;
	struct ddest *x = s->dest;
	struct deliver *d = s->d;

	if (s->st == S_QUITTING) {
		if (s->prev)
			s->prev->next = s->next;
		else
			d->quitting = s->next;
		if (s->next)
			s->next->prev = s->prev;
		smtpc_free(c);
		event_free(s->idle);
		free(s);
		return;
	}
	sess_drop(s, false);
	kick_all(d);
	dest_gc(x);
}

static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dsess *s = arg;
	struct ddest *x = s->dest;

	sess_drop(s, true);
	kick_all(x->d);
	dest_gc(x);
}

/* dest_kick - give waiting groups to idle sessions, open new ones within
 * the limits, resolve first when needed. Never frees x. */
static void
dest_kick(struct ddest *x)
{
	struct deliver *d = x->d;
	struct dsess *s;

	while (x->whead) {
		if (x->ast == A_FAILED) {
			struct smtpc_reply r = x->aerr;

			x->ast = A_NONE;	/* the next group asks again */
			fail_waiting(x, &r, "none");
			return;
		}
		for (s = x->sess; s; s = s->next)
			if (s->st == S_IDLE && smtpc_usable(s->c))
				break;
		if (s) {
			sess_send(s, wait_pop(x));
			continue;
		}
		if (x->ast == A_READY && now_s() - x->resolved_at > ADDR_TTL &&
		    x->nopening == 0)
			x->ast = A_NONE;
		if (x->ast == A_NONE) {
			resolve_start(x);
			continue;
		}
		if (x->ast == A_BUSY || d->stopping)
			return;
		if (x->nopening >= x->nwait || x->nsess >= DEST_SESSIONS ||
		    d->nconn >= d->max_conn || (x->throttle && x->nsess > 0))
			return;
		if (sess_new(x) == NULL) {
			struct smtpc_reply r;

			smtpc_reply_set(&r, SMTPC_TEMP, "4.3.0", "cannot "
			    "open a connection (out of memory)");
			if (x->nsess == 0)
				fail_waiting(x, &r, "none");
			return;
		}
	}
}

/* kick_all - a connection slot came free: destinations waiting for one
 * get their turn. */
static void
kick_all(struct deliver *d)
{
	struct ddest *x, *xn;

	for (x = d->dests; x; x = xn) {
		xn = x->next;
		if (x->whead)
			dest_kick(x);
	}
}

/* ----------------------------------------------------------- attempts */

static void
launch(struct dgroup *g)
{
	struct dmsg *m = g->m;
	struct deliver *d = m->d;
	struct smtpc_reply r;
	struct ddest *x;
	struct dtask *t;

	switch (g->kind) {
	case G_MAILDIR:
		if ((t = task_new(T_MAILDIR, m)) == NULL) {
			smtpc_reply_set(&r, SMTPC_TEMP, "4.3.0",
			    "out of memory");
			group_fail(g, &r, "none", NULL);
			return;
		}
		t->g = g;
		submit(d, t);
		return;
	case G_SMTP:
		if ((x = dest_get(d, g)) == NULL) {
			smtpc_reply_set(&r, SMTPC_TEMP, "4.3.0",
			    "out of memory");
			group_fail(g, &r, "none", NULL);
			return;
		}
		wait_push(x, g, false);
		dest_kick(x);
		dest_gc(x);
		return;
	case G_FAIL:
		return;
	}
}

/* begin_send - the bytes are in: group the due recipients and go. */
static void
begin_send(struct dmsg *m)
{
	struct dgroup *g;
	size_t i;

	m->st = M_SEND;
	m->groups_left = 1;	/* held until every group is launched */
	m->need8 = m->d->cfg.eightbit_bounce && m->data &&
	    dkim_has_8bit(m->data, m->len);
	for (i = 0; i < m->env.nrcpt; i++) {
		if (m->env.rcpt[i].state != Q_PENDING ||
		    m->env.rcpt[i].next_retry > m->now)
			continue;
		if (m->data == NULL) {
			m->at[i].tried = true;
			smtpc_reply_set(&m->at[i].r, SMTPC_TEMP, "4.3.0",
			    "cannot read the queued message");
			snprintf(m->at[i].relay, sizeof(m->at[i].relay),
			    "none");
			continue;
		}
		place(m, i);
	}
	for (g = m->groups; g; g = g->next)
		m->groups_left++;
	for (g = m->groups; g; g = g->next)
		launch(g);
	if (--m->groups_left == 0)
		finish_attempt(m);
}

static void
start_attempt(struct dmsg *m)
{
	struct deliver *d = m->d;
	struct dtask *t;

	m->now = now_s();
	attempt_clear(m);
	m->at = calloc(m->env.nrcpt ? m->env.nrcpt : 1, sizeof(*m->at));
	if (m->at == NULL || (t = task_new(T_READ, m)) == NULL) {
		/* Out of memory: give the slot back and try later. */
		struct timeval tv = { 60, 0 };

		free(m->at);
		m->at = NULL;
		d->nactive--;
		m->st = M_WAIT;
		evtimer_add(m->timer, &tv);
		return;
	}
	if (all_final(&m->env)) {
		/* Nothing left to deliver (a leftover): remove it. */
		task_free(t);
		finish_attempt(m);
		return;
	}
	if (m->kept) {
		/* Just committed: the bytes came with it, no read. */
		task_free(t);
		m->data = m->kept;
		m->len = m->kept_len;
		d->kept -= m->kept_len;
		m->kept = NULL;
		m->kept_len = 0;
		begin_send(m);
		return;
	}
	m->st = M_READ;
	submit(d, t);
}

/* pump - start due messages while attempt slots are free. */
static void
pump(struct deliver *d)
{
	while (!d->stopping && d->due_head && d->nactive < d->max_active) {
		struct dmsg *m = d->due_head;

		d->due_head = m->due_next;
		if (d->due_head == NULL)
			d->due_tail = NULL;
		m->due_next = NULL;
		d->nactive++;
		start_attempt(m);
	}
}

/*
 * finish_attempt - every group has answered: decide each tried
 * recipient's new state and hand the outcome to a disk worker.
 */
static void
finish_attempt(struct dmsg *m)
{
	struct deliver *d = m->d;
	struct q_envelope *e = &m->env;
	bool bounce = e->sender[0] != '\0' && !e->is_bounce;
	struct dtask *t = task_new(T_SAVE, m);
	int64_t now = now_s();
	size_t i, nb = 0;

	for (i = 0; i < e->nrcpt; i++) {
		struct attempt *a = &m->at[i];
		struct q_rcpt *r = &e->rcpt[i];

		if (!a->tried)
			continue;
		r->attempts++;
		free(r->last_reply);
		r->last_reply = strdup(a->r.text);
		switch (a->r.cls) {
		case SMTPC_OK:
			r->state = Q_DELIVERED;
			break;
		case SMTPC_PERM:
			r->state = Q_FAILED;
			a->bounced = bounce;
			break;
		case SMTPC_TEMP:
			if (now >= e->first_seen + (int64_t)d->lifetime) {
				r->state = Q_EXPIRED;
				a->bounced = bounce;
			} else {
				r->next_retry = next_time(d, e, r->attempts,
				    now);
			}
			break;
		}
		nb += a->bounced;
	}
	if (t == NULL) {
		/* Cannot save now: the outcome stays in memory and is
		 * written with the next attempt. */
		log_event(LOG_LVL_ERR, e->id, "event=save status=failed "
		    "reason=\"out of memory\"");
		attempt_end(m);
		d->nactive--;
		schedule(m);
		pump(d);
		return;
	}
	if (nb > 0 && (t->brcpt = calloc(nb, sizeof(*t->brcpt))) != NULL) {
		for (i = 0; i < e->nrcpt; i++) {
			struct attempt *a = &m->at[i];
			struct bounce_rcpt *b = &t->brcpt[t->nb];

			if (!a->bounced)
				continue;
			b->addr = e->rcpt[i].addr;
			b->expired = e->rcpt[i].state == Q_EXPIRED;
			b->status = b->expired ? "4.4.7" : a->r.status[0] ?
			    a->r.status : "5.0.0";
			b->diag = a->r.text;
			b->diag_smtp = a->r.remote;
			b->remote_mta = a->mta[0] ? a->mta : NULL;
			b->last_attempt = m->now;
			t->nb++;
		}
	} else if (nb > 0) {
		/* No memory for the report: retry those later. */
		for (i = 0; i < e->nrcpt; i++) {
			if (!m->at[i].bounced)
				continue;
			m->at[i].reverted = true;
			e->rcpt[i].state = Q_PENDING;
			e->rcpt[i].next_retry = now + interval(d,
			    e->rcpt[i].attempts);
		}
	}
	m->now = now;
	m->st = M_SAVE;
	submit(d, t);
}

/* save_done - the outcome is on disk: log it, queue the bounce for
 * delivery, and wait for the next retry or let the message go. */
static void
save_done(struct dtask *t)
{
	struct dmsg *m = t->m;
	struct deliver *d = m->d;
	struct q_envelope *e = &m->env;
	size_t i;

	for (i = 0; m->at && i < e->nrcpt; i++) {
		struct attempt *a = &m->at[i];
		char extra[96];

		if (!a->tried)
			continue;
		switch (e->rcpt[i].state) {
		case Q_DELIVERED:
			log_rcpt(m, i, "sent", m->now, NULL);
			break;
		case Q_FAILED:
			log_rcpt(m, i, "bounced", m->now, NULL);
			break;
		case Q_EXPIRED:
			log_rcpt(m, i, "expired", m->now, NULL);
			break;
		case Q_PENDING:
			snprintf(extra, sizeof(extra), " retry_in=%llds%s",
			    (long long)(e->rcpt[i].next_retry - m->now),
			    a->reverted ? " note=\"bounce not queued\"" : "");
			log_rcpt(m, i, "deferred", m->now, extra);
			break;
		}
	}
	if (t->nb > 0) {
		char who[600];

		log_quote(e->sender, strlen(e->sender), who, sizeof(who));
		if (t->bounce_ok && t->local == DELIVER_LOCAL_KEPT) {
			log_event(LOG_LVL_INFO, e->id, "event=bounce bounce=local "
			    "to=<%s> recipients=%zu", who, t->nb);
		} else if (t->bounce_ok) {
			log_event(LOG_LVL_INFO, e->id, "event=bounce bounce=%s "
			    "to=<%s> recipients=%zu", t->benv.id, who, t->nb);
			if (!add_env(d, &t->benv, NULL, 0))
				log_event(LOG_LVL_ERR, t->benv.id, "event=add "
				    "status=failed reason=\"out of memory\"");
		} else {
			log_event(LOG_LVL_ERR, e->id, "event=bounce "
			    "status=failed reason=\"%s\"", t->why);
		}
	}
	attempt_end(m);
	d->nactive--;
	if (all_final(e)) {
		msg_unlink(m);
		msg_free(m);
	} else {
		schedule(m);
	}
	pump(d);
}

static void
task_done(struct deliver *d, struct dtask *t)
{
	struct dmsg *m = t->m;

	d->ntasks--;
	switch (t->kind) {
	case T_READ:
		m->data = t->data;
		m->len = t->len;
		t->data = NULL;
		if (m->data == NULL)
			log_event(LOG_LVL_ERR, m->env.id, "event=read "
			    "status=failed");
		begin_send(m);
		break;
	case T_MAILDIR: {
		char relay[RELAY_MAX];

		snprintf(relay, sizeof(relay), "maildir:%s", t->g->target);
		group_done(t->g, relay, NULL);
		break;
	}
	case T_SAVE:
		save_done(t);
		break;
	}
	task_free(t);
}

/* done_cb - on the loop: the disk workers' results, oldest first. */
static void
done_cb(void *arg)
{
	struct deliver *d = arg;
	struct dtask *list, *t, *rev = NULL;

	pthread_mutex_lock(&d->mu);
	list = d->done_head;
	d->done_head = NULL;
	pthread_mutex_unlock(&d->mu);
	while (list) {			/* oldest first */
		t = list;
		list = t->next;
		t->next = rev;
		rev = t;
	}
	while (rev) {
		t = rev;
		rev = t->next;
		task_done(d, t);
	}
}

/* ----------------------------------------------------------------- API */

struct deliver *
deliver_new(struct event_base *base, struct queue *q,
    struct dns_resolver *dns, const struct deliver_config *cfg)
{
	struct deliver *d = calloc(1, sizeof(*d));
	size_t i;

	if (d == NULL)
		return NULL;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->base = base;
	d->q = q;
	d->dns = dns;
	d->cfg = *cfg;
	d->hostname = xstrdup(cfg->hostname && cfg->hostname[0] ?
	    cfg->hostname : "localhost");
	d->target = xstrdup(cfg->target && cfg->target[0] ? cfg->target :
	    "mx");
	d->cfg.hostname = d->hostname;
	d->cfg.target = d->target;
	d->nretry = cfg->retry && cfg->nretry ? cfg->nretry :
	    sizeof(default_retry) / sizeof(default_retry[0]);
	d->retry = calloc(d->nretry, sizeof(*d->retry));
	if (d->hostname == NULL || d->target == NULL || d->retry == NULL)
		goto fail;
	for (i = 0; i < d->nretry; i++)
		d->retry[i] = cfg->retry && cfg->nretry ? cfg->retry[i] :
		    default_retry[i];
	for (i = 0; i < d->nretry; i++)
		if (d->retry[i] == 0)
			d->retry[i] = 1;
	d->cfg.retry = d->retry;
	d->lifetime = cfg->lifetime ? cfg->lifetime : 5 * 86400;
	d->max_conn = cfg->max_connections ? cfg->max_connections : 20;
	d->max_active = d->max_conn * ACTIVE_PER_CONN;

	if ((d->tls = SSL_CTX_new(TLS_client_method())) == NULL)
		goto fail;
	/* Opportunistic: encrypt when we can, never refuse over a
	 * certificate (RFC 7435). */
	SSL_CTX_set_verify(d->tls, SSL_VERIFY_NONE, NULL);
	d->scfg.helo = d->hostname;
	d->scfg.connect_timeout = cfg->connect_timeout;
	d->scfg.command_timeout = cfg->command_timeout;
	d->scfg.tls = d->tls;

	if ((d->done_wake = wake_new(base, done_cb, d)) == NULL)
		goto fail;
	for (i = 0; i < DISK_THREADS; i++) {
		if (pthread_create(&d->th[i], NULL, worker, d) != 0)
			break;
		d->nth++;
	}
	if (d->nth == 0)
		goto fail;
	return d;
fail:
	deliver_free(d);
	return NULL;
}

static void
scan_cb(void *arg, struct q_envelope *env)
{
	struct deliver *d = arg;

	if (!add_env(d, env, NULL, 0))
		log_event(LOG_LVL_ERR, env->id, "event=load status=failed "
		    "reason=\"out of memory\"");
	q_envelope_free(env);
}

static void
bad_cb(void *arg, const char *name, const char *why)
{
	char n[300], w[600];

	log_event(LOG_LVL_WARN, NULL, "event=corrupt entry=%s reason=%s",
	    log_quote(name, strlen(name), n, sizeof(n)),
	    log_quote(why, strlen(why), w, sizeof(w)));
}

size_t
deliver_load(struct deliver *d)
{
	size_t before = d->nmsgs;

	(void)queue_scan(d->q, scan_cb, bad_cb, d);
	return d->nmsgs - before;
}

void
deliver_add(struct deliver *d, const struct q_envelope *env)
{
	deliver_add_data(d, env, NULL, 0);
}

void
deliver_add_data(struct deliver *d, const struct q_envelope *env,
    char *data, size_t len)
{
	if (!add_env(d, env, data, len))
		log_event(LOG_LVL_ERR, env->id, "event=add status=failed "
		    "reason=\"out of memory\"");
}

bool
deliver_idle(const struct deliver *d)
{
	return d->nactive == 0 && d->ntasks == 0;
}

size_t
deliver_queued(const struct deliver *d)
{
	return d->nmsgs;
}

/*
 * deliver_flush - oldest first, so that the line for the attempt slots
 * keeps the order of arrival. Only the loop thread touches a waiting or
 * due message's envelope, so it may be changed here; a message with a
 * disk task or an attempt in flight is only marked (and counted, even if
 * that attempt turns out to finish it).
 */
size_t
deliver_flush(struct deliver *d)
{
	struct dmsg *m, *last = NULL;
	int64_t now = now_s();
	size_t n = 0;

	for (m = d->msgs; m; m = m->next)
		last = m;
	for (m = last; m; m = m->prev) {
		switch (m->st) {
		case M_WAIT:
			if (!due_now(m, now, NULL))
				break;
			evtimer_del(m->timer);
			due_push(m);
			n++;
			break;
		case M_DUE:
			n += due_now(m, now, NULL);
			break;
		case M_READ:
		case M_SEND:
		case M_SAVE:
			/* Not even read: a disk worker may be writing the
			 * envelope. save_done applies the mark. */
			m->flush = true;
			n++;
			break;
		}
	}
	pump(d);
	return n;
}

/* self_add - one address of the relay's, once. */
static bool
self_add(struct deliver *d, const struct sockaddr *sa)
{
	struct sockaddr_storage *v;
	const unsigned char *a;
	size_t len;

	if (sa == NULL || (sa->sa_family != AF_INET &&
	    sa->sa_family != AF_INET6))
		return true;
	a = sa->sa_family == AF_INET ?
	    (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr :
	    (const unsigned char *)&((const struct sockaddr_in6 *)sa)->
	    sin6_addr;
	if (self_addr(d, sa->sa_family, a))
		return true;
	if ((v = realloc(d->self, (d->nself + 1) * sizeof(*v))) == NULL)
		return false;
	d->self = v;
	len = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	memset(&v[d->nself], 0, sizeof(v[d->nself]));
	memcpy(&v[d->nself], sa, len);
	d->nself++;
	return true;
}

/* wildcard - 0.0.0.0 or ::, which listen on every interface. */
static bool
wildcard(const struct sockaddr_storage *a)
{
	static const unsigned char zero[16];

	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    zero, 16) == 0;
	return false;
}

bool
deliver_self(struct deliver *d, const struct sockaddr_storage *addrs,
    size_t n, char *why, size_t whylen)
{
	struct ifaddrs *ifs = NULL, *i;
	bool ok = true;
	size_t k;

	free(d->self);
	d->self = NULL;
	d->nself = 0;
	for (k = 0; k < n && ok; k++) {
		if (!wildcard(&addrs[k])) {
			ok = self_add(d, (const struct sockaddr *)&addrs[k]);
			continue;
		}
		if (ifs == NULL && getifaddrs(&ifs) != 0) {
			snprintf(why, whylen, "cannot list the interface "
			    "addresses: %s", strerror(errno));
			return false;
		}
		for (i = ifs; i && ok; i = i->ifa_next)
			if (i->ifa_addr && i->ifa_addr->sa_family ==
			    addrs[k].ss_family)
				ok = self_add(d, i->ifa_addr);
	}
	if (ifs)
		freeifaddrs(ifs);
	if (!ok)
		snprintf(why, whylen, "out of memory");
	return ok;
}

void
deliver_stop(struct deliver *d)
{
	struct ddest *x, *xn;
	struct dsess *s, *sn;

	d->stopping = true;
	for (x = d->dests; x; x = xn) {
		xn = x->next;
		for (s = x->sess; s; s = sn) {
			sn = s->next;
			if (s->st == S_IDLE)
				sess_drop(s, true);
		}
		dest_gc(x);
	}
}

void
deliver_free(struct deliver *d)
{
	struct dtask *t, *tn;
	struct ddest *x, *xn;
	struct dresolve *rs, *rsn;
	struct dmsg *m, *mn;
	size_t i;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	d->quit = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	for (i = 0; i < d->nth; i++)
		pthread_join(d->th[i], NULL);
	for (t = d->todo_head; t; t = tn) {
		tn = t->next;
		task_free(t);
	}
	for (t = d->done_head; t; t = tn) {
		tn = t->next;
		task_free(t);
	}
	for (x = d->dests; x; x = xn) {
		struct dsess *s, *sn;

		xn = x->next;
		for (s = x->sess; s; s = sn) {
			sn = s->next;
			smtpc_free(s->c);
			event_free(s->idle);
			free(s);
		}
		dest_free(x);
	}
	while (d->quitting) {
		struct dsess *s = d->quitting;

		d->quitting = s->next;
		smtpc_free(s->c);
		event_free(s->idle);
		free(s);
	}
	for (rs = d->resolves; rs; rs = rsn) {
		/* Their answers may still come: they free themselves. */
		rsn = rs->next;
		rs->d = NULL;
		rs->dest = NULL;
	}
	for (m = d->msgs; m; m = mn) {
		mn = m->next;
		msg_free(m);
	}
	wake_free(d->done_wake);
	SSL_CTX_free(d->tls);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d->hostname);
	free(d->target);
	free(d->retry);
	free(d->self);
	free(d);
}
