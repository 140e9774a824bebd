/* ipc_msg - every message that crosses a process boundary, declared once.
 *
 * IPC_MESSAGES lists the types; IPC_FIELDS_<name> lists each message's fields in wire order.
 * From these ipc_msg.c generates, per message, a struct ipc_<name> and
 *   int  ipc_<name>_enc(struct buf *, const struct ipc_<name> *);
 *   int  ipc_<name>_dec(const struct ipc_frame *, struct ipc_<name> *);  -1: malformed
 *   void ipc_<name>_clear(struct ipc_<name> *);       frees decoded arrays (STRV, U32V)
 *   int  ipc_<name>_send(struct ipc_conn *, uint32_t reqid, const struct ipc_<name> *, int fd);
 * Decoded strings point into the frame: copy what must outlive the callback. A STRV field
 * `x` is `const char **x` with its count in `x_n`; U32V likewise; BYTES `x` is
 * `const uint8_t *x` with `x_len`. Field kinds: U32, U64, STR, STRV, U32V, BYTES. Bump IPC_VERSION on any change: master refuses a daemon of another version. */
#ifndef POSTERN_IPC_MSG_H
#define POSTERN_IPC_MSG_H

#include <stdint.h>

#include "buf.h"
#include "ipc.h"

#define IPC_VERSION 3

/* Peer kinds, named in IPC_MASTER_PEER and IPC_MASTER_HELLO. */
enum ipc_peer_kind {
    IPC_PEER_MASTER = 0,
    IPC_PEER_QMGR   = 1,
    IPC_PEER_SMTPD  = 2,
    IPC_PEER_LOCAL  = 3,
    IPC_PEER_SMTP   = 4,
};

/* Envelope flags (COMMIT, DELIVER). */
#define IPC_F_SMTPUTF8   0x01u     /* MAIL ... SMTPUTF8 */
#define IPC_F_8BITMIME   0x02u     /* MAIL ... BODY=8BITMIME */

/* Delivery results (DELIVERED.status). */
enum ipc_deliv_status {
    IPC_DELIV_OK   = 0,            /* delivered: the recipient is done */
    IPC_DELIV_TEMP = 1,            /* try again later */
    IPC_DELIV_PERM = 2,            /* failed for good: bounce */
};

#define IPC_MESSAGES(X)                                                                   \
    X(IPC_MASTER_PEER,  1, master_peer)  /* master -> daemon: a socket to a peer, +fd   */ \
    X(IPC_MASTER_HELLO, 2, master_hello) /* daemon -> master: started, ready            */ \
    X(IPC_MASTER_TLS_KEYS, 3, master_tls_keys) /* master -> smtpd: session-ticket keys  */ \
    X(IPC_MSG_OPEN,    10, msg_open)     /* smtpd -> qmgr: new message                  */ \
    X(IPC_MSG_OPENED,  11, msg_opened)   /* qmgr -> smtpd: queue id, +write fd          */ \
    X(IPC_MSG_COMMIT,  12, msg_commit)   /* smtpd -> qmgr: envelope, data complete      */ \
    X(IPC_MSG_ABORT,   13, msg_abort)    /* smtpd -> qmgr: transaction dropped          */ \
    X(IPC_MSG_QUEUED,  14, msg_queued)   /* qmgr -> smtpd: durable (status 0), send 250 */ \
    X(IPC_DELIVER,     20, deliver)      /* qmgr -> agent: one recipient, +read fd      */ \
    X(IPC_DELIVERED,   21, delivered)    /* agent -> qmgr: result for that recipient    */ \
    X(IPC_RELAY,       22, relay)        /* qmgr -> smtp: one message, n rcpts, +read fd */ \
    X(IPC_RELAYED,     23, relayed)      /* smtp -> qmgr: per-recipient results         */

#define IPC_FIELDS_master_peer(F)                                                         \
    F(U32, kind)            /* enum ipc_peer_kind of the process at the other end */      \
    F(U32, id)              /* that process's slot number, for logs */

#define IPC_FIELDS_master_hello(F)                                                        \
    F(U32, version)         /* IPC_VERSION */                                             \
    F(U32, kind)            /* enum ipc_peer_kind */                                      \
    F(U32, pid)

#define IPC_FIELDS_master_tls_keys(F)                                                     \
    F(BYTES, keys)          /* n * TLS_TICKET_KEY_LEN bytes, newest (encrypting) first */

#define IPC_FIELDS_msg_open(F)                                                            \
    F(STR, client_addr)     /* for qmgr's log line */

#define IPC_FIELDS_msg_opened(F)                                                          \
    F(U32, status)          /* 0: ok, the frame carries the write fd; else an errno */    \
    F(STR, qid)

#define IPC_FIELDS_msg_commit(F)                                                          \
    F(STR, qid)                                                                           \
    F(U64, size)            /* bytes written to the body file */                          \
    F(U32, flags)           /* IPC_F_* */                                                 \
    F(STR, sender)          /* envelope sender, "" for <> */                              \
    F(STR, client_addr)                                                                   \
    F(STR, client_name)                                                                   \
    F(STR, helo)                                                                          \
    F(STR, protocol)        /* SMTP, ESMTP, ESMTPS, ESMTPSA ... */                        \
    F(STR, auth_user)                                                                     \
    F(STR, envid)           /* DSN ENVID, xtext-decoded, or "" */                         \
    F(U32, ret)             /* DSN RET: 0 unset, 1 FULL, 2 HDRS */                        \
    F(STRV, rcpts)                                                                        \
    F(STRV, orcpts)         /* DSN ORCPT per recipient, "" if none */                     \
    F(U32V, notify)         /* DSN NOTIFY bits per recipient, 0 if unset */

