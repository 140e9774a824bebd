"""test_policy - mail policy (issue 6): content rules, access maps and client limits, seen
from real SMTP clients.

- header_checks / body_checks (pcre: tables): REJECT at end of DATA with the rule's text and
  nothing queued; HOLD queues on hold (`postern queue list --state hold`); DISCARD answers
  250 and delivers nothing; WARN logs and delivers; REPLACE / PREPEND / IGNORE change the
  delivered message; MIME part headers are checked, the same text in a body line is not;
  body line rules; headers are matched unfolded.
- access maps: a cidr: client table REJECT refuses at RCPT (smtpd_delay_reject = yes) or at
  connect (= no: 554 greeting, 503 to MAIL, QUIT works); client OK does not allow relaying;
  a hash: sender table DEFER gives 4xx at RCPT (delayed) or MAIL; a recipient table REJECT.
- client limits (anvil): 60 connections from one address with a limit of 50 (the extra 10
  get 421, another address is still served); 25 bad commands end in 421 and a close
  after smtpd_error_limit (20); smtpd_client_message_rate_limit = 3 refuses the 4th MAIL.
- a catastrophic pattern /(a+)+$/ in body_checks against a 990-octet line stops at the
  PCRE2 match limit in bounded time, logs a warning, and the session goes on.

Clients other than 127.0.0.1 are 127.0.0.2 and 127.0.0.3 (bound as the source address on
loopback). Instances where 127.0.0.1 is subject to limits set mynetworks to 192.0.2.0/24 and
smtpd_greet_pause = 0; reverse lookups are off (the connect phase has its own tests).
`postern map test` / `postern check` are tested in test_map_cli.py, the connect phase
(greet pause, pregreet, stress) in test_connect_phase.py.
"""

import json
import os
import re
import socket
import time

from harness import (Instance, RawSMTP, expect, header_value, log, make_message,
                     show_log, unique_tag)

TIMEOUT = {}

UNTRUSTED = {"mynetworks": "192.0.2.0/24"}      # 127.0.0.0/8 is neither trusted nor exempt
QUIET = {"smtpd_greet_pause": "0", "smtpd_peername_lookup": "no"}


# --------------------------------------------------------------------------------------
# helpers

def _data_block(msg):
    """_data_block - message bytes (CRLF) dot-stuffed and terminated, ready after 354."""
    out = []
    for line in msg.split(b"\r\n")[:-1]:
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out) + b"\r\n.\r\n"


def _raw_from(inst, src, timeout=15.0):
    """_raw_from - a RawSMTP connection to inst's SMTP port from source address src."""
    c = RawSMTP.__new__(RawSMTP)
    c.sock = socket.create_connection((inst.host, inst.port), timeout=timeout,
                                      source_address=(src, 0))
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.timeout = timeout
    c.buf = b""
    c.local_port = c.sock.getsockname()[1]
    return c


