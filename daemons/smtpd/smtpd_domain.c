/* smtpd_domain - the sender domain's MX, A and AAAA records (see smtpd_domain.h).
 *
 * A lookup hangs off s->domain: the MX query first; an answer with records settles it
 * (a null MX refuses, anything else accepts); NXDOMAIN refuses; no MX data sends the A
 * and AAAA queries together, and either one with records accepts. One timer of
 * smtpd_peername_timeout bounds the whole lookup, so a dead resolver costs a client that
 * long and a 450, never a blocked process. Postfix's words and codes throughout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "log.h"
#include "smtpd.h"
#include "smtpd_domain.h"

#define SMTPD_DOMAIN_WHERE "reject_unknown_sender_domain"

struct smtpd_domain {
    struct smtpd_session *s;
    smtpd_domain_cb       cb;
    char                  domain[DNS_NAME_MAX];
    int                   mx_id, a_id, aaaa_id;   /* in flight; 0: none */
    enum dns_status       a_status, aaaa_status;
    uint64_t              timer;
    const char           *fail;        /* the resolver refused the query: why */
};

static int      smtpd_domain_on;
static int      smtpd_domain_code;        /* smtpd_unknown_address_reject_code */
static uint64_t smtpd_domain_timeout_ms;

int
smtpd_domain_init(char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    smtpd_domain_on = config_bool(smtpd.cfg, "smtpd_reject_unknown_sender_domain");
    smtpd_domain_code = (int)config_int(smtpd.cfg, "smtpd_unknown_address_reject_code");
    smtpd_domain_timeout_ms = config_time_ms(smtpd.cfg, "smtpd_peername_timeout");
    return 0;
}

/* smtpd_domain_drop - cancel what is in flight, unhook from the session, free. */
static void
smtpd_domain_drop(struct smtpd_domain *d)
{
    dns_cancel(d->mx_id);
    dns_cancel(d->a_id);
    dns_cancel(d->aaaa_id);
    ev_timer_del(smtpd.ev, d->timer);
    if (d->s->domain == d)
        d->s->domain = NULL;
    free(d);
}

/* smtpd_domain_finish - the verdict: code 0 accepts, else a refusal with this text. */
static void
smtpd_domain_finish(struct smtpd_domain *d, int code, const char *enh, const char *why)
{
    struct smtpd_session *s = d->s;
    smtpd_domain_cb       cb = d->cb;
    struct policy_action  a;

    memset(&a, 0, sizeof(a));
    if (code != 0) {
        a.kind = code >= 500 ? POLICY_REJECT : POLICY_DEFER;
        a.code = code;
        snprintf(a.enh, sizeof(a.enh), "%s", enh);
        if (strcmp(enh, "5.7.27") == 0)
            snprintf(a.text, sizeof(a.text), "Domain %s does not accept mail (nullMX)",
                     d->domain);
        else
            snprintf(a.text, sizeof(a.text), "Domain not found");
        snprintf(a.where, sizeof(a.where), "%s: %s", SMTPD_DOMAIN_WHERE, why);
    }
    smtpd_domain_drop(d);
    cb(s, code != 0 ? &a : NULL);
}

/* smtpd_domain_unknown - no such domain for mail: unknown_address_reject_code. */
static void
smtpd_domain_unknown(struct smtpd_domain *d, const char *why)
{
    smtpd_domain_finish(d, smtpd_domain_code, smtpd_domain_code >= 500 ? "5.1.8" : "4.1.8",
                        why);
}

/* smtpd_domain_addr_answer - A or AAAA records: any one is enough. */
static void
smtpd_domain_addr_answer(void *arg, const struct dns_answer *a)
{
    struct smtpd_domain *d = arg;

    if (a->rrtype == DNS_T_A) {
        d->a_id = 0;
        d->a_status = a->status;
    } else {
        d->aaaa_id = 0;
        d->aaaa_status = a->status;
    }
    if (a->status == DNS_OK) {
        smtpd_domain_finish(d, 0, NULL, NULL);
        return;
    }
    if (d->a_id != 0 || d->aaaa_id != 0)
        return;
    if (d->a_status == DNS_TEMP || d->aaaa_status == DNS_TEMP)
        smtpd_domain_finish(d, 450, "4.1.8", "temporary DNS failure");
    else
        smtpd_domain_unknown(d, "no MX, A or AAAA record");
}

