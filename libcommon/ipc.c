/* ipc - typed, length-prefixed frames over UNIX sockets, with descriptor passing.
 *
 * See ipc.h. The header's length is checked against IPC_MAX_FRAME before a byte of payload
 * is buffered, so a peer cannot make us allocate more. A descriptor rides with the first
 * byte of its frame (SCM_RIGHTS); the receiver keeps descriptors in arrival order and
 * attaches the oldest to the next frame whose type carries IPC_HAS_FD, so frames and
 * descriptors cannot slip out of step even when frames arrive in pieces. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"

#define IPC_OUT_LIMIT   (64u * 1024 * 1024)  /* queued bytes before a peer counts as stuck */
#define IPC_MAX_FDS     16                   /* received but not yet attached */
#define IPC_HAS_FD      0x80000000u          /* type bit: a descriptor rides with this frame */

/* Encoder. */
void
ipc_put_u32(struct buf *b, uint32_t v)
{
    uint32_t be = htonl(v);

    buf_append(b, &be, 4);
}

void
ipc_put_u64(struct buf *b, uint64_t v)
{
    ipc_put_u32(b, (uint32_t)(v >> 32));
    ipc_put_u32(b, (uint32_t)v);
}

void
ipc_put_str(struct buf *b, const char *s)
{
    size_t len = s ? strlen(s) : 0;

    ipc_put_u32(b, (uint32_t)len);
    buf_append(b, s ? s : "", len + 1);
}

void
ipc_put_strv(struct buf *b, char *const *v, uint32_t n)
{
    ipc_put_u32(b, n);
    for (uint32_t i = 0; i < n; i++)
        ipc_put_str(b, v[i]);
}

void
ipc_put_u32v(struct buf *b, const uint32_t *v, uint32_t n)
{
    ipc_put_u32(b, n);
    for (uint32_t i = 0; i < n; i++)
        ipc_put_u32(b, v[i]);
}

void
ipc_put_bytes(struct buf *b, const void *p, uint32_t len)
{
    ipc_put_u32(b, len);
    buf_append(b, p, len);
}

/* Decoder. */
void
ipc_cur_init(struct ipc_cur *c, const struct ipc_frame *f)
{
    c->p = f->payload;
    c->left = f->len;
    c->failed = 0;
}

static int
ipc_cur_fail(struct ipc_cur *c)
{
    c->failed = 1;
    c->left = 0;
    return -1;
}

int
ipc_get_u32(struct ipc_cur *c, uint32_t *out)
{
    uint32_t be;

    if (c->failed || c->left < 4)
        return ipc_cur_fail(c);
    memcpy(&be, c->p, 4);
    *out = ntohl(be);
    c->p += 4;
    c->left -= 4;
    return 0;
}

int
ipc_get_u64(struct ipc_cur *c, uint64_t *out)
{
    uint32_t hi, lo;

    if (ipc_get_u32(c, &hi) == -1 || ipc_get_u32(c, &lo) == -1)
        return -1;
    *out = ((uint64_t)hi << 32) | lo;
    return 0;
}

int
ipc_get_str(struct ipc_cur *c, const char **out)
{
    uint32_t len;

    if (ipc_get_u32(c, &len) == -1)
        return -1;
    if (len >= c->left || c->p[len] != '\0' || memchr(c->p, '\0', len) != NULL)
        return ipc_cur_fail(c);
    *out = (const char *)c->p;
    c->p += len + 1;
    c->left -= len + 1;
    return 0;
}

int
ipc_get_strv(struct ipc_cur *c, const char ***out, uint32_t *n)
{
    uint32_t     count;
    const char **v;

    *out = NULL;
    *n = 0;
    /* Each string takes at least 5 bytes, so a count the payload cannot hold is refused
     * before anything is allocated. */
    if (ipc_get_u32(c, &count) == -1 || count > c->left / 5)
        return ipc_cur_fail(c);
    v = xcalloc(count + 1, sizeof(*v));
    for (uint32_t i = 0; i < count; i++) {
        if (ipc_get_str(c, &v[i]) == -1) {
            free(v);
            return -1;
        }
    }
    *out = v;
    *n = count;
    return 0;
}

