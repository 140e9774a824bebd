/* smtpd - the SMTP server daemon: start-up, listeners, TLS, the master and qmgr channels.
 *
 * Started by master as `smtpd -c DIR -i SLOT [-d]` (doc/internals.md): fd 3 is the master
 * channel, fds 4.. are listening sockets named by $POSTERN_LISTENERS (smtp, submission, smtps,
 * submit: public/submit, where sendmail speaks SMTP and the peer's uid is the sender; its users
 * are read before the chroot, smtpd_submit.c). We read the config, open the recipient maps
 * (libcommon/resolve: virtual_alias_map, alias_map, mailbox_map) and the auth map, load the TLS
 * certificates and keys (a map that cannot be opened or a bad key is fatal: master logs it and
 * throttles the restarts; when master started us because such a file changed, the smtpd we were
 * to replace keeps serving: master_watch.c), drop privileges (mail_owner, chrooted to
 * smtpd_chroot or <queue_directory>/empty) when root, start the password-check threads (after
 * the drop and with signals blocked), say HELLO to master and serve sessions until SIGTERM
 * (graceful: idle sessions get 421, transactions get SMTPD_STOP_GRACE_MS; this is also how a
 * reload replaces us, so established TLS sessions finish on the context they started with) or
 * until master goes away. Session-ticket keys arrive in IPC_MASTER_TLS_KEYS, again at every
 * rotation. SIGUSR1 (master's reload) retires us gracefully: the listeners are closed, open
 * sessions (TLS ones on the context they started with) go on until they end or time out
 * (smtpd_timeout, smtpd_session_timeout), then we exit; SIGTERM during that still stops us as
 * above. After HELLO we send IPC_MASTER_CAPS (counters, log level, pause) and answer
 * IPC_CTL_COUNTERS_REQ, apply IPC_CTL_LOG_LEVEL, and on IPC_CTL_PAUSE stop (or resume) watching
 * the network listeners; public/submit stays served while paused, so local mail (cron,
 * sendmail) still queues. The qmgr socket arrives in IPC_MASTER_PEER, again after a qmgr
 * restart (or a reload); when one goes away, sessions hold MAIL and DATA for up to
 * SMTPD_QMGR_WAIT_MS for the next one, then answer 451. A malformed frame from qmgr or master
 * is a bug in a trusted process: fatalx() and master restarts us. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "ipc_msg.h"
#include "log.h"
#include "priv.h"
#include "smtpd.h"
#include "smtpd_dns.h"
#include "smtpd_dnsbl.h"
#include "smtpd_domain.h"
#include "smtpd_restrict.h"
#include "smtpd_milter.h"
#include "smtpd_login.h"
#include "smtpd_anvil.h"
#include "smtpd_policy.h"

struct smtpd smtpd;

static uint64_t smtpd_stop_timer;

static void smtpd_accept(int fd, int events, void *arg);

/* smtpd_qmgr_up - is there a qmgr to talk to? */
int
smtpd_qmgr_up(void)
{
    return smtpd.qmgr != NULL;
}

/* smtpd_qmgr_expected - see smtpd.h. */
int
smtpd_qmgr_expected(void)
{
    return smtpd.qmgr == NULL && smtpd.qmgr_wait_until > ev_now_ms();
}

/* smtpd_qmgr_wait_end - a qmgr arrived, or waiting for one is over: the sessions that held
 * MAIL or DATA go on (and, without a qmgr, answer 451). */
static void
smtpd_qmgr_wait_end(void)
{
    struct smtpd_session *s, *next;

    smtpd.qmgr_wait_until = 0;
    ev_timer_del(smtpd.ev, smtpd.qmgr_wait_timer);
    smtpd.qmgr_wait_timer = 0;
    for (s = smtpd.sessions; s != NULL; s = next) {
        next = s->next;
        if (s->dead || !s->qmgr_stalled)
            continue;
        s->qmgr_stalled = 0;
        smtpd_session_resume(s);
    }
}

