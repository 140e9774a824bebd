"""test_multihost - relaying between three Postern hosts in network namespaces (issue 4).

As root only: the test builds its own namespaces with tests/integration/netns.py (a bridge in
a switch namespace, one namespace per host, addresses in 192.0.2.0/24 that exist nowhere
else, no default route) and runs dnsmasq there as the only name server:

    host  address     Postern                   DNS
    a     192.0.2.1   a.test (alice, bob)       a.test MX 10 mail.a.test -> 192.0.2.1
    b     192.0.2.2   b.test t.test m.test      b.test MX 10 mail.b.test -> 192.0.2.2
                      (:25 and :2525)           m.test MX 10 mx1.m.test -> 192.0.2.4 (down)
                                                       MX 20 mx2.m.test -> 192.0.2.2
    c     192.0.2.3   c.test (started late)     c.test MX 10 mail.c.test -> 192.0.2.3
    d     192.0.2.4   nothing listens           n.test null MX (RFC 7505); t.test: none
    switch            dnsmasq on 192.0.2.53

Each Postern runs in its namespace (`ip netns exec NS postern -c DIR start -f`) with
local_domains = its domains, dns_servers = 192.0.2.53, mynetworks = loopback and its own
address, short retry times, and Maildirs in its own temporary directory. Mail is submitted
with smtplib from inside a's namespace to a's own smtpd, so every hop between hosts is made
by the real smtp agent. Scenarios (one test each, sharing the lab):

  lab          the namespaces, routes and DNS answers (no Postern needed)
  mx_relay     alice@a.test -> bob@b.test by MX; lands in b's Maildir with both Received:
  deferred     c.test down: deferred with the reason, delivered once c comes up
  bounce_5xx   unknown user at b.test: RFC 3464 DSN in alice's Maildir (Status 5.1.1 and
               b's reply as Diagnostic-Code), parsed with the email package
  null_mx      n.test has a null MX: bounced at once, never deferred
  transport    transport_map t.test -> smtp:[192.0.2.2]:2525 (t.test has no DNS at all)
  mx_pref      m.test's preferred MX is down: delivered through the second one
  alias_remote b.test virtual alias fwd@b.test -> carol@c.test arrives at c.test

Everything is bounded in time; the lab, dnsmasq and every Postern process are removed by PID
when the module's tests end (and at exit, even after a failure).
"""

import atexit
import email
import email.policy
import os
import pwd
import re
import smtplib
import socket
import subprocess
import time

import harness
import netns
from harness import IS_ROOT, POSTERN, Maildir, Skip, expect, log, make_message, unique_tag

TIMEOUT = {"test_multihost_lab": 60, "test_multihost_mx_relay": 120,
           "test_multihost_deferred": 150, "test_multihost_bounce_5xx": 120,
           "test_multihost_null_mx": 90, "test_multihost_transport": 90,
           "test_multihost_mx_pref": 120, "test_multihost_alias_remote": 120}

DELIVERY_WAIT = 45.0        # seconds for a relayed message to land

HOSTS = {"a": "192.0.2.1", "b": "192.0.2.2", "c": "192.0.2.3", "d": "192.0.2.4"}

DNS_RECORDS = [
    "--local=/test/",                           # everything else under .test: NXDOMAIN
    "--mx-host=a.test,mail.a.test,10", "--host-record=mail.a.test,192.0.2.1",
    "--mx-host=b.test,mail.b.test,10", "--host-record=mail.b.test,192.0.2.2",
    "--mx-host=c.test,mail.c.test,10", "--host-record=mail.c.test,192.0.2.3",
    "--mx-host=m.test,mx1.m.test,10", "--host-record=mx1.m.test,192.0.2.4",
    "--mx-host=m.test,mx2.m.test,20", "--host-record=mx2.m.test,192.0.2.2",
    "--dns-rr=n.test,15,000000",                # MX 0 "." : null MX
]


# --------------------------------------------------------------------------------------
# A Postern instance inside a namespace

