"""test_aliases - recipient resolution in smtpd at RCPT time (libcommon/resolve): virtual
aliases, local aliases (aliases(5)), catch-all, loops, unknown targets, case, and what the
expansion counts against smtpd_recipient_limit.

The module's instance (started on first use, stopped by the last test that needs it and in
any case at exit) has local_domains = local.test with the mailboxes alice and bob, does not
trust loopback (mynetworks = 192.0.2.0/24, so relaying from the test client is refused),
smtpd_recipient_limit = 3, and this virtual_alias_map (built with `postern map build`):

    team@local.test        alice@local.test, bob@local.test
    mixed.case@local.test  bob@local.test           (the RCPT uses Mixed.CASE@Local.Test)
    loop1@local.test       loop2@local.test
    loop2@local.test       loop1@local.test
    ghost@local.test       carol@local.test         (no such mailbox)
    fwd@local.test         someone@remote.example   (ours: needs no relay permission)
    two@local.test         r1@remote.example, r2@remote.example

The alias_map part (`postmaster: alice`, an alias to an unknown user) needs an aliases(5)
map compiled by the CLI (`postern map build --aliases FILE`); where this postern has no such
option, that test is skipped with the reason (the rest runs without alias_map). The
catch-all test has an instance of its own, since `@local.test` would catch every other
address above.
"""

import os
import re
import subprocess

import harness
from harness import POSTERN, Instance, Skip, expect, log, make_message, unique_tag

TIMEOUT = {"test_aliases_virtual_to_two_local_users": 120,
           "test_aliases_local_alias_map": 120, "test_aliases_catch_all": 120}

VIRTUAL = """# test_aliases
team@local.test        alice@local.test, bob@local.test
mixed.case@local.test  bob@local.test
loop1@local.test       loop2@local.test
loop2@local.test       loop1@local.test
ghost@local.test       carol@local.test
fwd@local.test         someone@remote.example
two@local.test         r1@remote.example, r2@remote.example
"""

ALIASES = """# test_aliases (aliases(5))
postmaster: alice
staff: bob, alice
ghost2: nobody
"""

DELIVERY_WAIT = 30.0

_inst = None
_inst_error = None
_aliases_why = None         # why the alias_map part cannot run, or None


def aliases_cli():
    """aliases_cli - None if `postern map build --aliases FILE` exists, else the reason."""
    if not os.path.exists(POSTERN):
        raise harness.HarnessError("%s is not built (run make)" % POSTERN)
    out = ""
    for args in (["map", "build", "--help"], ["help"]):
        r = subprocess.run([POSTERN] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30, text=True, errors="replace")
        out += r.stdout
    if "--aliases" in out:
        return None
    return "this postern has no `map build --aliases` (aliases(5) maps cannot be built)"


def instance():
    """instance - the module's running instance (see the module comment)."""
    global _inst, _inst_error, _aliases_why
    if _inst_error is not None:
        raise AssertionError("aliases instance could not start earlier: %s" % _inst_error)
    if _inst is not None and _inst.alive():
        return _inst
    _aliases_why = aliases_cli()
    conf = {"virtual_alias_map": "virtual", "mynetworks": "192.0.2.0/24",
            "smtpd_recipient_limit": "3"}
    if _aliases_why is None:
        conf["alias_map"] = "aliases"
    inst = Instance("aliases", conf)
    try:
        with open(os.path.join(inst.dir, "virtual"), "w") as f:
            f.write(VIRTUAL)
        inst.postern("map", "build", os.path.join(inst.dir, "virtual"), check=True)
        if _aliases_why is None:
            with open(os.path.join(inst.dir, "aliases"), "w") as f:
                f.write(ALIASES)
            inst.postern("map", "build", "--aliases", os.path.join(inst.dir, "aliases"),
                         check=True)
        inst.start()
    except Exception as e:
        _inst_error = str(e).splitlines()[0] if str(e) else repr(e)
        inst.cleanup()
        raise
    _inst = inst
    return inst


def stop_instance():
    global _inst
    if _inst is not None:
        _inst.cleanup()
        _inst = None


