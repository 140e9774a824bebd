/* smtp - the outbound SMTP/LMTP delivery agent: what its modules share.
 *
 * smtp.c is the process (start-up, privileges, the master and qmgr channels, RELAY in and
 * RELAYED out with one log line per recipient); smtp_session.c delivers one job: it routes
 * the next hop (smtp_dns.c, libcommon/dns.c), connects, speaks SMTP through libsmtp's
 * client state machine and libtls, and keeps idle connections for reuse. A job always ends
 * in exactly one call of smtp_job_done(), with a result for every recipient. */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include <stddef.h>
#include <stdint.h>

#include "ev.h"
#include "smtp_client.h"
#include "smtp_dns.h"
#include "tls.h"

struct map;

struct smtp_session;

/* The agent's settings, read once at start. */
struct smtp_settings {
    struct ev      *ev;
    struct tls_ctx *tls;                 /* NULL: no TLS possible */
    const char     *helo_name;
    uint64_t        connect_timeout_ms;
    uint64_t        reply_timeout_ms;
    uint64_t        reuse_ms;            /* 0: no connection reuse */
    size_t          max_connections;
    const char     *chroot;              /* the directory we run in, NULL: no chroot */
    struct map     *sasl_map;            /* smtp_sasl_password_map, NULL: no AUTH */
};

/* One recipient's outcome (status is an enum ipc_deliv_status, or SMTP_OPEN). */
#define SMTP_OPEN UINT32_MAX
struct smtp_result {
    uint32_t status;
    uint32_t flags;                      /* IPC_RELAYED_* */
    char     dsn[16];
    char    *text;
};

/* One IPC_RELAY: one message, one next hop, n recipients. */
struct smtp_job {
    uint32_t                reqid;
    uint64_t                qmgr_gen;    /* answer only on the connection it came from */
    char                   *qid, *sender, *envid, *transport, *nexthop;
    uint32_t                flags, ret, tls_level;
    uint64_t                size;
    size_t                  n;
    char                  **rcpts, **orcpts;
    uint32_t               *idx, *notify;
    int                     fd;          /* body, read-only */
    uint64_t                start_ms;
    struct smtp_client_msg  msg;
    struct smtp_result     *res;
    char                    relay[SMTP_DNS_NAME_MAX + 80];
    char                    tls[128];
    /* routing, owned by smtp_session.c */
    int                     lmtp;
    struct smtp_nexthop     nh;
    struct smtp_mx          mx[SMTP_DNS_MX_MAX];
    size_t                  nmx, mx_cur;
    int                     implicit_mx; /* no MX: the domain itself */
    struct smtp_addr        addrs[32];
    size_t                  naddrs, addr_cur;
    int                     dns_id[2];
    int                     dns_pending;
    int                     dns_status[2];
    unsigned                host_level;  /* enum tls_level for the current host: the job's,
                                          * or what DANE made of it (may, encrypt, dane) */
    int                     mx_secure;   /* DANE: the host names are DNSSEC-proven (or ours) */
    int                     dns_secure[2];   /* DANE: the A, AAAA answers were (or empty) */
    struct tls_tlsa         tlsa[SMTP_DNS_TLSA_MAX];   /* DANE: usable TLSA of the host */
    size_t                  ntlsa;
    unsigned char          *tlsa_data;   /* one allocation behind tlsa[].data */
    int                     no_tls;      /* level may, the handshake failed: plaintext */
    int                     reused;      /* on a cached connection (RSET failed = fresh) */
    int                     have_err;
    uint32_t                err_status;
    char                    err_dsn[16];
    char                    err_text[1200];
    struct smtp_session    *sess;
    struct smtp_job        *wait_next;   /* waiting for a connection slot */
    struct smtp_job        *all_prev, *all_next;   /* every job in progress */
};

/* smtp_job_done - every recipient has a result: answer qmgr, log, free the job. */
void smtp_job_done(struct smtp_job *);

/* smtp_session_init - settings for every delivery (kept by reference). */
void smtp_session_init(const struct smtp_settings *);
/* smtp_deliver - start a job; it ends in smtp_job_done(), perhaps before this returns. */
void smtp_deliver(struct smtp_job *);
/* smtp_session_idle_close - close every idle connection (at stop). */
void smtp_session_idle_close(void);
/* smtp_session_active - deliveries in progress (including those waiting). */
size_t smtp_session_active(void);
/* smtp_session_abort_all - at a forced stop: end every job with a temporary failure. */
void smtp_session_abort_all(const char *why);

#endif
