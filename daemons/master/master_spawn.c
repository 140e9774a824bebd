/* master_spawn - start, connect, reap and restart the daemons.
 *
 * Every daemon lives in a slot (qmgr 0, anvil 0, smtpd 0..smtpd_processes-1, local
 * 0..local_processes-1, smtp 0..smtp_processes-1; smtp only when the program is present in
 * the daemon directory, so an installation without the outbound agent still runs, and its
 * absence is logged once). A slot's process is started with fork+exec as
 * `<daemon_dir>/<name> -c DIR -i SLOT [-d]`, with its master channel on fd 3 and, for
 * smtpd, the listening sockets on fds 4.. (POSTERN_LISTENERS names them); every other
 * descriptor is closed and the signal mask and dispositions are reset before exec. master
 * then brokers the peers: each (qmgr, smtpd), (qmgr, local), (qmgr, smtp) and (anvil,
 * smtpd) pair gets a fresh socketpair whose ends travel as IPC_MASTER_PEER over the two
 * channels, again whenever either side is restarted. A daemon's IPC_MASTER_HELLO must
 * carry IPC_VERSION and its own kind, or it is killed; an smtpd that said HELLO gets the
 * session-ticket keys (IPC_MASTER_TLS_KEYS, master_tls.c), and again after each rotation.
 * When a daemon exits it is restarted after master_throttle_delay(). On reload the running
 * processes are retired and fresh slots started: smtpd gets SIGUSR1 (stop accepting,
 * finish the open sessions, which end by themselves within smtpd_session_timeout, then
 * exit) and is SIGKILLed only if it still runs smtpd_session_timeout + MASTER_STOP_WAIT_MS
 * later; the others get SIGTERM and MASTER_STOP_WAIT_MS. A new qmgr waits until the
 * retired one has exited, since only one process may hold the queue database. When files a
 * daemon loaded change (master_watch.c), master_spawn_replace() starts a successor in the
 * slot beside the running process and retires the old one only once the successor said
 * HELLO, so a map or certificate that no longer loads leaves the old process serving; qmgr
 * cannot overlap and is retired and restarted as on reload. `postern
 * pause smtpd` is remembered (m->smtpd_paused) and told to every smtpd that announces
 * IPC_CAP_PAUSE afterwards, so a restarted or reloaded smtpd stays paused. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "ev.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "master.h"

#define MASTER_CHANNEL_FD   3
#define MASTER_SUCCESSOR_READY_MS 60000   /* a replacement has this long to say HELLO */

struct master_slot;

/* One started process, from fork until it is reaped. */
struct master_proc {
    struct master_proc *next;
    struct master      *m;
    struct master_slot *slot;           /* NULL once retired: never restarted */
    enum ipc_peer_kind  kind;
    unsigned            index;
    pid_t               pid;
    struct ipc_conn    *chan;           /* NULL once the daemon closed it */
    uint64_t            started_ms;
    uint64_t            kill_timer;     /* retired: SIGKILL when it fires */
    uint64_t            kill_after_ms;  /* ... this long after it was retired */
    int                 ready;          /* sent a valid HELLO */
    uint32_t            caps;           /* IPC_CAP_* from its MASTER_CAPS */
};

/* A place for one daemon of the current configuration. */
struct master_slot {
    struct master      *m;
    enum ipc_peer_kind  kind;
    unsigned            index;
    struct master_proc *proc;           /* running process, or NULL */
    struct master_proc *successor;      /* replaces proc once it says HELLO, or NULL */
    uint64_t            ready_timer;    /* the successor's time to say HELLO */
    uint64_t            backoff_ms;     /* master_throttle_delay() state */
    uint64_t            restart_timer;
    int                 waiting;        /* qmgr: starts when the retired qmgr has gone */
    unsigned            restarts;       /* exits followed by a restart (postern status) */
};

struct master_spawn {
    struct master_slot *slots;
    size_t              nslots;
    struct master_proc *procs;
    int                 stopped;        /* stopping: never start anything again */
    int                 smtp_missing_logged;    /* said once that there is no smtp agent */
};

static void master_spawn_slot_start(struct master_slot *);
static void master_spawn_promote(struct master_proc *);
static void master_spawn_retire_proc(struct master *, struct master_proc *, int graceful);

/* master_spawn_name - the program name of a daemon kind. */
const char *
master_spawn_name(unsigned kind)
{
    switch ((enum ipc_peer_kind)kind) {
    case IPC_PEER_QMGR:
        return "qmgr";
    case IPC_PEER_SMTPD:
        return "smtpd";
    case IPC_PEER_LOCAL:
        return "local";
    case IPC_PEER_SMTP:
        return "smtp";
    case IPC_PEER_ANVIL:
        return "anvil";
    case IPC_PEER_MASTER:
        break;
    }
    return "master";
}

