/*
 * spf_eval.c - evaluate SPF queries against a zone file and print one line
 * per query; the C side of the pyspf comparison (pyspf_compare.py).
 *
 *   spf_eval ZONEFILE QUERIES
 *
 * QUERIES has one query per line, tab-separated:
 *   identity (mailfrom|helo) TAB client-ip TAB helo TAB mail-from
 * (mail-from may be empty: the null reverse-path). Lines starting with '#'
 * and empty lines are skipped. Output, tab-separated, one line per query:
 *   result TAB dns-terms TAB void-lookups TAB mechanism TAB reason TAB
 *   explanation
 * The clock is fixed (%{t} = 1700000000) so output is reproducible.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"
#include "zonefile.h"

/* field - the next tab-separated field of line (modified in place). */
static char *
field(char **line)
{
	char *s = *line, *t;

	if (s == NULL)
		return NULL;
	if ((t = strchr(s, '\t')) != NULL) {
		*t = '\0';
		*line = t + 1;
	} else {
		*line = NULL;
	}
	return s;
}

int
main(int argc, char **argv)
{
	char why[DKIM_WHY_MAX], line[8192];
	struct zonefile *z;
	struct pdns dns;
	FILE *q;
	int rc = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: spf_eval ZONEFILE QUERIES\n");
		return 2;
	}
	if ((z = zonefile_load(argv[1], why, sizeof(why))) == NULL) {
		fprintf(stderr, "spf_eval: %s\n", why);
		return 2;
	}
	if ((q = fopen(argv[2], "r")) == NULL) {
		perror(argv[2]);
		zonefile_free(z);
		return 2;
	}
	dns.fn = zonefile_lookup;
	dns.arg = z;
	while (fgets(line, sizeof(line), q) != NULL) {
		struct spf_request req;
		struct spf_result res;
		char *rest = line, *id, *ip, *helo, *from;
		size_t n = strlen(line);

		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		id = field(&rest);
		ip = field(&rest);
		helo = field(&rest);
		from = field(&rest);
		if (ip == NULL || helo == NULL) {
			fprintf(stderr, "spf_eval: bad query line\n");
			rc = 2;
			break;
		}
		if (from == NULL)
			from = "";
		memset(&req, 0, sizeof(req));
		req.ip = ip;
		req.ip_len = strlen(ip);
		req.helo = helo;
		req.helo_len = strlen(helo);
		req.mail_from = from;
		req.mail_from_len = strlen(from);
		req.identity = strcmp(id, "helo") == 0 ? SPF_ID_HELO :
		    SPF_ID_MAILFROM;
		req.now = 1700000000;
		if (spf_check(&dns, &req, &res) == DKIM_E_NOMEM)
			rc = 1;
		printf("%s\t%u\t%u\t%s\t%s\t%s\n", spf_res_str(res.result),
		    res.dns_terms, res.void_lookups, res.mechanism, res.reason,
		    res.explanation);
	}
	fclose(q);
	zonefile_free(z);
	return rc;
}
