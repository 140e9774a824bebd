/* qmgr_ctl - `postern queue ...` clients handed over by master.
 *
 * See qmgr_ctl.h. A client is served once: its request arrived inside the handoff, so
 * every frame it sends us afterwards is a protocol error and drops it. Replies are queued on
 * the client's ipc_conn; the client is freed once CTL_DONE has been written out (polled on
 * a short timer, since ipc_conn has no drain callback) or when it stalls or goes away.
 * Selection by regular expression, age, size and so on happens in the CLI over the listed
 * messages (cli/postern_select.c), so qmgr never runs a client's pattern: actions arrive
 * here as explicit queue IDs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "daemon.h"
#include "log.h"
#include "qid.h"
#include "qrec.h"
#include "qmgr.h"
#include "qmgr_body.h"
#include "qmgr_ctl.h"
#include "qmgr_sched.h"
#include "qmgr_smtpd.h"
#include "qmgr_store.h"

#define QMGR_CTL_POLL_MS  20

struct qmgr_ctl_client {
    struct ipc_conn        *conn;
    uint32_t                uid;
    int                     admin;
    char                    user[256];
    uint32_t                cmd;
    char                    after[QID_SIZE];    /* LIST: the last queue ID sent */
    int                     done;               /* CTL_DONE queued: free once written */
    uint64_t                timer;
    uint64_t                progress_ms;        /* last time output moved */
    size_t                  last_pending;
    struct qmgr_ctl_client *prev, *next;
};

static struct qmgr_ctl_client *qmgr_ctl_clients;
static size_t                  qmgr_ctl_nclients;

static void qmgr_ctl_pump(void *arg);

/* qmgr_ctl_free - forget a client: timer, connection, list. */
static void
qmgr_ctl_free(struct qmgr_ctl_client *c)
{
    ev_timer_del(qmgr_ev, c->timer);
    ipc_conn_free(&c->conn);
    if (c->prev)
        c->prev->next = c->next;
    else
        qmgr_ctl_clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    qmgr_ctl_nclients--;
    free(c);
}

/* qmgr_ctl_frame - the client sent something after its request, or went away. */
static void
qmgr_ctl_frame(struct ipc_conn *conn, const struct ipc_frame *f, void *arg)
{
    struct qmgr_ctl_client *c = arg;

    (void)conn;
    if (f != NULL) {
        if (f->fd >= 0)
            close(f->fd);
        log_warnx("control: uid=%u sent an unexpected %s frame: dropped", c->uid,
                  ipc_type_name(f->type));
    } else if (!c->done) {
        log_debug("control: uid=%u went away before the reply ended", c->uid);
    }
    qmgr_ctl_free(c);
}

/* qmgr_ctl_schedule - run the pump again after ms. */
static void
qmgr_ctl_schedule(struct qmgr_ctl_client *c, uint64_t ms)
{
    ev_timer_del(qmgr_ev, c->timer);
    c->timer = ev_timer_add(qmgr_ev, ms, qmgr_ctl_pump, c);
}

/* qmgr_ctl_done - queue CTL_DONE; the client is freed once it has been written. */
static void
qmgr_ctl_done(struct qmgr_ctl_client *c, uint32_t status, const char *text)
{
    struct ipc_ctl_done d = { .status = status, .text = text };

    if (ipc_ctl_done_send(c->conn, 0, &d, -1) == -1) {
        qmgr_ctl_free(c);
        return;
    }
    c->done = 1;
    qmgr_ctl_schedule(c, 0);
}

/* qmgr_ctl_local_domain - 1 if dom is a local domain or myhostname. */
static int
qmgr_ctl_local_domain(const char *dom)
{
    if (strcasecmp(dom, qmgr_params.myhostname) == 0)
        return 1;
    for (size_t i = 0; i < qmgr_route.nlocal; i++)
        if (strcasecmp(dom, qmgr_route.local_domains[i]) == 0)
            return 1;
    return 0;
}

/* qmgr_ctl_visible - may this client see a message from sender? Admins see everything;
 * others only mail sent as user@local-domain or user@myhostname (never <>). */
