#!/usr/bin/python3
"""run.py - delivery tests: deliver_run (relay/deliver.c with a real queue
and a libevent loop) against scriptable SMTP sinks on loopback ports.

usage: run.py DELIVER_RUN WORKDIR GROUP

Every group prints FAIL lines with got/want and ends with
"N passed, M failed"; the exit status is 1 when anything failed.
"""
import email
import email.policy
import email.utils
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sink import Sink  # noqa: E402

RUNNER, WORK, GROUP = sys.argv[1], sys.argv[2], sys.argv[3]
passed = failed = 0


def check(name, got, want):
    global passed, failed
    if got == want:
        passed += 1
    else:
        failed += 1
        print("FAIL %s: %s\n  got:  %r\n  want: %r" % (GROUP, name, got, want))


def truth(name, cond, detail=""):
    check(name + ((" (" + detail + ")") if detail and not cond else ""),
          bool(cond), True)


# ------------------------------------------------------------- plumbing

def fresh(name):
    d = os.path.join(WORK, GROUP, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def message(d, name, subject, body=b"hello\r\n", extra=b""):
    data = (b"From: Alice <alice@snd.test>\r\nTo: someone@dst.test\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Message-ID: <" + name.encode() + b"@snd.test>\r\n" + extra +
            b"\r\n" + body)
    p = os.path.join(d, name + ".eml")
    with open(p, "wb") as f:
        f.write(data)
    return p, data


FINAL = re.compile(r' (?:info) (\w+): to=<(.*?)> status=(sent|bounced|expired)'
                   r' relay=(\S+) delay=(\d+)s reply=(.*)$')
DEFER = re.compile(r' (?:info) (\w+): to=<(.*?)> status=deferred relay=(\S+)'
                   r' delay=(\d+)s reply=(.*) retry_in=')


class Run:
    def __init__(self, d, lines, timeout=60):
        plan = os.path.join(d, "plan")
        with open(plan, "w") as f:
            f.write("spool %s\n" % os.path.join(d, "spool"))
            f.write("\n".join(lines) + "\n")
        t0 = time.time()
        p = subprocess.run([RUNNER, plan], capture_output=True, timeout=timeout)
        self.secs = time.time() - t0
        self.rc = p.returncode
        check("runner exit status", self.rc, 0)
        self.out = p.stdout.decode()
        self.err = p.stderr.decode("latin-1")
        with open(os.path.join(d, "log"), "w") as f:
            f.write(self.err)
        self.ids = re.findall(r"^queued (\w+)$", self.out, re.M)
        m = re.search(r"^remaining (\d+)$", self.out, re.M)
        self.remaining = int(m.group(1)) if m else -1
        self.finals = [m.groups() for m in map(FINAL.search,
                       self.err.splitlines()) if m]
        self.defers = [m.groups() for m in map(DEFER.search,
                       self.err.splitlines()) if m]
        self.bounces = re.findall(r" (\w+): event=bounce bounce=(\w+) "
                                  r"to=<(.*?)>", self.err)

    def final(self, qid, addr):
        """statuses of every final line for (qid, addr)"""
        return [f[2] for f in self.finals if f[0] == qid and f[1] == addr]

    def final_line(self, qid, addr):
        for f in self.finals:
            if f[0] == qid and f[1] == addr:
                return f
        return None

    def lookups(self, kind):
        return re.findall(r"^lookup (\S+) %s$" % kind, self.err, re.M)


def one_final_each(r, pairs, label):
    """each (qid, addr) has exactly one final line"""
    for qid, addr in pairs:
        check("%s: one final line for %s" % (label, addr),
              len(r.final(qid, addr)), 1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def relay_one(s, name, subject, plan=()):
    """one message from alice to a@dst.test through sink s, started here
    and stopped after: the Run and the message's bytes"""
    port = s.start()
    d = fresh(name)
    p, data = message(d, "m1", subject)
    r = Run(d, BASE + list(plan) + ["target smtp:[127.0.0.1]:%d" % port,
                                    "start", "msg %s alice@snd.test "
                                    "a@dst.test" % p, "wait 20"])
    s.stop()
    return r, data


def flush_run(name, s, rcpt, before):
    """one message from alice to rcpt through sink s, its retry an hour
    away, flushed `before` seconds after it is handed over, run until
    nothing is queued and flushed again (counted once, then not at all):
    the Run and the message's bytes"""
    port = s.start()
    d = fresh(name.replace(" ", "-"))
    p, data = message(d, "m1", name)
    r = Run(d, BASE + ["retry 3600", "target smtp:[127.0.0.1]:%d" % port,
                       "start", "msgkept %s alice@snd.test %s" % (p, rcpt),
                       "sleep %s" % before, "flush", "wait 15", "flush"])
    s.stop()
    check(name + ": messages flushed, then none",
          re.findall(r"^flushed (\d+)$", r.out, re.M), ["1", "0"])
    return r, data


def zone_file(d, text):
    """a zone file in d holding text: its path"""
    z = os.path.join(d, "zone")
    with open(z, "w") as f:
        f.write(text)
    return z


def mx_one(s, name, zone_text, subject, sender, rcpts, config=(), run=(),
           wait=5):
    """one message from sender to rcpts, delivered by MX (zone_text, every
    host on sink s's port), s started here and stopped after: `config`
    lines go before the start, `run` lines after it. The Run, the
    message's bytes and the port"""
    port = s.start()
    d = fresh(name)
    zone = zone_file(d, zone_text)
    p, data = message(d, "m1", subject)
    r = Run(d, BASE + list(config) + ["zone " + zone, "mx_port %d" % port,
                                      "target mx", "start"] + list(run) +
            ["msg %s %s %s" % (p, sender, " ".join(rcpts)), "wait %d" % wait])
    s.stop()
    return r, data, port


def check_dsn(label, data, sender, rcpts, subject):
    """data must be an RFC 3464 report to sender about rcpts:
    {addr: (status_regex, diag_substring or None, expired)}."""
    m = email.message_from_bytes(data, policy=email.policy.compat32)
    check(label + ": content type", m.get_content_type(), "multipart/report")
    check(label + ": report-type", m.get_param("report-type"),
          "delivery-status")
    check(label + ": To", m["To"], "<%s>" % sender)
    truth(label + ": From is MAILER-DAEMON",
          "MAILER-DAEMON@relay.test" in (m["From"] or ""), m["From"])
    check(label + ": Auto-Submitted", m["Auto-Submitted"], "auto-replied")
    truth(label + ": Date parses",
          email.utils.parsedate_to_datetime(m["Date"]) is not None)
    truth(label + ": Message-ID", (m["Message-ID"] or "").startswith("<"))
    parts = m.get_payload() if m.is_multipart() else []
    check(label + ": part types", [p.get_content_type() for p in parts],
          ["text/plain", "message/delivery-status", "text/rfc822-headers"])
    if len(parts) != 3:
        return
    human = parts[0].get_payload(decode=True).decode("ascii", "replace")
    for a in rcpts:
        truth(label + ": human part names " + a, "<%s>" % a in human)
    blocks = parts[1].get_payload()
    check(label + ": per-recipient groups", len(blocks) - 1, len(rcpts))
    if not blocks:
        return
    pm = blocks[0]
    check(label + ": Reporting-MTA", pm["Reporting-MTA"], "dns; relay.test")
    truth(label + ": Arrival-Date parses",
          pm["Arrival-Date"] and
          email.utils.parsedate_to_datetime(pm["Arrival-Date"]) is not None)
    seen = {}
    for b in blocks[1:]:
        fr = (b["Final-Recipient"] or "")
        addr = fr.split(";", 1)[1].strip() if ";" in fr else fr
        seen[addr] = b
        truth(label + ": Final-Recipient type rfc822",
              fr.lower().startswith("rfc822;"), fr)
    check(label + ": recipients reported", sorted(seen), sorted(rcpts))
    for a, (status, diag, _exp) in rcpts.items():
        b = seen.get(a)
        if b is None:
            continue
        check(label + ": Action " + a, b["Action"], "failed")
        truth(label + ": Status " + a, re.fullmatch(status, b["Status"] or ""),
              "got %r want /%s/" % (b["Status"], status))
        truth(label + ": Status syntax " + a,
              re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", b["Status"] or ""))
        if diag:
            dc = re.sub(r"\r?\n[ \t]", " ", b["Diagnostic-Code"] or "")
            truth(label + ": Diagnostic-Code " + a, diag in dc,
                  "got %r want %r" % (dc, diag))
    hdrs = parts[2].get_payload()
    if isinstance(hdrs, list):
        hdrs = hdrs[0].as_string()
    truth(label + ": original headers returned",
          ("Subject: " + subject) in hdrs, hdrs[:200])
    truth(label + ": no body returned", "hello" not in hdrs)


def bounce_txns(sink, sender):
    return [t for c, t in sink.delivered()
            if t.sender == "" and t.rcpts == [sender]]


BASE = ["hostname relay.test", "retry 1", "lifetime 600",
        "connect_timeout 2", "command_timeout 3"]


# ---------------------------------------------------------------- groups

def g_maildir():
    d = fresh("md")
    box = os.path.join(d, "deep", "outbox")         # does not exist yet
    p1, d1 = message(d, "m1", "first")
    p2, d2 = message(d, "m2", "second", body=b".dot line\r\nbye\r\n")
    r = Run(d, BASE + ["target maildir:" + box, "start",
                       "msgkept %s alice@snd.test a@dst.test b@dst.test" % p1,
                       "msg %s <> c@dst.test" % p2, "wait 20"])
    check("runner exit", r.rc, 0)
    check("nothing left queued", r.remaining, 0)
    for sub in ("tmp", "new", "cur"):
        truth("maildir has " + sub, os.path.isdir(os.path.join(box, sub)))
    new = sorted(os.listdir(os.path.join(box, "new")))
    check("one file per message", len(new), 2)
    check("tmp/ left empty", os.listdir(os.path.join(box, "tmp")), [])
    for n in new:
        truth("unique name shape " + n,
              re.fullmatch(r"\d+\.M\d{6}P\d+Q\d+R[0-9a-f]{16}\.[^/:]+", n))
    got = sorted(open(os.path.join(box, "new", n), "rb").read() for n in new)
    check("bytes stored exactly", got, sorted([d1, d2]))
    if len(r.ids) == 2:
        one_final_each(r, [(r.ids[0], "a@dst.test"), (r.ids[0], "b@dst.test"),
                           (r.ids[1], "c@dst.test")], "maildir")
        f = r.final_line(r.ids[0], "a@dst.test")
        check("status sent", f and f[2], "sent")
        check("relay names the maildir", f and f[3], "maildir:" + box)
    check("no queue files left",
          [x for x in os.listdir(os.path.join(d, "spool", "queue"))], [])


def g_relayhost():
    s = Sink(pipelining=True)
    port = s.start()
    d = fresh("relay")
    body = (b".starts with a dot\r\nmiddle\r\n..two dots\r\n.\r\n"
            b"last line\r\n")
    p1, d1 = message(d, "m1", "stuffed", body=body)
    p2, d2 = message(d, "m2", "no final newline", body=b"no crlf at end")
    zone = os.path.join(d, "zone")
    with open(zone, "w") as f:
        f.write("relay-host.test. A 127.0.0.1\nrelay-host.test. MX 10 "
                "elsewhere.test.\n")
    r = Run(d, BASE + ["zone " + zone,
                       "target smtp:[127.0.0.1]:%d" % port,
                       "route named.test smtp:relay-host.test:%d" % port,
                       "start",
                       "msgkept %s alice@snd.test a@dst.test b@dst.test" % p1,
                       "msg %s alice@snd.test n@named.test" % p2,
                       "wait 20"])
    s.stop()
    check("runner exit", r.rc, 0)
    check("nothing left queued", r.remaining, 0)
    got = {tuple(t.rcpts): t for c, t in s.delivered()}
    t = got.get(("a@dst.test", "b@dst.test"))
    truth("message 1 delivered with both recipients", t is not None,
          repr(list(got)))
    if t:
        check("envelope sender", t.sender, "alice@snd.test")
        check("body byte-identical after un-stuffing", t.body, d1)
        truth("dot-stuffed on the wire",
              b"\r\n\r\n..starts" in t.raw and b"\r\n...two" in t.raw and
              b"\r\n..\r\n" in t.raw, repr(t.raw[:60]))
        truth("MAIL, RCPTs and DATA pipelined", t.pipelined, repr(t.chunks))
        truth("SIZE not sent when not offered", "SIZE=" not in t.params)
    t = got.get(("n@named.test",))
    truth("message 2 delivered through a named relayhost", t is not None)
    if t:
        check("a final CRLF is added", t.body, d2 + b"\r\n")
    check("EHLO name", sorted(set(e for c in s.conns for e in c.ehlo)),
          ["relay.test"])
    check("relayhost: no MX lookup", r.lookups("MX"), [])
    check("relayhost name: A lookup", r.lookups("A"), ["relay-host.test"])
    if len(r.ids) == 2:
        one_final_each(r, [(r.ids[0], "a@dst.test"), (r.ids[0], "b@dst.test"),
                           (r.ids[1], "n@named.test")], "relayhost")
        f = r.final_line(r.ids[0], "a@dst.test")
        check("relay", f and f[3], "127.0.0.1[127.0.0.1]:%d" % port)
        truth("reply logged", f and "250 2.0.0 queued as" in f[5])
        f = r.final_line(r.ids[1], "n@named.test")
        check("named relay", f and f[3],
              "relay-host.test[127.0.0.1]:%d" % port)


def g_esmtp():
    # No PIPELINING: one command at a time.
    s = Sink(pipelining=False)
    port = s.start()
    d = fresh("nopipe")
    p, data = message(d, "m1", "one at a time")
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port, "start",
                       "msg %s alice@snd.test a@dst.test perm-b@dst.test "
                       "c@dst.test" % p, "wait 20"])
    s.stop()
    check("no pipelining: delivered", [t.rcpts for c, t in s.delivered()
                                       if t.sender],
          [["a@dst.test", "c@dst.test"]])
    check("no pipelining: never ahead of a reply",
          [c.violation for c in s.conns], [False] * len(s.conns))
    check("no pipelining: not pipelined",
          [t.pipelined for c, t in s.txns()], [False, False])
    if r.ids:
        check("no pipelining: refused one bounced",
              r.final(r.ids[0], "perm-b@dst.test"), ["bounced"])

    # No EHLO: HELO instead.
    s = Sink(ehlo=False)
    port = s.start()
    d = fresh("helo")
    p, data = message(d, "m1", "helo only")
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port, "start",
                       "msg %s alice@snd.test a@dst.test" % p, "wait 20"])
    s.stop()
    check("HELO fallback: delivered", [t.rcpts for c, t in s.delivered()],
          [["a@dst.test"]])
    check("HELO fallback: HELO name", [c.helo for c in s.conns],
          [["relay.test"]])

    # SIZE: a message over the limit is never sent and bounces; one
    # under it is sent with SIZE=.
    s = Sink(size=2400)
    port = s.start()
    d = fresh("size")
    big, _ = message(d, "big", "too big", body=(b"y" * 78 + b"\r\n") * 60)
    small, sdata = message(d, "small", "fits")
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port,
                       "route snd.test smtp:[127.0.0.1]:%d" % port, "start",
                       "msg %s alice@snd.test a@dst.test" % big,
                       "msg %s alice@snd.test b@dst.test" % small,
                       "wait 20"])
    s.stop()
    check("SIZE: nothing over the limit on the wire",
          [t.rcpts for c, t in s.txns() if t.sender != ""], [["b@dst.test"]])
    sent = [t for c, t in s.delivered() if t.rcpts == ["b@dst.test"]]
    truth("SIZE: SIZE= given", sent and "SIZE=%d" % len(sdata) in
          sent[0].params, sent and sent[0].params)
    if len(r.ids) == 2:
        check("SIZE: big one bounced", r.final(r.ids[0], "a@dst.test"),
              ["bounced"])
        f = r.final_line(r.ids[0], "a@dst.test")
        truth("SIZE: reason names the limit", f and "limit of 2400" in f[5],
              f and f[5])
        check("SIZE: small one sent", r.final(r.ids[1], "b@dst.test"),
              ["sent"])
    b = bounce_txns(s, "alice@snd.test")
    check("SIZE: one bounce", len(b), 1)
    if b:
        check_dsn("SIZE dsn", b[0].body, "alice@snd.test",
                  {"a@dst.test": (r"5\.3\.4", "limit of 2400", False)},
                  "too big")
    check("SIZE: nothing left", r.remaining, 0)

    # MAIL FROM refused (pipelined): every recipient gets MAIL's reply,
    # not the 503s that follow it.
    s = Sink()
    port = s.start()
    d = fresh("mailfrom")
    p, _ = message(d, "m1", "sender refused")
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port, "start",
                       "msg %s mailperm@snd.test a@dst.test b@dst.test" % p,
                       "wait 20"])
    s.stop()
    if r.ids:
        for a in ("a@dst.test", "b@dst.test"):
            f = r.final_line(r.ids[0], a)
            check("MAIL refused: %s bounced" % a, f and f[2], "bounced")
            truth("MAIL refused: %s has the 553" % a,
                  f and f[5].startswith('"553 5.7.1'), f and f[5])
    b = bounce_txns(s, "mailperm@snd.test")
    check("MAIL refused: one bounce", len(b), 1)
    if b:
        check_dsn("MAIL refused dsn", b[0].body, "mailperm@snd.test",
                  {"a@dst.test": (r"5\.7\.1", "553 5.7.1", False),
                   "b@dst.test": (r"5\.7\.1", "553 5.7.1", False)},
                  "sender refused")


