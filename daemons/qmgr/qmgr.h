/* qmgr - the queue manager: shared state of the one qmgr process.
 *
 * qmgr.c starts the process (config, privileges, the queue database, the master channel)
 * and owns these few globals; the modules use them instead of passing the same three
 * pointers everywhere: qmgr_smtpd (messages coming in), qmgr_sched (deliveries going out),
 * qmgr_store (the database), qmgr_body (spool files), qmgr_tab (hash tables). */
#ifndef POSTERN_QMGR_H
#define POSTERN_QMGR_H

#include <stdint.h>

#include "ev.h"
#include "qmgr_route.h"
#include "qmgr_store.h"

/* Settings read once at start (config keys in doc/internals.md). */
struct qmgr_params {
    uint64_t retry_min;             /* seconds: first delay after a temporary failure */
    uint64_t retry_max;             /* seconds: longest delay */
    uint64_t lifetime;              /* seconds: then the message bounces */
    uint32_t local_concurrency;     /* local deliveries in flight, over all local agents */
    uint32_t rcpt_limit;            /* recipients per message accepted from smtpd */
    uint32_t max_open;              /* bodies open at once per smtpd */
    uint32_t dest_initial;          /* smtp_initial_destination_concurrency */
    uint32_t dest_limit;            /* smtp_destination_concurrency_limit */
    uint32_t agent_max;             /* smtp_max_connections: relays in flight per smtp agent */
    uint64_t dest_pause;            /* seconds: queue_destination_pause */
    uint64_t delay_warning;         /* seconds: queue_delay_warning, 0 = never */
    int      lmtp_assume_final;     /* an LMTP server without DSN delivers finally */
    char     myhostname[256];       /* Reporting-MTA of the DSNs qmgr makes */
};

extern struct ev          *qmgr_ev;
extern struct qmgr_store  *qmgr_db;
extern struct qmgr_params  qmgr_params;
extern struct qmgr_route_conf qmgr_route;   /* maps opened before chroot */

/* qmgr_wall_ms - the wall clock in milliseconds (records store wall-clock seconds). */
uint64_t qmgr_wall_ms(void);

#endif
