/* rules_test - unit tests for libcommon/rules: pcre_table(5) syntax (flags, negation,
 * if/endif, continuation lines, delimiters), load errors with file:line, and matches that
 * run into the match limit.
 *
 * Every test writes its table into its own temporary directory under $TMPDIR (or /tmp) and
 * removes it. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rules.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define TEST_LIMIT 100000

static char test_dir[256];
static char test_path[512];

/* rules_test_setup - make a fresh temporary directory for one test. */
static void
rules_test_setup(void)
{
    const char *t = getenv("TMPDIR");

    snprintf(test_dir, sizeof(test_dir), "%s/rules_test.XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(test_dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

/* rules_test_teardown - remove the temporary directory and every file in it. */
static void
rules_test_teardown(void)
{
    DIR           *d = opendir(test_dir);
    struct dirent *e;
    char           p[512];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", test_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(test_dir);
}

/* rules_test_write - write len octets to test_dir/t; the path is in test_path. */
static const char *
rules_test_write_n(const char *text, size_t len)
{
    FILE *fp;

    snprintf(test_path, sizeof(test_path), "%s/t", test_dir);
    if ((fp = fopen(test_path, "w")) == NULL) {
        perror(test_path);
        exit(2);
    }
    fwrite(text, 1, len, fp);
    fclose(fp);
    return test_path;
}

static const char *
rules_test_write(const char *text)
{
    return rules_test_write_n(text, strlen(text));
}

/* rules_test_load - write text and load it; NULL on error (err filled). */
static struct rules *
rules_test_load(const char *text, char *err, size_t errlen)
{
    return rules_load(rules_test_write(text), TEST_LIMIT, err, errlen);
}

/* rules_test_value - the value that subject hits, or "-" for none. */
static const char *
rules_test_value(struct rules *r, const char *subject)
{
    struct rules_hit hit;

    if (rules_match(r, subject, strlen(subject), "", &hit, NULL) != 1)
        return "-";
    return hit.value;
}

struct rules_case {
    const char *subject;
    const char *value;                /* "-": no rule applies */
};

/* rules_test_table - load text and check every subject's value. */
static void
rules_test_table(const char *text, const struct rules_case *cases, size_t n)
{
    char          err[512] = "";
    struct rules *r;

    rules_test_setup();
    r = rules_test_load(text, err, sizeof(err));
    if (r == NULL)
        fprintf(stderr, "  load: %s\n", err);
    CHECK(r != NULL);
    for (size_t i = 0; r != NULL && i < n; i++) {
        const char *got = rules_test_value(r, cases[i].subject);

        if (strcmp(got, cases[i].value) != 0)
            fprintf(stderr, "  subject \"%s\"\n", cases[i].subject);
        CHECK_STR(got, cases[i].value);
    }
    rules_free(&r);
    CHECK(r == NULL);
    rules_test_teardown();
}

/* rules_test_error - load text; it must fail with exactly "<path>:<want>". */
static void
rules_test_error(const char *text, const char *want)
{
    char          err[512] = "", exp[1024];
    struct rules *r;

    rules_test_setup();
    r = rules_test_load(text, err, sizeof(err));
    CHECK(r == NULL);
    snprintf(exp, sizeof(exp), "%s:%s", test_path, want);
    CHECK_STR(err, exp);
    rules_free(&r);
    rules_test_teardown();
}

/* test_rules_caseless_default - matching ignores case unless `i` toggles it off. */
static void
test_rules_caseless_default(void)
{
    static const struct rules_case cases[] = {
        { "Subject: VIAGRA now", "caseless" },
        { "Subject: viagra", "caseless" },
        { "X-Exact: Token", "sensitive" },
        { "X-Exact: token", "twice" },
        { "x-exact: TOKEN", "twice" },
        { "nothing", "-" },
    };

    rules_test_table("/^subject:.*viagra/ caseless\n"
                     "/^X-Exact: Token$/i sensitive\n"
                     "/^X-Exact: token$/ii twice\n", cases, N(cases));
}

/* test_rules_other_flags - m s x A E U and X. */
static void
test_rules_other_flags(void)
{
    static const struct rules_case cases[] = {
        { "one\ntwo", "multi" },                  /* m: ^ after a newline */
        { "abc\nxyz", "dotall" },                 /* s: . matches the newline */
        { "foobar", "extended" },                 /* x: white space in the pattern ignored */
        { "zzqq", "anchored" },                   /* A: only at the start */
        { "qqzz", "-" },                          /* not at the start */
        { "end\n", "-" },                         /* E: $ not before a final newline */
        { "end", "endonly" },
        { "xy", "ungreedy" },                     /* U: the atomic x+ takes one x */
        { "xxy", "-" },
    };

    rules_test_table("/^two/m multi\n"
                     "/abc.xyz/s dotall\n"
                     "/foo  bar/x extended\n"
                     "/zz/A anchored\n"
                     "/^end$/E endonly\n"
                     "/^(?>x+)y/UX ungreedy\n", cases, N(cases));
}

/* test_rules_negation - !/re/ applies when re does not match; !! cancels out. */
static void
test_rules_negation(void)
{
    static const struct rules_case cases[] = {
        { "hello", "not-x" },
        { "xylophone", "double" },
        { "xx", "double" },
    };

    rules_test_table("!/x/ not-x\n"
                     "!!/x/ double\n", cases, N(cases));
}

/* test_rules_if_endif - a block is tried only when its if matches; nesting; negated if. */
static void
test_rules_if_endif(void)
{
    static const struct rules_case cases[] = {
        { "From: a@example.com spam", "example-spam" },
        { "From: a@example.com ham", "example" },
        { "From: a@example.com eggs special", "inner" },
        { "From: a@other.net spam", "not-example-spam" },
        { "From: a@other.net", "last" },
        { "Subject: hi", "last" },
    };

    rules_test_table("if /^From:/\n"
                     "  # a comment inside the block is fine\n"
                     "IF /example\\.com/\n"
                     "/spam/ example-spam\n"
                     "if /eggs/\n"
                     "/special/ inner\n"
                     "endif\n"
                     "/./ example\n"
                     "EndIf\n"
                     "if !/example\\.com/\n"
                     "/spam/ not-example-spam\n"
                     "endif\n"
                     "endif\n"
                     "/./ last\n", cases, N(cases));
}

/* test_rules_count - if/endif are not rules. */
static void
test_rules_count(void)
{
    char          err[512] = "";
    struct rules *r;

    rules_test_setup();
    r = rules_test_load("if /a/\n/b/ B\nendif\n/c/ C\n# x\n", err, sizeof(err));
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(rules_count(r) == 2);
        CHECK_STR(rules_path(r), test_path);
    }
    rules_free(&r);
    rules_test_teardown();
}

/* test_rules_continuation - white space at the start of a line continues the rule; the
 * hit's line is where the rule starts; comments and blank lines in between are skipped. */
static void
test_rules_continuation(void)
{
    char             err[512] = "";
    struct rules    *r;
    struct rules_hit hit;

    rules_test_setup();
    r = rules_test_load("# header\n"
                        "/^Subject:\\s(a|\n"
                        "  b)$/x\n"
                        "\n"
                        "# a comment between\n"
                        "    REJECT continued\n"
                        "\tvalue\r\n"
                        "/z/ Z\n", err, sizeof(err));
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(rules_match(r, "Subject: b", 10, "", &hit, NULL) == 1);
        CHECK_STR(hit.value, "REJECT continued\tvalue");
        CHECK(hit.line == 2);
        CHECK_STR(hit.file, test_path);
        CHECK(rules_match(r, "z", 1, "", &hit, NULL) == 1);
        CHECK(hit.line == 8);
    }
    rules_free(&r);
    rules_test_teardown();
}

