/* smtpd_login - smtpd_sender_login_map: which logins may use which sender addresses.
 *
 * See smtpd_login.h. The map is looked up on the loop: a Berkeley DB hash file read-only,
 * a few page reads at most, like the recipient maps of libcommon/resolve. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "smtpd.h"
#include "smtpd_login.h"
#include "smtpd_policy.h"

#define SMTPD_LOGIN_OWNERS_MAX 1024   /* the value of one map entry */

static struct map *smtpd_login_map;   /* NULL: not set, no check */

/* smtpd_login_init - see smtpd_login.h. */
int
smtpd_login_init(char *err, size_t errlen)
{
    const char *source = config_path(smtpd.cfg, "smtpd_sender_login_map");
    char        why[512];

    if (*source == '\0')
        return 0;
    smtpd_login_map = map_open(source, why, sizeof(why));
    if (smtpd_login_map == NULL) {
        snprintf(err, errlen, "smtpd_sender_login_map: %s", why);
        return -1;
    }
    return 0;
}

/* smtpd_login_free - close the map. */
void
smtpd_login_free(void)
{
    map_close(&smtpd_login_map);
}

/* smtpd_login_owners - the owners of sender: its own entry, else its domain's. 1: found;
 * 0: listed nowhere; -1: lookup error (logged by map_lookup). */
static int
smtpd_login_owners(const char *sender, char *owners, size_t len)
{
    const char *at = strrchr(sender, '@');
    int         rc = map_lookup(smtpd_login_map, sender, owners, len);

    if (rc == 0 && at != NULL)
        rc = map_lookup(smtpd_login_map, at, owners, len);
    return rc;
}

/* smtpd_login_listed - is login one of the owners ("a, b c": commas or white space)? */
static int
smtpd_login_listed(const char *owners, const char *login)
{
    size_t n = strlen(login);
    size_t w;

    while (*owners != '\0') {
        owners += strspn(owners, ", \t");
        w = strcspn(owners, ", \t");
        if (w == n && n > 0 && strncasecmp(owners, login, n) == 0)
            return 1;
        owners += w;
    }
    return 0;
}

/* smtpd_login_refuse - 553 (or 451) "<sender>: Sender address rejected: text". */
static int
smtpd_login_refuse(struct smtpd_session *s, const char *sender, int code, const char *text)
{
    struct policy_action a;

    memset(&a, 0, sizeof(a));
    a.kind = code >= 500 ? POLICY_REJECT : POLICY_DEFER;
    a.code = code;
    snprintf(a.enh, sizeof(a.enh), "%s", code >= 500 ? "5.7.1" : "4.3.5");
    snprintf(a.text, sizeof(a.text), "%s", text);
    snprintf(a.where, sizeof(a.where), "smtpd_sender_login_map sasl_username=%s",
             s->auth_user != NULL ? s->auth_user : "");
    smtpd_policy_refuse(s, POLICY_SENDER, sender, "MAIL", NULL, &a);
    return -1;
}

/* smtpd_login_check - see smtpd_login.h. */
int
smtpd_login_check(struct smtpd_session *s, const char *sender)
{
    char owners[SMTPD_LOGIN_OWNERS_MAX];
    char text[POLICY_TEXT_MAX];
    int  rc;

    if (smtpd_login_map == NULL || *sender == '\0' || s->svc == SMTPD_SVC_SUBMIT)
        return 0;
    if (s->auth_user == NULL && s->svc == SMTPD_SVC_SMTP)
        return 0;
    rc = smtpd_login_owners(sender, owners, sizeof(owners));
    if (rc == -1)
        return smtpd_login_refuse(s, sender, 451, "Server configuration error");
    if (s->auth_user == NULL)
        return rc == 1 ? smtpd_login_refuse(s, sender, 553, "not logged in") : 0;
    if (rc == 1 && smtpd_login_listed(owners, s->auth_user))
        return 0;
    snprintf(text, sizeof(text), "not owned by user %s", s->auth_user);
    return smtpd_login_refuse(s, sender, 553, text);
}
