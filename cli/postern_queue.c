/* postern_queue - `postern queue list|show|hold|release|delete|retry|expire|summary`, and
 * mailq.
 *
 * Reading commands (list, show, summary) ask qmgr over public/control; when no master runs
 * (the control socket is absent or refuses) or master says qmgr is down, they read the
 * database files directly (postern_client.c) and say so on stderr. Commands that change
 * messages select them here: plain queue IDs go to qmgr as they are; with --all, - or any
 * other selector the CLI first lists the queue (only what this user may see), applies the
 * selector (postern_select.c) and sends the resulting IDs. qmgr alone decides whether the
 * caller may change anything. Exit status: 0 done, 1 failed or refused, 2 usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "ipc_msg.h"
#include "qid.h"
#include "qrec.h"
#include "postern.h"

/* Output modes of show. */
enum { POSTERN_SHOW_ALL, POSTERN_SHOW_HEADERS, POSTERN_SHOW_BODY, POSTERN_SHOW_ENVELOPE };

struct postern_q {
    const struct config *cfg;
    struct postern_sel   sel;
    int                  json;
    int                  show_mode;
    uint64_t             now;
    uint64_t             lifetime;      /* queue_lifetime, for forced_expire */
    /* list totals */
    uint64_t             msgs, rcpts, bytes, nactive, nhold, ndeferred;
    /* selection for actions */
    char               **ids;
    size_t               nids, capids;
    /* summary: per domain */
    struct postern_dom  *doms;
    size_t               ndoms, capdoms;
    int                  shown;
    /* action results */
    size_t               ok, failed;
    const char          *verb;
};

struct postern_dom {
    char     *name;
    uint64_t  count, bytes;
    uint64_t  age[POSTERN_SUMMARY_BUCKETS];
};

void
postern_queue_usage(FILE *f)
{
    fprintf(f,
        "usage: postern queue COMMAND [SELECTORS] [OPTIONS]\n"
        "\n"
        "commands:\n"
        "  list [--json]          the queue: one line per message (queue ID, then * active,\n"
        "                         ! held, blank deferred; size; arrival; sender), then each\n"
        "                         pending recipient with its last error; a footer of totals.\n"
        "                         --json: one JSON object per line (postqueue -j fields plus\n"
        "                         attempts and next_attempt)\n"
        "  show ID [--headers|--body|--envelope]\n"
        "                         one message: envelope and content (default), only its\n"
        "                         header section, only its body, or only its envelope\n"
        "  summary [--json]       per destination domain: messages, bytes and their age\n"
        "                         (qshape buckets: 5 10 20 40 80 160 320 640 1280 1280+ min)\n"
        "  hold                   keep selected messages out of delivery (durable)\n"
        "  release                undo hold; the messages are due at once\n"
        "  delete                 remove selected messages (no bounce)\n"
        "  retry                  try every pending recipient now\n"
        "  expire                 end the messages' lifetime now: they bounce to the sender\n"
        "                         (a held message is released to bounce)\n"
        "\n"
        "selectors (all given must match; list and summary default to every message; the\n"
        "other commands need at least one):\n"
        "  ID...                  these queue IDs\n"
        "  -                      queue IDs read from stdin, one per line\n"
        "  --all                  every message\n"
        "  --sender RE            envelope sender matches RE (PCRE2, case-insensitive,\n"
        "                         unanchored; <> is the empty string: --sender '^$')\n"
        "  --rcpt RE              a pending recipient matches RE\n"
        "  --domain D             a pending recipient is in domain D\n"
        "  --older-than AGE       arrived more than AGE ago (90s, 30m, 2h, 1d)\n"
        "  --younger-than AGE     arrived less than AGE ago\n"
        "  --state STATE          active, deferred or hold (repeat for several)\n"
        "  --larger-than SIZE     larger than SIZE bytes (k, M, G suffixes)\n"
        "\n"
        "Any local user may list and show the messages they sent (sender user@local domain\n"
        "or user@myhostname); changing the queue takes root or admin_group. With the daemons\n"
        "stopped, list, show and summary read the queue database directly (root only).\n"
        "See doc/queue.md.\n");
}

/* postern_q_add_id - remember a selected queue ID for an action. */
static void
postern_q_add_id(struct postern_q *q, const char *qid)
{
    if (q->nids == q->capids) {
        q->capids = q->capids ? q->capids * 2 : 64;
        q->ids = xrealloc(q->ids, q->capids * sizeof(*q->ids));
    }
    q->ids[q->nids++] = xstrdup(qid);
}

