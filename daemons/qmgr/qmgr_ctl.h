/* qmgr_ctl - the queue side of the control channel: `postern queue ...` clients.
 *
 * master accepts a client on public/control, identifies it (SO_PEERCRED, admin_group) and
 * hands the connected socket over as IPC_CTL_HANDOFF with the client's decoded request;
 * from then on qmgr answers the client directly with CTL_MSG / CTL_RESULT frames and one
 * CTL_DONE, then closes. LIST streams the queue in queue-ID order a bounded number of
 * messages per event-loop turn, and only while the client reads (so a slow or stuck client
 * costs qmgr a bounded buffer, and is dropped after QMGR_CTL_STALL_MS without progress).
 * A non-admin sees only messages whose envelope sender is their own user name at a local
 * domain or at myhostname, and may change nothing. Anything the client sends after the
 * handoff drops that client only. qmgr_ctl_counters() answers master's counters request
 * for `postern status` and `postern stats`. */
#ifndef POSTERN_QMGR_CTL_H
#define POSTERN_QMGR_CTL_H

#include <stdint.h>

#include "ipc.h"

#define QMGR_CTL_STALL_MS    30000      /* a client that reads nothing this long is dropped */
#define QMGR_CTL_OUT_HIGH    (256 * 1024)   /* stream more only below this many bytes queued */
#define QMGR_CTL_TURN_MSGS   200        /* messages encoded per event-loop turn at most */
#define QMGR_CTL_CLIENTS_MAX 64         /* clients served at once; more are refused */

/* qmgr_ctl_handoff - a client from master: f is IPC_CTL_HANDOFF with the socket (taken
 * over). master is trusted: a malformed handoff is fatal. */
void qmgr_ctl_handoff(const struct ipc_frame *f);
/* qmgr_ctl_counters - answer IPC_CTL_COUNTERS_REQ (reqid) on master's channel. */
void qmgr_ctl_counters(struct ipc_conn *master, uint32_t reqid);
/* qmgr_ctl_shutdown - drop every client (they see EOF). */
void qmgr_ctl_shutdown(void);

#endif
