/* smtpd_dns - the client's name: PTR, then A/AAAA of the PTR names (see smtpd_dns.h).
 *
 * A lookup hangs off s->dns: the PTR query of the address's in-addr.arpa or ip6.arpa name,
 * then one forward query (A for an IPv4 client, AAAA for IPv6) for each of the first
 * SMTPD_DNS_NAMES valid PTR names, all under one timer of smtpd_peername_timeout. The
 * first name (in PTR order) whose records hold the client's address is the confirmed
 * name; the lookup ends as soon as that is settled, when every answer is in, or at the
 * timer, and only then is the session told. A PTR name that is not a plain host name
 * (letters, digits, hyphens, dots) counts as no name: it would otherwise reach logs,
 * Received: and access maps. Names are lower-cased by the wire decoder. A failed or late
 * lookup leaves "unknown"; nothing here ever refuses a client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"
#include "log.h"
#include "smtpd.h"
#include "smtpd_dns.h"

#define SMTPD_DNS_NAMES 3              /* PTR names checked forward at most (as Postfix) */

struct smtpd_dns;

/* One PTR name and its forward query. */
struct smtpd_dns_fwd {
    struct smtpd_dns *d;
    int               id;              /* query in flight, 0: answered or not sent */
    int               confirmed;       /* an address record is the client's address */
    char              name[DNS_NAME_MAX];
};

struct smtpd_dns {
    struct smtpd_session *s;
    smtpd_dns_cb          cb;
    struct dns_ip         ip;          /* the client's address */
    int                   ptr_id;      /* PTR query in flight, 0: answered */
    struct smtpd_dns_fwd  fwd[SMTPD_DNS_NAMES];
    size_t                nfwd;
    uint64_t              timer;
    uint64_t              started;
};

static int      smtpd_dns_enabled;     /* smtpd_peername_lookup, and the resolver is up */
static int      smtpd_dns_resolver;    /* the resolver is up (for any of smtpd's lookups) */
static uint64_t smtpd_dns_timeout_ms;

/* smtpd_dns_names - set both names of the session. */
static void
smtpd_dns_names(struct smtpd_session *s, const char *ptr, const char *name)
{
    snprintf(s->client_ptr, sizeof(s->client_ptr), "%s", ptr);
    snprintf(s->client_name, sizeof(s->client_name), "%s", name);
    s->peername_temp = 0;
}

/* smtpd_dns_drop - cancel what is in flight, unhook from the session, free. */
static void
smtpd_dns_drop(struct smtpd_dns *d)
{
    dns_cancel(d->ptr_id);
    for (size_t i = 0; i < d->nfwd; i++)
        dns_cancel(d->fwd[i].id);
    ev_timer_del(smtpd.ev, d->timer);
    if (d->s->dns == d)
        d->s->dns = NULL;
    free(d);
}

/* smtpd_dns_finish - the names are as good as they get: fill them in, tell the session. */
static void
smtpd_dns_finish(struct smtpd_dns *d, const char *why)
{
    struct smtpd_session *s = d->s;
    smtpd_dns_cb          cb = d->cb;
    const char           *name = NULL;
    unsigned long long    ms = ev_now_ms() - d->started;

    for (size_t i = 0; i < d->nfwd && name == NULL; i++)
        if (d->fwd[i].confirmed)
            name = d->fwd[i].name;
    if (name != NULL)
        snprintf(s->client_name, sizeof(s->client_name), "%s", name);
    s->peername_temp = name == NULL && why != NULL;   /* only errors and timeouts say why */
    if (why != NULL)
        log_info("peername: addr=%s ptr=%s name=%s ms=%llu (%s)", s->addr, s->client_ptr,
                 s->client_name, ms, why);
    else if (d->nfwd > 0 && name == NULL)
        log_info("peername: addr=%s ptr=%s name=unknown ms=%llu (the name does not resolve "
                 "to the address)", s->addr, s->client_ptr, ms);
    else
        log_debug("peername: addr=%s ptr=%s name=%s ms=%llu", s->addr, s->client_ptr,
                  s->client_name, ms);
    smtpd_dns_drop(d);
    if (cb != NULL)
        cb(s);
}

/* smtpd_dns_settled - 1 if the confirmed name is known: a name confirmed with every name
 * before it answered and unconfirmed, or every answer in. */
static int
smtpd_dns_settled(const struct smtpd_dns *d)
{
    for (size_t i = 0; i < d->nfwd; i++) {
        if (d->fwd[i].confirmed)
            return 1;
        if (d->fwd[i].id != 0)
            return 0;
    }
    return 1;
}

/* smtpd_dns_fwd_answer - A or AAAA records of one PTR name: is the client among them? */
static void
smtpd_dns_fwd_answer(void *arg, const struct dns_answer *a)
{
    struct smtpd_dns_fwd *f = arg;
    struct dns_ip         ip;

    f->id = 0;
    for (size_t i = 0; a->status == DNS_OK && i < a->n; i++)
        if (dns_wire_ip(a->rrtype, a->data[i], (size_t)a->len[i], &ip) == 0
            && dns_wire_ip_equal(&ip, &f->d->ip))
            f->confirmed = 1;
    if (smtpd_dns_settled(f->d))
        smtpd_dns_finish(f->d, NULL);
}

