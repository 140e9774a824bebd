"""test_map_cli - `postern check` over the mail policy, `postern map query` on hash:, cidr:
and pcre: tables, and `postern map test` over access tables and content rules.

No daemon is started: each test writes postern.conf and its tables into a fresh directory
and runs the postern command on it (`check` only runs `master -n` to check listeners).

- check: a bad PCRE2 pattern in header_checks is named with file, line and offset (exit
  non-zero); a bad action and a bad network in a cidr: client table, a bad action in
  body_checks and a bad value in a hash: sender table are named with file and line (or key);
  a good policy passes.
- map query: hash (bare path and hash:), cidr (an address in a network), pcre (first
  match wins); exit 1 when not found.
- map test --client/--helo/--sender/--rcpt: one line per stage naming the table and line
  that decided (WARN entries too), `no match` otherwise; the null sender uses
  smtpd_null_access_lookup_key.
- map test --message: each action applied and `verdict: REJECT 550 5.7.1 ...` naming the
  rule; `verdict: accept`; --output writes the message as REPLACE/IGNORE left it; the
  --header-checks / --body-checks options test files that are not configured.
"""

import os
import re
import shutil
import subprocess
import tempfile

from harness import IS_ROOT, POSTERN, HarnessError, current_user, ensure_users, expect, log


def _owners():
    """_owners - config lines naming users that exist here."""
    if IS_ROOT:
        ensure_users()
        return ""
    me = current_user()
    return "mail_owner = %s\nqueue_owner = %s\nmailbox_owner = %s\n" % (me, me, me)


def _show(out):
    """_show - a command's output in the runner's log, line by line."""
    for line in out.rstrip().splitlines():
        log(line)


class _Conf:
    """A configuration directory: postern.conf plus tables; removed at the end."""

    def __init__(self, conf, files=None, hash_maps=()):
        if not os.path.exists(POSTERN):
            raise HarnessError("%s is not built (run make)" % POSTERN)
        self.dir = tempfile.mkdtemp(prefix="postern-mapcli-")
        for name, text in (files or {}).items():
            self.write(name, text)
        with open(os.path.join(self.dir, "postern.conf"), "w") as f:
            f.write("queue_directory = queue\n")
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v.replace("{dir}", self.dir)))
            f.write(_owners())
        for name in hash_maps:
            r = self.run("map", "build", self.path(name))
            expect(r.returncode == 0, "map build %s: %s" % (name, r.stdout))

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def run(self, *args, stdin=None):
        """run - `postern -c DIR ARGS...`: the CompletedProcess, stderr in stdout."""
        r = subprocess.run([POSTERN, "-c", self.dir] + list(args), input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                           text=True, errors="replace")
        return r

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


HEADER_CHECKS = r"""# header checks for test_map_cli
/^Subject:.*map-cli-reject/     REJECT Subject refused by map test
/^Subject:.*map-cli-warn/       WARN warned by map test
/^X-Replace-Me:/                REPLACE X-Replaced: yes
/^X-Ignore-Me:/                 IGNORE
"""

BODY_CHECKS = r"""# body checks
/^map-cli-body-hold$/           HOLD held by map test
"""

CLIENT_CIDR = """# client access
192.0.2.0/24        REJECT Network refused by map test
198.51.100.7        OK
2001:db8::/32       DEFER 4.7.1 try later
"""

SENDER_PCRE = r"""# sender access
/^warn@example\.org$/           WARN sender warned by map test
/@spam\.example$/               REJECT Sender refused by map test
"""

SENDER_HASH = """<>                      DEFER no bounces now
bad.example             REJECT 5.7.1 Domain refused by map test
"""

HELO_PCRE = r"""/^localhost$/    REJECT you are not localhost
"""

RCPT_HASH = """bob@local.test          REJECT Bob refuses mail
"""


