/*
 * test_queue_sync.c - the queue's durability contract, checked against the
 * system calls it makes rather than by crashing a machine.
 *
 * This executable defines fsync, fdatasync, pwrite, ftruncate, renameat
 * and unlinkat itself. The queue's calls bind to these (relaycore is a static library
 * linked into this executable); each passes the call on to the C library
 * and, while a test traces, appends an event to a log. A test can also
 * make fsync of the queue directory fail with EIO. From the log a test
 * then checks, for every commit that returned true:
 *
 *   - each file renamed into queue/ was data-synced after it was last
 *     written and before its rename;
 *   - the first fsync of queue/ to begin after the commit's last rename
 *     ended, successfully, before the commit returned, and the fsync that
 *     was running during that rename (if any) did not fail;
 *
 * and, for every write (pwrite or ftruncate): the file has no name in
 * queue/, and if it once had one (a spare), its removal from queue/ was
 * made durable, by the same rule, before the write. Every ftruncate must
 * also shorten its file: a spare is cut only when the new bytes are
 * shorter than the old.
 *
 * Tests: a commit, an update and a second commit with the directory sync
 * failing; many threads committing and removing while one directory sync
 * in seven fails; many threads committing and removing, every committed
 * message read back after the queue is reopened; a table of commits over
 * spares, each checked for the file it reused (a message's for a message,
 * an envelope's for an envelope) and for whether it was cut.
 */
#define _GNU_SOURCE		/* RTLD_NEXT, nftw */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "queue.h"
#include "spool.h"
#include "unit.h"

/* ---------------------------------------------------------- the trace */

enum ev_kind {
	EV_FILE_SYNC,		/* fsync or fdatasync of a regular file */
	EV_DIR_BEGIN,		/* fsync of a directory begins */
	EV_DIR_END,		/* ... and ends (rc) */
	EV_WRITE,		/* pwrite */
	EV_RENAME,		/* ino moved from dir to dir */
	EV_UNLINK,		/* ino lost a name in dir (unlink, replaced) */
	EV_COMMIT_BEGIN,	/* logged by the test around queue_commit */
	EV_COMMIT_END,		/* rc: 1 if it returned true */
};

struct ev {
	enum ev_kind kind;
	int tid;		/* the test's number for the thread */
	ino_t ino;		/* the file, or the directory synced */
	ino_t from, to;		/* EV_RENAME: directories; EV_UNLINK: to */
	int rc;
};

#define EV_MAX 400000

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ev *evs;
static size_t nev;
static bool ev_overflow;
static atomic_bool tracing;
static __thread int trace_tid;

static ino_t qdir_ino;		/* SPOOL/queue of the spool under test */
static atomic_uint truncs;	/* ftruncate calls while tracing */
static atomic_uint needless_truncs;	/* ... that did not shorten the file */
static atomic_uint fail_every;	/* fail every Nth fsync of qdir_ino (0: never) */
static atomic_uint dir_syncs;	/* fsyncs of qdir_ino so far */

/* ev_add_locked - append an event; the caller holds ev_mu. */
static void
ev_add_locked(enum ev_kind kind, ino_t ino, ino_t from, ino_t to, int rc)
{
	if (!atomic_load(&tracing))
		return;
	if (nev < EV_MAX)
		evs[nev++] = (struct ev){ kind, trace_tid, ino, from, to, rc };
	else
		ev_overflow = true;
}

static void
ev_add(enum ev_kind kind, ino_t ino, ino_t from, ino_t to, int rc)
{
	pthread_mutex_lock(&ev_mu);
	ev_add_locked(kind, ino, from, to, rc);
	pthread_mutex_unlock(&ev_mu);
}

static ino_t
fd_ino(int fd, bool *is_dir)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return 0;
	if (is_dir)
		*is_dir = S_ISDIR(st.st_mode);
	return st.st_ino;
}

static ino_t
name_ino(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ?
	    st.st_ino : 0;
}

/* next_fn - the C library's definition of a function this file replaces. */
static void *
next_fn(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (f == NULL)
		abort();
	return f;
}

