/* smtpd_stats - the counters of one smtpd process, for `postern stats`.
 *
 * smtpd keeps one struct smtpd_stats (smtpd.stats) and bumps its fields where things happen:
 * smtpd_session (connections, TLS, sessions open, the connect phase, stress), smtpd_cmd
 * (AUTH, recipients) and smtpd_data (messages, bytes). smtpd_stats_counters() turns it into
 * the (name, value) pairs of IPC_CTL_COUNTERS (doc/control.md), so answering master's
 * IPC_CTL_COUNTERS_REQ is one call. Counters only grow, except `sessions`, which is the
 * number open now. Plain integers: every update happens on the event loop's thread. */
#ifndef POSTERN_SMTPD_STATS_H
#define POSTERN_SMTPD_STATS_H

#include <stddef.h>
#include <stdint.h>

struct smtpd_stats {
    uint64_t connections;             /* accepted (including those refused as too many) */
    uint64_t connections_refused;     /* smtpd_max_sessions reached: 421 and closed */
    uint64_t sessions;                /* open now */
    uint64_t tls_sessions;            /* TLS handshakes completed (STARTTLS and SMTPS) */
    uint64_t tls_failures;            /* handshakes that failed or timed out */
    uint64_t auth_success;
    uint64_t auth_failure;            /* wrong password or unknown user */
    uint64_t recipients;              /* final recipients accepted (after alias expansion) */
    uint64_t recipients_rejected;     /* RCPT commands refused (relay, unknown, loop, ...) */
    uint64_t messages;                /* accepted: 250 queued */
    uint64_t rejected;                /* refused at the end of DATA (size, hops, ...) */
    uint64_t bytes;                   /* message bytes of the accepted messages */
    uint64_t pregreet;                /* talked before the greeting: 554 and closed */
    uint64_t stress;                  /* times the process came under stress */
    uint64_t stress_sessions;         /* sessions accepted under stress (shorter limits) */
    uint64_t policy_rejected;         /* HELO, MAIL, RCPT refused by an access table */
    uint64_t content_rejected;        /* messages refused by header or body checks */
    uint64_t held;                    /* queued on hold by an access table or a rule */
    uint64_t discarded;               /* answered 250 and dropped (DISCARD) */
    uint64_t dnsbl_rejected;          /* CONNECT or RCPT refused: client on a DNSBL */
};

#define SMTPD_STATS_N 20              /* counters smtpd_stats_counters() reports */

/* smtpd_stats_counters - names (static strings, as in doc/control.md) and values of every
 * counter, at most max of them; returns how many were filled in. */
size_t smtpd_stats_counters(const struct smtpd_stats *, const char **names, uint64_t *values,
                            size_t max);

#endif
