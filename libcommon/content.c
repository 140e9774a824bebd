/* content - header_checks and body_checks over a message as it streams in.
 *
 * See content.h for the contract. The message is cut into lines (at LF) in a buffer of
 * CONTENT_LINE_MAX octets; a longer line is handled in pieces: its first piece decides its
 * MIME kind and, for a body line, is all body_checks sees of it; the other pieces follow
 * what was decided for the first (passed, or dropped after REPLACE or IGNORE). Header lines
 * are held until their logical header is complete (the next line is not a continuation),
 * at most header_max octets of it: at that size the header is decided on what is held and
 * the rest of it is passed (or dropped) unseen. So memory is bounded by header_max plus a
 * line, whatever the input, and the output is the input byte for byte when no rule changes
 * anything, however the input is cut.
 *
 * Choices the contract leaves open, as Postfix makes them where it has an answer:
 * - MIME boundary lines and the empty line that ends a header section are not matched
 *   against body_checks; both end the current part's body, so the body_checks_size_limit
 *   count starts again after them (preamble, each part, epilogue).
 * - A body line is inspected when the part's body before it is under
 *   body_checks_size_limit octets (line ends counted); 0 means no limit.
 * - header_max 0 means CONTENT_HEADER_MAX_DEFAULT.
 * - REPLACE and PREPEND need a text; on a header the text must look like a header
 *   ("Name: value"), or the output's header section would end early. A value that breaks
 *   this, or is not a content action, is logged and the rule counts as not matching.
 * - HOLD keeps the first HOLD's action; REJECT, DEFER and DISCARD end inspection, so the
 *   first of them is the verdict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "content.h"
#include "log.h"
#include "mime.h"

#define CONTENT_LINE_MAX           1000           /* 998 octets + CRLF (RFC 5322 2.1.1) */
#define CONTENT_HEADER_MAX_DEFAULT (100 * 1024)
#define CONTENT_LOG_MAX            250            /* octets of a subject given to the log */
#define CONTENT_LOGCTX_MAX         64

/* What the rest of an overlong line (after its first piece) goes with. */
enum content_rest {
    CONTENT_REST_NONE = 0,            /* at the start of a line */
    CONTENT_REST_HEADER,              /* the logical header being held or decided */
    CONTENT_REST_BODY,                /* a body line: counted, passed or dropped */
    CONTENT_REST_PASS,                /* anything else: passed */
};

struct content {
    struct content_rules   rules;
    size_t                 header_max;
    content_log_fn         log;
    void                  *log_arg;
    char                   logctx[CONTENT_LOGCTX_MAX];
    struct mime           *mime;
    struct content_verdict verdict;
    int                    done;          /* REJECT, DEFER or DISCARD: just pass */
    char                   line[CONTENT_LINE_MAX];
    size_t                 line_len;      /* octets of a line not yet complete */
    enum content_rest      rest;
    int                    rest_drop;     /* drop the rest of a body line */
    struct buf             hdr;           /* the logical header held, raw */
    enum content_part      hdr_part;
    int                    hdr_held;      /* hdr holds a header not yet decided */
    int                    hdr_over;      /* decided at header_max: continuations follow */
    int                    hdr_drop;      /* ... and are dropped (REPLACE, IGNORE) */
    uint64_t               body_seen;     /* octets of the current part's body */
    struct buf             text;          /* the unfolded header */
    struct policy_action   act;           /* the action of the last match */
};

static const char *const content_set_keys[CONTENT_SETS] = {
    "header_checks", "mime_header_checks", "body_checks"
};

/* content_set_key - see content.h. */
const char *
content_set_key(enum content_set s)
{
    return content_set_keys[s];
}

/* content_rules_slot - see content.h. */
struct rules **
content_rules_slot(struct content_rules *r, enum content_set s)
{
    struct rules **slots[CONTENT_SETS] = { &r->header, &r->mime_header, &r->body };

    return slots[s];
}

/* content_set_path - see content.h. */
int
content_set_path(const struct config *cfg, enum content_set s, char **path, char *err,
                 size_t errlen)
{
    const char  *key = content_set_keys[s];
    char *const *specs;
    size_t       n;

    *path = NULL;
    specs = config_list(cfg, key, &n);
    if (n == 0)
        return 0;
    if (n > 1) {
        snprintf(err, errlen, "%s: one pcre: table at most, not %zu", key, n);
        return -1;
    }
    if (strncmp(specs[0], "pcre:", 5) != 0 || specs[0][5] == '\0') {
        snprintf(err, errlen, "%s: \"%s\" is not pcre:/path (content rules are PCRE2 tables)",
                 key, specs[0]);
        return -1;
    }
    *path = specs[0][5] == '/' ? xstrdup(specs[0] + 5)
                               : xasprintf("%s/%s", config_dir(cfg), specs[0] + 5);
    return 0;
}

