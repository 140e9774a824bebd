/* smtpd_anvil - smtpd's side of anvil: the limits, the exceptions, the checks in flight.
 *
 * See smtpd_anvil.h. anvil counts and we judge: each check sends IPC_ANVIL_REQ with a
 * fresh request id and waits for IPC_ANVIL_REPLY. anvil answers one connection's requests
 * in the order they came, so the checks in flight are a FIFO of (request id, session id,
 * event); a reply goes to the session only if it still exists and still waits for that
 * request (s->anvil_req), else it is dropped. Without anvil we fail open: a check is
 * allowed at once, and when the connection breaks (or master gives us a new one) every
 * check in flight is answered "allowed" from a deferred call on the loop, never from
 * inside smtpd_anvil_check(). s->anvil_counted holds the number of the connection the
 * session's CONNECT went to, so a DISCONNECT goes only to the anvil that counted the
 * session (a new anvil starts from zero). Sessions on public/submit are local users, not
 * network clients: they are always exempt. A refusal is logged once per session and
 * event, like Postfix's "Connection concurrency limit exceeded" warnings. The AUTH check
 * asks for the failures so far without counting: it refuses once they have reached the
 * limit (so a limit of 30 allows 30 failures per time unit), while the counted events
 * refuse when the count, this event included, is over the limit (the 51st connection of a
 * limit of 50). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ipc_msg.h"
#include "log.h"
#include "smtpd.h"
#include "smtpd_anvil.h"

/* A check in flight. */
struct smtpd_anvil_wait {
    uint32_t               reqid;
    uint32_t               sid;
    enum smtpd_anvil_event event;
};

/* A FIFO of checks in flight. */
struct smtpd_anvil_queue {
    struct smtpd_anvil_wait *v;
    size_t                   head, len, cap;
};

/* A session that was refused: which events were logged already. */
struct smtpd_anvil_noted {
    uint32_t sid;
    unsigned events;                    /* 1 << enum smtpd_anvil_event */
};

static struct {
    struct ipc_conn          *conn;     /* NULL: no anvil, everything is allowed */
    int                       gen;      /* number of the current connection, from 1 */
    int                       outage_logged;
    long long                 count_limit;
    long long                 conn_rate_limit;
    long long                 msg_rate_limit;
    long long                 rcpt_rate_limit;
    long long                 auth_rate_limit;
    struct cidr              *exc;
    size_t                    nexc;
    uint32_t                  next_reqid;
    struct smtpd_anvil_queue  waits;    /* on conn, in the order sent */
    struct smtpd_anvil_queue  released; /* of a lost connection: allowed on the loop */
    int                       release_deferred;
    struct smtpd_anvil_noted *noted;
    size_t                    nnoted, noted_cap;
} sa;

/* smtpd_anvil_push - append a check to q. */
static void
smtpd_anvil_push(struct smtpd_anvil_queue *q, const struct smtpd_anvil_wait *w)
{
    if (q->head + q->len == q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, q->len * sizeof(*q->v));
            q->head = 0;
        } else {
            q->cap = q->cap ? q->cap * 2 : 64;
            q->v = xrealloc(q->v, q->cap * sizeof(*q->v));
        }
    }
    q->v[q->head + q->len++] = *w;
}

/* smtpd_anvil_pop - take the oldest check of q; -1 if it is empty. */
static int
smtpd_anvil_pop(struct smtpd_anvil_queue *q, struct smtpd_anvil_wait *w)
{
    if (q->len == 0)
        return -1;
    *w = q->v[q->head++];
    if (--q->len == 0)
        q->head = 0;
    return 0;
}

/* smtpd_anvil_limit - the limit that applies to an event; 0: none. */
static long long
smtpd_anvil_limit(enum smtpd_anvil_event event)
{
    switch (event) {
    case SMTPD_ANVIL_CONNECT:
        /* either limit needs the count: the session is counted if one is set */
        return sa.count_limit > 0 ? sa.count_limit : sa.conn_rate_limit;
    case SMTPD_ANVIL_MAIL:
        return sa.msg_rate_limit;
    case SMTPD_ANVIL_RCPT:
        return sa.rcpt_rate_limit;
    case SMTPD_ANVIL_AUTH:
        return sa.auth_rate_limit;
    }
    return 0;
}

/* smtpd_anvil_ipc_event - what anvil is asked for an event. */
static uint32_t
smtpd_anvil_ipc_event(enum smtpd_anvil_event event)
{
    switch (event) {
    case SMTPD_ANVIL_CONNECT:
        return IPC_ANVIL_CONNECT;
    case SMTPD_ANVIL_MAIL:
        return IPC_ANVIL_MAIL;
    case SMTPD_ANVIL_RCPT:
        return IPC_ANVIL_RCPT;
    case SMTPD_ANVIL_AUTH:
        return IPC_ANVIL_AUTH_QUERY;
    }
    return 0;
}

