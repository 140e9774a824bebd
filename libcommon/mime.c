/* mime - a streaming scanner of a message's MIME structure, one line at a time.
 *
 * See mime.h for the contract. The whole state is one fixed-size struct: the open
 * multiparts' boundaries (a stack, at most MIME_DEPTH_MAX deep, since each is one level
 * deeper than the last) and the Content-Type and Content-Transfer-Encoding fields of the
 * header section being read, kept up to a fixed size. A header section's fields decide,
 * at its end, what its body is. The Content-Type parser is lenient where mailers are
 * sloppy (unquoted boundaries with '=' or '/', junk between parameters) because a scanner
 * that gives up on sloppy structure lets content slip past header and body checks. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "mime.h"

#define MIME_FIELD_MAX 1024           /* octets kept of a Content-Type field's value */
#define MIME_CTE_MAX   64             /* octets kept of a Content-Transfer-Encoding value */

enum mime_field {
    MIME_FIELD_OTHER = 0,
    MIME_FIELD_CTYPE,
    MIME_FIELD_CTE,
};

enum mime_class {
    MIME_CLASS_LEAF = 0,              /* anything whose body is just body */
    MIME_CLASS_MULTIPART,
    MIME_CLASS_MESSAGE,               /* message/rfc822 or message/global */
};

struct mime_bound {
    char     text[MIME_BOUNDARY_MAX];
    size_t   len;
    unsigned depth;                   /* the depth of the parts it delimits */
    int      digest;                  /* multipart/digest: parts default to message/rfc822 */
};

struct mime {
    int                 in_head;      /* reading a header section */
    enum mime_line_kind head_kind;    /* which one (MIME_HEADER, _PART_, _MESSAGE_) */
    int                 seen_field;   /* a field started in it: white space continues it */
    enum mime_field     field;        /* the field being continued */
    int                 digest_part;  /* no Content-Type means message/rfc822 */
    unsigned            depth;
    char                ctype[MIME_FIELD_MAX];
    size_t              ctype_len;
    int                 ctype_seen;
    char                cte[MIME_CTE_MAX];
    size_t              cte_len;
    int                 cte_seen;
    struct mime_bound   bound[MIME_DEPTH_MAX];
    size_t              nbound;
    unsigned            errors;
};

/* mime_section_start - a header section begins (the message's, a part's, an attachment's). */
static void
mime_section_start(struct mime *m, enum mime_line_kind kind, unsigned depth, int digest)
{
    m->in_head = 1;
    m->head_kind = kind;
    m->seen_field = 0;
    m->field = MIME_FIELD_OTHER;
    m->digest_part = digest;
    m->depth = depth;
    m->ctype_len = 0;
    m->ctype_seen = 0;
    m->cte_len = 0;
    m->cte_seen = 0;
}

/* mime_new - a scanner ready for a message. */
struct mime *
mime_new(void)
{
    struct mime *m = xmalloc(sizeof(*m));

    mime_reset(m);
    return m;
}

/* mime_free - free the scanner and clear the caller's pointer. */
void
mime_free(struct mime **mp)
{
    if (mp == NULL || *mp == NULL)
        return;
    free(*mp);
    *mp = NULL;
}

/* mime_reset - ready for a new message. */
void
mime_reset(struct mime *m)
{
    memset(m, 0, sizeof(*m));
    mime_section_start(m, MIME_HEADER, 0, 0);
}

/* mime_is_wsp - SP or HTAB. */
static int
mime_is_wsp(int c)
{
    return c == ' ' || c == '\t';
}

/* mime_strip - the line's length without its LF and a CR before it. */
static size_t
mime_strip(const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    return len;
}

/* mime_boundary_match - the index of the innermost open multipart whose delimiter line
 * this is (*close: the closing one), or -1. */
