/*
 * fuzz_smtpd.c - libFuzzer target for the SMTP server (relay/smtpd.c):
 * the input is everything one client sends in a session.
 *
 * Each run makes a server on a fresh event base, hands it one end of a
 * socketpair (smtpd_attach) as a client at 192.0.2.1 (127.0.0.1 when bit
 * 5 of the first byte is set), sends the rest of the input from the other
 * end, all at once as a pipelining client would, then closes its sending
 * side and reads replies until the server hangs up. Bit 4 of the first
 * byte turns every LF of an input without CRLF into CRLF first, so that
 * mutations reach the states behind well-formed lines; bit 3 sets SIZE to
 * 2000 octets; bits 0-2 pick the reply of the message hook (250, 451,
 * 554). The rcpt hook accepts recipients in example.org and refuses
 * the rest.
 *
 * Besides "no crash, no leak, no overread" (ASan, UBSan), it traps when a
 * promise of smtpd.h breaks:
 *   - the server ends the session once the client has gone (no session
 *     is left waiting for its idle timer);
 *   - everything it sends is reply lines: three digits from 2xx to 5xx,
 *     then space or hyphen, CRLF-terminated, at most 512 octets, the
 *     lines of a multiline reply sharing their code, the first reply a
 *     220 greeting;
 *   - the hooks see addresses without CR, LF or NUL, and a recipient
 *     only in a transaction with a sender;
 *   - a message handed to the message hook has CRLF line ends only (no
 *     bare CR or LF: the SMTP smuggling rule), ends in CRLF and is no
 *     larger than SIZE;
 *   - no more messages are handed over than the input has DATA commands.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/; smtpd.dict holds the command tokens for -dict=.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "dkim.h"
#include "fuzz_input.h"
#include "log.h"
#include "smtpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define SMALL_SIZE 2000		/* SIZE under bit 3 */

struct run {
	struct event_base *base;
	struct bufferevent *client;
	struct evbuffer *replies;
	unsigned sel;
	uint64_t max_size;
	unsigned messages;
	bool sent, hung_up;
};

/* tmpfile_cb - the spool file of the server, under TMPDIR or /tmp. */
static int
tmpfile_cb(void *arg, char *path, size_t pathlen)
{
	const char *dir = getenv("TMPDIR");

	(void)arg;
	if (snprintf(path, pathlen, "%s/fuzz_smtpd.XXXXXX",
	    dir != NULL && *dir != '\0' ? dir : "/tmp") >= (int)pathlen)
		return -1;
	return mkstemp(path);
}

/* clean - s has no CR, LF or other control octet. */
static bool
clean(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* rcpt_cb - example.org is ours; anything else is refused. */
static bool
rcpt_cb(void *arg, const struct smtpd_peer *peer, const char *from,
    const char *rcpt, char *reply, size_t replylen)
{
	const char *at = strrchr(rcpt, '@');

	(void)arg;
	CHECK(peer != NULL && from != NULL && rcpt != NULL);
	CHECK(clean(from) && clean(rcpt) && rcpt[0] != '\0');
	CHECK(rcpt[0] != '<' && rcpt[strlen(rcpt) - 1] != '>');
	if (at != NULL && strcasecmp(at + 1, "example.org") == 0)
		return true;
	snprintf(reply, replylen, "550 5.7.1 relaying denied");
	return false;
}

/* message_cb - check the spooled bytes, then answer as sel says. */
static void
message_cb(void *arg, struct smtpd_txn *txn)
{
	static const char *const answer[] = { "250 2.0.0 Ok: queued",
	    "451 4.3.0 try again later", "554 5.7.1 refused" };
	struct run *r = arg;
	size_t len, i;
	char *p;
	int fd;

	r->messages++;
	CHECK(smtpd_txn_nrcpt(txn) >= 1);
	CHECK(clean(smtpd_txn_sender(txn)));
	fd = smtpd_txn_data(txn, &len);
	CHECK(fd >= 0 && len <= r->max_size);
	CHECK((p = malloc(len + 1)) != NULL);
	CHECK(pread(fd, p, len, 0) == (ssize_t)len);
	for (i = 0; i < len; i++) {
		if (p[i] == '\r')
			CHECK(i + 1 < len && p[i + 1] == '\n');
		if (p[i] == '\n')
			CHECK(i > 0 && p[i - 1] == '\r');
	}
	CHECK(len == 0 || (len >= 2 && p[len - 2] == '\r' &&
	    p[len - 1] == '\n'));
	free(p);
	smtpd_txn_done(txn, answer[(r->sel & 7) % 3]);
}

/* client_read - keep what the server sends. */
static void
client_read(struct bufferevent *bev, void *arg)
{
	struct run *r = arg;

	evbuffer_add_buffer(r->replies, bufferevent_get_input(bev));
}

/* client_written - all input sent: close the sending side. */
static void
client_written(struct bufferevent *bev, void *arg)
{
	struct run *r = arg;

	if (!r->sent) {
		r->sent = true;
		shutdown(bufferevent_getfd(bev), SHUT_WR);
	}
}

/* client_event - the server hung up (or the socket failed): done. */
static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	struct run *r = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		evbuffer_add_buffer(r->replies, bufferevent_get_input(bev));
		r->hung_up = true;
		event_base_loopexit(r->base, NULL);
	}
}

