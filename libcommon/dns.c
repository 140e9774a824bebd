/* dns - libunbound on the event loop (see dns.h).
 *
 * libunbound resolves in a thread of its own (ub_ctx_async(ctx, 1)) and signals finished
 * queries on ub_fd(); ub_process() then calls our trampoline, which turns the ub_result into
 * a struct dns_answer, calls the caller and frees the result. There are one or two contexts
 * (plain, and validating after dns_dnssec_init()); their libunbound ids overlap, so queries
 * get ids of our own and are kept in a small hash by that id, so that dns_cancel() can find
 * the context and free the request record that libunbound will never hand back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unbound.h>

#include "buf.h"
#include "dns.h"
#include "dns_anchor.h"
#include "log.h"

#define DNS_BUCKETS 256

struct dns_req {
    struct dns_req *next, *prev;       /* hash chain */
    int             id;                /* ours */
    int             ub_id;             /* libunbound's, in ctx */
    struct ub_ctx  *ctx;
    dns_cb          cb;
    void           *arg;
    int             rrtype;
    int             cancelled;         /* ub_cancel() failed: drop the answer when it comes */
};

static struct ub_ctx  *dns_ub;         /* every lookup but dns_query_dnssec() */
static struct ub_ctx  *dns_ub_sec;     /* validating; NULL without a trust anchor */
static struct ev      *dns_ev;
static struct dns_req *dns_pending[DNS_BUCKETS];
static int             dns_last_id;
/* What dns_init() was given, for the validating context made later. */
static char          **dns_servers;
static size_t          dns_nservers;
static int             dns_lan_zones;

/* dns_link - remember a query in progress under its id. */
static void
dns_link(struct dns_req *req)
{
    struct dns_req **head = &dns_pending[(unsigned)req->id % DNS_BUCKETS];

    req->prev = NULL;
    req->next = *head;
    if (*head != NULL)
        (*head)->prev = req;
    *head = req;
}

/* dns_unlink - forget it (it is done or cancelled). */
static void
dns_unlink(struct dns_req *req)
{
    if (req->prev != NULL)
        req->prev->next = req->next;
    else if (dns_pending[(unsigned)req->id % DNS_BUCKETS] == req)
        dns_pending[(unsigned)req->id % DNS_BUCKETS] = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    req->next = req->prev = NULL;
}

/* dns_find - the query in progress with this id, or NULL. */
static struct dns_req *
dns_find(int id)
{
    struct dns_req *req;

    for (req = dns_pending[(unsigned)id % DNS_BUCKETS]; req != NULL; req = req->next)
        if (req->id == id && !req->cancelled)
            return req;
    return NULL;
}

/* dns_io - answers are ready on one context. */
static void
dns_io(int fd, int events, void *arg)
{
    struct ub_ctx *ctx = arg;
    int            rc;

    (void)fd;
    (void)events;
    if ((rc = ub_process(ctx)) != 0)
        log_warnx("resolver: ub_process: %s", ub_strerror(rc));
}

/* dns_set - one libunbound option; -1 with the reason in err. */
static int
dns_set(struct ub_ctx *ctx, const char *opt, const char *val, char *err, size_t errlen)
{
    int rc = ub_ctx_set_option(ctx, opt, val);

    if (rc != 0)
        snprintf(err, errlen, "libunbound: %s %s: %s", opt, val, ub_strerror(rc));
    return rc != 0 ? -1 : 0;
}

/* dns_ctx_new - a context with our options, servers and /etc/hosts, watched on the loop.
 * NULL with the reason in err. */
