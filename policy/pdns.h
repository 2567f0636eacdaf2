/*
 * pdns.h - the DNS lookup interface of policy/ (SPF, DMARC, key lookups).
 *
 * policy/ never resolves names itself: relay/ implements this interface
 * (libunbound, or a zone file for tests and the CLI) and hands it in. The
 * callback is blocking from the caller's point of view; the relay calls
 * policy code only on worker threads.
 */
#ifndef ARCRELAY_PDNS_H
#define ARCRELAY_PDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkim.h"

#ifdef __cplusplus
extern "C" {
#endif

enum pdns_type {
	PDNS_A = 1,
	PDNS_PTR = 12,
	PDNS_MX = 15,
	PDNS_TXT = 16,
	PDNS_AAAA = 28,
};

enum pdns_rc {
	PDNS_OK = 0,		/* answer has one or more records */
	PDNS_NXDOMAIN,		/* the name does not exist */
	PDNS_NODATA,		/* the name exists, no records of the type */
	PDNS_TEMPFAIL,		/* timeout, SERVFAIL, budget spent: retry later */
	PDNS_PERMFAIL,		/* malformed answer, refused, bogus DNSSEC */
};

struct pdns_rr {
	enum pdns_type type;
	uint16_t pref;		/* MX preference */
	char *name;		/* owned: MX exchange or PTR target, no final
				 * dot, lowercase */
	unsigned char addr[16];	/* A: 4 bytes, AAAA: 16 bytes */
	char *txt;		/* owned: the TXT strings concatenated, with a
				 * NUL after them; may hold NULs: use txt_len */
	size_t txt_len;
	size_t txt_strings;	/* how many character-strings it had */
	size_t txt_longest;	/* the longest of them, in octets */
};

struct pdns_answer {
	struct pdns_rr *rr;	/* owned */
	size_t n, cap;
	bool secure;		/* DNSSEC-validated answer */
};

/* The lookup callback. qname has no final dot. The callee initialises
 * out; the caller clears it (pdns_answer_clear) whatever the result. */
typedef enum pdns_rc (*pdns_lookup_fn)(void *arg, const char *qname,
    enum pdns_type type, struct pdns_answer *out);

struct pdns {
	pdns_lookup_fn fn;
	void *arg;
};

void pdns_answer_init(struct pdns_answer *a);
/* pdns_answer_clear - free the records; the answer can be reused. */
void pdns_answer_clear(struct pdns_answer *a);
bool pdns_add_txt(struct pdns_answer *a, const char *p, size_t n);
/* pdns_append_txt - append one more character-string to the last TXT. */
bool pdns_append_txt(struct pdns_answer *a, const char *p, size_t n);
bool pdns_add_addr(struct pdns_answer *a, enum pdns_type type,
    const unsigned char *addr);
bool pdns_add_name(struct pdns_answer *a, enum pdns_type type, uint16_t pref,
    const char *name);

/*
 * A per-message lookup budget: a struct pdns that forwards to another and
 * answers PDNS_TEMPFAIL once max lookups have been made (RFC 7208 §4.6.4
 * style limits are SPF's own; this caps everything one message may cost).
 */
struct pdns_budget {
	struct pdns inner;
	unsigned max, used;
	bool exhausted;
	bool stalled;		/* a lookup timed out: later ones fail fast,
				 * so a silent server costs one timeout */
};

/* pdns_budget_init - wrap inner; returns the struct pdns to hand out. */
struct pdns pdns_budget_init(struct pdns_budget *b, const struct pdns *inner,
    unsigned max);

/* pdns_lookup - d->fn with the answer initialised; NULL d is TEMPFAIL. */
enum pdns_rc pdns_lookup(const struct pdns *d, const char *qname,
    enum pdns_type type, struct pdns_answer *out);

const char *pdns_rc_str(enum pdns_rc rc);

/* pdns_dkim_lookup - a dkim_lookup_fn over a struct pdns (arg), so DKIM
 * and ARC keys come through the same resolver, cache and budget. */
enum dkim_lookup_rc pdns_dkim_lookup(void *arg, const char *qname,
    struct dkim_txt *out);

#ifdef __cplusplus
}
#endif

#endif
