/* smtp - the outbound SMTP/LMTP delivery agent.
 *
 * Started by master as `smtp -c DIR -i SLOT [-d]` with its master channel on fd 3 (see
 * doc/internals.md). It sets up the resolver (reading /etc/resolv.conf and /etc/hosts, and the
 * DNSSEC trust anchor for DANE) and the TLS client context (the CA store), then drops to
 * mail_owner in the empty chroot (unless smtp_chroot = no: then an lmtp:unix:/path is reached
 * where it is), says HELLO and waits for master to hand it a socket to qmgr (again after each
 * qmgr restart). Each IPC_RELAY (one message, one next hop, n recipients, a read descriptor on
 * the body) becomes a job that runs on the event loop alongside many others (smtp_session.c),
 * and is answered by exactly one IPC_RELAYED with a result per recipient, in the same order,
 * with the same request id; every recipient also gets one log line.
 *
 * Failures: a malformed frame from qmgr or master is a bug and fatal (master restarts us;
 * qmgr defers what was in flight). SIGTERM/SIGINT or EOF on the master channel: new jobs
 * are deferred at once, jobs in progress get up to SMTP_STOP_MS to finish, then the rest
 * are answered as temporary failures and the process exits. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "daemon.h"
#include "dns.h"
#include "ev.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "map.h"
#include "priv.h"
#include "smtp.h"
#include "tls.h"

#define SMTP_STOP_MS     10000    /* jobs in progress may finish within this at a stop */
#define SMTP_DRAIN_MS    3000     /* then answers may take this long to leave */
#define SMTP_CA_BUNDLE   "/etc/ssl/certs/ca-certificates.crt"

static struct {
    struct config       *cfg;
    struct ev           *ev;
    struct ipc_conn     *master;
    struct ipc_conn     *qmgr;
    uint64_t             qmgr_gen;
    int                  slot;
    char                *host;
    struct smtp_settings set;
    int                  stopping;
    uint64_t             stop_deadline;
} smtp;

/* smtp_status_word - the log's status for an ipc_deliv_status. */
static const char *
smtp_status_word(uint32_t status)
{
    return status == IPC_DELIV_OK ? "sent" : status == IPC_DELIV_PERM ? "bounced"
                                                                       : "deferred";
}

/* smtp_job_free - everything a job holds. */
static void
smtp_job_free(struct smtp_job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free(j->rcpts[i]);
        free(j->orcpts[i]);
        free(j->res[i].text);
    }
    free(j->rcpts);
    free(j->orcpts);
    free(j->idx);
    free(j->notify);
    free(j->res);
    free(j->qid);
    free(j->sender);
    free(j->envid);
    free(j->transport);
    free(j->nexthop);
    if (j->fd >= 0)
        close(j->fd);
    free(j);
}

void
smtp_job_done(struct smtp_job *j)
{
    struct ipc_relayed r;
    uint32_t          *status = xcalloc(j->n ? j->n : 1, sizeof(*status));
    uint32_t          *flags = xcalloc(j->n ? j->n : 1, sizeof(*flags));
    const char       **dsn = xcalloc(j->n ? j->n : 1, sizeof(*dsn));
    const char       **text = xcalloc(j->n ? j->n : 1, sizeof(*text));
    double             delay = (double)(ev_now_ms() - j->start_ms) / 1000.0;

    for (size_t i = 0; i < j->n; i++) {
        struct smtp_result *res = &j->res[i];

        if (res->status == SMTP_OPEN) {        /* a bug: never leave one unanswered */
            res->status = IPC_DELIV_TEMP;
            snprintf(res->dsn, sizeof(res->dsn), "4.3.0");
            free(res->text);
            res->text = xstrdup("delivery ended without a result");
        }
        status[i] = res->status;
        flags[i] = res->flags;
        dsn[i] = res->dsn;
        text[i] = res->text ? res->text : "";
        log_info("%s: to=<%s>, relay=%s, delay=%.2f, tls=%s, dsn=%s, status=%s (%s)",
                 j->qid, j->rcpts[i], *j->relay ? j->relay : "none", delay,
                 *j->tls ? j->tls : "none", res->dsn, smtp_status_word(res->status),
                 text[i]);
    }
    memset(&r, 0, sizeof(r));
    r.qid = j->qid;
    r.relay = j->relay;
    r.tls = j->tls;
    r.rcpt_index = j->idx;
    r.rcpt_index_n = (uint32_t)j->n;
    r.status = status;
    r.status_n = (uint32_t)j->n;
    r.dsn = dsn;
    r.dsn_n = (uint32_t)j->n;
    r.text = text;
    r.text_n = (uint32_t)j->n;
    r.flags = flags;
    r.flags_n = (uint32_t)j->n;
    if (smtp.qmgr == NULL || j->qmgr_gen != smtp.qmgr_gen)
        log_warnx("%s: qmgr connection gone; result not reported (qmgr retries)", j->qid);
    else if (ipc_relayed_send(smtp.qmgr, j->reqid, &r, -1) == -1)
        log_warnx("%s: cannot answer qmgr (it will retry)", j->qid);
    free(status);
    free(flags);
    free(dsn);
    free(text);
    smtp_job_free(j);
}

