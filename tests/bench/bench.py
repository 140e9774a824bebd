"""bench - Postern next to a stock Postfix, the same workloads in the same run (issue 7).

Run as tools/bench (see `tools/bench --help` and doc/performance.md). Scenarios:

  small   20,000 x 1 KB messages, 20 concurrent sessions, 10 messages per session
  large   2,000 x 100 KB, same shape
  churn   5,000 messages, one per connection, 20 concurrent (Postfix's smtp-source)
  tls     2,000 STARTTLS sessions (full handshake each), one message each, 20 clients
  relay   the small load to a remote domain, relayed to smtp-sink on loopback
  idle    N idle SMTP sessions (after EHLO) held open: how many each server serves, the
          memory of all its processes, and the time a new session needs for a transaction

Throughput = messages accepted / time from the first connection until the queue is empty and
every message is in the Maildir (or, for relay, counted by smtp-sink). Each throughput run
gets fresh instances (queue, Maildirs); runs alternate the two servers. CPU = the instance's
cgroup cpu.stat (all its processes, exited ones too); fsyncs and context switches = `perf stat
-G` on the instance's cgroup; peak memory = the sum of RSS over the instance's processes,
sampled every 0.5 s.
"""

import argparse
import datetime
import json
import os
import resource
import shutil
import signal
import smtplib
import socket
import selectors
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.realpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import servers  # noqa: E402
from servers import (BenchError, PosternServer, PostfixServer, Sink, log, mem_of,  # noqa: E402
                     DOMAIN, RELAY_DOMAIN)

SMTPLOAD = os.path.join(HERE, "smtpload.py")

FULL = {
    "small": {"messages": 20000, "sessions": 20, "per_session": 10, "size": 1024},
    "large": {"messages": 2000, "sessions": 20, "per_session": 10, "size": 100 * 1024},
    "churn": {"messages": 5000, "sessions": 20, "per_session": 1, "size": 1024},
    "tls": {"messages": 2000, "sessions": 20, "per_session": 1, "size": 1024,
            "starttls": True},
    "relay": {"messages": 20000, "sessions": 20, "per_session": 10, "size": 1024,
              "relay": True},
    "idle": {"counts": [1000, 10000]},
}
QUICK = {
    "small": {"messages": 500, "sessions": 20, "per_session": 10, "size": 1024},
    "large": {"messages": 60, "sessions": 20, "per_session": 3, "size": 100 * 1024},
    "churn": {"messages": 100, "sessions": 20, "per_session": 1, "size": 1024},
    "tls": {"messages": 60, "sessions": 20, "per_session": 1, "size": 1024, "starttls": True},
    "relay": {"messages": 500, "sessions": 20, "per_session": 10, "size": 1024, "relay": True},
    "idle": {"counts": [200]},
}
ORDER = ["small", "large", "churn", "tls", "relay", "idle"]
SERVERS = ["postern", "postfix"]

STOP = threading.Event()


# ------------------------------------------------------------------------------------------
# Measuring helpers

class Sampler(threading.Thread):
    """Sampler - peak total RSS (and process count) of a server, every `interval` seconds."""

    def __init__(self, server, interval=0.5, pss_every=4):
        super().__init__(daemon=True)
        self.server, self.interval, self.pss_every = server, interval, pss_every
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0          # PSS (shared pages split): smaps_rollup is slower
        self.peak_procs = 0
        self.n = 0
        self.done = threading.Event()
        self.page_kb = os.sysconf("SC_PAGE_SIZE") // 1024

    def sample(self, pss=False):
        pids = self.server.pids()
        if pss or self.n % self.pss_every == 0:
            self.peak_pss_kb = max(self.peak_pss_kb, mem_of(pids)[1])
        self.n += 1
        rss = 0
        for pid in pids:
            try:
                with open("/proc/%d/statm" % pid, "rb") as f:
                    rss += int(f.read().split()[1]) * self.page_kb
            except (OSError, IndexError, ValueError):
                pass
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        self.peak_procs = max(self.peak_procs, len(pids))

    def run(self):
        for _ in range(100000):
            self.sample()
            if self.done.wait(self.interval):
                break

    def stop(self):
        self.done.set()
        self.join(timeout=10)
        self.sample(pss=True)


# syncfs counts too: Postern's qmgr and local make a whole batch durable with one syncfs.
PERF_EVENTS = ["syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync",
               "syscalls:sys_enter_syncfs", "context-switches"]


