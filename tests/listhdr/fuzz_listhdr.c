/*
 * fuzz_listhdr.c - libFuzzer target for policy/listhdr.c.
 *
 * The first byte of an input chooses one of four option sets and maybe an
 * output ceiling; the rest is the message. Besides "no crash, no leak, no
 * overread" (ASan), it holds the module to the promises of listhdr.h and
 * traps when one breaks:
 *   - with valid options and no ceiling, listhdr_apply fails only when
 *     dkim_msg_parse refuses the message; with a ceiling, it never writes
 *     past it;
 *   - on success the output parses, its body is the message's byte for
 *     byte, and the header fields the options do not touch (all but
 *     Subject when tagging, From and X-Original-From when rewriting,
 *     Reply-To when the list replaces or adds it, List-Id, List-Post,
 *     List-Unsubscribe(-Post), Precedence) are the message's, byte for
 *     byte and in the same order; listhdr_has_list_id sees our List-Id;
 *   - for each Subject value of the message, and for the input itself as
 *     a value: when listhdr_subject adds the tag, listhdr_untag_subject
 *     gives a value that tags to the same bytes, and gives the original
 *     back when it had no folding and began with white space;
 *   - listhdr_has_list_id does not crash on anything.
 * The same function runs in every ctest through fuzz_replay.c over
 * fuzz-corpus/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "listhdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define NSETS		4
#define SUBJECTS_MAX	4	/* Subject fields of one message tried */
#define RAW_VALUE_MAX	4096	/* octets of the input tried as a value */

static const struct listhdr_opts sets[NSETS] = {
	{ "announce@lists.example", "Announce", NULL, "[announce]", true,
	    LISTHDR_REPLY_LIST, "announce-unsubscribe@lists.example",
	    "https://lists.example/u/announce" },
	{ "dev.team@lists.example", NULL,
	    "Dev \"team\" <dev.team.lists.example>", NULL, false,
	    LISTHDR_REPLY_NONE, NULL, NULL },
	{ "x+y@lists.example", "\xc3\x84nnounce \xc3\xbcnd so", NULL,
	    "[a b]", true, LISTHDR_REPLY_AUTHOR,
	    "mailto:x-unsub@lists.example?subject=unsub", NULL },
	{ "l@l.example", NULL, NULL, "[L]", false, LISTHDR_REPLY_AUTHOR, NULL,
	    "https://l.example/u" },
};

/* The fields listhdr_apply may write, whatever the options. */
static const char *const always_ours[] = { "List-Id", "List-Post",
    "List-Unsubscribe", "List-Unsubscribe-Post", "Precedence" };

/* The output may hold an X-Original-From for every From and nine new
 * fields; an X-Original-From line is 11 octets longer than its From. */
static const struct dkim_limits out_lim = { DKIM_DEFAULT_MAX_LINE + 64,
    2 * DKIM_DEFAULT_MAX_HEADERS + 16,
    2 * DKIM_DEFAULT_MAX_HEADER_BYTES + 65536 };

/* has_field - does m carry a field called name? */
static bool
has_field(const struct dkim_msg *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nfields; i++)
		if (dkim_field_is(&m->fields[i], name))
			return true;
	return false;
}

/* touched - may listhdr_apply with o change or add fields named like f,
 * for a message that has_reply (carries a Reply-To) or not? */
static bool
touched(const struct listhdr_opts *o, bool has_reply,
    const struct dkim_field *f)
{
	size_t i;

	for (i = 0; i < sizeof(always_ours) / sizeof(always_ours[0]); i++)
		if (dkim_field_is(f, always_ours[i]))
			return true;
	if (dkim_field_is(f, "Subject"))
		return o->subject_tag != NULL;
	if (dkim_field_is(f, "From") || dkim_field_is(f, "X-Original-From"))
		return o->rewrite_from;
	if (dkim_field_is(f, "Reply-To"))
		return o->reply_to == LISTHDR_REPLY_LIST ||
		    (o->reply_to == LISTHDR_REPLY_AUTHOR && o->rewrite_from &&
		    !has_reply);
	return false;
}

/* next_kept - the index of the first field from i on that o leaves
 * alone, or m->nfields. */
