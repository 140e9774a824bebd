"""test_smtp_agent - the outbound smtp agent on its own, with a stub master and qmgr.

The test plays master (fd 3: reads HELLO, hands over a qmgr socket with IPC_MASTER_PEER) and
qmgr (sends IPC_RELAY frames with a read descriptor on a body file, reads IPC_RELAYED), and
points the agent at Postfix's smtp-sink, at a small Python SMTP/LMTP server (per-recipient
replies, STARTTLS, connection counting) and at dnsmasq on a loopback port for MX routing.
"""

import os
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import harness
from harness import BIN, IS_ROOT, Skip, expect, free_port, log

SMTP = os.path.join(BIN, "smtp")

IPC_HAS_FD = 0x80000000
IPC_MASTER_PEER, IPC_MASTER_HELLO, IPC_RELAY, IPC_RELAYED = 1, 2, 22, 23
PEER_QMGR, PEER_SMTP = 1, 4
OK, TEMP, PERM = 0, 1, 2
RELAYED_DSN = 0x1                       # relayed.flags: the next hop took NOTIFY/ORCPT
NOTIFY_SUCCESS = 0x2
F_SMTPUTF8 = 0x01
TLS_NONE, TLS_MAY, TLS_ENCRYPT, TLS_VERIFY = 0, 1, 2, 3


# --------------------------------------------------------------------------------------
# IPC encoding (libcommon/ipc.c)

def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def sstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return u32(len(b)) + b + b"\0"


def strv(v):
    return u32(len(v)) + b"".join(sstr(s) for s in v)


def u32v(v):
    return u32(len(v)) + b"".join(u32(x) for x in v)


class Cursor:
    def __init__(self, data):
        self.d, self.p = data, 0

    def u32(self):
        v = struct.unpack(">I", self.d[self.p:self.p + 4])[0]
        self.p += 4
        return v

    def str(self):
        n = self.u32()
        s = self.d[self.p:self.p + n].decode("utf-8", "replace")
        expect(self.d[self.p + n] == 0, "STR without its NUL")
        self.p += n + 1
        return s

    def strv(self):
        return [self.str() for _ in range(self.u32())]

    def u32v(self):
        return [self.u32() for _ in range(self.u32())]


def send_frame(sock, ftype, reqid, payload, fd=-1):
    hdr = struct.pack(">III", ftype | (IPC_HAS_FD if fd >= 0 else 0), len(payload), reqid)
    if fd >= 0:
        sock.sendmsg([hdr + payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                         struct.pack("i", fd))])
    else:
        sock.sendall(hdr + payload)


def recv_exact(sock, n, deadline):
    out = b""
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for a frame from the agent")
        sock.settimeout(left)
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise AssertionError("agent closed the socket")
        out += chunk
    return out


def recv_frame(sock, timeout):
    deadline = time.monotonic() + timeout
    t, n, reqid = struct.unpack(">III", recv_exact(sock, 12, deadline))
    return t & ~IPC_HAS_FD, reqid, recv_exact(sock, n, deadline) if n else b""


# --------------------------------------------------------------------------------------
# The agent under test

