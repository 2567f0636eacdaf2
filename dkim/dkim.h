/*
 * dkim.h - the public interface of libdkim: the message model, tag lists,
 * canonicalization, and DKIM signing and verification (RFC 6376, RFC 8463,
 * RFC 8301).
 *
 * The library takes bytes and returns structures. It never does I/O, never
 * resolves names (keys arrive through dkim_lookup_fn), never prints and never
 * aborts on input. Everything that came off the wire travels as (ptr, len);
 * no function walks to a NUL inside message data.
 *
 * Ownership: every type with a _free function is owned by whoever received
 * it from the matching _new/_parse call; _free(NULL) is a no-op.
 */
#ifndef ARCRELAY_DKIM_H
#define ARCRELAY_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status */

enum dkim_status {
	DKIM_OK = 0,
	DKIM_E_NOMEM,		/* allocation failed */
	DKIM_E_EMPTY,		/* empty input */
	DKIM_E_LINE_TOO_LONG,	/* a header line exceeds dkim_limits.max_line */
	DKIM_E_TOO_MANY_HEADERS,/* more fields than dkim_limits.max_headers */
	DKIM_E_HEADER_TOO_BIG,	/* header block exceeds max_header_bytes */
	DKIM_E_MALFORMED,	/* input is not an RFC 5322 message */
	DKIM_E_SYNTAX,		/* tag-list, signature or key record syntax */
	DKIM_E_KEY,		/* key unusable for the requested operation */
	DKIM_E_CRYPTO,		/* OpenSSL refused an operation */
	DKIM_E_LIMIT,		/* some other hard cap was hit */
	DKIM_E_ARG,		/* caller passed an invalid argument */
};

/* dkim_status_str - a short constant name for a status ("line too long"). */
const char *dkim_status_str(enum dkim_status st);

/* Callers that want a reason pass a buffer of this size (or any size). */
#define DKIM_WHY_MAX 192

/* ------------------------------------------------------- growable buffer */

/*
 * dkim_buf - a byte buffer that grows up to a ceiling. Once an append fails
 * (ceiling or allocation), the buffer is marked failed and every later
 * append is ignored, so builders can check once at the end.
 */
struct dkim_buf {
	char *p;	/* owned; always NUL-terminated when len > 0 */
	size_t len;
	size_t cap;
	size_t max;	/* ceiling in bytes; 0 means 64 MiB */
	bool failed;
};

