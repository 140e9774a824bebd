/* smtpd - the SMTP server daemon: shared types of its modules.
 *
 * smtpd.c owns the process (start-up, listeners, master and qmgr channels, signals),
 * smtpd_session.c a client connection (I/O, buffers, timers, the input loop), smtpd_cmd.c
 * the commands, smtpd_data.c the DATA phase and the talk with qmgr about one message. All
 * protocol parsing is in libsmtp; this daemon only decides and does I/O. Everything here
 * runs on one event loop; a session never blocks except on its own spool file. */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "config.h"
#include "ev.h"
#include "ipc.h"
#include "map.h"
#include "qid.h"
#include "smtp_addr.h"
#include "smtp_cmd.h"
#include "smtp_data.h"

#define SMTPD_IN_MAX      (64 * 1024)  /* buffered client input while a reply is pending */
#define SMTPD_OUT_MAX     (64 * 1024)  /* unsent replies before we stop reading */
#define SMTPD_BODY_CHUNK  (128 * 1024) /* spool-file writes */
#define SMTPD_STOP_GRACE_MS 10000      /* SIGTERM: transactions get this long */

struct smtpd_session;

/* Process-wide state. */
struct smtpd {
    struct config   *cfg;
    struct ev       *ev;
    struct ipc_conn *master;
    struct ipc_conn *qmgr;             /* NULL while there is no qmgr */
    struct map      *mailbox_map;      /* NULL if mailbox_map is empty */
    int             *listen_fds;
    const char     **listen_service;   /* "smtp", "submission", "smtps" */
    size_t           nlisten;
    int              stopping;         /* SIGTERM or master gone */
    char             hostname[256];
    char             banner[512];
    char *const     *local_domains;
    size_t           nlocal_domains;
    uint64_t         size_limit;
    uint64_t         header_limit;
    long long        rcpt_limit;
    long long        max_sessions;
    uint64_t         timeout_ms;
    uint64_t         session_timeout_ms;
    long long        error_limit;
    long long        command_limit;
    int              reject_bare;      /* smtpd_bare_newline = reject */
    size_t           nsessions;
    uint32_t         next_id;
    struct smtpd_session *sessions;    /* every live session */
};

extern struct smtpd smtpd;

enum smtpd_state {
    SMTPD_ST_CONNECTED = 0,            /* greeting sent, no HELO/EHLO yet */
    SMTPD_ST_GREETED,                  /* HELO/EHLO done, no transaction */
    SMTPD_ST_MAIL,                     /* MAIL accepted */
    SMTPD_ST_WAIT_OPEN,                /* DATA: MSG_OPEN sent, waiting for MSG_OPENED */
    SMTPD_ST_DATA,                     /* 354 sent, reading the message */
    SMTPD_ST_WAIT_QUEUED,              /* MSG_COMMIT sent, waiting for MSG_QUEUED */
};

struct smtpd_rcpt {
    char    *addr;
    char    *orcpt;                    /* "" if none */
    uint32_t notify;
};

/* The I/O layer under a session: plain sockets now, TLS later (same contract as
 * read(2)/write(2) on a non-blocking socket: -1 with EAGAIN when it would block). */
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
    char             addr[64];         /* client address, no brackets */
    char             addr_port[80];    /* for logs */
    enum smtpd_state state;
    int              esmtp;            /* EHLO rather than HELO */
    char            *helo;
    struct buf       in;               /* client bytes not yet processed */
    struct buf       out;              /* replies not yet written */
    struct smtp_line line;
    int              closing;          /* close once out is written */
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
    /* the transaction */
    char            *sender;           /* "" for <> */
    struct smtp_mail_params mail;
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
};

/* smtpd.c */
void smtpd_session_gone(struct smtpd_session *);     /* bookkeeping when one ends */
int  smtpd_qmgr_up(void);

/* smtpd_session.c */
void smtpd_session_accept(int fd, const char *service, const char *addr, const char *port);
void smtpd_session_reply(struct smtpd_session *, int code, const char *enh,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void smtpd_session_close(struct smtpd_session *, const char *why);
void smtpd_session_resume(struct smtpd_session *);   /* after a qmgr answer */
void smtpd_session_flush(struct smtpd_session *);
void smtpd_session_stop(struct smtpd_session *);     /* SIGTERM: 421 if idle */
int  smtpd_session_error(struct smtpd_session *);    /* count an error; -1: limit, closed */
struct smtpd_session *smtpd_session_find(uint32_t id);
void smtpd_session_reap(void);

/* smtpd_cmd.c */
void smtpd_cmd_line(struct smtpd_session *, const char *line, size_t len);
void smtpd_cmd_txn_reset(struct smtpd_session *);

/* smtpd_data.c */
void smtpd_data_begin(struct smtpd_session *);       /* DATA accepted: ask qmgr */
void smtpd_data_opened(struct smtpd_session *, uint32_t status, const char *qid, int fd);
void smtpd_data_input(struct smtpd_session *);       /* feed s->in to the scanner */
void smtpd_data_queued(struct smtpd_session *, uint32_t status, const char *qid,
                       const char *text);
void smtpd_data_abort(struct smtpd_session *);       /* client gone or message dropped */
void smtpd_data_qmgr_lost(struct smtpd_session *);   /* the qmgr channel went away */

#endif
