/* master - the Postern supervisor: `master -c DIR [-f]`.
 *
 * Loads the configuration (an error prints "file:line: message" and exits 1; with -n it
 * then only checks what master alone validates, the listener addresses), binds every
 * listener and creates the queue layout while it still holds root, takes the pid file, and
 * without -f becomes a daemon that logs to syslog; the process that started it exits 0 only
 * once the daemon has written its pid file, so `postern start` knows whether it worked. Then
 * it runs the event loop: SIGCHLD reaps and restarts daemons (master_spawn.c), a timer
 * rotates the session-ticket keys (master_tls.c), another replaces the daemons whose maps,
 * rule files or certificates changed (master_watch.c), public/control serves `postern`
 * commands (master_control.c), SIGHUP reloads, SIGTERM/SIGINT stop
 * everything within MASTER_STOP_WAIT_MS and remove the pid file. master never parses
 * network input and keeps its privileges. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "ev.h"
#include "log.h"
#include "master.h"

static const struct {
    const char *name;
    int         facility;
} master_facilities[] = {
    { "mail", LOG_MAIL },     { "daemon", LOG_DAEMON }, { "user", LOG_USER },
    { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
    { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
    { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

/* master_usage - print the synopsis and exit 2. */
static void __attribute__((noreturn))
master_usage(void)
{
    fprintf(stderr, "usage: master [-c config-directory] [-f | -n]\n");
    exit(2);
}

/* master_log_settings - log level and syslog facility from cfg; -1 with err if invalid. */
static int
master_log_settings(const struct config *cfg, enum log_level *level, int *facility,
                    char *err, size_t errlen)
{
    const char *lvl = config_str(cfg, "log_level");
    const char *fac = config_str(cfg, "syslog_facility");

    if (log_level_parse(lvl, level) == -1) {
        snprintf(err, errlen, "log_level: unknown level \"%s\"", lvl);
        return -1;
    }
    for (size_t i = 0; i < sizeof(master_facilities) / sizeof(master_facilities[0]); i++) {
        if (strcasecmp(fac, master_facilities[i].name) == 0) {
            *facility = master_facilities[i].facility;
            return 0;
        }
    }
    snprintf(err, errlen, "syslog_facility: unknown facility \"%s\"", fac);
    return -1;
}

/* master_exe_dir - the folder of the running master binary (xmalloc'd). */
static char *
master_exe_dir(void)
{
    char    path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

    if (n <= 0)
        fatal("readlink /proc/self/exe");
    path[n] = '\0';
    return xstrdup(dirname(path));
}

/* master_set_daemon_dir - daemon_directory, or master's own folder when it is empty. */
static void
master_set_daemon_dir(struct master *m)
{
    const char *dir = config_path(m->cfg, "daemon_directory");

    free(m->daemon_dir);
    m->daemon_dir = xstrdup(*dir ? dir : m->exe_dir);
}

/* master_daemonise - detach from the terminal. Returns the write end of a pipe on which the
 * daemon reports readiness ("K"); the original process exits 0 on "K", 1 on EOF. */
static int
master_daemonise(void)
{
    int   ready[2], devnull;
    pid_t pid;
    char  c;

    if (pipe2(ready, O_CLOEXEC) == -1)
        fatal("pipe");
    if ((pid = fork()) == -1)
        fatal("fork");
    if (pid > 0) {
        ssize_t n;

        close(ready[1]);
        while ((n = read(ready[0], &c, 1)) == -1 && errno == EINTR)
            continue;
        if (n == 1 && c == 'K')
            _exit(0);
        fprintf(stderr, "master: failed to start; see the system log\n");
        _exit(1);
    }
    close(ready[0]);
    if (setsid() == -1)
        fatal("setsid");
    if ((pid = fork()) == -1)
        fatal("fork");
    if (pid > 0)
        _exit(0);
    if (chdir("/") == -1)
        fatal("chdir /");
    if ((devnull = open("/dev/null", O_RDWR)) == -1)
        fatal("open /dev/null");
    if (dup2(devnull, 0) == -1 || dup2(devnull, 1) == -1 || dup2(devnull, 2) == -1)
        fatal("dup2 /dev/null");
    if (devnull > 2)
        close(devnull);
    return ready[1];
}

