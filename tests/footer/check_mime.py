#!/usr/bin/python3
"""check_mime.py - policy/footer.c judged by Python's email package.

    /usr/bin/python3 check_mime.py FOOTER_TOOL CORPUS_DIR WORKDIR [--verbose]

The corpus is made of messages built here with the email package (every
shape: text/plain in 7bit, 8bit, quoted-printable and base64, us-ascii,
utf-8 and iso-8859-1; multipart/mixed with attachments, nested
alternatives, an attached message, preamble and epilogue; alternative,
related, signed, text/html, application/octet-stream) and the hand-written
files of CORPUS_DIR (malformed MIME and edge cases; LF line ends there are
made CRLF); format=flowed text (RFC 3676) in 7bit, 8bit with DelSp=Yes,
quoted-printable and base64, ending in a soft break, quoted, and inside
multipart/alternative and multipart/mixed. Each message gets each of four
footers (ASCII; UTF-8 with '=' and a trailing space; UTF-8 with a
1100-octet line; ASCII with the lines format=flowed must protect: trailing
spaces, a leading space, ">" and "From ") through footer_tool, and every
output is held to:

  how       what footer_tool says it did is what the row expects
  defects   email.policy.default finds no defect in the output that it
            did not find in the input
  bytes     appended: the input header is the output header, byte for
            byte; new part and wrapped: every leaf part of the input (its
            raw bytes, cut at the delimiters by RFC 2046 §5.1.1) is in the
            output unchanged, and a wrapped input body too
  footer    appended: the decoded text is the old text, a line end, then
            the footer; new part and wrapped: the last part is a
            text/plain inline part whose decoded text is the footer
  flowed    appended to a format=flowed part: the decoded text begins
            with the old text, and read as RFC 3676 says (unflow below:
            quote depth, stuffing, soft breaks, DelSp) it is the old
            paragraphs unchanged and then each footer line as a line of
            its own, as configured but for trailing spaces (a reader
            cannot show those; "-- " keeps its own); no footer line
            starts with "From ". New part and wrapped: every flowed text
            part reads the same before and after
  structure new part: one part more than the input, the others in the
            same order with the same types, preamble and epilogue kept;
            wrapped: multipart/mixed with exactly two parts, the first of
            the input's type

Ends with "N passed, M failed"; exits 1 on any failure.
"""

import base64
import email
import email.policy
import os
import quopri
import re
import subprocess
import sys
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

CRLF = email.policy.default.clone(linesep="\r\n")
PARSE = email.policy.default

FOOTERS = {
    "ascii": "-- \nThe example list <https://lists.example.org/ex>\n"
             "Leave: mailto:ex-leave@lists.example.org\n",
    "utf8": "-- \nListe für alle = all of us ✓\nZürich\n",
    "long": "Lange Zeile: " + "ü" * 40 + "=" + "x" * 1000 + "\nEnde\n",
    "flowed": "-- \nThe example list  \n>Leave: mailto:ex-leave@lists."
              "example.org\n  indented \nFrom the list owner \n   \n"
              "-- \nend ",
}

AP, NP, WR, REFUSED = "appended", "new part", "wrapped", "refused"


def expect(ascii_, utf8=None, long_=None):
    """The wanted how per footer; one value means the same for all. The
    flowed footer is ASCII with short lines: as the ASCII one."""
    utf8 = ascii_ if utf8 is None else utf8
    long_ = utf8 if long_ is None else long_
    return {"ascii": ascii_, "utf8": utf8, "long": long_, "flowed": ascii_}


# ---------------------------------------------------------------- corpus


def base(subject):
    m = EmailMessage()
    m["From"] = "Alice <alice@example.org>"
    m["To"] = "list@lists.example.org"
    m["Subject"] = subject
    m["Message-ID"] = "<%s@example.org>" % re.sub(r"\W", "", subject)[:30]
    return m


def out(m):
    return m.as_bytes(policy=CRLF)


TEXT = "Hello list,\n\nthis is the body.\n-- \nAlice\n"
UTEXT = "Grüße an alle,\nso long, and thanks = for all the fish.\n"
HTML = "<html><body><p>Hello <b>list</b></p></body></html>\n"
LONGTEXT = ("word " * 300).strip() + "\n"


