/* dnsbl - DNS blocklist site specs and answers (see dnsbl.h).
 *
 * A filter is kept as one 256-bit set per octet, so matching is four bit tests and every
 * Postfix form (a number, [a..b], [a;b;c], mixtures) is the same code. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsbl.h"

#define DNSBL_DNS_NAME_LEN 253         /* longest name in dotted form (RFC 1035) */

/* dnsbl_number - a decimal number of at most 3 digits at *p, at most 255; advances *p. */
static int
dnsbl_number(const char **p, unsigned *out)
{
    unsigned v = 0;
    int      digits = 0;

    while (isdigit((unsigned char)**p) && digits < 4) {
        v = v * 10 + (unsigned)(**p - '0');
        (*p)++;
        digits++;
    }
    if (digits == 0 || digits > 3 || v > 255)
        return -1;
    *out = v;
    return 0;
}

/* dnsbl_allow - let values lo..hi through in one octet's set. */
static void
dnsbl_allow(unsigned char *set, unsigned lo, unsigned hi)
{
    for (unsigned v = lo; v <= hi; v++)
        set[v / 8] |= (unsigned char)(1u << (v % 8));
}

/* dnsbl_octet - one octet pattern at *p: "N" or "[item;item...]", item "N" or "N..M". */
static int
dnsbl_octet(const char **p, unsigned char *set)
{
    unsigned lo, hi;

    if (**p != '[') {
        if (dnsbl_number(p, &lo) == -1)
            return -1;
        dnsbl_allow(set, lo, lo);
        return 0;
    }
    (*p)++;
    for (;;) {
        if (dnsbl_number(p, &lo) == -1)
            return -1;
        hi = lo;
        if (strncmp(*p, "..", 2) == 0) {
            *p += 2;
            if (dnsbl_number(p, &hi) == -1 || hi < lo)
                return -1;
        }
        dnsbl_allow(set, lo, hi);
        if (**p == ']') {
            (*p)++;
            return 0;
        }
        if (**p != ';')
            return -1;
        (*p)++;
    }
}

/* dnsbl_filter_parse - "a.b.c.d" where each is an octet pattern, up to end. */
static int
dnsbl_filter_parse(const char *p, const char *end, struct dnsbl_site *site)
{
    for (int i = 0; i < 4; i++) {
        if (i > 0 && *p++ != '.')
            return -1;
        if (dnsbl_octet(&p, site->octet[i]) == -1 || p > end)
            return -1;
    }
    return p == end ? 0 : -1;
}

/* dnsbl_weight_parse - "*N" with N a (possibly negative) integer. */
static int
dnsbl_weight_parse(const char *p, int *out)
{
    char *end;
    long  v;

    errno = 0;
    v = strtol(p, &end, 10);
    if (end == p || *end != '\0' || errno != 0 || v < -DNSBL_WEIGHT_MAX
        || v > DNSBL_WEIGHT_MAX || isspace((unsigned char)*p) || *p == '+')
        return -1;
    *out = (int)v;
    return 0;
}

int
dnsbl_site_parse(const char *spec, struct dnsbl_site *site, char *err, size_t errlen)
{
    const char *star = strrchr(spec, '*');
    const char *eq = strchr(spec, '=');
    const char *zend;
    size_t      zlen;

    memset(site, 0, sizeof(*site));
    site->weight = 1;
    if (star != NULL && dnsbl_weight_parse(star + 1, &site->weight) == -1) {
        snprintf(err, errlen, "\"%s\": the weight after * is not an integer in -%d..%d",
                 spec, DNSBL_WEIGHT_MAX, DNSBL_WEIGHT_MAX);
        return -1;
    }
    if (star == NULL)
        star = spec + strlen(spec);
    if (eq != NULL && eq > star)
        eq = NULL;
    zend = eq != NULL ? eq : star;
    zlen = (size_t)(zend - spec);
    if (zlen > 0 && spec[zlen - 1] == '.')
        zlen--;                        /* "bl.example." is the same zone */
    if (zlen == 0 || zlen >= sizeof(site->zone)) {
        snprintf(err, errlen, "\"%s\": no zone", spec);
        return -1;
    }
    for (size_t i = 0; i < zlen; i++)
        site->zone[i] = (char)tolower((unsigned char)spec[i]);
    site->zone[zlen] = '\0';
    if (!dns_wire_hostname_ok(site->zone)) {
        snprintf(err, errlen, "\"%s\": \"%s\" is not a DNS zone name", spec, site->zone);
        return -1;
    }
    if (eq != NULL) {
        site->filtered = 1;
        if (dnsbl_filter_parse(eq + 1, star, site) == -1) {
            snprintf(err, errlen, "\"%s\": the filter after = is not an IPv4 address "
                     "pattern such as 127.0.0.2 or 127.0.0.[2..11;20]", spec);
            return -1;
        }
    }
    return 0;
}

int
dnsbl_site_match(const struct dnsbl_site *site, const struct dns_ip *answer)
{
    if (answer->family != AF_INET)
        return 0;
    if (!site->filtered)
        return 1;
    for (int i = 0; i < 4; i++) {
        unsigned v = answer->octets[i];

        if (!(site->octet[i][v / 8] & (1u << (v % 8))))
            return 0;
    }
    return 1;
}

int
dnsbl_query_name(const struct dns_ip *client, const char *zone, char *out, size_t outlen)
{
    if (dns_wire_reverse_name(client, zone, out, outlen) == -1
        || strlen(out) > DNSBL_DNS_NAME_LEN)
        return -1;
    return 0;
}
