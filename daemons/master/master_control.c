/* master_control - the control socket <queue_directory>/public/control.
 *
 * Any local user may connect (mode 0666): the kernel tells us who they are (SO_PEERCRED),
 * so the socket's mode is not the access check. At accept master takes the peer's uid, finds
 * its login name (getpwuid) and decides `admin` (uid 0, or a member of config admin_group by
 * getgrouplist(): master is not chrooted, so the system's user and group databases are at
 * hand; a lookup can block the loop only as long as NSS takes). The client then has
 * MASTER_CONTROL_REQ_MS to send one IPC_CTL_REQUEST frame (at most IPC_MAX_FRAME bytes,
 * IPC_CTL_MAX_ARGS arguments of at most MASTER_CONTROL_ARG_MAX bytes each); anything else
 * drops that client only. Queue commands are handed to qmgr with the socket
 * (IPC_CTL_HANDOFF), which then answers the client itself. Daemon commands are served
 * here: STATS asks every daemon that announced IPC_CAP_COUNTERS and answers when all have
 * replied or after MASTER_CONTROL_STATS_MS (daemons that do not answer are listed without
 * counters); LOG_LEVEL and PAUSE/RESUME SMTPD go to the daemons that announced the
 * capability, and the reply names those that did not. A client is freed once its reply has
 * been written, or MASTER_CONTROL_IDLE_MS after its last progress. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "ev.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "master.h"

#define MASTER_CONTROL_PATH      "public/control"
#define MASTER_CONTROL_REQ_MS    10000     /* to send the request */
#define MASTER_CONTROL_IDLE_MS   30000     /* to read the reply */
#define MASTER_CONTROL_STATS_MS  2000      /* daemons' counters wait at most this long */
#define MASTER_CONTROL_POLL_MS   20
#define MASTER_CONTROL_CLIENTS   64        /* served at once; more are closed at accept */
#define MASTER_CONTROL_ARG_MAX   1024      /* bytes per argument */

/* One daemon's counters in a STATS reply under construction. */
struct master_control_row {
    struct master_daemon_info info;
    int                       answered;
    char                    **names;
    uint64_t                 *values;
    uint32_t                  n;
};

struct master_control_client {
    struct master                *m;
    struct ipc_conn              *conn;
    uint32_t                      id;           /* reqid of its counters requests */
    uid_t                         uid;
    pid_t                         pid;
    int                           admin;
    char                          user[256];
    int                           have_request;
    int                           done;         /* reply queued: free when written */
    uint64_t                      timer;
    uint64_t                      deadline_ms;
    struct master_control_row    *rows;         /* STATS */
    size_t                        nrows;
    size_t                        waiting;      /* STATS answers still expected */
    struct master_control_client *prev, *next;
};

struct master_control {
    int                           fd;
    char                         *path;
    struct master_control_client *clients;
    size_t                        nclients;
    uint32_t                      next_id;
    uint64_t                      connections;  /* counters of master itself */
    uint64_t                      handoffs;
    uint64_t                      dropped;
};

static void master_control_timer(void *arg);

/* master_control_client_free - forget a client; its socket closes. */
static void
master_control_client_free(struct master_control_client *c)
{
    struct master_control *ctl = c->m->control;

    ev_timer_del(c->m->ev, c->timer);
    ipc_conn_free(&c->conn);
    for (size_t i = 0; i < c->nrows; i++) {
        for (uint32_t k = 0; k < c->rows[i].n; k++)
            free(c->rows[i].names[k]);
        free(c->rows[i].names);
        free(c->rows[i].values);
    }
    free(c->rows);
    if (c->prev)
        c->prev->next = c->next;
    else
        ctl->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ctl->nclients--;
    free(c);
}

/* master_control_arm - (re)arm the client's timer. */
static void
master_control_arm(struct master_control_client *c, uint64_t ms)
{
    ev_timer_del(c->m->ev, c->timer);
    c->timer = ev_timer_add(c->m->ev, ms, master_control_timer, c);
}

/* master_control_done - queue CTL_DONE and let the timer close the client once written. */
static void
master_control_done(struct master_control_client *c, uint32_t status, const char *text)
{
    struct ipc_ctl_done d = { .status = status, .text = text };

    if (ipc_ctl_done_send(c->conn, 0, &d, -1) == -1) {
        master_control_client_free(c);
        return;
    }
    c->done = 1;
    c->deadline_ms = ev_now_ms() + MASTER_CONTROL_IDLE_MS;
    master_control_arm(c, 0);
}

