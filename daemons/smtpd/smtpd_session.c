/* smtpd_session - one client connection: plain or TLS I/O, buffers, timers, the input loop.
 *
 * Input is read into a bounded buffer and processed in order: command lines go to
 * smtpd_cmd (or, during an AUTH exchange, to its continuation handler), DATA bytes to
 * smtpd_data. While a session waits for qmgr (MSG_OPENED or MSG_QUEUED), for a password
 * check on a worker thread (SMTPD_ST_AUTH_CHECKING) or for a failed AUTH's delay, nothing
 * more is parsed; input stays buffered until SMTPD_IN_MAX and then
 * the socket is simply not read. Replies collect in s->out and are written once per turn of
 * the loop, so a pipelined batch gets its replies in one write (TCP_NODELAY is set).
 *
 * The socket is reached only through s->io: plain recv/send, or libtls once STARTTLS (after
 * its 220 is written) or an smtps accept started a handshake. STARTTLS throws away every
 * byte already buffered from the client and reads nothing more in plaintext (CVE-2011-0411),
 * so no pipelined plaintext is ever taken as a command inside TLS. TLS reads may want the
 * socket writable and writes readable; both are watched accordingly, and bytes OpenSSL has
 * already decrypted are drained before waiting on epoll again. A handshake is bounded by
 * smtpd_tls_handshake_timeout; its failure ends only that session.
 *
 * Idle sessions hold little memory: reads go through one process-wide buffer and buffers
 * that grew (a message, a burst of pipelining) are given back once empty. A closed session
 * is unlinked at once and freed at the end of the loop turn, so callers up the stack may
 * still look at it. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "smtp_reply.h"
#include "smtpd.h"

#define SMTPD_HASH_SIZE 4096

static struct smtpd_session *smtpd_session_hash[SMTPD_HASH_SIZE];
static int                   smtpd_session_reap_queued;
static char                  smtpd_session_rbuf[SMTPD_IN_MAX];   /* every read lands here */

static void smtpd_session_io(int fd, int events, void *arg);
static void smtpd_session_process(struct smtpd_session *);
static void smtpd_session_pull(struct smtpd_session *);
static void smtpd_session_tls_handshake(struct smtpd_session *);

/* smtpd_session_plain_read - the plain-socket I/O layer. */
static ssize_t
smtpd_session_plain_read(struct smtpd_session *s, void *p, size_t n)
{
    return recv(s->fd, p, n, 0);
}

/* smtpd_session_plain_write - never raises SIGPIPE. */
static ssize_t
smtpd_session_plain_write(struct smtpd_session *s, const void *p, size_t n)
{
    return send(s->fd, p, n, MSG_NOSIGNAL);
}

static const struct smtpd_io smtpd_session_plain = {
    smtpd_session_plain_read, smtpd_session_plain_write,
};

/* smtpd_session_tls_read - the TLS I/O layer; a read that needs the socket writable
 * (a pending TLS write) says so for smtpd_session_watch(). */
static ssize_t
smtpd_session_tls_read(struct smtpd_session *s, void *p, size_t n)
{
    ssize_t r = tls_conn_read(s->tls, p, n);

    s->tls_read_wants_write = 0;
    if (r >= 0)
        return r;
    if (r == TLS_WANT_WRITE)
        s->tls_read_wants_write = 1;
    errno = r == TLS_ERROR ? EPROTO : EAGAIN;
    return -1;
}

/* smtpd_session_tls_write - likewise, a write may need the socket readable. */
static ssize_t
smtpd_session_tls_write(struct smtpd_session *s, const void *p, size_t n)
{
    ssize_t r = tls_conn_write(s->tls, p, n);

    s->tls_write_wants_read = 0;
    if (r > 0)
        return r;
    if (r == TLS_WANT_READ)
        s->tls_write_wants_read = 1;
    errno = r == TLS_WANT_READ || r == TLS_WANT_WRITE ? EAGAIN : EPROTO;
    return -1;
}

