/* qmgr_bounce - the DSN messages qmgr makes from one turn's delivery results.
 *
 * See qmgr_bounce.h. A set holds groups, one per original queue ID, each with its
 * recipients; prepare() turns each group into a spool file and a struct qmgr_store_new.
 * The original is read through a fresh descriptor: at most QMGR_BOUNCE_HDR_MAX bytes for
 * the header section, at most QMGR_BOUNCE_FULL_MAX for RET=FULL (a larger message gets
 * its header section only). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "qid.h"
#include "qrec.h"
#include "qmgr.h"
#include "qmgr_body.h"
#include "qmgr_bounce.h"
#include "qmgr_dsn.h"
#include "qmgr_sched.h"
#include "qmgr_store.h"

#define QMGR_BOUNCE_HDR_MAX   (1024u * 1024u)
#define QMGR_BOUNCE_FULL_MAX  (64u * 1024u * 1024u)

/* One original message and the recipients to report on. */
struct qmgr_bounce_group {
    char                   qid[QID_SIZE];
    struct qmgr_dsn_rcpt  *rcpts;          /* strings owned */
    size_t                 n, cap;
    int                    delay_only;
    struct qmgr_store_new *out;            /* the report, once prepared */
    uint64_t               out_ms;
};

struct qmgr_bounce_set {
    struct qmgr_bounce_group *groups;
    size_t                    n, cap;
    struct qmgr_store_new   **add;         /* prepared reports, for the batch */
    size_t                    nadd;
    const char              **warned;
    size_t                    nwarned;
};

/* qmgr_bounce_set_new - an empty set. */
struct qmgr_bounce_set *
qmgr_bounce_set_new(void)
{
    return xcalloc(1, sizeof(struct qmgr_bounce_set));
}

/* qmgr_bounce_add - one recipient into its message's group. */
void
qmgr_bounce_add(struct qmgr_bounce_set *s, const char *qid, const struct qmgr_dsn_rcpt *r)
{
    struct qmgr_bounce_group *g = NULL;
    struct qmgr_dsn_rcpt     *c;
    size_t                    i;

    for (i = 0; i < s->n; i++)
        if (strcmp(s->groups[i].qid, qid) == 0)
            g = &s->groups[i];
    if (g == NULL) {
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 8;
            s->groups = xrealloc(s->groups, s->cap * sizeof(*s->groups));
        }
        g = &s->groups[s->n++];
        memset(g, 0, sizeof(*g));
        snprintf(g->qid, sizeof(g->qid), "%s", qid);
        g->delay_only = 1;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 4;
        g->rcpts = xrealloc(g->rcpts, g->cap * sizeof(*g->rcpts));
    }
    c = &g->rcpts[g->n++];
    c->addr = xstrdup(r->addr ? r->addr : "");
    c->orcpt = xstrdup(r->orcpt ? r->orcpt : "");
    c->action = xstrdup(r->action);
    c->status = xstrdup(r->status ? r->status : "");
    c->diag = xstrdup(r->diag ? r->diag : "");
    c->remote_mta = xstrdup(r->remote_mta ? r->remote_mta : "");
    c->last_attempt = r->last_attempt;
    c->retry_until = r->retry_until;
    if (strcmp(r->action, "delayed") != 0)
        g->delay_only = 0;
}

/* qmgr_bounce_read - read the original: its header section, or all of it when full and it
 * is not too large (*full is cleared otherwise). -1 if it cannot be read. */
static int
qmgr_bounce_read(const char *qid, uint64_t size, int *full, struct buf *out)
{
    size_t  want = *full && size <= QMGR_BOUNCE_FULL_MAX ? (size_t)size : QMGR_BOUNCE_HDR_MAX;
    ssize_t r;
    int     fd;

    if (*full && size > QMGR_BOUNCE_FULL_MAX)
        *full = 0;
    if ((fd = qmgr_body_open_read(qid)) == -1)
        return -1;
    while (out->len < want) {
        char *p = buf_reserve(out, 65536);

        r = read(fd, p, want - out->len < 65536 ? want - out->len : 65536);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            log_warn("%s: read of the body for a DSN", qid);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        buf_commit(out, (size_t)r);
    }
    close(fd);
    if (!*full)
        buf_truncate(out, qmgr_dsn_header_len(out->data, out->len));
    return 0;
}

