/*
 * queue.h - the durable on-disk queue.
 *
 * Each queued message is two files under SPOOL/queue/: ID.msg (the final
 * bytes, CRLF) and ID.env (the versioned envelope: sender, each recipient
 * with its state, attempts, next retry, first-seen time). Every write is
 * temp file, fsync, rename, fsync of the directory, so after a crash a
 * message is either wholly queued or not at all. At start-up every
 * envelope is read and checked; a corrupt one is moved to SPOOL/corrupt/
 * with its message and logged, never trusted and never fatal.
 * queue_list reads the same queue without writing anything, for
 * `arcrelay queue` beside a running daemon.
 *
 * Thread-safety: commit, update and remove may run on different threads
 * for different ids.
 */
#ifndef ARCRELAY_QUEUE_H
#define ARCRELAY_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUEUE_ID_MAX 32

enum q_state {
	Q_PENDING = 0,		/* not yet delivered: retry at next_retry */
	Q_DELIVERED,		/* final: accepted downstream */
	Q_FAILED,		/* final: permanent failure, bounced */
	Q_EXPIRED,		/* final: lifetime exceeded, bounced */
};

struct q_rcpt {
	char *addr;		/* owned */
	enum q_state state;
	unsigned attempts;
	int64_t next_retry;	/* epoch seconds */
	char *last_reply;	/* owned, may be NULL: the last SMTP reply */
};

struct q_envelope {
	char id[QUEUE_ID_MAX];
	char *sender;		/* owned; "" for the null sender */
	struct q_rcpt *rcpt;	/* owned */
	size_t nrcpt;
	int64_t first_seen;	/* epoch seconds */
	bool is_bounce;		/* a DSN we generated: never bounced again */
};

struct queue;

/* queue_open - create SPOOL/{tmp,queue,corrupt} as needed. */
struct queue *queue_open(const char *spool, char *why, size_t whylen);
void queue_close(struct queue *q);

/* queue_tmpfile - a new file under SPOOL/tmp for the SMTP server to
 * stream DATA into (it reuses the file from message to message); path
 * receives its name. Returns the fd, open for reading and writing and
 * locked while open, or -1 on error. */
int queue_tmpfile(struct queue *q, char *path, size_t pathlen);

/*
 * queue_commit - durably queue a message: its final bytes and envelope.
 * A fresh id is written into env->id. Returns false (with a reason) when
 * anything failed, in which case nothing is left queued.
 */
bool queue_commit(struct queue *q, const char *data, size_t len,
    struct q_envelope *env, char *why, size_t whylen);

/* queue_update - rewrite an envelope (recipient states) atomically. */
bool queue_update(struct queue *q, const struct q_envelope *env, char *why,
    size_t whylen);

/* queue_remove - drop a message whose recipients are all final. */
bool queue_remove(struct queue *q, const char *id);

/* queue_read - the message bytes (malloc'd) of a queued id. */
char *queue_read(struct queue *q, const char *id, size_t *len);

/* queue_scan - call fn for every valid queued envelope (the callee owns
 * env); corrupt entries are moved aside and reported through bad. */
typedef void (*queue_scan_fn)(void *arg, struct q_envelope *env);
typedef void (*queue_bad_fn)(void *arg, const char *name, const char *why);
size_t queue_scan(struct queue *q, queue_scan_fn fn, queue_bad_fn bad,
    void *arg);

/*
 * queue_list - a read-only listing of SPOOL/queue: it creates, moves and
 * rewrites nothing, so it is safe while a daemon runs. fn is called for
 * each entry, oldest first, with a valid envelope and the size of its
 * message, or with a bad entry (unreadable or corrupt envelope, message
 * missing, a stale message without envelope) and the reason, left where
 * it is. Entries removed while the listing runs (delivered meanwhile) and
 * commits in flight are skipped. Everything in the listing is borrowed
 * for the call only. False (with a reason) when SPOOL/queue cannot be
 * opened.
 */
struct q_listing {
	const char *id;
	const struct q_envelope *env;	/* NULL for a bad entry */
	const char *name;		/* the file: ID.env, or ID.msg alone */
	const char *why;		/* a bad entry's reason, else NULL */
	uint64_t size;			/* bytes of ID.msg, with env */
};
typedef void (*queue_list_fn)(void *arg, const struct q_listing *e);
bool queue_list(const char *spool, queue_list_fn fn, void *arg, char *why,
    size_t whylen);

/*
 * queue_sweep_orphans - remove every message file without an envelope.
 * Such a file is a commit cut short (never acknowledged) or a removal cut
 * short (already delivered). Only for start-up, before anything else
 * writes the queue: a commit in flight would look the same.
 */
size_t queue_sweep_orphans(struct queue *q);

/* queue_state_str - "pending", "delivered", "failed" or "expired": the
 * word the envelope file and the listing use for a state. */
const char *queue_state_str(enum q_state st);

void q_envelope_free(struct q_envelope *env);

#endif
