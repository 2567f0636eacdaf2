/*
 * dmarc_eval.c - run dmarc_evaluate over a file of cases with DNS served
 * from a zone file, printing one result line per case. Used by the
 * authheaders agreement test (authheaders_check.py) and by hand:
 *
 *   dmarc_eval [--psl FILE] ZONEFILE CASES
 *
 * A case is one line of TAB-separated columns: an id, then key=value
 * columns, values backslash-escaped (\t \n \r \\ \xNN):
 *   mode=9989|7489        default 9989
 *   from=VALUE            a From field value; repeat for several fields
 *   dkim=DOMAIN:pass|fail|temperror repeatable
 *   spf=RESULT:DOMAIN     RESULT: none pass fail softfail neutral
 *                         temperror permerror
 *   draw=N                RFC 7489 pct= draw, 0..99 (default 0)
 * Lines that are empty or start with '#' are skipped.
 *
 * Output, one line per case, TAB-separated: the id, then result= policy=
 * src= disp= pdom= org= aligned= adom= testing= sampled= queries= reason=
 * (empty values as "-"). Exit 0 when every case ran, 2 on usage or input
 * errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc.h"
#include "zonefile.h"

#define MAX_COLS 64
#define MAX_LINE (64 * 1024)

/* unescape - decode \t \n \r \\ \xNN in place; returns the new length. */
static size_t
unescape(char *s)
{
	size_t i, o = 0, n = strlen(s);

	for (i = 0; i < n; i++) {
		if (s[i] != '\\' || i + 1 >= n) {
			s[o++] = s[i];
			continue;
		}
		i++;
		switch (s[i]) {
		case 't': s[o++] = '\t'; break;
		case 'n': s[o++] = '\n'; break;
		case 'r': s[o++] = '\r'; break;
		case 'x':
			if (i + 2 < n) {
				char hex[3] = { s[i + 1], s[i + 2], 0 };

				s[o++] = (char)strtol(hex, NULL, 16);
				i += 2;
			}
			break;
		default: s[o++] = s[i]; break;
		}
	}
	s[o] = '\0';
	return o;
}

static bool
parse_spf(const char *v, enum dmarc_spf *out)
{
	static const char *const names[] = { "none", "pass", "fail",
	    "softfail", "neutral", "temperror", "permerror" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(v, names[i]) == 0) {
			*out = (enum dmarc_spf)i;
			return true;
		}
	return false;
}

static const char *
dash(const char *s)
{
	return s[0] ? s : "-";
}

static void
print_clean(const char *s)
{
	for (; *s; s++)
		putchar(*s == '\t' || *s == '\n' ? ' ' : *s);
}

