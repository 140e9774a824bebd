/* qmgr_route - where a recipient goes: transport, next hop and TLS level.
 *
 * See qmgr_route.h. No I/O and no globals: everything comes in through the conf and its
 * lookup functions. Host names are checked for the characters a host name, an IPv4 or an
 * IPv6 literal may hold, so nothing odd reaches the smtp agent through a map. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qmgr_route.h"
#include "tls.h"

#define QMGR_ROUTE_VAL_MAX 512
#define QMGR_ROUTE_PORT_SMTP 25u
#define QMGR_ROUTE_PORT_LMTP 24u

/* qmgr_route_host_ok - a host name (ASCII letters, digits, ".-_", or UTF-8 bytes for an
 * SMTPUTF8 domain) or an address literal's inside (also ':'). */
static int
qmgr_route_host_ok(const char *s, size_t n, int literal)
{
    size_t i;

    if (n == 0 || n > 255)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (isalnum(c) || c == '.' || c == '-' || c == '_' || (!literal && c >= 0x80))
            continue;
        if (literal && c == ':')
            continue;
        return 0;
    }
    return 1;
}

/* qmgr_route_port_ok - decimal 1..65535. */
static int
qmgr_route_port_ok(const char *s)
{
    unsigned long v = 0;
    size_t        i;

    if (s[0] == '\0' || strlen(s) > 5)
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

/* qmgr_route_parse_hop - "[h]:p", "[h]" (default port added), "h", "h:p". */
int
qmgr_route_parse_hop(const char *hop, unsigned default_port, char *out, size_t outlen)
{
    const char *close, *colon;
    int         n;

    if (hop[0] == '[') {
        if ((close = strchr(hop, ']')) == NULL
            || !qmgr_route_host_ok(hop + 1, (size_t)(close - hop - 1), 1))
            return -1;
        if (close[1] == '\0')
            n = snprintf(out, outlen, "%.*s:%u", (int)(close - hop + 1), hop, default_port);
        else if (close[1] == ':' && qmgr_route_port_ok(close + 2))
            n = snprintf(out, outlen, "%s", hop);
        else
            return -1;
        return n < 0 || (size_t)n >= outlen ? -1 : 0;
    }
    colon = strchr(hop, ':');
    if (colon != NULL) {
        if (!qmgr_route_host_ok(hop, (size_t)(colon - hop), 0) || !qmgr_route_port_ok(colon + 1))
            return -1;
    } else if (!qmgr_route_host_ok(hop, strlen(hop), 0)) {
        return -1;
    }
    n = snprintf(out, outlen, "%s", hop);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* qmgr_route_parse_level - a TLS level name. */
int
qmgr_route_parse_level(const char *s, uint32_t *level)
{
    enum tls_level l;

    if (tls_level_parse(s, &l) == -1)
        return -1;
    *level = (uint32_t)l;
    return 0;
}

/* qmgr_route_domain_hop - the MX next hop for a recipient domain (a literal gets a port). */
static int
qmgr_route_domain_hop(const char *domain, char *out, size_t outlen)
{
    if (domain[0] == '[')
        return qmgr_route_parse_hop(domain, QMGR_ROUTE_PORT_SMTP, out, outlen);
    if (!qmgr_route_host_ok(domain, strlen(domain), 0))
        return -1;
    return snprintf(out, outlen, "%s", domain) >= (int)outlen ? -1 : 0;
}

/* qmgr_route_parse - one transport_map value. */
int
qmgr_route_parse(const char *value, const char *domain, struct qmgr_route *out)
{
    const char *colon = strchr(value, ':'), *rest;
    size_t      tlen = colon ? (size_t)(colon - value) : strlen(value);

    out->nexthop[0] = '\0';
    rest = colon ? colon + 1 : "";
    if (tlen == 5 && strncasecmp(value, "local", 5) == 0 && *rest == '\0') {
        out->kind = QMGR_ROUTE_LOCAL;
        out->transport = "local";
        return 0;
    }
    if (tlen == 4 && strncasecmp(value, "smtp", 4) == 0) {
        out->kind = QMGR_ROUTE_SMTP;
        out->transport = "smtp";
        if (*rest == '\0') {
            if (qmgr_route_domain_hop(domain, out->nexthop, sizeof(out->nexthop)) == 0)
                return 0;
        } else if (qmgr_route_parse_hop(rest, QMGR_ROUTE_PORT_SMTP, out->nexthop,
                                        sizeof(out->nexthop)) == 0) {
            return 0;
        }
    } else if (tlen == 4 && strncasecmp(value, "lmtp", 4) == 0) {
        out->kind = QMGR_ROUTE_LMTP;
        out->transport = "lmtp";
        if (strncmp(rest, "unix:/", 6) == 0) {
            size_t i, n = strlen(rest);

            for (i = 5; i < n; i++)
                if (isspace((unsigned char)rest[i]) || iscntrl((unsigned char)rest[i]))
                    break;
            if (i == n && n < sizeof(out->nexthop)) {
                memcpy(out->nexthop, rest, n + 1);
                return 0;
            }
        } else if (*rest != '\0' && qmgr_route_parse_hop(rest, QMGR_ROUTE_PORT_LMTP,
                                                        out->nexthop,
                                                        sizeof(out->nexthop)) == 0
                   && strchr(out->nexthop[0] == '[' ? strchr(out->nexthop, ']')
                                                    : out->nexthop, ':') != NULL) {
            return 0;       /* LMTP over TCP needs a port: there is no MX for it */
        }
    }
    snprintf(out->error, sizeof(out->error), "invalid transport_map entry \"%.100s\"", value);
    return -1;
}

/* qmgr_route_lookup_chain - look up the address, then the domain, then ".parent"s. */
static int
qmgr_route_lookup_chain(qmgr_route_lookup_fn fn, void *arg, const char *addr,
                        const char *domain, char *val, size_t vallen)
{
    char        key[QMGR_ROUTE_VAL_MAX];
    const char *p;
    int         rc;

    if (addr != NULL && (rc = fn(arg, addr, val, vallen)) != 0)
        return rc;
    if (domain[0] == '\0' || domain[0] == '[')
        return 0;
    if ((rc = fn(arg, domain, val, vallen)) != 0)
        return rc;
    for (p = strchr(domain, '.'); p != NULL; p = strchr(p + 1, '.')) {
        if (p[1] == '\0')
            break;
        snprintf(key, sizeof(key), "%s", p);
        if ((rc = fn(arg, key, val, vallen)) != 0)
            return rc;
    }
    return 0;
}

/* qmgr_route_hop_host - the host of a next hop, without brackets and port. */
static void
qmgr_route_hop_host(const char *hop, char *out, size_t outlen)
{
    const char *end;

    if (hop[0] == '[') {
        end = strchr(hop, ']');
        snprintf(out, outlen, "%.*s", end ? (int)(end - hop - 1) : 0, hop + 1);
        return;
    }
    end = strchr(hop, ':');
    snprintf(out, outlen, "%.*s", end ? (int)(end - hop) : (int)strlen(hop), hop);
}

/* qmgr_route_tls - the TLS level for a relayed recipient. */
static int
qmgr_route_tls(const struct qmgr_route_conf *c, const char *domain, struct qmgr_route *out)
{
    char val[QMGR_ROUTE_VAL_MAX], host[QMGR_ROUTE_HOP_MAX];
    int  rc = 0;

    out->tls_level = c->tls_level;
    if (out->kind == QMGR_ROUTE_LMTP && strncmp(out->nexthop, "unix:", 5) == 0) {
        out->tls_level = TLS_LEVEL_NONE;
        return 0;
    }
    if (c->tls_policy == NULL)
        return 0;
    rc = qmgr_route_lookup_chain(c->tls_policy, c->tls_policy_arg, NULL, domain, val,
                                 sizeof(val));
    if (rc == 0) {
        qmgr_route_hop_host(out->nexthop, host, sizeof(host));
        if (host[0] != '\0' && strcasecmp(host, domain) != 0)
            rc = c->tls_policy(c->tls_policy_arg, host, val, sizeof(val));
    }
    if (rc == -1) {
        snprintf(out->error, sizeof(out->error), "smtp_tls_policy_map lookup failed");
        return -1;
    }
    if (rc == 1) {
        /* The value may carry more words later (match=...): the level is the first. */
        val[strcspn(val, " \t")] = '\0';
        if (qmgr_route_parse_level(val, &out->tls_level) == -1) {
            snprintf(out->error, sizeof(out->error),
                     "invalid smtp_tls_policy_map entry \"%.100s\"", val);
            return -1;
        }
    }
    return 0;
}

/* qmgr_route_is_local - is domain one of local_domains (ASCII case-insensitive)? */
static int
qmgr_route_is_local(const struct qmgr_route_conf *c, const char *domain)
{
    size_t i;

    for (i = 0; i < c->nlocal; i++)
        if (strcasecmp(c->local_domains[i], domain) == 0)
            return 1;
    return 0;
}

/* qmgr_route_resolve - the decision described in the header. */
int
qmgr_route_resolve(const struct qmgr_route_conf *c, const char *rcpt, struct qmgr_route *out)
{
    char        domain[256], val[QMGR_ROUTE_VAL_MAX];
    const char *at = strrchr(rcpt, '@');
    size_t      i;
    int         rc = 0;

    memset(out, 0, sizeof(*out));
    out->kind = QMGR_ROUTE_LOCAL;
    out->transport = "local";
    domain[0] = '\0';
    if (at != NULL) {
        for (i = 0; at[1 + i] != '\0' && i + 1 < sizeof(domain); i++)
            domain[i] = (char)tolower((unsigned char)at[1 + i]);
        domain[i] = '\0';
    }
    if (c->transport != NULL)
        rc = qmgr_route_lookup_chain(c->transport, c->transport_arg, rcpt, domain, val,
                                     sizeof(val));
    if (rc == -1) {
        snprintf(out->error, sizeof(out->error), "transport_map lookup failed");
        return -1;
    }
    if (rc == 1) {
        if (qmgr_route_parse(val, domain, out) == -1)
            return -1;
        if (out->kind == QMGR_ROUTE_LOCAL)
            return 0;
        return qmgr_route_tls(c, domain, out);
    }
    if (domain[0] == '\0' || qmgr_route_is_local(c, domain))
        return 0;
    out->kind = QMGR_ROUTE_SMTP;
    out->transport = "smtp";
    if (c->relayhost != NULL && c->relayhost[0] != '\0') {
        if (qmgr_route_parse_hop(c->relayhost, QMGR_ROUTE_PORT_SMTP, out->nexthop,
                                 sizeof(out->nexthop)) == -1) {
            snprintf(out->error, sizeof(out->error), "invalid relayhost \"%.100s\"",
                     c->relayhost);
            return -1;
        }
    } else if (qmgr_route_domain_hop(domain, out->nexthop, sizeof(out->nexthop)) == -1) {
        snprintf(out->error, sizeof(out->error), "invalid recipient domain");
        return -1;
    }
    return qmgr_route_tls(c, domain, out);
}
