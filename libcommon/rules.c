/* rules - PCRE2 tables in Postfix pcre_table(5) syntax, compiled at load, first match wins.
 *
 * See rules.h for the syntax. The file is read into logical lines (a line that starts with
 * white space continues the one before, as written, minus its newline; blank and `#` lines
 * are skipped and do not end a logical line). Each logical line is a rule, an `if` or an
 * `endif`; rules and ifs go into one array in file order, and an `if` records the index just
 * past its `endif`, so a failed `if` skips its block in one step. Unlike Postfix, which warns
 * and skips a broken line, every malformed line is a load error: a table that silently lacks
 * a rule lets mail through that the administrator meant to stop.
 *
 * Patterns are compiled without UTF and with PCRE2_NEVER_UTF, so a pattern cannot switch UTF
 * on with (*UTF) and any octet in a subject is fine. Every match runs under one match
 * context per table: the match limit given at load (the depth limit too), the heap limit
 * RULES_HEAP_LIMIT_KB, and a JIT stack of its own. A match that hits a limit is logged and
 * counts as not matching; other PCRE2 errors are logged the same way. Out of memory while
 * loading is fatal (xmalloc); a failed JIT compile just leaves the interpreter in charge. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <pcre2.h>

#include "buf.h"
#include "log.h"
#include "rules.h"

#define RULES_LINE_MAX    65536            /* octets of a logical line */
#define RULES_FILE_MAX    (64L << 20)      /* octets of a table file */
#define RULES_JIT_STACK_MIN (32 * 1024)
#define RULES_JIT_STACK_MAX (1024 * 1024)

enum rules_kind {
    RULES_RULE = 0,                        /* /pattern/flags value */
    RULES_IF,                              /* if /pattern/flags */
};

struct rules_rule {
    enum rules_kind  kind;
    int              negate;               /* !/pattern/: applies when it does not match */
    int              line;                 /* where the logical line starts */
    pcre2_code      *re;
    char            *value;                /* RULES_RULE only */
    size_t           skip_to;              /* RULES_IF: index just past the endif */
};

struct rules {
    char                 *path;
    struct rules_rule    *v;
    size_t                n, cap;
    size_t                count;           /* RULES_RULE entries */
    pcre2_match_context  *mctx;
    pcre2_jit_stack      *jit_stack;       /* NULL: JIT uses its 32K default */
    pcre2_match_data     *md;
};

/* State of one load: the open ifs and where the error goes. */
struct rules_load_state {
    struct rules *r;
    size_t        open_if[RULES_NEST_MAX];
    size_t        depth;
    char         *err;
    size_t        errlen;
};

/* rules_fail - format "file:line: message" into the load's error buffer; returns -1. */
static int __attribute__((format(printf, 3, 4)))
rules_fail(struct rules_load_state *st, int line, const char *fmt, ...)
{
    char    msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(st->err, st->errlen, "%s:%d: %s", st->r->path, line, msg);
    return -1;
}

/* rules_push - append an entry; the array grows as needed. */
static struct rules_rule *
rules_push(struct rules *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    memset(&r->v[r->n], 0, sizeof(r->v[r->n]));
    return &r->v[r->n++];
}

/* rules_flags - Postfix's flag letters as PCRE2 options; each letter toggles, so `i` turns
 * the default caseless matching off. -1 with the bad letter in *bad. */
static int
rules_flags(const char *p, size_t len, uint32_t *opts, char *bad)
{
    uint32_t o = PCRE2_CASELESS;

    for (size_t i = 0; i < len; i++) {
        switch (p[i]) {
        case 'i': o ^= PCRE2_CASELESS; break;
        case 'm': o ^= PCRE2_MULTILINE; break;
        case 's': o ^= PCRE2_DOTALL; break;
        case 'x': o ^= PCRE2_EXTENDED; break;
        case 'A': o ^= PCRE2_ANCHORED; break;
        case 'E': o ^= PCRE2_DOLLAR_ENDONLY; break;
        case 'U': o ^= PCRE2_UNGREEDY; break;
        case 'X': break;                   /* PCRE1's EXTRA is always on in PCRE2 */
        default:
            *bad = p[i];
            return -1;
        }
    }
    *opts = o;
    return 0;
}