int
ipc_get_u32v(struct ipc_cur *c, const uint32_t **out, uint32_t *n)
{
    uint32_t  count;
    uint32_t *v;

    *out = NULL;
    *n = 0;
    if (ipc_get_u32(c, &count) == -1 || count > c->left / 4)
        return ipc_cur_fail(c);
    v = xcalloc(count + 1, sizeof(*v));
    for (uint32_t i = 0; i < count; i++)
        ipc_get_u32(c, &v[i]);
    *out = v;
    *n = count;
    return 0;
}

int
ipc_get_bytes(struct ipc_cur *c, const uint8_t **out, uint32_t *len)
{
    uint32_t n;

    if (ipc_get_u32(c, &n) == -1 || n > c->left)
        return ipc_cur_fail(c);
    *out = c->p;
    *len = n;
    c->p += n;
    c->left -= n;
    return 0;
}

int
ipc_cur_end(struct ipc_cur *c)
{
    if (c->failed || c->left != 0)
        return ipc_cur_fail(c);
    return 0;
}

/* Frame I/O shared by the connection and the blocking helpers. */
static void
ipc_hdr_encode(uint8_t hdr[IPC_HDR_LEN], uint32_t type, uint32_t len, uint32_t reqid)
{
    uint32_t v[3] = { htonl(type), htonl(len), htonl(reqid) };

    memcpy(hdr, v, IPC_HDR_LEN);
}

static void
ipc_hdr_decode(const uint8_t *hdr, uint32_t *type, uint32_t *len, uint32_t *reqid)
{
    uint32_t v[3];

    memcpy(v, hdr, IPC_HDR_LEN);
    *type = ntohl(v[0]);
    *len = ntohl(v[1]);
    *reqid = ntohl(v[2]);
}

/* ipc_sendmsg - send bytes, with fd attached to the first byte if fd >= 0. */
static ssize_t
ipc_sendmsg(int sock, const void *p, size_t len, int fd)
{
    struct msghdr msg;
    struct iovec  iov;
    union {
        struct cmsghdr hdr;
        char           space[CMSG_SPACE(sizeof(int))];
    } cm;

    memset(&msg, 0, sizeof(msg));
    iov.iov_base = (void *)p;
    iov.iov_len = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
        struct cmsghdr *c;

        memset(&cm, 0, sizeof(cm));
        msg.msg_control = cm.space;
        msg.msg_controllen = sizeof(cm.space);
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL);
}

/* ipc_recvmsg - read bytes; descriptors that arrive are handed to keep_fd(). */
static ssize_t
ipc_recvmsg(int sock, void *p, size_t len, void (*keep_fd)(int, void *), void *arg)
{
    struct msghdr msg;
    struct iovec  iov;
    ssize_t       n;
    union {
        struct cmsghdr hdr;
        char           space[CMSG_SPACE(sizeof(int) * 4)];
    } cm;

    memset(&msg, 0, sizeof(msg));
    iov.iov_base = p;
    iov.iov_len = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cm.space;
    msg.msg_controllen = sizeof(cm.space);
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0)
        return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            keep_fd(fd, arg);
        }
    }
    if (msg.msg_flags & MSG_CTRUNC)
        log_warnx("ipc: descriptors truncated on receive");
    return n;
}

/* The non-blocking connection. */
struct ipc_out {
    struct ipc_out *next;
    size_t          off;
    size_t          len;
    int             fd;            /* sent with the first byte, then closed if owned */
    uint8_t         data[];
};

