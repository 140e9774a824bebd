/* smtp_addr - RFC 5321 paths, SMTPUTF8 and the ESMTP parameters of MAIL and RCPT.
 *
 * A recursive-descent parser over the grammar of RFC 5321 4.1.2 with the UTF-8 extensions
 * of RFC 6531 3.3: one index walks the input, each production either advances it or fails.
 * Nothing here trusts a length it did not check; the decoded ENVID and ORCPT may not hold
 * control characters, since they later end up in headers of delivery status notifications. */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "smtp_addr.h"

struct smtp_addr_cur {
    const char *s;
    size_t      len;
    size_t      i;
    int         utf8;                 /* non-ASCII allowed */
    int         saw_utf8;             /* a non-ASCII octet was seen */
};

/* smtp_addr_set - fill in a reply. */
static int
smtp_addr_set(struct smtp_addr_err *err, int code, const char *enh, const char *text)
{
    err->code = code;
    err->enh = enh;
    err->text = text;
    return -1;
}

/* smtp_addr_bad - the syntax reply for a sender or a recipient. */
static int
smtp_addr_bad(struct smtp_addr_err *err, int flags)
{
    if (flags & SMTP_PATH_SENDER)
        return smtp_addr_set(err, 501, "5.1.7", "Bad sender address syntax");
    return smtp_addr_set(err, 501, "5.1.3", "Bad recipient address syntax");
}

