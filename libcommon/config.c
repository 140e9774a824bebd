/* config - postern.conf: parse, validate, defaults.
 *
 * See config.h. config_keys[] below is the one table of settings: name, type, default,
 * and for integers the allowed range or for words the allowed values. conf/postern.conf
 * documents the same table; tests/unit/config_test.c checks parsing. A line that starts
 * with white space continues the previous one, so long lists can be folded. Only whole-line
 * comments exist: a `#` inside a value is part of the value. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"

#ifndef POSTERN_CONFIG_DIR
#define POSTERN_CONFIG_DIR "/etc/postern"
#endif

enum config_type { CT_STR, CT_PATH, CT_INT, CT_SIZE, CT_TIME, CT_BOOL, CT_LIST, CT_WORD };

struct config_key {
    const char      *name;
    enum config_type type;
    const char      *def;
    long long        min, max;   /* CT_INT */
    const char      *words;      /* CT_WORD: allowed values, '|'-separated */
};

#define K_STR(n, d)          { n, CT_STR, d, 0, 0, NULL }
#define K_PATH(n, d)         { n, CT_PATH, d, 0, 0, NULL }
#define K_INT(n, d, lo, hi)  { n, CT_INT, d, lo, hi, NULL }
#define K_SIZE(n, d)         { n, CT_SIZE, d, 0, 0, NULL }
#define K_TIME(n, d)         { n, CT_TIME, d, 0, 0, NULL }
#define K_BOOL(n, d)         { n, CT_BOOL, d, 0, 0, NULL }
#define K_LIST(n, d)         { n, CT_LIST, d, 0, 0, NULL }
#define K_WORD(n, d, w)      { n, CT_WORD, d, 0, 0, w }

