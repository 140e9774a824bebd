/* smtp_addr - RFC 5321 paths, SMTPUTF8 and the ESMTP parameters of MAIL and RCPT.
 *
 * smtp_addr_parse_path() checks `<>`, `<local@domain>` and `<@route,@route:local@domain>`
 * (the source route is dropped), dot-strings and quoted local parts, domains and address
 * literals, the lengths of RFC 5321 4.5.3.1 (local part 64, domain 255, path 256 octets),
 * and UTF-8 (RFC 6531: accepted only when the caller allows it, and then validated).
 * smtp_addr_parse_mail_params() and smtp_addr_parse_rcpt_params() check SIZE, BODY,
 * SMTPUTF8, RET, ENVID, NOTIFY and ORCPT (xtext decoded, RFC 3461). Every failure comes back
 * as a ready-made reply (code, enhanced code, text) in struct smtp_addr_err. No I/O, no
 * allocation. Used by smtpd; fuzzed by tests/fuzz/fuzz_smtp_addr.c. */
#ifndef POSTERN_SMTP_ADDR_H
#define POSTERN_SMTP_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_LOCAL_MAX    64          /* octets */
#define SMTP_DOMAIN_MAX   255
#define SMTP_PATH_MAX     256         /* with the angle brackets */
#define SMTP_ENVID_MAX    100         /* RFC 3461, after decoding */
#define SMTP_ORCPT_MAX    500         /* "type;address" after decoding */

/* Flags for smtp_addr_parse_path(). */
#define SMTP_PATH_UTF8        0x01    /* the transaction has SMTPUTF8: allow UTF-8 */
#define SMTP_PATH_SENDER      0x02    /* a reverse-path: `<>` allowed, 5.1.7 codes */
#define SMTP_PATH_POSTMASTER  0x04    /* `<postmaster>` without a domain allowed (RCPT) */

/* The reply for a rejected path or parameter. */
struct smtp_addr_err {
    int         code;                 /* 501, 553, 555, ... */
    const char *enh;                  /* "5.1.3", ... */
    const char *text;                 /* "Bad recipient address syntax" */
};

struct smtp_path {
    char    addr[SMTP_PATH_MAX];      /* "local@domain" as sent (route dropped); "" for <> */
    size_t  local_len;                /* addr[0, local_len) is the local part */
    const char *domain;               /* points into addr after '@'; "" if none */
    int     is_null;                  /* <> */
    int     is_postmaster;            /* <postmaster> without a domain */
    int     has_utf8;                 /* a non-ASCII octet appears */
    int     domain_literal;           /* the domain is [address literal] */
};

/* smtp_addr_parse_path - parse the path at s[0, len); *end gets the offset just after '>'
 * (parameters, if any, follow a space). 0, or -1 with *err set (code 501 or 553). */
int smtp_addr_parse_path(const char *s, size_t len, int flags, struct smtp_path *,
                         size_t *end, struct smtp_addr_err *err);

/* BODY= values */
#define SMTP_BODY_UNSET    0
#define SMTP_BODY_7BIT     1
#define SMTP_BODY_8BITMIME 2
/* RET= values, as in ipc msg_commit.ret */
#define SMTP_RET_UNSET     0
#define SMTP_RET_FULL      1
#define SMTP_RET_HDRS      2
/* NOTIFY= bits, as in ipc msg_commit.notify; 0 = not given */
#define SMTP_NOTIFY_NEVER   0x01u
#define SMTP_NOTIFY_SUCCESS 0x02u
#define SMTP_NOTIFY_FAILURE 0x04u
#define SMTP_NOTIFY_DELAY   0x08u

struct smtp_mail_params {
    int      size_set;
    uint64_t size;                    /* UINT64_MAX if the number overflowed */
    int      body;                    /* SMTP_BODY_* */
    int      smtputf8;
    int      ret;                     /* SMTP_RET_* */
    char     envid[SMTP_ENVID_MAX + 1];  /* decoded; "" if not given */
};

struct smtp_rcpt_params {
    uint32_t notify;                  /* SMTP_NOTIFY_* */
    char     orcpt[SMTP_ORCPT_MAX + 1];  /* "rfc822;addr" decoded; "" if not given */
};

/* smtp_addr_parse_mail_params - the parameters after the MAIL path: s[0, len) is what
 * follows '>' (empty, or a space and KEYWORD[=VALUE] items separated by spaces). Unknown
 * keyword: 555 5.5.4; bad or repeated value: 501 5.5.4. 0 or -1 with *err. */
int smtp_addr_parse_mail_params(const char *s, size_t len, struct smtp_mail_params *,
                                struct smtp_addr_err *err);
/* smtp_addr_parse_rcpt_params - likewise for RCPT (NOTIFY, ORCPT). utf8: the transaction
 * has SMTPUTF8, which allows the utf-8 address type in ORCPT. */
int smtp_addr_parse_rcpt_params(const char *s, size_t len, int utf8,
                                struct smtp_rcpt_params *, struct smtp_addr_err *err);

/* smtp_addr_utf8_valid - 1 if s[0, len) is well-formed UTF-8 (no overlongs, surrogates or
 * code points over U+10FFFF). */
int smtp_addr_utf8_valid(const char *s, size_t len);
/* smtp_addr_xtext_decode - RFC 3461 xtext into out (NUL-terminated); -1 if malformed or
 * longer than outlen-1 after decoding. */
int smtp_addr_xtext_decode(const char *s, size_t len, char *out, size_t outlen);

#endif
