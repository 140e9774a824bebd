/* qmgr_sched - deliveries going out: due recipients, delivery agents, results, retries.
 *
 * The scheduler keeps in memory the recipients that are due (a bounded set loaded from the
 * retry index, plus every newly committed recipient) and those in flight. Each recipient
 * is routed (qmgr_route) to local or to a relay destination (smtp/lmtp + next hop + TLS
 * level). Local: one DELIVER per recipient, local_concurrency in flight over all local
 * agents. Relay: per-destination queues with a concurrency window and pause (qmgr_dest),
 * served round-robin; one IPC_RELAY carries up to 100 recipients of one message to one
 * smtp agent (agents round-robin, smtp_max_connections each). Each delivery gets a fresh
 * read descriptor on the body. Results (DELIVERED, RELAYED) are batched per event-loop
 * turn into one DB_TXN_WRITE_NOSYNC transaction, with the DSNs they cause (qmgr_bounce).
 * A timer wakes the scheduler for the next retry (queue_retry_min doubling up to
 * queue_retry_max; after queue_lifetime the recipient fails). Agents are trusted, but a
 * malformed frame from one still only drops that agent; its jobs in flight are deferred. */
#ifndef POSTERN_QMGR_SCHED_H
#define POSTERN_QMGR_SCHED_H

#include <stdint.h>

#include "qmgr_store.h"

/* qmgr_sched_start - load due work from the database and start the retry timer. */
void qmgr_sched_start(void);
/* qmgr_sched_add_agent - serve a delivery agent of kind IPC_PEER_LOCAL or IPC_PEER_SMTP
 * on socket fd (taken over). */
void qmgr_sched_add_agent(int fd, uint32_t kind, uint32_t id);
/* qmgr_sched_new_message - a message just became durable: queue its recipients.
 * arrival_ms is the wall-clock arrival for delay= in the logs. */
void qmgr_sched_new_message(const struct qmgr_store_new *m, uint64_t arrival_ms);
/* qmgr_sched_flush - write pending delivery results now. */
void qmgr_sched_flush(void);
/* Control (qmgr_ctl.c). */

/* qmgr_sched_pause - 1: stop dispatching (due work stays due; results still arrive);
 * 0: dispatch again. */
void qmgr_sched_pause(int paused);
int  qmgr_sched_paused(void);
/* qmgr_sched_job_state - recipient (qid, index) in memory: 0 not, 1 due, 2 in flight. */
int  qmgr_sched_job_state(const char *qid, uint32_t index);
/* qmgr_sched_forget - drop the due (not in-flight) jobs of qid's nrcpt recipients from
 * memory without a result: held or deleted messages. In-flight ones finish; deleted=1
 * marks them so their results make no DSN (qmgr_store ignores results for recipients that
 * no longer exist). */
void qmgr_sched_forget(const char *qid, uint32_t nrcpt, int deleted);
/* qmgr_sched_set_expiry - jobs of qid in memory now expire at `expiry`. */
void qmgr_sched_set_expiry(const char *qid, uint32_t nrcpt, uint64_t expiry);
/* qmgr_sched_wake - scan the retry index at the end of this turn (work made due now). */
void qmgr_sched_wake(void);

/* Counters since qmgr started, for `postern stats`. */
struct qmgr_sched_counters {
    uint64_t local_sent, local_deferred, local_bounced;
    uint64_t smtp_sent, smtp_deferred, smtp_bounced;
    uint64_t expired;               /* bounced because queue_lifetime ran out */
    uint64_t in_memory, in_flight;  /* recipients, now */
};
void qmgr_sched_get_counters(struct qmgr_sched_counters *);

/* qmgr_sched_shutdown - flush results, drop agents (jobs in flight stay due in the
 * database: the next qmgr delivers them again), free everything. */
void qmgr_sched_shutdown(void);

#endif