void dkim_buf_init(struct dkim_buf *b, size_t max);
bool dkim_buf_add(struct dkim_buf *b, const void *p, size_t n);
bool dkim_buf_addc(struct dkim_buf *b, char c);
bool dkim_buf_adds(struct dkim_buf *b, const char *s);
bool dkim_buf_addf(struct dkim_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void dkim_buf_reset(struct dkim_buf *b);
/* dkim_buf_take - hand the bytes to the caller (free() them); buf is reset. */
char *dkim_buf_take(struct dkim_buf *b, size_t *len);
void dkim_buf_free(struct dkim_buf *b);

/* --------------------------------------------------------- message model */

struct dkim_limits {
	size_t max_line;	 /* longest header line, octets without CRLF */
	size_t max_headers;	 /* most header fields */
	size_t max_header_bytes; /* largest header block, including CRLFs */
};

#define DKIM_DEFAULT_MAX_LINE		65536
#define DKIM_DEFAULT_MAX_HEADERS	1000
#define DKIM_DEFAULT_MAX_HEADER_BYTES	(1024 * 1024)

/* One header field. All pointers point into the message's bytes. */
struct dkim_field {
	const char *name;	/* field name, trailing WSP before ':' excluded */
	size_t name_len;
	const char *raw;	/* the whole field, folding kept, final CRLF not */
	size_t raw_len;
	size_t value_off;	/* offset in raw of the first byte after ':' */
	size_t offset;		/* offset of raw in the message */
};

struct dkim_msg {
	const char *data;	/* the caller's bytes: not owned, must outlive */
	size_t len;
	struct dkim_field *fields; /* owned */
	size_t nfields;
	const char *body;	/* bytes after the empty line (may be len 0) */
	size_t body_len;
	size_t body_off;
};

/*
 * dkim_msg_parse - split a CRLF message into header fields and body. Bytes
 * are neither copied nor altered. A header section that ends without an empty
 * line leaves an empty body. lim may be NULL for the defaults. why, if not
 * NULL, receives a reason naming the line on failure.
 */
enum dkim_status dkim_msg_parse(const char *p, size_t len,
    const struct dkim_limits *lim, struct dkim_msg **out,
    char *why, size_t whylen);
void dkim_msg_free(struct dkim_msg *m);

/* dkim_has_8bit - does p hold an octet above 127 (RFC 6152 8-bit data)? */
bool dkim_has_8bit(const char *p, size_t n);

/* dkim_field_is - case-insensitive comparison of a field's name. */
bool dkim_field_is(const struct dkim_field *f, const char *name);
/* dkim_field_is_n - the same for a name of n octets (no strlen). */
bool dkim_field_is_n(const struct dkim_field *f, const char *name, size_t n);

/* dkim_crlf_from_lf - helper for CLI boundaries: if p holds no CRLF at all,
 * return a malloc'd copy with every LF turned into CRLF and set *converted;
 * otherwise return NULL and leave *converted false. */
char *dkim_crlf_from_lf(const char *p, size_t len, size_t *outlen,
    bool *converted);

/* ------------------------------------------------------------ tag lists */

#define DKIM_MAX_TAGS 64

struct dkim_tag {
	const char *name;	/* points into the parsed text */
	size_t name_len;
	const char *value;	/* leading and trailing FWS excluded */
	size_t value_len;
	size_t value_off;	/* offset of value from the start of the text */
};

struct dkim_taglist {
	struct dkim_tag tags[DKIM_MAX_TAGS];
	size_t n;
};

/*
 * dkim_tags_parse - parse an RFC 6376 §3.2 tag-list strictly: tag names are
 * ALPHA *(ALPHA / DIGIT / "_"), values are VALCHARs separated by FWS, no
 * duplicate names, no empty tag-specs (a single trailing ';' and trailing
 * whitespace are allowed). Fails with DKIM_E_SYNTAX and a reason.
 */
enum dkim_status dkim_tags_parse(const char *p, size_t len,
    struct dkim_taglist *out, char *why, size_t whylen);
const struct dkim_tag *dkim_tags_get(const struct dkim_taglist *tl,
    const char *name);

/* ------------------------------------------------------ canonicalization */

enum dkim_canon { DKIM_CANON_SIMPLE = 0, DKIM_CANON_RELAXED = 1 };

const char *dkim_canon_str(enum dkim_canon c);

/* A sink receives canonical bytes (to hash, or to collect for display). */
typedef void (*dkim_sink_fn)(void *arg, const void *p, size_t n);

/*
 * dkim_canon_header - append the canonical form of one field (raw bytes
 * without the final CRLF) to out. With with_crlf, CRLF is appended as the
 * hash of a signed field requires; the signature field itself is hashed
 * without it (RFC 6376 §3.7).
 */
bool dkim_canon_header(enum dkim_canon c, const char *raw, size_t len,
    bool with_crlf, struct dkim_buf *out);

/*
 * Streaming body canonicalizer. Feed the body in chunks split anywhere; the
 * sink sees exactly the bytes a one-shot canonicalization would produce.
 * limit < 0 means no limit; otherwise at most limit canonical octets reach
 * the sink (the l= tag). dkim_bodycanon_length reports all canonical
 * octets produced, limit or not, after finish.
 */
struct dkim_bodycanon;

struct dkim_bodycanon *dkim_bodycanon_new(enum dkim_canon c, int64_t limit,
    dkim_sink_fn sink, void *arg);
void dkim_bodycanon_feed(struct dkim_bodycanon *bc, const char *p, size_t n);
void dkim_bodycanon_finish(struct dkim_bodycanon *bc);
uint64_t dkim_bodycanon_length(const struct dkim_bodycanon *bc);
void dkim_bodycanon_free(struct dkim_bodycanon *bc);

/*
 * dkim_body_hash - one-shot: canonicalize body, hash with md, write the
 * digest to out (EVP_MAX_MD_SIZE bytes available) and its size to *outlen.
 * *canon_len, if not NULL, receives the full canonical length.
 */
enum dkim_status dkim_body_hash(enum dkim_canon c, const EVP_MD *md,
    const char *body, size_t len, int64_t limit, unsigned char *out,
    unsigned int *outlen, uint64_t *canon_len);

/*
 * dkim_body_prefix_match - the longest prefix of body that ends at a line
 * end (after a CRLF), or is empty, or is the whole body, whose body hash
 * with canonicalization c, digest md and limit (< 0: none) equals want.
 * One pass: the hash state is copied and finished at each line end as if
 * the body ended there (trailing empty lines dropped, the final CRLF
 * added). *found says whether any prefix matched; *prefix_len is its
 * length in octets of body.
 */
enum dkim_status dkim_body_prefix_match(enum dkim_canon c, const EVP_MD *md,
    const char *body, size_t len, int64_t limit, const unsigned char *want,
    size_t wantlen, bool *found, size_t *prefix_len);

/* ------------------------------------------------------------ signatures */

enum dkim_alg {
	DKIM_ALG_RSA_SHA256 = 0,
	DKIM_ALG_ED25519_SHA256,
	DKIM_ALG_RSA_SHA1,	/* parsed, never accepted (RFC 8301) */
};

const char *dkim_alg_str(enum dkim_alg a);
/* dkim_alg_parse - returns false for an algorithm we do not implement. */
bool dkim_alg_parse(const char *p, size_t n, enum dkim_alg *out);

/* dkim_alg_for_key - ed25519-sha256 for an Ed25519 key, else rsa-sha256. */
enum dkim_alg dkim_alg_for_key(EVP_PKEY *key);

/* Which header the tag list came from; the rules differ (RFC 8617 §4.1). */
enum dkim_sig_kind {
	DKIM_SIG_DKIM = 0,	/* DKIM-Signature */
	DKIM_SIG_ARC_MS,	/* ARC-Message-Signature: no v=, i= instance */
	DKIM_SIG_ARC_SEAL,	/* ARC-Seal: i, a, b, d, s, cv, t; no h= */
};

enum dkim_cv { DKIM_CV_NONE = 0, DKIM_CV_PASS, DKIM_CV_FAIL };

/* A parsed signature is one allocation: "owned" members below live in
 * the same block and go with dkim_sig_free. */
struct dkim_sig {
	enum dkim_sig_kind kind;
	enum dkim_alg alg;
	char *alg_text;		/* owned: a= as written */
	enum dkim_canon hcanon, bcanon;
	char *d;		/* owned, as written */
	char *s;		/* owned */
	char *i;		/* owned; DKIM: defaults to "@d" */
	unsigned instance;	/* ARC: i= */
	enum dkim_cv cv;	/* ARC-Seal: cv= */
	char **h;		/* owned: names as written, FWS trimmed */
	size_t nh;
	unsigned char *b;	/* owned: decoded signature */
	size_t b_len;
	char *b_text;		/* owned: b= base64 with FWS removed */
	unsigned char *bh;	/* owned: decoded body hash (not in ARC-Seal) */
	size_t bh_len;
	bool has_l;
	uint64_t l;
	bool has_t;
	int64_t t;
	bool has_x;
	int64_t x;
	/* b= value in the field's raw bytes: [b_off, b_end) starts right
	 * after '=' and ends after the last base64 octet. */
	size_t b_off, b_end;
};

/*
 * dkim_sig_parse - parse and validate the value of a signature field.
 * Required tags, value syntax, i= within d=, x > t and From in h= are
 * checked here. On DKIM_E_SYNTAX, why holds the reason (for example
 * "i= not within d=", "From not signed", "missing tag bh=").
 */
enum dkim_status dkim_sig_parse(const struct dkim_field *f,
    enum dkim_sig_kind kind, struct dkim_sig **out, char *why, size_t whylen);
/* dkim_sig_from_tags - the same, for a caller that has already parsed
 * the field's value into tl (f is still needed for offsets). */
enum dkim_status dkim_sig_from_tags(const struct dkim_field *f,
    enum dkim_sig_kind kind, const struct dkim_taglist *tl,
    struct dkim_sig **out, char *why, size_t whylen);
void dkim_sig_free(struct dkim_sig *s);

/* ----------------------------------------------------------- key records */

enum dkim_keytype { DKIM_KEY_RSA = 0, DKIM_KEY_ED25519 };

struct dkim_key {
	enum dkim_keytype type;
	EVP_PKEY *pkey;		/* owned; NULL when revoked */
	bool revoked;		/* p= empty */
	bool testing;		/* t=y */
	bool strict;		/* t=s: i= domain must equal d= */
	bool allow_sha256;	/* h= absent or lists sha256 */
	bool allow_sha1;
	bool email_ok;		/* s= absent, "*" or lists "email" */
	unsigned bits;
};

/*
 * dkim_key_parse - parse a key record (the concatenated TXT strings) into a
 * usable key. DKIM_E_SYNTAX with a reason for any record problem.
 */
enum dkim_status dkim_key_parse(const char *p, size_t len,
    struct dkim_key **out, char *why, size_t whylen);
void dkim_key_free(struct dkim_key *k);

/* --------------------------------------------------------- key lookups */

enum dkim_lookup_rc {
	DKIM_LOOKUP_OK = 0,	/* records were added to the dkim_txt */
	DKIM_LOOKUP_NOTFOUND,	/* NXDOMAIN or no TXT at the name */
	DKIM_LOOKUP_TEMPFAIL,	/* timeout, SERVFAIL: try again later */
	DKIM_LOOKUP_PERMFAIL,	/* any other permanent failure */
};

/* A set of TXT records, each the concatenation of its strings. */
struct dkim_txt;

/* dkim_txt_add_record - start a new record; following strings go to it. */
bool dkim_txt_add_record(struct dkim_txt *t);
/* dkim_txt_add_string - append one character-string to the last record. */
bool dkim_txt_add_string(struct dkim_txt *t, const char *p, size_t n);

struct dkim_txt *dkim_txt_new(void);
size_t dkim_txt_count(const struct dkim_txt *t);
const char *dkim_txt_get(const struct dkim_txt *t, size_t i, size_t *len);
void dkim_txt_free(struct dkim_txt *t);

/* The callback the library asks for TXT records (qname has no final dot). */
typedef enum dkim_lookup_rc (*dkim_lookup_fn)(void *arg, const char *qname,
    struct dkim_txt *out);

/*
 * dkim_key_fetch - look up selector._domainkey.domain through the
 * callback and parse the first record that is a DKIM key. On failure *res
 * is filled with the RFC 8601 result and reason a verifier reports.
 */
enum dkim_result;
struct dkim_key *dkim_key_fetch(dkim_lookup_fn fn, void *arg,
    const char *selector, const char *domain, enum dkim_result *res,
    char *why, size_t whylen);

/*
 * A cache of parsed keys by record text. Decoding a DER public key costs
 * OpenSSL 3 several times an RSA verification, and a relay sees the same
 * few keys all day. The cache belongs to its creator and is not
 * thread-safe: a daemon keeps one per worker thread.
 */
struct dkim_keycache;

struct dkim_keycache *dkim_keycache_new(size_t max_entries);
void dkim_keycache_free(struct dkim_keycache *kc);

/* dkim_key_fetch_cached - dkim_key_fetch, parsing through kc (may be
 * NULL). The key returned is the caller's either way. */
struct dkim_key *dkim_key_fetch_cached(struct dkim_keycache *kc,
    dkim_lookup_fn fn, void *arg, const char *selector, const char *domain,
    enum dkim_result *res, char *why, size_t whylen);

/* -------------------------------------------------------- verification */

/* RFC 8601 §2.7.1 results. */
enum dkim_result {
	DKIM_RES_NONE = 0,
	DKIM_RES_PASS,
	DKIM_RES_FAIL,
	DKIM_RES_NEUTRAL,
	DKIM_RES_POLICY,
	DKIM_RES_TEMPERROR,
	DKIM_RES_PERMERROR,
};

const char *dkim_result_str(enum dkim_result r);

struct dkim_verify_opts {
	size_t max_signatures;	/* default 10; later ones are not evaluated */
	int64_t now;		/* seconds since the epoch */
	int64_t clock_skew;	/* t= may lie this far ahead; default 300 */
	unsigned min_rsa_bits;	/* default 1024 */
	dkim_lookup_fn lookup;
	void *lookup_arg;
	struct dkim_keycache *keycache;	/* optional, borrowed */
};

/* dkim_verify_opts_init - the defaults, with now = time(NULL). */
void dkim_verify_opts_init(struct dkim_verify_opts *o);

struct dkim_sigresult {
	enum dkim_result result;
	char reason[DKIM_WHY_MAX];
	size_t field_index;	/* index in msg->fields */
	char *d, *s, *a;	/* owned copies; empty strings if unparsed */
	char *b;		/* owned: b= without FWS, "" if unparsed */
	char *i;		/* owned; "" if unparsed */
	bool testing;		/* key t=y */
	unsigned key_bits;
	struct dkim_sig *sig;	/* owned; NULL when the field did not parse */
};

struct dkim_verification {
	struct dkim_sigresult *r; /* owned array, in header order */
	size_t n;
	size_t ignored;		/* signatures past max_signatures */
};

/*
 * dkim_verify - evaluate every DKIM-Signature of msg (up to the limit).
 * Returns DKIM_OK when evaluation finished, whatever the results; an error
 * only for allocation failure or bad arguments.
 */
enum dkim_status dkim_verify(const struct dkim_msg *msg,
    const struct dkim_verify_opts *opts, struct dkim_verification **out);
void dkim_verification_free(struct dkim_verification *v);

/*
 * dkim_key_acceptable - the checks of a fetched key against the signature
 * that names it: not revoked, type matching a=, h= and s= allowing it,
 * t=s, and RSA keys at least o->min_rsa_bits long. On false, *res and why
 * say what a verifier reports.
 */
bool dkim_key_acceptable(const struct dkim_key *key,
    const struct dkim_sig *sig, const struct dkim_verify_opts *o,
    enum dkim_result *res, char *why, size_t whylen);

/*
 * dkim_verify_sig - decide one parsed signature (r->sig, at field
 * r->field_index): a DKIM-Signature or an ARC-Message-Signature, which
 * differ only in how they were parsed. Fills r->result and r->reason.
 * cache (optional) keeps body hashes between signatures of one message.
 */
struct dkim_bhcache;

struct dkim_bhcache *dkim_bhcache_new(void);
void dkim_bhcache_free(struct dkim_bhcache *bc);
enum dkim_status dkim_verify_sig(const struct dkim_msg *msg,
    const struct dkim_verify_opts *opts, struct dkim_bhcache *cache,
    struct dkim_sigresult *r);

/* ------------------------------------------------------------- signing */

struct dkim_sign_opts {
	enum dkim_alg alg;	/* rsa-sha256 or ed25519-sha256 */
	enum dkim_canon hcanon, bcanon;
	const char *domain;	/* d= */
	const char *selector;	/* s= */
	const char *identity;	/* i=, optional */
	const char *const *headers; /* h= names; NULL: the default list */
	size_t nheaders;
	int64_t now;		/* t=; negative omits t= */
	int64_t expire;		/* > 0: x = now + expire */
	bool body_length;	/* add l= covering the whole body */
	EVP_PKEY *key;		/* borrowed */
};

void dkim_sign_opts_init(struct dkim_sign_opts *o);

/*
 * The default h= list: each of these present in the message is signed once
 * per instance, and From is signed one extra time (oversigned) so that a
 * second From cannot be added.
 */
extern const char *const dkim_default_headers[];

/*
 * dkim_sign - build a DKIM-Signature field for msg. out receives the whole
 * field, "DKIM-Signature: ...", folded at 78 columns with CRLF line breaks
 * and a final CRLF, ready to prepend to the message.
 */
enum dkim_status dkim_sign(const struct dkim_msg *msg,
    const struct dkim_sign_opts *opts, struct dkim_buf *out,
    char *why, size_t whylen);

/*
 * dkim_sign_ams - the ARC-Message-Signature of ARC instance `instance`
 * (RFC 8617 §4.1.2): signed exactly as a DKIM-Signature, with i= the
 * instance and no v=. Without opts->headers the list covers From, To, Cc,
 * Subject, Date, Message-ID, Reply-To, In-Reply-To, References,
 * MIME-Version, Content-Type, Content-Transfer-Encoding, List-*, Sender and
 * DKIM-Signature as present; ARC fields and Authentication-Results are
 * refused in a given list.
 */
enum dkim_status dkim_sign_ams(const struct dkim_msg *msg,
    const struct dkim_sign_opts *opts, unsigned instance,
    struct dkim_buf *out, char *why, size_t whylen);

/* ------------------------------------------ building blocks (for arc/) */

/* The message digest an algorithm hashes with. */
const EVP_MD *dkim_alg_md(enum dkim_alg a);

/*
 * dkim_select_headers - pick the fields named in h= bottom-up as RFC 6376
 * §5.4.2 describes; a name with no unused instance left selects nothing.
 * idx receives up to nh indexes into msg->fields, -1 for "nothing".
 * exclude, if >= 0, is a field index never selected (the signature itself).
 */
void dkim_select_headers(const struct dkim_msg *msg, char *const *h,
    size_t nh, long exclude, long *idx);

/*
 * dkim_sig_field_stripped - the signature field's raw bytes with the b=
 * value removed "including all surrounding whitespace", as it is hashed
 * (RFC 6376 §3.7): from just after '=' to the next ';' or the end.
 */
bool dkim_sig_field_stripped(const struct dkim_field *f,
    const struct dkim_sig *sig, struct dkim_buf *out);

/*
 * dkim_header_digest - hash the header part of a signature (RFC 6376
 * §3.7): the fields h= selects from msg->fields, each canonicalized with
 * CRLF, then the signature field (sigraw, b= already emptied) without
 * CRLF. Only msg->fields and msg->nfields are read, so a caller may hand
 * in an edited copy of the field array.
 */
enum dkim_status dkim_header_digest(const struct dkim_msg *msg,
    char *const *h, size_t nh, long exclude, enum dkim_canon c,
    const char *sigraw, size_t siglen, const EVP_MD *md, unsigned char *dg,
    unsigned int *dglen);

/* dkim_digest_sign / dkim_digest_verify - sign or check a digest of the
 * header hash input with the key: RSA PKCS#1 v1.5 over the digest, or
 * Ed25519 over the SHA-256 digest (RFC 8463 §3). */
enum dkim_status dkim_digest_sign(EVP_PKEY *key, enum dkim_alg alg,
    const unsigned char *dg, size_t dglen, unsigned char **sig,
    size_t *siglen);
bool dkim_digest_verify(EVP_PKEY *key, enum dkim_alg alg,
    const unsigned char *dg, size_t dglen, const unsigned char *sig,
    size_t siglen);

/*
 * dkim_crypto_forget - each thread keeps the prepared contexts of the last
 * few keys it signed or verified with, holding a reference to each key.
 * After this call every thread drops them at its next operation, so a
 * replaced private key does not outlive a reload for longer than that.
 */
void dkim_crypto_forget(void);

/* dkim_whyf - write a reason into a caller's (why, whylen) buffer, if
 * there is one; the one helper every module uses for its reasons. */
void dkim_whyf(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* base64 without whitespace: encode to a NUL-terminated malloc'd string;
 * decode skips FWS and fails on anything else that is not base64. */
char *dkim_b64_encode(const unsigned char *p, size_t n);
unsigned char *dkim_b64_decode(const char *p, size_t n, size_t *outlen);
/* The most octets n characters of base64 can decode to. */
#define DKIM_B64_DECODED_MAX(n) ((n) / 4 * 3 + 3)
/* dkim_b64_decode_into - the same into out, which has room for
 * DKIM_B64_DECODED_MAX(n) octets; false on bad base64. */
bool dkim_b64_decode_into(const char *p, size_t n, unsigned char *out,
    size_t *outlen);

/*
 * dkim_qp_line - the encoded octets of one quoted-printable line p[s, e)
 * (e at its LF or the end) end where the returned offset says: a CR, the
 * white space of transport padding and a soft break's '=' (then *soft)
 * are not part of them (RFC 2045 §6.7 (3), (5)).
 */
size_t dkim_qp_line(const char *p, size_t s, size_t e, bool *soft);

/*
 * dkim_qp_decode - MIME quoted-printable (RFC 2045 §6.7) decoded into a
 * new buffer (malloc'd, at most n octets, not NUL-terminated): padding at
 * line ends dropped, soft line breaks joined, "=XX" in either case (§6.7
 * (1) lets a robust reader take lowercase hex). Any other '=' is refused:
 * NULL with *bad_line its line number (from 1); NULL with *bad_line 0 is
 * no memory.
 */
char *dkim_qp_decode(const char *p, size_t n, size_t *outlen,
    size_t *bad_line);

/* dkim_hex_digit - the value of a hex digit, either case; -1 for none. */
int dkim_hex_digit(char c);

/*
 * dkim_fold_field - append "Name: tag=value; tag=value..." folded at 78
 * columns. Tags are given as an array of "name=value" strings; the folding
 * breaks only between tags, after ':' inside h=, and anywhere inside the
 * base64 values of b= and bh=. The final tag ends without ';'. Line breaks are CRLF + one space; the field ends with CRLF.
 */
bool dkim_fold_field(struct dkim_buf *out, const char *name,
    const char *const *tags, size_t ntags);

/*
 * dkim_fold_append - continue the last line of out with a base64 value
 * (the b= of a field folded with an empty b=), folding anywhere at 78
 * columns, and end the field with CRLF. The caller removes the CRLF the
 * empty-b= field ended with first.
 */
bool dkim_fold_append(struct dkim_buf *out, const char *value);

#ifdef __cplusplus
}
#endif

#endif
