#!/usr/bin/python3
"""lists.py - mailing lists, forwards and SRS through `arcrelay serve`.

    lists.py ARCRELAY WORKDIR [SRS_TOOL]

WORKDIR is wiped. Keys are made with `arcrelay keygen` for the list domain
(lists.example, the daemon's [signing] domain) and three author domains
(none.example p=none, quar.example p=quarantine, reject.example p=reject);
unbound serves them on a loopback port, tests/daemon/sink.py takes the
deliveries, and the daemon runs with five lists, two forwards and [srs].
SRS_TOOL (tests/srs's srs_tool; default: next to ARCRELAY in the build
tree) makes SRS addresses for a chosen time. Every check prints PASS or
FAIL with the detail; the last line is "N passed, M failed". Exit 0 when
nothing failed.

The helpers of tests/daemon/dlib.py are used as they are; its relay-setup
constants are pointed at this setup while its checkers run (with_names).
"""

import base64
import collections
import contextlib
import email
import email.header
import email.policy
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import dkim

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "daemon"))
sys.path.insert(0, os.path.join(HERE, "..", "footer"))
import dlib as D  # noqa: E402
import check_mime as FM  # noqa: E402

split_raw = FM.split_raw    # (header with its last CRLF, body)

T = D.Tally()

LISTS = "lists.example"             # list addresses, [signing] domain
LSEL = "ls1"
HOST = "mx.lists.example"           # hostname and authserv-id
SRS_DOMAIN = "fwd.lists.example"
SECRET = "lists-test-secret-0123456789abcdef"
OTHER_SECRET = "another-forwarder-secret-9876543210"
AUTHORS = {"none.example": ("none1", "none"), "quar.example": ("quar1", "quarantine"),
           "reject.example": ("rej1", "reject")}
DEST = "dest.example"               # members and forward targets (all reach the sink)
# ARC sealers upstream of the lists: the first one is trusted_arc
SEALERS = {"hop.example": "hop1", "rogue.example": "rogue1"}

ASCII_FOOTER = "-- \nYou are on the mime list.\nhttps://lists.example/mime\n"
UTF8_FOOTER = "-- \nListe utf8: Grüße aus Köln, ½ € ✓\nこんにちは\n"

LONG_LOCAL = "l" * 50               # vl-bounces+LOCAL=dest.example: over 64 octets

LG = logging.getLogger("lists-dkimpy")
LG.propagate = False
LG.setLevel(logging.CRITICAL)


def addr(local, dom=LISTS):
    return "%s@%s" % (local, dom)


@contextlib.contextmanager
def with_names(author):
    """dlib's checkers read its module constants: point them at this
    setup (our signing domain, selector and authserv-id; the author)."""
    saved = (D.RELAY_DOMAIN, D.RELAY_SELECTOR, D.AUTHSERV_ID, D.SENDER_DOMAIN)
    D.RELAY_DOMAIN, D.RELAY_SELECTOR, D.AUTHSERV_ID, D.SENDER_DOMAIN = LISTS, LSEL, HOST, author
    try:
        yield
    finally:
        D.RELAY_DOMAIN, D.RELAY_SELECTOR, D.AUTHSERV_ID, D.SENDER_DOMAIN = saved


# ---- setup ---------------------------------------------------------------------

def keygen(arcrelay, work):
    k = os.path.join(work, "keys")
    os.makedirs(k, exist_ok=True)
    pairs = [(LISTS, LSEL)] + [(d, s) for d, (s, _) in AUTHORS.items()] + list(SEALERS.items())
    for dom, sel in pairs:
        subprocess.run([arcrelay, "keygen", "--domain", dom, "--selector", sel, "--out", k],
                       check=True, capture_output=True)


def make_zone(work):
    z = D.Zone()
    k = os.path.join(work, "keys")
    spf = "v=spf1 ip4:127.0.0.1 -all"
    z.add_txt("%s._domainkey.%s" % (LSEL, LISTS), D.quoted_strings(os.path.join(k, LSEL + ".txt")))
    z.add_txt(LISTS, spf)
    z.add_txt("_dmarc." + LISTS, "v=DMARC1; p=none")
    z.add_txt(SRS_DOMAIN, spf)
    z.add_txt(HOST, "v=spf1 a -all")
    z.add(HOST, "A", "127.0.0.1")
    for dom, (sel, pol) in AUTHORS.items():
        z.add_txt("%s._domainkey.%s" % (sel, dom), D.quoted_strings(os.path.join(k, sel + ".txt")))
        z.add_txt(dom, spf)
        z.add_txt("_dmarc." + dom, "v=DMARC1; p=%s%s" % (pol, "; sp=none" if pol ==
                                                          "quarantine" else ""))
    for dom, sel in SEALERS.items():
        z.add_txt("%s._domainkey.%s" % (sel, dom), D.quoted_strings(os.path.join(k, sel + ".txt")))
    z.add_txt("other.example", spf)        # the other forwarder of the SRS1 case
    # A record at "example" itself makes unbound's local zone "example."
    # static: every other name under it is an NXDOMAIN at once, nothing
    # is looked for outside.
    z.add_txt("example", "v=spf1 -all")
    return z


def write_files(work):
    with open(os.path.join(work, "utf8-footer.txt"), "w", encoding="utf-8") as fh:
        fh.write(UTF8_FOOTER)
    with open(os.path.join(work, "utf8-members.txt"), "w") as fh:
        fh.write("# the utf8 list\nalice@none.example\nu1@dest.example\n")
    with open(os.path.join(work, "dm-members.txt"), "w") as fh:
        fh.write("# the demo list: the authors, and readers\n"
                 "alice@none.example\nalice@quar.example\nalice@reject.example\n"
                 "d1@dest.example\n"
                 "D1@dest.example   # the same reader, another case\n"
                 "d2@dest.example, d2@DEST.EXAMPLE\n")


def write_config(work, port, sink_port, dns_port):
    path = os.path.join(work, "arcrelay.conf")
    with open(path, "w") as fh:
        fh.write("""# written by tests/lists
[server]
listen = 127.0.0.1:%(port)d
hostname = %(host)s
authserv_id = %(host)s
spool = %(work)s/spool
idle_timeout = 60s
workers = 2

[dns]
resolver = 127.0.0.1@%(dns)d
timeout = 5s

[policy]
trusted_arc = hop.example

[delivery]
deliver = smtp:[127.0.0.1]:%(sink)d
retry = 1s 2s 5s
lifetime = 1h

[signing]
domain = %(lists)s
selector = %(lsel)s
key = %(work)s/keys/%(lsel)s.private

# MIME shapes, the ASCII footer given inline
[list mime@%(lists)s]
members = m1@dest.example, m2@dest.example
members = M1@Dest.Example
posters = any
footer = "-- \\\\nYou are on the mime list.\\\\nhttps://lists.example/mime"

# the UTF-8 footer from a file, members from a file
[list utf8@%(lists)s]
members = file:%(work)s/utf8-members.txt
posters = members
footer = file:%(work)s/utf8-footer.txt

[list dm@%(lists)s]
name = Demo
members = file:%(work)s/dm-members.txt
posters = members
subject_tag = [dm]
from_rewrite = dmarc
reply_to = author
list_id = Demo List <dm.%(lists)s>
unsubscribe = mailto:leave-{list} https://lists.example/leave?l={list}

[list always@%(lists)s]
members = a1@dest.example, A1@DEST.EXAMPLE, a2@dest.example
members = a3@dest.example a1@dest.example
posters = any
subject_tag = [Always]
from_rewrite = always
reply_to = list
unsubscribe = mailto:unsub@%(lists)s

[list never@%(lists)s]
members = n1@dest.example
posters = any
from_rewrite = never
reply_to = none

# relays posts that fail DMARC under p=reject (dmarc_stage)
[list lax@%(lists)s]
members = lax1@dest.example
posters = any
dmarc_reject = relay

# removed by a reload in the middle of a transaction (reload_race_stage)
[list gone@%(lists)s]
members = g1@dest.example
posters = any

# VERP senders (the default), bounces kept in SPOOL/bounces; a member
# with + and = in its local part, and one too long for a VERP sender
[list vl@%(lists)s]
members = v1@dest.example, x+tag=1@dest.example
members = %(longlocal)s@dest.example
posters = any

# the plain NAME-bounces sender, bounces kept elsewhere
[list plainv@%(lists)s]
members = pv1@dest.example, pv2@dest.example
posters = any
verp = no
bounces = maildir:%(work)s/plainv-bounces

# a member the sink refuses (bounces_stage): the relay's own bounce to
# its VERP sender is kept here, never sent over SMTP
[list rb@%(lists)s]
members = rb1@dest.example, rb2@dest.example
posters = any

[forward fw@%(lists)s]
to = fw-dest@dest.example
srs = yes

[forward plain@%(lists)s]
to = plain-dest@dest.example
srs = no

[srs]
domain = %(srs)s
secret = %(secret)s
max_age = 21d
""" % {"port": port, "host": HOST, "work": work, "dns": dns_port, "sink": sink_port,
       "lists": LISTS, "lsel": LSEL, "srs": SRS_DOMAIN, "secret": SECRET,
       "longlocal": LONG_LOCAL})
    return path


# ---- messages --------------------------------------------------------------------

SEQ = [0]
NO_SUBJECT = object()


def new_mid(tag):
    SEQ[0] += 1
    return "<%s.%d.%d@lists-test>" % (tag, SEQ[0], int(time.time()))


def make_msg(work, tag, to, body_head, body, author="none.example", frm=None,
             subject=None, extra=b"", sign=True):
    """A message from alice@AUTHOR, DKIM-signed by AUTHOR; (mid, bytes)."""
    mid = new_mid(tag)
    frm = frm or "Alice Author <alice@%s>" % author
    subject = subject or "lists " + tag
    head = D.crlf("From: %s\nTo: <%s>\n%sDate: Mon, 02 Sep 2024 10:00:00 +0000\n"
                  "Message-ID: %s\n" % (frm, to, "" if subject is NO_SUBJECT else
                                        "Subject: %s\n" % subject, mid))
    data = head + extra + D.crlf(body_head) + b"\r\n" + body
    if sign:
        sel = AUTHORS[author][0]
        data = dkim.sign(data, sel.encode(), author.encode(), D.read_key(work, sel),
                         canonicalize=(b"relaxed", b"relaxed")) + data
    return mid, data