static int
mime_boundary_match(const struct mime *m, const char *line, size_t n, int *close)
{
    size_t i, k;

    if (n < 3 || line[0] != '-' || line[1] != '-')
        return -1;
    for (i = m->nbound; i-- > 0;) {
        const struct mime_bound *b = &m->bound[i];
        const char              *rest;
        size_t                   rl;

        if (n - 2 < b->len || memcmp(line + 2, b->text, b->len) != 0)
            continue;
        rest = line + 2 + b->len;
        rl = n - 2 - b->len;
        *close = rl >= 2 && rest[0] == '-' && rest[1] == '-';
        if (*close) {
            rest += 2;
            rl -= 2;
        }
        for (k = 0; k < rl && mime_is_wsp((unsigned char)rest[k]); k++)
            ;
        if (k == rl)
            return (int)i;
    }
    return -1;
}

/* mime_boundary_take - a delimiter line of open multipart k: the parts inside it end. */
static void
mime_boundary_take(struct mime *m, size_t k, int close)
{
    const struct mime_bound *b = &m->bound[k];

    if (close) {
        /* What follows is the epilogue, body of the multipart entity itself. */
        m->depth = b->depth - 1;
        m->nbound = k;
        m->in_head = 0;
        return;
    }
    m->nbound = k + 1;
    mime_section_start(m, MIME_PART_HEADER, b->depth, b->digest);
}

/* mime_keep - append src[0, n) to a field value of at most cap octets (the rest is lost). */
static void
mime_keep(char *dst, size_t *dlen, size_t cap, const char *src, size_t n)
{
    if (n > cap - *dlen)
        n = cap - *dlen;
    memcpy(dst + *dlen, src, n);
    *dlen += n;
}

/* mime_field_value - if line[0, n) starts a header field ("name:", obsolete white space
 * before the colon allowed), the offset of its value, with *namelen; else -1. */
static long
mime_field_value(const char *line, size_t n, size_t *namelen)
{
    size_t i = 0;

    while (i < n && (unsigned char)line[i] > 32 && (unsigned char)line[i] < 127
           && line[i] != ':')
        i++;
    if (i == 0)
        return -1;
    *namelen = i;
    while (i < n && mime_is_wsp((unsigned char)line[i]))
        i++;
    if (i == n || line[i] != ':')
        return -1;
    return (long)i + 1;
}

/* mime_head_line - take line[0, n) as a line of the header section; 0 if it is not one. */
static int
mime_head_line(struct mime *m, const char *line, size_t n)
{
    size_t namelen;
    long   off;

    if (mime_is_wsp((unsigned char)line[0])) {
        if (!m->seen_field)
            return 0;
        if (m->field == MIME_FIELD_CTYPE)
            mime_keep(m->ctype, &m->ctype_len, sizeof(m->ctype), line, n);
        else if (m->field == MIME_FIELD_CTE)
            mime_keep(m->cte, &m->cte_len, sizeof(m->cte), line, n);
        return 1;
    }
    if ((off = mime_field_value(line, n, &namelen)) < 0)
        return 0;
    m->seen_field = 1;
    m->field = MIME_FIELD_OTHER;
    if (namelen == 12 && strncasecmp(line, "Content-Type", 12) == 0 && !m->ctype_seen) {
        m->field = MIME_FIELD_CTYPE;
        m->ctype_seen = 1;
        mime_keep(m->ctype, &m->ctype_len, sizeof(m->ctype), line + off, n - (size_t)off);
    } else if (namelen == 25 && strncasecmp(line, "Content-Transfer-Encoding", 25) == 0
               && !m->cte_seen) {
        m->field = MIME_FIELD_CTE;
        m->cte_seen = 1;
        mime_keep(m->cte, &m->cte_len, sizeof(m->cte), line + off, n - (size_t)off);
    }
    return 1;
}

/* mime_skip_cfws - past white space and (nested, quoted-pair aware) comments. */
static size_t
mime_skip_cfws(const char *s, size_t n, size_t i)
{
    int depth = 0;

    while (i < n) {
        char c = s[i];

        if (depth > 0) {
            if (c == '\\')
                i++;
            else if (c == '(')
                depth++;
            else if (c == ')')
                depth--;
            i++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
        } else if (c == '(') {
            depth = 1;
            i++;
        } else {
            break;
        }
    }
    return i < n ? i : n;
}