/* test_rules_delimiters - any non-alphanumeric delimiter; an escaped delimiter stays in. */
static void
test_rules_delimiters(void)
{
    static const struct rules_case cases[] = {
        { "path /usr/bin", "bar" },
        { "a,b", "comma" },
        { "x/y", "escaped" },
        { "1+1", "plus" },
        { "q@w", "at" },
    };

    rules_test_table("|/usr/bin| bar\n"
                     ",a\\,b, comma\n"
                     "/x\\/y/ escaped\n"
                     "+1\\+1+ plus\n"
                     "!@q\\@w@ at\n"
                     "@q\\@w@ at\n", cases, N(cases));
}

/* test_rules_value_verbatim - values are trimmed but never expanded. */
static void
test_rules_value_verbatim(void)
{
    static const struct rules_case cases[] = {
        { "Subject: hi", "REPLACE Subject: [spam] $1 ${2} $$" },
    };

    rules_test_table("/^Subject: (.*)/   REPLACE Subject: [spam] $1 ${2} $$  \t\n",
                     cases, N(cases));
}

/* test_rules_binary_subject - any octet in the subject, NUL included; len is honoured. */
static void
test_rules_binary_subject(void)
{
    char             err[512] = "";
    struct rules    *r;
    struct rules_hit hit;
    const char       subj[] = "\xff\xfe\x00tail\x80";

    rules_test_setup();
    r = rules_test_load("/\\x00tail/ nul\n/^\\xff/ high\n", err, sizeof(err));
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(rules_match(r, subj, sizeof(subj) - 1, "", &hit, NULL) == 1);
        CHECK_STR(hit.value, "nul");
        CHECK(rules_match(r, subj, 2, "", &hit, NULL) == 1);
        CHECK_STR(hit.value, "high");
        CHECK(rules_match(r, "tail", 0, "", &hit, NULL) == 0);
        CHECK(rules_match(r, NULL, 0, "", &hit, NULL) == 0);
    }
    rules_free(&r);
    rules_test_teardown();
}

