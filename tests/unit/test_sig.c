/*
 * test_sig.c - dkim_sig_parse on DKIM-Signature fields (RFC 6376 §3.5,
 * §6.1.1): every parsed member of valid signatures, the defaults for c=
 * and i=, and each reason a signature is refused before any key or hash
 * is looked at.
 */
#include <criterion/criterion.h>

#include "unit.h"

/* SHA-256 of the empty string, and nine bytes 00..08, in base64. */
#define BH_EMPTY "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
#define B_NINE "AAECAwQFBgcI"

static const unsigned char sha256_empty[32] = {
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8,
	0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
	0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};
static const unsigned char nine[9] = { 0, 1, 2, 3, 4, 5, 6, 7, 8 };

/* A parsed signature together with the message text it points into. */
struct parsed {
	char *text;
	struct dkim_msg *msg;
	struct dkim_sig *sig;
	enum dkim_status st;
	char why[DKIM_WHY_MAX];
};

/* parse - "DKIM-Signature:" + value as the only field of a message. */
static void
parse(const char *value, struct parsed *p)
{
	size_t n = strlen(value) + 32;
	enum dkim_status st;

	memset(p, 0, sizeof(*p));
	p->text = malloc(n);
	cr_assert(p->text != NULL);
	snprintf(p->text, n, "DKIM-Signature:%s\r\n\r\n", value);
	st = dkim_msg_parse(p->text, strlen(p->text), NULL, &p->msg, NULL, 0);
	cr_assert(st == DKIM_OK && p->msg->nfields == 1,
	    "test setup: \"%s\" does not parse as one field (status %d)",
	    escs(value), st);
	p->st = dkim_sig_parse(&p->msg->fields[0], DKIM_SIG_DKIM, &p->sig,
	    p->why, sizeof(p->why));
}

static void
parsed_free(struct parsed *p)
{
	dkim_sig_free(p->sig);
	dkim_msg_free(p->msg);
	free(p->text);
}

static const char *
cn(enum dkim_canon c)
{
	return c == DKIM_CANON_RELAXED ? "relaxed" : "simple";
}

/* ---------------------------------------------------------------- valid */

Test(sig, every_member_of_a_full_signature)
{
	static const char v[] = " v=1; a=rsa-sha256; c=relaxed/relaxed; "
	    "d=example.com; s=sel;\r\n\ti=user@example.com; h=From : To :\r\n"
	    " Subject; l=123; t=1000;\r\n x=2000; bh=" BH_EMPTY ";\r\n"
	    " b=AAEC AwQF\r\n BgcI";
	struct parsed p;
	const struct dkim_sig *s;
	static const char *const want_h[] = { "From", "To", "Subject" };

	parse(v, &p);
	cr_assert(p.st == DKIM_OK, "status got %d (%s), want DKIM_OK", p.st,
	    p.why);
	s = p.sig;
	cr_expect(s->kind == DKIM_SIG_DKIM, "kind got %d, want DKIM_SIG_DKIM",
	    s->kind);
	cr_expect(s->alg == DKIM_ALG_RSA_SHA256, "alg got %d, want "
	    "DKIM_ALG_RSA_SHA256", s->alg);
	cr_expect(strcmp(s->alg_text, "rsa-sha256") == 0, "alg_text got "
	    "\"%s\", want \"rsa-sha256\"", escs(s->alg_text));
	cr_expect(s->hcanon == DKIM_CANON_RELAXED && s->bcanon ==
	    DKIM_CANON_RELAXED, "c= got %s/%s, want relaxed/relaxed",
	    cn(s->hcanon), cn(s->bcanon));
	cr_expect(strcmp(s->d, "example.com") == 0, "d got \"%s\", want "
	    "\"example.com\"", escs(s->d));
	cr_expect(strcmp(s->s, "sel") == 0, "s got \"%s\", want \"sel\"",
	    escs(s->s));
	cr_expect(strcmp(s->i, "user@example.com") == 0, "i got \"%s\", want "
	    "\"user@example.com\"", escs(s->i));
	cr_expect(s->nh == NELEM(want_h), "nh got %zu, want %zu", s->nh,
	    NELEM(want_h));
	for (size_t j = 0; j < s->nh && j < NELEM(want_h); j++)
		cr_expect(strcmp(s->h[j], want_h[j]) == 0, "h[%zu] got \"%s\", "
		    "want \"%s\"", j, escs(s->h[j]), want_h[j]);
	cr_expect(s->has_l && s->l == 123, "l got has=%d %llu, want 123",
	    s->has_l, (unsigned long long)s->l);
	cr_expect(s->has_t && s->t == 1000, "t got has=%d %lld, want 1000",
	    s->has_t, (long long)s->t);
	cr_expect(s->has_x && s->x == 2000, "x got has=%d %lld, want 2000",
	    s->has_x, (long long)s->x);
	cr_expect(s->bh_len == 32 && memcmp(s->bh, sha256_empty, 32) == 0,
	    "bh got %zu bytes \"%s\", want the 32-byte SHA-256 of \"\"",
	    s->bh_len, esc(s->bh, s->bh_len));
	cr_expect(s->b_len == sizeof(nine) && memcmp(s->b, nine, 9) == 0,
	    "b got %zu bytes \"%s\", want 00..08", s->b_len,
	    esc(s->b, s->b_len));
	cr_expect(strcmp(s->b_text, B_NINE) == 0, "b_text got \"%s\", want "
	    "\"%s\"", escs(s->b_text), B_NINE);
	{
		const struct dkim_field *f = &p.msg->fields[0];
		const char *want = "AAEC AwQF\r\n BgcI";

		cr_expect(s->b_off <= s->b_end && s->b_end <= f->raw_len &&
		    same(f->raw + s->b_off, s->b_end - s->b_off, want),
		    "raw[b_off, b_end) got [%zu, %zu) \"%s\", want \"%s\"",
		    s->b_off, s->b_end, s->b_end <= f->raw_len &&
		    s->b_off <= s->b_end ? esc(f->raw + s->b_off,
		    s->b_end - s->b_off) : "(out of range)", escs(want));
	}
	parsed_free(&p);
}