def generated():
    """(name, bytes, expectations) for the messages built here."""
    rows = []

    m = base("plain us-ascii 7bit")
    m.set_content(TEXT)
    rows.append(("plain-7bit", out(m), expect(AP, WR)))

    m = base("plain utf-8 8bit")
    m.set_content(UTEXT, cte="8bit")
    rows.append(("plain-utf8-8bit", out(m), expect(AP, AP, WR)))

    m = base("plain utf-8 qp")
    m.set_content(UTEXT, cte="quoted-printable")
    rows.append(("plain-utf8-qp", out(m), expect(AP)))

    m = base("plain utf-8 qp long lines")
    m.set_content(LONGTEXT + UTEXT, cte="quoted-printable")
    rows.append(("plain-utf8-qp-long", out(m), expect(AP)))

    m = base("plain utf-8 base64")
    m.set_content(UTEXT * 5, cte="base64")
    rows.append(("plain-utf8-b64", out(m), expect(AP)))

    m = base("plain latin-1 8bit")
    m.set_content(UTEXT, charset="iso-8859-1", cte="8bit")
    rows.append(("plain-latin1-8bit", out(m), expect(AP, WR)))

    m = base("plain latin-1 qp")
    m.set_content(UTEXT, charset="iso-8859-1", cte="quoted-printable")
    rows.append(("plain-latin1-qp", out(m), expect(AP, WR)))

    m = base("html")
    m.set_content(HTML, subtype="html")
    rows.append(("html", out(m), expect(WR)))

    m = base("octet-stream")
    m.set_content(bytes(range(256)), maintype="application",
                  subtype="octet-stream", filename="blob.bin")
    rows.append(("octet-stream", out(m), expect(WR)))

    m = base("alternative")
    m.set_content(TEXT)
    m.add_alternative(HTML, subtype="html")
    rows.append(("alternative", out(m), expect(WR)))

    m = base("related")
    m.set_content(HTML, subtype="html")
    m.add_related(b"GIF89a\x01\x00\x01\x00", maintype="image",
                  subtype="gif", cid="<img1@example.org>")
    rows.append(("related", out(m), expect(WR)))

    sig = MIMEMultipart("signed", protocol="application/pgp-signature",
                        micalg="pgp-sha256")
    sig.attach(MIMEText("Signed text.\n"))
    sig.attach(MIMEApplication(b"-----BEGIN PGP SIGNATURE-----\n"
                               b"AAAA\n-----END PGP SIGNATURE-----\n",
                               "pgp-signature", email.encoders.encode_7or8bit))
    for k, v in (("From", "alice@example.org"), ("Subject", "signed")):
        sig[k] = v
    rows.append(("signed", sig.as_bytes(policy=CRLF), expect(WR)))

    m = base("mixed")
    m.set_content(TEXT)
    m.add_attachment(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", maintype="application",
                     subtype="pdf", filename="report.pdf")
    rows.append(("mixed", out(m), expect(NP)))

    m = base("mixed with a nested alternative, preamble and epilogue")
    m.set_content(UTEXT)
    m.add_alternative(HTML, subtype="html")
    m.add_attachment(bytes(range(64)), maintype="application",
                     subtype="octet-stream", filename="x.bin")
    m.preamble = "This is a multi-part message in MIME format.\n"
    m.epilogue = "The epilogue.\n"
    rows.append(("mixed-nested", out(m), expect(NP)))

    inner = base("the attached message")
    inner.set_content(TEXT)
    inner.add_attachment(b"data", maintype="application",
                         subtype="octet-stream", filename="d.bin")
    m = base("mixed with an attached message")
    m.set_content("See the attached message.\n")
    m.add_attachment(inner)
    rows.append(("mixed-rfc822", out(m), expect(NP)))

    m = base("mixed 8bit")
    m.set_content(UTEXT, cte="8bit")
    m.add_attachment(UTEXT.encode(), maintype="text", subtype="plain",
                     filename="a.txt")
    m["Content-Transfer-Encoding"] = "8bit"
    rows.append(("mixed-8bit", out(m), expect(NP)))

    m = base("message/rfc822 at the top")
    m.set_content(inner)
    rows.append(("rfc822-top", out(m), expect(WR)))
    return rows + flowed_rows()


# Flowed text (RFC 3676): paragraphs in soft breaks, a quoted paragraph,
# a stuffed line, a signature, and a last line that is a soft break.
FLOWED = ("Hello list, this paragraph is \nwritten in soft breaks, so a "
          "\nreader fills it to its window.\n\n> A quoted paragraph, "
          "also \n> flowed.\n>> And a deeper \n>> one.\n\n From is "
          "stuffed here.\n-- \nAlice, who ends \nin a soft break ")
UFLOWED = ("Grüße an alle, dieser Absatz \nfließt über zwei Zeilen.\n"
           "> zitiert, und \n> weich am Ende ")


