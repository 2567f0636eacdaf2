/*
 * queue.c - the durable on-disk queue (see queue.h).
 *
 * Layout under the spool: tmp/ holds files still being written (DATA
 * streamed by sessions, and each commit's two files before their rename)
 * and spares (ID.msg.spare, ID.env.spare: removed queue files kept to be
 * overwritten by a later commit, see spare_take), queue/ holds ID.msg and
 * ID.env, corrupt/
 * receives whatever a scan refused. The envelope is the commit point: it
 * is renamed into queue/ only after its message, so a .msg alone is a
 * commit that never finished.
 *
 * Owns: the three directory fds, opened once by queue_open and never
 * changed afterwards; the directory-sync round (struct dirsync) that
 * concurrent commits and updates share; and the ring of spares, under
 * the same mutex. Besides those, the only state shared between threads is
 * the id counter, which is atomic; every other call works on its own
 * names.
 *
 * Untrusted input: envelope files read back from disk (a crash, a full
 * disk or an operator's editor may have mangled them) and the
 * peer-supplied strings stored in them (addresses, SMTP replies).
 *
 * SECURITY: every stored string is percent-encoded, so no value can begin
 * a line or a field of its own. The parser accepts exactly one spelling
 * of a given envelope, checks the SHA-256 line before reading anything
 * else, and checks every count against the lines that follow before it
 * allocates for them.
 *
 * Envelope file, version 1: LF line ends, one record per line, in this
 * order and nothing else:
 *
 *	arcrelay-envelope 1
 *	id ID
 *	first-seen SECONDS
 *	bounce 0|1
 *	sender VALUE
 *	rcpts N					(1 <= N <= ENV_MAX_RCPT)
 *	rcpt STATE ATTEMPTS NEXT-RETRY ADDR REPLY	(N lines)
 *	sha256 HEX				(of every byte before it)
 *
 * STATE is pending, delivered, failed or expired. Numbers are decimal with
 * no sign and no leading zero. A VALUE (and ADDR, REPLY) is "=" followed by
 * the string with '%' and every byte outside '!'..'~' written as %XX in
 * uppercase hex; REPLY may also be "-" for none. HEX is lowercase. So a
 * space only ever separates fields and a newline only ever ends a record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dkim.h"
#include "queue.h"

#define ENV_MAGIC	"arcrelay-envelope"
#define ENV_VERSION	"1"
#define ENV_MAX_FILE	(64u << 20)	/* bytes of one envelope file */
#define ENV_MAX_RCPT	10000u
#define ENV_MAX_ADDR	2048u		/* decoded bytes of sender or rcpt */
#define ENV_MAX_REPLY	16384u		/* decoded bytes of last_reply */
#define ORPHAN_AGE	60		/* seconds before a lone .msg is stale */
#define NAME_LEN	(QUEUE_ID_MAX + 32)
#define SPARE_MAX	64		/* removed files kept for reuse */
#define DS_HISTORY	256		/* directory sync results kept */

/*
 * A round of fsyncs of queue/ shared by every thread that needs one: a
 * sync that began after a thread's last rename covers that rename, so
 * one sync serves all who renamed while the one before it ran. Syncs are
 * numbered from 1 and run one at a time, so they end in order.
 */
struct dirsync {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t begun;		/* number of the last sync begun */
	uint64_t ended;		/* number of the last sync ended */
	uint64_t failed;	/* number of the last that failed, 0 if none */
	int err;		/* its errno */
	int result[DS_HISTORY];	/* errno (0: ok) of sync n at n % DS_HISTORY */
	bool busy;		/* a sync is running */
};

/* A removed queue file, now tmp/NAME.spare, waiting to be overwritten. */
struct spare {
	char name[NAME_LEN];	/* its name in queue/: ID.msg or ID.env */
	uint64_t first, gen;	/* its rename's ticket, and the directory
				 * sync that makes the rename durable */
};

/* The kinds of queue file, each with its own spares: a message is
 * overwritten with a message and an envelope with an envelope, so the
 * size of a reused file, and the blocks it holds, mostly stay put. */
enum spare_kind { SPARE_MSG, SPARE_ENV, SPARE_KINDS };

/* Spares of one kind, oldest first. */
struct spare_ring {
	struct spare v[SPARE_MAX];
	size_t head, n;
};

struct queue {
	char *spool;		/* owned: the path given to queue_open */
	int tmpfd;		/* SPOOL/tmp */
	int qfd;		/* SPOOL/queue */
	int cfd;		/* SPOOL/corrupt */
	struct dirsync ds;
	bool ds_init;		/* ds.mu and ds.cv exist */
	struct spare_ring spares[SPARE_KINDS];	/* under ds.mu */
};

static const char *const state_name[] = {
	[Q_PENDING] = "pending",
	[Q_DELIVERED] = "delivered",
	[Q_FAILED] = "failed",
	[Q_EXPIRED] = "expired",
};
#define NSTATES (sizeof(state_name) / sizeof(state_name[0]))

const char *
queue_state_str(enum q_state st)
{
	return (size_t)st < NSTATES ? state_name[st] : "unknown";
}

/* Numbers the names of temp files and keeps ids made in one microsecond
 * apart; the only mutable state shared between threads. */
static atomic_uint_fast32_t queue_seq;

/* ------------------------------------------------------------------ ids */

/* id_valid - 1..QUEUE_ID_MAX-1 characters of [0-9A-Za-z]. Ids become file
 * names, so nothing else may pass (no '/', no '.', no NUL). */
static bool
id_valid(const char *p, size_t n)
{
	if (n == 0 || n >= QUEUE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z')))
			return false;
	}
	return true;
}

static bool
id_valid_str(const char *id)
{
	return id != NULL && id_valid(id, strnlen(id, QUEUE_ID_MAX));
}

/*
 * queue_new_id - 14 hex digits of microseconds since the epoch, 6 of the
 * process counter, 8 random: 28 characters that sort by creation time
 * (uppercase hex sorts like the numbers it spells). The random part keeps
 * two processes, or a restart inside one microsecond, apart.
 */
static void
queue_new_id(char out[QUEUE_ID_MAX], uint32_t *seqp)
{
	struct timespec ts;
	uint64_t us;
	uint32_t seq, rnd;

	seq = (uint32_t)atomic_fetch_add(&queue_seq, 1);
	clock_gettime(CLOCK_REALTIME, &ts);
	us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (uint32_t)getpid() * 2654435761u ^ seq ^ (uint32_t)us;
	snprintf(out, QUEUE_ID_MAX, "%014" PRIX64 "%06" PRIX32 "%08" PRIX32,
	    us & UINT64_C(0xFFFFFFFFFFFFFF), seq & 0xFFFFFFu, rnd);
	if (seqp)
		*seqp = seq;
}

/* ------------------------------------------------------ the envelope text */

static bool
needs_escape(unsigned char c)
{
	return c <= ' ' || c > '~' || c == '%';
}

