/* postern_sendmail - the binary called as `sendmail` and `newaliases` (doc/sendmail.md).
 *
 * sendmail reads a message on stdin and submits it over <queue_directory>/public/submit,
 * where smtpd speaks SMTP and takes our uid (SO_PEERCRED) as the sender's identity, so a
 * local submission passes the same checks and limits as any other. We add Date:,
 * Message-ID: and From: when the message has none, take recipients from the arguments
 * and (-t) from To:/Cc:/Bcc: (Bcc: removed), end the input at a lone "." unless -i/-oi,
 * convert line ends to CRLF and dot-stuff. There is no pickup queue: when the daemons are
 * down nothing is stored, we say so on stderr and exit EX_TEMPFAIL, and keeping the
 * message is the caller's job (cron and most MUAs report it; as Postfix's sendmail would if
 * postdrop could not write). The exit status follows sysexits(3): 0 queued, 64 usage, 65
 * the message refused (5xx after DATA), 67 a recipient unknown (5.1.1), 69 other 5xx,
 * 75 temporary (4xx, daemons down), 71/74 system and I/O errors, 78 configuration.
 * A recipient refused at RCPT refuses the whole submission (nothing is queued), so a
 * caller that retries never sends a copy twice.
 *
 * -bs proxies SMTP between stdin/stdout and public/submit (bare LF from stdin becomes
 * CRLF; when stdin ends, replies are relayed until smtpd closes (QUIT) or is silent for
 * SM_BS_DRAIN_MS), -bp is mailq, -q is `postern queue retry --all` (admin only), -bi is
 * newaliases. newaliases compiles alias_map with map_build_aliases() and, when master runs,
 * reloads it so smtpd opens the new map (the reload retires smtpd gracefully). */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "mailhdr.h"
#include "map.h"
#include "postern.h"

#define EX_OK_          0
#define EX_USAGE_       64
#define EX_DATAERR_     65
#define EX_NOUSER_      67
#define EX_UNAVAILABLE_ 69
#define EX_OSERR_       71
#define EX_IOERR_       74
#define EX_TEMPFAIL_    75
#define EX_CONFIG_      78

#define SM_SUBMIT_PATH  "public/submit"
#define SM_TIMEOUT_MS   (300 * 1000)        /* each reply (RFC 5321 4.5.3.2 is 5-10 min) */
#define SM_BS_DRAIN_MS  (10 * 1000)         /* -bs: stdin ended; the server's last words */

struct sm_opts {
    int          t, i, verbose, bs, bp, bi, q;
    const char  *from;                      /* -f / -r, NULL if none */
    const char  *fullname;                  /* -F */
    const char  *confdir;                   /* -C */
    char       **rcpts;
    size_t       nrcpt;
};

/* One SMTP conversation over public/submit. */
struct sm_conn {
    int         fd;
    int         verbose;
    struct buf  in;
    char        reply[1024];                /* the last reply, lines joined by " / " */
    int         code;
};

/* sm_usage - the synopsis. */
static void
sm_usage(FILE *f)
{
    fprintf(f, "usage: sendmail [-t] [-i|-oi] [-f sender] [-F fullname] [-C confdir] [-v] "
               "[recipient ...] < message\n"
               "       sendmail -bs | -bp | -bi | -q\n");
}

/* sm_add_rcpt - remember one recipient address. */
static void
sm_add_rcpt(struct sm_opts *o, const char *addr, size_t len)
{
    o->rcpts = xrealloc(o->rcpts, (o->nrcpt + 1) * sizeof(*o->rcpts));
    o->rcpts[o->nrcpt++] = xstrndup(addr, len);
}

/* sm_trim - strip white space at both ends of [*p, *p+*len). */
static void
sm_trim(const char **p, size_t *len)
{
    while (*len > 0 && (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')) {
        (*p)++;
        (*len)--;
    }
    while (*len > 0 && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t' ||
                        (*p)[*len - 1] == '\r' || (*p)[*len - 1] == '\n'))
        (*len)--;
}

