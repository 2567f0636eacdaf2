/*
 * report.h - JSON output of verification results for the CLI.
 */
#ifndef ARCRELAY_REPORT_H
#define ARCRELAY_REPORT_H

#include <stdio.h>

#include "arc.h"
#include "dkim.h"

/* report_json_open - {"dkim":[..],"arc":{..} without the closing brace,
 * for callers that add more members. */
void report_json_open(FILE *fp, const struct dkim_verification *v,
    const struct arc_result *arc);

/* json_string - s as a JSON string; bytes that are not UTF-8 become
 * U+FFFD so that the output is always valid JSON. */
void json_string(FILE *fp, const char *s);

#endif
