/* qmgr_sched_test - relay scheduling against a fake smtp agent on a socketpair.
 *
 * The scheduler and the modules under it are compiled in (their sources are included) and
 * run on a real event loop and a real queue database in a temporary directory; the test
 * plays the smtp agent: it receives IPC_RELAY frames and answers IPC_RELAYED when it
 * chooses. Checked: recipients of one message and destination go out as one batch (at
 * most 100), a destination stays within its window, destinations are served round-robin
 * (a big one does not starve small ones), the window grows on success, connection failures
 * pause the destination and defer its recipients past the pause, an agent that dies has
 * its batches deferred, and a failed recipient's DSN is queued to the sender. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../daemons/qmgr/qmgr_tab.c"
#include "../../daemons/qmgr/qmgr_store.c"
#include "../../daemons/qmgr/qmgr_body.c"
#include "../../daemons/qmgr/qmgr_dsn.c"
#include "../../daemons/qmgr/qmgr_route.c"
#include "../../daemons/qmgr/qmgr_dest.c"
#include "../../daemons/qmgr/qmgr_bounce.c"
#include "../../daemons/qmgr/qmgr_sched.c"
#include "test.h"

struct ev             *qmgr_ev;
struct qmgr_store     *qmgr_db;
struct qmgr_params     qmgr_params;
struct qmgr_route_conf qmgr_route;

static char *const test_locals[] = { "local.test", NULL };
static char        test_dir[256];

/* qmgr_wall_ms - the wall clock, as qmgr.c has it. */
uint64_t
qmgr_wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* One IPC_RELAY the fake agent received and has not answered. */
struct test_job {
    uint32_t reqid;
    char     qid[QID_SIZE];
    char     nexthop[64];
    uint32_t n;
    uint32_t idx[QMGR_SCHED_BATCH_MAX];
};

static struct ipc_conn *test_agent;
static struct test_job  test_jobs[1000];
static size_t           test_njobs, test_nrelays;
static uint32_t         test_notify;     /* NOTIFY bits of test_msg's recipients */

/* test_agent_frame - the fake agent: remember each relay. */
static void
test_agent_frame(struct ipc_conn *conn, const struct ipc_frame *f, void *arg)
{
    struct ipc_relay m;
    struct test_job *j;

    (void)conn;
    (void)arg;
    if (f == NULL)
        return;
    CHECK(f->type == IPC_RELAY);
    CHECK(f->fd != -1);
    if (f->fd != -1)
        close(f->fd);
    if (f->type != IPC_RELAY || ipc_relay_dec(f, &m) == -1 || test_njobs == 1000) {
        CHECK(0);
        return;
    }
    CHECK(m.rcpts_n == m.rcpt_index_n && m.rcpts_n == m.orcpts_n && m.rcpts_n == m.notify_n);
    CHECK(m.rcpts_n >= 1 && m.rcpts_n <= QMGR_SCHED_BATCH_MAX);
    CHECK_STR(m.transport, "smtp");
    j = &test_jobs[test_njobs++];
    j->reqid = f->reqid;
    snprintf(j->qid, sizeof(j->qid), "%s", m.qid);
    snprintf(j->nexthop, sizeof(j->nexthop), "%s", m.nexthop);
    j->n = m.rcpt_index_n;
    memcpy(j->idx, m.rcpt_index, m.rcpt_index_n * sizeof(uint32_t));
    test_nrelays++;
    ipc_relay_clear(&m);
}

/* test_answer_flags - answer job k: every recipient with status st and IPC_RELAYED_*
 * flags (relay "" = no connection). */