def post(port, sender, rcpts, data, eightbit=False):
    """One SMTP transaction: (MAIL reply, [RCPT replies], final reply or
    None when no recipient was taken)."""
    c = D.Client(port)
    try:
        c.cmd("EHLO client.none.example")
        m = c.cmd("MAIL FROM:<%s>%s" % (sender, " BODY=8BITMIME" if eightbit else ""))
        rr = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
        fin = None
        if any(r[0] == 250 for r in rr):
            fin = c.data(data)[1]
        return m, rr, fin
    finally:
        c.close()


def copies_of(sink, mid):
    return [(e, d) for e, d in D.sink_messages(sink.dir) if D.message_ids(d) == mid]


def wait_copies(sink, want, timeout=20):
    """want: {mid: number of recipients}; {mid: [(env, data)]} once every
    one has arrived (or the time is up)."""
    def have():
        got = collections.defaultdict(list)
        for e, d in D.sink_messages(sink.dir):
            got[D.message_ids(d)].append((e, d))
        return got
    D.wait_for(lambda: all(sum(len(e["rcpt"]) for e, _ in have().get(m, [])) >= n
                           for m, n in want.items()), timeout)
    return have()


def rcpts_of(copies):
    return sorted(r.lower() for e, _ in copies for r in e["rcpt"])


# ---- MIME structure on raw bytes ---------------------------------------------------

def header_fields(header):
    """[(lowercase name, raw field bytes)] of a header block."""
    return [(m.group(1).decode("latin-1").lower(), m.group(0))
            for m in re.finditer(rb"(?m)^([!-9;-~]+):.*\r\n(?:[ \t].*\r\n)*", header)]


def boundary_of(header):
    m = email.message_from_bytes(header + b"\r\n", policy=email.policy.compat32)
    if m.get_content_maintype() != "multipart":
        return m, None
    return m, m.get_param("boundary")


def raw_parts(body, bnd):
    """The raw bytes of each body part between the delimiters (RFC 2046
    §5.1.1: the CRLF before a delimiter belongs to it). A missing close
    delimiter: the last part runs to the end."""
    b = bnd.encode("latin-1") if isinstance(bnd, str) else bnd
    parts, start = [], None
    for m in re.finditer(rb"(?m)^--" + re.escape(b) + rb"(--)?[ \t]*\r?$", body):
        if start is not None:
            parts.append(body[start:max(start, m.start() - 2)])
        if m.group(1):
            return parts
        start = m.end() + 1
    if start is not None:
        parts.append(body[start:])
    return parts


def leaves(raw, top=True):
    """The leaf parts of a message as ("part", raw bytes) for nested
    parts, and for a message that is one leaf itself ("top", (Content-*
    fields, body))."""
    header, body = split_raw(raw)
    _, bnd = boundary_of(header)
    if bnd is None:
        if top:
            mime = [f for n, f in header_fields(header) if n.startswith("content-")]
            return [("top", (mime, body))]
        return [("part", raw)]
    out = []
    for p in raw_parts(body, bnd):
        out += leaves(p, top=False)
    return out


def leaf_problems(orig, out):
    probs = []
    for kind, v in leaves(orig):
        if kind == "part":
            if v not in out:
                probs.append("leaf part not found byte for byte: %r..." % v[:80])
            continue
        fields, body = v
        for f in fields:
            if f not in out:
                probs.append("MIME field not kept: %r" % f)
        if body in out:
            continue
        # An appended base64 body is re-encoded: its decoded text must be
        # a prefix of the new one's.
        m = email.message_from_bytes(out, policy=email.policy.compat32)
        if m.get("Content-Transfer-Encoding", "").strip().lower() == "base64":
            old = base64.b64decode(re.sub(rb"\s", b"", body))
            new = m.get_payload(decode=True) or b""
            if not new.startswith(old):
                probs.append("base64 text changed: %r... became %r..." % (old[:60], new[:60]))
        else:
            probs.append("the body of the single part is not in the output: %r..." % body[:80])
    return probs


def cte_of(header):
    m = email.message_from_bytes(header + b"\r\n", policy=email.policy.compat32)
    return (m.get("Content-Transfer-Encoding") or "7bit").strip().lower()


def undeclared_8bit(data):
    """8-bit octets in a body whose part (or an enclosing one) does not say
    8bit or binary (RFC 2045 section 6.2)."""
    probs = []

    def walk(raw, outer_ok, where):
        header, body = split_raw(raw)
        ok = outer_ok and cte_of(header) in ("8bit", "binary")
        _, bnd = boundary_of(header)
        if bnd is None:
            if re.search(rb"[\x80-\xff]", body) and not ok:
                probs.append("%s: 8-bit octets under Content-Transfer-Encoding %s (or an "
                             "enclosing 7bit)" % (where, cte_of(header)))
            return
        for i, p in enumerate(raw_parts(body, bnd)):
            walk(p, ok, "%s.%d" % (where, i + 1))
    walk(data, True, "part 0")
    return probs


def defects(data):
    """The defect names email.policy.default finds (tests/footer's)."""
    return FM.defects(email.message_from_bytes(data, policy=email.policy.default))


def footer_in(data, footer):
    want = footer.strip("\n")
    m = email.message_from_bytes(data, policy=email.policy.default)
    for p in m.walk():
        if p.get_content_maintype() != "text":
            continue
        try:
            text = p.get_content()
        except Exception:
            continue
        if want in text.replace("\r\n", "\n"):
            return True
    return False


def shape_of(orig, out):
    """How the footer went in, judged from the output: appended,
    new part or wrapped (or a description of something else)."""
    oh, _ = split_raw(orig)
    nh, nb = split_raw(out)
    om, ob = boundary_of(oh)
    nm, nbnd = boundary_of(nh)
    _, obody = split_raw(orig)
    if nbnd is None:
        if nm.get_content_type() != om.get_content_type():
            return "single part of type %s" % nm.get_content_type()
        return "appended" if len(nb) > len(obody) else "body not longer"
    if nm.get_content_type() != "multipart/mixed":
        return "top level %s" % nm.get_content_type()
    if ob is not None and nbnd == ob:
        n, o = len(raw_parts(nb, nbnd)), len(raw_parts(obody, ob))
        return "new part" if n == o + 1 else "%d parts, the original had %d" % (n, o)
    first = raw_parts(nb, nbnd)[:1]
    if first:
        fh, _ = split_raw(first[0])
        if boundary_of(fh)[0].get_content_type() == om.get_content_type():
            return "wrapped"
    return "multipart/mixed of unclear shape"


# ---- verdicts on delivered copies --------------------------------------------------

def sig_results(data, zone):
    """{d=: (ok, why)} for every DKIM signature, by dkimpy."""
    out = {}
    d = dkim.DKIM(data, logger=LG, minkey=1024)
    sigs = [v for n, v in d.headers if n.lower() == b"dkim-signature"]
    for idx, v in enumerate(sigs):
        dom = D.tags(v.decode("latin-1")).get("d")
        try:
            ok, why = dkim.DKIM(data, logger=LG, minkey=1024).verify(
                idx=idx, dnsfunc=zone.dnsfunc()), ""
        except Exception as e:
            ok, why = False, "%s: %s" % (type(e).__name__, e)
        out.setdefault(dom, (ok, why))
    return out


def dkimpy_problems(data, zone):
    probs = []
    ok, why = sig_results(data, zone).get(LISTS, (False, "no d=%s signature" % LISTS))
    if not ok:
        probs.append("dkimpy: our DKIM signature does not verify %s" % why)
    try:
        cv, sets, reason = dkim.arc_verify(data, logger=LG, dnsfunc=zone.dnsfunc())
    except Exception as e:
        cv, sets, reason = None, [], "%s: %s" % (type(e).__name__, e)
    if cv != b"pass":
        probs.append("dkimpy arc_verify: cv=%r (%s)" % (cv, reason))
    elif len(sets) != 1 or sets[0].get("instance") != 1:
        # Posts arrive without ARC: ours is the one set, i=1.
        probs.append("dkimpy arc_verify: sets %r, want ours alone, i=1" % (sets,))
    return probs


def mdkim_problems(rec):
    if rec is None:
        return ["Mail::DKIM: not checked"]
    if rec.get("error"):
        return ["Mail::DKIM: %s" % rec["error"]]
    probs = []
    ours = [s for s in rec["dkim"] if s["d"] == LISTS]
    if not ours or ours[0]["result"] != "pass":
        probs.append("Mail::DKIM: our DKIM signature: %r" % (ours,))
    if rec["arc"] != "pass":
        probs.append("Mail::DKIM ARC: %s (%s)" % (rec["arc"], rec.get("arc_detail")))
    return probs


def top_fields(data, name):
    """Raw values (unfolded, stripped) of the top-level fields called name."""
    header, _ = split_raw(data)
    return [D.unfold(f).split(":", 1)[1].strip() for n, f in header_fields(header)
            if n == name.lower()]


def decoded(value):
    return str(email.header.make_header(email.header.decode_header(value)))


def explain(dm, reply):
    m = re.search(r"queued as ([0-9A-Za-z]+)", reply or "")
    lines = dm.grep(re.escape(m.group(1))) if m else []
    return "reply %r; daemon log:\n  %s" % (reply, "\n  ".join(lines[-8:]) or dm.tail(6))


# ---- 1. MIME shapes ---------------------------------------------------------------------

