/* local_body - copy a spool body into a mailbox file.
 *
 * See local_body.h. The conversion is a byte-at-a-time state machine over a 64 KB read
 * buffer, so a CR at the end of one read and its LF at the start of the next still make one
 * LF, and a `From ` split across reads is still quoted. The mboxrd scan holds no bytes: at
 * the start of a line it only counts `>` characters and how much of "From " matched. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "ipc_msg.h"
#include "local.h"
#include "local_body.h"

#define LOCAL_BODY_CHUNK  65536

/* Output through a buffer, counting what was written. */
struct local_body_out {
    int      fd;
    size_t   len;
    uint64_t total;
    char     data[LOCAL_BODY_CHUNK];
};

/* local_body_flush - write the buffer out. -1 with errno set. */
static int
local_body_flush(struct local_body_out *o)
{
    size_t off = 0;

    while (off < o->len) {
        ssize_t n = write(o->fd, o->data + off, o->len - off);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        off += (size_t)n;
    }
    o->total += o->len;
    o->len = 0;
    return 0;
}

/* local_body_put - append bytes to the buffer, flushing when full. -1 with errno set. */
static int
local_body_put(struct local_body_out *o, const char *p, size_t n)
{
    while (n > 0) {
        size_t room = sizeof(o->data) - o->len, k = n < room ? n : room;

        memcpy(o->data + o->len, p, k);
        o->len += k;
        p += k;
        n -= k;
        if (o->len == sizeof(o->data) && local_body_flush(o) == -1)
            return -1;
    }
    return 0;
}

/* local_body_putc - append one byte. */
static int
local_body_putc(struct local_body_out *o, char c)
{
    if (o->len == sizeof(o->data) && local_body_flush(o) == -1)
        return -1;
    o->data[o->len++] = c;
    return 0;
}

/* The line state of the conversion. */
struct local_body_state {
    int      flags;
    int      pending_cr;    /* a CR was read; the next byte decides */
    int      scanning;      /* mbox: at a line start, matching ^>*From  */
    uint64_t n_gt;          /* '>' characters seen in this scan */
    size_t   k;             /* bytes of "From " matched in this scan */
    char     last;          /* last byte written, for the final newline in mbox mode */
};

static const char local_body_from[] = "From ";

/* local_body_scan_flush - give back what the mboxrd scan held, unquoted. */
static int
local_body_scan_flush(struct local_body_out *o, struct local_body_state *s)
{
    for (; s->n_gt > 0; s->n_gt--)
        if (local_body_putc(o, '>') == -1)
            return -1;
    if (s->k > 0 && local_body_put(o, local_body_from, s->k) == -1)
        return -1;
    if (s->k > 0)
        s->last = local_body_from[s->k - 1];
    s->k = 0;
    s->scanning = 0;
    return 0;
}

/* local_body_logical - one byte after CRLF conversion: quote in mbox mode, then write. */
static int
local_body_logical(struct local_body_out *o, struct local_body_state *s, char c)
{
    if (s->scanning) {
        if (s->k == 0 && c == '>') {
            s->n_gt++;
            s->last = c;
            return 0;
        }
        if (c == local_body_from[s->k]) {
            if (++s->k < sizeof(local_body_from) - 1)
                return 0;
            s->scanning = 0;
            s->k = 0;
            if (local_body_putc(o, '>') == -1)
                return -1;
            for (; s->n_gt > 0; s->n_gt--)
                if (local_body_putc(o, '>') == -1)
                    return -1;
            s->last = ' ';
            return local_body_put(o, local_body_from, sizeof(local_body_from) - 1);
        }
        if (local_body_scan_flush(o, s) == -1)
            return -1;
    }
    if (local_body_putc(o, c) == -1)
        return -1;
    s->last = c;
    if (c == '\n' && (s->flags & LOCAL_BODY_MBOX))
        s->scanning = 1;
    return 0;
}

/* local_body_convert - feed n raw spool bytes through the CRLF and From-quoting filter. */
static int
local_body_convert(struct local_body_out *o, struct local_body_state *s, const char *p,
                   size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];

        if (s->pending_cr) {
            s->pending_cr = 0;
            if (c == '\n') {
                if (local_body_logical(o, s, '\n') == -1)
                    return -1;
                continue;
            }
            if (local_body_logical(o, s, '\r') == -1)
                return -1;
        }
        if (c == '\r') {
            s->pending_cr = 1;
            continue;
        }
        /* Fast path: outside a line-start scan, copy up to the next CR in one go. */
        if (!s->scanning && !(s->flags & LOCAL_BODY_MBOX)) {
            const char *cr = memchr(p + i, '\r', n - i);
            size_t      run = cr ? (size_t)(cr - (p + i)) : n - i;

            if (local_body_put(o, p + i, run) == -1)
                return -1;
            s->last = p[i + run - 1];
            i += run - 1;
            continue;
        }
        if (local_body_logical(o, s, c) == -1)
            return -1;
    }
    return 0;
}

/* local_body_copy - write prefix and the converted body to out_fd. */
int
local_body_copy(const struct local_msg *msg, int out_fd, const char *prefix, int flags,
                uint64_t *written, struct local_result *res)
{
    struct local_body_out  *o = xmalloc(sizeof(*o));
    struct local_body_state s;
    char                   *in = xmalloc(LOCAL_BODY_CHUNK);
    uint64_t                off = 0;
    int                     rc = -1;

    o->fd = out_fd;
    o->len = 0;
    o->total = 0;
    memset(&s, 0, sizeof(s));
    s.flags = flags;
    s.scanning = (flags & LOCAL_BODY_MBOX) != 0;
    *written = 0;
    if (local_body_put(o, prefix, strlen(prefix)) == -1)
        goto write_error;
    for (;;) {
        ssize_t n = pread(msg->body_fd, in, LOCAL_BODY_CHUNK, (off_t)off);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            local_result_set(res, IPC_DELIV_TEMP, "4.3.0", "read of the queued body: %s",
                             strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        off += (uint64_t)n;
        if (local_body_convert(o, &s, in, (size_t)n) == -1)
            goto write_error;
    }
    if (off < msg->size) {
        local_result_set(res, IPC_DELIV_TEMP, "4.3.0",
                         "short read of the queued body (%llu of %llu bytes)",
                         (unsigned long long)off, (unsigned long long)msg->size);
        goto out;
    }
    if (s.pending_cr && local_body_logical(o, &s, '\r') == -1)
        goto write_error;
    if (s.scanning && local_body_scan_flush(o, &s) == -1)
        goto write_error;
    if (flags & LOCAL_BODY_MBOX) {
        /* An mbox message ends with an empty line, so the next "From " starts a line. */
        if (s.last != '\n' && local_body_putc(o, '\n') == -1)
            goto write_error;
        if (local_body_putc(o, '\n') == -1)
            goto write_error;
    }
    if (local_body_flush(o) == -1)
        goto write_error;
    *written = o->total;
    rc = 0;
    goto out;

write_error:
    local_result_errno(res, errno, "write to the mailbox");
out:
    free(in);
    free(o);
    return rc;
}

/* local_body_header_value - copy for a header line, control characters made harmless. */
char *
local_body_header_value(const char *in)
{
    char *s = xstrdup(in);

    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return s;
}
