/*
 * log.c - one line per event (see log.h). Lines are assembled in a local
 * buffer and written with one call, so concurrent threads never
 * interleave inside a line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static bool log_syslog;
static enum log_level log_max = LOG_LVL_INFO;

void
log_init(bool use_syslog, enum log_level level)
{
	log_syslog = use_syslog;
	log_max = level;
	if (use_syslog)
		openlog("arcrelay", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_event(enum log_level lvl, const char *id, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
	    LOG_DEBUG };
	static const char *const name[] = { "error", "warning", "info",
	    "debug" };
	char line[4096];
	size_t n = 0;
	va_list ap;
	int k;

	if (lvl > log_max)
		return;
	if (!log_syslog) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
		    ts.tv_nsec / 1000000, name[lvl]);
		n += k > 0 ? (size_t)k : 0;
	}
	if (id) {
		k = snprintf(line + n, sizeof(line) - n, "%s: ", id);
		n += k > 0 ? (size_t)k : 0;
	}
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	n += k > 0 ? (size_t)k : 0;
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	if (log_syslog) {
		line[n] = '\0';
		syslog(prio[lvl], "%s", line);
		return;
	}
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

char *
log_quote(const char *p, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;
	bool quote = n == 0;

	for (i = 0; i < n && !quote; i++)
		if (p[i] == ' ' || p[i] == '=' || p[i] == '"')
			quote = true;
	if (quote)
		out[o++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		char tmp[5];
		size_t need;

		if (c == '"' || c == '\\')
			snprintf(tmp, sizeof(tmp), "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		else
			snprintf(tmp, sizeof(tmp), "%c", c);
		need = strlen(tmp);
		if (o + need + 5 > outlen) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, tmp, need);
		o += need;
	}
	if (quote)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}
