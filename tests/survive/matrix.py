#!/usr/bin/python3
"""matrix.py - the DMARC survival matrix (ctest survive_matrix; see README.md).

    matrix.py ARCRELAY WORKDIR

WORKDIR is wiped.  Author domains with p=none, p=quarantine, p=reject, an
SPF-only author, one without DMARC and a spoofed From are each sent through
the real daemon (unbound serving the test zone, the sink downstream) on four
paths: a list that rewrites From for DMARC, a forward with SRS, a list that
never rewrites From and a forward without SRS.  For every cell:

  1. `arcrelay survive --json` judges the message as it was sent;
  2. the message the sink received (and the one survive wrote with
     --output) is judged independently: dkimpy for every DKIM signature and
     for ARC, pyspf for SPF, python3-authheaders for DMARC, all resolving
     through the same unbound;
  3. survive's "after" must agree with both, its "before" with the AAR the
     daemon sealed and with authheaders on the original, its envelope sender
     with the sink's, and its verdict with the matrix below and with a
     verdict derived from the independent results alone.

Where authheaders departs from RFC 7489 (README.md, H1 and H2), the
departure itself is asserted.  Every check prints PASS or FAIL; the matrix
follows; the last line is "N passed, M failed".  Exit 0 when nothing failed.
"""

import contextlib
import copy
import logging
import os
import re
import shutil
import subprocess
import sys
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "daemon"))
import dlib as D  # noqa: E402


def need_packages():
    """The Debian packages this test judges with; a clear failure without
    them (contrib/install-deps.sh installs them all)."""
    missing = []
    for mod, pkg in (("dkim", "python3-dkim"), ("authres", "python3-authres"),
                     ("spf", "python3-spf"), ("authheaders", "python3-authheaders"),
                     ("dns.resolver", "python3-dnspython")):
        try:
            __import__(mod)
        except ImportError:
            missing.append(pkg)
    if not os.path.exists("/usr/sbin/unbound"):
        missing.append("unbound")
    if missing:
        print("survive_matrix: missing Debian packages: %s (contrib/install-deps.sh)"
              % " ".join(missing))
        print("0 passed, 1 failed")
        sys.exit(1)


need_packages()
import authheaders  # noqa: E402
import authheaders.dmarc_lookup as dl  # noqa: E402
import authheaders.findpsl  # noqa: E402
import authres  # noqa: E402
import dkim  # noqa: E402
import dns.resolver  # noqa: E402
from authres import DKIMAuthenticationResult  # noqa: E402

T = D.Tally()

# ---- the cast -------------------------------------------------------------
LISTS = "lists.example"         # [signing] domain, the lists' domain
SELECTOR = "relay1"
HOSTNAME = "mx.lists.example"
AUTHSERV_ID = "lists.example"
SRS_DOMAIN = "fwd.example"
ALIAS_DOMAIN = "alias.example"  # the forwards' addresses
AUTHOR_IP = "127.0.0.2"         # where the authors send from (their SPF)
RELAY_IP = "127.0.0.1"          # where the relay sends from (downstream SPF)
CLIENT_HELO = "client.example"
AUTHOR_SPF = "v=spf1 ip4:%s -all" % AUTHOR_IP
RELAY_SPF = "v=spf1 ip4:%s -all" % RELAY_IP

# name: (From domain, DMARC record or None, DKIM-signed, envelope sender)
AUTHORS = [
    ("p=none", "pnone.example", "v=DMARC1; p=none", True, None),
    ("p=quarantine", "pquar.example", "v=DMARC1; p=quarantine; adkim=s; aspf=s", True, None),
    ("p=reject", "preject.example", "v=DMARC1; p=reject", True, None),
    ("spf-only", "pspf.example", "v=DMARC1; p=reject", False, None),
    ("no-dmarc", "nodmarc.example", None, True, None),
    ("spoofed", "preject.example", None, False, "mallory@other.example"),
]

# name: (recipient, the member / target the sink sees, config block)
PATHS = [
    ("list+rewrite", "talk@" + LISTS, "bob@example.net",
     "[list talk@%s]\nmembers = bob@example.net\nposters = any\n"
     "footer = --\\nYou are on the talk list.\nfrom_rewrite = dmarc\n" % LISTS),
    ("fwd+srs", "fw@" + ALIAS_DOMAIN, "carol@example.net",
     "[forward fw@%s]\nto = carol@example.net\nsrs = yes\n" % ALIAS_DOMAIN),
    ("list-never", "raw@" + LISTS, "dave@example.net",
     "[list raw@%s]\nmembers = dave@example.net\nposters = any\nsubject_tag = [raw]\n"
     "footer = --\\nThe raw list.\nfrom_rewrite = never\ndmarc_reject = relay\n" % LISTS),
    ("fwd-plain", "fwplain@" + ALIAS_DOMAIN, "erin@example.net",
     "[forward fwplain@%s]\nto = erin@example.net\nsrs = no\n" % ALIAS_DOMAIN),
]

