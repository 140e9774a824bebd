/* smtp_dns - next hops, MX ordering and address records, without I/O (see smtp_dns.h).
 *
 * Everything here takes its input as bytes and bounds every copy: record data comes from
 * the network (through the resolver) and is checked label by label. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "smtp_dns.h"

/* smtp_dns_port - a decimal port 1..65535 at s; -1 if not. */
static int
smtp_dns_port(const char *s)
{
    char *end;
    long  v;

    if (!isdigit((unsigned char)*s))
        return -1;
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < 1 || v > 65535)
        return -1;
    return (int)v;
}

int
smtp_dns_nexthop_parse(const char *s, int lmtp, struct smtp_nexthop *nh)
{
    const char *colon, *end;
    size_t      len;
    int         port;

    memset(nh, 0, sizeof(*nh));
    nh->port = lmtp ? 24 : 25;
    if (strncmp(s, "unix:", 5) == 0) {
        if (s[5] != '/' || strlen(s + 5) >= sizeof(nh->path))
            return -1;
        nh->kind = SMTP_NH_UNIX;
        snprintf(nh->path, sizeof(nh->path), "%s", s + 5);
        snprintf(nh->host, sizeof(nh->host), "localhost");
        return 0;
    }
    if (*s == '[') {
        if ((end = strchr(s, ']')) == NULL)
            return -1;
        len = (size_t)(end - s - 1);
        colon = end + 1;
        if (*colon != '\0' && *colon != ':')
            return -1;
        nh->kind = SMTP_NH_HOST;
        s++;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            colon = s + strlen(s);
        len = (size_t)(colon - s);
        nh->kind = SMTP_NH_MX;
    }
    if (len == 0 || len >= sizeof(nh->host))
        return -1;
    memcpy(nh->host, s, len);
    nh->host[len] = '\0';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)nh->host[i];

        if (ch <= ' ' || ch >= 0x7f || ch == '[' || ch == ']' || ch == '/')
            return -1;
    }
    if (*colon == ':') {
        if ((port = smtp_dns_port(colon + 1)) == -1)
            return -1;
        nh->port = (unsigned)port;
    }
    return 0;
}

int
smtp_dns_mx_parse(const unsigned char *rdata, size_t len, struct smtp_mx *mx)
{
    return dns_wire_mx_parse(rdata, len, &mx->pref, mx->host, sizeof(mx->host));
}

/* smtp_dns_mx_cmp - by preference only (qsort is not stable: shuffling follows). */
static int
smtp_dns_mx_cmp(const void *a, const void *b)
{
    const struct smtp_mx *x = a, *y = b;

    return x->pref < y->pref ? -1 : x->pref > y->pref;
}

size_t
smtp_dns_mx_order(struct smtp_mx *mx, size_t n, uint32_t (*rnd)(void *), void *arg)
{
    size_t out = 0;

    qsort(mx, n, sizeof(*mx), smtp_dns_mx_cmp);
    /* Fisher-Yates within each run of equal preference. */
    for (size_t start = 0; start < n;) {
        size_t end = start + 1;

        while (end < n && mx[end].pref == mx[start].pref)
            end++;
        for (size_t i = end - 1; i > start; i--) {
            size_t        j = start + rnd(arg) % (i - start + 1);
            struct smtp_mx t = mx[i];

            mx[i] = mx[j];
            mx[j] = t;
        }
        start = end;
    }
    /* A host listed twice is tried once, at its best preference. */
    for (size_t i = 0; i < n; i++) {
        size_t k;

        for (k = 0; k < out; k++)
            if (strcmp(mx[k].host, mx[i].host) == 0)
                break;
        if (k == out)
            mx[out++] = mx[i];
    }
    return out;
}

int
smtp_dns_mx_null(const struct smtp_mx *mx, size_t n)
{
    return n == 1 && mx[0].host[0] == '\0';
}

size_t
smtp_dns_mx_clean(struct smtp_mx *mx, size_t n)
{
    size_t out = 0;

    for (size_t i = 0; i < n; i++)
        if (mx[i].host[0] != '\0')
            mx[out++] = mx[i];
    return out;
}

int
smtp_dns_literal(const char *host, unsigned port, struct smtp_addr *a)
{
    struct sockaddr_in  *s4 = (struct sockaddr_in *)&a->sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->sa;
    const char          *h = host;

    memset(a, 0, sizeof(*a));
    if (strncasecmp(h, "ipv6:", 5) == 0)
        h += 5;
    if (h == host && inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        a->salen = sizeof(*s4);
    } else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        a->salen = sizeof(*s6);
    } else {
        return -1;
    }
    snprintf(a->host, sizeof(a->host), "%s", h);
    snprintf(a->ip, sizeof(a->ip), "%s", h);
    a->port = port;
    return 0;
}

int
smtp_dns_addr(int rrtype, const unsigned char *rdata, size_t len, const char *host,
              unsigned port, struct smtp_addr *a)
{
    struct dns_ip ip;

    memset(a, 0, sizeof(*a));
    if (dns_wire_ip(rrtype, rdata, len, &ip) == -1)
        return -1;
    a->salen = dns_wire_ip_sockaddr(&ip, port, &a->sa);
    inet_ntop(ip.family, ip.octets, a->ip, sizeof(a->ip));
    snprintf(a->host, sizeof(a->host), "%s", host);
    a->port = port;
    return 0;
}

size_t
smtp_dns_tlsa_usable(unsigned char *const *rdata, const int *len, size_t n,
                     struct tls_tlsa *out, size_t max)
{
    size_t k = 0;

    for (size_t i = 0; i < n && k < max; i++) {
        struct dns_tlsa t;

        if (len[i] < 0 || dns_wire_tlsa_parse(rdata[i], (size_t)len[i], &t) == -1)
            continue;
        if ((t.usage != 2 && t.usage != 3) || t.selector > 1)
            continue;
        if (!(t.mtype == 0 || (t.mtype == 1 && t.len == 32) || (t.mtype == 2 && t.len == 64)))
            continue;
        out[k].usage = (uint8_t)t.usage;
        out[k].selector = (uint8_t)t.selector;
        out[k].mtype = (uint8_t)t.mtype;
        out[k].data = t.data;
        out[k].len = t.len;
        k++;
    }
    return k;
}
