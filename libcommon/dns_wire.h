/* dns_wire - DNS record data and names without I/O: the pure half of libcommon/dns.
 *
 * Functions over bytes as libunbound hands them over (rdata in wire format, names
 * uncompressed) and over printable addresses: wire-name decoding, A/AAAA/PTR rdata, the
 * reverse (in-addr.arpa, ip6.arpa) name of an address, TLSA rdata, host-name validation, and how a
 * lookup outcome becomes a status. No resolver here, so callers and unit tests link it
 * without libunbound (tests/unit/dns_wire_test.c). Used by libcommon/dns.c, the smtp
 * agent (smtp_dns.c: MX, next hops) and smtpd (smtpd_dns.c: the client's name). Every
 * copy is bounded and every record checked: record data comes from the network. */
#ifndef POSTERN_DNS_WIRE_H
#define POSTERN_DNS_WIRE_H

#include <stddef.h>
#include <sys/socket.h>

#define DNS_NAME_MAX  256              /* a dotted name and its NUL */
#define DNS_PTR_NAME_MAX 80            /* the ip6.arpa name of an address (72) and NUL */

/* Record types we ask for. */
#define DNS_T_A       1
#define DNS_T_PTR     12
#define DNS_T_MX      15
#define DNS_T_AAAA    28
#define DNS_T_TLSA    52

/* How a lookup ended. */
enum dns_status {
    DNS_OK = 0,                        /* records of the type asked for */
    DNS_NODATA,                        /* the name exists, no such records */
    DNS_NXDOMAIN,                      /* the name does not exist */
    DNS_TEMP,                          /* SERVFAIL, timeout, resolver error: try later */
};

/* An IP address as octets: family AF_INET (4 used) or AF_INET6 (16). */
struct dns_ip {
    int           family;
    unsigned char octets[16];
};

/* dns_wire_name - a wire-format name at p[0, len) as dotted text without the final dot
 * ("" for the root), lower-cased. Returns the octets used, -1 if malformed (a compression
 * pointer, a control or non-ASCII octet, truncation, or longer than outlen). */
int  dns_wire_name(const unsigned char *p, size_t len, char *out, size_t outlen);

/* dns_wire_ptr_parse - one PTR rdata as a name (as dns_wire_name, no octet left over).
 * -1 if malformed. The name may still be no host name: see dns_wire_hostname_ok(). */
int  dns_wire_ptr_parse(const unsigned char *rdata, size_t len, char *out, size_t outlen);

/* dns_wire_ip - an A (4 octets) or AAAA (16 octets) rdata as an address. -1: malformed or
 * another type. */
int  dns_wire_ip(int rrtype, const unsigned char *rdata, size_t len, struct dns_ip *);

/* dns_wire_ip_parse - a printable IPv4 or IPv6 address (no brackets, no "ipv6:"); an
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes the IPv4 address. -1 if not one. */
int  dns_wire_ip_parse(const char *text, struct dns_ip *);

/* dns_wire_ip_equal - 1 if both are the same address. */
int  dns_wire_ip_equal(const struct dns_ip *, const struct dns_ip *);

/* dns_wire_ip_sockaddr - the address with a port as a socket address; returns its length. */
socklen_t dns_wire_ip_sockaddr(const struct dns_ip *, unsigned port,
                               struct sockaddr_storage *);

/* dns_wire_ptr_name - the name to ask PTR records of: "4.3.2.1.in-addr.arpa" for 1.2.3.4,
 * 32 nibbles and "ip6.arpa" for IPv6 (RFC 3596). -1 if out is too small
 * (DNS_PTR_NAME_MAX always suffices) or the family is unknown. */
int  dns_wire_ptr_name(const struct dns_ip *, char *out, size_t outlen);
/* dns_wire_reverse_name - the address's octets (IPv4) or nibbles (IPv6) in reverse order,
 * then suffix: the PTR name above, or a DNSBL query ("2.0.0.127.bl.example"). -1 if out
 * is too small or the family is unknown. */
int  dns_wire_reverse_name(const struct dns_ip *, const char *suffix, char *out,
                           size_t outlen);
/* dns_wire_mx_parse - one MX rdata: its preference and exchange ("" for the "." of a null
 * MX, RFC 7505). -1 if malformed. */
int  dns_wire_mx_parse(const unsigned char *rdata, size_t len, unsigned *pref, char *host,
                       size_t hostlen);

/* One TLSA record (RFC 6698): the association data points into the rdata it came from. */
struct dns_tlsa {
    unsigned             usage, selector, mtype;
    const unsigned char *data;
    size_t               len;
};

/* dns_wire_tlsa_parse - one TLSA rdata: three octets and at least one octet of data. -1 if
 * malformed. */
int  dns_wire_tlsa_parse(const unsigned char *rdata, size_t len, struct dns_tlsa *);

/* dns_wire_hostname_ok - 1 if name is a plausible host name: dot-separated labels of
 * letters, digits and hyphens (1..63 each, no hyphen first or last), at most 253 in all,
 * a last label that is not all digits (so "1.2.3.4" is no name). */
int  dns_wire_hostname_ok(const char *name);

/* dns_wire_classify - a libunbound outcome (err from the call, rcode, nxdomain and
 * havedata from the result) as a status. */
enum dns_status dns_wire_classify(int err, int rcode, int nxdomain, int havedata);

#endif