def _write(inst, name, text):
    """_write - a file in the instance directory; returns its absolute path."""
    path = os.path.join(inst.dir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def _make(name, conf, files=None, hash_maps=None):
    """_make - an Instance whose conf may name files in its directory as {dir}/NAME; files:
    name -> text written before start; hash_maps: names built with `postern map build`."""
    inst = Instance(name, {})
    for fname, text in (files or {}).items():
        _write(inst, fname, text)
    for fname in hash_maps or ():
        inst.postern("map", "build", os.path.join(inst.dir, fname), check=True)
    inst.conf.update({k: v.replace("{dir}", inst.dir) for k, v in conf.items()})
    inst._write_files()
    return inst


def _jlist(inst, *sel):
    """_jlist - `postern queue list --json SEL...` as a list of dicts."""
    r = inst.postern("queue", "list", "--json", *sel)
    expect(r.returncode == 0, "queue list --json %r exited %d: %s" % (sel, r.returncode,
                                                                     r.stdout))
    return [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]


def _queued_ids(inst, *sel):
    return sorted(e["queue_id"] for e in _jlist(inst, *sel))


def _qid_of(reply):
    """_qid_of - the queue ID in `250 2.0.0 Ok: queued as ID`, else None."""
    m = re.search(r"queued as ([0-9A-Za-z]+)", reply.text)
    return m.group(1) if m else None


def _transaction(c, msg, sender="sender@example.org", rcpts=("alice@local.test",)):
    """_transaction - MAIL, RCPT..., DATA, the message on an open session; the reply to
    the end of data."""
    r = c.cmd("MAIL FROM:<%s>" % sender)
    expect(r.code == 250, "MAIL: %r" % r)
    for rc in rcpts:
        r = c.cmd("RCPT TO:<%s>" % rc)
        expect(r.code == 250, "RCPT %s: %r" % (rc, r))
    r = c.cmd("DATA")
    expect(r.code == 354, "DATA: %r" % r)
    c.send(_data_block(msg))
    return c.reply(timeout=30)


def _send_one(inst, msg, rcpts=("alice@local.test",), src=None):
    """_send_one - one message in its own session; the reply to the end of data."""
    c = _raw_from(inst, src) if src else inst.smtp(timeout=30)
    with c:
        c.greet()
        r = _transaction(c, msg, rcpts=rcpts)
        c.cmd("QUIT")
    return r


def _settle_empty(inst, keep=(), timeout=15.0):
    """_settle_empty - wait (bounded) until the queue holds only the IDs in keep; returns
    the IDs listed at the end."""
    deadline = time.monotonic() + timeout
    while True:
        ids = _queued_ids(inst)
        if set(ids) <= set(keep) or time.monotonic() >= deadline:
            return ids
        time.sleep(0.2)


def _wait_log(inst, pred, timeout=5.0):
    """_wait_log - the first log line for which pred(line) is true (waits, bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        for line in inst.log_text().splitlines():
            if pred(line):
                return line
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def _closed_within(c, secs):
    """_closed_within - True if the server closes c (EOF or reset) within secs; bytes it
    sends meanwhile go to c.buf."""
    deadline = time.monotonic() + secs
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            c.sock.settimeout(left)
            chunk = c.sock.recv(4096)
        except socket.timeout:
            return False
        except (OSError, ConnectionError):
            return True
        if chunk == b"":
            return True
        c.buf += chunk


class _logged:
    """with _logged(inst): show the instance's log if the block fails, stop it at the end."""

    def __init__(self, inst):
        self.inst = inst

    def __enter__(self):
        return self.inst

    def __exit__(self, etype, evalue, tb):
        if etype is not None:
            show_log(self.inst)
        self.inst.cleanup()
        return False


# --------------------------------------------------------------------------------------
# content rules

HEADER_CHECKS = r"""# header_checks for test_policy
/^Subject:.*policy-reject-me/       REJECT Subject refused by policy test
/^Subject:.*policy-hold-me/         HOLD held by policy test
/^Subject:.*policy-discard-me/      DISCARD discarded by policy test
/^Subject:.*policy-warn-me/         WARN warned by policy test
/^Subject:.*policy-defer-me/        DEFER Deferred by policy test
/^Subject:.*policy-code-me/         554 5.7.9 Custom code by policy test
/^X-Replace-Me:/                    REPLACE X-Replaced: yes
/^X-Prepend-Me:/                    PREPEND X-Prepended: yes
/^X-Ignore-Me:/                     IGNORE
/^X-Folded: start of header\s+continued here$/   REJECT Folded header refused by policy test
/^Content-Disposition:.*filename="?[^"]*\.exe"?/  REJECT Executable attachment refused by policy test
"""

BODY_CHECKS = r"""# body_checks for test_policy
/^policy-body-reject-line$/         REJECT Body line refused by policy test
/^body-replace-me$/                 REPLACE body line was replaced
/^body-prepend-me$/                 PREPEND prepended body line
/^body-ignore-me$/                  IGNORE
/policy-body-anywhere/              REJECT Body anywhere refused by policy test
"""


def _content_instance(name="content", extra=None):
    conf = {"header_checks": "pcre:{dir}/header_checks",
            "body_checks": "pcre:{dir}/body_checks"}
    conf.update(extra or {})
    inst = _make(name, conf, files={"header_checks": HEADER_CHECKS,
                                    "body_checks": BODY_CHECKS})
    inst.start()
    return inst


def test_policy_header_reject_at_end_of_data_not_queued():
    """A header_checks REJECT: 550 5.7.1 with the rule's text at end of DATA (also when
    the header's case differs: rules are case-insensitive by default); DEFER: 450 4.7.1;
    `554 5.7.9 text`: that code. Nothing queued (queue list and spool empty) or delivered;
    the session goes on and a clean message in it is delivered."""
    with _logged(_content_instance()) as inst:
        tag, ok_tag = unique_tag("hreject"), unique_tag("hreject-ok")
        with inst.smtp(timeout=30) as c:
            c.greet()
            r = _transaction(c, make_message(tag, subject="policy-reject-me " + tag))
            expect(r.code == 550, "header REJECT: want 550, got %r" % r)
            expect("5.7.1" in r.text and "Subject refused by policy test" in r.text,
                   "header REJECT: want 5.7.1 and the rule's text, got %r" % r)
            # The same rule is case-insensitive by default.
            r = _transaction(c, make_message(tag, subject="POLICY-Reject-ME " + tag))
            expect(r.code == 550 and "Subject refused by policy test" in r.text,
                   "header REJECT, other case: want 550, got %r" % r)
            r = _transaction(c, make_message(tag, subject="policy-defer-me " + tag))
            expect(r.code == 450 and "4.7.1" in r.text and "Deferred by policy test" in r.text,
                   "header DEFER: want 450 4.7.1 and the rule's text, got %r" % r)
            r = _transaction(c, make_message(tag, subject="policy-code-me " + tag))
            expect(r.code == 554 and "5.7.9" in r.text
                   and "Custom code by policy test" in r.text,
                   "header `554 5.7.9 text`: want exactly that, got %r" % r)
            ids_after_reject = _queued_ids(inst)
            r = _transaction(c, make_message(ok_tag))
            expect(r.code == 250, "clean message after the REJECT: %r" % r)
            expect(c.cmd("QUIT").code == 221, "QUIT")
        expect(ids_after_reject == [], "queue after the REJECT: %r" % ids_after_reject)
        md = inst.maildirs["alice"]
        got = md.wait_for([ok_tag], timeout=30)
        expect(got.get(ok_tag) == 1, "clean message not delivered: %r" % got)
        left = _settle_empty(inst)
        expect(left == [], "queue not empty: %r" % left)
        bodies = inst.body_files()
        deadline = time.monotonic() + 10
        while bodies and time.monotonic() < deadline:     # unlinked off the commit path
            time.sleep(0.2)
            bodies = inst.body_files()
        expect(not bodies, "spool files left: %r" % bodies)
        time.sleep(0.5)
        expect(md.counts().get(tag, 0) == 0, "the rejected message was delivered")


def test_policy_header_hold_queued_on_hold():
    """A header_checks HOLD: 250 with a queue ID, the message is listed by
    `postern queue list --state hold` (queue_name hold) and is not delivered."""
    with _logged(_content_instance()) as inst:
        tag = unique_tag("hhold")
        r = _send_one(inst, make_message(tag, subject="policy-hold-me " + tag))
        expect(r.code == 250, "header HOLD: want 250, got %r" % r)
        qid = _qid_of(r)
        expect(qid, "no queue ID in %r" % r)
        held = _jlist(inst, "--state", "hold")
        expect([e["queue_id"] for e in held] == [qid],
               "queue list --state hold: want [%s], got %r" % (qid, held))
        expect(held[0]["queue_name"] == "hold", "queue_name: %r" % held[0])
        r2 = inst.postern("queue", "list", "--state", "hold")
        expect(r2.returncode == 0 and qid in r2.stdout, "text listing: %r" % r2.stdout)
        time.sleep(2.0)
        expect(inst.maildirs["alice"].counts().get(tag, 0) == 0,
               "the held message was delivered")
        expect(_queued_ids(inst, "--state", "hold") == [qid], "no longer held")


def test_policy_header_discard_delivers_nothing():
    """A header_checks DISCARD: 250, nothing delivered and nothing left in the queue (a
    message sent after it is delivered, and the discarded one is still absent)."""
    with _logged(_content_instance()) as inst:
        tag, after = unique_tag("hdiscard"), unique_tag("hdiscard-after")
        r = _send_one(inst, make_message(tag, subject="policy-discard-me " + tag))
        expect(r.code == 250, "header DISCARD: want 250, got %r" % r)
        r2 = _send_one(inst, make_message(after))
        expect(r2.code == 250, "message after: %r" % r2)
        md = inst.maildirs["alice"]
        got = md.wait_for([after], timeout=30)
        expect(got.get(after) == 1, "message after the discarded one not delivered")
        left = _settle_empty(inst)
        expect(left == [], "queue not empty after DISCARD: %r" % left)
        time.sleep(1.0)
        expect(md.counts().get(tag, 0) == 0, "the discarded message was delivered")
        expect(not inst.maildirs["bob"].scan(), "something reached bob")


def test_policy_header_warn_logs_and_delivers():
    """A header_checks WARN: 250, a log line naming the header (with our tag), and the
    message is delivered unchanged."""
    with _logged(_content_instance()) as inst:
        tag = unique_tag("hdrw")
        subject = "policy-warn-me " + tag
        r = _send_one(inst, make_message(tag, subject=subject))
        expect(r.code == 250, "header WARN: want 250, got %r" % r)
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "WARN message not delivered: %r" % got)
        data = inst.maildirs["alice"].by_tag(tag)[0]
        expect(header_value(data, "Subject") == subject, "Subject changed: %r"
               % header_value(data, "Subject"))
        line = _wait_log(inst, lambda l: tag in l and "warn" in l.lower().replace(tag, ""))
        expect(line is not None, "no WARN log line naming the header with %s" % tag)
        log("WARN logged: %s" % line.strip()[:200])


