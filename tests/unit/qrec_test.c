/* qrec_test - the queue record codec: round trips, forward compatibility, hostile input.
 *
 * Every truncation of a valid record and many random mutations must decode to an error or
 * a well-formed record, never a crash (run under SAN=1 to prove the bounds). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "qid.h"
#include "qrec.h"
#include "test.h"

static const char *test_qid = "0123456789ABCDEF";

/* test_msg_sample - a filled-in envelope. */
static void
test_msg_sample(struct qrec_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->arrival = 1764300000;
    m->expiry = 1764300000 + 5 * 86400;
    m->size = 4096;
    m->flags = QREC_F_SMTPUTF8 | QREC_F_HOLD;
    m->ret = 2;
    m->nrcpt = 3;
    m->sender = (char *)"alice@a.example";
    m->envid = (char *)"ENV-1";
    m->client_addr = (char *)"192.0.2.1";
    m->client_name = (char *)"mx.a.example";
    m->helo = (char *)"mx.a.example";
    m->protocol = (char *)"ESMTPSA";
    m->auth_user = (char *)"alice";
}

/* test_rcpt_sample - a filled-in recipient. */
static void
test_rcpt_sample(struct qrec_rcpt *r)
{
    memset(r, 0, sizeof(*r));
    r->state = QREC_DEFERRED;
    r->notify = 0x6;
    r->attempts = 2;
    r->next_attempt = 0x1122334455667788ULL;
    r->last_attempt = 1764300100;
    r->addr = (char *)"bob@b.example";
    r->orig = (char *)"Bob@B.example";
    r->orcpt = (char *)"rfc822;Bob@B.example";
    r->domain = (char *)"b.example";
    r->dsn = (char *)"4.2.2";
    r->text = (char *)"mailbox full";
    r->relay = (char *)"mx.b.example[192.0.2.1]:25";
}

/* test_qrec_msg_roundtrip - every envelope field survives encode + decode. */
static void
test_qrec_msg_roundtrip(void)
{
    struct qrec_msg in, out;
    struct buf     *b = buf_new(64);

    test_msg_sample(&in);
    CHECK(qrec_msg_enc(b, &in) == 0);
    CHECK(qrec_msg_dec(b->data, b->len, &out) == 0);
    CHECK(out.arrival == in.arrival && out.expiry == in.expiry && out.size == in.size);
    CHECK(out.flags == in.flags && out.ret == in.ret && out.nrcpt == in.nrcpt);
    CHECK_STR(out.sender, in.sender);
    CHECK_STR(out.envid, in.envid);
    CHECK_STR(out.client_addr, in.client_addr);
    CHECK_STR(out.client_name, in.client_name);
    CHECK_STR(out.helo, in.helo);
    CHECK_STR(out.protocol, in.protocol);
    CHECK_STR(out.auth_user, in.auth_user);
    qrec_msg_clear(&out);
    CHECK(out.sender == NULL);
    buf_free(&b);
}

/* test_qrec_msg_empty_strings - NULL and "" encode to nothing and decode as "". */
static void
test_qrec_msg_empty_strings(void)
{
    struct qrec_msg in, out;
    struct buf     *b = buf_new(64);

    memset(&in, 0, sizeof(in));
    in.sender = (char *)"";
    CHECK(qrec_msg_enc(b, &in) == 0);
    CHECK(b->len == 6 + 36);
    CHECK(qrec_msg_dec(b->data, b->len, &out) == 0);
    CHECK_STR(out.sender, "");
    CHECK_STR(out.auth_user, "");
    qrec_msg_clear(&out);
    buf_free(&b);
}

/* test_qrec_rcpt_roundtrip - every recipient field survives encode + decode. */
static void
test_qrec_rcpt_roundtrip(void)
{
    struct qrec_rcpt in, out;
    struct buf      *b = buf_new(64);

    test_rcpt_sample(&in);
    CHECK(qrec_rcpt_enc(b, &in) == 0);
    CHECK(qrec_rcpt_dec(b->data, b->len, &out) == 0);
    CHECK(out.state == in.state && out.notify == in.notify && out.attempts == in.attempts);
    CHECK(out.next_attempt == in.next_attempt && out.last_attempt == in.last_attempt);
    CHECK_STR(out.addr, in.addr);
    CHECK_STR(out.orig, in.orig);
    CHECK_STR(out.orcpt, in.orcpt);
    CHECK_STR(out.domain, in.domain);
    CHECK_STR(out.dsn, in.dsn);
    CHECK_STR(out.text, in.text);
    CHECK_STR(out.relay, in.relay);
    qrec_rcpt_clear(&out);
    buf_free(&b);
}

