"""test_auth - SMTP AUTH PLAIN and LOGIN on submission and SMTPS (issue 3, "What it must
show" 3): offered and accepted only inside TLS, right password 235 and the user logged,
wrong password 535 5.7.8 after a delay and the session dropped after
smtpd_auth_failure_limit failures, a message submitted after AUTH delivered `with ESMTPSA`
and the TLS version and cipher in Received:, relaying for authenticated clients only; and
`postern passwd` (stdin and terminal) and `postern check` on the auth map.

The instance is harness.tls_shared(), whose users and passwords are TLS_SHARED_USERS.
"""

import base64
import os
import pty
import re
import select
import shutil
import smtplib
import subprocess
import tempfile
import time

import harness
from harness import (POSTERN, TLS_SHARED_USERS, expect, log, make_message, tls_client_context,
                     tls_shared, unique_tag)

TIMEOUT = {"test_auth_wrong_password_delay_and_limit": 120}

USER = "demo@local.test"


def b64(s):
    return base64.b64encode(s.encode("utf-8") if isinstance(s, str) else s).decode("ascii")


def ehlo_keywords(reply):
    return {l.split()[0].upper() for l in reply.lines[1:] if l.split()}


def auth_mechanisms(reply):
    """auth_mechanisms - the mechanisms of the AUTH line of an EHLO reply (upper case)."""
    for l in reply.lines[1:]:
        w = l.split()
        if w and w[0].upper() == "AUTH":
            return {m.upper() for m in w[1:]}
    return set()


def submission_tls(inst):
    """submission_tls - a submission connection after STARTTLS and a second EHLO; returns
    (connection, EHLO reply inside TLS)."""
    c = inst.submission()
    try:
        c.greet()
        r = c.cmd("STARTTLS")
        expect(r.code == 220, "STARTTLS: %r" % r)
        c.starttls()
        r = c.cmd("EHLO client.test")
        expect(r.code == 250, "EHLO inside TLS: %r" % r)
    except BaseException:
        c.close()
        raise
    return c, r


def smtps_greeted(inst):
    c = inst.smtps()
    try:
        expect(c.reply().code == 220, "SMTPS greeting")
        r = c.cmd("EHLO client.test")
        expect(r.code == 250, "EHLO on SMTPS: %r" % r)
    except BaseException:
        c.close()
        raise
    return c, r


def auth_plain(c, user, password):
    return c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, password)), timeout=30)


def auth_login(c, user, password):
    r = c.cmd("AUTH LOGIN")
    expect(r.code == 334, "AUTH LOGIN: %r" % r)
    expect(base64.b64decode(r.lines[0]).lower().startswith(b"username"),
           "AUTH LOGIN first challenge %r" % r.lines[0])
    r = c.cmd(b64(user))
    expect(r.code == 334, "AUTH LOGIN after the user name: %r" % r)
    expect(base64.b64decode(r.lines[0]).lower().startswith(b"password"),
           "AUTH LOGIN second challenge %r" % r.lines[0])
    return c.cmd(b64(password), timeout=30)


# --------------------------------------------------------------------------------------

def test_auth_not_before_tls_on_submission():
    inst = tls_shared()
    with inst.submission() as c:
        r = c.greet()
        kw = ehlo_keywords(r)
        expect("AUTH" not in kw, "AUTH offered before TLS on submission: %r" % r)
        expect("STARTTLS" in kw, "no STARTTLS on submission: %r" % r)
        r = c.cmd("MAIL FROM:<%s>" % USER)
        expect(r.code == 530 and "5.7.0" in r.text,
               "MAIL before STARTTLS on submission: want 530 5.7.0, got %r" % r)
        r = auth_plain(c, USER, TLS_SHARED_USERS[USER])
        expect(r.code in (530, 538),
               "AUTH before STARTTLS on submission: want 530/538, got %r" % r)
        r = c.cmd("AUTH LOGIN")
        expect(r.code in (530, 538), "AUTH LOGIN before STARTTLS: want 530/538, got %r" % r)
    # Port-25 style SMTP offers no AUTH in plaintext either.
    with inst.smtp() as c:
        r = c.greet()
        expect("AUTH" not in ehlo_keywords(r), "AUTH offered in plaintext on smtp: %r" % r)