class NsSMTP(harness.RawSMTP):
    """A RawSMTP whose socket is made inside a namespace."""

    def __init__(self, lab, nshost, addr, port, timeout=15.0):
        self.sock = lab.connect(nshost, addr, port, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.local_port = self.sock.getsockname()[1]


class NsSmtplib(smtplib.SMTP):
    """smtplib.SMTP connecting from inside a namespace."""

    def __init__(self, lab, nshost, addr, port, **kw):
        self._lab = lab
        self._nshost = nshost
        super().__init__(addr, port, **kw)

    def _get_socket(self, host, port, timeout):
        return self._lab.connect(self._nshost, host, port, timeout=timeout or 30)


class Node(harness.Instance):
    """A Postern instance for one host of the lab.

    users: mailbox addresses (each gets a Maildir); maps: {config key: (file, text)} extra
    maps built with `postern map build`; ports: smtp_listen ports on the host's address."""

    def __init__(self, lab, nshost, domains, users, maps=None, ports=(25,), conf=None):
        self.lab = lab
        self.nshost = nshost
        self.users = list(users)
        self.maps = dict(maps or {})
        c = {
            "smtp_listen": ", ".join("%s:%d" % (nshost.addr, p) for p in ports),
            "myhostname": "mail.%s" % domains[0],
            "local_domains": " ".join(domains),
            "dns_servers": netns.DNS_ADDR,
            "mynetworks": "127.0.0.0/8 %s/32" % nshost.addr,
            "queue_retry_min": "1s",
            "queue_retry_max": "2s",
            "queue_destination_pause": "1s",
            "smtp_connect_timeout": "5s",
            "smtp_reply_timeout": "30s",
            "smtp_connection_reuse_time": "2s",
        }
        for key, (fname, _) in self.maps.items():
            c[key] = fname
        c.update(conf or {})
        super().__init__("mh-" + nshost.name, conf=c)
        self.host = nshost.addr
        self.port = ports[0]
        self.started = False

    def _write_files(self):
        """_write_files - postern.conf, the mailbox map for self.users, the extra maps and
        the Maildirs (owned by the mailbox owner as root)."""
        with open(os.path.join(self.dir, "postern.conf"), "w") as f:
            f.write("# written by tests/integration/test_multihost.py\n")
            for k, v in self.conf.items():
                f.write("%s = %s\n" % (k, v))
        top = os.path.join(self.dir, "mail")
        self.maildirs = {u: Maildir(os.path.join(top, u.replace("@", "_at_")))
                         for u in self.users}
        with open(os.path.join(self.dir, "mailboxes"), "w") as f:
            for u in self.users:
                f.write("%s %s/\n" % (u, self.maildirs[u].path))
        for fname, text in self.maps.values():
            with open(os.path.join(self.dir, fname), "w") as f:
                f.write(text)
        owner = None
        if IS_ROOT:
            pw = pwd.getpwnam(self.conf["mailbox_owner"])
            owner = (pw.pw_uid, pw.pw_gid)
        os.makedirs(top, exist_ok=True)
        os.chmod(top, 0o755)
        for u in self.users:
            for sub in ("", "new", "cur", "tmp"):
                p = os.path.join(self.maildirs[u].path, sub)
                os.makedirs(p, mode=0o700, exist_ok=True)
                if owner:
                    os.chown(p, *owner)

    def start(self, foreground=True, timeout=30.0):
        """start - build the maps, run `postern start -f` inside the namespace, wait for
        the greeting on the host's address (from inside the namespace)."""
        if not os.path.exists(POSTERN):
            raise harness.HarnessError("%s is not built (run make)" % POSTERN)
        self.build_map()
        for fname, _ in self.maps.values():
            self.postern("map", "build", os.path.join(self.dir, fname), check=True)
        logf = open(self.logfile, "ab")
        logf.write(("--- start %s in %s\n" % (time.strftime("%H:%M:%S"),
                                              self.nshost.ns)).encode())
        logf.flush()
        # `ip netns exec` execs postern in place: self.proc.pid is postern's PID.
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.nshost.ns, POSTERN, "-c",
                                      self.dir, "start", "-f"], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf, start_new_session=True,
                                     close_fds=True)
        logf.close()
        self.wait_ready(timeout)
        self.started = True
        return self

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise harness.HarnessError("postern start -f exited with %s before it was "
                                           "ready\n%s" % (self.proc.returncode,
                                                          self.log_tail()))
            try:
                with self.smtp(timeout=2.0) as c:
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
            except (OSError, ConnectionError, AssertionError, TimeoutError) as e:
                last = str(e)
            time.sleep(0.1)
        raise harness.HarnessError("%s not ready within %.0fs (%s)\n%s"
                                   % (self.name, timeout, last, self.log_tail()))

    def smtp(self, timeout=15.0):
        return NsSMTP(self.lab, self.nshost, self.host, self.port, timeout=timeout)

    def smtplib(self, timeout=15.0):
        return NsSmtplib(self.lab, self.nshost, self.host, self.port,
                         local_hostname="client." + self.nshost.name, timeout=timeout)

    def submit(self, sender, rcpts, msg):
        """submit - one message from a local user through this host's own smtpd."""
        s = self.smtplib(timeout=30)
        try:
            refused = s.sendmail(sender, rcpts, msg)
            expect(not refused, "refused recipients: %r" % refused)
        finally:
            try:
                s.quit()
            except Exception:
                s.close()

    def log_lines(self, pattern):
        """log_lines - regex matches over the instance log."""
        return list(re.finditer(pattern, self.log_text()))


