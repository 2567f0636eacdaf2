/*
 * bounce.c - building RFC 3464 delivery status notifications (see
 * bounce.h). Pure: bytes and values in, one message out.
 *
 * SECURITY: the original message and the reply texts come from strangers.
 * Reply and address text is reduced to printable ASCII (a CR or LF there
 * could otherwise forge fields of the report); the original header block
 * is returned as is but capped at BOUNCE_HEADERS_MAX, cut at a line end,
 * and the MIME boundary is chosen so that it does not occur in it.
 */
#define _GNU_SOURCE		/* memmem */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bounce.h"

#define FOLD_AT 76		/* fold report fields near this column */
#define WRAP_AT 72		/* wrap the note for people here */

void
bounce_date(int64_t t, char *out, size_t outlen)
{
	static const char *const day[] = { "Sun", "Mon", "Tue", "Wed",
	    "Thu", "Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    day[tm.tm_wday], tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* add_clean - s as printable ASCII ('?' for anything else). */
static void
add_clean(struct dkim_buf *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		dkim_buf_addc(b, c >= 0x20 && c < 0x7f ? (char)c : '?');
	}
}

/* add_folded - "Name: prefix" then the words of text, folded. */
static void
add_folded(struct dkim_buf *b, const char *name, const char *prefix,
    const char *text)
{
	char word[1024];
	size_t col, n;
	const char *p = text;
	bool first = true;

	dkim_buf_addf(b, "%s: %s", name, prefix);
	col = strlen(name) + 2 + strlen(prefix);
	for (;;) {
		while (*p == ' ')
			p++;
		for (n = 0; p[n] && p[n] != ' ' && n < sizeof(word) - 1; n++)
			;
		if (n == 0)
			break;
		memcpy(word, p, n);
		word[n] = '\0';
		p += n;
		if (!first && col + 1 + n > FOLD_AT) {
			dkim_buf_adds(b, "\r\n ");
			col = 1;
		} else if (!first) {
			dkim_buf_addc(b, ' ');
			col++;
		}
		add_clean(b, word);
		col += n;
		first = false;
	}
	dkim_buf_adds(b, "\r\n");
}

/* header_block - the length of the original header block, with the CRLF
 * that ends its last field, capped at BOUNCE_HEADERS_MAX (cut at a line
 * end); *cut says whether the cap was hit. */
static size_t
header_block(const char *m, size_t len, bool *cut)
{
	size_t i, last_eol = 0;

	*cut = false;
	for (i = 0; i < len; i++) {
		if (m[i] != '\n')
			continue;
		if (i + 1 > BOUNCE_HEADERS_MAX) {
			*cut = true;
			return last_eol;
		}
		/* A line that is empty (LF or CRLF alone) ends the header. */
		if (i == 0 || (i == 1 && m[0] == '\r'))
			return 0;
		last_eol = i + 1;
		if (i + 1 < len && m[i + 1] == '\n')
			return last_eol;
		if (i + 2 < len && m[i + 1] == '\r' && m[i + 2] == '\n')
			return last_eol;
	}
	if (len > BOUNCE_HEADERS_MAX) {
		*cut = true;
		return last_eol;
	}
	return len;		/* no body: all of it is header */
}

/* add_wrapped - text (cleaned) as lines of at most WRAP_AT columns, each
 * starting with indent; a word longer than a line gets a line of its own. */
static void
add_wrapped(struct dkim_buf *b, const char *indent, const char *text)
{
	size_t col = 0, n, ind = strlen(indent);
	const char *p = text;

	for (;;) {
		while (*p == ' ')
			p++;
		for (n = 0; p[n] && p[n] != ' '; n++)
			;
		if (n == 0)
			break;
		if (col > 0 && col + 1 + n > WRAP_AT) {
			dkim_buf_adds(b, "\r\n");
			col = 0;
		}
		if (col == 0) {
			dkim_buf_adds(b, indent);
			col = ind;
		} else {
			dkim_buf_addc(b, ' ');
			col++;
		}
		for (; n > 0; n--, p++, col++) {
			unsigned char c = (unsigned char)*p;

			dkim_buf_addc(b, c >= 0x20 && c < 0x7f ? (char)c : '?');
		}
	}
	if (col > 0)
		dkim_buf_adds(b, "\r\n");
}

static void
human_part(const struct bounce_info *bi, struct dkim_buf *b, bool cut)
{
	struct dkim_buf t;
	char date[64];
	size_t i;

	bounce_date(bi->arrival, date, sizeof(date));
	dkim_buf_adds(b, "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Description: Notification\r\n\r\n");
	dkim_buf_init(&t, 0);
	dkim_buf_addf(&t, "This is the mail relay at %s.", bi->hostname);
	add_wrapped(b, "", t.p ? t.p : "");
	dkim_buf_adds(b, "\r\n");
	dkim_buf_reset(&t);
	dkim_buf_addf(&t, "Your message could not be delivered to the "
	    "recipients listed below, and the relay has stopped trying. It "
	    "arrived on %s and was queued as %s. The technical report "
	    "follows in the next part, and the headers of your message are "
	    "attached%s", date, bi->queue_id, cut ? " (cut short: they were "
	    "very long)." : ".");
	add_wrapped(b, "", t.p ? t.p : "");
	dkim_buf_adds(b, "\r\n");
	for (i = 0; i < bi->nrcpt; i++) {
		const struct bounce_rcpt *r = &bi->rcpt[i];

		dkim_buf_reset(&t);
		dkim_buf_addf(&t, "<%s>: %s", r->addr ? r->addr : "",
		    r->expired ? "still undeliverable when the time allowed "
		    "for delivery ran out" : "refused permanently");
		add_wrapped(b, "", t.p ? t.p : "");
		if (r->diag && r->diag[0]) {
			dkim_buf_reset(&t);
			if (r->remote_mta && r->diag_smtp)
				dkim_buf_addf(&t, "%s said: ", r->remote_mta);
			dkim_buf_adds(&t, r->diag);
			add_wrapped(b, "    ", t.p ? t.p : "");
		}
	}
	dkim_buf_adds(b, "\r\n");
	dkim_buf_free(&t);
}

static void
report_part(const struct bounce_info *bi, struct dkim_buf *b)
{
	char date[64];
	size_t i;

	dkim_buf_adds(b, "Content-Type: message/delivery-status\r\n"
	    "Content-Description: Delivery report\r\n\r\n");
	/* Per-message fields. */
	dkim_buf_adds(b, "Reporting-MTA: dns; ");
	add_clean(b, bi->hostname);
	dkim_buf_adds(b, "\r\n");
	bounce_date(bi->arrival, date, sizeof(date));
	dkim_buf_addf(b, "Arrival-Date: %s\r\n", date);
	/* Per-recipient fields, each group after an empty line. */
	for (i = 0; i < bi->nrcpt; i++) {
		const struct bounce_rcpt *r = &bi->rcpt[i];

		dkim_buf_adds(b, "\r\nFinal-Recipient: rfc822; ");
		add_clean(b, r->addr);
		dkim_buf_adds(b, "\r\nAction: failed\r\nStatus: ");
		add_clean(b, r->status && r->status[0] ? r->status :
		    r->expired ? "4.4.7" : "5.0.0");
		dkim_buf_adds(b, "\r\n");
		if (r->remote_mta && r->remote_mta[0]) {
			dkim_buf_adds(b, "Remote-MTA: dns; ");
			add_clean(b, r->remote_mta);
			dkim_buf_adds(b, "\r\n");
		}
		if (r->diag && r->diag[0])
			add_folded(b, "Diagnostic-Code", r->diag_smtp ?
			    "smtp; " : "X-Arcrelay; ", r->diag);
		if (r->last_attempt > 0) {
			bounce_date(r->last_attempt, date, sizeof(date));
			dkim_buf_addf(b, "Last-Attempt-Date: %s\r\n", date);
		}
		dkim_buf_adds(b, "Final-Log-ID: ");
		add_clean(b, bi->queue_id);
		dkim_buf_adds(b, "\r\n");
	}
	dkim_buf_adds(b, "\r\n");
}

bool
bounce_build(const struct bounce_info *bi, struct dkim_buf *out)
{
	char boundary[160], date[64];
	bool cut, eight;
	size_t hlen = header_block(bi->msg, bi->len, &cut);
	unsigned k;

	/* A boundary that the returned headers do not contain. */
	for (k = 0;; k++) {
		snprintf(boundary, sizeof(boundary), "=_arcrelay_dsn_%lld_%s"
		    "_%u", (long long)bi->now, bi->queue_id, k);
		if (memmem(bi->msg, hlen, boundary, strlen(boundary)) == NULL || k > 1000)
			break;
	}
	eight = dkim_has_8bit(bi->msg, hlen);
	bounce_date(bi->now, date, sizeof(date));
	dkim_buf_adds(out, "From: Mail Delivery System <MAILER-DAEMON@");
	add_clean(out, bi->hostname);
	dkim_buf_adds(out, ">\r\nTo: <");
	add_clean(out, bi->sender);
	dkim_buf_adds(out, ">\r\nSubject: Undelivered mail returned to "
	    "sender\r\n");
	dkim_buf_addf(out, "Date: %s\r\n", date);
	dkim_buf_adds(out, "Message-ID: <");
	add_clean(out, bi->queue_id);
	dkim_buf_addf(out, ".%lld.dsn@", (long long)bi->now);
	add_clean(out, bi->hostname);
	dkim_buf_adds(out, ">\r\nAuto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;"
	    "\r\n\tboundary=\"");
	dkim_buf_adds(out, boundary);
	dkim_buf_adds(out, "\"\r\n");
	if (eight)
		dkim_buf_adds(out, "Content-Transfer-Encoding: 8bit\r\n");
	dkim_buf_adds(out, "\r\nThis is a delivery status notification in "
	    "MIME format.\r\n\r\n");

	dkim_buf_addf(out, "--%s\r\n", boundary);
	human_part(bi, out, cut);
	dkim_buf_addf(out, "--%s\r\n", boundary);
	report_part(bi, out);
	dkim_buf_addf(out, "--%s\r\n", boundary);
	dkim_buf_adds(out, "Content-Type: text/rfc822-headers\r\n"
	    "Content-Description: Undelivered message headers\r\n");
	if (eight)
		dkim_buf_adds(out, "Content-Transfer-Encoding: 8bit\r\n");
	dkim_buf_adds(out, "\r\n");
	dkim_buf_add(out, bi->msg, hlen);
	if (hlen > 0 && bi->msg[hlen - 1] != '\n')
		dkim_buf_adds(out, "\r\n");
	dkim_buf_addf(out, "\r\n--%s--\r\n", boundary);
	return !out->failed;
}
