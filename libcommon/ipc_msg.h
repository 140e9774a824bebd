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
 * `const uint8_t *x` with `x_len`. Field kinds: U32, U64, STR, STRV, U32V, BYTES.
 * Bump IPC_VERSION on any change: master refuses a daemon of another version. */
#ifndef POSTERN_IPC_MSG_H
#define POSTERN_IPC_MSG_H

#include <stdint.h>

#include "buf.h"
#include "ipc.h"

#define IPC_VERSION 6

/* Peer kinds, named in IPC_MASTER_PEER and IPC_MASTER_HELLO. */
enum ipc_peer_kind {
    IPC_PEER_MASTER = 0,
    IPC_PEER_QMGR   = 1,
    IPC_PEER_SMTPD  = 2,
    IPC_PEER_LOCAL  = 3,
    IPC_PEER_SMTP   = 4,
    IPC_PEER_ANVIL  = 5,
};

/* Envelope flags (COMMIT, DELIVER). */
#define IPC_F_SMTPUTF8   0x01u     /* MAIL ... SMTPUTF8 */
#define IPC_F_8BITMIME   0x02u     /* MAIL ... BODY=8BITMIME */
#define IPC_F_HOLD       0x100u    /* COMMIT: a policy said HOLD: queue it on hold
                                    * (= QREC_F_HOLD) */

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
    X(IPC_MASTER_CAPS,  4, master_caps)  /* daemon -> master: control messages it serves */ \
    X(IPC_MSG_OPEN,    10, msg_open)     /* smtpd -> qmgr: new message                  */ \
    X(IPC_MSG_OPENED,  11, msg_opened)   /* qmgr -> smtpd: queue id, +write fd          */ \
    X(IPC_MSG_COMMIT,  12, msg_commit)   /* smtpd -> qmgr: envelope, data complete      */ \
    X(IPC_MSG_ABORT,   13, msg_abort)    /* smtpd -> qmgr: transaction dropped          */ \
    X(IPC_MSG_QUEUED,  14, msg_queued)   /* qmgr -> smtpd: durable (status 0), send 250 */ \
    X(IPC_DELIVER,     20, deliver)      /* qmgr -> agent: one recipient, +read fd      */ \
    X(IPC_DELIVERED,   21, delivered)    /* agent -> qmgr: result for that recipient    */ \
    X(IPC_RELAY,       22, relay)        /* qmgr -> smtp: one message, n rcpts, +read fd */ \
    X(IPC_RELAYED,     23, relayed)      /* smtp -> qmgr: per-recipient results         */ \
    X(IPC_CTL_REQUEST, 30, ctl_request)  /* CLI -> master: one command per connection   */ \
    X(IPC_CTL_HANDOFF, 31, ctl_handoff)  /* master -> qmgr: a CLI's request, +its socket */ \
    X(IPC_CTL_MSG,     32, ctl_msg)      /* qmgr -> CLI: one queued message (show: +fd) */ \
    X(IPC_CTL_RESULT,  33, ctl_result)   /* qmgr -> CLI: the outcome for one queue ID   */ \
    X(IPC_CTL_DONE,    34, ctl_done)     /* -> CLI: end of the reply, overall status    */ \
    X(IPC_CTL_STATS,   35, ctl_stats)    /* master -> CLI: daemons and their counters   */ \
    X(IPC_CTL_COUNTERS_REQ, 36, ctl_counters_req) /* master -> daemon: send counters    */ \
    X(IPC_CTL_COUNTERS, 37, ctl_counters) /* daemon -> master: its counters             */ \
    X(IPC_CTL_LOG_LEVEL, 38, ctl_log_level) /* master -> daemon: new log level          */ \
    X(IPC_CTL_PAUSE,   39, ctl_pause)    /* master -> smtpd: stop/resume accepting      */ \
    X(IPC_ANVIL_REQ,   40, anvil_req)    /* smtpd -> anvil: count an event of a client  */ \
    X(IPC_ANVIL_REPLY, 41, anvil_reply)  /* anvil -> smtpd: the client's counts now     */

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
    F(STRV, text)           /* the remote reply or our own diagnostic, per recipient */   \
    F(U32V, flags)          /* IPC_RELAYED_* per recipient */

