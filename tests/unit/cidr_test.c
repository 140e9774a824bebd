/* cidr_test - network parsing (good and bad forms) and address matching, IPv4 and IPv6. */
#include <stddef.h>
#include <sys/socket.h>

#include "cidr.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* test_cidr_parse_good - the forms mynetworks uses. */
static void
test_cidr_parse_good(void)
{
    static const struct { const char *text; int family; unsigned bits; } cases[] = {
        { "127.0.0.0/8", AF_INET, 8 },
        { "192.0.2.1", AF_INET, 32 },
        { "192.0.2.1/32", AF_INET, 32 },
        { "0.0.0.0/0", AF_INET, 0 },
        { "10.128.0.0/9", AF_INET, 9 },
        { "[::1]/128", AF_INET6, 128 },
        { "[::1]", AF_INET6, 128 },
        { "::1/128", AF_INET6, 128 },
        { "2001:db8::/32", AF_INET6, 32 },
        { "[2001:db8::]/32", AF_INET6, 32 },
        { "fe80::/10", AF_INET6, 10 },
        { "::/0", AF_INET6, 0 },
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct cidr c;
        int         rc = cidr_parse(cases[i].text, &c);

        if (rc != 0 || c.family != cases[i].family || c.bits != cases[i].bits)
            fprintf(stderr, "  case %s\n", cases[i].text);
        CHECK(rc == 0);
        CHECK(c.family == cases[i].family);
        CHECK(c.bits == cases[i].bits);
    }
}

/* test_cidr_parse_bad - malformed networks, host bits, ranges, brackets around IPv4. */
static void
test_cidr_parse_bad(void)
{
    static const char *bad[] = {
        "", "/8", "127.0.0.0/", "127.0.0.0/33", "127.0.0.0/-1", "127.0.0.0/8x",
        "127.0.0.0/0008", "10.1.2.3/8", "127.1", "localhost", "256.0.0.0/8", "1.2.3.4.5",
        "[127.0.0.1]", "[::1", "::1]", "[]", "::1/129", "2001:db8::1/32", "::ffff:10.0.0.0/104",
        "127.0.0.0 /8", " 127.0.0.1", "127.0.0.1/8/8",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
    };

    for (size_t i = 0; i < N(bad); i++) {
        struct cidr c;

        if (cidr_parse(bad[i], &c) != -1)
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
        CHECK(cidr_parse(bad[i], &c) == -1);
    }
    CHECK(cidr_parse(NULL, &(struct cidr){ 0 }) == -1);
}

/* test_cidr_match - inside, outside, prefix edges, families never mix, mapped addresses. */
static void
test_cidr_match(void)
{
    static const struct { const char *net, *addr; int match; } cases[] = {
        { "127.0.0.0/8", "127.0.0.1", 1 },
        { "127.0.0.0/8", "127.255.255.255", 1 },
        { "127.0.0.0/8", "128.0.0.1", 0 },
        { "127.0.0.0/8", "126.255.255.255", 0 },
        { "10.128.0.0/9", "10.128.0.1", 1 },
        { "10.128.0.0/9", "10.255.1.1", 1 },
        { "10.128.0.0/9", "10.127.1.1", 0 },
        { "192.0.2.1", "192.0.2.1", 1 },
        { "192.0.2.1", "192.0.2.2", 0 },
        { "0.0.0.0/0", "203.0.113.9", 1 },
        { "0.0.0.0/0", "::1", 0 },                      /* families never mix */
        { "::/0", "127.0.0.1", 0 },
        { "[::1]/128", "::1", 1 },
        { "[::1]/128", "::2", 0 },
        { "2001:db8::/32", "2001:db8:ffff::1", 1 },
        { "2001:db8::/32", "2001:db9::1", 0 },
        { "fe80::/10", "febf::1", 1 },
        { "fe80::/10", "fec0::1", 0 },
        { "127.0.0.0/8", "::ffff:127.0.0.1", 1 },      /* mapped: matched as IPv4 */
        { "127.0.0.0/8", "", 0 },
        { "127.0.0.0/8", "unknown", 0 },
        { "127.0.0.0/8", "127.0.0.1:25", 0 },
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct cidr c;

        CHECK(cidr_parse(cases[i].net, &c) == 0);
        if (cidr_match(&c, cases[i].addr) != cases[i].match)
            fprintf(stderr, "  %s in %s: want %d\n", cases[i].addr, cases[i].net,
                    cases[i].match);
        CHECK(cidr_match(&c, cases[i].addr) == cases[i].match);
    }
    CHECK(cidr_match(&(struct cidr){ 0 }, NULL) == 0);
}

/* test_cidr_match_list - the default mynetworks, and an empty list. */
static void
test_cidr_match_list(void)
{
    struct cidr nets[2];

    CHECK(cidr_parse("127.0.0.0/8", &nets[0]) == 0);
    CHECK(cidr_parse("[::1]/128", &nets[1]) == 0);
    CHECK(cidr_match_list(nets, 2, "127.0.0.1") == 1);
    CHECK(cidr_match_list(nets, 2, "::1") == 1);
    CHECK(cidr_match_list(nets, 2, "192.0.2.1") == 0);
    CHECK(cidr_match_list(nets, 0, "127.0.0.1") == 0);
}

int
main(void)
{
    TEST_RUN(test_cidr_parse_good);
    TEST_RUN(test_cidr_parse_bad);
    TEST_RUN(test_cidr_match);
    TEST_RUN(test_cidr_match_list);
    TEST_END();
}
