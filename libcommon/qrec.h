/* qrec - the binary queue record codec: envelope and recipient records and their keys.
 *
 * qmgr stores one envelope record (`msg`) per message and one recipient record (`rcpt`) per
 * recipient in Berkeley DB; the CLI reads the same records offline. A record is:
 *
 *   u8  magic        QREC_MAGIC_MSG or QREC_MAGIC_RCPT
 *   u8  major        QREC_MAJOR; a reader refuses a record of another major version
 *   u16 hdr_len      bytes from the start of the record to the first tagged field
 *   u16 flags        record flags, none defined yet (readers ignore unknown bits)
 *   ...              fixed fields (big-endian integers); a later minor version may append
 *                    fixed fields, which older readers skip thanks to hdr_len
 *   { u16 tag, u32 len, len bytes }*   tagged fields; unknown tags are skipped
 *
 * Strings are stored without a terminator and must hold no NUL. Decoding checks every length
 * against the record and returns -1 on anything malformed (never reads out of bounds); a
 * known tag seen twice is malformed. Decoded strings are xstrndup'd copies owned by the
 * struct and released by qrec_*_clear(); absent strings decode as "" (never NULL).
 *
 * Keys are built so that Berkeley DB's default byte-wise btree order is the useful order:
 *   msg     qid (QID_LEN bytes)
 *   rcpt    qid + u32 index                          (all recipients of a message adjacent)
 *   retry   u64 next attempt + qid + u32 index       (due work first)
 *   domain  domain + NUL + qid + u32 index           (per destination)
 * Integers in keys and records are big-endian. Out of memory is fatal (xmalloc). */
#ifndef POSTERN_QREC_H
#define POSTERN_QREC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "qid.h"

#define QREC_MAGIC_MSG    0xE5u
#define QREC_MAGIC_RCPT   0xE6u
#define QREC_MAJOR        1u
#define QREC_MAX_RECORD   (1024u * 1024u)   /* bytes; larger records are refused */
#define QREC_MAX_FIELD    (64u * 1024u)     /* bytes per string field */

/* Envelope flags (struct qrec_msg.flags); the low bits match IPC_F_*. */
#define QREC_F_SMTPUTF8   0x01u
#define QREC_F_8BITMIME   0x02u
#define QREC_F_HOLD       0x100u            /* administrator hold: no deliveries */
#define QREC_F_BOUNCE     0x200u            /* a DSN made by us: never bounces itself */
#define QREC_F_WARNED     0x400u            /* a delay warning was sent for this message */

/* Recipient states. Final states are SENT and FAILED. */
enum qrec_state {
    QREC_QUEUED   = 0,          /* waiting for its first attempt */
    QREC_ACTIVE   = 1,          /* handed to a delivery agent (in flight) */
    QREC_DEFERRED = 2,          /* failed temporarily, retried at next_attempt */
    QREC_SENT     = 3,          /* delivered */
    QREC_FAILED   = 4,          /* failed for good (bounce) */
};
#define QREC_STATE_MAX QREC_FAILED

struct qrec_msg {
    uint64_t  arrival;          /* seconds since the epoch */
    uint64_t  expiry;           /* seconds since the epoch: bounce after this */
    uint64_t  size;             /* body bytes */
    uint32_t  flags;            /* QREC_F_* */
    uint32_t  ret;              /* DSN RET: 0 unset, 1 FULL, 2 HDRS */
    uint32_t  nrcpt;            /* recipient records written for this message */
    char     *sender;           /* "" for <> */
    char     *envid;            /* DSN ENVID or "" */
    char     *client_addr;
    char     *client_name;
    char     *helo;
    char     *protocol;
    char     *auth_user;
};

struct qrec_rcpt {
    uint32_t  state;            /* enum qrec_state */
    uint32_t  notify;           /* DSN NOTIFY bits, 0 if unset */
    uint32_t  attempts;
    uint64_t  next_attempt;     /* seconds since the epoch */
    uint64_t  last_attempt;     /* seconds since the epoch, 0 if never tried */
    char     *addr;             /* the recipient as delivered to */
    char     *orig;             /* the recipient as given at RCPT TO */
    char     *orcpt;            /* DSN ORCPT or "" */
    char     *domain;           /* lower-case domain part of addr, "" if none */
    char     *dsn;              /* last enhanced status code, e.g. "4.2.2", or "" */
    char     *text;             /* last reply or diagnostic text, or "" */
    char     *relay;            /* last remote MTA ("mx.b.example[192.0.2.1]:25") or "";
                                 * tag added in minor version 1.1, absent in older records */
};

/* qrec_msg_enc - append the encoded envelope to out (NULL strings encode as ""). -1 if a
 * field or the record is over its limit (out is then left as it was). */
int  qrec_msg_enc(struct buf *out, const struct qrec_msg *);
/* qrec_msg_dec - decode len bytes into m (zeroed first); -1: malformed (m then cleared). */
int  qrec_msg_dec(const void *data, size_t len, struct qrec_msg *m);
void qrec_msg_clear(struct qrec_msg *);     /* frees the strings, zeroes the struct */

int  qrec_rcpt_enc(struct buf *out, const struct qrec_rcpt *);
int  qrec_rcpt_dec(const void *data, size_t len, struct qrec_rcpt *r);
void qrec_rcpt_clear(struct qrec_rcpt *);

const char *qrec_state_name(uint32_t state);   /* "queued", ... or "unknown" */
int         qrec_state_final(uint32_t state);  /* 1: SENT or FAILED */

/* Keys. Encoders write into a caller buffer of the given size and return the key length.
 * Decoders return -1 when the key has the wrong shape; qid out is NUL-terminated. */
#define QREC_KEY_MSG_LEN    QID_LEN
#define QREC_KEY_RCPT_LEN   (QID_LEN + 4)
#define QREC_KEY_RETRY_LEN  (8 + QID_LEN + 4)
#define QREC_KEY_DOMAIN_MAX (255 + 1 + QID_LEN + 4)

size_t qrec_key_msg(uint8_t out[QREC_KEY_MSG_LEN], const char *qid);
size_t qrec_key_rcpt(uint8_t out[QREC_KEY_RCPT_LEN], const char *qid, uint32_t index);
int    qrec_key_rcpt_dec(const void *key, size_t len, char qid[QID_SIZE], uint32_t *index);
size_t qrec_key_retry(uint8_t out[QREC_KEY_RETRY_LEN], uint64_t when, const char *qid,
                      uint32_t index);
int    qrec_key_retry_dec(const void *key, size_t len, uint64_t *when, char qid[QID_SIZE],
                          uint32_t *index);
/* qrec_key_domain - a domain longer than 255 bytes is cut to 255 (the key stays unique
 * because qid and index follow). Returns the key length. */
size_t qrec_key_domain(uint8_t out[QREC_KEY_DOMAIN_MAX], const char *domain, const char *qid,
                       uint32_t index);
int    qrec_key_domain_dec(const void *key, size_t len, char *domain, size_t domlen,
                           char qid[QID_SIZE], uint32_t *index);

/* qrec_domain_of - the lower-case domain part of addr (after the last '@') into out; "" if
 * addr has none. Truncates to outlen-1. */
void   qrec_domain_of(const char *addr, char *out, size_t outlen);

#endif
