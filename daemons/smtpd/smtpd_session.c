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
 * The connect phase: a network session is not greeted at once. The reverse lookup
 * (smtpd_dns), the anvil CONNECT check (smtpd_anvil) and, on port 25 for clients not in
 * smtpd_client_limit_exceptions, a pause of smtpd_greet_pause run side by side (SMTPS:
 * after its handshake); when all three are done the greeting follows: the anvil refusal
 * (421), or 554 to a port-25 client that talked before the greeting (spam software does
 * not wait), or with smtpd_delay_reject = no the client access check (554 greeting and 503
 * to every command, or 421 for DEFER), or 220. Input that arrives meanwhile is buffered, not
 * parsed; public/submit skips the phase. The same holds while a MAIL, RCPT or AUTH check is
 * with anvil (s->anvil_req) and while MAIL waits for the sender domain's lookup
 * (s->domain). The DNSBL lookups (smtpd_dnsbl) run beside the reverse lookup; a blocked
 * client is refused where the client access check refuses.
 *
 * Limits are per session (s->timeout_ms, s->error_limit), chosen at accept: a process whose
 * sessions reach smtpd_stress_threshold percent of smtpd_max_sessions is under stress, and
 * a network session accepted then gets the smtpd_stress_* limits and no greet pause; idle
 * sessions already open get the shorter idle timeout too. At smtpd_max_sessions a client
 * is told 421 4.3.2 on its fresh socket and closed.
 *
 * Idle sessions hold little memory: reads go through one process-wide buffer and buffers
 * that grew (a message, a burst of pipelining) are given back once empty. A closed session
 * is unlinked at once and freed at the end of the loop turn, so callers up the stack may
 * still look at it. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
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
#include "smtpd_anvil.h"
#include "smtpd_dns.h"
#include "smtpd_dnsbl.h"
#include "smtpd_domain.h"
#include "smtpd_milter.h"
#include "smtpd_policy.h"

#define SMTPD_HASH_SIZE 4096

/* What the greeting waits for (s->greet_wait). */
#define SMTPD_GREET_DNS    0x1
#define SMTPD_GREET_ANVIL  0x2
#define SMTPD_GREET_PAUSE  0x4
#define SMTPD_GREET_DNSBL  0x8

static struct smtpd_session *smtpd_session_hash[SMTPD_HASH_SIZE];
static int                   smtpd_session_reap_queued;
static char                  smtpd_session_rbuf[SMTPD_IN_MAX];   /* every read lands here */

static void smtpd_session_io(int fd, int events, void *arg);
static void smtpd_session_process(struct smtpd_session *);
static void smtpd_session_pull(struct smtpd_session *);
static void smtpd_session_tls_handshake(struct smtpd_session *);
static void smtpd_session_connect_phase(struct smtpd_session *);

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
    if (++s->errors < s->error_limit)
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
    uint64_t now = ev_now_ms(), due = s->last_active + s->timeout_ms;

    s->idle_timer = 0;
    if (s->state == SMTPD_ST_WAIT_OPEN || s->state == SMTPD_ST_WAIT_QUEUED
        || s->state == SMTPD_ST_AUTH_CHECKING || s->auth_timer != 0
        || s->greeting_pending || s->anvil_req != 0 || s->domain != NULL
        || s->milter_wait) {
        /* we are the ones waiting (the greeting is bounded by the DNS timeout and the
         * pause, every wait by smtpd_session_timeout) */
        s->last_active = now;
        due = now + s->timeout_ms;
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
    if (s->svc == SMTPD_SVC_SMTPS) {
        smtpd_session_connect_phase(s);   /* the greeting follows the phase */
        return;
    }
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

/* smtpd_session_hang_up - after a last reply: one attempt to write it, then close. The
 * socket is fresh or idle, so the reply goes out whole; a client that does not read gets
 * no more of our time. */
static void
smtpd_session_hang_up(struct smtpd_session *s, const char *why)
{
    while (!s->dead && s->out.len > 0) {
        ssize_t n = s->io->write(s, s->out.data, s->out.len);

        if (n <= 0)
            break;
        buf_consume(&s->out, (size_t)n);
    }
    if (!s->dead)
        smtpd_session_close(s, why);
}

/* smtpd_session_refuse_busy - smtpd_max_sessions reached: 421 on the fresh socket. */
static void
smtpd_session_refuse_busy(int fd, const struct smtpd_listener *l, const char *addr)
{
    static const char busy[] = "421 4.3.2 Too many sessions, try again later\r\n";
    char              junk[512];
    int               i;

    smtpd.stats.connections_refused++;
    log_warnx("connect from [%s]: refused, sessions=%zu reached smtpd_max_sessions", addr,
              smtpd.nsessions);
    if (l->svc != SMTPD_SVC_SMTPS) {
        /* the send buffer of a new socket is empty: this never blocks and never splits */
        (void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)shutdown(fd, SHUT_WR);
        /* closing with unread input resets the connection, and a reset may destroy the
         * reply before the client reads it: take what a hasty client already sent */
        for (i = 0; i < 8; i++)
            if (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) <= 0)
                break;
    }
    close(fd);
}

