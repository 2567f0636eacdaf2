/*
 * auth.h - the whole authentication story of one message, the way a
 * receiving server tells it: DKIM, ARC, SPF (HELO and MAIL FROM) and
 * DMARC, each with a reason. One evaluation serves `arcrelay verify`,
 * `arcrelay seal` and the daemon's pipeline, and one serializer (policy's
 * authres_format) writes both Authentication-Results and the AAR.
 */
#ifndef ARCRELAY_AUTH_H
#define ARCRELAY_AUTH_H

#include <stdbool.h>
#include <stdio.h>

#include "arc.h"
#include "authres.h"
#include "dkim.h"
#include "dmarc.h"
#include "pdns.h"
#include "spf.h"

struct auth_request {
	/* The SMTP envelope; ip NULL: none (SPF is not evaluated and DMARC
	 * uses DKIM alone). */
	const char *ip;
	const char *helo;		/* may be NULL with an ip */
	const char *mail_from;		/* "" for the null reverse-path */
	const char *receiver;		/* our host name, SPF %{r} */
	int64_t now;
	struct dkim_keycache *keycache;	/* optional */
	enum dmarc_mode dmarc_mode;
	const struct dmarc_psl *psl;	/* RFC 7489 mode */
	unsigned pct_draw;
	unsigned max_lookups;		/* DKIM, ARC, SPF per message; 0:
					 * 100 (DMARC: its own max_queries) */
};

struct auth_results {
	struct dkim_verification *dkim;	/* owned */
	struct arc_result arc;
	bool have_envelope;
	struct spf_result spf_helo, spf_mailfrom;
	bool spf_helo_done;
	struct dmarc_result dmarc;
	char note[160];			/* e.g. the no-envelope remark */
	bool lookups_exhausted;
};

/* auth_evaluate - DKIM, ARC, SPF, DMARC for msg. DKIM_OK when the
 * evaluation finished, whatever the results. */
enum dkim_status auth_evaluate(const struct dkim_msg *msg,
    const struct pdns *dns, const struct auth_request *req,
    struct auth_results *out);
void auth_results_free(struct auth_results *r);

/* auth_authres - the results as an authres set: with reasons as comments
 * (for A-R) when comments is set. Caller frees. */
struct authres *auth_authres(const struct auth_results *r,
    const char *authserv_id, bool comments);

/* auth_print_ar - one folded Authentication-Results header for people. */
bool auth_print_ar(FILE *fp, const struct auth_results *r,
    const char *authserv_id);
/* auth_print_json - {"dkim":[..],"arc":{..},"spf":{..},"dmarc":{..}} */
void auth_print_json(FILE *fp, const struct auth_results *r);
/* auth_print_json_obj - the same object without the newline. */
void auth_print_json_obj(FILE *fp, const struct auth_results *r);
/* auth_print_dmarc_json - the "dmarc" object alone. */
void auth_print_dmarc_json(FILE *fp, const struct dmarc_result *d,
    const char *note);
/* auth_aar_results - the AAR text after "i=N; authserv-id;" (no
 * comments), appended to out. */
bool auth_aar_results(const struct auth_results *r, const char *authserv_id,
    struct dkim_buf *out);

#endif
