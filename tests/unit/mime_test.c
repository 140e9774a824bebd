/* mime_test - unit tests for libcommon/mime: what each line of a message is.
 *
 * Table-driven: each case is a message and one letter per line for the kind mime_line()
 * must say (H header, P part header, M attached message header, E header end, D boundary,
 * B body). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "mime.h"
#include "test.h"

/* mime_test_letter - one letter per kind, for compact expectations. */
static char
mime_test_letter(enum mime_line_kind k)
{
    return "HPMEDB"[k];
}

/* mime_test_scan - feed text line by line; the kinds as letters (static buffer). */
static const char *
mime_test_scan(struct mime *m, const char *text)
{
    static char kinds[512];
    size_t      n = 0;
    const char *p = text, *nl;

    mime_reset(m);
    while (*p != '\0' && n + 1 < sizeof(kinds)) {
        size_t len = (nl = strchr(p, '\n')) != NULL ? (size_t)(nl - p) + 1 : strlen(p);

        kinds[n++] = mime_test_letter(mime_line(m, p, len));
        p += len;
    }
    kinds[n] = '\0';
    mime_end(m);
    return kinds;
}

struct mime_case {
    const char *name;
    const char *text;
    const char *kinds;
    unsigned    errors;
};

static const struct mime_case mime_cases[] = {
    { "plain",
      "Subject: hi\r\nFrom: a@b\r\n\r\nbody\r\n--x\r\n",
      "HHEBB", 0 },
    { "folded header and white space line in header",
      "Subject: a\r\n b\r\n\t c\r\n \r\nTo: x\r\n\r\nbody\r\n",
      "HHHHHEB", 0 },
    { "non-header line ends the header section",
      "Subject: a\r\nnot a header\r\nTo: x\r\n",
      "HBB", 0 },
    { "leading white space before any field is body",
      " Subject: a\r\nTo: x\r\n",
      "BB", 0 },
    { "obsolete white space before the colon",
      "Subject : a\r\n\r\n",
      "HE", 0 },
    { "multipart, quoted boundary, preamble and epilogue",
      "Content-Type: multipart/mixed; boundary=\"b1 x\"\r\n\r\n"
      "preamble\r\n--b1 x\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
      "--b1 x \t\r\n\r\npart two\r\n--b1 x--  \r\nepilogue\r\n--b1 x\r\n",
      "HEBDPEBDEBDBB", 0 },
    { "boundary match is case-sensitive and exact",
      "Content-Type: multipart/mixed; boundary=abc\r\n\r\n"
      "--ABC\r\n--abcd\r\n-abc\r\n--abc x\r\n--abc\r\nX: y\r\n\r\nz\r\n--abc--\r\n",
      "HEBBBBDPEBD", 0 },
    { "lenient unquoted boundary, folded Content-Type, comment, case of keywords",
      "CONTENT-TYPE: Multipart/Alternative (c);\r\n\tBOUNDARY=----=_Next/1\r\n\r\n"
      "------=_Next/1\r\n\r\nx\r\n------=_Next/1--\r\n",
      "HHEDEBD", 0 },
    { "first Content-Type counts",
      "Content-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
      "--b\r\n",
      "HHEB", 0 },
    { "boundary of 70 octets is fine",
      "Content-Type: multipart/mixed; boundary="
      "\"1234567890123456789012345678901234567890123456789012345678901234567890\"\r\n\r\n"
      "--1234567890123456789012345678901234567890123456789012345678901234567890\r\n",
      "HED", MIME_ERR_OPEN },
    { "boundary over 70 octets is not used",
      "Content-Type: multipart/mixed; boundary="
      "\"12345678901234567890123456789012345678901234567890123456789012345678901\"\r\n\r\n"
      "--12345678901234567890123456789012345678901234567890123456789012345678901\r\n",
      "HEB", MIME_ERR_BOUNDARY },
    { "multipart without boundary",
      "Content-Type: multipart/mixed\r\n\r\n--\r\n",
      "HEB", MIME_ERR_BOUNDARY },
    { "nested multipart closed by the outer boundary",
      "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
      "Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\ntext\r\n"
      "--o\r\nX-Y: z\r\n\r\nbody\r\n--i\r\n--o--\r\n",
      "HEDPEDEBDPEBBD", 0 },
    { "attached message/rfc822",
      "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
      "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n  folded\r\n\r\ninner body\r\n"
      "--o--\r\n",
      "HEDPEMMEBD", 0 },
    { "attached message whose header ends without an empty line",
      "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nbody line\r\n",
      "HEMB", 0 },
    { "base64 message/rfc822 is opaque",
      "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
      "U3ViamVjdDogeA==\r\n",
      "HHEB", 0 },
    { "message/global is an attached message too",
      "Content-Type: message/global\r\n\r\nSubject: x\r\n",
      "HEM", 0 },
    { "digest parts default to message/rfc822",
      "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\n"
      "b\r\n--d\r\nContent-Type: text/plain\r\n\r\nSubject: text\r\n--d--\r\n",
      "HEDEMEBDPEBD", 0 },
    { "part header ended by a boundary",
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX: y\r\n--b--\r\nafter\r\n",
      "HEDPDB", 0 },
    { "multipart header ended by its own boundary line",
      "Content-Type: multipart/mixed; boundary=b\r\n--b\r\nX: y\r\n",
      "HDP", MIME_ERR_OPEN },
    { "bare LF and missing final newline",
      "Subject: x\n\nbody\n--",
      "HEBB", 0 },
};

