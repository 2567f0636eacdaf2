/*
 * fuzz_footer.c - libFuzzer target for policy/footer.c.
 *
 * The first byte of an input chooses the footer and the output ceiling;
 * the rest is the message. Footer choice 7 takes the footer from the input
 * too: the bytes up to the first NUL, the message after it. Besides "no
 * crash, no leak, no overread" (ASan), it holds the module to the promises
 * of footer.h and traps when one breaks:
 *   - with one of the fixed (valid) footers and no ceiling, footer_apply
 *     fails only when dkim_msg_parse refuses the message; with a ceiling,
 *     it never writes past it;
 *   - why is "" when the shape of the message decided;
 *   - appended: the output begins with the message's header block;
 *   - new part: the output is the message with one piece inserted before
 *     its close delimiter, a delimiter line and a part that holds none;
 *   - wrapped: the fields other than Content-* open the output unchanged
 *     and in order; the first part is "--B", the Content-* fields, the
 *     empty line and the body unchanged, with B found nowhere in the
 *     message; the output ends with the close delimiter;
 *   - the output parses with dkim_msg_parse; applying the footer to it
 *     again does not crash, and an append or a new part does the same
 *     again.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/.
 */
#define _GNU_SOURCE		/* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "footer.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define FROM_INPUT	7	/* footer choice: taken from the input */
#define LONG_LINE	2000	/* octets of footer 4's line: over 998 */

/* The footers 0 to 6; number 4 is filled in at the first call. */
static const char *footers[FROM_INPUT] = {
	"-- \nThe example list\nhttps://lists.example.org/ex\n",
	"Liste f\xc3\xbcr alle: a=b\n",
	"a\r\nb\nc\rd",
	"From here =\t \n \n=_footer_\n",
	NULL,
	"x",
	"--b1\r\n--b1--\r\nContent-Type: text/html\r\n",
};

/* Limits for reading the output: the header may have grown by the three
 * MIME fields a wrap adds. */
static const struct dkim_limits out_lim = { DKIM_DEFAULT_MAX_LINE,
    DKIM_DEFAULT_MAX_HEADERS + 8, DKIM_DEFAULT_MAX_HEADER_BYTES + 4096 };

/* is_content - a Content-* field, which a wrap moves into the first part. */
static bool
is_content(const struct dkim_field *f)
{
	return f->name_len >= 8 && strncasecmp(f->name, "content-", 8) == 0;
}

/* starts - do the n octets at p begin with the sn octets of s? */
static bool
starts(const char *p, size_t n, const char *s, size_t sn)
{
	return n >= sn && memcmp(p, s, sn) == 0;
}

/*
 * check_new_part - out is msg with one piece inserted where its close
 * delimiter (CRLF "--" B "--") starts: CRLF "--" B CRLF and a part with no
 * line starting with "--" B. The first byte where out and msg differ is
 * right after that "--" B, since B holds no CR.
 */
static void
check_new_part(const char *msg, size_t len, const struct dkim_msg *in,
    const struct dkim_buf *out)
{
	size_t pre = 0, at, d, blen, s;
	const char *b, *piece, *e;

	CHECK(out->len > len);
	d = out->len - len;
	while (pre < len && out->p[pre] == msg[pre])
		pre++;
	CHECK(pre >= in->body_off);
	for (at = pre; at >= 4 && memcmp(out->p + at - 4, "\r\n--", 4) != 0;
	    at--)
		;
	CHECK(at >= 4);
	at -= 4;
	b = out->p + at + 4;
	blen = pre - at - 4;
	CHECK(blen > 0);
	CHECK(memcmp(out->p + at + d, msg + at, len - at) == 0);
	piece = out->p + at;
	CHECK(d > blen + 6 && memcmp(piece + 4 + blen, "\r\n", 2) == 0);
	CHECK(memcmp(piece + d - 2, "\r\n", 2) == 0);
	for (s = blen + 6; s < d; s = (size_t)(e - piece) + 1) {
		CHECK(!(d - s >= 2 + blen && piece[s] == '-' &&
		    piece[s + 1] == '-' && memcmp(piece + s + 2, b, blen) == 0));
		if ((e = memchr(piece + s, '\n', d - s)) == NULL)
			break;
	}
}

