#!/usr/bin/python3
"""bench.py - how fast the relay is, next to what bounds it (on demand).

    bench.py [--arcrelay build/relay/arcrelay] [--clients 32] [--messages 4000]
             [--size 10240] [--idle 1000] [--workers N] [--work DIR]
             [--driver c|python] [--smtpload PATH] [--procs 2]

One run measures, on loopback, with the same N concurrent SMTP clients
sending the same 10 KB DKIM-signed messages (MAIL, RCPT and DATA
pipelined, one session per client, as many messages per session as it
takes):

  relay         through `arcrelay serve` (verify, sign, seal, fsync before
                the 250) into the sink: messages/s accepted, the p50 and p99
                of the time from the end of DATA to the 250, messages/s until
                the sink had them all, and the daemon's peak RSS (VmHWM);
  SMTP ceiling  the same load sent straight into the sink;
  crypto        `openssl speed -multi CORES rsa2048` signs/s / 3 (each relayed
                message costs three RSA signatures: DKIM, AMS, AS);
  idle          the daemon's RSS with --idle connections open and idle
                (after EHLO), on a fresh start, and whether it still takes a
                message meanwhile.

The load side (the clients and the sink the daemon delivers to) is
`smtpload send` and `smtpload sink` (tests/bench/smtpload.c, found at
tests/bench/smtpload in the build tree that holds --arcrelay) with
--driver c, the default: C on libevent, so that it takes little of the
CPU the daemon needs.  --driver python is the older load side, asyncio
clients in --procs processes and sink.py --store none (it counts and
logs Message-IDs only); neither sink fsyncs.  Everything is printed
side by side at the end, with two figures that vary less from run to run
than the rates do: the daemon's CPU time per accepted message (user and
system, from /proc/PID/stat over the measured relay run) and how busy the
whole machine was meanwhile (/proc/stat).  The load average is printed at
the start and at the end: the machine may be shared.
"""

import argparse
import asyncio
import collections
import multiprocessing
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlib as D  # noqa: E402


def make_pool(work, n, size):
    key = D.read_key(work, D.SENDER_SELECTOR)
    pool = []
    for i in range(n):
        mid = "<bench-%d.%d@%s>" % (i, os.getpid(), D.SENDER_DOMAIN)
        line = ("bench message %d, line of text for the benchmark. " % i) * 2
        body = b""
        hdr = D.head(mid, "bench %d" % i) + D.crlf("MIME-Version: 1.0\nContent-Type: text/plain\n\n")
        while len(hdr) + len(body) < size - 660:     # the signature makes up the rest
            body += (line[:76] + "\r\n").encode()
        data = D.dkim_sign(hdr + body, key)
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        pool.append(stuffed + b".\r\n")
    return pool


def write_pool(work, pool):
    """The pool as files ready to send, for smtpload: its directory."""
    d = os.path.join(work, "pool")
    os.makedirs(d, exist_ok=True)
    for i, msg in enumerate(pool):
        with open(os.path.join(d, "%03d.eml" % i), "wb") as fh:
            fh.write(msg)
    return d


# ---- the load ----------------------------------------------------------------------

async def read_reply(reader):
    while True:
        ln = await reader.readline()
        if not ln:
            raise ConnectionError("closed")
        if ln[3:4] != b"-":
            return ln


async def client(port, pool, count, offset, lat, errors):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
    await read_reply(reader)
    writer.write(b"EHLO bench.sender.example\r\n")
    await read_reply(reader)
    env = ("MAIL FROM:<%s>\r\nRCPT TO:<bench@%s>\r\nDATA\r\n" % (D.SENDER, D.RCPT_DOMAIN)).encode()
    for k in range(count):
        msg = pool[(offset + k) % len(pool)]
        writer.write(env)
        r1 = await read_reply(reader)
        r2 = await read_reply(reader)
        r3 = await read_reply(reader)
        if not (r1.startswith(b"250") and r2.startswith(b"250") and r3.startswith(b"354")):
            errors.append((r1 + r2 + r3).decode("latin-1")[:200])
            if r3.startswith(b"354"):
                writer.write(b".\r\n")
                await read_reply(reader)
            writer.write(b"RSET\r\n")
            await read_reply(reader)
            continue
        writer.write(msg)
        await writer.drain()
        t0 = time.perf_counter()
        r = await read_reply(reader)
        lat.append(time.perf_counter() - t0)
        if not r.startswith(b"250"):
            errors.append(r.decode("latin-1")[:200])
    writer.write(b"QUIT\r\n")
    try:
        await read_reply(reader)
    except ConnectionError:
        pass
    writer.close()