static void
test_answer_flags(size_t k, uint32_t st, const char *dsn, const char *relay, uint32_t flags)
{
    struct test_job   *j = &test_jobs[k];
    struct ipc_relayed r;
    uint32_t           status[QMGR_SCHED_BATCH_MAX], rflags[QMGR_SCHED_BATCH_MAX];
    const char        *dsns[QMGR_SCHED_BATCH_MAX], *texts[QMGR_SCHED_BATCH_MAX];
    uint32_t           i;

    for (i = 0; i < j->n; i++) {
        status[i] = st;
        rflags[i] = flags;
        dsns[i] = dsn;
        texts[i] = st == IPC_DELIV_OK ? "250 2.0.0 Ok" : st == IPC_DELIV_PERM
                   ? "550 5.1.1 <x>: Recipient address rejected" : "connect: refused";
    }
    memset(&r, 0, sizeof(r));
    r.qid = j->qid;
    r.relay = relay;
    r.tls = "";
    r.rcpt_index = j->idx;
    r.rcpt_index_n = j->n;
    r.status = status;
    r.status_n = j->n;
    r.dsn = dsns;
    r.dsn_n = j->n;
    r.text = texts;
    r.text_n = j->n;
    r.flags = rflags;
    r.flags_n = j->n;
    CHECK(ipc_relayed_send(test_agent, j->reqid, &r, -1) == 0);
    j->n = 0;   /* answered */
}

/* test_answer - answer job k as an agent whose next hop has no DSN. */
static void
test_answer(size_t k, uint32_t st, const char *dsn, const char *relay)
{
    test_answer_flags(k, st, dsn, relay, 0);
}

/* test_stop_cb - end one run of the loop. */
static void
test_stop_cb(void *arg)
{
    (void)arg;
    ev_stop(qmgr_ev);
}

/* test_run - run the loop for ms milliseconds. */
static void
test_run(uint64_t ms)
{
    ev_timer_add(qmgr_ev, ms, test_stop_cb, NULL);
    ev_run(qmgr_ev);
}

/* test_msg - commit a message from sender with n recipients at domain (body written). */
static void
test_msg(const char *sender, const char *domain, uint32_t n, char qid[QID_SIZE])
{
    struct qmgr_store_new  m, *v[1];
    static const char      body[] = "Subject: t\r\nX-Test: 1\r\n\r\nhello\r\n";
    char                   err[256];
    uint32_t               i;
    int                    fd, code;

    memset(&m, 0, sizeof(m));
    qid_new(m.qid);
    fd = qmgr_body_create(m.qid);
    CHECK(fd != -1);
    CHECK(write(fd, body, sizeof(body) - 1) == (ssize_t)(sizeof(body) - 1));
    close(fd);
    m.msg.arrival = qmgr_wall_ms() / 1000;
    m.msg.expiry = m.msg.arrival + 3600;
    m.msg.size = sizeof(body) - 1;
    m.msg.nrcpt = n;
    m.msg.sender = (char *)sender;
    m.rcpts = xcalloc(n, sizeof(*m.rcpts));
    for (i = 0; i < n; i++) {
        m.rcpts[i].addr = xasprintf("u%u@%s", i, domain);
        m.rcpts[i].orig = m.rcpts[i].addr;
        m.rcpts[i].domain = (char *)domain;
        m.rcpts[i].notify = test_notify;
        m.rcpts[i].next_attempt = m.msg.arrival;
    }
    v[0] = &m;
    CHECK(qmgr_store_insert(qmgr_db, v, 1, 1, &code, err, sizeof(err)) == 0);
    qmgr_sched_new_message(&m, qmgr_wall_ms());
    for (i = 0; i < n; i++)
        free(m.rcpts[i].addr);
    free(m.rcpts);
    memcpy(qid, m.qid, QID_SIZE);
}

/* test_count - relays in test_jobs[from..] to nexthop that are not answered. */
static size_t
test_count(const char *nexthop, size_t from)
{
    size_t k, n = 0;

    for (k = from; k < test_njobs; k++)
        if (test_jobs[k].n > 0 && strcmp(test_jobs[k].nexthop, nexthop) == 0)
            n++;
    return n;
}

