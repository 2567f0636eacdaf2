#!/usr/bin/python3
"""opendkim_driver.py - verify the interop cases with OpenDKIM.

  opendkim_driver.py --zone ZONE --list FILE --work DIR [--opendkim PATH]

OpenDKIM (Debian `opendkim`, 2.11) verifies every message named in FILE
(one path a line) in its test mode, `opendkim -t FILE,FILE,...`, one
process for the whole list.  Its only key source is ZONE: the TXT records
go into a TestPublicKeys file, so OpenDKIM asks no DNS server at all.
Prints one JSON line per message:

  {"file", "result": pass|fail|none|error, "detail", "ar"}

where "ar" is the dkim= entry of the Authentication-Results field OpenDKIM
would have added, and "detail" its own one-line verdict.  OpenDKIM's test
mode gives "signature verification failed" for a body hash mismatch as
well as for a bad b=, so the driver reports no reason class.
"""

import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_common as ic  # noqa: E402

# The verdict line of test mode, one per message: "opendkim: FILE: ...".
VERDICT = re.compile(r"^opendkim: (?P<file>.+?): (?P<what>verification \(.*\) "
                     r"(?:succeeded|failed.*)|message not signed|.*)$")
AR_DKIM = re.compile(r"\bdkim=(\w+)[^;']*")


def write_config(work, zone):
    keys = os.path.join(work, "opendkim-keys")
    with open(keys, "w") as fh:
        for name, recs in sorted(zone.items()):
            for txt in recs:
                if txt.startswith(b"v=DKIM1") and "_domainkey." in name:
                    fh.write("%s %s\n" % (name, txt.decode("ascii")))
    conf = os.path.join(work, "opendkim.conf")
    with open(conf, "w") as fh:
        fh.write("Mode v\nSyslog no\nTestPublicKeys %s\n"
                 "AlwaysAddARHeader yes\n" % keys)
    return conf


def run(opendkim, conf, paths):
    """Test-mode output of OpenDKIM over paths, as (stdout, stderr)."""
    p = subprocess.run([opendkim, "-x", conf, "-vv", "-t", ",".join(paths)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=600)
    return (p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"),
            p.returncode)


def parse(out, paths):
    """{path: {"result", "detail", "ar"}} from test-mode output: each
    message's A-R field (when it has a signature) comes before its
    verdict line."""
    res = {}
    ar = None
    for line in out.splitlines():
        if line.startswith("### INSHEADER:") or line.startswith("\t"):
            m = AR_DKIM.search(line)
            if m:
                ar = m.group(0).strip()
            continue
        m = VERDICT.match(line)
        if not m or m.group("file") not in paths:
            continue
        what = m.group("what")
        if what.startswith("verification") and what.endswith("succeeded"):
            result = "pass"
        elif what.startswith("verification"):
            result = "fail"
        elif what == "message not signed":
            result = "none"
        else:
            result = "error"
        if ar is not None:
            # The A-R entry has the last word when it disagrees.
            r = AR_DKIM.match(ar).group(1)
            if r in ("pass", "fail", "neutral", "permerror", "temperror", "policy"):
                result = "pass" if r == "pass" else "fail"
        res[m.group("file")] = {"result": result, "detail": what, "ar": ar or ""}
        ar = None
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zone", required=True)
    ap.add_argument("--list", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--opendkim", default="/usr/sbin/opendkim")
    a = ap.parse_args()
    with open(a.list) as fh:
        paths = [line.rstrip("\n") for line in fh if line.strip()]
    for p in paths:
        if "," in p:
            raise SystemExit("opendkim_driver: a path with a comma cannot go "
                             "through -t: %s" % p)
    conf = write_config(a.work, ic.read_zone(a.zone))
    got = {}
    todo = list(paths)
    # Batches keep the command line short whatever the corpus size. Test
    # mode stops at the first message it cannot take (exit 70, no
    # verdict): that one is an error, and the rest go in the next batch.
    while todo:
        batch = todo[:200]
        out, err, rc = run(a.opendkim, conf, batch)
        got.update(parse(out, set(batch)))
        k = 0
        while k < len(batch) and batch[k] in got:
            k += 1
        if k < len(batch):
            tail = [line for line in err.splitlines() if "returned" not in line]
            got[batch[k]] = {"result": "error", "ar": "",
                             "detail": "no verdict from opendkim (exit %d)%s"
                             % (rc, (": " + tail[-1][:200]) if tail else "")}
            k += 1
        todo = todo[k:]
    for p in paths:
        r = dict(got[p])
        r["file"] = p
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
