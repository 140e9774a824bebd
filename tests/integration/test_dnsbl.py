"""test_dnsbl - DNS policy in smtpd: blocklists at connect, reject_unknown_sender_domain.

dnsmasq on a free loopback port (start_dnsmasq from test_smtp_agent.py, used through
`dns_servers`) answers under .test: bl.test lists 127.0.0.2 (answer 127.0.0.2), 127.0.0.3
(127.0.0.3) and 127.0.0.4 (127.0.0.9, outside the filter used below); w.test lists
127.0.0.3 and 127.0.0.4. Sender domains: aonly.test (A only), mx.test (MX), nullmx.test
(null MX, RFC 7505); any other name under .test is NXDOMAIN. Clients come from 127.0.0.x
bound as source addresses; mynetworks is 192.0.2.0/24, so none of them is exempt.

- delay_reject = yes: a listed client gets 554 5.7.1 at RCPT, a clean one is served;
  unknown sender domain 450 4.1.8 at RCPT (the default code), null MX 550 5.7.27, A-only
  and MX domains accepted.
- delay_reject = no, weights and a filter, threshold 3: 127.0.0.3 (2 + 1) gets a 554
  greeting, 127.0.0.2 (2) and 127.0.0.4 (filtered out: 1) are served; with the reject code
  550 an unknown sender domain is 550 5.1.8 at MAIL.
- a DNS server that never answers: the greeting comes after smtpd_dnsbl_timeout (fail
  open), and the sender domain check answers 450 4.1.8 after smtpd_peername_timeout.
"""

import socket
import time

from harness import Instance, expect, free_port
from test_connect_phase import _raw_from, _smtpd_counter
from test_smtp_agent import start_dnsmasq, stop

TIMEOUT = {"test_dnsbl_dead_server_fails_open": 60}

RECORDS = [
    "--host-record=2.0.0.127.bl.test,127.0.0.2",
    "--host-record=3.0.0.127.bl.test,127.0.0.3",
    "--host-record=4.0.0.127.bl.test,127.0.0.9",
    "--host-record=3.0.0.127.w.test,127.0.0.5",
    "--host-record=4.0.0.127.w.test,127.0.0.5",
    "--host-record=aonly.test,127.0.0.1",
    "--mx-host=mx.test,mail.mx.test,10", "--host-record=mail.mx.test,127.0.0.1",
    "--mx-host=nullmx.test,.,0", "--host-record=nullmx.test,127.0.0.1",
]

BASE = {"mynetworks": "192.0.2.0/24", "smtpd_greet_pause": "0",
        "smtpd_peername_lookup": "no", "smtpd_reject_unknown_sender_domain": "yes"}

BLOCKED = "5.7.1 Service unavailable; client [%s] blocked using %s"


def _session(inst, src):
    """_session - a connection from src, greeted with EHLO; returns it."""
    c = _raw_from(inst, src)
    r = c.reply()
    expect(r.code == 220, "greeting for %s: %r" % (src, r))
    expect(c.cmd("EHLO client.test").code == 250, "EHLO from %s" % src)
    return c


def _rcpt_after(inst, src, sender):
    """_rcpt_after - (MAIL reply, RCPT reply or None) of one transaction from src."""
    with _session(inst, src) as c:
        m = c.cmd("MAIL FROM:<%s>" % sender)
        r = c.cmd("RCPT TO:<alice@local.test>") if m.code == 250 else None
        c.cmd("QUIT")
        return m, r


def test_dnsbl_delay_reject_at_rcpt():
    """delay_reject = yes: 554 at RCPT for a listed client, logged and counted; a clean
    client is served; the sender domain checks answer at RCPT."""
    dport = free_port()
    dns = start_dnsmasq(dport, RECORDS)
    try:
        with Instance("dnsbl", dict(BASE, smtpd_dnsbl_sites="bl.test",
                                    dns_servers="127.0.0.1@%d" % dport)) as inst:
            inst.start()
            m, r = _rcpt_after(inst, "127.0.0.2", "s@aonly.test")
            expect(m.code == 250, "MAIL from a listed client: %r" % m)
            expect(r.code == 554 and r.text == BLOCKED % ("127.0.0.2", "bl.test"),
                   "RCPT from a listed client: %r" % r)
            expect("dnsbl: client=[127.0.0.2] blocked" in inst.log_text(), "no dnsbl log line")
            expect(_smtpd_counter(inst, "dnsbl_rejected") >= 1, "dnsbl_rejected not counted")
            m, r = _rcpt_after(inst, "127.0.0.5", "s@aonly.test")
            expect(r is not None and r.code == 250, "clean client, A-only domain: %r %r" % (m, r))
            m, r = _rcpt_after(inst, "127.0.0.5", "s@mx.test")
            expect(r is not None and r.code == 250, "MX domain: %r %r" % (m, r))
            m, r = _rcpt_after(inst, "127.0.0.5", "s@nx.test")
            expect(m.code == 250, "MAIL, unknown domain, delay_reject: %r" % m)
            expect(r.code == 450 and r.text == "4.1.8 <s@nx.test>: Sender address rejected: "
                   "Domain not found", "RCPT, unknown domain: %r" % r)
            m, r = _rcpt_after(inst, "127.0.0.5", "s@nullmx.test")
            expect(r.code == 550 and r.text.startswith("5.7.27 <s@nullmx.test>: Sender "
                                                       "address rejected: Domain nullmx.test"),
                   "RCPT, null MX: %r" % r)
            m, r = _rcpt_after(inst, "127.0.0.5", "")
            expect(r is not None and r.code == 250, "null sender: %r %r" % (m, r))
    finally:
        stop(dns)


