/* buf - growable byte buffers.
 *
 * A struct buf owns its bytes, may hold NULs and is always NUL-terminated past its length so
 * that text can be read with buf_cstr(). An optional limit bounds growth for buffers fed by
 * peers: buf_append() refuses to grow past it and returns -1, leaving the buffer unchanged.
 * Out of memory is fatal, so buf_new() never returns NULL. Used by every module. */
#ifndef POSTERN_BUF_H
#define POSTERN_BUF_H

#include <stddef.h>
#include <stdarg.h>

struct buf {
    char   *data;       /* always NUL-terminated at data[len] */
    size_t  len;
    size_t  cap;
    size_t  limit;      /* 0 = unbounded */
};

struct buf  *buf_new(size_t hint);
void         buf_free(struct buf **bp);                      /* frees, sets *bp = NULL */
void         buf_init(struct buf *, size_t hint);            /* for embedded buffers */
void         buf_release(struct buf *);                      /* frees an embedded buffer's bytes */
void         buf_set_limit(struct buf *, size_t limit);
int          buf_append(struct buf *, const void *, size_t); /* -1: over its limit */
int          buf_puts(struct buf *, const char *);
int          buf_printf(struct buf *, const char *fmt, ...)
                 __attribute__((format(printf, 2, 3)));
int          buf_vprintf(struct buf *, const char *fmt, va_list);
void         buf_consume(struct buf *, size_t n);            /* drop n bytes from the front */
void         buf_truncate(struct buf *, size_t len);
void         buf_reset(struct buf *);                        /* empty, keep capacity */
void         buf_wipe(struct buf *);                         /* explicit_bzero, then empty */
const char  *buf_cstr(const struct buf *);                   /* valid until the next change */
void        *buf_reserve(struct buf *, size_t n);  /* room for n more, NULL over the limit */
void         buf_commit(struct buf *, size_t n);             /* n bytes written into reserve */

/* mem - allocation that never returns NULL (out of memory is fatal). */
void        *xmalloc(size_t);
void        *xcalloc(size_t, size_t);
void        *xrealloc(void *, size_t);
char        *xstrdup(const char *);
char        *xstrndup(const char *, size_t);
char        *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* xfree_secret - wipe a string (a password), free it, set the pointer NULL; NULL: no-op. */
void         xfree_secret(char **);

#endif