static int
qmgr_ctl_visible(const struct qmgr_ctl_client *c, const char *sender)
{
    const char *at;
    size_t      ulen = strlen(c->user);

    if (c->admin)
        return 1;
    if (ulen == 0 || (at = strrchr(sender, '@')) == NULL)
        return 0;
    if ((size_t)(at - sender) != ulen || strncmp(sender, c->user, ulen) != 0)
        return 0;
    return qmgr_ctl_local_domain(at + 1);
}

/* qmgr_ctl_send_msg - encode one message (pending recipients only) as CTL_MSG, with fd
 * attached when >= 0. -1 if the client's connection is dead. */
static int
qmgr_ctl_send_msg(struct qmgr_ctl_client *c, const char *qid, const struct qrec_msg *m,
                  int fd)
{
    struct ipc_ctl_msg  out;
    struct qrec_rcpt   *r = NULL;
    uint32_t           *idx = NULL, n = 0, k = 0, i, active = 0;
    const char        **addr, **orig, **dsn, **text;
    uint32_t           *state, *attempts, *next;
    char              **cut;
    int                 rc;

    if (qmgr_store_get_rcpts(qmgr_db, qid, &r, &idx, &n) == -1)
        n = 0;
    addr = xcalloc(n + 1, sizeof(*addr));
    orig = xcalloc(n + 1, sizeof(*orig));
    dsn = xcalloc(n + 1, sizeof(*dsn));
    text = xcalloc(n + 1, sizeof(*text));
    cut = xcalloc(n + 1, sizeof(*cut));
    state = xcalloc(n + 1, sizeof(*state));
    attempts = xcalloc(n + 1, sizeof(*attempts));
    next = xcalloc(n + 1, sizeof(*next));
    memset(&out, 0, sizeof(out));
    for (i = 0; i < n; i++) {
        int js = qmgr_sched_job_state(qid, idx[i]);

        if (qrec_state_final(r[i].state))
            continue;
        active |= js != 0;
        if (k == IPC_CTL_RCPT_MAX) {
            out.rcpt_omitted++;
            continue;
        }
        addr[k] = r[i].addr;
        orig[k] = r[i].orig;
        dsn[k] = r[i].dsn;
        cut[k] = xstrndup(r[i].text, IPC_CTL_TEXT_MAX);
        text[k] = cut[k];
        state[k] = js == 2 ? QREC_ACTIVE : r[i].state;
        attempts[k] = r[i].attempts;
        next[k] = r[i].next_attempt > UINT32_MAX ? UINT32_MAX : (uint32_t)r[i].next_attempt;
        k++;
    }
    out.qid = qid;
    out.flags = m->flags;
    out.active = active && !(m->flags & QREC_F_HOLD);
    out.arrival = m->arrival;
    out.expiry = m->expiry;
    out.size = m->size;
    out.sender = m->sender;
    out.nrcpt = m->nrcpt;
    out.rcpt = addr;
    out.rcpt_n = k;
    out.orig = orig;
    out.orig_n = k;
    out.state = state;
    out.state_n = k;
    out.attempts = attempts;
    out.attempts_n = k;
    out.next_attempt = next;
    out.next_attempt_n = k;
    out.dsn = dsn;
    out.dsn_n = k;
    out.text = text;
    out.text_n = k;
    rc = ipc_ctl_msg_send(c->conn, 0, &out, fd);
    for (i = 0; i < n; i++)
        qrec_rcpt_clear(&r[i]);
    for (i = 0; i < k; i++)
        free(cut[i]);
    free(r);
    free(idx);
    free(addr);
    free(orig);
    free(dsn);
    free(text);
    free(cut);
    free(state);
    free(attempts);
    free(next);
    return rc;
}

