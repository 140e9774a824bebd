/* resolve - recipient address resolution: virtual aliases, local aliases, domain classes.
 *
 * See resolve.h for the rules. The expansion is a depth-first walk: `stack` holds the
 * lower-cased chain from the original address down to the one being expanded (a target on
 * it is a cycle, unless that address also expands to itself and so is a final recipient
 * already: `alice: alice, bob` with `bob: alice` ends, it does not loop), `seen` every
 * address already expanded or kept in this call (a diamond such as a -> b, c; b -> d;
 * c -> d expands d once). Both are bounded (RESOLVE_MAX_DEPTH, RESOLVE_MAX_VISITS), and so
 * is the number of finals (RESOLVE_MAX_ADDRS), so a hostile or mistaken map costs at most a
 * few thousand lookups. Map values are read into one buffer of RESOLVE_VALUE_MAX bytes and
 * copied before the next lookup. Configuration problems (loops, bad targets) are logged
 * with the map's key so the administrator can find them; the client sees only the reply. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "resolve.h"

#define RESOLVE_ADDR_MAX 1024       /* longest address accepted from a map or a client */

struct resolve {
    struct map  *virtual_map;       /* NULL: not configured */
    struct map  *alias_map;
    struct map  *mailbox_map;
    char       **local_domains;     /* lower-case, no trailing dot */
    size_t       nlocal;
    char       **relay_domains;
    size_t       nrelay;
    char        *val;               /* RESOLVE_VALUE_MAX bytes for map values */
    char        *delims;            /* recipient_delimiter; "" = no extensions */
};

struct resolve_walk {
    struct resolve       *r;
    const char           *original;  /* as given */
    const char           *start;     /* original, normalised */
    struct resolve_list  *out;
    size_t                base;     /* out->n when the call began */
    struct {
        const char       *lower;    /* an address being expanded, lower-cased */
        int               self;     /* its targets include itself (kept as a final) */
    }                     stack[RESOLVE_MAX_DEPTH + 1];
    size_t                depth;
    char                **seen;
    size_t                nseen;
    size_t                seencap;
    struct resolve_err   *err;
};

/* resolve_lower - a lower-case (ASCII) copy of s. */
static char *
resolve_lower(const char *s)
{
    char *l = xstrdup(s);

    for (char *p = l; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return l;
}

/* resolve_domain_copy - domain[0..len) lower-cased, one trailing dot removed. */
static char *
resolve_domain_copy(const char *domain, size_t len)
{
    char *d;

    if (len > 0 && domain[len - 1] == '.')
        len--;
    d = xstrndup(domain, len);
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

/* resolve_domains - copy a config list, normalised; *n gets the count. */
static char **
resolve_domains(const struct config *cfg, const char *key, size_t *n)
{
    char *const *list = config_list(cfg, key, n);
    char       **out = xcalloc(*n + 1, sizeof(*out));

    for (size_t i = 0; i < *n; i++)
        out[i] = resolve_domain_copy(list[i], strlen(list[i]));
    return out;
}

/* resolve_map - open the map named by a config key; 0 with *m NULL if none configured. */
static int
resolve_map(const struct config *cfg, const char *key, struct map **m, char *err,
            size_t errlen)
{
    const char *path = config_path(cfg, key);
    char        why[512];

    *m = NULL;
    if (*path == '\0')
        return 0;
    if ((*m = map_open(path, why, sizeof(why))) == NULL) {
        snprintf(err, errlen, "%s: %s", key, why);
        return -1;
    }
    return 0;
}

/* resolve_open - domains from the config, the three maps read-only. */
struct resolve *
resolve_open(const struct config *cfg, char *err, size_t errlen)
{
    struct resolve *r = xcalloc(1, sizeof(*r));

    r->local_domains = resolve_domains(cfg, "local_domains", &r->nlocal);
    r->relay_domains = resolve_domains(cfg, "relay_domains", &r->nrelay);
    r->val = xmalloc(RESOLVE_VALUE_MAX);
    r->delims = xstrdup(config_str(cfg, "recipient_delimiter"));
    if (resolve_map(cfg, "virtual_alias_map", &r->virtual_map, err, errlen) == -1
        || resolve_map(cfg, "alias_map", &r->alias_map, err, errlen) == -1
        || resolve_map(cfg, "mailbox_map", &r->mailbox_map, err, errlen) == -1) {
        resolve_close(&r);
        return NULL;
    }
    return r;
}

/* resolve_close - close the maps and free everything; sets *rp = NULL. */
void
resolve_close(struct resolve **rp)
{
    struct resolve *r = *rp;

    if (r == NULL)
        return;
    map_close(&r->virtual_map);
    map_close(&r->alias_map);
    map_close(&r->mailbox_map);
    for (size_t i = 0; i < r->nlocal; i++)
        free(r->local_domains[i]);
    for (size_t i = 0; i < r->nrelay; i++)
        free(r->relay_domains[i]);
    free(r->local_domains);
    free(r->relay_domains);
    free(r->val);
    free(r->delims);
    free(r);
    *rp = NULL;
}

/* resolve_in - is the normalised domain d in list (exact entries only)? */
static int
resolve_in(char *const *list, size_t n, const char *d)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], d) == 0)
            return 1;
    return 0;
}

