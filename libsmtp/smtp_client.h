/* smtp_client - the SMTP/LMTP client session as a state machine: bytes in, bytes and events out.
 *
 * No I/O inside: the caller feeds what the server sent (smtp_client_feed, in chunks of any
 * size, one byte at a time included), calls smtp_client_step() until it returns
 * SMTP_CLIENT_EV_NONE, acts on each event, and writes whatever smtp_client_output() holds.
 * The session: greeting, EHLO (HELO when EHLO gets a 5xx; LHLO in LMTP mode), the EHLO
 * keywords (PIPELINING, SIZE, 8BITMIME, SMTPUTF8, STARTTLS, DSN, ENHANCEDSTATUSCODES),
 * STARTTLS per the caller's policy, SASL AUTH (PLAIN, else LOGIN; RFC 4954) when the caller
 * gave credentials and the server offers AUTH, then messages: MAIL FROM with SIZE=/BODY=/
 * SMTPUTF8/RET=/ENVID= as the server supports them, one RCPT per recipient (NOTIFY=/ORCPT=
 * with DSN), DATA, the body dot-stuffed with every bare CR or LF written as CRLF, end of
 * data; RSET before a message on a reused connection; QUIT. With PIPELINING, MAIL, the RCPTs
 * and DATA leave in one write (RFC 2920) and the replies are matched in order. In LMTP mode
 * the server answers once per accepted recipient after the final dot.
 *
 * After the 220 reply to STARTTLS every byte the server sent in plaintext is discarded
 * (STARTTLS injection) and the caller must start TLS, then call smtp_client_tls_done(), which
 * sends EHLO again. Reply lines longer than SMTP_CLIENT_LINE_MAX are cut (the rest of the
 * line is read and dropped); a reply's kept text is bounded by SMTP_CLIENT_TEXT_MAX; a line
 * that is not a reply line is a protocol error. Used by the smtp agent (daemons/smtp). */
#ifndef POSTERN_SMTP_CLIENT_H
#define POSTERN_SMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SMTP_CLIENT_LINE_MAX   2048   /* octets of one reply line that are kept */
#define SMTP_CLIENT_TEXT_MAX   1024   /* octets of a reply's text that are kept */

/* Server extensions (struct smtp_client.ext). */
#define SMTP_EXT_PIPELINING    0x01u
#define SMTP_EXT_SIZE          0x02u
#define SMTP_EXT_8BITMIME      0x04u
#define SMTP_EXT_SMTPUTF8      0x08u
#define SMTP_EXT_STARTTLS      0x10u
#define SMTP_EXT_DSN           0x20u
#define SMTP_EXT_ENHANCED      0x40u
#define SMTP_EXT_AUTH          0x80u  /* with PLAIN or LOGIN among its mechanisms */

/* Message flags (struct smtp_client_msg.flags); the same values as IPC_F_*. */
#define SMTP_MSG_SMTPUTF8      0x01u
#define SMTP_MSG_8BITMIME      0x02u

/* DSN NOTIFY bits; the same values as IPC_NOTIFY_*. */
#define SMTP_NOTIFY_NEVER      0x1u
#define SMTP_NOTIFY_SUCCESS    0x2u
#define SMTP_NOTIFY_FAILURE    0x4u
#define SMTP_NOTIFY_DELAY      0x8u

enum smtp_client_tls {
    SMTP_CLIENT_TLS_NONE = 0,          /* never STARTTLS */
    SMTP_CLIENT_TLS_MAY,               /* STARTTLS when offered; plaintext otherwise */
    SMTP_CLIENT_TLS_MUST,              /* STARTTLS or a 4.7.5 failure */
};

enum smtp_client_event {
    SMTP_CLIENT_EV_NONE = 0,           /* nothing to do until more input arrives */
    SMTP_CLIENT_EV_TLS,                /* start the TLS handshake, then smtp_client_tls_done() */
    SMTP_CLIENT_EV_READY,              /* session up and idle: start a message, or quit */
    SMTP_CLIENT_EV_DATA,               /* 354: send the body, then smtp_client_body_end() */
    SMTP_CLIENT_EV_DONE,               /* the transaction is over: per-recipient results */
    SMTP_CLIENT_EV_ERROR,              /* the session failed: see err; the connection is done */
    SMTP_CLIENT_EV_CLOSED,             /* QUIT was answered */
};

/* Where a reply or failure happened, for "(in reply to ... command)" and for deciding
 * whether another server may be tried (anything before SMTP_STAGE_MAIL). */
enum smtp_client_stage {
    SMTP_STAGE_GREETING = 0,
    SMTP_STAGE_HELO,
    SMTP_STAGE_STARTTLS,
    SMTP_STAGE_AUTH,
    SMTP_STAGE_RSET,
    SMTP_STAGE_MAIL,
    SMTP_STAGE_RCPT,
    SMTP_STAGE_DATA,
    SMTP_STAGE_DOT,
    SMTP_STAGE_QUIT,
};

/* A server reply, or a failure of our own (code 0 with dsn and text set by us). */
struct smtp_client_reply {
    int                    code;       /* 250, 450, 550 ...; 0 = not a server reply */
    char                   dsn[16];    /* "5.1.1": the server's, else derived from the code */
    char                   text[SMTP_CLIENT_TEXT_MAX]; /* "550 5.1.1 <b@x>: unknown", lines
                                                        * joined with a space, made printable */
    enum smtp_client_stage stage;
};