static const struct smtpd_io smtpd_session_tls = {
    smtpd_session_tls_read, smtpd_session_tls_write,
};

/* smtpd_session_io_error - why a read or write failed, for the disconnect line. */
static const char *
smtpd_session_io_error(const struct smtpd_session *s, const char *what)
{
    static char why[320];

    if (errno == EPROTO && s->tls != NULL) {
        snprintf(why, sizeof(why), "%s: TLS: %s", what, tls_conn_error(s->tls));
        return why;
    }
    return what;
}

/* smtpd_session_find - a live session by id (the IPC request id). */
struct smtpd_session *
smtpd_session_find(uint32_t id)
{
    struct smtpd_session *s;

    for (s = smtpd_session_hash[id % SMTPD_HASH_SIZE]; s != NULL; s = s->hnext)
        if (s->id == id)
            return s->dead ? NULL : s;
    return NULL;
}

/* smtpd_session_unhash - remove from the id hash. */
static void
smtpd_session_unhash(struct smtpd_session *s)
{
    struct smtpd_session **pp = &smtpd_session_hash[s->id % SMTPD_HASH_SIZE];

    while (*pp != NULL) {
        if (*pp == s) {
            *pp = s->hnext;
            return;
        }
        pp = &(*pp)->hnext;
    }
}

/* smtpd_session_may_read - would we take more input from the client now? */
static int
smtpd_session_may_read(const struct smtpd_session *s)
{
    return !s->closing && !s->read_eof && s->in.len < SMTPD_IN_MAX
        && s->out.len < SMTPD_OUT_MAX && s->tls_phase != SMTPD_TLS_STARTING;
}

/* smtpd_session_pull_timer - decrypted bytes wait inside OpenSSL: read them now. */
static void
smtpd_session_pull_timer(void *arg)
{
    struct smtpd_session *s = arg;

    s->pull_timer = 0;
    smtpd_session_pull(s);
}

/* smtpd_session_trim - give back buffers that grew and are empty again; the input buffer
 * only between transactions, so a message streams through one buffer. */
static void
smtpd_session_trim(struct smtpd_session *s)
{
    if (s->in.len == 0 && s->in.cap > SMTPD_BUF_KEEP
        && (s->state == SMTPD_ST_CONNECTED || s->state == SMTPD_ST_GREETED)) {
        explicit_bzero(s->in.data, s->in.cap);
        buf_release(&s->in);
        buf_init(&s->in, 256);
    }
    if (s->out.len == 0 && s->out.cap > SMTPD_BUF_KEEP) {
        buf_release(&s->out);
        buf_init(&s->out, 256);
    }
}

/* smtpd_session_watch - watch what the session needs now. */
static void
smtpd_session_watch(struct smtpd_session *s)
{
    int ev = 0;

    if (s->dead)
        return;
    if (s->tls_phase == SMTPD_TLS_HANDSHAKE) {
        ev = s->tls_hs_events;
    } else {
        if (smtpd_session_may_read(s))
            ev |= EV_READ;
        if (s->out.len > 0 && s->state != SMTPD_ST_WAIT_OPEN)
            ev |= EV_WRITE;
        if (s->tls != NULL) {
            int want = ev;

            /* OpenSSL may hold decrypted bytes that epoll cannot announce */
            if ((want & EV_READ) && s->pull_timer == 0 && tls_conn_pending(s->tls) > 0)
                s->pull_timer = ev_timer_add(smtpd.ev, 0, smtpd_session_pull_timer, s);
            /* a TLS read may wait for the socket to be writable and a write for it to be
             * readable: watch that instead, or a ready socket would wake us in vain */
            ev = 0;
            if (want & EV_READ)
                ev |= s->tls_read_wants_write ? EV_WRITE : EV_READ;
            if (want & EV_WRITE)
                ev |= s->tls_write_wants_read ? EV_READ : EV_WRITE;
        }
    }
    smtpd_session_trim(s);
    if (ev == s->io_events)
        return;
    s->io_events = ev;
    if (ev == 0)
        ev_io_del(smtpd.ev, s->fd);
    else if (ev_io_set(smtpd.ev, s->fd, ev, smtpd_session_io, s) == -1)
        smtpd_session_close(s, "epoll");
}

