"""test_bounce - delivery status notifications made by qmgr, parsed with Python's email package.

Failures come from the daemons we have: a recipient whose Maildir cannot be created fails
temporarily until queue_lifetime runs out (then it bounces as expired), and a recipient that
local no longer finds in its (rebuilt) mailbox map fails permanently with 5.1.1. The DSN
goes to a local sender's Maildir, so everything stays on this machine.
"""

import email
import email.policy
import os
import smtplib
import time

from harness import Instance, expect, log, make_message, unique_tag

TIMEOUT = {}

CAROL = "carol@local.test"


def _instance(name, conf, carol_box):
    """_instance - an instance whose mailbox map also knows carol (at carol_box)."""
    inst = Instance(name, conf=conf)
    with open(os.path.join(inst.dir, "mailboxes"), "a") as f:
        f.write("%s %s\n" % (CAROL, carol_box))
    return inst


def _send(inst, msg, sender, rcpts, mail_options=(), rcpt_options=()):
    """_send - one transaction over smtplib with DSN parameters."""
    s = smtplib.SMTP(inst.host, inst.port, local_hostname="client.test", timeout=30)
    try:
        s.ehlo()
        expect(s.has_extn("dsn"), "the server does not offer DSN")
        s.mail(sender, list(mail_options))
        for r in rcpts:
            code, resp = s.rcpt(r, list(rcpt_options))
            expect(code == 250, "RCPT %s: %d %r" % (r, code, resp))
        code, resp = s.data(msg)
        expect(code == 250, "DATA: %d %r" % (code, resp))
    finally:
        try:
            s.quit()
        except Exception:
            s.close()


def _reports(md, timeout, want=1):
    """_reports - wait for `want` DSNs (From MAILER-DAEMON) in a Maildir; parsed messages."""
    deadline = time.monotonic() + timeout
    while True:
        out = []
        for _, _, data in md.scan():
            m = email.message_from_bytes(data, policy=email.policy.compat32)
            if "MAILER-DAEMON@" in (m.get("From") or ""):
                out.append((m, data))
        if len(out) >= want or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def _parts(m):
    """_parts - the three parts of a multipart/report: text, delivery-status, original."""
    expect(m.get_content_type() == "multipart/report",
           "DSN content type is %s" % m.get_content_type())
    expect(m.get_param("report-type") == "delivery-status",
           "report-type is %r" % m.get_param("report-type"))
    parts = m.get_payload()
    expect(len(parts) == 3, "DSN has %d parts" % len(parts))
    expect(parts[0].get_content_type() == "text/plain", "part 1 is %s"
           % parts[0].get_content_type())
    expect(parts[1].get_content_type() == "message/delivery-status", "part 2 is %s"
           % parts[1].get_content_type())
    # email parses message/delivery-status into blocks of fields: per message, per rcpt.
    blocks = parts[1].get_payload()
    return parts[0], blocks, parts[2]


