/* smtpd - the SMTP server daemon: shared types of its modules.
 *
 * smtpd.c owns the process (start-up, listeners, TLS context and ticket keys, master and
 * qmgr channels, signals), smtpd_session.c a client connection (plain or TLS I/O, STARTTLS
 * and SMTPS handshakes, buffers, timers, the input loop), smtpd_cmd.c the commands
 * (recipients through libcommon/resolve, STARTTLS, AUTH, relay permission), smtpd_data.c
 * the DATA phase and the talk with qmgr about one message, smtpd_pwcheck.c the worker
 * threads that check AUTH passwords, smtpd_stats.c the counters, smtpd_submit.c the
 * identity of local submitters on public/submit (sendmail), smtpd_dnsbl.c the DNS
 * blocklists at connect, smtpd_domain.c reject_unknown_sender_domain and smtpd_login.c
 * smtpd_sender_login_map, smtpd_milter.c the milters (smtpd_milters). All protocol
 * parsing is in libsmtp (and the milter protocol in libcommon/milter) and all TLS in
 * libtls; this daemon only decides and does I/O.
 * Everything but the password hashing runs on one event loop; a session never blocks
 * except on its own spool file. */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "cidr.h"
#include "config.h"
#include "ev.h"
#include "ipc.h"
#include "map.h"
#include "mailhdr.h"
#include "policy.h"
#include "pwhash.h"
#include "qid.h"
#include "resolve.h"
#include "smtp_addr.h"
#include "smtp_auth.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "smtpd_pwcheck.h"
#include "smtpd_stats.h"
#include "tls.h"

#define SMTPD_IN_MAX      (64 * 1024)  /* buffered client input while a reply is pending */
#define SMTPD_OUT_MAX     (64 * 1024)  /* unsent replies before we stop reading */
#define SMTPD_BODY_CHUNK  (128 * 1024) /* spool-file writes */
#define SMTPD_STOP_GRACE_MS 10000      /* SIGTERM: transactions get this long */
#define SMTPD_QMGR_WAIT_MS  10000      /* qmgr lost: MAIL and DATA wait this long for the
                                        * next one (a reload or restart) before 451 */
#define SMTPD_BUF_KEEP    4096         /* an empty buffer bigger than this is given back */
#define SMTPD_TICKET_KEYS_MAX 4        /* session-ticket keys kept (libtls's limit) */

struct smtpd_session;
struct smtpd_cmd_wait;
struct content;
struct smtpd_milter;
struct smtpd_milter_verdict;

/* What a listener serves (POSTERN_LISTENERS): port 25, 587 or 465 behaviour. */
enum smtpd_service {
    SMTPD_SVC_SMTP = 0,                /* STARTTLS offered when there is a certificate */
    SMTPD_SVC_SUBMISSION,              /* STARTTLS required before AUTH and MAIL */
    SMTPD_SVC_SMTPS,                   /* TLS from the first byte, then the greeting */
    SMTPD_SVC_SUBMIT,                  /* public/submit (UNIX): sendmail, the peer's uid */
};

struct smtpd_listener {
    int                fd;
    enum smtpd_service svc;
    const char        *name;           /* "smtp", "submission", "smtps", "submit" */
};