/* smtpd_session_reply - queue a reply; it goes out with the rest of this batch. */
void
smtpd_session_reply(struct smtpd_session *s, int code, const char *enh, const char *fmt, ...)
{
    char    text[SMTP_REPLY_LINE_MAX];
    va_list ap;

    if (s->dead || s->closing || s->tls_phase == SMTPD_TLS_STARTING
        || s->tls_phase == SMTPD_TLS_HANDSHAKE)
        return;                       /* nothing may follow "220 Ready to start TLS" */
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    smtp_reply(&s->out, code, enh, "%s", text);
}

/* smtpd_session_flush - write what we can of the queued replies; close when done if asked. */
void
smtpd_session_flush(struct smtpd_session *s)
{
    while (!s->dead && s->out.len > 0) {
        ssize_t n = s->io->write(s, s->out.data, s->out.len);

        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            smtpd_session_close(s, smtpd_session_io_error(s, "write error"));
            return;
        }
        buf_consume(&s->out, (size_t)n);
    }
    if (s->dead)
        return;
    if (s->closing && s->out.len == 0) {
        smtpd_session_close(s, NULL);
        return;
    }
    if (s->tls_phase == SMTPD_TLS_STARTING && s->out.len == 0) {
        smtpd_session_starttls(s);   /* the 220 is out: the handshake may begin */
        return;
    }
    smtpd_session_watch(s);
}

/* smtpd_session_error - count an error reply; at the limit say 421 and close. */
int
smtpd_session_error(struct smtpd_session *s)
{
    if (++s->errors < smtpd.error_limit)
        return 0;
    smtpd_session_reply(s, 421, "4.7.0", "%s Error: too many errors", smtpd.hostname);
    s->closing = 1;
    return -1;
}

/* smtpd_session_idle_timer - smtpd_timeout without client input (not while we wait). */
static void
smtpd_session_idle_timer(void *arg)
{
    struct smtpd_session *s = arg;
    uint64_t now = ev_now_ms(), due = s->last_active + smtpd.timeout_ms;

    s->idle_timer = 0;
    if (s->state == SMTPD_ST_WAIT_OPEN || s->state == SMTPD_ST_WAIT_QUEUED
        || s->state == SMTPD_ST_AUTH_CHECKING || s->auth_timer != 0) {
        s->last_active = now;
        due = now + smtpd.timeout_ms;
    }
    if (now < due) {
        s->idle_timer = ev_timer_add(smtpd.ev, due - now, smtpd_session_idle_timer, s);
        return;
    }
    log_info("timeout after %s from [%s]", s->state == SMTPD_ST_DATA ? "DATA" : "command",
             s->addr);
    s->closing = 0;
    smtpd_session_reply(s, 421, "4.4.2", "%s Error: timeout exceeded", smtpd.hostname);
    s->closing = 1;
    smtpd_session_flush(s);
    if (!s->dead)
        smtpd_session_close(s, "timeout");
}

/* smtpd_session_total_timer - smtpd_session_timeout for the whole session. */
static void
smtpd_session_total_timer(void *arg)
{
    struct smtpd_session *s = arg;

    s->session_timer = 0;
    log_info("session timeout from [%s]", s->addr);
    s->closing = 0;
    smtpd_session_reply(s, 421, "4.4.2", "%s Error: session time limit exceeded",
                        smtpd.hostname);
    s->closing = 1;
    smtpd_session_flush(s);
    if (!s->dead)
        smtpd_session_close(s, "session timeout");
}

