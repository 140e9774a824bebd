"""test_anvil - the client counter service: master runs one anvil (as mail_owner in smtpd's
chroot when root), `postern status` and `stats` show it, a killed anvil is restarted while
mail keeps flowing (smtpd fails open meanwhile and takes the new one), and a reload
replaces it.

The limits themselves (60 connections against a limit of 50, ...) are tested end to end in
test_policy.py."""

import json
import os
import pwd
import re
import signal
import time

from harness import (IS_ROOT, Instance, expect, kill_process, log, make_message,
                     same_process, unique_tag)

TIMEOUT = {"test_anvil_restart_and_reload": 150}

# Loopback is not exempt here, so smtpd's checks really go to anvil.
CONF = {"smtpd_client_limit_exceptions": "", "smtpd_client_connection_count_limit": "50",
        "smtpd_client_message_rate_limit": "1000"}


def _status_field(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].split()
    except FileNotFoundError:
        return None
    return None


def _anvil_stats(inst):
    r = inst.postern("stats", "--json")
    expect(r.returncode == 0, "stats --json exited %d: %s" % (r.returncode, r.stdout))
    st = json.loads(r.stdout)
    return [d for d in st["daemons"] if d["name"] == "anvil"]


def _wait_new_anvil(inst, old_pids, timeout=30.0):
    """_wait_new_anvil - proc_info of the one anvil that is not one of old_pids."""
    deadline = time.monotonic() + timeout
    while True:
        now = inst.daemons("anvil")
        fresh = [p for p in now if p["pid"] not in old_pids]
        if len(now) == 1 and fresh:
            return fresh[0]
        if time.monotonic() >= deadline:
            raise AssertionError("no new anvil within %.0fs (now %r)\n%s"
                                 % (timeout, [p["pid"] for p in now], inst.log_tail()))
        time.sleep(0.1)


def _wait_log(inst, needle, count, timeout=15.0):
    """_wait_log - wait until needle appears at least count times in the log."""
    deadline = time.monotonic() + timeout
    while inst.log_text().count(needle) < count:
        if time.monotonic() >= deadline:
            raise AssertionError("%r not logged %d times within %.0fs\n%s"
                                 % (needle, count, timeout, inst.log_tail()))
        time.sleep(0.1)


def test_anvil_runs():
    """One anvil below master, shown by status and stats; as root it runs as postern in
    queue/empty with NoNewPrivs."""
    with Instance("anvil", conf=CONF) as inst:
        inst.start()
        kinds = inst.wait_daemons({"smtpd": 1, "qmgr": 1, "local": 1, "anvil": 1})
        expect(len(kinds["anvil"]) == 1, "anvil processes: %r"
               % [p["pid"] for p in kinds["anvil"]])
        pid = kinds["anvil"][0]["pid"]

        r = inst.postern("status")
        expect(r.returncode == 0 and "anvil" in r.stdout, "status:\n%s" % r.stdout)

        tag = unique_tag("anvil")
        inst.send(make_message(tag))
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "no delivery with anvil running")

        # stats: anvil answers counters (allow it a moment to say CAPS)
        deadline = time.monotonic() + 10
        while True:
            a = _anvil_stats(inst)
            if a and a[0]["counters"] is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        expect(len(a) == 1 and a[0]["counters"] is not None, "anvil in stats: %r" % a)
        for k in ("clients", "peers", "requests", "evictions", "table_full"):
            expect(k in a[0]["counters"], "anvil counter %s missing: %r" % (k, a[0]["counters"]))
        expect(a[0]["counters"]["peers"] >= 1, "anvil has no smtpd peer: %r" % a[0]["counters"])
        log("anvil pid %d counters %r" % (pid, a[0]["counters"]))

        if IS_ROOT:
            pw = pwd.getpwnam("postern")
            uids = [int(x) for x in (_status_field(pid, "Uid") or [])]
            gids = [int(x) for x in (_status_field(pid, "Gid") or [])]
            expect(uids == [pw.pw_uid] * 4, "anvil uids %r, want postern" % uids)
            expect(gids == [pw.pw_gid] * 4, "anvil gids %r" % gids)
            root = os.readlink("/proc/%d/root" % pid)
            want = os.path.join(os.path.realpath(inst.queue_dir), "empty")
            expect(root == want, "anvil root %r, want %r" % (root, want))
            expect(_status_field(pid, "NoNewPrivs") == ["1"], "anvil: NoNewPrivs not set")


def test_anvil_restart_and_reload():
    """kill -9 of anvil: master starts another, smtpd notices both and mail flows all the
    while; a reload replaces anvil too, and only one is left."""
    with Instance("anvil-restart", conf=CONF) as inst:
        inst.start()
        kinds = inst.wait_daemons({"smtpd": 1, "anvil": 1})
        nsmtpd = len(kinds["smtpd"])
        victim = kinds["anvil"][0]

        kill_process(victim, signal.SIGKILL)
        # At once, before a new anvil can be there: smtpd fails open.
        tag = unique_tag("anvil-down")
        inst.send(make_message(tag))
        fresh = _wait_new_anvil(inst, {victim["pid"]})
        expect(not same_process(victim), "the killed anvil still runs")
        log("anvil %d replaced by %d" % (victim["pid"], fresh["pid"]))
        _wait_log(inst, "client limits are not enforced until anvil is back", nsmtpd)
        _wait_log(inst, "client limits are enforced again", nsmtpd)
        tag2 = unique_tag("anvil-up")
        inst.send(make_message(tag2))
        got = inst.maildirs["alice"].wait_for([tag, tag2], timeout=30)
        expect(got.get(tag) == 1 and got.get(tag2) == 1,
               "deliveries around the anvil restart: %r" % got)
        text = inst.log_text()
        expect("daemon=anvil" in text and "exited" in text, "master did not log the exit")

        # A session open across the reload: its retired smtpd gets the new anvil too.
        old = inst.smtp()
        old.greet()
        old_smtpd = inst.smtpd_pid_of(old.local_port)
        expect(old_smtpd is not None, "no smtpd logged our connection")
        mark = len(inst.log_text())
        r = inst.postern("reload", timeout=30)
        expect(r.returncode == 0, "postern reload exited %d:\n%s" % (r.returncode, r.stdout))
        inst.wait_ready(30)
        after = _wait_new_anvil(inst, {victim["pid"], fresh["pid"]})
        pat = re.compile(r"smtpd\[%d\]: info: anvil (connected|connection replaced)"
                         % old_smtpd)
        deadline = time.monotonic() + 15
        while not pat.search(inst.log_text()[mark:]) and time.monotonic() < deadline:
            time.sleep(0.1)
        expect(pat.search(inst.log_text()[mark:]),
               "retired smtpd %d did not get the new anvil\n%s" % (old_smtpd, inst.log_tail()))
        expect(old.cmd("MAIL FROM:<old@example.org>").code == 250, "MAIL in the old session")
        expect(old.cmd("QUIT").code == 221, "QUIT in the old session")
        old.close()
        expect(not same_process(fresh) or fresh["pid"] == after["pid"],
               "the old anvil still runs after reload")
        tag3 = unique_tag("anvil-reload")
        inst.send_retry(make_message(tag3), timeout=20)
        got = inst.maildirs["alice"].wait_for([tag3], timeout=30)
        expect(got.get(tag3) == 1, "no delivery after reload")
        deadline = time.monotonic() + 10
        while len(inst.daemons("anvil")) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        expect(len(inst.daemons("anvil")) == 1, "anvil processes after reload: %r"
               % [p["pid"] for p in inst.daemons("anvil")])
