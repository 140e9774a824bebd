/* smtp_client - the SMTP/LMTP client session state machine (see smtp_client.h).
 *
 * Input is kept raw until smtp_client_step() cuts it into lines and lines into replies; a
 * reply is handled by the state that waits for it. Replies expected for commands already
 * sent (several at once with PIPELINING) sit in a queue, in the order the commands left, so
 * a reply is always matched with its own command. Nothing here blocks, allocates without
 * bound or trusts the server: an overlong line is cut, a malformed line ends the session. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "smtp_client.h"
#include "smtp_reply.h"

enum smtp_client_state {
    ST_GREETING = 0,
    ST_EHLO,
    ST_HELO,
    ST_STARTTLS,
    ST_TLS_WAIT,        /* the caller does the handshake */
    ST_AUTH,            /* replies to AUTH and its continuations */
    ST_READY,
    ST_RSET,
    ST_TXN,             /* replies to MAIL/RCPT/DATA */
    ST_BODY,            /* the caller streams the body */
    ST_DOT,             /* replies to end of data */
    ST_QUIT,
    ST_DEAD,
};

/* SASL mechanisms we can use (struct smtp_client.auth_mechs). */
#define SMTP_AUTH_M_PLAIN  0x1u
#define SMTP_AUTH_M_LOGIN  0x2u
#define SMTP_AUTH_CRED_MAX 512        /* octets of a user name or password */

/* One expected reply. */
struct smtp_client_expect {
    enum smtp_client_stage stage;
    size_t                 idx;     /* recipient, for RCPT and LMTP end of data */
};

struct smtp_client {
    struct smtp_client_conf        conf;
    char                          *helo_name;
    enum smtp_client_state         state;
    enum smtp_client_event         pending;     /* returned by the next step */
    struct buf                     in;
    struct buf                     out;
    int                            eof;
    int                            skip_to_lf;  /* cutting an overlong line */
    /* the reply being assembled */
    int                            r_code;
    int                            r_lines;
    struct smtp_client_reply       r;
    /* session facts */
    unsigned                       ext;
    uint64_t                       size_limit;
    int                            tls;
    int                            txns;        /* transactions started on this session */
    /* SASL */
    char                          *auth_user, *auth_pass;   /* NULL: no AUTH */
    unsigned                       auth_mechs;  /* SMTP_AUTH_M_* the server offered */
    int                            auth_sent;   /* LOGIN: 1 after AUTH, 2 after the user */
    int                            auth_state;  /* smtp_client_auth_state() */
    struct smtp_client_reply       err;
    /* the transaction */
    const struct smtp_client_msg  *msg;
    struct smtp_client_reply      *res;         /* per recipient */
    size_t                         nres;
    struct smtp_client_expect     *exp;
    size_t                         exp_head, exp_tail, exp_cap;
    size_t                         next_rcpt;   /* without pipelining: next RCPT to send */
    size_t                         accepted;
    int                            mail_failed;
    struct smtp_client_reply       mail_reply;
    /* body state */
    int                            at_bol;
    int                            prev_cr;
};

