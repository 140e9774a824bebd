/* smtp_cmd - SMTP command lines: splitting the input into lines, parsing one line.
 *
 * The splitter looks only for LF: a line is complete at its LF, and it is well-formed only if
 * a CR comes right before. Nothing here allocates; the parser's result points into the line.
 * The limits and rejections follow RFC 5321 4.5.3.1.4 (512 octets) and 2.3.8 (no bare CR or
 * LF), so the caller can answer each case with its own reply and keep the session going. */
#include <string.h>
#include <strings.h>

#include "smtp_cmd.h"

static const struct {
    const char     *name;
    enum smtp_verb  verb;
} smtp_cmd_verbs[] = {
    { "HELO", SMTP_VERB_HELO },   { "EHLO", SMTP_VERB_EHLO },
    { "MAIL", SMTP_VERB_MAIL },   { "RCPT", SMTP_VERB_RCPT },
    { "DATA", SMTP_VERB_DATA },   { "RSET", SMTP_VERB_RSET },
    { "NOOP", SMTP_VERB_NOOP },   { "QUIT", SMTP_VERB_QUIT },
    { "VRFY", SMTP_VERB_VRFY },   { "EXPN", SMTP_VERB_EXPN },
    { "HELP", SMTP_VERB_HELP },   { "STARTTLS", SMTP_VERB_STARTTLS },
    { "AUTH", SMTP_VERB_AUTH },   { "BDAT", SMTP_VERB_BDAT },
    { "ETRN", SMTP_VERB_ETRN },   { "TURN", SMTP_VERB_TURN },
};

static const char *const smtp_cmd_lnames[SMTP_VERB_COUNT] = {
    [SMTP_VERB_UNKNOWN] = "unknown", [SMTP_VERB_HELO] = "helo", [SMTP_VERB_EHLO] = "ehlo",
    [SMTP_VERB_MAIL] = "mail", [SMTP_VERB_RCPT] = "rcpt", [SMTP_VERB_DATA] = "data",
    [SMTP_VERB_RSET] = "rset", [SMTP_VERB_NOOP] = "noop", [SMTP_VERB_QUIT] = "quit",
    [SMTP_VERB_VRFY] = "vrfy", [SMTP_VERB_EXPN] = "expn", [SMTP_VERB_HELP] = "help",
    [SMTP_VERB_STARTTLS] = "starttls", [SMTP_VERB_AUTH] = "auth", [SMTP_VERB_BDAT] = "bdat",
    [SMTP_VERB_ETRN] = "etrn", [SMTP_VERB_TURN] = "turn",
};

/* smtp_cmd_line_init - a fresh splitter. */
void
smtp_cmd_line_init(struct smtp_line *l)
{
    l->discarding = 0;
}

/* smtp_cmd_getline - find the next line, or report an over-long or bare-LF line. */
enum smtp_line_status
smtp_cmd_getline(struct smtp_line *l, const char *buf, size_t len, size_t *skip,
                 size_t *linelen, size_t *consumed)
{
    const char *lf;
    size_t      start = 0, n;

    *skip = 0;
    *linelen = 0;
    *consumed = 0;
    if (l->discarding) {
        lf = memchr(buf, '\n', len);
        if (lf == NULL) {
            *consumed = len;
            return SMTP_LINE_MORE;
        }
        l->discarding = 0;
        start = (size_t)(lf - buf) + 1;
    }
    *skip = start;
    *consumed = start;
    n = len - start;
    lf = memchr(buf + start, '\n', n);
    if (lf == NULL) {
        if (n >= SMTP_CMD_LINE_MAX) {
            /* No LF in the first 512 octets: too long whatever follows. */
            l->discarding = 1;
            *consumed = len;
            return SMTP_LINE_TOO_LONG;
        }
        return SMTP_LINE_MORE;
    }
    n = (size_t)(lf - (buf + start)) + 1;          /* line length with its LF */
    *consumed = start + n;
    if (n > SMTP_CMD_LINE_MAX)
        return SMTP_LINE_TOO_LONG;
    if (n < 2 || buf[start + n - 2] != '\r')
        return SMTP_LINE_BARE_LF;
    *linelen = n - 2;
    return SMTP_LINE_OK;
}

/* smtp_cmd_prefix - if s[0, len) starts with the ASCII word pfx (any case), its length. */
static size_t
smtp_cmd_prefix(const char *s, size_t len, const char *pfx)
{
    size_t n = strlen(pfx);

    if (len < n || strncasecmp(s, pfx, n) != 0)
        return 0;
    return n;
}

/* smtp_cmd_parse - split a command line into its verb and argument. */
enum smtp_cmd_status
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd)
{
    size_t i, vlen, n;

    cmd->verb = SMTP_VERB_UNKNOWN;
    cmd->arg = line + len;
    cmd->arglen = 0;
    for (i = 0; i < len; i++)
        if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
            return SMTP_CMD_BAD_CHAR;
    if (len == 0)
        return SMTP_CMD_EMPTY;
    for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
        ;
    for (i = 0; i < sizeof(smtp_cmd_verbs) / sizeof(smtp_cmd_verbs[0]); i++) {
        if (strlen(smtp_cmd_verbs[i].name) == vlen
            && strncasecmp(line, smtp_cmd_verbs[i].name, vlen) == 0) {
            cmd->verb = smtp_cmd_verbs[i].verb;
            break;
        }
    }
    i = vlen;
    while (i < len && line[i] == ' ')
        i++;
    if (cmd->verb == SMTP_VERB_MAIL || cmd->verb == SMTP_VERB_RCPT) {
        /* "MAIL FROM:<a>": exactly one space before FROM: in RFC 5321; the space after
         * the colon is tolerated because widely deployed clients send it. */
        if (vlen == len || line[vlen] != ' ' || i != vlen + 1)
            return SMTP_CMD_SYNTAX;
        n = smtp_cmd_prefix(line + i, len - i,
                            cmd->verb == SMTP_VERB_MAIL ? "FROM:" : "TO:");
        if (n == 0)
            return SMTP_CMD_SYNTAX;
        i += n;
        while (i < len && line[i] == ' ')
            i++;
    }
    while (len > i && line[len - 1] == ' ')
        len--;
    cmd->arg = line + i;
    cmd->arglen = len - i;
    return SMTP_CMD_OK;
}

/* smtp_cmd_name - the verb's name for logs and counters. */
const char *
smtp_cmd_name(enum smtp_verb v)
{
    if ((unsigned)v >= SMTP_VERB_COUNT)
        return "unknown";
    return smtp_cmd_lnames[v];
}
