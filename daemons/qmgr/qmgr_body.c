/* qmgr_body - spool files: body/XX/<qid>, one per message, owned by qmgr.
 *
 * See qmgr_body.h. The directories body/XX/ are created on demand with mode 0700. The
 * sweep walks every body/XX/ and asks the store whether each queue ID still has an
 * envelope; a young file without one may belong to an smtpd session still writing into a
 * descriptor from a previous qmgr, so only files older than the given age go.
 *
 * Group sync: one descriptor on body/, opened once, lets the group commit make every new
 * body of a batch durable (data and directory entries) with one syncfs(2) of the queue
 * filesystem, one device cache flush for the batch instead of one fdatasync per message.
 * syncfs reports writeback errors (to a descriptor opened before them) only since Linux
 * 5.8; on an older kernel the mode stays off and callers use fdatasync + directory fsync.
 *
 * The reaper: a worker thread that unlinks finished bodies, so that an unlink (a journal
 * handle, ~1 ms on a busy ext4) never holds up the event loop. It only ever calls unlink()
 * on paths the main thread handed it, after the transaction that removed the records has
 * committed; what it has not done when qmgr dies stays an orphan for the hourly sweep. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "buf.h"
#include "qid.h"
#include "qmgr_body.h"
#include "qmgr_store.h"

#define QMGR_BODY_DIR "body"

struct qmgr_body_stats qmgr_body_stats;

static int   qmgr_body_fs_fd = -1;      /* on body/, for syncfs; -1: group sync off */
static dev_t qmgr_body_fs_dev;

/* The reaper's queue: queue IDs to unlink, guarded by the mutex. */
static pthread_mutex_t qmgr_body_reap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  qmgr_body_reap_cv = PTHREAD_COND_INITIALIZER;
static char          (*qmgr_body_reap_q)[QID_SIZE];
static size_t          qmgr_body_reap_n, qmgr_body_reap_cap;
static int             qmgr_body_reap_stop_flag;
static int             qmgr_body_reap_running;
static pthread_t       qmgr_body_reap_thread;

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

/* qmgr_body_create - create a new body file; read-write, since smtpd's milters read the
 * message back and may rewrite its header section before the commit. */
