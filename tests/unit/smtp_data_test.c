/* smtp_data_test - the DATA scanner: end of data, dot-unstuffing, bare CR/LF, smuggling,
 * limits; every case is also fed split at every possible point (and byte by byte), and
 * must give the same result. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp_data.h"
#include "test.h"

struct data_case {
    const char *in;
    const char *out;                  /* the message as stored */
    int         ends;                 /* 1: end of data seen */
    size_t      rest;                 /* input octets left after the end */
    unsigned    flags;                /* expected flags (subset check on mask) */
    unsigned    mask;                 /* which flags to compare */
};

#define LFCR (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR)

static const struct data_case data_cases[] = {
    /* plain */
    { "a\r\n.\r\n", "a\r\n", 1, 0, 0, LFCR },
    { ".\r\n", "", 1, 0, 0, LFCR },                              /* empty message */
    { "\r\n.\r\n", "\r\n", 1, 0, 0, LFCR },
    { "Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n", 1, 0, 0, LFCR },
    { "a\r\n.\r\nQUIT\r\n", "a\r\n", 1, 6, 0, LFCR },            /* pipelined command */
    { "a\r\nb\r\n", "a\r\nb\r\n", 0, 0, 0, LFCR },               /* not ended yet */
    /* dot-stuffing */
    { "..\r\n.\r\n", ".\r\n", 1, 0, 0, LFCR },
    { "..x\r\n...\r\n.\r\n", ".x\r\n..\r\n", 1, 0, 0, LFCR },
    { "a\r\n.b\r\n.\r\n", "a\r\nb\r\n", 1, 0, 0, LFCR },
    { "a.\r\n.\r\n", "a.\r\n", 1, 0, 0, LFCR },                  /* dot not at BOL */
    { ". \r\n.\r\n", " \r\n", 1, 0, 0, LFCR },
    /* smuggling: none of these end the message */
    { "a\n.\n", "a\r\n.\r\n", 0, 0, SMTP_DATA_BARE_LF, LFCR },
    { "a\n.\r\n", "a\r\n.\r\n", 0, 0, SMTP_DATA_BARE_LF, LFCR },
    { "a\r\n.\n", "a\r\n\r\n", 0, 0, SMTP_DATA_BARE_LF, LFCR },
    { "a\r.\r", "a\r\n.", 0, 0, SMTP_DATA_BARE_CR, LFCR },        /* last CR still pending */
    { "a\r.\r\n", "a\r\n.\r\n", 0, 0, SMTP_DATA_BARE_CR, LFCR },
    { "a\r\n.\r", "a\r\n", 0, 0, 0, LFCR },                      /* ".\r" held back */
    { "a\r\n.\rX", "a\r\n\r\nX", 0, 0, SMTP_DATA_BARE_CR, LFCR },
    { "a\r\n.\r\r\n", "a\r\n\r\n\r\n", 0, 0, SMTP_DATA_BARE_CR, LFCR },
    { "a\r\r\n.\r\n", "a\r\n\r\n", 1, 0, SMTP_DATA_BARE_CR, LFCR },  /* CR then CRLF . CRLF */
    { "a\n\r\n.\r\n", "a\r\n\r\n", 1, 0, SMTP_DATA_BARE_LF, LFCR },
    { "a\r\n\n.\r\n", "a\r\n\r\n.\r\n", 0, 0, SMTP_DATA_BARE_LF, LFCR },
    { "a\r\n.\n.\r\n", "a\r\n\r\n.\r\n", 0, 0, SMTP_DATA_BARE_LF, LFCR },
    /* smuggled second message stays inside the first, which then ends properly */
    { "a\r\n\n.\r\nMAIL FROM:<x@y>\r\n.\r\n",
      "a\r\n\r\n.\r\nMAIL FROM:<x@y>\r\n", 1, 0, SMTP_DATA_BARE_LF, LFCR },
    { "a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", 1, 0, SMTP_DATA_BARE_LF, LFCR },
    { "a\r\n.\nb\r\n.\r\n", "a\r\n\r\nb\r\n", 1, 0, SMTP_DATA_BARE_LF, LFCR },
    { "x\r.\r\nb\r\n.\r\n", "x\r\n.\r\nb\r\n", 1, 0, SMTP_DATA_BARE_CR, LFCR },
    /* bare CR / LF in text */
    { "a\rb\r\n.\r\n", "a\r\nb\r\n", 1, 0, SMTP_DATA_BARE_CR, LFCR },
    { "a\nb\r\n.\r\n", "a\r\nb\r\n", 1, 0, SMTP_DATA_BARE_LF, LFCR },
    { "a\r\rb\r\n.\r\n", "a\r\n\r\nb\r\n", 1, 0, SMTP_DATA_BARE_CR, LFCR },
    { "\n.\r\n.\r\n", "\r\n.\r\n", 1, 0, SMTP_DATA_BARE_LF, LFCR },
    /* 8 bit and NUL are flagged, kept */
    { "\xc3\xa9\r\n.\r\n", "\xc3\xa9\r\n", 1, 0, SMTP_DATA_8BIT, SMTP_DATA_8BIT | LFCR },
};

