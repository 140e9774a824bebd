/* qmgr_route - where a recipient goes: transport, next hop and TLS level.
 *
 * A pure function of the recipient, the settings and two lookup tables, so the unit tests
 * drive it with tables in memory; qmgr passes map_lookup() over the transport_map and
 * smtp_tls_policy_map it opened before chroot. The order of the decision:
 *   1. transport_map: the full address, then the domain, then each parent domain written
 *      `.example` (so `.example` matches `a.b.example`, not `example` itself);
 *      values: `local`, `smtp:[host]:port`, `smtp:[host]`, `smtp:host`, `smtp:host:port`,
 *      `smtp:` or `smtp` (MX of the recipient domain), `lmtp:unix:/path`,
 *      `lmtp:[host]:port`, `lmtp:host:port`;
 *   2. the domain is one of local_domains (or the address has none): local;
 *   3. relayhost, if set (`[host]:port`, `[host]`, `host`, `host:port`);
 *   4. smtp to the recipient domain (MX lookup by the smtp agent; a domain literal
 *      `[192.0.2.1]` becomes `[192.0.2.1]:25`).
 * The next hop is in the IPC_RELAY form: "domain" or "host:port" (MX), "[host]:port" (no MX),
 * "unix:/path" (LMTP). The TLS level: smtp_tls_policy_map for the recipient domain, its
 * parents (`.example`), then the next-hop host; else the default level; LMTP over a UNIX
 * socket is always none. A lookup error or an entry that does not parse is a temporary
 * failure (the recipient is deferred, never sent somewhere else or in clear). */
#ifndef POSTERN_QMGR_ROUTE_H
#define POSTERN_QMGR_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#define QMGR_ROUTE_HOP_MAX  300
#define QMGR_ROUTE_ERR_MAX  200

enum qmgr_route_kind {
    QMGR_ROUTE_LOCAL = 0,
    QMGR_ROUTE_SMTP,
    QMGR_ROUTE_LMTP,
};

/* A lookup table: 1 found (value in val), 0 not found, -1 error (map_lookup's contract). */
typedef int (*qmgr_route_lookup_fn)(void *arg, const char *key, char *val, size_t vallen);

struct qmgr_route_conf {
    char *const          *local_domains;
    size_t                nlocal;
    const char           *relayhost;        /* "" or NULL: none */
    qmgr_route_lookup_fn  transport;        /* NULL: no transport_map */
    void                 *transport_arg;
    qmgr_route_lookup_fn  tls_policy;       /* NULL: no smtp_tls_policy_map */
    void                 *tls_policy_arg;
    uint32_t              tls_level;        /* enum tls_level: smtp_tls_security_level */
};

struct qmgr_route {
    enum qmgr_route_kind kind;
    const char          *transport;         /* "local", "smtp" or "lmtp" */
    char                 nexthop[QMGR_ROUTE_HOP_MAX];  /* "" for local */
    uint32_t             tls_level;         /* enum tls_level; 0 for local */
    char                 error[QMGR_ROUTE_ERR_MAX];    /* why, when -1 is returned */
};

/* qmgr_route_resolve - route one recipient. 0: *out is filled in; -1: temporary failure,
 * out->error says why (for the log and the recipient's status text). */
int qmgr_route_resolve(const struct qmgr_route_conf *, const char *rcpt, struct qmgr_route *out);

/* qmgr_route_parse - parse a transport_map value for a recipient in domain into *out
 * (kind, transport, nexthop; the TLS level is left alone). 0 or -1 (out->error). */
int qmgr_route_parse(const char *value, const char *domain, struct qmgr_route *out);

/* qmgr_route_parse_hop - normalise a host next hop: "[h]" -> "[h]:port", "[h]:p", "h",
 * "h:p" are kept. -1 if it is malformed. */
int qmgr_route_parse_hop(const char *hop, unsigned default_port, char *out, size_t outlen);

/* qmgr_route_parse_level - "none", "may", "encrypt", "verify", "dane", "dane-only" ->
 * enum tls_level; -1. */
int qmgr_route_parse_level(const char *s, uint32_t *level);

#endif
