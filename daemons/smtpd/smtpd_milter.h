/* smtpd_milter - smtpd_milters: Sendmail milters (OpenDKIM, rspamd, ClamAV) asked at each
 * SMTP stage, on the event loop.
 *
 * Each session opens its own connection to every milter in smtpd_milters when its connect
 * phase is over. A stage (smtpd_milter_connect .. smtpd_milter_eom) asks the milters in
 * order and answers once, through the callback, with the first refusal or "continue";
 * meanwhile the session reads no command (s->milter_wait). A milter that cannot be
 * reached, breaks the protocol or is silent past its timeout gets milter_default_action
 * for the rest of the session. Local submission (public/submit) is not filtered, as
 * Postfix leaves sendmail's mail to non_smtpd_milters. */
#ifndef POSTERN_SMTPD_MILTER_H
#define POSTERN_SMTPD_MILTER_H

#include <stddef.h>

#include "milter.h"
#include "policy.h"

struct smtpd_session;

/* What the milters said about a stage: kind NONE (go on), REJECT, DEFER or DISCARD, with
 * the reply for the client. */
struct smtpd_milter_verdict {
    enum policy_kind kind;
    int              code;
    char             enh[16];
    char             text[MILTER_TEXT_MAX];
    char             who[128];           /* the milter that decided, for the log */
};

typedef void (*smtpd_milter_cb)(struct smtpd_session *, const struct smtpd_milter_verdict *);

/* smtpd_milter_init - read the milter settings (before the chroot: inet: names are
 * resolved here). -1 with the reason in err. */
int  smtpd_milter_init(char *err, size_t errlen);

/* The stages. Each returns 1 when there is nothing to ask (no milters for this session):
 * the caller goes on at once; else 0, and cb gets the verdict later, from the loop. */
int  smtpd_milter_connect(struct smtpd_session *, smtpd_milter_cb);
int  smtpd_milter_helo(struct smtpd_session *, smtpd_milter_cb);
int  smtpd_milter_mail(struct smtpd_session *, smtpd_milter_cb);
/* smtpd_milter_rcpt - rcpt as the client gave it, esmtp its ESMTP parameters as given. */
int  smtpd_milter_rcpt(struct smtpd_session *, const char *rcpt, const char *esmtp,
                       smtpd_milter_cb);
int  smtpd_milter_data(struct smtpd_session *, smtpd_milter_cb);
/* smtpd_milter_eom - the message is in the spool file (s->body_fd, s->body_written
 * octets): headers, body and end of message to each milter; before cb is told "go on",
 * the modifications they asked for are applied to the file and the envelope (headers,
 * recipients, sender, quarantine = hold). */
int  smtpd_milter_eom(struct smtpd_session *, smtpd_milter_cb);
/* smtpd_milter_abort - the transaction is over (RSET, a new MAIL, the end of a message). */
void smtpd_milter_abort(struct smtpd_session *);
/* smtpd_milter_end - the session ends: QUIT to each milter, everything freed. */
void smtpd_milter_end(struct smtpd_session *);

#endif
