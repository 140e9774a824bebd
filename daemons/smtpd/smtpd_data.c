/* smtpd_data - the DATA phase: a spool file from qmgr, the message into it, the commit.
 *
 * The flow is the one in doc/internals.md: at DATA send MSG_OPEN; on MSG_OPENED (with a
 * write descriptor) the milters see DATA (the queue ID is known by then), then reply 354,
 * write our Received: header, then the data as smtp_data scans it (dots unstuffed, CRLF
 * line ends), in large writes. At the end of data: any limit broken -> the right 5xx and
 * MSG_ABORT; else MSG_COMMIT, close the descriptor and wait for MSG_QUEUED before saying
 * 250. Every failure on our side is 451 4.3.0. A message that will be rejected (too big,
 * too many Received: headers, ...) is still read to its real end (so the client's next
 * command is not taken from the middle of its message) but no longer stored. The
 * Received: header and the envelope's protocol say whether the session was TLS (ESMTPS,
 * the version and cipher) and authenticated (ESMTPSA, the user); for local submission
 * (public/submit) they name the local user and uid and the protocol is LOCAL.
 *
 * Policy: with content rules set (smtpd_policy_content_new), what the scanner stores goes
 * through the content scanner on its way to the spool file (our Received: header does
 * not); without them nothing is copied. At the end of data the limits above come first,
 * then the verdict of the access stages (smtpd_cmd) and of the rules: REJECT and DEFER
 * are the rule's reply and the message is dropped; DISCARD drops it too but answers 250
 * as if it were queued, so the client cannot tell (as Postfix does); HOLD commits it with
 * IPC_F_HOLD, and qmgr keeps it out of delivery until `postern queue release`.
 *
 * Missing headers: a message from public/submit (sendmail) or an authenticated client, or
 * from anyone with always_add_missing_headers = yes, that lacks Message-ID:, Date: or From:
 * gets them (libcommon/mailhdr) at the end of its header section, after the content rules,
 * as Postfix's cleanup adds them; mail we merely relay is never changed. The stored bytes
 * are followed as they go to the spool file; a line that may turn out to end the section is
 * kept in memory until it is known (at most one line), so the fields can be inserted
 * before it. They are part of the body file, so the size committed counts them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "content.h"
#include "ipc_msg.h"
#include "log.h"
#include "mailhdr.h"
#include "smtp_reply.h"
#include "smtpd.h"
#include "smtpd_milter.h"
#include "smtpd_policy.h"

#define SMTPD_DATA_LABEL 340          /* "name[addr]" */

/* What the scanner produced for one read, on its way through the content rules: one
 * buffer for the process (a session handles one message at a time, on one thread). */
static struct buf smtpd_data_scratch;

/* smtpd_data_protocol - the with-protocol of Received: and of the envelope (RFC 3848,
 * RFC 6531): ESMTP/UTF8SMTP plus S for TLS and A for AUTH. */
static const char *
smtpd_data_protocol(const struct smtpd_session *s)
{
    static const char *const names[2][4] = {
        { "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" },
        { "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA" },
    };
    int i = (s->tls_phase == SMTPD_TLS_ON ? 2 : 0) + (s->auth_user != NULL ? 1 : 0);

    if (s->svc == SMTPD_SVC_SUBMIT)
        return "LOCAL";
    if (!s->esmtp)
        return "SMTP";
    return names[s->smtputf8 ? 1 : 0][i];
}

/* smtpd_data_received - our trace header, RFC 5321 4.4 / RFC 5322 3.6.7, with the TLS
 * session and the authenticated user as comments, as Postfix and Sendmail write them. */