/* smtp_client_stage_name - the command a stage's reply answers. */
const char *
smtp_client_stage_name(enum smtp_client_stage st)
{
    static const char *const names[] = {
        "the initial greeting", "EHLO", "STARTTLS", "AUTH", "RSET", "MAIL FROM", "RCPT TO",
        "DATA", "end of DATA", "QUIT",
    };

    return (size_t)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

struct smtp_client *
smtp_client_new(const struct smtp_client_conf *conf)
{
    struct smtp_client *c = xcalloc(1, sizeof(*c));

    c->conf = *conf;
    c->helo_name = xstrdup(conf->helo_name && *conf->helo_name ? conf->helo_name
                                                               : "localhost");
    c->conf.helo_name = c->helo_name;
    if (conf->auth_user != NULL && conf->auth_pass != NULL) {
        c->auth_user = xstrdup(conf->auth_user);
        c->auth_pass = xstrdup(conf->auth_pass);
    }
    c->conf.auth_user = c->conf.auth_pass = NULL;      /* ours are in c */
    buf_init(&c->in, 1024);
    buf_init(&c->out, 1024);
    c->state = ST_GREETING;
    return c;
}

void
smtp_client_free(struct smtp_client **cp)
{
    struct smtp_client *c = *cp;

    if (c == NULL)
        return;
    buf_release(&c->in);
    buf_release(&c->out);
    free(c->res);
    free(c->exp);
    free(c->helo_name);
    xfree_secret(&c->auth_user);
    xfree_secret(&c->auth_pass);
    free(c);
    *cp = NULL;
}

struct buf *
smtp_client_output(struct smtp_client *c)
{
    return &c->out;
}

unsigned
smtp_client_ext(const struct smtp_client *c)
{
    return c->ext;
}

uint64_t
smtp_client_size_limit(const struct smtp_client *c)
{
    return c->size_limit;
}

int
smtp_client_is_tls(const struct smtp_client *c)
{
    return c->tls;
}

const struct smtp_client_reply *
smtp_client_rcpt_result(const struct smtp_client *c, size_t i)
{
    static const struct smtp_client_reply none;

    return i < c->nres ? &c->res[i] : &none;
}

int
smtp_client_auth_state(const struct smtp_client *c)
{
    return c->auth_state;
}

const struct smtp_client_reply *
smtp_client_error(const struct smtp_client *c)
{
    return &c->err;
}

/* smtp_client_set - fill in a reply of our own making. */
static void
smtp_client_set(struct smtp_client_reply *r, enum smtp_client_stage stage, const char *dsn,
                const char *text)
{
    r->code = 0;
    r->stage = stage;
    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    snprintf(r->text, sizeof(r->text), "%s", text);
}

/* smtp_client_fail - the session is over: remember why, fill in recipients still open. */
static void
smtp_client_fail(struct smtp_client *c, const struct smtp_client_reply *why)
{
    c->err = *why;
    for (size_t i = 0; i < c->nres; i++)
        if (c->res[i].code == 0 && c->res[i].dsn[0] == '\0')
            c->res[i] = *why;
    c->state = ST_DEAD;
    c->pending = SMTP_CLIENT_EV_ERROR;
}

/* smtp_client_fail_local - a failure of our own (protocol error, lost connection). */
static void
smtp_client_fail_local(struct smtp_client *c, const char *dsn, const char *text)
{
    struct smtp_client_reply r;

    smtp_client_set(&r, SMTP_STAGE_GREETING, dsn, text);
    switch (c->state) {
    case ST_GREETING:   r.stage = SMTP_STAGE_GREETING; break;
    case ST_EHLO:
    case ST_HELO:       r.stage = SMTP_STAGE_HELO; break;
    case ST_STARTTLS:
    case ST_TLS_WAIT:   r.stage = SMTP_STAGE_STARTTLS; break;
    case ST_AUTH:       r.stage = SMTP_STAGE_AUTH; break;
    case ST_RSET:
    case ST_READY:      r.stage = SMTP_STAGE_RSET; break;
    case ST_TXN:        r.stage = c->exp_head < c->exp_tail ? c->exp[c->exp_head].stage
                                                            : SMTP_STAGE_MAIL; break;
    case ST_BODY:
    case ST_DOT:        r.stage = SMTP_STAGE_DOT; break;
    default:            r.stage = SMTP_STAGE_QUIT; break;
    }
    smtp_client_fail(c, &r);
}

/* smtp_client_text_add - append printable text to the reply, within its bound. */
static void
smtp_client_text_add(struct smtp_client_reply *r, const char *s, size_t n)
{
    size_t len = strlen(r->text);

    for (size_t i = 0; i < n && len + 1 < sizeof(r->text); i++) {
        unsigned char ch = (unsigned char)s[i];

        r->text[len++] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
    }
    r->text[len] = '\0';
}

/* smtp_client_dsn_parse - an enhanced status code "c.sss.ddd" of class cls at s: its length,
 * or 0. */
static size_t
smtp_client_dsn_parse(const char *s, size_t n, int cls)
{
    size_t i = 0, part, digits;

    if (n < 5 || s[0] != '0' + cls || s[1] != '.')
        return 0;
    i = 2;
    for (part = 0; part < 2; part++) {
        digits = 0;
        while (i < n && isdigit((unsigned char)s[i]) && digits < 3) {
            i++;
            digits++;
        }
        if (digits == 0)
            return 0;
        if (part == 0) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < n && s[i] != ' ')
        return 0;
    return i;
}

/* smtp_client_auth_mechs - the mechanisms of an "AUTH PLAIN LOGIN ..." line (or the old
 * "AUTH=PLAIN LOGIN" form) that we can use. */
static void
smtp_client_auth_mechs(struct smtp_client *c, const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t w;

        while (i < n && (s[i] == ' ' || s[i] == '='))
            i++;
        for (w = 0; i + w < n && s[i + w] != ' '; w++)
            ;
        if (w == 5 && strncasecmp(s + i, "PLAIN", 5) == 0)
            c->auth_mechs |= SMTP_AUTH_M_PLAIN;
        else if (w == 5 && strncasecmp(s + i, "LOGIN", 5) == 0)
            c->auth_mechs |= SMTP_AUTH_M_LOGIN;
        i += w;
    }
    if (c->auth_mechs != 0)
        c->ext |= SMTP_EXT_AUTH;
}

