/*
 * smtpc.c - the SMTP client session (see smtpc.h).
 *
 * A session is a state machine read top to bottom: CONNECT, GREETING,
 * EHLO (or HELO), optionally STARTTLS, HANDSHAKE and EHLO again, then
 * READY; a transaction moves it to TXN and back. Replies are matched to
 * what was sent through a FIFO of expected replies, so the pipelined and
 * the one-command-at-a-time paths share the same reply handling.
 *
 * Owner callbacks run only from the libevent entry points of this file
 * (read, event, timer, deferred), as their last action, and may free the
 * session: entry points count their depth and a free during a callback
 * is finished when the outermost entry point returns.
 *
 * SECURITY: the server is untrusted. Reply lines are capped at LINE_CAP
 * octets and REPLY_LINES_CAP lines, must start with a three-digit code
 * and keep it across continuation lines, and their text is reduced to
 * printable ASCII before it is stored. Envelope addresses with control
 * characters are never written to the wire (no command injection).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "dkim.h"
#include "smtpc.h"

#define LINE_CAP 2048		/* longest reply line read (RFC: 512) */
#define REPLY_LINES_CAP 200	/* lines in one reply */

enum sc_state {
	SC_IDLE_START,		/* waiting for the deferred start */
	SC_CONNECT,		/* TCP connect in progress */
	SC_GREETING,		/* waiting for 220 */
	SC_EHLO,
	SC_HELO,
	SC_STARTTLS,		/* waiting for 220 to STARTTLS */
	SC_HANDSHAKE,		/* TLS handshake in progress */
	SC_EHLO_TLS,		/* EHLO again, inside TLS */
	SC_READY,		/* open, between transactions */
	SC_TXN,			/* a transaction: replies per the FIFO */
	SC_QUIT,		/* QUIT sent; lost reports the end */
	SC_DEAD,		/* connection closed */
};

/* What each reply in a transaction answers. */
enum sc_exp { X_MAIL, X_RCPT, X_DATA, X_BODY, X_DOT, X_RSET };

/* Recipient progress inside a transaction. */
enum { R_OPEN = 0, R_ACCEPTED, R_FINAL };

struct sc_wait {
	enum sc_exp what;
	size_t rcpt;
};

struct smtpc {
	struct event_base *base;
	struct smtpc_handler h;
	void *arg;
	char *helo;			/* owned */
	unsigned connect_timeout, command_timeout;
	SSL_CTX *tls;			/* borrowed */
	bool need_8bitmime;

	struct smtpc_addr *addrs;	/* owned */
	size_t naddrs, cur;
	uint16_t port;
	bool no_tls;			/* this try of addrs[cur]: plaintext */

	enum sc_state st;
	struct bufferevent *bev;	/* owned; the TLS filter once on */
	struct event *timer;		/* owned: connect and reply timeouts */
	struct event *defer;		/* owned: start / report later */
	char peer[320];

	/* Extensions of the latest EHLO. */
	bool ext_pipelining, ext_starttls, ext_8bitmime, ext_size;
	uint64_t size_max;
	bool tls_on;

	/* The reply being read. */
	int rcode;
	size_t rlines;
	char rtext[SMTPC_TEXT_MAX];
	size_t rlen;

	struct smtpc_reply last_err;	/* last failure while opening */
	bool some_temp;			/* an address failed temporarily */
	char tls_err[SMTPC_TEXT_MAX];	/* why TLS failed, "" if it did not */

	/* The transaction. */
	struct smtpc_msg *m;		/* borrowed */
	struct sc_wait *wait;		/* owned: expected replies */
	size_t whead, wtail, wcap;
	unsigned char *rst;		/* owned: R_* per recipient */
	size_t naccepted, next_rcpt;
	int mail_ok;			/* -1 not yet, 0 refused, 1 taken */
	bool answered;			/* any reply in this transaction */
	bool report_due;		/* deferred: call sent */
	bool quit_due;			/* deferred: call lost after QUIT */

	bool usable;
	unsigned ntxn;
	unsigned depth;			/* entry points on the stack */
	bool doomed;			/* freed while depth > 0 */
};

static void sc_next_addr(struct smtpc *c);
static void sc_connect(struct smtpc *c);

/* ------------------------------------------------------------ replies */

static enum smtpc_class
code_class(int code)
{
	switch (code / 100) {
	case 2:
		return SMTPC_OK;
	case 5:
		return SMTPC_PERM;
	default:
		return SMTPC_TEMP;	/* 4xx, and anything unexpected */
	}
}