/* content_any - are any rules set? */
int
content_any(const struct content_rules *r)
{
    return r != NULL && (r->header != NULL || r->mime_header != NULL || r->body != NULL);
}

/* content_new - a content inspector over the caller's rules. */
struct content *
content_new(const struct content_rules *rules, content_log_fn log, void *log_arg)
{
    struct content *c = xcalloc(1, sizeof(*c));

    if (rules != NULL)
        c->rules = *rules;
    c->header_max = c->rules.header_max ? c->rules.header_max : CONTENT_HEADER_MAX_DEFAULT;
    c->log = log;
    c->log_arg = log_arg;
    c->mime = mime_new();
    buf_init(&c->hdr, 1024);
    buf_init(&c->text, 1024);
    content_begin(c, "");
    return c;
}

/* content_free - free it and clear the caller's pointer; the rules stay the caller's. */
void
content_free(struct content **cp)
{
    struct content *c;

    if (cp == NULL || (c = *cp) == NULL)
        return;
    mime_free(&c->mime);
    buf_release(&c->hdr);
    buf_release(&c->text);
    free(c);
    *cp = NULL;
}

/* content_begin - ready for a new message. */
void
content_begin(struct content *c, const char *logctx)
{
    snprintf(c->logctx, sizeof(c->logctx), "%s", logctx != NULL ? logctx : "");
    mime_reset(c->mime);
    memset(&c->verdict, 0, sizeof(c->verdict));
    c->done = 0;
    c->line_len = 0;
    c->rest = CONTENT_REST_NONE;
    c->rest_drop = 0;
    buf_reset(&c->hdr);
    c->hdr_part = CONTENT_HEADER;
    c->hdr_held = 0;
    c->hdr_over = 0;
    c->hdr_drop = 0;
    c->body_seen = 0;
}

const struct content_verdict *
content_verdict(const struct content *c)
{
    return &c->verdict;
}

/* content_out - append to the output. The caller's buffer is unbounded (a limit there is
 * the caller's business: what does not fit is lost, as the caller asked). */
static void
content_out(struct buf *out, const void *p, size_t n)
{
    if (n > 0)
        (void)buf_append(out, p, n);
}

/* content_out_text - an action's text as a line. */
static void
content_out_text(struct buf *out, const struct policy_action *act)
{
    content_out(out, act->text, strlen(act->text));
    content_out(out, "\r\n", 2);
}

/* content_warn - a rule that cannot be applied: logged with the queue ID and file:line. */
static void
content_warn(const struct content *c, const struct rules_hit *hit, const char *why)
{
    log_warnx("%s%spcre:%s:%d: %s; rule skipped", c->logctx, *c->logctx ? ": " : "",
              hit->file, hit->line, why);
}

/* content_header_text - does a REPLACE or PREPEND text look like a header ("Name: ...")?
 * Anything else would end the header section in the output. */
static int
content_header_text(const char *t)
{
    size_t i = 0;

    while ((unsigned char)t[i] > 32 && (unsigned char)t[i] < 127 && t[i] != ':')
        i++;
    return i > 0 && t[i] == ':';
}

int
content_action_parse(const char *value, int header, struct policy_action *act, char *err,
                     size_t errlen)
{
    if (policy_action_parse(value, POLICY_CONTENT, act, err, errlen) == -1)
        return -1;
    if (act->kind != POLICY_REPLACE && act->kind != POLICY_PREPEND)
        return 0;
    if (act->text[0] == '\0')
        snprintf(err, errlen, "missing text");
    else if (strpbrk(act->text, "\r\n") != NULL)
        snprintf(err, errlen, "text holds a line break");
    else if (header && !content_header_text(act->text))
        snprintf(err, errlen, "text is not a header (need \"Name: value\")");
    else
        return 0;
    return -1;
}

/* content_action - the action of a rule's value, or -1 (logged) when it cannot apply. */
static int
content_action(struct content *c, const struct rules_hit *hit, int header,
               struct policy_action *act)
{
    char err[256];

