/* local - the local delivery agent: final delivery into Maildirs and mbox files.
 *
 * Started by master as `local -c DIR -i SLOT [-d]` with its master channel on fd 3 (see
 * doc/internals.md). It says HELLO, then waits for master to hand it a socket to qmgr
 * (again after every qmgr restart) and serves DELIVER requests: look the recipient up in
 * mailbox_map, switch to mailbox_owner (when running as root), write the message, switch
 * back. An mbox delivery (and any failure) is answered at once; a Maildir delivery is only
 * written into tmp/ and joins the batch (local_batch), which is made durable and answered
 * at the end of the event-loop turn. The kernel hands over one descriptor-carrying frame per
 * read, so one DELIVER arrives per turn: while more are waiting on the qmgr socket (qmgr
 * sends up to local_concurrency at once) the flush waits for them (the next DELIVER asks
 * again at the end of its turn), up to LOCAL_BATCH_MAX jobs; a timer flushes the batch
 * after LOCAL_BATCH_WAIT_MS in case the waiting bytes were not a whole frame. DELIVERED
 * carries the request id of its DELIVER. The map is opened at start, on SIGHUP and
 * whenever its .db file is replaced (`postern map build`).
 *
 * Failures: an unknown recipient is permanent (5.1.1); everything else (no map, a map
 * error, any file system error) is temporary, so qmgr tries again later. A malformed frame
 * from qmgr or master is a bug and fatal; master restarts us and qmgr defers what was in
 * flight. If the qmgr connection goes, its unanswered batch is removed again (qmgr defers
 * it). SIGTERM, SIGINT and EOF on the master channel flush the batch, flush answers, and
 * exit. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "daemon.h"
#include "ev.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "local.h"
#include "local_batch.h"
#include "local_maildir.h"
#include "local_mbox.h"
#include "log.h"
#include "map.h"
#include "priv.h"
#include "resolve.h"

#define LOCAL_DRAIN_MS      5000     /* at most this long to flush answers when stopping */
#define LOCAL_MAILBOX_MAX   (PATH_MAX + 1)

/* The process: one delivery agent, one event loop. */
static struct {
    struct config   *cfg;
    struct ev       *ev;
    struct ipc_conn *master;
    struct ipc_conn *qmgr;
    int              slot;
    char            *host;          /* for Maildir file names */
    /* mailbox map */
    struct map      *map;
    const char      *map_source;    /* "" = no map configured */
    char            *map_db;        /* map_source + ".db" */
    struct stat      map_st;        /* of map_db when it was opened */
    char             map_err[512];  /* why map is NULL */
    /* mailbox owner (switch_user = 1 when root) */
    int              switch_user;
    uid_t            uid;
    gid_t            gid;
    /* the batch's flush: deferred to the end of this turn; the safety timer */
    int              flush_deferred;
    uint64_t         flush_timer;
    /* stopping */
    int              stopping;
    uint64_t         drain_deadline;
} local;

/* local_result_set - fill in an outcome. */
void
local_result_set(struct local_result *res, uint32_t status, const char *dsn, const char *fmt,
                 ...)
{
    va_list ap;

    res->status = status;
    snprintf(res->dsn, sizeof(res->dsn), "%s", dsn);
    va_start(ap, fmt);
    vsnprintf(res->text, sizeof(res->text), fmt, ap);
    va_end(ap);
}

/* local_result_errno - a temporary failure from a system call. */
void
local_result_errno(struct local_result *res, int err, const char *fmt, ...)
{
    va_list ap;
    size_t  n;

    res->status = IPC_DELIV_TEMP;
    snprintf(res->dsn, sizeof(res->dsn), "%s",
             err == ENOSPC || err == EDQUOT ? "4.2.2" : "4.3.0");
    va_start(ap, fmt);
    vsnprintf(res->text, sizeof(res->text), fmt, ap);
    va_end(ap);
    n = strlen(res->text);
    snprintf(res->text + n, sizeof(res->text) - n, ": %s", strerror(err));
}

