/* qmgr_sched - deliveries going out: due recipients, delivery agents, results, retries.
 *
 * See qmgr_sched.h. A job is one recipient in memory: due (on a queue), in flight (on a
 * local agent's list, or inside a relay batch on an smtp agent's list) or done (a result
 * waits for the end-of-turn write). Every job is also in a table keyed "QID/index", which
 * keeps a database scan from loading a recipient twice. The database's retry index is the
 * truth: a recipient is in memory only while it is due or in flight, and at most
 * QMGR_SCHED_MEM_MAX jobs are held; the rest wait in the index until a scan picks them up.
 * In-flight state is never written to the database, so a crash makes those recipients due
 * again at the next start.
 *
 * Each job is routed when it is loaded (qmgr_route). Local jobs share one queue and the
 * local_concurrency window. Relay jobs (smtp, lmtp) go to a destination queue (transport,
 * next hop and TLS level); destinations with due jobs form a ring that dispatch walks
 * round-robin, one batch per destination per pass (so one big destination cannot starve
 * the others), each destination within its own window (qmgr_dest). A batch is up to
 * QMGR_SCHED_BATCH_MAX consecutive due recipients of one message: one IPC_RELAY to one
 * smtp agent (agents round-robin, at most smtp_max_connections batches each); its
 * IPC_RELAYED answer feeds the destination's window and pause. A paused destination's
 * recipients are deferred to the pause's end. When no smtp agent is connected relay jobs
 * wait in memory (up to QMGR_SCHED_NOAGENT_MAX, then in the database), and a housekeeping
 * timer expires jobs that wait past their message's lifetime.
 *
 * Results are batched per event-loop turn into one DB_TXN_WRITE_NOSYNC transaction that
 * also carries the DSNs they cause (qmgr_bounce). Agents are trusted, but a malformed frame
 * from one still only drops that agent; its jobs in flight are deferred. */
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
#include "qmgr_bounce.h"
#include "qmgr_dest.h"
#include "qmgr_route.h"
#include "qmgr_sched.h"
#include "qmgr_store.h"
#include "qmgr_tab.h"

#define QMGR_SCHED_MEM_MAX      50000                    /* jobs held in memory */
#define QMGR_SCHED_MEM_LOW      (QMGR_SCHED_MEM_MAX / 2) /* scan again below this */
#define QMGR_SCHED_KEY_SIZE     (QID_LEN + 12)
#define QMGR_SCHED_BATCH_MAX    100                      /* recipients per IPC_RELAY */
#define QMGR_SCHED_NOAGENT_MAX  10000                    /* relay jobs held without agents */
#define QMGR_SCHED_HOUSEKEEP_MS 10000

enum qmgr_job_state { QMGR_JOB_DUE, QMGR_JOB_INFLIGHT, QMGR_JOB_DONE };

struct qmgr_transport;
struct qmgr_agent;
struct qmgr_destq;
struct qmgr_relay;

/* One recipient of one message, in memory. */
struct qmgr_job {
    char                   key[QMGR_SCHED_KEY_SIZE];   /* "QID/index" */
    char                   qid[QID_SIZE];
    uint32_t               index;
    enum qmgr_job_state    state;
    uint32_t               flags;          /* QREC_F_* of the message */
    uint32_t               notify;         /* DSN NOTIFY bits */
    uint32_t               ret;            /* DSN RET */
    uint64_t               arrival_ms;     /* wall clock */
    uint64_t               expiry;         /* seconds */
    uint64_t               size;
    uint32_t               attempts;       /* before this one */
    char                  *sender;
    char                  *rcpt;
    char                  *orig;
    char                  *orcpt;
    char                  *envid;
    char                  *last_dsn;       /* from the record: the previous attempt */
    char                  *last_text;
    char                  *last_relay;
    uint32_t               reqid;          /* local, while in flight */
    int                    deleted;        /* postern queue delete: no DSN for it */
    const char            *sent_action;    /* once sent: the NOTIFY=SUCCESS DSN's action
                                            * ("delivered", "relayed") or NULL for none */
    struct qmgr_transport *tr;
    struct qmgr_destq     *dq;             /* relay jobs: the destination */
    struct qmgr_agent     *agent;          /* local, while in flight */
    struct qmgr_relay     *relay;          /* relay, while in flight */
    struct qmgr_job       *prev, *next;    /* a due queue or a local agent's list */
};

/* A queue of due jobs. */
struct qmgr_jobq {
    struct qmgr_job *head, *tail;
    size_t           n;
};

/* One IPC_RELAY in flight: one message, one destination, n recipients. */
struct qmgr_relay {
    uint32_t           reqid;
    char               qid[QID_SIZE];
    struct qmgr_destq *dq;
    struct qmgr_agent *agent;
    struct qmgr_job  **jobs;
    uint32_t           n;
    struct qmgr_relay *prev, *next;        /* the agent's list */
};

/* A delivery agent process. */
struct qmgr_agent {
    struct ipc_conn       *conn;
    uint32_t               id;
    struct qmgr_transport *tr;
    struct qmgr_job       *jobs;           /* local: in flight */
    struct qmgr_relay     *relays;         /* smtp: batches in flight */
    uint32_t               njobs;          /* jobs or batches in flight */
    struct qmgr_agent     *prev, *next;
};

/* A relay destination: transport + next hop + TLS level, its queue and window. */
struct qmgr_destq {
    char              *key;                /* "smtp nexthop tls", the table key */
    char              *transport;
    char              *nexthop;
    uint32_t           tls_level;
    struct qmgr_dest   st;
    uint32_t           inflight;           /* batches */
    struct qmgr_jobq   due;
    int                in_ring;
    struct qmgr_destq *rprev, *rnext;      /* the ring of destinations with due jobs */
    struct qmgr_destq *aprev, *anext;      /* every destination */
};