/* master_control_timer - request or reply too slow, STATS wait over, or reply draining. */
static void
master_control_timer(void *arg)
{
    struct master_control_client *c = arg;
    uint64_t                      now = ev_now_ms();

    c->timer = 0;
    if (c->done) {
        if (ipc_conn_pending(c->conn) == 0) {
            master_control_client_free(c);
        } else if (now >= c->deadline_ms) {
            log_warnx("control: uid=%ld reads nothing: dropped", (long)c->uid);
            c->m->control->dropped++;
            master_control_client_free(c);
        } else {
            master_control_arm(c, MASTER_CONTROL_POLL_MS);
        }
        return;
    }
    if (!c->have_request) {
        log_info("control: uid=%ld pid=%ld sent no request within %d s: dropped",
                 (long)c->uid, (long)c->pid, MASTER_CONTROL_REQ_MS / 1000);
        c->m->control->dropped++;
        master_control_client_free(c);
        return;
    }
    /* STATS: some daemons did not answer in time; answer with what we have. */
    c->waiting = 0;
    master_control_counters(c->m, -1, c->id, NULL);
}

/* master_control_is_admin - uid 0, or a member of admin_group (primary or supplementary). */
static int
master_control_is_admin(const struct config *cfg, uid_t uid, char *user, size_t userlen)
{
    const char    *group = config_str(cfg, "admin_group");
    struct passwd *pw;
    struct group  *gr;
    gid_t         *groups;
    int            ng = 32, is = 0;

    user[0] = '\0';
    if ((pw = getpwuid(uid)) != NULL)
        snprintf(user, userlen, "%s", pw->pw_name);
    if (uid == 0)
        return 1;
    if (pw == NULL || group[0] == '\0' || (gr = getgrnam(group)) == NULL)
        return 0;
    groups = xcalloc((size_t)ng, sizeof(*groups));
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) == -1) {
        groups = xrealloc(groups, (size_t)ng * sizeof(*groups));
        if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) == -1)
            ng = 0;
    }
    for (int i = 0; i < ng; i++)
        is |= groups[i] == gr->gr_gid;
    free(groups);
    return is;
}

/* master_control_valid - the request's arguments are within bounds. */
static int
master_control_valid(const struct ipc_ctl_request *r)
{
    if (r->args_n > IPC_CTL_MAX_ARGS)
        return 0;
    for (uint32_t i = 0; i < r->args_n; i++)
        if (strlen(r->args[i]) > MASTER_CONTROL_ARG_MAX)
            return 0;
    return 1;
}

/* master_control_handoff - a queue command: qmgr takes the client over. */
static void
master_control_handoff(struct master_control_client *c, const struct ipc_ctl_request *r)
{
    struct ipc_ctl_handoff h;

    h.uid = (uint32_t)c->uid;
    h.admin = (uint32_t)c->admin;
    h.user = c->user;
    h.cmd = r->cmd;
    h.args = r->args;
    h.args_n = r->args_n;
    h.flags = r->flags;
    if (master_spawn_handoff(c->m, &h, ipc_conn_fd(c->conn)) == -1) {
        master_control_done(c, EAGAIN, "qmgr is not running (it may be restarting); "
                            "try again");
        return;
    }
    c->m->control->handoffs++;
    master_control_client_free(c);        /* qmgr has its own copy of the socket */
}

/* master_control_log_level - postern log-level LEVEL: master and every daemon. */
static void
master_control_log_level(struct master_control_client *c, const struct ipc_ctl_request *r)
{
    enum log_level level;
    struct buf     without, text;
    size_t         n;

    if (r->args_n != 1 || log_level_parse(r->args[0], &level) == -1) {
        master_control_done(c, EINVAL, "log level must be one of err, warn, info, debug");
        return;
    }
    log_set_level(level);
    buf_init(&without, 128);
    buf_init(&text, 256);
    n = master_spawn_log_level(c->m, (uint32_t)level, &without);
    log_info("log level set to %s by uid=%ld; daemons told=%zu%s%s", r->args[0],
             (long)c->uid, n, without.len ? " unsupported=" : "", buf_cstr(&without));
    buf_printf(&text, "log level %s: master and %zu daemons", r->args[0], n);
    if (without.len)
        buf_printf(&text, "; not supported yet by %s", buf_cstr(&without));
    master_control_done(c, 0, buf_cstr(&text));
    buf_release(&without);
    buf_release(&text);
}

