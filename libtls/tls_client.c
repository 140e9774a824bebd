/* tls_client - client contexts for the outbound agent: CA store and verification levels.
 *
 * At TLS_LEVEL_VERIFY the chain must verify against the CA store and the certificate must
 * name the destination (OpenSSL's host check, wildcards in the leftmost label only); at
 * ENCRYPT and MAY the session is encrypted but unauthenticated, and the facts say so.
 * With DANE (tls_conn_client_dane) OpenSSL's own RFC 7671 support decides: the TLSA
 * records are the only trust anchors, DANE-EE(3) matches the leaf with no name check
 * (RFC 7672 3.1.1), DANE-TA(2) a certificate in the chain and then the reference names. */
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
    /* Cheap until a session enables DANE: it only registers the digests TLSA uses. */
    if (SSL_CTX_dane_enable(ctx) <= 0) {
        tls_err(err, errlen, "SSL_CTX_dane_enable");
        goto fail;
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

/* tls_client_dane - DANE on a new session: -1 if OpenSSL can use none of the records. */
static int
tls_client_dane(SSL *ssl, const struct tls_dane *d)
{
    size_t usable = 0;

    if (SSL_dane_enable(ssl, d->base) <= 0)
        return -1;
    SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    for (size_t i = 0; i < d->nnames; i++)
        if (!SSL_add1_host(ssl, d->names[i]))
            return -1;
    for (size_t i = 0; i < d->ntlsa; i++) {
        const struct tls_tlsa *r = &d->tlsa[i];

        /* < 0: malformed (a digest of the wrong length), 0: unusable; skip either. */
        if (SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype, r->data, r->len) > 0)
            usable++;
        ERR_clear_error();
    }
    return usable > 0 ? 0 : -1;
}

/* tls_client_new - a client session at a level, or with DANE when dane is not NULL. */
static struct tls_conn *
tls_client_new(struct tls_ctx *t, int fd, const char *sni, enum tls_level level,
               const char *match_name, const struct tls_dane *dane)
{
    SSL *ssl = SSL_new(t->ssl[0]);

    if (ssl == NULL || !SSL_set_fd(ssl, fd))
        goto fail;
    if (sni && *sni && !SSL_set_tlsext_host_name(ssl, sni))
        goto fail;
    if (dane != NULL) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (tls_client_dane(ssl, dane) == -1)
            goto fail;
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    } else if (level >= TLS_LEVEL_VERIFY) {
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

struct tls_conn *
tls_conn_client(struct tls_ctx *t, int fd, const char *sni, enum tls_level level,
                const char *match_name)
{
    /* A DANE level without records here is as strict as verify, never weaker. */
    return tls_client_new(t, fd, sni, level, match_name, NULL);
}

struct tls_conn *
tls_conn_client_dane(struct tls_ctx *t, int fd, const struct tls_dane *d)
{
    return tls_client_new(t, fd, d->base, TLS_LEVEL_DANE, NULL, d);
}
