#!/usr/bin/python3
"""gen_corpus.py - build the DKIM interop corpus.

Writes N RFC 5322 messages (CRLF line ends, raw bytes, 8-bit allowed) into
OUTDIR and a manifest.json that says, per message, how it is to be signed:
canonicalization, algorithm, l= or not, an explicit header list or the
signer's default, and an optional expiry.  The generator is deterministic:
the same seed always gives the same bytes, so a failure seen once can be
reproduced from the file name alone.

Messages are built from a base header block and a body, then shaped by
"transforms" that each exercise one canonicalization corner (folding,
trailing whitespace, whitespace before the colon, 8-bit bytes, repeated
fields, empty and whitespace-only bodies, missing final CRLF, ...).  Every
message records the transforms applied to it as its feature list.

Usage: gen_corpus.py OUTDIR [--count N] [--seed S]
"""

import argparse
import json
import os
import random

CRLF = b"\r\n"
CANONS = ["simple/simple", "simple/relaxed", "relaxed/simple", "relaxed/relaxed"]
ALGS = ["rsa-sha256", "ed25519-sha256"]

# Features whose messages dkimpy 1.1.4 cannot parse at all: its header
# splitter wants the colon right after the field name, so "Subject : x"
# raises MessageFormatError.  Such messages are still checked by arcrelay
# and Mail::DKIM.
DKIMPY_UNPARSEABLE = {"ws_before_colon"}

WORDS = (b"alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo "
         b"lima mike november oscar papa quebec romeo sierra tango uniform "
         b"victor whiskey xray yankee zulu relay signature canonical header "
         b"body folding whitespace message digest selector domain forward "
         b"list footer archive meeting report invoice draft review").split()
NAMES = [b"Alice Example", b"Bob Builder", b"Carol Danvers", b"Dave Null",
         b"Erin Operator", b"Frank Sender", b"Grace Hopper", b"Heidi Klum"]
UTF8_SNIPPETS = ["Grüße aus Köln", "naïve café", "Ελληνικά κείμενο",
                 "日本語のテキスト", "emoji ✓ ☃ ✈", "Ærøskøbing", "łódź żółw"]
LATIN1_SNIPPETS = ["caf\xe9 cr\xe8me", "Stra\xdfe \xfcber", "ni\xf1o a\xf1o",
                   "gar\xe7on fa\xe7ade", "\xbfqu\xe9 tal?"]


class Msg:
    """A message under construction: header fields as [name, sep, value]
    (raw = name + sep + value, value may contain CRLF folds, no final CRLF),
    a body (raw bytes), whether the blank separator line is present, and the
    list of features applied."""

    def __init__(self):
        self.fields = []
        self.body = b""
        self.separator = True
        self.features = []

    def find(self, name):
        name = name.lower().encode()
        for f in self.fields:
            if f[0].strip().lower() == name:
                return f
        return None

    def find_all(self, name):
        name = name.lower().encode()
        return [f for f in self.fields if f[0].strip().lower() == name]

    def add(self, name, value, pos=None):
        f = [name, b":", value]
        if pos is None:
            self.fields.append(f)
        else:
            self.fields.insert(pos, f)
        return f

    def feature(self, name):
        if name not in self.features:
            self.features.append(name)

    def render(self):
        out = b"".join(f[0] + f[1] + f[2] + CRLF for f in self.fields)
        if self.separator:
            out += CRLF + self.body
        return out


def words(rng, n):
    return b" ".join(rng.choice(WORDS) for _ in range(n))


def sentence(rng, lo=4, hi=12):
    s = words(rng, rng.randint(lo, hi))
    return s[:1].upper() + s[1:] + b"."


def rfc_date(rng):
    days = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"]
    months = [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug",
              b"Sep", b"Oct", b"Nov", b"Dec"]
    return b"%s, %d %s %d %02d:%02d:%02d %s" % (
        rng.choice(days), rng.randint(1, 28), rng.choice(months),
        rng.randint(2019, 2025), rng.randint(0, 23), rng.randint(0, 59),
        rng.randint(0, 59), rng.choice([b"+0000", b"-0500", b"+0100", b"+0900"]))


def msgid(rng):
    return b"<%08x.%04x@%s>" % (rng.getrandbits(32), rng.getrandbits(16),
                                rng.choice([b"example.org", b"mail.example.net",
                                            b"lists.example.com"]))


def mailbox(rng):
    name = rng.choice(NAMES)
    local = name.split()[0].lower()
    return b"%s <%s@%s>" % (name, local,
                            rng.choice([b"example.org", b"example.net"]))


