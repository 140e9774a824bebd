/* smtpd_restrict - Postfix's built-in reject_* restrictions (see smtpd_restrict.h).
 *
 * Nothing here waits: the client's names were looked up at connect (smtpd_dns.c), and the
 * rest is syntax. Postfix's codes and words, so that what a sender sees and what log
 * readers grep for is what they know. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "smtpd.h"
#include "smtpd_restrict.h"

#define SMTPD_RESTRICT_NON_FQDN_CODE  504    /* Postfix's non_fqdn_reject_code */
#define SMTPD_RESTRICT_INVALID_CODE   501    /* invalid_hostname_reject_code */

static struct {
    int unknown_client;            /* smtpd_reject_unknown_client_hostname */
    int unknown_reverse;           /* smtpd_reject_unknown_reverse_client_hostname */
    int unknown_code;              /* unknown_client_hostname_reject_code */
    int invalid_helo;              /* smtpd_reject_invalid_helo_hostname */
    int non_fqdn_helo;             /* smtpd_reject_non_fqdn_helo_hostname */
    int non_fqdn_sender;           /* smtpd_reject_non_fqdn_sender */
    int non_fqdn_recipient;        /* smtpd_reject_non_fqdn_recipient */
} R;

int
smtpd_restrict_init(char *err, size_t errlen)
{
    const struct config *cfg = smtpd.cfg;

    (void)err;
    (void)errlen;
    R.unknown_client = config_bool(cfg, "smtpd_reject_unknown_client_hostname");
    R.unknown_reverse = config_bool(cfg, "smtpd_reject_unknown_reverse_client_hostname");
    R.unknown_code = (int)config_int(cfg, "unknown_client_hostname_reject_code");
    R.invalid_helo = config_bool(cfg, "smtpd_reject_invalid_helo_hostname");
    R.non_fqdn_helo = config_bool(cfg, "smtpd_reject_non_fqdn_helo_hostname");
    R.non_fqdn_sender = config_bool(cfg, "smtpd_reject_non_fqdn_sender");
    R.non_fqdn_recipient = config_bool(cfg, "smtpd_reject_non_fqdn_recipient");
    if ((R.unknown_client || R.unknown_reverse)
        && !config_bool(cfg, "smtpd_peername_lookup")) {
        /* without the lookup every client would be "unknown" */
        log_warnx("smtpd_reject_unknown_(reverse_)client_hostname need "
                  "smtpd_peername_lookup = yes: not applied");
        R.unknown_client = R.unknown_reverse = 0;
    }
    return 0;
}

/* smtpd_restrict_label_ok - one label: letters, digits, '-', '_'; no hyphen at either end. */
static int
smtpd_restrict_label_ok(const char *p, size_t n)
{
    if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '_')
            return 0;
    return 1;
}

