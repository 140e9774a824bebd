/* qmgr_dsn_test - the DSN composer: golden output, RET=FULL, delay warnings, hostile text.
 *
 * The composer is pure, so its source is compiled into the test. The golden report is
 * what qmgr writes for two failed recipients (one remote with an SMTP reply, one local
 * with a diagnostic that tries to inject a header) and RET unset (headers only). The
 * integration test tests/integration/test_bounce.py parses real reports with Python's
 * email package. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemons/qmgr/qmgr_dsn.c"
#include "test.h"

static const char test_orig[] =
    "Received: from x\r\nSubject: hi\r\nX-Test-Id: t1\r\n\r\nbody\r\n";

static const struct qmgr_dsn_rcpt test_rcpts[2] = {
    { "bob@b.example", "rfc822;Bob@B.example", "failed", "5.1.1",
      "550 5.1.1 <bob@b.example>: Recipient address rejected: User unknown in virtual "
      "mailbox table", "mx.b.example[192.0.2.1]:25", 1764300100, 0 },
    { "carol@local.test", "", "failed", "5.1.1", "mailbox unknown\r\nInjected: x", "local",
      1764300100, 0 },
};

static const char test_golden[] =
    "Date: Fri, 28 Nov 2025 03:23:20 +0000\r\n"
    "From: Mail Delivery System <MAILER-DAEMON@mx.local.test>\r\n"
    "To: <alice@local.test>\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Message-ID: <NEWQID@mx.local.test>\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"NEWQID.1764300200/mx.local.test\"\r\n"
    "\r\n"
    "This is a MIME-encapsulated message.\r\n"
    "\r\n"
    "--NEWQID.1764300200/mx.local.test\r\n"
    "Content-Description: Notification\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "This is the mail system at host mx.local.test.\r\n"
    "\r\n"
    "I'm sorry to have to inform you that your message could not\r\n"
    "be delivered to one or more recipients. It's attached below.\r\n"
    "\r\n"
    "The mail system\r\n"
    "\r\n"
    "<bob@b.example>: delivery failed: 550 5.1.1 <bob@b.example>: "
    "Recipient address rejected: User unknown in virtual mailbox table\r\n"
    "<carol@local.test>: delivery failed: mailbox unknown  Injected: x\r\n"
    "\r\n"
    "--NEWQID.1764300200/mx.local.test\r\n"
    "Content-Description: Delivery report\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mx.local.test\r\n"
    "X-Postern-Queue-ID: 0123456789ABCDEF\r\n"
    "Original-Envelope-Id: ENV-1\r\n"
    "Arrival-Date: Fri, 28 Nov 2025 03:20:00 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; bob@b.example\r\n"
    "Original-Recipient: rfc822;Bob@B.example\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Remote-MTA: dns; mx.b.example\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <bob@b.example>: Recipient address rejected:\r\n"
    "\tUser unknown in virtual mailbox table\r\n"
    "Last-Attempt-Date: Fri, 28 Nov 2025 03:21:40 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; carol@local.test\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Diagnostic-Code: x-postern; mailbox unknown Injected: x\r\n"
    "Last-Attempt-Date: Fri, 28 Nov 2025 03:21:40 +0000\r\n"
    "\r\n"
    "--NEWQID.1764300200/mx.local.test\r\n"
    "Content-Description: Undelivered Message Headers\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    "Received: from x\r\n"
    "Subject: hi\r\n"
    "X-Test-Id: t1\r\n"
    "\r\n"
    "--NEWQID.1764300200/mx.local.test--\r\n";


/* test_dsn - the report of the golden case. */
static void
test_dsn(struct qmgr_dsn *d)
{
    memset(d, 0, sizeof(*d));
    d->reporting_mta = "mx.local.test";
    d->to = "alice@local.test";
    d->orig_qid = "0123456789ABCDEF";
    d->envid = "ENV-1";
    d->message_id = "<NEWQID@mx.local.test>";
    d->boundary = "NEWQID.1764300200/mx.local.test";
    d->arrival = 1764300000;
    d->now = 1764300200;
    d->rcpts = test_rcpts;
    d->nrcpt = 2;
}

