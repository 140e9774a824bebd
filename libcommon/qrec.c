/* qrec - the binary queue record codec: envelope and recipient records and their keys.
 *
 * The layout is described in qrec.h. Encoding appends to a struct buf; decoding walks a
 * bounded cursor over the caller's bytes and fails (returns -1, frees what it copied) on the
 * first length that does not fit, so a corrupt or hostile record can never make a reader
 * overrun. Used by qmgr (daemons/qmgr/qmgr_store.c) and the CLI's offline queue reader. */
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#include "buf.h"
#include "qid.h"
#include "qrec.h"

#define QREC_PREFIX_LEN   6         /* magic, major, hdr_len, flags */
#define QREC_MSG_FIXED    (8 + 8 + 8 + 4 + 4 + 4)
#define QREC_RCPT_FIXED   (4 + 4 + 4 + 8 + 8)
#define QREC_TAG_HDR      6         /* u16 tag + u32 len */

/* Tags of the envelope record. Never reuse a number. */
enum {
    QREC_TM_SENDER = 1,
    QREC_TM_ENVID,
    QREC_TM_CLIENT_ADDR,
    QREC_TM_CLIENT_NAME,
    QREC_TM_HELO,
    QREC_TM_PROTOCOL,
    QREC_TM_AUTH_USER,
    QREC_TM_COUNT
};

/* Tags of the recipient record. Never reuse a number. */
enum {
    QREC_TR_ADDR = 1,
    QREC_TR_ORIG,
    QREC_TR_ORCPT,
    QREC_TR_DOMAIN,
    QREC_TR_DSN,
    QREC_TR_TEXT,
    QREC_TR_RELAY,
    QREC_TR_COUNT
};

/* A bounded read cursor. */
struct qrec_cur {
    const uint8_t *p;
    size_t         left;
};

/* qrec_put_u16 - append a big-endian u16. */
static void
qrec_put_u16(struct buf *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

    buf_append(b, x, sizeof(x));
}

/* qrec_put_u32 - append a big-endian u32. */
static void
qrec_put_u32(struct buf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

    buf_append(b, x, sizeof(x));
}

/* qrec_put_u64 - append a big-endian u64. */
static void
qrec_put_u64(struct buf *b, uint64_t v)
{
    qrec_put_u32(b, (uint32_t)(v >> 32));
    qrec_put_u32(b, (uint32_t)v);
}

/* qrec_put_field - append one tagged string field; "" and NULL are left out. */
static int
qrec_put_field(struct buf *b, uint16_t tag, const char *s)
{
    size_t n;

    if (s == NULL || *s == '\0')
        return 0;
    n = strlen(s);
    if (n > QREC_MAX_FIELD)
        return -1;
    qrec_put_u16(b, tag);
    qrec_put_u32(b, (uint32_t)n);
    buf_append(b, s, n);
    return 0;
}

/* qrec_be16 - read a big-endian u16 at p. */
static uint16_t
qrec_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* qrec_be32 - read a big-endian u32 at p. */
static uint32_t
qrec_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* qrec_be64 - read a big-endian u64 at p. */
static uint64_t
qrec_be64(const uint8_t *p)
{
    return ((uint64_t)qrec_be32(p) << 32) | qrec_be32(p + 4);
}

/* qrec_wr32 - store a big-endian u32 at p. */
static void
qrec_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* qrec_wr64 - store a big-endian u64 at p. */
static void
qrec_wr64(uint8_t *p, uint64_t v)
{
    qrec_wr32(p, (uint32_t)(v >> 32));
    qrec_wr32(p + 4, (uint32_t)v);
}

/* qrec_get_u32 - take a u32 from the cursor; -1 if short. */
static int
qrec_get_u32(struct qrec_cur *c, uint32_t *v)
{
    if (c->left < 4)
        return -1;
    *v = qrec_be32(c->p);
    c->p += 4;
    c->left -= 4;
    return 0;
}

