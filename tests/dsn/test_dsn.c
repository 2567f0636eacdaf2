/*
 * test_dsn.c - policy/dsn.c: reports in the shapes real MTAs send them
 * (Postfix, Exim, Gmail, Microsoft 365 with its extra parts), status parts
 * in base64 and quoted-printable (whole reports too), folding and
 * line ends, reports that are not DSNs, malformed and cut-short ones, and
 * the caps. Each row: the message, the status wanted, and the fields of
 * the first (and, when given, the last) recipient group.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkim.h"
#include "dsn.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The fields of one group wanted; NULL: not checked. */
struct want_rcpt {
	const char *final_type, *final_addr, *orig_addr, *action, *status,
	    *diag_type, *diag;
};

struct row {
	const char *name;
	const char *msg;
	enum dsn_rc rc;
	const char *why_has;		/* a piece of the reason, or NULL */
	size_t nrcpt;			/* DSN_OK: groups wanted */
	struct want_rcpt first;
	struct want_rcpt last;		/* final_addr NULL: not checked */
	const char *mta;		/* Reporting-MTA, or NULL */
};

#define HDR(ct) \
	"From: MAILER-DAEMON@mx.example.net\r\n" \
	"To: list-bounces+m1=dest.example@lists.example\r\n" \
	"Subject: Undelivered Mail Returned to Sender\r\n" \
	"MIME-Version: 1.0\r\n" \
	"Content-Type: " ct "\r\n\r\n"

#define POSTFIX HDR("multipart/report; report-type=delivery-status;\r\n" \
	"\tboundary=\"8A1B2C.1700000000/mx.example.net\"") \
	"This is a MIME-encapsulated message.\r\n\r\n" \
	"--8A1B2C.1700000000/mx.example.net\r\n" \
	"Content-Description: Notification\r\n" \
	"Content-Type: text/plain; charset=us-ascii\r\n\r\n" \
	"I'm sorry to have to inform you that your message could not\r\n" \
	"be delivered to one or more recipients.\r\n\r\n" \
	"--8A1B2C.1700000000/mx.example.net\r\n" \
	"Content-Description: Delivery report\r\n" \
	"Content-Type: message/delivery-status\r\n\r\n" \
	"Reporting-MTA: dns; mx.example.net\r\n" \
	"X-Postfix-Queue-ID: 8A1B2C\r\n" \
	"X-Postfix-Sender: rfc822; list-bounces+m1=dest.example@lists.example\r\n" \
	"Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000 (UTC)\r\n\r\n" \
	"Final-Recipient: rfc822; m1@dest.example\r\n" \
	"Original-Recipient: rfc822;m1@dest.example\r\n" \
	"Action: failed\r\n" \
	"Status: 5.1.1\r\n" \
	"Remote-MTA: dns; in.dest.example\r\n" \
	"Diagnostic-Code: smtp; 550 5.1.1 <m1@dest.example>: Recipient address\r\n" \
	"    rejected: User unknown in virtual mailbox table\r\n\r\n" \
	"--8A1B2C.1700000000/mx.example.net\r\n" \
	"Content-Description: Undelivered Message Headers\r\n" \
	"Content-Type: text/rfc822-headers\r\n\r\n" \
	"From: alice@none.example\r\nSubject: hello\r\n\r\n" \
	"--8A1B2C.1700000000/mx.example.net--\r\n"

#define EXIM HDR("multipart/report; report-type=delivery-status; " \
	"boundary=1700000000-eximdsn-1804289383") \
	"--1700000000-eximdsn-1804289383\r\n" \
	"Content-type: text/plain; charset=us-ascii\r\n\r\n" \
	"This message was created automatically by mail delivery software.\r\n\r\n" \
	"--1700000000-eximdsn-1804289383\r\n" \
	"Content-type: message/delivery-status\r\n\r\n" \
	"Reporting-MTA: dns; exim.example.org\r\n\r\n" \
	"Action: failed\r\n" \
	"Final-Recipient: rfc822;m2@dest.example\r\n" \
	"Status: 5.0.0\r\n" \
	"Remote-MTA: dns; mx.dest.example\r\n" \
	"Diagnostic-Code: smtp; 550 No such user here\r\n\r\n" \
	"--1700000000-eximdsn-1804289383\r\n" \
	"Content-type: message/rfc822\r\n\r\n" \
	"From: alice@none.example\r\n\r\nbody\r\n\r\n" \
	"--1700000000-eximdsn-1804289383--\r\n"