/* sm_one_address - the address in one list element: inside <...> if there is one, else
 * the element without (comments); "" for a group's name part. */
static void
sm_one_address(struct sm_opts *o, const char *p, size_t len)
{
    const char *lt = memchr(p, '<', len);
    char       *clean;
    size_t      n = 0;
    int         depth = 0, quote = 0;

    if (lt != NULL) {
        const char *gt = memchr(lt, '>', len - (size_t)(lt - p));

        if (gt != NULL) {
            p = lt + 1;
            len = (size_t)(gt - lt - 1);
        }
    }
    clean = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        char c = p[i];

        if (quote) {
            clean[n++] = c;
            if (c == '"')
                quote = 0;
            continue;
        }
        if (c == '(') {
            depth++;
            continue;
        }
        if (c == ')' && depth > 0) {
            depth--;
            continue;
        }
        if (depth > 0)
            continue;
        if (c == '"')
            quote = 1;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        clean[n++] = c;
    }
    if (n > 0)
        sm_add_rcpt(o, clean, n);
    free(clean);
}

/* sm_address_list - every address of an RFC 5322 address list (To:, Cc:, Bcc:, or an
 * argument): split at commas outside quotes, <>, () and skip group names ("name:" ... ";"). */
static void
sm_address_list(struct sm_opts *o, const char *v, size_t len)
{
    size_t start = 0;
    int    depth = 0, quote = 0, angle = 0;

    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? v[i] : ',';

        if (quote) {
            if (c == '\\' && i + 1 < len)
                i++;
            else if (c == '"')
                quote = 0;
            continue;
        }
        if (c == '"' && depth == 0) {
            quote = 1;
        } else if (c == '(') {
            depth++;
        } else if (c == ')' && depth > 0) {
            depth--;
        } else if (depth == 0 && c == '<') {
            angle = 1;
        } else if (depth == 0 && c == '>') {
            angle = 0;
        } else if (depth == 0 && !angle && c == ':') {
            start = i + 1;                  /* group: "name:" is no address */
        } else if (depth == 0 && !angle && (c == ',' || c == ';')) {
            const char *p = v + start;
            size_t      n = i - start;

            sm_trim(&p, &n);
            if (n > 0)
                sm_one_address(o, p, n);
            start = i + 1;
        }
    }
}

/* sm_parse - sendmail's options; -1 after a usage message. */
static int
sm_parse(int argc, char **argv, struct sm_opts *o)
{
    int i;

    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        const char *a = argv[i];
        const char *val;

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        switch (a[1]) {
        case 't':
            o->t = 1;
            continue;
        case 'i':
            o->i = 1;
            continue;
        case 'v':
            o->verbose++;
            continue;
        case 'o':
            /* -oi as -i; -odi -oem -om -oQ... are sendmail's and mean nothing here */
            if (strcmp(a, "-oi") == 0)
                o->i = 1;
            else if (a[2] == '\0' && i + 1 < argc)
                i++;                         /* "-o X" */
            continue;
        case 'q':
            o->q = 1;
            continue;
        case 'b':
            if (strcmp(a, "-bs") == 0)
                o->bs = 1;
            else if (strcmp(a, "-bp") == 0)
                o->bp = 1;
            else if (strcmp(a, "-bi") == 0)
                o->bi = 1;
            else if (strcmp(a, "-bm") != 0) {
                fprintf(stderr, "sendmail: %s is not supported\n", a);
                return -1;
            }
            continue;
        case 'e': case 'm': case 'n': case 'U': case 'G': case 's': case 'x':
            continue;                        /* accepted and ignored */
        case 'f': case 'r': case 'F': case 'C':
        case 'B': case 'h': case 'N': case 'R': case 'V': case 'L': case 'X': case 'O':
            if (a[2] != '\0') {
                val = a + 2;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                fprintf(stderr, "sendmail: %s needs a value\n", a);
                return -1;
            }
            if (a[1] == 'f' || a[1] == 'r')
                o->from = val;
            else if (a[1] == 'F')
                o->fullname = val;
            else if (a[1] == 'C')
                o->confdir = val;
            continue;                        /* -B -h -N -R -V -L -X -O: ignored */
        default:
            fprintf(stderr, "sendmail: unknown option %s\n", a);
            return -1;
        }
    }
    for (; i < argc; i++)
        sm_address_list(o, argv[i], strlen(argv[i]));
    return 0;
}

