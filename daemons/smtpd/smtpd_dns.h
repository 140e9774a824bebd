/* smtpd_dns - the client's name: a PTR lookup confirmed by a forward lookup.
 *
 * As Postfix does: the address's PTR names are looked up; a name counts only if one of
 * its A/AAAA records gives the address back (forward-confirmed reverse DNS). s->client_ptr
 * gets the first PTR name (or "unknown"), s->client_name the confirmed one (or
 * "unknown"). The lookup runs on libcommon/dns (libunbound on the loop) and is bounded by
 * smtpd_peername_timeout; a temporary failure or timeout leaves "unknown". Disabled by
 * smtpd_peername_lookup = no and for public/submit sessions. Used by smtpd_session.c
 * before the greeting; the names go to access checks, logs, Received: and the envelope. */
#ifndef POSTERN_SMTPD_DNS_H
#define POSTERN_SMTPD_DNS_H

#include <stddef.h>

struct smtpd_session;

typedef void (*smtpd_dns_cb)(struct smtpd_session *);

/* smtpd_dns_init - the resolver, before the chroot (reads resolv.conf, hosts, dns_servers).
 * -1 with the reason in err. */
int  smtpd_dns_init(char *err, size_t errlen);
void smtpd_dns_free(void);
/* smtpd_dns_client - look up the session's client. 1: done now (names filled, cb not
 * called); 0: cb is called later on the loop, once, unless smtpd_dns_forget() ran. */
int  smtpd_dns_client(struct smtpd_session *, smtpd_dns_cb);
/* smtpd_dns_forget - drop a lookup in progress (the session closes). */
void smtpd_dns_forget(struct smtpd_session *);

#endif
