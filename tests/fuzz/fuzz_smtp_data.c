/* fuzz_smtp_data - libFuzzer target for the DATA scanner.
 *
 * The input is scanned whole, then again in chunks cut at points taken from its first
 * bytes; both runs must agree on the output, the flags, the end and the bytes consumed.
 * The output must never hold a bare CR or LF, and an end of data must sit right after
 * <CR><LF>.<CR><LF> (or .<CR><LF> at the very start). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_run - scan in chunks of step octets (0: whole); returns the octets used. */
static size_t
fuzz_run(const char *in, size_t len, size_t step, struct buf *out, struct smtp_data *d,
         int *ended)
{
    size_t pos = 0, used;

    smtp_data_init(d, 1000, 200);
    *ended = 0;
    while (pos < len) {
        size_t n = step == 0 || len - pos < step ? len - pos : step;
        if (smtp_data_feed(d, in + pos, n, out, &used) == SMTP_DATA_END) {
            *ended = 1;
            return pos + used;
        }
        if (used != n)
            abort();
        pos += n;
    }
    return pos;
}

/* LLVMFuzzerTestOneInput - scan whole and chunked, compare. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_data d1, d2;
    struct buf       o1, o2;
    size_t           u1, u2, step, k;
    int              e1, e2;

    if (size == 0)
        return 0;
    step = (size_t)data[0] % 16 + 1;
    buf_init(&o1, 256);
    buf_init(&o2, 256);
    u1 = fuzz_run((const char *)data + 1, size - 1, 0, &o1, &d1, &e1);
    u2 = fuzz_run((const char *)data + 1, size - 1, step, &o2, &d2, &e2);
    if (u1 != u2 || e1 != e2 || o1.len != o2.len || memcmp(o1.data, o2.data, o1.len) != 0
        || d1.flags != d2.flags || d1.size != d2.size || d1.size != o1.len)
        abort();
    for (k = 0; k < o1.len; k++) {
        if (o1.data[k] == '\r' && (k + 1 == o1.len || o1.data[k + 1] != '\n'))
            abort();
        if (o1.data[k] == '\n' && (k == 0 || o1.data[k - 1] != '\r'))
            abort();
    }
    if (e1) {
        const char *in = (const char *)data + 1;
        if (!(u1 == 3 && memcmp(in, ".\r\n", 3) == 0)
            && !(u1 >= 5 && memcmp(in + u1 - 5, "\r\n.\r\n", 5) == 0))
            abort();
    }
    buf_release(&o1);
    buf_release(&o2);
    return 0;
}
