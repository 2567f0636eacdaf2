/*
 * config.h - arcrelay.conf: `key = value` lines, `#` comments, `[section]`
 * and `[section NAME]` blocks (etc/arcrelay.conf is the documented
 * sample). Everything is checked at load: an unknown section or key, a bad
 * value or an unreadable key file is refused with "FILE:LINE: reason".
 */
#ifndef ARCRELAY_CONFIG_H
#define ARCRELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"

/* [domain NAME]: relay mail for this recipient domain. */
struct cfg_domain {
	char *name;		/* lowercase, no final dot */
	char *deliver;		/* a target (as [delivery] deliver), or NULL
				 * for the [delivery] default */
};

struct relay_config {
	/* [server] */
	char **listen;		/* "host:port" each; default 127.0.0.1:2525 */
	size_t nlisten;
	char *hostname;		/* default: gethostname() */
	char *authserv_id;	/* default: hostname */
	char *spool;		/* default ./var/spool */
	char *pid_file;		/* default SPOOL/arcrelay.pid */
	char *user;		/* drop privileges to this user, or NULL */
	uint64_t max_message_size;	/* default 50 MiB */
	unsigned max_recipients;	/* default 100 */
	unsigned max_sessions;		/* default 500 */
	unsigned max_sessions_per_ip;	/* default 20 */
	unsigned max_errors;		/* per session, default 10 */
	unsigned idle_timeout;		/* seconds, default 300 (5m) */
	char *tls_cert, *tls_key;	/* both or neither */
	unsigned workers;		/* pipeline threads, default 8 */
	bool loopback_any_rcpt;	/* accept any recipient from loopback
				 * clients (the embedded default only) */

	/* [dns] */
	char *resolver;		/* "system" or "IP[@PORT]"; default system */
	char *records;		/* a zone file replacing DNS (tests) */
	unsigned dns_timeout;	/* seconds, default 5 */

	/* [policy] */
	int dmarc_mode;		/* dmarc = rfc9989 (0, the default) or
				 * rfc7489 (1: Public Suffix List, pct=) */

	/* [delivery] */
	char *deliver;		/* "maildir:PATH", "smtp:[HOST]:PORT", "mx" */
	unsigned *retry;	/* seconds; default 60 300 1800 7200 */
	size_t nretry;
	unsigned lifetime;	/* seconds, default 5 days */
	bool eightbit_bounce;	/* eightbit = send (false, the default) or
				 * bounce: 8-bit mail only to servers that
				 * offer 8BITMIME */

	/* [signing] and [arc] (arc_* NULL: the signing ones) */
	char *sign_domain, *sign_selector, *sign_key;
	char *arc_domain, *arc_selector, *arc_key;

	struct cfg_domain *domains;
	size_t ndomains;

	/* [list ADDR], [forward ADDR], [srs]; NULL when there are none */
	struct rules *rules;

	char *path;		/* the file loaded, NULL for the default */
};

/* config_load - parse and check path; NULL with "path:line: reason". */
struct relay_config *config_load(const char *path, char *why, size_t whylen);

/*
 * config_default - the embedded default: listen 127.0.0.1:2525, spool and
 * keys under ./var/, deliver to maildir:./var/outbox, any recipient from
 * loopback clients only. Signing key paths point under ./var/keys; the
 * daemon generates them on first start.
 */
struct relay_config *config_default(void);

void config_free(struct relay_config *c);

/* config_duration - "90", "90s", "5m", "2h", "5d" in seconds. */
bool config_duration(const char *s, unsigned *out);
/* config_size - "1000", "10k", "50M", "1G" in bytes. */
bool config_size(const char *s, uint64_t *out);

#endif