/* sm_connect - connect to public/submit; -1 (printed) if nothing listens there. */
static int
sm_connect(const struct config *cfg)
{
    struct sockaddr_un sun;
    char              *path = xasprintf("%s/%s", config_path(cfg, "queue_directory"),
                                        SM_SUBMIT_PATH);
    int                fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "sendmail: %s: path too long\n", path);
        free(path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
        fprintf(stderr, "sendmail: socket: %s\n", strerror(errno));
        free(path);
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
        fprintf(stderr, "sendmail: cannot submit: the mail system is not running "
                        "(connect %s: %s)\n", path, strerror(errno));
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    return fd;
}

/* sm_read_reply - one (multi-line) reply into c->code and c->reply; -1 on EOF, error or
 * timeout (c->reply says which). */
static int
sm_read_reply(struct sm_conn *c)
{
    c->reply[0] = '\0';
    c->code = 0;
    for (;;) {
        char  *nl = memchr(c->in.data, '\n', c->in.len);
        char   chunk[4096];
        ssize_t n;

        if (nl != NULL) {
            size_t len = (size_t)(nl - (char *)c->in.data);
            char  *line = c->in.data;
            size_t have = strlen(c->reply);
            int    last;

            if (len > 0 && line[len - 1] == '\r')
                len--;
            if (c->verbose)
                fprintf(stderr, "<<< %.*s\n", (int)len, line);
            if (len < 3) {
                snprintf(c->reply, sizeof(c->reply), "malformed reply");
                return -1;
            }
            last = len == 3 || line[3] != '-';
            snprintf(c->reply + have, sizeof(c->reply) - have, "%s%.*s", have ? " / " : "",
                     (int)len, line);
            c->code = atoi(line);
            buf_consume(&c->in, (size_t)(nl - (char *)c->in.data) + 1);
            if (last)
                return c->code >= 200 && c->code < 600 ? 0 : -1;
            continue;
        }
        {
            struct pollfd p = { .fd = c->fd, .events = POLLIN };
            int           r = poll(&p, 1, SM_TIMEOUT_MS);

            if (r == 0) {
                snprintf(c->reply, sizeof(c->reply), "timeout waiting for the mail system");
                return -1;
            }
            if (r == -1 && errno == EINTR)
                continue;
        }
        n = read(c->fd, chunk, sizeof(chunk));
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(c->reply, sizeof(c->reply), "connection to the mail system lost%s%s",
                     n == -1 ? ": " : "", n == -1 ? strerror(errno) : "");
            return -1;
        }
        buf_append(&c->in, chunk, (size_t)n);
    }
}

