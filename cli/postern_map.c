/* postern_map - `postern map build|query|test`: lookup tables and the mail policy by hand.
 *
 * build compiles a text map (or an aliases(5) file) into FILE.db with map_build(); query
 * prints one key's value in a `type:path` table, like `postmap -q` (exit 0 found, 1 not
 * found, 2 error); test runs the configured access checks over a client, HELO name, sender
 * and recipients, and the configured header and body checks over a message, and prints
 * what each table or rule would do, like `postmap -q` and `postmap -h/-b` over the policy
 * smtpd applies. test only reads: it changes no file but --output's, and talks to no
 * daemon. It also holds the helpers postern_check.c uses to open the same tables and rule
 * files smtpd opens (postern.h). The tables and rules are libcommon's policy, rules and
 * content; nothing here parses a table. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "content.h"
#include "map.h"
#include "policy.h"
#include "postern.h"
#include "rules.h"

#define POSTERN_SUBJECT_SHOWN 100      /* octets of a matched header or line printed */

/* postern_spec_split - the type of a table spec and where its path starts: `hash:`,
 * `cidr:` or `pcre:`, or a bare path (a hash map). */
const char *
postern_spec_split(const char *spec, const char **path)
{
    static const char *const types[] = { "hash", "cidr", "pcre" };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t n = strlen(types[i]);

        if (strncmp(spec, types[i], n) == 0 && spec[n] == ':') {
            *path = spec + n + 1;
            return types[i];
        }
    }
    *path = spec;
    return "hash";
}

/* postern_match_limit - pcre_match_limit as the rules take it. */
static uint32_t
postern_match_limit(const struct config *cfg)
{
    return (uint32_t)config_int(cfg, "pcre_match_limit");
}

/* postern_access_open - the tables a setting lists, opened as smtpd opens them; an empty
 * list gives an empty set. NULL with the error printed. */
struct policy_tables *
postern_access_open(const struct config *cfg, const char *key)
{
    struct policy_tables *t;
    char *const          *specs;
    char                  err[1024];
    size_t                n;

    specs = config_list(cfg, key, &n);
    t = policy_tables_open(specs, n, config_dir(cfg), postern_match_limit(cfg),
                           config_str(cfg, "smtpd_null_access_lookup_key"), err,
                           sizeof(err));
    if (t == NULL)
        fprintf(stderr, "postern: %s: %s\n", key, err);
    return t;
}

/* What postern_rules_value checks and where its error goes. */
struct postern_rules_check {
    char   *err;
    size_t  errlen;
    int     header;         /* header rules: REPLACE/PREPEND texts must be headers */
};

/* postern_rules_value - one rule's value must be a content action: 1 with
 * "file:line: message" if not (rules_walk stops there). */
static int
postern_rules_value(void *arg, const struct rules_hit *hit)
{
    struct postern_rules_check *chk = arg;
    struct policy_action        a;
    char                        msg[512];

    if (content_action_parse(hit->value, chk->header, &a, msg, sizeof(msg)) == 0)
        return 0;
    snprintf(chk->err, chk->errlen, "%s:%d: %s", hit->file, hit->line, msg);
    return 1;
}

/* postern_rules_load - load a content rule file and check that every value is a content
 * action; what names the setting or option for the error. NULL with the error printed. */
static struct rules *
postern_rules_load(const char *what, const char *path, uint32_t match_limit)
{
    struct postern_rules_check chk;
    struct rules              *r;
    char                       err[1024];

    if ((r = rules_load(path, match_limit, err, sizeof(err))) == NULL) {
        fprintf(stderr, "postern: %s: %s\n", what, err);
        return NULL;
    }
    chk.err = err;
    chk.errlen = sizeof(err);
    chk.header = strstr(what, "header") != NULL;   /* header_checks, --mime-header-checks */
    if (rules_walk(r, postern_rules_value, &chk) != 0) {
        fprintf(stderr, "postern: %s: %s\n", what, err);
        rules_free(&r);
    }
    return r;
}

