/*
 * smtpd.c - the SMTP server (RFC 5321) on libevent: listeners, sessions,
 * the command table and the DATA stream (see smtpd.h).
 *
 * A session is one bufferevent and the state machine below: an enum of
 * states, one input routine (session_process) that either frames command
 * lines or scans message text, and a command table whose entries name the
 * states they are valid in; the dispatcher checks that, the handler checks
 * its arguments, then proceeds. Every transition goes through set_state,
 * which logs it at debug level.
 *
 * The server owns its listeners and sessions; a session owns its
 * bufferevent, its timer and its transaction until the transaction is
 * handed to the message hook. From then on the hook owns it, and
 * smtpd_txn_done (any thread) passes it back through a mutex-protected
 * queue and a wake-up of the loop (wake.h).
 *
 * DATA streams into a spool file from the configuration's tmpfile hook.
 * The file goes with the transaction to the hook and comes back with it;
 * the server then keeps it (up to SPOOL_KEEP files) for the next message
 * of any session, which overwrites it from offset 0. Only the length
 * written for the current message counts, so there is no truncate, no
 * create and no unlink per message, and only a session in DATA or
 * waiting for its reply holds a file. The files are never messages: what
 * is queued is what the hook commits, and after a crash the queue sweeps
 * its tmp/ of files nobody holds.
 *
 * SECURITY: every byte a client sends is untrusted. Command lines are
 * framed on LF, must end in CR LF, are capped at 512 octets before they
 * are copied, and may hold printable ASCII only (NUL, controls and 8-bit
 * octets are refused). Message text is scanned byte by byte straight from
 * the input buffer into the temp file; only CR LF "." CR LF ends it, and a
 * bare CR or LF anywhere refuses the message while the scan goes on to the
 * real end marker, which closes SMTP smuggling. Plaintext that follows
 * STARTTLS in the same read is discarded. Input is bounded by a read
 * watermark and output by OUT_MAX, so memory per session stays small
 * whatever the client sends. Peer text reaches the log only through
 * log_quote.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "smtpd.h"
#include "wake.h"

#define CMD_MAX		512	/* command line incl. CRLF, §4.5.3.1.4 */
#define TEXT_MAX	1000	/* text line incl. CRLF, §4.5.3.1.6 */
#define PATH_MAXLEN	256	/* reverse/forward path, §4.5.3.1.3 */
#define LOCAL_MAX	64	/* local part, §4.5.3.1.1 */
#define DOMAIN_MAX	255	/* domain, §4.5.3.1.2 */
#define READ_HIGH	4096	/* input bytes buffered per session */
#define OUT_MAX		16384	/* stop reading commands above this */
#define TLS_UNDER_HIGH	32768	/* ciphertext buffered under TLS */
#define DATA_BUF	16384	/* message text written in blocks */
#define DATA_READ_HIGH	16384	/* input bytes buffered in DATA: above
				 * the 4 KiB libevent reads at a time, so
				 * reading is not paused and resumed (two
				 * epoll_ctl calls) for every read */
#define SPOOL_KEEP	32	/* spool files kept for later messages */
#define SPOOL_KEEP_SIZE	(1u << 20)	/* ... when they held at most this */
#define LINGER_SECS	10	/* to flush a last reply */

/* The session's states, in the order a transaction goes through them. */
enum smtpd_state {
	S_INIT,		/* greeting sent, waiting for EHLO/HELO */
	S_HELO,		/* EHLO/HELO done, no transaction */
	S_MAIL,		/* MAIL accepted, no recipient yet */
	S_RCPT,		/* at least one recipient accepted */
	S_DATA,		/* streaming message text into the temp file */
	S_DATA_DISCARD,	/* message refused; reading on to the end marker */
	S_WAIT_REPLY,	/* the message hook has the txn; nothing is read */
	S_TLS,		/* TLS handshake after STARTTLS */
	S_CLOSING,	/* last reply being flushed, then the session ends */
};

static const char *const state_name[] = {
	"INIT", "HELO", "MAIL", "RCPT", "DATA", "DATA_DISCARD",
	"WAIT_REPLY", "TLS", "CLOSING",
};

#define ST(x)		(1u << (x))
#define ST_CMD		(ST(S_INIT) | ST(S_HELO) | ST(S_MAIL) | ST(S_RCPT))

/* Where the DATA scanner is within a line of message text. */
enum data_pos {
	D_BOL,		/* just after CR LF (or the DATA command) */
	D_TEXT,		/* inside a line */
	D_CR,		/* inside a line, after a CR */
	D_DOT,		/* a "." at the start of a line */
	D_DOTCR,	/* "." CR at the start of a line */
};

/* A spool file for DATA, reused from message to message. */
struct spool_file {
	int fd;				/* owned; open for reading and writing */
	char path[PATH_MAX];		/* unlinked when the file is dropped */
	struct spool_file *next;	/* in srv->spool_free */
};

/* The message being received; exists from DATA to its end marker. */
struct data_stream {
	struct spool_file *file;	/* owned */
	off_t off;			/* bytes written to it so far */
	bool failed;			/* a write failed: drop the file */
	enum data_pos pos;
	size_t linelen;			/* text octets in this line */
	uint64_t size;			/* octets written (unstuffed) */
	size_t lines;			/* lines completed in this chunk */
	const char *refuse;		/* first reason the message failed */
	size_t blen;
	unsigned char buf[DATA_BUF];
};

/*
 * The hand-back queue for smtpd_txn_done: the only structure shared with
 * other threads. Reference counted, so a late smtpd_txn_done after
 * smtpd_free still finds it.
 */
struct smtpd_doneq {
	pthread_mutex_t mu;
	unsigned refs;		/* the server, plus each txn with the hook */
	bool dead;		/* the server has been freed */
	struct wake *wake;	/* the loop's; NULL when dead */
	struct smtpd_txn *head, **tailp;
};

struct session;

struct smtpd_txn {
	struct session *sess;	/* loop thread only; NULL once it has gone */
	struct smtpd_doneq *q;	/* set while the hook has the txn */
	struct smtpd_peer peer;	/* a copy, valid after the session ends */
	char *sender;		/* owned; "" for the null reverse-path */
	char **rcpt;		/* owned, nrcpt strings */
	size_t nrcpt;
	char *reply;		/* owned; set by smtpd_txn_done */
	struct spool_file *file;	/* owned: the message, from DATA on */
	size_t size;		/* its first size bytes */
	uint64_t serial;	/* the server's count of MAILs before it */
	struct smtpd_txn *next;	/* in the done queue */
};

/* The sessions open from one client address (max_sessions_per_ip). */
struct peer_count {
	struct peer_count *next;	/* in its bucket */
	unsigned n;
	char addr[64];
};

#define PEER_BUCKETS 1024

struct session {
	struct smtpd *srv;
	struct session *prev, *next;	/* srv->sessions */
	struct peer_count *pc;		/* its address's count, shared */
	struct bufferevent *bev;	/* owned; the TLS filter after STARTTLS */
	struct event *timer;		/* owned; idle timeout, then linger */
	enum smtpd_state state;
	struct smtpd_peer peer;
	bool esmtp;			/* EHLO rather than HELO */
	bool skipping;			/* dropping an over-long command line */
	unsigned errors;
	unsigned commands;
	struct timespec progress;	/* last complete command or text line */
	struct timespec linger_end;	/* S_CLOSING: free by then */
	const char *end_reason;		/* for the disconnect line */
	enum smtpd_state end_state;	/* the state before S_CLOSING */
	struct smtpd_txn *txn;		/* owned until handed to the hook */
	struct data_stream *data;	/* owned; S_DATA and S_DATA_DISCARD */
	char line[CMD_MAX + 1];
};