struct data_result {
    struct buf out;
    int        ends;
    size_t     rest;
    unsigned   flags;
    uint64_t   size;
};

/* data_run - feed in[0, len) in chunks cut at the positions in cuts[0, ncuts). */
static void
data_run(const char *in, size_t len, const size_t *cuts, size_t ncuts, struct data_result *r,
         uint64_t size_limit, uint64_t hdr_limit)
{
    struct smtp_data d;
    size_t           pos = 0, k, end, used;

    smtp_data_init(&d, size_limit, hdr_limit);
    buf_init(&r->out, 64);
    r->ends = 0;
    r->rest = 0;
    for (k = 0; k <= ncuts && !r->ends; k++) {
        end = k < ncuts ? cuts[k] : len;
        if (end < pos)
            continue;
        if (smtp_data_feed(&d, in + pos, end - pos, &r->out, &used) == SMTP_DATA_END) {
            r->ends = 1;
            r->rest = len - (pos + used);
        } else if (used != end - pos) {
            r->ends = -1;               /* MORE must consume everything */
        }
        pos = end;
    }
    r->flags = d.flags;
    r->size = d.size;
}

/* data_check - compare a result with the case. */
static int
data_check(const struct data_case *c, const struct data_result *r)
{
    size_t olen = strlen(c->out);

    return r->ends == c->ends && r->rest == c->rest && r->out.len == olen
        && memcmp(r->out.data, c->out, olen) == 0 && (r->flags & c->mask) == c->flags
        && r->size == olen;
}

/* test_smtp_data_whole - each case in one chunk. */
static void
test_smtp_data_whole(void)
{
    size_t i;

    for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
        struct data_result r;
        data_run(data_cases[i].in, strlen(data_cases[i].in), NULL, 0, &r, 0, 0);
        if (!data_check(&data_cases[i], &r))
            fprintf(stderr, "  case %zu: ends=%d rest=%zu flags=%x out=\"%s\"\n", i, r.ends,
                    r.rest, r.flags, buf_cstr(&r.out));
        CHECK(data_check(&data_cases[i], &r));
        buf_release(&r.out);
    }
}

/* test_smtp_data_every_split - each case cut in two at every point, and in three. */
static void
test_smtp_data_every_split(void)
{
    size_t i, a, b;

    for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
        size_t len = strlen(data_cases[i].in);
        for (a = 0; a <= len; a++) {
            for (b = a; b <= len; b++) {
                struct data_result r;
                size_t cuts[2] = { a, b };
                data_run(data_cases[i].in, len, cuts, 2, &r, 0, 0);
                if (!data_check(&data_cases[i], &r))
                    fprintf(stderr, "  case %zu cut %zu,%zu\n", i, a, b);
                CHECK(data_check(&data_cases[i], &r));
                buf_release(&r.out);
            }
        }
    }
}

/* test_smtp_data_byte_by_byte - each case fed one octet at a time. */
static void
test_smtp_data_byte_by_byte(void)
{
    size_t i, k;
    size_t cuts[256];

    for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
        size_t len = strlen(data_cases[i].in);
        struct data_result r;
        for (k = 0; k < len && k < 256; k++)
            cuts[k] = k + 1;
        data_run(data_cases[i].in, len, cuts, len, &r, 0, 0);
        CHECK(data_check(&data_cases[i], &r));
        buf_release(&r.out);
    }
}

