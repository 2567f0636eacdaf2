/*
 * test_verp.c - the VERP half of list bounces in policy/rules.c: the
 * sender each member's copy goes out from, its decoding back to the
 * member, and which recipients rules_match takes for a list's bounce
 * address (those relay/rcpt.c then accepts from anyone).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "rules.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static char *members[] = { "m1@dest.example", "x+tag=1@dest.example",
    "o'neil!x@dest.example", "UP.Case@Dest.Example" };
static struct rules_list list = { .addr = "talk@lists.example",
    .name = "talk", .members = members, .nmembers = 4,
    .from_rewrite = RULES_FROM_DMARC, .reply_to = RULES_REPLY_AUTHOR,
    .bounces = "talk-bounces@lists.example", .verp = true };

/* 64 octets of local part: talk-bounces+ is 13, "=dest.example" 13 */
#define L38 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

Test(verp, senders)
{
	static const struct { const char *member, *want; bool verp; } t[] = {
		{ "m1@dest.example",
		    "talk-bounces+m1=dest.example@lists.example", true },
		{ "x+tag=1@dest.example",
		    "talk-bounces+x+2Btag+3D1=dest.example@lists.example",
		    true },
		{ "o'neil!x@dest.example",
		    "talk-bounces+o+27neil+21x=dest.example@lists.example",
		    true },
		{ L38 "@dest.example",
		    "talk-bounces+" L38 "=dest.example@lists.example", true },
		{ L38 "a@dest.example", "talk-bounces@lists.example", true },
		{ "m1@dest.example", "talk-bounces@lists.example", false },
		{ "no-at-sign", "talk-bounces@lists.example", true },
	};
	char got[RULES_ADDR_MAX], back[RULES_ADDR_MAX];
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		list.verp = t[i].verp;
		rules_list_sender(&list, t[i].member, got, sizeof(got));
		cr_expect_str_eq(got, t[i].want, "sender for %s (verp %d): got "
		    "%s, want %s", t[i].member, t[i].verp, got, t[i].want);
		if (strcmp(got, list.bounces) == 0)
			continue;
		cr_expect(strchr(got, '@') - got <= RULES_LOCAL_MAX,
		    "%s: local part over 64 octets", got);
		cr_expect(rules_verp_member(&list, got, back, sizeof(back)),
		    "%s does not decode", got);
		cr_expect_str_eq(back, t[i].member, "%s decodes to %s, want %s",
		    got, back, t[i].member);
	}
	list.verp = true;
}

Test(verp, decode)
{
	static const struct { const char *rcpt, *want; } t[] = {
		{ "talk-bounces+m1=dest.example@lists.example",
		    "m1@dest.example" },
		{ "TALK-BOUNCES+m1=DEST.example@Lists.Example",
		    "m1@DEST.example" },
		{ "talk-bounces+x+2btag+3d1=dest.example@lists.example",
		    "x+tag=1@dest.example" },
		{ "talk-bounces@lists.example", NULL },
		{ "talk-bounces+@lists.example", NULL },
		{ "talk-bounces+m1@lists.example", NULL },
		{ "talk-bounces+=dest.example@lists.example", NULL },
		{ "talk-bounces+m1=@lists.example", NULL },
		{ "talk-bounces+a=b=c@lists.example", NULL },
		{ "talk-bounces+a+2=b@lists.example", NULL },
		{ "talk-bounces+a+ZZ=b@lists.example", NULL },
		{ "talk-bounces+a+00=b@lists.example", NULL },
		{ "talk-bounces+a'b=c@lists.example", NULL },
		{ "talk-bounces+m1=dest.example@other.example", NULL },
		{ "talk-bouncesX+m1=dest.example@lists.example", NULL },
	};
	char got[RULES_ADDR_MAX];
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		bool ok = rules_verp_member(&list, t[i].rcpt, got, sizeof(got));

		cr_expect_eq(ok, t[i].want != NULL, "%s: decoded %d, want %d",
		    t[i].rcpt, ok, t[i].want != NULL);
		if (ok && t[i].want != NULL)
			cr_expect_str_eq(got, t[i].want, "%s: got %s, want %s",
			    t[i].rcpt, got, t[i].want);
	}
	/* no room */
	cr_expect(!rules_verp_member(&list,
	    "talk-bounces+m1=dest.example@lists.example", got, 8));
}

Test(verp, match)
{
	static const struct { const char *rcpt; enum rules_kind kind;
	    const char *addr; } t[] = {
		{ "talk@lists.example", RULE_LIST, "" },
		{ "talk-bounces@lists.example", RULE_LIST_BOUNCE, "" },
		{ "Talk-Bounces@LISTS.example", RULE_LIST_BOUNCE, "" },
		{ "talk-bounces+m1=dest.example@lists.example",
		    RULE_LIST_BOUNCE, "m1@dest.example" },
		{ "talk-bounces+anything@lists.example", RULE_LIST_BOUNCE,
		    "" },
		{ "talk-bounces+@lists.example", RULE_NONE, "" },
		{ "talk-bounces@other.example", RULE_NONE, "" },
		{ "talk-bouncesx@lists.example", RULE_NONE, "" },
		{ "other-bounces@lists.example", RULE_NONE, "" },
		{ "talk+x@lists.example", RULE_NONE, "" },
	};
	struct rules r;
	struct rules_match m;
	size_t i;

	memset(&r, 0, sizeof(r));
	r.lists = &list;
	r.nlists = 1;
	for (i = 0; i < NELEM(t); i++) {
		rules_match(&r, t[i].rcpt, 0, &m);
		cr_expect_eq(m.kind, t[i].kind, "%s: kind %d, want %d",
		    t[i].rcpt, (int)m.kind, (int)t[i].kind);
		cr_expect_str_eq(m.addr, t[i].addr, "%s: addr \"%s\", want "
		    "\"%s\"", t[i].rcpt, m.addr, t[i].addr);
	}
}