def test_policy_header_and_body_rewrites():
    """REPLACE, PREPEND and IGNORE in header_checks and body_checks change the delivered
    message: the replaced header/line is gone and its replacement present, the prepended
    one comes right before the original, the ignored ones are dropped; the rest intact."""
    with _logged(_content_instance()) as inst:
        tag = unique_tag("rewrite")
        msg = make_message(tag, extra_headers=("X-Replace-Me: old value",
                                               "X-Prepend-Me: kept value",
                                               "X-Ignore-Me: dropped value",
                                               "X-Keep: untouched"),
                           body_lines=["first line", "body-replace-me", "body-prepend-me",
                                       "body-ignore-me", "last line"])
        r = _send_one(inst, msg)
        expect(r.code == 250, "rewrite message: %r" % r)
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "rewrite message not delivered: %r" % got)
        data = inst.maildirs["alice"].by_tag(tag)[0].replace(b"\r\n", b"\n")
        head, _, body = data.partition(b"\n\n")
        hl = head.split(b"\n")
        expect(b"X-Replaced: yes" in hl, "no REPLACE header:\n%s" % head.decode())
        expect(not any(l.startswith(b"X-Replace-Me:") for l in hl), "replaced header kept")
        expect(b"X-Prepend-Me: kept value" in hl, "PREPEND lost the original header")
        i = hl.index(b"X-Prepend-Me: kept value")
        expect(i > 0 and hl[i - 1] == b"X-Prepended: yes",
               "PREPEND header not right before the original:\n%s" % head.decode())
        expect(not any(l.startswith(b"X-Ignore-Me:") for l in hl), "IGNOREd header kept")
        expect(b"X-Keep: untouched" in hl, "other header lost")
        bl = body.split(b"\n")
        expect(b"body line was replaced" in bl and b"body-replace-me" not in bl,
               "body REPLACE:\n%s" % body.decode())
        expect(b"body-prepend-me" in bl, "body PREPEND lost the original line")
        j = bl.index(b"body-prepend-me")
        expect(j > 0 and bl[j - 1] == b"prepended body line",
               "body PREPEND not right before the original:\n%s" % body.decode())
        expect(b"body-ignore-me" not in bl, "IGNOREd body line kept:\n%s" % body.decode())
        expect(bl[0] == b"first line" and b"last line" in bl, "body damaged:\n%s"
               % body.decode())


