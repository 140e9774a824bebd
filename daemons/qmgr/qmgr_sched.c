/* qmgr_sched - deliveries going out: due recipients, delivery agents, results, retries.
 *
 * See qmgr_sched.h. A job is one recipient in memory: due (on its transport's queue), in
 * flight (on an agent's list, with the request id sent in DELIVER) or done (a result waits
 * for the end-of-turn write). Every job is also in a table keyed "QID/index", which keeps
 * a database scan from loading a recipient twice. The database's retry index is the truth:
 * a recipient is in memory only while it is due or in flight, and at most
 * QMGR_SCHED_MEM_MAX jobs are held; the rest wait in the index until a scan picks them up
 * (new commits past the cap also just wait there). In-flight state is never written to the
 * database, so a crash makes those recipients due again at the next start. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "qid.h"
#include "qrec.h"
#include "qmgr.h"
#include "qmgr_body.h"
#include "qmgr_sched.h"
#include "qmgr_store.h"
#include "qmgr_tab.h"

#define QMGR_SCHED_MEM_MAX  50000                   /* jobs held in memory */
#define QMGR_SCHED_MEM_LOW  (QMGR_SCHED_MEM_MAX / 2) /* scan again below this */
#define QMGR_SCHED_KEY_SIZE (QID_LEN + 12)

enum qmgr_job_state { QMGR_JOB_DUE, QMGR_JOB_INFLIGHT, QMGR_JOB_DONE };

struct qmgr_transport;
struct qmgr_agent;

/* One recipient of one message, in memory. */
struct qmgr_job {
    char                   key[QMGR_SCHED_KEY_SIZE];   /* "QID/index" */
    char                   qid[QID_SIZE];
    uint32_t               index;
    enum qmgr_job_state    state;
    uint32_t               flags;          /* QREC_F_* of the message */
    uint64_t               arrival_ms;     /* wall clock */
    uint64_t               expiry;         /* seconds */
    uint64_t               size;
    uint32_t               attempts;       /* before this one */
    char                  *sender;
    char                  *rcpt;
    char                  *orig;
    uint32_t               reqid;          /* while in flight */
    struct qmgr_transport *tr;
    struct qmgr_agent     *agent;          /* while in flight */
    struct qmgr_job       *prev, *next;    /* due queue or the agent's in-flight list */
};

/* A delivery agent process. */
struct qmgr_agent {
    struct ipc_conn       *conn;
    uint32_t               id;
    struct qmgr_transport *tr;
    struct qmgr_job       *jobs;           /* in flight */
    uint32_t               njobs;
    struct qmgr_agent     *prev, *next;
};

/* A transport: one kind of delivery agent, its queue of due jobs and its window. Later
 * transports (smtp) hold per-destination queues; route() picks the transport. */
struct qmgr_transport {
    const char            *name;           /* relay= in the logs */
    uint32_t               kind;           /* enum ipc_peer_kind of its agents */
    uint32_t               limit;          /* jobs in flight, over all its agents */
    uint32_t               inflight;
    struct qmgr_agent     *agents;
    struct qmgr_agent     *rr;             /* the next agent to use */
    struct qmgr_job       *due_head, *due_tail;
    size_t                 ndue;
};

/* A result waiting for the end-of-turn write. */
struct qmgr_sched_pending {
    struct qmgr_store_result r;
    struct qmgr_job         *job;
    char                    *dsn;
    char                    *text;
};

static struct qmgr_transport      qmgr_sched_local = { "local", IPC_PEER_LOCAL, 10, 0, NULL,
                                                      NULL, NULL, NULL, 0 };
static struct qmgr_tab           *qmgr_sched_jobs;
static int                        qmgr_sched_more;        /* the DB holds due work not loaded */
static uint64_t                   qmgr_sched_timer, qmgr_sched_timer_at;
static uint32_t                   qmgr_sched_reqid;
static int                        qmgr_sched_dispatch_queued, qmgr_sched_flush_queued;
static struct qmgr_sched_pending *qmgr_sched_res;
static size_t                     qmgr_sched_nres, qmgr_sched_res_cap;

