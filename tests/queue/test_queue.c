/*
 * test_queue.c - the durable queue: round trips through commit, read,
 * update and remove; peer strings that must survive the envelope format
 * byte for byte; the start-up scan with damaged envelopes, lone messages
 * and tmp/ debris; the read-only listing (bad entries reported and left
 * in place, vanished ones skipped); a fuzz of the envelope parser through
 * the scan; concurrent commits; removed files reused by later commits;
 * and a child killed with SIGKILL while it commits, after which every
 * commit it saw succeed must load. test_queue_sync.c checks the
 * durability contract call by call.
 *
 * Each test works in its own spool under /tmp, removed at the end.
 */
#define _GNU_SOURCE		/* nftw */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "queue.h"
#include "spool.h"
#include "unit.h"

/* ------------------------------------------------------------- helpers */

/* sub - SPOOL/DIR/NAME into buf. */
static const char *
sub(const struct spool *s, const char *dir, const char *name, char *buf,
    size_t len)
{
	snprintf(buf, len, "%s/%s/%s", s->dir, dir, name);
	return buf;
}

static bool
exists(const struct spool *s, const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	return lstat(sub(s, dir, name, p, sizeof(p)), &st) == 0;
}

/* count_dir - entries in SPOOL/DIR, dotfiles aside. */
static size_t
count_dir(const struct spool *s, const char *dir)
{
	char p[PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(p, sizeof(p), "%s/%s", s->dir, dir);
	cr_assert((d = opendir(p)) != NULL, "opendir %s", p);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
put_raw(const struct spool *s, const char *dir, const char *name,
    const void *p, size_t n)
{
	char path[PATH_MAX];
	int fd;

	sub(s, dir, name, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
	cr_assert(n == 0 || write(fd, p, n) == (ssize_t)n, "write %s", path);
	close(fd);
}

/* put_pair - queue/ID.env holding text and a queue/ID.msg beside it. */
static void
put_pair(const struct spool *s, const char *id, const void *text, size_t n)
{
	char name[64];

	snprintf(name, sizeof(name), "%s.env", id);
	put_raw(s, "queue", name, text, n);
	snprintf(name, sizeof(name), "%s.msg", id);
	put_raw(s, "queue", name, "x\r\n", 3);
}

/* seal - body plus the checksum line the format ends with (malloc'd).
 * Computed here with OpenSSL so damaged-but-sealed envelopes can be made. */
static char *
seal(const char *body, size_t n, size_t *outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *o = malloc(n + 80);
	size_t k = n;

	cr_assert(o && EVP_Digest(body, n, md, &mdlen, EVP_sha256(), NULL));
	memcpy(o, body, n);
	k += (size_t)sprintf(o + k, "sha256 ");
	for (unsigned i = 0; i < mdlen; i++)
		k += (size_t)sprintf(o + k, "%02x", md[i]);
	o[k++] = '\n';
	o[k] = '\0';
	*outlen = k;
	return o;
}

/* A good envelope body (no checksum) for id, in the version 1 format. */
static size_t
good_body(char *buf, size_t len, const char *id)
{
	int k = snprintf(buf, len, "arcrelay-envelope 1\nid %s\n"
	    "first-seen 1700000000\nbounce 0\nsender =a@example.org\n"
	    "rcpts 2\nrcpt pending 0 1700000300 =b@example.net -\n"
	    "rcpt delivered 1 0 =c@example.net =250%%202.0.0%%20ok\n", id);

	return (size_t)k;
}

static struct q_envelope *
env_new(const char *sender, size_t nrcpt)
{
	struct q_envelope *e = calloc(1, sizeof(*e));

	cr_assert(e != NULL);
	e->sender = strdup(sender);
	e->rcpt = calloc(nrcpt ? nrcpt : 1, sizeof(*e->rcpt));
	e->nrcpt = nrcpt;
	e->first_seen = 1700000000;
	for (size_t i = 0; i < nrcpt; i++) {
		char a[64];

		snprintf(a, sizeof(a), "rcpt%zu@example.net", i);
		e->rcpt[i].addr = strdup(a);
		e->rcpt[i].next_retry = 1700000000;
	}
	return e;
}

/* What a scan reported. */
struct seen {
	struct q_envelope **env;
	size_t n, cap;
	struct bad {
		char name[64];
		char why[256];
	} *bad;
	size_t nbad, badcap;
};

static void
seen_env(void *arg, struct q_envelope *env)
{
	struct seen *s = arg;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->env = realloc(s->env, s->cap * sizeof(*s->env));
		cr_assert(s->env != NULL);
	}
	s->env[s->n++] = env;
}

static void
seen_bad(void *arg, const char *name, const char *why)
{
	struct seen *s = arg;

	if (s->nbad == s->badcap) {
		s->badcap = s->badcap ? 2 * s->badcap : 64;
		s->bad = realloc(s->bad, s->badcap * sizeof(*s->bad));
		cr_assert(s->bad != NULL);
	}
	snprintf(s->bad[s->nbad].name, sizeof(s->bad[0].name), "%s", name);
	snprintf(s->bad[s->nbad].why, sizeof(s->bad[0].why), "%s", why);
	s->nbad++;
}

static void
seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		q_envelope_free(s->env[i]);
	free(s->env);
	free(s->bad);
	memset(s, 0, sizeof(*s));
}

/* scan - a fresh scan into s; returns what queue_scan returned. */
static size_t
scan(const struct spool *sp, struct seen *s)
{
	size_t n;

	seen_free(s);
	n = queue_scan(sp->q, seen_env, seen_bad, s);
	cr_assert(n == s->n, "queue_scan returned %zu but called fn %zu times",
	    n, s->n);
	return n;
}

static struct q_envelope *
find_env(const struct seen *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->env[i]->id, id) == 0)
			return s->env[i];
	return NULL;
}

static const struct bad *
find_bad(const struct seen *s, const char *name)
{
	for (size_t i = 0; i < s->nbad; i++)
		if (strcmp(s->bad[i].name, name) == 0)
			return &s->bad[i];
	return NULL;
}

static void
commit_ok(const struct spool *s, const char *data, struct q_envelope *e)
{
	char why[256] = "";

	cr_assert(queue_commit(s->q, data, strlen(data), e, why, sizeof(why)),
	    "queue_commit: %s", why);
}

