/* qmgr_smtpd - messages coming in: OPEN, COMMIT and ABORT from smtpd, group commit.
 *
 * See qmgr_smtpd.h. State: the list of smtpd peers; a table of opened-but-uncommitted
 * bodies by queue ID (each on its owner's list, holding qmgr's own write descriptor); and
 * the batch of validated commits waiting for the end of the turn, each still holding that
 * descriptor. A batch entry belongs to its smtpd until the batch is written: if that smtpd
 * goes away first, the entry is dropped and its body unlinked (the client never got 250).
 *
 * Durability of the bodies, at the end of the turn, before the records: one syncfs of the
 * queue filesystem for the whole batch (qmgr_body_group_sync: data and directory entries
 * of every body). Per-file path, used when group sync is off (kernel < 5.8), when syncfs
 * fails, or for a body marked "solo": fdatasync through qmgr's descriptor, then one fsync
 * per body/XX directory (qmgr_body_sync_dirs). A failed syncfs may have consumed a
 * writeback error of a body that is still being written, so every body open at that moment
 * is marked solo and synced by itself at its commit: its own fdatasync still reports it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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
#include "qmgr_smtpd.h"
#include "qmgr_store.h"
#include "qmgr_tab.h"

#define QMGR_SMTPD_MAX_STR   1000      /* bytes per envelope string */

struct qmgr_smtpd_open;

/* One smtpd process. */
struct qmgr_smtpd {
    struct ipc_conn        *conn;
    uint32_t                id;
    uint32_t                nopen;
    struct qmgr_smtpd_open *opens;      /* bodies opened for it, not committed */
    struct qmgr_smtpd      *prev, *next;
};

/* A body opened for an smtpd and not yet committed. */
struct qmgr_smtpd_open {
    char                    qid[QID_SIZE];
    int                     fd;         /* qmgr's write descriptor, for fdatasync */
    int                     solo;       /* sync it by itself: a group sync failed meanwhile */
    struct qmgr_smtpd      *owner;
    struct qmgr_smtpd_open *prev, *next;
};

/* A validated commit waiting for the batch transaction. */
struct qmgr_smtpd_pending {
    struct qmgr_store_new   rec;        /* strings owned */
    struct qmgr_smtpd      *owner;
    uint32_t                reqid;
    uint64_t                arrival_ms;
    int                     fd;         /* qmgr's write descriptor, until the batch is done */
    int                     solo;       /* data already fdatasync'd: its directory still due */
};

uint64_t qmgr_smtpd_received;           /* messages committed since start */
uint64_t qmgr_smtpd_received_bytes;
uint64_t qmgr_smtpd_body_fdatasyncs;    /* bodies synced one by one (per-file path) */

static struct qmgr_smtpd          *qmgr_smtpd_list;
static struct qmgr_tab            *qmgr_smtpd_opens;     /* qid -> struct qmgr_smtpd_open */
static struct qmgr_smtpd_pending **qmgr_smtpd_batch;
static size_t                      qmgr_smtpd_nbatch, qmgr_smtpd_batch_cap;
static int                         qmgr_smtpd_flush_queued;

static void qmgr_smtpd_frame(struct ipc_conn *, const struct ipc_frame *, void *);

/* qmgr_smtpd_add - take over a new smtpd socket. */
void
qmgr_smtpd_add(int fd, uint32_t id)
{
    struct qmgr_smtpd *p = xcalloc(1, sizeof(*p));
    int                fl = fcntl(fd, F_GETFL);

    if (fl != -1)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (qmgr_smtpd_opens == NULL)
        qmgr_smtpd_opens = qmgr_tab_new();
    p->id = id;
    p->conn = ipc_conn_new(qmgr_ev, fd, qmgr_smtpd_frame, p);
    p->next = qmgr_smtpd_list;
    if (qmgr_smtpd_list)
        qmgr_smtpd_list->prev = p;
    qmgr_smtpd_list = p;
    log_debug("smtpd %u connected", id);
}

