/*
 * footer.h - the mailing-list footer, added the way MIME allows without
 * changing a byte of what the author wrote.
 *
 * Three shapes, chosen from the top-level Content-Type:
 *   - a single text/plain part (also a message without Content-Type, RFC
 *     2045 §5.2) gets the footer appended inside its own transfer encoding
 *     (7bit, 8bit, binary, quoted-printable, base64) when the charset can
 *     carry it; with format=flowed (RFC 3676) the footer's lines lose
 *     their trailing spaces (but "-- ") and are space-stuffed, and a
 *     last paragraph that ends in a soft break is ended first, so that a
 *     flowed reader shows the text as before and the footer as written;
 *   - multipart/mixed gets a new text/plain part just before its closing
 *     delimiter; every other byte stays where it was;
 *   - anything else (other multiparts, text/html, application/..., and
 *     every malformed or over-limit structure) is wrapped: the Content-*
 *     fields and the body move unchanged into the first part of a new
 *     multipart/mixed whose second part is the footer.
 *
 * Untrusted input: the whole message, as (ptr, len). The footer comes from
 * the configuration (a NUL-terminated UTF-8 string). Nothing here does I/O,
 * prints or aborts on input; memory is bounded by the caps below and by
 * the ceiling of the output buffer.
 */
#ifndef ARCRELAY_FOOTER_H
#define ARCRELAY_FOOTER_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Hard caps. A message over one of them is wrapped, and why names it. */
#define FOOTER_MAX_DEPTH	16	/* multipart levels, the top one too */
#define FOOTER_MAX_PARTS	1000	/* body parts examined, all levels */
#define FOOTER_MAX_PART_HEADER	65536	/* octets of one part's header */
#define FOOTER_MAX_PART_FIELDS	256	/* fields in one part's header */
#define FOOTER_MAX_BOUNDARY	200	/* boundary octets (RFC 2046: 70) */
#define FOOTER_MAX_COMMENTS	32	/* nested comments in a MIME field */
/* The footer itself; a longer one is refused (footer_apply is false). */
#define FOOTER_MAX_TEXT		65536

enum footer_how {
	FOOTER_APPENDED,	/* appended inside the single text/plain part */
	FOOTER_NEW_PART,	/* a new part before the closing boundary of
				 * multipart/mixed */
	FOOTER_WRAPPED,		/* the original wrapped in multipart/mixed */
};

/*
 * footer_apply - append to out the whole message msg (len bytes, CRLF line
 * ends) with footer added. Lines of footer end in "\n" or "\r\n" (a lone
 * "\r" counts as a line end too); they are written with CRLF, and a last
 * line without an end gets one.
 *
 * *how (if how is not NULL) says what was done. why (if not NULL) receives
 * "" when the shape of the message decided, or the reason a message that
 * could have taken the footer in place was wrapped instead ("boundary
 * \"b1\" never found in the body", "more than 1000 MIME parts", ...).
 *
 * Returns false, with why saying so and nothing promised about out, only
 * when the input is not a message (dkim_msg_parse refuses its header: a
 * bare LF, a line that is not a field, a header over the dkim defaults),
 * when the footer is empty, longer than FOOTER_MAX_TEXT or not UTF-8, or
 * when out reached its ceiling. A header without the empty line is a
 * message with an empty body.
 */
bool footer_apply(const char *msg, size_t len, const char *footer,
    struct dkim_buf *out, enum footer_how *how, char *why, size_t whylen);

/* footer_how_str - "appended", "new part" or "wrapped". */
const char *footer_how_str(enum footer_how h);

#ifdef __cplusplus
}
#endif

#endif