struct smtpd {
	struct event_base *base;
	struct smtpd_config cfg;	/* defaults filled in */
	struct smtpd_hooks hooks;
	void *arg;
	struct evconnlistener **lis;	/* owned, nlis */
	size_t nlis;
	struct event *lis_retry;	/* owned; re-enable after EMFILE */
	struct session *sessions;	/* owned, doubly linked */
	unsigned nsessions;
	struct peer_count *peers[PEER_BUCKETS];	/* owned, by address */
	unsigned long serial;
	uint64_t ntxn;			/* MAIL commands accepted so far */
	struct wake *done_wake;		/* owned; woken by smtpd_txn_done */
	struct smtpd_doneq *q;		/* shared, reference counted */
	struct spool_file *spool_free;	/* owned: files kept for reuse */
	unsigned nspool_free;
};

static void session_process(struct session *s);
static bool session_finish(struct session *s);
static void session_free(struct session *s);

/* ---- small helpers --------------------------------------------------- */

static void
now_mono(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

/* ms_since - milliseconds from *then to now. */
static long long
ms_since(const struct timespec *then)
{
	struct timespec now;

	now_mono(&now);
	return (long long)(now.tv_sec - then->tv_sec) * 1000 +
	    (now.tv_nsec - then->tv_nsec) / 1000000;
}

/* arm_timer_ms - (re)start the session's one timer. */
static void
arm_timer_ms(struct session *s, long long ms)
{
	struct timeval tv;

	if (ms < 1)
		ms = 1;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

/* progress - the client completed a command or a text line. */
static void
progress(struct session *s)
{
	now_mono(&s->progress);
}

/* xstrdup - strdup that the daemon may fail on (NULL, not abort). */
static char *
xstrdup(const char *p)
{
	size_t n = strlen(p) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, p, n);
	return d;
}

/* quote - peer text for a log line (one token). */
static const char *
quote(const char *p, size_t n, char *out, size_t outlen)
{
	return log_quote(p, n, out, outlen);
}

/* set_state - every transition goes through here (and the debug log). */
static void
set_state(struct session *s, enum smtpd_state st)
{
	if (s->state != st)
		log_event(LOG_LVL_DEBUG, s->peer.session_id,
		    "event=state from=%s to=%s",
		    state_name[s->state], state_name[st]);
	s->state = st;
}

/* reply_v - queue one reply line (CRLF added); nothing once closing. */
static void
reply_v(struct session *s, const char *fmt, va_list ap)
{
	char line[CMD_MAX + 3], q[CMD_MAX * 2];
	int n;

	if (s->state == S_CLOSING)
		return;
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	log_event(LOG_LVL_DEBUG, s->peer.session_id, "event=reply line=%s",
	    log_quote(line, (size_t)n, q, sizeof(q)));
	line[n++] = '\r';
	line[n++] = '\n';
	evbuffer_add(bufferevent_get_output(s->bev), line, (size_t)n);
}

/* reply - one reply line. */
static void
reply(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
reply(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_v(s, fmt, ap);
	va_end(ap);
}

/*
 * session_close - send a last reply (may be NULL) and end the session once
 * it is flushed. Nothing more is read.
 */
static void
session_close(struct session *s, const char *why, const char *last)
{
	if (s->state == S_CLOSING)
		return;
	if (last)
		reply(s, "%s", last);
	s->end_reason = why;
	s->end_state = s->state;
	set_state(s, S_CLOSING);
	bufferevent_disable(s->bev, EV_READ);
	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
	now_mono(&s->linger_end);
	s->linger_end.tv_sec += LINGER_SECS;
	arm_timer_ms(s, 20);
}

/*
 * reply_error - a 4xx/5xx reply that counts against max_errors; past the
 * limit the session is closed.
 */
static void
reply_error(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
reply_error(struct session *s, const char *fmt, ...)
{
	char buf[300];
	va_list ap;

	if (s->state == S_CLOSING)
		return;
	va_start(ap, fmt);
	reply_v(s, fmt, ap);
	va_end(ap);
	if (++s->errors >= s->srv->cfg.max_errors) {
		log_event(LOG_LVL_WARN, s->peer.session_id,
		    "event=errors count=%u", s->errors);
		snprintf(buf, sizeof(buf), "421 4.7.0 %s too many errors",
		    s->srv->cfg.hostname);
		session_close(s, "errors", buf);
	}
}

/* valid_reply - a hook's reply: "DDD" then SP or the end, with class. */
static bool
valid_reply(const char *r, const char *classes)
{
	size_t i;

	if (!r || r[0] == '\0' || !strchr(classes, r[0]))
		return false;
	if (r[1] < '0' || r[1] > '5' || r[2] < '0' || r[2] > '9')
		return false;
	if (r[3] != '\0' && r[3] != ' ')
		return false;
	for (i = 0; r[i]; i++)
		if ((unsigned char)r[i] < 0x20 || (unsigned char)r[i] >= 0x7f)
			return false;
	return i <= CMD_MAX;
}

/* ---- spool files ---------------------------------------------------- */

/* spool_drop - close and remove a spool file; NULL is a no-op. */
static void
spool_drop(struct spool_file *f)
{
	if (!f)
		return;
	close(f->fd);
	unlink(f->path);
	free(f);
}

/* spool_get - a spool file for a new message: a kept one, or a new one
 * from the tmpfile hook; NULL when there is none. */
static struct spool_file *
spool_get(struct smtpd *srv)
{
	struct spool_file *f = srv->spool_free;

	if (f) {
		srv->spool_free = f->next;
		srv->nspool_free--;
		f->next = NULL;
		return f;
	}
	if (!srv->cfg.tmpfile || !(f = calloc(1, sizeof(*f))))
		return NULL;
	f->fd = srv->cfg.tmpfile(srv->arg, f->path, sizeof(f->path));
	if (f->fd < 0) {
		free(f);
		return NULL;
	}
	return f;
}

/*
 * spool_put - a file whose message is done with, used bytes of it: kept
 * for the next message, or dropped when the server is gone (srv NULL),
 * enough are kept already, or it grew large (a big message's blocks are
 * not worth holding on to).
 */
static void
spool_put(struct smtpd *srv, struct spool_file *f, uint64_t used)
{
	if (!f)
		return;
	if (!srv || srv->nspool_free >= SPOOL_KEEP || used > SPOOL_KEEP_SIZE) {
		spool_drop(f);
		return;
	}
	f->next = srv->spool_free;
	srv->spool_free = f;
	srv->nspool_free++;
}

/* ---- transactions ---------------------------------------------------- */

/* txn_free - a transaction and all it owns, its spool file back to srv
 * (NULL: the server is gone, the file is removed); NULL t is a no-op. */
static void
txn_free(struct smtpd *srv, struct smtpd_txn *t)
{
	size_t i;

	if (!t)
		return;
	spool_put(srv, t->file, t->size);
	for (i = 0; i < t->nrcpt; i++)
		free(t->rcpt[i]);
	free(t->rcpt);
	free(t->sender);
	free(t->reply);
	free(t);
}

/* data_abort - drop a message being received; its file is kept for the
 * next one unless writing it failed. */
static void
data_abort(struct session *s)
{
	struct data_stream *d = s->data;

	if (!d)
		return;
	if (d->failed)
		spool_drop(d->file);
	else
		spool_put(s->srv, d->file, (uint64_t)d->off);
	free(d);
	s->data = NULL;
}

/* txn_reset - forget the transaction (RSET, EHLO, end of DATA). */
static void
txn_reset(struct session *s)
{
	data_abort(s);
	txn_free(s->srv, s->txn);
	s->txn = NULL;
	if (s->state != S_INIT && s->state != S_CLOSING)
		set_state(s, S_HELO);
}

const struct smtpd_peer *
smtpd_txn_peer(const struct smtpd_txn *t)
{
	return &t->peer;
}

const char *
smtpd_txn_sender(const struct smtpd_txn *t)
{
	return t->sender;
}

uint64_t
smtpd_txn_serial(const struct smtpd_txn *t)
{
	return t->serial;
}

uint64_t
smtpd_next_txn_serial(const struct smtpd *srv)
{
	return srv->ntxn;
}

size_t
smtpd_txn_nrcpt(const struct smtpd_txn *t)
{
	return t->nrcpt;
}

const char *
smtpd_txn_rcpt(const struct smtpd_txn *t, size_t i)
{
	return i < t->nrcpt ? t->rcpt[i] : NULL;
}

int
smtpd_txn_data(const struct smtpd_txn *t, size_t *len)
{
	*len = t->file ? t->size : 0;
	return t->file ? t->file->fd : -1;
}

/* doneq_unref_locked - drop one reference (mutex held). */
static void
doneq_unref_locked(struct smtpd_doneq *q, bool *last)
{
	*last = --q->refs == 0;
}

static void
doneq_destroy(struct smtpd_doneq *q)
{
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/*
 * smtpd_txn_done - queue the txn for the loop thread. Takes back
 * ownership from the hook. Only the txn that finds the queue empty
 * wakes the loop: the others join the round it starts, since done_cb
 * takes the whole queue at once.
 */
void
smtpd_txn_done(struct smtpd_txn *t, const char *r)
{
	struct smtpd_doneq *q = t->q;
	bool last = false;

	t->reply = xstrdup(r ? r : "");
	pthread_mutex_lock(&q->mu);
	if (q->dead) {
		doneq_unref_locked(q, &last);
		pthread_mutex_unlock(&q->mu);
		txn_free(NULL, t);
		if (last)
			doneq_destroy(q);
		return;
	}
	t->next = NULL;
	if (q->head == NULL)
		wake_up(q->wake);
	*q->tailp = t;
	q->tailp = &t->next;
	pthread_mutex_unlock(&q->mu);
}

/* txn_reply - the message hook's answer reaches its session. */
static void
txn_reply(struct session *s, struct smtpd_txn *t)
{
	char q[600];
	const char *r = t->reply;

	if (!valid_reply(r, "245")) {
		log_event(LOG_LVL_ERR, s->peer.session_id,
		    "event=message status=bad-hook-reply reply=%s",
		    quote(r ? r : "", r ? strlen(r) : 0, q, sizeof(q)));
		r = "451 4.3.0 local error, try again later";
	}
	log_event(LOG_LVL_INFO, s->peer.session_id,
	    "event=message status=replied reply=%s",
	    quote(r, strlen(r), q, sizeof(q)));
	s->txn = NULL;
	set_state(s, S_HELO);
	reply(s, "%s", r);
	progress(s);
	arm_timer_ms(s, (long long)s->srv->cfg.idle_timeout * 1000);
	bufferevent_enable(s->bev, EV_READ);
	/* Commands pipelined behind the message wait in the input buffer. */
	session_process(s);
	session_finish(s);
}

/* done_cb - drain the hand-back queue on the loop thread. Each spool
 * file is back before its session reads on, so the session's next
 * message takes the same one. */
static void
done_cb(void *arg)
{
	struct smtpd *srv = arg;
	struct smtpd_txn *t, *next;
	bool last;

	pthread_mutex_lock(&srv->q->mu);
	t = srv->q->head;
	srv->q->head = NULL;
	srv->q->tailp = &srv->q->head;
	pthread_mutex_unlock(&srv->q->mu);
	for (; t; t = next) {
		next = t->next;
		spool_put(srv, t->file, t->size);
		t->file = NULL;
		if (t->sess)
			txn_reply(t->sess, t);
		pthread_mutex_lock(&srv->q->mu);
		doneq_unref_locked(srv->q, &last);	/* the server holds one */
		pthread_mutex_unlock(&srv->q->mu);
		txn_free(srv, t);
	}
}

/* ---- path parsing (no I/O) ------------------------------------------ */

static bool
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool
is_letdig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* parse_local - Dot-string or Quoted-string at p[*i]; advances *i. */
static bool
parse_local(const char *p, size_t n, size_t *i)
{
	size_t start = *i, k = *i;

	if (k < n && p[k] == '"') {
		for (k++; k < n; k++) {
			unsigned char c = (unsigned char)p[k];

			if (c == '"')
				break;
			if (c == '\\') {
				if (++k >= n || (unsigned char)p[k] < 32 ||
				    (unsigned char)p[k] > 126)
					return false;
				continue;
			}
			if (c < 32 || c > 126)
				return false;
		}
		if (k >= n)
			return false;
		k++;		/* closing quote */
	} else {
		for (;;) {
			size_t atom = k;

			while (k < n && is_atext((unsigned char)p[k]))
				k++;
			if (k == atom)
				return false;	/* empty atom */
			if (k < n && p[k] == '.') {
				k++;
				continue;
			}
			break;
		}
	}
	if (k - start > LOCAL_MAX)
		return false;
	*i = k;
	return true;
}

/* parse_domain - Domain (one final dot allowed) or an address literal. */
static bool
parse_domain(const char *p, size_t n, size_t *i)
{
	size_t start = *i, k = *i;

	if (k < n && p[k] == '[') {
		char lit[64];
		size_t len;
		unsigned char bin[16];

		for (k++; k < n && p[k] != ']'; k++) {
			unsigned char c = (unsigned char)p[k];

			if (c < 33 || c > 126 || c == '[' || c == '\\')
				return false;
		}
		if (k >= n)
			return false;
		len = k - start - 1;
		if (len == 0 || len >= sizeof(lit))
			return false;
		memcpy(lit, p + start + 1, len);
		lit[len] = '\0';
		if (strncasecmp(lit, "IPv6:", 5) == 0) {
			if (inet_pton(AF_INET6, lit + 5, bin) != 1)
				return false;
		} else if (inet_pton(AF_INET, lit, bin) != 1)
			return false;
		*i = k + 1;
		return true;
	}
	for (;;) {
		size_t label = k;

		if (k >= n || !is_letdig((unsigned char)p[k]))
			return false;
		while (k < n && (is_letdig((unsigned char)p[k]) || p[k] == '-'))
			k++;
		if (p[k - 1] == '-' || k - label > 63)
			return false;
		if (k < n && p[k] == '.') {
			k++;
			/* A final dot is handed on; the rcpt hook decides. */
			if (k >= n || !is_letdig((unsigned char)p[k]))
				break;
			continue;
		}
		break;
	}
	if (k - start > DOMAIN_MAX)
		return false;
	*i = k;
	return true;
}

/*
 * smtpd_parse_path - see smtpd.h. p starts at '<'; out gets the mailbox
 * exactly as sent (quoting and case kept); *rest points after '>'.
 */
bool
smtpd_parse_path(const char *p, size_t n, char *out, size_t outlen,
    const char **rest)
{
	size_t i = 1, len;

	if (outlen > 0)
		out[0] = '\0';
	if (n < 2 || p[0] != '<' || outlen == 0)
		return false;
	if (p[1] == '>') {
		if (rest)
			*rest = p + 2;
		return true;
	}
	if (p[1] == '@')
		return false;	/* a source route: refused */
	if (!parse_local(p, n, &i))
		return false;
	if (i >= n || p[i] != '@')
		return false;
	i++;
	if (!parse_domain(p, n, &i))
		return false;
	if (i >= n || p[i] != '>')
		return false;
	len = i - 1;
	if (len + 2 > PATH_MAXLEN || len + 1 > outlen)
		return false;
	memcpy(out, p + 1, len);
	out[len] = '\0';
	if (rest)
		*rest = p + i + 1;
	return true;
}

/* ---- commands -------------------------------------------------------- */

/* skip_sp - past spaces. */
static void
skip_sp(const char **p, size_t *n)
{
	while (*n > 0 && **p == ' ') {
		(*p)++;
		(*n)--;
	}
}

/* word_is - the first n octets of p, up to SP or end, equal word. */
static bool
word_eq(const char *p, size_t n, const char *word)
{
	size_t wl = strlen(word);

	return n == wl && strncasecmp(p, word, wl) == 0;
}

/*
 * cmd_* - the command handlers. The dispatcher has checked the state;
 * each checks its arguments, then proceeds. arg/n is what follows the verb.
 */
static void
cmd_ehlo_common(struct session *s, const char *arg, size_t n, bool esmtp)
{
	const struct smtpd_config *c = &s->srv->cfg;
	char q[300];
	size_t i;

	if (n == 0) {
		reply_error(s, "501 5.5.4 %s needs a domain or address literal",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	for (i = 0; i < n; i++)
		if (arg[i] == ' ')
			break;
	if (i < n || n >= sizeof(s->peer.helo)) {
		reply_error(s, "501 5.5.4 syntax: %s domain",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	txn_reset(s);
	memcpy(s->peer.helo, arg, n);
	s->peer.helo[n] = '\0';
	s->esmtp = esmtp;
	set_state(s, S_HELO);
	log_event(LOG_LVL_INFO, s->peer.session_id, "event=%s name=%s",
	    esmtp ? "ehlo" : "helo", quote(arg, n, q, sizeof(q)));
	if (!esmtp) {
		reply(s, "250 %s", c->hostname);
		return;
	}
	reply(s, "250-%s", c->hostname);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %llu", (unsigned long long)c->max_message_size);
	reply(s, "250-8BITMIME");
	if (c->tls && !s->peer.tls)
		reply(s, "250-STARTTLS");
	reply(s, "250 ENHANCEDSTATUSCODES");
}

static void
cmd_ehlo(struct session *s, const char *arg, size_t n)
{
	cmd_ehlo_common(s, arg, n, true);
}

static void
cmd_helo(struct session *s, const char *arg, size_t n)
{
	cmd_ehlo_common(s, arg, n, false);
}

/*
 * mail_params - MAIL's esmtp-params: SIZE=n and BODY=7BIT|8BITMIME, each
 * at most once. Replies and returns false on anything else.
 */
static bool
mail_params(struct session *s, const char *p, size_t n)
{
	bool seen_size = false, seen_body = false;

	for (;;) {
		const char *kw, *val = NULL;
		size_t kwlen, vlen = 0;

		skip_sp(&p, &n);
		if (n == 0)
			return true;
		if (!s->esmtp) {
			reply_error(s, "555 5.5.4 parameters need EHLO");
			return false;
		}
		kw = p;
		while (n > 0 && *p != ' ' && *p != '=') {
			p++;
			n--;
		}
		kwlen = (size_t)(p - kw);
		if (n > 0 && *p == '=') {
			p++;
			n--;
			val = p;
			while (n > 0 && *p != ' ') {
				p++;
				n--;
			}
			vlen = (size_t)(p - val);
		}
		if (word_eq(kw, kwlen, "SIZE")) {
			uint64_t v = 0;
			size_t i;

			if (seen_size || !val || vlen == 0 || vlen > 20) {
				reply_error(s, "501 5.5.4 bad SIZE parameter");
				return false;
			}
			for (i = 0; i < vlen; i++) {
				unsigned d = (unsigned)(val[i] - '0');

				if (d > 9 || v > (UINT64_MAX - d) / 10) {
					reply_error(s,
					    "501 5.5.4 bad SIZE parameter");
					return false;
				}
				v = v * 10 + d;
			}
			if (v > s->srv->cfg.max_message_size) {
				reply_error(s, "552 5.3.4 message size exceeds "
				    "fixed maximum message size");
				return false;
			}
			seen_size = true;
		} else if (word_eq(kw, kwlen, "BODY")) {
			if (seen_body || !val || !(word_eq(val, vlen, "7BIT") ||
			    word_eq(val, vlen, "8BITMIME"))) {
				reply_error(s, "501 5.5.4 bad BODY parameter");
				return false;
			}
			seen_body = true;
		} else {
			char q[200];

			log_event(LOG_LVL_INFO, s->peer.session_id,
			    "event=mail status=refused param=%s",
			    quote(kw, kwlen, q, sizeof(q)));
			reply_error(s, "555 5.5.4 unsupported parameter");
			return false;
		}
	}
}

static void
cmd_mail(struct session *s, const char *arg, size_t n)
{
	char path[PATH_MAXLEN + 1], q[600];
	const char *rest;
	struct smtpd_txn *t;

	if (n < 5 || strncasecmp(arg, "FROM:", 5) != 0) {
		reply_error(s, "501 5.5.4 syntax: MAIL FROM:<address>");
		return;
	}
	arg += 5;
	n -= 5;
	skip_sp(&arg, &n);
	if (n > 1 && arg[0] == '<' && arg[1] == '@') {
		reply_error(s, "550 5.7.1 source routes are not accepted");
		return;
	}
	if (!smtpd_parse_path(arg, n, path, sizeof(path), &rest)) {
		reply_error(s, "501 5.1.7 bad sender address syntax");
		return;
	}
	if (!mail_params(s, rest, n - (size_t)(rest - arg)))
		return;
	t = calloc(1, sizeof(*t));
	if (!t || !(t->sender = xstrdup(path))) {
		free(t);
		reply(s, "451 4.3.0 out of memory");
		return;
	}
	t->sess = s;
	t->serial = s->srv->ntxn++;
	s->txn = t;
	set_state(s, S_MAIL);
	log_event(LOG_LVL_INFO, s->peer.session_id,
	    "event=mail status=accepted from=%s",
	    quote(path, strlen(path), q, sizeof(q)));
	reply(s, "250 2.1.0 sender ok");
}

static void
cmd_rcpt(struct session *s, const char *arg, size_t n)
{
	const struct smtpd_hooks *h = &s->srv->hooks;
	struct smtpd_txn *t = s->txn;
	char path[PATH_MAXLEN + 1], why[512], q[600], q2[600], **v;
	const char *rest;

	if (n < 3 || strncasecmp(arg, "TO:", 3) != 0) {
		reply_error(s, "501 5.5.4 syntax: RCPT TO:<address>");
		return;
	}
	arg += 3;
	n -= 3;
	skip_sp(&arg, &n);
	if (n > 1 && arg[0] == '<' && arg[1] == '@') {
		log_event(LOG_LVL_INFO, s->peer.session_id,
		    "event=rcpt status=refused to=%s reason=source-route",
		    quote(arg, n, q, sizeof(q)));
		reply_error(s, "550 5.7.1 source routes are not accepted");
		return;
	}
	if (n >= 12 && strncasecmp(arg, "<postmaster>", 12) == 0) {
		/* §4.5.1: <Postmaster> without a domain must work. */
		memcpy(path, arg + 1, 10);
		path[10] = '\0';
		rest = arg + 12;
	} else if (!smtpd_parse_path(arg, n, path, sizeof(path), &rest)) {
		reply_error(s, "501 5.1.3 bad recipient address syntax");
		return;
	} else if (path[0] == '\0') {
		reply_error(s, "501 5.1.3 empty recipient address");
		return;
	}
	n -= (size_t)(rest - arg);
	skip_sp(&rest, &n);
	if (n > 0) {
		reply_error(s, "555 5.5.4 RCPT parameters not supported");
		return;
	}
	if (t->nrcpt >= s->srv->cfg.max_recipients) {
		/* RFC 5321 §4.5.3.1.10: 452, not an error by the client. */
		reply(s, "452 4.5.3 too many recipients");
		return;
	}
	why[0] = '\0';
	if (!h->rcpt || !h->rcpt(s->srv->arg, &s->peer, t->sender, path,
	    why, sizeof(why))) {
		if (!valid_reply(why, "45"))
			snprintf(why, sizeof(why), "550 5.7.1 relaying denied");
		log_event(LOG_LVL_INFO, s->peer.session_id,
		    "event=rcpt status=refused to=%s reply=%s",
		    quote(path, strlen(path), q, sizeof(q)),
		    quote(why, strlen(why), q2, sizeof(q2)));
		reply_error(s, "%s", why);
		return;
	}
	v = realloc(t->rcpt, (t->nrcpt + 1) * sizeof(*v));
	if (!v) {
		reply(s, "452 4.3.0 out of memory");
		return;
	}
	t->rcpt = v;
	if (!(v[t->nrcpt] = xstrdup(path))) {
		reply(s, "452 4.3.0 out of memory");
		return;
	}
	t->nrcpt++;
	set_state(s, S_RCPT);
	log_event(LOG_LVL_INFO, s->peer.session_id,
	    "event=rcpt status=accepted to=%s",
	    quote(path, strlen(path), q, sizeof(q)));
	reply(s, "250 2.1.5 recipient ok");
}

static void
cmd_data(struct session *s, const char *arg, size_t n)
{
	struct data_stream *d;

	if (n > 0) {
		reply_error(s, "501 5.5.4 DATA takes no arguments");
		return;
	}
	if (s->state == S_MAIL) {
		reply_error(s, "554 5.5.1 no valid recipients");
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		reply(s, "451 4.3.0 out of memory");
		return;
	}
	if (!(d->file = spool_get(s->srv))) {
		free(d);
		log_event(LOG_LVL_ERR, s->peer.session_id,
		    "event=data status=failed reason=\"no temp file\"");
		reply(s, "451 4.3.0 local error, try again later");
		return;
	}
	d->pos = D_BOL;
	s->data = d;
	set_state(s, S_DATA);
	/* Text is scanned as it comes: more of it may be read at once. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, DATA_READ_HIGH);
	reply(s, "354 end data with <CR><LF>.<CR><LF>");
}

static void
cmd_rset(struct session *s, const char *arg, size_t n)
{
	if (n > 0) {
		reply_error(s, "501 5.5.4 RSET takes no arguments");
		return;
	}
	txn_reset(s);
	reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct session *s, const char *arg, size_t n)
{
	reply(s, "250 2.0.0 Ok");
}

static void
cmd_quit(struct session *s, const char *arg, size_t n)
{
	char buf[300];

	snprintf(buf, sizeof(buf), "221 2.0.0 %s closing",
	    s->srv->cfg.hostname);
	session_close(s, "quit", buf);
}

static void
cmd_vrfy(struct session *s, const char *arg, size_t n)
{
	if (n == 0) {
		reply_error(s, "501 5.5.4 syntax: VRFY address");
		return;
	}
	reply(s, "252 2.0.0 cannot VRFY, but will take a message for it");
}

static void
cmd_help(struct session *s, const char *arg, size_t n)
{
	reply(s, "214 2.0.0 commands: EHLO HELO MAIL RCPT DATA RSET NOOP "
	    "QUIT VRFY HELP%s", s->srv->cfg.tls && !s->peer.tls ?
	    " STARTTLS" : "");
}

static void tls_start(struct session *s);
static void session_setcb(struct session *s);

static void
cmd_starttls(struct session *s, const char *arg, size_t n)
{
	if (!s->srv->cfg.tls || s->peer.tls) {
		reply_error(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	if (n > 0) {
		reply_error(s, "501 5.5.4 STARTTLS takes no arguments");
		return;
	}
	tls_start(s);
}

/*
 * The command table. states: where a command is valid (the dispatcher
 * checks it and answers seq otherwise); junk: does not count as progress
 * for the idle timeout.
 */
static const struct smtpd_cmd {
	const char *name;
	unsigned states;
	bool junk;
	void (*fn)(struct session *, const char *, size_t);
	const char *seq;
} smtpd_cmds[] = {
	{ "EHLO", ST_CMD, false, cmd_ehlo, NULL },
	{ "HELO", ST_CMD, false, cmd_helo, NULL },
	{ "MAIL", ST(S_HELO), false, cmd_mail,
	  "503 5.5.1 MAIL needs EHLO first and no open transaction" },
	{ "RCPT", ST(S_MAIL) | ST(S_RCPT), false, cmd_rcpt,
	  "503 5.5.1 RCPT needs MAIL first" },
	{ "DATA", ST(S_MAIL) | ST(S_RCPT), false, cmd_data,
	  "503 5.5.1 DATA needs MAIL and RCPT first" },
	{ "RSET", ST_CMD, true, cmd_rset, NULL },
	{ "NOOP", ST_CMD, true, cmd_noop, NULL },
	{ "QUIT", ST_CMD, false, cmd_quit, NULL },
	{ "VRFY", ST_CMD, true, cmd_vrfy, NULL },
	{ "HELP", ST_CMD, true, cmd_help, NULL },
	{ "STARTTLS", ST(S_HELO), false, cmd_starttls,
	  "503 5.5.1 STARTTLS needs EHLO first and no open transaction" },
};

/* dispatch - one command line (CRLF removed), checked to be printable. */
static void
dispatch(struct session *s, const char *p, size_t n)
{
	const struct smtpd_cmd *c = NULL;
	size_t i, vlen;
	char q[600];

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == '\0') {
			reply_error(s, "500 5.5.2 NUL octet in command");
			return;
		}
		if (ch < 0x20 || ch >= 0x7f) {
			reply_error(s, "500 5.5.2 invalid octet in command");
			return;
		}
	}
	while (n > 0 && p[n - 1] == ' ')
		n--;		/* trailing spaces are harmless; tolerated */
	for (vlen = 0; vlen < n && p[vlen] != ' '; vlen++)
		;
	for (i = 0; i < sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0]); i++)
		if (word_eq(p, vlen, smtpd_cmds[i].name)) {
			c = &smtpd_cmds[i];
			break;
		}
	log_event(LOG_LVL_DEBUG, s->peer.session_id, "event=command line=%s",
	    quote(p, n, q, sizeof(q)));
	s->commands++;
	if (!c) {
		reply_error(s, "500 5.5.1 unknown command");
		return;
	}
	if (!(c->states & ST(s->state))) {
		reply_error(s, "%s", c->seq ? c->seq :
		    "503 5.5.1 bad sequence of commands");
		return;
	}
	if (!c->junk)
		progress(s);
	if (vlen < n)
		vlen++;		/* the SP after the verb */
	c->fn(s, p + vlen, n - vlen);
}

/*
 * command_next - frame one command line from the input and run it.
 * Returns false when more input is needed.
 */
static bool
command_next(struct session *s, struct evbuffer *in)
{
	struct evbuffer_ptr lf;
	size_t avail = evbuffer_get_length(in), len;

	lf = evbuffer_search(in, "\n", 1, NULL);
	if (s->skipping) {
		if (lf.pos < 0) {
			evbuffer_drain(in, avail);
			return false;
		}
		evbuffer_drain(in, (size_t)lf.pos + 1);
		s->skipping = false;
		reply_error(s, "500 5.5.2 line too long");
		return true;
	}
	if (lf.pos < 0) {
		if (avail >= CMD_MAX) {
			/* No LF within 512 octets: too long whatever follows. */
			s->skipping = true;
			evbuffer_drain(in, avail);
		}
		return false;
	}
	len = (size_t)lf.pos + 1;
	if (len > CMD_MAX) {
		evbuffer_drain(in, len);
		reply_error(s, "500 5.5.2 line too long");
		return true;
	}
	evbuffer_remove(in, s->line, len);
	s->line[len] = '\0';
	if (len < 2 || s->line[len - 2] != '\r') {
		reply_error(s, "500 5.5.2 line must end with CRLF");
		return true;
	}
	dispatch(s, s->line, len - 2);
	return true;
}

/* ---- DATA ------------------------------------------------------------ */

/* data_refuse - the message fails (first reason kept); read on to the end. */
static void
data_refuse(struct session *s, const char *why)
{
	struct data_stream *d = s->data;

	if (d->refuse)
		return;
	d->refuse = why;
	set_state(s, S_DATA_DISCARD);
}

/* data_flush - write the block buffer to the spool file, after what
 * this message wrote before: a reused file's older bytes past it are
 * never read. */
static void
data_flush(struct session *s)
{
	struct data_stream *d = s->data;
	size_t off = 0;

	while (off < d->blen) {
		ssize_t k = pwrite(d->file->fd, d->buf + off, d->blen - off,
		    d->off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			log_event(LOG_LVL_ERR, s->peer.session_id,
			    "event=data status=failed reason=\"%s\"",
			    k < 0 ? strerror(errno) : "nothing written");
			d->failed = true;
			data_refuse(s, "451 4.3.0 local error writing the "
			    "message, try again later");
			break;
		}
		off += (size_t)k;
		d->off += k;
	}
	d->blen = 0;
}

/* data_put - message octets to the block buffer, SIZE checked. */
static void
data_put(struct session *s, const unsigned char *p, size_t n)
{
	struct data_stream *d = s->data;

	if (s->state != S_DATA)
		return;
	d->size += n;
	if (d->size > s->srv->cfg.max_message_size) {
		data_refuse(s, "552 5.3.4 message size exceeds fixed maximum "
		    "message size");
		return;
	}
	if (d->blen + n > sizeof(d->buf))
		data_flush(s);
	memcpy(d->buf + d->blen, p, n);
	d->blen += n;
}

/*
 * data_scan - message text from p; undoes dot-stuffing, refuses bare CR,
 * bare LF, NUL and long lines. Only CR LF "." CR LF ends the text: a bare
 * LF or CR never starts a line, so "\n.\n", "\r.\n" and "\n.\r\n" are
 * text. Returns true at the end marker, *used being the octets consumed
 * through it.
 */
static bool
data_scan(struct session *s, const unsigned char *p, size_t n, size_t *used)
{
	struct data_stream *d = s->data;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = p[i];

		switch (d->pos) {
		case D_BOL:
			if (c == '.') {
				d->pos = D_DOT;
				continue;
			}
			break;
		case D_DOT:
			if (c == '\r') {
				d->pos = D_DOTCR;
				continue;
			}
			break;		/* a stuffed dot: dropped */
		case D_DOTCR:
			if (c == '\n') {
				*used = i + 1;
				return true;
			}
			data_refuse(s, "550 5.6.0 bare CR in message; CRLF "
			    "line endings only");
			break;
		case D_CR:
			if (c == '\n') {
				data_put(s, (const unsigned char *)"\r\n", 2);
				d->linelen = 0;
				d->lines++;
				d->pos = D_BOL;
				continue;
			}
			data_refuse(s, "550 5.6.0 bare CR in message; CRLF "
			    "line endings only");
			break;
		case D_TEXT:
			break;
		}
		/* c is inside a line. */
		d->pos = D_TEXT;
		if (c == '\r') {
			d->pos = D_CR;
			continue;
		}
		if (c == '\n') {
			data_refuse(s, "550 5.6.0 bare LF in message; CRLF "
			    "line endings only");
			continue;
		}
		if (c == '\0') {
			data_refuse(s, "550 5.6.0 NUL octet in message");
			continue;
		}
		if (++d->linelen + 2 > TEXT_MAX) {
			data_refuse(s, "500 5.5.2 text line longer than 1000 "
			    "octets");
			continue;
		}
		if (s->state == S_DATA) {
			/* The common case, without data_put's checks. */
			if (++d->size > s->srv->cfg.max_message_size) {
				data_refuse(s, "552 5.3.4 message size exceeds "
				    "fixed maximum message size");
				continue;
			}
			if (d->blen == sizeof(d->buf))
				data_flush(s);
			d->buf[d->blen++] = c;
		}
	}
	*used = n;
	return false;
}

/* data_end - the end marker: refuse, or hand the message to the hook. */
static void
data_end(struct session *s)
{
	struct data_stream *d = s->data;
	struct smtpd_txn *t = s->txn;
	struct smtpd *srv = s->srv;
	char q[200];

	bufferevent_setwatermark(s->bev, EV_READ, 0, READ_HIGH);
	if (s->state == S_DATA)
		data_flush(s);
	if (s->state == S_DATA_DISCARD) {
		const char *why = d->refuse;

		log_event(LOG_LVL_INFO, s->peer.session_id,
		    "event=message status=refused reply=%s",
		    quote(why, strlen(why), q, sizeof(q)));
		txn_reset(s);
		if (why[0] == '4')
			reply(s, "%s", why);
		else
			reply_error(s, "%s", why);
		return;
	}
	log_event(LOG_LVL_INFO, s->peer.session_id,
	    "event=message status=received size=%llu nrcpt=%zu",
	    (unsigned long long)d->size, t->nrcpt);
	/* The txn now belongs to the hook, and the file goes with it: lent
	 * for reading until the reply comes back. */
	t->file = d->file;
	t->size = (size_t)d->off;
	d->file = NULL;
	t->peer = s->peer;
	t->q = srv->q;
	pthread_mutex_lock(&srv->q->mu);
	srv->q->refs++;
	pthread_mutex_unlock(&srv->q->mu);
	set_state(s, S_WAIT_REPLY);
	bufferevent_disable(s->bev, EV_READ);
	if (srv->hooks.message)
		srv->hooks.message(srv->arg, t);
	else
		smtpd_txn_done(t, "554 5.3.0 no message handler");
	free(d);
	s->data = NULL;
}

/* data_next - scan what the input holds; false when more is needed. */
static bool
data_next(struct session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v[8];
	size_t used;
	int i, nv;
	bool end;

	if (evbuffer_get_length(in) == 0)
		return false;
	nv = evbuffer_peek(in, -1, NULL, v, 8);
	for (i = 0; i < nv && i < 8 && v[i].iov_len == 0; i++)
		;
	if (i == nv || i == 8)
		return false;
	s->data->lines = 0;
	/* Empty chains before v[i] hold no octets, so draining used works. */
	end = data_scan(s, v[i].iov_base, v[i].iov_len, &used);
	if (s->data->lines > 0 || end)
		progress(s);
	evbuffer_drain(in, used);
	if (end)
		data_end(s);
	return true;
}

/* ---- TLS ------------------------------------------------------------- */

/*
 * tls_start - answer STARTTLS and put a TLS filter over the connection.
 * Whatever plaintext the client sent after the command is dropped: it
 * must not be read as if it came through TLS.
 */
static void
tls_start(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *f;
	SSL *ssl;
	size_t dropped = evbuffer_get_length(in);

	ssl = SSL_new(s->srv->cfg.tls);
	if (!ssl || !SSL_set_min_proto_version(ssl, TLS1_2_VERSION)) {
		SSL_free(ssl);
		reply(s, "454 4.7.0 TLS not available");
		return;
	}
	if (dropped > 0) {
		log_event(LOG_LVL_WARN, s->peer.session_id,
		    "event=starttls dropped=%zu reason=\"pipelined plaintext\"",
		    dropped);
		evbuffer_drain(in, dropped);
	}
	reply(s, "220 2.0.0 ready to start TLS");
	txn_reset(s);
	s->peer.helo[0] = '\0';
	s->esmtp = false;
	set_state(s, S_TLS);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, TLS_UNDER_HIGH);
	f = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!f) {
		/* Out of memory; who owns ssl now is unclear, so it leaks. */
		session_close(s, "tls-setup", NULL);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
	s->bev = f;
	bufferevent_setwatermark(f, EV_READ, 0, READ_HIGH);
	session_setcb(s);
}

/* ---- the session's callbacks ---------------------------------------- */

/*
 * session_process - the one input routine: run what the input holds,
 * command by command or chunk by chunk of DATA, until more input is
 * needed, the state stops reading, or replies pile up unread.
 */
static void
session_process(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	for (;;) {
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) >
		    OUT_MAX)
			return;		/* resumed from session_writecb */
		switch (s->state) {
		case S_DATA:
		case S_DATA_DISCARD:
			if (!data_next(s, in))
				return;
			break;
		case S_INIT:
		case S_HELO:
		case S_MAIL:
		case S_RCPT:
			if (!command_next(s, in))
				return;
			break;
		case S_WAIT_REPLY:
		case S_TLS:
		case S_CLOSING:
			return;
		}
	}
}

/* flushed - nothing left to send, through the TLS filter too. */
static bool
flushed(struct session *s)
{
	struct bufferevent *u = bufferevent_get_underlying(s->bev);

	return evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 &&
	    (!u || evbuffer_get_length(bufferevent_get_output(u)) == 0);
}

/* session_finish - end a closing session once flushed; true if freed. */
static bool
session_finish(struct session *s)
{
	if (s->state != S_CLOSING || !flushed(s))
		return false;
	session_free(s);
	return true;
}

/* session_readcb, session_writecb, session_eventcb - libevent's calls. */
static void
session_readcb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	session_process(s);
	session_finish(s);
}

