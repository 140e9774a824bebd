/* mime - a streaming scanner of a message's MIME structure, one line at a time.
 *
 * Feed it the message's lines in order (CRLF or bare LF endings, or none for a last line);
 * for each it says what the line is: a header line (continuation lines included) of the
 * message's own header section, of a MIME part's or of an attached message/rfc822's; the
 * empty line that ends a header section; a multipart boundary line; or body (preamble,
 * epilogue and the content of a leaf part included). It tracks Content-Type multipart/...
 * boundaries (RFC 2046: "--boundary" and "--boundary--", case-sensitive, trailing white
 * space allowed, a boundary of at most MIME_BOUNDARY_MAX octets), nesting, the implicit
 * message/rfc822 parts of multipart/digest, and the header section that starts the body of
 * a message/rfc822 (or message/global) part that is not base64 or quoted-printable encoded.
 *
 * A line that is neither a header nor a continuation nor empty ends a header section and is
 * body (as in Postfix). A boundary of any enclosing multipart ends the inner parts (RFC
 * 2046 forbids an inner boundary to match an outer one). Of several Content-Type fields in
 * one section the first counts, as most mail readers do. A part nested deeper than
 * MIME_DEPTH_MAX is plain body and flagged MIME_ERR_NESTING. The state is a fixed-size
 * struct: garbage input costs nothing more and never fails.
 *
 * A caller that cuts overlong lines into pieces passes only the first piece of a line: a
 * line's kind depends on its first octets. No I/O. Used by libcommon/content (header_checks
 * and body_checks at DATA, `postern map test`). */
#ifndef POSTERN_MIME_H
#define POSTERN_MIME_H

#include <stddef.h>

#define MIME_DEPTH_MAX    20          /* nested parts and attached messages */
#define MIME_BOUNDARY_MAX 70          /* octets of a boundary (RFC 2046 5.1.1) */

enum mime_line_kind {
    MIME_HEADER = 0,                  /* the message's own header section */
    MIME_PART_HEADER,                 /* the header section of a MIME part */
    MIME_MESSAGE_HEADER,              /* the header section of an attached message */
    MIME_HEADER_END,                  /* the empty line that ends a header section */
    MIME_BOUNDARY,                    /* --boundary or --boundary-- of an open multipart */
    MIME_BODY,                        /* everything else */
};

/* Flags in mime_errors(): what was odd, for a caller that wants to log it. */
#define MIME_ERR_NESTING  0x01u       /* parts nested deeper than MIME_DEPTH_MAX */
#define MIME_ERR_BOUNDARY 0x02u       /* multipart/... without a usable boundary */
#define MIME_ERR_OPEN     0x04u       /* a multipart not closed with --boundary-- */

struct mime;

/* mime_new - a scanner ready for a message; never NULL (out of memory is fatal). */
struct mime *mime_new(void);
void         mime_free(struct mime **);       /* frees, sets *mp = NULL */
/* mime_reset - ready for a new message. */
void         mime_reset(struct mime *);

/* mime_line - the kind of line[0, len), the next line of the message. */
enum mime_line_kind mime_line(struct mime *, const char *line, size_t len);
/* mime_end - the message is complete (sets MIME_ERR_OPEN if a multipart is still open). */
void         mime_end(struct mime *);

/* mime_depth - the nesting of the current part: 0 the message itself, 1 its parts, ... */
unsigned     mime_depth(const struct mime *);
/* mime_errors - MIME_ERR_* flags seen since mime_reset(). */
unsigned     mime_errors(const struct mime *);
/* mime_kind_name - "header", "part-header", ... for logs and tests. */
const char  *mime_kind_name(enum mime_line_kind);

#endif
