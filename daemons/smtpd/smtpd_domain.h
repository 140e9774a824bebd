/* smtpd_domain - reject_unknown_sender_domain: does the MAIL FROM domain exist in the DNS.
 *
 * With smtpd_reject_unknown_sender_domain = yes, a sender domain that is not ours (not in
 * local_domains), not an address literal and not <> is looked up at MAIL FROM: its MX
 * records, and when it has none, its A and AAAA records. No MX, A or AAAA record (NXDOMAIN
 * or no data): smtpd_unknown_address_reject_code (default 450, as Postfix) with 4.1.8 or 5.1.8
 * "Domain not found"; a null MX (RFC 7505): 550 5.7.27 "does not accept mail"; a
 * temporary DNS failure or no answer within smtpd_peername_timeout: 450 4.1.8. Sessions
 * that are authenticated, in mynetworks or on public/submit are not checked. The lookup
 * runs on the loop; the session reads no further command until it is done (smtpd_cmd.c
 * gives the verdict at MAIL or, with smtpd_delay_reject, at each RCPT). */
#ifndef POSTERN_SMTPD_DOMAIN_H
#define POSTERN_SMTPD_DOMAIN_H

#include <stddef.h>

#include "policy.h"

struct smtpd_session;

/* A refusal when a is filled in (a->kind REJECT or DEFER), else NULL: the domain exists. */
typedef void (*smtpd_domain_cb)(struct smtpd_session *, const struct policy_action *a);

/* smtpd_domain_init - read the settings. -1 with the reason in err. */
int  smtpd_domain_init(char *err, size_t errlen);
/* smtpd_domain_check - check the sender's domain (sender "" for <>). 1: nothing to check
 * (cb not called); 0: cb is called later on the loop, once, unless smtpd_domain_forget()
 * ran; s->domain is set meanwhile. */
int  smtpd_domain_check(struct smtpd_session *, const char *sender, smtpd_domain_cb);
/* smtpd_domain_forget - drop a lookup in progress (RSET, the session closes). */
void smtpd_domain_forget(struct smtpd_session *);

#endif