class Agent:
    """The smtp binary with a stub master (fd 3) and a stub qmgr socket."""

    def __init__(self, conf=None):
        if not os.path.exists(SMTP):
            raise AssertionError("%s is not built" % SMTP)
        if IS_ROOT:
            harness.ensure_users()
        self.dir = tempfile.mkdtemp(prefix="postern-smtpagent-")
        os.chmod(self.dir, 0o755)
        self.queue = os.path.join(self.dir, "queue")
        self.empty = os.path.join(self.queue, "empty")
        os.makedirs(self.empty)
        os.chmod(self.empty, 0o555)
        c = {"queue_directory": self.queue, "myhostname": "client.test",
             "log_level": "debug", "smtp_connection_reuse_time": "10s",
             "smtp_reply_timeout": "20s", "smtp_connect_timeout": "5s"}
        c.update(conf or {})
        with open(os.path.join(self.dir, "postern.conf"), "w") as f:
            for k, v in c.items():
                f.write("%s = %s\n" % (k, v))
        self.logfile = os.path.join(self.dir, "smtp.log")
        self.master, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.qmgr, qchild = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cfd = child.fileno()

        def to_fd3():
            os.dup2(cfd, 3)
        with open(self.logfile, "wb") as logf:
            self.proc = subprocess.Popen([SMTP, "-c", self.dir, "-i", "0", "-d"],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         pass_fds=(3, cfd) if cfd != 3 else (3,),
                                         preexec_fn=to_fd3)
        child.close()
        t, _, payload = recv_frame(self.master, 15)
        expect(t == IPC_MASTER_HELLO, "first frame is type %d, not HELLO" % t)
        c = Cursor(payload)
        c.u32()
        expect(c.u32() == PEER_SMTP, "HELLO kind is not IPC_PEER_SMTP")
        send_frame(self.master, IPC_MASTER_PEER, 0, u32(PEER_QMGR) + u32(0), qchild.fileno())
        qchild.close()
        self.reqid = 0
        self.bodies = []

    def relay(self, nexthop, rcpts, body, sender="s@a.test", flags=0, tls_level=TLS_NONE,
              transport="smtp", size=None, envid="", ret=0, orcpts=None, notify=None):
        """relay - send one IPC_RELAY; returns its reqid."""
        self.reqid += 1
        path = os.path.join(self.dir, "body-%d" % self.reqid)
        with open(path, "wb") as f:
            f.write(body)
        fd = os.open(path, os.O_RDONLY)
        payload = (sstr("QID%05d" % self.reqid) + u32(flags)
                   + u64(len(body) if size is None else size) + sstr(sender) + sstr(envid)
                   + u32(ret) + sstr(transport) + sstr(nexthop) + u32(tls_level)
                   + strv(rcpts) + u32v(list(range(10, 10 + len(rcpts))))
                   + strv(orcpts or [""] * len(rcpts)) + u32v(notify or [0] * len(rcpts)))
        try:
            send_frame(self.qmgr, IPC_RELAY, self.reqid, payload, fd)
        finally:
            os.close(fd)
        return self.reqid

    def result(self, timeout=30):
        """result - the next IPC_RELAYED: dict with reqid, relay, tls and per-rcpt lists."""
        t, reqid, payload = recv_frame(self.qmgr, timeout)
        expect(t == IPC_RELAYED, "agent sent frame type %d, not RELAYED" % t)
        c = Cursor(payload)
        r = {"reqid": reqid, "qid": c.str(), "relay": c.str(), "tls": c.str(),
             "index": c.u32v(), "status": c.u32v(), "dsn": c.strv(), "text": c.strv(),
             "flags": c.u32v()}
        expect(c.p == len(payload), "trailing bytes in RELAYED")
        return r

    def deliver(self, *a, **kw):
        reqid = self.relay(*a, **kw)
        r = self.result(kw.get("timeout", 30) if "timeout" in kw else 30)
        expect(r["reqid"] == reqid, "RELAYED reqid %d for request %d" % (r["reqid"], reqid))
        return r

    def log_text(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        finally:
            self.master.close()
            self.qmgr.close()
            if os.environ.get("POSTERN_TEST_KEEP"):
                log("kept %s" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, etype, evalue, tb):
        if etype is not None:
            log("smtp agent log:")
            for line in self.log_text().splitlines()[-40:]:
                log("  | " + line)
        self.close()
        return False


# --------------------------------------------------------------------------------------
# A small SMTP/LMTP server: replies by recipient, STARTTLS, records everything

class StubServer:
    """Threaded SMTP (or LMTP) server on 127.0.0.1. Recipients starting with "temp" get
    450, "perm" get 550, others 250. Records connections, commands and messages."""

    def __init__(self, ext=("PIPELINING", "8BITMIME", "DSN", "ENHANCEDSTATUSCODES"),
                 tls_cert=None, lmtp=False, greeting="220 stub.test ESMTP", unix_path=None):
        self.ext = list(ext)
        self.lmtp = lmtp
        self.greeting = greeting
        self.connections = 0
        self.commands = []
        self.first_batch = []      # lines in the first read after EHLO, per transaction
        self.messages = []         # (mail, rcpts, data)
        self.tls_sessions = 0
        self.ctx = None
        if tls_cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*tls_cert)
            self.ext.append("STARTTLS")
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    outer.session(self.request)
                except (OSError, ssl.SSLError):
                    pass      # the client gave up (a refused certificate, a timeout)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        class UnixServer(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

        if unix_path:
            self.srv = UnixServer(unix_path, Handler)
            os.chmod(unix_path, 0o666)      # the agent connects as mail_owner
            self.port = None
        else:
            self.srv = Server(("127.0.0.1", 0), Handler)
            self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()

    def session(self, sock):
        with self.lock:
            self.connections += 1
        sock.settimeout(30)
        buf = b""
        state = {"mail": None, "rcpts": [], "tls": False, "batch_pending": True}

        def send(line):
            sock.sendall(line.encode() + b"\r\n")

        def read_line():
            nonlocal buf
            while b"\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                if state["batch_pending"] and state["ehlo"]:
                    state["batch_pending"] = False
                    with self.lock:
                        self.first_batch.append(chunk.count(b"\n"))
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            return line.rstrip(b"\r").decode("utf-8", "replace")

        state["ehlo"] = False
        send(self.greeting)
        if not self.greeting.startswith("220"):
            return
        while True:
            line = read_line()
            if line is None:
                return
            verb = line.split(" ", 1)[0].upper()
            with self.lock:
                self.commands.append(line)
            if verb in ("EHLO", "LHLO"):
                ext = [e for e in self.ext if not (state["tls"] and e == "STARTTLS")]
                lines = ["stub.test"] + ext
                for i, l in enumerate(lines):
                    send("250%s%s" % ("-" if i < len(lines) - 1 else " ", l))
                state["ehlo"] = True
            elif verb == "HELO":
                send("250 stub.test")
            elif verb == "STARTTLS" and self.ctx and not state["tls"]:
                send("220 2.0.0 Ready to start TLS")
                sock = self.ctx.wrap_socket(sock, server_side=True)
                buf = b""
                state["tls"] = True
                with self.lock:
                    self.tls_sessions += 1
            elif verb == "MAIL":
                state["mail"], state["rcpts"] = line, []
                send("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = line.split("<", 1)[1].split(">", 1)[0]
                if addr.startswith("temp"):
                    send("450 4.2.0 <%s>: mailbox busy" % addr)
                elif addr.startswith("perm"):
                    send("550 5.1.1 <%s>: no such user" % addr)
                else:
                    state["rcpts"].append(addr)
                    send("250 2.1.5 Ok")
            elif verb == "DATA":
                if not state["rcpts"]:
                    send("554 5.5.1 no valid recipients")
                    continue
                send("354 go ahead")
                while b"\r\n.\r\n" not in b"\r\n" + buf:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                full = b"\r\n" + buf
                idx = full.index(b"\r\n.\r\n")
                data, buf = full[2:idx + 2], full[idx + 5:]
                lines = data.split(b"\r\n")[:-1]
                data = b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in lines)
                with self.lock:
                    self.messages.append((state["mail"], list(state["rcpts"]), data))
                if self.lmtp:
                    for r in state["rcpts"]:
                        send("250 2.0.0 <%s> delivered" % r)
                else:
                    send("250 2.0.0 Ok: queued")
                state["batch_pending"] = True
            elif verb == "RSET":
                state["mail"], state["rcpts"] = None, []
                state["batch_pending"] = True
                send("250 2.0.0 Ok")
            elif verb == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send("502 5.5.2 unknown command")


