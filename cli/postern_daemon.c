/* postern_daemon - `postern stats [--json]`, `log-level LEVEL`, `pause|resume
 * delivery|smtpd`, and the daemons' part of `postern status`, over public/control.
 *
 * master answers STATS with every live daemon (pid, slot, uptime, restarts of its slot)
 * and the counters of those that announced IPC_CAP_COUNTERS (master's own, qmgr's; smtpd
 * and the agents later); a daemon without counters is listed with "-". See doc/status.md
 * for the counter names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "ipc_msg.h"
#include "postern.h"

/* Counters per daemon, decoded from CTL_STATS. */
struct postern_stats {
    int       have;
    uint32_t  nd;
    char    **daemon;
    uint32_t *slot, *pid, *uptime, *restarts, *answered;
    uint32_t  nc;
    uint32_t *cd;
    char    **cname;
    uint64_t *cval;
};

/* postern_on_stats - copy the CTL_STATS frame's arrays (they point into the frame). */
static void
postern_on_stats(const struct ipc_ctl_stats *st, void *arg)
{
    struct postern_stats *s = arg;
    uint32_t              nd = st->daemon_n, nc = st->cname_n;

    if (st->slot_n != nd || st->pid_n != nd || st->uptime_n != nd || st->restarts_n != nd
        || st->answered_n != nd || st->cdaemon_n != nc || st->cvalue_len != nc * 8u)
        return;
    s->have = 1;
    s->nd = nd;
    s->nc = nc;
    s->daemon = xcalloc(nd + 1, sizeof(*s->daemon));
    s->slot = xcalloc(nd + 1, sizeof(uint32_t));
    s->pid = xcalloc(nd + 1, sizeof(uint32_t));
    s->uptime = xcalloc(nd + 1, sizeof(uint32_t));
    s->restarts = xcalloc(nd + 1, sizeof(uint32_t));
    s->answered = xcalloc(nd + 1, sizeof(uint32_t));
    s->cd = xcalloc(nc + 1, sizeof(uint32_t));
    s->cname = xcalloc(nc + 1, sizeof(*s->cname));
    s->cval = xcalloc(nc + 1, sizeof(uint64_t));
    for (uint32_t i = 0; i < nd; i++) {
        s->daemon[i] = xstrdup(st->daemon[i]);
        s->slot[i] = st->slot[i];
        s->pid[i] = st->pid[i];
        s->uptime[i] = st->uptime[i];
        s->restarts[i] = st->restarts[i];
        s->answered[i] = st->answered[i];
    }
    for (uint32_t i = 0; i < nc; i++) {
        uint64_t v = 0;

        for (int b = 0; b < 8; b++)
            v = (v << 8) | st->cvalue[i * 8 + (uint32_t)b];
        s->cd[i] = st->cdaemon[i] < nd ? st->cdaemon[i] : 0;
        s->cname[i] = xstrdup(st->cname[i]);
        s->cval[i] = v;
    }
}

static void
postern_stats_free(struct postern_stats *s)
{
    for (uint32_t i = 0; i < s->nd; i++)
        free(s->daemon[i]);
    for (uint32_t i = 0; i < s->nc; i++)
        free(s->cname[i]);
    free(s->daemon);
    free(s->slot);
    free(s->pid);
    free(s->uptime);
    free(s->restarts);
    free(s->answered);
    free(s->cd);
    free(s->cname);
    free(s->cval);
    memset(s, 0, sizeof(*s));
}

/* postern_stats_get - ask master; 0 with s filled, -1 not running, -2 other error. */
static int
postern_stats_get(const struct config *cfg, struct postern_stats *s)
{
    struct postern_reply r;
    int                  rc;

    memset(s, 0, sizeof(*s));
    memset(&r, 0, sizeof(r));
    r.on_stats = postern_on_stats;
    r.arg = s;
    if ((rc = postern_call(cfg, IPC_CTL_STATS_CMD, NULL, 0, &r)) != 0)
        return rc;
    if (r.status != 0 || !s->have) {
        fprintf(stderr, "postern: stats: %s\n", r.text[0] ? r.text : "no answer");
        postern_stats_free(s);
        return -2;
    }
    return 0;
}

/* postern_counter - the value of counter name of daemon index d; -1 if absent. */
static long long
postern_counter(const struct postern_stats *s, const char *daemon, const char *name)
{
    long long sum = -1;

    for (uint32_t i = 0; i < s->nc; i++) {
        if (strcmp(s->daemon[s->cd[i]], daemon) == 0 && strcmp(s->cname[i], name) == 0)
            sum = (sum < 0 ? 0 : sum) + (long long)s->cval[i];
    }
    return sum;
}

