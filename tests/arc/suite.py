#!/usr/bin/python3
"""The ARC conformance suite (data/*.yml), run against `arcrelay verify` and
`arcrelay seal`, with the corrections of data/ERRATA.md applied.

usage: suite.py ARCRELAY WORKDIR

Validation tests: the message and the scenario's key records go to
`arcrelay verify --json`; the chain result must equal the expected cv.
Sign tests: `arcrelay seal --use-authres` with the scenario's key; the new
AAR must equal the expected one (white space folded), the AMS and AS must
carry the expected tags (all but b=, which depends on tag order), and the
sealed message must validate with arcrelay and with dkimpy's ARC verifier.
"""
import json
import os
import re
import subprocess
import sys

import base64
import hashlib

import yaml

import dkim
import dkim.crypto
from dkim.canonicalization import Relaxed

# Corrections from ERRATA.md (items 1 and 2): the RFC wins.
ERRATA_EXPECT = {
    "cv_fail_i1_as_cv_fail": "fail",
    "cv_fail_i2_as2_fail": "fail",
    "cv_fail_i2_as1_fail": "fail",
    "ams_fields_c_na": "fail",
}


class KeepDuplicates(yaml.SafeLoader):
    """A loader that keeps tests whose ids occur twice (ERRATA.md item 4):
    the second copy is stored under "id#2"."""


def _mapping(loader, node, deep=False):
    out = {}
    for knode, vnode in node.value:
        key = loader.construct_object(knode, deep=deep)
        val = loader.construct_object(vnode, deep=deep)
        n, name = 2, key
        while name in out:
            name = "%s#%d" % (key, n)
            n += 1
        out[name] = val
    return out


KeepDuplicates.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def write_zone(path, records):
    with open(path, "w") as f:
        for name, value in (records or {}).items():
            value = "".join(str(value).split("\n"))
            chunks = [value[i:i + 200] for i in range(0, len(value), 200)] or [""]
            quoted = " ".join('"%s"' % c.replace("\\", "\\\\").replace('"', '\\"')
                              for c in chunks)
            f.write("%s. IN TXT %s\n" % (name, quoted))


def zone_dict(records):
    return {k.encode(): "".join(str(v).split("\n")).encode()
            for k, v in (records or {}).items()}


def tags(value):
    out = {}
    for part in value.split(";"):
        part = part.strip()
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = re.sub(r"\s+", "", v)
    return out


def norm(text):
    return " ".join(text.split())


def raw_fields(data, count):
    """The first count header fields as (name, value) byte pairs, folding
    kept, for canonicalization by dkimpy's own code."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    fields = []
    for line in head:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += b"\r\n" + line
        else:
            name, _, value = line.partition(b":")
            fields.append([name, value])
    return [tuple(f) for f in fields[:count]]


def seal_alone_verifies(sealed, zdict):
    """An independent check of a cv=fail seal, which RFC 8617 §5.1.2
    signs over the new set alone: dkimpy's relaxed canonicalization and
    its PKCS#1 verifier over AAR, AMS, AS with b= emptied."""
    (asn, asv), (amsn, amsv), (aarn, aarv) = raw_fields(sealed, 3)
    t = tags(asv.decode())
    stripped = re.sub(rb"(\bb\s*=)[^;]*", rb"\1", asv)
    canon = Relaxed.canonicalize_headers([(aarn, aarv), (amsn, amsv),
                                          (asn, stripped)])
    data = b"".join(n + b":" + v for n, v in canon)[:-2]
    rec = zdict.get(("%s._domainkey.%s" % (t["s"], t["d"])).encode())
    pk = dkim.crypto.parse_public_key(base64.b64decode(
        dict(x.strip().split(b"=", 1) for x in rec.split(b";") if b"=" in x)[b"p"]))
    return dkim.crypto.RSASSA_PKCS1_v1_5_verify(
        hashlib.sha256(data), base64.b64decode(t["b"]), pk)


def first_fields(data, count):
    """The first count header fields of a message, unfolded."""
    fields, cur = [], None
    for line in data.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and cur is not None:
            cur += b" " + line.strip()
            continue
        if cur is not None:
            fields.append(cur)
            if len(fields) == count:
                break
        cur = line
    return [f.decode("utf-8", "replace") for f in fields]