/* sm_write - all of it; -1 on error. */
static int
sm_write(int fd, const void *p, size_t len)
{
    const char *s = p;

    while (len > 0) {
        ssize_t n = write(fd, s, len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* sm_cmd - send one command line and read its reply; -1 if the conversation broke. */
static int
sm_cmd(struct sm_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int
sm_cmd(struct sm_conn *c, const char *fmt, ...)
{
    char    line[2048];
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 2) {
        snprintf(c->reply, sizeof(c->reply), "command too long");
        return -1;
    }
    if (c->verbose)
        fprintf(stderr, ">>> %s\n", line);
    memcpy(line + n, "\r\n", 3);
    if (sm_write(c->fd, line, (size_t)n + 2) == -1) {
        snprintf(c->reply, sizeof(c->reply), "write to the mail system: %s", strerror(errno));
        return -1;
    }
    return sm_read_reply(c);
}

/* sm_status - the exit status for a refusal: 4xx temporary; at RCPT 5.1.1 is an unknown
 * user; after DATA the message itself was refused. */
static int
sm_status(int code, const char *reply, int after_data)
{
    if (code >= 400 && code < 500)
        return EX_TEMPFAIL_;
    if (code < 500)
        return EX_TEMPFAIL_;                 /* no reply at all: the system failed us */
    if (after_data)
        return EX_DATAERR_;
    if (strlen(reply) > 8 && strncmp(reply + 4, "5.1.1", 5) == 0)
        return EX_NOUSER_;
    return EX_UNAVAILABLE_;
}

/* One line of the message: where it is in the input. */
struct sm_line {
    const char *p;
    size_t      len;                          /* without the line end */
};

/* sm_read_message - stdin into raw, split into lines; without -i a lone "." ends it.
 * More than limit bytes (message_size_limit; 0 = none) is refused at once: smtpd would
 * refuse it anyway, and we need not hold it all. -1 (printed): read error; -2: too big. */
static int
sm_read_message(const struct sm_opts *o, uint64_t limit, struct buf *raw,
                struct sm_line **lines, size_t *n)
{
    char    chunk[65536];
    ssize_t r;
    size_t  cap = 0, off = 0;

    while ((r = read(0, chunk, sizeof(chunk))) != 0) {
        if (r == -1) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "sendmail: reading the message: %s\n", strerror(errno));
            return -1;
        }
        buf_append(raw, chunk, (size_t)r);
        if (limit > 0 && raw->len > limit) {
            fprintf(stderr, "sendmail: the message is larger than message_size_limit (%llu "
                            "bytes): NOT sent\n", (unsigned long long)limit);
            return -2;
        }
    }
    *lines = NULL;
    *n = 0;
    while (off < raw->len) {
        const char *p = (const char *)raw->data + off;
        const char *nl = memchr(p, '\n', raw->len - off);
        size_t      len = nl ? (size_t)(nl - p) : raw->len - off;

        off += len + (nl ? 1 : 0);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (!o->i && len == 1 && p[0] == '.')
            break;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            *lines = xrealloc(*lines, cap * sizeof(**lines));
        }
        (*lines)[*n].p = p;
        (*lines)[(*n)++].len = len;
    }
    return 0;
}

/* sm_field_name - the length of a header line's field name if it is "name:", else 0. */
static size_t
sm_field_name(const struct sm_line *l)
{
    for (size_t i = 0; i < l->len; i++) {
        unsigned char c = (unsigned char)l->p[i];

        if (c == ':')
            return i;
        if (c <= 32 || c >= 127)
            return 0;
    }
    return 0;
}

/* sm_is_field - is line l the start of field name? */
static int
sm_is_field(const struct sm_line *l, const char *name)
{
    size_t n = sm_field_name(l);

    return n == strlen(name) && strncasecmp(l->p, name, n) == 0;
}

/* sm_send_line - one message line, dot-stuffed, CRLF. */
static void
sm_send_line(struct buf *out, const char *p, size_t len)
{
    if (len > 0 && p[0] == '.')
        buf_append(out, ".", 1);
    buf_append(out, p, len);
    buf_append(out, "\r\n", 2);
}