/* postern_fmt_time - local time as "2026-01-02 15:04:05". */
static void
postern_fmt_time(uint64_t t, char *out, size_t outlen)
{
    time_t    tt = (time_t)t;
    struct tm tm;

    if (localtime_r(&tt, &tm) == NULL || strftime(out, outlen, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, outlen, "%llu", (unsigned long long)t);
}

/* postern_printable - s with control characters shown as '?' (terminal safety). */
static const char *
postern_printable(const char *s, char *out, size_t outlen)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i + 1 < outlen; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[i] = '\0';
    return out;
}

/* postern_list_text - one message in the text listing. */
static void
postern_list_text(struct postern_q *q, const struct postern_qmsg *m)
{
    char        when[32], a[600], b[1100];
    const char *mark = (m->flags & QREC_F_HOLD) ? "!" : m->active ? "*" : " ";

    postern_fmt_time(m->arrival, when, sizeof(when));
    printf("%s%s %9llu  %s  %s\n", m->qid, mark, (unsigned long long)m->size, when,
           m->sender[0] ? postern_printable(m->sender, a, sizeof(a)) : "<>");
    for (uint32_t i = 0; i < m->n; i++) {
        const struct postern_qrcpt *r = &m->r[i];

        printf("    %s", postern_printable(r->addr, a, sizeof(a)));
        if (r->text[0] != '\0')
            printf("  (%s%s%s; attempts=%u)", r->dsn, r->dsn[0] ? " " : "",
                   postern_printable(r->text, b, sizeof(b)), r->attempts);
        else if (r->state == QREC_ACTIVE)
            printf("  (delivery in progress)");
        printf("\n");
    }
    if (m->omitted)
        printf("    ... and %u more recipients\n", m->omitted);
    (void)q;
}

/* postern_list_json - one message as a JSON Lines object. */
static void
postern_list_json(struct postern_q *q, const struct postern_qmsg *m)
{
    struct buf b;
    uint32_t   attempts = 0;
    uint64_t   next = 0;

    buf_init(&b, 512);
    buf_puts(&b, "{\"queue_name\":");
    postern_json_str(&b, postern_qmsg_state(m));
    buf_puts(&b, ",\"queue_id\":");
    postern_json_str(&b, m->qid);
    buf_printf(&b, ",\"arrival_time\":%llu,\"message_size\":%llu,\"forced_expire\":%s",
               (unsigned long long)m->arrival, (unsigned long long)m->size,
               m->expiry < m->arrival + q->lifetime ? "true" : "false");
    buf_printf(&b, ",\"expiry_time\":%llu", (unsigned long long)m->expiry);
    buf_puts(&b, ",\"sender\":");
    postern_json_str(&b, m->sender);
    buf_puts(&b, ",\"recipients\":[");
    for (uint32_t i = 0; i < m->n; i++) {
        const struct postern_qrcpt *r = &m->r[i];
        char                        reason[1200];

        if (r->attempts > attempts)
            attempts = r->attempts;
        if (next == 0 || r->next_attempt < next)
            next = r->next_attempt;
        snprintf(reason, sizeof(reason), "%s%s%s", r->dsn, r->dsn[0] && r->text[0] ? " " : "",
                 r->text);
        buf_puts(&b, i ? ",{\"address\":" : "{\"address\":");
        postern_json_str(&b, r->addr);
        buf_puts(&b, ",\"orig_address\":");
        postern_json_str(&b, r->orig);
        buf_puts(&b, ",\"delay_reason\":");
        postern_json_str(&b, reason);
        buf_puts(&b, ",\"state\":");
        postern_json_str(&b, qrec_state_name(r->state));
        buf_printf(&b, ",\"attempts\":%u,\"next_attempt\":%llu}", r->attempts,
                   (unsigned long long)r->next_attempt);
    }
    buf_printf(&b, "],\"recipients_omitted\":%u,\"attempts\":%u,\"next_attempt\":%llu}\n",
               m->omitted, attempts, (unsigned long long)next);
    fwrite(b.data, 1, b.len, stdout);
    buf_release(&b);
}

/* postern_on_list - list: select, print, count. */
static int
postern_on_list(struct postern_qmsg *m, int fd, void *arg)
{
    struct postern_q *q = arg;

    if (fd >= 0)
        close(fd);
    if (!postern_sel_match(&q->sel, m, q->now))
        return 0;
    q->msgs++;
    q->rcpts += m->n + m->omitted;
    q->bytes += m->size;
    if (m->flags & QREC_F_HOLD)
        q->nhold++;
    else if (m->active)
        q->nactive++;
    else
        q->ndeferred++;
    if (q->json)
        postern_list_json(q, m);
    else
        postern_list_text(q, m);
    return 0;
}