/* local_map_open - (re)open the mailbox map; on failure keep none and remember why. */
static void
local_map_open(void)
{
    map_close(&local.map);
    memset(&local.map_st, 0, sizeof(local.map_st));
    if (*local.map_source == '\0') {
        snprintf(local.map_err, sizeof(local.map_err), "no mailbox_map configured");
        return;
    }
    /* stat first: if the file is replaced in between, the next check opens it again. */
    if (stat(local.map_db, &local.map_st) == -1)
        memset(&local.map_st, 0, sizeof(local.map_st));
    local.map = map_open(local.map_source, local.map_err, sizeof(local.map_err));
    if (local.map == NULL)
        log_warnx("mailbox map unavailable: %s", local.map_err);
    else
        log_debug("mailbox map %s opened", local.map_db);
}

/* local_map_check - reopen the map if it is not open or its .db file was replaced. */
static void
local_map_check(void)
{
    struct stat st;

    if (*local.map_source == '\0')
        return;
    if (local.map == NULL) {
        local_map_open();
        return;
    }
    if (stat(local.map_db, &st) == -1)
        return;     /* removed: keep using what we have */
    if (st.st_ino != local.map_st.st_ino || st.st_dev != local.map_st.st_dev
        || st.st_mtim.tv_sec != local.map_st.st_mtim.tv_sec
        || st.st_mtim.tv_nsec != local.map_st.st_mtim.tv_nsec
        || st.st_size != local.map_st.st_size) {
        log_info("mailbox map %s changed, reopening", local.map_db);
        local_map_open();
    }
}

/* local_priv_enter - become the mailbox owner (effective ids). */
void
local_priv_enter(void)
{
    if (!local.switch_user)
        return;
    if (setresgid((gid_t)-1, local.gid, (gid_t)-1) == -1)
        fatal("setresgid %d", (int)local.gid);
    if (setresuid((uid_t)-1, local.uid, (uid_t)-1) == -1)
        fatal("setresuid %d", (int)local.uid);
}

/* local_priv_leave - back to root. */
void
local_priv_leave(void)
{
    if (!local.switch_user)
        return;
    if (setresuid((uid_t)-1, 0, (uid_t)-1) == -1)
        fatal("setresuid 0");
    if (setresgid((gid_t)-1, 0, (gid_t)-1) == -1)
        fatal("setresgid 0");
}

/* local_lookup - the mailbox for rcpt: the address itself, then without its extension
 * (recipient_delimiter: user+tag goes to user's mailbox), then "@domain", the order smtpd
 * checked at RCPT (resolve_mailbox_find). 1: found, 0: not found, -1: map error (res filled
 * in). */
static int
local_lookup(const char *rcpt, char *val, size_t vallen, struct local_result *res)
{
    int rc;

    local_map_check();
    if (local.map == NULL) {
        local_result_set(res, IPC_DELIV_TEMP, "4.3.5", "mailbox map unavailable: %s",
                         local.map_err);
        return -1;
    }
    rc = resolve_mailbox_find(local.map, rcpt, config_str(local.cfg, "recipient_delimiter"),
                              val, vallen);
    if (rc == -1)
        local_result_set(res, IPC_DELIV_TEMP, "4.3.0", "mailbox map lookup failed");
    return rc;
}

/* local_deliver_one - find the mailbox and deliver: 1 when the job joined the batch (a
 * Maildir file written to tmp/), 0 when job->res is the final result. */