static void
session_writecb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (session_finish(s))
		return;
	if (s->state != S_CLOSING && s->state != S_WAIT_REPLY) {
		session_process(s);
		session_finish(s);
	}
}

static void
session_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	char err[256], q[600];

	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

		s->peer.tls = true;
		log_event(LOG_LVL_INFO, s->peer.session_id,
		    "event=starttls status=ok version=%s cipher=%s",
		    ssl ? SSL_get_version(ssl) : "?",
		    ssl ? SSL_get_cipher_name(ssl) : "?");
		set_state(s, S_INIT);
		progress(s);
		session_process(s);
		session_finish(s);
		return;
	}
	if (what & BEV_EVENT_EOF)
		s->end_reason = s->state == S_CLOSING ? s->end_reason : "eof";
	else if (what & BEV_EVENT_ERROR) {
		unsigned long e = s->peer.tls || s->state == S_TLS ?
		    bufferevent_get_openssl_error(s->bev) : 0;

		if (e) {
			ERR_error_string_n(e, err, sizeof(err));
			log_event(LOG_LVL_INFO, s->peer.session_id,
			    "event=starttls status=failed reason=%s",
			    quote(err, strlen(err), q, sizeof(q)));
		}
		if (s->state != S_CLOSING)
			s->end_reason = s->state == S_TLS ? "tls-error" :
			    "io-error";
	} else if (what & BEV_EVENT_TIMEOUT)
		s->end_reason = "write-timeout";
	session_free(s);
}