/* sync_common - fsync and fdatasync: log, maybe fail a directory sync. */
static int
sync_common(int fd, int (*real)(int))
{
	bool dir = false;
	ino_t ino = fd_ino(fd, &dir);
	int rc, e;

	if (!dir) {
		rc = real(fd);
		ev_add(EV_FILE_SYNC, ino, 0, 0, rc);
		return rc;
	}
	ev_add(EV_DIR_BEGIN, ino, 0, 0, 0);
	if (ino == qdir_ino) {
		unsigned n = atomic_fetch_add(&dir_syncs, 1) + 1;
		unsigned every = atomic_load(&fail_every);

		if (every != 0 && n % every == 0) {
			ev_add(EV_DIR_END, ino, 0, 0, -1);
			errno = EIO;
			return -1;
		}
	}
	rc = real(fd);
	e = errno;
	ev_add(EV_DIR_END, ino, 0, 0, rc);
	errno = e;
	return rc;
}

int
fsync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))next_fn("fsync");
	return sync_common(fd, real);
}

int
fdatasync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))next_fn("fdatasync");
	return sync_common(fd, real);
}

ssize_t
pwrite(int fd, const void *p, size_t n, off_t at)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);

	if (real == NULL)
		real = (ssize_t (*)(int, const void *, size_t, off_t))
		    next_fn("pwrite");
	if (atomic_load(&tracing))
		ev_add(EV_WRITE, fd_ino(fd, NULL), 0, 0, 0);	/* before it */
	return real(fd, p, n, at);
}

int
ftruncate(int fd, off_t len)
{
	static int (*real)(int, off_t);
	struct stat st;

	if (real == NULL)
		real = (int (*)(int, off_t))next_fn("ftruncate");
	if (atomic_load(&tracing)) {
		ev_add(EV_WRITE, fd_ino(fd, NULL), 0, 0, 0);
		atomic_fetch_add(&truncs, 1);
		if (fstat(fd, &st) == 0 && st.st_size <= len)
			atomic_fetch_add(&needless_truncs, 1);
	}
	return real(fd, len);
}

int
renameat(int ofd, const char *old, int nfd, const char *new)
{
	static int (*real)(int, const char *, int, const char *);
	ino_t ino = 0, replaced = 0, from = 0, to = 0;
	int rc, e;

	if (real == NULL)
		real = (int (*)(int, const char *, int, const char *))
		    next_fn("renameat");
	if (!atomic_load(&tracing))
		return real(ofd, old, nfd, new);
	/* The names, the call and its log at once: an inode freed here and
	 * created again elsewhere must appear in that order. */
	pthread_mutex_lock(&ev_mu);
	ino = name_ino(ofd, old);
	replaced = name_ino(nfd, new);
	from = fd_ino(ofd, NULL);
	to = fd_ino(nfd, NULL);
	rc = real(ofd, old, nfd, new);
	e = errno;
	if (rc == 0 && replaced != 0)
		ev_add_locked(EV_UNLINK, replaced, 0, to, 0);
	if (rc == 0)
		ev_add_locked(EV_RENAME, ino, from, to, 0);
	pthread_mutex_unlock(&ev_mu);
	errno = e;
	return rc;
}

int
unlinkat(int dfd, const char *name, int flags)
{
	static int (*real)(int, const char *, int);
	ino_t ino = 0, dir = 0;
	int rc, e;

	if (real == NULL)
		real = (int (*)(int, const char *, int))next_fn("unlinkat");
	if (!atomic_load(&tracing))
		return real(dfd, name, flags);
	pthread_mutex_lock(&ev_mu);
	ino = name_ino(dfd, name);
	dir = fd_ino(dfd, NULL);
	rc = real(dfd, name, flags);
	e = errno;
	if (rc == 0)
		ev_add_locked(EV_UNLINK, ino, 0, dir, 0);
	pthread_mutex_unlock(&ev_mu);
	errno = e;
	return rc;
}

/* ------------------------------------------------------------ spools */

/* queue_dir_ino - note which directory the fsync hook watches. */
static void
queue_dir_ino(const struct spool *s)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/queue", s->dir);
	cr_assert(stat(p, &st) == 0);
	qdir_ino = st.st_ino;
}

