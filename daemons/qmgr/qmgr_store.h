/* qmgr_store - the Berkeley DB queue: envelopes, recipients, retry and domain indexes.
 *
 * qmgr is the only process that opens the environment. qmgr_store_open() writes its own
 * DB_CONFIG, runs recovery (DB_RECOVER) and opens four btrees: msg, rcpt, retry, domain
 * (key layouts in libcommon/qrec.h). Invariants kept by every function here:
 *   - every recipient that is not final has exactly one retry key (next_attempt, qid, index)
 *     and one domain key (domain, qid, index); final recipients have neither;
 *   - in-flight deliveries are tracked in memory by the scheduler, not in the database, so
 *     after a crash an in-flight recipient is simply due again (at-least-once). A record in
 *     state ACTIVE (older versions, the CLI) is put back to QUEUED by qmgr_store_recover().
 * New messages are written by qmgr_store_insert() in one transaction with a synchronous log
 * flush (group commit); delivery results by qmgr_store_results() in one transaction with
 * DB_TXN_WRITE_NOSYNC. A record that fails to decode is logged and left where it is.
 * No ev, no IPC: the unit tests drive this module directly. Errors are logged and returned. */
#ifndef POSTERN_QMGR_STORE_H
#define POSTERN_QMGR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "qid.h"
#include "qrec.h"

struct qmgr_store;

/* A new message for qmgr_store_insert(). */
struct qmgr_store_new {
    char              qid[QID_SIZE];
    struct qrec_msg   msg;            /* msg.nrcpt recipients follow */
    struct qrec_rcpt *rcpts;          /* domain filled in; next_attempt = first attempt */
};

/* A delivery result (or another state change) for qmgr_store_results(). */
struct qmgr_store_result {
    char        qid[QID_SIZE];
    uint32_t    index;
    uint32_t    state;                /* QREC_DEFERRED, QREC_QUEUED, QREC_SENT, QREC_FAILED */
    uint64_t    next_attempt;         /* for non-final states */
    uint64_t    now;                  /* becomes last_attempt when attempted */
    int         attempted;            /* 1: count an attempt */
    const char *dsn;                  /* NULL: keep the old one */
    const char *text;
    const char *relay;                /* remote MTA of the attempt; NULL: keep the old one */
};

/* Everything one results transaction writes (qmgr_store_apply_batch()). */
struct qmgr_store_batch {
    const struct qmgr_store_result *results;
    size_t                          nresults;
    struct qmgr_store_new *const   *add;      /* new messages (DSNs made by qmgr) */
    size_t                          nadd;
    const char *const              *warned;   /* envelopes that get QREC_F_WARNED */
    size_t                          nwarned;
};

/* Called for each message whose recipients are all final and whose records were removed;
 * the caller unlinks the body. Runs after the transaction committed. */
typedef void (*qmgr_store_gone_cb)(const char *qid, void *arg);

/* Counters for logs and benchmarks. */
struct qmgr_store_stats {
    uint64_t insert_txns;             /* synchronous group commits */
    uint64_t inserted_msgs;           /* messages they carried */
    uint64_t result_txns;
    uint64_t log_syncs;               /* Berkeley DB's own count of log flushes (st_scount) */
};

/* qmgr_store_open - open (creating if needed) the environment in home, writing DB_CONFIG
 * first and running normal recovery. NULL with the reason in err. */
struct qmgr_store *qmgr_store_open(const char *home, char *err, size_t errlen);
/* qmgr_store_close - checkpoint and close everything; sets *sp = NULL. */
void qmgr_store_close(struct qmgr_store **sp);
/* qmgr_store_checkpoint - checkpoint and let Berkeley DB remove log files no longer needed. */
int  qmgr_store_checkpoint(struct qmgr_store *);

/* qmgr_store_insert - write n new messages with all their records in one transaction and
 * commit it. flush 1: with a synchronous log flush, so 0 means every message is durable;
 * flush 0: the log is written (DB_TXN_WRITE_NOSYNC) and the caller makes it durable itself,
 * with the syncfs that covers the bodies or qmgr_store_log_flush(), before it tells anyone.
 * -1: none was written (reason in err, errno-like code in *errcode). */
int  qmgr_store_insert(struct qmgr_store *, struct qmgr_store_new *const *v, size_t n,
                       int flush, int *errcode, char *err, size_t errlen);
/* qmgr_store_log_flush - make every committed transaction durable (a log fsync). 0 or -1. */
int  qmgr_store_log_flush(struct qmgr_store *);

/* qmgr_store_results - apply n results in one transaction (DB_TXN_WRITE_NOSYNC): rewrite each
 * recipient, move or drop its retry and domain keys, and remove every touched message whose
 * recipients are now all final (gone is then called once per such message). Results for
 * recipients that no longer exist are skipped. 0 or -1 (nothing applied, logged). */