/* smtpd_qmgr_wait_timeout - no qmgr came in SMTPD_QMGR_WAIT_MS. */
static void
smtpd_qmgr_wait_timeout(void *arg)
{
    (void)arg;
    smtpd.qmgr_wait_timer = 0;
    log_warnx("no qmgr for %d ms: MAIL and DATA are answered 451", SMTPD_QMGR_WAIT_MS);
    smtpd_qmgr_wait_end();
}

/* smtpd_exit_now - close everything and leave the loop. */
static void
smtpd_exit_now(const char *why)
{
    struct smtpd_session *s, *next;

    log_info("stopping: %s, sessions=%zu", why, smtpd.nsessions);
    for (s = smtpd.sessions; s != NULL; s = next) {
        next = s->next;
        if (s->dead)
            continue;
        smtpd_session_reply(s, 421, "4.3.2", "%s Service shutting down, closing channel",
                            smtpd.hostname);
        smtpd_session_flush(s);
        smtpd_session_close(s, "shutdown");
    }
    ev_stop(smtpd.ev);
}

/* smtpd_session_gone - a session ended; when stopping, the last one ends the process. */
void
smtpd_session_gone(struct smtpd_session *s)
{
    (void)s;
    smtpd.nsessions--;
    smtpd.stats.sessions = smtpd.nsessions;
    if ((smtpd.stopping || smtpd.retiring) && smtpd.nsessions == 0) {
        log_info("stopping: %s, no sessions left", smtpd.stopping ? "stopped" : "retired");
        ev_stop(smtpd.ev);
    }
}

/* smtpd_close_listeners - stop accepting. */
static void
smtpd_close_listeners(void)
{
    size_t i;

    for (i = 0; i < smtpd.nlisten; i++) {
        if (smtpd.listeners[i].fd < 0)
            continue;
        ev_io_del(smtpd.ev, smtpd.listeners[i].fd);
        close(smtpd.listeners[i].fd);
        smtpd.listeners[i].fd = -1;
    }
}

/* smtpd_sigusr1 - master reloaded: stop accepting, let the open sessions finish (each is
 * bounded by smtpd_timeout and smtpd_session_timeout), then exit. */
static void
smtpd_sigusr1(int sig, void *arg)
{
    (void)arg;
    if (smtpd.stopping || smtpd.retiring)
        return;
    log_info("signal %d: retiring, sessions=%zu finish first", sig, smtpd.nsessions);
    smtpd.retiring = 1;
    smtpd_close_listeners();
    if (smtpd.nsessions == 0)
        ev_stop(smtpd.ev);
}

/* smtpd_pause - IPC_CTL_PAUSE: stop (resume) watching the network listeners; submit
 * (local mail) stays served. Sessions in progress are not touched. */
static void
smtpd_pause(int paused);

/* smtpd_stop_timeout - the grace period is over. */
static void
smtpd_stop_timeout(void *arg)
{
    (void)arg;
    smtpd_stop_timer = 0;
    smtpd_exit_now("grace period over");
}

/* smtpd_sigterm - stop gracefully. */
static void
smtpd_sigterm(int sig, void *arg)
{
    struct smtpd_session *s, *next;

    (void)arg;
    if (smtpd.stopping)
        return;
    log_info("signal %d: stopping, sessions=%zu", sig, smtpd.nsessions);
    smtpd.stopping = 1;
    smtpd_close_listeners();
    for (s = smtpd.sessions; s != NULL; s = next) {
        next = s->next;
        if (!s->dead)
            smtpd_session_stop(s);
    }
    if (smtpd.nsessions == 0) {
        ev_stop(smtpd.ev);
        return;
    }
    smtpd_stop_timer = ev_timer_add(smtpd.ev, SMTPD_STOP_GRACE_MS, smtpd_stop_timeout, NULL);
}

/* smtpd_qmgr_lost - the qmgr channel is gone: fail what waits on it. */
static void
smtpd_qmgr_lost(void)
{
    struct smtpd_session *s, *next;

    ipc_conn_free(&smtpd.qmgr);
    if (!smtpd.stopping && smtpd.master != NULL) {
        /* master starts or reconnects a qmgr at once (reload, restart): wait for it */
        ev_timer_del(smtpd.ev, smtpd.qmgr_wait_timer);
        smtpd.qmgr_wait_until = ev_now_ms() + SMTPD_QMGR_WAIT_MS;
        smtpd.qmgr_wait_timer = ev_timer_add(smtpd.ev, SMTPD_QMGR_WAIT_MS,
                                             smtpd_qmgr_wait_timeout, NULL);
    }
    for (s = smtpd.sessions; s != NULL; s = next) {
        next = s->next;
        if (!s->dead)
            smtpd_data_qmgr_lost(s);
    }
}