/* rules_compile - compile one pattern (JIT when possible). NULL with err set. */
static pcre2_code *
rules_compile(struct rules_load_state *st, int line, const char *pat, size_t len,
              uint32_t opts)
{
    pcre2_code  *re;
    PCRE2_UCHAR  msg[256];
    PCRE2_SIZE   off;
    int          ecode;

    re = pcre2_compile((PCRE2_SPTR)pat, len, opts | PCRE2_NEVER_UTF, &ecode, &off, NULL);
    if (re == NULL) {
        if (pcre2_get_error_message(ecode, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "PCRE2 error %d", ecode);
        rules_fail(st, line, "pattern error at offset %zu: %s", (size_t)off, (char *)msg);
        return NULL;
    }
    /* Where JIT is missing or refuses a pattern, the interpreter matches it just the same. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* rules_pattern - parse `[!]<d>pattern<d>flags` at *pp and compile it; *pp is left at the
 * first white space after the flags. -1 with err set. */
static int
rules_pattern(struct rules_load_state *st, int line, const char **pp, int *negate,
              pcre2_code **re)
{
    const char *p = *pp, *pat, *flags;
    char        delim, bad;
    uint32_t    opts;
    size_t      patlen;

    *negate = 0;
    for (; *p == '!' || *p == ' ' || *p == '\t'; p++)
        if (*p == '!')
            *negate = !*negate;
    if (*p == '\0')
        return rules_fail(st, line, "missing pattern");
    delim = *p;
    if (isalnum((unsigned char)delim) || delim == '\\')
        return rules_fail(st, line, "bad pattern delimiter '%c' (use /pattern/)", delim);
    pat = ++p;
    /* A backslash protects the next character; it stays in the pattern for PCRE2 to see. */
    while (*p != '\0' && *p != delim) {
        if (*p == '\\' && p[1] != '\0')
            p++;
        p++;
    }
    if (*p == '\0')
        return rules_fail(st, line, "missing closing pattern delimiter '%c'", delim);
    patlen = (size_t)(p - pat);
    flags = ++p;
    while (*p != '\0' && *p != ' ' && *p != '\t')
        p++;
    if (rules_flags(flags, (size_t)(p - flags), &opts, &bad) == -1)
        return rules_fail(st, line, "unknown pattern flag '%c'", bad);
    if ((*re = rules_compile(st, line, pat, patlen, opts)) == NULL)
        return -1;
    *pp = p;
    return 0;
}

/* rules_keyword - does line start with the keyword kw (any case) as a whole word? */
static int
rules_keyword(const char *line, const char *kw)
{
    size_t n = strlen(kw);

    return strncasecmp(line, kw, n) == 0 && !isalnum((unsigned char)line[n])
           && line[n] != '_';
}

/* rules_skip_ws - past spaces and tabs. */
static const char *
rules_skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* rules_endif - close the innermost if: it now knows where its block ends. */
static int
rules_endif(struct rules_load_state *st, int line, const char *rest)
{
    if (*rules_skip_ws(rest) != '\0')
        return rules_fail(st, line, "text after endif");
    if (st->depth == 0)
        return rules_fail(st, line, "endif without if");
    st->r->v[st->open_if[--st->depth]].skip_to = st->r->n;
    return 0;
}

/* rules_if - `if /pattern/flags`: open a block. */
static int
rules_if(struct rules_load_state *st, int line, const char *rest)
{
    struct rules_rule *e;
    pcre2_code        *re;
    int                negate;

    if (st->depth == RULES_NEST_MAX)
        return rules_fail(st, line, "if nested deeper than %d", RULES_NEST_MAX);
    rest = rules_skip_ws(rest);
    if (rules_pattern(st, line, &rest, &negate, &re) == -1)
        return -1;
    if (*rules_skip_ws(rest) != '\0') {
        pcre2_code_free(re);
        return rules_fail(st, line, "text after if pattern");
    }
    e = rules_push(st->r);
    e->kind = RULES_IF;
    e->negate = negate;
    e->line = line;
    e->re = re;
    st->open_if[st->depth++] = st->r->n - 1;
    return 0;
}

/* rules_rule - `[!]/pattern/flags value`: one rule. The value is kept as written. */
static int
rules_rule(struct rules_load_state *st, int line, const char *p)
{
    struct rules_rule *e;
    pcre2_code        *re;
    const char        *end;
    int                negate;

    if (rules_pattern(st, line, &p, &negate, &re) == -1)
        return -1;
    p = rules_skip_ws(p);
    end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end == p) {
        pcre2_code_free(re);
        return rules_fail(st, line, "missing value after pattern");
    }
    if ((size_t)(end - p) >= RULES_VALUE_MAX) {
        pcre2_code_free(re);
        return rules_fail(st, line, "value longer than %d octets", RULES_VALUE_MAX - 1);
    }
    e = rules_push(st->r);
    e->kind = RULES_RULE;
    e->negate = negate;
    e->line = line;
    e->re = re;
    e->value = xstrndup(p, (size_t)(end - p));
    st->r->count++;
    return 0;
}

/* rules_logical - one logical line (trailing white space removed, non-blank, not a
 * comment). */
static int
rules_logical(struct rules_load_state *st, int line, const char *text)
{
    if (rules_keyword(text, "if"))
        return rules_if(st, line, text + 2);
    if (rules_keyword(text, "endif"))
        return rules_endif(st, line, text + 5);
    return rules_rule(st, line, text);
}

/* rules_chop - strip the newline and trailing white space of a physical line. */
static size_t
rules_chop(char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'
                       || line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    return len;
}

/* rules_read - read fp into logical lines and parse each. -1 with err set. */
static int
rules_read(struct rules_load_state *st, FILE *fp)
{
    struct buf  logical;
    char       *line = NULL;
    size_t      cap = 0, len;
    ssize_t     n;
    int         lineno = 0, start = 0, rc = 0;

    buf_init(&logical, 256);
    while ((n = getline(&line, &cap, fp)) != -1) {
        const char *p;

        lineno++;
        if (strlen(line) != (size_t)n) {
            rc = rules_fail(st, lineno, "NUL byte in line");
            break;
        }
        len = rules_chop(line, (size_t)n);
        p = rules_skip_ws(line);
        if (*p == '\0' || *p == '#')
            continue;
        if (p != line && start == 0) {
            rc = rules_fail(st, lineno, "continuation line without a rule before it");
            break;
        }
        if (p == line && start != 0) {
            if ((rc = rules_logical(st, start, logical.data)) == -1)
                break;
            buf_reset(&logical);
            start = 0;
        }
        if (logical.len + len >= RULES_LINE_MAX) {
            rc = rules_fail(st, start ? start : lineno, "line longer than %d octets",
                            RULES_LINE_MAX);
            break;
        }
        buf_append(&logical, line, len);
        if (start == 0)
            start = lineno;
    }
    if (rc == 0 && ferror(fp)) {
        snprintf(st->err, st->errlen, "%s: read: %s", st->r->path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && start != 0)
        rc = rules_logical(st, start, logical.data);
    if (rc == 0 && st->depth > 0)
        rc = rules_fail(st, st->r->v[st->open_if[st->depth - 1]].line, "if without endif");
    buf_release(&logical);
    free(line);
    return rc;
}

/* rules_match_setup - the match context, JIT stack and match data every match uses. */
static void
rules_match_setup(struct rules *r, uint32_t match_limit)
{
    if ((r->mctx = pcre2_match_context_create(NULL)) == NULL
        || (r->md = pcre2_match_data_create(1, NULL)) == NULL)
        fatalx("rules: %s: out of memory", r->path);
    /* 0 keeps PCRE2's built-in limits (10 million); the heap limit always applies. */
    if (match_limit > 0) {
        pcre2_set_match_limit(r->mctx, match_limit);
        pcre2_set_depth_limit(r->mctx, match_limit);
    }
    pcre2_set_heap_limit(r->mctx, RULES_HEAP_LIMIT_KB);
    r->jit_stack = pcre2_jit_stack_create(RULES_JIT_STACK_MIN, RULES_JIT_STACK_MAX, NULL);
    if (r->jit_stack != NULL)
        pcre2_jit_stack_assign(r->mctx, NULL, r->jit_stack);
}

/* rules_load - read and compile path; see rules.h. */
struct rules *
rules_load(const char *path, uint32_t match_limit, char *err, size_t errlen)
{
    struct rules_load_state st;
    struct rules           *r;
    struct stat             sb;
    FILE                   *fp;

    if ((fp = fopen(path, "re")) == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(fp), &sb) == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        fclose(fp);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size > RULES_FILE_MAX) {
        snprintf(err, errlen, "%s: %s", path, S_ISREG(sb.st_mode)
                 ? "file larger than 64 MB" : "not a regular file");
        fclose(fp);
        return NULL;
    }
    r = xcalloc(1, sizeof(*r));
    r->path = xstrdup(path);
    memset(&st, 0, sizeof(st));
    st.r = r;
    st.err = err;
    st.errlen = errlen;
    if (rules_read(&st, fp) == -1) {
        fclose(fp);
        rules_free(&r);
        return NULL;
    }
    fclose(fp);
    rules_match_setup(r, match_limit);
    return r;
}

/* rules_free - free the patterns, values and match state; sets *rp = NULL. */
void
rules_free(struct rules **rp)
{
    struct rules *r = *rp;

    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        pcre2_code_free(r->v[i].re);
        free(r->v[i].value);
    }
    free(r->v);
    pcre2_match_data_free(r->md);
    pcre2_match_context_free(r->mctx);
    pcre2_jit_stack_free(r->jit_stack);
    free(r->path);
    free(r);
    *rp = NULL;
}