static const struct config_key config_keys[] = {
    /* paths and users */
    K_PATH("queue_directory", "queue"),
    K_PATH("daemon_directory", ""),
    K_STR("myhostname", ""),
    K_STR("mail_owner", "postern"),
    K_STR("queue_owner", "postern-q"),
    K_STR("mailbox_owner", "vmail"),
    K_STR("admin_group", "postern-admin"),
    K_PATH("smtpd_chroot", ""),
    /* listeners */
    K_LIST("smtp_listen", ""),
    K_LIST("submission_listen", ""),
    K_LIST("smtps_listen", ""),
    K_INT("smtpd_processes", "2", 1, 64),
    K_STR("smtpd_banner", ""),
    /* TLS and authentication (smtpd) */
    K_PATH("smtpd_tls_cert_file", ""),
    K_PATH("smtpd_tls_key_file", ""),
    K_LIST("smtpd_tls_sni_certs", ""),
    K_WORD("smtpd_tls_min_version", "TLSv1.2", "TLSv1.2|TLSv1.3"),
    K_STR("smtpd_tls_ciphers", ""),
    K_PATH("smtpd_tls_client_ca_file", ""),
    K_TIME("smtpd_tls_ticket_rotation", "12h"),
    K_TIME("smtpd_tls_handshake_timeout", "30s"),
    K_PATH("smtpd_auth_map", ""),
    K_TIME("smtpd_auth_failure_delay", "1s"),
    K_INT("smtpd_auth_failure_limit", "3", 1, 1000),
    K_PATH("smtpd_sender_login_map", ""),
    K_BOOL("always_add_missing_headers", "no"),
    /* local delivery */
    K_LIST("local_domains", ""),
    K_PATH("mailbox_map", ""),
    K_INT("local_processes", "1", 1, 64),
    K_INT("local_concurrency", "50", 1, 10000),
    /* relaying and routing */
    K_LIST("mynetworks", "127.0.0.0/8 [::1]/128"),
    K_LIST("relay_domains", ""),
    K_STR("relayhost", ""),
    K_PATH("transport_map", ""),
    K_PATH("virtual_alias_map", ""),
    K_PATH("alias_map", ""),
    K_STR("recipient_delimiter", ""),   /* set of characters; resolve.h: extensions */
    K_LIST("dns_servers", ""),
    K_BOOL("dns_lan_zones", "no"),
    K_PATH("dnssec_trust_anchor_file", "/usr/share/dns/root.key"),   /* smtp agent, DANE */
    K_INT("smtp_processes", "1", 1, 64),
    K_BOOL("smtp_chroot", "yes"),
    K_WORD("smtp_tls_security_level", "may", "none|may|encrypt|verify|dane|dane-only"),
    K_PATH("smtp_tls_policy_map", ""),
    K_PATH("smtp_tls_ca_file", ""),
    K_PATH("smtp_sasl_password_map", ""),   /* smtp agent: `nexthop user:password` */
    K_TIME("smtp_connect_timeout", "30s"),
    K_TIME("smtp_reply_timeout", "300s"),
    K_INT("smtp_destination_concurrency_limit", "20", 1, 10000),
    K_INT("smtp_initial_destination_concurrency", "5", 1, 10000),
    K_INT("smtp_max_connections", "200", 1, 100000),
    K_TIME("smtp_connection_reuse_time", "30s"),
    K_BOOL("lmtp_assume_final", "no"),
    K_TIME("queue_delay_warning", "0"),
    K_TIME("queue_destination_pause", "5m"),
    K_INT("smtpd_received_limit", "50", 1, 1000),
    /* limits */
    K_SIZE("message_size_limit", "10M"),
    K_SIZE("header_size_limit", "100k"),
    K_INT("smtpd_recipient_limit", "1000", 1, 100000),
    K_INT("smtpd_max_sessions", "1000", 1, 1000000),
    K_TIME("smtpd_timeout", "300s"),
    K_TIME("smtpd_session_timeout", "1h"),
    K_INT("smtpd_error_limit", "20", 1, 100000),
    K_INT("smtpd_command_limit", "1000", 1, 10000000),
    K_WORD("smtpd_bare_newline", "normalize", "normalize|reject"),
    /* policy: access maps (lists of type:path tables), content rules (pcre:path) */
    K_LIST("smtpd_client_access", ""),
    K_LIST("smtpd_helo_access", ""),
    K_LIST("smtpd_sender_access", ""),
    K_LIST("smtpd_recipient_access", ""),
    K_BOOL("smtpd_delay_reject", "yes"),
    K_STR("smtpd_null_access_lookup_key", "<>"),
    K_LIST("header_checks", ""),
    K_LIST("mime_header_checks", ""),
    K_LIST("body_checks", ""),
    K_SIZE("body_checks_size_limit", "50k"),
    K_INT("pcre_match_limit", "1000000", 1000, 100000000),
    /* milters (smtpd_milter.c): inet:host:port or unix:/path inside smtpd's chroot */
    K_LIST("smtpd_milters", ""),
    K_WORD("milter_default_action", "tempfail", "accept|tempfail|reject"),
    K_TIME("milter_connect_timeout", "30s"),
    K_TIME("milter_command_timeout", "30s"),
    K_TIME("milter_content_timeout", "300s"),
    K_BOOL("smtpd_peername_lookup", "yes"),
    K_TIME("smtpd_peername_timeout", "10s"),
    /* DNS policy: blocklists at connect, the sender's domain at MAIL */
    K_LIST("smtpd_dnsbl_sites", ""),
    K_INT("smtpd_dnsbl_threshold", "1", 1, 1000000),
    K_TIME("smtpd_dnsbl_timeout", "10s"),
    K_BOOL("smtpd_reject_unknown_sender_domain", "no"),
    K_INT("smtpd_unknown_address_reject_code", "450", 400, 599),
    /* Postfix's built-in reject_* restrictions (smtpd_restrict.c) */
    K_BOOL("smtpd_reject_unknown_client_hostname", "no"),
    K_BOOL("smtpd_reject_unknown_reverse_client_hostname", "no"),
    K_INT("unknown_client_hostname_reject_code", "450", 400, 599),
    K_BOOL("smtpd_reject_invalid_helo_hostname", "no"),
    K_BOOL("smtpd_reject_non_fqdn_helo_hostname", "no"),
    K_BOOL("smtpd_reject_non_fqdn_sender", "no"),
    K_BOOL("smtpd_reject_non_fqdn_recipient", "no"),
    /* client limits (anvil) and the connect phase */
    K_INT("smtpd_client_connection_count_limit", "50", 0, 1000000),
    K_INT("smtpd_client_connection_rate_limit", "0", 0, 100000000),
    K_INT("smtpd_client_message_rate_limit", "0", 0, 100000000),
    K_INT("smtpd_client_recipient_rate_limit", "0", 0, 100000000),
    K_INT("smtpd_client_auth_failure_rate_limit", "30", 0, 100000000),
    K_LIST("smtpd_client_limit_exceptions", "mynetworks"),
    K_TIME("anvil_rate_time_unit", "60s"),
    K_TIME("smtpd_greet_pause", "1s"),
    K_INT("smtpd_stress_threshold", "80", 1, 100),
    K_TIME("smtpd_stress_timeout", "10s"),
    K_TIME("smtpd_stress_session_timeout", "5m"),
    K_INT("smtpd_stress_error_limit", "1", 1, 100000),
    /* queue */
    K_TIME("queue_retry_min", "300s"),
    K_TIME("queue_retry_max", "4000s"),
    K_TIME("queue_lifetime", "5d"),
    /* master: how often it looks for changed maps, rule files, certificates (0 = never) */
    K_TIME("watch_interval", "5s"),
    /* logging */
    K_WORD("log_level", "info", "err|warn|info|debug"),
    K_WORD("syslog_facility", "mail",
           "mail|daemon|local0|local1|local2|local3|local4|local5|local6|local7"),
};
#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

