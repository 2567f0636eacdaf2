/*
 * authres.h - Authentication-Results (RFC 8601) and ARC-Authentication-
 * Results (RFC 8617 §4.1.1): a tolerant parser, a small data model with a
 * builder, one serializer for both fields, and the "is this header ours?"
 * test used to drop forged incoming Authentication-Results.
 *
 * Untrusted input: header VALUES (the bytes after the colon, folding kept)
 * as (ptr, len). Nothing here reads past len, prints, does I/O or aborts on
 * input. Memory is bounded by AUTHRES_MAX_LEN and the caps below.
 *
 * Ownership: a struct authres and everything hanging off it belong to the
 * caller that got it from authres_parse*() or authres_new(); authres_free()
 * releases all of it. authres_free(NULL) is a no-op.
 */
#ifndef ARCRELAY_AUTHRES_H
#define ARCRELAY_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Hard caps. A header over any of them is refused with the named error. */
#define AUTHRES_MAX_LEN		65536	/* octets in one header value */
#define AUTHRES_MAX_RESULTS	64	/* resinfo per header */
#define AUTHRES_MAX_PROPS	16	/* ptype.property=value per resinfo */
#define AUTHRES_MAX_SKIPS	8	/* skipped resinfo recorded (all counted) */
#define AUTHRES_MAX_INSTANCE	50	/* ARC i= range is 1..50 */

/* Why a parse failed, finer than the dkim_status it maps to. */
enum authres_err {
	AUTHRES_E_NONE = 0,
	AUTHRES_E_ARG,			/* DKIM_E_ARG: NULL out or value */
	AUTHRES_E_NOMEM,		/* DKIM_E_NOMEM */
	AUTHRES_E_EMPTY,		/* DKIM_E_EMPTY: nothing but CFWS */
	AUTHRES_E_TOO_LONG,		/* DKIM_E_LIMIT: > AUTHRES_MAX_LEN */
	AUTHRES_E_TOO_MANY_RESULTS,	/* DKIM_E_LIMIT: > AUTHRES_MAX_RESULTS */
	AUTHRES_E_TOO_MANY_PROPS,	/* DKIM_E_LIMIT: > AUTHRES_MAX_PROPS */
	AUTHRES_E_BAD_INSTANCE,		/* DKIM_E_SYNTAX: AAR without i=1..50; */
	AUTHRES_E_BAD_AUTHSERV_ID,	/* DKIM_E_SYNTAX: authserv-id or version
					 * malformed, or junk right after them */
};

/* authres_err_str - a short constant name ("too many results"). */
const char *authres_err_str(enum authres_err e);

/* struct authres.flags */
#define AUTHRES_F_NO_AUTHSERV_ID 0x01	/* header began with ';' or with a
					 * method (Microsoft 365 style) */
#define AUTHRES_F_UNKNOWN_VERSION 0x02	/* version other than 1 (§2.6: do
					 * not act on such results) */

/* struct authres_result.flags */
#define AUTHRES_R_UNKNOWN_METHOD 0x01	/* not in the IANA methods registry */
#define AUTHRES_R_UNKNOWN_RESULT 0x02	/* not a result code of that method */
#define AUTHRES_R_UNKNOWN_VERSION 0x04	/* method version other than 1 */

/* struct authres_prop.flags */
#define AUTHRES_P_UNKNOWN_PTYPE	0x01	/* not smtp/header/body/policy,
					 * or missing ("action=none") */

struct authres_prop {
	char *ptype;		/* owned, lowercase; "" when the header gave
				 * "property=value" with no ptype */
	char *property;		/* owned, lowercase */
	char *value;		/* owned; quotes and folding removed, except
				 * an addr-spec's quoted local-part */
	unsigned flags;		/* AUTHRES_P_* */
};

struct authres_result {
	char *method;		/* owned, lowercase ("dkim") */
	unsigned method_version;/* "dkim/1": 1; 0 when absent (means 1) */
	char *result;		/* owned, lowercase ("pass") */
	char *reason;		/* owned or NULL: reason=... */
	char *comment;		/* owned or NULL: the first comment right
				 * after the result, unfolded, unescaped */
	struct authres_prop *p;	/* owned array */
	size_t np;
	unsigned flags;		/* AUTHRES_R_* */
};

/* A resinfo the parser could not read and left out, as a span of the
 * value it was given. */
struct authres_skip {
	size_t off;
	size_t len;
	const char *why;	/* static text, not owned */
};