static void qmgr_sched_kick(void);
static void qmgr_sched_scan(void);

/* qmgr_sched_route - the transport for a job. Every recipient is local for now; later the
 * recipient domain's class (local_domains or not) picks local or smtp here. */
static struct qmgr_transport *
qmgr_sched_route(const struct qmgr_job *j)
{
    (void)j;
    return &qmgr_sched_local;
}

/* qmgr_sched_job_new - a due job, entered in the table and on its transport's queue. */
static struct qmgr_job *
qmgr_sched_job_new(const char *qid, uint32_t index, const struct qrec_msg *m,
                   const struct qrec_rcpt *r, uint64_t arrival_ms)
{
    struct qmgr_job       *j = xcalloc(1, sizeof(*j));
    struct qmgr_transport *t;

    memcpy(j->qid, qid, QID_SIZE);
    j->index = index;
    snprintf(j->key, sizeof(j->key), "%s/%u", qid, index);
    j->state = QMGR_JOB_DUE;
    j->flags = m->flags;
    j->arrival_ms = arrival_ms;
    j->expiry = m->expiry;
    j->size = m->size;
    j->attempts = r->attempts;
    j->sender = xstrdup(m->sender ? m->sender : "");
    j->rcpt = xstrdup(r->addr);
    j->orig = xstrdup(r->orig ? r->orig : r->addr);
    j->tr = t = qmgr_sched_route(j);
    qmgr_tab_put(qmgr_sched_jobs, j->key, j);
    j->prev = t->due_tail;
    if (t->due_tail)
        t->due_tail->next = j;
    else
        t->due_head = j;
    t->due_tail = j;
    t->ndue++;
    return j;
}

/* qmgr_sched_job_free - forget a job that is on no list. */
static void
qmgr_sched_job_free(struct qmgr_job *j)
{
    qmgr_tab_del(qmgr_sched_jobs, j->key);
    free(j->sender);
    free(j->rcpt);
    free(j->orig);
    free(j);
}

/* qmgr_sched_due_pop - take the first due job of a transport. */
static struct qmgr_job *
qmgr_sched_due_pop(struct qmgr_transport *t)
{
    struct qmgr_job *j = t->due_head;

    if (j == NULL)
        return NULL;
    t->due_head = j->next;
    if (t->due_head)
        t->due_head->prev = NULL;
    else
        t->due_tail = NULL;
    j->next = j->prev = NULL;
    t->ndue--;
    return j;
}

/* qmgr_sched_due_push_front - put a job back at the head of its queue. */
static void
qmgr_sched_due_push_front(struct qmgr_job *j)
{
    struct qmgr_transport *t = j->tr;

    j->state = QMGR_JOB_DUE;
    j->prev = NULL;
    j->next = t->due_head;
    if (t->due_head)
        t->due_head->prev = j;
    else
        t->due_tail = j;
    t->due_head = j;
    t->ndue++;
}

/* qmgr_sched_agent_unlink_job - take an in-flight job off its agent. */
static void
qmgr_sched_agent_unlink_job(struct qmgr_job *j)
{
    struct qmgr_agent *a = j->agent;

    if (j->prev)
        j->prev->next = j->next;
    else
        a->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->next = j->prev = NULL;
    a->njobs--;
    a->tr->inflight--;
    j->agent = NULL;
}

/* qmgr_sched_timer_cb - a retry is due: scan the index. */
static void
qmgr_sched_timer_cb(void *arg)
{
    (void)arg;
    qmgr_sched_timer = 0;
    qmgr_sched_scan();
}

/* qmgr_sched_wake_at - make sure the scheduler scans at wall-clock second `when`. */
static void
qmgr_sched_wake_at(uint64_t when)
{
    uint64_t now_ms = qmgr_wall_ms(), at_ms = when * 1000;

    if (qmgr_sched_timer != 0 && qmgr_sched_timer_at <= when)
        return;
    ev_timer_del(qmgr_ev, qmgr_sched_timer);
    qmgr_sched_timer_at = when;
    qmgr_sched_timer = ev_timer_add(qmgr_ev, (at_ms > now_ms ? at_ms - now_ms : 0) + 10,
                                    qmgr_sched_timer_cb, NULL);
}

