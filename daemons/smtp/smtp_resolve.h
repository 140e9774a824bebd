/* smtp_resolve - asynchronous DNS for the smtp agent: libunbound on the ev loop.
 *
 * One resolver per process, set up before privileges are dropped: it forwards to the
 * configured dns_servers (else the name servers of /etc/resolv.conf) and knows /etc/hosts,
 * both read at set-up, so nothing is read after the chroot. Queries run in libunbound's
 * worker thread; answers come back through ub_fd() on the loop and each callback runs on
 * the loop. A callback is never called for a cancelled query. */
#ifndef POSTERN_SMTP_RESOLVE_H
#define POSTERN_SMTP_RESOLVE_H

#include <stddef.h>

#include "ev.h"
#include "smtp_dns.h"

/* An answer: rdata of every record (rrtype as asked), or a status without records. */
struct smtp_dns_answer {
    enum smtp_dns_status  status;
    int                   rrtype;
    size_t                n;
    unsigned char *const *data;
    const int            *len;
    const char           *why;          /* for TEMP: the resolver's reason */
};

typedef void (*smtp_resolve_cb)(void *arg, const struct smtp_dns_answer *);

/* smtp_resolve_init - servers: addresses to forward to (n = 0: /etc/resolv.conf).
 * -1 with the reason in err. */
int  smtp_resolve_init(struct ev *, char *const *servers, size_t n, char *err, size_t errlen);
/* smtp_resolve_query - ask; returns an id > 0 for smtp_resolve_cancel, or -1 (cb is then
 * not called; the caller treats it as a temporary failure). */
int  smtp_resolve_query(const char *name, int rrtype, smtp_resolve_cb, void *arg);
void smtp_resolve_cancel(int id);
void smtp_resolve_free(void);

#endif
