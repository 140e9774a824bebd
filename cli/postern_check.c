/* postern_check - `postern check [-v]`: everything a daemon would refuse at start, now.
 *
 * check loads the configuration exactly as the daemons do (the first error is printed as
 * "file:line: message", exit 1), has `master -n` check the listener addresses (master owns
 * that parser), then opens every map it names: a map whose .db is missing or unreadable is
 * an error, one whose text is newer than its .db gets a warning that it needs `postern map
 * build`. It loads the TLS certificates and keys exactly as smtpd will, with
 * tls_server_ctx_new() (files readable, chains parse, each key matches its certificate,
 * the cipher list and CA file are valid), and refuses a private key that others (or
 * mail_owner) could read; an SMTPS listener without a certificate is an error. Every entry
 * of the auth map must be a hash pwhash_acceptable() takes (yescrypt or SHA-512 crypt), so a
 * plaintext or DES line is caught here and not at the first login. The mail policy is
 * opened as smtpd opens it (postern_map.c's helpers): every access table of every stage
 * opens and each entry is an access action (policy_tables_validate), and each content rule
 * file (header_checks, mime_header_checks, body_checks) compiles and each value is a
 * content action, so a bad pattern is reported here as "file:line: pattern error at offset
 * N: message" and not by smtpd refusing to start. Each smtp_tls_policy_map value must start
 * with a TLS level; where a level is dane or dane-only, dnssec_trust_anchor_file must
 * parse as the smtp agent will read it. -v prints every setting with its effective value. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "dns_anchor.h"
#include "dnsbl.h"
#include "log.h"
#include "map.h"
#include "policy.h"
#include "postern.h"
#include "pwhash.h"
#include "rules.h"
#include "tls.h"

#define POSTERN_CHECK_MAX_CERTS 32      /* the default certificate and the SNI ones */

/* The settings that name a map. */
static const char *const postern_map_keys[] = {
    "mailbox_map", "smtpd_auth_map", "transport_map", "virtual_alias_map", "alias_map",
    "smtp_tls_policy_map", "smtpd_sender_login_map", "smtp_sasl_password_map",
};

/* postern_check_stale - warn if the text of a hash map is newer than its .db. */
static void
postern_check_stale(const char *key, const char *source, const char *db)
{
    struct stat st_src, st_db;

    if (stat(db, &st_db) == -1)
        return;
    if (stat(source, &st_src) == -1)
        fprintf(stderr, "postern: warning: %s: %s: %s\n", key, source, strerror(errno));
    else if (st_src.st_mtim.tv_sec > st_db.st_mtim.tv_sec ||
             (st_src.st_mtim.tv_sec == st_db.st_mtim.tv_sec &&
              st_src.st_mtim.tv_nsec > st_db.st_mtim.tv_nsec))
        fprintf(stderr, "postern: warning: %s: %s is older than %s: run postern map build %s\n",
                key, db, source, source);
}

/* postern_check_map - open the map that key names; -1 (printed) if it is unusable. */
static int
postern_check_map(const struct config *cfg, const char *key)
{
    const char  *source = config_path(cfg, key);
    struct stat  st_db;
    struct map  *m;
    char        *db, err[1024];
    int          rc = -1;

    if (*source == '\0')
        return 0;
    db = xasprintf("%s.db", source);
    if (stat(db, &st_db) == -1) {
        fprintf(stderr, "postern: %s: %s: %s (run postern map build %s)\n", key, db,
                strerror(errno), source);
        goto out;
    }
    /* map_open() logs its own staleness warning; the one below names the command to run. */
    log_set_level(LOG_LVL_ERR);
    m = map_open(source, err, sizeof(err));
    log_set_level(LOG_LVL_INFO);
    if (m == NULL) {
        fprintf(stderr, "postern: %s: %s\n", key, err);
        goto out;
    }
    map_close(&m);
    postern_check_stale(key, source, db);
    rc = 0;
out:
    free(db);
    return rc;
}

/* postern_check_access_stale - the staleness warning for each hash table of a setting. */
static void
postern_check_access_stale(const struct config *cfg, const char *key)
{
    char *const *specs;
    size_t       n;

    specs = config_list(cfg, key, &n);
    for (size_t i = 0; i < n; i++) {
        const char *path;
        char       *source, *db;

        if (strcmp(postern_spec_split(specs[i], &path), "hash") != 0 || *path == '\0')
            continue;
        source = path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", config_dir(cfg), path);
        db = xasprintf("%s.db", source);
        postern_check_stale(key, source, db);
        free(source);
        free(db);
    }
}

