"""test_durability - "250 means on disk": crash parts of Postern, or all of it, while 10 clients
send 200 messages, and check that every message that got 250 is delivered (zero lost).
Duplicates are allowed (at-least-once) and reported."""

import json
import os
import random
import subprocess
import smtplib
import socket
import threading
import time

from harness import (POSTERN, Instance, daemon_kind, expect, kill_process, log,
                     make_message, same_process, unique_tag)

TIMEOUT = {"test_kill_qmgr_loses_nothing": 280, "test_kill_everything_loses_nothing": 280}

N_CLIENTS = 10
N_MESSAGES = 200
SEND_DEADLINE = 150.0      # seconds for the clients to get all 200 messages accepted
DRAIN_DEADLINE = 90.0      # seconds for the queue to deliver what was accepted


class Load:
    """Load - N_CLIENTS threads sending N_MESSAGES in total, retrying on 4xx and on
    connection errors, until each message got a 250 or a 5xx, or the deadline passed."""

    def __init__(self, inst, run):
        self.inst = inst
        self.tags = ["%s-%03d" % (run, i) for i in range(N_MESSAGES)]
        self.accepted = set()
        self.refused = {}           # tag -> permanent error
        self.retries = 0
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + SEND_DEADLINE
        self.threads = []

    def _client(self, k):
        mine = self.tags[k::N_CLIENTS]
        conn = None
        i = 0
        while i < len(mine) and time.monotonic() < self.deadline:
            tag = mine[i]
            try:
                if conn is None:
                    conn = smtplib.SMTP(self.inst.host, self.inst.port,
                                        local_hostname="c%d.test" % k, timeout=20)
                conn.sendmail("load%d@example.org" % k, ["alice@local.test"],
                              make_message(tag, extra_headers=["X-Seq: %s" % tag]))
                with self.lock:
                    self.accepted.add(tag)
                i += 1
                continue
            except smtplib.SMTPResponseException as e:
                code = e.smtp_code
            except smtplib.SMTPRecipientsRefused as e:
                code = list(e.recipients.values())[0][0]
            except (smtplib.SMTPException, OSError, socket.timeout):
                code = None         # connection refused/reset/closed: retry
            if code is not None and 500 <= code < 600:
                with self.lock:
                    self.refused[tag] = code
                i += 1
                continue
            with self.lock:
                self.retries += 1
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass
                conn = None
            time.sleep(0.2 + random.random() * 0.3)
        if conn is not None:
            try:
                conn.quit()
            except Exception:
                conn.close()

    def start(self):
        for k in range(N_CLIENTS):
            t = threading.Thread(target=self._client, args=(k,), daemon=True)
            self.threads.append(t)
            t.start()

    def count(self):
        with self.lock:
            return len(self.accepted)

    def join(self):
        for t in self.threads:
            t.join(timeout=max(0.1, self.deadline - time.monotonic() + 5))
        expect(not any(t.is_alive() for t in self.threads), "client threads still running")


def _wait_accepted(load, n, timeout):
    deadline = time.monotonic() + timeout
    while load.count() < n and time.monotonic() < deadline:
        time.sleep(0.01)


def _drain_and_check(inst, load, t0, local_killed=False):
    """_drain_and_check - wait until every accepted message is in alice's Maildir (bounded),
    then fail on any loss; print the duplicates."""
    md = inst.maildirs["alice"]
    expect(not load.refused, "messages refused with 5xx: %r" % dict(list(load.refused.items())[:5]))
    expect(len(load.accepted) == N_MESSAGES,
           "only %d of %d messages got 250 within %.0fs (retries %d)"
           % (len(load.accepted), N_MESSAGES, SEND_DEADLINE, load.retries))
    log("%d messages accepted in %.1fs with %d retries"
        % (len(load.accepted), time.monotonic() - t0, load.retries))
    counts = md.wait_for(load.accepted, timeout=DRAIN_DEADLINE)
    # Then the queue itself should empty (as root we can look into body/). Bodies that a
    # killed qmgr opened and never committed stay until its start-up sweep (one hour).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        files = inst.body_files()
        if not files:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    counts = md.counts()
    lost = sorted(t for t in load.accepted if counts.get(t, 0) == 0)
    dups = {t: c for t, c in counts.items() if t in set(load.tags) and c > 1}
    extra = sum(c - 1 for c in dups.values())
    log("delivered %d distinct, lost %d, duplicates %d (on %d messages)"
        % (sum(1 for t in load.accepted if counts.get(t, 0) > 0), len(lost), extra, len(dups)))
    expect(not lost, "LOST %d messages that got 250: %s" % (len(lost), lost[:10]))
    left = inst.body_files()
    if left:
        log("queue not empty after delivery: %d body files" % len(left))
    if local_killed:
        # A delivery cut by SIGKILL leaves its tmp/ file; Maildir readers clean those up.
        if md.tmp_files():
            log("%d files left in Maildir tmp/ by the killed local" % len(md.tmp_files()))
    else:
        expect(not md.tmp_files(), "files left in Maildir tmp/: %d" % len(md.tmp_files()))


