/* tls - the one TLS module, over OpenSSL 3.
 *
 * Server contexts (certificate chains, several certificates chosen by SNI, optional client
 * certificate request, TLS 1.2 floor, server cipher preference, stateless session tickets
 * whose keys the caller supplies so every smtpd process can resume every other's sessions)
 * and client contexts (CA store, verification levels, DANE) produce struct tls_conn objects with
 * one non-blocking API: handshake, read and write return TLS_WANT_READ / TLS_WANT_WRITE
 * when the socket must become ready first, so they plug into the ev loop; the caller owns
 * the socket and the timeouts. smtpd uses it for STARTTLS and SMTPS, the smtp agent for
 * outbound STARTTLS. A context is reference-counted by OpenSSL, so replacing a context on
 * reload leaves established sessions untouched. */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Results of tls_conn_handshake(), and the failure codes of read and write. */
#define TLS_OK          0
#define TLS_WANT_READ  (-2)
#define TLS_WANT_WRITE (-3)
#define TLS_ERROR      (-1)

/* Client-side security levels, as in Postfix's smtp_tls_security_level. */
enum tls_level {
    TLS_LEVEL_NONE = 0,     /* no TLS */
    TLS_LEVEL_MAY,          /* TLS if offered, no authentication, plaintext fallback */
    TLS_LEVEL_ENCRYPT,      /* TLS required, no authentication */
    TLS_LEVEL_VERIFY,       /* TLS required, certificate chain and name verified */
    TLS_LEVEL_DANE,         /* RFC 7672: DANE if secure usable TLSA records, else may */
    TLS_LEVEL_DANE_ONLY,    /* DANE or nothing (defer) */
};

/* One TLSA record (RFC 6698) for tls_conn_client_dane(); data is the caller's. */
struct tls_tlsa {
    uint8_t              usage, selector, mtype;
    const unsigned char *data;
    size_t               len;
};

/* A DANE-authenticated session (RFC 7672): the TLSA records of the server's host, the TLSA
 * base domain (that host name: it is the SNI and the first reference name) and more
 * reference names for DANE-TA(2) (the next-hop domain). DANE-EE(3) checks no name. */
struct tls_dane {
    const char            *base;
    const char *const     *names;
    size_t                 nnames;
    const struct tls_tlsa *tlsa;
    size_t                 ntlsa;
};

#define TLS_TICKET_KEY_LEN  80   /* 16 name + 32 HMAC key + 32 AES key */

struct tls_cert {
    const char *cert_file;  /* PEM chain: leaf first */
    const char *key_file;   /* PEM private key */
};

struct tls_server_conf {
    const struct tls_cert *certs;     /* certs[0] is the default; others chosen by SNI */
    size_t                 ncerts;
    const char            *min_version;   /* "TLSv1.2" (default) or "TLSv1.3" */
    const char            *ciphers;       /* TLS 1.2 cipher list; NULL: a sane default */
    const char            *client_ca_file;/* request a client certificate, verify with this */
};

struct tls_client_conf {
    const char *ca_file;        /* NULL: the system store */
    const char *ca_path;
    const char *min_version;    /* as above */
    const char *cert_file;      /* optional client certificate */
    const char *key_file;
};

/* Facts about an established session, for logs and Received: headers. */
struct tls_facts {
    const char *version;        /* "TLSv1.3" */
    const char *cipher;         /* "TLS_AES_256_GCM_SHA384" */
    int         bits;
    int         resumed;        /* 1: session ticket accepted */
    const char *sni;            /* server name the client asked for, or NULL */
    char        peer_subject[256];      /* "" without a peer certificate */
    char        peer_fingerprint[96];   /* SHA-256, hex with colons, or "" */
    int         peer_verified;  /* chain (and name, for clients) verified */
    char        dane[16];       /* DANE: the matching TLSA record "3 1 1", or "" */
};

struct tls_ctx;
struct tls_conn;

/* tls_server_ctx_new - load certificates and keys (call before dropping privileges); NULL
 * with the reason in err. */
