/* dns_anchor - trust anchor files (see dns_anchor.h).
 *
 * One pass over the text: comments are dropped, a parenthesised group joins its lines, and
 * each finished record is checked (absolute owner, type DS or DNSKEY among the first words
 * after optional TTL and class) before it is kept. The file is read whole with a size cap:
 * it comes from the administrator, but a wrong path could name something huge. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "dns_anchor.h"

/* dns_anchor_check - one joined record: owner, optional TTL and class, then DS or DNSKEY
 * with some data. 0 if fine, else -1 with the reason in err. */
static int
dns_anchor_check(const char *rec, char *err, size_t errlen)
{
    char        word[4][64];
    const char *p = rec;
    size_t      nw = 0;

    while (nw < 4) {
        size_t n;

        while (*p == ' ')
            p++;
        n = strcspn(p, " ");
        if (n == 0)
            break;
        snprintf(word[nw++], sizeof(word[0]), "%.*s", (int)n, p);
        p += n;
    }
    if (nw == 0 || word[0][strlen(word[0]) - 1] != '.') {
        snprintf(err, errlen, "the owner name \"%s\" must end with a dot",
                 nw ? word[0] : "");
        return -1;
    }
    for (size_t i = 1; i < nw; i++) {
        if (strcasecmp(word[i], "DS") == 0 || strcasecmp(word[i], "DNSKEY") == 0) {
            if (i == nw - 1 && *p == '\0') {
                snprintf(err, errlen, "a %s record without data", word[i]);
                return -1;
            }
            return 0;
        }
        /* Before the type only a TTL and the class may stand. */
        if (strcasecmp(word[i], "IN") != 0 && strspn(word[i], "0123456789") != strlen(word[i]))
            break;
    }
    snprintf(err, errlen, "not a DS or DNSKEY record");
    return -1;
}

/* dns_anchor_space - one blank between words, none at the start. */
static void
dns_anchor_space(struct buf *rec)
{
    if (rec->len > 0 && rec->data[rec->len - 1] != ' ')
        buf_append(rec, " ", 1);
}

/* dns_anchor_add - keep one joined record (trailing blanks removed). */
static int
dns_anchor_add(struct dns_anchor *a, struct buf *rec, int line, char *err, size_t errlen)
{
    char why[160];

    while (rec->len > 0 && rec->data[rec->len - 1] == ' ')
        rec->len--;
    if (rec->len == 0)
        return 0;
    buf_append(rec, "", 1);
    if (dns_anchor_check((const char *)rec->data, why, sizeof(why)) == -1) {
        snprintf(err, errlen, "line %d: %s", line, why);
        return -1;
    }
    if (a->n == DNS_ANCHOR_MAX) {
        snprintf(err, errlen, "line %d: more than %d records", line, DNS_ANCHOR_MAX);
        return -1;
    }
    a->rec[a->n++] = xstrdup((const char *)rec->data);
    buf_reset(rec);
    return 0;
}

int
dns_anchor_parse(const char *text, size_t len, struct dns_anchor *a, char *err,
                 size_t errlen)
{
    struct buf *rec = buf_new(512);
    int         line = 1, start = 1, depth = 0, comment = 0, bol = 1;

    memset(a, 0, sizeof(*a));
    for (size_t i = 0; i <= len; i++) {
        char ch = i < len ? text[i] : '\n';

        if (ch == '\0') {
            snprintf(err, errlen, "line %d: a NUL byte", line);
            goto fail;
        }
        if (ch == '\n') {
            comment = 0;
            if (depth == 0 && dns_anchor_add(a, rec, start, err, errlen) == -1)
                goto fail;
            if (i < len)
                line++;
            if (depth == 0)
                start = line;
            else
                dns_anchor_space(rec);
            bol = 1;
            continue;
        }
        if (comment)
            continue;
        if (bol && depth == 0 && ch == '$') {
            comment = 1;        /* $TTL, $ORIGIN: the records name everything themselves */
            continue;
        }
        if (bol && depth == 0 && (ch == ' ' || ch == '\t')) {
            /* A line starting with a blank inherits the previous owner: not in anchor
             * files, so say so rather than guess. Blank lines stay fine. */
            size_t k = i;

            while (k < len && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r'))
                k++;
            if (k < len && text[k] != '\n' && text[k] != ';') {
                snprintf(err, errlen, "line %d: a record without an owner name", line);
                goto fail;
            }
        }
        bol = 0;
        if (ch == ';') {
            comment = 1;
        } else if (ch == '(') {
            depth++;
            dns_anchor_space(rec);
        } else if (ch == ')') {
            if (depth == 0) {
                snprintf(err, errlen, "line %d: ')' without '('", line);
                goto fail;
            }
            depth--;
            dns_anchor_space(rec);
        } else if (isspace((unsigned char)ch)) {
            dns_anchor_space(rec);
        } else {
            buf_append(rec, &ch, 1);
        }
    }
    if (depth != 0) {
        snprintf(err, errlen, "line %d: '(' without ')'", start);
        goto fail;
    }
    if (a->n == 0) {
        snprintf(err, errlen, "no DS or DNSKEY record");
        goto fail;
    }
    buf_free(&rec);
    return 0;
fail:
    buf_free(&rec);
    dns_anchor_clear(a);
    return -1;
}

int
dns_anchor_load(const char *path, struct dns_anchor *a, char *err, size_t errlen)
{
    struct stat st;
    char       *text, why[256];
    ssize_t     got = 0;
    int         fd;

    memset(a, 0, sizeof(*a));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > DNS_ANCHOR_FILE_MAX) {
        snprintf(err, errlen, "%s: not a regular file of at most %d bytes", path,
                 DNS_ANCHOR_FILE_MAX);
        close(fd);
        return -1;
    }
    text = xmalloc((size_t)st.st_size + 1);
    while (got < st.st_size) {
        ssize_t n = read(fd, text + got, (size_t)(st.st_size - got));

        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "%s: %s", path, n == 0 ? "short read" : strerror(errno));
            close(fd);
            free(text);
            return -1;
        }
        got += n;
    }
    close(fd);
    if (dns_anchor_parse(text, (size_t)got, a, why, sizeof(why)) == -1) {
        snprintf(err, errlen, "%s: %s", path, why);
        free(text);
        return -1;
    }
    free(text);
    return 0;
}

void
dns_anchor_clear(struct dns_anchor *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->rec[i]);
    memset(a, 0, sizeof(*a));
}