/* smtpd_qmgr_frame - OPENED and QUEUED from qmgr. */
static void
smtpd_qmgr_frame(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    struct smtpd_session *s;

    (void)arg;
    if (c != smtpd.qmgr) {
        /* an old connection reporting its end after it was replaced */
        if (f != NULL && f->fd >= 0)
            close(f->fd);
        return;
    }
    if (f == NULL) {
        log_warnx("qmgr connection lost");
        smtpd_qmgr_lost();
        return;
    }
    switch (f->type) {
    case IPC_MSG_OPENED: {
        struct ipc_msg_opened m;

        if (ipc_msg_opened_dec(f, &m) == -1)
            fatalx("qmgr: malformed %s", ipc_type_name(f->type));
        s = smtpd_session_find(f->reqid);
        if (s == NULL || s->state != SMTPD_ST_WAIT_OPEN) {
            /* the client left meanwhile: give the file back */
            if (f->fd >= 0)
                close(f->fd);
            if (m.status == 0 && m.qid[0] != '\0') {
                struct ipc_msg_abort a = { .qid = m.qid };
                (void)ipc_msg_abort_send(smtpd.qmgr, 0, &a, -1);
            }
            return;
        }
        smtpd_data_opened(s, m.status, m.qid, f->fd);
        smtpd_session_resume(s);
        break;
    }
    case IPC_MSG_QUEUED: {
        struct ipc_msg_queued m;

        if (ipc_msg_queued_dec(f, &m) == -1)
            fatalx("qmgr: malformed %s", ipc_type_name(f->type));
        if (f->fd >= 0)
            close(f->fd);
        s = smtpd_session_find(f->reqid);
        if (s == NULL || s->state != SMTPD_ST_WAIT_QUEUED || strcmp(s->qid, m.qid) != 0) {
            log_info("%s: status=%s, client gone before the reply", m.qid,
                     m.status == 0 ? "queued" : "failed");
            return;
        }
        smtpd_data_queued(s, m.status, m.qid, m.text);
        smtpd_session_resume(s);
        break;
    }
    default:
        if (f->fd >= 0)
            close(f->fd);
        fatalx("qmgr: unexpected message %s", ipc_type_name(f->type));
    }
}

/* smtpd_tls_keys - new session-ticket keys from master (newest first); our copy is wiped. */
static void
smtpd_tls_keys(const struct ipc_frame *f)
{
    struct ipc_master_tls_keys m;
    size_t n;

    if (ipc_master_tls_keys_dec(f, &m) == -1 || m.keys_len % TLS_TICKET_KEY_LEN != 0) {
        explicit_bzero((void *)f->payload, f->len);
        fatalx("master: malformed %s", ipc_type_name(f->type));
    }
    n = m.keys_len / TLS_TICKET_KEY_LEN;
    if (n > SMTPD_TICKET_KEYS_MAX)
        n = SMTPD_TICKET_KEYS_MAX;        /* the newest ones; older tickets get a handshake */
    if (smtpd.tls == NULL) {
        log_debug("master: %zu ticket keys, but no TLS here", n);
    } else if (tls_ctx_set_ticket_keys(smtpd.tls,
                                       (const uint8_t (*)[TLS_TICKET_KEY_LEN])m.keys,
                                       n) == -1) {
        log_warnx("TLS: cannot set %zu session-ticket keys", n);
    } else {
        log_debug("TLS: %zu session-ticket keys", n);
    }
    explicit_bzero((void *)f->payload, f->len);
}