/* smtpd_anvil_first_note - 1 the first time a session is refused for event (log it), 0
 * after that. */
static int
smtpd_anvil_first_note(uint32_t sid, enum smtpd_anvil_event event)
{
    unsigned bit = 1u << event;

    for (size_t i = 0; i < sa.nnoted; i++) {
        if (sa.noted[i].sid != sid)
            continue;
        if (sa.noted[i].events & bit)
            return 0;
        sa.noted[i].events |= bit;
        return 1;
    }
    if (sa.nnoted == sa.noted_cap) {
        sa.noted_cap = sa.noted_cap ? sa.noted_cap * 2 : 16;
        sa.noted = xrealloc(sa.noted, sa.noted_cap * sizeof(*sa.noted));
    }
    sa.noted[sa.nnoted].sid = sid;
    sa.noted[sa.nnoted++].events = bit;
    return 1;
}

/* smtpd_anvil_forget_note - the session ends: its notes go. */
static void
smtpd_anvil_forget_note(uint32_t sid)
{
    for (size_t i = 0; i < sa.nnoted; i++) {
        if (sa.noted[i].sid == sid) {
            sa.noted[i] = sa.noted[--sa.nnoted];
            return;
        }
    }
}

/* smtpd_anvil_take - the session waited for reqid: its callback, now no longer pending;
 * NULL if it is gone or waits for something else. */
static smtpd_anvil_cb
smtpd_anvil_take(struct smtpd_session *s, uint32_t reqid)
{
    smtpd_anvil_cb cb;

    if (s == NULL || s->dead || s->anvil_req == 0 || s->anvil_req != reqid)
        return NULL;
    cb = s->anvil_cb;
    s->anvil_req = 0;
    s->anvil_cb = NULL;
    return cb;
}

/* smtpd_anvil_release - deferred: every check of a lost connection is allowed. */
static void
smtpd_anvil_release(void *arg)
{
    struct smtpd_anvil_queue q = sa.released;
    struct smtpd_anvil_wait  w;

    (void)arg;
    /* callbacks may start new checks: they see an empty list */
    memset(&sa.released, 0, sizeof(sa.released));
    sa.release_deferred = 0;
    while (smtpd_anvil_pop(&q, &w) == 0) {
        struct smtpd_session *s = smtpd_session_find(w.sid);
        smtpd_anvil_cb        cb = smtpd_anvil_take(s, w.reqid);

        if (cb != NULL)
            cb(s, 1, 0, "", "");
    }
    free(q.v);
}

/* smtpd_anvil_close - drop the connection; its checks in flight are allowed on the loop. */
static void
smtpd_anvil_close(void)
{
    struct smtpd_anvil_wait w;

    while (smtpd_anvil_pop(&sa.waits, &w) == 0)
        smtpd_anvil_push(&sa.released, &w);
    if (sa.released.len > 0 && !sa.release_deferred) {
        sa.release_deferred = 1;
        ev_defer(smtpd.ev, smtpd_anvil_release, NULL);
    }
    ipc_conn_free(&sa.conn);
}

/* smtpd_anvil_outage - say once per outage that limits are not enforced (a warning, except
 * before the first anvil: a session may well come before master's socket does). */
static void
smtpd_anvil_outage(const char *why)
{
    if (sa.outage_logged)
        return;
    sa.outage_logged = 1;
    if (sa.gen == 0)
        log_info("anvil %s: client limits are not enforced until anvil is there", why);
    else
        log_warnx("anvil %s: client limits are not enforced until anvil is back", why);
}

/* smtpd_anvil_refuse - log the refusal (once per session and event), then tell the
 * session. */
static void
smtpd_anvil_refuse(struct smtpd_session *s, enum smtpd_anvil_event event, smtpd_anvil_cb cb,
                   const char *what, uint32_t count, long long limit)
{
    static const struct {
        int         code;
        const char *enh;
        const char *fmt;
    } r[] = {
        [SMTPD_ANVIL_CONNECT] = { 421, "4.7.0", "Error: too many connections from %s" },
        [SMTPD_ANVIL_MAIL] = { 450, "4.7.1", "Error: too much mail from %s" },
        [SMTPD_ANVIL_RCPT] = { 450, "4.7.1", "Error: too many recipients from %s" },
        [SMTPD_ANVIL_AUTH] = { 421, "4.7.0", "Error: too many AUTH failures from %s" },
    };
    char text[160];

    if (smtpd_anvil_first_note(s->id, event))
        log_info("%s limit exceeded: %u from %s[%s] for service %s, limit=%lld", what, count,
                 s->client_name[0] ? s->client_name : "unknown", s->addr, s->service, limit);
    snprintf(text, sizeof(text), r[event].fmt, s->addr);
    cb(s, 0, r[event].code, r[event].enh, text);
}