/* postern_rules_open - a content rule file from its spec (`pcre:PATH`, relative to
 * confdir), checked. what names the option for the error. NULL with the error printed. */
struct rules *
postern_rules_open(const char *what, const char *spec, const char *confdir,
                   uint32_t match_limit)
{
    struct rules *r;
    const char   *path;
    char         *abs;

    if (strcmp(postern_spec_split(spec, &path), "pcre") != 0 || *path == '\0') {
        fprintf(stderr, "postern: %s: \"%s\" is not pcre:/path (content rules are PCRE2 "
                "tables)\n", what, spec);
        return NULL;
    }
    abs = path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", confdir, path);
    r = postern_rules_load(what, abs, match_limit);
    free(abs);
    return r;
}

/* postern_rules_setting - the rule file a content setting names (at most one), checked.
 * 0 with *out NULL if the setting is empty; -1 printed. */
int
postern_rules_setting(const struct config *cfg, enum content_set set, struct rules **out)
{
    char *path, err[512];

    *out = NULL;
    if (content_set_path(cfg, set, &path, err, sizeof(err)) == -1) {
        fprintf(stderr, "postern: %s\n", err);
        return -1;
    }
    if (path == NULL)
        return 0;
    *out = postern_rules_load(content_set_key(set), path, postern_match_limit(cfg));
    free(path);
    return *out == NULL ? -1 : 0;
}

/* postern_action_format - an action as one line: "REJECT 550 5.7.1 text", "HOLD", ... */
static void
postern_action_format(const struct policy_action *a, char *out, size_t outlen)
{
    int n;

    n = snprintf(out, outlen, "%s", policy_kind_name(a->kind));
    if ((a->kind == POLICY_REJECT || a->kind == POLICY_DEFER) && a->code != 0 && n >= 0
        && (size_t)n < outlen)
        n += snprintf(out + n, outlen - (size_t)n, " %d%s%s", a->code, a->enh[0] ? " " : "",
                      a->enh);
    if (a->text[0] != '\0' && n >= 0 && (size_t)n < outlen)
        snprintf(out + n, outlen - (size_t)n, " %s", a->text);
}

/* postern_action_print - "SUBJECT: ACTION  [WHERE]". */
static void
postern_action_print(const char *subject, const struct policy_action *a)
{
    char line[POLICY_TEXT_MAX + 64];

    postern_action_format(a, line, sizeof(line));
    if (a->where[0] != '\0')
        printf("%s: %s  [%s]\n", subject, line, a->where);
    else
        printf("%s: %s\n", subject, line);
}

/* postern_map_query_hash - print the value of key in the map built from source. */
static int
postern_map_query_hash(const char *source, const char *key)
{
    struct map *m;
    char        err[1024], val[4096];
    int         r;

    if ((m = map_open(source, err, sizeof(err))) == NULL) {
        fprintf(stderr, "postern: %s\n", err);
        return 2;
    }
    r = map_lookup(m, key, val, sizeof(val));
    map_close(&m);
    if (r == 1)
        printf("%s\n", val);
    else if (r == -1)
        fprintf(stderr, "postern: %s: lookup of %s failed\n", source, key);
    return r == 1 ? 0 : r == 0 ? 1 : 2;
}

/* postern_map_query_pcre - the value of the first rule of a pcre table that matches key. */
static int
postern_map_query_pcre(const char *path, const char *key, uint32_t match_limit)
{
    struct rules_hit hit;
    struct rules    *r;
    char             err[1024];
    int              found;

    if ((r = rules_load(path, match_limit, err, sizeof(err))) == NULL) {
        fprintf(stderr, "postern: %s\n", err);
        return 2;
    }
    if ((found = rules_match(r, key, strlen(key), "", &hit, NULL)) == 1)
        printf("%s\n", hit.value);
    rules_free(&r);
    return found ? 0 : 1;
}

/* The answer of a one-table access check, WARN included. */
struct postern_query {
    struct policy_action warn;
    int                  warned;
};

