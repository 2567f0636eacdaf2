#!/usr/bin/python3
"""listhdr_check.py - policy/listhdr.c read back by Python's email package.

    listhdr_check.py LISTHDR_TOOL WORKDIR

Each message below goes through listhdr_tool with the list's options; the
result is parsed with email.policy.default and checked:

  - the decoded Subject starts with the tag, and holds it exactly once
    (as many times as before when the original already had it);
  - the From display name is "<name> via <list name>", <name> being the
    original first mailbox's display name as Python decodes it (its local
    part when it has none, the group's name for an empty group), and the
    address is the list address; one From field;
  - X-Original-From holds the original From value, byte for byte;
  - Reply-To, List-Id, List-Post, List-Unsubscribe(-Post) and Precedence
    say what the options asked for;
  - every other field, and the body, are as they were.

Python 3.11 keeps the white space between two adjacent encoded words in a
display name (RFC 2047 §6.2 drops it). listhdr writes such a pair only for
a non-ASCII run longer than one encoded word; for those rows (long=True)
names are compared without white space.

Prints one line per message and "N passed, N failed" at the end.
"""
import email
import email.policy
import os
import subprocess
import sys

LIST_ADDR = "announce@lists.example"
LIST_NAME = "Announce"
TAG = "[announce]"
UNSUB = "announce-unsubscribe@lists.example"
HTTPS = "https://lists.example/u/announce"
TOUCHED = {"subject", "from", "x-original-from", "reply-to", "list-id",
           "list-post", "list-unsubscribe", "list-unsubscribe-post",
           "precedence"}

# (name, From value, Subject value or None, extra header lines, options)
# options: reply mode, unsubscribe set ("", "m", "h", "mh"), long name
CASES = [
    ("plain", "Alice Example <alice@example.org>", "Hello world", "",
     {}),
    ("addr-spec", "alice@example.org", "Hello", "", {}),
    ("angle-addr", "<bob@example.net>", "Hi", "", {"reply": "author"}),
    ("quoted with escapes", '"Doe, John \\"JD\\"" <jd@example.com>',
     "Re: meeting", "", {"reply": "list"}),
    ("already tagged", "a@example.org", "[announce] Hello", "", {}),
    ("Re: with tag", "a@example.org", "Re: [announce] Hello", "", {}),
    ("tag in other case", "a@example.org", "Fwd: [ANNOUNCE] x", "", {}),
    ("encoded subject B", "a@example.org",
     "=?UTF-8?B?w5xiZXIgZGllIFNhY2hl?=", "", {}),
    ("encoded subject with tag", "a@example.org",
     "=?UTF-8?B?W2Fubm91bmNlXSDDnGJlciBkaWUgU2FjaGU=?=", "", {}),
    ("encoded subject Q Latin-1", "a@example.org",
     "Re: =?ISO-8859-1?Q?=DCber_alles?=", "", {}),
    ("folded subject", "a@example.org",
     "A subject that is long enough to have been folded by the sender\r\n"
     " onto a second line", "", {}),
    ("very long subject", "a@example.org",
     " ".join("word%d" % i for i in range(60)), "", {}),
    ("missing subject", "a@example.org", None, "", {}),
    ("empty subject", "a@example.org", "", "", {}),
    ("encoded name Q", "=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <j@example.de>",
     "Gr\u00fc\u00dfe", "", {"reply": "author", "unsub": "m"}),
    ("encoded name B", "=?utf-8?b?5pel5pys6Kqe?= <n@example.jp>", "x", "",
     {"unsub": "h"}),
    ("encoded name Latin-1", "=?iso-8859-1?q?Ren=E9?= <r@example.fr>", "x",
     "", {"unsub": "mh"}),
    ("encoded name KOI8-R", "=?KOI8-R?B?8NLJ18XU?= <p@example.ru>", "x", "",
     {}),
    ("raw UTF-8 name", "Jos\u00e9 Mar\u00eda <jm@example.es>", "x", "",
     {"reply": "list", "unsub": "mh"}),
    ("mixed words", "Dr. J\u00f6rg von M\u00fcller <j@example.de>", "x",
     "", {}),
    ("long non-ASCII name",
     "\u00c4lice B\u00e4rtholomew C\u00e4therine D\u00f6rothea "
     "\u00c9leanor Fr\u00e9derica Gw\u00e9ndolyn <a@example.de>", "x", "",
     {"long": True}),
    ("two addresses", "alice@example.org, Bob <bob@example.net>", "x", "",
     {"reply": "author"}),
    ("group", "Friends: Carol <carol@example.org>, dave@example.org;", "x",
     "", {}),
    ("empty group", "undisclosed-recipients:;", "x", "", {}),
    ("comments", "Pete(A nice \\) chap) <pete(his account)@silly.test>",
     "x", "", {}),
    ("folded From", "Alice Example\r\n <alice@example.org>", "x", "", {}),
    ("author's Reply-To kept", "a@example.org", "x",
     "Reply-To: other@example.org\r\n", {"reply": "author"}),
    ("upstream list fields", "Alice <alice@example.org>", "[up] x",
     "List-Id: Upstream <up.example.net>\r\n"
     "List-Unsubscribe: <mailto:leave@example.net>\r\n"
     "List-Help: <mailto:help@example.net>\r\nPrecedence: bulk\r\n",
     {"reply": "list", "unsub": "h"}),
    ("long ASCII name (folded inside the quotes)",
     '"Bartholomew Fitzwilliam Montgomery-Smythe, Director of Everything"'
     " <b@example.com>", "x", "", {}),
    ("long encoded subject, folded",
     "a@example.org", "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_der_Ferne_und_noch_"
     "viel_mehr_Text?=\r\n =?UTF-8?Q?_der_hier_weitergeht_=C3=A4?=", "", {}),
    ("subject with a tab", "a@example.org", "Re:\tHello\tthere", "", {}),
    ("garbage From", "<<<not an address", "x", "", {"garbage": True}),
]