/* test_setup - a fresh queue in a temporary directory, an event loop, a fake agent. */
static void
test_setup(void)
{
    char err[256];
    int  sv[2];

    snprintf(test_dir, sizeof(test_dir), "/tmp/qmgr_sched_test.XXXXXX");
    if (mkdtemp(test_dir) == NULL || chdir(test_dir) == -1)
        fatal("mkdtemp");
    mkdir("body", 0700);
    memset(&qmgr_params, 0, sizeof(qmgr_params));
    qmgr_params.retry_min = 1;
    qmgr_params.retry_max = 4;
    qmgr_params.lifetime = 3600;
    qmgr_params.local_concurrency = 10;
    qmgr_params.dest_initial = 2;
    qmgr_params.dest_limit = 4;
    qmgr_params.agent_max = 100;
    qmgr_params.dest_pause = 300;
    snprintf(qmgr_params.myhostname, sizeof(qmgr_params.myhostname), "mx.local.test");
    memset(&qmgr_route, 0, sizeof(qmgr_route));
    qmgr_route.local_domains = test_locals;
    qmgr_route.nlocal = 1;
    qmgr_route.tls_level = TLS_LEVEL_MAY;
    qmgr_ev = ev_new();
    qmgr_db = qmgr_store_open("db", err, sizeof(err));
    if (qmgr_db == NULL)
        fatalx("store: %s", err);
    qmgr_sched_start();
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
        fatal("socketpair");
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    qmgr_sched_add_agent(sv[0], IPC_PEER_SMTP, 1);
    test_agent = ipc_conn_new(qmgr_ev, sv[1], test_agent_frame, NULL);
    test_njobs = test_nrelays = 0;
    test_notify = 0;
}

/* test_teardown - stop everything, remove the directory. */
static void
test_teardown(void)
{
    char cmd[300];

    ipc_conn_free(&test_agent);
    qmgr_sched_shutdown();
    qmgr_store_close(&qmgr_db);
    ev_free(&qmgr_ev);
    if (chdir("/") == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", test_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "  could not remove %s\n", test_dir);
    }
}

/* test_qmgr_sched_batches_windows_round_robin - one message with 250 recipients at a big
 * destination plus 5 more messages there, and one message each to three small ones. */
static void
test_qmgr_sched_batches_windows_round_robin(void)
{
    char   qid[QID_SIZE], big[QID_SIZE];
    size_t k, before, i;

    test_setup();
    test_msg("alice@local.test", "big.example", 250, big);
    for (i = 0; i < 5; i++)
        test_msg("alice@local.test", "big.example", 1, qid);
    test_msg("alice@local.test", "s1.example", 2, qid);
    test_msg("alice@local.test", "s2.example", 1, qid);
    test_msg("alice@local.test", "s3.example", 1, qid);
    test_msg("bob@local.test", "local.test", 1, qid);     /* local: waits, no local agent */
    test_run(100);
    /* window 2 at the big destination, the small ones served too */
    CHECK(test_count("big.example", 0) == 2);
    CHECK(test_count("s1.example", 0) == 1);
    CHECK(test_count("s2.example", 0) == 1);
    CHECK(test_count("s3.example", 0) == 1);
    CHECK(test_njobs == 5);
    /* the first two big batches: 100 recipients each of the big message */
    for (k = 0; k < test_njobs; k++) {
        if (strcmp(test_jobs[k].nexthop, "big.example") == 0) {
            CHECK(test_jobs[k].n == 100);
            CHECK_STR(test_jobs[k].qid, big);
        }
        if (strcmp(test_jobs[k].nexthop, "s1.example") == 0)
            CHECK(test_jobs[k].n == 2);
    }
    /* success everywhere: the big window grows to 3, then 4 (the limit) */
    before = test_njobs;
    for (k = 0; k < before; k++)
        test_answer(k, IPC_DELIV_OK, "2.0.0", "mx.example[192.0.2.1]:25");
    test_run(100);
    CHECK(test_count("big.example", before) == 4);    /* 50 left of big + 3 one-rcpt msgs */
    for (k = before; k < test_njobs; k++)
        if (strcmp(test_jobs[k].qid, big) == 0)
            CHECK(test_jobs[k].n == 50);
    before = test_njobs;
    for (k = 0; k < test_njobs; k++)
        if (test_jobs[k].n > 0)
            test_answer(k, IPC_DELIV_OK, "2.0.0", "mx.example[192.0.2.1]:25");
    test_run(100);
    CHECK(test_count("big.example", before) == 2);
    for (k = 0; k < test_njobs; k++)
        if (test_jobs[k].n > 0)
            test_answer(k, IPC_DELIV_OK, "2.0.0", "mx.example[192.0.2.1]:25");
    test_run(200);
    CHECK(test_count("big.example", 0) == 0);
    /* every relayed message is gone; the local one is still queued */
    CHECK(qmgr_store_has_msg(qmgr_db, big) == 0);
    CHECK(qmgr_store_has_msg(qmgr_db, qid) == 1);
    test_teardown();
}

