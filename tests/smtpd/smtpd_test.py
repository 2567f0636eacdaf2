#!/usr/bin/python3
"""smtpd_test.py - SMTP session scripts against smtpd_testd.

    smtpd_test.py TESTD WORKDIR GROUP [--sanitize]

GROUP is one of basic, smuggling, limits, tls, slow, swaks. Each group
starts its own smtpd_testd on a free loopback port, runs its cases with raw
sockets (exact bytes on the wire, no smtplib), and ends with the line
"N passed, M failed". The exit status is 0 only if nothing failed.
"""

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings

TESTD = WORKDIR = None
SANITIZE = False
RESULTS = {"passed": 0, "failed": 0}
ENHANCED = re.compile(rb"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}( |$)")


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


# ---- the server ----------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """One smtpd_testd with its own spool and outbox."""

    def __init__(self, name, *args, tls=False):
        self.dir = os.path.join(WORKDIR, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.spool = os.path.join(self.dir, "spool")
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.spool)
        os.makedirs(self.out)
        self.port = free_port()
        cmd = [TESTD, "-l", "127.0.0.1:%d" % self.port, "-s", self.spool,
               "-o", self.out, "-v"] + list(args)
        if tls:
            cert, key = make_cert()
            cmd += ["-c", cert, "-k", key]
        self.log = open(os.path.join(self.dir, "testd.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=self.log)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            raise SystemExit("smtpd_testd did not start: %r (see %s)"
                             % (line, self.log.name))

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def messages(self):
        """{n: (bytes of N.eml, {key: [values]} of N.env)}"""
        got = {}
        for f in os.listdir(self.out):
            if f.endswith(".eml"):
                n = int(f[:-4])
                with open(os.path.join(self.out, f), "rb") as fh:
                    body = fh.read()
                env = {}
                with open(os.path.join(self.out, "%d.env" % n)) as fh:
                    for line in fh.read().splitlines():
                        k, _, v = line.partition("=")
                        env.setdefault(k, []).append(v)
                got[n] = (body, env)
        return got

    def message(self, queued_reply):
        m = re.search(rb"queued as (\d+)", queued_reply)
        check(m, "no queue id in %r" % queued_reply)
        return self.messages()[int(m.group(1))]

    def hooklog(self):
        with open(os.path.join(self.out, "hook.log"), "rb") as fh:
            return fh.read()

    def tmpfiles(self):
        return os.listdir(self.spool)

    def loose_tmpfiles(self):
        """Spool files the server does not hold open: the server keeps
        its spool files for later messages, and nothing else may be left."""
        held = set()
        fds = "/proc/%d/fd" % self.proc.pid
        for fd in os.listdir(fds):
            try:
                held.add(os.readlink(os.path.join(fds, fd)))
            except OSError:
                pass
        return [f for f in self.tmpfiles()
                if os.path.join(self.spool, f) not in held]

    def check_tmpfiles(self, most):
        """Every spool file held by the server, and at most most of them."""
        loose = self.loose_tmpfiles()
        check(loose == [], "temp files left that the server does not "
              "hold: %r" % loose)
        check(len(self.tmpfiles()) <= most, "%d spool files, want at most "
              "%d: %r" % (len(self.tmpfiles()), most, self.tmpfiles()))

    def rss_peak_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0


CERT = None


def make_cert():
    global CERT
    if CERT:
        return CERT
    cert = os.path.join(WORKDIR, "cert.pem")
    key = os.path.join(WORKDIR, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=mx.test.example"],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    CERT = (cert, key)
    return CERT


# ---- a raw client ----------------------------------------------------------

class Client:
    def __init__(self, port, src=None, timeout=10, bufsize=None):
        self.sock = socket.socket()
        self.sock.settimeout(timeout)
        if bufsize:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
        if src:
            self.sock.bind((src, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.replies = []       # every reply line seen, for the code check

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Fail("timed out waiting for a reply (have %r)"
                           % self.buf[:200])
            if not chunk:
                raise Fail("connection closed (have %r)" % self.buf[:200])
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def reply(self):
        """One whole reply: its lines, without CRLF."""
        lines = []
        while True:
            line = self.line()
            check(re.match(rb"^\d\d\d[ -]|^\d\d\d$", line),
                  "malformed reply line %r" % line)
            lines.append(line)
            self.replies.append(line)
            if len(line) == 3 or line[3:4] == b" ":
                return lines

    def expect(self, code, what=""):
        r = self.reply()
        check(r[-1].startswith(str(code).encode()),
              "%s: got %r, want %s" % (what or "reply", r, code))
        return b"\n".join(r)

    def cmd(self, line, code, what=None):
        self.send(line + b"\r\n")
        return self.expect(code, what or line[:60].decode("latin-1"))

    def closed(self, timeout=5):
        """True if the server closed the connection (buffered data first)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True

    def nothing_pending(self, wait=0.5):
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
            self.buf += chunk
        except socket.timeout:
            pass
        finally:
            self.sock.settimeout(10)
        return self.buf == b""

    def starttls(self, ctx=None):
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        check(self.buf == b"", "data after the 220 to STARTTLS: %r"
              % self.buf)
        self.sock = ctx.wrap_socket(self.sock)
        return self.sock

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def session(port, ehlo=b"client.example.org", **kw):
    c = Client(port, **kw)
    c.expect(220, "greeting")
    c.cmd(b"EHLO " + ehlo, 250)
    return c


def transaction(c, sender, rcpts, text, rcpt_codes=None):
    """MAIL, RCPT..., DATA, the text (already dot-stuffed, ending CRLF)."""
    c.cmd(b"MAIL FROM:<" + sender + b">", 250)
    for i, r in enumerate(rcpts):
        c.cmd(b"RCPT TO:<" + r + b">",
              rcpt_codes[i] if rcpt_codes else 250)
    c.cmd(b"DATA", 354)
    c.send(text + b".\r\n")
    return c.expect(250, "end of DATA")


def check_codes(c):
    """ENHANCEDSTATUSCODES: each 2xx/4xx/5xx reply but the greeting and
    the EHLO/HELO replies (RFC 2034 §3; their first word is a domain)."""
    for line in c.replies:
        if line[:1] in b"245" and not line.startswith(b"250-") and \
                not line.startswith(b"220 mx.test.example") and \
                not line.startswith(b"250 mx.test.example") and \
                line not in (b"250 ENHANCEDSTATUSCODES",):
            check(ENHANCED.match(line), "no enhanced code: %r" % line)


# ---- the cases -------------------------------------------------------------

MSG = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\n"
       b"\r\nhello\r\n")


def t_greeting_ehlo(srv):
    c = Client(srv.port)
    g = c.expect(220, "greeting")
    check(g.startswith(b"220 mx.test.example"), "greeting %r" % g)
    r = c.cmd(b"EHLO client.example.org", 250)
    kw = [l[4:] for l in r.split(b"\n")]
    check(kw[0].startswith(b"mx.test.example"), "EHLO first line %r" % kw)
    for want in (b"PIPELINING", b"8BITMIME", b"ENHANCEDSTATUSCODES"):
        check(want in kw, "EHLO lacks %s: %r" % (want, kw))
    check(any(re.match(rb"^SIZE \d+$", k) for k in kw), "no SIZE n: %r" % kw)
    check(b"STARTTLS" not in kw, "STARTTLS offered without TLS: %r" % kw)
    c.cmd(b"HELO client.example.org", 250)
    c.cmd(b"NOOP", 250)
    c.cmd(b"noop with args", 250)
    c.cmd(b"HELP", 214)
    c.cmd(b"VRFY postmaster", 252)
    c.cmd(b"VRFY", 501)
    c.cmd(b"RSET", 250)
    c.cmd(b"RSET now", 501)
    c.cmd(b"EHLO", 501)
    c.cmd(b"EHLO two words", 501)
    c.cmd(b"FOO bar", 500)
    c.cmd(b"MAILFROM:<a@b.org>", 500)
    c.cmd(b"QUIT", 221)
    check(c.closed(), "not closed after QUIT")
    check_codes(c)


def t_sequence(srv):
    c = Client(srv.port)
    c.expect(220)
    c.cmd(b"MAIL FROM:<a@example.org>", 503, "MAIL before EHLO")
    c.cmd(b"RCPT TO:<b@example.net>", 503, "RCPT before EHLO")
    c.cmd(b"DATA", 503, "DATA before EHLO")
    c.cmd(b"EHLO c.example.org", 250)
    c.cmd(b"RCPT TO:<b@example.net>", 503, "RCPT before MAIL")
    c.cmd(b"DATA", 503, "DATA before MAIL")
    c.cmd(b"MAIL FROM:<a@example.org>", 250)
    c.cmd(b"MAIL FROM:<a@example.org>", 503, "nested MAIL")
    c.cmd(b"DATA", 554, "DATA with no recipient")
    c.cmd(b"RCPT TO:<b@elsewhere.org>", 550)
    c.cmd(b"DATA", 554, "DATA with no valid recipient")
    c.cmd(b"RSET", 250)
    c.cmd(b"RCPT TO:<b@example.net>", 503, "RCPT after RSET")
    check_codes(c)
    c.close()


def t_spool_reuse(srv):
    """The spool file is reused: each message is stored with its own bytes,
    never a longer one's tail, in one session and across sessions, and
    sessions one after another share one file."""
    def text(tag, lines):
        return (b"Subject: " + tag + b"\r\n\r\n" +
                b"".join(b"%s line %05d of the body\r\n" % (tag, i)
                         for i in range(lines)))
    sizes = [(b"long", 3000), (b"short", 3), (b"mid", 400), (b"empty", 0)]
    c = session(srv.port)
    for tag, n in sizes:
        body, _ = srv.message(transaction(c, b"a@example.org",
                                          [b"b@example.net"], text(tag, n)))
        check(body == text(tag, n), "%s: stored %d bytes %r..., want %d"
              % (tag.decode(), len(body), body[:40], len(text(tag, n))))
    c.cmd(b"QUIT", 221)
    # A refused message in between leaves nothing of itself behind.
    c = session(srv.port)
    c.cmd(b"MAIL FROM:<a@example.org>", 250)
    c.cmd(b"RCPT TO:<b@example.net>", 250)
    c.cmd(b"DATA", 354)
    c.send(text(b"bare", 500) + b"bare\nLF\r\n.\r\n")
    c.expect(550, "bare LF")
    body, _ = srv.message(transaction(c, b"a@example.org", [b"b@example.net"],
                                      text(b"after", 2)))
    check(body == text(b"after", 2), "after a refusal: stored %r" % body[:60])
    c.cmd(b"QUIT", 221)
    time.sleep(0.2)
    srv.check_tmpfiles(1)


def t_transaction(srv):
    c = session(srv.port)
    text = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: t\r\n"
            b"\r\nline one\r\n..leading dot\r\n.\t.tab\r\n...\r\n"
            b"\xc3\xa9t\xc3\xa9 8-bit\r\n\r\nlast\r\n")
    want = text.replace(b"\r\n..", b"\r\n.").replace(b"\r\n.\t", b"\r\n\t")
    r = transaction(c, b"a@example.org", [b"b@example.net",
                    b"c@EXAMPLE.net"], text)
    body, env = srv.message(r)
    check(body == want, "stored %r, want %r" % (body, want))
    check(env["from"] == ["a@example.org"], "env from %r" % env)
    check(env["rcpt"] == ["b@example.net", "c@EXAMPLE.net"],
          "env rcpt %r" % env)
    check(env["helo"] == ["client.example.org"], "env helo %r" % env)
    check(env["tls"] == ["0"] and env["addr"] == ["127.0.0.1"],
          "env peer %r" % env)
    # A second transaction in the same session, null sender, params.
    c.cmd(b"MAIL FROM:<> SIZE=100 BODY=8BITMIME", 250)
    c.cmd(b"RCPT TO:<d@example.net>", 250)
    c.cmd(b"DATA", 354)
    c.send(MSG + b".\r\n")
    r = c.expect(250)
    body, env2 = srv.message(r)
    check(body == MSG and env2["from"] == [""], "second: %r %r" % (body, env2))
    # Each MAIL is numbered in order (smtpd_txn_serial), one abandoned
    # by RSET too.
    first = int(env["serial"][0])
    check(int(env2["serial"][0]) == first + 1,
          "serials %r then %r" % (env["serial"], env2["serial"]))
    c.cmd(b"MAIL FROM:<a@example.org>", 250)
    c.cmd(b"RSET", 250)
    # An empty message is a message too.
    c.cmd(b"MAIL FROM:<a@example.org>", 250)
    c.cmd(b"RCPT TO:<d@example.net>", 250)
    c.cmd(b"DATA", 354)
    c.send(b".\r\n")
    body, env3 = srv.message(c.expect(250))
    check(body == b"", "empty message stored as %r" % body)
    check(int(env3["serial"][0]) == first + 3,
          "serial %r after %d and an abandoned MAIL" % (env3["serial"],
                                                         first + 1))
    # HELO (no ESMTP): a transaction works, parameters do not.
    c.cmd(b"HELO old.example.org", 250)
    c.cmd(b"MAIL FROM:<a@example.org> SIZE=10", 555)
    r = transaction(c, b"a@example.org", [b"e@example.net"], MSG)
    check(srv.message(r)[1]["helo"] == ["old.example.org"], "helo")
    # The message hook's 4xx reaches the client.
    c.cmd(b"MAIL FROM:<defer@example.org>", 250)
    c.cmd(b"RCPT TO:<d@example.net>", 250)
    c.cmd(b"DATA", 354)
    c.send(MSG + b".\r\n")
    c.expect(451, "deferred by the hook")
    c.cmd(b"QUIT", 221)
    check_codes(c)


def t_mail_params(srv):
    c = session(srv.port)
    for line, code in [
            (b"MAIL FROM:<a@example.org> BODY=7BIT", 250),
            (b"RSET", 250),
            (b"MAIL FROM:<a@example.org> body=8bitmime size=5", 250),
            (b"RSET", 250),
            (b"MAIL FROM: <a@example.org>", 250),   # a space is tolerated
            (b"RSET", 250),
            (b"MAIL FROM:<a@example.org> BODY=BINARYMIME", 501),
            (b"MAIL FROM:<a@example.org> SIZE=abc", 501),
            (b"MAIL FROM:<a@example.org> SIZE=", 501),
            (b"MAIL FROM:<a@example.org> SIZE=1 SIZE=2", 501),
            (b"MAIL FROM:<a@example.org> SIZE=99999999999999999999999", 501),
            (b"MAIL FROM:<a@example.org> SMTPUTF8", 555),
            (b"MAIL FROM:<a@example.org> FOO=bar", 555)]:
        c.cmd(line, code)
    check_codes(c)
    c.close()
    # A new session: the errors above are close to max_errors.
    c = session(srv.port)
    for line, code in [
            (b"MAIL FROM:a@example.org", 501),
            (b"MAIL FROM:<a@example.org", 501),
            (b"MAIL FROM:<a@@example.org>", 501),
            (b"MAIL TO:<a@example.org>", 501),
            (b"MAIL FROM:<@relay.org:a@example.org>", 550),
            (b"MAIL FROM:<a@example.org>", 250)]:
        c.cmd(line, code)
    c.close()
    c = session(srv.port)
    for line, code in [
            (b"MAIL FROM:<a@example.org>", 250),
            (b"RCPT TO:<b@example.net> NOTIFY=NEVER", 555),
            (b"RCPT TO:<>", 501),
            (b"RCPT TO:b@example.net", 501),
            (b"RCPT TO:<b@example.net", 501),
            (b"RCPT TO:<b>", 501),
            (b"RCPT TO:<Postmaster>", 550)]:    # the hook says no
        c.cmd(line, code)
    check_codes(c)
    c.close()


def t_pipelining(srv):
    c = Client(srv.port)
    c.expect(220)
    c.send(b"EHLO p.example.org\r\nMAIL FROM:<a@example.org>\r\n"
           b"RCPT TO:<b@example.net>\r\nRCPT TO:<nobody@elsewhere.org>\r\n"
           b"RCPT TO:<c@example.net>\r\nNOOP\r\nDATA\r\n")
    for code in (250, 250, 250, 550, 250, 250, 354):
        c.expect(code, "pipelined reply")
    # The text, the end marker and the next transaction in one write; the
    # commands after the dot wait for the message hook's reply.
    c.send(MSG + b".\r\nMAIL FROM:<x@example.org>\r\n"
           b"RCPT TO:<y@example.net>\r\nDATA\r\n")
    r1 = c.expect(250, "first message")
    for code in (250, 250, 354):
        c.expect(code, "second transaction, pipelined after the dot")
    c.send(MSG + b".\r\nQUIT\r\n")
    r2 = c.expect(250, "second message")
    c.expect(221)
    check(c.closed(), "not closed after QUIT")
    check(srv.message(r1)[1]["rcpt"] == ["b@example.net", "c@example.net"],
          "first envelope")
    check(srv.message(r2)[1]["from"] == ["x@example.org"], "second envelope")


def t_relay_tricks(srv):
    """Each address reaches the rcpt hook exactly as sent; the source
    route never does."""
    cases = [
        (b"user%other@example.net", 550),
        (b'"user@other"@example.net', 550),
        (b"user!other@example.net", 550),
        (b"user@example.net.", 550),
        (b"USER@EXAMPLE.NET", 250),
        (b"user@EXAMPLE.net", 250),
        (b"user@other.org", 550),
        (b"user@OTHER.ORG.", 550),
        (b"user@example.net.other.org", 550),
        (b"user@[192.0.2.1]", 550),
    ]
    c = session(srv.port)
    c.cmd(b"MAIL FROM:<tricks@example.org>", 250)
    for addr, code in cases:
        r = c.cmd(b"RCPT TO:<" + addr + b">", code)
        if code == 550:
            check(b"5.7.1" in r and addr in r, "reply %r for %r" % (r, addr))
    for route in (b"<@example.net:user@other.org>",
                  b"<@a.org,@example.net:user@other.org>"):
        r = c.cmd(b"RCPT TO:" + route, 550)
        check(b"5.7.1" in r, "source route reply %r" % r)
    c.close()
    time.sleep(0.2)
    log = srv.hooklog()
    for addr, code in cases:
        want = b"rcpt from=<tricks@example.org> to=<" + addr + b"> " + \
            (b"accept" if code == 250 else b"reject") + b"\n"
        check(want in log, "hook did not see %r exactly (log %r)"
              % (addr, log[-500:]))
    check(b"@example.net:" not in log and b"to=<@" not in log,
          "a source route reached the hook")


def t_long_command(srv):
    c = session(srv.port)
    ok = b"NOOP " + b"x" * (512 - 7)            # 512 with CRLF
    check(len(ok) + 2 == 512, "setup")
    c.cmd(ok, 250, "512-octet command")
    c.cmd(ok + b"x", 500, "513-octet command")
    c.cmd(b"NOOP", 250, "after 513")
    # Much longer, in several writes: one 500, then in sync again.
    c.send(b"NOOP " + b"y" * 3000)
    time.sleep(0.2)
    c.send(b"z" * 9000)
    time.sleep(0.2)
    c.send(b"\r\nNOOP\r\n")
    r = c.expect(500, "12 KB command")
    check(b"5.5.2" in r, "code %r" % r)
    c.expect(250, "NOOP after the long line")
    check(c.nothing_pending(), "extra replies: %r" % c.buf)
    # RCPT with a 513-octet line too.
    c.cmd(b"MAIL FROM:<a@example.org>", 250)
    c.cmd(b"RCPT TO:<" + b"a" * (513 - 24) + b"@example.net>", 500)
    c.cmd(b"QUIT", 221)


def t_bare_lf_command(srv):
    c = session(srv.port)
    c.send(b"NOOP\n")
    c.expect(500, "bare LF command")
    c.send(b"NOOP\r\r\n")
    c.expect(500, "CR CR LF")
    c.send(b"NO\rOP\r\n")
    c.expect(500, "CR inside a command")
    c.cmd(b"NOOP", 250)
    c.close()


def t_nul_utf8(srv):
    c = session(srv.port)
    for bad in (b"NO\x00OP", b"\x00", b"EHLO \xff\xfe", b"EHLO caf\xc3\xa9",
                b"MAIL FROM:<a\x00b@example.org>",
                b"MAIL FROM:<\xc3\x28@example.org>",
                b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"):
        c.cmd(bad, 500, repr(bad))
    c.cmd(b"MAIL FROM:<a@example.org>", 250, "still in sync")
    c.cmd(b"RSET", 250)
    c.close()
    # The server is alive and well for the next client.
    c = session(srv.port)
    c.cmd(b"QUIT", 221)


def t_error_limit(srv):
    c = session(srv.port)
    for i in range(9):
        c.cmd(b"BOGUS %d" % i, 500)
    c.send(b"BOGUS 9\r\n")
    c.expect(500, "tenth error")
    c.expect(421, "closing after the limit")
    check(c.closed(), "still open after max_errors")


def t_close_midway(srv):
    """Clients that vanish mid-command, mid-DATA and in the hook's wait."""
    c = session(srv.port)
    c.send(b"MAIL FROM:<a@exa")
    c.close()
    c = session(srv.port)
    c.cmd(b"MAIL FROM:<a@example.org>", 250)
    c.cmd(b"RCPT TO:<b@example.net>", 250)
    c.cmd(b"DATA", 354)
    c.send(b"Subject: half\r\n\r\nhalf a mess")
    c.close()
    c = session(srv.port)
    c.cmd(b"MAIL FROM:<a@example.org>", 250)
    c.cmd(b"RCPT TO:<b@example.net>", 250)
    c.cmd(b"DATA", 354)
    c.send(MSG + b".\r\n")
    c.close()                  # before the hook replies
    time.sleep(0.5)
    # One session at a time in DATA: one file, used over and over.
    srv.check_tmpfiles(1)
    c = session(srv.port)
    c.cmd(b"QUIT", 221)


# -- smuggling and DATA ------------------------------------------------------

SMUGGLE = (b"MAIL FROM:<evil@attacker.org>\r\nRCPT TO:<victim@example.net>\r\n"
           b"DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n")


def data_session(srv, c=None):
    c = c or session(srv.port)
    c.cmd(b"MAIL FROM:<a@example.org>", 250)
    c.cmd(b"RCPT TO:<b@example.net>", 250)
    c.cmd(b"DATA", 354)
    return c


def smuggle_case(srv, name, sep):
    before = len(srv.messages())
    c = data_session(srv)
    c.send(b"Subject: x\r\n\r\nhello" + sep + SMUGGLE)
    # Nothing may come back yet: the text has not ended.
    check(c.nothing_pending(0.5), "%s ended DATA early: %r" % (name, c.buf))
    c.send(b"\r\n.\r\n")
    r = c.expect(550, name)
    check(b"5.6.0" in r, "%s: reply %r" % (name, r))
    check(c.nothing_pending(0.3), "%s: extra replies %r" % (name, c.buf))
    c.cmd(b"NOOP", 250, "in sync after " + name)
    c.cmd(b"RCPT TO:<b@example.net>", 503, "no transaction left")
    c.close()
    time.sleep(0.2)
    check(len(srv.messages()) == before, "%s: a message was stored" % name)
    check(b"victim" not in srv.hooklog(), "%s: smuggled RCPT ran" % name)


def t_smuggle_lf_dot_lf(srv):
    smuggle_case(srv, "LF . LF", b"\n.\n")


def t_smuggle_cr_dot_lf(srv):
    smuggle_case(srv, "CR . LF", b"\r.\n")


def t_smuggle_lf_dot_crlf(srv):
    smuggle_case(srv, "LF . CRLF", b"\n.\r\n")


def t_smuggle_crlf_dot_lf(srv):
    smuggle_case(srv, "CRLF . LF", b"\r\n.\n")


def t_smuggle_crlf_dot_cr(srv):
    smuggle_case(srv, "CRLF . CR", b"\r\n.\r")


def t_smuggle_cr_dot_cr(srv):
    smuggle_case(srv, "CR . CR", b"\r.\r")


def t_bare_cr(srv):
    smuggle_case(srv, "bare CR", b"\rmore\r\n")


def t_bare_lf(srv):
    smuggle_case(srv, "bare LF", b"\nmore\r\n")


def t_smuggle_split_writes(srv):
    """The end marker split over writes still ends DATA, once."""
    c = data_session(srv)
    for part in (b"Subject: s\r\n\r\nbody\r", b"\n", b".", b"\r", b"\n"):
        c.send(part)
        time.sleep(0.1)
    r = c.expect(250, "split end marker")
    body, _ = srv.message(r)
    check(body == b"Subject: s\r\n\r\nbody\r\n", "stored %r" % body)
    c.close()


def t_text_line_length(srv):
    c = data_session(srv)
    line = b"a" * 998 + b"\r\n"                     # 1000 with CRLF
    c.send(b"Subject: l\r\n\r\n" + line + b"." + line + b".\r\n")
    body, _ = srv.message(c.expect(250, "1000-octet lines"))
    check(body == b"Subject: l\r\n\r\n" + line + line, "stored wrong")
    data_session(srv, c)
    c.send(b"Subject: l\r\n\r\n" + b"a" * 999 + b"\r\n.\r\n")
    r = c.expect(500, "1001-octet line")
    check(b"5.5.2" in r, "reply %r" % r)
    c.cmd(b"NOOP", 250)
    c.close()


def t_data_nul_8bit(srv):
    c = data_session(srv)
    text = b"Subject: 8\r\n\r\n\xff\xfe\xc3\x28 invalid utf-8 \x80\r\n"
    c.send(text + b".\r\n")
    body, _ = srv.message(c.expect(250, "8-bit text"))
    check(body == text, "8-bit stored as %r" % body)
    data_session(srv, c)
    c.send(b"Subject: n\r\n\r\nnul \x00 here\r\n.\r\n")
    c.expect(550, "NUL in DATA")
    c.cmd(b"NOOP", 250)
    c.close()


def t_size(srv):
    """The server runs with -S 20000."""
    c = session(srv.port)
    r = c.cmd(b"EHLO c.example.org", 250)
    check(b"SIZE 20000" in r, "EHLO %r" % r)
    r = c.cmd(b"MAIL FROM:<a@example.org> SIZE=20001", 552, "declared")
    check(b"5.3.4" in r, "reply %r" % r)
    c.cmd(b"MAIL FROM:<a@example.org> SIZE=20000", 250, "declared at max")
    c.cmd(b"RCPT TO:<b@example.net>", 250)
    c.cmd(b"DATA", 354)
    head = b"Subject: big\r\n\r\n"
    exact = head + (b"x" * 98 + b"\r\n") * ((20000 - len(head)) // 100)
    exact += b"y" * (20000 - len(exact) - 2) + b"\r\n"
    check(len(exact) == 20000, "setup %d" % len(exact))
    c.send(exact + b".\r\n")
    body, _ = srv.message(c.expect(250, "exactly 20000"))
    check(body == exact, "20000-octet message stored wrong")
    # Declared small, sent large: refused at the end, nothing stored.
    before = len(srv.messages())
    c.cmd(b"MAIL FROM:<a@example.org> SIZE=100", 250)
    c.cmd(b"RCPT TO:<b@example.net>", 250)
    c.cmd(b"DATA", 354)
    c.send(head + (b"z" * 998 + b"\r\n") * 200 + b".\r\n")
    r = c.expect(552, "actual size over the limit")
    check(b"5.3.4" in r, "reply %r" % r)
    c.cmd(b"NOOP", 250)
    time.sleep(0.3)
    check(len(srv.messages()) == before, "oversize message stored")
    srv.check_tmpfiles(1)
    c.close()


def t_big_message_memory(srv):
    """8 MB through the server (-S 64000000): stored byte-identical, and
    the server's peak RSS grows by far less than the message."""
    c = data_session(srv)
    chunk = (b"0123456789" * 9 + b"abcdefgh\r\n") * 1000     # 100 KB
    before = srv.rss_peak_kb()
    head = b"Subject: big\r\n\r\n"
    c.send(head)
    for _ in range(80):
        c.send(chunk)
    c.send(b".\r\n")
    body, _ = srv.message(c.expect(250, "8 MB message"))
    check(len(body) == len(head) + 80 * len(chunk) and
          body == head + chunk * 80, "big message stored wrong")
    grown = srv.rss_peak_kb() - before
    if not SANITIZE:
        check(grown < 3000, "peak RSS grew by %d kB for an 8 MB message"
              % grown)
    c.close()


# -- limits --------------------------------------------------------------------

def t_thousand_rcpts(srv):
    c = session(srv.port)
    c.cmd(b"MAIL FROM:<a@example.org>", 250)
    c.send(b"".join(b"RCPT TO:<r%d@example.net>\r\n" % i
                    for i in range(1000)))
    codes = [c.reply()[-1][:9] for _ in range(1000)]
    check(codes[:100] == [b"250 2.1.5"] * 100, "first 100: %r" % codes[:3])
    check(codes[100:] == [b"452 4.5.3"] * 900, "last 900: %r"
          % sorted(set(codes[100:])))
    c.cmd(b"DATA", 354)
    c.send(MSG + b".\r\n")
    _, env = srv.message(c.expect(250))
    check(len(env["rcpt"]) == 100 and env["rcpt"][99] == "r99@example.net",
          "stored %d recipients" % len(env["rcpt"]))
    c.cmd(b"QUIT", 221)


def t_sessions_per_ip(srv):
    """The server runs with -m 5 -p 3."""
    held = [Client(srv.port) for _ in range(3)]
    for c in held:
        c.expect(220, "one of three")
    extra = Client(srv.port)
    r = extra.expect(421, "fourth from 127.0.0.1")
    check(b"4.7.0" in r, "reply %r" % r)
    check(extra.closed(), "refused connection left open")
    other = [Client(srv.port, src="127.0.0.2") for _ in range(2)]
    for c in other:
        c.expect(220, "another address")
    over = Client(srv.port, src="127.0.0.3")
    r = over.expect(421, "sixth in total")
    check(b"4.7.0" in r, "reply %r" % r)
    held[0].cmd(b"QUIT", 221)
    check(held[0].closed(), "QUIT")
    time.sleep(0.3)
    again = Client(srv.port)
    again.expect(220, "a slot freed")
    again.cmd(b"EHLO c.example.org", 250)
    again.cmd(b"QUIT", 221)
    for c in held[1:] + other:
        c.close()
    time.sleep(0.3)
    # Every count went back to zero: three from one address fit again.
    refill = [Client(srv.port, src="127.0.0.2") for _ in range(3)]
    for c in refill:
        c.expect(220, "a full set again after all closed")
    for c in refill:
        c.close()


def t_backpressure(srv):
    """A client that pipelines but never reads its replies: the server
    stops reading commands (back-pressure), its memory stays bounded, and
    the session is fine once the client reads."""
    n = 100000
    c = Client(srv.port, bufsize=4096)
    c.expect(220)
    blob = b"HELP\r\n" * n                  # about 8 MB of replies owed
    sent = 0
    c.sock.settimeout(3)
    try:
        while sent < len(blob):
            sent += c.sock.send(blob[sent:sent + 65536])
    except socket.timeout:
        pass
    rss = srv.rss_peak_kb()
    check(sent < len(blob), "the server read all %d octets without "
          "back-pressure" % sent)
    done = threading.Thread(target=c.sock.sendall, args=(blob[sent:],))
    c.sock.settimeout(10)
    done.start()
    got = 0
    data = c.buf
    while got < n:
        chunk = c.sock.recv(1 << 20)
        check(chunk, "closed after %d replies" % got)
        data += chunk
        got += data.count(b"\r\n")
        data = data[data.rfind(b"\r\n") + 2:] if b"\r\n" in data else data
    done.join()
    c.buf = data
    c.cmd(b"NOOP", 250)
    c.close()
    if not SANITIZE:
        check(rss < 64000, "peak RSS %d kB" % rss)


# -- TLS -------------------------------------------------------------------------

def t_starttls_injection(srv):
    c = Client(srv.port)
    c.expect(220)
    r = c.cmd(b"EHLO c.example.org", 250)
    check(b"STARTTLS" in r, "STARTTLS not offered: %r" % r)
    c.cmd(b"MAIL FROM:<a@example.org>", 250)
    c.cmd(b"STARTTLS", 503, "STARTTLS inside a transaction")
    c.cmd(b"RSET", 250)
    # The classic injection: commands behind STARTTLS in the same write.
    c.send(b"STARTTLS\r\nMAIL FROM:<evil@attacker.org>\r\n"
           b"RCPT TO:<victim@example.net>\r\n")
    c.expect(220, "STARTTLS")
    c.starttls()
    # After TLS the session starts over, before EHLO, with nothing left.
    c.cmd(b"RCPT TO:<b@example.net>", 503, "injected MAIL must be gone")
    c.cmd(b"MAIL FROM:<a@example.org>", 503, "state is before EHLO")
    r = c.cmd(b"EHLO c.example.org", 250)
    check(b"STARTTLS" not in r, "STARTTLS offered again: %r" % r)
    c.cmd(b"STARTTLS", 502, "STARTTLS twice")
    r = transaction(c, b"a@example.org", [b"b@example.net"], MSG)
    body, env = srv.message(r)
    check(body == MSG and env["tls"] == ["1"], "TLS message %r" % env)
    c.cmd(b"QUIT", 221)
    time.sleep(0.2)
    check(b"victim" not in srv.hooklog(), "the injected RCPT reached the hook")


def t_starttls_pipelined_ehlo(srv):
    """EHLO and STARTTLS pipelined (allowed); what follows is dropped."""
    c = Client(srv.port)
    c.expect(220)
    c.send(b"EHLO c.example.org\r\nSTARTTLS\r\nNOOP\r\n")
    c.expect(250)
    c.expect(220)
    c.starttls()
    c.cmd(b"EHLO c.example.org", 250)
    c.cmd(b"NOOP", 250)
    check(c.nothing_pending(), "a reply to the dropped NOOP: %r" % c.buf)
    c.cmd(b"QUIT", 221)


def t_starttls_before_ehlo(srv):
    c = Client(srv.port)
    c.expect(220)
    c.cmd(b"STARTTLS", 503)
    c.cmd(b"EHLO c.example.org", 250)
    c.cmd(b"STARTTLS now", 501)
    c.cmd(b"QUIT", 221)


def t_tls_old_version(srv):
    c = Client(srv.port)
    c.expect(220)
    c.cmd(b"EHLO c.example.org", 250)
    c.cmd(b"STARTTLS", 220)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            pass
    try:
        c.starttls(ctx)
        raise Fail("a TLS 1.1 handshake succeeded")
    except (ssl.SSLError, OSError):
        pass
    c.close()


def t_tls_garbage(srv):
    """Plaintext where a ClientHello should be: the session just ends."""
    c = Client(srv.port)
    c.expect(220)
    c.cmd(b"EHLO c.example.org", 250)
    c.cmd(b"STARTTLS", 220)
    c.send(b"MAIL FROM:<a@example.org>\r\n" * 10)
    check(c.closed(), "garbage handshake left open")
    c = session(srv.port)
    c.cmd(b"QUIT", 221)


# -- slow clients ------------------------------------------------------------------

def dripper(port, setup, units, out):
    """After the setup commands, send one unit a second (a byte, or a whole
    NOOP), reading what comes back; record when the 421 arrived."""
    try:
        c = Client(port)
        c.expect(220)
        for line in setup:
            c.cmd(line, 354 if line == b"DATA" else 250)
        start = time.monotonic()
        cut = None
        c.sock.settimeout(1)
        for u in units:
            try:
                c.sock.send(u)
            except OSError:
                break
            t0 = time.monotonic()
            while time.monotonic() - t0 < 1:
                try:
                    chunk = c.sock.recv(4096)
                except socket.timeout:
                    break
                except OSError:
                    chunk = b""
                c.buf += chunk
                if b"421 " in c.buf and cut is None:
                    cut = time.monotonic()
                if not chunk:
                    break
            if cut is not None:
                break
        out.append((c, start, cut))
    except Exception as e:          # reported by the caller
        out.append((None, e, None))


def t_slow_clients(srv):
    """The server runs with -t 2. A silent client, one dripping a command a
    byte a second, one dripping DATA, and one sending a NOOP every second
    are each cut at about 2 s, while a normal session keeps working at the
    same time."""
    scripts = [
        ("silent", [], [b""] * 6),
        ("command dripped", [], [bytes([b]) for b in
                                 b"EHLO slow.example.org\r\n"]),
        ("DATA dripped", [b"EHLO d.example.org", b"MAIL FROM:<a@example.org>",
                          b"RCPT TO:<b@example.net>", b"DATA"],
         [bytes([b]) for b in b"Subject: drip " + b"x" * 20]),
        ("NOOP every second", [b"EHLO d.example.org"], [b"NOOP\r\n"] * 8),
    ]
    outs = [[] for _ in scripts]
    threads = [threading.Thread(target=dripper, args=(srv.port, s[1], s[2],
                                                      o))
               for s, o in zip(scripts, outs)]
    for t in threads:
        t.start()
    # Meanwhile a normal client: three transactions over about 4.5 s,
    # never 2 s without a complete command.
    c = session(srv.port)
    for i in range(3):
        c.cmd(b"MAIL FROM:<n%d@example.org>" % i, 250)
        time.sleep(0.7)
        c.cmd(b"RCPT TO:<b@example.net>", 250)
        time.sleep(0.7)
        c.cmd(b"DATA", 354)
        c.send(MSG + b".\r\n")
        c.expect(250, "normal session, message %d" % i)
    c.cmd(b"QUIT", 221)
    for t in threads:
        t.join(30)
    for (name, _, _), o in zip(scripts, outs):
        check(o and o[0][0] is not None, "%s: %r" % (name, o))
        c2, start, cut = o[0]
        check(cut is not None, "%s: never cut (got %r)" % (name, c2.buf))
        took = cut - start
        check(1.5 <= took <= 3.5, "%s: cut after %.1f s, want about 2"
              % (name, took))
        check(b"421 4.4.2" in c2.buf, "%s: got %r" % (name, c2.buf))
        for line in c2.buf.split(b"\r\n"):
            check(line == b"" or line.startswith(b"250 ") or
                  line.startswith(b"421 4.4.2"), "%s: got %r" % (name, line))
        check(c2.closed(), "%s: not closed" % name)
    time.sleep(0.3)
    # The dripped DATA and the normal client's: two at once at most.
    srv.check_tmpfiles(2)


# ---- swaks ---------------------------------------------------------------------

def swaks(srv, *args):
    exe = shutil.which("swaks")
    check(exe, "swaks is not installed (contrib/install-deps.sh)")
    cmd = [exe, "--server", "127.0.0.1", "--port", str(srv.port),
           "--from", "sender@example.org", "--to", "rcpt@example.net",
           "--helo", "swaks.example.org", "--timeout", "20"] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    out = p.stdout
    check(p.returncode == 0, "swaks %s exited %d:\n%s"
          % (" ".join(args), p.returncode, out.decode("latin-1")[-2000:]))
    m = re.findall(rb"<[-~] +250 2\.0\.0 Ok: queued as (\d+)", out)
    check(m, "no queue id in swaks output:\n%s" % out.decode("latin-1"))
    return srv.messages()[int(m[-1])], out


def t_swaks_plain(srv):
    (body, env), _ = swaks(srv, "--header", "Subject: swaks plain",
                           "--body", "plain body")
    check(b"Subject: swaks plain" in body and b"plain body" in body,
          "body %r" % body)
    check(env["tls"] == ["0"] and env["rcpt"] == ["rcpt@example.net"],
          "env %r" % env)


def t_swaks_pipelining(srv):
    (body, env), out = swaks(srv, "--pipeline", "--header",
                             "Subject: swaks pipeline")
    check(b"Subject: swaks pipeline" in body, "body %r" % body)


def t_swaks_starttls(srv):
    (body, env), out = swaks(srv, "--tls", "--header",
                             "Subject: swaks tls", "--body", "tls body")
    check(b"tls body" in body and env["tls"] == ["1"], "env %r" % env)
    check(b"TLS started" in out, "swaks did not report TLS")


def t_swaks_refused(srv):
    exe = shutil.which("swaks")
    check(exe, "swaks is not installed (contrib/install-deps.sh)")
    p = subprocess.run([exe, "--server", "127.0.0.1", "--port",
                        str(srv.port), "--from", "s@example.org", "--to",
                        "victim@elsewhere.org", "--timeout", "20"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    check(p.returncode != 0 and b"550 5.7.1" in p.stdout,
          "relay attempt: exit %d\n%s" % (p.returncode,
                                          p.stdout.decode("latin-1")))


# ---- groups ----------------------------------------------------------------------

GROUPS = {
    "basic": ([], False, [t_greeting_ehlo, t_sequence, t_spool_reuse,
                          t_transaction,
                          t_mail_params, t_pipelining, t_relay_tricks,
                          t_long_command, t_bare_lf_command, t_nul_utf8,
                          t_error_limit, t_close_midway]),
    "smuggling": (["-S", "20000"], False,
                  [t_smuggle_lf_dot_lf, t_smuggle_cr_dot_lf,
                   t_smuggle_lf_dot_crlf, t_smuggle_crlf_dot_lf,
                   t_smuggle_crlf_dot_cr, t_smuggle_cr_dot_cr, t_bare_cr,
                   t_bare_lf, t_smuggle_split_writes, t_text_line_length,
                   t_data_nul_8bit, t_size]),
    "limits": (["-m", "5", "-p", "3", "-S", "64000000"], False,
               [t_thousand_rcpts, t_sessions_per_ip, t_big_message_memory,
                t_backpressure]),
    "tls": ([], True, [t_starttls_injection, t_starttls_pipelined_ehlo,
                       t_starttls_before_ehlo, t_tls_old_version,
                       t_tls_garbage]),
    "slow": (["-t", "2"], False, [t_slow_clients]),
    "swaks": ([], True, [t_swaks_plain, t_swaks_pipelining,
                         t_swaks_starttls, t_swaks_refused]),
}


def main():
    global TESTD, WORKDIR, SANITIZE
    if len(sys.argv) < 4 or sys.argv[3] not in GROUPS:
        sys.exit("usage: smtpd_test.py TESTD WORKDIR GROUP [--sanitize] "
                 "(GROUP: %s)" % ", ".join(GROUPS))
    TESTD, WORKDIR, group = sys.argv[1:4]
    SANITIZE = "--sanitize" in sys.argv[4:]
    os.makedirs(WORKDIR, exist_ok=True)
    args, tls, cases = GROUPS[group]
    srv = Server(group, *args, tls=tls)
    try:
        for case in cases:
            name = case.__name__[2:]
            try:
                case(srv)
                RESULTS["passed"] += 1
                print("ok    %s" % name)
            except (Fail, OSError, ssl.SSLError) as e:
                RESULTS["failed"] += 1
                print("FAIL  %s: %s" % (name, e))
            sys.stdout.flush()
            if srv.proc.poll() is not None:
                RESULTS["failed"] += 1
                print("FAIL  server exited with %d after %s"
                      % (srv.proc.returncode, name))
                break
    finally:
        if srv.proc.poll() is None:
            rc = srv.stop()
            if rc != 0:
                RESULTS["failed"] += 1
                print("FAIL  server exit status %d at stop" % rc)
            elif srv.tmpfiles():
                RESULTS["failed"] += 1
                print("FAIL  spool files left after the server stopped: %r"
                      % srv.tmpfiles())
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