static struct ub_ctx *
dns_ctx_new(char *const *servers, size_t n, int lan_zones, char *err, size_t errlen)
{
    struct ub_ctx *ctx;
    int            rc;

    if ((ctx = ub_ctx_create()) == NULL) {
        snprintf(err, errlen, "ub_ctx_create failed");
        return NULL;
    }
    if ((rc = ub_ctx_async(ctx, 1)) != 0) {
        snprintf(err, errlen, "libunbound: %s", ub_strerror(rc));
        goto fail;
    }
    /* Forwarders on loopback (dnsmasq, a local cache) are normal for us. unbound answers
     * NXDOMAIN itself for the RFC 6761 name "test."; test networks (and ours) route real
     * mail there, so ask the servers instead. */
    if (dns_set(ctx, "do-not-query-localhost:", "no", err, errlen) == -1
        || dns_set(ctx, "local-zone:", "test. transparent", err, errlen) == -1)
        goto fail;
    /* The private reverse zones are NXDOMAIN by default: quick, and no word about the LAN
     * leaves the host. A site whose own DNS names its LAN clients asks for them; those
     * zones are unsigned below a signed parent, so the validating context must not expect
     * signatures there. */
    if (lan_zones
        && (dns_set(ctx, "unblock-lan-zones:", "yes", err, errlen) == -1
            || dns_set(ctx, "insecure-lan-zones:", "yes", err, errlen) == -1))
        goto fail;
    for (size_t i = 0; i < n; i++)
        if ((rc = ub_ctx_set_fwd(ctx, servers[i])) != 0) {
            snprintf(err, errlen, "dns_servers %s: %s", servers[i], ub_strerror(rc));
            goto fail;
        }
    if (n == 0 && (rc = ub_ctx_resolvconf(ctx, NULL)) != 0)
        log_warnx("resolver: /etc/resolv.conf: %s (resolving from the root)",
                  ub_strerror(rc));
    if ((rc = ub_ctx_hosts(ctx, NULL)) != 0)
        log_warnx("resolver: /etc/hosts: %s", ub_strerror(rc));
    if (ev_io_set(dns_ev, ub_fd(ctx), EV_READ, dns_io, ctx) == -1) {
        snprintf(err, errlen, "cannot watch the resolver descriptor");
        goto fail;
    }
    return ctx;
fail:
    ub_ctx_delete(ctx);
    return NULL;
}

int
dns_init(struct ev *ev, char *const *servers, size_t n, int lan_zones, char *err,
         size_t errlen)
{
    dns_ev = ev;
    if ((dns_ub = dns_ctx_new(servers, n, lan_zones, err, errlen)) == NULL)
        return -1;
    dns_servers = xcalloc(n + 1, sizeof(*dns_servers));
    for (size_t i = 0; i < n; i++)
        dns_servers[i] = xstrdup(servers[i]);
    dns_nservers = n;
    dns_lan_zones = lan_zones;
    return 0;
}

int
dns_dnssec_init(const char *anchor_file, char *err, size_t errlen)
{
    struct dns_anchor anchors;
    struct ub_ctx    *ctx;
    int               rc;

    if (dns_ub == NULL) {
        snprintf(err, errlen, "the resolver is not set up");
        return -1;
    }
    if (dns_anchor_load(anchor_file, &anchors, err, errlen) == -1)
        return -1;
    if ((ctx = dns_ctx_new(dns_servers, dns_nservers, dns_lan_zones, err, errlen)) == NULL) {
        dns_anchor_clear(&anchors);
        return -1;
    }
    for (size_t i = 0; i < anchors.n; i++)
        if ((rc = ub_ctx_add_ta(ctx, anchors.rec[i])) != 0) {
            snprintf(err, errlen, "%s: record %zu: %s", anchor_file, i + 1, ub_strerror(rc));
            ev_io_del(dns_ev, ub_fd(ctx));
            ub_ctx_delete(ctx);
            dns_anchor_clear(&anchors);
            return -1;
        }
    dns_anchor_clear(&anchors);
    dns_ub_sec = ctx;
    return 0;
}

int
dns_dnssec_enabled(void)
{
    return dns_ub_sec != NULL;
}