#define GMAIL HDR("multipart/report; boundary=\"000000000000a1b2c3\";\r\n" \
	" report-type=delivery-status") \
	"--000000000000a1b2c3\r\n" \
	"Content-Type: multipart/related; boundary=\"000000000000d4e5f6\"\r\n\r\n" \
	"--000000000000d4e5f6\r\n" \
	"Content-Type: text/html; charset=\"UTF-8\"\r\n\r\n" \
	"<html>Address not found</html>\r\n" \
	"--000000000000d4e5f6--\r\n" \
	"--000000000000a1b2c3\r\n" \
	"Content-Type: message/delivery-status\r\n\r\n" \
	"Reporting-MTA: dns; googlemail.com\r\n" \
	"Received-From-MTA: dns; alice@none.example\r\n" \
	"Arrival-Date: Tue, 14 Nov 2023 14:13:20 -0800 (PST)\r\n" \
	"X-Original-Message-ID: <x@none.example>\r\n\r\n" \
	"Final-Recipient: rfc822; nobody.here@gmail.example\r\n" \
	"Action: failed\r\n" \
	"Status: 5.1.1\r\n" \
	"Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to\r\n" \
	" reach does not exist. Please try\r\n" \
	"\t550-5.1.1 double-checking the recipient's email address for typos\r\n" \
	" 550 5.1.1 https://support.example/mail/?p=NoSuchUser x1si\r\n" \
	"Last-Attempt-Date: Tue, 14 Nov 2023 14:13:21 -0800 (PST)\r\n\r\n" \
	"--000000000000a1b2c3\r\n" \
	"Content-Type: message/rfc822\r\n\r\n" \
	"From: alice@none.example\r\n\r\nhi\r\n" \
	"--000000000000a1b2c3--\r\n"

/* Exchange Online: the explanation as multipart/alternative, the status
 * part in base64 here, the returned headers last. */
#define MSFT_STATUS \
	"Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.example.com\r\n" \
	"Received-From-MTA: dns;mail.none.example\r\n" \
	"Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\n" \
	"Final-Recipient: rfc822;m3@contoso.example\r\n" \
	"Action: failed\r\n" \
	"Status: 5.1.10\r\n" \
	"Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; " \
	"Recipient not found by SMTP address lookup\r\n" \
	"X-Display-Name: M Three\r\n"

static const char MSFT_HEAD[] = HDR("multipart/report;\r\n"
	"\tboundary=\"_000_AM0PR_\";\r\n\treport-type=delivery-status")
	"--_000_AM0PR_\r\n"
	"Content-Type: multipart/alternative;\r\n"
	"\tboundary=\"_002_AM0PR_\"\r\n\r\n"
	"--_002_AM0PR_\r\n"
	"Content-Type: text/plain; charset=\"us-ascii\"\r\n\r\n"
	"Your message to m3@contoso.example couldn't be delivered.\r\n\r\n"
	"--_002_AM0PR_\r\n"
	"Content-Type: text/html; charset=\"us-ascii\"\r\n\r\n"
	"<html><b>m3</b> wasn't found at contoso.example.</html>\r\n\r\n"
	"--_002_AM0PR_--\r\n\r\n"
	"--_000_AM0PR_\r\n"
	"Content-Type: message/delivery-status\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\n";

static const char MSFT_TAIL[] = "\r\n"
	"--_000_AM0PR_\r\n"
	"Content-Type: message/rfc822\r\n\r\n"
	"From: alice@none.example\r\nSubject: hi\r\n\r\nhello\r\n\r\n"
	"--_000_AM0PR_--\r\n";

/* A report in one status part body, with the usual wrapping. */
#define REPORT(status) HDR("multipart/report; report-type=delivery-status; " \
	"boundary=b") "--b\r\nContent-Type: text/plain\r\n\r\nsorry\r\n" \
	"--b\r\nContent-Type: message/delivery-status\r\n\r\n" status \
	"\r\n--b--\r\n"

#define GROUP(addr, act, st) "Final-Recipient: rfc822; " addr "\r\n" \
	"Action: " act "\r\nStatus: " st "\r\n"

/* A report whose status part is in a transfer encoding. */
#define REPORT_CTE(cte, status) HDR("multipart/report; " \
	"report-type=delivery-status; boundary=b") \
	"--b\r\nContent-Type: text/plain\r\n\r\nsorry\r\n" \
	"--b\r\nContent-Type: message/delivery-status\r\n" \
	"Content-Transfer-Encoding: " cte "\r\n\r\n" status "\r\n--b--\r\n"

/* The base64 of "Reporting-MTA: dns; b64.example", then a group for
 * b64@dest.example (5.1.1), CRLF lines; wrapped at 40 columns. */
#define B64_STATUS "UmVwb3J0aW5nLU1UQTogZG5zOyBiNjQuZXhhbXBs\r\n" \
	"ZQ0KDQpGaW5hbC1SZWNpcGllbnQ6IHJmYzgyMjsg\r\n" \
	"YjY0QGRlc3QuZXhhbXBsZQ0KQWN0aW9uOiBmYWls\r\n" \
	"ZWQNClN0YXR1czogNS4xLjENCg==\r\n"

/* The base64 of a whole multipart/report body (boundary w): a text part,
 * then a status part for whole@dest.example (5.2.2). */
#define B64_WHOLE "LS13DQpDb250ZW50LVR5cGU6IHRleHQvcGxhaW4NCg0Kc29ycnkNCi0tdw0K\r\n" \
	"Q29udGVudC1UeXBlOiBtZXNzYWdlL2RlbGl2ZXJ5LXN0YXR1cw0KDQpSZXBv\r\n" \
	"cnRpbmctTVRBOiBkbnM7IHdob2xlLmV4YW1wbGUNCg0KRmluYWwtUmVjaXBp\r\n" \
	"ZW50OiByZmM4MjI7IHdob2xlQGRlc3QuZXhhbXBsZQ0KQWN0aW9uOiBmYWls\r\n" \
	"ZWQNClN0YXR1czogNS4yLjINCg0KLS13LS0NCg==\r\n"