struct ipc_conn {
    struct ev      *ev;
    int             sock;
    ipc_frame_cb    cb;
    void           *arg;
    struct buf      in;
    int             fds[IPC_MAX_FDS];
    int             nfds;
    int             fd_overflow;
    struct ipc_out *out_head, *out_tail;
    size_t          out_bytes;
    int             dead;
    uint64_t        kill_timer;    /* a send failed: tell the owner from the loop */
    int             in_cb;         /* callback running: freeing is deferred */
    int             free_pending;
};

static void ipc_conn_io(int fd, int events, void *arg);

static void
ipc_conn_keep_fd(int fd, void *arg)
{
    struct ipc_conn *c = arg;

    if (c->nfds == IPC_MAX_FDS) {
        close(fd);
        c->fd_overflow = 1;
        return;
    }
    c->fds[c->nfds++] = fd;
}

struct ipc_conn *
ipc_conn_new(struct ev *ev, int sock, ipc_frame_cb cb, void *arg)
{
    struct ipc_conn *c = xcalloc(1, sizeof(*c));

    c->ev = ev;
    c->sock = sock;
    c->cb = cb;
    c->arg = arg;
    buf_init(&c->in, 4096);
    buf_set_limit(&c->in, IPC_HDR_LEN + IPC_MAX_FRAME);
    if (ev_io_set(ev, sock, EV_READ, ipc_conn_io, c) == -1)
        c->dead = 1;
    return c;
}

static void
ipc_conn_close_fds(struct ipc_conn *c)
{
    for (int i = 0; i < c->nfds; i++)
        close(c->fds[i]);
    c->nfds = 0;
}

void
ipc_conn_free(struct ipc_conn **cp)
{
    struct ipc_conn *c = *cp;

    if (c == NULL)
        return;
    *cp = NULL;
    if (c->in_cb) {
        /* Freed from inside its own callback: finish when the callback returns. */
        c->free_pending = 1;
        c->dead = 1;
        return;
    }
    ev_timer_del(c->ev, c->kill_timer);
    ev_io_del(c->ev, c->sock);
    close(c->sock);
    ipc_conn_close_fds(c);
    while (c->out_head) {
        struct ipc_out *o = c->out_head;

        c->out_head = o->next;
        free(o);
    }
    buf_release(&c->in);
    free(c);
}

int
ipc_conn_fd(const struct ipc_conn *c)
{
    return c->sock;
}

size_t
ipc_conn_pending(const struct ipc_conn *c)
{
    return c->out_bytes;
}

