/*
 * zonefile.h - records from a zone-file subset (RFC 1035 §5 master files),
 * served through the library's lookup interface in place of DNS. Used by
 * --dns-file and by the tests.
 */
#ifndef ARCRELAY_ZONEFILE_H
#define ARCRELAY_ZONEFILE_H

#include <stddef.h>

#include "dkim.h"
#include "pdns.h"

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

/*
 * zonefile_lookup - a pdns_lookup_fn; arg is the struct zonefile. A name
 * with a CNAME is followed (at most 8 deep). A name that exists only with
 * other types gives PDNS_NODATA; an unknown name PDNS_NXDOMAIN.
 */
enum pdns_rc zonefile_lookup(void *arg, const char *qname,
    enum pdns_type type, struct pdns_answer *out);

#endif
