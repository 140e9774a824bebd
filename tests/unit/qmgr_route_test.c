/* qmgr_route_test - routing decisions: (recipient, settings, maps) -> transport, next hop,
 * TLS level; and the destination feedback rules of qmgr_dest.
 *
 * The modules are pure, so they are compiled into the test by including their sources
 * (the generic unit-test rule links only the libraries); the maps are tables in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../daemons/qmgr/qmgr_route.c"
#include "../../daemons/qmgr/qmgr_dest.c"
#include "test.h"

/* An in-memory map: NULL-terminated pairs; a key "!error" makes every lookup fail. */
struct test_map {
    const char *const *kv;
    int                fail;
    int                lookups;
};

/* test_lookup - qmgr_route_lookup_fn over a test_map (keys compared case-insensitively,
 * as map_lookup lower-cases them). */
static int
test_lookup(void *arg, const char *key, char *val, size_t vallen)
{
    struct test_map *m = arg;
    size_t           i;

    m->lookups++;
    if (m->fail)
        return -1;
    for (i = 0; m->kv[i] != NULL; i += 2) {
        if (strcasecmp(m->kv[i], key) == 0) {
            snprintf(val, vallen, "%s", m->kv[i + 1]);
            return 1;
        }
    }
    return 0;
}

static char *const test_locals[] = { "local.test", "Other.Local", NULL };

static const char *const test_transport_kv[] = {
    "special@b.example",  "smtp:[10.0.0.9]:2525",
    "b.example",          "smtp:mx.b.example",
    ".sub.example",       "lmtp:unix:/run/dovecot/lmtp",
    "lmtp.example",       "lmtp:[192.0.2.7]:24",
    "v6.example",         "smtp:[::1]:2526",
    "plain.example",      "smtp",
    "empty.example",      "smtp:",
    "bracket.example",    "smtp:[relay.example]",
    "hostport.example",   "smtp:relay.example:587",
    "here.example",       "local",
    "dovecot@local.test", "lmtp:unix:/run/dovecot/lmtp",
    "bad1.example",       "smtp:[unclosed:25",
    "bad2.example",       "uucp:host",
    "bad3.example",       "smtp:[h]:99999",
    "bad4.example",       "lmtp:relay.example",
    "bad5.example",       "smtp:host name",
    NULL
};

static const char *const test_tls_kv[] = {
    "secure.example",   "verify",
    ".parent.example",  "encrypt",
    "mx.b.example",     "none",
    "relay.example",    "encrypt",
    "broken.example",   "maybe",
    "b.example",        "may match=nothing",
    NULL
};

/* test_conf - the default settings with both maps. */
static void
test_conf(struct qmgr_route_conf *c, struct test_map *tm, struct test_map *pm)
{
    memset(c, 0, sizeof(*c));
    memset(tm, 0, sizeof(*tm));
    memset(pm, 0, sizeof(*pm));
    tm->kv = test_transport_kv;
    pm->kv = test_tls_kv;
    c->local_domains = test_locals;
    c->nlocal = 2;
    c->relayhost = "";
    c->transport = test_lookup;
    c->transport_arg = tm;
    c->tls_policy = test_lookup;
    c->tls_policy_arg = pm;
    c->tls_level = TLS_LEVEL_MAY;
}

struct test_case {
    const char *rcpt;
    const char *relayhost;
    int         rc;
    const char *transport;
    const char *nexthop;
    uint32_t    tls;
};