/* qrec_get_u64 - take a u64 from the cursor; -1 if short. */
static int
qrec_get_u64(struct qrec_cur *c, uint64_t *v)
{
    if (c->left < 8)
        return -1;
    *v = qrec_be64(c->p);
    c->p += 8;
    c->left -= 8;
    return 0;
}

/* qrec_open - check the common prefix for magic; set *fixed to the fixed fields and *tags to
 * the tagged part. -1: not a record of this kind and major version, or lengths that lie. */
static int
qrec_open(const void *data, size_t len, uint8_t magic, size_t fixed_len,
          struct qrec_cur *fixed, struct qrec_cur *tags)
{
    const uint8_t *p = data;
    size_t         hdr_len;

    if (data == NULL || len < QREC_PREFIX_LEN || len > QREC_MAX_RECORD)
        return -1;
    if (p[0] != magic || p[1] != QREC_MAJOR)
        return -1;
    hdr_len = qrec_be16(p + 2);
    if (hdr_len < QREC_PREFIX_LEN + fixed_len || hdr_len > len)
        return -1;
    fixed->p = p + QREC_PREFIX_LEN;
    fixed->left = hdr_len - QREC_PREFIX_LEN;
    tags->p = p + hdr_len;
    tags->left = len - hdr_len;
    return 0;
}

/* qrec_next_tag - take the next tagged field. 1: got one; 0: end; -1: malformed. */
static int
qrec_next_tag(struct qrec_cur *c, uint16_t *tag, const uint8_t **val, size_t *vlen)
{
    uint32_t n;

    if (c->left == 0)
        return 0;
    if (c->left < QREC_TAG_HDR)
        return -1;
    *tag = qrec_be16(c->p);
    n = qrec_be32(c->p + 2);
    if (n > c->left - QREC_TAG_HDR)
        return -1;
    *val = c->p + QREC_TAG_HDR;
    *vlen = n;
    c->p += QREC_TAG_HDR + n;
    c->left -= QREC_TAG_HDR + n;
    return 1;
}

/* qrec_take_str - copy a string field into *dst; -1 if seen before, too long or has a NUL. */
static int
qrec_take_str(char **dst, const uint8_t *val, size_t vlen)
{
    if (*dst != NULL || vlen > QREC_MAX_FIELD || memchr(val, '\0', vlen) != NULL)
        return -1;
    *dst = xstrndup((const char *)val, vlen);
    return 0;
}

/* qrec_fill - replace absent strings by "" so readers never see NULL. */
static void
qrec_fill(char **s)
{
    if (*s == NULL)
        *s = xstrdup("");
}

/* qrec_begin - write the common prefix: magic, major version, header length, flags. */
static void
qrec_begin(struct buf *b, uint8_t magic, size_t fixed_len)
{
    uint8_t x[2] = { magic, QREC_MAJOR };

    buf_append(b, x, sizeof(x));
    qrec_put_u16(b, (uint16_t)(QREC_PREFIX_LEN + fixed_len));
    qrec_put_u16(b, 0);
}

/* qrec_msg_enc - append the encoded envelope. */
int
qrec_msg_enc(struct buf *out, const struct qrec_msg *m)
{
    size_t start = out->len;

    qrec_begin(out, QREC_MAGIC_MSG, QREC_MSG_FIXED);
    qrec_put_u64(out, m->arrival);
    qrec_put_u64(out, m->expiry);
    qrec_put_u64(out, m->size);
    qrec_put_u32(out, m->flags);
    qrec_put_u32(out, m->ret);
    qrec_put_u32(out, m->nrcpt);
    if (qrec_put_field(out, QREC_TM_SENDER, m->sender) == -1
        || qrec_put_field(out, QREC_TM_ENVID, m->envid) == -1
        || qrec_put_field(out, QREC_TM_CLIENT_ADDR, m->client_addr) == -1
        || qrec_put_field(out, QREC_TM_CLIENT_NAME, m->client_name) == -1
        || qrec_put_field(out, QREC_TM_HELO, m->helo) == -1
        || qrec_put_field(out, QREC_TM_PROTOCOL, m->protocol) == -1
        || qrec_put_field(out, QREC_TM_AUTH_USER, m->auth_user) == -1
        || out->len - start > QREC_MAX_RECORD) {
        buf_truncate(out, start);
        return -1;
    }
    return 0;
}