def test_auth_required_before_mail_on_submission():
    """DESIGN: submission is "STARTTLS then AUTH required": MAIL inside TLS but without AUTH
    is refused too (530 5.7.0 Authentication required)."""
    inst = tls_shared()
    c, r = submission_tls(inst)
    with c:
        r = c.cmd("MAIL FROM:<%s>" % USER)
        expect(r.code == 530 and "5.7.0" in r.text,
               "MAIL before AUTH on submission (inside TLS): want 530 5.7.0, got %r" % r)
        expect(auth_plain(c, USER, TLS_SHARED_USERS[USER]).code == 235, "AUTH")
        expect(c.cmd("MAIL FROM:<%s>" % USER).code == 250, "MAIL after AUTH")


def test_auth_plain_and_login_succeed_and_are_logged():
    inst = tls_shared()
    pw = TLS_SHARED_USERS[USER]
    c, r = submission_tls(inst)
    with c:
        mechs = auth_mechanisms(r)
        expect({"PLAIN", "LOGIN"} <= mechs, "AUTH mechanisms inside TLS: %r" % r)
        r = auth_plain(c, USER, pw)
        expect(r.code == 235, "AUTH PLAIN with the right password: %r" % r)
        r = c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, pw)))
        expect(r.code == 503, "a second AUTH in one session: want 503, got %r" % r)
    user2 = "user2@local.test"
    c, r = submission_tls(inst)
    with c:
        r = auth_login(c, user2, TLS_SHARED_USERS[user2])
        expect(r.code == 235, "AUTH LOGIN with the right password: %r" % r)
    c, r = smtps_greeted(inst)
    with c:
        expect({"PLAIN", "LOGIN"} <= auth_mechanisms(r), "AUTH on SMTPS: %r" % r)
        r = auth_plain(c, USER, pw)
        expect(r.code == 235, "AUTH PLAIN on SMTPS: %r" % r)

    time.sleep(0.3)
    text = inst.log_text()
    for u in (USER, user2):
        expect(re.search(r"smtpd\[\d+\]: .*%s" % re.escape(u), text),
               "the authenticated user %s is not in the log" % u)
    for p in TLS_SHARED_USERS.values():
        expect(p not in text, "a password is in the log")
        expect(b64("\0%s\0%s" % (USER, p)) not in text, "an AUTH PLAIN response is logged")


def test_auth_wrong_password_delay_and_limit():
    inst = tls_shared()
    c, r = submission_tls(inst)
    with c:
        t0 = time.monotonic()
        r = auth_plain(c, USER, "wrong password")
        dt = time.monotonic() - t0
        expect(r.code == 535 and "5.7.8" in r.text, "wrong password: want 535 5.7.8, got %r"
               % r)
        expect(dt >= 0.8, "535 came after %.2fs; smtpd_auth_failure_delay is 1s" % dt)
        r = auth_login(c, "nobody@local.test", "whatever")
        expect(r.code == 535 and "5.7.8" in r.text, "unknown user: want the same 535 5.7.8, "
               "got %r" % r)
        # Third failure reaches smtpd_auth_failure_limit = 3: 535 and/or 421, then closed.
        c.send("AUTH PLAIN " + b64("\0%s\0nope" % USER) + "\r\n")
        codes = []
        try:
            for _ in range(3):
                codes.append(c.reply(timeout=15).code)
        except (ConnectionError, OSError) as e:
            log("after the third failure: %s" % e)
        expect(codes and codes[0] in (535, 421), "third failure: %r" % codes)
        try:
            c.send("NOOP\r\n")
            more = c.reply(timeout=10)
            raise AssertionError("session still open after %d failures: %r" % (3, more))
        except (ConnectionError, OSError):
            pass
        log("replies after the limit: %r" % codes)
    # Nothing else is affected: the right password still works on a new session.
    c, r = submission_tls(inst)
    with c:
        expect(auth_plain(c, USER, TLS_SHARED_USERS[USER]).code == 235,
               "right password after another session's failures")