/* master_control_pause_smtpd - postern pause|resume smtpd. */
static void
master_control_pause_smtpd(struct master_control_client *c, int paused)
{
    struct buf without, text;
    size_t     n;

    buf_init(&without, 128);
    buf_init(&text, 256);
    n = master_spawn_pause_smtpd(c->m, paused, &without);
    if (without.len)
        log_warnx("%s smtpd by uid=%ld: not supported by %s", paused ? "pause" : "resume",
                  (long)c->uid, buf_cstr(&without));
    else
        log_info("smtpd %s by uid=%ld (%zu processes)", paused ? "paused" : "resumed",
                 (long)c->uid, n);
    if (n == 0) {
        buf_printf(&text, "smtpd does not support pause/resume yet (%s)",
                   without.len ? buf_cstr(&without) : "no smtpd running");
        master_control_done(c, ENOTSUP, buf_cstr(&text));
    } else {
        buf_printf(&text, "smtpd %s: %zu processes", paused ? "paused" : "resumed", n);
        if (without.len)
            buf_printf(&text, "; not supported by %s", buf_cstr(&without));
        master_control_done(c, without.len ? ENOTSUP : 0, buf_cstr(&text));
    }
    buf_release(&without);
    buf_release(&text);
}

/* master_control_stats - snapshot the daemons, ask for their counters. */
static void
master_control_stats(struct master_control_client *c)
{
    struct master_daemon_info *info;
    size_t                     n = master_spawn_list(c->m, &info);

    c->rows = xcalloc(n + 1, sizeof(*c->rows));
    c->nrows = n;
    for (size_t i = 0; i < n; i++)
        c->rows[i].info = info[i];
    free(info);
    c->waiting = master_spawn_counters_req(c->m, c->id);
    if (c->waiting == 0)
        master_control_counters(c->m, -1, c->id, NULL);
    else
        master_control_arm(c, MASTER_CONTROL_STATS_MS);
}

/* master_control_request - the client's one request. */
static void
master_control_request(struct master_control_client *c, const struct ipc_frame *f)
{
    struct ipc_ctl_request r;

    memset(&r, 0, sizeof(r));
    if (f->fd >= 0 || ipc_ctl_request_dec(f, &r) == -1 || !master_control_valid(&r)) {
        if (f->fd >= 0)
            close(f->fd);
        ipc_ctl_request_clear(&r);
        log_warnx("control: uid=%ld pid=%ld sent a malformed request (%s, %u bytes): "
                  "dropped", (long)c->uid, (long)c->pid, ipc_type_name(f->type), f->len);
        c->m->control->dropped++;
        master_control_client_free(c);
        return;
    }
    c->have_request = 1;
    c->deadline_ms = ev_now_ms() + MASTER_CONTROL_IDLE_MS;
    switch (r.cmd) {
    case IPC_CTL_LIST:
    case IPC_CTL_SHOW:
    case IPC_CTL_HOLD:
    case IPC_CTL_RELEASE:
    case IPC_CTL_DELETE:
    case IPC_CTL_RETRY:
    case IPC_CTL_EXPIRE:
    case IPC_CTL_PAUSE_DELIVERY:
    case IPC_CTL_RESUME_DELIVERY:
        master_control_handoff(c, &r);
        break;
    case IPC_CTL_STATS_CMD:
        master_control_stats(c);
        break;
    case IPC_CTL_LOG_LEVEL_CMD:
    case IPC_CTL_PAUSE_SMTPD:
    case IPC_CTL_RESUME_SMTPD:
        if (!c->admin) {
            master_control_done(c, EPERM, "permission denied: only root and members of "
                                "admin_group may do this");
        } else if (r.cmd == IPC_CTL_LOG_LEVEL_CMD) {
            master_control_log_level(c, &r);
        } else {
            master_control_pause_smtpd(c, r.cmd == IPC_CTL_PAUSE_SMTPD);
        }
        break;
    default:
        master_control_done(c, EINVAL, "unknown command");
        break;
    }
    ipc_ctl_request_clear(&r);
}

/* master_control_frame - a frame from a client, or NULL when it went away. */
static void
master_control_frame(struct ipc_conn *conn, const struct ipc_frame *f, void *arg)
{
    struct master_control_client *c = arg;

    (void)conn;
    if (f == NULL) {
        master_control_client_free(c);
        return;
    }
    if (c->have_request) {
        if (f->fd >= 0)
            close(f->fd);
        log_warnx("control: uid=%ld sent more than one request: dropped", (long)c->uid);
        c->m->control->dropped++;
        master_control_client_free(c);
        return;
    }
    master_control_request(c, f);
}