def mime_cases():
    """(name, list, body head, body, 8bit?, how the footer must go in)."""
    text = D.crlf("Hello list,\n\nplain text in 7bit.\n\n-- \nAlice\n")
    qp = D.crlf("Gr=C3=BC=C3=9Fe aus K=C3=B6ln, a long line that is broken by a soft line br=\n"
                "eak here, and an equals sign =3D done.\nthe last line ends soft=\n")
    b64 = base64.encodebytes("Grüße in base64.\nZweite Zeile.\n".encode().replace(b"\n", b"\r\n"))
    latin = "Caf\xe9 cr\xe8me br\xfbl\xe9e, \xa9 in iso-8859-1.\n".encode("latin-1")
    att = base64.encodebytes(bytes(range(256)) * 8)
    cases = [
        ("plain-7bit", "mime", "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n"
         "Content-Transfer-Encoding: 7bit\n", text, False, "appended"),
        ("no-content-type", "mime", "", D.crlf("No MIME fields at all.\n"), False, "appended"),
        ("quoted-printable", "mime", "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
         "Content-Transfer-Encoding: quoted-printable\n", qp, False, "appended"),
        ("base64", "mime", "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
         "Content-Transfer-Encoding: base64\n", D.crlf(b64), False, "appended"),
        ("utf8-8bit", "utf8", "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
         "Content-Transfer-Encoding: 8bit\n", D.crlf("Grüße, 8bit UTF-8.\n".encode()), True,
         "appended"),
        ("us-ascii-utf8-footer", "utf8", "MIME-Version: 1.0\nContent-Type: text/plain; "
         "charset=us-ascii\n", text, False, "wrapped"),
        ("utf8-7bit-utf8-footer", "utf8", "MIME-Version: 1.0\nContent-Type: text/plain; "
         "charset=utf-8\nContent-Transfer-Encoding: 7bit\n", text, False, "wrapped"),
        ("iso-8859-1", "utf8", "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\n"
         "Content-Transfer-Encoding: 8bit\n", D.crlf(latin), True, "wrapped"),
        ("mixed", "mime", 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="mx-1"\n',
         D.crlf("This is MIME.\n\n--mx-1\nContent-Type: text/plain; charset=us-ascii\n\n"
                "see the attachment\n\n--mx-1\nContent-Type: application/octet-stream\n"
                "Content-Transfer-Encoding: base64\n"
                "Content-Disposition: attachment; filename=\"r.bin\"\n\n") + D.crlf(att) +
         D.crlf("--mx-1--\nepilogue text\n"), False, "new part"),
        ("mixed-utf8-footer", "utf8",
         'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=mx2\n',
         D.crlf("--mx2\nContent-Type: text/plain\n\nfirst\n--mx2\nContent-Type: text/plain\n\n"
                "second\n--mx2--\n"), False, "new part"),
        ("alternative", "mime",
         'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="alt"\n',
         D.crlf("--alt\nContent-Type: text/plain; charset=us-ascii\n\nplain version\n"
                "--alt\nContent-Type: text/html; charset=us-ascii\n\n<p>html version</p>\n"
                "--alt--\n"), False, "wrapped"),
        ("signed", "mime",
         'MIME-Version: 1.0\nContent-Type: multipart/signed; protocol="application/pgp-signature";'
         '\n micalg=pgp-sha256; boundary="sig-b"\n',
         D.crlf("--sig-b\nContent-Type: text/plain; charset=us-ascii\n"
                "Content-Transfer-Encoding: quoted-printable\n\nsigned text, trailing space =20\n"
                "--sig-b\nContent-Type: application/pgp-signature; name=\"signature.asc\"\n\n"
                "-----BEGIN PGP SIGNATURE-----\n\niQEzBAEBCAAdFiEE\n=abcd\n"
                "-----END PGP SIGNATURE-----\n--sig-b--\n"), False, "wrapped"),
        ("related", "mime",
         'MIME-Version: 1.0\nContent-Type: multipart/related; type="text/html"; boundary=rel\n',
         D.crlf("--rel\nContent-Type: text/html; charset=us-ascii\n\n"
                "<p><img src=\"cid:img1@x\"></p>\n--rel\nContent-Type: image/png\n"
                "Content-ID: <img1@x>\nContent-Transfer-Encoding: base64\n\n") +
         D.crlf(base64.encodebytes(b"\x89PNG\r\n\x1a\n" + bytes(100))) + D.crlf("--rel--\n"),
         False, "wrapped"),
        ("nested", "mime", 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="o"\n',
         D.crlf("--o\nContent-Type: multipart/alternative; boundary=\"i\"\n\n--i\n"
                "Content-Type: text/plain\n\ninner plain\n--i\nContent-Type: text/html\n\n"
                "<b>inner</b>\n--i--\n\n--o\nContent-Type: text/plain\n\nouter\n--o--\n"),
         False, "new part"),
        ("unclosed-boundary", "mime",
         'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="never"\n',
         D.crlf("--never\nContent-Type: text/plain\n\nthe close delimiter never comes\n"),
         False, "wrapped"),
        ("boundary-missing", "mime", "MIME-Version: 1.0\nContent-Type: multipart/mixed\n",
         D.crlf("--x\nContent-Type: text/plain\n\nno boundary parameter\n--x--\n"),
         False, "wrapped"),
    ]
    return cases


LIST_MEMBERS = {"mime": ["m1@dest.example", "m2@dest.example"],
                "utf8": ["alice@none.example", "u1@dest.example"]}
FOOTERS = {"mime": ASCII_FOOTER, "utf8": UTF8_FOOTER}


def mime_stage(work, dm, sink, zone):
    sent = []
    for name, lst, bh, body, eight, how in mime_cases():
        mid, data = make_msg(work, name, addr(lst), bh, body)
        with open(os.path.join(work, "sent", name + ".eml"), "wb") as fh:
            fh.write(data)
        m, rr, fin = post(dm.port, "alice@none.example", [addr(lst)], data, eightbit=eight)
        T.check("mime %s: posted to %s, 250" % (name, lst), fin and fin[0] == 250,
                "MAIL %r RCPT %r DATA %r\n%s" % (m, rr, fin, dm.tail(5)))
        sent.append((name, lst, mid, data, how, fin[1] if fin else ""))
    got = wait_copies(sink, {mid: len(LIST_MEMBERS[lst]) for _, lst, mid, _, _, _ in sent})
    files = [e["file"] for _, _, mid, _, _, _ in sent for e, _ in got.get(mid, [])]
    md = D.run_mdkim(work, files) if files else {}
    for name, lst, mid, data, how, reply in sent:
        copies = got.get(mid, [])
        T.check("mime %s: one copy per member" % name,
                rcpts_of(copies) == sorted(LIST_MEMBERS[lst]),
                "the sink got %r\n%s" % (rcpts_of(copies), explain(dm, reply)))
        if not copies:
            continue
        T.check("mime %s: every copy byte-identical" % name,
                len({d for _, d in copies}) == 1,
                "%d distinct copies" % len({d for _, d in copies}))
        probs = []
        for e, d in copies:
            probs += ["%s: %s" % (os.path.basename(e["file"]), p) for p in dkimpy_problems(d, zone)]
        T.check("mime %s: ARC cv=pass and our DKIM (d=%s) pass, dkimpy" % (name, LISTS), not probs,
                "\n".join(probs))
        probs = []
        for e, d in copies:
            probs += ["%s: %s" % (os.path.basename(e["file"]), p)
                      for p in mdkim_problems(md.get(e["file"]))]
        T.check("mime %s: ARC cv=pass and our DKIM pass, Mail::DKIM" % name, not probs,
                "\n".join(probs))
        out = copies[0][1]
        probs = leaf_problems(data, out)
        T.check("mime %s: every original leaf part byte-identical in the output" % name,
                not probs, "\n".join(probs) + "\nfile: %s" % copies[0][0]["file"])
        new = defects(out) - defects(data)
        T.check("mime %s: parses with email.policy.default, no new defects" % name, not new,
                "new defects: %r (original had %r)\nfile: %s" % (sorted(new),
                                                                  sorted(defects(data)),
                                                                  copies[0][0]["file"]))
        probs = undeclared_8bit(out)
        T.check("mime %s: every 8-bit octet is in a part declared 8bit" % name, not probs,
                "\n".join(probs))
        if name == "mixed":
            checker_selftest(data, out, zone)
        shape = shape_of(data, out)
        T.check("mime %s: footer %s, present when decoded" % (name, how),
                shape == how and footer_in(out, FOOTERS[lst]),
                "shape: %s (want %s), footer found: %s\nfile: %s" % (
                    shape, how, footer_in(out, FOOTERS[lst]), copies[0][0]["file"]))


def checker_selftest(orig, out, zone):
    """The checkers catch what they are for, on a tampered delivered copy."""
    i = out.find(b"see the attachment")
    leaf = out[:i] + b"S" + out[i + 1:]
    T.check("harness: a changed leaf part is caught", bool(leaf_problems(orig, leaf)), "")
    T.check("harness: the changed copy fails our DKIM (dkimpy)", bool(dkimpy_problems(leaf, zone)),
            "")
    nofoot = out.replace(b"You are on the mime list.", b"You are on no list.")
    T.check("harness: a missing footer is caught", not footer_in(nofoot, ASCII_FOOTER), "")
    eight = out.replace(b"see the attachment", b"see the \xe4ttachment")
    T.check("harness: an undeclared 8-bit octet is caught", bool(undeclared_8bit(eight)), "")
    T.check("harness: the original is not 'new part' of itself", shape_of(orig, orig) != "new part",
            shape_of(orig, orig))


# ---- 2. list options ----------------------------------------------------------------------

DM_MEMBERS = ["alice@none.example", "alice@quar.example", "alice@reject.example",
              "d1@dest.example", "d2@dest.example"]
ALWAYS_MEMBERS = ["a1@dest.example", "a2@dest.example", "a3@dest.example"]


