/* master - the supervisor's shared state and the interfaces between its files.
 *
 * master.c owns the process (arguments, configuration, daemonising, signals, reload, stop);
 * master_listen.c parses `host:port` items and binds the listening sockets; master_queue.c
 * creates the queue directory layout; master_pid.c holds the pid file; master_spawn.c
 * fork+execs the daemons, brokers their peer sockets, reaps and restarts them; and
 * master_throttle.c computes the restart back-off; master_tls.c makes, rotates and hands out
 * the session-ticket keys every smtpd shares; master_control.c serves the control socket
 * public/control (daemon commands itself, queue commands handed to qmgr); master_watch.c
 * stats the files the daemons loaded (maps, rule files, certificates, passwd) every
 * watch_interval and replaces the daemons whose files changed, with master_watch_state.c
 * deciding what counts as a settled change. master runs as root when started by root,
 * never parses network input and never drops its privileges. */
#ifndef POSTERN_MASTER_H
#define POSTERN_MASTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct config;
struct ev;
struct master_spawn;
struct master_tls;
struct master_control;
struct master_watch;
struct ipc_conn;
struct ipc_ctl_handoff;
struct ipc_ctl_counters;
struct buf;

#define MASTER_LISTEN_BACKLOG   1024
#define MASTER_LISTEN_MAX       64          /* listening sockets passed to smtpd */
#define MASTER_STOP_WAIT_MS     15000       /* SIGTERM, then SIGKILL after this long */
#define MASTER_PID_FILE         "pid/master.pid"
#define MASTER_SUBMIT_PATH      "public/submit"     /* sendmail -> smtpd (service submit) */

/* One listening socket: which service it is for and where it listens. */
struct master_listener {
    char                   *service;        /* "smtp", "submission", "smtps", "submit" */
    char                   *spec;           /* as configured, e.g. "[::1]:2525"; submit:
                                             * the socket's path */
    struct sockaddr_storage addr;           /* parsed, zero-padded: comparable with memcmp */
    socklen_t               addrlen;
    int                     fd;             /* bound, listening, non-blocking, close-on-exec */
};

struct master_listeners {
    struct master_listener *v;
    size_t                  n;
};

/* The whole supervisor. One instance, passed to every function. */
struct master {
    struct ev              *ev;
    struct config          *cfg;
    char                   *confdir;        /* absolute */
    char                   *exe_dir;        /* folder of the running master binary */
    char                   *daemon_dir;     /* where the daemon programs are */
    char                   *pid_path;       /* <queue_directory>/pid/master.pid */
    int                     pid_fd;         /* locked while master lives; -1 if none */
    int                     foreground;     /* -f: stderr logging, daemons get -d */
    int                     is_root;
    int                     stopping;       /* SIGTERM/SIGINT received */
    uint64_t                stop_timer;
    struct master_listeners listeners;
    struct master_spawn    *spawn;
    struct master_tls      *tls;            /* session-ticket keys (master_tls.c) */
    struct master_control  *control;        /* public/control (master_control.c) */
    struct master_watch    *watch;          /* changed files (master_watch.c) */
    uint64_t                started_ms;     /* ev_now_ms() at start, for postern status */
    int                     smtpd_paused;   /* postern pause smtpd: new smtpds are told too */
};

/* master_listen.c */

/* master_listen_parse - parse `a.b.c.d:port`, `[v6]:port` or `*:port` (any IPv4 address)
 * into a socket address. Addresses must be numeric: master resolves no names. -1 with the
 * reason in err. */
int         master_listen_parse(const char *spec, struct sockaddr_storage *addr,
                                socklen_t *addrlen, char *err, size_t errlen);
/* master_listen_check - parse every configured listener without binding (master -n). */
int         master_listen_check(const struct config *, char *err, size_t errlen);
/* master_listen_open - bind every listener named by the config's smtp_listen,
 * submission_listen and smtps_listen. A listener whose service and address are also in old
 * reuses old's socket (a duplicate of it), so a reload can keep ports that stay. -1 with
 * "key: item: reason" in err and nothing left open. */
int         master_listen_open(const struct config *, const struct master_listeners *old,
                               struct master_listeners *out, char *err, size_t errlen);
/* master_listen_add_submit - append <queue_directory>/public/submit (UNIX stream, 0666,
 * service "submit") to set: old's socket duplicated if it has one, else bound anew (a stale
 * file replaced). -1 with "path: reason" in err and set unchanged. */
