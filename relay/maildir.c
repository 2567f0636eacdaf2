/*
 * maildir.c - maildir delivery (see maildir.h).
 *
 * Names follow the maildir convention: TIME.MUSECPPIDQCOUNTRRANDOM.HOST,
 * where COUNT is this process's delivery counter and RANDOM 64 bits from
 * the kernel, so two deliveries (threads, processes, hosts sharing the
 * directory) never pick the same name; '/' and ':' in the host name are
 * written as \057 and \072. The file goes to new/ with link(), which
 * refuses to replace an existing file, then tmp/ is cleaned up.
 *
 * The message bytes are stored exactly as queued (CRLF lines): what lands
 * in the folder is byte for byte what would have gone on the wire, which
 * is what signature checks downstream of the relay want to see.
 *
 * Every directory made here (the maildir, tmp/, new/, cur/ and missing
 * parents) is fsynced into its parent before anything is put in it, so
 * that the first message acknowledged into a fresh maildir survives a
 * power cut as the later ones do.
 *
 * SECURITY: dir comes from the configuration, never from mail. The message
 * is data only; nothing in it picks a path.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "maildir.h"

static atomic_uint maildir_count;
static pthread_mutex_t maildir_mu = PTHREAD_MUTEX_INITIALIZER;

/* fsync_dir - fsync the directory at path. */
static bool
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e;
	bool ok;

	if (fd < 0)
		return false;
	ok = fsync(fd) == 0;
	e = errno;
	close(fd);
	errno = e;
	return ok;
}

/*
 * made_durable - path is a directory mkdir just made: give it to uid:gid
 * (unless both are -1) and fsync its entry into the parent. On failure it
 * is removed again, so that the next try makes it, and syncs it, afresh
 * instead of finding it there and trusting it.
 */
static bool
made_durable(const char *path, uid_t uid, gid_t gid, char *why,
    size_t whylen)
{
	const char *slash = strrchr(path, '/');
	char parent[4096];
	bool owned = uid != (uid_t)-1 || gid != (gid_t)-1;
	int e;

	if (slash == NULL)
		snprintf(parent, sizeof(parent), ".");
	else
		snprintf(parent, sizeof(parent), "%.*s",
		    slash == path ? 1 : (int)(slash - path), path);
	/* A new owner is a change to the directory's own inode: sync it. */
	if (owned && chown(path, uid, gid) != 0) {
		e = errno;
		rmdir(path);
		snprintf(why, whylen, "chown %s: %s", path, strerror(e));
		return false;
	}
	if ((owned && !fsync_dir(path)) || !fsync_dir(parent)) {
		e = errno;
		rmdir(path);
		snprintf(why, whylen, "fsync of %s, just made: %s", path,
		    strerror(e));
		return false;
	}
	return true;
}

/* mkdirs - mkdir -p with mode 0700 for what it creates; each directory
 * made goes durably into its parent (made_durable). */
static bool
mkdirs(const char *path, uid_t uid, gid_t gid, char *why, size_t whylen)
{
	char buf[4096];
	size_t n = strlen(path), i;

	if (n == 0 || n >= sizeof(buf)) {
		snprintf(why, whylen, "maildir path '%s' is empty or too long",
		    path);
		return false;
	}
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++) {
		if ((buf[i] != '/' && buf[i] != '\0') || buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) == 0) {
			if (!made_durable(buf, uid, gid, why, whylen))
				return false;
		} else if (errno != EEXIST) {
			snprintf(why, whylen, "mkdir %s: %s", buf,
			    strerror(errno));
			return false;
		}
		buf[i] = i < n ? '/' : '\0';
	}
	return true;
}

/*
 * ensure - dir, tmp/, new/ and cur/ exist. Under maildir_mu: a delivery
 * that finds a directory there finds it synced into its parent, not one
 * another thread has made and is about to sync.
 */
static bool
ensure(const char *dir, uid_t uid, gid_t gid, char *why, size_t whylen)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	char p[4096];
	struct stat st;
	size_t i;
	bool ok = true;

	pthread_mutex_lock(&maildir_mu);
	for (i = 0; ok && i < 3; i++) {
		if (snprintf(p, sizeof(p), "%s/%s", dir, sub[i]) >=
		    (int)sizeof(p)) {
			snprintf(why, whylen, "maildir path too long");
			ok = false;
		} else if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		else if ((ok = mkdirs(p, uid, gid, why, whylen)) &&
		    (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) {
			snprintf(why, whylen, "%s is not a directory", p);
			ok = false;
		}
	}
	pthread_mutex_unlock(&maildir_mu);
	return ok;
}