def test_auth_submission_delivered_with_esmtpsa():
    inst = tls_shared()
    ctx = tls_client_context()
    for label in ("submission", "smtps"):
        tag = unique_tag("esmtpsa-" + label)
        if label == "submission":
            s = smtplib.SMTP(inst.host, inst.submission_port, local_hostname="client.test",
                             timeout=30)
            s.starttls(context=ctx)
        else:
            s = smtplib.SMTP_SSL(inst.host, inst.smtps_port, local_hostname="client.test",
                                 context=ctx, timeout=30)
        try:
            s.login(USER, TLS_SHARED_USERS[USER])
            s.sendmail(USER, ["alice@local.test"], make_message(tag, sender=USER))
        finally:
            try:
                s.quit()
            except Exception:
                s.close()
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "%s: message delivered %r times" % (label, got.get(tag)))
        rcv = harness.header_value(inst.maildirs["alice"].by_tag(tag)[0], "Received") or ""
        expect(re.search(r"\bwith ESMTPSA\b", rcv), "%s: Received: lacks `with ESMTPSA`: %r"
               % (label, rcv))
        expect(re.search(r"\(version=TLSv?1\.3 cipher=[A-Za-z0-9_-]+", rcv),
               "%s: Received: lacks (version=TLS1.3 cipher=...): %r" % (label, rcv))
        expect(TLS_SHARED_USERS[USER] not in rcv, "password in Received:")


def test_auth_relay_only_when_authenticated():
    """mynetworks of the shared TLS instance does not hold 127.0.0.1 (see
    harness.TLS_SHARED_CONF), so only AUTH allows relaying."""
    inst = tls_shared()
    if "127.0.0.0/8" in inst.conf.get("mynetworks", "127.0.0.0/8"):
        raise harness.Skip("the shared TLS instance's mynetworks holds 127.0.0.1")
    c, r = submission_tls(inst)
    with c:
        expect(auth_plain(c, USER, TLS_SHARED_USERS[USER]).code == 235, "AUTH")
        expect(c.cmd("MAIL FROM:<%s>" % USER).code == 250, "MAIL after AUTH")
        r = c.cmd("RCPT TO:<someone@remote.example>")
        expect(r.code == 250, "authenticated relay to an outside domain refused: %r" % r)
        expect(c.cmd("RSET").code == 250, "RSET")
    with inst.smtp() as c:
        c.greet()
        expect(c.cmd("STARTTLS").code == 220, "STARTTLS")
        c.starttls()
        expect(c.cmd("EHLO client.test").code == 250, "EHLO")
        expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL")
        r = c.cmd("RCPT TO:<someone@remote.example>")
        expect(r.code >= 500 and "5.7.1" in r.text,
               "unauthenticated relay (TLS, not in mynetworks) not refused: %r" % r)


# --------------------------------------------------------------------------------------
# postern passwd and postern check on the auth map (need no smtpd)

def _postern(d, *args, stdin=None):
    return subprocess.run([POSTERN, "-c", d] + list(args), input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                          text=True, errors="replace")


def _conf(d, extra=""):
    owners = ""
    if not harness.IS_ROOT:
        me = harness.current_user()
        owners = "mail_owner = %s\nqueue_owner = %s\nmailbox_owner = %s\n" % (me, me, me)
    with open(os.path.join(d, "postern.conf"), "w") as f:
        f.write("queue_directory = queue\nsmtp_listen = 127.0.0.1:2525\n"
                "smtpd_tls_cert_file = cert.pem\nsmtpd_tls_key_file = key.pem\n"
                "smtpd_auth_map = auth\n" + owners + extra)


