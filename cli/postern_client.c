/* postern_client - the CLI's side of public/control, and the offline queue reader.
 *
 * postern_call() is one conversation: connect, send IPC_CTL_REQUEST, read CTL_MSG,
 * CTL_RESULT or CTL_STATS frames until CTL_DONE, each bounded by IPC_MAX_FRAME and the
 * whole by socket timeouts (POSTERN_CLIENT_TIMEOUT_S per read or write).
 *
 * postern_offline_list() serves `queue list`, `show` and `summary` while no qmgr runs. It
 * does not join the Berkeley DB environment (only qmgr may: DESIGN.md), and it does not
 * open it privately either, which would need write access and could run recovery behind
 * qmgr's back. It opens db/msg.db and db/rcpt.db directly with DB_RDONLY and no
 * environment, which is consistent after a clean shutdown because qmgr checkpoints when it
 * closes (every page is in the files). To be sure no qmgr is running, it holds a shared
 * flock() on db/qmgr.lock while it reads; qmgr holds that lock exclusively for as long as
 * it has the environment open (and waits for our shared lock at start). After a crash of
 * qmgr the files may lack the last transactions, which only qmgr's recovery replays from
 * the log: the listing then says so. Root or the queue owner only (db/ is 0700). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <db.h>

#include "buf.h"
#include "config.h"
#include "ev.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "qid.h"
#include "qrec.h"
#include "postern.h"

#define POSTERN_CLIENT_TIMEOUT_S  60
/* master answers EAGAIN while qmgr starts (recovery and the body check can take seconds
 * on a big queue) and qmgr EBUSY when its control slots are full: wait this long. */
#define POSTERN_QMGR_WAIT_MS      15000
#define POSTERN_QMGR_RETRY_MS     100
#define POSTERN_CONTROL_PATH      "public/control"
#define POSTERN_QMGR_LOCK         "db/qmgr.lock"    /* QMGR_STORE_LOCK in daemons/qmgr */

/* postern_client_connect - a connected socket to public/control, or -1 (errno). */
static int
postern_client_connect(const struct config *cfg)
{
    struct sockaddr_un sun;
    struct timeval     tv = { POSTERN_CLIENT_TIMEOUT_S, 0 };
    char              *path = xasprintf("%s/%s", config_path(cfg, "queue_directory"),
                                        POSTERN_CONTROL_PATH);
    int                s, saved;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        free(path);
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    free(path);
    if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
        return -1;
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
        saved = errno;
        close(s);
        errno = saved;
        return -1;
    }
    return s;
}

/* postern_client_qmsg - a decoded CTL_MSG as a struct postern_qmsg (copies). */
static void
postern_client_qmsg(const struct ipc_ctl_msg *in, struct postern_qmsg *m)
{
    uint32_t n = in->rcpt_n;

    memset(m, 0, sizeof(*m));
    snprintf(m->qid, sizeof(m->qid), "%s", in->qid);
    m->flags = in->flags;
    m->active = in->active != 0;
    m->arrival = in->arrival;
    m->expiry = in->expiry;
    m->size = in->size;
    m->sender = xstrdup(in->sender);
    m->nrcpt = in->nrcpt;
    m->omitted = in->rcpt_omitted;
    /* The arrays are parallel; a short one is qmgr's bug, and we list what is complete. */
    if (in->orig_n < n || in->state_n < n || in->attempts_n < n || in->next_attempt_n < n
        || in->dsn_n < n || in->text_n < n)
        n = 0;
    m->r = xcalloc(n + 1, sizeof(*m->r));
    m->n = n;
    for (uint32_t i = 0; i < n; i++) {
        m->r[i].addr = xstrdup(in->rcpt[i]);
        m->r[i].orig = xstrdup(in->orig[i]);
        m->r[i].dsn = xstrdup(in->dsn[i]);
        m->r[i].text = xstrdup(in->text[i]);
        m->r[i].state = in->state[i];
        m->r[i].attempts = in->attempts[i];
        m->r[i].next_attempt = in->next_attempt[i];
    }
}

