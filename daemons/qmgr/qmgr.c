/* qmgr - the queue manager: sole owner of the Berkeley DB queue and the spool files.
 *
 * Started by master as `qmgr -c DIR -i SLOT [-d]` with its master channel on fd 3 (see
 * doc/internals.md). Start-up: read the config, chroot to queue_directory and become
 * queue_owner (when root; otherwise just chdir there), open and recover the database,
 * repair the queue (in-flight recipients due again, finished messages and orphan bodies
 * removed), open body/ for the group sync (qmgr_body), start the reaper thread that unlinks
 * finished bodies, say HELLO to master, then serve on one event loop: smtpd peers (qmgr_smtpd),
 * delivery agents, local and smtp (qmgr_sched), master (new peer sockets). The routing
 * maps (transport_map, smtp_tls_policy_map) are opened before the chroot; a configured map
 * that cannot be opened is logged and makes every lookup fail temporarily (recipients are
 * deferred, never misrouted). SIGTERM, SIGINT or EOF from
 * master: finish the turn, write what is pending, close the environment cleanly, exit 0. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "daemon.h"
#include "ev.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "map.h"
#include "priv.h"
#include "qmgr.h"
#include "qmgr_body.h"
#include "qmgr_ctl.h"
#include "qmgr_route.h"
#include "qmgr_sched.h"
#include "qmgr_smtpd.h"
#include "qmgr_store.h"

#define QMGR_ORPHAN_AGE       3600            /* seconds before an unreferenced body goes */
#define QMGR_CHECKPOINT_MS    (60 * 1000)
#define QMGR_SWEEP_MS         (3600 * 1000)

struct ev          *qmgr_ev;
struct qmgr_store  *qmgr_db;
struct qmgr_params  qmgr_params;
struct qmgr_route_conf qmgr_route;

/* A routing map: open, or configured but unavailable (every lookup then fails). */
struct qmgr_map {
    const char *name;
    struct map *map;
};

static struct qmgr_map  qmgr_transport_map = { "transport_map", NULL };
static struct qmgr_map  qmgr_tls_policy_map = { "smtp_tls_policy_map", NULL };

static struct ipc_conn *qmgr_master;
static int              qmgr_slot;

/* qmgr_wall_ms - wall-clock milliseconds. */
uint64_t
qmgr_wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* qmgr_map_lookup - qmgr_route_lookup_fn over a struct qmgr_map. */
static int
qmgr_map_lookup(void *arg, const char *key, char *val, size_t vallen)
{
    struct qmgr_map *m = arg;

    if (m->map == NULL)
        return -1;
    return map_lookup(m->map, key, val, vallen);
}

/* qmgr_map_open - open a routing map named by config key (before chroot); NULL fn when the
 * key is empty. */
static void
qmgr_map_open(const struct config *cfg, struct qmgr_map *m, qmgr_route_lookup_fn *fn,
              void **arg)
{
    const char *path = config_path(cfg, m->name);
    char        err[512];

    *fn = NULL;
    *arg = NULL;
    if (*path == '\0')
        return;
    if ((m->map = map_open(path, err, sizeof(err))) == NULL)
        log_warnx("%s unavailable, its recipients will be deferred: %s", m->name, err);
    *fn = qmgr_map_lookup;
    *arg = m;
}

/* qmgr_route_setup - the routing settings and maps. */
static void
qmgr_route_setup(const struct config *cfg)
{
    memset(&qmgr_route, 0, sizeof(qmgr_route));
    qmgr_route.local_domains = config_list(cfg, "local_domains", &qmgr_route.nlocal);
    qmgr_route.relayhost = config_str(cfg, "relayhost");
    if (qmgr_route_parse_level(config_str(cfg, "smtp_tls_security_level"),
                               &qmgr_route.tls_level) == -1)
        fatalx("smtp_tls_security_level: bad value");
    qmgr_map_open(cfg, &qmgr_transport_map, &qmgr_route.transport, &qmgr_route.transport_arg);
    qmgr_map_open(cfg, &qmgr_tls_policy_map, &qmgr_route.tls_policy,
                  &qmgr_route.tls_policy_arg);
}