def perf_usable():
    if shutil.which("perf") is None:
        return False
    try:
        r = subprocess.run(["perf", "stat", "-x,", "-e", ",".join(PERF_EVENTS), "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30,
                           text=True)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and "not supported" not in r.stderr and "<not supp" not in r.stderr


class Perf:
    """Perf - `perf stat` counting fsync/fdatasync/context switches of a cgroup or of pids."""

    def __init__(self, workdir, cgroup=None, pids=None, events=PERF_EVENTS):
        self.out = tempfile.mktemp(prefix="perf-", suffix=".csv", dir=workdir)
        self.events = events
        self.per_pid = cgroup is None
        argv = ["perf", "stat", "-x,", "-o", self.out, "-e", ",".join(events)]
        if cgroup is not None:
            argv += ["-a", "-G", ",".join([cgroup] * len(events))]
        else:
            argv += ["--per-thread", "-p", ",".join(str(p) for p in pids)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.3)       # let it attach

    def stop(self):
        """stop - SIGINT perf; returns {event: count}, or {pid: {event: count}} per pid."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        out = {}
        try:
            with open(self.out) as f:
                for line in f:
                    parts = line.strip().split(",")
                    if line.startswith("#") or len(parts) < (4 if self.per_pid else 3):
                        continue
                    key = None
                    if self.per_pid:        # comm-pid,value,unit,event,...
                        try:
                            key = int(parts[0].rsplit("-", 1)[1])
                        except (IndexError, ValueError):
                            continue
                        parts = parts[1:]
                    ev = parts[2]
                    if ev not in self.events:
                        continue
                    d = out.setdefault(key, {}) if self.per_pid else out
                    try:
                        d[ev] = d.get(ev, 0) + int(float(parts[0]))
                    except ValueError:
                        d[ev] = d.get(ev, 0)            # <not counted>: no event at all
        except OSError:
            pass
        try:
            os.unlink(self.out)
        except OSError:
            pass
        return out


def fsyncs(counts):
    if not counts or PERF_EVENTS[0] not in counts:
        return None
    return sum(counts.get(ev, 0) for ev in PERF_EVENTS[:3])


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def send_one(host, port, rcpt, timeout=20.0, starttls=False):
    """send_one - one message with smtplib; returns None or the error text."""
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as s:
            s.ehlo("probe.client")
            if starttls:
                s.starttls()
                s.ehlo("probe.client")
            s.sendmail("bench@%s" % DOMAIN, [rcpt],
                       b"Subject: probe\r\nFrom: <bench@local.test>\r\n\r\nprobe\r\n")
    except (smtplib.SMTPException, OSError) as e:
        return "%s: %s" % (e.__class__.__name__, e)
    return None


def ehlo_features(host, port, timeout=10.0):
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as s:
            s.ehlo("probe.client")
            return dict(s.esmtp_features)
    except (smtplib.SMTPException, OSError):
        return None


def wait_until(cond, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not STOP.is_set():
        if cond():
            return True
        time.sleep(interval)
    return cond()


# ------------------------------------------------------------------------------------------
# The run

class Bench:
    def __init__(self, args):
        self.args = args
        self.plan = {k: dict(v) for k, v in (QUICK if args.quick else FULL).items()}
        if args.idle:
            self.plan["idle"]["counts"] = [int(x) for x in args.idle.split(",") if x.strip()]
        if args.scale != 1.0:
            for v in self.plan.values():
                if "messages" in v:
                    v["messages"] = max(v["sessions"] * v["per_session"],
                                        int(v["messages"] * args.scale))
        self.runs = args.runs if args.runs else (1 if args.quick else 3)
        self.workdir = tempfile.mkdtemp(prefix="postern-bench-")
        os.chmod(self.workdir, 0o755)
        self.live = []                      # servers and sinks to clean up
        self.perf = (not args.no_perf) and os.geteuid() == 0 and perf_usable()
        self.tls_dir = None
        self.errors = []
        self.results = {"started": datetime.datetime.now().astimezone().isoformat(
            timespec="seconds"), "quick": args.quick, "runs": self.runs, "host": host_facts(),
            "scenarios": {}}

    # -- instances

    def make(self, which, name, sc, sink=None):
        extra_pn, extra_pf = {}, {}
        if sc.get("starttls"):
            cert, key = self.certificate()
            extra_pn.update({"smtpd_tls_cert_file": cert, "smtpd_tls_key_file": key})
            extra_pf.update({"smtpd_tls_cert_file": cert, "smtpd_tls_key_file": key,
                             "smtpd_tls_security_level": "may"})
        if sink is not None:
            extra_pn["relayhost"] = "[127.0.0.1]:%d" % sink.port
            extra_pf["relayhost"] = "[127.0.0.1]:%d" % sink.port
        if "counts" in sc:
            # Let Postern hold the sessions the scenario opens; Postfix keeps its defaults
            # (one smtpd process per session, default_process_limit = 100).
            extra_pn["smtpd_max_sessions"] = str(max(sc["counts"]) + 100)
        extra_pn.update(self.args.postern_conf)
        extra_pf.update(self.args.postfix_conf)
        if which == "postern":
            srv = PosternServer(name, self.args.bin, extra_pn, use_cgroup=not self.args.no_cgroup)
        else:
            srv = PostfixServer(name, extra_pf, use_cgroup=not self.args.no_cgroup)
        self.live.append(srv)
        return srv

    def release(self, obj):
        try:
            if isinstance(obj, Sink):
                obj.stop()
            else:
                obj.cleanup(keep=self.args.keep)
        finally:
            if obj in self.live:
                self.live.remove(obj)

    def cleanup(self):
        for obj in list(self.live):
            try:
                self.release(obj)
            except Exception as e:          # noqa: BLE001 - cleanup goes on
                log("cleanup: %s" % e)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def certificate(self):
        if self.tls_dir is None:
            self.tls_dir = os.path.join(self.workdir, "tls")
            os.mkdir(self.tls_dir, 0o755)
            key = os.path.join(self.tls_dir, "key.pem")
            cert = os.path.join(self.tls_dir, "cert.pem")
            r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                "-days", "30", "-subj", "/CN=mx.local.test", "-keyout", key,
                                "-out", cert], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            if r.returncode != 0:
                raise BenchError("openssl req failed: %s" % r.stdout)
            os.chmod(key, 0o600)
            os.chmod(cert, 0o644)
        return (os.path.join(self.tls_dir, "cert.pem"), os.path.join(self.tls_dir, "key.pem"))

    # -- one throughput run

    def throughput_run(self, name, which, sc, idx):
        sink = None
        if sc.get("relay"):
            sink = Sink(self.workdir)
            self.live.append(sink)
            sink.start()
        srv = self.make(which, "%s%d" % (name, idx), sc, sink)
        res = {"server": which, "run": idx}
        try:
            srv.start()
            rcpt = "alice@%s" % (RELAY_DOMAIN if sink else DOMAIN)
            # Availability: TLS offered? relay mail accepted and relayed?
            if sc.get("starttls"):
                feats = ehlo_features(srv.host, srv.port)
                if feats is None or "starttls" not in feats:
                    return dict(res, available=False, reason="EHLO does not offer STARTTLS")
            probe_rcpt = ("probe@%s" % RELAY_DOMAIN) if sink else ("bob@%s" % DOMAIN)
            err = send_one(srv.host, srv.port, probe_rcpt, starttls=bool(sc.get("starttls")))
            if err is not None:
                if sink is not None or sc.get("starttls"):
                    return dict(res, available=False, reason="probe message refused: " + err)
                raise BenchError("%s refused a probe message: %s" % (which, err))
            if sink is not None:
                ok = wait_until(lambda: sink.count() >= 1 and srv.queue_count() == 0, 20)
                if not ok:
                    return dict(res, available=False,
                                reason="probe accepted but not relayed within 20s")
            else:
                ok = wait_until(lambda: srv.maildir_count("bob") >= 1 and
                                srv.queue_count() == 0, 20)
                if not ok:
                    raise BenchError("%s: probe message not delivered within 20s\n%s" % (
                        which, srv.log_tail()))
            os.sync()
            time.sleep(0.2)
            perf = Perf(self.workdir, cgroup=srv.cg.rel) if (self.perf and srv.cg.rel) else None
            qperf, kinds = None, {}
            if self.perf and which == "postern":
                for k in ("smtpd", "qmgr", "local", "smtp", "anvil", "master"):
                    for pid in srv.daemon_pids(k):
                        kinds[pid] = k
                if kinds:
                    qperf = Perf(self.workdir, pids=sorted(kinds), events=PERF_EVENTS[:3])
            prof = self.start_profile(name, which, idx, srv, kinds)
            sampler = Sampler(srv)
            sampler.start()
            cpu0, ccpu0 = srv.cpu_seconds(), child_cpu()
            t0 = time.monotonic()
            client = self.drive(srv, sc, rcpt)
            t_acc = time.monotonic()
            ccpu1 = child_cpu()
            n = client["ok"]
            if sink is not None:
                def done():
                    return srv.queue_count() == 0 and sink.count() >= n + 1
            else:
                def done():
                    return srv.queue_count() == 0 and srv.maildir_count("alice") >= n
            finished = wait_until(done, max(120.0, n / 20.0), interval=0.02)
            t_done = time.monotonic()
            cpu1 = srv.cpu_seconds()
            sampler.stop()
            self.stop_profile(prof, res)
            pc = perf.stop() if perf else None
            qc = qperf.stop() if qperf else None
            delivered = sink.count() - 1 if sink is not None else srv.maildir_count("alice")
            elapsed = t_done - t0
            res.update({
                "available": True,
                "messages": n, "failed": client["failed"], "client_errors": client["errors"],
                "delivered": delivered, "complete": bool(finished),
                "accept_s": round(t_acc - t0, 3), "elapsed_s": round(elapsed, 3),
                "msgs_per_s": round(delivered / elapsed, 1) if elapsed > 0 else None,
                "accept_msgs_per_s": round(n / (t_acc - t0), 1) if t_acc > t0 else None,
                "cpu_s": round(cpu1 - cpu0, 3),
                "cpu_s_per_1k": round((cpu1 - cpu0) / max(1, delivered) * 1000, 3),
                "client_cpu_s": round(ccpu1 - ccpu0, 3),
                "peak_rss_mb": round(sampler.peak_rss_kb / 1024.0, 1),
                "peak_pss_mb": round(sampler.peak_pss_kb / 1024.0, 1),
                "peak_procs": sampler.peak_procs,
                "latency_ms": client.get("latency_ms"),
                "handshake_ms": client.get("handshake_ms"),
            })
            if pc:
                f = fsyncs(pc)
                res["fsyncs"] = f
                res["fsyncs_per_msg"] = round(f / max(1, delivered), 3) if f is not None else None
                cs = pc.get("context-switches")
                res["ctxsw_per_msg"] = round(cs / max(1, delivered), 2) if cs is not None else None
            if qc:
                by = {}
                for pid, counts in qc.items():
                    f = fsyncs(counts)
                    if f is not None and pid in kinds:
                        by[kinds[pid]] = by.get(kinds[pid], 0) + f
                res["fsyncs_per_msg_by_daemon"] = {k: round(v / max(1, n), 3)
                                                   for k, v in sorted(by.items())}
                if "qmgr" in by:
                    res["qmgr_fsyncs_per_msg"] = round(by["qmgr"] / max(1, n), 3)
            if not finished:
                res["error"] = "not all delivered in time: %d of %d (queue %d)" % (
                    delivered, n, srv.queue_count())
            elif client["failed"]:
                res["error"] = "%d messages refused: %s" % (client["failed"], client["errors"])
        finally:
            try:
                srv.stop()
                if which == "postern" and res.get("available"):
                    st = srv.qmgr_stats()      # logged by qmgr when it stops
                    if st:
                        res["qmgr"] = st
                        if st["messages"]:
                            res["log_flushes_per_msg"] = round(
                                st["log_flushes"] / st["messages"], 4)
            finally:
                self.release(srv)
                if sink is not None:
                    self.release(sink)
        return res

    def start_profile(self, name, which, idx, srv, kinds):
        """start_profile - with --profile DIR, on the first run of each server in a scenario:
        `perf record -g` of the instance's cgroup (CPU: where the cycles go) and, for Postern's
        persistent daemons, `perf trace -s` (wall time per syscall: where the waiting goes)."""
        if not self.args.profile or idx > 1 or not self.perf or srv.cg.rel is None:
            return None
        # perf trace's own overhead would show in the CPU profile: with two runs or more,
        # record in the first, trace in the second.
        record = idx == 0
        trace = idx == 1 or self.runs == 1
        if not record and not trace:
            return None
        os.makedirs(self.args.profile, exist_ok=True)
        base = os.path.join(self.args.profile, "%s-%s" % (name, which))
        prof = {"base": base, "procs": [], "record": record}
        if record:
            prof["procs"].append(subprocess.Popen(
                ["perf", "record", "-q", "-F", "499", "-g", "-a", "-e", "cpu-clock", "-G",
                 srv.cg.rel, "-o", base + ".perf.data"], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        if kinds and trace:
            prof["traced"] = True
            prof["trace_out"] = open(base + ".syscalls.txt", "w")
            prof["procs"].append(subprocess.Popen(
                ["perf", "trace", "-s", "-p", ",".join(str(p) for p in sorted(kinds))],
                stdin=subprocess.DEVNULL, stdout=prof["trace_out"], stderr=subprocess.STDOUT,
                start_new_session=True))
        time.sleep(0.5)
        return prof

    def stop_profile(self, prof, res):
        if prof is None:
            return
        if prof.get("traced"):
            res["traced"] = True        # slowed by perf trace: left out of the summary
        for p in prof["procs"]:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in prof["procs"]:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        if prof.get("trace_out"):
            prof["trace_out"].close()
        if not prof["record"]:
            return
        try:
            with open(prof["base"] + ".report.txt", "w") as f:
                subprocess.run(["perf", "report", "-i", prof["base"] + ".perf.data", "--stdio",
                                "--no-children", "--sort", "comm,dso,symbol", "-g", "none",
                                "--percent-limit", "0.7"], stdin=subprocess.DEVNULL, stdout=f,
                               stderr=subprocess.DEVNULL, timeout=300)
        except (OSError, subprocess.SubprocessError) as e:
            log("perf report: %s" % e)
        res["profile"] = prof["base"] + ".*"

    def drive(self, srv, sc, rcpt):
        """drive - run the load client; returns its JSON summary."""
        timeout = 120 + sc["messages"] / 5.0
        if sc["per_session"] == 1 and not sc.get("starttls"):
            # churn: Postfix's own smtp-source, one message per connection.
            argv = ["smtp-source", "-s", str(sc["sessions"]), "-m", str(sc["messages"]),
                    "-l", str(sc["size"]), "-f", "bench@%s" % DOMAIN, "-t", rcpt,
                    "%s:%d" % (srv.host, srv.port)]
            t0 = time.monotonic()
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout, text=True,
                               errors="replace")
            ok = sc["messages"] if r.returncode == 0 else 0
            errs = {} if r.returncode == 0 else {r.stdout.strip()[-200:]: 1}
            if r.returncode != 0:
                # smtp-source stops at the first error: count what reached the Maildir.
                time.sleep(1)
                ok = srv.maildir_count("alice")
            return {"ok": ok, "failed": sc["messages"] - ok, "errors": errs,
                    "elapsed": time.monotonic() - t0}
        argv = [sys.executable, SMTPLOAD, "--server", "%s:%d" % (srv.host, srv.port),
                "--messages", str(sc["messages"]), "--sessions", str(sc["sessions"]),
                "--per-session", str(sc["per_session"]), "--size", str(sc["size"]),
                "--to", rcpt, "--procs", str(self.args.client_procs)]
        if sc.get("starttls"):
            argv.append("--starttls")
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, text=True)
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise BenchError("smtpload failed (%d): %s %s" % (r.returncode, r.stdout[-300:],
                                                              r.stderr[-300:]))

    # -- idle

    def idle_run(self, which, n, sc):
        srv = self.make(which, "idle%d" % n, sc)
        res = {"server": which, "target": n}
        socks = []
        try:
            srv.start()
            err = send_one(srv.host, srv.port, "bob@%s" % DOMAIN)
            if err is not None:
                raise BenchError("%s refused a probe message: %s" % (which, err))
            wait_until(lambda: srv.maildir_count("bob") >= 1 and srv.queue_count() == 0, 20)
            time.sleep(0.5)
            rss0, pss0, np0 = mem_of(srv.pids())
            t0 = time.monotonic()
            socks, st = open_idle(srv.host, srv.port, n, budget=30 + n / 200.0)
            res.update(st)
            res["open_s"] = round(time.monotonic() - t0, 2)
            time.sleep(1.0)
            rss1, pss1, np1 = mem_of(srv.pids())
            # A new session while they are held: a whole transaction, timed.
            t1 = time.monotonic()
            err = send_one(srv.host, srv.port, "bob@%s" % DOMAIN,
                           timeout=5.0 if self.args.quick else 15.0)
            dt = time.monotonic() - t1
            res.update({
                "rss_before_mb": round(rss0 / 1024.0, 1), "pss_before_mb": round(pss0 / 1024.0, 1),
                "rss_mb": round(rss1 / 1024.0, 1), "pss_mb": round(pss1 / 1024.0, 1),
                "procs": np1,
                "kb_per_session": round((pss1 - pss0) / max(1, st["ready"]), 1),
                "new_session_s": round(dt, 3), "new_session_error": err,
                "still_open": sum(1 for s in socks if sock_alive(s)),
            })
        finally:
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass
            self.release(srv)
        return res

    # -- the whole thing

    def run(self, names):
        for name in names:
            if STOP.is_set():
                break
            sc = self.plan[name]
            log("scenario %s: %s" % (name, sc))
            if name == "idle":
                self.results["scenarios"][name] = self.run_idle(sc)
                continue
            runs = []
            for i in range(self.runs):
                order = SERVERS if i % 2 == 0 else SERVERS[::-1]
                for which in order:
                    if STOP.is_set():
                        break
                    if any(r["server"] == which and r.get("available") is False for r in runs):
                        continue        # the feature is missing: asking again changes nothing
                    try:
                        r = self.throughput_run(name, which, sc, i)
                    except (BenchError, subprocess.SubprocessError, OSError) as e:
                        r = {"server": which, "run": i, "available": True, "error": str(e)}
                    if r.get("error"):
                        self.errors.append("%s/%s run %d: %s" % (name, which, i, r["error"]))
                    log("  %s run %d: %s" % (which, i, brief(r)))
                    runs.append(r)
            self.results["scenarios"][name] = {"params": sc, "runs": runs,
                                               "summary": summarize(runs)}

    def run_idle(self, sc):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        out = {"params": sc, "rlimit_nofile": hard, "runs": []}
        for n in sc["counts"]:
            if n + 200 > hard:
                log("  idle %d: RLIMIT_NOFILE hard limit %d is too low, skipped" % (n, hard))
                out["runs"].append({"target": n, "skipped": "RLIMIT_NOFILE %d" % hard})
                continue
            for which in SERVERS:
                if STOP.is_set():
                    break
                try:
                    r = self.idle_run(which, n, sc)
                except (BenchError, subprocess.SubprocessError, OSError) as e:
                    r = {"server": which, "target": n, "error": str(e)}
                    self.errors.append("idle %d/%s: %s" % (n, which, e))
                log("  %s idle %d: %s" % (which, n, brief(r)))
                out["runs"].append(r)
        return out


def sock_alive(s):
    try:
        s.setblocking(False)
        data = s.recv(1, socket.MSG_PEEK)
        return data != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def open_idle(host, port, n, window=256, stall=5.0, budget=60.0):
    """open_idle - open n SMTP sessions (banner read, EHLO answered) and keep them.

    At most `window` sessions are being set up at once; stops when all are ready, after
    `budget` seconds, or when nothing progressed for `stall` seconds (a server that does not
    greet more). Returns (ready sockets, stats)."""
    sel = selectors.DefaultSelector()
    ready, state = [], {}
    started = failed = 0
    t_end = time.monotonic() + budget
    last = time.monotonic()
    while len(ready) + failed < n and time.monotonic() < t_end and not STOP.is_set():
        while len(state) < window and started < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((host, port))
            sel.register(s, selectors.EVENT_WRITE)
            state[s] = ["connect", b""]
            started += 1
        if time.monotonic() - last > stall:
            break
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            st = state[s]
            try:
                if st[0] == "connect":
                    e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if e:
                        raise OSError(e, os.strerror(e))
                    sel.modify(s, selectors.EVENT_READ)
                    st[0] = "banner"
                    continue
                data = s.recv(4096)
                if not data:
                    raise OSError("closed")
                st[1] += data
                if not st[1].endswith(b"\r\n"):
                    continue
                last_line = st[1].rstrip(b"\r\n").split(b"\r\n")[-1]
                if len(last_line) >= 4 and last_line[3:4] == b"-":
                    continue
                if st[0] == "banner":
                    if not last_line.startswith(b"220"):
                        raise OSError("banner %r" % last_line[:60])
                    s.send(b"EHLO idle.client\r\n")
                    st[0], st[1] = "ehlo", b""
                elif st[0] == "ehlo":
                    if not last_line.startswith(b"250"):
                        raise OSError("EHLO %r" % last_line[:60])
                    sel.unregister(s)
                    del state[s]
                    ready.append(s)
                    last = time.monotonic()
            except OSError:
                sel.unregister(s)
                del state[s]
                s.close()
                failed += 1
                last = time.monotonic()
    pending = len(state)
    for s in list(state):
        sel.unregister(s)
        s.close()
    sel.close()
    return ready, {"attempted": started, "ready": len(ready), "failed": failed,
                   "pending_unserved": pending}


# ------------------------------------------------------------------------------------------
# Summaries and the report

def med(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def summarize(runs):
    runs = [r for r in runs if not r.get("traced")]
    out = {}
    for which in SERVERS:
        rs = [r for r in runs if r["server"] == which]
        if rs and not any(r.get("available", True) for r in rs):
            out[which] = {"available": False, "reason": rs[0].get("reason")}
            continue
        good = [r for r in rs if not r.get("error") and r.get("msgs_per_s")]
        if not good:
            out[which] = {"available": True, "error": "no successful run"}
            continue
        rates = [r["msgs_per_s"] for r in good]
        lat = [r["latency_ms"]["p99"] for r in good if r.get("latency_ms")]
        lat50 = [r["latency_ms"]["p50"] for r in good if r.get("latency_ms")]
        out[which] = {
            "available": True, "runs": len(good),
            "msgs_per_s": med(rates), "min": min(rates), "max": max(rates),
            "cpu_s_per_1k": med([r["cpu_s_per_1k"] for r in good]),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in good),
            "peak_pss_mb": max(r.get("peak_pss_mb") or 0 for r in good),
            "fsyncs_per_msg": med([r.get("fsyncs_per_msg") for r in good]),
            "ctxsw_per_msg": med([r.get("ctxsw_per_msg") for r in good]),
            "latency_p50_ms": med(lat50), "latency_p99_ms": med(lat),
            "client_cpu_s": med([r.get("client_cpu_s") for r in good]),
        }
        if which == "postern":
            out[which]["log_flushes_per_msg"] = med([r.get("log_flushes_per_msg")
                                                     for r in good])
            out[which]["qmgr_fsyncs_per_msg"] = med([r.get("qmgr_fsyncs_per_msg")
                                                     for r in good])
            by = {}
            for r in good:
                for k, v in (r.get("fsyncs_per_msg_by_daemon") or {}).items():
                    by.setdefault(k, []).append(v)
            out[which]["fsyncs_per_msg_by_daemon"] = {k: med(v) for k, v in by.items()}
    # Ratios: per pair of runs with the same index, then the median.
    pairs = {}
    for r in runs:
        if not r.get("error") and r.get("msgs_per_s"):
            pairs.setdefault(r["run"], {})[r["server"]] = r
    tr = [p["postern"]["msgs_per_s"] / p["postfix"]["msgs_per_s"] for p in pairs.values()
          if "postern" in p and "postfix" in p and p["postfix"]["msgs_per_s"]]
    cr = [p["postern"]["cpu_s_per_1k"] / p["postfix"]["cpu_s_per_1k"] for p in pairs.values()
          if "postern" in p and "postfix" in p and p["postfix"]["cpu_s_per_1k"]]
    out["ratio_throughput"] = round(med(tr), 2) if tr else None
    out["ratio_cpu"] = round(med(cr), 2) if cr else None
    return out


def brief(r):
    if r.get("available") is False:
        return "not available (%s)" % r.get("reason")
    if r.get("error"):
        return "ERROR %s" % r["error"][:300]
    if "target" in r:
        return ("ready %s/%s, PSS %s MB, RSS %s MB, %s procs, new session %.3fs%s" % (
            r.get("ready"), r.get("target"), r.get("pss_mb"), r.get("rss_mb"), r.get("procs"),
            r.get("new_session_s", -1),
            "" if not r.get("new_session_error") else " (%s)" % r["new_session_error"]))
    return ("%s msgs in %.2fs = %.0f/s (accepted in %.2fs), cpu %.2fs/1k, fsync/msg %s, "
            "rss %s MB" % (r["delivered"], r["elapsed_s"], r["msgs_per_s"], r["accept_s"],
                           r["cpu_s_per_1k"], r.get("fsyncs_per_msg"), r["peak_rss_mb"]))


def fmt(v, digits=0):
    if v is None:
        return "n/a"
    if isinstance(v, float) or digits:
        return ("%%.%df" % digits) % v
    return str(v)


def report(results):
    lines = []
    sc = results["scenarios"]
    lines.append("## Postern vs Postfix - %s%s, %d run(s) per server" % (
        results["started"], " (quick)" if results["quick"] else "", results["runs"]))
    lines.append("")
    if any(n in sc for n in ORDER if n != "idle"):
        lines.append("| scenario | Postern msgs/s (min–max) | Postfix msgs/s (min–max) | ratio | "
                     "CPU s/1k msgs P / PF | CPU ratio | fsyncs/msg P / PF | "
                     "ctx sw/msg P / PF | peak PSS MB P / PF | p99 ms P / PF |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for name in ORDER:
        if name not in sc or name == "idle":
            continue
        s = sc[name]["summary"]
        cells = [name]
        for which in SERVERS:
            x = s.get(which, {})
            if x.get("available") is False:
                cells.append("not available")
            elif x.get("error"):
                cells.append("error")
            else:
                cells.append("%s (%s–%s)" % (fmt(x["msgs_per_s"]), fmt(x["min"]),
                                             fmt(x["max"])))
        p, f = s.get("postern", {}), s.get("postfix", {})
        cells.append(fmt(s.get("ratio_throughput"), 2) + "×" if s.get("ratio_throughput")
                     else "n/a")
        cells.append("%s / %s" % (fmt(p.get("cpu_s_per_1k"), 2), fmt(f.get("cpu_s_per_1k"), 2)))
        cells.append(fmt(s.get("ratio_cpu"), 2) if s.get("ratio_cpu") else "n/a")
        cells.append("%s / %s" % (fmt(p.get("fsyncs_per_msg"), 2),
                                  fmt(f.get("fsyncs_per_msg"), 2)))
        cells.append("%s / %s" % (fmt(p.get("ctxsw_per_msg"), 1), fmt(f.get("ctxsw_per_msg"), 1)))
        cells.append("%s / %s" % (fmt(p.get("peak_pss_mb"), 0), fmt(f.get("peak_pss_mb"), 0)))
        cells.append("%s / %s" % (fmt(p.get("latency_p99_ms"), 1),
                                  fmt(f.get("latency_p99_ms"), 1)))
        lines.append("| " + " | ".join(cells) + " |")
    for name in ORDER:
        if name in sc and name != "idle":
            for which in SERVERS:
                x = sc[name]["summary"].get(which, {})
                if x.get("available") is False:
                    lines.append("")
                    lines.append("- %s/%s: not available: %s" % (name, which, x.get("reason")))
    if "small" in sc:
        p = sc["small"]["summary"].get("postern", {})
        f = sc["small"]["summary"].get("postfix", {})
        if p.get("available"):
            lines.append("")
            lines.append("Group commit (small, 20 sessions): Postern queue log flushes per "
                         "message %s (qmgr's counters); fsync+fdatasync per message: "
                         "Postern %s in all (%s), Postfix %s in all." % (
                             fmt(p.get("log_flushes_per_msg"), 3),
                             fmt(p.get("fsyncs_per_msg"), 2),
                             ", ".join("%s %.2f" % kv for kv in sorted(
                                 (p.get("fsyncs_per_msg_by_daemon") or {}).items())) or "n/a",
                             fmt(f.get("fsyncs_per_msg"), 2)))
    if "idle" in sc:
        lines.append("")
        lines.append("| idle sessions | server | served (ready/attempted) | RSS MB | PSS MB | "
                     "processes | new transaction |")
        lines.append("|---|---|---|---|---|---|---|")
        for r in sc["idle"]["runs"]:
            if r.get("skipped"):
                lines.append("| %d | both | skipped: %s | | | | |" % (r["target"], r["skipped"]))
                continue
            if r.get("error"):
                lines.append("| %d | %s | error: %s | | | | |" % (r["target"], r["server"],
                                                                 r["error"][:100]))
                continue
            nt = ("%.3f s" % r["new_session_s"]) if not r.get("new_session_error") else \
                ("failed after %.1f s" % r["new_session_s"])
            lines.append("| %d | %s | %d/%d | %s | %s | %d | %s |" % (
                r["target"], r["server"], r["ready"], r["attempted"], fmt(r["rss_mb"], 0),
                fmt(r["pss_mb"], 0), r["procs"], nt))
    return "\n".join(lines) + "\n"


def host_facts():
    facts = {"cpus": os.cpu_count()}
    try:
        facts["kernel"] = os.uname().release
        with open("/proc/loadavg") as f:
            facts["loadavg_at_start"] = f.read().split()[:3]
    except OSError:
        pass
    try:
        facts["postfix"] = subprocess.run(["postconf", "-h", "-d", "mail_version"],
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        facts["postern_commit"] = subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return facts


def parse_kv(items):
    out = {}
    for it in items or []:
        k, sep, v = it.partition("=")
        if not sep:
            raise SystemExit("bench: expected key=value, got %r" % it)
        out[k.strip()] = v.strip()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="tools/bench",
        description="Postern next to a private Postfix instance: the same loads, same run.")
    ap.add_argument("--quick", action="store_true", help="small smoke version (< 2 minutes)")
    ap.add_argument("--bin", default=os.environ.get("POSTERN_BIN",
                                                    os.path.join(ROOT, "build", "bin")),
                    help="Postern programs (default build/bin or $POSTERN_BIN)")
    ap.add_argument("--scenarios", default=",".join(ORDER),
                    help="comma-separated subset of " + ",".join(ORDER))
    ap.add_argument("--runs", type=int, default=0, help="runs per server (default 3, quick 1)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the message counts (e.g. 0.25 for a shorter run)")
    ap.add_argument("--report", metavar="JSON",
                    help="only print the report of an earlier results file")
    ap.add_argument("--idle", help="idle session counts, e.g. 1000,10000")
    ap.add_argument("--json", help="results file (default tests/bench/results-<time>.json)")
    ap.add_argument("--keep", action="store_true", help="keep instance directories")
    ap.add_argument("--profile", metavar="DIR",
                    help="perf record / perf trace -s the first run of each server into DIR")
    ap.add_argument("--no-perf", action="store_true", help="do not run perf stat")
    ap.add_argument("--no-cgroup", action="store_true", help="find processes via /proc only")
    ap.add_argument("--client-procs", type=int, default=2, help="smtpload processes")
    ap.add_argument("--postern-conf", action="append", metavar="KEY=VALUE",
                    help="extra postern.conf setting (repeatable)")
    ap.add_argument("--postfix-conf", action="append", metavar="KEY=VALUE",
                    help="extra Postfix main.cf setting (repeatable)")
    args = ap.parse_args(argv)
    args.postern_conf = parse_kv(args.postern_conf)
    args.postfix_conf = parse_kv(args.postfix_conf)
    args.bin = os.path.abspath(args.bin)
    if args.report:
        with open(args.report) as f:
            results = json.load(f)
        for name, v in results["scenarios"].items():
            if name != "idle":
                v["summary"] = summarize(v["runs"])
        sys.stdout.write(report(results))
        return 0
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    for n in names:
        if n not in ORDER:
            ap.error("unknown scenario %r" % n)
    if os.geteuid() != 0:
        sys.stderr.write("bench: must run as root (a private Postfix instance, cgroups, perf)\n")
        return 2
    for tool in ("postfix", "smtp-source", "smtp-sink", "postmap", "openssl"):
        if shutil.which(tool) is None:
            sys.stderr.write("bench: %s is missing (tools/install-deps installs postfix)\n" % tool)
            return 2
    if not os.access(os.path.join(args.bin, "postern"), os.X_OK):
        sys.stderr.write("bench: %s/postern is missing: build first (make)\n" % args.bin)
        return 2

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def on_signal(signum, frame):
        STOP.set()
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, on_signal)
    bench = Bench(args)
    t0 = time.monotonic()
    if not bench.perf:
        log("perf stat not usable: no fsync/context-switch counts (qmgr's own counters remain)")
    rc = 0
    try:
        bench.run(names)
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    finally:
        bench.cleanup()
    bench.results["duration_s"] = round(time.monotonic() - t0, 1)
    bench.results["errors"] = bench.errors
    path = args.json or os.path.join(HERE, "results-%s%s.json" % (
        time.strftime("%Y%m%d-%H%M%S"), "-quick" if args.quick else ""))
    with open(path, "w") as f:
        json.dump(bench.results, f, indent=1, sort_keys=True)
        f.write("\n")
    sys.stdout.write(report(bench.results))
    sys.stdout.write("\nresults: %s (%.0f s)\n" % (path, bench.results["duration_s"]))
    if bench.errors:
        sys.stdout.write("errors:\n" + "".join("  %s\n" % e for e in bench.errors))
        rc = rc or 1
    return rc
