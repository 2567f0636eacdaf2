/*
 * dsn.h - RFC 3464 delivery status notifications, read: which recipients
 * a report is about, what happened to each (Action, Status) and what the
 * remote server said (Diagnostic-Code). The mailing lists use it to learn
 * which member a bounce is for.
 *
 * A DSN is a multipart/report; report-type=delivery-status message (RFC
 * 6522) whose message/delivery-status part (message/global-delivery-status
 * too, RFC 6533) holds one group of per-message fields and then one group
 * of per-recipient fields per recipient, the groups apart by empty lines.
 * The report may sit inside other multiparts (a forwarded bounce) and
 * carry any other parts (Microsoft's multipart/alternative explanation,
 * the returned message); only the first status part is read. A status
 * part in base64 or quoted-printable is decoded, and so is a multipart
 * body so encoded (a whole report, though RFC 2045 §6.4 forbids it);
 * an encoding that does not decode is DSN_E_MALFORMED. Field values are
 * unfolded.
 *
 * Untrusted input: the whole message, as (ptr, len), CRLF or LF lines.
 * Nothing here does I/O, prints or aborts on input; memory is bounded by
 * the caps below.
 */
#ifndef ARCRELAY_DSN_H
#define ARCRELAY_DSN_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hard caps; a message over one is DSN_E_LIMIT and why names the cap. */
#define DSN_MAX_DEPTH		8	/* multipart levels, the top one too */
#define DSN_MAX_PARTS		256	/* body parts examined, all levels */
#define DSN_MAX_HEADER_FIELDS	1000	/* fields in one header block */
#define DSN_MAX_GROUP_FIELDS	64	/* fields in one status group */
#define DSN_MAX_RCPTS		100	/* per-recipient groups */
#define DSN_MAX_FIELD		4096	/* octets of one unfolded value */
#define DSN_MAX_STATUS		(256 * 1024)	/* octets of the status part,
						 * raw and decoded */
#define DSN_MAX_DECODED		(4 * 1024 * 1024)	/* octets of encoded
						 * multipart bodies, all levels */
#define DSN_MAX_BOUNDARY	200	/* boundary octets (RFC 2046: 70) */

/* Sizes of the strings kept (with their NUL). Longer addresses and types
 * are DSN_E_LIMIT; a longer diagnostic is cut and ends in "...". */
#define DSN_ADDR_MAX		512
#define DSN_TYPE_MAX		32
#define DSN_DIAG_MAX		512

enum dsn_rc {
	DSN_OK = 0,
	DSN_E_NOT_DSN,		/* no delivery-status part in a report: an
				 * auto-reply, a plain-text bounce */
	DSN_E_MALFORMED,	/* a status part that does not read */
	DSN_E_LIMIT,		/* over a hard cap */
	DSN_E_NOMEM,
};

/*
 * One per-recipient group. Strings are NUL-terminated copies, "" when the
 * field is absent; peer bytes are kept except control characters, which
 * become '?' (a tab, left by unfolding, a space). Types and Action are
 * lowercase.
 */
struct dsn_rcpt {
	char final_type[DSN_TYPE_MAX];	/* Final-Recipient address-type */
	char final_addr[DSN_ADDR_MAX];	/* without <>; required */
	char orig_type[DSN_TYPE_MAX];	/* Original-Recipient, optional */
	char orig_addr[DSN_ADDR_MAX];
	char action[16];	/* failed, delayed, delivered, relayed,
				 * expanded; required */
	char status[16];	/* "5.1.1": class.subject.detail; required */
	char diag_type[DSN_TYPE_MAX];	/* Diagnostic-Code, optional */
	char diag[DSN_DIAG_MAX];	/* its text, white space runs as one
					 * space */
};

struct dsn {
	char reporting_mta[256];	/* the mta-name, or "" */
	struct dsn_rcpt *rcpt;		/* owned, nrcpt entries (at least 1) */
	size_t nrcpt;
};

/*
 * dsn_parse - read the DSN in msg. On DSN_OK *out is a new report (free
 * with dsn_free) with at least one recipient group; otherwise *out is NULL
 * and why (if not NULL) says what was missing, broken or over which cap
 * ("no Status in recipient group 2", "more than 100 recipient groups").
 */
enum dsn_rc dsn_parse(const char *msg, size_t len, struct dsn **out,
    char *why, size_t whylen);

/* dsn_free - NULL is a no-op. */
void dsn_free(struct dsn *d);

/* dsn_find - the group whose Final-Recipient or Original-Recipient is the
 * rfc822 address addr (case-insensitive), or NULL. */
const struct dsn_rcpt *dsn_find(const struct dsn *d, const char *addr);

/* dsn_rc_str - "ok", "not a DSN", "malformed", "limit", "no memory". */
const char *dsn_rc_str(enum dsn_rc rc);

#ifdef __cplusplus
}
#endif

#endif