def test_dnsbl_weights_at_connect():
    """delay_reject = no, `bl.test=127.0.0.[2..3]*2 w.test`, threshold 3: 554 greeting and
    503 for 127.0.0.3 only; unknown sender domain 550 5.1.8 at MAIL."""
    dport = free_port()
    dns = start_dnsmasq(dport, RECORDS)
    try:
        conf = dict(BASE, smtpd_delay_reject="no", smtpd_dnsbl_threshold="3",
                    smtpd_dnsbl_sites="bl.test=127.0.0.[2..3]*2 w.test",
                    smtpd_unknown_address_reject_code="550",
                    dns_servers="127.0.0.1@%d" % dport)
        with Instance("dnsblw", conf) as inst:
            inst.start()
            with _raw_from(inst, "127.0.0.3") as c:
                r = c.reply()
                expect(r.code == 554 and r.text == BLOCKED % ("127.0.0.3", "bl.test"),
                       "greeting for 127.0.0.3 (score 3): %r" % r)
                expect(c.cmd("MAIL FROM:<s@aonly.test>").code == 503, "MAIL after 554")
                expect(c.cmd("QUIT").code == 221, "QUIT after 554")
            expect("listed=bl.test(2) w.test(1)" in inst.log_text(), "sites not logged")
            for src in ("127.0.0.2", "127.0.0.4"):
                m, r = _rcpt_after(inst, src, "s@aonly.test")
                expect(r is not None and r.code == 250, "%s below the threshold: %r %r"
                       % (src, m, r))
            m, r = _rcpt_after(inst, "127.0.0.2", "s@nx.test")
            expect(m.code == 550 and m.text == "5.1.8 <s@nx.test>: Sender address rejected: "
                   "Domain not found", "MAIL, unknown domain, code 550: %r" % m)
            m, r = _rcpt_after(inst, "127.0.0.2", "s@nullmx.test")
            expect(m.code == 550 and m.text.startswith("5.7.27"), "MAIL, null MX: %r" % m)
    finally:
        stop(dns)


def test_dnsbl_dead_server_fails_open():
    """A DNS server that never answers: greeted after about smtpd_dnsbl_timeout (1 s), not
    later than 6 s; the sender domain lookup gives 450 4.1.8 after its 1 s bound."""
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))        # bound, never read: queries vanish
    try:
        conf = dict(BASE, smtpd_dnsbl_sites="bl.test", smtpd_dnsbl_timeout="1s",
                    smtpd_peername_timeout="1s",
                    dns_servers="127.0.0.1@%d" % dead.getsockname()[1])
        with Instance("dnsbldead", conf) as inst:
            inst.start()
            t0 = time.monotonic()
            with _raw_from(inst, "127.0.0.2") as c:
                r = c.reply(timeout=10)
                took = time.monotonic() - t0
                expect(r.code == 220, "greeting with a dead DNSBL: %r" % r)
                expect(0.8 <= took < 6, "greeting after %.2f s" % took)
                expect(c.cmd("EHLO client.test").code == 250, "EHLO")
                t0 = time.monotonic()
                m = c.cmd("MAIL FROM:<s@aonly.test>", timeout=10)
                expect(m.code == 250 and time.monotonic() - t0 < 6, "MAIL: %r" % m)
                r = c.cmd("RCPT TO:<alice@local.test>")
                expect(r.code == 450 and r.text.startswith("4.1.8"), "RCPT: %r" % r)
                c.cmd("QUIT")
    finally:
        dead.close()
