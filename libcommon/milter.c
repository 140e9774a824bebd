/* milter - the Sendmail milter protocol (version 6), client side: packets, no I/O.
 *
 * See milter.h. Every reply is untrusted: lengths are checked before any field is read,
 * strings must end inside their packet, and nothing is allocated from a length the milter
 * chose beyond what MILTER_PACKET_MAX allows. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "milter.h"

/* milter_put_head - the length (command byte included) and the command. */
static void
milter_put_head(struct buf *b, char cmd, size_t len)
{
    uint32_t      n = (uint32_t)len + 1;
    unsigned char h[5] = { n >> 24, n >> 16, n >> 8, n, (unsigned char)cmd };

    (void)buf_append(b, h, sizeof(h));
}

/* milter_put_u32 - a 32-bit field in network order. */
static void
milter_put_u32(struct buf *b, uint32_t v)
{
    unsigned char p[4] = { v >> 24, v >> 16, v >> 8, v };

    (void)buf_append(b, p, sizeof(p));
}

static uint32_t
milter_get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

void
milter_put_optneg(struct buf *b, uint32_t actions, uint32_t protocol)
{
    milter_put_head(b, MILTER_C_OPTNEG, 12);
    milter_put_u32(b, MILTER_VERSION);
    milter_put_u32(b, actions);
    milter_put_u32(b, protocol);
}

void
milter_put(struct buf *b, char cmd, const void *data, size_t len)
{
    milter_put_head(b, cmd, len);
    if (len > 0)
        (void)buf_append(b, data, len);
}

void
milter_put_strings(struct buf *b, char cmd, const char *const *v, size_t n)
{
    size_t i, len = 0;

    for (i = 0; i < n; i++)
        len += strlen(v[i]) + 1;
    milter_put_head(b, cmd, len);
    for (i = 0; i < n; i++)
        (void)buf_append(b, v[i], strlen(v[i]) + 1);
}

/* milter_param_len - the length of the parameter at p (up to a space or the end). */
static size_t
milter_param_len(const char *p)
{
    return strcspn(p, " ");
}

void
milter_put_args(struct buf *b, char cmd, const char *addr, const char *params)
{
    const char *p;
    size_t      len = strlen(addr) + 1, n;

    for (p = params; *p != '\0'; p += n) {
        p += strspn(p, " ");
        if ((n = milter_param_len(p)) > 0)
            len += n + 1;
    }
    milter_put_head(b, cmd, len);
    (void)buf_append(b, addr, strlen(addr) + 1);
    for (p = params; *p != '\0'; p += n) {
        p += strspn(p, " ");
        if ((n = milter_param_len(p)) > 0) {
            (void)buf_append(b, p, n);
            (void)buf_append(b, "", 1);
        }
    }
}

void
milter_put_connect(struct buf *b, const char *host, const char *addr, unsigned port)
{
    unsigned char pb[2] = { (port >> 8) & 0xff, port & 0xff };
    char          family = *addr == '\0' ? 'U' : strchr(addr, ':') ? '6' : '4';
    size_t        len = strlen(host) + 1 + 1;

    if (family != 'U')
        len += 2 + strlen(addr) + 1;
    milter_put_head(b, MILTER_C_CONNECT, len);
    (void)buf_append(b, host, strlen(host) + 1);
    (void)buf_append(b, &family, 1);
    if (family != 'U') {
        (void)buf_append(b, pb, 2);
        (void)buf_append(b, addr, strlen(addr) + 1);
    }
}

void
milter_put_macros(struct buf *b, char stage, const char *const *v, size_t n)
{
    size_t i, len = 1;

    for (i = 0; i < n; i++)
        if (v[2 * i + 1] != NULL)
            len += strlen(v[2 * i]) + 1 + strlen(v[2 * i + 1]) + 1;
    milter_put_head(b, MILTER_C_MACRO, len);
    (void)buf_append(b, &stage, 1);
    for (i = 0; i < n; i++) {
        if (v[2 * i + 1] == NULL)
            continue;
        (void)buf_append(b, v[2 * i], strlen(v[2 * i]) + 1);
        (void)buf_append(b, v[2 * i + 1], strlen(v[2 * i + 1]) + 1);
    }
}

void
milter_put_header(struct buf *b, const char *name, size_t nlen, const char *value,
                  size_t vlen)
{
    const char nul = '\0';

    milter_put_head(b, MILTER_C_HEADER, nlen + 1 + vlen + 1);
    (void)buf_append(b, name, nlen);
    (void)buf_append(b, &nul, 1);
    (void)buf_append(b, value, vlen);
    (void)buf_append(b, &nul, 1);
}

