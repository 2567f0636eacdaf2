/*
 * dns_test.c - the resolver against a real DNS server (started by run.sh):
 * blocking lookups from several threads at once, asynchronous lookups on a
 * libevent loop, and a silent server that must give temperror within the
 * timeout while the loop keeps running.
 *
 * usage: dns_test SERVER_PORT SILENT_PORT
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "dns.h"

static int passed, failed;

#define CHECK(cond, ...) do { if (cond) passed++; else if (++failed <= 20) { \
	printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); \
	printf("\n"); } } while (0)

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct row {
	const char *name;
	enum pdns_type type;
	enum pdns_rc rc;
	const char *want;	/* first record as text, or NULL */
};

static const struct row rows[] = {
	{ "sel._domainkey.example.com", PDNS_TXT, PDNS_OK, "v=DKIM1; k=rsa; "
	  "p=AAAABBBBCCCCDDDD" },	/* two strings, concatenated */
	{ "example.com", PDNS_TXT, PDNS_OK, "v=spf1 ip4:192.0.2.0/24 -all" },
	{ "_dmarc.example.com", PDNS_TXT, PDNS_OK, "v=DMARC1; p=reject" },
	{ "example.com", PDNS_MX, PDNS_OK, "10 mx.example.com" },
	{ "mx.example.com", PDNS_A, PDNS_OK, "192.0.2.25" },
	{ "mx.example.com", PDNS_AAAA, PDNS_OK, "2001:db8::25" },
	{ "mx.example.com", PDNS_TXT, PDNS_NODATA, NULL },
	{ "nothing.example.com", PDNS_TXT, PDNS_NXDOMAIN, NULL },
};

static void
first_text(const struct pdns_answer *a, char *out, size_t n)
{
	const struct pdns_rr *r = &a->rr[0];
	const unsigned char *x = r->addr;

	switch (r->type) {
	case PDNS_TXT:
		snprintf(out, n, "%.*s", (int)r->txt_len, r->txt);
		break;
	case PDNS_MX:
		snprintf(out, n, "%u %s", r->pref, r->name);
		break;
	case PDNS_A:
		snprintf(out, n, "%u.%u.%u.%u", x[0], x[1], x[2], x[3]);
		break;
	case PDNS_AAAA:
		snprintf(out, n, "%x:%x::%x", x[0] << 8 | x[1],
		    x[2] << 8 | x[3], x[14] << 8 | x[15]);
		break;
	default:
		snprintf(out, n, "%s", r->name);
	}
}

static void
check_row(struct dns_resolver *r, const struct row *w, const char *who)
{
	struct pdns_answer a;
	enum pdns_rc rc = dns_lookup(r, w->name, w->type, &a);
	char got[512] = "";

	if (rc == PDNS_OK && a.n > 0)
		first_text(&a, got, sizeof(got));
	CHECK(rc == w->rc, "%s %s type %d: rc got %s, want %s", who, w->name,
	    w->type, pdns_rc_str(rc), pdns_rc_str(w->rc));
	if (w->want)
		CHECK(strcmp(got, w->want) == 0, "%s %s: got \"%s\", want "
		    "\"%s\"", who, w->name, got, w->want);
	pdns_answer_clear(&a);
}

static pthread_mutex_t count_mu = PTHREAD_MUTEX_INITIALIZER;

static void *
worker(void *arg)
{
	struct dns_resolver *r = arg;
	size_t i, k;

	for (k = 0; k < 25; k++)
		for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			pthread_mutex_lock(&count_mu);
			check_row(r, &rows[i], "thread");
			pthread_mutex_unlock(&count_mu);
		}
	return NULL;
}

struct async_state {
	struct event_base *base;
	int pending;
	int ticks;
	enum pdns_rc rc[2];
	double when[2];
	double start;
};

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	((struct async_state *)arg)->ticks++;
}