/* smtpd_session_tls_timeout - the handshake took too long. */
static void
smtpd_session_tls_timeout(void *arg)
{
    struct smtpd_session *s = arg;

    s->tls_timer = 0;
    smtpd.stats.tls_failures++;
    log_info("TLS handshake timeout from [%s] after %" PRIu64 "ms", s->addr,
             smtpd.tls_handshake_timeout_ms);
    smtpd_session_close(s, "TLS handshake timeout");
}

/* smtpd_session_tls_begin - put TLS under the session and start the handshake. */
static void
smtpd_session_tls_begin(struct smtpd_session *s)
{
    s->tls = tls_conn_server(smtpd.tls, s->fd);
    if (s->tls == NULL) {
        log_warnx("TLS session setup failed for [%s]", s->addr);
        smtpd_session_close(s, "TLS setup failed");
        return;
    }
    s->io = &smtpd_session_tls;
    s->tls_phase = SMTPD_TLS_HANDSHAKE;
    s->tls_hs_events = EV_READ;
    s->tls_timer = ev_timer_add(smtpd.ev, smtpd.tls_handshake_timeout_ms,
                                smtpd_session_tls_timeout, s);
    smtpd_session_tls_handshake(s);  /* the ClientHello may be here already */
}

/* smtpd_session_starttls - "220 Ready to start TLS" is written: begin the handshake. The
 * plaintext input was thrown away when STARTTLS was taken (smtpd_session_process), and
 * nothing was read since. */
void
smtpd_session_starttls(struct smtpd_session *s)
{
    buf_wipe(&s->in);
    smtp_cmd_line_init(&s->line);
    smtpd_session_tls_begin(s);
}

/* smtpd_session_tls_established - log the session's facts; SMTPS greets now, STARTTLS
 * starts over from before EHLO. */
static void
smtpd_session_tls_established(struct smtpd_session *s)
{
    const struct tls_facts *f = tls_conn_facts(s->tls);

    ev_timer_del(smtpd.ev, s->tls_timer);
    s->tls_timer = 0;
    s->tls_phase = SMTPD_TLS_ON;
    s->last_active = ev_now_ms();
    smtpd.stats.tls_sessions++;
    log_info("TLS connection established from [%s]: %s with cipher %s (%d/%d bits)"
             " resumed=%s sni=%s%s%s%s", s->addr, f->version, f->cipher, f->bits, f->bits,
             f->resumed ? "yes" : "no", f->sni ? f->sni : "none",
             f->peer_subject[0] ? " client_cert=\"" : "", f->peer_subject,
             f->peer_subject[0] ? (f->peer_verified ? "\" verified" : "\" unverified") : "");
    if (s->svc == SMTPD_SVC_SMTPS)
        smtp_reply(&s->out, 220, NULL, "%s", smtpd.banner);
    else
        smtpd_cmd_session_reset(s);
    smtpd_session_process(s);
}

/* smtpd_session_tls_handshake - one more step of the handshake. */
static void
smtpd_session_tls_handshake(struct smtpd_session *s)
{
    int rc = tls_conn_handshake(s->tls);

    switch (rc) {
    case TLS_OK:
        smtpd_session_tls_established(s);
        return;
    case TLS_WANT_READ:
        s->tls_hs_events = EV_READ;
        break;
    case TLS_WANT_WRITE:
        s->tls_hs_events = EV_WRITE;
        break;
    default:
        smtpd.stats.tls_failures++;
        log_info("TLS handshake failed from [%s]: %s", s->addr, tls_conn_error(s->tls));
        smtpd_session_close(s, "TLS handshake failed");
        return;
    }
    smtpd_session_watch(s);
}