/* smtpd_counters - answer master's IPC_CTL_COUNTERS_REQ. */
static void
smtpd_counters(uint32_t reqid)
{
    const char *names[SMTPD_STATS_N];
    uint64_t    v[SMTPD_STATS_N];
    size_t      n = smtpd_stats_counters(&smtpd.stats, names, v, SMTPD_STATS_N);

    daemon_send_counters(smtpd.master, reqid, names, v, n);
}

static void
smtpd_pause(int paused)
{
    size_t n = 0;

    smtpd.paused = paused;
    for (size_t i = 0; i < smtpd.nlisten; i++) {
        struct smtpd_listener *l = &smtpd.listeners[i];

        if (l->fd < 0 || l->svc == SMTPD_SVC_SUBMIT)
            continue;
        if (paused)
            ev_io_del(smtpd.ev, l->fd);
        else if (ev_io_set(smtpd.ev, l->fd, EV_READ, smtpd_accept, l) == -1)
            log_warnx("listener fd %d: cannot watch", l->fd);
        n++;
    }
    log_info("%s: %zu network listeners %s (postern %s smtpd)", paused ? "paused" : "resumed",
             n, paused ? "not accepting" : "accepting again", paused ? "pause" : "resume");
}

/* smtpd_master_control - the control messages we asked for with IPC_MASTER_CAPS; 1 if f
 * was one. Malformed: master is trusted, so it is a bug. */
static int
smtpd_master_control(const struct ipc_frame *f)
{
    struct ipc_ctl_counters_req req;
    struct ipc_ctl_pause        pause;

    switch (f->type) {
    case IPC_CTL_COUNTERS_REQ:
        if (f->fd >= 0 || ipc_ctl_counters_req_dec(f, &req) == -1)
            fatalx("master: malformed %s", ipc_type_name(f->type));
        smtpd_counters(f->reqid);
        return 1;
    case IPC_CTL_LOG_LEVEL:
        daemon_ctl_log_level(f);
        return 1;
    case IPC_CTL_PAUSE:
        if (f->fd >= 0 || ipc_ctl_pause_dec(f, &pause) == -1 || pause.paused > 1)
            fatalx("master: malformed %s", ipc_type_name(f->type));
        if ((int)pause.paused != smtpd.paused)
            smtpd_pause((int)pause.paused);
        return 1;
    }
    return 0;
}

/* smtpd_master_frame - peers and ticket keys from master; EOF means master is gone. */
static void
smtpd_master_frame(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    struct ipc_master_peer m;

    (void)c;
    (void)arg;
    if (f == NULL) {
        ipc_conn_free(&smtpd.master);
        smtpd.stopping = 1;
        smtpd_close_listeners();
        smtpd_exit_now("master gone");
        return;
    }
    if (f->type == IPC_MASTER_TLS_KEYS) {
        if (f->fd >= 0)
            close(f->fd);
        smtpd_tls_keys(f);
        return;
    }
    if (smtpd_master_control(f))
        return;
    if (f->type != IPC_MASTER_PEER) {
        log_debug("master: %s ignored", ipc_type_name(f->type));
        if (f->fd >= 0)
            close(f->fd);
        return;
    }
    if (ipc_master_peer_dec(f, &m) == -1) {
        if (f->fd >= 0)
            close(f->fd);
        fatalx("master: malformed %s", ipc_type_name(f->type));
    }
    if (m.kind == IPC_PEER_ANVIL && f->fd >= 0) {
        smtpd_anvil_peer(f->fd);
        return;
    }
    if (m.kind != IPC_PEER_QMGR || f->fd < 0) {
        log_warnx("master: peer kind=%u without use here", m.kind);
        if (f->fd >= 0)
            close(f->fd);
        return;
    }
    if (smtpd.qmgr != NULL) {
        log_info("qmgr connection replaced");
        smtpd_qmgr_lost();
    }
    if (fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK) == -1)
        log_warn("qmgr socket: fcntl");
    smtpd.qmgr = ipc_conn_new(smtpd.ev, f->fd, smtpd_qmgr_frame, NULL);
    log_debug("qmgr connected id=%u", m.id);
    smtpd_qmgr_wait_end();
}