def message(tag, extra=b""):
    return (b"From: <s@a.test>\r\nTo: <x@b.test>\r\nSubject: %s\r\n\r\nhello\r\n"
            b".leading dot\r\n.\r\nbare\nlf\r\n" % tag.encode()) + extra


def make_cert(dirpath, name="stub.test"):
    crt, key = os.path.join(dirpath, "stub.crt"), os.path.join(dirpath, "stub.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "1", "-subj", "/CN=%s" % name, "-addext",
                    "subjectAltName=DNS:%s" % name], check=True, timeout=30,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return crt, key


# --------------------------------------------------------------------------------------
# smtp-sink

def start_sink(port, *opts):
    if shutil.which("smtp-sink") is None and not os.path.exists("/usr/sbin/smtp-sink"):
        raise Skip("smtp-sink (Debian package postfix) is not installed")
    exe = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    argv = [exe] + list(opts)
    if IS_ROOT:
        argv += ["-u", "nobody"]
    argv += ["127.0.0.1:%d" % port, "100"]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise AssertionError("smtp-sink did not start")


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def test_smtp_agent_sink_pipelined():
    """Against smtp-sink (PIPELINING): three recipients delivered, one RELAYED with a
    result per recipient in order, the log has one line per recipient."""
    port = free_port()
    sink = start_sink(port, "-c")
    try:
        with Agent() as a:
            rcpts = ["a@b.test", "b@b.test", "c@b.test"]
            r = a.deliver("[127.0.0.1]:%d" % port, rcpts, message("sink"))
            expect(r["status"] == [OK] * 3, "statuses %r texts %r" % (r["status"], r["text"]))
            expect(r["index"] == [10, 11, 12], "rcpt_index %r" % r["index"])
            expect(r["relay"] == "127.0.0.1[127.0.0.1]:%d" % port, "relay %r" % r["relay"])
            expect(all(t.startswith("250") for t in r["text"]), "texts %r" % r["text"])
            text = a.log_text()
            for rc in rcpts:
                expect("QID00001: to=<%s>, relay=127.0.0.1[127.0.0.1]:%d" % (rc, port) in text
                       and "status=sent" in text, "no log line for %s:\n%s" % (rc, text))
    finally:
        stop(sink)