/* qmgr_bounce_has_8bit - any byte >= 0x80? */
static int
qmgr_bounce_has_8bit(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return 1;
    return 0;
}

/* qmgr_bounce_write - write the report into a new spool file; fdatasync it. */
static int
qmgr_bounce_write(const char *qid, const struct buf *b)
{
    size_t  off = 0;
    ssize_t w;
    int     fd;

    if ((fd = qmgr_body_create(qid)) == -1)
        return -1;
    while (off < b->len) {
        w = write(fd, b->data + off, b->len - off);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1) {
            log_warn("%s: write of the DSN body", qid);
            break;
        }
        off += (size_t)w;
    }
    if (off < b->len || fdatasync(fd) == -1) {
        if (off == b->len)
            log_warn("%s: fdatasync of the DSN body", qid);
        close(fd);
        qmgr_body_unlink(qid);
        return -1;
    }
    close(fd);
    return 0;
}

/* qmgr_bounce_new_msg - the queue records of a report from <> to rcpt. */
static struct qmgr_store_new *
qmgr_bounce_new_msg(const char *qid, const char *rcpt, uint64_t size, uint32_t flags,
                    uint64_t now)
{
    struct qmgr_store_new *m = xcalloc(1, sizeof(*m));
    struct qrec_rcpt      *r;
    char                   dom[256];

    snprintf(m->qid, sizeof(m->qid), "%s", qid);
    m->msg.arrival = now;
    m->msg.expiry = now + qmgr_params.lifetime;
    m->msg.size = size;
    m->msg.flags = flags | QREC_F_BOUNCE;
    m->msg.nrcpt = 1;
    m->msg.sender = xstrdup("");
    m->msg.envid = xstrdup("");
    m->msg.client_addr = xstrdup("");
    m->msg.client_name = xstrdup("");
    m->msg.helo = xstrdup("");
    m->msg.protocol = xstrdup("local");
    m->msg.auth_user = xstrdup("");
    m->rcpts = r = xcalloc(1, sizeof(*r));
    r->state = QREC_QUEUED;
    r->next_attempt = now;
    r->addr = xstrdup(rcpt);
    r->orig = xstrdup(rcpt);
    r->orcpt = xstrdup("");
    qrec_domain_of(rcpt, dom, sizeof(dom));
    r->domain = xstrdup(dom);
    return m;
}

/* qmgr_bounce_free_msg - free a report's records. */
static void
qmgr_bounce_free_msg(struct qmgr_store_new *m)
{
    if (m == NULL)
        return;
    qrec_rcpt_clear(&m->rcpts[0]);
    free(m->rcpts);
    qrec_msg_clear(&m->msg);
    free(m);
}

/* qmgr_bounce_make - compose and write one group's report. 0: made (or nothing to do);
 * -1: failed. */
