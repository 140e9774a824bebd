/* milter - the Sendmail milter protocol (version 6), client side: packets, no I/O.
 *
 * A packet is a 32-bit length in network order (the command byte included), a command
 * byte and its data. milter_put_* append a packet that smtpd sends to a milter;
 * milter_take() cuts one reply from the bytes received, and milter_parse_* read the
 * fields of the replies that carry any. Every length is checked against the packet: a
 * hostile milter gets -1 (the caller drops it), never a read out of bounds; a packet is at
 * most MILTER_PACKET_MAX octets, so a milter cannot make us buffer more. The header
 * helpers split a message's header section and apply the modifications a milter asked
 * for at end of message. Used by smtpd (smtpd_milter.c); tested by tests/unit/milter_test.c. */
#ifndef POSTERN_MILTER_H
#define POSTERN_MILTER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MILTER_VERSION     6
#define MILTER_CHUNK_MAX   65535          /* body octets per SMFIC_BODY */
#define MILTER_PACKET_MAX  (1024 * 1024)  /* longest reply accepted (SMFIR_REPLBODY chunk) */
#define MILTER_TEXT_MAX    512            /* reply text kept from SMFIR_REPLYCODE */

/* Commands (SMFIC_*) and replies (SMFIR_*) used here. */
enum {
    MILTER_C_ABORT = 'A', MILTER_C_BODY = 'B', MILTER_C_CONNECT = 'C', MILTER_C_MACRO = 'D',
    MILTER_C_EOM = 'E', MILTER_C_HELO = 'H', MILTER_C_HEADER = 'L', MILTER_C_MAIL = 'M',
    MILTER_C_EOH = 'N', MILTER_C_OPTNEG = 'O', MILTER_C_QUIT = 'Q', MILTER_C_RCPT = 'R',
    MILTER_C_DATA = 'T',
};
enum {
    MILTER_R_ADDRCPT = '+', MILTER_R_DELRCPT = '-', MILTER_R_ADDRCPT_PAR = '2',
    MILTER_R_ACCEPT = 'a', MILTER_R_REPLBODY = 'b', MILTER_R_CONTINUE = 'c',
    MILTER_R_DISCARD = 'd', MILTER_R_CHGFROM = 'e', MILTER_R_ADDHEADER = 'h',
    MILTER_R_INSHEADER = 'i', MILTER_R_CHGHEADER = 'm', MILTER_R_PROGRESS = 'p',
    MILTER_R_QUARANTINE = 'q', MILTER_R_REJECT = 'r', MILTER_R_SKIP = 's',
    MILTER_R_TEMPFAIL = 't', MILTER_R_REPLYCODE = 'y',
};

/* Actions a milter may take (SMFIF_*). */
#define MILTER_F_ADDHDRS     0x01u
#define MILTER_F_CHGBODY     0x02u
#define MILTER_F_ADDRCPT     0x04u
#define MILTER_F_DELRCPT     0x08u
#define MILTER_F_CHGHDRS     0x10u
#define MILTER_F_QUARANTINE  0x20u
#define MILTER_F_CHGFROM     0x40u
#define MILTER_F_ADDRCPT_PAR 0x80u

/* Steps a milter does not want, or wants no reply to (SMFIP_*). */
#define MILTER_P_NOCONNECT 0x1u
#define MILTER_P_NOHELO    0x2u
#define MILTER_P_NOMAIL    0x4u
#define MILTER_P_NORCPT    0x8u
#define MILTER_P_NOBODY    0x10u
#define MILTER_P_NOHDRS    0x20u
#define MILTER_P_NOEOH     0x40u
#define MILTER_P_NR_HDR    0x80u
#define MILTER_P_NOUNKNOWN 0x100u
#define MILTER_P_NODATA    0x200u
#define MILTER_P_SKIP      0x400u
#define MILTER_P_NR_CONN   0x1000u
#define MILTER_P_NR_HELO   0x2000u
#define MILTER_P_NR_MAIL   0x4000u
#define MILTER_P_NR_RCPT   0x8000u
#define MILTER_P_NR_DATA   0x10000u
#define MILTER_P_NR_UNKN   0x20000u
#define MILTER_P_NR_EOH    0x40000u
#define MILTER_P_NR_BODY   0x80000u

/* One reply cut from the input: data points into the caller's buffer. */
struct milter_packet {
    char        cmd;
    const char *data;
    size_t      len;
};

