/* smtpd_dnsbl - DNS blocklist lookups for a client at connect (see smtpd_dnsbl.h).
 *
 * A lookup hangs off s->dnsbl: one A query per site, all sent at once, and one timer of
 * smtpd_dnsbl_timeout. Each answer's A records are matched against the site's filter; the
 * lookup ends when every answer is in or at the timer, and only then is the session told.
 * The verdict is only the name of the first listing site (s->dnsbl_zone, NULL if not
 * blocked); what was listed where is logged once, at the end of the lookup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dnsbl.h"
#include "log.h"
#include "smtpd.h"
#include "smtpd_anvil.h"
#include "smtpd_dnsbl.h"

#define SMTPD_DNSBL_LOG 1024          /* "zone(weight) zone(weight) ..." in a log line */

struct smtpd_dnsbl;

/* One site's query for one client. */
struct smtpd_dnsbl_query {
    struct smtpd_dnsbl *d;
    size_t              site;
    int                 id;            /* in flight; 0: answered, failed or not sent */
    int                 listed;
};

struct smtpd_dnsbl {
    struct smtpd_session    *s;
    smtpd_dnsbl_cb           cb;
    uint64_t                 timer;
    uint64_t                 started;
    size_t                   pending;
    struct smtpd_dnsbl_query q[];      /* one per site */
};

static struct dnsbl_site *smtpd_dnsbl_sites;
static size_t             smtpd_dnsbl_nsites;
static long long          smtpd_dnsbl_threshold;
static uint64_t           smtpd_dnsbl_timeout_ms;

int
smtpd_dnsbl_init(char *err, size_t errlen)
{
    char *const *specs;
    char         e[512];
    size_t       n;

    specs = config_list(smtpd.cfg, "smtpd_dnsbl_sites", &n);
    smtpd_dnsbl_threshold = config_int(smtpd.cfg, "smtpd_dnsbl_threshold");
    smtpd_dnsbl_timeout_ms = config_time_ms(smtpd.cfg, "smtpd_dnsbl_timeout");
    smtpd_dnsbl_sites = n > 0 ? xcalloc(n, sizeof(*smtpd_dnsbl_sites)) : NULL;
    for (size_t i = 0; i < n; i++)
        if (dnsbl_site_parse(specs[i], &smtpd_dnsbl_sites[i], e, sizeof(e)) == -1) {
            snprintf(err, errlen, "smtpd_dnsbl_sites: %s", e);
            smtpd_dnsbl_free();
            return -1;
        }
    smtpd_dnsbl_nsites = n;
    if (n > 0)
        log_info("dnsbl: %zu site(s), threshold %lld", n, smtpd_dnsbl_threshold);
    return 0;
}

void
smtpd_dnsbl_free(void)
{
    free(smtpd_dnsbl_sites);
    smtpd_dnsbl_sites = NULL;
    smtpd_dnsbl_nsites = 0;
}

/* smtpd_dnsbl_drop - cancel what is in flight, unhook from the session, free. */
static void
smtpd_dnsbl_drop(struct smtpd_dnsbl *d)
{
    for (size_t i = 0; i < smtpd_dnsbl_nsites; i++)
        dns_cancel(d->q[i].id);
    ev_timer_del(smtpd.ev, d->timer);
    if (d->s->dnsbl == d)
        d->s->dnsbl = NULL;
    free(d);
}

/* smtpd_dnsbl_finish - every answer is in or the time is up: add the weights, log,
 * tell the session. */
static void
smtpd_dnsbl_finish(struct smtpd_dnsbl *d, int timed_out)
{
    struct smtpd_session *s = d->s;
    smtpd_dnsbl_cb        cb = d->cb;
    const char           *first = NULL;
    char                  sites[SMTPD_DNSBL_LOG] = "";
    size_t                off = 0;
    long long             score = 0;
    unsigned long long    ms = ev_now_ms() - d->started;

    for (size_t i = 0; i < smtpd_dnsbl_nsites; i++) {
        const struct dnsbl_site *site = &smtpd_dnsbl_sites[i];

        if (!d->q[i].listed)
            continue;
        score += site->weight;
        if (first == NULL && site->weight > 0)
            first = site->zone;
        if (off < sizeof(sites))
            off += (size_t)snprintf(sites + off, sizeof(sites) - off, "%s%s(%d)",
                                    off > 0 ? " " : "", site->zone, site->weight);
    }
    if (timed_out)
        log_info("dnsbl: client=[%s]: %zu of %zu site(s) did not answer in %llums "
                 "(counted as not listed)", s->addr, d->pending, smtpd_dnsbl_nsites, ms);
    if (score >= smtpd_dnsbl_threshold && first != NULL) {
        s->dnsbl_zone = xstrdup(first);
        log_info("dnsbl: client=[%s] blocked: score=%lld threshold=%lld listed=%s", s->addr,
                 score, smtpd_dnsbl_threshold, sites);
    } else if (sites[0] != '\0') {
        log_info("dnsbl: client=[%s] not blocked: score=%lld threshold=%lld listed=%s",
                 s->addr, score, smtpd_dnsbl_threshold, sites);
    } else {
        log_debug("dnsbl: client=[%s] not listed, ms=%llu", s->addr, ms);
    }
    smtpd_dnsbl_drop(d);
    if (cb != NULL)
        cb(s);
}