/* One message. Strings and arrays are the caller's and must live until EV_DONE. */
struct smtp_client_msg {
    const char        *sender;         /* "" for <> */
    uint64_t           size;           /* of the body as stored (CRLF), for SIZE= */
    unsigned           flags;          /* SMTP_MSG_* */
    const char        *envid;          /* DSN ENVID (xtext-encoded here) or "" / NULL */
    unsigned           ret;            /* DSN RET: 0 unset, 1 FULL, 2 HDRS */
    const char *const *rcpts;
    const char *const *orcpts;         /* per recipient, "" or NULL for none; may be NULL */
    const uint32_t    *notify;         /* per recipient SMTP_NOTIFY_*; may be NULL */
    size_t             nrcpt;
};

struct smtp_client_conf {
    const char          *helo_name;    /* our name for EHLO/LHLO */
    int                  lmtp;         /* 1: LMTP (LHLO, per-recipient replies after DATA) */
    enum smtp_client_tls tls;
    /* SASL credentials (copied, wiped at free), NULL: no AUTH. They are sent only inside
     * TLS: without it the session fails with 4.7.0 before AUTH, as Postfix's default
     * noplaintext does. A server that offers no usable AUTH gets none (the caller can see
     * smtp_client_auth_state()); a refused AUTH fails the session with the server's reply,
     * its class 5 made 4 (Postfix's smtp_sasl_auth_soft_bounce: a password problem defers
     * mail rather than bouncing it). */
    const char          *auth_user;
    const char          *auth_pass;
};

struct smtp_client;

/* smtp_client_new - a session waiting for the greeting; never NULL. conf is copied (the
 * helo_name too). */
struct smtp_client *smtp_client_new(const struct smtp_client_conf *);
void                smtp_client_free(struct smtp_client **);

/* smtp_client_feed - bytes from the server. -1 after an error (the bytes are dropped). */
int  smtp_client_feed(struct smtp_client *, const void *, size_t);
/* smtp_client_eof - the server closed the connection: the next step reports an error (or
 * EV_CLOSED after QUIT). */
void smtp_client_eof(struct smtp_client *);
/* smtp_client_step - process buffered replies until an event needs the caller. */
enum smtp_client_event smtp_client_step(struct smtp_client *);
/* smtp_client_output - bytes to send; the caller consumes what it wrote (buf_consume). */
struct buf *smtp_client_output(struct smtp_client *);

/* smtp_client_tls_done - TLS is up (after EV_TLS): EHLO again, extensions forgotten. */
void smtp_client_tls_done(struct smtp_client *);

/* smtp_client_msg_start - in the READY state, begin a transaction: RSET first when this is
 * not the first one on the connection. -1 if the message cannot go to this server at all
 * (SMTPUTF8 needed but not offered: 5.6.7; bigger than the server's SIZE: 5.3.4; err is set
 * and the session stays READY). */
int  smtp_client_msg_start(struct smtp_client *, const struct smtp_client_msg *);
/* smtp_client_body - after EV_DATA, body bytes as stored (CRLF lines, no dot-stuffing), in
 * chunks of any size; they are stuffed and normalised into the output. */
void smtp_client_body(struct smtp_client *, const void *, size_t);
/* smtp_client_body_end - the body is complete: end the last line if needed, then ".". */
void smtp_client_body_end(struct smtp_client *);
/* smtp_client_abort - the caller gave up on the session (timeout, I/O error): EV_ERROR
 * follows with dsn and text, at the current stage; open recipients get the same. */
void smtp_client_abort(struct smtp_client *, const char *dsn, const char *text);
/* smtp_client_quit - send QUIT (in any state but an error); EV_CLOSED follows its reply. */
void smtp_client_quit(struct smtp_client *);

/* Results. */
unsigned smtp_client_ext(const struct smtp_client *);          /* SMTP_EXT_* */
uint64_t smtp_client_size_limit(const struct smtp_client *);   /* 0: none announced */
int      smtp_client_is_tls(const struct smtp_client *);           /* after tls_done */
/* smtp_client_auth_state - 1: authenticated; 0: no credentials given; -1: credentials
 * given but the server offered no AUTH with PLAIN or LOGIN, so none was sent. */
int      smtp_client_auth_state(const struct smtp_client *);
/* smtp_client_rcpt_result - the reply for recipient i of the last message (code 0 while
 * none): the RCPT reply if it failed, else the reply to end of data (or LMTP's own). */
const struct smtp_client_reply *smtp_client_rcpt_result(const struct smtp_client *, size_t i);
/* smtp_client_error - why the session failed (EV_ERROR) or msg_start refused. */
const struct smtp_client_reply *smtp_client_error(const struct smtp_client *);
/* smtp_client_stage_name - "RCPT TO", "end of DATA" ..., for "(in reply to ... command)". */
const char *smtp_client_stage_name(enum smtp_client_stage);

/* smtp_client_xtext - append s xtext-encoded (RFC 3461) to out. */
void smtp_client_xtext(struct buf *out, const char *s);

#endif
