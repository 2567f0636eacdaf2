/*
 * pause_rename.c - an LD_PRELOAD shim for the daemon tests: a rename()
 * onto the path ARCRELAY_TEST_PAUSE_PATH names returns only after
 * ARCRELAY_TEST_PAUSE_MS milliseconds, and then writes one line,
 * "pause_rename: resumed", to stderr. `arcrelay serve` writes its pid
 * file by a rename, so this holds the daemon in the moment between the
 * pid file's appearing and the event loop's start, long enough for a
 * test to signal it there. Every other rename passes straight through.
 */
#define _GNU_SOURCE		/* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*rename_fn)(const char *, const char *);

int
rename(const char *from, const char *to)
{
	static rename_fn real;
	const char *path = getenv("ARCRELAY_TEST_PAUSE_PATH");
	const char *ms = getenv("ARCRELAY_TEST_PAUSE_MS");
	static const char done[] = "pause_rename: resumed\n";
	struct timespec ts;
	long v;
	int rc, e;

	if (real == NULL && (real = (rename_fn)dlsym(RTLD_NEXT,
	    "rename")) == NULL) {
		errno = ENOSYS;
		return -1;
	}
	rc = real(from, to);
	if (rc != 0 || path == NULL || ms == NULL || to == NULL ||
	    strcmp(to, path) != 0)
		return rc;
	e = errno;
	v = strtol(ms, NULL, 10);
	ts.tv_sec = v / 1000;
	ts.tv_nsec = (v % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	(void)!write(2, done, sizeof(done) - 1);
	errno = e;
	return rc;
}
