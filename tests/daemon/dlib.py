"""dlib.py - what the daemon tests share: names, the test DNS data, the
message corpus, an SMTP client that shows every reply, and the checks a
delivered message must pass (dkimpy here, Mail::DKIM via mdkim_check.pl).

Run with Debian's /usr/bin/python3 (dkimpy, python3-authres).
"""

import base64
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- the cast --------------------------------------------------------------
RELAY_DOMAIN = "relay.example"      # d= of the relay's DKIM signature and seal
RELAY_SELECTOR = "relay1"
AUTHSERV_ID = "relay.example"       # the relay's authserv-id
HOSTNAME = "mx.relay.example"
SENDER_DOMAIN = "sender.example"    # the author's domain: DKIM key, SPF, DMARC
SENDER_SELECTOR = "s2024"
RCPT_DOMAIN = "example.net"         # the one domain the relay takes mail for
SENDER = "alice@" + SENDER_DOMAIN


# ---- DNS -------------------------------------------------------------------

def quoted_strings(path):
    """The character-strings of the TXT record `arcrelay keygen` wrote."""
    with open(path) as fh:
        text = fh.read()
    return [s.encode() for s in re.findall(r'"([^"]*)"', text)]


def split255(s):
    b = s.encode() if isinstance(s, str) else s
    return [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]


class Zone:
    """A handful of records, written out three ways: a zone file (for the
    daemon's [dns] records= and for reading back), unbound local-data
    lines, and JSON for the Perl checker.  dkimpy asks txt()."""

    def __init__(self):
        self.recs = []          # (name, type, [bytes strings] | rdata str)

    def add_txt(self, name, strings):
        if isinstance(strings, (str, bytes)):
            strings = split255(strings)
        self.recs.append((name.lower().rstrip("."), "TXT", list(strings)))

    def add(self, name, rtype, rdata):
        self.recs.append((name.lower().rstrip("."), rtype, rdata))

    def txt(self, name):
        name = name.lower().rstrip(".")
        for n, t, d in self.recs:
            if n == name and t == "TXT":
                return b"".join(d)
        return None

    @staticmethod
    def _q(s):
        out = ""
        for c in s:
            if c in b'"\\':
                out += "\\" + chr(c)
            elif 32 <= c < 127:
                out += chr(c)
            else:
                out += "\\%03d" % c
        return '"%s"' % out

    def zone_lines(self):
        for n, t, d in self.recs:
            rd = " ".join(self._q(s) for s in d) if t == "TXT" else d
            yield "%s. 300 IN %s %s" % (n, t, rd)

    def write(self, work):
        with open(os.path.join(work, "zone.txt"), "w") as fh:
            for ln in self.zone_lines():
                fh.write(ln + "\n")
        j = {}
        for n, t, d in self.recs:
            if t == "TXT":
                j.setdefault(n, []).append([s.decode("latin-1") for s in d])
        with open(os.path.join(work, "zone.json"), "w") as fh:
            json.dump(j, fh, indent=1)
        zones = sorted({".".join(n.split(".")[-2:]) for n, _, _ in self.recs})
        with open(os.path.join(work, "unbound-data.conf"), "w") as fh:
            for z in zones:
                fh.write('\tlocal-zone: "%s." static\n' % z)
            for ln in self.zone_lines():
                fh.write("\tlocal-data: '%s'\n" % ln)

    @classmethod
    def load(cls, work):
        z = cls()
        with open(os.path.join(work, "zone.json")) as fh:
            for n, recs in json.load(fh).items():
                for strings in recs:
                    z.add_txt(n, [s.encode("latin-1") for s in strings])
        return z

    def dnsfunc(self):
        def f(name, timeout=5):
            if isinstance(name, bytes):
                name = name.decode("ascii", "replace")
            return self.txt(name)
        return f