/* put_value - "=" and the percent-encoded string, or "-" for NULL. */
static void
put_value(struct dkim_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	if (s == NULL) {
		dkim_buf_addc(b, '-');
		return;
	}
	dkim_buf_addc(b, '=');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (needs_escape(c)) {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			dkim_buf_add(b, e, sizeof(e));
		} else {
			dkim_buf_addc(b, (char)c);
		}
	}
}

static void
hex_lower(const unsigned char *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool
sha256(const char *p, size_t n, unsigned char md[32])
{
	unsigned int mdlen = 0;

	return EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) == 1 &&
	    mdlen == 32;
}

/*
 * env_check - what the parser would refuse, refused before writing: the
 * queue never stores an envelope it could not load again.
 */
static bool
env_check(const struct q_envelope *env, char *why, size_t whylen)
{
	if (!id_valid_str(env->id)) {
		dkim_whyf(why, whylen, "envelope id is not 1-%d of [0-9A-Za-z]",
		    QUEUE_ID_MAX - 1);
		return false;
	}
	if (env->sender == NULL ||
	    strnlen(env->sender, ENV_MAX_ADDR + 1) > ENV_MAX_ADDR) {
		dkim_whyf(why, whylen, "sender is missing or longer than %u bytes",
		    ENV_MAX_ADDR);
		return false;
	}
	if (env->nrcpt == 0 || env->nrcpt > ENV_MAX_RCPT || env->rcpt == NULL) {
		dkim_whyf(why, whylen, "%zu recipients (want 1-%u)", env->nrcpt,
		    ENV_MAX_RCPT);
		return false;
	}
	if (env->first_seen < 0) {
		dkim_whyf(why, whylen, "first_seen is negative");
		return false;
	}
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct q_rcpt *r = &env->rcpt[i];

		if (r->addr == NULL || r->addr[0] == '\0' ||
		    strnlen(r->addr, ENV_MAX_ADDR + 1) > ENV_MAX_ADDR) {
			dkim_whyf(why, whylen, "recipient %zu: address missing, "
			    "empty or longer than %u bytes", i, ENV_MAX_ADDR);
			return false;
		}
		if ((unsigned)r->state >= NSTATES) {
			dkim_whyf(why, whylen, "recipient %zu: state %d unknown", i,
			    (int)r->state);
			return false;
		}
		if (r->next_retry < 0) {
			dkim_whyf(why, whylen, "recipient %zu: next_retry negative",
			    i);
			return false;
		}
		if (r->last_reply != NULL &&
		    strnlen(r->last_reply, ENV_MAX_REPLY + 1) > ENV_MAX_REPLY) {
			dkim_whyf(why, whylen, "recipient %zu: reply longer than %u "
			    "bytes", i, ENV_MAX_REPLY);
			return false;
		}
	}
	return true;
}

/* env_format - the envelope file for env (malloc'd, *len bytes). */
static char *
env_format(const struct q_envelope *env, size_t *len, char *why,
    size_t whylen)
{
	struct dkim_buf b;
	unsigned char md[32];
	char hex[65];

	if (!env_check(env, why, whylen))
		return NULL;
	dkim_buf_init(&b, ENV_MAX_FILE);
	dkim_buf_addf(&b, "%s %s\nid %s\nfirst-seen %" PRId64 "\nbounce %d\n"
	    "sender ", ENV_MAGIC, ENV_VERSION, env->id, env->first_seen,
	    env->is_bounce ? 1 : 0);
	put_value(&b, env->sender);
	dkim_buf_addf(&b, "\nrcpts %zu\n", env->nrcpt);
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct q_rcpt *r = &env->rcpt[i];

		dkim_buf_addf(&b, "rcpt %s %u %" PRId64 " ",
		    state_name[r->state], r->attempts, r->next_retry);
		put_value(&b, r->addr);
		dkim_buf_addc(&b, ' ');
		put_value(&b, r->last_reply);
		dkim_buf_addc(&b, '\n');
	}
	if (b.failed || !sha256(b.p, b.len, md)) {
		dkim_buf_free(&b);
		dkim_whyf(why, whylen, "envelope too large or out of memory");
		return NULL;
	}
	hex_lower(md, sizeof(md), hex);
	dkim_buf_addf(&b, "sha256 %s\n", hex);
	if (b.failed) {
		dkim_buf_free(&b);
		dkim_whyf(why, whylen, "envelope too large or out of memory");
		return NULL;
	}
	return dkim_buf_take(&b, len);
}

/* A cursor over the record lines; every line ends in LF (checked once). */
struct cursor {
	const char *p;
	const char *end;
	unsigned line;		/* number of the line last taken */
};

/* next_line - the next line without its LF; false at the end. */
static bool
next_line(struct cursor *c, const char **lp, size_t *ln)
{
	const char *nl;

	if (c->p >= c->end)
		return false;
	nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
	if (nl == NULL)
		return false;
	*lp = c->p;
	*ln = (size_t)(nl - c->p);
	c->p = nl + 1;
	c->line++;
	return true;
}

/* take_field - the bytes up to the next space (or the end of the line). */
static bool
take_field(const char **p, const char *end, const char **fp, size_t *fn)
{
	const char *sp;

	if (*p > end)
		return false;
	sp = memchr(*p, ' ', (size_t)(end - *p));
	*fp = *p;
	if (sp) {
		*fn = (size_t)(sp - *p);
		*p = sp + 1;
	} else {
		*fn = (size_t)(end - *p);
		*p = end + 1;	/* past the end: no further field */
	}
	return true;
}

/* keyword - the line is "KEY VALUE"; the value's bytes go to vp, vn. */
static bool
keyword(const char *lp, size_t ln, const char *key, const char **vp,
    size_t *vn)
{
	size_t kl = strlen(key);

	if (ln <= kl || memcmp(lp, key, kl) != 0 || lp[kl] != ' ')
		return false;
	*vp = lp + kl + 1;
	*vn = ln - kl - 1;
	return true;
}

/* parse_num - decimal, no sign, no leading zero, at most max. */
static bool
parse_num(const char *p, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20 || (n > 1 && p[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (p[i] < '0' || p[i] > '9')
			return false;
		d = (unsigned)(p[i] - '0');
		if (d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* hexval - one hex digit in the given case (ten is 'A' or 'a'); the
 * other case is not the spelling we write, so it is refused. */
static int
hexval(char c, char ten)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= ten && c <= ten + 5)
		return c - ten + 10;
	return -1;
}

/*
 * parse_value - a VALUE field into a fresh string (*out, NULL for "-"
 * when allowed). Only the spelling put_value writes is accepted: no
 * escape for a byte that needs none, no literal byte that needs one, and
 * no NUL, which a C string could not hold.
 */
static bool
parse_value(const char *p, size_t n, size_t max, bool allow_none,
    char **out, const char **err)
{
	char *s;
	size_t o = 0;

	*out = NULL;
	if (n == 1 && p[0] == '-') {
		if (allow_none)
			return true;
		*err = "value may not be absent";
		return false;
	}
	if (n == 0 || p[0] != '=') {
		*err = "value does not start with '='";
		return false;
	}
	if ((s = malloc(n)) == NULL) {
		*err = "out of memory";
		return false;
	}
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				goto bad_escape;
			hi = hexval(p[i + 1], 'A');
			lo = hexval(p[i + 2], 'A');
			if (hi < 0 || lo < 0)
				goto bad_escape;
			c = (unsigned char)(hi << 4 | lo);
			if (c == 0 || !needs_escape(c))
				goto bad_escape;
			i += 2;
		} else if (needs_escape(c)) {
			free(s);
			*err = "unencoded byte in value";
			return false;
		}
		if (o >= max) {
			free(s);
			*err = "value too long";
			return false;
		}
		s[o++] = (char)c;
	}
	s[o] = '\0';
	*out = s;
	return true;
bad_escape:
	free(s);
	*err = "bad %-escape in value";
	return false;
}

