/* dns_wire - DNS names, record data and reverse names, without I/O (see dns_wire.h).
 *
 * Everything here takes its input as bytes and bounds every copy: record data comes from
 * the network (through the resolver) and is checked label by label. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dns_wire.h"

int
dns_wire_name(const unsigned char *p, size_t len, char *out, size_t outlen)
{
    size_t i = 0, o = 0;

    if (outlen == 0)
        return -1;
    for (;;) {
        size_t lab;

        if (i >= len)
            return -1;
        lab = p[i++];
        if (lab == 0)
            break;
        if (lab > 63 || i + lab > len)
            return -1;       /* compression pointers or truncation: not expected here */
        if (o > 0) {
            if (o + 1 >= outlen)
                return -1;
            out[o++] = '.';
        }
        for (size_t k = 0; k < lab; k++) {
            unsigned char ch = p[i + k];

            if (ch <= ' ' || ch >= 0x7f || o + 1 >= outlen)
                return -1;
            out[o++] = (char)tolower(ch);
        }
        i += lab;
    }
    out[o] = '\0';
    return (int)i;
}

int
dns_wire_ptr_parse(const unsigned char *rdata, size_t len, char *out, size_t outlen)
{
    int used = dns_wire_name(rdata, len, out, outlen);

    if (used < 0 || (size_t)used != len)
        return -1;
    return 0;
}

int
dns_wire_ip(int rrtype, const unsigned char *rdata, size_t len, struct dns_ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (rrtype == DNS_T_A && len == 4)
        ip->family = AF_INET;
    else if (rrtype == DNS_T_AAAA && len == 16)
        ip->family = AF_INET6;
    else
        return -1;
    memcpy(ip->octets, rdata, len);
    return 0;
}

int
dns_wire_ip_parse(const char *text, struct dns_ip *ip)
{
    static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };

    memset(ip, 0, sizeof(*ip));
    if (inet_pton(AF_INET, text, ip->octets) == 1) {
        ip->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, ip->octets) != 1)
        return -1;
    ip->family = AF_INET6;
    /* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d; their names are IPv4's. */
    if (memcmp(ip->octets, mapped, sizeof(mapped)) == 0) {
        memmove(ip->octets, ip->octets + 12, 4);
        memset(ip->octets + 4, 0, 12);
        ip->family = AF_INET;
    }
    return 0;
}

int
dns_wire_ip_equal(const struct dns_ip *a, const struct dns_ip *b)
{
    size_t n = a->family == AF_INET ? 4 : 16;

    return a->family == b->family && memcmp(a->octets, b->octets, n) == 0;
}

socklen_t
dns_wire_ip_sockaddr(const struct dns_ip *ip, unsigned port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (ip->family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        memcpy(&s4->sin_addr, ip->octets, 4);
        return sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        memcpy(&s6->sin6_addr, ip->octets, 16);
        return sizeof(*s6);
    }
}

int
dns_wire_reverse_name(const struct dns_ip *ip, const char *suffix, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t            o = 0, slen = strlen(suffix);
    int               n;

    if (ip->family == AF_INET) {
        n = snprintf(out, outlen, "%u.%u.%u.%u.%s", ip->octets[3], ip->octets[2],
                     ip->octets[1], ip->octets[0], suffix);
        return n < 0 || (size_t)n >= outlen ? -1 : 0;
    }
    if (ip->family != AF_INET6 || outlen < 64 + slen + 1)
        return -1;
    /* Least significant nibble first (RFC 3596 2.5). */
    for (int i = 15; i >= 0; i--) {
        out[o++] = hex[ip->octets[i] & 0xf];
        out[o++] = '.';
        out[o++] = hex[ip->octets[i] >> 4];
        out[o++] = '.';
    }
    memcpy(out + o, suffix, slen + 1);
    return 0;
}

int
dns_wire_ptr_name(const struct dns_ip *ip, char *out, size_t outlen)
{
    return dns_wire_reverse_name(ip, ip->family == AF_INET ? "in-addr.arpa" : "ip6.arpa", out,
                                 outlen);
}

int
dns_wire_mx_parse(const unsigned char *rdata, size_t len, unsigned *pref, char *host,
                  size_t hostlen)
{
    int used;

    if (len < 3)
        return -1;
    *pref = (unsigned)rdata[0] << 8 | rdata[1];
    used = dns_wire_name(rdata + 2, len - 2, host, hostlen);
    if (used < 0 || (size_t)used + 2 != len)
        return -1;
    return 0;
}

int
dns_wire_tlsa_parse(const unsigned char *rdata, size_t len, struct dns_tlsa *t)
{
    if (len < 4)
        return -1;
    t->usage = rdata[0];
    t->selector = rdata[1];
    t->mtype = rdata[2];
    t->data = rdata + 3;
    t->len = len - 3;
    return 0;
}

/* dns_wire_label_ok - one label of a host name: LDH, 1..63, no hyphen at either end. */
static int
dns_wire_label_ok(const char *p, size_t len)
{
    if (len == 0 || len > 63 || p[0] == '-' || p[len - 1] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '-')
            return 0;
    return 1;
}

int
dns_wire_hostname_ok(const char *name)
{
    const char *label = name, *dot;
    size_t      len = strlen(name);
    int         digits = 1;

    if (len == 0 || len > 253)
        return 0;
    for (;;) {
        size_t n;

        dot = strchr(label, '.');
        n = dot != NULL ? (size_t)(dot - label) : strlen(label);
        if (!dns_wire_label_ok(label, n))
            return 0;
        if (dot == NULL)
            break;
        label = dot + 1;
    }
    /* The last label: a name whose top-level label is a number looks like an address. */
    for (const char *p = label; *p != '\0'; p++)
        if (!isdigit((unsigned char)*p))
            digits = 0;
    return !digits;
}

enum dns_status
dns_wire_classify(int err, int rcode, int nxdomain, int havedata)
{
    if (err != 0)
        return DNS_TEMP;
    if (nxdomain || rcode == 3)
        return DNS_NXDOMAIN;
    if (rcode != 0)
        return DNS_TEMP;
    return havedata ? DNS_OK : DNS_NODATA;
}