def make_zone(work):
    """The test DNS: keys from WORK/keys (made by `arcrelay keygen`)."""
    z = Zone()
    k = os.path.join(work, "keys")
    z.add_txt("%s._domainkey.%s" % (RELAY_SELECTOR, RELAY_DOMAIN),
              quoted_strings(os.path.join(k, RELAY_SELECTOR + ".txt")))
    z.add_txt("%s._domainkey.%s" % (SENDER_SELECTOR, SENDER_DOMAIN),
              quoted_strings(os.path.join(k, SENDER_SELECTOR + ".txt")))
    z.add_txt(SENDER_DOMAIN, "v=spf1 ip4:127.0.0.0/8 -all")
    z.add_txt("_dmarc." + SENDER_DOMAIN, "v=DMARC1; p=reject; adkim=s; aspf=r")
    z.add(SENDER_DOMAIN, "MX", "10 mx.%s." % SENDER_DOMAIN)
    z.add("mx." + SENDER_DOMAIN, "A", "127.0.0.1")
    z.add_txt(RELAY_DOMAIN, "v=spf1 ip4:127.0.0.0/8 -all")
    z.add_txt("_dmarc." + RELAY_DOMAIN, "v=DMARC1; p=none")
    z.add_txt(HOSTNAME, "v=spf1 a -all")
    z.add(HOSTNAME, "A", "127.0.0.1")
    z.add(RCPT_DOMAIN, "MX", "10 mx.%s." % RCPT_DOMAIN)
    z.add("mx." + RCPT_DOMAIN, "A", "127.0.0.1")
    return z


# ---- messages ----------------------------------------------------------------

def read_key(work, selector):
    with open(os.path.join(work, "keys", selector + ".private"), "rb") as fh:
        return fh.read()


def dkim_sign(data, key, canon=(b"relaxed", b"relaxed"), headers=None):
    import dkim
    sig = dkim.sign(data, SENDER_SELECTOR.encode(), SENDER_DOMAIN.encode(), key,
                    canonicalize=canon, include_headers=headers)
    return sig + data


def crlf(text):
    if isinstance(text, str):
        text = text.encode()
    return re.sub(rb"\r?\n", b"\r\n", text)


def head(mid, subject, extra=b"", to="bob@" + RCPT_DOMAIN, frm=SENDER):
    return crlf("From: Alice <%s>\nTo: <%s>\nSubject: %s\n"
                "Date: Mon, 02 Sep 2024 10:00:00 +0000\nMessage-ID: %s\n"
                % (frm, to, subject, mid)) + extra


def message_ids(data):
    end = data.find(b"\r\n\r\n")
    m = re.search(rb"(?im)^message-id:[ \t]*(<[^>\r\n]*>)", data[:end + 2])
    return m.group(1).decode() if m else None


def field_span(data, name):
    """(start, end) of the first header field called name (the whole
    field, folded lines and CRLF included)."""
    m = re.search(rb"(?im)^" + re.escape(name.encode()) + rb":.*\r\n(?:[ \t].*\r\n)*", data)
    return (m.start(), m.end()) if m else None