def test_expired_recipient_bounces_headers_only():
    """A recipient that only fails temporarily expires after queue_lifetime; the sender gets
    one RFC 3464 report: Action failed, the last error, ENVID and ORCPT echoed, and (no RET)
    the original header section as text/rfc822-headers."""
    inst = _instance("bounce-exp", {"queue_lifetime": "3s"}, "/proc/nonexistent/carol/")
    with inst:
        inst.start()
        tag = unique_tag("exp")
        msg = make_message(tag, to=CAROL, sender="alice@local.test",
                           body_lines=["secret body line"])
        _send(inst, msg, "alice@local.test", [CAROL], mail_options=["ENVID=env-" + tag],
              rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;Carol@Local.Test"])
        got = _reports(inst.maildirs["alice"], 30)
        expect(len(got) == 1, "expected 1 DSN in alice's Maildir, found %d" % len(got))
        m, raw = got[0]
        expect(b"\r" not in raw, "Maildir copy has CRs")
        expect(m["Subject"] == "Undelivered Mail Returned to Sender", "Subject %r"
               % m["Subject"])
        expect(m["To"] == "<alice@local.test>", "To %r" % m["To"])
        expect(m["Auto-Submitted"] == "auto-replied", "Auto-Submitted %r"
               % m["Auto-Submitted"])
        text, blocks, orig = _parts(m)
        expect(CAROL in text.get_payload(), "human part does not name carol")
        per_msg, rcpts = blocks[0], blocks[1:]
        expect(per_msg["Reporting-MTA"] == "dns; mx.local.test", "Reporting-MTA %r"
               % per_msg["Reporting-MTA"])
        expect(per_msg["Original-Envelope-Id"] == "env-" + tag, "Original-Envelope-Id %r"
               % per_msg["Original-Envelope-Id"])
        expect(per_msg["Arrival-Date"], "no Arrival-Date")
        expect(len(rcpts) == 1, "%d recipient blocks" % len(rcpts))
        r = rcpts[0]
        expect(r["Final-Recipient"] == "rfc822; " + CAROL, "Final-Recipient %r"
               % r["Final-Recipient"])
        expect(r["Original-Recipient"] == "rfc822;Carol@Local.Test", "Original-Recipient %r"
               % r["Original-Recipient"])
        expect(r["Action"] == "failed", "Action %r" % r["Action"])
        expect(r["Status"].startswith("4."), "Status %r (the last temporary error)"
               % r["Status"])
        expect("expired" in r["Diagnostic-Code"], "Diagnostic-Code %r" % r["Diagnostic-Code"])
        expect(orig.get_content_type() == "text/rfc822-headers", "part 3 is %s"
               % orig.get_content_type())
        hdrs = orig.get_payload()
        expect(("X-Test-Id: " + tag) in hdrs, "original headers missing X-Test-Id")
        expect("secret body line" not in raw.decode("utf-8", "replace"),
               "headers-only DSN contains the body")
        log("DSN for an expired recipient parsed: Status %s" % r["Status"])
        # The original is gone from the queue; the DSN's own message too.
        deadline = time.monotonic() + 10
        while inst.body_files() and time.monotonic() < deadline:
            time.sleep(0.2)
        expect(not inst.body_files(), "spool files left: %r" % inst.body_files())


def test_permanent_failure_bounces_full_message():
    """local answers 5.1.1 for a mailbox removed from the map after smtpd accepted it:
    RET=FULL returns the whole message as message/rfc822; the delivered recipient in the
    same message gets no report, and one DSN covers the failed one."""
    # watch_interval 0: master must not replace smtpd when the map changes below
    inst = _instance("bounce-perm", {"watch_interval": "0"}, "/proc/nonexistent/carol/")
    with inst:
        inst.start()
        # Rebuild the map without carol: local reopens it, smtpd keeps the one it has.
        time.sleep(1.1)     # a new mtime second, so local sees the change
        with open(os.path.join(inst.dir, "mailboxes")) as f:
            lines = [l for l in f if not l.startswith(CAROL)]
        with open(os.path.join(inst.dir, "mailboxes"), "w") as f:
            f.writelines(lines)
        inst.build_map()
        tag = unique_tag("perm")
        msg = make_message(tag, to="bob@local.test, " + CAROL, sender="alice@local.test",
                           body_lines=["full body line"])
        try:
            _send(inst, msg, "alice@local.test", ["bob@local.test", CAROL],
                  mail_options=["RET=FULL"])
        except AssertionError as e:
            if "RCPT %s: 550" % CAROL in str(e):
                from harness import Skip
                raise Skip("smtpd reloads its mailbox map: no way to reach local's 5.1.1")
            raise
        inst.maildirs["bob"].wait_for([tag], timeout=30)
        got = _reports(inst.maildirs["alice"], 30)
        expect(len(got) == 1, "expected 1 DSN in alice's Maildir, found %d" % len(got))
        m, raw = got[0]
        text, blocks, orig = _parts(m)
        rcpts = blocks[1:]
        expect(len(rcpts) == 1, "%d recipient blocks (bob was delivered)" % len(rcpts))
        r = rcpts[0]
        expect(r["Action"] == "failed" and r["Status"] == "5.1.1", "Action %r Status %r"
               % (r["Action"], r["Status"]))
        expect("mailbox unknown" in r["Diagnostic-Code"], "Diagnostic-Code %r"
               % r["Diagnostic-Code"])
        expect(orig.get_content_type() == "message/rfc822", "part 3 is %s"
               % orig.get_content_type())
        inner = orig.get_payload()[0]
        expect(inner["X-Test-Id"] == tag, "returned message X-Test-Id %r" % inner["X-Test-Id"])
        expect("full body line" in inner.get_payload(), "returned message lacks its body")
        time.sleep(1.0)
        expect(len(_reports(inst.maildirs["alice"], 0)) == 1, "more than one DSN")


def test_no_bounce_for_null_sender_or_notify_never():
    """A message from <> that fails is dropped with a log line, never bounced; NOTIFY=NEVER
    suppresses the report; a DSN whose own delivery fails is not bounced either."""
    inst = _instance("bounce-null", {"queue_lifetime": "2s"}, "/proc/nonexistent/carol/")
    with inst:
        inst.start()
        t1, t2, t3 = unique_tag("null"), unique_tag("never"), unique_tag("loop")
        _send(inst, make_message(t1, to=CAROL, sender=""), "<>", [CAROL])
        _send(inst, make_message(t2, to=CAROL, sender="alice@local.test"), "alice@local.test",
              [CAROL], rcpt_options=["NOTIFY=NEVER"])
        # carol sends to herself: the DSN to carol fails too and must not loop.
        _send(inst, make_message(t3, to=CAROL, sender=CAROL), CAROL, [CAROL])
        deadline = time.monotonic() + 30
        logtext = ""
        while time.monotonic() < deadline:
            with open(inst.logfile, errors="replace") as f:
                logtext = f.read()
            if logtext.count("no bounce for <>") >= 2 and not inst.body_files():
                break
            time.sleep(0.3)
        expect(logtext.count("no bounce for <>") >= 2,
               "want 'no bounce for <>' for the null-sender message and for the failed DSN")
        expect(not inst.body_files(), "messages left in the queue: %r" % inst.body_files())
        expect(not _reports(inst.maildirs["alice"], 0), "alice got a DSN despite NOTIFY=NEVER")


def test_delay_warning_once():
    """queue_delay_warning: one "delayed" report per message (NOTIFY default), then the
    failure report when the lifetime is over."""
    inst = _instance("bounce-delay", {"queue_lifetime": "6s", "queue_delay_warning": "1s"},
                     "/proc/nonexistent/carol/")
    with inst:
        inst.start()
        tag = unique_tag("delay")
        _send(inst, make_message(tag, to=CAROL, sender="alice@local.test"),
              "alice@local.test", [CAROL])
        got = _reports(inst.maildirs["alice"], 30, want=2)
        subjects = sorted(m["Subject"] for m, _ in got)
        expect(subjects == ["Delayed Mail (still being retried)",
                            "Undelivered Mail Returned to Sender"],
               "want one delay warning and one failure report, got %r" % subjects)
        for m, _ in got:
            _, blocks, _ = _parts(m)
            want = "delayed" if m["Subject"].startswith("Delayed") else "failed"
            expect(blocks[1]["Action"] == want, "Action %r" % blocks[1]["Action"])
            if want == "delayed":
                expect(blocks[1]["Will-Retry-Until"], "no Will-Retry-Until")


def test_relay_through_smtp_agent_and_bounce_5xx():
    """End to end through the real smtp agent: the transport map sends bob@local.test to a
    second instance (delivered there), and carol@local.test to it too, where carol is
    unknown (550 at RCPT): the sender gets a DSN with Remote-MTA and the remote reply."""
    b = Instance("relay-b")
    with b:
        b.start()
        a = _instance("relay-a", {"transport_map": "transport"}, "/proc/nonexistent/carol/")
        with a:
            with open(os.path.join(a.dir, "transport"), "w") as f:
                f.write("bob@local.test smtp:[127.0.0.1]:%d\n" % b.port)
                f.write("carol@local.test smtp:[127.0.0.1]:%d\n" % b.port)
            a.postern("map", "build", os.path.join(a.dir, "transport"), check=True)
            a.start()
            tag = unique_tag("relay")
            _send(a, make_message(tag, to="bob@local.test, " + CAROL, sender="alice@local.test"),
                  "alice@local.test", ["bob@local.test", CAROL])
            b.maildirs["bob"].wait_for([tag], timeout=30)
            expect(not a.maildirs["bob"].by_tag(tag), "bob got the message on instance a")
            got = _reports(a.maildirs["alice"], 30)
            expect(len(got) == 1, "expected 1 DSN on instance a, found %d" % len(got))
            _, blocks, _ = _parts(got[0][0])
            r = blocks[1]
            expect(r["Final-Recipient"] == "rfc822; " + CAROL, "Final-Recipient %r"
                   % r["Final-Recipient"])
            expect(r["Action"] == "failed" and r["Status"].startswith("5."), "Action %r Status %r"
                   % (r["Action"], r["Status"]))
            expect(r["Diagnostic-Code"].startswith("smtp; 550"), "Diagnostic-Code %r"
                   % r["Diagnostic-Code"])
            expect(r["Remote-MTA"], "no Remote-MTA")
            log("relayed to bob, DSN for carol: %s" % r["Diagnostic-Code"])