def test_smtp_agent_sink_soft_and_hard_reject():
    """smtp-sink -r RCPT (4xx, no pipelining) -> TEMP; -f RCPT (5xx) -> PERM, with the
    remote reply in the text."""
    for opt, want, dsn0 in (("-r", TEMP, "4"), ("-f", PERM, "5")):
        port = free_port()
        sink = start_sink(port, opt, "RCPT")
        try:
            with Agent() as a:
                r = a.deliver("[127.0.0.1]:%d" % port, ["x@b.test", "y@b.test"], message("rej"))
                expect(r["status"] == [want, want], "%s: statuses %r" % (opt, r["status"]))
                expect(all(d.startswith(dsn0) for d in r["dsn"]), "dsn %r" % r["dsn"])
                expect(all("said: " in t and "(in reply to RCPT TO command)" in t
                           for t in r["text"]), "texts %r" % r["text"])
        finally:
            stop(sink)


def test_smtp_agent_results_pipelining_reuse():
    """Per-recipient OK/TEMP/PERM in order; MAIL+RCPTs+DATA in one write; the body arrives
    unchanged (dot-stuffing undone by the server, bare LF as CRLF); a second message to the
    same next hop reuses the connection (RSET, one connection in all)."""
    srv = StubServer()
    try:
        with Agent() as a:
            hop = "[127.0.0.1]:%d" % srv.port
            body = message("one")
            r = a.deliver(hop, ["ok@b.test", "temp@b.test", "perm@b.test"], body)
            expect(r["status"] == [OK, TEMP, PERM], "statuses %r %r" % (r["status"], r["text"]))
            expect(r["dsn"] == ["2.0.0", "4.2.0", "5.1.1"], "dsn %r" % r["dsn"])
            expect("host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <perm@b.test>: no such user "
                   "(in reply to RCPT TO command)" == r["text"][2], "text %r" % r["text"][2])
            expect(len(srv.messages) == 1, "server got %d messages" % len(srv.messages))
            want = body.replace(b"bare\nlf", b"bare\r\nlf")
            expect(srv.messages[0][2] == want, "body changed:\n%r\n%r" % (srv.messages[0][2],
                                                                          want))
            expect(srv.first_batch and srv.first_batch[0] >= 5,
                   "pipelined commands not in one write: %r" % srv.first_batch)
            r2 = a.deliver(hop, ["ok2@b.test"], message("two"))
            expect(r2["status"] == [OK], "second message %r" % r2)
            expect(srv.connections == 1, "%d connections for two messages" % srv.connections)
            expect("RSET" in srv.commands, "no RSET before the second message: %r"
                   % srv.commands)
    finally:
        srv.close()


