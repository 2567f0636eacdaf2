/*
 * srs_tool.c - policy/srs.c from the command line, for the comparison
 * with Perl's Mail::SRS (interop.pl):
 *
 *   srs_tool forward|reverse SECRET[,OLDER...] DOMAIN NOW ADDR
 *
 * SECRET is one secret, or several joined by commas (the first signs, all
 * verify); NOW is seconds since the epoch. Prints the resulting address,
 * or the srs_rc_str() name of the failure (and, for reverse, the reason
 * on stderr). Exit status 0 on success, 1 on an SRS failure, 2 on misuse.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srs.h"

#define TOOL_SECRETS_MAX 8

/* usage - the synopsis on stderr; exit status 2. */
static int
usage(void)
{
	fprintf(stderr, "usage: srs_tool forward|reverse SECRET[,OLDER...] "
	    "DOMAIN NOW ADDR\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *secrets[TOOL_SECRETS_MAX];
	struct srs_config c = { 0 };
	char out[SRS_ADDR_MAX], why[SRS_WHY_MAX] = "";
	char *end, *s;
	long long now;
	enum srs_rc rc;

	if (argc != 6)
		return usage();
	for (s = strtok(argv[2], ","); s != NULL; s = strtok(NULL, ","))
		if (c.nsecrets < TOOL_SECRETS_MAX)
			secrets[c.nsecrets++] = s;
	c.secrets = secrets;
	c.domain = argv[3];
	errno = 0;
	now = strtoll(argv[4], &end, 10);
	if (errno != 0 || end == argv[4] || *end != '\0')
		return usage();

	if (strcmp(argv[1], "forward") == 0)
		rc = srs_forward(&c, argv[5], (int64_t)now, out, sizeof(out));
	else if (strcmp(argv[1], "reverse") == 0)
		rc = srs_reverse(&c, argv[5], (int64_t)now, out, sizeof(out),
		    why, sizeof(why));
	else
		return usage();
	if (rc != SRS_OK) {
		printf("%s\n", srs_rc_str(rc));
		if (why[0] != '\0')
			fprintf(stderr, "srs_tool: %s\n", why);
		return 1;
	}
	printf("%s\n", out);
	return 0;
}
