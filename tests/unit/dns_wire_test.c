/* dns_wire_test - wire-format names, PTR and A/AAAA rdata, reverse names of IPv4 and IPv6
 * addresses, host-name validation, lookup outcomes, TLSA rdata (libcommon/dns_wire.c; links
 * without libunbound). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "dns_wire.h"
#include "test.h"

/* test_dns_wire_name - labels become a lower-cased dotted name; the root is ""; malformed
 * names (pointers, truncation, control octets, too long for out) are refused. */
static void
test_dns_wire_name(void)
{
    static const unsigned char name[] = { 2, 'M', 'x', 1, 'b', 4, 'T', 'E', 's', 't', 0 };
    static const unsigned char root[] = { 0 };
    static const unsigned char pointer[] = { 1, 'a', 0xc0, 12 };
    static const unsigned char truncated[] = { 5, 'a', 'b' };
    static const unsigned char no_end[] = { 1, 'a' };
    static const unsigned char ctl[] = { 2, 'a', '\n', 0 };
    static const unsigned char space[] = { 2, 'a', ' ', 0 };
    static const unsigned char high[] = { 2, 'a', 0xc3, 0 };
    char                       out[DNS_NAME_MAX];

    CHECK(dns_wire_name(name, sizeof(name), out, sizeof(out)) == (int)sizeof(name));
    CHECK_STR(out, "mx.b.test");
    CHECK(dns_wire_name(root, sizeof(root), out, sizeof(out)) == 1);
    CHECK_STR(out, "");
    CHECK(dns_wire_name(pointer, sizeof(pointer), out, sizeof(out)) == -1);
    CHECK(dns_wire_name(truncated, sizeof(truncated), out, sizeof(out)) == -1);
    CHECK(dns_wire_name(no_end, sizeof(no_end), out, sizeof(out)) == -1);
    CHECK(dns_wire_name(ctl, sizeof(ctl), out, sizeof(out)) == -1);
    CHECK(dns_wire_name(space, sizeof(space), out, sizeof(out)) == -1);
    CHECK(dns_wire_name(high, sizeof(high), out, sizeof(out)) == -1);
    CHECK(dns_wire_name(name, sizeof(name), out, 9) == -1);      /* "mx.b.test" needs 10 */
    CHECK(dns_wire_name(name, sizeof(name), out, 10) == (int)sizeof(name));
    CHECK(dns_wire_name(name, 0, out, sizeof(out)) == -1);
}

/* test_dns_wire_ptr_parse - a PTR rdata is one name with nothing after it. */
static void
test_dns_wire_ptr_parse(void)
{
    static const unsigned char ptr[] = { 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0 };
    static const unsigned char mail[] = { 4, 'M', 'A', 'I', 'L', 7, 'e', 'x', 'a', 'm',
                                          'p', 'l', 'e', 3, 'o', 'r', 'g', 0 };
    static const unsigned char trailing[] = { 1, 'a', 0, 0 };
    static const unsigned char odd[] = { 5, 'a', '_', 'b', '!', 'c', 0 };
    char                       out[DNS_NAME_MAX];

    CHECK(dns_wire_ptr_parse(ptr, sizeof(ptr), out, sizeof(out)) == 0);
    CHECK_STR(out, "localhost");
    CHECK(dns_wire_ptr_parse(mail, sizeof(mail), out, sizeof(out)) == 0);
    CHECK_STR(out, "mail.example.org");
    CHECK(dns_wire_ptr_parse(trailing, sizeof(trailing), out, sizeof(out)) == -1);
    CHECK(dns_wire_ptr_parse(ptr, sizeof(ptr) - 1, out, sizeof(out)) == -1);
    /* Decodes, but is no host name: the caller checks with dns_wire_hostname_ok(). */
    CHECK(dns_wire_ptr_parse(odd, sizeof(odd), out, sizeof(out)) == 0);
    CHECK(dns_wire_hostname_ok(out) == 0);
}

