#!/usr/bin/python3
"""e2e.py - the daemon end to end (run through e2e.sh; see README.md).

    e2e.py ARCRELAY WORKDIR [--harness-only]

WORKDIR is wiped.  First the harness checks itself without the daemon: the
test DNS answers through unbound, the sink keeps exactly the bytes smtplib
and swaks send, and the checkers pass a message relayed by hand (arcrelay
sign + seal) and fail tampered copies.  Then, when ARCRELAY has a `serve`
command, the daemon is started on a loopback port and driven: the corpus,
the relay refusals, a downstream that defers, one that refuses (bounce),
SIGHUP and SIGTERM.  Every check prints PASS or FAIL (with what was sent,
what arrived and what the daemon logged); the last line is
"N passed, M failed".  Exit 0 when nothing failed.
"""

import email
import email.policy
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import dkim

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlib as D  # noqa: E402

T = D.Tally()


def qid_of(reply):
    m = re.search(r"queued as ([A-Za-z0-9._-]+)", reply or "")
    return m.group(1) if m else None


# ---- sending the corpus ---------------------------------------------------------

def send_corpus(work, port, items, sub):
    """Send every item; returns {name: reply}."""
    os.makedirs(os.path.join(work, sub), exist_ok=True)
    replies = {}
    for it in items:
        path = os.path.join(work, sub, it["name"] + ".eml")
        with open(path, "wb") as fh:
            fh.write(it["data"])
        if it["via"] == "swaks":
            # swaks ends the data with one CRLF of its own; give it the
            # message without its last one so the bytes on the wire are ours.
            sw = path + ".swaks"
            with open(sw, "wb") as fh:
                fh.write(it["data"][:-2] if it["data"].endswith(b"\r\n") else it["data"])
            r = D.send_swaks(port, it, sw, path + ".swaks.log")
        else:
            r = D.send_smtplib(port, it)
        replies[it["name"]] = r
    return replies


def by_mid(msgs):
    out = {}
    for env, data in msgs:
        mid = D.message_ids(data)
        out.setdefault(mid, []).append((env, data))
    return out


def wait_mids(sinkdir, mids, timeout):
    def done():
        have = by_mid(D.sink_messages(sinkdir))
        return all(m in have for m in mids)
    D.wait_for(done, timeout)
    return by_mid(D.sink_messages(sinkdir))


def rcpts_delivered(copies):
    out = []
    for env, _ in copies:
        out += env["rcpt"]
    return sorted(out)


# ---- stage 1: the harness on its own ------------------------------------------

def harness(arcrelay, work, zone, ub):
    # DNS: both keys as the daemon will fetch them, through unbound.
    for dom, sel in ((D.RELAY_DOMAIN, D.RELAY_SELECTOR), (D.SENDER_DOMAIN, D.SENDER_SELECTOR)):
        p = subprocess.run([arcrelay, "testkey", "--domain", dom, "--selector", sel, "--key",
                            os.path.join(work, "keys", sel + ".private"),
                            "--resolver", "127.0.0.1@%d" % ub.port], capture_output=True)
        out = (p.stdout + p.stderr).decode("latin-1").strip()
        T.check("harness: the %s key through unbound (arcrelay testkey)" % dom,
                p.returncode == 0 and out.endswith("ok: rsa key, 2048 bits"), out)

    # The sink keeps what it is sent, byte for byte, from smtplib and swaks.
    sink = D.SinkProc(work, "direct")
    try:
        items = harness_sink(work, sink)
    finally:
        sink.stop()
    harness_checkers(arcrelay, work, zone, items)


def harness_sink(work, sink):
    items = D.corpus(work, "direct")
    replies = send_corpus(work, sink.port, items, "direct-sent")
    got = wait_mids(sink.dir, [i["message_id"] for i in items], 10)
    for it in items:
        copies = got.get(it["message_id"], [])
        ok = (replies[it["name"]].startswith("250") and len(copies) == 1 and
              copies[0][1] == it["data"] and copies[0][0]["mail_from"] == it["mail_from"] and
              sorted(copies[0][0]["rcpt"]) == sorted(it["rcpt"]))
        T.check("harness: the sink kept %s (%s) byte for byte" % (it["name"], it["via"]), ok,
                "reply %r, %d copies%s" % (replies[it["name"]], len(copies),
                                           "" if not copies else ", sizes %d/%d" % (
                                               len(copies[0][1]), len(it["data"]))))
    # The sink's answers on request.
    sink.set_rules({"tempfail": {"later@example.net": 1}, "reject": ["never@example.net"]})
    c = D.Client(sink.port)
    c.cmd("EHLO t")
    c.cmd("MAIL FROM:<a@sender.example>")
    r1 = c.cmd("RCPT TO:<later@example.net>")
    r2 = c.cmd("RCPT TO:<LATER@example.net>")
    r3 = c.cmd("RCPT TO:<never@example.net>")
    c.close()
    T.check("harness: the sink defers, then accepts, and refuses on request",
            r1[0] == 451 and r2[0] == 250 and r3[0] == 550, "%r %r %r" % (r1, r2, r3))
    return items