def g_retry():
    s = Sink()
    port = s.start()
    d = fresh("retry")
    p, data = message(d, "m1", "retry me")
    # The first attempt has the bytes handed over at the commit, the
    # retries read them back from the queue.
    r = Run(d, BASE + ["retry 1 1 2", "target smtp:[127.0.0.1]:%d" % port,
                       "start",
                       "msgkept %s alice@snd.test tmp1-a@dst.test "
                       "tmp2-b@dst.test" % p, "wait 30"])
    s.stop()
    check("nothing left queued", r.remaining, 0)
    got = sorted(a for c, t in s.delivered() for a in t.rcpts)
    check("each delivered exactly once", got,
          ["tmp1-a@dst.test", "tmp2-b@dst.test"])
    check("bodies intact", [t.body == data for c, t in s.delivered()],
          [True] * len(s.delivered()))
    check("RCPT tries seen", (s.tries.get("tmp1-a@dst.test"),
                              s.tries.get("tmp2-b@dst.test")), (2, 3))
    if r.ids:
        q = r.ids[0]
        one_final_each(r, [(q, "tmp1-a@dst.test"), (q, "tmp2-b@dst.test")],
                       "retry")
        check("final statuses", (r.final(q, "tmp1-a@dst.test"),
                                 r.final(q, "tmp2-b@dst.test")),
              (["sent"], ["sent"]))
        check("deferred lines", sorted(x[1] for x in r.defers),
              ["tmp1-a@dst.test", "tmp2-b@dst.test", "tmp2-b@dst.test"])
        truth("deferred reply is the 451",
              all("451 4.2.1" in x[4] for x in r.defers))
    check("no bounce", r.bounces, [])
    truth("retries took about 1+1 s", 1.5 < r.secs < 15, "%.1fs" % r.secs)

    # A flush: the retry is an hour away, deliver_flush makes it due now;
    # with nothing waiting it flushes nothing.
    s = Sink()
    r, data = flush_run("flush", s, "tmp1-f@dst.test", 1.5)
    check("flush: nothing left queued", r.remaining, 0)
    check("flush: RCPT tries (the 451, then the flushed retry)",
          s.tries.get("tmp1-f@dst.test"), 2)
    check("flush: delivered once, intact", [t.body == data for c, t in s.delivered()],
          [True])
    if r.ids:
        check("flush: final status", r.final(r.ids[0], "tmp1-f@dst.test"), ["sent"])
    truth("flush: delivered at once, not an hour later", r.secs < 8, "%.1fs" % r.secs)

    # A flush while the message's attempt is in flight (the sink holds
    # the end of data for 2 s): that attempt is the only one, no second
    # starts beside it or after it, and the message is delivered once.
    s = Sink(slow_dot=2)
    r, data = flush_run("flush in flight", s, "a-f@dst.test", 0.8)
    check("flush in flight: one connection, one transaction",
          (len(s.conns), len(s.txns())), (1, 1))
    check("flush in flight: delivered once, intact",
          [t.body == data for c, t in s.delivered()], [True])
    check("flush in flight: no deferral", [x[4] for x in r.defers], [])
    if r.ids:
        check("flush in flight: one final line, sent",
              r.final(r.ids[0], "a-f@dst.test"), ["sent"])
    check("flush in flight: nothing left queued", r.remaining, 0)


