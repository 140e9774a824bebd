/* priv - dropping privileges for good.
 *
 * See priv.h. Order matters: chroot while still root, then groups, then gid, then uid
 * (after setresuid we could no longer change groups), then no-new-privs so nothing exec'd
 * later could regain them. Each step is checked; a half-dropped daemon must not run. */
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "priv.h"

int
priv_is_root(void)
{
    return geteuid() == 0;
}

int
priv_lookup(const char *user, uid_t *uid, gid_t *gid)
{
    struct passwd *pw = getpwnam(user);

    if (pw == NULL)
        return -1;
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

void
priv_drop(const char *user, const char *chroot_dir)
{
    uid_t uid;
    gid_t gid;

    if (!priv_is_root()) {
        log_debug("not root: running as uid %d without chroot", (int)getuid());
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
            fatal("prctl(PR_SET_NO_NEW_PRIVS)");
        return;
    }
    if (user && priv_lookup(user, &uid, &gid) == -1)
        fatalx("unknown user %s", user);
    if (chroot_dir && *chroot_dir) {
        if (chroot(chroot_dir) == -1)
            fatal("chroot %s", chroot_dir);
        if (chdir("/") == -1)
            fatal("chdir / in chroot %s", chroot_dir);
    }
    if (user) {
        if (setgroups(1, &gid) == -1)
            fatal("setgroups");
        if (setresgid(gid, gid, gid) == -1)
            fatal("setresgid %d", (int)gid);
        if (setresuid(uid, uid, uid) == -1)
            fatal("setresuid %d", (int)uid);
        if (geteuid() != uid || getegid() != gid)
            fatalx("privilege drop to %s did not take", user);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
        fatal("prctl(PR_SET_NO_NEW_PRIVS)");
}