/* dns_done - libunbound's callback: translate and hand over. */
static void
dns_done(void *arg, int err, struct ub_result *res)
{
    struct dns_req   *req = arg;
    struct dns_answer a;
    size_t            n = 0;
    char              why[300];

    dns_unlink(req);
    if (req->cancelled) {
        if (res != NULL)
            ub_resolve_free(res);
        free(req);
        return;
    }
    memset(&a, 0, sizeof(a));
    a.rrtype = req->rrtype;
    if (err != 0 || res == NULL) {
        a.status = DNS_TEMP;
        a.why = err != 0 ? ub_strerror(err) : "no result";
    } else if (res->bogus) {
        /* Signatures that do not verify: an attack or a broken zone; neither is an
         * answer, and neither may look like "no records". */
        a.status = DNS_TEMP;
        snprintf(why, sizeof(why), "DNSSEC validation failed: %s",
                 res->why_bogus ? res->why_bogus : "bogus answer");
        a.why = why;
    } else {
        a.status = dns_wire_classify(0, res->rcode, res->nxdomain, res->havedata);
        a.secure = res->secure != 0;
        if (a.status == DNS_TEMP)
            a.why = res->rcode == 2 ? "SERVFAIL" : "DNS error";
        if (a.status == DNS_OK) {
            while (res->data[n] != NULL)
                n++;
            a.n = n;
            a.data = (unsigned char *const *)res->data;
            a.len = res->len;
        }
    }
    req->cb(req->arg, &a);
    if (res != NULL)
        ub_resolve_free(res);
    free(req);
}

/* dns_ask - one query on ctx. */
static int
dns_ask(struct ub_ctx *ctx, const char *name, int rrtype, dns_cb cb, void *arg)
{
    struct dns_req *req;
    int             ub_id = 0, rc;

    if (ctx == NULL)
        return -1;
    req = xcalloc(1, sizeof(*req));
    req->ctx = ctx;
    req->cb = cb;
    req->arg = arg;
    req->rrtype = rrtype;
    rc = ub_resolve_async(ctx, name, rrtype, 1, req, dns_done, &ub_id);
    if (rc != 0) {
        log_warnx("resolver: %s type %d: %s", name, rrtype, ub_strerror(rc));
        free(req);
        return -1;
    }
    /* Answers come only from ub_process() on the loop, so req is still ours here. */
    req->ub_id = ub_id;
    do {
        dns_last_id = dns_last_id == 0x7fffffff ? 1 : dns_last_id + 1;
    } while (dns_find(dns_last_id) != NULL);
    req->id = dns_last_id;
    dns_link(req);
    return req->id;
}

int
dns_query(const char *name, int rrtype, dns_cb cb, void *arg)
{
    return dns_ask(dns_ub, name, rrtype, cb, arg);
}

int
dns_query_dnssec(const char *name, int rrtype, dns_cb cb, void *arg)
{
    return dns_ask(dns_ub_sec != NULL ? dns_ub_sec : dns_ub, name, rrtype, cb, arg);
}

void
dns_cancel(int id)
{
    struct dns_req *req;

    if (dns_ub == NULL || id <= 0 || (req = dns_find(id)) == NULL)
        return;
    /* libunbound never calls back for a query it cancelled and never returns our record;
     * if it cannot cancel, the answer is dropped when it comes. */
    if (ub_cancel(req->ctx, req->ub_id) == 0) {
        dns_unlink(req);
        free(req);
    } else {
        req->cancelled = 1;
    }
}

void
dns_free(void)
{
    if (dns_ub == NULL)
        return;
    ev_io_del(dns_ev, ub_fd(dns_ub));
    ub_ctx_delete(dns_ub);
    dns_ub = NULL;
    if (dns_ub_sec != NULL) {
        ev_io_del(dns_ev, ub_fd(dns_ub_sec));
        ub_ctx_delete(dns_ub_sec);
        dns_ub_sec = NULL;
    }
    for (size_t i = 0; i < dns_nservers; i++)
        free(dns_servers[i]);
    free(dns_servers);
    dns_servers = NULL;
    dns_nservers = 0;
    for (size_t b = 0; b < DNS_BUCKETS; b++)
        while (dns_pending[b] != NULL) {
            struct dns_req *req = dns_pending[b];

            dns_unlink(req);
            free(req);
        }
}
