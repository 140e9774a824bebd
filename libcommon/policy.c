/* policy - table values as actions, and the access tables smtpd consults at each stage.
 *
 * See policy.h for the action syntax and the lookup keys. Details the header leaves open:
 *  - Parent domains: "example.com" in a hash table matches the name and every subdomain
 *    (Postfix's parent_domain_matches_subdomains); ".example.com" keys are not looked up.
 *    Parents go down to the top-level label. An address literal ("[192.0.2.1]") or a bare
 *    address given as a name is looked up as given, without parents.
 *  - IPv6 client networks: the address as given, then its first 7, 6, ... 1 groups in the
 *    uncompressed form without leading zeros ("2001:db8:0:0:0:0:1", ..., "2001"). An
 *    IPv4-mapped address is looked up as given, then as the IPv4 address and its octets.
 *  - A sender or recipient without '@' is looked up as given, then as "name@".
 *  - cidr: tables answer the client stage only (other keys are not addresses).
 *  - WARN is reported and the search goes on with the next key or entry of the same table
 *    (for pcre: the rules after the WARN rule), then the next tables, as if the entry were
 *    not there. DUNNO ends that table.
 *  - A value that is not an access action (a hash table is only checked by
 *    policy_tables_validate) is logged and answered as DEFER 451 4.3.5 "Server
 *    configuration error", as Postfix does: mail is neither lost nor let through.
 * cidr and pcre tables are read and every value is checked at open, so a bad line stops the
 * daemon at start with file:line; hash tables are checked by policy_tables_validate. A hash
 * table that fails a lookup is logged and skipped. Out of memory is fatal (xmalloc). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "buf.h"
#include "cidr.h"
#include "log.h"
#include "map.h"
#include "policy.h"
#include "rules.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define POLICY_VALUE_MAX  2048             /* a hash value we read */
#define POLICY_LINE_MAX   65536            /* octets of a cidr logical line */
#define POLICY_FILE_MAX   (64L << 20)      /* octets of a cidr table */

enum policy_type { POLICY_HASH, POLICY_CIDR, POLICY_PCRE };

static const char *const policy_type_names[] = { "hash", "cidr", "pcre" };

struct policy_cidr_entry {
    struct cidr net;
    char       *value;
    int         line;
};

struct policy_table {
    enum policy_type          type;
    char                     *path;        /* absolute (confdir joined) */
    char                     *label;       /* "hash:/etc/postern/access" */
    struct map               *map;         /* hash */
    struct rules             *rules;       /* pcre */
    struct policy_cidr_entry *cidr;        /* cidr, in file order */
    size_t                    ncidr;
};

struct policy_tables {
    struct policy_table *t;
    size_t               n;
    char                *null_key;
};

/* policy_fail - format err and return -1. */
static int __attribute__((format(printf, 3, 4)))
policy_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* policy_kind_name - "REJECT", "OK", ... ("NONE"). */
const char *
policy_kind_name(enum policy_kind k)
{
    static const char *const names[] = {
        [POLICY_NONE] = "NONE", [POLICY_DUNNO] = "DUNNO", [POLICY_OK] = "OK",
        [POLICY_REJECT] = "REJECT", [POLICY_DEFER] = "DEFER", [POLICY_HOLD] = "HOLD",
        [POLICY_DISCARD] = "DISCARD", [POLICY_WARN] = "WARN", [POLICY_REPLACE] = "REPLACE",
        [POLICY_PREPEND] = "PREPEND", [POLICY_IGNORE] = "IGNORE",
    };

    if ((unsigned)k >= N(names) || names[k] == NULL)
        return "NONE";
    return names[k];
}

/* policy_stage_name - "client", "helo", "sender", "recipient". */
const char *
policy_stage_name(enum policy_stage s)
{
    switch (s) {
    case POLICY_CLIENT: return "client";
    case POLICY_HELO: return "helo";
    case POLICY_SENDER: return "sender";
    case POLICY_RECIPIENT: return "recipient";
    }
    return "unknown";
}