/*
 * env_parse - an envelope file p[0..n) into a fresh envelope, or NULL
 * with a reason. Straight down: any deviation from the format is the end.
 * No I/O.
 */
static struct q_envelope *
env_parse(const char *p, size_t n, char *why, size_t whylen)
{
	struct q_envelope *env = NULL;
	struct cursor c;
	const char *lp, *vp, *fp, *le, *err = NULL;
	size_t ln, vn, fn, body, nlines = 0;
	unsigned char md[32], want[32];
	uint64_t v;

	if (n == 0) {
		dkim_whyf(why, whylen, "empty file");
		return NULL;
	}
	if (n > ENV_MAX_FILE) {
		dkim_whyf(why, whylen, "larger than %u bytes", ENV_MAX_FILE);
		return NULL;
	}
	if (p[n - 1] != '\n') {
		dkim_whyf(why, whylen, "truncated: no final newline");
		return NULL;
	}

	/* The checksum line first: nothing else is read unless it holds. */
	body = n - 1;
	while (body > 0 && p[body - 1] != '\n')
		body--;
	if (!keyword(p + body, n - 1 - body, "sha256", &vp, &vn) || vn != 64) {
		dkim_whyf(why, whylen, "truncated: no sha256 line at the end");
		return NULL;
	}
	for (size_t i = 0; i < 32; i++) {
		int hi = hexval(vp[2 * i], 'a'), lo = hexval(vp[2 * i + 1], 'a');

		if (hi < 0 || lo < 0) {
			dkim_whyf(why, whylen, "sha256 line is not 64 lowercase hex "
			    "digits");
			return NULL;
		}
		want[i] = (unsigned char)(hi << 4 | lo);
	}
	if (!sha256(p, body, md)) {
		dkim_whyf(why, whylen, "cannot compute sha256");
		return NULL;
	}
	if (memcmp(md, want, sizeof(md)) != 0) {
		dkim_whyf(why, whylen, "checksum mismatch");
		return NULL;
	}

	c.p = p;
	c.end = p + body;
	c.line = 0;
	if ((env = calloc(1, sizeof(*env))) == NULL) {
		dkim_whyf(why, whylen, "out of memory");
		return NULL;
	}

	if (!next_line(&c, &lp, &ln) || ln < sizeof(ENV_MAGIC) ||
	    memcmp(lp, ENV_MAGIC " ", sizeof(ENV_MAGIC)) != 0) {
		err = "not an arcrelay envelope";
		goto fail;
	}
	if (ln != sizeof(ENV_MAGIC) + strlen(ENV_VERSION) ||
	    memcmp(lp + sizeof(ENV_MAGIC), ENV_VERSION,
	    strlen(ENV_VERSION)) != 0) {
		err = "unsupported envelope version";
		goto fail;
	}

	if (!next_line(&c, &lp, &ln) || !keyword(lp, ln, "id", &vp, &vn) ||
	    !id_valid(vp, vn)) {
		err = "bad id record";
		goto fail;
	}
	memcpy(env->id, vp, vn);
	env->id[vn] = '\0';

	if (!next_line(&c, &lp, &ln) ||
	    !keyword(lp, ln, "first-seen", &vp, &vn) ||
	    !parse_num(vp, vn, INT64_MAX, &v)) {
		err = "bad first-seen record";
		goto fail;
	}
	env->first_seen = (int64_t)v;

	if (!next_line(&c, &lp, &ln) || !keyword(lp, ln, "bounce", &vp, &vn) ||
	    !parse_num(vp, vn, 1, &v)) {
		err = "bad bounce record";
		goto fail;
	}
	env->is_bounce = v == 1;

	if (!next_line(&c, &lp, &ln) || !keyword(lp, ln, "sender", &vp, &vn)) {
		err = "bad sender record";
		goto fail;
	}
	if (!parse_value(vp, vn, ENV_MAX_ADDR, false, &env->sender, &err))
		goto fail;

	if (!next_line(&c, &lp, &ln) || !keyword(lp, ln, "rcpts", &vp, &vn) ||
	    !parse_num(vp, vn, ENV_MAX_RCPT, &v)) {
		err = "bad rcpts record";
		goto fail;
	}
	if (v == 0) {
		err = "no recipients";
		goto fail;
	}
	/* Count what follows before allocating for the count. */
	for (const char *s = c.p; s < c.end; s++)
		nlines += *s == '\n';
	if (nlines != v) {
		err = nlines < v ? "fewer recipient lines than rcpts says" :
		    "more lines than rcpts says";
		goto fail;
	}
	if ((env->rcpt = calloc((size_t)v, sizeof(*env->rcpt))) == NULL) {
		err = "out of memory";
		goto fail;
	}
	env->nrcpt = (size_t)v;

	for (size_t i = 0; i < env->nrcpt; i++) {
		struct q_rcpt *r = &env->rcpt[i];
		const char *f;
		size_t k;

		if (!next_line(&c, &lp, &ln) ||
		    !keyword(lp, ln, "rcpt", &vp, &vn)) {
			err = "bad rcpt record";
			goto fail;
		}
		f = vp;
		le = vp + vn;

		take_field(&f, le, &fp, &fn);
		for (k = 0; k < NSTATES; k++)
			if (strlen(state_name[k]) == fn &&
			    memcmp(state_name[k], fp, fn) == 0)
				break;
		if (k == NSTATES) {
			err = "unknown recipient state";
			goto fail;
		}
		r->state = (enum q_state)k;

		if (!take_field(&f, le, &fp, &fn) ||
		    !parse_num(fp, fn, UINT_MAX, &v)) {
			err = "bad attempts field";
			goto fail;
		}
		r->attempts = (unsigned)v;

		if (!take_field(&f, le, &fp, &fn) ||
		    !parse_num(fp, fn, INT64_MAX, &v)) {
			err = "bad next-retry field";
			goto fail;
		}
		r->next_retry = (int64_t)v;

		if (!take_field(&f, le, &fp, &fn)) {
			err = "missing address field";
			goto fail;
		}
		if (!parse_value(fp, fn, ENV_MAX_ADDR, false, &r->addr, &err))
			goto fail;
		if (r->addr[0] == '\0') {
			err = "empty recipient address";
			goto fail;
		}

		if (!take_field(&f, le, &fp, &fn)) {
			err = "missing reply field";
			goto fail;
		}
		if (!parse_value(fp, fn, ENV_MAX_REPLY, true, &r->last_reply,
		    &err))
			goto fail;
		if (f <= le) {
			err = "extra fields in rcpt record";
			goto fail;
		}
	}
	return env;

fail:
	dkim_whyf(why, whylen, "line %u: %s", c.line, err ? err : "malformed");
	q_envelope_free(env);
	return NULL;
}