/* master_spawn_signal - send sig to a process, logging failures other than "already gone". */
static void
master_spawn_signal(const struct master_proc *p, int sig)
{
    if (kill(p->pid, sig) == -1 && errno != ESRCH)
        log_warn("daemon=%s slot=%u pid=%ld: kill %d", master_spawn_name(p->kind), p->index,
                 (long)p->pid, sig);
}

/* master_spawn_pair - give a and b the two ends of a new socketpair, each told who is at the
 * other end. A daemon whose channel is closed gets nothing (it is on its way out). */
static void
master_spawn_pair(struct master_proc *a, struct master_proc *b)
{
    struct ipc_master_peer to_a = { .kind = (uint32_t)b->kind, .id = b->index };
    struct ipc_master_peer to_b = { .kind = (uint32_t)a->kind, .id = a->index };
    int                    sv[2];

    if (a->chan == NULL || b->chan == NULL)
        return;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
        log_warn("socketpair for %s %u <-> %s %u", master_spawn_name(a->kind), a->index,
                 master_spawn_name(b->kind), b->index);
        return;
    }
    if (ipc_master_peer_send(a->chan, 0, &to_a, sv[0]) == -1)
        log_warnx("daemon=%s slot=%u pid=%ld: cannot send peer socket",
                  master_spawn_name(a->kind), a->index, (long)a->pid);
    if (ipc_master_peer_send(b->chan, 0, &to_b, sv[1]) == -1)
        log_warnx("daemon=%s slot=%u pid=%ld: cannot send peer socket",
                  master_spawn_name(b->kind), b->index, (long)b->pid);
    close(sv[0]);
    close(sv[1]);
}

/* master_spawn_serves - 1 if a daemon of kind server talks to every daemon of kind client:
 * qmgr to smtpd and the delivery agents, anvil to smtpd. */
static int
master_spawn_serves(enum ipc_peer_kind server, enum ipc_peer_kind client)
{
    if (server == IPC_PEER_QMGR)
        return client == IPC_PEER_SMTPD || client == IPC_PEER_LOCAL ||
               client == IPC_PEER_SMTP;
    if (server == IPC_PEER_ANVIL)
        return client == IPC_PEER_SMTPD;
    return 0;
}

/* master_spawn_pair_retired - give p to the retired smtpd processes still finishing their
 * sessions after a reload. */
static void
master_spawn_pair_retired(struct master_spawn *sp, struct master_proc *p)
{
    for (struct master_proc *r = sp->procs; r != NULL; r = r->next) {
        if (r->slot == NULL && r->kind == IPC_PEER_SMTPD && r->chan != NULL)
            master_spawn_pair(p, r);
    }
}

/* master_spawn_broker - connect a newly started process to its peers of this config. A new
 * qmgr is also given to the retired smtpd processes: their transactions in progress can
 * then still be committed (the retired qmgr is gone by the time a new one starts). A new
 * anvil is given to them once it says HELLO (master_spawn_frame): it starts in the very
 * turn of the reload, when the idle ones are still exiting. */
static void
master_spawn_broker(struct master_spawn *sp, struct master_proc *p)
{
    for (size_t i = 0; i < sp->nslots; i++) {
        struct master_slot *s = &sp->slots[i];
        struct master_proc *peers[2] = { s->proc, s->successor };

        for (size_t j = 0; j < 2; j++) {
            if (peers[j] == NULL || peers[j] == p)
                continue;
            if (master_spawn_serves(p->kind, s->kind))
                master_spawn_pair(p, peers[j]);
            else if (master_spawn_serves(s->kind, p->kind))
                master_spawn_pair(peers[j], p);
        }
    }
    if (p->kind == IPC_PEER_QMGR)
        master_spawn_pair_retired(sp, p);
}

/* master_spawn_control_frame - MASTER_CAPS or CTL_COUNTERS from a daemon that said HELLO;
 * 1 if f was one of them (a malformed one kills the daemon: it is a bug). */
static int
master_spawn_control_frame(struct master_proc *p, const struct ipc_frame *f)
{
    struct ipc_master_caps  caps;
    struct ipc_ctl_counters cnt;

    if (!p->ready)
        return 0;
    if (f->type == IPC_MASTER_CAPS && ipc_master_caps_dec(f, &caps) == 0) {
        p->caps = caps.caps;
        log_debug("daemon=%s slot=%u pid=%ld caps=0x%x", master_spawn_name(p->kind),
                  p->index, (long)p->pid, caps.caps);
        if (p->kind == IPC_PEER_SMTPD && (p->caps & IPC_CAP_PAUSE) && p->m->smtpd_paused &&
            p->chan != NULL) {
            struct ipc_ctl_pause msg = { .paused = 1 };

            if (ipc_ctl_pause_send(p->chan, 0, &msg, -1) == -1)
                log_warnx("daemon=smtpd slot=%u pid=%ld: cannot tell it to pause", p->index,
                          (long)p->pid);
        }
        return 1;
    }
    if (f->type == IPC_CTL_COUNTERS && ipc_ctl_counters_dec(f, &cnt) == 0) {
        if (cnt.value_len == cnt.name_n * 8u)
            master_control_counters(p->m, p->pid, f->reqid, &cnt);
        else
            log_warnx("daemon=%s pid=%ld: counters with %u names and %u value bytes",
                      master_spawn_name(p->kind), (long)p->pid, cnt.name_n, cnt.value_len);
        ipc_ctl_counters_clear(&cnt);
        return 1;
    }
    return 0;
}

