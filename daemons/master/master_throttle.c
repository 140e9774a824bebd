/* master_throttle - restart back-off for daemons that die right after they start.
 *
 * A daemon that ran at least MASTER_THROTTLE_MIN_RUN_MS is restarted at once and its
 * back-off forgotten; one that died sooner waits 1 s, then 2 s, 4 s ... up to 60 s, so a
 * daemon that cannot start (a bad key file, a missing program) does not spin. Pure
 * arithmetic, called by master_spawn.c and tested in tests/unit/master_throttle_test.c. */
#include <stdint.h>

#include "master.h"

uint64_t
master_throttle_delay(uint64_t ran_ms, uint64_t *backoff_ms)
{
    uint64_t delay;

    if (ran_ms >= MASTER_THROTTLE_MIN_RUN_MS) {
        *backoff_ms = 0;
        return 0;
    }
    delay = *backoff_ms ? *backoff_ms : MASTER_THROTTLE_FIRST_MS;
    if (delay > MASTER_THROTTLE_MAX_MS)
        delay = MASTER_THROTTLE_MAX_MS;
    *backoff_ms = delay * 2 > MASTER_THROTTLE_MAX_MS ? MASTER_THROTTLE_MAX_MS : delay * 2;
    return delay;
}