int
milter_take(const char *p, size_t n, struct milter_packet *pkt, size_t *used)
{
    uint32_t len;

    if (n < 4)
        return 0;
    len = milter_get_u32(p);
    if (len == 0 || len > MILTER_PACKET_MAX)
        return -1;
    if (n - 4 < len)
        return 0;
    pkt->cmd = p[4];
    pkt->data = p + 5;
    pkt->len = len - 1;
    *used = 4 + (size_t)len;
    return 1;
}

int
milter_parse_optneg(const struct milter_packet *pkt, uint32_t *version, uint32_t *actions,
                    uint32_t *protocol)
{
    if (pkt->cmd != MILTER_C_OPTNEG || pkt->len < 12)
        return -1;
    *version = milter_get_u32(pkt->data);
    *actions = milter_get_u32(pkt->data + 4);
    *protocol = milter_get_u32(pkt->data + 8);
    return *version >= 2 ? 0 : -1;
}

/* milter_copy_text - printable copy: control characters become spaces. */
static void
milter_copy_text(const char *p, size_t n, char *out, size_t outlen)
{
    size_t i, o = 0;

    for (i = 0; i < n && o + 1 < outlen; i++)
        out[o++] = (unsigned char)p[i] < 0x20 || p[i] == 0x7f ? ' ' : p[i];
    out[o] = '\0';
}

int
milter_parse_replycode(const struct milter_packet *pkt, int *code, char *enh, size_t enhlen,
                       char *text, size_t textlen)
{
    const char *p = pkt->data, *end;
    size_t      n, e = 0;

    if (pkt->len < 4 || memchr(p, '\0', pkt->len) == NULL)
        return -1;
    n = strlen(p);
    end = p + n;
    if ((p[0] != '4' && p[0] != '5') || !isdigit((unsigned char)p[1])
        || !isdigit((unsigned char)p[2]) || (p[3] != ' ' && p[3] != '-' && p[3] != '\0'))
        return -1;
    *code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    p += 3;
    while (p < end && (*p == ' ' || *p == '-'))
        p++;
    /* an enhanced code whose class matches the code's */
    while (p + e < end && (isdigit((unsigned char)p[e]) || p[e] == '.'))
        e++;
    if (e >= 5 && e < enhlen && p[0] == pkt->data[0] && p[1] == '.'
        && (p + e == end || p[e] == ' ')) {
        memcpy(enh, p, e);
        enh[e] = '\0';
        p += e;
        while (p < end && *p == ' ')
            p++;
    } else if (enhlen > 0) {
        enh[0] = '\0';
    }
    milter_copy_text(p, (size_t)(end - p), text, textlen);
    return 0;
}

int
milter_parse_strings(const struct milter_packet *pkt, const char **v, size_t n,
                     size_t required)
{
    const char *p = pkt->data, *end = pkt->data + pkt->len;
    size_t      i;

    if (pkt->len == 0 || end[-1] != '\0')
        return required == 0 && pkt->len == 0 ? 0 : -1;
    for (i = 0; i < n; i++) {
        if (p < end) {
            v[i] = p;
            p += strlen(p) + 1;
        } else {
            v[i] = NULL;
        }
    }
    for (i = 0; i < required; i++)
        if (i >= n || v[i] == NULL)
            return -1;
    return 0;
}

int
milter_parse_index(const struct milter_packet *pkt, uint32_t *index, const char **v, size_t n)
{
    struct milter_packet rest;

    if (pkt->len < 4)
        return -1;
    *index = milter_get_u32(pkt->data);
    rest.cmd = pkt->cmd;
    rest.data = pkt->data + 4;
    rest.len = pkt->len - 4;
    return milter_parse_strings(&rest, v, n, n);
}

void
milter_body_crlf(const char *p, size_t n, struct buf *out)
{
    size_t i, start = 0;

    for (i = 0; i < n; i++) {
        if (p[i] != '\r' && p[i] != '\n')
            continue;
        (void)buf_append(out, p + start, i - start);
        if (p[i] == '\n')
            (void)buf_append(out, "\r\n", 2);
        start = i + 1;
    }
    (void)buf_append(out, p + start, n - start);
}