struct config_val {
    char      *raw;        /* as written, or the default */
    char      *path;       /* CT_PATH: absolute */
    long long  num;        /* CT_INT, CT_BOOL */
    uint64_t   u;          /* CT_SIZE: bytes; CT_TIME: ms */
    char     **list;       /* CT_LIST: NULL-terminated */
    size_t     nlist;
    int        line;       /* 0: default */
};

struct config {
    char             *dir;
    char             *file;
    struct config_val v[NKEYS];
};

const char *
config_dir_from(const char *arg)
{
    const char *env;

    if (arg && *arg)
        return arg;
    env = getenv("POSTERN_CONFIG");
    if (env && *env)
        return env;
    return POSTERN_CONFIG_DIR;
}

int
config_parse_size(const char *s, uint64_t *out)
{
    char              *end;
    unsigned long long n;
    uint64_t           mult = 1;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': mult = 1024ULL; break;
        case 'm': case 'M': mult = 1024ULL * 1024; break;
        case 'g': case 'G': mult = 1024ULL * 1024 * 1024; break;
        default: return -1;
        }
        if (end[1] && !((end[1] == 'b' || end[1] == 'B') && end[2] == '\0'))
            return -1;
    }
    if (n > UINT64_MAX / mult)
        return -1;
    *out = n * mult;
    return 0;
}

int
config_parse_time_ms(const char *s, uint64_t *out)
{
    char              *end;
    unsigned long long n;
    uint64_t           mult = 1000;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -1;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (*end && end[1])
        return -1;
    else if (*end == 's' || *end == '\0')
        mult = 1000;
    else if (*end == 'm')
        mult = 60 * 1000;
    else if (*end == 'h')
        mult = 3600 * 1000;
    else if (*end == 'd')
        mult = 86400 * 1000;
    else if (*end == 'w')
        mult = 7 * 86400 * 1000ULL;
    else
        return -1;
    if (n > UINT64_MAX / mult)
        return -1;
    *out = n * mult;
    return 0;
}

