/* smtp_client_test - the client state machine against scripted servers, golden transcripts.
 *
 * A scenario is the server's chunks (what it sends each time the client has written); the
 * runner feeds them, performs the obvious action for each event (start the next message,
 * send the body, finish TLS, quit) and writes a transcript of both sides and the events.
 * Every scenario runs twice, once with whole chunks and once split at every byte, and the
 * two transcripts must both equal the golden one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_client.h"
#include "test.h"

struct scenario {
    struct smtp_client_conf        conf;
    const char *const             *server;     /* chunks, NULL-terminated */
    const struct smtp_client_msg  *msgs;
    size_t                         nmsgs;
    const char                    *body;
    int                            eof_at_end;
};

/* transcript_lines - append "P: line\n" for each CRLF line of data. */
static void
transcript_lines(struct buf *t, char prefix, const char *data, size_t len)
{
    size_t start = 0;

    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            size_t end = i > start && data[i - 1] == '\r' ? i - 1 : i;

            buf_printf(t, "%c: %.*s\n", prefix, (int)(end - start), data + start);
            start = i + 1;
        }
    }
    if (start < len)
        buf_printf(t, "%c: %.*s\\\n", prefix, (int)(len - start), data + start);
}

static int tls_started;

static const char *const ev_names[] = {
    "NONE", "TLS", "READY", "DATA", "DONE", "ERROR", "CLOSED",
};

/* run_events - step the client and act on every event. */
static void
run_events(struct smtp_client *c, const struct scenario *sc, size_t *next_msg, struct buf *t)
{
    enum smtp_client_event ev;

    while ((ev = smtp_client_step(c)) != SMTP_CLIENT_EV_NONE) {
        const struct smtp_client_reply *e;

        buf_printf(t, "E: %s", ev_names[ev]);
        switch (ev) {
        case SMTP_CLIENT_EV_TLS:
            /* Like a real caller: the rest of this plaintext chunk never reaches TLS. */
            tls_started = 1;
            smtp_client_tls_done(c);
            break;
        case SMTP_CLIENT_EV_DONE:
            for (size_t i = 0; i < sc->msgs[*next_msg - 1].nrcpt; i++) {
                e = smtp_client_rcpt_result(c, i);
                buf_printf(t, " [%d %s %s]", e->code, e->dsn, e->text);
            }
            /* fall through */
        case SMTP_CLIENT_EV_READY:
            while (*next_msg < sc->nmsgs) {
                if (smtp_client_msg_start(c, &sc->msgs[(*next_msg)++]) == 0)
                    break;
                e = smtp_client_error(c);
                buf_printf(t, " refused(%s %s)", e->dsn, e->text);
            }
            if (smtp_client_output(c)->len == 0)
                smtp_client_quit(c);
            break;
        case SMTP_CLIENT_EV_DATA:
            smtp_client_body(c, sc->body, strlen(sc->body));
            smtp_client_body_end(c);
            break;
        case SMTP_CLIENT_EV_ERROR:
            e = smtp_client_error(c);
            buf_printf(t, " [%d %s %s] in %s", e->code, e->dsn, e->text,
                       smtp_client_stage_name(e->stage));
            if (*next_msg > 0)
                for (size_t i = 0; i < sc->msgs[*next_msg - 1].nrcpt; i++) {
                    e = smtp_client_rcpt_result(c, i);
                    buf_printf(t, " [%s]", e->dsn);
                }
            break;
        default:
            break;
        }
        buf_puts(t, "\n");
    }
}