/* test_qrec_rcpt_v10_record - a recipient record written before the relay tag existed
 * (hand-built bytes of version 1.0) still decodes, with relay "". */
static void
test_qrec_rcpt_v10_record(void)
{
    static const uint8_t old[] = {
        0xE6, 1, 0, 34, 0, 0,                   /* magic, major, hdr_len 6+28, flags */
        0, 0, 0, 2,  0, 0, 0, 0,  0, 0, 0, 1,   /* state deferred, notify 0, attempts 1 */
        0, 0, 0, 0, 0x69, 0x29, 0x00, 0x00,     /* next_attempt */
        0, 0, 0, 0, 0x69, 0x28, 0xff, 0x00,     /* last_attempt */
        0, 1, 0, 0, 0, 5, 'a', '@', 'b', '.', 'c',          /* addr */
        0, 6, 0, 0, 0, 4, 'b', 'u', 's', 'y',               /* text */
    };
    struct qrec_rcpt r;
    struct buf      *b = buf_new(64);

    CHECK(qrec_rcpt_dec(old, sizeof(old), &r) == 0);
    CHECK(r.state == QREC_DEFERRED && r.attempts == 1);
    CHECK_STR(r.addr, "a@b.c");
    CHECK_STR(r.text, "busy");
    CHECK_STR(r.relay, "");
    /* Written again without a relay, it has no relay tag: an old reader sees no change. */
    CHECK(qrec_rcpt_enc(b, &r) == 0);
    CHECK(b->len == sizeof(old));
    qrec_rcpt_clear(&r);
    buf_free(&b);
}

/* test_qrec_warned_flag - QREC_F_WARNED is an envelope flag bit like the others. */
static void
test_qrec_warned_flag(void)
{
    struct qrec_msg in, out;
    struct buf     *b = buf_new(64);

    test_msg_sample(&in);
    in.flags = QREC_F_BOUNCE | QREC_F_WARNED;
    CHECK(qrec_msg_enc(b, &in) == 0);
    CHECK(qrec_msg_dec(b->data, b->len, &out) == 0);
    CHECK(out.flags == (QREC_F_BOUNCE | QREC_F_WARNED));
    CHECK((QREC_F_WARNED & (QREC_F_HOLD | QREC_F_BOUNCE | 0xffu)) == 0);
    qrec_msg_clear(&out);
    buf_free(&b);
}

/* test_qrec_kind_checked - an envelope is not a recipient and vice versa. */
static void
test_qrec_kind_checked(void)
{
    struct qrec_msg  m, mo;
    struct qrec_rcpt r, ro;
    struct buf      *b = buf_new(64);

    test_msg_sample(&m);
    qrec_msg_enc(b, &m);
    CHECK(qrec_rcpt_dec(b->data, b->len, &ro) == -1);
    buf_reset(b);
    test_rcpt_sample(&r);
    qrec_rcpt_enc(b, &r);
    CHECK(qrec_msg_dec(b->data, b->len, &mo) == -1);
    buf_free(&b);
}