struct tls_ctx  *tls_server_ctx_new(const struct tls_server_conf *, char *err, size_t errlen);
struct tls_ctx  *tls_client_ctx_new(const struct tls_client_conf *, char *err, size_t errlen);
void             tls_ctx_free(struct tls_ctx **);
/* tls_ctx_set_ticket_keys - keys[0] encrypts new tickets; every key decrypts. n = 0 turns
 * tickets off. Keys are copied and the caller's copy may be wiped. */
int              tls_ctx_set_ticket_keys(struct tls_ctx *,
                                         const uint8_t (*keys)[TLS_TICKET_KEY_LEN], size_t n);
/* tls_ticket_key_new - fresh random key material for tls_ctx_set_ticket_keys(). */
int              tls_ticket_key_new(uint8_t key[TLS_TICKET_KEY_LEN]);

/* tls_conn_server - a server session on a connected socket; nothing is read yet. */
struct tls_conn *tls_conn_server(struct tls_ctx *, int fd);
/* tls_conn_client - a client session; sni may be NULL; with TLS_LEVEL_VERIFY the peer must
 * present a chain that verifies and a name matching match_name (or sni if NULL). */
struct tls_conn *tls_conn_client(struct tls_ctx *, int fd, const char *sni,
                                 enum tls_level level, const char *match_name);
/* tls_conn_client_dane - a client session that must verify by DANE: the handshake fails
 * unless a TLSA record matches (and, for DANE-TA, a reference name). NULL if no record is
 * usable to OpenSSL or the session cannot be made. */
struct tls_conn *tls_conn_client_dane(struct tls_ctx *, int fd, const struct tls_dane *);
void             tls_conn_free(struct tls_conn **);   /* does not close the socket */

/* tls_conn_handshake - TLS_OK once established, TLS_WANT_*, or TLS_ERROR (see error). */
int              tls_conn_handshake(struct tls_conn *);
/* tls_conn_read - bytes read (> 0), 0 at a clean close, or TLS_WANT_* / TLS_ERROR. */
ssize_t          tls_conn_read(struct tls_conn *, void *, size_t);
/* tls_conn_write - bytes written (> 0) or TLS_WANT_* / TLS_ERROR. Retry with the same
 * bytes after a WANT. */
ssize_t          tls_conn_write(struct tls_conn *, const void *, size_t);
/* tls_conn_pending - bytes already decrypted and buffered: read them before waiting on the
 * socket, or they would wait for the peer's next packet. */
size_t           tls_conn_pending(struct tls_conn *);
/* tls_conn_shutdown - send close_notify once (best effort, non-blocking). */
void             tls_conn_shutdown(struct tls_conn *);
const struct tls_facts *tls_conn_facts(struct tls_conn *);
/* Client-side session reuse: get a reference to offer next time (free with
 * SSL_SESSION_free), and offer one before the handshake. OpenSSL marks a session not
 * resumable when its connection is freed without tls_conn_shutdown(). */
struct ssl_session_st;
struct ssl_session_st *tls_conn_get_session(struct tls_conn *);
void             tls_conn_set_session(struct tls_conn *, struct ssl_session_st *);
const char      *tls_conn_error(const struct tls_conn *);  /* last error, for the log */

/* tls_level_parse - "none", "may", "encrypt", "verify", "dane", "dane-only" (any case) ->
 * the level; -1 for anything else. For qmgr (smtp_tls_security_level, smtp_tls_policy_map
 * values) and postern check. */
int              tls_level_parse(const char *name, enum tls_level *level);
/* tls_version_parse - "TLSv1.2" -> the OpenSSL constant; -1 for anything below 1.2. */
int              tls_version_parse(const char *name);
/* tls_default_ca_file - the system CA bundle a client context with no ca_file loads
 * ($SSL_CERT_FILE, else OpenSSL's default): master watches it for the smtp agent. */
const char      *tls_default_ca_file(void);

#endif
