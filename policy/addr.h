/*
 * addr.h - RFC 5322 §3.4 address lists: mailboxes (name-addr, addr-spec),
 * groups, and the §4.4 obsolete forms real mail still carries (routes in
 * angle-addrs, CFWS around the dots of local parts and domains, dots in
 * display names, empty list members).
 *
 * addr_parse reads one header field value, as (ptr, len), and says where
 * each mailbox's display name, route, local part and domain are: spans of
 * the value, nothing copied or decoded. The token and word readers below
 * it are the lexer the parser uses, so that callers read those spans (or
 * other structured values, like List-Id's phrase) exactly as it did.
 *
 * What the lexer takes, beyond RFC 5322's letter:
 *   - CR and LF are white space anywhere white space may be, so folded
 *     and unfolded values read alike (RFC 5322 §3.2.2 says CRLF WSP);
 *   - octets from 0x80 up are atext, qtext, ctext and dtext (RFC 6532
 *     §3.2); whether they are UTF-8 is the caller's business;
 *   - a display name may start with '.' (obs-phrase wants a word first);
 *   - the control characters of obs-NO-WS-CTL are taken inside quoted
 *     strings, comments and domain literals, as §4.1 allows.
 * A NUL octet is refused everywhere except right after a backslash (the
 * obs-qp of §4.1).
 *
 * No I/O and no allocation in addr_parse and the readers; addr_compact
 * and addr_unquote append to the caller's buffer. Caps: ADDR_VALUE_MAX
 * octets of value, ADDR_MAILBOX_MAX mailboxes, ADDR_NEST_MAX levels of
 * nested comments; each has its own status.
 */
#ifndef ARCRELAY_ADDR_H
#define ARCRELAY_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ADDR_VALUE_MAX		(128 * 1024)	/* octets of one value: more
						 * than a whole header may
						 * have at most MTAs */
#define ADDR_MAILBOX_MAX	4096	/* mailboxes in one value */
#define ADDR_NEST_MAX		64	/* comments inside comments */

enum addr_status {
	ADDR_OK = 0,
	ADDR_EMPTY,		/* nothing but CFWS and ',': no address */
	ADDR_E_GROUP_OPEN,	/* the value ends inside a group, its ';'
				 * missing; everything before was read */
	ADDR_E_COMMENT,		/* a comment is not closed */
	ADDR_E_PAREN,		/* ')' with no comment open */
	ADDR_E_QUOTE,		/* a quoted string is not closed */
	ADDR_E_LITERAL,		/* a domain literal is not closed */
	ADDR_E_NUL,		/* a NUL octet not quoted by '\' */
	ADDR_E_CHAR,		/* an octet no token starts with (a control
				 * character, ']', '\') */
	ADDR_E_TOKEN,		/* a token no address starts with */
	ADDR_E_PHRASE,		/* a display name with no address after it */
	ADDR_E_LOCAL,		/* no valid local part before '@' */
	ADDR_E_AT,		/* a local part with no '@' after it */
	ADDR_E_DOMAIN,		/* no domain after '@', or an empty label */
	ADDR_E_ANGLE,		/* '<' addr-spec not closed by '>' */
	ADDR_E_ANGLE_EMPTY,	/* "<>" */
	ADDR_E_ROUTE,		/* an obs-route not made of "@domain"s
				 * between ',' and ended by ':' */
	ADDR_E_GROUP_NAME,	/* ':' with no display name before it */
	ADDR_E_GROUP_NESTED,	/* a group inside a group */
	ADDR_E_SEPARATOR,	/* an address followed by something other
				 * than ',' (or ';' in a group) */
	ADDR_E_TOO_LONG,	/* over ADDR_VALUE_MAX octets */
	ADDR_E_TOO_MANY,	/* over ADDR_MAILBOX_MAX mailboxes */
	ADDR_E_TOO_DEEP,	/* comments nested over ADDR_NEST_MAX */
	ADDR_E_ARGS,		/* no value, result or room where some is
				 * said to be */
};

/* Octets [off, off + len) of the value; len 0: not there. A span runs
 * from its first token to its last: CFWS around it is left out, CFWS
 * between its tokens is in. */
struct addr_span {
	size_t off, len;
};