/* smtp_client_ehlo_line - one EHLO keyword line. */
static void
smtp_client_ehlo_line(struct smtp_client *c, const char *s, size_t n)
{
    char   kw[32], *end;
    size_t k = 0;

    while (k < n && k + 1 < sizeof(kw) && s[k] != ' ' && s[k] != '=') {
        kw[k] = s[k];
        k++;
    }
    kw[k] = '\0';
    if (strcasecmp(kw, "PIPELINING") == 0)
        c->ext |= SMTP_EXT_PIPELINING;
    else if (strcasecmp(kw, "8BITMIME") == 0)
        c->ext |= SMTP_EXT_8BITMIME;
    else if (strcasecmp(kw, "SMTPUTF8") == 0)
        c->ext |= SMTP_EXT_SMTPUTF8;
    else if (strcasecmp(kw, "STARTTLS") == 0)
        c->ext |= SMTP_EXT_STARTTLS;
    else if (strcasecmp(kw, "DSN") == 0)
        c->ext |= SMTP_EXT_DSN;
    else if (strcasecmp(kw, "ENHANCEDSTATUSCODES") == 0)
        c->ext |= SMTP_EXT_ENHANCED;
    else if (strcasecmp(kw, "AUTH") == 0)
        smtp_client_auth_mechs(c, s + k, n - k);
    else if (strcasecmp(kw, "SIZE") == 0) {
        char num[24];
        size_t j = 0;

        c->ext |= SMTP_EXT_SIZE;
        c->size_limit = 0;
        while (k < n && s[k] == ' ')
            k++;
        while (k < n && j + 1 < sizeof(num) && isdigit((unsigned char)s[k]))
            num[j++] = s[k++];
        num[j] = '\0';
        if (j > 0 && j < 20)
            c->size_limit = strtoull(num, &end, 10);
    }
}

/* smtp_client_line - one reply line (no CRLF). 1: a reply is complete in c->r, 0: more
 * lines follow, -1: not a reply line. */
static int
smtp_client_line(struct smtp_client *c, const char *line, size_t len)
{
    int    code, more;
    size_t text, d;

    if (smtp_reply_parse(line, len, &code, &more, &text) == -1)
        return -1;
    if (c->r_lines == 0) {
        memset(&c->r, 0, sizeof(c->r));
        c->r_code = code;
        c->r.code = code;
        snprintf(c->r.text, sizeof(c->r.text), "%d", code);
        d = smtp_client_dsn_parse(line + text, len - text, code / 100);
        if (d > 0 && d < sizeof(c->r.dsn))
            memcpy(c->r.dsn, line + text, d);
        else
            snprintf(c->r.dsn, sizeof(c->r.dsn), "%d.0.0", code / 100);
    } else if (code != c->r_code) {
        return -1;
    }
    if (c->state == ST_EHLO && c->r_lines > 0 && code / 100 == 2)
        smtp_client_ehlo_line(c, line + text, len - text);
    if (len > text) {
        /* Later lines repeat the enhanced code: keep it once. */
        if (c->r_lines > 0) {
            d = smtp_client_dsn_parse(line + text, len - text, code / 100);
            if (d > 0 && strncmp(line + text, c->r.dsn, d) == 0)
                text += d + (text + d < len);
        }
        smtp_client_text_add(&c->r, " ", 1);
        smtp_client_text_add(&c->r, line + text, len - text);
    }
    c->r_lines++;
    if (more)
        return 0;
    c->r_lines = 0;
    return 1;
}

/* smtp_client_next_reply - cut the next whole reply out of the input into c->r. 1: got one,
 * 0: need more input, -1: protocol error (session failed). */