/* enhanced - "C.S.D" right after "CODE " when its class matches. */
static void
enhanced(const char *t, int code, char *out, size_t outlen)
{
	size_t i = 0, part, digits;

	out[0] = '\0';
	if (t[0] < '2' || t[0] > '5' || t[0] - '0' != code / 100)
		return;
	for (part = 0; part < 3; part++) {
		if (part > 0) {
			if (t[i] != '.')
				return;
			i++;
		}
		for (digits = 0; t[i] >= '0' && t[i] <= '9'; i++)
			digits++;
		if (digits < 1 || digits > 3)
			return;
	}
	if ((t[i] != ' ' && t[i] != '\0') || i + 1 > outlen)
		return;
	memcpy(out, t, i);
	out[i] = '\0';
}

void
smtpc_reply_set(struct smtpc_reply *r, enum smtpc_class cls,
    const char *status, const char *fmt, ...)
{
	va_list ap;

	memset(r, 0, sizeof(*r));
	r->cls = cls;
	snprintf(r->status, sizeof(r->status), "%s", status ? status : "");
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

void
smtpc_reply_parse(struct smtpc_reply *r, const char *text)
{
	const char *t = text ? text : "";

	memset(r, 0, sizeof(*r));
	snprintf(r->text, sizeof(r->text), "%s", t);
	if (t[0] >= '2' && t[0] <= '5' && t[1] >= '0' && t[1] <= '9' &&
	    t[2] >= '0' && t[2] <= '9' && (t[3] == ' ' || t[3] == '\0')) {
		r->code = (t[0] - '0') * 100 + (t[1] - '0') * 10 + t[2] - '0';
		r->remote = true;
		if (t[3] == ' ')
			enhanced(t + 4, r->code, r->status,
			    sizeof(r->status));
	}
	r->cls = r->code ? code_class(r->code) : SMTPC_TEMP;
}

static void
reply_from_server(struct smtpc_reply *r, int code, const char *text)
{
	smtpc_reply_parse(r, text);
	r->code = code;
	r->cls = code_class(code);
	r->remote = true;
}

/* add_text - append printable ASCII of p[0..n) to the reply text. */
static void
add_text(struct smtpc *c, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && c->rlen + 1 < sizeof(c->rtext); i++) {
		unsigned char ch = (unsigned char)p[i];

		c->rtext[c->rlen++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	c->rtext[c->rlen] = '\0';
}

/* ext_line - one EHLO keyword line (after "250-" or "250 "). */
static void
ext_line(struct smtpc *c, const char *p, size_t n)
{
	size_t k = 0;

	while (k < n && p[k] != ' ')
		k++;
#define KW(s) (k == sizeof(s) - 1 && strncasecmp(p, s, k) == 0)
	if (KW("PIPELINING"))
		c->ext_pipelining = true;
	else if (KW("STARTTLS"))
		c->ext_starttls = true;
	else if (KW("8BITMIME"))
		c->ext_8bitmime = true;
	else if (KW("SIZE")) {
		uint64_t v = 0;
		size_t i;

		c->ext_size = true;
		for (i = k + 1; i < n && p[i] >= '0' && p[i] <= '9'; i++)
			if (v < UINT64_MAX / 10)
				v = v * 10 + (uint64_t)(p[i] - '0');
		c->size_max = v;	/* 0: no fixed limit */
	}
#undef KW
}

static void
ext_reset(struct smtpc *c)
{
	c->ext_pipelining = c->ext_starttls = false;
	c->ext_8bitmime = c->ext_size = false;
	c->size_max = 0;
}

/*
 * read_reply - take one complete reply off the input: 1 with it in
 * c->rcode/c->rtext, 0 when more input is needed, -1 when the server
 * does not speak SMTP (garbled or oversized).
 */
static int
read_reply(struct smtpc *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	for (;;) {
		struct evbuffer_ptr eol;
		size_t eol_len = 0, n;
		char line[LINE_CAP + 3];
		int code;
		bool last;

		eol = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF);
		if (eol.pos < 0)
			return evbuffer_get_length(in) > LINE_CAP ? -1 : 0;
		if ((size_t)eol.pos > LINE_CAP)
			return -1;
		n = (size_t)eol.pos;
		evbuffer_remove(in, line, n);
		evbuffer_drain(in, eol_len);
		line[n] = '\0';
		if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
		    (n > 3 && line[3] != ' ' && line[3] != '-'))
			return -1;
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		last = n == 3 || line[3] == ' ';
		if (c->rlines == 0) {
			c->rcode = code;
			c->rlen = 0;
			add_text(c, line, 3);
		} else if (code != c->rcode) {
			return -1;
		}
		if (n > 4) {
			add_text(c, " ", 1);
			add_text(c, line + 4, n - 4);
			if (c->rlines > 0 && c->rcode == 250 &&
			    (c->st == SC_EHLO || c->st == SC_EHLO_TLS))
				ext_line(c, line + 4, n - 4);
		}
		if (++c->rlines > REPLY_LINES_CAP)
			return -1;
		if (last) {
			c->rlines = 0;
			return 1;
		}
	}
}