/* smtpd_accept - take new connections from one listener. */
static void
smtpd_accept(int fd, int events, void *arg)
{
    const struct smtpd_listener *l = arg;
    int                          i;

    (void)events;
    for (i = 0; i < 64 && !smtpd.stopping; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char      addr[64] = "unknown", port[16] = "0";
        int       c = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (c == -1) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
                && errno != ECONNABORTED)
                log_warn("accept: service=%s", l->name);
            return;
        }
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
            snprintf(port, sizeof(port), "%u", ntohs(sin->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
                inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], addr, sizeof(addr));
            else
                inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
            snprintf(port, sizeof(port), "%u", ntohs(sin6->sin6_port));
        } else if (ss.ss_family == AF_UNIX || l->svc == SMTPD_SVC_SUBMIT) {
            /* public/submit: the address in logs and the envelope; the identity is the
             * peer's uid (smtpd_submit_peer) */
            snprintf(addr, sizeof(addr), "127.0.0.1");
            snprintf(port, sizeof(port), "local");
        }
        smtpd_session_accept(c, l, addr, port);
    }
}

/* smtpd_listeners - fds 4.. named by $POSTERN_LISTENERS. */
static void
smtpd_listeners(void)
{
    const char *env = getenv("POSTERN_LISTENERS");
    char       *copy, *tok, *save = NULL;

    if (env == NULL || *env == '\0') {
        log_warnx("POSTERN_LISTENERS is not set: no listeners");
        return;
    }
    copy = xstrdup(env);
    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        struct smtpd_listener *l;
        int                    fd = 4 + (int)smtpd.nlisten;
        enum smtpd_service     svc;

        if (strcmp(tok, "smtp") == 0)
            svc = SMTPD_SVC_SMTP;
        else if (strcmp(tok, "submission") == 0)
            svc = SMTPD_SVC_SUBMISSION;
        else if (strcmp(tok, "smtps") == 0)
            svc = SMTPD_SVC_SMTPS;
        else if (strcmp(tok, "submit") == 0)
            svc = SMTPD_SVC_SUBMIT;
        else
            fatalx("POSTERN_LISTENERS: unknown service \"%s\"", tok);
        if (fcntl(fd, F_GETFD) == -1)
            fatal("listener fd %d (%s)", fd, tok);
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1)
            fatal("listener fd %d: fcntl", fd);
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        smtpd.listeners = xrealloc(smtpd.listeners,
                                   (smtpd.nlisten + 1) * sizeof(*smtpd.listeners));
        l = &smtpd.listeners[smtpd.nlisten++];
        l->fd = fd;
        l->svc = svc;
        l->name = xstrdup(tok);
    }
    free(copy);
}

/* smtpd_mynetworks - the networks whose clients may relay; a malformed one is fatal. */
static void
smtpd_mynetworks(void)
{
    char *const *items;
    size_t       n, i;

    items = config_list(smtpd.cfg, "mynetworks", &n);
    smtpd.mynetworks = xcalloc(n, sizeof(*smtpd.mynetworks));
    for (i = 0; i < n; i++)
        if (cidr_parse(items[i], &smtpd.mynetworks[i]) == -1)
            fatalx("mynetworks: \"%s\" is not a network (address/prefix, host bits zero)",
                   items[i]);
    smtpd.nmynetworks = n;
}

/* smtpd_tls_path - a path from a list item, relative to the config directory. */
static char *
smtpd_tls_path(const char *p, size_t len)
{
    if (len > 0 && p[0] == '/')
        return xstrndup(p, len);
    return xasprintf("%s/%.*s", config_dir(smtpd.cfg), (int)len, p);
}

/* smtpd_tls_init - load certificates and keys (before dropping privileges). Without
 * smtpd_tls_cert_file there is no TLS: STARTTLS is not offered, and an smtps listener is a
 * configuration error. A certificate or key that does not load is fatal. */
