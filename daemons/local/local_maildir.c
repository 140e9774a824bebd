/* local_maildir - deliver one message into a Maildir.
 *
 * See local_maildir.h. The order of operations is what makes a delivery safe: the file is
 * complete and on disk before its name appears in new/, and new/ itself is on disk before
 * qmgr hears "delivered". A crash before that point leaves at most a file in tmp/ (mail
 * readers ignore tmp/ and clean it after 36 hours) and qmgr delivers again. A failure after
 * the link removes the new/ entry again, so a retry cannot leave two copies behind unless the
 * unlink fails too (then the recipient may see the message twice, never zero times). */
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
#include "local_maildir.h"
#include "log.h"

static unsigned long local_maildir_counter;

/* local_maildir_fsync_dir - make a directory's entries durable. -1 with errno set. */
static int
local_maildir_fsync_dir(const char *dir)
{
    int fd, saved;

    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
        return -1;
    if (fsync(fd) == -1) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return close(fd);
}

/* local_maildir_mkdir - mkdir path (0700) unless it exists; fsync its parent if it was made,
 * so the new directory survives a crash together with the mail put into it. */
static int
local_maildir_mkdir(char *path)
{
    char *slash;
    int   rc;

    if (mkdir(path, 0700) == -1)
        return errno == EEXIST ? 0 : -1;
    if ((slash = strrchr(path, '/')) == NULL)
        return local_maildir_fsync_dir(".");
    if (slash == path)
        return local_maildir_fsync_dir("/");
    *slash = '\0';
    rc = local_maildir_fsync_dir(path);
    *slash = '/';
    return rc;
}

/* local_maildir_create - create the Maildir dir, missing parents, and tmp/ new/ cur/.
 * -1 with errno set and the failing path in *failed (to free). */
static int
local_maildir_create(const char *dir, char **failed)
{
    static const char *const subdirs[] = { "tmp", "new", "cur" };
    char                    *p = xstrdup(dir);
    size_t                   len = strlen(p);

    while (len > 1 && p[len - 1] == '/')
        p[--len] = '\0';
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (local_maildir_mkdir(p) == -1) {
            *failed = p;
            return -1;
        }
        *s = '/';
    }
    if (local_maildir_mkdir(p) == -1) {
        *failed = p;
        return -1;
    }
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        char *sub = xasprintf("%s/%s", p, subdirs[i]);

        if (local_maildir_mkdir(sub) == -1) {
            free(p);
            *failed = sub;
            return -1;
        }
        free(sub);
    }
    free(p);
    return 0;
}

/* local_maildir_host - the host name as Maildir file names want it: '/' and ':' encoded. */
static char *
local_maildir_host(const char *host)
{
    struct buf b;
    char      *s;

    buf_init(&b, 64);
    for (const char *p = host; *p; p++) {
        if (*p == '/')
            buf_puts(&b, "\\057");
        else if (*p == ':')
            buf_puts(&b, "\\072");
        else
            buf_append(&b, p, 1);
    }
    s = xstrdup(buf_cstr(&b));
    buf_release(&b);
    return s;
}

/* local_maildir_open_tmp - create a new file in tmp/ with a unique name; creates the Maildir
 * if tmp/ is missing. The fd, or -1 with res filled in. */
static int
local_maildir_open_tmp(const char *dir, const char *host, char **name, char **tmp,
                       int *created, struct local_result *res)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        struct timespec ts;
        char           *failed;
        int             fd;

        clock_gettime(CLOCK_REALTIME, &ts);
        *name = xasprintf("%lld.M%ldP%ldQ%lu.%s", (long long)ts.tv_sec, ts.tv_nsec / 1000,
                          (long)getpid(), ++local_maildir_counter, host);
        *tmp = xasprintf("%stmp/%s", dir, *name);
        fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        if (errno == ENOENT && !*created) {
            *created = 1;
            if (local_maildir_create(dir, &failed) == -1) {
                local_result_errno(res, errno, "create maildir %s", failed);
                free(failed);
                return -1;
            }
        } else if (errno != EEXIST) {
            local_result_errno(res, errno, "create %s", *tmp);
            return -1;
        }
        free(*name);
        free(*tmp);
        *name = *tmp = NULL;
    }
    local_result_set(res, IPC_DELIV_TEMP, "4.3.0", "no unique file name in %stmp", dir);
    return -1;
}

