/*
 * smtpload.c - the benchmark's SMTP load side, run by tests/daemon/bench.py
 * (and by hand):
 *
 *   smtpload send --port P --clients N --messages M [--host IP]
 *                 [--helo NAME] [--from ADDR] [--to ADDR] [--timeout SECS]
 *                 --pool DIR|FILE...
 *   smtpload sink --port P [--host IP] [--count-file F]
 *                 [--keep DIR [--keep-every K]]
 *
 * send opens N sessions at once and shares the M messages among them
 * (M / N each, the first M % N one more). A --pool directory gives its
 * regular files in name order; --pool takes every argument up to the
 * next option. Each session says EHLO, then
 * per message writes MAIL, RCPT and DATA in one go, wants 250, 250 and
 * 354, and writes the message, which the pool holds ready to send:
 * dot-stuffed and ending in CRLF "." CRLF. Client i sends pool entries
 * i * 7, i * 7 + 1, ... round-robin, as bench.py's Python clients do.
 * The latency of a message runs from its last byte leaving the output
 * buffer to its final reply (CLOCK_MONOTONIC). At the end it prints one
 * line on stdout:
 *
 *   result ok=N errors=N elapsed=S msgs_per_s=R p50_ms=X p99_ms=Y
 *
 * where ok + errors = M: a refused message is one error, and a session
 * that breaks (connect refused, EOF, timeout, garbled reply) counts the
 * message in flight and those it never sent. The first few error replies
 * go to stderr. Exit status 0 when every message got a 250, 1 when some
 * did not, 2 when it could not start.
 *
 * sink is an SMTP server that takes any mail and throws it away: EHLO
 * (offering PIPELINING), HELO, MAIL, RCPT, DATA, RSET, NOOP and QUIT. The
 * end of a message is the first CRLF "." CRLF; nothing is unstuffed. It
 * keeps the count of messages in two places: --count-file F holds it as
 * one decimal line, written at start (so the file appearing means the
 * port is open) and again within 10 ms of each change, always through a
 * rename so a reader never sees half of it; and the extra command STAT
 * answers 250 {"messages": N, "connections": N, "open": N}, as sink.py
 * does. With --port 0 it prints "listening PORT" on stdout before the
 * count file appears. With --keep DIR it also writes one message in K
 * (the 1st, the K+1st, ...; K is 100 unless --keep-every says) to
 * DIR/N.eml, N its number, as received: dot-stuffed, ending in CRLF "."
 * CRLF, so that a benchmark can check what a relay under load delivered.
 * SIGTERM or SIGINT ends it with status 0.
 *
 * SECURITY: a test tool for loopback, but the peer is still held to
 * caps: reply and command lines of at most LINE_CAP octets, replies of at
 * most REPLY_LINES_CAP lines, input per session bounded by a read
 * watermark and output by OUT_MAX (reading pauses until the peer takes
 * its replies). Envelope addresses with control characters are refused
 * before anything is sent.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "dkim.h"

#define LINE_CAP	4096		/* a reply or command line, sans CRLF */
#define REPLY_LINES_CAP	200		/* lines in one reply */
#define TEXT_MAX	240		/* reply text kept for error reports */
#define ERRORS_SHOWN	5		/* error replies printed on stderr */
#define READ_HIGH	(256 * 1024)	/* sink: input held per session */
#define OUT_MAX		(64 * 1024)	/* sink: replies held per session */
#define POOL_FILE_MAX	(64u << 20)	/* one pool message */
#define POOL_MAX	100000		/* pool messages */
#define SINK_IDLE	300		/* sink: seconds without input */

/* now_s - CLOCK_MONOTONIC in seconds. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* set_nodelay - no Nagle: a reply or a message tail goes out at once. */
static void
set_nodelay(struct bufferevent *bev)
{
	int one = 1;
	evutil_socket_t fd = bufferevent_getfd(bev);

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* raise_nofile - hundreds of sessions need as many descriptors. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* parse_addr - an IP literal and a port into sa; false if not one. */
static bool
parse_addr(const char *host, unsigned port, struct sockaddr_storage *sa,
    int *salen)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;

	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*salen = (int)sizeof(*v4);
		return true;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*salen = (int)sizeof(*v6);
		return true;
	}
	return false;
}

/*
 * take_line - copy the next line of in (without its CRLF or LF) into
 * line[LINE_CAP + 1] and drain it: its length, -1 when no whole line is
 * there yet, -2 when the line is longer than LINE_CAP.
 */
