"""test_milter - smtpd_milters with real milters on loopback.

- OpenDKIM (run in the foreground with its own config and key in the instance directory,
  never its system service) signs mail from 127.0.0.1 (its InternalHosts) for dkim.test:
  the delivered Maildir copy carries a DKIM-Signature with d=dkim.test.
- a scripted pymilter (milter_scripted.py, run by /usr/bin/python3): a 550 at RCPT with its
  text and nothing queued; a tempfail at end of message (451, not queued); at end of
  message an added header, a changed Subject, an added recipient and a changed sender, all
  seen in the delivered copies.
- failures: no milter listening with milter_default_action = accept (mail accepted) and
  = tempfail (451); a milter that stalls past milter_command_timeout gets the default
  action (accept) and the session goes on.
Every wait is bounded; the whole file runs in well under 90 s.
"""

import os
import shutil
import socket
import subprocess
import time

from harness import (Instance, expect, free_port, header_value, make_message, show_log,
                     unique_tag)

SYSTEM_PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = {}


def _wait_port(port, proc, timeout=10.0):
    """_wait_port - until something listens on 127.0.0.1:port (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("milter exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("milter on port %d did not start" % port)


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
    """with _Setup(conf, milter=...) as (inst, proc): an instance whose smtpd_milters is
    the milter started here (scripted, opendkim, or None: a port nobody listens on)."""

    def __init__(self, name, conf=None, milter="scripted"):
        self.name, self.conf, self.milter = name, dict(conf or {}), milter
        self.inst = self.proc = None

    def __enter__(self):
        self.inst = Instance(self.name, {})
        port = free_port()
        if self.milter == "scripted":
            self.proc = subprocess.Popen([SYSTEM_PYTHON, os.path.join(HERE, "milter_scripted.py"),
                                          str(port)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            _wait_port(port, self.proc)
        elif self.milter == "opendkim":
            self.proc = _start_opendkim(self.inst.dir, port)
        self.inst.conf.update({"smtpd_milters": "inet:127.0.0.1:%d" % port,
                               "smtpd_greet_pause": "0", "smtpd_peername_lookup": "no"})
        self.inst.conf.update(self.conf)
        self.inst._write_files()
        self.inst.start()
        return self.inst, self.proc

    def __exit__(self, etype, evalue, tb):
        if etype is not None:
            show_log(self.inst)
        _stop(self.proc)
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


def _smtp_send(inst, msg, sender="sender@example.org", rcpts=("alice@local.test",)):
    """_smtp_send - one transaction over smtplib; (code of the end of data or of the first
    refusal, the command that got it)."""
    import smtplib
    s = inst.smtplib(timeout=30)
    try:
        code, _ = s.ehlo()
        if code != 250:
            return code, "EHLO"
        code, _ = s.mail(sender)
        if code != 250:
            return code, "MAIL"
        for r in rcpts:
            code, _ = s.rcpt(r)
            if code != 250:
                return code, "RCPT"
        code, _ = s.data(msg)
        return code, "DATA"
    finally:
        try:
            s.quit()
        except Exception:
            s.close()


def _queue_count(inst):
    r = inst.postern("queue", "list", "--json")
    return len([l for l in r.stdout.splitlines() if l.startswith("{")])


def test_milter_opendkim_signs():
    if shutil.which("opendkim") is None:
        raise AssertionError("opendkim is not installed (tools/install-deps)")
    with _Setup("milter-dkim", milter="opendkim") as (inst, _):
        tag = unique_tag("dkim")
        msg = make_message(tag, sender="alice@dkim.test")
        code, where = _smtp_send(inst, msg, sender="alice@dkim.test")
        expect(code == 250, "send: %d at %s" % (code, where))
        got = inst.maildirs["alice"].one(tag, timeout=20)
        sig = header_value(got, "DKIM-Signature")
        expect(sig is not None, "no DKIM-Signature in %r" % got[:600])
        expect("d=dkim.test" in sig and "s=test" in sig and "b=" in sig, "signature: %s" % sig)


def test_milter_scripted_reject_tempfail_modify():
    with _Setup("milter-script") as (inst, _):
        before = _queue_count(inst)
        code, where = _smtp_send(inst, make_message(unique_tag("rej")),
                                 sender="reject-rcpt@example.org")
        expect(code == 550 and where == "RCPT", "reject at RCPT: %d at %s" % (code, where))
        expect("Recipient refused by the test milter" in inst.log_text(), "milter text")
        tag = unique_tag("tmp")
        code, where = _smtp_send(inst, make_message(tag, body_lines=["MILTER-TEMPFAIL"]))
        expect(code == 451 and where == "DATA", "tempfail at EOM: %d at %s" % (code, where))
        expect(_queue_count(inst) == before, "a refused message was queued")
        tag = unique_tag("mod")
        code, where = _smtp_send(inst, make_message(tag, body_lines=["MILTER-MODIFY", "x"]))
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
        code, where = _smtp_send(inst, make_message(tag))
        expect(code == 250, "milter down, accept: %d at %s" % (code, where))
        inst.maildirs["alice"].one(tag, timeout=20)


def test_milter_down_default_tempfail():
    with _Setup("milter-down-tf", milter=None) as (inst, _):
        code, where = _smtp_send(inst, make_message(unique_tag("tf")))
        expect(code == 451 and where == "MAIL", "milter down, tempfail: %d at %s" % (code, where))


def test_milter_stall_times_out_to_default():
    conf = {"milter_default_action": "accept", "milter_command_timeout": "2s"}
    with _Setup("milter-stall", conf) as (inst, _):
        tag = unique_tag("stall")
        t0 = time.monotonic()
        code, where = _smtp_send(inst, make_message(tag), sender="stall@example.org")
        took = time.monotonic() - t0
        expect(code == 250 and where == "DATA", "stall: %d at %s" % (code, where))
        expect(took < 7, "the stall was not cut at milter_command_timeout: %.1fs" % took)
        expect("timeout waiting for a reply" in inst.log_text(), "no timeout logged")
        inst.maildirs["alice"].one(tag, timeout=20)
