/* smtpd_pwcheck_test - smtpd's password-check worker threads (daemons/smtpd/smtpd_pwcheck.c,
 * included here since unit tests link only the libraries): answers on the loop, in order,
 * with the loop free meanwhile; cancelled jobs, queued or running, never call back; the
 * pool stops with jobs still queued. Also smtpd_stats_counters(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemons/smtpd/smtpd_pwcheck.c"
#include "../../daemons/smtpd/smtpd_stats.c"
#include "test.h"

#define NJOBS 8

static struct ev *loop;
static char       good_hash[PWHASH_MAX];
static int        results[NJOBS];         /* -1: not called back yet */
static int        order[NJOBS], norder;
static int        ticks;                  /* timer callbacks while checks ran */
static int        expected;               /* callbacks to wait for */

/* cb - record a result; stop the loop when every expected one is in. */
static void
cb(int ok, void *arg)
{
    int i = (int)(intptr_t)arg;

    results[i] = ok;
    order[norder++] = i;
    if (norder == expected)
        ev_stop(loop);
}

/* tick - a timer that re-arms itself every millisecond: counts loop turns. */
static void
tick(void *arg)
{
    (void)arg;
    ticks++;
    (void)ev_timer_add(loop, 1, tick, NULL);
}

/* deadline - the test must not hang. */
static void
deadline(void *arg)
{
    (void)arg;
    fprintf(stderr, "  deadline reached\n");
    ev_stop(loop);
}

/* stop - end one more loop turn (not a failure). */
static void
stop(void *arg)
{
    (void)arg;
    ev_stop(loop);
}

/* reset - fresh loop and result table. */
static void
reset(void)
{
    ev_free(&loop);
    loop = ev_new();
    for (int i = 0; i < NJOBS; i++)
        results[i] = -1;
    norder = 0;
    ticks = 0;
    expected = 0;
}

/* test_smtpd_pwcheck_answers - right and wrong passwords, in submission order, while the
 * loop keeps turning. */
static void
test_smtpd_pwcheck_answers(void)
{
    struct smtpd_pwcheck     *p;
    struct smtpd_pwcheck_job *j[NJOBS];

    reset();
    p = smtpd_pwcheck_new(loop, 1);   /* one worker: answers come in submission order */
    for (int i = 0; i < NJOBS; i++) {
        j[i] = smtpd_pwcheck_submit(p, i % 2 ? "wrong" : "right", good_hash, cb,
                                    (void *)(intptr_t)i);
        CHECK(j[i] != NULL);
    }
    CHECK(smtpd_pwcheck_waiting(p) == NJOBS);
    expected = NJOBS;
    (void)ev_timer_add(loop, 1, tick, NULL);
    (void)ev_timer_add(loop, 20000, deadline, NULL);
    CHECK(ev_run(loop) == 0);
    CHECK(norder == NJOBS);
    for (int i = 0; i < NJOBS; i++) {
        CHECK(results[i] == (i % 2 ? 0 : 1));
        CHECK(order[i] == i);
    }
    CHECK(smtpd_pwcheck_waiting(p) == 0);
    /* eight yescrypt checks take far longer than a few milliseconds */
    CHECK(ticks >= 5);
    smtpd_pwcheck_free(&p);
    CHECK(p == NULL);
}

/* test_smtpd_pwcheck_cancel - cancelled jobs, queued or already running, never call back;
 * the others still do. */
