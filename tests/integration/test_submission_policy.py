"""test_submission_policy - what a submission service enforces and adds (Postfix parity):
smtpd_sender_login_map (an authenticated user may send only as an address the map gives
them; on submission/smtps an unauthenticated client may not use an address someone owns)
and the missing Message-ID:, Date: and From: added to mail from sendmail (public/submit)
and from authenticated clients, never to mail from other clients.

The module's instance (started on first use, stopped at exit by the harness) has TLS and
AUTH (users demo@local.test and user2@local.test) and this sender login map:
    demo@local.test     demo@local.test
    shared@local.test   user2@local.test, DEMO@local.test
    @owned.test         user2@local.test
"""

import os
import random
import smtplib
import subprocess

import harness
from harness import (BIN, Instance, expect, lf, log, split_added_headers, tls_client_context,
                     unique_tag)

SENDMAIL = os.path.join(BIN, "sendmail")
WAIT = 30.0
TIMEOUT = {"test_submission_policy_big_message_headers_added": 120}

USERS = {"demo@local.test": "pw demo %d" % random.randrange(10 ** 9),
         "user2@local.test": "pw user2 %d" % random.randrange(10 ** 9)}
SENDERS = ("demo@local.test     demo@local.test\n"
           "shared@local.test   user2@local.test, DEMO@local.test\n"
           "@owned.test         user2@local.test\n")

_inst = None


def inst():
    """inst - the module's running instance."""
    global _inst
    if _inst is not None and _inst.alive():
        return _inst
    i = Instance("subpol", {"smtpd_sender_login_map": "senders", "smtpd_greet_pause": "0",
                            "mynetworks": "192.0.2.0/24"}, tls=True, auth_users=USERS)
    with open(os.path.join(i.dir, "senders"), "w") as f:
        f.write(SENDERS)
    i.postern("map", "build", os.path.join(i.dir, "senders"), check=True)
    i.start()
    _inst = i
    return i


def submission_login(user):
    """submission_login - smtplib on the submission port after STARTTLS and AUTH as user."""
    i = inst()
    s = smtplib.SMTP(i.host, i.submission_port, local_hostname="client.test", timeout=30)
    try:
        s.starttls(context=tls_client_context())
        s.login(user, USERS[user])
    except BaseException:
        s.close()
        raise
    return s


def close(s):
    try:
        s.quit()
    except Exception:
        s.close()


def check_senders(s, who, cases):
    """check_senders - MAIL FROM:<sender> then RSET for each (sender, code, text): the reply
    must have that code and contain that text."""
    for sender, want, part in cases:
        code, text = s.docmd("MAIL FROM:<%s>" % sender)
        s.rset()
        text = text.decode(errors="replace")
        expect(code == want and part in text, "%s as <%s>: %d %s" % (who, sender, code, text))


def delivered(user, tag):
    """delivered - the one copy of tag in user's Maildir (waits, bounded)."""
    return inst().maildirs[user].one(tag, WAIT)


def submit(tag, msg, sender="demo@local.test"):
    """submit - msg to alice over submission, AUTH as demo; the copy delivered."""
    s = submission_login("demo@local.test")
    try:
        s.sendmail(sender, ["alice@local.test"], msg)
    finally:
        close(s)
    return delivered("alice", tag)


def sendmail(args, data):
    """sendmail - run sendmail args as root with the instance's config; fails unless 0."""
    env = dict(os.environ, POSTERN_CONFIG=inst().dir)
    r = subprocess.run([SENDMAIL] + list(args), input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, env=env, cwd="/")
    expect(r.returncode == 0, "sendmail %s exited %d: %r" % (args, r.returncode, r.stderr))


def headers_of(data):
    """headers_of - the header section (LF line ends) of a delivered message, without the
    fields Postern prepends (Return-Path, Delivered-To, Received)."""
    _, rest = split_added_headers(lf(data))
    return rest.split(b"\n\n", 1)[0] + b"\n"


def bare_message(tag, extra=(), body="hello\r\n"):
    """bare_message - CRLF message with Subject and X-Test-Id only, plus extra fields."""
    return ("".join(h + "\r\n" for h in extra) + "Subject: %s\r\nX-Test-Id: %s\r\n\r\n%s"
            % (tag, tag, body)).encode()


def test_submission_policy_login_owns_sender():
    """AUTH as demo: its own address, a shared one (owner listed in another case) and <>
    are accepted; user2's address, user2's domain and an unlisted address get 553."""
    mine = "5.7.1 <%s>: Sender address rejected: not owned by user demo@local.test"
    s = submission_login("demo@local.test")
    try:
        check_senders(s, "demo", [("demo@local.test", 250, ""), ("Shared@local.test", 250, ""),
                                  ("", 250, "")]
                      + [(a, 553, mine % a) for a in ("user2@local.test", "anyone@owned.test",
                                                      "stranger@example.org")])
    finally:
        close(s)
    s = submission_login("user2@local.test")
    try:
        check_senders(s, "user2", [("anyone@owned.test", 250, ""), ("demo@local.test", 553,
                                                                    "not owned by user")])
    finally:
        close(s)
    expect("sasl_username=demo@local.test" in inst().log_text(), "the refusal is not logged")