def options_stage(work, dm, sink, zone):
    plain = "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n"
    body = D.crlf("a post\n")
    posts = [
        # name, list, author, subject, want subject (decoded)
        ("dm-none", "dm", "none.example", "hello", "[dm] hello"),
        ("dm-quar", "dm", "quar.example", "Re: [dm] hello", "Re: [dm] hello"),
        ("dm-reject", "dm", "reject.example", "=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Köln",
         "[dm] Grüße aus Köln"),
        ("dm-encoded-tag", "dm", "none.example", "=?utf-8?q?=5Bdm=5D_schon_da?=", "[dm] schon da"),
        ("always-none", "always", "none.example", "a subject", "[Always] a subject"),
        ("never-reject", "never", "reject.example", "untagged", "untagged"),
        ("dm-no-subject", "dm", "none.example", None, "[dm]"),
        ("dm-reply-to-kept", "dm", "reject.example", "own reply-to", "[dm] own reply-to",
         "Reply-To: <replies@reject.example>\n"),
        ("always-reply-to-replaced", "always", "none.example", "theirs", "[Always] theirs",
         "Reply-To: <replies@none.example>\n"),
    ]
    sent = {}
    for name, lst, author, subj, want, *extra in posts:
        raw_subj = subj if subj is not None else NO_SUBJECT
        if subj and not all(ord(ch) < 128 for ch in subj):
            # Non-ASCII outside the encoded word: encode that part too.
            raw_subj = subj.replace("Köln", "=?utf-8?q?K=C3=B6ln?=")
        mid, data = make_msg(work, name, addr(lst), plain, body, author=author, subject=raw_subj,
                             extra=D.crlf("".join(extra)))
        m, rr, fin = post(dm.port, "alice@" + author, [addr(lst)], data)
        T.check("options %s: posted, 250" % name, fin and fin[0] == 250,
                "MAIL %r RCPT %r DATA %r" % (m, rr, fin))
        sent[name] = (lst, author, mid, data, want, fin[1] if fin else "")
    members = {"dm": DM_MEMBERS, "always": ALWAYS_MEMBERS, "never": ["n1@dest.example"]}
    got = wait_copies(sink, {v[2]: len(members[v[0]]) for v in sent.values()})
    for name, (lst, author, mid, data, want, reply) in sent.items():
        copies = got.get(mid, [])
        if not T.check("options %s: delivered to every member" % name,
                       rcpts_of(copies) == sorted(members[lst]),
                       "the sink got %r\n%s" % (rcpts_of(copies), explain(dm, reply))):
            if not copies:
                continue
        out = copies[0][1]
        subj = top_fields(out, "Subject")
        tag = {"dm": "[dm]", "always": "[Always]", "never": None}[lst]
        dsub = decoded(subj[0]) if len(subj) == 1 else None
        ok = dsub is not None and re.sub(r"\s+", " ", dsub) == want and \
            (tag is None or dsub.lower().count(tag.lower()) == 1)
        T.check("options %s: Subject %r" % (name, want), ok,
                "Subject fields: %r, decoded %r" % (subj, dsub))
        check_from(name, lst, author, data, out)
        check_list_fields(name, lst, out)
        probs = dkimpy_problems(out, zone)
        T.check("options %s: ARC and our DKIM pass (dkimpy)" % name, not probs, "\n".join(probs))
    # A subdomain author: the policy that applies to it decides (sp= of
    # quar.example is none; reject.example has no sp=, so p=reject).
    subs = []
    for sub, rewrite in (("news.quar.example", False), ("news.reject.example", True)):
        org = sub.split(".", 1)[1]
        mid, data = make_msg(work, "sub-" + sub, addr("dm"), plain, body, author=org,
                             frm="Alice Author <alice@%s>" % sub)
        m, rr, fin = post(dm.port, "alice@" + org, [addr("dm")], data)
        subs.append((sub, rewrite, mid, data, fin))
    got = wait_copies(sink, {mid: len(DM_MEMBERS) for _, _, mid, _, _ in subs})
    for sub, rewrite, mid, data, fin in subs:
        c = got.get(mid, [])
        froms = top_fields(c[0][1], "From") if c else None
        orig = top_fields(data, "From")
        ok = bool(c) and (froms != orig if rewrite else froms == orig)
        T.check("options: author at %s: From %s" % (sub, "rewritten" if rewrite else "kept"),
                ok, "DATA %r, From %r (original %r)" % (fin, froms, orig))
    return sent


def check_from(name, lst, author, data, out):
    orig_from = top_fields(data, "From")[0]
    froms = top_fields(out, "From")
    xof = top_fields(out, "X-Original-From")
    rto = top_fields(out, "Reply-To")
    rewrite = {"dm": AUTHORS[author][1] in ("quarantine", "reject"), "always": True,
               "never": False}[lst]
    if rewrite:
        want_from = "Alice Author via %s <%s>" % ({"dm": "Demo"}.get(lst, lst), addr(lst))
        got = decoded(froms[0]).replace('"', "") if len(froms) == 1 else froms
        T.check("options %s: From rewritten to the list (p=%s, from_rewrite=%s)"
                % (name, AUTHORS[author][1], {"dm": "dmarc"}.get(lst, lst)),
                got == want_from, "From fields %r, want %r" % (froms, want_from))
        T.check("options %s: X-Original-From holds the author's From" % name,
                xof == [orig_from], "X-Original-From %r, want [%r]" % (xof, orig_from))
    else:
        T.check("options %s: From kept (p=%s, from_rewrite=%s)"
                % (name, AUTHORS[author][1], {"dm": "dmarc"}.get(lst, lst)),
                froms == [orig_from] and not xof,
                "From %r (want [%r]), X-Original-From %r" % (froms, orig_from, xof))
    theirs = top_fields(data, "Reply-To")
    want_rto = {"dm": theirs or ([orig_from] if rewrite else []), "always": [addr(lst)],
                "never": theirs}[lst]
    T.check("options %s: Reply-To %r (reply_to=%s)"
            % (name, want_rto, {"dm": "author", "always": "list", "never": "none"}[lst]),
            rto == want_rto, "Reply-To fields %r" % (rto,))


def check_list_fields(name, lst, out):
    want = {
        "dm": {"list-id": ["Demo List <dm.lists.example>"],
               "list-post": ["<mailto:dm@lists.example>"],
               "list-unsubscribe": ["<mailto:leave-dm@lists.example>, "
                                    "<https://lists.example/leave?l=dm@lists.example>"],
               "list-unsubscribe-post": ["List-Unsubscribe=One-Click"]},
        "always": {"list-id": ["<always.lists.example>"],
                   "list-post": ["<mailto:always@lists.example>"],
                   "list-unsubscribe": ["<mailto:unsub@lists.example>"],
                   "list-unsubscribe-post": []},
        "never": {"list-id": ["<never.lists.example>"],
                  "list-post": ["<mailto:never@lists.example>"],
                  "list-unsubscribe": [], "list-unsubscribe-post": []},
    }[lst]
    want["precedence"] = ["list"]
    probs = []
    for n, v in want.items():
        got = [re.sub(r",\s*", ", ", x) for x in top_fields(out, n)]
        if got != v:
            probs.append("%s: %r, want %r" % (n, got, v))
    T.check("options %s: List-Id, List-Post, List-Unsubscribe(-Post), Precedence" % name,
            not probs, "\n".join(probs))


# ---- 3. expansion ---------------------------------------------------------------------------

def expansion_stage(work, dm, sink):
    mid, data = make_msg(work, "expand", addr("always"), "", D.crlf("to everyone\n"))
    # The list named twice, in two cases: still one copy per member.
    m, rr, fin = post(dm.port, "alice@none.example", [addr("always"), "ALWAYS@lists.example"], data)
    reply = fin[1] if fin else ""
    T.check("expansion: posted (the list named twice), 250", fin and fin[0] == 250,
            "RCPT %r DATA %r" % (rr, fin))
    got = wait_copies(sink, {mid: len(ALWAYS_MEMBERS)}).get(mid, [])
    time.sleep(1)       # a duplicate would come right behind
    got = copies_of(sink, mid)
    per = collections.Counter(r.lower() for e, _ in got for r in e["rcpt"])
    T.check("expansion: one copy per distinct member (listed twice, other case: once)",
            sorted(per) == ALWAYS_MEMBERS and set(per.values()) == {1} and
            all(len(e["rcpt"]) == 1 for e, _ in got),
            "copies per recipient %r, want one each of %r\n%s" % (dict(per), ALWAYS_MEMBERS,
                                                                 explain(dm, reply)))
    T.check("expansion: every copy byte-identical", len({d for _, d in got}) == 1,
            "%d distinct contents" % len({d for _, d in got}))
    bad = [(e["rcpt"], e["mail_from"]) for e, _ in got
           if e["mail_from"] != verp_sender("always", e["rcpt"][0])]
    T.check("expansion: each copy's envelope sender is its member's VERP address "
            "always-bounces+LOCAL=DOMAIN@lists.example", got and not bad,
            "(rcpt, sender) not as wanted: %r" % bad)
    ids = re.findall(r"\b[0-9A-F]{20,}\b", reply)
    T.check("expansion: the 250 reply names the queue ids (%d)" % len(ids),
            len(set(ids)) == len(ALWAYS_MEMBERS), "reply %r" % reply)
    # A member posting in another case is a member.
    mid, data = make_msg(work, "member-case", addr("dm"), "", D.crlf("upper case sender\n"))
    m, rr, fin = post(dm.port, "ALICE@None.Example", [addr("dm")], data)
    T.check("expansion: a member's address in other case may post to a members-only list",
            fin is not None and fin[0] == 250, "RCPT %r DATA %r" % (rr, fin))
    # Two lists and a forward in one transaction: each output its own.
    mid, data = make_msg(work, "three-rules", addr("dm"), "", D.crlf("to three rules\n"))
    m, rr, fin = post(dm.port, "alice@none.example", [addr("dm"), addr("always"), addr("fw")],
                      data)
    T.check("expansion: two lists and a forward in one transaction, 250",
            fin is not None and fin[0] == 250, "RCPT %r DATA %r" % (rr, fin))
    want = len(DM_MEMBERS) + len(ALWAYS_MEMBERS) + 1
    reply = fin[1] if fin else ""
    ids = re.findall(r"\b[0-9A-F]{20,}\b", reply)
    more = re.search(r" and (\d+) more$", reply)
    T.check("expansion: %d queue entries: the reply names those that fit, then how many "
            "more" % want, len(set(ids)) + (int(more.group(1)) if more else 0) == want and
            len(reply) < 256, "reply %r" % reply)
    got = wait_copies(sink, {mid: want}).get(mid, [])
    by = collections.defaultdict(set)
    for e, d in got:
        by[(re.sub(r"\+[^@]*@", "@", e["mail_from"]), top_fields(d, "List-Id")[0] if top_fields(d, "List-Id") else None)] \
            .update(r.lower() for r in e["rcpt"])
    wantby = {("dm-bounces@lists.example", "Demo List <dm.lists.example>"): set(DM_MEMBERS),
              ("always-bounces@lists.example", "<always.lists.example>"): set(ALWAYS_MEMBERS)}
    fwd = [k for k in by if k[1] is None]
    ok = {k: v for k, v in by.items() if k[1] is not None} == wantby and len(fwd) == 1 and \
        re.match(SRS0_RE, fwd[0][0]) and by[fwd[0]] == {"fw-dest@dest.example"}
    T.check("expansion: each list's members get that list's copy, the forward the plain one",
            ok, "got (sender, List-Id) -> recipients: %r" % dict(by))
    # The same list is expanded per member: the daemon logs the rule.
    T.check("expansion: the daemon logs the list rule with its recipients",
            bool(dm.grep(r'rule="list always@lists.example" sender=<always-bounces@lists.example> '
                         r'recipients=3 verp=yes')), dm.tail(5))


