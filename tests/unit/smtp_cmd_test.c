/* smtp_cmd_test - command-line splitting (512-octet limit, bare LF, discarding) and command
 * parsing (verbs, arguments, MAIL FROM:/RCPT TO:, forbidden octets). */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp_cmd.h"
#include "test.h"

struct cmd_case {
    const char           *line;
    enum smtp_cmd_status  status;
    enum smtp_verb        verb;
    const char           *arg;
};

static const struct cmd_case cmd_cases[] = {
    { "EHLO client.example", SMTP_CMD_OK, SMTP_VERB_EHLO, "client.example" },
    { "ehlo client.example", SMTP_CMD_OK, SMTP_VERB_EHLO, "client.example" },
    { "HeLo x", SMTP_CMD_OK, SMTP_VERB_HELO, "x" },
    { "EHLO", SMTP_CMD_OK, SMTP_VERB_EHLO, "" },
    { "QUIT", SMTP_CMD_OK, SMTP_VERB_QUIT, "" },
    { "QUIT   ", SMTP_CMD_OK, SMTP_VERB_QUIT, "" },
    { "NOOP hello there", SMTP_CMD_OK, SMTP_VERB_NOOP, "hello there" },
    { "MAIL FROM:<a@b.example>", SMTP_CMD_OK, SMTP_VERB_MAIL, "<a@b.example>" },
    { "mail from:<a@b.example> SIZE=10", SMTP_CMD_OK, SMTP_VERB_MAIL, "<a@b.example> SIZE=10" },
    { "MAIL FROM: <a@b.example>", SMTP_CMD_OK, SMTP_VERB_MAIL, "<a@b.example>" },
    { "MAIL FROM:<>", SMTP_CMD_OK, SMTP_VERB_MAIL, "<>" },
    { "MAIL TO:<a@b>", SMTP_CMD_SYNTAX, SMTP_VERB_MAIL, "" },
    { "MAIL", SMTP_CMD_SYNTAX, SMTP_VERB_MAIL, "" },
    { "MAIL  FROM:<a@b>", SMTP_CMD_SYNTAX, SMTP_VERB_MAIL, "" },
    { "MAILFROM:<a@b>", SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "" },
    { "RCPT TO:<a@b.example>", SMTP_CMD_OK, SMTP_VERB_RCPT, "<a@b.example>" },
    { "Rcpt To:<a@b.example> NOTIFY=NEVER", SMTP_CMD_OK, SMTP_VERB_RCPT,
      "<a@b.example> NOTIFY=NEVER" },
    { "RCPT FROM:<a@b>", SMTP_CMD_SYNTAX, SMTP_VERB_RCPT, "" },
    { "DATA", SMTP_CMD_OK, SMTP_VERB_DATA, "" },
    { "data", SMTP_CMD_OK, SMTP_VERB_DATA, "" },
    { "DATAX", SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "" },
    { "RSET", SMTP_CMD_OK, SMTP_VERB_RSET, "" },
    { "VRFY bob", SMTP_CMD_OK, SMTP_VERB_VRFY, "bob" },
    { "HELP", SMTP_CMD_OK, SMTP_VERB_HELP, "" },
    { "STARTTLS", SMTP_CMD_OK, SMTP_VERB_STARTTLS, "" },
    { "BDAT 10 LAST", SMTP_CMD_OK, SMTP_VERB_BDAT, "10 LAST" },
    { "FOO bar", SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "bar" },
    { "", SMTP_CMD_EMPTY, SMTP_VERB_UNKNOWN, "" },
    { "GET / HTTP/1.0", SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "/ HTTP/1.0" },
};

/* test_smtp_cmd_parse - the golden table. */
static void
test_smtp_cmd_parse(void)
{
    size_t i;

    for (i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
        const struct cmd_case *c = &cmd_cases[i];
        struct smtp_cmd cmd;
        enum smtp_cmd_status st = smtp_cmd_parse(c->line, strlen(c->line), &cmd);
        int ok = st == c->status;
        if (ok && st == SMTP_CMD_OK)
            ok = cmd.verb == c->verb && cmd.arglen == strlen(c->arg)
                 && memcmp(cmd.arg, c->arg, cmd.arglen) == 0;
        if (!ok)
            fprintf(stderr, "  case %zu \"%s\": status %d verb %d\n", i, c->line, st, cmd.verb);
        CHECK(ok);
    }
}

/* test_smtp_cmd_bad_octets - NUL, CR and LF inside a line are refused. */
static void
test_smtp_cmd_bad_octets(void)
{
    struct smtp_cmd cmd;

    CHECK(smtp_cmd_parse("NOOP a\0b", 8, &cmd) == SMTP_CMD_BAD_CHAR);
    CHECK(smtp_cmd_parse("NOOP a\rb", 8, &cmd) == SMTP_CMD_BAD_CHAR);
    CHECK(smtp_cmd_parse("NOOP a\nb", 8, &cmd) == SMTP_CMD_BAD_CHAR);
    CHECK(smtp_cmd_parse("\0", 1, &cmd) == SMTP_CMD_BAD_CHAR);
    CHECK(smtp_cmd_parse("RSET\r", 5, &cmd) == SMTP_CMD_BAD_CHAR);
}