/* resolve_domain_match - see resolve.h. */
int
resolve_domain_match(const char *entry, const char *domain)
{
    size_t elen = strlen(entry), dlen = strlen(domain);

    /* The label boundary matters: "example.com" must not take "badexample.com". */
    if (entry[0] == '.')
        return elen > 1 && dlen > elen && strcmp(domain + dlen - elen, entry) == 0;
    if (elen == 0)
        return 0;
    return strcmp(domain, entry) == 0
           || (dlen > elen && domain[dlen - elen - 1] == '.'
               && strcmp(domain + dlen - elen, entry) == 0);
}

/* resolve_in_parent - does any entry of list match the normalised domain d, subdomains
 * included (resolve_domain_match)? */
static int
resolve_in_parent(char *const *list, size_t n, const char *d)
{
    for (size_t i = 0; i < n; i++)
        if (resolve_domain_match(list[i], d))
            return 1;
    return 0;
}

/* resolve_domain_class - see resolve.h. */
enum resolve_class
resolve_domain_class(const struct resolve *r, const char *domain)
{
    char               *d = resolve_domain_copy(domain, strlen(domain));
    enum resolve_class  c = RESOLVE_REMOTE;

    if (resolve_in(r->local_domains, r->nlocal, d))
        c = RESOLVE_LOCAL;
    else if (resolve_in_parent(r->relay_domains, r->nrelay, d))
        c = RESOLVE_RELAY_DOMAIN;
    free(d);
    return c;
}

/* resolve_class_name - for log lines and the CLI. */
const char *
resolve_class_name(enum resolve_class c)
{
    switch (c) {
    case RESOLVE_LOCAL:
        return "local";
    case RESOLVE_RELAY_DOMAIN:
        return "relay";
    case RESOLVE_REMOTE:
        return "remote";
    }
    return "?";
}

/* resolve_ext_reserved - is the local part (len bytes) one Postfix never splits? The
 * names hold delimiter characters people use ('-', 'a'); owner-* and *-request are lists'
 * addresses when '-' is a delimiter (Postfix's owner_request_special). */
