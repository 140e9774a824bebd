"""harness - a real Postern instance in a temporary directory, and the clients to talk to it.

An Instance picks free loopback ports, writes postern.conf and a mailbox map into a fresh
temporary directory, builds the map with `postern map build`, starts `postern -c DIR start -f`
with its output in DIR/postern.log, waits until the SMTP port greets, and stops everything it
started at the end: SIGTERM to master, then SIGKILL by PID to master and to every process of
the instance still alive. Every wait here is bounded in time and in count.

As root the instance runs with privilege separation (users postern, postern-q and vmail are
created if missing); as another user every daemon stays the current user.

Instance(tls=True) also listens for submission and SMTPS on free ports, with a self-signed
certificate for mx.local.test (and a second one for other.test, chosen by SNI) made with the
openssl command; Instance(auth_users={user: password}) writes an AUTH map with
`postern passwd`. RawSMTP.starttls()/RawSMTP.tls_connect() speak TLS with Python's ssl.

Only the Python standard library is used.
"""

import hashlib
import os
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN = os.environ.get("POSTERN_BIN", os.path.join(ROOT, "build", "bin"))
POSTERN = os.path.join(BIN, "postern")

USERS = ("postern", "postern-q", "vmail")
LOCAL_DOMAIN = "local.test"
MAILBOXES = ("alice", "bob")

IS_ROOT = os.geteuid() == 0
VERBOSE = os.environ.get("POSTERN_TEST_VERBOSE", "") not in ("", "0")


class Skip(Exception):
    """Raised by a test that cannot run here; the runner counts it as skipped."""


class HarnessError(AssertionError):
    """The instance could not be set up or did not behave; carries the log tail."""


def log(msg):
    """log - a progress line on stdout (the runner's output), flushed at once."""
    sys.stdout.write("    " + msg + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------
# Processes (all by PID, read from /proc)

def proc_info(pid):
    """proc_info - {'pid','ppid','argv0','name','uid','start'} of a process, None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("ascii", "replace")
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
        with open("/proc/%d/status" % pid, "rb") as f:
            status = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may hold spaces and parentheses: split after the last ')'.
    rparen = stat.rfind(")")
    comm = stat[stat.find("(") + 1:rparen]
    fields = stat[rparen + 2:].split()
    if fields[0] == "Z":
        return None
    uid = gid = None
    for line in status.splitlines():
        if line.startswith("Uid:"):
            uid = [int(x) for x in line.split()[1:]]
        elif line.startswith("Gid:"):
            gid = [int(x) for x in line.split()[1:]]
    argv = cmdline.split(b"\0")
    argv0 = argv[0].decode("utf-8", "replace") if argv and argv[0] else comm
    return {
        "pid": pid,
        "ppid": int(fields[1]),
        "start": int(fields[19]),
        "argv0": argv0,
        "argv": [a.decode("utf-8", "replace") for a in argv if a],
        "comm": comm,
        "name": os.path.basename(argv0.split()[0]) if argv0 else comm,
        "uid": uid,
        "gid": gid,
    }


def all_procs():
    """all_procs - pid -> proc_info for every live process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            p = proc_info(int(d))
            if p is not None:
                out[p["pid"]] = p
    return out


def descendants(pid, procs=None):
    """descendants - proc_info of every live descendant of pid (children first)."""
    procs = procs if procs is not None else all_procs()
    kids = {}
    for p in procs.values():
        kids.setdefault(p["ppid"], []).append(p)
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(0), []):
            out.append(c)
            todo.append(c["pid"])
    return out


def daemon_kind(p):
    """daemon_kind - 'master', 'smtpd', 'qmgr', 'local', ... from argv[0], else comm."""
    for cand in (p["argv0"], p["comm"]):
        base = os.path.basename(cand.split()[0]) if cand else ""
        for kind in ("master", "smtpd", "qmgr", "local", "smtp", "postern"):
            if base == kind or base.endswith(kind):
                return kind
    return p["comm"]


def same_process(p):
    """same_process - True if the process p describes is still the one alive under its PID."""
    now = proc_info(p["pid"])
    return now is not None and now["start"] == p["start"]


