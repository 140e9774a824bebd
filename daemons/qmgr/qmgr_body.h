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
#include <sys/types.h>

struct qmgr_store;

/* Counters since start, for the log line at stop. */
struct qmgr_body_stats {
    uint64_t syncfs;            /* group syncs that succeeded */
    uint64_t syncfs_failed;     /* ... that failed (the batch fell back to per-file syncs) */
    uint64_t unlinked_later;    /* bodies handed to the reaper */
};
extern struct qmgr_body_stats qmgr_body_stats;

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
/* qmgr_body_kernel_ok - 1 if a kernel of this release (uname -r) reports writeback errors
 * through syncfs (Linux >= 5.8), else 0. */
int  qmgr_body_kernel_ok(const char *release);
/* qmgr_body_group_sync_init - at start, in the queue directory: check the kernel and open
 * body/ for qmgr_body_group_sync(). -1 (logged): group sync is off, use per-file syncs. */
int  qmgr_body_group_sync_init(void);
void qmgr_body_group_sync_close(void);
/* qmgr_body_group_sync_covers - 1 if group sync is on and a file on device dev is on the
 * filesystem it flushes. */
int  qmgr_body_group_sync_covers(dev_t dev);
/* qmgr_body_group_sync - one syncfs(2) of the queue filesystem: 0 means every body file
 * written before the call, its data and its directory entry, is durable. -1 (logged) on
 * any writeback error reported since the last call, or when group sync is off: the caller
 * must then fdatasync each body and qmgr_body_sync_dirs() itself. */
int  qmgr_body_group_sync(void);
/* qmgr_body_reap_start - start the reaper thread that unlinks finished bodies off the event
 * loop. -1 (logged): qmgr_body_unlink_later() then unlinks at once. */
int  qmgr_body_reap_start(void);
/* qmgr_body_unlink_later - queue a body for the reaper. Call only after the transaction that
 * removed its records has committed. Never blocks on the filesystem. */
void qmgr_body_unlink_later(const char *qid);
/* qmgr_body_reap_stop - unlink what is queued, stop and join the reaper. */
void qmgr_body_reap_stop(void);
/* qmgr_body_sweep - remove body files older than min_age seconds that have no envelope
 * (crash leftovers: opened, never committed). Returns how many were removed. */
size_t qmgr_body_sweep(struct qmgr_store *, uint64_t min_age);
/* qmgr_body_verify - at start: drop the messages whose body is missing or not the size the
 * envelope records (a crash inside a group commit, before its syncfs returned: never
 * acknowledged). Returns how many. */
size_t qmgr_body_verify(struct qmgr_store *);

#endif
