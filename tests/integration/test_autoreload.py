"""test_autoreload - master notices changed files and replaces the daemons, without
`postern reload` (daemons/master/master_watch.c).

One instance with TLS, a header_checks rule file and watch_interval = 500ms:
- a recipient added to the mailbox map and `postern map build`: RCPT for it is accepted
  within a bounded time, and the log says `.../mailboxes.db changed: restarting smtpd`;
- the certificate and key replaced (renamed into place, as certbot does): STARTTLS serves
  the new certificate;
- header_checks edited in place: the new rule rejects;
- header_checks broken (a bad pattern): the new smtpd processes fail to start, the log says
  why (the pattern error, and master keeping the running smtpd), the old processes keep
  answering with the rules of the previous step; once the file is fixed, its rules apply;
- transport_map rebuilt: qmgr (which cannot overlap) is restarted, and mail still flows;
- the system CA bundle (here $SSL_CERT_FILE, as smtp_tls_ca_file is empty) rewritten, as
  update-ca-certificates does: the smtp agent is replaced.
No step sends SIGHUP: the log must not show a reload.
"""

import os
import shutil
import tempfile
import time

from harness import (Instance, cert_der, expect, log, make_cert, make_message,
                     unique_tag)

TIMEOUT = {"test_autoreload_maps_certificates_rules": 120}

WAIT = 15.0                     # for each change to take effect
RULES_OLD = "/^Subject: autoreload-old/ REJECT old rule hit\n"
RULES_NEW = RULES_OLD + "/^Subject: autoreload-new/ REJECT new rule hit\n"
RULES_BAD = RULES_NEW + "/^Subject: (unclosed/ REJECT never loads\n"
RULES_FIXED = RULES_NEW + "/^Subject: autoreload-fixed/ REJECT fixed rule hit\n"


def _write(path, text):
    """_write - rewrite a file in place (as an editor without backups does)."""
    with open(path, "w") as f:
        f.write(text)


def _poll(what, fn, timeout=WAIT, step=0.3):
    """_poll - call fn() until it returns a true value or timeout passes (bounded in time
    and count); returns that value, or raises naming `what` and the last result."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / step) + 2):
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(step)
    raise AssertionError("%s: not within %.0fs (last: %r)" % (what, timeout, last))


def _rcpt_code(inst, rcpt):
    """_rcpt_code - the reply code to RCPT TO:<rcpt> in a fresh session."""
    with inst.smtp(timeout=10) as c:
        c.greet()
        expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL")
        code = c.cmd("RCPT TO:<%s>" % rcpt).code
        c.cmd("QUIT")
        return code


def _end_of_data(inst, subject):
    """_end_of_data - the reply to a whole message with this Subject, in a fresh session."""
    with inst.smtp(timeout=10) as c:
        c.greet()
        expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL")
        expect(c.cmd("RCPT TO:<alice@local.test>").code == 250, "RCPT")
        expect(c.cmd("DATA").code == 354, "DATA")
        c.send(make_message(unique_tag("ar"), subject=subject) + b".\r\n")
        r = c.reply(timeout=15)
        c.cmd("QUIT")
        return r


def _rejected_by(inst, subject, text):
    """_rejected_by - True if a message with subject is refused with text."""
    r = _end_of_data(inst, subject)
    return r.code == 550 and text in r.text


def _starttls_cert(inst):
    """_starttls_cert - the DER certificate smtpd shows after STARTTLS on port 25."""
    with inst.smtp(timeout=10) as c:
        c.greet()
        expect(c.cmd("STARTTLS").code == 220, "STARTTLS")
        c.starttls()
        return c.peer_cert_der()


def _step_map(inst):
    """(a) a new mailbox, `postern map build`, RCPT accepted."""
    expect(_rcpt_code(inst, "carol@local.test") == 550, "carol known before the map build")
    with open(os.path.join(inst.dir, "mailboxes"), "a") as f:
        f.write("carol@local.test %s/mail/carol/\n" % inst.dir)
    t0 = time.monotonic()
    inst.postern("map", "build", os.path.join(inst.dir, "mailboxes"), check=True)
    _poll("RCPT for the new mailbox accepted",
          lambda: _rcpt_code(inst, "carol@local.test") == 250)
    log("new mailbox accepted after %.1fs" % (time.monotonic() - t0))
    expect("mailboxes.db changed: restarting smtpd" in inst.log_text(),
           "no `mailboxes.db changed: restarting smtpd` in the log")


def _step_cert(inst):
    """(b) a renewed certificate and key, renamed into place: served on STARTTLS."""
    expect(_starttls_cert(inst) == cert_der(inst.cert), "STARTTLS: not the first certificate")
    tmp = tempfile.mkdtemp(prefix="postern-autoreload-")
    try:
        cert, key = make_cert(tmp, "new", "mx2.local.test", ("DNS:localhost",))
        new = cert_der(cert)
        shutil.copyfile(key, inst.key + ".new")
        os.chmod(inst.key + ".new", 0o600)
        shutil.copyfile(cert, inst.cert + ".new")
        os.replace(inst.key + ".new", inst.key)
        os.replace(inst.cert + ".new", inst.cert)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _poll("STARTTLS serves the new certificate", lambda: _starttls_cert(inst) == new)


def _step_rules(inst, rules):
    """(c) a rule added to header_checks in place: it rejects."""
    expect(_end_of_data(inst, "autoreload-new").code == 250, "new rule active too early")
    _write(rules, RULES_NEW)
    _poll("the new header_checks rule rejects",
          lambda: _rejected_by(inst, "autoreload-new", "new rule hit"))


def _step_broken(inst, rules):
    """(d) a broken rule file: the running smtpd processes keep serving the old rules, the
    log says why; fixed again, the file's rules apply."""
    # the smtpd processes that step (c) retired exit once their sessions are over
    before = _poll("two smtpd processes", lambda: [p["pid"] for p in inst.daemons("smtpd")]
                   if len(inst.daemons("smtpd")) == 2 else None)
    _write(rules, RULES_BAD)
    _poll("the failed replacement in the log",
          lambda: "keeps serving with the files it loaded before" in inst.log_text())
    text = inst.log_text()
    expect("header_checks changed: restarting smtpd" in text,
           "no `header_checks changed: restarting smtpd` in the log")
    expect("missing closing parenthesis" in text, "the pattern error is not in the log")
    expect(_rejected_by(inst, "autoreload-new", "new rule hit"),
           "the running smtpd lost the rules it had")
    expect(_end_of_data(inst, "autoreload clean").code == 250, "clean mail refused")
    after = sorted(p["pid"] for p in inst.daemons("smtpd"))
    expect(set(before) <= set(after), "running smtpd replaced: %r -> %r" % (before, after))

    _write(rules, RULES_FIXED)
    _poll("the fixed header_checks rule rejects",
          lambda: _rejected_by(inst, "autoreload-fixed", "fixed rule hit"))


