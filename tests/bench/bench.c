/*
 * bench.c - the DKIM benchmark, run on demand (not a test):
 *
 *   build/tests/bench/dkim_bench [SECONDS]
 *
 * For a 10 KB message it measures sign/s and verify/s with RSA-2048 and
 * Ed25519, and body canonicalization + SHA-256 throughput, then prints
 * each beside the raw OpenSSL rate of the same primitive measured in this
 * run: in-process with the same EVP calls, and `openssl speed` itself.
 * The machines are noisy; only figures from the same run compare.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "arc.h"
#include "dkim.h"

static double secs = 1.0;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A 10 KB message of ordinary text: words, paragraphs, some folding. */
static char *
make_message(size_t target, size_t *len)
{
	static const char *words[] = { "forwarded", "mail", "breaks",
	    "DMARC", "a", "list", "adds", "footer", "and", "the", "author's",
	    "signature", "fails;", "relay", "seals", "it." };
	struct dkim_buf b;
	unsigned seed = 7;
	size_t col = 0;

	dkim_buf_init(&b, 0);
	dkim_buf_adds(&b,
	    "Received: from mail.example.org (mail.example.org [192.0.2.1])\r\n"
	    "\tby mx.example.net with ESMTPS id 4ABCD; Tue, 1 Dec 2026 "
	    "10:00:00 +0000\r\n"
	    "From: Alice Example <alice@example.org>\r\n"
	    "To: list@lists.example.net\r\n"
	    "Subject: A benchmark message of about ten kilobytes\r\n"
	    "Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n"
	    "Message-ID: <bench.1@example.org>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	while (b.len < target) {
		const char *w = words[(seed = seed * 1103515245 + 12345) >> 16 &
		    15];

		if (col + strlen(w) > 72) {
			dkim_buf_adds(&b, (seed >> 8) % 7 == 0 ? "\r\n\r\n" :
			    "\r\n");
			col = 0;
		} else if (col) {
			dkim_buf_addc(&b, ' ');
			col++;
		}
		dkim_buf_adds(&b, w);
		col += strlen(w);
	}
	dkim_buf_adds(&b, "\r\n");
	return dkim_buf_take(&b, len);
}

struct keyrec {
	const char *qname;
	char *record;
};

static enum dkim_lookup_rc
lookup(void *arg, const char *qname, struct dkim_txt *out)
{
	struct keyrec *k = arg;

	for (; k->qname; k++)
		if (strcmp(k->qname, qname) == 0) {
			dkim_txt_add_record(out);
			dkim_txt_add_string(out, k->record, strlen(k->record));
			return DKIM_LOOKUP_OK;
		}
	return DKIM_LOOKUP_NOTFOUND;
}

static char *
record_for(EVP_PKEY *k)
{
	unsigned char raw[32], *der = NULL;
	size_t rl = sizeof(raw);
	char *b64, *rec;
	int n;
	bool ed = EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519;

	if (ed) {
		EVP_PKEY_get_raw_public_key(k, raw, &rl);
		b64 = dkim_b64_encode(raw, rl);
	} else {
		n = i2d_PUBKEY(k, &der);
		b64 = dkim_b64_encode(der, (size_t)n);
		OPENSSL_free(der);
	}
	rec = malloc(strlen(b64) + 40);
	sprintf(rec, "v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa", b64);
	free(b64);
	return rec;
}

/* Run fn until secs have passed; return operations per second. */
/*
 * Each comparison's figures take turns: ROUNDS slices each, alternating,
 * so that a burst of load from a neighbour on the machine falls on our
 * figure and its baseline alike. A meter adds up the operations and the
 * time of its slices.
 */
#define ROUNDS 12

struct meter {
	long ops;
	double t;
};

#define SLICE(m, body) do { \
	double t0_ = now_s(), t_; long ops_ = 0; \
	do { for (int r_ = 0; r_ < 4; r_++) { body; } ops_ += 4; \
	    t_ = now_s(); } while (t_ - t0_ < secs / ROUNDS); \
	(m).ops += ops_; (m).t += t_ - t0_; } while (0)

#define INTERLEAVED for (int round_ = 0; round_ < ROUNDS; round_++)

static double
per_s(struct meter m)
{
	return m.t > 0 ? (double)m.ops / m.t : 0;
}

/*
 * dkim_hashing - the hashing no DKIM implementation can skip: one SHA-256
 * over the body (the body hash) and one over the header block (the header
 * hash covers the signed fields, at most all of them), each a separate
 * digest, with the algorithm fetched once.
 */
static void
dkim_hashing(const char *text, size_t len)
{
	const char *end = strstr(text, "\r\n\r\n");
	size_t hlen = end ? (size_t)(end - text) + 2 : len;
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dglen;
	const EVP_MD *md = dkim_alg_md(DKIM_ALG_RSA_SHA256);

	EVP_Digest(text, hlen, dg, &dglen, md, NULL);
	EVP_Digest(text + hlen, len - hlen, dg, &dglen, md, NULL);
}