static void
spool_reopen(struct spool *s)
{
	char why[256] = "";

	queue_close(s->q);
	s->q = queue_open(s->dir, why, sizeof(why));
	cr_assert(s->q != NULL, "queue_open(%s) again: %s", s->dir, why);
}

static void
trace_start(void)
{
	if (evs == NULL)
		evs = malloc(EV_MAX * sizeof(*evs));
	cr_assert(evs != NULL);
	nev = 0;
	ev_overflow = false;
	atomic_store(&dir_syncs, 0);
	atomic_store(&truncs, 0);
	atomic_store(&needless_truncs, 0);
	atomic_store(&tracing, true);
}

static void
trace_stop(void)
{
	atomic_store(&tracing, false);
	atomic_store(&fail_every, 0);
	cr_assert(!ev_overflow, "more than %d events: raise EV_MAX", EV_MAX);
	cr_expect(atomic_load(&needless_truncs) == 0, "%u of %u ftruncate "
	    "calls did not shorten their file", atomic_load(&needless_truncs),
	    atomic_load(&truncs));
}

static struct q_envelope *
env_new(const char *sender)
{
	struct q_envelope *e = calloc(1, sizeof(*e));

	cr_assert(e != NULL);
	e->sender = strdup(sender);
	e->rcpt = calloc(1, sizeof(*e->rcpt));
	cr_assert(e->sender && e->rcpt);
	e->rcpt[0].addr = strdup("rcpt@example.net");
	e->nrcpt = 1;
	e->first_seen = 1700000000;
	e->rcpt[0].next_retry = 1700000000;
	return e;
}

/* --------------------------------------------------- the log's checks */

/* A directory sync of queue/: the indexes of its two events. */
struct dsync {
	size_t begin, end;
	bool ok;
};

struct analysis {
	struct dsync *ds;
	size_t nds;
	char err[512];		/* the first violation, "" if none */
	size_t commits_ok, commits_failed, spare_writes;
};

static void
violation(struct analysis *a, const char *fmt, size_t i)
{
	if (a->err[0] == '\0')
		snprintf(a->err, sizeof(a->err), fmt, i);
}

/*
 * covered - has the change logged at index at been made durable by index
 * before: the first queue/ sync to begin after it ended successfully
 * before then, and the one running at that moment, if any, did not fail?
 */
static bool
covered(const struct analysis *a, size_t at, size_t before)
{
	size_t lo = 0, hi = a->nds;

	while (lo < hi) {		/* the first sync begun after at */
		size_t mid = (lo + hi) / 2;

		if (a->ds[mid].begin < at)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == a->nds || a->ds[lo].end > before || !a->ds[lo].ok)
		return false;
	if (lo > 0 && a->ds[lo - 1].end > at && !a->ds[lo - 1].ok)
		return false;
	return true;
}

/* Per inode: where it stands, for the write checks. */
struct istate {
	ino_t ino;
	bool in_queue;		/* has a name in queue/ */
	size_t left_queue;	/* index of its rename out of queue/, or 0 */
	size_t synced;		/* index of its last data sync, or 0 */
	size_t written;		/* index of its last write, or 0 */
};

static struct istate *
ist(struct istate *t, size_t cap, ino_t ino)
{
	size_t h = (size_t)ino * 2654435761u % cap;

	while (t[h].ino != 0 && t[h].ino != ino)
		h = (h + 1) % cap;
	t[h].ino = ino;
	return &t[h];
}