int         master_listen_add_submit(const struct config *, const struct master_listeners *old,
                                     struct master_listeners *set, char *err, size_t errlen);
/* master_listen_same - 1 if both sets have the same services on the same addresses. */
int         master_listen_same(const struct master_listeners *, const struct master_listeners *);
/* master_listen_services - "smtp,smtp,submission": the POSTERN_LISTENERS value (xmalloc'd). */
char       *master_listen_services(const struct master_listeners *);
void        master_listen_close(struct master_listeners *);
/* master_listen_unlink - remove the files of the UNIX listeners (public/submit): at exit. */
void        master_listen_unlink(const struct master_listeners *);

/* master_queue.c */

/* master_queue_layout - create the queue directories of doc/internals.md with their modes,
 * and, when root, their owners. Fatal on error (start-up only). */
void        master_queue_layout(const struct config *, int is_root);

/* master_pid.c */

/* master_pid_lock - open and lock the pid file. Returns the descriptor, or -1 with errno
 * EEXIST and *holder set when a live master holds it (fatal on other errors). */
int         master_pid_lock(const char *path, pid_t *holder);
void        master_pid_write(int fd, const char *path);     /* this process's pid; fatal */
void        master_pid_remove(int *fd, const char *path);   /* unlink, unlock, close */

/* master_throttle.c */

#define MASTER_THROTTLE_MIN_RUN_MS  10000   /* a daemon that ran less is throttled */
#define MASTER_THROTTLE_FIRST_MS    1000
#define MASTER_THROTTLE_MAX_MS      60000

/* master_throttle_delay - the wait before restarting a daemon that ran ran_ms; *backoff_ms
 * (0 at first) carries the doubling from one quick death to the next. */
uint64_t    master_throttle_delay(uint64_t ran_ms, uint64_t *backoff_ms);

/* master_tls.c */

/* master_tls_start - at start: make the first session-ticket key (fatal if the random
 * generator fails); at start and after a reload: (re)arm the rotation timer from
 * smtpd_tls_ticket_rotation, counted from the last rotation, so reloads never postpone it
 * (0 = never rotate). Keys survive reloads, so tickets stay valid across them. */
void        master_tls_start(struct master *);
/* master_tls_send - send the keys, newest (encrypting) first, as IPC_MASTER_TLS_KEYS on an
 * smtpd's master channel; -1 if the frame could not be queued (logged by the caller). */
int         master_tls_send(const struct master *, struct ipc_conn *);
/* master_tls_free - wipe the keys (explicit_bzero), stop the timer, free. */
void        master_tls_free(struct master *);

/* master_spawn.c */

/* master_spawn_start - create the daemon slots of the current config and start them. */
void        master_spawn_start(struct master *);
/* master_spawn_retire - reload: forget every running daemon's slot and retire it: smtpd
 * gets SIGUSR1 (stop accepting, finish open sessions, exit; SIGKILL if it still runs
 * smtpd_session_timeout + MASTER_STOP_WAIT_MS later), the others SIGTERM (SIGKILL after
 * MASTER_STOP_WAIT_MS). A retired daemon is not restarted. */
void        master_spawn_retire(struct master *);
/* MASTER_KIND_BIT - a daemon kind (enum ipc_peer_kind) in a set of kinds. */
#define MASTER_KIND_BIT(kind)   (1u << (kind))
/* master_spawn_name - "smtpd", "qmgr", ... for an enum ipc_peer_kind. */
const char *master_spawn_name(unsigned kind);
/* master_spawn_replace - replace the running daemons of the kinds in the set (files they
 * loaded changed). smtpd, local and smtp get a successor in the same slot while the old
 * process goes on serving; only when the successor says HELLO (it opened everything) is the
 * old one retired as on reload; a successor that exits before HELLO is logged and the old
 * process keeps serving. qmgr (one database owner) and anvil are retired and restarted. A
 * slot with no process (throttled after quick deaths) is started now. */
