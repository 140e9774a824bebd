/* anvil - the client counter service shared by every smtpd process, like Postfix's
 * anvil(8): what anvil.c, the process, fixes for its table (anvil_table.c).
 *
 * anvil counts, per client address, the sessions open over all smtpd processes and the
 * connections, messages, recipients and AUTH failures in the current time unit
 * (anvil_rate_time_unit). It knows no limits: smtpd (smtpd_anvil.c) asks with
 * IPC_ANVIL_REQ and compares the counts in IPC_ANVIL_REPLY with its own settings. One
 * process, started and restarted by master like qmgr, running as mail_owner chrooted like
 * smtpd; master gives it one socket per smtpd (IPC_MASTER_PEER). Its counters reach
 * `postern stats` through IPC_CAP_COUNTERS. */
#ifndef POSTERN_ANVIL_H
#define POSTERN_ANVIL_H

#define ANVIL_MAX_CLIENTS   100000      /* table cap: memory stays bounded (~20 MB) */
#define ANVIL_SWEEP_MIN_MS  1000        /* the sweep runs once per time unit, within these */
#define ANVIL_SWEEP_MAX_MS  60000
#define ANVIL_COUNTERS_N    6           /* counters reported to master */

#endif
