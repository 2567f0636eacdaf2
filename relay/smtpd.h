/*
 * smtpd.h - the SMTP server side (RFC 5321) on libevent.
 *
 * One bufferevent per connection; the session is an explicit state
 * machine. Input is strict: CRLF only (a bare CR or LF anywhere in DATA is
 * refused with 5xx, which closes SMTP smuggling), command lines at most
 * 512 octets, text lines at most 1000, SIZE enforced while streaming, and
 * limits on recipients, errors, idle time and concurrent sessions (total
 * and per client address). DATA streams into a spool file, so memory per
 * session stays bounded whatever the message size; the server reuses the
 * file for later messages.
 *
 * What the server does not decide, it asks its hooks: whether a recipient
 * is accepted, and what to do with a received message. All hooks run on
 * the event loop thread and must not block.
 */
#ifndef ARCRELAY_SMTPD_H
#define ARCRELAY_SMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct event_base;
struct smtpd;
struct smtpd_txn;

struct smtpd_config {
	const char *hostname;		/* greeting and EHLO name */
	uint64_t max_message_size;	/* SIZE; 0: 50 MiB */
	unsigned max_recipients;	/* 0: 100 */
	unsigned max_errors;		/* 0: 10, then the session is closed */
	unsigned idle_timeout;		/* seconds; 0: 300 */
	unsigned max_sessions;		/* 0: 500 */
	unsigned max_sessions_per_ip;	/* 0: 20 */
	SSL_CTX *tls;			/* STARTTLS offered when set; borrowed */
	/* Where DATA is streamed: returns an fd open for reading and
	 * writing and the file's path, or -1. The server owns the file
	 * from then on: it writes each message from offset 0, keeps the
	 * file for later messages, and closes and unlinks it when done. */
	int (*tmpfile)(void *arg, char *path, size_t pathlen);
};

/* What the hooks learn about the client. */
struct smtpd_peer {
	char addr[64];		/* numeric client address, no port */
	bool loopback;
	char helo[256];		/* HELO/EHLO argument as given */
	bool tls;		/* STARTTLS done */
	char session_id[24];	/* for log lines */
};

struct smtpd_hooks {
	/*
	 * rcpt - may this recipient (already parsed: the address between the
	 * angle brackets, with source routes refused before this) be
	 * accepted? Return true, or false with a complete reply in reply
	 * (e.g. "550 5.7.1 relaying denied").
	 */
	bool (*rcpt)(void *arg, const struct smtpd_peer *peer,
	    const char *mail_from, const char *rcpt, char *reply,
	    size_t replylen);
	/*
	 * message - DATA ended well: the message is in the spool file
	 * (smtpd_txn_data). The hook must, now or later and from any thread,
	 * call smtpd_txn_done(txn, reply) exactly once; the client gets no
	 * reply before that (the 250 follows the durable queueing).
	 */
	void (*message)(void *arg, struct smtpd_txn *txn);
};

/* A finished transaction, as the message hook sees it. */
const struct smtpd_peer *smtpd_txn_peer(const struct smtpd_txn *t);
const char *smtpd_txn_sender(const struct smtpd_txn *t); /* "" if null */
size_t smtpd_txn_nrcpt(const struct smtpd_txn *t);
const char *smtpd_txn_rcpt(const struct smtpd_txn *t, size_t i);
/*
 * smtpd_txn_serial - the transaction's place in the order of MAIL
 * commands the server accepted (0 for the first); smtpd_next_txn_serial
 * is the number the next one will get. Both on the loop thread: a caller
 * that notes smtpd_next_txn_serial when it changes something can tell,
 * at the end of DATA, whether the transaction began after that change.
 */
uint64_t smtpd_txn_serial(const struct smtpd_txn *t);
uint64_t smtpd_next_txn_serial(const struct smtpd *s);

/*
 * smtpd_txn_data - the spool file holding the message: its first *len
 * bytes are the message (dot-stuffing undone, CRLF line ends); what
 * follows them is left over from earlier messages. The fd stays the
 * server's: read it with pread from any thread until smtpd_txn_done,
 * never write, close or keep it.
 */
int smtpd_txn_data(const struct smtpd_txn *t, size_t *len);

/*
 * smtpd_txn_done - the reply to the end of DATA, e.g. "250 2.0.0 Ok:
 * queued as ID" or "451 4.3.0 try again later". Safe from any thread
 * (libevent must use pthreads); the txn must not be used afterwards. If
 * the client has gone meanwhile, the reply is dropped.
 */
void smtpd_txn_done(struct smtpd_txn *t, const char *reply);

/* smtpd_new - a server on base; call it on the thread that runs base's
 * loop (smtpd_txn_done there needs no system call). */
struct smtpd *smtpd_new(struct event_base *base, const struct smtpd_config *cfg,
    const struct smtpd_hooks *hooks, void *arg);

/* smtpd_listen - "host:port" ("[::1]:25" for IPv6). */
bool smtpd_listen(struct smtpd *s, const char *hostport, char *why,
    size_t whylen);

/* smtpd_addrs - the addresses the listeners are bound to, up to max of
 * them into out (a wildcard stays 0.0.0.0 or ::): how many there are. */
size_t smtpd_addrs(const struct smtpd *s, struct sockaddr_storage *out,
    size_t max);

/*
 * smtpd_attach - serve fd, a connected stream socket whose peer is sa, as
 * if a listener had accepted it (the session limits apply; the server
 * owns fd from here on and makes it non-blocking). For sockets handed in
 * from elsewhere, and for tests that drive a session over a socketpair.
 */
void smtpd_attach(struct smtpd *s, int fd, const struct sockaddr *sa,
    socklen_t salen);

/* smtpd_stop - stop accepting; sessions continue until they end. */
void smtpd_stop(struct smtpd *s);
/* smtpd_sessions - sessions open now. */
unsigned smtpd_sessions(const struct smtpd *s);
/* smtpd_close_all - drop every session (the end of a grace period). */
void smtpd_close_all(struct smtpd *s);
void smtpd_free(struct smtpd *s);

/*
 * smtpd_parse_path - the address in "<...>" of MAIL FROM/RCPT TO as RFC
 * 5321 §4.1.2 defines it: source routes (@a,@b:user@host) refused, quoted
 * local parts kept quoted. Exposed for tests.
 */
bool smtpd_parse_path(const char *p, size_t n, char *out, size_t outlen,
    const char **rest);

#endif