/* smtpd_anvil_verdict - compare anvil's counts with the limits and tell the session. */
static void
smtpd_anvil_verdict(struct smtpd_session *s, enum smtpd_anvil_event event,
                    const struct ipc_anvil_reply *m, smtpd_anvil_cb cb)
{
    switch (event) {
    case SMTPD_ANVIL_CONNECT:
        if (sa.count_limit > 0 && m->concurrent > (uint64_t)sa.count_limit) {
            smtpd_anvil_refuse(s, event, cb, "Connection concurrency", m->concurrent,
                               sa.count_limit);
            return;
        }
        if (sa.conn_rate_limit > 0 && m->rate > (uint64_t)sa.conn_rate_limit) {
            smtpd_anvil_refuse(s, event, cb, "Connection rate", m->rate, sa.conn_rate_limit);
            return;
        }
        break;
    case SMTPD_ANVIL_MAIL:
        if (m->rate > (uint64_t)sa.msg_rate_limit) {
            smtpd_anvil_refuse(s, event, cb, "Message delivery request rate", m->rate,
                               sa.msg_rate_limit);
            return;
        }
        break;
    case SMTPD_ANVIL_RCPT:
        if (m->rate > (uint64_t)sa.rcpt_rate_limit) {
            smtpd_anvil_refuse(s, event, cb, "Recipient address rate", m->rate,
                               sa.rcpt_rate_limit);
            return;
        }
        break;
    case SMTPD_ANVIL_AUTH:
        /* the failures so far, not counting this AUTH: the limit itself is too many */
        if (m->rate >= (uint64_t)sa.auth_rate_limit) {
            smtpd_anvil_refuse(s, event, cb, "AUTH failure rate", m->rate,
                               sa.auth_rate_limit);
            return;
        }
        break;
    }
    cb(s, 1, 0, "", "");
}

/* smtpd_anvil_reply - anvil's answer to the oldest check in flight. */
static void
smtpd_anvil_reply(const struct ipc_frame *f)
{
    struct ipc_anvil_reply  m;
    struct smtpd_anvil_wait w;
    struct smtpd_session   *s;
    smtpd_anvil_cb          cb;

    if (f->type != IPC_ANVIL_REPLY || f->fd >= 0 || ipc_anvil_reply_dec(f, &m) == -1 ||
        sa.waits.len == 0 || sa.waits.v[sa.waits.head].reqid != f->reqid ||
        m.event != smtpd_anvil_ipc_event(sa.waits.v[sa.waits.head].event)) {
        /* a bug in anvil must not cost our sessions: go on without it */
        log_warnx("anvil: unexpected %s reqid=%u: connection dropped", ipc_type_name(f->type),
                  f->reqid);
        smtpd_anvil_outage("answered out of turn");
        smtpd_anvil_close();
        return;
    }
    (void)smtpd_anvil_pop(&sa.waits, &w);
    s = smtpd_session_find(w.sid);
    if ((cb = smtpd_anvil_take(s, w.reqid)) == NULL)
        return;                         /* the session left, or gave up on this check */
    smtpd_anvil_verdict(s, w.event, &m, cb);
}

/* smtpd_anvil_frame - frames from anvil, or the end of the connection. */
static void
smtpd_anvil_frame(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    (void)arg;
    if (f != NULL && f->fd >= 0)
        close(f->fd);
    if (c != sa.conn)
        return;                         /* replaced meanwhile */
    if (f == NULL) {
        smtpd_anvil_outage("connection lost");
        smtpd_anvil_close();
        return;
    }
    smtpd_anvil_reply(f);
}

/* smtpd_anvil_add_net - append one network to the exceptions. */
static void
smtpd_anvil_add_net(const struct cidr *net)
{
    sa.exc = xrealloc(sa.exc, (sa.nexc + 1) * sizeof(*sa.exc));
    sa.exc[sa.nexc++] = *net;
}