/* ------------------------------------------------------------ plumbing */

static void
sc_arm(struct smtpc *c, unsigned secs)
{
	struct timeval tv = { (time_t)secs, 0 };

	evtimer_add(c->timer, &tv);
}

static void
sc_disarm(struct smtpc *c)
{
	evtimer_del(c->timer);
}

static void
sc_defer(struct smtpc *c)
{
	event_active(c->defer, EV_TIMEOUT, 0);
}

static void
sc_close(struct smtpc *c)
{
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->tls_on = false;
	sc_disarm(c);
}

static void
sc_destroy(struct smtpc *c)
{
	sc_close(c);
	event_free(c->timer);
	event_free(c->defer);
	free(c->helo);
	free(c->addrs);
	free(c->wait);
	free(c->rst);
	free(c);
}

static void
sc_enter(struct smtpc *c)
{
	c->depth++;
}

static void
sc_leave(struct smtpc *c)
{
	if (--c->depth == 0 && c->doomed)
		sc_destroy(c);
}

static void
sc_printf(struct smtpc *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
sc_printf(struct smtpc *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

static void
set_peer(struct smtpc *c)
{
	const struct smtpc_addr *a = &c->addrs[c->cur];
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->sa.ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->sa)->
		    sin_addr, ip, sizeof(ip));
	else if (a->sa.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->sa)->
		    sin6_addr, ip, sizeof(ip));
	snprintf(c->peer, sizeof(c->peer), "%s[%s]:%u", a->host, ip,
	    (unsigned)c->port);
}

/* reply_timeout - how long the reply now awaited may take: the one to
 * the end of data twice the others (RFC 5321 4.5.3.2.6 gives it 10
 * minutes against 5, as the server may be delivering meanwhile and a
 * client that gives up too early makes duplicates). */
static unsigned
reply_timeout(const struct smtpc *c)
{
	if (c->st == SC_TXN && c->whead < c->wtail &&
	    c->wait[c->whead].what == X_BODY)
		return c->command_timeout * 2;
	return c->command_timeout;
}

static const char *
waiting_for(const struct smtpc *c)
{
	if (c->st == SC_TXN && c->whead < c->wtail) {
		switch (c->wait[c->whead].what) {
		case X_MAIL:	return "MAIL FROM";
		case X_RCPT:	return "RCPT TO";
		case X_DATA:	return "DATA";
		case X_BODY:
		case X_DOT:	return "end of data";
		case X_RSET:	return "RSET";
		}
	}
	switch (c->st) {
	case SC_GREETING:	return "the greeting";
	case SC_EHLO:
	case SC_EHLO_TLS:	return "EHLO";
	case SC_HELO:		return "HELO";
	case SC_STARTTLS:	return "STARTTLS";
	case SC_HANDSHAKE:	return "the TLS handshake";
	default:		return "a reply";
	}
}

/* ------------------------------------------------------------- opening */

static bool
opening(const struct smtpc *c)
{
	return c->st >= SC_CONNECT && c->st <= SC_EHLO_TLS;
}

/* addr_failed - this address did not work out: try it again without
 * TLS when TLS was the trouble, else go on to the next one. */
static void
addr_failed(struct smtpc *c, const struct smtpc_reply *why)
{
	bool tls_phase = c->st == SC_STARTTLS || c->st == SC_HANDSHAKE ||
	    c->st == SC_EHLO_TLS;

	c->last_err = *why;
	sc_close(c);
	if (tls_phase && !c->no_tls) {
		c->no_tls = true;	/* opportunistic: plaintext instead */
		snprintf(c->tls_err, sizeof(c->tls_err), "%s", why->text);
		sc_connect(c);
		return;
	}
	if (why->cls != SMTPC_PERM)
		c->some_temp = true;
	c->cur++;
	c->no_tls = false;
	c->tls_err[0] = '\0';
	sc_next_addr(c);
}

/* addr_done - this address is finished whatever the TLS state: no
 * plaintext try of it, since TLS was not the trouble. */
static void
addr_done(struct smtpc *c, const struct smtpc_reply *why)
{
	c->no_tls = true;
	addr_failed(c, why);
}