def build(frm, subject, extra):
    lines = ["Received: from mx.example.org by lists.example; "
             "Mon, 1 Jan 2024 00:00:00 +0000",
             "From: " + frm,
             "To: " + LIST_ADDR,
             "Date: Mon, 1 Jan 2024 00:00:00 +0000",
             "Message-ID: <1@example.org>"]
    if subject is not None:
        lines.append("Subject: " + subject)
    head = "\r\n".join(lines) + "\r\n" + extra
    head += ("MIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n")
    return (head + "\r\nBody line one\r\nFrom: not a header\r\n").encode()


def parse(raw):
    """8-bit header bytes are UTF-8 (RFC 6532): read them as text, since
    message_from_bytes would take them as unknown-8bit."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return email.message_from_bytes(raw, policy=email.policy.default)
    return email.message_from_string(text, policy=email.policy.default)


def author_name(orig):
    """What listhdr should call the author, as Python reads From."""
    h = orig["From"]
    if h.addresses:
        a = h.addresses[0]
        return a.display_name or a.username
    if h.groups:
        return h.groups[0].display_name
    return ""


def raw_value(raw, name):
    """The bytes after 'Name:' of the first such field, folding kept."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    key = name.lower().encode() + b":"
    for i, line in enumerate(head):
        if line.lower().startswith(key):
            v = line[len(key):]
            for cont in head[i + 1:]:
                if cont[:1] not in (b" ", b"\t"):
                    break
                v += b"\r\n" + cont
            return v
    return None


def others(msg):
    return [(k.lower(), v) for k, v in msg.raw_items()
            if k.lower() not in TOUCHED]