static void
smtpd_data_received(struct smtpd_session *s)
{
    char date[MAILHDR_DATE_MAX];
    int  v6 = strchr(s->addr, ':') != NULL;

    (void)mailhdr_date(time(NULL), 0, date, sizeof(date));
    if (s->svc == SMTPD_SVC_SUBMIT)     /* sendmail: who, not where from */
        buf_printf(&s->body, "Received: from local user %s (uid %lu)", s->local_user,
                   (unsigned long)s->local_uid);
    else
        buf_printf(&s->body, "Received: from %s (%s [%s%s])", s->helo ? s->helo : "unknown",
                   s->client_name[0] ? s->client_name : "unknown", v6 ? "IPv6:" : "",
                   s->addr);
    if (s->tls != NULL && s->tls_phase == SMTPD_TLS_ON) {
        const struct tls_facts *f = tls_conn_facts(s->tls);

        buf_printf(&s->body, "\r\n\t(version=%s cipher=%s bits=%d)", f->version, f->cipher,
                   f->bits);
    }
    if (s->auth_user != NULL)
        buf_printf(&s->body, "\r\n\t(Authenticated sender: %s)", s->auth_user);
    buf_printf(&s->body, "\r\n\tby %s (Postern) with %s id %s", smtpd.hostname,
               smtpd_data_protocol(s), s->qid);
    if (s->nrcpt == 1)       /* as the client gave it: an alias's target stays private */
        buf_printf(&s->body, "\r\n\tfor <%s>; %s\r\n", s->rcpts[0].given, date);
    else
        buf_printf(&s->body, ";\r\n\t%s\r\n", date);
}

/* smtpd_data_headers_begin - after our Received: header: follow the header section if this
 * message may get missing fields added. */
static void
smtpd_data_headers_begin(struct smtpd_session *s)
{
    static int always = -1;           /* the config only changes with a new process */

    if (always == -1)
        always = config_bool(smtpd.cfg, "always_add_missing_headers");
    s->add_headers = !s->body_discard
                     && (s->svc == SMTPD_SVC_SUBMIT || s->auth_user != NULL || always);
    mailhdr_init(&s->hdrs);
    s->hdrs_base = -(int64_t)s->body.len;   /* the stream starts after Received: */
}

/* smtpd_data_headers_insert - the header section ends at stream offset hdrs.end, still
 * in s->body: put the missing fields there. */
static void
smtpd_data_headers_insert(struct smtpd_session *s)
{
    size_t     at = (size_t)((int64_t)s->hdrs.end - s->hdrs_base);
    struct buf add;
    unsigned   added;

    buf_init(&add, 256);
    added = mailhdr_missing(&s->hdrs, &add, s->qid, smtpd.hostname,
                           s->sender ? s->sender : "", time(NULL));
    if (added != 0) {
        (void)buf_append(&add, s->body.data + at, s->body.len - at);
        buf_truncate(&s->body, at);
        (void)buf_append(&s->body, add.data, add.len);
        log_info("%s: added missing header:%s%s%s", s->qid,
                 added & MAILHDR_MESSAGE_ID ? " Message-ID" : "",
                 added & MAILHDR_DATE ? " Date" : "", added & MAILHDR_FROM ? " From" : "");
    }
    buf_release(&add);
    s->add_headers = 0;
}

/* smtpd_data_headers - follow the bytes stored since the last call; once the header
 * section's end is known, insert what it lacks. */
static void
smtpd_data_headers(struct smtpd_session *s)
{
    size_t from = (size_t)((int64_t)s->hdrs.pos - s->hdrs_base);

    if (mailhdr_scan(&s->hdrs, s->body.data + from, s->body.len - from))
        smtpd_data_headers_insert(s);
}

/* smtpd_data_headers_end - the message is complete: a section that never ended (no body)
 * gets the fields at its end. */
static void
smtpd_data_headers_end(struct smtpd_session *s)
{
    if (!s->add_headers || s->body_discard)
        return;
    smtpd_data_headers(s);
    if (s->add_headers) {
        mailhdr_finish(&s->hdrs);
        smtpd_data_headers_insert(s);
    }
}

/* smtpd_data_begin - DATA accepted: ask qmgr for a spool file. */
void
smtpd_data_begin(struct smtpd_session *s)
{
    struct ipc_msg_open m = { .client_addr = s->addr };

    if (ipc_msg_open_send(smtpd.qmgr, s->id, &m, -1) == -1) {
        smtpd_session_reply(s, 451, "4.3.0", "Error: queue manager unavailable, try again later");
        smtpd_cmd_txn_reset(s);
        return;
    }
    s->state = SMTPD_ST_WAIT_OPEN;
}

