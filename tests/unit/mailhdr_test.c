/* mailhdr_test - which of Message-ID/Date/From a header section has, where it ends, whatever
 * the cuts, and the text of the fields that are added. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "mailhdr.h"
#include "test.h"

static const struct {
    const char *msg;
    unsigned    seen;
    long long   end;                  /* -1: the section never ends (mailhdr_finish) */
    int         body_line;
} mailhdr_cases[] = {
    { "From: a@b\r\nDate: x\r\nMessage-ID: <1@b>\r\n\r\nbody\r\n", MAILHDR_ALL, 39, 0 },
    { "Subject: hi\r\n\r\n", 0, 13, 0 },
    { "message-id : <1@b>\r\nDATE:\r\n x\r\n\r\n", MAILHDR_MESSAGE_ID | MAILHDR_DATE, 31, 0 },
    { "Subject: a\r\n from: folded\r\n\r\n", 0, 27, 0 },
    { "X-From: a\r\nFromage: b\r\n\r\n", 0, 23, 0 },
    { "From: a\r\nhello world\r\n", MAILHDR_FROM, 9, 1 },
    { "From: a\r\n\tcontinued\r\n", MAILHDR_FROM, -1, 0 },
    { " leading space\r\n", 0, 0, 1 },
    { "\r\nbody only\r\n", 0, 0, 0 },
    { "", 0, -1, 0 },
    { "A-very-long-field-name-indeed: x\r\nDate: y\r\n\r\n", MAILHDR_DATE, 43, 0 },
};

/* mailhdr_case_run - scan msg cut every `cut` octets (0: whole), then finish. */
static void
mailhdr_case_run(const char *msg, size_t cut, struct mailhdr *h)
{
    size_t len = strlen(msg), off = 0;

    mailhdr_init(h);
    while (off < len) {
        size_t n = cut == 0 || cut > len - off ? len - off : cut;

        (void)mailhdr_scan(h, msg + off, n);
        off += n;
    }
    mailhdr_finish(h);
}

/* test_mailhdr_cases - each case gives the same facts however it is cut. */
static void
test_mailhdr_cases(void)
{
    struct mailhdr h;
    size_t        i, cut;

    for (i = 0; i < sizeof(mailhdr_cases) / sizeof(mailhdr_cases[0]); i++) {
        long long want = mailhdr_cases[i].end;

        if (want < 0)
            want = (long long)strlen(mailhdr_cases[i].msg);
        for (cut = 0; cut < 8; cut++) {
            mailhdr_case_run(mailhdr_cases[i].msg, cut, &h);
            if (h.seen != mailhdr_cases[i].seen || (long long)h.end != want
                || h.body_line != mailhdr_cases[i].body_line)
                fprintf(stderr, "  case %zu cut %zu: seen=%u end=%llu body_line=%d\n", i,
                        cut, h.seen, (unsigned long long)h.end, h.body_line);
            CHECK(h.seen == mailhdr_cases[i].seen);
            CHECK((long long)h.end == want);
            CHECK(h.body_line == mailhdr_cases[i].body_line);
            CHECK(h.pos == strlen(mailhdr_cases[i].msg));
        }
    }
}

/* test_mailhdr_holding - a line whose start is undecided must be kept by the caller. */
static void
test_mailhdr_holding(void)
{
    struct mailhdr h;

    mailhdr_init(&h);
    (void)mailhdr_scan(&h, "Subject: x\r\nFro", 15);
    CHECK(mailhdr_holding(&h));
    CHECK(h.line_start == 12);
    (void)mailhdr_scan(&h, "m: y\r\n", 6);
    CHECK(!mailhdr_holding(&h));
    (void)mailhdr_scan(&h, "\r", 1);
    CHECK(mailhdr_holding(&h));
    CHECK(mailhdr_scan(&h, "\nbody", 5) == 1);
    CHECK(!mailhdr_holding(&h));
    CHECK(h.end == 21);
}

/* mailhdr_tz - set TZ (NULL: unset) and return the previous value (malloc'd, or NULL). */
static char *
mailhdr_tz(const char *tz)
{
    char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

    if (tz != NULL)
        setenv("TZ", tz, 1);
    else
        unsetenv("TZ");
    tzset();
    return saved;
}

/* test_mailhdr_date - RFC 5322 layout: day, date, time, numeric offset; UTC on request,
 * whatever TZ says. */
static void
test_mailhdr_date(void)
{
    char  d[MAILHDR_DATE_MAX];
    char *saved = mailhdr_tz("UTC");

    CHECK_STR(mailhdr_date(0, 0, d, sizeof(d)), "Thu, 1 Jan 1970 00:00:00 +0000");
    free(mailhdr_tz("CET-1"));
    CHECK_STR(mailhdr_date(86400 * 31, 0, d, sizeof(d)), "Sun, 1 Feb 1970 01:00:00 +0100");
    CHECK_STR(mailhdr_date(1764300000, 1, d, sizeof(d)), "Fri, 28 Nov 2025 03:20:00 +0000");
    free(mailhdr_tz("<-0330>3:30"));
    CHECK_STR(mailhdr_date(0, 0, d, sizeof(d)), "Wed, 31 Dec 1969 20:30:00 -0330");
    CHECK_STR(mailhdr_date(0, 0, d, 5), "");
    free(mailhdr_tz(saved));
    free(saved);
}

/* test_mailhdr_missing - only what is missing, in order, with the line ends it needs. */
static void
test_mailhdr_missing(void)
{
    struct mailhdr h;
    struct buf    out;
    char         *saved = mailhdr_tz("UTC");

    buf_init(&out, 0);
    mailhdr_case_run("Subject: x\r\n\r\n", 0, &h);
    CHECK(mailhdr_missing(&h, &out, "QID", "mx.example", "u@example", 0) == MAILHDR_ALL);
    CHECK_STR(buf_cstr(&out), "Message-ID: <19700101000000.QID@mx.example>\r\n"
                              "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"
                              "From: u@example\r\n");
    buf_reset(&out);
    mailhdr_case_run("Date: x\r\nMessage-ID: y\r\nno colon here\r\n", 3, &h);
    CHECK(mailhdr_missing(&h, &out, "QID", "mx.example", "", 0) == MAILHDR_FROM);
    CHECK_STR(buf_cstr(&out), "From: MAILER-DAEMON@mx.example\r\n\r\n");
    buf_reset(&out);
    mailhdr_case_run("Date: x\r\nMessage-ID: y\r\nFrom: z", 0, &h);
    CHECK(mailhdr_missing(&h, &out, "QID", "h", "", 0) == 0);
    CHECK(out.len == 0);
    mailhdr_case_run("Date: x\r\nMessage-ID: y\r\nSubject", 0, &h);
    CHECK(mailhdr_missing(&h, &out, "QID", "h", "a@b", 0) == MAILHDR_FROM);
    CHECK_STR(buf_cstr(&out), "\r\nFrom: a@b\r\n");
    buf_release(&out);
    free(mailhdr_tz(saved));
    free(saved);
}

int
main(void)
{
    TEST_RUN(test_mailhdr_cases);
    TEST_RUN(test_mailhdr_holding);
    TEST_RUN(test_mailhdr_date);
    TEST_RUN(test_mailhdr_missing);
    TEST_END();
}