struct addr_mailbox {
	struct addr_span name;	/* display-name (words, dots, quoted
				 * strings, encoded words as they are) */
	struct addr_span route;	/* obs-route, "@" to ":" both included */
	struct addr_span local;	/* local-part */
	struct addr_span domain; /* domain; a literal with its brackets */
	bool angle;		/* written as <...> */
	bool literal;		/* domain is a domain-literal */
	size_t group;		/* 0: not in a group; else group number,
				 * counting from 1 in value order */
};

struct addr_group {
	struct addr_span name;	/* display-name before ':' */
	size_t first;		/* index of its first mailbox in the value */
	size_t count;		/* its mailboxes */
};

struct addr_result {
	enum addr_status status;
	size_t err_off;		/* status an error: where it was found */
	size_t naddress;	/* list members read: mailboxes and groups
				 * at the top level, empty ones not counted */
	size_t nmailbox;	/* mailboxes read, those in groups too */
	size_t ngroup;		/* groups read */
};

/*
 * addr_parse - read the address-list v[0, len) (a field value, folding
 * kept or not). The first mb_max mailboxes go to mb and the first
 * grp_max groups to grp, in value order; the counts in res go on past
 * the room given, so a caller may give none. Returns res->status:
 * ADDR_OK; ADDR_EMPTY when the value holds no address; an error with
 * res->err_off. After an error, the counts and the entries filled are
 * those read before it, each complete; ADDR_E_GROUP_OPEN is found only
 * at the end, so everything was read.
 */
enum addr_status addr_parse(const char *v, size_t len,
    struct addr_mailbox *mb, size_t mb_max, struct addr_group *grp,
    size_t grp_max, struct addr_result *res);

/* addr_status_str - what a status means, in a few words ("quoted string
 * is not closed"); never NULL. */
const char *addr_status_str(enum addr_status st);

/* ----------------------------------------------------------- the lexer */

enum addr_tok {
	ADDR_TOK_END,		/* nothing left but CFWS */
	ADDR_TOK_ATOM,		/* 1*atext */
	ADDR_TOK_QUOTED,	/* a quoted-string, the quotes included */
	ADDR_TOK_LITERAL,	/* a domain-literal, the brackets included */
	ADDR_TOK_SPECIAL,	/* one of < > @ , ; : . */
	ADDR_TOK_BAD,		/* err says what is wrong */
};

struct addr_token {
	enum addr_tok kind;
	size_t off, len;	/* the token's octets; ADDR_TOK_BAD: where
				 * the trouble is */
	bool glued;		/* no CFWS between it and where the read
				 * began */
	enum addr_status err;	/* ADDR_TOK_BAD: why */
};

/*
 * addr_token_next - the token at v[*pos, end), CFWS before it skipped;
 * *pos is moved past it. Every token but ADDR_TOK_END moves *pos on, so
 * a loop until ADDR_TOK_END ends: an ADDR_TOK_BAD token moves it past a
 * stray octet, past a quoted string or literal that holds a NUL, and to
 * end for a comment, quoted string or literal that is not closed (or a
 * comment that holds a NUL or nests too deep).
 */
void addr_token_next(const char *v, size_t end, size_t *pos,
    struct addr_token *t);

/* A word of a display name, local part or domain: a quoted-string, or a
 * run of atoms and dots with no CFWS inside ("Q." in "John Q. Public"). */
struct addr_word {
	size_t off, len;	/* a quoted string with its quotes */
	bool quoted;
};

/*
 * addr_word_next - the next word of v[*pos, end); false at the end or at
 * anything that is not part of a word (another token, an error), with
 * *pos then unspecified. For reading a span: end = off + len, *pos = off.
 */
bool addr_word_next(const char *v, size_t end, size_t *pos,
    struct addr_word *w);

/*
 * addr_compact - the tokens of span s of v appended to out with the CFWS
 * between them dropped: "john . doe" gives "john.doe", "example (c). com"
 * gives "example.com"; quoted strings and literals are kept as they are.
 * False when the span does not lex or out reached its ceiling.
 */
bool addr_compact(const char *v, struct addr_span s, struct dkim_buf *out);

/*
 * addr_unquote - the text of a quoted-string token (p, n), its quotes
 * included, appended to out: quoted-pairs undone, the CR and LF of
 * folding removed (RFC 5322 §3.2.4). False when out reached its ceiling.
 */
bool addr_unquote(const char *p, size_t n, struct dkim_buf *out);

#ifdef __cplusplus
}
#endif

#endif