# --------------------------------------------------------------------------------------
# The lab, shared by the tests of this module

class World:
    def __init__(self):
        self.lab = netns.Lab()
        try:
            self.hosts = {n: self.lab.add_host(n, a) for n, a in HOSTS.items()}
            self.dns_log = os.path.join("/tmp", "%s-dnsmasq.log" % self.lab.tag)
            self.lab.start_dns(DNS_RECORDS, self.dns_log)
            harness.ensure_users()
            self.a = Node(self.lab, self.hosts["a"], ["a.test"],
                          ["alice@a.test", "bob@a.test"],
                          maps={"transport_map": ("transport",
                                                  "t.test smtp:[192.0.2.2]:2525\n")})
            self.b = Node(self.lab, self.hosts["b"], ["b.test", "t.test", "m.test"],
                          ["bob@b.test", "tina@t.test", "mia@m.test"],
                          maps={"virtual_alias_map": ("virtual", "fwd@b.test carol@c.test\n")},
                          ports=(25, 2525))
            self.c = Node(self.lab, self.hosts["c"], ["c.test"], ["carol@c.test"])
            self.nodes = [self.a, self.b, self.c]
        except BaseException:
            self.cleanup()
            raise

    def up(self, *nodes):
        for n in nodes:
            if not n.started or not n.alive():
                n.start()

    def cleanup(self):
        for n in getattr(self, "nodes", []):
            try:
                n.cleanup(keep=bool(os.environ.get("POSTERN_TEST_KEEP")))
            except Exception as e:
                log("cleanup of %s failed: %s" % (n.name, e))
        self.lab.cleanup()
        try:
            os.unlink(self.dns_log)
        except (OSError, AttributeError):
            pass


_world = None
_world_error = None


def world():
    """world - the module's lab (built on first use); Skip with the reason when it cannot
    be built here, a remembered error when it failed before."""
    global _world, _world_error
    if _world is not None:
        return _world
    if _world_error is not None:
        raise AssertionError("lab could not be built earlier: %s" % _world_error)
    why = netns.availability()
    if why is not None:
        raise Skip(why)
    try:
        _world = World()
    except Exception as e:
        _world_error = str(e).splitlines()[0] if str(e) else repr(e)
        raise
    atexit.register(_teardown)
    return _world


def _teardown():
    global _world
    if _world is not None:
        _world.cleanup()
        _world = None


# --------------------------------------------------------------------------------------
# Helpers

def _dsns(md, timeout, want=1, rcpt=None):
    """_dsns - wait for `want` delivery reports (From MAILER-DAEMON, optionally naming rcpt)
    in a Maildir; [(parsed message, raw bytes)]."""
    deadline = time.monotonic() + timeout
    while True:
        out = []
        for _, _, data in md.scan():
            m = email.message_from_bytes(data, policy=email.policy.compat32)
            if "MAILER-DAEMON" not in (m.get("From") or ""):
                continue
            if rcpt is not None and rcpt.encode() not in data:
                continue
            out.append((m, data))
        if len(out) >= want or time.monotonic() > deadline:
            return out
        time.sleep(0.25)