/* qmgr_ctl_list_some - send up to QMGR_CTL_TURN_MSGS more messages; DONE at the end. */
static void
qmgr_ctl_list_some(struct qmgr_ctl_client *c)
{
    struct qrec_msg m;
    char            qid[QID_SIZE];
    int             rc = 0;

    for (int sent = 0; sent < QMGR_CTL_TURN_MSGS; ) {
        if (ipc_conn_pending(c->conn) > QMGR_CTL_OUT_HIGH) {
            qmgr_ctl_schedule(c, QMGR_CTL_POLL_MS);
            return;
        }
        if ((rc = qmgr_store_next_msg(qmgr_db, c->after, qid, &m)) != 0)
            break;
        memcpy(c->after, qid, QID_SIZE);
        if (qmgr_ctl_visible(c, m.sender)) {
            if (qmgr_ctl_send_msg(c, qid, &m, -1) == -1) {
                qrec_msg_clear(&m);
                qmgr_ctl_free(c);
                return;
            }
            sent++;
        }
        qrec_msg_clear(&m);
    }
    if (rc == 0) {
        qmgr_ctl_schedule(c, 0);            /* more next turn: others get served too */
        return;
    }
    qmgr_ctl_done(c, rc == -1 ? EIO : 0, rc == -1 ? "queue database read error" : "");
}

/* qmgr_ctl_pump - the client's timer: stream more, or wait for the output to drain. */
static void
qmgr_ctl_pump(void *arg)
{
    struct qmgr_ctl_client *c = arg;
    uint64_t                now = ev_now_ms();
    size_t                  pending = ipc_conn_pending(c->conn);

    c->timer = 0;
    if (pending < c->last_pending || pending == 0)
        c->progress_ms = now;
    c->last_pending = pending;
    if (now - c->progress_ms > QMGR_CTL_STALL_MS) {
        log_warnx("control: uid=%u reads nothing for %d s: dropped", c->uid,
                  QMGR_CTL_STALL_MS / 1000);
        qmgr_ctl_free(c);
        return;
    }
    if (c->done) {
        if (pending == 0)
            qmgr_ctl_free(c);              /* everything written: close */
        else
            qmgr_ctl_schedule(c, QMGR_CTL_POLL_MS);
        return;
    }
    qmgr_ctl_list_some(c);
}

/* qmgr_ctl_show - SHOW qid: the envelope and a read descriptor on the body. */
static void
qmgr_ctl_show(struct qmgr_ctl_client *c, const char *qid)
{
    struct qrec_msg m;
    int             rc, fd;

    if (!qid_valid(qid)) {
        qmgr_ctl_done(c, EINVAL, "not a queue ID");
        return;
    }
    if ((rc = qmgr_store_get_msg(qmgr_db, qid, &m)) != 0) {
        qmgr_ctl_done(c, rc == 1 ? ENOENT : EIO, rc == 1 ? "no such message"
                                                          : "queue database read error");
        return;
    }
    if (!qmgr_ctl_visible(c, m.sender)) {
        qrec_msg_clear(&m);
        qmgr_ctl_done(c, ENOENT, "no such message");    /* existence is not told either */
        return;
    }
    if ((fd = qmgr_body_open_read(qid)) == -1) {
        qrec_msg_clear(&m);
        qmgr_ctl_done(c, EIO, "queue file unavailable");
        return;
    }
    log_info("%s: shown to uid=%u", qid, c->uid);
    rc = qmgr_ctl_send_msg(c, qid, &m, fd);
    close(fd);
    qrec_msg_clear(&m);
    if (rc == -1)
        qmgr_ctl_free(c);
    else
        qmgr_ctl_done(c, 0, "");
}