def check(tool, work, idx, case):
    name, frm, subject, extra, opt = case
    raw = build(frm, subject, extra)
    path = os.path.join(work, "m%02d.eml" % idx)
    with open(path, "wb") as f:
        f.write(raw)
    args = [tool, "--addr", LIST_ADDR, "--name", LIST_NAME, "--tag", TAG,
            "--rewrite", "--reply", opt.get("reply", "none")]
    unsub = opt.get("unsub", "")
    if "m" in unsub:
        args += ["--unsub-mailto", UNSUB]
    if "h" in unsub:
        args += ["--unsub-https", HTTPS]
    r = subprocess.run(args + [path], capture_output=True, timeout=30)
    if r.returncode != 0:
        return ["listhdr_tool failed: %s" % r.stderr.decode(errors="replace")]
    out = r.stdout
    with open(path + ".out", "wb") as f:
        f.write(out)
    orig, got = parse(raw), parse(out)
    errs = []

    def want(cond, what):
        if not cond:
            errs.append(what)

    # Subject: the tag first, once (or as often as it already was).
    osub = str(orig["Subject"] or "")
    gsub = str(got["Subject"])
    before = osub.lower().count(TAG)
    want(len(got.get_all("Subject")) == 1, "Subject fields: %d"
         % len(got.get_all("Subject")))
    if before == 0:
        want(gsub.startswith(TAG), "Subject %r does not start with %s"
             % (gsub, TAG))
        want(gsub.lower().count(TAG) == 1, "Subject %r: tag count %d"
             % (gsub, gsub.lower().count(TAG)))
        want(" ".join(gsub[len(TAG):].split()) == " ".join(osub.split()),
             "Subject text %r, want %r after the tag" % (gsub, osub))
    else:
        want(gsub == osub, "Subject %r changed from %r" % (gsub, osub))

    # From: "<name> via <list>" <list address>.
    want(len(got.get_all("From")) == 1, "From fields: %d"
         % len(got.get_all("From")))
    gfrom = got["From"]
    want(not gfrom.defects, "From defects: %r" % (gfrom.defects,))
    want(len(gfrom.addresses) == 1, "From addresses: %r" % (gfrom.addresses,))
    if gfrom.addresses:
        a = gfrom.addresses[0]
        want(a.addr_spec == LIST_ADDR, "From address %r" % a.addr_spec)
        if opt.get("garbage"):
            wname = LIST_NAME
        else:
            wname = "%s via %s" % (author_name(orig), LIST_NAME)
        gname = a.display_name
        if opt.get("long"):
            gname, wname = "".join(gname.split()), "".join(wname.split())
        want(gname == wname, "From name %r, want %r" % (gname, wname))

    # X-Original-From: the original value, byte for byte.
    want(raw_value(out, "X-Original-From") == raw_value(raw, "From"),
         "X-Original-From %r, want %r" % (raw_value(out, "X-Original-From"),
                                          raw_value(raw, "From")))
    want(len(got.get_all("X-Original-From")) == 1, "X-Original-From fields")

    # Reply-To.
    mode = opt.get("reply", "none")
    oreply = orig.get_all("Reply-To") or []
    greply = got.get_all("Reply-To") or []
    if mode == "list":
        want([str(x) for x in greply] == [LIST_ADDR], "Reply-To %r" % greply)
    elif mode == "author" and oreply:
        want([str(x) for x in greply] == [str(x) for x in oreply],
             "Reply-To %r, want the author's %r" % (greply, oreply))
    elif mode == "author":
        want(len(greply) == 1 and raw_value(out, "Reply-To") ==
             raw_value(raw, "From"), "Reply-To %r, want From's value"
             % greply)
    else:
        want([str(x) for x in greply] == [str(x) for x in oreply],
             "Reply-To %r changed" % greply)

    # List fields.
    want(got.get_all("List-Id") == ["<announce.lists.example>"],
         "List-Id %r" % got.get_all("List-Id"))
    want(got.get_all("List-Post") == ["<mailto:%s>" % LIST_ADDR],
         "List-Post %r" % got.get_all("List-Post"))
    want(got.get_all("Precedence") == ["list"],
         "Precedence %r" % got.get_all("Precedence"))
    uris = []
    if "m" in unsub:
        uris.append("<mailto:%s>" % UNSUB)
    if "h" in unsub:
        uris.append("<%s>" % HTTPS)
    gunsub = got.get_all("List-Unsubscribe") or []
    if uris:
        want(len(gunsub) == 1 and [u.strip() for u in str(gunsub[0])
                                   .split(",")] == uris,
             "List-Unsubscribe %r, want %r" % (gunsub, uris))
    else:
        want(gunsub == [], "List-Unsubscribe %r" % gunsub)
    gpost = got.get_all("List-Unsubscribe-Post") or []
    want(gpost == (["List-Unsubscribe=One-Click"] if "h" in unsub else []),
         "List-Unsubscribe-Post %r" % gpost)

    # Everything else, and the body, as it was.
    want(others(got) == others(orig), "other fields changed:\n%r\n%r"
         % (others(got), others(orig)))
    want(out.split(b"\r\n\r\n", 1)[1] == raw.split(b"\r\n\r\n", 1)[1],
         "body changed")
    want(got.get_content() == orig.get_content(), "decoded body changed")
    return errs


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tool, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    passed = failed = 0
    for i, case in enumerate(CASES):
        errs = check(tool, work, i, case)
        if errs:
            failed += 1
            print("FAIL %s" % case[0])
            for e in errs:
                print("     %s" % e)
        else:
            passed += 1
            print("ok   %s" % case[0])
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
