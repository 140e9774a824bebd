/* master_watch - replace the daemons whose maps, rule files, certificates or passwd changed.
 *
 * smtpd and qmgr open their maps, rule files and keys before they chroot, and smtpd reads the
 * passwd and group databases then too, so a file changed later (`postern map build`,
 * `newaliases`, a certbot renewal, `useradd`) would need `postern reload`. Instead master,
 * which is neither chrooted nor unprivileged, lists the files the configuration makes each
 * daemon load (below), and every watch_interval stat()s them: nothing is opened or parsed here.
 * A file that changed and then looked the same for MASTER_WATCH_SETTLE_MS
 * (master_watch_state.c), with no other watched file still changing (a certificate and its key
 * are renewed together), is logged as `<file> changed: restarting <daemons>` and the daemons
 * that use it are replaced (master_spawn_replace: a new smtpd takes over only once it loaded
 * everything, so a broken file leaves the old one serving, with the reason in the log). A file
 * that disappears is logged and nothing is restarted. The list is made anew at start and at
 * every reload, from the configuration that the new daemons read.
 *
 * Watched: smtpd: virtual_alias_map, alias_map, mailbox_map, smtpd_auth_map and
 * smtpd_sender_login_map (.db), the access tables and header/mime_header/body_checks files,
 * smtpd_tls_cert_file, _key_file, _client_ca_file, the smtpd_tls_sni_certs files, /etc/passwd
 * and /etc/group (the users of public/submit); qmgr: transport_map and smtp_tls_policy_map
 * (.db); smtp: smtp_tls_ca_file, else the system CA bundle, smtp_sasl_password_map (.db)
 * and dnssec_trust_anchor_file.
 * local is not restarted: it reopens mailbox_map itself when it changes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "content.h"
#include "ev.h"
#include "ipc_msg.h"
#include "log.h"
#include "master.h"
#include "policy.h"
#include "tls.h"

#define SMTPD   MASTER_KIND_BIT(IPC_PEER_SMTPD)
#define QMGR    MASTER_KIND_BIT(IPC_PEER_QMGR)
#define SMTP    MASTER_KIND_BIT(IPC_PEER_SMTP)

/* One watched file and the daemons that load it. */
struct master_watch_file {
    char                     *path;
    unsigned                  kinds;            /* MASTER_KIND_BIT()s */
    struct master_watch_state state;
    enum master_watch_change  change;           /* of the last look */
};

struct master_watch {
    struct master_watch_file *files;
    size_t                    n;
    uint64_t                  interval_ms;
    uint64_t                  timer;
};

/* master_watch_add - watch path (taken over) for kinds; a path listed already gets them too. */
static void
master_watch_add(struct master_watch *w, char *path, unsigned kinds)
{
    struct master_watch_file *f;

    for (size_t i = 0; i < w->n; i++) {
        if (strcmp(w->files[i].path, path) == 0) {
            w->files[i].kinds |= kinds;
            free(path);
            return;
        }
    }
    w->files = xrealloc(w->files, (w->n + 1) * sizeof(*w->files));
    f = &w->files[w->n++];
    memset(f, 0, sizeof(*f));
    f->path = path;
    f->kinds = kinds;
}

/* master_watch_key - the file of a path setting, if it is set; is_map: its SOURCE.db, which
 * map_open() reads (libcommon/map.h). */
static void
master_watch_key(struct master_watch *w, const struct config *cfg, const char *key,
                 int is_map, unsigned kinds)
{
    const char *path = config_path(cfg, key);

    if (*path != '\0')
        master_watch_add(w, is_map ? xasprintf("%s.db", path) : xstrdup(path), kinds);
}

/* master_watch_tables - the files of a list of `type:path` table specs (libcommon/policy). */
static void
master_watch_tables(struct master_watch *w, const struct config *cfg, const char *key)
{
    char *const *specs;
    size_t       n;

    specs = config_list(cfg, key, &n);
    for (size_t i = 0; i < n; i++) {
        char *path = policy_spec_file(specs[i], config_dir(cfg));

        if (path != NULL)
            master_watch_add(w, path, SMTPD);
    }
}

/* master_watch_sni - the files of smtpd_tls_sni_certs: `cert:key` or one file holding both,
 * relative to the configuration directory (as smtpd reads them). */
static void
master_watch_sni(struct master_watch *w, const struct config *cfg)
{
    char *const *items;
    size_t       n;

    items = config_list(cfg, "smtpd_tls_sni_certs", &n);
    for (size_t i = 0; i < n; i++) {
        const char *item = items[i];

        while (*item != '\0') {
            size_t len = strcspn(item, ":");

            if (len > 0 && item[0] == '/')
                master_watch_add(w, xstrndup(item, len), SMTPD);
            else if (len > 0)
                master_watch_add(w, xasprintf("%s/%.*s", config_dir(cfg), (int)len, item),
                                 SMTPD);
            item += len + (item[len] == ':');
        }
    }
}