static void
ready(struct smtpc *c)
{
	if (c->need_8bitmime && !c->ext_8bitmime) {
		/* RFC 6152 3: 8-bit data only to a server that offers
		 * 8BITMIME; the owner chose not to send it to others
		 * unchanged, and converting it would break the relay's
		 * own signature and seal. */
		struct smtpc_reply r;

		sc_printf(c, "QUIT\r\n");
		smtpc_reply_set(&r, SMTPC_PERM, "5.6.3", "%s does not "
		    "accept 8-bit data (no 8BITMIME) and the message has "
		    "8-bit content", c->peer);
		addr_done(c, &r);
		return;
	}
	c->st = SC_READY;
	c->usable = true;
	sc_disarm(c);
	c->h.open(c->arg, c, NULL);	/* last: may free c */
}

static void
send_ehlo(struct smtpc *c, enum sc_state st)
{
	ext_reset(c);
	sc_printf(c, "EHLO %s\r\n", c->helo);
	c->st = st;
	sc_arm(c, c->command_timeout);
}

static bool
is_ip_literal(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1;
}

static void read_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

/* start_tls - wrap the connection; plaintext read after the 220 is
 * thrown away (it cannot be trusted to come from the TLS peer). */
static bool
start_tls(struct smtpc *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct bufferevent *f;
	struct timeval wtv = { (time_t)c->command_timeout, 0 };
	const char *host = c->addrs[c->cur].host;
	SSL *ssl;

	if ((ssl = SSL_new(c->tls)) == NULL)
		return false;
	if (host[0] && !is_ip_literal(host))
		SSL_set_tlsext_host_name(ssl, host);
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	f = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL)
		return false;
	c->bev = f;
	bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
	bufferevent_setcb(f, read_cb, NULL, event_cb, c);
	bufferevent_set_timeouts(f, NULL, &wtv);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	c->rlines = 0;
	c->st = SC_HANDSHAKE;
	sc_arm(c, c->command_timeout);
	return true;
}

static void
open_reply(struct smtpc *c)
{
	struct smtpc_reply r;

	reply_from_server(&r, c->rcode, c->rtext);
	if (c->rcode == 421 && c->st != SC_GREETING) {
		/* Closing (RFC 5321 3.8): this address is done now. */
		addr_done(c, &r);
		return;
	}
	switch (c->st) {
	case SC_GREETING:
		if (c->rcode != 220) {
			sc_printf(c, "QUIT\r\n");
			smtpc_reply_set(&r, r.cls, r.status, "%s refused to "
			    "talk to us: %s", c->peer, c->rtext);
			r.code = c->rcode;
			r.remote = true;
			addr_failed(c, &r);
			return;
		}
		send_ehlo(c, SC_EHLO);
		return;
	case SC_EHLO:
		if (c->rcode != 250) {
			/* The refusal's lines are no extensions. */
			ext_reset(c);
			sc_printf(c, "HELO %s\r\n", c->helo);
			c->st = SC_HELO;
			sc_arm(c, c->command_timeout);
			return;
		}
		if (c->ext_starttls && c->tls && !c->no_tls) {
			sc_printf(c, "STARTTLS\r\n");
			c->st = SC_STARTTLS;
			sc_arm(c, c->command_timeout);
			return;
		}
		ready(c);
		return;
	case SC_HELO:
		if (c->rcode != 250) {
			addr_failed(c, &r);
			return;
		}
		ready(c);
		return;
	case SC_STARTTLS:
		if (c->rcode != 220) {
			ready(c);	/* opportunistic: carry on in clear */
			return;
		}
		if (!start_tls(c)) {
			smtpc_reply_set(&r, SMTPC_TEMP, "4.7.0", "cannot start "
			    "TLS with %s", c->peer);
			addr_failed(c, &r);
		}
		return;
	case SC_EHLO_TLS:
		if (c->rcode != 250) {
			addr_failed(c, &r);
			return;
		}
		ready(c);
		return;
	default:
		return;
	}
}

static void
sc_connect(struct smtpc *c)
{
	struct smtpc_addr *a = &c->addrs[c->cur];
	struct smtpc_reply r;

	set_peer(c);
	c->st = SC_CONNECT;
	c->rlines = 0;
	c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		smtpc_reply_set(&r, SMTPC_TEMP, "4.3.0", "connect to %s: out "
		    "of memory", c->peer);
		addr_failed(c, &r);
		return;
	}
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	sc_arm(c, c->connect_timeout);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&a->sa,
	    (int)a->salen) != 0) {
		smtpc_reply_set(&r, SMTPC_TEMP, "4.4.1", "connect to %s: %s",
		    c->peer, evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
		addr_failed(c, &r);
	}
}

