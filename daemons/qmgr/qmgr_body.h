/* qmgr_body - spool files: body/XX/<qid>, one per message, owned by qmgr.
 *
 * Paths are relative to the queue directory, which is qmgr's working directory (its chroot
 * when started as root), so they never leave this module or this process: smtpd and the
 * delivery agents only ever get descriptors. XX is the last two characters of the queue ID.
 * Errors are logged with the path; the functions return -1 with errno set. */
#ifndef POSTERN_QMGR_BODY_H
#define POSTERN_QMGR_BODY_H

#include <stddef.h>
#include <stdint.h>

struct qmgr_store;

/* qmgr_body_create - create the body file for a new qid (O_CREAT|O_EXCL, 0600, making
 * body/XX/ if needed); a write descriptor or -1. */
int  qmgr_body_create(const char *qid);
/* qmgr_body_sync_dirs - fsync the body/XX directory of each queue ID (each directory once),
 * so the new files' names are as durable as their data. -1 if any sync failed. */
int  qmgr_body_sync_dirs(const char *const *qids, size_t n);
/* qmgr_body_open_read - a fresh read-only descriptor on the body, or -1. */
int  qmgr_body_open_read(const char *qid);
/* qmgr_body_unlink - remove the body; a missing file is not an error. */
int  qmgr_body_unlink(const char *qid);
/* qmgr_body_sweep - remove body files older than min_age seconds that have no envelope
 * (crash leftovers: opened, never committed). Returns how many were removed. */
size_t qmgr_body_sweep(struct qmgr_store *, uint64_t min_age);

#endif
