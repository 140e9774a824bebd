"""test_milter - smtpd_milters with real milters on loopback.

- OpenDKIM (run in the foreground with its own config and key in the instance directory,
  never its system service) signs mail from 127.0.0.1 (its InternalHosts) for dkim.test:
  the delivered Maildir copy carries a DKIM-Signature with d=dkim.test that dkimpy
  (python3-dkim, with the public key opendkim-genkey wrote) verifies, and that no longer
  verifies once a body octet is changed.
- a scripted pymilter (milter_scripted.py, run by /usr/bin/python3; it records what it is
  told): a 550 at RCPT with its text and nothing queued; a tempfail at RCPT for one
  recipient only (4xx for it, the other delivered); a tempfail at end of message (451, not
  queued); at end of message an added header, a changed Subject, an added recipient and a
  changed sender, all seen in the delivered copies; a replaced body under the original
  headers; a quarantine that leaves the message on hold; the ESMTP parameters of MAIL and
  RCPT as given, and the connect, MAIL, RCPT macros, i at DATA and end of message, and
  {auth_authen}/{auth_type} for an authenticated submission; two milters in a row, the
  second seeing the first one's header and body; a milter on a UNIX socket inside smtpd's
  chroot.
- failures: no milter listening with milter_default_action = accept (mail accepted) and
  = tempfail (451); a milter that stalls past milter_command_timeout gets the default
  action (accept) and the session goes on; a milter that dies at end of message with
  accept (delivered), tempfail (451) and reject (550).
Every wait is bounded; the whole file runs in about 80 s.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import time

from harness import (IS_ROOT, Instance, Skip, expect, free_port, header_value, make_message,
                     show_log, unique_tag)

SYSTEM_PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = {}


def _wait_port(where, proc, timeout=10.0):
    """_wait_port - until something listens on 127.0.0.1:where (a port) or on the UNIX
    socket where (a path); bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("milter exited with %s" % proc.returncode)
        try:
            if isinstance(where, int):
                socket.create_connection(("127.0.0.1", where), timeout=1).close()
            else:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(where)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("milter on %s did not start" % where)


