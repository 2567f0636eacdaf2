/*
 * bounce.h - RFC 3464 delivery status notifications for messages the
 * relay gave up on: multipart/report; report-type=delivery-status with a
 * note for people, a message/delivery-status part and the original
 * headers as text/rfc822-headers. Building one does no I/O; the caller
 * queues it with the null sender (never for a null sender, never for a
 * message that is itself a bounce).
 */
#ifndef ARCRELAY_BOUNCE_H
#define ARCRELAY_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkim.h"

#define BOUNCE_HEADERS_MAX 65536	/* original header bytes returned */

struct bounce_rcpt {
	const char *addr;		/* Final-Recipient */
	const char *status;		/* enhanced code, "5.1.1" */
	const char *diag;		/* the last reply or reason, or NULL */
	bool diag_smtp;			/* diag is a server's SMTP reply */
	const char *remote_mta;		/* the server's name, or NULL */
	bool expired;			/* gave up after the lifetime */
	int64_t last_attempt;		/* epoch seconds; 0: unknown */
};

struct bounce_info {
	const char *hostname;		/* Reporting-MTA, MAILER-DAEMON@ */
	const char *queue_id;		/* the original's queue id */
	const char *sender;		/* the original envelope sender */
	int64_t arrival;		/* when it was queued */
	int64_t now;			/* Date of the report */
	const struct bounce_rcpt *rcpt;
	size_t nrcpt;
	const char *msg;		/* the original message */
	size_t len;
};

/* bounce_build - the whole DSN message, CRLF lines, appended to out.
 * False when out failed (its ceiling or memory). */
bool bounce_build(const struct bounce_info *bi, struct dkim_buf *out);

/* bounce_date - an RFC 5322 date-time in UTC ("Tue, 02 Dec 2025
 * 10:00:00 +0000"), independent of the locale. */
void bounce_date(int64_t t, char *out, size_t outlen);

#endif