/* smtpd_session_stress_shrink - stress began: the sessions already open get the stress
 * idle timeout too, counted from their last input (Postfix leaves them alone; here a flood
 * of slow clients already in would otherwise keep the new ones out for smtpd_timeout). */
static void
smtpd_session_stress_shrink(void)
{
    struct smtpd_session *s;
    uint64_t              now = ev_now_ms();
    size_t                n = 0;

    for (s = smtpd.sessions; s != NULL; s = s->next) {
        uint64_t due;

        if (s->dead || s->idle_timer == 0 || s->svc == SMTPD_SVC_SUBMIT
            || s->timeout_ms <= smtpd.stress_timeout_ms)
            continue;
        s->timeout_ms = smtpd.stress_timeout_ms;
        due = s->last_active + s->timeout_ms;
        ev_timer_del(smtpd.ev, s->idle_timer);
        s->idle_timer = ev_timer_add(smtpd.ev, due > now ? due - now : 0,
                                     smtpd_session_idle_timer, s);
        n++;
    }
    if (n > 0)
        log_info("stress: idle timeout of %zu open sessions shortened to %" PRIu64 "ms", n,
                 smtpd.stress_timeout_ms);
}

/* smtpd_session_stress_update - the session count changed: note the process coming
 * under stress or out of it (the two thresholds are apart, smtpd_configure_connect). */
static void
smtpd_session_stress_update(void)
{
    if (!smtpd.stress && smtpd.nsessions >= smtpd.stress_enter) {
        smtpd.stress = 1;
        smtpd.stats.stress++;
        log_warnx("stress: sessions=%zu of smtpd_max_sessions=%lld (smtpd_stress_threshold):"
                  " new sessions get idle timeout %" PRIu64 "ms, session timeout %" PRIu64
                  "ms, error limit %lld, no greet pause", smtpd.nsessions, smtpd.max_sessions,
                  smtpd.stress_timeout_ms, smtpd.stress_session_timeout_ms,
                  smtpd.stress_error_limit);
        smtpd_session_stress_shrink();
    } else if (smtpd.stress && smtpd.nsessions <= smtpd.stress_leave) {
        smtpd.stress = 0;
        log_info("stress over: sessions=%zu of smtpd_max_sessions=%lld", smtpd.nsessions,
                 smtpd.max_sessions);
    }
}

/* smtpd_session_limits - the session's timeouts and error limit, stress ones if the
 * process is under stress (public/submit is local and never gets them); start the timers. */
static void
smtpd_session_limits(struct smtpd_session *s)
{
    uint64_t total = smtpd.session_timeout_ms;

    s->timeout_ms = smtpd.timeout_ms;
    s->error_limit = smtpd.error_limit;
    if (smtpd.stress && s->svc != SMTPD_SVC_SUBMIT) {
        s->stressed = 1;
        smtpd.stats.stress_sessions++;
        s->timeout_ms = smtpd.stress_timeout_ms;
        s->error_limit = smtpd.stress_error_limit;
        total = smtpd.stress_session_timeout_ms;
    }
    s->idle_timer = ev_timer_add(smtpd.ev, s->timeout_ms, smtpd_session_idle_timer, s);
    s->session_timer = ev_timer_add(smtpd.ev, total, smtpd_session_total_timer, s);
}

