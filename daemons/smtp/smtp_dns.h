/* smtp_dns - routing facts without I/O: next-hop syntax, MX records, ordering, addresses,
 * which TLSA records DANE may use.
 *
 * Pure functions over strings and DNS record data (as libunbound hands it over: rdata in
 * wire format, names uncompressed; decoded with libcommon/dns_wire), so the rules are
 * unit-tested without a resolver (tests/unit/smtp_dns_test.c): MX by preference with equal
 * preferences shuffled, the null MX of RFC 7505, the TLSA usages SMTP allows (RFC 7672).
 * libcommon/dns.c does the asking;
 * smtp_session.c uses the answers. */
#ifndef POSTERN_SMTP_DNS_H
#define POSTERN_SMTP_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns_wire.h"
#include "tls.h"

#define SMTP_DNS_NAME_MAX  DNS_NAME_MAX
#define SMTP_DNS_MX_MAX    16          /* MX hosts tried per delivery at most */
#define SMTP_DNS_TLSA_MAX  16          /* TLSA records used per host at most */

/* Kinds of next hop. */
enum smtp_nexthop_kind {
    SMTP_NH_MX = 0,                    /* "domain" or "domain:port": MX lookup */
    SMTP_NH_HOST,                      /* "[host]:port": A/AAAA (or a literal), no MX */
    SMTP_NH_UNIX,                      /* "unix:/path": LMTP over a UNIX socket */
};

struct smtp_nexthop {
    enum smtp_nexthop_kind kind;
    char                   host[SMTP_DNS_NAME_MAX];   /* domain, host or IP literal */
    unsigned               port;
    char                   path[108];                 /* SMTP_NH_UNIX */
};

struct smtp_mx {
    char     host[SMTP_DNS_NAME_MAX];
    unsigned pref;
};

/* One address to connect to. */
struct smtp_addr {
    char                    host[SMTP_DNS_NAME_MAX];  /* name for logs, SNI and verify */
    char                    ip[128];                  /* printable address or the path */
    unsigned                port;
    struct sockaddr_storage sa;
    socklen_t               salen;
};

/* smtp_dns_nexthop_parse - "[host]:port", "[1.2.3.4]:port", "[ipv6:::1]:port", "host",
 * "host:port", "unix:/path"; the default port is 25 (24 for LMTP). -1 if malformed. */
int  smtp_dns_nexthop_parse(const char *s, int lmtp, struct smtp_nexthop *);

/* smtp_dns_mx_parse - one MX rdata. -1 if malformed. */
int  smtp_dns_mx_parse(const unsigned char *rdata, size_t len, struct smtp_mx *);

/* smtp_dns_mx_order - sort by preference; hosts of equal preference in random order
 * (rnd(arg) gives random numbers), duplicates dropped. Returns the new count. */
size_t smtp_dns_mx_order(struct smtp_mx *, size_t n, uint32_t (*rnd)(void *), void *arg);
/* smtp_dns_mx_null - 1 if the set is a null MX (RFC 7505: one record, "."). Otherwise
 * null entries mixed with real ones are dropped by smtp_dns_mx_clean(). */
int    smtp_dns_mx_null(const struct smtp_mx *, size_t n);
size_t smtp_dns_mx_clean(struct smtp_mx *, size_t n);

/* smtp_dns_literal - host as an IPv4 or IPv6 literal ("1.2.3.4", "ipv6:::1", "::1"). 0 if it
 * is one (a filled in), -1 if not. */
int  smtp_dns_literal(const char *host, unsigned port, struct smtp_addr *a);
/* smtp_dns_addr - an A (4 octets) or AAAA (16 octets) rdata as an address. -1: malformed. */
int  smtp_dns_addr(int rrtype, const unsigned char *rdata, size_t len, const char *host,
                   unsigned port, struct smtp_addr *a);

/* smtp_dns_tlsa_usable - of n TLSA rdata, those SMTP may use (RFC 7672 3.1): DANE-TA(2)
 * and DANE-EE(3), selector Cert(0) or SPKI(1), matching type Full(0), SHA2-256(1) of 32
 * octets or SHA2-512(2) of 64. PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP, unknown
 * values and malformed records are skipped. out[i].data points into the rdata. Returns how
 * many (at most max): 0 of n > 0 means "records, but none usable". */
size_t smtp_dns_tlsa_usable(unsigned char *const *rdata, const int *len, size_t n,
                            struct tls_tlsa *out, size_t max);

#endif
