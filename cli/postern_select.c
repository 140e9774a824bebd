/* postern_select - message selectors and JSON strings for `postern queue ...`.
 *
 * Pure code (no I/O, no sockets), unit-tested in tests/unit/postern_select_test.c.
 * A selector is the conjunction of everything given: queue IDs (the message is one of
 * them), --sender RE, --rcpt RE (any pending recipient), --domain D (any pending
 * recipient's domain, case-insensitive), --older-than/--younger-than AGE (now - arrival),
 * --state active|deferred|hold (repeatable: any of them), --larger-than SIZE. Regular
 * expressions are PCRE2, unanchored and case-insensitive (addresses), with a match limit;
 * they run here, in the CLI, over the messages qmgr lists for this user: qmgr never runs a
 * pattern from a client, so a catastrophic pattern costs only the caller's own CPU, and
 * the same selection works on the offline reader when qmgr is down. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "config.h"
#include "qid.h"
#include "qrec.h"
#include "postern.h"

#define POSTERN_SEL_MATCH_LIMIT  100000

/* postern_sel_init - an empty selector: every message. */
void
postern_sel_init(struct postern_sel *s)
{
    memset(s, 0, sizeof(*s));
}

/* postern_sel_free - release the patterns and IDs. */
void
postern_sel_free(struct postern_sel *s)
{
    for (size_t i = 0; i < s->nqids; i++)
        free(s->qids[i]);
    free(s->qids);
    pcre2_code_free(s->sender_re);
    pcre2_code_free(s->rcpt_re);
    pcre2_match_data_free(s->md);
    free(s->domain);
    memset(s, 0, sizeof(*s));
}

/* postern_sel_compile - compile a pattern or say why not. */
static pcre2_code *
postern_sel_compile(const char *re, char *err, size_t errlen)
{
    pcre2_code *code;
    int         ec;
    PCRE2_SIZE  off;

    code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_CASELESS | PCRE2_UTF,
                         &ec, &off, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];

        pcre2_get_error_message(ec, msg, sizeof(msg));
        snprintf(err, errlen, "bad regular expression \"%s\" at offset %zu: %s", re,
                 (size_t)off, (char *)msg);
    }
    return code;
}

/* postern_sel_add_qid - one more queue ID, checked. */
int
postern_sel_add_qid(struct postern_sel *s, const char *qid, char *err, size_t errlen)
{
    if (!qid_valid(qid)) {
        snprintf(err, errlen, "\"%s\" is not a queue ID", qid);
        return -1;
    }
    s->qids = xrealloc(s->qids, (s->nqids + 1) * sizeof(*s->qids));
    s->qids[s->nqids++] = xstrdup(qid);
    return 0;
}

/* postern_sel_option - one selector option and its value. */
int
postern_sel_option(struct postern_sel *s, const char *opt, const char *val, char *err,
                   size_t errlen)
{
    static const char *const with_val[] = {
        "--sender", "--rcpt", "--domain", "--older-than", "--younger-than", "--state",
        "--larger-than",
    };
    uint64_t v;
    size_t   i;

    if (strcmp(opt, "--all") == 0) {
        s->all = 1;
        return 0;
    }
    if (strcmp(opt, "-") == 0) {
        s->stdin_ids = 1;
        return 0;
    }
    for (i = 0; i < sizeof(with_val) / sizeof(with_val[0]); i++)
        if (strcmp(opt, with_val[i]) == 0)
            break;
    if (i == sizeof(with_val) / sizeof(with_val[0]))
        return -2;
    if (val == NULL) {
        snprintf(err, errlen, "%s needs a value", opt);
        return -1;
    }
    if (strcmp(opt, "--sender") == 0 || strcmp(opt, "--rcpt") == 0) {
        pcre2_code **slot = opt[2] == 's' ? &s->sender_re : &s->rcpt_re;

        pcre2_code_free(*slot);
        if ((*slot = postern_sel_compile(val, err, errlen)) == NULL)
            return -1;
    } else if (strcmp(opt, "--domain") == 0) {
        free(s->domain);
        s->domain = xstrdup(val[0] == '@' ? val + 1 : val);
    } else if (strcmp(opt, "--state") == 0) {
        if (strcmp(val, "active") == 0)
            s->states |= POSTERN_SEL_ACTIVE;
        else if (strcmp(val, "deferred") == 0)
            s->states |= POSTERN_SEL_DEFERRED;
        else if (strcmp(val, "hold") == 0)
            s->states |= POSTERN_SEL_HOLD;
        else {
            snprintf(err, errlen, "--state: \"%s\" is not active, deferred or hold", val);
            return -1;
        }
    } else if (strcmp(opt, "--larger-than") == 0) {
        if (config_parse_size(val, &v) == -1) {
            snprintf(err, errlen, "--larger-than: bad size \"%s\" (e.g. 500, 10k, 2M)", val);
            return -1;
        }
        s->larger_than = v;
        s->have_larger = 1;
    } else {
        if (config_parse_time_ms(val, &v) == -1) {
            snprintf(err, errlen, "%s: bad age \"%s\" (e.g. 90s, 30m, 2h, 1d)", opt, val);
            return -1;
        }
        if (strcmp(opt, "--older-than") == 0) {
            s->older_than = v / 1000;
            s->have_older = 1;
        } else {
            s->younger_than = v / 1000;
            s->have_younger = 1;
        }
    }
    return 1;
}