#define QP_GROUP "Reporting-MTA: dns; qp.example\r\n\r\n" \
	"Final-Recipient: rfc822; qp@dest.example\r\nAction: failed\r\n" \
	"Status: 5.1.1\r\n"

static const struct row rows[] = {
	{ "postfix", POSTFIX, DSN_OK, NULL, 1,
	    { "rfc822", "m1@dest.example", "m1@dest.example", "failed",
	    "5.1.1", "smtp", "550 5.1.1 <m1@dest.example>: Recipient address "
	    "rejected: User unknown in virtual mailbox table" },
	    { NULL }, "mx.example.net" },
	{ "exim (fields in another order)", EXIM, DSN_OK, NULL, 1,
	    { "rfc822", "m2@dest.example", "", "failed", "5.0.0", "smtp",
	    "550 No such user here" }, { NULL }, "exim.example.org" },
	{ "gmail (folded diagnostic, html explanation)", GMAIL, DSN_OK, NULL,
	    1, { "rfc822", "nobody.here@gmail.example", "", "failed", "5.1.1",
	    "smtp", "550-5.1.1 The email account that you tried to reach does "
	    "not exist. Please try 550-5.1.1 double-checking the recipient's "
	    "email address for typos 550 5.1.1 "
	    "https://support.example/mail/?p=NoSuchUser x1si" }, { NULL },
	    "googlemail.com" },
	{ "two recipients, a delay and a failure",
	    REPORT("Reporting-MTA: dns; mx.example.net\r\n\r\n"
	    GROUP("a@dest.example", "delayed", "4.4.1") "\r\n"
	    GROUP("<b@dest.example>", "Failed (permanent)", "5.2.2 (mailbox full)")),
	    DSN_OK, NULL, 2,
	    { "rfc822", "a@dest.example", "", "delayed", "4.4.1", "", "" },
	    { "rfc822", "b@dest.example", "", "failed", "5.2.2" } },
	{ "LF line ends, blank lines between groups",
	    "Content-Type: multipart/report; boundary=x\n\n--x\n"
	    "Content-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; lf.example\n\n\n\n"
	    "Final-Recipient: rfc822; lf@dest.example\nAction: failed\n"
	    "Status: 5.0.0\n\n--x--\n", DSN_OK, NULL, 1,
	    { "rfc822", "lf@dest.example", "", "failed", "5.0.0" }, { NULL },
	    "lf.example" },
	{ "a tab folded into kept strings becomes a space",
	    REPORT("Reporting-MTA: dns; mx.example.net\r\n\t(Postfix)\r\n\r\n"
	    "Final-Recipient: rfc822; tab@dest.example\r\n\t(folded)\r\n"
	    "Action: failed\r\nStatus: 5.0.0\r\n"), DSN_OK, NULL, 1,
	    { "rfc822", "tab@dest.example (folded)", "", "failed", "5.0.0" },
	    { NULL }, "mx.example.net (Postfix)" },
	{ "no per-message group, untyped address",
	    REPORT("Final-Recipient: plain@dest.example\r\nAction: failed\r\n"
	    "Status: 5.1.1\r\n"), DSN_OK, NULL, 1,
	    { "", "plain@dest.example", "", "failed", "5.1.1" } },
	{ "message/global-delivery-status (RFC 6533)",
	    HDR("multipart/report; boundary=g") "--g\r\n"
	    "Content-Type: message/global-delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; u.example\r\n\r\n"
	    GROUP("j\xc3\xbcrgen@dest.example", "failed", "5.1.1")
	    "--g--\r\n", DSN_OK, NULL, 1,
	    { "rfc822", "j\xc3\xbcrgen@dest.example", "", "failed", "5.1.1" } },
	{ "a report inside a forward (multipart/mixed)",
	    HDR("multipart/mixed; boundary=outer") "--outer\r\n"
	    "Content-Type: text/plain\r\n\r\nfyi\r\n--outer\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;"
	    " boundary=inner\r\n\r\n--inner\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; in.example\r\n\r\n"
	    GROUP("fw@dest.example", "failed", "5.7.1")
	    "--inner--\r\n--outer--\r\n", DSN_OK, NULL, 1,
	    { "rfc822", "fw@dest.example", "", "failed", "5.7.1" } },
	{ "a report cut short: no close delimiter",
	    HDR("multipart/report; boundary=b") "--b\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; cut.example\r\n\r\n"
	    GROUP("cut@dest.example", "failed", "5.0.0"), DSN_OK, NULL, 1,
	    { "rfc822", "cut@dest.example", "", "failed", "5.0.0" } },
	{ "a report cut in its recipient group",
	    HDR("multipart/report; boundary=b") "--b\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; cut.example\r\n\r\n"
	    "Final-Recipient: rfc822; cut@dest.example\r\nAction: fa",
	    DSN_E_MALFORMED, "Action" },
	{ "the header only", HDR("multipart/report; boundary=b"),
	    DSN_E_NOT_DSN, "delivery-status" },

	{ "a folded line as long as the field name before the colon",
	    REPORT("Final-Recipient: rfc822; fold@dest.example\r\n"
	    "Action: failed\r\nStatus: 5.1.1\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 <fold@dest.example>: refused\r\n"
	    " 15 octets here\r\n"), DSN_OK, NULL, 1,
	    { "rfc822", "fold@dest.example", "", "failed", "5.1.1", "smtp",
	    "550 5.1.1 <fold@dest.example>: refused 15 octets here" } },

	/* Not DSNs */
	{ "an auto-reply", "From: bob@dest.example\r\nSubject: Out of office"
	    "\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n",
	    DSN_E_NOT_DSN, "delivery-status" },
	{ "empty input", "", DSN_E_NOT_DSN },
	{ "a report without its status part",
	    HDR("multipart/report; report-type=delivery-status; boundary=b")
	    "--b\r\nContent-Type: text/plain\r\n\r\nsorry\r\n--b--\r\n",
	    DSN_E_NOT_DSN },
	{ "a status part outside a report",
	    HDR("multipart/mixed; boundary=b") "--b\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n"
	    GROUP("x@dest.example", "failed", "5.0.0") "--b--\r\n",
	    DSN_E_NOT_DSN },
	{ "a status part as the whole message",
	    HDR("message/delivery-status")
	    GROUP("x@dest.example", "failed", "5.0.0"), DSN_E_NOT_DSN },
	{ "a report without a boundary",
	    HDR("multipart/report; report-type=delivery-status")
	    "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
	    GROUP("x@dest.example", "failed", "5.0.0") "--b--\r\n",
	    DSN_E_NOT_DSN },
	{ "a boundary that never comes",
	    HDR("multipart/report; boundary=zzz") "--b\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n"
	    GROUP("x@dest.example", "failed", "5.0.0") "--b--\r\n",
	    DSN_E_NOT_DSN },

	/* Malformed status parts */
	{ "no Status", REPORT("Final-Recipient: rfc822; x@dest.example\r\n"
	    "Action: failed\r\n"), DSN_E_MALFORMED, "no Status" },
	{ "no Final-Recipient", REPORT("Original-Recipient: rfc822; "
	    "x@dest.example\r\nAction: failed\r\nStatus: 5.0.0\r\n"),
	    DSN_E_MALFORMED, "no Final-Recipient" },
	{ "no Action", REPORT("Final-Recipient: rfc822; x@dest.example\r\n"
	    "Status: 5.0.0\r\n"), DSN_E_MALFORMED, "no Action" },
	{ "an unknown Action", REPORT(GROUP("x@dest.example", "bounced",
	    "5.0.0")), DSN_E_MALFORMED, "bounced" },
	{ "a Status of class 3", REPORT(GROUP("x@dest.example", "failed",
	    "3.0.0")), DSN_E_MALFORMED, "status code" },
	{ "a Status with four-digit detail", REPORT(GROUP("x@dest.example",
	    "failed", "5.1.1000")), DSN_E_MALFORMED, "status code" },
	{ "a Status that is text", REPORT(GROUP("x@dest.example", "failed",
	    "user unknown")), DSN_E_MALFORMED, "status code" },
	{ "an empty Final-Recipient address",
	    REPORT(GROUP("", "failed", "5.0.0")), DSN_E_MALFORMED, "empty" },
	{ "a line that is not a field",
	    REPORT(GROUP("x@dest.example", "failed", "5.0.0")
	    "this is not a field\r\n"), DSN_E_MALFORMED, "not a field" },
	{ "only the per-message group",
	    REPORT("Reporting-MTA: dns; x.example\r\n"), DSN_E_MALFORMED,
	    "no per-recipient" },
	{ "an empty status part", REPORT(""), DSN_E_MALFORMED,
	    "no per-recipient" },
	{ "a status part in broken base64",
	    HDR("multipart/report; boundary=b") "--b\r\n"
	    "Content-Type: message/delivery-status\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n"
	    "--b--\r\n", DSN_E_MALFORMED, "base64" },
	/* Transfer encodings of the status part (and of a whole report) */
	{ "quoted-printable: soft breaks, =3D, lowercase hex, padding",
	    REPORT_CTE("quoted-printable", QP_GROUP
	    "Diagnostic-Code: smtp; 550 5.1.1 <qp@dest.example>: Recipient ad=\r\n"
	    "dress rejected: key=3Dvalue =3d lower =c3=a9t=C3=A9   \r\n"
	    "X-Padded: after a soft break =  \r\n"
	    " folded\r\n"), DSN_OK, NULL, 1,
	    { "rfc822", "qp@dest.example", "", "failed", "5.1.1", "smtp",
	    "550 5.1.1 <qp@dest.example>: Recipient address rejected: "
	    "key=value = lower \xc3\xa9t\xc3\xa9" }, { NULL }, "qp.example" },
	{ "quoted-printable, its name in another case with a comment",
	    REPORT_CTE("Quoted-Printable (gateway)", "Reporting-MTA: dns; q=\r\n"
	    "p.example\r\n\r\n" GROUP("qp2@dest.example", "failed", "5.0.0")),
	    DSN_OK, NULL, 1, { "rfc822", "qp2@dest.example", "", "failed",
	    "5.0.0" }, { NULL }, "qp.example" },
	{ "quoted-printable, LF lines", "Content-Type: multipart/report; "
	    "boundary=x\n\n--x\nContent-Type: message/delivery-status\n"
	    "Content-Transfer-Encoding: quoted-printable\n\n"
	    "Final-Recipient: rfc822; lf=\nqp@dest.example\nAction: failed\n"
	    "Status: 5.0.0\n\n--x--\n", DSN_OK, NULL, 1,
	    { "rfc822", "lfqp@dest.example", "", "failed", "5.0.0" } },
	{ "quoted-printable: = before a letter",
	    REPORT_CTE("quoted-printable", QP_GROUP "Diagnostic-Code: smtp; "
	    "550 a=b\r\n"), DSN_E_MALFORMED, "quoted-printable" },
	{ "quoted-printable: one hex digit, then the line end",
	    REPORT_CTE("quoted-printable", QP_GROUP "Diagnostic-Code: smtp; "
	    "550 =4\r\n"), DSN_E_MALFORMED, "line 6" },
	{ "quoted-printable: a bad second digit",
	    REPORT_CTE("quoted-printable", "Final-Recipient: rfc822; x=3G@d"
	    "\r\nAction: failed\r\nStatus: 5.0.0\r\n"), DSN_E_MALFORMED,
	    "line 1" },
	{ "quoted-printable: '=' as the last octet of the part",
	    HDR("multipart/report; boundary=b") "--b\r\n"
	    "Content-Type: message/delivery-status\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    QP_GROUP "=", DSN_OK, NULL, 1,
	    { "rfc822", "qp@dest.example", "", "failed", "5.1.1" } },
	{ "base64 in lines of 40", REPORT_CTE("base64", B64_STATUS), DSN_OK,
	    NULL, 1, { "rfc822", "b64@dest.example", "", "failed", "5.1.1" },
	    { NULL }, "b64.example" },
	{ "base64 named in uppercase, LF lines",
	    "Content-Type: multipart/report; boundary=b\n\n--b\n"
	    "Content-Type: message/delivery-status\n"
	    "Content-Transfer-Encoding: BASE64\n\n"
	    "UmVwb3J0aW5nLU1UQTogZG5zOyBiNjQuZXhhbXBs\n"
	    "ZQ0KDQpGaW5hbC1SZWNpcGllbnQ6IHJmYzgyMjsg\n"
	    "YjY0QGRlc3QuZXhhbXBsZQ0KQWN0aW9uOiBmYWls\n"
	    "ZWQNClN0YXR1czogNS4xLjENCg==\n--b--\n", DSN_OK, NULL, 1,
	    { "rfc822", "b64@dest.example", "", "failed", "5.1.1" } },
	{ "base64 with a character outside the alphabet",
	    REPORT_CTE("base64", "UmVwb3J0aW5nLU1UQTog*G5zOyBiNjQuZXhhbXBs\r\n"),
	    DSN_E_MALFORMED, "not valid base64" },
	{ "base64 with text after the padding",
	    REPORT_CTE("base64", "ZWQNClN0YXR1czogNS4xLjENCg==\r\nZWQN\r\n"),
	    DSN_E_MALFORMED, "not valid base64" },
	{ "base64 cut in a group of four",
	    REPORT_CTE("base64", "UmVwb3J0aW5nLU1UQT\r\n"),
	    DSN_E_MALFORMED, "not valid base64" },
	{ "the whole report in base64 (RFC 2045 §6.4 forbids it)",
	    HDR("multipart/report; report-type=delivery-status; boundary=w"
	    "\r\nContent-Transfer-Encoding: base64") B64_WHOLE, DSN_OK,
	    NULL, 1, { "rfc822", "whole@dest.example", "", "failed", "5.2.2" },
	    { NULL }, "whole.example" },
	{ "the whole report in quoted-printable (a soft break inside)",
	    HDR("multipart/report; boundary=\"=_w\"\r\n"
	    "Content-Transfer-Encoding: quoted-printable")
	    "--=3D_w\r\nContent-Type: message/delivery-status\r\n\r\n"
	    "Final-Recipient: rfc822; wh=\r\nole@dest.example\r\n"
	    "Action: failed\r\nStatus: 5.0.0\r\n--=3D_w--\r\n", DSN_OK, NULL, 1,
	    { "rfc822", "whole@dest.example", "", "failed", "5.0.0" } },
	{ "a whole report in broken base64",
	    HDR("multipart/report; boundary=w\r\n"
	    "Content-Transfer-Encoding: base64") "--w\r\n",
	    DSN_E_MALFORMED, "a multipart body is not valid base64" },
	{ "7bit and 8bit are read as they stand",
	    REPORT_CTE("8bit", GROUP("a=b@dest.example", "failed", "5.0.0")),
	    DSN_OK, NULL, 1, { "rfc822", "a=b@dest.example", "", "failed",
	    "5.0.0" } },
};