def flowed_msg(subject, params, text, cte="7bit", charset="us-ascii"):
    """A text/plain message with format=flowed; params are written as
    they are after "format=", and the body keeps every trailing space."""
    b = text.replace("\n", "\r\n").encode(charset)
    if cte == "quoted-printable":
        b = quopri.encodestring(b.replace(b"\r\n", b"\n"))
        b = b.replace(b"\n", b"\r\n")
    elif cte == "base64":
        b = base64.encodebytes(b).replace(b"\n", b"\r\n")
    head = ("From: Alice <alice@example.org>\r\nTo: list@lists.example.org"
            "\r\nSubject: %s\r\nMIME-Version: 1.0\r\nContent-Type: "
            "text/plain; charset=%s; format=%s\r\nContent-Transfer-Encoding:"
            " %s\r\n\r\n" % (subject, charset, params, cte))
    return head.encode() + b


def flowed_rows():
    rows = [
        ("flowed-7bit", flowed_msg("flowed 7bit", "flowed", FLOWED),
         expect(AP, WR)),
        ("flowed-7bit-crlf", flowed_msg("flowed, ends in CRLF", "flowed",
                                        FLOWED + "\n"), expect(AP, WR)),
        ("flowed-delsp-8bit", flowed_msg(
            "flowed 8bit delsp", '"Flowed"; DelSp=Yes', UFLOWED, "8bit",
            "utf-8"), expect(AP, AP, WR)),
        ("flowed-qp", flowed_msg("flowed qp", "flowed; delsp=no",
                                 UFLOWED + "\n" + FLOWED, "quoted-printable",
                                 "utf-8"), expect(AP)),
        ("flowed-b64", flowed_msg("flowed base64", "FLOWED", UFLOWED,
                                  "base64", "utf-8"), expect(AP)),
    ]
    alt = base("flowed alternative")
    alt.set_content(FLOWED + "\n")
    alt.set_param("format", "flowed")
    alt.add_alternative(HTML, subtype="html")
    rows.append(("flowed-alternative", out(alt), expect(WR)))
    mix = base("flowed mixed")
    mix.set_content(UFLOWED + "\n", cte="quoted-printable")
    mix.set_param("format", "flowed")
    mix.set_param("delsp", "yes")
    mix.add_attachment(b"data", maintype="application",
                       subtype="octet-stream", filename="d.bin")
    rows.append(("flowed-mixed", out(mix), expect(NP)))
    return rows


CORPUS_EXPECT = {
    "boundary-absent.eml": expect(WR),
    "comments-ctype.eml": expect(NP),
    "empty-body.eml": expect(AP, WR),
    "garbage-ctype.eml": expect(WR),
    "header-only.eml": expect(AP, WR),
    "latin1-8bit.eml": expect(AP, WR),
    "nested-unclosed.eml": expect(WR),
    "no-boundary.eml": expect(WR),
    "no-close.eml": expect(WR),
    "no-final-newline.eml": expect(AP, WR),
    "not-a-message.eml": expect(REFUSED),
    "padding.eml": expect(NP),
    "qp-soft-end.eml": expect(AP),
    "signed.eml": expect(WR),
    "truncated-base64.eml": expect(WR),
}


def from_corpus(d):
    rows = []
    names = sorted(f for f in os.listdir(d) if f.endswith(".eml"))
    missing = set(CORPUS_EXPECT) ^ set(names)
    if missing:
        sys.stderr.write("check_mime: corpus and table differ: %s\n"
                         % ", ".join(sorted(missing)))
        sys.exit(1)
    for f in names:
        with open(os.path.join(d, f), "rb") as fh:
            b = fh.read()
        if b"\r\n" not in b:
            b = b.replace(b"\n", b"\r\n")
        rows.append((f, b, CORPUS_EXPECT[f]))
    return rows


# ------------------------------------------------------------ raw bytes


def split_raw(entity):
    """(header bytes, body bytes) of an entity: RFC 5322 §2.1."""
    if entity.startswith(b"\r\n"):
        return b"", entity[2:]
    i = entity.find(b"\r\n\r\n")
    if i < 0:
        return entity, b""
    return entity[:i + 2], entity[i + 4:]


def raw_leaves(entity, depth=0):
    """The raw bytes of every leaf part below a multipart entity, cut at
    its delimiter lines (RFC 2046 §5.1.1); a leaf is header and body."""
    header, body = split_raw(entity)
    msg = email.message_from_bytes(header + b"\r\n", policy=PARSE)
    bnd = msg.get_param("boundary") if msg.get_content_maintype() == \
        "multipart" else None
    if bnd is None or depth > 20:
        # The top header is no part: an unsplittable top is its body.
        return [entity] if depth else [body]
    b = re.escape(str(bnd).encode("latin-1", "replace"))
    delim = re.compile(rb"(?:^|(?<=\r\n))--" + b + rb"(--)?[ \t]*(?:\r\n|$)")
    parts, start = [], None
    for mt in delim.finditer(body):
        if start is not None:
            end = mt.start() - 2 if mt.start() >= start + 2 else start
            parts.append(body[start:end])
        if mt.group(1):
            break
        start = mt.end()
    leaves = []
    for p in parts:
        leaves.extend(raw_leaves(p, depth + 1))
    return leaves


