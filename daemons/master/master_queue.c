/* master_queue - create the queue directory layout of doc/internals.md.
 *
 * master makes the directories before any daemon starts, so that qmgr, once chrooted to the
 * queue directory as queue_owner, finds db/ and body/ writable and nothing else. Existing
 * directories get their modes (and, as root, their owners) put right; a non-directory where a
 * directory belongs is fatal. The body/XX/ directories below body/ are qmgr's: it creates
 * each on demand (daemons/qmgr/qmgr_body.c). Called once at start-up; errors are fatal. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "priv.h"

/* master_queue_dir - make path a directory with this mode and, if chown_it, this owner. */
static void
master_queue_dir(const char *path, mode_t mode, int chown_it, uid_t uid, gid_t gid)
{
    struct stat st;

    if (mkdir(path, mode) == -1 && errno != EEXIST)
        fatal("mkdir %s", path);
    if (lstat(path, &st) == -1)
        fatal("stat %s", path);
    if (!S_ISDIR(st.st_mode))
        fatalx("%s: not a directory", path);
    if (chown_it && (st.st_uid != uid || st.st_gid != gid) && chown(path, uid, gid) == -1)
        fatal("chown %s", path);
    if ((st.st_mode & 07777) != mode && chmod(path, mode) == -1)
        fatal("chmod %s", path);
}

void
master_queue_layout(const struct config *cfg, int is_root)
{
    const char *qdir = config_path(cfg, "queue_directory");
    const char *owner = config_str(cfg, "queue_owner");
    char        path[4096];
    uid_t       quid = 0;
    gid_t       qgid = 0;

    if (is_root && priv_lookup(owner, &quid, &qgid) == -1)
        fatalx("queue_owner %s: no such user", owner);
    master_queue_dir(qdir, 0755, is_root, 0, 0);
    snprintf(path, sizeof(path), "%s/db", qdir);
    master_queue_dir(path, 0700, is_root, quid, qgid);
    snprintf(path, sizeof(path), "%s/pid", qdir);
    master_queue_dir(path, 0755, is_root, 0, 0);
    snprintf(path, sizeof(path), "%s/empty", qdir);
    master_queue_dir(path, 0555, is_root, 0, 0);
    snprintf(path, sizeof(path), "%s/body", qdir);
    master_queue_dir(path, 0700, is_root, quid, qgid);
    snprintf(path, sizeof(path), "%s/public", qdir);
    master_queue_dir(path, 0755, is_root, 0, 0);
}