/* master_control_accept - a new client: identify it, wait for its request. */
static void
master_control_accept(int fd, int events, void *arg)
{
    struct master                *m = arg;
    struct master_control        *ctl = m->control;
    struct master_control_client *c;
    struct ucred                  cred;
    socklen_t                     len = sizeof(cred);
    int                           s;

    (void)events;
    for (int i = 0; i < 16; i++) {
        if ((s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("control: accept");
            return;
        }
        ctl->connections++;
        if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
            log_warn("control: SO_PEERCRED");
            close(s);
            continue;
        }
        if (ctl->nclients >= MASTER_CONTROL_CLIENTS) {
            log_warnx("control: %zu clients already: uid=%ld refused", ctl->nclients,
                      (long)cred.uid);
            ctl->dropped++;
            close(s);
            continue;
        }
        c = xcalloc(1, sizeof(*c));
        c->m = m;
        c->uid = cred.uid;
        c->pid = cred.pid;
        c->admin = master_control_is_admin(m->cfg, cred.uid, c->user, sizeof(c->user));
        if (++ctl->next_id == 0)
            ctl->next_id = 1;
        c->id = ctl->next_id;
        c->conn = ipc_conn_new(m->ev, s, master_control_frame, c);
        c->next = ctl->clients;
        if (ctl->clients)
            ctl->clients->prev = c;
        ctl->clients = c;
        ctl->nclients++;
        log_debug("control: connect uid=%ld pid=%ld user=%s admin=%d", (long)c->uid,
                  (long)c->pid, c->user, c->admin);
        master_control_arm(c, MASTER_CONTROL_REQ_MS);
    }
}

/* master_control_row_set - store one daemon's counters (copied). */
static void
master_control_row_set(struct master_control_row *row, const struct ipc_ctl_counters *cnt)
{
    if (row->answered)
        return;
    row->answered = 1;
    row->n = cnt->name_n;
    row->names = xcalloc(cnt->name_n + 1, sizeof(*row->names));
    row->values = xcalloc(cnt->name_n + 1, sizeof(*row->values));
    for (uint32_t i = 0; i < cnt->name_n; i++) {
        uint64_t v = 0;

        for (int b = 0; b < 8; b++)
            v = (v << 8) | cnt->value[i * 8 + (uint32_t)b];
        row->names[i] = xstrndup(cnt->name[i], 64);
        row->values[i] = v;
    }
}

/* master_control_send_stats - the CTL_STATS frame: master first, then every daemon. */
static void
master_control_send_stats(struct master_control_client *c)
{
    struct master_control *ctl = c->m->control;
    struct ipc_ctl_stats   st;
    size_t                 nd = c->nrows + 1, nc = 4, k = 0, i;
    const char           **daemon, **cname;
    uint32_t              *slot, *pid, *uptime, *restarts, *answered, *cdaemon;
    uint8_t               *cvalue;
    unsigned               total_restarts = 0;

    for (i = 0; i < c->nrows; i++) {
        nc += c->rows[i].n;
        total_restarts += c->rows[i].info.restarts;
    }
    daemon = xcalloc(nd, sizeof(*daemon));
    slot = xcalloc(nd, sizeof(*slot));
    pid = xcalloc(nd, sizeof(*pid));
    uptime = xcalloc(nd, sizeof(*uptime));
    restarts = xcalloc(nd, sizeof(*restarts));
    answered = xcalloc(nd, sizeof(*answered));
    cdaemon = xcalloc(nc, sizeof(*cdaemon));
    cname = xcalloc(nc, sizeof(*cname));
    cvalue = xcalloc(nc, 8);
#define MASTER_CONTROL_C(d, nm, val) do {                                                 \
        uint64_t v_ = (val);                                                              \
        cdaemon[k] = (uint32_t)(d);                                                       \
        cname[k] = (nm);                                                                  \
        for (int b_ = 0; b_ < 8; b_++)                                                    \
            cvalue[k * 8 + (size_t)b_] = (uint8_t)(v_ >> (56 - 8 * b_));                  \
        k++;                                                                              \
    } while (0)
    daemon[0] = "master";
    pid[0] = (uint32_t)getpid();
    uptime[0] = (uint32_t)((ev_now_ms() - c->m->started_ms) / 1000);
    answered[0] = 1;
    MASTER_CONTROL_C(0, "control_connections", ctl->connections);
    MASTER_CONTROL_C(0, "control_handoffs", ctl->handoffs);
    MASTER_CONTROL_C(0, "control_dropped", ctl->dropped);
    MASTER_CONTROL_C(0, "daemon_restarts", total_restarts);
    for (i = 0; i < c->nrows; i++) {
        const struct master_control_row *row = &c->rows[i];

        daemon[i + 1] = row->info.name;
        slot[i + 1] = row->info.slot;
        pid[i + 1] = (uint32_t)row->info.pid;
        uptime[i + 1] = (uint32_t)row->info.uptime_s;
        restarts[i + 1] = row->info.restarts;
        answered[i + 1] = (uint32_t)row->answered;
        for (uint32_t j = 0; j < row->n; j++)
            MASTER_CONTROL_C(i + 1, row->names[j], row->values[j]);
    }