def received(rng, n):
    return (b" from mx%d.example.net (mx%d.example.net [192.0.2.%d])\r\n"
            b"\tby relay%d.example.org (Postfix) with ESMTPS id %X\r\n"
            b"\tfor <bob@example.org>; %s" % (
                n, n, rng.randint(1, 254), n, rng.getrandbits(40), rfc_date(rng)))


def base_message(rng):
    m = Msg()
    for n in range(rng.randint(1, 2)):
        m.add(b"Received", received(rng, n + 1))
    m.add(b"From", b" " + mailbox(rng))
    m.add(b"To", b" " + mailbox(rng))
    m.add(b"Subject", b" " + words(rng, rng.randint(2, 7)))
    m.add(b"Date", b" " + rfc_date(rng))
    m.add(b"Message-ID", b" " + msgid(rng))
    m.add(b"MIME-Version", b" 1.0")
    m.add(b"Content-Type", b' text/plain; charset="utf-8"')
    m.body = plain_body(rng)
    return m


def plain_body(rng, lines=None):
    n = lines if lines is not None else rng.randint(1, 12)
    return b"".join(sentence(rng) + CRLF for _ in range(n))


def fold_value(rng, value, width=None):
    """Fold a value at spaces, continuing with a space or a tab."""
    parts = value.split(b" ")
    out = parts[0]
    col = len(out)
    width = width or rng.randint(20, 60)
    for p in parts[1:]:
        if col > width and out.strip():
            out += CRLF + rng.choice([b" ", b"\t", b"  ", b" \t"]) + p
            col = len(p)
        else:
            out += b" " + p
            col += len(p) + 1
    return out


# ---- header transforms -------------------------------------------------

def t_folded(rng, m):
    """Fold several header fields over multiple lines, tabs and spaces."""
    to = m.find("to")
    to[2] = (b" " + mailbox(rng) + b",\r\n " + mailbox(rng) + b",\r\n\t"
             + mailbox(rng))
    subj = m.find("subject")
    subj[2] = b" " + fold_value(rng, words(rng, 14), 25)
    ct = m.find("content-type")
    ct[2] = b" text/plain;\r\n\tcharset=\"utf-8\";\r\n\tformat=flowed"
    m.add(b"X-Folded", b"\r\n  starts on the next line\r\n\tand goes on")
    m.feature("folded_headers")


def t_long_subject(rng, m):
    """A 900-character Subject on one physical line."""
    s = b""
    while len(s) < 900:
        s += rng.choice(WORDS) + b" "
    m.find("subject")[2] = b" " + s[:899].rstrip() + b"Z"
    m.feature("long_subject")


def t_long_references(rng, m):
    """A long References field folded over many lines."""
    ids = [msgid(rng) for _ in range(rng.randint(25, 45))]
    m.add(b"References", b" " + b"\r\n ".join(ids))
    m.add(b"In-Reply-To", b" " + ids[-1])
    m.feature("long_references")


def t_long_unfolded(rng, m):
    """A header line close to the 998-octet limit."""
    v = b""
    while len(v) < 980:
        v += rng.choice(WORDS) + b"-"
    m.add(b"X-Long-Line", b" " + v[:980])
    m.feature("long_unfolded_header")


def t_trailing_ws_headers(rng, m):
    """Trailing spaces and tabs on header values, also before a fold."""
    subj = m.find("subject")
    subj[2] = subj[2] + rng.choice([b"   ", b"\t", b" \t ", b"\t\t"])
    m.add(b"X-Trailing", b" value with trailing\t \r\n\tcontinued  ")
    fr = m.find("from")
    fr[2] = fr[2] + b" "
    m.feature("trailing_ws_headers")


def t_ws_before_colon(rng, m):
    """Whitespace between the field name and the colon (obs syntax)."""
    target = rng.choice(["subject", "to", "x-mailer"])
    if target == "x-mailer":
        m.add(b"X-Mailer", b" interop-gen 1.0")
    f = m.find(target)
    f[1] = rng.choice([b" :", b"\t:", b"  :", b" \t:"])
    m.feature("ws_before_colon")


def t_tabs_inside(rng, m):
    """Tabs inside header values (not only in folding)."""
    subj = m.find("subject")
    subj[2] = subj[2].replace(b" ", b"\t", 2)
    m.add(b"X-Tabs", b" a\tb\t\tc \t d")
    m.feature("tabs_in_headers")


