/* local_maildir - deliver messages into Maildirs, in stages that a batch can share.
 *
 * See local_maildir.h. The order of operations is what makes a delivery safe: the file is
 * complete and on disk before its name appears in new/, and new/ itself is on disk before
 * qmgr hears "delivered". The caller (local_batch) does the flushing between the stages, so
 * that one flush covers every file written in an event-loop turn. A crash before the end
 * leaves at most a file in tmp/ (mail readers ignore tmp/ and clean it after 36 hours) and
 * qmgr delivers again. A failure after the link removes the new/ entry again, so a retry
 * cannot leave two copies behind unless the unlink fails too (then the recipient may see the
 * message twice, never zero times). */
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

/* local_maildir_fsync_dir - make a directory's entries durable. */
int
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

/* local_maildir_move - put the finished tmp file into new/: link (*linked = 1; the caller
 * removes the tmp name once new/ is on disk), or rename where the file system has no hard
 * links. 0, or -1 with res filled in. */
static int
local_maildir_move(const char *dir, const char *tmp, const char *newp, int *created,
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

/* local_maildir_write - create tmp/<unique>, write headers and body; no flush. */
int
local_maildir_write(const char *dir, const struct local_msg *msg, const char *host,
                    struct local_maildir_file *f, struct local_result *res)
{
    char       *hname = local_maildir_host(host), *sender, *rcpt, *prefix;
    struct stat st;
    uint64_t    written;
    int         rc;

    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->dir = xstrdup(dir);
    f->fd = local_maildir_open_tmp(dir, hname, &f->name, &f->tmp, &f->created, res);
    free(hname);
    if (f->fd == -1) {
        local_maildir_free(f);
        return -1;
    }
    if (fstat(f->fd, &st) == -1) {
        local_result_errno(res, errno, "fstat %s", f->tmp);
        local_maildir_discard(f, msg->qid);
        return -1;
    }
    f->dev = st.st_dev;
    sender = local_body_header_value(msg->sender);
    rcpt = local_body_header_value(msg->rcpt);
    prefix = xasprintf("Return-Path: <%s>\nDelivered-To: %s\n", sender, rcpt);
    free(sender);
    free(rcpt);
    rc = local_body_copy(msg, f->fd, prefix, 0, &written, res);
    free(prefix);
    if (rc == -1) {
        local_maildir_discard(f, msg->qid);
        return -1;
    }
    return 0;
}

/* local_maildir_close - close the tmp file once its data is durable. */
int
local_maildir_close(struct local_maildir_file *f, struct local_result *res)
{
    int fd = f->fd;

    f->fd = -1;
    if (fd != -1 && close(fd) == -1) {
        local_result_errno(res, errno, "close %s", f->tmp);
        return -1;
    }
    return 0;
}

/* local_maildir_link - give the durable tmp file its name in new/. */
int
local_maildir_link(struct local_maildir_file *f, struct local_result *res)
{
    f->newp = xasprintf("%snew/%s", f->dir, f->name);
    if (local_maildir_move(f->dir, f->tmp, f->newp, &f->created, &f->linked, res) == -1) {
        free(f->newp);
        f->newp = NULL;
        return -1;
    }
    return 0;
}

/* local_maildir_newdir - the new/ directory of f's Maildir (to free). */
char *
local_maildir_newdir(const struct local_maildir_file *f)
{
    return xasprintf("%snew", f->dir);
}

/* local_maildir_finish - after new/ is durable: drop the tmp name, free f. */
void
local_maildir_finish(struct local_maildir_file *f, const char *qid)
{
    if (f->linked && unlink(f->tmp) == -1)
        log_warn("%s: unlink %s", qid, f->tmp);
    local_maildir_free(f);
}

/* local_maildir_discard - undo a delivery that will not be reported: new/ entry and tmp. */
void
local_maildir_discard(struct local_maildir_file *f, const char *qid)
{
    if (f->fd != -1)
        close(f->fd);
    f->fd = -1;
    if (f->newp != NULL && unlink(f->newp) == -1 && errno != ENOENT)
        log_warn("%s: unlink %s after a failed delivery", qid, f->newp);
    if (f->tmp != NULL && unlink(f->tmp) == -1 && errno != ENOENT)
        log_warn("%s: unlink %s after a failed delivery", qid, f->tmp);
    local_maildir_free(f);
}

/* local_maildir_free - release f's memory and descriptor; touches no file. */
void
local_maildir_free(struct local_maildir_file *f)
{
    if (f->fd != -1)
        close(f->fd);
    free(f->dir);
    free(f->name);
    free(f->tmp);
    free(f->newp);
    memset(f, 0, sizeof(*f));
    f->fd = -1;
}
