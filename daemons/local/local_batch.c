/* local_batch - group commit of Maildir deliveries.
 *
 * See local_batch.h. The batch is a list of jobs whose files are written into tmp/ but not
 * flushed. local_batch_flush() takes the whole list and runs it through four steps; a job
 * that fails a step gets a temporary result, its files are removed, and it skips the rest:
 *
 *   1. data: one syncfs(2) per file system, through the descriptor of the first file of the
 *      batch on it. That descriptor was opened before any file of the batch on that file
 *      system was written, so syncfs reports every write-back error since (Linux 5.8+ keep a
 *      per-superblock error sequence and sample it at open). If syncfs fails, or the kernel
 *      is older, each file is fsync'd through its own descriptor, which reports its own
 *      errors whatever syncfs consumed. Then each file is closed.
 *   2. link: each file gets its name in new/ (local_maildir_link).
 *   3. names: one fsync per distinct new/ directory. Measured here (ext4 on virtio, batches
 *      of ten 1 KB files linked into one new/): fsync of new/ 0.52 ms mean (p90 0.68)
 *      against 0.72 ms (p90 1.60) for a second syncfs, and 1.24 against 1.65 ms mean while
 *      another process writes files, because syncfs also writes back whatever else is dirty
 *      on the file system (queue bodies, other users' files). Batches touch few Maildirs,
 *      and ext4 commits their fsyncs in one journal transaction anyway.
 *   4. answer: the tmp/ names are removed and every job is answered, failed ones included.
 *
 * Nothing is answered OK before its data and its new/ entry are durable. All four steps
 * run as the mailbox owner. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "ipc_msg.h"
#include "local.h"
#include "local_batch.h"
#include "local_maildir.h"
#include "log.h"

struct local_batch_stats local_batch_stats;

static struct local_job *local_batch_head, *local_batch_tail;
static size_t            local_batch_n;
static int               local_batch_syncfs_ok;   /* syncfs reports write-back errors */

/* local_batch_kernel_ok - does this kernel release (uname -r) report write-back errors
 * through syncfs? Linux 5.8 and later do. */
static int
local_batch_kernel_ok(const char *release)
{
    unsigned long major, minor;
    char         *end;

    major = strtoul(release, &end, 10);
    if (end == release || *end != '.')
        return 0;
    minor = strtoul(end + 1, &end, 10);
    return major > 5 || (major == 5 && minor >= 8);
}

/* local_batch_init - choose syncfs or per-file fsync for the data step. */
void
local_batch_init(void)
{
    struct utsname u;

    local_batch_syncfs_ok = uname(&u) == 0 && local_batch_kernel_ok(u.release);
    if (local_batch_syncfs_ok)
        log_debug("maildir sync: one syncfs per file system per batch (kernel %s)",
                  u.release);
    else
        log_info("maildir sync: per file (kernel %s does not report syncfs errors)",
                 u.release);
}

/* local_batch_add - append job to the batch. */
void
local_batch_add(struct local_job *job)
{
    job->next = NULL;
    job->ok = 1;
    if (local_batch_tail != NULL)
        local_batch_tail->next = job;
    else
        local_batch_head = job;
    local_batch_tail = job;
    local_batch_n++;
}

/* local_batch_count - jobs waiting. */
size_t
local_batch_count(void)
{
    return local_batch_n;
}

/* local_batch_fail - job failed a step (res already says why): remove its files. */
static void
local_batch_fail(struct local_job *job)
{
    local_maildir_discard(&job->file, job->qid);
    job->ok = 0;
}