/* run - play a scenario; bytewise feeds one octet at a time. Returns the transcript. */
static char *
run(const struct scenario *sc, int bytewise)
{
    struct smtp_client *c = smtp_client_new(&sc->conf);
    struct buf         *t = buf_new(1024);
    size_t              next_msg = 0;
    char               *out;

    for (size_t k = 0; sc->server[k]; k++) {
        const char *chunk = sc->server[k];
        size_t      len = strlen(chunk);
        struct buf *o;

        transcript_lines(t, 'S', chunk, len);
        tls_started = 0;
        if (bytewise) {
            for (size_t i = 0; i < len && !tls_started; i++) {
                smtp_client_feed(c, chunk + i, 1);
                run_events(c, sc, &next_msg, t);
            }
        } else {
            smtp_client_feed(c, chunk, len);
            run_events(c, sc, &next_msg, t);
        }
        o = smtp_client_output(c);
        transcript_lines(t, 'C', o->data, o->len);
        buf_consume(o, o->len);
    }
    if (sc->eof_at_end) {
        struct buf *o;

        buf_puts(t, "S: <EOF>\n");
        smtp_client_eof(c);
        run_events(c, sc, &next_msg, t);
        o = smtp_client_output(c);
        transcript_lines(t, 'C', o->data, o->len);
    }
    smtp_client_free(&c);
    out = xstrdup(buf_cstr(t));
    buf_free(&t);
    return out;
}

/* check_golden - both ways of feeding give the golden transcript. */
static void
check_golden(const struct scenario *sc, const char *golden)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        char *got = run(sc, bytewise);

        if (strcmp(got, golden) != 0) {
            fprintf(stderr, "  transcript (bytewise=%d) differs.\n--- got\n%s--- want\n%s",
                    bytewise, got, golden);
            CHECK(0);
        }
        free(got);
    }
}

static const char *const two_rcpts[] = { "a@b.test", "c@b.test" };
static const char *const two_orcpts[] = { "a@orig.test", "utf-8;b+@orig.test" };
static const uint32_t    two_notify[] = { SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE,
                                          SMTP_NOTIFY_NEVER };

/* test_smtp_client_pipelined - MAIL+RCPTs+DATA in one write, parameters, one rejection,
 * dot-stuffing and bare LF/CR normalised. */
static void
test_smtp_client_pipelined(void)
{
    static const char *const server[] = {
        "220 mx.b.test ESMTP\r\n",
        "250-mx.b.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n"
        "250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n",
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550-5.1.1 <c@b.test>: no such user\r\n"
        "550 5.1.1 try again never\r\n354 go ahead\r\n",
        "250 2.0.0 Ok: queued as X\r\n",
        "221 2.0.0 Bye\r\n",
        NULL,
    };
    static const struct smtp_client_msg msg = {
        .sender = "s@a.test", .size = 42, .flags = SMTP_MSG_8BITMIME, .envid = "id+1",
        .ret = 2, .rcpts = two_rcpts, .orcpts = two_orcpts, .notify = two_notify, .nrcpt = 2,
    };
    struct scenario sc = {
        .conf = { .helo_name = "client.test" }, .server = server, .msgs = &msg, .nmsgs = 1,
        .body = "Subject: x\r\n\r\n.dot\r\nbare\nlf\rcr\r\n..two\r\nlast",
    };

    check_golden(&sc,
        "S: 220 mx.b.test ESMTP\n"
        "C: EHLO client.test\n"
        "S: 250-mx.b.test\nS: 250-PIPELINING\nS: 250-SIZE 1000000\nS: 250-8BITMIME\n"
        "S: 250-DSN\nS: 250 ENHANCEDSTATUSCODES\n"
        "E: READY\n"
        "C: MAIL FROM:<s@a.test> SIZE=42 BODY=8BITMIME RET=HDRS ENVID=id+2B1\n"
        "C: RCPT TO:<a@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@orig.test\n"
        "C: RCPT TO:<c@b.test> NOTIFY=NEVER ORCPT=utf-8;b+2B@orig.test\n"
        "C: DATA\n"
        "S: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\nS: 550-5.1.1 <c@b.test>: no such user\n"
        "S: 550 5.1.1 try again never\nS: 354 go ahead\n"
        "E: DATA\n"
        "C: Subject: x\nC: \nC: ..dot\nC: bare\nC: lf\nC: cr\nC: ...two\nC: last\nC: .\n"
        "S: 250 2.0.0 Ok: queued as X\n"
        "E: DONE [250 2.0.0 250 2.0.0 Ok: queued as X] "
        "[550 5.1.1 550 5.1.1 <c@b.test>: no such user try again never]\n"
        "C: QUIT\n"
        "S: 221 2.0.0 Bye\n"
        "E: CLOSED\n");
}