/* smtpd_dnsbl_answer - one site's A records (or none). */
static void
smtpd_dnsbl_answer(void *arg, const struct dns_answer *a)
{
    struct smtpd_dnsbl_query *q = arg;
    struct smtpd_dnsbl       *d = q->d;
    struct dns_ip             ip;

    q->id = 0;
    d->pending--;
    if (a->status == DNS_TEMP)
        log_info("dnsbl: client=[%s] site=%s: %s (counted as not listed)", d->s->addr,
                 smtpd_dnsbl_sites[q->site].zone, a->why != NULL ? a->why : "DNS error");
    for (size_t i = 0; a->status == DNS_OK && i < a->n && !q->listed; i++)
        if (dns_wire_ip(a->rrtype, a->data[i], (size_t)a->len[i], &ip) == 0
            && dnsbl_site_match(&smtpd_dnsbl_sites[q->site], &ip))
            q->listed = 1;
    if (d->pending == 0)
        smtpd_dnsbl_finish(d, 0);
}

/* smtpd_dnsbl_timeout - smtpd_dnsbl_timeout is up: what has not answered is not listed. */
static void
smtpd_dnsbl_timeout(void *arg)
{
    struct smtpd_dnsbl *d = arg;

    d->timer = 0;
    smtpd_dnsbl_finish(d, 1);
}

/* smtpd_dnsbl_exempt - clients never looked up: local submission, mynetworks and
 * smtpd_client_limit_exceptions. */
static int
smtpd_dnsbl_exempt(const struct smtpd_session *s)
{
    return s->svc == SMTPD_SVC_SUBMIT || s->mynetworks || smtpd_anvil_exempt(s);
}

int
smtpd_dnsbl_client(struct smtpd_session *s, smtpd_dnsbl_cb cb)
{
    struct smtpd_dnsbl *d;
    struct dns_ip       ip;
    char                qname[DNS_NAME_MAX];

    smtpd_dnsbl_forget(s);
    if (smtpd_dnsbl_nsites == 0 || smtpd_dnsbl_exempt(s)
        || dns_wire_ip_parse(s->addr, &ip) == -1)
        return 1;
    d = xcalloc(1, sizeof(*d) + smtpd_dnsbl_nsites * sizeof(d->q[0]));
    d->s = s;
    d->cb = cb;
    d->started = ev_now_ms();
    /* dns_query() never answers from inside: every query is out before the first reply. */
    for (size_t i = 0; i < smtpd_dnsbl_nsites; i++) {
        d->q[i].d = d;
        d->q[i].site = i;
        if (dnsbl_query_name(&ip, smtpd_dnsbl_sites[i].zone, qname, sizeof(qname)) == -1)
            continue;
        if ((d->q[i].id = dns_query(qname, DNS_T_A, smtpd_dnsbl_answer, &d->q[i])) < 0)
            d->q[i].id = 0;            /* dns_query logged why: not listed */
        else
            d->pending++;
    }
    if (d->pending == 0) {
        free(d);
        return 1;
    }
    d->timer = ev_timer_add(smtpd.ev, smtpd_dnsbl_timeout_ms, smtpd_dnsbl_timeout, d);
    s->dnsbl = d;
    return 0;
}

void
smtpd_dnsbl_forget(struct smtpd_session *s)
{
    if (s->dnsbl != NULL)
        smtpd_dnsbl_drop(s->dnsbl);
    free(s->dnsbl_zone);
    s->dnsbl_zone = NULL;
}

int
smtpd_dnsbl_refuse(struct smtpd_session *s, const char *cmd, const char *rcpt)
{
    char text[DNS_NAME_MAX + 128];

    if (s->dnsbl_zone == NULL)
        return 0;
    snprintf(text, sizeof(text), "Service unavailable; client [%s] blocked using %s",
             s->addr, s->dnsbl_zone);
    smtpd.stats.dnsbl_rejected++;
    log_info("reject: %s from %s[%s]: 554 5.7.1 %s;%s%s%s", cmd, s->client_name, s->addr,
             text, rcpt != NULL ? " to=<" : "", rcpt != NULL ? rcpt : "",
             rcpt != NULL ? ">" : "");
    smtpd_session_reply(s, 554, "5.7.1", "%s", text);
    if (rcpt != NULL)
        (void)smtpd_session_error(s);
    return -1;
}