void
q_envelope_free(struct q_envelope *env)
{
	if (env == NULL)
		return;
	for (size_t i = 0; env->rcpt && i < env->nrcpt; i++) {
		free(env->rcpt[i].addr);
		free(env->rcpt[i].last_reply);
	}
	free(env->rcpt);
	free(env->sender);
	free(env);
}

/* ---------------------------------------------------------------- files */

/* pwrite_all - p[0..n) at the start of the file. */
static bool
pwrite_all(int fd, const char *p, size_t n)
{
	off_t at = 0;

	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, at);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += w;
		n -= (size_t)w;
		at += w;
	}
	return true;
}

/* A file under tmp/ on its way to a name in queue/. */
struct qfile {
	char tmp[NAME_LEN + 8];	/* its name under tmp/; "" once gone */
	int fd;			/* -1 once closed */
	off_t size;		/* its size before qfile_write wrote it */
};

#define QFILE_INIT { "", -1, 0 }

/*
 * ds_ticket - taken before changing names in queue/: the number of the
 * first sync that may see only part of the change (the one running now,
 * or else the next).
 */
static uint64_t
ds_ticket(struct queue *q)
{
	uint64_t t;

	pthread_mutex_lock(&q->ds.mu);
	t = q->ds.busy ? q->ds.begun : q->ds.begun + 1;
	pthread_mutex_unlock(&q->ds.mu);
	return t;
}

/*
 * ds_verdict - 0 when a change made between ticket first and the start of
 * sync last is durable once last has ended, else the errno that makes it
 * uncertain. After a failed fsync the kernel may count the blocks it
 * could not write as clean and report the error only once, so a later
 * sync can succeed with an entry made during the failed one unwritten:
 * every sync from first to last must have succeeded. Results older than
 * the history are judged by the last failure alone, which errs on the
 * side of failing. Under d->mu, with last <= d->ended.
 */
static int
ds_verdict(const struct dirsync *d, uint64_t first, uint64_t last)
{
	if (d->ended - first >= DS_HISTORY - 1)
		return d->failed >= first ? d->err : 0;
	for (uint64_t g = first; g <= last; g++)
		if (d->result[g % DS_HISTORY] != 0)
			return d->result[g % DS_HISTORY];
	return 0;
}

/*
 * dir_sync - return once an fsync of queue/ that began after the caller's
 * changes has ended: 0, or the errno that makes those changes uncertain
 * (see ds_verdict; first is the ticket taken before them).
 *
 * The group commit: whoever finds no sync running starts one, for
 * everybody; the others wait for it. A sync already running may have
 * begun before the caller's renames, so the caller needs the one after
 * it; every caller that arrives while a sync runs shares that next one.
 * Under load one fsync of queue/ covers several commits.
 */
static int
dir_sync(struct queue *q, uint64_t first)
{
	struct dirsync *d = &q->ds;
	uint64_t want, mine;
	int rc, e;

	pthread_mutex_lock(&d->mu);
	want = d->begun + 1;
	while (d->ended < want) {
		if (d->busy) {
			pthread_cond_wait(&d->cv, &d->mu);
			continue;
		}
		d->busy = true;
		mine = ++d->begun;
		pthread_mutex_unlock(&d->mu);
		rc = fsync(q->qfd);
		e = rc != 0 ? errno : 0;
		pthread_mutex_lock(&d->mu);
		d->busy = false;
		d->ended = mine;
		d->result[mine % DS_HISTORY] = e;
		if (rc != 0) {
			d->failed = mine;
			d->err = e;
		}
		pthread_cond_broadcast(&d->cv);
	}
	e = ds_verdict(d, first, want);
	pthread_mutex_unlock(&d->mu);
	return e;
}

/*
 * Spares. On a filesystem that has to find a free inode for every new
 * file and free one for every removal (ext4 without a journal skips
 * inodes freed in the last minutes, by scanning past them), creating and
 * removing files for every message costs the kernel as much as signing
 * it (smtpd reuses its DATA files for the same reason). So queue_remove renames a removed file to tmp/NAME.spare (NAME its
 * name in queue/, unique as ids are), and a later commit or update
 * overwrites it instead of creating a file. Messages and envelopes are
 * kept apart (enum spare_kind): overwriting a file with bytes of about
 * its size neither allocates blocks nor frees them, and needs no
 * ftruncate unless the new bytes are shorter.
 *
 * A spare still holds a removed message or envelope. It may be
 * overwritten only once its removal from queue/ is durable: if a crash
 * undid the removal, the old name would come back pointing at new bytes,
 * another message delivered under the old envelope. So each spare waits
 * for a directory sync begun after its rename, judged as in dir_sync: a
 * failed sync makes the spares it was to cover unusable. Nothing waits
 * for a spare: when the oldest is not ready, the commit creates a new
 * file. Spares are not locked while they wait, so a scan sweeps them away
 * like any other debris; spare_take checks the file it opens.
 */

/* spare_kind_of - which spares a queue/ name (ID.msg, ID.env) goes to. */
static enum spare_kind
spare_kind_of(const char *name)
{
	size_t l = strlen(name);

	return l > 4 && strcmp(name + l - 4, ".env") == 0 ? SPARE_ENV :
	    SPARE_MSG;
}

/* spare_keep - move queue/NAME to the spares, or remove it when the ring
 * is full: 0, or the errno of the step that failed (ENOENT: not there). */
static int
spare_keep(struct queue *q, const char *name)
{
	struct spare_ring *ring = &q->spares[spare_kind_of(name)];
	char sname[NAME_LEN + 8];
	struct spare sp;
	bool full;

	pthread_mutex_lock(&q->ds.mu);
	full = ring->n == SPARE_MAX;
	pthread_mutex_unlock(&q->ds.mu);
	if (full)
		return unlinkat(q->qfd, name, 0) == 0 ? 0 : errno;
	snprintf(sp.name, sizeof(sp.name), "%s", name);
	snprintf(sname, sizeof(sname), "%s.spare", name);
	sp.first = ds_ticket(q);
	if (renameat(q->qfd, name, q->tmpfd, sname) != 0) {
		if (errno == ENOENT)
			return ENOENT;
		return unlinkat(q->qfd, name, 0) == 0 ? 0 : errno;
	}
	pthread_mutex_lock(&q->ds.mu);
	/* The first sync to begin from now on covers the rename. */
	sp.gen = q->ds.begun + 1;
	full = ring->n == SPARE_MAX;
	if (!full)
		ring->v[(ring->head + ring->n++) % SPARE_MAX] = sp;
	pthread_mutex_unlock(&q->ds.mu);
	if (full)
		unlinkat(q->tmpfd, sname, 0);
	return 0;
}

