"""test_queue_cli - `postern queue ...` against a filled queue.

One instance relays every non-local domain to a Python sink (relayhost = [127.0.0.1]:PORT)
that answers 450 to every RCPT, so the mail stays deferred (retries are an hour apart, so
nothing moves unless a test moves it). Messages come from several senders (local users
alice, bob and nobody, and an outside sender) to several domains. The tests then check
`queue list --json` against what was sent, every selector, hold/release (with the sink
accepting), delete (body file gone), retry (an immediate new attempt), expire (a DSN to
the local sender), what an ordinary user (nobody) may see and do, and `queue list` with
the daemons stopped (read from the database files, said on stderr).
"""

import json
import os
import pwd
import shutil
import socket
import socketserver
import subprocess
import threading
import time

from harness import (IS_ROOT, POSTERN, Instance, Skip, expect, log, make_message,
                     unique_tag)

TIMEOUT = {}


class Sink:
    """A threaded SMTP sink on 127.0.0.1: 450 to every RCPT while `accept` is False, else 250
    and the message is recorded. Counts RCPT attempts per recipient address."""

    def __init__(self):
        self.accept = False
        self.attempts = {}         # rcpt address -> RCPT commands seen
        self.received = []         # (mail from, [rcpts], data)
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    outer.session(self.request)
                except OSError:
                    pass

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.srv = Server(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()

    def session(self, sock):
        sock.settimeout(30)
        f = sock.makefile("rb")

        def send(line):
            sock.sendall(line.encode() + b"\r\n")

        send("220 sink.test ESMTP")
        mail, rcpts = None, []
        while True:
            raw = f.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                send("250-sink.test\r\n250 ENHANCEDSTATUSCODES")
            elif verb == "MAIL":
                mail, rcpts = line[10:].split(">")[0].lstrip("<"), []
                send("250 2.1.0 ok")
            elif verb == "RCPT":
                addr = line[8:].split(">")[0].lstrip("<")
                with self.lock:
                    self.attempts[addr] = self.attempts.get(addr, 0) + 1
                    ok = self.accept
                if ok:
                    rcpts.append(addr)
                    send("250 2.1.5 ok")
                else:
                    send("450 4.7.1 sink says try later")
            elif verb == "DATA":
                if not rcpts:
                    send("554 5.5.1 no valid recipients")
                    continue
                send("354 go on")
                data = b""
                while True:
                    l = f.readline()
                    if not l or l == b".\r\n":
                        break
                    data += l
                with self.lock:
                    self.received.append((mail, rcpts, data))
                send("250 2.0.0 queued")
            elif verb == "RSET":
                mail, rcpts = None, []
                send("250 ok")
            elif verb == "QUIT":
                send("221 bye")
                return
            else:
                send("250 ok")

    def count(self, addr):
        with self.lock:
            return self.attempts.get(addr, 0)

    def got(self, addr):
        with self.lock:
            return [m for m in self.received if addr in m[1]]


# What is sent: (tag, sender, recipients).
OUTSIDE = "carol@example.org"
PLAN = [
    ("a1", "alice@local.test", ["x1@b.test"]),
    ("a2", "alice@local.test", ["x2@b.test", "y2@c.test"]),
    ("b1", "bob@local.test", ["x3@c.test"]),
    ("b2", "bob@local.test", ["x4@d.test"]),
    ("n1", "nobody@local.test", ["x5@b.test"]),
    ("o1", OUTSIDE, ["x6@d.test"]),
]


def _queue(inst, *args, user=None, stdin=None, timeout=60):
    """_queue - run `postern -c DIR queue args...` (as user if given); CompletedProcess."""
    argv = [POSTERN, "-c", inst.dir, "queue"] + list(args)
    if user is not None:
        pw = pwd.getpwnam(user)
        argv = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                "--clear-groups"] + argv
    return subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, text=True, errors="replace")


def _jlist(inst, *sel, user=None):
    """_jlist - `queue list --json` parsed: a list of dicts (every line must be JSON)."""
    r = _queue(inst, "list", "--json", *sel, user=user)
    expect(r.returncode == 0, "queue list --json %r exited %d: %s" % (sel, r.returncode,
                                                                     r.stderr))
    out = []
    for line in r.stdout.splitlines():
        out.append(json.loads(line))
    return out


