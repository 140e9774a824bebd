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

/* smtpd_policy_check - one access stage for a command (cmd: "CONNECT", "HELO", "EHLO",
 * "MAIL", "RCPT", for logs): POLICY_CLIENT (key NULL: the session's client name and
 * address), POLICY_HELO (key: the HELO name), POLICY_SENDER (the sender, "" for <>) or
 * POLICY_RECIPIENT (the address); rcpt names the recipient of a RCPT in logs (or NULL).
 * Returns OK, REJECT, DEFER, HOLD or DISCARD (out filled) or POLICY_NONE; WARN entries
 * are logged here, nothing else is. Local submission (public/submit) always gets NONE. */
enum policy_kind smtpd_policy_check(struct smtpd_session *, enum policy_stage,
                                    const char *key, const char *cmd, const char *rcpt,
                                    struct policy_action *out);
/* smtpd_policy_refuse - answer a command an access table refused (REJECT, DEFER, 4NN,
 * 5NN) with the action's code and Postfix's words ("<a@b.example>: Sender address
 * rejected: Access denied", or the table's text after the colon), log it with the
 * envelope so far, and count it (an error of the session when it is 5xx). */
void smtpd_policy_refuse(struct smtpd_session *, enum policy_stage, const char *key,
                         const char *cmd, const char *rcpt, const struct policy_action *);
/* smtpd_policy_note - log a HOLD or DISCARD met at a stage; returns its reason for the
 * log at the end of DATA (the caller frees it, or hands it to smtpd_policy_merge). */
char *smtpd_policy_note(struct smtpd_session *, enum policy_stage, const char *key,
                        const char *cmd, const char *rcpt, const struct policy_action *);
/* smtpd_policy_merge - keep the stronger of *verdict and k (DISCARD over HOLD over NONE)
 * with its reason; newwhy (heap) is taken over or freed. */
void smtpd_policy_merge(enum policy_kind *verdict, char **why, enum policy_kind k,
                        char *newwhy);
/* smtpd_policy_verdict - what the access answers so far say about the session's message:
 * DISCARD, HOLD or NONE (client action, HELO stage, this transaction; DISCARD wins), and
 * why (valid until the session's next change). */
enum policy_kind smtpd_policy_verdict(const struct smtpd_session *, const char **why);

/* smtpd_policy_content_new - a scanner of header_checks, mime_header_checks and
 * body_checks for the session's messages, logging what applies with the session's queue
 * ID and envelope; NULL when no content rules are set (the caller then copies nothing). */
struct content *smtpd_policy_content_new(struct smtpd_session *);

#endif
