/* daemon - what every Postern daemon does at start, in one place.
 *
 * Each daemon is exec'd by master as `<name> -c DIR -i SLOT [-d]` (doc/internals.md).
 * daemon_start() parses that, loads the configuration (fatal with file:line on error) and
 * sets up logging from it: stderr with -d, else syslog with the configured facility, at the
 * configured level. Also the control messages every daemon answers the same way (counters,
 * log level). Used by qmgr, smtpd, local, smtp and anvil; master has its own arguments. */
#ifndef POSTERN_DAEMON_H
#define POSTERN_DAEMON_H

#include "config.h"
#include "ev.h"
#include "ipc.h"

#define DAEMON_MASTER_FD 3      /* the master channel, in every daemon */

struct daemon_args {
    const char    *name;        /* program name for logs */
    int            slot;        /* -i: which of several processes this is */
    int            foreground;  /* -d: log to stderr */
    struct config *cfg;
};

/* daemon_start - parse argv, load the config and start logging; exits on bad arguments. */
void        daemon_start(struct daemon_args *, const char *name, int argc, char **argv);
/* daemon_hostname - myhostname from the config, else the system's name; never NULL. */
const char *daemon_hostname(const struct config *);
/* daemon_fd_prepare - make an inherited descriptor non-blocking and close-on-exec (fatal). */
void        daemon_fd_prepare(int fd);
/* daemon_master_open - wrap fd 3 (fatal if master did not pass it) and say HELLO as kind
 * (enum ipc_peer_kind); frames from master go to cb. */
struct ipc_conn *daemon_master_open(struct ev *, unsigned kind, ipc_frame_cb cb, void *arg);
/* daemon_send_counters - answer master's CTL_COUNTERS_REQ (reqid) with n counters. */
void daemon_send_counters(struct ipc_conn *master, uint32_t reqid, const char **names,
                          const uint64_t *values, size_t n);
/* daemon_ctl_log_level - apply master's CTL_LOG_LEVEL (fatal if malformed). */
void daemon_ctl_log_level(const struct ipc_frame *f);

#endif
