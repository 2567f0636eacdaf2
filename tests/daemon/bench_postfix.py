#!/usr/bin/python3
"""bench_postfix.py - arcrelay against Postfix with OpenDKIM milters, same load (on demand).

    bench_postfix.py [--arcrelay build/relay/arcrelay] [--clients 32] [--messages 4000]
                     [--size 10240] [--rounds 2] [--workers 8] [--keep-every 50]
                     [--work DIR] [--smtpload PATH] [--no-install]

Run as root (Postfix's master must be).  When the Debian packages postfix
and opendkim are missing it installs them (apt-get, DEBIAN_FRONTEND=
noninteractive, Postfix's debconf question answered "No configuration",
service starts refused through policy-rc.d for the time of the install):
they are not build or test dependencies of arcrelay, so
contrib/install-deps.sh does not list them.  --no-install stops instead.

Nothing of the machine's mail setup is used or changed: /etc/postfix gets
no main.cf, no system service is started.  The script runs its own
instances under the work directory, on loopback:

  arcrelay   `arcrelay serve` as bench.py runs it (verify, sign, seal,
             fdatasync before the 250), delivering to its own sink;
  postfix    `postfix -c WORK/postfix start`: its own main.cf and master.cf
             (no chroot, no local delivery, TLS off, fsync as Postfix always
             does), smtpd on a free port, relayhost [127.0.0.1]:SINKPORT,
             and two OpenDKIM milters in a row: one in verify mode (adds
             Authentication-Results), one in sign mode (a 2048-bit RSA key
             of relay.example, relaxed/relaxed).  One OpenDKIM cannot do
             both to the same message: it signs mail from InternalHosts and
             verifies the rest, and the re-sign option (ResignMailTo) is
             not built into Debian's.  Both resolve through the same local
             unbound as arcrelay (libunbound, Nameservers 127.0.0.1@PORT).

Debian 12 has no OpenARC, so the work differs: arcrelay makes three RSA
signatures per message (DKIM, ARC-Message-Signature, ARC-Seal) and
validates the (empty) ARC chain, checks SPF and DMARC; Postfix + OpenDKIM
verify the author's signature and make one RSA signature.

The same smtpload clients (tests/bench/smtpload.c) send the same 10 KB
DKIM-signed messages to each, in ONE run, interleaved: arcrelay, postfix,
arcrelay, postfix, ... (--rounds each).  Per run: messages/s accepted (250s
received), messages/s until the sink had them all, p50/p99 from the end of
DATA to the 250, and CPU per message from the start of the load until the
sink had every message (delivery included): for arcrelay the daemon's
process, for Postfix the master and every process under it plus both
OpenDKIMs, from /proc/PID/stat; a Postfix process that exits meanwhile
(smtpd, cleanup, smtp come and go) is counted through the master's cutime
and cstime, which take in a child's CPU when the master reaps it.  The
SMTP ceiling (the load straight into a sink) and the crypto ceiling
(`openssl speed -multi CORES rsa2048`, at the start and at the end) are
measured in the same run, as bench.py does.

Each sink keeps one message in --keep-every; at the end those are checked:
arcrelay's must carry a seal, an ARC chain and a DKIM signature that
dkimpy validates and an AAR with dkim=pass; Postfix's an Authentication-
Results from OpenDKIM saying dkim=pass for sender.example and a DKIM
signature of relay.example that dkimpy verifies.  Everything it started
is stopped at the end, also on errors and ^C.
"""

import argparse
import os
import pwd
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402
import dlib as D  # noqa: E402

PACKAGES = ("postfix", "opendkim")
POSTFIX_FIELDS = ("received", "authentication-results", "dkim-signature")


# ---- packages ---------------------------------------------------------------------

def installed(pkg):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True)
    return p.returncode == 0 and b"install ok installed" in p.stdout


