/* smtpd_cmd - the SMTP commands: order, syntax, parameters, recipients, limits, STARTTLS, AUTH.
 *
 * Each handler gets one parsed command and answers it with exactly one reply (or hands
 * DATA on to smtpd_data, which answers when qmgr has; or a failed AUTH to a timer, which
 * answers after smtpd_auth_failure_delay while the loop serves everyone else). Every
 * failure on client input is a reply and, if it is the client's fault, counts towards
 * smtpd_error_limit. Recipients in local_domains are accepted when the mailbox map knows
 * them; others only from authenticated clients, clients in mynetworks, or for
 * relay_domains (qmgr routes them). STARTTLS is offered where a certificate is configured
 * (not on smtps, not twice) and required on submission before AUTH and MAIL; submission also
 * requires AUTH before MAIL (DESIGN: "STARTTLS then AUTH required"). AUTH PLAIN and LOGIN
 * (RFC 4954) are offered only inside TLS, on submission and smtps, with an auth map.
 * Decoded credentials live only in a struct smtp_auth that is wiped and freed when the
 * exchange ends; the lines that carried them are wiped by the caller (s->wipe_input). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "pwhash.h"
#include "smtp_reply.h"
#include "smtpd.h"

#define SMTPD_AUTH_PLAIN 1            /* struct smtp_auth.mech */

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
    }
    free(s->rcpts);
    s->rcpts = NULL;
    s->nrcpt = s->rcpt_cap = 0;
    memset(&s->mail, 0, sizeof(s->mail));
    s->smtputf8 = 0;
    s->qid[0] = '\0';
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

/* smtpd_cmd_session_reset - back to the state right after the greeting: no HELO, no
 * transaction, not authenticated (STARTTLS, and the end of a session). */
void
smtpd_cmd_session_reset(struct smtpd_session *s)
{
    smtpd_cmd_txn_reset(s);
    free(s->helo);
    s->helo = NULL;
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
    return smtpd.tls != NULL && s->tls == NULL && s->svc != SMTPD_SVC_SMTPS;
}

