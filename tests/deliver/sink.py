"""sink.py - a scriptable SMTP sink for the delivery tests.

One Sink listens on a loopback port (asyncio, in a thread of its own) and
records every connection: EHLO names, whether TLS was started, and each
transaction (MAIL, accepted RCPTs, the body as sent and un-dot-stuffed,
whether MAIL/RCPT/DATA came in one write). What it offers is set per sink
(PIPELINING, STARTTLS, SIZE, 8BITMIME, EHLO at all, the greeting, silence, a
never-answered end of data, a STARTTLS that is followed by garbage); what it
answers is chosen by each recipient's local part:

    perm...     550 5.1.1 at RCPT, always
    tmpN...     451 4.2.1 at RCPT for the first N tries, then 250
    full...     452 4.2.2 at RCPT, always (a mailbox that stays full)
    dtmp...     250 at RCPT, 451 4.3.0 after the data
    dperm...    250 at RCPT, 554 5.6.0 after the data
    anything else: 250
and by the sender's: mailperm... gets 553 5.7.1 at MAIL.

A script overrides any of that per step: {"GREET"|"EHLO"|"MAIL"|"RCPT"|
"DATA"|"DOT"|"RSET": text}, where text is the reply (lines joined by "\n",
each sent with CRLF; a 421 hangs up after it), "drop" (hang up without a
word), "raw:" and bytes sent as they are, or "hold:" and a reply after
which the sink neither reads nor answers nor hangs up (a server that said
421 and left the socket open); script_conns limits it to those connection
numbers (the first is 1), script_from_mail to the commands from that MAIL
of a connection on (2: only once the connection is being reused). split
sends every reply in small pieces, some time apart (replies spread over
several TCP reads); slow_dot waits that long before answering the end of
data.
"""
import asyncio
import re
import ssl
import threading


class Txn:
    def __init__(self, sender, params, chunk):
        self.sender = sender
        self.params = params
        self.rcpts = []         # accepted
        self.refused = []       # (addr, code)
        self.raw = None         # body as received (dot-stuffed)
        self.body = None        # body un-stuffed
        self.final = None       # reply code after the data
        self.chunks = [chunk]   # chunk numbers of MAIL, RCPTs, DATA

    @property
    def pipelined(self):
        return len(set(self.chunks)) == 1 and len(self.chunks) >= 3


class Conn:
    def __init__(self, cid):
        self.id = cid
        self.ehlo = []
        self.helo = []
        self.tls = False
        self.txns = []
        self.violation = False  # commands ahead of replies unasked
        self.quit = False
        self.commands = []