/* test_qmgr_sched_pause_and_bounce - connection failures pause a destination (its other
 * recipients deferred to the pause end, not sent); a 5xx answer queues a DSN to the
 * sender (a local recipient) in the same write; the agent dying defers its batches. */
static void
test_qmgr_sched_pause_and_bounce(void)
{
    char             q[6][QID_SIZE], dq[QID_SIZE];
    struct qrec_rcpt r;
    size_t           k, i;
    uint64_t         now = qmgr_wall_ms() / 1000;

    test_setup();
    qmgr_params.dest_initial = 1;
    for (i = 0; i < 6; i++)
        test_msg("alice@local.test", "down.example", 1, q[i]);
    test_msg("alice@local.test", "perm.example", 1, dq);
    test_run(100);
    CHECK(test_count("down.example", 0) == 1);      /* initial window 1 */
    /* three connection failures in a row */
    for (i = 0; i < 3; i++) {
        for (k = 0; k < test_njobs; k++)
            if (test_jobs[k].n > 0 && strcmp(test_jobs[k].nexthop, "down.example") == 0) {
                test_answer(k, IPC_DELIV_TEMP, "4.4.1", "");
                break;
            }
        test_run(50);
    }
    CHECK(test_count("down.example", 0) <= 1);
    /* every message not in flight is deferred to at least the pause end */
    for (i = 0; i < 6; i++) {
        if (qmgr_store_get_rcpt(qmgr_db, q[i], 0, &r) != 0) {
            CHECK(0);
            continue;
        }
        CHECK(r.state == QREC_DEFERRED || r.state == QREC_QUEUED);
        if (r.state == QREC_DEFERRED && r.attempts == 0)
            CHECK(r.next_attempt >= now + 299);
        qrec_rcpt_clear(&r);
    }
    /* a permanent failure: the DSN to alice is queued (a new message from <>) */
    for (k = 0; k < test_njobs; k++)
        if (test_jobs[k].n > 0 && strcmp(test_jobs[k].nexthop, "perm.example") == 0)
            test_answer(k, IPC_DELIV_PERM, "5.1.1", "mx.perm.example[192.0.2.9]:25");
    test_run(100);
    CHECK(qmgr_store_has_msg(qmgr_db, dq) == 0);
    {
        struct qmgr_job *j;
        size_t           found = 0;

        for (j = qmgr_sched_local.due.head; j != NULL; j = j->next)
            if (j->sender[0] == '\0' && strcmp(j->rcpt, "alice@local.test") == 0
                && (j->flags & QREC_F_BOUNCE))
                found++;
        CHECK(found == 1);
    }
    /* the agent dies with a batch in flight: deferred, not lost */
    ipc_conn_free(&test_agent);
    test_run(100);
    CHECK(qmgr_sched_smtp.agents == NULL);
    for (i = 0; i < 6; i++)
        CHECK(qmgr_store_has_msg(qmgr_db, q[i]) == 1);
    test_teardown();
}

/* test_dsn_body - the spool file of the report queued to `to` (at most one), or "". */
static void
test_dsn_body(const char *to, char *out, size_t outlen)
{
    struct qmgr_job *j;
    ssize_t          n = 0;
    int              fd, found = 0;

    out[0] = '\0';
    for (j = qmgr_sched_local.due.head; j != NULL; j = j->next) {
        if (j->sender[0] != '\0' || strcmp(j->rcpt, to) != 0 || !(j->flags & QREC_F_BOUNCE))
            continue;
        CHECK(!found++);
        if ((fd = qmgr_body_open_read(j->qid)) == -1) {
            CHECK(0);
            continue;
        }
        n = read(fd, out, outlen - 1);
        out[n > 0 ? n : 0] = '\0';
        close(fd);
    }
}

