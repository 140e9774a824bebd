/* qid_test - queue IDs: unique, time-ordered, valid, and the validator's refusals. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "qid.h"
#include "test.h"

/* qid.h says "0-9 then A-Z without I, O, U" (33 characters); qid.c uses 32, also without Y,
 * so that each character is 5 bits. The tests follow qid.c. */
#define QID_ALPHABET "0123456789ABCDEFGHJKLMNPQRSTVWXZ"
#define QID_MANY     100000

/* test_qid_many_unique_ordered - 100,000 IDs: valid, QID_LEN long, strictly increasing. */
static void
test_qid_many_unique_ordered(void)
{
    char (*ids)[QID_SIZE] = xcalloc(QID_MANY, QID_SIZE);
    int bad_len = 0, bad_valid = 0, bad_order = 0, bad_alpha = 0;

    for (int i = 0; i < QID_MANY; i++)
        qid_new(ids[i]);
    for (int i = 0; i < QID_MANY; i++) {
        if (strlen(ids[i]) != QID_LEN)
            bad_len++;
        if (!qid_valid(ids[i]))
            bad_valid++;
        if (strspn(ids[i], QID_ALPHABET) != QID_LEN)
            bad_alpha++;
        if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0) {
            if (bad_order++ < 3)
                fprintf(stderr, "  %s then %s\n", ids[i - 1], ids[i]);
        }
    }
    CHECK(bad_len == 0);
    CHECK(bad_valid == 0);
    CHECK(bad_alpha == 0);
    CHECK(bad_order == 0);
    free(ids);
}

/* test_qid_ordered_across_time - IDs made apart in time still sort in creation order. */
static void
test_qid_ordered_across_time(void)
{
    char a[QID_SIZE], b[QID_SIZE], c[QID_SIZE];

    qid_new(a);
    usleep(2000);
    qid_new(b);
    usleep(1100000);
    qid_new(c);
    CHECK(strcmp(a, b) < 0);
    CHECK(strcmp(b, c) < 0);
    CHECK(qid_time(c) >= qid_time(a) + 1);
}

/* test_qid_time - the embedded time is the creation time. */
static void
test_qid_time(void)
{
    char id[QID_SIZE];
    time_t before = time(NULL), after;
    uint64_t t;

    qid_new(id);
    after = time(NULL);
    t = qid_time(id);
    CHECK(t + 1 >= (uint64_t)before && t <= (uint64_t)after + 1);
    if (!(t + 1 >= (uint64_t)before && t <= (uint64_t)after + 1))
        fprintf(stderr, "  qid_time(%s) = %llu, time(NULL) = %lld\n", id,
                (unsigned long long)t, (long long)before);
}

/* test_qid_invalid - strings that are not queue IDs are refused and have time 0. */
static void
test_qid_invalid(void)
{
    static const char *bad[] = {
        "",
        "0",
        "000000000000000",                  /* 15 */
        "00000000000000000",                /* 17 */
        "0000000000000000 ",
        " 0000000000000000",
        "000000000000000a",                 /* lower case */
        "abcdefghjkmnpqrs",
        "000000000000000I",
        "000000000000000O",
        "000000000000000U",
        "000000000000000Y",
        "0000000I00000000",
        "000000000000000-",
        "0000000000000.00",
        "00000000/0000000",
        "000000000000000\n",
        "00000000000000\xc3\x89",
        "0000000000000000.tmp",
        "../../../etc/pas",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (qid_valid(bad[i])) {
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
            CHECK(0);
        }
        CHECK(qid_time(bad[i]) == 0);
    }
}

/* test_qid_valid_alphabet - any QID_LEN string of the alphabet is valid. */
static void
test_qid_valid_alphabet(void)
{
    static const char *good[] = {
        "0000000000000000",
        "ZZZZZZZZZZZZZZZZ",
        "0123456789ABCDEF",
        "GHJKLMNPQRSTVWXZ",
    };
    char id[QID_SIZE];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!qid_valid(good[i])) {
            fprintf(stderr, "  refused \"%s\"\n", good[i]);
            CHECK(0);
        }
    }
    /* Every alphabet character in every position. */
    for (size_t pos = 0; pos < QID_LEN; pos++) {
        for (const char *a = QID_ALPHABET; *a; a++) {
            memset(id, '0', QID_LEN);
            id[QID_LEN] = '\0';
            id[pos] = *a;
            CHECK(qid_valid(id));
        }
    }
    CHECK(strlen(QID_ALPHABET) == 32);
    CHECK(QID_SIZE == QID_LEN + 1);
}

/* test_qid_sorts_like_numbers - the alphabet itself is in ASCII order, so strcmp order is
 * numeric order. */
static void
test_qid_sorts_like_numbers(void)
{
    const char *a = QID_ALPHABET;

    for (size_t i = 1; a[i]; i++)
        CHECK(a[i - 1] < a[i]);
}

/* test_qid_dir - the spool directory is two alphabet characters of the ID, and IDs made
 * within a second share it (one directory fsync per group commit). */
static void
test_qid_dir(void)
{
    static unsigned char used[32 * 32];
    char id[QID_SIZE], dir[3];
    int distinct = 0, bad = 0;

    for (int i = 0; i < 20000; i++) {
        const char *a, *b;

        qid_new(id);
        memset(dir, 'x', sizeof(dir));
        qid_dir(id, dir);
        a = strchr(QID_ALPHABET, dir[0]);
        b = dir[0] ? strchr(QID_ALPHABET, dir[1]) : NULL;
        if (dir[2] != '\0' || a == NULL || b == NULL || dir[0] == '\0' || dir[1] == '\0' ||
            strstr(id, dir) == NULL) {
            bad++;
            continue;
        }
        if (!used[(a - QID_ALPHABET) * 32 + (b - QID_ALPHABET)]) {
            used[(a - QID_ALPHABET) * 32 + (b - QID_ALPHABET)] = 1;
            distinct++;
        }
    }
    CHECK(bad == 0);
    CHECK(distinct >= 1 && distinct <= 4);
    if (distinct > 4)
        fprintf(stderr, "  20000 IDs in %d directories\n", distinct);
}

int
main(void)
{
    TEST_RUN(test_qid_many_unique_ordered);
    TEST_RUN(test_qid_ordered_across_time);
    TEST_RUN(test_qid_time);
    TEST_RUN(test_qid_invalid);
    TEST_RUN(test_qid_valid_alphabet);
    TEST_RUN(test_qid_sorts_like_numbers);
    TEST_RUN(test_qid_dir);
    TEST_END();
}