/* test_smtp_data_nul - NUL octets pass through and are flagged. */
static void
test_smtp_data_nul(void)
{
    static const char in[] = "a\0b\r\n.\r\n";
    struct data_result r;

    data_run(in, sizeof(in) - 1, NULL, 0, &r, 0, 0);
    CHECK(r.ends == 1);
    CHECK(r.out.len == 5 && memcmp(r.out.data, "a\0b\r\n", 5) == 0);
    CHECK(r.flags & SMTP_DATA_NUL);
    buf_release(&r.out);
}

/* data_line - a message with one line of n octets. */
static char *
data_line(size_t n, size_t *len)
{
    char *s = xmalloc(n + 16);

    memset(s, 'x', n);
    memcpy(s + n, "\r\n.\r\n", 6);
    *len = n + 5;
    return s;
}

/* test_smtp_data_line_limit - 998 octets pass, 999 are flagged, and the line is kept whole
 * (never split) with the scan going on to the real end, whatever the chunking. */
static void
test_smtp_data_line_limit(void)
{
    size_t len, a;
    char  *s;
    struct data_result r;

    s = data_line(998, &len);
    data_run(s, len, NULL, 0, &r, 0, 0);
    CHECK(r.ends == 1 && !(r.flags & SMTP_DATA_LONG_LINE) && r.out.len == 1000);
    buf_release(&r.out);
    free(s);

    s = data_line(999, &len);
    for (a = 0; a <= len; a += 7) {
        size_t cuts[1] = { a };
        data_run(s, len, cuts, 1, &r, 0, 0);
        CHECK(r.ends == 1 && (r.flags & SMTP_DATA_LONG_LINE) && r.out.len == 1001);
        buf_release(&r.out);
    }
    free(s);

    /* bare LF resets the output line: two 600-octet lines are fine */
    s = xmalloc(1300);
    memset(s, 'y', 1201);
    s[600] = '\n';
    memcpy(s + 1201, "\r\n.\r\n", 6);
    data_run(s, 1206, NULL, 0, &r, 0, 0);
    CHECK(r.ends == 1 && !(r.flags & SMTP_DATA_LONG_LINE) && (r.flags & SMTP_DATA_BARE_LF));
    buf_release(&r.out);
    free(s);
}

/* test_smtp_data_size_limit - over the limit is flagged; the scan still finds the end. */
static void
test_smtp_data_size_limit(void)
{
    static const char in[] = "0123456789\r\n0123456789\r\n.\r\nQUIT\r\n";
    struct data_result r;
    size_t a;

    data_run(in, sizeof(in) - 1, NULL, 0, &r, 24, 0);            /* exactly 24 */
    CHECK(r.ends == 1 && !(r.flags & SMTP_DATA_TOO_BIG) && r.size == 24);
    buf_release(&r.out);
    for (a = 0; a < sizeof(in); a++) {
        size_t cuts[1] = { a };
        data_run(in, sizeof(in) - 1, cuts, 1, &r, 23, 0);
        CHECK(r.ends == 1 && (r.flags & SMTP_DATA_TOO_BIG) && r.rest == 6 && r.size == 24);
        buf_release(&r.out);
    }
}

/* test_smtp_data_count_only - out = NULL counts without storing. */
static void
test_smtp_data_count_only(void)
{
    struct smtp_data d;
    size_t used;

    smtp_data_init(&d, 0, 0);
    CHECK(smtp_data_feed(&d, "abc\r\n..\r\n", 9, NULL, &used) == SMTP_DATA_MORE);
    CHECK(smtp_data_feed(&d, ".\r\n", 3, NULL, &used) == SMTP_DATA_END && used == 3);
    CHECK(d.size == 8 && d.lines == 2);
    /* after the end, feeding again still says END and consumes nothing */
    CHECK(smtp_data_feed(&d, "x", 1, NULL, &used) == SMTP_DATA_END && used == 0);
}

/* test_smtp_data_header_limit - the header section ends at the first empty line. */
static void
test_smtp_data_header_limit(void)
{
    static const char in[] = "A: 1\r\nB: 2\r\n\r\nbody body body body\r\n.\r\n";
    struct data_result r;

    data_run(in, sizeof(in) - 1, NULL, 0, &r, 0, 12);           /* headers are 12 octets */
    CHECK(r.ends == 1 && !(r.flags & SMTP_DATA_HDR_TOO_BIG));
    buf_release(&r.out);
    data_run(in, sizeof(in) - 1, NULL, 0, &r, 0, 11);
    CHECK(r.ends == 1 && (r.flags & SMTP_DATA_HDR_TOO_BIG));
    buf_release(&r.out);
}

