/*
 * srs.h - the Sender Rewriting Scheme: the envelope sender arcrelay puts
 * on a forwarded message, and the way back for the bounce.
 *
 * The addresses are those of Perl's Mail::SRS 0.31 in its default class,
 * Mail::SRS::Guarded, with the default parameters (HashLength 4, initial
 * separator '=', timestamps of two base32 characters counting days modulo
 * 1024), so that a host running Mail::SRS with the same secret reverses
 * ours and we reverse its:
 *
 *   SRS0=HHHH=TT=orig.host=orig-user@srs.domain
 *   SRS1=HHHH=first.fwd==HHHH=TT=orig.host=orig-user@srs.domain
 *
 * HHHH is the first characters of base64(HMAC-SHA1(secret, lowercased
 * fields concatenated)); see srs.c for which fields, and tests/srs/README.md
 * for where this code deliberately departs from Mail::SRS.
 *
 * Nothing here keeps state, resolves or logs; the clock is handed in.
 *
 * Untrusted input: the sender (MAIL FROM of the message being forwarded)
 * and, above all, the recipient of a bounce, which anyone may send to our
 * SRS domain. Both arrive as NUL-terminated strings without angle
 * brackets; no more than SRS_ADDR_MAX octets are ever read from them.
 */
#ifndef ARCRELAY_SRS_H
#define ARCRELAY_SRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest address handled, counting its NUL: an input or a result must be
 * at most SRS_ADDR_MAX - 1 octets, so char out[SRS_ADDR_MAX] always does. */
#define SRS_ADDR_MAX 512

/* Room for the why sentence of srs_reverse(). */
#define SRS_WHY_MAX 160

struct srs_config {
	const char *domain;		/* our SRS domain, e.g. "fwd.example.net" */
	const char *const *secrets;	/* first signs; all verify (rotation) */
	size_t nsecrets;
	unsigned max_age_days;		/* 0: 21 */
};

enum srs_rc {
	SRS_OK = 0,
	SRS_NOT_SRS,		/* reverse: not an SRS address at all */
	SRS_MALFORMED,		/* looks like SRS0/SRS1 but does not parse */
	SRS_BAD_HASH,		/* forged: no secret gives this hash */
	SRS_EXPIRED,		/* timestamp older than max_age (or in the future) */
	SRS_TOOLONG,		/* result would not fit SRS_ADDR_MAX or outlen */
	SRS_BAD_INPUT,		/* forward: sender is not local@domain, or null
				 * sender; either: the config is unusable
				 * (forward: or HMAC-SHA1 failed) */
};

/*
 * srs_forward - the envelope sender to use when forwarding a message from
 * sender, written to out (NUL-terminated; "" on failure). now is the time
 * in seconds since the epoch; only its day counts.
 *
 *   - an ordinary sender user@host becomes SRS0=HHHH=TT=host=user@domain;
 *   - an SRS0 address of another forwarder, SRS0<sep>rest@host, becomes
 *     SRS1=HHHH=host=<sep>rest@domain (we become the second hop);
 *   - an SRS1 address, SRS1<sep>xxxx=first=<sep>rest@host, becomes
 *     SRS1=HHHH=first=<sep>rest@domain: as in Mail::SRS::Guarded the first
 *     forwarder is kept, so the bounce skips the hops in between. An SRS1
 *     local part that does not split that way is treated as ordinary;
 *   - a sender whose host is our SRS domain (any case) is copied
 *     unchanged with SRS_OK: it already passes SPF for us. This is
 *     Mail::SRS's behaviour without AlwaysRewrite, and it keeps our own
 *     SRS addresses from being wrapped in SRS1 addresses of ourselves.
 *
 * SRS_BAD_INPUT for the null sender ("" or "<>") and for anything that is
 * not local@host with exactly one '@', a non-empty local part and a host
 * without '='; also for spaces, control characters, quotes, backslashes
 * and angle brackets anywhere (a quoted local part cannot be embedded in
 * ours unquoted). The caller then forwards with the sender it has.
 * SRS_TOOLONG when the sender or the result exceeds SRS_ADDR_MAX - 1
 * octets or outlen - 1.
 */
enum srs_rc srs_forward(const struct srs_config *c, const char *sender,
    int64_t now, char *out, size_t outlen);

/*
 * srs_reverse - the address a bounce sent to addr (an SRS address at our
 * domain) must go to: for SRS0 the original sender, for SRS1 the SRS0
 * address at the first forwarder. Written to out ("" on failure); why
 * (may be NULL) gets one sentence for the 550 reply or the log line. It
 * never quotes bytes of addr, so it is safe to send and to log as is.
 *
 * The hash is accepted when it is a prefix of 4 to 27 characters of the
 * HMAC under any listed secret, compared ignoring ASCII case: RFC 5321
 * says local parts are case-sensitive, but some MTAs smash case anyway,
 * and Mail::SRS (its "Case Sensitivity" notes) accepts such a match too,
 * which leaves about 21 of the hash's 24 bits. The HMAC is over lowercased
 * fields, and the timestamp is base32, so both survive the smashing. An
 * SRS0 timestamp must be at most max_age days old; one from the future is
 * expired as well. SRS1 addresses carry no timestamp (the SRS0 inside is
 * checked by the forwarder that made it).
 *
 * The domain of addr is not compared with c->domain: the caller routes by
 * domain, and the hash is what makes the address ours.
 */
enum srs_rc srs_reverse(const struct srs_config *c, const char *addr,
    int64_t now, char *out, size_t outlen, char *why, size_t whylen);

/* srs_is_srs - does the local part start with SRS0 or SRS1 (any case)
 * followed by one of the separators '=', '+', '-'? Cheap, for routing;
 * says nothing about whether the rest parses. NULL: false. */
bool srs_is_srs(const char *addr);

/* srs_rc_str - a short lowercase name for rc ("ok", "bad-hash", ...). */
const char *srs_rc_str(enum srs_rc rc);

#ifdef __cplusplus
}
#endif

#endif