int
postern_daemon_status(const struct config *cfg)
{
    struct postern_stats s;
    char                 up[32], user[64];
    long long            v, sessions = -1;

    if (postern_stats_get(cfg, &s) != 0)
        return -1;
    printf("  %-8s %-8s %-5s %-9s %-8s %s\n", "PID", "DAEMON", "SLOT", "UP", "RESTARTS",
           "COUNTERS");
    for (uint32_t i = 1; i < s.nd; i++) {
        postern_fmt_duration(s.uptime[i], up, sizeof(up));
        printf("  %-8u %-8s %-5u %-9s %-8u %s\n", s.pid[i], s.daemon[i], s.slot[i], up,
               s.restarts[i], s.answered[i] ? "yes" : "-");
        if (strcmp(s.daemon[i], "smtpd") == 0) {
            for (uint32_t k = 0; k < s.nc; k++)
                if (s.cd[k] == i && strcmp(s.cname[k], "sessions") == 0)
                    sessions = (sessions < 0 ? 0 : sessions) + (long long)s.cval[k];
        }
    }
    if (sessions >= 0)
        printf("sessions open: %lld\n", sessions);
    else
        printf("sessions open: - (smtpd does not report counters yet)\n");
    if ((v = postern_counter(&s, "qmgr", "queue.messages")) >= 0)
        printf("queue: %lld messages (%lld held), %lld bytes; recipients in memory %lld, "
               "in flight %lld; delivery %s\n", v,
               postern_counter(&s, "qmgr", "queue.held"),
               postern_counter(&s, "qmgr", "queue.bytes"),
               postern_counter(&s, "qmgr", "queue.rcpts_in_memory"),
               postern_counter(&s, "qmgr", "queue.rcpts_in_flight"),
               postern_counter(&s, "qmgr", "delivery_paused") > 0 ? "PAUSED" : "running");
    else
        printf("queue: - (qmgr did not answer)\n");
    (void)user;
    postern_stats_free(&s);
    return 0;
}

int
postern_cmd_stats(struct postern_ctx *ctx, int argc, char **argv)
{
    struct postern_stats s;
    struct config       *cfg;
    int                  json = 0, rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "usage: postern stats [--json]\n");
            return 2;
        }
    }
    if ((cfg = postern_load(ctx)) == NULL)
        return 1;
    rc = postern_stats_get(cfg, &s);
    config_free(&cfg);
    if (rc == -1) {
        fprintf(stderr, "postern: not running\n");
        return 1;
    }
    if (rc != 0)
        return 1;
    if (json) {
        struct buf b;

        buf_init(&b, 1024);
        buf_printf(&b, "{\"time\":%lld,\"daemons\":[", (long long)time(NULL));
        for (uint32_t i = 0; i < s.nd; i++) {
            int first = 1;

            buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
            postern_json_str(&b, s.daemon[i]);
            buf_printf(&b, ",\"slot\":%u,\"pid\":%u,\"uptime\":%u,\"restarts\":%u,"
                       "\"counters\":", s.slot[i], s.pid[i], s.uptime[i], s.restarts[i]);
            if (!s.answered[i]) {
                buf_puts(&b, "null}");
                continue;
            }
            buf_puts(&b, "{");
            for (uint32_t k = 0; k < s.nc; k++) {
                if (s.cd[k] != i)
                    continue;
                if (!first)
                    buf_puts(&b, ",");
                first = 0;
                postern_json_str(&b, s.cname[k]);
                buf_printf(&b, ":%llu", (unsigned long long)s.cval[k]);
            }
            buf_puts(&b, "}}");
        }
        buf_puts(&b, "]}\n");
        fwrite(b.data, 1, b.len, stdout);
        buf_release(&b);
    } else {
        for (uint32_t i = 0; i < s.nd; i++) {
            if (i == 0)
                printf("%s pid=%u:", s.daemon[i], s.pid[i]);
            else
                printf("%s[%u] pid=%u restarts=%u:", s.daemon[i], s.slot[i], s.pid[i],
                       s.restarts[i]);
            if (!s.answered[i])
                printf(" (no counters)");
            printf("\n");
            for (uint32_t k = 0; k < s.nc; k++)
                if (s.cd[k] == i)
                    printf("  %-28s %llu\n", s.cname[k], (unsigned long long)s.cval[k]);
        }
    }
    postern_stats_free(&s);
    return 0;
}

/* postern_simple - a command whose whole answer is CTL_DONE. */
static int
postern_simple(struct postern_ctx *ctx, uint32_t cmd, char *const *args, size_t nargs)
{
    struct postern_reply r;
    struct config       *cfg;
    int                  rc;

    if ((cfg = postern_load(ctx)) == NULL)
        return 1;
    memset(&r, 0, sizeof(r));
    rc = postern_call(cfg, cmd, args, nargs, &r);
    config_free(&cfg);
    if (rc == -1) {
        fprintf(stderr, "postern: not running\n");
        return 1;
    }
    if (rc != 0)
        return 1;
    if (r.status != 0) {
        fprintf(stderr, "postern: %s\n", r.text[0] ? r.text : strerror((int)r.status));
        return 1;
    }
    printf("postern: %s\n", r.text);
    return 0;
}

int
postern_cmd_log_level(struct postern_ctx *ctx, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: postern log-level err|warn|info|debug\n");
        return 2;
    }
    return postern_simple(ctx, IPC_CTL_LOG_LEVEL_CMD, argv + 1, 1);
}

int
postern_cmd_pause(struct postern_ctx *ctx, int argc, char **argv)
{
    int pause = strcmp(argv[0], "pause") == 0;

    if (argc != 2 || (strcmp(argv[1], "delivery") != 0 && strcmp(argv[1], "smtpd") != 0)) {
        fprintf(stderr, "usage: postern %s delivery|smtpd\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "delivery") == 0)
        return postern_simple(ctx, pause ? IPC_CTL_PAUSE_DELIVERY : IPC_CTL_RESUME_DELIVERY,
                              NULL, 0);
    return postern_simple(ctx, pause ? IPC_CTL_PAUSE_SMTPD : IPC_CTL_RESUME_SMTPD, NULL, 0);
}
