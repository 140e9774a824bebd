/* config_test - postern.conf parsing, defaults, errors, and the value parsers.
 *
 * Each case writes a postern.conf into a fresh directory under /tmp, loads it and removes it.
 * The defaults checked are those of the table in doc/internals.md. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "test.h"

#define KB 1024ull
#define MB (1024ull * 1024)
#define GB (1024ull * 1024 * 1024)

struct confdir {
    char dir[64];
    char file[96];
};

/* conf_write - a new directory holding postern.conf with text (NULL: no file). */
static int
conf_write(struct confdir *cd, const char *text)
{
    FILE *fp;

    snprintf(cd->dir, sizeof(cd->dir), "/tmp/postern-cfg-XXXXXX");
    if (mkdtemp(cd->dir) == NULL)
        return -1;
    snprintf(cd->file, sizeof(cd->file), "%s/%s", cd->dir, CONFIG_FILE);
    if (text == NULL)
        return 0;
    if ((fp = fopen(cd->file, "w")) == NULL)
        return -1;
    fputs(text, fp);
    return fclose(fp) == 0 ? 0 : -1;
}

static void
conf_remove(struct confdir *cd)
{
    unlink(cd->file);
    rmdir(cd->dir);
}

/* conf_load - write text and load it; NULL on error with err filled. */
static struct config *
conf_load(struct confdir *cd, const char *text, char *err, size_t errlen)
{
    err[0] = '\0';
    if (conf_write(cd, text) == -1) {
        snprintf(err, errlen, "test setup failed: %s", strerror(errno));
        return NULL;
    }
    return config_load(cd->dir, err, errlen);
}

/* test_config_defaults - an empty file gives every documented default. */
static void
test_config_defaults(void)
{
    struct confdir cd;
    char err[512], want[256];
    struct config *c = conf_load(&cd, "", err, sizeof(err));
    char *const *l;
    size_t n = 99;

    CHECK(c != NULL);
    if (c == NULL) {
        fprintf(stderr, "  err: %s\n", err);
        conf_remove(&cd);
        return;
    }
    CHECK_STR(config_dir(c), cd.dir);
    snprintf(want, sizeof(want), "%s/queue", cd.dir);
    CHECK_STR(config_path(c, "queue_directory"), want);
    CHECK_STR(config_str(c, "queue_directory"), "queue");
    CHECK_STR(config_path(c, "daemon_directory"), "");
    CHECK_STR(config_path(c, "smtpd_chroot"), "");
    CHECK_STR(config_path(c, "mailbox_map"), "");
    CHECK_STR(config_str(c, "myhostname"), "");
    CHECK_STR(config_str(c, "mail_owner"), "postern");
    CHECK_STR(config_str(c, "queue_owner"), "postern-q");
    CHECK_STR(config_str(c, "mailbox_owner"), "vmail");
    CHECK_STR(config_str(c, "smtpd_banner"), "");
    CHECK_STR(config_str(c, "smtpd_bare_newline"), "normalize");
    CHECK_STR(config_str(c, "log_level"), "info");
    CHECK_STR(config_str(c, "syslog_facility"), "mail");
    CHECK(config_int(c, "smtpd_processes") == 2);
    CHECK(config_int(c, "local_processes") == 1);
    CHECK(config_int(c, "local_concurrency") == 50);
    CHECK(config_int(c, "smtpd_recipient_limit") == 1000);
    CHECK(config_int(c, "smtpd_max_sessions") == 1000);
    CHECK(config_int(c, "smtpd_error_limit") == 20);
    CHECK(config_int(c, "smtpd_command_limit") == 1000);
    CHECK(config_size(c, "message_size_limit") == 10 * MB);
    CHECK(config_size(c, "header_size_limit") == 100 * KB);
    CHECK(config_time_ms(c, "smtpd_timeout") == 300000);
    CHECK(config_time_ms(c, "smtpd_session_timeout") == 3600000);
    CHECK(config_time_ms(c, "queue_retry_min") == 300000);
    CHECK(config_time_ms(c, "queue_retry_max") == 4000000);
    CHECK(config_time_ms(c, "queue_lifetime") == 5ull * 86400 * 1000);
    static const char *lists[] = { "smtp_listen", "submission_listen", "smtps_listen",
                                   "local_domains" };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        n = 99;
        l = config_list(c, lists[i], &n);
        CHECK(l != NULL && n == 0 && l[0] == NULL);
    }
    config_free(&c);
    CHECK(c == NULL);
    conf_remove(&cd);
}