/* mime_token_end - past a token (RFC 2045: no tspecials, controls or space). */
static size_t
mime_token_end(const char *s, size_t n, size_t i)
{
    while (i < n && (unsigned char)s[i] > 32 && (unsigned char)s[i] < 127
           && strchr("()<>@,;:\\\"/[]?=", s[i]) == NULL)
        i++;
    return i;
}

/* mime_word_is - s[a, b) equals word, case-insensitively. */
static int
mime_word_is(const char *s, size_t a, size_t b, const char *word)
{
    size_t wl = strlen(word);

    return b - a == wl && strncasecmp(s + a, word, wl) == 0;
}

/* mime_param_value - a parameter value at s[i]: a quoted string (quoted pairs undone) or,
 * leniently, everything up to ';' or white space. Copies at most cap octets to val;
 * *vlen is the full length. Returns the index past the value. */
static size_t
mime_param_value(const char *s, size_t n, size_t i, char *val, size_t cap, size_t *vlen)
{
    *vlen = 0;
    if (i < n && s[i] == '"') {
        for (i++; i < n && s[i] != '"'; i++) {
            if (s[i] == '\\' && i + 1 < n)
                i++;
            if (*vlen < cap)
                val[*vlen] = s[i];
            (*vlen)++;
        }
        return i < n ? i + 1 : n;
    }
    for (; i < n && s[i] != ';' && !mime_is_wsp((unsigned char)s[i]) && s[i] != '\r'
           && s[i] != '\n'; i++) {
        if (*vlen < cap)
            val[*vlen] = s[i];
        (*vlen)++;
    }
    return i;
}

/* mime_ctype_parse - the class of a Content-Type value, and for multipart/... its boundary
 * (*blen 0 if none usable) and whether it is a digest. */
static enum mime_class
mime_ctype_parse(const char *s, size_t n, char *boundary, size_t *blen, int *digest)
{
    enum mime_class cls = MIME_CLASS_LEAF;
    size_t          i, t0, t1, s0, s1, vlen;
    char            val[MIME_BOUNDARY_MAX];
    int             found = 0;

    *blen = 0;
    *digest = 0;
    t0 = mime_skip_cfws(s, n, 0);
    t1 = mime_token_end(s, n, t0);
    i = mime_skip_cfws(s, n, t1);
    if (i >= n || s[i] != '/')
        return MIME_CLASS_LEAF;
    s0 = mime_skip_cfws(s, n, i + 1);
    s1 = mime_token_end(s, n, s0);
    if (mime_word_is(s, t0, t1, "multipart")) {
        cls = MIME_CLASS_MULTIPART;
        *digest = mime_word_is(s, s0, s1, "digest");
    } else if (mime_word_is(s, t0, t1, "message")
               && (mime_word_is(s, s0, s1, "rfc822") || mime_word_is(s, s0, s1, "global"))) {
        return MIME_CLASS_MESSAGE;
    } else {
        return MIME_CLASS_LEAF;
    }
    for (i = s1; i < n;) {
        size_t p0, p1;
        const char *semi = memchr(s + i, ';', n - i);

        /* Junk between parameters is skipped up to the next ';'. */
        if (semi == NULL)
            break;
        i = mime_skip_cfws(s, n, (size_t)(semi - s) + 1);
        p0 = i;
        p1 = mime_token_end(s, n, p0);
        i = mime_skip_cfws(s, n, p1);
        if (i >= n || s[i] != '=')
            continue;
        i = mime_skip_cfws(s, n, i + 1);
        i = mime_param_value(s, n, i, val, sizeof(val), &vlen);
        if (found || !mime_word_is(s, p0, p1, "boundary"))
            continue;
        found = 1;
        if (vlen >= 1 && vlen <= MIME_BOUNDARY_MAX) {
            memcpy(boundary, val, vlen);
            *blen = vlen;
        }
    }
    return cls;
}

