"""test_dane - DANE (RFC 7672) in the smtp agent, against a DNSSEC-signed zone.

A zone dane.test is made and signed here (ldns-keygen, ldns-signzone) and served with an
unsigned zone plain.test by nsd on a loopback port (its own nsd.conf in a temporary
directory, in the foreground). The agent runs with test_smtp_agent's stub master and qmgr,
forwards to nsd with dns_servers and validates with the zone's DS record as
dnssec_trust_anchor_file, so no root zone is needed. The MX hosts all point at 127.0.0.1:
test_smtp_agent's StubServer with STARTTLS and a certificate for mx-ta.dane.test issued by
a CA made here (chain: leaf and CA), and a second StubServer without STARTTLS.

Cases: DANE-EE 3 1 1 of the server key (delivered, "Verified"); a TLSA record that does not
match (deferred 4.7.5, nothing delivered); DANE-TA 2 0 1 of the CA with the MX host that
the certificate names (delivered) and with another (deferred); a secure host without TLSA
(opportunistic TLS, delivered); a TLSA record changed after signing (bogus: deferred, even
though the changed record would match); dane-only without TLSA (deferred); TLSA records
that are all unusable for SMTP (mandatory TLS: a server without STARTTLS is deferred); an
unsigned zone (insecure: its TLSA is ignored, opportunistic TLS); no trust anchor (nothing
is secure: opportunistic). Skipped only if nsd or the ldns tools are missing.
"""

import atexit
import hashlib
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import harness
from harness import IS_ROOT, Skip, expect, free_port, log
from test_smtp_agent import OK, TEMP, Agent, StubServer, message, stop

TLS_DANE, TLS_DANE_ONLY = 4, 5
NSD = shutil.which("nsd") or "/usr/sbin/nsd"
KEYGEN = shutil.which("ldns-keygen")
SIGNZONE = shutil.which("ldns-signzone")
# Signed with this TLSA data, then served with the matching one: the signature breaks.
BOGUS_SIGNED = "0123456789abcdef" * 4


def run(argv, cwd):
    return subprocess.run(argv, cwd=cwd, check=True, timeout=60, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE).stdout.decode()


