/*
 * fuzz_input.h - the input prologue of the libFuzzer targets whose first
 * byte picks options (tests/footer, tests/listhdr, tests/addr).
 */
#ifndef ARCRELAY_FUZZ_INPUT_H
#define ARCRELAY_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

/*
 * fuzz_input - split (data, size) into its first byte, in *sel, and the
 * rest, copied into a heap block of exactly its size (one octet for an
 * empty rest) so that ASan sees a read one past the end; *n is the
 * rest's length. NULL for an empty input or when memory runs out; the
 * caller free()s the copy.
 */
char *fuzz_input(const uint8_t *data, size_t size, unsigned *sel, size_t *n);

#endif
