/* smtp_data - the DATA-phase scanner: end-of-data detection, dot-unstuffing, limits.
 *
 * A byte-at-a-time state machine whose only memory is the state below, so chunk boundaries
 * cannot change what it does. "Beginning of line" means: the start of the data, or right
 * after a real CRLF; only there is a dot special. A bare LF or bare CR ends an output line
 * (written as CRLF) but does not start an SMTP line. Runs of ordinary octets are copied in
 * one go. */
#include <string.h>

#include "smtp_data.h"

enum {
    SMTP_DATA_ST_BOL = 0,             /* at the start of an SMTP line */
    SMTP_DATA_ST_DOT,                 /* "." at the start of a line */
    SMTP_DATA_ST_DOT_CR,              /* ".\r" at the start of a line */
    SMTP_DATA_ST_TEXT,                /* inside a line */
    SMTP_DATA_ST_CR,                  /* a CR, not yet known to be followed by LF */
    SMTP_DATA_ST_END,                 /* end of data seen */
};

/* smtp_data_init - ready for a new message. */
void
smtp_data_init(struct smtp_data *d, uint64_t size_limit, uint64_t header_limit)
{
    memset(d, 0, sizeof(*d));
    d->state = SMTP_DATA_ST_BOL;
    d->size_limit = size_limit;
    d->header_limit = header_limit;
    d->in_header = 1;
}

/* smtp_data_count - account for n octets about to be output. */
static void
smtp_data_count(struct smtp_data *d, size_t n)
{
    d->size += n;
    if (d->size_limit && d->size > d->size_limit)
        d->flags |= SMTP_DATA_TOO_BIG;
    if (d->in_header) {
        d->header_size += n;
        if (d->header_limit && d->header_size > d->header_limit)
            d->flags |= SMTP_DATA_HDR_TOO_BIG;
    }
}

/* smtp_data_hdr_scan - follow the start of a header line and count "Received:" fields
 * (the name, optional white space as in RFC 5322's obsolete syntax, then a colon). */
static void
smtp_data_hdr_scan(struct smtp_data *d, const char *p, size_t n)
{
    static const char name[] = "received";
    size_t            i;

    for (i = 0; i < n && d->hdr_match >= 0; i++) {
        unsigned char c = (unsigned char)p[i];

        if (d->hdr_match < (int)sizeof(name) - 1) {
            if ((c | 0x20) == (unsigned char)name[d->hdr_match])
                d->hdr_match++;
            else
                d->hdr_match = -1;
        } else if (c == ':') {
            d->received++;
            d->hdr_match = -1;
        } else if (c != ' ' && c != '\t') {
            d->hdr_match = -1;
        }
    }
}

/* smtp_data_text - output n octets of a line. */
static void
smtp_data_text(struct smtp_data *d, struct buf *out, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (d->in_header && d->hdr_match >= 0)
        smtp_data_hdr_scan(d, p, n);
    smtp_data_count(d, n);
    d->line_len += n;
    if (d->line_len > SMTP_DATA_LINE_MAX)
        d->flags |= SMTP_DATA_LONG_LINE;
    if (out != NULL)
        (void)buf_append(out, p, n);
}

/* smtp_data_eol - output a line ending; an empty line ends the header section. */
static void
smtp_data_eol(struct smtp_data *d, struct buf *out)
{
    if (d->in_header && d->line_len == 0)
        d->in_header = 0;
    smtp_data_count(d, 2);
    d->line_len = 0;
    d->hdr_match = 0;
    d->lines++;
    if (out != NULL)
        (void)buf_append(out, "\r\n", 2);
}

/* smtp_data_feed - scan a chunk. */
enum smtp_data_status
smtp_data_feed(struct smtp_data *d, const char *in, size_t len, struct buf *out,
               size_t *consumed)
{
    size_t        i = 0, j;
    unsigned char c;

    *consumed = 0;
    if (d->state == SMTP_DATA_ST_END)
        return SMTP_DATA_END;
    while (i < len) {
        c = (unsigned char)in[i];
        switch (d->state) {
        case SMTP_DATA_ST_BOL:
            if (c == '.') {
                d->state = SMTP_DATA_ST_DOT;
                i++;
            } else {
                d->state = SMTP_DATA_ST_TEXT;
            }
            break;
        case SMTP_DATA_ST_DOT:
            if (c == '\r') {
                d->state = SMTP_DATA_ST_DOT_CR;
                i++;
            } else {
                d->state = SMTP_DATA_ST_TEXT;     /* the stuffed dot is dropped */
            }
            break;
        case SMTP_DATA_ST_DOT_CR:
            if (c == '\n') {
                d->state = SMTP_DATA_ST_END;
                *consumed = i + 1;
                return SMTP_DATA_END;
            }
            d->state = SMTP_DATA_ST_CR;           /* dot dropped; the CR is bare */
            break;
        case SMTP_DATA_ST_CR:
            if (c == '\n') {
                smtp_data_eol(d, out);
                d->state = SMTP_DATA_ST_BOL;
                i++;
            } else {
                d->flags |= SMTP_DATA_BARE_CR;
                smtp_data_eol(d, out);
                d->state = SMTP_DATA_ST_TEXT;     /* not a line start: no dot rules */
            }
            break;
        case SMTP_DATA_ST_TEXT:
            for (j = i; j < len; j++) {
                c = (unsigned char)in[j];
                if (c == '\r' || c == '\n')
                    break;
                if (c >= 0x80)
                    d->flags |= SMTP_DATA_8BIT;
                else if (c == 0)
                    d->flags |= SMTP_DATA_NUL;
            }
            smtp_data_text(d, out, in + i, j - i);
            i = j;
            if (i < len) {
                if (in[i] == '\r') {
                    d->state = SMTP_DATA_ST_CR;
                } else {
                    d->flags |= SMTP_DATA_BARE_LF;
                    smtp_data_eol(d, out);        /* still not a line start */
                }
                i++;
            }
            break;
        default:
            *consumed = i;
            return SMTP_DATA_END;
        }
    }
    *consumed = len;
    return SMTP_DATA_MORE;
}
