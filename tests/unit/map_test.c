/* map_test - unit tests for libcommon/map: building SOURCE.db from text (and from aliases(5)
 * files) and looking keys up.
 *
 * Every test works in its own temporary directory under $TMPDIR (or /tmp) and removes it. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "map.h"
#include "test.h"

static char test_dir[256];

/* map_test_setup - make a fresh temporary directory for one test. */
static void
map_test_setup(void)
{
    const char *t = getenv("TMPDIR");

    snprintf(test_dir, sizeof(test_dir), "%s/map_test.XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(test_dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

/* map_test_teardown - remove the temporary directory and every file in it. */
static void
map_test_teardown(void)
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

/* map_test_write - write text to test_dir/name; returns the path (static buffer). */
static const char *
map_test_write(const char *name, const char *text)
{
    static char path[512];
    FILE       *fp;

    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    if ((fp = fopen(path, "w")) == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* map_test_count_files - entries in test_dir other than . and .. */
static int
map_test_count_files(void)
{
    DIR           *d = opendir(test_dir);
    struct dirent *e;
    int            n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* map_test_exists - 1 if path exists. */
static int
map_test_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

/* test_map_build_and_lookup - a built map returns each value, inner white space kept. */
static void
test_map_build_and_lookup(void)
{
    char        err[512] = "", val[256], src[512];
    struct map *m;

    map_test_setup();
    snprintf(src, sizeof(src), "%s", map_test_write("mailboxes",
             "alice@example.com   /var/mail/vhosts/example.com/alice/\n"
             "bob@example.com\t/var/mail/bob/\n"
             "carol@example.org value with  inner spaces   \n"));
    CHECK(map_build(src, err, sizeof(err)) == 0);
    CHECK_STR(err, "");
    m = map_open(src, err, sizeof(err));
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(map_lookup(m, "alice@example.com", val, sizeof(val)) == 1);
        CHECK_STR(val, "/var/mail/vhosts/example.com/alice/");
        CHECK(map_lookup(m, "bob@example.com", val, sizeof(val)) == 1);
        CHECK_STR(val, "/var/mail/bob/");
        CHECK(map_lookup(m, "carol@example.org", val, sizeof(val)) == 1);
        CHECK_STR(val, "value with  inner spaces");
        map_close(&m);
        CHECK(m == NULL);
    }
    map_test_teardown();
}

/* test_map_lookup_case_insensitive - keys are lower-cased both ways; values keep case. */
static void
test_map_lookup_case_insensitive(void)
{
    char        err[512] = "", val[256], src[512];
    struct map *m;

    map_test_setup();
    snprintf(src, sizeof(src), "%s", map_test_write("m",
             "Alice@Example.COM /home/Alice/Maildir/\n"));
    CHECK(map_build(src, err, sizeof(err)) == 0);
    m = map_open(src, err, sizeof(err));
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(map_lookup(m, "alice@example.com", val, sizeof(val)) == 1);
        CHECK_STR(val, "/home/Alice/Maildir/");       /* values keep their case */
        CHECK(map_lookup(m, "ALICE@EXAMPLE.COM", val, sizeof(val)) == 1);
        CHECK(map_lookup(m, "aLiCe@eXaMpLe.CoM", val, sizeof(val)) == 1);
        map_close(&m);
    }
    map_test_teardown();
}

/* test_map_lookup_not_found - absent keys, prefixes and the empty key are not found. */
static void
test_map_lookup_not_found(void)
{
    char        err[512] = "", val[256], src[512];
    struct map *m;

    map_test_setup();
    snprintf(src, sizeof(src), "%s", map_test_write("m", "a@x v\n"));
    CHECK(map_build(src, err, sizeof(err)) == 0);
    m = map_open(src, err, sizeof(err));
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(map_lookup(m, "b@x", val, sizeof(val)) == 0);
        CHECK(map_lookup(m, "a@x ", val, sizeof(val)) == 0);
        CHECK(map_lookup(m, "a@", val, sizeof(val)) == 0);
        CHECK(map_lookup(m, "", val, sizeof(val)) == 0);
        map_close(&m);
    }
    map_test_teardown();
}

/* test_map_comments_and_blank_lines - comments, blank lines and CRLF line ends are skipped. */
static void
test_map_comments_and_blank_lines(void)
{
    char        err[512] = "", val[256], src[512];
    struct map *m;

    map_test_setup();
    snprintf(src, sizeof(src), "%s", map_test_write("m",
             "# a comment line\n"
             "\n"
             "   \n"
             "\t# an indented comment\n"
             "#hash value\n"
             "key1 value#1\n"
             "\r\n"
             "key2 crlf-value\r\n"));
    CHECK(map_build(src, err, sizeof(err)) == 0);
    CHECK_STR(err, "");
    m = map_open(src, err, sizeof(err));
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(map_lookup(m, "key1", val, sizeof(val)) == 1);
        CHECK_STR(val, "value#1");                      /* # inside a value is data */
        CHECK(map_lookup(m, "key2", val, sizeof(val)) == 1);
        CHECK_STR(val, "crlf-value");
        CHECK(map_lookup(m, "#", val, sizeof(val)) == 0);
        CHECK(map_lookup(m, "#hash", val, sizeof(val)) == 0);
        CHECK(map_lookup(m, "a", val, sizeof(val)) == 0);
        map_close(&m);
    }
    map_test_teardown();
}

/* test_map_empty_source - a source with no records builds an empty map. */
static void
test_map_empty_source(void)
{
    char        err[512] = "", val[16], src[512];
    struct map *m;

    map_test_setup();
    snprintf(src, sizeof(src), "%s", map_test_write("m", "# nothing here\n"));
    CHECK(map_build(src, err, sizeof(err)) == 0);
    m = map_open(src, err, sizeof(err));
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(map_lookup(m, "x", val, sizeof(val)) == 0);
        map_close(&m);
    }
    map_test_teardown();
}

