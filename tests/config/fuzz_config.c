/*
 * fuzz_config.c - libFuzzer target for the configuration loader
 * (relay/config.c, with the list rules of policy/rules.c it builds).
 *
 * The input after the first byte is an arcrelay.conf, written to a
 * scratch file under TMPDIR (or /tmp) and loaded with config_load. The
 * first byte picks how lines end: bit 0 turns every LF into CRLF
 * (when the input holds no CRLF). Paths
 * the file names (keys, file: values) are whatever the input says, so a
 * run may look at files of the machine; it never writes one.
 *
 * Besides "no crash, no leak, no overread" (ASan, UBSan), it traps when
 * a promise of config.h breaks:
 *   - a refused file gives NULL and one line starting with the path, a
 *     colon, and for anything but an I/O error a line number (or the
 *     "line" of the whole file's checks);
 *   - the reason has no CR, LF or other control octet but tab, so that
 *     it can be printed and logged as it is;
 *   - an accepted file has the required values set (listen address,
 *     hostname, spool, delivery, authserv-id, signing domain) and loads
 *     again to the same outcome.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/; config.dict holds the section and key names for -dict=.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dkim.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static char scratch_path[512];

/* scratch_remove - at exit: the scratch file goes. */
static void
scratch_remove(void)
{
	unlink(scratch_path);
}

/* scratch - the path of the file each input is written to. */
static const char *
scratch(void)
{
	const char *dir;
	int fd;

	if (scratch_path[0] != '\0')
		return scratch_path;
	dir = getenv("TMPDIR");
	snprintf(scratch_path, sizeof(scratch_path), "%s/fuzz_config.XXXXXX",
	    dir != NULL && *dir != '\0' ? dir : "/tmp");
	CHECK((fd = mkstemp(scratch_path)) >= 0);
	close(fd);
	atexit(scratch_remove);
	return scratch_path;
}

/* put - the file holds exactly (p, n). */
static void
put(const char *path, const char *p, size_t n)
{
	FILE *fp;

	CHECK((fp = fopen(path, "w")) != NULL);
	CHECK(n == 0 || fwrite(p, 1, n, fp) == n);
	CHECK(fclose(fp) == 0);
}

/* printable - why is one line of printable octets (tabs and 8-bit
 * allowed). */
static bool
printable(const char *why)
{
	for (; *why != '\0'; why++)
		if (((unsigned char)*why < 0x20 && *why != '\t') ||
		    *why == 0x7f)
			return false;
	return true;
}

/* one - load (p, n) as a configuration file. */
static void
one(const char *p, size_t n)
{
	const char *path = scratch();
	struct relay_config *c, *again;
	char why[1024], why2[1024];
	size_t plen = strlen(path);

	put(path, p, n);
	why[0] = '\0';
	c = config_load(path, why, sizeof(why));
	if (c == NULL) {
		CHECK(why[0] != '\0' && strnlen(why, sizeof(why)) <
		    sizeof(why));
		CHECK(strncmp(why, path, plen) == 0 && why[plen] == ':');
		CHECK(printable(why));
	} else {
		CHECK(c->nlisten >= 1 && c->listen != NULL &&
		    c->listen[0] != NULL);
		CHECK(c->hostname != NULL && c->hostname[0] != '\0');
		CHECK(c->spool != NULL && c->deliver != NULL);
		CHECK(c->authserv_id != NULL && c->sign_domain != NULL);
	}
	again = config_load(path, why2, sizeof(why2));
	CHECK((again == NULL) == (c == NULL));
	if (c == NULL)
		CHECK(strcmp(why, why2) == 0);
	config_free(again);
	config_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned sel;
	size_t n;
	char *p;

	if ((p = fuzz_input_lines(data, size, &sel, &n, 1)) == NULL)
		return 0;
	one(p, n);
	free(p);
	return 0;
}
