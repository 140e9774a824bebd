/* local_batch - group commit of Maildir deliveries.
 *
 * local.c writes each Maildir delivery of an event-loop turn into tmp/ without flushing and
 * hands it here; at the end of the turn local_batch_flush() makes the whole batch durable
 * with as few flushes as the file systems allow: one syncfs(2) per file system for the data
 * of every file (per-file fsync where syncfs fails or the kernel cannot report its errors),
 * then a link of each file into new/, then one flush of the new directory entries (fsync of
 * each distinct new/, see local_batch.c), and only then is every delivery answered. A failure
 * of any step makes that one delivery temporary and removes its files; the others go on.
 * Runs in the main thread; flushes as the mailbox owner (local_priv_enter). */
#ifndef POSTERN_LOCAL_BATCH_H
#define POSTERN_LOCAL_BATCH_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "local.h"
#include "local_maildir.h"

#define LOCAL_BATCH_MAX      256    /* deliveries per flush (each holds a descriptor) */
#define LOCAL_BATCH_WAIT_MS  50     /* at most this long to gather more for one flush */

/* One DELIVER request from the moment it is read until it is answered. */
struct local_job {
    struct local_job         *next;
    struct ipc_conn          *conn;          /* whom to answer; NULL: nobody (gone) */
    uint32_t                  reqid;
    uint32_t                  rcpt_index;
    uint64_t                  arrival;
    char                     *qid;
    char                     *rcpt;
    char                     *orig_rcpt;
    char                      where[PATH_MAX + 16];    /* "maildir=..." for the log */
    struct local_result       res;
    struct local_maildir_file file;          /* written to tmp/, not yet durable */
    int                       ok;            /* still on its way to success */
    int                       done;          /* scratch: handled in the current step */
};

/* Counters for the log line at stop. */
struct local_batch_stats {
    uint64_t batches;
    uint64_t messages;
    uint64_t syncfs;          /* successful syncfs calls */
    uint64_t syncfs_failed;
    uint64_t file_fsyncs;     /* per-file fallback */
    uint64_t dir_fsyncs;
};
extern struct local_batch_stats local_batch_stats;

/* local_batch_init - decide between one syncfs per file system (Linux 5.8 and later report
 * write-back errors through it) and per-file fsync. */
void   local_batch_init(void);
/* local_batch_add - take job (its file written, f.fd open) into the batch. */
void   local_batch_add(struct local_job *job);
/* local_batch_count - deliveries waiting for the next flush. */
size_t local_batch_count(void);
/* local_batch_flush - make every waiting delivery durable (or temporarily failed) and answer
 * each through local_job_done(). */
void   local_batch_flush(void);
/* local_batch_drop - conn is going away: its waiting deliveries are removed again (qmgr
 * defers them, so keeping them would deliver twice) and logged as deferred. */
void   local_batch_drop(struct ipc_conn *conn);

#endif
