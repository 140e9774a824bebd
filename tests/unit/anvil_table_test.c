/* anvil_table_test - anvil's per-client counters: fixed windows, sessions per peer, a lost
 * peer, the cap on entries (eviction and failing open) and the sweep.
 *
 * The module is pure, so it is compiled into the test by including its source (the generic
 * unit-test rule links only the libraries); time is whatever the test says it is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemons/anvil/anvil_table.c"
#include "test.h"

static const uint8_t test_key[ANVIL_TABLE_KEY_LEN] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
};

/* ev - one event; returns its counts (all ones if the call failed). */
static struct anvil_counts
ev(struct anvil_table *t, uint32_t peer, uint32_t event, const char *client, uint64_t now)
{
    struct anvil_counts c;

    if (anvil_table_event(t, peer, event, client, now, &c) == -1) {
        c.concurrent = UINT32_MAX;
        c.rate = UINT32_MAX;
    }
    return c;
}

/* clients - entries in the table now. */
static uint64_t
clients(const struct anvil_table *t)
{
    struct anvil_table_stats st;

    anvil_table_get_stats(t, &st);
    return st.clients;
}

/* test_anvil_table_siphash - the reference vectors of SipHash-2-4 (key 00..0f, message
 * 00..len-1). */
static void
test_anvil_table_siphash(void)
{
    static const struct {
        size_t   len;
        uint64_t want;
    } cases[] = {
        { 0, 0x726fdb47dd0e0e31ULL },
        { 8, 0x93f5f5799a932462ULL },
        { 15, 0xa129ca6149be45e5ULL },
    };
    uint8_t msg[64];

    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK(anvil_siphash(test_key, msg, cases[i].len) == cases[i].want);
}

/* test_anvil_table_window - rates count within a fixed window that starts with the
 * client's first event and restarts with the first event a whole unit later. */
static void
test_anvil_table_window(void)
{
    struct anvil_table *t = anvil_table_new(1000, 100, test_key);
    struct anvil_counts c;

    c = ev(t, 1, IPC_ANVIL_CONNECT, "192.0.2.1", 5000);
    CHECK(c.concurrent == 1 && c.rate == 1);
    c = ev(t, 1, IPC_ANVIL_CONNECT, "192.0.2.1", 5500);
    CHECK(c.concurrent == 2 && c.rate == 2);
    c = ev(t, 1, IPC_ANVIL_MAIL, "192.0.2.1", 5999);
    CHECK(c.concurrent == 2 && c.rate == 1);
    c = ev(t, 1, IPC_ANVIL_MAIL, "192.0.2.1", 5999);
    CHECK(c.rate == 2);
    c = ev(t, 1, IPC_ANVIL_RCPT, "192.0.2.1", 5999);
    CHECK(c.rate == 1);
    /* a unit after the first event: every rate starts again, the sessions stay */
    c = ev(t, 1, IPC_ANVIL_CONNECT, "192.0.2.1", 6000);
    CHECK(c.concurrent == 3 && c.rate == 1);
    c = ev(t, 1, IPC_ANVIL_MAIL, "192.0.2.1", 6001);
    CHECK(c.rate == 1);
    /* another client has its own window */
    c = ev(t, 1, IPC_ANVIL_MAIL, "2001:db8::1", 6001);
    CHECK(c.concurrent == 0 && c.rate == 1);
    c = ev(t, 1, IPC_ANVIL_MAIL, "192.0.2.1", 6999);
    CHECK(c.rate == 2);
    anvil_table_free(&t);
    CHECK(t == NULL);
}

/* test_anvil_table_auth - AUTH_FAIL counts, AUTH_QUERY only reads (and creates nothing). */
static void
test_anvil_table_auth(void)
{
    struct anvil_table *t = anvil_table_new(60000, 100, test_key);
    struct anvil_counts c;

    c = ev(t, 1, IPC_ANVIL_AUTH_QUERY, "192.0.2.7", 0);
    CHECK(c.concurrent == 0 && c.rate == 0);
    CHECK(clients(t) == 0);
    for (int i = 1; i <= 3; i++) {
        c = ev(t, 1, IPC_ANVIL_AUTH_FAIL, "192.0.2.7", 10);
        CHECK(c.rate == (uint32_t)i);
    }
    c = ev(t, 2, IPC_ANVIL_AUTH_QUERY, "192.0.2.7", 20);
    CHECK(c.rate == 3);
    c = ev(t, 2, IPC_ANVIL_AUTH_QUERY, "192.0.2.7", 20);
    CHECK(c.rate == 3);
    /* the failures and the other rates are apart */
    c = ev(t, 1, IPC_ANVIL_MAIL, "192.0.2.7", 30);
    CHECK(c.rate == 1);
    c = ev(t, 1, IPC_ANVIL_AUTH_QUERY, "192.0.2.7", 60010);
    CHECK(c.rate == 0);
    anvil_table_free(&t);
}

