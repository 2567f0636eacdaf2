/*
 * smtpd_testd.c - smtpd with simple hooks, driven by smtpd_test.py.
 *
 * The rcpt hook accepts a recipient only in the domain example.net (any
 * case, no final dot) with a plain local part, and logs every address it
 * is handed, exactly, to OUTDIR/hook.log. The message hook hands the txn
 * to a new thread, which waits a little, copies the message out of the
 * server's spool file (smtpd_txn_data) to OUTDIR/N.eml next to N.env
 * (sender, peer facts, recipients) and then calls smtpd_txn_done from
 * that thread. A sender whose local part is "defer" gets a 451.
 *
 *   smtpd_testd -l HOST:PORT -s SPOOL -o OUTDIR [-c CERT -k KEY]
 *               [-t IDLE] [-r MAXRCPT] [-e MAXERR] [-S MAXSIZE]
 *               [-m MAXSESS] [-p MAXPERIP] [-d DELAY_MS] [-v]
 *
 * Prints "ready" on stdout once listening; SIGTERM ends it cleanly.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "log.h"
#include "smtpd.h"

struct testd {
	const char *spool, *outdir;
	unsigned delay_ms;
	FILE *hooklog;
	pthread_mutex_t mu;
	unsigned long seq;
};

static int
tmpfile_cb(void *arg, char *path, size_t pathlen)
{
	struct testd *t = arg;

	if (snprintf(path, pathlen, "%s/tmp.XXXXXX", t->spool) >= (int)pathlen)
		return -1;
	return mkstemp(path);
}

static bool
rcpt_cb(void *arg, const struct smtpd_peer *peer, const char *from,
    const char *rcpt, char *reply, size_t replylen)
{
	struct testd *t = arg;
	const char *at = strrchr(rcpt, '@');
	bool ok;

	ok = at && strcasecmp(at + 1, "example.net") == 0 &&
	    strcspn(rcpt, "%!\"") == strlen(rcpt) &&
	    strchr(rcpt, '@') == at;
	fprintf(t->hooklog, "rcpt from=<%s> to=<%s> %s\n", from, rcpt,
	    ok ? "accept" : "reject");
	fflush(t->hooklog);
	if (!ok)
		snprintf(reply, replylen, "550 5.7.1 <%s> relaying denied",
		    rcpt);
	return ok;
}

struct job {
	struct testd *t;
	struct smtpd_txn *txn;
};

/* copy_out - the message's bytes from the spool file to a new file at
 * path: pread only, as the server's file stays the server's. */
static bool
copy_out(struct smtpd_txn *txn, const char *path)
{
	char buf[8192];
	size_t len, off = 0;
	int fd = smtpd_txn_data(txn, &len);
	FILE *f;

	if (fd < 0 || (f = fopen(path, "wb")) == NULL)
		return false;
	while (off < len) {
		size_t want = len - off < sizeof(buf) ? len - off : sizeof(buf);
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n <= 0 || fwrite(buf, 1, (size_t)n, f) != (size_t)n) {
			fclose(f);
			return false;
		}
		off += (size_t)n;
	}
	return fclose(f) == 0;
}

/* deliver - the "pipeline": on its own thread, like the real one. */
static void *
deliver(void *arg)
{
	struct job *j = arg;
	struct testd *t = j->t;
	const struct smtpd_peer *p = smtpd_txn_peer(j->txn);
	const char *from = smtpd_txn_sender(j->txn);
	char eml[4200], env[4200], tmp[4200], emltmp[4200], reply[128];
	unsigned long n;
	FILE *f;
	size_t i;

	usleep(t->delay_ms * 1000);
	if (strncmp(from, "defer@", 6) == 0) {
		smtpd_txn_done(j->txn, "451 4.3.0 deferred by the test hook");
		free(j);
		return NULL;
	}
	pthread_mutex_lock(&t->mu);
	n = ++t->seq;
	pthread_mutex_unlock(&t->mu);
	snprintf(eml, sizeof(eml), "%s/%lu.eml", t->outdir, n);
	snprintf(env, sizeof(env), "%s/%lu.env", t->outdir, n);
	snprintf(tmp, sizeof(tmp), "%s/%lu.env.tmp", t->outdir, n);
	snprintf(emltmp, sizeof(emltmp), "%s/%lu.eml.tmp", t->outdir, n);
	f = fopen(tmp, "w");
	if (f) {
		fprintf(f, "from=%s\nhelo=%s\ntls=%d\naddr=%s\nserial=%llu\n",
		    from, p->helo, p->tls, p->addr,
		    (unsigned long long)smtpd_txn_serial(j->txn));
		for (i = 0; i < smtpd_txn_nrcpt(j->txn); i++)
			fprintf(f, "rcpt=%s\n", smtpd_txn_rcpt(j->txn, i));
		fclose(f);
	}
	if (!f || !copy_out(j->txn, emltmp) || rename(tmp, env) != 0 ||
	    rename(emltmp, eml) != 0) {
		unlink(emltmp);
		smtpd_txn_done(j->txn, "451 4.3.0 test hook could not store");
	} else {
		snprintf(reply, sizeof(reply), "250 2.0.0 Ok: queued as %lu",
		    n);
		smtpd_txn_done(j->txn, reply);
	}
	free(j);
	return NULL;
}

