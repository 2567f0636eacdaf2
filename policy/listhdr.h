/*
 * listhdr.h - the header changes a mailing list makes to a post: the
 * subject tag, From rewriting (DMARC mitigation), Reply-To, and the
 * RFC 2369 / RFC 2919 / RFC 8058 List-* fields.
 *
 * listhdr_apply is a pure function over a whole CRLF message. Every header
 * field it does not mean to change keeps its exact bytes and its place;
 * the body is copied as it is. The choices it makes:
 *
 *   - Subject and From are replaced where they stand. A Reply-To (list
 *     mode), List-Id, List-Post, List-Unsubscribe, List-Unsubscribe-Post or
 *     Precedence field already present (an upstream list's) is replaced by
 *     ours at the place of its first instance; further instances of that
 *     name are dropped. Those five names are the list's: an upstream
 *     List-Unsubscribe(-Post) goes even when we have no unsubscribe URI
 *     to offer, since it would unsubscribe the reader from another list.
 *     Other List-* fields (List-Help, List-Archive, ...) are kept: we
 *     have nothing to put in their place.
 *   - Fields that were not there are appended at the end of the header,
 *     in this order: Subject, From, X-Original-From, Reply-To, List-Id,
 *     List-Post, List-Unsubscribe, List-Unsubscribe-Post, Precedence.
 *   - When From is rewritten, each From field's value goes, byte for byte,
 *     into an X-Original-From field (appended); X-Original-From fields
 *     already present are dropped, so the one left names who sent it to
 *     us. A second From field is dropped (its value is kept in its own
 *     X-Original-From): the list is the one author now.
 *
 * Untrusted input: the whole message, as (ptr, len); the options are the
 * operator's and are checked too (no control characters, addresses and
 * URIs of a safe shape), since they end up inside header fields.
 * SECURITY: nothing decoded from the message (RFC 2047 words may carry
 * CR, LF or NUL) is written back without being made printable; every
 * loop is bounded by the input length and the caps below.
 */
#ifndef ARCRELAY_LISTHDR_H
#define ARCRELAY_LISTHDR_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LISTHDR_OPT_MAX		512	/* octets in one option string */
#define LISTHDR_TAG_MAX		128	/* octets in subject_tag */
#define LISTHDR_NAME_MAX	256	/* octets of the author's display name
					 * kept in the rewritten From */
#define LISTHDR_LINE_MAX	998	/* RFC 5322 §2.1.1: a longer subject
					 * line is not refolded, the tag gets a
					 * line of its own */
#define LISTHDR_COLUMNS		78	/* where new text is folded */

enum listhdr_reply_to {
	LISTHDR_REPLY_LIST,	/* Reply-To: the list (replacing one) */
	LISTHDR_REPLY_AUTHOR,	/* with From rewritten: the author's From
				 * value, unless the author set a Reply-To */
	LISTHDR_REPLY_NONE,	/* Reply-To left alone */
};

struct listhdr_opts {
	const char *list_addr;	/* "announce@lists.example" */
	const char *list_name;	/* display name, e.g. "Announce" (NULL: the
				 * local part of list_addr) */
	const char *list_id;	/* List-Id value, e.g. "Announce
				 * <announce.lists.example>" (NULL: derived
				 * "<local.domain>" from list_addr) */
	const char *subject_tag; /* e.g. "[announce]" or NULL */
	bool rewrite_from;	/* caller decided (DMARC policy or always) */
	enum listhdr_reply_to reply_to;
	const char *unsub_mailto; /* "announce-unsubscribe@lists.example" (or
				   * a "mailto:" URI) or NULL */
	const char *unsub_https; /* "https://lists.example/u/announce" or
				  * NULL */
};

/*
 * listhdr_apply - msg with the list's header changes, the whole message
 * appended to out. Returns false, with the reason in why, when an option
 * is unusable, when msg is not a message (dkim_msg_parse's caps apply),
 * or when out reached its ceiling; nothing useful is in out then.
 */
bool listhdr_apply(const struct listhdr_opts *o, const char *msg, size_t len,
    struct dkim_buf *out, char *why, size_t whylen);

/*
 * listhdr_has_list_id - does msg carry a List-Id field whose list
 * identifier (the <...> part, compared case-insensitively) equals that of
 * o? For loop detection; false when msg does not parse or o is unusable.
 */
bool listhdr_has_list_id(const struct listhdr_opts *o, const char *msg,
    size_t len);

/*
 * listhdr_list_id_check - NULL when v can be a list's List-Id value (an
 * optional phrase and one <list-label.namespace>, RFC 2919; printable
 * ASCII, at most LISTHDR_OPT_MAX octets), else the reason (a static
 * string). listhdr_apply makes this very check; a configuration makes it
 * at load.
 */
const char *listhdr_list_id_check(const char *v);

/*
 * listhdr_subject_tag_check - NULL when tag can be a subject tag
 * (printable ASCII, 1 to LISTHDR_TAG_MAX octets, no space at either end),
 * else the reason (a static string). The check listhdr_apply and
 * listhdr_subject make.
 */
const char *listhdr_subject_tag_check(const char *tag);

/*
 * listhdr_subject - the Subject value with the tag added. value/len is
 * the raw value after "Subject:" (folding kept, RFC 2047 words allowed).
 * When the decoded value already holds the tag anywhere (ASCII, compared
 * case-insensitively), the value is appended unchanged and *changed is
 * false. Otherwise "tag " goes in front of the first word, as plain text
 * (never inside an encoded word), and only the line it lands on is
 * refolded at LISTHDR_COLUMNS. Returns false for a tag that is not
 * printable ASCII (or too long), a value holding NUL, or CR or LF other
 * than as folding, or a buffer that reached its ceiling.
 */
bool listhdr_subject(const char *tag, const char *value, size_t len,
    struct dkim_buf *out, bool *changed);

/*
 * listhdr_untag_subject - the reverse, for diagnose: a value v such that
 * listhdr_subject(tag, v) gives value back with the tag added. The first
 * occurrence of the tag and the space after it are removed, and lines
 * that listhdr_subject would have folded are joined again. When several
 * originals give the same value (a fold that was there, or one we made),
 * the one with the most joins is given: a sender folding at 78 columns
 * would not have folded earlier. False when no such value exists (the
 * tag is missing, or was not put there by listhdr_subject).
 */
bool listhdr_untag_subject(const char *tag, const char *value, size_t len,
    struct dkim_buf *out);

#ifdef __cplusplus
}
#endif

#endif