/* sc_next_addr - connect to addrs[cur], or report that none worked. */
static void
sc_next_addr(struct smtpc *c)
{
	if (c->cur >= c->naddrs) {
		struct smtpc_reply *r = &c->last_err;

		if (r->cls == SMTPC_PERM && c->some_temp) {
			/* A backup that refuses while the primary is down
			 * is no reason to give up: only a refusal by every
			 * address is final (as a 5xx greeting is). */
			char t[SMTPC_TEXT_MAX];

			snprintf(t, sizeof(t), "%s", r->text);
			snprintf(r->text, sizeof(r->text), "%.*s (other "
			    "addresses failed temporarily)",
			    (int)sizeof(t) - 40, t);
			r->cls = SMTPC_TEMP;
			if (r->status[0] == '5')
				r->status[0] = '4';
		}
		c->st = SC_DEAD;
		c->usable = false;
		c->h.open(c->arg, c, r);	/* last: may free */
		return;
	}
	sc_connect(c);
}

/* --------------------------------------------------------- transaction */

static void
push_wait(struct smtpc *c, enum sc_exp what, size_t rcpt)
{
	if (c->wtail < c->wcap) {
		c->wait[c->wtail].what = what;
		c->wait[c->wtail].rcpt = rcpt;
		c->wtail++;
	}
}

static bool
addr_ok(const char *a)
{
	for (; *a; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f)
			return false;
	return true;
}

/*
 * put_body - the message, dot-stuffed, then the final ".". The bytes
 * are referenced, not copied: the owner keeps them until sent. A CR or
 * LF alone goes out as CRLF (RFC 5321 2.3.8: never a bare one on the
 * wire, where receivers disagree about what it means), and every line
 * that starts with "." after that gets one more; a last line without its
 * CRLF gets one.
 */
static void
put_body(struct smtpc *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const char *p = c->m->data;
	size_t n = c->m->len, start = 0, i;
	bool bol = true;		/* at the start of a line */

	for (i = 0; i < n; i++) {
		if (bol && p[i] == '.') {
			if (i > start)
				evbuffer_add_reference(out, p + start,
				    i - start, NULL, NULL);
			evbuffer_add(out, ".", 1);
			start = i;
		}
		bol = false;
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
			i++;
			bol = true;
		} else if (p[i] == '\r' || p[i] == '\n') {
			if (i > start)
				evbuffer_add_reference(out, p + start,
				    i - start, NULL, NULL);
			evbuffer_add(out, "\r\n", 2);
			start = i + 1;
			bol = true;
		}
	}
	if (start < n)
		evbuffer_add_reference(out, p + start, n - start, NULL, NULL);
	if (!bol)
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
}

static void
send_rcpt(struct smtpc *c, size_t i)
{
	sc_printf(c, "RCPT TO:<%s>\r\n", c->m->rcpt[i]);
	push_wait(c, X_RCPT, i);
}

static void
send_rset(struct smtpc *c)
{
	sc_printf(c, "RSET\r\n");
	push_wait(c, X_RSET, 0);
}

/* next_step - one command at a time: the next RCPT, or DATA, or RSET. */
static void
next_step(struct smtpc *c)
{
	while (c->next_rcpt < c->m->nrcpt && c->rst[c->next_rcpt] == R_FINAL)
		c->next_rcpt++;
	if (c->next_rcpt < c->m->nrcpt) {
		send_rcpt(c, c->next_rcpt++);
		return;
	}
	if (c->naccepted > 0) {
		sc_printf(c, "DATA\r\n");
		push_wait(c, X_DATA, 0);
		return;
	}
	send_rset(c);
}

/* settle - every recipient still open or accepted gets r. */
static void
settle(struct smtpc *c, const struct smtpc_reply *r, bool accepted_only)
{
	size_t i;

	for (i = 0; i < c->m->nrcpt; i++) {
		if (c->rst[i] == R_FINAL ||
		    (accepted_only && c->rst[i] != R_ACCEPTED))
			continue;
		c->m->res[i] = *r;
		c->rst[i] = R_FINAL;
	}
}

static void
txn_report(struct smtpc *c, bool fresh)
{
	struct smtpc_msg *m = c->m;

	c->m = NULL;
	c->h.sent(c->arg, c, m, fresh);	/* last: may free c */
}

static void
txn_done(struct smtpc *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (evbuffer_get_length(out) > 0) {
		/* The server answered before reading everything: the
		 * stream is out of step, so this connection is finished. */
		evbuffer_drain(out, evbuffer_get_length(out));
		c->usable = false;
	}
	c->st = SC_READY;
	c->ntxn++;
	sc_disarm(c);
	txn_report(c, false);
}

/* txn_drop - the connection is gone in a transaction: recipients not
 * final yet get why, accepted ones too (nothing was delivered). */
static void
txn_drop(struct smtpc *c, const struct smtpc_reply *why, bool fresh)
{
	settle(c, why, false);
	sc_close(c);
	c->st = SC_DEAD;
	c->usable = false;
	txn_report(c, fresh);
}