/* test_mime_cases - every table case gives its kinds and error flags. */
static void
test_mime_cases(void)
{
    struct mime *m = mime_new();
    size_t       i;

    for (i = 0; i < sizeof(mime_cases) / sizeof(mime_cases[0]); i++) {
        const struct mime_case *c = &mime_cases[i];
        const char             *got = mime_test_scan(m, c->text);

        if (strcmp(got, c->kinds) != 0 || mime_errors(m) != c->errors) {
            fprintf(stderr, "  case \"%s\": kinds %s (want %s) errors %#x (want %#x)\n",
                    c->name, got, c->kinds, mime_errors(m), c->errors);
            CHECK(0);
        }
    }
    mime_free(&m);
    CHECK(m == NULL);
}

/* test_mime_depth - depth follows parts and attached messages, back out on close. */
static void
test_mime_depth(void)
{
    struct mime *m = mime_new();
    const char  *lines[] = {
        "Content-Type: multipart/mixed; boundary=o\r\n", "\r\n", "--o\r\n",
        "Content-Type: message/rfc822\r\n", "\r\n", "Subject: x\r\n", "\r\n", "--o--\r\n",
        "epilogue\r\n",
    };
    unsigned     want[] = { 0, 0, 1, 1, 2, 2, 2, 0, 0 };
    size_t       i;

    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        mime_line(m, lines[i], strlen(lines[i]));
        CHECK(mime_depth(m) == want[i]);
    }
    mime_free(&m);
}

/* test_mime_nesting_limit - multiparts nested past MIME_DEPTH_MAX are plain body. */
static void
test_mime_nesting_limit(void)
{
    struct mime *m = mime_new();
    char         line[128];
    int          i, deepest = -1;
    unsigned     max = 0;

    for (i = 0; i < MIME_DEPTH_MAX + 5; i++) {
        enum mime_line_kind k;

        snprintf(line, sizeof(line), "Content-Type: multipart/mixed; boundary=b%d\r\n", i);
        k = mime_line(m, line, strlen(line));
        CHECK(k == (i == 0 ? MIME_HEADER : MIME_PART_HEADER) || i > MIME_DEPTH_MAX);
        mime_line(m, "\r\n", 2);
        snprintf(line, sizeof(line), "--b%d\r\n", i);
        if (mime_line(m, line, strlen(line)) == MIME_BOUNDARY)
            deepest = i;
        if (mime_depth(m) > max)
            max = mime_depth(m);
    }
    CHECK(deepest == MIME_DEPTH_MAX - 1);
    CHECK(max == MIME_DEPTH_MAX);
    CHECK(mime_errors(m) & MIME_ERR_NESTING);
    /* The outermost boundary still closes everything. */
    CHECK(mime_line(m, "--b0--\r\n", 8) == MIME_BOUNDARY);
    CHECK(mime_depth(m) == 0);
    CHECK(mime_line(m, "--b3\r\n", 6) == MIME_BODY);
    mime_free(&m);
}

/* test_mime_attached_nesting_limit - message/rfc822 inside message/rfc822 stops too. */
static void
test_mime_attached_nesting_limit(void)
{
    struct mime *m = mime_new();
    const char  *ct = "Content-Type: message/rfc822\r\n";
    int          i;

    for (i = 0; i < MIME_DEPTH_MAX * 2; i++) {
        mime_line(m, ct, strlen(ct));
        mime_line(m, "\r\n", 2);
    }
    CHECK(mime_depth(m) == MIME_DEPTH_MAX);
    CHECK(mime_errors(m) & MIME_ERR_NESTING);
    CHECK(mime_line(m, ct, strlen(ct)) == MIME_BODY);
    mime_free(&m);
}

/* test_mime_garbage - random lines (and random structure-looking lines) never crash and
 * keep the depth within bounds. */
static void
test_mime_garbage(void)
{
    static const char *frags[] = {
        "Content-Type: multipart/mixed; boundary=", "Content-Type: message/rfc822",
        "Content-Type: multipart/digest; boundary=\"", "--", "\r\n", " ", "\"", "(", ")",
        "\\", ";", "=", "a", "b", "X:", "Content-Transfer-Encoding: base64", "--a", "--b--",
    };
    struct mime *m = mime_new();
    char         line[300];
    int          round, i;

    srand(12345);
    for (round = 0; round < 20000; round++) {
        size_t len = 0;
        int    parts = rand() % 6;

        if (round % 500 == 0)
            mime_reset(m);
        for (i = 0; i < parts; i++) {
            if (rand() % 3 == 0) {
                const char *f = frags[rand() % (int)(sizeof(frags) / sizeof(frags[0]))];
                size_t      fl = strlen(f);

                if (len + fl < sizeof(line)) {
                    memcpy(line + len, f, fl);
                    len += fl;
                }
            } else if (len + 10 < sizeof(line)) {
                int k, n = rand() % 10;

                for (k = 0; k < n; k++)
                    line[len++] = (char)(rand() % 256);
            }
        }
        if (rand() % 4 != 0 && len + 2 <= sizeof(line)) {
            line[len++] = '\r';
            line[len++] = '\n';
        }
        CHECK(mime_line(m, line, len) <= MIME_BODY);
        CHECK(mime_depth(m) <= MIME_DEPTH_MAX);
    }
    mime_end(m);
    mime_free(&m);
}

/* main - run every test; prints "N passed, N failed". */
int
main(void)
{
    log_init("mime_test", 1);

    TEST_RUN(test_mime_cases);
    TEST_RUN(test_mime_depth);
    TEST_RUN(test_mime_nesting_limit);
    TEST_RUN(test_mime_attached_nesting_limit);
    TEST_RUN(test_mime_garbage);
    TEST_END();
}