def corpus(work, tag):
    """The messages the end-to-end test sends.  Each is a dict: name, data
    (the bytes sent), expect (the bytes the relay must hand on after its own
    fields), mail_from, rcpt, mail_options, via (smtplib|swaks), and what the
    AAR must say."""
    key = read_key(work, SENDER_SELECTOR)
    out = []

    def add(name, body_head, body, via="smtplib", canon=(b"relaxed", b"relaxed"),
            rcpt=None, mail_options=(), signed=True, after_sign=None, expect_dkim="pass"):
        mid = "<%s.%s@%s>" % (name, tag, SENDER_DOMAIN)
        data = head(mid, "e2e " + name, body_head) + b"\r\n" + body
        if signed:
            data = dkim_sign(data, key, canon)
        expect = data
        if after_sign:
            data, expect = after_sign(data)
        out.append({"name": name, "message_id": mid, "data": data, "expect": expect,
                    "mail_from": SENDER, "rcpt": rcpt or ["bob@" + RCPT_DOMAIN],
                    "mail_options": list(mail_options), "via": via,
                    "expect_dkim": expect_dkim if signed else "none",
                    "expect_spf": "pass", "expect_dmarc": "pass"})

    mime = crlf("MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n")
    add("plain", mime, crlf("Hello Bob,\n\nA plain message.\n\n-- \nAlice\n"))
    add("swaks-plain", mime, crlf("Sent with swaks --data.\nSecond line.\n"), via="swaks")
    add("simple-canon", mime + crlf("X-Spacing:   several   spaces\t and a tab \n"),
        crlf("Body with  double  spaces   \n\ttab-led line\n\n\n"), canon=(b"simple", b"simple"))
    utf8 = "Grüße aus Köln, ½ € — ünïcödé ✓\n日本語のテキスト\n".encode()
    add("8bit-utf8", crlf("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                          "Content-Transfer-Encoding: 8bit\n"),
        crlf(utf8 * 3), mail_options=["BODY=8BITMIME"])
    add("8bit-latin1", crlf("MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\n"
                            "Content-Transfer-Encoding: 8bit\n"),
        crlf("Caf\xe9 cr\xe8me br\xfbl\xe9e \xa9 \xff\n".encode("latin-1") * 4),
        mail_options=["BODY=8BITMIME"])
    add("8bit-swaks", crlf("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                           "Content-Transfer-Encoding: 8bit\n"),
        crlf(utf8), via="swaks", mail_options=["BODY=8BITMIME"])
    dots = crlf(".leading dot\n..two dots\n.\n . space dot\nend\n")
    add("dots", mime, dots)
    add("dots-swaks", mime, dots, via="swaks")
    longline = ("x" * 990 + "\n") * 3 + "short\n"
    add("long-lines", mime, crlf(longline))
    attach = base64.encodebytes(os.urandom(30000)).replace(b"\n", b"\r\n")
    add("multipart", crlf('MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b-1"\n'),
        crlf("This is MIME.\n\n--b-1\nContent-Type: text/plain\n\nsee attachment\n\n"
             "--b-1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
             "Content-Disposition: attachment; filename=r.bin\n\n") + attach +
        crlf("\n--b-1--\n"))
    add("big", mime, crlf(("%070d\n" % 0) * 15000))          # about 1 MB
    add("empty-body", mime, b"")
    add("folded-headers", mime + crlf("X-Folded: one\n\ttwo\n   three\n"
                                      "Received: from earlier.example (earlier [192.0.2.1])\n"
                                      "\tby sender.example; Mon, 02 Sep 2024 10:00:00 +0000\n"),
        crlf("folded header fields above\n"))
    add("two-rcpts", mime, crlf("to two recipients\n"),
        rcpt=["bob@" + RCPT_DOMAIN, "carol@" + RCPT_DOMAIN])
    add("unsigned-swaks", mime, crlf("no DKIM signature; DMARC passes on SPF\n"),
        via="swaks", signed=False)

    # A forged Authentication-Results claiming our authserv-id, put on top
    # after signing (as a hop would); another one in the middle of the
    # header, lowercase name; and a genuine one from another server, kept.
    def forge_top(data):
        f = ("Authentication-Results: %s; dkim=pass header.d=paypal.example;\r\n"
             "\tspf=pass smtp.mailfrom=paypal.example\r\n" % AUTHSERV_ID).encode()
        return f + data, data

    def forge_mid(data):
        s, e = field_span(data, "Subject")
        f = ("authentication-results:   %s;\r\n dmarc=pass header.from=bank.example\r\n"
             % AUTHSERV_ID.upper()).encode()
        other = b"Authentication-Results: mx.sender.example; spf=pass smtp.mailfrom=sender.example\r\n"
        return data[:e] + f + other + data[e:], data[:e] + other + data[e:]

    add("forged-ar-top", mime, crlf("a forged A-R is on top\n"), after_sign=forge_top)
    add("forged-ar-middle", mime, crlf("a forged A-R is in the middle\n"), after_sign=forge_mid)
    add("forged-ar-swaks", mime, crlf("a forged A-R, sent by swaks\n"), after_sign=forge_top,
        via="swaks")
    return out


# ---- SMTP ------------------------------------------------------------------------

class SMTPError(Exception):
    pass


class Client:
    """A line-level SMTP client: every reply is returned whole (code and
    text), nothing is retried or hidden.  Used where smtplib would get in
    the way (tricks, pipelining, timing)."""

    def __init__(self, port, host="127.0.0.1", timeout=30, source=None):
        self.s = socket.create_connection((host, port), timeout=timeout,
                                          source_address=(source, 0) if source else None)
        self.f = self.s.makefile("rb")
        self.banner = self.reply()

    def reply(self):
        lines = []
        while True:
            ln = self.f.readline(4096)
            if not ln:
                raise SMTPError("connection closed (after %r)" % (b"".join(lines),))
            lines.append(ln)
            if len(ln) < 4 or ln[3:4] != b"-":
                break
        text = b"".join(lines).decode("latin-1").rstrip("\r\n")
        try:
            code = int(text[:3])
        except ValueError:
            raise SMTPError("bad reply %r" % text)
        return code, text

    def send(self, raw):
        self.s.sendall(raw if isinstance(raw, bytes) else raw.encode())

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def data(self, msg):
        """DATA with dot-stuffing; returns (354 reply, final reply, seconds
        from the end of the data to the final reply)."""
        r = self.cmd("DATA")
        if r[0] != 354:
            return r, None, None
        body = msg
        if body.startswith(b"."):
            body = b"." + body
        body = body.replace(b"\r\n.", b"\r\n..")
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.send(body)
        t0 = time.monotonic()
        self.send(b".\r\n")
        fin = self.reply()
        return r, fin, time.monotonic() - t0

    def close(self):
        try:
            self.send(b"QUIT\r\n")
            self.reply()
        except Exception:
            pass
        self.s.close()


def send_smtplib(port, item):
    """Send one corpus item with smtplib; returns the final reply text
    (or "EXC ..." if smtplib raised)."""
    import smtplib
    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.sender.example",
                          timeout=60) as s:
            s.ehlo()
            code, msg = s.mail(item["mail_from"], item["mail_options"])
            if code != 250:
                return "%d %s" % (code, msg.decode("latin-1"))
            for r in item["rcpt"]:
                code, msg = s.rcpt(r)
                if code != 250:
                    return "%d %s" % (code, msg.decode("latin-1"))
            code, msg = s.data(item["data"])
            return "%d %s" % (code, msg.decode("latin-1"))
    except smtplib.SMTPResponseException as e:
        return "%d %s" % (e.smtp_code, e.smtp_error.decode("latin-1", "replace"))
    except Exception as e:
        return "EXC %s: %s" % (type(e).__name__, e)


def send_swaks(port, item, path, log):
    """Send a corpus item with swaks --data FILE; returns the last reply
    to the data (swaks' "<~ 250 ..." line)."""
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(port), "--from", item["mail_from"],
           "--to", ",".join(item["rcpt"]), "--helo", "swaks.sender.example",
           "--data", "@" + path, "--timeout", "60"]
    # This swaks has no way to say BODY=8BITMIME: 8-bit items go without it.
    p = subprocess.run(cmd, capture_output=True, timeout=120)
    with open(log, "wb") as fh:
        fh.write(b"$ " + " ".join(cmd).encode() + b"\n" + p.stdout + p.stderr)
    # swaks shows replies as "<-  250 ..." ("<~" under TLS, "<**" for errors).
    replies = [ln[4:].strip() for ln in p.stdout.decode("latin-1").splitlines()
               if ln[:3] in ("<- ", "<~ ", "<**")]
    for i, ln in enumerate(replies):
        if ln.startswith("354") and i + 1 < len(replies):
            return replies[i + 1]
    return replies[-1] if replies else "EXC swaks rc=%d" % p.returncode