def load_proc(port, pool, clients, per_client, base, q):
    async def go():
        lat, errors = [], []
        t0 = time.time()
        await asyncio.gather(*[client(port, pool, per_client, base + i * 7, lat, errors)
                               for i in range(clients)], return_exceptions=False)
        return lat, errors, t0, time.time()
    try:
        q.put(asyncio.run(go()))
    except Exception as e:
        q.put(([], ["EXC %r" % (e,)], 0, 0))


# One load run: rate in messages/s, n final replies, p50 and p99 in seconds,
# nerr errors with the first few texts in errs, start and end (time.time()).
Load = collections.namedtuple("Load", "rate n p50 p99 nerr errs t0 t1")


def run_load(port, pool, clients, messages, procs):
    """The Python driver: clients sessions sending messages in all, spread
    over procs processes."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    per_client = max(1, messages // clients)
    split = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    ps = []
    base = 0
    for n in split:
        if n == 0:
            continue
        p = ctx.Process(target=load_proc, args=(port, pool, n, per_client, base, q))
        p.start()
        ps.append(p)
        base += n * per_client
    outs = [q.get() for _ in ps]
    for p in ps:
        p.join()
    lat = [x for o in outs for x in o[0]]
    errors = [x for o in outs for x in o[1]]
    t0 = min(o[2] for o in outs)
    t1 = max(o[3] for o in outs)
    return Load(len(lat) / (t1 - t0) if t1 > t0 else 0, len(lat), pct(lat, 50), pct(lat, 99),
                len(errors), errors, t0, t1)


def run_load_c(smtpload, port, pooldir, clients, messages):
    """The C driver: the same load from one `smtpload send`."""
    cmd = [smtpload, "send", "--port", str(port), "--clients", str(clients),
           "--messages", str(messages), "--helo", "bench.sender.example", "--from", D.SENDER,
           "--to", "bench@" + D.RCPT_DOMAIN, "--pool", pooldir]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, timeout=900)
    t1 = time.time()
    out, err = p.stdout.decode(), p.stderr.decode("latin-1")
    m = re.search(r"(?m)^result (.*)$", out)
    if p.returncode not in (0, 1) or not m:
        raise RuntimeError("smtpload send failed (status %d): %s" % (p.returncode, err.strip()))
    r = dict(kv.split("=", 1) for kv in m.group(1).split())
    errs = [ln[len("smtpload: "):] for ln in err.splitlines() if ln.startswith("smtpload: ")]
    return Load(float(r["msgs_per_s"]), int(r["ok"]), float(r["p50_ms"]) / 1000,
                float(r["p99_ms"]) / 1000, int(r["errors"]), errs, t0, t1)


class CSink(D.SinkProc):
    """`smtpload sink`: counts messages into NAME.count; stats() and stop()
    as SinkProc's."""

    def __init__(self, work, smtpload, name="sink", keep=None, keep_every=100):
        # not super(): that starts sink.py.  keep: a directory for one
        # message in keep_every (smtpload sink --keep).
        self.port = D.free_port()
        self.count_file = os.path.join(work, name + ".count")
        if os.path.exists(self.count_file):
            os.unlink(self.count_file)
        extra = ["--keep", keep, "--keep-every", str(keep_every)] if keep else []
        self.proc = subprocess.Popen([smtpload, "sink", "--port", str(self.port),
                                      "--count-file", self.count_file] + extra,
                                     stderr=open(os.path.join(work, name + ".err"), "ab"))
        if not D.wait_for(lambda: os.path.exists(self.count_file), 10, 0.05):
            raise RuntimeError("smtpload sink did not start: see %s.err" % name)

    def stats(self):
        with open(self.count_file) as fh:
            return {"messages": int(fh.read())}


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def crypto_ceiling():
    cores = os.cpu_count() or 1
    p = subprocess.run(["openssl", "speed", "-multi", str(cores), "-seconds", "3", "rsa2048"],
                       capture_output=True, timeout=120)
    out = p.stdout.decode() + p.stderr.decode()
    m = re.search(r"(?m)^rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out)
    if not m:
        return cores, None, out[-500:]
    return cores, float(m.group(1)), ""


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def proc_cpu(pid):
    """(user, system) CPU seconds of process pid so far."""
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    return int(f[11]) / hz, int(f[12]) / hz


def load_cpu():
    """CPU seconds of bench.py and its finished children so far."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def machine_cpu():
    """(busy, total) jiffies of all CPUs so far; iowait counts as idle."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def sink_count(sink):
    return sink.stats()["messages"]


async def hold_idle(port, n, ready, release):
    conns = []
    failed = 0
    for i in range(n):
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.wait_for(read_reply(r), 10)
            w.write(b"EHLO idle%d.sender.example\r\n" % i)
            await asyncio.wait_for(read_reply(r), 10)
            conns.append((r, w))
        except Exception:
            failed += 1
    ready.put((len(conns), failed))
    await asyncio.get_running_loop().run_in_executor(None, release.get)
    alive = 0
    for r, w in conns:
        try:
            w.write(b"NOOP\r\n")
            await asyncio.wait_for(read_reply(r), 5)
            alive += 1
        except Exception:
            pass
        w.close()
    ready.put(alive)


def idle_proc(port, n, ready, release):
    raise_nofile()
    asyncio.run(hold_idle(port, n, ready, release))


def common_args(ap):
    """The options bench.py and bench_postfix.py share."""
    ap.add_argument("--arcrelay", default=os.path.join(D.HERE, "..", "..", "build", "relay",
                                                       "arcrelay"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--messages", type=int, default=4000)
    ap.add_argument("--size", type=int, default=10240)
    ap.add_argument("--workers", type=int, default=8)  # the daemon's default
    ap.add_argument("--smtpload", default=None,
                    help="default: tests/bench/smtpload in --arcrelay's build tree")
    ap.add_argument("--work", default=None, help="work directory (default: a temporary one)")


def prepare(a, driver="c", prefix="arcrelay-bench-"):
    """A fresh work directory holding copies of arcrelay and (driver c)
    smtpload, the keys and the test zone: (work, arcrelay, smtpload or
    None, zone)."""
    work = os.path.abspath(a.work) if a.work else tempfile.mkdtemp(prefix=prefix)
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    arcrelay = os.path.join(work, "arcrelay")
    shutil.copy2(a.arcrelay, arcrelay)
    smtpload = None
    if driver == "c":
        src = a.smtpload or os.path.join(os.path.dirname(os.path.abspath(a.arcrelay)), "..",
                                         "tests", "bench", "smtpload")
        if not os.access(src, os.X_OK):
            raise SystemExit("bench: %s is missing: build it (cmake --build BUILD --target "
                             "smtpload), give --smtpload PATH, or use --driver python"
                             % os.path.normpath(src))
        smtpload = os.path.join(work, "smtpload")
        shutil.copy2(src, smtpload)
    D.keygen(arcrelay, work)
    zone = D.make_zone(work)
    zone.write(work)
    return work, arcrelay, smtpload, zone


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common_args(ap)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--driver", choices=("c", "python"), default="c",
                    help="load side: smtpload (c) or asyncio clients and sink.py (python)")
    ap.add_argument("--procs", type=int, default=2, help="client processes (--driver python)")
    a = ap.parse_args()
    raise_nofile()

    work, arcrelay, smtpload, zone = prepare(a, a.driver)
    p = subprocess.run([arcrelay, "--help"], capture_output=True)
    have_serve = re.search(rb"(?m)^\s*serve\b", p.stdout + p.stderr) is not None
    if not have_serve:
        print("bench: %s has no serve command yet: the ceilings only" % a.arcrelay)
    print("bench: work in %s; %d clients, %d messages of %d bytes, %d daemon workers, %d cores"
          % (work, a.clients, a.messages, a.size, a.workers, os.cpu_count()), flush=True)
    load0 = os.getloadavg()
    pool = make_pool(work, 64, a.size)
    print("bench: message size %d bytes (with the author's DKIM signature)" % (len(pool[0]) - 3),
          flush=True)
    print("bench: load side: %s" % ("smtpload send and smtpload sink" if smtpload else
                                    "Python clients in %d processes and sink.py" % a.procs),
          flush=True)
    if smtpload:
        pooldir = write_pool(work, pool)
        load = lambda port, n: run_load_c(smtpload, port, pooldir, a.clients, n)  # noqa: E731
    else:
        load = lambda port, n: run_load(port, pool, a.clients, n, a.procs)  # noqa: E731

    ub = D.Unbound(work)
    sink = CSink(work, smtpload) if smtpload else D.SinkProc(work, "sink", store="none")
    port = D.free_port()
    config = D.write_config(work, port, sink.port, ub.port, workers=a.workers,
                            idle_timeout="10m",
                            extra_server="max_sessions = %d\nmax_sessions_per_ip = %d\n"
                            % (a.idle + 100, a.idle + 100))
    dm = D.Daemon(arcrelay, work, config, port)
    res = {}
    try:
        # 1. The SMTP ceiling: straight into the sink.
        load(sink.port, min(200, a.messages))      # warm up
        res["sink"] = r = load(sink.port, a.messages)
        print("bench: straight to the sink: %.0f msg/s, %d errors" % (r.rate, r.nerr), flush=True)

        res["crypto"] = [crypto_ceiling()]
        if not have_serve:
            raise SystemExit(print_table(res, dm))

        # 2. Through the relay.
        dm.start(preexec=raise_nofile)
        load(port, min(200, a.messages))            # warm up
        D.wait_for(lambda: not os.listdir(os.path.join(work, "spool", "queue")), 60, 0.2)
        before = sink_count(sink)
        cpu0, mach0 = proc_cpu(dm.proc.pid), machine_cpu()
        lcpu0, scpu0 = load_cpu(), proc_cpu(sink.proc.pid)
        r = load(port, a.messages)
        cpu1, mach1 = proc_cpu(dm.proc.pid), machine_cpu()
        lcpu1, scpu1 = load_cpu(), proc_cpu(sink.proc.pid)
        D.wait_for(lambda: sink_count(sink) - before >= r.n, 120, 0.1)
        t_all = time.time()
        e2e = (sink_count(sink) - before) / (t_all - r.t0)
        hwm = dm.rss_kb("VmHWM")
        res["relay"] = (r, e2e, hwm)
        # Over the load run only: most of the delivery to the sink happens
        # within it, since the sink keeps up.
        res["cpu"] = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], r.n,
                      (mach1[0] - mach0[0]) / max(1, mach1[1] - mach0[1]))
        res["loadcpu"] = (a.driver, lcpu1[1] - lcpu0[1], sum(scpu1) - sum(scpu0),
                          lcpu1[0] - lcpu0[0],
                          (mach1[1] - mach0[1]) / os.sysconf("SC_CLK_TCK"))
        print("bench: through the relay: %.0f msg/s accepted, %.0f msg/s delivered, %d errors%s"
              % (r.rate, e2e, r.nerr, (" (first: %s)" % r.errs[0]) if r.errs else ""),
              flush=True)
        # 3. Idle connections, on a fresh start.
        dm.signal(15)
        dm.wait(40)
        dm.start(preexec=raise_nofile)
        time.sleep(0.5)
        rss0 = dm.rss_kb()
        ctx = multiprocessing.get_context("fork")
        ready, release = ctx.Queue(), ctx.Queue()
        ip = ctx.Process(target=idle_proc, args=(port, a.idle, ready, release))
        ip.start()
        opened, failed = ready.get(timeout=300)
        time.sleep(1)
        rss1 = dm.rss_kb()
        probe = D.send_smtplib(port, {"mail_from": D.SENDER, "rcpt": ["bob@" + D.RCPT_DOMAIN],
                                      "mail_options": [], "data": pool[0][:-3].replace(
                                          b"\r\n..", b"\r\n.")})
        release.put(1)
        alive = ready.get(timeout=300)
        ip.join()
        res["idle"] = (opened, failed, rss0, rss1, probe, alive)
        res["crypto"].append(crypto_ceiling())
        res["load"] = (load0, os.getloadavg())
    finally:
        dm.kill()
        sink.stop()
        ub.stop()
    return print_table(res, dm)