/* test_config_sizes - size values in the file. */
static void
test_config_sizes(void)
{
    static const struct {
        const char *value;
        uint64_t    want;
    } cases[] = {
        { "10M", 10 * MB },
        { "100k", 100 * KB },
        { "1G", GB },
        { "12345", 12345 },
        { "0", 0 },
        { "52428800", 50 * MB },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct confdir cd;
        char err[512], text[128];
        struct config *c;

        snprintf(text, sizeof(text), "message_size_limit = %s\nheader_size_limit=%s\n",
                 cases[i].value, cases[i].value);
        c = conf_load(&cd, text, err, sizeof(err));
        CHECK(c != NULL);
        if (c != NULL) {
            CHECK(config_size(c, "message_size_limit") == cases[i].want);
            CHECK(config_size(c, "header_size_limit") == cases[i].want);
            config_free(&c);
        } else {
            fprintf(stderr, "  %s: %s\n", cases[i].value, err);
        }
        conf_remove(&cd);
    }
}

/* test_config_times - time values in the file; a plain number is seconds. */
static void
test_config_times(void)
{
    static const struct {
        const char *value;
        uint64_t    want_ms;
    } cases[] = {
        { "30s", 30000 },
        { "5m", 300000 },
        { "1h", 3600000 },
        { "5d", 432000000 },
        { "42", 42000 },
        { "0", 0 },
        { "4000s", 4000000 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct confdir cd;
        char err[512], text[128];
        struct config *c;

        snprintf(text, sizeof(text), "smtpd_timeout = %s\nqueue_lifetime =%s\n",
                 cases[i].value, cases[i].value);
        c = conf_load(&cd, text, err, sizeof(err));
        CHECK(c != NULL);
        if (c != NULL) {
            CHECK(config_time_ms(c, "smtpd_timeout") == cases[i].want_ms);
            CHECK(config_time_ms(c, "queue_lifetime") == cases[i].want_ms);
            config_free(&c);
        } else {
            fprintf(stderr, "  %s: %s\n", cases[i].value, err);
        }
        conf_remove(&cd);
    }
}

/* test_config_lists - lists split on spaces and commas, in order. */
static void
test_config_lists(void)
{
    static const struct {
        const char *value;
        size_t      n;
        const char *items[5];
    } cases[] = {
        { "127.0.0.1:25", 1, { "127.0.0.1:25" } },
        { "127.0.0.1:25 [::1]:25", 2, { "127.0.0.1:25", "[::1]:25" } },
        { "127.0.0.1:25,[::1]:25", 2, { "127.0.0.1:25", "[::1]:25" } },
        { "127.0.0.1:25, [::1]:25 ,0.0.0.0:2525   [::]:587", 4,
          { "127.0.0.1:25", "[::1]:25", "0.0.0.0:2525", "[::]:587" } },
        { "a:1\t b:2", 2, { "a:1", "b:2" } },
        { "", 0, { NULL } },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct confdir cd;
        char err[512], text[256];
        struct config *c;

        snprintf(text, sizeof(text), "smtp_listen = %s\nlocal_domains = %s\n",
                 cases[i].value, cases[i].value);
        c = conf_load(&cd, text, err, sizeof(err));
        CHECK(c != NULL);
        if (c != NULL) {
            static const char *keys[] = { "smtp_listen", "local_domains" };

            for (int k = 0; k < 2; k++) {
                size_t n = 99;
                char *const *l = config_list(c, keys[k], &n);

                CHECK(l != NULL);
                CHECK(n == cases[i].n);
                if (l == NULL || n != cases[i].n) {
                    fprintf(stderr, "  list \"%s\": got %zu items\n", cases[i].value, n);
                    continue;
                }
                for (size_t j = 0; j < n; j++)
                    CHECK_STR(l[j], cases[i].items[j]);
                CHECK(l[n] == NULL);
            }
            config_free(&c);
        } else {
            fprintf(stderr, "  \"%s\": %s\n", cases[i].value, err);
        }
        conf_remove(&cd);
    }
}

/* test_config_syntax - comments, blank lines and whitespace around names and values. */
static void
test_config_syntax(void)
{
    static const char text[] =
        "# postern.conf\n"
        "\n"
        "   # an indented comment\n"
        "\t\n"
        "smtpd_processes=4\n"
        "local_processes   =   3   \n"
        "smtpd_banner = ESMTP ready  here\n"
        "myhostname\t=\tmx.example.org\n"
        "mail_owner =\n"
        "#smtpd_error_limit = 99\n"
        "local_concurrency = 7";                   /* no newline at the end */
    struct confdir cd;
    char err[512];
    struct config *c = conf_load(&cd, text, err, sizeof(err));

    CHECK(c != NULL);
    if (c == NULL) {
        fprintf(stderr, "  err: %s\n", err);
        conf_remove(&cd);
        return;
    }
    CHECK(config_int(c, "smtpd_processes") == 4);
    CHECK(config_int(c, "local_processes") == 3);
    CHECK_STR(config_str(c, "smtpd_banner"), "ESMTP ready  here");
    CHECK_STR(config_str(c, "myhostname"), "mx.example.org");
    CHECK_STR(config_str(c, "mail_owner"), "");
    CHECK(config_int(c, "smtpd_error_limit") == 20);
    CHECK(config_int(c, "local_concurrency") == 7);
    config_free(&c);
    conf_remove(&cd);
}

/* test_config_continuation - a line starting with white space continues the previous one
 * (config.c; not yet stated in config.h). */
static void
test_config_continuation(void)
{
    static const char text[] =
        "smtp_listen = 127.0.0.1:25,\n"
        "    [::1]:25\n"
        "# a comment inside the folded value\n"
        "\t0.0.0.0:2525\n"
        "smtpd_processes = 3\n"
        "smtpd_banner = folded\n"
        "  banner\n";
    struct confdir cd;
    char err[512];
    struct config *c = conf_load(&cd, text, err, sizeof(err));
    size_t n = 0;
    char *const *l;

    CHECK(c != NULL);
    if (c == NULL) {
        fprintf(stderr, "  err: %s\n", err);
        conf_remove(&cd);
        return;
    }
    l = config_list(c, "smtp_listen", &n);
    CHECK(n == 3);
    if (n == 3) {
        CHECK_STR(l[0], "127.0.0.1:25");
        CHECK_STR(l[1], "[::1]:25");
        CHECK_STR(l[2], "0.0.0.0:2525");
    }
    CHECK(config_int(c, "smtpd_processes") == 3);
    CHECK_STR(config_str(c, "smtpd_banner"), "folded banner");
    config_free(&c);
    conf_remove(&cd);

    /* An error in a folded value names the line where the setting starts. */
    c = conf_load(&cd, "# x\nmessage_size_limit = 10\n  Q\n", err, sizeof(err));
    CHECK(c == NULL);
    if (c == NULL) {
        char prefix[160];

        snprintf(prefix, sizeof(prefix), "%s:2: ", cd.file);
        CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
    } else {
        config_free(&c);
    }
    conf_remove(&cd);
}

/* Files that must be refused, with the line the error must name. */
static const struct {
    const char *what;
    const char *text;
    int         line;
} bad_files[] = {
    { "unknown key", "# c\n\nbogus_key = 1\n", 3 },
    { "unknown key first", "no_such = x\nsmtpd_processes = 2\n", 1 },
    { "bad size", "# sizes\nheader_size_limit = 1k\n\n\nmessage_size_limit = 10Q\n", 5 },
    { "size with fraction", "message_size_limit = 1.5M\n", 1 },
    { "size overflow", "\nmessage_size_limit = 99999999999999999999\n", 2 },
    { "negative size", "message_size_limit = -1\n", 1 },
    { "bad time", "smtpd_timeout = 30s\nsmtpd_session_timeout = 1y\n", 2 },
    { "empty time", "smtpd_timeout =\n", 1 },
    { "bad int", "smtpd_processes = 4x\n", 1 },
    { "int overflow", "smtpd_processes = 99999999999999999999999\n", 1 },
    { "repeated key", "smtpd_processes = 2\n# again\nsmtpd_processes = 3\n", 3 },
    { "repeated key, same value", "log_level = info\nlog_level = info\n", 2 },
    { "no equals sign", "smtpd_processes 4\n", 1 },
    { "no name", "= 4\n", 1 },
};

/* test_config_errors - bad files give NULL and "<dir>/postern.conf:<line>: message". */
static void
test_config_errors(void)
{
    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        struct confdir cd;
        char err[512], prefix[160];
        struct config *c = conf_load(&cd, bad_files[i].text, err, sizeof(err));

        CHECK(c == NULL);
        snprintf(prefix, sizeof(prefix), "%s:%d: ", cd.file, bad_files[i].line);
        if (c != NULL) {
            fprintf(stderr, "  %s: accepted\n", bad_files[i].what);
            config_free(&c);
        } else if (strncmp(err, prefix, strlen(prefix)) != 0) {
            fprintf(stderr, "  %s: err \"%s\", want prefix \"%s\"\n", bad_files[i].what, err,
                    prefix);
            CHECK(0);
        } else {
            CHECK(strlen(err) > strlen(prefix));    /* and a message after it */
        }
        conf_remove(&cd);
    }
}