/* smtpd_session_accept - a new client: limits, greeting (or the SMTPS handshake), watchers. */
void
smtpd_session_accept(int fd, const struct smtpd_listener *l, const char *addr,
                     const char *port)
{
    static const char busy[] = "421 4.3.2 Too many sessions, try again later\r\n";
    struct smtpd_session *s;
    int one = 1;

    smtpd.stats.connections++;
    if ((long long)smtpd.nsessions >= smtpd.max_sessions) {
        smtpd.stats.connections_refused++;
        log_warnx("connect from [%s]: refused, sessions=%zu reached smtpd_max_sessions",
                  addr, smtpd.nsessions);
        if (l->svc != SMTPD_SVC_SMTPS)
            (void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
        return;
    }
    if (l->svc == SMTPD_SVC_SMTPS && smtpd.tls == NULL) {
        /* smtpd_tls_init() refuses this at start; be safe anyway */
        log_warnx("connect from [%s]: smtps without a certificate", addr);
        close(fd);
        return;
    }
    if (l->svc != SMTPD_SVC_SUBMIT)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s = xcalloc(1, sizeof(*s));
    s->fd = fd;
    s->io = &smtpd_session_plain;
    s->service = l->name;
    s->svc = l->svc;
    do {
        s->id = ++smtpd.next_id;
    } while (s->id == 0);
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    snprintf(s->addr_port, sizeof(s->addr_port), "%s", port);
    s->mynetworks = cidr_match_list(smtpd.mynetworks, smtpd.nmynetworks, s->addr);
    s->state = SMTPD_ST_CONNECTED;
    s->body_fd = -1;
    buf_init(&s->in, 256);
    buf_init(&s->out, 256);
    buf_init(&s->body, 0);
    smtp_cmd_line_init(&s->line);
    s->started = s->last_active = ev_now_ms();
    s->next = smtpd.sessions;
    if (s->next != NULL)
        s->next->prev = s;
    smtpd.sessions = s;
    s->hnext = smtpd_session_hash[s->id % SMTPD_HASH_SIZE];
    smtpd_session_hash[s->id % SMTPD_HASH_SIZE] = s;
    smtpd.nsessions++;
    smtpd.stats.sessions = smtpd.nsessions;
    s->idle_timer = ev_timer_add(smtpd.ev, smtpd.timeout_ms, smtpd_session_idle_timer, s);
    s->session_timer = ev_timer_add(smtpd.ev, smtpd.session_timeout_ms,
                                    smtpd_session_total_timer, s);
    if (s->svc == SMTPD_SVC_SUBMIT) {
        /* local submission: the peer's uid is the identity; trusted like mynetworks */
        s->mynetworks = 1;
        if (smtpd_submit_peer(fd, s) == -1) {
            smtp_reply(&s->out, 421, "4.3.0", "%s Cannot tell who uid %lu is: try again "
                       "later (postern reload re-reads the users)", smtpd.hostname,
                       (unsigned long)s->local_uid);
            s->closing = 1;
            smtpd_session_flush(s);
            return;
        }
        log_info("connect from local user %s (uid %lu pid %ld) service=%s%s", s->local_user,
                 (unsigned long)s->local_uid, (long)s->local_pid, s->service,
                 s->local_admin ? " admin=yes" : "");
    } else {
        log_info("connect from [%s]:%s service=%s", s->addr, port, s->service);
    }
    if (s->svc == SMTPD_SVC_SMTPS) {
        smtpd_session_tls_begin(s);  /* the greeting follows the handshake */
        return;
    }
    smtp_reply(&s->out, 220, NULL, "%s", smtpd.banner);
    smtpd_session_flush(s);
}

/* smtpd_session_log_end - the disconnect line with command counts. */
static void
smtpd_session_log_end(struct smtpd_session *s, const char *why)
{
    char   line[512];
    size_t off;
    int    v;

    off = (size_t)snprintf(line, sizeof(line), "disconnect from [%s]", s->addr);
    for (v = 1; v <= SMTP_VERB_COUNT && off < sizeof(line); v++) {
        int idx = v == SMTP_VERB_COUNT ? SMTP_VERB_UNKNOWN : v;
        if (s->verb_count[idx] == 0)
            continue;
        off += (size_t)snprintf(line + off, sizeof(line) - off, " %s=%u",
                                smtp_cmd_name((enum smtp_verb)idx), s->verb_count[idx]);
    }
    if (off < sizeof(line))
        off += (size_t)snprintf(line + off, sizeof(line) - off, " commands=%lld errors=%lld",
                                s->commands, s->errors);
    if (why != NULL && off < sizeof(line))
        snprintf(line + off, sizeof(line) - off, " reason=\"%s\"", why);
    log_info("%s", line);
}

/* smtpd_session_reap_cb - free the sessions closed during this loop turn. */
static void
smtpd_session_reap_cb(void *arg)
{
    (void)arg;
    smtpd_session_reap();
}

/* smtpd_session_reap - free every closed session. */
void
smtpd_session_reap(void)
{
    struct smtpd_session *s, *next;

    smtpd_session_reap_queued = 0;
    for (s = smtpd.sessions; s != NULL; s = next) {
        next = s->next;
        if (!s->dead)
            continue;
        if (s->prev != NULL)
            s->prev->next = s->next;
        else
            smtpd.sessions = s->next;
        if (s->next != NULL)
            s->next->prev = s->prev;
        if (s->in.data != NULL)
            explicit_bzero(s->in.data, s->in.cap);
        buf_release(&s->in);
        buf_release(&s->out);
        buf_release(&s->body);
        free(s);
    }
}

/* smtpd_session_close - end a session now: abort its message, log, release the socket. */
void
smtpd_session_close(struct smtpd_session *s, const char *why)
{
    if (s->dead)
        return;
    if (s->state == SMTPD_ST_WAIT_OPEN || s->state == SMTPD_ST_DATA)
        smtpd_data_abort(s);
    smtpd_cmd_session_reset(s);
    free(s->auth_user);
    s->auth_user = NULL;
    smtpd_session_log_end(s, why);
    ev_timer_del(smtpd.ev, s->idle_timer);
    ev_timer_del(smtpd.ev, s->session_timer);
    ev_timer_del(smtpd.ev, s->tls_timer);
    ev_timer_del(smtpd.ev, s->pull_timer);
    ev_timer_del(smtpd.ev, s->auth_timer);
    s->idle_timer = s->session_timer = s->tls_timer = s->pull_timer = s->auth_timer = 0;
    if (s->io_events)
        ev_io_del(smtpd.ev, s->fd);
    if (s->tls != NULL) {
        if (s->tls_phase == SMTPD_TLS_ON)
            tls_conn_shutdown(s->tls);   /* close_notify, best effort */
        tls_conn_free(&s->tls);
    }
    close(s->fd);
    s->fd = -1;
    s->dead = 1;
    smtpd_session_unhash(s);
    if (!smtpd_session_reap_queued) {
        smtpd_session_reap_queued = 1;
        ev_defer(smtpd.ev, smtpd_session_reap_cb, NULL);
    }
    smtpd_session_gone(s);
}

/* smtpd_session_idle - between transactions with nothing buffered. */
static int
smtpd_session_idle(const struct smtpd_session *s)
{
    return s->state == SMTPD_ST_CONNECTED || s->state == SMTPD_ST_GREETED;
}

/* smtpd_session_stop - SIGTERM: an idle session is told 421 and closed. */
void
smtpd_session_stop(struct smtpd_session *s)
{
    if (s->tls_phase == SMTPD_TLS_STARTING || s->tls_phase == SMTPD_TLS_HANDSHAKE) {
        smtpd_session_close(s, "shutdown during TLS handshake");
        return;
    }
    if (!smtpd_session_idle(s) || s->closing)
        return;
    smtpd_session_reply(s, 421, "4.3.2", "%s Service shutting down, closing channel",
                        smtpd.hostname);
    s->closing = 1;
    smtpd_session_flush(s);
}

/* smtpd_session_line - one complete line, or a line the splitter refused. */
static void
smtpd_session_line(struct smtpd_session *s, enum smtp_line_status st, const char *line,
                   size_t len)
{
    if (st == SMTP_LINE_OK) {
        if (s->auth != NULL)
            smtpd_cmd_auth_line(s, line, len);
        else
            smtpd_cmd_line(s, line, len);
        return;
    }
    s->commands++;
    if (s->auth != NULL) {
        smtpd_cmd_auth_abort(s, 500, "5.5.6", st == SMTP_LINE_TOO_LONG
                             ? "Authentication exchange line is too long"
                             : "Error: bare <LF> received");
    } else if (st == SMTP_LINE_TOO_LONG) {
        smtpd_session_reply(s, 500, "5.5.2", "Error: line too long");
    } else {
        smtpd_session_reply(s, 500, "5.5.2", "Error: bare <LF> received");
    }
    (void)smtpd_session_error(s);
}

/* smtpd_session_wants_qmgr - does the next buffered command need qmgr (MAIL, DATA)? A
 * look at its verb only; it is parsed as usual once it runs. */
static int
smtpd_session_wants_qmgr(const struct smtpd_session *s)
{
    const char *p = s->in.data;

    if (s->auth != NULL || s->in.len < 4 || (s->state != SMTPD_ST_GREETED
                                             && s->state != SMTPD_ST_MAIL))
        return 0;
    return strncasecmp(p, "MAIL", 4) == 0 || strncasecmp(p, "DATA", 4) == 0;
}

/* smtpd_session_process - work through buffered input until we must wait. */
static void
smtpd_session_process(struct smtpd_session *s)
{
    size_t skip, linelen, consumed;
    enum smtp_line_status st;

    while (!s->dead && !s->closing) {
        if (s->state == SMTPD_ST_WAIT_OPEN || s->state == SMTPD_ST_WAIT_QUEUED
            || s->state == SMTPD_ST_AUTH_CHECKING || s->auth_timer != 0
            || s->tls_phase == SMTPD_TLS_HANDSHAKE)
            break;
        if (s->state == SMTPD_ST_DATA) {
            if (s->in.len == 0)
                break;
            smtpd_data_input(s);
            continue;
        }
        if (s->in.len == 0)
            break;
        if (smtpd_qmgr_expected() && smtpd_session_wants_qmgr(s)) {
            s->qmgr_stalled = 1;      /* qmgr is being replaced: smtpd_qmgr_wait_end() */
            break;
        }
        st = smtp_cmd_getline(&s->line, s->in.data, s->in.len, &skip, &linelen, &consumed);
        /* a line of an AUTH exchange, or an AUTH command, holds a secret */
        s->wipe_input = s->auth != NULL;
        if (st != SMTP_LINE_MORE)
            smtpd_session_line(s, st, s->in.data + skip, linelen);
        if (s->dead)
            return;
        if (s->wipe_input)
            explicit_bzero(s->in.data, consumed);
        s->wipe_input = 0;
        buf_consume(&s->in, consumed);
        if (s->tls_phase == SMTPD_TLS_STARTING) {
            /* CVE-2011-0411: whatever the client pipelined after STARTTLS was sent in
             * plaintext and is never interpreted */
            if (s->in.len > 0)
                log_info("STARTTLS from [%s]: %zu plaintext bytes after it discarded",
                         s->addr, s->in.len);
            buf_wipe(&s->in);
            smtp_cmd_line_init(&s->line);
            break;
        }
        if (st == SMTP_LINE_MORE)
            break;
    }
    if (s->dead)
        return;
    if (smtpd.stopping && smtpd_session_idle(s) && !s->closing && s->in.len == 0)
        smtpd_session_stop(s);
    if (s->dead)
        return;
    if (s->read_eof && !s->closing && s->state != SMTPD_ST_WAIT_QUEUED
        && s->state != SMTPD_ST_WAIT_OPEN && s->state != SMTPD_ST_AUTH_CHECKING) {
        /* the client is gone and everything it sent is done (a password check still
         * answers first: the client may only have shut down its side) */
        smtpd_session_flush(s);
        if (!s->dead)
            smtpd_session_close(s, "lost connection");
        return;
    }
    if (s->state != SMTPD_ST_WAIT_OPEN)
        smtpd_session_flush(s);
    else
        smtpd_session_watch(s);
}

/* smtpd_session_resume - qmgr answered or a delay ended: carry on with the buffered input. */
void
smtpd_session_resume(struct smtpd_session *s)
{
    if (s->dead)
        return;
    smtpd_session_process(s);
}

/* smtpd_session_read - one read from the client into s->in, then process. Returns 1 if
 * the session got bytes and is still open, 0 otherwise. */
static int
smtpd_session_read(struct smtpd_session *s)
{
    size_t  room = SMTPD_IN_MAX > s->in.len ? SMTPD_IN_MAX - s->in.len : 0;
    ssize_t n;

    if (room == 0) {
        smtpd_session_watch(s);
        return 0;
    }
    n = s->io->read(s, smtpd_session_rbuf, room);
    if (n == -1) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            smtpd_session_watch(s);
            return 0;
        }
        if (s->state == SMTPD_ST_WAIT_QUEUED || s->state == SMTPD_ST_WAIT_OPEN) {
            s->read_eof = 1;
            smtpd_session_watch(s);
            return 0;
        }
        smtpd_session_close(s, smtpd_session_io_error(s, "read error"));
        return 0;
    }
    if (n == 0) {
        s->read_eof = 1;
    } else {
        if (buf_append(&s->in, smtpd_session_rbuf, (size_t)n) == -1)
            fatalx("session input buffer");   /* no limit is set: cannot happen */
        explicit_bzero(smtpd_session_rbuf, (size_t)n);
        s->last_active = ev_now_ms();
    }
    if (s->read_eof && (s->state == SMTPD_ST_DATA || s->state == SMTPD_ST_WAIT_OPEN)) {
        /* gone in the middle of the message: whatever is buffered is incomplete
         * unless it holds the end of data, so let the scanner look first */
        if (s->state == SMTPD_ST_DATA && s->in.len > 0)
            smtpd_data_input(s);
        if (s->state == SMTPD_ST_DATA || s->state == SMTPD_ST_WAIT_OPEN) {
            smtpd_session_close(s, "lost connection in DATA");
            return 0;
        }
    }
    smtpd_session_process(s);
    return n > 0 && !s->dead;
}