def harness_checkers(arcrelay, work, zone, items):

    # The checkers: a message relayed by hand passes, tampered ones fail.
    key = os.path.join(work, "keys", D.RELAY_SELECTOR + ".private")

    def by_hand(data):
        rec = (b"Received: from client.sender.example (127.0.0.1)\r\n\tby " +
               D.HOSTNAME.encode() + b" (by hand); Mon, 02 Sep 2024 10:00:01 +0000\r\n")
        signed = subprocess.run([arcrelay, "sign", "--domain", D.RELAY_DOMAIN, "--selector",
                                 D.RELAY_SELECTOR, "--key", key, "-"], input=rec + data,
                                capture_output=True).stdout
        return subprocess.run([arcrelay, "seal", "--domain", D.RELAY_DOMAIN, "--selector",
                               D.RELAY_SELECTOR, "--key", key, "--authserv-id", D.AUTHSERV_ID,
                               "--dns-file", os.path.join(work, "zone.txt"), "-"], input=signed,
                              capture_output=True).stdout
    it = items[0]
    # `arcrelay seal` knows no envelope: its AAR's spf and dmarc are not judged.
    want = {"dkim": "pass", "spf": "any", "dmarc": "any"}
    sealed = by_hand(it["data"])
    bad_body = sealed[:-10] + b"X" + sealed[-9:]
    i = sealed.find(b"\r\nSubject: ") + 11
    bad_head = sealed[:i] + b"X" + sealed[i:]
    extra = b"X-Added: by someone\r\n" + sealed
    fa = [x for x in items if x["name"] == "forged-ar-middle"][0]
    cases = [("by hand", sealed, it["data"], True), ("body changed", bad_body, it["data"], False),
             ("Subject changed", bad_head, it["data"], False),
             ("a field added on top", extra, it["data"], False),
             ("by hand, forged A-R cut out", by_hand(fa["expect"]), fa["expect"], True),
             ("forged A-R left in", by_hand(fa["data"]), fa["expect"], False)]
    files = []
    for n, (label, data, expect, _) in enumerate(cases):
        f = os.path.join(work, "selfcheck-%d.eml" % n)
        with open(f, "wb") as fh:
            fh.write(data)
        files.append(f)
    md = D.run_mdkim(work, files)
    for (label, data, expect, good), f in zip(cases, files):
        probs = D.check_relayed(data, expect, zone, want)
        mp = D.mdkim_problems(md[f], True)
        if good:
            T.check("harness: checkers pass a message relayed %s" % label, not probs and not mp,
                    "\n".join(probs + mp))
        else:
            T.check("harness: dkimpy checks catch: %s" % label, bool(probs), "no problem found")
            if label not in ("a field added on top", "forged A-R left in"):   # not covered
                T.check("harness: Mail::DKIM catches: %s" % label, bool(mp), "no problem found")


# ---- stage 2: the daemon ------------------------------------------------------------

def want_of(it):
    return {"dkim": it["expect_dkim"], "spf": it["expect_spf"], "dmarc": it["expect_dmarc"]}


def explain(dm, qid, extra=""):
    lines = dm.grep(re.escape(qid)) if qid else []
    return "%sdaemon log for %s:\n  %s" % (extra, qid, "\n  ".join(lines[-12:]) or "(nothing)")