/* b= need not be last: [b_off, b_end) runs from just after "b=" to the
 * last base64 octet, as dkim.h specifies. */
Test(sig, b_offsets)
{
	static const struct {
		const char *value;
		const char *want;	/* raw bytes in [b_off, b_end) */
	} rows[] = {
		{ " v=1; a=rsa-sha256; b=AAEC\r\n AwQF ; d=example.com; s=sel; "
		    "h=from; bh=" BH_EMPTY, "AAEC\r\n AwQF" },
		{ " v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh="
		    BH_EMPTY "; b=" B_NINE "; ", B_NINE },
		/* FWS after '=' is inside [b_off, b_end) (dkim.h), WSP after
		 * the last base64 octet is not */
		{ " v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh="
		    BH_EMPTY "; b= \r\n " B_NINE " \t", " \r\n " B_NINE },
		{ "v=1;a=rsa-sha256;d=example.com;s=sel;h=from;bh=" BH_EMPTY
		    ";b=" B_NINE, B_NINE },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct parsed p;
		const struct dkim_field *f;
		size_t off, end;

		parse(rows[i].value, &p);
		cr_expect(p.st == DKIM_OK, "\"%s\": status got %d (%s), want "
		    "DKIM_OK", escs(rows[i].value), p.st, p.why);
		if (p.st != DKIM_OK) {
			parsed_free(&p);
			continue;
		}
		f = &p.msg->fields[0];
		off = p.sig->b_off;
		end = p.sig->b_end;
		cr_expect(off <= end && end <= f->raw_len &&
		    same(f->raw + off, end - off, rows[i].want),
		    "\"%s\": raw[b_off, b_end) got [%zu, %zu) \"%s\", want "
		    "\"%s\"", escs(rows[i].value), off, end,
		    off <= end && end <= f->raw_len ?
		    esc(f->raw + off, end - off) : "(out of range)",
		    escs(rows[i].want));
		cr_expect(f->raw[off - 1] == '=', "\"%s\": byte before b_off "
		    "got '%c', want '='", escs(rows[i].value), f->raw[off - 1]);
		parsed_free(&p);
	}
}

#define BASE_AFTER_A "d=example.com; s=sel; h=from:to; bh=" BH_EMPTY \
	"; b=" B_NINE

