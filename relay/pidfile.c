/*
 * pidfile.c - the daemon's pid file (see pidfile.h).
 *
 * Untrusted input: the pid file (anyone who can write its directory can
 * put anything there, a symlink included) and /proc/PID/cmdline of
 * whatever process it names. Both are read with a size cap; the file is
 * never followed through a symlink, and written only by rename over it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dkim.h"
#include "pidfile.h"

#define PIDFILE_MAX	32		/* bytes of a pid file */
#define CMDLINE_MAX	65536		/* bytes of /proc/PID/cmdline read */

/* read_small - at most max bytes of path into buf (not terminated);
 * the count, or -1 with errno. */
static ssize_t
read_small(const char *path, char *buf, size_t max, int flags)
{
	size_t got = 0;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | flags)) < 0)
		return -1;
	while (got < max) {
		ssize_t r = read(fd, buf + got, max - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	return (ssize_t)got;
}

bool
pidfile_read(const char *path, pid_t *pid, char *why, size_t whylen)
{
	char buf[PIDFILE_MAX + 1];
	ssize_t n;
	long v = 0;

	n = read_small(path, buf, sizeof(buf), O_NOFOLLOW | O_NONBLOCK);
	if (n < 0) {
		dkim_whyf(why, whylen, "cannot read %s: %s", path, strerror(errno));
		return false;
	}
	if (n > PIDFILE_MAX) {
		dkim_whyf(why, whylen, "%s is not a pid file: longer than %d "
		    "bytes", path, PIDFILE_MAX);
		return false;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n == 0 || buf[0] == '0') {
		dkim_whyf(why, whylen, "%s is not a pid file: %s", path, n == 0 ?
		    "empty" : "leading zero");
		return false;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] < '0' || buf[i] > '9' ||
		    v > (INT_MAX - (buf[i] - '0')) / 10) {
			dkim_whyf(why, whylen, "%s is not a pid file: not one "
			    "decimal number", path);
			return false;
		}
		v = v * 10 + (buf[i] - '0');
	}
	*pid = (pid_t)v;
	return true;
}

bool
pidfile_is_serve(pid_t pid, char *why, size_t whylen)
{
	char path[64], *buf;
	ssize_t n;
	size_t i, nargs = 0;
	const char *args[64];

	if (pid <= 0) {
		dkim_whyf(why, whylen, "%ld is not a process id", (long)pid);
		return false;
	}
	if (kill(pid, 0) != 0 && errno == ESRCH) {
		dkim_whyf(why, whylen, "process %ld is gone", (long)pid);
		return false;
	}
	if ((buf = malloc(CMDLINE_MAX + 1)) == NULL) {
		dkim_whyf(why, whylen, "out of memory");
		return false;
	}
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	n = read_small(path, buf, CMDLINE_MAX, 0);
	if (n < 0) {
		if (errno == ENOENT)
			dkim_whyf(why, whylen, "process %ld is gone", (long)pid);
		else
			dkim_whyf(why, whylen, "cannot check process %ld: %s",
			    (long)pid, strerror(errno));
		free(buf);
		return false;
	}
	if (n == 0) {
		/* A zombie, or a kernel thread: nothing to signal. */
		dkim_whyf(why, whylen, "process %ld is not arcrelay serve (it has "
		    "no command line: exited)", (long)pid);
		free(buf);
		return false;
	}
	buf[n] = '\0';
	/* The arguments, NUL-separated; the last may lack its NUL. */
	for (i = 0; i < (size_t)n && nargs < sizeof(args) / sizeof(args[0]);
	    i += strlen(buf + i) + 1)
		args[nargs++] = buf + i;
	for (i = 0; i + 1 < nargs; i++) {
		const char *base = strrchr(args[i], '/');

		base = base ? base + 1 : args[i];
		if (strcmp(base, "arcrelay") == 0 &&
		    strcmp(args[i + 1], "serve") == 0) {
			free(buf);
			return true;
		}
	}
	dkim_whyf(why, whylen, "process %ld is not arcrelay serve", (long)pid);
	free(buf);
	return false;
}

bool
pidfile_write(const char *path, char *why, size_t whylen)
{
	char tmp[PATH_MAX], line[32];
	pid_t self = getpid(), old;
	int fd, k, len;
	bool ok;

	if (path == NULL || path[0] == '\0') {
		dkim_whyf(why, whylen, "no pid file given");
		return false;
	}
	if (pidfile_read(path, &old, NULL, 0) && old != self &&
	    pidfile_is_serve(old, NULL, 0)) {
		dkim_whyf(why, whylen, "arcrelay serve (pid %ld) already runs with "
		    "pid file %s", (long)old, path);
		return false;
	}
	k = snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)self);
	if (k < 0 || (size_t)k >= sizeof(tmp)) {
		dkim_whyf(why, whylen, "pid file name too long: %s", path);
		return false;
	}
	(void)unlink(tmp);		/* our own leftover, same pid */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd < 0) {
		dkim_whyf(why, whylen, "cannot create %s: %s", tmp, strerror(errno));
		return false;
	}
	len = snprintf(line, sizeof(line), "%ld\n", (long)self);
	ok = write(fd, line, (size_t)len) == len;
	if (close(fd) != 0)
		ok = false;
	if (!ok || rename(tmp, path) != 0) {
		dkim_whyf(why, whylen, "cannot write %s: %s", path, strerror(errno));
		(void)unlink(tmp);
		return false;
	}
	return true;
}

void
pidfile_remove(const char *path)
{
	pid_t pid;

	if (path != NULL && pidfile_read(path, &pid, NULL, 0) &&
	    pid == getpid())
		(void)unlink(path);
}
