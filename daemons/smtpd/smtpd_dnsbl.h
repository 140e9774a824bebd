/* smtpd_dnsbl - DNS blocklists at connect (Postfix's reject_rbl_client, postscreen).
 *
 * smtpd_dnsbl_sites names the blocklists (libcommon/dnsbl: `zone[=filter][*weight]`);
 * during the connect phase every site is asked in parallel, alongside the PTR lookup and
 * bounded by smtpd_dnsbl_timeout. The weights of the sites that list the client add up;
 * at smtpd_dnsbl_threshold or more the client is blocked and s->dnsbl_zone names the
 * first listing site. A timeout, SERVFAIL or resolver error counts as not listed (fail
 * open). Clients in mynetworks or smtpd_client_limit_exceptions, and public/submit, are
 * not looked up. The refusal is given where the client access check refuses: before the
 * greeting with smtpd_delay_reject = no (smtpd_session.c), else at each RCPT
 * (smtpd_cmd.c); an access-table OK for the client overrides it. */
#ifndef POSTERN_SMTPD_DNSBL_H
#define POSTERN_SMTPD_DNSBL_H

#include <stddef.h>

struct smtpd_session;

typedef void (*smtpd_dnsbl_cb)(struct smtpd_session *);

/* smtpd_dnsbl_init - read and check the settings (before the chroot). -1 with the reason
 * in err. */
int  smtpd_dnsbl_init(char *err, size_t errlen);
void smtpd_dnsbl_free(void);
/* smtpd_dnsbl_client - ask the sites about the session's client. 1: done now (nothing to
 * ask; cb not called); 0: cb is called later on the loop, once, unless
 * smtpd_dnsbl_forget() ran. */
int  smtpd_dnsbl_client(struct smtpd_session *, smtpd_dnsbl_cb);
/* smtpd_dnsbl_forget - drop a lookup in progress and the verdict (the session closes). */
void smtpd_dnsbl_forget(struct smtpd_session *);
/* smtpd_dnsbl_refuse - if the client is blocked, answer the command (cmd: "CONNECT" gives
 * the 554 greeting, "RCPT" a 554 reply to rcpt), log and count it and return -1; else 0. */
int  smtpd_dnsbl_refuse(struct smtpd_session *, const char *cmd, const char *rcpt);

#endif
