#!/usr/bin/python3
"""arc_harness.py - ARC interop between arcrelay, dkimpy and Mail::DKIM.

Three steps, each one process (run.sh calls them in this order):

  arc_harness.py build WORK --arcrelay BIN --now EPOCH
      Keys (arcrelay keygen), zone.txt and zone.json, a small corpus,
      origin DKIM signatures (arcrelay sign), then ARC chains: sealed by
      arcrelay hop after hop, by dkimpy's arc_sign, and by both in turn;
      a 50-set chain and the refused 51st seal; tampered copies.  Writes
      cases.json (what every verifier must say about each message),
      build-checks.jsonl (checks made while building) and the list files
      the verifier loops read.

  arc_harness.py dkimpy WORK
      dkim.arc_verify on every case, DNS answered from zone.txt only.
      Writes results/dkimpy.jsonl.

  arc_harness.py check WORK
      Reads the build checks and the three verifiers' results, prints
      every failure with what each verifier said, and ends with the line
      "N passed, M failed".  Exit status 0 only when nothing failed.
"""

import argparse
import json
import logging
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "interop"))
import interop_common as ic  # noqa: E402  (zone reading, message surgery)
import rspamd_driver as rd  # noqa: E402  (rspamd's known deviations)

CRLF = b"\r\n"

ORIGIN_DOMAIN = "author.example"
ORIGIN_SELECTOR = "dk2026"
POOL_DOMAIN = "keypool.example"   # where keygen's records are first named
UNPUBLISHED_DOMAIN = "unpublished.example"   # names the zone never has
UNPUBLISHED_SELECTOR = "gone2026"
NKEYS = 4                          # ARC keys, shared out among the hops
MAX_HOPS = 50

AS, AMS, AAR = "ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results"
ARC_FIELD = {b"arc-seal": AS, b"arc-message-signature": AMS,
             b"arc-authentication-results": AAR}


# ---- hop identities ---------------------------------------------------------
#
# Every hop of every chain has its own signing domain, selector and
# authserv-id, chosen by its position in the chain and by who seals it.
# Only NKEYS RSA keys are made (keygen is slow); each hop's DNS name
# publishes one of them.

def arc_hop(j):
    return {"by": "arcrelay", "domain": "relay%d.example" % j,
            "selector": "arc%d" % j, "authserv": "mx%d.relay%d.example" % (j, j),
            "key": (j - 1) % NKEYS}


def ring_hop(j, size=8):
    """Hop j of a chain whose identities go round a ring of `size`: each
    hop differs from the one before, but only `size` key names are used."""
    r = (j - 1) % size + 1
    return {"by": "arcrelay", "domain": "ring%d.example" % r,
            "selector": "r%d" % r, "authserv": "mx.ring%d.example" % r,
            "key": (r - 1) % NKEYS}


def py_hop(j):
    return {"by": "dkimpy", "domain": "pyhop%d.example" % j,
            "selector": "py%d" % j, "authserv": "mx.pyhop%d.example" % j,
            "key": j % NKEYS}


def hop_time(now, j):
    """t= of hop j: spread over the two hours before the run started, so
    no verifier sees a time in the future."""
    return now - 7200 + 60 * j


# ---- corpus -------------------------------------------------------------------

def hdrs(*lines):
    return b"".join(l.encode("utf-8") + CRLF for l in lines)


def make_corpus():
    """A few messages of different shapes, all CRLF."""
    c = {}
    c["plain"] = hdrs(
        "From: Alice Example <alice@author.example>",
        "To: Bob <bob@receiver.example>",
        "Subject: Quarterly numbers",
        "Date: Tue, 01 Dec 2026 09:00:00 +0000",
        "Message-ID: <plain-1@author.example>",
    ) + CRLF + (
        b"Hi Bob,\r\n\r\nThe quarterly numbers are attached below.\r\n"
        b"Revenue went up; costs went down.\r\n\r\n-- \r\nAlice\r\n")

    boundary = "=_arc_interop_b0undary_42"
    c["mime"] = hdrs(
        "From: =?utf-8?q?J=C3=BCrgen?= <juergen@author.example>",
        "To: list@lists.example",
        "Subject: =?utf-8?b?R3LDvMOfZQ==?= from the MIME side",
        "Date: Tue, 01 Dec 2026 09:05:00 +0100",
        "Message-ID: <mime-2@author.example>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/alternative;",
        '\tboundary="%s"' % boundary,
    ) + CRLF + (
        "This is a multi-part message in MIME format.\r\n"
        "--%s\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße aus Köln — ünïcödé text, raw 8-bit.\r\n"
        "Zweite Zeile.\r\n\r\n"
        "--%s\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "<p>Gr=C3=BC=C3=9Fe aus K=C3=B6ln</p>=\r\n"
        "<p>Zweite Zeile.</p>\r\n\r\n"
        "--%s--\r\n" % (boundary, boundary, boundary)).encode("utf-8")

    c["folded"] = hdrs(
        "Received: from edge.author.example (edge.author.example [192.0.2.7])",
        "\tby mx.author.example with ESMTPS id 4A1B2C3D",
        "\tfor <carol@receiver.example>; Tue, 01 Dec 2026 09:10:00 +0000",
        "Received: from laptop (unknown [198.51.100.23])",
        "  by edge.author.example with ESMTPSA; Tue, 01 Dec 2026 09:09:58 +0000",
        "Authentication-Results: unrelated.example; spf=pass smtp.mailfrom=author.example",
        "From: \"Alice, the  Author\" <alice@author.example>",
        "To: carol@receiver.example,",
        "   dave@receiver.example,",
        "\teve@receiver.example",
        "Cc: frank@receiver.example",
        "Cc: grace@receiver.example",
        "Subject: A subject long enough that it was folded by the mail client",
        "  onto a second line,\tand then a third one",
        "   with odd    spacing   ",
        "Date:    Tue, 01 Dec 2026 09:10:00 +0000",
        "Message-ID: <folded-3@author.example>",
        "X-Mixed-Case-Header: Value",
    ) + CRLF + (
        b"Line with trailing spaces   \r\n"
        b"Line with\ttabs\tand   runs of   spaces\r\n"
        b"\r\n"
        b"  leading spaces stay\r\n"
        b"last real line\r\n"
        b"\r\n\r\n\r\n")

    c["empty"] = hdrs(
        "From: alice@author.example",
        "To: bob@receiver.example",
        "Subject: (no body)",
        "Date: Tue, 01 Dec 2026 09:15:00 +0000",
        "Message-ID: <empty-4@author.example>",
    ) + CRLF

    long_line = ("lorem ipsum dolor sit amet " * 33).strip()
    c["nofinal"] = hdrs(
        "From: Alice <alice@author.example>",
        "To: bob@receiver.example",
        "Subject: long lines and no final line break",
        "Date: Tue, 01 Dec 2026 09:20:00 +0000",
        "Message-ID: <nofinal-5@author.example>",
    ) + CRLF + (long_line + "\r\n" + long_line[:500] + "\r\n"
                "the last line has no CRLF").encode("ascii")
    return c