/* smtpd_data_fail - our side failed: 451, transaction over. */
static void
smtpd_data_fail(struct smtpd_session *s, const char *text)
{
    smtpd_session_reply(s, 451, "4.3.0", "Error: %s", text);
    smtpd_cmd_txn_reset(s);
}

static void smtpd_data_milter_data(struct smtpd_session *, const struct smtpd_milter_verdict *);
static void smtpd_data_ready(struct smtpd_session *);

/* smtpd_data_opened - qmgr's answer to MSG_OPEN. */
void
smtpd_data_opened(struct smtpd_session *s, uint32_t status, const char *qid, int fd)
{
    if (status != 0 || fd < 0 || !qid_valid(qid)) {
        log_warnx("queue file open failed: status=%u qid=%s client=[%s]", status, qid,
                  s->addr);
        if (fd >= 0)
            close(fd);
        if (status == 0 && *qid != '\0' && smtpd.qmgr != NULL) {
            struct ipc_msg_abort a = { .qid = qid };
            (void)ipc_msg_abort_send(smtpd.qmgr, s->id, &a, -1);
        }
        smtpd_data_fail(s, "queue file write error");
        return;
    }
    snprintf(s->qid, sizeof(s->qid), "%s", qid);
    s->body_fd = fd;
    /* still SMTPD_ST_WAIT_OPEN (no command is read) while the milters see DATA */
    if (smtpd_milter_data(s, smtpd_data_milter_data) == 1)
        smtpd_data_ready(s);
}

/* smtpd_data_milter_data - the milters' verdict on DATA: on, or the file given back and the
 * transaction kept (as a refused DATA leaves it); then read on. */
static void
smtpd_data_milter_data(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
    if (smtpd_cmd_data_verdict(s, v)) {
        smtpd_data_abort(s);
        s->state = SMTPD_ST_MAIL;
    } else {
        smtpd_data_ready(s);
    }
    smtpd_session_resume(s);
}

/* smtpd_data_ready - the spool file is ours and the milters agree: 354, our Received:. */
static void
smtpd_data_ready(struct smtpd_session *s)
{
    const char *why;

    buf_reset(&s->body);
    s->body_written = 0;
    s->body_error = 0;
    s->body_discard = 0;
    smtp_data_init(&s->scan, smtpd.size_limit, smtpd.header_limit);
    if (smtpd_policy_verdict(s, &why) == POLICY_DISCARD) {
        s->body_discard = 1;          /* it will be dropped: neither stored nor scanned */
    } else {
        s->content = smtpd_policy_content_new(s);
        if (s->content != NULL)
            content_begin(s->content, s->qid);
    }
    if (s->auth_user != NULL)
        log_info("%s: client=[%s], sasl_method=%s, sasl_username=%s", s->qid, s->addr,
                 s->auth_method, s->auth_user);
    else
        log_info("%s: client=[%s]", s->qid, s->addr);
    smtpd_data_received(s);
    smtpd_data_headers_begin(s);
    smtpd_session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
    s->state = SMTPD_ST_DATA;
}

/* smtpd_data_write - write the scanned bytes to the spool file. */
static void
smtpd_data_write(struct smtpd_session *s)
{
    size_t off = 0;

    while (off < s->body.len && s->body_error == 0) {
        ssize_t n = write(s->body_fd, s->body.data + off, s->body.len - off);

        if (n == -1) {
            if (errno == EINTR)
                continue;
            s->body_error = errno;
            log_warn("%s: spool file write", s->qid);
            break;
        }
        off += (size_t)n;
        s->body_written += (uint64_t)n;
    }
    if (s->body_error)
        s->body_discard = 1;
    s->hdrs_base += (int64_t)s->body.len;
    buf_reset(&s->body);
}

