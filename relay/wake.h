/*
 * wake.h - waking an event loop to collect work that other threads
 * finished (the SMTP replies owed, the pipeline's queued messages, the
 * disk workers' results).
 *
 * A wake-up from another thread writes one byte to a pipe the loop
 * watches, and only when none is pending, so a burst of them costs one
 * write and one read. A wake-up from the loop's own thread activates an
 * event and makes no system call. The callback runs on the loop and
 * should take everything queued for it: a wake-up that comes while it
 * runs calls it again.
 */
#ifndef ARCRELAY_WAKE_H
#define ARCRELAY_WAKE_H

#include <stdbool.h>

struct event_base;
struct wake;

/*
 * wake_new - a wake-up that calls fn(arg) on base's loop. Call it on the
 * thread that runs that loop: that is the thread wake_up knows as the
 * loop's. NULL when out of memory or pipes.
 */
struct wake *wake_new(struct event_base *base, void (*fn)(void *arg),
    void *arg);

/* wake_up - have fn called on the loop soon; from any thread. */
void wake_up(struct wake *w);

/* wake_free - on the loop's thread, once no other thread can call
 * wake_up any more; NULL is a no-op. */
void wake_free(struct wake *w);

#endif