void milter_put_optneg(struct buf *, uint32_t actions, uint32_t protocol);
/* milter_put - a packet of any command with raw data (BODY, EOH, ABORT, QUIT, DATA). */
void milter_put(struct buf *, char cmd, const void *data, size_t len);
/* milter_put_strings - a packet whose data is n NUL-terminated strings (HELO, MAIL, RCPT). */
void milter_put_strings(struct buf *, char cmd, const char *const *v, size_t n);
/* milter_put_args - SMFIC_MAIL or SMFIC_RCPT: the address, then each ESMTP parameter of
 * params (as the client gave them, separated by spaces; "" for none) as a string of its own,
 * as Sendmail and Postfix send them. */
void milter_put_args(struct buf *, char cmd, const char *addr, const char *params);
/* milter_put_connect - SMFIC_CONNECT: addr "" is an unknown family (local submission). */
void milter_put_connect(struct buf *, const char *host, const char *addr, unsigned port);
/* milter_put_macros - SMFIC_MACRO for the command stage: n name/value pairs in v[2n];
 * pairs whose value is NULL are left out. */
void milter_put_macros(struct buf *, char stage, const char *const *v, size_t n);
void milter_put_header(struct buf *, const char *name, size_t nlen, const char *value,
                       size_t vlen);

/* milter_take - cut one packet from p[0, n): 1 and *used octets, 0 if incomplete, -1 if
 * malformed (empty or longer than MILTER_PACKET_MAX). */
int milter_take(const char *p, size_t n, struct milter_packet *, size_t *used);
/* milter_parse_optneg - the milter's version, actions and protocol flags; -1: malformed. */
int milter_parse_optneg(const struct milter_packet *, uint32_t *version, uint32_t *actions,
                        uint32_t *protocol);
/* milter_parse_replycode - "xyz[ x.y.z] text": a 4xx or 5xx code, the enhanced code (or
 * ""), the text (or ""), control characters replaced. -1: not such a reply. */
int milter_parse_replycode(const struct milter_packet *, int *code, char *enh, size_t enhlen,
                           char *text, size_t textlen);
/* milter_parse_strings - up to n NUL-terminated strings of the packet into v (pointers into
 * it, NULL past the last); 0 if the data ends with a NUL and has at least required, else -1. */
int milter_parse_strings(const struct milter_packet *, const char **v, size_t n,
                         size_t required);
/* milter_parse_index - a 32-bit index then strings (CHGHEADER, INSHEADER). */
int milter_parse_index(const struct milter_packet *, uint32_t *index, const char **v,
                       size_t n);

/* milter_body_crlf - a chunk of a replacement body (SMFIR_REPLBODY) as it is stored: every
 * CR dropped and every LF written as CRLF, so whatever line ends the milter uses (chunks
 * may split a CRLF) the queue gets CRLF and never a bare CR. Appended to out. */
void milter_body_crlf(const char *p, size_t n, struct buf *out);

/* A header section as a list of fields: each with its name and raw bytes (folded lines and
 * the CRLF included), as the message had it or as a milter made it. */
struct milter_field {
    char  *name;
    char  *raw;
    size_t rawlen;
};
struct milter_hdrs {
    struct milter_field *f;
    size_t               n, cap;
};

/* milter_hdrs_split - the header section at the start of p[0, n): its fields into h, the
 * offset where it ends (the empty line, or the first line that is not a header field) in
 * *end. -1 if the section does not end within n octets. */
int  milter_hdrs_split(const char *p, size_t n, struct milter_hdrs *, size_t *end);
void milter_hdrs_free(struct milter_hdrs *);
/* milter_field_value - the value as a milter gets it: after the colon and the white space
 * that follows it, folding as LF, no final line end; into out. */
void milter_field_value(const struct milter_field *, struct buf *out);
/* milter_hdrs_add - a new field at index at (n or more: the end): "Name: value", LF in the
 * value (folding) written as CRLF. */
void milter_hdrs_add(struct milter_hdrs *, size_t at, const char *name, const char *value);
/* milter_hdrs_change - SMFIR_CHGHEADER: the index-th (from 1) field of that name gets the
 * value, or is deleted if value is ""; no such field: added at the end (a non-empty value). */
void milter_hdrs_change(struct milter_hdrs *, uint32_t index, const char *name,
                        const char *value);
/* milter_hdrs_join - the section again, appended to out. */
void milter_hdrs_join(const struct milter_hdrs *, struct buf *out);

#endif
