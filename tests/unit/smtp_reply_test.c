/* smtp_reply_test - reply formatting, multi-line replies, sanitising, parsing. */
#include <string.h>

#include "buf.h"
#include "smtp_reply.h"
#include "test.h"

/* test_smtp_reply_single - code, enhanced code, text. */
static void
test_smtp_reply_single(void)
{
    struct buf b;

    buf_init(&b, 64);
    smtp_reply(&b, 250, "2.1.0", "Ok");
    smtp_reply(&b, 220, NULL, "mx.example ESMTP Postern");
    smtp_reply(&b, 354, "", "End data with <CR><LF>.<CR><LF>");
    CHECK_STR(buf_cstr(&b), "250 2.1.0 Ok\r\n220 mx.example ESMTP Postern\r\n"
                            "354 End data with <CR><LF>.<CR><LF>\r\n");
    buf_release(&b);
}

/* test_smtp_reply_multi - "250-" lines then "250 ". */
static void
test_smtp_reply_multi(void)
{
    static const char *const lines[] = { "mx.example", "PIPELINING", "SIZE 10485760" };
    struct buf b;

    buf_init(&b, 64);
    smtp_reply_lines(&b, 250, NULL, lines, 3);
    CHECK_STR(buf_cstr(&b), "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10485760\r\n");
    buf_reset(&b);
    smtp_reply_cont(&b, 214, "2.0.0", 0, "a");
    smtp_reply_cont(&b, 214, "2.0.0", 1, "b");
    CHECK_STR(buf_cstr(&b), "214-2.0.0 a\r\n214 2.0.0 b\r\n");
    buf_release(&b);
}

/* test_smtp_reply_sanitise - peer text cannot inject lines; long text is cut. */
static void
test_smtp_reply_sanitise(void)
{
    struct buf b;
    char       big[2000];

    buf_init(&b, 64);
    smtp_reply(&b, 550, "5.1.1", "<%s>: x", "a\r\n250 ok");
    CHECK_STR(buf_cstr(&b), "550 5.1.1 <a??250 ok>: x\r\n");
    buf_reset(&b);
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    smtp_reply(&b, 500, "5.5.2", "%s", big);
    CHECK(b.len == SMTP_REPLY_LINE_MAX - 1);
    CHECK(memcmp(b.data + b.len - 2, "\r\n", 2) == 0);
    CHECK(memchr(b.data, '\n', b.len - 1) == NULL);
    buf_release(&b);
}

/* test_smtp_reply_parse - client-side line parsing. */
static void
test_smtp_reply_parse(void)
{
    int code, more;
    size_t text;

    CHECK(smtp_reply_parse("250-PIPELINING", 14, &code, &more, &text) == 0);
    CHECK(code == 250 && more == 1 && text == 4);
    CHECK(smtp_reply_parse("354 go", 6, &code, &more, &text) == 0 && code == 354 && !more);
    CHECK(smtp_reply_parse("221", 3, &code, &more, &text) == 0 && code == 221);
    CHECK(smtp_reply_parse("25", 2, &code, &more, &text) == -1);
    CHECK(smtp_reply_parse("2500", 4, &code, &more, &text) == -1);
    CHECK(smtp_reply_parse("150 x", 5, &code, &more, &text) == -1);
    CHECK(smtp_reply_parse("abc x", 5, &code, &more, &text) == -1);
}

int
main(void)
{
    TEST_RUN(test_smtp_reply_single);
    TEST_RUN(test_smtp_reply_multi);
    TEST_RUN(test_smtp_reply_sanitise);
    TEST_RUN(test_smtp_reply_parse);
    TEST_END();
}
