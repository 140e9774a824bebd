/* smtp_cmd - SMTP command lines: splitting the input into lines, parsing one line.
 *
 * No I/O: the caller feeds what it has buffered and consumes what these functions say.
 * smtp_cmd_getline() finds the next command line, enforcing the 512-octet limit of RFC 5321
 * (CRLF included); a longer line is reported once and then discarded up to its LF, so the
 * session can answer "500 5.5.2 Line too long" and go on. smtp_cmd_parse() splits a line
 * (without its CRLF) into a verb and an argument; verbs are case-insensitive, and a line
 * holding NUL, CR or LF is refused. Used by smtpd; fuzzed by tests/fuzz/fuzz_smtp_cmd.c. */
#ifndef POSTERN_SMTP_CMD_H
#define POSTERN_SMTP_CMD_H

#include <stddef.h>

#define SMTP_CMD_LINE_MAX 512         /* octets, CRLF included */

/* Line splitter state; zero it (or call smtp_cmd_line_init) at the start of a session and
 * whenever input is thrown away (STARTTLS). */
struct smtp_line {
    int discarding;                   /* inside an over-long line, dropping up to its LF */
};

enum smtp_line_status {
    SMTP_LINE_MORE = 0,               /* no complete line yet: read more */
    SMTP_LINE_OK,                     /* a line: [0, *linelen) of the input, CRLF excluded */
    SMTP_LINE_TOO_LONG,               /* over SMTP_CMD_LINE_MAX: reply 500 5.5.2, go on */
    SMTP_LINE_BARE_LF,                /* ended by LF without CR: reply 500 5.5.2, go on */
};

void smtp_cmd_line_init(struct smtp_line *);
/* smtp_cmd_getline - look for the next command line in buf[0, len). Whatever the status,
 * the caller drops *consumed bytes from the front of its buffer afterwards (for
 * SMTP_LINE_OK after it used the line, which starts at buf + *skip, *skip <= *consumed).
 * SMTP_LINE_MORE with *consumed > 0 happens while discarding an over-long line. */
enum smtp_line_status smtp_cmd_getline(struct smtp_line *, const char *buf, size_t len,
                                       size_t *skip, size_t *linelen, size_t *consumed);

enum smtp_verb {
    SMTP_VERB_UNKNOWN = 0,
    SMTP_VERB_HELO,
    SMTP_VERB_EHLO,
    SMTP_VERB_MAIL,
    SMTP_VERB_RCPT,
    SMTP_VERB_DATA,
    SMTP_VERB_RSET,
    SMTP_VERB_NOOP,
    SMTP_VERB_QUIT,
    SMTP_VERB_VRFY,
    SMTP_VERB_EXPN,
    SMTP_VERB_HELP,
    SMTP_VERB_STARTTLS,
    SMTP_VERB_AUTH,
    SMTP_VERB_BDAT,
    SMTP_VERB_ETRN,
    SMTP_VERB_TURN,
    SMTP_VERB_COUNT
};

enum smtp_cmd_status {
    SMTP_CMD_OK = 0,
    SMTP_CMD_BAD_CHAR,                /* NUL, CR or LF inside the line: 500 5.5.2 */
    SMTP_CMD_SYNTAX,                  /* MAIL without FROM:, RCPT without TO:: 501 5.5.4 */
    SMTP_CMD_EMPTY,                   /* empty line: 500 5.5.2 */
};

struct smtp_cmd {
    enum smtp_verb  verb;             /* SMTP_VERB_UNKNOWN for anything else */
    const char     *arg;              /* points into the line; for MAIL/RCPT after FROM:/TO:
                                       * and spaces; without trailing spaces */
    size_t          arglen;
};

/* smtp_cmd_parse - parse line[0, len) (no CRLF). The argument is not NUL-terminated. */
enum smtp_cmd_status smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *);
/* smtp_cmd_name - "MAIL" etc., lower-case for logs ("mail"); "unknown" for UNKNOWN. */
const char *smtp_cmd_name(enum smtp_verb);

#endif