static int
smtp_client_next_reply(struct smtp_client *c)
{
    for (;;) {
        char  *lf = memchr(c->in.data, '\n', c->in.len);
        size_t len, used;
        int    rc;

        if (c->skip_to_lf) {
            if (lf == NULL) {
                buf_reset(&c->in);
                return 0;
            }
            buf_consume(&c->in, (size_t)(lf - c->in.data) + 1);
            c->skip_to_lf = 0;
            continue;
        }
        if (lf == NULL && c->in.len <= SMTP_CLIENT_LINE_MAX)
            return 0;
        if (lf == NULL || (size_t)(lf - c->in.data) > SMTP_CLIENT_LINE_MAX) {
            /* Overlong: keep the start, drop the rest of the line. */
            len = SMTP_CLIENT_LINE_MAX;
            used = lf ? (size_t)(lf - c->in.data) + 1 : c->in.len;
            c->skip_to_lf = lf == NULL;
        } else {
            len = (size_t)(lf - c->in.data);
            used = len + 1;
            if (len > 0 && c->in.data[len - 1] == '\r')
                len--;
        }
        rc = smtp_client_line(c, c->in.data, len);
        buf_consume(&c->in, used);
        if (rc == -1) {
            smtp_client_fail_local(c, "4.5.0", "protocol error: malformed reply line");
            return -1;
        }
        if (rc == 1)
            return 1;
    }
}

/* smtp_client_cmd - append one command line. */
static void
smtp_client_cmd(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
smtp_client_cmd(struct smtp_client *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&c->out, fmt, ap);
    va_end(ap);
    buf_append(&c->out, "\r\n", 2);
}

/* smtp_client_xtext - RFC 3461 xtext: '+', '=' and anything outside ! .. ~ as +XX. */
void
smtp_client_xtext(struct buf *out, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch < '!' || ch > '~' || ch == '+' || ch == '=')
            buf_printf(out, "+%02X", ch);
        else
            buf_append(out, s, 1);
    }
}

/* smtp_client_hello - send EHLO (LHLO) and forget what the server offered. */
static void
smtp_client_hello(struct smtp_client *c)
{
    c->ext = 0;
    c->size_limit = 0;
    c->auth_mechs = 0;
    smtp_client_cmd(c, "%s %s", c->conf.lmtp ? "LHLO" : "EHLO", c->helo_name);
    c->state = ST_EHLO;
}

/* smtp_client_ready - the session is set up: the caller may start a message. */
static void
smtp_client_ready(struct smtp_client *c)
{
    c->state = ST_READY;
    c->pending = SMTP_CLIENT_EV_READY;
}

/* smtp_client_auth_b64 - append base64(data[0, len)) to the output (no line end). */
static void
smtp_client_auth_b64(struct smtp_client *c, const char *data, size_t len)
{
    char *enc = xmalloc(4 * ((len + 2) / 3) + 1);
    size_t n = base64_encode(data, len, enc);

    buf_append(&c->out, enc, n);
    explicit_bzero(enc, n);
    free(enc);
}

/* smtp_client_auth_start - after EHLO (and STARTTLS): AUTH if we have credentials and the
 * server takes PLAIN or LOGIN, else ready. */
static void
smtp_client_auth_start(struct smtp_client *c)
{
    struct smtp_client_reply r;
    size_t                   ul, pl;
    char                    *plain;

    if (c->auth_user == NULL || c->auth_state == 1) {
        smtp_client_ready(c);
        return;
    }
    if (!(c->ext & SMTP_EXT_AUTH)) {
        c->auth_state = -1;             /* Postfix too sends the mail without AUTH */
        smtp_client_ready(c);
        return;
    }
    ul = strlen(c->auth_user);
    pl = strlen(c->auth_pass);
    if (!c->tls || ul == 0 || ul > SMTP_AUTH_CRED_MAX || pl > SMTP_AUTH_CRED_MAX) {
        smtp_client_set(&r, SMTP_STAGE_AUTH, "4.7.0", !c->tls
                        ? "SASL authentication needs TLS: the password is not sent in "
                          "plaintext" : "SASL credentials of a bad length");
        smtp_client_quit(c);
        smtp_client_fail(c, &r);
        return;
    }
    c->state = ST_AUTH;
    if (!(c->auth_mechs & SMTP_AUTH_M_PLAIN)) {
        smtp_client_cmd(c, "AUTH LOGIN");
        c->auth_sent = 1;
        return;
    }
    /* RFC 4616: authzid (empty) NUL authcid NUL passwd, as the initial response */
    plain = xmalloc(ul + pl + 2);
    plain[0] = '\0';
    memcpy(plain + 1, c->auth_user, ul);
    plain[ul + 1] = '\0';
    memcpy(plain + ul + 2, c->auth_pass, pl);
    buf_puts(&c->out, "AUTH PLAIN ");
    smtp_client_auth_b64(c, plain, ul + pl + 2);
    buf_append(&c->out, "\r\n", 2);
    explicit_bzero(plain, ul + pl + 2);
    free(plain);
    c->auth_sent = 3;
}

