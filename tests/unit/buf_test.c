/* buf_test - growable byte buffers and the x* allocators.
 *
 * Checks the contract in buf.h: bytes (NULs included) are kept, data[len] is always NUL,
 * a limit refuses growth and leaves the buffer as it was, wipe and reset empty it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "test.h"

/* buf_ok - the invariants every buffer must hold after any call. */
static int
buf_ok(const struct buf *b)
{
    return b->data != NULL && b->len <= b->cap && b->data[b->len] == '\0' &&
           (b->limit == 0 || b->len <= b->limit) && buf_cstr(b) == b->data;
}

/* test_buf_new_empty - a new buffer is empty and already NUL-terminated. */
static void
test_buf_new_empty(void)
{
    static const size_t hints[] = { 0, 1, 16, 4096, 100000 };

    for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
        struct buf *b = buf_new(hints[i]);

        CHECK(b != NULL);
        CHECK(b->len == 0);
        CHECK(b->limit == 0);
        CHECK(buf_ok(b));
        CHECK_STR(buf_cstr(b), "");
        buf_free(&b);
        CHECK(b == NULL);
    }
}

/* test_buf_append - appends concatenate, whatever the starting hint. */
static void
test_buf_append(void)
{
    static const struct {
        const char *parts[4];
        const char *want;
    } cases[] = {
        { { "", NULL }, "" },
        { { "a", NULL }, "a" },
        { { "hello", ", ", "world", NULL }, "hello, world" },
        { { "", "x", "", NULL }, "x" },
        { { "EHLO ", "client.example", "\r\n", NULL }, "EHLO client.example\r\n" },
    };

    for (size_t hint = 0; hint < 20; hint += 7) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            struct buf *b = buf_new(hint);

            for (int j = 0; cases[i].parts[j] != NULL; j++)
                CHECK(buf_append(b, cases[i].parts[j], strlen(cases[i].parts[j])) == 0);
            CHECK(b->len == strlen(cases[i].want));
            CHECK_STR(buf_cstr(b), cases[i].want);
            CHECK(buf_ok(b));
            buf_free(&b);
        }
    }
}

/* test_buf_append_grows - many small appends and one big one keep every byte. */
static void
test_buf_append_grows(void)
{
    struct buf *b = buf_new(0);
    static char big[300000];
    size_t i;

    for (i = 0; i < 100000; i++) {
        char c = (char)('a' + i % 26);

        if (buf_append(b, &c, 1) != 0)
            break;
    }
    CHECK(i == 100000);
    CHECK(b->len == 100000);
    CHECK(buf_ok(b));
    for (i = 0; i < b->len; i++)
        if (b->data[i] != (char)('a' + i % 26))
            break;
    CHECK(i == 100000);

    for (i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7 + 3);
    buf_reset(b);
    CHECK(buf_append(b, big, sizeof(big)) == 0);
    CHECK(b->len == sizeof(big));
    CHECK(memcmp(b->data, big, sizeof(big)) == 0);
    CHECK(buf_ok(b));
    buf_free(&b);
}

/* test_buf_nul_bytes - NUL bytes are data, not terminators. */
static void
test_buf_nul_bytes(void)
{
    static const struct {
        const char *bytes;
        size_t      len;
    } cases[] = {
        { "\0", 1 },
        { "a\0b", 3 },
        { "\0\0\0\0", 4 },
        { "abc\0", 4 },
        { "\r\n.\0\r\n", 6 },
    };
    struct buf *b = buf_new(0);
    size_t total = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf *one = buf_new(0);

        CHECK(buf_append(one, cases[i].bytes, cases[i].len) == 0);
        CHECK(one->len == cases[i].len);
        CHECK(memcmp(one->data, cases[i].bytes, cases[i].len) == 0);
        CHECK(buf_ok(one));
        buf_free(&one);

        CHECK(buf_append(b, cases[i].bytes, cases[i].len) == 0);
        total += cases[i].len;
    }
    CHECK(b->len == total);
    CHECK(memcmp(b->data, "\0a\0b\0\0\0\0abc\0\r\n.\0\r\n", total) == 0);
    CHECK(buf_ok(b));
    buf_free(&b);
}

/* test_buf_puts - buf_puts appends a C string without its NUL. */
static void
test_buf_puts(void)
{
    struct buf *b = buf_new(0);

    CHECK(buf_puts(b, "250-") == 0);
    CHECK(buf_puts(b, "") == 0);
    CHECK(buf_puts(b, "SIZE 10240000") == 0);
    CHECK(b->len == 17);
    CHECK_STR(buf_cstr(b), "250-SIZE 10240000");
    CHECK(buf_ok(b));
    buf_free(&b);
}

