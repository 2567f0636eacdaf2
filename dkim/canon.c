/*
 * canon.c - simple and relaxed canonicalization (RFC 6376 §3.4) of header
 * fields and of the body.
 *
 * The body canonicalizer is a streaming state machine: chunks may split
 * anywhere (inside a CRLF, inside a run of white space) and the sink sees
 * the same bytes a one-shot run would give. The only state carried across
 * chunks is what is still undecided: empty lines that may turn out to be
 * trailing, white space that may turn out to end a line, and a CR that may
 * turn out to start a CRLF.
 *
 * Most of a body is already canonical. A fast path finds the longest run
 * that the canonicalization leaves unchanged and hands it to the sink
 * straight from the caller's buffer; the byte-at-a-time state machine only
 * runs around the places where something changes.
 *
 * Untrusted input: the whole body. Nothing here allocates per byte or
 * recurses; memory is one fixed struct per canonicalizer.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "dkim.h"
#include "dkim_internal.h"

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ------------------------------------------------------------- headers */

/* What relaxed header canonicalization does with each octet of a value. */
enum { HC_OTHER = 0, HC_WSP, HC_LINE };

static const unsigned char hdr_class[256] = {
	[' '] = HC_WSP, ['\t'] = HC_WSP, ['\r'] = HC_LINE, ['\n'] = HC_LINE,
};

bool
dkim_canon_header(enum dkim_canon c, const char *raw, size_t len,
    bool with_crlf, struct dkim_buf *out)
{
	const char *colon, *v, *end = raw + len;
	size_t nlen, i, n = 0;
	char *o;
	bool space = false, started = false;

	if (c == DKIM_CANON_SIMPLE) {
		dkim_buf_add(out, raw, len);
		if (with_crlf)
			dkim_buf_add(out, "\r\n", 2);
		return !out->failed;
	}

	/* relaxed (§3.4.2): lowercase the name, drop WSP around the colon,
	 * unfold, reduce WSP runs to one SP, drop WSP at the end. The
	 * result is never longer than the input plus ":" and CRLF. */
	colon = memchr(raw, ':', len);
	if (colon == NULL)
		colon = end;	/* not a field; canonicalize it as a name */
	nlen = (size_t)(colon - raw);
	while (nlen > 0 && is_wsp(raw[nlen - 1]))
		nlen--;
	if ((o = dkim_buf_space(out, len + 3)) == NULL)
		return false;
	for (i = 0; i < nlen; i++) {
		char ch = raw[i];

		o[n++] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
	}
	o[n++] = ':';
	v = colon < end ? colon + 1 : end;
	while (v < end) {
		unsigned char k = hdr_class[(unsigned char)*v];

		if (k == HC_OTHER) {
			/* A run of ordinary octets, after one SP if WSP
			 * separated it from the previous run. */
			if (space)
				o[n++] = ' ';
			space = false;
			started = true;
			do
				o[n++] = *v++;
			while (v < end &&
			    hdr_class[(unsigned char)*v] == HC_OTHER);
			continue;
		}
		if (k == HC_WSP)
			space = started;
		v++;			/* CR and LF: unfold */
	}
	if (with_crlf) {
		o[n++] = '\r';
		o[n++] = '\n';
	}
	dkim_buf_commit(out, n);
	return true;
}

/* ---------------------------------------------------------------- body */

#define BC_OUTBUF 4096
#define BC_DIRECT 512	/* runs at least this long bypass the buffer */

struct dkim_bodycanon {
	enum dkim_canon c;
	int64_t limit;		/* < 0: none */
	dkim_sink_fn sink;
	void *arg;
	uint64_t total;		/* canonical octets produced */
	uint64_t sent;		/* octets given to the sink (<= limit) */
	uint64_t pend_crlf;	/* line ends not yet emitted */
	bool pend_wsp;		/* relaxed: WSP since the last content */
	bool pend_cr;		/* a CR whose LF has not been seen */
	bool any;		/* relaxed: the body is not empty */
	bool finished;
	size_t olen;
	char out[BC_OUTBUF];
};

static void
bc_flush(struct dkim_bodycanon *bc)
{
	if (bc->olen) {
		bc->sink(bc->arg, bc->out, bc->olen);
		bc->olen = 0;
	}
}

/* bc_emit - produce canonical octets, honouring the limit. */
static void
bc_emit(struct dkim_bodycanon *bc, const char *p, size_t n)
{
	bc->total += n;
	if (bc->limit >= 0) {
		uint64_t room = (uint64_t)bc->limit > bc->sent ?
		    (uint64_t)bc->limit - bc->sent : 0;

		if (n > room)
			n = (size_t)room;
	}
	if (n == 0)
		return;
	bc->sent += n;
	if (n >= BC_DIRECT) {
		bc_flush(bc);
		bc->sink(bc->arg, p, n);
		return;
	}
	if (n > BC_OUTBUF - bc->olen)
		bc_flush(bc);
	memcpy(bc->out + bc->olen, p, n);
	bc->olen += n;
}

