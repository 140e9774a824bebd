#!/usr/bin/env python3
"""smtpload - an SMTP load client for tools/bench: exact session shape, optional STARTTLS.

Postfix's smtp-source cannot send "K messages per session, then reconnect" (with -d a session
goes on until the global count is used up; without it every message has its own session) and
has no TLS, so the `small`, `large`, `relay` and `tls` scenarios use this client, the same one
against both servers. `churn` (one message per connection) uses smtp-source itself.

    smtpload.py --server 127.0.0.1:2525 --messages 20000 --sessions 20 --per-session 10 \
                --size 1024 --to alice@local.test [--starttls] [--procs 2]

`--sessions` clients run at once (spread over `--procs` processes, threads in each); each
takes the next session from a shared counter, connects, reads the banner, EHLO, (STARTTLS,
full handshake - no session resumption - and EHLO again), then MAIL/RCPT/DATA for each of its
messages without pipelining (like smtp-source), then QUIT. Every socket has a timeout, every
loop is bounded by the message count. Prints one JSON object on stdout: messages accepted
(`ok`), `failed`, the first error texts, elapsed time, and latencies in milliseconds (end of
data -> 250, and for TLS the handshake).

Only the Python standard library is used.
"""

import argparse
import json
import multiprocessing
import os
import socket
import ssl
import sys
import threading
import time


def build_message(size, sender, rcpt):
    """build_message - a message of about `size` payload bytes (CRLF lines), dot-safe."""
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: bench\r\n"
            "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
            "Message-ID: <%%s@bench.client>\r\n\r\n" % (sender, rcpt))
    lines, n, i = [], 0, 0
    while n < size:
        line = ("%d" % i + "X" * 78)[:max(1, min(78, size - n - 2))]
        lines.append(line)
        n += len(line) + 2
        i += 1
    body = "\r\n".join(lines) + "\r\n"
    return head, body.encode("ascii")


class SMTPError(Exception):
    pass


class Conn:
    """One SMTP connection: buffered replies, sendall, optional STARTTLS."""

    def __init__(self, addr, timeout):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def reply(self):
        """reply - (code, last line text) of one possibly multi-line reply; all lines kept."""
        lines = []
        for _ in range(200):
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise SMTPError("connection closed by server")
                self.buf += chunk
                if len(self.buf) > 1 << 20:
                    raise SMTPError("reply too long")
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                try:
                    code = int(line[:3])
                except ValueError:
                    raise SMTPError("malformed reply %r" % line[:80])
                return code, lines
        raise SMTPError("reply of more than 200 lines")

    def cmd(self, data, want):
        self.sock.sendall(data)
        code, lines = self.reply()
        if code != want:
            raise SMTPError("%s -> %s" % (data[:12].decode("ascii", "replace").strip(),
                                          lines[-1][:120].decode("utf-8", "replace")))
        return lines

    def starttls(self, ctx):
        self.cmd(b"STARTTLS\r\n", 220)
        if self.buf:
            raise SMTPError("server sent data after 220 to STARTTLS")
        self.sock = ctx.wrap_socket(self.sock, do_handshake_on_connect=True)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def worker(args, counter, lock, out, tls_ctx, head, body):
    """worker - run sessions until the shared counter is used up; append results to out."""
    addr = (args.host, args.port)
    nsessions = (args.messages + args.per_session - 1) // args.per_session
    lat, hs, ok, failed, errors = [], [], 0, 0, {}
    mail = ("MAIL FROM:<%s>\r\n" % args.sender).encode()
    rcpt = ("RCPT TO:<%s>\r\n" % args.to).encode()
    ehlo = b"EHLO bench.client\r\n"
    for _ in range(nsessions):
        with lock:
            idx = counter.value
            if idx >= nsessions:
                break
            counter.value = idx + 1
        k = min(args.per_session, args.messages - idx * args.per_session)
        sent = 0
        c = None
        try:
            c = Conn(addr, args.timeout)
            code, lines = c.reply()
            if code != 220:
                raise SMTPError("banner %r" % lines[-1][:80])
            lines = c.cmd(ehlo, 250)
            if tls_ctx is not None:
                if not any(l[4:].upper().startswith(b"STARTTLS") for l in lines):
                    raise SMTPError("STARTTLS not offered")
                t = time.monotonic()
                c.starttls(tls_ctx)
                hs.append(time.monotonic() - t)
                c.cmd(ehlo, 250)
            for m in range(k):
                c.cmd(mail, 250)
                c.cmd(rcpt, 250)
                c.cmd(b"DATA\r\n", 354)
                data = (head % ("%d.%d.%d" % (os.getpid(), idx, m))).encode() + body + b".\r\n"
                t = time.monotonic()
                c.cmd(data, 250)
                lat.append(time.monotonic() - t)
                sent += 1
            c.cmd(b"QUIT\r\n", 221)
        except (OSError, SMTPError, ssl.SSLError) as e:
            msg = str(e) or e.__class__.__name__
            errors[msg] = errors.get(msg, 0) + 1
            failed += k - sent
        finally:
            ok += sent
            if c is not None:
                c.close()
    out.append({"ok": ok, "failed": failed, "errors": errors, "lat": lat, "hs": hs})