/*
 * spare_take - the oldest spare of a kind, opened and locked for
 * overwriting, when its removal is durable: its fd, name and size go to
 * f. False when there is none to take (then f is untouched).
 */
static bool
spare_take(struct queue *q, enum spare_kind kind, struct qfile *f)
{
	struct spare_ring *ring = &q->spares[kind];
	struct spare sp;
	struct stat st;
	bool have = false, usable = false;
	int fd;

	pthread_mutex_lock(&q->ds.mu);
	if (ring->n > 0 && ring->v[ring->head].gen <= q->ds.ended) {
		sp = ring->v[ring->head];
		ring->head = (ring->head + 1) % SPARE_MAX;
		ring->n--;
		have = true;
		usable = ds_verdict(&q->ds, sp.first, sp.gen) == 0;
	}
	pthread_mutex_unlock(&q->ds.mu);
	if (!have)
		return false;
	snprintf(f->tmp, sizeof(f->tmp), "%s.spare", sp.name);
	if (!usable) {
		unlinkat(q->tmpfd, f->tmp, 0);
		f->tmp[0] = '\0';
		return false;
	}
	fd = openat(q->tmpfd, f->tmp, O_WRONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK);
	if (fd < 0) {			/* swept by a scan */
		f->tmp[0] = '\0';
		return false;
	}
	/* Locked by a scan about to remove it, or not the file we left. */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 ||
	    !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		close(fd);
		f->tmp[0] = '\0';
		return false;
	}
	f->fd = fd;
	f->size = st.st_size;
	return true;
}

/* spare_clear - remove every spare (queue_close). */
static void
spare_clear(struct queue *q)
{
	char sname[NAME_LEN + 8];

	for (size_t k = 0; k < SPARE_KINDS; k++) {
		struct spare_ring *ring = &q->spares[k];

		for (; ring->n > 0; ring->n--) {
			snprintf(sname, sizeof(sname), "%s.spare",
			    ring->v[ring->head].name);
			unlinkat(q->tmpfd, sname, 0);
			ring->head = (ring->head + 1) % SPARE_MAX;
		}
	}
}

/* qfile_drop - close and remove f, whatever is left of it. */
static void
qfile_drop(struct queue *q, struct qfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->tmp[0] != '\0')
		unlinkat(q->tmpfd, f->tmp, 0);
	f->tmp[0] = '\0';
}

/*
 * qfile_write - a file under tmp/ holding p[0..n), not yet synced: a
 * spare of the kind overwritten (and cut to length only when it was
 * longer), or else a new tmp/NAME. The file is locked while it is
 * written so a concurrent scan does not take it for debris. On failure
 * nothing is left behind.
 */
static bool
qfile_write(struct queue *q, struct qfile *f, enum spare_kind kind,
    const char *name, const char *p, size_t n, char *why, size_t whylen)
{
	bool spare = spare_take(q, kind, f);
	int e;

	if (!spare) {
		f->fd = openat(q->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (f->fd < 0) {
			dkim_whyf(why, whylen, "cannot create tmp/%s: %s", name,
			    strerror(errno));
			return false;
		}
		snprintf(f->tmp, sizeof(f->tmp), "%s", name);
		f->size = 0;
		(void)flock(f->fd, LOCK_EX | LOCK_NB);
	}
	if (!pwrite_all(f->fd, p, n) ||
	    (f->size > (off_t)n && ftruncate(f->fd, (off_t)n) != 0)) {
		e = errno;
		dkim_whyf(why, whylen, "cannot write tmp/%s: %s", f->tmp,
		    strerror(e));
		qfile_drop(q, f);
		return false;
	}
	return true;
}

/*
 * qfile_sync - make f's bytes durable, then close it.
 *
 * fdatasync, not fsync: each file here holds nothing but what
 * qfile_write wrote. For such a file fdatasync must write the data and
 * the metadata needed to read it back, its size and block map (POSIX
 * synchronized I/O data integrity; fdatasync(2) names the size). A new
 * file's inode changed size, so the filesystem writes it whole, or logs
 * it after the create it depends on, and its link count comes along; a
 * spare's inode was made durable by the commit that created it, and only
 * its timestamps changed since, unless its size or blocks did. What
 * fdatasync may leave behind are timestamps, which nothing reads after a
 * crash (queue_sweep_orphans ignores them). The name is the rename's and
 * the directory sync's business.
 *
 * Not O_TMPFILE and linkat, which would spare tmp/ its entry: there the
 * link count goes from 0 to 1 at linkat, after the data sync, and on a
 * filesystem without a journal (ext4 without one, as on the machine
 * the benchmark figures come from) nothing then writes that inode before
 * the directory sync says the name is durable.
 */
static bool
qfile_sync(struct queue *q, struct qfile *f, char *why, size_t whylen)
{
	int e;

	if (fdatasync(f->fd) != 0 || close(f->fd) != 0) {
		e = errno;
		f->fd = -1;	/* closed, or past hope: drop it either way */
		dkim_whyf(why, whylen, "cannot write tmp/%s: %s", f->tmp,
		    strerror(e));
		qfile_drop(q, f);
		return false;
	}
	f->fd = -1;
	return true;
}

/* qfile_install - rename the synced f to queue/FINAL; on failure it is
 * removed. */
static bool
qfile_install(struct queue *q, struct qfile *f, const char *final,
    char *why, size_t whylen)
{
	if (renameat(q->tmpfd, f->tmp, q->qfd, final) != 0) {
		dkim_whyf(why, whylen, "cannot rename tmp/%s to queue/%s: %s",
		    f->tmp, final, strerror(errno));
		qfile_drop(q, f);
		return false;
	}
	f->tmp[0] = '\0';
	return true;
}

/* read_at - the whole of DIR/NAME, a regular file of at most max bytes,
 * malloc'd and NUL-terminated; stp, unless NULL, receives its fstat. */
static char *
read_at(int dirfd, const char *name, size_t max, size_t *lenp,
    struct stat *stp, char *why, size_t whylen)
{
	struct stat st;
	char *buf;
	size_t got = 0, size;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK);
	if (fd < 0) {
		dkim_whyf(why, whylen, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		dkim_whyf(why, whylen, "not a regular file");
		return NULL;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		dkim_whyf(why, whylen, "larger than %zu bytes", max);
		return NULL;
	}
	size = (size_t)st.st_size;
	if ((buf = malloc(size + 1)) == NULL) {
		close(fd);
		dkim_whyf(why, whylen, "out of memory");
		return NULL;
	}
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			dkim_whyf(why, whylen, "%s", r < 0 ? strerror(errno) :
			    "file shrank while read");
			free(buf);
			close(fd);
			return NULL;
		}
		got += (size_t)r;
	}
	close(fd);
	buf[size] = '\0';
	*lenp = size;
	if (stp)
		*stp = st;
	return buf;
}