def _stop(proc):
    """_stop - end a milter we started, by its PID."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class _Setup:
    """with _Setup(name, conf, milter=...) as (inst, proc): an instance whose smtpd_milters
    is what is started here: "scripted" (milter_scripted.py on a TCP port), "unix" (the
    same on a UNIX socket inside smtpd's chroot), "chain" (two of them in a row, "one" then
    "two"), "opendkim", or None (a port nobody listens on). What the scripted milters were
    told is in the JSON lines of self.record (see records())."""

    def __init__(self, name, conf=None, milter="scripted", tls=False, auth_users=None):
        self.name, self.conf, self.milter = name, dict(conf or {}), milter
        self.tls, self.auth_users = tls, auth_users
        self.inst = self.proc = None
        self.procs = []

    def _scripted(self, where, name="one"):
        with open(os.path.join(self.inst.dir, "milter-%s.log" % name), "ab") as errlog:
            proc = subprocess.Popen([SYSTEM_PYTHON, os.path.join(HERE, "milter_scripted.py"),
                                     str(where), self.record, name], stdout=errlog,
                                    stderr=errlog)
        self.procs.append(proc)
        return proc

    def __enter__(self):
        self.inst = Instance(self.name, {}, tls=self.tls, auth_users=self.auth_users)
        self.record = os.path.join(self.inst.dir, "milter-record.jsonl")
        port = free_port()
        spec = "inet:127.0.0.1:%d" % port
        if self.milter == "scripted":
            self.proc = self._scripted(port)
            _wait_port(port, self.proc)
        elif self.milter == "chain":
            port2 = free_port()
            self.proc = self._scripted(port, "one")
            _wait_port(port, self.proc)
            _wait_port(port2, self._scripted(port2, "two"))
            spec += ", inet:127.0.0.1:%d" % port2
        elif self.milter == "unix":
            # smtpd opens the path from inside its chroot, as Postfix does
            chroot = os.path.join(self.inst.dir, "chroot")
            os.makedirs(chroot, mode=0o755)
            os.chmod(chroot, 0o755)
            sock = os.path.join(chroot, "scripted.sock")
            self.proc = self._scripted(sock)
            _wait_port(sock, self.proc)
            spec = "unix:/scripted.sock"
            self.inst.conf["smtpd_chroot"] = chroot
        elif self.milter == "opendkim":
            self.proc = _start_opendkim(self.inst.dir, port)
            self.procs.append(self.proc)
        self.inst.conf.update({"smtpd_milters": spec,
                               "smtpd_greet_pause": "0", "smtpd_peername_lookup": "no"})
        self.inst.conf.update(self.conf)
        self.inst._write_files()
        self.inst.start()
        return self.inst, self.proc

    def records(self, event=None, milter=None):
        """records - what the scripted milters recorded (of that event and milter)."""
        try:
            with open(self.record) as f:
                out = [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []
        return [r for r in out if (event is None or r["event"] == event)
                and (milter is None or r["milter"] == milter)]

    def __exit__(self, etype, evalue, tb):
        if etype is not None:
            show_log(self.inst)
        for p in self.procs:
            _stop(p)
        self.inst.cleanup()
        return False


def _start_opendkim(directory, port):
    """_start_opendkim - OpenDKIM in the foreground, signing dkim.test with a fresh key."""
    kdir = os.path.join(directory, "dkim")
    os.makedirs(kdir)
    subprocess.run(["opendkim-genkey", "-D", kdir, "-d", "dkim.test", "-s", "test", "-b", "1024"],
                   check=True, timeout=30)
    conf = os.path.join(kdir, "opendkim.conf")
    with open(conf, "w") as f:
        f.write("Syslog no\nMode sv\nDomain dkim.test\nSelector test\n"
                "KeyFile %s/test.private\nSocket inet:%d@127.0.0.1\n"
                "Canonicalization relaxed/simple\nInternalHosts 127.0.0.1\n"
                "RequireSafeKeys no\nBackground no\nUMask 007\n" % (kdir, port))
    proc = subprocess.Popen(["opendkim", "-f", "-x", conf, "-P", os.path.join(kdir, "pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, proc)
    return proc


def _smtp_send(inst, msg, sender="sender@example.org", rcpts=("alice@local.test",),
               mail_opts=(), rcpt_opts=(), smtp=None):
    """_smtp_send - one transaction over smtplib (smtp: a connection ready for MAIL, else
    a new one to port 25); (code of the end of data or of the first refusal, the command
    that got it, [(command, code, text)] of every reply). A refused recipient does not end
    the transaction while another one is accepted."""
    import smtplib
    s = smtp if smtp is not None else inst.smtplib(timeout=30)
    got = []
    try:
        if smtp is None:
            code, text = s.ehlo()
            got.append(("EHLO", code, text))
            if code != 250:
                return code, "EHLO", got
        code, text = s.mail(sender, list(mail_opts))
        got.append(("MAIL", code, text))
        if code != 250:
            return code, "MAIL", got
        for r in rcpts:
            code, text = s.rcpt(r, list(rcpt_opts))
            got.append(("RCPT", code, text))
        if not any(c == 250 for cmd, c, _ in got if cmd == "RCPT"):
            return next(c for cmd, c, _ in got if cmd == "RCPT"), "RCPT", got
        try:
            code, text = s.data(msg)
        except smtplib.SMTPDataError as e:      # refused at the DATA command itself
            code, text = e.smtp_code, e.smtp_error
        got.append(("DATA", code, text))
        return code, "DATA", got
    finally:
        try:
            s.quit()
        except Exception:
            s.close()


def _qid(got):
    """_qid - the queue ID of `250 2.0.0 Ok: queued as ID` among the replies."""
    for cmd, code, text in got:
        m = re.search(rb"queued as ([0-9A-Za-z]+)", text)
        if cmd == "DATA" and m:
            return m.group(1).decode()
    return None


def _body(data):
    """_body - the body of a delivered message, CRLF line ends."""
    data = data.replace(b"\r\n", b"\n")
    return data.split(b"\n\n", 1)[1].replace(b"\n", b"\r\n") if b"\n\n" in data else b""


def _queue_count(inst):
    r = inst.postern("queue", "list", "--json")
    return len([l for l in r.stdout.splitlines() if l.startswith("{")])


def test_milter_opendkim_signs():
    if shutil.which("opendkim") is None:
        raise AssertionError("opendkim is not installed (tools/install-deps)")
    with _Setup("milter-dkim", milter="opendkim") as (inst, _):
        tag = unique_tag("dkim")
        msg = make_message(tag, sender="alice@dkim.test")
        code, where, _ = _smtp_send(inst, msg, sender="alice@dkim.test")
        expect(code == 250, "send: %d at %s" % (code, where))
        got = inst.maildirs["alice"].one(tag, timeout=20)
        sig = header_value(got, "DKIM-Signature")
        expect(sig is not None, "no DKIM-Signature in %r" % got[:600])
        expect("d=dkim.test" in sig and "s=test" in sig and "b=" in sig, "signature: %s" % sig)
        # the signature itself, checked with the public key opendkim-genkey wrote
        with open(os.path.join(inst.dir, "dkim", "test.txt")) as f:
            pub = "".join(re.findall(r'"([^"]*)"', f.read()))
        expect("p=" in pub, "no public key in test.txt: %r" % pub)
        crlf = got.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        ok, why = _dkim_verify(inst.dir, crlf, pub)
        expect(ok, "DKIM signature does not verify: %s" % why)
        ok, why = _dkim_verify(inst.dir, crlf.replace(b"this is message", b"this is massage"),
                               pub)
        expect(not ok, "a changed body still verifies: %s" % why)


# Run by the system Python, which has python3-dkim (tools/install-deps); the key comes from
# the test, never from DNS.
_DKIM_VERIFY = """
import sys, dkim
pub = sys.argv[2].encode()
def dns(name, timeout=5):
    return pub if name == b"test._domainkey.dkim.test." else None
