/* dnsbl_test - DNSBL site specs (zone, filter, weight), filter matching and query names
 * for IPv4 and IPv6 clients (libcommon/dnsbl.c; no resolver). */
#include <string.h>

#include "dnsbl.h"
#include "test.h"

/* ip - a printable address as a struct dns_ip (the test's own input, always valid). */
static struct dns_ip
ip(const char *text)
{
    struct dns_ip a;

    memset(&a, 0, sizeof(a));
    CHECK(dns_wire_ip_parse(text, &a) == 0);
    return a;
}

/* test_dnsbl_site_parse - zone alone, with a weight, with a filter and a weight; the
 * zone is lower-cased and loses a final dot. */
static void
test_dnsbl_site_parse(void)
{
    struct dnsbl_site site;
    char              err[256];

    CHECK(dnsbl_site_parse("zen.spamhaus.org", &site, err, sizeof(err)) == 0);
    CHECK_STR(site.zone, "zen.spamhaus.org");
    CHECK(site.weight == 1 && !site.filtered);
    CHECK(dnsbl_site_parse("Zen.Spamhaus.ORG.*3", &site, err, sizeof(err)) == 0);
    CHECK_STR(site.zone, "zen.spamhaus.org");
    CHECK(site.weight == 3 && !site.filtered);
    CHECK(dnsbl_site_parse("bl.example=127.0.0.[2..11]*2", &site, err, sizeof(err)) == 0);
    CHECK_STR(site.zone, "bl.example");
    CHECK(site.weight == 2 && site.filtered);
    CHECK(dnsbl_site_parse("wl.example=127.0.[0..15].[2;4;9..10]*-5", &site, err,
                           sizeof(err)) == 0);
    CHECK(site.weight == -5 && site.filtered);
    CHECK(dnsbl_site_parse("bl.example=127.0.0.2", &site, err, sizeof(err)) == 0);
    CHECK(site.weight == 1 && site.filtered);
}

/* test_dnsbl_site_parse_errors - every malformed part is refused with a message. */
static void
test_dnsbl_site_parse_errors(void)
{
    static const char *const bad[] = {
        "", "*3", "=127.0.0.2", "bl.example*", "bl.example*x", "bl.example*1.5",
        "bl.example*1001", "bl.example*+2", "bl example", "bl.example=", "bl.example=127.0.0",
        "bl.example=127.0.0.2.1", "bl.example=127.0.0.256", "bl.example=127.0.0.[2..]",
        "bl.example=127.0.0.[5..2]", "bl.example=127.0.0.[2;]", "bl.example=127.0.0.[2",
        "bl.example=127.0.0.0002", "bl.example=127.0.0.2x*2", "1.2.3.4", "-bl.example",
    };
    struct dnsbl_site site;
    char              err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(dnsbl_site_parse(bad[i], &site, err, sizeof(err)) == -1);
        CHECK(err[0] != '\0');
    }
}

/* test_dnsbl_site_match - no filter: any IPv4 answer; a filter: every octet in its set;
 * an IPv6 answer never lists. */
static void
test_dnsbl_site_match(void)
{
    static const struct {
        const char *spec, *answer;
        int         listed;
    } cases[] = {
        { "bl.example", "127.0.0.2", 1 },
        { "bl.example", "10.9.8.7", 1 },
        { "bl.example", "::1", 0 },
        { "bl.example=127.0.0.[2..11]", "127.0.0.2", 1 },
        { "bl.example=127.0.0.[2..11]", "127.0.0.11", 1 },
        { "bl.example=127.0.0.[2..11]", "127.0.0.1", 0 },
        { "bl.example=127.0.0.[2..11]", "127.0.0.12", 0 },
        { "bl.example=127.0.0.[2..11]", "127.0.1.2", 0 },
        { "bl.example=127.[0;255].0.[2;4;9..10]", "127.255.0.4", 1 },
        { "bl.example=127.[0;255].0.[2;4;9..10]", "127.0.0.10", 1 },
        { "bl.example=127.[0;255].0.[2;4;9..10]", "127.0.0.3", 0 },
        { "bl.example=127.[0;255].0.[2;4;9..10]", "127.1.0.2", 0 },
        { "bl.example=127.0.0.2", "127.0.0.2", 1 },
        { "bl.example=127.0.0.2", "127.0.0.3", 0 },
    };
    struct dnsbl_site site;
    char              err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dns_ip a = ip(cases[i].answer);

        CHECK(dnsbl_site_parse(cases[i].spec, &site, err, sizeof(err)) == 0);
        CHECK(dnsbl_site_match(&site, &a) == cases[i].listed);
    }
}

/* test_dnsbl_query_name_ipv4 - octets reversed under the zone. */
static void
test_dnsbl_query_name_ipv4(void)
{
    struct dns_ip a = ip("192.0.2.99");
    char          out[DNS_NAME_MAX];

    CHECK(dnsbl_query_name(&a, "zen.spamhaus.org", out, sizeof(out)) == 0);
    CHECK_STR(out, "99.2.0.192.zen.spamhaus.org");
    a = ip("::ffff:127.0.0.2");       /* a mapped address is its IPv4 address */
    CHECK(dnsbl_query_name(&a, "bl.test", out, sizeof(out)) == 0);
    CHECK_STR(out, "2.0.0.127.bl.test");
    CHECK(dnsbl_query_name(&a, "bl.test", out, 12) == -1);
}

/* test_dnsbl_query_name_ipv6 - 32 nibbles, least significant first, under the zone; a
 * name longer than DNS allows is refused. */
static void
test_dnsbl_query_name_ipv6(void)
{
    struct dns_ip a = ip("2001:db8::1");
    char          out[DNS_NAME_MAX], zone[200];

    CHECK(dnsbl_query_name(&a, "bl.example", out, sizeof(out)) == 0);
    CHECK_STR(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example");
    memset(zone, 'a', sizeof(zone) - 1);
    zone[sizeof(zone) - 1] = '\0';
    CHECK(dnsbl_query_name(&a, zone, out, sizeof(out)) == -1);      /* 64 + 199 > 253 */
    CHECK(dnsbl_query_name(&a, "bl.example", out, 70) == -1);
}

int
main(void)
{
    TEST_RUN(test_dnsbl_site_parse);
    TEST_RUN(test_dnsbl_site_parse_errors);
    TEST_RUN(test_dnsbl_site_match);
    TEST_RUN(test_dnsbl_query_name_ipv4);
    TEST_RUN(test_dnsbl_query_name_ipv6);
    TEST_END();
}