def corpus_stage(work, dm, sink, zone):
    items = D.corpus(work, "relay")
    replies = send_corpus(work, dm.port, items, "sent")
    for it in items:
        r = replies[it["name"]]
        T.check("relay accepts %s (%s): 250" % (it["name"], it["via"]), r.startswith("250"),
                "reply: %s\n%s" % (r, dm.tail(8)))
    got = wait_mids(sink.dir, [i["message_id"] for i in items], 60)
    files = [c[0]["file"] for it in items for c in got.get(it["message_id"], [])]
    md = D.run_mdkim(work, files) if files else {}
    for it in items:
        qid = qid_of(replies[it["name"]])
        copies = got.get(it["message_id"], [])
        rc = rcpts_delivered(copies)
        if not T.check("%s delivered once to each recipient" % it["name"],
                       rc == sorted(it["rcpt"]),
                       "want %r, the sink got %r\n%s" % (it["rcpt"], rc, explain(dm, qid))):
            if not copies:
                continue
        env, data = copies[0]
        T.check("%s: envelope sender kept" % it["name"], env["mail_from"] == it["mail_from"],
                "sink got MAIL FROM:<%s>, sent <%s>" % (env["mail_from"], it["mail_from"]))
        probs = D.check_relayed(data, it["expect"], zone, want_of(it))
        T.check("%s: original bytes kept, our fields, our DKIM and ARC i=1 pass, AAR (dkimpy)"
                % it["name"], not probs,
                "\n".join(probs) + "\ndelivered: %s\n%s" % (env["file"], explain(dm, qid)))
        mp = D.mdkim_problems(md.get(env["file"], {"error": "not checked"}),
                              it["expect_dkim"] == "pass")
        T.check("%s: Mail::DKIM DKIM and ARC pass" % it["name"], not mp,
                "\n".join(mp) + "\ndelivered: %s" % env["file"])
        if it["name"].startswith("forged-ar"):
            head = data[:data.find(b"\r\n\r\n")]
            forged = [ln for ln in re.findall(rb"(?im)^authentication-results:.*(?:\r\n[ \t].*)*", head)
                      if re.match(rb"(?i)authentication-results:\s*" + re.escape(D.AUTHSERV_ID.encode())
                                  + rb"\s*;", ln)]
            T.check("%s: forged Authentication-Results removed" % it["name"], not forged,
                    "still there: %r" % forged)
        if qid:
            lines = [ln for ln in dm.grep(re.escape(qid)) if "dmarc=" in ln]
            wantline = "dkim=%s" % it["expect_dkim"]
            T.check("%s: the daemon logs its results (%s, spf=pass, dmarc=pass)"
                    % (it["name"], wantline),
                    any(wantline in ln and "spf=pass" in ln and "dmarc=pass" in ln for ln in lines),
                    "\n".join(lines) or "no result line for %s" % qid)
    return items


def session(port, helo="client.sender.example"):
    c = D.Client(port)
    c.cmd("EHLO " + helo)
    return c


def plain_message(tag, to="bob@example.net", frm=D.SENDER, body=b"hello\r\n"):
    mid = "<%s.%d@%s>" % (tag, int(time.time() * 1000), D.SENDER_DOMAIN)
    return mid, D.head(mid, tag, to=to, frm=frm) + b"\r\n" + body


def relay_tricks(work, dm, sink):
    refused = ["bob@example.org", "bob@notexample.net", "bob@sub.example.net",
               "bob@example.net.evil.example", "user%other.example@example.net",
               '"user@other.example"@example.net', "@example.net:user@other.example",
               "@a.example,@example.net:user@other.example", "user!other.example@example.net",
               "bob@example.net.", "bob@[127.0.0.1]"]
    for rcpt in refused:
        c = session(dm.port)
        m = c.cmd("MAIL FROM:<%s>" % D.SENDER)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        d = c.cmd("DATA")
        if d[0] == 354:            # must not happen; do not leave it hanging
            c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
            d = (d, c.reply())
        c.close()
        T.check("refused: RCPT TO:<%s> gets 550 5.7.1" % rcpt,
                r[1].startswith("550 5.7.1") and m[0] == 250,
                "MAIL: %s\nRCPT: %s\nDATA: %s" % (m[1], r[1], d))
    # Not an address at all: a syntax error is as good as a relay refusal.
    for rcpt in ("bob@example.net@other.example", "bob@example.net>@other.example"):
        c = session(dm.port)
        c.cmd("MAIL FROM:<%s>" % D.SENDER)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        c.close()
        T.check("refused: RCPT TO:<%s> gets a 5xx" % rcpt, 500 <= r[0] < 600, "RCPT: %s" % r[1])
    accepted = []
    for rcpt in ("bob@EXAMPLE.NET", "Bob@Example.Net"):
        c = session(dm.port)
        c.cmd("MAIL FROM:<%s>" % D.SENDER)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        mid, msg = plain_message("case", to=rcpt)
        fin = c.data(msg)[1] if r[0] == 250 else None
        c.close()
        T.check("accepted: RCPT TO:<%s> (domain case does not matter)" % rcpt,
                r[0] == 250 and fin and fin[0] == 250, "RCPT: %s\nDATA: %s" % (r[1], fin))
        accepted.append((mid, rcpt))
    # A good and a bad recipient: only the good one is delivered.
    c = session(dm.port)
    c.cmd("MAIL FROM:<%s>" % D.SENDER)
    r1 = c.cmd("RCPT TO:<dave@example.net>")
    r2 = c.cmd("RCPT TO:<dave@example.org>")
    mid, msg = plain_message("mixed", to="dave@example.net")
    fin = c.data(msg)[1]
    c.close()
    T.check("mixed recipients: the outside one refused, the message accepted",
            r1[0] == 250 and r2[1].startswith("550 5.7.1") and fin and fin[0] == 250,
            "%s / %s / %s" % (r1[1], r2[1], fin))
    accepted.append((mid, "dave@example.net"))
    got = wait_mids(sink.dir, [m for m, _ in accepted], 30)
    for mid, rcpt in accepted:
        rc = rcpts_delivered(got.get(mid, []))
        T.check("delivered to <%s> only" % rcpt, rc == [rcpt], "the sink got %r for %s" % (rc, mid))


