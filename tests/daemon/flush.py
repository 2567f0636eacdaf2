#!/usr/bin/python3
"""flush.py - `arcrelay queue --flush` at the edges (ctest daemon_flush).

    flush.py ARCRELAY WORKDIR PAUSE_RENAME_SO

WORKDIR is wiped.  unbound and sink.py as in e2e.py, one daemon with a
retry an hour away, so only a flush delivers a deferred message soon:

1. A flush asked for while the daemon starts.  The daemon is held for 2 s
   just after its pid file appears (pause_rename.so, LD_PRELOADed, delays
   the rename that writes it) and `queue --flush` signals it then.  It
   must live on (SIGUSR1's default action is to terminate), log
   event=flush once it is up, and deliver the message queued before the
   restart at once.
2. A flush while the message's attempt is in flight: the sink holds its
   answer to the final dot and the flush comes meanwhile.  No second
   attempt starts (one connection, one DATA) and the message arrives once.
   When that attempt ends in a 451, the message stays queued (not lost,
   not retried at once) and a later flush delivers it, once.

The last line is "N passed, M failed"; exit 0 when nothing failed.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlib as D  # noqa: E402

T = D.Tally()
RCPT = "held@example.net"


def queue_cmd(arcrelay, *args):
    p = subprocess.run([arcrelay, "queue"] + list(args), capture_output=True)
    return p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1")


def send(port, tag, rcpt=RCPT):
    """one message to rcpt: its Message-ID and the final reply"""
    c = D.Client(port)
    c.cmd("EHLO client.sender.example")
    c.cmd("MAIL FROM:<%s>" % D.SENDER)
    c.cmd("RCPT TO:<%s>" % rcpt)
    mid = "<%s.%d@%s>" % (tag, int(time.time() * 1000), D.SENDER_DOMAIN)
    fin = c.data(D.head(mid, tag, to=rcpt) + b"\r\nhello\r\n")[1]
    c.close()
    return mid, fin


def arrived(sink, mid):
    """the sink's copies of mid"""
    return [m for m in D.sink_messages(sink.dir) if mid.encode() in m[1]]


def counters(sink):
    """the sink's counters from its stats.json (asking by STAT would count a
    connection of its own); the file trails a change by up to 0.2 s"""
    time.sleep(0.5)
    with open(os.path.join(sink.dir, "stats.json")) as fh:
        return json.load(fh)


def lines(dm, pattern):
    return [ln for ln in dm.log_since_start().splitlines() if re.search(pattern, ln)]