/* A transport: one kind of delivery agent and its window. Local has one due queue; relay
 * has destinations. */
struct qmgr_transport {
    const char            *name;           /* relay= in the logs */
    uint32_t               kind;           /* enum ipc_peer_kind of its agents */
    uint32_t               limit;          /* local: jobs in flight over all its agents */
    uint32_t               per_agent;      /* in flight per agent */
    uint32_t               inflight;
    struct qmgr_agent     *agents;
    struct qmgr_agent     *rr;             /* the next agent to use */
    struct qmgr_jobq       due;            /* local only */
    size_t                 ndue;           /* relay: due jobs over all destinations */
    struct qmgr_destq     *ring;           /* relay: destinations with due jobs */
    size_t                 nring;
};

/* A result waiting for the end-of-turn write. */
struct qmgr_sched_pending {
    struct qmgr_store_result r;
    struct qmgr_job         *job;
    char                    *dsn;
    char                    *text;
    char                    *remote;
    int                      expired;
};

static struct qmgr_transport      qmgr_sched_local = { "local", IPC_PEER_LOCAL, 10, UINT32_MAX,
                                                      0, NULL, NULL, { 0 }, 0, NULL, 0 };
static struct qmgr_transport      qmgr_sched_smtp = { "smtp", IPC_PEER_SMTP, UINT32_MAX, 200,
                                                     0, NULL, NULL, { 0 }, 0, NULL, 0 };
static struct qmgr_tab           *qmgr_sched_jobs;
static struct qmgr_tab           *qmgr_sched_dests;       /* key -> struct qmgr_destq */
static struct qmgr_destq         *qmgr_sched_alldq;
static int                        qmgr_sched_more;        /* the DB holds due work not loaded */
static uint64_t                   qmgr_sched_timer, qmgr_sched_timer_at, qmgr_sched_hk;
static uint32_t                   qmgr_sched_reqid;
static int                        qmgr_sched_dispatch_queued, qmgr_sched_flush_queued;
static struct qmgr_sched_pending *qmgr_sched_res;
static size_t                     qmgr_sched_nres, qmgr_sched_res_cap;
static int                        qmgr_sched_is_paused;   /* postern pause delivery */
static struct qmgr_sched_counters qmgr_sched_cnt;

static void qmgr_sched_kick(void);
static void qmgr_sched_scan(void);

/* qmgr_sched_q_push - append a job to a queue. */
static void
qmgr_sched_q_push(struct qmgr_jobq *q, struct qmgr_job *j)
{
    j->next = NULL;
    j->prev = q->tail;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
}

/* qmgr_sched_q_push_front - put a job at the head of a queue. */
static void
qmgr_sched_q_push_front(struct qmgr_jobq *q, struct qmgr_job *j)
{
    j->prev = NULL;
    j->next = q->head;
    if (q->head)
        q->head->prev = j;
    else
        q->tail = j;
    q->head = j;
    q->n++;
}

/* qmgr_sched_q_pop - take the first job of a queue. */
static struct qmgr_job *
qmgr_sched_q_pop(struct qmgr_jobq *q)
{
    struct qmgr_job *j = q->head;

    if (j == NULL)
        return NULL;
    q->head = j->next;
    if (q->head)
        q->head->prev = NULL;
    else
        q->tail = NULL;
    j->next = j->prev = NULL;
    q->n--;
    return j;
}

/* qmgr_sched_ring_add - a destination has due jobs: into the ring (at its end). */
static void
qmgr_sched_ring_add(struct qmgr_destq *d)
{
    struct qmgr_transport *t = &qmgr_sched_smtp;

    if (d->in_ring)
        return;
    d->in_ring = 1;
    if (t->ring == NULL) {
        d->rprev = d->rnext = d;
        t->ring = d;
    } else {
        d->rnext = t->ring;
        d->rprev = t->ring->rprev;
        t->ring->rprev->rnext = d;
        t->ring->rprev = d;
    }
    t->nring++;
}

/* qmgr_sched_ring_del - out of the ring. */
static void
qmgr_sched_ring_del(struct qmgr_destq *d)
{
    struct qmgr_transport *t = &qmgr_sched_smtp;

    if (!d->in_ring)
        return;
    d->in_ring = 0;
    if (d->rnext == d) {
        t->ring = NULL;
    } else {
        d->rprev->rnext = d->rnext;
        d->rnext->rprev = d->rprev;
        if (t->ring == d)
            t->ring = d->rnext;
    }
    d->rprev = d->rnext = NULL;
    t->nring--;
}

/* qmgr_sched_dq_get - the destination for a route, made on first use. */
static struct qmgr_destq *
qmgr_sched_dq_get(const struct qmgr_route *rt)
{
    struct qmgr_destq *d;
    char              *key = xasprintf("%s %s %u", rt->transport, rt->nexthop, rt->tls_level);

    if ((d = qmgr_tab_get(qmgr_sched_dests, key)) != NULL) {
        free(key);
        return d;
    }
    d = xcalloc(1, sizeof(*d));
    d->key = key;
    d->transport = xstrdup(rt->transport);
    d->nexthop = xstrdup(rt->nexthop);
    d->tls_level = rt->tls_level;
    qmgr_dest_init(&d->st, qmgr_params.dest_initial, qmgr_params.dest_limit);
    qmgr_tab_put(qmgr_sched_dests, d->key, d);
    d->anext = qmgr_sched_alldq;
    if (qmgr_sched_alldq)
        qmgr_sched_alldq->aprev = d;
    qmgr_sched_alldq = d;
    return d;
}