/* analyse - walk the log once; a->err names the first violation. */
static void
analyse(struct analysis *a)
{
	size_t cap = 1 << 18, open_begin = 0;
	struct istate *t = calloc(cap, sizeof(*t));
	/* Per test thread, in its current commit: its renames into queue/
	 * and how many it made. */
	size_t crename[64][2] = { { 0 } }, cnrename[64] = { 0 };
	bool in_commit[64] = { false }, open = false;

	memset(a, 0, sizeof(*a));
	a->ds = calloc(nev + 1, sizeof(*a->ds));
	cr_assert(t && a->ds);
	/* Index 0 means "none", so events count from 1. */
	for (size_t i = 0; i < nev; i++) {
		const struct ev *e = &evs[i];

		if (e->kind == EV_DIR_BEGIN && e->ino == qdir_ino) {
			if (open)
				violation(a, "event %zu: two syncs of queue/ "
				    "at once", i + 1);
			open = true;
			open_begin = i + 1;
		} else if (e->kind == EV_DIR_END && e->ino == qdir_ino) {
			a->ds[a->nds++] = (struct dsync){ open_begin, i + 1,
			    e->rc == 0 };
			open = false;
		}
	}
	for (size_t k = 0; k < nev; k++) {
		const struct ev *e = &evs[k];
		size_t i = k + 1;
		int tid = e->tid;
		struct istate *s;

		cr_assert(tid >= 0 && tid < 64);
		switch (e->kind) {
		case EV_COMMIT_BEGIN:
			in_commit[tid] = true;
			cnrename[tid] = 0;
			break;
		case EV_COMMIT_END:
			in_commit[tid] = false;
			if (e->rc != 1) {
				a->commits_failed++;
				break;
			}
			a->commits_ok++;
			if (cnrename[tid] != 2)
				violation(a, "event %zu: a commit returned "
				    "true without renaming two files into "
				    "queue/", i);
			else if (!covered(a, crename[tid][0], i) ||
			    !covered(a, crename[tid][1], i))
				violation(a, "event %zu: a commit returned "
				    "true before a directory sync covered "
				    "its renames", i);
			break;
		case EV_FILE_SYNC:
			if (e->rc == 0)
				ist(t, cap, e->ino)->synced = i;
			break;
		case EV_WRITE:
			s = ist(t, cap, e->ino);
			s->written = i;
			if (s->in_queue)
				violation(a, "event %zu: a write to a file "
				    "named in queue/", i);
			if (s->left_queue != 0) {
				a->spare_writes++;
				if (!covered(a, s->left_queue, i))
					violation(a, "event %zu: a spare "
					    "overwritten before its removal "
					    "from queue/ was durable", i);
				s->left_queue = 0;
			}
			break;
		case EV_RENAME:
			s = ist(t, cap, e->ino);
			if (e->to == qdir_ino && e->from != qdir_ino) {
				if (s->synced == 0 || s->synced < s->written)
					violation(a, "event %zu: a file renamed "
					    "into queue/ without a data sync "
					    "after its last write", i);
				s->in_queue = true;
				s->left_queue = 0;
				if (in_commit[tid] && cnrename[tid] < 2)
					crename[tid][cnrename[tid]++] = i;
				else if (in_commit[tid])
					cnrename[tid]++;
			} else if (e->from == qdir_ino && e->to != qdir_ino) {
				s->in_queue = false;
				s->left_queue = i;
			}
			break;
		case EV_UNLINK:
			s = ist(t, cap, e->ino);
			s->in_queue = false;
			s->left_queue = 0;
			s->synced = s->written = 0;
			break;
		case EV_DIR_BEGIN:
		case EV_DIR_END:
			break;
		}
	}
	free(t);
}

static void
analysis_free(struct analysis *a)
{
	free(a->ds);
	a->ds = NULL;
}

/* ----------------------------------------------------------- threads */

#define NTHREADS 6
#define PER_THREAD 150
#define KEEP 5			/* each thread removes what it committed
				 * KEEP commits ago */

struct worker {
	struct spool *s;
	int n;
	char id[PER_THREAD][QUEUE_ID_MAX];
	bool ok[PER_THREAD];
	bool removed[PER_THREAD];
	size_t nfail;
	char why[256];		/* the first failure's reason */
};

/* body - the message of commit i of thread n: its size varies, so spares
 * are overwritten with shorter and longer contents. */
