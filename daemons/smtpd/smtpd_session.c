/* smtpd_session - one client connection: I/O, buffers, timers and the input loop.
 *
 * Input is read into a bounded buffer and processed in order: command lines go to
 * smtpd_cmd, DATA bytes to smtpd_data. While a session waits for qmgr (MSG_OPENED or
 * MSG_QUEUED) nothing more is parsed; input stays buffered until SMTPD_IN_MAX and then the
 * socket is simply not read. Replies collect in s->out and are written once per turn of
 * the loop, so a pipelined batch gets its replies in one write (TCP_NODELAY is set). The
 * socket is reached only through s->io so TLS can later slot in underneath. A closed
 * session is unlinked at once and freed at the end of the loop turn, so callers up the
 * stack may still look at it. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "smtp_reply.h"
#include "smtpd.h"

#define SMTPD_HASH_SIZE 4096

static struct smtpd_session *smtpd_session_hash[SMTPD_HASH_SIZE];
static int                   smtpd_session_reap_queued;

static void smtpd_session_io(int fd, int events, void *arg);
static void smtpd_session_process(struct smtpd_session *);

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

/* smtpd_session_watch - watch what the session needs now. */
static void
smtpd_session_watch(struct smtpd_session *s)
{
    int ev = 0;

    if (s->dead)
        return;
    if (!s->closing && !s->read_eof && s->in.len < SMTPD_IN_MAX && s->out.len < SMTPD_OUT_MAX)
        ev |= EV_READ;
    if (s->out.len > 0 && s->state != SMTPD_ST_WAIT_OPEN)
        ev |= EV_WRITE;
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

    if (s->dead || s->closing)
        return;
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
            smtpd_session_close(s, "write error");
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
    if (s->state == SMTPD_ST_WAIT_OPEN || s->state == SMTPD_ST_WAIT_QUEUED) {
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

/* smtpd_session_accept - a new client: limits, greeting, watchers. */
void
smtpd_session_accept(int fd, const char *service, const char *addr, const char *port)
{
    static const char busy[] = "421 4.3.2 Too many sessions, try again later\r\n";
    struct smtpd_session *s;
    int one = 1;

    if ((long long)smtpd.nsessions >= smtpd.max_sessions) {
        log_warnx("connect from [%s]: refused, sessions=%zu reached smtpd_max_sessions",
                  addr, smtpd.nsessions);
        (void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
        return;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s = xcalloc(1, sizeof(*s));
    s->fd = fd;
    s->io = &smtpd_session_plain;
    s->service = service;
    do {
        s->id = ++smtpd.next_id;
    } while (s->id == 0);
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    snprintf(s->addr_port, sizeof(s->addr_port), "%s", port);
    s->state = SMTPD_ST_CONNECTED;
    s->body_fd = -1;
    buf_init(&s->in, 4096);
    buf_init(&s->out, 1024);
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
    s->idle_timer = ev_timer_add(smtpd.ev, smtpd.timeout_ms, smtpd_session_idle_timer, s);
    s->session_timer = ev_timer_add(smtpd.ev, smtpd.session_timeout_ms,
                                    smtpd_session_total_timer, s);
    log_info("connect from [%s]:%s service=%s", s->addr, port, service);
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
    smtpd_cmd_txn_reset(s);
    free(s->helo);
    s->helo = NULL;
    smtpd_session_log_end(s, why);
    ev_timer_del(smtpd.ev, s->idle_timer);
    ev_timer_del(smtpd.ev, s->session_timer);
    s->idle_timer = s->session_timer = 0;
    if (s->io_events)
        ev_io_del(smtpd.ev, s->fd);
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
    if (!smtpd_session_idle(s) || s->closing)
        return;
    smtpd_session_reply(s, 421, "4.3.2", "%s Service shutting down, closing channel",
                        smtpd.hostname);
    s->closing = 1;
    smtpd_session_flush(s);
}

/* smtpd_session_process - work through buffered input until we must wait. */
static void
smtpd_session_process(struct smtpd_session *s)
{
    size_t skip, linelen, consumed;
    enum smtp_line_status st;

    while (!s->dead && !s->closing) {
        if (s->state == SMTPD_ST_WAIT_OPEN || s->state == SMTPD_ST_WAIT_QUEUED)
            break;
        if (s->state == SMTPD_ST_DATA) {
            if (s->in.len == 0)
                break;
            smtpd_data_input(s);
            continue;
        }
        if (s->in.len == 0)
            break;
        st = smtp_cmd_getline(&s->line, s->in.data, s->in.len, &skip, &linelen, &consumed);
        if (st == SMTP_LINE_OK) {
            smtpd_cmd_line(s, s->in.data + skip, linelen);
        } else if (st == SMTP_LINE_TOO_LONG) {
            s->commands++;
            smtpd_session_reply(s, 500, "5.5.2", "Error: line too long");
            (void)smtpd_session_error(s);
        } else if (st == SMTP_LINE_BARE_LF) {
            s->commands++;
            smtpd_session_reply(s, 500, "5.5.2", "Error: bare <LF> received");
            (void)smtpd_session_error(s);
        }
        if (!s->dead)
            buf_consume(&s->in, consumed);
        if (st == SMTP_LINE_MORE)
            break;
    }
    if (s->dead)
        return;
    if (smtpd.stopping && smtpd_session_idle(s) && !s->closing && s->in.len == 0)
        smtpd_session_stop(s);
    if (s->read_eof && !s->closing && s->state != SMTPD_ST_WAIT_QUEUED
        && s->state != SMTPD_ST_WAIT_OPEN) {
        /* the client is gone and everything it sent is done */
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

/* smtpd_session_resume - qmgr answered: carry on with the buffered input. */
void
smtpd_session_resume(struct smtpd_session *s)
{
    if (s->dead)
        return;
    smtpd_session_process(s);
}

/* smtpd_session_io - the socket is readable or writable. */
static void
smtpd_session_io(int fd, int events, void *arg)
{
    struct smtpd_session *s = arg;

    (void)fd;
    if (events & EV_WRITE) {
        smtpd_session_flush(s);
        if (s->dead)
            return;
    }
    if ((events & EV_READ) && !s->closing && !s->read_eof) {
        size_t  room = SMTPD_IN_MAX > s->in.len ? SMTPD_IN_MAX - s->in.len : 0;
        void   *p;
        ssize_t n;

        if (room == 0) {
            smtpd_session_watch(s);
            return;
        }
        p = buf_reserve(&s->in, room);
        n = s->io->read(s, p, room);
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            if (s->state == SMTPD_ST_WAIT_QUEUED || s->state == SMTPD_ST_WAIT_OPEN) {
                s->read_eof = 1;
                smtpd_session_watch(s);
                return;
            }
            smtpd_session_close(s, "read error");
            return;
        }
        if (n == 0) {
            s->read_eof = 1;
        } else {
            buf_commit(&s->in, (size_t)n);
            s->last_active = ev_now_ms();
        }
        if (s->read_eof && (s->state == SMTPD_ST_DATA || s->state == SMTPD_ST_WAIT_OPEN)) {
            /* gone in the middle of the message: whatever is buffered is incomplete
             * unless it holds the end of data, so let the scanner look first */
            if (s->state == SMTPD_ST_DATA && s->in.len > 0)
                smtpd_data_input(s);
            if (s->state == SMTPD_ST_DATA || s->state == SMTPD_ST_WAIT_OPEN) {
                smtpd_session_close(s, "lost connection in DATA");
                return;
            }
        }
        smtpd_session_process(s);
    }
}