def kill_process(p, sig=signal.SIGKILL):
    """kill_process - send sig to the process described by p if it is still that process."""
    if same_process(p):
        try:
            os.kill(p["pid"], sig)
        except ProcessLookupError:
            pass


def wait_gone(procs, timeout):
    """wait_gone - wait until none of procs is alive; True if so within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(same_process(p) for p in procs):
            return True
        time.sleep(0.05)
    return not any(same_process(p) for p in procs)


# --------------------------------------------------------------------------------------
# Users

def ensure_users():
    """ensure_users - as root, create the system users postern, postern-q and vmail if missing."""
    for u in USERS:
        try:
            pwd.getpwnam(u)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", u], check=True, timeout=60,
                           stdout=subprocess.DEVNULL)


def current_user():
    return pwd.getpwuid(os.geteuid()).pw_name


# --------------------------------------------------------------------------------------
# Ports

_ports_given = set()
_ports_lock = threading.Lock()


def free_port():
    """free_port - a loopback TCP port that is free now and not yet handed out by this run."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        with _ports_lock:
            if port not in _ports_given:
                _ports_given.add(port)
                return port
    raise HarnessError("no free loopback port found")


# --------------------------------------------------------------------------------------
# Messages

def make_message(tag, to="alice@local.test", sender="sender@example.org", subject=None,
                 body_lines=None, extra_headers=()):
    """make_message - a message (bytes, CRLF line endings) carrying `X-Test-Id: tag`."""
    hdrs = [
        "From: <%s>" % sender,
        "To: <%s>" % to,
        "Subject: %s" % (subject or "test " + tag),
        "Date: Thu, 01 Jan 2026 00:00:00 +0000",
        "Message-ID: <%s@test.example>" % tag,
        "X-Test-Id: %s" % tag,
    ]
    hdrs.extend(extra_headers)
    if body_lines is None:
        body_lines = ["Hello,", "", "this is message %s." % tag, ".leading dot line", "-- ", "end"]
    return ("\r\n".join(hdrs) + "\r\n\r\n" + "\r\n".join(body_lines) + "\r\n").encode("utf-8")


def lf(data):
    """lf - CRLF line endings to LF."""
    return data.replace(b"\r\n", b"\n")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


ADDED_HEADERS = (b"return-path", b"delivered-to", b"received")


def split_added_headers(data):
    """split_added_headers - (added, rest): the leading Return-Path/Delivered-To/Received
    fields (with their continuation lines) that Postern prepends, and the original message."""
    added = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break
        line = data[pos:end]
        name = line.split(b":", 1)[0].strip().lower() if b":" in line else b""
        if name not in ADDED_HEADERS:
            break
        field_end = end + 1
        while field_end < len(data) and data[field_end:field_end + 1] in (b" ", b"\t"):
            nxt = data.find(b"\n", field_end)
            field_end = len(data) if nxt < 0 else nxt + 1
        added.append(data[pos:field_end])
        pos = field_end
    return added, data[pos:]


def header_value(data, name):
    """header_value - the first header field `name` (unfolded) in the header section, or None."""
    head = data.split(b"\n\n", 1)[0].replace(b"\r\n", b"\n")
    head = re.sub(rb"\n[ \t]+", b" ", head)
    want = name.lower().encode() + b":"
    for line in head.split(b"\n"):
        if line.lower().startswith(want):
            return line[len(want):].strip().decode("utf-8", "replace")
    return None