int
smtpd_anvil_init(char *err, size_t errlen)
{
    char *const *items;
    size_t       n;

    sa.count_limit = config_int(smtpd.cfg, "smtpd_client_connection_count_limit");
    sa.conn_rate_limit = config_int(smtpd.cfg, "smtpd_client_connection_rate_limit");
    sa.msg_rate_limit = config_int(smtpd.cfg, "smtpd_client_message_rate_limit");
    sa.rcpt_rate_limit = config_int(smtpd.cfg, "smtpd_client_recipient_rate_limit");
    sa.auth_rate_limit = config_int(smtpd.cfg, "smtpd_client_auth_failure_rate_limit");
    items = config_list(smtpd.cfg, "smtpd_client_limit_exceptions", &n);
    for (size_t i = 0; i < n; i++) {
        struct cidr net;

        if (strcasecmp(items[i], "mynetworks") == 0) {
            for (size_t j = 0; j < smtpd.nmynetworks; j++)
                smtpd_anvil_add_net(&smtpd.mynetworks[j]);
        } else if (cidr_parse(items[i], &net) == 0) {
            smtpd_anvil_add_net(&net);
        } else {
            snprintf(err, errlen, "smtpd_client_limit_exceptions: \"%s\" is not a network "
                     "(address/prefix, host bits zero) or mynetworks", items[i]);
            return -1;
        }
    }
    log_debug("client limits: connections=%lld connection_rate=%lld message_rate=%lld "
              "recipient_rate=%lld auth_failure_rate=%lld exceptions=%zu", sa.count_limit,
              sa.conn_rate_limit, sa.msg_rate_limit, sa.rcpt_rate_limit, sa.auth_rate_limit,
              sa.nexc);
    return 0;
}

void
smtpd_anvil_free(void)
{
    ipc_conn_free(&sa.conn);
    free(sa.waits.v);
    free(sa.released.v);
    free(sa.noted);
    free(sa.exc);
    memset(&sa, 0, sizeof(sa));
}

void
smtpd_anvil_peer(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (sa.conn != NULL) {
        log_info("anvil connection replaced: client counts start again");
        smtpd_anvil_close();
    } else if (sa.outage_logged) {
        log_info("anvil connected: client limits are enforced%s", sa.gen ? " again" : "");
    }
    if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
        log_warn("anvil socket: fcntl");
    sa.conn = ipc_conn_new(smtpd.ev, fd, smtpd_anvil_frame, NULL);
    sa.gen = sa.gen == 0x7fffffff ? 1 : sa.gen + 1;
    sa.outage_logged = 0;
    log_debug("anvil connected, connection %d", sa.gen);
}

int
smtpd_anvil_exempt(const struct smtpd_session *s)
{
    return s->svc == SMTPD_SVC_SUBMIT || cidr_match_list(sa.exc, sa.nexc, s->addr);
}

int
smtpd_anvil_check(struct smtpd_session *s, enum smtpd_anvil_event event, smtpd_anvil_cb cb)
{
    struct ipc_anvil_req    req;
    struct smtpd_anvil_wait w;

    if (smtpd_anvil_limit(event) <= 0 || smtpd_anvil_exempt(s))
        return 1;
    if (s->anvil_req != 0) {
        log_warnx("[%s]: an anvil check is already pending: allowed", s->addr);
        return 1;
    }
    if (sa.conn == NULL) {
        smtpd_anvil_outage(sa.gen == 0 ? "not connected yet" : "not connected");
        return 1;
    }
    if (++sa.next_reqid == 0)
        sa.next_reqid = 1;
    req.event = smtpd_anvil_ipc_event(event);
    req.client = s->addr;
    if (ipc_anvil_req_send(sa.conn, sa.next_reqid, &req, -1) == -1) {
        /* dead (the loop tells us soon) or not reading: do not wait for it */
        smtpd_anvil_outage("does not take requests");
        return 1;
    }
    w.reqid = sa.next_reqid;
    w.sid = s->id;
    w.event = event;
    smtpd_anvil_push(&sa.waits, &w);
    s->anvil_req = w.reqid;
    s->anvil_cb = cb;
    if (event == SMTPD_ANVIL_CONNECT)
        s->anvil_counted = sa.gen;
    return 0;
}

void
smtpd_anvil_auth_failed(struct smtpd_session *s)
{
    struct ipc_anvil_req req;

    if (sa.auth_rate_limit <= 0 || sa.conn == NULL || smtpd_anvil_exempt(s))
        return;
    req.event = IPC_ANVIL_AUTH_FAIL;
    req.client = s->addr;
    if (ipc_anvil_req_send(sa.conn, 0, &req, -1) == -1)
        smtpd_anvil_outage("does not take requests");
}

void
smtpd_anvil_disconnect(struct smtpd_session *s)
{
    s->anvil_req = 0;                   /* a pending answer is dropped when it comes */
    s->anvil_cb = NULL;
    if (s->anvil_counted != 0 && s->anvil_counted == sa.gen && sa.conn != NULL) {
        struct ipc_anvil_req req = { .event = IPC_ANVIL_DISCONNECT, .client = s->addr };

        if (ipc_anvil_req_send(sa.conn, 0, &req, -1) == -1)
            smtpd_anvil_outage("does not take requests");
    }
    s->anvil_counted = 0;
    smtpd_anvil_forget_note(s->id);
}