def sent_at_sink(sink, mid):
    return [c for c in by_mid(D.sink_messages(sink.dir)).get(mid, [])]


def downstream_stage(work, dm, sink, zone):
    sink.set_rules({"tempfail": {"later@example.net": 2}, "reject": ["never@example.net"]})
    # 4xx twice, then 250.
    c = session(dm.port)
    c.cmd("MAIL FROM:<%s>" % D.SENDER)
    c.cmd("RCPT TO:<later@example.net>")
    mid, msg = plain_message("later", to="later@example.net")
    t_sent = time.time()
    fin = c.data(msg)[1]
    c.close()
    qid = qid_of(fin[1] if fin else "")
    T.check("deferred downstream: accepted", fin and fin[0] == 250, fin)
    got = D.wait_for(lambda: sent_at_sink(sink, mid), 40)
    time.sleep(4)   # a second copy would come within the retry schedule
    got = sent_at_sink(sink, mid)
    att = sink.stats()["rcpt_attempts"].get("later@example.net", 0)
    T.check("deferred downstream: delivered exactly once, after the two 451s",
            len(got) == 1 and att == 3,
            "copies %d, RCPT attempts %d (want 3)\n%s" % (len(got), att, explain(dm, qid)))
    if got:
        delay = got[0][0]["time_end"] - t_sent
        T.check("deferred downstream: delivered later (retry 1s then 2s: %.1fs after)" % delay,
                delay >= 2.5, explain(dm, qid))

    # 5xx: a bounce to the envelope sender, none for the null sender.
    c = session(dm.port)
    c.cmd("MAIL FROM:<%s>" % D.SENDER)
    c.cmd("RCPT TO:<never@example.net>")
    mid, msg = plain_message("never", to="never@example.net")
    fin = c.data(msg)[1]
    c.close()
    qid = qid_of(fin[1] if fin else "")
    T.check("refusing downstream: accepted", fin and fin[0] == 250, fin)

    def bounce():
        for env, data in D.sink_messages(sink.dir):
            if env["mail_from"] == "" and mid.encode() in data:
                return env, data
        return None
    b = D.wait_for(bounce, 30)
    if not T.check("refusing downstream: a bounce reaches <%s> from <>" % D.SENDER,
                   b is not None and b[0]["rcpt"] == [D.SENDER],
                   "%s\nthe sink holds: %r" % (explain(dm, qid), [
                       (e["mail_from"], e["rcpt"], e.get("message_id"))
                       for e, _ in D.sink_messages(sink.dir)][-5:])):
        return
    env, data = b
    T.check("refusing downstream: the message itself was not delivered",
            not [e for e, d in sent_at_sink(sink, mid) if e["mail_from"] != ""], "")
    probs = check_dsn(data, "never@example.net", mid)
    T.check("bounce is an RFC 3464 multipart/report (delivery-status, Final-Recipient, "
            "Action: failed, Status: 5.x.x, the original's header)", not probs,
            "\n".join(probs) + "\nbounce: %s" % env["file"])
    try:
        lg = logging.getLogger("bounce-dkim")
        lg.propagate = False
        signed = dkim.DKIM(data, logger=lg).verify(dnsfunc=zone.dnsfunc())
        d_tag = b"d=" + D.RELAY_DOMAIN.encode() in data.split(b"\r\n\r\n", 1)[0]
    except Exception as e:
        signed, d_tag = False, str(e)
    T.check("the bounce carries the relay's DKIM signature, and it verifies (dkimpy)",
            signed and d_tag is True, "verify=%s d=%s" % (signed, d_tag))
    att = sink.stats()["rcpt_attempts"].get("never@example.net", 0)
    T.check("refusing downstream: tried once, not retried", att == 1, "RCPT attempts: %d" % att)

    # Null sender: refused downstream, no bounce.
    n_before = len(D.sink_messages(sink.dir))
    c = session(dm.port)
    c.cmd("MAIL FROM:<>")
    r = c.cmd("RCPT TO:<never@example.net>")
    mid2, msg = plain_message("never-null", to="never@example.net", frm="mailer-daemon@sender.example")
    fin = c.data(msg)[1] if r[0] == 250 else r
    c.close()
    T.check("null sender to a refusing downstream: accepted", fin and fin[0] == 250, fin)
    D.wait_for(lambda: sink.stats()["rcpt_attempts"].get("never@example.net", 0) >= 2, 20)
    time.sleep(3)
    new = D.sink_messages(sink.dir)[n_before:]
    T.check("null sender refused downstream: no bounce", not new,
            "the sink got: %r" % [(e["mail_from"], e["rcpt"], e.get("message_id")) for e, _ in new])


