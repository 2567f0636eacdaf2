#!/usr/bin/python3
"""cli.py - the `arcrelay survive` command line (ctest survive_cli).

    cli.py ARCRELAY WORKDIR

Only the binary and a zone file: no daemon, no DNS server, no Python
modules beyond the standard library, so it runs in the sanitizer build
too.  Exit statuses, the JSON contract, refusals the daemon would make at
RCPT or after DATA (a non-member post, a forged SRS address, a recipient no
rule claims, a loop), the text table, --output, stdin and --now.  The last
line is "N passed, M failed"; exit 0 when nothing failed.
"""

import json
import os
import shutil
import subprocess
import sys

PASSED = FAILED = 0


def check(name, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print("PASS %s" % name, flush=True)
    else:
        FAILED += 1
        print("FAIL %s" % name, flush=True)
        for ln in str(detail).splitlines():
            print("     %s" % ln, flush=True)
    return ok


CONFIG = """[server]
hostname = mx.lists.example
authserv_id = lists.example
spool = %(w)s/spool

[signing]
domain = lists.example
selector = relay1
key = %(w)s/relay1.private

[srs]
domain = fwd.example
secret = survive-cli-secret-0123456789

[domain example.net]

[list talk@lists.example]
members = bob@example.net
posters = any
footer = --\\nThe talk list.

[list closed@lists.example]
members = bob@example.net, alice@preject.example

[list loud@lists.example]
members = bob@example.net
posters = any
from_rewrite = always
dmarc_reject = relay

[forward fw@alias.example]
to = carol@example.net
"""

ZONE = """preject.example. 300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
_dmarc.preject.example. 300 IN TXT "v=DMARC1; p=reject"
lists.example. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.lists.example. 300 IN TXT "v=DMARC1; p=quarantine"
fwd.example. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
"""


def message(extra=""):
    return ("From: Alice <alice@preject.example>\r\nTo: talk@lists.example\r\n"
            "Subject: hello\r\nDate: Mon, 02 Sep 2024 10:00:00 +0000\r\n"
            "Message-ID: <cli.1@preject.example>\r\n%s\r\n"
            "Hello, list.\r\n" % extra).encode()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    arcrelay, w = sys.argv[1], os.path.abspath(sys.argv[2])
    if os.path.exists(w):
        shutil.rmtree(w)
    os.makedirs(w)

    def path(name):
        return os.path.join(w, name)

    subprocess.run([arcrelay, "keygen", "--domain", "lists.example", "--selector", "relay1",
                    "--out", w], check=True, capture_output=True)
    with open(path("arcrelay.conf"), "w") as fh:
        fh.write(CONFIG % {"w": w})
    with open(path("norules.conf"), "w") as fh:
        fh.write(CONFIG.split("[srs]")[0] % {"w": w})
    with open(path("zone.txt"), "w") as fh:
        fh.write(ZONE)
    files = {"m.eml": message(), "loop.eml": message("List-Id: <talk.lists.example>\r\n"),
             "empty.eml": b"", "nohead.eml": b"just some text\r\nand more\r\n"}
    for name, data in files.items():
        with open(path(name), "wb") as fh:
            fh.write(data)

    base = [arcrelay, "survive", "--config", path("arcrelay.conf"), "--dns-file",
            path("zone.txt")]
    env = ["--relay-ip", "127.0.0.1", "--client-ip", "127.0.0.2", "--helo", "client.example"]

    def run(args, stdin=None):
        p = subprocess.run(args, input=stdin, capture_output=True, timeout=60)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8",
                                                                                  "replace")

    def js(args, stdin=None):
        rc, out, err = run(base + args + ["--json"], stdin)
        try:
            return rc, json.loads(out), err
        except ValueError:
            return rc, None, "stdout %r stderr %r" % (out, err)

    # --- usage and exit statuses
    rc, out, err = run([arcrelay, "survive", "--help"])
    check("--help: exit 0, usage on stdout, nothing on stderr",
          rc == 0 and out.startswith("usage: arcrelay survive") and "Verdicts:" in out and
          not err, "exit %d\n%s%s" % (rc, out, err))
    for label, args in [("an unknown option", ["--bogus"]),
                        ("two messages", [path("m.eml"), path("m.eml")]),
                        ("--helo without --client-ip", ["--helo", "x.example", path("m.eml")]),
                        ("--now not a number", ["--now", "yesterday", path("m.eml")]),
                        ("--config missing", ["--config", path("nonexistent.conf"),
                                              path("m.eml")]),
                        ("no --rcpt and no rules to default to",
                         ["--config", path("norules.conf"), path("m.eml")]),
                        ("a file that does not exist", [path("nonexistent.eml")]),
                        ("a directory", [w]),
                        ("an empty file", [path("empty.eml")]),
                        ("not a message", [path("nohead.eml")]),
                        ("--output into a missing directory",
                         ["--rcpt", "talk@lists.example", "--output",
                          path("no/such/dir.eml"), path("m.eml")])]:
        rc, out, err = run(base + args)
        lines = err.strip().splitlines()
        check("bad usage or input, %s: exit 2, one line on stderr, nothing on stdout" % label,
              rc == 2 and not out and len(lines) >= 1 and
              (lines[0].startswith("arcrelay survive:") or lines[0].startswith("usage:") or
               lines[0].startswith("arcrelay: ") or "unrecognized option" in lines[0]),
              "exit %d\nstdout %r\nstderr %r" % (rc, out, err))
        if label == "a file that does not exist":
            check("a missing file is named in the error", "nonexistent.eml" in err, err)

    # --- the JSON contract
    rc, j, err = js(["--rcpt", "talk@lists.example"] + env + [path("m.eml")])
    keys = {"rcpt", "rule", "sender", "before", "after", "after_trusted_arc", "verdict", "reason"}
    check("JSON: exit 0 and the documented keys",
          rc == 0 and j is not None and keys <= set(j) and set(j) <= keys | {"note"},
          "exit %d %r %s" % (rc, j, err))
    if j:
        for side in ("before", "after"):
            check("JSON %s: the objects of `arcrelay verify --json`" % side,
                  set(j[side]) == {"dkim", "arc", "spf", "dmarc"} and
                  isinstance(j[side]["dkim"], list) and
                  {"result", "reason", "domain", "policy", "aligned_by"} <= set(j[side]["dmarc"]),
                  repr(j[side]))
        check("JSON: rcpt, rule and the first member's VERP bounces address as the sender",
              j["rcpt"] == "talk@lists.example" and j["rule"] == "list talk@lists.example" and
              j["sender"] == "talk-bounces+bob=example.net@lists.example", repr(j))
        check("JSON: the unpublished relay key is noted", "not in DNS" in j.get("note", ""),
              repr(j.get("note")))
        check("JSON: the list's post survives by its own signature (From rewritten for p=reject)",
              j["verdict"] == "survives-aligned-dkim" and
              j["after"]["dmarc"]["domain"] == "lists.example" and
              j["after"]["dmarc"]["aligned_by"] == "dkim", repr(j))
        check("JSON: before, SPF passed for the author from --client-ip",
              j["before"]["spf"]["result"] == "pass" and
              j["before"]["dmarc"]["result"] == "pass", repr(j["before"]))
    rc, j2, err = js(["--rcpt", "fw@alias.example"] + env + [path("m.eml")])
    check("JSON: an unsigned author through a forward with SRS survives only if ARC is trusted",
          rc == 0 and j2 and j2["verdict"] == "survives-if-arc-trusted" and
          j2["sender"].startswith("SRS0=") and j2["sender"].endswith("@fwd.example") and
          j2["after_trusted_arc"]["dmarc"]["result"] == "pass" and
          "RFC 7489" in j2["after_trusted_arc"]["dmarc"]["reason"],
          "exit %d %r %s" % (rc, j2, err))
    if j2 and j2.get("sender"):
        rc, j3, err = js(["--rcpt", j2["sender"]] + env + [path("m.eml")])
        check("JSON: a bounce to our SRS address goes back to the original sender",
              rc == 0 and j3 and j3.get("rule") == "relay" and "after" in j3,
              "exit %d %r %s" % (rc, j3, err))
    rc, j4, err = js(["--rcpt", "talk@lists.example"] + env + ["--mail-from", "",
                                                               path("m.eml")])
    check("JSON: the null sender may not post to a list (fails at RCPT)",
          rc == 0 and j4 and j4["verdict"] == "fails" and "refused at RCPT" in j4["reason"],
          "exit %d %r %s" % (rc, j4, err))
    rc, j5, err = js(env + [path("m.eml")])
    check("JSON: without --rcpt, the first list", rc == 0 and j5 and
          j5.get("rcpt") == "talk@lists.example", "exit %d %r %s" % (rc, j5, err))

    # --- refusals: what the daemon would refuse, survive calls `fails`
    for label, rcpt, mail_from, f, want in [
            ("a non-member post", "closed@lists.example", "mallory@other.example", "m.eml",
             "refused at RCPT: closed@lists.example accepts posts from its members only"),
            ("a loop (the list's List-Id is already there)", "talk@lists.example", None,
             "loop.eml", "550 5.4.6 mail loop"),
            ("a forged SRS address", "SRS0=abcd=AA=preject.example=alice@fwd.example", None,
             "m.eml", "refused at RCPT: no such address: "),
            ("a recipient no rule or [domain] claims", "bob@example.org", None, "m.eml",
             "refused at RCPT: relaying denied")]:
        args = ["--rcpt", rcpt] + env + (["--mail-from", mail_from] if mail_from else [])
        rc, j, err = js(args + [path(f)])
        check("%s: exit 0, verdict fails, %r" % (label, want),
              rc == 0 and j is not None and j["verdict"] == "fails" and
              j["reason"].startswith(want) and j["rcpt"] == rcpt,
              "exit %d %r %s" % (rc, j, err))
        rc, out, err = run(base + args + [path(f)])
        check("%s, as text: the reason and 'verdict: fails'" % label,
              rc == 0 and want in out and out.rstrip().endswith("verdict: fails"),
              "exit %d\n%s%s" % (rc, out, err))
    # A spoof (the envelope at another domain, so SPF does not align):
    # the default list refuses it as p=reject asks; one that relays it and
    # rewrites every From makes it pass, and the reason says so.
    spoof = ["--relay-ip", "127.0.0.1", "--client-ip", "127.0.0.2", "--helo",
             "client.example", "--mail-from", "mallory@other.example"]
    rc, j, err = js(["--rcpt", "talk@lists.example"] + spoof + [path("m.eml")])
    check("a spoof of a p=reject author: fails, 550 5.7.26 as the daemon answers",
          rc == 0 and j is not None and j["verdict"] == "fails" and
          j["reason"].startswith("550 5.7.26 "), "exit %d %r %s" % (rc, j, err))
    rc, j, err = js(["--rcpt", "loud@lists.example"] + spoof + [path("m.eml")])
    check("the spoof via from_rewrite = always, dmarc_reject = relay: passes, and the "
          "reason says it failed DMARC on arrival",
          rc == 0 and j is not None and j.get("before", {}).get("dmarc", {}).get("result") ==
          "fail" and j["after"]["dmarc"]["result"] == "pass" and
          "but it failed DMARC for preject.example on arrival" in j["reason"],
          "exit %d %r %s" % (rc, j, err))
    rc, j, err = js(["--rcpt", "closed@lists.example"] + env + [path("m.eml")])
    check("a member may post to the closed list", rc == 0 and j and "after" in j,
          "exit %d %r %s" % (rc, j, err))

    # --- the text table
    rc, out, err = run(base + ["--rcpt", "talk@lists.example"] + env + [path("m.eml")])
    lines = out.splitlines()
    check("text: exit 0, the header line, BEFORE and AFTER columns",
          rc == 0 and lines and lines[0].startswith("recipient talk@lists.example (list "
                                                    "talk@lists.example), envelope sender "
                                                    "<talk-bounces+bob=example.net@lists.example>") and
          any("BEFORE (as it arrived)" in ln and "AFTER (as downstream sees it)" in ln
              for ln in lines), out + err)
    rows = {ln.split()[0]: ln for ln in lines if ln[:1].isalpha() and len(ln.split()) > 1}
    check("text: rows dkim, arc, spf and dmarc",
          all(k in rows for k in ("dkim", "arc", "spf", "dmarc")), out)
    check("text: the dmarc row names both domains",
          "fail" not in rows.get("dmarc", "") and "pass for preject.example (p=reject)" in
          rows.get("dmarc", "") and "pass for lists.example (p=quarantine)" in
          rows.get("dmarc", ""), rows.get("dmarc"))
    check("text: the verdict line",
          any(ln.startswith("verdict: survives-aligned-dkim: the DKIM signature of "
                            "d=lists.example passes") for ln in lines), out)
    check("text: the ARC-trusted line", any(ln.startswith("DMARC where our ARC seal is "
                                                          "trusted: pass") for ln in lines), out)
    rc, out, err = run(base + ["--rcpt", "talk@lists.example", path("m.eml")])
    check("text without an envelope: SPF says which option is missing",
          rc == 0 and "none (no --client-ip)" in out and "none (no --relay-ip)" in out, out)

    # --- a message that arrives with an ARC chain (sealed by another hop)
    hop = path("hop")
    os.makedirs(hop)
    subprocess.run([arcrelay, "keygen", "--domain", "hop.example", "--selector", "h1",
                    "--out", hop], check=True, capture_output=True)
    with open(path("zone.txt"), "a") as fh, open(os.path.join(hop, "h1.txt")) as rec:
        fh.write(rec.read())
    p = subprocess.run([arcrelay, "seal", "--domain", "hop.example", "--selector", "h1",
                        "--key", os.path.join(hop, "h1.private"), "--authserv-id",
                        "hop.example", "--dns-file", path("zone.txt"), path("m.eml")],
                       capture_output=True)
    sealed = p.stdout
    with open(path("sealed.eml"), "wb") as fh:
        fh.write(sealed)
    with open(path("sealed-tampered.eml"), "wb") as fh:
        fh.write(sealed.replace(b"Hello, list.", b"Hello, LIST."))
    rc, j, err = js(["--rcpt", "fw@alias.example"] + env + [path("sealed.eml")])
    check("an arriving ARC chain (i=1) is extended: before pass with 1 set, after pass with 2",
          p.returncode == 0 and rc == 0 and j and j["before"]["arc"]["result"] == "pass" and
          j["before"]["arc"]["instances"] == 1 and j["after"]["arc"]["result"] == "pass" and
          j["after"]["arc"]["instances"] == 2 and j["verdict"] == "survives-if-arc-trusted",
          "exit %d %r %s %s" % (rc, j, err, p.stderr))
    rc, j, err = js(["--rcpt", "fw@alias.example"] + env + [path("sealed-tampered.eml")])
    check("a broken arriving chain: sealed cv=fail, so no ARC override (fails)",
          rc == 0 and j and j["before"]["arc"]["result"] == "fail" and
          j["after"]["arc"]["result"] == "fail" and j["verdict"] == "fails" and
          "the ARC chain does not validate" in j["reason"] and
          j["after_trusted_arc"]["dmarc"]["result"] == "fail",
          "exit %d %r %s" % (rc, j, err))

    # --- stdin, --output, --now
    fixed = ["--rcpt", "fw@alias.example", "--now", "1725271200"] + env
    rc1, out1, err1 = run(base + fixed + ["--output", path("o1.eml"), path("m.eml")])
    rc2, out2, err2 = run(base + fixed + ["--output", path("o2.eml"), "-"], files["m.eml"])
    rc3, out3, err3 = run(base + fixed + ["--output", path("o3.eml")], files["m.eml"])
    o = [open(path(n), "rb").read() if os.path.exists(path(n)) else b""
         for n in ("o1.eml", "o2.eml", "o3.eml")]
    check("stdin ('-' or no file) gives what the file gives; --now makes it reproducible",
          rc1 == rc2 == rc3 == 0 and out1 == out2 == out3 and o[0] == o[1] == o[2] and o[0],
          "%s%s%s" % (err1, err2, err3))
    check("--output: our ARC set and signature on top of the unchanged forwarded message",
          o[0].startswith(b"ARC-Seal: i=1;") and o[0].endswith(files["m.eml"]) and
          b"\r\nDKIM-Signature: " in o[0] and b"t=1725271200" in o[0], o[0][:400])

    print("%d passed, %d failed" % (PASSED, FAILED), flush=True)
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