/* session_setcb - point the (possibly new TLS) bufferevent at us. */
static void
session_setcb(struct session *s)
{
	bufferevent_setcb(s->bev, session_readcb, session_writecb,
	    session_eventcb, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* session_timercb - idle timeout, or the linger of a closing session. */
static void
session_timercb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	long long idle_ms = (long long)s->srv->cfg.idle_timeout * 1000, ms;
	char buf[300];

	if (s->state == S_CLOSING) {
		if (session_finish(s))
			return;
		if (ms_since(&s->linger_end) >= 0) {
			session_free(s);
			return;
		}
		arm_timer_ms(s, 50);
		return;
	}
	if (s->state == S_WAIT_REPLY) {
		arm_timer_ms(s, idle_ms);	/* we owe the reply */
		return;
	}
	ms = ms_since(&s->progress);
	if (ms < idle_ms) {
		arm_timer_ms(s, idle_ms - ms);
		return;
	}
	log_event(LOG_LVL_INFO, s->peer.session_id,
	    "event=timeout state=%s seconds=%u", state_name[s->state],
	    s->srv->cfg.idle_timeout);
	if (s->state == S_TLS) {
		/* No plaintext reply in the middle of a handshake. */
		session_close(s, "timeout", NULL);
		session_finish(s);
		return;
	}
	txn_reset(s);
	snprintf(buf, sizeof(buf), "421 4.4.2 %s idle timeout, closing",
	    s->srv->cfg.hostname);
	session_close(s, "timeout", buf);
	session_finish(s);
}

/* ---- sessions -------------------------------------------------------- */

/* peer_bucket - the bucket of a client address (FNV-1a). */
static struct peer_count **
peer_bucket(struct smtpd *srv, const char *addr)
{
	uint32_t h = 2166136261u;

	for (; *addr; addr++)
		h = (h ^ (unsigned char)*addr) * 16777619u;
	return &srv->peers[h % PEER_BUCKETS];
}

/*
 * peer_get - the count of sessions from addr, made at zero if there is
 * none (NULL if out of memory). A lookup instead of a walk over every
 * session, so that accepting stays cheap with thousands open.
 */
static struct peer_count *
peer_get(struct smtpd *srv, const char *addr)
{
	struct peer_count **b = peer_bucket(srv, addr), *pc;

	for (pc = *b; pc; pc = pc->next)
		if (strcmp(pc->addr, addr) == 0)
			return pc;
	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		return NULL;
	snprintf(pc->addr, sizeof(pc->addr), "%s", addr);
	pc->next = *b;
	*b = pc;
	return pc;
}

/* peer_put - one session from pc's address fewer; the count goes when
 * it reaches zero. */
static void
peer_put(struct smtpd *srv, struct peer_count *pc)
{
	struct peer_count **b;

	if (pc == NULL || --pc->n > 0)
		return;
	for (b = peer_bucket(srv, pc->addr); *b != pc; b = &(*b)->next)
		;
	*b = pc->next;
	free(pc);
}

/* session_free - end a session now; a txn with the hook stays its. */
static void
session_free(struct session *s)
{
	struct smtpd *srv = s->srv;

	log_event(LOG_LVL_INFO, s->peer.session_id,
	    "event=disconnect reason=%s state=%s commands=%u errors=%u",
	    s->end_reason ? s->end_reason : "closed",
	    state_name[s->state == S_CLOSING ? s->end_state : s->state],
	    s->commands, s->errors);
	if (s->state == S_WAIT_REPLY && s->txn) {
		s->txn->sess = NULL;	/* the hook keeps it */
		s->txn = NULL;
	}
	data_abort(s);
	txn_free(srv, s->txn);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	peer_put(srv, s->pc);
	event_free(s->timer);
	bufferevent_free(s->bev);
	free(s);
}

/* client_addr - numeric address of sa, IPv4-mapped shown as IPv4. */
static void
client_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t n,
    bool *loopback)
{
	*loopback = false;
	if (getnameinfo(sa, len, out, (socklen_t)n, NULL, 0,
	    NI_NUMERICHOST) != 0)
		snprintf(out, n, "unknown");
	if (strncmp(out, "::ffff:", 7) == 0 && strchr(out + 7, '.'))
		memmove(out, out + 7, strlen(out + 7) + 1);
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		*loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
	}
	if (strncmp(out, "127.", 4) == 0)
		*loopback = true;
}