/* smtp_job_fail_all - every recipient gets the same outcome (used before delivery). */
static void
smtp_job_fail_all(struct smtp_job *j, uint32_t status, const char *dsn, const char *text)
{
    for (size_t i = 0; i < j->n; i++) {
        j->res[i].status = status;
        snprintf(j->res[i].dsn, sizeof(j->res[i].dsn), "%s", dsn);
        free(j->res[i].text);
        j->res[i].text = xstrdup(text);
    }
}

/* smtp_relay - one IPC_RELAY from qmgr: build the job and start it. */
static void
smtp_relay(const struct ipc_frame *f)
{
    struct ipc_relay d;
    struct smtp_job *j;

    if (ipc_relay_dec(f, &d) == -1)
        fatalx("qmgr: malformed %s frame", ipc_type_name(f->type));
    if (d.rcpt_index_n != d.rcpts_n || d.orcpts_n != d.rcpts_n || d.notify_n != d.rcpts_n)
        fatalx("qmgr: relay %s: recipient arrays of different lengths", d.qid);
    j = xcalloc(1, sizeof(*j));
    j->reqid = f->reqid;
    j->qmgr_gen = smtp.qmgr_gen;
    j->qid = xstrdup(d.qid);
    j->sender = xstrdup(d.sender);
    j->envid = xstrdup(d.envid);
    j->transport = xstrdup(d.transport);
    j->nexthop = xstrdup(d.nexthop);
    j->flags = d.flags;
    j->ret = d.ret;
    j->tls_level = d.tls_level;
    j->size = d.size;
    j->n = d.rcpts_n;
    j->fd = f->fd;
    j->start_ms = ev_now_ms();
    j->rcpts = xcalloc(j->n + 1, sizeof(*j->rcpts));
    j->orcpts = xcalloc(j->n + 1, sizeof(*j->orcpts));
    j->idx = xcalloc(j->n + 1, sizeof(*j->idx));
    j->notify = xcalloc(j->n + 1, sizeof(*j->notify));
    j->res = xcalloc(j->n + 1, sizeof(*j->res));
    for (size_t i = 0; i < j->n; i++) {
        j->rcpts[i] = xstrdup(d.rcpts[i]);
        j->orcpts[i] = xstrdup(d.orcpts[i]);
        j->idx[i] = d.rcpt_index[i];
        j->notify[i] = d.notify[i];
        j->res[i].status = SMTP_OPEN;
    }
    ipc_relay_clear(&d);
    j->msg.sender = j->sender;
    j->msg.size = j->size;
    j->msg.flags = j->flags & (SMTP_MSG_SMTPUTF8 | SMTP_MSG_8BITMIME);
    j->msg.envid = j->envid;
    j->msg.ret = j->ret;
    j->msg.rcpts = (const char *const *)j->rcpts;
    j->msg.orcpts = (const char *const *)j->orcpts;
    j->msg.notify = j->notify;
    j->msg.nrcpt = j->n;

    if (j->fd < 0) {
        smtp_job_fail_all(j, IPC_DELIV_TEMP, "4.3.0", "no body descriptor from qmgr");
        smtp_job_done(j);
        return;
    }
    if (smtp.stopping) {
        smtp_job_fail_all(j, IPC_DELIV_TEMP, "4.3.2", "smtp delivery agent stopping");
        smtp_job_done(j);
        return;
    }
    if (j->n == 0) {
        smtp_job_done(j);
        return;
    }
    smtp_deliver(j);
}

/* smtp_drain - stop once answers have left (or the drain time is up). */
static void
smtp_drain(void *arg)
{
    (void)arg;
    if (smtp.qmgr == NULL || ipc_conn_pending(smtp.qmgr) == 0
        || ev_now_ms() >= smtp.stop_deadline + SMTP_DRAIN_MS) {
        ev_stop(smtp.ev);
        return;
    }
    ev_timer_add(smtp.ev, 20, smtp_drain, NULL);
}

