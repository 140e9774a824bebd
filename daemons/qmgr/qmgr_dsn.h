/* qmgr_dsn - compose a delivery status notification (RFC 3464) as a message body.
 *
 * Pure: the caller passes every fact (times, names, the boundary, the original message) and
 * gets the whole message, headers and body, with CRLF line endings, appended to a buf, as
 * the spool file holds a message. The report is `multipart/report;
 * report-type=delivery-status` with three parts: a human-readable text/plain part, the
 * `message/delivery-status` part (Reporting-MTA, Original-Envelope-Id, Arrival-Date, then
 * per recipient Final-Recipient, Original-Recipient, Action, Status, Remote-MTA,
 * Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until) and the original message: its
 * header section as `text/rfc822-headers` (RET=HDRS or no RET), or all of it as
 * `message/rfc822` (RET=FULL). Every value that came from a peer (diagnostics, addresses)
 * is cleaned of control characters so it cannot start a header or a part of its own.
 * Used by qmgr_bounce; tested golden in tests/unit/qmgr_dsn_test.c. */
#ifndef POSTERN_QMGR_DSN_H
#define POSTERN_QMGR_DSN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* One recipient of the report. */
struct qmgr_dsn_rcpt {
    const char *addr;               /* the recipient (Final-Recipient) */
    const char *orcpt;              /* DSN ORCPT ("rfc822;addr") or "" */
    const char *action;             /* "failed", "delayed", "delivered" or "relayed" */
    const char *status;             /* enhanced status code, e.g. "5.1.1" */
    const char *diag;               /* remote reply or our own diagnostic, or "" */
    const char *remote_mta;         /* "mx.b.example[192.0.2.1]:25" or "" */
    uint64_t    last_attempt;       /* seconds since the epoch, 0: never tried */
    uint64_t    retry_until;        /* "delayed" only: the message's expiry, else 0 */
};

struct qmgr_dsn {
    const char                 *reporting_mta;   /* myhostname */
    const char                 *to;              /* the original envelope sender */
    const char                 *orig_qid;        /* the message reported on */
    const char                 *envid;           /* DSN ENVID or "" */
    const char                 *message_id;      /* "<id@host>" of the report */
    const char                 *boundary;        /* unique, not in the original message */
    uint64_t                    arrival;         /* of the original, seconds */
    uint64_t                    now;             /* the report's Date */
    int                         full;            /* 1: message/rfc822 (RET=FULL) */
    int                         eightbit;        /* the included original has 8-bit bytes */
    const struct qmgr_dsn_rcpt *rcpts;
    size_t                      nrcpt;
};

/* qmgr_dsn_compose - append the whole report (headers and body, CRLF) to out. orig is the
 * original message (the spool file's content, or just its header section when !full); it
 * may be NULL when the original could not be read (a note says so instead). */
void   qmgr_dsn_compose(struct buf *out, const struct qmgr_dsn *d, const char *orig,
                        size_t origlen);

/* qmgr_dsn_header_len - the length of msg's header section, without the empty line that
 * ends it (the whole of msg if there is none). */
size_t qmgr_dsn_header_len(const char *msg, size_t len);


#endif