/* test_config_missing_file - no postern.conf: NULL with a message naming the file. */
static void
test_config_missing_file(void)
{
    struct confdir cd;
    char err[512];
    struct config *c;

    err[0] = '\0';
    CHECK(conf_write(&cd, NULL) == 0);
    c = config_load(cd.dir, err, sizeof(err));
    CHECK(c == NULL);
    CHECK(strstr(err, cd.file) != NULL);
    if (c != NULL)
        config_free(&c);
    conf_remove(&cd);
}

/* test_config_err_truncated - a short err buffer gets a truncated, terminated message. */
static void
test_config_err_truncated(void)
{
    struct confdir cd;
    char err[16];
    struct config *c;

    memset(err, 'x', sizeof(err));
    c = conf_load(&cd, "bogus_key = 1\n", err, 8);
    CHECK(c == NULL);
    CHECK(memchr(err, '\0', 8) != NULL);
    CHECK(err[8] == 'x');
    conf_remove(&cd);
}

/* test_config_paths - relative path values resolve against the config directory. */
static void
test_config_paths(void)
{
    static const struct {
        const char *key;
        const char *value;
        const char *want;       /* "%s" is the config dir */
    } cases[] = {
        { "queue_directory", "spool", "%s/spool" },
        { "queue_directory", "var/spool/postern", "%s/var/spool/postern" },
        { "queue_directory", "/var/spool/postern", "/var/spool/postern" },
        { "mailbox_map", "maps/mailbox", "%s/maps/mailbox" },
        { "mailbox_map", "/etc/postern/mailbox", "/etc/postern/mailbox" },
        { "daemon_directory", "/usr/libexec/postern", "/usr/libexec/postern" },
        { "daemon_directory", "", "" },
        { "smtpd_chroot", "empty", "%s/empty" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct confdir cd;
        char err[512], text[256], want[256];
        struct config *c;

        snprintf(text, sizeof(text), "%s = %s\n", cases[i].key, cases[i].value);
        c = conf_load(&cd, text, err, sizeof(err));
        CHECK(c != NULL);
        if (c != NULL) {
            if (strstr(cases[i].want, "%s") != NULL)
                snprintf(want, sizeof(want), "%s%s", cd.dir, cases[i].want + 2);
            else
                snprintf(want, sizeof(want), "%s", cases[i].want);
            CHECK_STR(config_path(c, cases[i].key), want);
            config_free(&c);
        } else {
            fprintf(stderr, "  %s: %s\n", text, err);
        }
        conf_remove(&cd);
    }
}

/* test_config_relative_dir - a relative config directory (-c conf) still gives absolute
 * paths. */
static void
test_config_relative_dir(void)
{
    struct confdir cd;
    char err[512], cwd[PATH_MAX], want[PATH_MAX + 64];
    struct config *c;
    const char *base;

    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    CHECK(conf_write(&cd, "queue_directory = spool\n") == 0);
    CHECK(chdir("/tmp") == 0);
    base = cd.dir + strlen("/tmp/");
    c = config_load(base, err, sizeof(err));
    CHECK(c != NULL);
    if (c != NULL) {
        snprintf(want, sizeof(want), "%s/spool", cd.dir);
        CHECK(config_path(c, "queue_directory")[0] == '/');
        CHECK_STR(config_path(c, "queue_directory"), want);
        config_free(&c);
    } else {
        fprintf(stderr, "  err: %s\n", err);
    }
    CHECK(chdir(cwd) == 0);
    conf_remove(&cd);
}

/* test_config_dir_from - -c argument, then $POSTERN_CONFIG, then /etc/postern. */
static void
test_config_dir_from(void)
{
    char *saved = getenv("POSTERN_CONFIG") ? xstrdup(getenv("POSTERN_CONFIG")) : NULL;

    setenv("POSTERN_CONFIG", "/env/dir", 1);
    CHECK_STR(config_dir_from("/arg/dir"), "/arg/dir");
    CHECK_STR(config_dir_from(NULL), "/env/dir");
    unsetenv("POSTERN_CONFIG");
    CHECK_STR(config_dir_from("/arg/dir"), "/arg/dir");
    CHECK_STR(config_dir_from(NULL), "/etc/postern");
    if (saved != NULL) {
        setenv("POSTERN_CONFIG", saved, 1);
        free(saved);
    }
}

static const char *documented_keys[] = {
    "queue_directory", "daemon_directory", "myhostname", "mail_owner", "queue_owner",
    "mailbox_owner", "smtpd_chroot", "smtp_listen", "submission_listen", "smtps_listen",
    "smtpd_processes", "smtpd_banner", "local_domains", "mailbox_map", "local_processes",
    "local_concurrency", "message_size_limit", "header_size_limit", "smtpd_recipient_limit",
    "smtpd_max_sessions", "smtpd_timeout", "smtpd_session_timeout", "smtpd_error_limit",
    "smtpd_command_limit", "smtpd_bare_newline", "queue_retry_min", "queue_retry_max",
    "queue_lifetime", "log_level", "syslog_facility",
};
#define NDOC (sizeof(documented_keys) / sizeof(documented_keys[0]))

struct dump_seen {
    int seen[NDOC];
    int calls;
};

static void
dump_emit(const char *key, const char *value, void *arg)
{
    struct dump_seen *ds = arg;

    ds->calls++;
    if (value == NULL)
        return;
    for (size_t i = 0; i < NDOC; i++)
        if (strcmp(key, documented_keys[i]) == 0)
            ds->seen[i]++;
}

/* test_config_dump_keys - every documented key is known, and dumped once. */
static void
test_config_dump_keys(void)
{
    struct confdir cd;
    struct dump_seen ds;
    char err[512];
    struct config *c = conf_load(&cd, "", err, sizeof(err));

    memset(&ds, 0, sizeof(ds));
    CHECK(c != NULL);
    if (c != NULL) {
        config_dump(c, dump_emit, &ds);
        for (size_t i = 0; i < NDOC; i++)
            if (ds.seen[i] != 1) {
                fprintf(stderr, "  %s dumped %d times\n", documented_keys[i], ds.seen[i]);
                CHECK(0);
            }
        config_free(&c);
    }
    conf_remove(&cd);

    /* Each documented key is accepted in a file. */
    for (size_t i = 0; i < NDOC; i++) {
        char text[128];
        const char *v = "1";

        if (strstr(documented_keys[i], "owner") || strstr(documented_keys[i], "level") ||
            strstr(documented_keys[i], "facility") || strstr(documented_keys[i], "newline"))
            continue;       /* values with their own vocabulary, covered elsewhere */
        snprintf(text, sizeof(text), "%s = %s\n", documented_keys[i], v);
        c = conf_load(&cd, text, err, sizeof(err));
        if (c == NULL) {
            fprintf(stderr, "  %s refused: %s\n", documented_keys[i], err);
            CHECK(0);
        } else {
            config_free(&c);
        }
        conf_remove(&cd);
    }
}

/* test_config_parse_size - the size parser, including overflow. */
static void
test_config_parse_size(void)
{
    static const struct {
        const char *in;
        int         rc;
        uint64_t    want;
    } cases[] = {
        { "0", 0, 0 },
        { "1", 0, 1 },
        { "12345", 0, 12345 },
        { "1k", 0, KB },
        { "100k", 0, 100 * KB },
        { "10M", 0, 10 * MB },
        { "1G", 0, GB },
        { "0k", 0, 0 },
        { "18446744073709551615", 0, UINT64_MAX },
        { "18014398509481983k", 0, 18014398509481983ull * KB },
        { "17592186044415M", 0, 17592186044415ull * MB },
        { "17179869183G", 0, 17179869183ull * GB },
        /* Extensions in config.c beyond config.h: lower/upper case, a B after the unit. */
        { "1K", 0, KB },
        { "10m", 0, 10 * MB },
        { "1g", 0, GB },
        { "10MB", 0, 10 * MB },
        { "10kb", 0, 10 * KB },
        { "10BM", -1, 0 },
        { "10MBB", -1, 0 },
        { "", -1, 0 },
        { "k", -1, 0 },
        { "M", -1, 0 },
        { "10Q", -1, 0 },
        { "1kk", -1, 0 },
        { "1.5M", -1, 0 },
        { "-1", -1, 0 },
        { "-1k", -1, 0 },
        { "0x10", -1, 0 },
        { "1e3", -1, 0 },
        { "abc", -1, 0 },
        { "18446744073709551616", -1, 0 },
        { "99999999999999999999", -1, 0 },
        { "18014398509481984k", -1, 0 },
        { "17592186044416M", -1, 0 },
        { "17179869184G", -1, 0 },
        { "99999999999G", -1, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t out = 777;
        int rc = config_parse_size(cases[i].in, &out);

        if (rc != cases[i].rc || (rc == 0 && out != cases[i].want)) {
            fprintf(stderr, "  size \"%s\": rc %d out %llu, want rc %d out %llu\n",
                    cases[i].in, rc, (unsigned long long)out, cases[i].rc,
                    (unsigned long long)cases[i].want);
            CHECK(0);
        }
    }
}

/* test_config_parse_time - the time parser (milliseconds out), including overflow. */
static void
test_config_parse_time(void)
{
    static const struct {
        const char *in;
        int         rc;
        uint64_t    want;
    } cases[] = {
        { "0", 0, 0 },
        { "1", 0, 1000 },
        { "30", 0, 30000 },
        { "30s", 0, 30000 },
        { "5m", 0, 300000 },
        { "1h", 0, 3600000 },
        { "5d", 0, 432000000 },
        { "300s", 0, 300000 },
        { "4000s", 0, 4000000 },
        { "18446744073709551", 0, 18446744073709551000ull },
        { "18446744073709551s", 0, 18446744073709551000ull },
        { "213503982334d", 0, 213503982334ull * 86400000 },
        /* Extensions in config.c beyond config.h: milliseconds and weeks. */
        { "5ms", 0, 5 },
        { "0ms", 0, 0 },
        { "2w", 0, 2ull * 7 * 86400000 },
        { "18446744073709551615ms", 0, UINT64_MAX },
        { "5mss", -1, 0 },
        { "5sm", -1, 0 },
        { "", -1, 0 },
        { "s", -1, 0 },
        { "d", -1, 0 },
        { "5x", -1, 0 },
        { "5y", -1, 0 },
        { "5ss", -1, 0 },
        { "-1", -1, 0 },
        { "-5m", -1, 0 },
        { "1.5h", -1, 0 },
        { "0x10", -1, 0 },
        { "18446744073709552", -1, 0 },
        { "18446744073709551615", -1, 0 },
        { "99999999999999999999", -1, 0 },
        { "307445734561826m", -1, 0 },
        { "5124095576031h", -1, 0 },
        { "213503982335d", -1, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t out = 777;
        int rc = config_parse_time_ms(cases[i].in, &out);

        if (rc != cases[i].rc || (rc == 0 && out != cases[i].want)) {
            fprintf(stderr, "  time \"%s\": rc %d out %llu, want rc %d out %llu\n",
                    cases[i].in, rc, (unsigned long long)out, cases[i].rc,
                    (unsigned long long)cases[i].want);
            CHECK(0);
        }
    }
}

/* test_config_parse_bool - yes/no, true/false, on/off, 1/0; anything else is refused. */
static void
test_config_parse_bool(void)
{
    static const struct {
        const char *in;
        int         rc;
        int         want;
    } cases[] = {
        { "yes", 0, 1 },
        { "no", 0, 0 },
        { "true", 0, 1 },
        { "false", 0, 0 },
        /* Also accepted by config.c: on/off, 1/0, any case. */
        { "on", 0, 1 },
        { "off", 0, 0 },
        { "1", 0, 1 },
        { "0", 0, 0 },
        { "YES", 0, 1 },
        { "False", 0, 0 },
        { "", -1, 0 },
        { "maybe", -1, 0 },
        { "yess", -1, 0 },
        { "ye", -1, 0 },
        { "2", -1, 0 },
        { "-1", -1, 0 },
        { "yes no", -1, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int out = 7;
        int rc = config_parse_bool(cases[i].in, &out);

        if (rc != cases[i].rc || (rc == 0 && out != cases[i].want)) {
            fprintf(stderr, "  bool \"%s\": rc %d out %d, want rc %d out %d\n", cases[i].in,
                    rc, out, cases[i].rc, cases[i].want);
            CHECK(0);
        }
    }
}

int
main(void)
{
    TEST_RUN(test_config_defaults);
    TEST_RUN(test_config_sizes);
    TEST_RUN(test_config_times);
    TEST_RUN(test_config_lists);
    TEST_RUN(test_config_syntax);
    TEST_RUN(test_config_continuation);
    TEST_RUN(test_config_errors);
    TEST_RUN(test_config_missing_file);
    TEST_RUN(test_config_err_truncated);
    TEST_RUN(test_config_paths);
    TEST_RUN(test_config_relative_dir);
    TEST_RUN(test_config_dir_from);
    TEST_RUN(test_config_dump_keys);
    TEST_RUN(test_config_parse_size);
    TEST_RUN(test_config_parse_time);
    TEST_RUN(test_config_parse_bool);
    TEST_END();
}