/* postern_check_access - every table of every access stage opens as smtpd opens it and
 * each of its entries is an access action. -1 (printed) if any is not. */
static int
postern_check_access(const struct config *cfg)
{
    struct policy_tables *t;
    char                  err[1024];
    int                   rc = 0;

    for (int i = 0; i < POLICY_STAGES; i++) {
        const char *key = policy_stage_key((enum policy_stage)i);

        /* map_open() would log its own staleness warning; ours names the command to run. */
        log_set_level(LOG_LVL_ERR);
        t = postern_access_open(cfg, key);
        log_set_level(LOG_LVL_INFO);
        if (t == NULL) {
            rc = -1;
            continue;
        }
        if (policy_tables_validate(t, err, sizeof(err)) == -1) {
            fprintf(stderr, "postern: %s: %s\n", key, err);
            rc = -1;
        } else {
            postern_check_access_stale(cfg, key);
        }
        policy_tables_free(&t);
    }
    return rc;
}

/* postern_check_content - each content rule file compiles and holds content actions. */
static int
postern_check_content(const struct config *cfg)
{
    struct rules *r;
    int           rc = 0;

    for (int i = 0; i < CONTENT_SETS; i++) {
        if (postern_rules_setting(cfg, (enum content_set)i, &r) == -1)
            rc = -1;
        else if (r != NULL)
            rules_free(&r);
    }
    return rc;
}

/* postern_check_dnsbl - every smtpd_dnsbl_sites entry parses (smtpd would not start). */
static int
postern_check_dnsbl(const struct config *cfg)
{
    struct dnsbl_site site;
    char *const      *specs;
    char              err[512];
    size_t            n;
    int               rc = 0;

    specs = config_list(cfg, "smtpd_dnsbl_sites", &n);
    for (size_t i = 0; i < n; i++)
        if (dnsbl_site_parse(specs[i], &site, err, sizeof(err)) == -1) {
            fprintf(stderr, "postern: smtpd_dnsbl_sites: %s\n", err);
            rc = -1;
        }
    return rc;
}

/* postern_check_readable - -1 (printed) unless path can be opened for reading. */
static int
postern_check_readable(const char *key, const char *path)
{
    FILE *fp = fopen(path, "re");

    if (fp == NULL) {
        fprintf(stderr, "postern: %s: %s: %s\n", key, path, strerror(errno));
        return -1;
    }
    fclose(fp);
    return 0;
}

/* postern_check_key_mode - a private key must not be readable by others or by the
 * unprivileged mail_owner (smtpd reads it as root, before dropping privileges); readable by
 * its group is a warning. -1 (printed) if it is exposed. */
