/* resolve - recipient address resolution: virtual aliases, local aliases, domain classes.
 *
 * smtpd calls resolve_rcpt() at RCPT time with the address the client gave; the answer is
 * the list of final recipients to queue, each with its class, or a reply to send. Maps are
 * opened read-only by resolve_open() before the caller chroots; a rebuilt map is seen after
 * the next resolve_open() (smtpd: on reload). No I/O besides map lookups, so the unit tests
 * run it over maps built in a temporary directory.
 *
 * Resolution of one address A (recursive, depth-first, each address expanded once):
 *  1. virtual_alias_map: the key A (lower-cased), else A without its extension (see below),
 *     else the catch-all key "@domain". The value is one or more addresses separated by
 *     commas or white space, any domain. A target "@other" replaces the domain and keeps A's
 *     local part (`@a.test @b.test`); a bare name gets "@<first local domain>". When only
 *     the key without the extension matched, the extension goes on every other target
 *     (`info@a.test bob@b.test`: info+x@a.test -> bob+x@b.test; Postfix's default
 *     propagate_unmatched_extensions for virtual).
 *  2. Else, when A's domain is in local_domains: alias_map (built by map_build_aliases()),
 *     keyed by A's local part, else by the local part without its extension (the extension
 *     is then dropped, as Postfix does for aliases). Targets as above; a target "\name" is
 *     final (not expanded again, as in aliases(5)).
 *  3. Else A is a final recipient.
 *  A target equal to the address being expanded (ignoring case) is kept as a final recipient
 *  (`alice: alice, bob` delivers to both); a target equal to any other address further up
 *  the chain is a cycle: 550 5.4.6 alias loop, unless that address is among its own targets
 *  (it is then a final recipient already and the walk stops there). Finals are deduplicated
 *  over the whole list (a second RCPT that expands to an address already present adds
 *  nothing). Extensions change none of this: a propagated extension that grows on every
 *  round (`a: b`, `b: a+z` in virtual) ends at RESOLVE_MAX_DEPTH or RESOLVE_ADDR_MAX.
 *
 * Address extensions (recipient_delimiter, empty = off): the local part "user+tag" splits at
 * the first character that is in the delimiter set into "user" and the extension "+tag"
 * (delimiter included), as Postfix's split_addr(): never when the local part starts with a
 * delimiter or has none, is quoted, or is postmaster or MAILER-DAEMON (any case), nor, when
 * '-' is a delimiter, owner-* or *-request. "user+" splits with the extension "+", "user++x"
 * with "++x". A final recipient keeps its extension (Delivered-To, logs and DSNs show it);
 * only the lookups fall back to the address without it.
 *
 * Each final recipient is classified: RESOLVE_LOCAL (domain in local_domains; looked up in
 * mailbox_map by address, then without its extension, then "@domain", as local does:
 * resolve_mailbox_find()), RESOLVE_RELAY_DOMAIN (domain in relay_domains, subdomains
 * included as in Postfix: see resolve_domain_match()),
 * RESOLVE_REMOTE (anything else: the caller decides whether this client may relay).
 * local_domains match exactly; a domain in both lists is local. Domains are compared
 * without case and returned lower-cased, without a trailing dot; local parts are kept as
 * given (lookups lower-case them). An address without a domain (the RFC 5321 <postmaster>)
 * gets the first local domain.
 *
 * Replies (struct resolve_err, ready for the SMTP reply):
 *  550 5.1.1 User unknown   the address is local and not in mailbox_map, or every final local
 *                           recipient of its expansion is unknown. An expansion with some
 *                           known recipients is accepted; its unknown local members come back
 *                           with known = 0 and local bounces them (the sender gets a DSN).
 *  550 5.4.6 alias loop     a cycle, or nesting deeper than RESOLVE_MAX_DEPTH.
 *  550 5.5.3                more than RESOLVE_MAX_ADDRS final recipients from one address.
 *  553 5.1.3                no domain and no local_domains, or an empty local part.
 *  451 4.3.0                a map lookup failed (or a value exceeded RESOLVE_VALUE_MAX).
 *  451 4.3.5                a map holds a target that is not an address (configuration).
 * On any error nothing is appended to the list. */