/* postern_client_frame - one reply frame; 1 at CTL_DONE, 0 to go on, -1 to stop. */
static int
postern_client_frame(const struct ipc_frame *f, struct postern_reply *r)
{
    struct ipc_ctl_msg    msg;
    struct ipc_ctl_result res;
    struct ipc_ctl_stats  st;
    struct ipc_ctl_done   done;
    struct postern_qmsg   m;
    int                   rc = 0;

    switch (f->type) {
    case IPC_CTL_MSG:
        if (ipc_ctl_msg_dec(f, &msg) == -1)
            break;
        postern_client_qmsg(&msg, &m);
        ipc_ctl_msg_clear(&msg);
        if (r->on_msg != NULL)
            rc = r->on_msg(&m, f->fd, r->arg);
        else if (f->fd >= 0)
            close(f->fd);
        postern_qmsg_clear(&m);
        return rc;
    case IPC_CTL_RESULT:
        if (f->fd >= 0 || ipc_ctl_result_dec(f, &res) == -1)
            break;
        if (r->on_result != NULL)
            r->on_result(res.qid, res.status, res.text, r->arg);
        return 0;
    case IPC_CTL_STATS:
        if (f->fd >= 0 || ipc_ctl_stats_dec(f, &st) == -1)
            break;
        if (r->on_stats != NULL)
            r->on_stats(&st, r->arg);
        ipc_ctl_stats_clear(&st);
        return 0;
    case IPC_CTL_DONE:
        if (f->fd >= 0 || ipc_ctl_done_dec(f, &done) == -1)
            break;
        r->status = done.status;
        snprintf(r->text, sizeof(r->text), "%s", done.text);
        return 1;
    }
    if (f->fd >= 0)
        close(f->fd);
    fprintf(stderr, "postern: malformed %s frame on the control socket\n",
            ipc_type_name(f->type));
    return -1;
}

/* postern_call_once - one conversation, as postern_call(). */
static int
postern_call_once(const struct config *cfg, uint32_t cmd, char *const *args, size_t nargs,
                  struct postern_reply *r)
{
    struct ipc_ctl_request req;
    struct ipc_frame       f;
    struct buf             b;
    int                    s, rc;

    r->status = 0;
    r->text[0] = '\0';
    if (nargs > IPC_CTL_MAX_ARGS) {
        fprintf(stderr, "postern: more than %d queue IDs in one request\n", IPC_CTL_MAX_ARGS);
        return -2;
    }
    if ((s = postern_client_connect(cfg)) == -1)
        return -1;
    memset(&req, 0, sizeof(req));
    req.cmd = cmd;
    req.args = (const char **)args;
    req.args_n = (uint32_t)nargs;
    buf_init(&b, 256);
    if (ipc_ctl_request_enc(&b, &req) == -1 || ipc_send_frame(s, IPC_CTL_REQUEST, 1, &b, -1)
                                               == -1) {
        fprintf(stderr, "postern: control socket: cannot send the request: %s\n",
                strerror(errno ? errno : EMSGSIZE));
        buf_release(&b);
        close(s);
        return -2;
    }
    for (;;) {
        if (ipc_recv_frame(s, &b, &f) == -1) {
            if (errno == 0)
                fprintf(stderr, "postern: the control socket closed before the reply "
                        "ended\n");
            else
                fprintf(stderr, "postern: control socket: %s\n",
                        errno == EAGAIN ? "no answer (timed out)" : strerror(errno));
            rc = -2;
            break;
        }
        if ((rc = postern_client_frame(&f, r)) != 0) {
            rc = rc == 1 ? 0 : -2;
            break;
        }
    }
    buf_release(&b);
    close(s);
    return rc;
}

int
postern_call(const struct config *cfg, uint32_t cmd, char *const *args, size_t nargs,
             struct postern_reply *r)
{
    uint64_t deadline = ev_now_ms() + POSTERN_QMGR_WAIT_MS;
    int      rc;

    /* Both refusals come before any message of the reply, so asking again repeats
     * nothing; a qmgr that stays away is the caller's to handle (offline listing). */
    while ((rc = postern_call_once(cfg, cmd, args, nargs, r)) == 0
           && (r->status == EAGAIN || r->status == EBUSY) && ev_now_ms() < deadline)
        usleep(POSTERN_QMGR_RETRY_MS * 1000);
    return rc;
}

/* postern_offline_open - open one database file read-only, without an environment. */
static DB *
postern_offline_open(const char *qdir, const char *file)
{
    DB   *db;
    char *path = xasprintf("%s/db/%s", qdir, file);
    int   ret;

    if ((ret = db_create(&db, NULL, 0)) != 0) {
        fprintf(stderr, "postern: db_create: %s\n", db_strerror(ret));
        free(path);
        return NULL;
    }
    if ((ret = db->open(db, NULL, path, NULL, DB_BTREE, DB_RDONLY, 0)) != 0) {
        fprintf(stderr, "postern: %s: %s\n", path, ret == ENOENT ? "no queue database here"
                                                                : db_strerror(ret));
        db->close(db, 0);
        free(path);
        return NULL;
    }
    free(path);
    return db;
}

