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
 * SECURITY: dir comes from the configuration, never from mail. The message
 * is data only; nothing in it picks a path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "maildir.h"

static atomic_uint maildir_count;

/* mkdirs - mkdir -p with mode 0700 for what it creates. */
static bool
mkdirs(const char *path, char *why, size_t whylen)
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
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
			snprintf(why, whylen, "mkdir %s: %s", buf,
			    strerror(errno));
			return false;
		}
		buf[i] = i < n ? '/' : '\0';
	}
	return true;
}

static bool
ensure(const char *dir, char *why, size_t whylen)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	char p[4096];
	struct stat st;
	size_t i;

	for (i = 0; i < 3; i++) {
		if (snprintf(p, sizeof(p), "%s/%s", dir, sub[i]) >=
		    (int)sizeof(p)) {
			snprintf(why, whylen, "maildir path too long");
			return false;
		}
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		if (!mkdirs(p, why, whylen))
			return false;
	}
	return true;
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

static bool
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = fsync(fd) == 0;
	close(fd);
	return ok;
}

bool
maildir_deliver(const char *dir, const char *msg, size_t len, char *name,
    size_t namelen, char *why, size_t whylen)
{
	char base[1200], tmp[4096], dst[4096], newdir[4096];
	int fd, e;

	if (!ensure(dir, why, whylen))
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
