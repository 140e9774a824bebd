/* smtp_data - the DATA-phase scanner: end-of-data detection, dot-unstuffing, limits.
 *
 * Feed it the bytes that follow a 354 in chunks of any size; it appends the message, as it is
 * to be stored, to the caller's buffer: dots unstuffed, every line ending CRLF. The end of
 * data is <CR><LF>.<CR><LF> and nothing else (or .<CR><LF> as the very first line): a bare
 * LF or a bare CR never ends a line for that purpose, so `<LF>.<LF>`, `<LF>.<CR><LF>`,
 * `<CR><LF>.<LF>`, `<CR>.<CR>` and the like are data (SMTP smuggling). Each bare LF or CR
 * is written as CRLF and flagged, for a caller whose policy is to reject such messages.
 * The scanner counts the message size, the header section (up to the first empty line) and
 * flags lines over 998 octets and counts the Received: fields of the header section (for the
 * caller's loop check); it never splits a line and always scans to the real end, so
 * the caller can reply once the client is done. The output is the same however the input is
 * split. No I/O and no allocation beyond the caller's buffer. Used by smtpd; fuzzed by
 * tests/fuzz/fuzz_smtp_data.c. */
#ifndef POSTERN_SMTP_DATA_H
#define POSTERN_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SMTP_DATA_LINE_MAX 998        /* octets, CRLF excluded (RFC 5322 2.1.1) */

/* Flags in struct smtp_data.flags */
#define SMTP_DATA_BARE_LF     0x01u   /* a bare LF was normalised */
#define SMTP_DATA_BARE_CR     0x02u   /* a bare CR was normalised */
#define SMTP_DATA_TOO_BIG     0x04u   /* the message exceeds size_limit */
#define SMTP_DATA_HDR_TOO_BIG 0x08u   /* the header section exceeds header_limit */
#define SMTP_DATA_LONG_LINE   0x10u   /* a line exceeds SMTP_DATA_LINE_MAX */
#define SMTP_DATA_8BIT        0x20u   /* an octet over 127 appears */
#define SMTP_DATA_NUL         0x40u   /* a NUL octet appears */

struct smtp_data {
    int      state;                   /* private */
    uint64_t size_limit;              /* 0 = none */
    uint64_t header_limit;            /* 0 = none */
    uint64_t size;                    /* octets of output so far (whether kept or not) */
    uint64_t header_size;             /* octets of the header section so far */
    size_t   line_len;                /* octets of the current output line */
    int      in_header;               /* still inside the header section */
    unsigned flags;                   /* SMTP_DATA_* */
    uint64_t lines;                   /* output lines so far */
    unsigned received;                /* "Received:" fields in the header section */
    int      hdr_match;               /* private: "received" octets matched on this line */
};

/* smtp_data_init - ready for a new message. */
void smtp_data_init(struct smtp_data *, uint64_t size_limit, uint64_t header_limit);

enum smtp_data_status {
    SMTP_DATA_MORE = 0,               /* everything consumed, the message goes on */
    SMTP_DATA_END,                    /* end of data seen: *consumed stops right after it */
};

/* smtp_data_feed - scan in[0, len), append the message bytes to out (NULL: count only,
 * e.g. once the message is known to be rejected). *consumed gets how many input bytes were
 * used: all of them for SMTP_DATA_MORE; for SMTP_DATA_END those up to and including the
 * final CRLF; what follows is the next command (pipelining). Bytes held back because they
 * might start the end-of-data sequence (at most ".\r" or "\r") are remembered in the state
 * and emitted later. After SMTP_DATA_END call smtp_data_init() before the next message. */
enum smtp_data_status smtp_data_feed(struct smtp_data *, const char *in, size_t len,
                                     struct buf *out, size_t *consumed);

#endif