/* same - a field of a group against the wanted string (NULL: any). */
static void
same(const char *row, const char *what, const char *got, const char *want)
{
	if (want != NULL)
		cr_expect_str_eq(got, want, "%s: %s: got \"%s\", want \"%s\"",
		    row, what, got, want);
}

static void
check_rcpt(const char *row, const struct dsn_rcpt *r,
    const struct want_rcpt *w)
{
	same(row, "Final-Recipient type", r->final_type, w->final_type);
	same(row, "Final-Recipient", r->final_addr, w->final_addr);
	same(row, "Original-Recipient", r->orig_addr, w->orig_addr);
	same(row, "Action", r->action, w->action);
	same(row, "Status", r->status, w->status);
	same(row, "Diagnostic-Code type", r->diag_type, w->diag_type);
	same(row, "Diagnostic-Code", r->diag, w->diag);
}

static void
run_row(const struct row *t, const char *msg, size_t len)
{
	struct dsn *d = (struct dsn *)1;
	char why[256];
	enum dsn_rc rc = dsn_parse(msg, len, &d, why, sizeof(why));

	cr_expect_eq(rc, t->rc, "%s: got %s (%s), want %s", t->name,
	    dsn_rc_str(rc), why, dsn_rc_str(t->rc));
	if (rc != DSN_OK) {
		cr_expect_null(d, "%s: failed but gave a report", t->name);
		cr_expect(why[0] != '\0', "%s: no reason given", t->name);
		if (t->why_has != NULL)
			cr_expect_not_null(strstr(why, t->why_has), "%s: reason "
			    "\"%s\", want it to say \"%s\"", t->name, why,
			    t->why_has);
		return;
	}
	if (rc != t->rc) {
		dsn_free(d);
		return;
	}
	cr_assert_not_null(d);
	cr_expect_eq(d->nrcpt, t->nrcpt, "%s: got %zu groups, want %zu",
	    t->name, d->nrcpt, t->nrcpt);
	if (d->nrcpt > 0)
		check_rcpt(t->name, &d->rcpt[0], &t->first);
	if (d->nrcpt > 0 && t->last.final_addr != NULL)
		check_rcpt(t->name, &d->rcpt[d->nrcpt - 1], &t->last);
	same(t->name, "Reporting-MTA", d->reporting_mta, t->mta);
	dsn_free(d);
}

