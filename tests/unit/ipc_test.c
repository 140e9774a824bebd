/* ipc_test - IPC frames and messages: encoders, bounds-checked decoders, sockets, ipc_conn.
 *
 * Message round trips are generated from IPC_MESSAGES/IPC_FIELDS_* so that a message added to
 * ipc_msg.h is covered without touching this file. Adversarial payloads are built byte by byte
 * with raw_*() below, independently of the encoder, from the wire format in ipc.h:
 * u32/u64 big-endian; STR = u32 length, the bytes, a NUL; STRV = u32 count, that many STR;
 * U32V = u32 count, that many u32. Truncated payloads are copied into exactly-sized heap blocks
 * so that an over-read shows up under SAN=1. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "ev.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "test.h"

/* ---- raw wire builders, independent of the code under test ---- */

static void
raw_u32(struct buf *b, uint32_t v)
{
    unsigned char p[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 8), (unsigned char)v };

    buf_append(b, p, 4);
}

static void
raw_u64(struct buf *b, uint64_t v)
{
    raw_u32(b, (uint32_t)(v >> 32));
    raw_u32(b, (uint32_t)v);
}

/* raw_str - a well-formed STR. */
static void
raw_str(struct buf *b, const char *s)
{
    raw_u32(b, (uint32_t)strlen(s));
    buf_append(b, s, strlen(s) + 1);
}

/* raw_bytes - len bytes of s, as given. */
static void
raw_bytes(struct buf *b, const void *s, size_t len)
{
    buf_append(b, s, len);
}

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* frame_over - a frame over len bytes of b, copied to an exactly-sized block (*copy). */
static struct ipc_frame
frame_over(uint32_t type, const struct buf *b, size_t len, uint8_t **copy)
{
    struct ipc_frame f;

    *copy = xmalloc(len ? len : 1);
    memcpy(*copy, b->data, len);
    memset(&f, 0, sizeof(f));
    f.type = type;
    f.reqid = 0;
    f.payload = *copy;
    f.len = (uint32_t)len;
    f.fd = -1;
    return f;
}

/* ---- per-message helpers generated from ipc_msg.h ---- */

static const char *sample_strv[] = { "alice@example.org", "", "bob@b.example" };
static const uint32_t sample_u32v[] = { 1, 0, 0xffffffffu };
static const uint8_t sample_bytes[] = { 0, 1, 2, 0, 0xff, 0x80, 'k', 0 };
static uint32_t sample_seed;

#define FILL_U32(n)   m->n = 0xa1b2c300u + ++sample_seed;
#define FILL_U64(n)   m->n = 0x0102030405060708ull * ++sample_seed;
#define FILL_STR(n)   m->n = #n "=v\xc3\xa9 x";
#define FILL_STRV(n)  m->n = sample_strv; m->n##_n = 3;
#define FILL_U32V(n)  m->n = sample_u32v; m->n##_n = 3;
#define FILL_BYTES(n) m->n = sample_bytes; m->n##_len = sizeof(sample_bytes);
#define FILL_FIELD(kind, n) FILL_##kind(n)