def print_table(res, dm):
    sl = res["sink"]
    rl, re2e, hwm = res.get("relay", (Load(0, 0, float("nan"), float("nan"), 0, [], 0, 0),
                                      0, None))
    runs = res["crypto"]
    cores = runs[0][0]
    why = "; ".join(r[2] for r in runs if r[2])
    got = [r[1] for r in runs if r[1]]
    signs = sum(got) / len(got) if got else None
    ceil = signs / 3 if signs else float("nan")
    ms = lambda v: "%.2f" % (v * 1000)  # noqa: E731
    rrate, srate = rl.rate, sl.rate
    rows = [("messages/s (250s received)", "%.0f" % rrate, "%.0f" % srate, "%.0f" % ceil),
            ("messages/s (until all delivered)", "%.0f" % re2e, "-", "-"),
            ("latency p50, end of DATA to 250 (ms)", ms(rl.p50), ms(sl.p50), "-"),
            ("latency p99 (ms)", ms(rl.p99), ms(sl.p99), "-"),
            ("errors", str(rl.nerr), str(sl.nerr), "-"),
            ("peak RSS, VmHWM (MB)", "%.1f" % (hwm / 1024.0) if hwm else "?", "-", "-")]
    print()
    print("%-40s %12s %14s %16s" % ("", "relay", "SMTP ceiling", "crypto ceiling"))
    for r in rows:
        print("%-40s %12s %14s %16s" % r)
    print()
    print("crypto ceiling: openssl speed -multi %d rsa2048: %s signs/s (runs: %s) / 3 = %.0f "
          "messages/s%s" % (cores, "%.0f" % signs if signs else "?",
                            ", ".join("%.0f" % g for g in got), ceil,
                            (" (" + why + ")") if why else ""))
    if signs:
        print("relay at %.0f%% of the crypto ceiling (target: 40%% or more), %.0f%% of the SMTP "
              "ceiling" % (100 * rrate / ceil, 100 * rrate / srate if srate else 0))
    if len(got) > 1 and max(got) > 1.15 * min(got):
        print("warning: the crypto runs differ by %.0f%%: the machine's speed changed during the "
              "benchmark, so the percentage above is not a reliable figure"
              % (100 * (max(got) / min(got) - 1)))
    if "cpu" in res:
        user, system, n, busy = res["cpu"]
        print("daemon CPU per accepted message: %.2f ms (%.2f user, %.2f system); the machine was "
              "%.0f%% busy during the relay run" % (1000 * (user + system) / max(1, n),
                                                    1000 * user / max(1, n),
                                                    1000 * system / max(1, n), 100 * busy))
    if "loadcpu" in res:
        driver, kids, sink, me, total = res["loadcpu"]
        print("load side CPU during the relay run (--driver %s): %.2f s (clients %.2f, sink %.2f, "
              "bench.py %.2f), %.1f%% of the machine's %.1f CPU seconds"
              % (driver, kids + sink + me, kids, sink, me,
                 100 * (kids + sink + me) / max(total, 1e-9), total))
    if "load" in res:
        print("load average (1, 5, 15 min): %s at the start, %s at the end"
              % tuple(" ".join("%.2f" % x for x in la) for la in res["load"]))
    if "idle" not in res:
        return 0
    opened, failed, rss0, rss1, probe, alive = res["idle"]
    print("idle: %d connections open (%d failed to open), RSS %.1f MB before, %.1f MB with them "
          "(target: under 100 MB); a message sent meanwhile: %s; %d still answered NOOP after"
          % (opened, failed, (rss0 or 0) / 1024.0, (rss1 or 0) / 1024.0, probe, alive))
    print("the daemon's log: %s" % dm.log)
    return 0


if __name__ == "__main__":
    # A SIGTERM (ctest, ^C in a wrapper) still stops unbound, sink and daemon.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