def _ids(entries):
    return sorted(e["queue_id"] for e in entries)


class Filled:
    """The instance, the sink and tag -> queue ID of every message sent."""

    def __init__(self):
        self.sink = Sink()
        self.inst = Instance("queue", conf={
            "relayhost": "[127.0.0.1]:%d" % self.sink.port,
            "queue_retry_min": "1h", "queue_retry_max": "1h",
            "smtp_tls_security_level": "none",
        })
        self.qid = {}
        self.sent_at = {}

    def start(self):
        self.inst.start()
        self.inst.wait_daemons({"smtpd": 1, "qmgr": 1, "local": 1, "smtp": 1})
        for tag, sender, rcpts in PLAN:
            self.send(tag, sender, rcpts)
        # Every message was tried once (450) and is now deferred for an hour.
        self.wait_deferred([self.qid[t] for t, _, _ in PLAN])
        return self

    def send(self, tag, sender, rcpts, body_lines=None):
        import smtplib
        msg = make_message(unique_tag(tag), to=rcpts[0], sender=sender, body_lines=body_lines)
        s = self.inst.smtplib()
        try:
            s.ehlo()
            s.mail(sender)
            for r in rcpts:
                code, resp = s.rcpt(r)
                expect(code == 250, "RCPT %s: %d %r" % (r, code, resp))
            code, resp = s.data(msg)
            expect(code == 250, "DATA: %d %r" % (code, resp))
            self.qid[tag] = resp.decode().rsplit(" ", 1)[-1]
            self.sent_at[tag] = time.time()
        finally:
            s.close()
        return self.qid[tag]

    def wait_deferred(self, qids, timeout=30):
        """wait_deferred - until every qid is listed deferred with an attempt made."""
        deadline = time.monotonic() + timeout
        while True:
            got = {e["queue_id"]: e for e in _jlist(self.inst)}
            ok = all(q in got and got[q]["queue_name"] == "deferred"
                     and all(r["attempts"] >= 1 for r in got[q]["recipients"]) for q in qids)
            if ok:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("not all deferred: %r" % {q: got.get(q) for q in qids})
            time.sleep(0.2)

    def close(self):
        try:
            self.inst.cleanup()
        finally:
            self.sink.close()


_filled = None


def filled():
    """filled - the module's filled instance (made on first use)."""
    global _filled
    if _filled is None or not _filled.inst.alive():
        if _filled is not None:
            _filled.close()
        _filled = Filled()
        try:
            _filled.start()
        except BaseException:
            _filled.close()
            _filled = None
            raise
    return _filled


def test_queue_list_json_matches_what_was_sent():
    """Every message is listed once with its sender, size, pending recipients and their
    last error (the sink's 450), as JSON Lines with postqueue -j's fields."""
    f = filled()
    got = {e["queue_id"]: e for e in _jlist(f.inst)}
    for tag, sender, rcpts in PLAN:
        q = f.qid[tag]
        expect(q in got, "%s (%s) not listed" % (tag, q))
        e = got[q]
        for k in ("queue_name", "queue_id", "arrival_time", "message_size", "forced_expire",
                  "sender", "recipients", "attempts", "next_attempt"):
            expect(k in e, "%s: no field %s in %r" % (tag, k, e))
        expect(e["sender"] == sender, "%s: sender %r" % (tag, e["sender"]))
        expect(e["queue_name"] == "deferred", "%s: queue_name %r" % (tag, e["queue_name"]))
        expect(e["forced_expire"] is False, "%s: forced_expire" % tag)
        expect(abs(e["arrival_time"] - f.sent_at[tag]) < 30, "%s: arrival_time" % tag)
        expect(e["message_size"] > 100, "%s: size %r" % (tag, e["message_size"]))
        expect(sorted(r["address"] for r in e["recipients"]) == sorted(rcpts),
               "%s: recipients %r" % (tag, e["recipients"]))
        for r in e["recipients"]:
            for k in ("address", "orig_address", "delay_reason", "attempts", "next_attempt"):
                expect(k in r, "%s: recipient field %s missing" % (tag, k))
            expect("try later" in r["delay_reason"], "%s: delay_reason %r"
                   % (tag, r["delay_reason"]))
            expect(r["next_attempt"] > time.time() + 600, "%s: next_attempt %r"
                   % (tag, r["next_attempt"]))
    # The text listing: markers, footer, and mailq is the same listing.
    r = _queue(f.inst, "list")
    expect(r.returncode == 0, "queue list: %s" % r.stderr)
    expect("messages" in r.stdout.splitlines()[-1], "no footer: %r" % r.stdout[-200:])
    for tag, _, _ in PLAN:
        expect(f.qid[tag] + " " in r.stdout, "%s not in text listing" % tag)
    mailq = os.path.join(os.path.dirname(POSTERN), "mailq")
    env = dict(os.environ, POSTERN_CONFIG=f.inst.dir)
    m = subprocess.run([mailq], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=env, timeout=60)
    expect(m.returncode == 0 and m.stdout == r.stdout, "mailq differs from queue list:\n%s\n--\n%s"
           % (m.stdout, r.stdout))


