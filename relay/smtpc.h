/*
 * smtpc.h - the SMTP client side (RFC 5321) on libevent: one connection
 * to one destination, tried address by address, that then carries any
 * number of transactions one after the other (connection reuse).
 *
 * Opening: connect (with a timeout) to each address in order, read the
 * greeting, EHLO (HELO when EHLO is refused), STARTTLS when offered and a
 * TLS context is given. TLS is opportunistic: certificates are not
 * verified, and a failed handshake makes the client try the same address
 * again in plaintext rather than give up. A session that needs 8BITMIME
 * (for 8-bit mail) passes over the addresses whose server lacks it.
 *
 * A transaction: MAIL, every RCPT, DATA, the dot-stuffed body. With
 * PIPELINING, MAIL, the RCPTs and DATA go out in one write. SIZE is
 * respected: a message larger than the server's limit is not sent and
 * fails permanently. Each recipient gets its own result.
 *
 * Untrusted input: every reply line from the server. Lines are capped,
 * replies are checked for shape, and reply text is kept as printable
 * ASCII only (anything else becomes '?') before anyone logs or quotes it.
 */
#ifndef ARCRELAY_SMTPC_H
#define ARCRELAY_SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include <openssl/ssl.h>

struct event_base;
struct smtpc;

#define SMTPC_TEXT_MAX 512	/* reply text kept per result */

enum smtpc_class {
	SMTPC_OK = 0,		/* 2xx */
	SMTPC_TEMP,		/* 4xx, or a local/connection failure */
	SMTPC_PERM,		/* 5xx, or a local permanent failure */
};

/* One outcome: a server reply, or a failure of our own making. */
struct smtpc_reply {
	int code;			/* SMTP code; 0: no reply (local) */
	enum smtpc_class cls;
	bool remote;			/* text is the server's reply */
	char status[16];		/* enhanced code ("5.1.1"): the
					 * reply's own, or one chosen */
	char text[SMTPC_TEXT_MAX];	/* "550 5.1.1 no such user" or
					 * "connect to ...: refused" */
};

/* smtpc_reply_set - a local outcome: class, enhanced code, reason. */
void smtpc_reply_set(struct smtpc_reply *r, enum smtpc_class cls,
    const char *status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* smtpc_reply_parse - code, class and enhanced code of a reply text
 * ("451 4.3.0 busy"), for replies that were stored and read back. */
void smtpc_reply_parse(struct smtpc_reply *r, const char *text);

struct smtpc_addr {
	struct sockaddr_storage sa;	/* port filled in by smtpc_open */
	socklen_t salen;
	char host[256];			/* the name it was found under, for
					 * SNI and logs (may be the IP) */
};

struct smtpc_config {
	const char *helo;		/* our name for EHLO/HELO; copied */
	unsigned connect_timeout;	/* seconds; 0: 30 */
	unsigned command_timeout;	/* seconds per reply; 0: 300. The
					 * reply to the end of data gets
					 * twice as long (RFC 5321
					 * 4.5.3.2.6: 10 minutes) */
	SSL_CTX *tls;			/* STARTTLS when offered; NULL:
					 * never. Borrowed: must outlive
					 * every session. */
	bool need_8bitmime;		/* an address whose server does not
					 * offer 8BITMIME fails permanently
					 * (5.6.3) and the next is tried */
};

/* One transaction. The caller keeps every pointer alive until sent. */
struct smtpc_msg {
	const char *sender;		/* "" for the null reverse-path */
	const char *const *rcpt;
	size_t nrcpt;
	const char *data;		/* the message, CRLF lines (a lone
					 * CR or LF is sent as CRLF), not
					 * yet dot-stuffed */
	size_t len;
	struct smtpc_reply *res;	/* nrcpt entries, filled in */
};

/*
 * What the session tells its owner. Every callback runs from the event
 * loop, never from inside an smtpc_* call, and may free the session
 * (smtpc_free), start the next transaction or quit.
 */
struct smtpc_handler {
	/* open - ready for transactions (err NULL), or no address worked
	 * (err: the last failure, permanent only when every address
	 * refused permanently); in that case free the session. */
	void (*open)(void *arg, struct smtpc *c, const struct smtpc_reply *err);
	/*
	 * sent - a transaction ended: m->res is filled for every recipient.
	 * fresh: a reused connection turned out to be dead before the
	 * server answered anything, or the server answered 421 (closing)
	 * before the transaction was over, so nothing was delivered and
	 * the transaction should be tried again on a new connection
	 * (m->res is not to be used). A 421 ends the session at once:
	 * smtpc_usable is then false.
	 * smtpc_usable says whether the session can take another one.
	 */
	void (*sent)(void *arg, struct smtpc *c, struct smtpc_msg *m,
	    bool fresh);
	/* lost - an idle session ended (server closed or said 421), or a
	 * QUIT finished: free the session. */
	void (*lost)(void *arg, struct smtpc *c);
};

/*
 * smtpc_open - start a session: addrs are tried in order (copied), all
 * on port. Returns NULL only when out of memory or with no address; any
 * other outcome comes through h->open.
 */
struct smtpc *smtpc_open(struct event_base *base,
    const struct smtpc_config *cfg, const struct smtpc_addr *addrs,
    size_t naddrs, uint16_t port, const struct smtpc_handler *h, void *arg);

/* smtpc_send - start a transaction on an open, idle, usable session.
 * False if the session cannot take it now (nothing is called back). */
bool smtpc_send(struct smtpc *c, struct smtpc_msg *m);

/* smtpc_quit - QUIT politely; h->lost runs once the server answered or
 * a short timeout passed (then free the session). Nothing else is
 * called back after this. */
void smtpc_quit(struct smtpc *c);

/* smtpc_free - drop the connection now. smtpc_free(NULL) is a no-op. */
void smtpc_free(struct smtpc *c);

bool smtpc_usable(const struct smtpc *c);	/* idle and reusable */
const char *smtpc_peer(const struct smtpc *c);	/* "host[ip]:port" */
const char *smtpc_peer_host(const struct smtpc *c);	/* "host" */
bool smtpc_tls_active(const struct smtpc *c);
/* smtpc_tls_error - why STARTTLS failed on this session's address (it
 * went on in plaintext), or NULL. */
const char *smtpc_tls_error(const struct smtpc *c);
unsigned smtpc_transactions(const struct smtpc *c);	/* completed */

#endif