static int
resolve_ext_reserved(const char *local, size_t len, const char *delims)
{
    static const char *const names[] = { "postmaster", "mailer-daemon" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (len == strlen(names[i]) && strncasecmp(local, names[i], len) == 0)
            return 1;
    if (strchr(delims, '-') == NULL)
        return 0;
    return (len >= 6 && strncasecmp(local, "owner-", 6) == 0)
           || (len > 8 && strncasecmp(local + len - 8, "-request", 8) == 0);
}

/* resolve_ext_split - see resolve.h. */
size_t
resolve_ext_split(const char *addr, const char *delims)
{
    const char *at = strrchr(addr, '@');
    size_t      len = at != NULL ? (size_t)(at - addr) : strlen(addr), user;

    if (*delims == '\0' || len == 0 || addr[0] == '"'
        || resolve_ext_reserved(addr, len, delims))
        return 0;
    for (user = 0; user < len && strchr(delims, addr[user]) == NULL; user++)
        continue;
    /* "+tag" would leave an empty user: Postfix keeps such an address whole. */
    return user < len ? user : 0;
}

/* resolve_ext_strip - see resolve.h. */
char *
resolve_ext_strip(const char *addr, const char *delims, char **ext)
{
    const char *at = strrchr(addr, '@');
    size_t      user = resolve_ext_split(addr, delims);
    size_t      len = at != NULL ? (size_t)(at - addr) : strlen(addr);

    if (ext != NULL)
        *ext = NULL;
    if (user == 0)
        return NULL;
    if (ext != NULL)
        *ext = xstrndup(addr + user, len - user);
    return xasprintf("%.*s%s", (int)user, addr, addr + len);
}

/* resolve_find - look key up in m, then bare (if not NULL). As map_lookup(); *bare_hit = 1
 * when only bare matched. */
static int
resolve_find(struct map *m, const char *key, const char *bare, char *val, size_t vallen,
             int *bare_hit)
{
    int rc = map_lookup(m, key, val, vallen);

    *bare_hit = 0;
    if (rc == 0 && bare != NULL && (rc = map_lookup(m, bare, val, vallen)) == 1)
        *bare_hit = 1;
    return rc;
}

/* resolve_mailbox_find - see resolve.h. */
int
resolve_mailbox_find(struct map *m, const char *addr, const char *delims, char *val,
                     size_t vallen)
{
    const char *at = strrchr(addr, '@');
    char       *bare = resolve_ext_strip(addr, delims, NULL);
    int         bare_hit, rc;

    rc = resolve_find(m, addr, bare, val, vallen, &bare_hit);
    if (rc == 0 && at != NULL && at[1] != '\0')
        rc = map_lookup(m, at, val, vallen);
    free(bare);
    return rc;
}

/* resolve_list_init - an empty list. */
void
resolve_list_init(struct resolve_list *l)
{
    memset(l, 0, sizeof(*l));
}

/* resolve_list_truncate - free the entries from n on. */
static void
resolve_list_truncate(struct resolve_list *l, size_t n)
{
    while (l->n > n) {
        struct resolve_rcpt *e = &l->rcpt[--l->n];

        free(e->address);
        free(e->original);
    }
}

/* resolve_list_free - free every entry and the array; the list is empty afterwards. */
void
resolve_list_free(struct resolve_list *l)
{
    resolve_list_truncate(l, 0);
    free(l->rcpt);
    resolve_list_init(l);
}

/* resolve_fail - fill in the reply. */
static int
resolve_fail(struct resolve_err *err, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
resolve_fail(struct resolve_err *err, int code, const char *enh, const char *fmt, ...)
{
    va_list ap;

    err->code = code;
    snprintf(err->enh, sizeof(err->enh), "%s", enh);
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
    return -1;
}

/* resolve_norm - build "local@domain" from an address: the local part as given, the domain
 * normalised; a bare name gets the first local domain. NULL if malformed (why set). */
static char *
resolve_norm(const struct resolve *r, const char *addr, const char **why)
{
    const char *at = strrchr(addr, '@');
    char       *dom, *out;

    if (strlen(addr) > RESOLVE_ADDR_MAX) {
        *why = "address too long";
        return NULL;
    }
    for (const char *p = addr; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *why = "control character in address";
            return NULL;
        }
    if (at == NULL) {
        if (*addr == '\0') {
            *why = "empty address";
            return NULL;
        }
        if (r->nlocal == 0) {
            *why = "no domain, and no local_domains to add";
            return NULL;
        }
        return xasprintf("%s@%s", addr, r->local_domains[0]);
    }
    if (at == addr || at[1] == '\0' || (at[1] == '.' && at[2] == '\0')) {
        *why = at == addr ? "empty local part" : "empty domain";
        return NULL;
    }
    dom = resolve_domain_copy(at + 1, strlen(at + 1));
    out = xasprintf("%.*s@%s", (int)(at - addr), addr, dom);
    free(dom);
    return out;
}

/* resolve_target - turn one map target into a normalised address. cur: the address being
 * expanded (for "@domain" targets, which keep cur's local part, extension and all); ext:
 * the extension to put on any other target (NULL: none). *final = 1 for "\name". NULL if
 * it is not an address. */
static char *
resolve_target(const struct resolve *r, const char *tok, const char *cur, const char *ext,
               int *final, const char **why)
{
    const char *at;
    char       *t, *out;

    *final = 0;
    if (*tok == '\\') {
        *final = 1;
        tok++;
    }
    if (*tok == '|' || *tok == '/' || strncasecmp(tok, ":include:", 9) == 0) {
        *why = "pipes, files and :include: are not supported";
        return NULL;
    }
    if (*tok == '@') {
        if (tok[1] == '\0') {
            *why = "empty domain";
            return NULL;
        }
        at = strrchr(cur, '@');
        t = xasprintf("%.*s%s", (int)(at - cur), cur, tok);
        out = resolve_norm(r, t, why);
        free(t);
        return out;
    }
    if (ext == NULL)
        return resolve_norm(r, tok, why);
    at = strrchr(tok, '@');
    t = at == NULL ? xasprintf("%s%s", tok, ext)
                   : xasprintf("%.*s%s%s", (int)(at - tok), tok, ext, at);
    out = resolve_norm(r, t, why);
    free(t);
    return out;
}

/* resolve_next_token - the next target in a map value: separated by commas or white space
 * outside double quotes, one pair of <> removed. NULL at the end; *pp advanced. */
static char *
resolve_next_token(const char **pp)
{
    const char *p = *pp, *start;
    int         quoted = 0;
    size_t      len;

    while (*p == ',' || *p == ' ' || *p == '\t')
        p++;
    if (*p == '\0') {
        *pp = p;
        return NULL;
    }
    start = p;
    for (; *p; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (*p == '\\' && quoted && p[1] != '\0')
            p++;
        else if (!quoted && (*p == ',' || *p == ' ' || *p == '\t'))
            break;
    }
    *pp = p;
    len = (size_t)(p - start);
    if (len >= 2 && start[0] == '<' && start[len - 1] == '>') {
        start++;
        len -= 2;
    }
    return xstrndup(start, len);
}

/* resolve_local_key - the alias_map key of a local part: a quoted local part ("a b") without
 * its quotes and backslashes, as map_build_aliases() stores quoted names. */
static char *
resolve_local_key(const char *local, size_t len)
{
    char  *key;
    size_t j = 0;

    if (len < 2 || local[0] != '"' || local[len - 1] != '"')
        return xstrndup(local, len);
    key = xmalloc(len);
    for (size_t i = 1; i + 1 < len; i++) {
        if (local[i] == '\\' && i + 2 < len)
            i++;
        key[j++] = local[i];
    }
    key[j] = '\0';
    return key;
}

/* resolve_alias_find - alias_map by addr's local part, then by the local part without its
 * extension (bare: addr without it, or NULL). As map_lookup(). */
static int
resolve_alias_find(struct resolve *r, const char *addr, const char *bare)
{
    char *key = resolve_local_key(addr, (size_t)(strrchr(addr, '@') - addr));
    char *bare_key = bare != NULL ? xstrndup(bare, (size_t)(strrchr(bare, '@') - bare)) : NULL;
    int   bare_hit, rc;

    rc = resolve_find(r->alias_map, key, bare_key, r->val, RESOLVE_VALUE_MAX, &bare_hit);
    free(key);
    free(bare_key);
    return rc;
}

/* resolve_lookup - the expansion of addr: 1 with *value (allocated), *map_name and *ext (the
 * extension to propagate, allocated, or NULL) set, 0: none, -1: lookup error (err filled
 * in). */
static int
resolve_lookup(struct resolve_walk *w, const char *addr, char **value, const char **map_name,
               char **ext)
{
    struct resolve *r = w->r;
    const char     *at = strrchr(addr, '@');
    char           *bare, *e;
    int             rc = 0, bare_hit = 0;

    *value = NULL;
    *ext = NULL;
    bare = resolve_ext_strip(addr, r->delims, &e);
    if (r->virtual_map != NULL) {
        *map_name = "virtual_alias_map";
        rc = resolve_find(r->virtual_map, addr, bare, r->val, RESOLVE_VALUE_MAX, &bare_hit);
        if (rc == 0)
            rc = map_lookup(r->virtual_map, at, r->val, RESOLVE_VALUE_MAX);
    }
    if (rc == 0 && r->alias_map != NULL && resolve_in(r->local_domains, r->nlocal, at + 1)) {
        *map_name = "alias_map";
        rc = resolve_alias_find(r, addr, bare);
    }
    free(bare);
    if (rc == 1 && bare_hit)
        *ext = e;
    else
        free(e);
    if (rc == -1)
        return resolve_fail(w->err, 451, "4.3.0", "<%s>: Temporary lookup failure",
                            w->original);
    if (rc == 1)
        *value = xstrdup(r->val);
    return rc;
}

/* resolve_final - append addr as a final recipient unless already present. */
static int
resolve_final(struct resolve_walk *w, const char *addr)
{
    struct resolve_list *l = w->out;
    struct resolve_rcpt *e;
    const char          *at = strrchr(addr, '@');
    char                 val[1024];
    int                  rc;

    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->rcpt[i].address, addr) == 0)
            return 0;
    if (l->n - w->base >= RESOLVE_MAX_ADDRS) {
        log_warnx("resolve: <%s> expands to more than %d recipients", w->original,
                  RESOLVE_MAX_ADDRS);
        return resolve_fail(w->err, 550, "5.5.3", "<%s>: Recipient address rejected: "
                            "alias expands to too many recipients", w->original);
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->rcpt = xrealloc(l->rcpt, l->cap * sizeof(*l->rcpt));
    }
    e = &l->rcpt[l->n];
    memset(e, 0, sizeof(*e));
    e->cls = resolve_domain_class(w->r, at + 1);
    e->known = 1;
    if (e->cls == RESOLVE_LOCAL) {
        rc = 0;
        if (w->r->mailbox_map != NULL)
            rc = resolve_mailbox_find(w->r->mailbox_map, addr, w->r->delims, val, sizeof(val));
        if (rc == -1)
            return resolve_fail(w->err, 451, "4.3.0", "<%s>: Temporary lookup failure",
                                w->original);
        e->known = rc;
    }
    e->address = xstrdup(addr);
    e->original = xstrdup(w->original);
    e->domain = e->address + (at - addr) + 1;
    e->expanded = strcasecmp(addr, w->start) != 0;
    l->n++;
    return 0;
}