ADK = "survives-aligned-dkim"
NOP = "survives-no-policy"
ARC = "survives-if-arc-trusted"
FAIL = "fails"
REFUSED = "refused"     # 550 5.7.26 at the end of DATA; survive: fails
# The matrix: what a downstream receiver makes of each cell, and why.
#  list+rewrite: the footer breaks the author's signature; From is
#    rewritten to the list only for p=quarantine/reject (the spoof has
#    preject.example's p=reject too), then the list's own signature aligns.
#    p=none keeps its From, so only a receiver trusting our ARC accepts it.
#  fwd+srs / fwd-plain: the content is unchanged, so an author signature
#    still aligns; SPF passes for the SRS domain or fails for the author's,
#    and aligns with neither; an unsigned author needs ARC.
#  list-never: nothing aligns after the footer and the subject tag.
#  spoofed: it failed DMARC on arrival, so ARC cannot vouch for it. The
#    list+rewrite list refuses it (p=reject, dmarc_reject = refuse by
#    default) rather than pass it off under its own domain; list-never
#    relays it (dmarc_reject = relay) with From as it came.
EXPECT = {
    "p=none":       {"list+rewrite": ARC, "fwd+srs": ADK, "list-never": ARC, "fwd-plain": ADK},
    "p=quarantine": {"list+rewrite": ADK, "fwd+srs": ADK, "list-never": ARC, "fwd-plain": ADK},
    "p=reject":     {"list+rewrite": ADK, "fwd+srs": ADK, "list-never": ARC, "fwd-plain": ADK},
    "spf-only":     {"list+rewrite": ADK, "fwd+srs": ARC, "list-never": ARC, "fwd-plain": ARC},
    "no-dmarc":     {"list+rewrite": NOP, "fwd+srs": NOP, "list-never": NOP, "fwd-plain": NOP},
    "spoofed":      {"list+rewrite": REFUSED, "fwd+srs": FAIL, "list-never": FAIL, "fwd-plain": FAIL},
}
# The SPF result downstream sees, by path (the envelope sender's domain).
EXPECT_SPF = {"list+rewrite": "pass", "fwd+srs": "pass", "list-never": "pass",
              "fwd-plain": None}   # None: as the original sender's domain says for RELAY_IP


# The DMARC records of the zone, by domain (for H2's alignment modes).
DMARC_RECORDS = dict([(a[1], a[2]) for a in AUTHORS if a[2]] +
                     [(LISTS, "v=DMARC1; p=quarantine")])


def author_addr(a):
    return "alice@" + a[1]


def mail_from_of(a):
    return a[4] or author_addr(a)


# ---- setup ------------------------------------------------------------------------

def keygen(arcrelay, work, domain, selector):
    d = os.path.join(work, "keys", domain)
    os.makedirs(d, exist_ok=True)
    subprocess.run([arcrelay, "keygen", "--domain", domain, "--selector", selector,
                    "--out", d], check=True, capture_output=True)
    return os.path.join(d, selector)


def make_zone(arcrelay, work):
    z = D.Zone()
    keys = {}
    for dom, sel in [(LISTS, SELECTOR)] + sorted({(a[1], "s1") for a in AUTHORS if a[3]}):
        base = keygen(arcrelay, work, dom, sel)
        keys[dom] = base + ".private"
        z.add_txt("%s._domainkey.%s" % (sel, dom), D.quoted_strings(base + ".txt"))
    for a in AUTHORS:
        if a[4] is None:
            z.add_txt(a[1], AUTHOR_SPF)
        if a[2]:
            z.add_txt("_dmarc." + a[1], a[2])
    z.add_txt(LISTS, RELAY_SPF)
    z.add_txt("_dmarc." + LISTS, DMARC_RECORDS[LISTS])
    z.add_txt(SRS_DOMAIN, RELAY_SPF)
    z.add(HOSTNAME, "A", RELAY_IP)
    z.add_txt(HOSTNAME, "v=spf1 a -all")
    z.write(work)
    # Everything else under example. is answered (NXDOMAIN) by unbound
    # itself instead of going out to the root: other.example,
    # _dmarc.example, client.example.
    with open(os.path.join(work, "unbound-data.conf"), "a") as fh:
        fh.write('\tlocal-zone: "example." static\n')
    return z, keys


