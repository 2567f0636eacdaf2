#!/usr/bin/python3
"""sink.py - the downstream SMTP server of the daemon tests.

It takes mail on a loopback port and keeps each message as two files in
DIR: NNNNNN.eml, the message exactly as it came between DATA and the final
dot (dot-stuffing undone, nothing else touched), and NNNNNN.json, its
envelope (client, HELO, MAIL FROM and its parameters, the recipients that
were accepted, times).  Both are written to a temporary name and renamed,
so a reader never sees half a message; the .json goes last and marks the
message complete.

What it answers can be chosen per recipient, in a rules file (JSON) that is
re-read whenever it changes:

    {"tempfail": {"later@example.net": 2},   # 451 for the first 2 RCPTs, then 250
     "reject":   ["never@example.net"],       # always 550
     "data_tempfail": 0,                      # 451 after DATA for the next N messages
     "data_hold": 0}                          # answer the final dot N seconds late

While an answer is held (data_hold), DIR/holding exists and holds the
number of messages held so far; it is removed before the answer is sent.
Addresses are compared without regard to case.  Counters (connections,
messages, RCPT attempts per address, replies given) are written to
DIR/stats.json after every change and also printed by the STAT command
(an extension: "STAT" on a connection answers "250 {json}").

    sink.py --port PORT --dir DIR [--rules FILE] [--ready FILE]
            [--store all|none] [--fsync] [--hostname NAME]

--store none keeps nothing but the counters (for the benchmark); a
Message-ID log, DIR/ids.log, is still written then (one "time message-id"
line per message).  --ready names a file that is created once the port
listens.  SIGTERM stops it.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time

MAX_LINE = 4096          # command lines; generous, the sink is not under test
MAX_MESSAGE = 200 << 20


class Rules:
    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.tempfail = {}
        self.reject = set()
        self.data_tempfail = 0
        self.data_tempfail_used = 0
        self.data_hold = 0.0

    def refresh(self):
        if not self.path:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        key = (st.st_mtime_ns, st.st_size)
        if key == self.mtime:
            return
        with open(self.path) as fh:
            data = json.load(fh)
        self.mtime = key
        self.tempfail = {k.lower(): int(v) for k, v in data.get("tempfail", {}).items()}
        self.reject = {a.lower() for a in data.get("reject", [])}
        self.data_hold = float(data.get("data_hold", 0))
        dt = int(data.get("data_tempfail", 0))
        if dt != self.data_tempfail:
            self.data_tempfail = dt
            self.data_tempfail_used = 0


class Sink:
    def __init__(self, args):
        self.dir = args.dir
        self.store = args.store
        self.fsync = args.fsync
        self.hostname = args.hostname
        self.rules = Rules(args.rules)
        self.seq = 0
        self.stats = {"connections": 0, "open": 0, "messages": 0,
                      "bytes": 0, "rcpt_attempts": {}, "replies": {}}
        self.dirty = False
        os.makedirs(self.dir, exist_ok=True)
        # Continue numbering after what an earlier run left.
        for name in os.listdir(self.dir):
            m = re.match(r"^(\d+)\.json$", name)
            if m:
                self.seq = max(self.seq, int(m.group(1)))
        self.idlog = open(os.path.join(self.dir, "ids.log"), "a", buffering=1)

    # ---- counters -----------------------------------------------------
    def count_reply(self, code):
        r = self.stats["replies"]
        r[code] = r.get(code, 0) + 1
        self.dirty = True

    async def flush_stats(self):
        while True:
            await asyncio.sleep(0.2)
            if self.dirty:
                self.dirty = False
                self.write_stats()

    def write_stats(self):
        tmp = os.path.join(self.dir, ".stats.tmp")
        with open(tmp, "w") as fh:
            json.dump(self.stats, fh, sort_keys=True)
        os.replace(tmp, os.path.join(self.dir, "stats.json"))

    async def hold(self, secs):
        """hold - wait secs before answering a final dot, DIR/holding there
        meanwhile."""
        self.stats["held"] = self.stats.get("held", 0) + 1
        self.dirty = True
        mark = os.path.join(self.dir, "holding")
        with open(mark + ".tmp", "w") as fh:
            fh.write("%d\n" % self.stats["held"])
        os.replace(mark + ".tmp", mark)
        await asyncio.sleep(secs)
        try:
            os.unlink(mark)
        except FileNotFoundError:   # another held message's answer went first
            pass

    # ---- storage -------------------------------------------------------
    def keep(self, env, data):
        self.seq += 1
        n = self.seq
        self.stats["messages"] += 1
        self.stats["bytes"] += len(data)
        self.dirty = True
        mid = message_id(data)
        self.idlog.write("%.6f %s\n" % (env["time_end"], mid or "-"))
        if self.store == "none":
            return n
        base = os.path.join(self.dir, "%06d" % n)
        env["message_id"] = mid
        env["size"] = len(data)
        for suffix, blob in ((".eml", data),
                             (".json", json.dumps(env, indent=1).encode() + b"\n")):
            tmp = os.path.join(self.dir, ".tmp-%06d%s" % (n, suffix))
            with open(tmp, "wb") as fh:
                fh.write(blob)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, base + suffix)
        return n

    # ---- one connection --------------------------------------------------
    async def session(self, reader, writer):
        peer = writer.get_extra_info("peername")
        self.stats["connections"] += 1
        self.stats["open"] += 1
        self.dirty = True
        conn = Conn(self, reader, writer, peer)
        try:
            await conn.run()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as e:   # a sink bug must show, not hang the test
            print("sink: session error: %r" % (e,), file=sys.stderr, flush=True)
        finally:
            self.stats["open"] -= 1
            self.dirty = True
            try:
                writer.close()
            except Exception:
                pass


def message_id(data):
    """The Message-ID field's value, from the header only."""
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[:end + 2]
    m = re.search(rb"(?im)^message-id:[ \t]*(<[^>\r\n]*>)", head)
    return m.group(1).decode("latin-1") if m else None