/* qmgr_sched_gone - every recipient of a message is final: its records are gone. */
static void
qmgr_sched_gone(const char *qid, void *arg)
{
    (void)arg;
    qmgr_body_unlink(qid);
    log_info("%s: removed", qid);
}

/* qmgr_sched_flush - write the turn's results in one transaction, then forget the jobs. */
void
qmgr_sched_flush(void)
{
    struct qmgr_sched_pending *res = qmgr_sched_res;
    struct qmgr_store_result  *v;
    size_t                     n = qmgr_sched_nres, i;
    int                        rc;

    if (n == 0)
        return;
    qmgr_sched_res = NULL;
    qmgr_sched_nres = qmgr_sched_res_cap = 0;
    v = xcalloc(n, sizeof(*v));
    for (i = 0; i < n; i++)
        v[i] = res[i].r;
    rc = qmgr_store_results(qmgr_db, v, n, qmgr_sched_gone, NULL);
    if (rc == -1) {
        /* The records still say due: a scan soon delivers them again (at-least-once). */
        log_warnx("could not record %zu delivery results; they will be retried", n);
        qmgr_sched_wake_at(qmgr_wall_ms() / 1000 + 5);
    }
    for (i = 0; i < n; i++) {
        if (rc == 0 && res[i].r.state == QREC_DEFERRED)
            qmgr_sched_wake_at(res[i].r.next_attempt);
        qmgr_sched_job_free(res[i].job);
        free(res[i].dsn);
        free(res[i].text);
    }
    free(v);
    free(res);
    qmgr_sched_kick();      /* memory freed: maybe load more */
}

/* qmgr_sched_flush_cb - end of turn: results. */
static void
qmgr_sched_flush_cb(void *arg)
{
    (void)arg;
    qmgr_sched_flush_queued = 0;
    qmgr_sched_flush();
}

/* qmgr_sched_backoff - the delay after the n-th failed attempt: retry_min doubling up to
 * retry_max. */
static uint64_t
qmgr_sched_backoff(uint32_t n)
{
    uint64_t d = qmgr_params.retry_min ? qmgr_params.retry_min : 1;

    while (n-- > 1 && d < qmgr_params.retry_max)
        d *= 2;
    return d < qmgr_params.retry_max ? d : qmgr_params.retry_max;
}

/* qmgr_sched_result - record a job's outcome (status: sent, deferred, bounced, expired),
 * log it and queue the database write for the end of the turn. */
static void
qmgr_sched_result(struct qmgr_job *j, uint32_t state, const char *dsn, const char *text,
                  const char *relay, int attempted)
{
    struct qmgr_sched_pending *p;
    uint64_t                   now_ms = qmgr_wall_ms(), now = now_ms / 1000;
    const char                *status;
    double                     delay;
    char                       orig[1100] = "";

    if (state == QREC_DEFERRED && now >= j->expiry) {
        state = QREC_FAILED;
        status = "expired";
    } else {
        status = state == QREC_SENT ? "sent" : state == QREC_FAILED ? "bounced" : "deferred";
    }
    if (qmgr_sched_nres == qmgr_sched_res_cap) {
        qmgr_sched_res_cap = qmgr_sched_res_cap ? qmgr_sched_res_cap * 2 : 64;
        qmgr_sched_res = xrealloc(qmgr_sched_res, qmgr_sched_res_cap * sizeof(*qmgr_sched_res));
    }
    p = &qmgr_sched_res[qmgr_sched_nres++];
    memset(p, 0, sizeof(*p));
    p->job = j;
    p->dsn = xstrdup(dsn);
    p->text = xstrndup(text, 1000);
    memcpy(p->r.qid, j->qid, QID_SIZE);
    p->r.index = j->index;
    p->r.state = state;
    p->r.now = now;
    p->r.attempted = attempted;
    p->r.dsn = p->dsn;
    p->r.text = p->text;
    if (state == QREC_DEFERRED) {
        p->r.next_attempt = now + qmgr_sched_backoff(j->attempts + (attempted ? 1 : 0));
        if (p->r.next_attempt > j->expiry)
            p->r.next_attempt = j->expiry;
    }
    j->state = QMGR_JOB_DONE;

    delay = now_ms > j->arrival_ms ? (double)(now_ms - j->arrival_ms) / 1000.0 : 0.0;
    if (strcmp(j->orig, j->rcpt) != 0)
        snprintf(orig, sizeof(orig), ", orig_to=<%s>", j->orig);
    log_info("%s: to=<%s>%s, relay=%s, delay=%.*f, dsn=%s, status=%s (%s)", j->qid, j->rcpt,
             orig, relay, delay < 10 ? 2 : 1, delay, dsn, status, p->text);
    if (!qmgr_sched_flush_queued) {
        qmgr_sched_flush_queued = 1;
        ev_defer(qmgr_ev, qmgr_sched_flush_cb, NULL);
    }
}