def write_config(work, port, sink_port, dns_port, dmarc_mode, name):
    path = os.path.join(work, name)
    with open(path, "w") as fh:
        fh.write("""# written by tests/survive/matrix.py
[server]
listen = 127.0.0.1:%(port)d
hostname = %(host)s
authserv_id = %(asid)s
spool = %(work)s/spool
workers = 2

[dns]
resolver = 127.0.0.1@%(dns)d
timeout = 5s

[policy]
dmarc = %(mode)s

[delivery]
deliver = smtp:[127.0.0.1]:%(sink)d
retry = 1s 2s 5s

[signing]
domain = %(lists)s
selector = %(sel)s
key = %(work)s/keys/%(lists)s/%(sel)s.private

[srs]
domain = %(srs)s
secret = survive-matrix-secret-0123456789

[list closed@%(lists)s]
members = bob@example.net

%(paths)s""" % {"port": port, "host": HOSTNAME, "asid": AUTHSERV_ID, "work": work,
                "dns": dns_port, "sink": sink_port, "lists": LISTS, "sel": SELECTOR,
                "srs": SRS_DOMAIN, "mode": dmarc_mode,
                "paths": "\n".join(p[3] for p in PATHS)})
    return path


def make_message(a, path, keys, extra=b""):
    mid = "<%s.%s@%s>" % (re.sub(r"[^a-z]", "", a[0]), re.sub(r"[^a-z]", "", path[0]), a[1])
    data = D.head(mid, "survive %s via %s" % (a[0], path[0]), extra +
                  D.crlf("MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n"),
                  to=path[1], frm=author_addr(a))
    data += b"\r\n" + D.crlf("Hello,\n\nthis is %s, sent via %s.\n" % (a[0], path[0]))
    if a[3]:
        with open(keys[a[1]], "rb") as fh:
            key = fh.read()
        data = dkim.sign(data, b"s1", a[1].encode(), key,
                         canonicalize=(b"relaxed", b"relaxed")) + data
    return mid, data


def send(port, mail_from, rcpt, data):
    """One session from AUTHOR_IP: (RCPT reply, final reply or None)."""
    c = D.Client(port, source=AUTHOR_IP)
    try:
        c.cmd("EHLO " + CLIENT_HELO)
        c.cmd("MAIL FROM:<%s>" % mail_from)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        fin = c.data(data)[1] if r[0] == 250 else None
        return r, fin
    finally:
        c.close()


# ---- arcrelay survive ---------------------------------------------------------