/* sm_submit - the whole submission; returns the exit status. */
static int
sm_submit(struct sm_opts *o, const struct config *cfg)
{
    struct sm_conn  c;
    struct buf      raw, out;
    struct sm_line *lines = NULL;
    size_t          nlines = 0, hdr_end = 0, first = 0;
    int             have_date = 0, have_msgid = 0, have_from = 0, eightbit = 0, rc = EX_OK_;
    char            host[256], login[64], sender[1024], date[MAILHDR_DATE_MAX], *bad = NULL;
    struct passwd  *pw = getpwuid(getuid());
    const char     *v = config_str(cfg, "myhostname");
    time_t          now = time(NULL);
    struct tm       tm;

    if (*v)
        snprintf(host, sizeof(host), "%s", v);
    else if (gethostname(host, sizeof(host) - 1) == -1)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    if (pw != NULL)
        snprintf(login, sizeof(login), "%s", pw->pw_name);
    else
        snprintf(login, sizeof(login), "%lu", (unsigned long)getuid());
    if (o->from != NULL) {
        const char *f = o->from;
        size_t      n = strlen(f);

        if (n >= 2 && f[0] == '<' && f[n - 1] == '>') {
            f++;
            n -= 2;
        }
        snprintf(sender, sizeof(sender), "%.*s", (int)n, f);
    } else {
        snprintf(sender, sizeof(sender), "%s@%s", login, host);
    }

    buf_init(&raw, 65536);
    buf_init(&out, 65536);
    if ((rc = sm_read_message(o, config_size(cfg, "message_size_limit"), &raw, &lines,
                              &nlines)) < 0) {
        buf_release(&raw);
        buf_release(&out);
        return rc == -2 ? EX_DATAERR_ : EX_IOERR_;
    }
    rc = EX_OK_;
    if (nlines > 0 && lines[0].len >= 5 && strncmp(lines[0].p, "From ", 5) == 0)
        first = 1;                            /* an mbox "From " line is no header */
    /* the header section: fields and their continuation lines, up to the first other line */
    for (hdr_end = first; hdr_end < nlines; hdr_end++) {
        const struct sm_line *l = &lines[hdr_end];

        if (l->len > 0 && (l->p[0] == ' ' || l->p[0] == '\t') && hdr_end > first)
            continue;
        if (sm_field_name(l) == 0)
            break;
        have_date |= sm_is_field(l, "Date");
        have_msgid |= sm_is_field(l, "Message-ID");
        have_from |= sm_is_field(l, "From");
    }
    /* the header section without Bcc:, and (-t) the recipients of To:, Cc:, Bcc: */
    for (size_t i = first; i < hdr_end;) {
        size_t j = i + 1;
        int    bcc = sm_is_field(&lines[i], "Bcc");
        int    want = o->t && (bcc || sm_is_field(&lines[i], "To") ||
                               sm_is_field(&lines[i], "Cc"));

        while (j < hdr_end && lines[j].len > 0 && (lines[j].p[0] == ' ' ||
                                                   lines[j].p[0] == '\t'))
            j++;
        if (want) {
            struct buf val;

            buf_init(&val, 256);
            for (size_t k = i; k < j; k++) {
                const char *p = lines[k].p;
                size_t      len = lines[k].len;

                if (k == i) {
                    size_t nm = sm_field_name(&lines[k]) + 1;

                    p += nm;
                    len -= nm;
                }
                buf_append(&val, p, len);
                buf_append(&val, " ", 1);
            }
            sm_address_list(o, val.data, val.len);
            buf_release(&val);
        }
        if (!bcc)
            for (size_t k = i; k < j; k++)
                sm_send_line(&out, lines[k].p, lines[k].len);
        i = j;
    }
    if (o->nrcpt == 0) {
        fprintf(stderr, "sendmail: no recipients: give addresses as arguments, or -t to take "
                        "them from To:, Cc: and Bcc:\n");
        free(lines);
        buf_release(&raw);
        buf_release(&out);
        return EX_USAGE_;
    }
    localtime_r(&now, &tm);
    (void)mailhdr_date(now, 0, date, sizeof(date));
    if (!have_from) {
        const char *addr = *sender ? sender : "";
        char        me[512];

        if (!*addr) {
            snprintf(me, sizeof(me), "%s@%s", login, host);
            addr = me;
        }
        if (o->fullname != NULL && *o->fullname) {
            buf_puts(&out, "From: \"");
            for (const char *p = o->fullname; *p; p++) {
                if (*p == '"' || *p == '\\')
                    buf_append(&out, "\\", 1);
                if (*p != '\r' && *p != '\n')
                    buf_append(&out, p, 1);
            }
            buf_printf(&out, "\" <%s>\r\n", addr);
        } else {
            buf_printf(&out, "From: %s\r\n", addr);
        }
    }
    if (!have_date)
        buf_printf(&out, "Date: %s\r\n", date);
    if (!have_msgid) {
        char stamp[32];

        strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
        buf_printf(&out, "Message-ID: <%s.%ld.%08lx@%s>\r\n", stamp, (long)getpid(),
                   (unsigned long)random() ^ (unsigned long)now, host);
    }
    if (hdr_end < nlines && lines[hdr_end].len != 0)
        buf_append(&out, "\r\n", 2);         /* the body began without an empty line */
    for (size_t i = hdr_end; i < nlines; i++)
        sm_send_line(&out, lines[i].p, lines[i].len);
    for (size_t i = 0; i < raw.len && !eightbit; i++)
        eightbit = ((unsigned char *)raw.data)[i] >= 0x80;
    free(lines);
    buf_release(&raw);

    memset(&c, 0, sizeof(c));
    c.verbose = o->verbose;
    buf_init(&c.in, 4096);
    if ((c.fd = sm_connect(cfg)) == -1) {
        fprintf(stderr, "sendmail: the message was NOT sent; try again later\n");
        buf_release(&out);
        buf_release(&c.in);
        return EX_TEMPFAIL_;
    }
    if (sm_read_reply(&c) == -1 || c.code != 220 ||
        sm_cmd(&c, "EHLO localhost") == -1 || c.code != 250 ||
        sm_cmd(&c, "MAIL FROM:<%s>%s", sender, eightbit ? " BODY=8BITMIME" : "") == -1 ||
        c.code != 250) {
        fprintf(stderr, "sendmail: mail system: %s\n", c.reply[0] ? c.reply : "no answer");
        rc = sm_status(c.code, c.reply, 0);
        goto done;
    }
    for (size_t i = 0; i < o->nrcpt; i++) {
        char *r = o->rcpts[i];

        if (strchr(r, '@') == NULL && strcasecmp(r, "postmaster") != 0) {
            char *full = xasprintf("%s@%s", r, host);   /* a bare name is on this host */

            free(r);
            r = o->rcpts[i] = full;
        }
        if (sm_cmd(&c, "RCPT TO:<%s>", r) == -1) {
            fprintf(stderr, "sendmail: mail system: %s\n", c.reply);
            rc = sm_status(c.code, c.reply, 0);
            goto done;
        }
        if (c.code != 250 && c.code != 251) {
            int st = sm_status(c.code, c.reply, 0);

            fprintf(stderr, "sendmail: <%s>: %s\n", r, c.reply);
            /* a permanent refusal outweighs a temporary one */
            if (rc == EX_OK_ || (rc == EX_TEMPFAIL_ && st != EX_TEMPFAIL_))
                rc = st;
            bad = r;
        }
    }
    if (bad != NULL) {
        fprintf(stderr, "sendmail: the message was NOT sent (recipients refused)\n");
        (void)sm_cmd(&c, "QUIT");
        goto done;
    }
    if (sm_cmd(&c, "DATA") == -1 || c.code != 354) {
        fprintf(stderr, "sendmail: mail system: %s\n", c.reply);
        rc = sm_status(c.code, c.reply, 0);
        goto done;
    }
    buf_append(&out, ".\r\n", 3);
    if (c.verbose)
        fprintf(stderr, ">>> (%zu bytes of message)\n", out.len);
    if (sm_write(c.fd, out.data, out.len) == -1) {
        fprintf(stderr, "sendmail: writing the message: %s\n", strerror(errno));
        rc = EX_TEMPFAIL_;
        goto done;
    }
    if (sm_read_reply(&c) == -1 || c.code != 250) {
        fprintf(stderr, "sendmail: mail system: %s\n", c.reply);
        rc = sm_status(c.code, c.reply, 1);
        goto done;
    }
    if (o->verbose)
        fprintf(stderr, "sendmail: %s\n", c.reply);
    (void)sm_cmd(&c, "QUIT");
done:
    if (rc != EX_OK_ && bad == NULL)
        fprintf(stderr, "sendmail: the message was NOT sent%s\n",
                rc == EX_TEMPFAIL_ ? "; try again later" : "");
    close(c.fd);
    buf_release(&c.in);
    buf_release(&out);
    return rc;
}

