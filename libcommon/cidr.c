/* cidr - client address networks: parsing and matching.
 *
 * See cidr.h. Addresses are parsed with inet_pton() only (no name lookups, no legacy forms
 * such as `10.1` or octal that inet_aton() would take), and compared as byte strings under
 * the prefix mask. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"

#define CIDR_TEXT_MAX 64        /* longest address text we take apart */

/* cidr_addr - an address (no prefix, no brackets) into family and bytes; -1 if malformed.
 * IPv4-mapped IPv6 addresses come back as IPv4. */
static int
cidr_addr(const char *text, int *family, uint8_t addr[16])
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    uint8_t              a6[16];

    memset(addr, 0, 16);
    if (inet_pton(AF_INET, text, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, a6) != 1)
        return -1;
    if (memcmp(a6, mapped, sizeof(mapped)) == 0) {
        *family = AF_INET;
        memcpy(addr, a6 + 12, 4);
        return 0;
    }
    *family = AF_INET6;
    memcpy(addr, a6, 16);
    return 0;
}

/* cidr_prefix - a decimal prefix length no larger than max; -1 if malformed. */
static int
cidr_prefix(const char *s, unsigned max, unsigned *out)
{
    unsigned v = 0;

    if (*s == '\0' || strlen(s) > 3)
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* cidr_covers - do the first bits of a and b agree? */
static int
cidr_covers(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* cidr_parse - `addr`, `addr/len`, `[v6addr]/len` or `[v6addr]`. */
int
cidr_parse(const char *text, struct cidr *out)
{
    char        buf[CIDR_TEXT_MAX];
    const char *slash, *prefix = NULL;
    size_t      len;
    unsigned    max;

    memset(out, 0, sizeof(*out));
    if (text == NULL)
        return -1;
    slash = strchr(text, '/');
    len = slash ? (size_t)(slash - text) : strlen(text);
    if (slash)
        prefix = slash + 1;
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (buf[0] == '[') {
        if (len < 3 || buf[len - 1] != ']')
            return -1;
        buf[len - 1] = '\0';
        memmove(buf, buf + 1, len - 1);
        if (strchr(buf, ':') == NULL)
            return -1;                  /* brackets are for IPv6 only */
    }
    if (cidr_addr(buf, &out->family, out->addr) == -1)
        return -1;
    if (out->family == AF_INET && strchr(buf, ':') != NULL)
        return -1;                      /* ::ffff:a.b.c.d/len: ambiguous prefix, refuse */
    max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (prefix != NULL && cidr_prefix(prefix, max, &out->bits) == -1)
        return -1;
    /* host bits must be zero */
    for (unsigned i = out->bits; i < max; i++)
        if (out->addr[i / 8] & (0x80u >> (i % 8)))
            return -1;
    return 0;
}

/* cidr_match - is addr inside net? */
int
cidr_match(const struct cidr *net, const char *addr)
{
    uint8_t a[16];
    int     family;

    if (addr == NULL || strlen(addr) >= CIDR_TEXT_MAX)
        return 0;
    if (cidr_addr(addr, &family, a) == -1 || family != net->family)
        return 0;
    return cidr_covers(a, net->addr, net->bits);
}

/* cidr_match_list - inside any of them? */
int
cidr_match_list(const struct cidr *nets, size_t n, const char *addr)
{
    for (size_t i = 0; i < n; i++)
        if (cidr_match(&nets[i], addr))
            return 1;
    return 0;
}
