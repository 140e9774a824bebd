"""test_control - the daemon commands over public/control: status, stats --json,
log-level, pause|resume delivery, pause|resume smtpd, the socket's
mode and its robustness against garbage, oversized and idle clients.
"""

import json
import os
import pwd
import shutil
import socket
import stat
import struct
import subprocess
import time

from harness import IS_ROOT, POSTERN, Instance, Skip, expect, make_message, unique_tag


def _as_nobody(inst, *args):
    pw = pwd.getpwnam("nobody")
    return subprocess.run(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                           "--clear-groups", POSTERN, "-c", inst.dir] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60)


def _stats(inst, timeout=15.0):
    """_stats - `postern stats --json` once qmgr answers counters: its process may be up
    (wait_daemons) before it has opened the queue and said HELLO. Bounded by timeout."""
    deadline = time.monotonic() + timeout
    while True:
        r = inst.postern("stats", "--json")
        expect(r.returncode == 0, "stats --json exited %d: %s" % (r.returncode, r.stdout))
        st = json.loads(r.stdout)
        q = [d for d in st["daemons"] if d["name"] == "qmgr"]
        if (q and q[0]["counters"] is not None) or time.monotonic() >= deadline:
            return st
        time.sleep(0.2)


def _qmgr(st):
    return [d for d in st["daemons"] if d["name"] == "qmgr"][0]


def test_control_status_stats_loglevel_pause():
    with Instance("control") as inst:
        inst.start()
        inst.wait_daemons()
        sock = os.path.join(inst.queue_dir, "public", "control")
        mode = os.stat(sock).st_mode
        expect(stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o666,
               "control socket mode %o" % mode)

        r = inst.postern("status")
        expect(r.returncode == 0, "status: %s" % r.stdout)
        for word in ("qmgr", "smtpd", "local", "RESTARTS", "queue:", "sessions open"):
            expect(word in r.stdout, "status lacks %r:\n%s" % (word, r.stdout))

        st = _stats(inst)
        names = sorted(d["name"] for d in st["daemons"])
        expect("master" in names and "qmgr" in names and "smtpd" in names,
               "stats daemons %r" % names)
        q = _qmgr(st)
        for k in ("received", "delivered", "deferred", "bounced", "received_bytes",
                  "queue.messages"):
            expect(k in q["counters"], "qmgr counter %s missing: %r" % (k, q["counters"]))
        before = q["counters"]["delivered"]
        tag = unique_tag("ctl")
        inst.send(make_message(tag))
        inst.maildirs["alice"].wait_for([tag], timeout=20)
        time.sleep(0.3)
        q = _qmgr(_stats(inst))
        expect(q["counters"]["delivered"] == before + 1 and q["counters"]["received"] >= 1,
               "counters after one delivery: %r" % q["counters"])
        expect(q["counters"]["local.delivered"] >= 1, "local.delivered %r" % q["counters"])

        # log-level at run time: master and qmgr log debug lines afterwards.
        r = inst.postern("log-level", "debug")
        expect(r.returncode == 0 and "debug" in r.stdout, "log-level: %s" % r.stdout)
        inst.postern("stats")
        expect("qmgr" in inst.log_text() and "debug: control:" in inst.log_text(),
               "no debug lines after log-level debug")
        r = inst.postern("log-level", "loud")
        expect(r.returncode == 1, "log-level loud exited %d" % r.returncode)
        inst.postern("log-level", "info", check=True)

        # pause delivery: mail waits; resume: it goes.
        r = inst.postern("pause", "delivery")
        expect(r.returncode == 0, "pause delivery: %s" % r.stdout)
        expect(_qmgr(_stats(inst))["counters"]["delivery_paused"] == 1, "not paused")
        tag = unique_tag("paused")
        inst.send(make_message(tag))
        time.sleep(1.5)
        expect(not inst.maildirs["alice"].by_tag(tag), "delivered while paused")
        r = inst.postern("queue", "list")
        expect(r.returncode == 0 and "alice@local.test" in r.stdout, "queue while paused")
        r = inst.postern("resume", "delivery")
        expect(r.returncode == 0, "resume delivery: %s" % r.stdout)
        c = inst.maildirs["alice"].wait_for([tag], timeout=20)
        expect(c.get(tag) == 1, "not delivered after resume")

        # pause smtpd: every smtpd announced IPC_CAP_PAUSE and takes it; resume undoes it
        # (test_sendmail checks that a paused smtpd does not greet on the network).
        r = inst.postern("pause", "smtpd")
        expect(r.returncode == 0 and "paused" in r.stdout, "pause smtpd: %s" % r.stdout)
        r = inst.postern("resume", "smtpd")
        expect(r.returncode == 0, "resume smtpd: %s" % r.stdout)
        tag = unique_tag("still")
        inst.send(make_message(tag))
        inst.maildirs["alice"].wait_for([tag], timeout=20)

        # Ordinary users may look but not steer.
        if IS_ROOT and shutil.which("setpriv"):
            r = _as_nobody(inst, "stats", "--json")
            expect(r.returncode == 0, "nobody stats: %s" % r.stderr)
            for args in (("log-level", "debug"), ("pause", "delivery"), ("pause", "smtpd")):
                r = _as_nobody(inst, *args)
                expect(r.returncode == 1 and "permission denied" in r.stderr,
                       "nobody %r: %d %r" % (args, r.returncode, r.stderr))
            expect(_qmgr(_stats(inst))["counters"]["delivery_paused"] == 0, "nobody paused")

        # Garbage, a huge length, a wrong type, silence: each drops that client only.
        pids = {p["pid"] for p in inst.processes()}
        for junk in (b"GET / HTTP/1.0\r\n\r\n", struct.pack(">III", 30, 0x7fffffff, 0),
                     struct.pack(">III", 34, 0, 0), struct.pack(">III", 30, 4, 1) + b"\0\0\0\1"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(15)
            s.connect(sock)
            s.sendall(junk)
            try:
                data = s.recv(100)
            except socket.timeout:
                data = b"(timeout)"
            s.close()
            expect(data in (b"",) or data.startswith(b"\0\0\0\x22"),
                   "junk %r got %r" % (junk[:20], data))
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.connect(sock)
        r = inst.postern("queue", "list")
        expect(r.returncode == 0, "queue list beside an idle client: %s" % r.stdout)
        idle.settimeout(20)
        t0 = time.monotonic()
        expect(idle.recv(10) == b"", "idle client not closed")
        expect(time.monotonic() - t0 < 15, "idle client kept too long")
        idle.close()
        expect({p["pid"] for p in inst.processes()} == pids, "a daemon restarted")
        expect(_stats(inst)["daemons"][0]["counters"]["control_dropped"] >= 3,
               "drops not counted")
