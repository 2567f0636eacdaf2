#!/usr/bin/python3
"""rspamd_driver.py - a private Rspamd 3.4 as a third DKIM/ARC verifier.

Two steps; rspamd.sh (sourced by the run.sh scripts) calls them and owns
the rspamd process in between:

  rspamd_driver.py conf DIR --zone ZONE [--zone ZONE ...]
      Write DIR/rspamd.conf and the runtime directories under DIR.  One
      normal worker on a free loopback port (printed on stdout), the dkim
      C module and the arc Lua plugin, nothing else (no controller, proxy,
      fuzzy or redis).  DNS: every TXT record of the zone files becomes an
      rspamd `fake_records` entry, and the only nameserver is a loopback
      UDP port that the scan step serves, so nothing leaves the machine.
      Prints the worker's port and that DNS port.

  rspamd_driver.py scan --port P --dns-port D --pid PID --list LIST --out JSONL
      Answer every DNS question on 127.0.0.1:D with REFUSED and log its
      name to OUT.dns (these are the names missing from fake_records).
      Poll GET /ping until the worker answers (giving up when PID has gone
      or after --wait seconds), then POST every message named in LIST (one
      path a line, or "id<TAB>path") to /checkv2 and write one JSON line
      per message:
        {"id": ID, "file": PATH, "arc": "allow|reject|invalid|dnsfail|na|missing",
         "arc_detail": ..., "dkim": "allow|reject|tempfail|permfail|na|missing",
         "dkim_detail": ..., "symbols": {NAME: [options], ...}}
      or {"id": ID, "file": PATH, "error": ...} when the scan itself failed.
      ID is the path when LIST has one column.

The verdict names are the lower-cased symbol names without their prefix
(ARC_ALLOW -> allow, R_DKIM_TEMPFAIL -> tempfail); "missing" means no
symbol of the family came back.
"""

import argparse
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_common as ic  # noqa: E402

ARC_SYMBOLS = {"ARC_ALLOW": "allow", "ARC_REJECT": "reject", "ARC_INVALID": "invalid",
               "ARC_DNSFAIL": "dnsfail", "ARC_NA": "na"}
DKIM_SYMBOLS = {"R_DKIM_ALLOW": "allow", "R_DKIM_REJECT": "reject",
                "R_DKIM_TEMPFAIL": "tempfail", "R_DKIM_PERMFAIL": "permfail",
                "R_DKIM_NA": "na"}
# A family can give more than one symbol when a message carries several
# signatures; the worst one is the verdict.
ARC_ORDER = ["invalid", "reject", "dnsfail", "allow", "na"]
DKIM_ORDER = ["reject", "permfail", "tempfail", "allow", "na"]

CONF = """# Written by rspamd_driver.py for one test run; see that file.
options {{
  filters = "dkim";
  pidfile = "{run}/rspamd.pid";
  cache_file = "{db}/symbols.cache";
  hs_cache_dir = "{db}";
  tempdir = "{tmp}";
  # The stock list of 9600 public suffixes costs rspamd 3.4 tens of
  # seconds of start-up; a verifier of signatures needs none of them.
  url_tld = "{dir}/tld.dat";
  allow_raw_input = true;
  task_timeout = 10s;
  dns {{
    # The scan step refuses every question here: a name missing from
    # fake_records fails with a DNS error and never reaches a resolver.
    nameserver = ["127.0.0.1:{dns_port}"];
    timeout = 1s;
    retransmits = 1;
    sockets = 1;
    fake_records = [
{records}
    ];
  }}
}}
logging {{
  type = "file";
  filename = "{log}/rspamd.log";
  level = "info";
}}
worker "normal" {{
  bind_socket = "127.0.0.1:{port}";
  count = 1;
  mime = true;
}}
modules {{
  path = "${{PLUGINSDIR}}";
}}
dkim {{
  # The packaged defaults (modules.d/dkim.conf), as a receiver runs them.
  time_jitter = 6h;
  skip_multi = false;
  trusted_only = false;
}}
arc {{
  # Verify only; this instance holds no keys and seals nothing.
  sign_local = false;
  sign_inbound = false;
  sign_authenticated = false;
}}
"""


# Fields that rspamd 3.4 keeps only once per message (To, Cc, Subject...,
# each tried with a message carrying it twice): a signature whose h= names
# one of them fails in rspamd when the message has two, where RFC 6376
# section 5.4.2 says to sign and verify the instances from the bottom up.
SINGLE_FIELDS = {b"from", b"to", b"cc", b"bcc", b"subject", b"message-id", b"return-path"}


def single_fields_signed(data, sig_name):
    """Names in h= of the first `sig_name` field of the message (the
    newest one) that are in SINGLE_FIELDS and occur more than once."""
    head = ic.split_message(data)[0]
    fields = ic.header_fields(head)
    count = {}
    for f in fields:
        count[ic.field_name(f)] = count.get(ic.field_name(f), 0) + 1
    for f in fields:
        if ic.field_name(f) == sig_name:
            h = ic.tag_value(f, b"h") or b""
            names = {b"".join(n.split()).lower() for n in h.split(b":")}
            return sorted(n.decode() for n in names
                          if n in SINGLE_FIELDS and count.get(n, 0) > 1)
    return []