/* test_smtp_client_sequential - without PIPELINING each command waits for its reply; no
 * DSN parameters without DSN; a 4xx recipient; no enhanced code in the reply. */
static void
test_smtp_client_sequential(void)
{
    static const char *const server[] = {
        "220 mx ESMTP\r\n", "250-mx\r\n250 SIZE\r\n", "250 ok\r\n", "450 busy\r\n",
        "250 ok\r\n", "354 go\r\n", "250 done\r\n", "221 bye\r\n", NULL,
    };
    static const struct smtp_client_msg msg = {
        .sender = "", .size = 5, .ret = 1, .envid = "x", .rcpts = two_rcpts,
        .orcpts = two_orcpts, .notify = two_notify, .nrcpt = 2,
    };
    struct scenario sc = {
        .conf = { .helo_name = "c" }, .server = server, .msgs = &msg, .nmsgs = 1,
        .body = "hi\r\n",
    };

    check_golden(&sc,
        "S: 220 mx ESMTP\nC: EHLO c\nS: 250-mx\nS: 250 SIZE\nE: READY\n"
        "C: MAIL FROM:<> SIZE=5\nS: 250 ok\nC: RCPT TO:<a@b.test>\nS: 450 busy\n"
        "C: RCPT TO:<c@b.test>\nS: 250 ok\nC: DATA\nS: 354 go\nE: DATA\nC: hi\nC: .\n"
        "S: 250 done\nE: DONE [450 4.0.0 450 busy] [250 2.0.0 250 done]\nC: QUIT\n"
        "S: 221 bye\nE: CLOSED\n");
}

/* test_smtp_client_helo_fallback - EHLO 502 -> HELO; no recipient accepted -> no DATA. */
static void
test_smtp_client_helo_fallback(void)
{
    static const char *const server[] = {
        "220-mx first\r\n220 mx second\r\n", "502 5.5.2 what\r\n", "250 mx\r\n",
        "250 ok\r\n", "550 no\r\n", "550 no\r\n", "221 bye\r\n", NULL,
    };
    static const struct smtp_client_msg msg = {
        .sender = "s@a", .size = 5, .rcpts = two_rcpts, .nrcpt = 2,
    };
    struct scenario sc = {
        .conf = { .helo_name = "c", .tls = SMTP_CLIENT_TLS_MAY }, .server = server,
        .msgs = &msg, .nmsgs = 1, .body = "",
    };

    check_golden(&sc,
        "S: 220-mx first\nS: 220 mx second\nC: EHLO c\nS: 502 5.5.2 what\nC: HELO c\n"
        "S: 250 mx\nE: READY\nC: MAIL FROM:<s@a>\nS: 250 ok\nC: RCPT TO:<a@b.test>\n"
        "S: 550 no\nC: RCPT TO:<c@b.test>\nS: 550 no\n"
        "E: DONE [550 5.0.0 550 no] [550 5.0.0 550 no]\nC: QUIT\nS: 221 bye\nE: CLOSED\n");
}

/* test_smtp_client_starttls - 220 to STARTTLS: plaintext sent after it is discarded, then
 * EHLO again over TLS. */
static void
test_smtp_client_starttls(void)
{
    static const char *const server[] = {
        "220 mx\r\n", "250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n",
        "220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 STARTTLS\r\n",
        "250-mx\r\n250 SMTPUTF8\r\n", "221 bye\r\n", NULL,
    };
    static const struct smtp_client_msg msg = {
        .sender = "s@a", .flags = SMTP_MSG_SMTPUTF8, .rcpts = two_rcpts, .nrcpt = 1,
    };
    struct scenario sc = {
        .conf = { .helo_name = "c", .tls = SMTP_CLIENT_TLS_MAY }, .server = server,
        .msgs = &msg, .nmsgs = 0, .body = "",
    };

    check_golden(&sc,
        "S: 220 mx\nC: EHLO c\nS: 250-mx\nS: 250-STARTTLS\nS: 250 PIPELINING\n"
        "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\nS: 250-injected\nS: 250 STARTTLS\n"
        "E: TLS\nC: EHLO c\nS: 250-mx\nS: 250 SMTPUTF8\nE: READY\nC: QUIT\nS: 221 bye\n"
        "E: CLOSED\n");
}

