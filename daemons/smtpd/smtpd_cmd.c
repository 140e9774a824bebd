/* smtpd_cmd - the SMTP commands: order, syntax, parameters, recipients, limits, STARTTLS, AUTH.
 *
 * Each handler gets one parsed command and answers it with exactly one reply (or hands
 * DATA on to smtpd_data, which answers when qmgr has; or an AUTH password to a worker
 * thread (smtpd_pwcheck), whose answer comes back through the loop, and a failed AUTH to a
 * timer, which answers after smtpd_auth_failure_delay while the loop serves everyone
 * else). Every failure on client input is a reply and, if it is the client's fault, counts
 * towards smtpd_error_limit.
 *
 * RCPT: a domain outside local_domains and relay_domains is refused (554 5.7.1) unless the
 * client is authenticated or in mynetworks; then libcommon/resolve expands the address
 * (virtual_alias_map, alias_map) and checks local recipients against mailbox_map, and its
 * error, if any, is the reply. Each final recipient is added once per transaction, with the
 * RCPT address as its ORCPT when it came from an alias and the client gave none, and all of
 * them count towards smtpd_recipient_limit. What an alias of ours expands to needs no relay
 * permission: the administrator chose it (as in Postfix).
 *
 * Access tables (smtpd_policy.c) run after the relay check, which no access OK can
 * override: with smtpd_delay_reject = yes the client (once per session), HELO and sender
 * stages run at each RCPT, so a refusal names the sender and the recipient; with `no` the
 * client stage ran at connect (smtpd_session.c), HELO runs at HELO/EHLO and the sender at
 * MAIL. The recipient stage always runs at RCPT, before the recipient is resolved. A
 * refusal is the command's reply; a HOLD or DISCARD from the client or HELO stage covers
 * every transaction of the session, one from the sender or a recipient (once accepted) the
 * current transaction; smtpd_data acts on them at the end of DATA. A client refused at
 * connect gets 503 for everything but QUIT. Then anvil (smtpd_anvil.c) counts MAIL, RCPT
 * and AUTH against the client's rate limits: while its answer is pending the session reads
 * no further command, and what the command needs to finish waits in s->cmd_wait.
 *
 * MAIL on submit (public/submit, sendmail): the sender is <user@myhostname> for the
 * peer's login name unless the peer is root or in admin_group (smtpd_submit.c); the
 * client is trusted for relaying like mynetworks, and neither STARTTLS nor AUTH is offered.
 * With smtpd_sender_login_map, MAIL checks that the login owns the sender (smtpd_login.c).
 *
 * STARTTLS is offered where a certificate is configured (not on smtps, not twice) and
 * required on submission before AUTH and MAIL; submission also requires AUTH before MAIL
 * (DESIGN: "STARTTLS then AUTH required"). AUTH PLAIN and LOGIN (RFC 4954) are offered only
 * inside TLS, on submission and smtps, with an auth map. Decoded credentials live only in
 * a struct smtp_auth that is wiped and freed when the exchange ends (a copy of the password
 * goes to the worker, which wipes it after the check); the lines that carried them are
 * wiped by the caller (s->wipe_input). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "content.h"
#include "log.h"
#include "pwhash.h"
#include "smtp_reply.h"
#include "smtpd.h"
#include "smtpd_anvil.h"
#include "smtpd_dnsbl.h"
#include "smtpd_domain.h"
#include "smtpd_login.h"
#include "smtpd_milter.h"
#include "smtpd_policy.h"

#define SMTPD_AUTH_PLAIN 1            /* struct smtp_auth.mech */
#define SMTPD_CLIENT_LABEL 340        /* "name[addr]" */

/* What a RCPT or an AUTH needs once anvil has answered. */
struct smtpd_cmd_wait {
    struct smtp_rcpt_params rp;       /* RCPT: its parameters, */
    struct resolve_list     l;        /* its final recipients, */
    enum policy_kind        verdict;  /* and a HOLD or DISCARD of the recipient stage */
    char                   *why;
    char                   *auth_arg; /* AUTH: mechanism and initial response (a secret) */
    char                   *esmtp;    /* RCPT: the parameters as given, for milters */
};

/* smtpd_cmd_client_label - "name[addr]", the client as logs name it. */
static const char *
smtpd_cmd_client_label(const struct smtpd_session *s, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s[%s]", s->client_name[0] ? s->client_name : "unknown", s->addr);
    return out;
}