/* postern_on_select - actions: remember the IDs that match. */
static int
postern_on_select(struct postern_qmsg *m, int fd, void *arg)
{
    struct postern_q *q = arg;

    if (fd >= 0)
        close(fd);
    if (postern_sel_match(&q->sel, m, q->now))
        postern_q_add_id(q, m->qid);
    return 0;
}

/* postern_dom_get - the summary row of a domain. */
static struct postern_dom *
postern_dom_get(struct postern_q *q, const char *name)
{
    for (size_t i = 0; i < q->ndoms; i++)
        if (strcmp(q->doms[i].name, name) == 0)
            return &q->doms[i];
    if (q->ndoms == q->capdoms) {
        q->capdoms = q->capdoms ? q->capdoms * 2 : 16;
        q->doms = xrealloc(q->doms, q->capdoms * sizeof(*q->doms));
    }
    memset(&q->doms[q->ndoms], 0, sizeof(q->doms[0]));
    q->doms[q->ndoms].name = xstrdup(name);
    return &q->doms[q->ndoms++];
}

/* postern_on_summary - count each selected message once per destination domain. */
static int
postern_on_summary(struct postern_qmsg *m, int fd, void *arg)
{
    struct postern_q *q = arg;
    int               bucket;

    if (fd >= 0)
        close(fd);
    if (!postern_sel_match(&q->sel, m, q->now))
        return 0;
    bucket = postern_summary_bucket(q->now > m->arrival ? q->now - m->arrival : 0);
    for (uint32_t i = 0; i < m->n; i++) {
        char                dom[256];
        struct postern_dom *d;
        uint32_t            k;

        qrec_domain_of(m->r[i].addr, dom, sizeof(dom));
        for (k = 0; k < i; k++) {
            char other[256];

            qrec_domain_of(m->r[k].addr, other, sizeof(other));
            if (strcmp(other, dom) == 0)
                break;
        }
        if (k < i)
            continue;                       /* this message already counted here */
        d = postern_dom_get(q, dom[0] ? dom : "(none)");
        d->count++;
        d->bytes += m->size;
        d->age[bucket]++;
    }
    return 0;
}