/*
 * report - one figure beside its raw rate and its floor (the raw rate plus
 * DKIM's hashing), and what the floor allows: the target is 90% of the
 * raw rate, which no implementation reaches where the floor is below it.
 */
static void
report(const char *label, const char *what, double rate, double raw,
    double floor)
{
	double share = 100 * rate / raw, cap = 100 * floor / raw;
	char verdict[64];

	if (share >= 90)
		snprintf(verdict, sizeof(verdict), "within 10%% of raw");
	else
		snprintf(verdict, sizeof(verdict), "%s: the floor is %.0f%% "
		    "of raw", cap < 90 ? "unreachable" : "below target", cap);
	printf("%-8s %s %7.0f/s  raw EVP %7.0f/s (%5.1f%%)  raw+sha256 "
	    "%7.0f/s (%5.1f%%)  [%s]\n", label, what, rate, raw, share,
	    floor, 100 * rate / floor, verdict);
}

static void
bench_key(const char *label, EVP_PKEY *key, enum dkim_alg alg,
    const char *msgtext, size_t msglen)
{
	struct dkim_sign_opts so;
	struct dkim_verify_opts vo;
	struct dkim_msg *m, *sm;
	struct dkim_buf field, signed_msg;
	struct keyrec keys[2] = { { "s._domainkey.example.org", NULL },
	    { NULL, NULL } };
	unsigned char dg[32] = { 1, 2, 3 }, *sig;
	size_t siglen;
	double sign_rate, verify_rate, raw_sign, raw_verify, sha_s, sha_v;
	double floor_sign, floor_verify;
	struct meter m_sign = { 0 }, m_verify = { 0 }, m_raw_sign = { 0 },
	    m_raw_verify = { 0 }, m_sha_s = { 0 }, m_sha_v = { 0 };
	char why[DKIM_WHY_MAX];

	keys[0].record = record_for(key);
	dkim_msg_parse(msgtext, msglen, NULL, &m, NULL, 0);
	dkim_sign_opts_init(&so);
	so.alg = alg;
	so.domain = "example.org";
	so.selector = "s";
	so.now = 1796000000;
	so.key = key;
	dkim_buf_init(&field, 0);

	dkim_buf_init(&signed_msg, 0);
	dkim_digest_sign(key, alg, dg, 32, &sig, &siglen);
	INTERLEAVED {
		SLICE(m_sign, {
			struct dkim_msg *mm;

			dkim_buf_reset(&field);
			dkim_msg_parse(msgtext, msglen, NULL, &mm, NULL, 0);
			if (dkim_sign(mm, &so, &field, why, sizeof(why)) !=
			    DKIM_OK) {
				fprintf(stderr, "sign failed: %s\n", why);
				exit(1);
			}
			dkim_msg_free(mm);
		});
		/* The raw primitive: one signature over a 32-byte digest,
		 * through the thread's prepared context, as `openssl speed`
		 * measures it. */
		SLICE(m_raw_sign, {
			unsigned char *s2;
			size_t l2;

			dkim_digest_sign(key, alg, dg, 32, &s2, &l2);
			free(s2);
		});
		/* The floor adds the two SHA-256 passes over the message
		 * that no implementation can avoid. */
		SLICE(m_sha_s, dkim_hashing(msgtext, msglen));
	}

	dkim_buf_add(&signed_msg, field.p, field.len);
	dkim_buf_add(&signed_msg, msgtext, msglen);
	dkim_msg_parse(signed_msg.p, signed_msg.len, NULL, &sm, NULL, 0);
	dkim_verify_opts_init(&vo);
	vo.now = 1796000100;
	vo.lookup = lookup;
	vo.lookup_arg = keys;
	vo.keycache = dkim_keycache_new(16);
	INTERLEAVED {
		SLICE(m_verify, {
			struct dkim_msg *mm;
			struct dkim_verification *v;

			dkim_msg_parse(signed_msg.p, signed_msg.len, NULL,
			    &mm, NULL, 0);
			dkim_verify(mm, &vo, &v);
			if (v->n != 1 || v->r[0].result != DKIM_RES_PASS) {
				fprintf(stderr, "verify failed: %s\n",
				    v->r[0].reason);
				exit(1);
			}
			dkim_verification_free(v);
			dkim_msg_free(mm);
		});
		SLICE(m_raw_verify, {
			if (!dkim_digest_verify(key, alg, dg, 32, sig, siglen))
				exit(1);
		});
		SLICE(m_sha_v, dkim_hashing(signed_msg.p, signed_msg.len));
	}
	sign_rate = per_s(m_sign);
	verify_rate = per_s(m_verify);
	raw_sign = per_s(m_raw_sign);
	raw_verify = per_s(m_raw_verify);
	sha_s = per_s(m_sha_s);
	sha_v = per_s(m_sha_v);
	floor_sign = 1 / (1 / raw_sign + 1 / sha_s);
	floor_verify = 1 / (1 / raw_verify + 1 / sha_v);
	report(label, "sign  ", sign_rate, raw_sign, floor_sign);
	report(label, "verify", verify_rate, raw_verify, floor_verify);
	free(sig);
	free(keys[0].record);
	dkim_keycache_free(vo.keycache);
	dkim_buf_free(&field);
	dkim_buf_free(&signed_msg);
	dkim_msg_free(m);
	dkim_msg_free(sm);
}