def _step_transport(inst):
    """(e) transport_map rebuilt: a new qmgr, and a message is still delivered."""
    old = [p["pid"] for p in inst.daemons("qmgr")]
    with open(os.path.join(inst.dir, "transport"), "a") as f:
        f.write("more.test smtp:[127.0.0.1]:9\n")
    inst.postern("map", "build", os.path.join(inst.dir, "transport"), check=True)
    _poll("a new qmgr", lambda: [p for p in inst.daemons("qmgr") if p["pid"] not in old])
    expect("transport.db changed: restarting qmgr" in inst.log_text(),
           "no `transport.db changed: restarting qmgr` in the log")
    tag = unique_tag("ar-qmgr")
    inst.send_retry(make_message(tag))
    got = inst.maildirs["alice"].wait_for([tag], timeout=WAIT)
    expect(got.get(tag) == 1, "message after the qmgr restart delivered %r times"
           % got.get(tag))


def _step_system_ca(inst, bundle):
    """(f) the system CA bundle rewritten: a new smtp agent."""
    old = [p["pid"] for p in inst.daemons("smtp")]
    expect(old, "no smtp agent running")
    with open(inst.cert, "rb") as src, open(bundle + ".new", "wb") as dst:
        dst.write(src.read())
    os.replace(bundle + ".new", bundle)
    _poll("a new smtp agent", lambda: [p for p in inst.daemons("smtp") if p["pid"] not in old])
    expect("%s changed: restarting smtp" % bundle in inst.log_text(),
           "no `%s changed: restarting smtp` in the log" % bundle)


def test_autoreload_maps_certificates_rules():
    with Instance("autoreload", tls=True) as inst:
        bundle = os.path.join(inst.dir, "system-ca.pem")
        shutil.copyfile(inst.cert, bundle)
        rules = os.path.join(inst.dir, "header_checks")
        _write(rules, RULES_OLD)
        _write(os.path.join(inst.dir, "transport"), "elsewhere.test smtp:[127.0.0.1]:9\n")
        inst.postern("map", "build", os.path.join(inst.dir, "transport"), check=True)
        inst.conf.update({"watch_interval": "500ms", "header_checks": "pcre:header_checks",
                          "transport_map": "transport", "smtpd_greet_pause": "0"})
        inst._write_files()
        saved = os.environ.get("SSL_CERT_FILE")
        os.environ["SSL_CERT_FILE"] = bundle        # master (and OpenSSL in smtp) read it
        try:
            inst.start()
        finally:
            if saved is None:
                del os.environ["SSL_CERT_FILE"]
            else:
                os.environ["SSL_CERT_FILE"] = saved
        inst.wait_daemons({"smtpd": 2, "qmgr": 1, "local": 1, "smtp": 1})
        expect(_rejected_by(inst, "autoreload-old", "old rule hit"), "first rule not active")
        _step_map(inst)
        _step_cert(inst)
        _step_rules(inst, rules)
        _step_broken(inst, rules)
        _step_transport(inst)
        _step_system_ca(inst, bundle)
        expect("signal=HUP" not in inst.log_text(), "a reload happened")
