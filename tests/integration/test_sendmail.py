"""test_sendmail - local submission: `sendmail` (and `mailq`, `newaliases`) over
public/submit, where smtpd takes the peer's uid as the sender's identity; smtpd's counters
and pause/resume through the control channel; and a reload that lets an idle TLS session
finish (smtpd retired with SIGUSR1).

The module's instance (started on first use, stopped at exit) has local_domains =
local.test with alice and bob, myhostname mx.local.test, TLS on every listener (for the
reload test) and an aliases(5) alias_map built with `postern map build --aliases`. An
ordinary user is `nobody`, run with `setpriv --reuid --regid --clear-groups`; the identity
smtpd gives it is nobody@mx.local.test.
"""

import json
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import time

import harness
from harness import BIN, POSTERN, Instance, Skip, expect, log, unique_tag

SENDMAIL = os.path.join(BIN, "sendmail")
MAILQ = os.path.join(BIN, "mailq")
NEWALIASES = os.path.join(BIN, "newaliases")
WAIT = 30.0

TIMEOUT = {"test_sendmail_reload_keeps_idle_tls_session": 120,
           "test_sendmail_daemons_down_tempfail": 120,
           "test_sendmail_newaliases": 120}

ALIASES = "postmaster: alice\n"

_inst = None


def inst():
    """inst - the module's running instance."""
    global _inst
    if _inst is not None and _inst.alive():
        return _inst
    if not harness.IS_ROOT:
        raise Skip("needs root (ordinary users are simulated with setpriv)")
    if shutil.which("setpriv") is None:
        raise Skip("no setpriv")
    i = Instance("sendmail", {"alias_map": "aliases", "smtpd_processes": "2",
                              "mynetworks": "192.0.2.0/24"}, tls=True)
    with open(os.path.join(i.dir, "aliases"), "w") as f:
        f.write(ALIASES)
    i.postern("map", "build", "--aliases", os.path.join(i.dir, "aliases"), check=True)
    i.start()
    _inst = i
    return i


def run(prog, args, data=b"", user=None, env_conf=None, timeout=60):
    """run - prog args as user (None: root) with POSTERN_CONFIG set (the module's instance
    unless env_conf names another directory); CompletedProcess."""
    argv = [prog] + list(args)
    if user is not None:
        pw = pwd.getpwnam(user)
        argv = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                "--clear-groups"] + argv
    env = dict(os.environ, POSTERN_CONFIG=env_conf or inst().dir)
    r = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env, cwd="/")
    log("%s %s -> %d %s" % (os.path.basename(prog), " ".join(args), r.returncode,
                            r.stderr.decode(errors="replace").strip()[:300]))
    return r


def msg(tag, headers=(), body="hello\n"):
    """msg - a message with LF line ends and X-Test-Id (no Date/Message-ID/From)."""
    return ("".join(h + "\n" for h in headers) + "Subject: %s\nX-Test-Id: %s\n\n%s"
            % (tag, tag, body)).encode()


def delivered(user, tag):
    """delivered - the one copy of tag in user's Maildir (waits)."""
    md = inst().maildirs[user]
    md.wait_for([tag], WAIT)
    got = md.by_tag(tag)
    expect(len(got) == 1, "%s got %d copies of %s" % (user, len(got), tag))
    return got[0]


def test_sendmail_t_as_ordinary_user():
    """echo ... | sendmail -t as nobody: delivered to alice (To:) and bob (Bcc:, removed),
    with nobody@mx.local.test as Return-Path and the missing headers added."""
    tag = unique_tag("sm-t")
    r = run(SENDMAIL, ["-t"], msg(tag, ["To: Alice <alice@local.test>",
                                        "Bcc: bob@local.test"],
                                  body="line one\n.leading dot\n"), user="nobody")
    expect(r.returncode == 0, "sendmail -t exited %d: %r" % (r.returncode, r.stderr))
    for user in ("alice", "bob"):
        data = delivered(user, tag)
        expect(harness.header_value(data, "Return-Path") == "<nobody@mx.local.test>",
               "Return-Path %r" % harness.header_value(data, "Return-Path"))
        expect(harness.header_value(data, "Bcc") is None, "Bcc: left in the message")
        for h in ("Date", "Message-ID", "From"):
            expect(harness.header_value(data, h), "no %s: added" % h)
        expect(harness.header_value(data, "From") == "nobody@mx.local.test",
               "From: %r" % harness.header_value(data, "From"))
        rcv = harness.header_value(data, "Received")
        expect("from local user nobody (uid %d)" % pwd.getpwnam("nobody").pw_uid in rcv
               and "with LOCAL" in rcv, "Received: %r" % rcv)
        expect(b"\n.leading dot\n" in data, "dot-stuffing lost the leading dot")