/* smtp_addr_is_alpha - ASCII letter (never locale-dependent). */
static int
smtp_addr_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* smtp_addr_is_digit - ASCII digit. */
static int
smtp_addr_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* smtp_addr_is_atext - RFC 5322 atext. */
static int
smtp_addr_is_atext(unsigned char c)
{
    return smtp_addr_is_alpha(c) || smtp_addr_is_digit(c)
        || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* smtp_addr_peek - the current octet, or -1 at the end. */
static int
smtp_addr_peek(const struct smtp_addr_cur *c)
{
    return c->i < c->len ? (unsigned char)c->s[c->i] : -1;
}

/* smtp_addr_high - take a non-ASCII octet if allowed; 0 if not taken. */
static int
smtp_addr_high(struct smtp_addr_cur *c, int ch)
{
    if (ch < 0x80)
        return 0;
    c->saw_utf8 = 1;
    c->i++;
    return 1;
}

/* smtp_addr_subdomain - Let-dig [Ldh-str] (U-labels: non-ASCII octets count as letters). */
static int
smtp_addr_subdomain(struct smtp_addr_cur *c)
{
    size_t start = c->i;
    int    ch, last = 0;

    while ((ch = smtp_addr_peek(c)) >= 0) {
        if (smtp_addr_is_alpha((unsigned char)ch) || smtp_addr_is_digit((unsigned char)ch)) {
            c->i++;
            last = ch;
        } else if (ch == '-' && c->i > start) {
            c->i++;
            last = ch;
        } else if (smtp_addr_high(c, ch)) {
            last = ch;
        } else {
            break;
        }
    }
    if (c->i == start || last == '-' || c->i - start > 63)
        return -1;
    return 0;
}

/* smtp_addr_domain - sub-domain *("." sub-domain). */
static int
smtp_addr_domain(struct smtp_addr_cur *c)
{
    for (;;) {
        if (smtp_addr_subdomain(c) == -1)
            return -1;
        if (smtp_addr_peek(c) != '.')
            return 0;
        c->i++;
    }
}

/* smtp_addr_literal_ok - the text between '[' and ']' of an address literal. */
static int
smtp_addr_literal_ok(const char *s, size_t len)
{
    char            tmp[SMTP_DOMAIN_MAX + 1];
    unsigned char   a6[16];
    size_t          i, tag;

    if (len == 0 || len > SMTP_DOMAIN_MAX)
        return 0;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (len > 5 && strncasecmp(tmp, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, tmp + 5, a6) == 1;
    if (smtp_addr_is_digit((unsigned char)tmp[0]) && strchr(tmp, ':') == NULL)
        return inet_pton(AF_INET, tmp, a6) == 1;
    /* General-address-literal: Standardized-tag ":" 1*dcontent */
    for (tag = 0; tag < len && tmp[tag] != ':'; tag++)
        if (!smtp_addr_is_alpha((unsigned char)tmp[tag])
            && !smtp_addr_is_digit((unsigned char)tmp[tag]) && tmp[tag] != '-')
            return 0;
    if (tag == 0 || tag == len || tag + 1 == len || tmp[tag - 1] == '-')
        return 0;
    for (i = tag + 1; i < len; i++) {
        unsigned char ch = (unsigned char)tmp[i];
        if (ch < 33 || ch > 126 || (ch >= 91 && ch <= 93))
            return 0;
    }
    return 1;
}

/* smtp_addr_domain_or_literal - Domain / address-literal; *literal says which. */
static int
smtp_addr_domain_or_literal(struct smtp_addr_cur *c, int *literal)
{
    const char *close;
    size_t      start;

    *literal = 0;
    if (smtp_addr_peek(c) != '[')
        return smtp_addr_domain(c);
    start = c->i + 1;
    close = memchr(c->s + start, ']', c->len - start);
    if (close == NULL || !smtp_addr_literal_ok(c->s + start, (size_t)(close - c->s) - start))
        return -1;
    c->i = (size_t)(close - c->s) + 1;
    *literal = 1;
    return 0;
}

/* smtp_addr_local - Dot-string / Quoted-string. */
static int
smtp_addr_local(struct smtp_addr_cur *c)
{
    int ch, atom = 0;

    if (smtp_addr_peek(c) == '"') {
        c->i++;
        for (;;) {
            ch = smtp_addr_peek(c);
            if (ch < 0)
                return -1;
            if (ch == '"') {
                c->i++;
                return 0;
            }
            if (ch == '\\') {
                c->i++;
                ch = smtp_addr_peek(c);
                if (ch < 32 || ch > 126)
                    return -1;
                c->i++;
            } else if (ch >= 32 && ch <= 126) {
                c->i++;
            } else if (!smtp_addr_high(c, ch)) {
                return -1;
            }
        }
    }
    for (;;) {
        ch = smtp_addr_peek(c);
        if (ch >= 0 && smtp_addr_is_atext((unsigned char)ch)) {
            c->i++;
            atom = 1;
        } else if (ch >= 0x80 && smtp_addr_high(c, ch)) {
            atom = 1;
        } else if (ch == '.' && atom) {
            c->i++;
            atom = 0;
        } else {
            break;
        }
    }
    return atom ? 0 : -1;
}

/* smtp_addr_parse_path - parse `<>` or `<[route:]local@domain>`. */
int
smtp_addr_parse_path(const char *s, size_t len, int flags, struct smtp_path *p,
                     size_t *end, struct smtp_addr_err *err)
{
    struct smtp_addr_cur c = { s, len, 0, (flags & SMTP_PATH_UTF8) != 0, 0 };
    size_t local_start, local_end, dom_start, dom_end, dom_len;
    int    literal = 0;

    memset(p, 0, sizeof(*p));
    p->domain = p->addr;
    *end = 0;
    if (smtp_addr_peek(&c) != '<')
        return smtp_addr_bad(err, flags);
    c.i++;
    if (smtp_addr_peek(&c) == '>') {
        if (!(flags & SMTP_PATH_SENDER))
            return smtp_addr_bad(err, flags);
        p->is_null = 1;
        *end = 2;
        return 0;
    }
    if (smtp_addr_peek(&c) == '@') {
        /* A-d-l ":" - a source route, parsed and then ignored (RFC 5321 4.1.2, C.) */
        for (;;) {
            if (smtp_addr_peek(&c) != '@')
                return smtp_addr_bad(err, flags);
            c.i++;
            if (smtp_addr_domain_or_literal(&c, &literal) == -1)
                return smtp_addr_bad(err, flags);
            if (smtp_addr_peek(&c) == ':')
                break;
            if (smtp_addr_peek(&c) != ',')
                return smtp_addr_bad(err, flags);
            c.i++;
        }
        c.i++;
    }
    local_start = c.i;
    if (smtp_addr_local(&c) == -1)
        return smtp_addr_bad(err, flags);
    local_end = c.i;
    if (smtp_addr_peek(&c) == '>' && (flags & SMTP_PATH_POSTMASTER)
        && local_end - local_start == 10 && local_start == 1
        && strncasecmp(s + local_start, "postmaster", 10) == 0) {
        memcpy(p->addr, s + local_start, 10);
        p->addr[10] = '\0';
        p->local_len = 10;
        p->domain = p->addr + 10;
        p->is_postmaster = 1;
        *end = c.i + 1;
        return 0;
    }
    if (smtp_addr_peek(&c) != '@')
        return smtp_addr_bad(err, flags);
    c.i++;
    dom_start = c.i;
    if (smtp_addr_domain_or_literal(&c, &literal) == -1)
        return smtp_addr_bad(err, flags);
    dom_end = c.i;
    if (smtp_addr_peek(&c) != '>')
        return smtp_addr_bad(err, flags);
    c.i++;
    dom_len = dom_end - dom_start;
    if (c.i > SMTP_PATH_MAX || local_end - local_start > SMTP_LOCAL_MAX
        || dom_len > SMTP_DOMAIN_MAX) {
        if (flags & SMTP_PATH_SENDER)
            return smtp_addr_set(err, 501, "5.1.7", "Sender address too long");
        return smtp_addr_set(err, 501, "5.1.3", "Recipient address too long");
    }
    if (c.saw_utf8) {
        if (!c.utf8)
            return smtp_addr_set(err, 553, "5.6.7",
                                 "Non-ASCII address requires SMTPUTF8");
        if (!smtp_addr_utf8_valid(s + local_start, dom_end - local_start))
            return smtp_addr_set(err, 501, "5.6.7", "Malformed UTF-8 in address");
        p->has_utf8 = 1;
    }
    memcpy(p->addr, s + local_start, dom_end - local_start);
    p->addr[dom_end - local_start] = '\0';
    p->local_len = local_end - local_start;
    p->domain = p->addr + p->local_len + 1;
    p->domain_literal = literal;
    *end = c.i;
    return 0;
}

/* smtp_addr_utf8_valid - strict UTF-8 (RFC 3629). */
int
smtp_addr_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               i = 0, n, k;
    uint32_t             cp;

    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        if (p[i] >= 0xC2 && p[i] <= 0xDF) {
            n = 1;
            cp = p[i] & 0x1F;
        } else if (p[i] >= 0xE0 && p[i] <= 0xEF) {
            n = 2;
            cp = p[i] & 0x0F;
        } else if (p[i] >= 0xF0 && p[i] <= 0xF4) {
            n = 3;
            cp = p[i] & 0x07;
        } else {
            return 0;
        }
        if (len - i - 1 < n)
            return 0;
        for (k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF
            || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* smtp_addr_hexval - one hex digit, or -1. */
static int
smtp_addr_hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* smtp_addr_xtext_decode - decode "+HH" escapes; refuse control characters. */
int
smtp_addr_xtext_decode(const char *s, size_t len, char *out, size_t outlen)
{
    size_t i, o = 0;
    int    hi, lo;
    unsigned char ch;

    for (i = 0; i < len; i++) {
        ch = (unsigned char)s[i];
        if (ch == '+') {
            if (len - i < 3 || (hi = smtp_addr_hexval(s[i + 1])) < 0
                || (lo = smtp_addr_hexval(s[i + 2])) < 0)
                return -1;
            ch = (unsigned char)(hi * 16 + lo);
            i += 2;
            if (ch < 32 || ch == 127)
                return -1;
        } else if (ch < 33 || ch > 126 || ch == '=') {
            return -1;
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = (char)ch;
    }
    if (outlen == 0)
        return -1;
    out[o] = '\0';
    return 0;
}

/* A parameter as found: keyword and optional value. */
struct smtp_addr_param {
    const char *key;
    size_t      keylen;
    const char *val;                  /* NULL: no '=' */
    size_t      vallen;
};

/* smtp_addr_next_param - the next KEYWORD[=VALUE]; 1 found, 0 at the end, -1 malformed. */
static int
smtp_addr_next_param(const char *s, size_t len, size_t *i, struct smtp_addr_param *pa)
{
    size_t j;

    if (*i == 0 && len > 0 && s[0] != ' ')
        return -1;                    /* parameters must follow the path after a space */
    while (*i < len && s[*i] == ' ')
        (*i)++;
    if (*i == len)
        return 0;
    j = *i;
    while (j < len && s[j] != ' ' && s[j] != '=')
        j++;
    pa->key = s + *i;
    pa->keylen = j - *i;
    pa->val = NULL;
    pa->vallen = 0;
    if (pa->keylen == 0 || !(smtp_addr_is_alpha((unsigned char)s[*i])
                             || smtp_addr_is_digit((unsigned char)s[*i])))
        return -1;
    for (size_t k = *i; k < j; k++)
        if (!smtp_addr_is_alpha((unsigned char)s[k]) && !smtp_addr_is_digit((unsigned char)s[k])
            && s[k] != '-')
            return -1;
    if (j < len && s[j] == '=') {
        j++;
        pa->val = s + j;
        while (j < len && s[j] != ' ') {
            unsigned char ch = (unsigned char)s[j];
            if (ch == '=' || ch < 33 || ch == 127)
                return -1;
            j++;
        }
        pa->vallen = (size_t)(s + j - pa->val);
        if (pa->vallen == 0)
            return -1;
    }
    *i = j;
    return 1;
}

/* smtp_addr_key - is the parameter's keyword k (any case)? */
static int
smtp_addr_key(const struct smtp_addr_param *pa, const char *k)
{
    return strlen(k) == pa->keylen && strncasecmp(pa->key, k, pa->keylen) == 0;
}

/* smtp_addr_val - is the parameter's value v (any case)? */
static int
smtp_addr_val(const char *val, size_t vallen, const char *v)
{
    return strlen(v) == vallen && strncasecmp(val, v, vallen) == 0;
}

/* smtp_addr_badparam - 501 5.5.4 with a text. */
static int
smtp_addr_badparam(struct smtp_addr_err *err, const char *text)
{
    return smtp_addr_set(err, 501, "5.5.4", text);
}

/* smtp_addr_parse_mail_params - SIZE, BODY, SMTPUTF8, RET, ENVID. */
int
smtp_addr_parse_mail_params(const char *s, size_t len, struct smtp_mail_params *mp,
                            struct smtp_addr_err *err)
{
    struct smtp_addr_param pa;
    size_t i = 0, k;
    int    r, seen_envid = 0;

    memset(mp, 0, sizeof(*mp));
    while ((r = smtp_addr_next_param(s, len, &i, &pa)) == 1) {
        if (smtp_addr_key(&pa, "SIZE")) {
            if (mp->size_set || pa.val == NULL || pa.vallen > 20)
                return smtp_addr_badparam(err, "Bad SIZE parameter");
            mp->size_set = 1;
            for (k = 0; k < pa.vallen; k++) {
                unsigned d;
                if (!smtp_addr_is_digit((unsigned char)pa.val[k]))
                    return smtp_addr_badparam(err, "Bad SIZE parameter");
                d = (unsigned)(pa.val[k] - '0');
                if (mp->size > (UINT64_MAX - d) / 10)
                    mp->size = UINT64_MAX;
                else if (mp->size != UINT64_MAX)
                    mp->size = mp->size * 10 + d;
            }
        } else if (smtp_addr_key(&pa, "BODY")) {
            if (mp->body != SMTP_BODY_UNSET || pa.val == NULL)
                return smtp_addr_badparam(err, "Bad BODY parameter");
            if (smtp_addr_val(pa.val, pa.vallen, "7BIT"))
                mp->body = SMTP_BODY_7BIT;
            else if (smtp_addr_val(pa.val, pa.vallen, "8BITMIME"))
                mp->body = SMTP_BODY_8BITMIME;
            else
                return smtp_addr_set(err, 555, "5.5.4", "Unsupported BODY parameter");
        } else if (smtp_addr_key(&pa, "SMTPUTF8")) {
            if (mp->smtputf8 || pa.val != NULL)
                return smtp_addr_badparam(err, "Bad SMTPUTF8 parameter");
            mp->smtputf8 = 1;
        } else if (smtp_addr_key(&pa, "RET")) {
            if (mp->ret != SMTP_RET_UNSET || pa.val == NULL)
                return smtp_addr_badparam(err, "Bad RET parameter");
            if (smtp_addr_val(pa.val, pa.vallen, "FULL"))
                mp->ret = SMTP_RET_FULL;
            else if (smtp_addr_val(pa.val, pa.vallen, "HDRS"))
                mp->ret = SMTP_RET_HDRS;
            else
                return smtp_addr_badparam(err, "Bad RET parameter");
        } else if (smtp_addr_key(&pa, "ENVID")) {
            if (seen_envid || pa.val == NULL
                || smtp_addr_xtext_decode(pa.val, pa.vallen, mp->envid,
                                          sizeof(mp->envid)) == -1)
                return smtp_addr_badparam(err, "Bad ENVID parameter");
            seen_envid = 1;
        } else {
            return smtp_addr_set(err, 555, "5.5.4", "Unsupported MAIL parameter");
        }
    }
    if (r == -1)
        return smtp_addr_badparam(err, "Bad MAIL parameter syntax");
    return 0;
}

/* smtp_addr_notify - NEVER, or a comma list of SUCCESS, FAILURE, DELAY. */
static int
smtp_addr_notify(const char *v, size_t len, uint32_t *out)
{
    size_t   i = 0, j;
    uint32_t bit;

    *out = 0;
    while (i <= len) {
        for (j = i; j < len && v[j] != ','; j++)
            ;
        if (smtp_addr_val(v + i, j - i, "NEVER"))
            bit = SMTP_NOTIFY_NEVER;
        else if (smtp_addr_val(v + i, j - i, "SUCCESS"))
            bit = SMTP_NOTIFY_SUCCESS;
        else if (smtp_addr_val(v + i, j - i, "FAILURE"))
            bit = SMTP_NOTIFY_FAILURE;
        else if (smtp_addr_val(v + i, j - i, "DELAY"))
            bit = SMTP_NOTIFY_DELAY;
        else
            return -1;
        if (*out & bit)
            return -1;
        *out |= bit;
        i = j + 1;
    }
    if ((*out & SMTP_NOTIFY_NEVER) && *out != SMTP_NOTIFY_NEVER)
        return -1;
    return 0;
}

/* smtp_addr_orcpt - "addr-type;xtext" into out as "addr-type;decoded". */
static int
smtp_addr_orcpt(const char *v, size_t len, int utf8, char *out, size_t outlen)
{
    const char *semi = memchr(v, ';', len);
    size_t      tlen, k;

    if (semi == NULL)
        return -1;
    tlen = (size_t)(semi - v);
    if (tlen == 0 || tlen + 2 > outlen)
        return -1;
    for (k = 0; k < tlen; k++)
        if (!smtp_addr_is_atext((unsigned char)v[k]))
            return -1;
    if (!smtp_addr_val(v, tlen, "rfc822") && !(utf8 && smtp_addr_val(v, tlen, "utf-8")))
        return -1;
    memcpy(out, v, tlen + 1);
    if (smtp_addr_xtext_decode(semi + 1, len - tlen - 1, out + tlen + 1,
                               outlen - tlen - 1) == -1)
        return -1;
    return out[tlen + 1] == '\0' ? -1 : 0;
}

/* smtp_addr_parse_rcpt_params - NOTIFY, ORCPT. */
int
smtp_addr_parse_rcpt_params(const char *s, size_t len, int utf8, struct smtp_rcpt_params *rp,
                            struct smtp_addr_err *err)
{
    struct smtp_addr_param pa;
    size_t i = 0;
    int    r;

    memset(rp, 0, sizeof(*rp));
    while ((r = smtp_addr_next_param(s, len, &i, &pa)) == 1) {
        if (smtp_addr_key(&pa, "NOTIFY")) {
            if (rp->notify != 0 || pa.val == NULL
                || smtp_addr_notify(pa.val, pa.vallen, &rp->notify) == -1)
                return smtp_addr_badparam(err, "Bad NOTIFY parameter");
        } else if (smtp_addr_key(&pa, "ORCPT")) {
            if (rp->orcpt[0] != '\0' || pa.val == NULL
                || smtp_addr_orcpt(pa.val, pa.vallen, utf8, rp->orcpt,
                                   sizeof(rp->orcpt)) == -1)
                return smtp_addr_badparam(err, "Bad ORCPT parameter");
        } else {
            return smtp_addr_set(err, 555, "5.5.4", "Unsupported RCPT parameter");
        }
    }
    if (r == -1)
        return smtp_addr_badparam(err, "Bad RCPT parameter syntax");
    return 0;
}