def _mime_attach(tag, text_part, disposition):
    """_mime_attach - a multipart/mixed message: a text part, then an attachment whose
    part header carries disposition."""
    return ("\r\n".join([
        "From: <sender@example.org>",
        "To: <alice@local.test>",
        "Subject: attachment " + tag,
        "X-Test-Id: " + tag,
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="=-policy-boundary"',
        "",
        "This is a multi-part message in MIME format.",
        "--=-policy-boundary",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        text_part,
        "--=-policy-boundary",
        "Content-Type: application/octet-stream",
        disposition,
        "Content-Transfer-Encoding: base64",
        "",
        "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "--=-policy-boundary--",
        "",
    ])).encode()


EXE_DISPOSITION = 'Content-Disposition: attachment; filename="x.exe"'


def test_policy_mime_part_header_rejected_body_line_not():
    """A header_checks rule on Content-Disposition filename="x.exe" rejects a message whose
    attached part has that header; the same text as a body line (a plain message, and the
    text part of a multipart message) is accepted and delivered."""
    with _logged(_content_instance()) as inst:
        bad, plain, inpart = (unique_tag("mime-exe"), unique_tag("mime-plain"),
                              unique_tag("mime-inpart"))
        msg = _mime_attach(bad, "see attachment", EXE_DISPOSITION)
        r = _send_one(inst, msg)
        expect(r.code == 550 and "Executable attachment refused by policy test" in r.text,
               "attachment x.exe: want 550 with the rule's text, got %r" % r)
        msg = make_message(plain, body_lines=["Have a look at this line:", EXE_DISPOSITION,
                                              "end"])
        r = _send_one(inst, msg)
        expect(r.code == 250, "the header text as a plain body line: want 250, got %r" % r)
        msg = _mime_attach(inpart, EXE_DISPOSITION,
                           'Content-Disposition: attachment; filename="notes.txt"')
        r = _send_one(inst, msg)
        expect(r.code == 250, "the header text in a text part's body: want 250, got %r" % r)
        md = inst.maildirs["alice"]
        got = md.wait_for([plain, inpart], timeout=30)
        expect(got.get(plain) == 1 and got.get(inpart) == 1, "not delivered: %r" % got)
        expect(got.get(bad, 0) == 0, "the x.exe message was delivered")


def test_policy_body_checks_line_reject():
    """body_checks: an anchored rule matches a whole body line (550 with its text); the
    same text inside a longer line or in a header is not matched by it; an unanchored body
    rule does not see headers."""
    with _logged(_content_instance()) as inst:
        t1, t2, t3 = (unique_tag("body-rej"), unique_tag("body-part"),
                      unique_tag("body-hdr"))
        r = _send_one(inst, make_message(t1, body_lines=["hello", "policy-body-reject-line",
                                                         "bye"]))
        expect(r.code == 550 and "Body line refused by policy test" in r.text,
               "body line REJECT: want 550 with the rule's text, got %r" % r)
        r = _send_one(inst, make_message(t2, body_lines=["x policy-body-reject-line y"]))
        expect(r.code == 250, "anchored body rule matched inside a line: %r" % r)
        r = _send_one(inst, make_message(t3, extra_headers=(
            "X-Note: policy-body-anywhere policy-body-reject-line",)))
        expect(r.code == 250, "a body rule matched a header: %r" % r)
        t4 = unique_tag("body-any")
        r = _send_one(inst, make_message(t4, body_lines=["a", "zz policy-body-anywhere zz"]))
        expect(r.code == 550 and "Body anywhere refused by policy test" in r.text,
               "unanchored body rule: want 550, got %r" % r)
        got = inst.maildirs["alice"].wait_for([t2, t3], timeout=30)
        expect(got.get(t2) == 1 and got.get(t3) == 1, "accepted ones not delivered: %r" % got)
        time.sleep(0.5)
        got = inst.maildirs["alice"].counts()
        expect(got.get(t1, 0) == 0 and got.get(t4, 0) == 0, "a rejected one was delivered")


