"""test_local_batch - local group-commits its Maildir deliveries: many per flush, each
exactly once, and a failure in one Maildir defers only the messages for that Maildir."""

import os
import re
import smtplib
import threading
import time

from harness import Instance, expect, log, make_message, unique_tag

TIMEOUT = {"test_batch_two_maildirs_exactly_once": 240,
           "test_batch_failure_is_per_maildir": 240}


def _send_parallel(inst, jobs, n_threads=10):
    """_send_parallel - send (tag, rcpt) jobs over n_threads connections; returns errors."""
    errors = []
    lock = threading.Lock()

    def client(k):
        try:
            s = smtplib.SMTP(inst.host, inst.port, local_hostname="c%d.test" % k, timeout=60)
            try:
                for tag, rcpt in jobs[k::n_threads]:
                    s.sendmail("sender@example.org", [rcpt], make_message(tag, to=rcpt))
            finally:
                try:
                    s.quit()
                except Exception:
                    s.close()
        except Exception as e:
            with lock:
                errors.append("client %d: %r" % (k, e))

    threads = [threading.Thread(target=client, args=(k,), daemon=True)
               for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    expect(not any(t.is_alive() for t in threads), "clients still running after 120 s")
    return errors


def _batch_sizes(inst):
    return [int(n) for n in re.findall(r"maildir batch: (\d+) deliveries", inst.log_text())]


def test_batch_two_maildirs_exactly_once():
    """300 messages to alice and bob over 10 connections: each arrives exactly once, no
    tmp/ file is left, and local flushed many deliveries at a time."""
    with Instance("batch", conf={"log_level": "debug", "local_concurrency": "50"}) as inst:
        inst.start()
        run = unique_tag("batch")
        jobs = [("%s-%03d" % (run, i), "%s@local.test" % ("alice", "bob")[i % 2])
                for i in range(300)]
        t0 = time.monotonic()
        errors = _send_parallel(inst, jobs)
        expect(not errors, "client errors: %s" % "; ".join(errors))
        for user in ("alice", "bob"):
            want = [t for t, r in jobs if r.startswith(user + "@")]
            md = inst.maildirs[user]
            md.wait_for(want, timeout=60)
            time.sleep(0.5)
            counts = md.counts()
            missing = [t for t in want if counts.get(t, 0) == 0]
            dups = {t: counts[t] for t in want if counts.get(t, 0) > 1}
            expect(not missing, "%s: %d messages never arrived, e.g. %s"
                   % (user, len(missing), missing[:5]))
            expect(not dups, "%s: delivered more than once: %r" % (user, dups))
            expect(not md.tmp_files(), "%s: files left in tmp/: %r" % (user, md.tmp_files()))
        sizes = _batch_sizes(inst)
        log("300 messages delivered in %.2fs in %d batches (largest %d)"
            % (time.monotonic() - t0, len(sizes), max(sizes or [0])))
        expect(sum(sizes) >= 300, "batches hold %d deliveries, want >= 300" % sum(sizes))
        expect(len(sizes) < 300 and max(sizes) > 1,
               "no group commit: %d batches for 300 messages" % len(sizes))


def test_batch_failure_is_per_maildir():
    """bob's new/ is a file, so linking fails: bob's messages are deferred and leave nothing
    in tmp/, while alice's, flushed in the same batches, arrive. Once new/ is a directory
    again, the retries deliver bob's too."""
    with Instance("batchfail", conf={"log_level": "debug", "local_concurrency": "50"}) as inst:
        bob = inst.maildirs["bob"]
        newdir = os.path.join(bob.path, "new")
        os.rmdir(newdir)
        with open(newdir, "w") as f:
            f.write("not a directory\n")
        inst.start()
        run = unique_tag("bfail")
        jobs = [("%s-%03d" % (run, i), "%s@local.test" % ("alice", "bob")[i % 2])
                for i in range(100)]
        errors = _send_parallel(inst, jobs)
        expect(not errors, "client errors: %s" % "; ".join(errors))
        want_a = [t for t, r in jobs if r.startswith("alice@")]
        want_b = [t for t, r in jobs if r.startswith("bob@")]
        counts = inst.maildirs["alice"].wait_for(want_a, timeout=60)
        missing = [t for t in want_a if counts.get(t, 0) == 0]
        expect(not missing, "alice: %d messages never arrived" % len(missing))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            deferred = re.findall(r"to=<bob@local\.test>.*status=deferred", inst.log_text())
            if len(deferred) >= len(want_b):
                break
            time.sleep(0.1)
        expect(len(deferred) >= len(want_b),
               "bob: %d of %d messages deferred" % (len(deferred), len(want_b)))
        expect(not re.search(r"to=<bob@local\.test>.*status=sent", inst.log_text()),
               "a message to bob was reported sent while his new/ was a file")
        expect(not bob.tmp_files(), "bob: files left in tmp/: %r" % bob.tmp_files())
        sizes = _batch_sizes(inst)
        log("first pass: alice delivered, bob deferred %d; batches %d (largest %d)"
            % (len(deferred), len(sizes), max(sizes or [0])))

        os.unlink(newdir)
        os.mkdir(newdir, 0o700)
        st = os.stat(bob.path)
        os.chown(newdir, st.st_uid, st.st_gid)
        counts = bob.wait_for(want_b, timeout=90)
        missing = [t for t in want_b if counts.get(t, 0) == 0]
        dups = {t: counts[t] for t in want_b if counts.get(t, 0) > 1}
        expect(not missing, "bob: %d messages never arrived after the fix" % len(missing))
        expect(not dups, "bob: delivered more than once: %r" % dups)
        expect(not bob.tmp_files(), "bob: files left in tmp/: %r" % bob.tmp_files())