#define IPC_FIELDS_msg_abort(F)                                                           \
    F(STR, qid)

#define IPC_FIELDS_msg_queued(F)                                                          \
    F(U32, status)          /* 0: committed durably; else failed, nothing queued */       \
    F(STR, qid)                                                                           \
    F(STR, text)            /* reason when status != 0, for smtpd's log */

#define IPC_FIELDS_deliver(F)                                                             \
    F(STR, qid)                                                                           \
    F(U32, rcpt_index)                                                                    \
    F(U32, flags)           /* IPC_F_* */                                                 \
    F(U64, arrival)         /* seconds since the epoch */                                 \
    F(U64, size)                                                                          \
    F(STR, sender)                                                                        \
    F(STR, rcpt)                                                                          \
    F(STR, orig_rcpt)

#define IPC_FIELDS_delivered(F)                                                           \
    F(STR, qid)                                                                           \
    F(U32, rcpt_index)                                                                    \
    F(U32, status)          /* enum ipc_deliv_status */                                   \
    F(STR, dsn)             /* enhanced status code, e.g. "2.0.0", "4.2.2" */             \
    F(STR, text)            /* diagnostic for the log and the bounce */

/* The outbound agent gets one message for one next hop with every recipient that goes
 * there; it answers once, with a result per recipient in the same order. */
#define IPC_FIELDS_relay(F)                                                               \
    F(STR, qid)                                                                           \
    F(U32, flags)           /* IPC_F_* */                                                 \
    F(U64, size)                                                                          \
    F(STR, sender)                                                                        \
    F(STR, envid)           /* DSN ENVID or "" */                                         \
    F(U32, ret)             /* DSN RET: 0 unset, 1 FULL, 2 HDRS */                        \
    F(STR, transport)       /* "smtp" or "lmtp" */                                        \
    F(STR, nexthop)         /* "domain" (MX), "[host]:port" (no MX), "unix:/path" (LMTP) */ \
    F(U32, tls_level)       /* enum tls_level */                                          \
    F(STRV, rcpts)                                                                        \
    F(U32V, rcpt_index)     /* qmgr's index of each recipient */                          \
    F(STRV, orcpts)         /* DSN ORCPT per recipient, "" if none */                     \
    F(U32V, notify)         /* DSN NOTIFY bits per recipient */

#define IPC_FIELDS_relayed(F)                                                             \
    F(STR, qid)                                                                           \
    F(STR, relay)           /* "mx.b.test[192.0.2.1]:25" for the log */                   \
    F(STR, tls)             /* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "" */                  \
    F(U32V, rcpt_index)                                                                   \
    F(U32V, status)         /* enum ipc_deliv_status per recipient */                     \
    F(STRV, dsn)            /* enhanced status code per recipient */                      \
    F(STRV, text)           /* the remote reply or our own diagnostic, per recipient */

/* DSN NOTIFY bits (msg_commit.notify, relay.notify). */
#define IPC_NOTIFY_NEVER    0x1u
#define IPC_NOTIFY_SUCCESS  0x2u
#define IPC_NOTIFY_FAILURE  0x4u
#define IPC_NOTIFY_DELAY    0x8u

/* Message type numbers. */
#define IPC_ENUM_ENTRY(sym, num, name) sym = num,
enum ipc_type { IPC_MESSAGES(IPC_ENUM_ENTRY) };
#undef IPC_ENUM_ENTRY

/* Field declarations per kind. */
#define IPC_DECL_U32(n)   uint32_t n;
#define IPC_DECL_U64(n)   uint64_t n;
#define IPC_DECL_STR(n)   const char *n;
#define IPC_DECL_STRV(n)  const char **n; uint32_t n##_n;
#define IPC_DECL_U32V(n)  const uint32_t *n; uint32_t n##_n;
#define IPC_DECL_BYTES(n) const uint8_t *n; uint32_t n##_len;
#define IPC_DECL_FIELD(kind, n) IPC_DECL_##kind(n)

#define IPC_DECL_MSG(sym, num, name)                                                      \
    struct ipc_##name { IPC_FIELDS_##name(IPC_DECL_FIELD) };                              \
    int  ipc_##name##_enc(struct buf *, const struct ipc_##name *);                       \
    int  ipc_##name##_dec(const struct ipc_frame *, struct ipc_##name *);                 \
    void ipc_##name##_clear(struct ipc_##name *);                                         \
    int  ipc_##name##_send(struct ipc_conn *, uint32_t reqid, const struct ipc_##name *,  \
                           int fd);
IPC_MESSAGES(IPC_DECL_MSG)
#undef IPC_DECL_MSG

const char *ipc_type_name(uint32_t type);   /* "msg_commit", or "unknown" */

#endif