def openssl(args, cwd, data=None):
    return subprocess.run(["openssl"] + args, cwd=cwd, input=data, check=True, timeout=60,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout


def make_pki(d):
    """make_pki - a CA and a leaf for mx-ta.dane.test signed by it; returns (chain, key,
    SHA-256 of the leaf's SPKI, SHA-256 of the CA certificate)."""
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=DANE test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=mx-ta.dane.test"], d)
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write("subjectAltName=DNS:mx-ta.dane.test\nbasicConstraints=CA:FALSE\n")
    openssl(["x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-out", "leaf.crt", "-extfile", "leaf.ext"], d)
    with open(os.path.join(d, "chain.pem"), "wb") as out:
        for name in ("leaf.crt", "ca.crt"):
            with open(os.path.join(d, name), "rb") as f:
                out.write(f.read())
    pub = openssl(["x509", "-in", "leaf.crt", "-noout", "-pubkey"], d)
    spki = openssl(["pkey", "-pubin", "-outform", "DER"], d, data=pub)
    ca_der = openssl(["x509", "-in", "ca.crt", "-outform", "DER"], d)
    return (os.path.join(d, "chain.pem"), os.path.join(d, "leaf.key"),
            hashlib.sha256(spki).hexdigest(), hashlib.sha256(ca_der).hexdigest())


def zone_text(origin, hosts):
    """zone_text - a zone whose hosts are (name, port, [TLSA rdata]): name is a next-hop
    domain with the MX host mx-name (127.0.0.1), which has those TLSA records at _port._tcp."""
    text = ("$ORIGIN {o}.\n$TTL 300\n@ IN SOA ns.{o}. admin.{o}. 1 3600 600 86400 300\n"
            "@ IN NS ns.{o}.\nns IN A 127.0.0.1\n").format(o=origin)
    for name, port, tlsa in hosts:
        text += "%s IN MX 10 mx-%s.%s.\nmx-%s IN A 127.0.0.1\n" % (name, name, origin, name)
        text += "".join("_%d._tcp.mx-%s IN TLSA %s\n" % (port, name, r) for r in tlsa)
    return text


def dns_query_soa(port, name, timeout=0.5):
    """dns_query_soa - one UDP SOA query; True if nsd answered NOERROR."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", 6, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        r = s.recv(4096)
        return len(r) >= 12 and struct.unpack(">H", r[:2])[0] == qid and r[3] & 0xF == 0
    except OSError:
        return False
    finally:
        s.close()


class DaneEnv:
    """The servers, the signed zone and nsd, made once for every test here."""

    def __init__(self):
        for exe, pkg in ((NSD, "nsd"), (KEYGEN, "ldnsutils"), (SIGNZONE, "ldnsutils")):
            if not exe or not os.path.exists(exe):
                raise Skip("%s is not installed (Debian package %s; tools/install-deps)"
                           % (os.path.basename(exe or pkg), pkg))
        self.dir = tempfile.mkdtemp(prefix="postern-dane-")
        os.chmod(self.dir, 0o755)          # the agent reads the anchor before dropping root
        self.nsd = None
        self.tls = self.plain = None
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self):
        d = self.dir
        chain, key, self.ee_hash, self.ca_hash = make_pki(d)
        self.tls = StubServer(tls_cert=(chain, key))
        self.plain = StubServer()
        t, p = self.tls.port, self.plain.port
        ee, ca = self.ee_hash, self.ca_hash
        wrong = hashlib.sha256(b"not the server key").hexdigest()
        dane = zone_text("dane.test", [
            ("ee", t, ["3 1 1 " + ee]), ("bad", t, ["3 1 1 " + wrong]),
            ("ta", t, ["2 0 1 " + ca]), ("taname", t, ["2 0 1 " + ca]),
            ("none", t, []), ("bogus", t, ["3 1 1 " + BOGUS_SIGNED]),
            ("unusable", p, ["1 1 1 " + ee, "3 1 7 " + ee])])
        # Unsigned: its TLSA would fail to match, but an insecure record must be ignored.
        plain = zone_text("plain.test", [("ins", t, ["3 1 1 " + wrong])])
        for origin, text in (("dane.test", dane), ("plain.test", plain)):
            with open(os.path.join(d, origin + ".zone"), "w") as f:
                f.write(text)
        base = run([KEYGEN, "-a", "ECDSAP256SHA256", "-k", "dane.test"], d).strip()
        run([SIGNZONE, "-o", "dane.test", "-f", "dane.test.signed", "dane.test.zone", base], d)
        # The bogus case: the TLSA record served now is not the one that was signed (and it
        # would match the server, so only validation stops the delivery).
        path = os.path.join(d, "dane.test.signed")
        with open(path) as f:
            signed = f.read()
        signed, n = re.subn(BOGUS_SIGNED, ee, signed, flags=re.I)
        expect(n == 1, "signed zone has %d copies of the bogus TLSA data" % n)
        with open(path, "w") as f:
            f.write(signed)
        with open(os.path.join(d, base + ".ds")) as f:
            ds = f.read()
        self.anchor = os.path.join(d, "anchor.ds")
        with open(self.anchor, "w") as f:
            f.write("; trust anchor for the test zone dane.test, made by test_dane.py\n" + ds)
        os.chmod(self.anchor, 0o644)
        self._start_nsd()

    def _start_nsd(self):
        d = self.dir
        for attempt in range(3):
            self.port = free_port()
            conf = os.path.join(d, "nsd.conf")
            with open(conf, "w") as f:
                f.write("""server:
    ip-address: 127.0.0.1
    port: {port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd.log"
    verbosity: 1
remote-control:
    control-enable: no
zone:
    name: dane.test
    zonefile: "{d}/dane.test.signed"
zone:
    name: plain.test
    zonefile: "{d}/plain.test.zone"
""".format(port=self.port, d=d))
            self.nsd = subprocess.Popen([NSD, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.nsd.poll() is None:
                if dns_query_soa(self.port, "dane.test"):
                    return
                time.sleep(0.1)
            self._stop_nsd()
        raise AssertionError("nsd did not start:\n" + self.nsd_log())

    def nsd_log(self):
        try:
            with open(os.path.join(self.dir, "nsd.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return "(no nsd.log)"

    def _stop_nsd(self):
        if self.nsd is not None:
            stop(self.nsd)
        self.nsd = None

    def conf(self, anchor=True):
        c = {"dns_servers": "127.0.0.1@%d" % self.port,
             "dnssec_trust_anchor_file": self.anchor if anchor else ""}
        return c

    def close(self):
        self._stop_nsd()
        for s in (self.tls, self.plain):
            if s is not None:
                s.close()
        self.tls = self.plain = None
        if os.environ.get("POSTERN_TEST_KEEP"):
            log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


_env = None
_env_error = None


def env():
    """env - the shared DaneEnv, made on first use; a failure is remembered."""
    global _env, _env_error
    if _env_error is not None:
        raise _env_error
    if _env is None:
        try:
            _env = DaneEnv()
        except (Skip, AssertionError, OSError, subprocess.SubprocessError) as e:
            _env_error = e
            raise
        atexit.register(_env.close)
    return _env


def delivered(srv, tag):
    return [m for m in srv.messages if ("Subject: %s\r\n" % tag).encode() in m[2]]


def send(a, srv, hop, tag, level=TLS_DANE):
    """send - a message tagged tag to x@hop through the next hop hop:<srv's port>."""
    return a.deliver("%s:%d" % (hop, srv.port), ["x@" + hop], message(tag), tls_level=level)


def expect_sent(r, srv, tag, log=None, line=None):
    """expect_sent - delivered to srv over TLS; line (if given) in the agent's log."""
    expect(r["status"] == [OK], "%s: %r" % (tag, r))
    expect(delivered(srv, tag), "%s: not delivered" % tag)
    expect(r["tls"].startswith("TLSv1."), "%s: not over TLS: %r" % (tag, r["tls"]))
    expect(line is None or line in log, "%s: no line %r in the log:\n%s" % (tag, line, log))


def expect_deferred(r, srv, tag, why):
    """expect_deferred - 4.7.5 with why in the text, and nothing of it at srv."""
    expect(r["status"] == [TEMP] and r["dsn"] == ["4.7.5"] and why in r["text"][0],
           "%s: want 4.7.5 (%s), got %r" % (tag, why, r))
    expect(not delivered(srv, tag), "%s: delivered all the same" % tag)


def test_dane_ee_verified():
    """DANE-EE 3 1 1 of the server's key: delivered over TLS, logged as Verified with the
    matching record and the queue ID."""
    e = env()
    with Agent(e.conf()) as a:
        r = send(a, e.tls, "ee.dane.test", "dane-ee")
        expect_sent(r, e.tls, "dane-ee", a.log_text(),
                    "QID00001: Verified TLS connection established to mx-ee.dane.test"
                    "[127.0.0.1]:%d: " % e.tls.port)
        expect('tlsa="3 1 1"' in a.log_text(), "no matching record logged")
        expect("dnssec=yes" in a.log_text(), "agent did not enable DNSSEC")


def test_dane_tlsa_mismatch_deferred():
    """A secure TLSA record that matches nothing: deferred with 4.7.5 and the reason in the
    result and the log, nothing sent."""
    e = env()
    with Agent(e.conf()) as a:
        r = send(a, e.tls, "bad.dane.test", "dane-bad")
        expect_deferred(r, e.tls, "dane-bad", "no matching DANE TLSA records")
        expect("QID00001: to=<x@bad.dane.test>" in a.log_text()
               and "no matching DANE TLSA records" in a.log_text(), "not logged")


def test_dane_ta_names():
    """DANE-TA 2 0 1 of the CA: delivered when the certificate names the MX host; deferred
    (name mismatch) for another MX host with the same TLSA record."""
    e = env()
    with Agent(e.conf()) as a:
        expect_sent(send(a, e.tls, "ta.dane.test", "dane-ta"), e.tls, "dane-ta", a.log_text(),
                    "QID00001: Verified TLS connection established to mx-ta.dane.test")
        expect('tlsa="2 0 1"' in a.log_text(), "no matching record logged")
        r = send(a, e.tls, "taname.dane.test", "dane-taname")
        expect_deferred(r, e.tls, "dane-taname", "hostname mismatch")


def test_dane_secure_without_tlsa_may():
    """A secure MX host without TLSA records: opportunistic TLS (as may), delivered over an
    unauthenticated session, logged as Untrusted."""
    e = env()
    with Agent(e.conf()) as a:
        r = send(a, e.tls, "none.dane.test", "dane-none")
        expect_sent(r, e.tls, "dane-none", a.log_text(),
                    "QID00001: Untrusted TLS connection established to mx-none.dane.test")
        expect("no DANE for mx-none.dane.test" in a.log_text(), "no reason logged")


def test_dane_bogus_deferred():
    """A TLSA record changed after signing (it would match the server): the answer is
    bogus, so the host is deferred, not downgraded."""
    e = env()
    with Agent(e.conf()) as a:
        r = send(a, e.tls, "bogus.dane.test", "dane-bogus")
        expect_deferred(r, e.tls, "dane-bogus", "TLSA lookup error")
        expect("DNSSEC validation failed" in r["text"][0], "reason %r" % r["text"])


def test_dane_only_without_tlsa_deferred():
    """dane-only: a secure host without TLSA records is deferred, an insecure one too; one
    with DANE-EE is delivered."""
    e = env()
    with Agent(e.conf()) as a:
        r = send(a, e.tls, "none.dane.test", "only-none", TLS_DANE_ONLY)
        expect_deferred(r, e.tls, "only-none", "DANE is required")
        r = send(a, e.tls, "ins.plain.test", "only-ins", TLS_DANE_ONLY)
        expect_deferred(r, e.tls, "only-ins", "not DNSSEC-validated")
        r = send(a, e.tls, "ee.dane.test", "only-ee", TLS_DANE_ONLY)
        expect_sent(r, e.tls, "only-ee")


def test_dane_unusable_tlsa_encrypt():
    """TLSA records, none usable for SMTP (PKIX-EE, an unknown matching type): TLS is
    mandatory without authentication, so a server without STARTTLS is deferred."""
    e = env()
    with Agent(e.conf()) as a:
        r = send(a, e.plain, "unusable.dane.test", "dane-unusable")
        expect_deferred(r, e.plain, "dane-unusable", "TLS is required")
        expect("no usable TLSA records for mx-unusable.dane.test" in a.log_text(),
               "not logged:\n%s" % a.log_text())


def test_dane_insecure_zone_may():
    """An unsigned zone: its (non-matching) TLSA record is not trusted, TLS is
    opportunistic and the message is delivered; so it is without any trust anchor."""
    e = env()
    with Agent(e.conf()) as a:
        r = send(a, e.tls, "ins.plain.test", "dane-insecure")
        expect_sent(r, e.tls, "dane-insecure")
    with Agent(e.conf(anchor=False)) as a:
        r = send(a, e.tls, "bad.dane.test", "dane-noanchor")
        expect_sent(r, e.tls, "dane-noanchor")
        expect("without DNSSEC validation" in a.log_text(), "no warning:\n%s" % a.log_text())


def postern_check(d, settings, policy=None):
    """postern_check - `postern check` on DIR with these settings (and a built
    smtp_tls_policy_map of these lines); returns (exit status, output)."""
    from test_config import GOOD, _owners
    conf = GOOD + "".join("%s = %s\n" % kv for kv in settings.items())
    if policy is not None:
        with open(os.path.join(d, "tls_policy"), "w") as f:
            f.write(policy)
        subprocess.run([harness.POSTERN, "-c", d, "map", "build",
                        os.path.join(d, "tls_policy")], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                       check=True)
        conf += "smtp_tls_policy_map = tls_policy\n"
    with open(os.path.join(d, "postern.conf"), "w") as f:
        f.write(conf + _owners())
    r = subprocess.run([harness.POSTERN, "-c", d, "check"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                       text=True, errors="replace")
    return r.returncode, r.stdout


def test_dane_postern_check():
    """postern check: the dane levels are accepted in postern.conf and in the policy map, an
    unknown level in the map is an error, and where DANE is asked for the trust anchor file
    must exist and hold DS or DNSKEY records (a missing one is no error otherwise)."""
    d = tempfile.mkdtemp(prefix="postern-danecheck-")
    try:
        good = os.path.join(d, "anchor.ds")
        with open(good, "w") as f:
            f.write("; test\ndane.test. 3600 IN DS 4242 13 2 %s\n" % ("ab" * 32))
        broken = os.path.join(d, "broken.ds")
        with open(broken, "w") as f:
            f.write("dane.test 3600 IN DS 4242 13 2 ab\n")
        missing = os.path.join(d, "missing.key")
        cases = [
            ({"smtp_tls_security_level": "dane", "dnssec_trust_anchor_file": good}, None,
             0, ""),
            ({"smtp_tls_security_level": "dane-only", "dnssec_trust_anchor_file": good},
             None, 0, ""),
            ({"smtp_tls_security_level": "dane", "dnssec_trust_anchor_file": broken}, None,
             1, "must end with a dot"),
            ({"smtp_tls_security_level": "dane", "dnssec_trust_anchor_file": missing}, None,
             1, "No such file"),
            ({"dnssec_trust_anchor_file": missing}, None, 0, ""),
            ({"dnssec_trust_anchor_file": missing}, "b.test dane\nc.test encrypt\n", 1,
             "No such file"),
            ({"dnssec_trust_anchor_file": good}, "b.test dane-only\n", 0, ""),
            ({"dnssec_trust_anchor_file": good}, "b.test danger\n", 1, "not a TLS level"),
            ({"smtp_tls_security_level": "dane-maybe"}, None, 1, "postern.conf:"),
        ]
        for settings, policy, want, text in cases:
            rc, out = postern_check(d, settings, policy)
            expect((rc != 0) == (want != 0) and text in out,
                   "%r %r: exit %d, want %d and %r:\n%s" % (settings, policy, rc, want, text,
                                                             out))
    finally:
        shutil.rmtree(d, ignore_errors=True)
