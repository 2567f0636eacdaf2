/*
 * deliver_run.c - runs relay/deliver.c for the tests: a real queue, a
 * libevent loop and DNS answers from a zone file (or a real resolver),
 * following a plan file of one command per line:
 *
 *   spool DIR              queue location (before the first msg)
 *   hostname NAME          EHLO name, Reporting-MTA
 *   target T               default target
 *   route DOMAIN T         per-domain override
 *   retry S [S...]         retry schedule in seconds
 *   lifetime S
 *   connect_timeout S / command_timeout S / max_connections N
 *   zone FILE              MX/A/AAAA from this zone file
 *   resolver IP@PORT       ... or from a real DNS server
 *   mx_port P              SMTP port for `mx`
 *   eightbit send|bounce   8-bit mail for servers without 8BITMIME
 *   sign                   bounces go through a test "signer"
 *   local ADDR kept|failonce  bounces to ADDR go to a test local_bounce:
 *                          taken ("local ID ADDR LEN dsn|other" on
 *                          stdout), or refused the first time, then taken
 *   start                  create deliver (after the settings above)
 *   self IP [IP...]        deliver_self: the relay's own listening
 *                          addresses (0.0.0.0 and :: for every interface)
 *   ago S                  the next message arrived S seconds ago
 *   bounce                 the next message is a bounce of ours
 *   msg FILE SENDER RCPT.. commit and hand to deliver ("<>": null sender)
 *   msgkept FILE SENDER RCPT..  the same, handing deliver the bytes too
 *                          (deliver_add_data), as the daemon does
 *   commit FILE SENDER RCPT..  commit only (for load)
 *   load                   deliver_load
 *   wait S                 run until nothing is queued (at most S s)
 *   sleep S                run the loop S seconds
 *   stop                   deliver_stop
 *   flush                  deliver_flush ("flushed N" on stdout)
 *
 * stdout: "queued ID", "loaded N", "remaining N" at the end. Log lines
 * (deliver's and "lookup NAME TYPE" ones) go to stderr.
 */
#define _GNU_SOURCE		/* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "deliver.h"
#include "dns.h"
#include "log.h"
#include "queue.h"
#include "zonefile.h"

static struct event_base *base;
static struct zonefile *zone;

/* --------------------------------------------- zone-file lookups, async */

struct zq {
	dns_async_cb cb;
	void *arg;
	enum pdns_rc rc;
	struct pdns_answer ans;
};

static void
zq_fire(evutil_socket_t fd, short what, void *p)
{
	struct zq *z = p;

	z->cb(z->arg, z->rc, &z->ans);
	pdns_answer_clear(&z->ans);
	free(z);
}

static const char *
tname(enum pdns_type t)
{
	switch (t) {
	case PDNS_A:	return "A";
	case PDNS_AAAA:	return "AAAA";
	case PDNS_MX:	return "MX";
	default:	return "other";
	}
}

static bool
zone_lookup(void *arg, const char *qname, enum pdns_type type,
    dns_async_cb cb, void *cbarg)
{
	struct zq *z = calloc(1, sizeof(*z));
	struct timeval tv = { 0, 1000 };

	if (z == NULL)
		return false;
	fprintf(stderr, "lookup %s %s\n", qname, tname(type));
	z->cb = cb;
	z->arg = cbarg;
	z->rc = zonefile_lookup(zone, qname, type, &z->ans);
	if (event_base_once(base, -1, EV_TIMEOUT, zq_fire, z, &tv) != 0) {
		pdns_answer_clear(&z->ans);
		free(z);
		return false;
	}
	return true;
}

/* A "signer" that marks the bounce, to see the hook is used. */
static bool
test_sign(void *arg, const char *msg, size_t len, char **out, size_t *outlen)
{
	static const char mark[] = "X-Test-Signed: yes\r\n";
	char *p = malloc(len + sizeof(mark));

	if (p == NULL)
		return false;
	memcpy(p, mark, sizeof(mark) - 1);
	memcpy(p + sizeof(mark) - 1, msg, len);
	*out = p;
	*outlen = len + sizeof(mark) - 1;
	return true;
}

/* Addresses a test local_bounce takes (plan: local ADDR MODE). */
static struct {
	char addr[512];
	int fail;		/* refusals left, then taken */
} locals[4];
static size_t nlocals;