/* Per-recipient result flags (relayed.flags). */
#define IPC_RELAYED_DSN     0x1u   /* the next hop announced DSN, so NOTIFY/ORCPT went with
                                    * the RCPT and it reports success itself (RFC 3461) */

/* The control channel (public/control; doc/internals.md "Control channel"). The CLI
 * connects, sends one CTL_REQUEST and reads frames until CTL_DONE. master serves daemon
 * commands itself; queue commands go to qmgr as CTL_HANDOFF with the client's socket, and
 * qmgr answers the client directly. A daemon that sends MASTER_CAPS after HELLO gets the
 * CTL_* messages its bits name; master sends a daemon nothing it did not ask for (local
 * and smtp treat an unknown frame from master as fatal). */
#define IPC_CAP_COUNTERS   0x1u    /* answers CTL_COUNTERS_REQ with CTL_COUNTERS */
#define IPC_CAP_LOG_LEVEL  0x2u    /* applies CTL_LOG_LEVEL */
#define IPC_CAP_PAUSE      0x4u    /* smtpd: applies CTL_PAUSE (stop/resume accepting) */

/* Commands (ctl_request.cmd). Q = served by qmgr, M = by master; * = admin only. */
enum ipc_ctl_cmd {
    IPC_CTL_LIST     = 1,          /* Q: every visible message, one CTL_MSG each */
    IPC_CTL_SHOW     = 2,          /* Q: args[0] = qid: CTL_MSG with a read fd on the body */
    IPC_CTL_HOLD     = 3,          /* Q*: args = qids: CTL_RESULT each */
    IPC_CTL_RELEASE  = 4,          /* Q*: clear hold, due now */
    IPC_CTL_DELETE   = 5,          /* Q*: records and body removed, no DSN */
    IPC_CTL_RETRY    = 6,          /* Q*: every pending recipient due now */
    IPC_CTL_EXPIRE   = 7,          /* Q*: lifetime over now: bounced through the DSN path */
    IPC_CTL_PAUSE_DELIVERY  = 8,   /* Q*: qmgr stops dispatching */
    IPC_CTL_RESUME_DELIVERY = 9,   /* Q*: qmgr dispatches again */
    IPC_CTL_STATS_CMD = 20,        /* M: CTL_STATS (status and stats) */
    IPC_CTL_LOG_LEVEL_CMD = 21,    /* M*: args[0] = err|warn|info|debug, to every daemon */
    IPC_CTL_PAUSE_SMTPD  = 22,     /* M*: CTL_PAUSE{1} to every smtpd */
    IPC_CTL_RESUME_SMTPD = 23,     /* M*: CTL_PAUSE{0} to every smtpd */
};
#define IPC_CTL_MAX_ARGS   100000  /* queue IDs per request */

#define IPC_FIELDS_master_caps(F)                                                         \
    F(U32, caps)            /* IPC_CAP_* */

#define IPC_FIELDS_ctl_request(F)                                                         \
    F(U32, cmd)             /* enum ipc_ctl_cmd */                                        \
    F(STRV, args)           /* queue IDs, or the command's operand */                     \
    F(U32, flags)           /* none defined yet: 0 */

/* The uid, admin flag and user name are master's findings (SO_PEERCRED, getpwuid,
 * getgrouplist); the request is the client's, already decoded and checked by master. */
#define IPC_FIELDS_ctl_handoff(F)                                                         \
    F(U32, uid)                                                                           \
    F(U32, admin)           /* 1: root or a member of admin_group */                      \
    F(STR, user)            /* the uid's login name, "" if it has none */                 \
    F(U32, cmd)                                                                           \
    F(STRV, args)                                                                         \
    F(U32, flags)

/* One message; only its pending (not final) recipients, at most IPC_CTL_RCPT_MAX of them
 * (rcpt_omitted counts the rest). Times are seconds since the epoch; per-recipient times
 * are u32 (enough until 2106). */