/* refuse_conn - a 421 at connect, over the session limits. */
static void
refuse_conn(evutil_socket_t fd, const char *addr, const char *why,
    const char *line)
{
	log_event(LOG_LVL_WARN, NULL, "event=connect status=refused client=%s "
	    "reason=%s", addr, why);
	(void)!write(fd, line, strlen(line));
	evutil_closesocket(fd);
}

/*
 * session_start - a connected, non-blocking fd: the session limits, then
 * a session in S_INIT. Every refusal closes fd.
 */
static void
session_start(struct smtpd *srv, int fd, const struct sockaddr *sa,
    socklen_t salen)
{
	struct session *s;
	struct peer_count *pc;
	char addr[64];
	bool loopback;
	struct timespec ts;

	client_addr(sa, salen, addr, sizeof(addr), &loopback);
	if (srv->nsessions >= srv->cfg.max_sessions) {
		refuse_conn(fd, addr, "max_sessions",
		    "421 4.7.0 too many sessions, try again later\r\n");
		return;
	}
	if ((pc = peer_get(srv, addr)) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	if (pc->n >= srv->cfg.max_sessions_per_ip) {
		refuse_conn(fd, addr, "max_sessions_per_ip",
		    "421 4.7.0 too many sessions from your address, try again "
		    "later\r\n");
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		pc->n++;
		peer_put(srv, pc);	/* frees it if it was new */
		evutil_closesocket(fd);
		return;
	}
	s->srv = srv;
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->timer = evtimer_new(srv->base, session_timercb, s);
	if (!s->bev || !s->timer) {
		if (s->bev)
			bufferevent_free(s->bev);
		else
			evutil_closesocket(fd);
		if (s->timer)
			event_free(s->timer);
		free(s);
		pc->n++;
		peer_put(srv, pc);
		return;
	}
	s->pc = pc;
	pc->n++;
	snprintf(s->peer.addr, sizeof(s->peer.addr), "%s", addr);
	s->peer.loopback = loopback;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(s->peer.session_id, sizeof(s->peer.session_id),
	    "%08llx%06lx", (unsigned long long)ts.tv_sec & 0xffffffffULL,
	    ++srv->serial & 0xffffffUL);
	s->state = S_INIT;
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	log_event(LOG_LVL_INFO, s->peer.session_id,
	    "event=connect client=%s", addr);
	bufferevent_setwatermark(s->bev, EV_READ, 0, READ_HIGH);
	session_setcb(s);
	reply(s, "220 %s ESMTP arcrelay", srv->cfg.hostname);
	progress(s);
	arm_timer_ms(s, (long long)srv->cfg.idle_timeout * 1000);
}

/* smtpd_attach - see smtpd.h. */
void
smtpd_attach(struct smtpd *srv, int fd, const struct sockaddr *sa,
    socklen_t salen)
{
	if (evutil_make_socket_nonblocking(fd) != 0) {
		evutil_closesocket(fd);
		return;
	}
	session_start(srv, fd, sa, salen);
}

/* accept_cb - a new connection from a listener (already non-blocking:
 * evconnlistener accepts that way). */
static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	(void)l;
	session_start(arg, fd, sa, (socklen_t)salen);
}