class Maildir:
    """A Maildir to watch: files in new/ (and cur/) read once each, indexed by X-Test-Id."""

    def __init__(self, path):
        self.path = path
        self._seen = {}          # file name -> (tag, data)

    def scan(self):
        """scan - read new files; returns the list of (file name, tag, data)."""
        for sub in ("new", "cur"):
            d = os.path.join(self.path, sub)
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for n in names:
                if n in self._seen or n.startswith("."):
                    continue
                try:
                    with open(os.path.join(d, n), "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    continue      # moved from new/ to cur/ meanwhile
                self._seen[n] = (header_value(data, "X-Test-Id"), data)
        return [(n, t, d) for n, (t, d) in self._seen.items()]

    def counts(self):
        """counts - tag -> number of messages carrying it."""
        out = {}
        for _, tag, _ in self.scan():
            out[tag] = out.get(tag, 0) + 1
        return out

    def by_tag(self, tag):
        return [d for _, t, d in self.scan() if t == tag]

    def one(self, tag, timeout=30.0):
        """one - the single copy of tag, waiting for it (bounded by timeout); fails on none
        or several."""
        self.wait_for([tag], timeout)
        got = self.by_tag(tag)
        expect(len(got) == 1, "%s: %d copies of %s" % (self.path, len(got), tag))
        return got[0]

    def wait_for(self, tags, timeout=30.0):
        """wait_for - wait until every tag is present; returns the counts. Bounded by timeout."""
        tags = set(tags)
        deadline = time.monotonic() + timeout
        while True:
            c = self.counts()
            if all(c.get(t, 0) >= 1 for t in tags) or time.monotonic() >= deadline:
                return c
            time.sleep(0.05)

    def tmp_files(self):
        try:
            return os.listdir(os.path.join(self.path, "tmp"))
        except FileNotFoundError:
            return []


# --------------------------------------------------------------------------------------
# A raw SMTP client: exact bytes out, replies parsed, for protocol edge cases.

class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines            # text after "NNN-" / "NNN "

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return "Reply(%d, %r)" % (self.code, self.lines)


class RawSMTP:
    """RawSMTP - a blocking socket with a timeout; send() sends bytes as given."""

    def __init__(self, host, port, timeout=15.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.local_port = self.sock.getsockname()[1]

    @classmethod
    def tls_connect(cls, host, port, ctx=None, server_hostname=None, session=None,
                    timeout=15.0):
        """tls_connect - connect and start TLS at once (SMTPS); the 220 is still to read."""
        c = cls(host, port, timeout=timeout)
        try:
            c.starttls(ctx, server_hostname=server_hostname, session=session)
        except BaseException:
            c.close()
            raise
        return c

    def starttls(self, ctx=None, server_hostname=None, session=None):
        """starttls - run the TLS handshake on this connection (after `220 Ready to start
        TLS`, or at once for SMTPS). Bytes the server sent before it are an error."""
        if self.buf:
            raise AssertionError("plaintext bytes before the TLS handshake: %r" % self.buf)
        ctx = ctx or default_tls_context()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname,
                                    session=session)
        return self.sock

    @property
    def tls(self):
        return isinstance(self.sock, ssl.SSLSocket)

    def peer_cert_der(self):
        """peer_cert_der - the server certificate (DER bytes) of a TLS connection."""
        return self.sock.getpeercert(binary_form=True)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no reply line within %.1fs (have %r)" % (timeout, self.buf))
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by server (have %r)" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self, timeout=None):
        """reply - read one (possibly multi-line) reply."""
        timeout = self.timeout if timeout is None else timeout
        lines = []
        for _ in range(1000):
            line = self._line(timeout)
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError("malformed reply line %r" % line)
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return Reply(int(line[:3]), lines)
            if line[3] != "-":
                raise AssertionError("malformed reply line %r" % line)
        raise AssertionError("reply longer than 1000 lines")

    def cmd(self, line, timeout=None):
        """cmd - send one command line (CRLF added) and read its reply."""
        self.send(line + "\r\n")
        return self.reply(timeout)

    def pending(self, wait=0.3):
        """pending - bytes the server sent beyond what was read, after waiting `wait` s."""
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
            self.buf += chunk
        except (socket.timeout, BlockingIOError):
            pass
        finally:
            self.sock.settimeout(self.timeout)
        return self.buf

    def greet(self, helo="client.test"):
        """greet - read the 220 banner and send EHLO; returns the EHLO reply."""
        r = self.reply()
        expect(r.code == 220, "banner: %r" % r)
        r = self.cmd("EHLO " + helo)
        expect(r.code == 250, "EHLO: %r" % r)
        return r


def expect(cond, msg):
    """expect - assert with a message (survives python -O)."""
    if not cond:
        raise AssertionError(msg)


# --------------------------------------------------------------------------------------
# TLS: certificates made with the openssl command, and client contexts

def make_cert(directory, name, cn, sans=(), days=30, cert_name=None, key_name=None):
    """make_cert - a self-signed certificate for cn (and sans: "DNS:x", "IP:a.b.c.d") with an
    EC P-256 key (mode 0600) in directory; returns (cert path, key path)."""
    cert = os.path.join(directory, cert_name or name + ".pem")
    key = os.path.join(directory, key_name or name + ".key")
    san = ",".join(["DNS:" + cn] + [x for x in sans if x != "DNS:" + cn])
    old = os.umask(0o077)
    try:
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", str(days),
                            "-subj", "/CN=" + cn, "-addext", "subjectAltName=" + san,
                            "-keyout", key, "-out", cert], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    finally:
        os.umask(old)
    if r.returncode != 0:
        raise HarnessError("openssl req failed: %s" % r.stdout.decode("utf-8", "replace"))
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)
    return cert, key


