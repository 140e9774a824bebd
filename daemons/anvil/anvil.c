/* anvil - the client counter service: per-client sessions and rates for every smtpd.
 *
 * Started by master as `anvil -c DIR -i SLOT [-d]` (doc/internals.md), one process. We
 * read anvil_rate_time_unit, draw the key of the table's hash, drop privileges like smtpd
 * (mail_owner, chrooted to smtpd_chroot or <queue_directory>/empty; there is nothing to
 * open first), say HELLO and CAPS (counters, log level) to master and serve on one event
 * loop. Master sends one socket per smtpd (IPC_MASTER_PEER), again when either side is
 * restarted. Each IPC_ANVIL_REQ is counted in the table (anvil_table.c) and, when its
 * reqid is not 0, answered with IPC_ANVIL_REPLY; DISCONNECT is never answered. smtpd is
 * untrusted: a malformed frame, or one we cannot answer because the peer does not read,
 * drops that peer only. When a peer goes, the sessions it counted are forgotten, so a
 * crashed smtpd leaves no phantom sessions behind. A sweep once per time unit drops idle
 * clients whose unit is over. Master is trusted: a malformed frame from it is fatal.
 * SIGTERM, SIGINT or EOF from master: exit 0 (the counts are soft state; smtpd fails
 * open until the next anvil is connected). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "anvil.h"
#include "anvil_table.h"
#include "buf.h"
#include "config.h"
#include "daemon.h"
#include "ev.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "priv.h"

/* One smtpd connection. */
struct anvil_peer {
    struct anvil_peer *next;
    struct ipc_conn   *conn;
    uint32_t           id;              /* ours, never reused: the table counts by it */
    uint32_t           slot;            /* the smtpd's slot, for logs */
};

static struct {
    struct config      *cfg;
    struct ev          *ev;
    struct ipc_conn    *master;
    struct anvil_table *table;
    struct anvil_peer  *peers;
    uint32_t            next_peer;
    uint64_t            unit_ms;
    uint64_t            sweep_ms;
    uint64_t            sweep_timer;
    uint64_t            requests;       /* IPC_ANVIL_REQ counted */
    uint64_t            peers_dropped;  /* for malformed frames or unread answers */
} anvil;

/* anvil_stop - leave the loop; main() cleans up. */
static void
anvil_stop(const char *why)
{
    log_info("stopping: %s", why);
    ev_stop(anvil.ev);
}

/* anvil_signal - SIGTERM, SIGINT. */
static void
anvil_signal(int sig, void *arg)
{
    (void)arg;
    anvil_stop(sig == SIGTERM ? "SIGTERM" : "signal");
}

/* anvil_peer_drop - forget a peer and the sessions it counted. */
static void
anvil_peer_drop(struct anvil_peer *p)
{
    struct anvil_peer **pp = &anvil.peers;

    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    anvil_table_peer_gone(anvil.table, p->id);
    ipc_conn_free(&p->conn);
    free(p);
}

/* anvil_peer_frame - one request from an smtpd, or its end. */
static void
anvil_peer_frame(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    struct anvil_peer     *p = arg;
    struct ipc_anvil_req   req;
    struct ipc_anvil_reply reply;
    struct anvil_counts    counts;

    (void)c;
    if (f == NULL) {
        log_debug("smtpd slot=%u peer=%u: gone", p->slot, p->id);
        anvil_peer_drop(p);
        return;
    }
    if (f->fd >= 0)
        close(f->fd);
    if (f->type != IPC_ANVIL_REQ || f->fd >= 0 || ipc_anvil_req_dec(f, &req) == -1 ||
        anvil_table_event(anvil.table, p->id, req.event, req.client, ev_now_ms(),
                          &counts) == -1) {
        log_warnx("smtpd slot=%u peer=%u: malformed %s: connection dropped", p->slot, p->id,
                  ipc_type_name(f->type));
        anvil.peers_dropped++;
        anvil_peer_drop(p);
        return;
    }
    anvil.requests++;
    if (f->reqid == 0 || req.event == IPC_ANVIL_DISCONNECT)
        return;
    reply.event = req.event;
    reply.concurrent = counts.concurrent;
    reply.rate = counts.rate;
    if (ipc_anvil_reply_send(p->conn, f->reqid, &reply, -1) == -1) {
        /* it does not read its answers: its sessions wait in vain either way */
        log_warnx("smtpd slot=%u peer=%u: cannot answer: connection dropped", p->slot, p->id);
        anvil.peers_dropped++;
        anvil_peer_drop(p);
    }
}