/* smtp_stop_check - jobs done (or out of time): answer the rest, then drain and stop. */
static void
smtp_stop_check(void *arg)
{
    (void)arg;
    if (smtp_session_active() > 0 && ev_now_ms() < smtp.stop_deadline) {
        ev_timer_add(smtp.ev, 50, smtp_stop_check, NULL);
        return;
    }
    smtp_session_abort_all("smtp delivery agent stopping");
    smtp_session_idle_close();
    smtp_drain(NULL);
}

/* smtp_stop - begin a graceful stop. */
static void
smtp_stop(const char *why)
{
    if (smtp.stopping)
        return;
    smtp.stopping = 1;
    log_info("stopping: %s", why);
    smtp.stop_deadline = ev_now_ms() + SMTP_STOP_MS;
    smtp_session_idle_close();
    smtp_stop_check(NULL);
}

/* smtp_qmgr_frame - a frame from qmgr, or NULL when the connection is gone. */
static void
smtp_qmgr_frame(struct ipc_conn *conn, const struct ipc_frame *f, void *arg)
{
    (void)arg;
    if (f == NULL) {
        if (conn == smtp.qmgr) {
            log_info("qmgr connection closed; waiting for a new one from master");
            ipc_conn_free(&smtp.qmgr);
            smtp.qmgr_gen++;
        } else {
            ipc_conn_free(&conn);
        }
        return;
    }
    switch (f->type) {
    case IPC_RELAY:
        smtp_relay(f);
        break;
    default:
        fatalx("qmgr: unexpected %s frame (type %u)", ipc_type_name(f->type), f->type);
    }
}

/* smtp_master_frame - a frame from master, or NULL when master is gone. */
static void
smtp_master_frame(struct ipc_conn *conn, const struct ipc_frame *f, void *arg)
{
    struct ipc_master_peer p;

    (void)conn;
    (void)arg;
    if (f == NULL) {
        ipc_conn_free(&smtp.master);
        smtp_stop("master channel closed");
        return;
    }
    if (f->type != IPC_MASTER_PEER || ipc_master_peer_dec(f, &p) == -1)
        fatalx("master: unexpected or malformed %s frame", ipc_type_name(f->type));
    if (f->fd < 0)
        fatalx("master: peer frame without a descriptor");
    if (p.kind != IPC_PEER_QMGR || smtp.stopping) {
        if (p.kind != IPC_PEER_QMGR)
            log_warnx("master: ignoring a peer of kind %u", p.kind);
        close(f->fd);
        return;
    }
    if (smtp.qmgr != NULL) {
        log_info("replacing the qmgr connection");
        ipc_conn_free(&smtp.qmgr);
    }
    daemon_fd_prepare(f->fd);
    smtp.qmgr = ipc_conn_new(smtp.ev, f->fd, smtp_qmgr_frame, NULL);
    smtp.qmgr_gen++;
    log_debug("connected to qmgr id=%u", p.id);
}