def test_submission_policy_owned_sender_needs_login():
    """Without AUTH: submission refuses MAIL anyway (530); smtps refuses an owned sender
    with 553 (not logged in) and accepts an unlisted one; port 25 checks nothing."""
    i = inst()
    s = smtplib.SMTP(i.host, i.submission_port, local_hostname="client.test", timeout=30)
    try:
        s.starttls(context=tls_client_context())
        s.ehlo("client.test")
        check_senders(s, "submission without AUTH", [("demo@local.test", 530, "")])
    finally:
        close(s)
    s = smtplib.SMTP_SSL(i.host, i.smtps_port, local_hostname="client.test", timeout=30,
                         context=tls_client_context())
    try:
        s.ehlo("client.test")
        rejected = "Sender address rejected: not logged in"
        check_senders(s, "smtps without AUTH", [("demo@local.test", 553, rejected),
                                                ("x@owned.test", 553, rejected),
                                                ("stranger@example.org", 250, "")])
    finally:
        close(s)
    s = i.smtplib()
    try:
        s.ehlo("client.test")
        check_senders(s, "port 25", [("demo@local.test", 250, "")])
    finally:
        close(s)


def test_submission_policy_auth_headers_added():
    """AUTH submission without Message-ID/Date/From: all three added at the end of the
    header section, in the client's order otherwise."""
    tag = unique_tag("sp-add")
    data = submit(tag, bare_message(tag))
    head = headers_of(data).decode()
    lines = head.splitlines()
    expect(lines[:2] == ["Subject: %s" % tag, "X-Test-Id: %s" % tag], "order: %r" % head)
    expect(lines[2].startswith("Message-ID: <") and lines[2].endswith("@mx.local.test>"),
           "Message-ID: %r" % head)
    expect(lines[3].startswith("Date: ") and lines[4] == "From: demo@local.test",
           "Date/From: %r" % head)
    expect(b"\n\nhello\n" in lf(data), "body lost: %r" % data)


def test_submission_policy_complete_headers_untouched():
    """AUTH submission with every field: the header section arrives byte for byte (apart
    from the fields Postern prepends); the same for a message with Date and Message-ID but
    no From, which gets From only."""
    tag = unique_tag("sp-same")
    msg = harness.make_message(tag, sender="demo@local.test",
                               extra_headers=("X-Folded: a\r\n\tb",))
    data = submit(tag, msg)
    _, rest = split_added_headers(lf(data))
    expect(rest == lf(msg), "message changed:\n%r\n%r" % (rest, lf(msg)))


def test_submission_policy_no_empty_line_and_null_sender():
    """A message whose body starts without the empty line gets the fields and the empty
    line; From for <> is MAILER-DAEMON@myhostname."""
    tag = unique_tag("sp-noempty")
    msg = ("Subject: %s\r\nX-Test-Id: %s\r\nthis line is body\r\nsecond\r\n"
           % (tag, tag)).encode()
    data = lf(submit(tag, msg, sender=""))
    head, _, body = data.partition(b"\n\n")
    expect(body == b"this line is body\nsecond\n", "body: %r" % data)
    expect(harness.header_value(data, "From") == "MAILER-DAEMON@mx.local.test",
           "From: %r" % data)
    expect(harness.header_value(data, "Date") and harness.header_value(data, "Message-ID"),
           "Date/Message-ID: %r" % data)


def test_submission_policy_big_message_headers_added():
    """A 600 KB body (several spool writes) after a header section without Date: the
    field is added once and the body arrives intact."""
    tag = unique_tag("sp-big")
    body = "".join("line %06d of a big message, padded to make it longer.....\r\n" % n
                   for n in range(10000))
    msg = bare_message(tag, extra=("From: demo@local.test", "Message-ID: <%s@x>" % tag),
                       body=body)
    data = lf(submit(tag, msg))
    head, _, got = data.partition(b"\n\n")
    expect(got == lf(body.encode()), "body changed (%d vs %d octets)" % (len(got), len(body)))
    expect(head.count(b"\nDate: ") == 1 and head.count(b"\nMessage-ID: ") == 1,
           "headers: %r" % head)


def test_submission_policy_sendmail_bs_headers_added():
    """SMTP over public/submit (sendmail -bs, which passes the message as is): smtpd adds
    the missing fields; plain sendmail's message gets them too."""
    tag = unique_tag("sp-bs")
    script = ("EHLO client\nMAIL FROM:<root@mx.local.test>\nRCPT TO:<bob@local.test>\n"
              "DATA\nSubject: %s\nX-Test-Id: %s\n\nvia -bs\n.\nQUIT\n" % (tag, tag)).encode()
    sendmail(["-bs"], script)
    data = delivered("bob", tag)
    for h in ("Date", "Message-ID", "From"):
        expect(harness.header_value(data, h), "-bs: no %s: added: %r" % (h, data))
    expect("added missing header: Message-ID Date From" in inst().log_text(),
           "smtpd did not say it added the fields")
    tag2 = unique_tag("sp-sm")
    sendmail(["bob@local.test"], lf(bare_message(tag2)))
    data = delivered("bob", tag2)
    for h in ("Date", "Message-ID", "From"):
        expect(harness.header_value(data, h), "sendmail: no %s: %r" % (h, data))
    expect(lf(data).count(b"\nDate: ") == 1, "Date twice: %r" % data)


def test_submission_policy_relay_client_untouched():
    """An unauthenticated port-25 client's message without Message-ID/Date/From is stored
    as it came (a relay must not alter mail)."""
    tag = unique_tag("sp-relay")
    msg = bare_message(tag)
    inst().send(msg, to="alice@local.test", sender="someone@example.org")
    data = delivered("alice", tag)
    _, rest = split_added_headers(lf(data))
    expect(rest == lf(msg), "relayed message changed:\n%r" % rest)
    for h in ("Date", "Message-ID", "From"):
        expect(harness.header_value(data, h) is None, "%s: added on port 25" % h)
    log("port 25 message left alone")
