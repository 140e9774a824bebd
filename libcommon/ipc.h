/* ipc - typed, length-prefixed messages over UNIX sockets, with descriptor passing.
 *
 * A frame is a 12-byte header (u32 type, u32 payload length, u32 request id, all big-endian;
 * the top bit of the type says a descriptor rides with the frame)
 * and a payload of typed, length-prefixed fields whose layout is declared once per message in
 * ipc_msg.h. One descriptor may travel with a frame (SCM_RIGHTS). Frames over IPC_MAX_FRAME
 * are refused on both sides. Decoding checks every length, requires NUL-free strings and
 * rejects trailing bytes: a malformed frame is an error for the caller to handle (drop an
 * untrusted peer, fatalx() for a trusted one), never undefined behaviour.
 *
 * struct ipc_conn wraps a non-blocking socket on the ev loop: outgoing frames are queued and
 * written when the socket is writable; each complete incoming frame is passed to the
 * connection's callback. Blocking helpers serve the CLI. Used by every daemon and the CLI. */
#ifndef POSTERN_IPC_H
#define POSTERN_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "ev.h"

#define IPC_HDR_LEN    12
#define IPC_MAX_FRAME  (1024 * 1024)   /* payload bytes */

/* An encoded or received frame. payload points into the frame's own storage. */
struct ipc_frame {
    uint32_t       type;
    uint32_t       reqid;
    const uint8_t *payload;
    uint32_t       len;
    int            fd;          /* -1 if none; the receiver owns it and must close it */
};

/* Encoder: builds a payload field by field into a buf. */
void ipc_put_u32(struct buf *, uint32_t);
void ipc_put_u64(struct buf *, uint64_t);
void ipc_put_str(struct buf *, const char *);          /* NULL is sent as "" */
void ipc_put_strv(struct buf *, char *const *v, uint32_t n);
void ipc_put_u32v(struct buf *, const uint32_t *v, uint32_t n);
void ipc_put_bytes(struct buf *, const void *p, uint32_t len);

/* Decoder: a cursor over a payload. Every getter returns -1 once the payload is short or a
 * field is malformed, and the cursor then stays failed. Strings point into the payload. */
struct ipc_cur {
    const uint8_t *p;
    uint32_t       left;
    int            failed;
};
void ipc_cur_init(struct ipc_cur *, const struct ipc_frame *);
int  ipc_get_u32(struct ipc_cur *, uint32_t *);
int  ipc_get_u64(struct ipc_cur *, uint64_t *);
int  ipc_get_str(struct ipc_cur *, const char **);
int  ipc_get_strv(struct ipc_cur *, const char ***v, uint32_t *n);   /* *v: xcalloc'd array */
int  ipc_get_u32v(struct ipc_cur *, const uint32_t **v, uint32_t *n); /* *v: xcalloc'd array */
int  ipc_get_bytes(struct ipc_cur *, const uint8_t **p, uint32_t *len); /* into the payload */
int  ipc_cur_end(struct ipc_cur *);                                   /* -1: trailing bytes */

/* A connection on the event loop. The callback gets each frame, or NULL once the peer
 * closed the socket or sent a malformed frame; after a NULL callback the connection must be
 * freed by the owner (it is already removed from the loop). */
struct ipc_conn;
typedef void (*ipc_frame_cb)(struct ipc_conn *, const struct ipc_frame *, void *arg);

struct ipc_conn *ipc_conn_new(struct ev *, int fd, ipc_frame_cb, void *arg);
void             ipc_conn_free(struct ipc_conn **);    /* closes the socket */
int              ipc_conn_fd(const struct ipc_conn *);
/* ipc_conn_send - queue a frame; a copy of fd (or -1) is sent with it, the caller keeps and
 * closes its own. Returns -1 if the connection is dead or its queue exceeds its limit; a
 * write error is reported through the callback (NULL frame) from the loop, never from
 * inside this call. */
int              ipc_conn_send(struct ipc_conn *, uint32_t type, uint32_t reqid,
                               const struct buf *payload, int fd);
size_t           ipc_conn_pending(const struct ipc_conn *);  /* bytes not yet written */
/* ipc_conn_peer_uid - SO_PEERCRED uid and pid of the peer (-1 if unknown). */
int              ipc_conn_peer(const struct ipc_conn *, uid_t *uid, pid_t *pid);

/* Blocking helpers (CLI, start-up handshakes). Return -1 on error or EOF (errno 0 for EOF). */
int ipc_send_frame(int sock, uint32_t type, uint32_t reqid, const struct buf *payload, int fd);
/* ipc_recv_frame - read one whole frame into storage (reset first) and describe it in f. */
int ipc_recv_frame(int sock, struct buf *storage, struct ipc_frame *f);

#endif
