/* tls - sessions: the non-blocking handshake, read and write, and peer facts.
 *
 * Shared by server and client sessions (tls_server.c and tls_client.c make the contexts).
 * Every OpenSSL call's failure is turned into TLS_WANT_* or TLS_ERROR with a readable
 * message kept in the session, and the thread's error queue is always left empty so one
 * session's failure cannot be reported against another's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "buf.h"
#include "tls_int.h"

void
tls_err(char *buf, size_t len, const char *what)
{
    unsigned long e = ERR_get_error();
    char          detail[200];

    if (e == 0) {
        snprintf(buf, len, "%s", what);
    } else {
        ERR_error_string_n(e, detail, sizeof(detail));
        snprintf(buf, len, "%s: %s", what, detail);
    }
    ERR_clear_error();
}

int
tls_level_parse(const char *name, enum tls_level *level)
{
    static const char *const names[] = { "none", "may", "encrypt", "verify", "dane",
                                         "dane-only" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i]) == 0) {
            *level = (enum tls_level)i;     /* the enum is in the same order */
            return 0;
        }
    return -1;
}

int
tls_version_parse(const char *name)
{
    if (name == NULL || *name == '\0' || strcmp(name, "TLSv1.2") == 0)
        return TLS1_2_VERSION;
    if (strcmp(name, "TLSv1.3") == 0)
        return TLS1_3_VERSION;
    return -1;
}

int
tls_ctx_common(SSL_CTX *ctx, const char *min_version, char *err, size_t errlen)
{
    int v = tls_version_parse(min_version);

    if (v == -1) {
        snprintf(err, errlen, "unsupported minimum TLS version \"%s\" (TLSv1.2 or TLSv1.3)",
                 min_version);
        return -1;
    }
    /* Never below 1.2, whatever the system-wide OpenSSL configuration says. */
    if (!SSL_CTX_set_min_proto_version(ctx, v)) {
        tls_err(err, errlen, "SSL_CTX_set_min_proto_version");
        return -1;
    }
    /* CLEANSE_PLAINTEXT: decrypted records (AUTH lines) are wiped from OpenSSL's buffers. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                        SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_CLEANSE_PLAINTEXT);
    /* Release idle buffers: thousands of idle sessions should cost little memory. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    return 0;
}

struct tls_conn *
tls_conn_wrap(SSL *ssl, int fd, int client)
{
    struct tls_conn *c = xcalloc(1, sizeof(*c));

    c->ssl = ssl;
    c->fd = fd;
    c->client = client;
    return c;
}

void
tls_conn_free(struct tls_conn **cp)
{
    struct tls_conn *c = *cp;

    if (c == NULL)
        return;
    SSL_free(c->ssl);
    free(c);
    *cp = NULL;
}

/* tls_conn_result - map an OpenSSL return value to TLS_WANT_* / TLS_ERROR / 0 (EOF). */
static int
tls_conn_result(struct tls_conn *c, int rc, const char *what)
{
    int e = SSL_get_error(c->ssl, rc);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            snprintf(c->error, sizeof(c->error), "%s: %s", what,
                     errno ? strerror(errno) : "connection closed by peer");
            return TLS_ERROR;
        }
        /* fall through */
    default:
        tls_err(c->error, sizeof(c->error), what);
        return TLS_ERROR;
    }
}

/* tls_conn_verify_why - a client handshake failed: if the certificate did not verify, say
 * why ("No matching DANE TLSA records", "hostname mismatch"), which OpenSSL's error queue
 * does not. */
static void
tls_conn_verify_why(struct tls_conn *c)
{
    long   v = SSL_get_verify_result(c->ssl);
    size_t len = strlen(c->error);

    if (v != X509_V_OK && len + 4 < sizeof(c->error))
        snprintf(c->error + len, sizeof(c->error) - len, " (%s)",
                 X509_verify_cert_error_string(v));
}

