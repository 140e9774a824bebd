/* master_watch_state_test - when master counts a watched file as changed
 * (daemons/master/master_watch_state.c, included here since unit tests link only the
 * libraries): a settle time, missing files, files that come back, and real stat() results. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../daemons/master/master_watch_state.c"
#include "test.h"

#define SETTLE 2000

#define A       { 1, 8, 10, 100, 1, 1 }     /* as loaded at start */
#define B       { 1, 8, 11, 120, 2, 2 }     /* renamed into place: a new inode */
#define NONE    { 0, 0, 0, 0, 0, 0 }        /* missing */
#define SIZE(n) { 1, 8, 10, n, 5, 5 }       /* written in place */

/* One look at a file: what stat() says, when, what master should make of it, and whether
 * master then acts on it (accepts it as loaded). */
struct watch_step {
    struct master_watch_stat now;
    uint64_t                 at_ms;
    enum master_watch_change want;
    int                      accept;
};

/* watch_run - start from first, take the steps in order, check each answer. */
static void
watch_run(struct master_watch_stat first, const struct watch_step *v, size_t n)
{
    struct master_watch_state w;

    master_watch_state_init(&w, &first);
    for (size_t i = 0; i < n; i++) {
        enum master_watch_change got = master_watch_state_step(&w, &v[i].now, v[i].at_ms,
                                                               SETTLE);

        if (got != v[i].want)
            fprintf(stderr, "  step %zu: got %d, want %d\n", i, got, v[i].want);
        CHECK(got == v[i].want);
        if (v[i].accept)
            master_watch_state_accept(&w);
    }
}

#define RUN(first, steps) watch_run((struct master_watch_stat)first, steps, \
                                    sizeof(steps) / sizeof(steps[0]))

/* test_master_watch_state_settles - a change counts once it looked the same for the settle
 * time, and stays CHANGED until accepted; after that it is the loaded state. */
static void
test_master_watch_state_settles(void)
{
    static const struct watch_step steps[] = {
        { A, 0, MASTER_WATCH_SAME, 0 },         { B, 1000, MASTER_WATCH_SETTLING, 0 },
        { B, 2999, MASTER_WATCH_SETTLING, 0 },  { B, 3000, MASTER_WATCH_CHANGED, 0 },
        { B, 9000, MASTER_WATCH_CHANGED, 1 },   { B, 9500, MASTER_WATCH_SAME, 0 },
    };

    RUN(A, steps);
}

/* test_master_watch_state_still_writing - every further change restarts the settle time. */
static void
test_master_watch_state_still_writing(void)
{
    static const struct watch_step steps[] = {
        { SIZE(10), 1000, MASTER_WATCH_SETTLING, 0 },
        { SIZE(20), 2500, MASTER_WATCH_SETTLING, 0 },
        { SIZE(30), 4000, MASTER_WATCH_SETTLING, 0 },
        { SIZE(30), 5999, MASTER_WATCH_SETTLING, 0 },
        { SIZE(30), 6000, MASTER_WATCH_CHANGED, 0 },
    };

    RUN(A, steps);
}

/* test_master_watch_state_each_field - inode, size, mtime, ctime and device each count. */
static void
test_master_watch_state_each_field(void)
{
    struct master_watch_stat a = A, v[5];

    for (size_t i = 0; i < 5; i++)
        v[i] = a;
    v[0].ino++;
    v[1].size++;
    v[2].mtime_ns++;
    v[3].ctime_ns++;
    v[4].dev++;
    for (size_t i = 0; i < 5; i++) {
        struct master_watch_state w;

        master_watch_state_init(&w, &a);
        CHECK(master_watch_state_step(&w, &v[i], 0, 0) == MASTER_WATCH_CHANGED);
    }
}

/* test_master_watch_state_back_as_before - changed and restored within the settle time: no
 * change at all. */
static void
test_master_watch_state_back_as_before(void)
{
    static const struct watch_step steps[] = {
        { SIZE(50), 100, MASTER_WATCH_SETTLING, 0 }, { A, 200, MASTER_WATCH_SAME, 0 },
        { A, 5000, MASTER_WATCH_SAME, 0 },
    };

    RUN(A, steps);
}

/* test_master_watch_state_gone - a missing file is reported once, after the settle time;
 * the same file back is no change, a new one is. */
static void
test_master_watch_state_gone(void)
{
    static const struct watch_step steps[] = {
        { NONE, 0, MASTER_WATCH_SETTLING, 0 },  { NONE, 2000, MASTER_WATCH_GONE, 0 },
        { NONE, 4000, MASTER_WATCH_SAME, 0 },   { A, 5000, MASTER_WATCH_SAME, 0 },
        { NONE, 6000, MASTER_WATCH_SETTLING, 0 }, { B, 7000, MASTER_WATCH_SETTLING, 0 },
        { B, 9000, MASTER_WATCH_CHANGED, 0 },
    };

    RUN(A, steps);
}

/* test_master_watch_state_appears - a map not built yet at start: building it is a change. */
static void
test_master_watch_state_appears(void)
{
    static const struct watch_step steps[] = {
        { NONE, 0, MASTER_WATCH_SAME, 0 },      { A, 100, MASTER_WATCH_SETTLING, 0 },
        { A, 2100, MASTER_WATCH_CHANGED, 1 },   { A, 2200, MASTER_WATCH_SAME, 0 },
    };

    RUN(NONE, steps);
}

/* test_master_watch_state_read - real files: a rename over the file is a new inode, a
 * missing path does not exist. */
static void
test_master_watch_state_read(void)
{
    char                     dir[] = "/tmp/postern-watch-XXXXXX", path[128], tmp[128];
    struct master_watch_stat s1, s2, s3;
    FILE                    *fp;

    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp");
        return;
    }
    snprintf(path, sizeof(path), "%s/map.db", dir);
    snprintf(tmp, sizeof(tmp), "%s/map.db.tmp", dir);
    master_watch_state_read(path, &s1);
    CHECK(!s1.exists);
    CHECK((fp = fopen(path, "w")) != NULL && fputs("one\n", fp) >= 0 && fclose(fp) == 0);
    CHECK((fp = fopen(tmp, "w")) != NULL && fputs("one\n", fp) >= 0 && fclose(fp) == 0);
    master_watch_state_read(path, &s2);
    CHECK(s2.exists && s2.size == 4);
    CHECK(rename(tmp, path) == 0);
    master_watch_state_read(path, &s3);
    CHECK(s3.exists && s3.size == 4 && s3.ino != s2.ino);
    unlink(path);
    rmdir(dir);
}

int
main(void)
{
    TEST_RUN(test_master_watch_state_settles);
    TEST_RUN(test_master_watch_state_still_writing);
    TEST_RUN(test_master_watch_state_each_field);
    TEST_RUN(test_master_watch_state_back_as_before);
    TEST_RUN(test_master_watch_state_gone);
    TEST_RUN(test_master_watch_state_appears);
    TEST_RUN(test_master_watch_state_read);
    TEST_END();
}