/* Process-wide state. */
struct smtpd {
    struct config   *cfg;
    struct ev       *ev;
    struct ipc_conn *master;
    struct ipc_conn *qmgr;             /* NULL while there is no qmgr */
    struct resolve  *resolve;          /* aliases, recipient classes, mailbox_map */
    struct map      *auth_map;         /* NULL: no AUTH */
    char             auth_dummy_hash[PWHASH_MAX];  /* checked for unknown users */
    struct smtpd_pwcheck *pwcheck;     /* AUTH password checks; NULL without auth_map */
    struct smtpd_stats stats;
    struct tls_ctx  *tls;              /* NULL: no certificate, no TLS */
    struct smtpd_listener *listeners;
    size_t           nlisten;
    int              stopping;         /* SIGTERM or master gone */
    int              retiring;         /* SIGUSR1 (reload): no new sessions, open ones end */
    int              paused;           /* postern pause smtpd: network listeners unwatched */
    uint64_t         qmgr_wait_until;  /* qmgr lost: a new one is expected until then */
    uint64_t         qmgr_wait_timer;
    char             hostname[256];
    char             banner[512];
    char *const     *local_domains;
    size_t           nlocal_domains;
    struct cidr     *mynetworks;
    size_t           nmynetworks;
    uint64_t         size_limit;
    uint64_t         header_limit;
    long long        rcpt_limit;
    long long        max_sessions;
    uint64_t         timeout_ms;
    uint64_t         session_timeout_ms;
    long long        error_limit;
    long long        command_limit;
    int              reject_bare;      /* smtpd_bare_newline = reject */
    long long        received_limit;   /* Received: headers before "too many hops" */
    uint64_t         tls_handshake_timeout_ms;
    uint64_t         auth_failure_delay_ms;
    long long        auth_failure_limit;
    int              delay_reject;     /* smtpd_delay_reject: client, HELO, sender at RCPT */
    /* the connect phase and stress (smtpd_session.c) */
    uint64_t         greet_pause_ms;   /* smtpd_greet_pause; 0: none */
    int              connect_client_check;  /* smtpd_delay_reject = no */
    size_t           stress_enter;     /* sessions from which we are under stress */
    size_t           stress_leave;     /* ... and at or below which it is over */
    uint64_t         stress_timeout_ms;
    uint64_t         stress_session_timeout_ms;
    long long        stress_error_limit;
    int              stress;           /* under stress now */
    size_t           nsessions;
    uint32_t         next_id;
    struct smtpd_session *sessions;    /* every live session */
};

extern struct smtpd smtpd;

enum smtpd_state {
    SMTPD_ST_CONNECTED = 0,            /* greeting sent, no HELO/EHLO yet */
    SMTPD_ST_GREETED,                  /* HELO/EHLO done, no transaction */
    SMTPD_ST_AUTH_CHECKING,            /* AUTH: a worker checks the password; input paused */
    SMTPD_ST_MAIL,                     /* MAIL accepted */
    SMTPD_ST_WAIT_OPEN,                /* DATA: MSG_OPEN sent, waiting for MSG_OPENED */
    SMTPD_ST_DATA,                     /* 354 sent, reading the message */
    SMTPD_ST_WAIT_QUEUED,              /* MSG_COMMIT sent, waiting for MSG_QUEUED */
};

struct smtpd_rcpt {
    char    *addr;                     /* final recipient (after alias expansion) */
    char    *orcpt;                    /* "" if none */
    char    *given;                    /* the RCPT TO address it came from */
    uint32_t notify;
};

/* Where a session is with TLS. */
enum smtpd_tls_phase {
    SMTPD_TLS_OFF = 0,                 /* plaintext */
    SMTPD_TLS_STARTING,                /* "220 Ready to start TLS" queued; read nothing more */
    SMTPD_TLS_HANDSHAKE,               /* handshake in progress, bounded by a timer */
    SMTPD_TLS_ON,                      /* established */
};

/* The I/O layer under a session: plain socket or TLS, with the contract of read(2)/write(2)
 * on a non-blocking socket: -1 with EAGAIN when it would block, EPROTO for a TLS error. */
struct smtpd_io {
    ssize_t (*read)(struct smtpd_session *, void *, size_t);
    ssize_t (*write)(struct smtpd_session *, const void *, size_t);
};