/* ---- the server ------------------------------------------------------ */

static void
lis_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *srv = arg;
	size_t i;

	for (i = 0; i < srv->nlis; i++)
		evconnlistener_enable(srv->lis[i]);
}

/* accept_error_cb - e.g. EMFILE: pause accepting for a second. */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct smtpd *srv = arg;
	struct timeval tv = { 1, 0 };
	size_t i;

	log_event(LOG_LVL_ERR, NULL, "event=accept status=failed reason=\"%s\"",
	    strerror(errno));
	for (i = 0; i < srv->nlis; i++)
		evconnlistener_disable(srv->lis[i]);
	evtimer_add(srv->lis_retry, &tv);
}

struct smtpd *
smtpd_new(struct event_base *base, const struct smtpd_config *cfg,
    const struct smtpd_hooks *hooks, void *arg)
{
	struct smtpd *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	srv->base = base;
	srv->cfg = *cfg;
	if (!srv->cfg.hostname)
		srv->cfg.hostname = "localhost";
	if (!srv->cfg.max_message_size)
		srv->cfg.max_message_size = 50ULL * 1024 * 1024;
	if (!srv->cfg.max_recipients)
		srv->cfg.max_recipients = 100;
	if (!srv->cfg.max_errors)
		srv->cfg.max_errors = 10;
	if (!srv->cfg.idle_timeout)
		srv->cfg.idle_timeout = 300;
	if (!srv->cfg.max_sessions)
		srv->cfg.max_sessions = 500;
	if (!srv->cfg.max_sessions_per_ip)
		srv->cfg.max_sessions_per_ip = 20;
	if (hooks)
		srv->hooks = *hooks;
	srv->arg = arg;
	srv->q = calloc(1, sizeof(*srv->q));
	srv->done_wake = wake_new(base, done_cb, srv);
	srv->lis_retry = evtimer_new(base, lis_retry_cb, srv);
	if (!srv->q || !srv->done_wake || !srv->lis_retry)
		goto fail;
	pthread_mutex_init(&srv->q->mu, NULL);
	srv->q->refs = 1;
	srv->q->wake = srv->done_wake;
	srv->q->tailp = &srv->q->head;
	return srv;
fail:
	wake_free(srv->done_wake);
	if (srv->lis_retry)
		event_free(srv->lis_retry);
	free(srv->q);
	free(srv);
	return NULL;
}

