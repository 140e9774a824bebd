/* dns_test - the resolver on the event loop (libcommon/dns.c, linked with -lunbound).
 *
 * Only names that libunbound's default local zones answer by themselves are asked (the
 * loopback and private reverse zones, localhost), with the one forwarder on a port where
 * nobody listens: the test needs no network and shows that smtpd's usual lookups for
 * local and test clients take milliseconds. Then again with lan_zones (dns_lan_zones): the
 * private reverse zones are no longer answered here but asked of the silent forwarder,
 * while the loopback still is. Every loop run has a guard timer. */
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "dns.h"
#include "ev.h"
#include "test.h"

#define GUARD_MS 5000
#define FAST_MS  500               /* a local-zone answer; in practice a millisecond or two */

struct got {
    int             calls;
    enum dns_status status;
    int             rrtype;
    char            name[DNS_NAME_MAX];     /* PTR: the first name */
    struct dns_ip   ip;                     /* A/AAAA: the first address */
    uint64_t        ms;
};

static struct ev *loop;
static uint64_t   t0;
static int        outstanding;

/* got_answer - record the answer; stop the loop when nothing is outstanding. */
static void
got_answer(void *arg, const struct dns_answer *a)
{
    struct got *g = arg;

    g->calls++;
    g->status = a->status;
    g->rrtype = a->rrtype;
    g->ms = ev_now_ms() - t0;
    if (a->status == DNS_OK && a->n > 0) {
        if (a->rrtype == DNS_T_PTR)
            (void)dns_wire_ptr_parse(a->data[0], (size_t)a->len[0], g->name, sizeof(g->name));
        else
            (void)dns_wire_ip(a->rrtype, a->data[0], (size_t)a->len[0], &g->ip);
    }
    if (--outstanding == 0)
        ev_stop(loop);
}

static void
guard_cb(void *arg)
{
    (void)arg;
    ev_stop(loop);
}

/* ask - query, counting it as outstanding. */
static int
ask(const char *name, int rrtype, struct got *g)
{
    int id;

    memset(g, 0, sizeof(*g));
    id = dns_query(name, rrtype, got_answer, g);
    CHECK(id > 0);
    if (id > 0)
        outstanding++;
    return id;
}

/* run - until every outstanding answer came (or the guard). */
static void
run(void)
{
    uint64_t guard = ev_timer_add(loop, GUARD_MS, guard_cb, NULL);

    t0 = ev_now_ms();
    CHECK(ev_run(loop) == 0);
    ev_timer_del(loop, guard);
    CHECK(outstanding == 0);
}

/* test_dns_loopback - 127.0.0.1 and ::1 are "localhost" and back, at once. */
static void
test_dns_loopback(void)
{
    struct got    ptr4, ptr6, a, aaaa;
    struct dns_ip ip;

    ask("1.0.0.127.in-addr.arpa", DNS_T_PTR, &ptr4);
    ask("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
        DNS_T_PTR, &ptr6);
    ask("localhost", DNS_T_A, &a);
    ask("localhost", DNS_T_AAAA, &aaaa);
    run();
    CHECK(ptr4.calls == 1 && ptr4.status == DNS_OK && ptr4.rrtype == DNS_T_PTR);
    CHECK_STR(ptr4.name, "localhost");
    CHECK(ptr6.calls == 1 && ptr6.status == DNS_OK);
    CHECK_STR(ptr6.name, "localhost");
    CHECK(a.calls == 1 && a.status == DNS_OK);
    CHECK(dns_wire_ip_parse("127.0.0.1", &ip) == 0 && dns_wire_ip_equal(&a.ip, &ip));
    CHECK(aaaa.calls == 1 && aaaa.status == DNS_OK);
    CHECK(dns_wire_ip_parse("::1", &ip) == 0 && dns_wire_ip_equal(&aaaa.ip, &ip));
    CHECK(ptr4.ms < FAST_MS && ptr6.ms < FAST_MS && a.ms < FAST_MS && aaaa.ms < FAST_MS);
    fprintf(stderr, "  loopback PTR answered in %llu ms\n", (unsigned long long)ptr4.ms);
}