static size_t
next_kept(const struct listhdr_opts *o, bool has_reply,
    const struct dkim_msg *m, size_t i)
{
	while (i < m->nfields && touched(o, has_reply, &m->fields[i]))
		i++;
	return i;
}

/* check_output - the promises about a successful listhdr_apply. */
static void
check_output(const struct listhdr_opts *o, const struct dkim_msg *in,
    const struct dkim_buf *out)
{
	struct dkim_msg *m = NULL;
	bool has_reply = has_field(in, "Reply-To");
	size_t i, j;

	CHECK(dkim_msg_parse(out->p, out->len, &out_lim, &m, NULL, 0) ==
	    DKIM_OK);
	CHECK(m->body_len == in->body_len &&
	    memcmp(m->body, in->body, in->body_len) == 0);
	i = next_kept(o, has_reply, in, 0);
	j = next_kept(o, has_reply, m, 0);
	while (i < in->nfields && j < m->nfields) {
		const struct dkim_field *a = &in->fields[i], *b = &m->fields[j];

		CHECK(a->raw_len == b->raw_len &&
		    memcmp(a->raw, b->raw, a->raw_len) == 0);
		i = next_kept(o, has_reply, in, i + 1);
		j = next_kept(o, has_reply, m, j + 1);
	}
	CHECK(i == in->nfields && j == m->nfields);
	dkim_msg_free(m);
	CHECK(listhdr_has_list_id(o, out->p, out->len));
}

/* check_subject - the tag and its reverse on one Subject value. */
static void
check_subject(const char *tag, const char *v, size_t n)
{
	struct dkim_buf t, u, t2;
	bool changed, ch2;

	dkim_buf_init(&t, 0);
	dkim_buf_init(&u, 0);
	dkim_buf_init(&t2, 0);
	if (!listhdr_subject(tag, v, n, &t, &changed) || !changed)
		goto done;
	CHECK(listhdr_untag_subject(tag, t.p, t.len, &u));
	CHECK(listhdr_subject(tag, u.len ? u.p : "", u.len, &t2, &ch2));
	CHECK(ch2 && t2.len == t.len && memcmp(t2.p, t.p, t.len) == 0);
	if (n > 0 && (v[0] == ' ' || v[0] == '\t') &&
	    memchr(v, '\r', n) == NULL)
		CHECK(u.len == n && memcmp(u.p, v, n) == 0);
done:
	dkim_buf_free(&t);
	dkim_buf_free(&u);
	dkim_buf_free(&t2);
}

/* one - listhdr_apply with o on (msg, len) and the checks. */
static void
one(const struct listhdr_opts *o, const char *msg, size_t len, size_t max)
{
	const char *tag = o->subject_tag ? o->subject_tag : "[announce]";
	struct dkim_msg *in = NULL;
	struct dkim_buf out;
	char why[128] = "";
	size_t i, k = 0;
	bool ok, parses;

	parses = dkim_msg_parse(msg, len, NULL, &in, NULL, 0) == DKIM_OK;
	dkim_buf_init(&out, max);
	ok = listhdr_apply(o, msg, len, &out, why, sizeof(why));
	CHECK(strnlen(why, sizeof(why)) < sizeof(why));
	if (!ok)
		CHECK(!parses || max != 0);
	else {
		CHECK(parses);
		CHECK(max == 0 || out.len <= max);
		check_output(o, in, &out);
	}
	for (i = 0; parses && i < in->nfields && k < SUBJECTS_MAX; i++) {
		const struct dkim_field *f = &in->fields[i];

		if (!dkim_field_is(f, "Subject"))
			continue;
		check_subject(tag, f->raw + f->value_off,
		    f->raw_len - f->value_off);
		k++;
	}
	check_subject(tag, msg, len < RAW_VALUE_MAX ? len : RAW_VALUE_MAX);
	(void)listhdr_has_list_id(o, msg, len);
	dkim_msg_free(in);
	dkim_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned sel;
	size_t n, max = 0;
	char *p;

	if ((p = fuzz_input(data, size, &sel, &n)) == NULL)
		return 0;
	/* Bit 2: an output ceiling near the size of the message. */
	if (sel & 4)
		max = n + (sel >> 3) * 24 + 1;
	one(&sets[sel % NSETS], p, n, max);
	free(p);
	return 0;
}
