/* qmgr_dsn - compose a delivery status notification (RFC 3464) as a message body.
 *
 * See qmgr_dsn.h. Header fields are folded at white space before 78 columns where the value
 * allows it; values from peers are cut to QMGR_DSN_DIAG_MAX bytes, control characters
 * become spaces and, in the report fields, bytes outside ASCII become '?' (the report part
 * is message/delivery-status, which is ASCII; an address that is not ASCII is given with the
 * RFC 6533 address type "utf-8"). Times are UTC. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "mailhdr.h"
#include "qmgr_dsn.h"

#define QMGR_DSN_DIAG_MAX  800
#define QMGR_DSN_FOLD      78

/* qmgr_dsn_header_len - the header section, without the empty line that ends it. */
size_t
qmgr_dsn_header_len(const char *msg, size_t len)
{
    size_t i;

    if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
        return 0;
    if (len >= 1 && msg[0] == '\n')
        return 0;
    for (i = 0; i + 1 < len; i++) {
        if (msg[i] != '\n')
            continue;
        if (msg[i + 1] == '\n')
            return i + 1;
        if (msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n')
            return i + 1;
    }
    return len;
}

/* qmgr_dsn_clean - a peer's text as one safe line: controls to spaces, cut to max bytes;
 * ascii_only: bytes >= 0x80 become '?'. */
static void
qmgr_dsn_clean(const char *in, int ascii_only, char *out, size_t outlen)
{
    size_t i, o = 0;

    for (i = 0; in != NULL && in[i] != '\0' && o + 1 < outlen && i < QMGR_DSN_DIAG_MAX; i++) {
        unsigned char c = (unsigned char)in[i];

        if (c < 0x20 || c == 0x7f)
            c = ' ';
        else if (c >= 0x80 && ascii_only)
            c = '?';
        out[o++] = (char)c;
    }
    /* No trailing white space: it would be lost or mangled in transit. */
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* qmgr_dsn_is_ascii - 1 if s has no byte >= 0x80. */
static int
qmgr_dsn_is_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* qmgr_dsn_field - "Name: value" CRLF, folded at spaces so lines stay near 78 columns. */
static void
qmgr_dsn_field(struct buf *out, const char *name, const char *value)
{
    size_t col = strlen(name) + 2, n = strlen(value), i = 0;

    buf_printf(out, "%s: ", name);
    while (i < n) {
        size_t word = strcspn(value + i, " ");

        if (col > strlen(name) + 2 && col + 1 + word > QMGR_DSN_FOLD) {
            buf_puts(out, "\r\n\t");
            col = 1;
        } else if (i > 0) {
            buf_puts(out, " ");
            col++;
        }
        buf_append(out, value + i, word);
        col += word;
        i += word;
        while (i < n && value[i] == ' ')
            i++;
    }
    buf_puts(out, "\r\n");
}

/* qmgr_dsn_is_reply - does the text look like an SMTP reply ("550 5.1.1 ...")? */
static int
qmgr_dsn_is_reply(const char *s)
{
    return s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0'
           && s[2] <= '9' && (s[3] == ' ' || s[3] == '-' || s[3] == '\0');
}

/* qmgr_dsn_diag - the Diagnostic-Code value for a cleaned diagnostic: "smtp; reply" when it
 * is a remote reply, bare or as the smtp agent words it ("host h[a] said: 550 ... (in reply
 * to RCPT TO command)"); "x-postern; text" for our own diagnostics. */
static void
qmgr_dsn_diag(const char *s, char *out, size_t outlen)
{
    const char *said = strstr(s, " said: "), *end;
    size_t      n;

    if (qmgr_dsn_is_reply(s)) {
        snprintf(out, outlen, "smtp; %s", s);
        return;
    }
    if (said != NULL && qmgr_dsn_is_reply(said + 7)) {
        said += 7;
        n = strlen(said);
        if ((end = strstr(said, " (in reply to ")) != NULL && end[strlen(end) - 1] == ')')
            n = (size_t)(end - said);
        snprintf(out, outlen, "smtp; %.*s", (int)n, said);
        return;
    }
    snprintf(out, outlen, "x-postern; %s", s);
}

/* qmgr_dsn_mta_host - the host name of "mx.b.example[192.0.2.1]:25" into out, "" if the
 * relay names no remote host ("local", "none"). */
static void
qmgr_dsn_mta_host(const char *relay, char *out, size_t outlen)
{
    size_t n;

    out[0] = '\0';
    if (relay == NULL || relay[0] == '\0' || strcmp(relay, "local") == 0
        || strcmp(relay, "none") == 0)
        return;
    n = strcspn(relay, "[");
    if (n == 0) {
        /* "[192.0.2.1]:25": the address is all we have. */
        n = strcspn(relay + 1, "]");
        snprintf(out, outlen, "%.*s", (int)n, relay + 1);
        return;
    }
    if (relay[n] == '\0')
        n = strcspn(relay, ":");
    snprintf(out, outlen, "%.*s", (int)n, relay);
}

/* qmgr_dsn_kind - what the report is about, from the recipients' actions: "failed",
 * "delayed", or a success report: "relayed" when it names a recipient whose delivery
 * nobody will confirm (the next hop lacks DSN), else "delivered". */
static const char *
qmgr_dsn_kind(const struct qmgr_dsn *d)
{
    size_t i;
    int    delayed = 0, relayed = 0;

    for (i = 0; i < d->nrcpt; i++) {
        if (strcmp(d->rcpts[i].action, "failed") == 0)
            return "failed";
        if (strcmp(d->rcpts[i].action, "delayed") == 0)
            delayed = 1;
        if (strcmp(d->rcpts[i].action, "relayed") == 0)
            relayed = 1;
    }
    return delayed ? "delayed" : relayed ? "relayed" : "delivered";
}

/* qmgr_dsn_is_success - a report of delivery (or relay), not of a problem. */
static int
qmgr_dsn_is_success(const char *kind)
{
    return strcmp(kind, "delivered") == 0 || strcmp(kind, "relayed") == 0;
}

/* qmgr_dsn_action_text - how the human-readable part words a recipient's action. */
static const char *
qmgr_dsn_action_text(const char *action)
{
    if (strcmp(action, "failed") == 0)
        return "delivery failed";
    if (strcmp(action, "delayed") == 0)
        return "delivery delayed";
    if (strcmp(action, "relayed") == 0)
        return "relayed to non-DSN-aware mail system";
    return "delivered";
}

/* qmgr_dsn_human - the text/plain part. */
static void
qmgr_dsn_human(struct buf *out, const struct qmgr_dsn *d, const char *kind)
{
    char   host[300], addr[QMGR_DSN_DIAG_MAX + 1], diag[QMGR_DSN_DIAG_MAX + 1];
    char   date[MAILHDR_DATE_MAX];
    size_t i;

    qmgr_dsn_clean(d->reporting_mta, 1, host, sizeof(host));
    buf_printf(out, "This is the mail system at host %s.\r\n\r\n", host);
    if (strcmp(kind, "failed") == 0) {
        buf_puts(out, "I'm sorry to have to inform you that your message could not\r\n"
                      "be delivered to one or more recipients. It's attached below.\r\n\r\n"
                      "The mail system\r\n\r\n");
    } else if (strcmp(kind, "delayed") == 0) {
        uint64_t until = 0;

        for (i = 0; i < d->nrcpt; i++)
            if (d->rcpts[i].retry_until > until)
                until = d->rcpts[i].retry_until;
        mailhdr_date((time_t)until, 1, date, sizeof(date));
        buf_puts(out, "####################################################################\r\n"
                      "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
                      "####################################################################\r\n"
                      "\r\n"
                      "Your message could not be delivered yet to one or more recipients.\r\n");
        buf_printf(out, "The mail system will keep trying until %s.\r\n\r\n"
                        "The mail system\r\n\r\n", date);
    } else if (strcmp(kind, "relayed") == 0) {
        /* RFC 3461 5.2.2: the sender must learn that no further notice will come. */
        buf_puts(out, "Your message was successfully delivered to the destination(s)\r\n"
                      "listed below. Where it was relayed to a mail system that does not\r\n"
                      "support delivery notifications, this is the last notice of success\r\n"
                      "you will get; other systems may still report delivery errors.\r\n\r\n"
                      "The mail system\r\n\r\n");
    } else {
        buf_puts(out, "Your message was successfully delivered to the destination(s)\r\n"
                      "listed below.\r\n\r\n"
                      "The mail system\r\n\r\n");
    }
    for (i = 0; i < d->nrcpt; i++) {
        const struct qmgr_dsn_rcpt *r = &d->rcpts[i];

        qmgr_dsn_clean(r->addr, 0, addr, sizeof(addr));
        qmgr_dsn_clean(r->diag, 0, diag, sizeof(diag));
        buf_printf(out, "<%s>: %s%s%s\r\n", addr, qmgr_dsn_action_text(r->action),
                   diag[0] ? ": " : "", diag);
    }
}

/* qmgr_dsn_report - the message/delivery-status part's content. */
static void
qmgr_dsn_report(struct buf *out, const struct qmgr_dsn *d)
{
    char   v[QMGR_DSN_DIAG_MAX + 64], s[QMGR_DSN_DIAG_MAX + 1], date[MAILHDR_DATE_MAX], host[300];
    size_t i;

    qmgr_dsn_clean(d->reporting_mta, 1, s, sizeof(s));
    snprintf(v, sizeof(v), "dns; %s", s);
    qmgr_dsn_field(out, "Reporting-MTA", v);
    qmgr_dsn_clean(d->orig_qid, 1, s, sizeof(s));
    if (s[0] != '\0')
        qmgr_dsn_field(out, "X-Postern-Queue-ID", s);
    qmgr_dsn_clean(d->envid, 1, s, sizeof(s));
    if (s[0] != '\0')
        qmgr_dsn_field(out, "Original-Envelope-Id", s);
    mailhdr_date((time_t)d->arrival, 1, date, sizeof(date));
    qmgr_dsn_field(out, "Arrival-Date", date);
    for (i = 0; i < d->nrcpt; i++) {
        const struct qmgr_dsn_rcpt *r = &d->rcpts[i];
        int                         ascii = qmgr_dsn_is_ascii(r->addr);

        buf_puts(out, "\r\n");
        qmgr_dsn_clean(r->addr, 0, s, sizeof(s));
        snprintf(v, sizeof(v), "%s; %s", ascii ? "rfc822" : "utf-8", s);
        qmgr_dsn_field(out, "Final-Recipient", v);
        if (r->orcpt != NULL && r->orcpt[0] != '\0') {
            qmgr_dsn_clean(r->orcpt, 0, s, sizeof(s));
            if (strchr(s, ';') != NULL)
                snprintf(v, sizeof(v), "%s", s);
            else
                snprintf(v, sizeof(v), "rfc822;%s", s);
            qmgr_dsn_field(out, "Original-Recipient", v);
        }
        qmgr_dsn_field(out, "Action", r->action);
        qmgr_dsn_clean(r->status, 1, s, sizeof(s));
        qmgr_dsn_field(out, "Status", s[0] ? s : strcmp(r->action, "failed") == 0 ? "5.0.0"
                                      : strcmp(r->action, "delayed") == 0 ? "4.0.0"
                                                                           : "2.0.0");
        qmgr_dsn_mta_host(r->remote_mta, host, sizeof(host));
        qmgr_dsn_clean(host, 1, s, sizeof(s));
        if (s[0] != '\0') {
            snprintf(v, sizeof(v), "dns; %s", s);
            qmgr_dsn_field(out, "Remote-MTA", v);
        }
        qmgr_dsn_clean(r->diag, 1, s, sizeof(s));
        if (s[0] != '\0') {
            qmgr_dsn_diag(s, v, sizeof(v));
            qmgr_dsn_field(out, "Diagnostic-Code", v);
        }
        if (r->last_attempt != 0) {
            mailhdr_date((time_t)r->last_attempt, 1, date, sizeof(date));
            qmgr_dsn_field(out, "Last-Attempt-Date", date);
        }
        if (r->retry_until != 0 && strcmp(r->action, "delayed") == 0) {
            mailhdr_date((time_t)r->retry_until, 1, date, sizeof(date));
            qmgr_dsn_field(out, "Will-Retry-Until", date);
        }
    }
}

/* qmgr_dsn_compose - the whole report. */
void
qmgr_dsn_compose(struct buf *out, const struct qmgr_dsn *d, const char *orig, size_t origlen)
{
    const char *kind = qmgr_dsn_kind(d);
    char        date[MAILHDR_DATE_MAX], to[QMGR_DSN_DIAG_MAX + 1], host[300];

    qmgr_dsn_clean(d->reporting_mta, 1, host, sizeof(host));
    qmgr_dsn_clean(d->to, 0, to, sizeof(to));
    mailhdr_date((time_t)d->now, 1, date, sizeof(date));
    buf_printf(out, "Date: %s\r\n", date);
    buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", host);
    buf_printf(out, "To: <%s>\r\n", to);
    buf_printf(out, "Subject: %s\r\n",
               qmgr_dsn_is_success(kind) ? "Successful Mail Delivery Report"
               : strcmp(kind, "delayed") == 0 ? "Delayed Mail (still being retried)"
                                              : "Undelivered Mail Returned to Sender");
    buf_printf(out, "Message-ID: %s\r\n", d->message_id);
    buf_puts(out, "Auto-Submitted: auto-replied\r\n");
    buf_puts(out, "MIME-Version: 1.0\r\n");
    buf_printf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                    "\tboundary=\"%s\"\r\n", d->boundary);
    buf_puts(out, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

    buf_printf(out, "--%s\r\n", d->boundary);
    buf_puts(out, "Content-Description: Notification\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n\r\n");
    qmgr_dsn_human(out, d, kind);

    buf_printf(out, "\r\n--%s\r\n", d->boundary);
    buf_puts(out, "Content-Description: Delivery report\r\n"
                  "Content-Type: message/delivery-status\r\n\r\n");
    qmgr_dsn_report(out, d);

    buf_printf(out, "\r\n--%s\r\n", d->boundary);
    if (orig == NULL) {
        buf_puts(out, "Content-Description: Original message unavailable\r\n"
                      "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                      "The original message could not be read from the queue.\r\n");
    } else {
        if (d->full)
            buf_printf(out, "Content-Description: %s Message\r\n"
                            "Content-Type: message/rfc822\r\n",
                       qmgr_dsn_is_success(kind) ? "Delivered" : "Undelivered");
        else
            buf_printf(out, "Content-Description: %s Message Headers\r\n"
                            "Content-Type: text/rfc822-headers\r\n",
                       qmgr_dsn_is_success(kind) ? "Delivered" : "Undelivered");
        if (d->eightbit)
            buf_puts(out, "Content-Transfer-Encoding: 8bit\r\n");
        buf_puts(out, "\r\n");
        buf_append(out, orig, origlen);
        if (origlen > 0 && orig[origlen - 1] != '\n')
            buf_puts(out, "\r\n");
    }
    buf_printf(out, "\r\n--%s--\r\n", d->boundary);
}