/* test_rules_pattern_error - file:line, offset and PCRE2's message. */
static void
test_rules_pattern_error(void)
{
    rules_test_error("# ok\n/fine/ OK\n/ab(c/ REJECT\n",
                     "3: pattern error at offset 4: missing closing parenthesis");
    rules_test_error("/a/ A\n\n/x{2,1}/ REJECT\n",
                     "3: pattern error at offset 5: numbers out of order in {} quantifier");
    rules_test_error("if /(?<n/\nendif\n",
                     "1: pattern error at offset 4: syntax error in subpattern name "
                     "(missing terminator?)");
    rules_test_error("/(*UTF)x/ A\n",
                     "1: pattern error at offset 6: using UTF is disabled by the application");
}

/* test_rules_syntax_errors - every malformed line is refused with file:line. */
static void
test_rules_syntax_errors(void)
{
    static const struct { const char *text, *want; } cases[] = {
        { "/a/\n", "1: missing value after pattern" },
        { "/a/   \t\n", "1: missing value after pattern" },
        { "\n/a/q V\n", "2: unknown pattern flag 'q'" },
        { "/a/iz V\n", "1: unknown pattern flag 'z'" },
        { "/abc V\n", "1: missing closing pattern delimiter '/'" },
        { "/abc\\/ V\n", "1: missing closing pattern delimiter '/'" },
        { "abc/ V\n", "1: bad pattern delimiter 'a' (use /pattern/)" },
        { "\\abc\\ V\n", "1: bad pattern delimiter '\\' (use /pattern/)" },
        { "!\n", "1: missing pattern" },
        { "if\nendif\n", "1: missing pattern" },
        { "  /a/ V\n", "1: continuation line without a rule before it" },
        { "/a/ A\nendif\n", "2: endif without if" },
        { "if /a/\n/b/ B\n", "1: if without endif" },
        { "if /a/\nif /b/\nendif\n", "1: if without endif" },
        { "if /a/ x\nendif\n", "1: text after if pattern" },
        { "if /a/\nendif x\n", "2: text after endif" },
        { "/a/ V\n/b/\n/c/ C\n", "2: missing value after pattern" },
    };

    for (size_t i = 0; i < N(cases); i++)
        rules_test_error(cases[i].text, cases[i].want);
}