def _report(m):
    """_report - (text part, per-message block, [per-recipient blocks]) of an RFC 3464
    multipart/report; asserts its structure."""
    expect(m.get_content_type() == "multipart/report", "DSN is %s" % m.get_content_type())
    expect(m.get_param("report-type") == "delivery-status", "report-type %r"
           % m.get_param("report-type"))
    parts = m.get_payload()
    expect(len(parts) >= 2, "DSN has %d parts" % len(parts))
    expect(parts[0].get_content_type() == "text/plain", "part 1 is %s"
           % parts[0].get_content_type())
    expect(parts[1].get_content_type() == "message/delivery-status", "part 2 is %s"
           % parts[1].get_content_type())
    blocks = parts[1].get_payload()
    expect(len(blocks) >= 2, "delivery-status has %d blocks" % len(blocks))
    return parts[0], blocks[0], blocks[1:]


def _wait_delivered(node, user, tag, timeout=DELIVERY_WAIT, sender_node=None):
    """_wait_delivered - the message carrying tag in node's Maildir of user (bytes); fails
    with both logs' tails."""
    md = node.maildirs[user]
    md.wait_for([tag], timeout=timeout)
    got = md.by_tag(tag)
    if not got:
        tails = "\n".join("%s:\n%s" % (n.name, n.log_tail(25))
                          for n in ([sender_node] if sender_node else []) + [node])
        raise AssertionError("message %s did not reach %s at %s within %.0fs\n%s"
                             % (tag, user, node.name, timeout, tails))
    return got[0]


def _received(data):
    """_received - the Received: fields of a delivered message, unfolded, top first."""
    head = data.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    head = re.sub(r"\n[ \t]+", " ", head)
    return [l[len("Received:"):].strip() for l in head.split("\n")
            if l.lower().startswith("received:")]


# --------------------------------------------------------------------------------------
# Tests

def test_multihost_lab():
    """The namespaces and dnsmasq: every host resolves the lab's names through 192.0.2.53,
    null MX and NXDOMAIN come back as configured, hosts reach each other, nothing else."""
    w = world()
    lab, a = w.lab, w.hosts["a"]
    rc, ans = lab.dns_query(a, "b.test", "MX")
    expect(rc == 0 and ans == [("MX", (10, "mail.b.test"))], "b.test MX: %r %r" % (rc, ans))
    rc, ans = lab.dns_query(w.hosts["c"], "mail.a.test", "A")
    expect(rc == 0 and ans == [("A", "192.0.2.1")], "mail.a.test A: %r %r" % (rc, ans))
    rc, ans = lab.dns_query(a, "m.test", "MX")
    expect(sorted(v for _, v in ans) == [(10, "mx1.m.test"), (20, "mx2.m.test")],
           "m.test MX: %r" % ans)
    rc, ans = lab.dns_query(a, "n.test", "MX")
    expect(rc == 0 and ans == [("MX", (0, ""))], "n.test null MX: %r %r" % (rc, ans))
    rc, ans = lab.dns_query(a, "t.test", "MX")
    expect(rc == 3 and ans == [], "t.test: want NXDOMAIN, got %r %r" % (rc, ans))
    rc, ans = lab.dns_query(a, "example.com", "A")
    expect(ans == [], "a name outside the lab answered: %r %r" % (rc, ans))
    # Reachability: a TCP SYN from a to d's port 25 is refused at once (d listens nowhere).
    t0 = time.monotonic()
    try:
        lab.connect(a, HOSTS["d"], 25, timeout=5).close()
        raise AssertionError("something listens on d:25")
    except ConnectionRefusedError:
        pass
    expect(time.monotonic() - t0 < 3, "connection to d took %.1fs" % (time.monotonic() - t0))
    # No route out of the lab.
    routes = lab.run(a, ["ip", "route", "show"]).stdout
    expect("default" not in routes, "host a has a default route: %r" % routes)
    log("lab: %d namespaces, dnsmasq answers MX/A/null MX/NXDOMAIN"
        % (len(lab.namespaces)))


def test_multihost_mx_relay():
    """alice@a.test -> bob@b.test: a's smtp agent finds mail.b.test by MX and relays; the
    message lands in b's Maildir with b's Received: (from mail.a.test [192.0.2.1]) above
    a's own."""
    w = world()
    w.up(w.a, w.b)
    tag = unique_tag("mx")
    w.a.submit("alice@a.test", ["bob@b.test"],
               make_message(tag, to="bob@b.test", sender="alice@a.test"))
    data = _wait_delivered(w.b, "bob@b.test", tag, sender_node=w.a)
    rcv = _received(data)
    expect(len(rcv) >= 2, "want 2 Received: fields, got %r" % rcv)
    expect("[192.0.2.1]" in rcv[0] and "by mail.b.test" in rcv[0],
           "top Received: is not b's from a: %r" % rcv[0])
    expect("from mail.a.test" in rcv[0], "a's smtp agent did not EHLO as mail.a.test: %r"
           % rcv[0])
    expect("by mail.a.test" in rcv[1], "second Received: is not a's: %r" % rcv[1])
    rp = harness.header_value(data, "Return-Path")
    expect(rp == "<alice@a.test>", "Return-Path %r" % rp)
    sent = w.a.log_lines(r"to=<bob@b\.test>.*status=sent")
    expect(sent, "a logged no status=sent for bob@b.test")
    log("relayed by MX: %s" % sent[-1].group(0)[:160])


