"""interop_common.py - helpers shared by the interop drivers.

Zone-file reading (the same records every verifier is served), and the
byte-level message surgery used to derive tampered copies.  Nothing here
depends on dkimpy, so the generator and the tamper step run without it.
"""

import re

CRLF = b"\r\n"


# ---- zone file ------------------------------------------------------------

def _zone_tokens(text):
    """Yield (kind, value, line) tokens of a zone file: 'word', 'str',
    '(' and ')' and 'eol' (a newline outside parentheses).  ';' starts a
    comment outside quoted strings."""
    i, n, line, depth = 0, len(text), 1, 0
    while i < n:
        c = text[i]
        if c == "\n":
            if depth == 0:
                yield ("eol", None, line)
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == ";":
            while i < n and text[i] != "\n":
                i += 1
        elif c == "(":
            depth += 1
            i += 1
        elif c == ")":
            if depth == 0:
                raise ValueError("line %d: unbalanced ')'" % line)
            depth -= 1
            i += 1
        elif c == '"':
            i += 1
            buf = bytearray()
            while True:
                if i >= n:
                    raise ValueError("line %d: unterminated string" % line)
                c = text[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    if text[i + 1:i + 4].isdigit() and len(text[i + 1:i + 4]) == 3:
                        buf.append(int(text[i + 1:i + 4]))
                        i += 4
                    else:
                        buf += text[i + 1].encode("latin-1")
                        i += 2
                    continue
                if c == "\n":
                    line += 1
                buf += c.encode("latin-1")
                i += 1
            yield ("str", bytes(buf), line)
        else:
            j = i
            while j < n and text[j] not in " \t\r\n;()\"":
                j += 1
            yield ("word", text[i:j], line)
            i = j
    if depth:
        raise ValueError("unbalanced '(' at end of zone file")
    yield ("eol", None, line)


def normalize_name(name):
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return name.lower().rstrip(".")


def read_zone(path):
    """Return {name: [txt, ...]} where each txt is the bytes of one TXT
    record, its character-strings concatenated (RFC 6376 section 3.6.2.2).
    Only TXT records are kept; other types are ignored."""
    return {name: [b"".join(strs) for strs in recs]
            for name, recs in read_zone_strings(path).items()}


def read_zone_strings(path):
    """Like read_zone, but each record is the list of its quoted strings."""
    with open(path, "rb") as fh:
        text = fh.read().decode("latin-1")
    zone = {}
    record = []
    for kind, value, line in _zone_tokens(text):
        if kind != "eol":
            record.append((kind, value))
            continue
        if not record:
            continue
        words = record
        record = []
        if words[0][0] != "word":
            raise ValueError("line %d: record without owner name" % line)
        name = words[0][1]
        rest = words[1:]
        # optional TTL and class, in either order
        while rest and rest[0][0] == "word" and (rest[0][1].isdigit() or
                                                 rest[0][1].upper() in ("IN", "CH", "HS")):
            rest = rest[1:]
        if not rest or rest[0][0] != "word":
            raise ValueError("line %d: missing record type" % line)
        if rest[0][1].upper() != "TXT":
            continue
        strings = [v for k, v in rest[1:] if k == "str"]
        if len(strings) != len(rest) - 1:
            raise ValueError("line %d: TXT data must be quoted strings" % line)
        zone.setdefault(normalize_name(name), []).append(strings)
    return zone


def zone_record_lines(name, txt, chunk=255):
    """Zone-file text for one TXT record, in the style arcrelay keygen
    writes (quoted strings of at most `chunk` octets inside parentheses)."""
    head, _, p = txt.partition("p=")
    parts = ['"%s"' % head] + ['"p=%s"' % p[:chunk - 2]]
    p = p[chunk - 2:]
    while p:
        parts.append('"%s"' % p[:chunk])
        p = p[chunk:]
    return "%s. IN TXT ( %s )\n" % (name, " ".join(parts))


# ---- reference body canonicalization (RFC 6376 sections 3.4.3, 3.4.4) ----
#
# Written from the RFC text, independently of the verifiers under test, so
# that when two implementations disagree on a body the harness can say
# which one follows the RFC.

def _strip_final_crlfs(b):
    while b.endswith(CRLF):
        b = b[:-2]
    return b


def ref_body_simple(body):
    """simple: "*CRLF" at the end becomes one CRLF; a body with no CRLF at
    the end (including an empty body) gets one."""
    return _strip_final_crlfs(body) + CRLF


def ref_body_relaxed(body, lenient=False):
    """relaxed: per line, drop WSP at the end and squeeze WSP runs to one
    SP; then drop empty lines at the end; a non-empty result not ending
    in CRLF gets one.

    The text after the last CRLF, when there is any, is read two ways.
    strict (lenient=False): it is a line too, one without its terminator,
    so WSP at its end goes (Mail::DKIM).  lenient: step (a) runs before
    (b) adds the CRLF, so that text is not "at the end of a line" yet and
    its trailing WSP only shrinks to one SP (dkimpy).  RFC 6376 can be
    read either way; the harness accepts both and notes which is used."""
    lines = body.split(CRLF)
    out = []
    for k, line in enumerate(lines):
        line = re.sub(rb"[ \t]+", b" ", line)
        if not (lenient and k == len(lines) - 1):
            line = re.sub(rb" $", b"", line)
        out.append(line)
    if out and out[-1] == b"":
        out.pop()                 # what followed the final CRLF, or nothing
    while out and out[-1] == b"":
        out.pop()                 # empty lines at the end
    return b"".join(l + CRLF for l in out)


def ref_body(body, c_value, length=None, lenient=False):
    """Canonical body for a c= value (header/body; body defaults to
    simple), cut to l= octets when given."""
    parts = c_value.split(b"/") if c_value else [b"simple"]
    algo = parts[1] if len(parts) > 1 else b"simple"
    if algo == b"relaxed":
        canon = ref_body_relaxed(body, lenient)
    else:
        canon = ref_body_simple(body)
    if length is not None:
        canon = canon[:length]
    return canon


def ref_bh(body, c_value, length=None, lenient=False):
    import base64
    import hashlib
    return base64.b64encode(hashlib.sha256(
        ref_body(body, c_value, length, lenient)).digest())


def ref_bh_readings(body, c_value, length=None):
    """{"strict": bh, "lenient": bh} as str; the two differ only for a
    relaxed body whose unterminated last line ends in WSP."""
    return {"strict": ref_bh(body, c_value, length).decode(),
            "lenient": ref_bh(body, c_value, length, True).decode()}


def readings_matching(bh, readings):
    return {k for k, v in readings.items() if v == bh}


# ---- message surgery --------------------------------------------------------

def split_message(data):
    """Split raw bytes into (header_block, separator, body).  header_block
    ends with the CRLF of its last field; separator is b"\\r\\n" or b"" for
    a message that has no blank line."""
    if data.startswith(CRLF):
        return b"", CRLF, data[2:]
    idx = data.find(b"\r\n\r\n")
    if idx < 0:
        return data, b"", b""
    return data[:idx + 2], CRLF, data[idx + 4:]


def header_fields(block):
    """Split a header block into raw fields (each with its folding and its
    final CRLF)."""
    fields = []
    for line in re.split(b"(?<=\r\n)", block):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def field_name(raw):
    m = re.match(rb"([^:]*):", raw)
    return m.group(1).strip().lower() if m else b""


def tag_value(sig_field, tag):
    """The value of tag `tag` in a raw DKIM-Signature field, whitespace
    removed, or None."""
    value = sig_field.split(b":", 1)[1]
    for part in value.split(b";"):
        k, eq, v = part.partition(b"=")
        if eq and k.strip() == tag:
            return re.sub(rb"\s+", b"", v)
    return None


def first_signature(data):
    head, _, _ = split_message(data)
    for f in header_fields(head):
        if field_name(f) == b"dkim-signature":
            return f
    return None


def rotate_letter(c):
    """A different ASCII letter of the same case."""
    if 97 <= c <= 122:
        return 97 + (c - 97 + 1) % 26
    return 65 + (c - 65 + 1) % 26


def first_letter(buf, start=0):
    m = re.compile(rb"[A-Za-z]").search(buf, start)
    return m.start() if m else -1


def append_after_body(data):
    """What a list adds after an l= signed body: a blank line and a footer.
    A body missing its final CRLF gets one first so the signed prefix of
    the canonical body stays as it was."""
    head, sep, body = split_message(data)
    if not sep:
        return None
    if body and not body.endswith(CRLF):
        body += CRLF
    return head + sep + body + b"\r\n-- \r\nAppended footer line\r\n"


def tamper_subject(data):
    """Change one ASCII letter in the Subject value.  Returns new bytes or
    None when there is no Subject with a letter."""
    head, sep, body = split_message(data)
    fields = header_fields(head)
    for i, f in enumerate(fields):
        if field_name(f) == b"subject":
            colon = f.index(b":")
            pos = first_letter(f, colon + 1)
            if pos < 0:
                return None
            nf = bytearray(f)
            nf[pos] = rotate_letter(nf[pos])
            fields[i] = bytes(nf)
            return b"".join(fields) + sep + body
    return None


def add_from_on_top(data):
    """Put a second From right after the DKIM-Signature field: a signature
    whose h= names From more often than the message has it must break."""
    head, sep, body = split_message(data)
    fields = header_fields(head)
    return (fields[0] + b"From: Mallory <mallory@example.net>\r\n" +
            b"".join(fields[1:]) + sep + body)