static int
postern_check_key_mode(const struct config *cfg, const char *key, const char *path)
{
    const char    *owner = config_str(cfg, "mail_owner");
    struct passwd *pw = getpwnam(owner);
    struct stat    st;

    if (stat(path, &st) == -1) {
        fprintf(stderr, "postern: %s: %s: %s\n", key, path, strerror(errno));
        return -1;
    }
    if (st.st_mode & S_IROTH) {
        fprintf(stderr, "postern: %s: %s is readable by everyone (mode %04o): chmod 600 "
                "it\n", key, path, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    /* Unprivileged test instances run every daemon as the current user: nothing to split. */
    if (pw != NULL && pw->pw_uid != 0 && pw->pw_uid != geteuid() && st.st_uid == pw->pw_uid) {
        fprintf(stderr, "postern: %s: %s is owned by mail_owner %s, whom it must be kept "
                "from: chown root it\n", key, path, owner);
        return -1;
    }
    if (st.st_mode & S_IRGRP)
        fprintf(stderr, "postern: warning: %s: %s is readable by its group (mode %04o)\n",
                key, path, (unsigned)(st.st_mode & 07777));
    return 0;
}

/* postern_check_sni - split one smtpd_tls_sni_certs item `cert.pem:key.pem` into absolute
 * paths (relative ones are relative to the configuration directory); -1 (printed) if it
 * has no key part. */
static int
postern_check_sni(const struct config *cfg, const char *item, char **cert, char **key)
{
    const char *colon = strchr(item, ':');
    char       *c, *k;

    if (colon == NULL || colon == item || colon[1] == '\0') {
        fprintf(stderr, "postern: smtpd_tls_sni_certs: \"%s\" is not cert.pem:key.pem\n",
                item);
        return -1;
    }
    c = xstrndup(item, (size_t)(colon - item));
    k = xstrdup(colon + 1);
    *cert = c[0] == '/' ? xstrdup(c) : xasprintf("%s/%s", config_dir(cfg), c);
    *key = k[0] == '/' ? xstrdup(k) : xasprintf("%s/%s", config_dir(cfg), k);
    free(c);
    free(k);
    return 0;
}

/* postern_check_tls - the smtpd TLS settings: load them as smtpd will. -1 (printed). */
static int
postern_check_tls(const struct config *cfg)
{
    const char            *cert = config_path(cfg, "smtpd_tls_cert_file");
    const char            *key = config_path(cfg, "smtpd_tls_key_file");
    const char            *ciphers = config_str(cfg, "smtpd_tls_ciphers");
    const char            *ca = config_path(cfg, "smtpd_tls_client_ca_file");
    struct tls_cert        certs[POSTERN_CHECK_MAX_CERTS];
    struct tls_server_conf conf;
    struct tls_ctx        *ctx;
    char *const           *sni;
    char                  *owned[2 * POSTERN_CHECK_MAX_CERTS];
    char                   err[1024];
    size_t                 nsni, nowned = 0, ncerts = 0;
    int                    rc = -1;

    sni = config_list(cfg, "smtpd_tls_sni_certs", &nsni);
    if (*cert == '\0' && *key == '\0') {
        if (config_list(cfg, "smtps_listen", &nsni)[0] != NULL) {
            fprintf(stderr, "postern: smtps_listen needs smtpd_tls_cert_file and "
                    "smtpd_tls_key_file\n");
            return -1;
        }
        if (config_list(cfg, "submission_listen", &nsni)[0] != NULL)
            fprintf(stderr, "postern: warning: submission_listen without "
                    "smtpd_tls_cert_file: no STARTTLS, so nobody can authenticate\n");
        if (sni[0] != NULL)
            fprintf(stderr, "postern: warning: smtpd_tls_sni_certs is ignored without "
                    "smtpd_tls_cert_file\n");
        return 0;
    }
    if (*cert == '\0' || *key == '\0') {
        fprintf(stderr, "postern: %s is set but %s is not: set both\n",
                *cert ? "smtpd_tls_cert_file" : "smtpd_tls_key_file",
                *cert ? "smtpd_tls_key_file" : "smtpd_tls_cert_file");
        return -1;
    }
    if (1 + nsni > POSTERN_CHECK_MAX_CERTS) {
        fprintf(stderr, "postern: smtpd_tls_sni_certs: at most %d certificates\n",
                POSTERN_CHECK_MAX_CERTS - 1);
        return -1;
    }
    if (postern_check_readable("smtpd_tls_cert_file", cert) == -1 ||
        postern_check_readable("smtpd_tls_key_file", key) == -1 ||
        postern_check_key_mode(cfg, "smtpd_tls_key_file", key) == -1)
        return -1;
    certs[ncerts].cert_file = cert;
    certs[ncerts++].key_file = key;
    for (size_t i = 0; i < nsni; i++) {
        char *c, *k;

        if (postern_check_sni(cfg, sni[i], &c, &k) == -1)
            goto out;
        owned[nowned++] = c;
        owned[nowned++] = k;
        if (postern_check_readable("smtpd_tls_sni_certs", c) == -1 ||
            postern_check_readable("smtpd_tls_sni_certs", k) == -1 ||
            postern_check_key_mode(cfg, "smtpd_tls_sni_certs", k) == -1)
            goto out;
        certs[ncerts].cert_file = c;
        certs[ncerts++].key_file = k;
    }
    if (*ca && postern_check_readable("smtpd_tls_client_ca_file", ca) == -1)
        goto out;
    memset(&conf, 0, sizeof(conf));
    conf.certs = certs;
    conf.ncerts = ncerts;
    conf.min_version = config_str(cfg, "smtpd_tls_min_version");
    conf.ciphers = *ciphers ? ciphers : NULL;
    conf.client_ca_file = *ca ? ca : NULL;
    if ((ctx = tls_server_ctx_new(&conf, err, sizeof(err))) == NULL) {
        fprintf(stderr, "postern: smtpd TLS: %s\n", err);
        goto out;
    }
    tls_ctx_free(&ctx);
    rc = 0;
out:
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    return rc;
}

/* postern_check_auth - every entry of the auth map's text is `user hash` with a hash
 * pwhash_acceptable() takes; the map should be private. -1 (printed) on a bad entry. */
static int
postern_check_auth(const struct config *cfg)
{
    const char  *source = config_path(cfg, "smtpd_auth_map");
    struct stat  st;
    FILE        *fp;
    char        *line = NULL;
    size_t       cap = 0;
    ssize_t      n;
    unsigned     lineno = 0, users = 0;
    int          rc = 0;

    if (*source == '\0')
        return 0;
    if (*config_path(cfg, "smtpd_tls_cert_file") == '\0')
        fprintf(stderr, "postern: warning: smtpd_auth_map without smtpd_tls_cert_file: AUTH "
                "is offered only over TLS, so never\n");
    if ((fp = fopen(source, "re")) == NULL) {
        fprintf(stderr, "postern: smtpd_auth_map: %s: %s\n", source, strerror(errno));
        return -1;
    }
    if (fstat(fileno(fp), &st) == 0 && (st.st_mode & S_IROTH))
        fprintf(stderr, "postern: warning: smtpd_auth_map: %s is readable by everyone (mode "
                "%04o): chmod 600 it\n", source, (unsigned)(st.st_mode & 07777));
    while ((n = getline(&line, &cap, fp)) != -1) {
        char *p = line, *user, *hash, *end;

        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                         line[n - 1] == '\t'))
            line[--n] = '\0';
        if (*p == '\0' || *p == '#' || *p == ' ' || *p == '\t')
            continue;           /* blank, comment; leading space is map build's error */
        user = p;
        for (end = p; *end && *end != ' ' && *end != '\t'; end++)
            ;
        if (*end == '\0') {
            fprintf(stderr, "postern: smtpd_auth_map: %s:%u: user %s has no password hash\n",
                    source, lineno, user);
            rc = -1;
            continue;
        }
        *end++ = '\0';
        for (hash = end; *hash == ' ' || *hash == '\t'; hash++)
            ;
        users++;
        if (!pwhash_acceptable(hash) || strpbrk(hash, " \t") != NULL) {
            fprintf(stderr, "postern: smtpd_auth_map: %s:%u: user %s: not a yescrypt ($y$) or "
                    "SHA-512 ($6$) crypt hash (set it with postern passwd)\n", source, lineno,
                    user);
            rc = -1;
        }
    }
    if (ferror(fp)) {
        fprintf(stderr, "postern: smtpd_auth_map: %s: read: %s\n", source, strerror(errno));
        rc = -1;
    }
    if (line != NULL) {
        explicit_bzero(line, cap);
        free(line);
    }
    fclose(fp);
    if (rc == 0 && users == 0)
        fprintf(stderr, "postern: warning: smtpd_auth_map: %s has no users\n", source);
    return rc;
}