/* smtpd_dns_add_name - a PTR name to check forward, unless already there or enough. */
static void
smtpd_dns_add_name(struct smtpd_dns *d, const char *name)
{
    for (size_t i = 0; i < d->nfwd; i++)
        if (strcmp(d->fwd[i].name, name) == 0)
            return;
    if (d->nfwd == SMTPD_DNS_NAMES)
        return;
    d->fwd[d->nfwd].d = d;
    snprintf(d->fwd[d->nfwd].name, sizeof(d->fwd[d->nfwd].name), "%s", name);
    d->nfwd++;
}

/* smtpd_dns_ptr_answer - the address's names: keep the valid ones, look each up. */
static void
smtpd_dns_ptr_answer(void *arg, const struct dns_answer *a)
{
    struct smtpd_dns *d = arg;
    int               rrtype = d->ip.family == AF_INET ? DNS_T_A : DNS_T_AAAA;
    size_t            bad = 0;

    d->ptr_id = 0;
    if (a->status == DNS_TEMP) {
        smtpd_dns_finish(d, a->why != NULL ? a->why : "temporary DNS failure");
        return;
    }
    for (size_t i = 0; a->status == DNS_OK && i < a->n; i++) {
        char name[DNS_NAME_MAX];

        if (dns_wire_ptr_parse(a->data[i], (size_t)a->len[i], name, sizeof(name)) == -1
            || !dns_wire_hostname_ok(name)) {
            bad++;
            continue;
        }
        if (d->nfwd == 0)
            snprintf(d->s->client_ptr, sizeof(d->s->client_ptr), "%s", name);
        smtpd_dns_add_name(d, name);
    }
    if (bad > 0)
        log_info("peername: addr=%s: %zu PTR record(s) that are no host name ignored",
                 d->s->addr, bad);
    /* dns_query() never answers from inside: every query is out before the first reply. */
    for (size_t i = 0; i < d->nfwd; i++)
        if ((d->fwd[i].id = dns_query(d->fwd[i].name, rrtype, smtpd_dns_fwd_answer,
                                      &d->fwd[i])) < 0)
            d->fwd[i].id = 0;
    if (smtpd_dns_settled(d))
        smtpd_dns_finish(d, NULL);
}

/* smtpd_dns_timeout - smtpd_peername_timeout is up: go on with what is known. */
static void
smtpd_dns_timeout(void *arg)
{
    struct smtpd_dns *d = arg;

    d->timer = 0;
    smtpd_dns_finish(d, "timed out");
}

int
smtpd_dns_init(char *err, size_t errlen)
{
    char *const *servers;
    size_t       n;

    smtpd_dns_timeout_ms = config_time_ms(smtpd.cfg, "smtpd_peername_timeout");
    /* No lookups, no resolver: the DNSBLs and the sender domain check need one too. */
    (void)config_list(smtpd.cfg, "smtpd_dnsbl_sites", &n);
    if (!config_bool(smtpd.cfg, "smtpd_peername_lookup") && n == 0
        && !config_bool(smtpd.cfg, "smtpd_reject_unknown_sender_domain"))
        return 0;
    servers = config_list(smtpd.cfg, "dns_servers", &n);
    if (dns_init(smtpd.ev, servers, n, config_bool(smtpd.cfg, "dns_lan_zones"), err,
                 errlen) == -1)
        return -1;
    smtpd_dns_resolver = 1;
    smtpd_dns_enabled = config_bool(smtpd.cfg, "smtpd_peername_lookup");
    return 0;
}

void
smtpd_dns_free(void)
{
    if (smtpd_dns_resolver)
        dns_free();
    smtpd_dns_enabled = smtpd_dns_resolver = 0;
}

int
smtpd_dns_client(struct smtpd_session *s, smtpd_dns_cb cb)
{
    struct smtpd_dns *d;
    struct dns_ip     ip;
    char              qname[DNS_PTR_NAME_MAX];

    smtpd_dns_forget(s);
    if (s->svc == SMTPD_SVC_SUBMIT) {
        smtpd_dns_names(s, "localhost", "localhost");
        return 1;
    }
    smtpd_dns_names(s, "unknown", "unknown");
    if (!smtpd_dns_enabled)
        return 1;
    if (dns_wire_ip_parse(s->addr, &ip) == -1
        || dns_wire_ptr_name(&ip, qname, sizeof(qname)) == -1) {
        log_warnx("peername: addr=%s: not an IP address, no lookup", s->addr);
        return 1;
    }
    d = xcalloc(1, sizeof(*d));
    d->s = s;
    d->cb = cb;
    d->ip = ip;
    d->started = ev_now_ms();
    if ((d->ptr_id = dns_query(qname, DNS_T_PTR, smtpd_dns_ptr_answer, d)) < 0) {
        free(d);
        s->peername_temp = 1;
        return 1;                      /* dns_query logged why */
    }
    d->timer = ev_timer_add(smtpd.ev, smtpd_dns_timeout_ms, smtpd_dns_timeout, d);
    s->dns = d;
    return 0;
}

void
smtpd_dns_forget(struct smtpd_session *s)
{
    if (s->dns != NULL)
        smtpd_dns_drop(s->dns);
}