class Conn:
    def __init__(self, sink, reader, writer, peer):
        self.s = sink
        self.r = reader
        self.w = writer
        self.peer = "%s:%d" % (peer[0], peer[1]) if peer else "?"
        self.buf = bytearray()
        self.helo = None
        self.reset()

    def reset(self):
        self.mail = None
        self.mail_params = []
        self.rcpts = []
        self.t_mail = None

    async def fill(self):
        chunk = await self.r.read(65536)
        if not chunk:
            raise ConnectionError("eof")
        self.buf += chunk

    async def line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                ln = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return ln
            if len(self.buf) > MAX_LINE:
                ln = bytes(self.buf)
                self.buf.clear()
                return ln
            await self.fill()

    async def data(self):
        """Everything up to CRLF.CRLF, unstuffed; the terminator consumed."""
        start = 0
        while True:
            if self.buf.startswith(b".\r\n"):
                del self.buf[:3]
                return b""
            i = self.buf.find(b"\r\n.\r\n", start)
            if i >= 0:
                raw = bytes(self.buf[:i + 2])
                del self.buf[:i + 5]
                break
            if len(self.buf) > MAX_MESSAGE:
                raise ConnectionError("message too big for the sink")
            start = max(0, len(self.buf) - 4)
            await self.fill()
        if raw.startswith(b".."):
            raw = raw[1:]
        return raw.replace(b"\r\n..", b"\r\n.")

    def reply(self, text):
        self.s.count_reply(text[:3])
        self.w.write(text.encode() + b"\r\n")

    async def run(self):
        self.reply("220 %s ESMTP test sink" % self.s.hostname)
        await self.w.drain()
        while True:
            ln = await self.line()
            cmd = ln.rstrip(b"\r\n")
            verb = cmd.split(b" ", 1)[0].upper()
            arg = cmd[len(verb) + 1:].decode("latin-1")
            if verb in (b"EHLO", b"HELO"):
                self.helo = arg
                self.reset()
                if verb == b"EHLO":
                    self.w.write(("250-%s\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                                  "250-SIZE %d\r\n250-ENHANCEDSTATUSCODES\r\n"
                                  "250 SMTPUTF8\r\n" % (self.s.hostname, MAX_MESSAGE)).encode())
                    self.s.count_reply("250")
                else:
                    self.reply("250 %s" % self.s.hostname)
            elif verb == b"MAIL":
                m = re.match(r"(?i)^FROM:\s*<([^>]*)>(.*)$", arg)
                if not m:
                    self.reply("501 5.5.4 syntax: MAIL FROM:<address>")
                elif self.mail is not None:
                    self.reply("503 5.5.1 nested MAIL")
                else:
                    self.mail = m.group(1)
                    self.mail_params = m.group(2).split()
                    self.t_mail = time.time()
                    self.reply("250 2.1.0 ok")
            elif verb == b"RCPT":
                m = re.match(r"(?i)^TO:\s*<([^>]*)>", arg)
                if self.mail is None:
                    self.reply("503 5.5.1 MAIL first")
                elif not m:
                    self.reply("501 5.5.4 syntax: RCPT TO:<address>")
                else:
                    self.rcpt(m.group(1))
            elif verb == b"DATA":
                if not self.rcpts:
                    self.reply("554 5.5.1 no valid recipients")
                    continue
                self.reply("354 go ahead")
                await self.w.drain()
                body = await self.data()
                t_end = time.time()
                rules = self.s.rules
                rules.refresh()
                if rules.data_hold > 0:
                    await self.s.hold(rules.data_hold)
                if rules.data_tempfail_used < rules.data_tempfail:
                    rules.data_tempfail_used += 1
                    self.reply("451 4.3.0 sink told to defer this message")
                else:
                    env = {"peer": self.peer, "helo": self.helo,
                           "mail_from": self.mail, "mail_params": self.mail_params,
                           "rcpt": self.rcpts, "time_mail": self.t_mail,
                           "time_end": t_end}
                    n = self.s.keep(env, body)
                    self.reply("250 2.0.0 kept as %06d" % n)
                self.reset()
            elif verb == b"RSET":
                self.reset()
                self.reply("250 2.0.0 ok")
            elif verb == b"NOOP":
                self.reply("250 2.0.0 ok")
            elif verb == b"STAT":
                self.reply("250 " + json.dumps(self.s.stats, sort_keys=True))
            elif verb == b"QUIT":
                self.reply("221 2.0.0 bye")
                await self.w.drain()
                return
            else:
                self.reply("502 5.5.2 not implemented")
            # Pipelined commands: answer the whole batch in one write.
            if b"\n" not in self.buf:
                await self.w.drain()

    def rcpt(self, addr):
        s = self.s
        key = addr.lower()
        att = s.stats["rcpt_attempts"]
        att[key] = att.get(key, 0) + 1
        s.rules.refresh()
        if key in s.rules.reject:
            self.reply("550 5.1.1 <%s>: sink told to refuse this recipient" % addr)
        elif att[key] <= s.rules.tempfail.get(key, 0):
            self.reply("451 4.2.0 <%s>: sink told to defer, attempt %d" % (addr, att[key]))
        else:
            self.rcpts.append(addr)
            self.reply("250 2.1.5 ok")


async def main():
    ap = argparse.ArgumentParser(description="SMTP sink for the daemon tests")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--rules")
    ap.add_argument("--ready")
    ap.add_argument("--store", choices=("all", "none"), default="all")
    ap.add_argument("--fsync", action="store_true")
    ap.add_argument("--hostname", default="sink.example.net")
    args = ap.parse_args()
    sink = Sink(args)
    server = await asyncio.start_server(sink.session, args.host, args.port,
                                        reuse_address=True, backlog=1024,
                                        limit=MAX_LINE * 4)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    flusher = asyncio.ensure_future(sink.flush_stats())
    sink.write_stats()
    if args.ready:
        with open(args.ready, "w") as fh:
            fh.write("%d\n" % os.getpid())
    await stop
    server.close()
    flusher.cancel()
    sink.write_stats()


if __name__ == "__main__":
    asyncio.run(main())