def _policy_conf():
    """_policy_conf - a configuration with every access stage and content rules."""
    return _Conf({
        "smtpd_client_access": "cidr:{dir}/client.cidr",
        "smtpd_helo_access": "pcre:helo.pcre",                 # relative: config dir
        "smtpd_sender_access": "pcre:{dir}/sender.pcre, hash:{dir}/sender",
        "smtpd_recipient_access": "{dir}/recipient",           # bare path: hash
        "header_checks": "pcre:{dir}/header_checks",
        "body_checks": "pcre:{dir}/body_checks",
    }, files={"client.cidr": CLIENT_CIDR, "sender.pcre": SENDER_PCRE, "sender": SENDER_HASH,
              "helo.pcre": HELO_PCRE, "recipient": RCPT_HASH,
              "header_checks": HEADER_CHECKS, "body_checks": BODY_CHECKS},
        hash_maps=("sender", "recipient"))


# --------------------------------------------------------------------------------------
# postern check

def test_map_check_good_policy():
    """A configuration naming access tables of every type and content rules passes."""
    with _policy_conf() as c:
        r = c.run("check")
        expect(r.returncode == 0, "check on a good policy exited %d:\n%s"
               % (r.returncode, r.stdout))
        expect("configuration ok" in r.stdout, "no 'configuration ok':\n%s" % r.stdout)


def test_map_check_bad_pattern_names_file_line_offset():
    """A header_checks file whose line 3 has an unclosed group: check exits non-zero and
    prints `FILE:3: pattern error at offset N: message`."""
    hc = "# comment\n/^Subject: ok/ WARN fine\n/^Subject: (unclosed/ REJECT x\n"
    with _Conf({"header_checks": "pcre:{dir}/hc"}, files={"hc": hc}) as c:
        r = c.run("check")
        _show(r.stdout)
        expect(r.returncode != 0, "check accepted a bad pattern:\n%s" % r.stdout)
        m = re.search(re.escape(c.path("hc")) + r":3: pattern error at offset (\d+): \S",
                      r.stdout)
        expect(m, "want '%s:3: pattern error at offset N: message', got:\n%s"
               % (c.path("hc"), r.stdout))
        expect(int(m.group(1)) == len("^Subject: (unclosed"),
               "offset %s, want the end of the pattern" % m.group(1))
    with _Conf({"smtpd_sender_access": "pcre:{dir}/sender"},
               files={"sender": "/^ok@/ OK\n/[z-a]/ REJECT\n"}) as c:
        r = c.run("check")
        _show(r.stdout)
        expect(r.returncode != 0, "check accepted a bad access pattern:\n%s" % r.stdout)
        expect(re.search(re.escape(c.path("sender")) + r":2: pattern error at offset \d+: \S",
                         r.stdout), "want '%s:2: pattern error at offset N: message', got:\n%s"
               % (c.path("sender"), r.stdout))


def test_map_check_bad_cidr_table_names_file_line():
    """A cidr: client table with a bad action on line 3 (and one with host bits set on
    line 2): check exits non-zero naming FILE:LINE."""
    with _Conf({"smtpd_client_access": "cidr:{dir}/client.cidr"},
               files={"client.cidr": "# x\n192.0.2.0/24 REJECT\n10.0.0.0/8 FROBNICATE now\n"}
               ) as c:
        r = c.run("check")
        _show(r.stdout)
        expect(r.returncode != 0, "check accepted a bad action:\n%s" % r.stdout)
        expect(re.search(re.escape(c.path("client.cidr")) + r":3: \S", r.stdout),
               "want '%s:3: message', got:\n%s" % (c.path("client.cidr"), r.stdout))
    with _Conf({"smtpd_client_access": "cidr:{dir}/client.cidr"},
               files={"client.cidr": "# x\n10.1.2.3/8 REJECT\n"}) as c:
        r = c.run("check")
        expect(r.returncode != 0, "check accepted 10.1.2.3/8:\n%s" % r.stdout)
        expect(re.search(re.escape(c.path("client.cidr")) + r":2: \S", r.stdout),
               "want '%s:2: message', got:\n%s" % (c.path("client.cidr"), r.stdout))


