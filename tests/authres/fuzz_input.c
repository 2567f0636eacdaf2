/*
 * fuzz_input.c - the input prologue shared by the libFuzzer targets
 * (fuzz_input.h). Compiled into every target by arcrelay_fuzz
 * (tests/CMakeLists.txt), in its replay and libFuzzer builds.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"

char *
fuzz_input(const uint8_t *data, size_t size, unsigned *sel, size_t *n)
{
	char *p;

	if (size == 0)
		return NULL;
	*sel = data[0];
	*n = size - 1;
	if ((p = malloc(*n ? *n : 1)) == NULL)
		return NULL;
	if (*n)
		memcpy(p, data + 1, *n);
	return p;
}