Test(dsn, shapes)
{
	size_t i;

	for (i = 0; i < NELEM(rows); i++)
		run_row(&rows[i], rows[i].msg, strlen(rows[i].msg));
}

/* Every prefix of a good report is read without harm (ASan watches);
 * one cut at a line end after the Status line still gives the group. */
Test(dsn, prefixes)
{
	size_t n = strlen(POSTFIX), i;
	const char *st = strstr(POSTFIX, "Remote-MTA:");

	for (i = 0; i <= n; i++) {
		char *copy = malloc(i ? i : 1);
		struct dsn *d = NULL;
		enum dsn_rc rc;

		memcpy(copy, POSTFIX, i);
		rc = dsn_parse(copy, i, &d, NULL, 0);
		if (i >= (size_t)(st - POSTFIX) && POSTFIX[i - 1] == '\n')
			cr_expect_eq(rc, DSN_OK, "prefix %zu: got %s, want ok",
			    i, dsn_rc_str(rc));
		cr_expect(rc == DSN_OK || d == NULL);
		dsn_free(d);
		free(copy);
	}
}

Test(dsn, microsoft_base64)
{
	char *b64 = dkim_b64_encode((const unsigned char *)MSFT_STATUS,
	    strlen(MSFT_STATUS));
	struct row t = { "microsoft (alternative explanation, base64)", NULL,
	    DSN_OK, NULL, 1, { "rfc822", "m3@contoso.example", "", "failed",
	    "5.1.10", "smtp", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; "
	    "Recipient not found by SMTP address lookup" }, { NULL },
	    "AM0PR01MB1234.eurprd01.prod.example.com" };
	struct dkim_buf b;

	cr_assert_not_null(b64);
	dkim_buf_init(&b, 0);
	dkim_buf_adds(&b, MSFT_HEAD);
	/* folded at 76 as Exchange writes it */
	for (size_t i = 0; i < strlen(b64); i += 76) {
		dkim_buf_add(&b, b64 + i, strlen(b64 + i) < 76 ?
		    strlen(b64 + i) : 76);
		dkim_buf_adds(&b, "\r\n");
	}
	dkim_buf_adds(&b, MSFT_TAIL);
	cr_assert(!b.failed);
	run_row(&t, b.p, b.len);
	/* and not encoded */
	dkim_buf_reset(&b);
	dkim_buf_add(&b, MSFT_HEAD, strlen(MSFT_HEAD) - strlen(
	    "Content-Transfer-Encoding: base64\r\n\r\n"));
	dkim_buf_adds(&b, "\r\n" MSFT_STATUS);
	dkim_buf_adds(&b, MSFT_TAIL);
	run_row(&t, b.p, b.len);
	dkim_buf_free(&b);
	free(b64);
}

