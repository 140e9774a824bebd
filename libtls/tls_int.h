/* tls_int - what tls.c, tls_server.c and tls_client.c share; not for other modules. */
#ifndef POSTERN_TLS_INT_H
#define POSTERN_TLS_INT_H

#include <openssl/ssl.h>

#include "tls.h"

#define TLS_MAX_TICKET_KEYS 4
#define TLS_MAX_SNI_CERTS   32

struct tls_ticket_keys {
    int     refs;
    size_t  n;
    uint8_t key[TLS_MAX_TICKET_KEYS][TLS_TICKET_KEY_LEN];
};

struct tls_ctx {
    int                     server;
    SSL_CTX                *ssl[TLS_MAX_SNI_CERTS];  /* servers: one per certificate */
    size_t                  nssl;
    struct tls_ticket_keys *tickets;                 /* shared by every SSL_CTX above */
};

struct tls_conn {
    SSL             *ssl;
    int              fd;
    int              client;
    int              shut;
    struct tls_facts facts;
    int              facts_ready;
    char             error[256];
};

/* tls_err - the OpenSSL error queue (or what) as one line in buf; clears the queue. */
void tls_err(char *buf, size_t len, const char *what);
/* tls_ctx_common - options every context gets: floor, no compression, no renegotiation. */
int  tls_ctx_common(SSL_CTX *, const char *min_version, char *err, size_t errlen);
struct tls_conn *tls_conn_wrap(SSL *, int fd, int client);

#endif