static void
bc_emit_crlfs(struct dkim_bodycanon *bc, uint64_t n)
{
	static const char crlfs[] =
	    "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
	const uint64_t per = (sizeof(crlfs) - 1) / 2;

	while (n > 0) {
		uint64_t k = n < per ? n : per;

		bc_emit(bc, crlfs, (size_t)(2 * k));
		n -= k;
	}
}

/* bc_content - a byte that is neither WSP nor part of a line end. */
static void
bc_content(struct dkim_bodycanon *bc, char c)
{
	if (bc->pend_crlf) {
		bc_emit_crlfs(bc, bc->pend_crlf);
		bc->pend_crlf = 0;
	}
	if (bc->pend_wsp) {
		bc_emit(bc, " ", 1);
		bc->pend_wsp = false;
	}
	bc->any = true;
	bc_emit(bc, &c, 1);
}

/* bc_step - the state machine, one byte. */
static void
bc_step(struct dkim_bodycanon *bc, char c)
{
	if (bc->pend_cr) {
		bc->pend_cr = false;
		if (c == '\n') {
			/* A line end: trailing WSP of the line is dropped. */
			bc->pend_wsp = false;
			bc->pend_crlf++;
			return;
		}
		bc_content(bc, '\r');	/* that CR was a bare CR */
	}
	if (c == '\r') {
		bc->pend_cr = true;
	} else if (bc->c == DKIM_CANON_RELAXED && is_wsp(c)) {
		bc->pend_wsp = true;
	} else {
		bc_content(bc, c);	/* includes a bare LF */
	}
}

static bool
bc_clean(const struct dkim_bodycanon *bc)
{
	return !bc->pend_cr && !bc->pend_wsp && bc->pend_crlf == 0;
}

/* A byte that leaves the state machine clean behind it. */
static bool
is_content(char c)
{
	return c != ' ' && c != '\t' && c != '\r' && c != '\n';
}

/*
 * relaxed_dev - the first index in [i, n) where relaxed canonicalization
 * would change something, starting from a clean state: a HTAB, or WSP
 * followed by WSP or CR. WSP as the last byte counts as a change too.
 */
static size_t
relaxed_dev(const char *p, size_t i, size_t n)
{
#if defined(__SSE2__)
	const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');
	const __m128i cr = _mm_set1_epi8('\r');

	while (i + 17 <= n) {
		__m128i v = _mm_loadu_si128((const __m128i *)(p + i));
		__m128i w = _mm_loadu_si128((const __m128i *)(p + i + 1));
		__m128i vt = _mm_cmpeq_epi8(v, tab);
		__m128i vw = _mm_or_si128(_mm_cmpeq_epi8(v, sp), vt);
		__m128i nx = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, sp),
		    _mm_cmpeq_epi8(w, tab)), _mm_cmpeq_epi8(w, cr));
		int m = _mm_movemask_epi8(_mm_or_si128(vt,
		    _mm_and_si128(vw, nx)));

		if (m)
			return i + (size_t)__builtin_ctz((unsigned)m);
		i += 16;
	}
#endif
	for (; i < n; i++) {
		if (p[i] == '\t')
			return i;
		if (p[i] == ' ' && (i + 1 == n || is_wsp(p[i + 1]) ||
		    p[i + 1] == '\r'))
			return i;
	}
	return n;
}

void
dkim_bodycanon_feed(struct dkim_bodycanon *bc, const char *p, size_t n)
{
	size_t i = 0;

	if (bc->finished)
		return;
	while (i < n) {
		if (bc_clean(bc)) {
			size_t j = bc->c == DKIM_CANON_RELAXED ?
			    relaxed_dev(p, i, n) : n;

			while (j > i && !is_content(p[j - 1]))
				j--;
			if (j > i) {
				bc->any = true;
				bc_emit(bc, p + i, j - i);
				i = j;
				if (i == n)
					break;
			}
		}
		bc_step(bc, p[i++]);
	}
}

void
dkim_bodycanon_finish(struct dkim_bodycanon *bc)
{
	if (bc->finished)
		return;
	if (bc->pend_cr) {
		bc->pend_cr = false;
		bc_content(bc, '\r');
	}
	if (bc->c == DKIM_CANON_SIMPLE) {
		/* "*CRLF" at the end becomes one CRLF; one is added to a
		 * body without it, and an empty body is one CRLF (§3.4.3). */
		bc_emit(bc, "\r\n", 2);
	} else {
		/*
		 * §3.4.4: white space at the end of a line is ignored, and
		 * the last line of a body without a final CRLF is a line
		 * too, so its trailing WSP goes (as OpenDKIM and Mail::DKIM
		 * read it; dkimpy keeps one SP). Then (b) adds the CRLF.
		 */
		bc->pend_wsp = false;
		if (bc->any)
			bc_emit(bc, "\r\n", 2);
	}
	bc_flush(bc);
	bc->finished = true;
}

struct dkim_bodycanon *
dkim_bodycanon_new(enum dkim_canon c, int64_t limit, dkim_sink_fn sink,
    void *arg)
{
	struct dkim_bodycanon *bc;

	if (sink == NULL || (bc = malloc(sizeof(*bc))) == NULL)
		return NULL;
	/* The output buffer needs no clearing: only out[0, olen) is read. */
	memset(bc, 0, offsetof(struct dkim_bodycanon, out));
	bc->c = c;
	bc->limit = limit;
	bc->sink = sink;
	bc->arg = arg;
	return bc;
}