/* qmgr_stop - leave the event loop; main() closes everything. */
static void
qmgr_stop(const char *why)
{
    log_info("stopping: %s", why);
    ev_stop(qmgr_ev);
}

/* qmgr_signal - SIGTERM, SIGINT. */
static void
qmgr_signal(int sig, void *arg)
{
    (void)arg;
    qmgr_stop(sig == SIGTERM ? "SIGTERM" : "signal");
}

/* qmgr_master_control - the control messages master sends (we asked for them with
 * IPC_MASTER_CAPS): a CLI client, a counters request, a new log level. 1 if f was one. */
static int
qmgr_master_control(const struct ipc_frame *f)
{
    struct ipc_ctl_counters_req req;

    switch (f->type) {
    case IPC_CTL_HANDOFF:
        qmgr_ctl_handoff(f);
        return 1;
    case IPC_CTL_COUNTERS_REQ:
        if (f->fd >= 0 || ipc_ctl_counters_req_dec(f, &req) == -1)
            fatalx("malformed ctl_counters_req from master");
        qmgr_ctl_counters(qmgr_master, f->reqid);
        return 1;
    case IPC_CTL_LOG_LEVEL:
        daemon_ctl_log_level(f);
        return 1;
    }
    return 0;
}

/* qmgr_master_frame - master hands us peer sockets and control messages; EOF means master
 * is gone. */
static void
qmgr_master_frame(struct ipc_conn *conn, const struct ipc_frame *f, void *arg)
{
    struct ipc_master_peer p;

    (void)conn;
    (void)arg;
    if (f == NULL) {
        ipc_conn_free(&qmgr_master);
        qmgr_stop("master closed the channel");
        return;
    }
    if (qmgr_master_control(f))
        return;
    /* master is trusted: anything malformed from it is a bug. */
    if (f->type != IPC_MASTER_PEER || ipc_master_peer_dec(f, &p) == -1)
        fatalx("malformed %s from master", ipc_type_name(f->type));
    if (f->fd == -1)
        fatalx("master_peer without a descriptor");
    switch (p.kind) {
    case IPC_PEER_SMTPD:
        qmgr_smtpd_add(f->fd, p.id);
        break;
    case IPC_PEER_LOCAL:
    case IPC_PEER_SMTP:
        qmgr_sched_add_agent(f->fd, p.kind, p.id);
        break;
    default:
        log_warnx("master sent a peer of kind %u, ignored", p.kind);
        close(f->fd);
        break;
    }
    ipc_master_peer_clear(&p);
}

/* qmgr_checkpoint_cb - a periodic checkpoint keeps recovery short and logs removable. */
static void
qmgr_checkpoint_cb(void *arg)
{
    struct qmgr_store_stats st;

    (void)arg;
    qmgr_store_checkpoint(qmgr_db);
    qmgr_store_get_stats(qmgr_db, &st);
    log_debug("store: group_commits=%llu messages=%llu log_flushes=%llu result_txns=%llu",
              (unsigned long long)st.insert_txns, (unsigned long long)st.inserted_msgs,
              (unsigned long long)st.log_syncs, (unsigned long long)st.result_txns);
    ev_timer_add(qmgr_ev, QMGR_CHECKPOINT_MS, qmgr_checkpoint_cb, NULL);
}

/* qmgr_sweep_cb - hourly: bodies left by smtpd sessions that never committed. */
static void
qmgr_sweep_cb(void *arg)
{
    (void)arg;
    qmgr_body_sweep(qmgr_db, QMGR_ORPHAN_AGE);
    ev_timer_add(qmgr_ev, QMGR_SWEEP_MS, qmgr_sweep_cb, NULL);
}