/* test_smtp_client_tls_required - MUST and no STARTTLS offered: 4.7.5, QUIT, nothing sent. */
static void
test_smtp_client_tls_required(void)
{
    static const char *const server[] = { "220 mx\r\n", "250 mx\r\n", NULL };
    static const struct smtp_client_msg msg = { .sender = "s", .rcpts = two_rcpts, .nrcpt = 1 };
    struct scenario sc = {
        .conf = { .helo_name = "c", .tls = SMTP_CLIENT_TLS_MUST }, .server = server,
        .msgs = &msg, .nmsgs = 1, .body = "",
    };

    check_golden(&sc,
        "S: 220 mx\nC: EHLO c\nS: 250 mx\nE: ERROR [0 4.7.5 TLS is required, but was not "
        "offered by the server] in STARTTLS\nC: QUIT\n");
}

/* AUTH scenarios share the TLS start: EHLO, STARTTLS, EHLO again over TLS. */
#define AUTH_TLS_START "220 mx\r\n", "250-mx\r\n250 STARTTLS\r\n", "220 go\r\n"
#define AUTH_TLS_GOLDEN "S: 220 mx\nC: EHLO c\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\n" \
                        "S: 220 go\nE: TLS\nC: EHLO c\n"

/* test_smtp_client_auth_plain - PLAIN with the initial response, inside TLS, then mail. */
static void
test_smtp_client_auth_plain(void)
{
    static const char *const server[] = {
        AUTH_TLS_START, "250-mx\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING\r\n",
        "235 2.7.0 ok\r\n", "250 ok\r\n250 ok\r\n354 go\r\n", "250 queued\r\n", "221 bye\r\n",
        NULL,
    };
    static const struct smtp_client_msg msg = { .sender = "s@a", .rcpts = two_rcpts,
                                                .nrcpt = 1 };
    struct scenario sc = {
        .conf = { .helo_name = "c", .tls = SMTP_CLIENT_TLS_MUST, .auth_user = "u@x",
                  .auth_pass = "p w" },
        .server = server, .msgs = &msg, .nmsgs = 1, .body = "hi\r\n",
    };

    check_golden(&sc,
        AUTH_TLS_GOLDEN "S: 250-mx\nS: 250-AUTH LOGIN PLAIN\nS: 250 PIPELINING\n"
        "C: AUTH PLAIN AHVAeABwIHc=\nS: 235 2.7.0 ok\nE: READY\nC: MAIL FROM:<s@a>\n"
        "C: RCPT TO:<a@b.test>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go\nE: DATA\nC: hi\n"
        "C: .\nS: 250 queued\nE: DONE [250 2.0.0 250 queued]\nC: QUIT\nS: 221 bye\n"
        "E: CLOSED\n");
}

/* test_smtp_client_auth_login - LOGIN when PLAIN is not offered (old AUTH= form). */
static void
test_smtp_client_auth_login(void)
{
    static const char *const server[] = {
        AUTH_TLS_START, "250-mx\r\n250 AUTH=LOGIN\r\n", "334 VXNlcm5hbWU6\r\n",
        "334 UGFzc3dvcmQ6\r\n", "235 ok\r\n", "221 bye\r\n", NULL,
    };
    struct scenario sc = {
        .conf = { .helo_name = "c", .tls = SMTP_CLIENT_TLS_MAY, .auth_user = "u@x",
                  .auth_pass = "p w" },
        .server = server, .nmsgs = 0, .body = "",
    };

    check_golden(&sc,
        AUTH_TLS_GOLDEN "S: 250-mx\nS: 250 AUTH=LOGIN\nC: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\n"
        "C: dUB4\nS: 334 UGFzc3dvcmQ6\nC: cCB3\nS: 235 ok\nE: READY\nC: QUIT\n"
        "S: 221 bye\nE: CLOSED\n");
}

