/*
 * b64.c - base64 for b=, bh= and p= values. Decoding skips folding white
 * space (RFC 6376 §2.8 allows FWS anywhere in base64 values) and rejects
 * everything else that is not base64, including misplaced padding.
 */
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

static bool
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

unsigned char *
dkim_b64_decode(const char *p, size_t n, size_t *outlen)
{
	char *clean;
	unsigned char *out;
	size_t i, m = 0, pad = 0;
	int got;

	if (n > (size_t)1 << 30 || (clean = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			clean[m++] = (char)c;
			continue;
		}
		if (!b64_char(c) || pad > 0)
			goto bad;
		clean[m++] = (char)c;
	}
	if (m % 4 != 0 || pad > 2)
		goto bad;
	if ((out = malloc(m / 4 * 3 + 1)) == NULL)
		goto bad;
	got = m ? EVP_DecodeBlock(out, (unsigned char *)clean, (int)m) : 0;
	free(clean);
	if (got < 0 || (size_t)got < pad) {
		free(out);
		return NULL;
	}
	*outlen = (size_t)got - pad;
	return out;
bad:
	free(clean);
	return NULL;
}
