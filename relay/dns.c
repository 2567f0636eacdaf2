/*
 * dns.c - libunbound behind the pdns interface.
 *
 * One ub_ctx (one cache) serves everything. libunbound resolves in its own
 * thread (ub_ctx_async) and signals completions on ub_fd(); whoever needs
 * a result calls ub_process(), which runs the callbacks of every finished
 * query, not only its own. So all calls into the ctx and all query state
 * are under one mutex: a blocking caller either becomes the one polling
 * the fd or waits on the condition variable, and gives up (ub_cancel) at
 * its deadline, so a silent server costs a bounded time. Async queries
 * finished by anyone are queued and run on the event loop thread.
 *
 * Untrusted input: DNS answers. Rdata is parsed with bounds on every
 * length byte; names are decoded label by label and capped at 255 octets.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <unbound.h>

#include "dns.h"

struct dns_query {
	struct dns_resolver *r;
	enum pdns_type type;
	bool done;
	bool async;
	int err;			/* ub error code, 0 on success */
	struct ub_result *res;		/* owned until parsed */
	int id;				/* the async id, for ub_cancel */
	dns_async_cb cb;		/* async only */
	void *cb_arg;
	struct event *timer;		/* async only */
	struct dns_query *next;		/* the ready queue */
};

/*
 * A small answer cache in front of libunbound for the blocking call: a
 * cached answer costs a hash lookup instead of a round trip through
 * libunbound's thread. Entries live for the answer's TTL (at most five
 * minutes); only OK, NXDOMAIN and NODATA answers with a TTL are kept.
 */
#define CACHE_SLOTS	1024
#define CACHE_MAX_TTL	300

struct cache_slot {
	char *name;			/* owned; lowercase; NULL: empty */
	enum pdns_type type;
	enum pdns_rc rc;
	struct pdns_answer ans;		/* owned copy */
	int64_t expires;		/* monotonic seconds */
};

struct dns_resolver {
	struct cache_slot cache[CACHE_SLOTS];	/* under cache_mu */
	pthread_mutex_t cache_mu;
	struct ub_ctx *ctx;
	unsigned timeout_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool polling;			/* some thread is in poll() on ub_fd */
	struct event_base *base;
	struct event *fd_ev;
	struct event *ready_ev;		/* run ready async callbacks */
	struct dns_query *ready;
};

/* ------------------------------------------------------------ answers */

/* wire_name - decode an uncompressed wire name at p[0..n) into out. */
static bool
wire_name(const unsigned char *p, size_t n, size_t *used, char *out,
    size_t outlen)
{
	size_t i = 0, o = 0;

	for (;;) {
		size_t l;

		if (i >= n)
			return false;
		l = p[i++];
		if (l == 0)
			break;
		if ((l & 0xc0) != 0 || i + l > n || o + l + 2 > outlen ||
		    o + l > 255)
			return false;
		if (o)
			out[o++] = '.';
		memcpy(out + o, p + i, l);
		o += l;
		i += l;
	}
	out[o] = '\0';
	if (o == 0 && outlen > 1) {
		out[0] = '.';
		out[1] = '\0';
	}
	*used = i;
	return true;
}

/* parse_result - ub_result into a pdns answer and result code. */
static enum pdns_rc
parse_result(int err, struct ub_result *res, enum pdns_type type,
    struct pdns_answer *out)
{
	int i;

