"""test_tls - STARTTLS (smtp and submission), implicit TLS (smtps), protocol versions, SNI,
session resumption across connections, smtpd processes and ticket-key rotations, the
STARTTLS injection rule, isolation of failed handshakes, certificate reload on SIGHUP, and
`postern check` on TLS settings (issue 3, "What it must show" 1, 2, 5, 6).

Most tests share harness.tls_shared(): smtp, submission and smtps listeners, a certificate
for mx.local.test and, by SNI, one for other.test, two smtpd processes, a 3 s handshake
timeout. Clients are Python's ssl (no verification: the certificates are self-signed) and
`openssl s_client` where the Python client cannot say what is wanted.
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import harness
from harness import (IS_ROOT, POSTERN, Instance, Skip, cert_der, expect, log,
                     make_cert, make_message, proc_info, tls_client_context, tls_shared,
                     unique_tag)

TIMEOUT = {"test_tls_ticket_key_rotation": 120, "test_tls_reload_new_certificate": 180,
           "test_tls_resumption_across_smtpd_processes": 180}

# Received: ... with ESMTPS ... (version=TLS1.3 cipher=TLS_AES_256_GCM_SHA384 ...)
TLS_RECEIVED = re.compile(r"\(version=TLSv?1\.[23] cipher=[A-Za-z0-9_-]+")


def ehlo_keywords(reply):
    """ehlo_keywords - the upper-case keywords of an EHLO reply (the first line is the name)."""
    return {l.split()[0].upper() for l in reply.lines[1:] if l.split()}


def starttls(c, ctx=None, server_hostname=None, session=None):
    """starttls - STARTTLS on an EHLO'd RawSMTP connection, then the handshake."""
    r = c.cmd("STARTTLS")
    expect(r.code == 220, "STARTTLS: %r" % r)
    c.starttls(ctx, server_hostname=server_hostname, session=session)
    return c


def transaction(c, tag, to="alice@local.test", sender="sender@example.org"):
    """transaction - MAIL, RCPT, DATA with a tagged message on a greeted connection."""
    r = c.cmd("MAIL FROM:<%s>" % sender)
    expect(r.code == 250, "MAIL: %r" % r)
    r = c.cmd("RCPT TO:<%s>" % to)
    expect(r.code == 250, "RCPT: %r" % r)
    r = c.cmd("DATA")
    expect(r.code == 354, "DATA: %r" % r)
    c.send(make_message(tag, to=to, sender=sender) + b".\r\n")
    r = c.reply(timeout=30)
    expect(r.code == 250, "end of data: %r" % r)
    return r


def first_received(data):
    """first_received - our Received: field (the first one), unfolded."""
    return harness.header_value(data, "Received") or ""


def check_received_tls(inst, tag, with_proto, box="alice"):
    """check_received_tls - the message tagged tag arrives and our Received: says
    `with <with_proto>` and `(version=TLS1.x cipher=...)`. Returns the header."""
    got = inst.maildirs[box].wait_for([tag], timeout=30)
    expect(got.get(tag) == 1, "message %s delivered %r times" % (tag, got.get(tag)))
    rcv = first_received(inst.maildirs[box].by_tag(tag)[0])
    expect(re.search(r"\bwith %s\b" % with_proto, rcv),
           "Received: does not say `with %s`: %r" % (with_proto, rcv))
    expect(TLS_RECEIVED.search(rcv), "Received: has no (version=TLS1.x cipher=...): %r" % rcv)
    return rcv