/* split_hostport - "host:port", "[v6]:port", "*:port" or ":port". */
static bool
split_hostport(const char *hp, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char *colon, *h = hp;
	size_t hl;

	if (hp[0] == '[') {
		const char *end = strchr(hp, ']');

		if (!end || end[1] != ':')
			return false;
		h = hp + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(hp, ':');
		if (!colon)
			return false;
		hl = (size_t)(colon - hp);
	}
	if (hl >= hostlen || strlen(colon + 1) >= portlen || !colon[1])
		return false;
	memcpy(host, h, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	if (strcmp(host, "*") == 0)
		host[0] = '\0';
	return true;
}

bool
smtpd_listen(struct smtpd *srv, const char *hostport, char *why,
    size_t whylen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256], port[32];
	size_t first = srv->nlis;
	int rc, err = 0;

	if (!split_hostport(hostport, host, sizeof(host), port, sizeof(port))) {
		snprintf(why, whylen, "%s: want host:port", hostport);
		return false;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(why, whylen, "%s: %s", hostport, gai_strerror(rc));
		return false;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct evconnlistener *l, **v;
		int fd, one = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			goto fail;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
		    listen(fd, 128) != 0) {
			err = errno;
			close(fd);
			goto fail;
		}
		v = realloc(srv->lis, (srv->nlis + 1) * sizeof(*v));
		if (!v) {
			err = ENOMEM;
			close(fd);
			goto fail;
		}
		srv->lis = v;
		l = evconnlistener_new(srv->base, accept_cb, srv,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
		if (!l) {
			err = errno;
			close(fd);
			goto fail;
		}
		evconnlistener_set_error_cb(l, accept_error_cb);
		srv->lis[srv->nlis++] = l;
	}
	freeaddrinfo(res);
	return true;
fail:
	snprintf(why, whylen, "%s: %s", hostport, strerror(err));
	freeaddrinfo(res);
	while (srv->nlis > first)
		evconnlistener_free(srv->lis[--srv->nlis]);
	return false;
}