/* Table: a malformed source and the "file:line: message" it must produce. */
static const struct {
    const char *text;
    unsigned    line;
    const char *message;
} map_test_bad[] = {
    { "ok v\nkeyonly\n", 2, "missing value for key \"keyonly\"" },
    { "ok v\n\n# c\nkey   \n", 4, "missing value for key \"key\"" },
    { "a 1\nb 2\nA 3\n", 3, "duplicate key \"a\"" },
    { "a 1\n  b 2\n", 2, "line starts with white space (continuation lines are not supported)" },
    { "a 1\nb\0c 2\n", 2, "NUL byte in line" },
};

/* test_map_malformed_line - each malformed source fails with file:line and leaves no file. */
static void
test_map_malformed_line(void)
{
    char err[512], src[512], want[1024], dbpath[600];

    for (size_t i = 0; i < sizeof(map_test_bad) / sizeof(map_test_bad[0]); i++) {
        FILE  *fp;
        size_t len = strlen(map_test_bad[i].text);

        map_test_setup();
        snprintf(src, sizeof(src), "%s/m", test_dir);
        /* Written with fwrite so that a NUL inside the text reaches the file. */
        if (strstr(map_test_bad[i].message, "NUL") != NULL)
            len += 1 + strlen(map_test_bad[i].text + len + 1);
        fp = fopen(src, "w");
        CHECK(fp != NULL);
        if (fp != NULL) {
            fwrite(map_test_bad[i].text, 1, len, fp);
            fclose(fp);
        }
        err[0] = '\0';
        CHECK(map_build(src, err, sizeof(err)) == -1);
        snprintf(want, sizeof(want), "%s:%u: %s", src, map_test_bad[i].line,
                 map_test_bad[i].message);
        CHECK_STR(err, want);
        snprintf(dbpath, sizeof(dbpath), "%s.db", src);
        CHECK(!map_test_exists(dbpath));
        CHECK(map_test_count_files() == 1);             /* no temporary file left */
        map_test_teardown();
    }
}