const char *
rules_path(const struct rules *r)
{
    return r->path;
}

size_t
rules_count(const struct rules *r)
{
    return r->count;
}

/* rules_limit_error - is rc one of the errors that mean "this match ran out of budget"? */
static int
rules_limit_error(int rc)
{
    return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT
           || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT;
}

/* rules_try - does entry e apply to the subject (negation included)? A match that fails
 * with an error is logged and counts as not matching, so a negated rule does not apply
 * either: a pattern that could not be decided never triggers an action. */
static int
rules_try(struct rules *r, const struct rules_rule *e, const char *subject, size_t len,
          const char *logctx, unsigned *limit_hits)
{
    PCRE2_UCHAR msg[256];
    const char *sep = *logctx ? ": " : "";
    int         rc;

    rc = pcre2_match(e->re, (PCRE2_SPTR)subject, len, 0, 0, r->md, r->mctx);
    if (rc >= 0)
        return !e->negate;
    if (rc == PCRE2_ERROR_NOMATCH)
        return e->negate;
    if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
        snprintf((char *)msg, sizeof(msg), "PCRE2 error %d", rc);
    if (rules_limit_error(rc)) {
        if (limit_hits != NULL)
            (*limit_hits)++;
        log_warnx("%s%s%s:%d: pattern match limit reached (%s); rule skipped, "
                  "see pcre_match_limit", logctx, sep, r->path, e->line, (char *)msg);
    } else {
        log_warnx("%s%s%s:%d: pattern match failed (%s); rule skipped", logctx, sep,
                  r->path, e->line, (char *)msg);
    }
    return 0;
}