/* qmgr_sched_agent_pick - the next agent of a transport, round-robin. */
static struct qmgr_agent *
qmgr_sched_agent_pick(struct qmgr_transport *t)
{
    struct qmgr_agent *a = t->rr ? t->rr : t->agents;

    if (a != NULL)
        t->rr = a->next ? a->next : t->agents;
    return a;
}

/* qmgr_sched_send - hand one job to an agent with a fresh read descriptor on the body.
 * 0: in flight; -1: the agent's connection is dead (the job is untouched). */
static int
qmgr_sched_send(struct qmgr_agent *a, struct qmgr_job *j, int fd)
{
    struct ipc_deliver d;

    if (++qmgr_sched_reqid == 0)
        qmgr_sched_reqid = 1;
    d.qid = j->qid;
    d.rcpt_index = j->index;
    d.flags = j->flags & 0xffu;
    d.arrival = j->arrival_ms / 1000;
    d.size = j->size;
    d.sender = j->sender;
    d.rcpt = j->rcpt;
    d.orig_rcpt = j->orig;
    if (ipc_deliver_send(a->conn, qmgr_sched_reqid, &d, fd) == -1)
        return -1;
    j->reqid = qmgr_sched_reqid;
    j->state = QMGR_JOB_INFLIGHT;
    j->agent = a;
    j->prev = NULL;
    j->next = a->jobs;
    if (a->jobs)
        a->jobs->prev = j;
    a->jobs = j;
    a->njobs++;
    a->tr->inflight++;
    return 0;
}

/* qmgr_sched_dispatch_transport - start due jobs while the window and agents allow. */
static void
qmgr_sched_dispatch_transport(struct qmgr_transport *t)
{
    struct qmgr_job *j;
    uint64_t         now = qmgr_wall_ms() / 1000;

    while (t->inflight < t->limit && t->agents != NULL
           && (j = qmgr_sched_due_pop(t)) != NULL) {
        struct qmgr_agent *a;
        int                fd;

        if (now >= j->expiry) {
            /* A deferral at or past expiry is logged and recorded as expired (failed). */
            qmgr_sched_result(j, QREC_DEFERRED, "4.4.7", "delivery time expired", "none", 0);
            continue;
        }
        if ((fd = qmgr_body_open_read(j->qid)) == -1) {
            qmgr_sched_result(j, QREC_DEFERRED, "4.3.0", "queue file unavailable", "none", 1);
            continue;
        }
        a = qmgr_sched_agent_pick(t);
        if (qmgr_sched_send(a, j, fd) == -1) {
            close(fd);
            qmgr_sched_due_push_front(j);
            break;      /* the dead agent is reported from the loop and dropped then */
        }
        close(fd);
    }
}

