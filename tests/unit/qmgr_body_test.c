/* qmgr_body_test - spool files: the kernel check for group sync, the group sync itself, and
 * the reaper thread that unlinks finished bodies off the event loop.
 *
 * qmgr_body.c is compiled in (with the store it links against) and run in a temporary
 * queue directory. Checked: which kernel releases may use syncfs (>= 5.8 reports writeback
 * errors), group sync on and covering the queue filesystem's device only, a body written
 * and group-synced, the reaper unlinking everything it was handed (also what is still
 * queued at stop), and unlink_later without a reaper unlinking at once. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../daemons/qmgr/qmgr_tab.c"
#include "../../daemons/qmgr/qmgr_store.c"
#include "../../daemons/qmgr/qmgr_body.c"
#include "test.h"

static char test_dir[256];

/* test_qmgr_body_exists - does body/XX/<qid> exist? */
static int
test_qmgr_body_exists(const char *qid)
{
    char        path[64], xx[3] = "00";
    struct stat st;

    qid_dir(qid, xx);
    snprintf(path, sizeof(path), "body/%s/%.*s", xx, QID_LEN, qid);
    return stat(path, &st) == 0;
}

static void
test_qmgr_body_kernel_table(void)
{
    static const struct {
        const char *release;
        int         ok;
    } t[] = {
        { "6.1.0-18-amd64", 1 }, { "5.8.0", 1 },       { "5.10.209-1", 1 },
        { "5.7.19", 0 },         { "4.19.0-26-amd64", 0 }, { "3.10.0-1160.el7", 0 },
        { "10.0", 1 },           { "", 0 },            { "garbage", 0 },
        { "5", 0 },              { "6.18.44-fc-v782", 1 },
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (qmgr_body_kernel_ok(t[i].release) != t[i].ok) {
            fprintf(stderr, "  release %s\n", t[i].release);
            CHECK(0);
        }
    }
}

static void
test_qmgr_body_group_sync(void)
{
    struct stat st;
    char        qid[QID_SIZE];
    int         fd, on;

    on = qmgr_body_group_sync_init() == 0;
    qid_new(qid);
    fd = qmgr_body_create(qid);
    CHECK(fd != -1);
    CHECK(write(fd, "hello\r\n", 7) == 7);
    CHECK(fstat(fd, &st) == 0);
    if (on) {
        CHECK(qmgr_body_group_sync_covers(st.st_dev));
        CHECK(!qmgr_body_group_sync_covers(st.st_dev + 1));
        CHECK(qmgr_body_group_sync() == 0);
        CHECK(qmgr_body_stats.syncfs == 1);
    } else {
        fprintf(stderr, "  (kernel without syncfs error reports: group sync off)\n");
        CHECK(!qmgr_body_group_sync_covers(st.st_dev));
    }
    close(fd);
    qmgr_body_group_sync_close();
    CHECK(!qmgr_body_group_sync_covers(st.st_dev));
    CHECK(qmgr_body_group_sync() == -1);
    CHECK(qmgr_body_unlink(qid) == 0);
}

static void
test_qmgr_body_reaper(void)
{
    char qids[300][QID_SIZE];
    int  fd, all_gone = 1;

    for (int i = 0; i < 300; i++) {
        qid_new(qids[i]);
        fd = qmgr_body_create(qids[i]);
        CHECK(fd != -1);
        close(fd);
    }
    CHECK(qmgr_body_reap_start() == 0);
    CHECK(qmgr_body_reap_start() == 0);         /* already running: a no-op */
    for (int i = 0; i < 300; i++)
        qmgr_body_unlink_later(qids[i]);
    qmgr_body_unlink_later(qids[0]);            /* twice: ENOENT is not an error */
    qmgr_body_reap_stop();                      /* drains the queue before it returns */
    for (int i = 0; i < 300; i++)
        if (test_qmgr_body_exists(qids[i]))
            all_gone = 0;
    CHECK(all_gone);
    CHECK(qmgr_body_stats.unlinked_later == 301);
}

static void
test_qmgr_body_unlink_later_without_reaper(void)
{
    char qid[QID_SIZE];
    int  fd;

    qid_new(qid);
    fd = qmgr_body_create(qid);
    CHECK(fd != -1);
    close(fd);
    CHECK(test_qmgr_body_exists(qid));
    qmgr_body_unlink_later(qid);
    CHECK(!test_qmgr_body_exists(qid));
}

int
main(void)
{
    snprintf(test_dir, sizeof(test_dir), "/tmp/qmgr_body_test.XXXXXX");
    if (mkdtemp(test_dir) == NULL || chdir(test_dir) == -1) {
        perror(test_dir);
        return 1;
    }
    TEST_RUN(test_qmgr_body_kernel_table);
    TEST_RUN(test_qmgr_body_group_sync);
    TEST_RUN(test_qmgr_body_reaper);
    TEST_RUN(test_qmgr_body_unlink_later_without_reaper);
    {
        char cmd[300];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
        if (chdir("/") == 0 && system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", test_dir);
    }
    TEST_END();
}
