/* smtp_reply - building SMTP replies: single and multi-line, enhanced status codes.
 *
 * Replies are appended to the caller's buffer so that a batch of pipelined replies goes out
 * in one write. The text is made safe on the way: CR, LF, NUL and other control characters
 * are replaced by '?', so a peer's words quoted in a reply can never start a new line, and a
 * line is cut to fit SMTP_REPLY_LINE_MAX. Used by smtpd (and later the LMTP/SMTP client for
 * its own tests). */
#ifndef POSTERN_SMTP_REPLY_H
#define POSTERN_SMTP_REPLY_H

#include <stddef.h>

#include "buf.h"

#define SMTP_REPLY_LINE_MAX 512       /* octets, CRLF included (RFC 5321 4.5.3.1.5) */

/* smtp_reply - append "code enh text\r\n" (enh NULL or "": no enhanced code). */
void smtp_reply(struct buf *out, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* smtp_reply_cont - one line of a multi-line reply: last=0 gives "code-", last=1 "code ". */
void smtp_reply_cont(struct buf *out, int code, const char *enh, int last,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* smtp_reply_lines - a whole multi-line reply from n lines of text. */
void smtp_reply_lines(struct buf *out, int code, const char *enh,
                      const char *const *lines, size_t n);

/* smtp_reply_parse - parse one reply line (without CRLF) as a client would: code, whether
 * more lines follow, and where the text starts. -1 if it is not a reply line. */
int  smtp_reply_parse(const char *line, size_t len, int *code, int *more, size_t *text);

#endif