static int
local_deliver_one(struct local_job *job, const struct local_msg *msg)
{
    char   *val = xmalloc(LOCAL_MAILBOX_MAX), *box;
    size_t  len;
    int     rc;

    rc = local_lookup(msg->rcpt, val, LOCAL_MAILBOX_MAX, &job->res);
    if (rc == 0)
        local_result_set(&job->res, IPC_DELIV_PERM, "5.1.1", "mailbox unknown");
    if (rc != 1) {
        free(val);
        return 0;
    }
    if ((len = strlen(val)) == 0) {
        local_result_set(&job->res, IPC_DELIV_TEMP, "4.3.5", "empty mailbox in mailbox_map");
        free(val);
        return 0;
    }
    box = val[0] == '/' ? xstrdup(val) : xasprintf("%s/%s", config_dir(local.cfg), val);
    free(val);
    len = strlen(box);
    rc = 0;
    local_priv_enter();
    if (box[len - 1] == '/') {
        snprintf(job->where, sizeof(job->where), "maildir=%s", box);
        rc = local_maildir_write(box, msg, local.host, &job->file, &job->res) == 0;
    } else {
        snprintf(job->where, sizeof(job->where), "mbox=%s", box);
        local_mbox_deliver(box, msg, &job->res);
    }
    local_priv_leave();
    free(box);
    return rc;
}

/* local_job_done - log the outcome, answer qmgr, free the job. */
void
local_job_done(struct local_job *job)
{
    struct ipc_delivered r;
    const char          *status;
    char                *orig;
    uint64_t             now = (uint64_t)time(NULL);

    status = job->res.status == IPC_DELIV_OK ? "sent"
             : job->res.status == IPC_DELIV_PERM ? "bounced" : "deferred";
    orig = *job->orig_rcpt && strcmp(job->orig_rcpt, job->rcpt) != 0
           ? xasprintf(", orig_to=<%s>", job->orig_rcpt) : xstrdup("");
    log_info("%s: to=<%s>%s, relay=local, delay=%llu%s%s, dsn=%s, status=%s (%s)",
             job->qid, job->rcpt, orig,
             (unsigned long long)(now > job->arrival ? now - job->arrival : 0),
             *job->where ? ", " : "", job->where, job->res.dsn, status, job->res.text);
    free(orig);

    if (job->conn != NULL) {
        memset(&r, 0, sizeof(r));
        r.qid = job->qid;
        r.rcpt_index = job->rcpt_index;
        r.status = job->res.status;
        r.dsn = job->res.dsn;
        r.text = job->res.text;
        if (ipc_delivered_send(job->conn, job->reqid, &r, -1) == -1)
            log_warnx("%s: cannot answer qmgr (it will defer rcpt_index=%u)", job->qid,
                      job->rcpt_index);
    }
    local_maildir_free(&job->file);
    free(job->qid);
    free(job->rcpt);
    free(job->orig_rcpt);
    free(job);
}