int
ipc_conn_peer(const struct ipc_conn *c, uid_t *uid, pid_t *pid)
{
    struct ucred cred;
    socklen_t    len = sizeof(cred);

    if (getsockopt(c->sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
        return -1;
    *uid = cred.uid;
    *pid = cred.pid;
    return 0;
}

/* ipc_conn_kill - mark dead, stop watching, and tell the owner once. */
static void
ipc_conn_kill(struct ipc_conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    ev_io_del(c->ev, c->sock);
    c->cb(c, NULL, c->arg);
}

static void
ipc_conn_kill_timer(void *arg)
{
    struct ipc_conn *c = arg;

    c->kill_timer = 0;
    c->dead = 0;
    ipc_conn_kill(c);
}

/* ipc_conn_kill_later - a send failed inside the owner's code: report it from the loop, so
 * the owner never sees its connection die in the middle of its own call. */
static void
ipc_conn_kill_later(struct ipc_conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    ev_io_del(c->ev, c->sock);
    c->kill_timer = ev_timer_add(c->ev, 0, ipc_conn_kill_timer, c);
}

static void
ipc_conn_watch(struct ipc_conn *c)
{
    if (c->dead)
        return;
    ev_io_set(c->ev, c->sock, EV_READ | (c->out_head ? EV_WRITE : 0), ipc_conn_io, c);
}

/* ipc_conn_flush - write queued frames until the socket would block. */
static int
ipc_conn_flush(struct ipc_conn *c)
{
    while (c->out_head) {
        struct ipc_out *o = c->out_head;
        ssize_t         n;

        n = ipc_sendmsg(c->sock, o->data + o->off, o->len - o->off, o->off ? -1 : o->fd);
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (o->fd >= 0 && o->off == 0) {
            close(o->fd);
            o->fd = -1;
        }
        o->off += (size_t)n;
        c->out_bytes -= (size_t)n;
        if (o->off == o->len) {
            c->out_head = o->next;
            if (c->out_head == NULL)
                c->out_tail = NULL;
            /* Frames may carry secrets (ticket keys): leave none in freed memory. */
            explicit_bzero(o->data, o->len);
            free(o);
        }
    }
    return 0;
}

int
ipc_conn_send(struct ipc_conn *c, uint32_t type, uint32_t reqid, const struct buf *payload,
              int fd)
{
    size_t          plen = payload ? payload->len : 0;
    struct ipc_out *o;

    if (c->dead || plen > IPC_MAX_FRAME || c->out_bytes > IPC_OUT_LIMIT)
        return -1;
    o = xmalloc(sizeof(*o) + IPC_HDR_LEN + plen);
    o->next = NULL;
    o->off = 0;
    o->len = IPC_HDR_LEN + plen;
    /* Our own copy of the descriptor, so the caller may close theirs at once. */
    o->fd = -1;
    if (fd >= 0 && (o->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) == -1) {
        log_warn("ipc: dup");
        free(o);
        return -1;
    }
    ipc_hdr_encode(o->data, type | (fd >= 0 ? IPC_HAS_FD : 0), (uint32_t)plen, reqid);
    if (plen)
        memcpy(o->data + IPC_HDR_LEN, payload->data, plen);
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    c->out_bytes += o->len;
    if (ipc_conn_flush(c) == -1) {
        log_warn("ipc: send");
        ipc_conn_kill_later(c);
        return -1;
    }
    ipc_conn_watch(c);
    return 0;
}

/* ipc_conn_deliver - hand every complete frame in the input buffer to the callback;
 * -1 if the owner freed the connection meanwhile (c is gone). */
static int
ipc_conn_deliver(struct ipc_conn *c)
{
    size_t off = 0;

    c->in_cb = 1;
    while (!c->dead && c->in.len - off >= IPC_HDR_LEN) {
        struct ipc_frame f;
        uint32_t         len;

        ipc_hdr_decode((uint8_t *)c->in.data + off, &f.type, &len, &f.reqid);
        if (len > IPC_MAX_FRAME) {
            log_warnx("ipc: frame of %u bytes refused", len);
            ipc_conn_kill(c);
            break;
        }
        if (c->in.len - off < IPC_HDR_LEN + (size_t)len)
            break;
        f.payload = (uint8_t *)c->in.data + off + IPC_HDR_LEN;
        f.len = len;
        f.fd = -1;
        if (f.type & IPC_HAS_FD) {
            /* A frame's descriptor arrives with its first byte, so it is already here. */
            f.type &= ~IPC_HAS_FD;
            if (c->nfds == 0) {
                log_warnx("ipc: frame announces a descriptor that did not arrive");
                ipc_conn_kill(c);
                break;
            }
            f.fd = c->fds[0];
            memmove(c->fds, c->fds + 1, (size_t)(c->nfds - 1) * sizeof(int));
            c->nfds--;
        }
        off += IPC_HDR_LEN + len;
        c->cb(c, &f, c->arg);
    }
    c->in_cb = 0;
    if (c->free_pending) {
        struct ipc_conn *self = c;

        self->free_pending = 0;
        ipc_conn_free(&self);
        return -1;
    }
    buf_consume(&c->in, off);
    return 0;
}

static void
ipc_conn_io(int fd, int events, void *arg)
{
    struct ipc_conn *c = arg;

    (void)fd;
    if (events & EV_WRITE) {
        if (ipc_conn_flush(c) == -1) {
            ipc_conn_kill(c);
            return;
        }
        ipc_conn_watch(c);
    }
    if (!(events & EV_READ))
        return;
    for (int rounds = 0; rounds < 16 && !c->dead; rounds++) {
        size_t  want = c->in.limit - c->in.len < 65536 ? c->in.limit - c->in.len : 65536;
        void   *room = want ? buf_reserve(&c->in, want) : NULL;
        ssize_t n;

        if (room == NULL) {
            /* The limit allows one maximal frame: a full buffer is a protocol error. */
            log_warnx("ipc: input over limit");
            ipc_conn_kill(c);
            return;
        }
        n = ipc_recvmsg(c->sock, room, want, ipc_conn_keep_fd, c);
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0 || c->fd_overflow) {
            ipc_conn_kill(c);
            return;
        }
        buf_commit(&c->in, (size_t)n);
        if (ipc_conn_deliver(c) == -1)
            return;
        if ((size_t)n < want)
            break;
    }
}

/* Blocking helpers. */
int
ipc_send_frame(int sock, uint32_t type, uint32_t reqid, const struct buf *payload, int fd)
{
    size_t   plen = payload ? payload->len : 0;
    uint8_t *frame;
    size_t   off = 0;

    if (plen > IPC_MAX_FRAME) {
        errno = EMSGSIZE;
        return -1;
    }
    frame = xmalloc(IPC_HDR_LEN + plen);
    ipc_hdr_encode(frame, type | (fd >= 0 ? IPC_HAS_FD : 0), (uint32_t)plen, reqid);
    if (plen)
        memcpy(frame + IPC_HDR_LEN, payload->data, plen);
    while (off < IPC_HDR_LEN + plen) {
        ssize_t n = ipc_sendmsg(sock, frame + off, IPC_HDR_LEN + plen - off, off ? -1 : fd);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            free(frame);
            return -1;
        }
        off += (size_t)n;
    }
    free(frame);
    return 0;
}