/* policy_stage_key - see policy.h. */
const char *
policy_stage_key(enum policy_stage s)
{
    switch (s) {
    case POLICY_CLIENT: return "smtpd_client_access";
    case POLICY_HELO: return "smtpd_helo_access";
    case POLICY_SENDER: return "smtpd_sender_access";
    case POLICY_RECIPIENT: return "smtpd_recipient_access";
    }
    return "unknown";
}

/* policy_skip_ws - past spaces and tabs. */
static const char *
policy_skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* policy_trimmed_len - the length of s without trailing white space. */
static size_t
policy_trimmed_len(const char *s)
{
    size_t len = strlen(s);

    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'
                       || s[len - 1] == '\n'))
        len--;
    return len;
}

/* policy_digits - count of digits at p (at most max+1, so "too many" shows). */
static size_t
policy_digits(const char *p, size_t max)
{
    size_t n = 0;

    while (n <= max && isdigit((unsigned char)p[n]))
        n++;
    return n;
}

/* policy_enh - does text start with an enhanced status code (RFC 3463: class 2, 4 or 5,
 * then 1-3 and 1-3 digits) followed by white space or the end? Its length, or 0. */
static size_t
policy_enh(const char *text, size_t len)
{
    size_t i = 2, n;

    if (len < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.')
        return 0;
    if ((n = policy_digits(text + i, 3)) < 1 || n > 3 || text[i + n] != '.')
        return 0;
    i += n + 1;
    if ((n = policy_digits(text + i, 3)) < 1 || n > 3)
        return 0;
    i += n;
    if (i < len && text[i] != ' ' && text[i] != '\t')
        return 0;
    return i;
}

/* policy_reply - REJECT/DEFER: code, enhanced code (from the text or the default) and
 * text. The enhanced code's class must agree with the reply code's. */
static int
policy_reply(struct policy_action *a, int code, const char *text, size_t len, char *err,
             size_t errlen)
{
    char   cls = (char)('0' + code / 100);
    size_t n = policy_enh(text, len);

    a->code = code;
    if (n > 0) {
        if (text[0] != cls)
            return policy_fail(err, errlen, "enhanced status code %.*s does not match "
                               "reply code %d", (int)n, text, code);
        memcpy(a->enh, text, n);
        a->enh[n] = '\0';
        text += n;
        len -= n;
        while (len > 0 && (*text == ' ' || *text == '\t')) {
            text++;
            len--;
        }
    } else {
        snprintf(a->enh, sizeof(a->enh), "%c.7.1", cls);
    }
    memcpy(a->text, text, len);
    a->text[len] = '\0';
    return 0;
}

/* policy_keyword - the kind a keyword names (any case); -1 if none. */
static int
policy_keyword(const char *word, size_t len)
{
    static const struct { const char *name; enum policy_kind kind; } words[] = {
        { "OK", POLICY_OK }, { "DUNNO", POLICY_DUNNO }, { "REJECT", POLICY_REJECT },
        { "DEFER", POLICY_DEFER }, { "HOLD", POLICY_HOLD }, { "DISCARD", POLICY_DISCARD },
        { "WARN", POLICY_WARN }, { "REPLACE", POLICY_REPLACE },
        { "PREPEND", POLICY_PREPEND }, { "IGNORE", POLICY_IGNORE },
    };

    for (size_t i = 0; i < N(words); i++)
        if (strlen(words[i].name) == len && strncasecmp(words[i].name, word, len) == 0)
            return (int)words[i].kind;
    return -1;
}

/* policy_action_parse - a table value as an action; see policy.h. */
int
policy_action_parse(const char *value, unsigned allowed, struct policy_action *a,
                    char *err, size_t errlen)
{
    const char *word, *text;
    size_t      wlen, tlen;
    int         kind, code = 0;

    memset(a, 0, sizeof(*a));
    word = policy_skip_ws(value != NULL ? value : "");
    wlen = strcspn(word, " \t\r\n");
    if (wlen == 0)
        return policy_fail(err, errlen, "empty action");
    text = policy_skip_ws(word + wlen);
    tlen = policy_trimmed_len(text);
    if (policy_digits(word, wlen) == wlen) {
        if (wlen != 3 || (word[0] != '4' && word[0] != '5'))
            return policy_fail(err, errlen, "reply code \"%.*s\" is not 4NN or 5NN",
                               (int)(wlen > 20 ? 20 : wlen), word);
        code = atoi(word);
        kind = code >= 500 ? POLICY_REJECT : POLICY_DEFER;
    } else if ((kind = policy_keyword(word, wlen)) == -1) {
        return policy_fail(err, errlen, "unknown action \"%.*s\"",
                           (int)(wlen > 60 ? 60 : wlen), word);
    }
    if ((allowed & POLICY_BIT(kind)) == 0)
        return policy_fail(err, errlen, "action %s is not allowed in this table",
                           policy_kind_name((enum policy_kind)kind));
    if (tlen >= POLICY_TEXT_MAX)
        return policy_fail(err, errlen, "%s text longer than %d octets",
                           policy_kind_name((enum policy_kind)kind), POLICY_TEXT_MAX - 1);
    a->kind = (enum policy_kind)kind;
    switch (a->kind) {
    case POLICY_REJECT:
        return policy_reply(a, code ? code : 550, text, tlen, err, errlen);
    case POLICY_DEFER:
        return policy_reply(a, code ? code : 450, text, tlen, err, errlen);
    case POLICY_REPLACE:
    case POLICY_PREPEND:
        if (tlen == 0)
            return policy_fail(err, errlen, "%s needs a text", policy_kind_name(a->kind));
        break;
    case POLICY_IGNORE:
        if (tlen > 0)
            return policy_fail(err, errlen, "IGNORE takes no text");
        break;
    case POLICY_OK:
    case POLICY_DUNNO:
        tlen = 0;                          /* a comment after OK changes nothing */
        break;
    default:
        break;
    }
    memcpy(a->text, text, tlen);
    a->text[tlen] = '\0';
    return 0;
}

/* ---- opening tables ---- */

/* policy_cidr_line - one logical line of a cidr table: `network value`. */
static int
policy_cidr_line(struct policy_table *t, int line, char *text, char *err, size_t errlen)
{
    struct policy_cidr_entry *e;
    struct policy_action      a;
    struct cidr               net;
    char                      why[256], *value;
    size_t                    len;

    len = strcspn(text, " \t");
    value = (char *)policy_skip_ws(text + len);
    text[len] = '\0';
    if (*value == '\0')
        return policy_fail(err, errlen, "%s:%d: missing value after network", t->path, line);
    if (policy_action_parse(value, POLICY_ACCESS, &a, why, sizeof(why)) == -1)
        return policy_fail(err, errlen, "%s:%d: %s", t->path, line, why);
    if (cidr_parse(text, &net) == -1)
        return policy_fail(err, errlen, "%s:%d: bad network \"%.100s\"", t->path, line, text);
    t->cidr = xrealloc(t->cidr, (t->ncidr + 1) * sizeof(*t->cidr));
    e = &t->cidr[t->ncidr];
    e->net = net;
    e->value = xstrdup(value);
    e->line = line;
    t->ncidr++;
    return 0;
}

/* policy_cidr_read - read a cidr table into logical lines (a line that starts with white
 * space continues the one before; blank and `#` lines are skipped). */
static int
policy_cidr_read(struct policy_table *t, FILE *fp, char *err, size_t errlen)
{
    struct buf  logical;
    char       *line = NULL;
    size_t      cap = 0, len;
    ssize_t     n;
    int         lineno = 0, start = 0, rc = 0;

    buf_init(&logical, 256);
    while ((n = getline(&line, &cap, fp)) != -1) {
        const char *p;

        lineno++;
        if (strlen(line) != (size_t)n) {
            rc = policy_fail(err, errlen, "%s:%d: NUL byte in line", t->path, lineno);
            break;
        }
        len = policy_trimmed_len(line);
        line[len] = '\0';
        p = policy_skip_ws(line);
        if (*p == '\0' || *p == '#')
            continue;
        if (p != line && start == 0) {
            rc = policy_fail(err, errlen, "%s:%d: continuation line without an entry "
                             "before it", t->path, lineno);
            break;
        }
        if (p == line && start != 0) {
            if ((rc = policy_cidr_line(t, start, logical.data, err, errlen)) == -1)
                break;
            buf_reset(&logical);
            start = 0;
        }
        if (logical.len + len >= POLICY_LINE_MAX) {
            rc = policy_fail(err, errlen, "%s:%d: line longer than %d octets", t->path,
                             start ? start : lineno, POLICY_LINE_MAX);
            break;
        }
        buf_append(&logical, line, len);
        if (start == 0)
            start = lineno;
    }
    if (rc == 0 && ferror(fp))
        rc = policy_fail(err, errlen, "%s: read: %s", t->path, strerror(errno));
    if (rc == 0 && start != 0)
        rc = policy_cidr_line(t, start, logical.data, err, errlen);
    buf_release(&logical);
    free(line);
    return rc;
}

/* policy_cidr_open - read the whole cidr table now; every line is checked. */
static int
policy_cidr_open(struct policy_table *t, char *err, size_t errlen)
{
    struct stat sb;
    FILE       *fp;
    int         rc;

    if ((fp = fopen(t->path, "re")) == NULL)
        return policy_fail(err, errlen, "%s: %s", t->path, strerror(errno));
    if (fstat(fileno(fp), &sb) == -1)
        rc = policy_fail(err, errlen, "%s: %s", t->path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        rc = policy_fail(err, errlen, "%s: not a regular file", t->path);
    else if (sb.st_size > POLICY_FILE_MAX)
        rc = policy_fail(err, errlen, "%s: file larger than 64 MB", t->path);
    else
        rc = policy_cidr_read(t, fp, err, errlen);
    fclose(fp);
    return rc;
}

struct policy_check_arg {
    const char *path;
    char       *err;
    size_t      errlen;
};

/* policy_check_rule - a pcre rule's value must be an access action. */
static int
policy_check_rule(void *arg, const struct rules_hit *hit)
{
    struct policy_check_arg *c = arg;
    struct policy_action     a;
    char                     why[256];

    if (policy_action_parse(hit->value, POLICY_ACCESS, &a, why, sizeof(why)) == -1) {
        snprintf(c->err, c->errlen, "%s:%d: %s", hit->file, hit->line, why);
        return 1;
    }
    return 0;
}

/* policy_check_record - a hash record's value must be an access action. */
static int
policy_check_record(void *arg, const char *key, const char *value)
{
    struct policy_check_arg *c = arg;
    struct policy_action     a;
    char                     why[256];

    if (policy_action_parse(value, POLICY_ACCESS, &a, why, sizeof(why)) == -1) {
        snprintf(c->err, c->errlen, "%s: key %.200s: %s", c->path, key, why);
        return 1;
    }
    return 0;
}

/* policy_spec_parse - `type:path` or a bare path (hash); the path made absolute. */
static int
policy_spec_parse(struct policy_table *t, const char *spec, const char *confdir, char *err,
                  size_t errlen)
{
    const char *colon = strchr(spec, ':'), *path = spec, *p;
    size_t      tlen;

    t->type = POLICY_HASH;
    if (colon != NULL && colon > spec) {
        for (p = spec; p < colon && isalnum((unsigned char)*p); p++)
            ;
        if (p == colon) {
            tlen = (size_t)(colon - spec);
            path = colon + 1;
            if (tlen == 4 && strncmp(spec, "hash", 4) == 0)
                t->type = POLICY_HASH;
            else if (tlen == 4 && strncmp(spec, "cidr", 4) == 0)
                t->type = POLICY_CIDR;
            else if (tlen == 4 && strncmp(spec, "pcre", 4) == 0)
                t->type = POLICY_PCRE;
            else
                return policy_fail(err, errlen, "%s: unknown table type", spec);
        }
    }
    if (*path == '\0')
        return policy_fail(err, errlen, "%s: missing path", spec);
    if (*path == '/' || confdir == NULL || *confdir == '\0')
        t->path = xstrdup(path);
    else
        t->path = xasprintf("%s/%s", confdir, path);
    t->label = xasprintf("%s:%s", policy_type_names[t->type], t->path);
    return 0;
}

/* policy_table_open - one spec. */
static int
policy_table_open(struct policy_table *t, const char *spec, const char *confdir,
                  uint32_t match_limit, char *err, size_t errlen)
{
    struct policy_check_arg c;

    if (policy_spec_parse(t, spec, confdir, err, errlen) == -1)
        return -1;
    switch (t->type) {
    case POLICY_HASH:
        return (t->map = map_open(t->path, err, errlen)) == NULL ? -1 : 0;
    case POLICY_CIDR:
        return policy_cidr_open(t, err, errlen);
    case POLICY_PCRE:
        if ((t->rules = rules_load(t->path, match_limit, err, errlen)) == NULL)
            return -1;
        c.path = t->path;
        c.err = err;
        c.errlen = errlen;
        return rules_walk(t->rules, policy_check_rule, &c) == 0 ? 0 : -1;
    }
    return -1;
}

/* policy_table_close - free what one table holds. */
static void
policy_table_close(struct policy_table *t)
{
    map_close(&t->map);
    rules_free(&t->rules);
    for (size_t i = 0; i < t->ncidr; i++)
        free(t->cidr[i].value);
    free(t->cidr);
    free(t->path);
    free(t->label);
    memset(t, 0, sizeof(*t));
}

/* policy_spec_file - see policy.h. */
char *
policy_spec_file(const char *spec, const char *confdir)
{
    struct policy_table t;
    char                err[256];
    char               *out;

    memset(&t, 0, sizeof(t));
    if (policy_spec_parse(&t, spec, confdir, err, sizeof(err)) == -1)
        return NULL;
    out = t.type == POLICY_HASH ? xasprintf("%s.db", t.path) : xstrdup(t.path);
    policy_table_close(&t);
    return out;
}

/* policy_tables_open - open every spec; see policy.h. */
struct policy_tables *
policy_tables_open(char *const *specs, size_t n, const char *confdir, uint32_t match_limit,
                   const char *null_key, char *err, size_t errlen)
{
    struct policy_tables *pt = xcalloc(1, sizeof(*pt));

    pt->t = xcalloc(n ? n : 1, sizeof(*pt->t));
    pt->null_key = xstrdup(null_key != NULL ? null_key : "<>");
    for (size_t i = 0; i < n; i++) {
        if (policy_table_open(&pt->t[i], specs[i], confdir, match_limit, err, errlen) == -1) {
            pt->n = i + 1;
            policy_tables_free(&pt);
            return NULL;
        }
    }
    pt->n = n;
    return pt;
}

/* policy_tables_free - close every table; sets *ptp = NULL. */
void
policy_tables_free(struct policy_tables **ptp)
{
    struct policy_tables *pt = *ptp;

    if (pt == NULL)
        return;
    for (size_t i = 0; i < pt->n; i++)
        policy_table_close(&pt->t[i]);
    free(pt->t);
    free(pt->null_key);
    free(pt);
    *ptp = NULL;
}

size_t
policy_tables_count(const struct policy_tables *pt)
{
    return pt->n;
}

/* policy_tables_validate - every value of every table is an access action. */
int
policy_tables_validate(struct policy_tables *pt, char *err, size_t errlen)
{
    for (size_t i = 0; i < pt->n; i++) {
        struct policy_table    *t = &pt->t[i];
        struct policy_check_arg c = { t->path, err, errlen };
        struct policy_action    a;
        char                    why[256];

        switch (t->type) {
        case POLICY_HASH:
            if (map_walk(t->map, policy_check_record, &c, err, errlen) != 0)
                return -1;
            break;
        case POLICY_PCRE:
            if (rules_walk(t->rules, policy_check_rule, &c) != 0)
                return -1;
            break;
        case POLICY_CIDR:
            for (size_t j = 0; j < t->ncidr; j++)
                if (policy_action_parse(t->cidr[j].value, POLICY_ACCESS, &a, why,
                                        sizeof(why)) == -1)
                    return policy_fail(err, errlen, "%s:%d: %s", t->path, t->cidr[j].line,
                                       why);
            break;
        }
    }
    return 0;
}

/* ---- lookup keys ---- */

struct policy_keys {
    char   **v;
    size_t   n, cap;
};

/* policy_keys_add - append a copy of s[0, len), lower-cased if lower. */
static void
policy_keys_add(struct policy_keys *k, const char *s, size_t len, int lower)
{
    char *c;

    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->v = xrealloc(k->v, k->cap * sizeof(*k->v));
    }
    c = xstrndup(s, len);
    for (char *p = c; lower && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    k->v[k->n++] = c;
}

static void
policy_keys_free(struct policy_keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i]);
    free(k->v);
    memset(k, 0, sizeof(*k));
}