/* test_anvil_table_peers - sessions are counted per peer: a peer ends only its own, and a
 * lost peer takes all of its own away and nobody else's. */
static void
test_anvil_table_peers(void)
{
    struct anvil_table *t = anvil_table_new(60000, 100, test_key);
    struct anvil_counts c;

    ev(t, 1, IPC_ANVIL_CONNECT, "192.0.2.1", 0);
    ev(t, 1, IPC_ANVIL_CONNECT, "192.0.2.1", 0);
    c = ev(t, 2, IPC_ANVIL_CONNECT, "192.0.2.1", 0);
    CHECK(c.concurrent == 3);
    ev(t, 2, IPC_ANVIL_CONNECT, "192.0.2.2", 0);
    /* peer 3 has no session of this client: its DISCONNECT changes nothing */
    c = ev(t, 3, IPC_ANVIL_DISCONNECT, "192.0.2.1", 1);
    CHECK(c.concurrent == 3);
    c = ev(t, 2, IPC_ANVIL_DISCONNECT, "192.0.2.1", 1);
    CHECK(c.concurrent == 2);
    c = ev(t, 2, IPC_ANVIL_DISCONNECT, "192.0.2.1", 1);
    CHECK(c.concurrent == 2);
    /* an unknown client: nothing is created */
    c = ev(t, 1, IPC_ANVIL_DISCONNECT, "192.0.2.99", 1);
    CHECK(c.concurrent == 0);
    CHECK(clients(t) == 2);

    anvil_table_peer_gone(t, 1);
    c = ev(t, 1, IPC_ANVIL_AUTH_QUERY, "192.0.2.1", 2);
    CHECK(c.concurrent == 0);
    c = ev(t, 1, IPC_ANVIL_AUTH_QUERY, "192.0.2.2", 2);
    CHECK(c.concurrent == 1);
    /* the rates outlive the sessions */
    c = ev(t, 4, IPC_ANVIL_CONNECT, "192.0.2.1", 3);
    CHECK(c.concurrent == 1 && c.rate == 4);
    anvil_table_peer_gone(t, 2);
    anvil_table_peer_gone(t, 4);
    c = ev(t, 1, IPC_ANVIL_AUTH_QUERY, "192.0.2.2", 4);
    CHECK(c.concurrent == 0);
    c = ev(t, 1, IPC_ANVIL_AUTH_QUERY, "192.0.2.1", 4);
    CHECK(c.concurrent == 0);
    CHECK(t->busy.head == NULL);
    anvil_table_free(&t);
}

/* test_anvil_table_evict - at the cap a new client replaces the least recently used idle
 * one. */
static void
test_anvil_table_evict(void)
{
    struct anvil_table      *t = anvil_table_new(60000, 3, test_key);
    struct anvil_table_stats st;
    struct anvil_counts      c;

    ev(t, 1, IPC_ANVIL_MAIL, "10.0.0.1", 0);
    ev(t, 1, IPC_ANVIL_MAIL, "10.0.0.2", 1);
    ev(t, 1, IPC_ANVIL_MAIL, "10.0.0.3", 2);
    ev(t, 1, IPC_ANVIL_MAIL, "10.0.0.1", 3);          /* .1 is the most recent now */
    ev(t, 1, IPC_ANVIL_MAIL, "10.0.0.4", 4);          /* .2 goes */
    anvil_table_get_stats(t, &st);
    CHECK(st.clients == 3 && st.evictions == 1 && st.full == 0);
    c = ev(t, 1, IPC_ANVIL_AUTH_QUERY, "10.0.0.1", 5);
    CHECK(anvil_find(t, "10.0.0.1", 8) != NULL);
    CHECK(anvil_find(t, "10.0.0.2", 8) == NULL);
    c = ev(t, 1, IPC_ANVIL_MAIL, "10.0.0.1", 6);
    CHECK(c.rate == 3);
    /* many more addresses than the cap: memory stays at the cap */
    for (int i = 0; i < 1000; i++) {
        char addr[64];

        snprintf(addr, sizeof(addr), "2001:db8::%x", i);
        c = ev(t, 1, IPC_ANVIL_RCPT, addr, 10);
        CHECK(c.rate == 1);
        CHECK(clients(t) <= 3);
    }
    anvil_table_get_stats(t, &st);
    CHECK(st.clients == 3 && st.evictions == 1001);
    anvil_table_free(&t);
}

/* test_anvil_table_full - when every entry has sessions nothing is evicted: the new
 * client is not counted and gets zeros (fail open). */
