/* qid - queue IDs: unique on the host, time-ordered, never reused.
 *
 * An ID is 13 characters of a 64-bit microsecond counter (never less than the last one
 * issued, so a clock step back cannot repeat an ID) and 3 characters of the process ID, in a
 * 32-letter alphabet that sorts in numeric order: string order is creation order. */
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "qid.h"

static const char qid_alphabet[] = "0123456789ABCDEFGHJKLMNPQRSTVWXZ";

static int
qid_digit(char c)
{
    const char *p = c ? strchr(qid_alphabet, c) : NULL;

    return p ? (int)(p - qid_alphabet) : -1;
}

static void
qid_encode(char *out, uint64_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = qid_alphabet[v & 31];
        v >>= 5;
    }
}

void
qid_new(char out[QID_SIZE])
{
    static uint64_t last;
    struct timeval  tv;
    uint64_t        now;

    gettimeofday(&tv, NULL);
    now = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
    if (now <= last)
        now = last + 1;
    last = now;
    qid_encode(out, now, 13);
    qid_encode(out + 13, (uint64_t)getpid(), 3);
    out[QID_LEN] = '\0';
}

int
qid_valid(const char *s)
{
    size_t i;

    for (i = 0; i < QID_LEN; i++)
        if (qid_digit(s[i]) < 0)
            return 0;
    return s[i] == '\0';
}

uint64_t
qid_time(const char *qid)
{
    uint64_t v = 0;

    if (!qid_valid(qid))
        return 0;
    for (int i = 0; i < 13; i++)
        v = (v << 5) | (uint64_t)qid_digit(qid[i]);
    return v / 1000000;
}

void
qid_dir(const char *qid, char out[3])
{
    out[0] = qid[7];
    out[1] = qid[8];
    out[2] = '\0';
}
