"""test_delivery - mail accepted over SMTP reaches the Maildir, exactly and exactly once."""

import smtplib
import threading
import time

from harness import (expect, lf, log, make_message, sha256, shared, split_added_headers,
                     unique_tag)

TIMEOUT = {"test_parallel_100_messages_exactly_once": 240}


def test_message_reaches_maildir_byte_exact():
    """One message to alice arrives in mail/alice/new/ with Return-Path, Delivered-To and
    Received prepended, and the rest identical to what was sent (with LF line endings)."""
    inst = shared()
    tag = unique_tag("exact")
    body = [
        "Line one.",
        "",
        ".a line that starts with a dot (dot-stuffed on the wire)",
        "..two dots",
        ".",            # would end the data if not stuffed
        "trailing spaces   ",
        "tab\there",
        "quoted-printable: gr=C3=BC=C3=9Fe",
        "x" * 990,      # a long but legal line
        "last line",
    ]
    msg = make_message(tag, body_lines=body,
                       extra_headers=["X-Folded: first part", "\tsecond part"])
    inst.send(msg, to="alice@local.test", sender="sender@example.org")

    md = inst.maildirs["alice"]
    md.wait_for([tag], timeout=30)
    got = md.by_tag(tag)
    expect(len(got) == 1, "expected 1 message with %s in alice's Maildir, found %d"
           % (tag, len(got)))
    data = got[0]
    expect(b"\r" not in data, "Maildir file has CR characters (must be LF line endings)")
    added, rest = split_added_headers(data)
    names = [a.split(b":", 1)[0].strip().lower() for a in added]
    expect(b"return-path" in names, "no Return-Path header added: %r" % added)
    expect(b"delivered-to" in names, "no Delivered-To header added: %r" % added)
    expect(b"received" in names, "no Received header added: %r" % added)
    rp = [a for a in added if a.lower().startswith(b"return-path:")][0]
    expect(b"<sender@example.org>" in rp, "Return-Path is %r" % rp)
    dt = [a for a in added if a.lower().startswith(b"delivered-to:")][0]
    expect(b"alice@local.test" in dt.lower(), "Delivered-To is %r" % dt)
    want = lf(msg)
    expect(sha256(rest) == sha256(want),
           "message changed in transit:\n--- sent\n%r\n--- delivered (without added headers)\n%r"
           % (want[:2000], rest[:2000]))
    expect(not md.tmp_files(), "files left in alice's tmp/: %r" % md.tmp_files())


def test_message_to_two_recipients():
    """One transaction, two local recipients: each Maildir gets one copy."""
    inst = shared()
    tag = unique_tag("two")
    msg = make_message(tag, to="alice@local.test, bob@local.test")
    inst.send(msg, to=["alice@local.test", "bob@local.test"])
    for u in ("alice", "bob"):
        c = inst.maildirs[u].wait_for([tag], timeout=30)
        expect(c.get(tag) == 1, "%s got %s copies of %s" % (u, c.get(tag, 0), tag))
        d = inst.maildirs[u].by_tag(tag)[0]
        added, _ = split_added_headers(d)
        dt = [a for a in added if a.lower().startswith(b"delivered-to:")]
        expect(dt and ("%s@local.test" % u).encode() in dt[0].lower(),
               "%s: Delivered-To is %r" % (u, dt))


def test_parallel_100_messages_exactly_once():
    """100 messages over 10 parallel connections all arrive exactly once."""
    inst = shared()
    run = unique_tag("par")
    n_threads, per_thread = 10, 10
    tags = ["%s-%03d" % (run, i) for i in range(n_threads * per_thread)]
    errors = []
    lock = threading.Lock()

    def client(k):
        try:
            s = smtplib.SMTP(inst.host, inst.port, local_hostname="client%d.test" % k,
                             timeout=60)
            try:
                for i in range(k * per_thread, (k + 1) * per_thread):
                    msg = make_message(tags[i], extra_headers=["X-Seq: %d" % i])
                    s.sendmail("sender%d@example.org" % k, ["alice@local.test"], msg)
            finally:
                try:
                    s.quit()
                except Exception:
                    s.close()
        except Exception as e:
            with lock:
                errors.append("client %d: %r" % (k, e))

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(n_threads)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1, 120 - (time.monotonic() - t0)))
    expect(not any(t.is_alive() for t in threads), "clients still running after 120 s")
    expect(not errors, "client errors: %s" % "; ".join(errors))
    log("100 messages accepted in %.2fs" % (time.monotonic() - t0))

    md = inst.maildirs["alice"]
    counts = md.wait_for(tags, timeout=60)
    time.sleep(1.0)                 # let a duplicate, if any, land too
    counts = md.counts()
    missing = [t for t in tags if counts.get(t, 0) == 0]
    dups = {t: counts[t] for t in tags if counts.get(t, 0) > 1}
    expect(not missing, "%d of 100 messages never arrived, e.g. %s" % (len(missing), missing[:5]))
    expect(not dups, "delivered more than once: %r" % dups)
    log("100 messages delivered in %.2fs" % (time.monotonic() - t0))


def test_unknown_local_user_and_relay_denied():
    """Unknown user at a local domain: 550 5.1.1; another domain: 554 5.7.1 (no relaying);
    the session goes on, and a valid recipient still works afterwards."""
    inst = shared()
    with inst.smtp() as c:
        c.greet()
        r = c.cmd("MAIL FROM:<sender@example.org>")
        expect(r.code == 250, "MAIL: %r" % r)
        r = c.cmd("RCPT TO:<nobody@local.test>")
        expect(r.code == 550 and r.lines[-1].startswith("5.1.1"),
               "unknown local user: want 550 5.1.1, got %r" % r)
        r = c.cmd("RCPT TO:<someone@example.com>")
        expect(r.code == 554 and r.lines[-1].startswith("5.7.1"),
               "relay: want 554 5.7.1, got %r" % r)
        r = c.cmd("RCPT TO:<ALICE@Local.Test>")
        expect(r.code == 250, "known user (case-insensitive): %r" % r)
        r = c.cmd("RSET")
        expect(r.code == 250, "RSET: %r" % r)
        r = c.cmd("QUIT")
        expect(r.code == 221, "QUIT: %r" % r)
