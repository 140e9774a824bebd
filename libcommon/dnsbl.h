/* dnsbl - DNS blocklist sites: the site syntax, the query name, what an answer means.
 *
 * A site is written as Postfix's postscreen_dnsbl_sites has it: `zone[=filter][*weight]`,
 * e.g. `zen.spamhaus.org*3` or `bl.example=127.0.0.[2..11]*2`. The filter is an IPv4
 * address pattern that an A record of the answer must match for the client to count as
 * listed: each octet is a number or a bracketed list of numbers and ranges separated by
 * `;` (`127.0.[0..3].[2;4;9..11]`); without a filter any A record counts. The weight is
 * an integer (default 1; negative weights allowlist, as in Postfix). The query name is the
 * client's address reversed (IPv4 octets, IPv6 nibbles) under the zone. No I/O here, so
 * tests/unit/dnsbl_test.c covers it all; smtpd_dnsbl.c asks the DNS and adds the weights. */
#ifndef POSTERN_DNSBL_H
#define POSTERN_DNSBL_H

#include <stddef.h>

#include "dns_wire.h"

#define DNSBL_WEIGHT_MAX 1000          /* |weight| at most */

struct dnsbl_site {
    char          zone[DNS_NAME_MAX];  /* lower case, no final dot */
    int           filtered;            /* 0: any A record lists */
    unsigned char octet[4][32];        /* filter: bit v of octet[i] set = value v allowed */
    int           weight;
};

/* dnsbl_site_parse - one site spec. -1 with a message in err if malformed (no zone, a zone
 * that is no host name, a filter that is not four octet patterns, a bad weight). */
int  dnsbl_site_parse(const char *spec, struct dnsbl_site *, char *err, size_t errlen);

/* dnsbl_site_match - 1 if an answer's address lists the client on this site (an IPv4
 * address that passes the filter), else 0. */
int  dnsbl_site_match(const struct dnsbl_site *, const struct dns_ip *answer);

/* dnsbl_query_name - the name to ask A records of for client on zone
 * ("2.0.0.127.bl.example"). -1 if it would not fit in outlen (DNS_NAME_MAX) or the name
 * is longer than DNS allows. */
int  dnsbl_query_name(const struct dns_ip *client, const char *zone, char *out,
                      size_t outlen);

#endif