def _qmgr(inst):
    q = inst.daemons("qmgr")
    return q[0] if q else None


def test_kill_qmgr_loses_nothing():
    """kill -9 qmgr at a random moment during the load; master restarts it."""
    with Instance("killq") as inst:
        inst.start()
        q = inst.wait_daemons()["qmgr"][0]
        load = Load(inst, unique_tag("killq"))
        t0 = time.monotonic()
        load.start()
        at = random.randint(20, 150)
        _wait_accepted(load, at, 60)
        time.sleep(random.random() * 0.05)
        log("kill -9 qmgr pid %d after %d messages accepted" % (q["pid"], load.count()))
        kill_process(q)
        # master must start a new qmgr (the old one ran < 10 s maybe: allow the back-off).
        deadline = time.monotonic() + 40
        newq = None
        while time.monotonic() < deadline:
            newq = _qmgr(inst)
            if newq is not None and newq["pid"] != q["pid"]:
                break
            newq = None
            time.sleep(0.1)
        expect(newq is not None, "master did not restart qmgr within 40 s")
        log("qmgr restarted as pid %d after %.1fs" % (newq["pid"], time.monotonic() - t0))
        load.join()
        _drain_and_check(inst, load, t0)
        expect(inst.alive(), "master died")


def test_kill_everything_loses_nothing():
    """kill -9 master and every daemon at once at a random moment, restart with
    `postern start` (which must cope with the stale pid file and sockets)."""
    with Instance("killall") as inst:
        inst.start()
        load = Load(inst, unique_tag("killall"))
        t0 = time.monotonic()
        load.start()
        at = random.randint(20, 150)
        _wait_accepted(load, at, 60)
        time.sleep(random.random() * 0.05)
        procs = inst.kill_all()
        log("kill -9 of %d processes (%s) after %d messages accepted"
            % (len(procs), ",".join(sorted(set(daemon_kind(p) for p in procs))), load.count()))
        expect(not any(same_process(p) for p in procs), "a process survived SIGKILL")
        time.sleep(random.random() * 1.0)
        inst.start(foreground=False)
        log("restarted with `postern start`: master pid %d" % inst.master["pid"])
        load.join()
        _drain_and_check(inst, load, t0, local_killed=True)


def _body_path(inst, qid):
    """_body_path - queue/body/XX/QID with XX = characters 7-8 of the queue ID (qid_dir)."""
    return os.path.join(inst.queue_dir, "body", qid[7:9], qid)


def test_short_body_dropped_at_start():
    """The group commit writes the records, then one syncfs makes records and bodies durable
    before any 250; a power loss in between can leave records whose body is short or gone.
    Such a message was never acknowledged, so qmgr drops it at the next start (and says so),
    keeps every intact one, and removes bodies without an envelope whatever their age."""
    with Instance("shortbody", {"header_checks": "pcre:hold.pcre"}) as inst:
        with open(os.path.join(inst.dir, "hold.pcre"), "w") as f:
            f.write("/^X-Keep: yes/ HOLD kept for the test\n")
        inst.start()
        tags = [unique_tag("short") for _ in range(3)]
        for t in tags:
            inst.send(make_message(t, extra_headers=["X-Keep: yes"]))
        r = subprocess.run([POSTERN, "-c", inst.dir, "queue", "list", "--json"],
                           stdout=subprocess.PIPE, text=True, timeout=60)
        qids = sorted(json.loads(l)["queue_id"] for l in r.stdout.splitlines())
        expect(len(qids) == 3, "three held messages expected, got %r" % qids)
        inst.postern("stop", timeout=60)
        inst.stop()
        with open(_body_path(inst, qids[0]), "r+b") as f:
            f.truncate(10)                          # short
        os.unlink(_body_path(inst, qids[1]))        # gone
        orphan = qids[2][:15] + ("0" if qids[2][15] != "0" else "1")
        with open(_body_path(inst, qids[2]), "rb") as src, \
                open(_body_path(inst, orphan), "wb") as dst:
            dst.write(src.read())                   # a body no envelope names
        inst.start()
        # qmgr may still be checking bodies: the CLI waits for it rather than listing offline
        r = subprocess.run([POSTERN, "-c", inst.dir, "queue", "list", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        expect(r.returncode == 0 and "not running" not in r.stderr,
               "queue list right after the start: %d %r" % (r.returncode, r.stderr))
        left = sorted(json.loads(l)["queue_id"] for l in r.stdout.splitlines())
        expect(left == [qids[2]], "after the restart %r left, want only %r" % (left, qids[2]))
        text = inst.log_text()
        for qid, what in ((qids[0], "short"), (qids[1], "missing")):
            expect(("%s: dropped: body %s" % (qid, what)) in text,
                   "no log line for the %s body of %s" % (what, qid))
        expect(not os.path.exists(_body_path(inst, orphan)), "the orphan body is still there")
        expect(os.path.exists(_body_path(inst, qids[2])), "the intact body is gone")
        log("dropped %s (short) and %s (missing), kept %s" % (qids[0], qids[1], qids[2]))
