"""test_peername - smtpd names its client before the greeting (smtpd_dns.c).

The address's PTR name counts only when its A/AAAA records give the address back
(forward-confirmed, as Postfix does). 127.0.0.1 is "localhost" from libunbound's default
local zones, with no network, in milliseconds; smtpd logs the outcome at debug level as
`peername: addr=127.0.0.1 ptr=localhost name=localhost ms=N`. The HELO name sent here is
client.test and myhostname is mx.local.test, so "localhost" in Received: can only come
from the lookup.

These tests skip while smtpd's session code does not call smtpd_dns_client() yet (no
peername line in the log after a session).
"""

import re
import time

from harness import Instance, RawSMTP, Skip, expect, log, make_message, split_added_headers, \
    unique_tag

LINE = re.compile(r"peername: addr=127\.0\.0\.1 ptr=(\S+) name=(\S+) ms=(\d+)")


def _session(inst, tag):
    """_session - one message from 127.0.0.1 (HELO client.test); seconds to the banner."""
    t0 = time.monotonic()
    with RawSMTP(inst.host, inst.port) as c:
        r = c.reply()
        banner_s = time.monotonic() - t0
        expect(r.code == 220, "banner: %r" % r)
        expect(c.cmd("EHLO client.test").code == 250, "EHLO refused")
        expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL refused")
        expect(c.cmd("RCPT TO:<alice@local.test>").code == 250, "RCPT refused")
        expect(c.cmd("DATA").code == 354, "DATA refused")
        c.send(make_message(tag).replace(b"\r\n.", b"\r\n..") + b".\r\n")
        r = c.reply()
        expect(r.code == 250, "end of data: %r" % r)
        c.cmd("QUIT")
    return banner_s


def _peername_line(inst, timeout=5.0):
    """_peername_line - (ptr, name, ms) from the log, or Skip if smtpd never looked."""
    deadline = time.monotonic() + timeout
    while True:
        m = LINE.search(inst.log_text())
        if m:
            return m.group(1), m.group(2), int(m.group(3))
        if time.monotonic() >= deadline:
            raise Skip("smtpd does not look up client names yet (no peername log line)")
        time.sleep(0.1)


def test_peername_localhost_fast():
    """127.0.0.1 is named and confirmed as localhost, well within a second."""
    with Instance("peername", conf={"log_level": "debug"}) as inst:
        inst.start()
        banner_s = _session(inst, unique_tag("peer"))
        ptr, name, ms = _peername_line(inst)
        log("ptr=%s name=%s lookup %d ms, banner after %.3f s" % (ptr, name, ms, banner_s))
        expect(ptr == "localhost" and name == "localhost",
               "127.0.0.1 named ptr=%s name=%s, want localhost\n%s"
               % (ptr, name, inst.log_tail()))
        expect(ms < 1000, "the lookup of 127.0.0.1 took %d ms" % ms)


def test_peername_in_received():
    """The confirmed name is in the Received: header smtpd adds."""
    with Instance("peername-rcvd", conf={"log_level": "debug"}) as inst:
        inst.start()
        tag = unique_tag("peer-rcvd")
        _session(inst, tag)
        _peername_line(inst)
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "message %s not delivered" % tag)
        added, _ = split_added_headers(inst.maildirs["alice"].by_tag(tag)[0])
        rcvd = [a for a in added if a.lower().startswith(b"received:")]
        expect(rcvd, "no Received: header: %r" % added)
        log("Received: %r" % rcvd[0][:200])
        expect(b"localhost" in rcvd[0].lower(),
               "Received: does not name the client localhost: %r" % rcvd[0])
