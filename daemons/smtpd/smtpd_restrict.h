/* smtpd_restrict - Postfix's built-in reject_* restrictions, switched on by settings.
 *
 * Each applies at one access stage, after that stage's access tables and only when they
 * gave no answer (an OK there lets the client, name or address through, as in Postfix's
 * restriction lists with the check_*_access entry first):
 *   client  smtpd_reject_unknown_client_hostname (no forward-confirmed reverse name) and
 *           smtpd_reject_unknown_reverse_client_hostname (no reverse name at all):
 *           unknown_client_hostname_reject_code (450), 4.7.25; always 450 when the DNS
 *           lookup failed temporarily;
 *   HELO    smtpd_reject_invalid_helo_hostname (501 5.5.2 "Invalid name") and
 *           smtpd_reject_non_fqdn_helo_hostname (504 5.5.2);
 *   sender  smtpd_reject_non_fqdn_sender, recipient smtpd_reject_non_fqdn_recipient
 *           (504 5.5.2 "need fully-qualified address"; <> and a bare <postmaster> are
 *           never refused).
 * Clients in mynetworks and authenticated clients are exempt (permit_mynetworks and
 * permit_sasl_authenticated before them, as a Postfix configuration lists them); local
 * submission never reaches here. Used by smtpd_policy.c. */
#ifndef POSTERN_SMTPD_RESTRICT_H
#define POSTERN_SMTPD_RESTRICT_H

#include <stddef.h>

#include "policy.h"

struct smtpd_session;

/* smtpd_restrict_init - read the settings. -1 with the reason in err. */
int smtpd_restrict_init(char *err, size_t errlen);

/* smtpd_restrict_check - the stage's built-in restrictions (key: the HELO name, sender or
 * recipient; unused for the client stage): POLICY_REJECT or POLICY_DEFER with out filled
 * (code, enhanced code, text after "rejected: ", where), else POLICY_NONE. */
enum policy_kind smtpd_restrict_check(const struct smtpd_session *, enum policy_stage,
                                      const char *key, struct policy_action *out);

/* smtpd_restrict_hostname_valid - a HELO name as Postfix's valid_hostname() or an address
 * literal takes it: labels of letters, digits, '-' and '_' (1..63 octets, no hyphen at
 * either end), at most 255 octets, a last label that is not all digits; or "[address]". */
int smtpd_restrict_hostname_valid(const char *name);

#endif