class Runner:
    def __init__(self, binary, work):
        self.binary, self.work = binary, work
        self.passed = self.failed = 0
        os.makedirs(work, exist_ok=True)

    def result(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL %s %s" % (name, detail))

    def verify_json(self, msgfile, zone):
        out = subprocess.run([self.binary, "verify", "--json", "--dns-file", zone,
                              msgfile], capture_output=True)
        if out.returncode != 0:
            return None, out.stderr.decode(errors="replace")
        return json.loads(out.stdout), ""

    def validation(self, path):
        count = 0
        for n, doc in enumerate(yaml.load_all(open(path), Loader=KeepDuplicates)):
            if not doc:
                continue
            zone = os.path.join(self.work, "v%d.zone" % n)
            write_zone(zone, doc.get("txt-records"))
            for tid, t in doc["tests"].items():
                count += 1
                base = tid.split("#")[0]
                want = ERRATA_EXPECT.get(base, str(t.get("cv") or "").strip().lower())
                msgfile = os.path.join(self.work, "v-%s.eml" % tid.replace("#", "_"))
                with open(msgfile, "wb") as f:
                    f.write(crlf(t["message"]))
                got, err = self.verify_json(msgfile, zone)
                if got is None and want == "none" and "empty message" in err:
                    # The CLI refuses an empty file (exit 2, as its
                    # contract says); nothing in it can hold a chain.
                    self.result("validate:" + tid, True)
                    continue
                if got is None:
                    self.result("validate:" + tid, False, "exit != 0: " + err)
                    continue
                arc = got["arc"]
                self.result("validate:" + tid, arc["result"] == want,
                            "got %s (%s), want %s" % (arc["result"], arc["reason"], want))
        return count

    def sign(self, path):
        count = 0
        for n, doc in enumerate(yaml.load_all(open(path), Loader=KeepDuplicates)):
            if not doc:
                continue
            zone = os.path.join(self.work, "s%d.zone" % n)
            write_zone(zone, doc.get("txt-records"))
            key = os.path.join(self.work, "s%d.key" % n)
            with open(key, "w") as f:
                f.write(doc["privatekey"])
            zdict = zone_dict(doc.get("txt-records"))
            for tid, t in doc["tests"].items():
                count += 1
                self.sign_one(tid, t, doc, key, zone, zdict)
        return count

    def sign_one(self, tid, t, doc, key, zone, zdict):
        name = "sign:" + tid
        msgfile = os.path.join(self.work, "s-%s.eml" % tid)
        with open(msgfile, "wb") as f:
            f.write(crlf(t["message"]))
        cmd = [self.binary, "seal", "--domain", doc["domain"], "--selector", doc["sel"],
               "--key", key, "--authserv-id", t["srv-id"], "--now", str(t["t"]),
               "--headers", t["sig-headers"], "--use-authres", "--dns-file", zone, msgfile]
        out = subprocess.run(cmd, capture_output=True)
        want_as = norm(t.get("AS") or "")
        if not want_as:
            # The suite expects no new set (a chain already failed).
            self.result(name, out.returncode != 0 and b"cv=fail" in out.stderr,
                        "expected a refusal, got exit %d" % out.returncode)
            return
        if out.returncode != 0:
            self.result(name, False, out.stderr.decode(errors="replace"))
            return
        sealed = out.stdout
        fields = first_fields(sealed, 3)
        problems = []
        names = [f.split(":", 1)[0] for f in fields]
        if names != ["ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results"]:
            problems.append("order %s" % names)
        else:
            got_as, got_ams = tags(fields[0].split(":", 1)[1]), tags(fields[1].split(":", 1)[1])
            exp_as, exp_ams = tags(t["AS"]), tags(t["AMS"])
            for k in ("a", "cv", "d", "i", "s", "t"):
                if got_as.get(k) != exp_as.get(k):
                    problems.append("AS %s=%s, want %s" % (k, got_as.get(k), exp_as.get(k)))
            for k in ("a", "bh", "c", "d", "h", "i", "s", "t"):
                if got_ams.get(k) != exp_ams.get(k):
                    problems.append("AMS %s=%s, want %s" % (k, got_ams.get(k), exp_ams.get(k)))
            got_aar = norm(fields[2].split(":", 1)[1])
            if got_aar != norm(t["AAR"]):
                problems.append("AAR %r, want %r" % (got_aar, norm(t["AAR"])))
            want_cv = exp_as.get("cv")
            sealed_file = msgfile + ".sealed"
            with open(sealed_file, "wb") as f:
                f.write(sealed)
            got, err = self.verify_json(sealed_file, zone)
            ours = got["arc"]["result"] if got else "error " + err
            # A chain sealed cv=fail validates as fail; otherwise pass.
            want_chain = "fail" if want_cv == "fail" else "pass"
            if ours != want_chain:
                problems.append("arcrelay verify: %s, want %s" % (ours, want_chain))
            if want_chain == "pass":
                theirs = dkim.arc_verify(sealed, dnsfunc=lambda q, timeout=5:
                                         zdict.get(q.rstrip(b".")))[0]
                theirs = theirs.decode() if theirs else "error"
                if theirs != want_chain:
                    problems.append("dkimpy arc_verify: %s, want pass" % theirs)
            elif not seal_alone_verifies(sealed, zdict):
                # Validators stop at the newest cv=fail (§5.2 step 2), so
                # the seal's signature is checked on its own here.
                problems.append("the cv=fail seal does not verify over its set")
        self.result(name, not problems, "; ".join(problems))


def main():
    binary, work = sys.argv[1], sys.argv[2]
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    r = Runner(binary, work)
    nv = r.validation(os.path.join(here, "arc-draft-validation-tests.yml"))
    ns = r.sign(os.path.join(here, "arc-draft-sign-tests.yml"))
    print("validation tests: %d, sign tests: %d" % (nv, ns))
    print("%d passed, %d failed" % (r.passed, r.failed))
    sys.exit(0 if r.failed == 0 and nv == 175 and ns == 17 else 1)


if __name__ == "__main__":
    main()
