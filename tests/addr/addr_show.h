/*
 * addr_show.h - an addr_parse result written out again from its spans:
 * [name " "] ["<" route] local "@" domain [">"] for a mailbox, name ":"
 * members ";" for a group, ", " between. test_addr.c shows its parses so
 * (a span one octet off shows); fuzz_addr.c parses the result again.
 * Header-only (static inline), for the two of them.
 */
#ifndef ARCRELAY_TESTS_ADDR_SHOW_H
#define ARCRELAY_TESTS_ADDR_SHOW_H

#include "addr.h"

/* show_span - span s of v appended to b as it is, and sep after it; an
 * empty span adds nothing. */
static inline void
show_span(struct dkim_buf *b, const char *v, struct addr_span s,
    const char *sep)
{
	if (s.len == 0)
		return;
	dkim_buf_add(b, v + s.off, s.len);
	dkim_buf_adds(b, sep);
}

static inline void
show_mailbox(struct dkim_buf *b, const char *v, const struct addr_mailbox *m)
{
	show_span(b, v, m->name, " ");
	dkim_buf_adds(b, m->angle ? "<" : "");
	show_span(b, v, m->route, "");
	show_span(b, v, m->local, "@");
	show_span(b, v, m->domain, m->angle ? ">" : "");
}

/* show_list - the first nmb mailboxes and ngrp groups of a parse of v,
 * in value order, appended to b. */
static inline void
show_list(struct dkim_buf *b, const char *v, const struct addr_mailbox *mb,
    size_t nmb, const struct addr_group *grp, size_t ngrp)
{
	size_t i = 0, g = 0, k, start = b->len;

	while (i < nmb || g < ngrp) {
		if (b->len > start)
			dkim_buf_adds(b, ", ");
		if (g < ngrp && grp[g].first <= i) {
			show_span(b, v, grp[g].name, ":");
			for (k = 0; k < grp[g].count && i < nmb; k++) {
				dkim_buf_adds(b, k ? ", " : " ");
				show_mailbox(b, v, &mb[i++]);
			}
			dkim_buf_adds(b, ";");
			g++;
		} else
			show_mailbox(b, v, &mb[i++]);
	}
}

#endif