static long
take_line(struct evbuffer *in, char *line)
{
	struct evbuffer_ptr eol;
	size_t eol_len = 0, n;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
	if (eol.pos < 0)
		return evbuffer_get_length(in) > LINE_CAP ? -2 : -1;
	if ((size_t)eol.pos > LINE_CAP)
		return -2;
	n = (size_t)eol.pos;
	evbuffer_remove(in, line, n);
	evbuffer_drain(in, eol_len);
	line[n] = '\0';
	return (long)n;
}

/* ============================================================== send */

/* The pool: messages ready for the wire, read once, sent by reference. */
struct pool {
	char **data;		/* owned, each owned */
	size_t *len;		/* owned */
	size_t n, cap;
};

enum cl_state {
	CL_CONNECT,		/* TCP connect in progress */
	CL_GREETING,		/* waiting for 220 */
	CL_EHLO,
	CL_MAIL,		/* the pipelined envelope: its three replies */
	CL_RCPT,
	CL_DATA,
	CL_DOT,			/* message written, waiting for its reply */
	CL_ABORT,		/* "." after a 354 to a refused envelope */
	CL_RSET,
	CL_QUIT,		/* QUIT sent; any reply or EOF ends it */
	CL_DONE,
};

struct load;

struct client {
	struct load *ld;
	struct bufferevent *bev;	/* owned */
	enum cl_state st;
	size_t id;
	size_t todo, begun;		/* messages: its share, started */
	size_t offset;			/* pool index of its first message */
	int env[3];			/* the codes for MAIL, RCPT, DATA */
	char envtext[TEXT_MAX];		/* their texts, for an error */
	double t_end;			/* last byte of the message written */

	/* The reply being read. */
	int rcode;
	size_t rlines;
	char rtext[TEXT_MAX];
};

struct load {
	struct event_base *base;	/* owned */
	struct pool pool;		/* owned */
	struct dkim_buf ehlo;		/* owned: the EHLO line */
	struct dkim_buf envelope;	/* owned: MAIL, RCPT, DATA lines */
	struct sockaddr_storage sa;
	int salen;
	unsigned timeout;
	struct client *cl;		/* owned, ncl */
	size_t ncl, live;
	double *lat;			/* owned: one per final reply */
	size_t nlat, messages;
	size_t ok, errors;
	unsigned shown;
};

/* pool_load_file - add one message; false with why filled. */
static bool
pool_load_file(struct pool *p, const char *path, char *why, size_t whylen)
{
	struct dkim_buf b;
	char chunk[65536];
	size_t n;
	FILE *fh;

	if (p->n >= POOL_MAX) {
		snprintf(why, whylen, "more than %d pool messages", POOL_MAX);
		return false;
	}
	if ((fh = fopen(path, "rb")) == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return false;
	}
	dkim_buf_init(&b, POOL_FILE_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), fh)) > 0)
		dkim_buf_add(&b, chunk, n);
	if (ferror(fh) || b.failed) {
		snprintf(why, whylen, "%s: %s", path, ferror(fh) ?
		    strerror(errno) : "too large or out of memory");
		fclose(fh);
		dkim_buf_free(&b);
		return false;
	}
	fclose(fh);
	if (!((b.len == 3 && memcmp(b.p, ".\r\n", 3) == 0) || (b.len >= 5 &&
	    memcmp(b.p + b.len - 5, "\r\n.\r\n", 5) == 0))) {
		snprintf(why, whylen, "%s: does not end in CRLF \".\" CRLF "
		    "(pool files must be ready to send)", path);
		dkim_buf_free(&b);
		return false;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		char **d = realloc(p->data, cap * sizeof(*d));
		size_t *l;

		if (d)
			p->data = d;
		l = d ? realloc(p->len, cap * sizeof(*l)) : NULL;
		if (l == NULL) {
			snprintf(why, whylen, "out of memory");
			dkim_buf_free(&b);
			return false;
		}
		p->len = l;
		p->cap = cap;
	}
	p->data[p->n] = dkim_buf_take(&b, &p->len[p->n]);
	p->n++;
	return true;
}

/* cmp_names - qsort order of file names. */
static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* pool_load - a file, or every regular file of a directory by name. */
static bool
pool_load(struct pool *p, const char *path, char *why, size_t whylen)
{
	struct stat st;
	struct dirent *de;
	char **names = NULL, full[4096];
	size_t n = 0, i;
	bool good = true;
	DIR *d;

	if (stat(path, &st) != 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode))
		return pool_load_file(p, path, why, whylen);
	if ((d = opendir(path)) == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return false;
	}
	while (good && (de = readdir(d)) != NULL) {
		char **v = NULL;

		snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
		if (de->d_name[0] == '.' || stat(full, &st) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n < POOL_MAX && (v = realloc(names, (n + 1) *
		    sizeof(*v))) != NULL)
			names = v;
		if (n >= POOL_MAX || v == NULL || (names[n] =
		    strdup(de->d_name)) == NULL) {
			snprintf(why, whylen, "%s: too many files or out of "
			    "memory", path);
			good = false;
			break;
		}
		n++;
	}
	closedir(d);
	if (good)
		qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		snprintf(full, sizeof(full), "%s/%s", path, names[i]);
		if (good && !pool_load_file(p, full, why, whylen))
			good = false;
		free(names[i]);
	}
	free(names);
	return good;
}

