/*
 * test_sign.c - dkim_sign output: the folded field's shape (≤ 78 columns,
 * CRLF + one SP breaks, b= last), the tags it carries for each option,
 * the default h= list with From oversigned, what it refuses to sign, and
 * a sign → verify round trip over every canonicalization pair and both
 * algorithms.
 */
#include <criterion/criterion.h>

#include <openssl/x509.h>

#include "keys.h"

#define T0 1700000000

static const char base_msg[] =
    "From: Alice <alice@example.com>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: lunch\r\n"
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "Message-ID: <1@example.com>\r\n"
    "\r\n"
    "Shall we?\r\n";

static void
opts(struct dkim_sign_opts *o, enum dkim_alg alg, EVP_PKEY *key)
{
	dkim_sign_opts_init(o);
	o->alg = alg;
	o->hcanon = DKIM_CANON_RELAXED;
	o->bcanon = DKIM_CANON_RELAXED;
	o->domain = "example.com";
	o->selector = alg == DKIM_ALG_ED25519_SHA256 ? "ed" : "rsa";
	o->identity = NULL;
	o->headers = NULL;
	o->nheaders = 0;
	o->now = T0;
	o->expire = 0;
	o->body_length = false;
	o->key = key;
}

static EVP_PKEY *
key_for(enum dkim_alg alg)
{
	EVP_PKEY *k = alg == DKIM_ALG_ED25519_SHA256 ? load_ed_key() :
	    load_rsa_key();

	cr_assert(k != NULL, "test setup: key does not load");
	return k;
}

/* A signed field, the message it signs, and its parsed tags. */
struct signed_field {
	struct dkim_msg *m;
	struct dkim_buf field;
	enum dkim_status st;
	char why[DKIM_WHY_MAX];
	struct dkim_taglist tags;
	bool tags_ok;
};

static void
sign_into(const char *text, const struct dkim_sign_opts *o,
    struct signed_field *sf)
{
	memset(sf, 0, sizeof(*sf));
	cr_assert(dkim_msg_parse(text, strlen(text), NULL, &sf->m, NULL, 0) ==
	    DKIM_OK, "test setup: message does not parse");
	dkim_buf_init(&sf->field, 0);
	sf->st = dkim_sign(sf->m, o, &sf->field, sf->why, sizeof(sf->why));
	if (sf->st == DKIM_OK && sf->field.len > 16 &&
	    strncmp(sf->field.p, "DKIM-Signature:", 15) == 0) {
		const char *v = sf->field.p + 15;
		size_t n = sf->field.len - 15;

		if (n >= 2 && memcmp(v + n - 2, "\r\n", 2) == 0)
			n -= 2;
		sf->tags_ok = dkim_tags_parse(v, n, &sf->tags, NULL, 0) ==
		    DKIM_OK;
	}
}

static void
signed_free(struct signed_field *sf)
{
	dkim_buf_free(&sf->field);
	dkim_msg_free(sf->m);
}

/* tag - a tag's value with FWS removed, in a static buffer; NULL if absent. */
static const char *
tag(const struct signed_field *sf, const char *name)
{
	static char buf[4][2048];
	static unsigned next;
	const struct dkim_tag *t = dkim_tags_get(&sf->tags, name);
	char *o = buf[next++ % 4];
	size_t j = 0;

	if (t == NULL)
		return NULL;
	for (size_t i = 0; i < t->value_len && j + 1 < sizeof(buf[0]); i++)
		if (!strchr(" \t\r\n", t->value[i]))
			o[j++] = t->value[i];
	o[j] = '\0';
	return o;
}

/* count_names - how many times name appears in a colon-separated list. */
static size_t
count_names(const char *list, const char *name)
{
	size_t n = 0, len = strlen(name);
	const char *p = list;

	while (p != NULL && *p != '\0') {
		const char *e = strchr(p, ':');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == len && strncasecmp(p, name, len) == 0)
			n++;
		p = e ? e + 1 : NULL;
	}
	return n;
}

/* ------------------------------------------------------------- folding */