def test_policy_header_checks_see_unfolded_headers():
    """A header folded over two lines is matched as one logical header (CRLF before the
    white space removed): the rule spanning the fold rejects it."""
    with _logged(_content_instance()) as inst:
        tag = unique_tag("folded")
        msg = make_message(tag, extra_headers=("X-Folded: start of header\r\n\tcontinued here",))
        r = _send_one(inst, msg)
        expect(r.code == 550 and "Folded header refused by policy test" in r.text,
               "folded header: want 550 with the rule's text, got %r" % r)


# --------------------------------------------------------------------------------------
# access maps

CLIENT_CIDR = """# client access for test_policy
127.0.0.2/32    REJECT Client network blocked by policy test
127.0.0.3/32    OK
127.0.0.4/32    DEFER Client deferred by policy test
"""
SENDER_MAP = """deferme@example.org   DEFER Sender deferred by policy test
rejected.example      REJECT Sender domain refused by policy test
holdme@example.org    HOLD held by the sender table
discardme@example.org DISCARD dropped by the sender table
"""
RECIPIENT_MAP = """bob@local.test   REJECT Bob refuses mail in policy test
"""


def _access_instance(name, delay):
    inst = _make(name, dict(UNTRUSTED, **QUIET, **{
        "smtpd_client_access": "cidr:{dir}/client.cidr",
        "smtpd_sender_access": "hash:{dir}/sender",
        "smtpd_recipient_access": "hash:{dir}/recipient",
        "smtpd_delay_reject": delay,
        # the access tests are not about limits
        "smtpd_client_limit_exceptions": "127.0.0.0/8",
    }), files={"client.cidr": CLIENT_CIDR, "sender": SENDER_MAP,
               "recipient": RECIPIENT_MAP}, hash_maps=("sender", "recipient"))
    inst.start()
    return inst


def test_policy_client_cidr_reject_delayed_to_rcpt():
    """smtpd_delay_reject = yes: a client whose network a cidr: table REJECTs gets 220,
    250 to EHLO and MAIL, then a 5xx with the table's text at RCPT; DATA is refused; QUIT
    works; nothing is delivered. 127.0.0.1 (not in the table) still delivers."""
    with _logged(_access_instance("access-delay", "yes")) as inst:
        tag, ok = unique_tag("cl-rej"), unique_tag("cl-ok")
        with _raw_from(inst, "127.0.0.2") as c:
            r = c.reply()
            expect(r.code == 220, "greeting for a rejected client (delayed): %r" % r)
            expect(c.cmd("EHLO client.test").code == 250, "EHLO")
            r = c.cmd("MAIL FROM:<sender@example.org>")
            expect(r.code == 250, "MAIL (the reject is delayed to RCPT): %r" % r)
            r = c.cmd("RCPT TO:<alice@local.test>")
            expect(500 <= r.code < 600 and "Client network blocked by policy test" in r.text,
                   "RCPT from a rejected client: want 5xx with the table's text, got %r" % r)
            r = c.cmd("DATA")
            if r.code == 354:
                c.send(_data_block(make_message(tag)))
                raise AssertionError("DATA accepted from a rejected client; end of data: %r"
                                     % c.reply(timeout=30))
            expect(500 <= r.code < 600, "DATA without recipients: %r" % r)
            expect(c.cmd("QUIT").code == 221, "QUIT")
        with _raw_from(inst, "127.0.0.4") as c:
            c.greet()
            expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL from 127.0.0.4")
            r = c.cmd("RCPT TO:<alice@local.test>")
            expect(400 <= r.code < 500 and "Client deferred by policy test" in r.text,
                   "RCPT from a DEFERred client: want 4xx with the table's text, got %r" % r)
            c.cmd("QUIT")
        r = _send_one(inst, make_message(ok))
        expect(r.code == 250, "127.0.0.1: %r" % r)
        got = inst.maildirs["alice"].wait_for([ok], timeout=30)
        expect(got.get(ok) == 1 and got.get(tag, 0) == 0, "deliveries: %r" % got)


def test_policy_client_ok_is_not_an_open_relay():
    """A client the access table says OK for (127.0.0.3, not in mynetworks) may send to
    local recipients but may not relay to another domain."""
    with _logged(_access_instance("access-ok", "yes")) as inst:
        tag = unique_tag("cl-okrelay")
        with _raw_from(inst, "127.0.0.3") as c:
            c.greet()
            expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL")
            r = c.cmd("RCPT TO:<victim@example.net>")
            expect(500 <= r.code < 600, "relay from an access-OK client: want 5xx, got %r" % r)
            r = c.cmd("RCPT TO:<alice@local.test>")
            expect(r.code == 250, "local RCPT from an access-OK client: %r" % r)
            expect(c.cmd("DATA").code == 354, "DATA")
            c.send(_data_block(make_message(tag)))
            r = c.reply(timeout=30)
            expect(r.code == 250, "end of data: %r" % r)
            c.cmd("QUIT")
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "not delivered: %r" % got)
        left = _settle_empty(inst)
        expect(left == [], "something for example.net was queued: %r" % left)


