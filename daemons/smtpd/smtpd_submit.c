/* smtpd_submit - local submission on <queue_directory>/public/submit: who the peer is.
 *
 * `sendmail` speaks SMTP to smtpd over the UNIX socket master creates (service `submit`).
 * The kernel tells us the peer's uid (SO_PEERCRED); that uid's login name is the sender's
 * identity: the envelope sender becomes <name@myhostname> (as Postfix's myorigin default)
 * unless the peer is root or in admin_group, whose MAIL FROM is taken as given
 * (`sendmail -f`). Sessions on submit need no TLS or AUTH and may relay like mynetworks.
 *
 * Names are resolved here, not in master: smtpd is chrooted to an empty directory, where
 * NSS finds no passwd or group database, so smtpd_submit_load() reads the whole passwd
 * database (getpwent, the configured NSS sources) and admin_group (getgrnam: its gid and
 * members) into a table before the chroot. The table is rebuilt whenever smtpd starts,
 * which `postern reload` does, and master when /etc/passwd or /etc/group changes
 * (master_watch.c); a user created since then is refused with a temporary error (451)
 * that says so. Why not master: it would need a new message type to pass a
 * resolved identity with the descriptor, and a slow NSS source would stall master's loop
 * (doc/control.md); here it costs one smtpd's start-up. A huge directory (LDAP with
 * millions of entries) would make the table large: such sites can give submitters a local
 * passwd file. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "log.h"
#include "smtpd.h"

struct smtpd_submit_user {
    uid_t uid;
    gid_t gid;
    char *name;
    int   admin;
};

static struct smtpd_submit_user *smtpd_submit_users;
static size_t                    smtpd_submit_nusers;

/* smtpd_submit_cmp - order by uid for bsearch. */
static int
smtpd_submit_cmp(const void *a, const void *b)
{
    const struct smtpd_submit_user *x = a, *y = b;

    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* smtpd_submit_name_ok - a login name we can put into an address and Received: letters,
 * digits and . _ - only (anything else would need quoting). */
static int
smtpd_submit_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 64)
        return 0;
    for (const char *p = name; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return name[0] != '.' && name[n - 1] != '.' && strstr(name, "..") == NULL;
}

void
smtpd_submit_load(void)
{
    const char   *group = config_str(smtpd.cfg, "admin_group");
    struct group *gr = *group ? getgrnam(group) : NULL;
    gid_t         admin_gid = gr ? gr->gr_gid : (gid_t)-1;
    char        **members = NULL;
    size_t        nmembers = 0, cap = 0;
    struct passwd *pw;

    for (size_t i = 0; gr != NULL && gr->gr_mem[i] != NULL; i++)
        nmembers++;
    if (nmembers > 0) {
        members = xcalloc(nmembers, sizeof(*members));
        for (size_t i = 0; i < nmembers; i++)
            members[i] = xstrdup(gr->gr_mem[i]);
    }
    setpwent();
    while ((errno = 0, pw = getpwent()) != NULL) {
        struct smtpd_submit_user *u;

        if (!smtpd_submit_name_ok(pw->pw_name))
            continue;
        if (smtpd_submit_nusers == cap) {
            cap = cap ? cap * 2 : 64;
            smtpd_submit_users = xrealloc(smtpd_submit_users,
                                          cap * sizeof(*smtpd_submit_users));
        }
        u = &smtpd_submit_users[smtpd_submit_nusers++];
        u->uid = pw->pw_uid;
        u->gid = pw->pw_gid;
        u->name = xstrdup(pw->pw_name);
        u->admin = pw->pw_uid == 0 || (gr != NULL && pw->pw_gid == admin_gid);
        for (size_t i = 0; !u->admin && i < nmembers; i++)
            u->admin = strcmp(members[i], pw->pw_name) == 0;
    }
    endpwent();
    for (size_t i = 0; i < nmembers; i++)
        free(members[i]);
    free(members);
    qsort(smtpd_submit_users, smtpd_submit_nusers, sizeof(*smtpd_submit_users),
          smtpd_submit_cmp);
    /* passwd may list a uid twice: the first entry wins, as for getpwuid() */
    log_debug("submit: %zu users known, admin_group=%s%s", smtpd_submit_nusers, group,
              gr ? "" : " (no such group)");
}

void
smtpd_submit_free(void)
{
    for (size_t i = 0; i < smtpd_submit_nusers; i++)
        free(smtpd_submit_users[i].name);
    free(smtpd_submit_users);
    smtpd_submit_users = NULL;
    smtpd_submit_nusers = 0;
}

/* smtpd_submit_find - the table entry of uid (the first one), or NULL. */
static const struct smtpd_submit_user *
smtpd_submit_find(uid_t uid)
{
    struct smtpd_submit_user key = { .uid = uid };
    const struct smtpd_submit_user *u;

    u = bsearch(&key, smtpd_submit_users, smtpd_submit_nusers, sizeof(*smtpd_submit_users),
                smtpd_submit_cmp);
    while (u != NULL && u > smtpd_submit_users && (u - 1)->uid == uid)
        u--;
    return u;
}

int
smtpd_submit_peer(int fd, struct smtpd_session *s)
{
    struct ucred                    cred;
    socklen_t                       len = sizeof(cred);
    const struct smtpd_submit_user *u;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
        log_warn("submit: SO_PEERCRED");
        return -1;
    }
    s->local_uid = cred.uid;
    s->local_pid = cred.pid;
    if ((u = smtpd_submit_find(cred.uid)) == NULL) {
        log_warnx("submit: uid %lu (pid %ld) has no usable login name known to this smtpd "
                  "(users are read at start: postern reload)", (unsigned long)cred.uid,
                  (long)cred.pid);
        return -1;
    }
    snprintf(s->local_user, sizeof(s->local_user), "%s", u->name);
    s->local_admin = u->admin;
    return 0;
}