/* test_dns_private_reverse - RFC 1918 and documentation reverse zones: NXDOMAIN locally. */
static void
test_dns_private_reverse(void)
{
    static const char *const names[] = {
        "3.2.1.10.in-addr.arpa", "1.1.168.192.in-addr.arpa", "1.0.16.172.in-addr.arpa",
        "1.2.0.192.in-addr.arpa", "1.100.51.198.in-addr.arpa", "1.113.0.203.in-addr.arpa",
        "2.0.0.127.in-addr.arpa",
    };
    struct got g[sizeof(names) / sizeof(names[0])];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ask(names[i], DNS_T_PTR, &g[i]);
    run();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (g[i].calls != 1 || g[i].status != DNS_NXDOMAIN || g[i].ms >= FAST_MS)
            fprintf(stderr, "  %s: calls %d status %d after %llu ms\n", names[i], g[i].calls,
                    (int)g[i].status, (unsigned long long)g[i].ms);
        CHECK(g[i].calls == 1 && g[i].status == DNS_NXDOMAIN && g[i].ms < FAST_MS);
    }
}

/* test_dns_cancel - a cancelled query's callback never runs; others still answer; a
 * cancelled or finished id cancels nothing. */
static void
test_dns_cancel(void)
{
    struct got gone, kept;
    int        id;

    id = ask("1.0.0.127.in-addr.arpa", DNS_T_PTR, &gone);
    dns_cancel(id);
    outstanding--;
    ask("localhost", DNS_T_A, &kept);
    run();
    CHECK(gone.calls == 0);
    CHECK(kept.calls == 1 && kept.status == DNS_OK);
    dns_cancel(id);
    dns_cancel(0);
    dns_cancel(-1);
    /* The loop is idle again: the cancelled answer does not arrive late either. */
    ask("localhost", DNS_T_AAAA, &kept);
    run();
    CHECK(gone.calls == 0 && kept.calls == 1);
}

/* test_dns_lan_zones - lan_zones: a private reverse name goes to the forwarder (which
 * never answers, so no answer within FAST_MS), the loopback is still answered at once. */
static void
test_dns_lan_zones(void)
{
    struct got lan, ptr4;
    uint64_t   guard;
    int        id;

    id = ask("3.2.1.10.in-addr.arpa", DNS_T_PTR, &lan);
    ask("1.0.0.127.in-addr.arpa", DNS_T_PTR, &ptr4);
    guard = ev_timer_add(loop, FAST_MS, guard_cb, NULL);
    t0 = ev_now_ms();
    CHECK(ev_run(loop) == 0);
    ev_timer_del(loop, guard);
    CHECK(ptr4.calls == 1 && ptr4.status == DNS_OK);
    CHECK_STR(ptr4.name, "localhost");
    if (lan.calls != 0)
        fprintf(stderr, "  10.1.2.3: status %d after %llu ms\n", (int)lan.status,
                (unsigned long long)lan.ms);
    CHECK(lan.calls == 0 && outstanding == 1);
    dns_cancel(id);
    outstanding = 0;
}

int
main(void)
{
    static char *const servers[] = { "127.0.0.1@9" };    /* discard: nobody answers */
    char               err[256];

    loop = ev_new();
    if (dns_init(loop, servers, 1, 0, err, sizeof(err)) == -1) {
        fprintf(stderr, "dns_init: %s\n", err);
        return 1;
    }
    TEST_RUN(test_dns_loopback);
    TEST_RUN(test_dns_private_reverse);
    TEST_RUN(test_dns_cancel);
    dns_free();
    CHECK(dns_query("localhost", DNS_T_A, got_answer, NULL) == -1);
    if (dns_init(loop, servers, 1, 1, err, sizeof(err)) == -1) {
        fprintf(stderr, "dns_init with lan_zones: %s\n", err);
        return 1;
    }
    TEST_RUN(test_dns_lan_zones);
    dns_free();
    ev_free(&loop);
    TEST_END();
}