/* smtpd_data_close_fd - done with the spool file descriptor; the body buffer, grown to
 * SMTPD_BODY_CHUNK, is given back so that idle sessions stay small. */
static void
smtpd_data_close_fd(struct smtpd_session *s)
{
    if (s->body_fd >= 0)
        close(s->body_fd);
    s->body_fd = -1;
    buf_release(&s->body);
    buf_init(&s->body, 0);
    content_free(&s->content);
    s->add_headers = 0;
}

/* smtpd_data_drop - give the file back to qmgr; 1 if it was ours to give. */
static int
smtpd_data_drop(struct smtpd_session *s)
{
    int dropped = 0;

    smtpd_data_close_fd(s);
    if ((s->state == SMTPD_ST_DATA || s->state == SMTPD_ST_WAIT_OPEN) && s->qid[0] != '\0'
        && smtpd.qmgr != NULL) {
        struct ipc_msg_abort a = { .qid = s->qid };
        (void)ipc_msg_abort_send(smtpd.qmgr, s->id, &a, -1);
        dropped = 1;
    }
    s->qid[0] = '\0';
    return dropped;
}

/* smtpd_data_abort - drop the message: give the file back to qmgr. */
void
smtpd_data_abort(struct smtpd_session *s)
{
    char qid[QID_SIZE];

    snprintf(qid, sizeof(qid), "%s", s->qid);
    if (smtpd_data_drop(s))
        log_info("%s: aborted client=[%s]", qid, s->addr);
}

/* smtpd_data_reject - a limit was broken: say why, drop the message. */
static void
smtpd_data_reject(struct smtpd_session *s, int code, const char *enh, const char *text)
{
    log_info("%s: reject: %d %s %s; from=<%s> client=[%s]", s->qid, code, enh, text,
             s->sender ? s->sender : "", s->addr);
    smtpd.stats.rejected++;
    smtpd_data_abort(s);
    smtpd_session_reply(s, code, enh, "%s", text);
    smtpd_cmd_txn_reset(s);
    (void)smtpd_session_error(s);
}

/* smtpd_data_client - "name[addr]" for log lines. */
static const char *
smtpd_data_client(const struct smtpd_session *s, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s[%s]", s->client_name[0] ? s->client_name : "unknown", s->addr);
    return out;
}

/* smtpd_data_refuse - a content rule said REJECT or DEFER: its reply (by default 550
 * 5.7.1 or 450 4.7.1 "Message content rejected"), the message dropped. */
static void
smtpd_data_refuse(struct smtpd_session *s, const struct policy_action *rule)
{
    struct policy_action a = *rule;   /* the content scanner goes with the message */
    int                  defer = a.kind == POLICY_DEFER;
    char                 qid[QID_SIZE], label[SMTPD_DATA_LABEL];

    if (a.code < 400 || a.code > 599)
        a.code = defer ? 450 : 550;
    if (a.enh[0] == '\0')
        snprintf(a.enh, sizeof(a.enh), "%s", a.code >= 500 ? "5.7.1" : "4.7.1");
    if (a.text[0] == '\0')
        snprintf(a.text, sizeof(a.text), "Message content rejected");
    snprintf(qid, sizeof(qid), "%s", s->qid);
    log_info("%s: %s: %d %s %s; from=<%s> client=%s (%s)", qid,
             a.code >= 500 ? "reject" : "defer", a.code, a.enh, a.text,
             s->sender ? s->sender : "", smtpd_data_client(s, label, sizeof(label)), a.where);
    smtpd.stats.rejected++;
    smtpd.stats.content_rejected++;
    (void)smtpd_data_drop(s);
    smtpd_session_reply(s, a.code, a.enh, "%s", a.text);
    smtpd_cmd_txn_reset(s);
    if (a.code >= 500)
        (void)smtpd_session_error(s);
}

/* smtpd_data_discard - DISCARD: drop the message but answer as if it were queued (the
 * client cannot tell, as with Postfix). */