/* pool_free - the messages and their index. */
static void
pool_free(struct pool *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->data[i]);
	free(p->data);
	free(p->len);
}

/* cl_error - one message did not make it; show the first few reasons. */
static void
cl_error(struct client *c, size_t count, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
cl_error(struct client *c, size_t count, const char *fmt, ...)
{
	va_list ap;

	c->ld->errors += count;
	if (c->ld->shown >= ERRORS_SHOWN)
		return;
	c->ld->shown++;
	fprintf(stderr, "smtpload: client %zu: ", c->id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* cl_done - close this session; the last one ends the loop. */
static void
cl_done(struct client *c)
{
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->st = CL_DONE;
	if (--c->ld->live == 0)
		event_base_loopexit(c->ld->base, NULL);
}

/* cl_fail - the session broke: the message in flight and those never
 * sent are errors, and this client is done. */
static void
cl_fail(struct client *c, const char *why)
{
	bool in_flight = c->st >= CL_MAIL && c->st <= CL_DOT;
	size_t lost = c->todo - c->begun + (in_flight ? 1 : 0);

	if (c->st == CL_QUIT) {
		cl_done(c);
		return;
	}
	cl_error(c, lost, "%s (%zu message%s not sent)", why, lost,
	    lost == 1 ? "" : "s");
	cl_done(c);
}

/* cl_write - queue bytes (copied) on the connection. */
static void
cl_write(struct client *c, const void *p, size_t n)
{
	bufferevent_write(c->bev, p, n);
}

/* cl_next - the next message's envelope, or QUIT after the last. */
static void
cl_next(struct client *c)
{
	if (c->begun == c->todo) {
		cl_write(c, "QUIT\r\n", 6);
		c->st = CL_QUIT;
		return;
	}
	c->begun++;
	cl_write(c, c->ld->envelope.p, c->ld->envelope.len);
	c->envtext[0] = '\0';
	c->st = CL_MAIL;
}

/* cl_send_message - the next pool entry, by reference: the pool
 * outlives every session. */
static void
cl_send_message(struct client *c)
{
	const struct pool *p = &c->ld->pool;
	size_t k = (c->offset + c->begun - 1) % p->n;

	evbuffer_add_reference(bufferevent_get_output(c->bev), p->data[k],
	    p->len[k], NULL, NULL);
	c->t_end = now_s();	/* write_cb moves it to the last byte out */
	c->st = CL_DOT;
}

/* add_envtext - append the reply just read to the envelope's texts. */
static void
add_envtext(struct client *c)
{
	size_t n = strlen(c->envtext);

	snprintf(c->envtext + n, sizeof(c->envtext) - n, "%s%s",
	    n ? " / " : "", c->rtext);
}

/* cl_reply - one whole reply (c->rcode, c->rtext) in state c->st. */
static void
cl_reply(struct client *c)
{
	struct load *ld = c->ld;

	switch (c->st) {
	case CL_GREETING:
		if (c->rcode != 220) {
			cl_fail(c, c->rtext);
			return;
		}
		cl_write(c, ld->ehlo.p, ld->ehlo.len);
		c->st = CL_EHLO;
		return;
	case CL_EHLO:
		if (c->rcode != 250) {
			cl_fail(c, c->rtext);
			return;
		}
		cl_next(c);
		return;
	case CL_MAIL:
	case CL_RCPT:
		c->env[c->st - CL_MAIL] = c->rcode;
		add_envtext(c);
		c->st++;
		return;
	case CL_DATA:
		c->env[2] = c->rcode;
		add_envtext(c);
		if (c->env[0] == 250 && c->env[1] == 250 && c->env[2] == 354) {
			cl_send_message(c);
			return;
		}
		cl_error(c, 1, "MAIL/RCPT/DATA: %s", c->envtext);
		if (c->env[2] == 354) {
			cl_write(c, ".\r\n", 3);
			c->st = CL_ABORT;
		} else {
			cl_write(c, "RSET\r\n", 6);
			c->st = CL_RSET;
		}
		return;
	case CL_DOT:
		if (ld->nlat < ld->messages)
			ld->lat[ld->nlat++] = now_s() - c->t_end;
		if (c->rcode == 250)
			ld->ok++;
		else
			cl_error(c, 1, "end of data: %s", c->rtext);
		cl_next(c);
		return;
	case CL_ABORT:
		cl_write(c, "RSET\r\n", 6);
		c->st = CL_RSET;
		return;
	case CL_RSET:
		cl_next(c);
		return;
	case CL_QUIT:
		cl_done(c);
		return;
	default:
		return;
	}
}

/*
 * cl_read_reply - take one whole reply off the input: 1 with it in
 * rcode/rtext, 0 when more input is needed, -1 when it is not SMTP.
 * The text kept is the first line, printable ASCII only.
 */
static int
cl_read_reply(struct client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char line[LINE_CAP + 1];

	for (;;) {
		long n = take_line(in, line);
		int code;
		size_t i;

		if (n == -1)
			return 0;
		if (n < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' || (n > 3 && line[3] != ' ' &&
		    line[3] != '-'))
			return -1;
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		if (c->rlines == 0) {
			c->rcode = code;
			for (i = 0; i < (size_t)n && i + 1 < TEXT_MAX; i++)
				c->rtext[i] = line[i] >= 0x20 && line[i] < 0x7f
				    ? line[i] : '?';
			c->rtext[i] = '\0';
		} else if (code != c->rcode) {
			return -1;
		}
		if (++c->rlines > REPLY_LINES_CAP)
			return -1;
		if (n == 3 || line[3] == ' ') {
			c->rlines = 0;
			return 1;
		}
	}
}

/* cl_read_cb - every whole reply the input holds, in order. */
static void
cl_read_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	while (c->bev != NULL) {
		int rc = cl_read_reply(c);

		if (rc == 0)
			return;
		if (rc < 0) {
			cl_fail(c, "garbled or oversized reply");
			return;
		}
		cl_reply(c);
	}
}

/* cl_write_cb - the output is empty: the message's last byte is out. */
static void
cl_write_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	if (c->st == CL_DOT)
		c->t_end = now_s();
}

