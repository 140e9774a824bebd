/* milter_test - the milter packet codec: what we send byte for byte, and every reply a
 * hostile milter may send (short, oversized, unterminated) refused without a crash. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "milter.h"
#include "test.h"

/* test_milter_encode - OPTNEG, CONNECT, MACRO and HEADER packets as the protocol lays them out. */
static void
test_milter_encode(void)
{
    struct buf  b;
    const char *mac[] = { "j", "mx", "{auth_type}", NULL, "i", "Q1" };
    static const char optneg[] = "\0\0\0\x0dO\0\0\0\x06\0\0\0\x01\0\0\0\x02";
    static const char conn[] = "\0\0\0\x11" "Chost\0" "4\x00\x19" "1.2.3.4\0";
    static const char macro[] = "\0\0\0\x0c" "DCj\0mx\0i\0Q1\0";

    buf_init(&b, 64);
    milter_put_optneg(&b, 1, 2);
    CHECK(b.len == sizeof(optneg) - 1 && memcmp(b.data, optneg, b.len) == 0);
    buf_reset(&b);
    milter_put_connect(&b, "host", "1.2.3.4", 25);
    CHECK(b.len == sizeof(conn) - 1 && memcmp(b.data, conn, b.len) == 0);
    buf_reset(&b);
    milter_put_macros(&b, 'C', mac, 3);
    CHECK(b.len == sizeof(macro) - 1 && memcmp(b.data, macro, b.len) == 0);
    buf_reset(&b);
    milter_put_header(&b, "Subject", 7, "hi", 2);
    CHECK(b.len == 4 + 1 + 8 + 3 && b.data[4] == 'L' && b.data[3] == 12);
    buf_release(&b);
}

/* test_milter_args - MAIL/RCPT: the address, then each ESMTP parameter as its own string. */
static void
test_milter_args(void)
{
    struct buf        b;
    static const char mail[] = "\0\0\0\x27" "M<a@b>\0SIZE=100\0BODY=8BITMIME\0SMTPUTF8\0";
    static const char rcpt[] = "\0\0\0\x07" "R<c@d>\0";

    buf_init(&b, 64);
    milter_put_args(&b, 'M', "<a@b>", " SIZE=100  BODY=8BITMIME SMTPUTF8 ");
    CHECK(b.len == sizeof(mail) - 1 && memcmp(b.data, mail, b.len) == 0);
    buf_reset(&b);
    milter_put_args(&b, 'R', "<c@d>", "");
    CHECK(b.len == sizeof(rcpt) - 1 && memcmp(b.data, rcpt, b.len) == 0);
    buf_release(&b);
}

/* test_milter_body_crlf - any line end a milter uses in a new body is stored as CRLF, also
 * when a chunk ends between CR and LF; a bare CR never reaches the queue. */
static void
test_milter_body_crlf(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "a\nb\n", "a\r\nb\r\n" },
        { "a\r\nb\r\n", "a\r\nb\r\n" },
        { "a\rb", "ab" },
        { "", "" },
        { "no end", "no end" },
    };
    struct buf b;
    size_t     i;

    buf_init(&b, 64);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&b);
        milter_body_crlf(cases[i].in, strlen(cases[i].in), &b);
        CHECK(b.len == strlen(cases[i].out)
              && (b.len == 0 || memcmp(b.data, cases[i].out, b.len) == 0));
    }
    buf_reset(&b);
    milter_body_crlf("x\r", 2, &b);   /* CRLF split over two chunks */
    milter_body_crlf("\ny", 2, &b);
    CHECK(b.len == 4 && memcmp(b.data, "x\r\ny", 4) == 0);
    buf_release(&b);
}

/* test_milter_take - whole, partial, empty and oversized packets. */
static void
test_milter_take(void)
{
    struct milter_packet p;
    size_t               used = 0;
    static const char    ok[] = "\0\0\0\x01" "c";
    static const char    zero[] = "\0\0\0\0";
    static const char    huge[] = "\x7f\xff\xff\xff" "c";
    static const char    big[] = "\0\x10\0\x01" "b";

    CHECK(milter_take(ok, 5, &p, &used) == 1 && p.cmd == 'c' && p.len == 0 && used == 5);
    CHECK(milter_take(ok, 4, &p, &used) == 0);
    CHECK(milter_take(ok, 2, &p, &used) == 0);
    CHECK(milter_take(zero, 4, &p, &used) == -1);
    CHECK(milter_take(huge, 5, &p, &used) == -1);
    CHECK(milter_take(big, 5, &p, &used) == -1);     /* 1 MiB + 1: over MILTER_PACKET_MAX */
}