int
tls_conn_handshake(struct tls_conn *c)
{
    int rc;

    ERR_clear_error();
    errno = 0;
    rc = c->client ? SSL_connect(c->ssl) : SSL_accept(c->ssl);
    if (rc == 1)
        return TLS_OK;
    rc = tls_conn_result(c, rc, "handshake");
    if (rc == TLS_ERROR && c->client)
        tls_conn_verify_why(c);
    return rc == 0 ? TLS_ERROR : rc;
}

ssize_t
tls_conn_read(struct tls_conn *c, void *p, size_t len)
{
    size_t got = 0;
    int    rc;

    ERR_clear_error();
    errno = 0;
    rc = SSL_read_ex(c->ssl, p, len, &got);
    if (rc == 1)
        return (ssize_t)got;
    return tls_conn_result(c, 0, "read");
}

ssize_t
tls_conn_write(struct tls_conn *c, const void *p, size_t len)
{
    size_t done = 0;
    int    rc;

    ERR_clear_error();
    errno = 0;
    rc = SSL_write_ex(c->ssl, p, len, &done);
    if (rc == 1)
        return (ssize_t)done;
    rc = tls_conn_result(c, 0, "write");
    return rc == 0 ? TLS_ERROR : rc;
}

size_t
tls_conn_pending(struct tls_conn *c)
{
    int n = SSL_pending(c->ssl);

    return n > 0 ? (size_t)n : 0;
}

void
tls_conn_shutdown(struct tls_conn *c)
{
    if (c->shut)
        return;
    c->shut = 1;
    ERR_clear_error();
    (void)SSL_shutdown(c->ssl);
    ERR_clear_error();
}

const char *
tls_conn_error(const struct tls_conn *c)
{
    return c->error[0] ? c->error : "unknown TLS error";
}

/* tls_fingerprint - SHA-256 of the certificate as AA:BB:...; "" on failure. */
static void
tls_fingerprint(X509 *cert, char *out, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int  n = 0;
    size_t        off = 0;

    out[0] = '\0';
    if (!X509_digest(cert, EVP_sha256(), md, &n))
        return;
    for (unsigned int i = 0; i < n && off + 3 < len; i++)
        off += (size_t)snprintf(out + off, len - off, i ? ":%02X" : "%02X", md[i]);
}

const struct tls_facts *
tls_conn_facts(struct tls_conn *c)
{
    const SSL_CIPHER *cipher;
    X509             *peer;

    if (c->facts_ready)
        return &c->facts;
    c->facts_ready = 1;
    c->facts.version = SSL_get_version(c->ssl);
    cipher = SSL_get_current_cipher(c->ssl);
    c->facts.cipher = cipher ? SSL_CIPHER_get_name(cipher) : "none";
    c->facts.bits = cipher ? SSL_CIPHER_get_bits(cipher, NULL) : 0;
    c->facts.resumed = SSL_session_reused(c->ssl);
    c->facts.sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
    peer = SSL_get0_peer_certificate(c->ssl);
    if (peer) {
        X509_NAME_oneline(X509_get_subject_name(peer), c->facts.peer_subject,
                          sizeof(c->facts.peer_subject));
        tls_fingerprint(peer, c->facts.peer_fingerprint, sizeof(c->facts.peer_fingerprint));
        c->facts.peer_verified = SSL_get_verify_result(c->ssl) == X509_V_OK;
    }
    if (c->client && c->facts.peer_verified) {
        uint8_t u = 0, sel = 0, mt = 0;

        if (SSL_get0_dane_tlsa(c->ssl, &u, &sel, &mt, NULL, NULL) >= 0)
            snprintf(c->facts.dane, sizeof(c->facts.dane), "%u %u %u", u, sel, mt);
    }
    return &c->facts;
}

SSL_SESSION *
tls_conn_get_session(struct tls_conn *c)
{
    return SSL_get1_session(c->ssl);
}

void
tls_conn_set_session(struct tls_conn *c, SSL_SESSION *sess)
{
    if (sess)
        SSL_set_session(c->ssl, sess);
}

/* tls_default_ca_file - see tls.h. */
const char *
tls_default_ca_file(void)
{
    const char *env = getenv(X509_get_default_cert_file_env());

    return env != NULL && *env != '\0' ? env : X509_get_default_cert_file();
}