/* qmgr_recovered_gone - a finished message removed by recovery: its body goes too. */
static void
qmgr_recovered_gone(const char *qid, void *arg)
{
    (void)arg;
    qmgr_body_unlink(qid);
    log_info("%s: removed", qid);
}

/* qmgr_enter_queue - chroot to the queue directory and become queue_owner (root), or just
 * work in it (not root, where missing directories are created). */
static void
qmgr_enter_queue(const struct config *cfg)
{
    const char *qdir = config_path(cfg, "queue_directory");
    const char *owner = config_str(cfg, "queue_owner");

    if (priv_is_root()) {
        uid_t uid;
        gid_t gid;

        if (priv_lookup(owner, &uid, &gid) == -1)
            fatalx("queue_owner %s: no such user", owner);
        if (uid == 0)
            fatalx("queue_owner %s must not be root", owner);
        priv_drop(owner, qdir);
        return;
    }
    if (mkdir(qdir, 0755) == -1 && errno != EEXIST)
        fatal("mkdir %s", qdir);
    if (chdir(qdir) == -1)
        fatal("chdir %s", qdir);
    if (mkdir("db", 0700) == -1 && errno != EEXIST)
        fatal("mkdir %s/db", qdir);
    if (mkdir("body", 0700) == -1 && errno != EEXIST)
        fatal("mkdir %s/body", qdir);
    priv_drop(NULL, NULL);
}

/* qmgr_raise_nofile - every open message holds a descriptor: allow as many as we may. */
static void
qmgr_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
            log_warn("setrlimit RLIMIT_NOFILE");
    }
}

/* qmgr_read_params - the settings qmgr uses, from the config. */
static void
qmgr_read_params(const struct config *cfg)
{
    long long sessions = config_int(cfg, "smtpd_max_sessions");
    long long rcpts = config_int(cfg, "smtpd_recipient_limit");

    qmgr_params.retry_min = config_time_ms(cfg, "queue_retry_min") / 1000;
    qmgr_params.retry_max = config_time_ms(cfg, "queue_retry_max") / 1000;
    qmgr_params.lifetime = config_time_ms(cfg, "queue_lifetime") / 1000;
    if (qmgr_params.retry_min == 0)
        qmgr_params.retry_min = 1;
    if (qmgr_params.retry_max < qmgr_params.retry_min)
        qmgr_params.retry_max = qmgr_params.retry_min;
    qmgr_params.local_concurrency = (uint32_t)config_int(cfg, "local_concurrency");
    qmgr_params.dest_initial = (uint32_t)config_int(cfg, "smtp_initial_destination_concurrency");
    qmgr_params.dest_limit = (uint32_t)config_int(cfg, "smtp_destination_concurrency_limit");
    qmgr_params.agent_max = (uint32_t)config_int(cfg, "smtp_max_connections");
    qmgr_params.dest_pause = config_time_ms(cfg, "queue_destination_pause") / 1000;
    qmgr_params.delay_warning = config_time_ms(cfg, "queue_delay_warning") / 1000;
    qmgr_params.lmtp_assume_final = config_bool(cfg, "lmtp_assume_final");
    snprintf(qmgr_params.myhostname, sizeof(qmgr_params.myhostname), "%s",
             daemon_hostname(cfg));
    qmgr_params.rcpt_limit = rcpts > 0 ? (uint32_t)rcpts : 1;
    /* One transaction per session at a time, with slack for sessions being torn down. */
    qmgr_params.max_open = sessions > 0 && sessions < 1000000 ? (uint32_t)sessions * 2
                                                              : 2000000;
}