static void
check_folding(const char *desc, const char *f, size_t n)
{
	size_t line = 0, col = 0;

	cr_expect(n > 17 && strncmp(f, "DKIM-Signature: ", 16) == 0,
	    "%s: field starts \"%s\", want \"DKIM-Signature: \"", desc,
	    esc(f, n < 20 ? n : 20));
	cr_expect(n >= 2 && memcmp(f + n - 2, "\r\n", 2) == 0,
	    "%s: field must end in CRLF: \"%s\"", desc, esc(f, n));
	for (size_t i = 0; i < n; i++) {
		if (f[i] == '\r' && i + 1 < n && f[i + 1] == '\n') {
			cr_expect(col <= 78, "%s: line %zu has %zu columns, want "
			    "at most 78", desc, line, col);
			if (i + 2 < n)
				cr_expect(f[i + 2] == ' ' && i + 3 < n &&
				    f[i + 3] != ' ' && f[i + 3] != '\t' &&
				    f[i + 3] != '\r', "%s: break after line "
				    "%zu got \"%s\", want CRLF + one SP + text",
				    desc, line, esc(f + i, n - i < 6 ?
				    n - i : 6));
			i++;
			line++;
			col = 0;
			continue;
		}
		cr_expect(f[i] != '\r' && f[i] != '\n', "%s: bare CR or LF at "
		    "%zu", desc, i);
		col++;
	}
}

static EVP_PKEY *
rsa_keygen(unsigned bits)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;

	cr_assert(ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1);
	cr_assert(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) == 1);
	cr_assert(EVP_PKEY_keygen(ctx, &k) == 1, "RSA-%u keygen failed", bits);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

Test(sign, folded_at_78_columns, .timeout = 120)
{
	static const char *const many[] = {
		"from", "to", "cc", "subject", "date", "message-id",
		"in-reply-to", "references", "mime-version", "content-type",
		"content-transfer-encoding", "list-id", "list-unsubscribe",
		"list-unsubscribe-post", "reply-to", "sender",
		("x-a-rather-long-header-name-that-will-not-fit-on-a-line-"
		"with-anything-else"),
		"resent-from", "resent-to", "resent-date",
	};
	EVP_PKEY *rsa = key_for(DKIM_ALG_RSA_SHA256);
	EVP_PKEY *ed = key_for(DKIM_ALG_ED25519_SHA256);
	EVP_PKEY *big = rsa_keygen(4096);
	static const struct {
		const char *desc;
		int key;	/* 0 rsa-1024, 1 ed25519, 2 rsa-4096 */
		bool many, longnames, all_tags;
	} rows[] = {
		{ "rsa-1024 defaults", 0, false, false, false },
		{ "ed25519 defaults", 1, false, false, false },
		{ "rsa-4096 defaults", 2, false, false, false },
		{ "rsa-4096 many headers, long names, all tags", 2, true, true,
		    true },
		{ "ed25519 many headers, long names", 1, true, true, true },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct dkim_sign_opts o;
		struct signed_field sf;
		enum dkim_alg alg = rows[i].key == 1 ?
		    DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256;

		opts(&o, alg, rows[i].key == 0 ? rsa : rows[i].key == 1 ? ed :
		    big);
		if (rows[i].many) {
			o.headers = many;
			o.nheaders = NELEM(many);
		}
		if (rows[i].longnames) {
			o.domain = "a-quite-long-subdomain.of-an-organisation."
			    "example.com";
			o.selector = "selector-2023-november-rotation-b";
		}
		if (rows[i].all_tags) {
			o.identity = "some.user+tag@a-quite-long-subdomain.of-an-"
			    "organisation.example.com";
			o.expire = 86400 * 7;
			o.body_length = true;
		}
		sign_into(base_msg, &o, &sf);
		cr_expect(sf.st == DKIM_OK, "%s: status got %d (%s)",
		    rows[i].desc, sf.st, sf.why);
		if (sf.st == DKIM_OK)
			check_folding(rows[i].desc, sf.field.p, sf.field.len);
		signed_free(&sf);
	}
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(big);
}

/* ----------------------------------------------------------------- tags */