int
qmgr_body_create(const char *qid)
{
    char path[64], dir[32];
    int  fd;

    qmgr_body_path(path, sizeof(path), qid);
    fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
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
        fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
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
            if (errno != ENOENT)        /* the reaper may have been first */
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

/* qmgr_body_kernel_ok - does this kernel release (uname -r) report writeback errors
 * through syncfs? Linux 5.8 and later do. */
int
qmgr_body_kernel_ok(const char *release)
{
    unsigned long major, minor;
    char         *end;

    major = strtoul(release, &end, 10);
    if (end == release || *end != '.')
        return 0;
    minor = strtoul(end + 1, &end, 10);
    return major > 5 || (major == 5 && minor >= 8);
}

/* qmgr_body_group_sync_init - open body/ for syncfs if the kernel reports its errors. */
int
qmgr_body_group_sync_init(void)
{
    struct utsname u;
    struct stat    st;
    int            fd;

    qmgr_body_group_sync_close();
    if (uname(&u) == -1 || !qmgr_body_kernel_ok(u.release)) {
        log_info("body sync: per file (kernel %s does not report syncfs errors)",
                 u.release);
        return -1;
    }
    if (mkdir(QMGR_BODY_DIR, 0700) == -1 && errno != EEXIST)
        log_warn("mkdir %s", QMGR_BODY_DIR);
    if ((fd = open(QMGR_BODY_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
        log_warn("body sync: per file: open %s", QMGR_BODY_DIR);
        return -1;
    }
    if (fstat(fd, &st) == -1) {
        log_warn("body sync: per file: fstat %s", QMGR_BODY_DIR);
        close(fd);
        return -1;
    }
    qmgr_body_fs_fd = fd;
    qmgr_body_fs_dev = st.st_dev;
    log_debug("body sync: one syncfs per group commit (kernel %s)", u.release);
    return 0;
}

/* qmgr_body_group_sync_close - back to per-file syncs. */
void
qmgr_body_group_sync_close(void)
{
    if (qmgr_body_fs_fd != -1)
        close(qmgr_body_fs_fd);
    qmgr_body_fs_fd = -1;
}

/* qmgr_body_group_sync_covers - would qmgr_body_group_sync() cover a file on device dev? */
int
qmgr_body_group_sync_covers(dev_t dev)
{
    return qmgr_body_fs_fd != -1 && dev == qmgr_body_fs_dev;
}

/* qmgr_body_group_sync - syncfs the queue filesystem: every body written so far, data and
 * names, is durable when it returns 0. */
int
qmgr_body_group_sync(void)
{
    if (qmgr_body_fs_fd == -1) {
        errno = ENOTSUP;
        return -1;
    }
    if (syncfs(qmgr_body_fs_fd) == -1) {
        log_warn("syncfs %s", QMGR_BODY_DIR);
        qmgr_body_stats.syncfs_failed++;
        return -1;
    }
    qmgr_body_stats.syncfs++;
    return 0;
}

/* qmgr_body_reap_main - the reaper thread: take the whole queue, unlink it, repeat; on stop,
 * finish what is queued first. */
static void *
qmgr_body_reap_main(void *arg)
{
    char (*q)[QID_SIZE];
    size_t n, i;

    (void)arg;
    for (;;) {
        pthread_mutex_lock(&qmgr_body_reap_mu);
        while (qmgr_body_reap_n == 0 && !qmgr_body_reap_stop_flag)
            pthread_cond_wait(&qmgr_body_reap_cv, &qmgr_body_reap_mu);
        if (qmgr_body_reap_n == 0) {
            pthread_mutex_unlock(&qmgr_body_reap_mu);
            return NULL;
        }
        q = qmgr_body_reap_q;
        n = qmgr_body_reap_n;
        qmgr_body_reap_q = NULL;
        qmgr_body_reap_n = qmgr_body_reap_cap = 0;
        pthread_mutex_unlock(&qmgr_body_reap_mu);
        for (i = 0; i < n; i++)
            qmgr_body_unlink(q[i]);
        free(q);
    }
}

/* qmgr_body_reap_start - start the reaper thread. */
int
qmgr_body_reap_start(void)
{
    sigset_t all, old;
    int      err;

    if (qmgr_body_reap_running)
        return 0;
    qmgr_body_reap_stop_flag = 0;
    /* Signals stay with the event loop's thread (its signalfd). */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    err = pthread_create(&qmgr_body_reap_thread, NULL, qmgr_body_reap_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        errno = err;
        log_warn("body reaper: pthread_create; unlinking in the event loop");
        return -1;
    }
    qmgr_body_reap_running = 1;
    return 0;
}

/* qmgr_body_unlink_later - hand a finished body to the reaper (or unlink it now if there
 * is none). */
void
qmgr_body_unlink_later(const char *qid)
{
    if (!qmgr_body_reap_running) {
        qmgr_body_unlink(qid);
        return;
    }
    pthread_mutex_lock(&qmgr_body_reap_mu);
    if (qmgr_body_reap_n == qmgr_body_reap_cap) {
        qmgr_body_reap_cap = qmgr_body_reap_cap ? qmgr_body_reap_cap * 2 : 256;
        qmgr_body_reap_q = xrealloc(qmgr_body_reap_q,
                                    qmgr_body_reap_cap * sizeof(*qmgr_body_reap_q));
    }
    snprintf(qmgr_body_reap_q[qmgr_body_reap_n++], QID_SIZE, "%s", qid);
    pthread_cond_signal(&qmgr_body_reap_cv);
    pthread_mutex_unlock(&qmgr_body_reap_mu);
    qmgr_body_stats.unlinked_later++;
}

/* qmgr_body_reap_stop - let the reaper finish its queue, then join it. */
void
qmgr_body_reap_stop(void)
{
    if (!qmgr_body_reap_running)
        return;
    pthread_mutex_lock(&qmgr_body_reap_mu);
    qmgr_body_reap_stop_flag = 1;
    pthread_cond_signal(&qmgr_body_reap_cv);
    pthread_mutex_unlock(&qmgr_body_reap_mu);
    pthread_join(qmgr_body_reap_thread, NULL);
    qmgr_body_reap_running = 0;
}

/* qmgr_body_verify_one - 1 if qid's body is there with the size its envelope records. */
static int
qmgr_body_verify_one(const char *qid, uint64_t size, off_t *have)
{
    char        path[300];
    struct stat st;

    qmgr_body_path(path, sizeof(path), qid);
    if (stat(path, &st) == -1) {
        *have = -1;
        return errno == ENOENT ? 0 : 1;     /* unreadable is not missing: keep it */
    }
    *have = st.st_size;
    return (uint64_t)st.st_size == size;
}

/* qmgr_body_verify - drop every message whose body file is missing or not the size its
 * envelope records. Such a message was never acknowledged: the group commit writes the
 * records and the bodies and makes both durable with one syncfs before anyone is told, so
 * a crash in between can leave records that point at a body the crash took back; the client
 * got no 250 and sends the message again. Returns how many were dropped. */
size_t
qmgr_body_verify(struct qmgr_store *store)
{
    char            qid[QID_SIZE], after[QID_SIZE] = "";
    struct qrec_msg m;
    size_t          dropped = 0;
    uint32_t        nrcpt;
    off_t           have;

    while (qmgr_store_next_msg(store, after, qid, &m) == 0) {
        memcpy(after, qid, QID_SIZE);
        if (!qmgr_body_verify_one(qid, m.size, &have)
            && qmgr_store_admin(store, qid, QMGR_STORE_DELETE, 0, &nrcpt) == 0) {
            log_warnx("%s: dropped: body %s (envelope says %llu bytes), never acknowledged",
                      qid, have < 0 ? "missing" : "short", (unsigned long long)m.size);
            (void)qmgr_body_unlink(qid);
            dropped++;
        }
        qrec_msg_clear(&m);
    }
    return dropped;
}