def verp_sender(lst, member):
    """The VERP sender of member's copy of a post to lst (README: every
    octet but letters, digits, '.', '-' and '_' as +HH)."""
    local, dom = member.rsplit("@", 1)
    enc = lambda s: "".join(c if re.match(r"[A-Za-z0-9._-]", c) else "+%02X" % ord(c) for c in s)
    v = "%s-bounces+%s=%s" % (lst, enc(local), enc(dom))
    return (v if len(v) <= 64 else lst + "-bounces") + "@" + LISTS


# ---- 4. refusals ----------------------------------------------------------------------------

def refusal_stage(work, dm, sink):
    plain = "MIME-Version: 1.0\nContent-Type: text/plain\n"
    # A non-member to a members-only list, with a second, open list: the
    # refused recipient gets nothing.
    mid, data = make_msg(work, "stranger", addr("dm"), plain, D.crlf("not a member\n"))
    m, rr, fin = post(dm.port, "stranger@none.example", [addr("dm"), addr("never")], data)
    T.check("refusal: non-member to a members-only list: 5xx at RCPT",
            500 <= rr[0][0] < 600, "RCPT %r" % (rr[0],))
    T.check("refusal: the same session's open list (posters=any) takes the non-member",
            rr[1][0] == 250 and fin and fin[0] == 250, "RCPT %r DATA %r" % (rr[1], fin))
    got = wait_copies(sink, {mid: 1}).get(mid, [])
    time.sleep(1)
    got = copies_of(sink, mid)
    T.check("refusal: the non-member's post reached the open list's member only",
            rcpts_of(got) == ["n1@dest.example"], "the sink got %r" % rcpts_of(got))
    # Null sender, to a members-only and to a posters=any list.
    for lst in ("dm", "never"):
        c = D.Client(dm.port)
        c.cmd("EHLO bounce.none.example")
        c.cmd("MAIL FROM:<>")
        r = c.cmd("RCPT TO:<%s>" % addr(lst))
        c.close()
        T.check("refusal: null sender to %s: 5xx at RCPT, saying why" % addr(lst),
                500 <= r[0] < 600 and "null sender" in r[1], "RCPT %r" % (r,))
    # A post carrying the list's own List-Id: a loop, refused at the end
    # of DATA (the identifier compared without regard to case).
    loops = []
    for label, lid in (("as written", "Demo List <dm.lists.example>"),
                       ("other case", "<DM.Lists.Example>")):
        mid, data = make_msg(work, "loop", addr("dm"), plain, D.crlf("loop\n"),
                             extra=D.crlf("List-Id: %s\n" % lid))
        m, rr, fin = post(dm.port, "alice@none.example", [addr("dm")], data)
        T.check("refusal: a post with the list's List-Id (%s): 5xx at end of DATA" % label,
                rr[0][0] == 250 and fin is not None and 500 <= fin[0] < 600,
                "RCPT %r DATA %r" % (rr, fin))
        loops.append(mid)
    time.sleep(1)
    T.check("refusal: nothing of the looping posts delivered",
            not any(copies_of(sink, mid) for mid in loops), "a looping post was delivered")
    # Another list's List-Id is no loop.
    mid, data = make_msg(work, "other-list-id", addr("never"), plain, D.crlf("upstream\n"),
                         extra=D.crlf("List-Id: <upstream.example.org>\n"))
    m, rr, fin = post(dm.port, "alice@none.example", [addr("never")], data)
    T.check("refusal: another list's List-Id is no loop: 250", fin and fin[0] == 250,
            "DATA %r" % (fin,))
    got = wait_copies(sink, {mid: 1}).get(mid, [])
    T.check("refusal: the upstream List-Id is replaced by ours",
            bool(got) and top_fields(got[0][1], "List-Id") == ["<never.lists.example>"],
            "List-Id %r" % (top_fields(got[0][1], "List-Id") if got else None))


def dmarc_stage(work, dm, sink):
    """Posts that fail DMARC on arrival (unsigned, the envelope at another
    domain): refused under p=reject unless dmarc_reject = relay, and never
    given the list's From."""
    plain = "MIME-Version: 1.0\nContent-Type: text/plain\n"
    refused = []
    for lst in ("mime", "never", "always"):
        mid, data = make_msg(work, "spoof-" + lst, addr(lst), plain, D.crlf("spoof\n"),
                             author="reject.example", sign=False)
        m, rr, fin = post(dm.port, "mallory@none.example", [addr(lst)], data)
        T.check("dmarc: a post failing p=reject to %s: 550 5.7.26 at the end of DATA" % lst,
                rr[0][0] == 250 and fin is not None and fin[0] == 550 and "5.7.26" in fin[1],
                "RCPT %r DATA %r" % (rr, fin))
        refused.append(mid)
    # Relayed with dmarc_reject = relay, From as it came; and a post failing
    # p=quarantine (quar.example) goes on, From kept, on a dmarc list.
    want = {}
    for lst, author in (("lax", "reject.example"), ("mime", "quar.example")):
        mid, data = make_msg(work, "fail-" + lst, addr(lst), plain, D.crlf("fails DMARC\n"),
                             author=author, sign=False)
        m, rr, fin = post(dm.port, "mallory@none.example", [addr(lst)], data)
        T.check("dmarc: a post failing p=%s to %s: 250" % (AUTHORS[author][1], lst),
                fin is not None and fin[0] == 250, "RCPT %r DATA %r" % (rr, fin))
        want[mid] = (lst, author, data)
    got = wait_copies(sink, dict((m, {"lax": 1, "mime": 2}[v[0]]) for m, v in want.items()))
    for mid, (lst, author, data) in want.items():
        c = got.get(mid, [])
        froms = [top_fields(d, "From") for _, d in c]
        T.check("dmarc: the post failing p=%s via %s keeps its From, no X-Original-From"
                % (AUTHORS[author][1], lst),
                bool(c) and all(f == top_fields(data, "From") for f in froms) and
                not any(top_fields(d, "X-Original-From") for _, d in c),
                "From fields %r, original %r" % (froms, top_fields(data, "From")))
    # A post that passed DMARC at an upstream hop which then changed it (a
    # footer) and sealed it: DMARC fails here. The trusted sealer's AAR
    # vouches for it, so it is taken and From is rewritten (p=reject); an
    # untrusted sealer, or a chain broken after sealing, does not.
    taken = {}
    for label, sealer, tamper in (("trusted", "hop.example", False),
                                  ("untrusted", "rogue.example", False),
                                  ("broken chain", "hop.example", True)):
        mid, data = make_msg(work, "arc-" + label.replace(" ", "-"), addr("mime"), plain,
                             D.crlf("sent through a hop\n"), author="reject.example")
        ar = D.crlf("Authentication-Results: %s; dkim=pass header.d=reject.example; "
                    "dmarc=pass header.from=reject.example; arc=none\n" % sealer)
        hopped = ar + data + D.crlf("-- \nadded by the hop\n")
        sel = SEALERS[sealer]
        sealed = b"".join(dkim.arc_sign(hopped, sel.encode(), sealer.encode(),
                                        D.read_key(work, sel), sealer.encode())) + hopped
        if tamper:
            sealed = sealed.replace(b"added by the hop", b"ADDED BY THE HOP")
        m, rr, fin = post(dm.port, "mallory@none.example", [addr("mime")], sealed)
        if label == "trusted":
            T.check("dmarc: failing here, vouched for by the trusted sealer's AAR: 250",
                    fin is not None and fin[0] == 250, "RCPT %r DATA %r\n%s" % (rr, fin,
                                                                               dm.tail(5)))
            taken[mid] = data
        else:
            T.check("dmarc: failing here, %s: 550 5.7.26" % label,
                    fin is not None and fin[0] == 550 and "5.7.26" in fin[1],
                    "RCPT %r DATA %r" % (rr, fin))
            refused.append(mid)
    got = wait_copies(sink, dict((m, 2) for m in taken))
    for mid, data in taken.items():
        c = got.get(mid, [])
        T.check("dmarc: the vouched-for post has the list's From, the author's in "
                "X-Original-From",
                bool(c) and all(top_fields(d, "From") != top_fields(data, "From") and
                                top_fields(d, "X-Original-From") == top_fields(data, "From")
                                for _, d in c), "From %r" % [top_fields(d, "From") for _, d in c])
    T.check("dmarc: the override is logged with its sealer",
            any("override=arc sealer=hop.example" in ln for ln in dm.tail(400).splitlines()),
            "log: %s" % dm.tail(20))
    time.sleep(1)
    T.check("dmarc: nothing of the refused posts delivered",
            not any(copies_of(sink, mid) for mid in refused),
            "the sink got %r" % [mid for mid in refused if copies_of(sink, mid)])


# ---- 5. members file on SIGHUP ---------------------------------------------------------------

def reload(dm):
    """SIGHUP, and the reload lines the daemon logged for it."""
    n = len(dm.grep(r"event=reload"))
    dm.signal(signal.SIGHUP)
    D.wait_for(lambda: len(dm.grep(r"event=reload")) > n, 10)
    return dm.grep(r"event=reload")[n:]


def sighup_stage(work, dm, sink):
    path = os.path.join(work, "dm-members.txt")
    with open(path, "a") as fh:
        fh.write("newbie@dest.example\n")
    lines = reload(dm)
    T.check("SIGHUP: reload logged as ok", any("result=ok" in ln for ln in lines),
            "log: %r" % lines)
    mid, data = make_msg(work, "after-hup", addr("dm"), "", D.crlf("after the reload\n"))
    m, rr, fin = post(dm.port, "alice@none.example", [addr("dm")], data)
    T.check("SIGHUP: post after the reload, 250", fin and fin[0] == 250, "%r %r" % (rr, fin))
    want = sorted(DM_MEMBERS + ["newbie@dest.example"])
    got = wait_copies(sink, {mid: len(want)}).get(mid, [])
    T.check("SIGHUP: the member added to the file gets a copy",
            rcpts_of(got) == want, "the sink got %r, want %r" % (rcpts_of(got), want))
    # A members file that no longer reads: the reload is refused and the
    # lists stay as they were.
    with open(path) as fh:
        good = fh.read()
    with open(path, "a") as fh:
        fh.write("not an address\n")
    lines = reload(dm)
    T.check("SIGHUP: a bad members file: reload refused, naming the file",
            any("result=refused" in ln and "dm-members.txt" in ln for ln in lines) and
            dm.alive(), "log: %r" % lines)
    mid, data = make_msg(work, "after-bad-hup", addr("dm"), "", D.crlf("still the old list\n"))
    m, rr, fin = post(dm.port, "alice@none.example", [addr("dm")], data)
    got = wait_copies(sink, {mid: len(want)}).get(mid, [])
    T.check("SIGHUP: after the refused reload the list keeps its members",
            rcpts_of(got) == want, "the sink got %r, want %r" % (rcpts_of(got), want))
    with open(path, "w") as fh:
        fh.write(good)