/* qmgr_smtpd_open_free - forget an open body; unlink it too if asked. */
static void
qmgr_smtpd_open_free(struct qmgr_smtpd_open *o, int unlink_body)
{
    struct qmgr_smtpd *p = o->owner;

    qmgr_tab_del(qmgr_smtpd_opens, o->qid);
    if (o->prev)
        o->prev->next = o->next;
    else
        p->opens = o->next;
    if (o->next)
        o->next->prev = o->prev;
    p->nopen--;
    if (o->fd != -1)
        close(o->fd);
    if (unlink_body)
        qmgr_body_unlink(o->qid);
    free(o);
}

/* qmgr_smtpd_pending_free - free a batch entry and its strings. */
static void
qmgr_smtpd_pending_free(struct qmgr_smtpd_pending *e)
{
    struct qrec_msg *m = &e->rec.msg;
    uint32_t         i;

    if (e->fd != -1)
        close(e->fd);
    for (i = 0; i < m->nrcpt; i++) {
        free(e->rec.rcpts[i].addr);
        free(e->rec.rcpts[i].orig);
        free(e->rec.rcpts[i].orcpt);
        free(e->rec.rcpts[i].domain);
    }
    free(e->rec.rcpts);
    free(m->sender);
    free(m->envid);
    free(m->client_addr);
    free(m->client_name);
    free(m->helo);
    free(m->protocol);
    free(m->auth_user);
    free(e);
}

/* qmgr_smtpd_drop - an smtpd went away (or misbehaved): unlink what it left uncommitted. */
static void
qmgr_smtpd_drop(struct qmgr_smtpd *p)
{
    size_t i;

    while (p->opens != NULL) {
        log_info("%s: removed, smtpd %u gone before commit", p->opens->qid, p->id);
        qmgr_smtpd_open_free(p->opens, 1);
    }
    for (i = 0; i < qmgr_smtpd_nbatch; i++) {
        struct qmgr_smtpd_pending *e = qmgr_smtpd_batch[i];

        if (e == NULL || e->owner != p)
            continue;
        log_info("%s: removed, smtpd %u gone before commit", e->rec.qid, p->id);
        qmgr_body_unlink(e->rec.qid);
        qmgr_smtpd_pending_free(e);
        qmgr_smtpd_batch[i] = NULL;
    }
    if (p->prev)
        p->prev->next = p->next;
    else
        qmgr_smtpd_list = p->next;
    if (p->next)
        p->next->prev = p->prev;
    ipc_conn_free(&p->conn);
    log_debug("smtpd %u disconnected", p->id);
    free(p);
}

/* qmgr_smtpd_send_queued - answer a commit. */
static void
qmgr_smtpd_send_queued(struct qmgr_smtpd *p, uint32_t reqid, uint32_t status, const char *qid,
                       const char *text)
{
    struct ipc_msg_queued q;

    q.status = status;
    q.qid = qid;
    q.text = text;
    if (ipc_msg_queued_send(p->conn, reqid, &q, -1) == -1)
        log_warnx("%s: could not answer smtpd %u", qid, p->id);
}