msg = open(sys.argv[1], "rb").read()
sys.exit(0 if dkim.verify(msg, dnsfunc=dns) else 1)
"""


def _dkim_verify(directory, msg, pub):
    """_dkim_verify - (verified, output) of dkimpy's verify of msg with that public key."""
    path = os.path.join(directory, "dkim", "verify.eml")
    with open(path, "wb") as f:
        f.write(msg)
    r = subprocess.run([SYSTEM_PYTHON, "-c", _DKIM_VERIFY, path, pub], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30, text=True, errors="replace")
    expect("No module named 'dkim'" not in r.stdout,
           "python3-dkim is not installed (tools/install-deps)")
    return r.returncode == 0, r.stdout[-400:]


def test_milter_scripted_reject_tempfail_modify():
    with _Setup("milter-script") as (inst, _):
        before = _queue_count(inst)
        code, where, _ = _smtp_send(inst, make_message(unique_tag("rej")),
                                 sender="reject-rcpt@example.org")
        expect(code == 550 and where == "RCPT", "reject at RCPT: %d at %s" % (code, where))
        expect("Recipient refused by the test milter" in inst.log_text(), "milter text")
        code, where, _ = _smtp_send(inst, make_message(unique_tag("rejd")),
                                    sender="reject-data@example.org")
        expect(code == 550 and where == "DATA", "reject at DATA: %d at %s" % (code, where))
        tag = unique_tag("tmp")
        code, where, _ = _smtp_send(inst, make_message(tag, body_lines=["MILTER-TEMPFAIL"]))
        expect(code == 451 and where == "DATA", "tempfail at EOM: %d at %s" % (code, where))
        expect(_queue_count(inst) == before, "a refused message was queued")
        tag = unique_tag("mod")
        code, where, _ = _smtp_send(inst, make_message(tag, body_lines=["MILTER-MODIFY", "x"]))
        expect(code == 250, "modify: %d at %s" % (code, where))
        got = inst.maildirs["alice"].one(tag, timeout=20)
        expect(header_value(got, "X-Milter-Test") == "added", "no added header: %r" % got[:800])
        expect(header_value(got, "Subject") == "changed by milter", "subject: %r" % got[:800])
        seen = header_value(got, "X-Milter-Seen") or ""
        expect(seen.startswith("headers=") and not seen.startswith("headers=0"), seen)
        expect(header_value(got, "Return-Path") == "<changed@example.org>",
               "sender not changed: %r" % header_value(got, "Return-Path"))
        bob = inst.maildirs["bob"].one(tag, timeout=20)
        expect(header_value(bob, "X-Milter-Test") == "added", "bob's copy: %r" % bob[:400])
        expect(b"MILTER-MODIFY\r\nx" in bob.replace(b"\n", b"\r\n").replace(b"\r\r", b"\r"),
               "body changed: %r" % bob[-200:])


def test_milter_down_default_accept():
    with _Setup("milter-down-acc", {"milter_default_action": "accept"}, milter=None) as (inst, _):
        tag = unique_tag("acc")
        code, where, _ = _smtp_send(inst, make_message(tag))
        expect(code == 250, "milter down, accept: %d at %s" % (code, where))
        inst.maildirs["alice"].one(tag, timeout=20)


def test_milter_down_default_tempfail():
    with _Setup("milter-down-tf", milter=None) as (inst, _):
        code, where, _ = _smtp_send(inst, make_message(unique_tag("tf")))
        expect(code == 451 and where == "MAIL", "milter down, tempfail: %d at %s" % (code, where))