struct authres {
	char *authserv_id;	/* owned; "" when the header had none */
	unsigned version;	/* after the authserv-id; 0 when absent */
	unsigned instance;	/* AAR i=; 0 for Authentication-Results */
	bool none;		/* "authserv-id; none" */
	struct authres_result *r; /* owned; AUTHRES_MAX_RESULTS slots taken
				 * at the first result, so result pointers
				 * stay valid until authres_free() */
	size_t n;
	unsigned flags;		/* AUTHRES_F_* */
	size_t nskip;		/* resinfo skipped; the first
				 * AUTHRES_MAX_SKIPS are in skip[] */
	struct authres_skip skip[AUTHRES_MAX_SKIPS];
};

/* authres_parse flags */
#define AUTHRES_PARSE_AAR	0x01	/* value starts with "i=N;" */

/*
 * authres_parse - parse an Authentication-Results value. Keywords (method,
 * result, ptype, property) come back lowercase; values as written, with
 * quoting and folding undone. Comments are dropped except the first one
 * after each result. A resinfo that cannot be read is skipped and recorded
 * in skip[]; the header fails only when its start (authserv-id, version,
 * AAR instance) is broken or a cap is hit. On success *out is the caller's;
 * on failure it is NULL and why says what and where.
 */
enum dkim_status authres_parse(const char *value, size_t len,
    struct authres **out, char *why, size_t whylen);

/* authres_parse_aar - the same for an ARC-Authentication-Results value,
 * which begins "i=N;" (N in 1..50) before the authserv-id. */
enum dkim_status authres_parse_aar(const char *value, size_t len,
    struct authres **out, char *why, size_t whylen);

/* authres_parse_ex - both of the above, with AUTHRES_PARSE_* flags and the
 * precise error in *err (err may be NULL). */
enum dkim_status authres_parse_ex(const char *value, size_t len,
    unsigned flags, struct authres **out, enum authres_err *err,
    char *why, size_t whylen);

/*
 * authres_format - append one header VALUE (no field name, no CRLF, not
 * folded) to out: " authserv-id; method=result ..." or, with arc, the AAR
 * form " i=N; authserv-id; ..." where N is instance (or ar->instance when
 * instance is 0). Results are "method[/v]=result [(comment)]
 * [reason="..."] [ptype.property=value ...]"; comments only when comments
 * is set and never for AAR; values are quoted unless they are tokens or
 * [local-part]@domain; no results gives "; none". Control characters in
 * comments and reasons are written as spaces. Returns false, and leaves
 * out as it was, when something cannot be written safely (empty
 * authserv-id, a keyword that is not one, a control character in the id
 * or a value, instance out of range) or out hit its ceiling.
 */
bool authres_format(const struct authres *ar, bool arc, unsigned instance,
    bool comments, struct dkim_buf *out);

/*
 * authres_is_ours - does this Authentication-Results value claim
 * authserv_id (case-insensitive, CFWS and quoting ignored)? Only the
 * authserv-id is looked at: a header that names us and is broken after
 * that still claims to be ours, so it is removed rather than passed on.
 * A value without a recognisable authserv-id is not ours. Never fails.
 */
bool authres_is_ours(const char *value, size_t len, const char *authserv_id);

/* ---------------------------------------------------------------- builder */

/* authres_new - an empty result set for authserv_id (copied). NULL on
 * allocation failure or a NULL id. */
struct authres *authres_new(const char *authserv_id);

/*
 * authres_add_result - append "method=result" with an optional reason
 * (NULL for none); method and result are stored lowercase. Returns the new
 * result, owned by ar and valid until authres_free(ar), or NULL when
 * AUTHRES_MAX_RESULTS is reached, an argument is NULL, or memory runs out.
 */
struct authres_result *authres_add_result(struct authres *ar,
    const char *method, const char *result, const char *reason);

/* authres_add_prop - append ptype.property=value to r (ptype may be "").
 * false when AUTHRES_MAX_PROPS is reached or on allocation failure. */
bool authres_add_prop(struct authres_result *r, const char *ptype,
    const char *property, const char *value);

/* authres_set_comment - replace r's comment (NULL removes it). */
bool authres_set_comment(struct authres_result *r, const char *comment);

/* authres_prop_get - the value of the first ptype.property of r, or NULL.
 * "smtp.mailfrom" also finds the older spelling "smtp.mfrom". */
const char *authres_prop_get(const struct authres_result *r,
    const char *ptype, const char *property);

void authres_free(struct authres *ar);

#ifdef __cplusplus
}
#endif

#endif
