/* master_throttle_test - the restart back-off of master (daemons/master/master_throttle.c,
 * included here since unit tests link only the libraries). */
#include <stdint.h>

#include "../../daemons/master/master_throttle.c"
#include "test.h"

/* test_master_throttle_sequence - quick deaths wait 1, 2, 4 ... 60, 60 s; a long run resets. */
static void
test_master_throttle_sequence(void)
{
    static const struct {
        uint64_t ran_ms, want_delay;
    } steps[] = {
        { 10, 1000 },    { 500, 2000 },   { 9999, 4000 },   { 0, 8000 },    { 1, 16000 },
        { 1, 32000 },    { 1, 60000 },    { 1, 60000 },     { 10000, 0 },   { 3, 1000 },
        { 3, 2000 },     { 3600000, 0 },  { 0, 1000 },
    };
    uint64_t backoff = 0;

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        CHECK(master_throttle_delay(steps[i].ran_ms, &backoff) == steps[i].want_delay);
}

/* test_master_throttle_first_long_run - a daemon that ran long restarts at once. */
static void
test_master_throttle_first_long_run(void)
{
    uint64_t backoff = 0;

    CHECK(master_throttle_delay(MASTER_THROTTLE_MIN_RUN_MS, &backoff) == 0);
    CHECK(backoff == 0);
    backoff = 123456;                       /* corrupt state is clamped, never longer */
    CHECK(master_throttle_delay(0, &backoff) == MASTER_THROTTLE_MAX_MS);
}

int
main(void)
{
    TEST_RUN(test_master_throttle_sequence);
    TEST_RUN(test_master_throttle_first_long_run);
    TEST_END();
}