/* qrec_msg_dec - decode an envelope record. */
int
qrec_msg_dec(const void *data, size_t len, struct qrec_msg *m)
{
    struct qrec_cur fixed, tags;
    const uint8_t  *val;
    size_t          vlen;
    uint16_t        tag;
    int             rc;

    memset(m, 0, sizeof(*m));
    if (qrec_open(data, len, QREC_MAGIC_MSG, QREC_MSG_FIXED, &fixed, &tags) == -1)
        return -1;
    if (qrec_get_u64(&fixed, &m->arrival) == -1 || qrec_get_u64(&fixed, &m->expiry) == -1
        || qrec_get_u64(&fixed, &m->size) == -1 || qrec_get_u32(&fixed, &m->flags) == -1
        || qrec_get_u32(&fixed, &m->ret) == -1 || qrec_get_u32(&fixed, &m->nrcpt) == -1)
        return -1;
    while ((rc = qrec_next_tag(&tags, &tag, &val, &vlen)) == 1) {
        char **dst;

        switch (tag) {
        case QREC_TM_SENDER:      dst = &m->sender; break;
        case QREC_TM_ENVID:       dst = &m->envid; break;
        case QREC_TM_CLIENT_ADDR: dst = &m->client_addr; break;
        case QREC_TM_CLIENT_NAME: dst = &m->client_name; break;
        case QREC_TM_HELO:        dst = &m->helo; break;
        case QREC_TM_PROTOCOL:    dst = &m->protocol; break;
        case QREC_TM_AUTH_USER:   dst = &m->auth_user; break;
        default:                  continue;     /* a newer writer's field */
        }
        if (qrec_take_str(dst, val, vlen) == -1) {
            rc = -1;
            break;
        }
    }
    if (rc == -1) {
        qrec_msg_clear(m);
        return -1;
    }
    qrec_fill(&m->sender);
    qrec_fill(&m->envid);
    qrec_fill(&m->client_addr);
    qrec_fill(&m->client_name);
    qrec_fill(&m->helo);
    qrec_fill(&m->protocol);
    qrec_fill(&m->auth_user);
    return 0;
}

/* qrec_msg_clear - free the strings of a decoded envelope. */
void
qrec_msg_clear(struct qrec_msg *m)
{
    free(m->sender);
    free(m->envid);
    free(m->client_addr);
    free(m->client_name);
    free(m->helo);
    free(m->protocol);
    free(m->auth_user);
    memset(m, 0, sizeof(*m));
}

/* qrec_rcpt_enc - append the encoded recipient. */
int
qrec_rcpt_enc(struct buf *out, const struct qrec_rcpt *r)
{
    size_t start = out->len;

    qrec_begin(out, QREC_MAGIC_RCPT, QREC_RCPT_FIXED);
    qrec_put_u32(out, r->state);
    qrec_put_u32(out, r->notify);
    qrec_put_u32(out, r->attempts);
    qrec_put_u64(out, r->next_attempt);
    qrec_put_u64(out, r->last_attempt);
    if (qrec_put_field(out, QREC_TR_ADDR, r->addr) == -1
        || qrec_put_field(out, QREC_TR_ORIG, r->orig) == -1
        || qrec_put_field(out, QREC_TR_ORCPT, r->orcpt) == -1
        || qrec_put_field(out, QREC_TR_DOMAIN, r->domain) == -1
        || qrec_put_field(out, QREC_TR_DSN, r->dsn) == -1
        || qrec_put_field(out, QREC_TR_TEXT, r->text) == -1
        || qrec_put_field(out, QREC_TR_RELAY, r->relay) == -1
        || out->len - start > QREC_MAX_RECORD) {
        buf_truncate(out, start);
        return -1;
    }
    return 0;
}