def survive(arcrelay, config, zonefile, rcpt, mail_from, msgfile, output=None, json_out=True):
    import json
    cmd = [arcrelay, "survive", "--config", config, "--dns-file", zonefile, "--rcpt", rcpt,
           "--relay-ip", RELAY_IP, "--client-ip", AUTHOR_IP, "--helo", CLIENT_HELO,
           "--mail-from", mail_from]
    if output:
        cmd += ["--output", output]
    if json_out:
        cmd.append("--json")
    p = subprocess.run(cmd + [msgfile], capture_output=True, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    if not json_out:
        return p.returncode, out, p.stderr.decode("utf-8", "replace")
    try:
        return p.returncode, json.loads(out), p.stderr.decode("utf-8", "replace")
    except ValueError:
        return p.returncode, None, out + p.stderr.decode("utf-8", "replace")


def summary(j):
    """What survive says, without the reasons: for comparing two runs."""
    def res(r):
        return {"dkim": [(s["d"], s["result"]) for s in r["dkim"]], "arc": r["arc"]["result"],
                "spf": (r["spf"]["result"], r["spf"].get("domain")),
                "dmarc": (r["dmarc"]["result"], r["dmarc"]["domain"], r["dmarc"]["policy"],
                          r["dmarc"]["aligned_by"])}
    return {"verdict": j.get("verdict"), "sender": j.get("sender"), "rule": j.get("rule"),
            "before": res(j["before"]) if "before" in j else None,
            "after": res(j["after"]) if "after" in j else None,
            "trusted": j["after_trusted_arc"]["dmarc"]["result"] if "after" in j else None}


# ---- the independent judges --------------------------------------------------------

QUIET = logging.getLogger("survive-matrix")
QUIET.propagate = False
QUIET.setLevel(logging.CRITICAL)


def use_unbound(port):
    """dkimpy, pyspf and authheaders all resolve with dnspython's default
    resolver: point it at the test's unbound."""
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = port
    r.lifetime = 5
    dns.resolver.default_resolver = r


STOCK_PSL = authheaders.findpsl.location


def fixed_psl(work):
    """The Debian PSL plus the rule `example`: what the PSL's implicit `*`
    rule gives for an unlisted TLD, which publicsuffix2 does not apply
    (README.md, H2)."""
    path = os.path.join(work, "psl-with-example.dat")
    with open(STOCK_PSL, encoding="utf-8") as src, open(path, "w", encoding="utf-8") as dst:
        dst.write(src.read())
        dst.write("\n// tests/survive: the implicit * rule for .example\nexample\n")
    return path


def sig_domains(data):
    d = dkim.DKIM(data, logger=QUIET)
    out = []
    for name, value in d.headers:
        if name.lower() == b"dkim-signature":
            out.append(D.tags(value.decode("latin-1")).get("d", "").lower())
    return out


def dkim_each(data):
    """[(d, "pass"|"fail")] for every DKIM-Signature, top first (dkimpy)."""
    out = []
    for idx, dom in enumerate(sig_domains(data)):
        try:
            ok = dkim.DKIM(data, logger=QUIET, minkey=1024).verify(idx=idx)
        except Exception:
            ok = False
        out.append((dom, "pass" if ok else "fail"))
    return out


def ah_dmarc(data, spf_res, dkim_results):
    """authheaders' DMARC with every DKIM result in turn (its API takes
    one): pass if any run passes, else the first run's answer."""
    runs = []
    for dk in (dkim_results or [None]):
        spf = copy.deepcopy(spf_res)
        runs.append(authheaders.check_dmarc(data, spf, dk))
    best = next((r for r in runs if r.result == "pass"), runs[0])
    return {"result": best.result, "domain": (best.header_from or "").lower(),
            "policy": getattr(best, "policy", "") or ""}


def independent(data, ip, mail_from, helo):
    """Everything the independent judges say about one message."""
    j = {"dkim": dkim_each(data)}
    try:
        cv, _, why = dkim.arc_verify(data, logger=QUIET)
        j["arc"] = cv.decode()
    except Exception as e:
        j["arc"] = "error: %s" % e
    spf_res = authheaders.check_spf(ip, mail_from, helo)
    j["spf"] = spf_res.result
    dk = [DKIMAuthenticationResult(result=r, header_d=d) for d, r in j["dkim"]]
    j["dmarc"] = ah_dmarc(data, spf_res, dk)
    j["dmarc_dkim_only"] = ah_dmarc(data, None, [x for x in dk if x.result == "pass"])
    j["dmarc_first_sig"] = ah_dmarc(data, spf_res, dk[:1])
    # authheaders as a receiver would call it: one A-R header.
    arh = authheaders.authenticate_message(data, "downstream.example", spf=True, dkim=True,
                                           arc=True, dmarc=True, ip=ip, mail_from=mail_from,
                                           helo=helo)
    ar = authres.AuthenticationResultsHeader.parse(arh)
    got = {}
    for r in ar.results:
        props = {"%s.%s" % (p.type, p.name): p.value for p in r.properties}
        got[r.method] = (r.result, props)
    j["ah"] = got
    return j


def aar_results(data):
    """The ARC-Authentication-Results the relay sealed: {method: [(result,
    props)]}, or None."""
    head = data[:data.find(b"\r\n\r\n") + 2]
    m = re.search(rb"(?im)^arc-authentication-results:(.*\r\n(?:[ \t].*\r\n)*)", head)
    if not m:
        return None
    v = D.unfold(m.group(1))
    v = re.sub(r"^\s*i=1\s*;\s*", "", v)
    ar = authres.AuthenticationResultsHeader.parse_value(v)
    out = {"authserv_id": ar.authserv_id}
    for r in ar.results:
        props = {"%s.%s" % (p.type, p.name): p.value for p in r.properties}
        out.setdefault(r.method, []).append((r.result, props))
    return out


def independent_verdict(ind, aar):
    """The verdict from the independent results alone, by the rules the
    verdicts are defined with (README.md)."""
    if ind["dmarc"]["result"] == "pass":
        return ADK if ind["dmarc_dkim_only"]["result"] == "pass" else "survives-aligned-spf"
    if ind["dmarc"]["result"] == "none":
        return NOP
    sealed_pass = aar is not None and any(r == "pass" for r, _ in aar.get("dmarc", []))
    if ind["arc"] == "pass" and sealed_pass:
        return ARC
    return FAIL


# ---- comparing ------------------------------------------------------------------------

def compare_after(label, sj, ind, mail_from):
    """survive's after against one independent judgement; problems."""
    probs = []
    ours = [(s["d"].lower(), s["result"]) for s in sj["after"]["dkim"]]
    if ours != ind["dkim"]:
        probs.append("DKIM per signature: survive %r, dkimpy %r" % (ours, ind["dkim"]))
    if sj["after"]["arc"]["result"] != ind["arc"]:
        probs.append("ARC cv: survive %s, dkimpy %s" % (sj["after"]["arc"]["result"], ind["arc"]))
    if ind["ah"].get("arc", ("?",))[0] != ind["arc"]:
        probs.append("ARC cv: authheaders %s, dkimpy %s" % (ind["ah"].get("arc"), ind["arc"]))
    spf = sj["after"]["spf"]
    if spf["result"] != ind["spf"]:
        probs.append("SPF: survive %s, pyspf %s" % (spf["result"], ind["spf"]))
    want_dom = mail_from.rsplit("@", 1)[-1].lower()
    if spf.get("domain", "").lower() != want_dom:
        probs.append("SPF domain: survive %r, the envelope sender's %r" % (spf.get("domain"),
                                                                         want_dom))
    dm, th = sj["after"]["dmarc"], ind["dmarc"]
    if dm["result"] != th["result"]:
        probs.append("DMARC: survive %s (%s), authheaders %s" % (dm["result"], dm["reason"],
                                                                th["result"]))
    elif dm["result"] != "none":
        if dm["domain"].lower() != th["domain"]:
            probs.append("DMARC domain: survive %s, authheaders %s" % (dm["domain"], th["domain"]))
        if dm["policy"] != th["policy"]:
            probs.append("DMARC policy: survive %s, authheaders %s" % (dm["policy"], th["policy"]))
    aligned = dm["aligned_by"]
    dk_only = ind["dmarc_dkim_only"]["result"] == "pass"
    if dm["result"] == "pass" and (aligned == "dkim") != dk_only:
        probs.append("DMARC aligned by: survive %r, authheaders with DKIM alone %s"
                     % (aligned, ind["dmarc_dkim_only"]["result"]))
    # H1: authheaders' own A-R judges the first signature only.
    first = ind["dkim"][0] if ind["dkim"] else None
    ahd = ind["ah"].get("dkim")
    if first and (ahd is None or ahd[0] != first[1] or
                  ahd[1].get("header.d", "").lower() != first[0]):
        probs.append("H1: authheaders' dkim= is not the first signature's: %r, first %r"
                     % (ahd, first))
    ahm = ind["ah"].get("dmarc", ("?", {}))[0]
    if ahm != ind["dmarc_first_sig"]["result"]:
        probs.append("H1: authheaders' dmarc=%s is not its DMARC with the first signature (%s)"
                     % (ahm, ind["dmarc_first_sig"]["result"]))
    if ind["ah"].get("spf", ("?",))[0] != ind["spf"]:
        probs.append("authheaders' spf=%s differs from pyspf's %s" % (ind["ah"].get("spf"),
                                                                    ind["spf"]))
    return ["%s: %s" % (label, p) for p in probs]


def compare_before(sj, aar, ind_before):
    probs = []
    b = sj["before"]
    ours = sorted((s["d"].lower(), s["result"]) for s in b["dkim"])
    if aar is None:
        return ["the delivered message has no ARC-Authentication-Results"]
    sealed = sorted((p.get("header.d", "").lower(), r) for r, p in aar.get("dkim", [])
                    if r != "none")
    if ours != sealed:
        probs.append("before DKIM: survive %r, the daemon's AAR %r" % (ours, sealed))
    if ours != sorted(ind_before["dkim"]):
        probs.append("before DKIM: survive %r, dkimpy %r" % (ours, ind_before["dkim"]))
    spf_sealed = [r for r, p in aar.get("spf", []) if "smtp.mailfrom" in p]
    if [b["spf"]["result"]] != spf_sealed:
        probs.append("before SPF: survive %s, the daemon's AAR %r" % (b["spf"]["result"],
                                                                     spf_sealed))
    if b["spf"]["result"] != ind_before["spf"]:
        probs.append("before SPF: survive %s, pyspf %s" % (b["spf"]["result"], ind_before["spf"]))
    dm_sealed = [(r, p.get("header.from", "").lower()) for r, p in aar.get("dmarc", [])]
    want = [(b["dmarc"]["result"], b["dmarc"]["domain"].lower())]
    if dm_sealed != want:
        probs.append("before DMARC: survive %r, the daemon's AAR %r" % (want, dm_sealed))
    if b["dmarc"]["result"] != ind_before["dmarc"]["result"]:
        probs.append("before DMARC: survive %s, authheaders %s" % (b["dmarc"]["result"],
                                                                  ind_before["dmarc"]["result"]))
    if aar.get("authserv_id", "").lower() != AUTHSERV_ID:
        probs.append("AAR authserv-id %r" % aar.get("authserv_id"))
    return probs


def srs_mask(addr):
    """An SRS0 address without its hash and day (they change at midnight)."""
    return re.sub(r"(?i)^SRS0=[^=]+=[^=]+=", "SRS0=HHHH=TT=", addr or "")


def h2_expected(ind_fixed, mail_from, from_dom):
    """H2: stock authheaders (publicsuffix2 without the implicit * rule)
    takes `example` as the Organizational Domain of every x.example, so a
    passing identifier of another .example domain aligns relaxed.  True
    when that is what happens to this judgement."""
    if ind_fixed["dmarc"]["result"] != "fail":
        return False
    rec = D.tags(DMARC_RECORDS.get(from_dom, ""))
    others = []
    if rec.get("adkim", "r") == "r":
        others += [d for d, r in ind_fixed["dkim"] if r == "pass"]
    if rec.get("aspf", "r") == "r" and ind_fixed["spf"] == "pass":
        others.append(mail_from.rsplit("@", 1)[-1].lower())
    return any(d.endswith(".example") and d != from_dom for d in others)


# ---- main -----------------------------------------------------------------------------

def main():
    args = sys.argv[1:]
    if len(args) != 2:
        sys.exit(__doc__)
    work = os.path.abspath(args[1])
    shutil.rmtree(work, ignore_errors=True)
    for sub in ("sent", "survive-out"):
        os.makedirs(os.path.join(work, sub))
    # A private copy: a rebuild during the run must not swap the binary.
    arcrelay = shutil.copy2(args[0], os.path.join(work, "arcrelay"))

    keys = make_zone(arcrelay, work)[1]
    with contextlib.ExitStack() as stack:
        ub = D.Unbound(work)
        stack.callback(ub.stop)
        sink = D.SinkProc(work, "sink")
        stack.callback(sink.stop)
        port = D.free_port()
        config = write_config(work, port, sink.port, ub.port, "rfc9989", "arcrelay.conf")
        config7489 = write_config(work, port, sink.port, ub.port, "rfc7489", "arcrelay-7489.conf")
        dm = D.Daemon(arcrelay, work, config, port)
        stack.callback(dm.kill)
        try:
            dm.start()
            use_unbound(ub.port)
            run(arcrelay, work, dm, sink, config, config7489, os.path.join(work, "zone.txt"),
                keys)
        except Exception as e:      # a harness that blows up is a failure, not a stop
            T.check("the matrix ran to its end", False, "%s\n%s\ndaemon log ends:\n%s" % (
                e, traceback.format_exc(limit=4), dm.tail(15) if dm.proc else "(not started)"))
    print("%d passed, %d failed" % (T.passed, T.failed), flush=True)
    sys.exit(1 if T.failed else 0)


def run(arcrelay, work, dm, sink, config, config7489, zonefile, keys):
    fixed = fixed_psl(work)
    # H2 as it stands: if authheaders ever applies the * rule, this says so.
    T.check("H2: stock authheaders takes 'example' as the org domain of pnone.example",
            dl.get_org_domain("pnone.example") == "example",
            "get_org_domain gives %r" % dl.get_org_domain("pnone.example"))
    authheaders.findpsl.location = fixed
    T.check("H2: with the * rule added, the org domain of pnone.example is itself",
            dl.get_org_domain("pnone.example") == "pnone.example",
            "get_org_domain gives %r" % dl.get_org_domain("pnone.example"))

    # Every cell through the daemon.
    cells = []
    for a in AUTHORS:
        for p in PATHS:
            mid, data = make_message(a, p, keys)
            f = os.path.join(work, "sent", "%s_%s.eml" % (re.sub(r"\W", "", a[0]),
                                                          re.sub(r"\W", "", p[0])))
            with open(f, "wb") as fh:
                fh.write(data)
            r, fin = send(dm.port, mail_from_of(a), p[1], data)
            if EXPECT[a[0]][p[0]] == REFUSED:
                refused_cell(arcrelay, config, zonefile, a, p, f, r, fin, dm)
                continue
            ok = r[0] == 250 and fin is not None and fin[0] == 250
            T.check("daemon accepts %s via %s" % (a[0], p[0]), ok,
                    "RCPT %r, DATA %r\n%s" % (r, fin, dm.tail(6)))
            cells.append({"a": a, "p": p, "mid": mid, "data": data, "file": f})
    D.wait_for(lambda: all(c["mid"] in have for have in [mids(sink)] for c in cells), 60)
    have = mids(sink)
    for a in AUTHORS:
        for p in PATHS:
            if EXPECT[a[0]][p[0]] == REFUSED:
                mid = make_message(a, p, keys)[0]
                T.check("%s via %s: nothing delivered" % (a[0], p[0]), mid not in have,
                        "the sink got %d copies" % len(have.get(mid, [])))

    table = dict(((a[0], p[0]), REFUSED) for a in AUTHORS for p in PATHS
                 if EXPECT[a[0]][p[0]] == REFUSED)
    h1_cells = h2_cells = 0
    for c in cells:
        a, p = c["a"], c["p"]
        name = "%s via %s" % (a[0], p[0])
        want = EXPECT[a[0]][p[0]]
        copies = have.get(c["mid"], [])
        if not T.check("%s: delivered once, to %s" % (name, p[2]),
                       len(copies) == 1 and copies[0][0]["rcpt"] == [p[2]],
                       "%d copies %r" % (len(copies), [e["rcpt"] for e, _ in copies])):
            table[(a[0], p[0])] = "LOST"
            continue
        env, delivered = copies[0]
        T.check("%s: the relay delivered from %s, the address judged downstream"
                % (name, RELAY_IP), env["peer"].rsplit(":", 1)[0] == RELAY_IP, env["peer"])
        outfile = os.path.join(work, "survive-out", os.path.basename(c["file"]))
        rc, sj, err = survive(arcrelay, config, zonefile, p[1], mail_from_of(a), c["file"],
                              output=outfile)
        if not T.check("%s: survive --json exits 0 with one JSON object" % name,
                       rc == 0 and sj is not None and "after" in sj, "exit %d: %s %r" % (rc, err, sj)):
            table[(a[0], p[0])] = "ERROR"
            continue
        # The envelope: survive's sender is the one the sink saw.
        T.check("%s: survive's envelope sender is the daemon's <%s>" % (name, env["mail_from"]),
                srs_mask(sj["sender"]) == srs_mask(env["mail_from"]),
                "survive <%s>" % sj["sender"])
        # The same message with [policy] dmarc = rfc7489 (the PSL).
        rc2, sj2, err2 = survive(arcrelay, config7489, zonefile, p[1], mail_from_of(a), c["file"])
        s1, s2 = summary(sj), summary(sj2) if sj2 else None
        if s2:
            s1["sender"], s2["sender"] = srs_mask(s1["sender"]), srs_mask(s2["sender"])
        T.check("%s: the same judgement with dmarc = rfc7489" % name, rc2 == 0 and s1 == s2,
                "rfc9989 %r\nrfc7489 %r %s" % (s1, s2, err2))

        # Independent judges: the delivered message, survive's own output,
        # and the original as it arrived.
        ind_d = independent(delivered, RELAY_IP, env["mail_from"], env["helo"])
        with open(outfile, "rb") as fh:
            survive_msg = fh.read()
        ind_o = independent(survive_msg, RELAY_IP, sj["sender"], HOSTNAME)
        ind_b = independent(c["data"], AUTHOR_IP, mail_from_of(a), CLIENT_HELO)
        aar = aar_results(delivered)
        probs = compare_after("delivered", sj, ind_d, env["mail_from"])
        probs += compare_after("survive --output", sj, ind_o, sj["sender"])
        T.check("%s: survive's after agrees with dkimpy, pyspf and authheaders "
                "(DKIM %s; ARC %s; SPF %s; DMARC %s %s)" % (
                    name, " ".join("%s=%s" % x for x in ind_d["dkim"]), ind_d["arc"],
                    ind_d["spf"], ind_d["dmarc"]["result"], ind_d["dmarc"]["domain"]),
                not probs, "\n".join(probs) + "\nsurvive: %r" % summary(sj))
        probs = compare_before(sj, aar, ind_b)
        T.check("%s: survive's before agrees with the daemon's AAR and authheaders" % name,
                not probs, "\n".join(probs))
        # The SPF the path must give.
        want_spf = EXPECT_SPF[p[0]] or ("fail" if a[4] is None else "none")
        T.check("%s: SPF downstream is %s" % (name, want_spf), ind_d["spf"] == want_spf,
                "pyspf says %s for <%s>" % (ind_d["spf"], env["mail_from"]))
        # The verdict: the matrix, survive, and the independent judges.
        iv = independent_verdict(ind_d, aar)
        T.check("%s: verdict %s (survive %s, from the independent results %s)" % (
            name, want, sj["verdict"], iv), sj["verdict"] == want and iv == want,
            "reason: %s" % sj["reason"])
        # Only a From rewrite could make a message that failed DMARC on
        # arrival pass, and the lists leave From alone when it failed
        # (the spoof via list+rewrite is refused), so no cell is laundered
        # and no reason says it was.
        laundered = "failed DMARC for %s on arrival" % a[1]
        T.check("%s: not laundered: not a DMARC fail on arrival turned pass, and the reason "
                "says nothing of it" % name,
                not (sj["before"]["dmarc"]["result"] == "fail" and
                     sj["after"]["dmarc"]["result"] == "pass") and laundered not in sj["reason"],
                "before %s, after %s: %s" % (sj["before"]["dmarc"]["result"],
                                             sj["after"]["dmarc"]["result"], sj["reason"]))
        trusted = sj["after_trusted_arc"]["dmarc"]["result"]
        want_trusted = "pass" if want in (ADK, ARC, "survives-aligned-spf") else \
            ("none" if want == NOP else "fail")
        T.check("%s: DMARC with our ARC trusted is %s" % (name, want_trusted),
                trusted == want_trusted, "survive says %s" % trusted)

        # H1 and H2, where they change authheaders' answer.
        h1 = ind_d["ah"].get("dmarc", ("?",))[0] != ind_d["dmarc"]["result"]
        h1_cells += h1
        authheaders.findpsl.location = STOCK_PSL
        try:
            stock = ah_dmarc(delivered, authheaders.check_spf(RELAY_IP, env["mail_from"],
                                                              env["helo"]),
                             [DKIMAuthenticationResult(result=r, header_d=d)
                              for d, r in ind_d["dkim"]])
        finally:
            authheaders.findpsl.location = fixed
        h2 = stock["result"] != ind_d["dmarc"]["result"]
        h2_cells += h2
        from_dom = ind_d["dmarc"]["domain"] or a[1]
        h2_want = h2_expected(ind_d, env["mail_from"], from_dom)
        T.check("%s: stock authheaders differs (H2) exactly when another .example "
                "identifier passes: %s" % (name, "yes" if h2_want else "no"),
                h2 == h2_want and (not h2 or stock["result"] == "pass"),
                "stock PSL: %r, with the * rule: %r" % (stock, ind_d["dmarc"]))
        mark = ""
        if h1:
            mark += " H1"
        if h2:
            mark += " H2"
        table[(a[0], p[0])] = sj["verdict"] + mark

    refusals(arcrelay, work, dm, sink, config, zonefile, keys)
    print_table(table, h1_cells, h2_cells)


def refused_cell(arcrelay, config, zonefile, a, p, f, r, fin, dm):
    """A cell the list refuses: 550 5.7.26 at the end of DATA from the
    daemon, and survive says it fails for that reason."""
    name = "%s via %s" % (a[0], p[0])
    T.check("%s: the daemon refuses it at the end of DATA (550 5.7.26)" % name,
            r[0] == 250 and fin is not None and fin[0] == 550 and "5.7.26" in fin[1],
            "RCPT %r, DATA %r\n%s" % (r, fin, dm.tail(6)))
    rc, sj, err = survive(arcrelay, config, zonefile, p[1], mail_from_of(a), f)
    T.check("%s: survive says fails, refused with the same 550 5.7.26" % name,
            rc == 0 and sj is not None and sj.get("verdict") == FAIL and
            "550 5.7.26" in sj.get("reason", ""), "exit %d %r %s" % (rc, sj, err))


def mids(sink):
    out = {}
    for env, data in D.sink_messages(sink.dir):
        out.setdefault(D.message_ids(data), []).append((env, data))
    return out


def refusals(arcrelay, work, dm, sink, config, zonefile, keys):
    """What the daemon refuses, survive must call `fails`, for the same
    reason."""
    a = AUTHORS[2]
    closed = ("closed", "closed@" + LISTS, "bob@example.net", "")
    mid, data = make_message(a, closed, keys)
    f = os.path.join(work, "sent", "closed.eml")
    with open(f, "wb") as fh:
        fh.write(data)
    r, fin = send(dm.port, mail_from_of(a), closed[1], data)
    rc, sj, err = survive(arcrelay, config, zonefile, closed[1], mail_from_of(a), f)
    T.check("non-member post: the daemon refuses at RCPT (550)", r[0] == 550 and fin is None,
            "RCPT %r" % (r,))
    T.check("non-member post: survive says fails, refused at RCPT",
            rc == 0 and sj and sj["verdict"] == FAIL and "refused at RCPT" in sj["reason"],
            "exit %d %r %s" % (rc, sj, err))

    talk = PATHS[0]
    mid, data = make_message(a, talk, keys, extra=b"List-Id: <talk.lists.example>\r\n")
    data = data.replace(b"<preject.listrewrite@", b"<loop.listrewrite@")
    f = os.path.join(work, "sent", "loop.eml")
    with open(f, "wb") as fh:
        fh.write(data)
    r, fin = send(dm.port, mail_from_of(a), talk[1], data)
    rc, sj, err = survive(arcrelay, config, zonefile, talk[1], mail_from_of(a), f)
    T.check("a loop (our List-Id already there): the daemon refuses after DATA (550 5.4.6)",
            r[0] == 250 and fin is not None and fin[1].startswith("550 5.4.6"),
            "RCPT %r DATA %r" % (r, fin))
    T.check("a loop: survive says fails, mail loop",
            rc == 0 and sj and sj["verdict"] == FAIL and "mail loop" in sj["reason"] and
            fin is not None and sj["reason"] == fin[1],
            "exit %d %r %s; the daemon said %r" % (rc, sj, err, fin))


def print_table(table, h1, h2):
    cols = [p[0] for p in PATHS]
    w = max(len(v) for v in table.values()) if table else 10
    print("\nDMARC survival matrix (downstream receiver's verdict; H1/H2: stock "
          "authheaders answers differently, README.md)")
    print("%-13s" % "" + "".join(" %-*s" % (w, c) for c in cols))
    for a in AUTHORS:
        print("%-13s" % a[0] + "".join(" %-*s" % (w, table.get((a[0], c), "-")) for c in cols))
    print("cells where authheaders' A-R differs by H1 (first signature only): %d; by H2 "
          "(.example as one org domain): %d\n" % (h1, h2), flush=True)


if __name__ == "__main__":
    main()