/* local_maildir_link - put the finished tmp file into new/: link (*linked = 1; the caller
 * removes the tmp name once new/ is on disk), or rename where the file system has no hard
 * links. 0, or -1 with res filled in. */
static int
local_maildir_link(const char *dir, const char *tmp, const char *newp, int *created,
                   int *linked, struct local_result *res)
{
    char *failed;

    *linked = 0;
    for (;;) {
        if (link(tmp, newp) == 0) {
            *linked = 1;
            return 0;
        }
        if (errno == ENOENT && !*created) {
            /* tmp/ was there but new/ was not: complete the Maildir. */
            *created = 1;
            if (local_maildir_create(dir, &failed) == -1) {
                local_result_errno(res, errno, "create maildir %s", failed);
                free(failed);
                return -1;
            }
            continue;
        }
        if (errno == EPERM || errno == ENOSYS || errno == EOPNOTSUPP || errno == EMLINK) {
            if (rename(tmp, newp) == 0)
                return 0;
        }
        local_result_errno(res, errno, "move %s to %s", tmp, newp);
        return -1;
    }
}

/* local_maildir_deliver - write into tmp/, fsync, link into new/, fsync new/. */
int
local_maildir_deliver(const char *dir, const struct local_msg *msg, const char *host,
                      char *path, size_t pathlen, struct local_result *res)
{
    char     *hname = local_maildir_host(host), *name = NULL, *tmp = NULL, *newp = NULL;
    char     *newdir = NULL, *sender, *rcpt, *prefix;
    uint64_t  written;
    int       fd, created = 0, linked = 0, rc = -1;

    if ((fd = local_maildir_open_tmp(dir, hname, &name, &tmp, &created, res)) == -1) {
        free(hname);
        free(name);
        free(tmp);
        return -1;
    }
    sender = local_body_header_value(msg->sender);
    rcpt = local_body_header_value(msg->rcpt);
    prefix = xasprintf("Return-Path: <%s>\nDelivered-To: %s\n", sender, rcpt);
    free(sender);
    free(rcpt);
    if (local_body_copy(msg, fd, prefix, 0, &written, res) == -1)
        goto fail;
    if (fsync(fd) == -1) {
        local_result_errno(res, errno, "fsync %s", tmp);
        goto fail;
    }
    if (close(fd) == -1) {
        fd = -1;
        local_result_errno(res, errno, "close %s", tmp);
        goto fail;
    }
    fd = -1;
    newp = xasprintf("%snew/%s", dir, name);
    if (local_maildir_link(dir, tmp, newp, &created, &linked, res) == -1)
        goto fail;
    newdir = xasprintf("%snew", dir);
    if (local_maildir_fsync_dir(newdir) == -1) {
        local_result_errno(res, errno, "fsync %s", newdir);
        if (unlink(newp) == -1 && errno != ENOENT)
            log_warn("%s: unlink %s after a failed delivery", msg->qid, newp);
        goto fail;
    }
    /* Only now that new/ holds the name durably may the tmp/ name go. */
    if (linked && unlink(tmp) == -1)
        log_warn("%s: unlink %s", msg->qid, tmp);
    if (path != NULL && pathlen > 0)
        snprintf(path, pathlen, "%s", newp);
    local_result_set(res, IPC_DELIV_OK, "2.0.0", "delivered to maildir");
    rc = 0;
    goto out;

fail:
    if (fd != -1)
        close(fd);
    if (unlink(tmp) == -1 && errno != ENOENT)
        log_warn("%s: unlink %s after a failed delivery", msg->qid, tmp);
out:
    free(prefix);
    free(newdir);
    free(newp);
    free(tmp);
    free(name);
    free(hname);
    return rc;
}
