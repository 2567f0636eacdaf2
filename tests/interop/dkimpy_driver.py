#!/usr/bin/python3
"""dkimpy_driver.py - sign and verify the interop corpus with dkimpy.

One process handles a whole run, so the corpus costs one interpreter start.

  dkimpy_driver.py sign --manifest M --corpus DIR --out DIR --domain D
        --rsa-key PEM --rsa-selector S --ed-key PEM --ed-selector S
      Sign every message the manifest lists with the parameters it gives
      (canonicalization, algorithm, l=, header list).  Keys are the PKCS#8
      PEM files `arcrelay keygen` writes.  Prints one JSON line per message.

  dkimpy_driver.py verify --zone ZONE --list FILE
      Verify the first DKIM-Signature of every message named in FILE (one
      path a line).  DNS is answered from ZONE only.  Prints one JSON line
      per message: {"file", "result": pass|fail|skip, "class", "detail"}
      where class is "body hash" (bh= mismatch), "signature" (b= did not
      verify), "key" (key record or DNS problem) or "error" (anything else).

  dkimpy_driver.py mkzone --domain D --rsa-key PEM --rsa-selector S
        --ed-key PEM --ed-selector S
      Print a zone file for the two keys (used only when there is no
      arcrelay binary yet and keys come from `openssl genpkey`).
"""

import argparse
import base64
import json
import logging
import os
import sys

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_common as ic  # noqa: E402


def load_key(path):
    with open(path, "rb") as fh:
        pem = fh.read()
    return pem, serialization.load_pem_private_key(pem, password=None)


def ed25519_seed_b64(key):
    """dkimpy wants the raw 32-byte Ed25519 seed, base64 encoded."""
    raw = key.private_bytes(serialization.Encoding.Raw,
                            serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    return base64.b64encode(raw)


def dkimpy_can_parse(data):
    try:
        dkim.rfc822_parse(data)
        return True, ""
    except dkim.MessageFormatError as e:
        return False, str(e)


def cmd_sign(args):
    with open(args.manifest) as fh:
        manifest = json.load(fh)["messages"]
    _, rsa_key = load_key(args.rsa_key)
    # Re-serialize so dkimpy's PEM reader (LF-only, PKCS#1 or #8) gets a
    # form it reads whatever the file's line ends.
    rsa_pem = rsa_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    _, ed_key = load_key(args.ed_key)
    if not isinstance(ed_key, ed25519.Ed25519PrivateKey):
        sys.exit("%s is not an Ed25519 key" % args.ed_key)
    keys = {
        "rsa-sha256": (args.rsa_selector.encode(), rsa_pem),
        "ed25519-sha256": (args.ed_selector.encode(), ed25519_seed_b64(ed_key)),
    }
    os.makedirs(args.out, exist_ok=True)
    for e in manifest:
        path = os.path.join(args.corpus, e["file"])
        with open(path, "rb") as fh:
            data = fh.read()
        rec = {"file": e["file"]}
        ok, why = dkimpy_can_parse(data)
        if not ok:
            rec.update(result="skip", detail="dkimpy cannot parse: " + why)
            print(json.dumps(rec), flush=True)
            continue
        selector, key = keys[e["algorithm"]]
        hc, bc = e["canon"].split("/")
        signer = dkim.DKIM(data, signature_algorithm=e["algorithm"].encode(),
                           linesep=b"\r\n")
        # RFC 6376 lets a signer sign Received, Comments, Keywords; dkimpy
        # refuses by default.  The corpus lists them on purpose.
        signer.should_not_sign = {b"dkim-signature", b"return-path"}
        headers = None
        if e["headers"] is not None:
            headers = [h.encode() for h in e["headers"]]
        try:
            sig = signer.sign(selector, args.domain.encode(), key,
                              canonicalize=(hc.encode(), bc.encode()),
                              include_headers=headers,
                              length=e["body_length"])
        except Exception as ex:  # a corpus message dkimpy rejects
            rec.update(result="error", detail="%s: %s" % (type(ex).__name__, ex))
            print(json.dumps(rec), flush=True)
            continue
        with open(os.path.join(args.out, e["file"]), "wb") as fh:
            fh.write(sig + data)
        rec.update(result="signed")
        print(json.dumps(rec), flush=True)
    return 0


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def own_body_hash(data):
    """The body hash dkimpy computes for the first signature (its c= and
    l=), so the harness can compare dkimpy's canonicalization with its RFC
    reference."""
    import hashlib
    from dkim.canonicalization import CanonicalizationPolicy
    try:
        headers, body = dkim.rfc822_parse(data)
        sigs = [v for k, v in headers if k.lower() == b"dkim-signature"]
        if not sigs:
            return ""
        tags = dkim.util.parse_tag_value(sigs[0])
        policy = CanonicalizationPolicy.from_c_value(tags.get(b"c", b"simple/simple"))
        canon = policy.canonicalize_body(body)
        if b"l" in tags:
            canon = canon[:int(tags[b"l"])]
        return base64.b64encode(hashlib.sha256(canon).digest()).decode()
    except Exception:
        return ""


def cmd_verify(args):
    zone = ic.read_zone(args.zone)

    def dnsfunc(name, timeout=5):
        recs = zone.get(ic.normalize_name(name))
        return recs[0] if recs else None

    logger = logging.getLogger("dkimpy-driver")
    logger.propagate = False
    handler = ListHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.ERROR)

    with open(args.list) as fh:
        paths = [l.rstrip("\n") for l in fh if l.strip()]
    for path in paths:
        with open(path, "rb") as fh:
            data = fh.read()
        rec = {"file": path}
        ok, why = dkimpy_can_parse(data)
        if not ok:
            rec.update(result="skip", detail="dkimpy cannot parse: " + why)
            print(json.dumps(rec), flush=True)
            continue
        handler.records = []
        rec["bh_computed"] = own_body_hash(data)
        try:
            d = dkim.DKIM(data, logger=logger, minkey=1024)
            good = d.verify(dnsfunc=dnsfunc)
            if good:
                rec.update(result="pass", **{"class": "", "detail": "verified"})
            elif handler.records:
                rec.update(result="fail", **{"class": "key",
                                             "detail": "; ".join(handler.records)})
            else:
                rec.update(result="fail", **{"class": "signature",
                                             "detail": "signature did not verify"})
        except dkim.ValidationError as ex:
            cls = "body hash" if "body hash mismatch" in str(ex) else "error"
            rec.update(result="fail", **{"class": cls, "detail": str(ex)})
        except Exception as ex:
            rec.update(result="fail", **{"class": "error",
                                         "detail": "%s: %s" % (type(ex).__name__, ex)})
        print(json.dumps(rec), flush=True)
    return 0


