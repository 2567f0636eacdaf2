/*
 * pidfile.h - the daemon's pid file ([server] pid_file), and the checks
 * that keep a stale one from getting a signal meant for arcrelay: a pid
 * names the daemon only while /proc says that process runs
 * `arcrelay serve`.
 */
#ifndef ARCRELAY_PIDFILE_H
#define ARCRELAY_PIDFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * pidfile_write - path holding this process's id and a newline, written
 * under a temporary name beside it and renamed over it, so a reader sees
 * the old file or the new one, never half of one. Refused (with a reason)
 * when path names another live `arcrelay serve`: two daemons on one pid
 * file are two daemons on one spool. A stale file is replaced.
 */
bool pidfile_write(const char *path, char *why, size_t whylen);

/* pidfile_remove - remove path if it still holds this process's id. */
void pidfile_remove(const char *path);

/* pidfile_read - the process id path holds (decimal, an optional final
 * newline, nothing else); false with a reason. */
bool pidfile_read(const char *path, pid_t *pid, char *why, size_t whylen);

/*
 * pidfile_is_serve - pid is a live process running `arcrelay serve`,
 * judged by /proc/PID/cmdline (an argument whose last path component is
 * "arcrelay" followed by "serve", so wrappers are allowed). False with
 * the reason: gone, a zombie, something else, or not checkable.
 */
bool pidfile_is_serve(pid_t pid, char *why, size_t whylen);

#endif
