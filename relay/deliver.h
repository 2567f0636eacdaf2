/*
 * deliver.h - delivery of queued messages: to a maildir (the embedded
 * default), to a relayhost (smtp:[HOST]:PORT) or to the recipient
 * domain's MX (A/AAAA fallback), with an SMTP client on libevent
 * (EHLO, opportunistic STARTTLS, PIPELINING when offered, SIZE respected,
 * per-recipient results, one connection reused for one destination).
 *
 * 4xx replies and connection failures are retried on the configured
 * schedule; a 5xx, or a message older than the lifetime, gets an RFC 3464
 * bounce to the envelope sender (none for the null sender or for our own
 * bounces), queued, or handed to local_bounce when the sender is one of
 * the relay's own addresses. Each recipient ends in exactly one final log
 * line.
 */
#ifndef ARCRELAY_DELIVER_H
#define ARCRELAY_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include <sys/socket.h>

#include "dns.h"
#include "queue.h"

struct event_base;
struct dns_resolver;
struct deliver;

/* What local_bounce did with a bounce (below). */
enum deliver_local {
	DELIVER_LOCAL_NO = 0,	/* not a local address: queue the bounce */
	DELIVER_LOCAL_KEPT,	/* taken, durably, by the relay itself */
	DELIVER_LOCAL_FAILED,	/* a local address, not taken now: why */
};

struct deliver_config {
	const char *hostname;		/* EHLO name, bounce From domain */
	const char *target;		/* default target (see above) */
	/* per recipient domain override, or NULL: returns a target or NULL */
	const char *(*route)(void *arg, const char *rcpt_domain);
	void *route_arg;
	const unsigned *retry;		/* seconds between attempts */
	size_t nretry;
	unsigned lifetime;		/* seconds */
	unsigned connect_timeout;	/* seconds; 0: 30 */
	unsigned command_timeout;	/* seconds; 0: 300 (RFC 5321 §4.5.3.2),
					 * twice that for the reply to the
					 * end of data */
	unsigned max_connections;	/* at once; 0: 20 */
	/* The relay's own DKIM signer for bounces; NULL: unsigned bounces. */
	bool (*sign_bounce)(void *arg, const char *msg, size_t len,
	    char **out, size_t *outlen);
	void *sign_arg;
	/*
	 * A bounce for rcpt (the failed message's sender, queue id id) that
	 * the relay would otherwise queue and send to itself: the sender of
	 * a list member's copy is the list's own bounce address. Called on
	 * a disk worker thread before the bounce is signed or queued; KEPT
	 * makes the failed recipients final as a queued bounce does, FAILED
	 * leaves them pending for a retry. NULL: every bounce is queued.
	 */
	enum deliver_local (*local_bounce)(void *arg, const char *rcpt,
	    const char *id, const char *msg, size_t len, char *why,
	    size_t whylen);
	void *local_arg;
	/*
	 * Where MX, A and AAAA answers come from: NULL means
	 * dns_lookup_async on the resolver given to deliver_new (the caller
	 * attaches it to the loop). Tests serve a zone file here. The answer
	 * must come on the loop thread; false: the lookup could not start.
	 */
	bool (*lookup)(void *arg, const char *qname, enum pdns_type type,
	    dns_async_cb cb, void *cbarg);
	void *lookup_arg;
	unsigned mx_port;		/* SMTP port for `mx`; 0: 25 (tests) */
	/*
	 * 8-bit mail for a server that does not offer 8BITMIME (RFC 6152
	 * 3 asks for a conversion or a bounce). false: sent as it is, as
	 * most such servers take it and converting would break the
	 * relay's signature and seal. true: only servers that offer it
	 * get it; the next MX host (or address) is tried, and when none
	 * offers it the recipients fail permanently (5.6.3).
	 */
	bool eightbit_bounce;
};

/* deliver_new - delivery on base; call it on the thread that runs base's
 * loop. */
struct deliver *deliver_new(struct event_base *base, struct queue *q,
    struct dns_resolver *dns, const struct deliver_config *cfg);

/*
 * deliver_self - the relay's own listening addresses (ports are not
 * looked at; copied, replacing any given before): an MX host that
 * resolves to one of them is this relay under another name, and the MX
 * list is cut there as it is for an MX named as the relay's hostname.
 * A wildcard (0.0.0.0, ::) stands for every address of that family on
 * the machine's interfaces, read now (getifaddrs). False (why) when the
 * interfaces cannot be listed or memory runs out; the list is then
 * incomplete.
 */
bool deliver_self(struct deliver *d, const struct sockaddr_storage *addrs,
    size_t n, char *why, size_t whylen);

/* deliver_load - pick up everything already queued (at start-up). */
size_t deliver_load(struct deliver *d);

/* deliver_add - a message just committed (env is copied). */
void deliver_add(struct deliver *d, const struct q_envelope *env);

/*
 * deliver_add_data - deliver_add with the bytes just committed for env
 * (data, malloc'd, or NULL; the callee owns it): the first attempt uses
 * them instead of reading the queued file, as long as the bytes kept so
 * far stay within a ceiling.
 */
void deliver_add_data(struct deliver *d, const struct q_envelope *env,
    char *data, size_t len);

/*
 * deliver_flush - every pending recipient due now (SIGUSR1, `arcrelay
 * queue --flush`): messages waiting for a retry join the line for an
 * attempt at once, within the usual limits on attempts and connections;
 * a message with an attempt in flight keeps that one attempt, and its
 * recipients that attempt did not try are due when it ends. The times
 * on disk change with the next save. Returns the messages flushed.
 */
size_t deliver_flush(struct deliver *d);

/* deliver_idle - nothing in flight: for tests and graceful stops. */
bool deliver_idle(const struct deliver *d);

/* deliver_stop - start no new attempts and let idle connections quit;
 * attempts in flight finish (deliver_idle says when). */
void deliver_stop(struct deliver *d);

/* deliver_queued - messages known to delivery and not yet finished. */
size_t deliver_queued(const struct deliver *d);

void deliver_free(struct deliver *d);

#endif