/* smtp_client_auth_reply - the server's answer to AUTH or a LOGIN continuation. */
static void
smtp_client_auth_reply(struct smtp_client *c, struct smtp_client_reply *r)
{
    r->stage = SMTP_STAGE_AUTH;
    if (r->code == 235) {
        c->auth_state = 1;
        smtp_client_ready(c);
        return;
    }
    if (r->code == 334 && c->auth_sent < 3) {
        /* LOGIN: the challenges are "Username:" then "Password:", in that order */
        const char *v = c->auth_sent == 1 ? c->auth_user : c->auth_pass;

        smtp_client_auth_b64(c, v, strlen(v));
        buf_append(&c->out, "\r\n", 2);
        c->auth_sent++;
        return;
    }
    if (r->code / 100 == 5) {
        r->code -= 100;                  /* a password problem defers; it does not bounce */
        r->dsn[0] = '4';
    }
    if (r->code == 334)                  /* a challenge after the password: cancel */
        smtp_client_cmd(c, "*");
    else
        smtp_client_quit(c);
    smtp_client_fail(c, r);
}

/* smtp_client_session_up - EHLO/HELO done: STARTTLS per policy, or ready. */
static void
smtp_client_session_up(struct smtp_client *c)
{
    if (!c->tls && c->conf.tls != SMTP_CLIENT_TLS_NONE) {
        if (c->ext & SMTP_EXT_STARTTLS) {
            smtp_client_cmd(c, "STARTTLS");
            c->state = ST_STARTTLS;
            return;
        }
        if (c->conf.tls == SMTP_CLIENT_TLS_MUST) {
            struct smtp_client_reply r;

            smtp_client_set(&r, SMTP_STAGE_STARTTLS, "4.7.5",
                            "TLS is required, but was not offered by the server");
            smtp_client_quit(c);
            smtp_client_fail(c, &r);
            return;
        }
    }
    smtp_client_auth_start(c);
}

/* smtp_client_expect - queue an expected reply. */
static void
smtp_client_expect(struct smtp_client *c, enum smtp_client_stage stage, size_t idx)
{
    if (c->exp_tail == c->exp_cap) {
        c->exp_cap = c->exp_cap ? c->exp_cap * 2 : 16;
        c->exp = xrealloc(c->exp, c->exp_cap * sizeof(*c->exp));
    }
    c->exp[c->exp_tail].stage = stage;
    c->exp[c->exp_tail].idx = idx;
    c->exp_tail++;
}

/* smtp_client_send_mail - MAIL FROM with the parameters the server supports. */
static void
smtp_client_send_mail(struct smtp_client *c)
{
    const struct smtp_client_msg *m = c->msg;

    buf_printf(&c->out, "MAIL FROM:<%s>", m->sender ? m->sender : "");
    if (c->ext & SMTP_EXT_SIZE)
        buf_printf(&c->out, " SIZE=%llu", (unsigned long long)m->size);
    if ((m->flags & SMTP_MSG_8BITMIME) && (c->ext & SMTP_EXT_8BITMIME))
        buf_puts(&c->out, " BODY=8BITMIME");
    if ((m->flags & SMTP_MSG_SMTPUTF8) && (c->ext & SMTP_EXT_SMTPUTF8))
        buf_puts(&c->out, " SMTPUTF8");
    if (c->ext & SMTP_EXT_DSN) {
        if (m->ret == 1 || m->ret == 2)
            buf_puts(&c->out, m->ret == 1 ? " RET=FULL" : " RET=HDRS");
        if (m->envid && *m->envid) {
            buf_puts(&c->out, " ENVID=");
            smtp_client_xtext(&c->out, m->envid);
        }
    }
    buf_append(&c->out, "\r\n", 2);
    smtp_client_expect(c, SMTP_STAGE_MAIL, 0);
}

