/* qmgr_sched - deliveries going out: due recipients, delivery agents, results, retries.
 *
 * The scheduler keeps in memory the recipients that are due (a bounded set loaded from the
 * retry index, plus every newly committed recipient) and those in flight. Each recipient
 * is routed to a transport (today every recipient goes to `local`; later the domain class
 * picks local or smtp, with per-destination queues inside a transport); a transport has
 * its agents (connected delivery processes, used round-robin) and a concurrency limit.
 * DELIVER goes out with a fresh read descriptor on the body; DELIVERED results are batched
 * per event-loop turn into one DB_TXN_WRITE_NOSYNC transaction. A timer wakes the
 * scheduler for the next retry. Agents are trusted, but a malformed frame from one still
 * only drops that agent; its jobs in flight are deferred. */
#ifndef POSTERN_QMGR_SCHED_H
#define POSTERN_QMGR_SCHED_H

#include <stdint.h>

#include "qmgr_store.h"

/* qmgr_sched_start - load due work from the database and start the retry timer. */
void qmgr_sched_start(void);
/* qmgr_sched_add_agent - serve a delivery agent of kind (IPC_PEER_LOCAL) on socket fd. */
void qmgr_sched_add_agent(int fd, uint32_t kind, uint32_t id);
/* qmgr_sched_new_message - a message just became durable: queue its recipients.
 * arrival_ms is the wall-clock arrival for delay= in the logs. */
void qmgr_sched_new_message(const struct qmgr_store_new *m, uint64_t arrival_ms);
/* qmgr_sched_flush - write pending delivery results now. */
void qmgr_sched_flush(void);
/* qmgr_sched_shutdown - flush results, drop agents (jobs in flight stay due in the
 * database: the next qmgr delivers them again), free everything. */
void qmgr_sched_shutdown(void);

#endif