/* test_smtp_cmd_names - names for logs. */
static void
test_smtp_cmd_names(void)
{
    CHECK_STR(smtp_cmd_name(SMTP_VERB_EHLO), "ehlo");
    CHECK_STR(smtp_cmd_name(SMTP_VERB_UNKNOWN), "unknown");
    CHECK_STR(smtp_cmd_name((enum smtp_verb)999), "unknown");
}

/* split_all - run the splitter over a buffer fed in chunks of chunk octets, writing one
 * character per event into ev: L line (its text appended to lines), T too long, B bare LF. */
static void
split_all(const char *in, size_t len, size_t chunk, struct buf *ev, struct buf *lines)
{
    struct smtp_line l;
    struct buf       pending;
    size_t           fed = 0, skip, linelen, consumed;
    enum smtp_line_status st;

    smtp_cmd_line_init(&l);
    buf_init(&pending, 64);
    buf_reset(ev);
    buf_reset(lines);
    while (fed < len || pending.len > 0) {
        size_t n = len - fed < chunk ? len - fed : chunk;
        buf_append(&pending, in + fed, n);
        fed += n;
        for (;;) {
            st = smtp_cmd_getline(&l, pending.data, pending.len, &skip, &linelen, &consumed);
            if (st == SMTP_LINE_OK) {
                buf_puts(ev, "L");
                buf_append(lines, pending.data + skip, linelen);
                buf_puts(lines, "|");
            } else if (st == SMTP_LINE_TOO_LONG) {
                buf_puts(ev, "T");
            } else if (st == SMTP_LINE_BARE_LF) {
                buf_puts(ev, "B");
            }
            buf_consume(&pending, consumed);
            if (st == SMTP_LINE_MORE)
                break;
        }
        if (fed == len)
            break;
    }
    buf_release(&pending);
}

/* test_smtp_cmd_getline - limits and discarding, for every chunk size. */
static void
test_smtp_cmd_getline(void)
{
    struct buf in, ev, lines;
    size_t     chunk;

    buf_init(&in, 2048);
    buf_init(&ev, 64);
    buf_init(&lines, 64);
    buf_puts(&in, "NOOP\r\n");
    for (size_t i = 0; i < 510; i++)                 /* 510 + CRLF = 512: fits */
        buf_puts(&in, "a");
    buf_puts(&in, "\r\n");
    for (size_t i = 0; i < 511; i++)                 /* 511 + CRLF = 513: too long */
        buf_puts(&in, "b");
    buf_puts(&in, "\r\n");
    for (size_t i = 0; i < 600; i++)                 /* 600 + CRLF */
        buf_puts(&in, "c");
    buf_puts(&in, "\r\nRSET\nQUIT\r\nX\r\r\n");
    for (chunk = 1; chunk <= in.len; chunk += (chunk < 20 ? 1 : 97)) {
        split_all(in.data, in.len, chunk, &ev, &lines);
        CHECK_STR(buf_cstr(&ev), "LLTTBLL");
        CHECK(lines.len == 5 + 511 + 5 + 3);
        CHECK(strncmp(buf_cstr(&lines), "NOOP|aaaa", 9) == 0);
        CHECK(lines.len > 10 && strcmp(buf_cstr(&lines) + lines.len - 9, "|QUIT|X\r|") == 0);
    }
    buf_release(&in);
    buf_release(&ev);
    buf_release(&lines);
}

/* test_smtp_cmd_getline_partial - no LF yet: MORE with nothing consumed. */
static void
test_smtp_cmd_getline_partial(void)
{
    struct smtp_line l;
    size_t skip, linelen, consumed;

    smtp_cmd_line_init(&l);
    CHECK(smtp_cmd_getline(&l, "EHLO x\r", 7, &skip, &linelen, &consumed) == SMTP_LINE_MORE);
    CHECK(consumed == 0);
    CHECK(smtp_cmd_getline(&l, "EHLO x\r\nQ", 9, &skip, &linelen, &consumed) == SMTP_LINE_OK);
    CHECK(skip == 0 && linelen == 6 && consumed == 8);
    CHECK(smtp_cmd_getline(&l, "\n", 1, &skip, &linelen, &consumed) == SMTP_LINE_BARE_LF);
    CHECK(consumed == 1);
    CHECK(smtp_cmd_getline(&l, "", 0, &skip, &linelen, &consumed) == SMTP_LINE_MORE);
}

int
main(void)
{
    TEST_RUN(test_smtp_cmd_parse);
    TEST_RUN(test_smtp_cmd_bad_octets);
    TEST_RUN(test_smtp_cmd_names);
    TEST_RUN(test_smtp_cmd_getline);
    TEST_RUN(test_smtp_cmd_getline_partial);
    TEST_END();
}