static bool
run_case(const struct pdns *dns, const struct dmarc_psl *psl, char *line,
    size_t lineno)
{
	char *cols[MAX_COLS], *save = NULL, *c;
	size_t ncol = 0, i, nfrom = 0, ndkim = 0;
	struct dmarc_span from[MAX_COLS];
	struct dmarc_dkim dkim[MAX_COLS];
	struct dmarc_request req;
	struct dmarc_result res;
	enum dkim_status st;

	for (c = strtok_r(line, "\t", &save); c && ncol < MAX_COLS;
	    c = strtok_r(NULL, "\t", &save))
		cols[ncol++] = c;
	if (ncol == 0)
		return true;
	dmarc_request_init(&req);
	memset(dkim, 0, sizeof(dkim));
	req.opt.psl = psl;
	for (i = 1; i < ncol; i++) {
		char *eq = strchr(cols[i], '='), *v;
		size_t vlen;

		if (eq == NULL) {
			fprintf(stderr, "line %zu: column without '='\n",
			    lineno);
			return false;
		}
		*eq = '\0';
		v = eq + 1;
		vlen = unescape(v);
		if (strcmp(cols[i], "mode") == 0)
			req.opt.mode = strcmp(v, "7489") == 0 ?
			    DMARC_MODE_RFC7489 : DMARC_MODE_RFC9989;
		else if (strcmp(cols[i], "from") == 0) {
			from[nfrom].p = v;
			from[nfrom++].len = vlen;
		} else if (strcmp(cols[i], "dkim") == 0) {
			char *colon = strrchr(v, ':');

			if (colon == NULL) {
				fprintf(stderr, "line %zu: dkim=D:R\n", lineno);
				return false;
			}
			*colon = '\0';
			dkim[ndkim].domain = v;
			dkim[ndkim].domain_len = strlen(v);
			dkim[ndkim].temperror = strcmp(colon + 1,
			    "temperror") == 0;
			dkim[ndkim++].pass = strcmp(colon + 1, "pass") == 0;
		} else if (strcmp(cols[i], "spf") == 0) {
			char *colon = strchr(v, ':');

			if (colon == NULL) {
				fprintf(stderr, "line %zu: spf=R:D\n", lineno);
				return false;
			}
			*colon = '\0';
			if (!parse_spf(v, &req.spf)) {
				fprintf(stderr, "line %zu: bad SPF result\n",
				    lineno);
				return false;
			}
			req.spf_domain = colon + 1;
			req.spf_domain_len = strlen(colon + 1);
		} else if (strcmp(cols[i], "draw") == 0)
			req.opt.pct_draw = (unsigned)strtoul(v, NULL, 10);
		else {
			fprintf(stderr, "line %zu: unknown column %s\n",
			    lineno, cols[i]);
			return false;
		}
	}
	req.from = from;
	req.nfrom = nfrom;
	req.dkim = dkim;
	req.ndkim = ndkim;
	st = dmarc_evaluate(dns, &req, &res);
	if (st != DKIM_OK) {
		fprintf(stderr, "line %zu: dmarc_evaluate: %s\n", lineno,
		    dkim_status_str(st));
		return false;
	}
	printf("%s\tresult=%s\tpolicy=%s\tsrc=%s\tdisp=%s\tpdom=%s\torg=%s"
	    "\taligned=%s\tadom=%s\ttesting=%d\tsampled=%d\tqueries=%u"
	    "\treason=", cols[0], dmarc_res_str(res.result),
	    dmarc_policy_str(res.policy), dmarc_policy_src_str(res.policy_src),
	    dmarc_policy_str(res.disposition), dash(res.policy_domain),
	    dash(res.org_domain), dmarc_ident_str(res.aligned),
	    dash(res.aligned_domain), res.testing, res.sampled_out,
	    res.queries);
	print_clean(res.reason);
	putchar('\n');
	return true;
}

int
main(int argc, char **argv)
{
	const char *pslpath = NULL;
	struct zonefile *zf;
	struct dmarc_psl *psl;
	struct pdns dns;
	char why[256], *line;
	FILE *fp;
	size_t lineno = 0;
	int argi = 1, rc = 0;

	if (argc > 2 && strcmp(argv[1], "--psl") == 0) {
		pslpath = argv[2];
		argi = 3;
	}
	if (argc - argi != 2) {
		fprintf(stderr, "usage: dmarc_eval [--psl FILE] ZONEFILE "
		    "CASES\n");
		return 2;
	}
	if ((zf = zonefile_load(argv[argi], why, sizeof(why))) == NULL) {
		fprintf(stderr, "dmarc_eval: %s\n", why);
		return 2;
	}
	if ((psl = dmarc_psl_load(pslpath, why, sizeof(why))) == NULL) {
		fprintf(stderr, "dmarc_eval: %s\n", why);
		zonefile_free(zf);
		return 2;
	}
	dns.fn = zonefile_lookup;
	dns.arg = zf;
	if ((fp = fopen(argv[argi + 1], "r")) == NULL ||
	    (line = malloc(MAX_LINE)) == NULL) {
		perror(argv[argi + 1]);
		if (fp)
			fclose(fp);
		dmarc_psl_free(psl);
		zonefile_free(zf);
		return 2;
	}
	while (fgets(line, MAX_LINE, fp) != NULL) {
		size_t n = strlen(line);

		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (!run_case(&dns, psl, line, lineno)) {
			rc = 2;
			break;
		}
	}
	fclose(fp);
	free(line);
	dmarc_psl_free(psl);
	zonefile_free(zf);
	return rc;
}