/* test_smtp_client_auth_refused - 535: the session fails in AUTH, deferred (4.7.8). */
static void
test_smtp_client_auth_refused(void)
{
    static const char *const server[] = {
        AUTH_TLS_START, "250-mx\r\n250 AUTH PLAIN\r\n", "535 5.7.8 bad credentials\r\n",
        NULL,
    };
    static const struct smtp_client_msg msg = { .sender = "s", .rcpts = two_rcpts,
                                                .nrcpt = 1 };
    struct scenario sc = {
        .conf = { .helo_name = "c", .tls = SMTP_CLIENT_TLS_MUST, .auth_user = "u@x",
                  .auth_pass = "p w" },
        .server = server, .msgs = &msg, .nmsgs = 1, .body = "",
    };

    check_golden(&sc,
        AUTH_TLS_GOLDEN "S: 250-mx\nS: 250 AUTH PLAIN\nC: AUTH PLAIN AHVAeABwIHc=\n"
        "S: 535 5.7.8 bad credentials\nE: ERROR [435 4.7.8 535 5.7.8 bad credentials] in "
        "AUTH\nC: QUIT\n");
}

/* test_smtp_client_auth_needs_tls - offered AUTH but no TLS: nothing sent, 4.7.0; a server
 * without AUTH gets the mail without it. */
static void
test_smtp_client_auth_needs_tls(void)
{
    static const char *const plain_server[] = { "220 mx\r\n", "250-mx\r\n250 AUTH PLAIN\r\n",
                                                NULL };
    static const char *const noauth_server[] = { "220 mx\r\n", "250 mx\r\n", "221 bye\r\n",
                                                 NULL };
    struct scenario sc = {
        .conf = { .helo_name = "c", .tls = SMTP_CLIENT_TLS_MAY, .auth_user = "u@x",
                  .auth_pass = "p w" },
        .server = plain_server, .nmsgs = 0, .body = "",
    };
    struct smtp_client *c;

    check_golden(&sc,
        "S: 220 mx\nC: EHLO c\nS: 250-mx\nS: 250 AUTH PLAIN\nE: ERROR [0 4.7.0 SASL "
        "authentication needs TLS: the password is not sent in plaintext] in AUTH\n"
        "C: QUIT\n");
    sc.server = noauth_server;
    check_golden(&sc,
        "S: 220 mx\nC: EHLO c\nS: 250 mx\nE: READY\nC: QUIT\nS: 221 bye\nE: CLOSED\n");
    c = smtp_client_new(&sc.conf);
    smtp_client_feed(c, "220 mx\r\n250 mx\r\n", 16);
    CHECK(smtp_client_step(c) == SMTP_CLIENT_EV_READY);
    CHECK(smtp_client_auth_state(c) == -1);
    smtp_client_free(&c);
}

/* test_smtp_client_local_refusals - SMTPUTF8 not offered (5.6.7), too big for SIZE (5.3.4);
 * the session stays usable for the next message; RSET before the second transaction. */