/* qmgr_smtpd_do_open - MSG_OPEN: create the spool file, send its write descriptor. */
static void
qmgr_smtpd_do_open(struct qmgr_smtpd *p, const struct ipc_frame *f)
{
    struct ipc_msg_open     req;
    struct ipc_msg_opened   ans;
    struct qmgr_smtpd_open *o;
    char                    qid[QID_SIZE];
    int                     fd;

    if (ipc_msg_open_dec(f, &req) == -1) {
        log_warnx("smtpd %u: malformed msg_open, dropping the peer", p->id);
        qmgr_smtpd_drop(p);
        return;
    }
    ans.qid = "";
    if (p->nopen >= qmgr_params.max_open) {
        log_warnx("smtpd %u: too many open messages (%u)", p->id, p->nopen);
        ans.status = EMFILE;
        ipc_msg_opened_send(p->conn, f->reqid, &ans, -1);
        return;
    }
    qid_new(qid);
    if ((fd = qmgr_body_create(qid)) == -1) {
        ans.status = errno ? (uint32_t)errno : EIO;
        ipc_msg_opened_send(p->conn, f->reqid, &ans, -1);
        return;
    }
    o = xcalloc(1, sizeof(*o));
    memcpy(o->qid, qid, QID_SIZE);
    o->fd = fd;
    o->owner = p;
    o->next = p->opens;
    if (p->opens)
        p->opens->prev = o;
    p->opens = o;
    p->nopen++;
    qmgr_tab_put(qmgr_smtpd_opens, o->qid, o);
    ans.status = 0;
    ans.qid = o->qid;
    /* ipc keeps its own copy of the descriptor until the frame is written. */
    if (ipc_msg_opened_send(p->conn, f->reqid, &ans, fd) == -1)
        qmgr_smtpd_open_free(o, 1);
    else
        log_debug("%s: opened for smtpd %u client=%s", qid, p->id, req.client_addr);
    ipc_msg_open_clear(&req);
}

/* qmgr_smtpd_str_ok - an envelope string is within bounds. */
static int
qmgr_smtpd_str_ok(const char *s)
{
    return s != NULL && strlen(s) <= QMGR_SMTPD_MAX_STR;
}

/* qmgr_smtpd_check - validate a commit's envelope; NULL or the reason. */
static const char *
qmgr_smtpd_check(const struct ipc_msg_commit *c)
{
    uint32_t i;

    if (c->rcpts_n == 0)
        return "no recipients";
    if (c->rcpts_n > qmgr_params.rcpt_limit)
        return "too many recipients";
    if ((c->orcpts_n != 0 && c->orcpts_n != c->rcpts_n)
        || (c->notify_n != 0 && c->notify_n != c->rcpts_n))
        return "recipient parameter counts do not match";
    if (!qmgr_smtpd_str_ok(c->sender) || !qmgr_smtpd_str_ok(c->client_addr)
        || !qmgr_smtpd_str_ok(c->client_name) || !qmgr_smtpd_str_ok(c->helo)
        || !qmgr_smtpd_str_ok(c->protocol) || !qmgr_smtpd_str_ok(c->auth_user)
        || !qmgr_smtpd_str_ok(c->envid))
        return "envelope field too long";
    if (c->ret > 2)
        return "bad RET";
    for (i = 0; i < c->rcpts_n; i++) {
        if (c->rcpts[i][0] == '\0' || !qmgr_smtpd_str_ok(c->rcpts[i]))
            return "bad recipient";
        if (c->orcpts_n && !qmgr_smtpd_str_ok(c->orcpts[i]))
            return "bad ORCPT";
    }
    return NULL;
}

_Static_assert(IPC_F_SMTPUTF8 == QREC_F_SMTPUTF8 && IPC_F_8BITMIME == QREC_F_8BITMIME
               && IPC_F_HOLD == QREC_F_HOLD, "commit flags are stored as they come");

/* qmgr_smtpd_pending_new - copy a validated commit into a batch entry. */
static struct qmgr_smtpd_pending *
qmgr_smtpd_pending_new(const struct ipc_msg_commit *c, uint64_t now_ms)
{
    struct qmgr_smtpd_pending *e = xcalloc(1, sizeof(*e));
    struct qrec_msg           *m = &e->rec.msg;
    uint64_t                   now = now_ms / 1000;
    uint32_t                   i;
    char                       dom[256];

    memcpy(e->rec.qid, c->qid, QID_SIZE);
    e->fd = -1;
    e->arrival_ms = now_ms;
    m->arrival = now;
    m->expiry = now + qmgr_params.lifetime;
    m->size = c->size;
    m->flags = c->flags & (QREC_F_SMTPUTF8 | QREC_F_8BITMIME | QREC_F_HOLD);
    m->ret = c->ret;
    m->nrcpt = c->rcpts_n;
    m->sender = xstrdup(c->sender);
    m->envid = xstrdup(c->envid);
    m->client_addr = xstrdup(c->client_addr);
    m->client_name = xstrdup(c->client_name);
    m->helo = xstrdup(c->helo);
    m->protocol = xstrdup(c->protocol);
    m->auth_user = xstrdup(c->auth_user);
    e->rec.rcpts = xcalloc(c->rcpts_n, sizeof(*e->rec.rcpts));
    for (i = 0; i < c->rcpts_n; i++) {
        struct qrec_rcpt *r = &e->rec.rcpts[i];

        r->state = QREC_QUEUED;
        r->notify = c->notify_n ? c->notify[i] : 0;
        r->next_attempt = now;
        r->addr = xstrdup(c->rcpts[i]);
        r->orig = xstrdup(c->rcpts[i]);
        r->orcpt = xstrdup(c->orcpts_n ? c->orcpts[i] : "");
        qrec_domain_of(r->addr, dom, sizeof(dom));
        r->domain = xstrdup(dom);
    }
    return e;
}