/* smtpd_restrict_literal_ok - "[1.2.3.4]" or "[IPv6:...]". */
static int
smtpd_restrict_literal_ok(const char *name)
{
    size_t        len = strlen(name);
    char          a[64];
    unsigned char bin[16];

    if (len < 3 || name[0] != '[' || name[len - 1] != ']' || len - 2 >= sizeof(a))
        return 0;
    memcpy(a, name + 1, len - 2);
    a[len - 2] = '\0';
    if (strncasecmp(a, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, a + 5, bin) == 1;
    return inet_pton(AF_INET, a, bin) == 1;
}

int
smtpd_restrict_hostname_valid(const char *name)
{
    const char *label = name;
    int         digits = 1;

    if (name[0] == '[')
        return smtpd_restrict_literal_ok(name);
    if (strlen(name) == 0 || strlen(name) > 255)
        return 0;
    for (;;) {
        const char *dot = strchr(label, '.');
        size_t      n = dot != NULL ? (size_t)(dot - label) : strlen(label);

        if (!smtpd_restrict_label_ok(label, n))
            return 0;
        if (dot == NULL)
            break;
        label = dot + 1;
    }
    for (const char *p = label; *p != '\0'; p++)   /* "1.2.3.4" is no host name */
        if (!isdigit((unsigned char)*p))
            digits = 0;
    return !digits;
}

/* smtpd_restrict_fqdn - a host name with a dot in it, or an address literal. */
static int
smtpd_restrict_fqdn(const char *name)
{
    if (name[0] == '[')
        return smtpd_restrict_literal_ok(name);
    return smtpd_restrict_hostname_valid(name) && strchr(name, '.') != NULL;
}

/* smtpd_restrict_refuse - fill out; returns its kind. */
static enum policy_kind
smtpd_restrict_refuse(struct policy_action *out, int code, const char *enh, const char *where,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static enum policy_kind
smtpd_restrict_refuse(struct policy_action *out, int code, const char *enh, const char *where,
                      const char *fmt, ...)
{
    va_list ap;

    memset(out, 0, sizeof(*out));
    out->kind = code >= 500 ? POLICY_REJECT : POLICY_DEFER;
    out->code = code;
    snprintf(out->enh, sizeof(out->enh), "%c%s", code >= 500 ? '5' : '4', enh + 1);
    snprintf(out->where, sizeof(out->where), "%s", where);
    va_start(ap, fmt);
    vsnprintf(out->text, sizeof(out->text), fmt, ap);
    va_end(ap);
    return out->kind;
}

/* smtpd_restrict_client - the client's names (looked up at connect). */
static enum policy_kind
smtpd_restrict_client(const struct smtpd_session *s, struct policy_action *out)
{
    int code = s->peername_temp ? 450 : R.unknown_code;

    if (R.unknown_reverse && strcmp(s->client_ptr, "unknown") == 0)
        return smtpd_restrict_refuse(out, code, "4.7.25",
                                     "reject_unknown_reverse_client_hostname",
                                     "cannot find your reverse hostname, [%s]", s->addr);
    if (R.unknown_client && strcmp(s->client_name, "unknown") == 0)
        return smtpd_restrict_refuse(out, code, "4.7.25", "reject_unknown_client_hostname",
                                     "cannot find your hostname, [%s]", s->addr);
    return POLICY_NONE;
}

/* smtpd_restrict_address - reject_non_fqdn_sender/recipient: the domain part. */
static enum policy_kind
smtpd_restrict_address(const char *addr, int on, const char *where, struct policy_action *out)
{
    const char *at = strrchr(addr, '@');

    if (!on || *addr == '\0' || strcasecmp(addr, "postmaster") == 0)   /* RFC 5321 4.5.1 */
        return POLICY_NONE;
    if (at == NULL || !smtpd_restrict_fqdn(at + 1))
        return smtpd_restrict_refuse(out, SMTPD_RESTRICT_NON_FQDN_CODE, "5.5.2", where,
                                     "need fully-qualified address");
    return POLICY_NONE;
}

enum policy_kind
smtpd_restrict_check(const struct smtpd_session *s, enum policy_stage stage, const char *key,
                     struct policy_action *out)
{
    if (s->mynetworks || s->auth_user != NULL)
        return POLICY_NONE;
    switch (stage) {
    case POLICY_CLIENT:
        return smtpd_restrict_client(s, out);
    case POLICY_HELO:
        if (R.invalid_helo && !smtpd_restrict_hostname_valid(key))
            return smtpd_restrict_refuse(out, SMTPD_RESTRICT_INVALID_CODE, "5.5.2",
                                         "reject_invalid_helo_hostname", "Invalid name");
        if (R.non_fqdn_helo && !smtpd_restrict_fqdn(key))
            return smtpd_restrict_refuse(out, SMTPD_RESTRICT_NON_FQDN_CODE, "5.5.2",
                                         "reject_non_fqdn_helo_hostname",
                                         "need fully-qualified hostname");
        return POLICY_NONE;
    case POLICY_SENDER:
        return smtpd_restrict_address(key, R.non_fqdn_sender, "reject_non_fqdn_sender", out);
    case POLICY_RECIPIENT:
        return smtpd_restrict_address(key, R.non_fqdn_recipient, "reject_non_fqdn_recipient",
                                      out);
    }
    return POLICY_NONE;
}