def t_space_runs(rng, m):
    """Runs of spaces inside header values."""
    subj = m.find("subject")
    subj[2] = b" " + subj[2].strip().replace(b" ", b"      ")
    m.add(b"X-Spaces", b"     leading   and    inner     runs")
    m.feature("space_runs_in_headers")


def t_utf8_headers(rng, m):
    """Raw UTF-8 in Subject and From display name (no encoded-words)."""
    m.find("subject")[2] = b" " + rng.choice(UTF8_SNIPPETS).encode() + b" " + words(rng, 2)
    m.find("from")[2] = " Jürgen Müller <juergen@example.org>".encode()
    m.feature("utf8_headers")


def t_latin1_headers(rng, m):
    """Latin-1 bytes in header values."""
    m.find("subject")[2] = b" " + rng.choice(LATIN1_SNIPPETS).encode("latin-1") + b" note"
    m.add(b"X-Latin1", " \xe0 la fran\xe7aise".encode("latin-1"))
    m.feature("latin1_headers")


def t_repeated(rng, m):
    """Repeated header fields: Received, To, Cc, X-Tag."""
    for n in range(rng.randint(2, 5)):
        m.add(b"Received", received(rng, 10 + n), 0)
    to = m.find("to")
    m.fields.insert(m.fields.index(to) + 1, [b"To", b":", b" " + mailbox(rng)])
    m.add(b"Cc", b" " + mailbox(rng))
    m.add(b"Cc", b" " + mailbox(rng))
    for n in range(rng.randint(2, 4)):
        m.add(b"X-Tag", b" tag-%d" % n)
    m.feature("repeated_headers")


def t_case(rng, m):
    """Field names in odd case."""
    m.find("subject")[0] = b"SUBJECT"
    m.find("from")[0] = b"from"
    m.find("message-id")[0] = b"Message-Id"
    m.find("to")[0] = b"tO"
    m.feature("name_case")


def t_empty_values(rng, m):
    """Header fields with empty or whitespace-only values."""
    m.add(b"X-Empty", b"")
    m.add(b"X-Blank", b"   ")
    m.add(b"Keywords", b" ")
    m.add(b"X-Fold-Empty", b"\r\n \t")
    m.feature("empty_header_values")


def t_no_space_after_colon(rng, m):
    m.find("subject")[2] = m.find("subject")[2].lstrip()
    m.add(b"X-Tight", b"no-space")
    m.feature("no_space_after_colon")


def t_ws_continuation(rng, m):
    """A continuation line made only of whitespace (obs-FWS)."""
    m.find("subject")[2] = b" first part\r\n \r\n second part"
    m.feature("ws_only_continuation")


def t_extra_headers(rng, m):
    """Extra fields commonly seen on list mail."""
    m.add(b"List-Id", b" Interop list <interop.lists.example.com>")
    m.add(b"List-Unsubscribe", b" <mailto:leave@lists.example.com>,\r\n <https://lists.example.com/u>")
    m.add(b"Reply-To", b" " + mailbox(rng))
    m.add(b"Comments", b" a comment field")
    m.add(b"X-Looks-Like-Tags", b" v=1; b=AAAA; bh=BBBB;\r\n d=evil.example; h=from")
    m.feature("list_headers")


# ---- bodies ---------------------------------------------------------------

def b_empty(rng, m):
    m.body = b""
    m.feature("empty_body")


def b_ws_only(rng, m):
    m.body = rng.choice([b" \r\n", b"\t\t\r\n   \r\n", b"\r\n\r\n\r\n", b"   ",
                         b" \t ", b"\r\n", b"\t\r\n\r\n \r\n"])
    m.feature("ws_only_body")


def b_trailing_empty(rng, m):
    m.body = plain_body(rng, rng.randint(1, 4)) + CRLF * rng.choice([1, 2, 5, 30, 100])
    if rng.random() < 0.4:
        m.body += b" \r\n\t\r\n\r\n"
    m.feature("trailing_empty_lines")


def b_no_final_crlf(rng, m):
    m.body = rng.choice([
        plain_body(rng, 3) + b"last line without newline",
        b"single",
        plain_body(rng, 2) + b"trailing ws no newline \t ",
        b"\r\n\r\nafter two blank lines",
    ])
    m.feature("no_final_crlf")


def b_trailing_ws(rng, m):
    lines = []
    for _ in range(rng.randint(3, 8)):
        lines.append(sentence(rng) + rng.choice([b" ", b"\t", b"   ", b" \t", b""]))
    m.body = CRLF.join(lines) + CRLF
    m.feature("trailing_ws_body")


