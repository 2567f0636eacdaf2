/*
 * test_buf.c - the growable buffer with a ceiling, the base64 helpers
 * every signature and key record goes through, and the quoted-printable
 * decoder of DSN status parts.
 */
#include <criterion/criterion.h>

#include "unit.h"

Test(buf, appends_and_takes)
{
	struct dkim_buf b;
	char *p;
	size_t len = 99;

	dkim_buf_init(&b, 0);
	cr_expect(b.len == 0 && !b.failed, "init: len %zu failed %d", b.len,
	    b.failed);
	cr_expect(dkim_buf_add(&b, "ab", 2) && dkim_buf_addc(&b, 'c') &&
	    dkim_buf_adds(&b, "de") && dkim_buf_addf(&b, "%d-%s", 42, "x"));
	cr_expect(same(b.p, b.len, "abcde42-x") && b.p[b.len] == '\0',
	    "got \"%s\", want \"abcde42-x\" NUL-terminated", esc(b.p, b.len));
	dkim_buf_reset(&b);
	cr_expect(b.len == 0 && !b.failed, "reset: len %zu", b.len);
	dkim_buf_adds(&b, "kept");
	p = dkim_buf_take(&b, &len);
	cr_expect(p != NULL && len == 4 && strcmp(p, "kept") == 0,
	    "take: got \"%s\"/%zu, want \"kept\"/4", p ? p : "(null)", len);
	cr_expect(b.len == 0 && b.p == NULL, "take: the buffer must be reset");
	free(p);
	dkim_buf_free(&b);
	dkim_buf_free(&b);	/* twice is harmless after reset */
}

Test(buf, ceiling_fails_and_sticks)
{
	static const struct {
		size_t max;
		const char *adds[4];
		bool want_failed;
		const char *want;	/* content when not failed */
	} rows[] = {
		{ 8, { "1234", "5678" }, false, "12345678" },
		{ 8, { "1234", "56789" }, true, NULL },
		{ 8, { "123456789", "a" }, true, NULL },
		{ 4, { "12", "345", "6" }, true, NULL },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct dkim_buf b;
		bool all = true;

		dkim_buf_init(&b, rows[i].max);
		for (size_t k = 0; k < 4 && rows[i].adds[k]; k++)
			all = dkim_buf_adds(&b, rows[i].adds[k]) && all;
		cr_expect(b.failed == rows[i].want_failed && all ==
		    !rows[i].want_failed, "row %zu (max %zu): failed got %d "
		    "(appends ok %d), want %d", i, rows[i].max, b.failed, all,
		    rows[i].want_failed);
		if (!rows[i].want_failed)
			cr_expect(same(b.p, b.len, rows[i].want), "row %zu: got "
			    "\"%s\", want \"%s\"", i, esc(b.p, b.len),
			    rows[i].want);
		else
			cr_expect(!dkim_buf_adds(&b, "") || b.failed,
			    "row %zu: appends after a failure must fail", i);
		cr_expect(b.len <= rows[i].max, "row %zu: len %zu over the "
		    "ceiling %zu", i, b.len, rows[i].max);
		dkim_buf_free(&b);
	}
}

Test(buf, base64_round_trip)
{
	static const struct {
		const char *raw;
		const char *b64;
	} rows[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },	/* RFC 4648 §10 */
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		char *enc = dkim_b64_encode((const unsigned char *)rows[i].raw,
		    strlen(rows[i].raw));
		size_t n = 99;
		unsigned char *dec = dkim_b64_decode(rows[i].b64,
		    strlen(rows[i].b64), &n);

		cr_expect(enc != NULL && strcmp(enc, rows[i].b64) == 0,
		    "encode \"%s\": got \"%s\", want \"%s\"", rows[i].raw,
		    enc ? enc : "(null)", rows[i].b64);
		cr_expect(dec != NULL && same(dec, n, rows[i].raw),
		    "decode \"%s\": got \"%s\", want \"%s\"", rows[i].b64,
		    dec ? esc(dec, n) : "(null)", rows[i].raw);
		free(enc);
		free(dec);
	}
}

Test(buf, base64_decode_fws_and_errors)
{
	static const struct {
		const char *in;
		const char *want;	/* NULL: must fail */
	} rows[] = {
		{ "Zm9v YmFy", "foobar" },
		{ "Zm9v\r\n YmFy", "foobar" },
		{ " \tZm9vYg= =", "foob" },
		{ "Zm9vYg==\r\n ", "foob" },
		{ "Zm9v!mFy", NULL },
		{ "Zm9vY", NULL },		/* not a multiple of 4 */
		{ "Zm=vYmFy", NULL },		/* padding in the middle */
		{ "Zm9vY===", NULL },		/* three pad characters */
		{ "Zm9v-_Fy", NULL },		/* base64url is not base64 */
		{ "Zm9v\x80mFy", NULL },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		size_t n = 0;
		unsigned char *dec = dkim_b64_decode(rows[i].in,
		    strlen(rows[i].in), &n);

		if (rows[i].want == NULL)
			cr_expect(dec == NULL, "decode \"%s\": got \"%s\", want "
			    "failure", escs(rows[i].in), esc(dec, n));
		else
			cr_expect(dec != NULL && same(dec, n, rows[i].want),
			    "decode \"%s\": got \"%s\", want \"%s\"",
			    escs(rows[i].in), dec ? esc(dec, n) : "(null)",
			    rows[i].want);
		free(dec);
	}
}