/* test_map_missing_source_and_db - a missing source or .db is an error naming the file. */
static void
test_map_missing_source_and_db(void)
{
    char        err[512] = "", src[512];
    struct map *m;

    map_test_setup();
    snprintf(src, sizeof(src), "%s/nonexistent", test_dir);
    CHECK(map_build(src, err, sizeof(err)) == -1);
    CHECK(strstr(err, src) == err);
    CHECK(strstr(err, strerror(ENOENT)) != NULL);
    err[0] = '\0';
    m = map_open(src, err, sizeof(err));
    CHECK(m == NULL);
    CHECK(strstr(err, "nonexistent.db") != NULL);
    map_test_teardown();
}

/* test_map_value_too_long - a value longer than the caller's buffer is an error. */
static void
test_map_value_too_long(void)
{
    char        err[512] = "", val[8], src[512];
    struct map *m;

    map_test_setup();
    snprintf(src, sizeof(src), "%s", map_test_write("m", "k 1234567\nl 12345678\n"));
    CHECK(map_build(src, err, sizeof(err)) == 0);
    m = map_open(src, err, sizeof(err));
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(map_lookup(m, "k", val, sizeof(val)) == 1);    /* exactly fits */
        CHECK_STR(val, "1234567");
        CHECK(map_lookup(m, "l", val, sizeof(val)) == -1);   /* one byte too long */
        map_close(&m);
    }
    map_test_teardown();
}

/* test_map_rebuild_replaces_atomically - a new file is renamed in; a failure keeps the old. */
static void
test_map_rebuild_replaces_atomically(void)
{
    char        err[512] = "", val[64], src[512], dbpath[600];
    struct map *old, *cur;
    struct stat st1, st2;

    map_test_setup();
    snprintf(src, sizeof(src), "%s", map_test_write("m", "a v1\nb gone\n"));
    snprintf(dbpath, sizeof(dbpath), "%s.db", src);
    CHECK(map_build(src, err, sizeof(err)) == 0);
    CHECK(stat(dbpath, &st1) == 0);
    old = map_open(src, err, sizeof(err));
    CHECK(old != NULL);

    map_test_write("m", "a v2\nc new\n");
    CHECK(map_build(src, err, sizeof(err)) == 0);
    CHECK(stat(dbpath, &st2) == 0);
    CHECK(st1.st_ino != st2.st_ino);                    /* a new file, renamed into place */
    CHECK(map_test_count_files() == 2);                 /* source and .db, no temporaries */

    /* A handle opened before the rebuild still reads the old, complete map. */
    if (old != NULL) {
        CHECK(map_lookup(old, "a", val, sizeof(val)) == 1);
        CHECK_STR(val, "v1");
        CHECK(map_lookup(old, "b", val, sizeof(val)) == 1);
        map_close(&old);
    }
    cur = map_open(src, err, sizeof(err));
    CHECK(cur != NULL);
    if (cur != NULL) {
        CHECK(map_lookup(cur, "a", val, sizeof(val)) == 1);
        CHECK_STR(val, "v2");
        CHECK(map_lookup(cur, "b", val, sizeof(val)) == 0);
        CHECK(map_lookup(cur, "c", val, sizeof(val)) == 1);
        CHECK_STR(val, "new");
        map_close(&cur);
    }

    /* A failed rebuild leaves the last good map in place. */
    map_test_write("m", "a v3\nbroken\n");
    CHECK(map_build(src, err, sizeof(err)) == -1);
    cur = map_open(src, err, sizeof(err));
    CHECK(cur != NULL);
    if (cur != NULL) {
        CHECK(map_lookup(cur, "a", val, sizeof(val)) == 1);
        CHECK_STR(val, "v2");
        map_close(&cur);
    }
    CHECK(map_test_count_files() == 2);
    map_test_teardown();
}