static void
test_smtpd_pwcheck_cancel(void)
{
    struct smtpd_pwcheck     *p;
    struct smtpd_pwcheck_job *j[NJOBS];

    reset();
    p = smtpd_pwcheck_new(loop, 2);
    for (int i = 0; i < NJOBS; i++)
        j[i] = smtpd_pwcheck_submit(p, "right", good_hash, cb, (void *)(intptr_t)i);
    /* 0 and 1 are probably running by now, the others queued: cancel both kinds */
    smtpd_pwcheck_cancel(p, &j[0]);
    smtpd_pwcheck_cancel(p, &j[5]);
    smtpd_pwcheck_cancel(p, &j[7]);
    CHECK(j[0] == NULL && j[5] == NULL && j[7] == NULL);
    smtpd_pwcheck_cancel(p, &j[0]);   /* NULL: no-op */
    CHECK(smtpd_pwcheck_waiting(p) == NJOBS - 3);
    expected = NJOBS - 3;
    (void)ev_timer_add(loop, 20000, deadline, NULL);
    CHECK(ev_run(loop) == 0);
    /* let a cancelled job that was running reach the done list, then turn once more */
    usleep(200000);
    (void)ev_timer_add(loop, 50, stop, NULL);
    CHECK(ev_run(loop) == 0);
    CHECK(norder == NJOBS - 3);
    CHECK(results[0] == -1 && results[5] == -1 && results[7] == -1);
    for (int i = 1; i < NJOBS; i++)
        if (i != 5 && i != 7)
            CHECK(results[i] == 1);
    CHECK(smtpd_pwcheck_waiting(p) == 0);
    smtpd_pwcheck_free(&p);
}

/* test_smtpd_pwcheck_free_with_jobs - stopping with jobs queued and running neither hangs
 * nor calls back. */
static void
test_smtpd_pwcheck_free_with_jobs(void)
{
    struct smtpd_pwcheck *p;

    reset();
    p = smtpd_pwcheck_new(loop, 2);
    for (int i = 0; i < NJOBS; i++)
        CHECK(smtpd_pwcheck_submit(p, "right", good_hash, cb, (void *)(intptr_t)i) != NULL);
    smtpd_pwcheck_free(&p);
    CHECK(p == NULL);
    CHECK(norder == 0);
}

/* test_smtpd_pwcheck_queue_limit - a full queue refuses more jobs. */
static void
test_smtpd_pwcheck_queue_limit(void)
{
    struct smtpd_pwcheck *p;
    size_t                n = 0;

    reset();
    p = smtpd_pwcheck_new(loop, 1);
    /* an unacceptable hash is refused at once, so the single worker drains fast; the limit
     * counts only jobs not yet taken, so submit well past it */
    for (int i = 0; i < 2 * SMTPD_PWCHECK_QUEUE_MAX; i++)
        n += smtpd_pwcheck_submit(p, "x", "$1$old$md5", cb, NULL) != NULL;
    CHECK(n >= SMTPD_PWCHECK_QUEUE_MAX);
    CHECK(n <= 2 * SMTPD_PWCHECK_QUEUE_MAX);
    smtpd_pwcheck_free(&p);
}

/* test_smtpd_stats_counters - every counter by name, in table order. */
static void
test_smtpd_stats_counters(void)
{
    struct smtpd_stats st;
    const char        *names[SMTPD_STATS_N + 1];
    uint64_t           values[SMTPD_STATS_N + 1];
    size_t             n;

    memset(&st, 0, sizeof(st));
    st.connections = 7;
    st.sessions = 2;
    st.tls_sessions = 3;
    st.messages = 4;
    st.bytes = 1234;
    st.rejected = 1;
    st.auth_failure = 9;
    n = smtpd_stats_counters(&st, names, values, SMTPD_STATS_N + 1);
    CHECK(n == SMTPD_STATS_N);
    CHECK_STR(names[0], "connections");
    CHECK(values[0] == 7);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], "sessions") == 0)
            CHECK(values[i] == 2);
        else if (strcmp(names[i], "bytes") == 0)
            CHECK(values[i] == 1234);
        else if (strcmp(names[i], "auth_failure") == 0)
            CHECK(values[i] == 9);
        else if (strcmp(names[i], "messages") == 0)
            CHECK(values[i] == 4);
    }
    CHECK(smtpd_stats_counters(&st, names, values, 2) == 2);
}

int
main(void)
{
    log_init("smtpd_pwcheck_test", 1);
    log_set_level(LOG_LVL_WARN);
    if (pwhash_make("right", good_hash) == -1) {
        fprintf(stderr, "pwhash_make failed\n");
        return 1;
    }
    TEST_RUN(test_smtpd_pwcheck_answers);
    TEST_RUN(test_smtpd_pwcheck_cancel);
    TEST_RUN(test_smtpd_pwcheck_free_with_jobs);
    TEST_RUN(test_smtpd_pwcheck_queue_limit);
    TEST_RUN(test_smtpd_stats_counters);
    ev_free(&loop);
    TEST_END();
}
