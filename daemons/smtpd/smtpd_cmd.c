/* smtpd_cmd - the SMTP commands: order, syntax, parameters, recipients, limits.
 *
 * Each handler gets one parsed command and answers it with exactly one reply (or hands
 * DATA on to smtpd_data, which answers when qmgr has). Every failure on client input is a
 * reply and, if it is the client's fault, counts towards smtpd_error_limit. Recipients are
 * accepted only for local_domains and only when the mailbox map knows them; this daemon
 * relays for nobody yet. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smtp_reply.h"
#include "smtpd.h"

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
        smtpd_cmd_fail(s, 554, "5.7.1", "<%s>: Relay access denied", path.addr);
        return;
    }
    found = smtpd.mailbox_map != NULL ? map_lookup(smtpd.mailbox_map, key, val, sizeof(val))
                                      : 0;
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
        smtpd_session_reply(s, 214, "2.0.0",
                            "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
        break;
    case SMTP_VERB_EXPN:
    case SMTP_VERB_STARTTLS:
    case SMTP_VERB_AUTH:
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