static void
smtpd_data_discard(struct smtpd_session *s, const char *why)
{
    char qid[QID_SIZE], label[SMTPD_DATA_LABEL];

    snprintf(qid, sizeof(qid), "%s", s->qid);
    log_info("%s: discard: %s; from=<%s> nrcpt=%zu client=%s", qid, why,
             s->sender ? s->sender : "", s->nrcpt, smtpd_data_client(s, label, sizeof(label)));
    smtpd.stats.discarded++;
    (void)smtpd_data_drop(s);
    smtpd_session_reply(s, 250, "2.0.0", "Ok: queued as %s", qid);
    smtpd_cmd_txn_reset(s);
}

/* smtpd_data_rule_why - a content rule's action as a reason in a log line. */
static const char *
smtpd_data_rule_why(const struct policy_action *a, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s(%s)", a->text, a->text[0] ? " " : "", a->where);
    return out;
}

/* smtpd_data_policy - the verdict on a complete message: the content rules' and the
 * access stages'. -1: answered here (REJECT, DEFER, DISCARD); 0: commit it (on hold if
 * s->hold is set). */
static int
smtpd_data_policy(struct smtpd_session *s)
{
    const struct content_verdict *v = NULL;
    const char                  *why;
    char                         buf[POLICY_TEXT_MAX + POLICY_WHERE_MAX + 8];
    char                         label[SMTPD_DATA_LABEL];
    enum policy_kind             k = smtpd_policy_verdict(s, &why);

    if (s->content != NULL) {
        content_end(s->content, &s->body);
        v = content_verdict(s->content);
        if (v->kind == POLICY_REJECT || v->kind == POLICY_DEFER) {
            smtpd_data_refuse(s, &v->action);
            return -1;
        }
    }
    if (k == POLICY_DISCARD || (v != NULL && v->kind == POLICY_DISCARD)) {
        smtpd_data_discard(s, k == POLICY_DISCARD ? why
                                                  : smtpd_data_rule_why(&v->action, buf,
                                                                        sizeof(buf)));
        return -1;
    }
    if (k == POLICY_HOLD || (v != NULL && v->kind == POLICY_HOLD)) {
        s->hold = 1;
        log_info("%s: hold: %s; from=<%s> client=%s", s->qid,
                 k == POLICY_HOLD ? why : smtpd_data_rule_why(&v->action, buf, sizeof(buf)),
                 s->sender ? s->sender : "", smtpd_data_client(s, label, sizeof(label)));
    }
    return 0;
}

/* smtpd_data_commit - everything is on disk: send MSG_COMMIT. */
static void
smtpd_data_commit(struct smtpd_session *s)
{
    struct ipc_msg_commit m;
    const char **rcpts, **orcpts;
    uint32_t    *notify;
    size_t       i;
    int          rc;

    memset(&m, 0, sizeof(m));
    rcpts = xcalloc(s->nrcpt, sizeof(*rcpts));
    orcpts = xcalloc(s->nrcpt, sizeof(*orcpts));
    notify = xcalloc(s->nrcpt, sizeof(*notify));
    for (i = 0; i < s->nrcpt; i++) {
        rcpts[i] = s->rcpts[i].addr;
        orcpts[i] = s->rcpts[i].orcpt;
        notify[i] = s->rcpts[i].notify;
    }
    m.qid = s->qid;
    m.size = s->body_written;
    m.flags = (s->smtputf8 ? IPC_F_SMTPUTF8 : 0)
            | (s->mail.body == SMTP_BODY_8BITMIME ? IPC_F_8BITMIME : 0)
            | (s->hold ? IPC_F_HOLD : 0);
    m.sender = s->sender ? s->sender : "";
    m.client_addr = s->addr;
    m.client_name = s->client_name[0] ? s->client_name : "unknown";
    m.helo = s->helo ? s->helo : "";
    m.protocol = smtpd_data_protocol(s);
    m.auth_user = s->auth_user ? s->auth_user : "";
    m.envid = s->mail.envid;
    m.ret = (uint32_t)s->mail.ret;
    m.rcpts = rcpts;
    m.rcpts_n = (uint32_t)s->nrcpt;
    m.orcpts = orcpts;
    m.orcpts_n = (uint32_t)s->nrcpt;
    m.notify = notify;
    m.notify_n = (uint32_t)s->nrcpt;
    rc = smtpd.qmgr != NULL ? ipc_msg_commit_send(smtpd.qmgr, s->id, &m, -1) : -1;
    free(rcpts);
    free(orcpts);
    free(notify);
    if (rc == -1) {
        log_warnx("%s: cannot send the commit to qmgr", s->qid);
        smtpd_data_close_fd(s);
        s->qid[0] = '\0';
        smtpd_data_fail(s, "queue file write error");
        return;
    }
    smtpd_data_close_fd(s);
    s->state = SMTPD_ST_WAIT_QUEUED;
}