/* main - start up, recover the queue, say hello to master, serve until told to stop. */
int
main(int argc, char **argv)
{
    struct daemon_args      args;
    struct qmgr_store_stats st;
    struct config          *cfg;
    char                    err[1024];

    daemon_start(&args, "qmgr", argc, argv);
    cfg = args.cfg;
    qmgr_slot = args.slot;
    qmgr_read_params(cfg);

    umask(077);
    signal(SIGPIPE, SIG_IGN);
    qmgr_raise_nofile();
    qmgr_route_setup(cfg);
    qmgr_enter_queue(cfg);

    /* Paths from here on are relative to the queue directory (our chroot as root). */
    if ((qmgr_db = qmgr_store_open("db", err, sizeof(err))) == NULL)
        fatalx("queue database: %s", err);
    if (qmgr_store_recover(qmgr_db, qmgr_recovered_gone, NULL) == -1)
        fatalx("queue database: recovery pass failed");
    /* No smtpd is connected yet, so no body is being written for us: every body without
     * an envelope is a leftover, whatever its age. */
    qmgr_body_verify(qmgr_db);
    qmgr_body_sweep(qmgr_db, 0);
    qmgr_body_group_sync_init();

    if ((qmgr_ev = ev_new()) == NULL)
        fatalx("ev_new");
    if (ev_signal(qmgr_ev, SIGTERM, qmgr_signal, NULL) == -1
        || ev_signal(qmgr_ev, SIGINT, qmgr_signal, NULL) == -1)
        fatalx("cannot watch signals");
    qmgr_master = daemon_master_open(qmgr_ev, IPC_PEER_QMGR, qmgr_master_frame, NULL);
    qmgr_body_reap_start();
    qmgr_sched_start();
    ev_timer_add(qmgr_ev, QMGR_CHECKPOINT_MS, qmgr_checkpoint_cb, NULL);
    ev_timer_add(qmgr_ev, QMGR_SWEEP_MS, qmgr_sweep_cb, NULL);

    {
        struct ipc_master_caps caps = { .caps = IPC_CAP_COUNTERS | IPC_CAP_LOG_LEVEL };

        if (ipc_master_caps_send(qmgr_master, 0, &caps, -1) == -1)
            fatalx("cannot send caps to master");
    }
    log_info("started slot=%d retry_min=%llus retry_max=%llus lifetime=%llus "
             "local_concurrency=%u destination_concurrency=%u..%u delay_warning=%llus",
             qmgr_slot, (unsigned long long)qmgr_params.retry_min,
             (unsigned long long)qmgr_params.retry_max,
             (unsigned long long)qmgr_params.lifetime, qmgr_params.local_concurrency,
             qmgr_params.dest_initial, qmgr_params.dest_limit,
             (unsigned long long)qmgr_params.delay_warning);

    if (ev_run(qmgr_ev) == -1)
        log_err("event loop failed");

    /* Finish what this turn started, then close the environment cleanly. */
    qmgr_ctl_shutdown();
    qmgr_smtpd_shutdown();
    qmgr_sched_shutdown();
    qmgr_body_reap_stop();
    qmgr_body_group_sync_close();
    qmgr_store_get_stats(qmgr_db, &st);
    log_info("stopped: group_commits=%llu messages=%llu log_flushes=%llu body_syncfs=%llu "
             "body_syncfs_failed=%llu body_fdatasyncs=%llu bodies_unlinked_later=%llu",
             (unsigned long long)st.insert_txns, (unsigned long long)st.inserted_msgs,
             (unsigned long long)st.log_syncs, (unsigned long long)qmgr_body_stats.syncfs,
             (unsigned long long)qmgr_body_stats.syncfs_failed,
             (unsigned long long)qmgr_smtpd_body_fdatasyncs,
             (unsigned long long)qmgr_body_stats.unlinked_later);
    qmgr_store_close(&qmgr_db);
    ipc_conn_free(&qmgr_master);
    ev_free(&qmgr_ev);
    map_close(&qmgr_transport_map.map);
    map_close(&qmgr_tls_policy_map.map);
    config_free(&cfg);
    return 0;
}
