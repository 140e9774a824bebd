/* tls_server - server contexts: certificates, SNI, client certificates, session tickets.
 *
 * One SSL_CTX per certificate, all configured alike; the first is the default and the
 * servername callback switches a session to the context whose certificate matches the SNI
 * name. Session tickets are encrypted with keys the caller gives (master makes them and
 * sends them to every smtpd), so a client can resume with any smtpd process; the newest key
 * encrypts, older ones still decrypt until the caller drops them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "tls_int.h"

/* Forward secrecy and AEAD only; TLS 1.3 suites are OpenSSL's defaults. */
#define TLS_DEFAULT_CIPHERS \
    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS:!SHA1"

static int tls_ex_index = -1;   /* SSL_CTX ex_data slot -> struct tls_ctx */

/* tls_sni_select - servername callback: move the session to the matching certificate. */
static int
tls_sni_select(SSL *ssl, int *alert, void *arg)
{
    struct tls_ctx *t = arg;
    const char     *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    (void)alert;
    if (name == NULL || t->nssl < 2)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < t->nssl; i++) {
        X509 *cert = SSL_CTX_get0_certificate(t->ssl[i]);

        if (cert && X509_check_host(cert, name, 0, 0, NULL) == 1) {
            if (i > 0)
                SSL_set_SSL_CTX(ssl, t->ssl[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK;      /* unknown name: the default certificate */
}

/* tls_ticket_cb - encrypt a new ticket with key 0, or find the key a ticket names. */
static int
tls_ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
              EVP_MAC_CTX *hctx, int enc)
{
    SSL_CTX                *sctx = SSL_get_SSL_CTX(ssl);
    struct tls_ctx         *t = SSL_CTX_get_ex_data(sctx, tls_ex_index);
    struct tls_ticket_keys *k = t ? t->tickets : NULL;
    const uint8_t          *key = NULL;
    OSSL_PARAM              params[3];
    size_t                  i;

    if (k == NULL || k->n == 0)
        return 0;                  /* no keys: issue no ticket, accept none */
    if (enc) {
        key = k->key[0];
        memcpy(key_name, key, 16);
        if (RAND_bytes(iv, 16) != 1)
            return -1;
    } else {
        for (i = 0; i < k->n && key == NULL; i++)
            if (memcmp(key_name, k->key[i], 16) == 0)
                key = k->key[i];
        if (key == NULL)
            return 0;              /* unknown or retired key: full handshake */
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)(key + 16), 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_CTX_set_params(hctx, params))
        return -1;
    if (enc)
        return EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key + 48, iv) ? 1 : -1;
    if (!EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key + 48, iv))
        return -1;
    return key == k->key[0] ? 1 : 2;   /* 2: ticket from an older key, issue a new one */
}

/* tls_server_ssl_ctx - one context for one certificate. */
static SSL_CTX *
tls_server_ssl_ctx(const struct tls_server_conf *conf, const struct tls_cert *cert,
                   char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char     what[600];

    if (ctx == NULL) {
        tls_err(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    if (tls_ctx_common(ctx, conf->min_version, err, errlen) == -1)
        goto fail;
    if (!SSL_CTX_set_cipher_list(ctx, conf->ciphers ? conf->ciphers : TLS_DEFAULT_CIPHERS)) {
        tls_err(err, errlen, "bad cipher list");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert->cert_file) != 1) {
        snprintf(what, sizeof(what), "certificate %s", cert->cert_file);
        tls_err(err, errlen, what);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cert->key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(what, sizeof(what), "private key %s", cert->key_file);
        tls_err(err, errlen, what);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof(what), "key %s does not match %s", cert->key_file,
                 cert->cert_file);
        tls_err(err, errlen, what);
        goto fail;
    }
    if (conf->client_ca_file && *conf->client_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, conf->client_ca_file, NULL) != 1) {
            snprintf(what, sizeof(what), "client CA file %s", conf->client_ca_file);
            tls_err(err, errlen, what);
            goto fail;
        }
        /* Ask, never require: an MTA must still take mail from clients without one. */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_verify_depth(ctx, 5);
        SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(conf->client_ca_file));
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    /* Resumption is stateless (tickets) so it works across processes; no session cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"postern", 7);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);    /* until tls_ctx_set_ticket_keys() */
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct tls_ctx *
tls_server_ctx_new(const struct tls_server_conf *conf, char *err, size_t errlen)
{
    struct tls_ctx *t;

    if (conf->ncerts == 0 || conf->ncerts > TLS_MAX_SNI_CERTS) {
        snprintf(err, errlen, "need 1 to %d certificates", TLS_MAX_SNI_CERTS);
        return NULL;
    }
    if (tls_ex_index == -1)
        tls_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    t = xcalloc(1, sizeof(*t));
    t->server = 1;
    t->tickets = xcalloc(1, sizeof(*t->tickets));
    for (size_t i = 0; i < conf->ncerts; i++) {
        SSL_CTX *ctx = tls_server_ssl_ctx(conf, &conf->certs[i], err, errlen);

        if (ctx == NULL) {
            tls_ctx_free(&t);
            return NULL;
        }
        SSL_CTX_set_ex_data(ctx, tls_ex_index, t);
        t->ssl[t->nssl++] = ctx;
    }
    SSL_CTX_set_tlsext_servername_callback(t->ssl[0], tls_sni_select);
    SSL_CTX_set_tlsext_servername_arg(t->ssl[0], t);
    return t;
}

void
tls_ctx_free(struct tls_ctx **tp)
{
    struct tls_ctx *t = *tp;

    if (t == NULL)
        return;
    /* Sessions still open hold their own references to the SSL_CTX objects; they keep
     * working, but no longer find ticket keys through ex_data. */
    for (size_t i = 0; i < t->nssl; i++) {
        if (t->server)
            SSL_CTX_set_ex_data(t->ssl[i], tls_ex_index, NULL);
        SSL_CTX_free(t->ssl[i]);
    }
    if (t->tickets) {
        explicit_bzero(t->tickets, sizeof(*t->tickets));
        free(t->tickets);
    }
    free(t);
    *tp = NULL;
}

int
tls_ctx_set_ticket_keys(struct tls_ctx *t, const uint8_t (*keys)[TLS_TICKET_KEY_LEN], size_t n)
{
    if (!t->server || n > TLS_MAX_TICKET_KEYS)
        return -1;
    explicit_bzero(t->tickets, sizeof(*t->tickets));
    for (size_t i = 0; i < n; i++)
        memcpy(t->tickets->key[i], keys[i], TLS_TICKET_KEY_LEN);
    t->tickets->n = n;
    for (size_t i = 0; i < t->nssl; i++) {
        if (n == 0)
            SSL_CTX_set_options(t->ssl[i], SSL_OP_NO_TICKET);
        else
            SSL_CTX_clear_options(t->ssl[i], SSL_OP_NO_TICKET);
    }
    return 0;
}

int
tls_ticket_key_new(uint8_t key[TLS_TICKET_KEY_LEN])
{
    return RAND_priv_bytes(key, TLS_TICKET_KEY_LEN) == 1 ? 0 : -1;
}

struct tls_conn *
tls_conn_server(struct tls_ctx *t, int fd)
{
    SSL *ssl = SSL_new(t->ssl[0]);

    if (ssl == NULL || !SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return tls_conn_wrap(ssl, fd, 0);
}
