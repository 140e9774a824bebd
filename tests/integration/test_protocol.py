"""test_protocol - SMTP edge cases spoken byte by byte: pipelining, size limits, smuggling
attempts, over-long command lines."""

import time

from harness import SHARED_CONF, expect, make_message, shared, unique_tag

SIZE_LIMIT = 100 * 1024
assert SHARED_CONF["message_size_limit"] == "100k"


def _data_block(msg):
    """_data_block - message bytes (CRLF) dot-stuffed and terminated, ready to send after 354."""
    out = []
    for line in msg.split(b"\r\n")[:-1]:
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out) + b"\r\n.\r\n"


def test_ehlo_advertises_extensions():
    inst = shared()
    with inst.smtp() as c:
        r = c.greet()
        exts = [l.split()[0].upper() for l in r.lines[1:] if l.strip()]
        for want in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES"):
            expect(want in exts, "EHLO does not advertise %s: %r" % (want, r.lines))
        size = [l for l in r.lines[1:] if l.upper().startswith("SIZE")]
        expect(size and size[0].split()[1:] == [str(SIZE_LIMIT)],
               "SIZE should advertise %d: %r" % (SIZE_LIMIT, size))


def test_pipelined_transaction_replies_in_order():
    """MAIL, RCPT (bad), RCPT, RCPT, DATA in one write after EHLO: five replies in order;
    then the body; then RSET NOOP QUIT in one write: three replies in order."""
    inst = shared()
    tag = unique_tag("pipe")
    with inst.smtp() as c:
        r = c.greet()
        expect(any(l.upper().startswith("PIPELINING") for l in r.lines), "no PIPELINING")
        c.send(b"MAIL FROM:<sender@example.org>\r\n"
               b"RCPT TO:<nobody@local.test>\r\n"
               b"RCPT TO:<alice@local.test>\r\n"
               b"RCPT TO:<bob@local.test>\r\n"
               b"DATA\r\n")
        codes = [c.reply().code for _ in range(5)]
        expect(codes == [250, 550, 250, 250, 354], "pipelined replies: %r" % codes)
        c.send(_data_block(make_message(tag)))
        r = c.reply(timeout=30)
        expect(r.code == 250, "end of data: %r" % r)
        c.send(b"RSET\r\nNOOP\r\nQUIT\r\n")
        codes = [c.reply().code for _ in range(3)]
        expect(codes == [250, 250, 221], "pipelined RSET NOOP QUIT: %r" % codes)
    for u in ("alice", "bob"):
        got = inst.maildirs[u].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "%s got %d copies" % (u, got.get(tag, 0)))


def test_pipelined_with_body_in_same_write():
    """A client that sends MAIL RCPT DATA and the body in one write (not allowed, but seen in
    the wild): the server must still answer every command once, in order, with no desync."""
    inst = shared()
    tag = unique_tag("pipebody")
    with inst.smtp() as c:
        c.greet()
        c.send(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<alice@local.test>\r\nDATA\r\n"
               + _data_block(make_message(tag)) + b"NOOP\r\n")
        codes = [c.reply(timeout=30).code for _ in range(5)]
        # The data is taken (250) or refused as a pipelining violation (5xx), but every
        # command gets exactly one reply, in order.
        expect(codes[:3] == [250, 250, 354] and (codes[3] == 250 or 500 <= codes[3] < 600)
               and codes[4] == 250, "replies: %r" % codes)
        expect(c.pending(0.3) == b"", "extra replies")
        expect(c.cmd("QUIT").code == 221, "QUIT")
    if codes[3] == 250:
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "got %d copies" % got.get(tag, 0))