/* master_spawn_frame - a frame from a daemon on its master channel: HELLO, then CAPS and
 * counters. */
static void
master_spawn_frame(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    struct master_proc      *p = arg;
    struct ipc_master_hello  hello;
    const char              *name = master_spawn_name(p->kind);

    (void)c;
    if (f == NULL) {
        log_debug("daemon=%s slot=%u pid=%ld closed its master channel", name, p->index,
                  (long)p->pid);
        ipc_conn_free(&p->chan);
        return;
    }
    if (f->fd >= 0)
        close(f->fd);
    if (f->fd < 0 && master_spawn_control_frame(p, f))
        return;
    if (f->type != IPC_MASTER_HELLO || ipc_master_hello_dec(f, &hello) == -1) {
        log_warnx("daemon=%s slot=%u pid=%ld sent a bad %s frame: killing it", name,
                  p->index, (long)p->pid, ipc_type_name(f->type));
        master_spawn_signal(p, SIGKILL);
        return;
    }
    if (hello.version != IPC_VERSION) {
        log_warnx("daemon=%s slot=%u pid=%ld speaks IPC version %u, master %u: killing it",
                  name, p->index, (long)p->pid, hello.version, IPC_VERSION);
        master_spawn_signal(p, SIGKILL);
        return;
    }
    if (hello.kind != (uint32_t)p->kind) {
        log_warnx("daemon=%s slot=%u pid=%ld says it is a %s: killing it", name, p->index,
                  (long)p->pid, master_spawn_name((enum ipc_peer_kind)hello.kind));
        master_spawn_signal(p, SIGKILL);
        return;
    }
    log_info("daemon=%s slot=%u pid=%ld ready", name, p->index, (long)p->pid);
    p->ready = 1;
    if (p->slot != NULL && p->slot->successor == p)
        master_spawn_promote(p);
    if (p->kind == IPC_PEER_ANVIL && p->slot != NULL)
        master_spawn_pair_retired(p->m->spawn, p);
    if (p->kind == IPC_PEER_SMTPD && master_tls_send(p->m, p->chan) == -1)
        log_warnx("daemon=%s slot=%u pid=%ld: cannot send the session-ticket keys", name,
                  p->index, (long)p->pid);
}

void
master_spawn_tls_keys(struct master *m)
{
    if (m->spawn == NULL)
        return;
    for (struct master_proc *p = m->spawn->procs; p != NULL; p = p->next) {
        if (p->kind != IPC_PEER_SMTPD || !p->ready || p->chan == NULL)
            continue;
        if (master_tls_send(m, p->chan) == -1)
            log_warnx("daemon=smtpd slot=%u pid=%ld: cannot send the session-ticket keys",
                      p->index, (long)p->pid);
    }
}

/* master_spawn_close_from - close every descriptor >= low (close_range, or a loop). */
static void
master_spawn_close_from(int low)
{
    long max;

    if (close_range((unsigned)low, ~0U, 0) == 0)
        return;
    max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = low; fd < max; fd++)
        close(fd);
}

/* master_spawn_exec - in the child: put the channel on fd 3 and smtpd's listeners on 4..,
 * close the rest, reset signals, exec. Never returns. */