int  qmgr_store_results(struct qmgr_store *, const struct qmgr_store_result *v, size_t n,
                        qmgr_store_gone_cb gone, void *arg);

/* qmgr_store_apply_batch - like qmgr_store_results, and in the same transaction insert the
 * new messages of b->add (the bounces those results cause: a failure is recorded together
 * with its DSN or not at all) and set QREC_F_WARNED on the envelopes b->warned. Committed
 * with DB_TXN_WRITE_NOSYNC: after a power loss the results and their DSNs are lost
 * together, and the recipients are tried again. 0 or -1 (nothing written). */
int  qmgr_store_apply_batch(struct qmgr_store *, const struct qmgr_store_batch *b,
                            qmgr_store_gone_cb gone, void *arg);

/* Lookups: 0 found (decoded into *out, clear it after), 1 not found, -1 error or corrupt. */
int  qmgr_store_get_msg(struct qmgr_store *, const char *qid, struct qrec_msg *out);
int  qmgr_store_get_rcpt(struct qmgr_store *, const char *qid, uint32_t index,
                         struct qrec_rcpt *out);

/* qmgr_store_scan_due - call cb for retry keys in order, from the earliest, while their time
 * is <= now and cb returns 0 (1 stops the scan). *next gets the time of the first key later
 * than now, or 0 when there is none or the scan was stopped. cb may read but not write. */
typedef int (*qmgr_store_due_cb)(uint64_t when, const char *qid, uint32_t index, void *arg);
int  qmgr_store_scan_due(struct qmgr_store *, uint64_t now, qmgr_store_due_cb cb, void *arg,
                         uint64_t *next);
/* qmgr_store_drop_retry - delete one stale retry key (its recipient is gone or final). */
int  qmgr_store_drop_retry(struct qmgr_store *, uint64_t when, const char *qid, uint32_t index);

/* qmgr_store_recover - the start-up pass over the queue: ACTIVE recipients back to QUEUED,
 * missing retry or domain keys restored, messages whose recipients are all final (or that
 * have no recipients) removed (gone called for each), recipients without an envelope
 * removed. Returns -1 on a database error. */
int  qmgr_store_recover(struct qmgr_store *, qmgr_store_gone_cb gone, void *arg);

/* qmgr_store_has_msg - 1: an envelope exists for qid; 0: none; -1: error. */
int  qmgr_store_has_msg(struct qmgr_store *, const char *qid);

void qmgr_store_get_stats(struct qmgr_store *, struct qmgr_store_stats *);

/* Administration (the control channel, qmgr_ctl.c). */

/* qmgr_store_get_rcpts - every recipient record of qid in index order (final ones too):
 * *v (xcalloc'd, free each with qrec_rcpt_clear then free(*v)) and their indexes in *idx.
 * Corrupt records are skipped. 0, or -1 on a database error (nothing returned). */
int  qmgr_store_get_rcpts(struct qmgr_store *, const char *qid, struct qrec_rcpt **v,
                          uint32_t **idx, uint32_t *n);

/* qmgr_store_next_msg - the first envelope whose queue ID sorts after `after` ("" = from
 * the start): qid_out and *out (clear it after). 0 found, 1 none left, -1 error. Corrupt
 * envelopes are logged and skipped. */
int  qmgr_store_next_msg(struct qmgr_store *, const char *after, char qid_out[QID_SIZE],
                         struct qrec_msg *out);

enum qmgr_store_op {
    QMGR_STORE_HOLD,                  /* set QREC_F_HOLD */
    QMGR_STORE_RELEASE,               /* clear it; pending recipients due at `now` */
    QMGR_STORE_RETRY,                 /* pending recipients due at `now` */
    QMGR_STORE_EXPIRE,                /* expiry = now; pending recipients due at `now` */
    QMGR_STORE_DELETE,                /* remove every record (the caller unlinks the body) */
};
/* qmgr_store_admin - apply op to message qid in one transaction (DB_TXN_WRITE_NOSYNC:
 * like delivery results, a power loss may undo it, never half of it). *nrcpt gets the
 * envelope's recipient count. 0 done, 1 no such message, -1 error (logged). */
int  qmgr_store_admin(struct qmgr_store *, const char *qid, enum qmgr_store_op op,
                      uint64_t now, uint32_t *nrcpt);

/* qmgr_store_count - messages, held messages and body bytes in the queue (a walk over the
 * envelopes: O(queue size), for `postern status`). */
int  qmgr_store_count(struct qmgr_store *, uint64_t *msgs, uint64_t *held, uint64_t *bytes);

/* The lock file db/QMGR_STORE_LOCK: qmgr holds an exclusive flock() on it while the
 * environment is open; the CLI's offline reader (cli/postern_qread.c) reads the database
 * files only while it can hold a shared one, i.e. while no qmgr runs. */
#define QMGR_STORE_LOCK "qmgr.lock"

#endif