/* qmgr_ctl_act - one administrative change to one message; 0 or an errno. */
static uint32_t
qmgr_ctl_act(struct qmgr_ctl_client *c, const char *qid, const char **what)
{
    static const struct {
        uint32_t           cmd;
        enum qmgr_store_op op;
        const char        *name;
    } ops[] = {
        { IPC_CTL_HOLD, QMGR_STORE_HOLD, "held" },
        { IPC_CTL_RELEASE, QMGR_STORE_RELEASE, "released" },
        { IPC_CTL_DELETE, QMGR_STORE_DELETE, "deleted" },
        { IPC_CTL_RETRY, QMGR_STORE_RETRY, "due now" },
        { IPC_CTL_EXPIRE, QMGR_STORE_EXPIRE, "expired" },
    };
    uint64_t now = qmgr_wall_ms() / 1000;
    uint32_t nrcpt;
    size_t   i;
    int      rc;

    for (i = 0; i < sizeof(ops) / sizeof(ops[0]) && ops[i].cmd != c->cmd; i++)
        ;
    *what = i < sizeof(ops) / sizeof(ops[0]) ? ops[i].name : "?";
    if (i == sizeof(ops) / sizeof(ops[0]))
        return EINVAL;
    if (!qid_valid(qid)) {
        *what = "not a queue ID";
        return EINVAL;
    }
    if ((rc = qmgr_store_admin(qmgr_db, qid, ops[i].op, now, &nrcpt)) != 0) {
        *what = rc == 1 ? "no such message" : "queue database error";
        return rc == 1 ? ENOENT : EIO;
    }
    switch (ops[i].op) {
    case QMGR_STORE_HOLD:
        qmgr_sched_forget(qid, nrcpt, 0);
        break;
    case QMGR_STORE_DELETE:
        qmgr_sched_forget(qid, nrcpt, 1);
        qmgr_body_unlink_later(qid);
        break;
    case QMGR_STORE_EXPIRE:
        qmgr_sched_set_expiry(qid, nrcpt, now);
        qmgr_sched_wake();
        break;
    case QMGR_STORE_RELEASE:
    case QMGR_STORE_RETRY:
        qmgr_sched_wake();
        break;
    }
    log_info("%s: %s by uid=%u%s%s", qid, ops[i].name, c->uid, c->user[0] ? " user=" : "",
             c->user);
    return 0;
}

/* qmgr_ctl_actions - HOLD, RELEASE, DELETE, RETRY, EXPIRE over the request's queue IDs. */
static void
qmgr_ctl_actions(struct qmgr_ctl_client *c, const char **qids, uint32_t n)
{
    uint32_t failed = 0;

    for (uint32_t i = 0; i < n; i++) {
        struct ipc_ctl_result r;
        const char           *what;

        r.qid = qids[i];
        r.status = qmgr_ctl_act(c, qids[i], &what);
        r.text = what;
        failed += r.status != 0;
        if (ipc_ctl_result_send(c->conn, 0, &r, -1) == -1) {
            qmgr_ctl_free(c);
            return;
        }
    }
    qmgr_ctl_done(c, failed ? ENOENT : 0, failed ? "some messages were not changed" : "");
}

/* qmgr_ctl_handoff - serve a client master passed us. */
void
qmgr_ctl_handoff(const struct ipc_frame *f)
{
    struct ipc_ctl_handoff  h;
    struct qmgr_ctl_client *c;
    int                     fl;

    if (ipc_ctl_handoff_dec(f, &h) == -1)
        fatalx("malformed ctl_handoff from master");
    if (f->fd < 0)
        fatalx("ctl_handoff without a descriptor");
    if (qmgr_ctl_nclients >= QMGR_CTL_CLIENTS_MAX) {
        struct buf           b;
        struct ipc_ctl_done  d = { .status = EBUSY, .text = "qmgr is busy; try again" };

        /* Best effort, blocking is not allowed here: one frame into an empty socket. */
        buf_init(&b, 64);
        if (ipc_ctl_done_enc(&b, &d) == 0 && (fl = fcntl(f->fd, F_GETFL)) != -1) {
            fcntl(f->fd, F_SETFL, fl | O_NONBLOCK);
            (void)ipc_send_frame(f->fd, IPC_CTL_DONE, 0, &b, -1);
        }
        buf_release(&b);
        close(f->fd);
        ipc_ctl_handoff_clear(&h);
        return;
    }
    if ((fl = fcntl(f->fd, F_GETFL)) != -1)
        fcntl(f->fd, F_SETFL, fl | O_NONBLOCK);
    c = xcalloc(1, sizeof(*c));
    c->uid = h.uid;
    c->admin = h.admin != 0;
    snprintf(c->user, sizeof(c->user), "%s", h.user);
    c->cmd = h.cmd;
    c->progress_ms = ev_now_ms();
    c->conn = ipc_conn_new(qmgr_ev, f->fd, qmgr_ctl_frame, c);
    c->next = qmgr_ctl_clients;
    if (qmgr_ctl_clients)
        qmgr_ctl_clients->prev = c;
    qmgr_ctl_clients = c;
    qmgr_ctl_nclients++;
    log_debug("control: uid=%u admin=%d cmd=%u args=%u", c->uid, c->admin, c->cmd, h.args_n);

    switch (h.cmd) {
    case IPC_CTL_LIST:
        qmgr_ctl_schedule(c, 0);
        break;
    case IPC_CTL_SHOW:
        if (h.args_n != 1)
            qmgr_ctl_done(c, EINVAL, "show takes one queue ID");
        else
            qmgr_ctl_show(c, h.args[0]);
        break;
    case IPC_CTL_HOLD:
    case IPC_CTL_RELEASE:
    case IPC_CTL_DELETE:
    case IPC_CTL_RETRY:
    case IPC_CTL_EXPIRE:
        if (!c->admin)
            qmgr_ctl_done(c, EPERM, "permission denied: only root and members of "
                          "admin_group may change the queue");
        else
            qmgr_ctl_actions(c, h.args, h.args_n);
        break;
    case IPC_CTL_PAUSE_DELIVERY:
    case IPC_CTL_RESUME_DELIVERY:
        if (!c->admin) {
            qmgr_ctl_done(c, EPERM, "permission denied: only root and members of "
                          "admin_group may pause or resume delivery");
            break;
        }
        qmgr_sched_pause(h.cmd == IPC_CTL_PAUSE_DELIVERY);
        log_info("delivery %s by uid=%u", h.cmd == IPC_CTL_PAUSE_DELIVERY ? "paused"
                 : "resumed", c->uid);
        qmgr_ctl_done(c, 0, h.cmd == IPC_CTL_PAUSE_DELIVERY ? "delivery paused"
                      : "delivery resumed");
        break;
    default:
        qmgr_ctl_done(c, EINVAL, "unknown queue command");
        break;
    }
    ipc_ctl_handoff_clear(&h);
}