# ---- the sink's store ------------------------------------------------------------

def sink_messages(sinkdir):
    """[(env dict, bytes)] for everything the sink kept, in arrival order."""
    out = []
    for name in sorted(os.listdir(sinkdir)):
        if not re.match(r"^\d+\.json$", name):
            continue
        with open(os.path.join(sinkdir, name)) as fh:
            env = json.load(fh)
        with open(os.path.join(sinkdir, name[:-5] + ".eml"), "rb") as fh:
            data = fh.read()
        env["file"] = os.path.join(sinkdir, name[:-5] + ".eml")
        out.append((env, data))
    return out


def wait_for(pred, timeout, step=0.2):
    end = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() >= end:
            return v
        time.sleep(step)


# ---- checks on a delivered message ---------------------------------------------

OUR_FIELDS = ("arc-seal", "arc-message-signature", "arc-authentication-results",
              "dkim-signature", "received")


def split_fields(block):
    """A header block (complete fields) as [(name, raw bytes)]; None when
    it is not made of whole fields."""
    fields = []
    for m in re.finditer(rb"([!-9;-~]+):(.*\r\n(?:[ \t].*\r\n)*)", block):
        fields.append((m.group(1).decode().lower(), m.group(0), m.start(), m.end()))
    pos = 0
    for _, _, s, e in fields:
        if s != pos:
            return None
        pos = e
    if pos != len(block):
        return None
    return [(n, raw) for n, raw, _, _ in fields]