class Session(asyncio.Protocol):
    def __init__(self, sink):
        self.sink = sink
        self.buf = b""
        self.state = "cmd"
        self.txn = None
        self.chunk = 0
        self.upgrading = False
        self.tls_phase = False  # bytes now come through TLS
        self.closed = False
        self.split_at = 0.0
        self.override = None    # the script's answer to this command
        self.muted = False      # ... and it has been sent
        self.deaf = False       # after a "hold:" answer
        self.nmail = 0          # MAIL commands on this connection

    # -- plumbing
    def connection_made(self, transport):
        self.t = transport
        self.conn = self.sink._new_conn()
        if self.scripted(self.script_for("GREET")):
            return
        if not self.sink.silent:
            self.reply(self.sink.greet)

    def connection_lost(self, exc):
        self.closed = True

    def reply(self, text):
        if self.muted:
            return              # the script answered this command
        if self.override is not None:
            text, self.override = self.override, None
            self.muted = True
            self.scripted(text)
            return
        self.write(text.encode() + b"\r\n")

    def write(self, data):
        if self.closed:
            return
        if not self.sink.split:
            self.t.write(data)
            return
        # Four pieces (at least 7 bytes each), 20 ms apart, in order after
        # what is queued.
        loop = asyncio.get_running_loop()
        step = max(7, -(-len(data) // 4))
        for k in range(0, len(data), step):
            self.split_at = max(self.split_at, loop.time()) + 0.02
            loop.call_at(self.split_at, self.piece, data[k:k + step])

    def piece(self, data):
        if not self.closed:
            self.t.write(data)

    def script_for(self, step):
        """the script's answer to step on this connection, or None"""
        sk = self.sink
        if sk.script_conns is not None and \
                self.conn.id not in sk.script_conns:
            return None
        if self.nmail < sk.script_from_mail:
            return None
        return sk.script.get(step)

    def scripted(self, text):
        """send the script's answer text; False when there is none"""
        if text is None:
            return False
        if text == "drop":
            self.t.close()
            self.closed = True
        elif text.startswith("421"):
            # Closing, as a server that says 421 does.
            self.write(text.encode("latin-1") + b"\r\n")
            self.t.close()
            self.closed = True
        elif text.startswith("raw:"):
            self.write(text[4:].encode("latin-1"))
        elif text.startswith("hold:"):
            for line in text[5:].split("\n"):
                self.write(line.encode("latin-1") + b"\r\n")
            self.deaf = True
        else:
            for line in text.split("\n"):
                self.write(line.encode("latin-1") + b"\r\n")
        return True

    def data_received(self, data):
        if self.deaf:
            return
        if self.upgrading and not self.tls_phase:
            return              # plaintext after STARTTLS is dropped
        self.chunk += 1
        self.buf += data
        if not self.upgrading:
            self.process()

    def process(self):
        while not self.closed and not self.upgrading and not self.deaf:
            if self.state == "data":
                s = b"\r\n" + self.buf
                p = s.find(b"\r\n.\r\n")
                if p < 0:
                    return
                raw = s[2:p + 2]
                self.buf = s[p + 5:]
                self.state = "cmd"
                self.end_data(raw)
                continue
            i = self.buf.find(b"\r\n")
            if i < 0:
                return
            line = self.buf[:i].decode("latin-1")
            self.buf = self.buf[i + 2:]
            if self.buf and not self.sink.pipelining:
                self.conn.violation = True
            self.command(line)

    # -- the protocol
    def command(self, line):
        sk = self.sink
        self.conn.commands.append(line)
        verb = line.split(" ", 1)[0].upper()
        arg = line[len(verb):].strip()
        self.muted = False
        self.override = None
        if verb == "MAIL":
            self.nmail += 1
        if verb in ("EHLO", "MAIL", "RCPT", "DATA", "RSET"):
            self.override = self.script_for(verb)
        if verb == "EHLO":
            if not sk.ehlo:
                self.reply("502 5.5.2 EHLO not here, try HELO")
                return
            self.conn.ehlo.append(arg)
            self.txn = None
            lines = ["sink.test hello " + arg]
            if sk.pipelining:
                lines.append("PIPELINING")
            if sk.size:
                lines.append("SIZE %d" % sk.size)
            if sk.starttls and not self.conn.tls:
                lines.append("STARTTLS")
            if sk.eightbitmime:
                lines.append("8BITMIME")
            lines.append("ENHANCEDSTATUSCODES")
            for k, l in enumerate(lines):
                self.reply("250%s%s" % (" " if k == len(lines) - 1
                                        else "-", l))
        elif verb == "HELO":
            self.conn.helo.append(arg)
            self.txn = None
            self.reply("250 sink.test")
        elif verb == "STARTTLS":
            if not sk.starttls or self.conn.tls:
                self.reply("502 5.5.1 no TLS here")
                return
            self.reply("220 2.0.0 go ahead")
            if sk.tls_broken:
                # Not TLS at all: the client's handshake must fail.
                self.t.write(b"this is not a TLS server hello\r\n" * 4)
                self.t.close()
                self.closed = True
                return
            self.upgrading = True
            self.buf = b""
            asyncio.ensure_future(self.start_tls())
        elif verb == "MAIL":
            m = re.match(r"(?i)FROM:<([^>]*)>(.*)$", arg)
            if self.override is not None and \
                    not self.override.startswith("2"):
                self.reply("")
                return
            if self.txn is not None or not m:
                self.reply("503 5.5.1 bad sequence")
                return
            params = m.group(2).strip()
            if m.group(1).lower().startswith("mailperm"):
                self.reply("553 5.7.1 sender refused")
                return
            sm = re.search(r"(?i)SIZE=(\d+)", params)
            if sk.size and sm and int(sm.group(1)) > sk.size:
                self.reply("552 5.3.4 message too big for us")
                return
            self.txn = Txn(m.group(1), params, self.chunk)
            self.reply("250 2.1.0 sender ok")
        elif verb == "RCPT":
            m = re.match(r"(?i)TO:<([^>]*)>", arg)
            if self.txn is None or not m:
                self.reply("503 5.5.1 need MAIL first")
                return
            self.txn.chunks.append(self.chunk)
            addr = m.group(1)
            code, text = sk.rcpt_reply(addr)
            if self.override is not None and \
                    not self.override.startswith("2"):
                code = int(self.override[:3]) if \
                    self.override[:3].isdigit() else 0
            if code == 250:
                self.txn.rcpts.append(addr)
            else:
                self.txn.refused.append((addr, code))
            self.reply("%d %s" % (code, text))
        elif verb == "DATA":
            if self.txn is None or not self.txn.rcpts:
                if self.txn is not None:
                    self.txn.chunks.append(self.chunk)
                self.reply("554 5.5.1 no valid recipients")
                return
            self.txn.chunks.append(self.chunk)
            if self.override is None or self.override.startswith("354"):
                self.state = "data"
            self.reply("354 go ahead")
        elif verb == "RSET":
            self.txn = None
            self.reply("250 2.0.0 reset")
        elif verb == "NOOP":
            self.reply("250 2.0.0 ok")
        elif verb == "QUIT":
            self.conn.quit = True
            self.reply("221 2.0.0 bye")
            self.t.close()
            self.closed = True
        else:
            self.reply("500 5.5.1 what?")

    def end_data(self, raw):
        sk = self.sink
        self.muted = False      # DATA's answer was another command's
        txn = self.txn
        self.txn = None
        lines = raw.split(b"\r\n")
        txn.raw = raw
        txn.body = b"\r\n".join(l[1:] if l.startswith(b".") else l
                               for l in lines)
        with sk.lock:
            self.conn.txns.append(txn)
        if sk.hang_data:
            return
        if self.scripted(self.script_for("DOT")):
            return
        if sk.slow_dot:
            asyncio.get_running_loop().call_later(sk.slow_dot,
                                                  self.final, txn)
            return
        self.final(txn)

    def final(self, txn):
        sk = self.sink
        locals_ = [a.split("@")[0].lower() for a in txn.rcpts]
        if any(l.startswith("dtmp") for l in locals_):
            code, text = 451, "4.3.0 try that again later"
        elif any(l.startswith("dperm") for l in locals_):
            code, text = 554, "5.6.0 content refused"
        elif sk.size and len(txn.body) > sk.size:
            code, text = 552, "5.3.4 message too big for us"
        else:
            code, text = 250, "2.0.0 queued as %d" % sk._next_msg()
        txn.final = code
        self.reply("%d %s" % (code, text))
        if sk.drop_idle:
            # Hang up on an idle client without a word.
            asyncio.get_running_loop().call_later(sk.drop_idle,
                                                  self.t.close)

    async def start_tls(self):
        loop = asyncio.get_running_loop()
        self.tls_phase = True
        try:
            t = await loop.start_tls(self.t, self, self.sink.ctx,
                                     server_side=True)
        except Exception:
            self.t.close()
            self.closed = True
            return
        self.t = t
        self.conn.tls = True
        self.upgrading = False
        self.tls_phase = False
        self.txn = None
        self.process()          # what came in during the handshake


class Sink:
    def __init__(self, pipelining=True, starttls=None, size=0, ehlo=True,
                 greet="220 sink.test ESMTP test sink", silent=False,
                 hang_data=False, tls_broken=False, drop_idle=0,
                 host="127.0.0.1", script=None, script_conns=None,
                 split=False, slow_dot=0, script_from_mail=0,
                 eightbitmime=True, port=0):
        self.pipelining = pipelining
        self.starttls = starttls        # (certfile, keyfile) or None
        self.size = size
        self.ehlo = ehlo
        self.greet = greet
        self.silent = silent
        self.hang_data = hang_data
        self.tls_broken = tls_broken    # STARTTLS then garbage
        self.drop_idle = drop_idle      # close N s after each message
        self.host = host
        self.script = script or {}
        self.script_conns = script_conns
        self.script_from_mail = script_from_mail
        self.eightbitmime = eightbitmime    # offered in the EHLO reply
        self.want_port = port               # 0: any free one
        self.split = split
        self.slow_dot = slow_dot
        self.lock = threading.Lock()
        self.conns = []
        self.tries = {}
        self.nmsg = 0
        self.ctx = None
        if starttls:
            self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ctx.load_cert_chain(*starttls)

    def _new_conn(self):
        with self.lock:
            c = Conn(len(self.conns) + 1)
            self.conns.append(c)
            return c

    def _next_msg(self):
        with self.lock:
            self.nmsg += 1
            return self.nmsg

    def rcpt_reply(self, addr):
        local = addr.split("@")[0].lower()
        with self.lock:
            n = self.tries.get(addr, 0)
            self.tries[addr] = n + 1
        if local.startswith("perm"):
            return 550, "5.1.1 <%s>: no such user here" % addr
        if local.startswith("full"):
            return 452, "4.2.2 <%s>: mailbox full" % addr
        m = re.match(r"tmp(\d+)", local)
        if m and n < int(m.group(1)):
            return 451, "4.2.1 <%s>: busy, try again later" % addr
        return 250, "2.1.5 <%s> ok" % addr

    # -- running
    def start(self):
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                self.loop.create_server(lambda: Session(self), self.host,
                                        self.want_port))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait()
        return self.port

    def stop(self):
        def halt():
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(halt)
        self.thread.join(5)

    # -- what it saw
    def txns(self):
        with self.lock:
            return [(c, t) for c in self.conns for t in c.txns]

    def delivered(self):
        """(conn, txn) for every transaction that got 250 at the end."""
        return [(c, t) for c, t in self.txns() if t.final == 250]