    if (content_action_parse(hit->value, header, act, err, sizeof(err)) == -1) {
        content_warn(c, hit, err);
        return -1;
    }
    snprintf(act->where, sizeof(act->where), "pcre:%s:%d", hit->file, hit->line);
    return 0;
}

/* content_take - count an applied action in the verdict and report it. */
static void
content_take(struct content *c, enum content_part what, const struct policy_action *act,
             const char *subject, size_t len)
{
    switch (act->kind) {
    case POLICY_NONE:
    case POLICY_OK:
    case POLICY_DUNNO:
        return;
    case POLICY_REJECT:
    case POLICY_DEFER:
    case POLICY_DISCARD:
        c->verdict.kind = act->kind;
        c->verdict.action = *act;
        c->done = 1;
        break;
    case POLICY_HOLD:
        if (c->verdict.kind == POLICY_NONE) {
            c->verdict.kind = POLICY_HOLD;
            c->verdict.action = *act;
        }
        break;
    case POLICY_WARN:
        c->verdict.warnings++;
        break;
    case POLICY_REPLACE:
    case POLICY_PREPEND:
    case POLICY_IGNORE:
        c->verdict.changes++;
        break;
    }
    if (c->log != NULL)
        c->log(c->log_arg, what, act, subject, len < CONTENT_LOG_MAX ? len : CONTENT_LOG_MAX);
}

/* content_match - match subject[0, len) against rules; the kind of the action applied
 * (c->act), POLICY_NONE if no rule applies. */
static enum policy_kind
content_match(struct content *c, enum content_part what, struct rules *rules,
              const char *subject, size_t len)
{
    struct rules_hit hit;

    if (rules == NULL || c->done)
        return POLICY_NONE;
    if (!rules_match(rules, subject, len, c->logctx, &hit, &c->verdict.limit_hits))
        return POLICY_NONE;
    if (content_action(c, &hit, what != CONTENT_BODY, &c->act) == -1)
        return POLICY_NONE;
    content_take(c, what, &c->act, subject, len);
    return c->act.kind;
}

/* content_unfold - the held header as one line: each line break (CRLF, or a bare LF)
 * removed, the white space after it kept, no final line break; a CR left by a cut at
 * header_max goes too. */
static void
content_unfold(struct buf *t, const char *raw, size_t n)
{
    size_t i, start = 0;

    buf_reset(t);
    for (i = 0; i < n; i++) {
        if (raw[i] != '\n')
            continue;
        content_out(t, raw + start, i > start && raw[i - 1] == '\r' ? i - 1 - start
                                                                    : i - start);
        start = i + 1;
    }
    if (n > start && raw[n - 1] == '\r')
        n--;
    content_out(t, raw + start, n > start ? n - start : 0);
}

/* content_header_rules - header_checks, or for MIME part and attached message headers
 * mime_header_checks when set. */
static struct rules *
content_header_rules(const struct content *c)
{
    if (c->hdr_part == CONTENT_MIME_HEADER && c->rules.mime_header != NULL)
        return c->rules.mime_header;
    return c->rules.header;
}

/* content_header_decide - match the held header and write what the action says. */
static void
content_header_decide(struct content *c, struct buf *out)
{
    struct rules    *rules = content_header_rules(c);
    enum policy_kind kind = POLICY_NONE;

    if (rules != NULL) {
        content_unfold(&c->text, c->hdr.data, c->hdr.len);
        kind = content_match(c, c->hdr_part, rules, c->text.data, c->text.len);
    }
    c->hdr_drop = kind == POLICY_REPLACE || kind == POLICY_IGNORE;
    if (kind == POLICY_REPLACE || kind == POLICY_PREPEND)
        content_out_text(out, &c->act);
    if (!c->hdr_drop)
        content_out(out, c->hdr.data, c->hdr.len);
    buf_reset(&c->hdr);
    c->hdr_held = 0;
}

/* content_header_flush - the logical header is complete: decide it if still held. */
static void
content_header_flush(struct content *c, struct buf *out)
{
    if (c->hdr_held)
        content_header_decide(c, out);
    c->hdr_over = 0;
    c->hdr_drop = 0;
}

/* content_header_add - octets of the current logical header: held up to header_max; at
 * that size the header is decided and the rest is passed or dropped as decided. */
static void
content_header_add(struct content *c, const char *p, size_t n, struct buf *out)
{
    size_t room;

    if (!c->hdr_held && !c->hdr_over)
        c->hdr_held = 1;
    if (c->hdr_over) {
        if (!c->hdr_drop)
            content_out(out, p, n);
        return;
    }
    room = c->header_max > c->hdr.len ? c->header_max - c->hdr.len : 0;
    if (n <= room) {
        content_out(&c->hdr, p, n);
        return;
    }
    content_out(&c->hdr, p, room);
    content_header_decide(c, out);
    c->hdr_over = 1;
    if (!c->hdr_drop)
        content_out(out, p + room, n - room);
}

