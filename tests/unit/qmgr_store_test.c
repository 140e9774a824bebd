/* qmgr_store_test - the queue database: group commit, results, recovery, reopen.
 *
 * Drives daemons/qmgr/qmgr_store.c directly on an environment in a temporary directory.
 * The module is compiled into this test by including its source, so the generic unit-test
 * rule of the Makefile (test object + libraries) is enough; its static helpers are then
 * also reachable, which the recovery test uses to forge states a crash could leave. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "../../daemons/qmgr/qmgr_store.c"
#include "test.h"

static char test_home[256];

/* test_store_open - open the store in the test directory (fresh environment if fresh). */
static struct qmgr_store *
test_store_open(void)
{
    char               err[256];
    struct qmgr_store *s = qmgr_store_open(test_home, err, sizeof(err));

    if (s == NULL)
        fprintf(stderr, "  open: %s\n", err);
    return s;
}

/* test_new_msg - a message with n recipients at b.example, due at `when`. */
static struct qmgr_store_new *
test_new_msg(uint32_t n, uint64_t when)
{
    struct qmgr_store_new *m = xcalloc(1, sizeof(*m));
    uint32_t               i;

    qid_new(m->qid);
    m->msg.arrival = when;
    m->msg.expiry = when + 86400;
    m->msg.size = 123;
    m->msg.nrcpt = n;
    m->msg.sender = (char *)"alice@a.example";
    m->rcpts = xcalloc(n, sizeof(*m->rcpts));
    for (i = 0; i < n; i++) {
        m->rcpts[i].addr = xasprintf("u%u@b.example", i);
        m->rcpts[i].orig = m->rcpts[i].addr;
        m->rcpts[i].domain = (char *)"b.example";
        m->rcpts[i].next_attempt = when;
    }
    return m;
}

/* test_free_msg - free what test_new_msg made. */
static void
test_free_msg(struct qmgr_store_new *m)
{
    uint32_t i;

    for (i = 0; i < m->msg.nrcpt; i++)
        free(m->rcpts[i].addr);
    free(m->rcpts);
    free(m);
}

struct test_due {
    size_t   n;
    uint64_t last;
    int      sorted;
};

/* test_due_cb - count due keys and check their order. */
static int
test_due_cb(uint64_t when, const char *qid, uint32_t index, void *arg)
{
    struct test_due *d = arg;

    (void)qid;
    (void)index;
    if (when < d->last)
        d->sorted = 0;
    d->last = when;
    d->n++;
    return 0;
}

static char   test_gone_qid[QID_SIZE];
static size_t test_gone_n;

/* test_gone_cb - remember removed messages. */
static void
test_gone_cb(const char *qid, void *arg)
{
    (void)arg;
    snprintf(test_gone_qid, sizeof(test_gone_qid), "%s", qid);
    test_gone_n++;
}

/* test_qmgr_store_insert_reopen - a committed batch survives close + reopen (recovery). */
static void
test_qmgr_store_insert_reopen(void)
{
    struct qmgr_store       *s = test_store_open();
    struct qmgr_store_new   *v[2];
    struct qmgr_store_stats  st;
    struct qrec_msg          m;
    struct qrec_rcpt         r;
    struct test_due          d = { 0, 0, 1 };
    uint64_t                 next;
    char                     err[256], qid0[QID_SIZE];
    int                      code = 0;

    CHECK(s != NULL);
    if (s == NULL)
        return;
    v[0] = test_new_msg(3, 1000);
    v[1] = test_new_msg(1, 900);
    memcpy(qid0, v[0]->qid, QID_SIZE);
    CHECK(qmgr_store_insert(s, v, 2, 1, &code, err, sizeof(err)) == 0);
    qmgr_store_get_stats(s, &st);
    CHECK(st.insert_txns == 1 && st.inserted_msgs == 2);
    CHECK(st.log_syncs >= 1);
    qmgr_store_close(&s);
    CHECK(s == NULL);

    s = test_store_open();
    CHECK(s != NULL);
    if (s == NULL)
        return;
    CHECK(qmgr_store_get_msg(s, qid0, &m) == 0);
    CHECK(m.nrcpt == 3 && m.size == 123);
    CHECK_STR(m.sender, "alice@a.example");
    qrec_msg_clear(&m);
    CHECK(qmgr_store_get_rcpt(s, qid0, 2, &r) == 0);
    CHECK_STR(r.addr, "u2@b.example");
    CHECK(r.state == QREC_QUEUED);
    qrec_rcpt_clear(&r);
    CHECK(qmgr_store_get_rcpt(s, qid0, 3, &r) == 1);
    CHECK(qmgr_store_has_msg(s, v[1]->qid) == 1);
    CHECK(qmgr_store_has_msg(s, "0000000000000000") == 0);
    CHECK(qmgr_store_scan_due(s, 2000, test_due_cb, &d, &next) == 0);
    CHECK(d.n >= 4 && d.sorted && next == 0);
    d.n = 0;
    d.last = 0;
    CHECK(qmgr_store_scan_due(s, 950, test_due_cb, &d, &next) == 0);
    CHECK(next >= 1000);
    test_free_msg(v[0]);
    test_free_msg(v[1]);
    qmgr_store_close(&s);
}

