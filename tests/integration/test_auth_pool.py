"""test_auth_pool - AUTH password checks do not stall smtpd's event loop.

A yescrypt check costs tens of milliseconds; smtpd runs it on worker threads
(daemons/smtpd/smtpd_pwcheck.c) while the session waits with its input paused. Here one
smtpd process (smtpd_processes = 1, so every session shares its loop) gets 20 AUTH PLAIN
attempts with a wrong password at once, on 20 SMTPS sessions, while another session sends
NOOP after NOOP; each NOOP must be answered promptly. smtpd_auth_failure_delay is 0 on this
instance, so each 535 leaves as soon as its check is done and the last one marks the end of
the checking; only NOOPs sent before it count. The latencies are logged (typically a few
milliseconds; a loop blocked by the checks would show hundreds) and asserted loosely: each
under 1 s. Then the sessions are closed while more checks are queued, to show that results
for dead sessions are dropped safely, and smtpd still serves a right password.
"""

import base64
import re
import statistics
import threading
import time

import harness
from harness import Instance, expect, log

TIMEOUT = {"test_auth_pool_noop_prompt_during_checks": 120}

USER = "pool@local.test"
PASSWORD = "pool secret 123"
PARALLEL = 20


def b64(s):
    return base64.b64encode(s.encode("utf-8")).decode("ascii")


def smtps_ehlo(inst):
    c = inst.smtps(timeout=30)
    try:
        expect(c.reply().code == 220, "SMTPS greeting")
        expect(c.cmd("EHLO client.test").code == 250, "EHLO")
    except BaseException:
        c.close()
        raise
    return c


def test_auth_pool_noop_prompt_during_checks():
    conf = {"smtpd_processes": "1", "smtpd_auth_failure_delay": "0s",
            "smtpd_auth_failure_limit": "3", "mynetworks": "192.0.2.0/24",
            "smtpd_max_sessions": "100"}
    with Instance("authpool", conf, tls=True, auth_users={USER: PASSWORD}) as inst:
        inst.start()
        kinds = inst.wait_daemons({"smtpd": 1, "qmgr": 1})
        expect(len(kinds["smtpd"]) == 1, "want one smtpd: %r" % kinds["smtpd"])

        conns = [smtps_ehlo(inst) for _ in range(PARALLEL)]
        noop = inst.smtp(timeout=30)
        try:
            noop.greet()
            replies = [None] * PARALLEL
            done_at = [None] * PARALLEL

            def wait_reply(i):
                try:
                    replies[i] = conns[i].reply(timeout=60)
                except Exception as e:           # recorded, asserted below
                    replies[i] = e
                done_at[i] = time.monotonic()

            threads = [threading.Thread(target=wait_reply, args=(i,), daemon=True)
                       for i in range(PARALLEL)]
            for t in threads:
                t.start()
            line = "AUTH PLAIN " + b64("\0%s\0wrong password" % USER) + "\r\n"
            t0 = time.monotonic()
            for c in conns:
                c.send(line)
            lat = []
            while any(t.is_alive() for t in threads) and time.monotonic() - t0 < 60:
                s = time.monotonic()
                r = noop.cmd("NOOP", timeout=30)
                e = time.monotonic()
                expect(r.code == 250, "NOOP: %r" % r)
                if any(t.is_alive() for t in threads):
                    lat.append(e - s)           # answered while checks were still pending
                time.sleep(0.01)                # stay far below smtpd_command_limit
            for t in threads:
                t.join(timeout=60)
            span = max(d for d in done_at if d is not None) - t0
            for i, r in enumerate(replies):
                expect(not isinstance(r, Exception), "session %d: %r" % (i, r))
                expect(r.code == 535 and "5.7.8" in r.text, "session %d: want 535 5.7.8, got %r"
                       % (i, r))
            expect(lat, "no NOOP was answered while the checks ran (%.3fs)" % span)
            log("%d wrong-password checks took %.0f ms; %d NOOPs meanwhile: median %.1f ms, "
                "max %.1f ms" % (PARALLEL, span * 1000, len(lat),
                                 statistics.median(lat) * 1000, max(lat) * 1000))
            expect(max(lat) < 1.0, "a NOOP waited %.3fs while passwords were checked"
                   % max(lat))
            # a loop blocked by the checks answers one NOOP at the end of them, a free one
            # every 10 ms or so
            expect(len(lat) >= 2, "only %d NOOP answered during %.0f ms of checks"
                   % (len(lat), span * 1000))

            # Sessions that go away while their checks are queued or running: the results
            # are dropped, smtpd lives on.
            for c in conns:
                c.send(line)
                c.close()
            expect(noop.cmd("NOOP").code == 250, "NOOP after the abandoned checks")
        finally:
            for c in conns:
                c.close()
            noop.close()
        time.sleep(0.5)
        c = smtps_ehlo(inst)
        with c:
            r = c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD)), timeout=30)
            expect(r.code == 235, "right password after the abandoned checks: %r" % r)
        kinds = inst.wait_daemons({"smtpd": 1})
        expect([p["pid"] for p in kinds["smtpd"]] == [p["pid"] for p in
                                                        inst.daemons("smtpd")],
               "smtpd restarted")
        text = inst.log_text()
        errs = re.findall(r"smtpd\[\d+\]: err: [^\n]*", text)
        expect(not errs, "smtpd errors: %r" % errs)
        expect(PASSWORD not in text and "wrong password" not in text, "a password in the log")