def test_milter_stall_times_out_to_default():
    conf = {"milter_default_action": "accept", "milter_command_timeout": "2s"}
    with _Setup("milter-stall", conf) as (inst, _):
        tag = unique_tag("stall")
        t0 = time.monotonic()
        code, where, _ = _smtp_send(inst, make_message(tag), sender="stall@example.org")
        took = time.monotonic() - t0
        expect(code == 250 and where == "DATA", "stall: %d at %s" % (code, where))
        expect(took < 7, "the stall was not cut at milter_command_timeout: %.1fs" % took)
        expect("timeout waiting for a reply" in inst.log_text(), "no timeout logged")
        inst.maildirs["alice"].one(tag, timeout=20)


def test_milter_esmtp_args_and_macros():
    """MAIL and RCPT reach the milter with their ESMTP parameters as given, one string each;
    the connect, MAIL and RCPT macros are there, and i (the queue ID) from DATA on."""
    setup = _Setup("milter-args")
    with setup as (inst, _):
        tag = unique_tag("args")
        mail_opts = ("SIZE=1000", "BODY=8BITMIME", "RET=HDRS", "ENVID=env+2Did", "SMTPUTF8")
        rcpt_opts = ("NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;alice@local.test")
        code, where, got = _smtp_send(inst, make_message(tag), mail_opts=mail_opts,
                                      rcpt_opts=rcpt_opts)
        expect(code == 250, "send: %d at %s" % (code, where))
        qid = _qid(got)
        mail, rcpt = setup.records("mail"), setup.records("rcpt")
        expect(len(mail) == 1 and mail[0]["params"] == list(mail_opts), "MAIL: %r" % mail)
        expect(len(rcpt) == 1 and rcpt[0]["params"] == list(rcpt_opts), "RCPT: %r" % rcpt)
        conn = setup.records("connect")
        mac = conn[0]["macros"] if conn else {}
        expect(mac.get("j") == "mx.local.test" and mac.get("{daemon_addr}") == "127.0.0.1"
               and mac.get("{client_addr}") == "127.0.0.1" and mac.get("v")
               and mac.get("_") and mac.get("{client_port}"), "connect macros: %r" % conn)
        mac = mail[0]["macros"]
        expect(mac == {"{mail_addr}": "sender@example.org", "{mail_host}": "example.org",
                       "{mail_mailer}": "smtp", "{auth_authen}": None, "{auth_type}": None},
               "MAIL macros: %r" % mac)
        mac = rcpt[0]["macros"]
        expect(mac == {"{rcpt_addr}": "alice@local.test", "{rcpt_host}": "local.test",
                       "{rcpt_mailer}": "local"}, "RCPT macros: %r" % mac)
        data, eom = setup.records("data"), setup.records("eom")
        expect(qid and data and data[0]["macros"]["i"] == qid, "i at DATA: %r, %s" % (data, qid))
        expect(eom and eom[0]["macros"]["i"] == qid, "i at EOM: %r" % eom)
        inst.maildirs["alice"].one(tag, timeout=20)


def test_milter_auth_macros_on_submission():
    """An authenticated submission: the milter sees {auth_authen} and {auth_type} at MAIL and
    i at end of message."""
    import smtplib
    import ssl
    user, pw = "demo@local.test", "milter pw %d" % os.getpid()
    setup = _Setup("milter-auth", tls=True, auth_users={user: pw})
    with setup as (inst, _):
        tag = unique_tag("auth")
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        s = smtplib.SMTP(inst.host, inst.submission_port, local_hostname="client.test",
                         timeout=30)
        s.ehlo()
        s.starttls(context=ctx)
        s.ehlo()
        s.login(user, pw)
        code, where, got = _smtp_send(inst, make_message(tag, sender=user), sender=user, smtp=s)
        expect(code == 250, "submission: %d at %s" % (code, where))
        mail, eom = setup.records("mail"), setup.records("eom")
        expect(mail and mail[0]["macros"]["{auth_authen}"] == user
               and mail[0]["macros"]["{auth_type}"] in ("PLAIN", "LOGIN"), "MAIL: %r" % mail)
        expect(eom and eom[0]["macros"]["i"] == _qid(got)
               and eom[0]["macros"]["{auth_authen}"] == user, "EOM: %r" % eom)
        inst.maildirs["alice"].one(tag, timeout=20)


def test_milter_replaces_body():
    """SMFIR_REPLBODY: the delivered copy has the milter's body under the original headers."""
    with _Setup("milter-repl") as (inst, _):
        tag = unique_tag("repl")
        code, where, _ = _smtp_send(inst, make_message(tag, body_lines=["MILTER-REPLBODY", "old"]))
        expect(code == 250, "replace body: %d at %s" % (code, where))
        got = inst.maildirs["alice"].one(tag, timeout=20)
        expect(_body(got) == b"Replaced by the milter.\r\nSecond line.\r\n",
               "body: %r" % got[-300:])
        expect(header_value(got, "Subject") == "test " + tag
               and header_value(got, "Message-ID") == "<%s@test.example>" % tag
               and header_value(got, "X-Milter-Seen") is not None, "headers: %r" % got[:900])