#ifndef POSTERN_RESOLVE_H
#define POSTERN_RESOLVE_H

#include <stddef.h>

#include "config.h"

#define RESOLVE_MAX_ADDRS   1000    /* final recipients from one resolve_rcpt() */
#define RESOLVE_MAX_DEPTH   20      /* alias nesting */
#define RESOLVE_MAX_VISITS  4000    /* distinct addresses looked at in one resolve_rcpt() */
#define RESOLVE_VALUE_MAX   65536   /* longest map value read (an alias list) */

enum resolve_class {
    RESOLVE_LOCAL = 1,              /* delivered here by local */
    RESOLVE_RELAY_DOMAIN,           /* relay_domains: accepted from anyone, relayed */
    RESOLVE_REMOTE                  /* elsewhere: only from clients allowed to relay */
};

struct resolve_rcpt {
    char               *address;    /* final recipient */
    char               *original;   /* as passed to resolve_rcpt(): ORCPT, Delivered-To */
    const char         *domain;     /* points into address, after the last '@' */
    enum resolve_class  cls;
    int                 known;      /* RESOLVE_LOCAL: 1 = in mailbox_map; others: 1 */
    int                 expanded;   /* 1 = reached through an alias (address != original) */
};

struct resolve_list {
    struct resolve_rcpt *rcpt;
    size_t               n;
    size_t               cap;
};

struct resolve_err {
    int  code;                      /* 451, 550, 553 */
    char enh[12];                   /* "5.1.1" */
    char text[512];                 /* "<bob@b.test>: Recipient address rejected: ..." */
};

struct resolve;

/* resolve_open - read local_domains and relay_domains, open virtual_alias_map, alias_map
 * and mailbox_map (each only if configured; SOURCE.db read-only). NULL with the reason
 * ("path: message") in err when a configured map cannot be opened. */
struct resolve *resolve_open(const struct config *, char *err, size_t errlen);
void            resolve_close(struct resolve **);       /* closes the maps, sets NULL */

/* resolve_rcpt - resolve address (a path as parsed from RCPT TO, without <>) and append the
 * final recipients to out. 0: at least one appended or all already present; -1: err filled
 * in (code 4xx temporary, 5xx permanent), out unchanged. */
int  resolve_rcpt(struct resolve *, const char *address, struct resolve_list *out,
                  struct resolve_err *err);

/* resolve_domain_class - the class of a domain (any case, trailing dot ignored). */
enum resolve_class resolve_domain_class(const struct resolve *, const char *domain);

/* resolve_domain_match - does a domain-list entry match domain, both lower-case without a
 * trailing dot? As Postfix's parent_domain_matches_subdomains: "example.com" matches
 * example.com and every name under it (sub.example.com, a.b.example.com), ".example.com"
 * only the names under it; never "badexample.com". An empty entry or "." matches nothing.
 * Every key that lists domains this way (today relay_domains) goes through here. */
int                resolve_domain_match(const char *entry, const char *domain);
const char        *resolve_class_name(enum resolve_class);   /* "local", "relay", "remote" */

/* resolve_ext_split - the length of the user part of addr's local part ("user" of
 * "user+tag@domain") when it has an extension by the rules above and delims (the
 * recipient_delimiter set), else 0. */
size_t resolve_ext_split(const char *addr, const char *delims);

/* resolve_ext_strip - addr without its extension (allocated), and *ext (allocated, may be
 * NULL) the extension with its delimiter ("+tag"); NULL (and *ext NULL) if it has none. */
char  *resolve_ext_strip(const char *addr, const char *delims, char **ext);

struct map;

/* resolve_mailbox_find - look a final local recipient up in a mailbox map: addr, addr
 * without its extension (delims), then "@domain". As map_lookup(): 1 found (value in val),
 * 0 not found, -1 lookup error. resolve_rcpt() and local use it, so they agree. */
int    resolve_mailbox_find(struct map *, const char *addr, const char *delims, char *val,
                            size_t vallen);

void resolve_list_init(struct resolve_list *);
void resolve_list_free(struct resolve_list *);          /* frees every entry, leaves empty */

#endif