static char *
body(int n, int i, size_t *len)
{
	size_t size = 40 + (size_t)((i * 7919 + n * 104729) % 9000);
	char *p = malloc(size + 1);
	int k;

	cr_assert(p != NULL);
	k = snprintf(p, size + 1, "Message %d/%d\r\n", n, i);
	for (size_t j = (size_t)k; j < size; j++)
		p[j] = (char)('a' + (j + (size_t)i) % 26);
	p[size] = '\0';
	*len = size;
	return p;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;

	trace_tid = w->n + 1;
	for (int i = 0; i < PER_THREAD; i++) {
		char sender[64], why[256] = "";
		struct q_envelope *e;
		size_t len;
		char *msg = body(w->n, i, &len);

		snprintf(sender, sizeof(sender), "w%d-%d@example.org", w->n, i);
		e = env_new(sender);
		ev_add(EV_COMMIT_BEGIN, 0, 0, 0, 0);
		w->ok[i] = queue_commit(w->s->q, msg, len, e, why, sizeof(why));
		ev_add(EV_COMMIT_END, 0, 0, 0, w->ok[i]);
		memcpy(w->id[i], e->id, QUEUE_ID_MAX);
		if (!w->ok[i] && w->nfail++ == 0)
			snprintf(w->why, sizeof(w->why), "%s", why);
		q_envelope_free(e);
		free(msg);
		if (i >= KEEP && w->ok[i - KEEP]) {
			w->removed[i - KEEP] = queue_remove(w->s->q,
			    w->id[i - KEEP]);
		}
	}
	return NULL;
}