def reload_race_stage(work, dm, sink):
    """A reload that removes a list between RCPT and the end of DATA: the
    message is deferred (never relayed as plain mail to the list address),
    and the retry meets the new rules at RCPT."""
    path = os.path.join(work, "arcrelay.conf")
    with open(path) as fh:
        conf = fh.read()
    block = conf.index("[list gone@")
    end = conf.index("\n\n", block) + 2
    mid, data = make_msg(work, "reload-race", addr("gone"), "", D.crlf("in flight\n"))
    c = D.Client(dm.port)
    try:
        c.cmd("EHLO client.none.example")
        c.cmd("MAIL FROM:<alice@none.example>")
        rr = c.cmd("RCPT TO:<%s>" % addr("gone"))
        T.check("reload race: RCPT to the list before the reload, 250", rr[0] == 250,
                "RCPT %r" % (rr,))
        with open(path, "w") as fh:
            fh.write(conf[:block] + conf[end:])
        lines = reload(dm)
        T.check("reload race: the reload without the list is ok",
                any("result=ok" in ln for ln in lines), "log: %r" % lines)
        fin = c.data(data)[1]
        T.check("reload race: end of DATA after the reload, 451 4.3.0",
                fin is not None and fin[0] == 451, "DATA %r" % (fin,))
    finally:
        c.close()
    m, rr, fin = post(dm.port, "alice@none.example", [addr("gone")], data)
    T.check("reload race: the retry is refused at RCPT",
            rr and 500 <= rr[0][0] < 600 and fin is None, "RCPT %r DATA %r" % (rr, fin))
    time.sleep(1)
    T.check("reload race: nothing of it delivered", not copies_of(sink, mid),
            "the sink got %r" % copies_of(sink, mid))
    with open(path, "w") as fh:
        fh.write(conf)
    reload(dm)


# ---- 6. forwards ----------------------------------------------------------------------------

SRS0_RE = r"^SRS0=[^=]{4}=[^=]{2}=none\.example=alice@" + re.escape(SRS_DOMAIN) + "$"


def forward_stage(work, dm, sink, zone):
    out = {}
    for fwd, dest in (("fw", "fw-dest@dest.example"), ("plain", "plain-dest@dest.example")):
        mid, data = make_msg(work, "forward-" + fwd, addr(fwd),
                             "MIME-Version: 1.0\nContent-Type: text/plain\n",
                             D.crlf("forwarded, not changed\n"))
        m, rr, fin = post(dm.port, "alice@none.example", [addr(fwd)], data)
        T.check("forward %s: accepted, 250" % fwd, fin and fin[0] == 250, "%r %r" % (rr, fin))
        got = wait_copies(sink, {mid: 1}).get(mid, [])
        if not T.check("forward %s: delivered to %s" % (fwd, dest), rcpts_of(got) == [dest],
                       "the sink got %r\n%s" % (rcpts_of(got), explain(dm, fin[1] if fin else ""))):
            continue
        env, d = got[0]
        with with_names("none.example"):
            probs = D.check_relayed(d, data, zone, {"dkim": "pass", "spf": "pass",
                                                    "dmarc": "pass"})
        T.check("forward %s: content unchanged after our fields, author DKIM, our DKIM and "
                "ARC pass (dkimpy)" % fwd, not probs, "\n".join(probs) + "\nfile %s" % env["file"])
        md = D.run_mdkim(work, [env["file"]]).get(env["file"])
        probs = mdkim_problems(md)
        if md and not md.get("error"):
            theirs = [s for s in md["dkim"] if s["d"] == "none.example"]
            if not theirs or theirs[0]["result"] != "pass":
                probs.append("Mail::DKIM: the author's signature: %r" % theirs)
        T.check("forward %s: author DKIM, our DKIM and ARC pass (Mail::DKIM)" % fwd, not probs,
                "\n".join(probs))
        if fwd == "fw":
            T.check("forward fw (srs = yes): envelope sender SRS0=...@%s" % SRS_DOMAIN,
                    re.match(SRS0_RE, env["mail_from"]) is not None,
                    "MAIL FROM:<%s>" % env["mail_from"])
        else:
            T.check("forward plain (srs = no): envelope sender kept",
                    env["mail_from"] == "alice@none.example", "MAIL FROM:<%s>" % env["mail_from"])
        out[fwd] = env["mail_from"]
    return out


# ---- 7. SRS round trips ---------------------------------------------------------------------

def srs_tool(tool, op, secret, domain, when, a):
    p = subprocess.run([tool, op, secret, domain, str(int(when)), a], capture_output=True)
    return p.returncode, p.stdout.decode().strip()


def bounce(work, dm, rcpt, tag):
    """A null-sender DSN-like message to rcpt: (mid, RCPT reply, DATA reply)."""
    mid = new_mid(tag)
    data = D.crlf("From: Mail Delivery System <MAILER-DAEMON@dest.example>\nTo: <%s>\n"
                  "Subject: Undelivered Mail Returned to Sender\n"
                  "Date: Mon, 02 Sep 2024 10:05:00 +0000\nMessage-ID: %s\n"
                  "MIME-Version: 1.0\nContent-Type: text/plain\n\nyour mail could not be "
                  "delivered\n" % (rcpt, mid))
    m, rr, fin = post(dm.port, "", [rcpt], data)
    return mid, rr[0], fin


def srs_stage(work, dm, sink, tool, fwd_senders):
    srs0 = fwd_senders.get("fw")
    now = time.time()
    if not srs0 or not re.match(SRS0_RE, srs0):
        T.check("srs: a forwarded copy's SRS0 sender to bounce to", False, "have %r" % srs0)
        return
    cases = []      # (label, rcpt, want delivered to)
    cases.append(("bounce to the forwarded copy's SRS0 sender", srs0, "alice@none.example"))
    local, dom = srs0.rsplit("@", 1)
    cases.append(("bounce to the SRS0 local part in upper case", local.upper() + "@" + dom,
                  "alice@none.example"))
    cases.append(("bounce to the whole SRS0 address in upper case", srs0.upper(),
                  "alice@none.example"))
    rc, made = srs_tool(tool, "forward", SECRET, SRS_DOMAIN, now, "carol@quar.example")
    cases.append(("bounce to an SRS0 address srs_tool made (same secret)", made,
                  "carol@quar.example"))
    results = []
    for label, rcpt, want in cases:
        mid, r, fin = bounce(work, dm, rcpt, "bounce")
        T.check("srs: %s: 250" % label, r[0] == 250 and fin and fin[0] == 250,
                "RCPT TO:<%s>: %r, DATA %r" % (rcpt, r, fin))
        results.append((label, rcpt, want, mid, fin))
    got = wait_copies(sink, {mid: 1 for _, _, _, mid, _ in results})
    for label, rcpt, want, mid, fin in results:
        c = got.get(mid, [])
        ok = len(c) == 1 and [x.lower() for x in c[0][0]["rcpt"]] == [want] and \
            c[0][0]["mail_from"] == ""
        T.check("srs: %s: delivered to <%s> with the null sender" % (label, want), ok,
                "the sink got %r\n%s" % ([(e["mail_from"], e["rcpt"]) for e, _ in c],
                                         explain(dm, fin[1] if fin else "")))

    # Refused at RCPT: forged, expired, malformed.
    hash_at = len("SRS0=")
    h = local[hash_at]
    forged = local[:hash_at] + ("B" if h.lower() == "a" else "A") + local[hash_at + 1:] + "@" + dom
    rc1, old = srs_tool(tool, "forward", SECRET, SRS_DOMAIN, now - 30 * 86400, "alice@none.example")
    rc2, future = srs_tool(tool, "forward", SECRET, SRS_DOMAIN, now + 40 * 86400,
                           "alice@none.example")
    rc3, other = srs_tool(tool, "forward", "some-other-secret-0123456789", SRS_DOMAIN, now,
                          "alice@none.example")
    bad = [("a forged hash (one character changed)", forged),
           ("an expired timestamp (30 days old, max_age 21d)", old if rc1 == 0 else None),
           ("a timestamp from the future", future if rc2 == 0 else None),
           ("another secret's hash", other if rc3 == 0 else None),
           ("a malformed SRS0 address", "SRS0=broken@" + SRS_DOMAIN),
           ("an SRS0 address missing its user", "SRS0=abcd=AB=none.example=@" + SRS_DOMAIN),
           ("a malformed SRS1 address", "SRS1=abcd=other.example@" + SRS_DOMAIN)]
    for label, rcpt in bad:
        if rcpt is None:
            T.check("srs: %s: srs_tool made one" % label, False, "srs_tool failed")
            continue
        c = D.Client(dm.port)
        c.cmd("EHLO bounce.dest.example")
        c.cmd("MAIL FROM:<>")
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        c.close()
        T.check("srs: %s: 550 at RCPT" % label, r[0] == 550, "RCPT TO:<%s>: %r" % (rcpt, r))

    # Senders SRS carries and senders it leaves alone, round trip.
    senders = [("a sender with + and = in its local part", "a+b=c@none.example", "srs"),
               ("a sender with % in its local part (a bounce to it would be refused "
                "as routing)", "a%b@none.example", "kept"),
               ("our own SRS0 address", srs0, "kept")]
    for label, sender, want in senders:
        mid, data = make_msg(work, "fwd-sender", addr("fw"), "", D.crlf("sender %s\n" % label))
        m, rr, fin = post(dm.port, sender, [addr("fw")], data)
        got = wait_copies(sink, {mid: 1}).get(mid, [])
        s = got[0][0]["mail_from"] if got else None
        ok = s == sender if want == "kept" else bool(s) and s.startswith("SRS0=") and \
            s.endswith("=" + sender.split("@")[1] + "=" + sender.split("@")[0] + "@" + SRS_DOMAIN)
        T.check("srs: forward from %s: sender %s" % (label, "kept" if want == "kept" else
                                                    "rewritten to SRS0"), ok,
                "MAIL FROM:<%s> forwarded as <%s>; DATA %r" % (sender, s, fin))
        if want == "srs" and ok:
            mid, r, fin = bounce(work, dm, s, "bounce-plus")
            c = wait_copies(sink, {mid: 1}).get(mid, [])
            T.check("srs: the bounce to it reaches <%s>" % sender,
                    len(c) == 1 and c[0][0]["rcpt"] == [sender],
                    "RCPT %r DATA %r, the sink got %r" % (r, fin, [e["rcpt"] for e, _ in c]))

    # SRS1: a message whose envelope sender is an SRS0 address of another
    # forwarder is forwarded with an SRS1 sender; the bounce to that goes
    # back to the other forwarder's SRS0 address.
    rc, theirs = srs_tool(tool, "forward", OTHER_SECRET, "other.example", now, "bob@orig.example")
    if not T.check("srs: the other forwarder's SRS0 address (srs_tool)", rc == 0 and
                   theirs.startswith("SRS0="), "%d %r" % (rc, theirs)):
        return
    mid, data = make_msg(work, "srs1", addr("fw"), "", D.crlf("second hop\n"))
    m, rr, fin = post(dm.port, theirs, [addr("fw")], data)
    T.check("srs1: forward from <%s>, 250" % theirs, fin and fin[0] == 250, "%r %r" % (rr, fin))
    got = wait_copies(sink, {mid: 1}).get(mid, [])
    sender = got[0][0]["mail_from"] if got else ""
    want_re = r"^SRS1=[^=]{4}=other\.example==" + re.escape(theirs[len("SRS0="):].split("@")[0]) + \
        "@" + re.escape(SRS_DOMAIN) + "$"
    if not T.check("srs1: the forwarded copy's sender is SRS1=...=other.example==...@%s"
                   % SRS_DOMAIN,
                   re.match(want_re, sender) is not None, "MAIL FROM:<%s>" % sender):
        return
    mid, r, fin = bounce(work, dm, sender, "bounce-srs1")
    T.check("srs1: bounce to the SRS1 address: 250", r[0] == 250 and fin and fin[0] == 250,
            "RCPT %r DATA %r" % (r, fin))
    c = wait_copies(sink, {mid: 1}).get(mid, [])
    T.check("srs1: the bounce goes to the other forwarder's SRS0 address",
            len(c) == 1 and c[0][0]["rcpt"] == [theirs] and c[0][0]["mail_from"] == "",
            "the sink got %r, want [%r]" % ([(e["mail_from"], e["rcpt"]) for e, _ in c], theirs))
    i = len("SRS1=")
    forged1 = sender[:i] + ("B" if sender[i].lower() == "a" else "A") + sender[i + 1:]
    c = D.Client(dm.port)
    c.cmd("EHLO bounce.dest.example")
    c.cmd("MAIL FROM:<>")
    r = c.cmd("RCPT TO:<%s>" % forged1)
    c.close()
    T.check("srs1: a forged SRS1 hash: 550 at RCPT", r[0] == 550, "RCPT TO:<%s>: %r" % (forged1, r))
    rc, back = srs_tool(tool, "reverse", OTHER_SECRET, "other.example", now, theirs)
    T.check("srs1: which the other forwarder reverses to the original sender",
            rc == 0 and back == "bob@orig.example", "%d %r" % (rc, back))


