/*
 * test_maildir_sync.c - relay/maildir.c's durability contract, checked
 * against the system calls it makes, as tests/queue/test_queue_sync.c does
 * for the queue.
 *
 * This executable defines mkdir, chown, fsync and link itself; the
 * maildir code (relaycore, a static library linked in here) binds to
 * them. Each passes the call on to the C library and, while a test
 * traces, logs it by inode. A test can make the next fsync of a chosen
 * directory fail with EIO. From the log a test checks, for every call
 * that returned true:
 *
 *   - each directory mkdir made had its parent fsynced, successfully,
 *     after the mkdir and before the call returned (and itself too when it
 *     was given an owner, after the chown);
 *   - the message file was fsynced before it was linked into new/, and
 *     new/ was fsynced after the link.
 *
 * Tables: maildir shapes (fresh under missing parents, some of tmp/ new/
 * cur/ missing, complete), each delivered into and prepared; a failing
 * parent sync takes the new directory back; maildir_usable's refusals.
 */
#define _GNU_SOURCE		/* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "maildir.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define EV_MAX 256

/* ---------------------------------------------------------- the trace */

enum ev_kind { EV_MKDIR, EV_CHOWN, EV_DIR_SYNC, EV_FILE_SYNC, EV_LINK };

struct ev {
	enum ev_kind kind;
	ino_t ino;		/* the directory made or synced, the file */
	ino_t parent;		/* EV_MKDIR: its parent; EV_LINK: new/ */
	int rc;
};

static struct ev evs[EV_MAX];
static size_t nev;
static bool tracing;
static ino_t fail_ino;		/* fail the next fsync of this inode */

static void
ev_add(enum ev_kind kind, ino_t ino, ino_t parent, int rc)
{
	if (tracing && nev < EV_MAX)
		evs[nev++] = (struct ev){ kind, ino, parent, rc };
}

static ino_t
path_ino(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* parent_ino - the inode of the directory holding path's last name. */
static ino_t
parent_ino(const char *path)
{
	char buf[4096];
	char *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	if ((slash = strrchr(buf, '/')) == NULL)
		return path_ino(".");
	if (slash == buf)
		slash++;
	*slash = '\0';
	return path_ino(buf);
}

static void *
next_fn(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (f == NULL)
		abort();
	return f;
}

int
mkdir(const char *path, mode_t mode)
{
	static int (*real)(const char *, mode_t);
	int rc;

	if (real == NULL)
		real = (int (*)(const char *, mode_t))next_fn("mkdir");
	rc = real(path, mode);
	if (rc == 0)
		ev_add(EV_MKDIR, path_ino(path), parent_ino(path), 0);
	return rc;
}

int
chown(const char *path, uid_t uid, gid_t gid)
{
	static int (*real)(const char *, uid_t, gid_t);
	int rc;

	if (real == NULL)
		real = (int (*)(const char *, uid_t, gid_t))next_fn("chown");
	rc = real(path, uid, gid);
	ev_add(EV_CHOWN, path_ino(path), 0, rc);
	return rc;
}

int
fsync(int fd)
{
	static int (*real)(int);
	struct stat st;
	int rc;

	if (real == NULL)
		real = (int (*)(int))next_fn("fsync");
	if (fstat(fd, &st) != 0)
		return real(fd);
	if (tracing && fail_ino != 0 && st.st_ino == fail_ino) {
		fail_ino = 0;
		ev_add(EV_DIR_SYNC, st.st_ino, 0, -1);
		errno = EIO;
		return -1;
	}
	rc = real(fd);
	ev_add(S_ISDIR(st.st_mode) ? EV_DIR_SYNC : EV_FILE_SYNC, st.st_ino, 0,
	    rc);
	return rc;
}

int
link(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);
	int rc;

	if (real == NULL)
		real = (int (*)(const char *, const char *))next_fn("link");
	rc = real(from, to);
	if (rc == 0)
		ev_add(EV_LINK, path_ino(to), parent_ino(to), 0);
	return rc;
}

/* synced_after - a successful fsync of ino logged after event k. */
static bool
synced_after(size_t k, ino_t ino)
{
	size_t i;

	for (i = k + 1; i < nev; i++)
		if (evs[i].kind == EV_DIR_SYNC && evs[i].ino == ino &&
		    evs[i].rc == 0)
			return true;
	return false;
}