# ---- tag-level surgery on raw header fields -------------------------------------

def field_instance(raw):
    v = ic.tag_value(raw, b"i")
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def tag_span(raw, tag):
    """(start, end) of the value of `tag` inside the raw field bytes."""
    pos = raw.index(b":") + 1
    for seg in raw[pos:].split(b";"):
        eq = seg.find(b"=")
        if eq >= 0 and seg[:eq].strip() == tag:
            return pos + eq + 1, pos + len(seg)
        pos += len(seg) + 1
    return None


def next_digit(c):
    return ord("0") + (c - ord("0") + 1) % 10


def change_in_field(raw, what):
    """Change one byte of a raw ARC field.  `what` is "t" (last digit of
    t=), "d" (first letter of d=), "b" (a letter in the middle of b=) or
    "text" (a letter of the AAR's results, after the authserv-id).
    Returns (new_raw, description) or None."""
    raw = bytearray(raw)
    if what == "text":
        colon = raw.index(b":")
        first = raw.find(b";", colon)             # after i=N
        second = raw.find(b";", first + 1)        # after the authserv-id
        if second < 0:
            return None
        eq = raw.find(b"=", second)
        pos = ic.first_letter(bytes(raw), eq + 1) if eq > 0 else -1
        if pos < 0:
            return None
        label = "results text"
    else:
        span = tag_span(bytes(raw), what.encode())
        if span is None:
            return None
        s, e = span
        pos = -1
        if what == "t":
            for k in range(e - 1, s - 1, -1):
                if 48 <= raw[k] <= 57:
                    pos = k
                    break
        elif what == "d":
            pos = ic.first_letter(bytes(raw[:e]), s)
        elif what == "b":
            letters = [k for k in range(s, e) if chr(raw[k]).isalpha()]
            pos = letters[len(letters) // 2] if letters else -1
        if pos < 0:
            return None
        label = what + "="
    old = raw[pos]
    raw[pos] = next_digit(old) if what == "t" else ic.rotate_letter(old)
    return bytes(raw), "%s: %r -> %r" % (label, chr(old), chr(raw[pos]))


def tamper_header(data, header, instance, what):
    head, sep, body = ic.split_message(data)
    fields = ic.header_fields(head)
    for n, f in enumerate(fields):
        if ARC_FIELD.get(ic.field_name(f)) == header and field_instance(f) == instance:
            r = change_in_field(f, what)
            if r is None:
                return None
            fields[n] = r[0]
            return b"".join(fields) + sep + body, "%s i=%d %s" % (header, instance, r[1])
    return None


def tamper_body(data):
    head, sep, body = ic.split_message(data)
    pos = ic.first_letter(body)
    if pos < 0:
        return None
    b = bytearray(body)
    old = b[pos]
    b[pos] = ic.rotate_letter(old)
    return head + sep + bytes(b), "body: %r -> %r at body offset %d" % (
        chr(old), chr(b[pos]), pos)


def nonempty(path):
    return os.path.isfile(path) and os.path.getsize(path) > 0


def bytes_changed(a, b):
    if len(a) != len(b):
        return -1
    return sum(1 for x, y in zip(a, b) if x != y)


def arc_set_fields(data, top=3):
    """The first `top` header fields as (display name, instance, raw)."""
    head, _, _ = ic.split_message(data)
    out = []
    for f in ic.header_fields(head)[:top]:
        out.append((ARC_FIELD.get(ic.field_name(f), ic.field_name(f).decode("latin-1")),
                    field_instance(f), f))
    return out


def unfold(raw):
    return re.sub(rb"\r\n[ \t]+", b" ", raw).decode("utf-8", "replace").rstrip("\r\n")


# ---- DNS for dkimpy ------------------------------------------------------------

def make_dnsfunc(zone_path):
    zone = ic.read_zone(zone_path)

    def dnsfunc(name, timeout=5):
        recs = zone.get(ic.normalize_name(name))
        return recs[0] if recs else None
    return dnsfunc


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def quiet_logger(name):
    lg = logging.getLogger(name)
    lg.propagate = False
    h = Collect()
    lg.handlers = [h]
    lg.setLevel(logging.ERROR)
    return lg, h


def rfc_oldest_pass(ams_ok, n):
    """RFC 8617 section 5.2 step 5 from {instance: AMS verified?}."""
    for m in range(n - 1, 0, -1):
        if not ams_ok.get(m, False):
            return m + 1
    return 0


# ---- build ----------------------------------------------------------------------

class BuildError(Exception):
    pass


class Builder:
    def __init__(self, work, arcrelay, now):
        self.work = work
        self.arc = arcrelay
        self.now = now
        self.checks = []
        self.cases = []
        self.zone = os.path.join(work, "zone.txt")
        self.dkimpy_logger, self.dkimpy_log = quiet_logger("arcinterop-build")

    # -- bookkeeping
    def check(self, name, ok, detail=""):
        self.checks.append({"check": name, "ok": bool(ok), "detail": detail})
        return ok

    def path(self, *p):
        return os.path.join(self.work, *p)

    def write(self, rel, data):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(data)
        return p

    def add_case(self, cid, rel, n, expect, **kw):
        """`dkim` (default "pass") is what the origin DKIM-Signature must
        give: "pass", "fail" (the body or a signed field changed), or
        "nokey" (its key is not in the zone)."""
        c = {"id": cid, "file": self.path(rel), "n": n, "expect": expect, "dkim": "pass"}
        c.update(kw)
        self.cases.append(c)

    def run(self, args, stdin=None):
        p = subprocess.run([self.arc] + args, input=stdin, capture_output=True)
        return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace").strip()

    # -- keys and DNS
    def make_keys(self):
        os.makedirs(self.path("keys"), exist_ok=True)
        self.pool = []
        for k in range(NKEYS):
            sel = "pool%d" % k
            rc, out, err = self.run(["keygen", "--domain", POOL_DOMAIN, "--selector", sel,
                                     "--type", "rsa", "--bits", "2048", "--out", self.path("keys")])
            priv, txt = self.path("keys", sel + ".private"), self.path("keys", sel + ".txt")
            if not self.check("keygen rsa %s" % sel, rc == 0 and nonempty(priv) and nonempty(txt),
                              err or "no .private/.txt written"):
                raise BuildError("keygen failed: " + err)
            with open(txt) as fh:
                record = fh.read()
            owner = "%s._domainkey.%s." % (sel, POOL_DOMAIN)
            if not self.check("keygen %s record owner" % sel, record.startswith(owner),
                              record[:80]):
                raise BuildError("unexpected record from keygen: " + record[:80])
            self.pool.append({"private": priv, "record": record, "owner": owner,
                              "pem": self.dkimpy_pem(priv)})
        rc, out, err = self.run(["keygen", "--domain", ORIGIN_DOMAIN, "--selector", ORIGIN_SELECTOR,
                                 "--type", "rsa", "--bits", "2048", "--out", self.path("keys")])
        if not self.check("keygen origin key", rc == 0 and nonempty(self.path("keys", ORIGIN_SELECTOR + ".txt")),
                          err or "no .txt written"):
            raise BuildError("keygen failed: " + err)
        self.origin_key = self.path("keys", ORIGIN_SELECTOR + ".private")
        with open(self.path("keys", ORIGIN_SELECTOR + ".txt")) as fh:
            zone = [fh.read()]
        # Publish each pool key under the name of every hop that uses it.
        hops = ([arc_hop(j) for j in range(1, MAX_HOPS + 2)] + [ring_hop(j) for j in range(1, 9)] +
                [py_hop(j) for j in range(1, MAX_HOPS + 1)])
        for h in hops:
            p = self.pool[h["key"]]
            owner = "%s._domainkey.%s." % (h["selector"], h["domain"])
            zone.append(owner + p["record"][len(p["owner"]):])
        with open(self.zone, "w") as fh:
            fh.write("".join(z if z.endswith("\n") else z + "\n" for z in zone))
        # The same records for the Perl driver, which reads JSON.
        strings = ic.read_zone_strings(self.zone)
        with open(self.path("zone.json"), "w") as fh:
            json.dump({k: [[s.decode("latin-1") for s in rec] for rec in recs]
                       for k, recs in strings.items()}, fh, indent=0, sort_keys=True)
        self.check("zone has every hop", len(strings) == len(hops) + 1,
                   "%d names for %d hops + origin" % (len(strings), len(hops)))

    @staticmethod
    def dkimpy_pem(path):
        # dkimpy's PEM reader wants LF line ends; re-serialize to be sure.
        from cryptography.hazmat.primitives import serialization
        with open(path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    # -- hops
    def seal_arcrelay(self, src_rel, dst_rel, j, label, expect_cv, expect_dkim="pass", hop=None):
        """One arcrelay hop at chain position j (identity arc_hop(j) unless
        `hop` is given).  Returns the new bytes or None.  Checks that only
        a well-formed set i=j was prepended."""
        h = hop or arc_hop(j)
        with open(self.path(src_rel), "rb") as fh:
            before = fh.read()
        rc, out, err = self.run([
            "seal", "--domain", h["domain"], "--selector", h["selector"],
            "--key", self.pool[h["key"]]["private"], "--authserv-id", h["authserv"],
            "--dns-file", self.zone, "--now", str(hop_time(self.now, j)),
            self.path(src_rel)])
        problems = []
        if rc != 0:
            problems.append("exit %d: %s" % (rc, err))
        else:
            top = arc_set_fields(out)
            names = [(t[0], t[1]) for t in top]
            if names != [(AS, j), (AMS, j), (AAR, j)]:
                problems.append("first fields are %r, not AS, AMS, AAR i=%d" % (names, j))
            elif not out.endswith(before) or len(out) != len(b"".join(t[2] for t in top)) + len(before):
                problems.append("seal changed the message below the new set")
            else:
                cv = ic.tag_value(top[0][2], b"cv")
                if cv != expect_cv.encode():
                    problems.append("AS i=%d cv=%s, expected cv=%s" % (j, (cv or b"").decode(), expect_cv))
                aar = unfold(top[2][2])
                if not re.match(r"ARC-Authentication-Results:\s*i=%d;\s*%s;" % (j, re.escape(h["authserv"])), aar):
                    problems.append("AAR does not start i=%d; %s;: %s" % (j, h["authserv"], aar))
                want_arc = "none" if j == 1 else expect_cv
                if not re.search(r"\barc=%s\b" % want_arc, aar):
                    problems.append("AAR lacks arc=%s: %s" % (want_arc, aar))
                if not re.search(r"\bdkim=%s\b.*header\.d=%s" % (expect_dkim, re.escape(ORIGIN_DOMAIN)), aar):
                    problems.append("AAR lacks dkim=%s header.d=%s: %s" % (expect_dkim, ORIGIN_DOMAIN, aar))
        self.check("%s: arcrelay seal hop %d (%s)" % (label, j, h["domain"]), not problems,
                   "; ".join(problems))
        if rc != 0:
            return None
        self.write(dst_rel, out)    # kept for a look even when it is wrong
        return None if problems else out

    def seal_dkimpy(self, src_rel, dst_rel, j, label, expect_cv, modify=None, claim_cv=None):
        """One dkimpy hop at chain position j: verify what arrives (DKIM and
        ARC), record it in an Authentication-Results field for this hop's
        authserv-id, optionally modify the message (as a mailing list
        would), then dkim.arc_sign and prepend the set.  claim_cv makes the
        hop lie about the incoming chain (a forger holding a real key)."""
        import dkim
        h = py_hop(j)
        dnsfunc = make_dnsfunc(self.zone)
        with open(self.path(src_rel), "rb") as fh:
            data = fh.read()
        problems = []
        try:
            dkim_ok = dkim.verify(data, logger=self.dkimpy_logger, dnsfunc=dnsfunc)
        except Exception as ex:  # noqa: BLE001  (recorded as a failure)
            dkim_ok = False
            problems.append("dkim.verify: %s" % ex)
        cv, _, why = dkim.arc_verify(data, logger=self.dkimpy_logger, dnsfunc=dnsfunc)
        cv = (cv or b"none").decode()
        if cv != expect_cv:
            problems.append("incoming chain is arc=%s (%s), expected %s" % (cv, why, expect_cv))
        ar = ("Authentication-Results: %s; dkim=%s header.d=%s header.s=%s; arc=%s\r\n" % (
            h["authserv"], "pass" if dkim_ok else "fail", ORIGIN_DOMAIN, ORIGIN_SELECTOR,
            claim_cv or cv)).encode()
        msg = ar + data
        if modify:
            msg = modify(msg)
        try:
            new = dkim.arc_sign(msg, h["selector"].encode(), h["domain"].encode(),
                                self.pool[h["key"]]["pem"], h["authserv"].encode(),
                                timestamp=hop_time(self.now, j), logger=self.dkimpy_logger)
        except Exception as ex:  # noqa: BLE001
            new = []
            problems.append("arc_sign raised %s: %s" % (type(ex).__name__, ex))
        if len(new) != 3 and not problems:
            problems.append("arc_sign returned %d fields" % len(new))
        self.check("%s: dkimpy arc_sign hop %d (%s)" % (label, j, h["domain"]), not problems,
                   "; ".join(problems))
        if problems:
            return None
        out = b"".join(new) + msg
        self.write(dst_rel, out)
        return out

    # -- the whole build
    def build(self):
        self.make_keys()
        corpus = make_corpus()
        for name, data in corpus.items():
            self.write("corpus/%s.eml" % name, data)
            rc, out, err = self.run(["sign", "--domain", ORIGIN_DOMAIN, "--selector", ORIGIN_SELECTOR,
                                     "--key", self.origin_key, "--now", str(hop_time(self.now, 0)),
                                     self.path("corpus/%s.eml" % name)])
            if self.check("arcrelay sign %s" % name, rc == 0 and out.endswith(data), err):
                self.write("signed/%s.eml" % name, out)
        names = [n for n in corpus if os.path.exists(self.path("signed/%s.eml" % n))]

        # 1. arcrelay chains of 1..3 sets for every message, and 50 for two.
        for name in names:
            prev = "signed/%s.eml" % name
            for j in range(1, 4):
                cur = "arc/%s.%d.eml" % (name, j)
                if self.seal_arcrelay(prev, cur, j, "arc/" + name,
                                      "none" if j == 1 else "pass") is None:
                    break
                self.add_case("arc/%s/%d" % (name, j), cur, j, "pass", oldest_pass=0,
                              what="%d arcrelay sets" % j)
                prev = cur
        # Two kinds of 50-set chain: every hop with a name of its own (as
        # 50 real ADMDs would be), and hops that go round a ring of 8 names
        # (each hop still differs from the one before it).
        # (Mail::DKIM takes about 15 s for one 50-set chain, so only two.)
        self.chain50("arc50", arc_hop, "plain", names)
        self.chain50("ring50", ring_hop, "mime", names)
        self.chain50_dkimpy("py50", "nofinal", names)
        # 2. dkimpy chains, and chains that mix the two sealers.
        plans = {
            "py": ["dkimpy", "dkimpy", "dkimpy"],
            "py-arc-py": ["dkimpy", "arcrelay", "dkimpy"],
            "arc-py-arc": ["arcrelay", "dkimpy", "arcrelay"],
        }
        for plan, who in plans.items():
            for name in names:
                prev = "signed/%s.eml" % name
                for j, sealer in enumerate(who, 1):
                    cur = "%s/%s.%d.eml" % (plan, name, j)
                    cv = "none" if j == 1 else "pass"
                    if sealer == "dkimpy":
                        r = self.seal_dkimpy(prev, cur, j, "%s/%s" % (plan, name), cv)
                    else:
                        r = self.seal_arcrelay(prev, cur, j, "%s/%s" % (plan, name), cv)
                    if r is None:
                        break
                    if plan == "py" or j > 1:   # a 1-set mix is a py or arc chain
                        self.add_case("%s/%s/%d" % (plan, name, j), cur, j, "pass",
                                      oldest_pass=0, what="sets by " + "+".join(who[:j]))
                    prev = cur

        # 2b. A modifying intermediary: hop 2 (dkimpy) checks the chain,
        # then adds a list footer and a Subject tag before sealing.  The
        # chain stays valid; AMS i=1 no longer does, so oldest-pass is 2.
        def list_footer(msg):
            head, sep, body = ic.split_message(msg)
            head = head.replace(b"\r\nSubject: ", b"\r\nSubject: [list] ", 1)
            if body and not body.endswith(CRLF):
                body += CRLF
            return head + sep + body + b"-- \r\nlist footer: unsubscribe at lists.example\r\n"
        for name in ("plain", "mime"):
            if name not in names:
                continue
            r = self.seal_arcrelay("signed/%s.eml" % name, "modified/%s.1.eml" % name, 1,
                                   "modified/" + name, "none")
            if r is None:
                continue
            r = self.seal_dkimpy("modified/%s.1.eml" % name, "modified/%s.2.eml" % name, 2,
                                 "modified/" + name, "pass", modify=list_footer)
            if r is None:
                continue
            self.add_case("modified/%s/2" % name, "modified/%s.2.eml" % name, 2, "pass",
                          oldest_pass=2, dkim="fail", what="arcrelay set, then a dkimpy hop that modified body and Subject")
            r = self.seal_arcrelay("modified/%s.2.eml" % name, "modified/%s.3.eml" % name, 3,
                                   "modified/" + name, "pass", expect_dkim="fail")
            if r is not None:
                self.add_case("modified/%s/3" % name, "modified/%s.3.eml" % name, 3, "pass",
                              oldest_pass=2, dkim="fail", what="as modified/%s/2, then an arcrelay set" % name)

        # 3. tampered copies.
        self.make_tampered("arc/plain.3.eml", "arc/plain/3")
        self.make_tampered("arc/mime.2.eml", "arc/mime/2")
        self.make_tampered("arc/folded.3.eml", "arc/folded/3", whats={AS: ["t"], AMS: ["t"], AAR: ["text"]})
        self.make_tampered("py-arc-py/plain.3.eml", "py-arc-py/plain/3",
                           whats={AS: ["t"], AMS: ["t"], AAR: ["text"]})
        self.make_tampered("py/mime.3.eml", "py/mime/3", whats={AS: ["b"], AMS: ["d"], AAR: ["text"]})

        # 3b. A change to set k, then a forger with a real key seals on top
        # claiming arc=pass: every AS above k is now good, so only AS k can
        # show the damage; a verifier must name exactly that one.
        for src, k in (("arc/plain.1.eml", 1), ("arc/mime.2.eml", 2)):
            self.make_resealed(src, k)

        # 4. Keys that are not in the zone: what every verifier gets for
        # them shows that it sees no DNS but the zone's.
        if "plain" in corpus:
            self.make_nokey(corpus["plain"])

    def chain50(self, kind, ident, name, names):
        if name not in names:
            return
        prev, built = "signed/%s.eml" % name, 0
        for j in range(1, MAX_HOPS + 1):
            cur = "%s/%s.%d.eml" % (kind, name, j)
            if self.seal_arcrelay(prev, cur, j, "%s/%s" % (kind, name),
                                  "none" if j == 1 else "pass", hop=ident(j)) is None:
                break
            built = j
            if j in (10, 16, 17, MAX_HOPS):
                self.add_case("%s/%s/%d" % (kind, name, j), cur, j, "pass", oldest_pass=0,
                              what="%d arcrelay sets (%s identities)" % (j, kind))
            prev = cur
        if built == MAX_HOPS:
            self.refuse_51st(prev, "%s/%s" % (kind, name), ident(MAX_HOPS + 1))
            return
        # The chain stopped early: let the verifiers judge the last chain
        # that was built, so a disagreement shows there too.
        if built and built not in (10, 16, 17):
            self.add_case("%s/%s/%d" % (kind, name, built), prev, built, "pass", oldest_pass=0,
                          what="%d arcrelay sets (%s identities), the longest built" % (built, kind))
        self.check("%s/%s: 51st arcrelay seal refused" % (kind, name), False,
                   "not tried: the chain stopped at %d sets" % built)

    def chain50_dkimpy(self, kind, name, names):
        """50 sets by dkim.arc_sign, every hop with its own name: what a
        message through 50 real ADMDs would carry."""
        if name not in names:
            return
        prev = "signed/%s.eml" % name
        for j in range(1, MAX_HOPS + 1):
            cur = "%s/%s.%d.eml" % (kind, name, j)
            if self.seal_dkimpy(prev, cur, j, "%s/%s" % (kind, name),
                                "none" if j == 1 else "pass") is None:
                return
            if j in (16, 17, MAX_HOPS):
                self.add_case("%s/%s/%d" % (kind, name, j), cur, j, "pass", oldest_pass=0,
                              what="%d dkimpy sets, each hop its own d=/s=" % j)
            prev = cur

    def refuse_51st(self, src_rel, label, h):
        rc, out, err = self.run([
            "seal", "--domain", h["domain"], "--selector", h["selector"],
            "--key", self.pool[h["key"]]["private"], "--authserv-id", h["authserv"],
            "--dns-file", self.zone, "--now", str(hop_time(self.now, MAX_HOPS + 1)),
            self.path(src_rel)])
        problems = []
        if rc != 2:
            problems.append("exit status %d, expected 2" % rc)
        if out:
            problems.append("wrote %d bytes to stdout" % len(out))
        if "50" not in err or "51st" not in err:
            problems.append("stderr does not mention 50 and 51st: %r" % err)
        if len(err.splitlines()) != 1:
            problems.append("stderr is %d lines, not one" % len(err.splitlines()))
        self.check("%s: 51st arcrelay seal refused" % label, not problems,
                   "; ".join(problems) + (" | stderr: %s" % err if problems else ""))

    def make_tampered(self, src_rel, base_id, whats=None):
        """One-byte changes to every ARC field of every instance, and to the
        body.  Each case lists the (header, instance) pairs a verifier may
        rightly name as the one that broke the chain."""
        if whats is None:
            whats = {AS: ["t", "b"], AMS: ["t", "d"], AAR: ["text"]}
        if not os.path.exists(self.path(src_rel)):
            self.check("tamper source %s exists" % src_rel, False, "chain was not built")
            return
        with open(self.path(src_rel), "rb") as fh:
            data = fh.read()
        n = max(i for _, i, _ in arc_set_fields(data, 1))
        jobs = []
        for k in range(1, n + 1):
            for header in (AS, AMS, AAR):
                for what in whats[header]:
                    jobs.append((header, k, what))
        jobs.append(("body", n, None))
        for header, k, what in jobs:
            if header == "body":
                r = tamper_body(data)
                tag = "body"
                # Only the newest AMS must validate (RFC 8617 5.2 step 4).
                accept = [(AMS, n)]
                need = ["body hash"]
            else:
                r = tamper_header(data, header, k, what)
                tag = "%s-%d-%s" % ({AS: "as", AMS: "ams", AAR: "aar"}[header], k, what)
                # AS j covers every ARC field of instances <= j, so each AS
                # from k up breaks; an AMS breaks the chain only when it is
                # the newest one.
                accept = [(AS, j) for j in range(k, n + 1)]
                if header == AMS and k == n:
                    accept.append((AMS, n))
                need = []
            cid = "tamper/%s/%s" % (base_id, tag)
            if not self.check("%s: made a one-byte change" % cid,
                              r is not None and bytes_changed(data, r[0]) == 1,
                              "no place to change" if r is None else ""):
                continue
            rel = "tampered/%s.eml" % cid[len("tamper/"):].replace("/", "_")
            self.write(rel, r[0])
            self.add_case(cid, rel, n, "fail", accept=accept, need=need, change=r[1],
                          dkim="fail" if header == "body" else "pass",
                          what="%s with %s" % (base_id, r[1]))

    def make_nokey(self, data):
        """The plain message DKIM-signed and ARC-sealed under names that
        the zone does not publish."""
        h = {"by": "arcrelay", "domain": UNPUBLISHED_DOMAIN, "selector": "gone",
             "authserv": "mx." + UNPUBLISHED_DOMAIN, "key": 0}
        self.write("nokey/plain.in.eml", data)
        rc, out, err = self.run(["sign", "--domain", ORIGIN_DOMAIN, "--selector", UNPUBLISHED_SELECTOR,
                                 "--key", self.origin_key, "--now", str(hop_time(self.now, 0)),
                                 self.path("nokey/plain.in.eml")])
        if not self.check("nokey: arcrelay sign with an unpublished selector", rc == 0, err):
            return
        self.write("nokey/plain.0.eml", out)
        if self.seal_arcrelay("nokey/plain.0.eml", "nokey/plain.1.eml", 1, "nokey/plain", "none",
                              expect_dkim="permerror", hop=h) is None:
            return
        self.add_case("nokey/plain/1", "nokey/plain.1.eml", 1, "fail",
                      accept=[(AMS, 1), (AS, 1)], need=["no key"], dkim="nokey",
                      what="DKIM selector %s and ARC d=%s, neither in the zone" % (
                          UNPUBLISHED_SELECTOR, UNPUBLISHED_DOMAIN))

    def make_resealed(self, src_rel, k):
        if not os.path.exists(self.path(src_rel)):
            self.check("reseal source %s exists" % src_rel, False, "chain was not built")
            return
        with open(self.path(src_rel), "rb") as fh:
            data = fh.read()
        base = src_rel[:-len(".eml")]
        for header, what in ((AAR, "text"), (AMS, "t"), (AS, "t")):
            r = tamper_header(data, header, k, what)
            tag = "%s-%d-%s" % ({AS: "as", AMS: "ams", AAR: "aar"}[header], k, what)
            cid = "reseal/%s/%s" % (base, tag)
            if not self.check("%s: made a one-byte change" % cid,
                              r is not None and bytes_changed(data, r[0]) == 1,
                              "no place to change" if r is None else ""):
                continue
            bad = "resealed/%s_%s.in.eml" % (base.replace("/", "_"), tag)
            out = "resealed/%s_%s.eml" % (base.replace("/", "_"), tag)
            self.write(bad, r[0])
            if self.seal_dkimpy(bad, out, k + 1, cid, "fail", claim_cv="pass") is None:
                continue
            self.add_case(cid, out, k + 1, "fail", accept=[(AS, k)], need=[], change=r[1],
                          what="%s with %s, then resealed by dkimpy claiming arc=pass" % (base, r[1]))

    def save(self):
        with open(self.path("cases.json"), "w") as fh:
            json.dump(self.cases, fh, indent=1)
        with open(self.path("build-checks.jsonl"), "w") as fh:
            for c in self.checks:
                fh.write(json.dumps(c) + "\n")
        os.makedirs(self.path("lists"), exist_ok=True)
        with open(self.path("lists", "files.txt"), "w") as fh:
            for c in self.cases:
                fh.write(c["file"] + "\n")
        with open(self.path("lists", "arcrelay.tsv"), "w") as fh:
            for c in self.cases:
                fh.write("%s\t%s\n" % (c["id"].replace("/", "_"), c["file"]))
        # rspamd sees the probes of its key-cache order first (see
        # RSPAMD_PROBES), then every case in order.
        with open(self.path("lists", "rspamd.tsv"), "w") as fh:
            for pid, rel, _ in RSPAMD_PROBES:
                if os.path.exists(self.path(rel)):
                    fh.write("%s\t%s\n" % (pid, self.path(rel)))
            for c in self.cases:
                fh.write("%s\t%s\n" % (c["id"], c["file"]))


def cmd_build(args):
    import traceback
    b = Builder(os.path.abspath(args.work), args.arcrelay, args.now)
    try:
        b.build()
    except BuildError as ex:
        b.check("build step ran to the end", False, str(ex))
    except Exception:  # noqa: BLE001  (a harness bug: count it, keep what was built)
        b.check("build step ran to the end", False, traceback.format_exc())
    finally:
        b.save()
    bad = sum(1 for c in b.checks if not c["ok"])
    print("build: %d cases, %d build checks (%d failed)" % (len(b.cases), len(b.checks), bad))
    return 0


# ---- dkimpy verification -----------------------------------------------------------

def cmd_dkimpy(args):
    import dkim
    work = os.path.abspath(args.work)
    dnsfunc = make_dnsfunc(os.path.join(work, "zone.txt"))
    lg, collected = quiet_logger("arcinterop-verify")
    with open(os.path.join(work, "cases.json")) as fh:
        cases = json.load(fh)
    out = open(os.path.join(work, "results", "dkimpy.jsonl"), "w")
    for c in cases:
        collected.lines = []
        with open(c["file"], "rb") as fh:
            data = fh.read()
        rec = {"id": c["id"]}
        try:
            cv, sets, reason = dkim.arc_verify(data, logger=lg, dnsfunc=dnsfunc)
            rec["cv"] = cv.decode() if cv is not None else "none (chain terminated)"
            rec["reason"] = reason
            rec["sets"] = [{"i": s.get("instance"), "ams": s.get("ams-valid"),
                            "as": s.get("as-valid"),
                            "cv": (s.get("cv") or b"").decode()} for s in sets]
            ams = {s["i"]: bool(s["ams"]) for s in rec["sets"]}
            if len(ams) == c["n"]:
                rec["oldest_pass"] = rfc_oldest_pass(ams, c["n"])
        except Exception as ex:  # noqa: BLE001
            rec.update(cv="error", reason="%s: %s" % (type(ex).__name__, ex), sets=[])
        if collected.lines:
            rec["log"] = collected.lines[:5]
        out.write(json.dumps(rec) + "\n")
        out.flush()
    out.close()
    return 0


# ---- comparison ----------------------------------------------------------------------

REASON_RE = re.compile(r"(ARC-Seal|ARC-Message-Signature|ARC-Authentication-Results)\s+i=(\d+)")


def judge_arcrelay(c, r):
    """(ok, what arcrelay said)."""
    if r is None:
        return False, "no result"
    if r.get("rc") != 0:
        return False, "exit %s: %s" % (r.get("rc"), r.get("stderr", ""))
    arc = r.get("json", {}).get("arc")
    if not isinstance(arc, dict):
        return False, "no arc object in output: %s" % r.get("raw", "")[:300]
    said = "result=%s instances=%s oldest_pass=%s reason=%r" % (
        arc.get("result"), arc.get("instances"), arc.get("oldest_pass"), arc.get("reason"))
    why = []
    if c["expect"] == "pass":
        if arc.get("result") != "pass":
            why.append("expected pass")
        if arc.get("instances") != c["n"]:
            why.append("expected instances %d" % c["n"])
        if arc.get("oldest_pass") != c.get("oldest_pass", 0):
            why.append("expected oldest_pass %d" % c.get("oldest_pass", 0))
    else:
        if arc.get("result") != "fail":
            why.append("expected fail")
        reason = arc.get("reason") or ""
        m = REASON_RE.search(reason)
        accept = [tuple(a) for a in c["accept"]]
        if not m:
            why.append("reason names no ARC header with i=")
        elif (m.group(1), int(m.group(2))) not in accept:
            why.append("reason names %s i=%s; a broken one is one of %s" % (
                m.group(1), m.group(2), ", ".join("%s i=%d" % a for a in accept)))
        for word in c.get("need", []):
            if word not in reason:
                why.append("reason lacks %r" % word)
    return not why, said + ("" if not why else "  <-- " + "; ".join(why))


def judge_dkimpy(c, r):
    if r is None:
        return False, "no result"
    said = "cv=%s reason=%r" % (r.get("cv"), r.get("reason"))
    if "oldest_pass" in r:
        said += " oldest_pass(from ams-valid)=%s" % r["oldest_pass"]
    if c["expect"] == "pass":
        ok = r.get("cv") == "pass"
        if ok and r.get("oldest_pass", -1) != c.get("oldest_pass", 0):
            return False, said + "  <-- expected oldest_pass %d" % c.get("oldest_pass", 0)
    else:
        ok = r.get("cv") != "pass"
    return ok, said


def judge_mdkim(c, r):
    if r is None:
        return False, "no result"
    said = "result=%s detail=%r" % (r.get("result"), r.get("detail"))
    if c["expect"] == "pass":
        ok = r.get("result") == "pass"
        ams = {}
        for s in r.get("sets", []):
            if s.get("type") == "ams":
                try:
                    ams[int(s["i"])] = s.get("result") == "pass"
                except (TypeError, ValueError):
                    pass
        if ok and len(ams) == c["n"]:
            op = rfc_oldest_pass(ams, c["n"])
            if op != c.get("oldest_pass", 0):
                return False, said + "  <-- AMS results give oldest_pass %d, expected %d" % (
                    op, c.get("oldest_pass", 0))
    else:
        ok = r.get("result") != "pass"
    return ok, said


# ---- rspamd -------------------------------------------------------------------------
#
# What Rspamd 3.4 says differs from RFC 6376/8617 in the ways below
# (README.md, "Rspamd differences", has the evidence).  The check expects
# the deviation only where it applies and asserts the RFC answer elsewhere.

RSPAMD_MAX_ARC_I = 10     # dkim.c refuses i= above 10 for ARC-Seal/AMS
# Run first on a fresh rspamd: the warm-up puts only pyhop1-3's keys in
# rspamd's key cache; then the forged chain (AS i=2 broken, resealed by
# pyhop3 claiming cv=pass) has a cached newest seal and uncached older
# ones.  arc.lua decides when the callback of seal N runs, which for a
# cached key is before the DNS answers for seals 1 and 2 arrive, so
# rspamd says ARC_ALLOW.  The same file as an ordinary case, scanned later
# with every key cached, gives ARC_REJECT.
RSPAMD_PROBES = [
    ("rspamd-order/warm", "py/plain.3.eml", "allow"),
    ("rspamd-order/forged", "resealed/arc_mime.2_as-2-t.eml", "allow"),
]


def rspamd_expect(c):
    """(arc verdict, detail substring, dkim verdict, deviation note) that
    rspamd 3.4 must give for case c."""
    with open(c["file"], "rb") as fh:
        data = fh.read()
    note = []
    arc, detail = ("allow", "") if c["expect"] == "pass" else ("reject", "")
    dkim = {"pass": "allow", "fail": "reject", "nokey": "tempfail"}[c.get("dkim", "pass")]
    if c.get("dkim") == "nokey":
        # 3.4's arc.lua never inserts ARC_DNSFAIL: a key it cannot fetch
        # is ARC_REJECT, with the DNS error in the detail.
        detail = "failed: query refused"
        note.append("a missing ARC key is ARC_REJECT, not ARC_DNSFAIL")
    dup = rd.single_fields_signed(data, b"dkim-signature")
    if dup and dkim == "allow":
        dkim = "reject"
        note.append("DKIM-Signature covers repeated %s" % ",".join(dup))
    dup = rd.single_fields_signed(data, b"arc-message-signature")
    if c["n"] > RSPAMD_MAX_ARC_I:
        if arc == "allow":
            arc, detail = "reject", "i parameter missing or invalid for ARC"
            note.append("i=%d is above rspamd's limit of %d" % (c["n"], RSPAMD_MAX_ARC_I))
    elif dup and arc == "allow":
        arc, detail = "reject", "signature check failed"
        note.append("newest AMS covers repeated %s" % ",".join(dup))
    return arc, detail, dkim, "; ".join(note)


def judge_rspamd(c, r):
    if r is None:
        return False, "no result"
    if "error" in r:
        return False, "scan failed: %s" % r["error"]
    arc, detail, dkim, note = rspamd_expect(c)
    said = "arc=%s (%s) dkim=%s (%s)" % (r.get("arc"), r.get("arc_detail"), r.get("dkim"),
                                          r.get("dkim_detail"))
    why = []
    if r.get("arc") != arc or detail not in (r.get("arc_detail") or ""):
        why.append("expected arc=%s%s" % (arc, " with %r" % detail if detail else ""))
    if r.get("dkim") != dkim:
        why.append("expected dkim=%s" % dkim)
    if note:
        said += " [rspamd deviation expected: %s]" % note
    return not why, said + ("" if not why else "  <-- " + "; ".join(why))


def judge_rspamd_probes(results, lines):
    """(passed, failed) for RSPAMD_PROBES, failures appended to lines."""
    passed = failed = 0
    for pid, rel, want in RSPAMD_PROBES:
        r = results.get(pid)
        if r is not None and r.get("arc") == want:
            passed += 1
            continue
        failed += 1
        lines.append("FAIL %s  [rspamd key-cache order probe, %s]\n    expected: arc=%s\n"
                     "    rspamd:     %s" % (pid, rel, want,
                                          "no result" if r is None else
                                          r.get("error") or "arc=%s (%s)" % (
                                              r.get("arc"), r.get("arc_detail"))))
    return passed, failed


def load_jsonl(path, key):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                out[rec.get(key)] = rec
    return out


def load_arcrelay(work, cid):
    base = os.path.join(work, "results", "arcrelay", cid.replace("/", "_"))
    if not os.path.exists(base + ".rc"):
        return None
    r = {}
    with open(base + ".rc") as fh:
        r["rc"] = int(fh.read().strip() or -1)
    with open(base + ".err") as fh:
        r["stderr"] = fh.read().strip()
    with open(base + ".json") as fh:
        r["raw"] = fh.read()
    try:
        r["json"] = json.loads(r["raw"])
    except ValueError:
        r["json"] = {}
    return r


def cmd_check(args):
    work = os.path.abspath(args.work)
    passed = failed = 0
    lines = []

    checks = []
    if os.path.exists(os.path.join(work, "build-checks.jsonl")):
        with open(os.path.join(work, "build-checks.jsonl")) as fh:
            checks = [json.loads(l) for l in fh if l.strip()]
    else:
        lines.append("FAIL build: no build-checks.jsonl (the build step died)")
        failed += 1
    for c in checks:
        if c["ok"]:
            passed += 1
        else:
            failed += 1
            lines.append("FAIL build: %s: %s" % (c["check"], c["detail"]))

    cases_path = os.path.join(work, "cases.json")
    cases = []
    if os.path.exists(cases_path):
        with open(cases_path) as fh:
            cases = json.load(fh)
    if not cases:
        lines.append("FAIL: no cases were built")
        failed += 1
    py = load_jsonl(os.path.join(work, "results", "dkimpy.jsonl"), "id")
    pl = load_jsonl(os.path.join(work, "results", "mdkim.jsonl"), "file")
    rs = load_jsonl(os.path.join(work, "results", "rspamd.jsonl"), "id")
    p_, f_ = judge_rspamd_probes(rs, lines)
    passed, failed = passed + p_, failed + f_
    # Offline: rspamd's nameserver (the scan step) must have been asked for
    # the unpublished names, and for no name that the zone has.
    asked = set()
    if os.path.exists(os.path.join(work, "results", "rspamd.jsonl.dns")):
        with open(os.path.join(work, "results", "rspamd.jsonl.dns")) as fh:
            asked = {l.strip() for l in fh if l.strip()}
    leaked = asked & set(ic.read_zone(os.path.join(work, "zone.txt")))
    want = {"gone._domainkey." + UNPUBLISHED_DOMAIN,
            "%s._domainkey.%s" % (UNPUBLISHED_SELECTOR, ORIGIN_DOMAIN)}
    if leaked or not want <= asked:
        failed += 1
        lines.append("FAIL rspamd DNS: asked its nameserver %s; must include %s and no zone name"
                     % (sorted(asked), sorted(want)))
    else:
        passed += 1

    disagreements = []
    stats = {}
    for c in cases:
        a_ok, a_said = judge_arcrelay(c, load_arcrelay(work, c["id"]))
        p_ok, p_said = judge_dkimpy(c, py.get(c["id"]))
        m_ok, m_said = judge_mdkim(c, pl.get(c["file"]))
        r_ok, r_said = judge_rspamd(c, rs.get(c["id"]))
        group = c["id"].split("/")[0]
        st = stats.setdefault(group, [0, 0])
        for ok in (a_ok, p_ok, m_ok, r_ok):
            if ok:
                passed += 1
                st[0] += 1
            else:
                failed += 1
                st[1] += 1
        if a_ok and p_ok and m_ok and r_ok:
            continue
        if not a_ok and p_ok and m_ok:
            verdict = "ARCRELAY DISAGREES with both dkimpy and Mail::DKIM (likely an arcrelay bug)"
            disagreements.append(c["id"])
        elif a_ok and not p_ok and not m_ok:
            verdict = "both independent verifiers disagree with the expectation (check the harness)"
        elif not a_ok and not p_ok and not m_ok:
            verdict = "all three verifiers disagree with the expectation (check the harness / builder)"
        else:
            who = [n for n, ok in (("arcrelay", a_ok), ("dkimpy", p_ok), ("Mail::DKIM", m_ok),
                                   ("rspamd", r_ok)) if not ok]
            verdict = "failed in: " + ", ".join(who)
        lines.append("FAIL %s  [%s]\n    expected: %s%s\n    file:     %s\n"
                     "    arcrelay:   %s %s\n    dkimpy:     %s %s\n    Mail::DKIM: %s %s\n"
                     "    rspamd:     %s %s\n    => %s" % (
                         c["id"], c.get("what", ""),
                         "pass, %d sets, oldest_pass %d" % (c["n"], c.get("oldest_pass", 0))
                         if c["expect"] == "pass" else
                         "fail, reason naming one of " + ", ".join("%s i=%d" % tuple(a) for a in c["accept"]),
                         (" and %r" % c["need"]) if c.get("need") else "",
                         c["file"],
                         "ok  " if a_ok else "BAD ", a_said,
                         "ok  " if p_ok else "BAD ", p_said,
                         "ok  " if m_ok else "BAD ", m_said,
                         "ok  " if r_ok else "BAD ", r_said, verdict))

    for l in lines:
        print(l)
    print("cases: %d (%s); each checked by arcrelay, dkimpy, Mail::DKIM and rspamd" % (
        len(cases), ", ".join("%s %d/%d ok" % (g, s[0], s[0] + s[1]) for g, s in sorted(stats.items()))))
    if disagreements:
        print("arcrelay alone disagrees on: " + ", ".join(disagreements))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("work")
    b.add_argument("--arcrelay", required=True)
    b.add_argument("--now", type=int, required=True)
    d = sub.add_parser("dkimpy")
    d.add_argument("work")
    k = sub.add_parser("check")
    k.add_argument("work")
    args = ap.parse_args()
    return {"build": cmd_build, "dkimpy": cmd_dkimpy, "check": cmd_check}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