static void
message_cb(void *arg, struct smtpd_txn *txn)
{
	struct job *j = calloc(1, sizeof(*j));
	pthread_t th;

	if (!j) {
		smtpd_txn_done(txn, "451 4.3.0 out of memory");
		return;
	}
	j->t = arg;
	j->txn = txn;
	if (pthread_create(&th, NULL, deliver, j) != 0) {
		smtpd_txn_done(txn, "451 4.3.0 no thread");
		free(j);
		return;
	}
	pthread_detach(th);
}

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopexit(arg, NULL);
}

int
main(int argc, char **argv)
{
	struct smtpd_config cfg;
	struct smtpd_hooks hooks = { rcpt_cb, message_cb };
	struct testd t;
	struct event_base *base;
	struct event *sigterm, *sigint;
	struct smtpd *s;
	const char *listen[8], *cert = NULL, *key = NULL;
	size_t nlisten = 0, i;
	char why[512], logpath[4096];
	bool verbose = false;
	int opt;

	memset(&cfg, 0, sizeof(cfg));
	memset(&t, 0, sizeof(t));
	t.delay_ms = 100;
	cfg.hostname = "mx.test.example";
	cfg.tmpfile = tmpfile_cb;
	while ((opt = getopt(argc, argv, "l:s:o:c:k:t:r:e:S:m:p:d:v")) != -1) {
		switch (opt) {
		case 'l':
			if (nlisten < 8)
				listen[nlisten++] = optarg;
			break;
		case 's': t.spool = optarg; break;
		case 'o': t.outdir = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 't': cfg.idle_timeout = (unsigned)atoi(optarg); break;
		case 'r': cfg.max_recipients = (unsigned)atoi(optarg); break;
		case 'e': cfg.max_errors = (unsigned)atoi(optarg); break;
		case 'S': cfg.max_message_size = strtoull(optarg, NULL, 10);
			break;
		case 'm': cfg.max_sessions = (unsigned)atoi(optarg); break;
		case 'p': cfg.max_sessions_per_ip = (unsigned)atoi(optarg);
			break;
		case 'd': t.delay_ms = (unsigned)atoi(optarg); break;
		case 'v': verbose = true; break;
		default:
			fprintf(stderr, "usage: see smtpd_testd.c\n");
			return 2;
		}
	}
	if (!nlisten || !t.spool || !t.outdir) {
		fprintf(stderr, "smtpd_testd: -l, -s and -o are required\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	log_init(false, verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	snprintf(logpath, sizeof(logpath), "%s/hook.log", t.outdir);
	if (!(t.hooklog = fopen(logpath, "a"))) {
		perror(logpath);
		return 1;
	}
	pthread_mutex_init(&t.mu, NULL);
	evthread_use_pthreads();
	base = event_base_new();
	if (cert) {
		cfg.tls = SSL_CTX_new(TLS_server_method());
		if (!cfg.tls ||
		    !SSL_CTX_set_min_proto_version(cfg.tls, TLS1_2_VERSION) ||
		    SSL_CTX_use_certificate_chain_file(cfg.tls, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(cfg.tls, key, SSL_FILETYPE_PEM)
		    != 1) {
			fprintf(stderr, "smtpd_testd: cannot load %s/%s\n",
			    cert, key ? key : "(no key)");
			return 1;
		}
	}
	s = smtpd_new(base, &cfg, &hooks, &t);
	if (!s) {
		fprintf(stderr, "smtpd_testd: smtpd_new failed\n");
		return 1;
	}
	for (i = 0; i < nlisten; i++)
		if (!smtpd_listen(s, listen[i], why, sizeof(why))) {
			fprintf(stderr, "smtpd_testd: %s\n", why);
			return 1;
		}
	sigterm = evsignal_new(base, SIGTERM, stop_cb, base);
	sigint = evsignal_new(base, SIGINT, stop_cb, base);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	printf("ready\n");
	fflush(stdout);
	event_base_dispatch(base);
	smtpd_free(s);
	event_free(sigterm);
	event_free(sigint);
	/* Give deliver threads still running a moment (they hit a dead
	 * queue, which is part of what is tested). */
	usleep((t.delay_ms + 100) * 1000);
	event_base_free(base);
	SSL_CTX_free(cfg.tls);
	fclose(t.hooklog);
	return 0;
}