/* test_milter_replies - the fields of replies, and malformed ones refused. */
static void
test_milter_replies(void)
{
    struct milter_packet p;
    uint32_t             v, a, pr, idx;
    int                  code;
    char                 enh[16], text[MILTER_TEXT_MAX];
    const char          *s[2];

    p = (struct milter_packet){ 'O', "\0\0\0\x06\0\0\0\x01\0\0\0\x02", 12 };
    CHECK(milter_parse_optneg(&p, &v, &a, &pr) == 0 && v == 6 && a == 1 && pr == 2);
    p.len = 11;
    CHECK(milter_parse_optneg(&p, &v, &a, &pr) == -1);
    p = (struct milter_packet){ 'y', "550 5.7.1 go away\0", 18 };
    CHECK(milter_parse_replycode(&p, &code, enh, sizeof(enh), text, sizeof(text)) == 0);
    CHECK(code == 550 && strcmp(enh, "5.7.1") == 0 && strcmp(text, "go away") == 0);
    p = (struct milter_packet){ 'y', "451 try\r\nlater\0", 15 };
    CHECK(milter_parse_replycode(&p, &code, enh, sizeof(enh), text, sizeof(text)) == 0);
    CHECK(code == 451 && enh[0] == '\0' && strchr(text, '\r') == NULL);
    p = (struct milter_packet){ 'y', "250 ok\0", 7 };           /* not a refusal */
    CHECK(milter_parse_replycode(&p, &code, enh, sizeof(enh), text, sizeof(text)) == -1);
    p = (struct milter_packet){ 'y', "550 no nul", 10 };
    CHECK(milter_parse_replycode(&p, &code, enh, sizeof(enh), text, sizeof(text)) == -1);
    p = (struct milter_packet){ 'h', "X-A\0v\0", 6 };
    CHECK(milter_parse_strings(&p, s, 2, 2) == 0 && strcmp(s[1], "v") == 0);
    p = (struct milter_packet){ 'h', "X-A\0v", 5 };             /* unterminated */
    CHECK(milter_parse_strings(&p, s, 2, 2) == -1);
    p = (struct milter_packet){ 'h', "X-A\0", 4 };              /* value missing */
    CHECK(milter_parse_strings(&p, s, 2, 2) == -1);
    p = (struct milter_packet){ 'm', "\0\0\0\x02" "Subject\0new\0", 16 };
    CHECK(milter_parse_index(&p, &idx, s, 2) == 0 && idx == 2 && strcmp(s[0], "Subject") == 0);
    p = (struct milter_packet){ 'm', "\0\0", 2 };
    CHECK(milter_parse_index(&p, &idx, s, 2) == -1);
}

/* test_milter_hdrs - split a section, change it, join it again. */
static void
test_milter_hdrs(void)
{
    static const char  msg[] = "Received: x\r\n\tby y\r\nSubject: a\r\nTo: b\r\n\r\nbody\r\n";
    struct milter_hdrs h;
    struct buf         out;
    size_t             end = 0;

    CHECK(milter_hdrs_split(msg, strlen(msg), &h, &end) == 0);
    CHECK(h.n == 3 && end == 39);
    buf_init(&out, 64);
    milter_field_value(&h.f[0], &out);
    CHECK(out.len == 7 && memcmp(out.data, "x\n\tby y", 7) == 0);
    milter_hdrs_add(&h, 0, "DKIM-Signature", "v=1;\n\tb=zz");
    milter_hdrs_change(&h, 1, "subject", "new");
    milter_hdrs_change(&h, 1, "To", "");
    milter_hdrs_add(&h, 99, "X-End", "e");
    buf_reset(&out);
    milter_hdrs_join(&h, &out);
    CHECK(out.len == strlen("DKIM-Signature: v=1;\r\n\tb=zz\r\nReceived: x\r\n\tby y\r\n"
                            "Subject: new\r\nX-End: e\r\n"));
    CHECK(memcmp(out.data, "DKIM-Signature: v=1;\r\n\tb=zz\r\nReceived", 37) == 0);
    milter_hdrs_free(&h);
    CHECK(milter_hdrs_split("Subject: cut", 12, &h, &end) == -1);
    CHECK(milter_hdrs_split("Subject: a\r\n", 12, &h, &end) == -1);
    CHECK(milter_hdrs_split("\r\nbody", 6, &h, &end) == 0 && h.n == 0 && end == 0);
    milter_hdrs_free(&h);
    buf_release(&out);
}

/* test_milter_hostile_bytes - every cut of random-looking input is taken or refused. */
static void
test_milter_hostile_bytes(void)
{
    char                 junk[64];
    struct milter_packet p;
    size_t               i, n, used;
    unsigned             x = 12345;

    for (i = 0; i < 2000; i++) {
        for (n = 0; n < sizeof(junk); n++) {
            x = x * 1103515245u + 12345u;
            junk[n] = (char)(x >> 16);
        }
        if (i % 2)
            junk[0] = junk[1] = 0;    /* plausible lengths */
        for (n = 0; n <= sizeof(junk); n += 7) {
            int rc = milter_take(junk, n, &p, &used);

            CHECK(rc != 1 || (used <= n && p.len + 5 == used));
            if (rc == 1) {
                const char *s[3];
                int         code;
                char        enh[16], text[32];
                uint32_t    v, a, pr, idx;

                (void)milter_parse_strings(&p, s, 3, 1);
                (void)milter_parse_replycode(&p, &code, enh, sizeof(enh), text, sizeof(text));
                (void)milter_parse_optneg(&p, &v, &a, &pr);
                (void)milter_parse_index(&p, &idx, s, 2);
            }
        }
    }
}

int
main(void)
{
    TEST_RUN(test_milter_encode);
    TEST_RUN(test_milter_args);
    TEST_RUN(test_milter_body_crlf);
    TEST_RUN(test_milter_take);
    TEST_RUN(test_milter_replies);
    TEST_RUN(test_milter_hdrs);
    TEST_RUN(test_milter_hostile_bytes);
    TEST_END();
}