def run_process(args, counter, lock, nthreads, pipe):
    """run_process - nthreads workers in this process; send their merged results on pipe."""
    tls_ctx = None
    if args.starttls:
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls_ctx.check_hostname = False
        tls_ctx.verify_mode = ssl.CERT_NONE
    head, body = build_message(args.size, args.sender, args.to)
    out = []
    threads = [threading.Thread(target=worker, args=(args, counter, lock, out, tls_ctx, head,
                                                     body), daemon=True)
               for _ in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    merged = {"ok": 0, "failed": 0, "errors": {}, "lat": [], "hs": []}
    for r in out:
        merged["ok"] += r["ok"]
        merged["failed"] += r["failed"]
        merged["lat"].extend(r["lat"])
        merged["hs"].extend(r["hs"])
        for k, v in r["errors"].items():
            merged["errors"][k] = merged["errors"].get(k, 0) + v
    pipe.send(merged)
    pipe.close()


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def summary(values):
    if not values:
        return None
    return {"p50": round(pct(values, 50) * 1000, 2), "p90": round(pct(values, 90) * 1000, 2),
            "p99": round(pct(values, 99) * 1000, 2), "max": round(max(values) * 1000, 2)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True, help="host:port")
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--sessions", type=int, default=20, help="concurrent sessions")
    ap.add_argument("--per-session", type=int, default=10)
    ap.add_argument("--size", type=int, default=1024, help="payload bytes per message")
    ap.add_argument("--from", dest="sender", default="bench@local.test")
    ap.add_argument("--to", default="alice@local.test")
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--timeout", type=float, default=60.0, help="per socket operation")
    args = ap.parse_args(argv)
    host, _, port = args.server.rpartition(":")
    args.host, args.port = host or "127.0.0.1", int(port)
    args.per_session = max(1, args.per_session)
    procs = max(1, min(args.procs, args.sessions))
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("l", 0, lock=False)
    lock = ctx.Lock()
    children = []
    t0 = time.monotonic()
    for i in range(procs):
        n = args.sessions // procs + (1 if i < args.sessions % procs else 0)
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=run_process, args=(args, counter, lock, n, w))
        p.start()
        w.close()
        children.append((p, r))
    total = {"ok": 0, "failed": 0, "errors": {}, "lat": [], "hs": []}
    for p, r in children:
        try:
            res = r.recv()
        except EOFError:
            res = {"ok": 0, "failed": 0, "errors": {"client process died": 1}, "lat": [],
                   "hs": []}
        p.join(timeout=30)
        for k in ("ok", "failed"):
            total[k] += res[k]
        total["lat"].extend(res["lat"])
        total["hs"].extend(res["hs"])
        for k, v in res["errors"].items():
            total["errors"][k] = total["errors"].get(k, 0) + v
    elapsed = time.monotonic() - t0
    top = sorted(total["errors"].items(), key=lambda kv: -kv[1])[:5]
    json.dump({"ok": total["ok"], "failed": total["failed"] + max(
        0, args.messages - total["ok"] - total["failed"]),
        "errors": dict(top), "elapsed": round(elapsed, 3),
        "latency_ms": summary(total["lat"]), "handshake_ms": summary(total["hs"])},
        sys.stdout)
    sys.stdout.write("\n")
    return 0 if total["ok"] > 0 or args.messages == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
