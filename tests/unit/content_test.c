/* content_test - unit tests for libcommon/content: header_checks and body_checks over a
 * streamed message.
 *
 * Rule files are written to a temporary directory under $TMPDIR (or /tmp), removed at the
 * end. The golden samples (tests/golden/content) are driven by content_golden_test.c; these
 * tests cover the pieces: identity however the input is cut, headers held and decided at
 * header_max, overlong lines, where mime_header_checks applies, boundaries, the end of a
 * message without CRLF, reuse, and garbage. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "content.h"
#include "log.h"
#include "policy.h"
#include "rules.h"
#include "test.h"

static char test_dir[256];

/* content_test_setup - a fresh temporary directory for the rule files. */
static void
content_test_setup(void)
{
    const char *t = getenv("TMPDIR");

    snprintf(test_dir, sizeof(test_dir), "%s/content_test.XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(test_dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

/* content_test_teardown - remove the temporary directory and its files. */
static void
content_test_teardown(void)
{
    DIR           *d = opendir(test_dir);
    struct dirent *e;
    char           p[512];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", test_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(test_dir);
}

/* content_test_rules - write text as test_dir/name and load it (NULL text: no rules). */
static struct rules *
content_test_rules(const char *name, const char *text)
{
    char          path[512], err[512];
    FILE         *fp;
    struct rules *r;

    if (text == NULL)
        return NULL;
    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    if ((fp = fopen(path, "w")) == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, fp);
    fclose(fp);
    if ((r = rules_load(path, 100000, err, sizeof(err))) == NULL)
        fprintf(stderr, "  %s\n", err);
    CHECK(r != NULL);
    return r;
}

/* What the log callback saw last, and how often it was called. */
static struct {
    unsigned          calls;
    enum content_part what;
    enum policy_kind  kind;
    char              subject[512];
    size_t            len;
} seen;

/* content_test_log - remember the last action reported. */
static void
content_test_log(void *arg, enum content_part what, const struct policy_action *a,
                 const char *subject, size_t len)
{
    (void)arg;
    seen.calls++;
    seen.what = what;
    seen.kind = a->kind;
    seen.len = len;
    memcpy(seen.subject, subject, len < sizeof(seen.subject) ? len : sizeof(seen.subject));
    seen.subject[len < sizeof(seen.subject) ? len : sizeof(seen.subject) - 1] = '\0';
}

/* A content inspector over up to three rule texts, freed by content_test_done(). */
struct content_test {
    struct content_rules cr;
    struct content      *c;
    struct buf           out;
};

/* content_test_new - load the rules, make the inspector. */
static void
content_test_new(struct content_test *t, const char *header, const char *mime_header,
                 const char *body, uint64_t body_limit, size_t header_max)
{
    memset(t, 0, sizeof(*t));
    t->cr.header = content_test_rules("header.pcre", header);
    t->cr.mime_header = content_test_rules("mime_header.pcre", mime_header);
    t->cr.body = content_test_rules("body.pcre", body);
    t->cr.body_size_limit = body_limit;
    t->cr.header_max = header_max;
    t->c = content_new(&t->cr, content_test_log, NULL);
    buf_init(&t->out, 1024);
    memset(&seen, 0, sizeof(seen));
}

/* content_test_done - free everything content_test_new() made. */
static void
content_test_done(struct content_test *t)
{
    content_free(&t->c);
    CHECK(t->c == NULL);
    rules_free(&t->cr.header);
    rules_free(&t->cr.mime_header);
    rules_free(&t->cr.body);
    buf_release(&t->out);
}

/* content_test_run - one message, in chunks of at most step octets (0: whole, random if
 * random); the output is in t->out (NUL-terminated). */
static const char *
content_test_run(struct content_test *t, const char *msg, size_t len, size_t step,
                 int random)
{
    size_t pos = 0;

    buf_reset(&t->out);
    content_begin(t->c, "TESTQID");
    while (pos < len) {
        size_t n = step == 0 ? len - pos : random ? (size_t)rand() % step + 1 : step;

        if (n > len - pos)
            n = len - pos;
        content_feed(t->c, msg + pos, n, &t->out);
        pos += n;
    }
    content_end(t->c, &t->out);
    return buf_cstr(&t->out);
}

/* content_test_str - run a NUL-terminated message whole. */
static const char *
content_test_str(struct content_test *t, const char *msg)
{
    return content_test_run(t, msg, strlen(msg), 0, 0);
}

/* content_test_random_message - a message-like mess: MIME structure, folded and long
 * lines, bare CR and LF, NULs, no final CRLF sometimes. */
static void
content_test_random_message(struct buf *b)
{
    static const char *frags[] = {
        "Subject: hello\r\n", " folded\r\n", "\tfolded\r\n", "\r\n", "X-Warn: 1\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n", "--b\r\n", "--b--\r\n",
        "Content-Type: message/rfc822\r\n", "body line\r\n", "warn me\r\n", "\n", "\r",
        "Content-Type: multipart/digest; boundary=\"d d\"\r\n", "--d d\r\n", "X: ",
    };
    int i, n = rand() % 60;

    buf_reset(b);
    for (i = 0; i < n; i++) {
        int r = rand() % 10;

        if (r < 6) {
            buf_puts(b, frags[rand() % (int)(sizeof(frags) / sizeof(frags[0]))]);
        } else if (r < 8) {
            int k, m = rand() % 40;

            for (k = 0; k < m; k++)
                buf_append(b, &(char){ (char)(rand() % 256) }, 1);
        } else {
            int k, m = rand() % 5000;

            for (k = 0; k < m; k++)
                buf_append(b, &(char){ "ab \t"[rand() % 4] }, 1);
            if (rand() % 2)
                buf_puts(b, "\r\n");
        }
    }
}

/* test_content_any - content_any says whether any rule set is there. */
static void
test_content_any(void)
{
    struct content_rules cr;

    memset(&cr, 0, sizeof(cr));
    CHECK(!content_any(NULL));
    CHECK(!content_any(&cr));
    cr.body = (struct rules *)&cr;    /* only compared with NULL */
    CHECK(content_any(&cr));
}

/* test_content_identity_random_chunks - with rules that change nothing (or none), the
 * output is the input byte for byte, however it is cut. */
static void
test_content_identity_random_chunks(void)
{
    struct content_test t, none;
    struct buf          msg;
    int                 round;

    content_test_setup();
    content_test_new(&t, "/^X-Warn:/ WARN w\n/^Subject:/ DUNNO\n/hello/ HOLD h\n", NULL,
                     "/^warn me$/ WARN w\n/a{3000}/ OK\n", 300, 200);
    content_test_new(&none, NULL, NULL, NULL, 0, 0);
    buf_init(&msg, 8192);
    srand(4242);
    for (round = 0; round < 300; round++) {
        size_t steps[] = { 0, 1, 2, 3, 13, 999, 1000, 1001 };
        size_t s;

        content_test_random_message(&msg);
        for (s = 0; s < sizeof(steps) / sizeof(steps[0]) + 2; s++) {
            size_t step = s < 8 ? steps[s] : s == 8 ? 50 : 3000;
            int    random = s >= 8;

            content_test_run(&t, msg.data, msg.len, step, random);
            CHECK(t.out.len == msg.len && memcmp(t.out.data, msg.data, msg.len) == 0);
            CHECK(content_verdict(t.c)->changes == 0);
            content_test_run(&none, msg.data, msg.len, step, random);
            CHECK(none.out.len == msg.len && memcmp(none.out.data, msg.data, msg.len) == 0);
        }
    }
    buf_release(&msg);
    content_test_done(&t);
    content_test_done(&none);
    content_test_teardown();
}

/* test_content_rewrites_random_chunks - a rewriting message gives one output however it is
 * cut. */
static void
test_content_rewrites_random_chunks(void)
{
    struct content_test t;
    struct buf          msg, first;
    int                 round;

    content_test_setup();
    content_test_new(&t, "/^X-Warn:/ IGNORE\n/^Subject:/ REPLACE Subject: [x]\n", NULL,
                     "/^body line$/ PREPEND X\n/^warn me$/ REPLACE Y\n/^a/ IGNORE\n", 500, 300);
    buf_init(&msg, 8192);
    buf_init(&first, 8192);
    srand(777);
    for (round = 0; round < 300; round++) {
        size_t steps[] = { 0, 1, 7, 1000 };
        size_t s;

        content_test_random_message(&msg);
        content_test_run(&t, msg.data, msg.len, 0, 0);
        buf_reset(&first);
        buf_append(&first, t.out.data, t.out.len);
        for (s = 1; s < sizeof(steps) / sizeof(steps[0]) + 1; s++) {
            content_test_run(&t, msg.data, msg.len, s < 4 ? steps[s] : 100, s >= 4);
            CHECK(t.out.len == first.len && memcmp(t.out.data, first.data, first.len) == 0);
        }
    }
    buf_release(&msg);
    buf_release(&first);
    content_test_done(&t);
    content_test_teardown();
}

/* test_content_header_unfolded - a folded header is matched unfolded, reported unfolded,
 * and written as received. */
static void
test_content_header_unfolded(void)
{
    struct content_test t;
    const char         *msg = "Subject: one\r\n two\r\n\tthree\r\nTo: x\r\n\r\nbody\r\n";

    content_test_setup();
    content_test_new(&t, "/^Subject: one two\\tthree$/ WARN folded\n", NULL, NULL, 0, 0);
    CHECK_STR(content_test_str(&t, msg), msg);
    CHECK(content_verdict(t.c)->warnings == 1);
    CHECK(seen.what == CONTENT_HEADER && seen.kind == POLICY_WARN);
    CHECK_STR(seen.subject, "Subject: one two\tthree");
    content_test_done(&t);
    content_test_teardown();
}

/* test_content_mime_header_fallback - without mime_header_checks, part headers go to
 * header_checks (reported as MIME headers); with it, only to mime_header_checks. */
static void
test_content_mime_header_fallback(void)
{
    struct content_test t;
    const char         *msg = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                              "X-Part: 1\r\n\r\nX-Part: body\r\n--b--\r\n";

    content_test_setup();
    content_test_new(&t, "/^X-Part:/ WARN part\n", NULL, NULL, 0, 0);
    content_test_str(&t, msg);
    CHECK(content_verdict(t.c)->warnings == 1);
    CHECK(seen.what == CONTENT_MIME_HEADER);
    content_test_done(&t);

    content_test_new(&t, "/^X-Part:/ REJECT header\n", "/^Content-Type:/ WARN ct\n", NULL, 0,
                     0);
    content_test_str(&t, msg);
    CHECK(content_verdict(t.c)->kind == POLICY_NONE);
    CHECK(content_verdict(t.c)->warnings == 0);
    content_test_done(&t);
    content_test_teardown();
}

/* test_content_boundary_not_body - boundary lines and the empty line after headers are not
 * matched against body_checks; a look-alike line is. */
static void
test_content_boundary_not_body(void)
{
    struct content_test t;
    const char         *msg = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
                              "--bx\r\n--b--\r\n";

    content_test_setup();
    content_test_new(&t, NULL, NULL, "/^--b/ WARN dash\n/^$/ WARN empty\n", 0, 0);
    content_test_str(&t, msg);
    CHECK(content_verdict(t.c)->warnings == 1);
    CHECK_STR(seen.subject, "--bx");
    content_test_done(&t);
    content_test_teardown();
}

/* test_content_header_max - a header over header_max is decided on its first header_max
 * octets; kept, it is written whole, replaced, all of it goes. */
static void
test_content_header_max(void)
{
    struct content_test t;
    struct buf          msg;
    int                 i;

    content_test_setup();
    buf_init(&msg, 4096);
    buf_puts(&msg, "X-Long: start");
    for (i = 0; i < 100; i++)
        buf_puts(&msg, "\r\n continued 0123456789");
    buf_puts(&msg, "\r\nSubject: s\r\n\r\nb\r\n");
    content_test_new(&t, "/^X-Long: start continued/ WARN long\n", NULL, NULL, 0, 100);
    content_test_run(&t, msg.data, msg.len, 1, 0);
    CHECK(t.out.len == msg.len && memcmp(t.out.data, msg.data, msg.len) == 0);
    CHECK(content_verdict(t.c)->warnings == 1);
    CHECK(seen.len > 80 && seen.len <= 100);
    content_test_done(&t);

    content_test_new(&t, "/^X-Long: start/ REPLACE X-Long: cut\n", NULL, NULL, 0, 100);
    CHECK_STR(content_test_run(&t, msg.data, msg.len, 3, 1),
              "X-Long: cut\r\nSubject: s\r\n\r\nb\r\n");
    content_test_done(&t);
    buf_release(&msg);
    content_test_teardown();
}

/* test_content_long_body_line - an overlong body line: matched on its first 1000 octets,
 * and IGNORE or REPLACE take all of it. */
static void
test_content_long_body_line(void)
{
    struct content_test t;
    struct buf          msg;

    content_test_setup();
    buf_init(&msg, 8192);
    buf_puts(&msg, "Subject: s\r\n\r\ndrop");
    while (msg.len < 5000)
        buf_puts(&msg, " x");
    buf_puts(&msg, " TAILMARK\r\nlast\r\n");
    content_test_new(&t, NULL, NULL, "/^drop/ IGNORE\n/^last$/ REPLACE final\n", 0, 0);
    CHECK_STR(content_test_run(&t, msg.data, msg.len, 0, 0), "Subject: s\r\n\r\nfinal\r\n");
    CHECK_STR(content_test_run(&t, msg.data, msg.len, 1, 0), "Subject: s\r\n\r\nfinal\r\n");
    CHECK(content_verdict(t.c)->changes == 2);
    content_test_done(&t);

    /* Matched by its first piece only. */
    content_test_new(&t, NULL, NULL, "/TAILMARK/ WARN end\n/^drop/ DUNNO\n", 0, 0);
    content_test_run(&t, msg.data, msg.len, 17, 1);
    CHECK(content_verdict(t.c)->warnings == 0);
    content_test_done(&t);
    buf_release(&msg);
    content_test_teardown();
}

/* test_content_body_limit - body lines are inspected while the part's body before them is
 * under the limit; 0 means no limit. */
static void
test_content_body_limit(void)
{
    struct content_test t;
    const char         *msg = "S: s\r\n\r\n0123456789\r\nhit\r\n";

    content_test_setup();
    content_test_new(&t, NULL, NULL, "/^hit$/ WARN hit\n", 13, 0);
    content_test_str(&t, msg);
    CHECK(content_verdict(t.c)->warnings == 1);
    content_test_done(&t);
    content_test_new(&t, NULL, NULL, "/^hit$/ WARN hit\n", 12, 0);
    content_test_str(&t, msg);
    CHECK(content_verdict(t.c)->warnings == 0);
    content_test_done(&t);
    content_test_new(&t, NULL, NULL, "/^hit$/ WARN hit\n", 0, 0);
    content_test_str(&t, msg);
    CHECK(content_verdict(t.c)->warnings == 1);
    content_test_done(&t);
    content_test_teardown();
}

/* test_content_no_final_crlf - a last line without CRLF is inspected at content_end, a
 * header as well as a body line. */
static void
test_content_no_final_crlf(void)
{
    struct content_test t;

    content_test_setup();
    content_test_new(&t, "/^Subject: x y$/ REPLACE Subject: z\n", NULL,
                     "/^tail$/ REPLACE end\n", 0, 0);
    CHECK_STR(content_test_str(&t, "Subject: x\r\n y"), "Subject: z\r\n");
    CHECK_STR(content_test_str(&t, "A: b\r\n\r\ntail"), "A: b\r\n\r\nend\r\n");
    CHECK(content_verdict(t.c)->changes == 1);
    content_test_done(&t);
    content_test_teardown();
}

/* test_content_reject_stops - after REJECT the rest passes unmatched, and content_begin
 * starts afresh. */
static void
test_content_reject_stops(void)
{
    struct content_test t;
    const char         *msg = "Subject: bad\r\nX-Other: 1\r\n\r\nreplace me\r\n";

    content_test_setup();
    content_test_new(&t, "/^Subject: bad/ REJECT 5.7.1 no\n/^X-Other/ IGNORE\n", NULL,
                     "/^replace me$/ REPLACE r\n", 0, 0);
    CHECK_STR(content_test_run(&t, msg, strlen(msg), 2, 0), msg);
    CHECK(content_verdict(t.c)->kind == POLICY_REJECT);
    CHECK(content_verdict(t.c)->changes == 0);
    CHECK(strstr(content_verdict(t.c)->action.where, "header.pcre:1") != NULL);
    CHECK_STR(content_test_str(&t, "Subject: good\r\n\r\nreplace me\r\n"),
              "Subject: good\r\n\r\nr\r\n");
    CHECK(content_verdict(t.c)->kind == POLICY_NONE);
    CHECK(content_verdict(t.c)->changes == 1);
    content_test_done(&t);
    content_test_teardown();
}

/* test_content_bad_action - a value that is not a content action, or REPLACE text that is
 * not a header on a header, is skipped (logged) and changes nothing. */
static void
test_content_bad_action(void)
{
    struct content_test t;
    const char         *msg = "Subject: a\r\nX: b\r\n\r\nbody\r\n";

    content_test_setup();
    content_test_new(&t, "/^Subject:/ REPLACE not a header\n/^X:/ FROBNICATE\n", NULL,
                     "/^body$/ REPLACE\n", 0, 0);
    CHECK_STR(content_test_str(&t, msg), msg);
    CHECK(content_verdict(t.c)->changes == 0);
    CHECK(seen.calls == 0);
    content_test_done(&t);
    content_test_teardown();
}

/* test_content_log_subject_cut - the subject given to the log is cut to a loggable length. */
static void
test_content_log_subject_cut(void)
{
    struct content_test t;
    struct buf          msg;

    content_test_setup();
    buf_init(&msg, 2048);
    buf_puts(&msg, "Subject: ");
    while (msg.len < 900)
        buf_puts(&msg, "y");
    buf_puts(&msg, "\r\n\r\n");
    content_test_new(&t, "/^Subject: y+$/ WARN long\n", NULL, NULL, 0, 0);
    content_test_run(&t, msg.data, msg.len, 0, 0);
    CHECK(seen.calls == 1);
    CHECK(seen.len > 0 && seen.len < 900);
    CHECK(strncmp(seen.subject, "Subject: yyy", 12) == 0);
    content_test_done(&t);
    buf_release(&msg);
    content_test_teardown();
}

/* main - run every test; prints "N passed, N failed". */
int
main(void)
{
    log_init("content_test", 1);

    TEST_RUN(test_content_any);
    TEST_RUN(test_content_identity_random_chunks);
    TEST_RUN(test_content_rewrites_random_chunks);
    TEST_RUN(test_content_header_unfolded);
    TEST_RUN(test_content_mime_header_fallback);
    TEST_RUN(test_content_boundary_not_body);
    TEST_RUN(test_content_header_max);
    TEST_RUN(test_content_long_body_line);
    TEST_RUN(test_content_body_limit);
    TEST_RUN(test_content_no_final_crlf);
    TEST_RUN(test_content_reject_stops);
    TEST_RUN(test_content_bad_action);
    TEST_RUN(test_content_log_subject_cut);
    TEST_END();
}