def test_policy_sender_defer_and_recipient_reject_delayed():
    """smtpd_delay_reject = yes: a sender the hash: table DEFERs gets 250 at MAIL and 4xx
    with the text at RCPT; a REJECTed sender domain gets 5xx at RCPT; a recipient the
    table REJECTs gets 5xx at RCPT while another recipient of the same message is
    accepted and delivered."""
    with _logged(_access_instance("access-sender", "yes")) as inst:
        tag = unique_tag("rcpt-rej")
        with inst.smtp() as c:
            c.greet()
            r = c.cmd("MAIL FROM:<deferme@example.org>")
            expect(r.code == 250, "MAIL from a DEFERred sender (delayed): %r" % r)
            r = c.cmd("RCPT TO:<alice@local.test>")
            expect(400 <= r.code < 500 and "Sender deferred by policy test" in r.text,
                   "RCPT after a DEFERred sender: want 4xx with the text, got %r" % r)
            expect(c.cmd("RSET").code == 250, "RSET")
            r = c.cmd("MAIL FROM:<someone@rejected.example>")
            expect(r.code == 250, "MAIL from a REJECTed domain (delayed): %r" % r)
            r = c.cmd("RCPT TO:<alice@local.test>")
            expect(500 <= r.code < 600 and "Sender domain refused by policy test" in r.text,
                   "RCPT after a REJECTed sender domain: want 5xx, got %r" % r)
            expect(c.cmd("RSET").code == 250, "RSET")
            expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL")
            r = c.cmd("RCPT TO:<bob@local.test>")
            expect(500 <= r.code < 600 and "Bob refuses mail in policy test" in r.text,
                   "RCPT to a REJECTed recipient: want 5xx with the text, got %r" % r)
            r = c.cmd("RCPT TO:<alice@local.test>")
            expect(r.code == 250, "RCPT alice: %r" % r)
            expect(c.cmd("DATA").code == 354, "DATA")
            c.send(_data_block(make_message(tag)))
            r = c.reply(timeout=30)
            expect(r.code == 250, "end of data: %r" % r)
            c.cmd("QUIT")
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "alice: %r" % got)
        time.sleep(0.5)
        expect(not inst.maildirs["bob"].scan(), "bob got mail")


def test_policy_client_reject_at_connect_not_delayed():
    """smtpd_delay_reject = no: a client the cidr: table REJECTs gets a 554 greeting with
    the text, 503 to MAIL, and 221 to QUIT; a DEFERred client 421 and a close; a DEFERred
    sender gets 4xx at MAIL; a REJECTed
    sender domain 5xx at MAIL; 127.0.0.1 still delivers."""
    with _logged(_access_instance("access-now", "no")) as inst:
        with _raw_from(inst, "127.0.0.2") as c:
            r = c.reply()
            expect(r.code == 554 and "Client network blocked by policy test" in r.text,
                   "greeting for a rejected client (not delayed): want 554, got %r" % r)
            r = c.cmd("EHLO client.test")
            log("EHLO after a 554 greeting: %r" % r)
            r = c.cmd("MAIL FROM:<sender@example.org>")
            expect(r.code == 503, "MAIL after a 554 greeting: want 503, got %r" % r)
            r = c.cmd("QUIT")
            expect(r.code == 221, "QUIT after a 554 greeting: %r" % r)
        with _raw_from(inst, "127.0.0.4") as c:
            r = c.reply()
            expect(r.code == 421, "greeting for a DEFERred client (not delayed): want 421, "
                   "got %r" % r)
            expect(_closed_within(c, 5), "a DEFERred client was not disconnected")
        tag = unique_tag("now-ok")
        with inst.smtp() as c:
            c.greet()
            r = c.cmd("MAIL FROM:<deferme@example.org>")
            expect(400 <= r.code < 500 and "Sender deferred by policy test" in r.text,
                   "MAIL from a DEFERred sender (not delayed): want 4xx, got %r" % r)
            r = c.cmd("MAIL FROM:<someone@rejected.example>")
            expect(500 <= r.code < 600 and "Sender domain refused by policy test" in r.text,
                   "MAIL from a REJECTed domain (not delayed): want 5xx, got %r" % r)
            r = _transaction(c, make_message(tag))
            expect(r.code == 250, "a good sender: %r" % r)
            c.cmd("QUIT")
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "alice: %r" % got)


