/* smtp_resolve - libunbound on the event loop (see smtp_resolve.h).
 *
 * libunbound resolves in a thread of its own (ub_ctx_async(ctx, 1)) and signals finished
 * queries on ub_fd(); ub_process() then calls our trampoline, which turns the ub_result into
 * a struct smtp_dns_answer, calls the caller and frees the result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <unbound.h>

#include "buf.h"
#include "log.h"
#include "smtp_resolve.h"

struct smtp_resolve_req {
    smtp_resolve_cb cb;
    void           *arg;
    int             rrtype;
};

static struct ub_ctx *smtp_ub;
static struct ev     *smtp_resolve_ev;

/* smtp_resolve_io - answers are ready. */
static void
smtp_resolve_io(int fd, int events, void *arg)
{
    int rc;

    (void)fd;
    (void)events;
    (void)arg;
    if ((rc = ub_process(smtp_ub)) != 0)
        log_warnx("resolver: ub_process: %s", ub_strerror(rc));
}

int
smtp_resolve_init(struct ev *ev, char *const *servers, size_t n, char *err, size_t errlen)
{
    int rc;

    smtp_resolve_ev = ev;
    if ((smtp_ub = ub_ctx_create()) == NULL) {
        snprintf(err, errlen, "ub_ctx_create failed");
        return -1;
    }
    if ((rc = ub_ctx_async(smtp_ub, 1)) != 0)
        goto fail;
    /* Forwarders on loopback (dnsmasq, a local cache) are normal for us. */
    if ((rc = ub_ctx_set_option(smtp_ub, "do-not-query-localhost:", "no")) != 0)
        goto fail;
    /* unbound answers NXDOMAIN itself for the RFC 6761 name "test."; test networks (and
     * ours) route real mail there, so ask the servers instead. */
    if ((rc = ub_ctx_set_option(smtp_ub, "local-zone:", "test. transparent")) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if ((rc = ub_ctx_set_fwd(smtp_ub, servers[i])) != 0) {
            snprintf(err, errlen, "dns_servers %s: %s", servers[i], ub_strerror(rc));
            goto out;
        }
    if (n == 0 && (rc = ub_ctx_resolvconf(smtp_ub, NULL)) != 0)
        log_warnx("resolver: /etc/resolv.conf: %s (resolving from the root)",
                  ub_strerror(rc));
    if ((rc = ub_ctx_hosts(smtp_ub, NULL)) != 0)
        log_warnx("resolver: /etc/hosts: %s", ub_strerror(rc));
    if (ev_io_set(ev, ub_fd(smtp_ub), EV_READ, smtp_resolve_io, NULL) == -1) {
        snprintf(err, errlen, "cannot watch the resolver descriptor");
        goto out;
    }
    return 0;
fail:
    snprintf(err, errlen, "libunbound: %s", ub_strerror(rc));
out:
    ub_ctx_delete(smtp_ub);
    smtp_ub = NULL;
    return -1;
}

/* smtp_resolve_done - libunbound's callback: translate and hand over. */
static void
smtp_resolve_done(void *arg, int err, struct ub_result *res)
{
    struct smtp_resolve_req *req = arg;
    struct smtp_dns_answer   a;
    size_t                   n = 0;

    memset(&a, 0, sizeof(a));
    a.rrtype = req->rrtype;
    if (err != 0 || res == NULL) {
        a.status = SMTP_DNS_TEMP;
        a.why = err != 0 ? ub_strerror(err) : "no result";
    } else {
        a.status = smtp_dns_classify(0, res->rcode, res->nxdomain, res->havedata);
        if (a.status == SMTP_DNS_TEMP)
            a.why = res->rcode == 2 ? "SERVFAIL" : "DNS error";
        if (a.status == SMTP_DNS_OK) {
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
smtp_resolve_query(const char *name, int rrtype, smtp_resolve_cb cb, void *arg)
{
    struct smtp_resolve_req *req;
    int                      id = 0, rc;

    if (smtp_ub == NULL)
        return -1;
    req = xcalloc(1, sizeof(*req));
    req->cb = cb;
    req->arg = arg;
    req->rrtype = rrtype;
    rc = ub_resolve_async(smtp_ub, name, rrtype, 1, req, smtp_resolve_done, &id);
    if (rc != 0) {
        log_warnx("resolver: %s type %d: %s", name, rrtype, ub_strerror(rc));
        free(req);
        return -1;
    }
    return id > 0 ? id : 1;
}

void
smtp_resolve_cancel(int id)
{
    /* The request record of a cancelled query is leaked by design: libunbound does not
     * hand it back, and cancellation only happens when a delivery is torn down early. */
    if (smtp_ub != NULL && id > 0)
        ub_cancel(smtp_ub, id);
}

void
smtp_resolve_free(void)
{
    if (smtp_ub == NULL)
        return;
    ev_io_del(smtp_resolve_ev, ub_fd(smtp_ub));
    ub_ctx_delete(smtp_ub);
    smtp_ub = NULL;
}
