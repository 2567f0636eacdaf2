/*
 * cli_queue.c - `arcrelay queue`: what waits in the queue, and a flush.
 *
 * The listing reads SPOOL/queue through queue_list and writes nothing, so
 * it may run beside the daemon, as any user that can read the spool; an
 * entry the daemon delivers meanwhile simply drops out. --flush sends
 * SIGUSR1 to the daemon named by the pid file ([server] pid_file) or by
 * --pid, once /proc shows that process runs `arcrelay serve`: a stale pid
 * file is reported, never signalled.
 *
 * Untrusted input: the envelopes (addresses and SMTP replies come from
 * peers; an envelope may have been edited by hand) and the pid file. Text
 * from them is printed escaped: \xHH for every byte outside printable
 * ASCII, and JSON through json_string.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "pidfile.h"
#include "queue.h"
#include "report.h"

/* A bad entry, kept for the end of the JSON listing. */
struct bad_entry {
	char *name;			/* owned */
	char *why;			/* owned */
};

/* What the listing has seen so far. */
struct listing {
	bool json;
	bool begun;			/* the JSON object is open */
	const char *spool;
	int64_t now;
	size_t messages, pending, nbad, badcap;
	uint64_t bytes;
	struct bad_entry *bad;		/* owned, with --json */
};

/* put_text - peer text for a terminal: printable ASCII as it is but for
 * the backslash, every other byte as \xHH, so nothing can move the
 * cursor, end a line or pass for a field of its own. */
static void
put_text(FILE *fp, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", fp);
		else if (*p >= 0x20 && *p < 0x7f)
			fputc(*p, fp);
		else
			fprintf(fp, "\\x%02X", *p);
	}
}

/* span - a number of seconds as the two largest units: 45s, 5m07s,
 * 3h04m, 2d03h. */
static const char *
span(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, len, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600,
		    s % 3600 / 60);
	else
		snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h", s / 86400,
		    s % 86400 / 3600);
	return buf;
}

/* stamp - epoch seconds as 2026-12-02T10:00:00Z, or "?" past what the
 * C library can show. */
static const char *
stamp(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
	return buf;
}

/* text_message - one message for people: a line for the message, one
 * per recipient, and its last reply under it. */
static void
text_message(struct listing *L, const struct q_listing *e)
{
	const struct q_envelope *env = e->env;
	char b1[32], b2[32];

	printf("%s size=%" PRIu64 " age=%s from=<", env->id, e->size,
	    span(L->now - env->first_seen, b1, sizeof(b1)));
	put_text(stdout, env->sender);
	printf(">%s\n", env->is_bounce ? " bounce" : "");
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct q_rcpt *r = &env->rcpt[i];

		fputs("  to=<", stdout);
		put_text(stdout, r->addr);
		printf("> state=%s attempts=%u", queue_state_str(r->state),
		    r->attempts);
		if (r->state == Q_PENDING) {
			if (r->next_retry <= L->now)
				printf(" next=now");
			else
				printf(" next=in %s",
				    span(r->next_retry - L->now, b1,
				    sizeof(b1)));
			printf(" (%s)", stamp(r->next_retry, b2, sizeof(b2)));
		}
		fputc('\n', stdout);
		if (r->last_reply != NULL) {
			fputs("    reply: ", stdout);
			put_text(stdout, r->last_reply);
			fputc('\n', stdout);
		}
	}
}

/* json_message - one message as an element of the "messages" array. */
static void
json_message(struct listing *L, const struct q_listing *e)
{
	const struct q_envelope *env = e->env;

	printf("%s{\"id\":\"%s\",\"first_seen\":%" PRId64 ",\"age\":%" PRId64
	    ",\"size\":%" PRIu64 ",\"sender\":", L->messages ? "," : "",
	    env->id, env->first_seen, L->now - env->first_seen, e->size);
	json_string(stdout, env->sender);
	printf(",\"bounce\":%s,\"recipients\":[", env->is_bounce ? "true" :
	    "false");
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct q_rcpt *r = &env->rcpt[i];

		printf("%s{\"address\":", i ? "," : "");
		json_string(stdout, r->addr);
		printf(",\"state\":\"%s\",\"attempts\":%u,\"next_retry\":%"
		    PRId64 ",\"next_retry_in\":%" PRId64 ",\"last_reply\":",
		    queue_state_str(r->state), r->attempts, r->next_retry,
		    r->next_retry > L->now ? r->next_retry - L->now : 0);
		if (r->last_reply != NULL)
			json_string(stdout, r->last_reply);
		else
			fputs("null", stdout);
		fputc('}', stdout);
	}
	fputs("]}", stdout);
}

