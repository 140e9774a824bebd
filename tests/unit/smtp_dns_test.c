/* smtp_dns_test - next-hop syntax, MX record parsing, MX ordering and shuffling, null MX,
 * address records, TLSA usability for DANE (daemons/smtp/smtp_dns.c, included here since
 * unit tests link only the libraries; the generic DNS helpers are tested in
 * dns_wire_test.c). */
#include <arpa/inet.h>
#include <stdint.h>

#include "../../daemons/smtp/smtp_dns.c"
#include "test.h"

/* test_smtp_dns_nexthop - every next-hop form, default ports, malformed ones. */
static void
test_smtp_dns_nexthop(void)
{
    static const struct {
        const char *in;
        int         lmtp, rc, kind;
        const char *host;
        unsigned    port;
    } t[] = {
        { "b.test", 0, 0, SMTP_NH_MX, "b.test", 25 },
        { "b.test:2525", 0, 0, SMTP_NH_MX, "b.test", 2525 },
        { "[mx.b.test]", 0, 0, SMTP_NH_HOST, "mx.b.test", 25 },
        { "[mx.b.test]:587", 0, 0, SMTP_NH_HOST, "mx.b.test", 587 },
        { "[192.0.2.1]:25", 0, 0, SMTP_NH_HOST, "192.0.2.1", 25 },
        { "[ipv6:2001:db8::1]:26", 0, 0, SMTP_NH_HOST, "ipv6:2001:db8::1", 26 },
        { "[lmtp.test]", 1, 0, SMTP_NH_HOST, "lmtp.test", 24 },
        { "unix:/run/lmtp", 1, 0, SMTP_NH_UNIX, "localhost", 24 },
        { "[x]:0", 0, -1, 0, "", 0 },
        { "[x]:70000", 0, -1, 0, "", 0 },
        { "[x", 0, -1, 0, "", 0 },
        { "[x]y", 0, -1, 0, "", 0 },
        { "", 0, -1, 0, "", 0 },
        { "a b", 0, -1, 0, "", 0 },
        { "unix:relative", 1, -1, 0, "", 0 },
        { "b.test:", 0, -1, 0, "", 0 },
    };
    struct smtp_nexthop nh;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int rc = smtp_dns_nexthop_parse(t[i].in, t[i].lmtp, &nh);

        CHECK(rc == t[i].rc);
        if (rc == 0 && t[i].rc == 0) {
            CHECK((int)nh.kind == t[i].kind);
            CHECK_STR(nh.host, t[i].host);
            CHECK(nh.port == t[i].port);
        } else if (rc != t[i].rc) {
            fprintf(stderr, "  nexthop \"%s\": rc %d\n", t[i].in, rc);
        }
    }
    CHECK(smtp_dns_nexthop_parse("unix:/run/lmtp", 1, &nh) == 0);
    CHECK_STR(nh.path, "/run/lmtp");
}

/* test_smtp_dns_mx_parse - wire-format MX rdata, the null MX, malformed data. */
static void
test_smtp_dns_mx_parse(void)
{
    static const unsigned char mx[] = { 0, 10, 2, 'M', 'x', 1, 'b', 4, 't', 'e', 's', 't', 0 };
    static const unsigned char null_mx[] = { 0, 0, 0 };
    static const unsigned char bad_len[] = { 0, 10, 5, 'm', 'x', 0 };
    static const unsigned char pointer[] = { 0, 10, 0xc0, 12 };
    static const unsigned char trailing[] = { 0, 10, 1, 'a', 0, 0 };
    struct smtp_mx       m;

    CHECK(smtp_dns_mx_parse(mx, sizeof(mx), &m) == 0);
    CHECK(m.pref == 10);
    CHECK_STR(m.host, "mx.b.test");
    CHECK(smtp_dns_mx_parse(null_mx, sizeof(null_mx), &m) == 0);
    CHECK(m.pref == 0 && m.host[0] == '\0');
    CHECK(smtp_dns_mx_null(&m, 1) == 1);
    CHECK(smtp_dns_mx_parse(bad_len, sizeof(bad_len), &m) == -1);
    CHECK(smtp_dns_mx_parse(pointer, sizeof(pointer), &m) == -1);
    CHECK(smtp_dns_mx_parse(trailing, sizeof(trailing), &m) == -1);
    CHECK(smtp_dns_mx_parse(mx, 2, &m) == -1);
}