def startup_stage(arcrelay, work, sink, config, port, spool, shim):
    pidfile = os.path.join(spool, "arcrelay.pid")
    dm = D.Daemon(arcrelay, work, config, port)
    # Queue a message the sink defers; its retry is an hour away.
    sink.set_rules({"tempfail": {RCPT: 1000}})
    dm.start()
    try:
        mid, fin = send(dm.port, "startflush")
        T.check("start: the message is accepted", fin and fin[0] == 250, fin)
        D.wait_for(lambda: lines(dm, r"to=<%s> status=deferred" % re.escape(RCPT)), 20)
        T.check("start: the sink's 451 defers it",
                bool(lines(dm, r"status=deferred")), dm.tail(10))
        dm.signal(signal.SIGTERM)
        T.check("start: the first daemon stops (exit 0)", dm.wait(35) == 0, dm.tail(10))
        sink.set_rules({})

        # The restart, held just after the pid file is written.
        env = dict(os.environ)
        env["LD_PRELOAD"] = shim
        env["ARCRELAY_TEST_PAUSE_PATH"] = pidfile
        env["ARCRELAY_TEST_PAUSE_MS"] = "2000"
        # A sanitizer build wants its runtime first; the shim comes first.
        env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"),
                                                   "verify_asan_link_order=0") if x)
        dm.start(env=env)
        pid = None
        t_end = time.time() + 10
        while time.time() < t_end and dm.alive():
            try:
                pid = open(pidfile).read().strip()
            except FileNotFoundError:
                pid = None
            if pid == str(dm.proc.pid):
                break
            time.sleep(0.005)
        T.check("start: the restarted daemon writes its pid file", pid == str(dm.proc.pid),
                "pid file holds %r, daemon is %d\n%s" % (pid, dm.proc.pid, dm.tail(10)))
        rc, out, err = queue_cmd(arcrelay, "--flush", "--config", config)
        log = dm.log_since_start()
        T.check("start: the flush was asked for inside the start (the pause not over)",
                "pause_rename: resumed" not in log and "event=started" not in log,
                log[-2000:])
        T.check("start: queue --flush signals the daemon of the pid file",
                rc == 0 and out == "asked arcrelay serve (pid %d) to flush its queue\n"
                % dm.proc.pid, "exit %d\n%s%s" % (rc, out, err))
        got = D.wait_for(lambda: arrived(sink, mid), 15)
        T.check("start: the daemon lives on through the signal (not killed by SIGUSR1)",
                dm.alive(), "exit %r\n%s" % (dm.proc.poll(), dm.tail(10)))
        T.check("start: the flush is done once the daemon is up: delivered at once, not "
                "in an hour", bool(got), dm.tail(15))
        log = dm.log_since_start()
        started = log.find("event=started")
        flushed = [m.start() for m in re.finditer(r"event=flush messages=1\b", log)]
        T.check("start: event=flush messages=1 follows event=started, once",
                started >= 0 and len(flushed) == 1 and flushed[0] > started, log[-2000:])
        D.wait_for(lambda: queue_cmd(arcrelay, "--config", config)[1] == "queue is empty\n", 10)
        T.check("start: the queue is empty after it",
                queue_cmd(arcrelay, "--config", config)[1] == "queue is empty\n", "")
        dm.signal(signal.SIGTERM)
        T.check("start: SIGTERM still stops it (exit 0)", dm.wait(35) == 0, dm.tail(10))
    finally:
        dm.kill()