static void
smtpd_tls_init(void)
{
    struct tls_server_conf conf;
    struct tls_cert       *certs;
    char *const           *sni;
    const char            *cert = config_path(smtpd.cfg, "smtpd_tls_cert_file");
    const char            *key = config_path(smtpd.cfg, "smtpd_tls_key_file");
    const char            *v;
    char                   err[1024];
    size_t                 nsni, i;
    int                    need = 0;

    for (i = 0; i < smtpd.nlisten; i++)
        if (smtpd.listeners[i].svc != SMTPD_SVC_SMTP)
            need |= 1 << smtpd.listeners[i].svc;
    if ((need & (1 << SMTPD_SVC_SUBMISSION)) && smtpd.auth_map == NULL)
        log_warnx("submission listener without smtpd_auth_map: AUTH is required there, so no "
                  "client can send mail");
    if (*cert == '\0') {
        if (need & (1 << SMTPD_SVC_SMTPS))
            fatalx("an smtps listener needs smtpd_tls_cert_file");
        if (need & (1 << SMTPD_SVC_SUBMISSION))
            log_warnx("submission listener without smtpd_tls_cert_file: STARTTLS is required "
                      "there, so no client can send mail");
        return;
    }
    sni = config_list(smtpd.cfg, "smtpd_tls_sni_certs", &nsni);
    certs = xcalloc(nsni + 1, sizeof(*certs));
    certs[0].cert_file = cert;
    certs[0].key_file = *key ? key : cert;    /* empty: the key is in the certificate file */
    for (i = 0; i < nsni; i++) {
        const char *colon = strchr(sni[i], ':');

        if (colon == NULL) {
            certs[i + 1].cert_file = certs[i + 1].key_file = smtpd_tls_path(sni[i],
                                                                            strlen(sni[i]));
        } else {
            certs[i + 1].cert_file = smtpd_tls_path(sni[i], (size_t)(colon - sni[i]));
            certs[i + 1].key_file = smtpd_tls_path(colon + 1, strlen(colon + 1));
        }
    }
    memset(&conf, 0, sizeof(conf));
    conf.certs = certs;
    conf.ncerts = nsni + 1;
    conf.min_version = config_str(smtpd.cfg, "smtpd_tls_min_version");
    v = config_str(smtpd.cfg, "smtpd_tls_ciphers");
    conf.ciphers = *v ? v : NULL;
    v = config_path(smtpd.cfg, "smtpd_tls_client_ca_file");
    conf.client_ca_file = *v ? v : NULL;
    smtpd.tls = tls_server_ctx_new(&conf, err, sizeof(err));
    if (smtpd.tls == NULL)
        fatalx("TLS: %s", err);
    log_info("TLS: certificates=%zu min_version=%s client_ca=%s", conf.ncerts,
             conf.min_version, conf.client_ca_file ? "yes" : "no");
    for (i = 1; i <= nsni; i++) {
        if (certs[i].key_file != certs[i].cert_file)
            free((char *)certs[i].key_file);
        free((char *)certs[i].cert_file);
    }
    free(certs);
}

/* smtpd_configure_connect - the connect phase and stress (smtpd_session.c). Stress ends a
 * tenth of smtpd_max_sessions below where it began, so that a load hovering at the
 * threshold does not log a transition with every connection. */
static void
smtpd_configure_connect(void)
{
    struct config *cfg = smtpd.cfg;
    long long      pct = config_int(cfg, "smtpd_stress_threshold");
    long long      enter = (smtpd.max_sessions * pct + 99) / 100;
    long long      gap = smtpd.max_sessions / 10 > 1 ? smtpd.max_sessions / 10 : 1;

    smtpd.greet_pause_ms = config_time_ms(cfg, "smtpd_greet_pause");
    smtpd.connect_client_check = !config_bool(cfg, "smtpd_delay_reject");
    smtpd.stress_enter = (size_t)(enter > 0 ? enter : 1);
    smtpd.stress_leave = smtpd.stress_enter > (size_t)gap ? smtpd.stress_enter - (size_t)gap
                                                          : 0;
    smtpd.stress_timeout_ms = config_time_ms(cfg, "smtpd_stress_timeout");
    smtpd.stress_session_timeout_ms = config_time_ms(cfg, "smtpd_stress_session_timeout");
    smtpd.stress_error_limit = config_int(cfg, "smtpd_stress_error_limit");
    if (smtpd.stress_timeout_ms == 0 || smtpd.stress_timeout_ms > smtpd.timeout_ms)
        smtpd.stress_timeout_ms = smtpd.timeout_ms;
    if (smtpd.stress_session_timeout_ms == 0
        || smtpd.stress_session_timeout_ms > smtpd.session_timeout_ms)
        smtpd.stress_session_timeout_ms = smtpd.session_timeout_ms;
    if (smtpd.stress_error_limit > smtpd.error_limit)
        smtpd.stress_error_limit = smtpd.error_limit;
}