/* run_workers - NTHREADS threads committing and removing, traced. */
static void
run_workers(struct spool *s, struct worker *w)
{
	pthread_t t[NTHREADS];

	for (int i = 0; i < NTHREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].s = s;
		w[i].n = i;
		cr_assert(pthread_create(&t[i], NULL, worker_run, &w[i]) == 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
}

/* check_reopened - after a reopen: every commit that returned true and
 * was not removed is queued with its own bytes; nothing else is. */
static void
check_reopened(struct spool *s, const struct worker *w)
{
	size_t want = 0, loaded;

	spool_reopen(s);
	for (int n = 0; n < NTHREADS; n++) {
		for (int i = 0; i < PER_THREAD; i++) {
			size_t len, wlen;
			char *got, *exp;

			if (!w[n].ok[i]) {
				got = queue_read(s->q, w[n].id[i], &len);
				cr_expect(got == NULL, "thread %d commit %d "
				    "failed but %s is queued", n, i,
				    w[n].id[i]);
				free(got);
				continue;
			}
			if (w[n].removed[i])
				continue;
			cr_expect(i >= PER_THREAD - KEEP, "thread %d commit "
			    "%d: %s was not removed", n, i, w[n].id[i]);
			want++;
			got = queue_read(s->q, w[n].id[i], &len);
			exp = body(n, i, &wlen);
			cr_expect(got != NULL && len == wlen &&
			    memcmp(got, exp, len) == 0, "thread %d commit %d: "
			    "%s read back %zu bytes \"%s\", want %zu bytes "
			    "\"%s\"", n, i, w[n].id[i], got ? len : 0,
			    got ? esc(got, len < 40 ? len : 40) : "(none)",
			    wlen, esc(exp, 40));
			free(got);
			free(exp);
		}
	}
	loaded = queue_scan(s->q, NULL, NULL, NULL);
	cr_expect(loaded == want, "the scan loaded %zu envelopes, want %zu",
	    loaded, want);
}

/* commit - queue_commit, marked in the trace. */
static bool
commit(struct spool *s, const char *data, struct q_envelope *e, char *why,
    size_t whylen)
{
	bool ok;

	ev_add(EV_COMMIT_BEGIN, 0, 0, 0, 0);
	ok = queue_commit(s->q, data, strlen(data), e, why, whylen);
	ev_add(EV_COMMIT_END, 0, 0, 0, ok);
	return ok;
}

/* ------------------------------------------------------------- tests */

Test(queue_sync, failed_directory_sync_fails_the_commit)
{
	struct spool s;
	struct q_envelope *e = env_new("a@example.org");
	char why[256] = "", name[PATH_MAX];
	struct analysis a;

	spool_open(&s);
	queue_dir_ino(&s);
	trace_start();
	atomic_store(&fail_every, 1);
	cr_expect(!commit(&s, "x\r\n", e, why, sizeof(why)),
	    "queue_commit returned true with every directory sync failing");
	cr_expect(strstr(why, "fsync") != NULL && strstr(why, "queue/") !=
	    NULL, "reason got \"%s\", want one naming the fsync of queue/",
	    why);
	snprintf(name, sizeof(name), "%s/queue/%s.env", s.dir, e->id);
	cr_expect(access(name, F_OK) != 0, "%s left behind", name);
	snprintf(name, sizeof(name), "%s/queue/%s.msg", s.dir, e->id);
	cr_expect(access(name, F_OK) != 0, "%s left behind", name);

	/* The sync works again: a commit, then an update that fails. */
	atomic_store(&fail_every, 0);
	cr_assert(commit(&s, "y\r\n", e, why, sizeof(why)),
	    "queue_commit: %s", why);
	atomic_store(&fail_every, 1);
	e->rcpt[0].attempts = 1;
	why[0] = '\0';
	cr_expect(!queue_update(s.q, e, why, sizeof(why)), "queue_update "
	    "returned true with the directory sync failing");
	cr_expect(strstr(why, "fsync") != NULL, "update reason got \"%s\"",
	    why);
	trace_stop();

	analyse(&a);
	cr_expect(a.err[0] == '\0', "%s", a.err);
	cr_expect(a.commits_ok == 1 && a.commits_failed == 1, "traced %zu "
	    "good and %zu failed commits, want 1 and 1", a.commits_ok,
	    a.commits_failed);
	analysis_free(&a);
	q_envelope_free(e);
	spool_close(&s);
}

Test(queue_sync, concurrent_commits_with_failing_syncs, .timeout = 120)
{
	static struct worker w[NTHREADS];
	struct spool s;
	struct analysis a;
	size_t failed = 0;

	spool_open(&s);
	queue_dir_ino(&s);
	trace_start();
	atomic_store(&fail_every, 7);
	run_workers(&s, w);
	trace_stop();
	for (int i = 0; i < NTHREADS; i++) {
		failed += w[i].nfail;
		cr_expect(w[i].nfail == 0 || strstr(w[i].why, "fsync") != NULL,
		    "thread %d: a commit failed for another reason: %s", i,
		    w[i].why);
	}
	cr_expect(failed > 0, "no commit failed although one directory sync "
	    "in seven did");
	analyse(&a);
	cr_expect(a.err[0] == '\0', "%s", a.err);
	cr_log_info("%zu commits ok, %zu failed, %zu directory syncs, %zu "
	    "spare files overwritten", a.commits_ok, a.commits_failed,
	    a.nds, a.spare_writes);
	analysis_free(&a);
	check_reopened(&s, w);
	spool_close(&s);
}

Test(queue_sync, concurrent_commits_all_readable_after_reopen,
    .timeout = 120)
{
	static struct worker w[NTHREADS];
	struct spool s;
	struct analysis a;

	spool_open(&s);
	queue_dir_ino(&s);
	trace_start();
	run_workers(&s, w);
	trace_stop();
	for (int i = 0; i < NTHREADS; i++)
		cr_expect(w[i].nfail == 0, "thread %d: %zu commits failed, the "
		    "first: %s", i, w[i].nfail, w[i].why);
	analyse(&a);
	cr_expect(a.err[0] == '\0', "%s", a.err);
	cr_expect(a.commits_ok == NTHREADS * PER_THREAD, "traced %zu good "
	    "commits, want %d", a.commits_ok, NTHREADS * PER_THREAD);
	/* Removals feed later commits: most files should be reused ones. */
	cr_expect(a.spare_writes > 0, "no spare file was ever reused");
	cr_expect(a.nds < a.commits_ok, "%zu directory syncs for %zu "
	    "commits: none was shared", a.nds, a.commits_ok);
	cr_log_info("%zu commits, %zu directory syncs, %zu spare files "
	    "overwritten", a.commits_ok, a.nds, a.spare_writes);
	analysis_free(&a);
	check_reopened(&s, w);
	spool_close(&s);
}

/* ----------------------------------------------------- spares by kind */

/* file_ino - the inode of SPOOL/queue/ID.EXT. */
static ino_t
file_ino(const struct spool *s, const char *id, const char *ext)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/queue/%s.%s", s->dir, id, ext);
	return stat(p, &st) == 0 ? st.st_ino : 0;
}