Test(dsn, find)
{
	const char *msg = REPORT(GROUP("a@dest.example", "failed", "5.0.0")
	    "\r\nFinal-Recipient: rfc822; fwd@elsewhere.example\r\n"
	    "Original-Recipient: rfc822; B@Dest.Example\r\nAction: failed\r\n"
	    "Status: 5.1.1\r\n\r\n"
	    "Final-Recipient: x400; c@dest.example\r\nAction: failed\r\n"
	    "Status: 5.0.0\r\n");
	static const struct { const char *addr; int idx; } f[] = {
		{ "a@dest.example", 0 }, { "A@DEST.example", 0 },
		{ "b@dest.example", 1 }, { "fwd@elsewhere.example", 1 },
		{ "c@dest.example", -1 }, { "nobody@dest.example", -1 },
	};
	struct dsn *d = NULL;
	size_t i;

	cr_assert_eq(dsn_parse(msg, strlen(msg), &d, NULL, 0), DSN_OK);
	for (i = 0; i < NELEM(f); i++) {
		const struct dsn_rcpt *g = dsn_find(d, f[i].addr);
		int got = g ? (int)(g - d->rcpt) : -1;

		cr_expect_eq(got, f[i].idx, "dsn_find(%s): got group %d, want "
		    "%d", f[i].addr, got, f[i].idx);
	}
	cr_expect_null(dsn_find(NULL, "a@dest.example"));
	dsn_free(d);
	dsn_free(NULL);
}