/* smtpd_configure - read the settings this daemon uses. */
static void
smtpd_configure(void)
{
    struct config *cfg = smtpd.cfg;
    const char    *v;

    snprintf(smtpd.hostname, sizeof(smtpd.hostname), "%s", daemon_hostname(cfg));
    v = config_str(cfg, "smtpd_banner");
    snprintf(smtpd.banner, sizeof(smtpd.banner), "%s %s", smtpd.hostname,
             *v ? v : "ESMTP Postern");
    smtpd.local_domains = config_list(cfg, "local_domains", &smtpd.nlocal_domains);
    smtpd.size_limit = config_size(cfg, "message_size_limit");
    smtpd.header_limit = config_size(cfg, "header_size_limit");
    smtpd.rcpt_limit = config_int(cfg, "smtpd_recipient_limit");
    smtpd.max_sessions = config_int(cfg, "smtpd_max_sessions");
    smtpd.timeout_ms = config_time_ms(cfg, "smtpd_timeout");
    smtpd.session_timeout_ms = config_time_ms(cfg, "smtpd_session_timeout");
    smtpd.error_limit = config_int(cfg, "smtpd_error_limit");
    smtpd.command_limit = config_int(cfg, "smtpd_command_limit");
    smtpd.reject_bare = strcmp(config_str(cfg, "smtpd_bare_newline"), "reject") == 0;
    smtpd.received_limit = config_int(cfg, "smtpd_received_limit");
    smtpd.tls_handshake_timeout_ms = config_time_ms(cfg, "smtpd_tls_handshake_timeout");
    smtpd.auth_failure_delay_ms = config_time_ms(cfg, "smtpd_auth_failure_delay");
    smtpd.auth_failure_limit = config_int(cfg, "smtpd_auth_failure_limit");
    smtpd_mynetworks();
    {
        char err[512];

        if (smtpd_anvil_init(err, sizeof(err)) == -1)
            fatalx("%s", err);
    }
    if (smtpd.tls_handshake_timeout_ms == 0)
        smtpd.tls_handshake_timeout_ms = 30000;
    if (smtpd.timeout_ms == 0)
        smtpd.timeout_ms = 300000;
    if (smtpd.session_timeout_ms == 0)
        smtpd.session_timeout_ms = 3600000;
    smtpd_configure_connect();
}

