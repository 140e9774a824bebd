"""milter_scripted - a test milter (pymilter) for test_milter.py, run by the system Python:
    /usr/bin/python3 milter_scripted.py PORT

It acts on markers: with a sender whose local part is "reject-rcpt" each RCPT gets 550
with our text, with "stall" RCPT sleeps 8 s (past milter_command_timeout); in the body
MILTER-TEMPFAIL gives a tempfail at end of message, MILTER-MODIFY adds the header
X-Milter-Test, adds recipient bob@local.test and changes the sender to
changed@example.org, MILTER-QUARANTINE quarantines. Every message gets X-Milter-Seen with
the headers it counted, so the test can see that headers and body were sent.
"""

import sys
import time

import Milter


class Scripted(Milter.Base):
    def __init__(self):
        self.nhdrs = 0
        self.data = b""

    def envfrom(self, sender, *params):
        self.nhdrs = 0
        self.data = b""
        self.sender = sender
        return Milter.CONTINUE

    def envrcpt(self, rcpt, *params):
        if "reject-rcpt@" in self.sender:
            self.setreply("550", "5.7.1", "Recipient refused by the test milter")
            return Milter.REJECT
        if "stall@" in self.sender:
            time.sleep(8)
        return Milter.CONTINUE

    def header(self, name, value):
        self.nhdrs += 1
        return Milter.CONTINUE

    def body(self, chunk):
        if len(self.data) < 1000000:
            self.data += chunk
        return Milter.CONTINUE

    def eom(self):
        if b"MILTER-TEMPFAIL" in self.data:
            return Milter.TEMPFAIL
        self.addheader("X-Milter-Seen", "headers=%d body=%d" % (self.nhdrs, len(self.data)))
        if b"MILTER-MODIFY" in self.data:
            self.addheader("X-Milter-Test", "added")
            self.addrcpt("<bob@local.test>")
            self.chgfrom("<changed@example.org>")
            self.chgheader("Subject", 1, "changed by milter")
        if b"MILTER-QUARANTINE" in self.data:
            self.quarantine("test quarantine")
        return Milter.ACCEPT


def main():
    port = int(sys.argv[1])
    Milter.factory = Scripted
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.ADDRCPT | Milter.DELRCPT
                     | Milter.CHGFROM | Milter.QUARANTINE)
    Milter.runmilter("scripted", "inet:%d@127.0.0.1" % port, 30)


if __name__ == "__main__":
    main()