static uint32_t seq_state;

/* seq_rnd - a deterministic "random" source for the shuffle. */
static uint32_t
seq_rnd(void *arg)
{
    (void)arg;
    seq_state = seq_state * 1103515245u + 12345u;
    return seq_state >> 8;
}

/* test_smtp_dns_mx_order - by preference; equal preferences shuffled (every order seen);
 * duplicates dropped, keeping the best preference. */
static void
test_smtp_dns_mx_order(void)
{
    struct smtp_mx mx[5];
    int            first_seen[3] = { 0, 0, 0 };

    for (int round = 0; round < 200; round++) {
        size_t n;

        memset(mx, 0, sizeof(mx));
        snprintf(mx[0].host, sizeof(mx[0].host), "c30");
        mx[0].pref = 30;
        snprintf(mx[1].host, sizeof(mx[1].host), "a10");
        mx[1].pref = 10;
        snprintf(mx[2].host, sizeof(mx[2].host), "b10");
        mx[2].pref = 10;
        snprintf(mx[3].host, sizeof(mx[3].host), "d10");
        mx[3].pref = 10;
        snprintf(mx[4].host, sizeof(mx[4].host), "c30");
        mx[4].pref = 5;
        n = smtp_dns_mx_order(mx, 5, seq_rnd, NULL);
        CHECK(n == 4);
        CHECK_STR(mx[0].host, "c30");          /* the duplicate at pref 5 wins */
        CHECK(mx[0].pref == 5);
        CHECK(mx[1].pref == 10 && mx[2].pref == 10 && mx[3].pref == 10);
        first_seen[mx[1].host[0] - 'a' == 0 ? 0 : mx[1].host[0] == 'b' ? 1 : 2]++;
    }
    for (int k = 0; k < 3; k++)
        CHECK(first_seen[k] > 20);             /* each equal-preference host leads often */
}

/* test_smtp_dns_mx_null_mixed - "." among real MX records is dropped, not a null MX. */
static void
test_smtp_dns_mx_null_mixed(void)
{
    struct smtp_mx mx[2];

    memset(mx, 0, sizeof(mx));
    mx[1].pref = 10;
    snprintf(mx[1].host, sizeof(mx[1].host), "mx.b.test");
    CHECK(smtp_dns_mx_null(mx, 2) == 0);
    CHECK(smtp_dns_mx_clean(mx, 2) == 1);
    CHECK_STR(mx[0].host, "mx.b.test");
}

/* test_smtp_dns_addresses - literals and A/AAAA rdata become socket addresses. */
static void
test_smtp_dns_addresses(void)
{
    static const unsigned char a4[] = { 192, 0, 2, 7 };
    static const unsigned char a6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
    struct smtp_addr           a;

    CHECK(smtp_dns_literal("192.0.2.1", 25, &a) == 0);
    CHECK(a.sa.ss_family == AF_INET);
    CHECK(ntohs(((struct sockaddr_in *)&a.sa)->sin_port) == 25);
    CHECK(smtp_dns_literal("ipv6:2001:db8::1", 26, &a) == 0);
    CHECK(a.sa.ss_family == AF_INET6);
    CHECK_STR(a.ip, "2001:db8::1");
    CHECK(smtp_dns_literal("mx.b.test", 25, &a) == -1);
    CHECK(smtp_dns_literal("ipv6:192.0.2.1", 25, &a) == -1);
    CHECK(smtp_dns_addr(DNS_T_A, a4, 4, "mx", 25, &a) == 0);
    CHECK_STR(a.ip, "192.0.2.7");
    CHECK_STR(a.host, "mx");
    CHECK(smtp_dns_addr(DNS_T_AAAA, a6, 16, "mx", 25, &a) == 0);
    CHECK_STR(a.ip, "2001:db8::1");
    CHECK(a.sa.ss_family == AF_INET6 && a.salen == sizeof(struct sockaddr_in6));
    CHECK(ntohs(((struct sockaddr_in6 *)&a.sa)->sin6_port) == 25);
    CHECK(smtp_dns_addr(DNS_T_A, a6, 16, "mx", 25, &a) == -1);
}

