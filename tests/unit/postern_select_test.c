/* postern_select_test - selector parsing and matching, JSON strings, summary buckets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/postern_select.c"
#include "test.h"

/* test_msg - a message from sender to one or two recipients, arrived at `arrival`. */
static void
test_msg(struct postern_qmsg *m, const char *qid, const char *sender, const char *r1,
         const char *r2, uint64_t arrival, uint64_t size, uint32_t flags, int active)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->qid, sizeof(m->qid), "%s", qid);
    m->sender = xstrdup(sender);
    m->arrival = arrival;
    m->size = size;
    m->flags = flags;
    m->active = active;
    m->n = r2 ? 2 : 1;
    m->r = xcalloc(2, sizeof(*m->r));
    m->r[0].addr = xstrdup(r1);
    if (r2)
        m->r[1].addr = xstrdup(r2);
    for (uint32_t i = 0; i < m->n; i++) {
        m->r[i].orig = xstrdup("");
        m->r[i].dsn = xstrdup("");
        m->r[i].text = xstrdup("");
    }
}

/* test_postern_select_parse - options take values, bad values are refused. */
static void
test_postern_select_parse(void)
{
    struct postern_sel s;
    char               err[256];

    postern_sel_init(&s);
    CHECK(!postern_sel_given(&s));
    CHECK(postern_sel_option(&s, "--all", NULL, err, sizeof(err)) == 0 && s.all);
    CHECK(postern_sel_option(&s, "-", NULL, err, sizeof(err)) == 0 && s.stdin_ids);
    CHECK(postern_sel_option(&s, "--sender", "^a", err, sizeof(err)) == 1);
    CHECK(postern_sel_option(&s, "--sender", NULL, err, sizeof(err)) == -1);
    CHECK(postern_sel_option(&s, "--sender", "(", err, sizeof(err)) == -1);
    CHECK(strstr(err, "regular expression") != NULL);
    CHECK(postern_sel_option(&s, "--older-than", "2h", err, sizeof(err)) == 1);
    CHECK(s.have_older && s.older_than == 7200);
    CHECK(postern_sel_option(&s, "--younger-than", "90s", err, sizeof(err)) == 1);
    CHECK(s.younger_than == 90);
    CHECK(postern_sel_option(&s, "--older-than", "soon", err, sizeof(err)) == -1);
    CHECK(postern_sel_option(&s, "--larger-than", "10k", err, sizeof(err)) == 1);
    CHECK(s.larger_than == 10240);
    CHECK(postern_sel_option(&s, "--larger-than", "big", err, sizeof(err)) == -1);
    CHECK(postern_sel_option(&s, "--state", "hold", err, sizeof(err)) == 1);
    CHECK(postern_sel_option(&s, "--state", "active", err, sizeof(err)) == 1);
    CHECK(s.states == (POSTERN_SEL_HOLD | POSTERN_SEL_ACTIVE));
    CHECK(postern_sel_option(&s, "--state", "frozen", err, sizeof(err)) == -1);
    CHECK(postern_sel_option(&s, "--domain", "@B.test", err, sizeof(err)) == 1);
    CHECK_STR(s.domain, "B.test");
    CHECK(postern_sel_option(&s, "--json", NULL, err, sizeof(err)) == -2);
    CHECK(postern_sel_add_qid(&s, "001K19JM64745FM9", err, sizeof(err)) == 0);
    CHECK(postern_sel_add_qid(&s, "not-a-qid", err, sizeof(err)) == -1);
    CHECK(postern_sel_add_qid(&s, "001K19JM64745FM", err, sizeof(err)) == -1);
    CHECK(s.nqids == 1 && postern_sel_criteria(&s) && postern_sel_given(&s));
    postern_sel_free(&s);
}