/* test_smtp_data_received_count - Received: fields of the header section are counted
 * (any case, obsolete white space before the colon, after dot-unstuffing), folded lines,
 * look-alikes and the body are not; every split gives the same count. */
static void
test_smtp_data_received_count(void)
{
    static const struct { const char *in; unsigned want; } cases[] = {
        { "Received: a\r\n\tfolded\r\nreceived:b\r\nRECEIVED :c\r\n\r\n"
          "Received: body\r\n.\r\n", 3 },
        { "X-Received: a\r\nReceived-SPF: b\r\nReceivedx: c\r\n Received: d\r\n"
          "Receive: e\r\n\r\n.\r\n", 0 },
        { "..Received: stuffed\r\n.Received: unstuffed\r\n\r\n.\r\n", 1 },
        { "Subject: x\nReceived: y\r\n\r\n.\r\n", 1 },     /* after a bare LF */
        { "Received: only\r\n.\r\n", 1 },                     /* no body at all */
        { "\r\nReceived: in the body\r\n.\r\n", 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].in);

        for (size_t a = 0; a <= len; a++) {
            struct smtp_data d;
            size_t           used, used2 = 0;

            smtp_data_init(&d, 0, 0);
            if (smtp_data_feed(&d, cases[i].in, a, NULL, &used) == SMTP_DATA_MORE)
                (void)smtp_data_feed(&d, cases[i].in + a, len - a, NULL, &used2);
            if (d.received != cases[i].want)
                fprintf(stderr, "  case %zu cut %zu: %u Received\n", i, a, d.received);
            CHECK(d.received == cases[i].want);
        }
    }
}

/* test_smtp_data_random - random input from a small alphabet: every split gives what one
 * chunk gives, and the output never holds a bare CR or LF. */
static void
test_smtp_data_random(void)
{
    static const char alpha[] = "\r\n.a";
    char   in[40];
    size_t n, i, k, a;
    unsigned seed = 12345;

    for (n = 0; n < 3000; n++) {
        struct data_result whole, part;
        size_t len = 1 + (seed = seed * 1103515245 + 12345) % sizeof(in);
        for (i = 0; i < len; i++)
            in[i] = alpha[((seed = seed * 1103515245 + 12345) >> 16) % 4];
        data_run(in, len, NULL, 0, &whole, 0, 0);
        for (k = 0; k + 1 < whole.out.len; k++)
            CHECK((whole.out.data[k] == '\r') == (whole.out.data[k + 1] == '\n'));
        for (a = 0; a <= len; a++) {
            size_t cuts[1] = { a };
            data_run(in, len, cuts, 1, &part, 0, 0);
            CHECK(part.ends == whole.ends && part.rest == whole.rest
                  && part.out.len == whole.out.len && part.flags == whole.flags
                  && memcmp(part.out.data, whole.out.data, whole.out.len) == 0);
            buf_release(&part.out);
        }
        /* the end can only be right after CRLF.CRLF, or .CRLF at the start */
        if (whole.ends == 1) {
            size_t end = len - whole.rest;
            CHECK(end == 3 ? memcmp(in, ".\r\n", 3) == 0
                           : (end >= 5 && memcmp(in + end - 5, "\r\n.\r\n", 5) == 0));
        }
        buf_release(&whole.out);
    }
}

int
main(void)
{
    TEST_RUN(test_smtp_data_whole);
    TEST_RUN(test_smtp_data_every_split);
    TEST_RUN(test_smtp_data_byte_by_byte);
    TEST_RUN(test_smtp_data_nul);
    TEST_RUN(test_smtp_data_line_limit);
    TEST_RUN(test_smtp_data_size_limit);
    TEST_RUN(test_smtp_data_count_only);
    TEST_RUN(test_smtp_data_header_limit);
    TEST_RUN(test_smtp_data_received_count);
    TEST_RUN(test_smtp_data_random);
    TEST_END();
}
