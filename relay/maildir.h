/*
 * maildir.h - delivery into a maildir (the embedded default target):
 * write under tmp/, fsync, link into new/, fsync new/. A reader never sees
 * a partial file and a delivery that returned true survives a crash.
 */
#ifndef ARCRELAY_MAILDIR_H
#define ARCRELAY_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * maildir_deliver - store msg (len bytes, as queued) as one new message
 * in the maildir at dir, creating dir and its tmp/, new/ and cur/ when
 * missing (durably: each new directory is fsynced into its parent, as
 * maildir_prepare does). name receives the file name under new/. On failure returns
 * false with a reason; nothing is left in new/ (failures are always
 * temporary: the message stays queued). Blocking file I/O: call it from
 * a worker thread. Thread-safe.
 */
bool maildir_deliver(const char *dir, const char *msg, size_t len,
    char *name, size_t namelen, char *why, size_t whylen);

/*
 * maildir_prepare - make dir a maildir now (dir, tmp/, new/, cur/ and any
 * missing parent, mode 0700, each fsynced into its parent). Directories
 * it makes are given to uid:gid; (uid_t)-1 and (gid_t)-1 keep this
 * process's, as for chown(2). Directories already there are left as they
 * are: the daemon calls this as root for the configured maildirs before it
 * becomes [server] user, and must not take over a maildir someone else
 * owns. False with a reason. Thread-safe.
 */
bool maildir_prepare(const char *dir, uid_t uid, gid_t gid, char *why,
    size_t whylen);

/*
 * maildir_usable - can this process (its effective ids) deliver into the
 * maildir at dir: dir and cur/ searchable, tmp/ writable, new/ readable
 * and writable (its fsync opens it). False with a reason naming the
 * directory, its owner and mode.
 */
bool maildir_usable(const char *dir, char *why, size_t whylen);

#endif