Test(sig, canonicalization_defaults)
{
	static const struct {
		const char *c;	/* c= tag, or "" for none */
		enum dkim_canon h, b;
	} rows[] = {
		{ "", DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE },
		{ "c=simple; ", DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE },
		{ "c=relaxed; ", DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE },
		{ "c=simple/simple; ", DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE },
		{ "c=simple/relaxed; ", DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED },
		{ "c=relaxed/simple; ", DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE },
		{ "c=relaxed/relaxed; ", DKIM_CANON_RELAXED,
		    DKIM_CANON_RELAXED },
		{ "c = relaxed/relaxed ; ", DKIM_CANON_RELAXED,
		    DKIM_CANON_RELAXED },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		char v[512];
		struct parsed p;

		snprintf(v, sizeof(v), " v=1; a=rsa-sha256; %s" BASE_AFTER_A,
		    rows[i].c);
		parse(v, &p);
		cr_expect(p.st == DKIM_OK, "\"%s\": status got %d (%s), want "
		    "DKIM_OK", rows[i].c, p.st, p.why);
		if (p.st == DKIM_OK)
			cr_expect(p.sig->hcanon == rows[i].h &&
			    p.sig->bcanon == rows[i].b, "\"%s\": got %s/%s, "
			    "want %s/%s", rows[i].c, cn(p.sig->hcanon),
			    cn(p.sig->bcanon), cn(rows[i].h), cn(rows[i].b));
		parsed_free(&p);
	}
}

Test(sig, identity_default_and_domain_match)
{
	static const struct {
		const char *tags;	/* d= and optional i= */
		const char *want_i;
	} rows[] = {
		{ "d=example.com", "@example.com" },
		{ "d=sub.example.com", "@sub.example.com" },
		{ "d=example.com; i=@example.com", "@example.com" },
		{ "d=example.com; i=user@example.com", "user@example.com" },
		{ "d=example.com; i=@sub.example.com", "@sub.example.com" },
		{ "d=example.com; i=u@a.b.example.com", "u@a.b.example.com" },
		{ "d=example.com; i=@EXAMPLE.com", "@EXAMPLE.com" },
		{ "d=Example.COM; i=joe@sub.example.com",
		    "joe@sub.example.com" },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		char v[512];
		struct parsed p;

		snprintf(v, sizeof(v), " v=1; a=rsa-sha256; %s; s=sel; "
		    "h=from; bh=" BH_EMPTY "; b=" B_NINE, rows[i].tags);
		parse(v, &p);
		cr_expect(p.st == DKIM_OK, "\"%s\": status got %d (%s), want "
		    "DKIM_OK", rows[i].tags, p.st, p.why);
		if (p.st == DKIM_OK)
			cr_expect(strcmp(p.sig->i, rows[i].want_i) == 0,
			    "\"%s\": i got \"%s\", want \"%s\"", rows[i].tags,
			    escs(p.sig->i), rows[i].want_i);
		parsed_free(&p);
	}
}

Test(sig, algorithms_and_lists)
{
	static const struct {
		const char *a;
		enum dkim_alg alg;
		const char *h;
		size_t nh;
		const char *hs[4];
	} rows[] = {
		{ "rsa-sha256", DKIM_ALG_RSA_SHA256, "from", 1, { "from" } },
		{ "ed25519-sha256", DKIM_ALG_ED25519_SHA256, "From:Subject", 2,
		    { "From", "Subject" } },
		/* rsa-sha1 parses; refusing it is the verifier's job. */
		{ "rsa-sha1", DKIM_ALG_RSA_SHA1, "from : to :\r\n subject : date",
		    4, { "from", "to", "subject", "date" } },
		{ "rsa-sha256", DKIM_ALG_RSA_SHA256, "from:from:to", 3,
		    { "from", "from", "to" } },
		{ "rsa-sha256", DKIM_ALG_RSA_SHA256, " from\t:\tx-extra ", 2,
		    { "from", "x-extra" } },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		char v[512];
		struct parsed p;

		snprintf(v, sizeof(v), " v=1; a=%s; d=example.com; s=sel; "
		    "h=%s; bh=" BH_EMPTY "; b=" B_NINE, rows[i].a, rows[i].h);
		parse(v, &p);
		cr_expect(p.st == DKIM_OK, "a=%s h=%s: status got %d (%s), "
		    "want DKIM_OK", rows[i].a, escs(rows[i].h), p.st, p.why);
		if (p.st != DKIM_OK) {
			parsed_free(&p);
			continue;
		}
		cr_expect(p.sig->alg == rows[i].alg, "a=%s: alg got %d, want "
		    "%d", rows[i].a, p.sig->alg, rows[i].alg);
		cr_expect(strcmp(p.sig->alg_text, rows[i].a) == 0, "a=%s: "
		    "alg_text got \"%s\"", rows[i].a, escs(p.sig->alg_text));
		cr_expect(p.sig->nh == rows[i].nh, "h=%s: nh got %zu, want %zu",
		    escs(rows[i].h), p.sig->nh, rows[i].nh);
		for (size_t j = 0; j < p.sig->nh && j < rows[i].nh; j++)
			cr_expect(strcmp(p.sig->h[j], rows[i].hs[j]) == 0,
			    "h=%s: h[%zu] got \"%s\", want \"%s\"",
			    escs(rows[i].h), j, escs(p.sig->h[j]),
			    rows[i].hs[j]);
		cr_expect(!p.sig->has_l && !p.sig->has_t && !p.sig->has_x,
		    "no l/t/x given: got has_l=%d has_t=%d has_x=%d",
		    p.sig->has_l, p.sig->has_t, p.sig->has_x);
		parsed_free(&p);
	}
}

