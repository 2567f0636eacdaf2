/*
 * wake.c - waking an event loop from other threads (see wake.h).
 *
 * Owns a pipe and two events: the pipe's read end, which other threads'
 * wake-ups make readable, and an event the loop's own thread activates.
 * Nothing here is untrusted input.
 *
 * Why not event_active from the other thread: libevent then takes the
 * base's lock and writes its notification while holding it, and the
 * loop, woken at once, blocks on that lock; each hand-off cost two more
 * futex calls on each side. The pipe needs no lock the loop holds.
 */
#define _GNU_SOURCE		/* pipe2 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "wake.h"

struct wake {
	void (*fn)(void *arg);
	void *arg;
	pthread_t loop;		/* the thread running the loop */
	int rfd, wfd;		/* the pipe; owned */
	struct event *pipe_ev;	/* owned: rfd readable, persistent */
	struct event *self_ev;	/* owned: activated on the loop's thread */
	atomic_bool armed;	/* a byte is in the pipe or about to be */
};

/* wake_pipe_cb - another thread woke us: take its byte, then run fn. */
static void
wake_pipe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wake *w = arg;
	char b[16];

	(void)what;
	/* At most one byte is ever pending, so one read takes it. */
	(void)!read(fd, b, sizeof(b));
	/* Cleared before fn looks at its queue: whoever queues after that
	 * look finds it cleared and writes again. */
	atomic_store(&w->armed, false);
	w->fn(w->arg);
}

/* wake_self_cb - the loop's own thread woke us. */
static void
wake_self_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wake *w = arg;

	(void)fd;
	(void)what;
	w->fn(w->arg);
}

struct wake *
wake_new(struct event_base *base, void (*fn)(void *arg), void *arg)
{
	struct wake *w = calloc(1, sizeof(*w));
	int fds[2];

	if (w == NULL)
		return NULL;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
		free(w);
		return NULL;
	}
	w->fn = fn;
	w->arg = arg;
	w->loop = pthread_self();
	w->rfd = fds[0];
	w->wfd = fds[1];
	atomic_init(&w->armed, false);
	w->pipe_ev = event_new(base, w->rfd, EV_READ | EV_PERSIST,
	    wake_pipe_cb, w);
	w->self_ev = event_new(base, -1, 0, wake_self_cb, w);
	if (w->pipe_ev == NULL || w->self_ev == NULL ||
	    event_add(w->pipe_ev, NULL) != 0) {
		wake_free(w);
		return NULL;
	}
	return w;
}

void
wake_up(struct wake *w)
{
	if (pthread_equal(pthread_self(), w->loop)) {
		/* The loop runs here: it needs no notification. */
		event_active(w->self_ev, EV_READ, 0);
		return;
	}
	if (!atomic_exchange(&w->armed, true))
		(void)!write(w->wfd, "", 1);
}

void
wake_free(struct wake *w)
{
	if (w == NULL)
		return;
	if (w->pipe_ev)
		event_free(w->pipe_ev);
	if (w->self_ev)
		event_free(w->self_ev);
	close(w->rfd);
	close(w->wfd);
	free(w);
}