/* cap_msg - a report whose status part is n copies of unit (or a
 * message nested n levels deep when unit is NULL). */
static void
cap_msg(struct dkim_buf *b, const char *unit, size_t n)
{
	size_t i;

	dkim_buf_init(b, 0);
	if (unit == NULL) {
		for (i = 0; i < n; i++)
			dkim_buf_addf(b, "Content-Type: multipart/%s; "
			    "boundary=b%zu\r\n\r\n--b%zu\r\n", i + 1 == n ?
			    "report" : "mixed", i, i);
		dkim_buf_adds(b, "Content-Type: message/delivery-status\r\n\r\n"
		    GROUP("deep@dest.example", "failed", "5.0.0"));
		return;
	}
	dkim_buf_adds(b, "Content-Type: multipart/report; boundary=b\r\n\r\n"
	    "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; caps.example\r\n\r\n");
	for (i = 0; i < n; i++)
		dkim_buf_adds(b, unit);
	dkim_buf_adds(b, "--b--\r\n");
}

Test(dsn, caps)
{
	char big[DSN_ADDR_MAX + 64], diag[DSN_MAX_FIELD * 2], grp[10000];
	char fields[DSN_MAX_GROUP_FIELDS * 16];
	struct {
		const char *name;
		const char *unit;
		size_t n;
		enum dsn_rc rc;
		const char *why_has;
	} c[6];
	struct dkim_buf b;
	size_t i, k;

	memset(big, 'a', sizeof(big));
	memcpy(big + sizeof(big) - 20, "@dest.example", 14);
	snprintf(grp, sizeof(grp), GROUP("%s", "failed", "5.0.0"), big);
	c[0].name = "an address over DSN_ADDR_MAX";
	c[0].unit = strdup(grp);
	c[0].n = 1;
	c[0].rc = DSN_E_LIMIT;
	c[0].why_has = "Final-Recipient";
	c[1].name = "DSN_MAX_RCPTS groups";
	c[1].unit = GROUP("r@dest.example", "failed", "5.0.0") "\r\n";
	c[1].n = DSN_MAX_RCPTS;
	c[1].rc = DSN_OK;
	c[1].why_has = NULL;
	c[2] = c[1];
	c[2].name = "one group more than DSN_MAX_RCPTS";
	c[2].n = DSN_MAX_RCPTS + 1;
	c[2].rc = DSN_E_LIMIT;
	c[2].why_has = "recipient groups";
	k = 0;
	for (i = 0; i < DSN_MAX_GROUP_FIELDS; i++)
		k += (size_t)snprintf(fields + k, sizeof(fields) - k,
		    "X-F%zu: v\r\n", i);
	snprintf(grp, sizeof(grp), "%s" GROUP("f@dest.example", "failed",
	    "5.0.0"), fields);
	c[3].name = "a group over DSN_MAX_GROUP_FIELDS";
	c[3].unit = strdup(grp);
	c[3].n = 1;
	c[3].rc = DSN_E_LIMIT;
	c[3].why_has = "fields in status group";
	memset(diag, 'd', sizeof(diag) - 1);
	diag[sizeof(diag) - 1] = '\0';
	snprintf(grp, sizeof(grp), GROUP("l@dest.example", "failed", "5.0.0")
	    "Diagnostic-Code: smtp; %.8000s\r\n", diag);
	c[4].name = "a Diagnostic-Code over DSN_MAX_FIELD: cut, kept";
	c[4].unit = strdup(grp);
	c[4].n = 1;
	c[4].rc = DSN_OK;
	c[4].why_has = NULL;
	c[5].name = "nesting over DSN_MAX_DEPTH";
	c[5].unit = NULL;
	c[5].n = DSN_MAX_DEPTH;
	c[5].rc = DSN_E_LIMIT;
	c[5].why_has = "multipart levels";

	for (i = 0; i < NELEM(c); i++) {
		struct dsn *d = NULL;
		char why[256] = "";
		enum dsn_rc rc;

		cap_msg(&b, c[i].unit, c[i].n);
		cr_assert(!b.failed);
		rc = dsn_parse(b.p, b.len, &d, why, sizeof(why));
		cr_expect_eq(rc, c[i].rc, "%s: got %s (%s), want %s",
		    c[i].name, dsn_rc_str(rc), why, dsn_rc_str(c[i].rc));
		if (c[i].why_has != NULL)
			cr_expect_not_null(strstr(why, c[i].why_has), "%s: "
			    "reason \"%s\", want \"%s\"", c[i].name, why,
			    c[i].why_has);
		if (rc == DSN_OK && i == 4) {
			size_t dl = strlen(d->rcpt[0].diag);

			cr_expect(dl == DSN_DIAG_MAX - 1 - 0 ||
			    dl < DSN_DIAG_MAX, "%s: %zu octets", c[i].name, dl);
			cr_expect_str_eq(d->rcpt[0].diag + dl - 3, "...",
			    "%s: not marked as cut", c[i].name);
		}
		if (rc == DSN_OK && i == 1)
			cr_expect_eq(d->nrcpt, DSN_MAX_RCPTS);
		dsn_free(d);
		dkim_buf_free(&b);
	}
	/* one level less than the cap reads */
	cap_msg(&b, NULL, DSN_MAX_DEPTH - 1);
	{
		struct dsn *d = NULL;
		enum dsn_rc rc = dsn_parse(b.p, b.len, &d, NULL, 0);

		cr_expect_eq(rc, DSN_OK, "nesting at DSN_MAX_DEPTH: got %s",
		    dsn_rc_str(rc));
		dsn_free(d);
	}
	dkim_buf_free(&b);
	free((void *)c[0].unit);
	free((void *)c[3].unit);
	free((void *)c[4].unit);
}

