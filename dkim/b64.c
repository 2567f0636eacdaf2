/*
 * b64.c - base64 for b=, bh= and p= values (and MIME bodies). Decoding
 * skips folding white space (RFC 6376 §2.8 allows FWS anywhere in base64
 * values) and rejects everything else that is not base64, including
 * misplaced padding. Also the MIME quoted-printable decoder, as strict.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dkim.h"

char *
dkim_b64_encode(const unsigned char *p, size_t n)
{
	size_t outlen = 4 * ((n + 2) / 3) + 1;
	char *out;

	if (n > (size_t)1 << 30 || (out = malloc(outlen)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* Each base64 character's 6-bit value plus one; 0 for every other byte. */
static const unsigned char b64_val[256] = {
	['A'] = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
	18, 19, 20, 21, 22, 23, 24, 25, 26,
	['a'] = 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
	42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52,
	['0'] = 53, 54, 55, 56, 57, 58, 59, 60, 61, 62,
	['+'] = 63, ['/'] = 64,
};

/*
 * One pass straight into the output: four characters make three bytes,
 * FWS between any of them is skipped, and '=' may only end the value
 * (at most two of them, completing the last group of four). Between
 * groups, whole groups of four base64 characters are decoded at once;
 * the character-by-character path takes over at the first FWS, '=' or
 * stray byte, so both paths accept exactly the same inputs.
 */
bool
dkim_b64_decode_into(const char *p, size_t n, unsigned char *out,
    size_t *outlen)
{
	size_t i, o = 0, pad = 0;
	uint32_t acc = 0;
	unsigned k = 0;		/* characters in the current group */

	for (i = 0; i < n; i++) {
		unsigned char c;
		int v;

		while (k == 0 && i + 4 <= n) {
			unsigned a = b64_val[(unsigned char)p[i]];
			unsigned b = b64_val[(unsigned char)p[i + 1]];
			unsigned d = b64_val[(unsigned char)p[i + 2]];
			unsigned e = b64_val[(unsigned char)p[i + 3]];

			if (a == 0 || b == 0 || d == 0 || e == 0 || pad > 0)
				break;
			acc = (a - 1) << 18 | (b - 1) << 12 | (d - 1) << 6 |
			    (e - 1);
			out[o++] = (unsigned char)(acc >> 16);
			out[o++] = (unsigned char)(acc >> 8);
			out[o++] = (unsigned char)acc;
			i += 4;
		}
		if (i == n)
			break;
		c = (unsigned char)p[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			if (k < 2 || ++pad > 2)
				return false;
			acc <<= 6;
			if (++k == 4) {
				out[o++] = (unsigned char)(acc >> 16);
				if (pad == 1)
					out[o++] = (unsigned char)(acc >> 8);
				k = 0;
			}
			continue;
		}
		if (pad > 0 || (v = b64_val[c]) == 0)
			return false;
		acc = acc << 6 | (uint32_t)(v - 1);
		if (++k == 4) {
			out[o++] = (unsigned char)(acc >> 16);
			out[o++] = (unsigned char)(acc >> 8);
			out[o++] = (unsigned char)acc;
			k = 0;
		}
	}
	if (k != 0)
		return false;
	*outlen = o;
	return true;
}

unsigned char *
dkim_b64_decode(const char *p, size_t n, size_t *outlen)
{
	unsigned char *out;

	if (n > (size_t)1 << 30 || (out = malloc(DKIM_B64_DECODED_MAX(n))) ==
	    NULL)
		return NULL;
	if (!dkim_b64_decode_into(p, n, out, outlen)) {
		free(out);
		return NULL;
	}
	return out;
}

int
dkim_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

size_t
dkim_qp_line(const char *p, size_t s, size_t e, bool *soft)
{
	if (e > s && p[e - 1] == '\r')
		e--;
	while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
		e--;
	*soft = e > s && p[e - 1] == '=';
	return *soft ? e - 1 : e;
}

/*
 * Line by line: white space at the end of a line is transport padding and
 * goes, a '=' then left at the end is a soft line break, "=XX" is one
 * octet, and the line end is kept as it came (CRLF or LF), so the output
 * is never longer than the input.
 */
char *
dkim_qp_decode(const char *p, size_t n, size_t *outlen, size_t *bad_line)
{
	char *o;
	size_t s = 0, k = 0, line = 0, e, end, i;
	const char *nl;
	int hi, lo;
	bool soft;

	*bad_line = 0;
	if (n > (size_t)1 << 30 || (o = malloc(n > 0 ? n : 1)) == NULL)
		return NULL;
	while (s < n) {
		line++;
		nl = memchr(p + s, '\n', n - s);
		e = nl != NULL ? (size_t)(nl - p) : n;
		end = dkim_qp_line(p, s, e, &soft);
		for (i = s; i < end; i++) {
			if (p[i] != '=') {
				o[k++] = p[i];
				continue;
			}
			if (end - i < 3 || (hi = dkim_hex_digit(p[i + 1])) < 0 ||
			    (lo = dkim_hex_digit(p[i + 2])) < 0) {
				free(o);
				*bad_line = line;
				return NULL;
			}
			o[k++] = (char)(hi << 4 | lo);
			i += 2;
		}
		if (!soft && nl != NULL) {
			if (e > s && p[e - 1] == '\r')
				o[k++] = '\r';
			o[k++] = '\n';
		}
		s = nl != NULL ? e + 1 : n;
	}
	*outlen = k;
	return o;
}