def unfold(raw):
    return re.sub(rb"\r\n[ \t]+", b" ", raw).decode("latin-1").strip()


def tags(value):
    d = {}
    for part in value.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            d[k.strip()] = re.sub(r"\s+", "", v)
    return d


def prepended_fields(data, expect):
    """(fields, "") when data is expect with whole header fields put on
    top, fields as split_fields gives them; (None, why) otherwise."""
    if not data.endswith(expect):
        # Find where they part, for the report.
        i = 0
        tail = data[-len(expect):] if len(data) >= len(expect) else data
        while i < min(len(tail), len(expect)) and tail[i] == expect[i]:
            i += 1
        return None, ("original bytes not kept: delivered %d bytes, original %d; "
                      "the last %d delivered bytes differ from the original at offset %d "
                      "(delivered %r, original %r)" % (
                          len(data), len(expect), len(tail), i, tail[i:i + 60], expect[i:i + 60]))
    prefix = data[:len(data) - len(expect)]
    fields = split_fields(prefix)
    if fields is None:
        return None, "the bytes before the original are not whole header fields: %r" % prefix[:300]
    return fields, ""


def dkimpy_logger():
    lg = logging.getLogger("dkimpy-check")
    lg.propagate = False
    lg.setLevel(logging.CRITICAL)
    return lg


def dkimpy_verdicts(data, zone):
    """dkimpy on every DKIM-Signature of data: {d= domain: (ok, why)}."""
    import dkim
    lg = dkimpy_logger()
    d = dkim.DKIM(data, logger=lg, minkey=1024)
    sigs = [h for h in d.headers if h[0].lower() == b"dkim-signature"]
    seen = {}
    for idx, (_, v) in enumerate(sigs):
        dom = tags(v.decode("latin-1")).get("d")
        try:
            ok = dkim.DKIM(data, logger=lg, minkey=1024).verify(idx=idx, dnsfunc=zone.dnsfunc())
            why = ""
        except Exception as e:
            ok, why = False, "%s: %s" % (type(e).__name__, e)
        seen[dom] = (ok, why)
    return seen


