/*
 * log.h - the daemon's log: one line per event, key=value, prefixed by the
 * queue or session id, to stderr or syslog. Peer-supplied text goes
 * through log_quote so a line can never be split or forged.
 */
#ifndef ARCRELAY_LOG_H
#define ARCRELAY_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* log_init - where lines go; call once before threads start. */
void log_init(bool use_syslog, enum log_level level);

/* log_event - "ID key=value ..." (id may be NULL for daemon events).
 * Thread-safe; a line is written whole. */
void log_event(enum log_level lvl, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * log_quote - peer text as one log token into out (outlen >= 4): printable
 * ASCII kept, '"' and '\\' escaped, anything else as \xHH, wrapped in
 * quotes when it holds a space or '='; truncated with "..." to fit.
 * Returns out.
 */
char *log_quote(const char *p, size_t n, char *out, size_t outlen);

#endif