/* qmgr_sched_dispatch_cb - end of turn: start deliveries, load more work if memory allows. */
static void
qmgr_sched_dispatch_cb(void *arg)
{
    (void)arg;
    qmgr_sched_dispatch_queued = 0;
    if (qmgr_sched_more && qmgr_tab_count(qmgr_sched_jobs) < QMGR_SCHED_MEM_LOW)
        qmgr_sched_scan();
    qmgr_sched_dispatch_transport(&qmgr_sched_local);
}

/* qmgr_sched_kick - dispatch at the end of this turn (once). */
static void
qmgr_sched_kick(void)
{
    if (qmgr_sched_dispatch_queued || qmgr_ev == NULL)
        return;
    qmgr_sched_dispatch_queued = 1;
    ev_defer(qmgr_ev, qmgr_sched_dispatch_cb, NULL);
}

/* A retry key that points at nothing to do, deleted after the scan. */
struct qmgr_sched_stale {
    uint64_t when;
    char     qid[QID_SIZE];
    uint32_t index;
};

/* State of one scan of the retry index. */
struct qmgr_sched_scan_ctx {
    char                     msg_qid[QID_SIZE];  /* msg holds this envelope ... */
    int                      msg_rc;             /* ... with this lookup result */
    struct qrec_msg          msg;
    struct qmgr_sched_stale *stale;
    size_t                   nstale, stale_cap;
    size_t                   loaded;
};

/* qmgr_sched_scan_stale - remember a retry key to delete after the scan. */
static void
qmgr_sched_scan_stale(struct qmgr_sched_scan_ctx *x, uint64_t when, const char *qid,
                      uint32_t index)
{
    if (x->nstale == x->stale_cap) {
        x->stale_cap = x->stale_cap ? x->stale_cap * 2 : 16;
        x->stale = xrealloc(x->stale, x->stale_cap * sizeof(*x->stale));
    }
    memcpy(x->stale[x->nstale].qid, qid, QID_SIZE);
    x->stale[x->nstale].index = index;
    x->stale[x->nstale].when = when;
    x->nstale++;
}

/* qmgr_sched_scan_cb - one due retry key: load its recipient unless already in memory. */
static int
qmgr_sched_scan_cb(uint64_t when, const char *qid, uint32_t index, void *arg)
{
    struct qmgr_sched_scan_ctx *x = arg;
    struct qrec_rcpt            r;
    char                        key[QMGR_SCHED_KEY_SIZE];
    int                         rc;

    snprintf(key, sizeof(key), "%s/%u", qid, index);
    if (qmgr_tab_get(qmgr_sched_jobs, key) != NULL)
        return 0;
    if (qmgr_tab_count(qmgr_sched_jobs) >= QMGR_SCHED_MEM_MAX) {
        qmgr_sched_more = 1;
        return 1;
    }
    if ((rc = qmgr_store_get_rcpt(qmgr_db, qid, index, &r)) != 0) {
        if (rc == 1)
            qmgr_sched_scan_stale(x, when, qid, index);
        return 0;
    }
    if (qrec_state_final(r.state) || r.next_attempt != when) {
        qmgr_sched_scan_stale(x, when, qid, index);
        qrec_rcpt_clear(&r);
        return 0;
    }
    if (strcmp(x->msg_qid, qid) != 0) {
        qrec_msg_clear(&x->msg);
        memcpy(x->msg_qid, qid, QID_SIZE);
        x->msg_rc = qmgr_store_get_msg(qmgr_db, qid, &x->msg);
        if (x->msg_rc == 1)
            log_warnx("%s: recipients without an envelope, skipped", qid);
    }
    if (x->msg_rc == 0 && !(x->msg.flags & QREC_F_HOLD)) {
        qmgr_sched_job_new(qid, index, &x->msg, &r, x->msg.arrival * 1000);
        x->loaded++;
    }
    qrec_rcpt_clear(&r);
    return 0;
}