/* test_smtp_dns_tlsa_usable - RFC 7672 3.1: DANE-TA and DANE-EE with known selectors and
 * digests of the right length are kept, in order; PKIX usages, unknown values, wrong digest
 * lengths and malformed records are dropped; the count is bounded. */
static void
test_smtp_dns_tlsa_usable(void)
{
    static unsigned char ee311[3 + 32] = { 3, 1, 1 }, ta201[3 + 32] = { 2, 0, 1 };
    static unsigned char ee312[3 + 64] = { 3, 1, 2 }, ta210[3 + 5] = { 2, 1, 0, 1, 2, 3, 4, 5 };
    static unsigned char pkix_ee[3 + 32] = { 1, 1, 1 }, pkix_ta[3 + 32] = { 0, 0, 1 };
    static unsigned char short311[3 + 31] = { 3, 1, 1 }, long312[3 + 65] = { 3, 1, 2 };
    static unsigned char sel2[3 + 32] = { 3, 2, 1 }, mtype3[3 + 32] = { 3, 1, 3 };
    static unsigned char usage4[3 + 32] = { 4, 1, 1 }, nodata[3] = { 3, 1, 0 };
    unsigned char *const rd[] = { pkix_ee, ee311, short311, ta201, pkix_ta, ee312, long312,
                                  sel2, mtype3, usage4, nodata, ta210 };
    const int            len[] = { 35, 35, 34, 35, 35, 67, 68, 35, 35, 35, 3, 8 };
    struct tls_tlsa      out[SMTP_DNS_TLSA_MAX];
    size_t               n = smtp_dns_tlsa_usable(rd, len, 12, out, SMTP_DNS_TLSA_MAX);

    ee311[3] = 0xaa;
    CHECK(n == 4);
    if (n == 4) {
        CHECK(out[0].usage == 3 && out[0].selector == 1 && out[0].mtype == 1);
        CHECK(out[0].data == ee311 + 3 && out[0].len == 32 && out[0].data[0] == 0xaa);
        CHECK(out[1].usage == 2 && out[1].selector == 0 && out[1].mtype == 1);
        CHECK(out[2].mtype == 2 && out[2].len == 64);
        CHECK(out[3].usage == 2 && out[3].selector == 1 && out[3].mtype == 0);
        CHECK(out[3].len == 5);
    }
    /* Only unusable records: none, and the caller knows there were some (encrypt). */
    CHECK(smtp_dns_tlsa_usable(rd, len, 1, out, SMTP_DNS_TLSA_MAX) == 0);
    CHECK(smtp_dns_tlsa_usable(rd, len, 12, out, 2) == 2);
    CHECK(smtp_dns_tlsa_usable(rd, len, 0, out, SMTP_DNS_TLSA_MAX) == 0);
}

int
main(void)
{
    TEST_RUN(test_smtp_dns_nexthop);
    TEST_RUN(test_smtp_dns_mx_parse);
    TEST_RUN(test_smtp_dns_mx_order);
    TEST_RUN(test_smtp_dns_mx_null_mixed);
    TEST_RUN(test_smtp_dns_addresses);
    TEST_RUN(test_smtp_dns_tlsa_usable);
    TEST_END();
}