/* txn_failed - the connection broke or timed out in a transaction. */
static void
txn_failed(struct smtpc *c, const struct smtpc_reply *why)
{
	txn_drop(c, why, !c->answered && c->ntxn > 0);
}

/*
 * txn_closing - a 421 in a transaction, whatever it answers: the server
 * is closing the connection (RFC 5321 3.8), and may well leave the
 * socket open without another word, so it is dropped now rather than
 * after a timeout, and the replies still awaited are not waited for.
 * On a reused connection it is most often a server that ends idle or
 * long-lived connections this way: the transaction goes again on a new
 * connection at once (fresh). A 421 to the RSET that ends a transaction
 * leaves the results it had, which are all final by then.
 */
static void
txn_closing(struct smtpc *c, const struct smtpc_reply *r,
    enum sc_exp what)
{
	txn_drop(c, r, c->ntxn > 0 && what != X_RSET);
}

static void
txn_reply(struct smtpc *c)
{
	struct smtpc_reply r;
	struct sc_wait w;

	if (c->whead >= c->wtail) {	/* nothing was asked */
		smtpc_reply_set(&r, SMTPC_TEMP, "4.5.0", "unexpected reply "
		    "from %s: %s", c->peer, c->rtext);
		txn_failed(c, &r);
		return;
	}
	w = c->wait[c->whead++];
	c->answered = true;
	reply_from_server(&r, c->rcode, c->rtext);
	if (c->rcode == 421) {
		txn_closing(c, &r, w.what);
		return;
	}
	switch (w.what) {
	case X_MAIL:
		if (r.cls == SMTPC_OK) {
			c->mail_ok = 1;
			if (!c->ext_pipelining)
				next_step(c);
			break;
		}
		c->mail_ok = 0;
		settle(c, &r, false);
		if (!c->ext_pipelining)
			send_rset(c);
		break;
	case X_RCPT:
		if (c->mail_ok == 1 && c->rst[w.rcpt] == R_OPEN) {
			if (r.cls == SMTPC_OK) {
				c->rst[w.rcpt] = R_ACCEPTED;
				c->naccepted++;
			} else {
				c->m->res[w.rcpt] = r;
				c->rst[w.rcpt] = R_FINAL;
			}
		}
		if (!c->ext_pipelining && c->mail_ok == 1)
			next_step(c);
		break;
	case X_DATA:
		if (c->rcode == 354) {
			if (c->mail_ok == 1 && c->naccepted > 0) {
				put_body(c);
				push_wait(c, X_BODY, 0);
			} else {
				/* Pipelined DATA taken with nobody to send
				 * to: end an empty message. */
				sc_printf(c, ".\r\n");
				push_wait(c, X_DOT, 0);
			}
			break;
		}
		if (r.cls == SMTPC_OK)
			r.cls = SMTPC_TEMP;	/* 2xx to DATA: nonsense */
		if (c->mail_ok == 1)
			settle(c, &r, true);
		send_rset(c);
		break;
	case X_BODY:
		settle(c, &r, true);
		break;
	case X_DOT:
		send_rset(c);
		break;
	case X_RSET:
		if (r.cls != SMTPC_OK)
			c->usable = false;
		break;
	}
	if (c->whead == c->wtail) {
		txn_done(c);
		return;
	}
	sc_arm(c, reply_timeout(c));
}

bool
smtpc_send(struct smtpc *c, struct smtpc_msg *m)
{
	size_t i, sendable = 0;
	struct smtpc_reply r;

	if (c == NULL || c->st != SC_READY || !c->usable || c->doomed ||
	    m == NULL || m->nrcpt == 0)
		return false;
	free(c->wait);
	free(c->rst);
	c->wcap = m->nrcpt + 4;
	c->wait = calloc(c->wcap, sizeof(*c->wait));
	c->rst = calloc(m->nrcpt, 1);
	if (c->wait == NULL || c->rst == NULL)
		return false;
	c->m = m;
	c->whead = c->wtail = 0;
	c->naccepted = c->next_rcpt = 0;
	c->mail_ok = -1;
	c->answered = false;
	c->st = SC_TXN;
	for (i = 0; i < m->nrcpt; i++) {
		memset(&m->res[i], 0, sizeof(m->res[i]));
		if (!addr_ok(m->rcpt[i])) {
			smtpc_reply_set(&m->res[i], SMTPC_PERM, "5.1.3",
			    "recipient address has control characters");
			c->rst[i] = R_FINAL;
		} else {
			sendable++;
		}
	}
	if (!addr_ok(m->sender)) {
		smtpc_reply_set(&r, SMTPC_PERM, "5.1.7", "sender address has "
		    "control characters");
		settle(c, &r, false);
		sendable = 0;
	} else if (c->ext_size && c->size_max > 0 && m->len > c->size_max) {
		smtpc_reply_set(&r, SMTPC_PERM, "5.3.4", "message size %zu "
		    "exceeds the limit of %llu of %s", m->len,
		    (unsigned long long)c->size_max, c->peer);
		settle(c, &r, false);
		sendable = 0;
	}
	if (sendable == 0) {
		/* Nothing goes on the wire; report from the loop. */
		c->report_due = true;
		sc_defer(c);
		return true;
	}
	sc_printf(c, "MAIL FROM:<%s>", m->sender);
	if (c->ext_size)
		sc_printf(c, " SIZE=%zu", m->len);
	if (c->ext_8bitmime && dkim_has_8bit(m->data, m->len))
		sc_printf(c, " BODY=8BITMIME");
	sc_printf(c, "\r\n");
	push_wait(c, X_MAIL, 0);
	if (c->ext_pipelining) {
		for (i = 0; i < m->nrcpt; i++)
			if (c->rst[i] == R_OPEN)
				send_rcpt(c, i);
		sc_printf(c, "DATA\r\n");
		push_wait(c, X_DATA, 0);
	}
	sc_arm(c, c->command_timeout);
	return true;
}