Test(sign, tags_for_each_option)
{
	static const struct {
		const char *desc;
		enum dkim_alg alg;
		enum dkim_canon hc, bc;
		int64_t now, expire;
		bool body_length;
		const char *identity;
		/* want */
		const char *c, *t, *x, *l, *i;
	} rows[] = {
		{ "relaxed/relaxed, t= only", DKIM_ALG_RSA_SHA256,
		    DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, T0, 0, false, NULL,
		    "relaxed/relaxed", "1700000000", NULL, NULL, NULL },
		{ "simple/simple", DKIM_ALG_ED25519_SHA256, DKIM_CANON_SIMPLE,
		    DKIM_CANON_SIMPLE, T0, 0, false, NULL,
		    "simple/simple", "1700000000", NULL, NULL, NULL },
		{ "relaxed/simple with x=", DKIM_ALG_RSA_SHA256,
		    DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE, T0, 3600, false,
		    NULL, "relaxed/simple", "1700000000", "1700003600", NULL,
		    NULL },
		{ "simple/relaxed with l= and i=", DKIM_ALG_ED25519_SHA256,
		    DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED, T0, 0, true,
		    "alice@example.com", "simple/relaxed", "1700000000", NULL,
		    "11", "alice@example.com" },
		{ "l= with simple body", DKIM_ALG_RSA_SHA256,
		    DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE, T0, 0, true, NULL,
		    "relaxed/simple", "1700000000", NULL, "11", NULL },
		{ "no t= when now < 0", DKIM_ALG_RSA_SHA256,
		    DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, -1, 0, false, NULL,
		    "relaxed/relaxed", NULL, NULL, NULL, NULL },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		EVP_PKEY *key = key_for(rows[i].alg);
		struct dkim_sign_opts o;
		struct signed_field sf;
		const char *got;
		struct {
			const char *name, *want;
		} checks[] = {
			{ "v", "1" },
			{ "a", dkim_alg_str(rows[i].alg) },
			{ "c", rows[i].c },
			{ "d", "example.com" },
			{ "s", rows[i].alg == DKIM_ALG_RSA_SHA256 ? "rsa" :
			    "ed" },
			{ "t", rows[i].t },
			{ "x", rows[i].x },
			{ "l", rows[i].l },
			{ "i", rows[i].identity },
		};

		opts(&o, rows[i].alg, key);
		o.hcanon = rows[i].hc;
		o.bcanon = rows[i].bc;
		o.now = rows[i].now;
		o.expire = rows[i].expire;
		o.body_length = rows[i].body_length;
		o.identity = rows[i].identity;
		sign_into(base_msg, &o, &sf);
		cr_expect(sf.st == DKIM_OK && sf.tags_ok, "%s: status got %d "
		    "(%s), tags parse %d", rows[i].desc, sf.st, sf.why,
		    sf.tags_ok);
		if (!sf.tags_ok) {
			signed_free(&sf);
			EVP_PKEY_free(key);
			continue;
		}
		for (size_t k = 0; k < NELEM(checks); k++) {
			got = tag(&sf, checks[k].name);
			if (checks[k].want == NULL) {
				cr_expect(got == NULL, "%s: %s= got \"%s\", want "
				    "absent", rows[i].desc, checks[k].name,
				    got ? got : "");
				continue;
			}
			cr_expect(got != NULL && strcmp(got, checks[k].want) ==
			    0, "%s: %s= got \"%s\", want \"%s\"", rows[i].desc,
			    checks[k].name, got ? got : "(absent)",
			    checks[k].want);
		}
		cr_expect(sf.tags.n > 0 && same(sf.tags.tags[sf.tags.n - 1].name,
		    sf.tags.tags[sf.tags.n - 1].name_len, "b"),
		    "%s: last tag got \"%s\", want \"b\"", rows[i].desc,
		    esc(sf.tags.tags[sf.tags.n - 1].name,
		    sf.tags.tags[sf.tags.n - 1].name_len));
		cr_expect(tag(&sf, "bh") != NULL && tag(&sf, "h") != NULL,
		    "%s: bh= and h= must be present", rows[i].desc);
		signed_free(&sf);
		EVP_PKEY_free(key);
	}
}

