/* postern_proc_test - the CLI's pid file and /proc parsers (cli/postern_proc.c, included
 * here since unit tests link only the libraries). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "../../cli/postern_proc.c"
#include "test.h"

/* test_postern_pid_parse - a pid file holds digits and one optional newline. */
static void
test_postern_pid_parse(void)
{
    static const struct {
        const char *text;
        pid_t       want;
    } cases[] = {
        { "123\n", 123 }, { "1", 1 }, { "2147483647\n", 2147483647 }, { "", -1 },
        { "\n", -1 }, { "0\n", -1 }, { "-5\n", -1 }, { "12a\n", -1 }, { "12\n\n", -1 },
        { " 12\n", -1 }, { "2147483648\n", -1 }, { "99999999999999999999\n", -1 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK(postern_pid_parse(cases[i].text) == cases[i].want);
}

/* test_postern_pid_read - no file, a stale file, a locked file. */
static void
test_postern_pid_read(void)
{
    char  path[] = "/tmp/postern_proc_test.XXXXXX";
    int   fd = mkstemp(path);
    pid_t pid;

    CHECK(fd >= 0);
    CHECK(write(fd, "4242\n", 5) == 5);
    CHECK(postern_pid_read(path, &pid) == 0);          /* nobody holds the lock */
    CHECK(pid == 4242);
    CHECK(flock(fd, LOCK_EX) == 0);
    CHECK(postern_pid_read(path, &pid) == 1 && pid == 4242);
    CHECK(ftruncate(fd, 0) == 0);                      /* locked, pid not written yet */
    CHECK(postern_pid_read(path, &pid) == 0);
    close(fd);
    unlink(path);
    CHECK(postern_pid_read(path, &pid) == 0 && pid == -1);
}

/* test_postern_proc_parse_stat - ppid and start time, with hostile comm fields. */
static void
test_postern_proc_parse_stat(void)
{
    static const struct {
        const char *text;
        int         rc;
        pid_t       ppid;
        uint64_t    start;
    } cases[] = {
        { "42 (smtpd) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200",
          0, 7, 987654 },
        { "42 (a) b) c) S 9 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 1 2", 0, 9, 55 },
        { "42 (x y) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551615 1",
          0, 1, 18446744073709551615ULL },
        { "42 (short) S 7 42", -1, 0, 0 },
        { "42 smtpd S 7", -1, 0, 0 },
        { "", -1, 0, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pid_t    ppid = -1;
        uint64_t start = 0;
        int      rc = postern_proc_parse_stat(cases[i].text, &ppid, &start);

        CHECK(rc == cases[i].rc);
        if (rc == 0)
            CHECK(ppid == cases[i].ppid && start == cases[i].start);
    }
}

/* test_postern_proc_parse_cmdline - argv[0]'s basename and the -i slot. */
static void
test_postern_proc_parse_cmdline(void)
{
    static const struct {
        const char *bytes;
        size_t      len;
        const char *name;
        long        slot;
    } cases[] = {
#define CMDLINE(s) s, sizeof(s) - 1
        { CMDLINE("/usr/libexec/postern/smtpd\0-c\0/etc/postern\0-i\0003\0-d"), "smtpd", 3 },
        { CMDLINE("qmgr\0-c\0/x\0-i\0000\0"), "qmgr", 0 },
        { CMDLINE("local\0-i"), "local", -1 },
        { CMDLINE("local\0-i\0x1\0"), "local", -1 },
        { CMDLINE("master\0-c\0conf\0"), "master", -1 },
        { CMDLINE(""), "", -1 },
#undef CMDLINE
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[64];
        long slot = 99;

        postern_proc_parse_cmdline(cases[i].bytes, cases[i].len, name, sizeof(name), &slot);
        CHECK_STR(name, cases[i].name);
        CHECK(slot == cases[i].slot);
    }
}

/* test_postern_fmt_duration - compact uptimes. */
static void
test_postern_fmt_duration(void)
{
    static const struct {
        uint64_t    secs;
        const char *want;
    } cases[] = {
        { 0, "0s" }, { 59, "59s" }, { 60, "1m00s" }, { 302, "5m02s" }, { 3599, "59m59s" },
        { 3600, "1h00m" }, { 11100, "3h05m" }, { 86399, "23h59m" }, { 86400, "1d00h" },
        { 183600, "2d03h" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[32];

        postern_fmt_duration(cases[i].secs, out, sizeof(out));
        CHECK_STR(out, cases[i].want);
    }
}

/* test_postern_proc_read_self - this process, as /proc shows it. */
static void
test_postern_proc_read_self(void)
{
    struct postern_proc pr;

    CHECK(postern_proc_read(getpid(), &pr) == 0);
    CHECK(pr.ppid == getppid());
    CHECK(pr.uid == geteuid());
    CHECK_STR(pr.name, "postern_proc_test");
    CHECK(pr.slot == -1);
}

int
main(void)
{
    TEST_RUN(test_postern_pid_parse);
    TEST_RUN(test_postern_pid_read);
    TEST_RUN(test_postern_proc_parse_stat);
    TEST_RUN(test_postern_proc_parse_cmdline);
    TEST_RUN(test_postern_fmt_duration);
    TEST_RUN(test_postern_proc_read_self);
    TEST_END();
}