/* test_buf_printf - formats append to what is there, including output bigger than cap. */
static void
test_buf_printf(void)
{
    struct buf *b = buf_new(0);
    char *longstr = xmalloc(5001);

    CHECK(buf_printf(b, "%s", "") == 0);
    CHECK(b->len == 0);
    CHECK(buf_ok(b));
    CHECK(buf_printf(b, "%d %s", 250, "ok") == 0);
    CHECK_STR(buf_cstr(b), "250 ok");
    CHECK(buf_printf(b, " [%05u|%-3s|%x]", 42u, "a", 255u) == 0);
    CHECK_STR(buf_cstr(b), "250 ok [00042|a  |ff]");
    CHECK(b->len == strlen("250 ok [00042|a  |ff]"));
    CHECK(buf_ok(b));

    memset(longstr, 'q', 5000);
    longstr[5000] = '\0';
    buf_reset(b);
    CHECK(buf_puts(b, "<") == 0);
    CHECK(buf_printf(b, "%s>%d", longstr, 7) == 0);
    CHECK(b->len == 5003);
    CHECK(b->data[0] == '<' && b->data[1] == 'q' && b->data[5000] == 'q');
    CHECK(memcmp(b->data + 5001, ">7", 2) == 0);
    CHECK(buf_ok(b));
    free(longstr);
    buf_free(&b);
}

