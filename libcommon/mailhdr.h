/* mailhdr - the header fields a submitted message must have, and where its header section ends.
 *
 * For mail that we originate in effect (sendmail, an authenticated client) a missing
 * Message-ID:, Date: or From: is added, as Postfix's cleanup does. struct mailhdr follows the
 * message as libsmtp/smtp_data (or libcommon/content) writes it: CRLF line ends, cut
 * anywhere. It notes which of the three fields the primary header section holds and the
 * stream offset where that section ends: the start of the empty line, or of the first line
 * that is neither a header field nor a continuation (a message without the empty line,
 * whose body then needs one before it). The caller inserts mailhdr_missing()'s text there,
 * so what the client wrote keeps its order and bytes. No I/O, no allocation; used by smtpd
 * (smtpd_data.c), tested by tests/unit/mailhdr_test.c. */
#ifndef POSTERN_MAILHDR_H
#define POSTERN_MAILHDR_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"

#define MAILHDR_MESSAGE_ID 0x1u
#define MAILHDR_DATE       0x2u
#define MAILHDR_FROM       0x4u
#define MAILHDR_ALL        0x7u
#define MAILHDR_DATE_MAX   64          /* room for mailhdr_date() */

struct mailhdr {
    int      state;                   /* private */
    unsigned seen;                    /* MAILHDR_* fields present */
    unsigned fields;                  /* header fields seen */
    uint64_t pos;                     /* octets followed so far */
    uint64_t line_start;              /* private: offset of the current line */
    uint64_t end;                     /* once done: offset where the header section ends */
    int      done;                    /* the end is known */
    int      body_line;               /* ... and is a body line: no empty line before it */
    int      mid_line;                /* ... the message ended inside an unterminated line */
    size_t   nlen;                    /* private: the field name read so far */
    char     name[16];
};

void mailhdr_init(struct mailhdr *);
/* mailhdr_scan - follow the next n octets of the message; 1 once the end is known
 * (h->end), 0 before. Octets after the end are only counted. */
int  mailhdr_scan(struct mailhdr *, const char *p, size_t n);
/* mailhdr_holding - the current line began before the octets just scanned and may still turn
 * out to be where the section ends: the caller must keep it (from h->line_start) in memory. */
int  mailhdr_holding(const struct mailhdr *);
/* mailhdr_finish - the message is complete: a section that never ended ends here. */
void mailhdr_finish(struct mailhdr *);
/* mailhdr_date - t as an RFC 5322 date, in local time with its offset ("Tue, 4 Mar 2025
 * 09:05:01 +0100") or in UTC (utc = 1: "... +0000"), English whatever the locale; "" if
 * it cannot be formatted. smtpd's Received: and Date:, qmgr's DSNs. */
const char *mailhdr_date(time_t t, int utc, char *out, size_t outlen);
/* mailhdr_missing - append to out the fields h did not see (nothing if it saw all three),
 * with whatever line ends its position needs: Message-ID: <YYYYMMDDhhmmss.QID@HOST>,
 * Date: now, From: the envelope sender, or MAILER-DAEMON@HOST for the null sender "".
 * Returns the MAILHDR_* bits added. */
unsigned mailhdr_missing(const struct mailhdr *, struct buf *out, const char *qid,
                        const char *host, const char *sender, time_t now);

#endif