def b_tabs_spaces(rng, m):
    m.body = (b"col1\tcol2\t\tcol3\r\n"
              b"a      b       c\r\n"
              b"\tindented with tab\r\n"
              b"    indented with spaces\r\n"
              b"mixed \t \t runs\r\n" + plain_body(rng, 2))
    m.feature("tabs_and_space_runs_body")


def b_utf8(rng, m):
    m.body = b"".join(s.encode() + CRLF for s in rng.sample(UTF8_SNIPPETS, 4)) + plain_body(rng, 2)
    m.feature("utf8_body")


def b_latin1(rng, m):
    m.find("content-type")[2] = b' text/plain; charset="iso-8859-1"'
    m.body = b"".join(s.encode("latin-1") + CRLF for s in LATIN1_SNIPPETS) + plain_body(rng, 1)
    m.feature("latin1_body")


def b_blank_middle(rng, m):
    m.body = (b"\r\n" + plain_body(rng, 2) + b"\r\n\r\n   \r\n\t\r\n" + plain_body(rng, 2))
    m.feature("blank_lines_in_body")


def b_long_lines(rng, m):
    line = b""
    while len(line) < 990:
        line += rng.choice(WORDS) + b" "
    m.body = line[:990] + CRLF + plain_body(rng, 2) + line[:500] + b"   " + CRLF
    m.feature("long_body_lines")


def b_large(rng, m):
    m.body = plain_body(rng, 3000)
    m.feature("large_body")


def b_dots_and_from(rng, m):
    m.body = b".\r\n..leading dots\r\nFrom the start of a line\r\n>From quoted\r\n" + plain_body(rng, 2)
    m.feature("dot_and_from_lines")


def b_multipart(rng, m):
    bnd = b"=_bnd_%08x" % rng.getrandbits(32)
    m.find("content-type")[2] = b' multipart/alternative;\r\n\tboundary="' + bnd + b'"'
    m.body = (b"This is a multi-part message in MIME format.\r\n\r\n"
              b"--" + bnd + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
              b"Content-Transfer-Encoding: 8bit\r\n\r\n" + plain_body(rng, 3)
              + "Grüße\r\n".encode() +
              b"\r\n--" + bnd + b"\r\nContent-Type: text/html; charset=utf-8\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n"
              b"PGh0bWw+PGJvZHk+PHA+SGVsbG8gd29ybGQ8L3A+PC9ib2R5PjwvaHRtbD4=\r\n"
              b"\r\n--" + bnd + b"--\r\n\r\n")
    m.feature("multipart")


def b_no_separator(rng, m):
    """Header block only: no blank line, no body."""
    m.separator = False
    m.body = b""
    m.feature("no_separator")


HEADER_T = [t_folded, t_long_subject, t_long_references, t_long_unfolded,
            t_trailing_ws_headers, t_ws_before_colon, t_tabs_inside,
            t_space_runs, t_utf8_headers, t_latin1_headers, t_repeated,
            t_case, t_empty_values, t_no_space_after_colon, t_ws_continuation,
            t_extra_headers]
SUBJECT_REWRITERS = {t_folded, t_long_subject, t_utf8_headers,
                     t_latin1_headers, t_ws_continuation}
BODY_T = [b_empty, b_ws_only, b_trailing_empty, b_no_final_crlf, b_trailing_ws,
          b_tabs_spaces, b_utf8, b_latin1, b_blank_middle, b_long_lines,
          b_large, b_dots_and_from, b_multipart]

# Targeted recipes: (header transforms, body transform, how many copies).
RECIPES = [
    ([], None, 8),
    ([t_folded], None, 8),
    ([t_long_subject], None, 6),
    ([t_long_references], None, 6),
    ([t_long_unfolded], None, 4),
    ([t_trailing_ws_headers], None, 6),
    ([], b_trailing_ws, 6),
    ([], b_empty, 8),
    ([], b_ws_only, 10),
    ([], b_trailing_empty, 8),
    ([], b_no_final_crlf, 8),
    ([t_utf8_headers], b_utf8, 6),
    ([t_latin1_headers], b_latin1, 6),
    ([t_repeated], None, 10),
    ([t_ws_before_colon], None, 8),
    ([t_tabs_inside], b_tabs_spaces, 6),
    ([t_space_runs], b_tabs_spaces, 6),
    ([t_case], None, 4),
    ([t_empty_values], None, 4),
    ([t_no_space_after_colon], None, 4),
    ([t_ws_continuation], None, 4),
    ([t_extra_headers], None, 4),
    ([], b_blank_middle, 4),
    ([], b_long_lines, 4),
    ([], b_large, 2),
    ([], b_dots_and_from, 4),
    ([], b_multipart, 4),
    ([], b_no_separator, 4),
]