/* check_trace - the contract above, for a call that returned true. */
static void
check_trace(const char *row)
{
	size_t k, i;

	cr_assert(nev < EV_MAX, "%s: trace overflowed", row);
	for (k = 0; k < nev; k++) {
		if (evs[k].kind == EV_MKDIR)
			cr_expect(synced_after(k, evs[k].parent), "%s: mkdir "
			    "of inode %lu: parent %lu not fsynced after it",
			    row, (unsigned long)evs[k].ino,
			    (unsigned long)evs[k].parent);
		if (evs[k].kind == EV_CHOWN)
			cr_expect(synced_after(k, evs[k].ino), "%s: chown of "
			    "inode %lu not fsynced after it", row,
			    (unsigned long)evs[k].ino);
		if (evs[k].kind == EV_LINK) {
			bool data = false;

			for (i = 0; i < k; i++)
				if (evs[i].kind == EV_FILE_SYNC &&
				    evs[i].ino == evs[k].ino && evs[i].rc == 0)
					data = true;
			cr_expect(data, "%s: message not fsynced before its "
			    "link into new/", row);
			cr_expect(synced_after(k, evs[k].parent), "%s: new/ "
			    "not fsynced after the link", row);
		}
	}
}

static size_t
count(enum ev_kind kind)
{
	size_t i, n = 0;

	for (i = 0; i < nev; i++)
		n += evs[i].kind == kind;
	return n;
}

/* ------------------------------------------------------------ the work */

static char top[256];		/* the temporary directory */
static char work[512];		/* the current row's, under it */