static void
test_smtp_client_local_refusals(void)
{
    static const char *const server[] = {
        "220 mx\r\n", "250-mx\r\n250-SIZE 100\r\n250 PIPELINING\r\n",
        "250 ok\r\n250 ok\r\n354 go\r\n", "250 one\r\n", "250 reset\r\n",
        "250 ok\r\n250 ok\r\n354 go\r\n", "250 two\r\n", "221 bye\r\n", NULL,
    };
    static const struct smtp_client_msg msgs[] = {
        { .sender = "s", .size = 10, .flags = SMTP_MSG_SMTPUTF8, .rcpts = two_rcpts,
          .nrcpt = 1 },
        { .sender = "s", .size = 101, .rcpts = two_rcpts, .nrcpt = 1 },
        { .sender = "s", .size = 10, .rcpts = two_rcpts, .nrcpt = 1 },
        { .sender = "t", .size = 10, .rcpts = two_rcpts + 1, .nrcpt = 1 },
    };
    struct scenario sc = {
        .conf = { .helo_name = "c" }, .server = server, .msgs = msgs, .nmsgs = 4,
        .body = "x\r\n",
    };

    check_golden(&sc,
        "S: 220 mx\nC: EHLO c\nS: 250-mx\nS: 250-SIZE 100\nS: 250 PIPELINING\n"
        "E: READY refused(5.6.7 SMTPUTF8 is required, but was not offered by the server) "
        "refused(5.3.4 message size 101 exceeds the server's limit of 100)\n"
        "C: MAIL FROM:<s> SIZE=10\nC: RCPT TO:<a@b.test>\nC: DATA\n"
        "S: 250 ok\nS: 250 ok\nS: 354 go\nE: DATA\nC: x\nC: .\nS: 250 one\n"
        "E: DONE [250 2.0.0 250 one]\nC: RSET\nS: 250 reset\n"
        "C: MAIL FROM:<t> SIZE=10\nC: RCPT TO:<c@b.test>\nC: DATA\n"
        "S: 250 ok\nS: 250 ok\nS: 354 go\nE: DATA\nC: x\nC: .\nS: 250 two\n"
        "E: DONE [250 2.0.0 250 two]\nC: QUIT\nS: 221 bye\nE: CLOSED\n");
}

/* test_smtp_client_lmtp - LHLO; one reply per accepted recipient after the dot. */
static void
test_smtp_client_lmtp(void)
{
    static const char *const rcpts[] = { "a@x", "b@x", "c@x" };
    static const char *const server[] = {
        "220 lmtp\r\n", "250-lmtp\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n",
        "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 unknown\r\n250 2.1.5 ok\r\n354 go\r\n",
        "250 2.0.0 a saved\r\n452 4.2.2 c over quota\r\n", "221 bye\r\n", NULL,
    };
    static const struct smtp_client_msg msg = { .sender = "s", .rcpts = rcpts, .nrcpt = 3 };
    struct scenario sc = {
        .conf = { .helo_name = "c", .lmtp = 1 }, .server = server, .msgs = &msg,
        .nmsgs = 1, .body = "x\r\n",
    };

    check_golden(&sc,
        "S: 220 lmtp\nC: LHLO c\nS: 250-lmtp\nS: 250-PIPELINING\nS: 250 ENHANCEDSTATUSCODES\n"
        "E: READY\nC: MAIL FROM:<s>\nC: RCPT TO:<a@x>\nC: RCPT TO:<b@x>\nC: RCPT TO:<c@x>\n"
        "C: DATA\nS: 250 2.1.0 ok\nS: 250 2.1.5 ok\nS: 550 5.1.1 unknown\nS: 250 2.1.5 ok\n"
        "S: 354 go\nE: DATA\nC: x\nC: .\nS: 250 2.0.0 a saved\nS: 452 4.2.2 c over quota\n"
        "E: DONE [250 2.0.0 250 2.0.0 a saved] [550 5.1.1 550 5.1.1 unknown] "
        "[452 4.2.2 452 4.2.2 c over quota]\nC: QUIT\nS: 221 bye\nE: CLOSED\n");
}

/* test_smtp_client_pipelined_none_accepted - DATA 354 though every RCPT failed: "." alone. */
static void
test_smtp_client_pipelined_none_accepted(void)
{
    static const char *const server[] = {
        "220 mx\r\n", "250-mx\r\n250 PIPELINING\r\n",
        "250 ok\r\n550 no\r\n354 go\r\n", "554 no valid recipients\r\n", "221 bye\r\n", NULL,
    };
    static const struct smtp_client_msg msg = { .sender = "s", .rcpts = two_rcpts, .nrcpt = 1 };
    struct scenario sc = {
        .conf = { .helo_name = "c" }, .server = server, .msgs = &msg, .nmsgs = 1, .body = "x",
    };

    check_golden(&sc,
        "S: 220 mx\nC: EHLO c\nS: 250-mx\nS: 250 PIPELINING\nE: READY\nC: MAIL FROM:<s>\n"
        "C: RCPT TO:<a@b.test>\nC: DATA\nS: 250 ok\nS: 550 no\nS: 354 go\nC: .\n"
        "S: 554 no valid recipients\nE: DONE [550 5.0.0 550 no]\nC: QUIT\nS: 221 bye\n"
        "E: CLOSED\n");
}