/* smtpd_cmd_fail - an error reply that counts towards the error limit. */
static void __attribute__((format(printf, 4, 5)))
smtpd_cmd_fail(struct smtpd_session *s, int code, const char *enh, const char *fmt, ...)
{
    char    text[SMTP_REPLY_LINE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    smtpd_session_reply(s, code, enh, "%s", text);
    (void)smtpd_session_error(s);
}

/* smtpd_cmd_wait_free - forget what a command waiting for anvil kept; the AUTH secret is
 * wiped. */
static void
smtpd_cmd_wait_free(struct smtpd_cmd_wait **wp)
{
    struct smtpd_cmd_wait *w = *wp;

    if (w == NULL)
        return;
    resolve_list_free(&w->l);
    free(w->why);
    free(w->esmtp);
    if (w->auth_arg != NULL) {
        explicit_bzero(w->auth_arg, strlen(w->auth_arg));
        free(w->auth_arg);
    }
    free(w);
    *wp = NULL;
}

/* smtpd_cmd_txn_reset - forget the transaction (not the HELO). */
void
smtpd_cmd_txn_reset(struct smtpd_session *s)
{
    size_t i;

    free(s->sender);
    s->sender = NULL;
    for (i = 0; i < s->nrcpt; i++) {
        free(s->rcpts[i].addr);
        free(s->rcpts[i].orcpt);
        free(s->rcpts[i].given);
    }
    free(s->rcpts);
    s->rcpts = NULL;
    s->nrcpt = s->rcpt_cap = 0;
    memset(&s->mail, 0, sizeof(s->mail));
    free(s->mail_esmtp);
    s->mail_esmtp = NULL;
    s->smtputf8 = 0;
    s->qid[0] = '\0';
    s->txn_verdict = POLICY_NONE;
    free(s->txn_why);
    s->txn_why = NULL;
    s->hold = 0;
    smtpd_domain_forget(s);
    free(s->domain_action);
    s->domain_action = NULL;
    content_free(&s->content);
    smtpd_milter_abort(s);
    if (s->state != SMTPD_ST_CONNECTED)
        s->state = SMTPD_ST_GREETED;
}

/* smtpd_cmd_auth_end - forget an AUTH exchange in progress, wiping what it decoded. */
static void
smtpd_cmd_auth_end(struct smtpd_session *s)
{
    if (s->auth == NULL)
        return;
    smtp_auth_clear(s->auth);
    free(s->auth);
    s->auth = NULL;
}

/* smtpd_cmd_helo_forget - forget the HELO name and what its access stage said. */
static void
smtpd_cmd_helo_forget(struct smtpd_session *s)
{
    free(s->helo);
    s->helo = NULL;
    s->helo_verdict = POLICY_NONE;
    free(s->helo_why);
    s->helo_why = NULL;
}

/* smtpd_cmd_session_reset - back to the state right after the greeting: no HELO, no
 * transaction, not authenticated (STARTTLS, and the end of a session). */
void
smtpd_cmd_session_reset(struct smtpd_session *s)
{
    smtpd_cmd_auth_cancel(s);
    smtpd_cmd_wait_free(&s->cmd_wait);
    smtpd_cmd_txn_reset(s);
    smtpd_cmd_helo_forget(s);         /* the client stage's answer stays: same client */
    s->esmtp = 0;
    s->state = SMTPD_ST_CONNECTED;
    smtpd_cmd_auth_end(s);
    free(s->auth_user);
    s->auth_user = NULL;
    s->auth_method = NULL;
}

/* smtpd_cmd_starttls_offered - may this session still switch to TLS? */
static int
smtpd_cmd_starttls_offered(const struct smtpd_session *s)
{
    return smtpd.tls != NULL && s->tls == NULL && s->svc != SMTPD_SVC_SMTPS
        && s->svc != SMTPD_SVC_SUBMIT;
}

/* smtpd_cmd_auth_offered - AUTH only inside TLS, on submission and smtps, with a map. */
static int
smtpd_cmd_auth_offered(const struct smtpd_session *s)
{
    return smtpd.auth_map != NULL && s->tls_phase == SMTPD_TLS_ON
        && s->svc != SMTPD_SVC_SMTP && s->svc != SMTPD_SVC_SUBMIT;
}

/* smtpd_cmd_tls_required - submission: nothing but the basics before STARTTLS. */
static int
smtpd_cmd_tls_required(const struct smtpd_session *s)
{
    return s->svc == SMTPD_SVC_SUBMISSION && s->tls_phase != SMTPD_TLS_ON;
}

/* smtpd_cmd_helo_ok - a HELO/EHLO argument we can put into Received: one word of printable
 * ASCII without the characters that would confuse the comment syntax of that header. */
static int
smtpd_cmd_helo_ok(const char *arg, size_t len)
{
    size_t i;

    if (len == 0 || len > 255)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)arg[i];
        if (c <= 32 || c >= 127 || c == '(' || c == ')' || c == '\\' || c == ';')
            return 0;
    }
    return 1;
}

/* smtpd_cmd_helo_access - the HELO stage; -1: refused (answered). A HOLD or DISCARD
 * holds until the next HELO; it is logged when it first applies. */
static int
smtpd_cmd_helo_access(struct smtpd_session *s, const char *cmd, const char *rcpt)
{
    struct policy_action a;
    enum policy_kind     k;

    if (s->helo == NULL)
        return 0;
    k = smtpd_policy_check(s, POLICY_HELO, s->helo, cmd, rcpt, &a);
    if (k == POLICY_REJECT || k == POLICY_DEFER) {
        smtpd_policy_refuse(s, POLICY_HELO, s->helo, cmd, rcpt, &a);
        return -1;
    }
    if ((k == POLICY_HOLD || k == POLICY_DISCARD) && k != s->helo_verdict
        && s->helo_verdict != POLICY_DISCARD)
        smtpd_policy_merge(&s->helo_verdict, &s->helo_why, k,
                           smtpd_policy_note(s, POLICY_HELO, s->helo, cmd, rcpt, &a));
    return 0;
}

/* smtpd_cmd_sender_access - the sender stage (sender: "" for <>); -1: refused (answered).
 * A HOLD or DISCARD holds for this transaction. */
static int
smtpd_cmd_sender_access(struct smtpd_session *s, const char *sender, const char *cmd,
                        const char *rcpt)
{
    struct policy_action a;
    enum policy_kind     k;

    k = smtpd_policy_check(s, POLICY_SENDER, sender, cmd, rcpt, &a);
    if (k == POLICY_REJECT || k == POLICY_DEFER) {
        smtpd_policy_refuse(s, POLICY_SENDER, sender, cmd, rcpt, &a);
        return -1;
    }
    if ((k == POLICY_HOLD || k == POLICY_DISCARD) && k != s->txn_verdict
        && s->txn_verdict != POLICY_DISCARD)
        smtpd_policy_merge(&s->txn_verdict, &s->txn_why, k,
                           smtpd_policy_note(s, POLICY_SENDER, sender, cmd, rcpt, &a));
    return 0;
}

/* smtpd_cmd_client_access - the client stage at RCPT: run once per session (unless it ran
 * at connect), its answer kept in s->client_action; -1: refused (answered). */
static int
smtpd_cmd_client_access(struct smtpd_session *s, const char *rcpt)
{
    struct policy_action a;
    enum policy_kind     k;

    if (!s->client_checked) {
        s->client_checked = 1;
        k = smtpd_policy_check(s, POLICY_CLIENT, NULL, "RCPT", rcpt, &a);
        if (k != POLICY_NONE) {
            s->client_action = xmalloc(sizeof(*s->client_action));
            *s->client_action = a;
        }
        if (k == POLICY_HOLD || k == POLICY_DISCARD)
            free(smtpd_policy_note(s, POLICY_CLIENT, NULL, "RCPT", rcpt, &a));
    }
    if (s->client_action != NULL && (s->client_action->kind == POLICY_REJECT
                                     || s->client_action->kind == POLICY_DEFER)) {
        smtpd_policy_refuse(s, POLICY_CLIENT, NULL, "RCPT", rcpt, s->client_action);
        return -1;
    }
    /* the blocklists come after the access table, whose OK allowlists the client */
    if ((s->client_action == NULL || s->client_action->kind != POLICY_OK)
        && smtpd_dnsbl_refuse(s, "RCPT", rcpt) == -1)
        return -1;
    return 0;
}

static void smtpd_cmd_helo_milter(struct smtpd_session *, const struct smtpd_milter_verdict *);
static void smtpd_cmd_helo_reply(struct smtpd_session *);