/* postern_dom_cmp - most messages first, then by name. */
static int
postern_dom_cmp(const void *a, const void *b)
{
    const struct postern_dom *x = a, *y = b;

    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* postern_summary_print - the qshape-like table (or JSON Lines). */
static void
postern_summary_print(struct postern_q *q)
{
    static const char *const hdr[POSTERN_SUMMARY_BUCKETS] = {
        "5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+"
    };
    struct postern_dom tot;
    char               name[300];

    qsort(q->doms, q->ndoms, sizeof(*q->doms), postern_dom_cmp);
    memset(&tot, 0, sizeof(tot));
    for (size_t i = 0; i < q->ndoms; i++) {
        tot.count += q->doms[i].count;
        tot.bytes += q->doms[i].bytes;
        for (int b = 0; b < POSTERN_SUMMARY_BUCKETS; b++)
            tot.age[b] += q->doms[i].age[b];
    }
    if (q->json) {
        for (size_t i = 0; i <= q->ndoms; i++) {
            const struct postern_dom *d = i < q->ndoms ? &q->doms[i] : &tot;
            struct buf                b;

            buf_init(&b, 256);
            buf_puts(&b, "{\"domain\":");
            postern_json_str(&b, i < q->ndoms ? d->name : "TOTAL");
            buf_printf(&b, ",\"count\":%llu,\"bytes\":%llu,\"age\":{",
                       (unsigned long long)d->count, (unsigned long long)d->bytes);
            for (int k = 0; k < POSTERN_SUMMARY_BUCKETS; k++)
                buf_printf(&b, "%s\"%s\":%llu", k ? "," : "", hdr[k],
                           (unsigned long long)d->age[k]);
            buf_puts(&b, "}}\n");
            fwrite(b.data, 1, b.len, stdout);
            buf_release(&b);
        }
        return;
    }
    printf("%-30s %6s %10s", "DOMAIN", "COUNT", "BYTES");
    for (int b = 0; b < POSTERN_SUMMARY_BUCKETS; b++)
        printf(" %5s", hdr[b]);
    printf("\n");
    for (size_t i = 0; i <= q->ndoms; i++) {
        const struct postern_dom *d = i == 0 ? &tot : &q->doms[i - 1];

        printf("%-30s %6llu %10llu", i == 0 ? "TOTAL"
               : postern_printable(d->name, name, sizeof(name)),
               (unsigned long long)d->count, (unsigned long long)d->bytes);
        for (int b = 0; b < POSTERN_SUMMARY_BUCKETS; b++)
            printf(" %5llu", (unsigned long long)d->age[b]);
        printf("\n");
    }
}

/* postern_copy_part - copy the spool file to stdout, CRLF as LF: the whole message, its
 * header section or its body. */
static int
postern_copy_part(int fd, int mode)
{
    FILE  *f = fdopen(fd, "r");
    char  *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int    in_head = 1;

    if (f == NULL) {
        close(fd);
        return -1;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        int blank;

        if (n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n') {
            line[n - 2] = '\n';
            line[--n] = '\0';
        }
        blank = n == 1 && line[0] == '\n';
        if (mode == POSTERN_SHOW_ALL || (mode == POSTERN_SHOW_HEADERS && in_head)
            || (mode == POSTERN_SHOW_BODY && !in_head))
            fwrite(line, 1, (size_t)n, stdout);
        if (in_head && blank) {
            in_head = 0;
            if (mode == POSTERN_SHOW_HEADERS)
                break;
        }
    }
    free(line);
    fclose(f);
    return 0;
}

/* postern_show_envelope - the envelope of one message, as `show` prints it. */
static void
postern_show_envelope(const struct postern_q *q, const struct postern_qmsg *m)
{
    char when[32], exp[32], a[600], b[1100];

    postern_fmt_time(m->arrival, when, sizeof(when));
    postern_fmt_time(m->expiry, exp, sizeof(exp));
    printf("queue_id: %s\nstate: %s\nsender: %s\narrival: %s\nexpiry: %s\nsize: %llu\n",
           m->qid, postern_qmsg_state(m),
           m->sender[0] ? postern_printable(m->sender, a, sizeof(a)) : "<>", when, exp,
           (unsigned long long)m->size);
    for (uint32_t i = 0; i < m->n; i++) {
        const struct postern_qrcpt *r = &m->r[i];

        postern_fmt_time(r->next_attempt, when, sizeof(when));
        printf("recipient: %s state=%s attempts=%u next_attempt=%s",
               postern_printable(r->addr, a, sizeof(a)), qrec_state_name(r->state),
               r->attempts, when);
        if (r->text[0] != '\0')
            printf(" last=\"%s%s%s\"", r->dsn, r->dsn[0] ? " " : "",
                   postern_printable(r->text, b, sizeof(b)));
        printf("\n");
    }
    (void)q;
}

/* postern_on_show - the message to show arrived (with its body descriptor). */
static int
postern_on_show(struct postern_qmsg *m, int fd, void *arg)
{
    struct postern_q *q = arg;

    q->shown = 1;
    if (q->show_mode == POSTERN_SHOW_ALL || q->show_mode == POSTERN_SHOW_ENVELOPE)
        postern_show_envelope(q, m);
    if (q->show_mode == POSTERN_SHOW_ALL)
        printf("\n");
    if (fd < 0 && q->show_mode != POSTERN_SHOW_ENVELOPE)
        fd = postern_offline_body(q->cfg, m->qid);
    if (q->show_mode != POSTERN_SHOW_ENVELOPE) {
        if (fd < 0)
            fprintf(stderr, "postern: %s: queue file unavailable\n", m->qid);
        else
            postern_copy_part(fd, q->show_mode);
        fd = -1;
    }
    if (fd >= 0)
        close(fd);
    return 0;
}

/* postern_on_show_offline - offline show: only the wanted message. */
static int
postern_on_show_offline(struct postern_qmsg *m, int fd, void *arg)
{
    struct postern_q *q = arg;

    if (q->sel.nqids == 0 || strcmp(m->qid, q->sel.qids[0]) != 0)
        return 0;
    postern_on_show(m, fd, arg);
    return -1;
}

/* postern_on_result - one action's outcome. */
static void
postern_on_result(const char *qid, uint32_t status, const char *text, void *arg)
{
    struct postern_q *q = arg;

    if (status == 0) {
        q->ok++;
        printf("%s: %s\n", qid, text);
    } else {
        q->failed++;
        fprintf(stderr, "postern: %s: %s\n", qid, text);
    }
}

/* postern_read_cmd - list, show or summary: from qmgr, or offline when it is down. */
static int
postern_read_cmd(struct postern_q *q, uint32_t cmd, char *const *args, size_t nargs,
                 struct postern_reply *r)
{
    int rc = postern_call(q->cfg, cmd, args, nargs, r);

    if (rc == -1 || (rc == 0 && r->status == EAGAIN)) {
        if (rc == 0)
            fprintf(stderr, "postern: %s\n", r->text);
        fprintf(stderr, "postern: qmgr is not running: reading the queue database "
                "directly (read-only)\n");
        if (cmd == IPC_CTL_SHOW)
            r->on_msg = postern_on_show_offline;
        return postern_offline_list(q->cfg, r) == -1 ? -1 : 0;
    }
    if (rc == -2)
        return -1;
    if (r->status != 0) {
        fprintf(stderr, "postern: %s\n", r->text[0] ? r->text : strerror((int)r->status));
        return -1;
    }
    return 0;
}

/* postern_stdin_ids - "-": queue IDs from stdin, one per line (blank lines skipped). */
static int
postern_stdin_ids(struct postern_sel *sel)
{
    char   *line = NULL, err[256];
    size_t  cap = 0;
    ssize_t n;
    int     rc = 0;

    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        if (n == 0)
            continue;
        /* The first word: lines of `postern queue list` work as input too. */
        line[strcspn(line, " \t*!")] = '\0';
        if (postern_sel_add_qid(sel, line, err, sizeof(err)) == -1) {
            fprintf(stderr, "postern: stdin: %s\n", err);
            rc = -1;
            break;
        }
    }
    free(line);
    return rc;
}