/* test_qmgr_dsn_golden - headers only, two failed recipients, byte for byte. */
static void
test_qmgr_dsn_golden(void)
{
    struct qmgr_dsn d;
    struct buf     *b = buf_new(100);

    test_dsn(&d);
    qmgr_dsn_compose(b, &d, test_orig, qmgr_dsn_header_len(test_orig, strlen(test_orig)));
    CHECK(b->len == strlen(test_golden));
    CHECK(memcmp(b->data, test_golden, b->len < strlen(test_golden) ? b->len
                                                                     : strlen(test_golden))
          == 0);
    if (b->len != strlen(test_golden) || memcmp(b->data, test_golden, b->len) != 0)
        fprintf(stderr, "  got:\n%s\n", b->data);
    buf_free(&b);
}

/* test_qmgr_dsn_crlf - every line ends in CRLF, no bare CR or LF, lines < 999. */
static void
test_qmgr_dsn_crlf(void)
{
    struct qmgr_dsn d;
    struct buf     *b = buf_new(100);
    size_t          i, col = 0;
    int             bad = 0;

    test_dsn(&d);
    d.full = 1;
    qmgr_dsn_compose(b, &d, test_orig, strlen(test_orig));
    for (i = 0; i < b->len; i++) {
        if (b->data[i] == '\r') {
            bad |= i + 1 >= b->len || b->data[i + 1] != '\n';
            col = 0;
            i++;
            continue;
        }
        bad |= b->data[i] == '\n';
        bad |= ++col > 998;
    }
    CHECK(!bad);
    CHECK(b->len >= 2 && memcmp(b->data + b->len - 2, "\r\n", 2) == 0);
    buf_free(&b);
}

/* test_qmgr_dsn_full - RET=FULL: the whole original as message/rfc822, 8bit marked. */
static void
test_qmgr_dsn_full(void)
{
    static const char orig[] = "Subject: caf\xc3\xa9\r\n\r\nbody line\r\nlast";
    struct qmgr_dsn   d;
    struct buf       *b = buf_new(100);

    test_dsn(&d);
    d.full = 1;
    d.eightbit = 1;
    qmgr_dsn_compose(b, &d, orig, strlen(orig));
    CHECK(strstr(b->data, "Content-Description: Undelivered Message\r\n"
                          "Content-Type: message/rfc822\r\n"
                          "Content-Transfer-Encoding: 8bit\r\n\r\n"
                          "Subject: caf\xc3\xa9\r\n\r\nbody line\r\nlast\r\n\r\n"
                          "--NEWQID.1764300200/mx.local.test--\r\n") != NULL);
    CHECK(strstr(b->data, "text/rfc822-headers") == NULL);
    buf_free(&b);
}

/* test_qmgr_dsn_delayed - a delay warning: subject, action, Will-Retry-Until. */
static void
test_qmgr_dsn_delayed(void)
{
    struct qmgr_dsn_rcpt r = { "bob@b.example", "", "delayed", "4.4.1",
                               "connect to mx.b.example: Connection refused",
                               "", 1764300100, 1764300000 + 5 * 86400 };
    struct qmgr_dsn      d;
    struct buf          *b = buf_new(100);

    test_dsn(&d);
    d.rcpts = &r;
    d.nrcpt = 1;
    qmgr_dsn_compose(b, &d, NULL, 0);
    CHECK(strstr(b->data, "Subject: Delayed Mail (still being retried)\r\n") != NULL);
    CHECK(strstr(b->data, "Action: delayed\r\nStatus: 4.4.1\r\n") != NULL);
    CHECK(strstr(b->data, "Will-Retry-Until: Wed, 3 Dec 2025 03:20:00 +0000\r\n") != NULL);
    CHECK(strstr(b->data, "THIS IS A WARNING ONLY") != NULL);
    CHECK(strstr(b->data, "Remote-MTA") == NULL);
    CHECK(strstr(b->data, "Diagnostic-Code: x-postern; connect to") != NULL);
    CHECK(strstr(b->data, "The original message could not be read") != NULL);
    buf_free(&b);
}