def g_bounce():
    s = Sink()
    port = s.start()
    d = fresh("bounce")
    p1, _ = message(d, "m1", "refused for good")
    p2, _ = message(d, "m2", "null sender")
    p3, _ = message(d, "m3", "already a bounce")
    p4, _ = message(d, "m4", "refused after data")
    # a list member's copy: the sender is a local (list bounce) address
    p5, _ = message(d, "m5", "to a list member")
    p6, _ = message(d, "m6", "kept on the second try")
    lb5, lb6 = "l-bounces+perm-e=dst.test@lists.test", "l-bounces@lists.test"
    r = Run(d, BASE + ["sign", "target smtp:[127.0.0.1]:%d" % port,
                       "route snd.test smtp:[127.0.0.1]:%d" % port,
                       "local %s kept" % lb5, "local %s failonce" % lb6, "start",
                       "msg %s alice@snd.test perm-a@dst.test" % p1,
                       "msg %s <> perm-b@dst.test" % p2,
                       "bounce", "msg %s carol@snd.test perm-c@dst.test" % p3,
                       "msg %s dave@snd.test dperm-d@dst.test" % p4,
                       "msg %s %s perm-e@dst.test" % (p5, lb5),
                       "msg %s %s perm-f@dst.test" % (p6, lb6),
                       "wait 20"])
    s.stop()
    check("runner exit", r.rc, 0)
    check("nothing left queued", r.remaining, 0)
    if len(r.ids) < 6:
        check("queued", len(r.ids), 6)
        return
    for q, a in [(r.ids[0], "perm-a@dst.test"), (r.ids[1], "perm-b@dst.test"),
                 (r.ids[2], "perm-c@dst.test"),
                 (r.ids[3], "dperm-d@dst.test"), (r.ids[4], "perm-e@dst.test"),
                 (r.ids[5], "perm-f@dst.test")]:
        check("bounced once: " + a, r.final(q, a), ["bounced"])
    queued = [x for x in r.bounces if x[1] != "local"]
    check("bounces queued for alice and dave only",
          sorted((x[0], x[2]) for x in queued),
          sorted([(r.ids[0], "alice@snd.test"), (r.ids[3], "dave@snd.test")]))
    # local_bounce: taken, never queued nor sent; refused once: pending,
    # then taken at the next attempt
    taken = re.findall(r"^local (\w+) (\S+) \d+ (\w+)$", r.out, re.M)
    check("bounces to local addresses handed to local_bounce, as DSNs",
          sorted(taken), sorted([(r.ids[4], lb5, "dsn"), (r.ids[5], lb6, "dsn")]))
    check("and logged as bounce=local",
          sorted((x[0], x[2].strip('"')) for x in r.bounces if x[1] == "local"),
          sorted([(r.ids[4], lb5), (r.ids[5], lb6)]))
    truth("a refusal by local_bounce leaves the recipient pending",
          re.search(r" %s: to=<perm-f@dst.test> status=deferred .*"
                    r"note=\"bounce not queued\"" % r.ids[5], r.err) and
          re.search(r" %s: event=bounce status=failed reason=\"test: cannot "
                    r"keep it now\"" % r.ids[5], r.err))
    truth("nothing sent to a local bounce address",
          not [t for c, t in s.delivered() if t.rcpts in ([lb5], [lb6])])
    b = bounce_txns(s, "alice@snd.test")
    check("bounce delivered to the sender with MAIL FROM:<>", len(b), 1)
    if b:
        check_dsn("5xx dsn", b[0].body, "alice@snd.test",
                  {"perm-a@dst.test": (r"5\.1\.1",
                                       "smtp; 550 5.1.1 <perm-a@dst.test>",
                                       False)},
                  "refused for good")
        truth("bounce went through the signer",
              b[0].body.startswith(b"X-Test-Signed: yes\r\n"))
    b = bounce_txns(s, "dave@snd.test")
    check("DATA-phase refusal bounced", len(b), 1)
    if b:
        check_dsn("data dsn", b[0].body, "dave@snd.test",
                  {"dperm-d@dst.test": (r"5\.6\.0", "554 5.6.0", False)},
                  "refused after data")
    check("no bounce for the null sender or for a bounce",
          sorted(t.rcpts for c, t in s.delivered() if t.sender == ""),
          [["alice@snd.test"], ["dave@snd.test"]])
    for q, a in [(x[1], x[2]) for x in queued]:
        check("bounce %s sent once" % q, r.final(q, a), ["sent"])