static void __attribute__((noreturn))
master_spawn_exec(struct master *m, const struct master_slot *s, const char *path, int chan,
                  const char *services)
{
    const char *name = master_spawn_name(s->kind);
    size_t      nkeep = 1 + (s->kind == IPC_PEER_SMTPD ? m->listeners.n : 0);
    int         base = MASTER_CHANNEL_FD + (int)nkeep;
    int         moved[1 + MASTER_LISTEN_MAX];
    char        slot[16];
    const char *argv[8];
    int         argc = 0;

    ev_signal_reset();
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    }
    /* Move every kept descriptor above the target range first, so no dup2() below can
     * overwrite one that is still to be moved. */
    for (size_t i = 0; i < nkeep; i++) {
        int src = i == 0 ? chan : m->listeners.v[i - 1].fd;

        if ((moved[i] = fcntl(src, F_DUPFD_CLOEXEC, base)) == -1) {
            log_warn("%s: descriptor setup", name);
            _exit(127);
        }
    }
    for (size_t i = 0; i < nkeep; i++) {
        if (dup2(moved[i], MASTER_CHANNEL_FD + (int)i) == -1) {
            log_warn("%s: descriptor setup", name);
            _exit(127);
        }
    }
    master_spawn_close_from(base);
    if (services != NULL)
        setenv("POSTERN_LISTENERS", services, 1);
    else
        unsetenv("POSTERN_LISTENERS");

    snprintf(slot, sizeof(slot), "%u", s->index);
    argv[argc++] = name;
    argv[argc++] = "-c";
    argv[argc++] = m->confdir;
    argv[argc++] = "-i";
    argv[argc++] = slot;
    if (m->foreground)
        argv[argc++] = "-d";
    argv[argc] = NULL;
    execv(path, (char *const *)argv);
    log_warn("daemon=%s slot=%u: exec %s", name, s->index, path);
    _exit(127);
}

/* master_spawn_restart_timer - a throttled slot's wait is over. */
static void
master_spawn_restart_timer(void *arg)
{
    struct master_slot *s = arg;

    s->restart_timer = 0;
    master_spawn_slot_start(s);
}

/* master_spawn_schedule - start the slot again after delay_ms (0: now). */
static void
master_spawn_schedule(struct master_slot *s, uint64_t delay_ms)
{
    if (delay_ms == 0)
        master_spawn_slot_start(s);
    else
        s->restart_timer = ev_timer_add(s->m->ev, delay_ms, master_spawn_restart_timer, s);
}

/* master_spawn_retired_qmgr - 1 while a retired qmgr still runs. */
static int
master_spawn_retired_qmgr(const struct master_spawn *sp)
{
    for (const struct master_proc *p = sp->procs; p != NULL; p = p->next) {
        if (p->slot == NULL && p->kind == IPC_PEER_QMGR)
            return 1;
    }
    return 0;
}

/* master_spawn_fork - fork+exec a process for slot s and list it (not yet in the slot);
 * NULL if that failed (logged). */
static struct master_proc *
master_spawn_fork(struct master_slot *s)
{
    struct master       *m = s->m;
    struct master_spawn *sp = m->spawn;
    struct master_proc  *p;
    const char          *name = master_spawn_name(s->kind);
    char                *path, *services = NULL;
    int                  sv[2];
    pid_t                pid;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
        log_warn("daemon=%s slot=%u: socketpair", name, s->index);
        return NULL;
    }
    path = xasprintf("%s/%s", m->daemon_dir, name);
    if (s->kind == IPC_PEER_SMTPD)
        services = master_listen_services(&m->listeners);
    if ((pid = fork()) == -1) {
        log_warn("daemon=%s slot=%u: fork", name, s->index);
        close(sv[0]);
        close(sv[1]);
        free(path);
        free(services);
        return NULL;
    }
    if (pid == 0)
        master_spawn_exec(m, s, path, sv[1], services);
    close(sv[1]);
    free(path);
    free(services);
    if (fcntl(sv[0], F_SETFL, O_NONBLOCK) == -1)
        log_warn("daemon=%s: O_NONBLOCK on its channel", name);

    p = xcalloc(1, sizeof(*p));
    p->m = m;
    p->slot = s;
    p->kind = s->kind;
    p->index = s->index;
    p->pid = pid;
    p->started_ms = ev_now_ms();
    p->chan = ipc_conn_new(m->ev, sv[0], master_spawn_frame, p);
    p->next = sp->procs;
    sp->procs = p;
    return p;
}

/* master_spawn_slot_start - fork+exec the slot's daemon and connect it to its peers. A slot
 * with a successor on its way gets none: the successor takes the slot at its HELLO. */
static void
master_spawn_slot_start(struct master_slot *s)
{
    struct master_spawn *sp = s->m->spawn;
    struct master_proc  *p;

    if (sp->stopped || s->proc != NULL || s->successor != NULL)
        return;
    if (s->kind == IPC_PEER_QMGR && master_spawn_retired_qmgr(sp)) {
        s->waiting = 1;
        log_info("daemon=qmgr slot=%u waits for the old qmgr to exit", s->index);
        return;
    }
    s->waiting = 0;
    if ((p = master_spawn_fork(s)) == NULL) {
        master_spawn_schedule(s, master_throttle_delay(0, &s->backoff_ms));
        return;
    }
    s->proc = p;
    log_info("daemon=%s slot=%u pid=%ld started", master_spawn_name(s->kind), s->index,
             (long)p->pid);
    master_spawn_broker(sp, p);
}

