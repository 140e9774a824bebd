/* dns_anchor - DNSSEC trust anchors read from a file, as one record per string.
 *
 * dnssec_trust_anchor_file is zone-file text with DS or DNSKEY records: dns-root-data's
 * /usr/share/dns/root.key, the output of ldns-key2ds or of `dig DNSKEY`. ';' starts a
 * comment, parentheses fold a record over several lines, $TTL and $ORIGIN lines are
 * skipped; every record must name its owner absolutely (ending in a dot). libunbound reads
 * an anchor file only at its first query, which the smtp agent makes inside its chroot, so
 * dns.c reads the file here before the chroot and hands each record over as text.
 * `postern check` uses the same reader to validate the file. No resolver here: the CLI and
 * the unit tests (tests/unit/dns_anchor_test.c) link it without libunbound. */
#ifndef POSTERN_DNS_ANCHOR_H
#define POSTERN_DNS_ANCHOR_H

#include <stddef.h>

#define DNS_ANCHOR_MAX       64            /* records in one file */
#define DNS_ANCHOR_FILE_MAX  (256 * 1024)  /* bytes: a trust anchor file is small */

/* The records of one file, each a single line "owner [ttl] [class] DS|DNSKEY rdata". */
struct dns_anchor {
    char   *rec[DNS_ANCHOR_MAX];
    size_t  n;
};

/* dns_anchor_parse - split text (len bytes, NULs not allowed) into records. -1 with
 * "line N: reason" in err (no record, a record of another type, a relative owner, an
 * unbalanced parenthesis, too many records); nothing is left allocated then. */
int  dns_anchor_parse(const char *text, size_t len, struct dns_anchor *, char *err,
                      size_t errlen);
/* dns_anchor_load - read path and parse it. -1 with "path: reason" in err. */
int  dns_anchor_load(const char *path, struct dns_anchor *, char *err, size_t errlen);
/* dns_anchor_clear - free the records (the struct may be reused). */
void dns_anchor_clear(struct dns_anchor *);

#endif