/* postern_query_warn - a WARN entry answered: keep the first. */
static void
postern_query_warn(void *arg, const struct policy_action *a)
{
    struct postern_query *q = arg;

    if (!q->warned) {
        q->warn = *a;
        q->warned = 1;
    }
}

/* postern_map_query_cidr - the action of the first network of a cidr table that holds
 * the address key (policy reads cidr tables; the value comes back parsed). */
static int
postern_map_query_cidr(const char *path, const char *key, const char *confdir)
{
    struct postern_query  q;
    struct policy_tables *t;
    struct policy_action  a;
    char                 *spec = xasprintf("cidr:%s", path), err[1024], line[700];
    char                 *specs[1] = { spec };

    t = policy_tables_open(specs, 1, confdir, 0, "<>", err, sizeof(err));
    free(spec);
    if (t == NULL) {
        fprintf(stderr, "postern: %s\n", err);
        return 2;
    }
    memset(&q, 0, sizeof(q));
    if (policy_access_check(t, POLICY_CLIENT, "unknown", key, "", postern_query_warn, &q,
                            &a) == POLICY_NONE) {
        if (!q.warned) {
            policy_tables_free(&t);
            return 1;
        }
        a = q.warn;
    }
    policy_tables_free(&t);
    postern_action_format(&a, line, sizeof(line));
    printf("%s\n", line);
    return 0;
}

/* postern_map_query - `map query TABLE KEY`. A relative path is relative to the current
 * directory, as a shell user means it; pcre_match_limit comes from the configuration when
 * there is one. */
static int
postern_map_query(struct postern_ctx *ctx, const char *table, const char *key)
{
    struct config *cfg;
    const char    *type, *path;
    char           err[1024], cwd[4096], *abs;
    uint32_t       match_limit = 0;
    int            rc;

    type = postern_spec_split(table, &path);
    if (*path == '\0') {
        fprintf(stderr, "postern: map query: \"%s\" names no file\n", table);
        return 2;
    }
    if (strcmp(type, "hash") == 0)
        return postern_map_query_hash(path, key);
    if (path[0] == '/')
        abs = xstrdup(path);
    else if (getcwd(cwd, sizeof(cwd)) != NULL)
        abs = xasprintf("%s/%s", cwd, path);
    else {
        fprintf(stderr, "postern: getcwd: %s\n", strerror(errno));
        return 2;
    }
    if ((cfg = config_load(ctx->confdir, err, sizeof(err))) != NULL) {
        match_limit = postern_match_limit(cfg);
        config_free(&cfg);
    }
    if (strcmp(type, "pcre") == 0)
        rc = postern_map_query_pcre(abs, key, match_limit);
    else
        rc = postern_map_query_cidr(abs, key, ctx->confdir);
    free(abs);
    return rc;
}

/* What `map test` was asked. */
struct postern_test {
    const char  *client, *name, *helo, *sender;
    char       **rcpts;
    size_t       nrcpt;
    const char  *message, *output;
    const char  *header_spec, *mime_spec, *body_spec;   /* overrides of the settings */
};

/* postern_test_warn - a WARN entry on the way: print it under the stage's subject. */
static void
postern_test_warn(void *arg, const struct policy_action *a)
{
    postern_action_print(arg, a);
}

/* postern_test_stage - one access check, printed. -1: its tables did not open. */
static int
postern_test_stage(const struct config *cfg, enum policy_stage stage, const char *key,
                   const char *addr, const char *subject)
{
    struct policy_tables *t;
    struct policy_action  a;
    const char           *setting = policy_stage_key(stage);

    if ((t = postern_access_open(cfg, setting)) == NULL)
        return -1;
    if (policy_tables_count(t) == 0)
        printf("%s: no match (%s is empty)\n", subject, setting);
    else if (policy_access_check(t, stage, key, addr, "", postern_test_warn, (void *)subject,
                                 &a) == POLICY_NONE)
        printf("%s: no match\n", subject);
    else
        postern_action_print(subject, &a);
    policy_tables_free(&t);
    return 0;
}

