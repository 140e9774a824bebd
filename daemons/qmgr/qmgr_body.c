/* qmgr_body - spool files: body/XX/<qid>, one per message, owned by qmgr.
 *
 * See qmgr_body.h. The directories body/XX/ are created on demand with mode 0700. The
 * sweep walks every body/XX/ and asks the store whether each queue ID still has an
 * envelope; a young file without one may belong to an smtpd session still writing into a
 * descriptor from a previous qmgr, so only files older than the given age go. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qid.h"
#include "qmgr_body.h"
#include "qmgr_store.h"

#define QMGR_BODY_DIR "body"

/* qmgr_body_path - body/XX/<qid> into out, XX from qid_dir() (fast-changing time digits). */
static void
qmgr_body_path(char *out, size_t len, const char *qid)
{
    char dir[3] = "00";

    if (qid_valid(qid))
        qid_dir(qid, dir);
    snprintf(out, len, QMGR_BODY_DIR "/%s/%s", dir, qid);
}

/* qmgr_body_fsync_dir - fsync one directory. */
static int
qmgr_body_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

    if (fd == -1) {
        log_warn("open %s", dir);
        return -1;
    }
    if ((rc = fsync(fd)) == -1)
        log_warn("fsync %s", dir);
    close(fd);
    return rc;
}

/* qmgr_body_create - create a new body file. */
int
qmgr_body_create(const char *qid)
{
    char path[64], dir[32];
    int  fd;

    qmgr_body_path(path, sizeof(path), qid);
    fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd == -1 && errno == ENOENT) {
        snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(path, '/') - path), path);
        if (mkdir(QMGR_BODY_DIR, 0700) == -1 && errno != EEXIST)
            log_warn("mkdir %s", QMGR_BODY_DIR);
        if (mkdir(dir, 0700) == 0)
            qmgr_body_fsync_dir(QMGR_BODY_DIR);     /* the new body/XX itself must last */
        else if (errno != EEXIST) {
            log_warn("mkdir %s", dir);
            return -1;
        }
        fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    }
    if (fd == -1)
        log_warn("%s: create %s", qid, path);
    return fd;
}

/* qmgr_body_sync_dirs - make the names of new body files durable before the commit. */
int
qmgr_body_sync_dirs(const char *const *qids, size_t n)
{
    char   done[64][3];
    size_t ndone = 0, i, k;
    int    rc = 0;

    for (i = 0; i < n; i++) {
        char xx[3] = "00";
        char dir[32];

        if (qid_valid(qids[i]))
            qid_dir(qids[i], xx);
        for (k = 0; k < ndone && memcmp(done[k], xx, 2) != 0; k++)
            ;
        if (k < ndone)
            continue;
        snprintf(dir, sizeof(dir), QMGR_BODY_DIR "/%s", xx);
        if (qmgr_body_fsync_dir(dir) == -1)
            rc = -1;
        if (ndone < 64)
            memcpy(done[ndone++], xx, 3);
    }
    return rc;
}

/* qmgr_body_open_read - a read descriptor for a delivery agent. */
int
qmgr_body_open_read(const char *qid)
{
    char path[64];
    int  fd;

    qmgr_body_path(path, sizeof(path), qid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
        log_warn("%s: open %s", qid, path);
    return fd;
}

/* qmgr_body_unlink - remove a body file. */
int
qmgr_body_unlink(const char *qid)
{
    char path[64];

    qmgr_body_path(path, sizeof(path), qid);
    if (unlink(path) == -1 && errno != ENOENT) {
        log_warn("%s: unlink %s", qid, path);
        return -1;
    }
    return 0;
}

/* qmgr_body_sweep_dir - sweep one body/XX directory. */
static size_t
qmgr_body_sweep_dir(struct qmgr_store *store, const char *dir, time_t cutoff)
{
    DIR           *d = opendir(dir);
    struct dirent *de;
    struct stat    st;
    char           path[600];
    size_t         removed = 0;

    if (d == NULL) {
        log_warn("opendir %s", dir);
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        if (!qid_valid(de->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (lstat(path, &st) == -1 || !S_ISREG(st.st_mode) || st.st_mtime > cutoff)
            continue;
        if (qmgr_store_has_msg(store, de->d_name) != 0)
            continue;
        if (unlink(path) == -1) {
            log_warn("unlink %s", path);
            continue;
        }
        log_info("%s: removed body without envelope, size=%lld", de->d_name,
                 (long long)st.st_size);
        removed++;
    }
    closedir(d);
    return removed;
}

/* qmgr_body_sweep - remove old body files that no envelope refers to. */
size_t
qmgr_body_sweep(struct qmgr_store *store, uint64_t min_age)
{
    DIR           *d = opendir(QMGR_BODY_DIR);
    struct dirent *de;
    char           dir[300];
    time_t         cutoff = time(NULL) - (time_t)min_age;
    size_t         removed = 0;

    if (d == NULL) {
        if (errno != ENOENT)
            log_warn("opendir %s", QMGR_BODY_DIR);
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strlen(de->d_name) != 2)
            continue;
        snprintf(dir, sizeof(dir), QMGR_BODY_DIR "/%s", de->d_name);
        removed += qmgr_body_sweep_dir(store, dir, cutoff);
    }
    closedir(d);
    return removed;
}