/* postern_queue_action - hold, release, delete, retry, expire. */
static int
postern_queue_action(struct postern_q *q, uint32_t cmd)
{
    struct postern_reply r;
    int                  rc;

    memset(&r, 0, sizeof(r));
    if (!postern_sel_given(&q->sel)) {
        fprintf(stderr, "postern: queue %s: name the messages: queue IDs, -, --all or a "
                "selector (see postern queue --help)\n", q->verb);
        return 2;
    }
    if (q->sel.all || postern_sel_criteria(&q->sel)) {
        r.on_msg = postern_on_select;
        r.arg = q;
        if ((rc = postern_call(q->cfg, IPC_CTL_LIST, NULL, 0, &r)) != 0 || r.status != 0) {
            if (rc == -1)
                fprintf(stderr, "postern: postern is not running\n");
            else if (rc == 0)
                fprintf(stderr, "postern: %s\n", r.text);
            return 1;
        }
    } else {
        for (size_t i = 0; i < q->sel.nqids; i++)
            postern_q_add_id(q, q->sel.qids[i]);
    }
    memset(&r, 0, sizeof(r));
    r.on_result = postern_on_result;
    r.arg = q;
    rc = postern_call(q->cfg, cmd, q->ids, q->nids, &r);
    if (rc == -1) {
        fprintf(stderr, "postern: postern is not running (no control socket)\n");
        return 1;
    }
    if (rc == -2)
        return 1;
    if (r.status != 0 && r.status != ENOENT) {
        fprintf(stderr, "postern: %s\n", r.text);
        return 1;
    }
    if (q->nids == 0)
        fprintf(stderr, "postern: no messages selected\n");
    else
        fprintf(stderr, "postern: %zu messages %s%s\n", q->ok, q->verb,
                q->failed ? ", some not found" : "");
    return q->failed ? 1 : 0;
}