static bool
streq_null(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* expect_env - field by field, with a got/want message for the first
 * difference. */
static void
expect_env(const struct q_envelope *got, const struct q_envelope *want,
    const char *what)
{
	cr_assert(got != NULL, "%s: envelope %s not loaded", what, want->id);
	cr_expect_str_eq(got->id, want->id, "%s: id", what);
	cr_expect(streq_null(got->sender, want->sender), "%s: sender got "
	    "\"%s\", want \"%s\"", what, escs(got->sender), escs(want->sender));
	cr_expect(got->first_seen == want->first_seen && got->is_bounce ==
	    want->is_bounce, "%s: first_seen/bounce got %lld/%d, want "
	    "%lld/%d", what, (long long)got->first_seen, got->is_bounce,
	    (long long)want->first_seen, want->is_bounce);
	cr_assert(got->nrcpt == want->nrcpt, "%s: nrcpt got %zu, want %zu",
	    what, got->nrcpt, want->nrcpt);
	for (size_t i = 0; i < got->nrcpt; i++) {
		const struct q_rcpt *g = &got->rcpt[i], *w = &want->rcpt[i];

		cr_expect(streq_null(g->addr, w->addr), "%s: rcpt %zu addr "
		    "got \"%s\", want \"%s\"", what, i, escs(g->addr),
		    escs(w->addr));
		cr_expect(streq_null(g->last_reply, w->last_reply), "%s: rcpt "
		    "%zu reply got \"%s\", want \"%s\"", what, i,
		    escs(g->last_reply), escs(w->last_reply));
		cr_expect(g->state == w->state && g->attempts == w->attempts &&
		    g->next_retry == w->next_retry, "%s: rcpt %zu state/"
		    "attempts/next got %d/%u/%lld, want %d/%u/%lld", what, i,
		    g->state, g->attempts, (long long)g->next_retry, w->state,
		    w->attempts, (long long)w->next_retry);
	}
}

/* ---------------------------------------------------------------- open */

Test(queue, open_creates_private_dirs)
{
	static const char *const dirs[] = { "tmp", "queue", "corrupt" };
	struct spool s;
	char p[PATH_MAX], why[256] = "";
	struct queue *again;
	struct stat st;

	spool_open(&s);
	for (size_t i = 0; i < NELEM(dirs); i++) {
		snprintf(p, sizeof(p), "%s/%s", s.dir, dirs[i]);
		cr_assert(stat(p, &st) == 0 && S_ISDIR(st.st_mode),
		    "%s: not created", p);
		cr_expect((st.st_mode & 0777) == 0700, "%s: mode got %o, want "
		    "0700", p, st.st_mode & 0777);
	}
	again = queue_open(s.dir, why, sizeof(why));
	cr_expect(again != NULL, "reopening an existing spool: %s", why);
	queue_close(again);

	snprintf(p, sizeof(p), "%s/afile", s.dir);
	put_raw(&s, ".", "afile", "x", 1);
	why[0] = '\0';
	cr_expect(queue_open(p, why, sizeof(why)) == NULL && why[0] != '\0',
	    "a spool that is a file must be refused with a reason");
	cr_expect(queue_open("", why, sizeof(why)) == NULL);
	queue_close(NULL);
	spool_close(&s);
}

/* -------------------------------------------------------------- commit */

Test(queue, commit_read_update_remove)
{
	static const char msg[] = "Subject: hi\r\n\r\nbody\r\n\0with a NUL\r\n";
	struct spool s;
	struct seen seen = { 0 };
	struct q_envelope *e = env_new("a@example.org", 2);
	char why[256] = "", name[64], *got;
	size_t len = 0;

	spool_open(&s);
	cr_assert(queue_commit(s.q, msg, sizeof(msg) - 1, e, why, sizeof(why)),
	    "commit: %s", why);
	snprintf(name, sizeof(name), "%s.msg", e->id);
	cr_expect(exists(&s, "queue", name), "queue/%s missing", name);
	snprintf(name, sizeof(name), "%s.env", e->id);
	cr_expect(exists(&s, "queue", name), "queue/%s missing", name);
	cr_expect(count_dir(&s, "tmp") == 0, "tmp/ not empty after commit");

	got = queue_read(s.q, e->id, &len);
	cr_assert(got != NULL, "queue_read(%s) failed", e->id);
	cr_expect(len == sizeof(msg) - 1 && memcmp(got, msg, len) == 0,
	    "read got \"%s\" (%zu), want \"%s\"", esc(got, len), len,
	    esc(msg, sizeof(msg) - 1));
	free(got);

	cr_assert(scan(&s, &seen) == 1);
	expect_env(find_env(&seen, e->id), e, "after commit");

	e->rcpt[0].state = Q_DELIVERED;
	e->rcpt[0].attempts = 1;
	e->rcpt[0].last_reply = strdup("250 2.0.0 Ok: queued as 4Xy");
	e->rcpt[1].attempts = 2;
	e->rcpt[1].next_retry = 1700000900;
	e->rcpt[1].last_reply = strdup("451 4.3.0 try later");
	cr_assert(queue_update(s.q, e, why, sizeof(why)), "update: %s", why);
	cr_expect(count_dir(&s, "tmp") == 0, "tmp/ not empty after update");
	cr_assert(scan(&s, &seen) == 1);
	expect_env(find_env(&seen, e->id), e, "after update");

	cr_expect(queue_remove(s.q, e->id), "remove failed");
	cr_expect(count_dir(&s, "queue") == 0, "queue/ not empty after remove");
	cr_expect(queue_read(s.q, e->id, &len) == NULL, "read after remove");
	cr_expect(!queue_remove(s.q, e->id), "a second remove must say no");
	cr_expect(!queue_update(s.q, e, why, sizeof(why)),
	    "an update after remove must fail, not bring the envelope back");
	cr_expect(count_dir(&s, "queue") == 0, "the update re-created files");
	cr_expect(scan(&s, &seen) == 0 && seen.nbad == 0);

	q_envelope_free(e);
	seen_free(&seen);
	spool_close(&s);
}

Test(queue, messages_survive_exactly)
{
	static const size_t sizes[] = { 0, 1, 4095, 4096, 1 << 20 };
	struct spool s;

	spool_open(&s);
	for (size_t i = 0; i < NELEM(sizes); i++) {
		struct q_envelope *e = env_new("", 1);
		struct rng r = { 0x9e3779b97f4a7c15ULL + i };
		char *data = malloc(sizes[i] + 1), *got, why[256] = "";
		size_t len = 99;

		for (size_t k = 0; k < sizes[i]; k++)
			data[k] = (char)rng_next(&r);
		cr_assert(queue_commit(s.q, data, sizes[i], e, why,
		    sizeof(why)), "commit %zu bytes: %s", sizes[i], why);
		got = queue_read(s.q, e->id, &len);
		cr_expect(got != NULL && len == sizes[i] &&
		    memcmp(got, data, len) == 0, "%zu bytes: read back %zu "
		    "bytes, differing", sizes[i], len);
		free(got);
		free(data);
		q_envelope_free(e);
	}
	spool_close(&s);
}

Test(queue, commit_refuses_what_cannot_load)
{
	static const struct {
		const char *what;
		int mutate;
	} rows[] = {
		{ "zero recipients", 0 },
		{ "a NULL recipient address", 1 },
		{ "an empty recipient address", 2 },
		{ "an unknown state", 3 },
		{ "a NULL sender", 4 },
		{ "a negative first_seen", 5 },
		{ "a negative next_retry", 6 },
		{ "an address of 5000 bytes", 7 },
	};
	struct spool s;

	spool_open(&s);
	for (size_t i = 0; i < NELEM(rows); i++) {
		struct q_envelope *e = env_new("a@example.org", 2);
		char why[256] = "";

		switch (rows[i].mutate) {
		case 0: e->nrcpt = 0; break;
		case 1: free(e->rcpt[1].addr); e->rcpt[1].addr = NULL; break;
		case 2: e->rcpt[0].addr[0] = '\0'; break;
		case 3: e->rcpt[1].state = (enum q_state)7; break;
		case 4: free(e->sender); e->sender = NULL; break;
		case 5: e->first_seen = -1; break;
		case 6: e->rcpt[0].next_retry = -5; break;
		case 7:
			free(e->rcpt[0].addr);
			e->rcpt[0].addr = malloc(5001);
			memset(e->rcpt[0].addr, 'a', 5000);
			e->rcpt[0].addr[5000] = '\0';
			break;
		}
		cr_expect(!queue_commit(s.q, "x\r\n", 3, e, why, sizeof(why)),
		    "%s: commit must fail", rows[i].what);
		cr_expect(why[0] != '\0', "%s: no reason given", rows[i].what);
		if (rows[i].mutate == 0)
			e->nrcpt = 2;
		q_envelope_free(e);
	}
	cr_expect(count_dir(&s, "queue") == 0 && count_dir(&s, "tmp") == 0,
	    "a refused commit left files behind");
	spool_close(&s);
}

Test(queue, bad_ids_are_refused)
{
	static const char *const ids[] = { "", "../queue/x", "a.b", "a/b",
	    "a b", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "x\n" };
	struct spool s;
	struct q_envelope *e = env_new("a@example.org", 1);
	char why[256];
	size_t len;

	spool_open(&s);
	for (size_t i = 0; i < NELEM(ids); i++) {
		cr_expect(queue_read(s.q, ids[i], &len) == NULL, "read \"%s\"",
		    escs(ids[i]));
		cr_expect(!queue_remove(s.q, ids[i]), "remove \"%s\"",
		    escs(ids[i]));
		snprintf(e->id, sizeof(e->id), "%.*s", QUEUE_ID_MAX - 1, ids[i]);
		if (strlen(ids[i]) < QUEUE_ID_MAX)
			cr_expect(!queue_update(s.q, e, why, sizeof(why)),
			    "update \"%s\"", escs(ids[i]));
	}
	cr_expect(queue_read(s.q, "NOSUCHID", &len) == NULL);
	cr_expect(!queue_remove(s.q, "NOSUCHID"));
	snprintf(e->id, sizeof(e->id), "NOSUCHID");
	cr_expect(!queue_update(s.q, e, why, sizeof(why)),
	    "update of an id never queued");
	cr_expect(count_dir(&s, "queue") == 0);
	q_envelope_free(e);
	spool_close(&s);
}

Test(queue, ids_unique_sortable_plain)
{
	struct spool s;
	char prev[QUEUE_ID_MAX] = "";

	spool_open(&s);
	for (int i = 0; i < 40; i++) {
		struct q_envelope *e = env_new("a@example.org", 1);
		size_t n;

		commit_ok(&s, "x\r\n", e);
		n = strlen(e->id);
		cr_expect(n > 0 && n <= QUEUE_ID_MAX - 1, "id \"%s\": length %zu",
		    e->id, n);
		cr_expect(strspn(e->id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz") == n, "id \"%s\": characters",
		    escs(e->id));
		cr_expect(strcmp(prev, e->id) < 0, "ids must rise with time: "
		    "\"%s\" then \"%s\"", prev, e->id);
		memcpy(prev, e->id, sizeof(prev));
		q_envelope_free(e);
	}
	spool_close(&s);
}

/* -------------------------------------------------------------- values */

Test(queue, peer_strings_survive_exactly)
{
	static const char *const strs[] = {
		"",
		"plain@example.org",
		"with space@example.org",
		"line\r\nrcpt pending 0 0 =evil@example.net -\nsha256 00",
		"percent%41%%2",
		"-",
		"=",
		"=-% \t\v\f",
		"\xc3\xa9t\xc3\xa9@b\xc3\xbc.example",
		"\x01\x7f\x80\xff",
		"250-first line\r\n250-second\r\n250 third",
		"\"quoted local\"@example.org",
	};
	struct spool s;
	struct seen seen = { 0 };
	struct q_envelope *want[NELEM(strs)];

	spool_open(&s);
	for (size_t i = 0; i < NELEM(strs); i++) {
		struct q_envelope *e = env_new(strs[i], 3);

		free(e->rcpt[0].addr);
		e->rcpt[0].addr = strdup(strs[i][0] ? strs[i] : "x");
		e->rcpt[0].last_reply = strdup(strs[i]);
		e->rcpt[1].last_reply = NULL;
		e->rcpt[2].last_reply = strdup(strs[NELEM(strs) - 1 - i]);
		e->rcpt[2].state = Q_EXPIRED;
		e->rcpt[2].attempts = UINT_MAX;
		e->rcpt[2].next_retry = INT64_MAX;
		e->first_seen = (int64_t)i;
		e->is_bounce = i % 2;
		commit_ok(&s, "x\r\n", e);
		want[i] = e;
	}
	cr_assert(scan(&s, &seen) == NELEM(strs) && seen.nbad == 0,
	    "loaded %zu of %zu, %zu reported bad (first: %s)", seen.n,
	    NELEM(strs), seen.nbad, seen.nbad ? seen.bad[0].why : "-");
	for (size_t i = 0; i < NELEM(strs); i++) {
		char what[64];

		snprintf(what, sizeof(what), "row %zu", i);
		expect_env(find_env(&seen, want[i]->id), want[i], what);
		q_envelope_free(want[i]);
	}
	seen_free(&seen);
	spool_close(&s);
}

/* ---------------------------------------------------------------- scan */

Test(queue, scan_finds_all_in_order)
{
	struct spool s;
	struct seen seen = { 0 };
	char ids[50][QUEUE_ID_MAX];

	spool_open(&s);
	for (int i = 0; i < 50; i++) {
		struct q_envelope *e = env_new("a@example.org", 1 + i % 3);

		commit_ok(&s, "x\r\n", e);
		memcpy(ids[i], e->id, QUEUE_ID_MAX);
		q_envelope_free(e);
	}
	cr_assert(scan(&s, &seen) == 50, "loaded %zu of 50", seen.n);
	cr_expect(seen.nbad == 0);
	for (int i = 0; i < 50; i++) {
		cr_expect_str_eq(seen.env[i]->id, ids[i], "scan order: entry %d",
		    i);
		cr_expect(seen.env[i]->nrcpt == (size_t)(1 + i % 3));
	}
	/* A scan without callbacks still counts, and changes nothing. */
	cr_expect(queue_scan(s.q, NULL, NULL, NULL) == 50);
	cr_expect(count_dir(&s, "queue") == 100);
	seen_free(&seen);
	spool_close(&s);
}

/* ------------------------------------------------------------- corrupt */

enum how { RAW, SEALED };

Test(queue, corrupt_envelopes_moved_aside)
{
	static const struct {
		const char *id;
		enum how how;
		const char *text;	/* %s is the id */
		const char *want;	/* in the reason */
	} rows[] = {
		{ "Cempty", RAW, "", "empty" },
		{ "Cgarbage", RAW, "\x7f" "ELF\x01\x01 garbage\n\n", "sha256" },
		{ "Cnoeol", RAW, "arcrelay-envelope 1\nid %s", "truncated" },
		{ "Cversion", SEALED, "arcrelay-envelope 2\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "version" },
		{ "Cnotours", SEALED, "some-other-format 1\n", "not an" },
		{ "Ccrlf", SEALED, "arcrelay-envelope 1\r\nid %s\r\n",
		    "version" },
		{ "Cstate", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt sent 0 0 =b@x -\n", "state" },
		{ "Czero", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 0\n",
		    "no recipients" },
		{ "Cfewer", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 2\n"
		    "rcpt pending 0 0 =b@x -\n", "fewer" },
		{ "Cmore", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\nrcpt pending 0 0 =c@x -\n",
		    "more lines" },
		{ "Cidmismatch", SEALED, "arcrelay-envelope 1\nid OTHER\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "does not match" },
		{ "Cleadzero", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 01\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "first-seen" },
		{ "Cbounce", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 2\nsender =\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "bounce" },
		{ "Cattempts", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending 99999999999 0 =b@x -\n", "attempts" },
		{ "Cnegative", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending 0 -1 =b@x -\n", "next-retry" },
		{ "Cescape", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =%%41\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "escape" },
		{ "Clowerhex", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =a%%0a\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "escape" },
		{ "Cnul", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =a%%00b\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "escape" },
		{ "Cshortesc", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x =25%%2\n", "escape" },
		{ "Cnoprefix", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender a@x\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "'='" },
		{ "Cnosender", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender -\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "absent" },
		{ "Cemptyaddr", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending 0 0 = -\n", "empty recipient" },
		{ "Ctrailing", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x - \n", "extra fields" },
		{ "Cnoreply", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x\n", "reply" },
		{ "Cdoublesp", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending  0 0 =b@x -\n", "attempts" },
		{ "Corder", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "bounce 0\nfirst-seen 1\nsender =\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "first-seen" },
		{ "Cspace", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =a b\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "unencoded" },
	};
	struct spool s;
	struct seen seen = { 0 };
	struct q_envelope *good[3];
	char buf[1024], name[64];

	spool_open(&s);
	for (int i = 0; i < 3; i++) {
		good[i] = env_new("a@example.org", 1);
		commit_ok(&s, "x\r\n", good[i]);
	}
	for (size_t i = 0; i < NELEM(rows); i++) {
		int n = snprintf(buf, sizeof(buf), rows[i].text, rows[i].id);
		char *text = NULL;
		size_t len = (size_t)n;

		if (rows[i].how == SEALED)
			text = seal(buf, (size_t)n, &len);
		put_pair(&s, rows[i].id, text ? text : buf, len);
		free(text);
	}
	/* Damage of a genuine envelope: truncated, one byte flipped, no
	 * message beside it. */
	{
		char *text;
		size_t len, n = good_body(buf, sizeof(buf), "Dtrunc");

		text = seal(buf, n, &len);
		put_pair(&s, "Dtrunc", text, len / 2);
		free(text);
		n = good_body(buf, sizeof(buf), "Dflip");
		text = seal(buf, n, &len);
		text[len / 3] ^= 0x20;
		put_pair(&s, "Dflip", text, len);
		free(text);
		n = good_body(buf, sizeof(buf), "Dnomsg");
		text = seal(buf, n, &len);
		put_raw(&s, "queue", "Dnomsg.env", text, len);
		free(text);
		n = good_body(buf, sizeof(buf), "Dgood");
		text = seal(buf, n, &len);
		put_pair(&s, "Dgood", text, len);
		free(text);
	}

	cr_expect(scan(&s, &seen) == 4, "loaded %zu, want the 3 committed and "
	    "the hand-made good one", seen.n);
	for (int i = 0; i < 3; i++)
		expect_env(find_env(&seen, good[i]->id), good[i], "good");
	cr_expect(find_env(&seen, "Dgood") != NULL, "hand-made good envelope");
	for (size_t i = 0; i < NELEM(rows); i++) {
		const struct bad *b;

		snprintf(name, sizeof(name), "%s.env", rows[i].id);
		b = find_bad(&seen, name);
		cr_expect(b != NULL, "%s: not reported", rows[i].id);
		if (b)
			cr_expect(strstr(b->why, rows[i].want) != NULL,
			    "%s: reason got \"%s\", want one naming \"%s\"",
			    rows[i].id, b->why, rows[i].want);
		cr_expect(exists(&s, "corrupt", name) &&
		    !exists(&s, "queue", name), "%s: not moved aside", name);
		snprintf(name, sizeof(name), "%s.msg", rows[i].id);
		cr_expect(exists(&s, "corrupt", name) &&
		    !exists(&s, "queue", name), "%s: not moved aside", name);
	}
	{
		const struct bad *t = find_bad(&seen, "Dtrunc.env");
		const struct bad *f = find_bad(&seen, "Dflip.env");
		const struct bad *m = find_bad(&seen, "Dnomsg.env");

		cr_expect(t && strstr(t->why, "truncated"), "Dtrunc: %s",
		    t ? t->why : "not reported");
		cr_expect(f && strstr(f->why, "checksum"), "Dflip: %s",
		    f ? f->why : "not reported");
		cr_expect(m && strstr(m->why, "message file missing"),
		    "Dnomsg: %s", m ? m->why : "not reported");
		cr_expect(exists(&s, "corrupt", "Dnomsg.env"));
	}
	cr_expect(seen.nbad == NELEM(rows) + 3, "reported %zu, want %zu",
	    seen.nbad, NELEM(rows) + 3);

	/* Moved aside means not seen again. */
	cr_expect(scan(&s, &seen) == 4 && seen.nbad == 0,
	    "second scan: loaded %zu, %zu bad", seen.n, seen.nbad);
	for (int i = 0; i < 3; i++)
		q_envelope_free(good[i]);
	seen_free(&seen);
	spool_close(&s);
}

/* -------------------------------------------------------------- orphan */

static void
age(const struct spool *s, const char *dir, const char *name, int secs)
{
	char p[PATH_MAX];
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= secs;
	ts[1] = ts[0];
	cr_assert(utimensat(AT_FDCWD, sub(s, dir, name, p, sizeof(p)), ts, 0) ==
	    0, "utimensat %s", p);
}

Test(queue, orphan_messages)
{
	struct spool s;
	struct seen seen = { 0 };
	struct q_envelope *e = env_new("a@example.org", 1);
	char name[64], path[PATH_MAX];

	spool_open(&s);
	/* A remove cut short after the envelope went: a lone message. */
	commit_ok(&s, "x\r\n", e);
	snprintf(name, sizeof(name), "%s.env", e->id);
	cr_assert(unlink(sub(&s, "queue", name, path, sizeof(path))) == 0);
	snprintf(name, sizeof(name), "%s.msg", e->id);
	put_raw(&s, "queue", "Fresh.msg", "y\r\n", 3);

	/* Young lone messages may be commits in flight: left alone. */
	cr_expect(scan(&s, &seen) == 0 && seen.nbad == 0,
	    "young orphans: loaded %zu, %zu bad", seen.n, seen.nbad);
	cr_expect(exists(&s, "queue", name) && exists(&s, "queue", "Fresh.msg"));

	age(&s, "queue", name, 120);
	cr_expect(scan(&s, &seen) == 0);
	cr_expect(seen.nbad == 1 && strcmp(seen.bad[0].name, name) == 0 &&
	    strstr(seen.bad[0].why, "without envelope") != NULL,
	    "old orphan: got %zu reports (first %s: %s)", seen.nbad,
	    seen.nbad ? seen.bad[0].name : "-", seen.nbad ? seen.bad[0].why :
	    "-");
	cr_expect(exists(&s, "corrupt", name) && !exists(&s, "queue", name),
	    "old orphan not moved aside");
	cr_expect(exists(&s, "queue", "Fresh.msg"), "young orphan touched");
	q_envelope_free(e);
	seen_free(&seen);
	spool_close(&s);
}

/* ---------------------------------------------------------------- list */

/* What a queue_list reported, in order: ids of good entries with their
 * message sizes and first recipients, names and reasons of bad ones. */
struct listed {
	struct lrow {
		char id[QUEUE_ID_MAX];
		char name[64];
		char why[256];		/* "" for a good entry */
		char rcpt[64];
		uint64_t size;
	} v[64];
	size_t n;
	/* Run from the callback once the entry with this id is seen: what
	 * a delivery between the readdir and the reads does. */
	const char *after_id;
	void (*after)(struct listed *l);
	const struct spool *sp;
	const char *gone[4];	/* ids whose files after removes */
	bool gone_msg_too;
};

static void
listed_cb(void *arg, const struct q_listing *e)
{
	struct listed *l = arg;
	struct lrow *r;

	cr_assert(l->n < NELEM(l->v), "more than %zu entries", NELEM(l->v));
	cr_assert((e->env == NULL) == (e->why != NULL), "%s: env and why "
	    "both set or both unset", e->id);
	r = &l->v[l->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", e->id);
	snprintf(r->name, sizeof(r->name), "%s", e->name);
	if (e->env) {
		cr_expect_str_eq(e->env->id, e->id, "listing id");
		snprintf(r->rcpt, sizeof(r->rcpt), "%s", e->env->rcpt[0].addr);
		r->size = e->size;
	} else {
		snprintf(r->why, sizeof(r->why), "%s", e->why);
	}
	if (l->after && l->after_id && strcmp(e->id, l->after_id) == 0)
		l->after(l);
}

static const struct lrow *
listed_find(const struct listed *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].id, id) == 0)
			return &l->v[i];
	return NULL;
}

/* tree - every name under the spool with its size and mtime, as text. */
static char *
tree(const struct spool *s)
{
	static const char *const dirs[] = { "", "tmp", "queue", "corrupt" };
	size_t cap = 1 << 16, n = 0;
	char *out = calloc(1, cap), p[PATH_MAX];

	cr_assert(out != NULL);
	for (size_t k = 0; k < NELEM(dirs); k++) {
		struct dirent *de;
		DIR *d;

		snprintf(p, sizeof(p), "%s/%s", s->dir, dirs[k]);
		cr_assert((d = opendir(p)) != NULL, "opendir %s", p);
		while ((de = readdir(d)) != NULL) {
			char f[PATH_MAX + 256];
			struct stat st;

			if (de->d_name[0] == '.')
				continue;
			snprintf(f, sizeof(f), "%s/%s", p, de->d_name);
			cr_assert(lstat(f, &st) == 0, "lstat %s", f);
			n += (size_t)snprintf(out + n, cap - n, "%s/%s %lld "
			    "%lld.%09ld\n", dirs[k], de->d_name,
			    (long long)st.st_size, (long long)st.st_mtim.tv_sec,
			    st.st_mtim.tv_nsec);
			cr_assert(n < cap, "tree too large");
		}
		closedir(d);
	}
	return out;
}

Test(queue, list_reports_corrupt_left_in_place)
{
	static const struct {
		const char *id;
		enum how how;
		const char *text;	/* %s is the id; NULL: no envelope */
		const char *want;	/* in the reason */
	} rows[] = {
		{ "Lempty", RAW, "", "empty" },
		{ "Lnoeol", RAW, "arcrelay-envelope 1\nid %s", "truncated" },
		{ "Lstate", SEALED, "arcrelay-envelope 1\nid %s\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt sent 0 0 =b@x -\n", "state" },
		{ "Lidmismatch", SEALED, "arcrelay-envelope 1\nid OTHER\n"
		    "first-seen 1\nbounce 0\nsender =\nrcpts 1\n"
		    "rcpt pending 0 0 =b@x -\n", "does not match" },
		{ "Lflip", SEALED, NULL, "checksum" },
		{ "Lnomsg", SEALED, NULL, "message file missing" },
		{ "Lorphan", RAW, NULL, "without envelope" },
	};
	struct spool s;
	struct listed l = { 0 };
	struct q_envelope *good[2];
	char buf[1024], why[256] = "", *before, *after;

	spool_open(&s);
	good[0] = env_new("a@example.org", 1);
	commit_ok(&s, "x\r\n", good[0]);
	good[1] = env_new("", 2);
	commit_ok(&s, "hello, world\r\n", good[1]);
	for (size_t i = 0; i < NELEM(rows); i++) {
		char *text = NULL, name[64];
		size_t len;
		int n;

		if (strcmp(rows[i].id, "Lflip") == 0) {
			n = (int)good_body(buf, sizeof(buf), rows[i].id);
			text = seal(buf, (size_t)n, &len);
			text[len / 3] ^= 0x20;
			put_pair(&s, rows[i].id, text, len);
		} else if (strcmp(rows[i].id, "Lnomsg") == 0) {
			n = (int)good_body(buf, sizeof(buf), rows[i].id);
			text = seal(buf, (size_t)n, &len);
			snprintf(name, sizeof(name), "%s.env", rows[i].id);
			put_raw(&s, "queue", name, text, len);
		} else if (strcmp(rows[i].id, "Lorphan") == 0) {
			snprintf(name, sizeof(name), "%s.msg", rows[i].id);
			put_raw(&s, "queue", name, "y\r\n", 3);
			age(&s, "queue", name, 120);
		} else {
			n = snprintf(buf, sizeof(buf), rows[i].text,
			    rows[i].id);
			len = (size_t)n;
			if (rows[i].how == SEALED)
				text = seal(buf, (size_t)n, &len);
			put_pair(&s, rows[i].id, text ? text : buf, len);
		}
		free(text);
	}
	/* A young lone message (a commit in flight) and tmp/ debris: the
	 * scan would sweep the debris; the listing leaves everything. */
	put_raw(&s, "queue", "Lyoung.msg", "z\r\n", 3);
	put_raw(&s, "tmp", "leftover.data", "junk", 4);

	before = tree(&s);
	cr_assert(queue_list(s.dir, listed_cb, &l, why, sizeof(why)),
	    "queue_list: %s", why);
	after = tree(&s);
	cr_expect_str_eq(after, before, "the listing changed the spool");

	cr_expect(l.n == 2 + NELEM(rows), "listed %zu entries, want %zu",
	    l.n, 2 + NELEM(rows));
	for (size_t i = 1; i < l.n; i++)
		cr_expect(strcmp(l.v[i - 1].id, l.v[i].id) < 0, "not in id "
		    "order: %s before %s", l.v[i - 1].id, l.v[i].id);
	for (int i = 0; i < 2; i++) {
		const struct lrow *r = listed_find(&l, good[i]->id);

		cr_expect(r && r->why[0] == '\0', "%s: got %s, want listed as "
		    "good", good[i]->id, r ? r->why : "nothing");
		if (r)
			cr_expect(r->size == (i ? 14u : 3u) &&
			    strcmp(r->rcpt, good[i]->rcpt[0].addr) == 0,
			    "%s: size/rcpt got %llu/%s, want %u/%s",
			    good[i]->id, (unsigned long long)r->size, r->rcpt,
			    i ? 14u : 3u, good[i]->rcpt[0].addr);
	}
	for (size_t i = 0; i < NELEM(rows); i++) {
		const struct lrow *r = listed_find(&l, rows[i].id);
		char want_name[64];

		snprintf(want_name, sizeof(want_name), "%s.%s", rows[i].id,
		    strcmp(rows[i].id, "Lorphan") == 0 ? "msg" : "env");
		cr_expect(r != NULL, "%s: not reported", rows[i].id);
		if (r == NULL)
			continue;
		cr_expect(strstr(r->why, rows[i].want) != NULL, "%s: reason "
		    "got \"%s\", want one naming \"%s\"", rows[i].id, r->why,
		    rows[i].want);
		cr_expect_str_eq(r->name, want_name, "%s: entry name",
		    rows[i].id);
	}
	cr_expect(listed_find(&l, "Lyoung") == NULL, "a young lone message "
	    "was reported");
	cr_expect(count_dir(&s, "corrupt") == 0 && exists(&s, "tmp",
	    "leftover.data"), "the listing moved or swept something");

	/* The scan then finds the same bad entries (and does move them). */
	{
		struct seen seen = { 0 };

		cr_expect(scan(&s, &seen) == 2 && seen.nbad == NELEM(rows),
		    "scan after the listing: loaded %zu, %zu bad, want 2, "
		    "%zu", seen.n, seen.nbad, NELEM(rows));
		seen_free(&seen);
	}
	free(before);
	free(after);
	for (int i = 0; i < 2; i++)
		q_envelope_free(good[i]);
	spool_close(&s);
}

/* vanish - queue/ID.env (and ID.msg when gone_msg_too) of each id in
 * l->gone removed, as queue_remove does. */
static void
vanish(struct listed *l)
{
	char name[64], path[PATH_MAX];

	for (size_t i = 0; i < NELEM(l->gone) && l->gone[i]; i++) {
		snprintf(name, sizeof(name), "%s.env", l->gone[i]);
		cr_assert(unlink(sub(l->sp, "queue", name, path,
		    sizeof(path))) == 0, "unlink %s", path);
		if (!l->gone_msg_too)
			continue;
		snprintf(name, sizeof(name), "%s.msg", l->gone[i]);
		cr_assert(unlink(sub(l->sp, "queue", name, path,
		    sizeof(path))) == 0, "unlink %s", path);
	}
}

Test(queue, list_skips_vanished_entries)
{
	static const struct {
		const char *desc;
		bool msg_too;	/* the message goes too, or only the envelope
				 * (a removal half done) */
	} rows[] = {
		{ "delivered: envelope and message removed", true },
		{ "removal half done: envelope gone, message still there",
		    false },
	};

	for (size_t k = 0; k < NELEM(rows); k++) {
		struct spool s;
		struct listed l = { 0 };
		struct q_envelope *e[4];
		char why[256] = "";

		spool_open(&s);
		for (int i = 0; i < 4; i++) {
			e[i] = env_new("a@example.org", 1);
			commit_ok(&s, "x\r\n", e[i]);
		}
		/* Read the directory, list the first, and then the second and
		 * third vanish before they are opened. */
		l.sp = &s;
		l.after_id = e[0]->id;
		l.after = vanish;
		l.gone[0] = e[1]->id;
		l.gone[1] = e[2]->id;
		l.gone_msg_too = rows[k].msg_too;
		cr_assert(queue_list(s.dir, listed_cb, &l, why, sizeof(why)),
		    "%s: queue_list: %s", rows[k].desc, why);
		cr_expect(l.n == 2 && strcmp(l.v[0].id, e[0]->id) == 0 &&
		    strcmp(l.v[1].id, e[3]->id) == 0 && l.v[0].why[0] == '\0' &&
		    l.v[1].why[0] == '\0', "%s: got %zu entries (%s %s, %s "
		    "%s), want the first and the last, both good",
		    rows[k].desc, l.n, l.n > 0 ? l.v[0].id : "-",
		    l.n > 0 ? l.v[0].why : "", l.n > 1 ? l.v[1].id : "-",
		    l.n > 1 ? l.v[1].why : "");
		for (int i = 0; i < 4; i++)
			q_envelope_free(e[i]);
		spool_close(&s);
	}
}

Test(queue, list_unreadable_spool)
{
	static const struct {
		const char *desc;
		const char *path;	/* under the spool; NULL: none given */
		const char *want;
	} rows[] = {
		{ "no spool given", NULL, "no spool" },
		{ "a spool that does not exist", "missing", "missing" },
		{ "a directory without queue/", "bare", "bare/queue" },
		{ "a file, not a directory", "file", "file" },
	};
	struct spool s;
	char path[PATH_MAX], why[256];
	struct listed l = { 0 };

	spool_open(&s);
	snprintf(path, sizeof(path), "%s/bare", s.dir);
	cr_assert(mkdir(path, 0700) == 0);
	put_raw(&s, "", "file", "x", 1);
	for (size_t i = 0; i < NELEM(rows); i++) {
		why[0] = '\0';
		if (rows[i].path)
			snprintf(path, sizeof(path), "%s/%s", s.dir,
			    rows[i].path);
		cr_expect(!queue_list(rows[i].path ? path : NULL, listed_cb, &l,
		    why, sizeof(why)), "%s: listed", rows[i].desc);
		cr_expect(strstr(why, rows[i].want) != NULL, "%s: reason got "
		    "\"%s\", want one naming \"%s\"", rows[i].desc, why,
		    rows[i].want);
	}
	cr_expect(l.n == 0, "entries reported from an unreadable spool");
	/* Nothing was made: no spool, no queue/ in the bare directory. */
	cr_expect(!exists(&s, "", "missing") && !exists(&s, "bare", "queue"),
	    "the listing created a directory");
	spool_close(&s);
}

Test(queue, tmp_debris_swept_live_files_kept)
{
	struct spool s;
	struct seen seen = { 0 };
	char live[PATH_MAX], dead[PATH_MAX], tiny[8];
	struct stat st;
	int fl, fd;

	spool_open(&s);
	fl = queue_tmpfile(s.q, live, sizeof(live));
	cr_assert(fl >= 0, "queue_tmpfile: %s", strerror(errno));
	cr_expect(strncmp(live, s.dir, strlen(s.dir)) == 0 &&
	    strstr(live, "/tmp/") != NULL, "tmpfile path \"%s\"", live);
	cr_assert(write(fl, "DATA\r\n", 6) == 6);
	fd = queue_tmpfile(s.q, dead, sizeof(dead));
	cr_assert(fd >= 0);
	close(fd);
	cr_expect(strcmp(live, dead) != 0);
	put_raw(&s, "tmp", "leftover.msg", "z", 1);
	cr_expect(queue_tmpfile(s.q, tiny, sizeof(tiny)) == -1,
	    "a path buffer too small must fail");

	cr_expect(scan(&s, &seen) == 0 && seen.nbad == 0);
	cr_expect(stat(live, &st) == 0 && st.st_size == 6,
	    "a file a session still holds was removed");
	cr_expect(stat(dead, &st) != 0, "a closed tmp file was kept");
	cr_expect(!exists(&s, "tmp", "leftover.msg"), "debris was kept");
	cr_expect(count_dir(&s, "tmp") == 1);
	close(fl);
	cr_expect(scan(&s, &seen) == 0);
	cr_expect(count_dir(&s, "tmp") == 0, "released file not swept");
	seen_free(&seen);
	spool_close(&s);
}

/* ---------------------------------------------------------------- fuzz */

/* expect_sane - what a loaded envelope must look like whatever went in. */
static void
expect_sane(const struct q_envelope *e)
{
	cr_assert(e->sender != NULL && e->nrcpt >= 1 && e->rcpt != NULL,
	    "%s: loaded without sender or recipients", e->id);
	for (size_t i = 0; i < e->nrcpt; i++)
		cr_assert(e->rcpt[i].addr && e->rcpt[i].addr[0] &&
		    (unsigned)e->rcpt[i].state <= Q_EXPIRED,
		    "%s: rcpt %zu loaded broken", e->id, i);
}

/* fuzz_batch - put n envelopes made by make() and scan once: each must be
 * either loaded or reported, none may crash the scan. Returns loaded. */
static size_t
fuzz_batch(struct spool *s, size_t n, struct rng *r,
    size_t (*make)(struct rng *, size_t, const char *, char *, size_t))
{
	struct seen seen = { 0 };
	size_t loaded;

	for (size_t i = 0; i < n; i++) {
		char id[32], buf[4096];
		size_t len;

		snprintf(id, sizeof(id), "Z%06zu", i);
		len = make(r, i, id, buf, sizeof(buf));
		put_pair(s, id, buf, len);
	}
	loaded = scan(s, &seen);
	cr_assert(loaded + seen.nbad == n, "%zu loaded + %zu reported of %zu",
	    loaded, seen.nbad, n);
	for (size_t i = 0; i < seen.n; i++)
		expect_sane(seen.env[i]);
	seen_free(&seen);
	/* Clear the corrupt/ and queue/ of this batch for the next one. */
	nftw(s->dir, spool_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	queue_close(s->q);
	s->q = queue_open(s->dir, NULL, 0);
	cr_assert(s->q != NULL);
	return loaded;
}

static size_t
make_random(struct rng *r, size_t i, const char *id, char *buf, size_t len)
{
	size_t n = rng_below(r, 600), k = 0;

	if (i % 2)	/* half start like the real thing */
		k = (size_t)snprintf(buf, len, "arcrelay-envelope 1\nid %s\n",
		    id);
	for (; k < n; k++)
		buf[k] = (char)rng_next(r);
	return n > k ? n : k;
}

static char fuzz_good[1024];
static size_t fuzz_good_len;

/* make_prefix / make_flip - row i cuts the sealed envelope at byte i, or
 * changes byte i. Every one must be refused. */
static size_t
make_prefix(struct rng *r, size_t i, const char *id, char *buf, size_t len)
{
	memcpy(buf, fuzz_good, i);
	return i;
}

static size_t
make_flip(struct rng *r, size_t i, const char *id, char *buf, size_t len)
{
	memcpy(buf, fuzz_good, fuzz_good_len);
	buf[i] ^= (char)(1 + rng_below(r, 255));
	return fuzz_good_len;
}

/* make_mutant - the body of a valid envelope with a few bytes replaced,
 * dropped or repeated, then sealed again, so the checksum passes and the
 * field parsers see the damage. */
static size_t
make_mutant(struct rng *r, size_t i, const char *id, char *buf, size_t len)
{
	static const char alphabet[] = " =%-\n\r\t0123456789AFaf@.xrcpt";
	char body[2048], *sealed;
	size_t n = good_body(body, sizeof(body), id), out;
	size_t edits = 1 + rng_below(r, 4);

	for (size_t e = 0; e < edits && n > 1; e++) {
		size_t at = rng_below(r, n);

		switch (rng_below(r, 4)) {
		case 0:
			body[at] = alphabet[rng_below(r, sizeof(alphabet) - 1)];
			break;
		case 1:
			body[at] = (char)rng_next(r);
			break;
		case 2:
			memmove(body + at, body + at + 1, n - at - 1);
			n--;
			break;
		default:
			if (n + 1 < sizeof(body)) {
				memmove(body + at + 1, body + at, n - at);
				n++;
			}
			break;
		}
	}
	sealed = seal(body, n, &out);
	cr_assert(out <= len);
	memcpy(buf, sealed, out);
	free(sealed);
	return out;
}

Test(queue, fuzz_never_crashes, .timeout = 240)
{
	struct spool s;
	struct rng r = { 0x5eed0f0e11a9ULL };
	size_t loaded, body, total = 0;
	char *sealed;

	spool_open(&s);
	cr_expect(fuzz_batch(&s, 400, &r, make_random) == 0,
	    "random bytes loaded as an envelope");

	body = good_body(fuzz_good, sizeof(fuzz_good), "Z000000");
	sealed = seal(fuzz_good, body, &fuzz_good_len);
	memcpy(fuzz_good, sealed, fuzz_good_len);
	free(sealed);
	/* Every prefix (id Z000000 only matches row 0, so any that parsed
	 * would be flagged as a mismatch anyway; none may parse). */
	cr_expect(fuzz_batch(&s, fuzz_good_len, &r, make_prefix) == 0,
	    "a truncated envelope loaded");
	cr_expect(fuzz_batch(&s, fuzz_good_len, &r, make_flip) == 0,
	    "an envelope with a changed byte loaded");

	for (int round = 0; round < 6; round++) {
		loaded = fuzz_batch(&s, 500, &r, make_mutant);
		total += loaded;
	}
	cr_log_info("mutants: %zu of 3000 still loaded (and were sane)", total);
	spool_close(&s);
}

/* ------------------------------------------------------------- threads */

struct worker {
	struct spool *s;
	int n;
	char ids[25][QUEUE_ID_MAX];
	bool ok;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;

	w->ok = true;
	for (int i = 0; i < 25; i++) {
		struct q_envelope *e = env_new("t@example.org", 2);
		char why[256], sender[64];

		snprintf(sender, sizeof(sender), "w%d-%d@example.org", w->n, i);
		free(e->sender);
		e->sender = strdup(sender);
		if (!queue_commit(w->s->q, sender, strlen(sender), e, why,
		    sizeof(why)))
			w->ok = false;
		memcpy(w->ids[i], e->id, QUEUE_ID_MAX);
		q_envelope_free(e);
	}
	return NULL;
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

Test(queue, concurrent_commits)
{
	struct spool s;
	struct seen seen = { 0 };
	struct worker w[4];
	pthread_t t[4];
	char all[100][QUEUE_ID_MAX];

	spool_open(&s);
	for (int i = 0; i < 4; i++) {
		w[i].s = &s;
		w[i].n = i;
		cr_assert(pthread_create(&t[i], NULL, worker_run, &w[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_expect(w[i].ok, "worker %d: a commit failed", i);
		memcpy(all[25 * i], w[i].ids, sizeof(w[i].ids));
	}
	qsort(all, 100, QUEUE_ID_MAX, id_cmp);
	for (int i = 1; i < 100; i++)
		cr_expect(strcmp(all[i - 1], all[i]) != 0, "id %s given twice",
		    all[i]);
	cr_assert(scan(&s, &seen) == 100 && seen.nbad == 0,
	    "loaded %zu of 100, %zu bad", seen.n, seen.nbad);
	for (size_t i = 0; i < seen.n; i++) {
		size_t len;
		char *msg = queue_read(s.q, seen.env[i]->id, &len);

		cr_expect(msg && same(msg, len, seen.env[i]->sender),
		    "%s: message does not belong to its envelope",
		    seen.env[i]->id);
		free(msg);
	}
	seen_free(&seen);
	spool_close(&s);
}

/* -------------------------------------------------------------- spares */

/* count_suffix - entries of SPOOL/DIR whose names end in suffix. */
static size_t
count_suffix(const struct spool *s, const char *dir, const char *suffix)
{
	char p[PATH_MAX];
	struct dirent *de;
	size_t n = 0, k = strlen(suffix);
	DIR *d;

	snprintf(p, sizeof(p), "%s/%s", s->dir, dir);
	cr_assert((d = opendir(p)) != NULL, "opendir %s", p);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		n += l > k && strcmp(de->d_name + l - k, suffix) == 0;
	}
	closedir(d);
	return n;
}

/*
 * A removed message's files are kept in tmp/ and overwritten by later
 * commits: a shorter message over a longer one must come back exactly,
 * the removed id must be gone, and closing the queue removes the spares.
 */
Test(queue, removed_files_reused_exactly)
{
	static const char *const bodies[] = {
		"a long first message, longer than the ones after it\r\n",
		"short\r\n",
		"",
		"medium length message\r\n",
		"x\r\n",
	};
	struct spool s;
	char prev[QUEUE_ID_MAX] = "";

	spool_open(&s);
	for (size_t i = 0; i < NELEM(bodies); i++) {
		struct q_envelope *e = env_new("r@example.org", 1);
		size_t len;
		char *got;

		commit_ok(&s, bodies[i], e);
		got = queue_read(s.q, e->id, &len);
		cr_expect(got && same(got, len, bodies[i]), "commit %zu: read "
		    "back \"%s\", want \"%s\"", i, got ? esc(got, len) :
		    "(none)", escs(bodies[i]));
		free(got);
		if (prev[0]) {
			cr_expect(queue_remove(s.q, prev), "remove %s", prev);
			cr_expect(queue_read(s.q, prev, &len) == NULL,
			    "%s still readable after its removal", prev);
		}
		memcpy(prev, e->id, QUEUE_ID_MAX);
		q_envelope_free(e);
	}
	cr_expect(count_suffix(&s, "tmp", ".spare") > 0, "no spare kept");
	cr_expect(count_dir(&s, "queue") == 2, "queue/ holds %zu names, "
	    "want the last message's two", count_dir(&s, "queue"));
	queue_close(s.q);
	s.q = NULL;
	{
		char why[256] = "";

		s.q = queue_open(s.dir, why, sizeof(why));
		cr_assert(s.q != NULL, "reopen: %s", why);
	}
	cr_expect(count_dir(&s, "tmp") == 0, "queue_close left %zu files in "
	    "tmp/", count_dir(&s, "tmp"));
	spool_close(&s);
}

/* --------------------------------------------------------------- crash */

#define CRASH_UPDATE_REPLY "451 4.3.0 try\r\nlater 100%"

/* lone_msgs - queue/ID.msg files without their ID.env. */
static size_t
lone_msgs(const struct spool *s)
{
	char p[PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(p, sizeof(p), "%s/queue", s->dir);
	cr_assert((d = opendir(p)) != NULL);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		char env[256];

		if (l < 5 || strcmp(de->d_name + l - 4, ".msg") != 0)
			continue;
		snprintf(env, sizeof(env), "%.*s.env", (int)(l - 4), de->d_name);
		n += !exists(s, "queue", env);
	}
	closedir(d);
	return n;
}

/* crash_child - commit forever, writing each id to fd once its commit
 * has returned true, and update the one before it; never returns. */
static void __attribute__((noreturn))
crash_child(const char *dir, int fd, unsigned round)
{
	struct q_envelope *prev = NULL;
	struct queue *q;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if ((q = queue_open(dir, NULL, 0)) == NULL)
		_exit(2);
	for (unsigned i = 0; i < 1000000; i++) {
		struct q_envelope *e = env_new("", 2);
		char body[128], line[QUEUE_ID_MAX + 1];
		size_t n;

		n = (size_t)snprintf(body, sizeof(body), "Message %u/%u\r\n",
		    round, i);
		free(e->sender);
		e->sender = strdup(body);
		if (!queue_commit(q, body, n, e, NULL, 0))
			_exit(3);
		n = (size_t)snprintf(line, sizeof(line), "%s\n", e->id);
		if (write(fd, line, n) != (ssize_t)n)
			_exit(4);
		if (prev) {
			prev->rcpt[1].attempts = 1;
			prev->rcpt[1].last_reply = strdup(CRASH_UPDATE_REPLY);
			if (!queue_update(q, prev, NULL, 0))
				_exit(5);
			q_envelope_free(prev);
		}
		prev = e;
	}
	pause();
	_exit(0);
}

Test(queue, crash_consistency, .timeout = 240)
{
	struct spool s;
	struct seen seen = { 0 };
	struct rng r = { (uint64_t)time(NULL) * 2654435761u | 1 };
	size_t reported = 0, debris = 0, lone = 0, lone_before = 0;

	cr_log_info("crash seed %llu", (unsigned long long)r.s);
	spool_open(&s);
	for (unsigned round = 0; round < 8; round++) {
		char *ids = NULL;
		size_t len = 0, cap = 0;
		int p[2], status;
		pid_t pid;
		ssize_t k;

		cr_assert(pipe(p) == 0);
		pid = fork();
		cr_assert(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			close(p[0]);
			crash_child(s.dir, p[1], round);
		}
		close(p[1]);
		usleep((useconds_t)(20000 + rng_below(&r, 180000)));
		kill(pid, SIGKILL);
		cr_assert(waitpid(pid, &status, 0) == pid);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		    "round %u: the child ended by itself (status %d)", round,
		    status);
		for (;;) {
			if (cap - len < 512) {
				cap = cap ? 2 * cap : 4096;
				ids = realloc(ids, cap);
				cr_assert(ids != NULL);
			}
			k = read(p[0], ids + len, cap - len - 1);
			if (k <= 0)
				break;
			len += (size_t)k;
		}
		close(p[0]);
		ids = ids ? ids : calloc(1, 1);
		ids[len] = '\0';

		debris += count_dir(&s, "tmp");
		lone += lone_msgs(&s) - lone_before;
		scan(&s, &seen);
		lone_before = lone_msgs(&s);	/* young: the scan keeps them */
		cr_expect(seen.nbad == 0, "round %u: %zu entries reported "
		    "corrupt (first %s: %s)", round, seen.nbad,
		    seen.nbad ? seen.bad[0].name : "-",
		    seen.nbad ? seen.bad[0].why : "-");
		cr_expect(count_dir(&s, "corrupt") == 0);
		cr_expect(count_dir(&s, "tmp") == 0, "round %u: tmp/ debris "
		    "not swept", round);
		for (char *id = strtok(ids, "\n"); id; id = strtok(NULL, "\n")) {
			struct q_envelope *e = find_env(&seen, id);
			char *msg;
			size_t mlen;

			reported++;
			cr_assert(e != NULL, "round %u: %s was committed but "
			    "did not load", round, id);
			expect_sane(e);
			cr_expect(e->rcpt[1].attempts == 0 ? e->rcpt[1].last_reply ==
			    NULL : e->rcpt[1].attempts == 1 &&
			    streq_null(e->rcpt[1].last_reply, CRASH_UPDATE_REPLY),
			    "%s: a torn update", id);
			msg = queue_read(s.q, id, &mlen);
			cr_expect(msg && same(msg, mlen, e->sender), "%s: message "
			    "\"%s\" does not match envelope \"%s\"", id,
			    msg ? esc(msg, mlen) : "(none)", escs(e->sender));
			free(msg);
		}
		free(ids);
	}
	cr_log_info("crash: %zu committed ids checked, %zu queued at the end; "
	    "the kills left %zu tmp files and %zu lone messages", reported,
	    seen.n, debris, lone);
	cr_expect(reported > 0, "no commit finished before any kill");
	seen_free(&seen);
	spool_close(&s);
}