# ---------------------------------------------------------------- checks


def defects(msg):
    found = set()
    for part in msg.walk():
        found.update(type(d).__name__ for d in part.defects)
        for _, v in part.items():
            found.update(type(d).__name__ for d in getattr(v, "defects", ()))
    return found


def norm(s):
    return s.replace("\r\n", "\n")


def text_of(part):
    """The decoded text of a text part, line ends as LF."""
    payload = part.get_payload(decode=True) or b""
    cs = part.get_content_charset() or "us-ascii"
    return norm(payload.decode(cs, "replace"))


def footer_norm(f):
    f = norm(f).replace("\r", "\n")
    return f if f.endswith("\n") else f + "\n"


# ------------------------------------------------------- format=flowed


def is_flowed(part):
    return str(part.get_param("format", "")).lower() == "flowed"


def unflow(text, delsp):
    """RFC 3676 §4.2 read back: the (quote depth, text) of each paragraph
    and fixed line. Per line: count the quote marks (§4.5), drop one
    stuffing space (§4.4); "-- " is the signature separator, neither
    fixed nor flowed (§4.3), so it stands alone; a line that ends in a
    space is flowed and joins the next of the same depth, losing the
    space with DelSp=yes; a change of depth ends a paragraph; so does
    the end of the text."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    paras, cur = [], None
    for ln in lines:
        depth = len(ln) - len(ln.lstrip(">"))
        body = ln[depth:]
        if body.startswith(" "):
            body = body[1:]
        sig = body == "-- "
        if cur is not None and (cur[0] != depth or sig):
            paras.append(tuple(cur))
            cur = None
        soft = body.endswith(" ") and not sig
        if soft and delsp:
            body = body[:-1]
        if cur is None:
            cur = [depth, body]
        else:
            cur[1] += body
        if not soft:
            paras.append(tuple(cur))
            cur = None
    if cur is not None:
        paras.append(tuple(cur))
    return paras


def flowed_text(part):
    """A flowed part's text as its reader shows it."""
    delsp = str(part.get_param("delsp", "")).lower() == "yes"
    return unflow(text_of(part), delsp)


def footer_lines(f):
    """The footer's lines as a flowed reader must show them: trailing
    spaces are invisible, so they do not count; "-- " keeps its own."""
    return [(0, ln if ln == "-- " else ln.rstrip(" "))
            for ln in footer_norm(f).split("\n")[:-1]]


def check_flowed_append(mi, mo, fname, probs):
    old, got = text_of(mi), text_of(mo)
    if old and not old.endswith("\n"):
        old += "\n"
    if not got.startswith(old):
        probs.append("flowed: the old text is not where it was: %r"
                     % got[:200])
        return
    for ln in got[len(old):].split("\n"):
        if ln.startswith("From "):
            probs.append("flowed: a footer line not stuffed: %r" % ln)
    want = flowed_text(mi) + footer_lines(FOOTERS[fname])
    have = flowed_text(mo)
    if have != want:
        probs.append("flowed: read back %r, want %r" % (have[-12:],
                                                        want[-12:]))


def flowed_parts(msg):
    return [flowed_text(p) for p in msg.walk()
            if p.get_content_type() == "text/plain" and is_flowed(p)]


def encoded_within_76(before, part, probs):
    """Lines of a quoted-printable or base64 payload that footer.c wrote
    stay within 76 characters (RFC 2045 §6.7, §6.8)."""
    if part["Content-Transfer-Encoding"] is None or \
            part["Content-Transfer-Encoding"].cte not in \
            ("quoted-printable", "base64"):
        return
    had = set(before.get_payload().splitlines()) if before else set()
    for ln in part.get_payload().splitlines():
        if len(ln) > 76 and ln not in had:
            probs.append("an encoded line of %d characters" % len(ln))


