/*
 * main.c - the arcrelay binary: one executable, several subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "serve", cmd_serve, "run the relay daemon" },
	{ "queue", cmd_queue, "list the queue, or flush it (SIGUSR1)" },
	{ "survive", cmd_survive, "will this message survive DMARC after the relay?" },
	{ "verify", cmd_verify, "verify the DKIM signatures and ARC chain" },
	{ "sign", cmd_sign, "add a DKIM signature to a message" },
	{ "seal", cmd_seal, "verify, then add an ARC set to a message" },
	{ "keygen", cmd_keygen, "make a signing key and its DNS record" },
	{ "testkey", cmd_testkey, "check a published key record against a "
	    "key" },
	{ "diagnose", cmd_diagnose, "explain why signatures do not verify" },
};

static void
usage(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage: arcrelay COMMAND [OPTIONS] [FILE|-]\n\n"
	    "commands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(fp, "  %-8s %s\n", commands[i].name,
		    commands[i].summary);
	fprintf(fp, "\n'arcrelay COMMAND --help' describes each one.\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("arcrelay 0.1.0\n");
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "arcrelay: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