/* master_watch_list - every file the configuration makes a daemon load. */
static void
master_watch_list(struct master_watch *w, const struct config *cfg)
{
    static const char *const maps[] = {
        "virtual_alias_map", "alias_map", "mailbox_map", "smtpd_auth_map",
        "smtpd_sender_login_map"
    };
    static const char *const tls[] = {
        "smtpd_tls_cert_file", "smtpd_tls_key_file", "smtpd_tls_client_ca_file"
    };

    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
        master_watch_key(w, cfg, maps[i], 1, SMTPD);
    for (int i = 0; i < POLICY_STAGES; i++)
        master_watch_tables(w, cfg, policy_stage_key((enum policy_stage)i));
    for (int i = 0; i < CONTENT_SETS; i++)
        master_watch_tables(w, cfg, content_set_key((enum content_set)i));
    for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++)
        master_watch_key(w, cfg, tls[i], 0, SMTPD);
    master_watch_sni(w, cfg);
    /* every smtpd serves public/submit, whose users it reads at start (smtpd_submit.c) */
    master_watch_add(w, xstrdup("/etc/passwd"), SMTPD);
    master_watch_add(w, xstrdup("/etc/group"), SMTPD);
    master_watch_key(w, cfg, "transport_map", 1, QMGR);
    master_watch_key(w, cfg, "smtp_tls_policy_map", 1, QMGR);
    master_watch_key(w, cfg, "smtp_tls_ca_file", 0, SMTP);
    /* without one, the smtp agent loaded the system bundle (update-ca-certificates) */
    if (*config_path(cfg, "smtp_tls_ca_file") == '\0')
        master_watch_add(w, xstrdup(tls_default_ca_file()), SMTP);
    master_watch_key(w, cfg, "smtp_sasl_password_map", 1, SMTP);
    /* DANE's trust anchor (dns-root-data updates it at a root key rollover) */
    master_watch_key(w, cfg, "dnssec_trust_anchor_file", 0, SMTP);
}

/* master_watch_names - "smtpd", "smtpd, qmgr": the daemons of a set of kinds. */
static void
master_watch_names(unsigned kinds, struct buf *out)
{
    static const unsigned order[] = { IPC_PEER_SMTPD, IPC_PEER_QMGR, IPC_PEER_SMTP };

    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (kinds & MASTER_KIND_BIT(order[i]))
            buf_printf(out, "%s%s", out->len ? ", " : "", master_spawn_name(order[i]));
    }
}

/* master_watch_act - every settled change: log it, note it as loaded, replace its daemons. */
static void
master_watch_act(struct master *m)
{
    struct master_watch *w = m->watch;
    struct buf          *names = buf_new(64);
    unsigned             kinds = 0;

    for (size_t i = 0; i < w->n; i++) {
        struct master_watch_file *f = &w->files[i];

        if (f->change != MASTER_WATCH_CHANGED)
            continue;
        buf_reset(names);
        master_watch_names(f->kinds, names);
        log_info("%s changed: restarting %s", f->path, buf_cstr(names));
        master_watch_state_accept(&f->state);
        kinds |= f->kinds;
    }
    buf_free(&names);
    if (kinds != 0)
        master_spawn_replace(m, kinds);
}

static void master_watch_arm(struct master *, uint64_t delay_ms);

/* master_watch_tick - stat every file; act once nothing is changing any more. */
static void
master_watch_tick(void *arg)
{
    struct master       *m = arg;
    struct master_watch *w = m->watch;
    uint64_t             now = ev_now_ms();
    int                  settling = 0, changed = 0;

    w->timer = 0;
    for (size_t i = 0; i < w->n; i++) {
        struct master_watch_file *f = &w->files[i];
        struct master_watch_stat  st;

        master_watch_state_read(f->path, &st);
        f->change = master_watch_state_step(&f->state, &st, now, MASTER_WATCH_SETTLE_MS);
        settling |= f->change == MASTER_WATCH_SETTLING;
        changed |= f->change == MASTER_WATCH_CHANGED;
        if (f->change == MASTER_WATCH_GONE)
            log_warnx("%s is gone: not restarting for it; the running daemons keep what "
                      "they loaded", f->path);
    }
    if (changed && !settling)
        master_watch_act(m);
    /* a change is confirmed after the settle time, not a whole interval later */
    master_watch_arm(m, settling || changed ? MASTER_WATCH_SETTLE_MS / 2 : w->interval_ms);
}

/* master_watch_arm - the next look in delay_ms, never later than the interval. */
static void
master_watch_arm(struct master *m, uint64_t delay_ms)
{
    struct master_watch *w = m->watch;

    if (delay_ms > w->interval_ms)
        delay_ms = w->interval_ms;
    w->timer = ev_timer_add(m->ev, delay_ms, master_watch_tick, m);
}

void
master_watch_start(struct master *m)
{
    struct master_watch *w;

    master_watch_free(m);
    w = m->watch = xcalloc(1, sizeof(*m->watch));
    w->interval_ms = config_time_ms(m->cfg, "watch_interval");
    if (w->interval_ms == 0) {
        log_info("watch_interval = 0: changed maps, rule files and certificates take "
                 "postern reload");
        return;
    }
    master_watch_list(w, m->cfg);
    for (size_t i = 0; i < w->n; i++) {
        struct master_watch_stat st;

        master_watch_state_read(w->files[i].path, &st);
        master_watch_state_init(&w->files[i].state, &st);
    }
    log_info("watching %zu files every %llums", w->n, (unsigned long long)w->interval_ms);
    master_watch_arm(m, w->interval_ms);
}

void
master_watch_free(struct master *m)
{
    struct master_watch *w = m->watch;

    if (w == NULL)
        return;
    ev_timer_del(m->ev, w->timer);
    for (size_t i = 0; i < w->n; i++)
        free(w->files[i].path);
    free(w->files);
    free(w);
    m->watch = NULL;
}