/* test_qmgr_route_table - every routing rule, table-driven. */
static void
test_qmgr_route_table(void)
{
    static const struct test_case cases[] = {
        /* local_domains, case-insensitive; no domain at all is local */
        { "alice@local.test", "", 0, "local", "", 0 },
        { "bob@OTHER.local", "", 0, "local", "", 0 },
        { "postmaster", "", 0, "local", "", 0 },
        /* transport map: full address before domain */
        { "special@b.example", "", 0, "smtp", "[10.0.0.9]:2525", TLS_LEVEL_MAY },
        { "Special@B.Example", "", 0, "smtp", "[10.0.0.9]:2525", TLS_LEVEL_MAY },
        /* domain entry; TLS policy for the domain says "may match=..." */
        { "x@b.example", "", 0, "smtp", "mx.b.example", TLS_LEVEL_MAY },
        /* parent-domain entry (.sub.example) matches below it, LMTP over UNIX: no TLS */
        { "x@a.sub.example", "", 0, "lmtp", "unix:/run/dovecot/lmtp", TLS_LEVEL_NONE },
        { "x@deep.a.sub.example", "", 0, "lmtp", "unix:/run/dovecot/lmtp", TLS_LEVEL_NONE },
        /* ... but not the parent itself */
        { "x@sub.example", "", 0, "smtp", "sub.example", TLS_LEVEL_MAY },
        { "x@lmtp.example", "", 0, "lmtp", "[192.0.2.7]:24", TLS_LEVEL_MAY },
        { "x@v6.example", "", 0, "smtp", "[::1]:2526", TLS_LEVEL_MAY },
        { "x@plain.example", "", 0, "smtp", "plain.example", TLS_LEVEL_MAY },
        { "x@empty.example", "", 0, "smtp", "empty.example", TLS_LEVEL_MAY },
        { "x@bracket.example", "", 0, "smtp", "[relay.example]:25", TLS_LEVEL_ENCRYPT },
        { "x@hostport.example", "", 0, "smtp", "relay.example:587", TLS_LEVEL_ENCRYPT },
        /* transport map wins over local_domains (LMTP to a mail store) */
        { "dovecot@local.test", "", 0, "lmtp", "unix:/run/dovecot/lmtp", TLS_LEVEL_NONE },
        { "x@here.example", "", 0, "local", "", 0 },
        /* relayhost for everything else */
        { "x@c.example", "[smart.example]:587", 0, "smtp", "[smart.example]:587",
          TLS_LEVEL_MAY },
        { "x@c.example", "[smart.example]", 0, "smtp", "[smart.example]:25", TLS_LEVEL_MAY },
        { "x@c.example", "smart.example", 0, "smtp", "smart.example", TLS_LEVEL_MAY },
        /* relayhost with a per-domain TLS policy; the map entry still wins over relayhost */
        { "x@secure.example", "smart.example", 0, "smtp", "smart.example", TLS_LEVEL_VERIFY },
        { "x@b.example", "smart.example", 0, "smtp", "mx.b.example", TLS_LEVEL_MAY },
        /* MX of the recipient domain; TLS by parent, then by next-hop host */
        { "x@c.example", "", 0, "smtp", "c.example", TLS_LEVEL_MAY },
        { "x@a.parent.example", "", 0, "smtp", "a.parent.example", TLS_LEVEL_ENCRYPT },
        { "x@relay.example", "", 0, "smtp", "relay.example", TLS_LEVEL_ENCRYPT },
        { "x@[192.0.2.1]", "", 0, "smtp", "[192.0.2.1]:25", TLS_LEVEL_MAY },
        /* errors are temporary failures */
        { "x@bad1.example", "", -1, NULL, NULL, 0 },
        { "x@bad2.example", "", -1, NULL, NULL, 0 },
        { "x@bad3.example", "", -1, NULL, NULL, 0 },
        { "x@bad4.example", "", -1, NULL, NULL, 0 },
        { "x@bad5.example", "", -1, NULL, NULL, 0 },
        { "x@broken.example", "", -1, NULL, NULL, 0 },
        { "x@c.example", "[bad", -1, NULL, NULL, 0 },
        { "x@c.example", "host:0", -1, NULL, NULL, 0 },
    };
    struct qmgr_route_conf c;
    struct test_map        tm, pm;
    struct qmgr_route      rt;
    size_t                 i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct test_case *t = &cases[i];
        int                     rc;

        test_conf(&c, &tm, &pm);
        c.relayhost = t->relayhost;
        rc = qmgr_route_resolve(&c, t->rcpt, &rt);
        if (rc != t->rc) {
            fprintf(stderr, "  case %zu (%s, relayhost=%s): rc %d, want %d (%s)\n", i,
                    t->rcpt, t->relayhost, rc, t->rc, rt.error);
            CHECK(rc == t->rc);
            continue;
        }
        if (rc == -1) {
            CHECK(rt.error[0] != '\0');
            continue;
        }
        if (strcmp(rt.transport, t->transport) != 0 || strcmp(rt.nexthop, t->nexthop) != 0
            || rt.tls_level != t->tls) {
            fprintf(stderr, "  case %zu (%s): got %s %s tls=%u, want %s %s tls=%u\n", i,
                    t->rcpt, rt.transport, rt.nexthop, rt.tls_level, t->transport,
                    t->nexthop, t->tls);
            CHECK(0);
        }
    }
}