/* smtpd_session_keep_action - remember the client check's answer for the transactions. */
static void
smtpd_session_keep_action(struct smtpd_session *s, const struct policy_action *act)
{
    free(s->client_action);
    s->client_action = xmalloc(sizeof(*s->client_action));
    memcpy(s->client_action, act, sizeof(*act));
}

/* smtpd_session_client_check - smtpd_delay_reject = no: the client access check before
 * the greeting. 0: greet with 220; 1: the 554 greeting is queued (every command but QUIT
 * gets 503, smtpd_cmd.c); -1: refused for now, the session is closed. */
static int
smtpd_session_client_check(struct smtpd_session *s)
{
    struct policy_action act;
    enum policy_kind     kind;
    const char          *text;

    memset(&act, 0, sizeof(act));
    kind = smtpd_policy_client(s, &act);
    s->client_checked = 1;
    text = act.text[0] != '\0' ? act.text : "Client host rejected: Access denied";
    switch (kind) {
    case POLICY_REJECT: {
        const char *enh = act.enh[0] == '5' ? act.enh : "5.7.1";

        log_info("reject: CONNECT from %s[%s]: 554 %s %s; by=%s", s->client_name, s->addr,
                 enh, text, act.where);
        smtpd_session_keep_action(s, &act);
        s->greet_refused = 1;
        smtpd_session_reply(s, 554, enh, "%s", text);
        return 1;
    }
    case POLICY_DEFER: {
        const char *enh = act.enh[0] == '4' ? act.enh : "4.7.1";

        log_info("defer: CONNECT from %s[%s]: 421 %s %s; by=%s", s->client_name, s->addr,
                 enh, text, act.where);
        smtpd_session_reply(s, 421, enh, "%s %s", smtpd.hostname, text);
        smtpd_session_hang_up(s, "client access DEFER");
        return -1;
    }
    case POLICY_OK:
    case POLICY_HOLD:
    case POLICY_DISCARD:
        log_debug("client %s[%s]: %s by %s", s->client_name, s->addr,
                  policy_kind_name(kind), act.where);
        smtpd_session_keep_action(s, &act);
        break;
    default:
        break;
    }
    /* the blocklists come after the access table, whose OK allowlists the client */
    if (kind != POLICY_OK && smtpd_dnsbl_refuse(s, "CONNECT", NULL) == -1) {
        s->greet_refused = 1;
        return 1;
    }
    return 0;
}

/* smtpd_session_pregreet - the client talked before the greeting: refuse and close. */
static void
smtpd_session_pregreet(struct smtpd_session *s)
{
    smtpd.stats.pregreet++;
    log_info("pregreet from [%s]:%s: %d bytes before the greeting after %" PRIu64 "ms",
             s->addr, s->addr_port, s->pregreet, ev_now_ms() - s->started);
    smtpd_session_reply(s, 554, "5.5.1", "Error: talked before the greeting");
    smtpd_session_hang_up(s, "pregreet");
}

/* smtpd_session_milter_done - the milters have seen the connection; a refusal is kept by
 * smtpd_milter for every transaction (Postfix's behaviour), so the client is greeted. */
static void
smtpd_session_milter_done(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
    if (v->kind == POLICY_REJECT || v->kind == POLICY_DEFER)
        log_info("milter-reject: CONNECT from %s[%s]: %d %s %s; milter=%s", s->client_name,
                 s->addr, v->code, v->enh, v->text, v->who);
    smtpd_session_resume(s);
}

/* smtpd_session_greet - the connect phase is over: refuse or greet, then take the input
 * that waited. */