/* smtpd_cmd_auth_offered - AUTH only inside TLS, on submission and smtps, with a map. */
static int
smtpd_cmd_auth_offered(const struct smtpd_session *s)
{
    return smtpd.auth_map != NULL && s->tls_phase == SMTPD_TLS_ON
        && s->svc != SMTPD_SVC_SMTP;
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
    free(s->helo);
    s->helo = xstrndup(cmd->arg, cmd->arglen);
    s->esmtp = esmtp;
    s->state = SMTPD_ST_GREETED;
    if (!esmtp) {
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
    s->sender = xstrdup(path.addr);
    s->mail = mp;
    s->smtputf8 = mp.smtputf8;
    s->state = SMTPD_ST_MAIL;
    smtpd_session_reply(s, 250, "2.1.0", "Ok");
}

/* smtpd_cmd_is_local - is the domain one of local_domains (ASCII case-insensitive)? */
static int
smtpd_cmd_is_local(const char *domain)
{
    size_t i;

    for (i = 0; i < smtpd.nlocal_domains; i++)
        if (strcasecmp(smtpd.local_domains[i], domain) == 0)
            return 1;
    return 0;
}

/* smtpd_cmd_is_relay_domain - is the domain one of relay_domains? */
static int
smtpd_cmd_is_relay_domain(const char *domain)
{
    size_t i;

    for (i = 0; i < smtpd.nrelay_domains; i++)
        if (strcasecmp(smtpd.relay_domains[i], domain) == 0)
            return 1;
    return 0;
}

/* smtpd_cmd_may_relay - may this client send to a domain that is not ours? */
static int
smtpd_cmd_may_relay(const struct smtpd_session *s, const char *domain)
{
    return s->auth_user != NULL || s->mynetworks || smtpd_cmd_is_relay_domain(domain);
}

/* smtpd_cmd_rcpt - RCPT TO:<path> [params]. */
static void
smtpd_cmd_rcpt(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    struct smtp_path        path;
    struct smtp_rcpt_params rp;
    struct smtp_addr_err    err;
    struct smtpd_rcpt      *r;
    char                    key[SMTP_PATH_MAX + SMTP_DOMAIN_MAX + 2], val[1024];
    const char             *domain;
    size_t                  end;
    int                     found;

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
    if ((long long)s->nrcpt >= smtpd.rcpt_limit) {
        smtpd_session_reply(s, 452, "4.5.3", "Error: too many recipients");
        return;
    }
    if (path.is_postmaster) {
        /* RFC 5321 4.5.1: <postmaster> without a domain must work */
        if (smtpd.nlocal_domains == 0) {
            smtpd_cmd_fail(s, 554, "5.7.1", "<%s>: Relay access denied", path.addr);
            return;
        }
        domain = smtpd.local_domains[0];
        snprintf(key, sizeof(key), "%s@%s", path.addr, domain);
    } else {
        domain = path.domain;
        snprintf(key, sizeof(key), "%s", path.addr);
    }
    if (path.domain_literal || !smtpd_cmd_is_local(domain)) {
        if (path.domain_literal || !smtpd_cmd_may_relay(s, domain)) {
            smtpd_cmd_fail(s, 554, "5.7.1", "<%s>: Relay access denied", path.addr);
            return;
        }
        found = 1;                    /* relayed: qmgr routes it */
    } else {
        found = smtpd.mailbox_map != NULL
                    ? map_lookup(smtpd.mailbox_map, key, val, sizeof(val)) : 0;
    }
    if (found == -1) {
        smtpd_session_reply(s, 451, "4.3.0", "<%s>: Temporary lookup failure", path.addr);
        return;
    }
    if (found == 0) {
        smtpd_cmd_fail(s, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown",
                       path.addr);
        return;
    }
    if (s->nrcpt == s->rcpt_cap) {
        s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 4;
        s->rcpts = xrealloc(s->rcpts, s->rcpt_cap * sizeof(*s->rcpts));
    }
    r = &s->rcpts[s->nrcpt++];
    r->addr = xstrdup(key);
    r->orcpt = xstrdup(rp.orcpt);
    r->notify = rp.notify;
    smtpd_session_reply(s, 250, "2.1.5", "Ok");
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
    smtpd_data_begin(s);
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

/* smtpd_cmd_auth_check - user and password decoded: look them up, answer. The password
 * check runs for unknown users too, so the time taken does not tell them apart. */
static void
smtpd_cmd_auth_check(struct smtpd_session *s, struct smtp_auth *a)
{
    const char *method = a->mech == SMTPD_AUTH_PLAIN ? "PLAIN" : "LOGIN";
    char        hash[PWHASH_MAX + 1], name[128];
    int         found, ok = 0;

    smtpd_cmd_printable(a->user, name, sizeof(name));
    found = map_lookup(smtpd.auth_map, a->user, hash, sizeof(hash));
    if (found == -1) {
        log_warnx("authentication from [%s]: auth map lookup failed, sasl_username=%s",
                  s->addr, name);
        smtpd_session_reply(s, 454, "4.7.0", "Temporary authentication failure");
        return;
    }
    if (found == 1)
        ok = pwhash_check(a->password, hash);
    else
        (void)pwhash_check(a->password, smtpd.auth_dummy_hash);
    explicit_bzero(hash, sizeof(hash));
    if (ok) {
        s->auth_user = xstrdup(name);
        s->auth_method = method;
        log_info("client=[%s], sasl_method=%s, sasl_username=%s", s->addr, method, name);
        smtpd_session_reply(s, 235, "2.7.0", "Authentication successful");
        return;
    }
    s->auth_failures++;
    log_info("authentication failed from [%s]: sasl_method=%s, sasl_username=%s%s, "
             "failures=%lld", s->addr, method, name, found ? "" : " (unknown)",
             s->auth_failures);
    if (smtpd.auth_failure_delay_ms == 0) {
        smtpd_cmd_auth_failed(s);
        return;
    }
    s->auth_timer = ev_timer_add(smtpd.ev, smtpd.auth_failure_delay_ms, smtpd_cmd_auth_timer,
                                 s);
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
    s->auth = xcalloc(1, sizeof(*s->auth));
    smtpd_cmd_auth_step(s, smtp_auth_start(s->auth, arg));
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