/* local_batch_sync_data - step 1: every file's data durable, then closed. */
static void
local_batch_sync_data(struct local_job *list)
{
    struct local_job *j, *k;

    for (j = list; j != NULL; j = j->next)
        j->done = 0;
    for (j = list; j != NULL; j = j->next) {
        int rc = -1;

        if (!j->ok || j->done)
            continue;
        if (local_batch_syncfs_ok) {
            if ((rc = syncfs(j->file.fd)) == 0) {
                local_batch_stats.syncfs++;
            } else {
                log_warn("%s: syncfs %s (falling back to fsync per file)", j->qid,
                         j->file.tmp);
                local_batch_stats.syncfs_failed++;
            }
        }
        for (k = j; k != NULL; k = k->next) {
            if (!k->ok || k->done || k->file.dev != j->file.dev)
                continue;
            k->done = 1;
            if (rc == -1) {
                local_batch_stats.file_fsyncs++;
                if (fsync(k->file.fd) == -1) {
                    local_result_errno(&k->res, errno, "fsync %s", k->file.tmp);
                    local_batch_fail(k);
                    continue;
                }
            }
            if (local_maildir_close(&k->file, &k->res) == -1)
                local_batch_fail(k);
        }
    }
}

/* local_batch_link - step 2: every durable file into its new/. */
static void
local_batch_link(struct local_job *list)
{
    for (struct local_job *j = list; j != NULL; j = j->next)
        if (j->ok && local_maildir_link(&j->file, &j->res) == -1)
            local_batch_fail(j);
}

/* local_batch_sync_names - step 3: one fsync per distinct new/ directory. */
static void
local_batch_sync_names(struct local_job *list)
{
    struct local_job *j, *k;

    for (j = list; j != NULL; j = j->next)
        j->done = 0;
    for (j = list; j != NULL; j = j->next) {
        char *newdir;
        int   rc, err = 0;

        if (!j->ok || j->done)
            continue;
        newdir = local_maildir_newdir(&j->file);
        local_batch_stats.dir_fsyncs++;
        if ((rc = local_maildir_fsync_dir(newdir)) == -1)
            err = errno;
        for (k = j; k != NULL; k = k->next) {
            if (!k->ok || k->done || strcmp(k->file.dir, j->file.dir) != 0)
                continue;
            k->done = 1;
            if (rc == -1) {
                local_result_errno(&k->res, err, "fsync %s", newdir);
                local_batch_fail(k);
            }
        }
        free(newdir);
    }
}

/* local_batch_flush - run the batch through the four steps and answer every job. */
void
local_batch_flush(void)
{
    struct local_job *list = local_batch_head, *j, *next;

    if (list == NULL)
        return;
    /* Detach first: answering may not add to this batch. */
    local_batch_head = local_batch_tail = NULL;
    local_batch_stats.batches++;
    local_batch_stats.messages += local_batch_n;
    log_debug("maildir batch: %zu deliveries", local_batch_n);
    local_batch_n = 0;

    local_priv_enter();
    local_batch_sync_data(list);
    local_batch_link(list);
    local_batch_sync_names(list);
    for (j = list; j != NULL; j = j->next) {
        if (!j->ok)
            continue;
        log_debug("%s: file=%s", j->qid, j->file.newp);
        /* new/ holds the name durably: the tmp/ name may go. */
        local_maildir_finish(&j->file, j->qid);
        local_result_set(&j->res, IPC_DELIV_OK, "2.0.0", "delivered to maildir");
    }
    local_priv_leave();
    for (j = list; j != NULL; j = next) {
        next = j->next;
        local_job_done(j);
    }
}

/* local_batch_drop - discard the waiting jobs of conn; qmgr defers them. */
void
local_batch_drop(struct ipc_conn *conn)
{
    struct local_job *j, *next, *keep = NULL, *keep_tail = NULL, *gone = NULL;

    for (j = local_batch_head; j != NULL; j = next) {
        next = j->next;
        j->next = NULL;
        if (j->conn == conn) {
            j->next = gone;
            gone = j;
            local_batch_n--;
            continue;
        }
        if (keep_tail != NULL)
            keep_tail->next = j;
        else
            keep = j;
        keep_tail = j;
    }
    local_batch_head = keep;
    local_batch_tail = keep_tail;
    if (gone == NULL)
        return;
    local_priv_enter();
    for (j = gone; j != NULL; j = j->next) {
        local_result_set(&j->res, IPC_DELIV_TEMP, "4.3.0", "qmgr connection lost");
        local_maildir_discard(&j->file, j->qid);
    }
    local_priv_leave();
    for (j = gone; j != NULL; j = next) {
        next = j->next;
        j->conn = NULL;
        local_job_done(j);
    }
}
