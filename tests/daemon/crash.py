#!/usr/bin/python3
"""crash.py - kill -9 the daemon under load; nothing it accepted is lost.

    crash.py ARCRELAY WORKDIR [--senders 6] [--rate 40] [--kills 6]
             [--accepted 600] [--seed N]

Several senders (threads, one SMTP session each, reconnecting when the
session dies) send DKIM-signed messages of 1-20 KB at a steady rate in all,
each with a unique Message-ID, and log the reply every message got.  Every
tenth message goes to a recipient the sink defers once, so there is always
something waiting in the queue for a retry.  Meanwhile the daemon is killed
with SIGKILL at random moments and started again, at least --kills times,
until at least --accepted messages got a 250.  Then the senders stop, the
queue drains, and:

  - every message that got a 250 reached the sink, whole (the original
    bytes end the delivered copy, our DKIM signature verifies);
  - a message reached the sink twice only if its first copy arrived just
    before a kill (it was in flight: delivered, not yet marked so);
  - a message whose DATA got an explicit refusal (4xx/5xx) never arrives;
    one whose session was cut by the kill may or may not;
  - nothing was moved aside as corrupt, and the queue ends empty.

The last line is "N passed, M failed"; exit 0 when nothing failed.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlib as D  # noqa: E402

T = D.Tally()


def make_messages(work, n, senders, run, rnd):
    """n signed messages, in order: (sender index, mid, rcpt, bytes)."""
    key = D.read_key(work, D.SENDER_SELECTOR)
    out = []
    for i in range(n):
        s = i % senders
        mid = "<crash-%d-%05d.%s@%s>" % (s, i, run, D.SENDER_DOMAIN)
        rcpt = ("slow%d@%s" % (i, D.RCPT_DOMAIN)) if i % 10 == 5 else ("u%d@%s" % (s, D.RCPT_DOMAIN))
        size = rnd.randint(1000, 20000)
        line = ("%d %s " % (i, mid)) * 3
        body = b""
        while len(body) < size:
            body += (line[:76] + "\r\n").encode()
        data = D.head(mid, "crash %d" % i, to=rcpt) + D.crlf(
            "MIME-Version: 1.0\nContent-Type: text/plain\n\n") + body
        out.append((s, mid, rcpt, D.dkim_sign(data, key)))
    return out


class Sender(threading.Thread):
    def __init__(self, idx, port, msgs, rate, log, stop):
        super().__init__(daemon=True)
        self.idx, self.port, self.msgs, self.rate = idx, port, msgs, rate
        self.log, self.stop = log, stop
        self.results = []
        self.next = 0

    def record(self, mid, result, t):
        rec = {"mid": mid, "result": result, "t": t, "sender": self.idx}
        self.results.append(rec)
        self.log.write(json.dumps(rec) + "\n")
        self.log.flush()

    def run(self):
        c = None
        period = 1.0 / self.rate
        due = time.monotonic()
        while not self.stop.is_set() and self.next < len(self.msgs):
            if c is None:
                # Not a message lost: while the daemon is down, wait for it.
                try:
                    c = D.Client(self.port, timeout=20)
                    if c.banner[0] != 220:
                        raise D.SMTPError("banner %r" % (c.banner,))
                    if c.cmd("EHLO crash%d.sender.example" % self.idx)[0] != 250:
                        raise D.SMTPError("EHLO refused")
                except (OSError, D.SMTPError):
                    c = None
                    time.sleep(0.05)
                    continue
            _, mid, rcpt, data = self.msgs[self.next]
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            due = max(due + period, time.monotonic() - 1)
            self.next += 1
            try:
                r = c.cmd("MAIL FROM:<%s>" % D.SENDER)
                if r[0] != 250:
                    raise D.SMTPError("MAIL: %s" % r[1])
                r = c.cmd("RCPT TO:<%s>" % rcpt)
                if r[0] != 250:
                    c.cmd("RSET")
                    self.record(mid, r[1], time.time())
                    continue
                _, fin, _ = c.data(data)
                self.record(mid, fin[1] if fin else "no 354", time.time())
            except (OSError, D.SMTPError) as e:
                self.record(mid, "EXC %s" % e, time.time())
                try:
                    c.s.close()
                except OSError:
                    pass
                c = None
        if c:
            c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("arcrelay")
    ap.add_argument("work")
    ap.add_argument("--senders", type=int, default=6)
    ap.add_argument("--rate", type=float, default=40.0, help="messages/s, all senders")
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--accepted", type=int, default=600)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--drain", type=float, default=90.0, help="seconds to wait for the queue")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else int(time.time())
    rnd = random.Random(seed)
    print("crash: seed %d (--seed %d repeats the kill times)" % (seed, seed), flush=True)

    work = os.path.abspath(a.work)
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    arcrelay = os.path.join(work, "arcrelay")
    shutil.copy2(a.arcrelay, arcrelay)
    p = subprocess.run([arcrelay, "--help"], capture_output=True)
    if not re.search(rb"(?m)^\s*serve\b", p.stdout + p.stderr):
        print("FAIL: %s --help lists no 'serve'" % a.arcrelay)
        print("0 passed, 1 failed")
        return 1
    D.keygen(arcrelay, work)
    zone = D.make_zone(work)
    zone.write(work)

    t_start = time.time()
    total = int(a.accepted * 1.6) + 100
    msgs = make_messages(work, total, a.senders, "r%d" % seed, rnd)
    by_mid = {m[1]: m for m in msgs}
    print("crash: %d messages made in %.1fs" % (total, time.time() - t_start), flush=True)

    ub = D.Unbound(work)
    sink = D.SinkProc(work, "sink")
    sink.set_rules({"tempfail": {m[2]: 1 for m in msgs if m[2].startswith("slow")}})
    port = D.free_port()
    config = D.write_config(work, port, sink.port, ub.port, retry="1s 1s 2s 5s")
    dm = D.Daemon(arcrelay, work, config, port)
    kills = []          # (time of the kill, daemon start number)
    starts_failed = []
    stop = threading.Event()
    senders = []
    try:
        dm.start()
        logf = open(os.path.join(work, "replies.jsonl"), "w")
        per = [[m for m in msgs if m[0] == s] for s in range(a.senders)]
        senders = [Sender(s, port, per[s], a.rate / a.senders, logf, stop)
                   for s in range(a.senders)]
        for s in senders:
            s.start()

        def accepted():
            return sum(1 for s in senders for r in list(s.results) if r["result"].startswith("250"))

        deadline = time.time() + 120
        while time.time() < deadline:
            time.sleep(rnd.uniform(1.5, 4.5))
            if len(kills) >= a.kills and accepted() >= a.accepted:
                break
            if not dm.alive():
                starts_failed.append("the daemon died on its own:\n" + dm.tail(15))
            else:
                kills.append(time.time())
                dm.proc.send_signal(signal.SIGKILL)
                dm.proc.wait()
            time.sleep(rnd.uniform(0.0, 0.8))
            try:
                dm.start()
            except RuntimeError as e:
                starts_failed.append(str(e))
                time.sleep(1)
                try:
                    dm.start()
                except RuntimeError as e2:
                    starts_failed.append(str(e2))
                    break
        stop.set()
        for s in senders:
            s.join(30)
        t_load = time.time()
        results = [r for s in senders for r in s.results]
        ok = {r["mid"]: r for r in results if r["result"].startswith("250")}
        print("crash: %d sent, %d got a 250, %d kills, load ran %.0fs" % (
            len(results), len(ok), len(kills), t_load - t_start), flush=True)

        T.check("at least %d kill -9 under load (%d)" % (a.kills, len(kills)), len(kills) >= a.kills,
                "")
        T.check("at least %d messages got a 250 (%d)" % (a.accepted, len(ok)),
                len(ok) >= a.accepted, "replies other than 250: %r" % sorted(
                    {re.sub(r"\d+", "N", r["result"])[:60] for r in results
                     if not r["result"].startswith("250")}))
        T.check("the daemon restarted after every kill", not starts_failed,
                "\n---\n".join(starts_failed))
        if not dm.alive():
            dm.start()

        def delivered():
            ids = {}
            path = os.path.join(sink.dir, "ids.log")
            with open(path) as fh:
                for ln in fh:
                    t, mid = ln.split(" ", 1)
                    ids.setdefault(mid.strip(), []).append(float(t))
            return ids
        D.wait_for(lambda: all(m in delivered() for m in ok), a.drain, 0.5)
        qdir = os.path.join(work, "spool", "queue")
        D.wait_for(lambda: not os.listdir(qdir), 15, 0.5)
        got = delivered()
        print("crash: drained %.0fs after the load stopped" % (time.time() - t_load), flush=True)

        lost = [m for m in ok if m not in got]
        detail = []
        for m in lost[:15]:
            r = ok[m]
            qid = re.search(r"queued as (\S+)", r["result"])
            qid = qid.group(1) if qid else "?"
            near = min(kills, key=lambda k: abs(k - r["t"])) if kills else None
            detail.append("%s: %s at %.3f (nearest kill %+.3fs); log: %s" % (
                m, r["result"], r["t"], (near - r["t"]) if near else 0,
                " | ".join(dm.grep(re.escape(qid))[-4:]) or "nothing"))
        T.check("every message that got a 250 was delivered (%d lost)" % len(lost), not lost,
                "\n".join(detail))

        dups = {m: sorted(ts) for m, ts in got.items() if len(ts) > 1}
        unexplained = []
        for m, ts in dups.items():
            if not any(ts[0] <= k + 0.1 and k - ts[0] < 5 and ts[1] >= k for k in kills):
                unexplained.append("%s delivered at %s; kills at %s" % (
                    m, ["%.3f" % t for t in ts], ["%.3f" % k for k in kills]))
        T.check("duplicates only for messages in flight at a kill (%d duplicates)" % len(dups),
                not unexplained, "\n".join(unexplained[:10]))

        refused = {r["mid"]: r for r in results if not r["result"].startswith("250")
                   and not r["result"].startswith("EXC")}
        bad = [m for m in refused if m in got]
        T.check("no message refused with a 4xx/5xx was delivered (%d refused)" % len(refused),
                not bad, "\n".join("%s: %s" % (m, refused[m]["result"]) for m in bad[:10]))
        cut = [r["mid"] for r in results if r["result"].startswith("EXC")]
        print("crash: %d sessions cut by a kill; %d of those messages were delivered anyway" % (
            len(cut), sum(1 for m in cut if m in got)), flush=True)
        strangers = [m for m in got if m not in by_mid]
        T.check("the sink got nothing we did not send", not strangers, repr(strangers[:5]))

        # Every delivered copy whole: the original bytes at its end, our signature good.
        broken = []
        copies = D.sink_messages(sink.dir)
        for env, data in copies:
            mid = D.message_ids(data)
            if mid not in by_mid:
                continue
            orig = by_mid[mid][3]
            if not data.endswith(orig):
                broken.append("%s (%s): not the original bytes (%d vs %d)" % (
                    mid, env["file"], len(data), len(orig)))
                continue
            probs = [p for p in D.check_relayed(data, orig, zone,
                                                {"dkim": "pass", "spf": "pass", "dmarc": "pass"})]
            if probs:
                broken.append("%s (%s): %s" % (mid, env["file"], "; ".join(probs)[:400]))
        T.check("every delivered copy is whole and verifies (%d checked)" % len(copies), not broken,
                "\n".join(broken[:10]))

        corrupt = dm.grep(r"(?i)corrupt")
        cdir = os.path.join(work, "spool", "corrupt")
        moved = os.listdir(cdir) if os.path.isdir(cdir) else []
        T.check("nothing moved aside as corrupt", not corrupt and not moved,
                "log: %s\nspool/corrupt: %r" % ("\n".join(corrupt[:10]), moved[:10]))
        left = os.listdir(qdir) if os.path.isdir(qdir) else ["(no queue dir)"]
        envs = [f for f in left if f.endswith(".env")]
        T.check("no envelope left in the queue at the end", not envs, "left: %r" % envs[:10])
        # A .msg without its .env is what a kill between the two unlinks of
        # a finished message leaves (or the first rename of a commit).
        lone = [f for f in left if f.endswith(".msg") and f[:-4] + ".env" not in left]
        detail = []
        for f in lone[:5]:
            with open(os.path.join(qdir, f), "rb") as fh:
                mid = D.message_ids(fh.read())
            r = next((r for r in results if r["mid"] == mid), None)
            detail.append("%s: %s, reply %r, delivered at %s; kills at %s; log: %s" % (
                f, mid, r and r["result"], got.get(mid), ["%.3f" % k for k in kills],
                " | ".join(dm.grep(re.escape(f[:-4])))[-600:]))
        T.check("no lone .msg left in the queue (debris of a kill) after the drain", not lone,
                "\n".join(detail))
        others = [f for f in left if f not in envs and f not in lone and not f.endswith(".msg")]
        T.check("nothing else in spool/queue", not others, repr(others[:10]))
        tmpd = os.path.join(work, "spool", "tmp")
        if os.path.isdir(tmpd):
            print("crash: %d files left in spool/tmp" % len(os.listdir(tmpd)), flush=True)
        T.check("the daemon is still running at the end", dm.alive(), dm.tail(10))
        print("crash: %.0fs in all" % (time.time() - t_start), flush=True)
    finally:
        stop.set()
        dm.kill()
        sink.stop()
        ub.stop()
    print("%d passed, %d failed" % (T.passed, T.failed))
    return 1 if T.failed else 0


if __name__ == "__main__":
    # A SIGTERM (ctest, ^C in a wrapper) still stops unbound, sink and daemon.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
