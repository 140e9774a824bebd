"""test_config - `postern check` accepts a good configuration and reports the first error of a
bad one as `file:line: message` with a non-zero exit."""

import os
import re
import shutil
import subprocess
import tempfile

from harness import IS_ROOT, POSTERN, HarnessError, current_user, ensure_users, expect


def _owners():
    """_owners - config lines naming users that exist here (appended after the lines under
    test, so the line numbers of the errors stay put)."""
    if IS_ROOT:
        ensure_users()
        return ""
    me = current_user()
    return "mail_owner = %s\nqueue_owner = %s\nmailbox_owner = %s\n" % (me, me, me)


def _check(conf_text, with_map=False):
    """_check - write conf_text to a fresh DIR/postern.conf, run `postern -c DIR check`."""
    if not os.path.exists(POSTERN):
        raise HarnessError("%s is not built (run make)" % POSTERN)
    d = tempfile.mkdtemp(prefix="postern-check-")
    try:
        with open(os.path.join(d, "postern.conf"), "w") as f:
            f.write(conf_text + _owners())
        if with_map:
            with open(os.path.join(d, "mailboxes"), "w") as f:
                f.write("alice@local.test %s/mail/alice/\n" % d)
            subprocess.run([POSTERN, "-c", d, "map", "build", os.path.join(d, "mailboxes")],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30, check=True)
        r = subprocess.run([POSTERN, "-c", d, "check"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                           text=True, errors="replace")
        return r.returncode, r.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)


GOOD = """# a comment
queue_directory = queue
smtp_listen = 127.0.0.1:2525
local_domains = local.test
message_size_limit = 10M
"""


def test_check_accepts_good_config():
    rc, out = _check(GOOD)
    expect(rc == 0, "postern check on a good config exited %d:\n%s" % (rc, out))


def test_check_unknown_key():
    rc, out = _check(GOOD + "\nno_such_key = 1\n")      # line 7
    expect(rc != 0, "postern check accepted an unknown key:\n%s" % out)
    expect(re.search(r"postern\.conf:7: \S", out),
           "want 'postern.conf:7: message', got:\n%s" % out)
    expect("no_such_key" in out, "message does not name the key:\n%s" % out)


def test_check_bad_size():
    rc, out = _check("queue_directory = queue\nmessage_size_limit = 10Q\n")   # line 2
    expect(rc != 0, "postern check accepted message_size_limit = 10Q:\n%s" % out)
    expect(re.search(r"postern\.conf:2: \S", out),
           "want 'postern.conf:2: message', got:\n%s" % out)


def test_check_bad_time_and_int():
    rc, out = _check("queue_retry_min = soon\n")
    expect(rc != 0 and re.search(r"postern\.conf:1: \S", out),
           "bad time: rc %d:\n%s" % (rc, out))
    rc, out = _check("# x\nsmtpd_processes = many\n")
    expect(rc != 0 and re.search(r"postern\.conf:2: \S", out),
           "bad int: rc %d:\n%s" % (rc, out))


def test_check_missing_map():
    """A mailbox_map whose .db was never built is an error (DESIGN: check validates every map)."""
    rc, out = _check(GOOD + "mailbox_map = mailboxes\n")
    expect(rc != 0, "postern check accepted a mailbox_map that does not exist:\n%s" % out)
    rc, out = _check(GOOD + "mailbox_map = mailboxes\n", with_map=True)
    expect(rc == 0, "postern check refused a built map:\n%s" % out)