/* bh= and l= describe the canonical body (RFC 6376 §3.7 step 1). */
Test(sign, body_hash_and_length)
{
	static const char text[] = "From: a@example.com\r\n\r\n"
	    "Hello  world \r\n\r\n";
	static const struct {
		enum dkim_canon bc;
		const char *canon;
	} rows[] = {
		{ DKIM_CANON_SIMPLE, "Hello  world \r\n" },
		{ DKIM_CANON_RELAXED, "Hello world\r\n" },
	};
	EVP_PKEY *key = key_for(DKIM_ALG_RSA_SHA256);

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct dkim_sign_opts o;
		struct signed_field sf;
		char *want_bh = sha256_b64(rows[i].canon, strlen(rows[i].canon));
		char want_l[32];
		const char *bh, *l;

		opts(&o, DKIM_ALG_RSA_SHA256, key);
		o.bcanon = rows[i].bc;
		o.body_length = true;
		sign_into(text, &o, &sf);
		cr_assert(sf.st == DKIM_OK && sf.tags_ok, "status %d (%s)",
		    sf.st, sf.why);
		snprintf(want_l, sizeof(want_l), "%zu", strlen(rows[i].canon));
		bh = tag(&sf, "bh");
		l = tag(&sf, "l");
		cr_expect(bh && strcmp(bh, want_bh) == 0, "%s: bh= got %s, want "
		    "%s", dkim_canon_str(rows[i].bc), bh ? bh : "(absent)",
		    want_bh);
		cr_expect(l && strcmp(l, want_l) == 0, "%s: l= got %s, want %s",
		    dkim_canon_str(rows[i].bc), l ? l : "(absent)", want_l);
		free(want_bh);
		signed_free(&sf);
	}
	EVP_PKEY_free(key);
}

/* ------------------------------------------------------------ h= lists */

Test(sign, default_headers_oversign_from)
{
	static const struct {
		const char *desc, *text;
	} rows[] = {
		{ "one From", base_msg },
		{ "two From fields", "From: a@example.com\r\nTo: b@example.net\r\n"
		    "From: c@example.com\r\nSubject: x\r\n\r\nbody\r\n" },
		{ "From in upper case, Received twice",
		    "Received: by a\r\nReceived: by b\r\nFROM: a@example.com\r\n"
		    "subject: x\r\nX-Custom: y\r\n\r\nbody\r\n" },
		{ "folded From", "From: Alice\r\n <alice@example.com>\r\n"
		    "Subject: x\r\n\r\n" },
	};
	EVP_PKEY *key = key_for(DKIM_ALG_ED25519_SHA256);

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct dkim_sign_opts o;
		struct signed_field sf;
		const char *h;

		opts(&o, DKIM_ALG_ED25519_SHA256, key);
		sign_into(rows[i].text, &o, &sf);
		cr_assert(sf.st == DKIM_OK && sf.tags_ok, "%s: status %d (%s)",
		    rows[i].desc, sf.st, sf.why);
		h = tag(&sf, "h");
		cr_assert(h != NULL, "%s: no h=", rows[i].desc);
		for (size_t k = 0; dkim_default_headers[k] != NULL; k++) {
			const char *name = dkim_default_headers[k];
			size_t present = 0, got = count_names(h, name);

			for (size_t j = 0; j < sf.m->nfields; j++)
				present += dkim_field_is(&sf.m->fields[j], name);
			if (strcasecmp(name, "from") == 0)
				cr_expect(got == present + 1, "%s: h=%s has "
				    "\"from\" %zu times, want %zu (From fields "
				    "+ 1)", rows[i].desc, h, got, present + 1);
			else if (present > 0)
				cr_expect(got == present, "%s: h=%s has \"%s\" "
				    "%zu times, want %zu (once per instance)",
				    rows[i].desc, h, name, got, present);
		}
		cr_expect(count_names(h, "x-custom") == 0, "%s: h=%s signs "
		    "X-Custom, which is not in the default list", rows[i].desc,
		    h);
		cr_expect(count_names(h, "dkim-signature") == 0, "%s: h=%s "
		    "names DKIM-Signature", rows[i].desc, h);
		signed_free(&sf);
	}
	EVP_PKEY_free(key);
}