/* test_qmgr_dsn_delivered - NOTIFY=SUCCESS report. */
static void
test_qmgr_dsn_delivered(void)
{
    struct qmgr_dsn_rcpt r = { "bob@local.test", "", "delivered", "2.0.0",
                               "delivered to maildir", "local", 1764300100, 0 };
    struct qmgr_dsn      d;
    struct buf          *b = buf_new(100);

    test_dsn(&d);
    d.rcpts = &r;
    d.nrcpt = 1;
    d.envid = "";
    qmgr_dsn_compose(b, &d, test_orig, qmgr_dsn_header_len(test_orig, strlen(test_orig)));
    CHECK(strstr(b->data, "Subject: Successful Mail Delivery Report\r\n") != NULL);
    CHECK(strstr(b->data, "Action: delivered\r\nStatus: 2.0.0\r\n") != NULL);
    CHECK(strstr(b->data, "Delivered Message Headers") != NULL);
    CHECK(strstr(b->data, "Original-Envelope-Id") == NULL);
    CHECK(strstr(b->data, "last notice") == NULL);
    buf_free(&b);
}

/* test_qmgr_dsn_relayed - NOTIFY=SUCCESS for a recipient handed to a next hop without DSN
 * (RFC 3461 5.2.2): a success report with Action relayed, the remote MTA and its reply; a
 * locally delivered recipient in the same report stays "delivered". */
static void
test_qmgr_dsn_relayed(void)
{
    static const struct qmgr_dsn_rcpt r[2] = {
        { "bob@b.example", "rfc822;bob@b.example", "relayed", "2.0.0",
          "250 2.0.0 Ok: queued as 4QX", "mx.b.example[192.0.2.1]:25", 1764300100, 0 },
        { "carol@local.test", "", "delivered", "2.0.0", "delivered to maildir", "local",
          1764300100, 0 },
    };
    struct qmgr_dsn d;
    struct buf     *b = buf_new(100);

    test_dsn(&d);
    d.rcpts = r;
    d.nrcpt = 2;
    qmgr_dsn_compose(b, &d, test_orig, qmgr_dsn_header_len(test_orig, strlen(test_orig)));
    CHECK(strstr(b->data, "Subject: Successful Mail Delivery Report\r\n") != NULL);
    CHECK(strstr(b->data, "this is the last notice of success") != NULL);
    CHECK(strstr(b->data, "<bob@b.example>: relayed to non-DSN-aware mail system: 250 2.0.0 "
                          "Ok: queued as 4QX\r\n") != NULL);
    CHECK(strstr(b->data, "<carol@local.test>: delivered: delivered to maildir\r\n") != NULL);
    CHECK(strstr(b->data, "Final-Recipient: rfc822; bob@b.example\r\n"
                          "Original-Recipient: rfc822;bob@b.example\r\n"
                          "Action: relayed\r\n"
                          "Status: 2.0.0\r\n"
                          "Remote-MTA: dns; mx.b.example\r\n"
                          "Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 4QX\r\n"
                          "Last-Attempt-Date: Fri, 28 Nov 2025 03:21:40 +0000\r\n") != NULL);
    CHECK(strstr(b->data, "Action: delivered\r\nStatus: 2.0.0\r\n") != NULL);
    CHECK(strstr(b->data, "Will-Retry-Until") == NULL);
    CHECK(strstr(b->data, "Content-Description: Delivered Message Headers\r\n") != NULL);
    buf_free(&b);
}

/* test_qmgr_dsn_utf8_rcpt - a UTF-8 address gets the utf-8 address type; diagnostics in
 * the report part stay ASCII. */