/* cl_event_cb - connected, or the session broke. */
static void
cl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;
	char why[160];

	if (what & BEV_EVENT_CONNECTED) {
		set_nodelay(bev);
		c->st = CL_GREETING;
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "no reply for %us", c->ld->timeout);
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed by the server");
	else
		snprintf(why, sizeof(why), "%s: %s", c->st == CL_CONNECT ?
		    "connect" : "connection", evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
	cl_fail(c, why);
}

/* cl_start - open the session; cl_event_cb hears how it went. */
static void
cl_start(struct client *c)
{
	struct load *ld = c->ld;
	struct timeval tv = { (time_t)ld->timeout, 0 };

	c->st = CL_CONNECT;
	c->bev = bufferevent_socket_new(ld->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		cl_fail(c, "out of memory");
		return;
	}
	bufferevent_setcb(c->bev, cl_read_cb, cl_write_cb, cl_event_cb, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);	/* connect, replies */
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ld->sa,
	    ld->salen) != 0)
		cl_fail(c, "connect failed at once");
}

/* cmp_double - qsort order of latencies. */
static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* pct - the p-th percentile of sorted v, in ms (as bench.py picks it). */
static double
pct(const double *v, size_t n, double p)
{
	if (n == 0)
		return NAN;
	return 1000 * v[(size_t)(p / 100.0 * (double)(n - 1) + 0.5)];
}

/* addr_ok - safe to put between < and > on a command line. */
static bool
addr_ok(const char *a)
{
	for (; *a; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f || *a == '<' ||
		    *a == '>')
			return false;
	return true;
}

/* ============================================================== sink */

enum sink_state { SK_CMD, SK_DATA, SK_QUIT };

struct sink;

struct sink_sess {
	struct sink *sk;
	struct bufferevent *bev;	/* owned */
	enum sink_state st;
	bool mail;
	size_t rcpts;
	int eom;			/* bytes of CRLF "." CRLF matched */
	FILE *keep;			/* owned: this message's copy, or NULL */
	struct sink_sess *prev, *next;
};

struct sink {
	struct event_base *base;	/* owned */
	struct evconnlistener *lis;	/* owned */
	struct event *flush;		/* owned: writes the count file */
	struct event *resume;		/* owned: accepting again */
	const char *count_file;
	const char *keep_dir;		/* --keep, or NULL */
	unsigned long keep_every;
	uint64_t messages, connections, written, started;
	struct sink_sess *sessions;	/* owned, a list */
	size_t open;
};