Test(sign, explicit_header_list)
{
	static const char *const names[] = { "from", "Subject", "x-absent",
	    "from" };
	EVP_PKEY *key = key_for(DKIM_ALG_RSA_SHA256);
	struct dkim_sign_opts o;
	struct signed_field sf;
	const char *h;

	opts(&o, DKIM_ALG_RSA_SHA256, key);
	o.headers = names;
	o.nheaders = NELEM(names);
	sign_into(base_msg, &o, &sf);
	cr_assert(sf.st == DKIM_OK && sf.tags_ok, "status %d (%s)", sf.st,
	    sf.why);
	h = tag(&sf, "h");
	cr_expect(h != NULL && strcmp(h, "from:Subject:x-absent:from") == 0,
	    "h= got \"%s\", want \"from:Subject:x-absent:from\"",
	    h ? h : "(absent)");
	signed_free(&sf);
	EVP_PKEY_free(key);
}

/* ------------------------------------------------------------- refusals */

Test(sign, refusals)
{
	EVP_PKEY *rsa = key_for(DKIM_ALG_RSA_SHA256);
	EVP_PKEY *ed = key_for(DKIM_ALG_ED25519_SHA256);
	EVP_PKEY *small = rsa_keygen(512);
	static const char *const no_from[] = { "to", "subject" };
	static const struct {
		const char *desc;
		int what;
	} rows[] = {
		{ "rsa-sha1 (RFC 8301 §3.1: MUST NOT sign)", 0 },
		{ "ed25519-sha256 with an RSA key", 1 },
		{ "rsa-sha256 with an Ed25519 key", 2 },
		{ "no domain", 3 },
		{ "no selector", 4 },
		{ "no key", 5 },
		{ "512-bit RSA key (RFC 8301 §3.2: at least 1024)", 6 },
		{ "i= outside d= (RFC 6376 §3.5)", 7 },
		{ "h= without From (RFC 6376 §5.4: MUST be signed)", 8 },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct dkim_sign_opts o;
		struct signed_field sf;

		opts(&o, DKIM_ALG_RSA_SHA256, rsa);
		switch (rows[i].what) {
		case 0: o.alg = DKIM_ALG_RSA_SHA1; break;
		case 1: o.alg = DKIM_ALG_ED25519_SHA256; break;
		case 2: o.key = ed; break;
		case 3: o.domain = NULL; break;
		case 4: o.selector = NULL; break;
		case 5: o.key = NULL; break;
		case 6: o.key = small; break;
		case 7: o.identity = "user@example.org"; break;
		case 8: o.headers = no_from; o.nheaders = 2; break;
		}
		sign_into(base_msg, &o, &sf);
		cr_expect(sf.st != DKIM_OK, "%s: status got DKIM_OK, want a "
		    "refusal; produced \"%s\"", rows[i].desc,
		    esc(sf.field.p, sf.field.len));
		if (rows[i].what >= 3 && rows[i].what <= 5)
			cr_expect(sf.st == DKIM_E_ARG, "%s: status got %d (%s), "
			    "want DKIM_E_ARG", rows[i].desc, sf.st,
			    dkim_status_str(sf.st));
		if (sf.st != DKIM_OK)
			cr_expect(sf.why[0] != '\0', "%s: reason got \"\"",
			    rows[i].desc);
		signed_free(&sf);
	}
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(small);
}

/* ----------------------------------------------------------- round trip */

