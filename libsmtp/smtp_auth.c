/* smtp_auth - SASL PLAIN and LOGIN decoding for smtpd.
 *
 * PLAIN is one message "authzid NUL authcid NUL passwd" (RFC 4616); an authorisation
 * identity other than the user itself is refused, since Postern has no proxy
 * authorisation. LOGIN is the de facto two-step exchange ("Username:", "Password:").
 * NUL or CR/LF inside a decoded name or password is a syntax error. */
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "smtp_auth.h"

#define MECH_PLAIN 1
#define MECH_LOGIN 2

const char *
smtp_auth_mechanisms(void)
{
    return "PLAIN LOGIN";
}

static int
smtp_auth_clean(const char *s, size_t len)
{
    return memchr(s, '\0', len) == NULL && memchr(s, '\r', len) == NULL &&
           memchr(s, '\n', len) == NULL;
}

/* smtp_auth_plain - decode and split a PLAIN response. */
static enum smtp_auth_step
smtp_auth_plain(struct smtp_auth *a, const char *b64)
{
    unsigned char buf[3 * SMTP_AUTH_MAX];
    long          n;
    const char   *authz, *user, *pass;
    size_t        lz, lu, lp;

    if (strlen(b64) > 4 * SMTP_AUTH_MAX)
        return SMTP_AUTH_SYNTAX;
    n = base64_decode(b64, buf, sizeof(buf) - 1);
    if (n < 0)
        return SMTP_AUTH_SYNTAX;
    buf[n] = '\0';
    authz = (const char *)buf;
    lz = strnlen(authz, (size_t)n);
    if (lz >= (size_t)n)
        goto syntax;
    user = authz + lz + 1;
    lu = strnlen(user, (size_t)n - lz - 1);
    if (lz + 1 + lu >= (size_t)n)
        goto syntax;
    pass = user + lu + 1;
    lp = (size_t)n - lz - lu - 2;
    if (lu == 0 || lu >= SMTP_AUTH_MAX || lp >= SMTP_AUTH_MAX || !smtp_auth_clean(pass, lp))
        goto syntax;
    if (lz > 0 && (lz != lu || memcmp(authz, user, lu) != 0))
        goto syntax;
    memcpy(a->user, user, lu + 1);
    memcpy(a->password, pass, lp);
    a->password[lp] = '\0';
    explicit_bzero(buf, sizeof(buf));
    return SMTP_AUTH_CHECK;
syntax:
    explicit_bzero(buf, sizeof(buf));
    return SMTP_AUTH_SYNTAX;
}

/* smtp_auth_decode_field - one base64 LOGIN answer into out. */
static int
smtp_auth_decode_field(const char *b64, char *out)
{
    unsigned char buf[3 * SMTP_AUTH_MAX];
    long          n;

    if (strlen(b64) > 4 * SMTP_AUTH_MAX / 3)
        return -1;
    n = base64_decode(b64, buf, sizeof(buf));
    if (n < 0 || n >= SMTP_AUTH_MAX || !smtp_auth_clean((const char *)buf, (size_t)n)) {
        explicit_bzero(buf, sizeof(buf));
        return -1;
    }
    memcpy(out, buf, (size_t)n);
    out[n] = '\0';
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

enum smtp_auth_step
smtp_auth_start(struct smtp_auth *a, const char *arg)
{
    size_t      n = strcspn(arg, " ");
    const char *initial = arg[n] == ' ' ? arg + n + 1 : NULL;

    smtp_auth_clear(a);
    if (n == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
        a->mech = MECH_PLAIN;
        if (initial == NULL) {
            strcpy(a->challenge, "");
            a->stage = 1;
            return SMTP_AUTH_CHALLENGE;
        }
        if (strcmp(initial, "=") == 0)
            return SMTP_AUTH_SYNTAX;
        return smtp_auth_plain(a, initial);
    }
    if (n == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
        a->mech = MECH_LOGIN;
        if (initial) {
            if (smtp_auth_decode_field(initial, a->user) == -1 || a->user[0] == '\0')
                return SMTP_AUTH_SYNTAX;
            strcpy(a->challenge, "UGFzc3dvcmQ6");   /* "Password:" */
            a->stage = 2;
            return SMTP_AUTH_CHALLENGE;
        }
        strcpy(a->challenge, "VXNlcm5hbWU6");       /* "Username:" */
        a->stage = 1;
        return SMTP_AUTH_CHALLENGE;
    }
    return SMTP_AUTH_UNSUPPORTED;
}

enum smtp_auth_step
smtp_auth_next(struct smtp_auth *a, const char *line)
{
    if (strcmp(line, "*") == 0)
        return SMTP_AUTH_CANCEL;
    if (a->mech == MECH_PLAIN && a->stage == 1)
        return smtp_auth_plain(a, line);
    if (a->mech == MECH_LOGIN && a->stage == 1) {
        if (smtp_auth_decode_field(line, a->user) == -1 || a->user[0] == '\0')
            return SMTP_AUTH_SYNTAX;
        strcpy(a->challenge, "UGFzc3dvcmQ6");
        a->stage = 2;
        return SMTP_AUTH_CHALLENGE;
    }
    if (a->mech == MECH_LOGIN && a->stage == 2) {
        if (smtp_auth_decode_field(line, a->password) == -1)
            return SMTP_AUTH_SYNTAX;
        return SMTP_AUTH_CHECK;
    }
    return SMTP_AUTH_SYNTAX;
}

void
smtp_auth_clear(struct smtp_auth *a)
{
    explicit_bzero(a, sizeof(*a));
}