static void
test_anvil_table_full(void)
{
    struct anvil_table      *t = anvil_table_new(60000, 2, test_key);
    struct anvil_table_stats st;
    struct anvil_counts      c;

    ev(t, 1, IPC_ANVIL_CONNECT, "10.0.0.1", 0);
    ev(t, 1, IPC_ANVIL_CONNECT, "10.0.0.2", 0);
    c = ev(t, 1, IPC_ANVIL_CONNECT, "10.0.0.3", 0);
    CHECK(c.concurrent == 0 && c.rate == 0);
    c = ev(t, 1, IPC_ANVIL_CONNECT, "10.0.0.3", 0);
    CHECK(c.concurrent == 0 && c.rate == 0);
    anvil_table_get_stats(t, &st);
    CHECK(st.clients == 2 && st.full == 2 && st.evictions == 0);
    /* .1's session ends: .1 is idle and may make room */
    ev(t, 1, IPC_ANVIL_DISCONNECT, "10.0.0.1", 1);
    c = ev(t, 1, IPC_ANVIL_CONNECT, "10.0.0.3", 2);
    CHECK(c.concurrent == 1 && c.rate == 1);
    CHECK(anvil_find(t, "10.0.0.1", 8) == NULL);
    c = ev(t, 1, IPC_ANVIL_CONNECT, "10.0.0.2", 3);
    CHECK(c.concurrent == 2 && c.rate == 2);
    anvil_table_free(&t);
}

/* test_anvil_table_sweep - idle clients whose unit is over go; clients with sessions and
 * clients within their unit stay. */
static void
test_anvil_table_sweep(void)
{
    struct anvil_table      *t = anvil_table_new(1000, 100, test_key);
    struct anvil_table_stats st;
    struct anvil_counts      c;

    ev(t, 1, IPC_ANVIL_MAIL, "10.0.0.1", 0);           /* idle, unit over at 1000 */
    ev(t, 1, IPC_ANVIL_CONNECT, "10.0.0.2", 0);        /* busy */
    ev(t, 1, IPC_ANVIL_MAIL, "10.0.0.3", 600);         /* idle, unit over at 1600 */
    ev(t, 1, IPC_ANVIL_CONNECT, "10.0.0.4", 0);
    ev(t, 1, IPC_ANVIL_DISCONNECT, "10.0.0.4", 100);   /* idle again, unit over at 1000 */
    CHECK(anvil_table_sweep(t, 999) == 0);
    CHECK(anvil_table_sweep(t, 1000) == 2);
    CHECK(anvil_find(t, "10.0.0.1", 8) == NULL);
    CHECK(anvil_find(t, "10.0.0.4", 8) == NULL);
    CHECK(anvil_find(t, "10.0.0.2", 8) != NULL);
    CHECK(anvil_find(t, "10.0.0.3", 8) != NULL);
    CHECK(anvil_table_sweep(t, 5000) == 1);
    anvil_table_get_stats(t, &st);
    CHECK(st.clients == 1 && st.swept == 3);
    /* the busy one is still counted, from a fresh window */
    c = ev(t, 1, IPC_ANVIL_CONNECT, "10.0.0.2", 5000);
    CHECK(c.concurrent == 2 && c.rate == 1);
    ev(t, 1, IPC_ANVIL_DISCONNECT, "10.0.0.2", 5000);
    ev(t, 1, IPC_ANVIL_DISCONNECT, "10.0.0.2", 5000);
    CHECK(anvil_table_sweep(t, 5999) == 0);
    CHECK(anvil_table_sweep(t, 6000) == 1);
    CHECK(clients(t) == 0);
    anvil_table_free(&t);
}

/* test_anvil_table_bad - unknown events and impossible addresses are refused, not
 * counted. */
static void
test_anvil_table_bad(void)
{
    struct anvil_table *t = anvil_table_new(60000, 100, test_key);
    struct anvil_counts c;
    char                longest[ANVIL_TABLE_CLIENT_MAX + 2];

    CHECK(anvil_table_event(t, 1, 0, "10.0.0.1", 0, &c) == -1);
    CHECK(anvil_table_event(t, 1, 7, "10.0.0.1", 0, &c) == -1);
    CHECK(anvil_table_event(t, 1, IPC_ANVIL_CONNECT, "", 0, &c) == -1);
    memset(longest, 'a', sizeof(longest));
    longest[ANVIL_TABLE_CLIENT_MAX + 1] = '\0';
    CHECK(anvil_table_event(t, 1, IPC_ANVIL_CONNECT, longest, 0, &c) == -1);
    CHECK(c.concurrent == 0 && c.rate == 0);
    CHECK(clients(t) == 0);
    longest[ANVIL_TABLE_CLIENT_MAX] = '\0';
    CHECK(anvil_table_event(t, 1, IPC_ANVIL_CONNECT, longest, 0, &c) == 0);
    CHECK(c.concurrent == 1);
    CHECK(clients(t) == 1);
    anvil_table_free(&t);
}

int
main(void)
{
    TEST_RUN(test_anvil_table_siphash);
    TEST_RUN(test_anvil_table_window);
    TEST_RUN(test_anvil_table_auth);
    TEST_RUN(test_anvil_table_peers);
    TEST_RUN(test_anvil_table_evict);
    TEST_RUN(test_anvil_table_full);
    TEST_RUN(test_anvil_table_sweep);
    TEST_RUN(test_anvil_table_bad);
    TEST_END();
}