def spool_tree(spool):
    """spool_tree - every name under spool with its size and mtime."""
    out = []
    for top, dirs, files in os.walk(spool):
        for n in sorted(dirs + files):
            st = os.lstat(os.path.join(top, n))
            out.append((os.path.relpath(os.path.join(top, n), spool), st.st_size,
                        st.st_mtime_ns))
    return sorted(out)


def queue_cmd(arcrelay, *args):
    p = subprocess.run([arcrelay, "queue"] + list(args), capture_output=True)
    return p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1")


def queue_stage(work, arcrelay, sink, ub):
    """`arcrelay queue` and --flush against a second daemon whose retry is an
    hour away: a message the sink defers stays queued, shows with its reply,
    and only the flush delivers it."""
    spool = os.path.join(work, "spool-q")
    port = D.free_port()
    config = D.write_config(work, port, sink.port, ub.port, name="arcrelay-q.conf",
                            retry="1h", spool=spool)
    pidfile = os.path.join(spool, "arcrelay.pid")
    rcpt = "held@example.net"
    sink.set_rules({"tempfail": {rcpt: 1000}})
    dm = D.Daemon(arcrelay, work, config, port)
    dm.log = os.path.join(work, "daemon-q.log")
    dm.start()
    try:
        pid = open(pidfile).read().strip() if os.path.exists(pidfile) else None
        T.check("queue: the daemon writes its pid file (SPOOL/arcrelay.pid)",
                pid == str(dm.proc.pid), "pid file holds %r, daemon is %d" % (pid, dm.proc.pid))
        rc, out, err = queue_cmd(arcrelay, "--config", config)
        T.check("queue: an empty queue says so", (rc, out) == (0, "queue is empty\n"),
                "exit %d\n%s%s" % (rc, out, err))

        c = session(dm.port)
        c.cmd("MAIL FROM:<%s>" % D.SENDER)
        c.cmd("RCPT TO:<%s>" % rcpt)
        mid, msg = plain_message("held", to=rcpt)
        fin = c.data(msg)[1]
        c.close()
        qid = qid_of(fin[1] if fin else "")
        T.check("queue: the held message is accepted", fin and fin[0] == 250, fin)
        D.wait_for(lambda: dm.grep(r"to=<%s> status=deferred" % re.escape(rcpt)), 20)
        T.check("queue: the sink's 451 defers it", bool(dm.grep(r"status=deferred")),
                explain(dm, qid))

        before = spool_tree(spool)
        rc, out, err = queue_cmd(arcrelay, "--config", config)
        rcj, outj, errj = queue_cmd(arcrelay, "--spool", spool, "--json")
        after = spool_tree(spool)
        T.check("queue: listing changes nothing in the spool of a running daemon",
                before == after, "before %r\nafter %r" % (before, after))
        head = out.splitlines()[0] if out else ""
        T.check("queue: the text listing shows the message, its sender and the reply",
                rc == 0 and qid is not None and head.startswith(qid + " size=") and
                "from=<%s>" % D.SENDER in head and
                re.search(r"\n  to=<%s> state=pending attempts=1 next=in (1h00m|59m[0-5][0-9]s) "
                          r"\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)\n" % re.escape(rcpt), out) and
                "reply: 451 4.2.0 <%s>: sink told to defer" % rcpt in out and
                re.search(r"\n\n1 message, 1 recipient pending, [1-9][0-9]* KB\n\Z", out),
                "exit %d\n%s%s" % (rc, out, err))
        try:
            j = json.loads(outj)
        except ValueError as e:
            j = {"error": str(e)}
        msgs = j.get("messages", [])
        r = msgs[0]["recipients"][0] if len(msgs) == 1 and msgs[0].get("recipients") else {}
        T.check("queue --json parses: one message, pending, attempts 1, the 451, retry an hour away",
                rcj == 0 and len(msgs) == 1 and msgs[0]["id"] == qid and msgs[0]["sender"] == D.SENDER and
                r.get("address") == rcpt and r.get("state") == "pending" and
                r.get("attempts") == 1 and (r.get("last_reply") or "").startswith("451 4.2.0") and
                3000 < r.get("next_retry_in", 0) <= 3600 and
                j.get("total") == {"messages": 1, "recipients_pending": 1,
                                   "bytes": msgs[0]["size"]},
                "exit %d\n%s%s" % (rcj, outj, errj))

        sink.set_rules({})
        n_flush = len(dm.grep(r"event=flush"))
        t0 = time.time()
        rc, out, err = queue_cmd(arcrelay, "--flush", "--config", config)
        T.check("queue --flush: signals the daemon of the pid file",
                rc == 0 and out == "asked arcrelay serve (pid %d) to flush its queue\n"
                % dm.proc.pid, "exit %d\n%s%s" % (rc, out, err))
        got = D.wait_for(lambda: sent_at_sink(sink, mid), 10)
        T.check("queue --flush: delivered at once (%.1fs), not at the retry an hour away"
                % (time.time() - t0), bool(got), explain(dm, qid))
        lines = dm.grep(r"event=flush")[n_flush:]
        T.check("queue --flush: the daemon logs event=flush messages=1",
                any(re.search(r"event=flush messages=1$", ln) for ln in lines), repr(lines))
        D.wait_for(lambda: queue_cmd(arcrelay, "--config", config)[1] == "queue is empty\n", 10)
        rc, out, err = queue_cmd(arcrelay, "--config", config)
        T.check("queue: empty after the flush", (rc, out) == (0, "queue is empty\n"),
                "exit %d\n%s%s" % (rc, out, err))

        dm.signal(signal.SIGTERM)
        rc = dm.wait(35)
        T.check("queue: SIGTERM exits 0 and removes the pid file",
                rc == 0 and not os.path.exists(pidfile),
                "exit %r, pid file %s" % (rc, "left" if os.path.exists(pidfile) else "gone"))
        # A stale pid file names a process that is gone, or one that is not
        # the daemon: reported, never signalled.
        for stale, what in ((str(dm.proc.pid), "is gone"),
                            (str(os.getpid()), "is not arcrelay serve")):
            with open(pidfile, "w") as fh:
                fh.write(stale + "\n")
            rc, out, err = queue_cmd(arcrelay, "--flush", "--config", config)
            T.check("queue --flush: a stale pid file (process %s) is reported, exit 2" % what,
                    rc == 2 and out == "" and "stale pid file" in err and what in err and
                    err.count("\n") == 1, "exit %d\n%s%s" % (rc, out, err))
        os.unlink(pidfile)
        odd = [ln for ln in dm.log_text().splitlines()
               if re.search(r"(?i)assert|sanitizer|segfault|double free|corrupt", ln)]
        T.check("queue: the second daemon's log shows no crash or corruption", not odd,
                "\n".join(odd[:10]))
    finally:
        dm.kill()