/* postern_offline_rcpts - the pending recipients of qid from rcpt.db into m. */
static void
postern_offline_rcpts(DB *rcpt, const char *qid, struct postern_qmsg *m)
{
    uint8_t          k[QREC_KEY_RCPT_LEN];
    char             kq[QID_SIZE];
    uint32_t         index, cap = 0;
    DBC             *c;
    DBT              key, val;
    struct qrec_rcpt r;
    int              ret;

    if (rcpt->cursor(rcpt, NULL, &c, 0) != 0)
        return;
    qrec_key_rcpt(k, qid, 0);
    memset(&key, 0, sizeof(key));
    memset(&val, 0, sizeof(val));
    key.data = k;
    key.size = sizeof(k);
    for (ret = c->get(c, &key, &val, DB_SET_RANGE); ret == 0;
         ret = c->get(c, &key, &val, DB_NEXT)) {
        if (qrec_key_rcpt_dec(key.data, key.size, kq, &index) == -1
            || strcmp(kq, qid) != 0)
            break;
        if (qrec_rcpt_dec(val.data, val.size, &r) == -1)
            continue;
        if (!qrec_state_final(r.state)) {
            if (m->n == cap) {
                cap = cap ? cap * 2 : 4;
                m->r = xrealloc(m->r, cap * sizeof(*m->r));
            }
            m->r[m->n].addr = r.addr;
            m->r[m->n].orig = r.orig;
            m->r[m->n].dsn = r.dsn;
            m->r[m->n].text = r.text;
            m->r[m->n].state = r.state == QREC_ACTIVE ? QREC_QUEUED : r.state;
            m->r[m->n].attempts = r.attempts;
            m->r[m->n].next_attempt = r.next_attempt;
            m->n++;
            r.addr = r.orig = r.dsn = r.text = NULL;
        }
        qrec_rcpt_clear(&r);
    }
    c->close(c);
}

int
postern_offline_list(const struct config *cfg, struct postern_reply *r)
{
    const char     *qdir = config_path(cfg, "queue_directory");
    char           *lockpath = xasprintf("%s/%s", qdir, POSTERN_QMGR_LOCK);
    DB             *msg = NULL, *rcpt = NULL;
    DBC            *c = NULL;
    DBT             key, val;
    struct qrec_msg qm;
    int             lock, ret, rc = -1;

    r->status = 0;
    r->text[0] = '\0';
    if ((lock = open(lockpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 && errno != ENOENT) {
        fprintf(stderr, "postern: %s: %s\n", lockpath, strerror(errno));
        free(lockpath);
        return -1;
    }
    if (lock >= 0 && flock(lock, LOCK_SH | LOCK_NB) == -1) {
        fprintf(stderr, "postern: qmgr holds the queue database (%s) but the control "
                "socket does not answer; try again\n", lockpath);
        close(lock);
        free(lockpath);
        return -1;
    }
    free(lockpath);
    if ((msg = postern_offline_open(qdir, "msg.db")) == NULL
        || (rcpt = postern_offline_open(qdir, "rcpt.db")) == NULL
        || msg->cursor(msg, NULL, &c, 0) != 0)
        goto out;
    memset(&key, 0, sizeof(key));
    memset(&val, 0, sizeof(val));
    while ((ret = c->get(c, &key, &val, DB_NEXT)) == 0) {
        struct postern_qmsg m;
        char                qid[QID_SIZE];

        if (key.size != QREC_KEY_MSG_LEN || qrec_msg_dec(val.data, val.size, &qm) == -1)
            continue;
        memcpy(qid, key.data, QID_LEN);
        qid[QID_LEN] = '\0';
        memset(&m, 0, sizeof(m));
        snprintf(m.qid, sizeof(m.qid), "%s", qid);
        m.flags = qm.flags;
        m.arrival = qm.arrival;
        m.expiry = qm.expiry;
        m.size = qm.size;
        m.sender = qm.sender;
        qm.sender = NULL;
        m.nrcpt = qm.nrcpt;
        qrec_msg_clear(&qm);
        postern_offline_rcpts(rcpt, qid, &m);
        ret = r->on_msg != NULL ? r->on_msg(&m, -1, r->arg) : 0;
        postern_qmsg_clear(&m);
        if (ret == -1)
            break;
    }
    if (ret != 0 && ret != DB_NOTFOUND && ret != -1)
        fprintf(stderr, "postern: reading the queue database: %s\n", db_strerror(ret));
    else
        rc = 0;
out:
    if (c != NULL)
        c->close(c);
    if (rcpt != NULL)
        rcpt->close(rcpt, 0);
    if (msg != NULL)
        msg->close(msg, 0);
    if (lock >= 0)
        close(lock);
    return rc;
}

int
postern_offline_body(const struct config *cfg, const char *qid)
{
    char  dir[3];
    char *path;
    int   fd;

    if (!qid_valid(qid)) {
        errno = EINVAL;
        return -1;
    }
    qid_dir(qid, dir);
    path = xasprintf("%s/body/%s/%s", config_path(cfg, "queue_directory"), dir, qid);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    free(path);
    return fd;
}