/* test_smtp_client_mail_rejected - a pipelined MAIL failure is every recipient's result. */
static void
test_smtp_client_mail_rejected(void)
{
    static const char *const server[] = {
        "220 mx\r\n", "250-mx\r\n250 PIPELINING\r\n",
        "553 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n"
        "503 5.5.1 no valid recipients\r\n", "221 bye\r\n", NULL,
    };
    static const struct smtp_client_msg msg = { .sender = "s", .rcpts = two_rcpts, .nrcpt = 2 };
    struct scenario sc = {
        .conf = { .helo_name = "c" }, .server = server, .msgs = &msg, .nmsgs = 1, .body = "x",
    };

    check_golden(&sc,
        "S: 220 mx\nC: EHLO c\nS: 250-mx\nS: 250 PIPELINING\nE: READY\nC: MAIL FROM:<s>\n"
        "C: RCPT TO:<a@b.test>\nC: RCPT TO:<c@b.test>\nC: DATA\nS: 553 5.7.1 sender refused\n"
        "S: 503 5.5.1 need MAIL\nS: 503 5.5.1 need MAIL\nS: 503 5.5.1 no valid recipients\n"
        "E: DONE [553 5.7.1 553 5.7.1 sender refused] [553 5.7.1 553 5.7.1 sender refused]\n"
        "C: QUIT\nS: 221 bye\nE: CLOSED\n");
}

/* test_smtp_client_greeting_4xx - a 4xx greeting fails the session at the greeting stage. */
static void
test_smtp_client_greeting_4xx(void)
{
    static const char *const server[] = { "421 4.3.2 busy, go away\r\n", NULL };
    struct scenario sc = { .conf = { .helo_name = "c" }, .server = server, .body = "" };

    check_golden(&sc,
        "S: 421 4.3.2 busy, go away\nE: ERROR [421 4.3.2 421 4.3.2 busy, go away] in the "
        "initial greeting\nC: QUIT\n");
}

/* test_smtp_client_lost_connection - EOF mid-transaction: 4.4.2 for the open recipients. */
static void
test_smtp_client_lost_connection(void)
{
    static const char *const server[] = {
        "220 mx\r\n", "250-mx\r\n250 PIPELINING\r\n", "250 ok\r\n550 no\r\n", NULL,
    };
    static const struct smtp_client_msg msg = { .sender = "s", .rcpts = two_rcpts, .nrcpt = 2 };
    struct scenario sc = {
        .conf = { .helo_name = "c" }, .server = server, .msgs = &msg, .nmsgs = 1, .body = "x",
        .eof_at_end = 1,
    };

    check_golden(&sc,
        "S: 220 mx\nC: EHLO c\nS: 250-mx\nS: 250 PIPELINING\nE: READY\nC: MAIL FROM:<s>\n"
        "C: RCPT TO:<a@b.test>\nC: RCPT TO:<c@b.test>\nC: DATA\nS: 250 ok\nS: 550 no\n"
        "S: <EOF>\nE: ERROR [0 4.4.2 lost connection] in RCPT TO [5.0.0] [4.4.2]\n");
}