def check_dsn(data, rcpt, mid):
    probs = []
    m = email.message_from_bytes(data, policy=email.policy.compat32)
    if m.get_content_type() != "multipart/report":
        return ["Content-Type is %s" % m.get_content_type()]
    if (m.get_param("report-type") or "").lower() != "delivery-status":
        probs.append("report-type=%r" % m.get_param("report-type"))
    parts = m.get_payload()
    if not isinstance(parts, list) or len(parts) < 2:
        return probs + ["%r parts" % (len(parts) if isinstance(parts, list) else parts)]
    types = [p.get_content_type() for p in parts]
    if types[0] != "text/plain":
        probs.append("first part is %s, want text/plain (human readable)" % types[0])
    if types[1] != "message/delivery-status":
        probs.append("second part is %s, want message/delivery-status" % types[1])
    else:
        ds = parts[1].get_payload()
        text = ds if isinstance(ds, str) else "\n".join(p.as_string() for p in ds)
        if not re.search(r"(?im)^Reporting-MTA:\s*dns;", text):
            probs.append("no Reporting-MTA: dns;...")
        if not re.search(r"(?im)^Final-Recipient:\s*rfc822;\s*<?" + re.escape(rcpt), text):
            probs.append("no Final-Recipient: rfc822;%s" % rcpt)
        if not re.search(r"(?im)^Action:\s*failed", text):
            probs.append("no Action: failed")
        if not re.search(r"(?im)^Status:\s*5\.\d{1,3}\.\d{1,3}", text):
            probs.append("no Status: 5.x.x")
        if not re.search(r"(?im)^Diagnostic-Code:\s*smtp;\s*550", text):
            probs.append("no Diagnostic-Code: smtp; 550 ... (the downstream's reply)")
    if len(types) > 2:
        if types[2] not in ("message/rfc822", "text/rfc822-headers", "message/global",
                            "message/global-headers"):
            probs.append("third part is %s" % types[2])
        elif mid not in parts[2].as_string():
            probs.append("third part does not hold the original's Message-ID")
    else:
        probs.append("no third part with the original (header)")
    if not m.get("From") or not m.get("Date") or not m.get("Message-ID"):
        probs.append("bounce lacks From/Date/Message-ID")
    return probs