# ---- 8. list bounces: VERP, DSNs kept and logged ---------------------------------------------

VL_MEMBERS = ["v1@dest.example", "x+tag=1@dest.example", LONG_LOCAL + "@dest.example"]


def dsn_for(rcpt, failed, status, diag, mid):
    """A Postfix-shaped RFC 3464 report sent to rcpt about failed."""
    return mid, D.crlf(
        "From: MAILER-DAEMON@dest.example (Mail Delivery System)\nTo: <%s>\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Date: Mon, 02 Sep 2024 10:06:00 +0000\nMessage-ID: %s\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status;\n"
        "\tboundary=\"ABC.1725271560/mx.dest.example\"\n\n"
        "--ABC.1725271560/mx.dest.example\nContent-Type: text/plain\n\n"
        "Your message could not be delivered.\n\n"
        "--ABC.1725271560/mx.dest.example\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.dest.example\n\n"
        "Final-Recipient: rfc822; %s\nOriginal-Recipient: rfc822;%s\nAction: failed\n"
        "Status: %s\nDiagnostic-Code: smtp; %s\n\n"
        "--ABC.1725271560/mx.dest.example\nContent-Type: text/rfc822-headers\n\n"
        "From: alice@none.example\nSubject: a post\n\n"
        "--ABC.1725271560/mx.dest.example--\n" % (rcpt, mid, failed, failed, status, diag))


def kept_in(maildir, mid):
    """Files under maildir/new holding Message-ID mid."""
    new = os.path.join(maildir, "new")
    if not os.path.isdir(new):
        return []
    out = []
    for f in sorted(os.listdir(new)):
        with open(os.path.join(new, f), "rb") as fh:
            if mid.encode() in fh.read():
                out.append(f)
    return out


def bounce_line(dm, pattern):
    D.wait_for(lambda: dm.grep(pattern), 5)
    return dm.grep(pattern)


def bounces_stage(work, dm, sink):
    spool_bounces = os.path.join(work, "spool", "bounces")
    # A post goes out with VERP senders; the too-long one falls back.
    mid, data = make_msg(work, "verp", addr("vl"), "", D.crlf("to the vl list\n"))
    m, rr, fin = post(dm.port, "alice@none.example", [addr("vl")], data)
    got = wait_copies(sink, {mid: len(VL_MEMBERS)}).get(mid, [])
    senders = {e["rcpt"][0].lower(): e["mail_from"] for e, _ in got}
    want = {r.lower(): verp_sender("vl", r) for r in VL_MEMBERS}
    T.check("bounces: each copy goes from its member's VERP address (x+tag=1 as "
            "x+2Btag+3D1; a sender over 64 octets as vl-bounces@)",
            senders == want and want["x+tag=1@dest.example"] ==
            "vl-bounces+x+2Btag+3D1=dest.example@lists.example" and
            want[LONG_LOCAL + "@dest.example"] == "vl-bounces@lists.example",
            "got %r\nwant %r" % (senders, want))
    # A DSN back to one member's VERP address.
    v = senders.get("x+tag=1@dest.example", verp_sender("vl", "x+tag=1@dest.example"))
    bmid, bdata = dsn_for(v, "x+tag=1@dest.example", "5.1.1",
                          "550 5.1.1 <x+tag=1@dest.example>: user unknown", new_mid("dsn"))
    m, rr, fin = post(dm.port, "", [v], bdata)
    T.check("bounces: a DSN from <> to the VERP address: 250 at RCPT and DATA",
            rr[0][0] == 250 and fin is not None and fin[0] == 250, "RCPT %r DATA %r" % (rr, fin))
    lines = bounce_line(dm, r'event=list_bounce list=vl@lists.example member="?x\+tag=1@dest.example"? ')
    T.check("bounces: the log names the member, action, status, diagnostic and verp=yes",
            any("action=failed status=5.1.1" in ln and "verp=yes" in ln and
                "user unknown" in ln for ln in lines), "log: %r\n%s" % (lines, dm.tail(5)))
    T.check("bounces: the DSN is in SPOOL/bounces", len(kept_in(spool_bounces, bmid)) == 1,
            "files %r" % kept_in(spool_bounces, bmid))
    # Not a DSN: an auto-reply to the plain bounce address, from a
    # sender who is no member.
    amid = new_mid("autoreply")
    adata = D.crlf("From: Bob <bob@dest.example>\nTo: vl-bounces@lists.example\n"
                   "Subject: Out of office\nAuto-Submitted: auto-replied\n"
                   "Message-ID: %s\n\nI am away.\n" % amid)
    m, rr, fin = post(dm.port, "bob@dest.example", ["vl-bounces@lists.example"], adata)
    T.check("bounces: a non-DSN from a non-member to vl-bounces@: 250",
            rr[0][0] == 250 and fin is not None and fin[0] == 250, "RCPT %r DATA %r" % (rr, fin))
    lines = bounce_line(dm, r"event=list_bounce_unparsed list=vl@lists.example "
                            r"rcpt=vl-bounces@lists.example")
    T.check("bounces: it gives list_bounce_unparsed with the reason", any(
        "not a DSN" in ln for ln in lines), "log: %r" % lines)
    T.check("bounces: and is kept too", len(kept_in(spool_bounces, amid)) == 1,
            "files %r" % kept_in(spool_bounces, amid))
    # A VERP address that decodes to no member: accepted, not attributed.
    jmid, jdata = dsn_for("vl-bounces+junk@lists.example", "stranger@dest.example", "5.0.0",
                          "550 no", new_mid("junk"))
    m, rr, fin = post(dm.port, "", ["vl-bounces+junk@lists.example"], jdata)
    T.check("bounces: vl-bounces+junk@: 250, unparsed (no member in the report)",
            fin is not None and fin[0] == 250 and
            bool(bounce_line(dm, r"event=list_bounce_unparsed .*rcpt=vl-bounces\+junk@")),
            "RCPT %r DATA %r" % (rr, fin))
    # One report to three of the list's bounce addresses (plain, VERP,
    # junk VERP): one line for its member, not one per address.
    tmid, tdata = dsn_for("vl-bounces@lists.example", "v1@dest.example", "5.2.1",
                          "550 disabled", new_mid("three"))
    m, rr, fin = post(dm.port, "", ["vl-bounces@lists.example",
                                    verp_sender("vl", "v1@dest.example"),
                                    "vl-bounces+junk2@lists.example"], tdata)
    bounce_line(dm, r"event=list_bounce list=vl@lists.example member=v1@dest.example ")
    time.sleep(0.5)
    lines = dm.grep(r"event=list_bounce(_unparsed)? list=vl@lists.example .*(v1@|junk2)")
    T.check("bounces: a report to three bounce addresses of one list: one line, "
            "for its member", fin is not None and fin[0] == 250 and len(lines) == 1 and
            "member=v1@dest.example" in lines[0] and "status=5.2.1" in lines[0],
            "DATA %r log %r" % (fin, lines))
    T.check("bounces: and it is kept once", len(kept_in(spool_bounces, tmid)) == 1,
            "files %r" % kept_in(spool_bounces, tmid))
    # The bounce address of no list stays refused: no open relay.
    c = D.Client(dm.port)
    c.cmd("EHLO bounce.dest.example")
    c.cmd("MAIL FROM:<>")
    r1 = c.cmd("RCPT TO:<nolist-bounces@lists.example>")
    r2 = c.cmd("RCPT TO:<vl-bounces+v1=dest.example@elsewhere.example>")
    c.close()
    T.check("bounces: NAME-bounces of no list, or at another domain: 550",
            r1[0] == 550 and r2[0] == 550, "%r %r" % (r1, r2))
    # verp = no: the plain sender, the member found by Final-Recipient.
    mid, data = make_msg(work, "plainv", addr("plainv"), "", D.crlf("to plainv\n"))
    m, rr, fin = post(dm.port, "alice@none.example", [addr("plainv")], data)
    got = wait_copies(sink, {mid: 2}).get(mid, [])
    T.check("bounces: verp = no: every copy from plainv-bounces@lists.example",
            len(got) == 2 and {e["mail_from"] for e, _ in got} == {"plainv-bounces@lists.example"},
            "senders %r" % [e["mail_from"] for e, _ in got])
    pmid, pdata = dsn_for("plainv-bounces@lists.example", "PV2@dest.example", "5.2.2",
                          "552 mailbox full", new_mid("dsn-plain"))
    m, rr, fin = post(dm.port, "", ["plainv-bounces@lists.example"], pdata)
    lines = bounce_line(dm, r"event=list_bounce list=plainv@lists.example member=pv2@dest.example ")
    T.check("bounces: verp = no: the DSN is attributed by its Final-Recipient (verp=no)",
            fin is not None and fin[0] == 250 and
            any("status=5.2.2" in ln and "verp=no" in ln for ln in lines),
            "DATA %r log %r" % (fin, lines))
    T.check("bounces: kept in the list's own maildir",
            len(kept_in(os.path.join(work, "plainv-bounces"), pmid)) == 1 and
            not kept_in(spool_bounces, pmid), "")
    # Nothing of any bounce went onward, and no bounce of a bounce.
    time.sleep(1)
    onward = [x for x in (bmid, amid, jmid, tmid, pmid) if copies_of(sink, x)]
    T.check("bounces: nothing delivered onward", not onward, "delivered: %r" % onward)
    ids = [re.search(r" (\S+): event=list_bounce", ln).group(1)
           for ln in dm.grep(r"event=list_bounce")]
    queued = [ln for ln in dm.grep(r"session=\S+ .* queued=") if
              re.search(r"session=(\S+)", ln).group(1) in ids and "queued=0 " not in ln]
    T.check("bounces: nothing queued for them (queued=0 in each session's line)",
            len(ids) >= 4 and not queued, "ids %r, queued: %r" % (ids, queued))
    own_bounce(work, dm, sink, spool_bounces)
    bounce_rule_reload(work, dm)


