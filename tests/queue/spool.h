/*
 * spool.h - a queue in a fresh spool under /tmp, for the queue tests:
 * spool_open makes and opens one, spool_close closes it and removes the
 * whole spool. Header-only, like tests/unit/unit.h. Needs _GNU_SOURCE
 * (nftw) and Criterion before it.
 */
#ifndef ARCRELAY_TESTS_SPOOL_H
#define ARCRELAY_TESTS_SPOOL_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "queue.h"

struct spool {
	char dir[64];
	struct queue *q;
};

static inline void
spool_open(struct spool *s)
{
	char why[256] = "";

	snprintf(s->dir, sizeof(s->dir), "/tmp/arcrelay-queue-XXXXXX");
	cr_assert(mkdtemp(s->dir) != NULL, "mkdtemp: %s", strerror(errno));
	s->q = queue_open(s->dir, why, sizeof(why));
	cr_assert(s->q != NULL, "queue_open(%s): %s", s->dir, why);
}

static inline int
spool_rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static inline void
spool_close(struct spool *s)
{
	queue_close(s->q);
	s->q = NULL;
	nftw(s->dir, spool_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