def sighup_stage(work, dm, sink, config):
    pid = dm.proc.pid
    a = session(dm.port)
    a.cmd("MAIL FROM:<%s>" % D.SENDER)
    ra = a.cmd("RCPT TO:<erin@example.net>")
    before = D.Client(dm.port)
    before.cmd("EHLO x")
    r0 = before.cmd("MAIL FROM:<%s>" % D.SENDER)
    r0 = before.cmd("RCPT TO:<erin@example.org>")
    before.close()
    with open(config) as fh:
        text = fh.read()
    with open(config, "w") as fh:
        fh.write(text + "\n[domain example.org]\n")
    n_reload = len(dm.grep(r"event=reload"))
    dm.signal(signal.SIGHUP)
    D.wait_for(lambda: len(dm.grep(r"event=reload")) > n_reload, 10)
    lines = dm.grep(r"event=reload")[n_reload:]
    T.check("SIGHUP: reload logged, same process",
            any("result=ok" in ln for ln in lines) and dm.alive() and dm.proc.pid == pid,
            "log: %r, alive %s" % (lines, dm.alive()))
    mid, msg = plain_message("hup-open", to="erin@example.net")
    fin = a.data(msg)[1] if ra[0] == 250 else ra
    a.close()
    T.check("SIGHUP: a session open across the reload finishes with 250",
            fin and fin[0] == 250, "RCPT %r, DATA %r" % (ra, fin))
    c = session(dm.port)
    c.cmd("MAIL FROM:<%s>" % D.SENDER)
    r = c.cmd("RCPT TO:<erin@example.org>")
    mid2, msg = plain_message("hup-new", to="erin@example.org")
    fin2 = c.data(msg)[1] if r[0] == 250 else r
    c.close()
    T.check("SIGHUP: the reloaded domains apply (example.org refused before, accepted after)",
            r0[1].startswith("550") and fin2 and fin2[0] == 250, "before: %s\nafter: %s / %s"
            % (r0[1], r[1], fin2))
    got = wait_mids(sink.dir, [mid, mid2], 30)
    T.check("SIGHUP: both messages delivered", mid in got and mid2 in got,
            "got %s %s" % (mid in got, mid2 in got))
    # Put the configuration back.
    with open(config, "w") as fh:
        fh.write(text)
    dm.signal(signal.SIGHUP)
    D.wait_for(lambda: len(dm.grep(r"event=reload")) > n_reload + 1, 10)


def queue_files(work):
    q = os.path.join(work, "spool", "queue")
    return sorted(os.listdir(q)) if os.path.isdir(q) else None