static void
null_sink(void *arg, const void *p, size_t n)
{
	EVP_DigestUpdate((EVP_MD_CTX *)arg, p, n);
}

static void
bench_body(void)
{
	size_t len, blen;
	char *text = make_message(1 << 20, &len);
	const char *body = strstr(text, "\r\n\r\n") + 4;
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dglen;
	double raw, rel, sim, chunk;
	struct meter m_raw = { 0 }, m_rel = { 0 }, m_sim = { 0 },
	    m_chunk = { 0 };

	blen = len - (size_t)(body - text);
	INTERLEAVED {
		SLICE(m_raw, EVP_Digest(body, blen, dg, &dglen, EVP_sha256(),
		    NULL));
		SLICE(m_rel, dkim_body_hash(DKIM_CANON_RELAXED, EVP_sha256(),
		    body, blen, -1, dg, &dglen, NULL));
		SLICE(m_sim, dkim_body_hash(DKIM_CANON_SIMPLE, EVP_sha256(),
		    body, blen, -1, dg, &dglen, NULL));
		/* Streaming in 1500-byte pieces, as SMTP DATA arrives. */
		SLICE(m_chunk, {
			EVP_MD_CTX *c = EVP_MD_CTX_new();
			struct dkim_bodycanon *bc;
			size_t off;

			EVP_DigestInit_ex(c, EVP_sha256(), NULL);
			bc = dkim_bodycanon_new(DKIM_CANON_RELAXED, -1,
			    null_sink, c);
			for (off = 0; off < blen; off += 1500)
				dkim_bodycanon_feed(bc, body + off,
				    blen - off < 1500 ? blen - off : 1500);
			dkim_bodycanon_finish(bc);
			EVP_DigestFinal_ex(c, dg, &dglen);
			dkim_bodycanon_free(bc);
			EVP_MD_CTX_free(c);
		});
	}
	raw = per_s(m_raw) * (double)blen / 1e6;
	rel = per_s(m_rel) * (double)blen / 1e6;
	sim = per_s(m_sim) * (double)blen / 1e6;
	chunk = per_s(m_chunk) * (double)blen / 1e6;
	printf("body relaxed+sha256 %8.0f MB/s   raw sha256 %8.0f MB/s   "
	    "%5.1f%%\n", rel, raw, 100 * rel / raw);
	printf("body simple+sha256  %8.0f MB/s   raw sha256 %8.0f MB/s   "
	    "%5.1f%%\n", sim, raw, 100 * sim / raw);
	printf("body relaxed, 1500-byte chunks %8.0f MB/s   %5.1f%% of raw\n",
	    chunk, 100 * chunk / raw);
	free(text);
}

/* add_set - seal text once more; returns the new message. */
static char *
add_set(const char *text, size_t len, EVP_PKEY *key, struct keyrec *keys,
    size_t *outlen)
{
	struct dkim_msg *m;
	struct dkim_verify_opts vo;
	struct arc_seal_opts so;
	struct arc_result chain;
	struct dkim_buf out;
	char why[DKIM_WHY_MAX];

	dkim_msg_parse(text, len, NULL, &m, NULL, 0);
	dkim_verify_opts_init(&vo);
	vo.lookup = lookup;
	vo.lookup_arg = keys;
	arc_validate(m, &vo, 0, &chain);
	arc_seal_opts_init(&so);
	so.domain = "example.org";
	so.selector = "s";
	so.authserv_id = "relay.example.net";
	so.results = "dkim=pass header.d=example.org; arc=pass";
	so.key = key;
	so.now = 1796000000;
	dkim_buf_init(&out, 0);
	if (arc_seal(m, &chain, &so, &out, why, sizeof(why)) != DKIM_OK) {
		fprintf(stderr, "seal failed: %s\n", why);
		exit(1);
	}
	dkim_buf_add(&out, text, len);
	dkim_msg_free(m);
	return dkim_buf_take(&out, outlen);
}

