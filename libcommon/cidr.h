/* cidr - client address networks: parse `192.0.2.0/24`, `[2001:db8::]/32`, match addresses.
 *
 * A network is written as an IPv4 or IPv6 address with an optional `/prefix` (none: the one
 * host); IPv6 may be in brackets, as in Postfix's mynetworks. Host bits below the prefix must
 * be zero, so a typo such as `10.1.2.3/8` is an error instead of a wider network than meant.
 * An IPv4-mapped IPv6 address (::ffff:192.0.2.1) matches as the IPv4 address it holds.
 * No allocation, no I/O. Used by smtpd (mynetworks). */
#ifndef POSTERN_CIDR_H
#define POSTERN_CIDR_H

#include <stddef.h>
#include <stdint.h>

struct cidr {
    int      family;        /* AF_INET or AF_INET6 */
    unsigned bits;          /* prefix length: 0..32 or 0..128 */
    uint8_t  addr[16];      /* network address, 4 or 16 bytes used */
};

/* cidr_parse - one network from text; -1 if malformed (bad address, prefix out of range,
 * host bits set, trailing characters). */
int cidr_parse(const char *text, struct cidr *out);
/* cidr_match - 1 if the address (text, without brackets or port) lies inside the network,
 * 0 if not or if the address does not parse. */
int cidr_match(const struct cidr *net, const char *addr);
/* cidr_match_list - 1 if the address lies inside any of the n networks. */
int cidr_match_list(const struct cidr *nets, size_t n, const char *addr);

#endif