def test_auth_postern_passwd_and_check():
    if not os.path.exists(POSTERN):
        raise harness.HarnessError("%s is not built (run make)" % POSTERN)
    if harness.IS_ROOT:
        harness.ensure_users()
    d = tempfile.mkdtemp(prefix="postern-passwd-")
    try:
        harness.make_cert(d, "x", "mx.local.test", cert_name="cert.pem", key_name="key.pem")
        _conf(d)
        auth = os.path.join(d, "auth")
        with open(auth, "w") as f:
            f.write("# users\nkeep@local.test $6$salt$" + "x" * 86 + "\n")
        r = _postern(d, "passwd", "new@local.test", stdin="first secret\n")
        expect(r.returncode == 0, "postern passwd (new user): %s" % r.stdout)
        r = _postern(d, "passwd", "NEW@local.test", stdin="second secret\n")
        expect(r.returncode == 0, "postern passwd (change): %s" % r.stdout)
        with open(auth) as f:
            lines = f.read().splitlines()
        expect(lines[0] == "# users" and lines[1].startswith("keep@local.test "),
               "other lines not kept: %r" % lines)
        mine = [l for l in lines if l.lower().startswith("new@local.test ")]
        expect(len(mine) == 1 and mine[0].split()[1].startswith("$y$"),
               "want one yescrypt line for new@local.test: %r" % lines)
        expect("secret" not in "\n".join(lines), "plaintext password in the map")
        expect(os.stat(auth).st_mode & 0o777 == 0o600, "auth map mode %o" %
               (os.stat(auth).st_mode & 0o777))
        expect(os.path.exists(auth + ".db") and os.stat(auth + ".db").st_mode & 0o077 == 0,
               "auth.db missing or readable by others")
        r = _postern(d, "map", "query", auth, "new@local.test")
        expect(r.returncode == 0 and r.stdout.strip() == mine[0].split()[1],
               ".db not rebuilt with the new hash: %r" % r.stdout)
        try:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import crypt    # deprecated, still in Debian 12's Python 3.11
        except ImportError:
            crypt = None
        if crypt is not None:
            h = mine[0].split()[1]
            expect(crypt.crypt("second secret", h) == h,
                   "the stored hash does not match the password given")

        r = _postern(d, "check")
        expect(r.returncode == 0, "postern check with a good auth map: %s" % r.stdout)
        with open(auth, "a") as f:
            f.write("weak@local.test plaintext-password\n")
        r = _postern(d, "map", "build", auth)
        r = _postern(d, "check")
        expect(r.returncode != 0 and "weak@local.test" in r.stdout,
               "postern check accepted a plaintext entry:\n%s" % r.stdout)
        expect(re.search(r"auth:\d+:", r.stdout), "no file:line in:\n%s" % r.stdout)

        # Refusals: empty password, a user name with a space, no map configured.
        r = _postern(d, "passwd", "empty@local.test", stdin="\n")
        expect(r.returncode != 0, "empty password accepted")
        r = _postern(d, "passwd", "two words", stdin="pw\n")
        expect(r.returncode == 2, "user name with a space: exit %d" % r.returncode)
        e = tempfile.mkdtemp(prefix="postern-passwd-nomap-")
        try:
            with open(os.path.join(e, "postern.conf"), "w") as f:
                f.write("queue_directory = queue\n")
            r = _postern(e, "passwd", "x@local.test", stdin="pw\n")
            expect(r.returncode != 0 and "smtpd_auth_map" in r.stdout,
                   "passwd without smtpd_auth_map:\n%s" % r.stdout)
            r = _postern(e, "passwd", "-m", os.path.join(e, "other"), "x@local.test",
                         stdin="pw\n")
            expect(r.returncode == 0 and os.path.exists(os.path.join(e, "other.db")),
                   "passwd -m: %s" % r.stdout)
        finally:
            shutil.rmtree(e, ignore_errors=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _pty_passwd(d, user, first, second):
    """_pty_passwd - run `postern passwd USER` on a terminal, answer both prompts; returns
    (exit status, everything the terminal showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([POSTERN, "-c", d, "passwd", user], stdin=slave, stdout=slave,
                         stderr=slave, close_fds=True, start_new_session=True)
    os.close(slave)
    shown = b""

    def read_until(want, timeout=15):
        nonlocal shown
        deadline = time.monotonic() + timeout
        while want not in shown and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    shown += os.read(master, 4096)
                except OSError:
                    break
        return want in shown

    try:
        expect(read_until(b"password"), "no password prompt: %r" % shown)
        os.write(master, first.encode() + b"\n")
        expect(read_until(b"Again"), "no second prompt: %r" % shown)
        os.write(master, second.encode() + b"\n")
        rc = p.wait(timeout=60)
        read_until(b"\x00", timeout=0.3)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
        os.close(master)
    return rc, shown


def test_auth_postern_passwd_on_a_terminal():
    if not os.path.exists(POSTERN):
        raise harness.HarnessError("%s is not built (run make)" % POSTERN)
    d = tempfile.mkdtemp(prefix="postern-passwd-tty-")
    try:
        _conf(d)
        rc, shown = _pty_passwd(d, "tty@local.test", "tty secret 1", "tty secret 1")
        expect(rc == 0, "postern passwd on a terminal exited %d: %r" % (rc, shown))
        expect(b"tty secret" not in shown, "the password was echoed: %r" % shown)
        with open(os.path.join(d, "auth")) as f:
            expect(f.read().startswith("tty@local.test $y$"), "no entry written")
        before = open(os.path.join(d, "auth")).read()
        rc, shown = _pty_passwd(d, "tty@local.test", "one", "two")
        expect(rc != 0, "two different passwords accepted")
        expect(open(os.path.join(d, "auth")).read() == before, "map changed on a mismatch")
    finally:
        shutil.rmtree(d, ignore_errors=True)
