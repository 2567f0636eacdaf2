/*
 * listhdr_tool.c - a driver of policy/listhdr.c for the Python check:
 *
 *   listhdr_tool [options] MESSAGE-FILE
 *     --addr A  --name N  --id ID  --tag T  --rewrite
 *     --reply list|author|none  --unsub-mailto M  --unsub-https U
 *     --loop    print "loop" or "no loop" (listhdr_has_list_id) instead
 *
 * The message is read as bytes (an LF-only file is turned into CRLF) and
 * the result written to standard output. Exit status 0, or 1 with the
 * reason on standard error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listhdr.h"

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	struct dkim_buf b;
	char chunk[65536];
	size_t n;

	if (fp == NULL)
		return NULL;
	dkim_buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		dkim_buf_add(&b, chunk, n);
	fclose(fp);
	if (b.failed) {
		dkim_buf_free(&b);
		return NULL;
	}
	if (b.p == NULL)
		dkim_buf_add(&b, "", 0);
	return dkim_buf_take(&b, len);
}

static int
usage(void)
{
	fprintf(stderr, "usage: listhdr_tool [--addr A] [--name N] [--id ID] "
	    "[--tag T] [--rewrite] [--reply list|author|none] "
	    "[--unsub-mailto M] [--unsub-https U] [--loop] FILE\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct listhdr_opts o;
	struct dkim_buf out;
	char why[256], *msg, *crlf;
	size_t len, clen;
	bool loop = false, conv;
	int i;

	memset(&o, 0, sizeof(o));
	o.reply_to = LISTHDR_REPLY_NONE;
	for (i = 1; i < argc - 1; i++) {
		const char *a = argv[i], *v = argv[i + 1];

		if (strcmp(a, "--rewrite") == 0)
			o.rewrite_from = true;
		else if (strcmp(a, "--loop") == 0)
			loop = true;
		else if (i + 2 >= argc)
			return usage();
		else if (strcmp(a, "--addr") == 0)
			o.list_addr = v, i++;
		else if (strcmp(a, "--name") == 0)
			o.list_name = v, i++;
		else if (strcmp(a, "--id") == 0)
			o.list_id = v, i++;
		else if (strcmp(a, "--tag") == 0)
			o.subject_tag = v, i++;
		else if (strcmp(a, "--unsub-mailto") == 0)
			o.unsub_mailto = v, i++;
		else if (strcmp(a, "--unsub-https") == 0)
			o.unsub_https = v, i++;
		else if (strcmp(a, "--reply") == 0) {
			i++;
			if (strcmp(v, "list") == 0)
				o.reply_to = LISTHDR_REPLY_LIST;
			else if (strcmp(v, "author") == 0)
				o.reply_to = LISTHDR_REPLY_AUTHOR;
			else if (strcmp(v, "none") == 0)
				o.reply_to = LISTHDR_REPLY_NONE;
			else
				return usage();
		} else
			return usage();
	}
	if (argc < 2 || i != argc - 1)
		return usage();
	if ((msg = slurp(argv[argc - 1], &len)) == NULL) {
		fprintf(stderr, "listhdr_tool: cannot read %s\n",
		    argv[argc - 1]);
		return 1;
	}
	if ((crlf = dkim_crlf_from_lf(msg, len, &clen, &conv)) != NULL) {
		free(msg);
		msg = crlf;
		len = clen;
	}
	if (loop) {
		puts(listhdr_has_list_id(&o, msg, len) ? "loop" : "no loop");
		free(msg);
		return 0;
	}
	dkim_buf_init(&out, 0);
	if (!listhdr_apply(&o, msg, len, &out, why, sizeof(why))) {
		fprintf(stderr, "listhdr_tool: %s\n", why);
		dkim_buf_free(&out);
		free(msg);
		return 1;
	}
	fwrite(out.p, 1, out.len, stdout);
	dkim_buf_free(&out);
	free(msg);
	return 0;
}