/* test_local - the daemon's local_bounce in small: say what came. */
static enum deliver_local
test_local(void *arg, const char *rcpt, const char *id, const char *msg,
    size_t len, char *why, size_t whylen)
{
	size_t i;

	for (i = 0; i < nlocals; i++)
		if (strcasecmp(rcpt, locals[i].addr) == 0)
			break;
	if (i == nlocals)
		return DELIVER_LOCAL_NO;
	if (__atomic_fetch_sub(&locals[i].fail, 1, __ATOMIC_RELAXED) > 0) {
		snprintf(why, whylen, "test: cannot keep it now");
		return DELIVER_LOCAL_FAILED;
	}
	printf("local %s %s %zu %s\n", id, rcpt, len, memmem(msg, len,
	    "\r\nFinal-Recipient: rfc822; ", 26) != NULL ? "dsn" : "other");
	return DELIVER_LOCAL_KEPT;
}

/* ---------------------------------------------------------------- plan */

struct route {
	char dom[256];
	char target[512];
};

static struct route routes[16];
static size_t nroutes;

static const char *
route_fn(void *arg, const char *dom)
{
	size_t i;

	for (i = 0; i < nroutes; i++)
		if (strcmp(routes[i].dom, dom) == 0)
			return routes[i].target;
	return NULL;
}

static struct deliver *dl;
static double deadline;

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	bool *until_empty = arg;

	if (mono() >= deadline || (*until_empty &&
	    deliver_queued(dl) == 0 && deliver_idle(dl)))
		event_base_loopbreak(base);
}

static void
run_for(double secs, bool until_empty)
{
	struct timeval tv = { 0, 20000 };
	struct event *ev = event_new(base, -1, EV_PERSIST, tick, &until_empty);

	deadline = mono() + secs;
	event_add(ev, &tv);
	event_base_dispatch(base);
	event_free(ev);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n + 1)) &&
	    fread(p, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
	} else {
		free(p);
		p = NULL;
	}
	fclose(f);
	return p;
}

