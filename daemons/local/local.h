/* local - the local delivery agent: what its modules share.
 *
 * local.c is the process (start-up, the master and qmgr channels, the mailbox map, switching
 * to the mailbox owner); local_body.c copies a spool body into a mailbox file; local_maildir.c
 * writes and links Maildir files in stages; local_batch.c group-commits the Maildir
 * deliveries of one event-loop turn; local_mbox.c appends to an mbox file (one at a time,
 * under its lock). Every delivery ends in a struct local_result, which becomes the DELIVERED
 * answer to qmgr and the log line. Only temporary failures are possible once a mailbox is
 * known: a message is never lost to a local error. */
#ifndef POSTERN_LOCAL_H
#define POSTERN_LOCAL_H

#include <stddef.h>
#include <stdint.h>

/* One recipient's delivery, as qmgr asked for it. */
struct local_msg {
    const char *qid;
    const char *sender;         /* "" for <> */
    const char *rcpt;
    int         body_fd;        /* read descriptor on the spool file, CRLF line endings */
    uint64_t    size;           /* bytes in the spool file */
    uint64_t    arrival;        /* seconds since the epoch */
};

/* The outcome: status is an enum ipc_deliv_status. */
struct local_result {
    uint32_t status;
    char     dsn[16];
    char     text[512];
};

/* local_result_set - fill in an outcome; text is printf-formatted. */
void local_result_set(struct local_result *, uint32_t status, const char *dsn,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* local_result_errno - a temporary failure from a system call: 4.2.2 for a full disk or
 * quota (ENOSPC, EDQUOT), else 4.3.0; the text is "<what>: strerror(err)". */
void local_result_errno(struct local_result *, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct local_job;

/* local_priv_enter - become the mailbox owner (effective ids; no-op unless root). Not
 * nested: every enter is followed by a leave before the next enter. */
void local_priv_enter(void);
/* local_priv_leave - back to root. */
void local_priv_leave(void);
/* local_job_done - log job's outcome (job->res), answer qmgr if the connection is still
 * there, free job. */
void local_job_done(struct local_job *job);

#endif