#undef MASTER_CONTROL_C
    memset(&st, 0, sizeof(st));
    st.now = (uint64_t)time(NULL);
    st.master_pid = (uint32_t)getpid();
    st.master_uptime = uptime[0];
    st.daemon = daemon;
    st.daemon_n = (uint32_t)nd;
    st.slot = slot;
    st.slot_n = (uint32_t)nd;
    st.pid = pid;
    st.pid_n = (uint32_t)nd;
    st.uptime = uptime;
    st.uptime_n = (uint32_t)nd;
    st.restarts = restarts;
    st.restarts_n = (uint32_t)nd;
    st.answered = answered;
    st.answered_n = (uint32_t)nd;
    st.cdaemon = cdaemon;
    st.cdaemon_n = (uint32_t)k;
    st.cname = cname;
    st.cname_n = (uint32_t)k;
    st.cvalue = cvalue;
    st.cvalue_len = (uint32_t)(k * 8);
    if (ipc_ctl_stats_send(c->conn, 0, &st, -1) == -1)
        master_control_client_free(c);
    else
        master_control_done(c, 0, "");
    free(daemon);
    free(slot);
    free(pid);
    free(uptime);
    free(restarts);
    free(answered);
    free(cdaemon);
    free(cname);
    free(cvalue);
}

void
master_control_counters(struct master *m, pid_t pid, uint32_t reqid,
                        const struct ipc_ctl_counters *cnt)
{
    struct master_control_client *c;

    if (m->control == NULL)
        return;
    for (c = m->control->clients; c != NULL && c->id != reqid; c = c->next)
        ;
    if (c == NULL || c->done || c->rows == NULL)
        return;                     /* late: the client was answered or went away */
    if (cnt != NULL) {
        for (size_t i = 0; i < c->nrows; i++) {
            if (c->rows[i].info.pid == pid && !c->rows[i].answered) {
                master_control_row_set(&c->rows[i], cnt);
                if (c->waiting > 0)
                    c->waiting--;
                break;
            }
        }
    }
    if (c->waiting == 0)
        master_control_send_stats(c);
}

void
master_control_start(struct master *m)
{
    struct master_control *ctl = xcalloc(1, sizeof(*ctl));
    struct sockaddr_un     sun;
    const char            *qdir = config_path(m->cfg, "queue_directory");

    ctl->path = xasprintf("%s/%s", qdir, MASTER_CONTROL_PATH);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(ctl->path) >= sizeof(sun.sun_path))
        fatalx("%s: path too long for a UNIX socket", ctl->path);
    memcpy(sun.sun_path, ctl->path, strlen(ctl->path) + 1);
    if ((ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
        fatal("control socket");
    /* We hold the pid file lock: a socket left here is a dead master's. */
    if (unlink(ctl->path) == -1 && errno != ENOENT)
        fatal("unlink %s", ctl->path);
    if (bind(ctl->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
        fatal("bind %s", ctl->path);
    if (chmod(ctl->path, 0666) == -1)
        fatal("chmod %s", ctl->path);
    if (listen(ctl->fd, 64) == -1)
        fatal("listen %s", ctl->path);
    m->control = ctl;
    if (ev_io_set(m->ev, ctl->fd, EV_READ, master_control_accept, m) == -1)
        fatalx("%s: cannot watch", ctl->path);
}

void
master_control_stop(struct master *m)
{
    struct master_control *ctl = m->control;

    if (ctl == NULL)
        return;
    while (ctl->clients != NULL)
        master_control_client_free(ctl->clients);
    ev_io_del(m->ev, ctl->fd);
    close(ctl->fd);
    if (unlink(ctl->path) == -1 && errno != ENOENT)
        log_warn("unlink %s", ctl->path);
    free(ctl->path);
    free(ctl);
    m->control = NULL;
}
