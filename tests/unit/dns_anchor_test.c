/* dns_anchor_test - trust anchor files (libcommon/dns_anchor.c): the forms that dns-root-data,
 * ldns-key2ds and dig write, folded records, comments, and the files we refuse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns_anchor.h"
#include "test.h"

/* test_dns_anchor_forms - DS and DNSKEY lines, with TTL and class or without, comments,
 * $TTL, a record folded in parentheses, blank lines; each comes out as one line. */
static void
test_dns_anchor_forms(void)
{
    static const char text[] =
        "; root key, as dns-root-data has it\n"
        "$TTL 3600\n"
        ". IN DNSKEY 257 3 8 AwEAAaz/tAm8 ; keytag 20326\n"
        "\n"
        "dane.test.\t3600\tIN\tDS\t4242 13 2 ABCDEF0123\r\n"
        "example.org. DNSKEY 257 3 13 (\n"
        "        abcd ; folded\n"
        "        ef== )\n"
        "x.test. 60 ds 1 13 2 00";
    struct dns_anchor a;
    char              err[256];

    CHECK(dns_anchor_parse(text, strlen(text), &a, err, sizeof(err)) == 0);
    CHECK(a.n == 4);
    if (a.n == 4) {
        CHECK_STR(a.rec[0], ". IN DNSKEY 257 3 8 AwEAAaz/tAm8");
        CHECK_STR(a.rec[1], "dane.test. 3600 IN DS 4242 13 2 ABCDEF0123");
        CHECK_STR(a.rec[2], "example.org. DNSKEY 257 3 13 abcd ef==");
        CHECK_STR(a.rec[3], "x.test. 60 ds 1 13 2 00");
    }
    dns_anchor_clear(&a);
    CHECK(a.n == 0);
}

/* test_dns_anchor_refused - what is not an anchor file says where and why. */
static void
test_dns_anchor_refused(void)
{
    static const struct {
        const char *text;
        const char *why;
    } t[] = {
        { "", "no DS or DNSKEY record" },
        { "; only a comment\n\n", "no DS or DNSKEY record" },
        { "dane.test IN DS 1 13 2 00\n", "line 1: the owner name \"dane.test\" must end" },
        { ". IN DNSKEY 257 3 8 AA\nx. IN A 192.0.2.1\n", "line 2: not a DS or DNSKEY" },
        { ". IN DS\n", "line 1: a DS record without data" },
        { "x. IN TXT DS\n", "line 1: not a DS or DNSKEY" },
        { ". IN DNSKEY ( 257 3 8 AA\n", "line 1: '(' without ')'" },
        { ". IN DNSKEY 257 ) 3 8 AA\n", "line 1: ')' without '('" },
        { ". IN DS 1 13 2 00\n  IN DS 2 13 2 00\n", "line 2: a record without an owner" },
    };
    struct dns_anchor a;
    char              err[256];

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        err[0] = '\0';
        CHECK(dns_anchor_parse(t[i].text, strlen(t[i].text), &a, err, sizeof(err)) == -1);
        CHECK(a.n == 0);
        if (strncmp(err, t[i].why, strlen(t[i].why)) != 0) {
            fprintf(stderr, "  case %zu: \"%s\", want \"%s\"\n", i, err, t[i].why);
            CHECK(0);
        }
    }
    CHECK(dns_anchor_parse("x. IN DS 1 13 2 00\0", 19, &a, err, sizeof(err)) == -1);
}

/* test_dns_anchor_limits - at most DNS_ANCHOR_MAX records. */
static void
test_dns_anchor_limits(void)
{
    char              text[DNS_ANCHOR_MAX * 40 + 64];
    size_t            off = 0;
    struct dns_anchor a;
    char              err[256];

    for (int i = 0; i < DNS_ANCHOR_MAX; i++)
        off += (size_t)snprintf(text + off, sizeof(text) - off, "t%d. IN DS %d 13 2 00\n", i,
                                i);
    CHECK(dns_anchor_parse(text, off, &a, err, sizeof(err)) == 0 && a.n == DNS_ANCHOR_MAX);
    dns_anchor_clear(&a);
    off += (size_t)snprintf(text + off, sizeof(text) - off, "y. IN DS 1 13 2 00\n");
    CHECK(dns_anchor_parse(text, off, &a, err, sizeof(err)) == -1);
    CHECK(strstr(err, "more than") != NULL);
}

/* test_dns_anchor_load - from a file; a missing file names its path. */
static void
test_dns_anchor_load(void)
{
    char              path[] = "/tmp/dns_anchor_test.XXXXXX", err[512];
    int               fd = mkstemp(path);
    struct dns_anchor a;
    static const char ds[] = "dane.test. IN DS 4242 13 2 ABCDEF\n";

    CHECK(fd >= 0 && write(fd, ds, sizeof(ds) - 1) == (ssize_t)(sizeof(ds) - 1));
    close(fd);
    CHECK(dns_anchor_load(path, &a, err, sizeof(err)) == 0 && a.n == 1);
    dns_anchor_clear(&a);
    unlink(path);
    CHECK(dns_anchor_load(path, &a, err, sizeof(err)) == -1);
    CHECK(strstr(err, path) != NULL && strstr(err, "No such file") != NULL);
    CHECK(dns_anchor_load("/tmp", &a, err, sizeof(err)) == -1);
}

int
main(void)
{
    TEST_RUN(test_dns_anchor_forms);
    TEST_RUN(test_dns_anchor_refused);
    TEST_RUN(test_dns_anchor_limits);
    TEST_RUN(test_dns_anchor_load);
    TEST_END();
}