/* smtp_signal - SIGTERM/SIGINT stop. */
static void
smtp_signal(int sig, void *arg)
{
    (void)arg;
    if (sig == SIGHUP)
        return;     /* settings are read at start; master replaces us on reload */
    smtp_stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* smtp_tls_init - the client context; the CA store is read now, before the chroot. */
static struct tls_ctx *
smtp_tls_init(void)
{
    struct tls_client_conf conf;
    struct tls_ctx        *t;
    const char            *ca = config_path(smtp.cfg, "smtp_tls_ca_file");
    char                   err[512];

    memset(&conf, 0, sizeof(conf));
    /* The system store is a directory read lazily, which the chroot would hide: load the
     * bundle file instead. */
    if (*ca == '\0' && access(SMTP_CA_BUNDLE, R_OK) == 0)
        ca = SMTP_CA_BUNDLE;
    conf.ca_file = *ca ? ca : NULL;
    if ((t = tls_client_ctx_new(&conf, err, sizeof(err))) == NULL)
        log_warnx("TLS client context: %s (STARTTLS disabled)", err);
    return t;
}

/* smtp_dnssec_init - the validating resolver for DANE, with dnssec_trust_anchor_file read
 * now (the chroot hides it later). Without it level dane is opportunistic and dane-only
 * defers: a broken anchor should not stop all mail, so it is a warning, not fatal. Quiet
 * when the default file is simply absent and no default level asks for DANE. */
static void
smtp_dnssec_init(void)
{
    const char *ta = config_path(smtp.cfg, "dnssec_trust_anchor_file");
    const char *level = config_str(smtp.cfg, "smtp_tls_security_level");
    int         dane = strncasecmp(level, "dane", 4) == 0;
    char        err[512];

    if (*ta == '\0') {
        if (dane)
            log_warnx("smtp_tls_security_level = %s with dnssec_trust_anchor_file empty: "
                      "no DNSSEC validation, so no DANE", level);
        return;
    }
    if (!dane && access(ta, F_OK) == -1 && errno == ENOENT) {
        log_debug("no DNSSEC trust anchor (%s): DANE unavailable", ta);
        return;
    }
    if (dns_dnssec_init(ta, err, sizeof(err)) == -1)
        log_warnx("DNSSEC validation unavailable, so no DANE: %s", err);
}

/* smtp_sasl_open - smtp_sasl_password_map, opened now: it is root's secret, out of reach
 * once we run as mail_owner in the chroot. NULL when not set; fatal when it cannot be
 * opened (mail to a smarthost would otherwise go out without its login). */
static struct map *
smtp_sasl_open(void)
{
    const char *source = config_path(smtp.cfg, "smtp_sasl_password_map");
    struct map *m;
    char        err[512];

    if (*source == '\0')
        return NULL;
    if ((m = map_open(source, err, sizeof(err))) == NULL)
        fatalx("smtp_sasl_password_map: %s", err);
    return m;
}

/* smtp_chroot_dir - smtpd_chroot, else <queue_directory>/empty. */
static char *
smtp_chroot_dir(void)
{
    const char *dir = config_path(smtp.cfg, "smtpd_chroot");

    if (*dir)
        return xstrdup(dir);
    return xasprintf("%s/empty", config_path(smtp.cfg, "queue_directory"));
}

/* main - start up, drop privileges, say hello to master, serve qmgr until told to stop. */
int
main(int argc, char **argv)
{
    struct daemon_args args;
    char               err[1024], *root;
    char *const       *servers;
    size_t             nservers;

    daemon_start(&args, "smtp", argc, argv);
    smtp.cfg = args.cfg;
    smtp.slot = args.slot;

    umask(077);
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)(getpid() ^ time(NULL)));
    smtp.host = xstrdup(daemon_hostname(smtp.cfg));
    if ((smtp.ev = ev_new()) == NULL)
        fatalx("ev_new");

    /* Open everything needed, then drop privileges. */
    servers = config_list(smtp.cfg, "dns_servers", &nservers);
    if (dns_init(smtp.ev, servers, nservers, config_bool(smtp.cfg, "dns_lan_zones"), err,
                 sizeof(err)) == -1)
        fatalx("resolver: %s", err);
    smtp_dnssec_init();
    smtp.set.ev = smtp.ev;
    smtp.set.tls = smtp_tls_init();
    smtp.set.helo_name = smtp.host;
    smtp.set.connect_timeout_ms = config_time_ms(smtp.cfg, "smtp_connect_timeout");
    smtp.set.reply_timeout_ms = config_time_ms(smtp.cfg, "smtp_reply_timeout");
    smtp.set.reuse_ms = config_time_ms(smtp.cfg, "smtp_connection_reuse_time");
    smtp.set.max_connections = (size_t)config_int(smtp.cfg, "smtp_max_connections");
    smtp.set.sasl_map = smtp_sasl_open();
    smtp_session_init(&smtp.set);
    root = config_bool(smtp.cfg, "smtp_chroot") ? smtp_chroot_dir() : NULL;
    if (priv_is_root()) {
        priv_drop(config_str(smtp.cfg, "mail_owner"), root);
        smtp.set.chroot = root;
    } else
        log_debug("not root: running as uid %d without chroot", (int)getuid());

    if (ev_signal(smtp.ev, SIGTERM, smtp_signal, NULL) == -1
        || ev_signal(smtp.ev, SIGINT, smtp_signal, NULL) == -1
        || ev_signal(smtp.ev, SIGHUP, smtp_signal, NULL) == -1)
        fatalx("cannot watch signals");
    smtp.master = daemon_master_open(smtp.ev, IPC_PEER_SMTP, smtp_master_frame, NULL);
    log_info("started slot=%d helo=%s dns=%s dnssec=%s tls=%s max_connections=%zu",
             smtp.slot, smtp.host, nservers ? servers[0] : "resolv.conf",
             dns_dnssec_enabled() ? "yes" : "no", smtp.set.tls ? "yes" : "no",
             smtp.set.max_connections);

    if (ev_run(smtp.ev) == -1)
        fatalx("event loop failed");

    smtp_session_idle_close();
    ipc_conn_free(&smtp.qmgr);
    ipc_conn_free(&smtp.master);
    dns_free();
    tls_ctx_free(&smtp.set.tls);
    map_close(&smtp.set.sasl_map);
    free(root);
    free(smtp.host);
    ev_free(&smtp.ev);
    config_free(&smtp.cfg);
    log_info("stopped");
    return 0;
}