def test_policy_sender_access_hold_and_discard():
    """A sender table HOLD: the message is accepted (250) and queued on hold, not
    delivered; DISCARD: 250 and nothing delivered or queued; the next transaction in the
    same session (another sender) is delivered normally."""
    with _logged(_access_instance("access-hold", "yes")) as inst:
        th, td, tn = unique_tag("s-hold"), unique_tag("s-discard"), unique_tag("s-next")
        with inst.smtp(timeout=30) as c:
            c.greet()
            r = _transaction(c, make_message(th), sender="holdme@example.org")
            expect(r.code == 250, "sender HOLD: want 250, got %r" % r)
            qid = _qid_of(r)
            r = _transaction(c, make_message(td), sender="discardme@example.org")
            expect(r.code == 250, "sender DISCARD: want 250, got %r" % r)
            r = _transaction(c, make_message(tn))
            expect(r.code == 250, "next sender: %r" % r)
            c.cmd("QUIT")
        got = inst.maildirs["alice"].wait_for([tn], timeout=30)
        expect(got.get(tn) == 1, "the normal message was not delivered: %r" % got)
        expect(qid and _queued_ids(inst, "--state", "hold") == [qid],
               "held: want [%s], got %r" % (qid, _jlist(inst)))
        left = _settle_empty(inst, keep=[qid])
        expect(left == [qid], "queue: want only the held %s, got %r" % (qid, left))
        time.sleep(1.0)
        got = inst.maildirs["alice"].counts()
        expect(got.get(th, 0) == 0, "the held message was delivered")
        expect(got.get(td, 0) == 0, "the discarded message was delivered")


# --------------------------------------------------------------------------------------
# client limits

TIMEOUT["test_policy_connection_count_limit_60_from_one_address"] = 180