def g_expiry():
    # A mailbox that stays full (452): expires after the lifetime.
    s = Sink()
    port = s.start()
    d = fresh("full")
    p, _ = message(d, "m1", "never fits")
    r = Run(d, BASE + ["lifetime 3", "target smtp:[127.0.0.1]:%d" % port,
                       "route snd.test smtp:[127.0.0.1]:%d" % port, "start",
                       "msg %s alice@snd.test full-a@dst.test ok@dst.test" % p,
                       "wait 30"])
    check("nothing left queued", r.remaining, 0)
    if r.ids:
        q = r.ids[0]
        check("expired once", r.final(q, "full-a@dst.test"), ["expired"])
        check("the other one sent", r.final(q, "ok@dst.test"), ["sent"])
        f = r.final_line(q, "full-a@dst.test")
        truth("expired after the lifetime", f and 3 <= int(f[4]) <= 6,
              f and f[4])
        truth("deferred before expiring", len([x for x in r.defers
              if x[1] == "full-a@dst.test"]) >= 2, repr(r.defers))
    b = bounce_txns(s, "alice@snd.test")
    check("one expiry bounce", len(b), 1)
    if b:
        check_dsn("expiry dsn", b[0].body, "alice@snd.test",
                  {"full-a@dst.test": (r"4\.4\.7", "smtp; 452 4.2.2", True)},
                  "never fits")
        truth("human part says time ran out",
              b"time allowed for delivery ran out" in
              re.sub(rb"\s+", b" ", b[0].body))
    s.stop()

    # Nobody listening, message already older than the lifetime: the
    # first failure expires it, with our own diagnostic.
    s = Sink()
    port = s.start()
    dead = free_port()
    d = fresh("refused")
    p, _ = message(d, "m1", "nobody home")
    r = Run(d, BASE + ["lifetime 5", "target smtp:[127.0.0.1]:%d" % dead,
                       "route snd.test smtp:[127.0.0.1]:%d" % port, "start",
                       "ago 10", "msg %s alice@snd.test a@dst.test" % p,
                       "wait 20"])
    s.stop()
    check("refused: nothing left", r.remaining, 0)
    if r.ids:
        check("refused: expired", r.final(r.ids[0], "a@dst.test"),
              ["expired"])
        f = r.final_line(r.ids[0], "a@dst.test")
        truth("refused: reason is the connect error",
              f and "connect to 127.0.0.1[127.0.0.1]:%d" % dead in f[5],
              f and f[5])
    b = bounce_txns(s, "alice@snd.test")
    check("refused: one bounce", len(b), 1)
    if b:
        check_dsn("refused dsn", b[0].body, "alice@snd.test",
                  {"a@dst.test": (r"4\.4\.7", "X-Arcrelay; connect to",
                                  True)}, "nobody home")


def g_mixed():
    s = Sink()
    port = s.start()
    d = fresh("mixed")
    box = os.path.join(d, "box")
    p, data = message(d, "m1", "mixed bag")
    rc = ["ok1@dst.test", "perm1@dst.test", "tmp1-z@dst.test", "ok2@dst.test",
          "perm2@dst.test", "m@md.test"]
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port,
                       "route snd.test smtp:[127.0.0.1]:%d" % port,
                       "route md.test maildir:" + box, "start",
                       "msg %s alice@snd.test %s" % (p, " ".join(rc)),
                       "wait 30"])
    s.stop()
    check("nothing left queued", r.remaining, 0)
    if not r.ids:
        return
    q = r.ids[0]
    one_final_each(r, [(q, a) for a in rc], "mixed")
    check("statuses", [r.final(q, a) for a in rc],
          [["sent"], ["bounced"], ["sent"], ["sent"], ["bounced"], ["sent"]])
    got = [t.rcpts for c, t in s.delivered() if t.sender != ""]
    check("first attempt carried the accepted ones",
          got[:1], [["ok1@dst.test", "ok2@dst.test"]])
    check("retry carried the deferred one", got[1:], [["tmp1-z@dst.test"]])
    check("maildir got one copy", len(os.listdir(os.path.join(box, "new"))),
          1)
    b = bounce_txns(s, "alice@snd.test")
    check("one bounce for both refusals", len(b), 1)
    if b:
        check_dsn("mixed dsn", b[0].body, "alice@snd.test",
                  {"perm1@dst.test": (r"5\.1\.1", "550 5.1.1", False),
                   "perm2@dst.test": (r"5\.1\.1", "550 5.1.1", False)},
                  "mixed bag")


