/* qmgr_bounce - the DSN messages qmgr makes from one turn's delivery results.
 *
 * qmgr_sched collects, while it records a turn's results, the recipients that need a
 * notification (failed, delayed past queue_delay_warning, delivered or relayed to a next
 * hop without DSN with NOTIFY=SUCCESS) with qmgr_bounce_add(). qmgr_bounce_prepare() then
 * makes one report per original message (recipients aggregated): it reads the original
 * envelope and spool file, composes the report (qmgr_dsn), writes it as a new spool file
 * body/XX/<new qid> (fdatasync'd, its directory fsync'd) and adds the new message from <>
 * to the original sender to the results transaction (qmgr_store_apply_batch), so a failure
 * is recorded together with its DSN or not at all. qmgr_bounce_finish() then schedules the
 * new messages (committed) or unlinks their files (not committed). Never a report for a
 * message from <>; a delay warning at most once per message (QREC_F_WARNED, set in the same
 * transaction). RET=FULL includes the whole original as message/rfc822; RET=HDRS or no RET
 * its header section as text/rfc822-headers. */
#ifndef POSTERN_QMGR_BOUNCE_H
#define POSTERN_QMGR_BOUNCE_H

#include <stdint.h>

#include "qmgr_dsn.h"
#include "qmgr_store.h"

struct qmgr_bounce_set;

struct qmgr_bounce_set *qmgr_bounce_set_new(void);
/* qmgr_bounce_add - report recipient r (strings copied) of message qid. */
void qmgr_bounce_add(struct qmgr_bounce_set *, const char *qid, const struct qmgr_dsn_rcpt *r);
/* qmgr_bounce_prepare - write the reports' spool files and point b->add and b->warned at
 * them (valid until qmgr_bounce_finish). -1: a file could not be written (logged); then
 * nothing must be committed. */
int  qmgr_bounce_prepare(struct qmgr_bounce_set *, struct qmgr_store_batch *b);
/* qmgr_bounce_finish - committed: log and hand each new message to the scheduler;
 * not committed: unlink the new files. Then free the set; sets *sp = NULL. */
void qmgr_bounce_finish(struct qmgr_bounce_set **sp, int committed);

#endif
