/* qmgr_dest - the feedback rules of one relay destination: window, failures, pause.
 *
 * A destination (transport + next hop) starts with a concurrency window of
 * smtp_initial_destination_concurrency deliveries in flight. A delivery that reached the
 * remote server (any reply, even 4xx or 5xx) opens the window by one, up to
 * smtp_destination_concurrency_limit, and clears the failure count. A delivery that failed
 * at connection level (every recipient deferred without a reply from a server) halves the
 * window (at least 1) and counts; QMGR_DEST_PAUSE_AFTER such failures in a row pause the
 * destination for queue_destination_pause, after which it starts again with a window of 1
 * and one more connection failure pauses it again. Pure: qmgr_sched keeps one struct per
 * destination and applies these rules; the unit test drives them directly. */
#ifndef POSTERN_QMGR_DEST_H
#define POSTERN_QMGR_DEST_H

#include <stddef.h>
#include <stdint.h>

#define QMGR_DEST_PAUSE_AFTER 3

struct qmgr_dest {
    uint32_t window;            /* deliveries allowed in flight */
    uint32_t limit;             /* the most the window may grow to */
    uint32_t fails;             /* connection-level failures in a row */
    uint64_t paused_until;      /* wall-clock seconds; 0: not paused */
};

enum qmgr_dest_outcome {
    QMGR_DEST_REACHED = 0,      /* the remote server answered */
    QMGR_DEST_CONN_FAIL,        /* no server reply at all */
    QMGR_DEST_NEUTRAL,          /* says nothing about the destination (agent died ...) */
};

/* qmgr_dest_init - a fresh destination (window clamped to 1..limit). */
void qmgr_dest_init(struct qmgr_dest *, uint32_t initial, uint32_t limit);
/* qmgr_dest_feedback - apply one delivery's outcome at time now; 1: the destination has
 * just been paused (until now + pause), 0 otherwise. */
int  qmgr_dest_feedback(struct qmgr_dest *, enum qmgr_dest_outcome, uint64_t now,
                        uint64_t pause);
/* qmgr_dest_paused - 1 while paused at time now (the pause ends by itself). */
int  qmgr_dest_paused(struct qmgr_dest *, uint64_t now);
/* qmgr_dest_idle - 1 if the destination holds no state worth keeping (window aside). */
int  qmgr_dest_idle(const struct qmgr_dest *, uint64_t now);

/* qmgr_dest_classify - the outcome of one IPC_RELAYED answer: relay is its relay field,
 * status[i], dsn[i] and text[i] the per-recipient results. CONN_FAIL when every recipient
 * is temporary and no server took the session: no server answered (relay empty or "none",
 * or every dsn is 4.4.x, the routing and connection class), or every reply refused the
 * session itself (a 421, or a 4xx to the greeting or to EHLO); REACHED otherwise. */
enum qmgr_dest_outcome qmgr_dest_classify(const char *relay, const uint32_t *status,
                                          const char *const *dsn, const char *const *text,
                                          size_t n);

#endif