def test_queue_selectors():
    """Each selector selects exactly the right messages."""
    f = filled()
    q = f.qid
    cases = [
        (["--sender", "^alice@"], ["a1", "a2"]),
        (["--sender", "BOB@LOCAL"], ["b1", "b2"]),          # case-insensitive
        (["--rcpt", r"^x[12]@"], ["a1", "a2"]),
        (["--domain", "c.test"], ["a2", "b1"]),
        (["--domain", "d.test", "--sender", "example"], ["o1"]),  # conjunction
        ([q["a1"], q["b2"]], ["a1", "b2"]),
        (["--all"], [t for t, _, _ in PLAN]),
        (["--state", "deferred"], [t for t, _, _ in PLAN]),
        (["--state", "hold"], []),
        (["--older-than", "1h"], []),
        (["--younger-than", "1h"], [t for t, _, _ in PLAN]),
        (["--larger-than", "100M"], []),
        (["--larger-than", "10"], [t for t, _, _ in PLAN]),
    ]
    for sel, want in cases:
        got = _ids(e for e in _jlist(f.inst, *sel) if e["queue_id"] in q.values())
        expect(got == sorted(q[t] for t in want), "selector %r: got %r want %r"
               % (sel, got, sorted(q[t] for t in want)))
    # "-": IDs on stdin (lines of the text listing work too).
    r = _queue(f.inst, "list", "--json", "-", stdin="%s\n%s*  123 x\n" % (q["b1"], q["n1"]))
    expect(r.returncode == 0, "list - : %s" % r.stderr)
    got = sorted(json.loads(l)["queue_id"] for l in r.stdout.splitlines())
    expect(got == sorted([q["b1"], q["n1"]]), "stdin selection %r" % got)
    # Bad input is a usage error, not a crash.
    for bad in (["--sender", "("], ["--older-than", "soon"], ["--state", "odd"], ["NOTAQID"]):
        r = _queue(f.inst, "list", *bad)
        expect(r.returncode == 2, "list %r exited %d" % (bad, r.returncode))
    # Summary: per domain counts.
    r = _queue(f.inst, "summary", "--json")
    expect(r.returncode == 0, "summary: %s" % r.stderr)
    rows = {d["domain"]: d for d in map(json.loads, r.stdout.splitlines())}
    expect(rows["b.test"]["count"] == 3 and rows["c.test"]["count"] == 2
           and rows["d.test"]["count"] == 2, "summary counts %r" % rows)
    expect(rows["b.test"]["age"]["5"] == 3, "age buckets %r" % rows["b.test"]["age"])
    r = _queue(f.inst, "summary")
    expect(r.returncode == 0 and "1280+" in r.stdout and "b.test" in r.stdout,
           "summary text %r" % r.stdout)