/* qrec_rcpt_dec - decode a recipient record; the state must be a known one. */
int
qrec_rcpt_dec(const void *data, size_t len, struct qrec_rcpt *r)
{
    struct qrec_cur fixed, tags;
    const uint8_t  *val;
    size_t          vlen;
    uint16_t        tag;
    int             rc;

    memset(r, 0, sizeof(*r));
    if (qrec_open(data, len, QREC_MAGIC_RCPT, QREC_RCPT_FIXED, &fixed, &tags) == -1)
        return -1;
    if (qrec_get_u32(&fixed, &r->state) == -1 || qrec_get_u32(&fixed, &r->notify) == -1
        || qrec_get_u32(&fixed, &r->attempts) == -1
        || qrec_get_u64(&fixed, &r->next_attempt) == -1
        || qrec_get_u64(&fixed, &r->last_attempt) == -1)
        return -1;
    if (r->state > QREC_STATE_MAX)
        return -1;
    while ((rc = qrec_next_tag(&tags, &tag, &val, &vlen)) == 1) {
        char **dst;

        switch (tag) {
        case QREC_TR_ADDR:   dst = &r->addr; break;
        case QREC_TR_ORIG:   dst = &r->orig; break;
        case QREC_TR_ORCPT:  dst = &r->orcpt; break;
        case QREC_TR_DOMAIN: dst = &r->domain; break;
        case QREC_TR_DSN:    dst = &r->dsn; break;
        case QREC_TR_TEXT:   dst = &r->text; break;
        case QREC_TR_RELAY:  dst = &r->relay; break;
        default:             continue;
        }
        if (qrec_take_str(dst, val, vlen) == -1) {
            rc = -1;
            break;
        }
    }
    if (rc == -1) {
        qrec_rcpt_clear(r);
        return -1;
    }
    qrec_fill(&r->addr);
    qrec_fill(&r->orig);
    qrec_fill(&r->orcpt);
    qrec_fill(&r->domain);
    qrec_fill(&r->dsn);
    qrec_fill(&r->text);
    qrec_fill(&r->relay);
    return 0;
}

/* qrec_rcpt_clear - free the strings of a decoded recipient. */
void
qrec_rcpt_clear(struct qrec_rcpt *r)
{
    free(r->addr);
    free(r->orig);
    free(r->orcpt);
    free(r->domain);
    free(r->dsn);
    free(r->text);
    free(r->relay);
    memset(r, 0, sizeof(*r));
}

/* qrec_state_name - the name of a recipient state, for logs and the CLI. */
const char *
qrec_state_name(uint32_t state)
{
    static const char *const names[] = { "queued", "active", "deferred", "sent", "failed" };

    return state <= QREC_STATE_MAX ? names[state] : "unknown";
}

/* qrec_state_final - 1 if nothing more will be done for a recipient in this state. */
int
qrec_state_final(uint32_t state)
{
    return state == QREC_SENT || state == QREC_FAILED;
}

/* qrec_put_qid - copy exactly QID_LEN bytes of qid (NUL-padded if shorter) to out. */
static void
qrec_put_qid(uint8_t *out, const char *qid)
{
    size_t n = strnlen(qid, QID_LEN);

    memcpy(out, qid, n);
    memset(out + n, 0, QID_LEN - n);
}

/* qrec_get_qid - copy a key's qid into a string; -1 if it is not a valid queue ID. */
static int
qrec_get_qid(const uint8_t *p, char qid[QID_SIZE])
{
    memcpy(qid, p, QID_LEN);
    qid[QID_LEN] = '\0';
    return qid_valid(qid) ? 0 : -1;
}