def test_milter_chain_sees_changes():
    """Two milters in a row: the second one's header and body callbacks see the header the
    first one added and the body it replaced, and both milters' changes are delivered."""
    setup = _Setup("milter-chain", milter="chain")
    with setup as (inst, _):
        tag = unique_tag("chain")
        code, where, _ = _smtp_send(inst, make_message(tag, body_lines=["MILTER-CHAIN"]))
        expect(code == 250, "chain: %d at %s" % (code, where))
        got = inst.maildirs["alice"].one(tag, timeout=20)
        expect(header_value(got, "X-Chain-One") == "1", "no X-Chain-One: %r" % got[:900])
        expect(header_value(got, "X-Chain-Two") == "saw-one=yes body-from-one=yes",
               "second milter: %r" % header_value(got, "X-Chain-Two"))
        expect(_body(got) == b"chain body from one\r\n", "body: %r" % got[-200:])
        two = setup.records("eom", milter="two")
        expect(two and ["X-Chain-One", "1"] in two[0]["headers"], "two saw: %r" % two)


def test_milter_quarantine_holds():
    """SMFIR_QUARANTINE: 250, and the message waits on hold (`postern queue list --state
    hold`), not delivered."""
    with _Setup("milter-hold") as (inst, _):
        tag = unique_tag("hold")
        code, where, got = _smtp_send(inst, make_message(tag, body_lines=["MILTER-QUARANTINE"]))
        expect(code == 250, "quarantine: %d at %s" % (code, where))
        qid = _qid(got)
        r = inst.postern("queue", "list", "--json", "--state", "hold")
        held = [json.loads(l)["queue_id"] for l in r.stdout.splitlines() if l.startswith("{")]
        expect(held == [qid], "on hold: want [%s], got %r (%s)" % (qid, held, r.stdout))
        time.sleep(1.5)
        expect(inst.maildirs["alice"].by_tag(tag) == [], "a quarantined message was delivered")


def test_milter_tempfail_one_recipient():
    """A tempfail at RCPT refuses that recipient only (4xx); the others are delivered."""
    with _Setup("milter-rcpt-tf") as (inst, _):
        tag = unique_tag("rtf")
        code, where, got = _smtp_send(inst, make_message(tag), sender="tempfail-rcpt@example.org",
                                      rcpts=("alice@local.test", "bob@local.test"))
        rcpt = [c for cmd, c, _ in got if cmd == "RCPT"]
        expect(rcpt[0] == 250 and 400 <= rcpt[1] < 500, "RCPT replies: %r" % got)
        expect(code == 250 and where == "DATA", "DATA: %d at %s" % (code, where))
        inst.maildirs["alice"].one(tag, timeout=20)
        time.sleep(1)
        expect(inst.maildirs["bob"].by_tag(tag) == [], "the tempfailed recipient got it")


def test_milter_dies_default_action():
    """A milter that dies at end of message gets milter_default_action: accept delivers,
    tempfail answers 451 and reject 550, and neither of those queues it."""
    for action, want in (("accept", 250), ("tempfail", 451), ("reject", 550)):
        with _Setup("milter-die-" + action, {"milter_default_action": action}) as (inst, _):
            tag = unique_tag("die")
            code, where, _ = _smtp_send(inst, make_message(tag, body_lines=["MILTER-DIE"]))
            expect(code == want and where == "DATA",
                   "%s: want %d at DATA, got %d at %s" % (action, want, code, where))
            expect("milter inet:" in inst.log_text(), "the milter's failure is not logged")
            if action == "accept":
                inst.maildirs["alice"].one(tag, timeout=20)
            else:
                expect(_queue_count(inst) == 0, "%s: a refused message was queued" % action)


def test_milter_unix_socket_in_chroot():
    """unix:/path is opened inside smtpd's chroot (smtpd_chroot), as with Postfix."""
    if not IS_ROOT:
        raise Skip("smtpd chroots only when started as root")
    with _Setup("milter-unix", milter="unix") as (inst, _):
        tag = unique_tag("unix")
        code, where, _ = _smtp_send(inst, make_message(tag))
        expect(code == 250, "unix milter: %d at %s" % (code, where))
        got = inst.maildirs["alice"].one(tag, timeout=20)
        expect(header_value(got, "X-Milter-Seen") is not None, "milter not asked: %r" % got[:600])
