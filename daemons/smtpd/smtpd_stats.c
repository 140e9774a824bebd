/* smtpd_stats - the counters of one smtpd process, as (name, value) pairs.
 *
 * The table below is the only place that names them; a counter added to struct
 * smtpd_stats gets a row here and SMTPD_STATS_N grows by one (the unit test checks both). */
#include <stddef.h>

#include "smtpd_stats.h"

static const struct {
    const char *name;
    size_t      off;
} smtpd_stats_tab[] = {
    { "connections", offsetof(struct smtpd_stats, connections) },
    { "connections_refused", offsetof(struct smtpd_stats, connections_refused) },
    { "sessions", offsetof(struct smtpd_stats, sessions) },
    { "tls_sessions", offsetof(struct smtpd_stats, tls_sessions) },
    { "tls_failures", offsetof(struct smtpd_stats, tls_failures) },
    { "auth_success", offsetof(struct smtpd_stats, auth_success) },
    { "auth_failure", offsetof(struct smtpd_stats, auth_failure) },
    { "recipients", offsetof(struct smtpd_stats, recipients) },
    { "recipients_rejected", offsetof(struct smtpd_stats, recipients_rejected) },
    { "messages", offsetof(struct smtpd_stats, messages) },
    { "rejected", offsetof(struct smtpd_stats, rejected) },
    { "bytes", offsetof(struct smtpd_stats, bytes) },
    { "pregreet", offsetof(struct smtpd_stats, pregreet) },
    { "stress", offsetof(struct smtpd_stats, stress) },
    { "stress_sessions", offsetof(struct smtpd_stats, stress_sessions) },
    { "policy_rejected", offsetof(struct smtpd_stats, policy_rejected) },
    { "content_rejected", offsetof(struct smtpd_stats, content_rejected) },
    { "held", offsetof(struct smtpd_stats, held) },
    { "discarded", offsetof(struct smtpd_stats, discarded) },
    { "dnsbl_rejected", offsetof(struct smtpd_stats, dnsbl_rejected) },
};

_Static_assert(sizeof(smtpd_stats_tab) / sizeof(smtpd_stats_tab[0]) == SMTPD_STATS_N,
               "smtpd_stats_tab and SMTPD_STATS_N disagree");
_Static_assert(sizeof(struct smtpd_stats) == SMTPD_STATS_N * sizeof(uint64_t),
               "a field of struct smtpd_stats has no row in smtpd_stats_tab");

/* smtpd_stats_counters - see smtpd_stats.h. */
size_t
smtpd_stats_counters(const struct smtpd_stats *st, const char **names, uint64_t *values,
                     size_t max)
{
    size_t i;

    for (i = 0; i < SMTPD_STATS_N && i < max; i++) {
        names[i] = smtpd_stats_tab[i].name;
        values[i] = *(const uint64_t *)(const void *)((const char *)st
                                                      + smtpd_stats_tab[i].off);
    }
    return i;
}