/* sink_write_count - count_file = messages, through a rename. */
static void
sink_write_count(struct sink *sk)
{
	char tmp[4096];
	FILE *fh;

	if (sk->count_file == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", sk->count_file);
	if ((fh = fopen(tmp, "w")) == NULL) {
		fprintf(stderr, "smtpload: %s: %s\n", tmp, strerror(errno));
		return;
	}
	fprintf(fh, "%llu\n", (unsigned long long)sk->messages);
	if (fclose(fh) != 0 || rename(tmp, sk->count_file) != 0) {
		fprintf(stderr, "smtpload: %s: %s\n", sk->count_file,
		    strerror(errno));
		return;
	}
	sk->written = sk->messages;
}

/* sink_flush_cb - the count changed 10 ms ago: write it. */
static void
sink_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	sink_write_count(arg);
}

/* sink_free - unlink the session and close its connection. */
static void
sink_free(struct sink_sess *s)
{
	struct sink *sk = s->sk;

	if (s->prev)
		s->prev->next = s->next;
	else
		sk->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	sk->open--;
	if (s->keep)
		fclose(s->keep);
	bufferevent_free(s->bev);
	free(s);
}

/* sink_reply - queue a reply; line has no CRLF at its end. */
static void
sink_reply(struct sink_sess *s, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\r\n", 2);
}

/* sink_reset - forget the transaction (RSET, EHLO, end of data). */
static void
sink_reset(struct sink_sess *s)
{
	s->mail = false;
	s->rcpts = 0;
}

/* The commands: each checks its state, then answers. */
static void
cmd_ehlo(struct sink_sess *s)
{
	sink_reset(s);
	sink_reply(s, "250-smtpload\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
	    "250 ENHANCEDSTATUSCODES");
}

static void
cmd_helo(struct sink_sess *s)
{
	sink_reset(s);
	sink_reply(s, "250 smtpload");
}

static void
cmd_mail(struct sink_sess *s)
{
	if (s->mail) {
		sink_reply(s, "503 5.5.1 MAIL already given");
		return;
	}
	s->mail = true;
	sink_reply(s, "250 2.1.0 Ok");
}

static void
cmd_rcpt(struct sink_sess *s)
{
	if (!s->mail) {
		sink_reply(s, "503 5.5.1 MAIL first");
		return;
	}
	s->rcpts++;
	sink_reply(s, "250 2.1.5 Ok");
}

static void
cmd_data(struct sink_sess *s)
{
	if (s->rcpts == 0) {
		sink_reply(s, "503 5.5.1 RCPT first");
		return;
	}
	s->st = SK_DATA;
	s->eom = 2;		/* the CRLF of the DATA line counts */
	if (s->sk->keep_dir && s->sk->started++ % s->sk->keep_every == 0) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%llu.eml", s->sk->keep_dir,
		    (unsigned long long)s->sk->started);
		if ((s->keep = fopen(path, "wb")) == NULL)
			fprintf(stderr, "smtpload: %s: %s\n", path,
			    strerror(errno));
	}
	sink_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
cmd_rset(struct sink_sess *s)
{
	sink_reset(s);
	sink_reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct sink_sess *s)
{
	sink_reply(s, "250 2.0.0 Ok");
}

static void
cmd_quit(struct sink_sess *s)
{
	sink_reply(s, "221 2.0.0 Bye");
	s->st = SK_QUIT;
}

static void
cmd_stat(struct sink_sess *s)
{
	evbuffer_add_printf(bufferevent_get_output(s->bev), "250 {\"messages\""
	    ": %llu, \"connections\": %llu, \"open\": %zu}\r\n",
	    (unsigned long long)s->sk->messages,
	    (unsigned long long)s->sk->connections, s->sk->open);
}

static const struct sink_cmd {
	const char *name;	/* then a space, a colon or the end */
	void (*fn)(struct sink_sess *);
} sink_cmds[] = {
	{ "EHLO", cmd_ehlo }, { "HELO", cmd_helo }, { "MAIL", cmd_mail },
	{ "RCPT", cmd_rcpt }, { "DATA", cmd_data }, { "RSET", cmd_rset },
	{ "NOOP", cmd_noop }, { "QUIT", cmd_quit }, { "STAT", cmd_stat },
};

/* sink_command - find the command in the table and run it. */
static void
sink_command(struct sink_sess *s, const char *line, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(sink_cmds) / sizeof(sink_cmds[0]); i++)
		if (n >= 4 && strncasecmp(line, sink_cmds[i].name, 4) == 0 &&
		    (n == 4 || line[4] == ' ' || line[4] == ':')) {
			sink_cmds[i].fn(s);
			return;
		}
	sink_reply(s, "500 5.5.2 unknown command");
}

/* sink_keep - bytes of the message kept in its copy, if it has one. */
static void
sink_keep(struct sink_sess *s, const void *p, size_t n)
{
	if (s->keep && n > 0 && fwrite(p, 1, n, s->keep) != n) {
		fprintf(stderr, "smtpload: writing a kept message: %s\n",
		    strerror(errno));
		fclose(s->keep);
		s->keep = NULL;
	}
}