static int
open_dir_at(int at, const char *name, char *why, size_t whylen)
{
	int fd;

	if (mkdirat(at, name, 0700) != 0 && errno != EEXIST) {
		dkim_whyf(why, whylen, "cannot create %s: %s", name,
		    strerror(errno));
		return -1;
	}
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		dkim_whyf(why, whylen, "cannot open %s: %s", name, strerror(errno));
	return fd;
}

/* ------------------------------------------------------------ the queue */

struct queue *
queue_open(const char *spool, char *why, size_t whylen)
{
	struct queue *q;
	int sfd;

	if (spool == NULL || spool[0] == '\0') {
		dkim_whyf(why, whylen, "no spool directory given");
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->spool = strdup(spool)) == NULL) {
		free(q);
		dkim_whyf(why, whylen, "out of memory");
		return NULL;
	}
	q->tmpfd = q->qfd = q->cfd = -1;
	if (pthread_mutex_init(&q->ds.mu, NULL) != 0) {
		free(q->spool);
		free(q);
		dkim_whyf(why, whylen, "cannot create a mutex");
		return NULL;
	}
	if (pthread_cond_init(&q->ds.cv, NULL) != 0) {
		pthread_mutex_destroy(&q->ds.mu);
		free(q->spool);
		free(q);
		dkim_whyf(why, whylen, "cannot create a condition variable");
		return NULL;
	}
	q->ds_init = true;
	if ((sfd = open_dir_at(AT_FDCWD, spool, why, whylen)) < 0)
		goto fail;
	q->tmpfd = open_dir_at(sfd, "tmp", why, whylen);
	if (q->tmpfd >= 0)
		q->qfd = open_dir_at(sfd, "queue", why, whylen);
	if (q->qfd >= 0)
		q->cfd = open_dir_at(sfd, "corrupt", why, whylen);
	/* New directories must survive a crash as well as the files in them. */
	if (q->cfd >= 0 && fsync(sfd) != 0) {
		dkim_whyf(why, whylen, "cannot fsync %s: %s", spool, strerror(errno));
		close(q->cfd);
		q->cfd = -1;
	}
	close(sfd);
	if (q->cfd < 0)
		goto fail;
	return q;
fail:
	queue_close(q);
	return NULL;
}

void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	if (q->tmpfd >= 0) {
		spare_clear(q);
		close(q->tmpfd);
	}
	if (q->qfd >= 0)
		close(q->qfd);
	if (q->cfd >= 0)
		close(q->cfd);
	if (q->ds_init) {
		pthread_cond_destroy(&q->ds.cv);
		pthread_mutex_destroy(&q->ds.mu);
	}
	free(q->spool);
	free(q);
}

/*
 * queue_tmpfile - the fd holds a lock on the file for as long as it (or a
 * dup of it) stays open; queue_scan removes only files nobody holds.
 */