/* resolve_seen - 1 if lower was expanded or kept already in this walk, else remember it. */
static int
resolve_seen(struct resolve_walk *w, const char *lower)
{
    for (size_t i = 0; i < w->nseen; i++)
        if (strcmp(w->seen[i], lower) == 0)
            return 1;
    if (w->nseen == w->seencap) {
        w->seencap = w->seencap ? w->seencap * 2 : 16;
        w->seen = xrealloc(w->seen, w->seencap * sizeof(*w->seen));
    }
    w->seen[w->nseen++] = xstrdup(lower);
    return 0;
}

/* resolve_expand - parse addr's map value, then keep addr itself if it is among its targets
 * and walk the others in order. Runs with addr pushed on the stack. */
static int resolve_walk(struct resolve_walk *w, const char *addr, int final);

static int
resolve_expand(struct resolve_walk *w, const char *addr, const char *lower, const char *value,
               const char *map_name, const char *ext)
{
    const char *p = value, *why = NULL;
    char       *tok, **t = NULL;
    int        *final = NULL;
    size_t      n = 0, cap = 0;
    int         rc = 0, self = 0;

    while (rc == 0 && (tok = resolve_next_token(&p)) != NULL) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            t = xrealloc(t, cap * sizeof(*t));
            final = xrealloc(final, cap * sizeof(*final));
        }
        if ((t[n] = resolve_target(w->r, tok, addr, ext, &final[n], &why)) == NULL) {
            log_warnx("resolve: %s: key for <%s>: bad target \"%.200s\": %s", map_name,
                      addr, tok, why);
            rc = resolve_fail(w->err, 451, "4.3.5", "<%s>: Recipient address rejected: "
                              "alias configuration error", w->original);
        } else if (strcasecmp(t[n], lower) == 0) {
            self = 1;
        }
        n += t[n] != NULL;
        free(tok);
    }
    if (rc == 0 && n == 0) {
        log_warnx("resolve: %s: empty value for <%s>", map_name, addr);
        rc = resolve_fail(w->err, 451, "4.3.5", "<%s>: Recipient address rejected: "
                          "alias configuration error", w->original);
    }
    if (rc == 0) {
        w->stack[w->depth].lower = lower;
        w->stack[w->depth++].self = self;
        if (self)
            rc = resolve_final(w, addr);        /* expands to itself: deliver here too */
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (strcasecmp(t[i], lower) != 0)
                rc = resolve_walk(w, t[i], final[i]);
        w->depth--;
    }
    for (size_t i = 0; i < n; i++)
        free(t[i]);
    free(t);
    free(final);
    return rc;
}