static const struct {
	const char *desc, *text;
} rt_msgs[] = {
	{ "plain", base_msg },
	{ "folded headers, trailing WSP",
	    "From: Alice\r\n  <alice@example.com>  \r\n"
	    "Subject:  a folded\r\n\tsubject line \t\r\n"
	    "To:bob@example.net\t\r\n"
	    "Date: Tue, 14 Nov 2023\r\n 22:13:20 +0000\r\n"
	    "\r\n"
	    "body  with   spaces \t\r\n \r\n\tindented\r\n\r\n\r\n" },
	{ "empty body", "From: a@example.com\r\nSubject: x\r\n\r\n" },
	{ "no body separator", "From: a@example.com\r\nSubject: x\r\n" },
	{ "body without final CRLF", "From: a@example.com\r\n\r\nno newline " },
	{ "bare CR, bare LF, 8-bit", "From: a@example.com\r\nSubject: "
	    "\xc3\xa9t\xc3\xa9\r\n\r\nline\rwith\nodd ends\r\n\xc3\xa9\r\n" },
	{ "two From and repeated Received",
	    "Received: from a by b\r\nReceived: from c by d\r\n"
	    "From: a@example.com\r\nFrom: b@example.com\r\n\r\nx\r\n" },
};

static char *
join(const char *a, size_t na, const char *b)
{
	size_t nb = strlen(b);
	char *s = malloc(na + nb + 1);

	cr_assert(s != NULL);
	memcpy(s, a, na);
	memcpy(s + na, b, nb + 1);
	return s;
}

/* verify_one - verify text and return the first result (and n). */
static enum dkim_result
verify_one(const char *text, size_t *n, char *reason, size_t rlen)
{
	struct dkim_msg *m = NULL;
	struct dkim_verification *v = NULL;
	struct dkim_verify_opts vo;
	struct dns d;
	enum dkim_result res = DKIM_RES_NONE;

	dns_init(&d);
	cr_assert(dkim_msg_parse(text, strlen(text), NULL, &m, NULL, 0) ==
	    DKIM_OK, "signed message does not parse: \"%s\"", escs(text));
	dkim_verify_opts_init(&vo);
	vo.now = T0 + 60;
	vo.lookup = dns_lookup;
	vo.lookup_arg = &d;
	cr_assert(dkim_verify(m, &vo, &v) == DKIM_OK);
	*n = v->n;
	if (v->n > 0) {
		res = v->r[0].result;
		snprintf(reason, rlen, "%s", v->r[0].reason);
	}
	dkim_verification_free(v);
	dkim_msg_free(m);
	return res;
}

Test(sign, round_trip_all_combinations, .timeout = 60)
{
	static const enum dkim_alg algs[] = { DKIM_ALG_RSA_SHA256,
	    DKIM_ALG_ED25519_SHA256 };
	static const enum dkim_canon cs[] = { DKIM_CANON_SIMPLE,
	    DKIM_CANON_RELAXED };

	for (size_t a = 0; a < NELEM(algs); a++) {
		EVP_PKEY *key = key_for(algs[a]);

		for (size_t hc = 0; hc < 2; hc++)
		for (size_t bc = 0; bc < 2; bc++)
		for (size_t mi = 0; mi < NELEM(rt_msgs); mi++)
		for (int extras = 0; extras < 2; extras++) {
			struct dkim_sign_opts o;
			struct signed_field sf;
			char reason[DKIM_WHY_MAX] = "", *text;
			enum dkim_result res;
			size_t n = 0;

			opts(&o, algs[a], key);
			o.hcanon = cs[hc];
			o.bcanon = cs[bc];
			if (extras) {
				o.identity = "@sub.example.com";
				o.expire = 3600;
				o.body_length = true;
			}
			sign_into(rt_msgs[mi].text, &o, &sf);
			cr_expect(sf.st == DKIM_OK, "%s %s/%s %s: sign status "
			    "%d (%s)", dkim_alg_str(algs[a]),
			    dkim_canon_str(cs[hc]), dkim_canon_str(cs[bc]),
			    rt_msgs[mi].desc, sf.st, sf.why);
			if (sf.st != DKIM_OK) {
				signed_free(&sf);
				continue;
			}
			text = join(sf.field.p, sf.field.len, rt_msgs[mi].text);
			res = verify_one(text, &n, reason, sizeof(reason));
			cr_expect(n == 1 && res == DKIM_RES_PASS, "%s %s/%s %s%s: "
			    "got %zu results, first %s (%s), want pass",
			    dkim_alg_str(algs[a]), dkim_canon_str(cs[hc]),
			    dkim_canon_str(cs[bc]), rt_msgs[mi].desc,
			    extras ? " +i/x/l" : "", n, dkim_result_str(res),
			    reason);
			free(text);
			signed_free(&sf);
		}
		EVP_PKEY_free(key);
	}
}