/* anvil_peer_add - master gave us a socket to an smtpd. */
static void
anvil_peer_add(int fd, uint32_t slot)
{
    struct anvil_peer *p = xcalloc(1, sizeof(*p));
    int                fl = fcntl(fd, F_GETFL);

    if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
        log_warn("smtpd slot=%u: O_NONBLOCK", slot);
    p->id = ++anvil.next_peer;
    p->slot = slot;
    p->conn = ipc_conn_new(anvil.ev, fd, anvil_peer_frame, p);
    p->next = anvil.peers;
    anvil.peers = p;
    log_debug("smtpd slot=%u peer=%u: connected", slot, p->id);
}

/* anvil_counters - answer master's IPC_CTL_COUNTERS_REQ (doc/status.md). */
static void
anvil_counters(uint32_t reqid)
{
    struct anvil_table_stats st;
    const char              *names[ANVIL_COUNTERS_N] = {
        "clients", "peers", "requests", "evictions", "table_full", "peers_dropped"
    };
    uint64_t                 v[ANVIL_COUNTERS_N];
    uint64_t                 npeers = 0;

    for (const struct anvil_peer *p = anvil.peers; p != NULL; p = p->next)
        npeers++;
    anvil_table_get_stats(anvil.table, &st);
    v[0] = st.clients;
    v[1] = npeers;
    v[2] = anvil.requests;
    v[3] = st.evictions;
    v[4] = st.full;
    v[5] = anvil.peers_dropped;
    daemon_send_counters(anvil.master, reqid, names, v, ANVIL_COUNTERS_N);
}

/* anvil_master_control - the control messages we asked for with IPC_MASTER_CAPS; 1 if f
 * was one. */
static int
anvil_master_control(const struct ipc_frame *f)
{
    struct ipc_ctl_counters_req req;

    switch (f->type) {
    case IPC_CTL_COUNTERS_REQ:
        if (f->fd >= 0 || ipc_ctl_counters_req_dec(f, &req) == -1)
            fatalx("master: malformed %s", ipc_type_name(f->type));
        anvil_counters(f->reqid);
        return 1;
    case IPC_CTL_LOG_LEVEL:
        daemon_ctl_log_level(f);
        return 1;
    }
    return 0;
}

/* anvil_master_frame - peer sockets and control messages; EOF means master is gone. */
static void
anvil_master_frame(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    struct ipc_master_peer m;

    (void)c;
    (void)arg;
    if (f == NULL) {
        ipc_conn_free(&anvil.master);
        anvil_stop("master closed the channel");
        return;
    }
    if (anvil_master_control(f))
        return;
    if (f->type != IPC_MASTER_PEER) {
        log_debug("master: %s ignored", ipc_type_name(f->type));
        if (f->fd >= 0)
            close(f->fd);
        return;
    }
    if (ipc_master_peer_dec(f, &m) == -1 || f->fd < 0 || m.kind != IPC_PEER_SMTPD) {
        if (f->fd >= 0)
            close(f->fd);
        fatalx("master: malformed %s", ipc_type_name(f->type));
    }
    anvil_peer_add(f->fd, m.id);
}

/* anvil_sweep - drop idle clients whose time unit is over; again in sweep_ms. */
static void
anvil_sweep(void *arg)
{
    struct anvil_table_stats st;
    size_t                   n;

    (void)arg;
    n = anvil_table_sweep(anvil.table, ev_now_ms());
    anvil_table_get_stats(anvil.table, &st);
    if (n > 0)
        log_debug("sweep: %zu idle clients dropped, %llu left", n,
                  (unsigned long long)st.clients);
    anvil.sweep_timer = ev_timer_add(anvil.ev, anvil.sweep_ms, anvil_sweep, NULL);
}

