/* policy_test - unit tests for libcommon/policy: action parsing (good and bad values), the
 * hash, cidr and pcre access tables, the lookup keys of every stage in order, DUNNO and
 * WARN, validation and open errors.
 *
 * Every test works in its own temporary directory under $TMPDIR (or /tmp) and removes it.
 * Key orders are observed through WARN entries: WARN is reported and the search goes on,
 * so a table whose every key says WARN reports each key it looked up, in order. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "map.h"
#include "policy.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char test_dir[256];

/* policy_test_setup - make a fresh temporary directory for one test. */
static void
policy_test_setup(void)
{
    const char *t = getenv("TMPDIR");

    snprintf(test_dir, sizeof(test_dir), "%s/policy_test.XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(test_dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

/* policy_test_teardown - remove the temporary directory and every file in it. */
static void
policy_test_teardown(void)
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

/* policy_test_write - write text to test_dir/name. */
static void
policy_test_write(const char *name, const char *text)
{
    char  path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    if ((fp = fopen(path, "w")) == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, fp);
    fclose(fp);
}

/* policy_test_hash - write name and build name.db from it. */
static void
policy_test_hash(const char *name, const char *text)
{
    char path[512], err[512];

    policy_test_write(name, text);
    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    if (map_build(path, err, sizeof(err)) == -1) {
        fprintf(stderr, "map_build: %s\n", err);
        exit(2);
    }
}

/* policy_test_open - open the specs (relative to test_dir); NULL on error, err filled. */
static struct policy_tables *
policy_test_open(const char *const *specs, size_t n, char *err, size_t errlen)
{
    struct policy_tables *pt;

    pt = policy_tables_open((char *const *)specs, n, test_dir, 1000000, "<>", err, errlen);
    if (pt == NULL)
        fprintf(stderr, "  open: %s\n", err);
    return pt;
}

/* The warn callback's record: every where, ";"-separated. */
struct policy_test_warns {
    char     seen[4096];
    unsigned n;
};

/* policy_test_warn - record a WARN's where (minus test_dir) and text. */
static void
policy_test_warn(void *arg, const struct policy_action *a)
{
    struct policy_test_warns *w = arg;
    const char               *where = strstr(a->where, test_dir);
    size_t                    len = strlen(w->seen);
    char                      type[8] = "";

    if (where != NULL) {
        snprintf(type, sizeof(type), "%.*s", (int)(where - a->where), a->where);
        where += strlen(test_dir) + 1;
    } else {
        where = a->where;
    }
    CHECK(a->kind == POLICY_WARN);
    snprintf(w->seen + len, sizeof(w->seen) - len, "%s%s%s", len ? ";" : "", type, where);
    w->n++;
}

/* policy_test_where - out->where without test_dir ("hash:t[key]"). */
static const char *
policy_test_where(const struct policy_action *a)
{
    static char buf[POLICY_WHERE_MAX];
    const char *p = strstr(a->where, test_dir);

    if (p == NULL)
        return a->where;
    snprintf(buf, sizeof(buf), "%.*s%s", (int)(p - a->where), a->where,
             p + strlen(test_dir) + 1);
    return buf;
}

/* test_policy_action_good - every action form and what it sets. */
static void
test_policy_action_good(void)
{
    static const struct {
        const char      *value;
        unsigned         allowed;
        enum policy_kind kind;
        int              code;
        const char      *enh, *text;
    } cases[] = {
        { "REJECT", POLICY_ACCESS, POLICY_REJECT, 550, "5.7.1", "" },
        { "reject go away", POLICY_ACCESS, POLICY_REJECT, 550, "5.7.1", "go away" },
        { "Reject 5.7.2 go away", POLICY_ACCESS, POLICY_REJECT, 550, "5.7.2", "go away" },
        { "REJECT 5.1.1", POLICY_ACCESS, POLICY_REJECT, 550, "5.1.1", "" },
        { "REJECT 5.123.456  spaced  ", POLICY_ACCESS, POLICY_REJECT, 550, "5.123.456",
          "spaced" },
        { "REJECT 5.7.1text", POLICY_ACCESS, POLICY_REJECT, 550, "5.7.1", "5.7.1text" },
        { "REJECT 1.2.3 text", POLICY_ACCESS, POLICY_REJECT, 550, "5.7.1", "1.2.3 text" },
        { "REJECT 5.7.1234 x", POLICY_ACCESS, POLICY_REJECT, 550, "5.7.1", "5.7.1234 x" },
        { "  REJECT\t tabbed \t", POLICY_ACCESS, POLICY_REJECT, 550, "5.7.1", "tabbed" },
        { "DEFER", POLICY_ACCESS, POLICY_DEFER, 450, "4.7.1", "" },
        { "defer 4.2.0 later please", POLICY_ACCESS, POLICY_DEFER, 450, "4.2.0",
          "later please" },
        { "550 no", POLICY_ACCESS, POLICY_REJECT, 550, "5.7.1", "no" },
        { "554 5.7.1 no thanks", POLICY_ACCESS, POLICY_REJECT, 554, "5.7.1", "no thanks" },
        { "501", POLICY_ACCESS, POLICY_REJECT, 501, "5.7.1", "" },
        { "450 4.7.1 try later", POLICY_ACCESS, POLICY_DEFER, 450, "4.7.1", "try later" },
        { "421 4.3.2 closing", POLICY_ACCESS, POLICY_DEFER, 421, "4.3.2", "closing" },
        { "451 slow down", POLICY_CONTENT, POLICY_DEFER, 451, "4.7.1", "slow down" },
        { "OK", POLICY_ACCESS, POLICY_OK, 0, "", "" },
        { "ok comment ignored", POLICY_ACCESS, POLICY_OK, 0, "", "" },
        { "DUNNO", POLICY_ACCESS, POLICY_DUNNO, 0, "", "" },
        { "dunno whatever", POLICY_ACCESS, POLICY_DUNNO, 0, "", "" },
        { "HOLD", POLICY_ACCESS, POLICY_HOLD, 0, "", "" },
        { "HOLD check this one", POLICY_ACCESS, POLICY_HOLD, 0, "", "check this one" },
        { "discard quietly", POLICY_ACCESS, POLICY_DISCARD, 0, "", "quietly" },
        { "WARN suspicious", POLICY_ACCESS, POLICY_WARN, 0, "", "suspicious" },
        { "WARN", POLICY_ACCESS, POLICY_WARN, 0, "", "" },
        { "REPLACE X-Spam: yes  $1", POLICY_CONTENT, POLICY_REPLACE, 0, "",
          "X-Spam: yes  $1" },
        { "prepend X-Seen: 1", POLICY_CONTENT, POLICY_PREPEND, 0, "", "X-Seen: 1" },
        { "IGNORE", POLICY_CONTENT, POLICY_IGNORE, 0, "", "" },
        { "IGNORE  ", POLICY_CONTENT, POLICY_IGNORE, 0, "", "" },
    };

    for (size_t i = 0; i < N(cases); i++) {
        struct policy_action a;
        char                 err[256] = "";
        int                  rc;

        memset(&a, 0x55, sizeof(a));
        rc = policy_action_parse(cases[i].value, cases[i].allowed, &a, err, sizeof(err));
        if (rc != 0 || a.kind != cases[i].kind || a.code != cases[i].code
            || strcmp(a.enh, cases[i].enh) != 0 || strcmp(a.text, cases[i].text) != 0)
            fprintf(stderr, "  case \"%s\": rc %d %s %d \"%s\" \"%s\" (%s)\n",
                    cases[i].value, rc, policy_kind_name(a.kind), a.code, a.enh, a.text, err);
        CHECK(rc == 0);
        CHECK(a.kind == cases[i].kind);
        CHECK(a.code == cases[i].code);
        CHECK_STR(a.enh, cases[i].enh);
        CHECK_STR(a.text, cases[i].text);
        CHECK_STR(a.where, "");
    }
}

/* test_policy_action_bad - values that are not actions, or not allowed, and why. */
static void
test_policy_action_bad(void)
{
    static const struct { const char *value; unsigned allowed; const char *err; } cases[] = {
        { "", POLICY_ACCESS, "empty action" },
        { " \t ", POLICY_ACCESS, "empty action" },
        { "FOO bar", POLICY_ACCESS, "unknown action \"FOO\"" },
        { "REJECTED", POLICY_ACCESS, "unknown action \"REJECTED\"" },
        { "5.7.1 no", POLICY_ACCESS, "unknown action \"5.7.1\"" },
        { "250 ok", POLICY_ACCESS, "reply code \"250\" is not 4NN or 5NN" },
        { "650 x", POLICY_ACCESS, "reply code \"650\" is not 4NN or 5NN" },
        { "5500 x", POLICY_ACCESS, "reply code \"5500\" is not 4NN or 5NN" },
        { "55", POLICY_ACCESS, "reply code \"55\" is not 4NN or 5NN" },
        { "REJECT 4.7.1 x", POLICY_ACCESS,
          "enhanced status code 4.7.1 does not match reply code 550" },
        { "REJECT 2.0.0", POLICY_ACCESS,
          "enhanced status code 2.0.0 does not match reply code 550" },
        { "DEFER 5.7.1 x", POLICY_ACCESS,
          "enhanced status code 5.7.1 does not match reply code 450" },
        { "450 5.7.1 x", POLICY_ACCESS,
          "enhanced status code 5.7.1 does not match reply code 450" },
        { "550 4.7.1 x", POLICY_ACCESS,
          "enhanced status code 4.7.1 does not match reply code 550" },
        { "REPLACE", POLICY_CONTENT, "REPLACE needs a text" },
        { "PREPEND   ", POLICY_CONTENT, "PREPEND needs a text" },
        { "IGNORE this", POLICY_CONTENT, "IGNORE takes no text" },
        { "REPLACE X: y", POLICY_ACCESS, "action REPLACE is not allowed in this table" },
        { "IGNORE", POLICY_ACCESS, "action IGNORE is not allowed in this table" },
        { "HOLD", POLICY_BIT(POLICY_REJECT), "action HOLD is not allowed in this table" },
        { "550 x", POLICY_BIT(POLICY_OK), "action REJECT is not allowed in this table" },
    };
    struct policy_action a;
    char                 err[256], big[700];

    for (size_t i = 0; i < N(cases); i++) {
        err[0] = '\0';
        if (policy_action_parse(cases[i].value, cases[i].allowed, &a, err, sizeof(err)) != -1)
            fprintf(stderr, "  accepted \"%s\"\n", cases[i].value);
        CHECK(policy_action_parse(cases[i].value, cases[i].allowed, &a, err,
                                  sizeof(err)) == -1);
        CHECK_STR(err, cases[i].err);
    }
    CHECK(policy_action_parse(NULL, POLICY_ACCESS, &a, err, sizeof(err)) == -1);
    snprintf(big, sizeof(big), "REJECT %0600d", 7);
    CHECK(policy_action_parse(big, POLICY_ACCESS, &a, err, sizeof(err)) == -1);
    CHECK_STR(err, "REJECT text longer than 511 octets");
    snprintf(big, sizeof(big), "REJECT %0512d", 7);
    CHECK(policy_action_parse(big, POLICY_ACCESS, &a, err, sizeof(err)) == -1);
    snprintf(big, sizeof(big), "REJECT %0511d", 7);
    CHECK(policy_action_parse(big, POLICY_ACCESS, &a, err, sizeof(err)) == 0);
    CHECK(strlen(a.text) == 511);
}

/* test_policy_names - kind and stage names. */
static void
test_policy_names(void)
{
    CHECK_STR(policy_kind_name(POLICY_NONE), "NONE");
    CHECK_STR(policy_kind_name(POLICY_DUNNO), "DUNNO");
    CHECK_STR(policy_kind_name(POLICY_OK), "OK");
    CHECK_STR(policy_kind_name(POLICY_REJECT), "REJECT");
    CHECK_STR(policy_kind_name(POLICY_DEFER), "DEFER");
    CHECK_STR(policy_kind_name(POLICY_HOLD), "HOLD");
    CHECK_STR(policy_kind_name(POLICY_DISCARD), "DISCARD");
    CHECK_STR(policy_kind_name(POLICY_WARN), "WARN");
    CHECK_STR(policy_kind_name(POLICY_REPLACE), "REPLACE");
    CHECK_STR(policy_kind_name(POLICY_PREPEND), "PREPEND");
    CHECK_STR(policy_kind_name(POLICY_IGNORE), "IGNORE");
    CHECK_STR(policy_kind_name((enum policy_kind)99), "NONE");
    CHECK_STR(policy_stage_name(POLICY_CLIENT), "client");
    CHECK_STR(policy_stage_name(POLICY_HELO), "helo");
    CHECK_STR(policy_stage_name(POLICY_SENDER), "sender");
    CHECK_STR(policy_stage_name(POLICY_RECIPIENT), "recipient");
}

/* Every key any stage below looks up, each a WARN naming itself. */
static const char policy_test_all_keys[] =
    "mail.example.com WARN\n" "example.com WARN\n" "com WARN\n"
    "192.0.2.10 WARN\n" "192.0.2 WARN\n" "192.0 WARN\n" "192 WARN\n"
    "2001:db8::1 WARN\n" "2001:db8:0:0:0:0:0 WARN\n" "2001:db8:0:0:0:0 WARN\n"
    "2001:db8:0:0:0 WARN\n" "2001:db8:0:0 WARN\n" "2001:db8:0 WARN\n" "2001:db8 WARN\n"
    "2001 WARN\n" "::ffff:192.0.2.10 WARN\n"
    "mx.example.org WARN\n" "example.org WARN\n" "org WARN\n" "[192.0.2.1] WARN\n"
    "user@mail.example.com WARN\n" "user@ WARN\n" "postmaster WARN\n" "postmaster@ WARN\n"
    "<null> WARN\n" "<> WARN\n" "unknown WARN\n" "user@[192.0.2.1] WARN\n";

/* policy_test_keys - run one check against the WARN-everything table; the keys seen. */
static void
policy_test_keys(struct policy_tables *pt, enum policy_stage stage, const char *key,
                 const char *addr, const char *want)
{
    struct policy_test_warns w = { "", 0 };
    struct policy_action     out;

    CHECK(policy_access_check(pt, stage, key, addr, "test", policy_test_warn, &w, &out)
          == POLICY_NONE);
    CHECK(out.kind == POLICY_NONE);
    if (strcmp(w.seen, want) != 0)
        fprintf(stderr, "  %s \"%s\" [%s]\n", policy_stage_name(stage), key,
                addr ? addr : "");
    CHECK_STR(w.seen, want);
}

/* test_policy_hash_key_order - the documented keys, in order, for every stage. */
static void
test_policy_hash_key_order(void)
{
    static const char *const specs[] = { "hash:all" };
    struct policy_tables *pt;
    char                  err[512];

    policy_test_setup();
    policy_test_hash("all", policy_test_all_keys);
    pt = policy_tables_open((char *const *)specs, 1, test_dir, 1000000, "<null>", err,
                            sizeof(err));
    CHECK(pt != NULL);
    if (pt != NULL) {
        policy_test_keys(pt, POLICY_CLIENT, "Mail.Example.COM", "192.0.2.10",
                         "hash:all[mail.example.com];hash:all[example.com];hash:all[com];"
                         "hash:all[192.0.2.10];hash:all[192.0.2];hash:all[192.0];"
                         "hash:all[192]");
        policy_test_keys(pt, POLICY_CLIENT, "unknown", "192.0.2.10",
                         "hash:all[192.0.2.10];hash:all[192.0.2];hash:all[192.0];"
                         "hash:all[192]");
        policy_test_keys(pt, POLICY_CLIENT, "unknown", "2001:DB8::1",
                         "hash:all[2001:db8::1];hash:all[2001:db8:0:0:0:0:0];"
                         "hash:all[2001:db8:0:0:0:0];hash:all[2001:db8:0:0:0];"
                         "hash:all[2001:db8:0:0];hash:all[2001:db8:0];hash:all[2001:db8];"
                         "hash:all[2001]");
        policy_test_keys(pt, POLICY_CLIENT, "", "::ffff:192.0.2.10",
                         "hash:all[::ffff:192.0.2.10];hash:all[192.0.2.10];"
                         "hash:all[192.0.2];hash:all[192.0];hash:all[192]");
        policy_test_keys(pt, POLICY_HELO, "MX.example.org",  NULL,
                         "hash:all[mx.example.org];hash:all[example.org];hash:all[org]");
        policy_test_keys(pt, POLICY_HELO, "[192.0.2.1]", NULL, "hash:all[[192.0.2.1]]");
        policy_test_keys(pt, POLICY_HELO, "192.0.2.10", NULL, "hash:all[192.0.2.10]");
        policy_test_keys(pt, POLICY_HELO, "", NULL, "");
        policy_test_keys(pt, POLICY_SENDER, "User@Mail.Example.com", NULL,
                         "hash:all[user@mail.example.com];hash:all[mail.example.com];"
                         "hash:all[example.com];hash:all[com];hash:all[user@]");
        policy_test_keys(pt, POLICY_RECIPIENT, "user@mail.example.com", NULL,
                         "hash:all[user@mail.example.com];hash:all[mail.example.com];"
                         "hash:all[example.com];hash:all[com];hash:all[user@]");
        policy_test_keys(pt, POLICY_RECIPIENT, "user@[192.0.2.1]", NULL,
                         "hash:all[user@[192.0.2.1]];hash:all[[192.0.2.1]];"
                         "hash:all[user@]");
        policy_test_keys(pt, POLICY_RECIPIENT, "postmaster", NULL,
                         "hash:all[postmaster];hash:all[postmaster@]");
        policy_test_keys(pt, POLICY_SENDER, "", NULL, "hash:all[<null>]");
        policy_test_keys(pt, POLICY_RECIPIENT, "", NULL, "");
    }
    policy_tables_free(&pt);
    CHECK(pt == NULL);
    policy_test_teardown();
}

/* test_policy_null_sender_default - the null sender under the usual key "<>". */
static void
test_policy_null_sender_default(void)
{
    static const char *const specs[] = { "access" };
    struct policy_tables *pt;
    struct policy_action  out;
    char                  err[512];

    policy_test_setup();
    policy_test_hash("access", "<> REJECT 5.7.1 no bounces here\n");
    pt = policy_test_open(specs, 1, err, sizeof(err));
    CHECK(pt != NULL);
    if (pt != NULL) {
        CHECK(policy_access_check(pt, POLICY_SENDER, "", NULL, "", NULL, NULL, &out)
              == POLICY_REJECT);
        CHECK_STR(out.text, "no bounces here");
        CHECK_STR(policy_test_where(&out), "hash:access[<>]");
        CHECK(policy_access_check(pt, POLICY_SENDER, "a@b", NULL, "", NULL, NULL, &out)
              == POLICY_NONE);
        CHECK(policy_access_check(pt, POLICY_RECIPIENT, "", NULL, "", NULL, NULL, &out)
              == POLICY_NONE);
    }
    policy_tables_free(&pt);
    policy_test_teardown();
}

/* test_policy_first_key_wins - the most specific key answers; where names it. */
static void
test_policy_first_key_wins(void)
{
    static const char *const specs[] = { "hash:access" };
    struct policy_tables *pt;
    struct policy_action  out;
    char                  err[512];

    policy_test_setup();
    policy_test_hash("access", "example.com OK\n"
                               "bad.example.com REJECT 5.7.1 bad host\n"
                               "192.0.2 DEFER 4.7.1 slow down\n"
                               "spammer@ DISCARD\n");
    pt = policy_test_open(specs, 1, err, sizeof(err));
    CHECK(pt != NULL);
    if (pt != NULL) {
        CHECK(policy_tables_count(pt) == 1);
        CHECK(policy_access_check(pt, POLICY_CLIENT, "x.bad.example.com", "192.0.2.1", "",
                                  NULL, NULL, &out) == POLICY_REJECT);
        CHECK(out.code == 550);
        CHECK_STR(out.enh, "5.7.1");
        CHECK_STR(out.text, "bad host");
        CHECK_STR(policy_test_where(&out), "hash:access[bad.example.com]");
        CHECK(policy_access_check(pt, POLICY_CLIENT, "good.example.com", "192.0.2.1", "",
                                  NULL, NULL, &out) == POLICY_OK);
        CHECK_STR(policy_test_where(&out), "hash:access[example.com]");
        CHECK(policy_access_check(pt, POLICY_CLIENT, "unknown", "192.0.2.1", "", NULL, NULL,
                                  &out) == POLICY_DEFER);
        CHECK(out.code == 450);
        CHECK_STR(policy_test_where(&out), "hash:access[192.0.2]");
        CHECK(policy_access_check(pt, POLICY_CLIENT, "unknown", "198.51.100.1", "", NULL,
                                  NULL, &out) == POLICY_NONE);
        CHECK_STR(out.where, "");
        CHECK(policy_access_check(pt, POLICY_SENDER, "spammer@elsewhere.net", NULL, "",
                                  NULL, NULL, &out) == POLICY_DISCARD);
        CHECK_STR(policy_test_where(&out), "hash:access[spammer@]");
        CHECK(policy_access_check(pt, POLICY_SENDER, "spammer@example.com", NULL, "",
                                  NULL, NULL, &out) == POLICY_OK);
    }
    policy_tables_free(&pt);
    policy_test_teardown();
}

/* test_policy_dunno_and_warn - DUNNO ends that table; WARN reports and goes on, in the
 * same table and then the next. */
static void
test_policy_dunno_and_warn(void)
{
    static const char *const specs[] = { "hash:first", "cidr:nets", "pcre:re" };
    struct policy_test_warns w = { "", 0 };
    struct policy_tables    *pt;
    struct policy_action     out;
    char                     err[512];

    policy_test_setup();
    policy_test_hash("first", "mail.example.com WARN host listed\n"
                              "example.com DUNNO\n"
                              "192.0.2.10 REJECT never reached after DUNNO\n"
                              "other.example WARN other\n"
                              "198.51.100.7 REJECT 5.7.1 after a warn\n");
    policy_test_write("nets", "# networks\n"
                              "192.0.2.0/24 WARN cidr warns\n"
                              "192.0.2.0/25 DUNNO\n"
                              "192.0.2.0/24 REJECT not reached\n");
    policy_test_write("re", "/^mail\\./ WARN re warns\n"
                            "/example\\.com$/ HOLD held by pcre\n");
    pt = policy_test_open(specs, N(specs), err, sizeof(err));
    CHECK(pt != NULL);
    if (pt != NULL) {
        CHECK(policy_access_check(pt, POLICY_CLIENT, "mail.example.com", "192.0.2.10", "",
                                  policy_test_warn, &w, &out) == POLICY_HOLD);
        CHECK_STR(out.text, "held by pcre");
        CHECK_STR(policy_test_where(&out), "pcre:re:2");
        CHECK_STR(w.seen, "hash:first[mail.example.com];cidr:nets:2;pcre:re:1");
        CHECK(w.n == 3);

        w.seen[0] = '\0';
        w.n = 0;
        CHECK(policy_access_check(pt, POLICY_CLIENT, "other.example", "198.51.100.7", "",
                                  policy_test_warn, &w, &out) == POLICY_REJECT);
        CHECK_STR(out.text, "after a warn");
        CHECK_STR(policy_test_where(&out), "hash:first[198.51.100.7]");
        CHECK_STR(w.seen, "hash:first[other.example]");

        /* The warn callback may be NULL: the WARN is logged instead. */
        CHECK(policy_access_check(pt, POLICY_CLIENT, "other.example", "198.51.100.7", "",
                                  NULL, NULL, &out) == POLICY_REJECT);
    }
    policy_tables_free(&pt);
    policy_test_teardown();
}

/* test_policy_cidr_table - first match wins, IPv4 and IPv6, continuation lines; only the
 * client stage consults it. */
static void
test_policy_cidr_table(void)
{
    static const char *const specs[] = { "cidr:nets" };
    static const struct {
        const char      *addr;
        enum policy_kind kind;
        const char      *where;
    } cases[] = {
        { "192.0.2.1", POLICY_OK, "cidr:nets:2" },
        { "192.0.2.200", POLICY_REJECT, "cidr:nets:5" },
        { "192.0.3.1", POLICY_REJECT, "cidr:nets:5" },
        { "10.1.2.3", POLICY_DEFER, "cidr:nets:8" },
        { "2001:db8::25", POLICY_DISCARD, "cidr:nets:9" },
        { "2001:db9::1", POLICY_NONE, "" },
        { "::ffff:192.0.2.5", POLICY_OK, "cidr:nets:2" },
        { "203.0.113.1", POLICY_NONE, "" },
        { "not-an-address", POLICY_NONE, "" },
        { "", POLICY_NONE, "" },
    };
    struct policy_tables *pt;
    struct policy_action  out;
    char                  err[512];

    policy_test_setup();
    policy_test_write("nets", "# trusted first\n"
                              "192.0.2.0/25\tOK\n"
                              "\n"
                              "   # indented comment\n"
                              "192.0.2.0/23 REJECT 5.7.1 this network\n"
                              "  is not welcome\r\n"
                              "\n"
                              "10.0.0.0/8 450 4.7.1 later\n"
                              "[2001:db8::]/32 DISCARD\n");
    pt = policy_test_open(specs, 1, err, sizeof(err));
    CHECK(pt != NULL);
    for (size_t i = 0; pt != NULL && i < N(cases); i++) {
        enum policy_kind k = policy_access_check(pt, POLICY_CLIENT, "host.example",
                                                 cases[i].addr, "", NULL, NULL, &out);

        if (k != cases[i].kind)
            fprintf(stderr, "  addr %s: %s\n", cases[i].addr, policy_kind_name(k));
        CHECK(k == cases[i].kind);
        CHECK_STR(policy_test_where(&out), cases[i].where);
    }
    if (pt != NULL) {
        CHECK(policy_access_check(pt, POLICY_CLIENT, "x", "192.0.2.200", "", NULL, NULL,
                                  &out) == POLICY_REJECT);
        CHECK_STR(out.text, "this network  is not welcome");
        CHECK(policy_access_check(pt, POLICY_HELO, "192.0.2.1", NULL, "", NULL, NULL, &out)
              == POLICY_NONE);
        CHECK(policy_access_check(pt, POLICY_SENDER, "a@192.0.2.1", NULL, "", NULL, NULL,
                                  &out) == POLICY_NONE);
        CHECK(policy_tables_validate(pt, err, sizeof(err)) == 0);
    }
    policy_tables_free(&pt);
    policy_test_teardown();
}

/* test_policy_pcre_table - client name then address; HELO, sender, recipient as given;
 * where is pcre:file:line. */
static void
test_policy_pcre_table(void)
{
    static const char *const specs[] = { "pcre:re" };
    struct policy_tables *pt;
    struct policy_action  out;
    char                  err[512];

    policy_test_setup();
    policy_test_write("re", "/^unknown$/ REJECT unknown is never looked up\n"
                            "/\\.dyn\\.example$/ REJECT 5.7.1 dynamic\n"
                            "/^192\\.0\\.2\\./ DEFER\n"
                            "/^\\[/ REJECT literal\n"
                            "/^<>$/ DISCARD null\n"
                            "/@Example\\.NET$/i HOLD exact case\n");
    pt = policy_test_open(specs, 1, err, sizeof(err));
    CHECK(pt != NULL);
    if (pt != NULL) {
        CHECK(policy_access_check(pt, POLICY_CLIENT, "h1.DYN.example", "192.0.2.1", "",
                                  NULL, NULL, &out) == POLICY_REJECT);
        CHECK_STR(policy_test_where(&out), "pcre:re:2");
        CHECK_STR(out.text, "dynamic");
        CHECK(policy_access_check(pt, POLICY_CLIENT, "unknown", "192.0.2.1", "", NULL,
                                  NULL, &out) == POLICY_DEFER);
        CHECK_STR(policy_test_where(&out), "pcre:re:3");
        CHECK(policy_access_check(pt, POLICY_CLIENT, "unknown", "198.51.100.1", "", NULL,
                                  NULL, &out) == POLICY_NONE);
        CHECK(policy_access_check(pt, POLICY_HELO, "[192.0.2.1]", NULL, "", NULL, NULL,
                                  &out) == POLICY_REJECT);
        CHECK_STR(policy_test_where(&out), "pcre:re:4");
        CHECK(policy_access_check(pt, POLICY_SENDER, "", NULL, "", NULL, NULL, &out)
              == POLICY_DISCARD);
        CHECK(policy_access_check(pt, POLICY_SENDER, "a@Example.NET", NULL, "", NULL, NULL,
                                  &out) == POLICY_HOLD);
        CHECK(policy_access_check(pt, POLICY_RECIPIENT, "a@example.net", NULL, "", NULL,
                                  NULL, &out) == POLICY_NONE);
        CHECK(policy_tables_validate(pt, err, sizeof(err)) == 0);
    }
    policy_tables_free(&pt);
    policy_test_teardown();
}

/* test_policy_pcre_limit - a rule that runs into the match limit is skipped. */
static void
test_policy_pcre_limit(void)
{
    static const char *const specs[] = { "pcre:re" };
    struct policy_tables *pt;
    struct policy_action  out;
    char                  err[512], name[3002];

    memset(name, 'a', 3000);
    name[3000] = '!';
    name[3001] = '\0';
    policy_test_setup();
    policy_test_write("re", "/(a+)+$/ REJECT catastrophic\n/!$/ OK\n");
    pt = policy_tables_open((char *const *)specs, 1, test_dir, 10000, "<>", err,
                            sizeof(err));
    CHECK(pt != NULL);
    if (pt != NULL) {
        CHECK(policy_access_check(pt, POLICY_HELO, name, NULL, "client=x", NULL, NULL, &out)
              == POLICY_OK);
        CHECK_STR(policy_test_where(&out), "pcre:re:2");
    }
    policy_tables_free(&pt);
    policy_test_teardown();
}

/* test_policy_invalid_value_defers - a hash value that is not an action answers 451. */
static void
test_policy_invalid_value_defers(void)
{
    static const char *const specs[] = { "hash:access" };
    struct policy_tables *pt;
    struct policy_action  out;
    char                  err[512] = "", want[600];

    policy_test_setup();
    policy_test_hash("access", "example.com REJECT\nbroken.example FROBNICATE\n");
    pt = policy_test_open(specs, 1, err, sizeof(err));
    CHECK(pt != NULL);
    if (pt != NULL) {
        CHECK(policy_access_check(pt, POLICY_HELO, "broken.example", NULL, "", NULL, NULL,
                                  &out) == POLICY_DEFER);
        CHECK(out.code == 451);
        CHECK_STR(out.enh, "4.3.5");
        CHECK_STR(out.text, "Server configuration error");
        CHECK_STR(policy_test_where(&out), "hash:access[broken.example]");
        CHECK(policy_tables_validate(pt, err, sizeof(err)) == -1);
        snprintf(want, sizeof(want), "%s/access: key broken.example: unknown action "
                 "\"FROBNICATE\"", test_dir);
        CHECK_STR(err, want);
    }
    policy_tables_free(&pt);
    policy_test_teardown();
}

/* test_policy_specs - bare paths are hash, relative paths join confdir, absolute paths
 * stay; several tables in order; an empty list says NONE. */
static void
test_policy_specs(void)
{
    struct policy_tables *pt;
    struct policy_action  out;
    char                  err[512], abs_spec[600];
    const char           *specs[3];

    policy_test_setup();
    policy_test_hash("a", "x.example OK\n");
    policy_test_hash("b", "y.example REJECT\n");
    snprintf(abs_spec, sizeof(abs_spec), "hash:%s/b", test_dir);
    specs[0] = "a";
    specs[1] = abs_spec;
    pt = policy_test_open(specs, 2, err, sizeof(err));
    CHECK(pt != NULL);
    if (pt != NULL) {
        CHECK(policy_tables_count(pt) == 2);
        CHECK(policy_access_check(pt, POLICY_HELO, "x.example", NULL, "", NULL, NULL, &out)
              == POLICY_OK);
        CHECK_STR(policy_test_where(&out), "hash:a[x.example]");
        CHECK(policy_access_check(pt, POLICY_HELO, "y.example", NULL, "", NULL, NULL, &out)
              == POLICY_REJECT);
        CHECK_STR(policy_test_where(&out), "hash:b[y.example]");
        CHECK(policy_tables_validate(pt, err, sizeof(err)) == 0);
    }
    policy_tables_free(&pt);

    pt = policy_tables_open(NULL, 0, test_dir, 1000000, "<>", err, sizeof(err));
    CHECK(pt != NULL);
    if (pt != NULL) {
        CHECK(policy_tables_count(pt) == 0);
        CHECK(policy_access_check(pt, POLICY_CLIENT, "a.example", "192.0.2.1", "", NULL,
                                  NULL, &out) == POLICY_NONE);
        CHECK(policy_tables_validate(pt, err, sizeof(err)) == 0);
    }
    policy_tables_free(&pt);
    policy_test_teardown();
}

/* policy_test_open_error - opening spec fails with want; a want that starts with '@' is
 * relative to test_dir. */
static void
policy_test_open_error(const char *spec, const char *want)
{
    struct policy_tables *pt;
    char                  err[512] = "", exp[800];

    pt = policy_tables_open((char *const *)&spec, 1, test_dir, 1000000, "<>", err,
                            sizeof(err));
    CHECK(pt == NULL);
    if (want[0] == '@')
        snprintf(exp, sizeof(exp), "%s/%s", test_dir, want + 1);
    else
        snprintf(exp, sizeof(exp), "%s", want);
    CHECK_STR(err, exp);
}

/* test_policy_open_errors - unknown types, missing files, bad lines with file:line. */
static void
test_policy_open_errors(void)
{
    policy_test_setup();
    policy_test_write("badnet", "192.0.2.0/24 OK\n10.1.2.3/8 REJECT\n");
    policy_test_write("badval", "# x\n192.0.2.0/24 OK\n\n10.0.0.0/8 MAYBE\n");
    policy_test_write("noval", "192.0.2.0/24\n");
    policy_test_write("cont", "  192.0.2.0/24 OK\n");
    policy_test_write("badre", "/a/ OK\n/b(/ REJECT\n");
    policy_test_write("badrev", "/a/ OK\n\n/b/ REPLACE x\n");
    policy_test_open_error("ldap:whatever", "ldap:whatever: unknown table type");
    policy_test_open_error("regexp:/etc/x", "regexp:/etc/x: unknown table type");
    policy_test_open_error("hash:", "hash:: missing path");
    policy_test_open_error("hash:missing", "@missing.db: No such file or directory");
    policy_test_open_error("cidr:missing", "@missing: No such file or directory");
    policy_test_open_error("pcre:missing", "@missing: No such file or directory");
    policy_test_open_error("cidr:badnet", "@badnet:2: bad network \"10.1.2.3/8\"");
    policy_test_open_error("cidr:badval", "@badval:4: unknown action \"MAYBE\"");
    policy_test_open_error("cidr:noval", "@noval:1: missing value after network");
    policy_test_open_error("cidr:cont", "@cont:1: continuation line without an entry "
                           "before it");
    policy_test_open_error("pcre:badre", "@badre:2: pattern error at offset 2: missing "
                           "closing parenthesis");
    policy_test_open_error("pcre:badrev", "@badrev:3: action REPLACE is not allowed in "
                           "this table");
    policy_test_teardown();
}

/* test_policy_spec_file - the file master watches for a spec: .db for hash (bare paths
 * too), the path for cidr and pcre, relative paths joined to confdir; NULL if bad. */
static void
test_policy_spec_file(void)
{
    static const struct {
        const char *spec, *want;
    } cases[] = {
        { "access", "/etc/p/access.db" },      { "hash:access", "/etc/p/access.db" },
        { "hash:/v/access", "/v/access.db" },  { "cidr:nets", "/etc/p/nets" },
        { "pcre:/v/header_checks", "/v/header_checks" },
        { "ldap:x", NULL },                    { "hash:", NULL },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = policy_spec_file(cases[i].spec, "/etc/p");

        if (cases[i].want == NULL)
            CHECK(got == NULL);
        else
            CHECK_STR(got, cases[i].want);
        free(got);
    }
}

int
main(void)
{
    log_init("policy_test", 1);
    TEST_RUN(test_policy_action_good);
    TEST_RUN(test_policy_action_bad);
    TEST_RUN(test_policy_names);
    TEST_RUN(test_policy_hash_key_order);
    TEST_RUN(test_policy_null_sender_default);
    TEST_RUN(test_policy_first_key_wins);
    TEST_RUN(test_policy_dunno_and_warn);
    TEST_RUN(test_policy_cidr_table);
    TEST_RUN(test_policy_pcre_table);
    TEST_RUN(test_policy_pcre_limit);
    TEST_RUN(test_policy_invalid_value_defers);
    TEST_RUN(test_policy_specs);
    TEST_RUN(test_policy_open_errors);
    TEST_RUN(test_policy_spec_file);
    TEST_END();
}