/* Unknown tags are ignored (RFC 6376 §3.5) and q=dns/txt is accepted. */
Test(sig, unknown_tags_ignored)
{
	struct parsed p;

	parse(" v=1; a=rsa-sha256; q=dns/txt; foo=bar baz; z=From:x|To:y; "
	    BASE_AFTER_A "; zz_9=", &p);
	cr_expect(p.st == DKIM_OK, "status got %d (%s), want DKIM_OK", p.st,
	    p.why);
	parsed_free(&p);
}

/* --------------------------------------------------------------- errors */

static const char *const required[] = {
	"v=1", "a=rsa-sha256", "b=" B_NINE, "bh=" BH_EMPTY, "d=example.com",
	"h=from:to", "s=sel",
};

Test(sig, missing_required_tags)
{
	for (size_t skip = 0; skip < NELEM(required); skip++) {
		char v[512] = "", want[64];
		struct parsed p;
		size_t namelen = strcspn(required[skip], "=");

		for (size_t j = 0; j < NELEM(required); j++) {
			if (j == skip)
				continue;
			strcat(v, " ");
			strcat(v, required[j]);
			strcat(v, ";");
		}
		snprintf(want, sizeof(want), "missing tag %.*s=", (int)namelen,
		    required[skip]);
		parse(v, &p);
		cr_expect(p.st == DKIM_E_SYNTAX, "without %.*s=: status got %d, "
		    "want DKIM_E_SYNTAX", (int)namelen, required[skip], p.st);
		cr_expect(strcmp(p.why, want) == 0, "without %.*s=: reason got "
		    "\"%s\", want \"%s\"", (int)namelen, required[skip],
		    p.why, want);
		parsed_free(&p);
	}
}

struct bad_sig {
	const char *desc;
	const char *value;
	const char *why;	/* exact reason, or NULL for any reason */
};

#define TAIL "; s=sel; bh=" BH_EMPTY "; b=" B_NINE
#define HEAD " v=1; a=rsa-sha256; "