/* smtpd_cmd_helo - HELO and EHLO. */
static void
smtpd_cmd_helo(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    int esmtp = cmd->verb == SMTP_VERB_EHLO;

    if (cmd->arglen == 0) {
        smtpd_cmd_fail(s, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        return;
    }
    if (!smtpd_cmd_helo_ok(cmd->arg, cmd->arglen)) {
        smtpd_cmd_fail(s, 501, "5.5.4", "Error: invalid %s hostname", esmtp ? "EHLO" : "HELO");
        return;
    }
    smtpd_cmd_txn_reset(s);
    smtpd_cmd_helo_forget(s);
    s->helo = xstrndup(cmd->arg, cmd->arglen);
    if (!smtpd.delay_reject && smtpd_cmd_helo_access(s, esmtp ? "EHLO" : "HELO", NULL) == -1) {
        smtpd_cmd_helo_forget(s);     /* refused: no HELO stands, MAIL needs a new one */
        s->esmtp = 0;
        s->state = SMTPD_ST_CONNECTED;
        return;
    }
    s->esmtp = esmtp;
    s->state = SMTPD_ST_GREETED;
    if (smtpd_milter_helo(s, smtpd_cmd_helo_milter) == 1)
        smtpd_cmd_helo_reply(s);
}

/* smtpd_cmd_milter_refuse - a milter refused the command: its reply, logged as Postfix
 * logs milter-reject; 1 if it did (the caller undoes the command). */
static int
smtpd_cmd_milter_refuse(struct smtpd_session *s, const char *cmd,
                        const struct smtpd_milter_verdict *v)
{
    char label[SMTPD_CLIENT_LABEL];

    if (v->kind != POLICY_REJECT && v->kind != POLICY_DEFER)
        return 0;
    log_info("milter-reject: %s from %s: %d %s %s; from=<%s> milter=%s", cmd,
             smtpd_cmd_client_label(s, label, sizeof(label)), v->code, v->enh, v->text,
             s->sender ? s->sender : "", v->who);
    smtpd_session_reply(s, v->code, v->enh, "%s", v->text);
    if (v->code >= 500)
        (void)smtpd_session_error(s);
    return 1;
}

/* smtpd_cmd_milter_discard - a milter said DISCARD: the transaction is dropped at its end. */
static void
smtpd_cmd_milter_discard(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
    if (v->kind == POLICY_DISCARD)
        smtpd_policy_merge(&s->txn_verdict, &s->txn_why, POLICY_DISCARD,
                           xasprintf("milter %s", v->who));
}

/* smtpd_cmd_helo_milter - the milters' verdict on HELO/EHLO; then read on. */
static void
smtpd_cmd_helo_milter(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
    if (smtpd_cmd_milter_refuse(s, s->esmtp ? "EHLO" : "HELO", v)) {
        smtpd_cmd_helo_forget(s);
        s->esmtp = 0;
        s->state = SMTPD_ST_CONNECTED;
    } else {
        smtpd_cmd_helo_reply(s);
    }
    smtpd_session_resume(s);
}

/* smtpd_cmd_helo_reply - HELO/EHLO accepted: 250, with the extensions for EHLO. */
static void
smtpd_cmd_helo_reply(struct smtpd_session *s)
{
    if (!s->esmtp) {
        smtp_reply(&s->out, 250, NULL, "%s", smtpd.hostname);
        return;
    }
    smtp_reply_cont(&s->out, 250, NULL, 0, "%s", smtpd.hostname);
    smtp_reply_cont(&s->out, 250, NULL, 0, "PIPELINING");
    smtp_reply_cont(&s->out, 250, NULL, 0, "SIZE %llu", (unsigned long long)smtpd.size_limit);
    smtp_reply_cont(&s->out, 250, NULL, 0, "8BITMIME");
    if (smtpd_cmd_starttls_offered(s))
        smtp_reply_cont(&s->out, 250, NULL, 0, "STARTTLS");
    if (smtpd_cmd_auth_offered(s))
        smtp_reply_cont(&s->out, 250, NULL, 0, "AUTH %s", smtp_auth_mechanisms());
    smtp_reply_cont(&s->out, 250, NULL, 0, "ENHANCEDSTATUSCODES");
    smtp_reply_cont(&s->out, 250, NULL, 0, "SMTPUTF8");
    smtp_reply_cont(&s->out, 250, NULL, 1, "DSN");
}

/* smtpd_cmd_has_params - anything but spaces after the path? */
static int
smtpd_cmd_has_params(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (s[i] != ' ')
            return 1;
    return 0;
}

/* smtpd_cmd_mail_accept - MAIL is accepted: the transaction is open. */
static void
smtpd_cmd_mail_accept(struct smtpd_session *s)
{
    s->state = SMTPD_ST_MAIL;
    smtpd_session_reply(s, 250, "2.1.0", "Ok");
}

/* smtpd_cmd_mail_milter - the milters' verdict on MAIL; then read on. */
static void
smtpd_cmd_mail_milter(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
    if (smtpd_cmd_milter_refuse(s, "MAIL", v)) {
        smtpd_cmd_txn_reset(s);
    } else {
        smtpd_cmd_milter_discard(s, v);
        smtpd_cmd_mail_accept(s);
    }
    smtpd_session_resume(s);
}

/* smtpd_cmd_mail_open - the access checks and anvil agree: the milters have the last word. */
static void
smtpd_cmd_mail_open(struct smtpd_session *s)
{
    if (smtpd_milter_mail(s, smtpd_cmd_mail_milter) == 1)
        smtpd_cmd_mail_accept(s);
}

/* smtpd_cmd_mail_anvil - anvil's answer to a MAIL: open the transaction, or forget it
 * with anvil's 450 (message rate); then read on. */
static void
smtpd_cmd_mail_anvil(struct smtpd_session *s, int allowed, int code, const char *enh,
                     const char *text)
{
    char label[SMTPD_CLIENT_LABEL];

    if (allowed) {
        smtpd_cmd_mail_open(s);
    } else {
        log_info("reject: MAIL from %s: %d %s %s; from=<%s>",
                 smtpd_cmd_client_label(s, label, sizeof(label)), code, enh, text,
                 s->sender ? s->sender : "");
        smtpd_cmd_txn_reset(s);
        smtpd_session_reply(s, code, enh, "%s", text);
    }
    smtpd_session_resume(s);
}

/* smtpd_cmd_mail_limit - ask anvil about the message rate; open the transaction if it
 * agrees at once. */
static void
smtpd_cmd_mail_limit(struct smtpd_session *s)
{
    if (smtpd_anvil_check(s, SMTPD_ANVIL_MAIL, smtpd_cmd_mail_anvil) == 1)
        smtpd_cmd_mail_open(s);
}

/* smtpd_cmd_mail_domain - the sender domain's lookup is over (a: its refusal, or NULL):
 * refuse MAIL now, or with smtpd_delay_reject keep the refusal for each RCPT; then anvil,
 * and read on. */
static void
smtpd_cmd_mail_domain(struct smtpd_session *s, const struct policy_action *a)
{
    if (a != NULL && !smtpd.delay_reject) {
        smtpd_policy_refuse(s, POLICY_SENDER, s->sender, "MAIL", NULL, a);
        smtpd_cmd_txn_reset(s);
    } else {
        if (a != NULL) {
            s->domain_action = xmalloc(sizeof(*s->domain_action));
            *s->domain_action = *a;
        }
        smtpd_cmd_mail_limit(s);
    }
    smtpd_session_resume(s);
}

/* smtpd_cmd_mail - MAIL FROM:<path> [params]. */
static void
smtpd_cmd_mail(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    struct smtp_path        path;
    struct smtp_mail_params mp;
    struct smtp_addr_err    err;
    size_t                  end;

    if (s->state == SMTPD_ST_CONNECTED) {
        smtpd_cmd_fail(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return;
    }
    if (smtpd_cmd_tls_required(s)) {
        smtpd_cmd_fail(s, 530, "5.7.0", "Must issue a STARTTLS command first");
        return;
    }
    if (s->svc == SMTPD_SVC_SUBMISSION && s->auth_user == NULL) {
        /* DESIGN: submission is "STARTTLS then AUTH required" (RFC 6409 4.3) */
        smtpd_cmd_fail(s, 530, "5.7.0", "Authentication required");
        return;
    }
    if (s->state != SMTPD_ST_GREETED) {
        smtpd_cmd_fail(s, 503, "5.5.1", "Error: nested MAIL command");
        return;
    }
    if (smtp_addr_parse_path(cmd->arg, cmd->arglen,
                             SMTP_PATH_SENDER | (s->esmtp ? SMTP_PATH_UTF8 : 0), &path, &end,
                             &err) == -1) {
        smtpd_cmd_fail(s, err.code, err.enh, "%s", err.text);
        return;
    }
    if (!s->esmtp && smtpd_cmd_has_params(cmd->arg + end, cmd->arglen - end)) {
        smtpd_cmd_fail(s, 555, "5.5.4", "Error: MAIL parameters need EHLO");
        return;
    }
    if (smtp_addr_parse_mail_params(cmd->arg + end, cmd->arglen - end, &mp, &err) == -1) {
        smtpd_cmd_fail(s, err.code, err.enh, "%s", err.text);
        return;
    }
    if (path.has_utf8 && !mp.smtputf8) {
        smtpd_cmd_fail(s, 553, "5.6.7", "Error: non-ASCII sender address needs SMTPUTF8");
        return;
    }
    if (mp.size_set && smtpd.size_limit && mp.size > smtpd.size_limit) {
        smtpd_cmd_fail(s, 552, "5.3.4", "Error: message size exceeds fixed limit");
        return;
    }
    if (!smtpd_qmgr_up()) {
        smtpd_session_reply(s, 451, "4.3.0", "Error: queue manager unavailable, try again later");
        return;
    }
    if (!smtpd.delay_reject && smtpd_cmd_sender_access(s, path.addr, "MAIL", NULL) == -1)
        return;
    if (smtpd_login_check(s, path.addr) == -1)   /* smtpd_sender_login_map */
        return;
    if (s->svc == SMTPD_SVC_SUBMIT && !s->local_admin) {
        /* local submission: the user's identity is the sender, whatever was asked */
        s->sender = xasprintf("%s@%s", s->local_user, smtpd.hostname);
        if (strcasecmp(s->sender, path.addr) != 0)
            log_info("local user %s (uid %lu): sender <%s> replaced by <%s>", s->local_user,
                     (unsigned long)s->local_uid, path.addr, s->sender);
    } else {
        s->sender = xstrdup(path.addr);
    }
    s->mail = mp;
    free(s->mail_esmtp);
    s->mail_esmtp = xstrndup(cmd->arg + end, cmd->arglen - end);
    s->smtputf8 = mp.smtputf8;
    /* the transaction is set up but not open (still SMTPD_ST_GREETED) until the sender
     * domain's lookup (reject_unknown_sender_domain) and anvil agree */
    if (smtpd_domain_check(s, s->sender, smtpd_cmd_mail_domain) == 1)
        smtpd_cmd_mail_limit(s);
}

/* smtpd_cmd_may_relay - may this client send to a domain that is neither ours nor one we
 * relay for? */
static int
smtpd_cmd_may_relay(const struct smtpd_session *s)
{
    return s->auth_user != NULL || s->mynetworks;
}

/* smtpd_cmd_rcpt_fail - refuse a recipient, and log it: 5xx counts as a client error,
 * 4xx does not. */
static void
smtpd_cmd_rcpt_fail(struct smtpd_session *s, int code, const char *enh, const char *text)
{
    char label[SMTPD_CLIENT_LABEL];

    smtpd.stats.recipients_rejected++;
    log_info("reject: RCPT from %s: %d %s %s; from=<%s>",
             smtpd_cmd_client_label(s, label, sizeof(label)), code, enh, text,
             s->sender ? s->sender : "");
    if (code >= 500)
        smtpd_cmd_fail(s, code, enh, "%s", text);
    else
        smtpd_session_reply(s, code, enh, "%s", text);
}

/* smtpd_cmd_rcpt_known - is address already a recipient of this transaction? Compared
 * without case, as libcommon/resolve deduplicates. */
static int
smtpd_cmd_rcpt_known(const struct smtpd_session *s, const char *address)
{
    size_t i;

    for (i = 0; i < s->nrcpt; i++)
        if (strcasecmp(s->rcpts[i].addr, address) == 0)
            return 1;
    return 0;
}

/* smtpd_cmd_rcpt_orcpt - the ORCPT to keep: the client's, else for a recipient reached
 * through an alias the address given at RCPT (RFC 3461 4.2; utf-8 type when not ASCII). */
static char *
smtpd_cmd_rcpt_orcpt(const struct smtp_rcpt_params *rp, const struct resolve_rcpt *e)
{
    const char *p;

    if (rp->orcpt[0] != '\0')
        return xstrdup(rp->orcpt);
    if (!e->expanded)
        return xstrdup("");
    if (strchr(e->original, '@') == NULL && smtpd.nlocal_domains > 0)   /* <postmaster> */
        return xasprintf("rfc822;%s@%s", e->original, smtpd.local_domains[0]);
    for (p = e->original; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            return xasprintf("utf-8;%s", e->original);
    return xasprintf("rfc822;%s", e->original);
}

/* smtpd_cmd_rcpt_room - would the final recipients of one RCPT that are new to the
 * transaction still fit in smtpd_recipient_limit? If not, 452. */
static int
smtpd_cmd_rcpt_room(struct smtpd_session *s, const struct resolve_list *l)
{
    size_t i, add = 0;

    for (i = 0; i < l->n; i++)
        add += !smtpd_cmd_rcpt_known(s, l->rcpt[i].address);
    if ((long long)(s->nrcpt + add) > smtpd.rcpt_limit) {
        smtpd_cmd_rcpt_fail(s, 452, "4.5.3", "Error: too many recipients");
        return 0;
    }
    return 1;
}

/* smtpd_cmd_rcpt_add - add the final recipients of one RCPT that are new to the
 * transaction (smtpd_cmd_rcpt_room said they fit), with the recipient stage's HOLD or
 * DISCARD (why: heap, taken over), and say 250. */
static void
smtpd_cmd_rcpt_add(struct smtpd_session *s, const struct smtp_rcpt_params *rp,
                   const struct resolve_list *l, enum policy_kind verdict, char *why)
{
    struct smtpd_rcpt *r;
    size_t             i;

    if (verdict == POLICY_HOLD || verdict == POLICY_DISCARD)
        smtpd_policy_merge(&s->txn_verdict, &s->txn_why, verdict, why);
    else
        free(why);
    for (i = 0; i < l->n; i++) {
        const struct resolve_rcpt *e = &l->rcpt[i];

        if (e->expanded)
            log_debug("client=[%s]: <%s> -> <%s> class=%s%s", s->addr, e->original,
                      e->address, resolve_class_name(e->cls), e->known ? "" : " unknown");
        if (smtpd_cmd_rcpt_known(s, e->address))
            continue;
        if (s->nrcpt == s->rcpt_cap) {
            s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 4;
            s->rcpts = xrealloc(s->rcpts, s->rcpt_cap * sizeof(*s->rcpts));
        }
        r = &s->rcpts[s->nrcpt++];
        r->addr = xstrdup(e->address);
        r->orcpt = smtpd_cmd_rcpt_orcpt(rp, e);
        r->given = xstrdup(e->original);
        r->notify = rp->notify;
        smtpd.stats.recipients++;
    }
    smtpd_session_reply(s, 250, "2.1.5", "Ok");
}

/* smtpd_cmd_rcpt_finish - add the recipients kept in s->cmd_wait. */
static void
smtpd_cmd_rcpt_finish(struct smtpd_session *s)
{
    struct smtpd_cmd_wait *w = s->cmd_wait;

    smtpd_cmd_rcpt_add(s, &w->rp, &w->l, w->verdict, w->why);
    w->why = NULL;
    smtpd_cmd_wait_free(&s->cmd_wait);
}

/* smtpd_cmd_rcpt_milter - the milters' verdict on the RCPT kept in s->cmd_wait. */
static void
smtpd_cmd_rcpt_milter(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
    if (s->cmd_wait != NULL) {
        if (smtpd_cmd_milter_refuse(s, "RCPT", v)) {
            smtpd.stats.recipients_rejected++;
            smtpd_cmd_wait_free(&s->cmd_wait);
        } else {
            smtpd_cmd_milter_discard(s, v);
            smtpd_cmd_rcpt_finish(s);
        }
    }
    smtpd_session_resume(s);
}

/* smtpd_cmd_rcpt_ask_milters - anvil agrees: the milters see the recipient, as given. */
static void
smtpd_cmd_rcpt_ask_milters(struct smtpd_session *s)
{
    struct resolve_list *l = &s->cmd_wait->l;

    if (smtpd_milter_rcpt(s, l->n > 0 ? l->rcpt[0].original : "", s->cmd_wait->esmtp,
                          smtpd_cmd_rcpt_milter) == 1)
        smtpd_cmd_rcpt_finish(s);
}

/* smtpd_cmd_rcpt_anvil - anvil's answer to a RCPT: add the recipients kept in
 * s->cmd_wait, or refuse with anvil's 450 (recipient rate); then read on. */
static void
smtpd_cmd_rcpt_anvil(struct smtpd_session *s, int allowed, int code, const char *enh,
                     const char *text)
{
    if (s->cmd_wait != NULL) {
        if (allowed) {
            smtpd_cmd_rcpt_ask_milters(s);
        } else {
            smtpd_cmd_rcpt_fail(s, code, enh, text);
            smtpd_cmd_wait_free(&s->cmd_wait);
        }
    }
    smtpd_session_resume(s);
}

/* smtpd_cmd_rcpt_access - the access stages at RCPT, in their documented order: the
 * client, HELO and sender stages when they are delayed to here (smtpd_delay_reject), then
 * the recipient stage. -1: refused (answered, counted). Else 0, with the recipient stage's
 * HOLD or DISCARD in *verdict and its reason in *why (heap, or NULL), which apply only if
 * the recipient is accepted. */
static int
smtpd_cmd_rcpt_access(struct smtpd_session *s, const char *rcpt, enum policy_kind *verdict,
                      char **why)
{
    struct policy_action a;
    enum policy_kind     k;
    int                  rc = 0;

    if (smtpd_cmd_client_access(s, rcpt) == -1)
        rc = -1;
    else if (smtpd.delay_reject && (smtpd_cmd_helo_access(s, "RCPT", rcpt) == -1
                                    || smtpd_cmd_sender_access(s, s->sender ? s->sender : "",
                                                               "RCPT", rcpt) == -1))
        rc = -1;
    else if (s->domain_action != NULL) {
        smtpd_policy_refuse(s, POLICY_SENDER, s->sender, "RCPT", rcpt, s->domain_action);
        rc = -1;
    }
    if (rc == -1) {
        smtpd.stats.recipients_rejected++;
        return -1;
    }
    k = smtpd_policy_check(s, POLICY_RECIPIENT, rcpt, "RCPT", rcpt, &a);
    if (k == POLICY_REJECT || k == POLICY_DEFER) {
        smtpd.stats.recipients_rejected++;
        smtpd_policy_refuse(s, POLICY_RECIPIENT, rcpt, "RCPT", rcpt, &a);
        return -1;
    }
    if (k == POLICY_HOLD || k == POLICY_DISCARD) {
        *verdict = k;
        *why = smtpd_policy_note(s, POLICY_RECIPIENT, rcpt, "RCPT", rcpt, &a);
    }
    return 0;
}

/* smtpd_cmd_rcpt - RCPT TO:<path> [params]. */
static void
smtpd_cmd_rcpt(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    struct smtp_path        path;
    struct smtp_rcpt_params rp;
    struct smtp_addr_err    err;
    struct resolve_list     l;
    struct resolve_err      rerr;
    char                    text[SMTP_REPLY_LINE_MAX];
    char                   *why = NULL;
    enum policy_kind        verdict = POLICY_NONE;
    size_t                  end;

    if (s->state != SMTPD_ST_MAIL) {
        smtpd_cmd_fail(s, 503, "5.5.1", "Error: need MAIL command");
        return;
    }
    if (smtp_addr_parse_path(cmd->arg, cmd->arglen,
                             SMTP_PATH_POSTMASTER | (s->smtputf8 ? SMTP_PATH_UTF8 : 0), &path,
                             &end, &err) == -1) {
        smtpd_cmd_fail(s, err.code, err.enh, "%s", err.text);
        return;
    }
    if (!s->esmtp && smtpd_cmd_has_params(cmd->arg + end, cmd->arglen - end)) {
        smtpd_cmd_fail(s, 555, "5.5.4", "Error: RCPT parameters need EHLO");
        return;
    }
    if (smtp_addr_parse_rcpt_params(cmd->arg + end, cmd->arglen - end, s->smtputf8, &rp,
                                    &err) == -1) {
        smtpd_cmd_fail(s, err.code, err.enh, "%s", err.text);
        return;
    }
    /* <postmaster> (RFC 5321 4.5.1) is ours when we have a local domain; an address
     * literal is never a destination of ours */
    if (path.is_postmaster ? smtpd.nlocal_domains == 0
                           : path.domain_literal
                                 || (resolve_domain_class(smtpd.resolve, path.domain)
                                         == RESOLVE_REMOTE && !smtpd_cmd_may_relay(s))) {
        snprintf(text, sizeof(text), "<%s>: Relay access denied", path.addr);
        smtpd_cmd_rcpt_fail(s, 554, "5.7.1", text);
        return;
    }
    if (smtpd_cmd_rcpt_access(s, path.addr, &verdict, &why) == -1)
        return;
    resolve_list_init(&l);
    if (resolve_rcpt(smtpd.resolve, path.addr, &l, &rerr) == -1) {
        smtpd_cmd_rcpt_fail(s, rerr.code, rerr.enh, rerr.text);
    } else if (smtpd_cmd_rcpt_room(s, &l)) {
        /* anvil and the milters may answer later: keep what adding the recipients needs */
        s->cmd_wait = xcalloc(1, sizeof(*s->cmd_wait));
        s->cmd_wait->rp = rp;
        s->cmd_wait->esmtp = xstrndup(cmd->arg + end, cmd->arglen - end);
        s->cmd_wait->l = l;           /* taken over */
        s->cmd_wait->verdict = verdict;
        s->cmd_wait->why = why;
        if (smtpd_anvil_check(s, SMTPD_ANVIL_RCPT, smtpd_cmd_rcpt_anvil) == 1)
            smtpd_cmd_rcpt_ask_milters(s);
        return;
    }
    free(why);
    resolve_list_free(&l);
}

int
smtpd_cmd_data_verdict(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
    if (smtpd_cmd_milter_refuse(s, "DATA", v))
        return 1;
    smtpd_cmd_milter_discard(s, v);
    return 0;
}

/* smtpd_cmd_data - DATA: hand over to smtpd_data once the order is right. */
static void
smtpd_cmd_data(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    if (s->state != SMTPD_ST_MAIL) {
        smtpd_cmd_fail(s, 503, "5.5.1", "Error: need %s command",
                       s->state == SMTPD_ST_CONNECTED ? "EHLO" : "MAIL");
        return;
    }
    if (s->nrcpt == 0) {
        smtpd_cmd_fail(s, 554, "5.5.1", "Error: no valid recipients");
        return;
    }
    if (cmd->arglen != 0) {
        smtpd_cmd_fail(s, 501, "5.5.4", "Syntax: DATA");
        return;
    }
    if (!smtpd_qmgr_up()) {
        smtpd_session_reply(s, 451, "4.3.0", "Error: queue manager unavailable, try again later");
        smtpd_cmd_txn_reset(s);
        return;
    }
    smtpd_data_begin(s);              /* the milters see DATA once the queue ID is known */
}

/* smtpd_cmd_starttls - STARTTLS (RFC 3207): 220, then smtpd_session throws away what was
 * pipelined after it and starts the handshake once the 220 is written. */
static void
smtpd_cmd_starttls(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    if (s->tls != NULL) {
        smtpd_cmd_fail(s, 503, "5.5.1", "Error: TLS already active");
        return;
    }
    if (!smtpd_cmd_starttls_offered(s)) {
        smtpd_cmd_fail(s, 502, "5.5.1", "Error: command not implemented");
        return;
    }
    if (cmd->arglen != 0) {
        smtpd_cmd_fail(s, 501, "5.5.4", "Syntax: STARTTLS");
        return;
    }
    if (s->state == SMTPD_ST_CONNECTED) {
        smtpd_cmd_fail(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return;
    }
    if (s->state != SMTPD_ST_GREETED) {
        smtpd_cmd_fail(s, 503, "5.5.1", "Error: MAIL transaction in progress");
        return;
    }
    smtpd_session_reply(s, 220, "2.0.0", "Ready to start TLS");
    smtpd_cmd_session_reset(s);       /* forget HELO, transaction and AUTH */
    s->tls_phase = SMTPD_TLS_STARTING;
}

/* smtpd_cmd_printable - a peer-chosen name made safe for logs and Received: comments. */
static void
smtpd_cmd_printable(const char *in, char *out, size_t outlen)
{
    static const char ok[] = "@.-_+=!#$%&'*/?^`{|}~";
    size_t            i;

    for (i = 0; in[i] != '\0' && i + 1 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];

        out[i] = (c < 128 && (isalnum(c) || strchr(ok, c) != NULL)) ? (char)c : '?';
    }
    out[i] = '\0';
}

/* smtpd_cmd_auth_failed - the reply to a failed AUTH, after the delay. */
static void
smtpd_cmd_auth_failed(struct smtpd_session *s)
{
    smtpd_session_reply(s, 535, "5.7.8", "Authentication credentials invalid");
    if (s->auth_failures >= smtpd.auth_failure_limit) {
        log_info("too many authentication failures from [%s]: failures=%lld", s->addr,
                 s->auth_failures);
        smtpd_session_reply(s, 421, "4.7.0", "Too many authentication failures");
        s->closing = 1;
        return;
    }
    (void)smtpd_session_error(s);
}

/* smtpd_cmd_auth_timer - the failure delay is over: answer, then read on. */
static void
smtpd_cmd_auth_timer(void *arg)
{
    struct smtpd_session *s = arg;

    s->auth_timer = 0;
    smtpd_cmd_auth_failed(s);
    smtpd_session_resume(s);
}

/* smtpd_cmd_auth_checked - a worker has checked the password (on the loop again): answer,
 * or start the failure delay, then go on with the buffered input. */
static void
smtpd_cmd_auth_checked(int ok, void *arg)
{
    struct smtpd_session *s = arg;
    const char           *method = s->auth_job_method, *name = s->auth_job_name;

    s->auth_job = NULL;
    s->state = SMTPD_ST_GREETED;
    ok = ok && s->auth_job_found;
    if (ok) {
        smtpd.stats.auth_success++;
        s->auth_user = xstrdup(name);
        s->auth_method = method;
        log_info("client=[%s], sasl_method=%s, sasl_username=%s", s->addr, method, name);
        smtpd_session_reply(s, 235, "2.7.0", "Authentication successful");
    } else {
        smtpd.stats.auth_failure++;
        s->auth_failures++;
        smtpd_anvil_auth_failed(s);
        log_info("authentication failed from [%s]: sasl_method=%s, sasl_username=%s%s, "
                 "failures=%lld", s->addr, method, name, s->auth_job_found ? "" : " (unknown)",
                 s->auth_failures);
        if (smtpd.auth_failure_delay_ms == 0)
            smtpd_cmd_auth_failed(s);
        else
            s->auth_timer = ev_timer_add(smtpd.ev, smtpd.auth_failure_delay_ms,
                                         smtpd_cmd_auth_timer, s);
    }
    smtpd_session_resume(s);
}

/* smtpd_cmd_auth_cancel - the session ends or starts over: a check in progress is dropped
 * (the worker finishes it; nobody hears of it). */
void
smtpd_cmd_auth_cancel(struct smtpd_session *s)
{
    if (s->auth_job == NULL)
        return;
    smtpd_pwcheck_cancel(smtpd.pwcheck, &s->auth_job);
    if (s->state == SMTPD_ST_AUTH_CHECKING)
        s->state = SMTPD_ST_GREETED;
}

/* smtpd_cmd_auth_check - user and password decoded: look the user up here (the map is the
 * loop's), hand the password and hash to a worker thread and wait for it with input
 * paused (SMTPD_ST_AUTH_CHECKING). The password is checked for unknown users too, against
 * a dummy hash, so the time taken does not tell them apart. */
static void
smtpd_cmd_auth_check(struct smtpd_session *s, struct smtp_auth *a)
{
    char hash[PWHASH_MAX + 1], name[128];
    int  found;

    smtpd_cmd_printable(a->user, name, sizeof(name));
    found = map_lookup(smtpd.auth_map, a->user, hash, sizeof(hash));
    if (found == -1) {
        log_warnx("authentication from [%s]: auth map lookup failed, sasl_username=%s",
                  s->addr, name);
        smtpd_session_reply(s, 454, "4.7.0", "Temporary authentication failure");
        return;
    }
    s->auth_job = smtpd_pwcheck_submit(smtpd.pwcheck, a->password,
                                       found == 1 ? hash : smtpd.auth_dummy_hash,
                                       smtpd_cmd_auth_checked, s);
    explicit_bzero(hash, sizeof(hash));
    if (s->auth_job == NULL) {
        log_warnx("authentication from [%s]: %d password checks waiting, sasl_username=%s",
                  s->addr, SMTPD_PWCHECK_QUEUE_MAX, name);
        smtpd_session_reply(s, 454, "4.7.0", "Temporary authentication failure");
        return;
    }
    s->auth_job_method = a->mech == SMTPD_AUTH_PLAIN ? "PLAIN" : "LOGIN";
    s->auth_job_found = found == 1;
    snprintf(s->auth_job_name, sizeof(s->auth_job_name), "%s", name);
    s->state = SMTPD_ST_AUTH_CHECKING;
}

/* smtpd_cmd_auth_step - act on what the SASL decoder says; the exchange ends unless a
 * challenge goes out. */
static void
smtpd_cmd_auth_step(struct smtpd_session *s, enum smtp_auth_step st)
{
    switch (st) {
    case SMTP_AUTH_CHALLENGE:
        smtpd_session_reply(s, 334, NULL, "%s", s->auth->challenge);
        return;
    case SMTP_AUTH_CHECK:
        smtpd_cmd_auth_check(s, s->auth);
        break;
    case SMTP_AUTH_CANCEL:
        smtpd_cmd_fail(s, 501, "5.7.0", "Authentication aborted");
        break;
    case SMTP_AUTH_SYNTAX:
        smtpd_cmd_fail(s, 501, "5.5.2", "Cannot decode response");
        break;
    case SMTP_AUTH_UNSUPPORTED:
        smtpd_cmd_fail(s, 504, "5.5.4", "Unrecognized authentication type");
        break;
    }
    smtpd_cmd_auth_end(s);
}

/* smtpd_cmd_auth_begin - start the exchange: arg is the mechanism and any initial
 * response. */
static void
smtpd_cmd_auth_begin(struct smtpd_session *s, const char *arg)
{
    s->auth = xcalloc(1, sizeof(*s->auth));
    smtpd_cmd_auth_step(s, smtp_auth_start(s->auth, arg));
}

/* smtpd_cmd_auth_anvil - anvil's answer before an AUTH: start the exchange kept in
 * s->cmd_wait, or (too many failures from this client lately) 421 and close. */
static void
smtpd_cmd_auth_anvil(struct smtpd_session *s, int allowed, int code, const char *enh,
                     const char *text)
{
    char label[SMTPD_CLIENT_LABEL];

    if (s->cmd_wait != NULL && s->cmd_wait->auth_arg != NULL) {
        if (allowed) {
            smtpd_cmd_auth_begin(s, s->cmd_wait->auth_arg);
        } else {
            log_info("reject: AUTH from %s: %d %s %s",
                     smtpd_cmd_client_label(s, label, sizeof(label)), code, enh, text);
            smtpd_session_reply(s, code, enh, "%s", text);
            s->closing = 1;
        }
    }
    smtpd_cmd_wait_free(&s->cmd_wait);
    smtpd_session_resume(s);
}

/* smtpd_cmd_auth - AUTH mechanism [initial-response] (RFC 4954). */
static void
smtpd_cmd_auth(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    char arg[SMTP_CMD_LINE_MAX];

    s->wipe_input = 1;
    if (smtpd_cmd_tls_required(s)) {
        smtpd_cmd_fail(s, 530, "5.7.0", "Must issue a STARTTLS command first");
        return;
    }
    if (!smtpd_cmd_auth_offered(s)) {
        smtpd_cmd_fail(s, 503, "5.5.1", "Error: authentication not enabled");
        return;
    }
    if (s->state == SMTPD_ST_CONNECTED || !s->esmtp) {
        smtpd_cmd_fail(s, 503, "5.5.1", "Error: send EHLO first");
        return;
    }
    if (s->auth_user != NULL) {
        smtpd_cmd_fail(s, 503, "5.5.1", "Error: already authenticated");
        return;
    }
    if (s->state != SMTPD_ST_GREETED) {
        smtpd_cmd_fail(s, 503, "5.5.1", "Error: MAIL transaction in progress");
        return;
    }
    if (cmd->arglen == 0 || cmd->arglen >= sizeof(arg)) {
        smtpd_cmd_fail(s, 501, "5.5.4", "Syntax: AUTH mechanism");
        return;
    }
    memcpy(arg, cmd->arg, cmd->arglen);
    arg[cmd->arglen] = '\0';
    if (smtpd_anvil_check(s, SMTPD_ANVIL_AUTH, smtpd_cmd_auth_anvil) == 0) {
        /* anvil answers later; the argument may hold the password */
        s->cmd_wait = xcalloc(1, sizeof(*s->cmd_wait));
        s->cmd_wait->auth_arg = xstrdup(arg);
    } else {
        smtpd_cmd_auth_begin(s, arg);
    }
    explicit_bzero(arg, sizeof(arg));
}

/* smtpd_cmd_auth_line - a client line during an AUTH exchange (after a 334). */
void
smtpd_cmd_auth_line(struct smtpd_session *s, const char *line, size_t len)
{
    char buf[SMTP_CMD_LINE_MAX];

    s->wipe_input = 1;
    if (len >= sizeof(buf) || memchr(line, '\0', len) != NULL) {
        smtpd_cmd_auth_abort(s, 501, "5.5.2", "Cannot decode response");
        (void)smtpd_session_error(s);
        return;
    }
    memcpy(buf, line, len);
    buf[len] = '\0';
    smtpd_cmd_auth_step(s, smtp_auth_next(s->auth, buf));
    explicit_bzero(buf, sizeof(buf));
}

/* smtpd_cmd_auth_abort - end an exchange with this reply (over-long line and the like). */
void
smtpd_cmd_auth_abort(struct smtpd_session *s, int code, const char *enh, const char *text)
{
    smtpd_session_reply(s, code, enh, "%s", text);
    smtpd_cmd_auth_end(s);
}

/* smtpd_cmd_refused - a client refused at connect (554 greeting, smtpd_delay_reject = no)
 * may only leave (RFC 5321 3.1): QUIT is 221, anything else 503. */
static void
smtpd_cmd_refused(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    char label[SMTPD_CLIENT_LABEL];

    if (cmd->verb == SMTP_VERB_QUIT) {
        smtpd_session_reply(s, 221, "2.0.0", "Bye");
        s->closing = 1;
        return;
    }
    smtpd_cmd_fail(s, 503, "5.7.0", "Error: access denied for %s",
                   smtpd_cmd_client_label(s, label, sizeof(label)));
}

/* smtpd_cmd_line - one command line from the client. */
void
smtpd_cmd_line(struct smtpd_session *s, const char *line, size_t len)
{
    struct smtp_cmd      cmd;
    enum smtp_cmd_status st;

    s->commands++;
    if (s->commands > smtpd.command_limit) {
        smtpd_session_reply(s, 421, "4.7.0", "%s Error: too many commands", smtpd.hostname);
        s->closing = 1;
        return;
    }
    st = smtp_cmd_parse(line, len, &cmd);
    s->verb_count[cmd.verb]++;
    if (cmd.verb == SMTP_VERB_AUTH)
        s->wipe_input = 1;            /* whatever becomes of it, it may hold a password */
    if (s->greet_refused) {
        smtpd_cmd_refused(s, &cmd);
        return;
    }
    switch (st) {
    case SMTP_CMD_OK:
        break;
    case SMTP_CMD_BAD_CHAR:
        smtpd_cmd_fail(s, 500, "5.5.2", "Error: bad character in command");
        return;
    case SMTP_CMD_EMPTY:
        smtpd_cmd_fail(s, 500, "5.5.2", "Error: bad syntax");
        return;
    case SMTP_CMD_SYNTAX:
        smtpd_cmd_fail(s, 501, "5.5.4", "Syntax: %s",
                       cmd.verb == SMTP_VERB_MAIL ? "MAIL FROM:<address>"
                                                  : "RCPT TO:<address>");
        return;
    }
    switch (cmd.verb) {
    case SMTP_VERB_HELO:
    case SMTP_VERB_EHLO:
        smtpd_cmd_helo(s, &cmd);
        break;
    case SMTP_VERB_MAIL:
        smtpd_cmd_mail(s, &cmd);
        break;
    case SMTP_VERB_RCPT:
        smtpd_cmd_rcpt(s, &cmd);
        break;
    case SMTP_VERB_DATA:
        smtpd_cmd_data(s, &cmd);
        break;
    case SMTP_VERB_RSET:
        if (cmd.arglen != 0) {
            smtpd_cmd_fail(s, 501, "5.5.4", "Syntax: RSET");
            break;
        }
        smtpd_cmd_txn_reset(s);
        smtpd_session_reply(s, 250, "2.0.0", "Ok");
        break;
    case SMTP_VERB_NOOP:
        smtpd_session_reply(s, 250, "2.0.0", "Ok");
        break;
    case SMTP_VERB_QUIT:
        smtpd_session_reply(s, 221, "2.0.0", "Bye");
        s->closing = 1;
        break;
    case SMTP_VERB_VRFY:
        if (cmd.arglen == 0) {
            smtpd_cmd_fail(s, 501, "5.5.4", "Syntax: VRFY address");
            break;
        }
        smtpd_session_reply(s, 252, "2.5.2",
                            "Cannot VRFY user, but will accept message and attempt delivery");
        break;
    case SMTP_VERB_HELP:
        smtpd_session_reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP "
                            "QUIT VRFY HELP STARTTLS AUTH");
        break;
    case SMTP_VERB_STARTTLS:
        smtpd_cmd_starttls(s, &cmd);
        break;
    case SMTP_VERB_AUTH:
        smtpd_cmd_auth(s, &cmd);
        break;
    case SMTP_VERB_EXPN:
    case SMTP_VERB_BDAT:
    case SMTP_VERB_ETRN:
    case SMTP_VERB_TURN:
        smtpd_cmd_fail(s, 502, "5.5.1", "Error: command not implemented");
        break;
    default:
        smtpd_cmd_fail(s, 500, "5.5.2", "Error: command not recognized");
        break;
    }
}
