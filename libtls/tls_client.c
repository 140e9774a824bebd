/* tls_client - client contexts for the outbound agent: CA store and verification levels.
 *
 * At TLS_LEVEL_VERIFY the chain must verify against the CA store and the certificate must
 * name the destination (OpenSSL's host check, wildcards in the leftmost label only); at
 * ENCRYPT and MAY the session is encrypted but unauthenticated, and the facts say so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "tls_int.h"

struct tls_ctx *
tls_client_ctx_new(const struct tls_client_conf *conf, char *err, size_t errlen)
{
    SSL_CTX        *ctx = SSL_CTX_new(TLS_client_method());
    struct tls_ctx *t;
    int             ok;

    if (ctx == NULL) {
        tls_err(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    if (tls_ctx_common(ctx, conf->min_version, err, errlen) == -1)
        goto fail;
    if (conf->ca_file || conf->ca_path)
        ok = SSL_CTX_load_verify_locations(ctx, conf->ca_file, conf->ca_path);
    else
        ok = SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        tls_err(err, errlen, "loading the CA store");
        goto fail;
    }
    if (conf->cert_file && *conf->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, conf->cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, conf->key_file, SSL_FILETYPE_PEM) != 1) {
            tls_err(err, errlen, "client certificate");
            goto fail;
        }
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    t = xcalloc(1, sizeof(*t));
    t->ssl[0] = ctx;
    t->nssl = 1;
    return t;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct tls_conn *
tls_conn_client(struct tls_ctx *t, int fd, const char *sni, enum tls_level level,
                const char *match_name)
{
    SSL *ssl = SSL_new(t->ssl[0]);

    if (ssl == NULL || !SSL_set_fd(ssl, fd))
        goto fail;
    if (sni && *sni && !SSL_set_tlsext_host_name(ssl, sni))
        goto fail;
    if (level >= TLS_LEVEL_VERIFY) {
        const char *name = match_name ? match_name : sni;

        if (name == NULL || !SSL_set1_host(ssl, name))
            goto fail;
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    } else {
        /* Opportunistic: record the verification result, never fail on it. */
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    }
    SSL_set_connect_state(ssl);
    return tls_conn_wrap(ssl, fd, 1);
fail:
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
}