/* rules_match_next - the first rule at or after *pos that applies; see rules.h. Starting
 * in the middle of an if block is sound: a hit inside a block means every if around it
 * matched, so going on with the next entry is what a single pass would have done. */
int
rules_match_next(struct rules *r, size_t *pos, const char *subject, size_t len,
                 const char *logctx, struct rules_hit *hit, unsigned *limit_hits)
{
    size_t i = *pos;

    if (subject == NULL)
        subject = "";
    if (logctx == NULL)
        logctx = "";
    while (i < r->n) {
        const struct rules_rule *e = &r->v[i];

        if (!rules_try(r, e, subject, len, logctx, limit_hits)) {
            i = e->kind == RULES_IF ? e->skip_to : i + 1;
            continue;
        }
        if (e->kind == RULES_IF) {
            i++;
            continue;
        }
        hit->value = e->value;
        hit->file = r->path;
        hit->line = e->line;
        *pos = i + 1;
        return 1;
    }
    *pos = r->n;
    return 0;
}

/* rules_match - the first rule that applies; see rules.h. */
int
rules_match(struct rules *r, const char *subject, size_t len, const char *logctx,
            struct rules_hit *hit, unsigned *limit_hits)
{
    size_t pos = 0;

    return rules_match_next(r, &pos, subject, len, logctx, hit, limit_hits);
}

/* rules_walk - every rule's value in file order; see rules.h. */
int
rules_walk(const struct rules *r, rules_walk_fn fn, void *arg)
{
    struct rules_hit hit;
    int              rc;

    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].kind != RULES_RULE)
            continue;
        hit.value = r->v[i].value;
        hit.file = r->path;
        hit.line = r->v[i].line;
        if ((rc = fn(arg, &hit)) != 0)
            return rc;
    }
    return 0;
}