/* resolve_walk - resolve one normalised address: expand it or keep it. final: do not expand
 * (a "\name" target). */
static int
resolve_walk(struct resolve_walk *w, const char *addr, int final)
{
    char       *lower = resolve_lower(addr), *value = NULL, *ext = NULL;
    const char *map_name = "";
    int         rc;

    for (size_t i = 0; i < w->depth; i++) {
        if (strcmp(w->stack[i].lower, lower) != 0)
            continue;
        free(lower);
        if (w->stack[i].self)                   /* kept as a final already: no cycle */
            return 0;
        log_warnx("resolve: alias loop: <%s> expands back to <%s>",
                  w->stack[w->depth - 1].lower, addr);
        return resolve_fail(w->err, 550, "5.4.6", "<%s>: Recipient address rejected: "
                            "alias loop", w->original);
    }
    if (resolve_seen(w, lower)) {
        free(lower);
        return 0;
    }
    if (w->nseen > RESOLVE_MAX_VISITS) {
        log_warnx("resolve: <%s>: more than %d addresses in its expansion", w->original,
                  RESOLVE_MAX_VISITS);
        free(lower);
        return resolve_fail(w->err, 550, "5.5.3", "<%s>: Recipient address rejected: "
                            "alias expands to too many recipients", w->original);
    }
    if (final) {
        rc = resolve_final(w, addr);
        free(lower);
        return rc;
    }
    if ((rc = resolve_lookup(w, addr, &value, &map_name, &ext)) <= 0) {
        if (rc == 0)
            rc = resolve_final(w, addr);
        free(lower);
        return rc;
    }
    if (w->depth >= RESOLVE_MAX_DEPTH) {
        log_warnx("resolve: <%s>: alias nesting deeper than %d at <%s>", w->original,
                  RESOLVE_MAX_DEPTH, addr);
        rc = resolve_fail(w->err, 550, "5.4.6", "<%s>: Recipient address rejected: "
                          "alias nesting too deep", w->original);
    } else {
        rc = resolve_expand(w, addr, lower, value, map_name, ext);
    }
    free(ext);
    free(value);
    free(lower);
    return rc;
}