/* sized - a message of exactly n bytes (malloc'd, NUL-terminated). */
static char *
sized(size_t n, char fill)
{
	char *p = malloc(n + 1);

	cr_assert(p != NULL);
	memset(p, fill, n);
	p[n] = '\0';
	return p;
}

/*
 * A commit over the spares of a removed message: its message goes into
 * the removed message's file and its envelope into the removed
 * envelope's, and a file is cut (ftruncate) only when its new bytes are
 * shorter. Each row: the removed message's size and sender, the new
 * one's, and the ftruncate calls wanted.
 */
Test(queue_sync, spares_reused_by_kind)
{
	static const struct {
		size_t old_size;
		const char *old_sender;
		size_t new_size;
		const char *new_sender;
		unsigned truncs;
	} rows[] = {
		{ 5000, "a@example.org", 5000, "b@example.org", 0 },
		{ 3000, "a@example.org", 9000, "b@example.org", 0 },
		{ 9000, "a@example.org", 40, "b@example.org", 1 },
		{ 100, "a@example.org", 0, "b@example.org", 1 },
		{ 700, "a-much-longer-sender@example.org", 700,
		    "b@example.org", 1 },
		{ 700, "a@example.org", 300,
		    "b-much-longer-sender@example.org", 1 },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct q_envelope *old = env_new(rows[i].old_sender);
		struct q_envelope *mid = env_new("m@example.org");
		struct q_envelope *e = env_new(rows[i].new_sender);
		char *ob = sized(rows[i].old_size, 'o');
		char *nb = sized(rows[i].new_size, 'n');
		char why[256] = "";
		ino_t msg_ino, env_ino;
		struct analysis a;
		struct spool s;
		size_t len;
		char *got;

		spool_open(&s);
		queue_dir_ino(&s);
		cr_assert(queue_commit(s.q, ob, rows[i].old_size, old, why,
		    sizeof(why)), "row %zu: commit: %s", i, why);
		msg_ino = file_ino(&s, old->id, "msg");
		env_ino = file_ino(&s, old->id, "env");
		trace_start();
		cr_assert(queue_remove(s.q, old->id), "row %zu: remove", i);
		/* A commit in between: its directory sync makes the removal
		 * durable, so the spares may be overwritten. */
		cr_assert(commit(&s, "mid\r\n", mid, why, sizeof(why)),
		    "row %zu: commit: %s", i, why);
		cr_assert(commit(&s, nb, e, why, sizeof(why)),
		    "row %zu: commit: %s", i, why);
		trace_stop();

		cr_expect(file_ino(&s, e->id, "msg") == msg_ino &&
		    file_ino(&s, e->id, "env") == env_ino, "row %zu: the "
		    "message went into inode %lu (want %lu, the removed "
		    "message's) and the envelope into %lu (want %lu)", i,
		    (unsigned long)file_ino(&s, e->id, "msg"),
		    (unsigned long)msg_ino,
		    (unsigned long)file_ino(&s, e->id, "env"),
		    (unsigned long)env_ino);
		cr_expect(atomic_load(&truncs) == rows[i].truncs, "row %zu: "
		    "%u ftruncate calls, want %u", i, atomic_load(&truncs),
		    rows[i].truncs);
		analyse(&a);
		cr_expect(a.err[0] == '\0', "row %zu: %s", i, a.err);
		cr_expect(a.spare_writes == 2, "row %zu: %zu spare files "
		    "overwritten, want 2", i, a.spare_writes);
		analysis_free(&a);
		got = queue_read(s.q, e->id, &len);
		cr_expect(got != NULL && len == rows[i].new_size &&
		    memcmp(got, nb, len) == 0, "row %zu: read back %zu bytes, "
		    "want %zu bytes of 'n'", i, got ? len : 0,
		    rows[i].new_size);
		free(got);
		spool_reopen(&s);
		cr_expect(queue_scan(s.q, NULL, NULL, NULL) == 2, "row %zu: "
		    "want the two later commits after a reopen", i);

		q_envelope_free(old);
		q_envelope_free(mid);
		q_envelope_free(e);
		free(ob);
		free(nb);
		spool_close(&s);
	}
}