def g_reuse():
    s = Sink()
    port = s.start()
    d = fresh("reuse")
    p1, _ = message(d, "m1", "first")
    p2, _ = message(d, "m2", "second")
    p3, _ = message(d, "m3", "third")
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port, "start",
                       "msg %s alice@snd.test a@dst.test" % p1, "wait 10",
                       "msg %s alice@snd.test b@dst.test" % p2, "wait 10",
                       "msg %s alice@snd.test c@dst.test" % p3, "wait 10",
                       "sleep 7"])
    check("three delivered", len(s.delivered()), 3)
    check("one connection for all three", len(s.conns), 1)
    check("idle connection closed with QUIT", [c.quit for c in s.conns],
          [True])
    s.stop()

    # Many at once: at most 4 connections, each carrying several.
    s = Sink()
    port = s.start()
    d = fresh("burst")
    lines = []
    for k in range(12):
        p, _ = message(d, "b%d" % k, "burst %d" % k)
        lines.append("msg %s alice@snd.test r%d@dst.test" % (p, k))
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port, "start"] +
            lines + ["wait 20"])
    s.stop()
    check("burst: all delivered", len(s.delivered()), 12)
    truth("burst: at most 4 connections", 1 <= len(s.conns) <= 4,
          str(len(s.conns)))
    truth("burst: connections reused",
          max(len(c.txns) for c in s.conns) >= 2,
          str([len(c.txns) for c in s.conns]))
    # A server that hangs up on idle clients: the next message gets a
    # new connection and goes through without a deferral.
    s2 = Sink(drop_idle=0.3)
    port2 = s2.start()
    d = fresh("dropped")
    p1, _ = message(d, "m1", "first")
    p2, _ = message(d, "m2", "second")
    r2 = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port2, "start",
                        "msg %s alice@snd.test a@dst.test" % p1, "wait 10",
                        "sleep 1",
                        "msg %s alice@snd.test b@dst.test" % p2, "wait 10"])
    s2.stop()
    check("dropped: both delivered", len(s2.delivered()), 2)
    check("dropped: two connections", len(s2.conns), 2)
    check("dropped: no deferral", r2.defers, [])
    check("burst: each recipient one final line",
          sorted(len(r.final(q, "r%d@dst.test" % k))
                 for k, q in enumerate(r.ids)), [1] * 12)

    # A 421 to a command on a reused connection: the server is closing it
    # (RFC 5321 3.8). Whether it hangs up or leaves the socket open and
    # says nothing more, the connection is given up at once and the
    # message goes again on a new one: no timeout (command_timeout is
    # 10 s here), no deferral, delivered once. A 421 to the RSET that
    # follows a refused transaction leaves its results as they are, and
    # the next message gets a new connection.
    for step in ("MAIL", "RCPT", "DATA", "DOT", "RSET"):
        for how, text in (("hangs up", "421 4.3.2 closing down"),
                          ("stays open", "hold:421 4.3.2 closing down")):
            label = "421 to %s on a reused connection, server %s" % (step,
                                                                     how)
            s = Sink(script={step: text}, script_conns={1},
                     script_from_mail=2)
            port = s.start()
            d = fresh("r421-%s-%s" % (step.lower(), how.split()[0]))
            p1, _ = message(d, "m1", "first")
            p2, _ = message(d, "m2", "second")
            p3, _ = message(d, "m3", "third")
            m2 = ("<> perm-b@dst.test" if step == "RSET" else
                  "alice@snd.test b@dst.test")
            r = Run(d, BASE + ["command_timeout 10",
                               "target smtp:[127.0.0.1]:%d" % port, "start",
                               "msg %s alice@snd.test a@dst.test" % p1,
                               "wait 15", "msg %s %s" % (p2, m2), "wait 15",
                               "msg %s alice@snd.test c@dst.test" % p3,
                               "wait 15"])
            s.stop()
            got = [t.rcpts for c, t in s.delivered()]
            want = ([["a@dst.test"], ["c@dst.test"]] if step == "RSET" else
                    [["a@dst.test"], ["b@dst.test"], ["c@dst.test"]])
            check(label + ": each delivered once", got, want)
            check(label + ": no deferral", [x[1] for x in r.defers], [])
            truth(label + ": no timeout waited for", r.secs < 8,
                  "%.1fs" % r.secs)
            check(label + ": the closed connection not used again",
                  [len(c.txns) for c in s.conns][:1],
                  [2 if step == "DOT" else 1])
            check(label + ": nothing left", r.remaining, 0)
            if len(r.ids) == 3:
                b = "perm-b@dst.test" if step == "RSET" else "b@dst.test"
                check(label + ": final status", r.final(r.ids[1], b),
                      ["bounced" if step == "RSET" else "sent"])


def g_mx():
    s = Sink()
    rc = ["a@mx.test", "b@amx.test", "c@nullmx.test", "d@nx.test",
          "e@noaddr.test", "f@temp.test"]
    r, _, port = mx_one(s, "mx", """
mx.test.        MX 20 mx2.mx.test.
mx.test.        MX 10 mx1.mx.test.
mx1.mx.test.    A 127.0.0.2
mx2.mx.test.    A 127.0.0.1
amx.test.       A 127.0.0.1
nullmx.test.    MX 0 .
noaddr.test.    MX 10 ghost.noaddr.test.
temp.test.      SERVFAIL
snd.test.       MX 5 mx2.mx.test.
""", "by mx", "alice@snd.test", rc, config=["lifetime 2"], wait=30)
    check("nothing left queued", r.remaining, 0)
    if not r.ids:
        return
    q = r.ids[0]
    one_final_each(r, [(q, a) for a in rc], "mx")
    check("statuses", [r.final(q, a) for a in rc],
          [["sent"], ["sent"], ["bounced"], ["bounced"], ["bounced"],
           ["expired"]])
    f = r.final_line(q, "a@mx.test")
    check("MX by preference, past a dead first one", f and f[3],
          "mx2.mx.test[127.0.0.1]:%d" % port)
    f = r.final_line(q, "b@amx.test")
    check("A fallback without MX", f and f[3], "amx.test[127.0.0.1]:%d" % port)
    f = r.final_line(q, "c@nullmx.test")
    truth("null MX", f and "null MX" in f[5], f and f[5])
    f = r.final_line(q, "d@nx.test")
    truth("no such domain", f and "does not exist" in f[5], f and f[5])
    truth("mx1 tried first", "mx1.mx.test" in r.lookups("A"))
    # The refusals are reported at once, the expiry later: two reports.
    b = bounce_txns(s, "alice@snd.test")
    check("two bounces", len(b), 2)
    if len(b) == 2:
        check_dsn("mx dsn", b[0].body, "alice@snd.test",
                  {"c@nullmx.test": (r"5\.1\.10", "null MX", False),
                   "d@nx.test": (r"5\.1\.2", "does not exist", False),
                   "e@noaddr.test": (r"5\.4\.4", "no address", False)},
                  "by mx")
        check_dsn("mx expiry dsn", b[1].body, "alice@snd.test",
                  {"f@temp.test": (r"4\.4\.7", "MX lookup", True)},
                  "by mx")


def cert(d):
    c, k = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", k, "-out", c, "-days", "2",
                    "-subj", "/CN=sink.test"], check=True,
                   capture_output=True)
    return c, k


def g_tls():
    d = fresh("tls")
    c, k = cert(d)
    s = Sink(starttls=(c, k))
    port = s.start()
    p, data = message(d, "m1", "secret")
    p2, _ = message(d, "m2", "secret too")
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port, "start",
                       "msg %s alice@snd.test a@dst.test b@dst.test" % p,
                       "wait 10",
                       "msg %s alice@snd.test c@dst.test" % p2, "wait 10"])
    s.stop()
    check("delivered", [t.rcpts for cn, t in s.delivered()],
          [["a@dst.test", "b@dst.test"], ["c@dst.test"]])
    check("inside TLS (self-signed, not verified)",
          [cn.tls for cn in s.conns], [True])
    check("EHLO again after STARTTLS", [len(cn.ehlo) for cn in s.conns], [2])
    check("body intact", s.delivered()[0][1].body if s.delivered() else None,
          data)
    truth("pipelined inside TLS", s.delivered() and
          s.delivered()[0][1].pipelined)
    truth("connected line says tls=yes", "tls=yes" in r.err)

    # A server whose TLS is broken: delivered in plaintext instead.
    s = Sink(starttls=(c, k), tls_broken=True)
    port = s.start()
    d = fresh("badtls")
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port, "start",
                       "msg %s alice@snd.test a@dst.test" % p, "wait 15"])
    s.stop()
    check("broken TLS: delivered anyway",
          [t.rcpts for cn, t in s.delivered()], [["a@dst.test"]])
    check("broken TLS: second connection in plaintext",
          [cn.tls for cn in s.conns][-1:], [False])
    truth("broken TLS: fallback logged", re.search(
        r"event=tls_fallback relay=\S+ reason=\"TLS handshake with", r.err),
          r.err[-1500:])
    check("broken TLS: nothing left", r.remaining, 0)