def cmd_mkzone(args):
    _, rk = load_key(args.rsa_key)
    _, ek = load_key(args.ed_key)
    if not isinstance(rk, rsa.RSAPrivateKey):
        sys.exit("%s is not an RSA key" % args.rsa_key)
    rsa_p = base64.b64encode(rk.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    ed_p = base64.b64encode(ek.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    sys.stdout.write("; made by dkimpy_driver.py mkzone\n")
    sys.stdout.write(ic.zone_record_lines(
        "%s._domainkey.%s" % (args.rsa_selector, args.domain),
        "v=DKIM1; k=rsa; p=" + rsa_p))
    sys.stdout.write(ic.zone_record_lines(
        "%s._domainkey.%s" % (args.ed_selector, args.domain),
        "v=DKIM1; k=ed25519; p=" + ed_p))
    return 0


def main():
    ap = argparse.ArgumentParser(description="dkimpy side of the DKIM interop harness")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sign")
    s.add_argument("--manifest", required=True)
    s.add_argument("--corpus", required=True)
    s.add_argument("--out", required=True)
    for p in (s, sub.add_parser("mkzone")):
        p.add_argument("--domain", required=True)
        p.add_argument("--rsa-key", required=True)
        p.add_argument("--rsa-selector", required=True)
        p.add_argument("--ed-key", required=True)
        p.add_argument("--ed-selector", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--zone", required=True)
    v.add_argument("--list", required=True)
    args = ap.parse_args()
    return {"sign": cmd_sign, "verify": cmd_verify, "mkzone": cmd_mkzone}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