int
main(int argc, char **argv)
{
	struct deliver_config dc;
	struct dns_resolver *res = NULL;
	struct queue *q = NULL;
	unsigned retry[16];
	static char hostname[256], target[512];
	char line[4096], why[512], spool[1024] = "spool";
	char *tok[64];
	int64_t ago = 0;
	bool is_bounce = false;
	FILE *plan;
	int rc = 0;

	if (argc != 2 || (plan = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "usage: deliver_run PLAN\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	evthread_use_pthreads();
	base = event_base_new();
	log_init(false, LOG_LVL_DEBUG);
	memset(&dc, 0, sizeof(dc));
	dc.hostname = "relay.test";
	dc.target = "mx";
	dc.route = route_fn;
	while (fgets(line, sizeof(line), plan)) {
		size_t nt = 0;
		char *p, *save = NULL;

		line[strcspn(line, "\r\n")] = '\0';
		for (p = strtok_r(line, " \t", &save); p && nt < 64;
		    p = strtok_r(NULL, " \t", &save))
			tok[nt++] = p;
		if (nt == 0 || tok[0][0] == '#')
			continue;
#define IS(s) (strcmp(tok[0], s) == 0)
		if (IS("spool") && nt == 2) {
			snprintf(spool, sizeof(spool), "%s", tok[1]);
		} else if (IS("hostname") && nt == 2) {
			snprintf(hostname, sizeof(hostname), "%s", tok[1]);
			dc.hostname = hostname;
		} else if (IS("target") && nt == 2) {
			snprintf(target, sizeof(target), "%s", tok[1]);
			dc.target = target;
		} else if (IS("route") && nt == 3 && nroutes < 16) {
			snprintf(routes[nroutes].dom, 256, "%s", tok[1]);
			snprintf(routes[nroutes].target, 512, "%s", tok[2]);
			nroutes++;
		} else if (IS("retry") && nt >= 2) {
			for (dc.nretry = 0; dc.nretry + 1 < nt &&
			    dc.nretry < 16; dc.nretry++)
				retry[dc.nretry] = (unsigned)atoi(
				    tok[dc.nretry + 1]);
			dc.retry = retry;
		} else if (IS("lifetime") && nt == 2) {
			dc.lifetime = (unsigned)atoi(tok[1]);
		} else if (IS("connect_timeout") && nt == 2) {
			dc.connect_timeout = (unsigned)atoi(tok[1]);
		} else if (IS("command_timeout") && nt == 2) {
			dc.command_timeout = (unsigned)atoi(tok[1]);
		} else if (IS("max_connections") && nt == 2) {
			dc.max_connections = (unsigned)atoi(tok[1]);
		} else if (IS("mx_port") && nt == 2) {
			dc.mx_port = (unsigned)atoi(tok[1]);
		} else if (IS("eightbit") && nt == 2) {
			dc.eightbit_bounce = strcmp(tok[1], "bounce") == 0;
		} else if (IS("sign")) {
			dc.sign_bounce = test_sign;
		} else if (IS("local") && nt == 3 && nlocals < 4) {
			snprintf(locals[nlocals].addr,
			    sizeof(locals[nlocals].addr), "%s", tok[1]);
			locals[nlocals++].fail = strcmp(tok[2], "failonce") ==
			    0 ? 1 : 0;
			dc.local_bounce = test_local;
		} else if (IS("zone") && nt == 2) {
			if ((zone = zonefile_load(tok[1], why,
			    sizeof(why))) == NULL) {
				fprintf(stderr, "zone: %s\n", why);
				return 2;
			}
			dc.lookup = zone_lookup;
		} else if (IS("resolver") && nt == 2) {
			struct dns_config cfg = { tok[1], 2000, NULL };

			if ((res = dns_resolver_new(&cfg, why,
			    sizeof(why))) == NULL || !dns_attach(res, base)) {
				fprintf(stderr, "resolver: %s\n", why);
				return 2;
			}
		} else if (IS("start")) {
			if ((q = queue_open(spool, why, sizeof(why))) == NULL) {
				fprintf(stderr, "queue: %s\n", why);
				return 2;
			}
			if ((dl = deliver_new(base, q, res, &dc)) == NULL) {
				fprintf(stderr, "deliver_new failed\n");
				return 2;
			}
		} else if (IS("self") && nt >= 2 && dl) {
			struct sockaddr_storage sa[16];
			size_t k, n = 0;

			memset(sa, 0, sizeof(sa));
			for (k = 1; k < nt && n < 16; k++, n++) {
				struct sockaddr_in *s4 = (void *)&sa[n];
				struct sockaddr_in6 *s6 = (void *)&sa[n];

				if (inet_pton(AF_INET, tok[k],
				    &s4->sin_addr) == 1) {
					s4->sin_family = AF_INET;
				} else if (inet_pton(AF_INET6, tok[k],
				    &s6->sin6_addr) == 1) {
					s6->sin6_family = AF_INET6;
				} else {
					fprintf(stderr, "self: bad address "
					    "%s\n", tok[k]);
					return 2;
				}
			}
			if (!deliver_self(dl, sa, n, why, sizeof(why))) {
				fprintf(stderr, "self: %s\n", why);
				return 2;
			}
		} else if (IS("ago") && nt == 2) {
			ago = atoll(tok[1]);
		} else if (IS("bounce")) {
			is_bounce = true;
		} else if ((IS("msg") || IS("msgkept") || IS("commit")) &&
		    nt >= 4 && q) {
			struct q_envelope env;
			struct q_rcpt rc_[60];
			size_t len = 0, k;
			char *data = slurp(tok[1], &len);

			if (data == NULL) {
				fprintf(stderr, "cannot read %s\n", tok[1]);
				return 2;
			}
			memset(&env, 0, sizeof(env));
			memset(rc_, 0, sizeof(rc_));
			env.sender = strcmp(tok[2], "<>") == 0 ? "" : tok[2];
			for (k = 3; k < nt && env.nrcpt < 60; k++)
				rc_[env.nrcpt++].addr = tok[k];
			env.rcpt = rc_;
			env.first_seen = (int64_t)time(NULL) - ago;
			env.is_bounce = is_bounce;
			if (!queue_commit(q, data, len, &env, why,
			    sizeof(why))) {
				fprintf(stderr, "commit: %s\n", why);
				return 2;
			}
			printf("queued %s\n", env.id);
			if (IS("msg"))
				deliver_add(dl, &env);
			if (IS("msgkept"))
				deliver_add_data(dl, &env, data, len);
			else
				free(data);
			ago = 0;
			is_bounce = false;
		} else if (IS("load") && dl) {
			printf("loaded %zu\n", deliver_load(dl));
		} else if (IS("wait") && nt == 2 && dl) {
			run_for(atof(tok[1]), true);
		} else if (IS("sleep") && nt == 2 && dl) {
			run_for(atof(tok[1]), false);
		} else if (IS("stop") && dl) {
			deliver_stop(dl);
		} else if (IS("flush") && dl) {
			printf("flushed %zu\n", deliver_flush(dl));
		} else {
			fprintf(stderr, "plan: bad line '%s'\n", tok[0]);
			rc = 2;
			break;
		}
#undef IS
	}
	fclose(plan);
	if (dl) {
		printf("remaining %zu\n", deliver_queued(dl));
		printf("idle %d\n", deliver_idle(dl) ? 1 : 0);
	}
	deliver_free(dl);
	queue_close(q);
	dns_resolver_free(res);
	zonefile_free(zone);
	event_base_free(base);
	return rc;
}