/* policy_is_address - is name an IPv4 or IPv6 address (no brackets)? */
static int
policy_is_address(const char *name)
{
    unsigned char a[16];

    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

/* policy_keys_domain - a domain and its parent domains ("a.b.c", "b.c", "c"); an address
 * literal or an address alone. */
static void
policy_keys_domain(struct policy_keys *k, const char *name)
{
    const char *p = name, *dot;

    if (*name == '\0')
        return;
    if (*name == '[' || policy_is_address(name)) {
        policy_keys_add(k, name, strlen(name), 1);
        return;
    }
    for (;;) {
        policy_keys_add(k, p, strlen(p), 1);
        if ((dot = strchr(p + 1, '.')) == NULL || dot[1] == '\0')
            break;
        p = dot + 1;
    }
}

/* policy_keys_v4 - 1.2.3.4, 1.2.3, 1.2, 1 from four bytes. */
static void
policy_keys_v4(struct policy_keys *k, const unsigned char *b)
{
    char s[INET_ADDRSTRLEN];

    for (int n = 4; n >= 1; n--) {
        size_t len = 0;

        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(s + len, sizeof(s) - len, "%s%u", i ? "." : "", b[i]);
        policy_keys_add(k, s, len, 0);
    }
}

/* policy_keys_addr - the client address as given, then its networks: IPv4 by octets, IPv6
 * by 16-bit groups (7 down to 1), an IPv4-mapped address as IPv4. */
static void
policy_keys_addr(struct policy_keys *k, const char *addr)
{
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    unsigned char              b[16];
    char                       s[64];

    if (addr == NULL || *addr == '\0')
        return;
    if (inet_pton(AF_INET, addr, b) == 1) {
        policy_keys_v4(k, b);
        return;
    }
    policy_keys_add(k, addr, strlen(addr), 1);
    if (inet_pton(AF_INET6, addr, b) != 1)
        return;
    if (memcmp(b, mapped, sizeof(mapped)) == 0) {
        policy_keys_v4(k, b + 12);
        return;
    }
    for (int n = 7; n >= 1; n--) {
        size_t len = 0;

        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(s + len, sizeof(s) - len, "%s%x", i ? ":" : "",
                                    (unsigned)(b[2 * i] << 8 | b[2 * i + 1]));
        policy_keys_add(k, s, len, 0);
    }
}

/* policy_keys_mail - user@domain, domain, parent domains, user@ (no '@': the address,
 * then address@). */
static void
policy_keys_mail(struct policy_keys *k, const char *addr)
{
    const char *at = strrchr(addr, '@');

    policy_keys_add(k, addr, strlen(addr), 1);
    if (at == NULL) {
        char *s = xasprintf("%s@", addr);

        policy_keys_add(k, s, strlen(s), 1);
        free(s);
        return;
    }
    policy_keys_domain(k, at + 1);
    if (at > addr)
        policy_keys_add(k, addr, (size_t)(at - addr) + 1, 1);
}

/* policy_client_named - is there a client name worth looking up? */
static int
policy_client_named(const char *name)
{
    return name != NULL && *name != '\0' && strcmp(name, "unknown") != 0;
}

/* policy_keys_hash - the hash table keys of a stage, in order. */
static void
policy_keys_hash(struct policy_keys *k, enum policy_stage stage, const char *key,
                 const char *addr, const char *null_key)
{
    switch (stage) {
    case POLICY_CLIENT:
        if (policy_client_named(key))
            policy_keys_domain(k, key);
        policy_keys_addr(k, addr);
        break;
    case POLICY_HELO:
        policy_keys_domain(k, key);
        break;
    case POLICY_SENDER:
    case POLICY_RECIPIENT:
        if (*key != '\0')
            policy_keys_mail(k, key);
        else if (stage == POLICY_SENDER && *null_key != '\0')
            policy_keys_add(k, null_key, strlen(null_key), 1);
        break;
    }
}

/* policy_keys_pcre - the pcre table subjects of a stage, in order, as given. */
static void
policy_keys_pcre(struct policy_keys *k, enum policy_stage stage, const char *key,
                 const char *addr, const char *null_key)
{
    switch (stage) {
    case POLICY_CLIENT:
        if (policy_client_named(key))
            policy_keys_add(k, key, strlen(key), 0);
        if (addr != NULL && *addr != '\0')
            policy_keys_add(k, addr, strlen(addr), 0);
        break;
    case POLICY_HELO:
    case POLICY_RECIPIENT:
        if (*key != '\0')
            policy_keys_add(k, key, strlen(key), 0);
        break;
    case POLICY_SENDER:
        if (*key != '\0')
            policy_keys_add(k, key, strlen(key), 0);
        else if (*null_key != '\0')
            policy_keys_add(k, null_key, strlen(null_key), 0);
        break;
    }
}

/* ---- checking ---- */

/* What one entry means for the search. */
enum policy_step {
    POLICY_STEP_ON,                        /* not found, or WARN: go on in this table */
    POLICY_STEP_NEXT_TABLE,                /* DUNNO, or the table failed */
    POLICY_STEP_ANSWER,                    /* out is the answer */
};

struct policy_check {
    const char           *logctx;          /* "" or "ctx: " */
    const char           *sep;
    policy_warn_fn        warn;
    void                 *warn_arg;
    struct policy_action *out;
};

/* policy_entry - what a found value means; where names the entry. */
static enum policy_step
policy_entry(struct policy_check *c, const char *value, const char *where)
{
    struct policy_action a;
    char                 why[256];

    if (policy_action_parse(value, POLICY_ACCESS, &a, why, sizeof(why)) == -1) {
        log_warnx("%s%s%s: invalid access action \"%.200s\": %s; answering 451 4.3.5",
                  c->logctx, c->sep, where, value, why);
        memset(&a, 0, sizeof(a));
        a.kind = POLICY_DEFER;
        a.code = 451;
        snprintf(a.enh, sizeof(a.enh), "4.3.5");
        snprintf(a.text, sizeof(a.text), "Server configuration error");
    }
    snprintf(a.where, sizeof(a.where), "%s", where);
    switch (a.kind) {
    case POLICY_DUNNO:
        return POLICY_STEP_NEXT_TABLE;
    case POLICY_WARN:
        if (c->warn != NULL)
            c->warn(c->warn_arg, &a);
        else
            log_info("%s%swarn: %s: %s", c->logctx, c->sep, where, a.text);
        return POLICY_STEP_ON;
    default:
        *c->out = a;
        return POLICY_STEP_ANSWER;
    }
}

/* policy_check_hash - each key in turn until one is found. */
static enum policy_step
policy_check_hash(struct policy_check *c, struct policy_table *t,
                  const struct policy_keys *keys)
{
    char             val[POLICY_VALUE_MAX], where[POLICY_WHERE_MAX];
    enum policy_step step;

    for (size_t i = 0; i < keys->n; i++) {
        switch (map_lookup(t->map, keys->v[i], val, sizeof(val))) {
        case 0:
            continue;
        case 1:
            break;
        default:
            log_warnx("%s%s%s: lookup of \"%.200s\" failed; table skipped", c->logctx,
                      c->sep, t->label, keys->v[i]);
            return POLICY_STEP_NEXT_TABLE;
        }
        snprintf(where, sizeof(where), "%s[%s]", t->label, keys->v[i]);
        if ((step = policy_entry(c, val, where)) != POLICY_STEP_ON)
            return step;
    }
    return POLICY_STEP_ON;
}

/* policy_check_cidr - the client address against each network, in file order. */
static enum policy_step
policy_check_cidr(struct policy_check *c, struct policy_table *t, const char *addr)
{
    char             where[POLICY_WHERE_MAX];
    enum policy_step step;

    if (addr == NULL || *addr == '\0')
        return POLICY_STEP_ON;
    for (size_t i = 0; i < t->ncidr; i++) {
        if (!cidr_match(&t->cidr[i].net, addr))
            continue;
        snprintf(where, sizeof(where), "%s:%d", t->label, t->cidr[i].line);
        if ((step = policy_entry(c, t->cidr[i].value, where)) != POLICY_STEP_ON)
            return step;
    }
    return POLICY_STEP_ON;
}

/* policy_check_pcre - each subject in turn; after a WARN the rules below it are tried. */
static enum policy_step
policy_check_pcre(struct policy_check *c, struct policy_table *t,
                  const struct policy_keys *keys)
{
    char             where[POLICY_WHERE_MAX];
    struct rules_hit hit;
    enum policy_step step;

    for (size_t i = 0; i < keys->n; i++) {
        size_t pos = 0;

        while (rules_match_next(t->rules, &pos, keys->v[i], strlen(keys->v[i]), c->logctx,
                                &hit, NULL) == 1) {
            snprintf(where, sizeof(where), "%s:%d", t->label, hit.line);
            if ((step = policy_entry(c, hit.value, where)) != POLICY_STEP_ON)
                return step;
        }
    }
    return POLICY_STEP_ON;
}

/* policy_access_check - the stage's lookups in every table; see policy.h. */
enum policy_kind
policy_access_check(struct policy_tables *pt, enum policy_stage stage, const char *key,
                    const char *addr, const char *logctx, policy_warn_fn warn,
                    void *warn_arg, struct policy_action *out)
{
    struct policy_keys  hkeys = { 0 }, pkeys = { 0 };
    struct policy_check c;
    enum policy_step    step = POLICY_STEP_ON;

    memset(out, 0, sizeof(*out));
    if (key == NULL)
        key = "";
    c.logctx = logctx != NULL ? logctx : "";
    c.sep = *c.logctx ? ": " : "";
    c.warn = warn;
    c.warn_arg = warn_arg;
    c.out = out;
    policy_keys_hash(&hkeys, stage, key, addr, pt->null_key);
    policy_keys_pcre(&pkeys, stage, key, addr, pt->null_key);
    for (size_t i = 0; i < pt->n && step != POLICY_STEP_ANSWER; i++) {
        struct policy_table *t = &pt->t[i];

        switch (t->type) {
        case POLICY_HASH:
            step = policy_check_hash(&c, t, &hkeys);
            break;
        case POLICY_CIDR:
            step = stage == POLICY_CLIENT ? policy_check_cidr(&c, t, addr) : POLICY_STEP_ON;
            break;
        case POLICY_PCRE:
            step = policy_check_pcre(&c, t, &pkeys);
            break;
        }
    }
    policy_keys_free(&hkeys);
    policy_keys_free(&pkeys);
    if (step != POLICY_STEP_ANSWER)
        memset(out, 0, sizeof(*out));
    return out->kind;
}