struct smtpd_session {
    struct smtpd_session *next, *prev;
    struct smtpd_session *hnext;       /* id hash chain */
    uint32_t         id;               /* also the IPC request id towards qmgr */
    int              fd;
    const struct smtpd_io *io;
    const char      *service;
    enum smtpd_service svc;
    int              mynetworks;       /* the client is in mynetworks (or is local) */
    uid_t            local_uid;        /* submit: the peer's uid (SO_PEERCRED) */
    pid_t            local_pid;        /* ... and pid */
    char             local_user[72];   /* ... its login name (smtpd_submit.c) */
    int              local_admin;      /* ... root or admin_group: MAIL FROM as given */
    char             addr[64];         /* client address, no brackets */
    char             addr_port[80];    /* for logs */
    char             client_name[256]; /* forward-confirmed reverse name, or "unknown" */
    char             client_ptr[256];  /* first PTR name (unconfirmed), or "unknown" */
    int              peername_temp;    /* ... the lookup failed for now (DNS error, timeout) */
    void            *dns;              /* smtpd_dns.c: a lookup in progress, or NULL */
    void            *dnsbl;            /* smtpd_dnsbl.c: DNSBL lookups in progress, or NULL */
    char            *dnsbl_zone;       /* ... the site that blocks the client, or NULL */
    void            *domain;           /* smtpd_domain.c: the sender domain's lookup in
                                        * progress (no command is read meanwhile), or NULL */
    struct policy_action *domain_action;  /* ... its refusal, kept for RCPT, or NULL */
    uint32_t         anvil_req;        /* smtpd_anvil.c: pending request id, 0: none */
    void           (*anvil_cb)(struct smtpd_session *, int, int, const char *,
                               const char *);  /* ... and whom to tell */
    int              anvil_counted;    /* CONNECT counted: DISCONNECT is due */
    /* the connect phase and limits (smtpd_session.c); more fields go here */
    int              greeting_pending; /* greeting not sent yet: DNS, anvil, greet pause */
    int              greet_refused;    /* client access REJECT at connect: 554 greeting,
                                        * every command but QUIT gets 503 (RFC 5321 3.1) */
    uint64_t         timeout_ms;       /* smtpd_timeout, or the stress value */
    long long        error_limit;      /* smtpd_error_limit, or the stress value */
    int              greet_wait;       /* what the greeting still waits for (session.c) */
    uint64_t         greet_timer;      /* smtpd_greet_pause */
    int              pregreet_check;   /* talking early is refused (port 25, not exempt) */
    int              pregreet;         /* ... bytes it sent before the greeting */
    int              stressed;         /* accepted under stress: the stress limits */
    int              refuse_code;      /* anvil refused at connect: said once the phase */
    char             refuse_enh[16];   /* is over, then the session closes */
    char            *refuse_text;
    /* policy (smtpd_policy.c, smtpd_cmd.c, smtpd_data.c); more fields go here */
    int              client_checked;   /* the client access check ran (connect or RCPT) */
    struct policy_action *client_action;  /* its answer if one applied, else NULL */
    enum policy_kind helo_verdict;     /* HOLD or DISCARD from the HELO stage: for every
                                        * transaction until the next HELO, else NONE */
    char            *helo_why;         /* ... what said so (for the log at commit) */
    enum policy_kind txn_verdict;      /* HOLD or DISCARD from the sender or a recipient
                                        * stage: this transaction only */
    char            *txn_why;
    int              hold;             /* the message is committed on hold (IPC_F_HOLD) */
    struct smtpd_cmd_wait *cmd_wait;   /* RCPT or AUTH waiting for anvil (smtpd_cmd.c) */
    struct content  *content;          /* DATA with content rules: the scanner, else NULL */
    struct smtpd_milter *milter;       /* smtpd_milter.c: this session's milters, or NULL */
    int              milter_wait;      /* ... a stage is with them: no command is read */
    enum smtpd_state state;
    int              esmtp;            /* EHLO rather than HELO */
    char            *helo;
    struct buf       in;               /* client bytes not yet processed */
    struct buf       out;              /* replies not yet written */
    struct smtp_line line;
    int              closing;          /* close once out is written */
    int              qmgr_stalled;     /* MAIL/DATA held until the next qmgr (or 451) */
    int              dead;             /* closed; freed at the end of the loop turn */
    int              read_eof;
    int              io_events;        /* what is being watched */
    uint64_t         last_active;      /* ev_now_ms() of the last client input */
    uint64_t         started;
    uint64_t         idle_timer;
    uint64_t         session_timer;
    long long        errors;
    long long        commands;
    unsigned         verb_count[SMTP_VERB_COUNT];
    int              wipe_input;       /* the line just handled held a secret: wipe it */
    /* TLS */
    struct tls_conn *tls;              /* NULL while plaintext */
    enum smtpd_tls_phase tls_phase;
    int              tls_hs_events;    /* what the handshake waits for */
    int              tls_read_wants_write;
    int              tls_write_wants_read;
    uint64_t         tls_timer;        /* handshake timeout */
    uint64_t         pull_timer;       /* read what OpenSSL already decrypted */
    /* AUTH */
    struct smtp_auth *auth;            /* an exchange in progress (334 sent), else NULL */
    char            *auth_user;        /* authenticated name (made printable), or NULL */
    const char      *auth_method;      /* "PLAIN" or "LOGIN" */
    long long        auth_failures;
    uint64_t         auth_timer;       /* a failure's delayed reply is pending */
    struct smtpd_pwcheck_job *auth_job;  /* SMTPD_ST_AUTH_CHECKING: the check in progress */
    const char      *auth_job_method;  /* ... its mechanism, */
    int              auth_job_found;   /* whether the user is in the map, */
    char             auth_job_name[128];  /* and the user name, made printable */
    /* the transaction */
    char            *sender;           /* "" for <> */
    struct smtp_mail_params mail;
    char            *mail_esmtp;       /* ... its parameters as given, for milters, or NULL */
    int              smtputf8;
    struct smtpd_rcpt *rcpts;
    size_t           nrcpt, rcpt_cap;
    /* the message */
    char             qid[QID_SIZE];
    int              body_fd;
    struct buf       body;             /* scanned data waiting to be written */
    uint64_t         body_written;
    int              body_error;       /* errno of a failed write, or 0 */
    int              body_discard;     /* message will be rejected: stop storing */
    struct smtp_data scan;
    int              add_headers;      /* add a missing Message-ID, Date, From (smtpd_data.c) */
    struct mailhdr    hdrs;             /* ... what the header section has, where it ends */
    int64_t          hdrs_base;        /* ... its stream offset of body.data[0] */
};