def inflight_stage(arcrelay, work, sink, config, port):
    dm = D.Daemon(arcrelay, work, config, port)
    holding = os.path.join(sink.dir, "holding")
    dm.start()
    try:
        # The attempt ends in a 250 after a 3 s hold.
        before = counters(sink)
        sink.set_rules({"data_hold": 3})
        mid, fin = send(dm.port, "inflight")
        T.check("in flight: the message is accepted", fin and fin[0] == 250, fin)
        T.check("in flight: the sink holds the end of its data",
                D.wait_for(lambda: os.path.exists(holding), 15, 0.02), dm.tail(10))
        rc, out, err = queue_cmd(arcrelay, "--flush", "--config", config)
        T.check("in flight: queue --flush signals the daemon", rc == 0, out + err)
        D.wait_for(lambda: lines(dm, r"event=flush"), 5, 0.05)
        T.check("in flight: the flush counts the message in flight",
                bool(lines(dm, r"event=flush messages=1$")), dm.tail(10))
        D.wait_for(lambda: arrived(sink, mid), 15)
        time.sleep(1.5)    # a second attempt, if one were started, would show by now
        after = counters(sink)
        T.check("in flight: one connection and one transaction, no second attempt",
                (after["connections"] - before["connections"],
                 after["replies"].get("354", 0) - before["replies"].get("354", 0),
                 after.get("held", 0) - before.get("held", 0)) == (1, 1, 1),
                "before %r\nafter %r" % (before, after))
        T.check("in flight: delivered exactly once", len(arrived(sink, mid)) == 1,
                "%d copies" % len(arrived(sink, mid)))
        sent = lines(dm, r"to=<%s> status=sent" % re.escape(RCPT))
        T.check("in flight: one final line, status=sent", len(sent) == 1, "\n".join(sent))
        T.check("in flight: the queue is empty",
                D.wait_for(lambda: queue_cmd(arcrelay, "--config", config)[1] ==
                           "queue is empty\n", 10), "")

        # The attempt ends in a 451 after the hold: kept, not retried at
        # once, and delivered once by a later flush.
        before = counters(sink)
        sink.set_rules({"data_hold": 3, "data_tempfail": 1})
        mid, fin = send(dm.port, "inflight451")
        T.check("in flight, 451: the message is accepted", fin and fin[0] == 250, fin)
        T.check("in flight, 451: the sink holds the end of its data",
                D.wait_for(lambda: os.path.exists(holding), 15, 0.02), dm.tail(10))
        n_flush = len(lines(dm, r"event=flush"))
        rc, out, err = queue_cmd(arcrelay, "--flush", "--config", config)
        T.check("in flight, 451: queue --flush signals the daemon", rc == 0, out + err)
        D.wait_for(lambda: lines(dm, r"to=<%s> status=deferred" % re.escape(RCPT)), 15)
        time.sleep(1.5)
        mid_stats = counters(sink)
        T.check("in flight, 451: deferred, and no second attempt after the flush",
                len(lines(dm, r"to=<%s> status=deferred" % re.escape(RCPT))) == 1 and
                mid_stats.get("held", 0) - before.get("held", 0) == 1 and
                not arrived(sink, mid), "before %r\nnow %r\n%s" % (before, mid_stats,
                                                                  dm.tail(10)))
        rc, out, err = queue_cmd(arcrelay, "--config", config)
        T.check("in flight, 451: still queued, pending, attempts=1, retry an hour away",
                re.search(r"to=<%s> state=pending attempts=1 next=in (1h00m|59m)"
                          % re.escape(RCPT), out) is not None, out + err)
        sink.set_rules({})
        rc, out, err = queue_cmd(arcrelay, "--flush", "--config", config)
        T.check("in flight, 451: a later flush delivers it",
                rc == 0 and bool(D.wait_for(lambda: arrived(sink, mid), 15)), dm.tail(10))
        time.sleep(1)
        T.check("in flight, 451: delivered exactly once", len(arrived(sink, mid)) == 1,
                "%d copies" % len(arrived(sink, mid)))
        flushes = lines(dm, r"event=flush")[n_flush:]
        T.check("in flight, 451: each flush counted the message once",
                [re.search(r"messages=(\d+)$", ln).group(1) for ln in flushes] == ["1", "1"],
                repr(flushes))
        T.check("in flight, 451: the queue is empty",
                D.wait_for(lambda: queue_cmd(arcrelay, "--config", config)[1] ==
                           "queue is empty\n", 10), "")
        dm.signal(signal.SIGTERM)
        T.check("in flight: SIGTERM exits 0", dm.wait(35) == 0, dm.tail(10))
        odd = [ln for ln in dm.log_text().splitlines()
               if re.search(r"(?i)assert|sanitizer|segfault|double free|corrupt", ln)]
        T.check("the daemon's log shows no crash or corruption", not odd, "\n".join(odd[:10]))
    finally:
        dm.kill()


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    arcrelay, work, shim = sys.argv[1:]
    shim = os.path.abspath(shim)
    work, arcrelay, _ = D.private_work(arcrelay, work)
    procs = []
    try:
        ub, sink = D.start_servers(work, procs)
        spool = os.path.join(work, "spool")
        port = D.free_port()
        config = D.write_config(work, port, sink.port, ub.port, retry="1h", spool=spool)
        for name, fn in (("a flush during the start",
                          lambda: startup_stage(arcrelay, work, sink, config, port, spool,
                                                shim)),
                         ("a flush while the attempt is in flight",
                          lambda: inflight_stage(arcrelay, work, sink, config, port))):
            print("--- %s" % name, flush=True)
            try:
                fn()
            except Exception as e:   # a stage that blows up is a failure, not a stop
                import traceback
                T.check("stage '%s' ran to its end" % name, False,
                        "%s\n%s" % (e, traceback.format_exc(limit=3)))
    finally:
        for p in reversed(procs):
            try:
                p.stop()
            except Exception:
                pass
    print("%d passed, %d failed" % (T.passed, T.failed))
    return 1 if T.failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
