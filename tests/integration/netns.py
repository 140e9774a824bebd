"""netns - network namespaces made by a test, for multi-host tests; nothing leaves them.

A Lab is a set of namespaces named `pst<pid>-<name>`: one "switch" namespace holding a bridge
(`br0`, which also carries the DNS server's address) and one namespace per host, joined to
the bridge by a veth pair created directly between the two namespaces (no interface ever
exists in the caller's namespace). Addresses come from 192.0.2.0/24 (TEST-NET-1), which
exists only inside the lab; there is no default route, so no packet can leave it.

    lab = Lab()                            # checks the tools; raises Unavailable(reason)
    a = lab.add_host("a", "192.0.2.1")      # namespace name in a.ns
    lab.start_dns(records)                  # dnsmasq in the switch namespace, on DNS_ADDR:53
    sock = lab.connect(a, "192.0.2.2", 25)  # a TCP socket made inside a's namespace
    lab.dns_query(a, "b.test", "MX")        # [(type, data)] as a's resolver sees it
    lab.popen(a, argv, ...)                 # `ip netns exec` a program there
    lab.cleanup()                           # processes by PID, then the namespaces

Sockets are made in the namespace by a short-lived thread that joins it with setns(2)
(a socket keeps the namespace it was made in), so the test process itself never moves.
Every process the lab starts is remembered and killed by PID at cleanup(), which runs again
at exit; every wait is bounded. Only the Python standard library is used.
"""

import atexit
import ctypes
import ctypes.util
import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time

NET = "192.0.2"
PREFIX = 24
DNS_ADDR = NET + ".53"
CLONE_NEWNET = 0x40000000

_labs = []


class Unavailable(Exception):
    """The lab cannot be built here (not root, no `ip netns`, no dnsmasq); carries why."""


def _run(argv, timeout=20, check=True):
    """_run - run a command; output captured; raises with it on failure when check."""
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, text=True, errors="replace")
    if check and r.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(argv), r.returncode, r.stdout.strip()))
    return r


def availability():
    """availability - None if a lab can be built here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "dnsmasq"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            return "%s is not installed (tools/install-deps installs it)" % tool
    probe = "pst%d-probe%d" % (os.getpid(), random.randrange(10 ** 6))
    try:
        r = _run(["ip", "netns", "add", probe], check=False)
        if r.returncode != 0:
            return "ip netns add failed: %s" % r.stdout.strip()
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return None


class Host:
    """One namespace with one address on the lab's bridge."""

    def __init__(self, name, ns, addr):
        self.name = name
        self.ns = ns
        self.addr = addr

    def __repr__(self):
        return "Host(%s, %s)" % (self.name, self.addr)


_libc = None