/* smtpd_session_pull - read what is there; over TLS also what OpenSSL already holds
 * decrypted, which epoll would never announce. */
static void
smtpd_session_pull(struct smtpd_session *s)
{
    int rounds = 0;

    while (!s->dead && smtpd_session_may_read(s) && rounds++ < 64) {
        if (!smtpd_session_read(s))
            return;
        if (s->tls == NULL || s->tls_phase != SMTPD_TLS_ON || tls_conn_pending(s->tls) == 0)
            return;
    }
    if (!s->dead)
        smtpd_session_watch(s);       /* more pending: the pull timer takes over */
}

/* smtpd_session_io - the socket is readable or writable. */
static void
smtpd_session_io(int fd, int events, void *arg)
{
    struct smtpd_session *s = arg;

    (void)fd;
    if (s->tls_phase == SMTPD_TLS_HANDSHAKE) {
        smtpd_session_tls_handshake(s);
        return;
    }
    if ((events & EV_WRITE) || ((events & EV_READ) && s->tls_write_wants_read)) {
        smtpd_session_flush(s);
        if (s->dead)
            return;
    }
    if (((events & EV_READ) || ((events & EV_WRITE) && s->tls_read_wants_write))
        && smtpd_session_may_read(s))
        smtpd_session_pull(s);
}