/* qrec_key_msg - the msg database key: the queue ID. */
size_t
qrec_key_msg(uint8_t out[QREC_KEY_MSG_LEN], const char *qid)
{
    qrec_put_qid(out, qid);
    return QREC_KEY_MSG_LEN;
}

/* qrec_key_rcpt - the rcpt database key: queue ID + index. */
size_t
qrec_key_rcpt(uint8_t out[QREC_KEY_RCPT_LEN], const char *qid, uint32_t index)
{
    qrec_put_qid(out, qid);
    qrec_wr32(out + QID_LEN, index);
    return QREC_KEY_RCPT_LEN;
}

/* qrec_key_rcpt_dec - split a rcpt key. */
int
qrec_key_rcpt_dec(const void *key, size_t len, char qid[QID_SIZE], uint32_t *index)
{
    const uint8_t *p = key;

    if (len != QREC_KEY_RCPT_LEN || qrec_get_qid(p, qid) == -1)
        return -1;
    *index = qrec_be32(p + QID_LEN);
    return 0;
}

/* qrec_key_retry - the retry index key: next attempt + queue ID + index. */
size_t
qrec_key_retry(uint8_t out[QREC_KEY_RETRY_LEN], uint64_t when, const char *qid,
               uint32_t index)
{
    qrec_wr64(out, when);
    qrec_put_qid(out + 8, qid);
    qrec_wr32(out + 8 + QID_LEN, index);
    return QREC_KEY_RETRY_LEN;
}

/* qrec_key_retry_dec - split a retry key. */
int
qrec_key_retry_dec(const void *key, size_t len, uint64_t *when, char qid[QID_SIZE],
                   uint32_t *index)
{
    const uint8_t *p = key;

    if (len != QREC_KEY_RETRY_LEN || qrec_get_qid(p + 8, qid) == -1)
        return -1;
    *when = qrec_be64(p);
    *index = qrec_be32(p + 8 + QID_LEN);
    return 0;
}

/* qrec_key_domain - the domain index key: domain + NUL + queue ID + index. */
size_t
qrec_key_domain(uint8_t out[QREC_KEY_DOMAIN_MAX], const char *domain, const char *qid,
                uint32_t index)
{
    size_t n = strnlen(domain, 255);

    memcpy(out, domain, n);
    out[n] = '\0';
    qrec_put_qid(out + n + 1, qid);
    qrec_wr32(out + n + 1 + QID_LEN, index);
    return n + 1 + QID_LEN + 4;
}

/* qrec_key_domain_dec - split a domain key; the domain is copied into domain (domlen). */
int
qrec_key_domain_dec(const void *key, size_t len, char *domain, size_t domlen,
                    char qid[QID_SIZE], uint32_t *index)
{
    const uint8_t *p = key;
    size_t         n;

    if (len < 1 + QID_LEN + 4 || len > QREC_KEY_DOMAIN_MAX)
        return -1;
    n = len - (1 + QID_LEN + 4);
    if (p[n] != '\0' || memchr(p, '\0', n) != NULL || n >= domlen)
        return -1;
    if (qrec_get_qid(p + n + 1, qid) == -1)
        return -1;
    memcpy(domain, p, n);
    domain[n] = '\0';
    *index = qrec_be32(p + n + 1 + QID_LEN);
    return 0;
}

/* qrec_domain_of - the lower-case domain of an address. */
void
qrec_domain_of(const char *addr, char *out, size_t outlen)
{
    const char *at = strrchr(addr, '@');
    size_t      i;

    if (outlen == 0)
        return;
    out[0] = '\0';
    if (at == NULL)
        return;
    for (i = 0, at++; at[i] != '\0' && i + 1 < outlen; i++)
        out[i] = (char)tolower((unsigned char)at[i]);
    out[i] = '\0';
}