def _setns(path):
    """_setns - move the calling thread into the network namespace at path."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns(%s): %s" % (path, os.strerror(err)))
    finally:
        os.close(fd)


def in_netns(ns, fn, timeout=30.0):
    """in_netns - run fn() in a new thread that first joins namespace ns; its result or
    exception. The thread ends afterwards, so no other code runs in the namespace."""
    box = {}

    def body():
        try:
            _setns("/run/netns/" + ns)
            box["value"] = fn()
        except BaseException as e:          # handed to the caller
            box["error"] = e
    t = threading.Thread(target=body, name="netns-" + ns, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError("work in namespace %s did not finish in %.0fs" % (ns, timeout))
    if "error" in box:
        raise box["error"]
    return box.get("value")


class Lab:
    """Namespaces, a bridge, hosts, dnsmasq; all removed by cleanup()."""

    def __init__(self):
        why = availability()
        if why is not None:
            raise Unavailable(why)
        self.tag = "pst%d" % os.getpid()
        self.hosts = {}
        self.namespaces = []
        self.procs = []                 # Popen objects we started
        self.dns_proc = None
        _labs.append(self)
        try:
            self.switch = self._add_ns("sw")
            _run(["ip", "-n", self.switch, "link", "set", "lo", "up"])
            _run(["ip", "-n", self.switch, "link", "add", "br0", "type", "bridge"])
            _run(["ip", "-n", self.switch, "addr", "add", "%s/%d" % (DNS_ADDR, PREFIX),
                  "dev", "br0"])
            _run(["ip", "-n", self.switch, "link", "set", "br0", "up"])
        except BaseException:
            self.cleanup()
            raise

    def _add_ns(self, name):
        ns = "%s-%s" % (self.tag, name)
        if os.path.exists("/run/netns/" + ns):        # left by a process with our pid
            _run(["ip", "netns", "del", ns], check=False)
        _run(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        return ns

    def add_host(self, name, addr):
        """add_host - a namespace with lo up and eth0 = addr/24 on the bridge."""
        ns = self._add_ns(name)
        port = "v-" + name
        _run(["ip", "-n", self.switch, "link", "add", port, "type", "veth", "peer", "name",
              "eth0", "netns", ns])
        _run(["ip", "-n", self.switch, "link", "set", port, "master", "br0"])
        _run(["ip", "-n", self.switch, "link", "set", port, "up"])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "-n", ns, "addr", "add", "%s/%d" % (addr, PREFIX), "dev", "eth0"])
        _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        h = Host(name, ns, addr)
        self.hosts[name] = h
        return h

    # -- processes

    def popen(self, host, argv, **kw):
        """popen - start argv in host's namespace (host may be a Host or a namespace name);
        remembered and killed by PID at cleanup."""
        ns = host.ns if isinstance(host, Host) else host
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)
        kw.setdefault("close_fds", True)
        p = subprocess.Popen(["ip", "netns", "exec", ns] + list(argv), **kw)
        self.procs.append(p)
        return p

    def run(self, host, argv, timeout=30):
        """run - run argv in host's namespace to completion (bounded); CompletedProcess."""
        ns = host.ns if isinstance(host, Host) else host
        return _run(["ip", "netns", "exec", ns] + list(argv), timeout=timeout, check=False)

    # -- DNS

    def start_dns(self, options, logfile, timeout=10.0):
        """start_dns - dnsmasq in the switch namespace on DNS_ADDR:53 with the given record
        options (--mx-host=..., --host-record=..., --dns-rr=...), answering only those
        (no upstream, no /etc/hosts), and wait until it answers."""
        argv = ["dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts",
                "--no-poll", "--port=53", "--listen-address=" + DNS_ADDR,
                "--bind-interfaces", "--conf-file=/dev/null", "--log-queries",
                "--log-facility=-", "--pid-file=", "--user=root"] + list(options)
        logf = open(logfile, "ab")
        try:
            self.dns_proc = self.popen(self.switch, argv, stdout=logf, stderr=logf)
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.dns_proc.poll() is not None:
                raise RuntimeError("dnsmasq exited %s; see %s" % (self.dns_proc.returncode,
                                                                  logfile))
            try:
                self.dns_query(self.switch, "dnsmasq-probe.invalid", "A", timeout=0.5)
                return
            except (OSError, TimeoutError, ValueError) as e:
                last = e
            time.sleep(0.1)
        raise RuntimeError("dnsmasq did not answer within %.0fs (%s)" % (timeout, last))

    def dns_query(self, host, name, qtype, server=DNS_ADDR, timeout=2.0):
        """dns_query - ask server from host's namespace; (rcode, [(type, value)]) where value
        is an address for A, (preference, exchange) for MX, the name for CNAME."""
        ns = host.ns if isinstance(host, Host) else host
        qid = random.randrange(1 << 16)
        query = dns_encode_query(qid, name, qtype)

        def ask():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.settimeout(timeout)
                s.sendto(query, (server, 53))
                deadline = time.monotonic() + timeout
                while True:
                    s.settimeout(max(0.01, deadline - time.monotonic()))
                    data, _ = s.recvfrom(4096)
                    if len(data) >= 2 and struct.unpack(">H", data[:2])[0] == qid:
                        return data
            finally:
                s.close()
        return dns_decode_answer(in_netns(ns, ask, timeout=timeout + 5))

    # -- TCP

    def connect(self, host, addr, port, timeout=10.0):
        """connect - a TCP socket connected from host's namespace to addr:port."""
        ns = host.ns if isinstance(host, Host) else host
        return in_netns(ns, lambda: socket.create_connection((addr, port), timeout=timeout),
                        timeout=timeout + 5)

    # -- cleanup

    def cleanup(self):
        """cleanup - kill every process we started (by PID, SIGTERM then SIGKILL), then
        delete the namespaces (which removes their veths and the bridge). Idempotent."""
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.terminate()
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self.procs = []
        for ns in reversed(self.namespaces):
            _run(["ip", "netns", "del", ns], check=False)
        self.namespaces = []
        if self in _labs:
            _labs.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False


def _cleanup_all():
    for lab in list(_labs):
        try:
            lab.cleanup()
        except Exception:
            pass


atexit.register(_cleanup_all)


# --------------------------------------------------------------------------------------
# A minimal DNS client (RFC 1035): one question, A/MX/CNAME answers, name compression.

QTYPES = {"A": 1, "CNAME": 5, "MX": 15, "TXT": 16, "AAAA": 28}


def dns_encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def dns_encode_query(qid, name, qtype):
    """dns_encode_query - a recursive query for (name, qtype)."""
    return (struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + dns_encode_name(name)
            + struct.pack(">HH", QTYPES[qtype], 1))


def dns_decode_name(data, pos):
    """dns_decode_name - (name, position after it), following compression pointers."""
    labels, jumps, end = [], 0, None
    while True:
        if pos >= len(data):
            raise ValueError("truncated name")
        n = data[pos]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = pos + 2
            pos = ((n & 0x3F) << 8) | data[pos + 1]
            jumps += 1
            if jumps > 64:
                raise ValueError("compression loop")
            continue
        if n == 0:
            return ".".join(labels), (end if end is not None else pos + 1)
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n


def dns_decode_answer(data):
    """dns_decode_answer - (rcode, [(type name, value)]) of a response."""
    qid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    rcode = flags & 0xF
    pos = 12
    for _ in range(qd):
        _, pos = dns_decode_name(data, pos)
        pos += 4
    out = []
    names = {v: k for k, v in QTYPES.items()}
    for _ in range(an):
        _, pos = dns_decode_name(data, pos)
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        rdata = data[pos:pos + rdlen]
        if rtype == 1:
            value = socket.inet_ntoa(rdata)
        elif rtype == 15:
            value = (struct.unpack(">H", rdata[:2])[0], dns_decode_name(data, pos + 2)[0])
        elif rtype == 5:
            value = dns_decode_name(data, pos)[0]
        else:
            value = rdata
        out.append((names.get(rtype, str(rtype)), value))
        pos += rdlen
    return rcode, out

