/*
 * fuzz_input.h - the input prologue of the libFuzzer targets whose first
 * byte picks options.
 */
#ifndef ARCRELAY_FUZZ_INPUT_H
#define ARCRELAY_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * fuzz_input - split (data, size) into its first byte, in *sel, and the
 * rest, copied into a heap block of exactly its size (one octet for an
 * empty rest) so that ASan sees a read one past the end; *n is the
 * rest's length. NULL for an empty input or when memory runs out; the
 * caller free()s the copy.
 */
char *fuzz_input(const uint8_t *data, size_t size, unsigned *sel, size_t *n);

#ifdef ARCRELAY_DKIM_H
/*
 * fuzz_input_lines - fuzz_input, then, when sel has a bit of crlf_bits
 * set and the rest holds no CRLF, every LF made CRLF
 * (dkim_crlf_from_lf), so that mutations reach the states behind
 * well-formed lines. For the targets that include dkim.h first.
 */
static inline char *
fuzz_input_lines(const uint8_t *data, size_t size, unsigned *sel,
    size_t *n, unsigned crlf_bits)
{
	char *p, *crlf;
	size_t crlf_len;
	bool converted;

	if ((p = fuzz_input(data, size, sel, n)) == NULL ||
	    (*sel & crlf_bits) == 0)
		return p;
	if ((crlf = dkim_crlf_from_lf(p, *n, &crlf_len, &converted)) ==
	    NULL)
		return p;
	free(p);
	*n = crlf_len;
	return crlf;
}
#endif

#endif
