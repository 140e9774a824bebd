/* smtpd_login - smtpd_sender_login_map: which logins may use which sender addresses.
 *
 * Postfix's smtpd_sender_login_maps with reject_sender_login_mismatch, OpenSMTPD's `senders`.
 * The map (text `address-or-@domain  login[, login...]`, built with `postern map build`) is
 * opened before the chroot. At MAIL FROM the sender is looked up as the full address, then
 * as "@domain"; the first entry found lists its owners (compared without regard to case).
 * An authenticated session may use only a sender whose entry names its login; any other,
 * listed or not, gets 553 5.7.1 "<addr>: Sender address rejected: not owned by user LOGIN".
 * On the submission listeners (submission, smtps) a session that has not authenticated gets
 * 553 5.7.1 "... not logged in" for a sender the map lists (someone owns it: they must log
 * in to use it); an unlisted sender, and every sender on port 25, is left alone there. Not
 * checked: the null sender <> (bounces and auto-replies have no owner), public/submit
 * (sendmail's sender comes from the peer's uid, smtpd_submit.c), and everything when the
 * map is not set (today's behaviour: any sender). A map lookup that fails gets 451 4.3.5.
 * A refusal is an access-table refusal (smtpd_policy_refuse): logged with the client and
 * the envelope, counted in policy_rejected and towards smtpd_error_limit. */
#ifndef POSTERN_SMTPD_LOGIN_H
#define POSTERN_SMTPD_LOGIN_H

#include <stddef.h>

struct smtpd_session;

/* smtpd_login_init - open smtpd_sender_login_map if set. -1 with the reason in err. */
int  smtpd_login_init(char *err, size_t errlen);
void smtpd_login_free(void);
/* smtpd_login_check - may this session use sender ("" for <>) at MAIL? 0: yes; -1:
 * refused (answered and logged). */
int  smtpd_login_check(struct smtpd_session *, const char *sender);

#endif
