"""test_connect_phase - what happens before the greeting, and stress (issue 6).

- greet pause: a port-25 client not in smtpd_client_limit_exceptions waits
  smtpd_greet_pause (1 s) for its 220; one that talks first gets
  `554 5.5.1 Error: talked before the greeting` and is closed (logged `pregreet from`,
  counted); submission and SMTPS have no pause and do not refuse early talk (it is
  buffered and answered after the greeting).
- an exempt client (127.0.0.1 in mynetworks) is greeted at once, and its early talk is
  buffered, not refused.
- stress: with smtpd_processes = 1 and smtpd_max_sessions = 10, the 8th session logs the
  start of stress, the 11th..15th connections get `421 4.3.2` at once, the sessions get
  the shorter stress idle timeout, and the end of stress is logged once they are gone.
- smtpd_delay_reject = no: the client access check before the greeting: DEFER gives
  `421 4.7.1` and a close, REJECT without a text the default one (the full REJECT path,
  503 to MAIL and 221 to QUIT, is in test_policy.py).

Timing asserts are lower bounds set by the server's own timers, or upper bounds with a wide
margin against a pause several times longer, so a busy machine does not make them fail.
Clients other than 127.0.0.1 are 127.0.0.2 and 127.0.0.3, bound as source addresses.
"""

import json
import os
import socket
import time

from harness import Instance, RawSMTP, Skip, expect, log

TIMEOUT = {"test_connect_stress_limits_and_refusal": 120}

UNTRUSTED = {"mynetworks": "192.0.2.0/24"}      # 127.0.0.0/8 neither relays nor is exempt


def _raw_from(inst, src, port=None, timeout=15.0):
    """_raw_from - a RawSMTP connection from source address src (default: the SMTP port)."""
    c = RawSMTP.__new__(RawSMTP)
    c.sock = socket.create_connection((inst.host, port or inst.port), timeout=timeout,
                                      source_address=(src, 0))
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.timeout = timeout
    c.buf = b""
    c.local_port = c.sock.getsockname()[1]
    return c


