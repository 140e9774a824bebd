/* dns - libunbound on the event loop (see dns.h).
 *
 * libunbound resolves in a thread of its own (ub_ctx_async(ctx, 1)) and signals finished
 * queries on ub_fd(); ub_process() then calls our trampoline, which turns the ub_result into
 * a struct dns_answer, calls the caller and frees the result. Queries in progress are kept
 * in a small hash by id, so that dns_cancel() can free the request record that libunbound
 * will never hand back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unbound.h>

#include "buf.h"
#include "dns.h"
#include "log.h"

#define DNS_BUCKETS 256

struct dns_req {
    struct dns_req *next, *prev;       /* hash chain */
    int             id;
    dns_cb          cb;
    void           *arg;
    int             rrtype;
    int             cancelled;         /* ub_cancel() failed: drop the answer when it comes */
};

static struct ub_ctx  *dns_ub;
static struct ev      *dns_ev;
static struct dns_req *dns_pending[DNS_BUCKETS];

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

/* dns_io - answers are ready. */
static void
dns_io(int fd, int events, void *arg)
{
    int rc;

    (void)fd;
    (void)events;
    (void)arg;
    if ((rc = ub_process(dns_ub)) != 0)
        log_warnx("resolver: ub_process: %s", ub_strerror(rc));
}

/* dns_set - one libunbound option; -1 with the reason in err. */
static int
dns_set(const char *opt, const char *val, char *err, size_t errlen)
{
    int rc = ub_ctx_set_option(dns_ub, opt, val);

    if (rc != 0)
        snprintf(err, errlen, "libunbound: %s %s: %s", opt, val, ub_strerror(rc));
    return rc != 0 ? -1 : 0;
}

int
dns_init(struct ev *ev, char *const *servers, size_t n, int lan_zones, char *err,
         size_t errlen)
{
    int rc;

    dns_ev = ev;
    if ((dns_ub = ub_ctx_create()) == NULL) {
        snprintf(err, errlen, "ub_ctx_create failed");
        return -1;
    }
    if ((rc = ub_ctx_async(dns_ub, 1)) != 0) {
        snprintf(err, errlen, "libunbound: %s", ub_strerror(rc));
        goto fail;
    }
    /* Forwarders on loopback (dnsmasq, a local cache) are normal for us. unbound answers
     * NXDOMAIN itself for the RFC 6761 name "test."; test networks (and ours) route real
     * mail there, so ask the servers instead. */
    if (dns_set("do-not-query-localhost:", "no", err, errlen) == -1
        || dns_set("local-zone:", "test. transparent", err, errlen) == -1)
        goto fail;
    /* The private reverse zones are NXDOMAIN by default: quick, and no word about the LAN
     * leaves the host. A site whose own DNS names its LAN clients asks for them; those
     * zones are unsigned below a signed parent, so validation must not expect signatures
     * (we validate nothing today; this keeps it right if a trust anchor is ever added). */
    if (lan_zones
        && (dns_set("unblock-lan-zones:", "yes", err, errlen) == -1
            || dns_set("insecure-lan-zones:", "yes", err, errlen) == -1))
        goto fail;
    for (size_t i = 0; i < n; i++)
        if ((rc = ub_ctx_set_fwd(dns_ub, servers[i])) != 0) {
            snprintf(err, errlen, "dns_servers %s: %s", servers[i], ub_strerror(rc));
            goto fail;
        }
    if (n == 0 && (rc = ub_ctx_resolvconf(dns_ub, NULL)) != 0)
        log_warnx("resolver: /etc/resolv.conf: %s (resolving from the root)",
                  ub_strerror(rc));
    if ((rc = ub_ctx_hosts(dns_ub, NULL)) != 0)
        log_warnx("resolver: /etc/hosts: %s", ub_strerror(rc));
    if (ev_io_set(ev, ub_fd(dns_ub), EV_READ, dns_io, NULL) == -1) {
        snprintf(err, errlen, "cannot watch the resolver descriptor");
        goto fail;
    }
    return 0;
fail:
    ub_ctx_delete(dns_ub);
    dns_ub = NULL;
    return -1;
}

/* dns_done - libunbound's callback: translate and hand over. */
static void
dns_done(void *arg, int err, struct ub_result *res)
{
    struct dns_req   *req = arg;
    struct dns_answer a;
    size_t            n = 0;

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
    } else {
        a.status = dns_wire_classify(0, res->rcode, res->nxdomain, res->havedata);
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

int
dns_query(const char *name, int rrtype, dns_cb cb, void *arg)
{
    struct dns_req *req;
    int             id = 0, rc;

    if (dns_ub == NULL)
        return -1;
    req = xcalloc(1, sizeof(*req));
    req->cb = cb;
    req->arg = arg;
    req->rrtype = rrtype;
    rc = ub_resolve_async(dns_ub, name, rrtype, 1, req, dns_done, &id);
    if (rc != 0) {
        log_warnx("resolver: %s type %d: %s", name, rrtype, ub_strerror(rc));
        free(req);
        return -1;
    }
    /* Answers come only from ub_process() on the loop, so req is still ours here. */
    req->id = id > 0 ? id : 1;
    dns_link(req);
    return req->id;
}

void
dns_cancel(int id)
{
    struct dns_req *req;

    if (dns_ub == NULL || id <= 0 || (req = dns_find(id)) == NULL)
        return;
    /* libunbound never calls back for a query it cancelled and never returns our record;
     * if it cannot cancel, the answer is dropped when it comes. */
    if (ub_cancel(dns_ub, id) == 0) {
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
    for (size_t b = 0; b < DNS_BUCKETS; b++)
        while (dns_pending[b] != NULL) {
            struct dns_req *req = dns_pending[b];

            dns_unlink(req);
            free(req);
        }
}