/* What each canonicalization tolerates after signing (RFC 6376 §3.4). */
Test(sign, changes_each_canonicalization_tolerates)
{
	static const char text[] = "From: Alice <alice@example.com>\r\n"
	    "Subject: lunch today\r\n\r\nShall we go?\r\n";
	static const struct {
		const char *desc, *from, *to;
		bool header_change;	/* else a body change */
		bool simple_ok;		/* simple tolerates it too */
	} changes[] = {
		{ "header refolded", "Subject: lunch today",
		    "Subject: lunch\r\n today", true, false },
		{ "header WSP changed", "Subject: lunch today",
		    "Subject:\tlunch  today ", true, false },
		{ "header name case", "Subject: lunch", "SUBJECT: lunch", true,
		    false },
		{ "body WSP changed", "Shall we go?", "Shall  we\tgo? ", false,
		    false },
		/* §3.4.3: simple ignores empty lines at the end as well */
		{ "body empty lines added", "go?\r\n", "go?\r\n\r\n\r\n",
		    false, true },
	};

	for (size_t a = 0; a < 2; a++) {
		enum dkim_alg alg = a ? DKIM_ALG_ED25519_SHA256 :
		    DKIM_ALG_RSA_SHA256;
		EVP_PKEY *key = key_for(alg);

		for (size_t hc = 0; hc < 2; hc++)
		for (size_t bc = 0; bc < 2; bc++)
		for (size_t k = 0; k < NELEM(changes); k++) {
			struct dkim_sign_opts o;
			struct signed_field sf;
			char reason[DKIM_WHY_MAX] = "", *signed_text, *changed;
			const char *at;
			enum dkim_result res, want;
			bool relaxed;
			size_t n;

			opts(&o, alg, key);
			o.hcanon = hc ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
			o.bcanon = bc ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
			sign_into(text, &o, &sf);
			cr_assert(sf.st == DKIM_OK);
			signed_text = join(sf.field.p, sf.field.len, text);
			at = strstr(signed_text + sf.field.len, changes[k].from);
			cr_assert(at != NULL);
			{
				size_t pre = (size_t)(at - signed_text);
				char *head = join(signed_text, pre,
				    changes[k].to);

				changed = join(head, strlen(head),
				    at + strlen(changes[k].from));
				free(head);
			}
			relaxed = changes[k].header_change ? hc == 1 : bc == 1;
			want = relaxed || changes[k].simple_ok ? DKIM_RES_PASS :
			    DKIM_RES_FAIL;
			res = verify_one(changed, &n, reason, sizeof(reason));
			cr_expect(res == want, "%s %s/%s, %s: got %s (%s), want %s",
			    dkim_alg_str(alg), dkim_canon_str(o.hcanon),
			    dkim_canon_str(o.bcanon), changes[k].desc,
			    dkim_result_str(res), reason, dkim_result_str(want));
			if (want == DKIM_RES_FAIL)
				cr_expect(strcmp(reason, changes[k].header_change ?
				    "signature did not verify" :
				    "body hash did not verify") == 0,
				    "%s %s/%s, %s: reason got \"%s\"",
				    dkim_alg_str(alg), dkim_canon_str(o.hcanon),
				    dkim_canon_str(o.bcanon), changes[k].desc,
				    reason);
			free(changed);
			free(signed_text);
			signed_free(&sf);
		}
		EVP_PKEY_free(key);
	}
}

