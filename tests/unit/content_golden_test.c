/* content_golden_test - the golden samples of tests/golden/content through libcommon/content.
 *
 * The directory holds the rule files header_checks.pcre, mime_header_checks.pcre and
 * body_checks.pcre, a `settings` file (body_checks_size_limit, header_max,
 * pcre_match_limit), and the samples: NAME.eml with NAME.expect, lines of
 *   verdict KIND [CODE ENH] [TEXT]    e.g. "verdict REJECT 550 5.7.1 Body spam", "verdict NONE"
 *   warnings N / changes N / limit_hits N    (a count not given must be 0)
 * and, where a rule rewrites the message, NAME.out: the exact output (else the output must be
 * the input, byte for byte). Files may have LF or CRLF line ends: each LF not after a CR is
 * read as CRLF, as smtpd stores a message. Each sample is fed whole, byte by byte and in
 * random chunks; every run must give the expected verdict, counts and output.
 *
 * The directory is argv[1], else $POSTERN_GOLDEN_DIR, else tests/golden/content relative to
 * the working directory (tools/run-tests runs unit binaries from the repository root). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "content.h"
#include "log.h"
#include "policy.h"
#include "rules.h"
#include "test.h"

#define GOLDEN_DIR_DEFAULT "tests/golden/content"
#define GOLDEN_MIN_SAMPLES 20         /* fewer means the directory is not what we think */
#define GOLDEN_MAX_SAMPLES 256

static const char *golden_dir = GOLDEN_DIR_DEFAULT;

struct golden_settings {
    uint64_t body_size_limit;
    size_t   header_max;
    uint32_t match_limit;
};

struct golden_expect {
    char     verdict[POLICY_TEXT_MAX + 128];
    unsigned warnings;
    unsigned changes;
    unsigned limit_hits;
};

/* golden_path - dir/name (static buffer). */
static const char *
golden_path(const char *name)
{
    static char path[1024];

    snprintf(path, sizeof(path), "%s/%s", golden_dir, name);
    return path;
}

/* golden_read - the file's bytes with every LF not after a CR made CRLF; -1 if missing. */
static int
golden_read(const char *name, struct buf *b)
{
    FILE  *fp = fopen(golden_path(name), "rb");
    int    ch, prev = 0;

    buf_reset(b);
    if (fp == NULL)
        return -1;
    while ((ch = getc(fp)) != EOF) {
        if (ch == '\n' && prev != '\r')
            buf_append(b, "\r", 1);
        buf_append(b, &(char){ (char)ch }, 1);
        prev = ch;
    }
    fclose(fp);
    return 0;
}

/* golden_settings_load - the settings file; -1 (reported) if it is missing or wrong. */
static int
golden_settings_load(struct golden_settings *s)
{
    FILE              *fp = fopen(golden_path("settings"), "r");
    char               line[256], key[64];
    unsigned long long v;

    s->body_size_limit = 0;
    s->header_max = 0;
    s->match_limit = 100000;
    if (fp == NULL) {
        fprintf(stderr, "  %s: %s\n", golden_path("settings"), strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "%63s %llu", key, &v) != 2) {
            fprintf(stderr, "  settings: bad line: %s", line);
            fclose(fp);
            return -1;
        }
        if (strcmp(key, "body_checks_size_limit") == 0)
            s->body_size_limit = v;
        else if (strcmp(key, "header_max") == 0)
            s->header_max = (size_t)v;
        else if (strcmp(key, "pcre_match_limit") == 0)
            s->match_limit = (uint32_t)v;
    }
    fclose(fp);
    return 0;
}

/* golden_rules_load - one rule file of the directory; NULL (reported) on error. */
static struct rules *
golden_rules_load(const char *name, uint32_t match_limit)
{
    char          err[512];
    struct rules *r = rules_load(golden_path(name), match_limit, err, sizeof(err));

    if (r == NULL)
        fprintf(stderr, "  %s\n", err);
    return r;
}

/* golden_expect_load - NAME.expect; -1 (reported) if it is missing or wrong. */
static int
golden_expect_load(const char *name, struct golden_expect *e)
{
    char  file[300], line[POLICY_TEXT_MAX + 128];
    FILE *fp;

    memset(e, 0, sizeof(*e));
    snprintf(file, sizeof(file), "%s.expect", name);
    if ((fp = fopen(golden_path(file), "r")) == NULL) {
        fprintf(stderr, "  %s: %s\n", golden_path(file), strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "verdict ", 8) == 0)
            snprintf(e->verdict, sizeof(e->verdict), "%s", line + 8);
        else if (sscanf(line, "warnings %u", &e->warnings) == 1
                 || sscanf(line, "changes %u", &e->changes) == 1
                 || sscanf(line, "limit_hits %u", &e->limit_hits) == 1 || line[0] == '\0')
            continue;
        else
            fprintf(stderr, "  %s: unknown line: %s\n", file, line);
    }
    fclose(fp);
    if (e->verdict[0] == '\0') {
        fprintf(stderr, "  %s: no verdict line\n", file);
        return -1;
    }
    return 0;
}

/* golden_verdict_text - a verdict as an expect file writes it. */
static void
golden_verdict_text(const struct content_verdict *v, char *out, size_t len)
{
    const struct policy_action *a = &v->action;
    const char                 *sep = a->text[0] ? " " : "";

    if (v->kind == POLICY_REJECT || v->kind == POLICY_DEFER)
        snprintf(out, len, "%s %d %s%s%s", policy_kind_name(v->kind), a->code, a->enh, sep,
                 a->text);
    else if (v->kind == POLICY_NONE)
        snprintf(out, len, "NONE");
    else
        snprintf(out, len, "%s%s%s", policy_kind_name(v->kind), sep, a->text);
}

static unsigned golden_log_calls;