/* smtpd_data_milter_done - the milters' verdict on the stored message (their changes are
 * in the file and the envelope already): refuse, discard, or commit (on hold after a
 * quarantine); then read on. */
static void
smtpd_data_milter_done(struct smtpd_session *s, const struct smtpd_milter_verdict *v)
{
    struct policy_action a;

    if (s->qid[0] == '\0' || smtpd.qmgr == NULL) {
        smtpd_data_close_fd(s);       /* qmgr went away while the milters read */
        smtpd_data_fail(s, "queue manager unavailable, try again later");
    } else if (v->kind == POLICY_REJECT || v->kind == POLICY_DEFER) {
        memset(&a, 0, sizeof(a));
        a.kind = v->kind;
        a.code = v->code;
        snprintf(a.enh, sizeof(a.enh), "%s", v->enh);
        snprintf(a.text, sizeof(a.text), "%s", v->text);
        snprintf(a.where, sizeof(a.where), "milter %s", v->who);
        smtpd_data_refuse(s, &a);
    } else if (v->kind == POLICY_DISCARD) {
        smtpd_data_discard(s, v->who[0] ? v->who : "milter");
    } else {
        smtpd_data_commit(s);
    }
    smtpd_session_resume(s);
}

/* smtpd_data_end - the client sent <CR><LF>.<CR><LF>. */
static void
smtpd_data_end(struct smtpd_session *s)
{
    unsigned f = s->scan.flags;

    if (f & SMTP_DATA_TOO_BIG) {
        smtpd_data_reject(s, 552, "5.3.4", "Error: message size exceeds fixed limit");
        return;
    }
    if (f & SMTP_DATA_HDR_TOO_BIG) {
        smtpd_data_reject(s, 552, "5.3.4", "Error: message header size exceeds limit");
        return;
    }
    if (f & SMTP_DATA_LONG_LINE) {
        smtpd_data_reject(s, 554, "5.6.0", "Error: message has a line over 998 octets");
        return;
    }
    if ((long long)s->scan.received > smtpd.received_limit) {
        smtpd_data_reject(s, 554, "5.4.6", "Too many hops");
        return;
    }
    if (smtpd.reject_bare && (f & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR))) {
        smtpd_data_reject(s, 554, "5.6.0", "Error: bare <CR> or <LF> in message data");
        return;
    }
    if (s->qid[0] == '\0' || smtpd.qmgr == NULL) {
        /* qmgr went away during the data */
        smtpd_data_close_fd(s);
        smtpd_data_fail(s, "queue manager unavailable, try again later");
        return;
    }
    if (smtpd_data_policy(s) == -1)
        return;
    smtpd_data_headers_end(s);
    smtpd_data_write(s);
    /* No fsync here: qmgr makes the whole batch durable with one syncfs before QUEUED. */
    if (s->body_error != 0) {
        smtpd_data_abort(s);
        smtpd_data_fail(s, "queue file write error");
        return;
    }
    if (smtpd_milter_eom(s, smtpd_data_milter_done) == 1)
        smtpd_data_commit(s);
}

/* smtpd_data_feed_content - scan the buffered client bytes into the scratch buffer and
 * pass them through the content rules into the body. Once a rule has refused or discarded
 * the message nothing more needs storing. */
