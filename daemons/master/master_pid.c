/* master_pid - the pid file <queue_directory>/pid/master.pid.
 *
 * The file holds the master's pid in decimal and a newline; master keeps it open with an
 * exclusive flock() for its whole life. The lock, not the text, says whether a master runs:
 * it vanishes with the process however it dies, so a pid file left by a master that was
 * killed is stale and simply taken over, and a second master refuses to start. The CLI
 * tests the same lock (postern status/stop). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include "log.h"
#include "master.h"

int
master_pid_lock(const char *path, pid_t *holder)
{
    char    text[32];
    ssize_t n;
    int     fd;

    *holder = -1;
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) == -1)
        fatal("open %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return fd;
    if (errno != EWOULDBLOCK)
        fatal("flock %s", path);
    n = pread(fd, text, sizeof(text) - 1, 0);
    if (n > 0) {
        text[n] = '\0';
        *holder = (pid_t)strtol(text, NULL, 10);     /* for the message only */
    }
    close(fd);
    errno = EEXIST;
    return -1;
}

void
master_pid_write(int fd, const char *path)
{
    char text[32];
    int  len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());

    if (ftruncate(fd, 0) == -1)
        fatal("truncate %s", path);
    if (pwrite(fd, text, (size_t)len, 0) != len)
        fatal("write %s", path);
}

void
master_pid_remove(int *fd, const char *path)
{
    if (*fd < 0)
        return;
    if (unlink(path) == -1)
        log_warn("unlink %s", path);
    close(*fd);
    *fd = -1;
}