int
queue_tmpfile(struct queue *q, char *path, size_t pathlen)
{
	char id[QUEUE_ID_MAX], name[NAME_LEN];
	int fd, k;

	queue_new_id(id, NULL);
	snprintf(name, sizeof(name), "%s.data", id);
	k = snprintf(path, pathlen, "%s/tmp/%s", q->spool, name);
	if (k < 0 || (size_t)k >= pathlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = openat(q->tmpfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (fd < 0)
		return -1;
	(void)flock(fd, LOCK_EX | LOCK_NB);
	return fd;
}

/*
 * queue_commit - both files are written under tmp/ (or over spares), then
 * both synced; the message is renamed into queue/ and then the envelope,
 * and one fsync of queue/, shared with concurrent commits (dir_sync),
 * makes both names durable. Nothing is acknowledged before that fsync, so a crash can
 * only lose a commit that has not returned. A kill between the renames
 * leaves the message alone (swept up by queue_scan), never the envelope
 * alone; journalling filesystems (ext4, XFS) also commit renames in one
 * directory in the order they were made, so a power cut does the same.
 * tmp/ is never synced: losing a name there loses nothing. env->id keeps
 * the new id even on failure, so that the caller can log it.
 */
bool
queue_commit(struct queue *q, const char *data, size_t len,
    struct q_envelope *env, char *why, size_t whylen)
{
	char tmsg[NAME_LEN], tenv[NAME_LEN], fmsg[NAME_LEN], fenv[NAME_LEN];
	struct qfile m = QFILE_INIT, e = QFILE_INIT;
	uint64_t ticket;
	char *text;
	size_t tlen;
	uint32_t seq;
	bool ok = false;
	int err;

	queue_new_id(env->id, &seq);
	if ((text = env_format(env, &tlen, why, whylen)) == NULL)
		return false;
	snprintf(tmsg, sizeof(tmsg), "%s.%" PRIx32 ".msg", env->id, seq);
	snprintf(tenv, sizeof(tenv), "%s.%" PRIx32 ".env", env->id, seq);
	snprintf(fmsg, sizeof(fmsg), "%s.msg", env->id);
	snprintf(fenv, sizeof(fenv), "%s.env", env->id);

	if (!qfile_write(q, &m, SPARE_MSG, tmsg, data ? data : "",
	    data ? len : 0, why, whylen) ||
	    !qfile_write(q, &e, SPARE_ENV, tenv, text, tlen, why, whylen) ||
	    !qfile_sync(q, &m, why, whylen) || !qfile_sync(q, &e, why, whylen)) {
		qfile_drop(q, &m);
		qfile_drop(q, &e);
		goto out;
	}
	ticket = ds_ticket(q);
	if (!qfile_install(q, &m, fmsg, why, whylen)) {
		qfile_drop(q, &e);
		goto out;
	}
	if (!qfile_install(q, &e, fenv, why, whylen)) {
		unlinkat(q->qfd, fmsg, 0);
		goto out;
	}
	if ((err = dir_sync(q, ticket)) != 0) {
		dkim_whyf(why, whylen, "cannot fsync queue/: %s", strerror(err));
		ticket = ds_ticket(q);
		unlinkat(q->qfd, fenv, 0);
		unlinkat(q->qfd, fmsg, 0);
		(void)dir_sync(q, ticket);
		goto out;
	}
	ok = true;
out:
	free(text);
	return ok;
}

bool
queue_update(struct queue *q, const struct q_envelope *env, char *why,
    size_t whylen)
{
	char tenv[NAME_LEN], fenv[NAME_LEN];
	struct qfile f = QFILE_INIT;
	uint64_t ticket;
	struct stat st;
	char *text;
	size_t tlen;
	uint32_t seq;
	bool ok = false;
	int err;

	if ((text = env_format(env, &tlen, why, whylen)) == NULL)
		return false;
	seq = (uint32_t)atomic_fetch_add(&queue_seq, 1);
	snprintf(tenv, sizeof(tenv), "%s.%" PRIx32 ".env", env->id, seq);
	snprintf(fenv, sizeof(fenv), "%s.env", env->id);
	/* An update must not bring a removed message's envelope back. */
	if (fstatat(q->qfd, fenv, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		dkim_whyf(why, whylen, "%s is not queued: %s", env->id,
		    strerror(errno));
		goto out;
	}
	if (!qfile_write(q, &f, SPARE_ENV, tenv, text, tlen, why, whylen) ||
	    !qfile_sync(q, &f, why, whylen))
		goto out;
	ticket = ds_ticket(q);
	if (!qfile_install(q, &f, fenv, why, whylen))
		goto out;
	if ((err = dir_sync(q, ticket)) != 0) {
		dkim_whyf(why, whylen, "cannot fsync queue/: %s", strerror(err));
		goto out;
	}
	ok = true;
out:
	free(text);
	return ok;
}

/* queue_remove - the envelope goes first: a crash in between leaves a
 * lone message, which the scan sweeps up, never an envelope whose
 * message is gone. The directory is not fsynced: a removal lost to a
 * crash only means the message is delivered again, as one in flight at
 * the crash may be anyway (and a spare is not reused before its removal
 * is durable). False when the id was not queued or a step failed. */
bool
queue_remove(struct queue *q, const char *id)
{
	char fmsg[NAME_LEN], fenv[NAME_LEN];
	bool found = false;
	int e;

	if (!id_valid_str(id))
		return false;
	snprintf(fmsg, sizeof(fmsg), "%s.msg", id);
	snprintf(fenv, sizeof(fenv), "%s.env", id);
	if ((e = spare_keep(q, fenv)) == 0)
		found = true;
	else if (e != ENOENT)
		return false;
	if ((e = spare_keep(q, fmsg)) == 0)
		found = true;
	else if (e != ENOENT)
		return false;
	return found;
}

char *
queue_read(struct queue *q, const char *id, size_t *len)
{
	char fmsg[NAME_LEN];
	struct stat st, now;
	size_t n = 0;
	char *p;

	if (!id_valid_str(id))
		return NULL;
	snprintf(fmsg, sizeof(fmsg), "%s.msg", id);
	p = read_at(q->qfd, fmsg, SIZE_MAX - 1, &n, &st, NULL, 0);
	/* Still the file read? A removal racing the read could have made it
	 * a spare and another commit could have overwritten it; a file that
	 * still has its name was never a spare. */
	if (p && (fstatat(q->qfd, fmsg, &now, AT_SYMLINK_NOFOLLOW) != 0 ||
	    now.st_ino != st.st_ino || now.st_dev != st.st_dev)) {
		free(p);
		return NULL;
	}
	if (p && len)
		*len = n;
	return p;
}

/* ------------------------------------------------------------ the scan */

struct entry {
	char id[QUEUE_ID_MAX];
	bool env, msg;
};

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->id,
	    ((const struct entry *)b)->id);
}

/* list_dir - a fresh DIR for the directory at fd, with its own offset so
 * that scans on several threads do not share one. */
static DIR *
list_dir(int fd)
{
	int d = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir;

	if (d < 0)
		return NULL;
	if ((dir = fdopendir(d)) == NULL)
		close(d);
	return dir;
}

/* sweep_tmp - remove what no live writer holds: after a crash that is
 * everything, since the locks died with their process. */
static void
sweep_tmp(struct queue *q)
{
	struct dirent *de;
	DIR *dir;

	if ((dir = list_dir(q->tmpfd)) == NULL)
		return;
	while ((de = readdir(dir)) != NULL) {
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = openat(q->tmpfd, de->d_name, O_RDONLY | O_CLOEXEC |
		    O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0) {
			if (errno == ELOOP)	/* a symlink: never ours */
				unlinkat(q->tmpfd, de->d_name, 0);
			continue;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			unlinkat(q->tmpfd, de->d_name, 0);
		close(fd);
	}
	closedir(dir);
}

/* list_queue - the ids in queue/ with which of their files exist, sorted
 * (oldest first, given how ids are made). Other names are left alone. */
static struct entry *
list_queue(int qfd, size_t *np)
{
	struct entry *v = NULL, *nv;
	struct dirent *de;
	size_t n = 0, cap = 0, k = 0;
	DIR *dir;

	*np = 0;
	if ((dir = list_dir(qfd)) == NULL)
		return NULL;
	while ((de = readdir(dir)) != NULL) {
		size_t l = strlen(de->d_name);
		bool is_env;

		if (l < 5 || (strcmp(de->d_name + l - 4, ".env") != 0 &&
		    strcmp(de->d_name + l - 4, ".msg") != 0) ||
		    !id_valid(de->d_name, l - 4))
			continue;
		is_env = de->d_name[l - 3] == 'e';
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				break;
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		memcpy(v[n].id, de->d_name, l - 4);
		v[n].env = is_env;
		v[n].msg = !is_env;
		n++;
	}
	closedir(dir);
	if (n == 0) {
		free(v);
		return NULL;
	}
	qsort(v, n, sizeof(*v), entry_cmp);
	/* Fold an id's two names into one entry. */
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && strcmp(v[k - 1].id, v[i].id) == 0) {
			v[k - 1].env |= v[i].env;
			v[k - 1].msg |= v[i].msg;
		} else {
			v[k++] = v[i];
		}
	}
	*np = k;
	return v;
}

/* move_aside - queue/NAME to corrupt/NAME. True when it moved or was
 * already gone (*gone then says so). */
static bool
move_aside(struct queue *q, const char *name, bool *gone)
{
	*gone = false;
	if (renameat(q->qfd, name, q->cfd, name) == 0)
		return true;
	if (errno == ENOENT) {
		*gone = true;
		return true;
	}
	return false;
}

/*
 * reject - move ID.env (and ID.msg) to corrupt/ and report it. An
 * envelope that vanished meanwhile was removed by a live queue, not
 * corrupted, and is not reported.
 */
static void
reject(struct queue *q, const char *id, const char *why, queue_bad_fn bad,
    void *arg, bool *moved)
{
	char fenv[NAME_LEN], fmsg[NAME_LEN], msg[400];
	bool gone, gone_msg;
	int e = 0;

	snprintf(fenv, sizeof(fenv), "%s.env", id);
	snprintf(fmsg, sizeof(fmsg), "%s.msg", id);
	if (!move_aside(q, fenv, &gone))
		e = errno;
	if (gone)
		return;
	if (!move_aside(q, fmsg, &gone_msg) && e == 0)
		e = errno;
	*moved = true;
	if (e != 0) {
		snprintf(msg, sizeof(msg), "%s (not moved aside: %s)", why,
		    strerror(e));
		why = msg;
	}
	if (bad)
		bad(arg, fenv, why);
}

/* What entry_load found of one id in queue/. */
enum entry_rc {
	ENTRY_OK,		/* a valid envelope beside its message */
	ENTRY_GONE,		/* removed meanwhile, or a commit in flight */
	ENTRY_BAD,		/* corrupt or unreadable: why says how */
};