def wait_closed(sock, timeout):
    """wait_closed - read until the peer closes (EOF or reset); the bytes read, or None if
    it was still open after timeout seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return None
        except (ConnectionResetError, ssl.SSLError, OSError):
            return data
        if not chunk:
            return data
        data += chunk
    return None


def smtpd_pids(inst):
    return sorted(p["pid"] for p in inst.daemons("smtpd"))


# --------------------------------------------------------------------------------------
# STARTTLS and SMTPS

def test_tls_starttls_on_smtp_listener():
    inst = tls_shared()
    tag = unique_tag("starttls25")
    with inst.smtp() as c:
        kw = ehlo_keywords(c.greet())
        expect("STARTTLS" in kw, "EHLO on the smtp listener does not offer STARTTLS: %r" % kw)
        expect("AUTH" not in kw, "AUTH offered before TLS: %r" % kw)
        starttls(c)
        expect(c.sock.version() in ("TLSv1.3", "TLSv1.2"), "version %s" % c.sock.version())
        r = c.cmd("EHLO client.test")
        expect(r.code == 250, "EHLO after TLS: %r" % r)
        expect("STARTTLS" not in ehlo_keywords(r), "STARTTLS offered again inside TLS: %r" % r)
        transaction(c, tag)
        c.cmd("QUIT")
    rcv = check_received_tls(inst, tag, "ESMTPS")
    expect("version=TLS" in rcv and "1.3" in rcv, "default client should get TLS 1.3: %r" % rcv)


def test_tls_starttls_on_submission_listener():
    inst = tls_shared()
    with inst.submission() as c:
        kw = ehlo_keywords(c.greet())
        expect("STARTTLS" in kw, "EHLO on submission does not offer STARTTLS: %r" % kw)
        starttls(c)
        r = c.cmd("EHLO client.test")
        expect(r.code == 250, "EHLO after TLS: %r" % r)
        kw = ehlo_keywords(r)
        expect("STARTTLS" not in kw, "STARTTLS offered again inside TLS: %r" % r)
        expect("AUTH" in kw, "AUTH not offered on submission inside TLS: %r" % r)
        r = c.cmd("NOOP")
        expect(r.code == 250, "NOOP inside TLS: %r" % r)


def test_tls_smtps_implicit_tls():
    inst = tls_shared()
    tag = unique_tag("smtps")
    with inst.smtps() as c:
        r = c.reply()
        expect(r.code == 220, "SMTPS greeting (inside TLS): %r" % r)
        r = c.cmd("EHLO client.test")
        expect(r.code == 250, "EHLO: %r" % r)
        kw = ehlo_keywords(r)
        expect("STARTTLS" not in kw, "STARTTLS offered on SMTPS: %r" % r)
        expect("AUTH" in kw, "AUTH not offered on SMTPS: %r" % r)
        transaction(c, tag)
    check_received_tls(inst, tag, "ESMTPS")

    # A plaintext client on the SMTPS port gets no SMTP greeting and no SMTP reply.
    s = socket.create_connection((inst.host, inst.smtps_port), timeout=10)
    try:
        s.settimeout(2.0)
        try:
            early = s.recv(4096)
        except socket.timeout:
            early = b""
        expect(not early.startswith(b"220"), "plaintext greeting on SMTPS: %r" % early)
        try:
            s.sendall(b"EHLO plain.test\r\n")
        except OSError:
            pass
        rest = wait_closed(s, 10.0)
        expect(rest is not None, "SMTPS kept a plaintext client open for 10 s")
        expect(b"250" not in rest and b"220" not in rest,
               "SMTP reply to a plaintext client on SMTPS: %r" % rest)
    finally:
        s.close()


# --------------------------------------------------------------------------------------
# Protocol versions

def test_tls_versions_1_3_and_1_2_accepted():
    inst = tls_shared()
    for ver, name in ((ssl.TLSVersion.TLSv1_3, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")):
        ctx = tls_client_context(minimum=ver, maximum=ver)
        with inst.smtps(ctx=ctx) as c:
            expect(c.sock.version() == name, "asked for %s, got %s" % (name, c.sock.version()))
            r = c.reply()
            expect(r.code == 220, "%s greeting: %r" % (name, r))
            cipher = c.sock.cipher()[0]
            if name == "TLSv1.2":
                expect(("GCM" in cipher or "CHACHA20" in cipher) and "DHE" in cipher,
                       "TLS 1.2 cipher %s is not forward-secret AEAD" % cipher)
            log("smtps %s %s" % (name, cipher))
        with inst.smtp() as c:
            c.greet()
            starttls(c, ctx)
            expect(c.sock.version() == name, "STARTTLS asked for %s, got %s"
                   % (name, c.sock.version()))
            r = c.cmd("EHLO client.test")
            expect(r.code == 250, "EHLO over %s: %r" % (name, r))


def local_can_offer(ver, cert, key):
    """local_can_offer - whether this OpenSSL can still complete a handshake at ver with
    itself (Debian's OpenSSL 3 needs security level 0 for TLS 1.0/1.1, if it has them)."""
    try:
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        sctx.minimum_version = ver
        sctx.maximum_version = ver
        sctx.load_cert_chain(cert, key)
        cctx = tls_client_context(minimum=ver, maximum=ver, seclevel0=True)
    except (ssl.SSLError, ValueError) as e:
        return False, str(e)
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    err = []

    def serve():
        try:
            with sctx.wrap_socket(a, server_side=True) as s:
                s.recv(1)
        except Exception as e:   # noqa: BLE001 - any failure means "cannot"
            err.append(e)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with cctx.wrap_socket(b) as c:
            c.sendall(b"x")
        t.join(5)
    except Exception as e:       # noqa: BLE001
        return False, str(e)
    if err:
        return False, str(err[0])
    return True, ""


def test_tls_old_versions_refused():
    inst = tls_shared()
    tried = []
    reasons = []
    for ver, name in ((ssl.TLSVersion.TLSv1_1, "TLSv1.1"), (ssl.TLSVersion.TLSv1, "TLSv1.0")):
        ok, why = local_can_offer(ver, inst.cert, inst.key)
        if not ok:
            reasons.append("%s: %s" % (name, why))
            continue
        tried.append(name)
        ctx = tls_client_context(minimum=ver, maximum=ver, seclevel0=True)
        accepted = None
        try:
            with inst.smtps(ctx=ctx) as c:
                accepted = c.sock.version()
        except (ssl.SSLError, OSError) as e:
            log("smtps refused %s: %s" % (name, e))
        expect(accepted is None, "SMTPS accepted %s (got %s)" % (name, accepted))
        with inst.smtp() as c:
            c.greet()
            r = c.cmd("STARTTLS")
            expect(r.code == 220, "STARTTLS: %r" % r)
            try:
                c.starttls(ctx)
                accepted = c.sock.version()
            except (ssl.SSLError, OSError):
                pass
            expect(accepted is None, "STARTTLS accepted %s (got %s)" % (name, accepted))
        # openssl s_client says the same.
        r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (inst.host,
                            inst.smtps_port), "-tls1_1" if name == "TLSv1.1" else "-tls1",
                            "-cipher", "DEFAULT:@SECLEVEL=0"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = r.stdout.decode("utf-8", "replace")
        expect(r.returncode != 0 or "Cipher is (NONE)" in out,
               "openssl s_client -%s got a session:\n%s" % (name, out[-1500:]))
    # The service still works after the refusals.
    with inst.smtps() as c:
        expect(c.reply().code == 220, "SMTPS after refused handshakes")
    if not tried:
        raise Skip("the local OpenSSL cannot offer TLS 1.0 or 1.1 (%s)" % "; ".join(reasons))


# --------------------------------------------------------------------------------------
# SNI

def test_tls_sni_selects_certificate():
    inst = tls_shared()
    default, other = cert_der(inst.cert), cert_der(inst.other_cert)
    cases = ((None, default), ("mx.local.test", default), ("other.test", other),
             ("unknown.example", default))
    for name, want in cases:
        with inst.smtps(server_hostname=name) as c:
            got = c.peer_cert_der()
            expect(got == want, "SMTPS with SNI %r got the %s certificate" % (
                name, "other.test" if got == other else "default" if got == default else "?"))
            expect(c.reply().code == 220, "greeting with SNI %r" % name)
        with inst.smtp() as c:
            c.greet()
            starttls(c, server_hostname=name)
            expect(c.peer_cert_der() == want, "STARTTLS with SNI %r: wrong certificate" % name)
            expect(c.cmd("EHLO client.test").code == 250, "EHLO after STARTTLS, SNI %r" % name)


# --------------------------------------------------------------------------------------
# Session resumption

def tls_session(c):
    """tls_session - the session of an SMTPS connection once its greeting (and with it the
    TLS 1.3 ticket) has been read; the connection stays open so the session stays good."""
    r = c.reply()
    expect(r.code == 220, "greeting: %r" % r)
    r = c.cmd("NOOP")
    expect(r.code == 250, "NOOP: %r" % r)
    s = c.sock.session
    expect(s is not None and s.has_ticket, "no session ticket from the server (%r)" % s)
    return s


def test_tls_session_resumption():
    inst = tls_shared()
    for ver in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = tls_client_context(minimum=ver, maximum=ver)
        with inst.smtps(ctx=ctx) as first:
            sess = tls_session(first)
            with inst.smtps(ctx=ctx, session=sess) as second:
                expect(second.sock.session_reused, "SMTPS %s: the session was not resumed"
                       % ver.name)
                expect(second.reply().code == 220, "greeting on the resumed session")
    # STARTTLS too.
    with inst.smtp() as first:
        first.greet()
        starttls(first)
        expect(first.cmd("EHLO client.test").code == 250, "EHLO")
        sess = first.sock.session
        with inst.smtp() as second:
            second.greet()
            starttls(second, session=sess)
            expect(second.sock.session_reused, "STARTTLS: the session was not resumed")


def serve_by_other_smtpd(inst, busy_pid, fn):
    """serve_by_other_smtpd - run fn() (which connects) so that an smtpd other than busy_pid
    accepts: try up to 10 times as it comes, then hold busy_pid with SIGSTOP (a stopped
    process accepts nothing, so the other one must) and resume it afterwards. fn returns
    (connection, result); this returns (pid that served, connection, result)."""
    for _ in range(10):
        c, result = fn()
        pid = inst.smtpd_pid_of(c.local_port)
        if pid is not None and pid != busy_pid:
            return pid, c, result
        c.close()
    p = proc_info(busy_pid)
    expect(p is not None, "smtpd %d is gone" % busy_pid)
    os.kill(busy_pid, signal.SIGSTOP)
    try:
        c, result = fn()
        pid = inst.smtpd_pid_of(c.local_port)
    finally:
        os.kill(busy_pid, signal.SIGCONT)
    return pid, c, result


def test_tls_resumption_across_smtpd_processes():
    inst = tls_shared()
    inst.wait_daemons({"smtpd": 2, "qmgr": 1, "local": 1})
    with inst.smtps() as first:
        sess = tls_session(first)
        pid1 = inst.smtpd_pid_of(first.local_port)
        expect(pid1 is not None, "no `connect from` log line for port %d" % first.local_port)

        def connect():
            c = inst.smtps(session=sess)
            return c, c.sock.session_reused

        pid2, second, reused = serve_by_other_smtpd(inst, pid1, connect)
        try:
            expect(pid2 is not None and pid2 != pid1,
                   "could not get a second smtpd to serve (pids %r, %r)" % (pid1, pid2))
            expect(reused, "a ticket from smtpd %d was not accepted by smtpd %d"
                   % (pid1, pid2))
            expect(second.reply().code == 220, "greeting from smtpd %d" % pid2)
            log("ticket from smtpd %d resumed by smtpd %d" % (pid1, pid2))
        finally:
            second.close()

        # A restarted smtpd gets the keys from master too.
        os.kill(pid2, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = smtpd_pids(inst)
            if len(now) >= 2 and pid2 not in now:
                break
            time.sleep(0.1)
        now = smtpd_pids(inst)
        expect(len(now) >= 2 and pid2 not in now, "smtpd %d not replaced: %r" % (pid2, now))
        fresh = [p for p in now if p != pid1][0]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not re.search(
                r"smtpd\[%d\]: \w+: started" % fresh, inst.log_text()):
            time.sleep(0.1)
        time.sleep(0.5)
        pid3, third, reused = serve_by_other_smtpd(inst, pid1, connect)
        try:
            expect(pid3 == fresh, "wanted the restarted smtpd %d, got %r" % (fresh, pid3))
            expect(reused, "the restarted smtpd %d did not resume a ticket of smtpd %d"
                   % (fresh, pid1))
        finally:
            third.close()


def wait_log(inst, pattern, timeout):
    """wait_log - wait until the log matches pattern; the match, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, inst.log_text())
        if m:
            return m
        time.sleep(0.05)
    return None


def test_tls_ticket_key_rotation():
    """A ticket stays good across one key rotation and not across two."""
    with Instance("rot", {"smtpd_processes": "1", "smtpd_tls_ticket_rotation": "3s"},
                  tls=True) as inst:
        inst.start()
        expect(wait_log(inst, r"key rotated generation=2\b", 20),
               "master logged no ticket-key rotation within 20 s")
        time.sleep(0.5)                   # smtpd has the new key by now
        with inst.smtps() as first:
            sess = tls_session(first)
            expect(wait_log(inst, r"key rotated generation=3\b", 20), "no rotation 3")
            time.sleep(0.5)
            with inst.smtps(session=sess) as c:
                expect(c.sock.session_reused, "a ticket was refused after one rotation")
            expect(wait_log(inst, r"key rotated generation=4\b", 20), "no rotation 4")
            time.sleep(0.5)
            with inst.smtps(session=sess) as c:
                expect(not c.sock.session_reused,
                       "a ticket two rotations old was still accepted")
                expect(c.reply().code == 220, "full handshake after the ticket expired")


# --------------------------------------------------------------------------------------
# STARTTLS injection (CVE-2011-0411 class)

def test_tls_starttls_injection():
    inst = tls_shared()
    for label, connect in (("smtp", inst.smtp), ("submission", inst.submission)):
        with connect() as c:
            c.greet()
            c.send(b"STARTTLS\r\nRSET\r\n")
            r = c.reply()
            expect(r.code == 220, "%s: STARTTLS: %r" % (label, r))
            extra = c.pending(0.5)
            expect(extra == b"", "%s: plaintext after the 220 to STARTTLS: %r" % (label, extra))
            c.starttls()
            c.sock.settimeout(1.5)
            try:
                leaked = c.sock.recv(4096)
            except socket.timeout:
                leaked = b""
            finally:
                c.sock.settimeout(c.timeout)
            expect(leaked == b"", "%s: the injected RSET was answered inside TLS: %r"
                   % (label, leaked))
            r = c.cmd("MAIL FROM:<sender@example.org>")
            expect(r.code == 503, "%s: MAIL right after the handshake should need EHLO "
                   "again: %r" % (label, r))
            r = c.cmd("EHLO client.test")
            expect(r.code == 250, "%s: EHLO after TLS: %r" % (label, r))
            expect("STARTTLS" not in ehlo_keywords(r), "%s: STARTTLS listed after TLS: %r"
                   % (label, r))
            expect(c.cmd("RSET").code == 250, "%s: RSET inside TLS" % label)


# --------------------------------------------------------------------------------------
# Failures stay with their session

def test_tls_handshake_failure_closes_only_that_session():
    inst = tls_shared()
    before = smtpd_pids(inst)
    with inst.smtps() as keep:
        expect(keep.reply().code == 220, "greeting")
        expect(keep.cmd("EHLO client.test").code == 250, "EHLO")

        # Garbage instead of a ClientHello on SMTPS.
        s = socket.create_connection((inst.host, inst.smtps_port), timeout=10)
        s.sendall(b"EHLO plain.test\r\n\x16\x03\x01\x00\x05hello")
        expect(wait_closed(s, 10) is not None, "SMTPS kept a garbage handshake open")
        s.close()

        # Garbage after STARTTLS.
        with inst.smtp() as c:
            c.greet()
            expect(c.cmd("STARTTLS").code == 220, "STARTTLS")
            c.send(b"\x16\x03\x01\x00\x10not a client hello at all")
            expect(wait_closed(c.sock, 10) is not None, "STARTTLS garbage kept open")

        # Stalled handshakes: dropped after smtpd_tls_handshake_timeout (3 s), and they do
        # not hold up anyone else meanwhile.
        stalled = [socket.create_connection((inst.host, inst.smtps_port), timeout=10)
                   for _ in range(20)]
        try:
            t0 = time.monotonic()
            with inst.smtps() as c:
                expect(c.reply().code == 220, "new SMTPS session while 20 handshakes stall")
            expect(time.monotonic() - t0 < 2.5, "a new session waited %.1fs behind stalled "
                   "handshakes" % (time.monotonic() - t0))
            expect(keep.cmd("NOOP").code == 250, "established session during the stall")
            for s in stalled:
                expect(wait_closed(s, 15) is not None, "a stalled handshake was not dropped")
            waited = time.monotonic() - t0
            expect(waited < 12, "stalled handshakes dropped only after %.1fs" % waited)
            log("20 stalled handshakes dropped after %.1fs" % waited)
        finally:
            for s in stalled:
                s.close()

        expect(keep.cmd("NOOP").code == 250, "the established session after the failures")
    with inst.smtps() as c:
        expect(c.reply().code == 220, "a new session after the failures")
    expect(smtpd_pids(inst) == before, "smtpd processes changed (crash?): %r -> %r"
           % (before, smtpd_pids(inst)))


# --------------------------------------------------------------------------------------
# Reload with a new certificate

def test_tls_reload_new_certificate():
    with Instance("tlsreload", {"smtpd_processes": "1"}, tls=True) as inst:
        inst.start()
        inst.wait_daemons()
        old = cert_der(inst.cert)
        tag = unique_tag("reload")
        with inst.smtp() as c:
            c.greet()
            starttls(c)
            expect(c.cmd("EHLO client.test").code == 250, "EHLO")
            expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL")
            expect(c.cmd("RCPT TO:<alice@local.test>").code == 250, "RCPT")

            # A new certificate and key in place, then SIGHUP through postern reload.
            tmp = tempfile.mkdtemp(prefix="postern-newcert-")
            try:
                cert, key = make_cert(tmp, "new", "mx2.local.test", ("DNS:localhost",))
                shutil.copyfile(key, inst.key + ".new")
                os.chmod(inst.key + ".new", 0o600)
                shutil.copyfile(cert, inst.cert + ".new")
                os.replace(inst.key + ".new", inst.key)
                os.replace(inst.cert + ".new", inst.cert)
                new = cert_der(cert)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            r = inst.postern("reload", timeout=30)
            expect(r.returncode == 0, "postern reload: %s" % r.stdout)

            deadline = time.monotonic() + 30
            got = None
            while time.monotonic() < deadline:
                try:
                    with inst.smtps(timeout=5) as n:
                        got = n.peer_cert_der()
                except (OSError, ssl.SSLError):
                    got = None
                if got == new:
                    break
                time.sleep(0.2)
            expect(got == new, "new SMTPS connections do not get the new certificate")

            # The established session still works, with its old certificate.
            expect(c.peer_cert_der() == old, "the old session's certificate changed")
            r = c.cmd("NOOP")
            expect(r.code == 250, "established TLS session after reload: %r" % r)
            r = c.cmd("DATA")
            expect(r.code == 354, "DATA after reload: %r" % r)
            c.send(make_message(tag) + b".\r\n")
            r = c.reply(timeout=30)
            expect(r.code == 250, "message on the old TLS session after reload: %r" % r)
            c.cmd("QUIT")
        check_received_tls(inst, tag, "ESMTPS")
        with inst.smtp() as c:
            c.greet()
            starttls(c)
            expect(c.peer_cert_der() == new, "STARTTLS after reload: old certificate")


# --------------------------------------------------------------------------------------
# postern check on TLS settings (needs no smtpd)

def test_tls_postern_check_validates_tls_settings():
    if not os.path.exists(POSTERN):
        raise harness.HarnessError("%s is not built (run make)" % POSTERN)
    d = tempfile.mkdtemp(prefix="postern-tlscheck-")
    try:
        c1, k1 = make_cert(d, "a", "a.test")
        c2, k2 = make_cert(d, "b", "b.test")
        owners = ""
        if IS_ROOT:
            harness.ensure_users()
        else:
            me = harness.current_user()
            owners = "mail_owner = %s\nqueue_owner = %s\nmailbox_owner = %s\n" % (me, me, me)

        def check(extra):
            with open(os.path.join(d, "postern.conf"), "w") as f:
                f.write("queue_directory = queue\nsmtp_listen = 127.0.0.1:2525\n" + owners +
                        extra)
            r = subprocess.run([POSTERN, "-c", d, "check"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                               text=True, errors="replace")
            return r.returncode, r.stdout

        good = "smtpd_tls_cert_file = a.pem\nsmtpd_tls_key_file = a.key\n"
        rc, out = check(good + "smtpd_tls_sni_certs = b.pem:b.key\n")
        expect(rc == 0, "good TLS settings refused:\n%s" % out)
        rc, out = check("smtpd_tls_cert_file = a.pem\nsmtpd_tls_key_file = b.key\n")
        expect(rc != 0 and "mismatch" in out, "key of another certificate accepted:\n%s" % out)
        rc, out = check("smtpd_tls_cert_file = a.pem\nsmtpd_tls_key_file = missing.key\n")
        expect(rc != 0 and "missing.key" in out, "missing key accepted:\n%s" % out)
        rc, out = check("smtpd_tls_cert_file = a.pem\n")
        expect(rc != 0, "certificate without key accepted:\n%s" % out)
        rc, out = check(good + "smtpd_tls_sni_certs = b.pem\n")
        expect(rc != 0, "SNI item without a key accepted:\n%s" % out)
        rc, out = check("smtps_listen = 127.0.0.1:4650\n")
        expect(rc != 0 and "smtps_listen" in out, "SMTPS without certificate:\n%s" % out)
        os.chmod(k1, 0o644)
        rc, out = check(good)
        expect(rc != 0 and "readable" in out, "world-readable key accepted:\n%s" % out)
        os.chmod(k1, 0o600)
        if IS_ROOT:
            import pwd
            pw = pwd.getpwnam("postern")
            os.chown(k1, pw.pw_uid, pw.pw_gid)
            rc, out = check(good)
            expect(rc != 0 and "mail_owner" in out, "key owned by mail_owner accepted:\n%s"
                   % out)
            os.chown(k1, 0, 0)
        rc, out = check(good + "smtpd_tls_ciphers = NO-SUCH-CIPHER\n")
        expect(rc != 0, "bad cipher list accepted:\n%s" % out)
    finally:
        shutil.rmtree(d, ignore_errors=True)