def check(name, inp, fname, want, tool, work, verbose):
    """Run one message with one footer; return a list of problems."""
    probs = []
    base_ = "%s.%s" % (re.sub(r"[^\w.-]", "_", name), fname)
    mpath = os.path.join(work, base_ + ".in")
    fpath = os.path.join(work, base_ + ".footer")
    opath = os.path.join(work, base_ + ".out")
    with open(mpath, "wb") as fh:
        fh.write(inp)
    with open(fpath, "wb") as fh:
        fh.write(FOOTERS[fname].encode())
    if os.path.exists(opath):
        os.unlink(opath)
    r = subprocess.run([tool, mpath, fpath, opath], capture_output=True)
    line = r.stdout.decode("utf-8", "replace").rstrip("\n")
    how, _, why = line.partition("\t")
    if verbose:
        print("  %-28s %-6s %-9s %s" % (name, fname, how, why))
    if r.returncode not in (0, 1):
        return ["footer_tool exited %d: %s" % (r.returncode,
                                               r.stderr.decode())]
    if how != want:
        return ["how: got %r (why %r), want %r" % (how, why, want)]
    if how == REFUSED:
        return [] if r.returncode == 1 and why else ["refused without why"]
    with open(opath, "rb") as fh:
        outb = fh.read()
    mi = email.message_from_bytes(inp, policy=PARSE)
    mo = email.message_from_bytes(outb, policy=PARSE)
    new = defects(mo) - defects(mi)
    if new:
        probs.append("new defects in the output: %s" % ", ".join(sorted(new)))
    ftext = footer_norm(FOOTERS[fname])
    ih, ib = split_raw(inp)
    old_lines = set(inp.split(b"\r\n"))
    for ln in outb.split(b"\r\n"):
        if len(ln) > 998 and ln not in old_lines:
            probs.append("a new line of %d octets" % len(ln))

    if how == AP:
        if not outb.startswith(ih):
            probs.append("the header changed")
        if mo.is_multipart() or mo.get_content_type() != "text/plain":
            probs.append("appended, but the output is %s"
                         % mo.get_content_type())
            return probs
        encoded_within_76(mi, mo, probs)
        if is_flowed(mi):
            check_flowed_append(mi, mo, fname, probs)
            return probs
        old, got = text_of(mi), text_of(mo)
        if old and not old.endswith("\n"):
            old += "\n"
        if got != old + ftext:
            probs.append("decoded text: got %r, want %r"
                         % (got[-200:], (old + ftext)[-200:]))
        return probs

    # new part and wrapped: the original leaves, byte for byte
    leaves = raw_leaves(inp) if mi.get_content_maintype() == "multipart" \
        else []
    if how == WR:
        leaves.append(ib)
    for leaf in leaves:
        if leaf not in outb:
            probs.append("an input part is not in the output unchanged: "
                         "%r" % leaf[:120])
    if mo.get_content_type() != "multipart/mixed":
        probs.append("output is %s" % mo.get_content_type())
        return probs
    oparts = mo.get_payload()
    last = oparts[-1]
    if flowed_parts(mo) != flowed_parts(mi):
        probs.append("a flowed part reads differently")
    if last.get_content_type() != "text/plain" or \
            last.get_content_disposition() != "inline":
        probs.append("last part is %s, %s" % (last.get_content_type(),
                                              last.get_content_disposition()))
    elif text_of(last) != ftext:
        probs.append("footer part text %r, want %r" % (text_of(last), ftext))
    encoded_within_76(None, last, probs)
    if how == NP:
        iparts = mi.get_payload() if mi.is_multipart() else []
        if len(oparts) != len(iparts) + 1:
            probs.append("%d parts, want %d" % (len(oparts), len(iparts) + 1))
        elif [p.get_content_type() for p in oparts[:-1]] != \
                [p.get_content_type() for p in iparts]:
            probs.append("part types changed")
        if (mo.preamble, mo.epilogue) != (mi.preamble, mi.epilogue):
            probs.append("preamble or epilogue changed: %r %r"
                         % (mo.preamble, mo.epilogue))
    else:
        if len(oparts) != 2:
            probs.append("wrapped into %d parts, want 2" % len(oparts))
        elif oparts[0].get_content_type() != mi.get_content_type():
            probs.append("first part is %s, want %s"
                         % (oparts[0].get_content_type(),
                            mi.get_content_type()))
    return probs


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    verbose = "--verbose" in sys.argv
    if len(args) != 3:
        sys.stderr.write(__doc__)
        return 2
    tool, corpus, work = args
    os.makedirs(work, exist_ok=True)
    rows = generated() + from_corpus(corpus)
    passed = failed = 0
    for name, inp, want in rows:
        for fname in FOOTERS:
            probs = check(name, inp, fname, want[fname], tool, work, verbose)
            if probs:
                failed += 1
                for p in probs:
                    print("FAIL %s with the %s footer: %s" % (name, fname, p))
            else:
                passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