/* test_qmgr_store_results - deferral moves the retry key; the last final result removes the
 * message and reports it. */
static void
test_qmgr_store_results(void)
{
    struct qmgr_store        *s = test_store_open();
    struct qmgr_store_new    *v[1];
    struct qmgr_store_result  u[3];
    struct qrec_rcpt          r;
    struct test_due           d = { 0, 0, 1 };
    uint64_t                  next;
    char                      err[256];
    int                       code;

    if (s == NULL) {
        CHECK(s != NULL);
        return;
    }
    v[0] = test_new_msg(3, 5000);
    CHECK(qmgr_store_insert(s, v, 1, 1, &code, err, sizeof(err)) == 0);
    memset(u, 0, sizeof(u));
    for (int i = 0; i < 3; i++) {
        memcpy(u[i].qid, v[0]->qid, QID_SIZE);
        u[i].index = (uint32_t)i;
        u[i].now = 5001;
        u[i].attempted = 1;
    }
    u[0].state = QREC_SENT;
    u[0].dsn = "2.0.0";
    u[1].state = QREC_DEFERRED;
    u[1].next_attempt = 9000;
    u[1].dsn = "4.2.2";
    u[1].text = "mailbox full";
    u[2].state = QREC_FAILED;
    u[2].dsn = "5.1.1";
    test_gone_n = 0;
    CHECK(qmgr_store_results(s, u, 3, test_gone_cb, NULL) == 0);
    CHECK(test_gone_n == 0);
    CHECK(qmgr_store_get_rcpt(s, v[0]->qid, 1, &r) == 0);
    CHECK(r.state == QREC_DEFERRED && r.attempts == 1 && r.next_attempt == 9000);
    CHECK_STR(r.text, "mailbox full");
    qrec_rcpt_clear(&r);
    /* Only the deferred recipient is left in the retry index for this message. */
    {
        uint8_t k[QREC_KEY_RETRY_LEN];

        qrec_key_retry(k, 9000, v[0]->qid, 1);
        CHECK(qmgr_store_key_exists(s->retry, k, sizeof(k)) == 1);
        qrec_key_retry(k, 5000, v[0]->qid, 1);
        CHECK(qmgr_store_key_exists(s->retry, k, sizeof(k)) == 0);
        qrec_key_retry(k, 5000, v[0]->qid, 0);
        CHECK(qmgr_store_key_exists(s->retry, k, sizeof(k)) == 0);
    }
    /* A second result for a final recipient changes nothing. */
    CHECK(qmgr_store_results(s, &u[2], 1, test_gone_cb, NULL) == 0);
    CHECK(test_gone_n == 0);
    u[1].state = QREC_SENT;
    u[1].dsn = "2.0.0";
    CHECK(qmgr_store_results(s, &u[1], 1, test_gone_cb, NULL) == 0);
    CHECK(test_gone_n == 1);
    CHECK_STR(test_gone_qid, v[0]->qid);
    CHECK(qmgr_store_has_msg(s, v[0]->qid) == 0);
    CHECK(qmgr_store_get_rcpt(s, v[0]->qid, 0, &r) == 1);
    CHECK(qmgr_store_scan_due(s, UINT64_MAX, test_due_cb, &d, &next) == 0);
    test_free_msg(v[0]);
    qmgr_store_close(&s);
}