# Signing fields the explicit lists draw from (beyond from and subject,
# which every explicit list carries so the header tamper test has a target).
OPTIONAL_SIGNED = ["to", "cc", "date", "message-id", "mime-version",
                   "content-type", "reply-to", "references", "in-reply-to",
                   "list-id", "list-unsubscribe", "x-tag", "x-folded",
                   "x-trailing", "x-tabs", "x-spaces", "x-latin1",
                   "x-long-line", "x-mailer", "x-empty", "x-blank",
                   "keywords", "comments", "received", "x-fold-empty",
                   "x-looks-like-tags"]


def header_list(rng, m):
    """An explicit h= list: From and Subject always, some present fields,
    repeated fields as often as they occur (sometimes once more, to
    oversign), and now and then a field that is absent."""
    names = ["from", "subject"]
    for n in OPTIONAL_SIGNED:
        count = len(m.find_all(n))
        if count and rng.random() < 0.6:
            names += [n] * count
            if rng.random() < 0.3:
                names.append(n)
    if rng.random() < 0.3:
        names.append(rng.choice(["sender", "reply-to", "cc", "x-absent"]))
    if rng.random() < 0.3:
        names.append("from")            # oversign From
    rng.shuffle(names)
    # From first keeps the list readable; order is otherwise free.
    names.remove("from")
    names = ["from"] + names
    if rng.random() < 0.25:
        # h= names are case-insensitive (RFC 6376 3.5)
        names = [n.upper() if rng.random() < 0.3 else n.title() for n in names]
    return names


def build(count, seed):
    rng = random.Random(seed)
    plan = []
    for r, (hts, bt, copies) in enumerate(RECIPES):
        for j in range(copies):
            plan.append((hts, bt, (j + 5 * r) % 16))
    k = 0
    while len(plan) < count:
        hts = rng.sample(HEADER_T, rng.randint(1, 3))
        # At most one transform that replaces the Subject value outright.
        rewriters = [t for t in hts if t in SUBJECT_REWRITERS]
        for t in rewriters[1:]:
            hts.remove(t)
        # The header transforms all rewrite fields in place; order them as
        # listed so a later one never undoes an earlier one's feature.
        hts.sort(key=HEADER_T.index)
        bt = rng.choice(BODY_T + [None, None])
        plan.append((hts, bt, (7 * k + 3) % 16))
        k += 1

    manifest = []
    for i, (hts, bt, combo) in enumerate(plan):
        m = base_message(rng)
        for t in hts:
            t(rng, m)
        if bt is not None:
            bt(rng, m)
        # combo picks the parameter cell: 4 canons x 2 algorithms x l= or not.
        entry = {
            "file": "m%03d.eml" % i,
            "canon": CANONS[combo % 4],
            "algorithm": ALGS[(combo // 4) % 2],
            "body_length": bool((combo // 8) % 2),
            "headers": header_list(rng, m) if rng.random() < 0.4 else None,
            "expire": 31536000 if i % 23 == 11 else None,
            "features": m.features or ["plain"],
            "dkimpy_ok": not (set(m.features) & DKIMPY_UNPARSEABLE),
            "has_separator": m.separator,
        }
        manifest.append((entry, m.render()))
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--count", type=int, default=240)
    ap.add_argument("--seed", type=int, default=6376)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    entries = []
    for entry, data in build(args.count, args.seed):
        with open(os.path.join(args.outdir, entry["file"]), "wb") as fh:
            fh.write(data)
        entries.append(entry)
    # The tamper subset: every third message plus every message with a
    # feature that is rare in the corpus, so the odd cases are tampered too.
    rare = {"empty_body", "ws_only_body", "ws_before_colon", "no_separator",
            "no_final_crlf", "ws_only_continuation", "long_subject"}
    for i, e in enumerate(entries):
        e["tamper"] = i % 3 == 0 or bool(rare & set(e["features"]))
    with open(os.path.join(args.outdir, "manifest.json"), "w") as fh:
        json.dump({"seed": args.seed, "messages": entries}, fh, indent=1)
    print("%d messages written to %s" % (len(entries), args.outdir))


if __name__ == "__main__":
    main()