def ensure_packages(may_install):
    """Install postfix and opendkim when missing, starting no service."""
    missing = [p for p in PACKAGES if not installed(p)]
    if not missing:
        return
    if not may_install or os.geteuid() != 0:
        raise SystemExit("bench_postfix: missing Debian packages: %s (run as root without "
                         "--no-install to have them installed)" % " ".join(missing))
    print("bench_postfix: installing %s (no configuration, no service started)"
          % " ".join(missing), flush=True)
    subprocess.run(["debconf-set-selections"], check=True,
                   input=b"postfix postfix/main_mailer_type select No configuration\n")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = "/usr/sbin/policy-rc.d"
    ours = not os.path.exists(policy)
    try:
        if ours:
            with open(policy, "w") as fh:
                fh.write("#!/bin/sh\n# bench_postfix.py: no service starts while it installs\n"
                         "exit 101\n")
            os.chmod(policy, 0o755)
        cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing
        if subprocess.run(cmd, env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
            subprocess.run(cmd, env=env, check=True)
    finally:
        if ours and os.path.exists(policy):
            os.unlink(policy)


# ---- processes ----------------------------------------------------------------------

def proc_table():
    """{pid: (ppid, user+system CPU seconds, reaped children's CPU seconds)}."""
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as fh:
                f = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(name)] = (int(f[1]), (int(f[11]) + int(f[12])) / hz,
                          (int(f[13]) + int(f[14])) / hz)
    return out


def tree_pids(table, root):
    """root and every process under it."""
    kids = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in table:
            out.append(p)
            todo.extend(kids.get(p, []))
    return out


def tree_cpu(roots):
    """CPU seconds of the processes under roots so far, own and reaped."""
    table = proc_table()
    return sum(table[p][1] + table[p][2] for r in roots for p in tree_pids(table, r))


