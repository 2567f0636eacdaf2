/*
 * report.h - how the CLI prints verification results: one
 * Authentication-Results header (RFC 8601) or one JSON object.
 */
#ifndef ARCRELAY_REPORT_H
#define ARCRELAY_REPORT_H

#include <stdio.h>

#include "arc.h"
#include "dkim.h"

/* report_ar - "Authentication-Results: id; dkim=... (reason) header.d=..." */
void report_ar(FILE *fp, const char *authserv_id,
    const struct dkim_verification *v, const struct arc_result *arc);

/* report_json - {"dkim":[{"result":..,"reason":..,"d":..,...}]} */
void report_json(FILE *fp, const struct dkim_verification *v,
    const struct arc_result *arc);

/* report_json_open - the same without the closing brace, for callers
 * that add more members. */
void report_json_open(FILE *fp, const struct dkim_verification *v,
    const struct arc_result *arc);

/*
 * report_resinfo - the results as the text of an ARC-Authentication-Results
 * header after the authserv-id: "dkim=pass header.d=.. ...; arc=pass",
 * without comments (RFC 8617 §4.1.1). Appended to out.
 */
void report_resinfo(struct dkim_buf *out, const struct dkim_verification *v,
    const struct arc_result *arc);

/* json_string - s as a JSON string; bytes that are not UTF-8 become
 * U+FFFD so that the output is always valid JSON. */
void json_string(FILE *fp, const char *s);

#endif
