/*
 * maildir.h - delivery into a maildir (the embedded default target):
 * write under tmp/, fsync, link into new/, fsync new/. A reader never sees
 * a partial file and a delivery that returned true survives a crash.
 */
#ifndef ARCRELAY_MAILDIR_H
#define ARCRELAY_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>

/*
 * maildir_deliver - store msg (len bytes, as queued) as one new message
 * in the maildir at dir, creating dir and its tmp/, new/ and cur/ when
 * missing. name receives the file name under new/. On failure returns
 * false with a reason; nothing is left in new/ (failures are always
 * temporary: the message stays queued). Blocking file I/O: call it from
 * a worker thread. Thread-safe.
 */
bool maildir_deliver(const char *dir, const char *msg, size_t len,
    char *name, size_t namelen, char *why, size_t whylen);

#endif
