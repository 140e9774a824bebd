/* tls_test - libtls on a socketpair: handshakes, data, SNI, tickets shared by two contexts,
 * DANE-EE.
 *
 * Certificates are made in the test with OpenSSL's API (EC P-256, self-signed), so nothing
 * outside the test is needed. Server and client run in one thread, each step driven until
 * both sides stop asking for I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "test.h"
#include <openssl/ssl.h>

#include "tls.h"

static char tmpdir[] = "/tmp/tls_test.XXXXXX";

/* make_cert - write DIR/NAME.crt and DIR/NAME.key for a self-signed cert naming host. */
static void
make_cert(const char *name, const char *host)
{
    EVP_PKEY       *key = EVP_EC_gen("P-256");
    X509           *x = X509_new();
    X509_NAME      *subj;
    X509_EXTENSION *ext;
    X509V3_CTX      v3;
    char            path[256], san[300];
    FILE           *fp;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    subj = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)host, -1, -1,
                               0);
    X509_set_issuer_name(x, subj);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    snprintf(san, sizeof(san), "DNS:%s", host);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(x, key, EVP_sha256());
    snprintf(path, sizeof(path), "%s/%s.crt", tmpdir, name);
    fp = fopen(path, "w");
    PEM_write_X509(fp, x);
    fclose(fp);
    snprintf(path, sizeof(path), "%s/%s.key", tmpdir, name);
    fp = fopen(path, "w");
    PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    X509_free(x);
    EVP_PKEY_free(key);
}

static struct tls_ctx *
server_ctx(const char *min_version)
{
    static char     crt[2][256], key[2][256];
    struct tls_cert certs[2];
    struct tls_server_conf conf;
    char            err[512];
    struct tls_ctx *t;

    snprintf(crt[0], sizeof(crt[0]), "%s/a.crt", tmpdir);
    snprintf(key[0], sizeof(key[0]), "%s/a.key", tmpdir);
    snprintf(crt[1], sizeof(crt[1]), "%s/b.crt", tmpdir);
    snprintf(key[1], sizeof(key[1]), "%s/b.key", tmpdir);
    certs[0] = (struct tls_cert){ crt[0], key[0] };
    certs[1] = (struct tls_cert){ crt[1], key[1] };
    memset(&conf, 0, sizeof(conf));
    conf.certs = certs;
    conf.ncerts = 2;
    conf.min_version = min_version;
    t = tls_server_ctx_new(&conf, err, sizeof(err));
    if (t == NULL)
        fprintf(stderr, "  server ctx: %s\n", err);
    return t;
}