/* sm_bs - -bs: SMTP between stdin/stdout and public/submit. Lines from stdin that end in
 * a bare LF get CRLF (smtpd refuses bare LF). */
static int
sm_bs(const struct config *cfg)
{
    int  fd = sm_connect(cfg), in_open = 1;
    char prev = 0;

    if (fd == -1) {
        printf("421 4.3.0 Mail system not running, try again later\r\n");
        fflush(stdout);
        return EX_TEMPFAIL_;
    }
    for (;;) {
        struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
        char          chunk[8192], conv[16384];
        ssize_t       n;

        int           r = poll(p, in_open ? 2 : 1, in_open ? -1 : SM_BS_DRAIN_MS);

        if (r == -1) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (r == 0)
            break;                           /* stdin ended without QUIT: server is silent */
        if (p[0].revents) {
            n = read(fd, chunk, sizeof(chunk));
            if (n <= 0)
                break;
            if (sm_write(1, chunk, (size_t)n) == -1)
                break;
        }
        if (in_open && p[1].revents) {
            size_t m = 0;

            n = read(0, chunk, sizeof(chunk));
            if (n <= 0) {
                /* no half-close: smtpd takes EOF as a lost client (in DATA: the message is
                 * dropped). Relay the replies still coming; after QUIT smtpd closes. */
                in_open = 0;
                continue;
            }
            for (ssize_t k = 0; k < n; k++) {
                if (chunk[k] == '\n' && prev != '\r')
                    conv[m++] = '\r';
                conv[m++] = chunk[k];
                prev = chunk[k];
            }
            if (sm_write(fd, conv, m) == -1)
                break;
        }
    }
    close(fd);
    return EX_OK_;
}