def g_timeout():
    # A server that never greets, and one that never answers the data.
    quiet = Sink(silent=True)
    qport = quiet.start()
    hang = Sink(hang_data=True)
    hport = hang.start()
    s = Sink()
    port = s.start()
    d = fresh("timeout")
    p, _ = message(d, "m1", "slow")
    # lifetime: the end of data has 2 s (twice command_timeout)
    r = Run(d, BASE + ["lifetime 4", "command_timeout 1",
                       "route quiet.test smtp:[127.0.0.1]:%d" % qport,
                       "route hang.test smtp:[127.0.0.1]:%d" % hport,
                       "route snd.test smtp:[127.0.0.1]:%d" % port, "start",
                       "msg %s alice@snd.test a@quiet.test b@hang.test" % p,
                       "wait 30"])
    for x in (quiet, hang, s):
        x.stop()
    check("nothing left queued", r.remaining, 0)
    if not r.ids:
        return
    q = r.ids[0]
    check("statuses", [r.final(q, "a@quiet.test"), r.final(q, "b@hang.test")],
          [["expired"], ["expired"]])
    truth("greeting timeout reported", any(
        "waiting for the greeting" in x[4] for x in r.defers), r.err[-2000:])
    truth("end of data timeout reported", any(
        "waiting for end of data" in x[4] for x in r.defers))
    check("one bounce", len(bounce_txns(s, "alice@snd.test")), 1)


def g_load():
    s = Sink()
    port = s.start()
    d = fresh("load")
    p1, _ = message(d, "m1", "queued before start")
    p2, _ = message(d, "m2", "also queued")
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port, "start",
                       "commit %s alice@snd.test a@dst.test" % p1,
                       "commit %s alice@snd.test b@dst.test" % p2,
                       "load", "wait 20"])
    check("loaded both", re.findall(r"^loaded (\d+)", r.out, re.M), ["2"])
    check("delivered both", sorted(a for c, t in s.delivered()
                                   for a in t.rcpts),
          ["a@dst.test", "b@dst.test"])
    check("nothing left", r.remaining, 0)

    # Stopped: no new attempts; the message stays queued for the next run.
    d = fresh("stopped")
    p3, _ = message(d, "m3", "after stop")
    n = len(s.delivered())
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port, "start", "stop",
                       "msg %s alice@snd.test c@dst.test" % p3, "sleep 2"])
    check("stopped: not attempted", len(s.delivered()), n)
    check("stopped: still queued", r.remaining, 1)
    truth("stopped: idle", "idle 1" in r.out)
    # The next start picks it up.
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port, "start", "load",
                       "wait 20"])
    s.stop()
    check("restart: loaded", re.findall(r"^loaded (\d+)", r.out, re.M), ["1"])
    check("restart: delivered", [t.rcpts for c, t in s.delivered()][n:],
          [["c@dst.test"]])