/* test_qmgr_store_recover - ACTIVE goes back to QUEUED, a lost retry key is restored, an
 * all-final message and orphan recipients are removed; a planted DB_CONFIG is replaced. */
static void
test_qmgr_store_recover(void)
{
    struct qmgr_store     *s = test_store_open();
    struct qmgr_store_new *v[2];
    struct qrec_rcpt       r;
    DB_TXN                *txn;
    uint8_t                k[QREC_KEY_RETRY_LEN];
    char                   err[256], path[512], cfg[64] = "";
    int                    code, fd;
    ssize_t                n;

    if (s == NULL) {
        CHECK(s != NULL);
        return;
    }
    v[0] = test_new_msg(2, 7000);
    v[1] = test_new_msg(1, 7000);
    CHECK(qmgr_store_insert(s, v, 2, 1, &code, err, sizeof(err)) == 0);
    /* Forge what a crash or an old version could leave behind. */
    CHECK(s->env->txn_begin(s->env, NULL, &txn, 0) == 0);
    v[0]->rcpts[0].state = QREC_ACTIVE;
    CHECK(qmgr_store_put_rcpt(s, txn, v[0]->qid, 0, &v[0]->rcpts[0]) == 0);
    qrec_key_retry(k, 7000, v[0]->qid, 1);
    CHECK(qmgr_store_del(s->retry, txn, k, sizeof(k)) == 0);
    v[1]->rcpts[0].state = QREC_SENT;
    CHECK(qmgr_store_put_rcpt(s, txn, v[1]->qid, 0, &v[1]->rcpts[0]) == 0);
    CHECK(qmgr_store_put_rcpt(s, txn, "ZZZZZZZZZZZZZZZZ", 0, &v[1]->rcpts[0]) == 0);
    CHECK(txn->commit(txn, 0) == 0);
    qmgr_store_close(&s);

    snprintf(path, sizeof(path), "%s/DB_CONFIG", test_home);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd != -1 && write(fd, "set_data_dir /nonexistent\n", 26) == 26);
    close(fd);

    s = test_store_open();
    CHECK(s != NULL);
    if (s == NULL)
        return;
    fd = open(path, O_RDONLY);
    n = read(fd, cfg, sizeof(cfg) - 1);
    close(fd);
    CHECK(n > 0 && strncmp(cfg, "# Written by qmgr", 17) == 0);

    test_gone_n = 0;
    CHECK(qmgr_store_recover(s, test_gone_cb, NULL) == 0);
    CHECK(test_gone_n == 2);            /* the all-sent message and the orphan */
    CHECK(qmgr_store_has_msg(s, v[1]->qid) == 0);
    CHECK(qmgr_store_get_rcpt(s, "ZZZZZZZZZZZZZZZZ", 0, &r) == 1);
    CHECK(qmgr_store_get_rcpt(s, v[0]->qid, 0, &r) == 0);
    CHECK(r.state == QREC_QUEUED);
    qrec_rcpt_clear(&r);
    CHECK(qmgr_store_key_exists(s->retry, k, sizeof(k)) == 1);
    test_gone_n = 0;
    CHECK(qmgr_store_recover(s, test_gone_cb, NULL) == 0);
    CHECK(test_gone_n == 0);            /* nothing left to do */
    test_free_msg(v[0]);
    test_free_msg(v[1]);
    qmgr_store_close(&s);
}

/* test_qmgr_store_batch - a failure and its DSN in one transaction: the bounce message is
 * inserted, the original's last recipient goes final (message removed), the WARNED flag
 * and the remote MTA are stored; an invalid DSN record makes nothing happen at all. */