/* master_finish - every daemon is gone (or was killed): leave the loop. */
static void
master_finish(struct master *m)
{
    ev_timer_del(m->ev, m->stop_timer);
    m->stop_timer = 0;
    ev_stop(m->ev);
}

/* master_stop_last - the SIGKILLed daemons were given a moment; stop regardless. */
static void
master_stop_last(void *arg)
{
    struct master *m = arg;

    m->stop_timer = 0;
    if (master_spawn_running(m) > 0)
        log_warnx("%zu daemons not reaped after SIGKILL", master_spawn_running(m));
    master_finish(m);
}

/* master_stop_timeout - daemons had MASTER_STOP_WAIT_MS to exit: SIGKILL the rest. */
static void
master_stop_timeout(void *arg)
{
    struct master *m = arg;

    master_spawn_kill(m);
    m->stop_timer = ev_timer_add(m->ev, 2000, master_stop_last, m);
}

/* master_on_stop - SIGTERM or SIGINT: stop every daemon, then exit. */
static void
master_on_stop(int sig, void *arg)
{
    struct master *m = arg;

    if (m->stopping) {
        log_info("signal=%s: already stopping", sig == SIGINT ? "INT" : "TERM");
        return;
    }
    m->stopping = 1;
    log_info("signal=%s: stopping %zu daemons", sig == SIGINT ? "INT" : "TERM",
             master_spawn_running(m));
    master_spawn_stop(m);
    if (master_spawn_running(m) == 0)
        master_finish(m);
    else
        m->stop_timer = ev_timer_add(m->ev, MASTER_STOP_WAIT_MS, master_stop_timeout, m);
}

/* master_on_child - SIGCHLD: reap; when stopping and the last daemon is gone, leave. */
static void
master_on_child(int sig, void *arg)
{
    struct master *m = arg;

    (void)sig;
    master_spawn_reap(m);
    if (m->stopping && master_spawn_running(m) == 0)
        master_finish(m);
}

/* master_on_reload - SIGHUP: read the config again; if it is valid, replace the daemons. */
static void
master_on_reload(int sig, void *arg)
{
    struct master          *m = arg;
    struct master_listeners nl = { NULL, 0 };
    struct config          *cfg;
    enum log_level          level;
    int                     facility;
    char                    err[1024];

    (void)sig;
    if (m->stopping)
        return;
    log_info("signal=HUP: reloading %s/%s", m->confdir, CONFIG_FILE);
    if ((cfg = config_load(m->confdir, err, sizeof(err))) == NULL) {
        log_err("reload failed: %s; keeping the running configuration", err);
        return;
    }
    if (master_log_settings(cfg, &level, &facility, err, sizeof(err)) == -1) {
        log_err("reload failed: %s; keeping the running configuration", err);
        config_free(&cfg);
        return;
    }
    if (strcmp(config_path(cfg, "queue_directory"),
               config_path(m->cfg, "queue_directory")) != 0) {
        log_err("reload failed: queue_directory changed, which takes a full restart "
                "(postern stop; postern start); keeping the running configuration");
        config_free(&cfg);
        return;
    }
    if (master_listen_open(cfg, &m->listeners, &nl, err, sizeof(err)) == -1 ||
        master_listen_add_submit(cfg, &m->listeners, &nl, err, sizeof(err)) == -1) {
        master_listen_close(&nl);
        log_err("reload failed: %s; changing this listener may take a full restart "
                "(postern stop; postern start); keeping the running configuration", err);
        config_free(&cfg);
        return;
    }
    if (!master_listen_same(&nl, &m->listeners))
        log_info("reload: listeners changed: %zu sockets now", nl.n);
    master_listen_close(&m->listeners);
    m->listeners = nl;
    config_free(&m->cfg);
    m->cfg = cfg;
    log_set_level(level);
    if (!log_to_stderr())
        log_set_facility(facility);
    master_set_daemon_dir(m);
    master_tls_start(m);            /* same keys, maybe a new rotation period */
    master_watch_start(m);          /* the files of the new config, as the new daemons see */
    master_spawn_retire(m);
    master_spawn_start(m);
    log_info("reload: done");
}