/* test_rules_nesting_limit - RULES_NEST_MAX ifs load, one more does not. */
static void
test_rules_nesting_limit(void)
{
    char          text[4096] = "", err[512] = "", want[64];
    struct rules *r;

    for (int i = 0; i < RULES_NEST_MAX; i++)
        strcat(text, "if /a/\n");
    strcat(text, "/a/ deep\n");
    for (int i = 0; i < RULES_NEST_MAX; i++)
        strcat(text, "endif\n");
    rules_test_setup();
    r = rules_test_load(text, err, sizeof(err));
    CHECK(r != NULL);
    if (r != NULL)
        CHECK_STR(rules_test_value(r, "a"), "deep");
    rules_free(&r);
    rules_test_teardown();

    text[0] = '\0';
    for (int i = 0; i <= RULES_NEST_MAX; i++)
        strcat(text, "if /a/\n");
    snprintf(want, sizeof(want), "%d: if nested deeper than %d", RULES_NEST_MAX + 1,
             RULES_NEST_MAX);
    rules_test_error(text, want);
}

/* test_rules_bounds - long values, long lines and NUL bytes are refused; a missing file
 * names the path. */
static void
test_rules_bounds(void)
{
    char         *big = malloc(70000), err[1024], want[1024];
    struct rules *r;

    if (big == NULL)
        exit(2);
    memcpy(big, "/a/ ", 4);
    memset(big + 4, 'v', RULES_VALUE_MAX);
    strcpy(big + 4 + RULES_VALUE_MAX, "\n");
    snprintf(want, sizeof(want), "1: value longer than %d octets", RULES_VALUE_MAX - 1);
    rules_test_error(big, want);

    memcpy(big, "/a/ ", 4);
    memset(big + 4, 'v', RULES_VALUE_MAX - 1);
    strcpy(big + 4 + RULES_VALUE_MAX - 1, "\n");
    rules_test_setup();
    r = rules_test_load(big, err, sizeof(err));
    CHECK(r != NULL);
    rules_free(&r);
    rules_test_teardown();

    memcpy(big, "/", 1);
    memset(big + 1, 'x', 68000);
    strcpy(big + 68001, "/ V\n");
    rules_test_error(big, "1: line longer than 65536 octets");
    free(big);

    rules_test_setup();
    r = rules_load(rules_test_write_n("/a/ A\n/b\0/ B\n", 13), TEST_LIMIT, err, sizeof(err));
    CHECK(r == NULL);
    snprintf(want, sizeof(want), "%s:2: NUL byte in line", test_path);
    CHECK_STR(err, want);
    rules_test_teardown();

    CHECK(rules_load("/nonexistent/rules_test/t", TEST_LIMIT, err, sizeof(err)) == NULL);
    CHECK_STR(err, "/nonexistent/rules_test/t: No such file or directory");
}

/* rules_test_now - monotonic seconds. */
static double
rules_test_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* rules_test_catastrophic - /(a+)+$/ on 5,000 a's and a '!' stops at the limit, is counted
 * and skipped, and the rules after it still match, all within 2 s. */
static void
rules_test_catastrophic(uint32_t limit)
{
    char             err[512] = "", *subj;
    struct rules    *r;
    struct rules_hit hit;
    unsigned         hits = 0;
    double           t0, dt;

    if ((subj = malloc(5002)) == NULL)
        exit(2);
    memset(subj, 'a', 5000);
    subj[5000] = '!';
    subj[5001] = '\0';
    rules_test_setup();
    r = rules_load(rules_test_write("/(a+)+$/ REJECT catastrophic\n"
                                    "!/(a|aa)+$/ after-negated\n"
                                    "/!$/ LATER\n"), limit, err, sizeof(err));
    CHECK(r != NULL);
    if (r != NULL) {
        t0 = rules_test_now();
        CHECK(rules_match(r, subj, 5001, "4Q8ZK2M7XJ", &hit, &hits) == 1);
        dt = rules_test_now() - t0;
        CHECK_STR(hit.value, "LATER");
        CHECK(hit.line == 3);
        CHECK(hits == 2);                 /* the negated rule hit the limit too: skipped */
        if (dt >= 2.0)
            fprintf(stderr, "  limit %u: took %.2f s\n", (unsigned)limit, dt);
        CHECK(dt < 2.0);
        /* A NULL counter is fine, and the table still works after a limit was hit. */
        CHECK(rules_match(r, subj, 5001, "", &hit, NULL) == 1);
        CHECK(rules_match(r, "aaa", 3, "", &hit, &hits) == 1);
        CHECK_STR(hit.value, "REJECT catastrophic");
        CHECK(hits == 2);
    }
    rules_free(&r);
    rules_test_teardown();
    free(subj);
}