/* test_buf_consume - consume drops bytes from the front and keeps the rest in order. */
static void
test_buf_consume(void)
{
    static const struct {
        const char *in;
        size_t      n;
        const char *want;
    } cases[] = {
        { "hello world", 0, "hello world" },
        { "hello world", 6, "world" },
        { "hello world", 10, "d" },
        { "hello world", 11, "" },
        { "", 0, "" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf *b = buf_new(0);

        CHECK(buf_puts(b, cases[i].in) == 0);
        buf_consume(b, cases[i].n);
        CHECK(b->len == strlen(cases[i].want));
        CHECK_STR(buf_cstr(b), cases[i].want);
        CHECK(buf_ok(b));
        /* Appending after a consume goes after what is left. */
        CHECK(buf_puts(b, "!") == 0);
        CHECK(b->len == strlen(cases[i].want) + 1);
        CHECK(b->data[b->len - 1] == '!');
        CHECK(buf_ok(b));
        buf_free(&b);
    }
}

/* test_buf_consume_repeated - a line-reader pattern: consume piece by piece with NULs. */
static void
test_buf_consume_repeated(void)
{
    struct buf *b = buf_new(0);
    static const char bytes[] = "one\0two\0three";
    size_t left = sizeof(bytes) - 1;

    CHECK(buf_append(b, bytes, left) == 0);
    buf_consume(b, 4);
    left -= 4;
    CHECK(b->len == left && memcmp(b->data, "two\0three", left) == 0);
    buf_consume(b, 4);
    left -= 4;
    CHECK(b->len == left);
    CHECK_STR(buf_cstr(b), "three");
    buf_consume(b, 5);
    CHECK(b->len == 0);
    CHECK(buf_ok(b));
    buf_free(&b);
}

/* test_buf_truncate - truncate shortens and re-terminates. */
static void
test_buf_truncate(void)
{
    static const struct {
        const char *in;
        size_t      inlen;
        size_t      len;
        const char *want;
    } cases[] = {
        { "hello\r\n", 7, 5, "hello" },
        { "hello", 5, 5, "hello" },
        { "hello", 5, 0, "" },
        { "a\0b", 3, 1, "a" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf *b = buf_new(0);

        CHECK(buf_append(b, cases[i].in, cases[i].inlen) == 0);
        buf_truncate(b, cases[i].len);
        CHECK(b->len == cases[i].len);
        CHECK_STR(buf_cstr(b), cases[i].want);
        CHECK(buf_ok(b));
        buf_free(&b);
    }
}

/* test_buf_reserve_commit - reserve gives room for n bytes; commit makes them content. */
static void
test_buf_reserve_commit(void)
{
    struct buf *b = buf_new(0);
    char *p;

    CHECK(buf_puts(b, "head:") == 0);
    p = buf_reserve(b, 100);
    CHECK(p != NULL);
    if (p != NULL) {
        CHECK(p == b->data + b->len);
        CHECK(b->cap - b->len >= 100);
        memcpy(p, "body", 4);
        buf_commit(b, 4);
    }
    CHECK(b->len == 9);
    CHECK_STR(buf_cstr(b), "head:body");
    CHECK(buf_ok(b));

    /* Committing less than reserved, and zero, keeps the terminator right. */
    p = buf_reserve(b, 10);
    CHECK(p != NULL);
    if (p != NULL) {
        memset(p, 'z', 10);
        buf_commit(b, 0);
    }
    CHECK(b->len == 9);
    CHECK(buf_ok(b));
    CHECK_STR(buf_cstr(b), "head:body");

    /* A large reservation, as a read() into the buffer would do, with NUL bytes. */
    p = buf_reserve(b, 65536);
    CHECK(p != NULL);
    if (p != NULL) {
        memset(p, 0, 65536);
        p[65535] = 'E';
        buf_commit(b, 65536);
    }
    CHECK(b->len == 9 + 65536);
    CHECK(b->data[9] == '\0' && b->data[9 + 65535] == 'E');
    CHECK(buf_ok(b));
    buf_free(&b);
}

/* test_buf_limit_refuses - growth past the limit fails and the buffer is left as it was. */
static void
test_buf_limit_refuses(void)
{
    struct buf *b = buf_new(0);
    char *before_data;

    buf_set_limit(b, 8);
    CHECK(b->limit == 8);
    CHECK(buf_puts(b, "12345") == 0);

    CHECK(buf_append(b, "6789", 4) == -1);
    CHECK(b->len == 5);
    CHECK_STR(buf_cstr(b), "12345");
    CHECK(buf_ok(b));

    CHECK(buf_puts(b, "abcd") == -1);
    CHECK_STR(buf_cstr(b), "12345");

    CHECK(buf_printf(b, "%s", "WXYZ") == -1);
    CHECK(b->len == 5);
    CHECK_STR(buf_cstr(b), "12345");
    CHECK(buf_ok(b));

    /* Exactly up to the limit is allowed. */
    CHECK(buf_append(b, "678", 3) == 0);
    CHECK(b->len == 8);
    CHECK_STR(buf_cstr(b), "12345678");
    CHECK(buf_ok(b));

    /* Full: nothing more, not even one byte; empty appends are fine. */
    CHECK(buf_append(b, "9", 1) == -1);
    CHECK(buf_append(b, "", 0) == 0);
    CHECK(b->len == 8);
    CHECK_STR(buf_cstr(b), "12345678");

    /* Over the limit, reserve returns NULL and changes nothing. */
    before_data = b->data;
    CHECK(buf_reserve(b, 1) == NULL);
    CHECK(b->len == 8);
    CHECK(b->data == before_data);
    CHECK_STR(buf_cstr(b), "12345678");

    /* After a consume there is room again. */
    buf_consume(b, 4);
    CHECK(buf_puts(b, "abcd") == 0);
    CHECK_STR(buf_cstr(b), "5678abcd");
    CHECK(buf_ok(b));
    buf_free(&b);
}

/* test_buf_limit_table - a table of (limit, first, second) appends and their outcomes. */
static void
test_buf_limit_table(void)
{
    static const struct {
        size_t      limit;
        const char *first;
        int         first_rc;
        const char *second;
        int         second_rc;
        const char *want;
    } cases[] = {
        { 1, "a", 0, "b", -1, "a" },
        { 1, "ab", -1, "a", 0, "a" },
        { 10, "0123456789", 0, "x", -1, "0123456789" },
        { 10, "01234567890", -1, "", 0, "" },
        { 3, "", 0, "abc", 0, "abc" },
        { 4096, "x", 0, "y", 0, "xy" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf *b = buf_new(0);

        buf_set_limit(b, cases[i].limit);
        CHECK(buf_puts(b, cases[i].first) == cases[i].first_rc);
        CHECK(buf_ok(b));
        CHECK(buf_puts(b, cases[i].second) == cases[i].second_rc);
        CHECK_STR(buf_cstr(b), cases[i].want);
        CHECK(buf_ok(b));
        buf_free(&b);
    }
}

/* test_buf_limit_huge_append - a length that would overflow size_t is refused, not wrapped. */
static void
test_buf_limit_huge_append(void)
{
    struct buf *b = buf_new(0);

    buf_set_limit(b, 1024);
    CHECK(buf_puts(b, "abc") == 0);
    CHECK(buf_append(b, "x", SIZE_MAX) == -1);
    CHECK(buf_append(b, "x", SIZE_MAX - 2) == -1);
    CHECK(b->len == 3);
    CHECK_STR(buf_cstr(b), "abc");
    CHECK(buf_reserve(b, SIZE_MAX - 1) == NULL);
    CHECK(b->len == 3);
    CHECK(buf_ok(b));
    buf_free(&b);
}

/* test_buf_wipe - wipe zeroes the bytes it held and empties the buffer. */
static void
test_buf_wipe(void)
{
    struct buf *b = buf_new(0);
    static const char secret[] = "AUTH PLAIN c2VjcmV0";
    size_t n = sizeof(secret) - 1;
    char *old;

    CHECK(buf_append(b, secret, n) == 0);
    old = b->data;
    buf_wipe(b);
    CHECK(b->len == 0);
    CHECK(buf_ok(b));
    CHECK_STR(buf_cstr(b), "");
    /* If the storage is kept, the secret must not be in it any more. */
    if (b->data == old && b->cap >= n) {
        size_t i;

        for (i = 0; i < n; i++)
            if (b->data[i] != '\0')
                break;
        CHECK(i == n);
    }
    /* Still usable. */
    CHECK(buf_puts(b, "next") == 0);
    CHECK_STR(buf_cstr(b), "next");
    buf_wipe(b);
    buf_wipe(b);
    CHECK(b->len == 0);
    CHECK(buf_ok(b));
    buf_free(&b);
}

/* test_buf_reset - reset empties but keeps capacity. */
static void
test_buf_reset(void)
{
    struct buf *b = buf_new(0);
    size_t cap;

    CHECK(buf_printf(b, "%0500d", 1) == 0);
    cap = b->cap;
    buf_reset(b);
    CHECK(b->len == 0);
    CHECK(b->cap == cap);
    CHECK(buf_ok(b));
    CHECK_STR(buf_cstr(b), "");
    buf_free(&b);
}

/* test_buf_embedded - buf_init/buf_release for a struct buf inside another struct. */
static void
test_buf_embedded(void)
{
    struct {
        int        x;
        struct buf b;
    } s;

    memset(&s, 0xa5, sizeof(s));
    buf_init(&s.b, 0);
    CHECK(s.b.len == 0);
    CHECK(s.b.limit == 0);
    CHECK(buf_ok(&s.b));
    CHECK(buf_puts(&s.b, "embedded") == 0);
    CHECK_STR(buf_cstr(&s.b), "embedded");
    buf_release(&s.b);

    buf_init(&s.b, 64);
    CHECK(buf_ok(&s.b));
    CHECK(buf_printf(&s.b, "%d", 12) == 0);
    CHECK_STR(buf_cstr(&s.b), "12");
    buf_release(&s.b);
}

/* test_buf_free_null - buf_free(&NULL) is harmless and NULLs the caller's pointer. */
static void
test_buf_free_null(void)
{
    struct buf *b = NULL;

    buf_free(&b);
    CHECK(b == NULL);
    b = buf_new(10);
    buf_free(&b);
    CHECK(b == NULL);
}

/* test_buf_xalloc - the allocators return usable memory and correct copies. */
static void
test_buf_xalloc(void)
{
    static const struct {
        const char *in;
        size_t      n;
        const char *want;
    } ndup[] = {
        { "hello", 3, "hel" },
        { "hello", 5, "hello" },
        { "hello", 50, "hello" },
        { "", 4, "" },
        { "a\0bc", 4, "a" },
    };
    unsigned char *z = xcalloc(100, 3);
    char *s;
    size_t i;

    for (i = 0; i < 300; i++)
        if (z[i] != 0)
            break;
    CHECK(i == 300);
    z = xrealloc(z, 1000);
    CHECK(z != NULL && z[299] == 0);
    free(z);

    s = xstrdup("postern");
    CHECK_STR(s, "postern");
    free(s);
    for (i = 0; i < sizeof(ndup) / sizeof(ndup[0]); i++) {
        s = xstrndup(ndup[i].in, ndup[i].n);
        CHECK_STR(s, ndup[i].want);
        free(s);
    }
    s = xasprintf("%s=%d", "size", 1024);
    CHECK_STR(s, "size=1024");
    free(s);
    s = xmalloc(1);
    CHECK(s != NULL);
    free(s);
}

int
main(void)
{
    TEST_RUN(test_buf_new_empty);
    TEST_RUN(test_buf_append);
    TEST_RUN(test_buf_append_grows);
    TEST_RUN(test_buf_nul_bytes);
    TEST_RUN(test_buf_puts);
    TEST_RUN(test_buf_printf);
    TEST_RUN(test_buf_consume);
    TEST_RUN(test_buf_consume_repeated);
    TEST_RUN(test_buf_truncate);
    TEST_RUN(test_buf_reserve_commit);
    TEST_RUN(test_buf_limit_refuses);
    TEST_RUN(test_buf_limit_table);
    TEST_RUN(test_buf_limit_huge_append);
    TEST_RUN(test_buf_wipe);
    TEST_RUN(test_buf_reset);
    TEST_RUN(test_buf_embedded);
    TEST_RUN(test_buf_free_null);
    TEST_RUN(test_buf_xalloc);
    TEST_END();
}
