"""test_restrict - Postfix's built-in reject_* restrictions (daemons/smtpd/smtpd_restrict.c).

One instance with every one switched on and 127.0.0.0/8 outside mynetworks; clients are
127.0.0.1 (named localhost by the resolver's own loopback zone, forward-confirmed) and
127.0.0.2 (no reverse name), bound as source addresses. With smtpd_delay_reject = yes
(the default) every refusal is the reply to RCPT, as with Postfix:
- EHLO localhost: 504 5.5.2 `<localhost>: Helo command rejected: need fully-qualified
  hostname`; EHLO -bad-.example: 501 5.5.2 `... Invalid name`;
- MAIL FROM:<u@localhost>: 504 5.5.2 `Sender address rejected: need fully-qualified
  address`; RCPT TO:<alice@localdom> (a local domain without a dot): the same for the
  recipient; <postmaster> is never refused as not fully qualified;
- from 127.0.0.2: 450 4.7.25 `cannot find your reverse hostname, [127.0.0.2]`;
- a clean session from 127.0.0.1 is accepted, and so is 127.0.0.2 once an access table
  says OK for it (the table comes first), or when it is in mynetworks.
"""

import os

from harness import Instance, expect, log
from test_connect_phase import UNTRUSTED, _raw_from

RESTRICT = {
    "smtpd_reject_unknown_client_hostname": "yes",
    "smtpd_reject_unknown_reverse_client_hostname": "yes",
    "smtpd_reject_invalid_helo_hostname": "yes",
    "smtpd_reject_non_fqdn_helo_hostname": "yes",
    "smtpd_reject_non_fqdn_sender": "yes",
    "smtpd_reject_non_fqdn_recipient": "yes",
    "smtpd_greet_pause": "0",
    "local_domains": "local.test localdom",
}


def _rcpt(inst, src, helo, sender, rcpt):
    """_rcpt - EHLO, MAIL, RCPT from source address src; returns the RCPT reply."""
    c = _raw_from(inst, src)
    try:
        expect(c.reply().code == 220, "no greeting")
        expect(c.cmd("EHLO %s" % helo).code == 250, "EHLO %s refused" % helo)
        r = c.cmd("MAIL FROM:<%s>" % sender)
        expect(r.code == 250, "MAIL FROM:<%s>: %r" % (sender, r))
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        c.cmd("QUIT")
        return r
    finally:
        c.close()


def _expect_reply(r, code, enh, text):
    expect(r.code == code and r.text.startswith(enh) and text in r.text,
           "want %d %s ...%s..., got %r" % (code, enh, text, r))


def test_restrict_builtin_rejects():
    conf = dict(UNTRUSTED)
    conf.update(RESTRICT)
    with Instance("restrict", conf=conf) as inst:
        inst.start()
        ok = ("127.0.0.1", "client.example.org", "u@example.org", "alice@local.test")
        r = _rcpt(inst, *ok)
        expect(r.code == 250, "clean session from 127.0.0.1 refused: %r\n%s"
               % (r, inst.log_tail(10)))

        r = _rcpt(inst, "127.0.0.1", "localhost", ok[2], ok[3])
        _expect_reply(r, 504, "5.5.2",
                      "<localhost>: Helo command rejected: need fully-qualified hostname")
        r = _rcpt(inst, "127.0.0.1", "-bad-.example", ok[2], ok[3])
        _expect_reply(r, 501, "5.5.2", "Helo command rejected: Invalid name")
        r = _rcpt(inst, "127.0.0.1", ok[1], "u@localhost", ok[3])
        _expect_reply(r, 504, "5.5.2",
                      "<u@localhost>: Sender address rejected: need fully-qualified address")
        r = _rcpt(inst, "127.0.0.1", ok[1], ok[2], "alice@localdom")
        _expect_reply(r, 504, "5.5.2", "Recipient address rejected: need fully-qualified")
        r = _rcpt(inst, "127.0.0.1", ok[1], ok[2], "postmaster")
        expect(r.code != 504, "<postmaster> refused as not fully qualified: %r" % r)
        r = _rcpt(inst, "127.0.0.1", ok[1], "", ok[3])
        expect(r.code == 250, "<> refused: %r" % r)

        r = _rcpt(inst, "127.0.0.2", *ok[1:])
        _expect_reply(r, 450, "4.7.25", "cannot find your reverse hostname, [127.0.0.2]")
        text = inst.log_text()
        expect("(reject_unknown_reverse_client_hostname)" in text
               and "(reject_non_fqdn_sender)" in text, "the restriction is not logged")
        log("every restriction refused as Postfix words it")


def test_restrict_access_ok_and_mynetworks_exempt():
    conf = dict(UNTRUSTED)
    conf.update(RESTRICT)
    conf["smtpd_client_access"] = "cidr:client_access"
    inst = Instance("restrict-ok", conf=conf)
    with open(os.path.join(inst.dir, "client_access"), "w") as f:
        f.write("127.0.0.2/32 OK\n")
    with inst:
        inst.start()
        r = _rcpt(inst, "127.0.0.2", "client.example.org", "u@example.org",
                  "alice@local.test")
        expect(r.code == 250, "an access OK did not let 127.0.0.2 through: %r" % r)
    conf = dict(RESTRICT, mynetworks="127.0.0.0/8")
    with Instance("restrict-mynet", conf=conf) as inst:
        inst.start()
        r = _rcpt(inst, "127.0.0.2", "localhost", "u@localhost", "alice@local.test")
        expect(r.code == 250, "a client in mynetworks was refused: %r" % r)