/* check_replies - every octet the server sent is part of a reply line. */
static void
check_replies(const char *p, size_t n)
{
	size_t i = 0, lines = 0;
	char code[3] = { 0 };
	bool more = false;

	while (i < n) {
		const char *eol = memchr(p + i, '\n', n - i);
		size_t len;

		CHECK(eol != NULL);
		len = (size_t)(eol - (p + i)) + 1;
		CHECK(len >= 6 && len <= 512 && p[i + len - 2] == '\r');
		CHECK(p[i] >= '2' && p[i] <= '5' &&
		    p[i + 1] >= '0' && p[i + 1] <= '5' &&
		    p[i + 2] >= '0' && p[i + 2] <= '9');
		CHECK(p[i + 3] == ' ' || p[i + 3] == '-');
		CHECK(memchr(p + i, '\r', len - 2) == NULL);
		if (lines == 0)
			CHECK(memcmp(p, "220", 3) == 0);
		if (more)
			CHECK(memcmp(code, p + i, 3) == 0);
		memcpy(code, p + i, 3);
		more = p[i + 3] == '-';
		lines++;
		i += len;
	}
	CHECK(!more);
}

/* count_data - DATA commands the input could hold (an upper bound). */
static unsigned
count_data(const char *p, size_t n)
{
	unsigned c = 0;

	for (size_t i = 0; i + 4 <= n; i++)
		if (strncasecmp(p + i, "DATA", 4) == 0 ||
		    strncasecmp(p + i, "BDAT", 4) == 0)
			c++;
	return c;
}

/* one - one session with (p, n) as everything the client sends. */
static void
one(const char *p, size_t n, unsigned sel)
{
	struct smtpd_config cfg;
	struct smtpd_hooks hooks = { rcpt_cb, message_cb };
	struct sockaddr_in sin;
	struct smtpd *srv;
	struct run r;
	int sv[2];
	size_t len;

	memset(&r, 0, sizeof(r));
	r.sel = sel;
	CHECK((r.base = event_base_new()) != NULL);
	CHECK((r.replies = evbuffer_new()) != NULL);
	memset(&cfg, 0, sizeof(cfg));
	cfg.hostname = "relay.example.org";
	cfg.max_message_size = sel & 8 ? SMALL_SIZE : 0;
	cfg.idle_timeout = 5;
	cfg.tmpfile = tmpfile_cb;
	r.max_size = sel & 8 ? SMALL_SIZE : 50u * 1024 * 1024;
	CHECK((srv = smtpd_new(r.base, &cfg, &hooks, &r)) != NULL);

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(sel & 32 ? 0x7f000001 : 0xc0000201);
	smtpd_attach(srv, sv[0], (struct sockaddr *)&sin, sizeof(sin));
	CHECK(smtpd_sessions(srv) == 1);

	CHECK((r.client = bufferevent_socket_new(r.base, sv[1],
	    BEV_OPT_CLOSE_ON_FREE)) != NULL);
	bufferevent_setcb(r.client, client_read, client_written,
	    client_event, &r);
	bufferevent_enable(r.client, EV_READ | EV_WRITE);
	if (n > 0)
		CHECK(bufferevent_write(r.client, p, n) == 0);
	else
		client_written(r.client, &r);

	/* Far longer than any input takes, shorter than the idle timer. */
	event_base_loopexit(r.base, &(struct timeval){ 3, 0 });
	event_base_dispatch(r.base);
	/* The client is gone: the session must have ended with it. */
	CHECK(r.hung_up);
	CHECK(smtpd_sessions(srv) == 0);
	CHECK(r.messages <= count_data(p, n));

	len = evbuffer_get_length(r.replies);
	check_replies((const char *)evbuffer_pullup(r.replies, -1), len);
	bufferevent_free(r.client);
	evbuffer_free(r.replies);
	smtpd_free(srv);
	event_base_free(r.base);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	unsigned sel;
	size_t n;
	char *p;

	if (!quiet) {
		log_init(false, LOG_LVL_ERR);
		quiet = true;
	}
	if ((p = fuzz_input_lines(data, size, &sel, &n, 16)) == NULL)
		return 0;
	one(p, n, sel);
	free(p);
	return 0;
}