def test_smtp_agent_size_utf8_dsn_params():
    """SIZE announced: a bigger message is refused locally (5.3.4); SMTPUTF8 not announced:
    5.6.7; DSN parameters (RET, ENVID, NOTIFY, ORCPT) and SIZE= go out when supported."""
    srv = StubServer(ext=("PIPELINING", "SIZE 1000", "DSN"))
    try:
        with Agent() as a:
            hop = "[127.0.0.1]:%d" % srv.port
            r = a.deliver(hop, ["x@b.test"], message("big", b"x" * 2000))
            expect(r["status"] == [PERM] and r["dsn"] == ["5.3.4"], "big: %r" % r)
            r = a.deliver(hop, ["x@b.test"], message("utf8"), flags=F_SMTPUTF8)
            expect(r["status"] == [PERM] and r["dsn"] == ["5.6.7"], "utf8: %r" % r)
            r = a.deliver(hop, ["x@b.test"], message("dsn"), envid="env 1", ret=2,
                          orcpts=["orig@b.test"], notify=[0x2 | 0x4])
            expect(r["status"] == [OK], "dsn: %r" % r)
            mail = [c for c in srv.commands if c.startswith("MAIL")][-1]
            rcpt = [c for c in srv.commands if c.startswith("RCPT")][-1]
            expect(" SIZE=" in mail and "RET=HDRS" in mail and "ENVID=env+201" in mail,
                   "MAIL is %r" % mail)
            expect("NOTIFY=SUCCESS,FAILURE" in rcpt and "ORCPT=rfc822;orig@b.test" in rcpt,
                   "RCPT is %r" % rcpt)
    finally:
        srv.close()


def test_smtp_agent_dsn_flag():
    """RELAYED marks each recipient a next hop took while it announced DSN (its RCPT carried
    NOTIFY, so that hop reports success and qmgr does not): set for an accepted recipient of
    a DSN server, clear for a refused one, for a server without DSN (no NOTIFY sent) and for
    an LMTP server without DSN."""
    dsn = StubServer(ext=("PIPELINING", "DSN"))
    plain = StubServer(ext=("PIPELINING",))
    lmtp = StubServer(ext=("PIPELINING",), lmtp=True)
    try:
        with Agent() as a:
            r = a.deliver("[127.0.0.1]:%d" % dsn.port, ["a@b.test", "perm@b.test"],
                          message("dsn"), notify=[NOTIFY_SUCCESS] * 2)
            expect(r["status"] == [OK, PERM] and r["flags"] == [RELAYED_DSN, 0],
                   "DSN server: %r" % r)
            expect([c for c in dsn.commands if c.startswith("RCPT")
                    and "NOTIFY=SUCCESS" in c], "no NOTIFY sent: %r" % dsn.commands)
            r = a.deliver("[127.0.0.1]:%d" % plain.port, ["a@b.test"], message("plain"),
                          notify=[NOTIFY_SUCCESS])
            expect(r["status"] == [OK] and r["flags"] == [0], "no DSN: %r" % r)
            expect(not [c for c in plain.commands if "NOTIFY" in c],
                   "NOTIFY sent without DSN: %r" % plain.commands)
            r = a.deliver("[127.0.0.1]:%d" % lmtp.port, ["a@x", "b@x"], message("lmtp"),
                          transport="lmtp", notify=[NOTIFY_SUCCESS] * 2)
            expect(r["status"] == [OK, OK] and r["flags"] == [0, 0], "LMTP: %r" % r)
    finally:
        for srv in (dsn, plain, lmtp):
            srv.close()