def test_sendmail_f_ignored_for_user_honoured_for_root():
    """sendmail -f: an ordinary user's is replaced by their identity, root's is kept;
    -F makes the From: header."""
    tag = unique_tag("sm-f")
    r = run(SENDMAIL, ["-f", "boss@example.org", "-F", "Not Boss", "alice@local.test"],
            msg(tag), user="nobody")
    expect(r.returncode == 0, "sendmail -f as nobody exited %d" % r.returncode)
    data = delivered("alice", tag)
    expect(harness.header_value(data, "Return-Path") == "<nobody@mx.local.test>",
           "nobody's -f was honoured: %r" % harness.header_value(data, "Return-Path"))
    expect(harness.header_value(data, "From") == '"Not Boss" <boss@example.org>',
           "From: %r" % harness.header_value(data, "From"))
    tag = unique_tag("sm-froot")
    r = run(SENDMAIL, ["-oi", "-f", "boss@example.org", "alice@local.test"], msg(tag))
    expect(r.returncode == 0, "sendmail -f as root exited %d" % r.returncode)
    data = delivered("alice", tag)
    expect(harness.header_value(data, "Return-Path") == "<boss@example.org>",
           "root's -f was not honoured: %r" % harness.header_value(data, "Return-Path"))


def test_sendmail_lone_dot_and_i():
    """Without -i a lone "." ends the message; with -i it is a line of the message."""
    tag = unique_tag("sm-dot")
    r = run(SENDMAIL, ["alice@local.test"], msg(tag, body="before\n.\nafter\n"),
            user="nobody")
    expect(r.returncode == 0, "exit %d" % r.returncode)
    data = delivered("alice", tag)
    expect(b"before" in data and b"after" not in data, "a lone dot did not end the input")
    tag = unique_tag("sm-doti")
    r = run(SENDMAIL, ["-i", "alice@local.test"], msg(tag, body="before\n.\nafter\n"),
            user="nobody")
    expect(r.returncode == 0, "exit %d" % r.returncode)
    data = delivered("alice", tag)
    expect(b"before\n.\nafter" in data, "with -i the lone dot line was lost: %r" % data[-80:])


def test_sendmail_bs_transcript():
    """sendmail -bs: SMTP on stdin/stdout (bare LF lines), proxied to public/submit."""
    tag = unique_tag("sm-bs")
    script = ("EHLO client\nMAIL FROM:<whoever@example.org>\nRCPT TO:<alice@local.test>\n"
              "DATA\nSubject: %s\nX-Test-Id: %s\n\nvia -bs\n.\nQUIT\n" % (tag, tag)).encode()
    r = run(SENDMAIL, ["-bs"], script, user="nobody")
    out = r.stdout.decode(errors="replace")
    expect(r.returncode == 0, "sendmail -bs exited %d" % r.returncode)
    codes = [line[:3] for line in out.splitlines() if line[3:4] == " "]
    expect(codes == ["220", "250", "250", "250", "354", "250", "221"],
           "-bs transcript %r" % out)
    expect("STARTTLS" not in out and "AUTH" not in out, "submit offers TLS/AUTH: %r" % out)
    data = delivered("alice", tag)
    expect(harness.header_value(data, "Return-Path") == "<nobody@mx.local.test>",
           "Return-Path %r" % harness.header_value(data, "Return-Path"))


def test_sendmail_unknown_user_exit_status():
    """A recipient refused with 5.1.1: exit 67 (EX_NOUSER), nothing queued, a clear
    message; bad usage is 64."""
    tag = unique_tag("sm-unk")
    r = run(SENDMAIL, ["alice@local.test", "nosuchuser@local.test"], msg(tag), user="nobody")
    err = r.stderr.decode(errors="replace")
    expect(r.returncode == 67, "exit %d for an unknown user: %r" % (r.returncode, err))
    expect("nosuchuser@local.test" in err and "NOT sent" in err, "stderr %r" % err)
    time.sleep(1.0)
    expect(inst().maildirs["alice"].by_tag(tag) == [], "alice got the refused message")
    r = run(SENDMAIL, [], msg(tag), user="nobody")
    expect(r.returncode == 64, "no recipients: exit %d" % r.returncode)


def test_sendmail_mailq_equals_queue_list():
    """mailq prints exactly what `postern queue list` prints (and sendmail -bp too)."""
    i = inst()
    a = run(MAILQ, [])
    b = i.postern("queue", "list")
    c = run(SENDMAIL, ["-bp"])
    expect(a.returncode == 0 and b.returncode == 0, "mailq %d, queue list %d"
           % (a.returncode, b.returncode))
    expect(a.stdout.decode() == b.stdout, "mailq %r != queue list %r" % (a.stdout, b.stdout))
    expect(c.stdout == a.stdout, "sendmail -bp differs from mailq")


