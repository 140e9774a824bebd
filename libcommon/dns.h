/* dns - asynchronous DNS on the event loop: libunbound, one resolver per process.
 *
 * Set up before privileges are dropped: the resolver forwards to the configured
 * dns_servers (else the name servers of /etc/resolv.conf) and knows /etc/hosts, both read
 * at set-up, so nothing is read after the chroot. libunbound's default local zones answer
 * localhost, the loopback and private (RFC 1918) and documentation (RFC 5737) reverse
 * zones without asking anyone; with lan_zones (dns_lan_zones) only localhost, the
 * loopback and special names such as home.arpa and invalid stay local, and the other
 * reverse zones are asked of the servers, so a site's DNS can name its LAN clients.
 * Queries run in libunbound's worker thread; answers come back through ub_fd() on the
 * loop and each callback runs on the loop, never inside dns_query(). A callback is never
 * called for a cancelled query. Used by the smtp agent (MX, A/AAAA) and smtpd (the
 * client's PTR, confirmed by A/AAAA); the record data is decoded with dns_wire.h.
 *
 * DNSSEC: dns_dnssec_init() adds a second, validating resolver with the same servers and
 * the trust anchors of dnssec_trust_anchor_file, used only by dns_query_dnssec() (the smtp
 * agent's lookups for DANE destinations), so other lookups pay nothing for validation; it
 * costs nothing either until its first query. Its answers say whether they are secure;
 * a bogus answer (failed validation) is DNS_TEMP with the reason. Without it every answer
 * is insecure. Programs that link this module need -lunbound. */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stddef.h>

#include "dns_wire.h"
#include "ev.h"

/* An answer: rdata of every record (rrtype as asked), or a status without records. The
 * data is valid only during the callback. */
struct dns_answer {
    enum dns_status       status;
    int                   rrtype;
    size_t                n;
    unsigned char *const *data;
    const int            *len;
    const char           *why;          /* for DNS_TEMP: the resolver's reason */
    int                   secure;       /* 1: DNSSEC-validated (dns_query_dnssec only) */
};

typedef void (*dns_cb)(void *arg, const struct dns_answer *);

/* dns_init - servers: addresses to forward to (n = 0: /etc/resolv.conf); lan_zones: 1 =
 * private and other special-use reverse zones go to the servers too (dns_lan_zones), 0 =
 * libunbound answers them NXDOMAIN itself. -1 with the reason in err. */
int  dns_init(struct ev *, char *const *servers, size_t n, int lan_zones, char *err,
              size_t errlen);
/* dns_query - ask; returns an id > 0 for dns_cancel, or -1 (cb is then not called; the
 * caller treats it as a temporary failure). */
int  dns_query(const char *name, int rrtype, dns_cb, void *arg);
/* dns_dnssec_init - after dns_init, before the chroot: the validating resolver, with the
 * DS/DNSKEY records of anchor_file (read now: see dns_anchor.h). -1 with the reason. */
int  dns_dnssec_init(const char *anchor_file, char *err, size_t errlen);
/* dns_dnssec_enabled - 1 if dns_dnssec_init() succeeded. */
int  dns_dnssec_enabled(void);
/* dns_query_dnssec - as dns_query(), validated: a->secure tells whether the answer (records
 * or their absence) was proven; bogus answers are DNS_TEMP. Without dns_dnssec_init() it is
 * dns_query() and nothing is secure. */
int  dns_query_dnssec(const char *name, int rrtype, dns_cb, void *arg);
/* dns_cancel - the query's callback will not be called. An id that is done or 0: no-op. */
void dns_cancel(int id);
/* dns_free - drop the resolver and every query in progress (their callbacks are not
 * called). */
void dns_free(void);

#endif