def test_map_check_bad_content_action_and_hash_value():
    """body_checks with an access-only or unknown action on line 2, and a hash: sender
    table with a value that is no action: both named (file:line, file and key)."""
    with _Conf({"body_checks": "pcre:{dir}/bc"},
               files={"bc": "/ok/ WARN fine\n/bad/ FROBNICATE\n"}) as c:
        r = c.run("check")
        expect(r.returncode != 0, "check accepted FROBNICATE:\n%s" % r.stdout)
        expect(re.search(re.escape(c.path("bc")) + r":2: \S", r.stdout),
               "want '%s:2: message', got:\n%s" % (c.path("bc"), r.stdout))
    with _Conf({"smtpd_sender_access": "hash:{dir}/sender"},
               files={"sender": "a@b.example REJECT\nc@d.example PREPEND X-No: no\n"},
               hash_maps=("sender",)) as c:
        r = c.run("check")
        _show(r.stdout)
        expect(r.returncode != 0, "check accepted PREPEND in an access table:\n%s" % r.stdout)
        expect(c.path("sender") in r.stdout and "c@d.example" in r.stdout,
               "want the file and the key, got:\n%s" % r.stdout)


def test_map_check_missing_table_and_two_content_files():
    """An access table whose .db was never built, and header_checks naming two files:
    both are errors naming the setting."""
    with _Conf({"smtpd_recipient_access": "hash:{dir}/nothere",
                "header_checks": "pcre:{dir}/a pcre:{dir}/b"},
               files={"nothere": "x@y REJECT\n", "a": "/a/ WARN\n", "b": "/b/ WARN\n"}) as c:
        r = c.run("check")
        expect(r.returncode != 0, "check accepted them:\n%s" % r.stdout)
        expect("smtpd_recipient_access" in r.stdout and "header_checks" in r.stdout,
               "want both settings named, got:\n%s" % r.stdout)


# --------------------------------------------------------------------------------------
# postern map query

def test_map_query_hash_cidr_pcre():
    """map query: hash (bare and hash:) prints the value (exit 0) or exits 1; cidr: finds
    the network holding an address; pcre: the first matching rule's value."""
    with _policy_conf() as c:
        for table in (c.path("recipient"), "hash:" + c.path("recipient")):
            r = c.run("map", "query", table, "bob@local.test")
            expect(r.returncode == 0 and r.stdout.strip() == "REJECT Bob refuses mail",
                   "query %s: rc %d %r" % (table, r.returncode, r.stdout))
            r = c.run("map", "query", table, "alice@local.test")
            expect(r.returncode == 1 and r.stdout.strip() == "",
                   "query %s for a missing key: rc %d %r" % (table, r.returncode, r.stdout))
        cidr = "cidr:" + c.path("client.cidr")
        r = c.run("map", "query", cidr, "192.0.2.55")
        expect(r.returncode == 0 and r.stdout.startswith("REJECT")
               and "Network refused by map test" in r.stdout,
               "query cidr 192.0.2.55: rc %d %r" % (r.returncode, r.stdout))
        r = c.run("map", "query", cidr, "2001:db8::1")
        expect(r.returncode == 0 and r.stdout.startswith("DEFER") and "4.7.1" in r.stdout,
               "query cidr 2001:db8::1: rc %d %r" % (r.returncode, r.stdout))
        r = c.run("map", "query", cidr, "203.0.113.1")
        expect(r.returncode == 1, "query cidr 203.0.113.1: rc %d %r" % (r.returncode,
                                                                          r.stdout))
        pcre = "pcre:" + c.path("sender.pcre")
        r = c.run("map", "query", pcre, "Someone@SPAM.example")
        expect(r.returncode == 0 and r.stdout.strip() == "REJECT Sender refused by map test",
               "query pcre (caseless by default): rc %d %r" % (r.returncode, r.stdout))
        r = c.run("map", "query", pcre, "someone@ham.example")
        expect(r.returncode == 1, "query pcre no match: rc %d %r" % (r.returncode, r.stdout))
        r = c.run("map", "query", "pcre:" + c.path("nosuch"), "x")
        expect(r.returncode == 2, "query of a missing pcre file: rc %d" % r.returncode)