/* resolve_rcpt - see resolve.h. */
int
resolve_rcpt(struct resolve *r, const char *address, struct resolve_list *out,
             struct resolve_err *err)
{
    struct resolve_walk w;
    const char         *why = NULL;
    char               *addr;
    size_t              known = 0;
    int                 rc;

    memset(err, 0, sizeof(*err));
    if ((addr = resolve_norm(r, address, &why)) == NULL)
        return resolve_fail(err, 553, "5.1.3", "<%.*s>: Recipient address rejected: %s",
                            RESOLVE_ADDR_MAX, address, why);
    memset(&w, 0, sizeof(w));
    w.r = r;
    w.original = address;
    w.start = addr;
    w.out = out;
    w.base = out->n;
    w.err = err;
    rc = resolve_walk(&w, addr, 0);
    for (size_t i = 0; i < w.nseen; i++)
        free(w.seen[i]);
    free(w.seen);
    if (rc == 0) {
        for (size_t i = w.base; i < out->n; i++)
            known += out->rcpt[i].known;
        if (out->n > w.base && known == 0)
            rc = resolve_fail(err, 550, "5.1.1", "<%s>: Recipient address rejected: "
                              "User unknown", address);
        for (size_t i = w.base; rc == 0 && i < out->n; i++)
            if (!out->rcpt[i].known)
                log_info("resolve: <%s> -> <%s>: unknown local recipient (local will bounce "
                         "it)", address, out->rcpt[i].address);
    }
    if (rc == -1)
        resolve_list_truncate(out, w.base);
    free(addr);
    return rc;
}