/*
 * Whole groups of four are decoded at once and everything else byte by
 * byte; the two must agree wherever a group boundary falls. For every
 * offset of a 48-byte value's encoding: FWS inserted there is skipped, a
 * stray byte there is refused, and '=' there is refused unless it is
 * padding at the end.
 */
Test(buf, base64_decode_every_offset)
{
	static const char *fws[] = { " ", "\t", "\r\n ", "  \r\n\t" };
	unsigned char raw[48];
	char *enc, in[128];
	size_t elen, i, f, n;
	unsigned char *dec;

	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)(i * 37 + 11);
	enc = dkim_b64_encode(raw, sizeof(raw) - 1);	/* ends in "=" */
	cr_assert(enc != NULL);
	elen = strlen(enc);
	for (i = 0; i <= elen; i++) {
		for (f = 0; f < NELEM(fws); f++) {
			snprintf(in, sizeof(in), "%.*s%s%s", (int)i, enc,
			    fws[f], enc + i);
			dec = dkim_b64_decode(in, strlen(in), &n);
			cr_expect(dec != NULL && n == sizeof(raw) - 1 &&
			    memcmp(dec, raw, n) == 0, "FWS \"%s\" at offset "
			    "%zu: got %s, want the 47 bytes", escs(fws[f]), i,
			    dec ? "other bytes" : "failure");
			free(dec);
		}
		if (i == elen)
			break;
		snprintf(in, sizeof(in), "%s", enc);
		in[i] = '!';
		dec = dkim_b64_decode(in, elen, &n);
		cr_expect(dec == NULL, "'!' at offset %zu: got %zu bytes, "
		    "want failure", i, n);
		free(dec);
		in[i] = '=';
		dec = dkim_b64_decode(in, elen, &n);
		cr_expect((dec != NULL) == (i >= elen - 2), "'=' at offset "
		    "%zu of %zu: got %s, want %s", i, elen, dec ? "success" :
		    "failure", i >= elen - 2 ? "success" : "failure");
		free(dec);
	}
	free(enc);
}

Test(buf, qp_decode)
{
	static const struct {
		const char *in;
		const char *want;	/* NULL: must fail */
		size_t bad_line;	/* when it fails */
	} rows[] = {
		{ "", "", 0 },
		{ "plain text\r\n", "plain text\r\n", 0 },
		{ "a=3Db =3d =C3=a9\r\n", "a=b = \xc3\xa9" "\r\n", 0 },
		{ "soft=\r\nbreak\r\n", "softbreak\r\n", 0 },
		{ "soft=\nLF\n", "softLF\n", 0 },
		{ "pad   \t\r\nmore =  \r\nend", "pad\r\nmore end", 0 },
		{ "last=", "last", 0 },
		{ "=20\r\n", " \r\n", 0 },	/* an encoded space stays */
		{ "a=b\r\n", NULL, 1 },
		{ "ok\r\n=4\r\n", NULL, 2 },
		{ "ok\nok\nx=G0\n", NULL, 3 },
		{ "=\x80" "A", NULL, 1 },
		{ "==\r\n", NULL, 1 },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		size_t n = 0, bad = 99;
		char *dec = dkim_qp_decode(rows[i].in, strlen(rows[i].in), &n,
		    &bad);

		if (rows[i].want == NULL)
			cr_expect(dec == NULL && bad == rows[i].bad_line,
			    "decode \"%s\": got \"%s\" (line %zu), want a "
			    "failure on line %zu", escs(rows[i].in),
			    dec ? esc(dec, n) : "(null)", bad,
			    rows[i].bad_line);
		else
			cr_expect(dec != NULL && same(dec, n,
			    rows[i].want), "decode \"%s\": got \"%s\", want "
			    "\"%s\"", escs(rows[i].in), dec ?
			    esc(dec, n) : "(null)",
			    escs(rows[i].want));
		free(dec);
	}
	for (int c = 0; c < 256; c++) {
		int want = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
		    c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		cr_expect_eq(dkim_hex_digit((char)c), want, "dkim_hex_digit(%d): "
		    "got %d, want %d", c, dkim_hex_digit((char)c), want);
	}
}