def session(inst, sender="sender@example.org"):
    """session - a greeted RawSMTP connection with MAIL FROM done."""
    c = inst.smtp()
    try:
        c.greet()
        r = c.cmd("MAIL FROM:<%s>" % sender)
        expect(r.code == 250, "MAIL: %r" % r)
    except BaseException:
        c.close()
        raise
    return c


def rcpt(c, addr):
    return c.cmd("RCPT TO:<%s>" % addr)


def wait_counts(inst, tag, want, timeout=DELIVERY_WAIT):
    """wait_counts - wait until every mailbox has its wanted number of messages with tag,
    then a moment more for duplicates; returns {mailbox: count}."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        got = {u: inst.maildirs[u].counts().get(tag, 0) for u in want}
        if all(got[u] >= n for u, n in want.items()) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    return {u: inst.maildirs[u].counts().get(tag, 0) for u in want}


# --------------------------------------------------------------------------------------

def test_aliases_virtual_to_two_local_users():
    """team@local.test -> alice, bob: one message each; naming alice as well in the same
    transaction still gives her one copy (final recipients are deduplicated)."""
    inst = instance()
    tag = unique_tag("team")
    inst.send(make_message(tag, to="team@local.test"), to="team@local.test")
    got = wait_counts(inst, tag, {"alice": 1, "bob": 1})
    expect(got == {"alice": 1, "bob": 1}, "team@local.test: want one message each, got %r"
           % got)
    data = inst.maildirs["bob"].by_tag(tag)[0]
    expect(harness.header_value(data, "Delivered-To") == "bob@local.test",
           "Delivered-To: %r" % harness.header_value(data, "Delivered-To"))
    rcv = harness.header_value(data, "Received") or ""
    expect("bob@local.test" not in rcv, "an alias's target leaks into Received: %r" % rcv)

    tag = unique_tag("team-dup")
    inst.send(make_message(tag, to="team@local.test"),
              to=["team@local.test", "alice@local.test", "ALICE@local.test"])
    got = wait_counts(inst, tag, {"alice": 1, "bob": 1})
    expect(got == {"alice": 1, "bob": 1}, "team + alice: want one message each, got %r" % got)
    log("team@local.test delivered once to each of alice and bob")


def test_aliases_loop_and_unknown_target():
    """A loop is 550 5.4.6 and an alias to an unknown local user 550 5.1.1, both at RCPT;
    an unknown address without an alias is still 550 5.1.1; the session goes on."""
    inst = instance()
    with session(inst) as c:
        r = rcpt(c, "loop1@local.test")
        expect(r.code == 550 and "5.4.6" in r.text, "alias loop: want 550 5.4.6, got %r" % r)
        r = rcpt(c, "ghost@local.test")
        expect(r.code == 550 and "5.1.1" in r.text,
               "alias to an unknown user: want 550 5.1.1, got %r" % r)
        r = rcpt(c, "nobody@local.test")
        expect(r.code == 550 and "5.1.1" in r.text, "unknown user: want 550 5.1.1, got %r"
               % r)
        r = rcpt(c, "alice@local.test")
        expect(r.code == 250, "a good recipient after the refusals: %r" % r)
        expect(c.cmd("QUIT").code == 221, "QUIT")
    text = inst.log_text()
    expect(re.search(r"alias loop", text), "the loop is not logged")


def test_aliases_case_insensitive():
    """Alias keys, domains and the catch-all lookups ignore case."""
    inst = instance()
    tag = unique_tag("case")
    inst.send(make_message(tag, to="Mixed.CASE@Local.Test"),
              to=["Mixed.CASE@Local.Test", "TEAM@LOCAL.TEST"])
    got = wait_counts(inst, tag, {"alice": 1, "bob": 1})
    expect(got == {"alice": 1, "bob": 1}, "upper-case aliases: want one each, got %r" % got)
    with session(inst) as c:
        r = rcpt(c, "LOOP2@LOCAL.TEST")
        expect(r.code == 550 and "5.4.6" in r.text, "LOOP2: want 550 5.4.6, got %r" % r)


def test_aliases_remote_target_and_recipient_limit():
    """An alias of ours to another domain needs no relay permission (the client here may not
    relay); every final recipient counts against smtpd_recipient_limit (3)."""
    inst = instance()
    with session(inst) as c:
        r = rcpt(c, "someone@remote.example")
        expect(r.code == 554 and "5.7.1" in r.text, "relay from outside mynetworks: %r" % r)
        r = rcpt(c, "fwd@local.test")
        expect(r.code == 250, "alias to a remote address refused: %r" % r)
        expect(c.cmd("RSET").code == 250, "RSET")
        expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL")
        expect(rcpt(c, "team@local.test").code == 250, "team (2 recipients)")
        expect(rcpt(c, "bob@local.test").code == 250, "bob again: nothing new, accepted")
        r = rcpt(c, "two@local.test")
        expect(r.code == 452 and "4.5.3" in r.text,
               "2 + 2 recipients over a limit of 3: want 452 4.5.3, got %r" % r)
        expect(rcpt(c, "fwd@local.test").code == 250, "the third recipient fits")
        r = rcpt(c, "alice@local.test")
        expect(r.code == 250, "alice is there already, nothing new: %r" % r)
        expect(c.cmd("RSET").code == 250, "RSET")
        expect(c.cmd("QUIT").code == 221, "QUIT")


def test_aliases_local_alias_map():
    """alias_map (aliases(5)): postmaster: alice, also as the bare RFC 5321 <postmaster>;
    an alias to an unknown local user is 550 5.1.1 at RCPT."""
    inst = instance()
    if _aliases_why is not None:
        log("alias_map part skipped: %s" % _aliases_why)
        raise Skip(_aliases_why)
    tag = unique_tag("postmaster")
    inst.send(make_message(tag, to="postmaster@local.test"),
              to=["postmaster@local.test", "Postmaster@LOCAL.test"])
    got = wait_counts(inst, tag, {"alice": 1, "bob": 0})
    expect(got == {"alice": 1, "bob": 0}, "postmaster -> alice: got %r" % got)
    with session(inst) as c:
        expect(rcpt(c, "postmaster").code == 250, "<postmaster> without a domain")
        expect(rcpt(c, "STAFF@local.test").code == 250, "staff (bob, alice)")
        r = rcpt(c, "ghost2@local.test")
        expect(r.code == 550 and "5.1.1" in r.text,
               "alias to an unknown local user: want 550 5.1.1, got %r" % r)
        expect(c.cmd("QUIT").code == 221, "QUIT")


def test_aliases_catch_all():
    """virtual `@local.test alice@local.test` takes every address of the domain that has no
    entry of its own (bob keeps his mail through `bob@local.test bob@local.test`); other
    domains are not affected."""
    stop_instance()
    inst = Instance("catchall", {"virtual_alias_map": "virtual",
                                 "mynetworks": "192.0.2.0/24"})
    with inst:
        with open(os.path.join(inst.dir, "virtual"), "w") as f:
            f.write("@local.test alice@local.test\nbob@local.test bob@local.test\n")
        inst.postern("map", "build", os.path.join(inst.dir, "virtual"), check=True)
        inst.start()
        tag = unique_tag("catchall")
        inst.send(make_message(tag, to="whoever@local.test"),
                  to=["whoever@local.test", "Sales@Local.Test"])
        got = wait_counts(inst, tag, {"alice": 1, "bob": 0})
        expect(got == {"alice": 1, "bob": 0}, "catch-all: got %r" % got)
        tag = unique_tag("catchall-bob")
        inst.send(make_message(tag, to="bob@local.test"), to="bob@local.test")
        got = wait_counts(inst, tag, {"alice": 0, "bob": 1})
        expect(got == {"alice": 0, "bob": 1}, "bob's own entry: got %r" % got)
        with session(inst) as c:
            r = rcpt(c, "someone@remote.example")
            expect(r.code == 554 and "5.7.1" in r.text, "relay denied still: %r" % r)
        log("catch-all delivered to alice; bob kept his own mail")
