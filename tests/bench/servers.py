"""servers - the two servers tools/bench compares, each in a temporary directory and its own cgroup.

PosternServer: `postern -c DIR start -f` from the bin dir given, privilege separation as root
(users postern, postern-q, vmail), Maildirs under DIR/mail/.
PostfixServer: a private `postfix -c DIR/conf` instance (its own main.cf, master.cf, queue,
data directory and log file; never the system's service), virtual(8) Maildir delivery to
DIR/mail/ as the same vmail user.
Sink: Postfix's smtp-sink on a loopback port, for the relay scenario.

Every server runs in a fresh cgroup v2 directory when one can be made (the hybrid mount
/sys/fs/cgroup/unified or a pure v2 /sys/fs/cgroup): it lists every process of the instance
(also the short-lived ones Postfix forks), gives exact CPU time (cpu.stat, exited processes
included) and lets `perf stat -G` count fsync/fdatasync and context switches of the instance
only. Without a cgroup the processes are found below the master PID and CPU time is the
master's own plus its reaped children's (cutime/cstime) plus the live children's.

Every wait is bounded; stop() ends exactly the processes of the instance, by PID.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
USERS = ("postern", "postern-q", "vmail")
DOMAIN = "local.test"
MAILBOXES = ("alice", "bob")
RELAY_DOMAIN = "relay.test"
SIZE_LIMIT = 10 * 1024 * 1024      # message_size_limit, the same for both


class BenchError(Exception):
    pass


def log(msg):
    import sys
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# ------------------------------------------------------------------------------------------
# Ports, users, processes

_given = set()


def free_port():
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _given:
            _given.add(port)
            return port
    raise BenchError("no free loopback port")


def ensure_users():
    for u in USERS:
        try:
            pwd.getpwnam(u)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", u], check=True, timeout=60,
                           stdout=subprocess.DEVNULL)


def proc_stat(pid):
    """proc_stat - (ppid, utime+stime ticks, cutime+cstime ticks, starttime) or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = s[s.rfind(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return (int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]),
            int(fields[19]))


def descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st is not None:
                kids.setdefault(st[0], []).append(int(d))
    out, todo = [], [root]
    for _ in range(100000):
        if not todo:
            break
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def mem_of(pids):
    """mem_of - (rss_kB, pss_kB, nprocs) summed over pids, from /proc/PID/smaps_rollup."""
    rss = pss = n = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid, "rb") as f:
                data = f.read()
        except OSError:
            continue
        n += 1
        m = re.search(rb"^Rss:\s+(\d+)", data, re.M)
        if m:
            rss += int(m.group(1))
        m = re.search(rb"^Pss:\s+(\d+)", data, re.M)
        if m:
            pss += int(m.group(1))
    return rss, pss, n


