/* qmgr_smtpd - messages coming in: OPEN, COMMIT and ABORT from smtpd, group commit.
 *
 * Each smtpd process is one peer (a socket from master). OPEN creates a spool file and
 * returns a write descriptor; COMMIT validates the envelope, checks the body's size
 * through qmgr's own descriptor and adds the message to the open batch; at the end of the
 * event-loop turn one syncfs of the queue filesystem makes every body of the batch durable
 * (data and directory entry; per-file fdatasync + directory fsync when syncfs is not
 * usable or fails), then one transaction writes the whole batch with a synchronous log
 * flush, and only then does each smtpd get MSG_QUEUED{0}. Bodies an smtpd opened and never
 * committed are unlinked on ABORT or when that smtpd goes away. smtpd is untrusted: a
 * malformed frame drops that peer only. */
#ifndef POSTERN_QMGR_SMTPD_H
#define POSTERN_QMGR_SMTPD_H

#include <stdint.h>

/* Counters since start, for `postern stats`: messages committed and their body bytes. */
extern uint64_t qmgr_smtpd_received;
extern uint64_t qmgr_smtpd_received_bytes;
/* Bodies made durable by their own fdatasync (per-file path), for the log line at stop. */
extern uint64_t qmgr_smtpd_body_fdatasyncs;

/* qmgr_smtpd_add - serve a new smtpd peer on socket fd (taken over; slot id for logs). */
void qmgr_smtpd_add(int fd, uint32_t id);
/* qmgr_smtpd_flush - commit the open batch now (normally run at the end of a turn). */
void qmgr_smtpd_flush(void);
/* qmgr_smtpd_shutdown - flush, then drop every peer (unlinking uncommitted bodies). */
void qmgr_smtpd_shutdown(void);

#endif