/* test_smtp_client_bad_lines - an overlong line is cut; a non-reply line ends the session. */
static void
test_smtp_client_bad_lines(void)
{
    struct smtp_client_conf conf = { .helo_name = "c" };
    struct smtp_client     *c = smtp_client_new(&conf);
    char                    big[5000];
    const struct smtp_client_reply *e;

    memset(big, 'x', sizeof(big));
    memcpy(big, "220 ", 4);
    smtp_client_feed(c, big, sizeof(big));
    CHECK(smtp_client_step(c) == SMTP_CLIENT_EV_NONE);
    smtp_client_feed(c, "yyy\r\n", 5);
    CHECK(smtp_client_step(c) == SMTP_CLIENT_EV_NONE);      /* greeted: EHLO sent */
    CHECK(strncmp(smtp_client_output(c)->data, "EHLO c\r\n", 8) == 0);
    smtp_client_feed(c, "hello there\r\n", 13);
    CHECK(smtp_client_step(c) == SMTP_CLIENT_EV_ERROR);
    e = smtp_client_error(c);
    CHECK_STR(e->dsn, "4.5.0");
    CHECK(smtp_client_feed(c, "250 ok\r\n", 8) == -1);
    smtp_client_free(&c);
}

/* test_smtp_client_body_normalise - a body split anywhere gives the same stuffed output. */
static void
test_smtp_client_body_normalise(void)
{
    static const char body[] = ".a\r\n..b\n.\r\rc\r\n\r\n.\r\n";
    static const char want[] = "..a\r\n...b\r\n..\r\n\r\nc\r\n\r\n..\r\n.\r\n";
    size_t            n = sizeof(body) - 1;

    for (size_t split = 0; split <= n; split++) {
        struct smtp_client_conf conf = { .helo_name = "c" };
        struct smtp_client     *c = smtp_client_new(&conf);
        struct smtp_client_msg  m = { .sender = "s", .rcpts = two_rcpts, .nrcpt = 1 };
        struct buf             *o;

        smtp_client_feed(c, "220 x\r\n250-x\r\n250 PIPELINING\r\n", 30);
        CHECK(smtp_client_step(c) == SMTP_CLIENT_EV_READY);
        CHECK(smtp_client_msg_start(c, &m) == 0);
        smtp_client_feed(c, "250 a\r\n250 b\r\n354 c\r\n", 21);
        CHECK(smtp_client_step(c) == SMTP_CLIENT_EV_DATA);
        o = smtp_client_output(c);
        buf_reset(o);
        smtp_client_body(c, body, split);
        smtp_client_body(c, body + split, n - split);
        smtp_client_body_end(c);
        CHECK(o->len == sizeof(want) - 1 && memcmp(o->data, want, o->len) == 0);
        smtp_client_free(&c);
    }
}

/* test_smtp_client_xtext - '+', '=', space and non-ASCII become +XX. */
static void
test_smtp_client_xtext(void)
{
    struct buf *b = buf_new(64);

    smtp_client_xtext(b, "a+b=c d\xc3\xa9");
    CHECK_STR(buf_cstr(b), "a+2Bb+3Dc+20d+C3+A9");
    buf_free(&b);
}

int
main(void)
{
    TEST_RUN(test_smtp_client_pipelined);
    TEST_RUN(test_smtp_client_sequential);
    TEST_RUN(test_smtp_client_helo_fallback);
    TEST_RUN(test_smtp_client_starttls);
    TEST_RUN(test_smtp_client_tls_required);
    TEST_RUN(test_smtp_client_auth_plain);
    TEST_RUN(test_smtp_client_auth_login);
    TEST_RUN(test_smtp_client_auth_refused);
    TEST_RUN(test_smtp_client_auth_needs_tls);
    TEST_RUN(test_smtp_client_local_refusals);
    TEST_RUN(test_smtp_client_lmtp);
    TEST_RUN(test_smtp_client_pipelined_none_accepted);
    TEST_RUN(test_smtp_client_mail_rejected);
    TEST_RUN(test_smtp_client_greeting_4xx);
    TEST_RUN(test_smtp_client_lost_connection);
    TEST_RUN(test_smtp_client_bad_lines);
    TEST_RUN(test_smtp_client_body_normalise);
    TEST_RUN(test_smtp_client_xtext);
    TEST_END();
}