/* smtp_client_send_rcpt - RCPT TO for recipient i, with NOTIFY/ORCPT when the server has DSN. */
static void
smtp_client_send_rcpt(struct smtp_client *c, size_t i)
{
    const struct smtp_client_msg *m = c->msg;

    buf_printf(&c->out, "RCPT TO:<%s>", m->rcpts[i]);
    if (c->ext & SMTP_EXT_DSN) {
        uint32_t n = m->notify ? m->notify[i] : 0;

        if (n & SMTP_NOTIFY_NEVER) {
            buf_puts(&c->out, " NOTIFY=NEVER");
        } else if (n) {
            const char *sep = " NOTIFY=";

            if (n & SMTP_NOTIFY_SUCCESS) {
                buf_printf(&c->out, "%sSUCCESS", sep);
                sep = ",";
            }
            if (n & SMTP_NOTIFY_FAILURE) {
                buf_printf(&c->out, "%sFAILURE", sep);
                sep = ",";
            }
            if (n & SMTP_NOTIFY_DELAY)
                buf_printf(&c->out, "%sDELAY", sep);
        }
        if (m->orcpts && m->orcpts[i] && *m->orcpts[i]) {
            /* Stored as "addr-type;address" (smtpd keeps the type); a bare address is
             * rfc822. Only the address part is xtext-encoded. */
            const char *o = m->orcpts[i];
            size_t      t = strspn(o, "abcdefghijklmnopqrstuvwxyz"
                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");

            if (t > 0 && o[t] == ';') {
                buf_puts(&c->out, " ORCPT=");
                buf_append(&c->out, o, t + 1);
                o += t + 1;
            } else {
                buf_puts(&c->out, " ORCPT=rfc822;");
            }
            smtp_client_xtext(&c->out, o);
        }
    }
    buf_append(&c->out, "\r\n", 2);
    smtp_client_expect(c, SMTP_STAGE_RCPT, i);
}

/* smtp_client_send_txn - the transaction's commands: all at once with PIPELINING, else
 * MAIL alone (the others follow their predecessors' replies). */
static void
smtp_client_send_txn(struct smtp_client *c)
{
    c->state = ST_TXN;
    c->exp_head = c->exp_tail = 0;
    smtp_client_send_mail(c);
    if (c->ext & SMTP_EXT_PIPELINING) {
        for (size_t i = 0; i < c->msg->nrcpt; i++)
            smtp_client_send_rcpt(c, i);
        smtp_client_cmd(c, "DATA");
        smtp_client_expect(c, SMTP_STAGE_DATA, 0);
        c->next_rcpt = c->msg->nrcpt;
    } else {
        c->next_rcpt = 0;
    }
}

int
smtp_client_msg_start(struct smtp_client *c, const struct smtp_client_msg *m)
{
    if (c->state != ST_READY) {
        smtp_client_set(&c->err, SMTP_STAGE_MAIL, "4.3.0", "client not ready for a message");
        return -1;
    }
    if ((m->flags & SMTP_MSG_SMTPUTF8) && !(c->ext & SMTP_EXT_SMTPUTF8)) {
        smtp_client_set(&c->err, SMTP_STAGE_MAIL, "5.6.7",
                        "SMTPUTF8 is required, but was not offered by the server");
        return -1;
    }
    if ((c->ext & SMTP_EXT_SIZE) && c->size_limit > 0 && m->size > c->size_limit) {
        char text[128];

        snprintf(text, sizeof(text), "message size %llu exceeds the server's limit of %llu",
                 (unsigned long long)m->size, (unsigned long long)c->size_limit);
        smtp_client_set(&c->err, SMTP_STAGE_MAIL, "5.3.4", text);
        return -1;
    }
    free(c->res);
    c->msg = m;
    c->nres = m->nrcpt;
    c->res = xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof(*c->res));
    c->accepted = 0;
    c->mail_failed = 0;
    c->at_bol = 1;
    c->prev_cr = 0;
    if (c->txns++ > 0) {
        smtp_client_cmd(c, "RSET");
        c->state = ST_RSET;
        return 0;
    }
    smtp_client_send_txn(c);
    return 0;
}

/* smtp_client_txn_done - the transaction is over. */
static void
smtp_client_txn_done(struct smtp_client *c)
{
    c->state = ST_READY;
    c->pending = SMTP_CLIENT_EV_DONE;
}