/* master_spawn_add_slots - n slots of one kind. */
static void
master_spawn_add_slots(struct master_spawn *sp, struct master *m, enum ipc_peer_kind kind,
                       long long n)
{
    for (long long i = 0; i < n; i++) {
        struct master_slot *s = &sp->slots[sp->nslots++];

        memset(s, 0, sizeof(*s));
        s->m = m;
        s->kind = kind;
        s->index = (unsigned)i;
    }
}

/* master_spawn_smtp_count - smtp_processes if the outbound agent is installed, else 0
 * (said once per master: the agent may simply not be built yet). */
static long long
master_spawn_smtp_count(struct master *m, struct master_spawn *sp)
{
    long long   n = config_int(m->cfg, "smtp_processes");
    char       *path = xasprintf("%s/smtp", m->daemon_dir);
    struct stat st;
    int         present = stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                          access(path, X_OK) == 0;

    if (!present && !sp->smtp_missing_logged) {
        log_info("daemon=smtp: no program %s: outbound delivery is not started", path);
        sp->smtp_missing_logged = 1;
    } else if (present && sp->smtp_missing_logged) {
        log_info("daemon=smtp: %s is present now", path);
        sp->smtp_missing_logged = 0;
    }
    free(path);
    return present && n > 0 ? n : 0;
}

void
master_spawn_start(struct master *m)
{
    struct master_spawn *sp;
    long long            nsmtpd = config_int(m->cfg, "smtpd_processes");
    long long            nlocal = config_int(m->cfg, "local_processes");
    long long            nsmtp;

    if (m->spawn == NULL)
        m->spawn = xcalloc(1, sizeof(*m->spawn));
    sp = m->spawn;
    nsmtp = master_spawn_smtp_count(m, sp);
    if (nsmtpd < 0)
        nsmtpd = 0;
    if (nlocal < 0)
        nlocal = 0;
    free(sp->slots);
    sp->slots = xcalloc((size_t)(2 + nsmtpd + nlocal + nsmtp), sizeof(*sp->slots));
    sp->nslots = 0;
    master_spawn_add_slots(sp, m, IPC_PEER_QMGR, 1);
    master_spawn_add_slots(sp, m, IPC_PEER_ANVIL, 1);
    master_spawn_add_slots(sp, m, IPC_PEER_SMTPD, nsmtpd);
    master_spawn_add_slots(sp, m, IPC_PEER_LOCAL, nlocal);
    master_spawn_add_slots(sp, m, IPC_PEER_SMTP, nsmtp);
    /* qmgr and anvil first, so that every other daemon finds them to pair with. */
    for (size_t i = 0; i < sp->nslots; i++)
        master_spawn_slot_start(&sp->slots[i]);
}

/* master_spawn_kill_timer - a retired daemon outlived its grace period. */
static void
master_spawn_kill_timer(void *arg)
{
    struct master_proc *p = arg;

    p->kill_timer = 0;
    log_warnx("daemon=%s slot=%u pid=%ld still running %llu s after it was retired: SIGKILL",
              master_spawn_name(p->kind), p->index, (long)p->pid,
              (unsigned long long)(p->kill_after_ms / 1000));
    master_spawn_signal(p, SIGKILL);
}

/* master_spawn_smtpd_grace - how long a retired smtpd may finish its sessions. */
static uint64_t
master_spawn_smtpd_grace(const struct master *m)
{
    /* the running smtpd processes were started with the old config, but their sessions are
     * bounded by the longer of the two session timeouts at worst; the new one is what we
     * have, and the old one is gone: take the new one, at least the default hour */
    uint64_t grace = config_time_ms(m->cfg, "smtpd_session_timeout");

    return grace != 0 ? grace : 3600000;
}

/* master_spawn_retire_proc - take p out of its slot for good: an smtpd that serves (graceful)
 * gets SIGUSR1 and finishes its sessions, anything else SIGTERM; SIGKILL if it outlives its
 * grace period. */
static void
master_spawn_retire_proc(struct master *m, struct master_proc *p, int graceful)
{
    p->slot = NULL;
    if (graceful && p->kind == IPC_PEER_SMTPD) {
        /* graceful: established sessions (TLS ones too) run on to their natural end */
        p->kill_after_ms = master_spawn_smtpd_grace(m) + MASTER_STOP_WAIT_MS;
        master_spawn_signal(p, SIGUSR1);
    } else {
        p->kill_after_ms = MASTER_STOP_WAIT_MS;
        master_spawn_signal(p, SIGTERM);
    }
    p->kill_timer = ev_timer_add(m->ev, p->kill_after_ms, master_spawn_kill_timer, p);
}

/* master_spawn_drop_successor - the slot's successor, if any, goes (it serves nobody yet);
 * the running process stays. */