/* postern_check_master - `master -n`: the checks only master can make (listener
 * addresses); it prints its own error. -1 if it found one. */
static int
postern_check_master(const struct postern_ctx *ctx, const struct config *cfg)
{
    char       *master = postern_master_path(cfg);
    const char *argv[] = { "master", "-c", ctx->confdir, "-n", NULL };
    int         status, rc = -1;
    pid_t       pid, w;

    if (access(master, X_OK) == -1) {
        fprintf(stderr, "postern: warning: %s: %s: listeners not checked\n", master,
                strerror(errno));
        free(master);
        return 0;
    }
    fflush(NULL);
    if ((pid = fork()) == -1) {
        fprintf(stderr, "postern: fork: %s\n", strerror(errno));
    } else if (pid == 0) {
        execv(master, (char *const *)argv);
        fprintf(stderr, "postern: exec %s: %s\n", master, strerror(errno));
        _exit(127);
    } else {
        while ((w = waitpid(pid, &status, 0)) == -1 && errno == EINTR)
            continue;
        if (w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
            rc = 0;
    }
    free(master);
    return rc;
}

/* postern_check_emit - one line of `postern check -v`. */
/* postern_check_policy_level - one smtp_tls_policy_map entry: its first word is a level. */
static int
postern_check_policy_level(void *arg, const char *key, const char *value)
{
    int           *dane = arg;
    char           word[32];
    enum tls_level l;

    snprintf(word, sizeof(word), "%.*s", (int)strcspn(value, " \t"), value);
    if (tls_level_parse(word, &l) == -1) {
        fprintf(stderr, "postern: smtp_tls_policy_map: %s: \"%s\" is not a TLS level "
                "(none, may, encrypt, verify, dane, dane-only)\n", key, word);
        return 1;
    }
    if (l >= TLS_LEVEL_DANE)
        *dane = 1;
    return 0;
}

/* postern_check_dane - policy map levels, and the trust anchor that DANE needs. The anchor
 * is checked where DANE is asked for, or where the file exists (it will then be loaded). */
static int
postern_check_dane(const struct config *cfg)
{
    const char       *policy = config_path(cfg, "smtp_tls_policy_map");
    const char       *ta = config_path(cfg, "dnssec_trust_anchor_file");
    struct dns_anchor anchors;
    struct map       *m;
    enum tls_level    l;
    int               dane = 0;
    char              err[1024];

    if (tls_level_parse(config_str(cfg, "smtp_tls_security_level"), &l) == 0
        && l >= TLS_LEVEL_DANE)
        dane = 1;
    if (*policy != '\0' && (m = map_open(policy, err, sizeof(err))) != NULL) {
        int rc = map_walk(m, postern_check_policy_level, &dane, err, sizeof(err));

        map_close(&m);
        if (rc == -1)
            fprintf(stderr, "postern: smtp_tls_policy_map: %s\n", err);
        if (rc != 0)
            return -1;
    }
    if (*ta == '\0') {
        if (dane)
            fprintf(stderr, "postern: warning: TLS level dane without "
                    "dnssec_trust_anchor_file: nothing validates, so dane acts as may and "
                    "dane-only defers\n");
        return 0;
    }
    if (!dane && access(ta, F_OK) == -1 && errno == ENOENT)
        return 0;
    if (dns_anchor_load(ta, &anchors, err, sizeof(err)) == -1) {
        fprintf(stderr, "postern: dnssec_trust_anchor_file: %s%s\n", err,
                strcmp(ta, "/usr/share/dns/root.key") == 0
                    ? " (Debian package dns-root-data)" : "");
        return -1;
    }
    dns_anchor_clear(&anchors);
    return 0;
}

static void
postern_check_emit(const char *key, const char *value, void *arg)
{
    (void)arg;
    printf("%s = %s\n", key, value);
}

int
postern_cmd_check(struct postern_ctx *ctx, int argc, char **argv)
{
    struct config *cfg;
    char           err[1024];
    int            ch, verbose = 0, rc = 0;

    optind = 0;
    while ((ch = getopt(argc, argv, "+v")) != -1) {
        if (ch != 'v')
            return 2;
        verbose = 1;
    }
    if (optind < argc) {
        fprintf(stderr, "postern: check: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if ((cfg = config_load(ctx->confdir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (postern_check_master(ctx, cfg) == -1)
        rc = 1;
    for (size_t i = 0; i < sizeof(postern_map_keys) / sizeof(postern_map_keys[0]); i++) {
        if (postern_check_map(cfg, postern_map_keys[i]) == -1)
            rc = 1;
    }
    if (postern_check_tls(cfg) == -1)
        rc = 1;
    if (postern_check_auth(cfg) == -1)
        rc = 1;
    if (postern_check_access(cfg) == -1)
        rc = 1;
    if (postern_check_content(cfg) == -1)
        rc = 1;
    if (postern_check_dnsbl(cfg) == -1)
        rc = 1;
    if (postern_check_dane(cfg) == -1)
        rc = 1;
    if (verbose)
        config_dump(cfg, postern_check_emit, NULL);
    if (rc == 0)
        printf("postern: configuration ok\n");
    config_free(&cfg);
    return rc;
}