/* milter_hdrs_push - room for one more field at index at; returns it. */
static struct milter_field *
milter_hdrs_push(struct milter_hdrs *h, size_t at)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->f = xrealloc(h->f, h->cap * sizeof(*h->f));
    }
    if (at > h->n)
        at = h->n;
    memmove(&h->f[at + 1], &h->f[at], (h->n - at) * sizeof(*h->f));
    h->n++;
    return &h->f[at];
}

/* milter_line_end - the offset after the CRLF (or LF) that ends the line at p[i], or n. */
static size_t
milter_line_end(const char *p, size_t n, size_t i)
{
    const char *lf = memchr(p + i, '\n', n - i);

    return lf == NULL ? n : (size_t)(lf - p) + 1;
}

/* milter_field_name_len - the length of a header field name at line start, 0 if none. */
static size_t
milter_field_name_len(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n && p[i] != ':'; i++)
        if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f)
            return 0;
    return i < n ? i : 0;
}

int
milter_hdrs_split(const char *p, size_t n, struct milter_hdrs *h, size_t *end)
{
    size_t i = 0;

    memset(h, 0, sizeof(*h));
    while (i < n) {
        size_t nl = milter_field_name_len(p + i, n - i), j;
        struct milter_field *f;

        if (nl == 0)                  /* the empty line, or a body line */
            break;
        j = milter_line_end(p, n, i);
        while (j < n && (p[j] == ' ' || p[j] == '\t'))
            j = milter_line_end(p, n, j);
        if (j >= n) {                 /* cut: the section does not end within p */
            milter_hdrs_free(h);
            return -1;
        }
        f = milter_hdrs_push(h, h->n);
        f->name = xstrndup(p + i, nl);
        f->raw = xstrndup(p + i, j - i);
        f->rawlen = j - i;
        i = j;
    }
    if (i >= n) {
        milter_hdrs_free(h);
        return -1;
    }
    *end = i;
    return 0;
}

void
milter_hdrs_free(struct milter_hdrs *h)
{
    size_t i;

    for (i = 0; i < h->n; i++) {
        free(h->f[i].name);
        free(h->f[i].raw);
    }
    free(h->f);
    memset(h, 0, sizeof(*h));
}

void
milter_field_value(const struct milter_field *f, struct buf *out)
{
    size_t i = strlen(f->name) + 1, n = f->rawlen;

    while (n > i && (f->raw[n - 1] == '\n' || f->raw[n - 1] == '\r'))
        n--;
    while (i < n && (f->raw[i] == ' ' || f->raw[i] == '\t'))
        i++;
    for (; i < n; i++)
        if (f->raw[i] != '\r')
            (void)buf_append(out, &f->raw[i], 1);
}

/* milter_field_make - "Name: value\r\n" with the value's line ends as CRLF; a value that
 * starts with white space keeps it instead of our space. */
static void
milter_field_make(struct milter_field *f, const char *name, const char *value)
{
    struct buf b;
    const char *v;

    buf_init(&b, 128);
    buf_printf(&b, "%s:%s", name, *value == ' ' || *value == '\t' ? "" : " ");
    for (v = value; *v != '\0'; v++) {
        if (*v == '\r')
            continue;
        if (*v == '\n')
            (void)buf_append(&b, "\r", 1);
        (void)buf_append(&b, v, 1);
    }
    (void)buf_append(&b, "\r\n", 2);
    f->name = xstrdup(name);
    f->rawlen = b.len;
    f->raw = xstrndup(b.data, b.len);
    buf_release(&b);
}

void
milter_hdrs_add(struct milter_hdrs *h, size_t at, const char *name, const char *value)
{
    milter_field_make(milter_hdrs_push(h, at), name, value);
}

void
milter_hdrs_change(struct milter_hdrs *h, uint32_t index, const char *name, const char *value)
{
    size_t   i;
    uint32_t seen = 0;

    for (i = 0; i < h->n; i++) {
        if (strcasecmp(h->f[i].name, name) != 0 || ++seen != (index ? index : 1))
            continue;
        free(h->f[i].name);
        free(h->f[i].raw);
        if (*value == '\0') {
            memmove(&h->f[i], &h->f[i + 1], (h->n - i - 1) * sizeof(*h->f));
            h->n--;
        } else {
            milter_field_make(&h->f[i], name, value);
        }
        return;
    }
    if (*value != '\0')
        milter_hdrs_add(h, h->n, name, value);
}

void
milter_hdrs_join(const struct milter_hdrs *h, struct buf *out)
{
    size_t i;

    for (i = 0; i < h->n; i++)
        (void)buf_append(out, h->f[i].raw, h->f[i].rawlen);
}