/* A From added after signing breaks the oversigned default h= list. */
Test(sign, added_from_breaks_signature)
{
	EVP_PKEY *key = key_for(DKIM_ALG_RSA_SHA256);
	struct dkim_sign_opts o;
	struct signed_field sf;
	char reason[DKIM_WHY_MAX] = "", *signed_text, *attacked;
	size_t n;
	enum dkim_result res;

	opts(&o, DKIM_ALG_RSA_SHA256, key);
	sign_into(base_msg, &o, &sf);
	cr_assert(sf.st == DKIM_OK);
	signed_text = join(sf.field.p, sf.field.len, base_msg);
	res = verify_one(signed_text, &n, reason, sizeof(reason));
	cr_expect(res == DKIM_RES_PASS, "unchanged: got %s (%s), want pass",
	    dkim_result_str(res), reason);
	/* insert a second From right after the signature, above the first */
	{
		char *head = join(signed_text, sf.field.len,
		    "From: Mallory <m@example.org>\r\n");

		attacked = join(head, strlen(head), signed_text + sf.field.len);
		free(head);
	}
	res = verify_one(attacked, &n, reason, sizeof(reason));
	cr_expect(res == DKIM_RES_FAIL, "second From: got %s (%s), want fail",
	    dkim_result_str(res), reason);
	free(attacked);
	free(signed_text);
	signed_free(&sf);
	EVP_PKEY_free(key);
}

/*
 * Whatever dkim_sign accepts it must emit as a field that parses and
 * verifies: i= is dkim-quoted-printable (RFC 6376 §2.11, §3.5) so ';',
 * CR, LF and 8-bit bytes need encoding or a refusal, and d= and s= must be
 * domain names (§3.5 domain-name, §3.1 selector). A refusal is fine; a
 * field that breaks the tag list or the header section is not.
 */
Test(sign, never_emits_an_unparsable_field)
{
	static const struct {
		const char *desc, *domain, *selector, *identity;
	} rows[] = {
		{ "';' in i=", "example.com", "rsa", "a;b@example.com" },
		{ "a tag smuggled in i=", "example.com", "rsa",
		    "a@example.com; l=0; z=@example.com" },
		{ "a header smuggled in i=", "example.com", "rsa",
		    "a\r\nBcc: victim@example.org\r\n z@example.com" },
		{ "8-bit byte in i=", "example.com", "rsa", "\xc3\xa9@example.com" },
		{ "'=' in d=", "ex=ample.com", "rsa", NULL },
		{ "d= ending in a dot", "example.com.", "rsa", NULL },
		{ "'=' in s=", "example.com", "rs=a", NULL },
		{ "s= ending in a dot", "example.com", "rsa.", NULL },
	};
	EVP_PKEY *key = key_for(DKIM_ALG_RSA_SHA256);

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct dkim_sign_opts o;
		struct signed_field sf;
		struct dkim_msg *m = NULL;
		struct dkim_sig *sig = NULL;
		char why[DKIM_WHY_MAX] = "", *text;
		enum dkim_status st;

		opts(&o, DKIM_ALG_RSA_SHA256, key);
		o.domain = rows[i].domain;
		o.selector = rows[i].selector;
		o.identity = rows[i].identity;
		sign_into(base_msg, &o, &sf);
		if (sf.st != DKIM_OK) {
			signed_free(&sf);
			continue;	/* refused: fine */
		}
		text = join(sf.field.p, sf.field.len, base_msg);
		st = dkim_msg_parse(text, strlen(text), NULL, &m, NULL, 0);
		cr_expect(st == DKIM_OK && m->nfields == sf.m->nfields + 1,
		    "%s: signed, but the signed message has %zu fields (status "
		    "%d), want %zu: \"%s\"", rows[i].desc, m ? m->nfields : 0,
		    st, sf.m->nfields + 1, esc(sf.field.p, sf.field.len));
		if (st == DKIM_OK) {
			st = dkim_sig_parse(&m->fields[0], DKIM_SIG_DKIM, &sig,
			    why, sizeof(why));
			cr_expect(st == DKIM_OK, "%s: signed, but the field does "
			    "not parse (%s): \"%s\"", rows[i].desc, why,
			    esc(sf.field.p, sf.field.len));
			if (st == DKIM_OK && rows[i].identity != NULL)
				cr_expect(!sig->has_l, "%s: i= text became an "
				    "l= tag", rows[i].desc);
		}
		dkim_sig_free(sig);
		dkim_msg_free(m);
		free(text);
		signed_free(&sf);
	}
	EVP_PKEY_free(key);
}