/* anvil_table_open - the table, keyed with fresh random bytes (fatal if there are none:
 * a predictable key would let clients pick colliding addresses). */
static void
anvil_table_open(void)
{
    uint8_t key[ANVIL_TABLE_KEY_LEN];
    ssize_t n;

    while ((n = getrandom(key, sizeof(key), 0)) == -1 && errno == EINTR)
        continue;
    if (n != (ssize_t)sizeof(key))
        fatal("getrandom");
    anvil.table = anvil_table_new(anvil.unit_ms, ANVIL_MAX_CLIENTS, key);
    explicit_bzero(key, sizeof(key));
}

/* anvil_drop_privileges - as root: become mail_owner in smtpd's chroot. */
static void
anvil_drop_privileges(void)
{
    const char *chroot_dir = config_path(anvil.cfg, "smtpd_chroot");
    char       *dflt = NULL;

    if (!priv_is_root()) {
        priv_drop(NULL, NULL);
        return;
    }
    if (*chroot_dir == '\0')
        chroot_dir = dflt = xasprintf("%s/empty", config_path(anvil.cfg, "queue_directory"));
    priv_drop(config_str(anvil.cfg, "mail_owner"), chroot_dir);
    free(dflt);
}

/* main - drop privileges, say HELLO, count until told to stop. */
int
main(int argc, char **argv)
{
    struct daemon_args args;

    daemon_start(&args, "anvil", argc, argv);
    anvil.cfg = args.cfg;
    anvil.unit_ms = config_time_ms(anvil.cfg, "anvil_rate_time_unit");
    if (anvil.unit_ms == 0)
        anvil.unit_ms = 60000;
    anvil.sweep_ms = anvil.unit_ms;
    if (anvil.sweep_ms < ANVIL_SWEEP_MIN_MS)
        anvil.sweep_ms = ANVIL_SWEEP_MIN_MS;
    if (anvil.sweep_ms > ANVIL_SWEEP_MAX_MS)
        anvil.sweep_ms = ANVIL_SWEEP_MAX_MS;
    signal(SIGPIPE, SIG_IGN);
    if (fcntl(DAEMON_MASTER_FD, F_GETFD) == -1)
        fatal("master channel fd %d", DAEMON_MASTER_FD);
    anvil_table_open();
    tzset();                          /* log time stamps: load the zone before the chroot */
    {
        time_t    now = time(NULL);
        struct tm tm;
        (void)localtime_r(&now, &tm);
    }
    anvil.ev = ev_new();
    anvil_drop_privileges();

    if (ev_signal(anvil.ev, SIGTERM, anvil_signal, NULL) == -1 ||
        ev_signal(anvil.ev, SIGINT, anvil_signal, NULL) == -1)
        fatal("signals");
    anvil.master = daemon_master_open(anvil.ev, IPC_PEER_ANVIL, anvil_master_frame, NULL);
    {
        struct ipc_master_caps caps = { .caps = IPC_CAP_COUNTERS | IPC_CAP_LOG_LEVEL };

        if (ipc_master_caps_send(anvil.master, 0, &caps, -1) == -1)
            fatalx("master: cannot send caps");
    }
    anvil.sweep_timer = ev_timer_add(anvil.ev, anvil.sweep_ms, anvil_sweep, NULL);
    log_info("started slot=%d time_unit=%llums max_clients=%d", args.slot,
             (unsigned long long)anvil.unit_ms, ANVIL_MAX_CLIENTS);
    if (ev_run(anvil.ev) == -1)
        log_err("event loop failed");

    ev_timer_del(anvil.ev, anvil.sweep_timer);
    while (anvil.peers != NULL)
        anvil_peer_drop(anvil.peers);
    anvil_table_free(&anvil.table);
    ipc_conn_free(&anvil.master);
    ev_free(&anvil.ev);
    config_free(&anvil.cfg);
    log_info("stopped");
    return 0;
}