def own_bounce(work, dm, sink, spool_bounces):
    """A member whose server refuses with 5xx: the relay's own bounce to
    the member's VERP sender goes straight to the list's bounce handling."""
    sink.set_rules({"reject": ["rb1@dest.example"]})
    try:
        mid, data = make_msg(work, "refused", addr("rb"), "", D.crlf("rb1 is refused\n"))
        m, rr, fin = post(dm.port, "alice@none.example", [addr("rb")], data)
        got = wait_copies(sink, {mid: 1}).get(mid, [])
        T.check("own bounce: the post reaches rb2, the sink refuses rb1",
                fin is not None and fin[0] == 250 and rcpts_of(got) == ["rb2@dest.example"],
                "DATA %r, sink got %r" % (fin, rcpts_of(got)))
        lines = bounce_line(dm, r"event=list_bounce list=rb@lists.example "
                                r"member=rb1@dest.example ")
        refused = dm.grep(r"to=<rb1@dest.example> status=bounced")
        qid = re.search(r" (\S+): to=<rb1", refused[0]).group(1) if refused else None
        T.check("own bounce: attributed to rb1 (5.1.1, verp=yes, kept) under the "
                "failed copy's queue id",
                len(lines) == 1 and "status=5.1.1" in lines[0] and "verp=yes" in lines[0] and
                "kept=maildir" in lines[0] and qid is not None and
                (" %s: event=list_bounce" % qid) in lines[0],
                "log %r, bounced %r\n%s" % (lines, refused, dm.tail(8)))
        local = dm.grep(r'event=bounce bounce=local '
                        r'to=<"?rb-bounces\+rb1=dest.example@lists.example"?>')
        T.check("own bounce: logged as bounce=local, not queued", len(local) == 1 and
                not dm.grep(r'event=bounce bounce=(?!local )\S+ to=<"?rb-bounces'),
                "%r" % dm.grep(r"event=bounce "))
        files = kept_in(spool_bounces, mid)
        body = b""
        if files:
            with open(os.path.join(spool_bounces, "new", files[0]), "rb") as fh:
                body = fh.read()
        T.check("own bounce: the report is in SPOOL/bounces, behind a local Received",
                len(files) == 1 and body.startswith(
                    b"Received: by %s (arcrelay) with local id " % HOST.encode()) and
                b"Final-Recipient: rfc822; rb1@dest.example" in body, "files %r\n%r" % (
                    files, body[:300]))
        time.sleep(0.5)
        T.check("own bounce: no SMTP to the relay itself, nothing to the sink",
                not dm.grep(r"event=rcpt status=\S+ to=<?rb-bounces") and
                not [e for e, _ in sink_all(sink) if any(
                    r.lower().startswith("rb-bounces") for r in e["rcpt"])],
                "%r" % dm.grep(r"rb-bounces"))
    finally:
        sink.set_rules({})


def sink_all(sink):
    """Every (envelope, data) the sink holds."""
    return D.sink_messages(sink.dir)


def bounce_rule_reload(work, dm):
    """A reload whose file puts a forward on a list's bounce address is
    refused, naming both sections; the running rules stay."""
    path = os.path.join(work, "arcrelay.conf")
    with open(path) as fh:
        good = fh.read()
    try:
        with open(path, "a") as fh:
            fh.write("\n[forward RB-Bounces@lists.example]\nto = x@dest.example\nsrs = no\n")
        lines = reload(dm)
        T.check("reload: a forward on a list's bounce address is refused, naming both",
                any("result=refused" in ln and "[forward RB-Bounces@lists.example]" in ln and
                    "[list rb@lists.example]" in ln for ln in lines) and dm.alive(),
                "log: %r" % lines)
        c = D.Client(dm.port)
        c.cmd("EHLO bounce.dest.example")
        c.cmd("MAIL FROM:<>")
        r1 = c.cmd("RCPT TO:<rb-bounces@lists.example>")
        c.close()
        T.check("reload: the list still takes its bounce address", r1[0] == 250, "%r" % (r1,))
    finally:
        with open(path, "w") as fh:
            fh.write(good)


# ---- main -----------------------------------------------------------------------------------

def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    arcrelay, work = sys.argv[1], sys.argv[2]
    tool = sys.argv[3] if len(sys.argv) == 4 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(arcrelay))), "tests", "srs", "srs_tool")
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(os.path.join(work, "sent"))
    work = os.path.abspath(work)
    shutil.copy2(arcrelay, os.path.join(work, "arcrelay"))
    arcrelay = os.path.join(work, "arcrelay")
    t0 = time.time()
    keygen(arcrelay, work)
    zone = make_zone(work)
    zone.write(work)
    write_files(work)
    procs = []
    try:
        ub, sink = D.start_servers(work, procs)
        port = D.free_port()
        config = write_config(work, port, sink.port, ub.port)
        dm = D.Daemon(arcrelay, work, config, port)
        procs.append(dm)
        try:
            dm.start()
        except RuntimeError as e:
            T.check("arcrelay serve starts with %s" % config, False, str(e))
            raise SystemExit(1)
        fwd = {}
        stages = [("MIME shapes", lambda: mime_stage(work, dm, sink, zone)),
                  ("list options", lambda: options_stage(work, dm, sink, zone)),
                  ("expansion", lambda: expansion_stage(work, dm, sink)),
                  ("refusals", lambda: refusal_stage(work, dm, sink)),
                  ("DMARC failures", lambda: dmarc_stage(work, dm, sink)),
                  ("SIGHUP", lambda: sighup_stage(work, dm, sink)),
                  ("forwards", lambda: fwd.update(forward_stage(work, dm, sink, zone) or {})),
                  ("SRS", lambda: srs_stage(work, dm, sink, tool, fwd)),
                  ("reload race", lambda: reload_race_stage(work, dm, sink)),
                  ("bounces", lambda: bounces_stage(work, dm, sink))]
        for name, fn in stages:
            print("--- %s" % name, flush=True)
            try:
                if not dm.alive():
                    T.check("the daemon is running before '%s'" % name, False, dm.tail(15))
                    dm.start()
                fn()
            except Exception as e:
                import traceback
                T.check("stage '%s' ran to its end" % name, False,
                        "%s\n%s\ndaemon log ends:\n%s" % (e, traceback.format_exc(limit=4),
                                                          dm.tail(15)))
        odd = [ln for ln in dm.log_text().splitlines()
               if re.search(r"(?i)assert|sanitizer|segfault|double free|corrupt", ln)]
        T.check("the daemon log shows no crash", not odd and dm.alive(), "\n".join(odd[:10]))
        dm.signal(signal.SIGTERM)
        T.check("SIGTERM: the daemon exits 0", dm.wait(35) == 0, dm.tail(5))
    finally:
        for p in reversed(procs):
            try:
                (p.kill if isinstance(p, D.Daemon) else p.stop)()
            except Exception:
                pass
    print("(%.1f s)" % (time.time() - t0))
    print("%d passed, %d failed" % (T.passed, T.failed))
    return 1 if T.failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