struct ipc_fd_slot {
    int fd;
};

static void
ipc_keep_first_fd(int fd, void *arg)
{
    struct ipc_fd_slot *s = arg;

    if (s->fd == -1)
        s->fd = fd;
    else
        close(fd);
}

/* ipc_read_full - read exactly len bytes; -1 with errno 0 on EOF. */
static int
ipc_read_full(int sock, uint8_t *p, size_t len, struct ipc_fd_slot *slot)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = ipc_recvmsg(sock, p + off, len - off, ipc_keep_first_fd, slot);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == 0)
            errno = 0;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

int
ipc_recv_frame(int sock, struct buf *storage, struct ipc_frame *f)
{
    struct ipc_fd_slot slot = { -1 };
    uint8_t            hdr[IPC_HDR_LEN];
    uint32_t           len;
    uint8_t           *p;

    buf_reset(storage);
    if (ipc_read_full(sock, hdr, IPC_HDR_LEN, &slot) == -1)
        goto fail;
    ipc_hdr_decode(hdr, &f->type, &len, &f->reqid);
    if (len > IPC_MAX_FRAME) {
        errno = EMSGSIZE;
        goto fail;
    }
    if ((p = buf_reserve(storage, len)) == NULL) {
        errno = EMSGSIZE;
        goto fail;
    }
    if (ipc_read_full(sock, p, len, &slot) == -1)
        goto fail;
    buf_commit(storage, len);
    f->payload = (const uint8_t *)storage->data;
    f->len = len;
    f->fd = -1;
    if (f->type & IPC_HAS_FD) {
        f->type &= ~IPC_HAS_FD;
        if (slot.fd == -1) {
            errno = EPROTO;
            return -1;
        }
        f->fd = slot.fd;
    } else if (slot.fd != -1) {
        close(slot.fd);
    }
    return 0;
fail:
    if (slot.fd != -1)
        close(slot.fd);
    return -1;
}
