/* smtpd_anvil - smtpd's side of anvil, the per-client counters shared by all smtpd
 * processes (daemons/anvil; messages IPC_ANVIL_* in libcommon/ipc_msg.h).
 *
 * A session asks before it goes on: at connect (concurrent sessions and connection rate),
 * at MAIL (message rate), at RCPT (recipient rate) and before AUTH (failure rate); each
 * failed AUTH is reported. smtpd_anvil.c owns the limits (smtpd_client_*_limit, 0 = none)
 * and the exceptions (smtpd_client_limit_exceptions: networks, `mynetworks` standing for
 * that list): an exempt client, an event without a limit, or no anvil (not started yet,
 * restarting: fail open, logged once) is allowed at once without a round trip. Otherwise
 * the answer comes later on the loop, once per request, never for a session that was
 * closed (smtpd_anvil_forget). Used by smtpd_session.c (connect, disconnect) and
 * smtpd_cmd.c (MAIL, RCPT, AUTH). */
#ifndef POSTERN_SMTPD_ANVIL_H
#define POSTERN_SMTPD_ANVIL_H

#include "ipc.h"

struct smtpd_session;

enum smtpd_anvil_event {
    SMTPD_ANVIL_CONNECT = 0,
    SMTPD_ANVIL_MAIL,
    SMTPD_ANVIL_RCPT,
    SMTPD_ANVIL_AUTH,                 /* before an AUTH exchange: failures so far */
};

/* smtpd_anvil_cb - allowed: 1 go on; 0 over the limit, with the reply to give: code and
 * enhanced code (421 4.7.0 for connections and AUTH, which then close the session; 450
 * 4.7.1 for MAIL and RCPT) and text ("Error: too many connections from 192.0.2.1"). */
typedef void (*smtpd_anvil_cb)(struct smtpd_session *, int allowed, int code,
                               const char *enh, const char *text);

/* smtpd_anvil_init - read the limits and exceptions (after smtpd_mynetworks()); -1 with
 * the reason in err. */
int  smtpd_anvil_init(char *err, size_t errlen);
void smtpd_anvil_free(void);
/* smtpd_anvil_peer - master sent a socket to anvil (IPC_MASTER_PEER, kind anvil); a new one
 * replaces the old (anvil restarted: its counts start again). */
void smtpd_anvil_peer(int fd);
/* smtpd_anvil_exempt - the client is in smtpd_client_limit_exceptions. */
int  smtpd_anvil_exempt(const struct smtpd_session *);

/* smtpd_anvil_check - count the event for the session's client and check its limit.
 * 1: allowed now (cb is not called); 0: cb is called later with the verdict. A session
 * has at most one check pending. SMTPD_ANVIL_CONNECT also marks the session counted, so
 * that smtpd_anvil_disconnect() takes it off again. */
int  smtpd_anvil_check(struct smtpd_session *, enum smtpd_anvil_event, smtpd_anvil_cb);
/* smtpd_anvil_auth_failed - report a failed AUTH (no answer). */
void smtpd_anvil_auth_failed(struct smtpd_session *);
/* smtpd_anvil_disconnect - the session ends: concurrent -1 if it was counted, and any
 * pending answer is dropped. Called from smtpd_session_close(). */
void smtpd_anvil_disconnect(struct smtpd_session *);

#endif