def check_relayed(data, expect, zone, want):
    """Problems (a list of strings; empty when all is well) with one
    message the relay delivered: data as the sink got it, expect the
    original bytes the relay must have kept, want the AAR results."""
    import authres
    import dkim
    problems = []
    fields, why = prepended_fields(data, expect)
    if fields is None:
        return [why]
    names = [n for n, _ in fields]
    for n in names:
        if n not in OUR_FIELDS:
            problems.append("unexpected field prepended: %s" % n)
    for n in OUR_FIELDS:
        if names.count(n) != 1:
            problems.append("%d %s fields prepended, want 1" % (names.count(n), n))
    byname = {n: raw for n, raw in fields}
    for n in ("arc-seal", "arc-message-signature", "arc-authentication-results"):
        if n in byname:
            v = unfold(byname[n]).split(":", 1)[1]
            if tags(v).get("i") != "1":
                problems.append("%s is not i=1: %s" % (n, v[:80]))
    if "arc-seal" in byname:
        t = tags(unfold(byname["arc-seal"]).split(":", 1)[1])
        if t.get("cv") != "none" or t.get("d") != RELAY_DOMAIN:
            problems.append("ARC-Seal cv=%s d=%s, want cv=none d=%s" % (t.get("cv"), t.get("d"),
                                                                       RELAY_DOMAIN))
    if "dkim-signature" in byname:
        t = tags(unfold(byname["dkim-signature"]).split(":", 1)[1])
        if t.get("d") != RELAY_DOMAIN or t.get("s") != RELAY_SELECTOR:
            problems.append("our DKIM-Signature is d=%s s=%s" % (t.get("d"), t.get("s")))

    # dkimpy: every DKIM signature (ours and, if any, the author's).
    seen = dkimpy_verdicts(data, zone)
    lg = dkimpy_logger()
    ok, why = seen.get(RELAY_DOMAIN, (False, "no signature"))
    if not ok:
        problems.append("dkimpy: our DKIM signature (d=%s) does not verify %s" % (RELAY_DOMAIN, why))
    if want["dkim"] == "pass":
        ok, why = seen.get(SENDER_DOMAIN, (False, "no signature"))
        if not ok:
            problems.append("dkimpy: the author's signature (d=%s) no longer verifies %s"
                            % (SENDER_DOMAIN, why))
    try:
        cv, sets, reason = dkim.arc_verify(data, logger=lg, dnsfunc=zone.dnsfunc())
    except Exception as e:
        cv, sets, reason = None, [], "%s: %s" % (type(e).__name__, e)
    if cv != b"pass":
        problems.append("dkimpy arc_verify: cv=%r (%s)" % (cv, reason))
    elif len(sets) != 1 or sets[0].get("instance") != 1:
        problems.append("dkimpy arc_verify: sets %r, want one, i=1" % (sets,))

    # The AAR: what the relay found for the author.
    if "arc-authentication-results" in byname:
        v = unfold(byname["arc-authentication-results"]).split(":", 1)[1].strip()
        v = re.sub(r"^i=1\s*;\s*", "", v)
        try:
            ar = authres.AuthenticationResultsHeader.parse_value(v)
        except Exception as e:
            problems.append("AAR does not parse (%s): %s" % (e, v))
            return problems
        if ar.authserv_id.lower() != AUTHSERV_ID:
            problems.append("AAR authserv-id %s, want %s" % (ar.authserv_id, AUTHSERV_ID))
        got = {}
        for r in ar.results:
            props = {"%s.%s" % (p.type, p.name): p.value for p in r.properties}
            got.setdefault(r.method, []).append((r.result, props))
        for method, res, prop, val in (("dkim", want["dkim"], "header.d", SENDER_DOMAIN),
                                       ("spf", want["spf"], "smtp.mailfrom", None),
                                       ("dmarc", want["dmarc"], "header.from", SENDER_DOMAIN)):
            if res == "any" or (res == "none" and method not in got):
                continue
            hits = [r for r in got.get(method, []) if r[0] == res]
            if not hits:
                problems.append("AAR %s=%s wanted, it says %r  [AAR: %s]" % (
                    method, res, got.get(method), v))
                continue
            if val and res == "pass" and not any(h[1].get(prop, "").lower().endswith(val) for h in hits):
                problems.append("AAR %s=%s lacks %s=%s  [AAR: %s]" % (method, res, prop, val, v))
            if method == "spf" and not any(SENDER_DOMAIN in h[1].get("smtp.mailfrom", "")
                                           for h in hits):
                problems.append("AAR spf=pass does not name smtp.mailfrom=...@%s [AAR: %s]"
                                % (SENDER_DOMAIN, v))
    return problems