/* unique_name - TIME.MUSECPPIDQCOUNTRRANDOM.HOST */
static void
unique_name(char *out, size_t outlen)
{
	char host[256], safe[1024];
	struct timeval tv;
	unsigned long long rnd = 0;
	size_t i, o = 0;

	gettimeofday(&tv, NULL);
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd ^= (unsigned long long)tv.tv_usec << 20 ^
		    (unsigned long long)getpid();
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] && o + 5 < sizeof(safe); i++) {
		if (host[i] == '/' || host[i] == ':') {
			o += (size_t)snprintf(safe + o, sizeof(safe) - o,
			    "\\%03o", (unsigned)(unsigned char)host[i]);
		} else {
			safe[o++] = host[i];
		}
	}
	safe[o] = '\0';
	snprintf(out, outlen, "%lld.M%06ldP%ldQ%uR%016llx.%s",
	    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
	    atomic_fetch_add(&maildir_count, 1) + 1, rnd, safe);
}

static bool
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

bool
maildir_deliver(const char *dir, const char *msg, size_t len, char *name,
    size_t namelen, char *why, size_t whylen)
{
	char base[1200], tmp[4096], dst[4096], newdir[4096];
	int fd, e;

	if (!ensure(dir, (uid_t)-1, (gid_t)-1, why, whylen))
		return false;
	unique_name(base, sizeof(base));
	if (snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, base) >=
	    (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/new/%s", dir, base) >=
	    (int)sizeof(dst) ||
	    snprintf(newdir, sizeof(newdir), "%s/new", dir) >=
	    (int)sizeof(newdir)) {
		snprintf(why, whylen, "maildir path too long");
		return false;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, whylen, "create %s: %s", tmp, strerror(errno));
		return false;
	}
	if (!write_all(fd, msg, len) || fsync(fd) != 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		snprintf(why, whylen, "write %s: %s", tmp, strerror(e));
		return false;
	}
	if (close(fd) != 0) {
		e = errno;
		unlink(tmp);
		snprintf(why, whylen, "close %s: %s", tmp, strerror(e));
		return false;
	}
	if (link(tmp, dst) != 0) {
		e = errno;
		unlink(tmp);
		snprintf(why, whylen, "link %s: %s", dst, strerror(e));
		return false;
	}
	unlink(tmp);
	if (!fsync_dir(newdir)) {
		/* Not durable: take it back so a retry does not duplicate. */
		e = errno;
		unlink(dst);
		snprintf(why, whylen, "fsync %s: %s", newdir, strerror(e));
		return false;
	}
	snprintf(name, namelen, "%s", base);
	return true;
}

bool
maildir_prepare(const char *dir, uid_t uid, gid_t gid, char *why,
    size_t whylen)
{
	return ensure(dir, uid, gid, why, whylen);
}

/* owner_name - the user name of uid, else its number. */
static void
owner_name(uid_t uid, char *out, size_t outlen)
{
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL)
		snprintf(out, outlen, "%s", res->pw_name);
	else
		snprintf(out, outlen, "uid %lu", (unsigned long)uid);
}

bool
maildir_usable(const char *dir, char *why, size_t whylen)
{
	/* new/ is opened read-only for its fsync; tmp/ needs no reading. */
	static const struct {
		const char *sub;
		int mode;
		const char *what;
	} need[] = {
		{ "", X_OK, "searchable" },
		{ "/tmp", W_OK | X_OK, "writable" },
		{ "/new", R_OK | W_OK | X_OK, "readable and writable" },
		{ "/cur", X_OK, "searchable" },
	};
	char p[4096], owner[300];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (snprintf(p, sizeof(p), "%s%s", dir, need[i].sub) >=
		    (int)sizeof(p)) {
			snprintf(why, whylen, "maildir path too long");
			return false;
		}
		if (stat(p, &st) != 0) {
			snprintf(why, whylen, "%s: %s", p, strerror(errno));
			return false;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(why, whylen, "%s is not a directory", p);
			return false;
		}
		if (faccessat(AT_FDCWD, p, need[i].mode, AT_EACCESS) != 0) {
			owner_name(st.st_uid, owner, sizeof(owner));
			snprintf(why, whylen, "%s is not %s (owner %s, mode "
			    "%04o)", p, need[i].what, owner,
			    (unsigned)(st.st_mode & 07777));
			return false;
		}
	}
	return true;
}
