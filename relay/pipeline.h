/*
 * pipeline.h - what happens to a message between the end of DATA and the
 * 250: the relay's Received field, forged Authentication-Results removed,
 * DKIM/ARC/SPF/DMARC evaluated, the AAR built, the relay's DKIM signature,
 * then the ARC-Message-Signature and ARC-Seal, and the result durably
 * queued. Worker threads do it; the event loop never does crypto or
 * blocking DNS.
 */
#ifndef ARCRELAY_PIPELINE_H
#define ARCRELAY_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "auth.h"
#include "dsn.h"
#include "pdns.h"
#include "queue.h"
#include "rules.h"

struct pipeline_keys {
	EVP_PKEY *sign_key;		/* owned reference */
	char *sign_domain, *sign_selector;	/* owned */
	EVP_PKEY *arc_key;		/* owned reference */
	char *arc_domain, *arc_selector;	/* owned */
	struct rules *rules;		/* owned reference, may be NULL */
};

struct pipeline_opts {
	const char *hostname;
	const char *authserv_id;
	struct pdns dns;		/* thread-safe lookups */
	enum dmarc_mode dmarc_mode;
	const struct dmarc_psl *psl;
	int64_t now;			/* 0: the clock (tests fix it) */
};

/* The SMTP envelope and client of one message. */
struct pipeline_env {
	const char *client_ip;
	const char *helo;
	bool tls;
	const char *sender;		/* "" for the null reverse-path */
	const char *const *rcpt;
	size_t nrcpt;
	const char *session_id;
};

enum pipeline_rc {
	PIPE_OK = 0,		/* out holds the message to queue */
	PIPE_TEMPFAIL,		/* 4xx: try again later */
	PIPE_REJECT,		/* 5xx: the input is not a message */
};

/*
 * One message to queue: msgs[msg] for sender and the recipients. A list
 * post is queued once per member (per_rcpt), each copy the same sealed
 * bytes; under VERP each copy has its own sender (senders).
 */
struct pipeline_out {
	size_t msg;		/* index into pipeline_result.msgs */
	char *sender;		/* envelope sender: the original, SRS, or
				 * the list's NAME-bounces address */
	char **rcpt;
	size_t nrcpt;
	char **senders;		/* owned, per_rcpt only: rcpt[i]'s own
				 * envelope sender (VERP); NULL: sender */
	bool per_rcpt;
	char label[RULES_ADDR_MAX + 16];	/* "relay", "list A", "forward A" */
};

/* A member a bounce is about, with what the report says ("unknown"
 * when the VERP address named the member but nothing parsed). */
struct pipeline_bounced {
	char member[RULES_ADDR_MAX];	/* as the list has it */
	char action[16];
	char status[16];
	char diag[DSN_DIAG_MAX + DSN_TYPE_MAX + 2];	/* "type; text" */
	bool verp;		/* a VERP address of the message named it */
};

/*
 * Mail to a list's NAME-bounces addresses (one record per list): processed,
 * never relayed. The message (bounce_msg) is kept in maildir before the
 * 250 and one line is logged per member (none: why says why no member was
 * found).
 */
struct pipeline_bounce {
	char *list;		/* owned: the list address */
	char *rcpt;		/* owned: the (first) address it came to */
	char *maildir;		/* owned: where it is kept; NULL: discard */
	bool verp;		/* a member came from a VERP address */
	bool dsn_done;		/* the report's recipients looked up */
	struct pipeline_bounced *members;	/* owned */
	size_t nmembers;
	char why[200];
};

struct pipeline_result {
	struct dkim_buf *msgs;	/* the final messages (sealed) */
	size_t nmsgs;
	struct pipeline_out *outs;
	size_t nouts;
	struct pipeline_bounce *bounces;	/* owned */
	size_t nbounces;
	struct dkim_buf bounce_msg;	/* our Received field and what
					 * arrived: what bounces keep */
	struct auth_results auth;	/* what arrived */
};

void pipeline_result_free(struct pipeline_result *r);

/*
 * pipeline_process - one message, synchronously, no threads: data in,
 * the message(s) the relay hands on and for whom in r (caller frees with
 * pipeline_result_free on PIPE_OK). Each recipient goes where the rules
 * (keys->rules) send it: a list is expanded to its members, a forward to
 * its addresses, an SRS bounce address back to the original sender;
 * mail to a list's bounce address is read (policy/dsn.h) into
 * r->bounces, for the caller to keep and log. reply gets the SMTP reply text for anything but PIPE_OK.
 */