int
postern_newaliases(struct postern_ctx *ctx)
{
    struct config *cfg = postern_load(ctx);
    const char    *path;
    char           err[1024];
    pid_t          pid;
    char          *pid_path;

    if (cfg == NULL)
        return EX_CONFIG_;
    path = config_path(cfg, "alias_map");
    if (*path == '\0') {
        fprintf(stderr, "newaliases: alias_map is not set in %s/%s\n", ctx->confdir,
                CONFIG_FILE);
        config_free(&cfg);
        return EX_CONFIG_;
    }
    if (map_build_aliases(path, err, sizeof(err)) == -1) {
        fprintf(stderr, "newaliases: %s\n", err);
        config_free(&cfg);
        return EX_DATAERR_;
    }
    printf("newaliases: %s.db built\n", path);
    /* smtpd opens its maps at start: a running instance reloads (gracefully) to see them */
    pid_path = xasprintf("%s/%s", config_path(cfg, "queue_directory"), POSTERN_PID_FILE);
    if (postern_pid_read(pid_path, &pid) == 1) {
        if (kill(pid, SIGHUP) == -1)
            fprintf(stderr, "newaliases: cannot reload postern (pid %ld): %s; run postern "
                            "reload\n", (long)pid, strerror(errno));
        else
            printf("newaliases: postern reloaded (pid %ld)\n", (long)pid);
    }
    free(pid_path);
    config_free(&cfg);
    return 0;
}

int
postern_sendmail(int argc, char **argv)
{
    struct sm_opts     o;
    struct postern_ctx ctx;
    struct config     *cfg;
    int                rc;

    memset(&o, 0, sizeof(o));
    if (sm_parse(argc, argv, &o) == -1) {
        sm_usage(stderr);
        return EX_USAGE_;
    }
    ctx.confdir = config_dir_from(o.confdir);
    if (o.bi)
        return postern_newaliases(&ctx);
    if (o.bp) {
        char *av[] = { (char *)"mailq", NULL };

        return postern_mailq(&ctx, 1, av);
    }
    if (o.q) {
        char *av[] = { (char *)"queue", (char *)"retry", (char *)"--all", NULL };

        return postern_cmd_queue(&ctx, 3, av);
    }
    if ((cfg = postern_load(&ctx)) == NULL)
        return EX_CONFIG_;
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    rc = o.bs ? sm_bs(cfg) : sm_submit(&o, cfg);
    for (size_t i = 0; i < o.nrcpt; i++)
        free(o.rcpts[i]);
    free(o.rcpts);
    config_free(&cfg);
    return rc;
}