void        master_spawn_replace(struct master *, unsigned kinds);
/* master_spawn_stop - stop: no more restarts, SIGTERM every daemon. */
void        master_spawn_stop(struct master *);
void        master_spawn_kill(struct master *);            /* SIGKILL every daemon left */
/* master_spawn_reap - collect exited children, log them, schedule restarts. */
void        master_spawn_reap(struct master *);
size_t      master_spawn_running(const struct master *);   /* daemons not yet reaped */
/* master_spawn_tls_keys - send the current ticket keys to every smtpd that said HELLO
 * (retired ones included: they still finish their sessions). */
void        master_spawn_tls_keys(struct master *);
void        master_spawn_free(struct master *);

/* One live daemon, as postern status shows it. */
struct master_daemon_info {
    const char *name;
    unsigned    kind;                       /* enum ipc_peer_kind */
    unsigned    slot;
    pid_t       pid;
    uint64_t    uptime_s;
    unsigned    restarts;                   /* of its slot since master started */
    uint32_t    caps;                       /* IPC_CAP_*; 0 until HELLO and CAPS */
    int         retired;                    /* reload: finishing, not restarted */
};
/* master_spawn_list - every live daemon (xcalloc'd array, *out; the count returned). */
size_t      master_spawn_list(const struct master *, struct master_daemon_info **out);
/* master_spawn_handoff - pass a control client (fd, copied) to qmgr; -1 if no qmgr is
 * ready or its channel is full. */
int         master_spawn_handoff(struct master *, const struct ipc_ctl_handoff *, int fd);
/* master_spawn_counters_req - ask every daemon with IPC_CAP_COUNTERS; how many were asked.
 * Answers reach master_control_counters() with the same reqid. */
size_t      master_spawn_counters_req(struct master *, uint32_t reqid);
/* master_spawn_log_level, master_spawn_pause_smtpd - tell every daemon (every smtpd) that
 * announced the capability; the others are named in `without` ("local[123] smtp[124]").
 * The pause state is remembered and sent to every smtpd that announces IPC_CAP_PAUSE later
 * (restarts, reloads). */
size_t      master_spawn_log_level(struct master *, uint32_t level, struct buf *without);
size_t      master_spawn_pause_smtpd(struct master *, int paused, struct buf *without);

/* master_watch.c */

#define MASTER_WATCH_SETTLE_MS  2000    /* a changed file must look the same this long */

/* master_watch_start - at start and after a reload, before the daemons are started: list
 * the files the configuration makes the daemons load, note how they are now, and stat them
 * every watch_interval (0: never; the list is dropped). */
void        master_watch_start(struct master *);
void        master_watch_free(struct master *);

/* master_watch_state.c */

/* What stat() says about a file; exists = 0 if stat() failed. */
struct master_watch_stat {
    int      exists;
    uint64_t dev, ino;
    int64_t  size, mtime_ns, ctime_ns;
};

/* One watched file: what the daemons loaded, and a different state being watched. */
struct master_watch_state {
    struct master_watch_stat loaded;
    struct master_watch_stat seen;      /* pending: differs from loaded */
    uint64_t                 seen_ms;   /* when seen was first observed */
    int                      pending;
    int                      reported;  /* seen (a missing file) was reported as GONE */
};

enum master_watch_change {
    MASTER_WATCH_SAME,                  /* as loaded (or already reported) */
    MASTER_WATCH_SETTLING,              /* changed less than settle_ms ago */
    MASTER_WATCH_CHANGED,               /* changed and settled: until accepted */
    MASTER_WATCH_GONE,                  /* missing and settled: said once */
};

void        master_watch_state_read(const char *path, struct master_watch_stat *);
void        master_watch_state_init(struct master_watch_state *, const struct master_watch_stat *);
/* master_watch_state_step - compare now (read at now_ms) with what was loaded. */
enum master_watch_change master_watch_state_step(struct master_watch_state *,
                                                 const struct master_watch_stat *now,
                                                 uint64_t now_ms, uint64_t settle_ms);
/* master_watch_state_accept - the daemons load the CHANGED state now: it becomes loaded. */
void        master_watch_state_accept(struct master_watch_state *);

/* master_control.c */

/* master_control_start - listen on <queue_directory>/public/control (0666); fatal on error
 * (start-up only). */
void        master_control_start(struct master *);
/* master_control_counters - a daemon's answer to a counters request. */
void        master_control_counters(struct master *, pid_t pid, uint32_t reqid,
                                    const struct ipc_ctl_counters *);
/* master_control_stop - close the listener and every client, unlink the socket. */
void        master_control_stop(struct master *);

#endif