/* qmgr_smtpd_flush_cb - the group commit, run once at the end of a turn. */
static void
qmgr_smtpd_flush_cb(void *arg)
{
    (void)arg;
    qmgr_smtpd_flush_queued = 0;
    qmgr_smtpd_flush();
}

/* qmgr_smtpd_do_commit - MSG_COMMIT: validate, size check, into the batch (the body is
 * made durable with the batch; a solo body is fdatasync'd here). */
static void
qmgr_smtpd_do_commit(struct qmgr_smtpd *p, const struct ipc_frame *f)
{
    struct ipc_msg_commit      c;
    struct qmgr_smtpd_open    *o;
    struct qmgr_smtpd_pending *e;
    struct stat                st;
    const char                *why;
    uint32_t                   code = EINVAL;
    int                        solo;

    if (ipc_msg_commit_dec(f, &c) == -1) {
        log_warnx("smtpd %u: malformed msg_commit, dropping the peer", p->id);
        qmgr_smtpd_drop(p);
        return;
    }
    o = qid_valid(c.qid) ? qmgr_tab_get(qmgr_smtpd_opens, c.qid) : NULL;
    if (o == NULL || o->owner != p) {
        log_warnx("smtpd %u: commit for a message it did not open (%.20s)", p->id, c.qid);
        qmgr_smtpd_send_queued(p, f->reqid, ENOENT, c.qid, "unknown queue id");
        ipc_msg_commit_clear(&c);
        return;
    }
    if ((why = qmgr_smtpd_check(&c)) != NULL)
        goto fail;
    if (fstat(o->fd, &st) == -1) {
        code = (uint32_t)errno;
        log_warn("%s: fstat", o->qid);
        why = "body stat failed";
        goto fail;
    }
    if ((uint64_t)st.st_size != c.size) {
        log_warnx("%s: body is %lld bytes, smtpd claims %llu", o->qid, (long long)st.st_size,
                  (unsigned long long)c.size);
        why = "body size mismatch";
        goto fail;
    }
    solo = o->solo || !qmgr_body_group_sync_covers(st.st_dev);
    if (solo) {
        qmgr_smtpd_body_fdatasyncs++;
        if (fdatasync(o->fd) == -1) {
            code = (uint32_t)errno;
            log_warn("%s: fdatasync", o->qid);
            why = "body sync failed";
            goto fail;
        }
    }
    e = qmgr_smtpd_pending_new(&c, qmgr_wall_ms());
    e->owner = p;
    e->reqid = f->reqid;
    e->solo = solo;
    e->fd = o->fd;              /* kept for the per-file path if the group sync fails */
    o->fd = -1;
    qmgr_smtpd_open_free(o, 0);
    if (qmgr_smtpd_nbatch == qmgr_smtpd_batch_cap) {
        qmgr_smtpd_batch_cap = qmgr_smtpd_batch_cap ? qmgr_smtpd_batch_cap * 2 : 64;
        qmgr_smtpd_batch = xrealloc(qmgr_smtpd_batch,
                                    qmgr_smtpd_batch_cap * sizeof(*qmgr_smtpd_batch));
    }
    qmgr_smtpd_batch[qmgr_smtpd_nbatch++] = e;
    if (!qmgr_smtpd_flush_queued) {
        qmgr_smtpd_flush_queued = 1;
        ev_defer(qmgr_ev, qmgr_smtpd_flush_cb, NULL);
    }
    ipc_msg_commit_clear(&c);
    return;

fail:
    log_warnx("%s: commit refused: %s", o->qid, why);
    qmgr_smtpd_send_queued(p, f->reqid, code, o->qid, why);
    qmgr_smtpd_open_free(o, 1);
    ipc_msg_commit_clear(&c);
}