	if (err != 0 || res == NULL)
		return PDNS_TEMPFAIL;
	if (res->bogus)
		return PDNS_PERMFAIL;
	if (res->rcode == 3 || res->nxdomain)
		return PDNS_NXDOMAIN;
	if (res->rcode == 2)
		return PDNS_TEMPFAIL;		/* SERVFAIL */
	if (res->rcode != 0)
		return PDNS_PERMFAIL;		/* REFUSED, FORMERR, ... */
	if (!res->havedata)
		return PDNS_NODATA;
	out->secure = res->secure != 0;
	for (i = 0; res->data[i]; i++) {
		const unsigned char *d = (const unsigned char *)res->data[i];
		size_t n = (size_t)res->len[i], off, used;
		char name[256];
		bool ok = true;

		switch (type) {
		case PDNS_A:
		case PDNS_AAAA:
			if (n != (type == PDNS_A ? 4u : 16u))
				continue;	/* malformed: skip it */
			ok = pdns_add_addr(out, type, d);
			break;
		case PDNS_TXT:
			/* <len><octets>... ; a truncated string ends it. */
			for (off = 0; off < n && ok; off += 1 + d[off]) {
				if (off + 1 + d[off] > n)
					break;
				ok = off == 0 ? pdns_add_txt(out,
				    (const char *)d + 1, d[0]) :
				    pdns_append_txt(out,
				    (const char *)d + off + 1, d[off]);
			}
			break;
		case PDNS_MX:
			if (n < 3 || !wire_name(d + 2, n - 2, &used, name,
			    sizeof(name)))
				continue;
			ok = pdns_add_name(out, type,
			    (uint16_t)(d[0] << 8 | d[1]), name);
			break;
		case PDNS_PTR:
			if (!wire_name(d, n, &used, name, sizeof(name)))
				continue;
			ok = pdns_add_name(out, type, 0, name);
			break;
		}
		if (!ok)
			return PDNS_TEMPFAIL;
	}
	return out->n ? PDNS_OK : PDNS_NODATA;
}

/* ---------------------------------------------------------------- cache */

static int64_t now_ms(void);

static size_t
cache_hash(const char *name, enum pdns_type type)
{
	uint32_t h = 2166136261u ^ (uint32_t)type;

	for (; *name; name++) {
		unsigned char c = (unsigned char)*name;

		h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 16777619u;
	}
	return h % CACHE_SLOTS;
}

static bool
answer_copy(struct pdns_answer *dst, const struct pdns_answer *src)
{
	size_t i;

	pdns_answer_init(dst);
	dst->secure = src->secure;
	for (i = 0; i < src->n; i++) {
		const struct pdns_rr *r = &src->rr[i];
		bool ok;

		switch (r->type) {
		case PDNS_TXT:
			ok = pdns_add_txt(dst, r->txt, r->txt_len);
			if (ok) {
				dst->rr[dst->n - 1].txt_strings = r->txt_strings;
				dst->rr[dst->n - 1].txt_longest = r->txt_longest;
			}
			break;
		case PDNS_A:
		case PDNS_AAAA:
			ok = pdns_add_addr(dst, r->type, r->addr);
			break;
		default:
			ok = pdns_add_name(dst, r->type, r->pref, r->name);
		}
		if (!ok) {
			pdns_answer_clear(dst);
			return false;
		}
	}
	return true;
}

static bool
cache_get(struct dns_resolver *r, const char *name, enum pdns_type type,
    struct pdns_answer *out, enum pdns_rc *rc)
{
	struct cache_slot *c = &r->cache[cache_hash(name, type)];
	bool hit = false;

	pthread_mutex_lock(&r->cache_mu);
	if (c->name && c->type == type && strcasecmp(c->name, name) == 0 &&
	    c->expires > now_ms() / 1000 && answer_copy(out, &c->ans)) {
		*rc = c->rc;
		hit = true;
	}
	pthread_mutex_unlock(&r->cache_mu);
	return hit;
}

static void
cache_put(struct dns_resolver *r, const char *name, enum pdns_type type,
    enum pdns_rc rc, const struct pdns_answer *ans, int ttl)
{
	struct cache_slot *c = &r->cache[cache_hash(name, type)];
	struct pdns_answer copy;
	char *nm;

	if (ttl <= 0 || (rc != PDNS_OK && rc != PDNS_NXDOMAIN &&
	    rc != PDNS_NODATA))
		return;
	if (!answer_copy(&copy, ans))
		return;
	if ((nm = strdup(name)) == NULL) {
		pdns_answer_clear(&copy);
		return;
	}
	pthread_mutex_lock(&r->cache_mu);
	free(c->name);
	pdns_answer_clear(&c->ans);
	c->name = nm;
	c->type = type;
	c->rc = rc;
	c->ans = copy;
	c->expires = now_ms() / 1000 + (ttl < CACHE_MAX_TTL ? ttl :
	    CACHE_MAX_TTL);
	pthread_mutex_unlock(&r->cache_mu);
}

/* ------------------------------------------------------------ resolver */