/* pair_free - the end of a test: both sessions, the socketpair, both contexts. */
static void
pair_free(struct tls_conn **s, struct tls_conn **c, int sv[2], struct tls_ctx **sctx,
          struct tls_ctx **cctx)
{
    tls_conn_free(s);
    tls_conn_free(c);
    close(sv[0]);
    close(sv[1]);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

/* pump - drive both handshakes until done; 0 on success. */
static int
pump(struct tls_conn *s, struct tls_conn *c)
{
    int sdone = 0, cdone = 0;

    for (int i = 0; i < 100 && !(sdone && cdone); i++) {
        if (!cdone) {
            int rc = tls_conn_handshake(c);

            if (rc == TLS_OK)
                cdone = 1;
            else if (rc == TLS_ERROR) {
                fprintf(stderr, "  client: %s\n", tls_conn_error(c));
                return -1;
            }
        }
        if (!sdone) {
            int rc = tls_conn_handshake(s);

            if (rc == TLS_OK)
                sdone = 1;
            else if (rc == TLS_ERROR) {
                fprintf(stderr, "  server: %s\n", tls_conn_error(s));
                return -1;
            }
        }
    }
    return sdone && cdone ? 0 : -1;
}

static struct tls_ctx *
client_ctx(void)
{
    struct tls_client_conf conf;
    char                   ca[256], err[512];

    snprintf(ca, sizeof(ca), "%s/a.crt", tmpdir);
    memset(&conf, 0, sizeof(conf));
    conf.ca_file = ca;
    return tls_client_ctx_new(&conf, err, sizeof(err));
}

static void
test_tls_handshake_and_data(void)
{
    struct tls_ctx  *sctx = server_ctx(NULL), *cctx = client_ctx();
    int              sv[2];
    struct tls_conn *s, *c;
    char             buf[64];
    ssize_t          n = 0;

    CHECK(sctx && cctx);
    if (!sctx || !cctx)
        return;
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    s = tls_conn_server(sctx, sv[0]);
    c = tls_conn_client(cctx, sv[1], "a.test", TLS_LEVEL_VERIFY, NULL);
    CHECK(pump(s, c) == 0);
    CHECK(tls_conn_write(c, "EHLO x\r\n", 8) == 8);
    for (int i = 0; i < 10 && n <= 0; i++)
        n = tls_conn_read(s, buf, sizeof(buf));
    CHECK(n == 8 && memcmp(buf, "EHLO x\r\n", 8) == 0);
    CHECK_STR(tls_conn_facts(s)->version, "TLSv1.3");
    CHECK(tls_conn_facts(c)->peer_verified == 1);
    CHECK(strstr(tls_conn_facts(c)->peer_subject, "a.test") != NULL);
    CHECK(tls_conn_facts(s)->bits >= 128);
    pair_free(&s, &c, sv, &sctx, &cctx);
}

static void
test_tls_sni_selects_certificate(void)
{
    struct tls_ctx        *sctx = server_ctx(NULL);
    struct tls_client_conf conf = { 0 };
    struct tls_ctx        *cctx;
    char                   err[256];
    int                    sv[2];
    struct tls_conn       *s, *c;

    cctx = tls_client_ctx_new(&conf, err, sizeof(err));
    CHECK(sctx && cctx);
    if (!sctx || !cctx)
        return;
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    s = tls_conn_server(sctx, sv[0]);
    c = tls_conn_client(cctx, sv[1], "b.test", TLS_LEVEL_MAY, NULL);
    CHECK(pump(s, c) == 0);
    CHECK(strstr(tls_conn_facts(c)->peer_subject, "b.test") != NULL);
    CHECK_STR(tls_conn_facts(s)->sni, "b.test");
    pair_free(&s, &c, sv, &sctx, &cctx);
}

static void
test_tls_verify_rejects_wrong_name(void)
{
    struct tls_ctx  *sctx = server_ctx(NULL), *cctx = client_ctx();
    int              sv[2];
    struct tls_conn *s, *c;

    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    s = tls_conn_server(sctx, sv[0]);
    c = tls_conn_client(cctx, sv[1], "a.test", TLS_LEVEL_VERIFY, "other.test");
    CHECK(pump(s, c) == -1);
    pair_free(&s, &c, sv, &sctx, &cctx);
}

/* Two server contexts (as in two smtpd processes) with the same ticket keys: a session
 * from the first resumes on the second. */
static void
test_tls_ticket_resumes_across_contexts(void)
{
    struct tls_ctx  *s1 = server_ctx(NULL), *s2 = server_ctx(NULL), *cctx = client_ctx();
    uint8_t          keys[1][TLS_TICKET_KEY_LEN];
    int              sv[2];
    struct tls_conn *s, *c;
    SSL_SESSION     *sess = NULL;
    char             buf[16];

    CHECK(tls_ticket_key_new(keys[0]) == 0);
    tls_ctx_set_ticket_keys(s1, keys, 1);
    tls_ctx_set_ticket_keys(s2, keys, 1);
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    s = tls_conn_server(s1, sv[0]);
    c = tls_conn_client(cctx, sv[1], "a.test", TLS_LEVEL_MAY, NULL);
    CHECK(pump(s, c) == 0);
    /* TLS 1.3 tickets arrive after the handshake: let the client read them. */
    tls_conn_write(s, "x", 1);
    for (int i = 0; i < 10; i++)
        if (tls_conn_read(c, buf, sizeof(buf)) > 0)
            break;
    sess = tls_conn_get_session(c);
    CHECK(sess != NULL && SSL_SESSION_is_resumable(sess));
    /* OpenSSL forgets a session that was not shut down cleanly. */
    tls_conn_shutdown(c);
    tls_conn_free(&s);
    tls_conn_free(&c);
    close(sv[0]);
    close(sv[1]);

    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    s = tls_conn_server(s2, sv[0]);
    c = tls_conn_client(cctx, sv[1], "a.test", TLS_LEVEL_MAY, NULL);
    tls_conn_set_session(c, sess);
    CHECK(pump(s, c) == 0);
    CHECK(tls_conn_facts(s)->resumed == 1);
    tls_conn_free(&s);
    tls_conn_free(&c);
    close(sv[0]);
    close(sv[1]);
    SSL_SESSION_free(sess);
    tls_ctx_free(&s1);
    tls_ctx_free(&s2);
    tls_ctx_free(&cctx);
}

static void
test_tls_version_floor(void)
{
    CHECK(tls_version_parse("TLSv1.2") > 0);
    CHECK(tls_version_parse("TLSv1.3") > 0);
    CHECK(tls_version_parse(NULL) > 0);
    CHECK(tls_version_parse("TLSv1.1") == -1);
    CHECK(tls_version_parse("TLSv1") == -1);
    CHECK(tls_version_parse("SSLv3") == -1);
}

/* spki_sha256 - SHA-256 of DIR/NAME.crt's public key: its DANE-EE 3 1 1 data. */
static void
spki_sha256(const char *name, unsigned char md[32])
{
    char           path[256];
    FILE          *fp;
    X509          *x = NULL;
    unsigned char *der = NULL;
    int            len;

    memset(md, 0, 32);
    snprintf(path, sizeof(path), "%s/%s.crt", tmpdir, name);
    if ((fp = fopen(path, "r")) == NULL)
        return;
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    /* The whole SubjectPublicKeyInfo, not just the key bits X509_pubkey_digest() hashes. */
    if (x != NULL && (len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) > 0)
        EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    X509_free(x);
}

/* dane_try - a DANE client session with these records against the default certificate
 * (a.test); 0 if the handshake succeeded, -1 if it failed, -2 if no session was made. */
static int
dane_try(const char *base, const struct tls_tlsa *recs, size_t n, char *dane, size_t dlen,
         char *why, size_t wlen)
{
    struct tls_ctx        *sctx = server_ctx(NULL);
    struct tls_client_conf conf = { 0 };
    struct tls_ctx        *cctx;
    struct tls_dane        d = { .base = base, .tlsa = recs, .ntlsa = n };
    char                   err[256];
    int                    sv[2], rc = -2;
    struct tls_conn       *s, *c;

    cctx = tls_client_ctx_new(&conf, err, sizeof(err));
    if (!sctx || !cctx)
        return -3;
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    s = tls_conn_server(sctx, sv[0]);
    if ((c = tls_conn_client_dane(cctx, sv[1], &d)) != NULL) {
        rc = pump(s, c);
        snprintf(dane, dlen, "%s", rc == 0 ? tls_conn_facts(c)->dane : "");
        snprintf(why, wlen, "%s", rc == 0 ? "" : tls_conn_error(c));
    }
    pair_free(&s, &c, sv, &sctx, &cctx);
    return rc;
}

/* test_tls_dane_ee - DANE-EE 3 1 1 of the server key verifies whatever the name (RFC 7672
 * 3.1.1), a record that matches nothing fails the handshake and says so, and a set that
 * OpenSSL cannot use (a digest of the wrong length) makes no session. */
static void
test_tls_dane_ee(void)
{
    unsigned char   md[32], other[32];
    struct tls_tlsa good[2] = { { 3, 1, 1, other, 32 }, { 3, 1, 1, md, 32 } };
    struct tls_tlsa bad[1] = { { 3, 1, 1, other, 32 } };
    struct tls_tlsa broken[1] = { { 3, 1, 1, md, 31 } };
    char            dane[16], why[256];

    spki_sha256("a", md);
    memset(other, 0x5a, sizeof(other));
    CHECK(dane_try("mx.elsewhere.test", good, 2, dane, sizeof(dane), why, sizeof(why)) == 0);
    CHECK_STR(dane, "3 1 1");
    CHECK(dane_try("a.test", bad, 1, dane, sizeof(dane), why, sizeof(why)) == -1);
    CHECK(strstr(why, "no matching DANE TLSA records") != NULL);
    CHECK(dane_try("a.test", broken, 1, dane, sizeof(dane), why, sizeof(why)) == -2);
}

/* test_tls_level_names - the level names of smtp_tls_security_level, in enum order. */
static void
test_tls_level_names(void)
{
    static const char *const names[] = { "none", "may", "encrypt", "verify", "dane",
                                         "dane-only" };
    enum tls_level           l;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        CHECK(tls_level_parse(names[i], &l) == 0 && l == (enum tls_level)i);
    CHECK(tls_level_parse("DANE-Only", &l) == 0 && l == TLS_LEVEL_DANE_ONLY);
    CHECK(tls_level_parse("secure", &l) == -1);
    CHECK(tls_level_parse("", &l) == -1);
}

int
main(void)
{
    char cmd[300];

    if (mkdtemp(tmpdir) == NULL)
        return 2;
    make_cert("a", "a.test");
    make_cert("b", "b.test");
    TEST_RUN(test_tls_handshake_and_data);
    TEST_RUN(test_tls_sni_selects_certificate);
    TEST_RUN(test_tls_verify_rejects_wrong_name);
    TEST_RUN(test_tls_ticket_resumes_across_contexts);
    TEST_RUN(test_tls_version_floor);
    TEST_RUN(test_tls_dane_ee);
    TEST_RUN(test_tls_level_names);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_END();
}