uint64_t
dkim_bodycanon_length(const struct dkim_bodycanon *bc)
{
	return bc->total;
}

void
dkim_bodycanon_free(struct dkim_bodycanon *bc)
{
	free(bc);
}

static void
md_sink(void *arg, const void *p, size_t n)
{
	EVP_DigestUpdate((EVP_MD_CTX *)arg, p, n);
}

enum dkim_status
dkim_body_hash(enum dkim_canon c, const EVP_MD *md, const char *body,
    size_t len, int64_t limit, unsigned char *out, unsigned int *outlen,
    uint64_t *canon_len)
{
	EVP_MD_CTX *ctx;
	struct dkim_bodycanon *bc;
	enum dkim_status st = DKIM_OK;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return DKIM_E_NOMEM;
	if (!EVP_DigestInit_ex(ctx, md, NULL)) {
		EVP_MD_CTX_free(ctx);
		return DKIM_E_CRYPTO;
	}
	if ((bc = dkim_bodycanon_new(c, limit, md_sink, ctx)) == NULL) {
		EVP_MD_CTX_free(ctx);
		return DKIM_E_NOMEM;
	}
	dkim_bodycanon_feed(bc, body, len);
	dkim_bodycanon_finish(bc);
	if (canon_len)
		*canon_len = dkim_bodycanon_length(bc);
	if (!EVP_DigestFinal_ex(ctx, out, outlen))
		st = DKIM_E_CRYPTO;
	dkim_bodycanon_free(bc);
	EVP_MD_CTX_free(ctx);
	return st;
}

/*
 * prefix_digest_is - finish a copy of the hash as if the body fed so far
 * ended here, and compare it with want. The canonicalizer must sit just
 * after a CRLF: then nothing but line ends is undecided, and finishing
 * drops those and adds one CRLF (always for simple, for a non-empty body
 * with relaxed), within the limit like every other octet.
 */
static bool
prefix_digest_is(struct dkim_bodycanon *bc, EVP_MD_CTX *ctx, EVP_MD_CTX *tmp,
    const unsigned char *want, size_t wantlen, bool *err)
{
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dglen;
	uint64_t tail = 0;

	bc_flush(bc);
	if (bc->c == DKIM_CANON_SIMPLE || bc->any)
		tail = 2;
	if (bc->limit >= 0 && tail > (uint64_t)bc->limit - bc->sent)
		tail = (uint64_t)bc->limit - bc->sent;
	if (!EVP_MD_CTX_copy_ex(tmp, ctx) ||
	    (tail && !EVP_DigestUpdate(tmp, "\r\n", (size_t)tail)) ||
	    !EVP_DigestFinal_ex(tmp, dg, &dglen)) {
		*err = true;
		return false;
	}
	return dglen == wantlen && memcmp(dg, want, dglen) == 0;
}

enum dkim_status
dkim_body_prefix_match(enum dkim_canon c, const EVP_MD *md, const char *body,
    size_t len, int64_t limit, const unsigned char *want, size_t wantlen,
    bool *found, size_t *prefix_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new(), *tmp = EVP_MD_CTX_new();
	struct dkim_bodycanon *bc = NULL;
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dglen;
	enum dkim_status st = DKIM_OK;
	size_t pos = 0;
	bool err = false;

	*found = false;
	*prefix_len = 0;
	if (ctx == NULL || tmp == NULL ||
	    (bc = dkim_bodycanon_new(c, limit, md_sink, ctx)) == NULL) {
		st = DKIM_E_NOMEM;
		goto out;
	}
	if (!EVP_DigestInit_ex(ctx, md, NULL)) {
		st = DKIM_E_CRYPTO;
		goto out;
	}
	if (prefix_digest_is(bc, ctx, tmp, want, wantlen, &err))
		*found = true;
	while (pos < len && !err) {
		const char *lf = memchr(body + pos, '\n', len - pos);
		size_t end = lf ? (size_t)(lf - body) + 1 : len;

		dkim_bodycanon_feed(bc, body + pos, end - pos);
		pos = end;
		/* Only a CRLF ends a line; a bare LF is line content. */
		if (lf && end >= 2 && body[end - 2] == '\r' &&
		    prefix_digest_is(bc, ctx, tmp, want, wantlen, &err)) {
			*found = true;
			*prefix_len = end;
		}
	}
	if (err) {
		st = DKIM_E_CRYPTO;
		goto out;
	}
	/* The whole body, which may end inside a line. */
	dkim_bodycanon_finish(bc);
	if (!EVP_DigestFinal_ex(ctx, dg, &dglen)) {
		st = DKIM_E_CRYPTO;
		goto out;
	}
	if (dglen == wantlen && memcmp(dg, want, dglen) == 0) {
		*found = true;
		*prefix_len = len;
	}
out:
	dkim_bodycanon_free(bc);
	EVP_MD_CTX_free(tmp);
	EVP_MD_CTX_free(ctx);
	return st;
}