/* test_dns_wire_ptr_name_ipv4 - in-addr.arpa names, octets reversed. */
static void
test_dns_wire_ptr_name_ipv4(void)
{
    static const struct {
        const char *addr, *name;
    } t[] = {
        { "127.0.0.1", "1.0.0.127.in-addr.arpa" },
        { "192.0.2.10", "10.2.0.192.in-addr.arpa" },
        { "255.255.255.255", "255.255.255.255.in-addr.arpa" },
        { "0.0.0.0", "0.0.0.0.in-addr.arpa" },
        { "::ffff:198.51.100.7", "7.100.51.198.in-addr.arpa" },   /* IPv4-mapped */
    };
    struct dns_ip ip;
    char          out[DNS_PTR_NAME_MAX];

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        CHECK(dns_wire_ip_parse(t[i].addr, &ip) == 0);
        CHECK(ip.family == AF_INET);
        CHECK(dns_wire_ptr_name(&ip, out, sizeof(out)) == 0);
        CHECK_STR(out, t[i].name);
    }
    CHECK(dns_wire_ip_parse("192.0.2.10", &ip) == 0);
    CHECK(dns_wire_ptr_name(&ip, out, strlen("10.2.0.192.in-addr.arpa")) == -1);
    CHECK(dns_wire_ptr_name(&ip, out, strlen("10.2.0.192.in-addr.arpa") + 1) == 0);
}