def test_smtp_agent_starttls_levels():
    """may: STARTTLS when offered (tls facts reported); encrypt without STARTTLS: 4.7.5 and
    nothing sent; verify against an untrusted self-signed certificate: 4.7.5."""
    tmp = tempfile.mkdtemp(prefix="postern-smtptls-")
    tls_srv = plain = None
    try:
        cert = make_cert(tmp)
        tls_srv = StubServer(tls_cert=cert)
        plain = StubServer()
        with Agent() as a:
            r = a.deliver("[127.0.0.1]:%d" % tls_srv.port, ["x@b.test"], message("tls"),
                          tls_level=TLS_MAY)
            expect(r["status"] == [OK], "may: %r" % r)
            expect(r["tls"].startswith("TLSv1."), "tls field %r" % r["tls"])
            expect(tls_srv.tls_sessions == 1 and len(tls_srv.messages) == 1,
                   "no message over TLS (%d sessions)" % tls_srv.tls_sessions)
            r = a.deliver("[127.0.0.1]:%d" % plain.port, ["x@b.test"], message("enc"),
                          tls_level=TLS_ENCRYPT)
            expect(r["status"] == [TEMP] and r["dsn"] == ["4.7.5"], "encrypt: %r" % r)
            expect(not plain.messages and not [c for c in plain.commands
                                               if c.startswith("MAIL")],
                   "sent in clear: %r" % plain.commands)
            r = a.deliver("[127.0.0.1]:%d" % tls_srv.port, ["x@b.test"], message("ver"),
                          tls_level=TLS_VERIFY)
            expect(r["status"] == [TEMP] and r["dsn"] == ["4.7.5"], "verify: %r" % r)
            expect(len(tls_srv.messages) == 1, "verify failure still delivered")
    finally:
        for s in (tls_srv, plain):
            if s:
                s.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_smtp_agent_lmtp_per_recipient():
    """LMTP over TCP: LHLO, one reply per accepted recipient after the final dot."""
    srv = StubServer(lmtp=True)
    try:
        with Agent() as a:
            r = a.deliver("[127.0.0.1]:%d" % srv.port, ["a@x", "perm@x", "b@x"],
                          message("lmtp"), transport="lmtp")
            expect(r["status"] == [OK, PERM, OK], "lmtp: %r" % r)
            expect("<b@x> delivered" in r["text"][2], "texts %r" % r["text"])
            expect(any(c.startswith("LHLO") for c in srv.commands), "no LHLO")
    finally:
        srv.close()