struct dns_resolver *
dns_resolver_new(const struct dns_config *cfg, char *why, size_t whylen)
{
	struct dns_resolver *r = calloc(1, sizeof(*r));
	const char *up = cfg && cfg->upstream ? cfg->upstream : "system";
	const char *ta = cfg ? cfg->trust_anchor : NULL;
	int rc;

	if (r == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	r->timeout_ms = cfg && cfg->timeout_ms ? cfg->timeout_ms : 5000;
	if (r->timeout_ms > 600000)
		r->timeout_ms = 600000;
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->cache_mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if ((r->ctx = ub_ctx_create()) == NULL) {
		snprintf(why, whylen, "cannot create the resolver");
		goto fail;
	}
	if ((rc = ub_ctx_async(r->ctx, 1)) != 0)
		goto ub_fail;
	if (strcmp(up, "system") == 0) {
		if ((rc = ub_ctx_resolvconf(r->ctx, NULL)) != 0)
			goto ub_fail;
		if (ta == NULL && access("/usr/share/dns/root.key", R_OK) == 0)
			ta = "/usr/share/dns/root.key";
	} else {
		/* IP[@PORT]: libunbound's own forwarder syntax. A loopback
		 * forwarder is normal here (a local cache or test server). */
		if ((rc = ub_ctx_set_option(r->ctx, "do-not-query-localhost:",
		    "no")) != 0)
			goto ub_fail;
		if ((rc = ub_ctx_set_fwd(r->ctx, up)) != 0) {
			snprintf(why, whylen, "resolver '%s': %s (want "
			    "system or IP[@PORT])", up, ub_strerror(rc));
			goto fail;
		}
	}
	if (ta && (rc = ub_ctx_add_ta_file(r->ctx, ta)) != 0)
		goto ub_fail;
	return r;
ub_fail:
	snprintf(why, whylen, "resolver: %s", ub_strerror(rc));
fail:
	dns_resolver_free(r);
	return NULL;
}

void
dns_resolver_free(struct dns_resolver *r)
{
	if (r == NULL)
		return;
	if (r->fd_ev)
		event_free(r->fd_ev);
	if (r->ready_ev)
		event_free(r->ready_ev);
	if (r->ctx)
		ub_ctx_delete(r->ctx);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		free(r->cache[i].name);
		pdns_answer_clear(&r->cache[i].ans);
	}
	pthread_mutex_destroy(&r->cache_mu);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

struct pdns
dns_pdns(struct dns_resolver *r)
{
	struct pdns d = { dns_lookup, r };

	return d;
}

/* Run by ub_process (with r->mu held) for every finished query. */
static void
ub_done(void *arg, int err, struct ub_result *res)
{
	struct dns_query *q = arg;

	q->done = true;
	q->err = err;
	q->res = res;
	if (q->async) {
		q->next = q->r->ready;
		q->r->ready = q;
		if (q->r->ready_ev)
			event_active(q->r->ready_ev, 0, 0);
	}
	pthread_cond_broadcast(&q->r->cv);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* process_locked - poll the fd for at most ms, then deliver; mu held on
 * entry and exit, dropped while polling. */
static void
process_locked(struct dns_resolver *r, int ms)
{
	struct pollfd pfd;

	r->polling = true;
	pfd.fd = ub_fd(r->ctx);
	pfd.events = POLLIN;
	pthread_mutex_unlock(&r->mu);
	(void)poll(&pfd, 1, ms);
	pthread_mutex_lock(&r->mu);
	ub_process(r->ctx);
	r->polling = false;
	pthread_cond_broadcast(&r->cv);
}

enum pdns_rc
dns_lookup(void *arg, const char *qname, enum pdns_type type,
    struct pdns_answer *out)
{
	struct dns_resolver *r = arg;
	struct dns_query q;
	int64_t deadline = now_ms() + r->timeout_ms;
	enum pdns_rc rc;

	pdns_answer_init(out);
	if (cache_get(r, qname, type, out, &rc))
		return rc;
	memset(&q, 0, sizeof(q));
	q.r = r;
	q.type = type;
	pthread_mutex_lock(&r->mu);
	if (ub_resolve_async(r->ctx, qname, (int)type, 1, &q, ub_done,
	    &q.id) != 0) {
		pthread_mutex_unlock(&r->mu);
		return PDNS_TEMPFAIL;
	}
	while (!q.done) {
		int64_t left = deadline - now_ms();

		if (left <= 0) {
			/* Give up; if the answer raced in, use it. */
			if (ub_cancel(r->ctx, q.id) == 0 || !q.done) {
				pthread_mutex_unlock(&r->mu);
				return PDNS_TEMPFAIL;
			}
			break;
		}
		if (!r->polling) {
			process_locked(r, left > 100 ? 100 : (int)left);
		} else {
			struct timespec ts;
			int64_t until = deadline < now_ms() + 100 ? deadline :
			    now_ms() + 100;

			/* CLOCK_REALTIME deadline for the condvar. */
			clock_gettime(CLOCK_REALTIME, &ts);
			until -= now_ms();
			ts.tv_sec += (time_t)(until / 1000);
			ts.tv_nsec += (long)(until % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&r->cv, &r->mu, &ts);
		}
	}
	pthread_mutex_unlock(&r->mu);
	rc = parse_result(q.err, q.res, type, out);
	if (rc != PDNS_OK)
		pdns_answer_clear(out);
	if (q.res && q.err == 0)
		cache_put(r, qname, type, rc, out, q.res->ttl);
	if (q.res)
		ub_resolve_free(q.res);
	return rc;
}

/* ---------------------------------------------------------------- async */

static void
run_ready(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	struct dns_query *q, *next;

	pthread_mutex_lock(&r->mu);
	q = r->ready;
	r->ready = NULL;
	pthread_mutex_unlock(&r->mu);
	for (; q; q = next) {
		struct pdns_answer ans;
		enum pdns_rc rc;

		next = q->next;
		pdns_answer_init(&ans);
		rc = parse_result(q->err, q->res, q->type, &ans);
		if (rc != PDNS_OK)
			pdns_answer_clear(&ans);
		if (q->timer)
			event_free(q->timer);
		q->cb(q->cb_arg, rc, &ans);
		pdns_answer_clear(&ans);
		if (q->res)
			ub_resolve_free(q->res);
		free(q);
	}
}

static void
fd_ready(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;

	pthread_mutex_lock(&r->mu);
	if (!r->polling)
		ub_process(r->ctx);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void
async_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_resolver *r = q->r;
	struct pdns_answer ans;

	pthread_mutex_lock(&r->mu);
	if (q->done) {			/* delivered; run_ready will see it */
		pthread_mutex_unlock(&r->mu);
		return;
	}
	ub_cancel(r->ctx, q->id);
	pthread_mutex_unlock(&r->mu);
	pdns_answer_init(&ans);
	event_free(q->timer);
	q->cb(q->cb_arg, PDNS_TEMPFAIL, &ans);
	free(q);
}

bool
dns_attach(struct dns_resolver *r, struct event_base *base)
{
	r->base = base;
	r->fd_ev = event_new(base, ub_fd(r->ctx), EV_READ | EV_PERSIST,
	    fd_ready, r);
	r->ready_ev = event_new(base, -1, 0, run_ready, r);
	return r->fd_ev && r->ready_ev && event_add(r->fd_ev, NULL) == 0;
}

bool
dns_lookup_async(struct dns_resolver *r, const char *qname,
    enum pdns_type type, dns_async_cb cb, void *arg)
{
	struct dns_query *q;
	struct timeval tv;

	if (r->base == NULL || (q = calloc(1, sizeof(*q))) == NULL)
		return false;
	q->r = r;
	q->type = type;
	q->async = true;
	q->cb = cb;
	q->cb_arg = arg;
	tv.tv_sec = r->timeout_ms / 1000;
	tv.tv_usec = (r->timeout_ms % 1000) * 1000;
	if ((q->timer = evtimer_new(r->base, async_timeout, q)) == NULL ||
	    evtimer_add(q->timer, &tv) != 0) {
		if (q->timer)
			event_free(q->timer);
		free(q);
		return false;
	}
	pthread_mutex_lock(&r->mu);
	if (ub_resolve_async(r->ctx, qname, (int)type, 1, q, ub_done,
	    &q->id) != 0) {
		pthread_mutex_unlock(&r->mu);
		event_free(q->timer);
		free(q);
		return false;
	}
	pthread_mutex_unlock(&r->mu);
	return true;
}