/* qmgr_smtpd_do_abort - MSG_ABORT: the transaction is gone, so is the body. */
static void
qmgr_smtpd_do_abort(struct qmgr_smtpd *p, const struct ipc_frame *f)
{
    struct ipc_msg_abort    a;
    struct qmgr_smtpd_open *o;

    if (ipc_msg_abort_dec(f, &a) == -1) {
        log_warnx("smtpd %u: malformed msg_abort, dropping the peer", p->id);
        qmgr_smtpd_drop(p);
        return;
    }
    o = qid_valid(a.qid) ? qmgr_tab_get(qmgr_smtpd_opens, a.qid) : NULL;
    if (o != NULL && o->owner == p) {
        log_debug("%s: aborted by smtpd %u", o->qid, p->id);
        qmgr_smtpd_open_free(o, 1);
    } else {
        log_warnx("smtpd %u: abort for a message it did not open (%.20s)", p->id, a.qid);
    }
    ipc_msg_abort_clear(&a);
}

/* qmgr_smtpd_frame - one frame from an smtpd, or NULL when it is gone. */
static void
qmgr_smtpd_frame(struct ipc_conn *conn, const struct ipc_frame *f, void *arg)
{
    struct qmgr_smtpd *p = arg;

    (void)conn;
    if (f == NULL) {
        qmgr_smtpd_drop(p);
        return;
    }
    if (f->fd != -1) {
        log_warnx("smtpd %u: unexpected descriptor with %s, dropping the peer", p->id,
                  ipc_type_name(f->type));
        close(f->fd);
        qmgr_smtpd_drop(p);
        return;
    }
    switch (f->type) {
    case IPC_MSG_OPEN:
        qmgr_smtpd_do_open(p, f);
        break;
    case IPC_MSG_COMMIT:
        qmgr_smtpd_do_commit(p, f);
        break;
    case IPC_MSG_ABORT:
        qmgr_smtpd_do_abort(p, f);
        break;
    default:
        log_warnx("smtpd %u: unexpected message type %u, dropping the peer", p->id, f->type);
        qmgr_smtpd_drop(p);
        break;
    }
}

/* qmgr_smtpd_mark_open_solo - a group sync failed: every body still open is synced by
 * itself at its commit (the failed syncfs may have reported, and so consumed, its error). */
static void
qmgr_smtpd_mark_open_solo(void)
{
    struct qmgr_smtpd      *p;
    struct qmgr_smtpd_open *o;

    for (p = qmgr_smtpd_list; p != NULL; p = p->next)
        for (o = p->opens; o != NULL; o = o->next)
            o->solo = 1;
}

/* qmgr_smtpd_sync_bodies - make the body of every batch entry durable, data and directory
 * entry: one group sync, or per file. An entry whose body cannot be synced is answered
 * (451), unlinked and taken out of the batch. -1 if the whole batch must fail. */