static void
setup(void)
{
	snprintf(top, sizeof(top), "/tmp/arcrelay-maildir-XXXXXX");
	cr_assert(mkdtemp(top) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(work, sizeof(work), "%s", top);
}

static void
teardown(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	(void)!system(cmd);
}

/* row_dir - a fresh directory for one table row, made the current one. */
static void
row_dir(const char *kind, size_t i)
{
	snprintf(work, sizeof(work), "%s/%s%zu", top, kind, i);
	cr_assert(mkdir(work, 0755) == 0, "mkdir %s: %s", work,
	    strerror(errno));
}

TestSuite(maildir_sync, .init = setup, .fini = teardown);

/* at - work/rel */
static const char *
at(const char *rel)
{
	static char bufs[4][1024];
	static unsigned next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", work, rel);
	return b;
}

static void
make_dirs(const char *const *rel)
{
	for (; *rel != NULL; rel++)
		cr_assert(mkdir(at(*rel), 0755) == 0, "mkdir %s: %s", *rel,
		    strerror(errno));
}

/*
 * A maildir shape: what exists before the call (made as 0755, so that
 * the 0700 of what the call makes stands out), the maildir's path, and
 * how many directories the call must make.
 */
struct shape {
	const char *name;
	const char *before[6];	/* NULL-terminated */
	const char *box;
	size_t made;
};

static const struct shape shapes[] = {
	{ "fresh, under missing parents", { NULL }, "a/b/Maildir", 6 },
	{ "parent there", { "a", NULL }, "a/Maildir", 4 },
	{ "cur missing", { "m", "m/tmp", "m/new", NULL }, "m", 1 },
	{ "only the top", { "m", NULL }, "m", 3 },
	{ "complete", { "m", "m/tmp", "m/new", "m/cur", NULL }, "m", 0 },
	{ "trailing and double slashes", { "a", NULL }, "a//box/", 4 },
};

/* check_modes - every directory of the box made by the call is 0700,
 * what was there before kept its 0755. */
static void
check_modes(const struct shape *s)
{
	static const char *const sub[] = { "", "/tmp", "/new", "/cur" };
	size_t i, j;

	for (i = 0; i < NELEM(sub); i++) {
		char rel[512];
		struct stat st;
		bool before = false;

		snprintf(rel, sizeof(rel), "%s%s", s->box, sub[i]);
		cr_assert(stat(at(rel), &st) == 0 && S_ISDIR(st.st_mode),
		    "%s: %s is not a directory", s->name, rel);
		for (j = 0; s->before[j] != NULL; j++) {
			if (path_ino(at(s->before[j])) == st.st_ino)
				before = true;
		}
		cr_expect((st.st_mode & 07777) == (before ? 0755u : 0700u),
		    "%s: %s: got mode %04o, want %04o", s->name, rel,
		    (unsigned)(st.st_mode & 07777), before ? 0755u : 0700u);
	}
}

Test(maildir_sync, deliver_into_each_shape)
{
	static const char msg[] = "Subject: x\r\n\r\nbody\r\n";
	size_t i;

	for (i = 0; i < NELEM(shapes); i++) {
		const struct shape *s = &shapes[i];
		char name[1400], why[512];
		bool ok;

		row_dir("deliver", i);
		make_dirs(s->before);
		nev = 0;
		tracing = true;
		ok = maildir_deliver(at(s->box), msg, sizeof(msg) - 1, name,
		    sizeof(name), why, sizeof(why));
		tracing = false;
		cr_expect(ok, "%s: delivery failed: %s", s->name, why);
		if (ok) {
			check_trace(s->name);
			cr_expect(count(EV_MKDIR) == s->made, "%s: got %zu "
			    "directories made, want %zu", s->name,
			    count(EV_MKDIR), s->made);
			cr_expect(count(EV_LINK) == 1, "%s: got %zu links, "
			    "want 1", s->name, count(EV_LINK));
			check_modes(s);
		}
	}
}

Test(maildir_sync, prepare_gives_what_it_makes)
{
	size_t i;

	for (i = 0; i < NELEM(shapes); i++) {
		const struct shape *s = &shapes[i];
		char why[512];
		bool ok;

		row_dir("prepare", i);
		make_dirs(s->before);
		nev = 0;
		tracing = true;
		/* Our own ids: a chown any user may make. */
		ok = maildir_prepare(at(s->box), getuid(), getgid(), why,
		    sizeof(why));
		tracing = false;
		cr_expect(ok, "%s: prepare failed: %s", s->name, why);
		if (ok) {
			check_trace(s->name);
			cr_expect(count(EV_CHOWN) == s->made, "%s: got %zu "
			    "chowns, want %zu (what was made, nothing else)",
			    s->name, count(EV_CHOWN), s->made);
			check_modes(s);
			cr_expect(maildir_usable(at(s->box), why,
			    sizeof(why)), "%s: not usable: %s", s->name, why);
		}
	}
}

/* A parent sync that fails: the directory goes again, and the next call
 * makes it, and syncs it, afresh. */
Test(maildir_sync, failed_parent_sync_takes_the_directory_back)
{
	static const char msg[] = "Subject: x\r\n\r\nbody\r\n";
	char name[1400], why[512];
	bool ok;

	make_dirs((const char *const[]){ "m", "m/tmp", "m/cur", NULL });
	fail_ino = path_ino(at("m"));
	nev = 0;
	tracing = true;
	ok = maildir_deliver(at("m"), msg, sizeof(msg) - 1, name,
	    sizeof(name), why, sizeof(why));
	tracing = false;
	cr_expect(!ok, "delivery succeeded with the sync of m failing");
	cr_expect(strstr(why, "m/new") != NULL && strstr(why, "Input/output error") != NULL,
	    "got reason \"%s\", want one naming m/new and the error", why);
	cr_expect(path_ino(at("m/new")) == 0, "m/new left behind");
	nev = 0;
	tracing = true;
	ok = maildir_deliver(at("m"), msg, sizeof(msg) - 1, name,
	    sizeof(name), why, sizeof(why));
	tracing = false;
	cr_expect(ok, "retry failed: %s", why);
	cr_expect(count(EV_MKDIR) == 1, "retry: got %zu directories made, "
	    "want 1", count(EV_MKDIR));
	check_trace("retry");
}

struct unusable {
	const char *name;
	const char *before[5];
	const char *file;	/* made as a plain file, or NULL */
	const char *box;
	const char *want;	/* in the reason */
};

static const struct unusable unusable_cases[] = {
	{ "missing", { NULL }, NULL, "m", "m: No such file or directory" },
	{ "new missing", { "m", "m/tmp", "m/cur", NULL }, NULL, "m",
	    "m/new: No such file or directory" },
	{ "a file", { NULL }, "m", "m", "m is not a directory" },
	{ "new a file", { "m", "m/tmp", "m/cur", NULL }, "m/new", "m",
	    "m/new is not a directory" },
};

Test(maildir_sync, usable_refusals)
{
	size_t i;

	for (i = 0; i < NELEM(unusable_cases); i++) {
		const struct unusable *u = &unusable_cases[i];
		char why[512] = "";
		FILE *fp;

		row_dir("u", i);
		make_dirs(u->before);
		if (u->file != NULL) {
			cr_assert((fp = fopen(at(u->file), "w")) != NULL);
			fclose(fp);
		}
		cr_expect(!maildir_usable(at(u->box), why, sizeof(why)),
		    "%s: usable", u->name);
		cr_expect(strstr(why, u->want) != NULL, "%s: got \"%s\", "
		    "want it to hold \"%s\"", u->name, why, u->want);
	}
}

/* Not writable: only meaningful when this process is not root. */
Test(maildir_sync, usable_not_writable)
{
	char why[512] = "";

	if (geteuid() == 0)
		cr_skip_test("root may write anywhere (tests/daemon/user.sh "
		    "checks this as nobody)");
	make_dirs((const char *const[]){ "m", "m/tmp", "m/new", "m/cur",
	    NULL });
	cr_assert(chmod(at("m/new"), 0500) == 0);
	cr_expect(!maildir_usable(at("m"), why, sizeof(why)) &&
	    strstr(why, "m/new is not readable and writable") != NULL &&
	    strstr(why, "mode 0500") != NULL, "got \"%s\"", why);
	chmod(at("m/new"), 0700);
}