/* qmgr_ctl_counters - our counters, names as in doc/status.md. */
void
qmgr_ctl_counters(struct ipc_conn *master, uint32_t reqid)
{
    struct qmgr_sched_counters sc;
    uint64_t                   msgs = 0, held = 0, bytes = 0;
    const char                *names[24];
    uint64_t                   v[24];
    uint32_t                   n = 0;

    qmgr_sched_get_counters(&sc);
    (void)qmgr_store_count(qmgr_db, &msgs, &held, &bytes);
#define QMGR_CTL_C(nm, val) do { names[n] = (nm); v[n] = (val); n++; } while (0)
    QMGR_CTL_C("received", qmgr_smtpd_received);
    QMGR_CTL_C("received_bytes", qmgr_smtpd_received_bytes);
    QMGR_CTL_C("delivered", sc.local_sent + sc.smtp_sent);
    QMGR_CTL_C("deferred", sc.local_deferred + sc.smtp_deferred);
    QMGR_CTL_C("bounced", sc.local_bounced + sc.smtp_bounced);
    QMGR_CTL_C("expired", sc.expired);
    QMGR_CTL_C("local.delivered", sc.local_sent);
    QMGR_CTL_C("local.deferred", sc.local_deferred);
    QMGR_CTL_C("local.bounced", sc.local_bounced);
    QMGR_CTL_C("smtp.delivered", sc.smtp_sent);
    QMGR_CTL_C("smtp.deferred", sc.smtp_deferred);
    QMGR_CTL_C("smtp.bounced", sc.smtp_bounced);
    QMGR_CTL_C("queue.messages", msgs);
    QMGR_CTL_C("queue.held", held);
    QMGR_CTL_C("queue.bytes", bytes);
    QMGR_CTL_C("queue.rcpts_in_memory", sc.in_memory);
    QMGR_CTL_C("queue.rcpts_in_flight", sc.in_flight);
    QMGR_CTL_C("delivery_paused", (uint64_t)qmgr_sched_paused());
    QMGR_CTL_C("control_clients", qmgr_ctl_nclients);
#undef QMGR_CTL_C
    daemon_send_counters(master, reqid, names, v, n);
}

/* qmgr_ctl_shutdown - drop every client. */
void
qmgr_ctl_shutdown(void)
{
    while (qmgr_ctl_clients != NULL)
        qmgr_ctl_free(qmgr_ctl_clients);
}