def test_multihost_deferred():
    """carol@c.test while c.test's server is down: the recipient is deferred with the
    connection error as the reason; once c starts, a retry delivers it."""
    w = world()
    w.up(w.a)
    expect(not w.c.started, "c must still be down for this test")
    tag = unique_tag("defer")
    w.a.submit("alice@a.test", ["carol@c.test"],
               make_message(tag, to="carol@c.test", sender="alice@a.test"))
    deadline = time.monotonic() + 30
    deferred = []
    while time.monotonic() < deadline:
        deferred = w.a.log_lines(r"to=<carol@c\.test>[^\n]*status=deferred \(([^\n]*)\)")
        if deferred:
            break
        time.sleep(0.2)
    expect(deferred, "no deferral logged for carol@c.test within 30s\n%s" % w.a.log_tail(25))
    reason = deferred[0].group(1)
    log("deferred: %s" % reason[:160])
    expect(re.search(r"192\.0\.2\.3|mail\.c\.test|refused|connect", reason, re.I),
           "deferral reason does not name the connection failure: %r" % reason)
    expect(not w.c.maildirs["carol@c.test"].by_tag(tag), "delivered while c was down?")
    w.up(w.c)
    _wait_delivered(w.c, "carol@c.test", tag, timeout=60, sender_node=w.a)
    log("delivered to c.test after %d deferral(s)" % len(
        w.a.log_lines(r"to=<carol@c\.test>[^\n]*status=deferred")))


def test_multihost_bounce_5xx():
    """nobody@b.test does not exist: b answers 550 5.1.1 at RCPT, a's qmgr returns an
    RFC 3464 report to alice@a.test with Status 5.1.1 and b's reply as Diagnostic-Code."""
    w = world()
    w.up(w.a, w.b)
    tag = unique_tag("unknown")
    w.a.submit("alice@a.test", ["nobody@b.test"],
               make_message(tag, to="nobody@b.test", sender="alice@a.test"))
    got = _dsns(w.a.maildirs["alice@a.test"], DELIVERY_WAIT, rcpt="nobody@b.test")
    expect(got, "no DSN for nobody@b.test in alice's Maildir\n%s" % w.a.log_tail(25))
    m, raw = got[0]
    text, per_msg, rcpts = _report(m)
    expect(per_msg["Reporting-MTA"] == "dns; mail.a.test", "Reporting-MTA %r"
           % per_msg["Reporting-MTA"])
    r = [b for b in rcpts if "nobody@b.test" in (b["Final-Recipient"] or "")]
    expect(len(r) == 1, "no recipient block for nobody@b.test: %r"
           % [b.items() for b in rcpts])
    r = r[0]
    expect(r["Action"] == "failed", "Action %r" % r["Action"])
    expect(r["Status"] == "5.1.1", "Status %r" % r["Status"])
    diag = r["Diagnostic-Code"] or ""
    expect(diag.lower().startswith("smtp;"), "Diagnostic-Code type: %r" % diag)
    expect("550" in diag and "5.1.1" in diag, "Diagnostic-Code lacks b's reply: %r" % diag)
    expect("User unknown" in diag or "unknown" in diag.lower(),
           "Diagnostic-Code lacks b's text: %r" % diag)
    expect(tag.encode() in raw, "DSN does not carry the original's headers")
    log("DSN: Status %s, Diagnostic-Code %s" % (r["Status"], diag[:120]))