static const struct bad_sig bad_sigs[] = {
	{ "v=2", " v=2; a=rsa-sha256; " BASE_AFTER_A, NULL },
	{ "v=0", " v=0; a=rsa-sha256; " BASE_AFTER_A, NULL },
	{ "v=1.0", " v=1.0; a=rsa-sha256; " BASE_AFTER_A, NULL },
	{ "v= empty", " v=; a=rsa-sha256; " BASE_AFTER_A, NULL },
	{ "unknown a=", " v=1; a=rsa-md5; " BASE_AFTER_A, NULL },
	{ "a=ed25519-sha1", " v=1; a=ed25519-sha1; " BASE_AFTER_A, NULL },
	{ "a=rsa", " v=1; a=rsa; " BASE_AFTER_A, NULL },
	{ "a= empty", " v=1; a=; " BASE_AFTER_A, NULL },
	{ "unknown c=", HEAD "c=fancy; " BASE_AFTER_A, NULL },
	{ "unknown body c=", HEAD "c=relaxed/fancy; " BASE_AFTER_A, NULL },
	{ "unknown header c=", HEAD "c=fancy/simple; " BASE_AFTER_A, NULL },
	{ "c= with empty body part", HEAD "c=simple/; " BASE_AFTER_A, NULL },
	{ "c= with three parts", HEAD "c=simple/simple/simple; " BASE_AFTER_A,
	    NULL },
	{ "i= in another domain", HEAD "d=example.com; i=@other.com; h=from"
	    TAIL, "i= not within d=" },
	{ "i= a suffix but not a subdomain", HEAD "d=example.com; "
	    "i=user@badexample.com; h=from" TAIL, "i= not within d=" },
	{ "i= a parent of d=", HEAD "d=mail.example.com; i=@example.com; "
	    "h=from" TAIL, "i= not within d=" },
	{ "i= d= followed by more labels", HEAD "d=example.com; "
	    "i=@example.com.evil; h=from" TAIL, "i= not within d=" },
	{ "i= a prefix of d=", HEAD "d=example.com; i=@example.co; h=from"
	    TAIL, "i= not within d=" },
	{ "i= without '@'", HEAD "d=example.com; i=example.com; h=from" TAIL,
	    NULL },
	{ "h= without from", HEAD "d=example.com; h=to:subject" TAIL,
	    "From not signed" },
	{ "h= with x-from only", HEAD "d=example.com; h=x-from:to" TAIL,
	    "From not signed" },
	{ "h= with from-x only", HEAD "d=example.com; h=from-x" TAIL,
	    "From not signed" },
	{ "h= empty", HEAD "d=example.com; h=" TAIL, NULL },
	{ "x < t", HEAD "t=2000; x=1000; " BASE_AFTER_A, NULL },
	{ "x == t (x MUST be greater, §3.5)", HEAD "t=2000; x=2000; "
	    BASE_AFTER_A, NULL },
	{ "l= not a number", HEAD "l=abc; " BASE_AFTER_A, NULL },
	{ "l= negative", HEAD "l=-1; " BASE_AFTER_A, NULL },
	{ "l= fraction", HEAD "l=1.5; " BASE_AFTER_A, NULL },
	{ "l= empty", HEAD "l=; " BASE_AFTER_A, NULL },
	{ "l= with a sign", HEAD "l=+10; " BASE_AFTER_A, NULL },
	{ "t= with junk", HEAD "t=12a; " BASE_AFTER_A, NULL },
	{ "t= negative", HEAD "t=-5; " BASE_AFTER_A, NULL },
	{ "t= empty", HEAD "t=; " BASE_AFTER_A, NULL },
	{ "x= not a number", HEAD "x=never; " BASE_AFTER_A, NULL },
	{ "x= with a sign", HEAD "x=+5; " BASE_AFTER_A, NULL },
	{ "b= not base64", HEAD "d=example.com; s=sel; h=from; bh=" BH_EMPTY
	    "; b=ab!c", NULL },
	{ "bh= not base64", HEAD "d=example.com; s=sel; h=from; "
	    "bh=ab*cd; b=" B_NINE, NULL },
	{ "bh= with '@'", HEAD "d=example.com; s=sel; h=from; "
	    "bh=abc@; b=" B_NINE, NULL },
	{ "d= empty", HEAD "d=; h=from" TAIL, NULL },
	{ "d= a single label (ABNF domain-name needs a dot)", HEAD
	    "d=localhost; h=from" TAIL, NULL },
	{ "d= with an empty label", HEAD "d=example..com; h=from" TAIL, NULL },
	{ "q= without dns/txt", HEAD "q=http/well-known; " BASE_AFTER_A, NULL },
	{ "s= empty", HEAD "d=example.com; h=from; s=; bh=" BH_EMPTY "; b="
	    B_NINE, NULL },
	{ "duplicate d=", HEAD "d=example.com; d=example.org; h=from" TAIL,
	    NULL },
	{ "broken tag-list", HEAD "d=example.com;; h=from" TAIL, NULL },
};

Test(sig, refused_signatures)
{
	for (size_t i = 0; i < NELEM(bad_sigs); i++) {
		const struct bad_sig *c = &bad_sigs[i];
		struct parsed p;

		parse(c->value, &p);
		cr_expect(p.st == DKIM_E_SYNTAX, "%s: status got %d (%s), want "
		    "DKIM_E_SYNTAX", c->desc, p.st, dkim_status_str(p.st));
		if (c->why != NULL)
			cr_expect(strcmp(p.why, c->why) == 0, "%s: reason got "
			    "\"%s\", want \"%s\"", c->desc, p.why, c->why);
		else
			cr_expect(p.why[0] != '\0', "%s: reason got \"\", want "
			    "one", c->desc);
		parsed_free(&p);
	}
}