/* local_input_waiting - is another frame already waiting on fd? */
static int
local_input_waiting(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* local_flush - make the batch durable and answer it. */
static void
local_flush(void)
{
    ev_timer_del(local.ev, local.flush_timer);
    local.flush_timer = 0;
    local_batch_flush();
}

/* local_flush_timeout - the batch waited LOCAL_BATCH_WAIT_MS for more: flush it. */
static void
local_flush_timeout(void *arg)
{
    (void)arg;
    local.flush_timer = 0;
    local_flush();
}

/* local_flush_due - end of a turn with a batch: flush it, unless another DELIVER is already
 * waiting on the socket and the batch may still grow (its turn will ask again). */
static void
local_flush_due(void *arg)
{
    (void)arg;
    local.flush_deferred = 0;
    if (local_batch_count() == 0)
        return;
    if (!local.stopping && local.qmgr != NULL && local_batch_count() < LOCAL_BATCH_MAX
        && local_input_waiting(ipc_conn_fd(local.qmgr))) {
        if (local.flush_timer == 0)
            local.flush_timer = ev_timer_add(local.ev, LOCAL_BATCH_WAIT_MS,
                                             local_flush_timeout, NULL);
        return;
    }
    local_flush();
}

/* local_deliver - serve one DELIVER frame from qmgr: answer it now, or add it to the batch. */
static void
local_deliver(struct ipc_conn *conn, const struct ipc_frame *f)
{
    struct ipc_deliver d;
    struct local_msg   msg;
    struct local_job  *job;
    int                batched = 0;

    if (ipc_deliver_dec(f, &d) == -1)
        fatalx("qmgr: malformed %s frame", ipc_type_name(f->type));
    job = xcalloc(1, sizeof(*job));
    job->conn = conn;
    job->reqid = f->reqid;
    job->rcpt_index = d.rcpt_index;
    job->arrival = d.arrival;
    job->qid = xstrdup(d.qid);
    job->rcpt = xstrdup(d.rcpt);
    job->orig_rcpt = xstrdup(d.orig_rcpt);
    job->file.fd = -1;
    memset(&msg, 0, sizeof(msg));
    msg.qid = d.qid;
    msg.sender = d.sender;
    msg.rcpt = d.rcpt;
    msg.body_fd = f->fd;
    msg.size = d.size;
    msg.arrival = d.arrival;
    if (f->fd < 0)
        local_result_set(&job->res, IPC_DELIV_TEMP, "4.3.0", "no body descriptor from qmgr");
    else if (local.stopping)
        local_result_set(&job->res, IPC_DELIV_TEMP, "4.3.2", "local delivery agent stopping");
    else
        batched = local_deliver_one(job, &msg);
    if (f->fd >= 0)
        close(f->fd);
    ipc_deliver_clear(&d);
    if (!batched) {
        local_job_done(job);
        return;
    }
    local_batch_add(job);
    if (local_batch_count() >= LOCAL_BATCH_MAX) {
        local_flush();
    } else if (!local.flush_deferred) {
        local.flush_deferred = 1;
        ev_defer(local.ev, local_flush_due, NULL);
    }
}

/* local_drain - stop once every answer has left (or the drain time is up). */
static void
local_drain(void *arg)
{
    (void)arg;
    if (local.qmgr == NULL || ipc_conn_pending(local.qmgr) == 0
        || ev_now_ms() >= local.drain_deadline) {
        ev_stop(local.ev);
        return;
    }
    ev_timer_add(local.ev, 20, local_drain, NULL);
}

/* local_stop - begin a graceful stop. */
static void
local_stop(const char *why)
{
    if (local.stopping)
        return;
    local.stopping = 1;
    log_info("stopping: %s", why);
    local_flush();
    local.drain_deadline = ev_now_ms() + LOCAL_DRAIN_MS;
    local_drain(NULL);
}

/* local_qmgr_frame - a frame from qmgr, or NULL when the connection is gone. */
static void
local_qmgr_frame(struct ipc_conn *conn, const struct ipc_frame *f, void *arg)
{
    (void)arg;
    if (f == NULL) {
        local_batch_drop(conn);
        if (conn == local.qmgr) {
            log_info("qmgr connection closed; waiting for a new one from master");
            ipc_conn_free(&local.qmgr);
        } else {
            ipc_conn_free(&conn);
        }
        if (local.stopping)
            ev_stop(local.ev);
        return;
    }
    switch (f->type) {
    case IPC_DELIVER:
        local_deliver(conn, f);
        break;
    default:
        fatalx("qmgr: unexpected %s frame (type %u)", ipc_type_name(f->type), f->type);
    }
}

/* local_master_frame - a frame from master, or NULL when master is gone. */
static void
local_master_frame(struct ipc_conn *conn, const struct ipc_frame *f, void *arg)
{
    struct ipc_master_peer p;

    (void)conn;
    (void)arg;
    if (f == NULL) {
        ipc_conn_free(&local.master);
        local_stop("master channel closed");
        return;
    }
    if (f->type != IPC_MASTER_PEER || ipc_master_peer_dec(f, &p) == -1)
        fatalx("master: unexpected or malformed %s frame", ipc_type_name(f->type));
    if (f->fd < 0)
        fatalx("master: peer frame without a descriptor");
    if (p.kind != IPC_PEER_QMGR) {
        log_warnx("master: ignoring a peer of kind %u", p.kind);
        close(f->fd);
        return;
    }
    if (local.stopping) {
        close(f->fd);
        return;
    }
    if (local.qmgr != NULL) {
        log_info("replacing the qmgr connection");
        local_batch_drop(local.qmgr);
        ipc_conn_free(&local.qmgr);
    }
    daemon_fd_prepare(f->fd);
    local.qmgr = ipc_conn_new(local.ev, f->fd, local_qmgr_frame, NULL);
    log_debug("connected to qmgr id=%u", p.id);
}

/* local_signal - SIGTERM/SIGINT stop; SIGHUP reopens the mailbox map. */
static void
local_signal(int sig, void *arg)
{
    (void)arg;
    if (sig == SIGHUP) {
        log_info("SIGHUP: reopening the mailbox map");
        local_map_open();
        return;
    }
    local_stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* local_init_user - when root, look up mailbox_owner and keep only its group. */
static void
local_init_user(void)
{
    const char *owner = config_str(local.cfg, "mailbox_owner");

    if (!priv_is_root()) {
        log_debug("not root: delivering as uid %d", (int)getuid());
    } else {
        if (priv_lookup(owner, &local.uid, &local.gid) == -1)
            fatalx("mailbox_owner %s: no such user", owner);
        if (local.uid == 0)
            fatalx("mailbox_owner %s must not be root", owner);
        /* Root's supplementary groups must not leak into deliveries. */
        if (setgroups(1, &local.gid) == -1)
            fatal("setgroups");
        local.switch_user = 1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
        fatal("prctl(PR_SET_NO_NEW_PRIVS)");
}

/* main - start up, say hello to master, serve qmgr until told to stop. */
int
main(int argc, char **argv)
{
    struct daemon_args args;

    daemon_start(&args, "local", argc, argv);
    local.cfg = args.cfg;
    local.slot = args.slot;

    umask(077);
    signal(SIGPIPE, SIG_IGN);
    local_init_user();
    local.host = xstrdup(daemon_hostname(local.cfg));
    local.map_source = config_path(local.cfg, "mailbox_map");
    local.map_db = xasprintf("%s.db", local.map_source);
    local_map_open();
    local_batch_init();

    if ((local.ev = ev_new()) == NULL)
        fatalx("ev_new");
    if (ev_signal(local.ev, SIGTERM, local_signal, NULL) == -1
        || ev_signal(local.ev, SIGINT, local_signal, NULL) == -1
        || ev_signal(local.ev, SIGHUP, local_signal, NULL) == -1)
        fatalx("cannot watch signals");
    local.master = daemon_master_open(local.ev, IPC_PEER_LOCAL, local_master_frame, NULL);
    log_info("started slot=%d user=%s mailbox_map=%s", local.slot,
             local.switch_user ? config_str(local.cfg, "mailbox_owner") : "(self)",
             *local.map_source ? local.map_source : "(none)");

    if (ev_run(local.ev) == -1)
        fatalx("event loop failed");
    local_batch_flush();

    ipc_conn_free(&local.qmgr);
    ipc_conn_free(&local.master);
    map_close(&local.map);
    free(local.map_db);
    free(local.host);
    ev_free(&local.ev);
    config_free(&local.cfg);
    log_info("stopped: batches=%llu messages=%llu syncfs=%llu syncfs_failed=%llu "
             "file_fsyncs=%llu dir_fsyncs=%llu",
             (unsigned long long)local_batch_stats.batches,
             (unsigned long long)local_batch_stats.messages,
             (unsigned long long)local_batch_stats.syncfs,
             (unsigned long long)local_batch_stats.syncfs_failed,
             (unsigned long long)local_batch_stats.file_fsyncs,
             (unsigned long long)local_batch_stats.dir_fsyncs);
    return 0;
}