/* smtpd.c */
void smtpd_session_gone(struct smtpd_session *);     /* bookkeeping when one ends */
int  smtpd_qmgr_up(void);
/* smtpd_qmgr_expected - no qmgr now, but master is bringing one (the last went away less
 * than SMTPD_QMGR_WAIT_MS ago): a session holds MAIL and DATA instead of answering 451. */
int  smtpd_qmgr_expected(void);

/* smtpd_submit.c */
/* smtpd_submit_load - read the passwd database and admin_group into the uid table
 * (before the chroot; the table lives until smtpd exits). */
void smtpd_submit_load(void);
void smtpd_submit_free(void);
/* smtpd_submit_peer - fill s->local_* from the peer of a public/submit connection; -1 if
 * the kernel does not say or the uid has no login name known to us (logged). */
int  smtpd_submit_peer(int fd, struct smtpd_session *);

/* smtpd_session.c */
void smtpd_session_accept(int fd, const struct smtpd_listener *, const char *addr,
                          const char *port);
void smtpd_session_reply(struct smtpd_session *, int code, const char *enh,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void smtpd_session_close(struct smtpd_session *, const char *why);
void smtpd_session_resume(struct smtpd_session *);   /* after a qmgr answer */
void smtpd_session_flush(struct smtpd_session *);
void smtpd_session_stop(struct smtpd_session *);     /* SIGTERM: 421 if idle */
int  smtpd_session_error(struct smtpd_session *);    /* count an error; -1: limit, closed */
struct smtpd_session *smtpd_session_find(uint32_t id);
void smtpd_session_reap(void);
void smtpd_session_starttls(struct smtpd_session *);  /* the 220 is written: handshake */

/* smtpd_cmd.c */
void smtpd_cmd_line(struct smtpd_session *, const char *line, size_t len);
void smtpd_cmd_txn_reset(struct smtpd_session *);
void smtpd_cmd_auth_line(struct smtpd_session *, const char *line, size_t len);
void smtpd_cmd_auth_abort(struct smtpd_session *, int code, const char *enh,
                          const char *text);  /* end an exchange with this reply */
void smtpd_cmd_auth_cancel(struct smtpd_session *);  /* drop a password check in progress */
void smtpd_cmd_session_reset(struct smtpd_session *);  /* back to before EHLO */
/* smtpd_cmd_data_verdict - the milters' verdict on DATA: 1 if they refused it (answered and
 * logged), else 0 (a DISCARD is kept for the end of the message). */
int  smtpd_cmd_data_verdict(struct smtpd_session *, const struct smtpd_milter_verdict *);

/* smtpd_data.c */
void smtpd_data_begin(struct smtpd_session *);       /* DATA accepted: ask qmgr */
void smtpd_data_opened(struct smtpd_session *, uint32_t status, const char *qid, int fd);
void smtpd_data_input(struct smtpd_session *);       /* feed s->in to the scanner */
void smtpd_data_queued(struct smtpd_session *, uint32_t status, const char *qid,
                       const char *text);
void smtpd_data_abort(struct smtpd_session *);       /* client gone or message dropped */
void smtpd_data_qmgr_lost(struct smtpd_session *);   /* the qmgr channel went away */

#endif