static void
smtpd_session_greet(struct smtpd_session *s)
{
    int rc = 0;

    s->greeting_pending = 0;
    log_debug("client [%s] name=%s ptr=%s after %" PRIu64 "ms", s->addr, s->client_name,
              s->client_ptr, ev_now_ms() - s->started);
    if (s->refuse_code != 0) {
        smtpd_session_reply(s, s->refuse_code, s->refuse_enh, "%s %s", smtpd.hostname,
                            s->refuse_text);
        smtpd_session_hang_up(s, s->refuse_text);
        return;
    }
    if (s->pregreet > 0) {
        smtpd_session_pregreet(s);
        return;
    }
    if (smtpd.connect_client_check && s->svc != SMTPD_SVC_SUBMIT)
        rc = smtpd_session_client_check(s);
    if (rc == -1)
        return;
    if (rc == 0) {
        smtp_reply(&s->out, 220, NULL, "%s", smtpd.banner);
        /* commands wait (s->milter_wait) until the milters have seen the client */
        (void)smtpd_milter_connect(s, smtpd_session_milter_done);
    }
    smtpd_session_process(s);
}

/* smtpd_session_greet_done - one thing the greeting waited for is over. */
static void
smtpd_session_greet_done(struct smtpd_session *s, int what)
{
    s->greet_wait &= ~what;
    if (!s->dead && s->greeting_pending && s->greet_wait == 0)
        smtpd_session_greet(s);
}

/* smtpd_session_dns_done - the client's names are in. */
static void
smtpd_session_dns_done(struct smtpd_session *s)
{
    smtpd_session_greet_done(s, SMTPD_GREET_DNS);
}

/* smtpd_session_dnsbl_done - the blocklists have answered (or the time is up). */
static void
smtpd_session_dnsbl_done(struct smtpd_session *s)
{
    smtpd_session_greet_done(s, SMTPD_GREET_DNSBL);
}

/* smtpd_session_anvil_done - anvil's verdict on the connection; a refusal is said when
 * the phase is over, so that a client over its limit gets no earlier greeting than others. */
static void
smtpd_session_anvil_done(struct smtpd_session *s, int allowed, int code, const char *enh,
                         const char *text)
{
    if (!allowed && s->refuse_code == 0) {
        s->refuse_code = code;
        snprintf(s->refuse_enh, sizeof(s->refuse_enh), "%s", enh);
        s->refuse_text = xstrdup(text);
    }
    smtpd_session_greet_done(s, SMTPD_GREET_ANVIL);
}

/* smtpd_session_pause_done - smtpd_greet_pause is over. */
static void
smtpd_session_pause_done(void *arg)
{
    struct smtpd_session *s = arg;

    s->greet_timer = 0;
    smtpd_session_greet_done(s, SMTPD_GREET_PAUSE);
}

/* smtpd_session_connect_phase - start what comes before the greeting: the reverse lookup,
 * and for network services the anvil check and on port 25 the greet pause, during which a
 * client that talks gives itself away. public/submit's lookup answers at once. */
static void
smtpd_session_connect_phase(struct smtpd_session *s)
{
    int exempt = s->svc == SMTPD_SVC_SUBMIT || smtpd_anvil_exempt(s);

    s->greeting_pending = 1;
    s->greet_wait = SMTPD_GREET_DNS | SMTPD_GREET_DNSBL;
    if (s->svc != SMTPD_SVC_SUBMIT)
        s->greet_wait |= SMTPD_GREET_ANVIL;
    if (s->svc == SMTPD_SVC_SMTP && !exempt) {
        s->pregreet_check = 1;
        if (!s->stressed && smtpd.greet_pause_ms > 0) {
            s->greet_wait |= SMTPD_GREET_PAUSE;
            s->greet_timer = ev_timer_add(smtpd.ev, smtpd.greet_pause_ms,
                                          smtpd_session_pause_done, s);
        }
    }
    if (smtpd_dns_client(s, smtpd_session_dns_done) == 1)
        s->greet_wait &= ~SMTPD_GREET_DNS;
    if (smtpd_dnsbl_client(s, smtpd_session_dnsbl_done) == 1)
        s->greet_wait &= ~SMTPD_GREET_DNSBL;
    if ((s->greet_wait & SMTPD_GREET_ANVIL)
        && smtpd_anvil_check(s, SMTPD_ANVIL_CONNECT, smtpd_session_anvil_done) == 1)
        s->greet_wait &= ~SMTPD_GREET_ANVIL;
    if (s->greet_wait == 0) {
        smtpd_session_greet(s);
        return;
    }
    smtpd_session_watch(s);           /* read early talk meanwhile */
}