size_t
smtpd_addrs(const struct smtpd *srv, struct sockaddr_storage *out,
    size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < srv->nlis; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		memset(&ss, 0, sizeof(ss));
		if (getsockname(evconnlistener_get_fd(srv->lis[i]),
		    (struct sockaddr *)&ss, &len) != 0)
			continue;
		if (n < max)
			out[n] = ss;
		n++;
	}
	return n;
}

void
smtpd_stop(struct smtpd *srv)
{
	size_t i;

	for (i = 0; i < srv->nlis; i++)
		evconnlistener_free(srv->lis[i]);
	free(srv->lis);
	srv->lis = NULL;
	srv->nlis = 0;
	evtimer_del(srv->lis_retry);
}

unsigned
smtpd_sessions(const struct smtpd *srv)
{
	return srv->nsessions;
}

void
smtpd_close_all(struct smtpd *srv)
{
	while (srv->sessions) {
		srv->sessions->end_reason = "shutdown";
		session_free(srv->sessions);
	}
}

void
smtpd_free(struct smtpd *srv)
{
	struct smtpd_doneq *q;
	struct smtpd_txn *t, *next;
	bool last;

	if (!srv)
		return;
	smtpd_stop(srv);
	smtpd_close_all(srv);
	q = srv->q;
	pthread_mutex_lock(&q->mu);
	q->dead = true;
	q->wake = NULL;
	t = q->head;
	q->head = NULL;
	q->tailp = &q->head;
	for (next = t; next; next = next->next)
		q->refs--;	/* each finished txn's reference */
	doneq_unref_locked(q, &last);
	pthread_mutex_unlock(&q->mu);
	for (; t; t = next) {
		next = t->next;
		txn_free(NULL, t);
	}
	if (last)
		doneq_destroy(q);
	while (srv->spool_free) {
		struct spool_file *f = srv->spool_free;

		srv->spool_free = f->next;
		spool_drop(f);
	}
	wake_free(srv->done_wake);
	event_free(srv->lis_retry);
	free(srv);
}