/* qmgr_sched_dq_free - forget a destination (it must hold no job). */
static void
qmgr_sched_dq_free(struct qmgr_destq *d)
{
    qmgr_sched_ring_del(d);
    qmgr_tab_del(qmgr_sched_dests, d->key);
    if (d->aprev)
        d->aprev->anext = d->anext;
    else
        qmgr_sched_alldq = d->anext;
    if (d->anext)
        d->anext->aprev = d->aprev;
    free(d->key);
    free(d->transport);
    free(d->nexthop);
    free(d);
}

/* qmgr_sched_enqueue - a due job onto its queue. */
static void
qmgr_sched_enqueue(struct qmgr_job *j, int front)
{
    struct qmgr_jobq *q = j->dq ? &j->dq->due : &j->tr->due;

    j->state = QMGR_JOB_DUE;
    if (front)
        qmgr_sched_q_push_front(q, j);
    else
        qmgr_sched_q_push(q, j);
    if (j->dq) {
        j->tr->ndue++;
        qmgr_sched_ring_add(j->dq);
    }
}

/* qmgr_sched_dequeue - take the first due job of a queue (relay: of a destination). */
static struct qmgr_job *
qmgr_sched_dequeue(struct qmgr_transport *t, struct qmgr_destq *d)
{
    struct qmgr_job *j = qmgr_sched_q_pop(d ? &d->due : &t->due);

    if (j != NULL && d != NULL)
        t->ndue--;
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
    free(j->orcpt);
    free(j->envid);
    free(j->last_dsn);
    free(j->last_text);
    free(j->last_relay);
    free(j);
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

/* qmgr_sched_gone - every recipient of a message is final: its records are gone (the
 * transaction has committed), so the body goes too, by the reaper, off the event loop. */
static void
qmgr_sched_gone(const char *qid, void *arg)
{
    (void)arg;
    qmgr_body_unlink_later(qid);
    log_info("%s: removed", qid);
}

/* qmgr_sched_dsn_check - does this result call for a notification to the sender? */
static void
qmgr_sched_dsn_check(struct qmgr_bounce_set *set, const struct qmgr_sched_pending *p,
                     uint64_t now, int *told_null)
{
    const struct qmgr_job *j = p->job;
    struct qmgr_dsn_rcpt   d;
    uint32_t               nt = j->notify;

    if (j->deleted)
        return;
    memset(&d, 0, sizeof(d));
    d.addr = j->rcpt;
    d.orcpt = j->orcpt;
    d.status = p->r.dsn;
    d.diag = p->r.text;
    d.remote_mta = p->remote ? p->remote : j->last_relay;
    d.last_attempt = p->r.attempted ? now : 0;
    switch (p->r.state) {
    case QREC_FAILED:
        if (j->sender[0] == '\0') {
            if (!*told_null)
                log_info("%s: to=<%s>, status=bounced, no bounce for <>", j->qid, j->rcpt);
            *told_null = 1;
            return;
        }
        if ((nt & IPC_NOTIFY_NEVER) || (nt != 0 && !(nt & IPC_NOTIFY_FAILURE)))
            return;
        d.action = "failed";
        break;
    case QREC_SENT:
        if (!(nt & IPC_NOTIFY_SUCCESS) || j->sent_action == NULL || j->sender[0] == '\0')
            return;
        d.action = j->sent_action;
        break;
    case QREC_DEFERRED:
        if (qmgr_params.delay_warning == 0 || j->sender[0] == '\0'
            || (j->flags & (QREC_F_WARNED | QREC_F_BOUNCE))
            || now < j->arrival_ms / 1000 + qmgr_params.delay_warning
            || (nt & IPC_NOTIFY_NEVER) || (nt != 0 && !(nt & IPC_NOTIFY_DELAY)))
            return;
        d.action = "delayed";
        d.retry_until = j->expiry;
        break;
    default:
        return;
    }
    qmgr_bounce_add(set, j->qid, &d);
}

/* qmgr_sched_flush - write the turn's results and their DSNs in one transaction, then
 * forget the jobs. */
void
qmgr_sched_flush(void)
{
    struct qmgr_sched_pending *res = qmgr_sched_res;
    struct qmgr_store_result  *v;
    struct qmgr_store_batch    b;
    struct qmgr_bounce_set    *set;
    size_t                     n = qmgr_sched_nres, i;
    uint64_t                   now = qmgr_wall_ms() / 1000;
    int                        rc, told_null = 0;
    const char                *last_qid = "";

    if (n == 0)
        return;
    qmgr_sched_res = NULL;
    qmgr_sched_nres = qmgr_sched_res_cap = 0;
    v = xcalloc(n, sizeof(*v));
    set = qmgr_bounce_set_new();
    for (i = 0; i < n; i++) {
        v[i] = res[i].r;
        if (strcmp(last_qid, res[i].r.qid) != 0)
            told_null = 0;
        last_qid = res[i].r.qid;
        qmgr_sched_dsn_check(set, &res[i], now, &told_null);
    }
    memset(&b, 0, sizeof(b));
    b.results = v;
    b.nresults = n;
    if (qmgr_bounce_prepare(set, &b) == -1)
        rc = -1;
    else
        rc = qmgr_store_apply_batch(qmgr_db, &b, qmgr_sched_gone, NULL);
    if (rc == -1) {
        /* The records still say due: a scan soon delivers them again (at-least-once). */
        log_warnx("could not record %zu delivery results; they will be retried", n);
        qmgr_sched_wake_at(now + 5);
    }
    qmgr_bounce_finish(&set, rc == 0);
    for (i = 0; i < n; i++) {
        if (rc == 0 && res[i].r.state == QREC_DEFERRED)
            qmgr_sched_wake_at(res[i].r.next_attempt);
        qmgr_sched_job_free(res[i].job);
        free(res[i].dsn);
        free(res[i].text);
        free(res[i].remote);
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
 * log it and queue the database write for the end of the turn. remote: the remote MTA of
 * the attempt or NULL; not_before: for a deferral, its next attempt (0: back-off). */
static void
qmgr_sched_result(struct qmgr_job *j, uint32_t state, const char *dsn, const char *text,
                  const char *relay, const char *remote, int attempted, uint64_t not_before)
{
    struct qmgr_sched_pending *p;
    uint64_t                   now_ms = qmgr_wall_ms(), now = now_ms / 1000;
    const char                *status;
    double                     delay;
    char                       orig[1100] = "";
    char                      *etext = NULL;

    if (state == QREC_DEFERRED && now >= j->expiry) {
        state = QREC_FAILED;
        status = "expired";
        /* The report names the last real problem, not just the clock. */
        if (!attempted && j->last_text[0] != '\0') {
            dsn = j->last_dsn[0] ? j->last_dsn : dsn;
            text = etext = xasprintf("delivery time expired; last error: %s", j->last_text);
        } else if (attempted) {
            text = etext = xasprintf("delivery time expired; last error: %s", text);
        } else {
            text = etext = xstrdup(text);
        }
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
    p->remote = remote != NULL && remote[0] != '\0' ? xstrdup(remote) : NULL;
    p->expired = etext != NULL;
    free(etext);
    memcpy(p->r.qid, j->qid, QID_SIZE);
    p->r.index = j->index;
    p->r.state = state;
    p->r.now = now;
    p->r.attempted = attempted;
    p->r.dsn = p->dsn;
    p->r.text = p->text;
    p->r.relay = p->remote;
    if (state == QREC_DEFERRED) {
        p->r.next_attempt = not_before
                            ? not_before
                            : now + qmgr_sched_backoff(j->attempts + (attempted ? 1 : 0));
        if (p->r.next_attempt > j->expiry)
            p->r.next_attempt = j->expiry;
    }
    j->state = QMGR_JOB_DONE;
    if (j->tr == &qmgr_sched_smtp) {
        qmgr_sched_cnt.smtp_sent += state == QREC_SENT;
        qmgr_sched_cnt.smtp_deferred += state == QREC_DEFERRED;
        qmgr_sched_cnt.smtp_bounced += state == QREC_FAILED;
    } else {
        qmgr_sched_cnt.local_sent += state == QREC_SENT;
        qmgr_sched_cnt.local_deferred += state == QREC_DEFERRED;
        qmgr_sched_cnt.local_bounced += state == QREC_FAILED;
    }
    qmgr_sched_cnt.expired += p->expired;

    delay = now_ms > j->arrival_ms ? (double)(now_ms - j->arrival_ms) / 1000.0 : 0.0;
    if (strcmp(j->orig, j->rcpt) != 0)
        snprintf(orig, sizeof(orig), ", orig_to=<%s>", j->orig);
    log_info("%s: to=<%s>%s, relay=%s, delay=%.*f, dsn=%s, status=%s (%s)", j->qid, j->rcpt,
             orig, relay, delay < 10 ? 2 : 1, delay, p->dsn, status, p->text);
    if (!qmgr_sched_flush_queued) {
        qmgr_sched_flush_queued = 1;
        ev_defer(qmgr_ev, qmgr_sched_flush_cb, NULL);
    }
}

/* qmgr_sched_job_new - a due job, routed, entered in the table and on its queue (or
 * deferred at once when it cannot go anywhere now). */
static struct qmgr_job *
qmgr_sched_job_new(const char *qid, uint32_t index, const struct qrec_msg *m,
                   const struct qrec_rcpt *r, uint64_t arrival_ms)
{
    struct qmgr_job  *j = xcalloc(1, sizeof(*j));
    struct qmgr_route rt;
    uint64_t          now = qmgr_wall_ms() / 1000;

    memcpy(j->qid, qid, QID_SIZE);
    j->index = index;
    snprintf(j->key, sizeof(j->key), "%s/%u", qid, index);
    j->state = QMGR_JOB_DUE;
    j->flags = m->flags;
    j->ret = m->ret;
    j->notify = r->notify;
    j->arrival_ms = arrival_ms;
    j->expiry = m->expiry;
    j->size = m->size;
    j->attempts = r->attempts;
    j->sender = xstrdup(m->sender ? m->sender : "");
    j->envid = xstrdup(m->envid ? m->envid : "");
    j->rcpt = xstrdup(r->addr);
    j->orig = xstrdup(r->orig && r->orig[0] ? r->orig : r->addr);
    j->orcpt = xstrdup(r->orcpt ? r->orcpt : "");
    j->last_dsn = xstrdup(r->dsn ? r->dsn : "");
    j->last_text = xstrdup(r->text ? r->text : "");
    j->last_relay = xstrdup(r->relay ? r->relay : "");
    qmgr_tab_put(qmgr_sched_jobs, j->key, j);
    j->tr = &qmgr_sched_local;
    if (qmgr_route_resolve(&qmgr_route, j->rcpt, &rt) == -1) {
        qmgr_sched_result(j, QREC_DEFERRED, "4.3.5", rt.error, "none", NULL, 1, 0);
        return j;
    }
    if (rt.kind == QMGR_ROUTE_LOCAL) {
        qmgr_sched_enqueue(j, 0);
        return j;
    }
    j->tr = &qmgr_sched_smtp;
    j->dq = qmgr_sched_dq_get(&rt);
    if (qmgr_dest_paused(&j->dq->st, now)) {
        qmgr_sched_result(j, QREC_DEFERRED, "4.4.1",
                          "destination paused after repeated connection failures",
                          j->dq->nexthop, NULL, 0, j->dq->st.paused_until);
        return j;
    }
    if (j->tr->agents == NULL && j->tr->ndue >= QMGR_SCHED_NOAGENT_MAX) {
        qmgr_sched_result(j, QREC_DEFERRED, "4.3.0", "no smtp delivery agent available",
                          "none", NULL, 0, now + qmgr_params.retry_min);
        return j;
    }
    qmgr_sched_enqueue(j, 0);
    return j;
}

/* qmgr_sched_agent_pick - the next agent of a transport with room, round-robin. */
static struct qmgr_agent *
qmgr_sched_agent_pick(struct qmgr_transport *t)
{
    struct qmgr_agent *a = t->rr ? t->rr : t->agents, *start = a;

    while (a != NULL) {
        struct qmgr_agent *next = a->next ? a->next : t->agents;

        if (a->njobs < t->per_agent) {
            t->rr = next;
            return a;
        }
        a = next;
        if (a == start)
            break;
    }
    return NULL;
}

/* qmgr_sched_agent_unlink_job - take an in-flight local job off its agent. */
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

/* qmgr_sched_send - hand one local job to an agent with a fresh read descriptor on the
 * body. 0: in flight; -1: the agent's connection is dead (the job is untouched). */
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

/* qmgr_sched_dispatch_local - start due local jobs while the window and agents allow. */
static void
qmgr_sched_dispatch_local(void)
{
    struct qmgr_transport *t = &qmgr_sched_local;
    struct qmgr_job       *j;
    uint64_t               now = qmgr_wall_ms() / 1000;

    while (t->inflight < t->limit && t->agents != NULL
           && (j = qmgr_sched_dequeue(t, NULL)) != NULL) {
        struct qmgr_agent *a;
        int                fd;

        if (now >= j->expiry) {
            /* A deferral at or past expiry is logged and recorded as expired (failed). */
            qmgr_sched_result(j, QREC_DEFERRED, "4.4.7", "delivery time expired", "none",
                              NULL, 0, 0);
            continue;
        }
        if ((fd = qmgr_body_open_read(j->qid)) == -1) {
            qmgr_sched_result(j, QREC_DEFERRED, "4.3.0", "queue file unavailable", "none",
                              NULL, 1, 0);
            continue;
        }
        a = qmgr_sched_agent_pick(t);
        if (a == NULL || qmgr_sched_send(a, j, fd) == -1) {
            close(fd);
            qmgr_sched_enqueue(j, 1);
            break;      /* a dead agent is reported from the loop and dropped then */
        }
        close(fd);
    }
}

/* qmgr_sched_relay_free - free a batch that is on no list (its jobs are elsewhere). */
static void
qmgr_sched_relay_free(struct qmgr_relay *r)
{
    free(r->jobs);
    free(r);
}

/* qmgr_sched_relay_unlink - take a batch off its agent and its destination's count. */
static void
qmgr_sched_relay_unlink(struct qmgr_relay *r)
{
    struct qmgr_agent *a = r->agent;

    if (r->prev)
        r->prev->next = r->next;
    else
        a->relays = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    a->njobs--;
    a->tr->inflight--;
    r->dq->inflight--;
}

/* qmgr_sched_send_relay - one batch from destination d to agent a: consecutive due jobs of
 * one message. 1: progress (sent, or jobs expired or deferred); 0: nothing due; -1: the
 * agent's connection is dead (the jobs are back on the queue). */
static int
qmgr_sched_send_relay(struct qmgr_destq *d, struct qmgr_agent *a, uint64_t now)
{
    struct qmgr_transport *t = &qmgr_sched_smtp;
    struct qmgr_job       *jobs[QMGR_SCHED_BATCH_MAX], *j;
    const char            *rcpts[QMGR_SCHED_BATCH_MAX], *orcpts[QMGR_SCHED_BATCH_MAX];
    uint32_t               idx[QMGR_SCHED_BATCH_MAX], notify[QMGR_SCHED_BATCH_MAX];
    struct ipc_relay       m;
    struct qmgr_relay     *r;
    uint32_t               n = 0, i;
    int                    fd, progress = 0;

    while (n < QMGR_SCHED_BATCH_MAX && (j = d->due.head) != NULL) {
        if (n > 0 && strcmp(j->qid, jobs[0]->qid) != 0)
            break;
        qmgr_sched_dequeue(t, d);
        if (now >= j->expiry) {
            qmgr_sched_result(j, QREC_DEFERRED, "4.4.7", "delivery time expired", "none",
                              NULL, 0, 0);
            progress = 1;
            continue;
        }
        jobs[n++] = j;
    }
    if (n == 0)
        return progress;
    if ((fd = qmgr_body_open_read(jobs[0]->qid)) == -1) {
        for (i = 0; i < n; i++)
            qmgr_sched_result(jobs[i], QREC_DEFERRED, "4.3.0", "queue file unavailable",
                              "none", NULL, 1, 0);
        return 1;
    }
    for (i = 0; i < n; i++) {
        rcpts[i] = jobs[i]->rcpt;
        orcpts[i] = jobs[i]->orcpt;
        idx[i] = jobs[i]->index;
        notify[i] = jobs[i]->notify;
    }
    j = jobs[0];
    if (++qmgr_sched_reqid == 0)
        qmgr_sched_reqid = 1;
    memset(&m, 0, sizeof(m));
    m.qid = j->qid;
    m.flags = j->flags & 0xffu;
    m.size = j->size;
    m.sender = j->sender;
    m.envid = j->envid;
    m.ret = j->ret;
    m.transport = d->transport;
    m.nexthop = d->nexthop;
    m.tls_level = d->tls_level;
    m.rcpts = rcpts;
    m.rcpts_n = n;
    m.rcpt_index = idx;
    m.rcpt_index_n = n;
    m.orcpts = orcpts;
    m.orcpts_n = n;
    m.notify = notify;
    m.notify_n = n;
    if (ipc_relay_send(a->conn, qmgr_sched_reqid, &m, fd) == -1) {
        close(fd);
        for (i = n; i-- > 0;)
            qmgr_sched_enqueue(jobs[i], 1);
        return -1;
    }
    close(fd);
    r = xcalloc(1, sizeof(*r));
    r->reqid = qmgr_sched_reqid;
    memcpy(r->qid, j->qid, QID_SIZE);
    r->dq = d;
    r->agent = a;
    r->n = n;
    r->jobs = xcalloc(n, sizeof(*r->jobs));
    for (i = 0; i < n; i++) {
        r->jobs[i] = jobs[i];
        jobs[i]->state = QMGR_JOB_INFLIGHT;
        jobs[i]->relay = r;
    }
    r->next = a->relays;
    if (a->relays)
        a->relays->prev = r;
    a->relays = r;
    a->njobs++;
    t->inflight++;
    d->inflight++;
    log_debug("%s: relay %s:%s nrcpt=%u agent=%u window=%u inflight=%u", j->qid,
              d->transport, d->nexthop, n, a->id, d->st.window, d->inflight);
    return 1;
}

/* qmgr_sched_dq_pause - a paused destination: its due recipients wait for the pause end. */
static void
qmgr_sched_dq_pause(struct qmgr_destq *d)
{
    struct qmgr_job *j;

    while ((j = qmgr_sched_dequeue(&qmgr_sched_smtp, d)) != NULL)
        qmgr_sched_result(j, QREC_DEFERRED, "4.4.1",
                          "destination paused after repeated connection failures", d->nexthop,
                          NULL, 0, d->st.paused_until);
    qmgr_sched_ring_del(d);
}

/* qmgr_sched_dispatch_relay - walk the ring of destinations, one batch each per pass,
 * while windows and agents allow. */
static void
qmgr_sched_dispatch_relay(void)
{
    struct qmgr_transport *t = &qmgr_sched_smtp;
    uint64_t               now = qmgr_wall_ms() / 1000;
    int                    progress;

    if (t->agents == NULL)
        return;
    do {
        struct qmgr_destq *d = t->ring;
        size_t             n = t->nring, i;

        progress = 0;
        for (i = 0; i < n && d != NULL && t->nring > 0; i++) {
            struct qmgr_destq *next = d->rnext;
            struct qmgr_agent *a;
            int                rc;

            if (d->due.n == 0) {
                qmgr_sched_ring_del(d);
            } else if (qmgr_dest_paused(&d->st, now)) {
                qmgr_sched_dq_pause(d);
            } else if (d->inflight < d->st.window) {
                if ((a = qmgr_sched_agent_pick(t)) == NULL)
                    return;         /* every agent is full */
                if ((rc = qmgr_sched_send_relay(d, a, now)) == -1)
                    return;         /* the dead agent is dropped from the loop */
                progress |= rc;
                if (d->due.n == 0)
                    qmgr_sched_ring_del(d);
            }
            d = t->nring > 0 ? (next->in_ring ? next : t->ring) : NULL;
        }
        if (t->ring != NULL)
            t->ring = t->ring->rnext;   /* the next pass starts one further on */
    } while (progress && t->nring > 0);
}

/* qmgr_sched_dispatch_cb - end of turn: start deliveries, load more work if memory allows. */
static void
qmgr_sched_dispatch_cb(void *arg)
{
    (void)arg;
    qmgr_sched_dispatch_queued = 0;
    if (qmgr_sched_more && qmgr_tab_count(qmgr_sched_jobs) < QMGR_SCHED_MEM_LOW)
        qmgr_sched_scan();
    if (qmgr_sched_is_paused)
        return;
    qmgr_sched_dispatch_local();
    qmgr_sched_dispatch_relay();
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

/* qmgr_sched_expire_q - fail the jobs of a queue whose lifetime is over (while they wait
 * for an agent, nothing else would). */
static void
qmgr_sched_expire_q(struct qmgr_transport *t, struct qmgr_destq *d, uint64_t now)
{
    struct qmgr_jobq *q = d ? &d->due : &t->due;
    struct qmgr_job  *j, *next;

    for (j = q->head; j != NULL; j = next) {
        next = j->next;
        if (now < j->expiry)
            continue;
        if (j->prev)
            j->prev->next = j->next;
        else
            q->head = j->next;
        if (j->next)
            j->next->prev = j->prev;
        else
            q->tail = j->prev;
        j->prev = j->next = NULL;
        q->n--;
        if (d != NULL)
            t->ndue--;
        qmgr_sched_result(j, QREC_DEFERRED, "4.4.7", "delivery time expired", "none", NULL,
                          0, 0);
    }
}

/* qmgr_sched_housekeep_cb - expire jobs waiting without agents; free idle destinations. */
static void
qmgr_sched_housekeep_cb(void *arg)
{
    struct qmgr_destq *d, *next;
    uint64_t           now = qmgr_wall_ms() / 1000;

    (void)arg;
    if (qmgr_sched_local.agents == NULL)
        qmgr_sched_expire_q(&qmgr_sched_local, NULL, now);
    for (d = qmgr_sched_alldq; d != NULL; d = next) {
        next = d->anext;
        if (qmgr_sched_smtp.agents == NULL)
            qmgr_sched_expire_q(&qmgr_sched_smtp, d, now);
        if (d->due.n == 0 && d->inflight == 0 && qmgr_dest_idle(&d->st, now))
            qmgr_sched_dq_free(d);
    }
    qmgr_sched_hk = ev_timer_add(qmgr_ev, QMGR_SCHED_HOUSEKEEP_MS, qmgr_sched_housekeep_cb,
                                 NULL);
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
        qmgr_sched_result(j, QREC_DEFERRED, "4.3.0", "delivery agent went away", t->name,
                          NULL, 1, 0);
    }
    while (a->relays != NULL) {
        struct qmgr_relay *r = a->relays;
        uint32_t           i;

        qmgr_sched_relay_unlink(r);
        for (i = 0; i < r->n; i++) {
            r->jobs[i]->relay = NULL;
            qmgr_sched_result(r->jobs[i], QREC_DEFERRED, "4.3.0", "delivery agent went away",
                              r->dq->nexthop, NULL, 1, 0);
        }
        qmgr_sched_relay_free(r);
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

/* qmgr_sched_delivered - a result from a local agent. */
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
        j->sent_action = "delivered";       /* final delivery here (RFC 3461 5.2.3) */
        break;
    case IPC_DELIV_PERM:
        state = QREC_FAILED;
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
                      : state == QREC_FAILED ? "5.0.0" : "4.0.0", d.text, a->tr->name, NULL,
                      1, 0);
    ipc_delivered_clear(&d);
    qmgr_sched_kick();
}

/* qmgr_sched_relay_action - the NOTIFY=SUCCESS action for a recipient an smtp agent
 * handed over (flags: IPC_RELAYED_*), as Postfix's smtp client decides. The next hop
 * announced DSN: none, NOTIFY went on with the RCPT and the next hop reports (RFC 3461
 * 5.2.1). It did not: the request stops here, so we say "relayed" (5.2.2); an LMTP server
 * is taken to deliver finally ("delivered") only when lmtp_assume_final says so, as some
 * LMTP servers are content filters that pass the mail on. */
static const char *
qmgr_sched_relay_action(const char *transport, uint32_t flags)
{
    if (flags & IPC_RELAYED_DSN)
        return NULL;
    if (strcmp(transport, "lmtp") == 0 && qmgr_params.lmtp_assume_final)
        return "delivered";
    return "relayed";
}

/* qmgr_sched_relayed - the results of one batch from an smtp agent. */
static void
qmgr_sched_relayed(struct qmgr_agent *a, const struct ipc_frame *f)
{
    struct ipc_relayed     d;
    struct qmgr_relay     *r;
    struct qmgr_destq     *dq;
    enum qmgr_dest_outcome outcome;
    uint64_t               now = qmgr_wall_ms() / 1000;
    uint32_t               i, k;
    char                   relay[600];

    if (ipc_relayed_dec(f, &d) == -1) {
        log_warnx("smtp agent %u: malformed relayed, dropping the agent", a->id);
        qmgr_sched_agent_drop(a, "sent a malformed frame");
        return;
    }
    for (r = a->relays; r != NULL && r->reqid != f->reqid; r = r->next)
        ;
    if (r == NULL || strncmp(d.qid, r->qid, QID_SIZE) != 0) {
        log_warnx("smtp agent %u: result for a batch it does not have (%.20s), ignored", a->id,
                  d.qid);
        ipc_relayed_clear(&d);
        return;
    }
    if (d.status_n != d.rcpt_index_n || d.dsn_n != d.rcpt_index_n
        || d.text_n != d.rcpt_index_n || d.flags_n != d.rcpt_index_n) {
        log_warnx("smtp agent %u: relayed with mismatched arrays, dropping the agent", a->id);
        ipc_relayed_clear(&d);
        qmgr_sched_agent_drop(a, "sent a malformed frame");
        return;
    }
    dq = r->dq;
    qmgr_sched_relay_unlink(r);
    outcome = qmgr_dest_classify(d.relay, d.status, d.dsn, d.text, d.rcpt_index_n);
    if (d.relay[0] != '\0')
        snprintf(relay, sizeof(relay), "%s%s%s", d.relay, d.tls[0] ? ", tls=" : "", d.tls);
    else
        snprintf(relay, sizeof(relay), "%s:%s", dq->transport, dq->nexthop);
    for (i = 0; i < r->n; i++) {
        struct qmgr_job *j = r->jobs[i];
        uint32_t         state;

        j->relay = NULL;
        for (k = 0; k < d.rcpt_index_n && d.rcpt_index[k] != j->index; k++)
            ;
        if (k == d.rcpt_index_n) {
            qmgr_sched_result(j, QREC_DEFERRED, "4.3.0", "no result from the smtp agent",
                              relay, NULL, 1, 0);
            continue;
        }
        state = d.status[k] == IPC_DELIV_OK ? QREC_SENT
                : d.status[k] == IPC_DELIV_PERM ? QREC_FAILED : QREC_DEFERRED;
        j->sent_action = qmgr_sched_relay_action(dq->transport, d.flags[k]);
        qmgr_sched_result(j, state, d.dsn[k][0] ? d.dsn[k] : state == QREC_SENT ? "2.0.0"
                          : state == QREC_FAILED ? "5.0.0" : "4.0.0", d.text[k], relay,
                          d.relay, 1, 0);
    }
    qmgr_sched_relay_free(r);
    if (qmgr_dest_feedback(&dq->st, outcome, now, qmgr_params.dest_pause)) {
        log_warnx("destination %s:%s paused for %llus after %u connection failures",
                  dq->transport, dq->nexthop, (unsigned long long)qmgr_params.dest_pause,
                  QMGR_DEST_PAUSE_AFTER);
        qmgr_sched_dq_pause(dq);
    }
    ipc_relayed_clear(&d);
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
    if (a->tr == &qmgr_sched_local && f->type == IPC_DELIVERED) {
        qmgr_sched_delivered(a, f);
        return;
    }
    if (a->tr == &qmgr_sched_smtp && f->type == IPC_RELAYED) {
        qmgr_sched_relayed(a, f);
        return;
    }
    log_warnx("%s agent %u: unexpected message type %u", a->tr->name, a->id, f->type);
    qmgr_sched_agent_drop(a, "sent an unexpected message");
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
    else if (kind == IPC_PEER_SMTP)
        t = &qmgr_sched_smtp;
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
    if (qmgr_sched_dests == NULL)
        qmgr_sched_dests = qmgr_tab_new();
    qmgr_sched_local.limit = qmgr_params.local_concurrency ? qmgr_params.local_concurrency : 1;
    qmgr_sched_smtp.per_agent = qmgr_params.agent_max ? qmgr_params.agent_max : 1;
    qmgr_sched_scan();
    qmgr_sched_hk = ev_timer_add(qmgr_ev, QMGR_SCHED_HOUSEKEEP_MS, qmgr_sched_housekeep_cb,
                                 NULL);
}

/* qmgr_sched_drop_all - forget a transport's agents, in-flight and due jobs (in flight
 * stays due in the database: the next qmgr delivers it again). */
static void
qmgr_sched_drop_all(struct qmgr_transport *t)
{
    struct qmgr_job *j;

    while (t->agents != NULL) {
        struct qmgr_agent *a = t->agents;

        while ((j = a->jobs) != NULL) {
            qmgr_sched_agent_unlink_job(j);
            qmgr_sched_job_free(j);
        }
        while (a->relays != NULL) {
            struct qmgr_relay *r = a->relays;
            uint32_t           i;

            qmgr_sched_relay_unlink(r);
            for (i = 0; i < r->n; i++)
                qmgr_sched_job_free(r->jobs[i]);
            qmgr_sched_relay_free(r);
        }
        t->agents = a->next;
        ipc_conn_free(&a->conn);
        free(a);
    }
    t->rr = NULL;
    while ((j = qmgr_sched_dequeue(t, NULL)) != NULL)
        qmgr_sched_job_free(j);
}

/* qmgr_sched_shutdown - write pending results, drop agents, free every job. */
void
qmgr_sched_shutdown(void)
{
    qmgr_sched_flush();
    qmgr_sched_drop_all(&qmgr_sched_local);
    qmgr_sched_drop_all(&qmgr_sched_smtp);
    while (qmgr_sched_alldq != NULL) {
        struct qmgr_destq *d = qmgr_sched_alldq;
        struct qmgr_job   *j;

        while ((j = qmgr_sched_dequeue(&qmgr_sched_smtp, d)) != NULL)
            qmgr_sched_job_free(j);
        qmgr_sched_dq_free(d);
    }
    qmgr_sched_flush();     /* results found while dropping, if any */
    ev_timer_del(qmgr_ev, qmgr_sched_timer);
    ev_timer_del(qmgr_ev, qmgr_sched_hk);
    qmgr_sched_timer = qmgr_sched_hk = 0;
    qmgr_tab_free(&qmgr_sched_jobs);
    qmgr_tab_free(&qmgr_sched_dests);
}

/* qmgr_sched_pause - postern pause|resume delivery. */
void
qmgr_sched_pause(int paused)
{
    qmgr_sched_is_paused = paused;
    if (!paused)
        qmgr_sched_kick();
}

/* qmgr_sched_paused - 1 while delivery is paused. */
int
qmgr_sched_paused(void)
{
    return qmgr_sched_is_paused;
}

/* qmgr_sched_job_get - the in-memory job of (qid, index), or NULL. */
static struct qmgr_job *
qmgr_sched_job_get(const char *qid, uint32_t index)
{
    char key[QMGR_SCHED_KEY_SIZE];

    if (qmgr_sched_jobs == NULL)
        return NULL;
    snprintf(key, sizeof(key), "%.*s/%u", QID_LEN, qid, index);
    return qmgr_tab_get(qmgr_sched_jobs, key);
}

/* qmgr_sched_job_state - 0 not in memory, 1 due, 2 in flight (or its result pending). */
int
qmgr_sched_job_state(const char *qid, uint32_t index)
{
    struct qmgr_job *j = qmgr_sched_job_get(qid, index);

    if (j == NULL)
        return 0;
    return j->state == QMGR_JOB_DUE ? 1 : 2;
}

/* qmgr_sched_forget - take qid's due jobs off their queues and free them. */
void
qmgr_sched_forget(const char *qid, uint32_t nrcpt, int deleted)
{
    for (uint32_t i = 0; i < nrcpt; i++) {
        struct qmgr_job  *j = qmgr_sched_job_get(qid, i);
        struct qmgr_jobq *q;

        if (j != NULL)
            j->deleted |= deleted;
        if (j == NULL || j->state != QMGR_JOB_DUE)
            continue;
        q = j->dq ? &j->dq->due : &j->tr->due;
        if (j->prev)
            j->prev->next = j->next;
        else
            q->head = j->next;
        if (j->next)
            j->next->prev = j->prev;
        else
            q->tail = j->prev;
        j->prev = j->next = NULL;
        q->n--;
        if (j->dq != NULL)
            j->tr->ndue--;
        qmgr_sched_job_free(j);
    }
}

/* qmgr_sched_set_expiry - postern queue expire: jobs in memory see the new lifetime. */
void
qmgr_sched_set_expiry(const char *qid, uint32_t nrcpt, uint64_t expiry)
{
    for (uint32_t i = 0; i < nrcpt; i++) {
        struct qmgr_job *j = qmgr_sched_job_get(qid, i);

        if (j != NULL)
            j->expiry = expiry;
    }
}

/* qmgr_sched_wake - work was made due now: scan at once. */
void
qmgr_sched_wake(void)
{
    qmgr_sched_wake_at(qmgr_wall_ms() / 1000);
}

/* qmgr_sched_get_counters - results so far and what is in memory now. */
void
qmgr_sched_get_counters(struct qmgr_sched_counters *c)
{
    *c = qmgr_sched_cnt;
    c->in_memory = qmgr_sched_jobs ? qmgr_tab_count(qmgr_sched_jobs) : 0;
    c->in_flight = qmgr_sched_local.inflight;
    for (struct qmgr_agent *a = qmgr_sched_smtp.agents; a != NULL; a = a->next)
        for (struct qmgr_relay *r = a->relays; r != NULL; r = r->next)
            c->in_flight += r->n;
}
