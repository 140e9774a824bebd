/* anvil_table - anvil's per-client counters, with no I/O inside.
 *
 * One entry per client address: its open sessions (in all, and per peer, i.e. per smtpd
 * connection, so that the sessions of an smtpd that goes away can be forgotten) and, per
 * event kind (connections, messages, recipients, AUTH failures), how many happened in the
 * client's current time unit. The window is fixed, as in Postfix's anvil: it starts with
 * the client's first event and restarts with the first event after a whole unit has
 * passed. An entry with no sessions is idle; idle entries are kept in least-recently-used
 * order, and anvil_table_sweep() drops those whose window is over. The table never holds
 * more than its cap: a new client then takes the place of the oldest idle one, and when
 * every entry has sessions the event is not counted and the answer is all zero (fail open:
 * an address-spraying attacker costs memory up to the cap, never more). Buckets are chosen
 * with SipHash under a key given at creation, so addresses cannot be picked to collide.
 * Used by anvil.c and tests/unit/anvil_table_test.c. */
#ifndef POSTERN_ANVIL_TABLE_H
#define POSTERN_ANVIL_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "ipc_msg.h"

#define ANVIL_TABLE_CLIENT_MAX  63      /* bytes of a client address (IPv6 text is < 46) */
#define ANVIL_TABLE_KEY_LEN     16      /* SipHash key */

struct anvil_table;

/* The answer to one event: the client's open sessions and the count of the event's kind
 * in the current time unit, both after the event. */
struct anvil_counts {
    uint32_t concurrent;
    uint32_t rate;
};

struct anvil_table_stats {
    uint64_t clients;                   /* entries now */
    uint64_t evictions;                 /* idle entries dropped for a new client */
    uint64_t full;                      /* events not counted: every entry had sessions */
    uint64_t swept;                     /* idle entries dropped by the sweep */
};

/* anvil_table_new - an empty table: unit_ms is the time unit of the rates (> 0), max the
 * cap on entries (> 0), key the SipHash key (ANVIL_TABLE_KEY_LEN bytes). */
struct anvil_table *anvil_table_new(uint64_t unit_ms, size_t max, const uint8_t *key);
void                anvil_table_free(struct anvil_table **);

/* anvil_table_event - count one event (enum ipc_anvil_event) of client, reported by peer,
 * at now_ms (a monotonic clock), and fill out: CONNECT adds a session and a connection,
 * DISCONNECT takes off one of that peer's sessions (never another peer's; unknown client:
 * nothing), MAIL, RCPT and AUTH_FAIL add one to their rate, AUTH_QUERY counts nothing and
 * answers the AUTH failures. -1 if the event kind is unknown or the client empty or longer
 * than ANVIL_TABLE_CLIENT_MAX (out is then zero). */
int  anvil_table_event(struct anvil_table *, uint32_t peer, uint32_t event,
                       const char *client, uint64_t now_ms, struct anvil_counts *out);
/* anvil_table_peer_gone - forget every session peer counted. */
void anvil_table_peer_gone(struct anvil_table *, uint32_t peer);
/* anvil_table_sweep - drop the idle entries whose time unit is over; how many went. */
size_t anvil_table_sweep(struct anvil_table *, uint64_t now_ms);
void anvil_table_get_stats(const struct anvil_table *, struct anvil_table_stats *);

#endif