static void
bench_arc(EVP_PKEY *key, const char *msgtext, size_t msglen)
{
	struct keyrec keys[2] = { { "s._domainkey.example.org", NULL },
	    { NULL, NULL } };
	unsigned char dg[32] = { 9 }, *sig;
	size_t siglen, len = msglen;
	double raw_sign, raw_verify, seal_rate, val_rate;
	char *text = strdup(msgtext);
	unsigned prior, have = 0;

	keys[0].record = record_for(key);
	dkim_digest_sign(key, DKIM_ALG_RSA_SHA256, dg, 32, &sig, &siglen);
	printf("\nARC, rsa-2048, each row beside the raw signs and verifies "
	    "it costs:\n");
	for (prior = 0; prior <= 3; prior++) {
		struct dkim_verify_opts vo;
		struct arc_seal_opts so;
		struct arc_result chain;
		struct meter m_val = { 0 }, m_seal = { 0 }, m_rs = { 0 },
		    m_rv = { 0 };
		unsigned nverify;

		if (prior == 2)
			continue;
		while (have < prior) {
			char *next = add_set(text, len, key, keys, &len);

			free(text);
			text = next;
			have++;
		}
		dkim_verify_opts_init(&vo);
		vo.lookup = lookup;
		vo.lookup_arg = keys;
		vo.keycache = dkim_keycache_new(16);
		arc_seal_opts_init(&so);
		so.domain = "example.org";
		so.selector = "s";
		so.authserv_id = "relay.example.net";
		so.results = "dkim=pass header.d=example.org; arc=pass";
		so.key = key;
		so.now = 1796000000;
		INTERLEAVED {
			SLICE(m_val, {
				struct dkim_msg *m;

				dkim_msg_parse(text, len, NULL, &m, NULL, 0);
				arc_validate(m, &vo, 0, &chain);
				if (chain.cv != (prior ? DKIM_CV_PASS :
				    DKIM_CV_NONE)) {
					fprintf(stderr, "chain: %s\n",
					    chain.reason);
					exit(1);
				}
				dkim_msg_free(m);
			});
			SLICE(m_seal, {
				struct dkim_msg *m;
				struct dkim_buf out;
				char why[DKIM_WHY_MAX];

				dkim_buf_init(&out, 0);
				dkim_msg_parse(text, len, NULL, &m, NULL, 0);
				arc_seal(m, &chain, &so, &out, why,
				    sizeof(why));
				dkim_buf_free(&out);
				dkim_msg_free(m);
			});
			SLICE(m_rs, {
				unsigned char *s2;
				size_t l2;

				dkim_digest_sign(key, DKIM_ALG_RSA_SHA256, dg,
				    32, &s2, &l2);
				free(s2);
			});
			SLICE(m_rv, dkim_digest_verify(key,
			    DKIM_ALG_RSA_SHA256, dg, 32, sig, siglen));
		}
		val_rate = per_s(m_val);
		seal_rate = per_s(m_seal);
		raw_sign = per_s(m_rs);
		raw_verify = per_s(m_rv);
		/* Validation verifies every AMS (oldest-pass) and every AS. */
		nverify = 2 * prior;
		printf("  %u prior sets: seal %7.0f/s (2 raw signs: %7.0f/s, "
		    "%5.1f%%)   validate %7.0f/s", prior, seal_rate,
		    raw_sign / 2, 100 * seal_rate / (raw_sign / 2), val_rate);
		if (nverify)
			printf(" (%u raw verifies: %7.0f/s, %5.1f%%)", nverify,
			    raw_verify / nverify,
			    100 * val_rate / (raw_verify / nverify));
		printf("\n");
		dkim_keycache_free(vo.keycache);
	}
	free(sig);
	free(text);
	free(keys[0].record);
}

int
main(int argc, char **argv)
{
	size_t msglen;
	char *msg;
	EVP_PKEY *rsa, *ed;
	char cmd[128];

	if (argc > 1)
		secs = atof(argv[1]) > 0 ? atof(argv[1]) : 1.0;
	msg = make_message(10 * 1024, &msglen);
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	printf("arcrelay DKIM benchmark: %zu-byte message, %.1f s per "
	    "figure\n\n", msglen, secs);
	bench_key("rsa-2048", rsa, DKIM_ALG_RSA_SHA256, msg, msglen);
	bench_key("ed25519", ed, DKIM_ALG_ED25519_SHA256, msg, msglen);
	bench_body();
	bench_arc(rsa, msg, msglen);
	printf("\n`openssl speed`, same machine, same run:\n");
	fflush(stdout);
	snprintf(cmd, sizeof(cmd), "openssl speed -seconds %d rsa2048 "
	    "ed25519 sha256 2>/dev/null | grep -E '^(rsa|sha256| *253|type)'",
	    secs < 1 ? 1 : (int)secs);
	if (system(cmd) != 0)
		printf("(openssl speed did not run)\n");
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	free(msg);
	return 0;
}