/* smtp_client_txn_reply - a reply to MAIL, RCPT or DATA. */
static void
smtp_client_txn_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
    struct smtp_client_expect e = c->exp[c->exp_head++];
    int                       pipelined = (c->ext & SMTP_EXT_PIPELINING) != 0;

    switch (e.stage) {
    case SMTP_STAGE_MAIL:
        if (r->code / 100 != 2) {
            c->mail_failed = 1;
            c->mail_reply = *r;
            for (size_t i = 0; i < c->nres; i++)
                c->res[i] = *r;
            if (!pipelined)
                smtp_client_txn_done(c);
        } else if (!pipelined) {
            smtp_client_send_rcpt(c, c->next_rcpt++);
        }
        break;
    case SMTP_STAGE_RCPT:
        if (!c->mail_failed) {
            if (r->code / 100 == 2)
                c->accepted++;
            else
                c->res[e.idx] = *r;
        }
        if (!pipelined) {
            if (c->next_rcpt < c->msg->nrcpt) {
                smtp_client_send_rcpt(c, c->next_rcpt++);
            } else if (c->accepted == 0) {
                smtp_client_txn_done(c);
            } else {
                smtp_client_cmd(c, "DATA");
                smtp_client_expect(c, SMTP_STAGE_DATA, 0);
            }
        }
        break;
    case SMTP_STAGE_DATA:
        if (r->code == 354 && !c->mail_failed && c->accepted > 0) {
            c->state = ST_BODY;
            c->pending = SMTP_CLIENT_EV_DATA;
            return;
        }
        if (r->code == 354) {
            /* Pipelined DATA accepted although no recipient was (RFC 2920 3.1): end it. */
            smtp_client_cmd(c, ".");
            c->exp_head = c->exp_tail = 0;
            smtp_client_expect(c, SMTP_STAGE_DOT, (size_t)-1);
            c->state = ST_DOT;
            return;
        }
        if (!c->mail_failed)
            for (size_t i = 0; i < c->nres; i++)
                if (c->res[i].code == 0)
                    c->res[i] = *r;
        smtp_client_txn_done(c);
        return;
    default:
        break;
    }
}

/* smtp_client_dot_reply - a reply to end of data (one, or one per recipient in LMTP). */
static void
smtp_client_dot_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
    struct smtp_client_expect e = c->exp[c->exp_head++];

    if (e.idx == (size_t)-1) {
        /* The end of an empty pipelined DATA: results are already set. */
    } else if (c->conf.lmtp) {
        c->res[e.idx] = *r;
    } else {
        for (size_t i = 0; i < c->nres; i++)
            if (c->res[i].code == 0)
                c->res[i] = *r;
    }
    if (c->exp_head == c->exp_tail)
        smtp_client_txn_done(c);
}

/* smtp_client_reply - dispatch one complete reply (in c->r) to the current state. */
static void
smtp_client_reply(struct smtp_client *c)
{
    struct smtp_client_reply r = c->r;
    int                      cls = r.code / 100;

    switch (c->state) {
    case ST_GREETING:
        r.stage = SMTP_STAGE_GREETING;
        if (cls != 2) {
            smtp_client_quit(c);
            smtp_client_fail(c, &r);
            return;
        }
        smtp_client_hello(c);
        return;
    case ST_EHLO:
        r.stage = SMTP_STAGE_HELO;
        if (cls == 5 && !c->conf.lmtp && r.code != 554) {
            c->ext = 0;
            smtp_client_cmd(c, "HELO %s", c->helo_name);
            c->state = ST_HELO;
            return;
        }
        /* fall through */
    case ST_HELO:
        r.stage = SMTP_STAGE_HELO;
        if (cls != 2) {
            smtp_client_quit(c);
            smtp_client_fail(c, &r);
            return;
        }
        smtp_client_session_up(c);
        return;
    case ST_STARTTLS:
        r.stage = SMTP_STAGE_STARTTLS;
        if (r.code == 220) {
            /* Whatever else the server sent in plaintext must not survive TLS. */
            buf_reset(&c->in);
            c->skip_to_lf = 0;
            c->state = ST_TLS_WAIT;
            c->pending = SMTP_CLIENT_EV_TLS;
            return;
        }
        if (c->conf.tls == SMTP_CLIENT_TLS_MUST || r.code == 421) {
            snprintf(r.dsn, sizeof(r.dsn), "4.7.5");
            smtp_client_quit(c);
            smtp_client_fail(c, &r);
            return;
        }
        smtp_client_auth_start(c);      /* opportunistic: carry on in plaintext */
        return;
    case ST_AUTH:
        smtp_client_auth_reply(c, &r);
        return;
    case ST_RSET:
        r.stage = SMTP_STAGE_RSET;
        if (cls != 2) {
            smtp_client_quit(c);
            smtp_client_fail(c, &r);
            return;
        }
        smtp_client_send_txn(c);
        return;
    case ST_TXN:
    case ST_DOT:
        if (c->exp_head == c->exp_tail) {
            smtp_client_fail_local(c, "4.5.0", "protocol error: unexpected reply");
            return;
        }
        r.stage = c->exp[c->exp_head].stage;
        if (r.code == 421) {
            c->exp_head = c->exp_tail;
            smtp_client_quit(c);
            smtp_client_fail(c, &r);
            return;
        }
        if (c->state == ST_TXN)
            smtp_client_txn_reply(c, &r);
        else
            smtp_client_dot_reply(c, &r);
        return;
    case ST_QUIT:
        c->state = ST_DEAD;
        c->pending = SMTP_CLIENT_EV_CLOSED;
        return;
    case ST_READY:
        /* Unsolicited: typically 421 on an idle connection. */
        r.stage = SMTP_STAGE_RSET;
        smtp_client_fail(c, &r);
        return;
    default:
        return;
    }
}