/* test_postern_select_match - each criterion alone, and together (conjunction). */
static void
test_postern_select_match(void)
{
    struct postern_sel  s;
    struct postern_qmsg a, b, h;
    char                err[256];
    uint64_t            now = 1000000;

    test_msg(&a, "001K19JM64745FM9", "Alice@local.test", "x@b.test", "y@C.test", now - 60,
             500, 0, 0);
    test_msg(&b, "001K19JM64ES3FM9", "", "z@d.test", NULL, now - 7200, 50000, 0, 1);
    test_msg(&h, "001K19JM64K7PFM9", "bob@local.test", "w@b.test", NULL, now - 10, 10,
             QREC_F_HOLD, 1);

    postern_sel_init(&s);
    CHECK(postern_sel_match(&s, &a, now) && postern_sel_match(&s, &b, now));
    postern_sel_option(&s, "--sender", "^alice@", err, sizeof(err));    /* case-insensitive */
    CHECK(postern_sel_match(&s, &a, now) && !postern_sel_match(&s, &b, now));
    postern_sel_free(&s);

    postern_sel_init(&s);
    postern_sel_option(&s, "--sender", "^$", err, sizeof(err));          /* <> */
    CHECK(!postern_sel_match(&s, &a, now) && postern_sel_match(&s, &b, now));
    postern_sel_free(&s);

    postern_sel_init(&s);
    postern_sel_option(&s, "--rcpt", "^y@", err, sizeof(err));
    CHECK(postern_sel_match(&s, &a, now) && !postern_sel_match(&s, &b, now));
    postern_sel_option(&s, "--domain", "b.test", err, sizeof(err));
    /* one recipient must satisfy both: y@ is in c.test, x@ in b.test */
    CHECK(!postern_sel_match(&s, &a, now));
    postern_sel_free(&s);

    postern_sel_init(&s);
    postern_sel_option(&s, "--domain", "c.TEST", err, sizeof(err));
    CHECK(postern_sel_match(&s, &a, now) && !postern_sel_match(&s, &h, now));
    postern_sel_free(&s);

    postern_sel_init(&s);
    postern_sel_option(&s, "--older-than", "1h", err, sizeof(err));
    CHECK(!postern_sel_match(&s, &a, now) && postern_sel_match(&s, &b, now));
    postern_sel_free(&s);

    postern_sel_init(&s);
    postern_sel_option(&s, "--younger-than", "1h", err, sizeof(err));
    CHECK(postern_sel_match(&s, &a, now) && !postern_sel_match(&s, &b, now));
    postern_sel_free(&s);

    postern_sel_init(&s);
    postern_sel_option(&s, "--larger-than", "1k", err, sizeof(err));
    CHECK(!postern_sel_match(&s, &a, now) && postern_sel_match(&s, &b, now));
    postern_sel_free(&s);

    postern_sel_init(&s);
    postern_sel_option(&s, "--state", "hold", err, sizeof(err));
    CHECK(postern_sel_match(&s, &h, now) && !postern_sel_match(&s, &b, now));
    postern_sel_option(&s, "--state", "deferred", err, sizeof(err));
    CHECK(postern_sel_match(&s, &a, now) && !postern_sel_match(&s, &b, now));
    CHECK_STR(postern_qmsg_state(&h), "hold");
    CHECK_STR(postern_qmsg_state(&b), "active");
    CHECK_STR(postern_qmsg_state(&a), "deferred");
    postern_sel_free(&s);

    postern_sel_init(&s);
    postern_sel_add_qid(&s, "001K19JM64ES3FM9", err, sizeof(err));
    CHECK(!postern_sel_match(&s, &a, now) && postern_sel_match(&s, &b, now));
    postern_sel_free(&s);

    /* A pathological pattern hits the match limit and simply does not match. */
    postern_sel_init(&s);
    postern_sel_option(&s, "--sender", "^(a+)+$", err, sizeof(err));
    free(a.sender);
    a.sender = xstrdup("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab");
    CHECK(!postern_sel_match(&s, &a, now));
    postern_sel_free(&s);

    postern_qmsg_clear(&a);
    postern_qmsg_clear(&b);
    postern_qmsg_clear(&h);
}

/* test_postern_select_json - quotes, backslashes and control characters are escaped. */
static void
test_postern_select_json(void)
{
    struct buf *b = buf_new(64);

    postern_json_str(b, "plain@b.test");
    CHECK_STR(buf_cstr(b), "\"plain@b.test\"");
    buf_reset(b);
    postern_json_str(b, "a\"b\\c\nd\re\tf\x01g\x7f");
    CHECK_STR(buf_cstr(b), "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u007f\"");
    buf_reset(b);
    postern_json_str(b, "");
    CHECK_STR(buf_cstr(b), "\"\"");
    buf_reset(b);
    postern_json_str(b, "j\xc3\xbcrgen@b.test");                     /* UTF-8 kept */
    CHECK_STR(buf_cstr(b), "\"j\xc3\xbcrgen@b.test\"");
    buf_free(&b);
}

/* test_postern_select_buckets - qshape's minute buckets. */
static void
test_postern_select_buckets(void)
{
    CHECK(postern_summary_bucket(0) == 0);
    CHECK(postern_summary_bucket(299) == 0);
    CHECK(postern_summary_bucket(300) == 1);
    CHECK(postern_summary_bucket(1199) == 2);
    CHECK(postern_summary_bucket(1200) == 3);
    CHECK(postern_summary_bucket(1279 * 60) == 8);
    CHECK(postern_summary_bucket(1280 * 60) == 9);
    CHECK(postern_summary_bucket(UINT64_MAX / 2) == 9);
}

int
main(void)
{
    TEST_RUN(test_postern_select_parse);
    TEST_RUN(test_postern_select_match);
    TEST_RUN(test_postern_select_json);
    TEST_RUN(test_postern_select_buckets);
    TEST_END();
}