# --------------------------------------------------------------------------------------
# postern map test: access

def _line(out, prefix):
    """_line - the output line starting with prefix, else None."""
    for l in out.splitlines():
        if l.startswith(prefix):
            return l
    return None


def test_map_test_client_stages():
    """map test --client --helo --sender --rcpt: one line per stage in stage order, each
    naming the table and line (or key) that decided; no match says so."""
    with _policy_conf() as c:
        r = c.run("map", "test", "--client", "192.0.2.1", "--helo", "localhost",
                  "--sender", "x@spam.example", "--rcpt", "bob@local.test",
                  "--rcpt", "alice@local.test")
        _show(r.stdout)
        expect(r.returncode == 0, "map test exited %d:\n%s" % (r.returncode, r.stdout))
        lines = [l for l in r.stdout.splitlines() if l]
        kinds = [l.split(" ", 1)[0] for l in lines]
        expect(kinds == ["client", "helo", "sender", "recipient", "recipient"],
               "stages out of order or missing: %r" % lines)
        cl = _line(r.stdout, "client 192.0.2.1 (name unknown): ")
        expect(cl and "REJECT" in cl and "Network refused by map test" in cl
               and "[cidr:%s:2]" % c.path("client.cidr") in cl,
               "client line: %r" % cl)
        he = _line(r.stdout, "helo localhost: ")
        expect(he and "REJECT" in he and "%s:1]" % c.path("helo.pcre") in he,
               "helo line: %r" % he)
        se = _line(r.stdout, "sender <x@spam.example>: ")
        expect(se and "REJECT" in se and "Sender refused by map test" in se
               and "%s:3]" % c.path("sender.pcre") in se, "sender line: %r" % se)
        rb = _line(r.stdout, "recipient <bob@local.test>: ")
        expect(rb and "REJECT" in rb and c.path("recipient") in rb, "bob: %r" % rb)
        ra = _line(r.stdout, "recipient <alice@local.test>: ")
        expect(ra and "no match" in ra, "alice: %r" % ra)


def test_map_test_sender_warn_null_and_ok():
    """A WARN entry is printed and the search goes on (to no match); the null sender is
    looked up as <> (DEFER from the hash table, naming the table); a client the table says
    OK for prints OK; a client name goes with --name."""
    with _policy_conf() as c:
        r = c.run("map", "test", "--sender", "warn@example.org")
        _show(r.stdout)
        lines = [l for l in r.stdout.splitlines() if l.startswith("sender <warn@example.org>")]
        expect(len(lines) == 2 and "WARN" in lines[0] and "sender warned by map test"
               in lines[0] and "%s:2]" % c.path("sender.pcre") in lines[0]
               and "no match" in lines[1], "WARN then no match: %r" % r.stdout)
        r = c.run("map", "test", "--sender", "<>")
        se = _line(r.stdout, "sender <>: ")
        expect(se and "DEFER" in se and "no bounces now" in se and c.path("sender") in se,
               "null sender: %r" % r.stdout)
        r = c.run("map", "test", "--sender", "a@mx.bad.example")
        se = _line(r.stdout, "sender <a@mx.bad.example>: ")
        expect(se and "REJECT" in se and "5.7.1" in se and "Domain refused" in se,
               "parent domain in hash: %r" % r.stdout)
        r = c.run("map", "test", "--client", "198.51.100.7", "--name", "mail.example.net")
        cl = _line(r.stdout, "client 198.51.100.7 (name mail.example.net): ")
        expect(cl and "OK" in cl and "%s:3]" % c.path("client.cidr") in cl,
               "client OK: %r" % r.stdout)