/* test_qmgr_route_no_maps - without maps: local, else MX with the default TLS level. */
static void
test_qmgr_route_no_maps(void)
{
    struct qmgr_route_conf c;
    struct qmgr_route      rt;

    memset(&c, 0, sizeof(c));
    c.local_domains = test_locals;
    c.nlocal = 2;
    c.tls_level = TLS_LEVEL_ENCRYPT;
    CHECK(qmgr_route_resolve(&c, "a@local.test", &rt) == 0);
    CHECK(rt.kind == QMGR_ROUTE_LOCAL);
    CHECK(qmgr_route_resolve(&c, "a@Remote.Example", &rt) == 0);
    CHECK(rt.kind == QMGR_ROUTE_SMTP);
    CHECK_STR(rt.nexthop, "remote.example");
    CHECK(rt.tls_level == TLS_LEVEL_ENCRYPT);
}

/* test_qmgr_route_map_error - a failing map defers, it never falls through to MX. */
static void
test_qmgr_route_map_error(void)
{
    struct qmgr_route_conf c;
    struct test_map        tm, pm;
    struct qmgr_route      rt;

    test_conf(&c, &tm, &pm);
    tm.fail = 1;
    CHECK(qmgr_route_resolve(&c, "x@c.example", &rt) == -1);
    CHECK(strstr(rt.error, "transport_map") != NULL);
    test_conf(&c, &tm, &pm);
    pm.fail = 1;
    CHECK(qmgr_route_resolve(&c, "x@c.example", &rt) == -1);
    CHECK(strstr(rt.error, "smtp_tls_policy_map") != NULL);
    /* local recipients need no TLS policy */
    CHECK(qmgr_route_resolve(&c, "x@local.test", &rt) == 0);
}

/* test_qmgr_route_lookup_order - address, domain, then parents from the nearest. */
static void
test_qmgr_route_lookup_order(void)
{
    static const char *const kv[] = { ".example", "smtp:[far.example]", ".c.example",
                                      "smtp:[near.example]", NULL };
    struct qmgr_route_conf   c;
    struct test_map          tm, pm;
    struct qmgr_route        rt;

    test_conf(&c, &tm, &pm);
    tm.kv = kv;
    c.tls_policy = NULL;
    CHECK(qmgr_route_resolve(&c, "x@b.c.example", &rt) == 0);
    CHECK_STR(rt.nexthop, "[near.example]:25");
    CHECK(tm.lookups == 3);     /* x@b.c.example, b.c.example, .c.example */
    CHECK(qmgr_route_resolve(&c, "x@d.example", &rt) == 0);
    CHECK_STR(rt.nexthop, "[far.example]:25");
}

/* test_qmgr_route_levels - level names. */
static void
test_qmgr_route_levels(void)
{
    uint32_t l = 99;

    CHECK(qmgr_route_parse_level("none", &l) == 0 && l == TLS_LEVEL_NONE);
    CHECK(qmgr_route_parse_level("MAY", &l) == 0 && l == TLS_LEVEL_MAY);
    CHECK(qmgr_route_parse_level("encrypt", &l) == 0 && l == TLS_LEVEL_ENCRYPT);
    CHECK(qmgr_route_parse_level("verify", &l) == 0 && l == TLS_LEVEL_VERIFY);
    CHECK(qmgr_route_parse_level("dane", &l) == 0 && l == TLS_LEVEL_DANE);
    CHECK(qmgr_route_parse_level("dane-only", &l) == 0 && l == TLS_LEVEL_DANE_ONLY);
    CHECK(qmgr_route_parse_level("secure", &l) == -1);
    CHECK(qmgr_route_parse_level("dane-", &l) == -1);
}

/* test_qmgr_dest_window - grow on contact up to the limit, halve on failure, min 1. */
static void
test_qmgr_dest_window(void)
{
    struct qmgr_dest d;
    int              i;

    qmgr_dest_init(&d, 5, 7);
    CHECK(d.window == 5);
    for (i = 0; i < 5; i++)
        CHECK(qmgr_dest_feedback(&d, QMGR_DEST_REACHED, 100, 300) == 0);
    CHECK(d.window == 7);
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_CONN_FAIL, 100, 300) == 0);
    CHECK(d.window == 3);
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_REACHED, 100, 300) == 0);
    CHECK(d.window == 4 && d.fails == 0);
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_NEUTRAL, 100, 300) == 0);
    CHECK(d.window == 4);
    qmgr_dest_init(&d, 50, 20);
    CHECK(d.window == 20);
    qmgr_dest_init(&d, 0, 20);
    CHECK(d.window == 1);
}

/* test_qmgr_dest_pause - three connection failures in a row pause; a probe after the
 * pause that fails pauses again at once; contact clears it. */