static void
master_spawn_drop_successor(struct master_slot *s)
{
    ev_timer_del(s->m->ev, s->ready_timer);
    s->ready_timer = 0;
    if (s->successor != NULL)
        master_spawn_retire_proc(s->m, s->successor, 0);
    s->successor = NULL;
}

void
master_spawn_retire(struct master *m)
{
    struct master_spawn *sp = m->spawn;

    if (sp == NULL)
        return;
    for (size_t i = 0; i < sp->nslots; i++) {
        struct master_slot *s = &sp->slots[i];

        ev_timer_del(m->ev, s->restart_timer);
        s->restart_timer = 0;
        master_spawn_drop_successor(s);
        if (s->proc != NULL)
            master_spawn_retire_proc(m, s->proc, 1);
        s->proc = NULL;
    }
    free(sp->slots);
    sp->slots = NULL;
    sp->nslots = 0;
}

/* master_spawn_promote - a successor said HELLO, so it loaded everything: it takes the slot
 * and the process it replaces is retired as on reload. */
static void
master_spawn_promote(struct master_proc *p)
{
    struct master_slot *s = p->slot;
    struct master_proc *old = s->proc;

    s->successor = NULL;
    ev_timer_del(p->m->ev, s->ready_timer);
    s->ready_timer = 0;
    ev_timer_del(p->m->ev, s->restart_timer);
    s->restart_timer = 0;
    s->proc = p;
    if (old == NULL)
        return;
    log_info("daemon=%s slot=%u pid=%ld replaces pid=%ld", master_spawn_name(p->kind),
             p->index, (long)p->pid, (long)old->pid);
    master_spawn_retire_proc(p->m, old, 1);
}

/* master_spawn_successor_late - a successor that neither said HELLO nor exited in time is
 * stuck loading (a map on a hung file system, say): drop it rather than let it hold the
 * slot's next replacement hostage; the running process keeps serving. */
static void
master_spawn_successor_late(void *arg)
{
    struct master_slot *s = arg;

    s->ready_timer = 0;
    if (s->successor == NULL)
        return;
    log_warnx("daemon=%s slot=%u pid=%ld not ready after %d s: dropped; pid=%ld keeps "
              "serving", master_spawn_name(s->kind), s->index, (long)s->successor->pid,
              MASTER_SUCCESSOR_READY_MS / 1000, s->proc ? (long)s->proc->pid : -1L);
    master_spawn_drop_successor(s);
}

/* master_spawn_succeed - start a successor beside the slot's running process (a previous
 * successor still on its way is dropped: it may have loaded the files before the change). */
static void
master_spawn_succeed(struct master_slot *s)
{
    struct master_proc *p;

    master_spawn_drop_successor(s);
    if ((p = master_spawn_fork(s)) == NULL) {
        log_warnx("daemon=%s slot=%u: no replacement started; pid=%ld keeps serving",
                  master_spawn_name(s->kind), s->index, (long)s->proc->pid);
        return;
    }
    s->successor = p;
    s->ready_timer = ev_timer_add(s->m->ev, MASTER_SUCCESSOR_READY_MS,
                                  master_spawn_successor_late, s);
    log_info("daemon=%s slot=%u pid=%ld started to replace pid=%ld",
             master_spawn_name(s->kind), s->index, (long)p->pid, (long)s->proc->pid);
    /* its peers now, as for any start: its qmgr socket is waiting when it begins to serve */
    master_spawn_broker(s->m->spawn, p);
}

void
master_spawn_replace(struct master *m, unsigned kinds)
{
    struct master_spawn *sp = m->spawn;

    if (sp == NULL || sp->stopped)
        return;
    for (size_t i = 0; i < sp->nslots; i++) {
        struct master_slot *s = &sp->slots[i];

        if (!(kinds & MASTER_KIND_BIT(s->kind)) || s->waiting)
            continue;
        if (s->proc == NULL && s->successor == NULL) {
            /* throttled after quick deaths, perhaps because of the very file that changed */
            ev_timer_del(m->ev, s->restart_timer);
            s->restart_timer = 0;
            s->backoff_ms = 0;
            master_spawn_slot_start(s);
        } else if (s->kind == IPC_PEER_QMGR || s->kind == IPC_PEER_ANVIL) {
            /* one qmgr owns the queue database; anvil's counters are per process */
            if (s->proc != NULL)
                master_spawn_retire_proc(m, s->proc, 0);
            s->proc = NULL;
            master_spawn_slot_start(s);
        } else if (s->proc != NULL) {
            master_spawn_succeed(s);
        }
    }
}

void
master_spawn_stop(struct master *m)
{
    struct master_spawn *sp = m->spawn;

    if (sp == NULL)
        return;
    sp->stopped = 1;
    for (size_t i = 0; i < sp->nslots; i++) {
        ev_timer_del(m->ev, sp->slots[i].restart_timer);
        sp->slots[i].restart_timer = 0;
    }
    for (struct master_proc *p = sp->procs; p != NULL; p = p->next)
        master_spawn_signal(p, SIGTERM);
}