Test(sig, alg_names)
{
	static const struct {
		const char *in;
		size_t n;	/* 0: strlen */
		bool ok;
		enum dkim_alg alg;
	} rows[] = {
		{ "rsa-sha256", 0, true, DKIM_ALG_RSA_SHA256 },
		{ "ed25519-sha256", 0, true, DKIM_ALG_ED25519_SHA256 },
		{ "rsa-sha1", 0, true, DKIM_ALG_RSA_SHA1 },
		{ "rsa-sha256xyz", 10, true, DKIM_ALG_RSA_SHA256 },
		{ "rsa-sha512", 0, false, 0 },
		{ "rsa-sha2566", 0, false, 0 },
		{ "rsa-sha25", 0, false, 0 },
		{ "", 0, false, 0 },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		enum dkim_alg got = (enum dkim_alg)99;
		size_t n = rows[i].n ? rows[i].n : strlen(rows[i].in);
		bool ok = dkim_alg_parse(rows[i].in, n, &got);

		cr_expect(ok == rows[i].ok, "\"%.*s\": got %d, want %d",
		    (int)n, rows[i].in, ok, rows[i].ok);
		if (ok && rows[i].ok) {
			cr_expect(got == rows[i].alg, "\"%.*s\": alg got %d, "
			    "want %d", (int)n, rows[i].in, got, rows[i].alg);
			cr_expect(strncmp(dkim_alg_str(got), rows[i].in, n) == 0,
			    "dkim_alg_str(%d) got %s, want %.*s", got,
			    dkim_alg_str(got), (int)n, rows[i].in);
		}
	}
}

/* dkim_sig_field_stripped: the field as hashed, b= value and all the
 * whitespace around it deleted (RFC 6376 §3.7, hash step 2). */
Test(sig, field_with_b_value_stripped)
{
	static const struct {
		const char *value;	/* after "DKIM-Signature:" */
		const char *want;	/* the whole field, stripped */
	} rows[] = {
		{ " v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh="
		    BH_EMPTY "; b=AAEC\r\n AwQF",
		  "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; "
		    "h=from; bh=" BH_EMPTY "; b=" },
		{ " v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh="
		    BH_EMPTY "; b= \r\n " B_NINE,
		  "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; "
		    "h=from; bh=" BH_EMPTY "; b=" },
		{ " v=1; a=rsa-sha256; b=" B_NINE "; d=example.com; s=sel; "
		    "h=from; bh=" BH_EMPTY,
		  "DKIM-Signature: v=1; a=rsa-sha256; b=; d=example.com; s=sel; "
		    "h=from; bh=" BH_EMPTY },
		/* z= holds the text "b=" too; only the b= tag is emptied */
		{ " v=1; a=rsa-sha256; z=Subject:b=3D" B_NINE "; d=example.com; "
		    "s=sel; h=from; bh=" BH_EMPTY "; b=" B_NINE,
		  "DKIM-Signature: v=1; a=rsa-sha256; z=Subject:b=3D" B_NINE
		    "; d=example.com; s=sel; h=from; bh=" BH_EMPTY "; b=" },
		/* "including all surrounding whitespace" */
		{ " v=1; a=rsa-sha256; b=" B_NINE " \t; d=example.com; s=sel; "
		    "h=from; bh=" BH_EMPTY,
		  "DKIM-Signature: v=1; a=rsa-sha256; b=; d=example.com; s=sel; "
		    "h=from; bh=" BH_EMPTY },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct parsed p;
		struct dkim_buf b;

		parse(rows[i].value, &p);
		cr_expect(p.st == DKIM_OK, "\"%s\": status got %d (%s)",
		    escs(rows[i].value), p.st, p.why);
		if (p.st != DKIM_OK) {
			parsed_free(&p);
			continue;
		}
		dkim_buf_init(&b, 0);
		cr_expect(dkim_sig_field_stripped(&p.msg->fields[0], p.sig, &b),
		    "\"%s\": returned false", escs(rows[i].value));
		cr_expect(same(b.p, b.len, rows[i].want), "stripped got \"%s\", "
		    "want \"%s\"", esc(b.p, b.len), escs(rows[i].want));
		dkim_buf_free(&b);
		parsed_free(&p);
	}
}

