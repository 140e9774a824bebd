"""milter_scripted - a test milter (pymilter) for test_milter.py, run by the system Python:
    /usr/bin/python3 milter_scripted.py SOCKET [RECORD [NAME]]

SOCKET is a TCP port on 127.0.0.1 or a UNIX socket path (made connectable by anyone, for
smtpd's unprivileged user). RECORD, if given, is a file to which one JSON line per event
is appended: what the milter was told (ESMTP arguments of MAIL and RCPT, macros, the
headers and body it saw), so the test can check it. NAME (default "one") tells two of us
apart when they run in a row.

It acts on markers: with a sender whose local part is "reject-rcpt" each RCPT gets 550
with our text, with "reject-data" DATA gets 550, with "stall" RCPT sleeps 8 s (past
milter_command_timeout), with "tempfail-rcpt" a recipient whose local part is "bob" gets a
tempfail (the others pass); in the body MILTER-TEMPFAIL gives a tempfail at end of message,
MILTER-MODIFY adds the header X-Milter-Test, adds recipient bob@local.test and changes the
sender to changed@example.org, MILTER-QUARANTINE quarantines, MILTER-REPLBODY replaces the body,
MILTER-DIE makes the milter exit at end of message (its connection drops mid-session),
and MILTER-CHAIN makes milter "one" add X-Chain-One and replace the body, while any other
name reports in X-Chain-Two whether it saw them. Every message gets X-Milter-Seen with the
headers it counted, so the test can see that headers and body were sent.
"""

import json
import os
import sys
import threading
import time

import Milter

RECORD = None
NAME = "one"
_lock = threading.Lock()
REPLACED = b"Replaced by the milter.\r\nSecond line.\r\n"


def record(event, **kw):
    """record - one JSON line for the test (nothing without a record file)."""
    if RECORD is None:
        return
    kw.update(event=event, milter=NAME)
    with _lock, open(RECORD, "a") as f:
        f.write(json.dumps(kw) + "\n")


class Scripted(Milter.Base):
    def __init__(self):
        self.nhdrs = 0
        self.hdrs = []
        self.bodybuf = b""
        self.sender = ""

    def _macros(self, *names):
        return {n: self.getsymval(n) for n in names}

    def connect(self, hostname, family, hostaddr):
        record("connect", host=hostname,
               macros=self._macros("j", "_", "v", "{daemon_name}", "{daemon_addr}",
                                   "{client_addr}", "{client_name}", "{client_port}"))
        return Milter.CONTINUE

    def envfrom(self, sender, *params):
        self.nhdrs = 0
        self.hdrs = []
        self.bodybuf = b""
        self.sender = sender
        record("mail", addr=sender, params=list(params),
               macros=self._macros("{mail_addr}", "{mail_host}", "{mail_mailer}",
                                   "{auth_authen}", "{auth_type}"))
        return Milter.CONTINUE

    def envrcpt(self, rcpt, *params):
        record("rcpt", addr=rcpt, params=list(params),
               macros=self._macros("{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"))
        if "reject-rcpt@" in self.sender:
            self.setreply("550", "5.7.1", "Recipient refused by the test milter")
            return Milter.REJECT
        if "tempfail-rcpt@" in self.sender and rcpt.lower().startswith("<bob@"):
            return Milter.TEMPFAIL
        if "stall@" in self.sender:
            time.sleep(8)
        return Milter.CONTINUE

    def data(self):
        record("data", macros=self._macros("i"))
        if "reject-data@" in self.sender:
            return Milter.REJECT
        return Milter.CONTINUE

    def header(self, name, value):
        self.nhdrs += 1
        self.hdrs.append([name, value])
        return Milter.CONTINUE

    def body(self, chunk):
        if len(self.bodybuf) < 1000000:
            self.bodybuf += chunk
        return Milter.CONTINUE

    def eom(self):
        record("eom", headers=self.hdrs, body=self.bodybuf.decode("utf-8", "replace"),
               macros=self._macros("i", "{auth_authen}"))
        if b"MILTER-DIE" in self.bodybuf:
            os._exit(0)
        if b"MILTER-TEMPFAIL" in self.bodybuf:
            return Milter.TEMPFAIL
        self.addheader("X-Milter-Seen", "headers=%d body=%d" % (self.nhdrs, len(self.bodybuf)))
        if b"MILTER-MODIFY" in self.bodybuf:
            self.addheader("X-Milter-Test", "added")
            self.addrcpt("<bob@local.test>")
            self.chgfrom("<changed@example.org>")
            self.chgheader("Subject", 1, "changed by milter")
        if b"MILTER-QUARANTINE" in self.bodybuf:
            self.quarantine("test quarantine")
        if b"MILTER-REPLBODY" in self.bodybuf:
            self.replacebody(REPLACED)
        if b"MILTER-CHAIN" in self.bodybuf and NAME == "one":
            self.addheader("X-Chain-One", "1")
            self.replacebody(b"chain body from one\n")
        elif NAME != "one":
            saw = any(n.lower() == "x-chain-one" for n, _ in self.hdrs)
            self.addheader("X-Chain-Two", "saw-one=%s body-from-one=%s"
                           % ("yes" if saw else "no",
                              "yes" if self.bodybuf == b"chain body from one\r\n" else "no"))
        return Milter.ACCEPT


def main():
    global RECORD, NAME
    where = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2]:
        RECORD = sys.argv[2]
    if len(sys.argv) > 3:
        NAME = sys.argv[3]
    Milter.factory = Scripted
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.ADDRCPT | Milter.DELRCPT
                     | Milter.CHGFROM | Milter.QUARANTINE | Milter.CHGBODY)
    if where.isdigit():
        sock = "inet:%s@127.0.0.1" % where
    else:
        os.umask(0o111)              # smtpd runs as another user: the socket is for anyone
        sock = "unix:%s" % where
    Milter.runmilter("scripted-" + NAME, sock, 30)


if __name__ == "__main__":
    main()