def stop_proc(proc, timeout=10):
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class OpenDKIM:
    """One opendkim -f with its own configuration under WORK/NAME."""

    def __init__(self, work, name, mode, dns_port):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "sock")
        conf = ["Mode %s" % mode,
                "Socket local:%s" % self.sock,
                "UMask 000",                      # smtpd runs as postfix
                "PidFile %s/pid" % self.dir,
                "Background no",
                "Syslog no",
                "AuthservID %s" % D.AUTHSERV_ID,
                # libunbound's forwarder, ADDR@PORT as ub_ctx_set_fwd reads it.
                # (With a ResolverConfiguration file instead, the verifier
                # died under load: "fatal flex scanner internal error".)
                "Nameservers 127.0.0.1@%d" % dns_port,
                "MinimumKeyBits 1024",
                "Canonicalization relaxed/relaxed",
                "SignatureAlgorithm rsa-sha256"]
        if mode == "v":
            # Mail from InternalHosts is for signing, not verifying: none is.
            conf.append("InternalHosts 192.0.2.1")
        else:
            with open(os.path.join(self.dir, "keytable"), "w") as fh:
                fh.write("relay %s:%s:%s/keys/%s.private\n"
                         % (D.RELAY_DOMAIN, D.RELAY_SELECTOR, work, D.RELAY_SELECTOR))
            with open(os.path.join(self.dir, "signingtable"), "w") as fh:
                fh.write("*@%s relay\n" % D.SENDER_DOMAIN)
            conf += ["KeyTable file:%s/keytable" % self.dir,
                     # The key's path runs through /tmp, writable by all,
                     # which the default refuses.
                     "RequireSafeKeys no",
                     "SigningTable refile:%s/signingtable" % self.dir,
                     "InternalHosts 127.0.0.1"]
        self.conf = os.path.join(self.dir, "opendkim.conf")
        with open(self.conf, "w") as fh:
            fh.write("# written by tests/daemon/bench_postfix.py\n" + "\n".join(conf) + "\n")
        self.log = os.path.join(self.dir, "opendkim.log")
        self.proc = subprocess.Popen(["/usr/sbin/opendkim", "-f", "-x", self.conf],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        if not D.wait_for(lambda: self.proc.poll() is not None or os.path.exists(self.sock),
                          10, 0.05) or self.proc.poll() is not None:
            raise RuntimeError("opendkim (%s) did not start: see %s" % (mode, self.log))

    def stop(self):
        stop_proc(self.proc)


class Postfix:
    """A private Postfix instance: WORK/postfix/{etc,queue,data}."""

    def __init__(self, work, port, sink_port, milters):
        top = os.path.join(work, "postfix")
        self.etc, self.queue = os.path.join(top, "etc"), os.path.join(top, "queue")
        self.data = os.path.join(top, "data")
        for d in (self.etc, self.queue, self.data):
            os.makedirs(d)
        pw = pwd.getpwnam("postfix")
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        self.port, self.log = port, os.path.join(top, "maillog")
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue, "data_directory": self.data,
            "maillog_file": self.log, "maillog_file_prefixes": top,
            "myhostname": D.HOSTNAME, "mydomain": D.RELAY_DOMAIN,
            "inet_interfaces": "127.0.0.1", "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            # Like arcrelay: mail for example.net only, on to the sink.
            "mydestination": "", "local_recipient_maps": "", "alias_maps": "",
            "alias_database": "", "local_transport": "error:5.1.1 no local delivery",
            "relay_domains": D.RCPT_DOMAIN,
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "relayhost": "[127.0.0.1]:%d" % sink_port,
            "smtp_tls_security_level": "none", "smtpd_tls_security_level": "none",
            "message_size_limit": str(20 << 20),
            "smtpd_milters": ", ".join("unix:%s" % m for m in milters),
            "non_smtpd_milters": "", "milter_default_action": "tempfail",
            "biff": "no",
        }
        with open(os.path.join(self.etc, "main.cf"), "w") as fh:
            fh.write("# written by tests/daemon/bench_postfix.py\n")
            for k, v in main.items():
                fh.write("%s = %s\n" % (k, v))
        # Upstream's defaults (no chroot), only the services this needs.
        services = [("127.0.0.1:%d" % port, "inet", "n", "-", "n", "-", "-", "smtpd"),
                    ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
                    ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
                    ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
                    ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
                    ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
                    ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
                    ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
                    ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
                    ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
                    ("smtp", "unix", "-", "-", "n", "-", "-", "smtp"),
                    ("relay", "unix", "-", "-", "n", "-", "-", "smtp"),
                    ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
                    ("error", "unix", "-", "-", "n", "-", "-", "error"),
                    ("retry", "unix", "-", "-", "n", "-", "-", "error"),
                    ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
                    ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
                    ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
                    ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd")]
        with open(os.path.join(self.etc, "master.cf"), "w") as fh:
            fh.write("# written by tests/daemon/bench_postfix.py\n")
            for s in services:
                fh.write("%-22s %-10s %-3s %-3s %-3s %-6s %-3s %s\n" % s)
        self.master = None

    def postfix(self, *args, timeout=60):
        return subprocess.run(["/usr/sbin/postfix", "-c", self.etc] + list(args),
                              capture_output=True, timeout=timeout)

    def start(self):
        p = self.postfix("start")
        pidf = os.path.join(self.queue, "pid", "master.pid")
        ok = D.wait_for(lambda: os.path.exists(pidf) and D.port_open(self.port), 20, 0.1)
        if p.returncode != 0 or not ok:
            raise RuntimeError("postfix -c %s start failed (status %d): %s" % (
                self.etc, p.returncode, (p.stdout + p.stderr).decode("latin-1")[-1500:]))
        with open(pidf) as fh:
            self.master = int(fh.read().strip())

    def queued(self):
        """Messages still in the queue (incoming, active, deferred)."""
        n = 0
        for q in ("incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.queue, q)):
                n += len(files)
        return n

    def deferred(self):
        return sum(len(f) for _, _, f in os.walk(os.path.join(self.queue, "deferred")))

    def stop(self):
        if self.master is None:
            return
        table = proc_table()
        pids = tree_pids(table, self.master)
        self.postfix("stop")
        if not D.wait_for(lambda: not any(os.path.exists("/proc/%d" % p) for p in pids),
                          20, 0.1):
            for p in pids:      # those it did not stop in time: ours, by pid
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.master = None


# ---- the checks on kept messages ------------------------------------------------------

def unstuff(raw):
    """A message as the sink kept it (dot-stuffed, CRLF . CRLF at the end)
    as the relay meant it."""
    if raw.endswith(b"\r\n.\r\n"):
        raw = raw[:-3]
    if raw.startswith(b".."):
        raw = raw[1:]
    return raw.replace(b"\r\n..", b"\r\n.")


def kept(sinkdir):
    return [os.path.join(sinkdir, n) for n in sorted(os.listdir(sinkdir),
                                                     key=lambda n: int(n.split(".")[0]))]


def postfix_problems(data, expect, zone):
    """What is wrong with one message Postfix + OpenDKIM delivered."""
    fields, why = D.prepended_fields(data, expect)
    if fields is None:
        return [why]
    problems = []
    names = [n for n, _ in fields]
    for n in names:
        if n not in POSTFIX_FIELDS:
            problems.append("unexpected field prepended: %s" % n)
    for n in POSTFIX_FIELDS:
        if names.count(n) != 1:
            problems.append("%d %s fields prepended, want 1" % (names.count(n), n))
    ar = [D.unfold(raw).split(":", 1)[1].strip() for n, raw in fields
          if n == "authentication-results"]
    if ar and not re.match(r"(?is)^%s\s*;.*\bdkim=pass\b.*\bheader\.d=%s\b"
                           % (re.escape(D.AUTHSERV_ID), re.escape(D.SENDER_DOMAIN)), ar[0]):
        problems.append("OpenDKIM's Authentication-Results lacks dkim=pass for %s: %s"
                        % (D.SENDER_DOMAIN, ar[0]))
    seen = D.dkimpy_verdicts(data, zone)
    for dom, who in ((D.RELAY_DOMAIN, "OpenDKIM's"), (D.SENDER_DOMAIN, "the author's")):
        ok, why = seen.get(dom, (False, "no signature"))
        if not ok:
            problems.append("dkimpy: %s signature (d=%s) does not verify %s" % (who, dom, why))
    return problems


def check_kept(files, originals, zone, relay):
    """(messages checked, [problems]) for the kept messages of one relay."""
    want = {"dkim": "pass", "spf": "pass", "dmarc": "pass"}
    problems = []
    for f in files:
        with open(f, "rb") as fh:
            data = unstuff(fh.read())
        expect = originals.get(D.message_ids(data))
        if expect is None:
            problems.append("%s: not one of the messages sent" % f)
            continue
        if relay == "arcrelay":
            probs = D.check_relayed(data, expect, zone, want)
        else:
            probs = postfix_problems(data, expect, zone)
        problems += ["%s: %s" % (f, p) for p in probs]
    return len(files), problems


# ---- the runs ---------------------------------------------------------------------------

class Relay:
    """What a measured run needs of a relay: its port, its sink, the CPU
    seconds of its processes so far ({part: seconds}), and whether its
    queue is empty."""

    def __init__(self, name, port, sink, cpu, idle):
        self.name, self.port, self.sink, self.cpu, self.idle = name, port, sink, cpu, idle


def measure(relay, load, messages):
    """One run: (Load, msgs/s until delivered, CPU ms per message, machine
    busy, {part: CPU ms per message})."""
    if not D.wait_for(relay.idle, 120, 0.2):
        raise RuntimeError("%s: the queue did not drain before the run" % relay.name)
    before = B.sink_count(relay.sink)
    cpu0, mach0 = relay.cpu(), B.machine_cpu()
    r = load(relay.port, messages)
    if not D.wait_for(lambda: B.sink_count(relay.sink) - before >= r.n, 300, 0.05):
        raise RuntimeError("%s: the sink got %d of %d messages in 300 s" % (
            relay.name, B.sink_count(relay.sink) - before, r.n))
    t_all = time.time()
    cpu1, mach1 = relay.cpu(), B.machine_cpu()
    e2e = (B.sink_count(relay.sink) - before) / (t_all - r.t0)
    busy = (mach1[0] - mach0[0]) / max(1, mach1[1] - mach0[1])
    parts = {k: 1000 * (cpu1[k] - cpu0[k]) / max(1, r.n) for k in cpu0}
    return r, e2e, sum(parts.values()), busy, parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    B.common_args(ap)
    ap.add_argument("--rounds", type=int, default=2, help="runs of each relay, interleaved")
    ap.add_argument("--keep-every", type=int, default=50,
                    help="the sinks keep one message in this many, checked at the end")
    ap.add_argument("--no-install", action="store_true",
                    help="stop if postfix or opendkim is missing instead of installing them")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_postfix: run as root (Postfix's master must be)")
    ensure_packages(not a.no_install)
    B.raise_nofile()
    work, arcrelay, smtpload, zone = B.prepare(a, "c", prefix="arcrelay-bench-postfix-")
    os.chmod(work, 0o755)       # Postfix's processes (user postfix) work in it
    d = os.path.dirname(work)
    while d != "/":
        if not os.stat(d).st_mode & 0o001:
            raise SystemExit("bench_postfix: user postfix cannot enter %s: choose a --work "
                             "whose parent directories others may search" % d)
        d = os.path.dirname(d)
    print("bench_postfix: work in %s; %d clients, %d messages of %d bytes a run, %d rounds, "
          "%d cores" % (work, a.clients, a.messages, a.size, a.rounds, os.cpu_count()),
          flush=True)
    print("bench_postfix: Debian 12 has no OpenARC: arcrelay makes 3 RSA signatures a message "
          "(DKIM, AMS, AS) and validates ARC, SPF and DMARC; Postfix + OpenDKIM verify DKIM "
          "and make 1", flush=True)
    load0 = os.getloadavg()
    pool = B.make_pool(work, 64, a.size)
    originals = {D.message_ids(unstuff(m)): unstuff(m) for m in pool}
    pooldir = B.write_pool(work, pool)
    load = lambda port, n: B.run_load_c(smtpload, port, pooldir, a.clients, n)  # noqa: E731

    started = []
    res = {"runs": []}
    try:
        ub = D.Unbound(work)
        started.append(ub)
        sink = B.CSink(work, smtpload)
        started.append(sink)
        sinks = {}
        for name in ("arcrelay", "postfix"):
            d = os.path.join(work, "kept-" + name)
            os.makedirs(d)
            sinks[name] = B.CSink(work, smtpload, "sink-" + name, keep=d,
                                  keep_every=a.keep_every)
            started.append(sinks[name])
        aport = D.free_port()
        config = D.write_config(work, aport, sinks["arcrelay"].port, ub.port,
                                workers=a.workers, idle_timeout="10m",
                                extra_server="max_sessions = %d\nmax_sessions_per_ip = %d\n"
                                % (a.clients + 100, a.clients + 100))
        dm = D.Daemon(arcrelay, work, config, aport)
        dm.start(preexec=B.raise_nofile)
        started.append(dm)
        verifier = OpenDKIM(work, "opendkim-verify", "v", ub.port)
        started.append(verifier)
        signer = OpenDKIM(work, "opendkim-sign", "s", ub.port)
        started.append(signer)
        pf = Postfix(work, D.free_port(), sinks["postfix"].port, (verifier.sock, signer.sock))
        started.append(pf)
        pf.start()
        spool_queue = os.path.join(work, "spool", "queue")
        relays = [Relay("arcrelay", aport, sinks["arcrelay"],
                        lambda: {"arcrelay": tree_cpu([dm.proc.pid])},
                        lambda: not os.listdir(spool_queue)),
                  Relay("postfix", pf.port, sinks["postfix"],
                        lambda: {"postfix": tree_cpu([pf.master]),
                                 "opendkim verify": tree_cpu([verifier.proc.pid]),
                                 "opendkim sign": tree_cpu([signer.proc.pid])},
                        lambda: pf.queued() == 0)]

        # The SMTP ceiling, then a warm-up of each relay (process pools,
        # DNS caches), then the interleaved runs.
        load(sink.port, min(200, a.messages))
        res["sink"] = B.run_load_c(smtpload, sink.port, pooldir, a.clients, a.messages)
        print("bench_postfix: straight to the sink: %.0f msg/s" % res["sink"].rate, flush=True)
        res["crypto"] = [B.crypto_ceiling()]
        for rl in relays:
            w = load(rl.port, min(200, a.messages))
            print("bench_postfix: warm-up of %s: %d accepted, %d errors%s" % (
                rl.name, w.n, w.nerr, (" (first: %s)" % w.errs[0]) if w.errs else ""),
                flush=True)
        for rnd in range(a.rounds):
            for rl in relays:
                m = measure(rl, load, a.messages)
                res["runs"].append((rl.name, rnd + 1) + m)
                r = m[0]
                print("bench_postfix: round %d %-8s %6.0f msg/s accepted, %6.0f msg/s "
                      "delivered, p50 %.1f ms, p99 %.1f ms, %.2f ms CPU/msg (%s), %d errors%s"
                      % (rnd + 1, rl.name, r.rate, m[1], r.p50 * 1000, r.p99 * 1000, m[2],
                         ", ".join("%s %.2f" % kv for kv in m[4].items()),
                         r.nerr, (" (first: %s)" % r.errs[0]) if r.errs else ""), flush=True)
        res["crypto"].append(B.crypto_ceiling())
        res["deferred"] = pf.deferred()
        res["rss"] = dm.rss_kb("VmHWM")
        for name in ("arcrelay", "postfix"):
            res["check_" + name] = check_kept(kept(os.path.join(work, "kept-" + name)),
                                              originals, zone, name)
        res["load"] = (load0, os.getloadavg())
    finally:
        for p in reversed(started):
            try:
                p.kill() if isinstance(p, D.Daemon) else p.stop()
            except Exception as e:
                print("bench_postfix: stopping %s: %s" % (type(p).__name__, e), flush=True)
    return print_table(res, work)


def spread(v, fmt):
    v = [x for x in v if x == x]
    if not v:
        return "-"
    lo, hi = min(v), max(v)
    return fmt % lo if fmt % lo == fmt % hi else (fmt % lo) + "-" + (fmt % hi)


def print_table(res, work):
    runs = res["runs"]
    got = [r[1] for r in res["crypto"] if r[1]]
    ceil = sum(got) / len(got) / 3 if got else float("nan")
    col = {}
    for name in ("arcrelay", "postfix"):
        mine = [r for r in runs if r[0] == name]
        col[name] = [spread([r[2].rate for r in mine], "%.0f"),
                     spread([r[3] for r in mine], "%.0f"),
                     spread([r[2].p50 * 1000 for r in mine], "%.1f"),
                     spread([r[2].p99 * 1000 for r in mine], "%.1f"),
                     spread([r[4] for r in mine], "%.2f"),
                     spread([100 * r[5] for r in mine], "%.0f%%"),
                     str(sum(r[2].nerr for r in mine))]
    sl = res["sink"]
    rows = ["messages/s (250s received)", "messages/s (until the sink had all)",
            "latency p50, end of DATA to 250 (ms)", "latency p99 (ms)",
            "CPU per message (ms, to delivery)", "machine busy", "errors"]
    other = [("%.0f" % sl.rate, "%.0f" % ceil), ("-", "-"), ("%.1f" % (sl.p50 * 1000), "-"),
             ("%.1f" % (sl.p99 * 1000), "-"), ("-", "-"), ("-", "-"), (str(sl.nerr), "-")]
    print()
    print("%-38s %13s %13s %13s %15s" % ("", "arcrelay", "postfix", "SMTP ceiling",
                                         "crypto ceiling"))
    for i, label in enumerate(rows):
        print("%-38s %13s %13s %13s %15s" % (label, col["arcrelay"][i], col["postfix"][i],
                                             other[i][0], other[i][1]))
    print()
    print("runs, in order: " + ", ".join("%s %.0f" % (r[0], r[2].rate) for r in runs))
    print("crypto ceiling: openssl speed -multi %d rsa2048: %s signs/s / 3 (arcrelay's three "
          "signatures) = %.0f messages/s; Postfix + OpenDKIM sign once"
          % (res["crypto"][0][0], ", ".join("%.0f" % g for g in got), ceil))
    if len(got) > 1 and max(got) > 1.15 * min(got):
        print("warning: the crypto runs differ by %.0f%%: the machine's speed changed meanwhile"
              % (100 * (max(got) / min(got) - 1)))
    a = [r[2].rate for r in runs if r[0] == "arcrelay"]
    p = [r[2].rate for r in runs if r[0] == "postfix"]
    if a and p and min(p) > 0:
        print("arcrelay / postfix, accepted messages/s: %.2f (means)"
              % ((sum(a) / len(a)) / (sum(p) / len(p))))
    pf = [r[6] for r in runs if r[0] == "postfix"]
    if pf:
        print("postfix CPU per message, means: " + ", ".join(
            "%s %.2f ms" % (k, sum(p[k] for p in pf) / len(pf)) for k in pf[0]) +
            " (the master's share takes in its reaped children's)")
    print("postfix: %d messages left deferred; arcrelay's peak RSS %.1f MB"
          % (res.get("deferred", -1), (res.get("rss") or 0) / 1024.0))
    bad = sum(r[2].nerr for r in runs) + res["sink"].nerr
    if bad:
        print("warning: %d messages were refused or lost: the figures above do not compare "
              "like with like" % bad)
    for name in ("arcrelay", "postfix"):
        n, probs = res.get("check_" + name, (0, ["not checked"]))
        bad += len(probs)
        print("checked %d kept messages of %s: %s" % (n, name, "all sealed/signed and verified"
                                                      if not probs and n else
                                                      "%d problems" % len(probs)))
        for pr in probs[:5]:
            print("    " + pr)
    if "load" in res:
        print("load average (1, 5, 15 min): %s at the start, %s at the end"
              % tuple(" ".join("%.2f" % x for x in la) for la in res["load"]))
    print("logs: %s/daemon.log, %s/postfix/maillog, %s/opendkim-*/opendkim.log" % ((work,) * 3))
    return 1 if bad else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