/* The same parser reads ARC-Message-Signature and ARC-Seal values (RFC 8617
 * §4.1): i= is an instance number, AMS has no v=, the Seal has cv= and t=
 * and no h= or bh=. */
Test(sig, arc_kinds)
{
	static const struct {
		const char *desc;
		enum dkim_sig_kind kind;
		const char *value;
		enum dkim_status want;
		unsigned instance;
		enum dkim_cv cv;
	} rows[] = {
		{ "AMS", DKIM_SIG_ARC_MS, " i=2; a=rsa-sha256; c=relaxed/relaxed; "
		    "d=example.com; s=sel; h=from:to; bh=" BH_EMPTY "; b="
		    B_NINE, DKIM_OK, 2, DKIM_CV_NONE },
		{ "AMS without i=", DKIM_SIG_ARC_MS, " a=rsa-sha256; "
		    BASE_AFTER_A, DKIM_E_SYNTAX, 0, 0 },
		{ "AMS with i=0", DKIM_SIG_ARC_MS, " i=0; a=rsa-sha256; "
		    BASE_AFTER_A, DKIM_E_SYNTAX, 0, 0 },
		{ "AMS with i=x", DKIM_SIG_ARC_MS, " i=x; a=rsa-sha256; "
		    BASE_AFTER_A, DKIM_E_SYNTAX, 0, 0 },
		{ "Seal cv=none", DKIM_SIG_ARC_SEAL, " i=1; a=rsa-sha256; "
		    "t=1700000000; cv=none; d=example.com; s=sel; b=" B_NINE,
		    DKIM_OK, 1, DKIM_CV_NONE },
		{ "Seal cv=pass", DKIM_SIG_ARC_SEAL, " i=3; a=ed25519-sha256; "
		    "t=1700000000; cv=pass; d=example.com; s=sel; b=" B_NINE,
		    DKIM_OK, 3, DKIM_CV_PASS },
		{ "Seal cv=fail", DKIM_SIG_ARC_SEAL, " i=3; a=rsa-sha256; "
		    "t=1700000000; cv=fail; d=example.com; s=sel; b=" B_NINE,
		    DKIM_OK, 3, DKIM_CV_FAIL },
		{ "Seal with h=", DKIM_SIG_ARC_SEAL, " i=1; a=rsa-sha256; "
		    "t=1700000000; cv=none; d=example.com; s=sel; h=from; b="
		    B_NINE, DKIM_E_SYNTAX, 0, 0 },
		{ "Seal with cv=maybe", DKIM_SIG_ARC_SEAL, " i=1; a=rsa-sha256; "
		    "t=1700000000; cv=maybe; d=example.com; s=sel; b=" B_NINE,
		    DKIM_E_SYNTAX, 0, 0 },
		{ "Seal without cv=", DKIM_SIG_ARC_SEAL, " i=1; a=rsa-sha256; "
		    "t=1700000000; d=example.com; s=sel; b=" B_NINE,
		    DKIM_E_SYNTAX, 0, 0 },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		size_t n = strlen(rows[i].value) + 32;
		char *text = malloc(n);
		struct dkim_msg *m = NULL;
		struct dkim_sig *s = NULL;
		char why[DKIM_WHY_MAX] = "";
		enum dkim_status st;

		snprintf(text, n, "X-Arc:%s\r\n\r\n", rows[i].value);
		cr_assert(dkim_msg_parse(text, strlen(text), NULL, &m, NULL, 0) ==
		    DKIM_OK);
		st = dkim_sig_parse(&m->fields[0], rows[i].kind, &s, why,
		    sizeof(why));
		cr_expect(st == rows[i].want, "%s: status got %d (%s), want %d",
		    rows[i].desc, st, why, rows[i].want);
		if (st == DKIM_OK && rows[i].want == DKIM_OK) {
			cr_expect(s->kind == rows[i].kind &&
			    s->instance == rows[i].instance,
			    "%s: kind/instance got %d/%u, want %d/%u",
			    rows[i].desc, s->kind, s->instance, rows[i].kind,
			    rows[i].instance);
			if (rows[i].kind == DKIM_SIG_ARC_SEAL)
				cr_expect(s->cv == rows[i].cv, "%s: cv got %d, "
				    "want %d", rows[i].desc, s->cv, rows[i].cv);
		}
		dkim_sig_free(s);
		dkim_msg_free(m);
		free(text);
	}
}
