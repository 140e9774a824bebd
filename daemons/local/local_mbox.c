/* local_mbox - deliver one message into an mbox file.
 *
 * See local_mbox.h. The file must be a regular file with one link, opened without following
 * a symbolic link, so a mailbox owner cannot point the delivery at another file. The lock is
 * polled (F_SETLK every 50 ms) rather than waited for, so a reader that holds it forever
 * costs one temporary failure, not a stuck agent. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ipc_msg.h"
#include "local.h"
#include "local_body.h"
#include "local_mbox.h"
#include "log.h"

/* local_mbox_lock - take an exclusive fcntl lock on the whole file, polling. */
static int
local_mbox_lock(int fd)
{
    struct flock    l;
    struct timespec pause = { 0, 50 * 1000 * 1000 };

    for (int i = 0; i < LOCAL_MBOX_LOCK_WAIT * 20; i++) {
        memset(&l, 0, sizeof(l));
        l.l_type = F_WRLCK;
        l.l_whence = SEEK_SET;
        if (fcntl(fd, F_SETLK, &l) == 0)
            return 0;
        if (errno != EACCES && errno != EAGAIN && errno != EINTR)
            return -1;
        nanosleep(&pause, NULL);
    }
    errno = EAGAIN;
    return -1;
}

/* local_mbox_from_line - "From sender date\n", the envelope line that starts a message. */
static char *
local_mbox_from_line(const char *sender)
{
    char   *s = local_body_header_value(*sender ? sender : "MAILER-DAEMON"), *line;
    char    date[64];
    time_t  now = time(NULL);
    struct tm tm;

    for (char *p = s; *p; p++)
        if (*p == ' ' || *p == '\t')
            *p = '_';
    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
    line = xasprintf("From %s  %s\n", s, date);
    free(s);
    return line;
}

/* local_mbox_deliver - lock, append, fsync; truncate back on failure. */
int
local_mbox_deliver(const char *path, const struct local_msg *msg, struct local_result *res)
{
    struct stat st;
    char       *from, *sender, *rcpt, *prefix;
    uint64_t    written;
    off_t       start;
    int         fd, rc = -1;

    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
    if (fd == -1) {
        local_result_errno(res, errno, "open mbox %s", path);
        return -1;
    }
    if (fstat(fd, &st) == -1) {
        local_result_errno(res, errno, "fstat %s", path);
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        local_result_set(res, IPC_DELIV_TEMP, "4.3.0",
                         "mbox %s is not a regular file with one link", path);
        close(fd);
        return -1;
    }
    if (local_mbox_lock(fd) == -1) {
        if (errno == EAGAIN)
            local_result_set(res, IPC_DELIV_TEMP, "4.2.0", "mbox %s is locked", path);
        else
            local_result_errno(res, errno, "lock %s", path);
        close(fd);
        return -1;
    }
    if ((start = lseek(fd, 0, SEEK_END)) == (off_t)-1) {
        local_result_errno(res, errno, "seek %s", path);
        close(fd);
        return -1;
    }
    from = local_mbox_from_line(msg->sender);
    sender = local_body_header_value(msg->sender);
    rcpt = local_body_header_value(msg->rcpt);
    prefix = xasprintf("%sReturn-Path: <%s>\nDelivered-To: %s\n", from, sender, rcpt);
    free(from);
    free(sender);
    free(rcpt);
    if (local_body_copy(msg, fd, prefix, LOCAL_BODY_MBOX, &written, res) == 0) {
        if (fsync(fd) == 0)
            rc = 0;
        else
            local_result_errno(res, errno, "fsync %s", path);
    }
    if (rc == -1) {
        /* Take back the partial message so the mbox stays well-formed. */
        if (ftruncate(fd, start) == -1 || fsync(fd) == -1)
            log_warn("%s: truncate %s back to %lld bytes", msg->qid, path, (long long)start);
    } else {
        local_result_set(res, IPC_DELIV_OK, "2.0.0", "delivered to mbox");
    }
    free(prefix);
    if (close(fd) == -1 && rc == 0) {
        log_warn("%s: close %s", msg->qid, path);
    }
    return rc;
}