/*
 * sink_scan_data - look for the end of the message in the input, draining
 * what was looked at (and keeping it, see --keep): true once it was found.
 */
static bool
sink_scan_data(struct sink_sess *s, struct evbuffer *in)
{
	static const char eom[] = "\r\n.\r\n";
	struct evbuffer_iovec v[16];
	int nv, k;

	while ((nv = evbuffer_peek(in, -1, NULL, v, 16)) > 0) {
		size_t used = 0;

		for (k = 0; k < nv && k < 16; k++) {
			const char *p = v[k].iov_base, *e = p + v[k].iov_len;

			while (p < e) {
				if (s->eom == 0 && (p = memchr(p, '\r',
				    (size_t)(e - p))) == NULL)
					break;
				if (*p == eom[s->eom])
					s->eom++;
				else
					s->eom = *p == '\r';
				p++;
				if (s->eom == 5) {
					sink_keep(s, v[k].iov_base, (size_t)
					    (p - (const char *)v[k].iov_base));
					used += (size_t)(p - (const char *)
					    v[k].iov_base);
					evbuffer_drain(in, used);
					if (s->keep && fclose(s->keep) != 0)
						fprintf(stderr, "smtpload: "
						    "closing a kept message: "
						    "%s\n", strerror(errno));
					s->keep = NULL;
					return true;
				}
			}
			sink_keep(s, v[k].iov_base, v[k].iov_len);
			used += v[k].iov_len;
		}
		evbuffer_drain(in, used);
	}
	return false;
}

/* sink_process - everything the input holds, commands and message text,
 * until it runs out or too many replies wait for the peer. */
static void
sink_process(struct sink_sess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char line[LINE_CAP + 1];
	long n;

	while (s->st != SK_QUIT) {
		if (evbuffer_get_length(out) > OUT_MAX) {
			bufferevent_disable(s->bev, EV_READ);
			return;		/* sink_write_cb resumes */
		}
		if (s->st == SK_DATA) {
			if (!sink_scan_data(s, in))
				return;
			s->st = SK_CMD;
			sink_reset(s);
			s->sk->messages++;
			evbuffer_add_printf(out, "250 2.0.0 Ok: queued as "
			    "%llu\r\n", (unsigned long long)s->sk->messages);
			if (s->sk->count_file && !evtimer_pending(s->sk->flush,
			    NULL)) {
				struct timeval tv = { 0, 10000 };

				evtimer_add(s->sk->flush, &tv);
			}
			continue;
		}
		if ((n = take_line(in, line)) == -1)
			return;
		if (n == -2) {
			sink_reply(s, "500 5.5.2 line too long");
			s->st = SK_QUIT;
			break;
		}
		sink_command(s, line, (size_t)n);
	}
	bufferevent_disable(s->bev, EV_READ);	/* QUIT: flush, then close */
}

/* sink_read_cb - more input. */
static void
sink_read_cb(struct bufferevent *bev, void *arg)
{
	sink_process(arg);
}

/* sink_write_cb - all replies are out: close after QUIT, else read on. */
static void
sink_write_cb(struct bufferevent *bev, void *arg)
{
	struct sink_sess *s = arg;

	if (s->st == SK_QUIT) {
		sink_free(s);
		return;
	}
	if (!(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		sink_process(s);
	}
}

/* sink_event_cb - EOF, error or idle timeout: the session ends. */
static void
sink_event_cb(struct bufferevent *bev, short what, void *arg)
{
	sink_free(arg);
}

/* sink_accept_cb - a new session: greet it. */
static void
sink_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct sink *sk = arg;
	struct sink_sess *s = calloc(1, sizeof(*s));
	struct timeval idle = { SINK_IDLE, 0 };

	if (s == NULL || (s->bev = bufferevent_socket_new(sk->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(s);
		evutil_closesocket(fd);
		return;
	}
	s->sk = sk;
	s->next = sk->sessions;
	if (s->next)
		s->next->prev = s;
	sk->sessions = s;
	sk->open++;
	sk->connections++;
	set_nodelay(s->bev);
	bufferevent_setcb(s->bev, sink_read_cb, sink_write_cb, sink_event_cb,
	    s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, READ_HIGH);
	bufferevent_set_timeouts(s->bev, &idle, &idle);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	sink_reply(s, "220 smtpload ESMTP sink");
}

/* sink_resume_cb - accept again after a pause. */
static void
sink_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sink *sk = arg;

	evconnlistener_enable(sk->lis);
}

/* sink_accept_error_cb - out of descriptors, say: pause accepting. */
static void
sink_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct sink *sk = arg;
	struct timeval tv = { 0, 100000 };

	fprintf(stderr, "smtpload: accept: %s\n", strerror(errno));
	evconnlistener_disable(l);
	evtimer_add(sk->resume, &tv);
}