def _wait_anvil(inst):
    """_wait_anvil - wait (bounded) for the anvil daemon, so that limits are enforced from
    the first connection; only logs if there is none (it may live elsewhere)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(p["comm"] == "anvil" or p["name"] == "anvil" for p in inst.processes()):
            time.sleep(1.0)        # the smtpd processes are connected to it, and the
            return True            # harness's readiness probe has been counted off
        time.sleep(0.2)
    log("no anvil process found among %r" % sorted({p["name"] for p in inst.processes()}))
    return False


def test_policy_connection_count_limit_60_from_one_address():
    """smtpd_client_connection_count_limit = 50, 127.0.0.1 not exempt: of 60 connections
    held open at once, the first 50 get 220 and the last 10 get 421 (and are closed);
    meanwhile 127.0.0.2 gets 220 and delivers a message; once they are closed 127.0.0.1
    is served again."""
    inst = _make("connlimit", dict(UNTRUSTED, **QUIET, **{
        "smtpd_client_connection_count_limit": "50",
        "smtpd_max_sessions": "1000",
    }))
    with _logged(inst):
        inst.start()
        _wait_anvil(inst)
        held, codes, refused = [], [], []
        try:
            for i in range(60):
                c = inst.smtp(timeout=15)
                try:
                    r = c.reply(timeout=15)
                except (OSError, ConnectionError) as e:
                    c.close()
                    codes.append("error: %s" % e)
                    continue
                codes.append(r.code)
                if r.code == 220:
                    held.append(c)
                else:
                    refused.append((c, r))
            n220 = codes.count(220)
            n421 = codes.count(421)
            log("60 connections: %d x 220, %d x 421, other %r" % (
                n220, n421, [x for x in codes if x not in (220, 421)]))
            expect(n220 == 50 and n421 == 10,
                   "want 50 x 220 and 10 x 421, got %d and %d: %r" % (n220, n421, codes))
            expect(codes[:50] == [220] * 50 and codes[50:] == [421] * 10,
                   "the extra connections (51-60) should be the refused ones: %r" % codes)
            log("a refused one: %r" % (refused[0][1] if refused else None,))
            for c, r in refused:
                expect(_closed_within(c, 5), "a refused connection was not closed (%r)"
                       % c.buf)
            # Another address is served while the 50 are held.
            tag = unique_tag("connlimit-other")
            r = _send_one(inst, make_message(tag), src="127.0.0.2")
            expect(r.code == 250, "127.0.0.2 while 127.0.0.1 is at its limit: %r" % r)
            got = inst.maildirs["alice"].wait_for([tag], timeout=30)
            expect(got.get(tag) == 1, "127.0.0.2's message not delivered: %r" % got)
            # The held sessions still work.
            r = held[0].cmd("NOOP")
            expect(r.code == 250, "a held session: NOOP %r" % r)
        finally:
            for c in held:
                c.close()
            for c, _ in refused:
                c.close()
        # Once they are gone, 127.0.0.1 is served again (the count went down).
        deadline = time.monotonic() + 15
        last = None
        while time.monotonic() < deadline:
            with inst.smtp() as c:
                last = c.reply()
                if last.code == 220:
                    c.cmd("QUIT")
                    break
            time.sleep(0.5)
        expect(last is not None and last.code == 220,
               "127.0.0.1 not served after closing its sessions: %r" % last)


def test_policy_error_limit_disconnects_after_20_errors():
    """25 bad commands, one at a time (smtpd_error_limit = 20, 127.0.0.1 not exempt): the
    first 19 get an error reply, the 20th its error reply and 421 (or 421 alone), and the
    server closes the connection; the rest are never answered."""
    inst = _make("errlimit", dict(UNTRUSTED, **QUIET, **{"smtpd_error_limit": "20"}))
    with _logged(inst):
        inst.start()
        with inst.smtp(timeout=10) as c:
            c.greet()
            replies = []
            got421_at = None
            for i in range(1, 26):
                try:
                    c.send("XBOGUS%d nonsense\r\n" % i)
                    r = c.reply(timeout=10)
                except (OSError, ConnectionError) as e:
                    replies.append("closed: %s" % e)
                    break
                replies.append(r.code)
                if r.code == 421:
                    got421_at = i
                    break
                expect(500 <= r.code < 600, "bad command %d: want 5xx, got %r" % (i, r))
                if i == 20:
                    r = c.reply(timeout=10)      # the 421 after the 20th error reply
                    replies.append(r.code)
                    expect(r.code == 421, "after the 20th error: want 421, got %r" % r)
                    got421_at = i
                    break
            expect(got421_at == 20, "421 after command %r, want 20: %r" % (got421_at, replies))
            try:                      # the rest of the 25: the server has hung up
                for i in range(got421_at + 1, 26):
                    c.send("XBOGUS%d nonsense\r\n" % i)
                    time.sleep(0.05)
            except (OSError, ConnectionError):
                pass
            closed = _closed_within(c, 5)
            expect(closed, "connection not closed after 421 (extra bytes %r)" % c.buf)


def test_policy_message_rate_limit():
    """smtpd_client_message_rate_limit = 3 (127.0.0.1 not exempt): three messages in a
    session are accepted and delivered, the 4th MAIL gets 450 4.7.1; 127.0.0.2 may still
    send."""
    inst = _make("msgrate", dict(UNTRUSTED, **QUIET, **{
        "smtpd_client_message_rate_limit": "3", "anvil_rate_time_unit": "60s"}))
    with _logged(inst):
        inst.start()
        _wait_anvil(inst)
        tags = [unique_tag("rate%d" % i) for i in range(3)]
        with inst.smtp(timeout=30) as c:
            c.greet()
            for t in tags:
                r = _transaction(c, make_message(t))
                expect(r.code == 250, "message %s: %r" % (t, r))
            r = c.cmd("MAIL FROM:<sender@example.org>")
            expect(r.code == 450 and "4.7.1" in r.text,
                   "4th MAIL over the message rate: want 450 4.7.1, got %r" % r)
            c.cmd("QUIT")
        got = inst.maildirs["alice"].wait_for(tags, timeout=30)
        expect(all(got.get(t) == 1 for t in tags), "deliveries: %r" % got)
        tag = unique_tag("rate-other")
        r = _send_one(inst, make_message(tag), src="127.0.0.2")
        expect(r.code == 250, "127.0.0.2 after 127.0.0.1 hit its rate: %r" % r)


# --------------------------------------------------------------------------------------
# a catastrophic pattern

def test_policy_catastrophic_pattern_bounded():
    """body_checks /(a+)+$/ REJECT against a 990-octet line of a's ending in '!': the reply
    to the end of data comes within 10 s (the match stops at pcre_match_limit), a warning
    naming the match limit and the body_checks file is logged, and the next message in
    the same session is accepted and delivered."""
    inst = _make("redos", {"body_checks": "pcre:{dir}/body_checks"},
                 files={"body_checks": "/(a+)+$/ REJECT catastrophic pattern matched\n"})
    with _logged(inst):
        inst.start()
        t1, t2 = unique_tag("redos"), unique_tag("redos-next")
        line = "a" * 989 + "!"
        expect(len(line) == 990, "line length")
        with inst.smtp(timeout=30) as c:
            c.greet()
            expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL")
            expect(c.cmd("RCPT TO:<alice@local.test>").code == 250, "RCPT")
            expect(c.cmd("DATA").code == 354, "DATA")
            t0 = time.monotonic()
            c.send(_data_block(make_message(t1, body_lines=["start", line, "end"])))
            try:
                r = c.reply(timeout=10)
            except socket.timeout:
                raise AssertionError("no reply to the end of data within 10 s")
            dt = time.monotonic() - t0
            log("catastrophic line: %r after %.2fs" % (r, dt))
            expect(r.code == 250 or 500 <= r.code < 600, "end of data: %r" % r)
            r2 = _transaction(c, make_message(t2))
            expect(r2.code == 250, "next message in the same session: %r" % r2)
            expect(c.cmd("QUIT").code == 221, "QUIT")
        got = inst.maildirs["alice"].wait_for([t2], timeout=30)
        expect(got.get(t2) == 1, "the next message was not delivered: %r" % got)
        warn = _wait_log(inst, lambda l: "limit" in l.lower() and "body_checks" in l)
        expect(warn is not None, "no warning naming the match limit and body_checks")
        log("match limit warning: %s" % warn.strip()[:200])
