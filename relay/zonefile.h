/*
 * zonefile.h - records from a zone-file subset (RFC 1035 §5 master files),
 * served through the library's lookup interface in place of DNS. Used by
 * --dns-file and by the tests.
 */
#ifndef ARCRELAY_ZONEFILE_H
#define ARCRELAY_ZONEFILE_H

#include <stddef.h>

#include "dkim.h"

struct zonefile;

/*
 * zonefile_load - parse a file; on error returns NULL with a reason naming
 * the line. Accepted: `name [ttl] [IN] TYPE rdata`, `;` comments, quoted
 * strings with \" \\ \DDD escapes, parentheses across lines, $ORIGIN and
 * $TTL, a blank owner meaning the previous one, `@` for the origin. TYPE
 * is TXT, MX, A, AAAA or CNAME; SERVFAIL (no rdata) is our extension that
 * makes lookups of that name fail temporarily, for testing.
 */
struct zonefile *zonefile_load(const char *path, char *why, size_t whylen);
struct zonefile *zonefile_parse(const char *text, size_t len, char *why,
    size_t whylen);
void zonefile_free(struct zonefile *z);

/* zonefile_lookup_txt - a dkim_lookup_fn; arg is the struct zonefile. */
enum dkim_lookup_rc zonefile_lookup_txt(void *arg, const char *qname,
    struct dkim_txt *out);

#endif
