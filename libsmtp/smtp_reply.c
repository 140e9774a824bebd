/* smtp_reply - building SMTP replies: single and multi-line, enhanced status codes.
 *
 * Formatting goes through a fixed stack buffer, then is sanitised and appended; a reply line
 * is never longer than SMTP_REPLY_LINE_MAX. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp_reply.h"

/* smtp_reply_vline - format and append one sanitised reply line. */
static void
smtp_reply_vline(struct buf *out, int code, char sep, const char *enh, const char *fmt,
                 va_list ap)
{
    char   line[SMTP_REPLY_LINE_MAX];
    int    n, m;
    size_t i, len;

    if (enh != NULL && *enh != '\0')
        n = snprintf(line, sizeof(line), "%03d%c%s ", code, sep, enh);
    else
        n = snprintf(line, sizeof(line), "%03d%c", code, sep);
    if (n < 0 || (size_t)n >= sizeof(line) - 2)
        n = 0;
    m = vsnprintf(line + n, sizeof(line) - 2 - (size_t)n, fmt, ap);
    if (m < 0)
        m = 0;
    len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 3)
        len = sizeof(line) - 3;
    /* an empty text leaves no trailing space after the code */
    while (len > 4 && line[len - 1] == ' ' && (size_t)n == len)
        len--;
    for (i = (size_t)n; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 32 || c == 127)
            line[i] = '?';
    }
    line[len++] = '\r';
    line[len++] = '\n';
    (void)buf_append(out, line, len);
}

/* smtp_reply - one single-line reply. */
void
smtp_reply(struct buf *out, int code, const char *enh, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    smtp_reply_vline(out, code, ' ', enh, fmt, ap);
    va_end(ap);
}

/* smtp_reply_cont - one line of a multi-line reply. */
void
smtp_reply_cont(struct buf *out, int code, const char *enh, int last, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    smtp_reply_vline(out, code, last ? ' ' : '-', enh, fmt, ap);
    va_end(ap);
}

/* smtp_reply_lines - a multi-line reply. */
void
smtp_reply_lines(struct buf *out, int code, const char *enh, const char *const *lines,
                 size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        smtp_reply_cont(out, code, enh, i + 1 == n, "%s", lines[i]);
}

/* smtp_reply_parse - "ddd-text" or "ddd text" or "ddd". */
int
smtp_reply_parse(const char *line, size_t len, int *code, int *more, size_t *text)
{
    size_t i;

    if (len < 3)
        return -1;
    for (i = 0; i < 3; i++)
        if (line[i] < '0' || line[i] > '9')
            return -1;
    if (line[0] < '2' || line[0] > '5')
        return -1;
    *code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    *more = 0;
    *text = 3;
    if (len == 3)
        return 0;
    if (line[3] != ' ' && line[3] != '-')
        return -1;
    *more = line[3] == '-';
    *text = 4;
    return 0;
}