/* smtpd_session_accept - a new client: limits, then the connect phase (or the SMTPS
 * handshake first), watchers. */
void
smtpd_session_accept(int fd, const struct smtpd_listener *l, const char *addr,
                     const char *port)
{
    struct smtpd_session *s;
    int one = 1;

    smtpd.stats.connections++;
    if ((long long)smtpd.nsessions >= smtpd.max_sessions) {
        smtpd_session_refuse_busy(fd, l, addr);
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
    snprintf(s->client_name, sizeof(s->client_name), "unknown");
    snprintf(s->client_ptr, sizeof(s->client_ptr), "unknown");
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
    smtpd_session_stress_update();
    smtpd_session_limits(s);
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
        log_info("connect from [%s]:%s service=%s%s", s->addr, port, s->service,
                 s->stressed ? " stress=yes" : "");
    }
    if (s->svc == SMTPD_SVC_SMTPS) {
        smtpd_session_tls_begin(s);  /* the connect phase follows the handshake */
        return;
    }
    smtpd_session_connect_phase(s);
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
    smtpd_dns_forget(s);
    smtpd_dnsbl_forget(s);
    smtpd_domain_forget(s);
    smtpd_milter_end(s);
    smtpd_anvil_disconnect(s);
    free(s->client_action);
    s->client_action = NULL;
    free(s->refuse_text);             /* why may have been this: logged above */
    s->refuse_text = NULL;
    ev_timer_del(smtpd.ev, s->idle_timer);
    ev_timer_del(smtpd.ev, s->session_timer);
    ev_timer_del(smtpd.ev, s->tls_timer);
    ev_timer_del(smtpd.ev, s->pull_timer);
    ev_timer_del(smtpd.ev, s->auth_timer);
    ev_timer_del(smtpd.ev, s->greet_timer);
    s->idle_timer = s->session_timer = s->tls_timer = s->pull_timer = s->auth_timer = 0;
    s->greet_timer = 0;
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
    smtpd_session_stress_update();
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
            || s->tls_phase == SMTPD_TLS_HANDSHAKE || s->greeting_pending
            || s->anvil_req != 0 || s->domain != NULL || s->milter_wait)
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
    if (s->read_eof && s->greeting_pending && !s->closing) {
        /* gone before the greeting: a port-25 client that talked first is still told
         * (and counted); one that sent nothing has nothing to wait for */
        if (s->pregreet > 0)
            smtpd_session_pregreet(s);
        else if (s->in.len == 0)
            smtpd_session_close(s, "lost connection before the greeting");
        if (s->dead)
            return;
    }
    if (s->read_eof && !s->closing && s->state != SMTPD_ST_WAIT_QUEUED
        && s->state != SMTPD_ST_WAIT_OPEN && s->state != SMTPD_ST_AUTH_CHECKING
        && !s->greeting_pending && s->anvil_req == 0 && s->domain == NULL
        && !s->milter_wait) {
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
        if (s->greeting_pending && s->pregreet > 0) {
            smtpd_session_pregreet(s);    /* talked, then reset: logged and counted all the same */
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
        if (s->greeting_pending && s->pregreet_check) {
            /* never parsed: the session ends with 554 once the phase is over, and
             * reading on keeps the client's bytes from piling up in the kernel */
            s->pregreet = s->pregreet > INT_MAX - (int)n ? INT_MAX : s->pregreet + (int)n;
            buf_wipe(&s->in);
        }
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