/* postern_sel_criteria - anything beyond plain IDs and --all? */
int
postern_sel_criteria(const struct postern_sel *s)
{
    return s->sender_re != NULL || s->rcpt_re != NULL || s->domain != NULL
           || s->have_older || s->have_younger || s->have_larger || s->states != 0;
}

/* postern_sel_given - was any selector given at all? */
int
postern_sel_given(const struct postern_sel *s)
{
    return s->all || s->nqids > 0 || s->stdin_ids || postern_sel_criteria(s);
}

/* postern_qmsg_state - hold, active or deferred. */
const char *
postern_qmsg_state(const struct postern_qmsg *m)
{
    if (m->flags & QREC_F_HOLD)
        return "hold";
    return m->active ? "active" : "deferred";
}

/* postern_sel_re - does re match s (a match-limit hit counts as no match)? */
static int
postern_sel_re(struct postern_sel *sel, pcre2_code *re, const char *s)
{
    pcre2_match_context *mc;
    int                  rc;

    if (sel->md == NULL)
        sel->md = pcre2_match_data_create(4, NULL);
    mc = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(mc, POSTERN_SEL_MATCH_LIMIT);
    rc = pcre2_match(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, sel->md, mc);
    pcre2_match_context_free(mc);
    return rc >= 0;
}

/* postern_sel_domain_of - does addr's domain equal d (case-insensitive)? */
static int
postern_sel_domain_is(const char *addr, const char *d)
{
    const char *at = strrchr(addr, '@');

    return at != NULL && strcasecmp(at + 1, d) == 0;
}

/* postern_sel_match - the conjunction of every criterion given. */
int
postern_sel_match(struct postern_sel *s, const struct postern_qmsg *m, uint64_t now)
{
    uint64_t age = now > m->arrival ? now - m->arrival : 0;
    unsigned st;

    if (s->nqids > 0) {
        size_t i;

        for (i = 0; i < s->nqids && strcmp(s->qids[i], m->qid) != 0; i++)
            ;
        if (i == s->nqids)
            return 0;
    }
    if (s->states != 0) {
        st = (m->flags & QREC_F_HOLD) ? POSTERN_SEL_HOLD
             : m->active ? POSTERN_SEL_ACTIVE : POSTERN_SEL_DEFERRED;
        if (!(s->states & st))
            return 0;
    }
    if (s->have_older && age <= s->older_than)
        return 0;
    if (s->have_younger && age >= s->younger_than)
        return 0;
    if (s->have_larger && m->size <= s->larger_than)
        return 0;
    if (s->sender_re != NULL && !postern_sel_re(s, s->sender_re, m->sender))
        return 0;
    if (s->rcpt_re != NULL || s->domain != NULL) {
        int any = 0;

        for (uint32_t i = 0; i < m->n && !any; i++) {
            any = (s->rcpt_re == NULL || postern_sel_re(s, s->rcpt_re, m->r[i].addr))
                  && (s->domain == NULL || postern_sel_domain_is(m->r[i].addr, s->domain));
        }
        if (!any)
            return 0;
    }
    return 1;
}

/* postern_json_str - a JSON string literal (RFC 8259 escapes). */
void
postern_json_str(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            buf_puts(b, "\\\"");
            break;
        case '\\':
            buf_puts(b, "\\\\");
            break;
        case '\n':
            buf_puts(b, "\\n");
            break;
        case '\r':
            buf_puts(b, "\\r");
            break;
        case '\t':
            buf_puts(b, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                char u[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };

                buf_append(b, u, sizeof(u));
            } else {
                /* UTF-8 passes through; JSON allows it (SMTPUTF8 addresses). */
                buf_append(b, p, 1);
            }
            break;
        }
    }
    buf_append(b, "\"", 1);
}

/* postern_summary_bucket - qshape's bucket of an age. */
int
postern_summary_bucket(uint64_t age_s)
{
    static const uint64_t mins[] = { 5, 10, 20, 40, 80, 160, 320, 640, 1280 };
    int                   i;

    for (i = 0; i < POSTERN_SUMMARY_BUCKETS - 1; i++)
        if (age_s < mins[i] * 60)
            return i;
    return POSTERN_SUMMARY_BUCKETS - 1;
}

/* postern_qmsg_clear - free a listed message's strings. */
void
postern_qmsg_clear(struct postern_qmsg *m)
{
    for (uint32_t i = 0; i < m->n; i++) {
        free(m->r[i].addr);
        free(m->r[i].orig);
        free(m->r[i].dsn);
        free(m->r[i].text);
    }
    free(m->r);
    free(m->sender);
    memset(m, 0, sizeof(*m));
}