static void
test_qmgr_dest_pause(void)
{
    struct qmgr_dest d;

    qmgr_dest_init(&d, 5, 20);
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_CONN_FAIL, 1000, 300) == 0);
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_CONN_FAIL, 1001, 300) == 0);
    CHECK(!qmgr_dest_paused(&d, 1001));
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_CONN_FAIL, 1002, 300) == 1);
    CHECK(d.window == 1);
    CHECK(qmgr_dest_paused(&d, 1002));
    CHECK(qmgr_dest_paused(&d, 1301));
    CHECK(!qmgr_dest_idle(&d, 1100));
    CHECK(!qmgr_dest_paused(&d, 1302));
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_CONN_FAIL, 1303, 300) == 1);
    CHECK(qmgr_dest_paused(&d, 1304));
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_REACHED, 1700, 300) == 0);
    CHECK(!qmgr_dest_paused(&d, 1700));
    CHECK(qmgr_dest_idle(&d, 1700));
    /* a failure after contact starts counting again */
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_CONN_FAIL, 1701, 300) == 0);
    /* pause 0: never paused */
    qmgr_dest_init(&d, 5, 20);
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_CONN_FAIL, 1, 0) == 0);
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_CONN_FAIL, 1, 0) == 0);
    CHECK(qmgr_dest_feedback(&d, QMGR_DEST_CONN_FAIL, 1, 0) == 0);
    CHECK(!qmgr_dest_paused(&d, 1));
}

/* test_qmgr_dest_classify - what counts as a connection-level failure. */
static void
test_qmgr_dest_classify(void)
{
    static const uint32_t    temp2[] = { IPC_DELIV_TEMP, IPC_DELIV_TEMP };
    static const uint32_t    mixed[] = { IPC_DELIV_TEMP, IPC_DELIV_OK };
    static const uint32_t    perm[] = { IPC_DELIV_PERM };
    static const char *const d44[] = { "4.4.1", "4.4.2" };
    static const char *const d45[] = { "4.4.1", "4.5.3" };

    CHECK(qmgr_dest_classify("", temp2, d45, NULL, 2) == QMGR_DEST_CONN_FAIL);
    CHECK(qmgr_dest_classify("none", temp2, d45, NULL, 2) == QMGR_DEST_CONN_FAIL);
    CHECK(qmgr_dest_classify("mx[192.0.2.1]:25", temp2, d44, NULL, 2) == QMGR_DEST_CONN_FAIL);
    CHECK(qmgr_dest_classify("mx[192.0.2.1]:25", temp2, d45, NULL, 2) == QMGR_DEST_REACHED);
    CHECK(qmgr_dest_classify("", mixed, d44, NULL, 2) == QMGR_DEST_REACHED);
    CHECK(qmgr_dest_classify("mx[192.0.2.1]:25", perm, d44, NULL, 1) == QMGR_DEST_REACHED);
    CHECK(qmgr_dest_classify("", temp2, d44, NULL, 0) == QMGR_DEST_NEUTRAL);
    /* The server took the connection but refused the session: a site failure too. */
    {
        static const char *const d43[] = { "4.3.2", "4.3.2" };
        static const char *const greet[] = {
            "host mx[192.0.2.1] said: 421 4.3.2 busy (in reply to the initial greeting command)",
            "host mx[192.0.2.1] said: 421 4.3.2 busy (in reply to the initial greeting command)",
        };
        static const char *const rcpt[] = {
            "host mx[192.0.2.1] said: 450 4.2.0 busy (in reply to RCPT TO command)",
            "host mx[192.0.2.1] said: 421 4.3.2 closing (in reply to RCPT TO command)",
        };

        CHECK(qmgr_dest_classify("mx[192.0.2.1]:25", temp2, d43, greet, 2) ==
              QMGR_DEST_CONN_FAIL);
        CHECK(qmgr_dest_classify("mx[192.0.2.1]:25", temp2, d43, rcpt, 2) == QMGR_DEST_REACHED);
    }
}

int
main(void)
{
    TEST_RUN(test_qmgr_route_table);
    TEST_RUN(test_qmgr_route_no_maps);
    TEST_RUN(test_qmgr_route_map_error);
    TEST_RUN(test_qmgr_route_lookup_order);
    TEST_RUN(test_qmgr_route_levels);
    TEST_RUN(test_qmgr_dest_window);
    TEST_RUN(test_qmgr_dest_pause);
    TEST_RUN(test_qmgr_dest_classify);
    TEST_END();
}