/* json_begin - the head of the JSON object, once, before the first
 * message: a spool that cannot be read prints nothing on stdout. */
static void
json_begin(struct listing *L)
{
	if (L->begun)
		return;
	L->begun = true;
	fputs("{\"spool\":", stdout);
	json_string(stdout, L->spool);
	printf(",\"now\":%" PRId64 ",\"messages\":[", L->now);
}

/* on_entry - one entry of queue_list: printed at once, but for the bad
 * ones of a JSON listing, which go in their own array at the end. */
static void
on_entry(void *arg, const struct q_listing *e)
{
	struct listing *L = arg;

	if (e->env == NULL) {
		if (!L->json) {
			printf("%s corrupt: ", e->name);
			put_text(stdout, e->why);
			fputs(" (left in place)\n", stdout);
			L->nbad++;
			return;
		}
		if (L->nbad == L->badcap) {
			size_t nc = L->badcap ? 2 * L->badcap : 16;
			struct bad_entry *nv = realloc(L->bad,
			    nc * sizeof(*nv));

			if (nv == NULL)
				return;
			L->bad = nv;
			L->badcap = nc;
		}
		L->bad[L->nbad].name = strdup(e->name);
		L->bad[L->nbad].why = strdup(e->why);
		if (L->bad[L->nbad].name == NULL ||
		    L->bad[L->nbad].why == NULL) {
			free(L->bad[L->nbad].name);
			free(L->bad[L->nbad].why);
			return;
		}
		L->nbad++;
		return;
	}
	if (L->json) {
		json_begin(L);
		json_message(L, e);
	} else
		text_message(L, e);
	L->messages++;
	L->bytes += e->size;
	for (size_t i = 0; i < e->env->nrcpt; i++)
		L->pending += e->env->rcpt[i].state == Q_PENDING;
}

/* plural - the word for n of a thing. */
static const char *
plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* list - the listing of spool on stdout. */
static int
list(const char *spool, bool json)
{
	struct listing L;
	char why[512];
	bool ok;

	memset(&L, 0, sizeof(L));
	L.json = json;
	L.spool = spool;
	L.now = (int64_t)time(NULL);
	ok = queue_list(spool, on_entry, &L, why, sizeof(why));
	if (!ok) {
		/* queue_list fails before it lists anything. */
		cli_err("queue", "%s", why);
		free(L.bad);
		return EXIT_USAGE;
	}
	if (json) {
		json_begin(&L);
		fputs("],\"corrupt\":[", stdout);
		for (size_t i = 0; i < L.nbad; i++) {
			printf("%s{\"entry\":", i ? "," : "");
			json_string(stdout, L.bad[i].name);
			fputs(",\"reason\":", stdout);
			json_string(stdout, L.bad[i].why);
			fputc('}', stdout);
			free(L.bad[i].name);
			free(L.bad[i].why);
		}
		printf("],\"total\":{\"messages\":%zu,\"recipients_pending\":"
		    "%zu,\"bytes\":%" PRIu64 "}}\n", L.messages, L.pending,
		    L.bytes);
	} else if (L.messages == 0 && L.nbad == 0) {
		puts("queue is empty");
	} else {
		printf("%s%zu %s, %zu %s pending, %" PRIu64 " KB",
		    L.messages ? "\n" : "", L.messages,
		    plural(L.messages, "message", "messages"), L.pending,
		    plural(L.pending, "recipient", "recipients"),
		    (L.bytes + 1023) / 1024);
		if (L.nbad)
			printf(", %zu corrupt %s", L.nbad,
			    plural(L.nbad, "entry", "entries"));
		fputc('\n', stdout);
	}
	free(L.bad);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_err("queue", "cannot write the listing: %s",
		    strerror(errno));
		return EXIT_USAGE;
	}
	return EXIT_DONE;
}