static void
done0(void *arg, enum pdns_rc rc, struct pdns_answer *ans)
{
	struct async_state *s = arg;

	s->rc[0] = rc;
	s->when[0] = now_s() - s->start;
	CHECK(rc != PDNS_OK || (ans->n == 1 && ans->rr[0].txt_len > 0),
	    "async answer has no record");
	if (--s->pending == 0)
		event_base_loopexit(s->base, NULL);
}

static void
done1(void *arg, enum pdns_rc rc, struct pdns_answer *ans)
{
	struct async_state *s = arg;

	s->rc[1] = rc;
	s->when[1] = now_s() - s->start;
	if (--s->pending == 0)
		event_base_loopexit(s->base, NULL);
}

int
main(int argc, char **argv)
{
	char up[64], silent[64], why[256];
	struct dns_config cfg = { NULL, 2000, NULL };
	struct dns_resolver *r, *rs;
	pthread_t th[4];
	struct async_state st;
	struct event *ev;
	struct timeval ten = { 0, 10000 };
	struct pdns_answer a;
	double t0, took;
	enum pdns_rc rc;
	size_t i;

	if (argc != 3) {
		fprintf(stderr, "usage: dns_test SERVER_PORT SILENT_PORT\n");
		return 2;
	}
	snprintf(up, sizeof(up), "127.0.0.1@%s", argv[1]);
	snprintf(silent, sizeof(silent), "127.0.0.1@%s", argv[2]);
	evthread_use_pthreads();

	cfg.upstream = up;
	if ((r = dns_resolver_new(&cfg, why, sizeof(why))) == NULL) {
		printf("FAIL resolver: %s\n", why);
		return 1;
	}
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		check_row(r, &rows[i], "blocking");
	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, worker, r);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);

	/* A server that never answers: temperror, within the timeout. */
	cfg.upstream = silent;
	if ((rs = dns_resolver_new(&cfg, why, sizeof(why))) == NULL) {
		printf("FAIL resolver: %s\n", why);
		return 1;
	}
	t0 = now_s();
	rc = dns_lookup(rs, "sel._domainkey.example.com", PDNS_TXT, &a);
	took = now_s() - t0;
	CHECK(rc == PDNS_TEMPFAIL, "silent server: rc got %s, want %s",
	    pdns_rc_str(rc), pdns_rc_str(PDNS_TEMPFAIL));
	CHECK(took >= 1.9 && took < 3.0, "silent server: took %.2f s, want "
	    "the 2 s timeout", took);

	/* Async: one good lookup and one to the silent server, on one loop
	 * that must keep ticking meanwhile. */
	memset(&st, 0, sizeof(st));
	st.base = event_base_new();
	dns_attach(r, st.base);
	dns_attach(rs, st.base);
	ev = event_new(st.base, -1, EV_PERSIST, tick, &st);
	event_add(ev, &ten);
	st.pending = 2;
	st.start = now_s();
	CHECK(dns_lookup_async(r, "sel._domainkey.example.com", PDNS_TXT,
	    done0, &st), "async start");
	CHECK(dns_lookup_async(rs, "example.com", PDNS_TXT, done1, &st),
	    "async start (silent)");
	event_base_dispatch(st.base);
	CHECK(st.rc[0] == PDNS_OK, "async: rc got %s", pdns_rc_str(st.rc[0]));
	CHECK(st.when[0] < 1.0, "async answer took %.2f s", st.when[0]);
	CHECK(st.rc[1] == PDNS_TEMPFAIL, "async silent: rc got %s",
	    pdns_rc_str(st.rc[1]));
	CHECK(st.when[1] >= 1.9 && st.when[1] < 3.0, "async silent: took "
	    "%.2f s", st.when[1]);
	/* 10 ms ticks over ~2 s: the loop never blocked on DNS. */
	CHECK(st.ticks > 120, "the loop ticked only %d times in %.2f s",
	    st.ticks, st.when[1]);
	event_free(ev);
	dns_resolver_free(r);
	dns_resolver_free(rs);
	event_base_free(st.base);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
