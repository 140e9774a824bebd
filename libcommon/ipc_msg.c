/* ipc_msg - encoders and decoders for every message in ipc_msg.h, generated from its table.
 *
 * Each message's fields are written and read in the order IPC_FIELDS_<name> lists them;
 * decoding fails on a short field, a malformed string or trailing bytes, and frees what it
 * allocated on the way, so a caller only ever sees a whole message or an error. */
#include <stdlib.h>
#include <string.h>

#include "ipc_msg.h"

#define IPC_ENC_U32(n)   ipc_put_u32(b, m->n);
#define IPC_ENC_U64(n)   ipc_put_u64(b, m->n);
#define IPC_ENC_STR(n)   ipc_put_str(b, m->n);
#define IPC_ENC_STRV(n)  ipc_put_strv(b, (char *const *)m->n, m->n##_n);
#define IPC_ENC_U32V(n)  ipc_put_u32v(b, m->n, m->n##_n);
#define IPC_ENC_BYTES(n) ipc_put_bytes(b, m->n, m->n##_len);
#define IPC_ENC_FIELD(kind, n) IPC_ENC_##kind(n)

#define IPC_DEC_U32(n)   ipc_get_u32(&c, &m->n);
#define IPC_DEC_U64(n)   ipc_get_u64(&c, &m->n);
#define IPC_DEC_STR(n)   ipc_get_str(&c, &m->n);
#define IPC_DEC_STRV(n)  if (!c.failed) ipc_get_strv(&c, &m->n, &m->n##_n);
#define IPC_DEC_U32V(n)  if (!c.failed) ipc_get_u32v(&c, &m->n, &m->n##_n);
#define IPC_DEC_BYTES(n) ipc_get_bytes(&c, &m->n, &m->n##_len);
#define IPC_DEC_FIELD(kind, n) IPC_DEC_##kind(n)

#define IPC_CLR_U32(n)
#define IPC_CLR_U64(n)
#define IPC_CLR_STR(n)
#define IPC_CLR_STRV(n)  free((void *)m->n); m->n = NULL; m->n##_n = 0;
#define IPC_CLR_U32V(n)  free((void *)m->n); m->n = NULL; m->n##_n = 0;
#define IPC_CLR_BYTES(n)
#define IPC_CLR_FIELD(kind, n) IPC_CLR_##kind(n)

#define IPC_DEFINE_MSG(sym, num, name)                                                    \
    int                                                                                   \
    ipc_##name##_enc(struct buf *b, const struct ipc_##name *m)                           \
    {                                                                                     \
        size_t start = b->len;                                                            \
        IPC_FIELDS_##name(IPC_ENC_FIELD)                                                  \
        return b->len - start > IPC_MAX_FRAME ? -1 : 0;                                   \
    }                                                                                     \
    int                                                                                   \
    ipc_##name##_dec(const struct ipc_frame *f, struct ipc_##name *m)                     \
    {                                                                                     \
        struct ipc_cur c;                                                                 \
        memset(m, 0, sizeof(*m));                                                         \
        if (f->type != sym)                                                               \
            return -1;                                                                    \
        ipc_cur_init(&c, f);                                                              \
        IPC_FIELDS_##name(IPC_DEC_FIELD)                                                  \
        if (ipc_cur_end(&c) == -1) {                                                      \
            ipc_##name##_clear(m);                                                        \
            return -1;                                                                    \
        }                                                                                 \
        return 0;                                                                         \
    }                                                                                     \
    void                                                                                  \
    ipc_##name##_clear(struct ipc_##name *m)                                              \
    {                                                                                     \
        IPC_FIELDS_##name(IPC_CLR_FIELD)                                                  \
        (void)m;                                                                          \
    }                                                                                     \
    int                                                                                   \
    ipc_##name##_send(struct ipc_conn *conn, uint32_t reqid, const struct ipc_##name *m,  \
                      int fd)                                                             \
    {                                                                                     \
        struct buf b;                                                                     \
        int        rc;                                                                    \
        buf_init(&b, 256);                                                                \
        rc = ipc_##name##_enc(&b, m);                                                     \
        if (rc == 0)                                                                      \
            rc = ipc_conn_send(conn, sym, reqid, &b, fd);                                 \
        buf_release(&b);                                                                  \
        return rc;                                                                        \
    }
IPC_MESSAGES(IPC_DEFINE_MSG)

const char *
ipc_type_name(uint32_t type)
{
#define IPC_NAME_CASE(sym, num, name) case sym: return #name;
    switch (type) {
    IPC_MESSAGES(IPC_NAME_CASE)
    }
#undef IPC_NAME_CASE
    return "unknown";
}