def test_queue_show():
    """show prints the envelope and the message; --headers, --body, --envelope parts."""
    f = filled()
    q = f.qid["b1"]
    r = _queue(f.inst, "show", q)
    expect(r.returncode == 0, "show: %s" % r.stderr)
    expect("sender: bob@local.test" in r.stdout and "X-Test-Id:" in r.stdout
           and "this is message" in r.stdout, "show output %r" % r.stdout[:500])
    h = _queue(f.inst, "show", q, "--headers").stdout
    expect("X-Test-Id:" in h and "this is message" not in h and "sender:" not in h,
           "--headers %r" % h)
    b = _queue(f.inst, "show", q, "--body").stdout
    expect("this is message" in b and "X-Test-Id" not in b, "--body %r" % b)
    e = _queue(f.inst, "show", q, "--envelope").stdout
    expect("recipient: x3@c.test" in e and "X-Test-Id" not in e, "--envelope %r" % e)
    r = _queue(f.inst, "show", "0000000000000000")
    expect(r.returncode == 1 and "no such message" in r.stderr, "show unknown: %r" % r.stderr)


def test_queue_hold_release_retry():
    """hold keeps a message away from the (now accepting) sink while the others go;
    release delivers it at once; retry makes an immediate new attempt."""
    f = filled()
    rq = f.send("r1", "alice@local.test", ["r1@b.test"])
    hq = f.send("h1", "alice@local.test", ["h1@b.test"])
    f.wait_deferred([rq, hq])
    # retry: a new attempt right away (the schedule says in an hour).
    before = f.sink.count("r1@b.test")
    r = _queue(f.inst, "retry", rq)
    expect(r.returncode == 0, "retry: %s %s" % (r.stdout, r.stderr))
    deadline = time.monotonic() + 15
    while f.sink.count("r1@b.test") <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    expect(f.sink.count("r1@b.test") > before, "retry made no new attempt")
    # hold h1, then let the sink accept and retry everything held and not.
    r = _queue(f.inst, "hold", hq)
    expect(r.returncode == 0 and "held" in r.stdout, "hold: %s %s" % (r.stdout, r.stderr))
    e = {x["queue_id"]: x for x in _jlist(f.inst)}
    expect(e[hq]["queue_name"] == "hold", "held message listed as %r" % e[hq]["queue_name"])
    expect(_ids(_jlist(f.inst, "--state", "hold")) == [hq], "--state hold")
    n_held_tries = f.sink.count("h1@b.test")
    f.sink.accept = True
    r = _queue(f.inst, "retry", "--rcpt", r"^(r1|h1)@")
    expect(r.returncode == 0, "retry selection: %s" % r.stderr)
    deadline = time.monotonic() + 15
    while not f.sink.got("r1@b.test") and time.monotonic() < deadline:
        time.sleep(0.1)
    expect(f.sink.got("r1@b.test"), "r1 not delivered after retry with the sink accepting")
    time.sleep(2)
    expect(not f.sink.got("h1@b.test") and f.sink.count("h1@b.test") == n_held_tries,
           "the held message was tried")
    r = _queue(f.inst, "release", hq)
    expect(r.returncode == 0, "release: %s" % r.stderr)
    deadline = time.monotonic() + 15
    while not f.sink.got("h1@b.test") and time.monotonic() < deadline:
        time.sleep(0.1)
    f.sink.accept = False
    expect(f.sink.got("h1@b.test"), "released message not delivered")


def test_queue_delete_and_expire():
    """delete removes the records and the spool file, with no DSN; expire bounces at once
    to the (local) sender."""
    f = filled()
    dq = f.send("d1", "bob@local.test", ["d1@c.test"])
    eq = f.send("e1", "alice@local.test", ["e1@c.test"], body_lines=["expire me"])
    f.wait_deferred([dq, eq])
    expect(dq in (f.inst.body_files() or []), "no body file for %s" % dq)
    r = _queue(f.inst, "delete", dq)
    expect(r.returncode == 0 and "deleted" in r.stdout, "delete: %s %s" % (r.stdout, r.stderr))
    expect(dq not in _ids(_jlist(f.inst)), "deleted message still listed")
    expect(dq not in (f.inst.body_files() or []), "body file of a deleted message remains")
    r = _queue(f.inst, "delete", dq)
    expect(r.returncode == 1 and "no such message" in r.stderr, "delete again: %r" % r.stderr)
    r = _queue(f.inst, "expire", eq)
    expect(r.returncode == 0, "expire: %s" % r.stderr)
    md = f.inst.maildirs["alice"]
    deadline = time.monotonic() + 20
    dsn = []
    while time.monotonic() < deadline:
        dsn = [d for _, _, d in md.scan() if b"MAILER-DAEMON" in d and b"e1@c.test" in d]
        if dsn:
            break
        time.sleep(0.2)
    expect(dsn, "no DSN for the expired message in alice's Maildir")
    expect(eq not in _ids(_jlist(f.inst)), "expired message still queued")
    # Nothing was sent to bob about the deleted one.
    bob = [d for _, _, d in f.inst.maildirs["bob"].scan() if b"d1@c.test" in d]
    expect(not bob, "a DSN for a deleted message")