/* test_qrec_unknown_tags_skipped - a newer writer's tags and longer fixed part are read. */
static void
test_qrec_unknown_tags_skipped(void)
{
    struct qrec_rcpt in, out;
    struct buf      *b = buf_new(64), *nb = buf_new(64);
    uint8_t          extra_fixed[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    uint8_t          unknown[] = { 0x7f, 0x01, 0, 0, 0, 3, 'x', 'y', 'z' };
    uint8_t          empty_unknown[] = { 0x00, 0x63, 0, 0, 0, 0 };
    size_t           hdr;

    test_rcpt_sample(&in);
    qrec_rcpt_enc(b, &in);
    hdr = ((size_t)(uint8_t)b->data[2] << 8) | (uint8_t)b->data[3];
    /* Rebuild as a "minor version 2" record: 8 more fixed bytes, two unknown tags. */
    buf_append(nb, b->data, hdr);
    buf_append(nb, extra_fixed, sizeof(extra_fixed));
    nb->data[2] = (char)((hdr + 8) >> 8);
    nb->data[3] = (char)(hdr + 8);
    buf_append(nb, unknown, sizeof(unknown));
    buf_append(nb, b->data + hdr, b->len - hdr);
    buf_append(nb, empty_unknown, sizeof(empty_unknown));
    nb->data[5] = 0x40;     /* an unknown record flag */
    CHECK(qrec_rcpt_dec(nb->data, nb->len, &out) == 0);
    CHECK(out.next_attempt == in.next_attempt);
    CHECK_STR(out.addr, in.addr);
    CHECK_STR(out.text, in.text);
    qrec_rcpt_clear(&out);
    buf_free(&b);
    buf_free(&nb);
}

/* test_qrec_truncated_rejected - every proper prefix of a record fails, except those that
 * end exactly between two tagged fields (which are valid records with fewer fields). */
static void
test_qrec_truncated_rejected(void)
{
    struct qrec_msg  m, mo;
    struct qrec_rcpt r, ro;
    struct buf      *b = buf_new(64);
    size_t           n, ok = 0;

    test_msg_sample(&m);
    qrec_msg_enc(b, &m);
    for (n = 0; n < b->len; n++) {
        char *copy = malloc(n ? n : 1);

        memcpy(copy, b->data, n);     /* exact-size heap copy: overruns show under ASan */
        if (qrec_msg_dec(copy, n, &mo) == 0) {
            ok++;
            qrec_msg_clear(&mo);
        }
        free(copy);
    }
    CHECK(ok == 7);     /* header only, then after each of the first six fields */
    CHECK(qrec_msg_dec(NULL, 0, &mo) == -1);
    buf_reset(b);
    test_rcpt_sample(&r);
    qrec_rcpt_enc(b, &r);
    for (n = 0, ok = 0; n < b->len; n++) {
        char *copy = malloc(n ? n : 1);

        memcpy(copy, b->data, n);
        if (qrec_rcpt_dec(copy, n, &ro) == 0) {
            ok++;
            qrec_rcpt_clear(&ro);
        }
        free(copy);
    }
    CHECK(ok == 7);     /* header only, then after each of the first six of seven fields */
    buf_free(&b);
}

/* test_qrec_bad_headers_rejected - wrong magic, major version, header lengths. */
static void
test_qrec_bad_headers_rejected(void)
{
    struct qrec_msg m, mo;
    struct buf     *b = buf_new(64);
    char           *copy;

    test_msg_sample(&m);
    qrec_msg_enc(b, &m);
    copy = malloc(b->len);

    memcpy(copy, b->data, b->len);
    copy[0] = 0x00;
    CHECK(qrec_msg_dec(copy, b->len, &mo) == -1);
    memcpy(copy, b->data, b->len);
    copy[1] = 2;                        /* a future major version */
    CHECK(qrec_msg_dec(copy, b->len, &mo) == -1);
    memcpy(copy, b->data, b->len);
    copy[2] = 0; copy[3] = 10;          /* header shorter than the fixed fields */
    CHECK(qrec_msg_dec(copy, b->len, &mo) == -1);
    memcpy(copy, b->data, b->len);
    copy[2] = (char)0xff; copy[3] = (char)0xff;     /* header past the end */
    CHECK(qrec_msg_dec(copy, b->len, &mo) == -1);
    free(copy);
    buf_free(&b);
}

/* test_qrec_bad_fields_rejected - oversized lengths, NUL in strings, duplicate tags. */
static void
test_qrec_bad_fields_rejected(void)
{
    struct qrec_rcpt r, ro;
    struct buf      *b = buf_new(64), *nb = buf_new(64);
    uint8_t          huge[] = { 0, 1, 0xff, 0xff, 0xff, 0xf0, 'a' };
    uint8_t          nul[] = { 0, 1, 0, 0, 0, 3, 'a', 0, 'b' };
    uint8_t          dup[] = { 0, 5, 0, 0, 0, 1, '5' };   /* DSN again */
    uint8_t          half[] = { 0, 9, 0, 0 };               /* tag header cut short */

    memset(&r, 0, sizeof(r));
    r.addr = (char *)"x@y";
    r.dsn = (char *)"5.0.0";
    qrec_rcpt_enc(b, &r);

    buf_reset(nb);
    buf_append(nb, b->data, b->len);
    buf_append(nb, huge, sizeof(huge));
    CHECK(qrec_rcpt_dec(nb->data, nb->len, &ro) == -1);

    buf_reset(nb);
    buf_append(nb, b->data, 6 + 28);
    buf_append(nb, nul, sizeof(nul));
    CHECK(qrec_rcpt_dec(nb->data, nb->len, &ro) == -1);

    buf_reset(nb);
    buf_append(nb, b->data, b->len);
    buf_append(nb, dup, sizeof(dup));
    CHECK(qrec_rcpt_dec(nb->data, nb->len, &ro) == -1);
    CHECK(ro.addr == NULL);             /* cleared on failure */

    buf_reset(nb);
    buf_append(nb, b->data, b->len);
    buf_append(nb, half, sizeof(half));
    CHECK(qrec_rcpt_dec(nb->data, nb->len, &ro) == -1);

    buf_reset(nb);
    buf_append(nb, b->data, b->len);
    nb->data[6 + 3] = 9;                /* state 9 is not a state */
    CHECK(qrec_rcpt_dec(nb->data, nb->len, &ro) == -1);
    buf_free(&b);
    buf_free(&nb);
}

/* test_qrec_oversized_field_refused - the encoder refuses a field over QREC_MAX_FIELD and
 * leaves the buffer as it was. */
static void
test_qrec_oversized_field_refused(void)
{
    struct qrec_rcpt r;
    struct buf      *b = buf_new(64);
    char            *big = malloc(QREC_MAX_FIELD + 2);

    memset(big, 'a', QREC_MAX_FIELD + 1);
    big[QREC_MAX_FIELD + 1] = '\0';
    memset(&r, 0, sizeof(r));
    r.addr = big;
    buf_append(b, "xy", 2);
    CHECK(qrec_rcpt_enc(b, &r) == -1);
    CHECK(b->len == 2);
    free(big);
    buf_free(&b);
}

/* test_qrec_garbage_survived - random mutations of valid records never crash. */
static void
test_qrec_garbage_survived(void)
{
    struct qrec_msg  m, mo;
    struct qrec_rcpt r, ro;
    struct buf      *bm = buf_new(64), *br = buf_new(64);
    unsigned         seed = 12345, i, j;
    int              ok = 0;

    test_msg_sample(&m);
    qrec_msg_enc(bm, &m);
    test_rcpt_sample(&r);
    qrec_rcpt_enc(br, &r);
    for (i = 0; i < 20000; i++) {
        struct buf *src = (i & 1) ? br : bm;
        size_t      len = src->len;
        uint8_t    *copy = malloc(len);

        memcpy(copy, src->data, len);
        for (j = 0; j < 1 + i % 4; j++) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 8) % len] = (uint8_t)(seed >> 20);
        }
        seed = seed * 1103515245u + 12345u;
        len -= (seed >> 8) % 4;
        if (qrec_msg_dec(copy, len, &mo) == 0) {
            ok++;
            qrec_msg_clear(&mo);
        }
        if (qrec_rcpt_dec(copy, len, &ro) == 0) {
            ok++;
            qrec_rcpt_clear(&ro);
        }
        free(copy);
    }
    CHECK(ok > 0);      /* some mutations only touch values: still valid */
    buf_free(&bm);
    buf_free(&br);
}