/* test_rules_match_limit - with the pcre_match_limit default and a small limit. */
static void
test_rules_match_limit(void)
{
    rules_test_catastrophic(TEST_LIMIT);
    rules_test_catastrophic(1000);
}

/* test_rules_limit_in_if - an if that runs into the limit counts as not matching. */
static void
test_rules_limit_in_if(void)
{
    char             err[512] = "", subj[3002];
    struct rules    *r;
    struct rules_hit hit;
    unsigned         hits = 0;

    memset(subj, 'a', 3000);
    subj[3000] = '!';
    subj[3001] = '\0';
    rules_test_setup();
    r = rules_test_load("if /(a+)+$/\n/./ inside\nendif\n/./ outside\n", err, sizeof(err));
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(rules_match(r, subj, 3001, "client=x", &hit, &hits) == 1);
        CHECK_STR(hit.value, "outside");
        CHECK(hits == 1);
    }
    rules_free(&r);
    rules_test_teardown();
}

/* test_rules_match_next - each call goes on after the previous hit, inside if blocks too. */
static void
test_rules_match_next(void)
{
    char             err[512] = "";
    struct rules    *r;
    struct rules_hit hit;
    size_t           pos = 0;

    rules_test_setup();
    r = rules_test_load("/a/ one\nif /b/\n/a/ two\n/x/ no\nendif\nif /z/\n/a/ no\nendif\n"
                        "/a/ three\n", err, sizeof(err));
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(rules_match_next(r, &pos, "ab", 2, "", &hit, NULL) == 1);
        CHECK_STR(hit.value, "one");
        CHECK(rules_match_next(r, &pos, "ab", 2, "", &hit, NULL) == 1);
        CHECK_STR(hit.value, "two");
        CHECK(rules_match_next(r, &pos, "ab", 2, "", &hit, NULL) == 1);
        CHECK_STR(hit.value, "three");
        CHECK(hit.line == 9);
        CHECK(rules_match_next(r, &pos, "ab", 2, "", &hit, NULL) == 0);
        CHECK(rules_match_next(r, &pos, "ab", 2, "", &hit, NULL) == 0);
    }
    rules_free(&r);
    rules_test_teardown();
}

/* rules_test_walk_fn - collect "line:value;" into the buffer arg; stop at value "stop". */
static int
rules_test_walk_fn(void *arg, const struct rules_hit *hit)
{
    char *out = arg;

    snprintf(out + strlen(out), 256 - strlen(out), "%d:%s;", hit->line, hit->value);
    return strcmp(hit->value, "stop") == 0 ? 7 : 0;
}

/* test_rules_walk - every rule in file order, ifs left out; a non-zero return stops. */
static void
test_rules_walk(void)
{
    char          err[512] = "", out[256] = "";
    struct rules *r;

    rules_test_setup();
    r = rules_test_load("/a/ A\nif /b/\n/c/ C\nendif\n/d/ stop\n/e/ E\n", err, sizeof(err));
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(rules_walk(r, rules_test_walk_fn, out) == 7);
        CHECK_STR(out, "1:A;3:C;5:stop;");
    }
    rules_free(&r);
    rules_test_teardown();
}

int
main(void)
{
    log_init("rules_test", 1);
    TEST_RUN(test_rules_caseless_default);
    TEST_RUN(test_rules_other_flags);
    TEST_RUN(test_rules_negation);
    TEST_RUN(test_rules_if_endif);
    TEST_RUN(test_rules_count);
    TEST_RUN(test_rules_continuation);
    TEST_RUN(test_rules_delimiters);
    TEST_RUN(test_rules_value_verbatim);
    TEST_RUN(test_rules_binary_subject);
    TEST_RUN(test_rules_pattern_error);
    TEST_RUN(test_rules_syntax_errors);
    TEST_RUN(test_rules_nesting_limit);
    TEST_RUN(test_rules_bounds);
    TEST_RUN(test_rules_match_limit);
    TEST_RUN(test_rules_limit_in_if);
    TEST_RUN(test_rules_match_next);
    TEST_RUN(test_rules_walk);
    TEST_END();
}