void
master_spawn_kill(struct master *m)
{
    if (m->spawn == NULL)
        return;
    for (struct master_proc *p = m->spawn->procs; p != NULL; p = p->next) {
        log_warnx("daemon=%s slot=%u pid=%ld did not stop: SIGKILL", master_spawn_name(p->kind),
                  p->index, (long)p->pid);
        master_spawn_signal(p, SIGKILL);
    }
}

/* master_spawn_status - "exit:N" or "signal:N" for a wait status. */
static void
master_spawn_status(int status, char *out, size_t outlen)
{
    if (WIFEXITED(status))
        snprintf(out, outlen, "exit:%d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, outlen, "signal:%d%s", WTERMSIG(status),
                 WCOREDUMP(status) ? ",core" : "");
    else
        snprintf(out, outlen, "unknown:%d", status);
}

/* master_spawn_lost_successor - a successor exited before its HELLO: whatever it failed
 * to load, the running process keeps serving with what it loaded before. */
static void
master_spawn_lost_successor(struct master *m, struct master_proc *p, const char *st,
                            uint64_t ran)
{
    struct master_slot *s = p->slot;
    const char         *name = master_spawn_name(p->kind);

    s->successor = NULL;
    ev_timer_del(m->ev, s->ready_timer);
    s->ready_timer = 0;
    if (s->proc != NULL) {
        log_warnx("daemon=%s slot=%u pid=%ld exited status=%s before it was ready: not "
                  "replacing pid=%ld, which keeps serving with the files it loaded before "
                  "(the reason is logged above)", name, p->index, (long)p->pid, st,
                  (long)s->proc->pid);
        return;
    }
    log_warnx("daemon=%s slot=%u pid=%ld exited status=%s before it was ready", name,
              p->index, (long)p->pid, st);
    if (s->restart_timer == 0 && !m->spawn->stopped)
        master_spawn_schedule(s, master_throttle_delay(ran, &s->backoff_ms));
}

/* master_spawn_exited - one reaped daemon: log it, restart its slot or let it go. */
static void
master_spawn_exited(struct master *m, struct master_proc *p, int status)
{
    struct master_spawn *sp = m->spawn;
    struct master_slot  *s = p->slot;
    const char          *name = master_spawn_name(p->kind);
    uint64_t             ran = ev_now_ms() - p->started_ms;
    char                 st[32];

    master_spawn_status(status, st, sizeof(st));
    ev_timer_del(m->ev, p->kill_timer);
    ipc_conn_free(&p->chan);
    if (s != NULL && s->successor == p) {
        master_spawn_lost_successor(m, p, st, ran);
        return;
    }
    if (s != NULL && !sp->stopped) {
        uint64_t delay = master_throttle_delay(ran, &s->backoff_ms);

        s->proc = NULL;
        s->restarts++;
        log_warnx("daemon=%s slot=%u pid=%ld exited status=%s ran=%llums restart_in=%llus",
                  name, p->index, (long)p->pid, st, (unsigned long long)ran,
                  (unsigned long long)(delay / 1000));
        master_spawn_schedule(s, delay);
    } else {
        if (s != NULL)
            s->proc = NULL;
        log_info("daemon=%s slot=%u pid=%ld exited status=%s%s", name, p->index,
                 (long)p->pid, st, s == NULL ? " retired=yes" : "");
    }
}

void
master_spawn_reap(struct master *m)
{
    struct master_spawn *sp = m->spawn;
    pid_t                pid;
    int                  status, qmgr_gone = 0;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct master_proc **pp = sp ? &sp->procs : NULL, *p;

        while (pp != NULL && *pp != NULL && (*pp)->pid != pid)
            pp = &(*pp)->next;
        if (pp == NULL || *pp == NULL) {
            log_debug("reaped unknown child pid=%ld", (long)pid);
            continue;
        }
        p = *pp;
        *pp = p->next;
        if (p->slot == NULL && p->kind == IPC_PEER_QMGR)
            qmgr_gone = 1;
        master_spawn_exited(m, p, status);
        free(p);
    }
    if (pid == -1 && errno != ECHILD)
        log_warn("waitpid");
    /* A new qmgr that waited for the retired one may start now. */
    if (qmgr_gone && sp != NULL && !master_spawn_retired_qmgr(sp)) {
        for (size_t i = 0; i < sp->nslots; i++) {
            if (sp->slots[i].waiting)
                master_spawn_slot_start(&sp->slots[i]);
        }
    }
}

size_t
master_spawn_running(const struct master *m)
{
    size_t n = 0;

    if (m->spawn == NULL)
        return 0;
    for (const struct master_proc *p = m->spawn->procs; p != NULL; p = p->next)
        n++;
    return n;
}