/* postern_test_access - the stages asked for, in the order smtpd runs them. */
static int
postern_test_access(const struct config *cfg, const struct postern_test *t)
{
    char subject[1200];
    int  rc = 0;

    if (t->client != NULL) {
        snprintf(subject, sizeof(subject), "client %s (name %s)", t->client, t->name);
        rc |= postern_test_stage(cfg, POLICY_CLIENT, t->name, t->client, subject);
    }
    if (t->helo != NULL) {
        snprintf(subject, sizeof(subject), "helo %s", t->helo);
        rc |= postern_test_stage(cfg, POLICY_HELO, t->helo, NULL, subject);
    }
    if (t->sender != NULL) {
        snprintf(subject, sizeof(subject), "sender <%s>", t->sender);
        rc |= postern_test_stage(cfg, POLICY_SENDER, t->sender, NULL, subject);
    }
    for (size_t i = 0; i < t->nrcpt; i++) {
        snprintf(subject, sizeof(subject), "recipient <%s>", t->rcpts[i]);
        rc |= postern_test_stage(cfg, POLICY_RECIPIENT, t->rcpts[i], NULL, subject);
    }
    return rc ? -1 : 0;
}

/* postern_test_rules - the content rules, with smtpd's limits: the files the options name
 * if any was given (only those; relative to the current directory), else the settings.
 * -1 printed. */
static int
postern_test_rules(const struct config *cfg, const struct postern_test *t,
                   struct content_rules *cr)
{
    /* in enum content_set's order */
    const char *const specs[] = { t->header_spec, t->mime_spec, t->body_spec };
    const char *const opts[] = { "--header-checks", "--mime-header-checks", "--body-checks" };
    int               override = t->header_spec || t->mime_spec || t->body_spec;
    char              cwd[4096];

    memset(cr, 0, sizeof(*cr));
    cr->body_size_limit = config_size(cfg, "body_checks_size_limit");
    cr->header_max = (size_t)config_size(cfg, "header_size_limit");
    if (override && getcwd(cwd, sizeof(cwd)) == NULL) {
        fprintf(stderr, "postern: getcwd: %s\n", strerror(errno));
        return -1;
    }
    for (int i = 0; i < CONTENT_SETS; i++) {
        struct rules **slot = content_rules_slot(cr, (enum content_set)i);

        if (!override) {
            if (postern_rules_setting(cfg, (enum content_set)i, slot) == -1)
                return -1;
        } else if (specs[i] != NULL) {
            *slot = postern_rules_open(opts[i], specs[i], cwd, postern_match_limit(cfg));
            if (*slot == NULL)
                return -1;
        }
    }
    return 0;
}

/* postern_content_rules_free - the rules postern_test_rules loaded. */
static void
postern_content_rules_free(struct content_rules *cr)
{
    rules_free(&cr->header);
    rules_free(&cr->mime_header);
    rules_free(&cr->body);
}

/* postern_subject_quote - a matched header or line, quoted for one output line: cut to
 * POSTERN_SUBJECT_SHOWN octets, quotes, backslashes and non-printing octets escaped. */
static void
postern_subject_quote(struct buf *b, const char *s, size_t len)
{
    size_t shown = len > POSTERN_SUBJECT_SHOWN ? POSTERN_SUBJECT_SHOWN : len;

    buf_puts(b, "\"");
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            buf_printf(b, "\\x%02x", c);
        else
            buf_append(b, &s[i], 1);
    }
    buf_puts(b, shown < len ? "\"..." : "\"");
}

/* postern_test_content_log - an action a content rule applied: print it. */
static void
postern_test_content_log(void *arg, enum content_part what, const struct policy_action *a,
                         const char *subject, size_t len)
{
    static const char *const names[] = { "header", "mime-header", "body" };
    struct buf               line;

    (void)arg;
    buf_init(&line, 256);
    buf_printf(&line, "%s ", names[what]);
    postern_subject_quote(&line, subject, len);
    postern_action_print(buf_cstr(&line), a);
    buf_release(&line);
}

