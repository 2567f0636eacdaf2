/*
 * dns.h - the relay's resolver: libunbound, one cache shared by a
 * blocking call for worker threads and asynchronous lookups on the
 * libevent loop. It implements the pdns interface that policy/ and the
 * DKIM/ARC key lookups use.
 */
#ifndef ARCRELAY_DNS_H
#define ARCRELAY_DNS_H

#include <stdbool.h>
#include <stddef.h>

#include "pdns.h"

struct event_base;
struct dns_resolver;

struct dns_config {
	const char *upstream;	/* "system" (resolv.conf) or "IP[@PORT]" */
	unsigned timeout_ms;	/* per lookup; 0: 5000 */
	const char *trust_anchor; /* a root.key file; NULL: Debian's for
				 * "system", none for an IP upstream */
};

/* dns_resolver_new - NULL with a reason on a bad upstream or config. */
struct dns_resolver *dns_resolver_new(const struct dns_config *cfg,
    char *why, size_t whylen);
void dns_resolver_free(struct dns_resolver *r);

/*
 * dns_lookup - a pdns_lookup_fn (arg: the resolver), safe to call from
 * any number of threads at once. Returns within the configured timeout:
 * a server that never answers gives PDNS_TEMPFAIL.
 */
enum pdns_rc dns_lookup(void *arg, const char *qname, enum pdns_type type,
    struct pdns_answer *out);

/* dns_pdns - the resolver as a struct pdns. */
struct pdns dns_pdns(struct dns_resolver *r);

/* Asynchronous lookups, delivered on the thread running base. */
typedef void (*dns_async_cb)(void *arg, enum pdns_rc rc,
    struct pdns_answer *ans);

/* dns_attach - serve async lookups on base (call once, on its thread;
 * libevent must have been told to use pthreads). */
bool dns_attach(struct dns_resolver *r, struct event_base *base);

/* dns_lookup_async - start a lookup; cb runs later on the loop thread with
 * the answer (the callee frees it after cb returns). */
bool dns_lookup_async(struct dns_resolver *r, const char *qname,
    enum pdns_type type, dns_async_cb cb, void *arg);

#endif