static int
qmgr_bounce_make(struct qmgr_bounce_set *s, struct qmgr_bounce_group *g, uint64_t now_ms)
{
    struct qrec_msg m;
    struct qmgr_dsn d;
    struct buf     *orig, *out;
    char            qid[QID_SIZE], msgid[400], boundary[400];
    uint32_t        flags = 0;
    int             rc, full, have_orig;

    if ((rc = qmgr_store_get_msg(qmgr_db, g->qid, &m)) != 0) {
        /* Gone (nothing left to report on) or unreadable (logged): no report. */
        return rc == 1 ? 0 : -1;
    }
    if (m.sender[0] == '\0' || (g->delay_only && (m.flags & QREC_F_WARNED))) {
        qrec_msg_clear(&m);
        return 0;
    }
    full = m.ret == 1;
    orig = buf_new(4096);
    have_orig = qmgr_bounce_read(g->qid, m.size, &full, orig) == 0;
    qid_new(qid);
    snprintf(msgid, sizeof(msgid), "<%s@%s>", qid, qmgr_params.myhostname);
    snprintf(boundary, sizeof(boundary), "%s.%llu/%s", qid,
             (unsigned long long)(now_ms / 1000), qmgr_params.myhostname);
    memset(&d, 0, sizeof(d));
    d.reporting_mta = qmgr_params.myhostname;
    d.to = m.sender;
    d.orig_qid = g->qid;
    d.envid = m.envid;
    d.message_id = msgid;
    d.boundary = boundary;
    d.arrival = m.arrival;
    d.now = now_ms / 1000;
    d.full = full;
    d.eightbit = have_orig && qmgr_bounce_has_8bit(orig->data, orig->len);
    d.rcpts = g->rcpts;
    d.nrcpt = g->n;
    out = buf_new(orig->len + 4096);
    qmgr_dsn_compose(out, &d, have_orig ? orig->data : NULL, have_orig ? orig->len : 0);
    if (qmgr_bounce_has_8bit(out->data, out->len))
        flags |= QREC_F_8BITMIME;
    if (qmgr_bounce_has_8bit(m.sender, strlen(m.sender)))
        flags |= QREC_F_SMTPUTF8;
    rc = qmgr_bounce_write(qid, out);
    if (rc == 0) {
        g->out = qmgr_bounce_new_msg(qid, m.sender, out->len, flags, now_ms / 1000);
        g->out_ms = now_ms;
        s->add[s->nadd++] = g->out;
        if (g->delay_only)
            s->warned[s->nwarned++] = g->qid;
    }
    buf_free(&orig);
    buf_free(&out);
    qrec_msg_clear(&m);
    return rc;
}

/* qmgr_bounce_prepare - every group's report, written and ready for the batch. */
int
qmgr_bounce_prepare(struct qmgr_bounce_set *s, struct qmgr_store_batch *b)
{
    const char **qids;
    uint64_t     now_ms = qmgr_wall_ms();
    size_t       i;
    int          rc;

    if (s->n == 0)
        return 0;
    s->add = xcalloc(s->n, sizeof(*s->add));
    s->warned = xcalloc(s->n, sizeof(*s->warned));
    for (i = 0; i < s->n; i++)
        if (qmgr_bounce_make(s, &s->groups[i], now_ms) == -1)
            return -1;
    if (s->nadd > 0) {
        qids = xcalloc(s->nadd, sizeof(*qids));
        for (i = 0; i < s->nadd; i++)
            qids[i] = s->add[i]->qid;
        rc = qmgr_body_sync_dirs(qids, s->nadd);
        free(qids);
        if (rc != 0)
            return -1;
    }
    b->add = s->add;
    b->nadd = s->nadd;
    b->warned = s->warned;
    b->nwarned = s->nwarned;
    return 0;
}

/* qmgr_bounce_finish - schedule or remove the new reports; free the set. */
void
qmgr_bounce_finish(struct qmgr_bounce_set **sp, int committed)
{
    struct qmgr_bounce_set *s = *sp;
    size_t                  i, k;

    if (s == NULL)
        return;
    for (i = 0; i < s->n; i++) {
        struct qmgr_bounce_group *g = &s->groups[i];

        if (g->out != NULL) {
            if (committed) {
                log_info("%s: sender %s notification: %s", g->qid,
                         g->delay_only ? "delay" : "delivery status", g->out->qid);
                log_info("%s: from=<>, size=%llu, nrcpt=1 (queue active)", g->out->qid,
                         (unsigned long long)g->out->msg.size);
                qmgr_sched_new_message(g->out, g->out_ms);
            } else {
                qmgr_body_unlink(g->out->qid);
            }
            qmgr_bounce_free_msg(g->out);
        }
        for (k = 0; k < g->n; k++) {
            free((char *)g->rcpts[k].addr);
            free((char *)g->rcpts[k].orcpt);
            free((char *)g->rcpts[k].action);
            free((char *)g->rcpts[k].status);
            free((char *)g->rcpts[k].diag);
            free((char *)g->rcpts[k].remote_mta);
        }
        free(g->rcpts);
    }
    free(s->groups);
    free(s->add);
    free(s->warned);
    free(s);
    *sp = NULL;
}
