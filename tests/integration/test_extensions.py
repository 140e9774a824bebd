"""test_extensions - address extensions (recipient_delimiter, libcommon/resolve) end to end:
smtpd accepts user+tag at RCPT when user has a mailbox, local delivers it to user's Maildir
with the full recipient in Delivered-To and in the log, aliases and virtual aliases match
without the extension (virtual propagates it, aliases do not), and with the setting empty
user+tag is an unknown user.

Each test starts an instance of its own. With extensions: local_domains = local.test with
the mailboxes alice and bob, recipient_delimiter = +, the aliases(5) map `sales: bob` and
this virtual_alias_map:

    info@example.test      bob@local.test
    loop1@local.test       loop2@local.test
    loop2@local.test       loop1@local.test

example.test is not ours: the test client may relay (loopback is in the default
mynetworks), so RCPT there is resolved through the virtual map like any other address.
"""

import os
import time

import harness
from harness import Instance, expect, log, make_message, unique_tag

TIMEOUT = {"test_extensions_local_delivery": 120, "test_extensions_aliases": 120,
           "test_extensions_off": 120}

VIRTUAL = """# test_extensions
info@example.test      bob@local.test
loop1@local.test       loop2@local.test
loop2@local.test       loop1@local.test
"""

ALIASES = "# test_extensions (aliases(5))\nsales: bob\n"


def ext_instance():
    """ext_instance - an instance as the module comment says, maps built, not started."""
    inst = Instance("ext", {"recipient_delimiter": "+", "virtual_alias_map": "virtual",
                            "alias_map": "aliases"})
    for name, text, args in (("virtual", VIRTUAL, ()), ("aliases", ALIASES, ("--aliases",))):
        with open(os.path.join(inst.dir, name), "w") as f:
            f.write(text)
        inst.postern("map", "build", *args, os.path.join(inst.dir, name), check=True)
    return inst


def rcpt_reply(inst, addr):
    """rcpt_reply - the reply to RCPT TO:<addr> in a fresh session."""
    with inst.smtp() as c:
        c.greet()
        expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL")
        r = c.cmd("RCPT TO:<%s>" % addr)
        c.cmd("QUIT")
    return r


def delivered(inst, user, tag):
    """delivered - (Delivered-To, Received) of the one message with tag in user's Maildir."""
    data = inst.maildirs[user].one(tag, timeout=30.0)
    return (harness.header_value(data, "Delivered-To"),
            harness.header_value(data, "Received") or "")


def log_has(inst, text, timeout=10.0):
    """log_has - wait (bounded) for text in the log: local logs after the rename into new/."""
    deadline = time.monotonic() + timeout
    while text not in inst.log_text():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


# --------------------------------------------------------------------------------------

def test_extensions_local_delivery():
    """alice+tag@local.test: 250 at RCPT, delivered to alice's Maildir (no folder made),
    Delivered-To and the delivery log keep the extension; nosuch+tag is 550 5.1.1, +alice
    (not split) too; a loop reached with an extension is still 550 5.4.6."""
    with ext_instance() as inst:
        inst.start()
        r = rcpt_reply(inst, "alice+tag@local.test")
        expect(r.code == 250, "alice+tag at RCPT: want 250, got %r" % r)
        tag = unique_tag("ext")
        inst.send(make_message(tag, to="alice+tag@local.test"), to="Alice+Tag@local.test")
        got, _ = delivered(inst, "alice", tag)
        expect(got == "Alice+Tag@local.test", "Delivered-To: %r" % got)
        expect(not os.path.exists(os.path.join(inst.maildirs["alice"].path, ".Tag")),
               "a Maildir folder was created")
        expect(log_has(inst, "to=<Alice+Tag@local.test>, relay=local"),
               "the delivery log lacks the full recipient")
        for addr, want in (("nosuch+tag@local.test", "550 5.1.1"),
                           ("+alice@local.test", "550 5.1.1"),
                           ("loop1+x@local.test", "550 5.4.6")):
            r = rcpt_reply(inst, addr)
            expect("%d %s" % (r.code, r.text[:5]) == want, "%s: want %s, got %r"
                   % (addr, want, r))
        log("alice+tag delivered to alice with Delivered-To: %s" % got)


def test_extensions_aliases():
    """sales+x (alias sales: bob) reaches bob as bob (aliases drop the extension), with the
    address given at RCPT in Received:; info+x@example.test (virtual info@example.test
    bob@local.test) reaches bob as bob+x (virtual propagates it)."""
    with ext_instance() as inst:
        inst.start()
        tag = unique_tag("ext-alias")
        inst.send(make_message(tag, to="sales+x@local.test"), to="sales+x@local.test")
        got, rcv = delivered(inst, "bob", tag)
        expect(got == "bob@local.test", "alias: Delivered-To: %r" % got)
        expect("for <sales+x@local.test>" in rcv, "alias: Received: %r" % rcv)
        tag = unique_tag("ext-virtual")
        inst.send(make_message(tag, to="info+x@example.test"), to="info+x@example.test")
        got, rcv = delivered(inst, "bob", tag)
        expect(got == "bob+x@local.test", "virtual: Delivered-To: %r" % got)
        expect("for <info+x@example.test>" in rcv, "virtual: Received: %r" % rcv)
        expect(log_has(inst, "to=<bob+x@local.test>, relay=local"),
               "virtual: no delivery log")


def test_extensions_off():
    """With recipient_delimiter empty (the default) alice+tag is a name of its own: 550."""
    with Instance("ext-off") as inst:
        inst.start()
        r = rcpt_reply(inst, "alice+tag@local.test")
        expect(r.code == 550 and "5.1.1" in r.text, "alice+tag: want 550 5.1.1, got %r" % r)
        expect(rcpt_reply(inst, "alice@local.test").code == 250, "alice")