/*
 * entry_load - read and check the envelope of a listed id: *envp gets it
 * (the caller's) and *msgst the fstatat of its message when ENTRY_OK.
 * Reads only. A verdict of corrupt holds only while the name still
 * points at the file read: beside a live queue the envelope may have
 * been removed (a removal takes it first, and its file may become a spare
 * that a later commit overwrites while it is read) or replaced by an
 * update, in which case the name is gone (ENTRY_GONE) or read again.
 */
static enum entry_rc
entry_load(int qfd, const char *id, struct q_envelope **envp,
    struct stat *msgst, char *why, size_t whylen)
{
	char name[NAME_LEN], mname[NAME_LEN];
	struct q_envelope *env = NULL;
	struct stat st, now;
	size_t len;
	char *text;
	bool have_text;

	*envp = NULL;
	snprintf(name, sizeof(name), "%s.env", id);
	snprintf(mname, sizeof(mname), "%s.msg", id);
	for (int tries = 0; tries < 3; tries++) {
		memset(&st, 0, sizeof(st));
		text = read_at(qfd, name, ENV_MAX_FILE, &len, &st, why, whylen);
		have_text = text != NULL;
		if (have_text) {
			env = env_parse(text, len, why, whylen);
			free(text);
		}
		if (env != NULL && strcmp(env->id, id) != 0) {
			q_envelope_free(env);
			env = NULL;
			dkim_whyf(why, whylen, "id record does not match the file "
			    "name");
		}
		/* The message is looked up now, not taken from the listing:
		 * a commit during the listing may show its envelope only. */
		if (env != NULL && (fstatat(qfd, mname, msgst,
		    AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(msgst->st_mode))) {
			q_envelope_free(env);
			env = NULL;
			dkim_whyf(why, whylen, "message file missing");
		}
		if (env != NULL) {
			*envp = env;
			return ENTRY_OK;
		}
		if (fstatat(qfd, name, &now, AT_SYMLINK_NOFOLLOW) != 0)
			return ENTRY_GONE;
		if (!have_text || (now.st_ino == st.st_ino &&
		    now.st_dev == st.st_dev))
			return ENTRY_BAD;
	}
	return ENTRY_BAD;
}

/*
 * stale_orphan - ID.msg is alone and older than a commit in flight can
 * be: debris of a commit or a removal cut short.
 */
static bool
stale_orphan(int qfd, const char *id, time_t now)
{
	char name[NAME_LEN];
	struct stat st;

	snprintf(name, sizeof(name), "%s.msg", id);
	if (fstatat(qfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    now - st.st_mtime < ORPHAN_AGE)
		return false;
	snprintf(name, sizeof(name), "%s.env", id);
	return fstatat(qfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0;
}

size_t
queue_scan(struct queue *q, queue_scan_fn fn, queue_bad_fn bad, void *arg)
{
	struct entry *v;
	size_t n, loaded = 0;
	bool moved = false;
	time_t now = time(NULL);

	sweep_tmp(q);
	v = list_queue(q->qfd, &n);
	for (size_t i = 0; i < n; i++) {
		char name[NAME_LEN], why[256];
		struct q_envelope *env;
		struct stat st;

		if (!v[i].env) {
			/* A commit cut short, or one still in flight: only the
			 * old ones are debris. */
			if (!stale_orphan(q->qfd, v[i].id, now))
				continue;
			snprintf(name, sizeof(name), "%s.msg", v[i].id);
			if (renameat(q->qfd, name, q->cfd, name) == 0) {
				moved = true;
				if (bad)
					bad(arg, name, "message without "
					    "envelope");
			} else if (errno != ENOENT && bad) {
				snprintf(why, sizeof(why), "message without "
				    "envelope (not moved aside: %s)",
				    strerror(errno));
				bad(arg, name, why);
			}
			continue;
		}
		switch (entry_load(q->qfd, v[i].id, &env, &st, why,
		    sizeof(why))) {
		case ENTRY_GONE:
			continue;
		case ENTRY_BAD:
			reject(q, v[i].id, why, bad, arg, &moved);
			continue;
		case ENTRY_OK:
			break;
		}
		loaded++;
		if (fn)
			fn(arg, env);
		else
			q_envelope_free(env);
	}
	free(v);
	if (moved) {
		(void)fsync(q->cfd);
		(void)dir_sync(q, 1);
	}
	return loaded;
}

/*
 * queue_list - the listing, the loader and the orphan test of queue_scan,
 * with every write left out: nothing is swept, moved or created, not even
 * the directories, so that it may run beside a live daemon, as another
 * user, on a spool it can only read.
 */
bool
queue_list(const char *spool, queue_list_fn fn, void *arg, char *why,
    size_t whylen)
{
	struct entry *v;
	size_t n;
	time_t now = time(NULL);
	int sfd, qfd;

	if (spool == NULL || spool[0] == '\0') {
		dkim_whyf(why, whylen, "no spool directory given");
		return false;
	}
	if ((sfd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		dkim_whyf(why, whylen, "cannot open %s: %s", spool, strerror(errno));
		return false;
	}
	qfd = openat(sfd, "queue", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(sfd);
	if (qfd < 0) {
		dkim_whyf(why, whylen, "cannot open %s/queue: %s", spool,
		    strerror(errno));
		return false;
	}
	v = list_queue(qfd, &n);
	for (size_t i = 0; i < n; i++) {
		char name[NAME_LEN], reason[256];
		struct q_listing e;
		struct q_envelope *env;
		struct stat st;

		memset(&e, 0, sizeof(e));
		e.id = v[i].id;
		e.name = name;
		if (!v[i].env) {
			if (!stale_orphan(qfd, v[i].id, now))
				continue;
			snprintf(name, sizeof(name), "%s.msg", v[i].id);
			e.why = "message without envelope";
			fn(arg, &e);
			continue;
		}
		snprintf(name, sizeof(name), "%s.env", v[i].id);
		switch (entry_load(qfd, v[i].id, &env, &st, reason,
		    sizeof(reason))) {
		case ENTRY_GONE:
			continue;
		case ENTRY_BAD:
			e.why = reason;
			fn(arg, &e);
			continue;
		case ENTRY_OK:
			break;
		}
		e.env = env;
		e.size = (uint64_t)st.st_size;
		fn(arg, &e);
		q_envelope_free(env);
	}
	free(v);
	close(qfd);
	return true;
}

size_t
queue_sweep_orphans(struct queue *q)
{
	struct entry *v;
	size_t n, removed = 0;

	v = list_queue(q->qfd, &n);
	for (size_t i = 0; i < n; i++) {
		char name[NAME_LEN];

		if (v[i].env)
			continue;
		/* A commit cut short (never acknowledged) or a removal cut
		 * short (already delivered): either way nothing to keep. */
		snprintf(name, sizeof(name), "%s.msg", v[i].id);
		if (unlinkat(q->qfd, name, 0) == 0)
			removed++;
	}
	free(v);
	if (removed)
		(void)dir_sync(q, 1);
	return removed;
}