/* The caps hold for encoded bodies: a status part in quoted-printable
 * over DSN_MAX_STATUS (raw), and whole reports in base64 over
 * DSN_MAX_DECODED, are DSN_E_LIMIT; just under, they read. */
Test(dsn, encoded_caps)
{
	static const struct {
		const char *name;
		bool whole;		/* a whole report in base64 */
		size_t n;		/* octets of padding */
		enum dsn_rc rc;
		const char *why_has;
	} c[] = {
		{ "qp status part at DSN_MAX_STATUS", false,
		    DSN_MAX_STATUS - 200, DSN_OK, NULL },
		{ "qp status part over DSN_MAX_STATUS", false, DSN_MAX_STATUS,
		    DSN_E_LIMIT, "status part over" },
		{ "base64 report under DSN_MAX_DECODED", true,
		    DSN_MAX_DECODED / 2, DSN_OK, NULL },
		{ "base64 report over DSN_MAX_DECODED", true, DSN_MAX_DECODED,
		    DSN_E_LIMIT, "encoded multipart" },
	};
	size_t i, k;

	for (i = 0; i < NELEM(c); i++) {
		struct row t = { c[i].name, NULL, c[i].rc, c[i].why_has, 1,
		    { "rfc822", "big@dest.example", "", "failed", "5.0.0" } };
		struct dkim_buf b, in;
		char *enc = NULL;

		dkim_buf_init(&b, 0);
		dkim_buf_init(&in, 0);
		if (c[i].whole) {
			dkim_buf_adds(&in, "--w\r\nContent-Type: text/plain"
			    "\r\n\r\n");
			for (k = 0; k < c[i].n / 64; k++)
				dkim_buf_adds(&in, "padding padding padding "
				    "padding padding padding padding pad\r\n");
			dkim_buf_adds(&in, "--w\r\nContent-Type: "
			    "message/delivery-status\r\n\r\n"
			    GROUP("big@dest.example", "failed", "5.0.0")
			    "--w--\r\n");
			cr_assert(!in.failed);
			enc = dkim_b64_encode((const unsigned char *)in.p,
			    in.len);
			cr_assert_not_null(enc);
			dkim_buf_adds(&b, "Content-Type: multipart/report; "
			    "boundary=w\r\nContent-Transfer-Encoding: base64"
			    "\r\n\r\n");
			dkim_buf_adds(&b, enc);
		} else {
			dkim_buf_adds(&b, "Content-Type: multipart/report; "
			    "boundary=b\r\n\r\n--b\r\nContent-Type: "
			    "message/delivery-status\r\n"
			    "Content-Transfer-Encoding: quoted-printable\r\n"
			    "\r\n" GROUP("big@dest.example", "failed",
			    "5.0.0") "X-Pad: ");
			/* 63 octets a line */
			for (k = 0; k < (c[i].n + 62) / 63; k++)
				dkim_buf_adds(&b, "=3D=3D=3D=3D=3D=3D=3D=3D=3D"
				    "=3D=3D=3D=3D=3D=3D=3D=3D=3D=3D=3D=\r\n");
			dkim_buf_adds(&b, "\r\n--b--\r\n");
		}
		cr_assert(!b.failed);
		run_row(&t, b.p, b.len);
		free(enc);
		dkim_buf_free(&b);
		dkim_buf_free(&in);
	}
}

Test(dsn, rc_str)
{
	cr_expect_str_eq(dsn_rc_str(DSN_OK), "ok");
	cr_expect_str_eq(dsn_rc_str(DSN_E_NOT_DSN), "not a DSN");
	cr_expect_str_eq(dsn_rc_str(DSN_E_MALFORMED), "malformed");
	cr_expect_str_eq(dsn_rc_str(DSN_E_LIMIT), "limit");
	cr_expect_str_eq(dsn_rc_str(DSN_E_NOMEM), "no memory");
}