void
master_spawn_free(struct master *m)
{
    struct master_spawn *sp = m->spawn;

    if (sp == NULL)
        return;
    for (size_t i = 0; i < sp->nslots; i++) {
        ev_timer_del(m->ev, sp->slots[i].restart_timer);
        ev_timer_del(m->ev, sp->slots[i].ready_timer);
    }
    while (sp->procs != NULL) {
        struct master_proc *p = sp->procs;

        sp->procs = p->next;
        ev_timer_del(m->ev, p->kill_timer);
        ipc_conn_free(&p->chan);
        free(p);
    }
    free(sp->slots);
    free(sp);
    m->spawn = NULL;
}

/* master_spawn_list - a snapshot of every live daemon for postern status. */
size_t
master_spawn_list(const struct master *m, struct master_daemon_info **out)
{
    size_t n = 0, i = 0;
    uint64_t now = ev_now_ms();

    *out = NULL;
    if (m->spawn == NULL)
        return 0;
    for (const struct master_proc *p = m->spawn->procs; p != NULL; p = p->next)
        n++;
    *out = xcalloc(n + 1, sizeof(**out));
    for (const struct master_proc *p = m->spawn->procs; p != NULL; p = p->next, i++) {
        struct master_daemon_info *d = &(*out)[i];

        d->name = master_spawn_name(p->kind);
        d->kind = p->kind;
        d->slot = p->index;
        d->pid = p->pid;
        d->uptime_s = (now - p->started_ms) / 1000;
        d->restarts = p->slot ? p->slot->restarts : 0;
        d->caps = p->ready && p->chan ? p->caps : 0;
        d->retired = p->slot == NULL;
    }
    return n;
}

/* master_spawn_qmgr - the running, ready qmgr of this configuration, or NULL. */
static struct master_proc *
master_spawn_qmgr(const struct master *m)
{
    if (m->spawn == NULL)
        return NULL;
    for (size_t i = 0; i < m->spawn->nslots; i++) {
        struct master_proc *p = m->spawn->slots[i].proc;

        if (p != NULL && p->kind == IPC_PEER_QMGR && p->ready && p->chan != NULL)
            return p;
    }
    return NULL;
}

int
master_spawn_handoff(struct master *m, const struct ipc_ctl_handoff *h, int fd)
{
    struct master_proc *q = master_spawn_qmgr(m);

    if (q == NULL)
        return -1;
    return ipc_ctl_handoff_send(q->chan, 0, h, fd);
}

size_t
master_spawn_counters_req(struct master *m, uint32_t reqid)
{
    struct ipc_ctl_counters_req req = { .flags = 0 };
    size_t                      n = 0;

    if (m->spawn == NULL)
        return 0;
    for (struct master_proc *p = m->spawn->procs; p != NULL; p = p->next) {
        if (!p->ready || p->chan == NULL || !(p->caps & IPC_CAP_COUNTERS))
            continue;
        if (ipc_ctl_counters_req_send(p->chan, reqid, &req, -1) == 0)
            n++;
    }
    return n;
}

/* master_spawn_cast - send a control frame to every live daemon (of kind, or any kind if
 * kind < 0) that announced cap; the names of those that did not go into `without`. */
static size_t
master_spawn_cast(struct master *m, uint32_t cap, int kind, uint32_t level, int is_pause,
                  struct buf *without)
{
    size_t n = 0;

    if (m->spawn == NULL)
        return 0;
    for (struct master_proc *p = m->spawn->procs; p != NULL; p = p->next) {
        int rc = -1;

        if (kind >= 0 && (int)p->kind != kind)
            continue;
        if (p->ready && p->chan != NULL && (p->caps & cap)) {
            if (is_pause) {
                struct ipc_ctl_pause msg = { .paused = level };

                rc = ipc_ctl_pause_send(p->chan, 0, &msg, -1);
            } else {
                struct ipc_ctl_log_level msg = { .level = level };

                rc = ipc_ctl_log_level_send(p->chan, 0, &msg, -1);
            }
        }
        if (rc == 0)
            n++;
        else
            buf_printf(without, "%s%s[%ld]", without->len ? " " : "",
                       master_spawn_name(p->kind), (long)p->pid);
    }
    return n;
}

size_t
master_spawn_log_level(struct master *m, uint32_t level, struct buf *without)
{
    return master_spawn_cast(m, IPC_CAP_LOG_LEVEL, -1, level, 0, without);
}

size_t
master_spawn_pause_smtpd(struct master *m, int paused, struct buf *without)
{
    m->smtpd_paused = paused;
    return master_spawn_cast(m, IPC_CAP_PAUSE, IPC_PEER_SMTPD, (uint32_t)paused, 1, without);
}