def test_queue_ordinary_user():
    """nobody sees only their own message (sender nobody@local.test), and may change
    nothing, not even their own, with a clear refusal and exit 1."""
    if not IS_ROOT:
        raise Skip("needs root to run the CLI as another user")
    if shutil.which("setpriv") is None:
        raise Skip("no setpriv")
    f = filled()
    mine = _jlist(f.inst, user="nobody")
    expect(_ids(mine) == [f.qid["n1"]], "nobody sees %r" % _ids(mine))
    r = _queue(f.inst, "show", f.qid["a1"], user="nobody")
    expect(r.returncode == 1 and "X-Test-Id" not in r.stdout, "nobody could show alice's")
    r = _queue(f.inst, "show", f.qid["n1"], user="nobody")
    expect(r.returncode == 0 and "X-Test-Id" in r.stdout, "nobody cannot show their own: %r"
           % r.stderr)
    for cmd, sel in (("hold", [f.qid["a1"]]), ("delete", [f.qid["n1"]]),
                     ("delete", ["--all"]), ("expire", [f.qid["o1"]])):
        r = _queue(f.inst, cmd, *sel, user="nobody")
        expect(r.returncode == 1 and "permission denied" in r.stderr,
               "nobody %s %r: exit %d %r" % (cmd, sel, r.returncode, r.stderr))
    expect(_ids(_jlist(f.inst, "--state", "hold")) == [], "something got held")
    for t in ("a1", "n1", "o1"):
        expect(f.qid[t] in _ids(_jlist(f.inst)), "%s disappeared" % t)
    # Garbage on the control socket drops that client only.
    path = os.path.join(f.inst.queue_dir, "public", "control")
    for junk in (b"\x00" * 12, b"\xff" * 40, b"hello world\r\n" * 100):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(junk)
        s.close()
    expect(f.qid["a1"] in _ids(_jlist(f.inst)), "control socket broken after garbage")


def test_queue_list_daemons_stopped():
    """With the daemons stopped, queue list (and summary, show) read the database files
    and say so on stderr; changes are refused."""
    global _filled
    f = filled()
    want = _ids(e for e in _jlist(f.inst))
    r = f.inst.postern("stop", timeout=60)
    expect(r.returncode == 0, "postern stop: %s" % r.stdout)
    f.inst.stop()
    try:
        r = _queue(f.inst, "list", "--json")
        expect(r.returncode == 0, "offline list exited %d: %s" % (r.returncode, r.stderr))
        expect("not running" in r.stderr, "offline list did not say so: %r" % r.stderr)
        got = sorted(json.loads(l)["queue_id"] for l in r.stdout.splitlines())
        expect(got == want, "offline list %r, online %r" % (got, want))
        r = _queue(f.inst, "list")
        expect(r.returncode == 0 and f.qid["a1"] in r.stdout, "offline text list")
        r = _queue(f.inst, "show", f.qid["a2"])
        expect(r.returncode == 0 and "X-Test-Id" in r.stdout, "offline show: %r" % r.stderr)
        r = _queue(f.inst, "summary")
        expect(r.returncode == 0 and "b.test" in r.stdout, "offline summary: %r" % r.stderr)
        r = _queue(f.inst, "hold", f.qid["a2"])
        expect(r.returncode == 1 and "not running" in r.stderr, "offline hold: %r" % r.stderr)
    finally:
        f.close()
        _filled = None