static void
test_qmgr_store_batch(void)
{
    struct qmgr_store        *s = test_store_open();
    struct qmgr_store_new    *v[1], *dsn, *bad;
    struct qmgr_store_result  u[2];
    struct qmgr_store_batch   b;
    struct qrec_rcpt          r;
    struct qrec_msg           m;
    const char               *warned[1];
    char                      err[256];
    int                       code;

    if (s == NULL) {
        CHECK(s != NULL);
        return;
    }
    v[0] = test_new_msg(2, 6000);
    CHECK(qmgr_store_insert(s, v, 1, 1, &code, err, sizeof(err)) == 0);
    dsn = test_new_msg(1, 6001);
    dsn->msg.sender = (char *)"";
    dsn->msg.flags = QREC_F_BOUNCE;
    memset(u, 0, sizeof(u));
    memcpy(u[0].qid, v[0]->qid, QID_SIZE);
    u[0].index = 0;
    u[0].state = QREC_DEFERRED;
    u[0].next_attempt = 7000;
    u[0].now = 6001;
    u[0].attempted = 1;
    u[0].relay = "mx.b.example[192.0.2.1]:25";
    warned[0] = v[0]->qid;
    memset(&b, 0, sizeof(b));
    b.results = u;
    b.nresults = 1;
    b.add = &dsn;
    b.nadd = 1;
    b.warned = warned;
    b.nwarned = 1;
    CHECK(qmgr_store_apply_batch(s, &b, test_gone_cb, NULL) == 0);
    CHECK(qmgr_store_has_msg(s, dsn->qid) == 1);
    CHECK(qmgr_store_get_msg(s, v[0]->qid, &m) == 0);
    CHECK(m.flags & QREC_F_WARNED);
    qrec_msg_clear(&m);
    CHECK(qmgr_store_get_rcpt(s, v[0]->qid, 0, &r) == 0);
    CHECK_STR(r.relay, "mx.b.example[192.0.2.1]:25");
    qrec_rcpt_clear(&r);

    /* A DSN record that cannot be written: the failures are not recorded either. */
    bad = test_new_msg(1, 6002);
    bad->msg.sender = xmalloc(QREC_MAX_FIELD + 2);
    memset(bad->msg.sender, 'x', QREC_MAX_FIELD + 1);
    bad->msg.sender[QREC_MAX_FIELD + 1] = '\0';
    u[0].state = QREC_FAILED;
    u[1] = u[0];
    u[1].index = 1;
    memset(&b, 0, sizeof(b));
    b.results = u;
    b.nresults = 2;
    b.add = &bad;
    b.nadd = 1;
    test_gone_n = 0;
    CHECK(qmgr_store_apply_batch(s, &b, test_gone_cb, NULL) == -1);
    CHECK(test_gone_n == 0);
    CHECK(qmgr_store_has_msg(s, bad->qid) == 0);
    CHECK(qmgr_store_get_rcpt(s, v[0]->qid, 1, &r) == 0);
    CHECK(r.state == QREC_QUEUED);
    qrec_rcpt_clear(&r);
    free(bad->msg.sender);
    bad->msg.sender = (char *)"";

    /* The same failures with a good DSN: both recipients final, the original removed. */
    b.add = &dsn;
    qid_new(dsn->qid);
    CHECK(qmgr_store_apply_batch(s, &b, test_gone_cb, NULL) == 0);
    CHECK(test_gone_n == 1);
    CHECK_STR(test_gone_qid, v[0]->qid);
    CHECK(qmgr_store_has_msg(s, v[0]->qid) == 0);
    CHECK(qmgr_store_has_msg(s, dsn->qid) == 1);
    test_free_msg(v[0]);
    test_free_msg(dsn);
    test_free_msg(bad);
    qmgr_store_close(&s);
}

int
main(void)
{
    char cmd[300];

    log_init("qmgr_store_test", 1);
    snprintf(test_home, sizeof(test_home), "/tmp/qmgr_store_test.XXXXXX");
    if (mkdtemp(test_home) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    TEST_RUN(test_qmgr_store_insert_reopen);
    TEST_RUN(test_qmgr_store_results);
    TEST_RUN(test_qmgr_store_batch);
    TEST_RUN(test_qmgr_store_recover);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_home);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", test_home);
    TEST_END();
}
