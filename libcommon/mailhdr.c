/* mailhdr - the header fields a submitted message must have, and where its header section ends.
 *
 * A byte-at-a-time state machine (as libsmtp/smtp_data), so how the message is cut cannot
 * change the answer. A header line is a field name (printable ASCII but ':'), optional
 * white space, then ':'; a line starting with white space continues the field before it.
 * Anything else ends the section: the empty line, or a line that cannot be a header, which
 * RFC 5322 would call the body of a message whose empty line is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailhdr.h"

enum {
    MAILHDR_ST_BOL = 0,                /* at the start of a line */
    MAILHDR_ST_EMPTY_CR,               /* a CR at the start of a line: the empty line? */
    MAILHDR_ST_NAME,                   /* reading a field name */
    MAILHDR_ST_NAME_WS,                /* white space between the name and ':' */
    MAILHDR_ST_TEXT,                   /* the rest of a header line */
    MAILHDR_ST_TEXT_CR,                /* ... a CR in it */
    MAILHDR_ST_DONE,                   /* past the header section */
};

static const struct {
    const char *name;
    unsigned    bit;
} mailhdr_wanted[] = {
    { "message-id", MAILHDR_MESSAGE_ID },
    { "date", MAILHDR_DATE },
    { "from", MAILHDR_FROM },
};

/* mailhdr_init - ready for a new message. */
void
mailhdr_init(struct mailhdr *h)
{
    memset(h, 0, sizeof(*h));
    h->state = MAILHDR_ST_BOL;
}

/* mailhdr_end - the section ends at the current line's start. */
static void
mailhdr_end(struct mailhdr *h, int body_line)
{
    h->state = MAILHDR_ST_DONE;
    h->done = 1;
    h->end = h->line_start;
    h->body_line = body_line;
}

/* mailhdr_field - a field name is complete: note it if it is one we look for. */
static void
mailhdr_field(struct mailhdr *h)
{
    size_t i;

    h->fields++;
    h->state = MAILHDR_ST_TEXT;
    if (h->nlen >= sizeof(h->name))   /* longer than any name we look for */
        return;
    h->name[h->nlen] = '\0';
    for (i = 0; i < sizeof(mailhdr_wanted) / sizeof(mailhdr_wanted[0]); i++)
        if (strcasecmp(h->name, mailhdr_wanted[i].name) == 0)
            h->seen |= mailhdr_wanted[i].bit;
}

/* mailhdr_line_start - the first octet of a line. */
static void
mailhdr_line_start(struct mailhdr *h, unsigned char c)
{
    h->line_start = h->pos;
    if (c == '\r') {
        h->state = MAILHDR_ST_EMPTY_CR;
    } else if (c == ' ' || c == '\t') {
        if (h->fields == 0)
            mailhdr_end(h, 1);         /* a continuation of nothing */
        else
            h->state = MAILHDR_ST_TEXT;
    } else if (c > ' ' && c < 0x7f && c != ':') {
        h->name[0] = (char)c;
        h->nlen = 1;
        h->state = MAILHDR_ST_NAME;
    } else {
        mailhdr_end(h, 1);
    }
}

/* mailhdr_name - an octet of a field name, or what follows it. */
static void
mailhdr_name(struct mailhdr *h, unsigned char c)
{
    if (c == ':') {
        mailhdr_field(h);
    } else if (c == ' ' || c == '\t') {
        h->state = MAILHDR_ST_NAME_WS;
    } else if (h->state == MAILHDR_ST_NAME && c > ' ' && c < 0x7f) {
        if (h->nlen < sizeof(h->name))
            h->name[h->nlen++] = (char)c;
    } else {
        mailhdr_end(h, 1);
    }
}

/* mailhdr_step - one octet. */
static void
mailhdr_step(struct mailhdr *h, unsigned char c)
{
    switch (h->state) {
    case MAILHDR_ST_BOL:
        mailhdr_line_start(h, c);
        break;
    case MAILHDR_ST_EMPTY_CR:
        mailhdr_end(h, c != '\n');
        break;
    case MAILHDR_ST_NAME:
    case MAILHDR_ST_NAME_WS:
        mailhdr_name(h, c);
        break;
    case MAILHDR_ST_TEXT:
        if (c == '\r')
            h->state = MAILHDR_ST_TEXT_CR;
        break;
    case MAILHDR_ST_TEXT_CR:
        if (c == '\n')
            h->state = MAILHDR_ST_BOL;
        else if (c != '\r')
            h->state = MAILHDR_ST_TEXT;
        break;
    default:
        break;
    }
}

/* mailhdr_scan - see mailhdr.h. */
int
mailhdr_scan(struct mailhdr *h, const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n && !h->done; i++) {
        mailhdr_step(h, (unsigned char)p[i]);
        h->pos++;
    }
    h->pos += n - i;
    return h->done;
}

/* mailhdr_holding - see mailhdr.h. */
int
mailhdr_holding(const struct mailhdr *h)
{
    return h->state == MAILHDR_ST_EMPTY_CR || h->state == MAILHDR_ST_NAME
           || h->state == MAILHDR_ST_NAME_WS;
}

/* mailhdr_finish - see mailhdr.h. A line that was still a header candidate is one (a last
 * field without a value, or a name cut short): the fields go after it. */
void
mailhdr_finish(struct mailhdr *h)
{
    if (h->done)
        return;
    h->mid_line = h->state != MAILHDR_ST_BOL;
    h->line_start = h->pos;
    mailhdr_end(h, 0);
}

/* mailhdr_date - see mailhdr.h. Names built here, not by strftime: the words must be
 * English whatever the locale. */
const char *
mailhdr_date(time_t t, int utc, char *out, size_t outlen)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                          "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    long      off;
    int       n;

    if (outlen == 0)
        return out;
    if ((utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)) == NULL) {
        out[0] = '\0';
        return out;
    }
    off = utc ? 0 : tm.tm_gmtoff / 60;
    n = snprintf(out, outlen, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
    if (n < 0 || (size_t)n >= outlen)
        out[0] = '\0';                 /* never a cut date */
    return out;
}

/* mailhdr_missing - see mailhdr.h. */
unsigned
mailhdr_missing(const struct mailhdr *h, struct buf *out, const char *qid, const char *host,
               const char *sender, time_t now)
{
    unsigned  add = MAILHDR_ALL & ~h->seen;
    char      date[MAILHDR_DATE_MAX], stamp[32];
    struct tm tm;

    if (add == 0)
        return 0;
    if (h->mid_line)
        (void)buf_puts(out, "\r\n");
    if (add & MAILHDR_MESSAGE_ID) {
        if (gmtime_r(&now, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S",
                                                    &tm) == 0)
            snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
        (void)buf_printf(out, "Message-ID: <%s.%s@%s>\r\n", stamp, qid, host);
    }
    if (add & MAILHDR_DATE)
        (void)buf_printf(out, "Date: %s\r\n", mailhdr_date(now, 0, date, sizeof(date)));
    if ((add & MAILHDR_FROM) && *sender == '\0')
        (void)buf_printf(out, "From: MAILER-DAEMON@%s\r\n", host);
    else if (add & MAILHDR_FROM)
        (void)buf_printf(out, "From: %s\r\n", sender);
    if (h->body_line)
        (void)buf_puts(out, "\r\n");
    return add;
}