int
config_parse_bool(const char *s, int *out)
{
    if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcasecmp(s, "on") ||
        !strcmp(s, "1")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcasecmp(s, "off") ||
        !strcmp(s, "0")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int
config_find(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void
config_val_clear(struct config_val *v)
{
    free(v->raw);
    free(v->path);
    if (v->list)
        for (size_t i = 0; i < v->nlist; i++)
            free(v->list[i]);
    free(v->list);
    memset(v, 0, sizeof(*v));
}

/* config_split_list - items separated by spaces, tabs or commas. */
static void
config_split_list(struct config_val *v)
{
    const char *p = v->raw;

    v->list = xcalloc(1, sizeof(char *));
    v->nlist = 0;
    while (*p) {
        size_t n;

        p += strspn(p, " \t,");
        n = strcspn(p, " \t,");
        if (n == 0)
            break;
        v->list = xrealloc(v->list, (v->nlist + 2) * sizeof(char *));
        v->list[v->nlist++] = xstrndup(p, n);
        v->list[v->nlist] = NULL;
        p += n;
    }
}

static int
config_word_ok(const char *words, const char *s)
{
    size_t len = strlen(s);

    for (const char *p = words; *p;) {
        size_t n = strcspn(p, "|");

        if (n == len && strncmp(p, s, n) == 0)
            return 1;
        p += n + (p[n] == '|');
    }
    return 0;
}

/* config_set - validate raw for key i and store it. -1 with a message in err. */
static int
config_set(struct config *cfg, size_t i, const char *raw, int line, char *err, size_t errlen)
{
    const struct config_key *k = &config_keys[i];
    struct config_val        v;
    char                    *end;
    int                      b;

    memset(&v, 0, sizeof(v));
    v.raw = xstrdup(raw);
    v.line = line;
    switch (k->type) {
    case CT_STR:
        break;
    case CT_PATH:
        if (*raw == '\0' || *raw == '/')
            v.path = xstrdup(raw);
        else
            v.path = xasprintf("%s/%s", cfg->dir, raw);
        break;
    case CT_INT:
        errno = 0;
        v.num = strtoll(raw, &end, 10);
        if (*raw == '\0' || *end || errno == ERANGE || v.num < k->min || v.num > k->max) {
            snprintf(err, errlen, "%s: bad value \"%s\" (an integer from %lld to %lld)",
                     k->name, raw, k->min, k->max);
            goto bad;
        }
        break;
    case CT_SIZE:
        if (config_parse_size(raw, &v.u) == -1) {
            snprintf(err, errlen, "%s: bad size \"%s\" (a number with k, M or G)",
                     k->name, raw);
            goto bad;
        }
        break;
    case CT_TIME:
        if (config_parse_time_ms(raw, &v.u) == -1) {
            snprintf(err, errlen, "%s: bad time \"%s\" (a number with ms, s, m, h, d or w)",
                     k->name, raw);
            goto bad;
        }
        break;
    case CT_BOOL:
        if (config_parse_bool(raw, &b) == -1) {
            snprintf(err, errlen, "%s: bad value \"%s\" (yes or no)", k->name, raw);
            goto bad;
        }
        v.num = b;
        break;
    case CT_LIST:
        config_split_list(&v);
        break;
    case CT_WORD:
        if (!config_word_ok(k->words, raw)) {
            snprintf(err, errlen, "%s: bad value \"%s\" (one of %s)", k->name, raw, k->words);
            goto bad;
        }
        break;
    }
    config_val_clear(&cfg->v[i]);
    cfg->v[i] = v;
    return 0;
bad:
    config_val_clear(&v);
    return -1;
}

static char *
config_trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* config_apply - one logical line "name = value" from line number `line`. */
static int
config_apply(struct config *cfg, char *text, int line, unsigned char *seen, char *err,
             size_t errlen)
{
    char  msg[512];
    char *eq = strchr(text, '=');
    char *name, *value;
    int   i;

    if (eq == NULL) {
        snprintf(err, errlen, "%s:%d: expected \"name = value\"", cfg->file, line);
        return -1;
    }
    *eq = '\0';
    name = config_trim(text);
    value = config_trim(eq + 1);
    if ((i = config_find(name)) < 0) {
        snprintf(err, errlen, "%s:%d: unknown setting \"%s\"", cfg->file, line, name);
        return -1;
    }
    if (seen[i]) {
        snprintf(err, errlen, "%s:%d: \"%s\" is set twice (first on line %d)", cfg->file,
                 line, name, cfg->v[i].line);
        return -1;
    }
    seen[i] = 1;
    if (config_set(cfg, (size_t)i, value, line, msg, sizeof(msg)) == -1) {
        snprintf(err, errlen, "%s:%d: %s", cfg->file, line, msg);
        return -1;
    }
    return 0;
}

static int
config_read(struct config *cfg, FILE *fp, char *err, size_t errlen)
{
    unsigned char seen[NKEYS] = { 0 };
    struct buf    logical;
    char         *line = NULL;
    size_t        cap = 0;
    ssize_t       n;
    int           lineno = 0, start = 0, rc = 0;

    buf_init(&logical, 256);
    while (rc == 0 && (n = getline(&line, &cap, fp)) != -1) {
        lineno++;
        if ((size_t)n != strlen(line)) {
            snprintf(err, errlen, "%s:%d: NUL byte in line", cfg->file, lineno);
            rc = -1;
            break;
        }
        line[strcspn(line, "\r\n")] = '\0';
        if (*config_trim(line) == '\0' || *config_trim(line) == '#')
            continue;
        if (isspace((unsigned char)line[0]) && logical.len > 0) {
            buf_puts(&logical, " ");
            buf_puts(&logical, config_trim(line));
            continue;
        }
        if (logical.len > 0)
            rc = config_apply(cfg, logical.data, start, seen, err, errlen);
        buf_reset(&logical);
        buf_puts(&logical, line);
        start = lineno;
    }
    if (rc == 0 && logical.len > 0)
        rc = config_apply(cfg, logical.data, start, seen, err, errlen);
    free(line);
    buf_release(&logical);
    return rc;
}

struct config *
config_load(const char *dir, char *err, size_t errlen)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg));
    FILE          *fp;
    char           msg[512];

    /* Absolute, so paths stay right after a daemon chdir()s or chroot()s. */
    if (dir[0] == '/') {
        cfg->dir = xstrdup(dir);
    } else {
        char *cwd = getcwd(NULL, 0);

        if (cwd == NULL) {
            snprintf(err, errlen, "%s: getcwd: %s", dir, strerror(errno));
            config_free(&cfg);
            return NULL;
        }
        cfg->dir = xasprintf("%s/%s", cwd, dir);
        free(cwd);
    }
    cfg->file = xasprintf("%s/%s", dir, CONFIG_FILE);
    for (size_t i = 0; i < NKEYS; i++) {
        if (config_set(cfg, i, config_keys[i].def, 0, msg, sizeof(msg)) == -1) {
            snprintf(err, errlen, "built-in default: %s", msg);
            config_free(&cfg);
            return NULL;
        }
    }
    if ((fp = fopen(cfg->file, "r")) == NULL) {
        snprintf(err, errlen, "%s: %s", cfg->file, strerror(errno));
        config_free(&cfg);
        return NULL;
    }
    if (config_read(cfg, fp, err, errlen) == -1)
        config_free(&cfg);
    fclose(fp);
    return cfg;
}