/* golden_log - count the actions reported. */
static void
golden_log(void *arg, enum content_part what, const struct policy_action *a,
           const char *subject, size_t len)
{
    (void)arg;
    (void)what;
    (void)a;
    (void)subject;
    (void)len;
    golden_log_calls++;
}

/* golden_run - feed in in chunks (0: whole, else sizes from 1 to step, random if random). */
static void
golden_run(struct content *c, const char *name, const struct buf *in, size_t step,
           int random, struct buf *out)
{
    size_t pos = 0;

    buf_reset(out);
    golden_log_calls = 0;
    content_begin(c, name);
    while (pos < in->len) {
        size_t n = step == 0 ? in->len - pos : random ? (size_t)rand() % step + 1 : step;

        if (n > in->len - pos)
            n = in->len - pos;
        content_feed(c, in->data + pos, n, out);
        pos += n;
    }
    content_end(c, out);
}

/* golden_check - one sample, fed every way. */
static int
golden_check(struct content *c, const char *name)
{
    static const struct { size_t step; int random; const char *how; } runs[] = {
        { 0, 0, "whole" }, { 1, 0, "byte by byte" }, { 7, 1, "chunks of 1-7" },
        { 300, 1, "chunks of 1-300" }, { 4000, 1, "chunks of 1-4000" },
    };
    struct golden_expect e;
    struct buf           in, want, out;
    char                 file[300], got[POLICY_TEXT_MAX + 128];
    size_t               r;
    int                  ok = 1;

    if (golden_expect_load(name, &e) == -1)
        return 0;
    buf_init(&in, 4096);
    buf_init(&want, 4096);
    buf_init(&out, 4096);
    snprintf(file, sizeof(file), "%s.eml", name);
    golden_read(file, &in);
    snprintf(file, sizeof(file), "%s.out", name);
    if (golden_read(file, &want) == -1)
        buf_append(&want, in.data, in.len);
    for (r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        const struct content_verdict *v;

        golden_run(c, name, &in, runs[r].step, runs[r].random, &out);
        v = content_verdict(c);
        golden_verdict_text(v, got, sizeof(got));
        if (strcmp(got, e.verdict) != 0 || v->warnings != e.warnings
            || v->changes != e.changes || v->limit_hits != e.limit_hits) {
            fprintf(stderr, "  %s (%s): verdict \"%s\" warnings %u changes %u limit_hits %u;"
                    " expected \"%s\" %u %u %u\n", name, runs[r].how, got, v->warnings,
                    v->changes, v->limit_hits, e.verdict, e.warnings, e.changes,
                    e.limit_hits);
            ok = 0;
        }
        if (golden_log_calls < v->warnings + v->changes) {
            fprintf(stderr, "  %s (%s): %u actions logged\n", name, runs[r].how,
                    golden_log_calls);
            ok = 0;
        }
        if (out.len != want.len || memcmp(out.data, want.data, out.len) != 0) {
            fprintf(stderr, "  %s (%s): output differs (%zu octets, expected %zu):\n%s\n",
                    name, runs[r].how, out.len, want.len, buf_cstr(&out));
            ok = 0;
        }
    }
    buf_release(&in);
    buf_release(&want);
    buf_release(&out);
    return ok;
}

/* golden_compare - qsort order for sample names. */
static int
golden_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* golden_samples - the NAMEs of every NAME.eml, sorted; the count (-1: no directory). */
static int
golden_samples(char **names, int max)
{
    DIR           *d = opendir(golden_dir);
    struct dirent *de;
    int            n = 0;

    if (d == NULL) {
        fprintf(stderr, "  %s: %s (run from the repository root or give the directory)\n",
                golden_dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL && n < max) {
        size_t len = strlen(de->d_name);

        if (len > 4 && strcmp(de->d_name + len - 4, ".eml") == 0)
            names[n++] = xstrndup(de->d_name, len - 4);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), golden_compare);
    return n;
}

/* test_content_golden_samples - every sample gives what its .expect (and .out) say. */
static void
test_content_golden_samples(void)
{
    struct golden_settings s;
    struct content_rules   cr;
    struct content        *c;
    char                  *names[GOLDEN_MAX_SAMPLES];
    int                    i, n, failed = 0;

    memset(&cr, 0, sizeof(cr));
    CHECK(golden_settings_load(&s) == 0);
    cr.header = golden_rules_load("header_checks.pcre", s.match_limit);
    cr.mime_header = golden_rules_load("mime_header_checks.pcre", s.match_limit);
    cr.body = golden_rules_load("body_checks.pcre", s.match_limit);
    CHECK(cr.header != NULL && cr.mime_header != NULL && cr.body != NULL);
    cr.body_size_limit = s.body_size_limit;
    cr.header_max = s.header_max;
    n = golden_samples(names, GOLDEN_MAX_SAMPLES);
    CHECK(n >= GOLDEN_MIN_SAMPLES);
    c = content_new(&cr, golden_log, NULL);
    srand(20260302);
    for (i = 0; i < n; i++) {
        int ok = golden_check(c, names[i]);

        printf("     %s %s\n", ok ? "ok  " : "FAIL", names[i]);
        failed += !ok;
        free(names[i]);
    }
    CHECK(failed == 0);
    content_free(&c);
    rules_free(&cr.header);
    rules_free(&cr.mime_header);
    rules_free(&cr.body);
}

/* main - run the golden samples; prints "N passed, N failed". */
int
main(int argc, char **argv)
{
    const char *env = getenv("POSTERN_GOLDEN_DIR");

    log_init("content_golden_test", 1);
    if (argc > 1)
        golden_dir = argv[1];
    else if (env != NULL && *env != '\0')
        golden_dir = env;
    TEST_RUN(test_content_golden_samples);
    TEST_END();
}
