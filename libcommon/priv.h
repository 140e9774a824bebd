/* priv - dropping privileges for good.
 *
 * A daemon opens what it needs first (listening sockets, keys, maps), then calls
 * priv_drop(): chroot + chdir("/"), setgroups + setresgid + setresuid, and
 * PR_SET_NO_NEW_PRIVS, each checked and fatal on failure. When not started as root the
 * drop is skipped with a warning, so an ordinary user can run a test instance. */
#ifndef POSTERN_PRIV_H
#define POSTERN_PRIV_H

#include <sys/types.h>

/* priv_lookup - a user's uid and primary gid; -1 if there is no such user. */
int  priv_lookup(const char *user, uid_t *uid, gid_t *gid);
/* priv_drop - chroot to dir (NULL: no chroot) and become user (NULL: stay). Fatal on error. */
void priv_drop(const char *user, const char *chroot_dir);
int  priv_is_root(void);

#endif