enum smtp_client_event
smtp_client_step(struct smtp_client *c)
{
    enum smtp_client_event ev;

    while (c->pending == SMTP_CLIENT_EV_NONE) {
        int rc;

        if (c->state == ST_DEAD || c->state == ST_TLS_WAIT || c->state == ST_BODY)
            break;
        rc = smtp_client_next_reply(c);
        if (rc == 1) {
            smtp_client_reply(c);
            continue;
        }
        if (rc == 0 && c->eof) {
            if (c->state == ST_QUIT) {
                c->state = ST_DEAD;
                c->pending = SMTP_CLIENT_EV_CLOSED;
            } else {
                smtp_client_fail_local(c, "4.4.2", "lost connection");
            }
        }
        break;
    }
    ev = c->pending;
    c->pending = SMTP_CLIENT_EV_NONE;
    return ev;
}

int
smtp_client_feed(struct smtp_client *c, const void *p, size_t n)
{
    if (c->state == ST_DEAD || c->state == ST_TLS_WAIT)
        return c->state == ST_DEAD ? -1 : 0;
    buf_append(&c->in, p, n);
    return 0;
}

void
smtp_client_eof(struct smtp_client *c)
{
    c->eof = 1;
    if (c->state == ST_BODY || c->state == ST_TLS_WAIT)
        smtp_client_fail_local(c, "4.4.2", "lost connection");
}

void
smtp_client_tls_done(struct smtp_client *c)
{
    if (c->state != ST_TLS_WAIT)
        return;
    c->tls = 1;
    buf_reset(&c->in);
    smtp_client_hello(c);
}

void
smtp_client_body(struct smtp_client *c, const void *data, size_t n)
{
    const unsigned char *p = data;
    char                *o;
    size_t               k = 0;

    if (c->state != ST_BODY || n == 0)
        return;
    /* Each input byte gives at most 3 output bytes (a bare CR or LF: CRLF, plus one). */
    o = buf_reserve(&c->out, 3 * n + 4);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];

        if (c->prev_cr) {
            c->prev_cr = 0;
            o[k++] = '\r';
            o[k++] = '\n';
            c->at_bol = 1;
            if (ch == '\n')
                continue;
        }
        if (ch == '\r') {
            c->prev_cr = 1;
        } else if (ch == '\n') {
            o[k++] = '\r';
            o[k++] = '\n';
            c->at_bol = 1;
        } else {
            if (c->at_bol && ch == '.')
                o[k++] = '.';
            o[k++] = (char)ch;
            c->at_bol = 0;
        }
    }
    buf_commit(&c->out, k);
}

void
smtp_client_body_end(struct smtp_client *c)
{
    if (c->state != ST_BODY)
        return;
    if (c->prev_cr) {
        c->prev_cr = 0;
        c->at_bol = 1;
        buf_append(&c->out, "\r\n", 2);
    }
    if (!c->at_bol)
        buf_append(&c->out, "\r\n", 2);
    buf_append(&c->out, ".\r\n", 3);
    c->exp_head = c->exp_tail = 0;
    if (c->conf.lmtp) {
        for (size_t i = 0; i < c->nres; i++)
            if (c->res[i].code == 0)
                smtp_client_expect(c, SMTP_STAGE_DOT, i);
    } else {
        smtp_client_expect(c, SMTP_STAGE_DOT, 0);
    }
    c->state = ST_DOT;
}

void
smtp_client_quit(struct smtp_client *c)
{
    if (c->state == ST_DEAD || c->state == ST_QUIT || c->state == ST_TLS_WAIT
        || c->state == ST_BODY)
        return;
    smtp_client_cmd(c, "QUIT");
    c->state = ST_QUIT;
}

void
smtp_client_abort(struct smtp_client *c, const char *dsn, const char *text)
{
    if (c->state == ST_DEAD)
        return;
    if (c->state == ST_QUIT) {
        c->state = ST_DEAD;
        c->pending = SMTP_CLIENT_EV_CLOSED;
        return;
    }
    smtp_client_fail_local(c, dsn, text);
}