void
config_free(struct config **cp)
{
    struct config *cfg = *cp;

    if (cfg == NULL)
        return;
    for (size_t i = 0; i < NKEYS; i++)
        config_val_clear(&cfg->v[i]);
    free(cfg->dir);
    free(cfg->file);
    free(cfg);
    *cp = NULL;
}

const char *
config_dir(const struct config *cfg)
{
    return cfg->dir;
}

/* config_get - the value of a key of the given type; asking for a key that is not in the
 * table, or as the wrong type, is a programming error. */
static const struct config_val *
config_get(const struct config *cfg, const char *key, enum config_type type)
{
    int i = config_find(key);

    if (i < 0 || config_keys[i].type != type) {
        fprintf(stderr, "config: no %s setting \"%s\"\n", type == CT_STR ? "text" : "typed",
                key);
        abort();
    }
    return &cfg->v[i];
}

const char *
config_str(const struct config *cfg, const char *key)
{
    int i = config_find(key);

    if (i < 0) {
        fprintf(stderr, "config: no setting \"%s\"\n", key);
        abort();
    }
    return cfg->v[i].raw;
}

const char *
config_path(const struct config *cfg, const char *key)
{
    return config_get(cfg, key, CT_PATH)->path;
}

long long
config_int(const struct config *cfg, const char *key)
{
    return config_get(cfg, key, CT_INT)->num;
}

uint64_t
config_size(const struct config *cfg, const char *key)
{
    return config_get(cfg, key, CT_SIZE)->u;
}

uint64_t
config_time_ms(const struct config *cfg, const char *key)
{
    return config_get(cfg, key, CT_TIME)->u;
}

int
config_bool(const struct config *cfg, const char *key)
{
    return (int)config_get(cfg, key, CT_BOOL)->num;
}

char *const *
config_list(const struct config *cfg, const char *key, size_t *n)
{
    const struct config_val *v = config_get(cfg, key, CT_LIST);

    if (n)
        *n = v->nlist;
    return v->list;
}

void
config_dump(const struct config *cfg, void (*emit)(const char *key, const char *value,
                                                    void *arg), void *arg)
{
    for (size_t i = 0; i < NKEYS; i++)
        emit(config_keys[i].name, cfg->v[i].raw, arg);
}