/* postern_queue_run - parse the subcommand's arguments and run it. */
static int
postern_queue_run(struct postern_q *q, const char *sub, int argc, char **argv)
{
    static const struct {
        const char *name;
        uint32_t    cmd;
        const char *verb;
    } acts[] = {
        { "hold", IPC_CTL_HOLD, "held" }, { "release", IPC_CTL_RELEASE, "released" },
        { "delete", IPC_CTL_DELETE, "deleted" }, { "retry", IPC_CTL_RETRY, "due now" },
        { "expire", IPC_CTL_EXPIRE, "expired" },
    };
    struct postern_reply r;
    char                 err[512];
    int                  is_list = strcmp(sub, "list") == 0, is_show = strcmp(sub, "show") == 0;
    int                  is_summary = strcmp(sub, "summary") == 0;
    size_t               a;

    for (a = 0; a < sizeof(acts) / sizeof(acts[0]) && strcmp(sub, acts[a].name) != 0; a++)
        ;
    if (!is_list && !is_show && !is_summary && a == sizeof(acts) / sizeof(acts[0])) {
        fprintf(stderr, "postern: queue: unknown command \"%s\"\n", sub);
        postern_queue_usage(stderr);
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        int         rc;

        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            postern_queue_usage(stdout);
            return 0;
        }
        if (strcmp(o, "--json") == 0 && (is_list || is_summary)) {
            q->json = 1;
            continue;
        }
        if (is_show && (strcmp(o, "--headers") == 0 || strcmp(o, "--body") == 0
                        || strcmp(o, "--envelope") == 0)) {
            q->show_mode = o[2] == 'h' ? POSTERN_SHOW_HEADERS : o[2] == 'b'
                           ? POSTERN_SHOW_BODY : POSTERN_SHOW_ENVELOPE;
            continue;
        }
        if (o[0] == '-' && !is_show) {
            rc = postern_sel_option(&q->sel, o, i + 1 < argc ? argv[i + 1] : NULL, err,
                                    sizeof(err));
            if (rc == -1) {
                fprintf(stderr, "postern: queue %s: %s\n", sub, err);
                return 2;
            }
            if (rc >= 0) {
                i += rc;
                continue;
            }
            fprintf(stderr, "postern: queue %s: unknown option %s\n", sub, o);
            return 2;
        }
        if (o[0] == '-') {
            fprintf(stderr, "postern: queue show: unknown option %s\n", o);
            return 2;
        }
        if (postern_sel_add_qid(&q->sel, o, err, sizeof(err)) == -1) {
            fprintf(stderr, "postern: queue %s: %s\n", sub, err);
            return 2;
        }
    }
    if (q->sel.stdin_ids && postern_stdin_ids(&q->sel) == -1)
        return 2;
    memset(&r, 0, sizeof(r));
    r.arg = q;
    if (is_show) {
        if (q->sel.nqids != 1) {
            fprintf(stderr, "postern: queue show: one queue ID\n");
            return 2;
        }
        r.on_msg = postern_on_show;
        if (postern_read_cmd(q, IPC_CTL_SHOW, q->sel.qids, 1, &r) == -1)
            return 1;
        if (!q->shown) {
            fprintf(stderr, "postern: %s: no such message\n", q->sel.qids[0]);
            return 1;
        }
        return 0;
    }
    if (is_list || is_summary) {
        r.on_msg = is_list ? postern_on_list : postern_on_summary;
        if (postern_read_cmd(q, IPC_CTL_LIST, NULL, 0, &r) == -1)
            return 1;
        if (is_summary)
            postern_summary_print(q);
        else if (!q->json && q->msgs == 0)
            printf("Mail queue is empty\n");
        else if (!q->json)
            printf("-- %llu Kbytes in %llu messages, %llu recipients (%llu active, %llu "
                   "deferred, %llu held)\n", (unsigned long long)((q->bytes + 1023) / 1024),
                   (unsigned long long)q->msgs, (unsigned long long)q->rcpts,
                   (unsigned long long)q->nactive, (unsigned long long)q->ndeferred,
                   (unsigned long long)q->nhold);
        return 0;
    }
    q->verb = acts[a].verb;
    return postern_queue_action(q, acts[a].cmd);
}

/* postern_queue_main - set up, run, clean up. */
static int
postern_queue_main(struct postern_ctx *ctx, const char *sub, int argc, char **argv)
{
    struct postern_q q;
    struct config   *cfg;
    int              rc;

    if ((cfg = postern_load(ctx)) == NULL)
        return 1;
    memset(&q, 0, sizeof(q));
    q.cfg = cfg;
    q.now = (uint64_t)time(NULL);
    q.lifetime = config_time_ms(cfg, "queue_lifetime") / 1000;
    postern_sel_init(&q.sel);
    fflush(stdout);
    rc = postern_queue_run(&q, sub, argc, argv);
    fflush(stdout);
    for (size_t i = 0; i < q.nids; i++)
        free(q.ids[i]);
    free(q.ids);
    for (size_t i = 0; i < q.ndoms; i++)
        free(q.doms[i].name);
    free(q.doms);
    postern_sel_free(&q.sel);
    config_free(&cfg);
    return rc;
}

int
postern_cmd_queue(struct postern_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0
        || strcmp(argv[1], "help") == 0) {
        postern_queue_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    return postern_queue_main(ctx, argv[1], argc - 2, argv + 2);
}

int
postern_mailq(struct postern_ctx *ctx, int argc, char **argv)
{
    return postern_queue_main(ctx, "list", argc - 1, argv + 1);
}