/* test_qrec_keys - keys round-trip and sort in the order the scheduler needs. */
static void
test_qrec_keys(void)
{
    uint8_t  k1[QREC_KEY_RETRY_LEN], k2[QREC_KEY_RETRY_LEN];
    uint8_t  r1[QREC_KEY_RCPT_LEN], r2[QREC_KEY_RCPT_LEN];
    uint8_t  d[QREC_KEY_DOMAIN_MAX], mk[QREC_KEY_MSG_LEN];
    char     qid[QID_SIZE], dom[256];
    uint64_t when;
    uint32_t idx;
    size_t   n;

    CHECK(qrec_key_msg(mk, test_qid) == QID_LEN);
    CHECK(memcmp(mk, test_qid, QID_LEN) == 0);

    qrec_key_rcpt(r1, test_qid, 255);
    qrec_key_rcpt(r2, test_qid, 256);
    CHECK(memcmp(r1, r2, sizeof(r1)) < 0);
    CHECK(qrec_key_rcpt_dec(r2, sizeof(r2), qid, &idx) == 0);
    CHECK_STR(qid, test_qid);
    CHECK(idx == 256);
    CHECK(qrec_key_rcpt_dec(r2, sizeof(r2) - 1, qid, &idx) == -1);

    qrec_key_retry(k1, 0xff, "ZZZZZZZZZZZZZZZZ", 9);
    qrec_key_retry(k2, 0x100, test_qid, 0);
    CHECK(memcmp(k1, k2, sizeof(k1)) < 0);       /* time first, big-endian */
    CHECK(qrec_key_retry_dec(k2, sizeof(k2), &when, qid, &idx) == 0);
    CHECK(when == 0x100 && idx == 0);
    CHECK_STR(qid, test_qid);
    k2[8] = '!';                                   /* not a queue ID character */
    CHECK(qrec_key_retry_dec(k2, sizeof(k2), &when, qid, &idx) == -1);

    n = qrec_key_domain(d, "b.example", test_qid, 7);
    CHECK(n == 9 + 1 + QID_LEN + 4);
    CHECK(qrec_key_domain_dec(d, n, dom, sizeof(dom), qid, &idx) == 0);
    CHECK_STR(dom, "b.example");
    CHECK_STR(qid, test_qid);
    CHECK(idx == 7);
    CHECK(qrec_key_domain_dec(d, n, dom, 4, qid, &idx) == -1);    /* domain too long */
    CHECK(qrec_key_domain_dec(d, 10, dom, sizeof(dom), qid, &idx) == -1);
    d[2] = '\0';                                   /* NUL inside the domain */
    CHECK(qrec_key_domain_dec(d, n, dom, sizeof(dom), qid, &idx) == -1);
}

