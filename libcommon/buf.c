/* buf - growable byte buffers, and allocation that never fails.
 *
 * See buf.h for the contract. Growth doubles the capacity; the byte after the data is kept
 * NUL so text can be read in place. A limit set with buf_set_limit() makes appends past it
 * fail without touching the buffer, which is how peers' input stays bounded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

/* xmalloc - malloc that never returns NULL. */
void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        fatalx("out of memory (%zu bytes)", n);
    return p;
}

/* xcalloc - calloc that never returns NULL. */
void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        fatalx("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

/* xrealloc - realloc that never returns NULL. */
void *
xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);

    if (p == NULL)
        fatalx("out of memory (%zu bytes)", n);
    return p;
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char  *p = xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* xfree_secret - see buf.h. */
void
xfree_secret(char **sp)
{
    if (*sp == NULL)
        return;
    explicit_bzero(*sp, strlen(*sp));
    free(*sp);
    *sp = NULL;
}

/* xasprintf - formatted string in fresh memory. */
char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char   *p;

    va_start(ap, fmt);
    if (vasprintf(&p, fmt, ap) == -1)
        fatalx("out of memory (asprintf)");
    va_end(ap);
    return p;
}

void
buf_init(struct buf *b, size_t hint)
{
    b->cap = hint ? hint + 1 : 64;
    b->data = xmalloc(b->cap);
    b->data[0] = '\0';
    b->len = 0;
    b->limit = 0;
}

struct buf *
buf_new(size_t hint)
{
    struct buf *b = xmalloc(sizeof(*b));

    buf_init(b, hint);
    return b;
}

void
buf_release(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void
buf_free(struct buf **bp)
{
    if (*bp == NULL)
        return;
    buf_release(*bp);
    free(*bp);
    *bp = NULL;
}

void
buf_set_limit(struct buf *b, size_t limit)
{
    b->limit = limit;
}

/* buf_grow - make room for n more bytes plus the NUL; -1 if that passes the limit. */
static int
buf_grow(struct buf *b, size_t n)
{
    size_t need;

    if (n > SIZE_MAX / 2 - b->len)
        return -1;
    if (b->limit && b->len + n > b->limit)
        return -1;
    need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    if (b->cap == 0)
        b->cap = need;
    while (b->cap < need)
        b->cap *= 2;
    b->data = xrealloc(b->data, b->cap);
    return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
    if (buf_grow(b, n) == -1)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int     n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || buf_grow(b, (size_t)n) == -1)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int     rc;

    va_start(ap, fmt);
    rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void
buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    b->data[b->len] = '\0';
}

void
buf_truncate(struct buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
    b->data[0] = '\0';
}

void
buf_wipe(struct buf *b)
{
    explicit_bzero(b->data, b->cap);
    b->len = 0;
}

const char *
buf_cstr(const struct buf *b)
{
    return b->data;
}

void *
buf_reserve(struct buf *b, size_t n)
{
    if (buf_grow(b, n) == -1)
        return NULL;
    return b->data + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
    b->len += n;
    b->data[b->len] = '\0';
}
