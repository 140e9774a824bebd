"""test_relay_auth - the smtp agent authenticates to a smarthost (smtp_sasl_password_map).

The smarthost is the run's shared TLS instance (harness.tls_shared): its submission port
offers AUTH only inside TLS and takes mail only from authenticated clients. A second
instance (local domain a.test) routes local.test to that port with smtp_tls_security_level =
encrypt and a password map keyed by the next hop `[127.0.0.1]:PORT`, as Postfix's
smtp_sasl_password_maps:
- the right password: the message arrives, and the smarthost's Received: header names the
  authenticated sender;
- a wrong password: the smarthost answers 535 5.7.8, the message stays queued (deferred with
  4.7.8, not bounced), and nothing arrives.
"""

import os

from harness import (TLS_SHARED_USERS, Instance, expect, log, make_message, tls_shared,
                     unique_tag)
from test_relay import _submit, _wait_log

USER = "demo@local.test"


def _sender_instance(name, port, password):
    """_sender_instance - an instance that relays local.test to port with USER:password.
    Not started."""
    inst = Instance(name, conf={
        "local_domains": "a.test", "mynetworks": "127.0.0.0/8", "queue_retry_min": "1s",
        "queue_retry_max": "2s", "transport_map": "transport",
        "smtp_tls_security_level": "encrypt", "smtp_sasl_password_map": "sasl_passwd"})
    maps = {"transport": "local.test smtp:[127.0.0.1]:%d\n" % port,
            "sasl_passwd": "[127.0.0.1]:%d %s:%s\n" % (port, USER, password)}
    for name, text in maps.items():
        path = os.path.join(inst.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        inst.postern("map", "build", path, check=True)
    return inst


def test_relay_auth_to_smarthost():
    hub = tls_shared()
    with _sender_instance("relay-auth", hub.submission_port, TLS_SHARED_USERS[USER]) as inst:
        inst.start()
        tag = unique_tag("sasl")
        qid = _submit(inst, tag, "alice@local.test", sender="bob@a.test")
        got = hub.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "not delivered through the smarthost: %r\n%s"
               % (got, inst.log_tail(20)))
        data = hub.maildirs["alice"].by_tag(tag)[0]
        expect(b"(Authenticated sender: %s)" % USER.encode() in data,
               "the smarthost's Received: does not name the login:\n%r" % data[:600])
        expect(_wait_log(inst, r"%s: to=<alice@local\.test>.*status=sent" % qid, 10),
               "not logged as sent")
        expect("%s: authenticated to " % qid in inst.log_text()
               and "as %s" % USER in inst.log_text(), "the login is not logged")
        log("%s relayed with AUTH as %s" % (qid, USER))


def test_relay_auth_wrong_password_defers():
    hub = tls_shared()
    with _sender_instance("relay-badauth", hub.submission_port, "not the password") as inst:
        inst.start()
        tag = unique_tag("sasl-bad")
        qid = _submit(inst, tag, "alice@local.test", sender="bob@a.test")
        got = _wait_log(inst, r"%s: to=<alice@local\.test>.*dsn=([\d.]+), status=deferred"
                        % qid, 20)
        expect(got and got[0] == "4.7.8", "want a deferral with 4.7.8, got %r\n%s"
               % (got, inst.log_tail(20)))
        text = inst.log_text()
        expect("status=bounced" not in text, "bounced on a password problem")
        expect(TLS_SHARED_USERS[USER] not in text and "not the password" not in text,
               "a password in the log")
        expect(not hub.maildirs["alice"].by_tag(tag), "delivered with a wrong password")
        log("%s deferred 4.7.8 on a refused AUTH" % qid)