/* sink_signal_cb - SIGTERM or SIGINT: leave the loop, then clean up. */
static void
sink_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopexit(arg, NULL);
}

/* ============================================================== main */

/* usage - the synopsis on stderr, exit 2. */
static void
usage(void)
{
	fprintf(stderr,
	    "usage: smtpload send --port P --clients N --messages M "
	    "[--host IP]\n"
	    "                     [--helo NAME] [--from ADDR] [--to ADDR] "
	    "[--timeout SECS]\n"
	    "                     --pool DIR|FILE...\n"
	    "       smtpload sink --port P [--host IP] [--count-file F]\n"
	    "                     [--keep DIR [--keep-every K]]\n");
	exit(2);
}

/* number - argv value as an unsigned in [lo, hi], or exit 2. */
static unsigned long
number(const char *opt, const char *v, unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = v && *v >= '0' && *v <= '9' ? strtoul(v, &end, 10) : 0;
	if (v == NULL || *v < '0' || *v > '9' || *end || errno || n < lo ||
	    n > hi) {
		fprintf(stderr, "smtpload: %s wants a number from %lu to %lu, "
		    "not \"%s\"\n", opt, lo, hi, v ? v : "");
		exit(2);
	}
	return n;
}

/* run_send - smtpload send: the load, then the result line. */
static int
run_send(int argc, char **argv)
{
	struct load ld;
	const char *host = "127.0.0.1", *from = "load@sender.example";
	const char *to = "bench@example.net", *helo = "load.sender.example";
	unsigned long port = 0, clients = 0, messages = 0;
	char **paths = calloc((size_t)argc + 1, sizeof(*paths));
	size_t npaths = 0, i;
	char why[512] = "";
	double t0, elapsed;
	int a, rc;

	memset(&ld, 0, sizeof(ld));
	ld.timeout = 60;
	if (paths == NULL)
		return 2;
	for (a = 0; a < argc; a++) {
		const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;

		if (strcmp(o, "--pool") == 0) {
			while (a + 1 < argc && strncmp(argv[a + 1], "--", 2))
				paths[npaths++] = argv[++a];
			continue;
		}
		if (v == NULL)
			usage();
		a++;
		if (strcmp(o, "--port") == 0)
			port = number(o, v, 1, 65535);
		else if (strcmp(o, "--clients") == 0)
			clients = number(o, v, 1, 100000);
		else if (strcmp(o, "--messages") == 0)
			messages = number(o, v, 0, 100000000);
		else if (strcmp(o, "--timeout") == 0)
			ld.timeout = (unsigned)number(o, v, 1, 86400);
		else if (strcmp(o, "--host") == 0)
			host = v;
		else if (strcmp(o, "--helo") == 0)
			helo = v;
		else if (strcmp(o, "--from") == 0)
			from = v;
		else if (strcmp(o, "--to") == 0)
			to = v;
		else
			usage();
	}
	if (port == 0 || clients == 0 || npaths == 0)
		usage();
	if (!parse_addr(host, (unsigned)port, &ld.sa, &ld.salen))
		snprintf(why, sizeof(why), "--host wants an IP address, not "
		    "\"%s\"", host);
	else if (!addr_ok(from) || !addr_ok(to) || !addr_ok(helo))
		snprintf(why, sizeof(why), "--helo, --from and --to want no "
		    "<, > or control characters");
	for (i = 0; i < npaths && !why[0]; i++)
		pool_load(&ld.pool, paths[i], why, sizeof(why));
	free(paths);
	if (!why[0] && ld.pool.n == 0)
		snprintf(why, sizeof(why), "the pool is empty");
	dkim_buf_init(&ld.ehlo, 1024);
	dkim_buf_addf(&ld.ehlo, "EHLO %s\r\n", helo);
	dkim_buf_init(&ld.envelope, 4096);
	dkim_buf_addf(&ld.envelope, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n"
	    "DATA\r\n", from, to);
	ld.messages = messages;
	ld.ncl = ld.live = clients;
	ld.lat = calloc(messages ? messages : 1, sizeof(*ld.lat));
	ld.cl = calloc(clients, sizeof(*ld.cl));
	ld.base = event_base_new();
	if (!why[0] && (ld.envelope.failed || ld.ehlo.failed || !ld.lat ||
	    !ld.cl || !ld.base))
		snprintf(why, sizeof(why), "out of memory, or addresses too "
		    "long");
	if (why[0]) {
		fprintf(stderr, "smtpload: %s\n", why);
		rc = 2;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	t0 = now_s();
	for (i = 0; i < clients; i++) {
		struct client *c = &ld.cl[i];

		c->ld = &ld;
		c->id = i;
		c->todo = messages / clients + (i < messages % clients);
		c->offset = i * 7;
		cl_start(c);
	}
	if (ld.live > 0)
		event_base_dispatch(ld.base);
	elapsed = now_s() - t0;
	qsort(ld.lat, ld.nlat, sizeof(*ld.lat), cmp_double);
	printf("result ok=%zu errors=%zu elapsed=%.3f msgs_per_s=%.1f "
	    "p50_ms=%.3f p99_ms=%.3f\n", ld.ok, ld.errors, elapsed,
	    elapsed > 0 ? (double)ld.ok / elapsed : 0.0,
	    pct(ld.lat, ld.nlat, 50), pct(ld.lat, ld.nlat, 99));
	rc = ld.errors ? 1 : 0;
out:
	for (i = 0; ld.cl && i < clients; i++)
		if (ld.cl[i].bev)
			bufferevent_free(ld.cl[i].bev);
	free(ld.cl);
	free(ld.lat);
	dkim_buf_free(&ld.ehlo);
	dkim_buf_free(&ld.envelope);
	pool_free(&ld.pool);
	if (ld.base)
		event_base_free(ld.base);
	return rc;
}

/* run_sink - smtpload sink: serve until SIGTERM. */
static int
run_sink(int argc, char **argv)
{
	struct sink sk;
	const char *host = "127.0.0.1";
	unsigned long port = 65536;
	struct sockaddr_storage sa;
	struct event *ev_term, *ev_int;
	int salen, a;

	memset(&sk, 0, sizeof(sk));
	sk.keep_every = 100;
	for (a = 0; a + 1 < argc; a += 2) {
		if (strcmp(argv[a], "--port") == 0)
			port = number(argv[a], argv[a + 1], 0, 65535);
		else if (strcmp(argv[a], "--host") == 0)
			host = argv[a + 1];
		else if (strcmp(argv[a], "--count-file") == 0)
			sk.count_file = argv[a + 1];
		else if (strcmp(argv[a], "--keep") == 0)
			sk.keep_dir = argv[a + 1];
		else if (strcmp(argv[a], "--keep-every") == 0)
			sk.keep_every = number(argv[a], argv[a + 1], 1,
			    1000000000);
		else
			usage();
	}
	if (a != argc || port == 65536)
		usage();
	if (!parse_addr(host, (unsigned)port, &sa, &salen)) {
		fprintf(stderr, "smtpload: --host wants an IP address, not "
		    "\"%s\"\n", host);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if ((sk.base = event_base_new()) == NULL)
		return 2;
	sk.lis = evconnlistener_new_bind(sk.base, sink_accept_cb, &sk,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
	    1024, (struct sockaddr *)&sa, salen);
	if (sk.lis == NULL) {
		fprintf(stderr, "smtpload: listen on %s port %lu: %s\n", host,
		    port, strerror(errno));
		return 2;
	}
	evconnlistener_set_error_cb(sk.lis, sink_accept_error_cb);
	sk.flush = evtimer_new(sk.base, sink_flush_cb, &sk);
	sk.resume = evtimer_new(sk.base, sink_resume_cb, &sk);
	ev_term = evsignal_new(sk.base, SIGTERM, sink_signal_cb, sk.base);
	ev_int = evsignal_new(sk.base, SIGINT, sink_signal_cb, sk.base);
	if (!sk.flush || !sk.resume || !ev_term || !ev_int ||
	    evsignal_add(ev_term, NULL) || evsignal_add(ev_int, NULL))
		return 2;
	if (port == 0) {
		struct sockaddr_storage got;
		socklen_t len = sizeof(got);

		getsockname(evconnlistener_get_fd(sk.lis),
		    (struct sockaddr *)&got, &len);
		printf("listening %u\n", (unsigned)ntohs(got.ss_family ==
		    AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port :
		    ((struct sockaddr_in *)&got)->sin_port));
		fflush(stdout);
	}
	sink_write_count(&sk);
	event_base_dispatch(sk.base);
	while (sk.sessions)
		sink_free(sk.sessions);
	if (sk.messages != sk.written)
		sink_write_count(&sk);
	evconnlistener_free(sk.lis);
	event_free(sk.flush);
	event_free(sk.resume);
	event_free(ev_term);
	event_free(ev_int);
	event_base_free(sk.base);
	return 0;
}

/* main - the mode is the first argument. */
int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "send") == 0)
		return run_send(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "sink") == 0)
		return run_sink(argc - 2, argv + 2);
	usage();
	return 2;
}