/* sc_gone - an idle or quitting session has ended: tell the owner. */
static void
sc_gone(struct smtpc *c)
{
	sc_close(c);
	c->st = SC_DEAD;
	c->usable = false;
	c->h.lost(c->arg, c);
}

/* ------------------------------------------------------- entry points */

static void
dispatch(struct smtpc *c)
{
	if (opening(c)) {
		open_reply(c);
		return;
	}
	switch (c->st) {
	case SC_TXN:
		txn_reply(c);
		return;
	case SC_READY:
		/* Unasked: a 421 before closing, or noise. Either way
		 * this connection is done. */
	case SC_QUIT:
		sc_gone(c);
		return;
	default:
		return;		/* no reply is read in other states */
	}
}

/* broken - the connection failed (error, EOF, timeout, garbage). */
static void
broken(struct smtpc *c, const struct smtpc_reply *why)
{
	if (opening(c)) {
		addr_failed(c, why);
		return;
	}
	switch (c->st) {
	case SC_TXN:
		txn_failed(c, why);
		return;
	case SC_READY:
	case SC_QUIT:
		sc_gone(c);
		return;
	default:
		sc_close(c);
		return;
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;
	struct smtpc_reply r;

	sc_enter(c);
	while (!c->doomed && c->bev != NULL && c->st != SC_DEAD) {
		int rc = read_reply(c);

		if (rc == 0)
			break;
		if (rc < 0) {
			smtpc_reply_set(&r, SMTPC_TEMP, "4.5.0", "garbled "
			    "reply from %s while waiting for %s", c->peer,
			    waiting_for(c));
			broken(c, &r);
			break;
		}
		dispatch(c);
	}
	sc_leave(c);
}

static void
tls_error(struct smtpc *c, char *buf, size_t n)
{
	unsigned long e = bufferevent_get_openssl_error(c->bev);

	if (e == 0)
		e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, n);
	else
		snprintf(buf, n, "connection closed");
	ERR_clear_error();
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;
	struct smtpc_reply r;
	int err = EVUTIL_SOCKET_ERROR();

	sc_enter(c);
	if (what & BEV_EVENT_CONNECTED) {
		if (c->st == SC_CONNECT) {
			struct timeval wtv = { (time_t)c->command_timeout,
			    0 };

			bufferevent_set_timeouts(c->bev, NULL, &wtv);
			bufferevent_enable(c->bev, EV_READ | EV_WRITE);
			c->st = SC_GREETING;
			sc_arm(c, c->command_timeout);
		} else if (c->st == SC_HANDSHAKE) {
			c->tls_on = true;
			send_ehlo(c, SC_EHLO_TLS);
		}
		sc_leave(c);
		return;
	}
	if (c->st == SC_CONNECT) {
		smtpc_reply_set(&r, SMTPC_TEMP, "4.4.1", "connect to %s: %s",
		    c->peer, evutil_socket_error_to_string(err));
	} else if (c->st == SC_HANDSHAKE) {
		char e[256];

		tls_error(c, e, sizeof(e));
		smtpc_reply_set(&r, SMTPC_TEMP, "4.7.0", "TLS handshake with "
		    "%s failed: %s", c->peer, e);
	} else if (what & BEV_EVENT_TIMEOUT) {
		smtpc_reply_set(&r, SMTPC_TEMP, "4.4.2", "timeout sending to "
		    "%s while waiting for %s", c->peer, waiting_for(c));
	} else {
		smtpc_reply_set(&r, SMTPC_TEMP, "4.4.2", "lost connection "
		    "with %s while waiting for %s", c->peer, waiting_for(c));
	}
	broken(c, &r);
	sc_leave(c);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;
	struct smtpc_reply r;

	sc_enter(c);
	if (c->st == SC_TXN && c->bev &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
		/* Still sending: the write timeout watches progress. */
		sc_arm(c, reply_timeout(c));
	} else if (c->st == SC_CONNECT) {
		smtpc_reply_set(&r, SMTPC_TEMP, "4.4.1", "connect to %s: "
		    "timed out after %us", c->peer, c->connect_timeout);
		broken(c, &r);
	} else {
		smtpc_reply_set(&r, SMTPC_TEMP, "4.4.2", "timeout after %us "
		    "waiting for %s from %s", reply_timeout(c),
		    waiting_for(c), c->peer);
		broken(c, &r);
	}
	sc_leave(c);
}