def test_size_parameter_over_limit_refused_at_mail():
    inst = shared()
    with inst.smtp() as c:
        c.greet()
        r = c.cmd("MAIL FROM:<sender@example.org> SIZE=%d" % (SIZE_LIMIT + 1))
        expect(r.code == 552, "SIZE over the limit: want 552, got %r" % r)
        r = c.cmd("MAIL FROM:<sender@example.org> SIZE=%d" % (SIZE_LIMIT // 2))
        expect(r.code == 250, "SIZE under the limit after a refusal: %r" % r)
        expect(c.cmd("QUIT").code == 221, "QUIT")


def test_oversized_body_refused_and_not_delivered():
    """A body over message_size_limit without SIZE=: 552 after the data, nothing delivered,
    and the session goes on (a following message is delivered)."""
    inst = shared()
    big_tag = unique_tag("big")
    ok_tag = unique_tag("afterbig")
    lines = ["%06d %s" % (i, "y" * 70) for i in range((SIZE_LIMIT // 78) + 200)]
    big = make_message(big_tag, body_lines=lines)
    expect(len(big) > SIZE_LIMIT + 10000, "test message too small")
    with inst.smtp(timeout=30) as c:
        c.greet()
        expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL")
        expect(c.cmd("RCPT TO:<alice@local.test>").code == 250, "RCPT")
        expect(c.cmd("DATA").code == 354, "DATA")
        c.send(_data_block(big))
        r = c.reply(timeout=30)
        expect(r.code == 552, "oversized body: want 552, got %r" % r)
        # The session is still in sync: a normal message goes through.
        expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL after 552")
        expect(c.cmd("RCPT TO:<alice@local.test>").code == 250, "RCPT after 552")
        expect(c.cmd("DATA").code == 354, "DATA after 552")
        c.send(_data_block(make_message(ok_tag)))
        r = c.reply(timeout=30)
        expect(r.code == 250, "normal message after 552: %r" % r)
        c.cmd("QUIT")
    md = inst.maildirs["alice"]
    md.wait_for([ok_tag], timeout=30)
    time.sleep(0.5)
    counts = md.counts()
    expect(counts.get(ok_tag) == 1, "message after the oversized one: %d copies"
           % counts.get(ok_tag, 0))
    expect(counts.get(big_tag, 0) == 0, "the oversized message was delivered")


# Each case: bytes that end a line inside the data in a way that is NOT <CR><LF>.<CR><LF>,
# followed by a smuggled second transaction to bob. A server that took the sequence as end of
# data would queue a truncated message and then run the smuggled commands.
SMUGGLE_CASES = [
    ("lf-dot-crlf", b"\n.\r\n"),
    ("crlf-dot-lf", b"\r\n.\n"),
    ("cr-dot-cr", b"\r.\r"),
    ("crlf-dot-cr", b"\r\n.\r"),
    ("cr-dot-crlf", b"\r.\r\n"),
    ("lf-dot-lf", b"\n.\n"),
]


def test_smuggling_sequences_do_not_end_data():
    """<LF>.<CR><LF>, <CR><LF>.<LF>, bare CR variants inside DATA: exactly one 250 per
    transaction, the next command gets its own reply, and the smuggled transaction is never
    run (bob gets nothing)."""
    inst = shared()
    tags = {}
    with inst.smtp(timeout=30) as c:
        c.greet()
        for name, seq in SMUGGLE_CASES:
            tag = unique_tag("smuggle-" + name)
            evil = unique_tag("evil-" + name)
            tags[name] = (tag, evil)
            expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, name + ": MAIL")
            expect(c.cmd("RCPT TO:<alice@local.test>").code == 250, name + ": RCPT")
            expect(c.cmd("DATA").code == 354, name + ": DATA")
            data = (b"Subject: smuggling " + name.encode() + b"\r\n"
                    b"X-Test-Id: " + tag.encode() + b"\r\n"
                    b"\r\n"
                    b"before the sequence" + seq +
                    b"MAIL FROM:<evil@example.org>\r\n"
                    b"RCPT TO:<bob@local.test>\r\n"
                    b"DATA\r\n"
                    b"X-Test-Id: " + evil.encode() + b"\r\n"
                    b"\r\n"
                    b"smuggled\r\n"
                    b".\r\n")   # ends the outer message (and would end the smuggled one)
            c.send(data)
            r = c.reply(timeout=30)
            expect(r.code == 250, "%s: end of data: want 250, got %r" % (name, r))
            r = c.cmd("NOOP")
            expect(r.code == 250, "%s: NOOP after the message: want 250, got %r" % (name, r))
            extra = c.pending(0.3)
            expect(extra == b"", "%s: unexpected extra replies %r" % (name, extra))
        expect(c.cmd("QUIT").code == 221, "QUIT")

    alice, bob = inst.maildirs["alice"], inst.maildirs["bob"]
    alice.wait_for([t for t, _ in tags.values()], timeout=30)
    time.sleep(0.5)
    ac, bc = alice.counts(), bob.counts()
    for name, (tag, evil) in tags.items():
        expect(ac.get(tag) == 1, "%s: alice got %d messages, want exactly 1"
               % (name, ac.get(tag, 0)))
        expect(bc.get(evil, 0) == 0, "%s: the smuggled message reached bob" % name)
        body = alice.by_tag(tag)[0]
        expect(b"smuggled" in body, "%s: message was cut short: %r" % (name, body[-300:]))


def test_smuggling_with_reject_policy():
    """With smtpd_bare_newline = reject the same data is refused (5xx) without desync."""
    from harness import Instance
    with Instance("reject", {"smtpd_bare_newline": "reject"}) as inst:
        inst.start()
        with inst.smtp(timeout=30) as c:
            c.greet()
            for name, seq in SMUGGLE_CASES[:2]:
                expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, name + ": MAIL")
                expect(c.cmd("RCPT TO:<bob@local.test>").code == 250, name + ": RCPT")
                expect(c.cmd("DATA").code == 354, name + ": DATA")
                c.send(b"Subject: x\r\n\r\nbefore" + seq + b"after\r\n.\r\n")
                r = c.reply(timeout=30)
                expect(500 <= r.code < 600, "%s: want 5xx for bare newline, got %r" % (name, r))
                expect(c.cmd("NOOP").code == 250, "%s: NOOP after refusal" % name)
            c.cmd("QUIT")
        time.sleep(0.5)
        expect(not inst.maildirs["bob"].scan(), "a refused message was delivered")


def test_long_command_line_500_and_session_continues():
    """A 600-octet command line gets 500; the session continues (NOOP -> 250)."""
    inst = shared()
    with inst.smtp() as c:
        c.greet()
        line = "NOOP " + "x" * (600 - len("NOOP ") - 2)
        expect(len(line) + 2 == 600, "line length")
        r = c.cmd(line)
        expect(r.code == 500, "600-octet line: want 500, got %r" % r)
        r = c.cmd("NOOP")
        expect(r.code == 250, "NOOP after the long line: %r" % r)
        # Also a long MAIL FROM: refused, and a transaction still works after it.
        r = c.cmd("MAIL FROM:<%s@example.org>" % ("a" * 600))
        expect(r.code == 500, "long MAIL line: want 500, got %r" % r)
        expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL after")
        expect(c.cmd("QUIT").code == 221, "QUIT")


def test_commands_out_of_order():
    """RCPT before MAIL and DATA before RCPT get 503; nothing is queued."""
    inst = shared()
    with inst.smtp() as c:
        c.greet()
        expect(c.cmd("RCPT TO:<alice@local.test>").code == 503, "RCPT before MAIL")
        expect(c.cmd("DATA").code == 503, "DATA before MAIL")
        expect(c.cmd("MAIL FROM:<sender@example.org>").code == 250, "MAIL")
        expect(c.cmd("DATA").code in (503, 554), "DATA without RCPT")
        expect(c.cmd("QUIT").code == 221, "QUIT")