/* flush - SIGUSR1 to the daemon: pid from --pid, else from pidfile. */
static int
flush(pid_t pid, const char *pidfile)
{
	char why[512];

	if (pid == 0 && !pidfile_read(pidfile, &pid, why, sizeof(why))) {
		cli_err("queue", "%s (is arcrelay serve running?)", why);
		return EXIT_USAGE;
	}
	if (!pidfile_is_serve(pid, why, sizeof(why))) {
		if (pidfile)
			cli_err("queue", "stale pid file %s: %s, not "
			    "signalled", pidfile, why);
		else
			cli_err("queue", "%s, not signalled", why);
		return EXIT_USAGE;
	}
	if (kill(pid, SIGUSR1) != 0) {
		cli_err("queue", "cannot signal arcrelay serve (pid %ld): %s",
		    (long)pid, strerror(errno));
		return EXIT_USAGE;
	}
	printf("asked arcrelay serve (pid %ld) to flush its queue\n",
	    (long)pid);
	return EXIT_DONE;
}

/* queue_usage - the --help text. */
static void
queue_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: arcrelay queue [--config FILE] [--spool DIR] [--json]\n"
	    "       arcrelay queue --flush [--pid PID | --config FILE | "
	    "--spool DIR]\n"
	    "List the queued messages, oldest first, with each recipient's "
	    "state, attempts,\nnext retry and last reply; read-only, safe "
	    "while the daemon runs. The spool is\n--spool, else [server] "
	    "spool of --config, else ./var/spool.\n"
	    "--flush asks the running daemon (SIGUSR1) to retry every "
	    "pending recipient now;\nit is found by --pid, or by [server] "
	    "pid_file (default SPOOL/arcrelay.pid).\n");
}

/* cmd_queue - `arcrelay queue`: the options checked, then a listing or
 * a flush. */
int
cmd_queue(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "spool", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "flush", no_argument, NULL, 'f' },
		{ "pid", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfgpath = NULL, *spool = NULL, *pidarg = NULL;
	struct relay_config *cfg = NULL;
	char why[1024], *own = NULL;
	bool json = false, do_flush = false;
	int64_t pid = 0;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cfgpath = optarg;
			break;
		case 's':
			spool = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'f':
			do_flush = true;
			break;
		case 'p':
			pidarg = optarg;
			break;
		case 'h':
			queue_usage(stdout);
			return EXIT_DONE;
		default:
			queue_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_err("queue", "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (pidarg && !do_flush) {
		cli_err("queue", "--pid goes with --flush");
		return EXIT_USAGE;
	}
	if (do_flush && json) {
		cli_err("queue", "--json lists the queue; --flush prints one "
		    "line");
		return EXIT_USAGE;
	}
	if (pidarg && (cfgpath || spool)) {
		cli_err("queue", "--pid names the daemon: no --config or "
		    "--spool with it");
		return EXIT_USAGE;
	}
	if (pidarg && (!cli_parse_int64(pidarg, &pid) || pid <= 0 ||
	    pid > INT32_MAX)) {
		cli_err("queue", "--pid: not a process id: %s", pidarg);
		return EXIT_USAGE;
	}
	if (pidarg)
		return flush((pid_t)pid, NULL);

	if (cfgpath) {
		if ((cfg = config_load(cfgpath, why, sizeof(why))) == NULL) {
			cli_err("queue", "%s", why);
			return EXIT_USAGE;
		}
	} else if (!(do_flush && spool) && (cfg = config_default()) == NULL) {
		cli_err("queue", "out of memory");
		return EXIT_USAGE;
	}
	if (do_flush) {
		/* The configuration's pid file, or the one of --spool alone. */
		const char *pf = cfg ? cfg->pid_file : NULL;

		if (pf == NULL) {
			size_t n = strlen(spool) + sizeof("/arcrelay.pid");

			if ((own = malloc(n)) == NULL) {
				cli_err("queue", "out of memory");
				return EXIT_USAGE;
			}
			snprintf(own, n, "%s/arcrelay.pid", spool);
			pf = own;
		}
		rc = flush(0, pf);
	} else {
		rc = list(spool ? spool : cfg->spool, json);
	}
	free(own);
	config_free(cfg);
	return rc;
}