def ctxsw_of(pids):
    """ctxsw_of - voluntary + involuntary context switches of the live processes pids."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid, "rb") as f:
                for line in f:
                    if line.startswith((b"voluntary_ctxt", b"nonvoluntary_ctxt")):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def smtp_greets(host, port, timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            data = b""
            deadline = time.monotonic() + timeout
            while b"\r\n" not in data and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"220"):
                try:
                    s.sendall(b"QUIT\r\n")
                except OSError:
                    pass
                return True
    except OSError:
        pass
    return False


# ------------------------------------------------------------------------------------------
# cgroup v2

def cgroup2_root():
    """cgroup2_root - the mount point of the cgroup v2 hierarchy, or None."""
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[2] == "cgroup2":
                    return parts[1]
    except OSError:
        pass
    return None


class Cgroup:
    """A fresh cgroup v2 directory for one server instance (or a disabled stand-in)."""

    def __init__(self, name, enabled=True):
        self.path = None
        self.rel = None
        root = cgroup2_root() if enabled else None
        if root is None:
            return
        rel = "postern-bench.%d.%s.%d" % (os.getpid(), name, int(time.monotonic() * 1000))
        path = os.path.join(root, rel)
        try:
            os.mkdir(path)
            with open(os.path.join(path, "cpu.stat")) as f:
                f.read()
        except OSError:
            try:
                os.rmdir(path)
            except OSError:
                pass
            return
        self.path, self.rel = path, rel

    def wrap(self, argv):
        """wrap - argv that first moves itself into this cgroup, then execs argv."""
        if self.path is None:
            return argv
        return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"',
                self.path] + argv

    def pids(self):
        if self.path is None:
            return []
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def cpu_usec(self):
        if self.path is None:
            return None
        try:
            with open(os.path.join(self.path, "cpu.stat")) as f:
                for line in f:
                    k, v = line.split()
                    if k == "usage_usec":
                        return int(v)
        except (OSError, ValueError):
            pass
        return None

    def remove(self):
        if self.path is None:
            return
        for _ in range(50):
            try:
                os.rmdir(self.path)
                self.path = None
                return
            except OSError:
                time.sleep(0.1)
        log("could not remove cgroup %s" % self.path)


# ------------------------------------------------------------------------------------------
# Common server behaviour

class Server:
    kind = "?"

    def __init__(self, name, use_cgroup=True):
        self.dir = tempfile.mkdtemp(prefix="bench-%s-%s-" % (self.kind, name))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.cg = Cgroup(self.kind + "-" + name, enabled=use_cgroup)
        self.maildir_root = os.path.join(self.dir, "mail")
        self.master_pid = None
        self.seen = {}               # pid -> starttime of every process seen, for cleanup
        self.is_root = os.geteuid() == 0

    # -- what the instance is made of

    def pids(self):
        if self.cg.path is not None:
            p = self.cg.pids()
        elif self.master_pid is not None and proc_stat(self.master_pid) is not None:
            p = [self.master_pid] + descendants(self.master_pid)
        else:
            p = []
        for pid in p:
            st = proc_stat(pid)
            if st is not None:
                self.seen[pid] = st[3]
        return p

    def cpu_seconds(self):
        """cpu_seconds - CPU time of the whole instance so far (exited processes included)."""
        u = self.cg.cpu_usec()
        if u is not None:
            return u / 1e6
        hz = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            st = proc_stat(pid)
            if st is None:
                continue
            total += st[1]
            if pid == self.master_pid:
                total += st[2]       # reaped children are accounted to the parent
        return total / hz

    def memory(self):
        return mem_of(self.pids())

    def maildir_count(self, user="alice"):
        try:
            return len(os.listdir(os.path.join(self.maildir_root, user, "new")))
        except OSError:
            return 0

    def make_maildirs(self, owner):
        os.makedirs(self.maildir_root, exist_ok=True)
        os.chmod(self.maildir_root, 0o755)
        for u in MAILBOXES:
            for sub in ("", "new", "cur", "tmp"):
                p = os.path.join(self.maildir_root, u, sub)
                os.makedirs(p, mode=0o700, exist_ok=True)
                if owner is not None:
                    os.chown(p, *owner)
        if owner is not None:
            os.chown(self.maildir_root, *owner)

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if smtp_greets(self.host, self.port):
                self.find_master()
                self.pids()
                return
            time.sleep(0.1)
        raise BenchError("%s did not greet on port %d within %.0fs\n%s" % (
            self.kind, self.port, timeout, self.log_tail()))

    def find_master(self):
        pass

    def log_tail(self, n=30):
        try:
            with open(self.logfile, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return "(no log)"

    def kill_leftovers(self, timeout=5.0):
        """kill_leftovers - SIGKILL, by PID, every process of ours that is still alive."""
        left = set(self.pids())
        for pid, start in self.seen.items():
            st = proc_stat(pid)
            if st is not None and st[3] == start:
                left.add(pid)
        for pid in left:
            st = proc_stat(pid)
            if st is None:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(proc_stat(p) is not None for p in left):
                break
            time.sleep(0.05)
        return sorted(left)

    def wait_empty(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pids():
                return True
            time.sleep(0.1)
        return False

    def cleanup(self, keep=False):
        try:
            self.stop()
        finally:
            self.cg.remove()
            if keep:
                log("kept %s" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# Postern

class PosternServer(Server):
    kind = "postern"

    def __init__(self, name, bindir, conf=None, use_cgroup=True):
        super().__init__(name, use_cgroup)
        self.bindir = bindir
        self.postern = os.path.join(bindir, "postern")
        self.logfile = os.path.join(self.dir, "postern.log")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.proc = None
        self.conf = {
            "queue_directory": "queue",
            "smtp_listen": "%s:%d" % (self.host, self.port),
            "myhostname": "mx.local.test",
            "local_domains": DOMAIN,
            "mailbox_map": "mailboxes",
            "message_size_limit": str(SIZE_LIMIT),
            "log_level": "info",
        }
        if self.is_root:
            ensure_users()
            self.conf.update({"mail_owner": "postern", "queue_owner": "postern-q",
                              "mailbox_owner": "vmail"})
            pw = pwd.getpwnam("vmail")
            owner = (pw.pw_uid, pw.pw_gid)
        else:
            me = pwd.getpwuid(os.geteuid()).pw_name
            self.conf.update({"mail_owner": me, "queue_owner": me, "mailbox_owner": me})
            owner = None
        self.conf.update(conf or {})
        self.make_maildirs(owner)
        with open(os.path.join(self.dir, "postern.conf"), "w") as f:
            f.write("# written by tools/bench\n")
            for k, v in self.conf.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.dir, "mailboxes"), "w") as f:
            for u in MAILBOXES:
                f.write("%s@%s %s/\n" % (u, DOMAIN, os.path.join(self.maildir_root, u)))

    def start(self, timeout=30.0):
        if not os.access(self.postern, os.X_OK):
            raise BenchError("%s is not built (make B=... or --bin)" % self.postern)
        r = subprocess.run([self.postern, "-c", self.dir, "map", "build",
                            os.path.join(self.dir, "mailboxes")], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                           text=True)
        if r.returncode != 0:
            raise BenchError("postern map build failed: %s" % r.stdout)
        logf = open(self.logfile, "ab")
        try:
            self.proc = subprocess.Popen(self.cg.wrap([self.postern, "-c", self.dir, "start",
                                                       "-f"]),
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         start_new_session=True, close_fds=True)
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("postern start -f exited %s\n%s" % (self.proc.returncode,
                                                                     self.log_tail()))
            if smtp_greets(self.host, self.port):
                break
            time.sleep(0.1)
        self.wait_ready(max(1.0, deadline - time.monotonic()))

    def find_master(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                self.master_pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            if self.proc is not None:
                self.master_pid = self.proc.pid

    def daemon_pids(self, name):
        out = []
        for pid in self.pids():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    argv0 = f.read().split(b"\0")[0].decode("utf-8", "replace")
            except OSError:
                continue
            if os.path.basename(argv0) == name:
                out.append(pid)
        return out

    def queue_count(self):
        """queue_count - spool files in queue/body/*/ (a body is unlinked when final)."""
        n = 0
        body = os.path.join(self.queue_dir, "body")
        try:
            subs = os.listdir(body)
        except OSError:
            return 0
        for s in subs:
            try:
                n += len(os.listdir(os.path.join(body, s)))
            except OSError:
                pass
        return n

    def stop(self, timeout=20.0):
        if self.proc is None and self.master_pid is None:
            return
        self.pids()
        try:
            subprocess.run([self.postern, "-c", self.dir, "stop"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)
        except (subprocess.TimeoutExpired, OSError):
            pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                if self.master_pid is not None and proc_stat(self.master_pid) is not None:
                    os.kill(self.master_pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self.wait_empty(5)
        left = self.kill_leftovers()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if left:
            log("postern: killed leftover processes %s" % left)
        self.proc = None
        self.master_pid = None

    def qmgr_stats(self):
        """qmgr_stats - qmgr's own counters logged when it stopped (group commits, flushes)."""
        try:
            with open(self.logfile, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        found = None
        for m in re.finditer(r"stopped: group_commits=(\d+) messages=(\d+) log_flushes=(\d+)",
                             text):
            found = {"group_commits": int(m.group(1)), "messages": int(m.group(2)),
                     "log_flushes": int(m.group(3))}
        return found


# ------------------------------------------------------------------------------------------
# Postfix

POSTFIX_MASTER_CF = os.path.join(HERE, "postfix-master.cf")


class PostfixServer(Server):
    kind = "postfix"

    def __init__(self, name, conf=None, use_cgroup=True):
        super().__init__(name, use_cgroup)
        if not self.is_root:
            raise BenchError("the private Postfix instance needs root")
        if shutil.which("postfix") is None and not os.path.exists("/usr/sbin/postfix"):
            raise BenchError("postfix is not installed (tools/install-deps)")
        self.confdir = os.path.join(self.dir, "conf")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.logfile = os.path.join(self.dir, "postfix.log")
        os.makedirs(self.confdir)
        os.mkdir(self.queue_dir, 0o755)
        pw = pwd.getpwnam("vmail") if self._have_user("vmail") else None
        if pw is None:
            ensure_users()
            pw = pwd.getpwnam("vmail")
        self.make_maildirs((pw.pw_uid, pw.pw_gid))
        d = self.dir
        self.conf = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": os.path.join(d, "data"),
            "mail_owner": "postfix",
            "myhostname": "mx.local.test",
            "mydomain": DOMAIN,
            "myorigin": DOMAIN,
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks reject_unauth_destination",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": self.maildir_root,
            "virtual_mailbox_maps": "hash:%s/vmailbox" % self.confdir,
            "virtual_uid_maps": "static:%d" % pw.pw_uid,
            "virtual_gid_maps": "static:%d" % pw.pw_gid,
            "message_size_limit": str(SIZE_LIMIT),
            "virtual_mailbox_limit": str(SIZE_LIMIT * 5),
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "maillog_file": self.logfile,
            "maillog_file_prefixes": d,
            "smtpd_banner": "$myhostname ESMTP",
            "smtp_host_lookup": "native",
            "smtpd_tls_session_cache_database": "",
            "smtp_tls_session_cache_database": "",
        }
        self.conf.update(conf or {})
        with open(os.path.join(self.confdir, "main.cf"), "w") as f:
            f.write("# written by tools/bench: a private instance, never the system's\n")
            for k, v in self.conf.items():
                f.write("%s = %s\n" % (k, v))
        with open(POSTFIX_MASTER_CF) as f:
            master = f.read()
        with open(os.path.join(self.confdir, "master.cf"), "w") as f:
            f.write(master.replace("@LISTEN@", "%s:%d" % (self.host, self.port)))
        with open(os.path.join(self.confdir, "vmailbox"), "w") as f:
            for u in MAILBOXES:
                f.write("%s@%s %s/\n" % (u, DOMAIN, u))
        self._run(["postmap", "-c", self.confdir, os.path.join(self.confdir, "vmailbox")])
        self.started = False

    @staticmethod
    def _have_user(u):
        try:
            pwd.getpwnam(u)
            return True
        except KeyError:
            return False

    def _run(self, argv, timeout=60, wrap=False):
        r = subprocess.run(self.cg.wrap(argv) if wrap else argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           text=True, errors="replace")
        if r.returncode != 0:
            raise BenchError("%s exited %d: %s\n%s" % (" ".join(argv), r.returncode, r.stdout,
                                                       self.log_tail()))
        return r.stdout

    def start(self, timeout=30.0):
        self._run(["postfix", "-c", self.confdir, "check"])
        self.started = True
        self._run(["postfix", "-c", self.confdir, "start"], wrap=True)
        self.wait_ready(timeout)

    def find_master(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                self.master_pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass

    def queue_count(self):
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            top = os.path.join(self.queue_dir, sub)
            for _, _, files in os.walk(top):
                n += len(files)
        return n

    def stop(self, timeout=20.0):
        if not self.started:
            return
        self.pids()
        try:
            subprocess.run(["postfix", "-c", self.confdir, "stop"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=timeout)
        except (subprocess.TimeoutExpired, OSError):
            pass
        self.wait_empty(10)
        left = self.kill_leftovers()
        if left:
            log("postfix: killed leftover processes %s" % left)
        self.started = False
        self.master_pid = None


# ------------------------------------------------------------------------------------------
# smtp-sink

class Sink:
    """smtp-sink on a loopback port, counting messages (-c output in a file)."""

    def __init__(self, workdir):
        self.port = free_port()
        self.out = os.path.join(workdir, "sink-%d.out" % self.port)
        self.proc = None

    def start(self):
        f = open(self.out, "wb")
        try:
            self.proc = subprocess.Popen(["smtp-sink", "-c", "-u", "nobody", "-m", "2000",
                                          "127.0.0.1:%d" % self.port, "1000"],
                                         stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            f.close()
        for _ in range(100):
            if smtp_greets("127.0.0.1", self.port):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise BenchError("smtp-sink did not start")

    def count(self):
        try:
            with open(self.out, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - 200))
                tail = f.read()
        except OSError:
            return 0
        m = re.findall(rb"mesg=(\d+)", tail)
        return int(m[-1]) if m else 0

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        try:
            os.unlink(self.out)
        except OSError:
            pass