def test_smtp_agent_lmtp_unix_chroot():
    """lmtp:unix:/path: chrooted (root, smtp_chroot = yes) the path is looked up inside the
    chroot, and a miss says so; with smtp_chroot = no it is reached where it is."""
    if not IS_ROOT:
        raise Skip("the agent chroots only as root")
    outside = tempfile.mkdtemp(prefix="postern-lmtpsock-")
    os.chmod(outside, 0o755)
    sock_out = os.path.join(outside, "lmtp.sock")
    srv_out = StubServer(lmtp=True, unix_path=sock_out)
    try:
        with Agent() as a:
            r = a.deliver("unix:" + sock_out, ["a@x"], message("lmtp-miss"), transport="lmtp")
            expect(r["status"] == [TEMP] and "inside the chroot" in r["text"][0],
                   "outside the chroot: %r" % r)
            srv_in = StubServer(lmtp=True, unix_path=os.path.join(a.empty, "lmtp.sock"))
            try:
                r = a.deliver("unix:/lmtp.sock", ["b@x"], message("lmtp-in"), transport="lmtp")
                expect(r["status"] == [OK], "inside the chroot: %r" % r)
            finally:
                srv_in.close()
        with Agent({"smtp_chroot": "no"}) as a:
            r = a.deliver("unix:" + sock_out, ["c@x"], message("lmtp-out"), transport="lmtp")
            expect(r["status"] == [OK], "smtp_chroot = no: %r" % r)
        expect(len(srv_out.messages) == 1, "messages %r" % srv_out.messages)
    finally:
        srv_out.close()
        shutil.rmtree(outside, ignore_errors=True)


def test_smtp_agent_connect_failure_and_greeting():
    """Nothing listening: TEMP 4.4.1; a 554 greeting: the server's reply is the result."""
    port = free_port()
    srv = StubServer(greeting="554 5.3.2 go away")
    try:
        with Agent() as a:
            r = a.deliver("[127.0.0.1]:%d" % port, ["x@b.test"], message("refused"))
            expect(r["status"] == [TEMP] and r["dsn"] == ["4.4.1"], "refused: %r" % r)
            r = a.deliver("[127.0.0.1]:%d" % srv.port, ["x@b.test"], message("554"))
            expect(r["status"] == [PERM] and "554 5.3.2 go away" in r["text"][0],
                   "greeting: %r" % r)
    finally:
        srv.close()


# --------------------------------------------------------------------------------------
# MX routing through dnsmasq on a loopback port

def start_dnsmasq(port, records):
    exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not os.path.exists(exe):
        raise Skip("dnsmasq is not installed")
    argv = [exe, "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--listen-address=127.0.0.1", "--bind-interfaces", "--port=%d" % port,
            "--pid-file=", "--local=/test/", "--log-facility=-"] + records
    if IS_ROOT:
        argv.append("--user=root")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    if p.poll() is not None:
        raise AssertionError("dnsmasq exited with %s" % p.returncode)
    return p


def test_smtp_agent_mx_routing():
    """MX lookup through dns_servers: the preferred MX is down, the next one takes the
    message; no MX = A fallback; NXDOMAIN = 5.1.2; null MX = 5.1.10."""
    srv = StubServer()
    dport = free_port()
    dns = start_dnsmasq(dport, [
        "--mx-host=b.test,mx1.b.test,10", "--mx-host=b.test,mx2.b.test,20",
        "--host-record=mx1.b.test,127.0.0.2", "--host-record=mx2.b.test,127.0.0.1",
        "--host-record=aonly.test,127.0.0.1",
        "--mx-host=nullmx.test,.,0", "--host-record=nullmx.test,127.0.0.1",
    ])
    try:
        with Agent({"dns_servers": "127.0.0.1@%d" % dport}) as a:
            r = a.deliver("b.test:%d" % srv.port, ["x@b.test"], message("mx"))
            expect(r["status"] == [OK], "mx: %r" % r)
            expect(r["relay"] == "mx2.b.test[127.0.0.1]:%d" % srv.port, "relay %r" % r["relay"])
            r = a.deliver("aonly.test:%d" % srv.port, ["x@aonly.test"], message("a"))
            expect(r["status"] == [OK], "A fallback: %r" % r)
            r = a.deliver("nx.test:%d" % srv.port, ["x@nx.test"], message("nx"))
            expect(r["status"] == [PERM] and r["dsn"] == ["5.1.2"], "nxdomain: %r" % r)
            r = a.deliver("nullmx.test:%d" % srv.port, ["x@nullmx.test"], message("null"))
            expect(r["status"] == [PERM] and r["dsn"] == ["5.1.10"], "null MX: %r" % r)
    finally:
        stop(dns)
        srv.close()