/* content_body_line - a body line (or the first piece of a long one): matched while the
 * part's body so far is under the size limit. */
static void
content_body_line(struct content *c, const char *line, size_t len, struct buf *out)
{
    uint64_t         limit = c->rules.body_size_limit;
    enum policy_kind kind = POLICY_NONE;
    size_t           n = len;

    if (n > 0 && line[n - 1] == '\n')
        n--;
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (limit == 0 || c->body_seen < limit)
        kind = content_match(c, CONTENT_BODY, c->rules.body, line, n);
    c->body_seen += len;
    c->rest_drop = kind == POLICY_REPLACE || kind == POLICY_IGNORE;
    if (kind == POLICY_REPLACE || kind == POLICY_PREPEND)
        content_out_text(out, &c->act);
    if (!c->rest_drop)
        content_out(out, line, len);
}

/* content_line - a complete line, or the first piece of an overlong one (complete 0). */
static void
content_line(struct content *c, const char *line, size_t len, int complete,
             struct buf *out)
{
    enum mime_line_kind k = mime_line(c->mime, line, len);
    int                 header = k == MIME_HEADER || k == MIME_PART_HEADER
                                 || k == MIME_MESSAGE_HEADER;
    int                 cont = header && (line[0] == ' ' || line[0] == '\t');
    enum content_rest   rest = CONTENT_REST_PASS;

    if (!cont)
        content_header_flush(c, out);
    if (c->done) {
        content_out(out, line, len);
    } else if (header) {
        if (!cont)
            c->hdr_part = k == MIME_HEADER ? CONTENT_HEADER : CONTENT_MIME_HEADER;
        c->body_seen = 0;
        content_header_add(c, line, len, out);
        rest = CONTENT_REST_HEADER;
    } else if (k == MIME_BODY) {
        content_body_line(c, line, len, out);
        rest = CONTENT_REST_BODY;
    } else {
        c->body_seen = 0;
        content_out(out, line, len);
    }
    c->rest = complete ? CONTENT_REST_NONE : rest;
}

/* content_rest - more of an overlong line, up to and including its LF. */
static void
content_rest(struct content *c, const char *p, size_t n, struct buf *out)
{
    switch (c->rest) {
    case CONTENT_REST_HEADER:
        content_header_add(c, p, n, out);
        break;
    case CONTENT_REST_BODY:
        c->body_seen += n;
        if (!c->rest_drop)
            content_out(out, p, n);
        break;
    default:
        content_out(out, p, n);
        break;
    }
}

/* content_feed - cut data into lines and inspect each. */
void
content_feed(struct content *c, const char *data, size_t len, struct buf *out)
{
    while (len > 0) {
        const char *nl;
        size_t      n;

        if (c->done && c->line_len == 0) {
            content_out(out, data, len);
            return;
        }
        if (c->rest != CONTENT_REST_NONE) {
            nl = memchr(data, '\n', len);
            n = nl != NULL ? (size_t)(nl - data) + 1 : len;
            content_rest(c, data, n, out);
            if (nl != NULL)
                c->rest = CONTENT_REST_NONE;
        } else {
            size_t room = CONTENT_LINE_MAX - c->line_len;

            n = len < room ? len : room;
            nl = memchr(data, '\n', n);
            if (nl != NULL)
                n = (size_t)(nl - data) + 1;
            memcpy(c->line + c->line_len, data, n);
            c->line_len += n;
            if (nl != NULL || c->line_len == CONTENT_LINE_MAX) {
                size_t ll = c->line_len;

                c->line_len = 0;
                content_line(c, c->line, ll, nl != NULL, out);
            }
        }
        data += n;
        len -= n;
    }
}

/* content_end - the message is complete: a last line without LF is inspected as a line,
 * a held header is decided. */
void
content_end(struct content *c, struct buf *out)
{
    if (c->line_len > 0) {
        size_t ll = c->line_len;

        c->line_len = 0;
        if (c->done)
            content_out(out, c->line, ll);
        else
            content_line(c, c->line, ll, 1, out);
    }
    c->rest = CONTENT_REST_NONE;
    content_header_flush(c, out);
    mime_end(c->mime);
}