/* main - open everything, drop privileges, say HELLO, serve until told to stop. */
int
main(int argc, char **argv)
{
    struct daemon_args args;
    char               err[512];

    daemon_start(&args, "smtpd", argc, argv);
    smtpd.cfg = args.cfg;
    smtpd_configure();
    signal(SIGPIPE, SIG_IGN);

    /* Everything we will ever open, before the chroot. */
    if (*config_path(smtpd.cfg, "mailbox_map") == '\0')
        log_warnx("mailbox_map is empty: every local recipient is unknown");
    smtpd.resolve = resolve_open(smtpd.cfg, err, sizeof(err));
    if (smtpd.resolve == NULL)
        fatalx("%s", err);           /* "virtual_alias_map: path: reason" */
    {
        char perr[1024];

        if (smtpd_policy_init(perr, sizeof(perr)) == -1)   /* access tables, content rules */
            fatalx("policy: %s", perr);
        if (smtpd_login_init(perr, sizeof(perr)) == -1)    /* smtpd_sender_login_map */
            fatalx("%s", perr);
    }
    if (*config_path(smtpd.cfg, "smtpd_auth_map") != '\0') {
        smtpd.auth_map = map_open(config_path(smtpd.cfg, "smtpd_auth_map"), err, sizeof(err));
        if (smtpd.auth_map == NULL)
            fatalx("smtpd_auth_map: %s", err);
        if (pwhash_make("postern: no such user", smtpd.auth_dummy_hash) == -1)
            fatalx("smtpd_auth_map: cannot make a password hash");
    }
    if (fcntl(3, F_GETFD) == -1)
        fatal("master channel fd 3");
    smtpd_listeners();
    for (size_t i = 0; i < smtpd.nlisten; i++)
        if (smtpd.listeners[i].svc == SMTPD_SVC_SUBMIT) {
            smtpd_submit_load();       /* NSS is out of reach after the chroot */
            break;
        }
    smtpd_tls_init();
    tzset();                          /* load the time zone before the chroot */
    {
        time_t    now = time(NULL);
        struct tm tm;
        (void)localtime_r(&now, &tm);
    }
    smtpd.ev = ev_new();
    if (smtpd_dnsbl_init(err, sizeof(err)) == -1 || smtpd_domain_init(err, sizeof(err)) == -1
        || smtpd_restrict_init(err, sizeof(err)) == -1)
        fatalx("%s", err);
    if (smtpd_milter_init(err, sizeof(err)) == -1)   /* resolves inet: names */
        fatalx("%s", err);
    if (smtpd_dns_init(err, sizeof(err)) == -1)   /* reads resolv.conf and hosts */
        fatalx("resolver: %s", err);
    if (priv_is_root()) {
        const char *chroot_dir = config_path(smtpd.cfg, "smtpd_chroot");
        char       *dflt = NULL;

        if (*chroot_dir == '\0')
            chroot_dir = dflt = xasprintf("%s/empty",
                                          config_path(smtpd.cfg, "queue_directory"));
        priv_drop(config_str(smtpd.cfg, "mail_owner"), chroot_dir);
        free(dflt);
    }

    if (ev_signal(smtpd.ev, SIGTERM, smtpd_sigterm, NULL) == -1
        || ev_signal(smtpd.ev, SIGINT, smtpd_sigterm, NULL) == -1
        || ev_signal(smtpd.ev, SIGUSR1, smtpd_sigusr1, NULL) == -1)
        fatal("signals");
    if (smtpd.auth_map != NULL)
        smtpd.pwcheck = smtpd_pwcheck_new(smtpd.ev, SMTPD_PWCHECK_THREADS);
    smtpd.master = daemon_master_open(smtpd.ev, IPC_PEER_SMTPD, smtpd_master_frame, NULL);
    {
        struct ipc_master_caps caps = {
            .caps = IPC_CAP_COUNTERS | IPC_CAP_LOG_LEVEL | IPC_CAP_PAUSE
        };

        if (ipc_master_caps_send(smtpd.master, 0, &caps, -1) == -1)
            fatalx("master: cannot send caps");
    }
    for (size_t i = 0; i < smtpd.nlisten; i++)
        if (ev_io_set(smtpd.ev, smtpd.listeners[i].fd, EV_READ, smtpd_accept,
                      &smtpd.listeners[i]) == -1)
            fatalx("listener fd %d: cannot watch", smtpd.listeners[i].fd);
    log_info("started slot=%d listeners=%zu max_sessions=%lld tls=%s auth=%s", args.slot,
             smtpd.nlisten, smtpd.max_sessions, smtpd.tls ? "yes" : "no",
             smtpd.auth_map ? "yes" : "no");
    if (ev_run(smtpd.ev) == -1)
        fatalx("event loop failed");
    smtpd_session_reap();
    ev_timer_del(smtpd.ev, smtpd_stop_timer);
    ev_timer_del(smtpd.ev, smtpd.qmgr_wait_timer);
    ipc_conn_free(&smtpd.qmgr);
    smtpd_anvil_free();
    ipc_conn_free(&smtpd.master);
    smtpd_pwcheck_free(&smtpd.pwcheck);
    resolve_close(&smtpd.resolve);
    smtpd_policy_free();
    smtpd_dns_free();
    smtpd_dnsbl_free();
    smtpd_submit_free();
    map_close(&smtpd.auth_map);
    smtpd_login_free();
    tls_ctx_free(&smtpd.tls);
    log_info("stopped");
    return 0;
}