def sigterm_stage(work, dm, sink):
    c = session(dm.port)
    c.cmd("MAIL FROM:<%s>" % D.SENDER)
    r = c.cmd("RCPT TO:<frank@example.net>")
    t0 = time.time()
    dm.signal(signal.SIGTERM)
    time.sleep(0.5)
    try:
        n = D.Client(dm.port, timeout=3)
        new = n.banner
        n.s.close()
    except (OSError, D.SMTPError) as e:
        new = "refused (%s)" % e
    T.check("SIGTERM: no new sessions", not str(new).startswith("(220"), "a new client got %r" % (new,))
    T.check("SIGTERM: still running while a session is open", dm.alive(), dm.tail(5))
    mid, msg = plain_message("term-open", to="frank@example.net")
    fin = c.data(msg)[1] if r[0] == 250 else r
    c.close()
    T.check("SIGTERM: the open session finishes its message with 250",
            fin and fin[0] == 250, "RCPT %r DATA %r" % (r, fin))
    rc = dm.wait(35)
    T.check("SIGTERM: exits with status 0 once the session ended (%.1fs)" % (time.time() - t0),
            rc == 0, "exit status %r\n%s" % (rc, dm.tail(10)))
    T.check("SIGTERM: 'event=stopped' logged", bool(dm.grep(r"event=stopped")), dm.tail(5))
    if dm.alive():
        dm.kill()
    dm.start()
    got = wait_mids(sink.dir, [mid], 30)
    T.check("after the restart the message from the grace period is delivered", mid in got,
            explain(dm, qid_of(fin[1] if fin else "")))


def final_stage(work, dm, sink, items):
    # Nothing left behind, no duplicates anywhere.
    D.wait_for(lambda: queue_files(work) == [], 20)
    T.check("the queue is empty at the end", queue_files(work) == [], "left: %r" % queue_files(work))
    dup = {}
    for env, data in D.sink_messages(sink.dir):
        key = (D.message_ids(data), tuple(env["rcpt"]), env["mail_from"])
        dup[key] = dup.get(key, 0) + 1
    twice = {k: v for k, v in dup.items() if v > 1}
    T.check("no message delivered twice", not twice, repr(twice))
    odd = [ln for ln in dm.log_text().splitlines()
           if re.search(r"(?i)assert|sanitizer|segfault|double free|corrupt", ln)]
    T.check("the daemon log shows no crash or corruption", not odd, "\n".join(odd[:10]))
    dm.signal(signal.SIGTERM)
    rc = dm.wait(35)
    T.check("final SIGTERM with no sessions: exits 0", rc == 0, "status %r\n%s" % (rc, dm.tail(5)))


def has_serve(arcrelay):
    p = subprocess.run([arcrelay, "--help"], capture_output=True)
    return re.search(rb"(?m)^\s*serve\b", p.stdout + p.stderr) is not None


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    only_harness = "--harness-only" in sys.argv
    if len(args) != 2:
        sys.exit(__doc__)
    work, arcrelay, zone = D.private_work(*args)
    ub = D.Unbound(work)
    procs = [ub]
    rc = 0
    try:
        harness(arcrelay, work, zone, ub)
        if only_harness:
            pass
        elif not has_serve(arcrelay):
            T.check("%s --help lists 'serve'" % arcrelay, False, "")
            rc = 1
        else:
            sink = D.SinkProc(work, "sink")
            procs.append(sink)
            port = D.free_port()
            config = D.write_config(work, port, sink.port, ub.port)
            dm = D.Daemon(arcrelay, work, config, port)
            procs.append(dm)
            try:
                dm.start()
            except RuntimeError as e:
                T.check("arcrelay serve starts with %s" % config, False, str(e))
                raise SystemExit(1)
            T.check("arcrelay serve starts and logs event=listening",
                    bool(dm.grep(r"event=listening")), dm.tail(5))
            stages = [("corpus", lambda: corpus_stage(work, dm, sink, zone)),
                      ("relay refusals", lambda: relay_tricks(work, dm, sink)),
                      ("downstream 4xx and 5xx", lambda: downstream_stage(work, dm, sink, zone)),
                      ("queue and flush", lambda: queue_stage(work, arcrelay, sink, ub)),
                      ("SIGHUP", lambda: sighup_stage(work, dm, sink, config)),
                      ("SIGTERM", lambda: sigterm_stage(work, dm, sink)),
                      ("the end", lambda: final_stage(work, dm, sink, None))]
            for name, fn in stages:
                print("--- %s" % name, flush=True)
                try:
                    if not dm.alive():
                        dm.start()
                    fn()
                except Exception as e:   # a stage that blows up is a failure, not a stop
                    import traceback
                    T.check("stage '%s' ran to its end" % name, False,
                            "%s\n%s\ndaemon log ends:\n%s" % (e, traceback.format_exc(limit=3),
                                                              dm.tail(15)))
    finally:
        for p in reversed(procs):
            try:
                (p.kill if isinstance(p, D.Daemon) else p.stop)()
            except Exception:
                pass
    print("%d passed, %d failed" % (T.passed, T.failed))
    if T.failed:
        return 1
    return rc


if __name__ == "__main__":
    # A SIGTERM (ctest, ^C in a wrapper) still stops unbound, sink and daemon.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