def test_map_test_usage_errors():
    """Nothing to test, --name without --client and an unknown option are usage errors
    (exit 2)."""
    with _policy_conf() as c:
        for args in ((), ("--name", "x"), ("--bogus",), ("--output", c.path("o"))):
            r = c.run("map", "test", *args)
            expect(r.returncode == 2 and "usage" in r.stdout,
                   "map test %r: rc %d %r" % (args, r.returncode, r.stdout))


# --------------------------------------------------------------------------------------
# postern map test: content

MESSAGE = """From: <sender@example.org>
To: <alice@local.test>
Subject: hello map-cli-reject
X-Replace-Me: old
X-Ignore-Me: gone
X-Keep: kept

body line
"""


def test_map_test_message_reject_verdict():
    """map test --message FILE: the REJECT header rule is printed with the header and the
    rule's file:line, and the verdict names it; a clean message (from stdin) is accepted;
    a body HOLD is the verdict of a message without a reject."""
    with _policy_conf() as c:
        msg = c.write("msg", MESSAGE)
        r = c.run("map", "test", "--message", msg)
        _show(r.stdout)
        expect(r.returncode == 0, "map test --message exited %d:\n%s" % (r.returncode,
                                                                         r.stdout))
        hl = _line(r.stdout, 'header "Subject: hello map-cli-reject": ')
        expect(hl and "REJECT" in hl and "%s:2]" % c.path("header_checks") in hl,
               "header action line: %r" % r.stdout)
        v = _line(r.stdout, "verdict: ")
        expect(v and re.match(r"verdict: REJECT 550 5\.7\.1 Subject refused by map test  "
                              r"\[pcre:" + re.escape(c.path("header_checks")) + r":2\]$", v),
               "verdict: %r" % v)
        clean = "Subject: fine\n\nmap-cli-body-hold\n"
        r = c.run("map", "test", "--message", "-", stdin=clean)
        v = _line(r.stdout, "verdict: ")
        expect(v and v.startswith("verdict: HOLD") and "held by map test" in v
               and "%s:2]" % c.path("body_checks") in v, "HOLD verdict: %r" % r.stdout)
        bl = _line(r.stdout, 'body "map-cli-body-hold": ')
        expect(bl and "HOLD" in bl, "body action line: %r" % r.stdout)
        r = c.run("map", "test", "--message", "-", stdin="Subject: fine\n\nhello\n")
        expect(_line(r.stdout, "verdict: ") == "verdict: accept", "accept: %r" % r.stdout)


def test_map_test_message_output_rewritten():
    """--output with REPLACE and IGNORE rules given by --header-checks (the configured
    REJECT rule is not used then): the file holds the rewritten message, LF line ends as
    the input had, the rest unchanged."""
    with _Conf({}) as c:
        hc = c.write("hc", "/^X-Replace-Me:/ REPLACE X-Replaced: yes\n"
                           "/^X-Ignore-Me:/ IGNORE\n")
        msg = c.write("msg", MESSAGE)
        out = c.path("out")
        r = c.run("map", "test", "--message", msg, "--output", out,
                  "--header-checks", "pcre:" + hc)
        _show(r.stdout)
        expect(r.returncode == 0, "map test --output exited %d:\n%s" % (r.returncode,
                                                                        r.stdout))
        expect(_line(r.stdout, "verdict: ") == "verdict: accept", "verdict: %r" % r.stdout)
        expect(_line(r.stdout, 'header "X-Replace-Me: old": REPLACE X-Replaced: yes'),
               "REPLACE line: %r" % r.stdout)
        with open(out) as f:
            got = f.read()
        want = MESSAGE.replace("X-Replace-Me: old", "X-Replaced: yes").replace(
            "X-Ignore-Me: gone\n", "")
        expect(got == want, "rewritten message:\n%r\nwant:\n%r" % (got, want))
        r = c.run("map", "test", "--message", msg, "--header-checks", "hash:" + hc)
        expect(r.returncode != 0 and "pcre:" in r.stdout, "hash: header checks: %r"
               % r.stdout)