/* check_wrapped - the exact shape of a wrap around in. */
static void
check_wrapped(const char *msg, size_t len, const struct dkim_msg *in,
    const struct dkim_msg *m)
{
	const char *b, *eol, *p;
	size_t i, j = 0, blen, left;
	bool mv = false;

	for (i = 0; i < in->nfields; i++) {
		const struct dkim_field *f = &in->fields[i];

		if (is_content(f))
			continue;
		mv |= dkim_field_is(f, "mime-version");
		CHECK(j < m->nfields);
		CHECK(m->fields[j].raw_len == f->raw_len &&
		    memcmp(m->fields[j].raw, f->raw, f->raw_len) == 0);
		j++;
	}
	if (!mv) {
		CHECK(j < m->nfields &&
		    dkim_field_is(&m->fields[j], "mime-version"));
		j++;
	}
	CHECK(j < m->nfields && dkim_field_is(&m->fields[j], "content-type"));
	j++;
	if (j < m->nfields)
		CHECK(dkim_field_is(&m->fields[j++],
		    "content-transfer-encoding"));
	CHECK(j == m->nfields);

	/* The body: "--B" CRLF, the Content-* fields, CRLF, the old body,
	 * CRLF "--B" CRLF, the footer part, CRLF "--B--" CRLF. */
	p = m->body;
	left = m->body_len;
	CHECK(starts(p, left, "--", 2));
	eol = memmem(p, left, "\r\n", 2);
	CHECK(eol != NULL);
	b = p + 2;
	blen = (size_t)(eol - b);
	CHECK(blen > 0 && memmem(msg, len, b, blen) == NULL);
	left -= (size_t)(eol + 2 - p);
	p = eol + 2;
	for (i = 0; i < in->nfields; i++) {
		const struct dkim_field *f = &in->fields[i];

		if (!is_content(f))
			continue;
		CHECK(starts(p, left, f->raw, f->raw_len));
		CHECK(starts(p + f->raw_len, left - f->raw_len, "\r\n", 2));
		p += f->raw_len + 2;
		left -= f->raw_len + 2;
	}
	CHECK(starts(p, left, "\r\n", 2));
	p += 2;
	left -= 2;
	CHECK(starts(p, left, in->body, in->body_len));
	p += in->body_len;
	left -= in->body_len;
	CHECK(starts(p, left, "\r\n--", 4));
	CHECK(starts(p + 4, left - 4, b, blen));
	CHECK(starts(p + 4 + blen, left - 4 - blen, "\r\n", 2));
	CHECK(left >= blen + 8);
	p += left - blen - 8;
	CHECK(memcmp(p, "\r\n--", 4) == 0 && memcmp(p + 4, b, blen) == 0 &&
	    memcmp(p + 4 + blen, "--\r\n", 4) == 0);
}

/* again - the footer applied to an output: no crash, and the shape it had
 * the first time for an append or a new part. */
static void
again(const struct dkim_buf *out, const char *footer, enum footer_how how)
{
	struct dkim_buf o2;
	enum footer_how h2;
	char why[DKIM_WHY_MAX];
	bool ok;

	dkim_buf_init(&o2, 0);
	ok = footer_apply(out->p, out->len, footer, &o2, &h2, why,
	    sizeof(why));
	if (how == FOOTER_APPENDED)
		CHECK(ok && h2 == FOOTER_APPENDED);
	else if (how == FOOTER_NEW_PART)
		CHECK(ok && (h2 == FOOTER_NEW_PART ||
		    strstr(why, "MIME parts") != NULL));
	dkim_buf_free(&o2);
}

/* one - footer_apply on (msg, len) and the checks. */
static void
one(const char *msg, size_t len, const char *footer, bool fixed, size_t max)
{
	struct dkim_buf out;
	struct dkim_msg *in = NULL, *m = NULL;
	enum footer_how how;
	char why[DKIM_WHY_MAX];
	bool ok, parses;

	parses = dkim_msg_parse(msg, len, NULL, &in, NULL, 0) == DKIM_OK;
	dkim_buf_init(&out, max);
	ok = footer_apply(msg, len, footer, &out, &how, why, sizeof(why));
	CHECK(strnlen(why, sizeof(why)) < sizeof(why));
	if (!ok) {
		CHECK(!parses || !fixed || max != 0);
		goto done;
	}
	CHECK(parses);
	CHECK(max == 0 || out.len <= max);
	if (how != FOOTER_WRAPPED)
		CHECK(why[0] == '\0');
	CHECK(dkim_msg_parse(out.p, out.len, &out_lim, &m, NULL, 0) ==
	    DKIM_OK);
	switch (how) {
	case FOOTER_APPENDED:
		CHECK(starts(out.p, out.len, msg, in->body_off));
		break;
	case FOOTER_NEW_PART:
		check_new_part(msg, len, in, &out);
		break;
	case FOOTER_WRAPPED:
		check_wrapped(msg, len, in, m);
		break;
	}
	again(&out, footer, how);
done:
	dkim_msg_free(m);
	dkim_msg_free(in);
	dkim_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char long_line[LONG_LINE + 2];
	unsigned sel;
	size_t n, flen, max = 0;
	char *p, *footer = NULL, *msg;
	const char *nul;

	if (footers[4] == NULL) {
		memset(long_line, 'y', LONG_LINE);
		long_line[LONG_LINE] = '\n';
		footers[4] = long_line;
	}
	if ((p = fuzz_input(data, size, &sel, &size)) == NULL)
		return 0;
	msg = p;
	n = size;
	if ((sel & 7) == FROM_INPUT) {
		nul = memchr(p, '\0', size);
		flen = nul ? (size_t)(nul - p) : size;
		if ((footer = malloc(flen + 1)) == NULL) {
			free(p);
			return 0;
		}
		memcpy(footer, p, flen);
		footer[flen] = '\0';
		msg = nul ? p + flen + 1 : p + size;
		n = nul ? size - flen - 1 : 0;
	}
	/* Bit 3: an output ceiling near the size of the message. */
	if (sel & 8)
		max = n + (sel >> 4) * 48 + 1;
	one(msg, n, footer ? footer : footers[sel & 7], footer == NULL, max);
	free(footer);
	free(p);
	return 0;
}