enum pipeline_rc pipeline_process(const struct pipeline_opts *o,
    const struct pipeline_keys *keys, struct dkim_keycache *kc,
    const struct pipeline_env *env, const char *data, size_t len,
    struct pipeline_result *r, char *reply, size_t replylen);

enum pipeline_local {
	PIPE_LOCAL_NO = 0,	/* rcpt is no list's bounce address */
	PIPE_LOCAL_KEPT,	/* read, logged, kept (or discarded) */
	PIPE_LOCAL_FAILED,	/* a list's, but not kept now: why says why */
};

/*
 * pipeline_local_bounce - a bounce the relay made itself (relay/bounce.c)
 * for rcpt, when rcpt is one of the bounce addresses of a list in rules:
 * taken as mail to that address is at the end of DATA (read as a DSN,
 * one event=list_bounce line per member under id, kept durably in the
 * list's bounces maildir or discarded as its `bounces` says), behind a
 * Received field of hostname, instead of a trip through the queue and
 * SMTP back to this relay. Any other rcpt: PIPE_LOCAL_NO, nothing done.
 * Blocking I/O: call it from a worker thread.
 */
enum pipeline_local pipeline_local_bounce(const struct rules *rules,
    const char *hostname, const char *rcpt, const char *id, const char *msg,
    size_t len, char *why, size_t whylen);

/* pipeline_dkim_sign - the relay's DKIM-Signature field for m (appended
 * to out): used for relayed messages and for our own bounces. */
enum dkim_status pipeline_dkim_sign(const struct pipeline_keys *k,
    const struct dkim_msg *m, int64_t now, struct dkim_buf *out, char *why,
    size_t whylen);

/* ------------------------------------------------------ worker threads */

struct pipeline;

struct pipeline_job {
	int fd;			/* the DATA file, borrowed: read, never
				 * written or closed, until done is called */
	size_t size;		/* the message: its first size bytes */
	char *client_ip, *helo, *sender, *session_id;	/* owned */
	char **rcpt;		/* owned */
	size_t nrcpt;
	bool tls;
	struct rules *rules;	/* owned reference or NULL: the rules its
				 * recipients were checked against, which
				 * then route them (else the keys' rules) */
	void *token;		/* the caller's (the SMTP transaction) */
	/* Filled by the worker: */
	char reply[256];	/* the SMTP reply to send */
	bool queued;
	struct q_envelope *qenv;	/* when queued: id, sender, recipients */
	size_t nqenv;			/* one per queued message */
	char **qdata;		/* owned, nqenv entries, each owned or NULL:
				 * the bytes queued under qenv[i], kept when
				 * no other envelope shares them, so that
				 * delivery need not read them back */
	size_t *qlen;		/* owned, nqenv entries: their lengths */
};

typedef void (*pipeline_done_fn)(void *arg, struct pipeline_job *job);

/* pipeline_new - workers threads; done runs on a worker thread for every
 * job, which it then owns (pipeline_job_free). Keys are copied by
 * reference. */
struct pipeline *pipeline_new(unsigned workers, const struct pipeline_opts *o,
    const struct pipeline_keys *keys, struct queue *q, pipeline_done_fn done,
    void *arg);

/* pipeline_submit - queue a job (the pipeline owns it until done). */
void pipeline_submit(struct pipeline *p, struct pipeline_job *job);

/* pipeline_set_keys - new keys for messages started from now (SIGHUP). */
void pipeline_set_keys(struct pipeline *p, const struct pipeline_keys *keys);

/* pipeline_busy - jobs queued or in progress. */
unsigned pipeline_busy(struct pipeline *p);

/* pipeline_free - finish every queued job, then stop the workers. */
void pipeline_free(struct pipeline *p);

void pipeline_job_free(struct pipeline_job *job);
void pipeline_keys_clear(struct pipeline_keys *k);
/* pipeline_keys_copy - dst gets its own references and strings. */
bool pipeline_keys_copy(struct pipeline_keys *dst,
    const struct pipeline_keys *src);

#endif
