/* smtpd_policy - access maps and content rules as smtpd applies them.
 *
 * smtpd_policy_init() opens the access tables (smtpd_client_access, smtpd_helo_access,
 * smtpd_sender_access, smtpd_recipient_access) and the content rules (header_checks,
 * mime_header_checks, body_checks) before the chroot; a bad table or pattern stops smtpd
 * with file:line (postern check reports the same). The stages and what each sees are
 * documented in conf/postern.conf. Used by smtpd_session.c (the client check at connect
 * when smtpd_delay_reject = no), smtpd_cmd.c (HELO, MAIL, RCPT) and smtpd_data.c (the
 * message). */
#ifndef POSTERN_SMTPD_POLICY_H
#define POSTERN_SMTPD_POLICY_H

#include <stddef.h>

#include "content.h"
#include "policy.h"

struct smtpd_session;

int  smtpd_policy_init(char *err, size_t errlen);
void smtpd_policy_free(void);

/* smtpd_policy_client - the client access check (s->client_name, s->addr): the action's
 * kind (out filled) or POLICY_NONE. WARN entries are logged here. */
enum policy_kind smtpd_policy_client(struct smtpd_session *, struct policy_action *out);

#endif
