"""test_privsep - as root: each daemon runs as the user and in the chroot the design says."""

import os
import pwd
import time

from harness import (IS_ROOT, Instance, Skip, daemon_kind, expect, log, make_message,
                     unique_tag)


def _status(pid, field):
    """_status - the words after `field:` in /proc/PID/status; None if gone or absent."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].split()
    except FileNotFoundError:
        return None
    return None


def _ids(pid, field):
    v = _status(pid, field)
    return [int(x) for x in v] if v else None


def _problems(inst, queue, chroot):
    """_problems - everything wrong with the process users and roots now (empty = fine)."""
    pw_postern = pwd.getpwnam("postern")
    pw_q = pwd.getpwnam("postern-q")
    out = []
    procs = inst.processes()
    kinds = {}
    for p in procs:
        kinds.setdefault(daemon_kind(p), []).append(p)
    for k in ("master", "smtpd", "qmgr", "local", "anvil"):
        if k not in kinds:
            out.append("no %s process below master (have %s)" % (k, sorted(kinds)))

    # anvil runs like smtpd: mail_owner in smtpd's chroot
    for p in kinds.get("smtpd", []) + kinds.get("anvil", []):
        pid, kind = p["pid"], daemon_kind(p)
        uids, gids = _ids(pid, "Uid"), _ids(pid, "Gid")
        if uids != [pw_postern.pw_uid] * 4:
            out.append("%s %d uids %r, want postern (%d)" % (kind, pid, uids,
                                                             pw_postern.pw_uid))
        if gids != [pw_postern.pw_gid] * 4:
            out.append("%s %d gids %r, want %d" % (kind, pid, gids, pw_postern.pw_gid))
        groups = _ids(pid, "Groups") or []
        if any(g != pw_postern.pw_gid for g in groups):
            out.append("%s %d supplementary groups %r" % (kind, pid, groups))
        try:
            root = os.readlink("/proc/%d/root" % pid)
        except OSError as e:
            root = str(e)
        if root != chroot:
            out.append("%s %d root is %r, want %r" % (kind, pid, root, chroot))
        if _status(pid, "NoNewPrivs") != ["1"]:
            out.append("%s %d: NoNewPrivs not set" % (kind, pid))

    for p in kinds.get("qmgr", []):
        pid = p["pid"]
        uids = _ids(pid, "Uid")
        if uids != [pw_q.pw_uid] * 4:
            out.append("qmgr %d uids %r, want postern-q (%d)" % (pid, uids, pw_q.pw_uid))
        try:
            root = os.readlink("/proc/%d/root" % pid)
        except OSError as e:
            root = str(e)
        if root != queue:
            out.append("qmgr %d root is %r, want %r" % (pid, root, queue))
        if _status(pid, "NoNewPrivs") != ["1"]:
            out.append("qmgr %d: NoNewPrivs not set" % pid)

    for p in procs:
        uids = _ids(p["pid"], "Uid") or []
        if 0 in uids and daemon_kind(p) not in ("master", "local"):
            out.append("%s (pid %d, %s) runs with uid 0" % (daemon_kind(p), p["pid"], p["argv0"]))
    return out, kinds


def test_privilege_separation():
    """smtpd as postern chrooted to queue/empty, qmgr as postern-q chrooted to the queue,
    only master and local as root; the queue layout has the owners and modes of
    doc/internals.md; mail still flows and lands owned by vmail."""
    if not IS_ROOT:
        raise Skip("needs root (daemons only switch users when started as root)")
    with Instance("priv") as inst:
        inst.start()
        inst.wait_daemons({"smtpd": 2, "qmgr": 1, "local": 1, "anvil": 1})
        queue = os.path.realpath(inst.queue_dir)
        chroot = os.path.join(queue, "empty")
        # Daemons drop privileges after opening what they need: allow them a moment.
        deadline = time.monotonic() + 10
        while True:
            problems, kinds = _problems(inst, queue, chroot)
            if not problems or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        log("processes: " + ", ".join("%s=%s" % (k, [p["pid"] for p in v])
                                      for k, v in sorted(kinds.items())))
        expect(not problems, "privilege separation:\n      " + "\n      ".join(problems))

        pw_q = pwd.getpwnam("postern-q")
        for sub in ("db", "body"):
            st = os.stat(os.path.join(queue, sub))
            expect(st.st_uid == pw_q.pw_uid and (st.st_mode & 0o777) == 0o700,
                   "queue/%s owner %d mode %o, want postern-q 0700"
                   % (sub, st.st_uid, st.st_mode & 0o777))
        st = os.stat(chroot)
        expect(st.st_uid == 0 and (st.st_mode & 0o222) == 0,
               "queue/empty owner %d mode %o, want root and not writable"
               % (st.st_uid, st.st_mode & 0o777))

        tag = unique_tag("priv")
        inst.send(make_message(tag))
        got = inst.maildirs["alice"].wait_for([tag], timeout=30)
        expect(got.get(tag) == 1, "message not delivered under privilege separation")
        vmail = pwd.getpwnam("vmail")
        md = inst.maildirs["alice"].path
        for sub in ("new", "cur"):
            for n in os.listdir(os.path.join(md, sub)):
                st = os.stat(os.path.join(md, sub, n))
                expect(st.st_uid == vmail.pw_uid, "Maildir file %s owned by uid %d, want vmail (%d)"
                       % (n, st.st_uid, vmail.pw_uid))