static enum smtp_data_status
smtpd_data_feed_content(struct smtpd_session *s, size_t *used)
{
    enum smtp_data_status st;
    enum policy_kind      k;

    if (smtpd_data_scratch.data == NULL)
        buf_init(&smtpd_data_scratch, SMTPD_IN_MAX);
    buf_reset(&smtpd_data_scratch);
    st = smtp_data_feed(&s->scan, s->in.data, s->in.len, &smtpd_data_scratch, used);
    content_feed(s->content, smtpd_data_scratch.data, smtpd_data_scratch.len, &s->body);
    buf_reset(&smtpd_data_scratch);
    k = content_verdict(s->content)->kind;
    if (k == POLICY_REJECT || k == POLICY_DEFER || k == POLICY_DISCARD) {
        s->body_discard = 1;
        buf_reset(&s->body);
    }
    return st;
}

/* smtpd_data_input - feed buffered client bytes to the scanner. */
void
smtpd_data_input(struct smtpd_session *s)
{
    enum smtp_data_status st;
    size_t used;

    if (s->content != NULL && !s->body_discard)
        st = smtpd_data_feed_content(s, &used);
    else
        st = smtp_data_feed(&s->scan, s->in.data, s->in.len,
                            s->body_discard ? NULL : &s->body, &used);
    buf_consume(&s->in, used);
    if (!s->body_discard
        && ((s->scan.flags & (SMTP_DATA_TOO_BIG | SMTP_DATA_HDR_TOO_BIG | SMTP_DATA_LONG_LINE))
            || (smtpd.reject_bare && (s->scan.flags & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR)))
            || (long long)s->scan.received > smtpd.received_limit || s->qid[0] == '\0')) {
        s->body_discard = 1;          /* it will be rejected: stop storing */
        buf_reset(&s->body);
    }
    if (!s->body_discard && s->add_headers)
        smtpd_data_headers(s);
    if (!s->body_discard && s->body.len >= SMTPD_BODY_CHUNK
        && !(s->add_headers && mailhdr_holding(&s->hdrs)))
        smtpd_data_write(s);
    if (st == SMTP_DATA_END)
        smtpd_data_end(s);
}

/* smtpd_data_queued - qmgr's answer to MSG_COMMIT. */
void
smtpd_data_queued(struct smtpd_session *s, uint32_t status, const char *qid, const char *text)
{
    if (status == 0) {
        smtpd.stats.messages++;
        smtpd.stats.bytes += s->body_written;
        smtpd.stats.held += s->hold != 0;
        log_info("%s: from=<%s>, size=%llu, nrcpt=%zu, client=[%s], status=%s", qid,
                 s->sender ? s->sender : "", (unsigned long long)s->body_written, s->nrcpt,
                 s->addr, s->hold ? "hold" : "queued");
        smtpd_session_reply(s, 250, "2.0.0", "Ok: queued as %s", qid);
        smtpd_cmd_txn_reset(s);
        return;
    }
    log_warnx("%s: commit failed: status=%u text=\"%s\"", qid, status, text);
    smtpd_data_fail(s, "queue file write error");
}

/* smtpd_data_qmgr_lost - qmgr is gone: whatever waited on it gets 451. */
void
smtpd_data_qmgr_lost(struct smtpd_session *s)
{
    switch (s->state) {
    case SMTPD_ST_WAIT_OPEN:
    case SMTPD_ST_WAIT_QUEUED:
        if (s->qid[0] != '\0')
            log_warnx("%s: qmgr lost before the commit was confirmed", s->qid);
        smtpd_data_close_fd(s);       /* opened while the milters saw DATA */
        s->qid[0] = '\0';
        smtpd_data_fail(s, "queue manager unavailable, try again later");
        smtpd_session_resume(s);
        break;
    case SMTPD_ST_DATA:
        /* read on to the end of data, then 451 (see smtpd_data_end) */
        s->qid[0] = '\0';
        s->body_discard = 1;
        buf_reset(&s->body);
        break;
    default:
        break;
    }
}