/* test_map_db_mode_follows_source - the .db is no more readable than its source. */
static void
test_map_db_mode_follows_source(void)
{
    char        err[512] = "", src[512], dbpath[600];
    struct stat st;
    mode_t      old_mask = umask(022);

    map_test_setup();
    snprintf(src, sizeof(src), "%s", map_test_write("m", "a b\n"));
    snprintf(dbpath, sizeof(dbpath), "%s.db", src);
    CHECK(chmod(src, 0600) == 0);
    CHECK(map_build(src, err, sizeof(err)) == 0);
    CHECK(stat(dbpath, &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    umask(old_mask);
    map_test_teardown();
}

/* test_map_aliases_build - aliases(5): names, quoted names, continuation lines, comments
 * between them, values normalised to "a, b, c". */
static void
test_map_aliases_build(void)
{
    char        err[512] = "", val[256], src[512];
    struct map *m;

    map_test_setup();
    snprintf(src, sizeof(src), "%s", map_test_write("aliases",
             "# /etc/aliases\n"
             "\n"
             "postmaster: alice@local.test\n"
             "Root:alice\n"
             "staff : a,b ,  c\n"
             "list: one,\n"
             "  two\n"
             "# a comment inside the continuation\n"
             "\n"
             "\tthree four\r\n"
             "\"quoted Name\": \"x y\"@z.test, \\bob\n"
             "me:   \\me,   you   \n"));
    CHECK(map_build_aliases(src, err, sizeof(err)) == 0);
    CHECK_STR(err, "");
    m = map_open(src, err, sizeof(err));
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(map_lookup(m, "postmaster", val, sizeof(val)) == 1);
        CHECK_STR(val, "alice@local.test");
        CHECK(map_lookup(m, "root", val, sizeof(val)) == 1);
        CHECK_STR(val, "alice");
        CHECK(map_lookup(m, "staff", val, sizeof(val)) == 1);
        CHECK_STR(val, "a, b, c");
        CHECK(map_lookup(m, "list", val, sizeof(val)) == 1);
        CHECK_STR(val, "one, two, three, four");
        CHECK(map_lookup(m, "quoted name", val, sizeof(val)) == 1);
        CHECK_STR(val, "\"x y\"@z.test, \\bob");
        CHECK(map_lookup(m, "me", val, sizeof(val)) == 1);
        CHECK_STR(val, "\\me, you");
        CHECK(map_lookup(m, "two", val, sizeof(val)) == 0);
        CHECK(map_lookup(m, "\"quoted name\"", val, sizeof(val)) == 0);
        map_close(&m);
    }
    CHECK(map_test_count_files() == 2);
    map_test_teardown();
}

/* Table: a malformed aliases file and the "file:line: message" it must produce. */
static const struct {
    const char *text;
    unsigned    line;
    const char *message;
} map_test_bad_aliases[] = {
    { "a: b\nnocolon\n", 2, "missing ':' after alias name \"nocolon\"" },
    { "a: b\nfoo bar: x\n", 2, "white space in alias name \"foo bar: x\" (quote names with "
      "spaces)" },
    { ": x\n", 1, "empty alias name" },
    { "a@b.test: x\n", 1, "alias name \"a@b.test\" has a domain (aliases are local parts; use "
      "virtual_alias_map for addresses)" },
    { "a: b\nempty:\n", 2, "alias \"empty\" has no targets" },
    { "a: b\nempty: , ,\n  ,\n", 2, "alias \"empty\" has no targets" },
    { "a: b\n\nA: c\n", 3, "duplicate alias \"a\"" },
    { "# c\n  x, y\n", 2, "continuation line without an alias before it" },
    { "p: |/usr/bin/prog\n", 1, "alias \"p\": \"|/usr/bin/prog\": pipes, files and :include: "
      "are not supported" },
    { "p: ok,\n \"|/bin/sh -c x\"\n", 1, "alias \"p\": \"\"|/bin/sh -c x\"\": pipes, files and "
      ":include: are not supported" },
    { "f: /var/spool/file\n", 1, "alias \"f\": \"/var/spool/file\": pipes, files and "
      ":include: are not supported" },
    { "i: :include:/etc/list\n", 1, "alias \"i\": \":include:/etc/list\": pipes, files and "
      ":include: are not supported" },
    { "c: alice # the admin\n", 1, "alias \"c\": '#' in a value (comments go on lines of their "
      "own)" },
    { "q: \"open\n", 1, "alias \"q\": unterminated quote" },
    { "\"q: x\n", 1, "unterminated quoted alias name" },
    { "\"q\" x\n", 1, "missing ':' after alias name \"q\"" },
    { "a: b\nc: d\0e\n", 2, "NUL byte in line" },
};

/* test_map_aliases_malformed - each malformed aliases file fails with file:line, no .db. */
static void
test_map_aliases_malformed(void)
{
    char err[512], src[512], want[1024], dbpath[600];

    for (size_t i = 0; i < sizeof(map_test_bad_aliases) / sizeof(map_test_bad_aliases[0]);
         i++) {
        FILE  *fp;
        size_t len = strlen(map_test_bad_aliases[i].text);

        map_test_setup();
        snprintf(src, sizeof(src), "%s/aliases", test_dir);
        if (strstr(map_test_bad_aliases[i].message, "NUL") != NULL)
            len += 1 + strlen(map_test_bad_aliases[i].text + len + 1);
        fp = fopen(src, "w");
        CHECK(fp != NULL);
        if (fp != NULL) {
            fwrite(map_test_bad_aliases[i].text, 1, len, fp);
            fclose(fp);
        }
        err[0] = '\0';
        CHECK(map_build_aliases(src, err, sizeof(err)) == -1);
        snprintf(want, sizeof(want), "%s:%u: %s", src, map_test_bad_aliases[i].line,
                 map_test_bad_aliases[i].message);
        CHECK_STR(err, want);
        snprintf(dbpath, sizeof(dbpath), "%s.db", src);
        CHECK(!map_test_exists(dbpath));
        CHECK(map_test_count_files() == 1);
        map_test_teardown();
    }
}

/* test_map_aliases_rebuild - a failed newaliases keeps the last good map; map_build() still
 * rejects the aliases format (it has colons and continuation lines). */
static void
test_map_aliases_rebuild(void)
{
    char        err[512] = "", val[64], src[512];
    struct map *m;

    map_test_setup();
    snprintf(src, sizeof(src), "%s", map_test_write("aliases", "root: alice\n"));
    CHECK(map_build_aliases(src, err, sizeof(err)) == 0);
    map_test_write("aliases", "root: bob\n  , |/bin/sh\n");
    CHECK(map_build_aliases(src, err, sizeof(err)) == -1);
    m = map_open(src, err, sizeof(err));
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(map_lookup(m, "root", val, sizeof(val)) == 1);
        CHECK_STR(val, "alice");
        map_close(&m);
    }
    map_test_write("aliases", "root: alice,\n  bob\n");
    CHECK(map_build(src, err, sizeof(err)) == -1);
    CHECK(map_test_count_files() == 2);
    map_test_teardown();
}

/* test_map_close_null - closing a NULL map is a no-op. */
static void
test_map_close_null(void)
{
    struct map *m = NULL;

    map_close(&m);
    CHECK(m == NULL);
}

/* main - run every test; prints "N passed, N failed". */
int
main(void)
{
    log_init("map_test", 1);
    log_set_level(LOG_LVL_ERR);
    TEST_RUN(test_map_build_and_lookup);
    TEST_RUN(test_map_lookup_case_insensitive);
    TEST_RUN(test_map_lookup_not_found);
    TEST_RUN(test_map_comments_and_blank_lines);
    TEST_RUN(test_map_empty_source);
    TEST_RUN(test_map_malformed_line);
    TEST_RUN(test_map_missing_source_and_db);
    TEST_RUN(test_map_value_too_long);
    TEST_RUN(test_map_rebuild_replaces_atomically);
    TEST_RUN(test_map_db_mode_follows_source);
    TEST_RUN(test_map_close_null);
    TEST_RUN(test_map_aliases_build);
    TEST_RUN(test_map_aliases_malformed);
    TEST_RUN(test_map_aliases_rebuild);
    TEST_END();
}