/* test_dns_wire_ptr_name_ipv6 - ip6.arpa names: 32 nibbles, least significant first. */
static void
test_dns_wire_ptr_name_ipv6(void)
{
    struct dns_ip ip;
    char          out[DNS_PTR_NAME_MAX];

    CHECK(dns_wire_ip_parse("::1", &ip) == 0);
    CHECK(ip.family == AF_INET6);
    CHECK(dns_wire_ptr_name(&ip, out, sizeof(out)) == 0);
    CHECK_STR(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
    CHECK(dns_wire_ip_parse("2001:db8::567:89ab", &ip) == 0);
    CHECK(dns_wire_ptr_name(&ip, out, sizeof(out)) == 0);
    /* As in RFC 3596 2.5's example (4321:0:1:2:3:4:567:89ab), in the documentation prefix. */
    CHECK_STR(out, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    CHECK(strlen(out) == 72);
    CHECK(dns_wire_ptr_name(&ip, out, 72) == -1);
    CHECK(dns_wire_ptr_name(&ip, out, 73) == 0);
    ip.family = AF_UNIX;
    CHECK(dns_wire_ptr_name(&ip, out, sizeof(out)) == -1);
}

/* test_dns_wire_ip - A/AAAA rdata and printable addresses compare as the same address. */
static void
test_dns_wire_ip(void)
{
    static const unsigned char a4[] = { 127, 0, 0, 1 };
    static const unsigned char a6[16] = { [15] = 1 };
    static const unsigned char mapped[16] = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 1 };
    struct dns_ip              rr, client;
    struct sockaddr_storage    ss;

    CHECK(dns_wire_ip(DNS_T_A, a4, sizeof(a4), &rr) == 0);
    CHECK(dns_wire_ip_parse("127.0.0.1", &client) == 0);
    CHECK(dns_wire_ip_equal(&rr, &client) == 1);
    CHECK(dns_wire_ip_parse("::ffff:127.0.0.1", &client) == 0);
    CHECK(dns_wire_ip_equal(&rr, &client) == 1);
    CHECK(dns_wire_ip_parse("127.0.0.2", &client) == 0);
    CHECK(dns_wire_ip_equal(&rr, &client) == 0);
    CHECK(dns_wire_ip(DNS_T_AAAA, a6, sizeof(a6), &rr) == 0);
    CHECK(dns_wire_ip_parse("::1", &client) == 0);
    CHECK(dns_wire_ip_equal(&rr, &client) == 1);
    CHECK(dns_wire_ip_parse("127.0.0.1", &client) == 0);
    CHECK(dns_wire_ip_equal(&rr, &client) == 0);
    /* An AAAA record is taken as it is: a mapped address in DNS is no A record. */
    CHECK(dns_wire_ip(DNS_T_AAAA, mapped, sizeof(mapped), &rr) == 0);
    CHECK(rr.family == AF_INET6 && dns_wire_ip_equal(&rr, &client) == 0);
    CHECK(dns_wire_ip(DNS_T_A, a6, sizeof(a6), &rr) == -1);
    CHECK(dns_wire_ip(DNS_T_AAAA, a4, sizeof(a4), &rr) == -1);
    CHECK(dns_wire_ip(DNS_T_MX, a4, sizeof(a4), &rr) == -1);
    CHECK(dns_wire_ip_parse("localhost", &client) == -1);
    CHECK(dns_wire_ip_parse("[127.0.0.1]", &client) == -1);
    CHECK(dns_wire_ip_parse("", &client) == -1);
    CHECK(dns_wire_ip_parse("127.0.0.1", &client) == 0);
    CHECK(dns_wire_ip_sockaddr(&client, 25, &ss) == sizeof(struct sockaddr_in));
    CHECK(ss.ss_family == AF_INET && ntohs(((struct sockaddr_in *)&ss)->sin_port) == 25);
}

/* test_dns_wire_hostname_ok - LDH labels only; an address-like or odd name is no name. */
static void
test_dns_wire_hostname_ok(void)
{
    static const struct {
        const char *name;
        int         ok;
    } t[] = {
        { "localhost", 1 },
        { "mail.example.org", 1 },
        { "a-b.c0.example", 1 },
        { "123.example", 1 },
        { "x", 1 },
        { "", 0 },
        { "1.2.3.4", 0 },
        { "host.123", 0 },
        { "a..b", 0 },
        { ".a", 0 },
        { "a.", 0 },
        { "-a.example", 0 },
        { "a-.example", 0 },
        { "under_score.example", 0 },
        { "sp ace.example", 0 },
        { "bang!.example", 0 },
        { "a/b.example", 0 },
    };
    char long_label[80], long_name[256];

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (dns_wire_hostname_ok(t[i].name) != t[i].ok) {
            fprintf(stderr, "  hostname \"%s\": expected %d\n", t[i].name, t[i].ok);
            CHECK(0);
        }
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    CHECK(dns_wire_hostname_ok(long_label) == 0);
    long_label[63] = '\0';
    CHECK(dns_wire_hostname_ok(long_label) == 1);
    /* 4 x 63 + 3 dots = 255 > 253 */
    memset(long_name, 'a', 255);
    long_name[63] = long_name[127] = long_name[191] = '.';
    long_name[255] = '\0';
    CHECK(dns_wire_hostname_ok(long_name) == 0);
    long_name[249] = '\0';                      /* 249: the fourth label cut to 57 */
    CHECK(dns_wire_hostname_ok(long_name) == 1);
}

/* test_dns_wire_classify - resolver outcomes as statuses. */
static void
test_dns_wire_classify(void)
{
    CHECK(dns_wire_classify(0, 0, 0, 1) == DNS_OK);
    CHECK(dns_wire_classify(0, 0, 0, 0) == DNS_NODATA);
    CHECK(dns_wire_classify(0, 3, 1, 0) == DNS_NXDOMAIN);
    CHECK(dns_wire_classify(0, 2, 0, 0) == DNS_TEMP);      /* SERVFAIL */
    CHECK(dns_wire_classify(0, 5, 0, 0) == DNS_TEMP);      /* REFUSED */
    CHECK(dns_wire_classify(-8, 0, 0, 0) == DNS_TEMP);     /* resolver error */
}

/* test_dns_wire_tlsa - the three octets and the data; fewer than four octets refused. */
static void
test_dns_wire_tlsa(void)
{
    static const unsigned char rd[] = { 3, 1, 1, 0xde, 0xad };
    struct dns_tlsa            t;

    CHECK(dns_wire_tlsa_parse(rd, sizeof(rd), &t) == 0);
    CHECK(t.usage == 3 && t.selector == 1 && t.mtype == 1);
    CHECK(t.data == rd + 3 && t.len == 2);
    CHECK(dns_wire_tlsa_parse(rd, 3, &t) == -1);
    CHECK(dns_wire_tlsa_parse(rd, 0, &t) == -1);
}

int
main(void)
{
    TEST_RUN(test_dns_wire_name);
    TEST_RUN(test_dns_wire_ptr_parse);
    TEST_RUN(test_dns_wire_ptr_name_ipv4);
    TEST_RUN(test_dns_wire_ptr_name_ipv6);
    TEST_RUN(test_dns_wire_ip);
    TEST_RUN(test_dns_wire_hostname_ok);
    TEST_RUN(test_dns_wire_classify);
    TEST_RUN(test_dns_wire_tlsa);
    TEST_END();
}