/* test_qrec_domain_of - the domain part, lower-cased. */
static void
test_qrec_domain_of(void)
{
    char d[16];

    qrec_domain_of("Bob@B.Example", d, sizeof(d));
    CHECK_STR(d, "b.example");
    qrec_domain_of("\"a@b\"@C.org", d, sizeof(d));
    CHECK_STR(d, "c.org");
    qrec_domain_of("postmaster", d, sizeof(d));
    CHECK_STR(d, "");
    qrec_domain_of("x@very-long-domain.example", d, sizeof(d));
    CHECK(strlen(d) == sizeof(d) - 1);
}

/* test_qrec_states - names and finality. */
static void
test_qrec_states(void)
{
    CHECK_STR(qrec_state_name(QREC_DEFERRED), "deferred");
    CHECK_STR(qrec_state_name(77), "unknown");
    CHECK(qrec_state_final(QREC_SENT) && qrec_state_final(QREC_FAILED));
    CHECK(!qrec_state_final(QREC_ACTIVE) && !qrec_state_final(QREC_QUEUED));
}

int
main(void)
{
    TEST_RUN(test_qrec_msg_roundtrip);
    TEST_RUN(test_qrec_msg_empty_strings);
    TEST_RUN(test_qrec_rcpt_roundtrip);
    TEST_RUN(test_qrec_rcpt_v10_record);
    TEST_RUN(test_qrec_warned_flag);
    TEST_RUN(test_qrec_kind_checked);
    TEST_RUN(test_qrec_unknown_tags_skipped);
    TEST_RUN(test_qrec_truncated_rejected);
    TEST_RUN(test_qrec_bad_headers_rejected);
    TEST_RUN(test_qrec_bad_fields_rejected);
    TEST_RUN(test_qrec_oversized_field_refused);
    TEST_RUN(test_qrec_garbage_survived);
    TEST_RUN(test_qrec_keys);
    TEST_RUN(test_qrec_domain_of);
    TEST_RUN(test_qrec_states);
    TEST_END();
}
