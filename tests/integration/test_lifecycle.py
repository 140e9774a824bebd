"""test_lifecycle - master's supervision: status, restart of a crashed daemon, reload, stop."""

import os
import signal
import time

from harness import Instance, expect, kill_process, log, make_message, same_process, unique_tag

TIMEOUT = {"test_start_status_reload_stop": 120}


def test_start_status_reload_stop():
    with Instance("life") as inst:
        inst.start()
        kinds = inst.wait_daemons()
        pidfile = os.path.join(inst.queue_dir, "pid", "master.pid")
        expect(inst.master_pid_from_file() == inst.master["pid"],
               "queue/pid/master.pid holds %r, master is %d"
               % (inst.master_pid_from_file(), inst.master["pid"]))

        r = inst.postern("status", timeout=30)
        expect(r.returncode == 0, "postern status exited %d while running:\n%s"
               % (r.returncode, r.stdout))

        # A crashed smtpd is replaced, and mail still flows.
        victim = kinds["smtpd"][0]
        kill_process(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = [p["pid"] for p in inst.daemons("smtpd")]
            if len(now) >= len(kinds["smtpd"]) and victim["pid"] not in now:
                break
            time.sleep(0.1)
        now = [p["pid"] for p in inst.daemons("smtpd")]
        expect(len(now) >= len(kinds["smtpd"]) and victim["pid"] not in now,
               "smtpd %d was not replaced within 30 s (now %r)" % (victim["pid"], now))
        tag = unique_tag("life")
        inst.send(make_message(tag))
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "no delivery after the smtpd restart")

        # reload: master stays, the service keeps answering.
        master = inst.master
        r = inst.postern("reload", timeout=30)
        expect(r.returncode == 0, "postern reload exited %d:\n%s" % (r.returncode, r.stdout))
        inst.wait_ready(30)
        expect(same_process(master), "master changed over a reload")
        tag = unique_tag("life2")
        # While qmgr is replaced, smtpd may answer 4xx for a moment: retry like a client.
        n = inst.send_retry(make_message(tag), timeout=20)
        if n:
            log("%d temporary failures right after reload" % n)
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "no delivery after reload")

        # stop: everything exits, the pid file goes.
        procs = inst.processes()
        t0 = time.monotonic()
        r = inst.postern("stop", timeout=40)
        expect(r.returncode == 0, "postern stop exited %d:\n%s" % (r.returncode, r.stdout))
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and any(same_process(p) for p in procs):
            time.sleep(0.1)
        left = [(p["pid"], p["argv0"]) for p in procs if same_process(p)]
        expect(not left, "still running 25 s after postern stop: %r" % left)
        log("stopped in %.1fs" % (time.monotonic() - t0))
        expect(not os.path.exists(pidfile), "master.pid left after a clean stop")