/* qmgr_sched_scan - load due recipients from the retry index; arm the timer for the next. */
static void
qmgr_sched_scan(void)
{
    struct qmgr_sched_scan_ctx x;
    uint64_t                   next = 0;
    size_t                     i;

    memset(&x, 0, sizeof(x));
    qmgr_sched_more = 0;
    if (qmgr_store_scan_due(qmgr_db, qmgr_wall_ms() / 1000, qmgr_sched_scan_cb, &x, &next)
        == -1)
        qmgr_sched_wake_at(qmgr_wall_ms() / 1000 + 5);
    qrec_msg_clear(&x.msg);
    for (i = 0; i < x.nstale; i++)
        qmgr_store_drop_retry(qmgr_db, x.stale[i].when, x.stale[i].qid, x.stale[i].index);
    free(x.stale);
    if (next != 0)
        qmgr_sched_wake_at(next);
    if (x.loaded > 0) {
        log_debug("scheduler: loaded=%zu in_memory=%zu more=%d", x.loaded,
                  qmgr_tab_count(qmgr_sched_jobs), qmgr_sched_more);
        qmgr_sched_kick();
    }
}

/* qmgr_sched_new_message - queue a just-committed message's recipients. */
void
qmgr_sched_new_message(const struct qmgr_store_new *m, uint64_t arrival_ms)
{
    uint32_t i;

    if (m->msg.flags & QREC_F_HOLD)
        return;
    if (qmgr_sched_more || qmgr_tab_count(qmgr_sched_jobs) + m->msg.nrcpt
                           > QMGR_SCHED_MEM_MAX) {
        qmgr_sched_more = 1;        /* it waits in the retry index */
        return;
    }
    for (i = 0; i < m->msg.nrcpt; i++)
        qmgr_sched_job_new(m->qid, i, &m->msg, &m->rcpts[i], arrival_ms);
    qmgr_sched_kick();
}

/* qmgr_sched_agent_drop - an agent went away: defer its jobs in flight, forget it. */
static void
qmgr_sched_agent_drop(struct qmgr_agent *a, const char *why)
{
    struct qmgr_transport *t = a->tr;

    if (a->njobs > 0)
        log_warnx("%s agent %u %s with %u deliveries in flight", t->name, a->id, why,
                  a->njobs);
    else
        log_debug("%s agent %u %s", t->name, a->id, why);
    while (a->jobs != NULL) {
        struct qmgr_job *j = a->jobs;

        qmgr_sched_agent_unlink_job(j);
        qmgr_sched_result(j, QREC_DEFERRED, "4.3.0", "delivery agent went away", t->name, 1);
    }
    if (t->rr == a)
        t->rr = a->next;
    if (a->prev)
        a->prev->next = a->next;
    else
        t->agents = a->next;
    if (a->next)
        a->next->prev = a->prev;
    if (t->rr == NULL)
        t->rr = t->agents;
    ipc_conn_free(&a->conn);
    free(a);
    qmgr_sched_kick();
}

/* qmgr_sched_delivered - a result from an agent. */
static void
qmgr_sched_delivered(struct qmgr_agent *a, const struct ipc_frame *f)
{
    struct ipc_delivered d;
    struct qmgr_job     *j;
    char                 key[QMGR_SCHED_KEY_SIZE];
    uint32_t             state;

    if (ipc_delivered_dec(f, &d) == -1) {
        log_warnx("%s agent %u: malformed delivered, dropping the agent", a->tr->name, a->id);
        qmgr_sched_agent_drop(a, "sent a malformed frame");
        return;
    }
    snprintf(key, sizeof(key), "%.*s/%u", QID_LEN, d.qid, d.rcpt_index);
    j = qmgr_tab_get(qmgr_sched_jobs, key);
    if (j == NULL || j->state != QMGR_JOB_INFLIGHT || j->agent != a || j->reqid != f->reqid) {
        log_warnx("%s agent %u: result for a job it does not have (%.20s/%u), ignored",
                  a->tr->name, a->id, d.qid, d.rcpt_index);
        ipc_delivered_clear(&d);
        return;
    }
    qmgr_sched_agent_unlink_job(j);
    switch (d.status) {
    case IPC_DELIV_OK:
        state = QREC_SENT;
        break;
    case IPC_DELIV_PERM:
        state = QREC_FAILED;    /* the bounce (DSN) comes with a later change */
        break;
    case IPC_DELIV_TEMP:
        state = QREC_DEFERRED;
        break;
    default:
        log_warnx("%s: %s agent %u: unknown status %u, deferring", j->qid, a->tr->name, a->id,
                  d.status);
        state = QREC_DEFERRED;
        break;
    }
    qmgr_sched_result(j, state, d.dsn[0] ? d.dsn : state == QREC_SENT ? "2.0.0"
                      : state == QREC_FAILED ? "5.0.0" : "4.0.0", d.text, a->tr->name, 1);
    ipc_delivered_clear(&d);
    qmgr_sched_kick();
}