/* test_qmgr_sched_notify_success - NOTIFY=SUCCESS on relayed recipients: a next hop that
 * announced DSN reports itself (no notice here); one without DSN gets the sender a
 * "relayed" report with the remote MTA; LMTP is "relayed" too unless lmtp_assume_final. */
static void
test_qmgr_sched_notify_success(void)
{
    char   qid[QID_SIZE], body[16384];
    size_t k;

    test_setup();
    test_notify = IPC_NOTIFY_SUCCESS | IPC_NOTIFY_FAILURE;
    test_msg("alice@local.test", "dsn.example", 2, qid);
    test_run(100);
    CHECK(test_njobs == 1);
    test_answer_flags(0, IPC_DELIV_OK, "2.0.0", "mx.dsn.example[192.0.2.1]:25",
                      IPC_RELAYED_DSN);
    test_run(100);
    CHECK(qmgr_store_has_msg(qmgr_db, qid) == 0);
    test_dsn_body("alice@local.test", body, sizeof(body));
    CHECK(body[0] == '\0');

    test_msg("alice@local.test", "plain.example", 2, qid);
    test_run(100);
    CHECK(test_njobs == 2);
    test_answer(1, IPC_DELIV_OK, "2.0.0", "mx.plain.example[192.0.2.2]:25");
    test_run(100);
    CHECK(qmgr_store_has_msg(qmgr_db, qid) == 0);
    test_dsn_body("alice@local.test", body, sizeof(body));
    CHECK(strstr(body, "Subject: Successful Mail Delivery Report\r\n") != NULL);
    CHECK(strstr(body, "Final-Recipient: rfc822; u0@plain.example\r\n") != NULL);
    CHECK(strstr(body, "Final-Recipient: rfc822; u1@plain.example\r\n") != NULL);
    CHECK(strstr(body, "Action: relayed\r\nStatus: 2.0.0\r\n"
                       "Remote-MTA: dns; mx.plain.example\r\n"
                       "Diagnostic-Code: smtp; 250 2.0.0 Ok\r\n") != NULL);
    CHECK(strstr(body, "Action: delivered") == NULL);

    /* without NOTIFY=SUCCESS nothing is said about success */
    test_notify = 0;
    test_msg("bob@local.test", "plain.example", 1, qid);
    test_run(100);
    for (k = 0; k < test_njobs; k++)
        if (test_jobs[k].n > 0)
            test_answer(k, IPC_DELIV_OK, "2.0.0", "mx.plain.example[192.0.2.2]:25");
    test_run(100);
    test_dsn_body("bob@local.test", body, sizeof(body));
    CHECK(body[0] == '\0');
    test_teardown();

    CHECK(qmgr_sched_relay_action("smtp", IPC_RELAYED_DSN) == NULL);
    CHECK(qmgr_sched_relay_action("lmtp", IPC_RELAYED_DSN) == NULL);
    CHECK_STR(qmgr_sched_relay_action("smtp", 0), "relayed");
    CHECK_STR(qmgr_sched_relay_action("lmtp", 0), "relayed");
    qmgr_params.lmtp_assume_final = 1;
    CHECK_STR(qmgr_sched_relay_action("lmtp", 0), "delivered");
    CHECK_STR(qmgr_sched_relay_action("smtp", 0), "relayed");
    qmgr_params.lmtp_assume_final = 0;
}

int
main(void)
{
    log_init("qmgr_sched_test", 1);
    log_set_level(LOG_LVL_WARN);
    TEST_RUN(test_qmgr_sched_batches_windows_round_robin);
    TEST_RUN(test_qmgr_sched_pause_and_bounce);
    TEST_RUN(test_qmgr_sched_notify_success);
    TEST_END();
}