#define SAME_U32(n)   CHECK(a->n == b->n);
#define SAME_U64(n)   CHECK(a->n == b->n);
#define SAME_STR(n)   CHECK_STR(a->n ? a->n : "", b->n);
#define SAME_STRV(n)                                                                      \
    CHECK(a->n##_n == b->n##_n);                                                          \
    if (a->n##_n == b->n##_n)                                                             \
        for (uint32_t i_ = 0; i_ < a->n##_n; i_++)                                        \
            CHECK_STR(a->n[i_], b->n[i_]);
#define SAME_U32V(n)                                                                      \
    CHECK(a->n##_n == b->n##_n);                                                          \
    if (a->n##_n == b->n##_n)                                                             \
        for (uint32_t i_ = 0; i_ < a->n##_n; i_++)                                        \
            CHECK(a->n[i_] == b->n[i_]);
#define SAME_BYTES(n)                                                                     \
    CHECK(a->n##_len == b->n##_len);                                                      \
    if (a->n##_len == b->n##_len && a->n##_len > 0)                                       \
        CHECK(b->n != NULL && memcmp(a->n, b->n, a->n##_len) == 0);
#define SAME_FIELD(kind, n) SAME_##kind(n)

#define MSG_HELPERS(sym, num, name)                                                       \
    static void                                                                           \
    fill_##name(void *vm, int empty)                                                      \
    {                                                                                     \
        struct ipc_##name *m = vm;                                                        \
        memset(m, 0, sizeof(*m));                                                         \
        if (empty)                                                                        \
            return;                                                                       \
        IPC_FIELDS_##name(FILL_FIELD)                                                     \
    }                                                                                     \
    static int                                                                            \
    same_##name(const void *va, const void *vb)                                           \
    {                                                                                     \
        const struct ipc_##name *a = va, *b = vb;                                         \
        int before = test_failed_checks;                                                  \
        IPC_FIELDS_##name(SAME_FIELD)                                                     \
        return test_failed_checks == before;                                              \
    }                                                                                     \
    static int                                                                            \
    enc_##name(struct buf *b, const void *m)                                              \
    {                                                                                     \
        return ipc_##name##_enc(b, m);                                                    \
    }                                                                                     \
    static int                                                                            \
    dec_##name(const struct ipc_frame *f, void *m)                                        \
    {                                                                                     \
        return ipc_##name##_dec(f, m);                                                    \
    }                                                                                     \
    static void                                                                           \
    clear_##name(void *m)                                                                 \
    {                                                                                     \
        ipc_##name##_clear(m);                                                            \
    }
IPC_MESSAGES(MSG_HELPERS)

union any_msg {
#define MSG_MEMBER(sym, num, name) struct ipc_##name name;
    IPC_MESSAGES(MSG_MEMBER)
#undef MSG_MEMBER
};

static const struct msg_case {
    const char *name;
    uint32_t    type;
    void      (*fill)(void *, int empty);
    int       (*same)(const void *, const void *);
    int       (*enc)(struct buf *, const void *);
    int       (*dec)(const struct ipc_frame *, void *);
    void      (*clear)(void *);
} msg_cases[] = {
#define MSG_CASE(sym, num, name)                                                          \
    { #name, sym, fill_##name, same_##name, enc_##name, dec_##name, clear_##name },
    IPC_MESSAGES(MSG_CASE)
#undef MSG_CASE
};
#define NMSG (sizeof(msg_cases) / sizeof(msg_cases[0]))

/* test_ipc_msg_roundtrip - every message, filled and all-empty, decodes to what was encoded. */
static void
test_ipc_msg_roundtrip(void)
{
    for (size_t i = 0; i < NMSG; i++) {
        const struct msg_case *c = &msg_cases[i];

        for (int empty = 0; empty <= 1; empty++) {
            union any_msg in, out;
            struct buf *b = buf_new(0);
            struct ipc_frame f;
            uint8_t *copy;

            c->fill(&in, empty);
            CHECK(c->enc(b, &in) == 0);
            f = frame_over(c->type, b, b->len, &copy);
            memset(&out, 0xa5, sizeof(out));
            CHECK(c->dec(&f, &out) == 0);
            if (!c->same(&in, &out))
                fprintf(stderr, "  (message %s, empty=%d)\n", c->name, empty);
            c->clear(&out);
            free(copy);
            buf_free(&b);
        }
        CHECK_STR(ipc_type_name(c->type), c->name);
    }
    CHECK_STR(ipc_type_name(0), "unknown");
    CHECK_STR(ipc_type_name(9999), "unknown");
    CHECK_STR(ipc_type_name(0xffffffffu), "unknown");
}

/* test_ipc_msg_type_numbers - the wire numbers are fixed: changing one needs IPC_VERSION++. */
static void
test_ipc_msg_type_numbers(void)
{
    CHECK(IPC_VERSION == 6);
    CHECK(IPC_MASTER_PEER == 1 && IPC_MASTER_HELLO == 2 && IPC_MASTER_TLS_KEYS == 3);
    CHECK(IPC_MASTER_CAPS == 4);
    CHECK(IPC_CTL_REQUEST == 30 && IPC_CTL_HANDOFF == 31 && IPC_CTL_MSG == 32);
    CHECK(IPC_CTL_RESULT == 33 && IPC_CTL_DONE == 34 && IPC_CTL_STATS == 35);
    CHECK(IPC_CTL_COUNTERS_REQ == 36 && IPC_CTL_COUNTERS == 37);
    CHECK(IPC_CTL_LOG_LEVEL == 38 && IPC_CTL_PAUSE == 39);
    CHECK(IPC_CTL_LIST == 1 && IPC_CTL_SHOW == 2 && IPC_CTL_HOLD == 3 && IPC_CTL_RELEASE == 4);
    CHECK(IPC_CTL_DELETE == 5 && IPC_CTL_RETRY == 6 && IPC_CTL_EXPIRE == 7);
    CHECK(IPC_CTL_PAUSE_DELIVERY == 8 && IPC_CTL_RESUME_DELIVERY == 9);
    CHECK(IPC_CTL_STATS_CMD == 20 && IPC_CTL_LOG_LEVEL_CMD == 21);
    CHECK(IPC_CTL_PAUSE_SMTPD == 22 && IPC_CTL_RESUME_SMTPD == 23);
    CHECK(IPC_MSG_OPEN == 10 && IPC_MSG_OPENED == 11 && IPC_MSG_COMMIT == 12);
    CHECK(IPC_MSG_ABORT == 13 && IPC_MSG_QUEUED == 14);
    CHECK(IPC_DELIVER == 20 && IPC_DELIVERED == 21);
    CHECK(IPC_RELAY == 22 && IPC_RELAYED == 23);
    CHECK(IPC_ANVIL_REQ == 40 && IPC_ANVIL_REPLY == 41);
    CHECK(NMSG == 25);
}

/* test_ipc_msg_golden - encoders produce exactly the documented bytes. */
static void
test_ipc_msg_golden(void)
{
    struct buf *got = buf_new(0), *want = buf_new(0);
    const char *rcpts[] = { "a@x.example", "b@y.example" };
    const char *orcpts[] = { "rfc822;a@x.example", "" };
    const uint32_t notify[] = { 0, 6 };
    struct ipc_msg_opened opened = { .status = 5, .qid = "ABC" };
    struct ipc_master_hello hello = { .version = 1, .kind = IPC_PEER_SMTPD, .pid = 0x01020304 };
    struct ipc_master_tls_keys keys = { .keys = (const uint8_t *)"a\0b", .keys_len = 3 };
    struct ipc_msg_commit commit = {
        .qid = "Q1", .size = 0x0000000100000002ull, .flags = IPC_F_8BITMIME,
        .sender = "", .client_addr = "192.0.2.1", .client_name = NULL, .helo = "h",
        .protocol = "ESMTP", .auth_user = "", .envid = "", .ret = 2,
        .rcpts = rcpts, .rcpts_n = 2, .orcpts = orcpts, .orcpts_n = 2,
        .notify = notify, .notify_n = 2,
    };

    CHECK(ipc_msg_opened_enc(got, &opened) == 0);
    raw_bytes(want, "\0\0\0\5" "\0\0\0\3" "ABC\0", 12);
    CHECK(got->len == want->len && memcmp(got->data, want->data, want->len) == 0);

    buf_reset(got);
    buf_reset(want);
    CHECK(ipc_master_hello_enc(got, &hello) == 0);
    raw_bytes(want, "\0\0\0\1" "\0\0\0\2" "\1\2\3\4", 12);
    CHECK(got->len == want->len && memcmp(got->data, want->data, want->len) == 0);

    buf_reset(got);
    buf_reset(want);
    CHECK(ipc_master_tls_keys_enc(got, &keys) == 0);
    raw_bytes(want, "\0\0\0\3" "a\0b", 7);        /* BYTES: u32 length, the bytes, no NUL */
    CHECK(got->len == want->len && memcmp(got->data, want->data, want->len) == 0);

    buf_reset(got);
    buf_reset(want);
    CHECK(ipc_msg_commit_enc(got, &commit) == 0);
    raw_str(want, "Q1");
    raw_u64(want, 0x0000000100000002ull);
    raw_u32(want, IPC_F_8BITMIME);
    raw_str(want, "");
    raw_str(want, "192.0.2.1");
    raw_str(want, "");              /* NULL is sent as "" */
    raw_str(want, "h");
    raw_str(want, "ESMTP");
    raw_str(want, "");
    raw_str(want, "");
    raw_u32(want, 2);
    raw_u32(want, 2);
    raw_str(want, "a@x.example");
    raw_str(want, "b@y.example");
    raw_u32(want, 2);
    raw_str(want, "rfc822;a@x.example");
    raw_str(want, "");
    raw_u32(want, 2);
    raw_u32(want, 0);
    raw_u32(want, 6);
    CHECK(got->len == want->len);
    CHECK(got->len == want->len && memcmp(got->data, want->data, want->len) == 0);
    buf_free(&got);
    buf_free(&want);
}

/* test_ipc_put_layout - the field encoders, byte by byte. */
static void
test_ipc_put_layout(void)
{
    static const char *v2[] = { "a", "" };
    static const uint32_t u2[] = { 0x01020304, 0xfffffffe };
    static const struct {
        int         what;
        const char *want;
        size_t      len;
    } cases[] = {
        { 0, "\x01\x02\x03\x04", 4 },
        { 1, "\x01\x02\x03\x04\x05\x06\x07\x08", 8 },
        { 2, "\0\0\0\2ab\0", 7 },
        { 3, "\0\0\0\0\0", 5 },                         /* NULL -> "" */
        { 4, "\0\0\0\2" "\0\0\0\1a\0" "\0\0\0\0\0", 15 },
        { 5, "\0\0\0\0", 4 },
        { 6, "\0\0\0\2\x01\x02\x03\x04\xff\xff\xff\xfe", 12 },
        { 7, "\0\0\0\0", 4 },
        { 8, "\0\0\0\0\0", 5 },
        { 9, "\0\0\0\3a\0b", 7 },
        { 10, "\0\0\0\0", 4 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf *b = buf_new(0);

        switch (cases[i].what) {
        case 0: ipc_put_u32(b, 0x01020304); break;
        case 1: ipc_put_u64(b, 0x0102030405060708ull); break;
        case 2: ipc_put_str(b, "ab"); break;
        case 3: ipc_put_str(b, NULL); break;
        case 4: ipc_put_strv(b, (char *const *)v2, 2); break;
        case 5: ipc_put_strv(b, NULL, 0); break;
        case 6: ipc_put_u32v(b, u2, 2); break;
        case 7: ipc_put_u32v(b, NULL, 0); break;
        case 8: ipc_put_str(b, ""); break;
        case 9: ipc_put_bytes(b, "a\0b", 3); break;
        case 10: ipc_put_bytes(b, NULL, 0); break;
        }
        CHECK(b->len == cases[i].len);
        if (b->len != cases[i].len || memcmp(b->data, cases[i].want, cases[i].len) != 0) {
            fprintf(stderr, "  put case %zu differs\n", i);
            CHECK(0);
        }
        buf_free(&b);
    }
}

/* test_ipc_cur_getters - getters decode big-endian fields and end exactly. */
static void
test_ipc_cur_getters(void)
{
    struct buf *b = buf_new(0);
    struct ipc_frame f;
    struct ipc_cur cur;
    uint8_t *copy;
    uint32_t u32, n;
    uint64_t u64;
    const char *s;
    const char **sv;
    const uint32_t *uv;

    raw_u32(b, 0x01020304);
    raw_u64(b, 0xfffefdfcfbfaf9f8ull);
    raw_str(b, "hello");
    raw_str(b, "");
    raw_u32(b, 2);
    raw_str(b, "x");
    raw_str(b, "yz");
    raw_u32(b, 3);
    raw_u32(b, 7);
    raw_u32(b, 0);
    raw_u32(b, 0x80000000u);
    raw_u32(b, 0);                  /* empty STRV */
    f = frame_over(1, b, b->len, &copy);
    ipc_cur_init(&cur, &f);
    CHECK(ipc_get_u32(&cur, &u32) == 0 && u32 == 0x01020304);
    CHECK(ipc_get_u64(&cur, &u64) == 0 && u64 == 0xfffefdfcfbfaf9f8ull);
    CHECK(ipc_get_str(&cur, &s) == 0);
    CHECK_STR(s, "hello");
    CHECK(ipc_get_str(&cur, &s) == 0);
    CHECK_STR(s, "");
    sv = NULL;
    CHECK(ipc_get_strv(&cur, &sv, &n) == 0 && n == 2);
    if (sv != NULL && n == 2) {
        CHECK_STR(sv[0], "x");
        CHECK_STR(sv[1], "yz");
    }
    free(sv);
    uv = NULL;
    CHECK(ipc_get_u32v(&cur, &uv, &n) == 0 && n == 3);
    if (uv != NULL && n == 3)
        CHECK(uv[0] == 7 && uv[1] == 0 && uv[2] == 0x80000000u);
    free((void *)uv);
    sv = NULL;
    CHECK(ipc_get_strv(&cur, &sv, &n) == 0 && n == 0);
    free(sv);
    CHECK(ipc_cur_end(&cur) == 0);
    CHECK(cur.failed == 0);
    free(copy);
    buf_free(&b);
}

/* test_ipc_cur_failed_sticky - after one failure every getter fails, even with bytes left. */
static void
test_ipc_cur_failed_sticky(void)
{
    struct buf *b = buf_new(0);
    struct ipc_frame f;
    struct ipc_cur cur;
    uint8_t *copy;
    uint32_t u32;
    uint64_t u64;
    const char *s;

    raw_u32(b, 0x11223344);          /* 4 bytes: enough for a u32, not for a u64 */
    f = frame_over(1, b, b->len, &copy);
    ipc_cur_init(&cur, &f);
    CHECK(ipc_get_u64(&cur, &u64) == -1);
    CHECK(cur.failed != 0);
    CHECK(ipc_get_u32(&cur, &u32) == -1);
    CHECK(ipc_get_str(&cur, &s) == -1);
    CHECK(ipc_cur_end(&cur) == -1);
    free(copy);

    /* A bad string then a good u32: the u32 must not be read from the wrong offset. */
    buf_reset(b);
    raw_u32(b, 1);
    raw_bytes(b, "ab", 2);           /* "a" and 'b' where the NUL should be */
    raw_u32(b, 9);
    f = frame_over(1, b, b->len, &copy);
    ipc_cur_init(&cur, &f);
    CHECK(ipc_get_str(&cur, &s) == -1);
    CHECK(ipc_get_u32(&cur, &u32) == -1);
    CHECK(ipc_cur_end(&cur) == -1);
    free(copy);
    buf_free(&b);
}

/* test_ipc_cur_trailing - ipc_cur_end refuses bytes left over. */
static void
test_ipc_cur_trailing(void)
{
    struct buf *b = buf_new(0);
    struct ipc_frame f;
    struct ipc_cur cur;
    uint8_t *copy;
    uint32_t u32;

    raw_u32(b, 1);
    raw_bytes(b, "\0", 1);
    f = frame_over(1, b, b->len, &copy);
    ipc_cur_init(&cur, &f);
    CHECK(ipc_get_u32(&cur, &u32) == 0);
    CHECK(ipc_cur_end(&cur) == -1);
    free(copy);

    f = frame_over(1, b, 0, &copy);
    ipc_cur_init(&cur, &f);
    CHECK(ipc_cur_end(&cur) == 0);
    free(copy);
    buf_free(&b);
}

/* test_ipc_bytes_lengths - BYTES: exact lengths accepted, lying lengths refused. */
static void
test_ipc_bytes_lengths(void)
{
    static const struct {
        const char *what;
        const char *bytes;
        size_t      len;
        int         ok;
        uint32_t    want_len;
    } cases[] = {
        { "empty", "\0\0\0\0", 4, 1, 0 },
        { "three with NULs", "\0\0\0\3\0\0\0", 7, 1, 3 },
        { "one short", "\0\0\0\3ab", 6, 0, 0 },
        { "one over (trailing)", "\0\0\0\2abc", 7, 0, 0 },
        { "length 0xffffffff", "\xff\xff\xff\xff" "abcd", 8, 0, 0 },
        { "length 0x80000000", "\x80\0\0\0" "abcd", 8, 0, 0 },
        { "no length", "\0\0", 2, 0, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf *b = buf_new(0);
        struct ipc_master_tls_keys m;
        struct ipc_frame f;
        struct ipc_cur cur;
        const uint8_t *p = NULL;
        uint32_t len = 12345;
        uint8_t *copy;
        int rc;

        raw_bytes(b, cases[i].bytes, cases[i].len);
        f = frame_over(IPC_MASTER_TLS_KEYS, b, b->len, &copy);
        ipc_cur_init(&cur, &f);
        rc = ipc_get_bytes(&cur, &p, &len);
        if (rc == 0)
            rc = ipc_cur_end(&cur);
        if ((rc == 0) != cases[i].ok) {
            fprintf(stderr, "  ipc_get_bytes: %s: got %d\n", cases[i].what, rc);
            CHECK(0);
        } else if (rc == 0) {
            CHECK(len == cases[i].want_len);
            CHECK(p == copy + 4);
        }
        memset(&m, 0, sizeof(m));
        rc = ipc_master_tls_keys_dec(&f, &m);
        if ((rc == 0) != cases[i].ok) {
            fprintf(stderr, "  ipc_master_tls_keys_dec: %s: got %d\n", cases[i].what, rc);
            CHECK(0);
        }
        if (rc == 0) {
            CHECK(m.keys_len == cases[i].want_len);
            ipc_master_tls_keys_clear(&m);
        }
        free(copy);
        buf_free(&b);
    }
}

/* Malformed STR payloads, each alone in a msg_open (whose only field is a STR). */
static const struct {
    const char *what;
    const char *bytes;
    size_t      len;
    int         ok;
} str_cases[] = {
    { "empty string", "\0\0\0\0\0", 5, 1 },
    { "plain", "\0\0\0\3abc\0", 8, 1 },
    { "utf-8", "\0\0\0\2\xc3\xa9\0", 7, 1 },
    { "embedded NUL", "\0\0\0\3a\0b\0", 8, 0 },
    { "NUL first", "\0\0\0\3\0ab\0", 8, 0 },
    { "terminator not NUL", "\0\0\0\3abcx", 8, 0 },
    { "no terminator, payload ends", "\0\0\0\3abc", 7, 0 },
    { "length counts the NUL", "\0\0\0\4abc\0", 8, 0 },
    { "length short by one", "\0\0\0\2abc\0", 8, 0 },
    { "length 0xffffffff", "\xff\xff\xff\xff" "abc\0", 8, 0 },
    { "length 0xfffffffe", "\xff\xff\xff\xfe" "abc\0", 8, 0 },
    { "length 0x80000000", "\x80\0\0\0" "abc\0", 8, 0 },
    { "length IPC_MAX_FRAME", "\0\x10\0\0" "abc\0", 8, 0 },
    { "length only", "\0\0\0\0", 4, 0 },
    { "short length", "\0\0\0", 3, 0 },
};

/* test_ipc_str_malformed - embedded NULs, missing terminators, lying lengths are refused. */
static void
test_ipc_str_malformed(void)
{
    for (size_t i = 0; i < sizeof(str_cases) / sizeof(str_cases[0]); i++) {
        struct buf *b = buf_new(0);
        struct ipc_msg_open m;
        struct ipc_frame f;
        struct ipc_cur cur;
        const char *s;
        uint8_t *copy;
        int rc;

        raw_bytes(b, str_cases[i].bytes, str_cases[i].len);
        f = frame_over(IPC_MSG_OPEN, b, b->len, &copy);

        ipc_cur_init(&cur, &f);
        rc = ipc_get_str(&cur, &s);
        if (rc == 0)
            rc = ipc_cur_end(&cur);
        if ((rc == 0) != str_cases[i].ok) {
            fprintf(stderr, "  ipc_get_str: %s: got %d\n", str_cases[i].what, rc);
            CHECK(0);
        }

        memset(&m, 0, sizeof(m));
        rc = ipc_msg_open_dec(&f, &m);
        if ((rc == 0) != str_cases[i].ok) {
            fprintf(stderr, "  ipc_msg_open_dec: %s: got %d\n", str_cases[i].what, rc);
            CHECK(0);
        }
        if (rc == 0) {
            CHECK(strlen(m.client_addr) == be32(copy));
            ipc_msg_open_clear(&m);
        }
        free(copy);
        buf_free(&b);
    }
}

/* test_ipc_msg_truncated - every message cut at every length fails cleanly. */
static void
test_ipc_msg_truncated(void)
{
    for (size_t i = 0; i < NMSG; i++) {
        const struct msg_case *c = &msg_cases[i];

        for (int empty = 0; empty <= 1; empty++) {
            union any_msg in, out;
            struct buf *b = buf_new(0);

            c->fill(&in, empty);
            CHECK(c->enc(b, &in) == 0);
            for (size_t len = 0; len < b->len; len++) {
                struct ipc_frame f;
                uint8_t *copy;

                f = frame_over(c->type, b, len, &copy);
                memset(&out, 0, sizeof(out));
                if (c->dec(&f, &out) != -1) {
                    fprintf(stderr, "  %s (empty=%d) decoded from %zu of %zu bytes\n",
                            c->name, empty, len, b->len);
                    CHECK(0);
                    c->clear(&out);
                }
                free(copy);
            }
            buf_free(&b);
        }
    }
}

/* test_ipc_msg_trailing - every message with bytes after its last field is refused. */
static void
test_ipc_msg_trailing(void)
{
    static const struct {
        const char *bytes;
        size_t      len;
    } extra[] = { { "\0", 1 }, { "x", 1 }, { "\0\0\0\0", 4 }, { "\0\0\0\0\0\0\0\0", 8 } };

    for (size_t i = 0; i < NMSG; i++) {
        const struct msg_case *c = &msg_cases[i];

        for (size_t e = 0; e < sizeof(extra) / sizeof(extra[0]); e++) {
            union any_msg in, out;
            struct buf *b = buf_new(0);
            struct ipc_frame f;
            uint8_t *copy;

            c->fill(&in, e % 2);
            CHECK(c->enc(b, &in) == 0);
            raw_bytes(b, extra[e].bytes, extra[e].len);
            f = frame_over(c->type, b, b->len, &copy);
            memset(&out, 0, sizeof(out));
            if (c->dec(&f, &out) != -1) {
                fprintf(stderr, "  %s accepted %zu trailing bytes\n", c->name, extra[e].len);
                CHECK(0);
                c->clear(&out);
            }
            free(copy);
            buf_free(&b);
        }
    }
}

/* Vector counts that lie. Each payload is (count, then what follows); all must fail. */
static const struct {
    const char *what;
    int         strv;       /* 1: STRV, 0: U32V */
    uint32_t    count;
    const char *rest;
    size_t      restlen;
} vec_cases[] = {
    { "strv 1, nothing", 1, 1, "", 0 },
    { "strv 2, one string", 1, 2, "\0\0\0\1a\0", 6 },
    { "strv 3, two empty strings", 1, 3, "\0\0\0\0\0\0\0\0\0\0", 10 },
    { "strv 0xffffffff", 1, 0xffffffffu, "\0\0\0\0\0", 5 },
    { "strv 0x80000000", 1, 0x80000000u, "\0\0\0\0\0", 5 },
    { "strv 0x20000000", 1, 0x20000000u, "\0\0\0\0\0", 5 },
    { "strv 0x01000000", 1, 0x01000000u, "\0\0\0\0\0\0\0\0\0\0", 10 },
    { "strv 0x00100000", 1, 0x00100000u, "", 0 },
    { "u32v 1, nothing", 0, 1, "", 0 },
    { "u32v 2, one", 0, 2, "\0\0\0\1", 4 },
    { "u32v 2, six bytes", 0, 2, "\0\0\0\1\0\0", 6 },
    { "u32v 0xffffffff", 0, 0xffffffffu, "\0\0\0\1\0\0\0\2", 8 },
    { "u32v 0x40000000", 0, 0x40000000u, "\0\0\0\1", 4 },
    { "u32v 0x40000001", 0, 0x40000001u, "\0\0\0\1", 4 },
    { "u32v 0x01000000", 0, 0x01000000u, "", 0 },
};

/* vec_decode_all - run every vec_case through the cursor and through msg_commit; 0 if all
 * were refused. */
static int
vec_decode_all(void)
{
    int bad = 0;

    for (size_t i = 0; i < sizeof(vec_cases) / sizeof(vec_cases[0]); i++) {
        struct buf *b = buf_new(0);
        struct ipc_frame f;
        struct ipc_cur cur;
        struct ipc_msg_commit m;
        uint8_t *copy;
        uint32_t n = 0;
        int rc;

        raw_u32(b, vec_cases[i].count);
        raw_bytes(b, vec_cases[i].rest, vec_cases[i].restlen);
        f = frame_over(IPC_MSG_COMMIT, b, b->len, &copy);
        ipc_cur_init(&cur, &f);
        if (vec_cases[i].strv) {
            const char **v = NULL;

            rc = ipc_get_strv(&cur, &v, &n);
            if (rc == 0)
                free(v);
        } else {
            const uint32_t *v = NULL;

            rc = ipc_get_u32v(&cur, &v, &n);
            if (rc == 0)
                free((void *)v);
        }
        if (rc != -1) {
            fprintf(stderr, "  cursor accepted %s\n", vec_cases[i].what);
            bad++;
        }
        free(copy);

        /* The same inside a whole msg_commit, as the rcpts or the notify field. */
        buf_reset(b);
        raw_str(b, "Q");
        raw_u64(b, 1);
        raw_u32(b, 0);
        for (int s = 0; s < 7; s++)
            raw_str(b, "");
        raw_u32(b, 0);
        if (vec_cases[i].strv) {
            raw_u32(b, vec_cases[i].count);
            raw_bytes(b, vec_cases[i].rest, vec_cases[i].restlen);
        } else {
            raw_u32(b, 0);
            raw_u32(b, 0);
            raw_u32(b, vec_cases[i].count);
            raw_bytes(b, vec_cases[i].rest, vec_cases[i].restlen);
        }
        f = frame_over(IPC_MSG_COMMIT, b, b->len, &copy);
        memset(&m, 0, sizeof(m));
        if (ipc_msg_commit_dec(&f, &m) != -1) {
            fprintf(stderr, "  msg_commit accepted %s\n", vec_cases[i].what);
            bad++;
            ipc_msg_commit_clear(&m);
        }
        free(copy);
        buf_free(&b);
    }
    return bad;
}

/* test_ipc_vec_count_exceeds - a count bigger than the payload can hold is refused without a
 * huge allocation. Runs in a child with a small address-space limit (not under ASan, which
 * needs a huge one), so that allocating by the count first kills the child. */
static void
test_ipc_vec_count_exceeds(void)
{
    pid_t pid;
    int status;

    fflush(NULL);
    pid = fork();
    CHECK(pid != -1);
    if (pid == 0) {
#if !defined(__SANITIZE_ADDRESS__)
        struct rlimit rl = { 128u << 20, 128u << 20 };

        setrlimit(RLIMIT_AS, &rl);
#endif
        alarm(20);
        _exit(vec_decode_all() == 0 ? 0 : 2);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
        fprintf(stderr, "  child died (fatal: allocation by an unchecked count?)\n");
    if (WIFSIGNALED(status))
        fprintf(stderr, "  child killed by signal %d\n", WTERMSIG(status));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* test_ipc_vec_edge - vectors of empty strings at exactly the payload size are accepted. */
static void
test_ipc_vec_edge(void)
{
    struct buf *b = buf_new(0);
    struct ipc_frame f;
    struct ipc_cur cur;
    const char **v = NULL;
    uint8_t *copy;
    uint32_t n = 0;

    raw_u32(b, 1000);
    for (int i = 0; i < 1000; i++)
        raw_str(b, "");
    f = frame_over(1, b, b->len, &copy);
    ipc_cur_init(&cur, &f);
    CHECK(ipc_get_strv(&cur, &v, &n) == 0);
    CHECK(n == 1000);
    CHECK(v != NULL && v[999] != NULL && v[999][0] == '\0');
    CHECK(ipc_cur_end(&cur) == 0);
    free(v);
    free(copy);
    buf_free(&b);
}

/* ---- frames over a real socketpair ---- */

static int
tmpfile_fd(void)
{
    char path[] = "/tmp/postern-ipc-test-XXXXXX";
    int fd = mkstemp(path);

    if (fd != -1) {
        unlink(path);
        if (write(fd, "spool", 5) != 5) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int
same_file(int a, int b)
{
    struct stat sa, sb;

    if (fstat(a, &sa) == -1 || fstat(b, &sb) == -1)
        return 0;
    return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/* test_ipc_frame_roundtrip - send_frame + recv_frame keep type, reqid and payload. */
static void
test_ipc_frame_roundtrip(void)
{
    static const struct {
        uint32_t type;
        uint32_t reqid;
        size_t   len;
    } cases[] = {
        { IPC_MSG_OPEN, 1, 0 },
        { IPC_MSG_COMMIT, 0xfffffffeu, 1 },
        { IPC_DELIVER, 0, 100 },
        { IPC_DELIVERED, 0x7fffffff, 70000 },
        { 0x12345, 42, 13 },
    };
    int sv[2];

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf *p = buf_new(0), *storage = buf_new(0);
        struct ipc_frame f;

        for (size_t j = 0; j < cases[i].len; j++) {
            char c = (char)(j * 31 + i);

            buf_append(p, &c, 1);
        }
        CHECK(ipc_send_frame(sv[0], cases[i].type, cases[i].reqid, p, -1) == 0);
        memset(&f, 0, sizeof(f));
        CHECK(ipc_recv_frame(sv[1], storage, &f) == 0);
        CHECK(f.type == cases[i].type);
        CHECK(f.reqid == cases[i].reqid);
        CHECK(f.len == cases[i].len);
        CHECK(f.fd == -1);
        CHECK(f.len == cases[i].len && (f.len == 0 || memcmp(f.payload, p->data, f.len) == 0));
        buf_free(&p);
        buf_free(&storage);
    }
    close(sv[0]);
    close(sv[1]);
}

/* test_ipc_frame_header_bytes - the 12-byte header on the wire is big-endian type/len/reqid. */
static void
test_ipc_frame_header_bytes(void)
{
    struct buf *p = buf_new(0);
    unsigned char hdr[IPC_HDR_LEN + 3];
    int sv[2];

    CHECK(IPC_HDR_LEN == 12);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    buf_append(p, "xyz", 3);
    CHECK(ipc_send_frame(sv[0], IPC_MSG_QUEUED, 0x0a0b0c0d, p, -1) == 0);
    CHECK(read(sv[1], hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr));
    CHECK(be32(hdr) == IPC_MSG_QUEUED);
    CHECK(be32(hdr + 4) == 3);
    CHECK(be32(hdr + 8) == 0x0a0b0c0d);
    CHECK(memcmp(hdr + 12, "xyz", 3) == 0);
    close(sv[0]);
    close(sv[1]);
    buf_free(&p);
}

/* test_ipc_frame_fd - a descriptor sent with a frame arrives referring to the same file, and
 * the sender's copy stays open. */
static void
test_ipc_frame_fd(void)
{
    struct buf *p = buf_new(0), *storage = buf_new(0);
    struct ipc_frame f;
    int sv[2], fd = tmpfile_fd();

    CHECK(fd != -1);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ipc_put_u32(p, 0);
    ipc_put_str(p, "QIDQIDQIDQIDQID0");
    CHECK(ipc_send_frame(sv[0], IPC_MSG_OPENED, 77, p, fd) == 0);
    CHECK(fcntl(fd, F_GETFD) != -1);
    memset(&f, 0, sizeof(f));
    f.fd = -1;
    CHECK(ipc_recv_frame(sv[1], storage, &f) == 0);
    CHECK(f.type == IPC_MSG_OPENED);
    CHECK(f.reqid == 77);
    CHECK(f.len == p->len);
    CHECK(f.fd >= 0 && f.fd != fd);
    CHECK(f.fd >= 0 && same_file(f.fd, fd));
    if (f.fd >= 0) {
        struct ipc_msg_opened m;

        CHECK(fcntl(f.fd, F_GETFD) != -1);
        CHECK(ipc_msg_opened_dec(&f, &m) == 0);
        CHECK_STR(m.qid, "QIDQIDQIDQIDQID0");
        close(f.fd);
    }

    /* The next frame, without a descriptor, must not inherit one. */
    CHECK(ipc_send_frame(sv[0], IPC_MSG_ABORT, 78, p, -1) == 0);
    CHECK(ipc_recv_frame(sv[1], storage, &f) == 0);
    CHECK(f.reqid == 78 && f.fd == -1);

    close(fd);
    close(sv[0]);
    close(sv[1]);
    buf_free(&p);
    buf_free(&storage);
}

/* test_ipc_frame_too_big - a header announcing more than IPC_MAX_FRAME is refused, and so is
 * sending such a payload. */
static void
test_ipc_frame_too_big(void)
{
    static const uint32_t lens[] = { IPC_MAX_FRAME + 1, 0x7fffffffu, 0xffffffffu };
    struct buf *storage = buf_new(0), *big = buf_new(0);

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        struct buf *hdr = buf_new(0);
        struct ipc_frame f;
        int sv[2];

        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        raw_u32(hdr, IPC_MSG_COMMIT);
        raw_u32(hdr, lens[i]);
        raw_u32(hdr, 1);
        raw_bytes(hdr, "abcdefgh", 8);
        CHECK(write(sv[0], hdr->data, hdr->len) == (ssize_t)hdr->len);
        CHECK(ipc_recv_frame(sv[1], storage, &f) == -1);
        CHECK(storage->len <= 1024);
        close(sv[0]);
        close(sv[1]);
        buf_free(&hdr);
    }

    /* The sending side refuses too. */
    {
        int sv[2];
        char *z = xcalloc(1, IPC_MAX_FRAME + 1);

        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        buf_append(big, z, IPC_MAX_FRAME + 1);
        free(z);
        CHECK(ipc_send_frame(sv[0], IPC_MSG_COMMIT, 1, big, -1) == -1);
        close(sv[0]);
        close(sv[1]);
    }
    buf_free(&big);
    buf_free(&storage);
}

/* test_ipc_frame_max - a payload of exactly IPC_MAX_FRAME bytes goes through. */
static void
test_ipc_frame_max(void)
{
    struct buf *storage = buf_new(0);
    struct ipc_frame f;
    int sv[2], status;
    pid_t pid;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        struct buf *big = buf_new(IPC_MAX_FRAME);

        close(sv[1]);
        for (size_t i = 0; i < IPC_MAX_FRAME; i++) {
            char c = (char)(i % 251);

            buf_append(big, &c, 1);
        }
        _exit(ipc_send_frame(sv[0], IPC_DELIVER, 5, big, -1) == 0 ? 0 : 1);
    }
    close(sv[0]);
    CHECK(ipc_recv_frame(sv[1], storage, &f) == 0);
    CHECK(f.len == IPC_MAX_FRAME);
    if (f.len == IPC_MAX_FRAME)
        CHECK(f.payload[0] == 0 && f.payload[250] == 250 && f.payload[251] == 0 &&
              f.payload[IPC_MAX_FRAME - 1] == (IPC_MAX_FRAME - 1) % 251);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(sv[1]);
    buf_free(&storage);
}

/* test_ipc_frame_eof - EOF between frames is -1 with errno 0; EOF inside a frame is -1. */
static void
test_ipc_frame_eof(void)
{
    static const struct {
        const char *what;
        const char *bytes;
        size_t      len;
    } cases[] = {
        { "eof at start", "", 0 },
        { "eof after 1 header byte", "\0", 1 },
        { "eof after 6 header bytes", "\0\0\0\x0a\0\0", 6 },
        { "eof after 11 header bytes", "\0\0\0\x0a\0\0\0\x0a\0\0\0", 11 },
        { "eof after header", "\0\0\0\x0a\0\0\0\x0a\0\0\0\1", 12 },
        { "eof after half the payload", "\0\0\0\x0a\0\0\0\x0a\0\0\0\1abcde", 17 },
        { "eof one byte short", "\0\0\0\x0a\0\0\0\x0a\0\0\0\1abcdefghi", 21 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf *storage = buf_new(0);
        struct ipc_frame f;
        int sv[2];

        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        if (cases[i].len > 0)
            CHECK(write(sv[0], cases[i].bytes, cases[i].len) == (ssize_t)cases[i].len);
        close(sv[0]);
        errno = 1234;
        if (ipc_recv_frame(sv[1], storage, &f) != -1) {
            fprintf(stderr, "  %s: accepted\n", cases[i].what);
            CHECK(0);
        } else if (i == 0) {
            CHECK(errno == 0);
        }
        close(sv[1]);
        buf_free(&storage);
    }

    /* A whole frame, then EOF: the frame is read, then EOF with errno 0. */
    {
        struct buf *storage = buf_new(0);
        struct ipc_frame f;
        int sv[2];

        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        CHECK(write(sv[0], "\0\0\0\x0a\0\0\0\x02\0\0\0\1ab", 14) == 14);
        close(sv[0]);
        CHECK(ipc_recv_frame(sv[1], storage, &f) == 0);
        CHECK(f.type == 10 && f.len == 2 && f.reqid == 1 && memcmp(f.payload, "ab", 2) == 0);
        errno = 1234;
        CHECK(ipc_recv_frame(sv[1], storage, &f) == -1);
        CHECK(errno == 0);
        close(sv[1]);
        buf_free(&storage);
    }
}

/* test_ipc_frame_send_closed - sending to a closed peer fails instead of killing us. */
static void
test_ipc_frame_send_closed(void)
{
    struct buf *p = buf_new(0);
    int sv[2];

    buf_append(p, "x", 1);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    close(sv[1]);
    CHECK(ipc_send_frame(sv[0], IPC_MSG_OPEN, 1, p, -1) == -1);
    close(sv[0]);
    buf_free(&p);
}

/* ---- ipc_conn on an event loop ---- */

#define CONN_FRAMES 24

struct conn_state {
    struct ev  *ev;
    int         got;            /* frames received */
    int         got_null;       /* NULL callbacks */
    int         order_ok;
    int         content_ok;
    int         fd_ok;
    int         fds_seen;
    int         ref_fd;         /* the file the fd-carrying frame refers to */
    int         timed_out;
    int         stop_at;        /* ev_stop after this many frames, 0: never */
    const struct ipc_conn *conn;
    int         conn_ok;
};

static size_t
conn_frame_len(int i)
{
    static const size_t lens[] = { 0, 1, 12, 300000, 5, 65536, 200000, 3 };

    return lens[i % 8];
}

static char
conn_frame_byte(int i, size_t j)
{
    return (char)(i * 7 + j * 13);
}

static void
conn_cb(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    struct conn_state *st = arg;

    if (c != st->conn)
        st->conn_ok = 0;
    if (f == NULL) {
        st->got_null++;
        ev_stop(st->ev);
        return;
    }
    if (f->reqid != (uint32_t)st->got + 1 || f->type != (uint32_t)(100 + st->got))
        st->order_ok = 0;
    if (f->len != conn_frame_len(st->got))
        st->content_ok = 0;
    else
        for (size_t j = 0; j < f->len; j++)
            if ((char)f->payload[j] != conn_frame_byte(st->got, j)) {
                st->content_ok = 0;
                break;
            }
    if (f->fd != -1) {
        st->fds_seen++;
        if (st->got != 3 || !same_file(f->fd, st->ref_fd))
            st->fd_ok = 0;
        close(f->fd);
    } else if (st->got == 3) {
        st->fd_ok = 0;
    }
    st->got++;
    if (st->stop_at && st->got == st->stop_at)
        ev_stop(st->ev);
}

static void
silent_cb(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    (void)c;
    (void)arg;
    if (f != NULL && f->fd != -1)
        close(f->fd);
}

static void
timeout_cb(void *arg)
{
    struct conn_state *st = arg;

    st->timed_out = 1;
    ev_stop(st->ev);
}

static void
conn_state_init(struct conn_state *st, struct ev *ev)
{
    memset(st, 0, sizeof(*st));
    st->ev = ev;
    st->order_ok = st->content_ok = st->fd_ok = st->conn_ok = 1;
    st->ref_fd = -1;
}

static int
nonblocking_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
        return -1;
    for (int i = 0; i < 2; i++)
        if (fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK) == -1)
            return -1;
    return 0;
}

/* test_ipc_conn_in_order - frames queued at one end (more than a socket buffer holds) all
 * arrive in order at the other, with the one descriptor on the right frame. */
static void
test_ipc_conn_in_order(void)
{
    struct ev *ev = ev_new();
    struct conn_state st;
    struct ipc_conn *a, *b;
    uint64_t tid;
    int sv[2];

    conn_state_init(&st, ev);
    st.stop_at = CONN_FRAMES;
    st.ref_fd = tmpfile_fd();
    CHECK(st.ref_fd != -1);
    CHECK(nonblocking_pair(sv) == 0);
    a = ipc_conn_new(ev, sv[0], silent_cb, NULL);
    b = ipc_conn_new(ev, sv[1], conn_cb, &st);
    st.conn = b;
    CHECK(ipc_conn_fd(a) == sv[0]);
    CHECK(ipc_conn_fd(b) == sv[1]);

    for (int i = 0; i < CONN_FRAMES; i++) {
        struct buf *p = buf_new(0);

        for (size_t j = 0; j < conn_frame_len(i); j++) {
            char c = conn_frame_byte(i, j);

            buf_append(p, &c, 1);
        }
        CHECK(ipc_conn_send(a, (uint32_t)(100 + i), (uint32_t)(i + 1), p,
                            i == 3 ? st.ref_fd : -1) == 0);
        buf_free(&p);
    }
    /* The descriptor is not closed by ipc_conn_send. */
    CHECK(fcntl(st.ref_fd, F_GETFD) != -1);
    CHECK(ipc_conn_pending(a) > 0);

    tid = ev_timer_add(ev, 5000, timeout_cb, &st);
    CHECK(ev_run(ev) == 0);
    ev_timer_del(ev, tid);
    CHECK(!st.timed_out);
    CHECK(st.got == CONN_FRAMES);
    CHECK(st.got_null == 0);
    CHECK(st.order_ok);
    CHECK(st.content_ok);
    CHECK(st.fd_ok);
    CHECK(st.fds_seen == 1);
    CHECK(st.conn_ok);
    CHECK(ipc_conn_pending(a) == 0);

    ipc_conn_free(&a);
    ipc_conn_free(&b);
    CHECK(a == NULL && b == NULL);
    /* ipc_conn_free closes the sockets. */
    CHECK(fcntl(sv[0], F_GETFD) == -1 && fcntl(sv[1], F_GETFD) == -1);
    close(st.ref_fd);
    ev_free(&ev);
    CHECK(ev == NULL);
}

/* test_ipc_conn_peer_close - peer closing: callback with NULL; the connection is dead. */
static void
test_ipc_conn_peer_close(void)
{
    struct ev *ev = ev_new();
    struct conn_state st;
    struct ipc_conn *a, *b;
    struct buf *p = buf_new(0);
    uint64_t tid;
    int sv[2];

    conn_state_init(&st, ev);
    st.stop_at = 1;
    CHECK(nonblocking_pair(sv) == 0);
    a = ipc_conn_new(ev, sv[0], silent_cb, NULL);
    b = ipc_conn_new(ev, sv[1], conn_cb, &st);
    st.conn = b;

    CHECK(ipc_conn_send(a, 100, 1, p, -1) == 0);
    tid = ev_timer_add(ev, 5000, timeout_cb, &st);
    CHECK(ev_run(ev) == 0);
    CHECK(st.got == 1 && st.got_null == 0);

    ipc_conn_free(&a);
    CHECK(a == NULL);
    CHECK(ev_run(ev) == 0);
    ev_timer_del(ev, tid);
    CHECK(!st.timed_out);
    CHECK(st.got == 1);
    CHECK(st.got_null == 1);
    CHECK(st.conn_ok);
    CHECK(ipc_conn_send(b, 100, 2, p, -1) == -1);
    ipc_conn_free(&b);
    CHECK(b == NULL);
    buf_free(&p);
    ev_free(&ev);
}

/* test_ipc_conn_malformed - a frame header over IPC_MAX_FRAME: callback with NULL. */
static void
test_ipc_conn_malformed(void)
{
    struct ev *ev = ev_new();
    struct conn_state st;
    struct ipc_conn *b;
    struct buf *hdr = buf_new(0);
    uint64_t tid;
    int sv[2];

    conn_state_init(&st, ev);
    CHECK(nonblocking_pair(sv) == 0);
    b = ipc_conn_new(ev, sv[1], conn_cb, &st);
    st.conn = b;
    raw_u32(hdr, 100);
    raw_u32(hdr, IPC_MAX_FRAME + 1);
    raw_u32(hdr, 1);
    CHECK(write(sv[0], hdr->data, hdr->len) == (ssize_t)hdr->len);
    tid = ev_timer_add(ev, 5000, timeout_cb, &st);
    CHECK(ev_run(ev) == 0);
    ev_timer_del(ev, tid);
    CHECK(!st.timed_out);
    CHECK(st.got == 0);
    CHECK(st.got_null == 1);
    ipc_conn_free(&b);
    close(sv[0]);
    buf_free(&hdr);
    ev_free(&ev);
}

static struct ipc_delivered delivered_got;
static int delivered_rc = -2;

static void
delivered_cb(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    struct ev *ev = arg;

    (void)c;
    if (f != NULL && f->type == IPC_DELIVERED && f->reqid == 99) {
        struct ipc_delivered m;

        delivered_rc = ipc_delivered_dec(f, &m);
        if (delivered_rc == 0) {
            /* Strings point into the frame: copy them before it goes away. */
            delivered_got = m;
            delivered_got.qid = xstrdup(m.qid);
            delivered_got.dsn = xstrdup(m.dsn);
            delivered_got.text = xstrdup(m.text);
            ipc_delivered_clear(&m);
        }
    }
    ev_stop(ev);
}

/* test_ipc_conn_msg_send - a generated ipc_<name>_send arrives and decodes; peer creds. */
static void
test_ipc_conn_msg_send(void)
{
    struct ev *ev = ev_new();
    struct ipc_conn *a, *b;
    struct ipc_delivered m = {
        .qid = "0123456789ABCDEF", .rcpt_index = 3, .status = IPC_DELIV_TEMP,
        .dsn = "4.2.2", .text = "mailbox full",
    };
    struct conn_state st;
    uid_t uid = (uid_t)-1;
    pid_t pid = -1;
    uint64_t tid;
    int sv[2];

    conn_state_init(&st, ev);
    CHECK(nonblocking_pair(sv) == 0);
    a = ipc_conn_new(ev, sv[0], silent_cb, NULL);
    b = ipc_conn_new(ev, sv[1], delivered_cb, ev);
    CHECK(ipc_delivered_send(a, 99, &m, -1) == 0);
    tid = ev_timer_add(ev, 5000, timeout_cb, &st);
    CHECK(ev_run(ev) == 0);
    ev_timer_del(ev, tid);
    CHECK(!st.timed_out);
    CHECK(delivered_rc == 0);
    if (delivered_rc == 0) {
        CHECK_STR(delivered_got.qid, m.qid);
        CHECK(delivered_got.rcpt_index == 3 && delivered_got.status == IPC_DELIV_TEMP);
        CHECK_STR(delivered_got.dsn, "4.2.2");
        CHECK_STR(delivered_got.text, "mailbox full");
        free((char *)delivered_got.qid);
        free((char *)delivered_got.dsn);
        free((char *)delivered_got.text);
    }
    CHECK(ipc_conn_peer(b, &uid, &pid) == 0);
    CHECK(uid == getuid());
    CHECK(pid == getpid());
    ipc_conn_free(&a);
    ipc_conn_free(&b);
    ev_free(&ev);
}

/* test_ipc_msg_wrong_type - a decoder refuses a frame of another type. */
static void
test_ipc_msg_wrong_type(void)
{
    for (size_t i = 0; i < NMSG; i++) {
        const struct msg_case *c = &msg_cases[i];
        union any_msg in, out;
        struct buf *b = buf_new(0);
        struct ipc_frame f;
        uint8_t *copy;

        c->fill(&in, 0);
        CHECK(c->enc(b, &in) == 0);
        f = frame_over(c->type + 1000, b, b->len, &copy);
        if (c->dec(&f, &out) != -1) {
            fprintf(stderr, "  %s decoded a frame of type %u\n", c->name, f.type);
            CHECK(0);
            c->clear(&out);
        }
        free(copy);
        buf_free(&b);
    }
}

/* test_ipc_msg_enc_too_big - a message that cannot fit in IPC_MAX_FRAME does not encode. */
static void
test_ipc_msg_enc_too_big(void)
{
    enum { NR = 20000 };
    const char **rcpts = xcalloc(NR, sizeof(*rcpts));
    char *addr = xmalloc(100);
    struct ipc_msg_commit m;
    struct buf *b = buf_new(0);

    memset(addr, 'a', 99);
    addr[99] = '\0';
    for (int i = 0; i < NR; i++)
        rcpts[i] = addr;            /* 20,000 x 104 bytes > 1 MiB */
    memset(&m, 0, sizeof(m));
    m.rcpts = rcpts;
    m.rcpts_n = NR;
    CHECK(ipc_msg_commit_enc(b, &m) == -1);
    m.rcpts_n = 1000;
    buf_reset(b);
    CHECK(ipc_msg_commit_enc(b, &m) == 0);
    free(rcpts);
    free(addr);
    buf_free(&b);
}

/* test_ipc_frame_fd_flag_without_fd - a frame whose type announces a descriptor that does
 * not come. ipc_conn treats it as malformed; the blocking reader must not invent one. */
static void
test_ipc_frame_fd_flag_without_fd(void)
{
    struct buf *raw = buf_new(0), *storage = buf_new(0);
    struct ipc_frame f;
    int sv[2], rc;

    raw_u32(raw, 0x80000000u | IPC_MSG_OPENED);
    raw_u32(raw, 0);
    raw_u32(raw, 5);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(write(sv[0], raw->data, raw->len) == (ssize_t)raw->len);
    f.fd = 12345;
    rc = ipc_recv_frame(sv[1], storage, &f);
    /* Either refused, or accepted with no descriptor; never a made-up one. */
    CHECK(rc == -1 || f.fd == -1);
    if (rc == 0)
        CHECK(f.type == IPC_MSG_OPENED);
    close(sv[0]);
    close(sv[1]);
    buf_free(&raw);
    buf_free(&storage);
}

/* Frees its own connection on the first frame, as an owner dropping a bad peer would. */
struct free_state {
    struct ev       *ev;
    struct ipc_conn *conn;
    int              frames;
    int              nulls;
};

static void
free_in_cb(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    struct free_state *fs = arg;

    (void)c;
    if (f == NULL)
        fs->nulls++;
    else
        fs->frames++;
    if (f != NULL && f->fd != -1)
        close(f->fd);
    ipc_conn_free(&fs->conn);
    ev_stop(fs->ev);
}

/* test_ipc_conn_free_in_callback - the owner may free the connection inside its callback,
 * even while more input is waiting (no use after free under SAN=1). */
static void
test_ipc_conn_free_in_callback(void)
{
    static const size_t sizes[] = { 10, 100000, 65536 - IPC_HDR_LEN, 200000 };

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        struct ev *ev = ev_new();
        struct free_state fs;
        struct conn_state st;
        struct ipc_conn *a;
        struct buf *p = buf_new(0);
        uint64_t tid;
        int sv[2];

        conn_state_init(&st, ev);
        memset(&fs, 0, sizeof(fs));
        fs.ev = ev;
        CHECK(nonblocking_pair(sv) == 0);
        a = ipc_conn_new(ev, sv[0], silent_cb, NULL);
        fs.conn = ipc_conn_new(ev, sv[1], free_in_cb, &fs);
        for (size_t j = 0; j < sizes[k]; j++)
            buf_append(p, "p", 1);
        for (int i = 0; i < 4; i++)
            CHECK(ipc_conn_send(a, 100, (uint32_t)i, p, -1) == 0);
        tid = ev_timer_add(ev, 5000, timeout_cb, &st);
        CHECK(ev_run(ev) == 0);
        ev_timer_del(ev, tid);
        CHECK(!st.timed_out);
        CHECK(fs.frames == 1);
        CHECK(fs.nulls == 0);
        CHECK(fs.conn == NULL);
        CHECK(fcntl(sv[1], F_GETFD) == -1);     /* closed by the deferred free */
        ipc_conn_free(&a);
        buf_free(&p);
        ev_free(&ev);
    }
}

/* Counts descriptors: every frame carries one. */
struct fds_state {
    struct ev *ev;
    int        frames;
    int        with_fd;
    int        right_file;
    int        ref_fd;
    int        nulls;
};

static void
fds_cb(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    struct fds_state *fs = arg;

    (void)c;
    if (f == NULL) {
        fs->nulls++;
        ev_stop(fs->ev);
        return;
    }
    fs->frames++;
    if (f->fd != -1) {
        fs->with_fd++;
        if (same_file(f->fd, fs->ref_fd))
            fs->right_file++;
        close(f->fd);
    }
    if (fs->frames == 40)
        ev_stop(fs->ev);
}

/* test_ipc_conn_many_fds - 40 queued frames, each with a descriptor, all arrive with theirs. */
static void
test_ipc_conn_many_fds(void)
{
    struct ev *ev = ev_new();
    struct fds_state fs;
    struct conn_state st;
    struct ipc_conn *a, *b;
    struct buf *p = buf_new(0);
    uint64_t tid;
    int sv[2];

    conn_state_init(&st, ev);
    memset(&fs, 0, sizeof(fs));
    fs.ev = ev;
    fs.ref_fd = tmpfile_fd();
    CHECK(nonblocking_pair(sv) == 0);
    a = ipc_conn_new(ev, sv[0], silent_cb, NULL);
    b = ipc_conn_new(ev, sv[1], fds_cb, &fs);
    buf_append(p, "0123456789", 10);
    for (int i = 0; i < 40; i++)
        CHECK(ipc_conn_send(a, IPC_MSG_OPENED, (uint32_t)i, p, fs.ref_fd) == 0);
    tid = ev_timer_add(ev, 5000, timeout_cb, &st);
    CHECK(ev_run(ev) == 0);
    ev_timer_del(ev, tid);
    CHECK(!st.timed_out);
    CHECK(fs.nulls == 0);
    CHECK(fs.frames == 40);
    CHECK(fs.with_fd == 40);
    CHECK(fs.right_file == 40);
    ipc_conn_free(&a);
    ipc_conn_free(&b);
    close(fs.ref_fd);
    buf_free(&p);
    ev_free(&ev);
}

/* Receives one big frame and checks its length and pattern. */
struct big_state {
    struct ev *ev;
    uint32_t   want_len;
    int        frames;
    int        nulls;
    int        content_ok;
};

static void
big_cb(struct ipc_conn *c, const struct ipc_frame *f, void *arg)
{
    struct big_state *bs = arg;

    (void)c;
    if (f == NULL) {
        bs->nulls++;
    } else {
        bs->frames++;
        bs->content_ok = f->len == bs->want_len;
        for (uint32_t j = 0; bs->content_ok && j < f->len; j++)
            if (f->payload[j] != (uint8_t)(j % 253))
                bs->content_ok = 0;
    }
    ev_stop(bs->ev);
}

/* test_ipc_conn_max_frame - ipc_conn carries frames up to IPC_MAX_FRAME, as ipc_conn_send
 * and ipc_recv_frame do. */
static void
test_ipc_conn_max_frame(void)
{
    static const uint32_t sizes[] = { 500000, IPC_MAX_FRAME - 65536, IPC_MAX_FRAME - 100,
                                      IPC_MAX_FRAME };

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        struct ev *ev = ev_new();
        struct big_state bs;
        struct conn_state st;
        struct ipc_conn *a, *b;
        struct buf *p = buf_new(sizes[k]);
        uint64_t tid;
        int sv[2];

        conn_state_init(&st, ev);
        memset(&bs, 0, sizeof(bs));
        bs.ev = ev;
        bs.want_len = sizes[k];
        CHECK(nonblocking_pair(sv) == 0);
        a = ipc_conn_new(ev, sv[0], silent_cb, NULL);
        b = ipc_conn_new(ev, sv[1], big_cb, &bs);
        for (uint32_t j = 0; j < sizes[k]; j++) {
            uint8_t c = (uint8_t)(j % 253);

            buf_append(p, &c, 1);
        }
        CHECK(ipc_conn_send(a, IPC_MSG_COMMIT, 1, p, -1) == 0);
        tid = ev_timer_add(ev, 5000, timeout_cb, &st);
        CHECK(ev_run(ev) == 0);
        ev_timer_del(ev, tid);
        CHECK(!st.timed_out);
        if (bs.frames != 1 || bs.nulls != 0 || !bs.content_ok) {
            fprintf(stderr, "  payload of %u bytes: %d frames, %d NULL callbacks\n",
                    sizes[k], bs.frames, bs.nulls);
            CHECK(0);
        }
        ipc_conn_free(&a);
        ipc_conn_free(&b);
        buf_free(&p);
        ev_free(&ev);
    }
}

/* test_ipc_conn_send_limits - an oversized payload is refused at once; a peer that never
 * reads makes ipc_conn_send fail once the queue passes its limit, instead of growing it
 * without bound. */
static void
test_ipc_conn_send_limits(void)
{
    struct ev *ev = ev_new();
    struct ipc_conn *a;
    struct buf *p = buf_new(IPC_MAX_FRAME + 1);
    char *z = xcalloc(1, IPC_MAX_FRAME + 1);
    int sv[2], sent = 0;

    CHECK(nonblocking_pair(sv) == 0);
    a = ipc_conn_new(ev, sv[0], silent_cb, NULL);
    buf_append(p, z, IPC_MAX_FRAME + 1);
    CHECK(ipc_conn_send(a, IPC_MSG_COMMIT, 1, p, -1) == -1);
    CHECK(ipc_conn_pending(a) == 0);
    buf_truncate(p, IPC_MAX_FRAME);
    while (sent < 1000 && ipc_conn_send(a, IPC_MSG_COMMIT, 1, p, -1) == 0)
        sent++;
    CHECK(sent > 0 && sent < 1000);
    CHECK(ipc_conn_pending(a) > 0);
    ipc_conn_free(&a);
    close(sv[1]);
    free(z);
    buf_free(&p);
    ev_free(&ev);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    TEST_RUN(test_ipc_msg_type_numbers);
    TEST_RUN(test_ipc_msg_roundtrip);
    TEST_RUN(test_ipc_msg_golden);
    TEST_RUN(test_ipc_put_layout);
    TEST_RUN(test_ipc_cur_getters);
    TEST_RUN(test_ipc_cur_failed_sticky);
    TEST_RUN(test_ipc_cur_trailing);
    TEST_RUN(test_ipc_str_malformed);
    TEST_RUN(test_ipc_bytes_lengths);
    TEST_RUN(test_ipc_msg_truncated);
    TEST_RUN(test_ipc_msg_trailing);
    TEST_RUN(test_ipc_msg_wrong_type);
    TEST_RUN(test_ipc_msg_enc_too_big);
    TEST_RUN(test_ipc_vec_count_exceeds);
    TEST_RUN(test_ipc_vec_edge);
    TEST_RUN(test_ipc_frame_roundtrip);
    TEST_RUN(test_ipc_frame_header_bytes);
    TEST_RUN(test_ipc_frame_fd);
    TEST_RUN(test_ipc_frame_too_big);
    TEST_RUN(test_ipc_frame_max);
    TEST_RUN(test_ipc_frame_eof);
    TEST_RUN(test_ipc_frame_send_closed);
    TEST_RUN(test_ipc_frame_fd_flag_without_fd);
    TEST_RUN(test_ipc_conn_in_order);
    TEST_RUN(test_ipc_conn_peer_close);
    TEST_RUN(test_ipc_conn_malformed);
    TEST_RUN(test_ipc_conn_msg_send);
    TEST_RUN(test_ipc_conn_many_fds);
    TEST_RUN(test_ipc_conn_max_frame);
    TEST_RUN(test_ipc_conn_send_limits);
    /* Last: under SAN=1 a use after free here aborts the binary. */
    TEST_RUN(test_ipc_conn_free_in_callback);
    TEST_END();
}