/* qmgr_sched_agent_frame - one frame from a delivery agent, or NULL when it is gone. */
static void
qmgr_sched_agent_frame(struct ipc_conn *conn, const struct ipc_frame *f, void *arg)
{
    struct qmgr_agent *a = arg;

    (void)conn;
    if (f == NULL) {
        qmgr_sched_agent_drop(a, "disconnected");
        return;
    }
    if (f->fd != -1) {
        close(f->fd);
        qmgr_sched_agent_drop(a, "sent an unexpected descriptor");
        return;
    }
    if (f->type != IPC_DELIVERED) {
        log_warnx("%s agent %u: unexpected message type %u", a->tr->name, a->id, f->type);
        qmgr_sched_agent_drop(a, "sent an unexpected message");
        return;
    }
    qmgr_sched_delivered(a, f);
}

/* qmgr_sched_add_agent - a delivery agent's socket from master. */
void
qmgr_sched_add_agent(int fd, uint32_t kind, uint32_t id)
{
    struct qmgr_transport *t = NULL;
    struct qmgr_agent     *a;
    int                    fl;

    if (kind == IPC_PEER_LOCAL)
        t = &qmgr_sched_local;
    if (t == NULL) {
        log_warnx("agent of unsupported kind %u ignored", kind);
        close(fd);
        return;
    }
    if ((fl = fcntl(fd, F_GETFL)) != -1)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    a = xcalloc(1, sizeof(*a));
    a->id = id;
    a->tr = t;
    a->conn = ipc_conn_new(qmgr_ev, fd, qmgr_sched_agent_frame, a);
    a->next = t->agents;
    if (t->agents)
        t->agents->prev = a;
    t->agents = a;
    log_debug("%s agent %u connected", t->name, id);
    qmgr_sched_kick();
}

/* qmgr_sched_start - the first scan. */
void
qmgr_sched_start(void)
{
    if (qmgr_sched_jobs == NULL)
        qmgr_sched_jobs = qmgr_tab_new();
    qmgr_sched_local.limit = qmgr_params.local_concurrency ? qmgr_params.local_concurrency : 1;
    qmgr_sched_scan();
}

/* qmgr_sched_shutdown - write pending results, drop agents, free every job. */
void
qmgr_sched_shutdown(void)
{
    struct qmgr_transport *t = &qmgr_sched_local;
    struct qmgr_job       *j;

    qmgr_sched_flush();
    while (t->agents != NULL) {
        struct qmgr_agent *a = t->agents;

        /* In flight stays due in the database: the next qmgr delivers it again. */
        while ((j = a->jobs) != NULL) {
            qmgr_sched_agent_unlink_job(j);
            qmgr_sched_job_free(j);
        }
        t->agents = a->next;
        ipc_conn_free(&a->conn);
        free(a);
    }
    t->rr = NULL;
    while ((j = qmgr_sched_due_pop(t)) != NULL)
        qmgr_sched_job_free(j);
    qmgr_sched_flush();     /* expiries found while dropping, if any */
    ev_timer_del(qmgr_ev, qmgr_sched_timer);
    qmgr_sched_timer = 0;
    qmgr_tab_free(&qmgr_sched_jobs);
}