static void
test_qmgr_dsn_utf8_rcpt(void)
{
    struct qmgr_dsn_rcpt r = { "j\xc3\xb6rg@b.example", "", "failed", "5.1.1",
                               "550 unknown user j\xc3\xb6rg", "", 0, 0 };
    struct qmgr_dsn      d;
    struct buf          *b = buf_new(100);

    test_dsn(&d);
    d.rcpts = &r;
    d.nrcpt = 1;
    qmgr_dsn_compose(b, &d, NULL, 0);
    CHECK(strstr(b->data, "Final-Recipient: utf-8; j\xc3\xb6rg@b.example\r\n") != NULL);
    CHECK(strstr(b->data, "Diagnostic-Code: smtp; 550 unknown user j??rg\r\n") != NULL);
    CHECK(strstr(b->data, "Last-Attempt-Date") == NULL);
    buf_free(&b);
}

/* test_qmgr_dsn_header_len - where the header section ends. */
static void
test_qmgr_dsn_header_len(void)
{
    CHECK(qmgr_dsn_header_len("A: 1\r\nB: 2\r\n\r\nbody", 19) == 12);
    CHECK(qmgr_dsn_header_len("A: 1\nB: 2\n\nbody", 15) == 10);
    CHECK(qmgr_dsn_header_len("\r\nbody", 6) == 0);
    CHECK(qmgr_dsn_header_len("A: 1\r\nB: 2\r\n", 12) == 12);
    CHECK(qmgr_dsn_header_len("", 0) == 0);
}

/* test_qmgr_dsn_fold - long diagnostics fold at spaces; no line over 78 + a word. */
static void
test_qmgr_dsn_fold(void)
{
    struct buf *b = buf_new(100);

    qmgr_dsn_field(b, "Diagnostic-Code", "smtp; 550 aaaa bbbb cccc dddd eeee ffff gggg hhhh "
                   "iiii jjjj kkkk llll mmmm nnnn oooo pppp qqqq");
    CHECK_STR(b->data, "Diagnostic-Code: smtp; 550 aaaa bbbb cccc dddd eeee ffff gggg hhhh "
                       "iiii jjjj\r\n\tkkkk llll mmmm nnnn oooo pppp qqqq\r\n");
    buf_free(&b);
}

/* test_qmgr_dsn_diag_types - smtp; for replies (bare or as the smtp agent words them). */
static void
test_qmgr_dsn_diag_types(void)
{
    char v[300];

    qmgr_dsn_diag("550 5.1.1 no such user", v, sizeof(v));
    CHECK_STR(v, "smtp; 550 5.1.1 no such user");
    qmgr_dsn_diag("host mx.b.example[192.0.2.1] said: 550 5.1.1 <c@b.example>: unknown "
                  "(in reply to RCPT TO command)", v, sizeof(v));
    CHECK_STR(v, "smtp; 550 5.1.1 <c@b.example>: unknown");
    qmgr_dsn_diag("host mx said: 452 4.2.2 full", v, sizeof(v));
    CHECK_STR(v, "smtp; 452 4.2.2 full");
    qmgr_dsn_diag("connect to mx.b.example[192.0.2.1]:25: Connection refused", v, sizeof(v));
    CHECK_STR(v, "x-postern; connect to mx.b.example[192.0.2.1]:25: Connection refused");
    qmgr_dsn_diag("mailbox unknown", v, sizeof(v));
    CHECK_STR(v, "x-postern; mailbox unknown");
}

int
main(void)
{
    TEST_RUN(test_qmgr_dsn_golden);
    TEST_RUN(test_qmgr_dsn_crlf);
    TEST_RUN(test_qmgr_dsn_full);
    TEST_RUN(test_qmgr_dsn_delayed);
    TEST_RUN(test_qmgr_dsn_delivered);
    TEST_RUN(test_qmgr_dsn_relayed);
    TEST_RUN(test_qmgr_dsn_utf8_rcpt);
    TEST_RUN(test_qmgr_dsn_header_len);
    TEST_RUN(test_qmgr_dsn_fold);
    TEST_RUN(test_qmgr_dsn_diag_types);
    TEST_END();
}