/* postern_read_all - a whole file, or stdin for "-". -1 printed. */
static int
postern_read_all(const char *path, struct buf *out)
{
    FILE  *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    char   chunk[65536];
    size_t n;
    int    rc = 0;

    if (fp == NULL) {
        fprintf(stderr, "postern: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        buf_append(out, chunk, n);
    if (ferror(fp)) {
        fprintf(stderr, "postern: %s: read: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (fp != stdin)
        fclose(fp);
    return rc;
}

/* postern_crlf - the message as smtpd stores it: every line ends in CRLF (a file on disk
 * usually has bare LF). Returns 1 if the text had no CRLF at all. */
static int
postern_crlf(const struct buf *in, struct buf *out)
{
    int lf_only = strstr(buf_cstr(in), "\r\n") == NULL;

    for (size_t i = 0; i < in->len; i++) {
        if (in->data[i] == '\n' && (i == 0 || in->data[i - 1] != '\r'))
            buf_append(out, "\r", 1);
        buf_append(out, &in->data[i], 1);
    }
    return lf_only;
}

/* postern_write_output - the rewritten message to path, with LF line ends if the input
 * had them. -1 printed. */
static int
postern_write_output(const char *path, const struct buf *msg, int lf_only)
{
    FILE *fp;
    int   rc = 0;

    if ((fp = fopen(path, "we")) == NULL) {
        fprintf(stderr, "postern: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < msg->len; i++) {
        if (lf_only && msg->data[i] == '\r' && i + 1 < msg->len && msg->data[i + 1] == '\n')
            continue;
        putc(msg->data[i], fp);
    }
    if (ferror(fp)) {
        fprintf(stderr, "postern: %s: write: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (fclose(fp) == EOF && rc == 0) {
        fprintf(stderr, "postern: %s: write: %s\n", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* postern_test_content - the content rules over the message; prints each action and the
 * verdict. -1 printed. */
static int
postern_test_content(const struct config *cfg, const struct postern_test *t)
{
    const struct content_verdict *v;
    struct content_rules          cr;
    struct content               *c;
    struct buf                    raw, msg, out;
    int                           lf_only, rc = -1;

    if (postern_test_rules(cfg, t, &cr) == -1) {
        postern_content_rules_free(&cr);
        return -1;
    }
    if (!content_any(&cr))
        fprintf(stderr, "postern: warning: no header_checks, mime_header_checks or "
                "body_checks: nothing to test\n");
    buf_init(&raw, 65536);
    buf_init(&msg, 65536);
    buf_init(&out, 65536);
    if (postern_read_all(t->message, &raw) == -1)
        goto out;
    lf_only = postern_crlf(&raw, &msg);
    c = content_new(&cr, postern_test_content_log, NULL);
    content_begin(c, "");
    content_feed(c, msg.data, msg.len, &out);
    content_end(c, &out);
    v = content_verdict(c);
    if (v->limit_hits > 0)
        printf("match limit: %u pattern matches stopped (pcre_match_limit)\n", v->limit_hits);
    if (v->kind == POLICY_NONE)
        printf("verdict: accept\n");
    else
        postern_action_print("verdict", &v->action);
    content_free(&c);
    rc = 0;
    if (t->output != NULL)
        rc = postern_write_output(t->output, &out, lf_only);
out:
    buf_release(&raw);
    buf_release(&msg);
    buf_release(&out);
    postern_content_rules_free(&cr);
    return rc;
}

/* postern_map_usage - the map command's synopsis (postern_usage() explains it). */
static void
postern_map_usage(FILE *f)
{
    fprintf(f,
        "usage: postern map build [--aliases] FILE\n"
        "       postern map query TABLE KEY\n"
        "       postern map test [--client ADDR [--name NAME]] [--helo NAME]\n"
        "                        [--sender ADDR] [--rcpt ADDR]...\n"
        "       postern map test --message FILE|- [--output FILE]\n"
        "                        [--header-checks pcre:PATH] [--mime-header-checks pcre:PATH]\n"
        "                        [--body-checks pcre:PATH]\n");
}

/* postern_test_options - parse `map test`'s options into t; -1 printed (usage error). */
static int
postern_test_options(int argc, char **argv, struct postern_test *t)
{
    static const struct option opts[] = {
        { "client", required_argument, NULL, 'c' },
        { "name", required_argument, NULL, 'n' },
        { "helo", required_argument, NULL, 'h' },
        { "sender", required_argument, NULL, 's' },
        { "rcpt", required_argument, NULL, 'r' },
        { "message", required_argument, NULL, 'm' },
        { "output", required_argument, NULL, 'o' },
        { "header-checks", required_argument, NULL, 'H' },
        { "mime-header-checks", required_argument, NULL, 'M' },
        { "body-checks", required_argument, NULL, 'B' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': t->client = optarg; break;
        case 'n': t->name = optarg; break;
        case 'h': t->helo = optarg; break;
        case 's': t->sender = strcmp(optarg, "<>") == 0 ? "" : optarg; break;
        case 'r':
            t->rcpts = xrealloc(t->rcpts, (t->nrcpt + 1) * sizeof(*t->rcpts));
            t->rcpts[t->nrcpt++] = optarg;
            break;
        case 'm': t->message = optarg; break;
        case 'o': t->output = optarg; break;
        case 'H': t->header_spec = optarg; break;
        case 'M': t->mime_spec = optarg; break;
        case 'B': t->body_spec = optarg; break;
        default:
            fprintf(stderr, "postern: map test: bad option %s\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "postern: map test: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (t->name != NULL && t->client == NULL) {
        fprintf(stderr, "postern: map test: --name needs --client\n");
        return -1;
    }
    if (t->message == NULL && (t->output || t->header_spec || t->mime_spec || t->body_spec)) {
        fprintf(stderr, "postern: map test: --output and --*-checks need --message\n");
        return -1;
    }
    if (t->client == NULL && t->helo == NULL && t->sender == NULL && t->nrcpt == 0
        && t->message == NULL) {
        fprintf(stderr, "postern: map test: nothing to test\n");
        return -1;
    }
    if (t->name == NULL || *t->name == '\0')
        t->name = "unknown";
    return 0;
}

/* postern_map_test - `map test`: access checks, then content rules. */
static int
postern_map_test(struct postern_ctx *ctx, int argc, char **argv)
{
    struct postern_test t;
    struct config      *cfg;
    char                err[1024];
    int                 rc = 0;

    memset(&t, 0, sizeof(t));
    if (postern_test_options(argc, argv, &t) == -1) {
        free(t.rcpts);
        postern_map_usage(stderr);
        return 2;
    }
    if ((cfg = config_load(ctx->confdir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        free(t.rcpts);
        return 1;
    }
    if (postern_test_access(cfg, &t) == -1)
        rc = 1;
    if (t.message != NULL && postern_test_content(cfg, &t) == -1)
        rc = 1;
    config_free(&cfg);
    free(t.rcpts);
    return rc;
}

int
postern_cmd_map(struct postern_ctx *ctx, int argc, char **argv)
{
    char err[1024];

    if (argc >= 2 && strcmp(argv[1], "test") == 0)
        return postern_map_test(ctx, argc - 1, argv + 1);
    if (argc == 4 && strcmp(argv[1], "build") == 0 && strcmp(argv[2], "--aliases") == 0) {
        if (map_build_aliases(argv[3], err, sizeof(err)) == -1) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "build") == 0) {
        if (map_build(argv[2], err, sizeof(err)) == -1) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "query") == 0)
        return postern_map_query(ctx, argv[2], argv[3]);
    postern_map_usage(stderr);
    return 2;
}