static int
qmgr_smtpd_sync_bodies(struct qmgr_smtpd_pending **batch, size_t n)
{
    const char **qids;
    size_t       i, k = 0, grouped = 0;
    int          rc = 0, serr;

    for (i = 0; i < n; i++)
        if (batch[i] != NULL && !batch[i]->solo)
            grouped++;
    if (grouped && qmgr_body_group_sync() == -1) {
        log_warnx("group sync of %zu bodies failed, syncing them one by one", grouped);
        qmgr_smtpd_mark_open_solo();
        for (i = 0; i < n; i++) {
            struct qmgr_smtpd_pending *e = batch[i];

            if (e == NULL || e->solo)
                continue;
            qmgr_smtpd_body_fdatasyncs++;
            if (fdatasync(e->fd) == 0) {
                e->solo = 1;
                continue;
            }
            serr = errno;
            log_warn("%s: fdatasync", e->rec.qid);
            log_warnx("%s: commit refused: body sync failed", e->rec.qid);
            qmgr_smtpd_send_queued(e->owner, e->reqid, serr ? (uint32_t)serr : EIO,
                                   e->rec.qid, "body sync failed");
            qmgr_body_unlink(e->rec.qid);
            qmgr_smtpd_pending_free(e);
            batch[i] = NULL;
        }
    }
    /* Bodies synced one by one: their names are made durable here, once per directory. */
    qids = xcalloc(n ? n : 1, sizeof(*qids));
    for (i = 0; i < n; i++)
        if (batch[i] != NULL && batch[i]->solo)
            qids[k++] = batch[i]->rec.qid;
    if (k && qmgr_body_sync_dirs(qids, k) == -1)
        rc = -1;
    free(qids);
    return rc;
}

/* qmgr_smtpd_log_covered - does the syncfs of the bodies also cover the database log
 * (db/ on the filesystem of body/)? The group sync may be switched off later (a failure
 * makes it per file), so that part is asked each time. */
static int
qmgr_smtpd_log_covered(void)
{
    static int   known;
    static dev_t log_dev;
    struct stat  st;

    if (!known) {
        known = 1;
        if (stat("db", &st) == 0)
            log_dev = st.st_dev;
        else
            log_warn("stat db");
    }
    return log_dev != 0 && qmgr_body_group_sync_covers(log_dev);
}

/* qmgr_smtpd_one_flush_ok - can one syncfs make this whole batch durable? Only when every
 * body waits for the group sync (none was synced alone) and it covers the log. */
static int
qmgr_smtpd_one_flush_ok(struct qmgr_smtpd_pending **batch, size_t n)
{
    if (!qmgr_smtpd_log_covered())
        return 0;
    for (size_t i = 0; i < n; i++)
        if (batch[i] != NULL && batch[i]->solo)
            return 0;
    return 1;
}

/* qmgr_smtpd_one_flush_fallback - the syncfs after a WRITE_NOSYNC insert failed: sync each
 * body, the body directories and the log by themselves. If that fails too, the records are
 * taken back (best effort: if that fails as well, the start-up check of qmgr_body_verify()
 * drops records whose body is missing or short). -1: the batch failed. */
static int
qmgr_smtpd_one_flush_fallback(struct qmgr_smtpd_pending **batch, size_t n)
{
    const char **qids = xcalloc(n ? n : 1, sizeof(*qids));
    size_t       i, k = 0;
    int          rc = 0;
    uint32_t     nrcpt;

    log_warnx("group sync of %zu messages failed, syncing them one by one", n);
    qmgr_smtpd_mark_open_solo();
    for (i = 0; i < n; i++) {
        if (batch[i] == NULL)
            continue;
        qids[k++] = batch[i]->rec.qid;
        qmgr_smtpd_body_fdatasyncs++;
        if (fdatasync(batch[i]->fd) == -1) {
            log_warn("%s: fdatasync", batch[i]->rec.qid);
            rc = -1;
        }
    }
    if (rc == 0 && (qmgr_body_sync_dirs(qids, k) == -1 || qmgr_store_log_flush(qmgr_db) == -1))
        rc = -1;
    for (i = 0; rc == -1 && i < k; i++)
        (void)qmgr_store_admin(qmgr_db, qids[i], QMGR_STORE_DELETE, 0, &nrcpt);
    free(qids);
    return rc;
}