static void
defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	sc_enter(c);
	if (c->quit_due) {
		c->quit_due = false;
		c->st = SC_DEAD;
		c->h.lost(c->arg, c);
	} else if (c->st == SC_IDLE_START) {
		sc_next_addr(c);
	} else if (c->report_due && c->st == SC_TXN) {
		c->report_due = false;
		c->st = SC_READY;
		txn_report(c, false);
	}
	sc_leave(c);
}

/* ------------------------------------------------------------ the API */

struct smtpc *
smtpc_open(struct event_base *base, const struct smtpc_config *cfg,
    const struct smtpc_addr *addrs, size_t naddrs, uint16_t port,
    const struct smtpc_handler *h, void *arg)
{
	struct smtpc *c;
	size_t i;

	if (naddrs == 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->base = base;
	c->h = *h;
	c->arg = arg;
	c->helo = strdup(cfg->helo && cfg->helo[0] ? cfg->helo : "localhost");
	c->connect_timeout = cfg->connect_timeout ? cfg->connect_timeout : 30;
	c->command_timeout = cfg->command_timeout ? cfg->command_timeout :
	    300;
	c->tls = cfg->tls;
	c->need_8bitmime = cfg->need_8bitmime;
	c->port = port;
	c->addrs = calloc(naddrs, sizeof(*c->addrs));
	c->timer = evtimer_new(base, timer_cb, c);
	c->defer = event_new(base, -1, 0, defer_cb, c);
	if (c->helo == NULL || c->addrs == NULL || c->timer == NULL ||
	    c->defer == NULL) {
		if (c->timer)
			event_free(c->timer);
		if (c->defer)
			event_free(c->defer);
		free(c->helo);
		free(c->addrs);
		free(c);
		return NULL;
	}
	for (i = 0; i < naddrs; i++) {
		c->addrs[i] = addrs[i];
		if (c->addrs[i].sa.ss_family == AF_INET)
			((struct sockaddr_in *)&c->addrs[i].sa)->sin_port =
			    htons(port);
		else if (c->addrs[i].sa.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&c->addrs[i].sa)->sin6_port =
			    htons(port);
	}
	c->naddrs = naddrs;
	c->st = SC_IDLE_START;
	set_peer(c);
	sc_defer(c);
	return c;
}

void
smtpc_quit(struct smtpc *c)
{
	if (c == NULL)
		return;
	if (c->st != SC_READY || c->bev == NULL || !c->usable) {
		sc_close(c);
		c->st = SC_QUIT;
		c->quit_due = true;	/* report from the loop */
		sc_defer(c);
		return;
	}
	sc_printf(c, "QUIT\r\n");
	c->st = SC_QUIT;
	sc_arm(c, c->command_timeout < 10 ? c->command_timeout : 10);
}

void
smtpc_free(struct smtpc *c)
{
	if (c == NULL)
		return;
	sc_close(c);
	event_del(c->defer);
	c->st = SC_DEAD;
	if (c->depth > 0) {
		c->doomed = true;
		return;
	}
	sc_destroy(c);
}

bool
smtpc_usable(const struct smtpc *c)
{
	return c->st == SC_READY && c->usable && !c->doomed;
}

const char *
smtpc_peer(const struct smtpc *c)
{
	return c->peer;
}

const char *
smtpc_peer_host(const struct smtpc *c)
{
	return c->addrs[c->cur < c->naddrs ? c->cur : c->naddrs - 1].host;
}

bool
smtpc_tls_active(const struct smtpc *c)
{
	return c->tls_on;
}

const char *
smtpc_tls_error(const struct smtpc *c)
{
	return c->tls_err[0] ? c->tls_err : NULL;
}

unsigned
smtpc_transactions(const struct smtpc *c)
{
	return c->ntxn;
}