def ucl_string(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def free_port(kind):
    """A port number nothing is bound to on 127.0.0.1 right now."""
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def fake_records(zones):
    """UCL fake_records entries for every TXT record of the zone files.
    rspamd 3.4 takes one string per reply, so a record's strings are
    joined, as a DKIM key lookup joins them (RFC 6376 section 3.6.2.2)."""
    seen = {}
    for path in zones:
        for name, recs in ic.read_zone_strings(path).items():
            seen.setdefault(name, []).extend(b"".join(r).decode("latin-1") for r in recs)
    out = []
    for name in sorted(seen):
        out.append("      { name = %s; type = \"txt\"; replies = [%s]; }" % (
            ucl_string(name), ", ".join(ucl_string(r) for r in seen[name])))
    return "\n".join(out), len(seen)


def cmd_conf(args):
    d = os.path.abspath(args.dir)
    paths = {k: os.path.join(d, k) for k in ("run", "db", "tmp", "log")}
    for p in paths.values():
        os.makedirs(p, exist_ok=True)
    with open(os.path.join(d, "tld.dat"), "w") as fh:
        fh.write("example\ncom\norg\nnet\n")
    records, n = fake_records(args.zone)
    port, dns_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    with open(os.path.join(d, "rspamd.conf"), "w") as fh:
        fh.write(CONF.format(dir=d, port=port, dns_port=dns_port, records=records, **paths))
    print("rspamd: %d DNS names in fake_records" % n, file=sys.stderr)
    print(port, dns_port)
    return 0


def dns_qname(msg):
    """The first question's name of a DNS query, or None."""
    pos, labels = 12, []
    while pos < len(msg) and len(labels) < 128:
        n = msg[pos]
        if n == 0:
            return ".".join(labels).lower()
        if n > 63 or pos + 1 + n > len(msg):
            return None
        labels.append(msg[pos + 1:pos + 1 + n].decode("latin-1"))
        pos += 1 + n
    return None


def dns_refuser(sock, log):
    """Answer each query on `sock` with its own header and question and
    RCODE 5 (REFUSED), and append the name asked to `log`."""
    while True:
        try:
            msg, peer = sock.recvfrom(4096)
        except OSError:
            return
        if len(msg) < 12:
            continue
        ident, flags, qd = struct.unpack("!HHH", msg[:6])
        name = dns_qname(msg)
        log.write("%s\n" % name)
        log.flush()
        # QR=1, the query's opcode and RD, RA=1, RCODE=REFUSED; the
        # question is echoed and no other section is sent.
        reply_flags = 0x8000 | (flags & 0x7900) | 0x0080 | 5
        end = msg.find(b"\0", 12)
        question = msg[12:end + 5] if qd == 1 and end > 0 else b""
        header = struct.pack("!HHHHHH", ident, reply_flags, 1 if question else 0, 0, 0, 0)
        try:
            sock.sendto(header + question, peer)
        except OSError:
            pass


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child that has exited but is not yet reaped is a zombie: gone.
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait_ready(port, pid, limit):
    """Poll /ping until rspamd answers 'pong'.  Returns None or a reason."""
    url = "http://127.0.0.1:%d/ping" % port
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if pid and not pid_alive(pid):
            return "rspamd (pid %d) exited before it answered on port %d" % (pid, port)
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.read().strip() == b"pong":
                    return None
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    return "rspamd did not answer on port %d within %d s" % (port, limit)


def verdict(symbols, table, order):
    got = {}
    for name, short in table.items():
        if name in symbols:
            opts = symbols[name].get("options") or []
            got[short] = "; ".join(str(o) for o in opts)
    for short in order:
        if short in got:
            return short, got[short]
    return "missing", ""


def scan_one(port, path):
    with open(path, "rb") as fh:
        data = fh.read()
    req = urllib.request.Request("http://127.0.0.1:%d/checkv2" % port, data=data,
                                 headers={"Pass": "all"})
    with urllib.request.urlopen(req, timeout=30) as r:
        reply = json.loads(r.read().decode("utf-8", "replace"))
    symbols = reply.get("symbols") or {}
    rec = {"file": path}
    rec["arc"], rec["arc_detail"] = verdict(symbols, ARC_SYMBOLS, ARC_ORDER)
    rec["dkim"], rec["dkim_detail"] = verdict(symbols, DKIM_SYMBOLS, DKIM_ORDER)
    rec["symbols"] = {k: v.get("options") or [] for k, v in sorted(symbols.items())}
    return rec


def cmd_scan(args):
    with open(args.list) as fh:
        items = [l.rstrip("\n").split("\t") for l in fh if l.strip()]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.dns_port))
    dns_log = open(args.out + ".dns", "w")
    threading.Thread(target=dns_refuser, args=(sock, dns_log), daemon=True).start()
    why = wait_ready(args.port, args.pid, args.wait)
    with open(args.out, "w") as out:
        for item in items:
            path = item[-1]
            if why:
                rec = {"file": path, "error": why}
            else:
                try:
                    rec = scan_one(args.port, path)
                except (OSError, ValueError, urllib.error.URLError) as ex:
                    rec = {"file": path, "error": "%s: %s" % (type(ex).__name__, ex)}
            rec["id"] = item[0]
            out.write(json.dumps(rec, sort_keys=True) + "\n")
    if why:
        print("rspamd: " + why, file=sys.stderr)
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("conf")
    c.add_argument("dir")
    c.add_argument("--zone", action="append", required=True)
    s = sub.add_parser("scan")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--dns-port", type=int, required=True)
    s.add_argument("--pid", type=int, default=0)
    s.add_argument("--list", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--wait", type=int, default=60)
    args = ap.parse_args()
    return {"conf": cmd_conf, "scan": cmd_scan}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