/* smtpd_domain_mx_answer - MX records: settled, or on to A and AAAA. */
static void
smtpd_domain_mx_answer(void *arg, const struct dns_answer *a)
{
    struct smtpd_domain *d = arg;
    char                 host[DNS_NAME_MAX];
    unsigned             pref;

    d->mx_id = 0;
    switch (a->status) {
    case DNS_OK:
        if (a->n == 1 && dns_wire_mx_parse(a->data[0], (size_t)a->len[0], &pref, host,
                                           sizeof(host)) == 0 && host[0] == '\0')
            smtpd_domain_finish(d, 550, "5.7.27", "null MX");
        else
            smtpd_domain_finish(d, 0, NULL, NULL);
        return;
    case DNS_NXDOMAIN:
        smtpd_domain_unknown(d, "NXDOMAIN");
        return;
    case DNS_TEMP:
        smtpd_domain_finish(d, 450, "4.1.8", a->why != NULL ? a->why : "temporary DNS failure");
        return;
    case DNS_NODATA:
        break;
    }
    d->a_status = d->aaaa_status = DNS_TEMP;
    if ((d->a_id = dns_query(d->domain, DNS_T_A, smtpd_domain_addr_answer, d)) < 0)
        d->a_id = 0;
    if ((d->aaaa_id = dns_query(d->domain, DNS_T_AAAA, smtpd_domain_addr_answer, d)) < 0)
        d->aaaa_id = 0;
    if (d->a_id == 0 && d->aaaa_id == 0)
        smtpd_domain_finish(d, 450, "4.1.8", "resolver error");
}

/* smtpd_domain_timeout - no verdict in time (or the query could not even be sent): a
 * temporary failure. */
static void
smtpd_domain_timeout(void *arg)
{
    struct smtpd_domain *d = arg;

    d->timer = 0;
    smtpd_domain_finish(d, 450, "4.1.8", d->fail != NULL ? d->fail : "DNS lookup timed out");
}

/* smtpd_domain_wanted - the sender's domain if it is to be checked, else NULL. */
static const char *
smtpd_domain_wanted(const struct smtpd_session *s, const char *sender)
{
    const char *at = strrchr(sender, '@');

    if (!smtpd_domain_on || s->svc == SMTPD_SVC_SUBMIT || s->auth_user != NULL
        || s->mynetworks || at == NULL || at[1] == '\0' || at[1] == '['
        || strlen(at + 1) >= DNS_NAME_MAX)
        return NULL;
    if (resolve_domain_class(smtpd.resolve, at + 1) != RESOLVE_REMOTE)
        return NULL;                   /* ours: the DNS has no say */
    return at + 1;
}

int
smtpd_domain_check(struct smtpd_session *s, const char *sender, smtpd_domain_cb cb)
{
    struct smtpd_domain *d;
    const char          *domain;

    smtpd_domain_forget(s);
    if ((domain = smtpd_domain_wanted(s, sender)) == NULL)
        return 1;
    d = xcalloc(1, sizeof(*d));
    d->s = s;
    d->cb = cb;
    snprintf(d->domain, sizeof(d->domain), "%s", domain);
    s->domain = d;
    if ((d->mx_id = dns_query(d->domain, DNS_T_MX, smtpd_domain_mx_answer, d)) < 0) {
        d->mx_id = 0;
        d->fail = "resolver error";    /* answered from the loop, as promised */
        d->timer = ev_timer_add(smtpd.ev, 0, smtpd_domain_timeout, d);
        return 0;
    }
    d->timer = ev_timer_add(smtpd.ev, smtpd_domain_timeout_ms, smtpd_domain_timeout, d);
    return 0;
}

void
smtpd_domain_forget(struct smtpd_session *s)
{
    if (s->domain != NULL)
        smtpd_domain_drop(s->domain);
}