def cert_der(path):
    """cert_der - the DER bytes of the (first) certificate in a PEM file."""
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


_default_tls_ctx = None


def default_tls_context():
    """default_tls_context - one shared tls_client_context(): Python resumes a session only
    with the context that made it, so connections without their own context share this."""
    global _default_tls_ctx
    if _default_tls_ctx is None:
        _default_tls_ctx = tls_client_context()
    return _default_tls_ctx


def tls_client_context(minimum=None, maximum=None, seclevel0=False):
    """tls_client_context - a client context that verifies nothing (the certificates are
    self-signed); minimum/maximum: ssl.TLSVersion bounds."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if seclevel0:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


# --------------------------------------------------------------------------------------
# The instance

_instances = []          # every Instance created in this run, for cleanup_all()
_instances_lock = threading.Lock()


class Instance:
    """A Postern instance in a temporary directory.

    conf: extra/overriding postern.conf keys (str -> str). The directory is removed by
    cleanup() unless the test failed and POSTERN_TEST_KEEP is set."""

    def __init__(self, name="t", conf=None, tls=False, auth_users=None):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="postern-%s-" % name)
        os.chmod(self.dir, 0o755)     # the mailbox owner must reach mail/ below it
        self.port = free_port()
        self.host = "127.0.0.1"
        self.logfile = os.path.join(self.dir, "postern.log")
        self.proc = None              # the `postern start -f` process
        self.master = None            # proc_info of master
        self.known = {}               # (pid, start) -> proc_info of every process seen
        self.queue_dir = os.path.join(self.dir, "queue")
        self.maildirs = {u: Maildir(os.path.join(self.dir, "mail", u)) for u in MAILBOXES}
        self.conf = {
            "queue_directory": "queue",
            "smtp_listen": "%s:%d" % (self.host, self.port),
            "myhostname": "mx.local.test",
            "local_domains": LOCAL_DOMAIN,
            "mailbox_map": "mailboxes",
            "queue_retry_min": "1s",
            "queue_retry_max": "5s",
            "smtpd_timeout": "60s",
            "log_level": "info",
        }
        if IS_ROOT:
            ensure_users()
            self.conf.update({"mail_owner": "postern", "queue_owner": "postern-q",
                              "mailbox_owner": "vmail"})
        else:
            me = current_user()
            self.conf.update({"mail_owner": me, "queue_owner": me, "mailbox_owner": me})
        self.tls_dir = os.path.join(self.dir, "tls")
        self.cert = self.key = self.other_cert = self.other_key = None
        self.submission_port = self.smtps_port = None
        if tls:
            self._make_tls()
        self.auth_users = dict(auth_users or {})
        if self.auth_users:
            self.conf["smtpd_auth_map"] = "auth"
        self.conf.update(conf or {})
        with _instances_lock:
            _instances.append(self)
        self._write_files()
        for user, password in self.auth_users.items():
            self.set_password(user, password)

    def _make_tls(self):
        """_make_tls - certificates (default mx.local.test; other.test by SNI) and the
        submission and SMTPS listeners."""
        os.makedirs(self.tls_dir, mode=0o755, exist_ok=True)
        self.cert, self.key = make_cert(self.tls_dir, "cert", "mx.local.test",
                                        ("DNS:localhost", "IP:127.0.0.1"),
                                        cert_name="cert.pem", key_name="key.pem")
        self.other_cert, self.other_key = make_cert(self.tls_dir, "other", "other.test",
                                                    cert_name="other.crt",
                                                    key_name="other.key")
        self.submission_port = free_port()
        self.smtps_port = free_port()
        self.conf.update({
            "submission_listen": "%s:%d" % (self.host, self.submission_port),
            "smtps_listen": "%s:%d" % (self.host, self.smtps_port),
            "smtpd_tls_cert_file": "tls/cert.pem",
            "smtpd_tls_key_file": "tls/key.pem",
            "smtpd_tls_sni_certs": "tls/other.crt:tls/other.key",
        })

    def set_password(self, user, password, mapfile=None):
        """set_password - `postern passwd -m MAP USER` with the password on stdin."""
        mapfile = mapfile or os.path.join(self.dir, "auth")
        r = subprocess.run([POSTERN, "-c", self.dir, "passwd", "-m", mapfile, user],
                           input=password + "\n", stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, text=True, errors="replace")
        if r.returncode != 0:
            raise HarnessError("postern passwd %s exited %d:\n%s" % (user, r.returncode,
                                                                    r.stdout))
        self.auth_users[user] = password

    # -- files

    def _write_files(self):
        with open(os.path.join(self.dir, "postern.conf"), "w") as f:
            f.write("# written by tests/integration/harness.py\n")
            for k, v in self.conf.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.dir, "mailboxes"), "w") as f:
            for u in MAILBOXES:
                f.write("%s@%s %s/\n" % (u, LOCAL_DOMAIN, self.maildirs[u].path))
        owner = None
        if IS_ROOT:
            pw = pwd.getpwnam(self.conf["mailbox_owner"])
            owner = (pw.pw_uid, pw.pw_gid)
        os.makedirs(os.path.join(self.dir, "mail"), exist_ok=True)
        os.chmod(os.path.join(self.dir, "mail"), 0o755)
        for u in MAILBOXES:
            top = self.maildirs[u].path
            for sub in ("", "new", "cur", "tmp"):
                p = os.path.join(top, sub)
                os.makedirs(p, mode=0o700, exist_ok=True)
                if owner:
                    os.chown(p, *owner)

    def postern(self, *args, timeout=60, check=False):
        """postern - run `postern -c DIR args...`; returns the CompletedProcess (text)."""
        if not os.path.exists(POSTERN):
            raise HarnessError("%s is not built (run make)" % POSTERN)
        r = subprocess.run([POSTERN, "-c", self.dir] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           text=True, errors="replace")
        if check and r.returncode != 0:
            raise HarnessError("postern %s exited %d:\n%s" % (" ".join(args), r.returncode,
                                                             r.stdout))
        return r

    def build_map(self):
        self.postern("map", "build", os.path.join(self.dir, "mailboxes"), check=True)

    # -- start and stop

    def start(self, foreground=True, timeout=30.0):
        """start - build the map, start Postern and wait until the SMTP port greets.

        foreground: `postern start -f` as our child (output in the log); else `postern start`,
        which must daemonize (output then goes to syslog)."""
        if not os.path.exists(POSTERN):
            raise HarnessError("%s is not built (run make)" % POSTERN)
        if not os.path.exists(os.path.join(self.dir, "mailboxes.db")):
            self.build_map()
        logf = open(self.logfile, "ab")
        logf.write(("--- start %s (foreground=%s)\n" % (time.strftime("%H:%M:%S"),
                                                        foreground)).encode())
        logf.flush()
        if foreground:
            self.proc = subprocess.Popen([POSTERN, "-c", self.dir, "start", "-f"],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         start_new_session=True, close_fds=True)
        else:
            r = subprocess.run([POSTERN, "-c", self.dir, "start"], stdin=subprocess.DEVNULL,
                               stdout=logf, stderr=logf, timeout=timeout)
            if r.returncode != 0:
                logf.close()
                raise HarnessError("postern start exited %d\n%s" % (r.returncode,
                                                                    self.log_tail()))
            self.proc = None
        logf.close()
        self.wait_ready(timeout)
        return self

    def master_pid_from_file(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def find_master(self):
        """find_master - proc_info of master: our child if it is master, a master below it,
        or the PID in queue/pid/master.pid (when it names a process called master)."""
        if self.proc is not None and self.proc.poll() is None:
            me = proc_info(self.proc.pid)
            if me is not None:
                if daemon_kind(me) == "master":
                    return me
                for p in descendants(self.proc.pid):
                    if daemon_kind(p) == "master":
                        return p
        pid = self.master_pid_from_file()
        if pid is not None:
            p = proc_info(pid)
            if p is not None and daemon_kind(p) == "master":
                return p
        return None

    def wait_ready(self, timeout=30.0):
        """wait_ready - wait until the SMTP port answers 220 (and master is known)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise HarnessError("postern start -f exited with %s before it was ready\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            try:
                with RawSMTP(self.host, self.port, timeout=2.0) as c:
                    r = c.reply()
                    if r.code == 220:
                        c.send("QUIT\r\n")
                        m = self.find_master()
                        if m is not None:
                            self.master = m
                            self.remember()
                            return
                        last = "greeting, but no master process found"
                    else:
                        last = "banner %r" % r
            except (OSError, ConnectionError, AssertionError) as e:
                last = str(e)
            time.sleep(0.1)
        raise HarnessError("instance not ready within %.0fs (%s)\n%s"
                           % (timeout, last, self.log_tail()))

    def remember(self):
        """remember - note every current process of the instance, to clean it up later."""
        procs = all_procs()
        cand = []
        if self.proc is not None and self.proc.pid in procs:
            cand.append(procs[self.proc.pid])
            cand.extend(descendants(self.proc.pid, procs))
        m = self.master
        if m is not None and m["pid"] in procs and procs[m["pid"]]["start"] == m["start"]:
            cand.append(procs[m["pid"]])
            cand.extend(descendants(m["pid"], procs))
        for p in cand:
            self.known[(p["pid"], p["start"])] = p
        return cand

    def processes(self):
        """processes - proc_info of master and every live descendant, master first."""
        m = self.master if self.master and same_process(self.master) else self.find_master()
        if m is None:
            return []
        self.master = m
        procs = all_procs()
        out = [procs.get(m["pid"], m)] + descendants(m["pid"], procs)
        for p in out:
            self.known[(p["pid"], p["start"])] = p
        return out

    def daemons(self, kind):
        return [p for p in self.processes() if daemon_kind(p) == kind]

    def wait_daemons(self, counts=None, timeout=20.0):
        """wait_daemons - wait until master has its daemons ({kind: n}, default one smtpd,
        qmgr and local); returns kind -> [proc_info]. Bounded by timeout."""
        counts = counts or {"smtpd": 1, "qmgr": 1, "local": 1}
        deadline = time.monotonic() + timeout
        while True:
            kinds = {}
            for p in self.processes():
                kinds.setdefault(daemon_kind(p), []).append(p)
            if all(len(kinds.get(k, [])) >= n for k, n in counts.items()):
                return kinds
            if time.monotonic() >= deadline:
                raise HarnessError("daemons %r not all running after %.0fs: have %r\n%s" % (
                    counts, timeout, {k: [p["pid"] for p in v] for k, v in kinds.items()},
                    self.log_tail()))
            time.sleep(0.1)

    def alive(self):
        return self.master is not None and same_process(self.master)

    def kill_all(self):
        """kill_all - SIGKILL master and every daemon at once, by PID (a crash of everything)."""
        procs = self.processes()
        for p in procs:
            kill_process(p, signal.SIGKILL)
        if self.proc is not None:
            try:
                self.proc.kill()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if not wait_gone(procs, 10):
            raise HarnessError("processes survived SIGKILL: %r" % [p["pid"] for p in procs])
        self.master = None
        return procs

    def stop(self, timeout=25.0):
        """stop - SIGTERM master, wait (bounded), then SIGKILL whatever of ours is left."""
        self.remember()
        m = self.master if self.master and same_process(self.master) else self.find_master()
        if m is not None:
            kill_process(m, signal.SIGTERM)
            wait_gone([m], timeout)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5 if m is None else 2)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        # Everything we ever saw that is still alive: by PID and start time only.
        left = [p for p in self.known.values() if same_process(p)]
        for p in left:
            kill_process(p, signal.SIGKILL)
        wait_gone(left, 5)
        self.master = None
        self.proc = None
        return left

    def cleanup(self, keep=False):
        try:
            self.stop()
        finally:
            with _instances_lock:
                if self in _instances:
                    _instances.remove(self)
            if keep or os.environ.get("POSTERN_TEST_KEEP"):
                log("kept instance directory %s" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, etype, evalue, tb):
        if etype is not None and not isinstance(evalue, Skip):
            show_log(self)
        self.cleanup(keep=etype is not None and bool(os.environ.get("POSTERN_TEST_KEEP")))
        return False

    # -- helpers for tests

    def log_tail(self, n=60):
        try:
            with open(self.logfile, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return "(no log file %s)" % self.logfile
        return "\n".join("      | " + l for l in lines[-n:])

    def smtp(self, timeout=15.0):
        """smtp - a RawSMTP connection to the instance."""
        return RawSMTP(self.host, self.port, timeout=timeout)

    def submission(self, timeout=15.0):
        """submission - a plaintext RawSMTP connection to the submission listener."""
        return RawSMTP(self.host, self.submission_port, timeout=timeout)

    def smtps(self, ctx=None, server_hostname=None, session=None, timeout=15.0):
        """smtps - a RawSMTP connection to the SMTPS listener, TLS established."""
        return RawSMTP.tls_connect(self.host, self.smtps_port, ctx=ctx,
                                   server_hostname=server_hostname, session=session,
                                   timeout=timeout)

    def log_text(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def smtpd_pid_of(self, client_port, timeout=5.0):
        """smtpd_pid_of - the pid of the smtpd that logged `connect from [127.0.0.1]:PORT`
        for our client port; None if no such line appears within timeout."""
        pat = re.compile(r"smtpd\[(\d+)\]: \w+: connect from \[127\.0\.0\.1\]:%d\b"
                         % client_port)
        deadline = time.monotonic() + timeout
        while True:
            m = pat.search(self.log_text())
            if m:
                return int(m.group(1))
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def smtplib(self, timeout=15.0):
        import smtplib
        return smtplib.SMTP(self.host, self.port, local_hostname="client.test", timeout=timeout)

    def send(self, msg, to="alice@local.test", sender="sender@example.org"):
        """send - one message through smtplib; raises on any refusal."""
        s = self.smtplib()
        try:
            s.sendmail(sender, [to] if isinstance(to, str) else to, msg)
        finally:
            try:
                s.quit()
            except Exception:
                s.close()

    def send_retry(self, msg, to="alice@local.test", sender="sender@example.org", timeout=20.0):
        """send_retry - send(), retrying on 4xx replies and connection errors (as a real
        client would) until timeout; returns the number of retries. 5xx raises at once."""
        import smtplib
        deadline = time.monotonic() + timeout
        retries = 0
        while True:
            try:
                self.send(msg, to=to, sender=sender)
                return retries
            except smtplib.SMTPResponseException as e:
                if not 400 <= e.smtp_code < 500 or time.monotonic() >= deadline:
                    raise
            except smtplib.SMTPRecipientsRefused as e:
                codes = [c for c, _ in e.recipients.values()]
                if any(c >= 500 for c in codes) or time.monotonic() >= deadline:
                    raise
            except (smtplib.SMTPServerDisconnected, OSError):
                if time.monotonic() >= deadline:
                    raise
            retries += 1
            time.sleep(0.2)

    def body_files(self):
        """body_files - spool files in queue/body/ (readable as root or as the queue owner)."""
        out = []
        top = os.path.join(self.queue_dir, "body")
        try:
            subs = os.listdir(top)
        except (FileNotFoundError, PermissionError):
            return None
        for s in subs:
            try:
                out.extend(os.listdir(os.path.join(top, s)))
            except (NotADirectoryError, FileNotFoundError, PermissionError):
                pass
        return out


def show_log(inst):
    log("instance %s log (%s):" % (inst.name, inst.logfile))
    sys.stdout.write(inst.log_tail() + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------
# A shared instance for the tests that need no special configuration.

# The shared instance does not trust loopback, so relay denial can be tested from it.
# 127.0.0.1 is not in mynetworks here (relay refusals are tested), so it is not exempt from
# the greet pause either: no pause, or every test would wait a second per connection.
SHARED_CONF = {"message_size_limit": "100k", "mynetworks": "192.0.2.0/24",
               "smtpd_greet_pause": "0"}
_shared = None
_shared_error = None


def shared():
    """shared - the run's shared, running instance (started on first use, restarted if it
    died). A failure to start is remembered, so later tests fail at once instead of waiting."""
    global _shared, _shared_error
    if _shared_error is not None:
        raise HarnessError("shared instance could not start earlier: %s"
                           % _shared_error.splitlines()[0])
    if _shared is not None and _shared.alive():
        return _shared
    if _shared is not None:
        log("shared instance died; starting a new one")
        show_log(_shared)
        _shared.cleanup()
        _shared = None
    inst = Instance("shared", SHARED_CONF)
    try:
        inst.start()
    except Exception as e:
        _shared_error = str(e)
        inst.cleanup()
        raise
    _shared = inst
    return inst


# A shared instance with TLS on every listener, SNI and an AUTH map, for test_tls and
# test_auth. Its users' passwords are in TLS_SHARED_USERS.

TLS_SHARED_USERS = {"demo@local.test": "correct horse %d" % random.randrange(10 ** 9),
                    "user2@local.test": "battery staple %d" % random.randrange(10 ** 9)}
TLS_SHARED_CONF = {"message_size_limit": "100k", "smtpd_processes": "2",
                   "mynetworks": "192.0.2.0/24",          # relaying needs AUTH here
                   "smtpd_greet_pause": "0",
                   "smtpd_tls_handshake_timeout": "3s", "smtpd_auth_failure_delay": "1s",
                   "smtpd_auth_failure_limit": "3"}
_tls_shared = None
_tls_shared_error = None


def tls_shared():
    """tls_shared - the run's shared TLS instance (Instance(tls=True) with TLS_SHARED_USERS),
    started on first use and again if it died; a failure to start is remembered."""
    global _tls_shared, _tls_shared_error
    if _tls_shared_error is not None:
        raise HarnessError("shared TLS instance could not start earlier: %s"
                           % _tls_shared_error.splitlines()[0])
    if _tls_shared is not None and _tls_shared.alive():
        return _tls_shared
    if _tls_shared is not None:
        log("shared TLS instance died; starting a new one")
        show_log(_tls_shared)
        _tls_shared.cleanup()
        _tls_shared = None
    inst = Instance("tls", TLS_SHARED_CONF, tls=True, auth_users=TLS_SHARED_USERS)
    try:
        inst.start()
    except Exception as e:
        _tls_shared_error = str(e)
        inst.cleanup()
        raise
    _tls_shared = inst
    return inst


def cleanup_all():
    """cleanup_all - stop every instance still running (the runner calls this at exit)."""
    global _shared, _tls_shared
    with _instances_lock:
        left = list(_instances)
    for inst in left:
        try:
            inst.cleanup()
        except Exception as e:    # keep cleaning the others
            log("cleanup of %s failed: %s" % (inst.dir, e))
    _shared = None
    _tls_shared = None


def unique_tag(prefix):
    return "%s-%d-%d-%06d" % (prefix, os.getpid(), int(time.time() * 1000) % 10 ** 8,
                              random.randrange(10 ** 6))