/* master_signals - route the signals master handles through the loop. */
static void
master_signals(struct master *m)
{
    static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };
    static void (*const cbs[])(int, void *) = {
        master_on_child, master_on_stop, master_on_stop, master_on_reload
    };

    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        /* A shell may start a background job with SIGINT ignored, and an ignored signal
         * never reaches a signalfd; SIGCHLD ignored would even reap children for us. */
        signal(sigs[i], SIG_DFL);
        if (ev_signal(m->ev, sigs[i], cbs[i], m) == -1)
            fatalx("cannot watch signal %d", sigs[i]);
    }
}

int
main(int argc, char **argv)
{
    struct master  m;
    const char    *confarg = NULL;
    char           err[1024], real[PATH_MAX];
    enum log_level level;
    int            ch, facility, ready = -1, check_only = 0;
    pid_t          holder;

    /* Descriptors inherited from whoever started us (a shell's pipes) are not ours to keep
     * open for the life of a daemon. */
    if (close_range(3, ~0U, 0) == -1)
        log_warn("close_range");
    memset(&m, 0, sizeof(m));
    m.pid_fd = -1;
    log_init("master", 1);
    while ((ch = getopt(argc, argv, "c:fn")) != -1) {
        switch (ch) {
        case 'c':
            confarg = optarg;
            break;
        case 'f':
            m.foreground = 1;
            break;
        case 'n':
            check_only = 1;
            break;
        default:
            master_usage();
        }
    }
    if (optind != argc)
        master_usage();

    /* Daemons get this path after master has left its working directory: make it absolute. */
    if (realpath(config_dir_from(confarg), real) == NULL)
        fatal("configuration directory %s", config_dir_from(confarg));
    m.confdir = xstrdup(real);
    if ((m.cfg = config_load(m.confdir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (master_log_settings(m.cfg, &level, &facility, err, sizeof(err)) == -1) {
        fprintf(stderr, "%s/%s: %s\n", m.confdir, CONFIG_FILE, err);
        return 1;
    }
    if (check_only) {
        /* postern check: what only master knows how to validate, without binding. */
        if (master_listen_check(m.cfg, err, sizeof(err)) == -1) {
            fprintf(stderr, "%s/%s: %s\n", m.confdir, CONFIG_FILE, err);
            return 1;
        }
        return 0;
    }
    log_set_level(level);
    m.is_root = geteuid() == 0;
    m.exe_dir = master_exe_dir();
    master_set_daemon_dir(&m);
    umask(022);

    master_queue_layout(m.cfg, m.is_root);
    m.pid_path = xasprintf("%s/%s", config_path(m.cfg, "queue_directory"), MASTER_PID_FILE);
    if ((m.pid_fd = master_pid_lock(m.pid_path, &holder)) == -1)
        fatalx("already running (pid %ld, pid file %s)", (long)holder, m.pid_path);
    if (master_listen_open(m.cfg, NULL, &m.listeners, err, sizeof(err)) == -1 ||
        master_listen_add_submit(m.cfg, NULL, &m.listeners, err, sizeof(err)) == -1) {
        master_pid_remove(&m.pid_fd, m.pid_path);
        fatalx("%s", err);
    }

    if (!m.foreground) {
        ready = master_daemonise();
        log_set_facility(facility);
        log_init("master", 0);
    }
    master_pid_write(m.pid_fd, m.pid_path);
    if (!m.is_root)
        log_warnx("not started as root: daemons keep uid %ld and switch no users",
                  (long)getuid());

    m.ev = ev_new();
    m.started_ms = ev_now_ms();
    master_signals(&m);
    log_info("started pid=%ld config=%s daemon_directory=%s listeners=%zu", (long)getpid(),
             m.confdir, m.daemon_dir, m.listeners.n);
    master_tls_start(&m);
    master_control_start(&m);
    master_watch_start(&m);
    master_spawn_start(&m);
    if (ready >= 0) {
        if (write(ready, "K", 1) != 1)
            log_warn("readiness pipe");
        close(ready);
    }
    if (ev_run(m.ev) == -1)
        log_err("event loop failed: stopping");

    master_control_stop(&m);
    master_watch_free(&m);
    master_spawn_free(&m);
    master_tls_free(&m);
    master_listen_unlink(&m.listeners);
    master_listen_close(&m.listeners);
    master_pid_remove(&m.pid_fd, m.pid_path);
    log_info("stopped");
    ev_free(&m.ev);
    config_free(&m.cfg);
    free(m.pid_path);
    free(m.daemon_dir);
    free(m.exe_dir);
    free(m.confdir);
    return 0;
}