def g_resolver():
    """The default path: dns_lookup_async through libunbound, against
    Debian's unbound serving local data on a loopback port. (Not under
    test.: libunbound answers that special-use zone itself.)"""
    d = fresh("resolver")
    sport = free_port()
    conf = os.path.join(d, "unbound.conf")
    with open(conf, "w") as f:
        f.write("""server:
\tinterface: 127.0.0.1
\tport: %d
\tdo-daemonize: no
\tchroot: ""
\tusername: ""
\tdirectory: "%s"
\tpidfile: "%s/unbound.pid"
\tuse-syslog: no
\tlogfile: "%s/unbound.log"
\taccess-control: 127.0.0.0/8 allow
\tdo-ip6: no
\tmodule-config: "iterator"
\tlocal-zone: "example.com." static
\tlocal-zone: "example.org." static
\tlocal-data: "dns.example.com. 300 IN MX 10 mail.example.com."
\tlocal-data: "mail.example.com. 300 IN A 127.0.0.1"
\tlocal-data: "nullmx.example.com. 300 IN MX 0 ."
\tlocal-data: "example.org. 300 IN MX 10 mail.example.com."
remote-control:
\tcontrol-enable: no
""" % (sport, d, d, d))
    ub = subprocess.Popen(["/usr/sbin/unbound", "-d", "-c", conf],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if "start of service" in open(os.path.join(
                        d, "unbound.log")).read():
                    break
            except OSError:
                pass
            time.sleep(0.05)
        s = Sink()
        port = s.start()
        p, _ = message(d, "m1", "resolved")
        r = Run(d, BASE + ["resolver 127.0.0.1@%d" % sport,
                           "mx_port %d" % port, "target mx", "start",
                           "msg %s alice@example.org a@dns.example.com "
                           "b@nullmx.example.com c@nothing.example.com" % p, "wait 20"])
        s.stop()
    finally:
        ub.terminate()
        ub.wait()
    check("nothing left queued", r.remaining, 0)
    if not r.ids:
        return
    q = r.ids[0]
    check("statuses", [r.final(q, a) for a in ("a@dns.example.com",
                                               "b@nullmx.example.com",
                                               "c@nothing.example.com")],
          [["sent"], ["bounced"], ["bounced"]])
    f = r.final_line(q, "a@dns.example.com")
    check("delivered by MX", f and f[3],
          "mail.example.com[127.0.0.1]:%d" % port)
    f = r.final_line(q, "b@nullmx.example.com")
    truth("null MX through the resolver", f and "null MX" in f[5],
          f and f[5])
    check("bounce via MX too", len(bounce_txns(s, "alice@example.org")), 1)


def bare_ends(raw):
    """positions of a CR without LF or an LF without CR in raw"""
    return [i for i, c in enumerate(raw)
            if (c == 0x0d and raw[i + 1:i + 2] != b"\n") or
            (c == 0x0a and (i == 0 or raw[i - 1] != 0x0d))]


def g_wire():
    # What goes on the wire for queued bytes of any shape: every line
    # that starts with "." is stuffed (the very first one too), a lone
    # CR or LF becomes CRLF (RFC 5321 2.3.8), the end gets its CRLF.
    s = Sink()
    port = s.start()
    d = fresh("wire")
    shapes = [
        ("dotfirst", b".first line is a dot\r\n\r\nbody\r\n",
         b".first line is a dot\r\n\r\nbody\r\n"),
        ("onlydot", b"Subject: x\r\n\r\n.\r\n", b"Subject: x\r\n\r\n.\r\n"),
        ("barelf", b"Subject: lf\r\n\r\nline1\nline2\r\n.\nend\n",
         b"Subject: lf\r\n\r\nline1\r\nline2\r\n.\r\nend\r\n"),
        ("barecr", b"Subject: cr\r\n\r\nline3\rline4\r.after cr\r",
         b"Subject: cr\r\n\r\nline3\r\nline4\r\n.after cr\r\n"),
        ("nocrlf", b"Subject: n\r\n\r\n.tail", b"Subject: n\r\n\r\n.tail\r\n"),
    ]
    lines = []
    for k, (name, data, _want) in enumerate(shapes):
        p = os.path.join(d, name + ".eml")
        with open(p, "wb") as f:
            f.write(data)
        lines.append("msg %s alice@snd.test %s@dst.test" % (p, name))
    r = Run(d, BASE + ["target smtp:[127.0.0.1]:%d" % port, "start"] +
            lines + ["wait 20"])
    s.stop()
    got = {t.rcpts[0].split("@")[0]: t for c, t in s.delivered()}
    for name, data, want in shapes:
        t = got.get(name)
        truth(name + ": delivered", t is not None, repr(sorted(got)))
        if t is None:
            continue
        check(name + ": no lone CR or LF on the wire", bare_ends(t.raw), [])
        check(name + ": body after un-stuffing", t.body, want)
        starts = [l for l in t.raw.split(b"\r\n") if l.startswith(b".")]
        check(name + ": every dot line stuffed",
              [l for l in starts if not l.startswith(b"..")], [])
    check("nothing left", r.remaining, 0)

    # An end of data answered after longer than one command timeout
    # (RFC 5321 4.5.3.2.6 gives it twice as long): one delivery, no
    # deferral, so no duplicate.
    s = Sink(slow_dot=1.5)
    r, _ = relay_one(s, "slowdot", "slow to accept", ["command_timeout 1"])
    check("slow end of data: delivered once", len(s.delivered()), 1)
    check("slow end of data: no deferral", [x[4] for x in r.defers], [])
    if r.ids:
        check("slow end of data: sent", r.final(r.ids[0], "a@dst.test"),
              ["sent"])


STEPS = ["GREET", "EHLO", "MAIL", "RCPT", "DATA", "DOT"]


def g_replies():
    # Replies in many pieces, multiline at every step, over 512 octets:
    # all fine, first time.
    long_text = "x" * 1000
    s = Sink(split=True, script={
        "GREET": "220-sink.test first\n220-second line\n220 third",
        "MAIL": "250-2.1.0 sender\n250 2.1.0 ok " + long_text,
        "RCPT": "250-2.1.5 one\n250-2.1.5 two\n250 2.1.5 ok",
        "DATA": "354-go\n354 ahead"})
    r, data = relay_one(s, "split", "in pieces")
    check("split: delivered once", [t.rcpts for c, t in s.delivered()],
          [["a@dst.test"]])
    check("split: no deferral", [x[4] for x in r.defers], [])
    check("split: body intact", [t.body for c, t in s.delivered()], [data])
    truth("split: still pipelined", s.delivered() and
          s.delivered()[0][1].pipelined)

    # Trouble at each step on the first connection: every recipient is
    # deferred (never bounced, never taken as sent) and delivered once by
    # the retry. A 421 from a server that then leaves the socket open
    # ends the connection at once too, without a timeout.
    troubles = [
        ("421", "421 4.3.2 closing down"),
        ("421open", "hold:421 4.3.2 closing down"),
        ("drop", "drop"),
        ("garbage", "raw:this is not smtp\r\n"),
        ("toolong", "raw:250 " + "y" * 3000 + "\r\n"),
        ("badcode", "raw:600 what is this\r\n"),
        ("codechange", "250-2.0.0 one\n451 4.0.0 two"),
    ]
    for kind, text in troubles:
        sinks, lines = [], []
        for step in STEPS:
            if step == "GREET" and kind == "codechange":
                text_ = "220-one\n250 two"
            elif step == "DATA" and kind == "codechange":
                text_ = "354-one\n250 two"
            else:
                text_ = text
            sk = Sink(script={step: text_}, script_conns={1})
            sinks.append(sk)
            lines.append("route %s.test smtp:[127.0.0.1]:%d" %
                         (step.lower(), sk.start()))
        d = fresh(kind)
        p, data = message(d, "m1", "trouble " + kind)
        rc = ["a@%s.test" % st.lower() for st in STEPS]
        slow = ["command_timeout 10"] if kind == "421open" else []
        r = Run(d, BASE + ["retry 1"] + slow + lines + ["start",
                "msg %s alice@snd.test %s" % (p, " ".join(rc)), "wait 30"])
        for sk in sinks:
            sk.stop()
        if slow:
            truth(kind + ": no timeout waited for", r.secs < 8,
                  "%.1fs" % r.secs)
        if not r.ids:
            check(kind + ": queued", len(r.ids), 1)
            continue
        q = r.ids[0]
        for step, sk, a in zip(STEPS, sinks, rc):
            label = "%s at %s" % (kind, step)
            check(label + ": one deferral", len([x for x in r.defers
                                                  if x[1] == a]), 1)
            check(label + ": then sent", r.final(q, a), ["sent"])
            check(label + ": delivered once",
                  [t.rcpts for c, t in sk.delivered()], [[a]])
        check(kind + ": no bounce", r.bounces, [])
        check(kind + ": nothing left", r.remaining, 0)

    # A refused EHLO whose text looks like extensions: HELO, and none of
    # them believed.
    s = Sink(pipelining=False,
             script={"EHLO": "502-5.5.2 no\n502-SIZE 10\n502-PIPELINING\n"
                             "502 5.5.2 no EHLO here"})
    relay_one(s, "ehloext", "helo after a chatty refusal")
    check("chatty EHLO refusal: delivered over HELO",
          [t.rcpts for c, t in s.delivered()], [["a@dst.test"]])
    check("chatty EHLO refusal: no SIZE=",
          [t.params for c, t in s.txns()], [""])
    check("chatty EHLO refusal: not pipelined",
          [c.violation for c in s.conns], [False])


def g_mxself():
    s = Sink()
    many = "".join("many.test. MX 20 x%d.many.test.\nx%d.many.test. A "
                   "127.0.0.2\n" % (k, k) for k in range(12))
    rc = ["a@self.test", "b@peer.test", "c@sec.test", "d@many.test"]
    r, _, port = mx_one(s, "mxself", """
self.test.      MX 10 relay.test.
self.test.      MX 20 backup.self.test.
backup.self.test. A 127.0.0.1
peer.test.      MX 10 peer.peer.test.
peer.test.      MX 10 relay.test.
peer.peer.test. A 127.0.0.1
sec.test.       MX 20 worse.sec.test.
sec.test.       MX 10 RELAY.TEST.
sec.test.       MX 5 best.sec.test.
worse.sec.test. A 127.0.0.1
best.sec.test.  A 127.0.0.1
""" + many + """many.test. MX 10 top.many.test.
top.many.test.  A 127.0.0.1
snd.test.       MX 5 backup.self.test.
""", "where to", "alice@snd.test", rc, wait=20)
    if not r.ids:
        check("queued", len(r.ids), 1)
        return
    q = r.ids[0]
    check("statuses", [r.final(q, a) for a in rc],
          [["bounced"], ["bounced"], ["sent"], ["sent"]])
    check("nothing sent to a host less preferred than this relay",
          sorted(a for c, t in s.delivered() if t.sender for a in t.rcpts),
          ["c@sec.test", "d@many.test"])
    for a in rc[:2]:
        f = r.final_line(q, a)
        truth(a + ": says it loops", f and "loops back" in f[5], f and f[5])
    f = r.final_line(q, "c@sec.test")
    check("the MX preferred to this relay", f and f[3],
          "best.sec.test[127.0.0.1]:%d" % port)
    f = r.final_line(q, "d@many.test")
    check("the best MX of many", f and f[3],
          "top.many.test[127.0.0.1]:%d" % port)

    # An MX whose address is one of the relay's own listening addresses
    # (deliver_self) is this relay under another name: the list is cut
    # there as for its hostname, the domain's own address (implicit MX)
    # included. 127.0.0.2 listens nowhere: the one host kept before the
    # cut in mid.test is down, so m@ is deferred, not handed to the
    # equally preferred peer or the worse one.
    s = Sink()
    rc = ["a@addr.test", "s@six.test", "m@mid.test", "i@implicit.test",
          "o@other.test"]
    r, _, port = mx_one(s, "selfaddr", """
addr.test.      MX 10 alias.addr.test.
addr.test.      MX 20 backup.addr.test.
alias.addr.test. A 127.0.0.9
backup.addr.test. A 127.0.0.1
six.test.       MX 10 alias.six.test.
six.test.       MX 20 backup.addr.test.
alias.six.test. AAAA 2001:db8::9
mid.test.       MX 5 best.mid.test.
mid.test.       MX 10 alias.addr.test.
mid.test.       MX 10 peer.mid.test.
mid.test.       MX 20 backup.addr.test.
best.mid.test.  A 127.0.0.2
peer.mid.test.  A 127.0.0.1
implicit.test.  A 127.0.0.9
other.test.     MX 10 backup.addr.test.
""", "to myself by address", "<>", rc, run=["self 127.0.0.9 2001:db8::9"])
    if r.ids:
        q = r.ids[0]
        check("self by address: statuses", [r.final(q, a) for a in rc],
              [["bounced"], ["bounced"], [], ["bounced"], ["sent"]])
        for a in ("a@addr.test", "s@six.test", "i@implicit.test"):
            f = r.final_line(q, a)
            truth("self by address: %s says it loops" % a,
                  f and "loops back" in f[5], f and f[5])
        truth("self by address: m@mid.test deferred",
              "m@mid.test" in [x[1] for x in r.defers if x[0] == q])
    check("self by address: only other.test reached the sink",
          [t.rcpts for c, t in s.delivered()], [["o@other.test"]])

    # A wildcard listen address stands for the machine's interface
    # addresses of its family: 0.0.0.0 takes in 127.0.0.1, :: does not.
    for wild, want in (("0.0.0.0", "bounced"), ("::", "sent")):
        r, _, _ = mx_one(Sink(), "wild" + wild.replace(":", "6").replace(
            ".", ""), "w.test. MX 10 mx.w.test.\nmx.w.test. A 127.0.0.1\n",
            "wildcard", "<>", ["a@w.test"], run=["self " + wild], wait=10)
        if r.ids:
            check("listening on %s: 127.0.0.1 as MX" % wild,
                  r.final(r.ids[0], "a@w.test"), [want])

    # A 5xx greeting from a backup MX while the primary is down: deferred,
    # not bounced. Every MX greeting with 554: that is permanent.
    r, _, _ = mx_one(Sink(greet="554 5.3.2 no service for you"), "greet554",
                     """
down.test.      MX 10 primary.down.test.
down.test.      MX 20 backup.down.test.
primary.down.test. A 127.0.0.2
backup.down.test. A 127.0.0.1
grumpy.test.    MX 10 backup.down.test.
""", "grumpy backup", "<>", ["a@down.test", "b@grumpy.test"])
    if r.ids:
        q = r.ids[0]
        truth("554 greeting behind a dead primary: deferred",
              [x[1] for x in r.defers if x[0] == q][:1] == ["a@down.test"])
        check("554 greeting behind a dead primary: not final",
              r.final(q, "a@down.test"), [])
        check("554 greeting from every MX: bounced",
              r.final(q, "b@grumpy.test"), ["bounced"])


def g_eightbit():
    # Two servers on one port: new.two.test offers 8BITMIME, old.two.test
    # (preferred) does not; none.test has only the old one; temp.test has
    # a dead primary before it.
    new = Sink()
    port = new.start()
    old = Sink(eightbitmime=False, host="127.0.0.3", port=port)
    old.start()
    zone_text = """
two.test.       MX 10 old.two.test.
two.test.       MX 20 new.two.test.
old.two.test.   A 127.0.0.3
new.two.test.   A 127.0.0.1
none.test.      MX 10 old.two.test.
temp.test.      MX 10 dead.temp.test.
temp.test.      MX 20 old.two.test.
dead.temp.test. A 127.0.0.4
snd.test.       MX 10 new.two.test.
"""
    body8 = b"caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e\r\n"

    # eightbit = bounce: 8-bit mail passes over servers without 8BITMIME
    # for the next MX, fails with 5.6.3 when no MX offers it, and is
    # deferred when the one that might is down. 7-bit mail is not
    # affected.
    d = fresh("bounce")
    zone = zone_file(d, zone_text)
    p8, data8 = message(d, "m8", "eight bits", body=body8)
    p7, data7 = message(d, "m7", "seven bits")
    r = Run(d, BASE + ["zone " + zone, "mx_port %d" % port, "target mx",
                       "eightbit bounce", "start",
                       "msg %s alice@snd.test a@two.test n@none.test "
                       "t@temp.test" % p8,
                       "msg %s alice@snd.test b@two.test o@none.test" % p7,
                       "wait 6"])
    if len(r.ids) == 2:
        q8, q7 = r.ids
        check("bounce: 8-bit statuses", [r.final(q8, a) for a in
                                         ("a@two.test", "n@none.test",
                                          "t@temp.test")],
              [["sent"], ["bounced"], []])
        f = r.final_line(q8, "a@two.test")
        check("bounce: 8-bit mail to the MX offering 8BITMIME", f and f[3],
              "new.two.test[127.0.0.1]:%d" % port)
        f = r.final_line(q8, "n@none.test")
        truth("bounce: the reason names 8-bit data",
              f and "does not accept 8-bit data" in f[5], f and f[5])
        truth("bounce: t@temp.test deferred (its primary may offer it)",
              "t@temp.test" in [x[1] for x in r.defers if x[0] == q8])
        check("bounce: 7-bit statuses", [r.final(q7, a) for a in
                                         ("b@two.test", "o@none.test")],
              [["sent"], ["sent"]])
        f = r.final_line(q7, "b@two.test")
        check("bounce: 7-bit mail to the preferred MX", f and f[3],
              "old.two.test[127.0.0.3]:%d" % port)
    check("bounce: the server without 8BITMIME got no 8-bit mail",
          sorted(a for c, t in old.txns() for a in t.rcpts),
          ["b@two.test", "o@none.test"])
    got = [t for c, t in new.delivered() if t.rcpts == ["a@two.test"]]
    check("bounce: 8-bit mail delivered unchanged, with BODY=8BITMIME",
          [(t.body == data8, "BODY=8BITMIME" in t.params) for t in got],
          [(True, True)])
    b = bounce_txns(new, "alice@snd.test")
    check("bounce: one report", len(b), 1)
    if b:
        check_dsn("8bit dsn", b[0].body, "alice@snd.test",
                  {"n@none.test": (r"5\.6\.3", "does not accept 8-bit data",
                                   False)}, "eight bits")

    # eightbit = send (the default): 8-bit mail goes to the preferred MX
    # as it is, without BODY=8BITMIME, since it does not offer it.
    d = fresh("send")
    zone = zone_file(d, zone_text)
    n_old = len(old.delivered())
    p8, data8 = message(d, "m8", "eight bits", body=body8)
    r = Run(d, BASE + ["zone " + zone, "mx_port %d" % port, "target mx",
                       "start", "msg %s alice@snd.test a@two.test "
                       "n@none.test" % p8, "wait 10"])
    got = old.delivered()[n_old:]
    check("send: 8-bit mail to the server without 8BITMIME",
          sorted(a for c, t in got for a in t.rcpts),
          ["a@two.test", "n@none.test"])
    check("send: unchanged, without BODY=",
          [(t.body == data8, "BODY=" in t.params) for c, t in got],
          [(True, False)] * len(got))
    if r.ids:
        check("send: statuses", [r.final(r.ids[0], a) for a in
                                 ("a@two.test", "n@none.test")],
              [["sent"], ["sent"]])
    check("send: no bounce", r.bounces, [])
    old.stop()
    new.stop()


GROUPS = {
    "resolver": g_resolver,
    "maildir": g_maildir, "relayhost": g_relayhost, "esmtp": g_esmtp,
    "retry": g_retry, "bounce": g_bounce, "expiry": g_expiry,
    "mixed": g_mixed, "reuse": g_reuse, "mx": g_mx, "tls": g_tls,
    "timeout": g_timeout, "load": g_load, "wire": g_wire,
    "replies": g_replies, "mxself": g_mxself, "eightbit": g_eightbit,
}

if __name__ == "__main__":
    os.makedirs(WORK, exist_ok=True)
    try:
        GROUPS[GROUP]()
    except Exception as e:                  # a crash is a failure, not a hang
        import traceback
        traceback.print_exc()
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