def _closed(c, timeout=10.0):
    """_closed - True if the server closes the connection within timeout (after what
    was already read); a reset counts as closed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c.sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = c.sock.recv(4096)
        except socket.timeout:
            return False
        except ConnectionError:
            return True
        if not chunk:
            return True
        c.buf += chunk
    return False


def _wait_log(inst, needle, count=1, timeout=15.0):
    """_wait_log - wait (bounded) until needle appears count times; returns the count."""
    deadline = time.monotonic() + timeout
    while True:
        n = inst.log_text().count(needle)
        if n >= count or time.monotonic() >= deadline:
            return n
        time.sleep(0.05)


def _smtpd_counter(inst, name):
    """_smtpd_counter - a counter summed over the smtpd processes (`postern stats --json`)."""
    r = inst.postern("stats", "--json")
    expect(r.returncode == 0, "stats --json exited %d: %s" % (r.returncode, r.stdout))
    daemons = json.loads(r.stdout)["daemons"]
    return sum(d["counters"].get(name, 0) for d in daemons if d["name"] == "smtpd")


def _timed_greeting(c):
    """_timed_greeting - (reply, seconds) for the banner of a connection just opened."""
    t0 = time.monotonic()
    r = c.reply()
    return r, time.monotonic() - t0


def test_connect_greet_pause_and_pregreet():
    """Port 25, 127.0.0.1 not exempt: the 220 comes after the greet pause (>= 0.8 s); a
    client that sends EHLO at once gets 554 5.5.1 and is closed, logged and counted; one
    that talks and hangs up is logged too; submission answers early talk after its
    greeting; SMTPS greets after the handshake; a polite client still gets served."""
    with Instance("greet", dict(UNTRUSTED), tls=True) as inst:
        inst.start()
        with inst.smtp() as c:
            r, took = _timed_greeting(c)
            expect(r.code == 220, "banner: %r" % r)
            expect(took >= 0.8, "greeting after %.3f s: want the 1 s greet pause" % took)
            expect(c.cmd("EHLO client.test").code == 250, "EHLO after the pause")
            expect(c.cmd("QUIT").code == 221, "QUIT")

        before = inst.log_text().count("pregreet from [127.0.0.1]")
        with inst.smtp() as c:
            c.send(b"EHLO early.test\r\n")
            r = c.reply(timeout=15)
            expect(r.code == 554 and r.text == "5.5.1 Error: talked before the greeting",
                   "talking before the greeting: want 554 5.5.1, got %r" % r)
            expect(_closed(c), "the session stays open after the pregreet 554")
        expect(_wait_log(inst, "pregreet from [127.0.0.1]", before + 1) == before + 1,
               "no `pregreet from [127.0.0.1]` log line")

        # talk and hang up at once: still found out and logged
        with inst.smtp() as c:
            c.send(b"HELO gone.test\r\n")
            c.sock.shutdown(socket.SHUT_WR)
            _closed(c, 15)
        expect(_wait_log(inst, "pregreet from [127.0.0.1]", before + 2) == before + 2,
               "a client that talked and hung up was not logged as pregreet")
        n = _smtpd_counter(inst, "pregreet")
        expect(n >= 2, "smtpd counter pregreet = %r, want >= 2" % n)

        # submission: no pregreet check, early talk is answered after the greeting
        with inst.submission() as c:
            c.send(b"EHLO early.test\r\n")
            r = c.reply()
            expect(r.code == 220, "submission banner after early EHLO: %r" % r)
            r = c.reply()
            expect(r.code == 250, "submission: early EHLO answered after the banner: %r" % r)
            expect(c.cmd("QUIT").code == 221, "QUIT")

        with inst.smtps() as c:
            r = c.reply()
            expect(r.code == 220, "SMTPS banner after the handshake: %r" % r)
            expect(c.cmd("EHLO client.test").code == 250, "EHLO over SMTPS")
            expect(c.cmd("QUIT").code == 221, "QUIT")

        with inst.smtp() as c:
            c.greet()
            expect(c.cmd("NOOP").code == 250, "NOOP")
            expect(c.cmd("QUIT").code == 221, "QUIT")


def test_connect_exempt_client_greeted_at_once():
    """127.0.0.1 in mynetworks (so in smtpd_client_limit_exceptions) with a 5 s greet pause:
    the banner comes well before it would end, and an EHLO sent before the banner is
    answered after it instead of being refused."""
    with Instance("exempt", {"smtpd_greet_pause": "5s"}) as inst:
        inst.start()
        with inst.smtp() as c:
            r, took = _timed_greeting(c)
            expect(r.code == 220, "banner: %r" % r)
            expect(took < 4.0, "exempt client waited %.3f s for the banner (pause 5 s)" % took)
            expect(c.cmd("QUIT").code == 221, "QUIT")
        with inst.smtp() as c:
            c.send(b"EHLO early.test\r\n")
            r = c.reply()
            expect(r.code == 220, "banner after early EHLO (exempt): %r" % r)
            r = c.reply()
            expect(r.code == 250, "early EHLO of an exempt client: want 250, got %r" % r)
            expect(c.cmd("QUIT").code == 221, "QUIT")
        expect("pregreet from" not in inst.log_text(), "an exempt client was taken as pregreet")


def test_connect_stress_limits_and_refusal():
    """One smtpd, smtpd_max_sessions = 10, threshold 80 %: stress begins with the 8th
    session (logged once), the 11th..15th connections get 421 4.3.2 at once, the sessions
    open get the 5 s stress idle timeout, and the end of stress is logged once all are
    gone; a new client is then served normally."""
    conf = {"smtpd_processes": "1", "smtpd_max_sessions": "10",
            "smtpd_stress_timeout": "5s", "smtpd_peername_lookup": "no"}
    with Instance("stress", conf) as inst:
        inst.start()
        inst.wait_daemons({"smtpd": 1})
        # the harness's own probe session must be gone before we count
        expect(_wait_log(inst, "disconnect from [127.0.0.1]") >= 1, "probe session not over")
        time.sleep(0.2)
        expect("stress:" not in inst.log_text(), "stress before any session")
        conns = []
        try:
            for i in range(10):
                c = inst.smtp(timeout=15)
                conns.append(c)
                r = c.reply()
                expect(r.code == 220, "session %d banner: %r" % (i + 1, r))
                if i == 6:
                    expect("stress:" not in inst.log_text(), "stress logged at 7 sessions")
                if i == 7:
                    expect(_wait_log(inst, "stress: sessions=8 ", 1, 5) == 1,
                           "no stress log line at the 8th session")
            for i in range(10, 15):
                t0 = time.monotonic()
                with inst.smtp(timeout=5) as c:
                    r = c.reply(timeout=5)
                    took = time.monotonic() - t0
                    expect(r.code == 421 and r.text.startswith("4.3.2"),
                           "connection %d over smtpd_max_sessions: want 421 4.3.2, got %r"
                           % (i + 1, r))
                    expect(_closed(c, 5), "connection %d stays open after 421" % (i + 1))
                log("connection %d refused after %.3f s" % (i + 1, took))
            # the stress idle timeout: 421 4.4.2 well before smtpd_timeout (60 s)
            t0 = time.monotonic()
            r = conns[9].reply(timeout=30)
            expect(r.code == 421 and r.text.startswith("4.4.2"),
                   "idle session under stress: want 421 4.4.2, got %r" % r)
            log("stress idle timeout after %.1f s" % (time.monotonic() - t0))
        finally:
            for c in conns:
                c.close()
        expect(_wait_log(inst, "stress over:", 1, 40) == 1, "no `stress over` log line")
        expect(inst.log_text().count("stress: sessions=") == 1,
               "the start of stress was logged more than once")
        with inst.smtp() as c:
            c.greet()
            expect(c.cmd("QUIT").code == 221, "QUIT after stress")
        expect(_smtpd_counter(inst, "stress") == 1, "smtpd counter stress != 1")
        expect(_smtpd_counter(inst, "connections_refused") >= 5, "connections_refused < 5")


CLIENT_CIDR = """# client access for test_connect_phase
127.0.0.2/32    REJECT
127.0.0.3/32    DEFER Client deferred by connect test
"""


def test_connect_client_check_before_greeting():
    """smtpd_delay_reject = no with a cidr: client table: 127.0.0.3 (DEFER) gets 421 4.7.1
    with the table's text and is closed; 127.0.0.2 (REJECT without text) gets the 554
    greeting `Client host rejected: Access denied` and 503 to MAIL; 127.0.0.1 gets 220."""
    inst = Instance("clientcheck", dict(UNTRUSTED, smtpd_greet_pause="0",
                                        smtpd_peername_lookup="no",
                                        smtpd_delay_reject="no",
                                        smtpd_client_limit_exceptions="127.0.0.0/8"))
    with inst:
        path = os.path.join(inst.dir, "client.cidr")
        with open(path, "w") as f:
            f.write(CLIENT_CIDR)
        inst.conf["smtpd_client_access"] = "cidr:" + path
        inst._write_files()
        inst.start()
        with _raw_from(inst, "127.0.0.2") as c:
            r = c.reply()
            if r.code == 220:
                raise Skip("no 554 for a REJECTed client with smtpd_delay_reject = no: "
                           "smtpd_policy_client is still a stub")
            expect(r.code == 554 and r.text == "5.7.1 Client host rejected: Access denied",
                   "greeting for a REJECTed client: %r" % r)
            r = c.cmd("MAIL FROM:<sender@example.org>")
            expect(r.code == 503, "MAIL after a 554 greeting: %r" % r)
            expect(c.cmd("QUIT").code == 221, "QUIT after a 554 greeting")
        with _raw_from(inst, "127.0.0.3") as c:
            r = c.reply()
            expect(r.code == 421 and r.text.startswith("4.7.1")
                   and "Client deferred by connect test" in r.text,
                   "greeting for a DEFERred client: want 421 4.7.1, got %r" % r)
            expect(_closed(c), "the session stays open after 421")
        with inst.smtp() as c:
            c.greet()
            expect(c.cmd("QUIT").code == 221, "QUIT")
