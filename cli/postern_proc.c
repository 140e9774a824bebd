/* postern_proc - the pid file and /proc, as `postern status`, `stop` and `start` read them.
 *
 * master keeps an exclusive flock() on its pid file for as long as it lives, so "is a
 * master running" is "can I not take a shared lock on the file", which stays right after a
 * kill -9 (the lock goes with the process) and for a zombie master. Child daemons are found by
 * their parent pid in /proc/PID/stat. The text parsers are pure and unit-tested
 * (tests/unit/postern_proc_test.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "buf.h"
#include "postern.h"

pid_t
postern_pid_parse(const char *text)
{
    long long v = 0;
    const char *p = text;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > INT_MAX)
            return -1;
    }
    if (*p == '\n')
        p++;
    if (*p != '\0' || v <= 0)
        return -1;
    return (pid_t)v;
}

int
postern_pid_read(const char *path, pid_t *pid)
{
    char    text[32];
    ssize_t n;
    int     fd, held;

    *pid = -1;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
        return errno == ENOENT ? 0 : -1;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        held = 0;                   /* nobody holds it: stale */
        flock(fd, LOCK_UN);
    } else if (errno == EWOULDBLOCK) {
        held = 1;
    } else {
        close(fd);
        return -1;
    }
    n = pread(fd, text, sizeof(text) - 1, 0);
    close(fd);
    if (n > 0) {
        text[n] = '\0';
        *pid = postern_pid_parse(text);
    }
    /* A master that has the lock but has not written its pid yet is starting: report it as
     * not running so callers keep waiting. */
    return held && *pid > 0 ? 1 : 0;
}

int
postern_proc_parse_stat(const char *text, pid_t *ppid, uint64_t *start_ticks)
{
    const char         *p = strrchr(text, ')');
    unsigned long long  start = 0;
    long                parent = 0;
    int                 field;

    /* comm may hold spaces and parentheses: the fields start after the last ')'. */
    if (p == NULL || p[1] != ' ')
        return -1;
    p += 2;
    /* Fields from 3 (state): 4 is ppid, 22 is starttime. */
    for (field = 3; field <= 22 && *p; field++) {
        char *end;

        if (field == 4)
            parent = strtol(p, &end, 10);
        else if (field == 22)
            start = strtoull(p, &end, 10);
        else
            end = strchr(p, ' ');
        if (end == NULL || end == p)
            return -1;
        p = *end == ' ' ? end + 1 : end;
    }
    if (field != 23 || parent < 0)
        return -1;
    *ppid = (pid_t)parent;
    *start_ticks = start;
    return 0;
}

void
postern_proc_parse_cmdline(const char *bytes, size_t len, char *name, size_t namelen,
                           long *slot)
{
    const char *p = bytes, *end = bytes + len, *arg0, *slash;
    int         first = 1, want_slot = 0;

    *slot = -1;
    name[0] = '\0';
    while (p < end) {
        const char *nul = memchr(p, '\0', (size_t)(end - p));
        size_t      alen = nul ? (size_t)(nul - p) : (size_t)(end - p);

        if (first) {
            arg0 = p;
            slash = memrchr(arg0, '/', alen);
            if (slash != NULL) {
                alen -= (size_t)(slash + 1 - arg0);
                arg0 = slash + 1;
            }
            snprintf(name, namelen, "%.*s", (int)alen, arg0);
            first = 0;
        } else if (want_slot) {
            char *e;
            long  v = strtol(p, &e, 10);

            if (e != p && (size_t)(e - p) == alen && v >= 0)
                *slot = v;
            want_slot = 0;
        } else if (alen == 2 && p[0] == '-' && p[1] == 'i') {
            want_slot = 1;
        }
        p += alen + 1;
    }
}

/* postern_proc_file - read a small /proc file into b (reset first); -1 if unreadable. */
static int
postern_proc_file(pid_t pid, const char *what, struct buf *b)
{
    char    path[64];
    ssize_t n;
    int     fd;

    buf_reset(b);
    snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, what);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
        return -1;
    for (;;) {
        void *room = buf_reserve(b, 4096);

        if ((n = read(fd, room, 4096)) <= 0)
            break;
        buf_commit(b, (size_t)n);
        if (b->len > 65536)
            break;
    }
    close(fd);
    return n < 0 ? -1 : 0;
}

int
postern_proc_read(pid_t pid, struct postern_proc *pr)
{
    struct buf  b;
    const char *uid;
    int         rc = -1;

    memset(pr, 0, sizeof(*pr));
    pr->pid = pid;
    buf_init(&b, 1024);
    if (postern_proc_file(pid, "stat", &b) == -1 ||
        postern_proc_parse_stat(buf_cstr(&b), &pr->ppid, &pr->start_ticks) == -1)
        goto out;
    if (postern_proc_file(pid, "status", &b) == -1 ||
        (uid = strstr(buf_cstr(&b), "\nUid:")) == NULL)
        goto out;
    {
        unsigned long ruid, euid;

        if (sscanf(uid, "\nUid: %lu %lu", &ruid, &euid) != 2)
            goto out;
        pr->uid = (uid_t)euid;
    }
    if (postern_proc_file(pid, "cmdline", &b) == -1)
        goto out;
    postern_proc_parse_cmdline(b.data, b.len, pr->name, sizeof(pr->name), &pr->slot);
    rc = 0;
out:
    buf_release(&b);
    return rc;
}

/* postern_proc_cmp - order by pid. */
static int
postern_proc_cmp(const void *a, const void *b)
{
    const struct postern_proc *x = a, *y = b;

    return (x->pid > y->pid) - (x->pid < y->pid);
}

struct postern_proc *
postern_proc_children(pid_t ppid, size_t *n)
{
    struct postern_proc *v = NULL;
    size_t               cap = 0;
    struct dirent       *de;
    DIR                 *d;

    *n = 0;
    if ((d = opendir("/proc")) == NULL)
        return NULL;
    while ((de = readdir(d)) != NULL) {
        struct postern_proc pr;
        char               *end;
        long                pid = strtol(de->d_name, &end, 10);

        if (*end != '\0' || pid <= 0 || postern_proc_read((pid_t)pid, &pr) == -1 ||
            pr.ppid != ppid)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[(*n)++] = pr;
    }
    closedir(d);
    if (*n > 1)
        qsort(v, *n, sizeof(*v), postern_proc_cmp);
    return v;
}

uint64_t
postern_proc_uptime(const struct postern_proc *pr)
{
    FILE  *f = fopen("/proc/uptime", "re");
    double up = 0;
    long   hz = sysconf(_SC_CLK_TCK);
    double started;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%lf", &up) != 1)
        up = 0;
    fclose(f);
    if (hz <= 0)
        return 0;
    started = (double)pr->start_ticks / (double)hz;
    return up > started ? (uint64_t)(up - started) : 0;
}

void
postern_fmt_duration(uint64_t s, char *out, size_t outlen)
{
    unsigned long long secs = s;

    if (secs < 60)
        snprintf(out, outlen, "%llus", secs);
    else if (secs < 3600)
        snprintf(out, outlen, "%llum%02llus", secs / 60, secs % 60);
    else if (secs < 86400)
        snprintf(out, outlen, "%lluh%02llum", secs / 3600, secs % 3600 / 60);
    else
        snprintf(out, outlen, "%llud%02lluh", secs / 86400, secs % 86400 / 3600);
}