/* mime_cte_identity - the Content-Transfer-Encoding leaves the body as lines of text:
 * absent, 7bit, 8bit or binary. An encoded attached message is opaque, as in Postfix. */
static int
mime_cte_identity(const struct mime *m)
{
    size_t a, b;

    if (!m->cte_seen)
        return 1;
    a = mime_skip_cfws(m->cte, m->cte_len, 0);
    b = mime_token_end(m->cte, m->cte_len, a);
    return mime_word_is(m->cte, a, b, "7bit") || mime_word_is(m->cte, a, b, "8bit")
           || mime_word_is(m->cte, a, b, "binary");
}

/* mime_head_end - a header section ends: its fields say what its body is. */
static void
mime_head_end(struct mime *m)
{
    struct mime_bound *b;
    enum mime_class    cls = MIME_CLASS_LEAF;
    char               boundary[MIME_BOUNDARY_MAX];
    size_t             blen = 0;
    int                digest = 0;

    m->in_head = 0;
    if (m->ctype_seen)
        cls = mime_ctype_parse(m->ctype, m->ctype_len, boundary, &blen, &digest);
    else if (m->digest_part)
        cls = MIME_CLASS_MESSAGE;
    if (cls == MIME_CLASS_LEAF)
        return;
    if (cls == MIME_CLASS_MULTIPART && blen == 0) {
        m->errors |= MIME_ERR_BOUNDARY;
        return;
    }
    if (m->depth + 1 > MIME_DEPTH_MAX || m->nbound >= MIME_DEPTH_MAX) {
        m->errors |= MIME_ERR_NESTING;
        return;
    }
    if (cls == MIME_CLASS_MESSAGE) {
        if (mime_cte_identity(m))
            mime_section_start(m, MIME_MESSAGE_HEADER, m->depth + 1, 0);
        return;
    }
    b = &m->bound[m->nbound++];
    memcpy(b->text, boundary, blen);
    b->len = blen;
    b->depth = m->depth + 1;
    b->digest = digest;
}

/* mime_line - classify the next line. A line that is not a header line ends its header
 * section and is looked at again as the first line of what follows; that can happen at
 * most twice (a message/rfc822 part's section, then its empty attached header section),
 * so the loop is bounded. */
enum mime_line_kind
mime_line(struct mime *m, const char *line, size_t len)
{
    size_t n = mime_strip(line, len);
    int    pass, k, close = 0;

    for (pass = 0; pass < 3; pass++) {
        if ((k = mime_boundary_match(m, line, n, &close)) >= 0) {
            mime_boundary_take(m, (size_t)k, close);
            return MIME_BOUNDARY;
        }
        if (!m->in_head)
            return MIME_BODY;
        if (n == 0) {
            mime_head_end(m);
            return MIME_HEADER_END;
        }
        if (mime_head_line(m, line, n))
            return m->head_kind;
        mime_head_end(m);
    }
    return MIME_BODY;
}

/* mime_end - the message is complete. */
void
mime_end(struct mime *m)
{
    if (m->nbound > 0)
        m->errors |= MIME_ERR_OPEN;
}

unsigned
mime_depth(const struct mime *m)
{
    return m->depth;
}

unsigned
mime_errors(const struct mime *m)
{
    return m->errors;
}

/* mime_kind_name - a line kind's name for logs and tests. */
const char *
mime_kind_name(enum mime_line_kind k)
{
    switch (k) {
    case MIME_HEADER:
        return "header";
    case MIME_PART_HEADER:
        return "part-header";
    case MIME_MESSAGE_HEADER:
        return "message-header";
    case MIME_HEADER_END:
        return "header-end";
    case MIME_BOUNDARY:
        return "boundary";
    case MIME_BODY:
        return "body";
    }
    return "?";
}