/* qmgr_smtpd_commit_batch - make the batch durable, bodies and records; 0, or -1 with the
 * reason (nothing of it is queued). Two orders: when one syncfs covers the bodies and the
 * database log, the records are written first without a log flush (DB_TXN_WRITE_NOSYNC)
 * and the one syncfs makes bodies and records durable together, which halves the device
 * flushes per batch; a crash before it returns may leave records whose body is short,
 * which were never acknowledged and which qmgr_body_verify() drops at the next start.
 * Otherwise bodies are made durable first and the records follow with a synchronous
 * commit, so records never point at a body a crash could take back. */
static int
qmgr_smtpd_commit_batch(struct qmgr_smtpd_pending **batch, size_t n, int *code, char *err,
                        size_t errlen)
{
    struct qmgr_store_new **v = xcalloc(n ? n : 1, sizeof(*v));
    size_t                  i, k = 0;
    int                     rc, one = qmgr_smtpd_one_flush_ok(batch, n);

    if (!one && qmgr_smtpd_sync_bodies(batch, n) == -1) {
        snprintf(err, errlen, "body directory sync failed");
        *code = EIO;
        free(v);
        return -1;
    }
    for (i = 0; i < n; i++)
        if (batch[i] != NULL)
            v[k++] = &batch[i]->rec;
    rc = k ? qmgr_store_insert(qmgr_db, v, k, !one, code, err, errlen) : 0;
    free(v);
    if (rc == 0 && one && k && qmgr_body_group_sync() == -1
        && qmgr_smtpd_one_flush_fallback(batch, n) == -1) {
        snprintf(err, errlen, "queue file system sync failed");
        *code = EIO;
        rc = -1;
    }
    return rc;
}

/* qmgr_smtpd_flush - the group commit: bodies and records durable for the whole batch,
 * then the answers. */
void
qmgr_smtpd_flush(void)
{
    struct qmgr_smtpd_pending **batch = qmgr_smtpd_batch;
    size_t                      n = qmgr_smtpd_nbatch, i;
    char                        err[256] = "";
    int                         code = 0, rc;

    if (n == 0)
        return;
    /* Detach the batch first: answering may fail and drop peers, which walk the batch. */
    qmgr_smtpd_batch = NULL;
    qmgr_smtpd_nbatch = qmgr_smtpd_batch_cap = 0;
    rc = qmgr_smtpd_commit_batch(batch, n, &code, err, sizeof(err));
    if (rc == -1)
        log_warnx("group commit of %zu messages failed: %s", n, err);
    else
        log_debug("group commit: messages=%zu", n);
    for (i = 0; i < n; i++) {
        struct qmgr_smtpd_pending *e = batch[i];

        if (e == NULL)
            continue;
        if (rc == 0) {
            log_info("%s: from=<%s>, size=%llu, nrcpt=%u (queue %s)", e->rec.qid,
                     e->rec.msg.sender, (unsigned long long)e->rec.msg.size,
                     e->rec.msg.nrcpt,
                     (e->rec.msg.flags & QREC_F_HOLD) ? "hold" : "active");
            qmgr_smtpd_send_queued(e->owner, e->reqid, 0, e->rec.qid, "");
            qmgr_smtpd_received++;
            qmgr_smtpd_received_bytes += e->rec.msg.size;
            qmgr_sched_new_message(&e->rec, e->arrival_ms);
        } else {
            qmgr_smtpd_send_queued(e->owner, e->reqid, code ? (uint32_t)code : EIO,
                                   e->rec.qid, "queue database write failed");
            qmgr_body_unlink(e->rec.qid);
        }
        qmgr_smtpd_pending_free(e);
    }
    free(batch);
}

/* qmgr_smtpd_shutdown - commit what is complete, then drop every smtpd. */
void
qmgr_smtpd_shutdown(void)
{
    qmgr_smtpd_flush();
    while (qmgr_smtpd_list != NULL)
        qmgr_smtpd_drop(qmgr_smtpd_list);
    qmgr_tab_free(&qmgr_smtpd_opens);
    free(qmgr_smtpd_batch);
    qmgr_smtpd_batch = NULL;
    qmgr_smtpd_nbatch = qmgr_smtpd_batch_cap = 0;
}
