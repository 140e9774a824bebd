/* test - a tiny table-friendly unit test harness.
 *
 * Each test file defines test functions named test_<module>_<behaviour> and lists them in
 * main() with TEST_RUN(). CHECK() records a failure with file:line and goes on; the binary
 * prints "N passed, N failed" (counting test functions) and exits non-zero on any failure.
 * tools/run-tests adds up the lines of every test binary. */
#ifndef POSTERN_TEST_H
#define POSTERN_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failed_checks;
static int test_passed;
static int test_failed;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failed_checks++;                                                   \
        }                                                                           \
    } while (0)

#define CHECK_STR(a, b)                                                             \
    do {                                                                            \
        const char *check_a_ = (a), *check_b_ = (b);                                \
        if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0) { \
            fprintf(stderr, "  %s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n",       \
                    __FILE__, __LINE__, check_a_ ? check_a_ : "(null)",             \
                    check_b_ ? check_b_ : "(null)");                                \
            test_failed_checks++;                                                   \
        }                                                                           \
    } while (0)

#define TEST_RUN(fn)                                                                \
    do {                                                                            \
        int before_ = test_failed_checks;                                           \
        fn();                                                                       \
        if (test_failed_checks == before_) {                                        \
            test_passed++;                                                          \
            printf("ok   %s\n", #fn);                                               \
            fflush(stdout);                                                         \
        } else {                                                                    \
            test_failed++;                                                          \
            printf("FAIL %s\n", #fn);                                               \
            fflush(stdout);                                                         \
        }                                                                           \
    } while (0)

#define TEST_END()                                                                  \
    do {                                                                            \
        printf("%d passed, %d failed\n", test_passed, test_failed);                 \
        return test_failed ? 1 : 0;                                                 \
    } while (0)

#endif