def test_multihost_null_mx():
    """x@n.test, whose domain publishes a null MX: bounced without a delivery attempt or
    a deferral (RFC 7505)."""
    w = world()
    w.up(w.a)
    tag = unique_tag("nullmx")
    t0 = time.monotonic()
    w.a.submit("alice@a.test", ["x@n.test"], make_message(tag, to="x@n.test",
                                                          sender="alice@a.test"))
    got = _dsns(w.a.maildirs["alice@a.test"], 30, rcpt="x@n.test")
    expect(got, "no DSN for x@n.test within 30s\n%s" % w.a.log_tail(25))
    took = time.monotonic() - t0
    m, _ = got[0]
    _, _, rcpts = _report(m)
    r = [b for b in rcpts if "x@n.test" in (b["Final-Recipient"] or "")]
    expect(r and r[0]["Status"].startswith("5."), "Status %r" % (r and r[0]["Status"]))
    expect(not w.a.log_lines(r"to=<x@n\.test>[^\n]*status=deferred"),
           "null MX recipient was deferred first")
    log("null MX bounced in %.1fs: Status %s, %s" % (took, r[0]["Status"],
                                                    (r[0]["Diagnostic-Code"] or "")[:100]))


def test_multihost_transport():
    """transport_map on a: t.test -> smtp:[192.0.2.2]:2525. t.test has no DNS records at
    all, so only the map can route it; b accepts it on port 2525."""
    w = world()
    w.up(w.a, w.b)
    tag = unique_tag("transport")
    w.a.submit("alice@a.test", ["tina@t.test"],
               make_message(tag, to="tina@t.test", sender="alice@a.test"))
    data = _wait_delivered(w.b, "tina@t.test", tag, sender_node=w.a)
    rcv = _received(data)
    expect(rcv and "[192.0.2.1]" in rcv[0], "top Received: %r" % rcv[:1])
    sent = w.a.log_lines(r"to=<tina@t\.test>[^\n]*status=sent")
    expect(sent, "a logged no status=sent for tina@t.test")
    log("transport_map: %s" % sent[-1].group(0)[:160])


def test_multihost_mx_pref():
    """m.test: MX 10 on d (nothing listens), MX 20 on b. The agent tries the preferred
    one, fails to connect, and delivers through the second without a bounce."""
    w = world()
    w.up(w.a, w.b)
    tag = unique_tag("mxpref")
    w.a.submit("alice@a.test", ["mia@m.test"],
               make_message(tag, to="mia@m.test", sender="alice@a.test"))
    _wait_delivered(w.b, "mia@m.test", tag, sender_node=w.a)
    expect(not _dsns(w.a.maildirs["alice@a.test"], 0, rcpt="mia@m.test"),
           "a DSN for mia@m.test")
    sent = w.a.log_lines(r"to=<mia@m\.test>[^\n]*status=sent")
    expect(sent and "relay=mx2.m.test[192.0.2.2]" in sent[-1].group(0),
           "not sent through mx2.m.test: %r" % [m.group(0) for m in sent])
    log("m.test delivered through its MX 20: %s" % sent[-1].group(0)[:160])


def test_multihost_alias_remote():
    """b.test's virtual alias fwd@b.test -> carol@c.test: the message goes a -> b -> c.
    Needs smtpd to resolve aliases at RCPT time (libcommon/resolve)."""
    w = world()
    w.up(w.a, w.b, w.c)
    tag = unique_tag("alias")
    w.a.submit("alice@a.test", ["fwd@b.test"],
               make_message(tag, to="fwd@b.test", sender="alice@a.test"))
    deadline = time.monotonic() + DELIVERY_WAIT
    while not w.c.maildirs["carol@c.test"].by_tag(tag) and time.monotonic() < deadline:
        dsn = _dsns(w.a.maildirs["alice@a.test"], 0, rcpt="fwd@b.test")
        if dsn:
            _, _, rcpts = _report(dsn[0][0])
            raise AssertionError("b refused fwd@b.test instead of expanding the alias "
                                 "(smtpd without libcommon/resolve?): %s"
                                 % [r["Diagnostic-Code"] for r in rcpts])
        time.sleep(0.25)
    data = _wait_delivered(w.c, "carol@c.test", tag, timeout=0.5, sender_node=w.b)
    rcv = _received(data)
    expect(len(rcv) >= 3, "want Received: from b, a and the submission; got %r" % rcv)
    expect("by mail.c.test" in rcv[0] and "[192.0.2.2]" in rcv[0], "top Received: %r"
           % rcv[0])
    log("alias on b.test forwarded to c.test (%d Received: fields)" % len(rcv))