#define IPC_CTL_RCPT_MAX   1000
#define IPC_CTL_TEXT_MAX   300     /* bytes of a recipient's last reply that are sent */
#define IPC_FIELDS_ctl_msg(F)                                                             \
    F(STR, qid)                                                                           \
    F(U32, flags)           /* QREC_F_* */                                                \
    F(U32, active)          /* 1: a recipient is in qmgr's memory (due or in flight) */   \
    F(U64, arrival)                                                                       \
    F(U64, expiry)                                                                        \
    F(U64, size)                                                                          \
    F(STR, sender)          /* "" for <> */                                               \
    F(U32, nrcpt)           /* recipients of the message in all, final ones included */   \
    F(U32, rcpt_omitted)                                                                  \
    F(STRV, rcpt)           /* address */                                                 \
    F(STRV, orig)           /* as given at RCPT TO */                                     \
    F(U32V, state)          /* enum qrec_state */                                         \
    F(U32V, attempts)                                                                     \
    F(U32V, next_attempt)                                                                 \
    F(STRV, dsn)            /* last enhanced status code or "" */                         \
    F(STRV, text)           /* last reply or diagnostic or "" */

#define IPC_FIELDS_ctl_result(F)                                                          \
    F(STR, qid)                                                                           \
    F(U32, status)          /* 0 done; else an errno: ENOENT no such message, EPERM */    \
    F(STR, text)

#define IPC_FIELDS_ctl_done(F)                                                            \
    F(U32, status)          /* 0 ok; else an errno (EPERM refused, EINVAL bad request) */ \
    F(STR, text)            /* for the user when status != 0, or a note */

/* Per daemon (parallel arrays), then every counter as (daemon index, name, value). */
#define IPC_FIELDS_ctl_stats(F)                                                           \
    F(U64, now)                                                                           \
    F(U32, master_pid)                                                                    \
    F(U64, master_uptime)   /* seconds */                                                 \
    F(STRV, daemon)         /* "qmgr", "smtpd", ... */                                    \
    F(U32V, slot)                                                                         \
    F(U32V, pid)                                                                          \
    F(U32V, uptime)         /* seconds */                                                 \
    F(U32V, restarts)       /* of this slot since master started */                       \
    F(U32V, answered)       /* 1: counters below are this daemon's; 0: it has none */     \
    F(U32V, cdaemon)        /* index into the arrays above */                             \
    F(STRV, cname)                                                                        \
    F(BYTES, cvalue)        /* one big-endian u64 per counter */

#define IPC_FIELDS_ctl_counters_req(F)                                                    \
    F(U32, flags)           /* 0 */

#define IPC_FIELDS_ctl_counters(F)                                                        \
    F(STRV, name)           /* "messages_received", ... (doc/status.md) */                \
    F(BYTES, value)         /* one big-endian u64 per name */

#define IPC_FIELDS_ctl_log_level(F)                                                       \
    F(U32, level)           /* enum log_level */

#define IPC_FIELDS_ctl_pause(F)                                                           \
    F(U32, paused)          /* 1: stop accepting; 0: accept again */

/* anvil: per-client counters shared by all smtpd processes (daemons/anvil). smtpd sends
 * an event; anvil counts it and, when reqid != 0, answers with the counts after it; smtpd
 * compares them with its limits (anvil knows no limits, only anvil_rate_time_unit). */
enum ipc_anvil_event {
    IPC_ANVIL_CONNECT    = 1,      /* a session starts: concurrent +1, connection rate +1 */
    IPC_ANVIL_DISCONNECT = 2,      /* it ends: concurrent -1 (never answered) */
    IPC_ANVIL_MAIL       = 3,      /* a MAIL FROM accepted: message rate +1 */
    IPC_ANVIL_RCPT       = 4,      /* a RCPT TO accepted: recipient rate +1 */
    IPC_ANVIL_AUTH_FAIL  = 5,      /* a failed AUTH: auth failure rate +1 */
    IPC_ANVIL_AUTH_QUERY = 6,      /* before an AUTH: the failure rate, nothing counted */
};

#define IPC_FIELDS_anvil_req(F)                                                           \
    F(U32, event)           /* enum ipc_anvil_event */                                    \
    F(STR, client)          /* the client's address, as in logs */

#define IPC_FIELDS_anvil_reply(F)                                                         \
    F(U32, event)           /* as asked */                                                \
    F(U32, concurrent)      /* the client's open sessions (all smtpd processes) */        \
    F(U32, rate)            /* events of this kind in the current time unit */

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