def run_mdkim(work, files):
    """Mail::DKIM's verdicts: {file: {"dkim": [...], "arc": ...}}."""
    lst = os.path.join(work, "mdkim-list.txt")
    with open(lst, "w") as fh:
        for f in files:
            fh.write(f + "\n")
    p = subprocess.run(["/usr/bin/perl", os.path.join(HERE, "mdkim_check.pl"),
                        os.path.join(work, "zone.json"), lst],
                       capture_output=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("mdkim_check.pl failed: %s" % p.stderr.decode("latin-1")[-2000:])
    out = {}
    for ln in p.stdout.decode().splitlines():
        rec = json.loads(ln)
        out[rec["file"]] = rec
    return out


def mdkim_problems(rec, want_author):
    problems = []
    if rec.get("error"):
        return ["Mail::DKIM: %s" % rec["error"]]
    ours = [s for s in rec["dkim"] if s["d"] == RELAY_DOMAIN]
    if not ours or ours[0]["result"] != "pass":
        problems.append("Mail::DKIM: our DKIM signature: %r" % (ours,))
    if want_author:
        theirs = [s for s in rec["dkim"] if s["d"] == SENDER_DOMAIN]
        if not theirs or theirs[0]["result"] != "pass":
            problems.append("Mail::DKIM: the author's signature: %r" % (theirs,))
    if rec["arc"] != "pass":
        problems.append("Mail::DKIM ARC: %s (%s)" % (rec["arc"], rec.get("arc_detail")))
    return problems


class Tally:
    """PASS/FAIL lines, counted; the last line is 'N passed, M failed'."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("PASS %s" % name, flush=True)
        else:
            self.failed += 1
            print("FAIL %s" % name, flush=True)
            for ln in str(detail).splitlines():
                print("     %s" % ln, flush=True)
        return ok


# ---- the processes ---------------------------------------------------------------

PY = "/usr/bin/python3"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def keygen(arcrelay, work):
    k = os.path.join(work, "keys")
    os.makedirs(k, exist_ok=True)
    for dom, sel in ((RELAY_DOMAIN, RELAY_SELECTOR), (SENDER_DOMAIN, SENDER_SELECTOR)):
        subprocess.run([arcrelay, "keygen", "--domain", dom, "--selector", sel, "--out", k],
                       check=True, capture_output=True)


def private_work(arcrelay, work):
    """private_work - work wiped and made again, a private copy of arcrelay
    in it (a rebuild during the run must not swap the binary), the keys and
    the test DNS data written: (absolute work, the copy, the Zone)."""
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    work = os.path.abspath(work)
    shutil.copy2(arcrelay, os.path.join(work, "arcrelay"))
    arcrelay = os.path.join(work, "arcrelay")
    keygen(arcrelay, work)
    zone = make_zone(work)
    zone.write(work)
    return work, arcrelay, zone


class Unbound:
    """Debian's unbound on a loopback port, answering from local-data."""

    def __init__(self, work):
        self.work = work
        self.port = free_port()
        conf = os.path.join(work, "unbound.conf")
        with open(os.path.join(work, "unbound-data.conf")) as fh:
            data = fh.read()
        with open(conf, "w") as fh:
            fh.write("server:\n\tinterface: 127.0.0.1\n\tport: %d\n\tdo-daemonize: no\n"
                     "\tchroot: \"\"\n\tusername: \"\"\n\tdirectory: \"%s\"\n"
                     "\tpidfile: \"%s/unbound.pid\"\n\tuse-syslog: no\n"
                     "\tlogfile: \"%s/unbound.log\"\n\tverbosity: 1\n"
                     "\taccess-control: 127.0.0.0/8 allow\n\tdo-ip6: no\n"
                     "\tmodule-config: \"iterator\"\n%s"
                     "remote-control:\n\tcontrol-enable: no\n"
                     % (self.port, work, work, work, data))
        ub = "/usr/sbin/unbound"
        self.proc = subprocess.Popen([ub, "-d", "-c", conf],
                                     stdout=open(os.path.join(work, "unbound.out"), "wb"),
                                     stderr=subprocess.STDOUT)
        log = os.path.join(work, "unbound.log")
        ok = wait_for(lambda: os.path.exists(log) and b"start of service" in open(log, "rb").read(),
                      10, 0.1)
        if not ok:
            raise RuntimeError("unbound did not start: see %s" % log)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class SinkProc:
    def __init__(self, work, name="sink", store="all", rules=None, extra=()):
        self.dir = os.path.join(work, name)
        self.port = free_port()
        self.rules = rules or os.path.join(work, name + "-rules.json")
        if not os.path.exists(self.rules):
            with open(self.rules, "w") as fh:
                fh.write("{}\n")
        ready = os.path.join(work, name + ".ready")
        if os.path.exists(ready):
            os.unlink(ready)
        self.proc = subprocess.Popen([PY, os.path.join(HERE, "sink.py"), "--port", str(self.port),
                                      "--dir", self.dir, "--rules", self.rules, "--ready", ready,
                                      "--store", store] + list(extra),
                                     stderr=open(os.path.join(work, name + ".err"), "ab"))
        if not wait_for(lambda: os.path.exists(ready), 10, 0.05):
            raise RuntimeError("the sink did not start: see %s.err" % name)

    def set_rules(self, rules):
        tmp = self.rules + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(rules, fh)
        os.replace(tmp, self.rules)
        time.sleep(0.01)   # a distinct mtime for the next change

    def stats(self):
        c = Client(self.port)
        code, text = c.cmd("STAT")
        c.close()
        return json.loads(text[4:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_servers(work, procs):
    """start_servers - unbound and the sink, each added to procs once it runs
    (so that one failing to start still has the other stopped): (unbound,
    sink)."""
    ub = Unbound(work)
    procs.append(ub)
    sink = SinkProc(work, "sink")
    procs.append(sink)
    return ub, sink


def write_config(work, port, sink_port, dns_port, extra_server="", extra="", name="arcrelay.conf",
                 retry="1s 2s 5s", workers=2, idle_timeout="60s", spool=None):
    path = os.path.join(work, name)
    with open(path, "w") as fh:
        fh.write("""# written by tests/daemon
[server]
listen = 127.0.0.1:%(port)d
hostname = %(host)s
authserv_id = %(asid)s
spool = %(spool)s
max_message_size = 20M
max_recipients = 100
idle_timeout = %(idle)s
workers = %(workers)d
%(extra_server)s
[dns]
resolver = 127.0.0.1@%(dns)d
timeout = 5s

[delivery]
deliver = smtp:[127.0.0.1]:%(sink)d
retry = %(retry)s
lifetime = 1h

[signing]
domain = %(rd)s
selector = %(rs)s
key = %(work)s/keys/%(rs)s.private

[domain %(dom)s]
%(extra)s""" % {"port": port, "host": HOSTNAME, "asid": AUTHSERV_ID, "work": work,
                "dns": dns_port, "sink": sink_port, "rd": RELAY_DOMAIN, "rs": RELAY_SELECTOR,
                "dom": RCPT_DOMAIN, "extra": extra, "extra_server": extra_server,
                "retry": retry, "workers": workers, "idle": idle_timeout,
                "spool": spool or os.path.join(work, "spool")})
    return path


class Daemon:
    """`arcrelay serve --config FILE`, its stderr appended to WORK/daemon.log
    (each start is marked in it)."""

    def __init__(self, arcrelay, work, config, port):
        self.arcrelay = arcrelay
        self.config = config
        self.port = port
        self.log = os.path.join(work, "daemon.log")
        self.proc = None
        self.starts = 0

    def start(self, timeout=20, preexec=None, env=None):
        self.starts += 1
        with open(self.log, "ab") as fh:
            fh.write(b"=== test: start %d at %.3f\n" % (self.starts, time.time()))
        self.logpos = os.path.getsize(self.log)
        self.proc = subprocess.Popen([self.arcrelay, "serve", "--config", self.config],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
                                     preexec_fn=preexec, env=env)
        ok = wait_for(lambda: self.proc.poll() is not None or port_open(self.port), timeout, 0.05)
        if not ok or self.proc.poll() is not None:
            raise RuntimeError("arcrelay serve did not start (exit %r); its log ends:\n%s"
                               % (self.proc.poll(), self.tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def log_since_start(self):
        with open(self.log, "rb") as fh:
            fh.seek(self.logpos)
            return fh.read().decode("latin-1")

    def log_text(self):
        with open(self.log, "rb") as fh:
            return fh.read().decode("latin-1")

    def tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])

    def grep(self, pattern):
        return [ln for ln in self.log_text().splitlines() if re.search(pattern, ln)]

    def rss_kb(self, field="VmRSS"):
        try:
            with open("/proc/%d/status" % self.proc.pid) as fh:
                for ln in fh:
                    if ln.startswith(field + ":"):
                        return int(ln.split()[1])
        except OSError:
            return None
        return None
