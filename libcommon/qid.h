/* qid - queue IDs: unique on the host, time-ordered, never reused.
 *
 * A queue ID is QID_LEN characters of an alphabet that sorts like the numbers it encodes
 * (0-9 then A-Z without I, O, U and Y: 32 symbols, readable aloud), built from the time in
 * microseconds and a per-process sequence, so two IDs made by the same qmgr sort in creation
 * order. Only qmgr creates IDs; everyone may validate them. */
#ifndef POSTERN_QID_H
#define POSTERN_QID_H

#include <stdint.h>

#define QID_LEN   16
#define QID_SIZE  (QID_LEN + 1)

/* qid_new - write a new ID into out; never returns an ID it returned before, even when the
 * clock steps back (it then keeps counting from the last one). */
void     qid_new(char out[QID_SIZE]);
int      qid_valid(const char *s);          /* 1: exactly QID_LEN alphabet characters */
uint64_t qid_time(const char *qid);         /* the creation time in seconds, 0 if invalid */
/* qid_dir - the spool subdirectory of a valid ID: the time bits that change about once a
 * second, so one group commit's bodies share a directory (one directory fsync) while the
 * spool cycles through 1,024 directories every 18 minutes. */
void     qid_dir(const char *qid, char out[3]);

#endif