def test_sendmail_newaliases():
    """newaliases builds alias_map and reloads; the new alias then resolves."""
    i = inst()
    with open(os.path.join(i.dir, "aliases"), "w") as f:
        f.write(ALIASES + "crew: alice, bob\n")
    r = run(NEWALIASES, [])
    expect(r.returncode == 0, "newaliases exited %d: %r" % (r.returncode, r.stderr))
    r = i.postern("map", "query", os.path.join(i.dir, "aliases"), "crew")
    expect(r.returncode == 0 and "alice" in r.stdout, "map query crew: %r" % r.stdout)
    tag = unique_tag("sm-alias")
    deadline = time.monotonic() + 20
    while True:       # the reload starts new smtpd processes; until then: 5.1.1
        r = run(SENDMAIL, ["crew@local.test"], msg(tag), user="nobody")
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    expect(r.returncode == 0, "sendmail to the new alias exited %d" % r.returncode)
    delivered("alice", tag)
    delivered("bob", tag)


def _stats(i):
    r = i.postern("stats", "--json")
    expect(r.returncode == 0, "stats --json exited %d: %s" % (r.returncode, r.stdout))
    return r.stdout


def test_sendmail_smtpd_counters_and_pause():
    """stats --json has smtpd's counters; pause smtpd stops the network listeners (submit
    keeps working), resume starts them again."""
    i = inst()
    out = _stats(i)
    expect('"smtpd"' in out and '"connections"' in out and '"tls_sessions"' in out,
           "no smtpd counters in stats --json: %s" % out[:2000])
    r = i.postern("pause", "smtpd")
    expect(r.returncode == 0, "pause smtpd exited %d: %s" % (r.returncode, r.stdout))
    try:
        time.sleep(0.5)
        s = socket.create_connection((i.host, i.port), timeout=5)
        s.settimeout(2.0)
        try:
            got = s.recv(100)
        except socket.timeout:
            got = b""
        s.close()
        expect(not got.startswith(b"220"), "paused smtpd greeted: %r" % got)
        tag = unique_tag("sm-paused")
        r = run(SENDMAIL, ["alice@local.test"], msg(tag), user="nobody")
        expect(r.returncode == 0, "sendmail while paused exited %d" % r.returncode)
        delivered("alice", tag)
    finally:
        r = i.postern("resume", "smtpd")
    expect(r.returncode == 0, "resume smtpd exited %d: %s" % (r.returncode, r.stdout))
    with i.smtp() as c:
        rep = c.greet()
        expect(rep.code == 250, "after resume: %r" % rep)


def test_sendmail_reload_keeps_idle_tls_session():
    """An idle TLS session opened before `postern reload` can still send afterwards: the
    old smtpd is retired with SIGUSR1 and serves its sessions to their end."""
    i = inst()
    c = harness.RawSMTP(i.host, i.port)
    try:
        expect(c.reply().code == 220, "no greeting")
        expect(c.cmd("EHLO client.test").code == 250, "EHLO")
        expect(c.cmd("STARTTLS").code == 220, "STARTTLS")
        c.starttls(ctx=harness.default_tls_context(), server_hostname="mx.local.test")
        expect(c.cmd("EHLO client.test").code == 250, "EHLO in TLS")
        old = set(p["pid"] for p in i.daemons("smtpd"))
        r = i.postern("reload")
        expect(r.returncode == 0, "reload exited %d" % r.returncode)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = set(p["pid"] for p in i.daemons("smtpd"))
            if len(now - old) >= 2:
                break
            time.sleep(0.2)
        # no pause here: while the old qmgr is replaced, smtpd holds MAIL and DATA for the
        # new one (SMTPD_QMGR_WAIT_MS) instead of answering 451
        tag = unique_tag("sm-reload")
        rep = c.cmd("MAIL FROM:<sender@example.org>", timeout=20)
        expect(rep.code == 250, "MAIL after reload: %r" % rep)
        expect(c.cmd("RCPT TO:<alice@local.test>").code == 250, "RCPT after reload")
        expect(c.cmd("DATA").code == 354, "DATA after reload")
        c.send(harness.make_message(tag) + b".\r\n")
        rep = c.reply(timeout=30)
        expect(rep.code == 250, "end of data after reload: %r" % rep)
        c.cmd("QUIT")
    finally:
        c.close()
    delivered("alice", tag)
    # the retired smtpd leaves once its last session has ended
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (old & set(p["pid"] for p in i.daemons("smtpd"))):
        time.sleep(0.2)
    expect(not (old & set(p["pid"] for p in i.daemons("smtpd"))),
           "retired smtpd still running after its sessions ended")


def test_sendmail_daemons_down_tempfail():
    """With the daemons stopped: EX_TEMPFAIL (75) and a clear message that nothing was
    sent (no pickup queue: keeping the message is the caller's job). Runs last."""
    global _inst
    i = inst()
    i.stop()
    try:
        tag = unique_tag("sm-down")
        r = run(SENDMAIL, ["alice@local.test"], msg(tag), user="nobody", env_conf=i.dir)
        err = r.stderr.decode(errors="replace")
        expect(r.returncode == 75, "exit %d with the daemons down" % r.returncode)
        expect("not running" in err and "NOT sent" in err, "stderr %r" % err)
    finally:
        i.cleanup()
        _inst = None
