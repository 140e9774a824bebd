/* postern_ctl - `postern start|stop|reload|status`: drive master through its pid file.
 *
 * start validates the configuration and execs master (from daemon_directory, else from the
 * folder of this binary): with -f in place of this process, so the caller's pid is master's;
 * without -f as a child that daemonises and exits 0 only once the daemon is up, after which
 * we wait (at most POSTERN_START_WAIT_MS) for the pid file. stop sends SIGTERM and waits for
 * the pid file's lock to go; reload sends SIGHUP; status lists master and its children from
 * master's control socket (postern_daemon.c: pid, uptime, restarts, sessions, queue counts),
 * else from /proc, and exits 0 if master runs, 3 if not (as LSB init scripts do). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "postern.h"

#define POSTERN_START_WAIT_MS   5000
#define POSTERN_STOP_WAIT_MS    20000
#define POSTERN_POLL_MS         50
#define POSTERN_EXIT_NOT_RUNNING 3

/* postern_sleep_ms - sleep about ms milliseconds. */
static void
postern_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        continue;
}

/* postern_load - load the configuration or print its error; NULL on error. */
struct config *
postern_load(const struct postern_ctx *ctx)
{
    struct config *cfg;
    char           err[1024];

    if ((cfg = config_load(ctx->confdir, err, sizeof(err))) == NULL)
        fprintf(stderr, "%s\n", err);
    return cfg;
}

/* postern_pid_path - <queue_directory>/pid/master.pid (xmalloc'd). */
static char *
postern_pid_path(const struct config *cfg)
{
    return xasprintf("%s/%s", config_path(cfg, "queue_directory"), POSTERN_PID_FILE);
}

/* postern_running - 1 and *pid if master runs, 0 if not, -1 (printed) on error. */
static int
postern_running(const char *pid_path, pid_t *pid)
{
    int rc = postern_pid_read(pid_path, pid);

    if (rc == -1)
        fprintf(stderr, "postern: %s: %s\n", pid_path, strerror(errno));
    return rc;
}

/* postern_no_args - complain about operands a command does not take. */
static int
postern_no_args(int argc, char **argv, int optind_now)
{
    if (optind_now < argc) {
        fprintf(stderr, "postern: %s: unexpected argument \"%s\"\n", argv[0],
                argv[optind_now]);
        return -1;
    }
    return 0;
}

/* postern_master_path - beside this binary is the build tree; ../libexec/postern/ is where
 * `make install` puts the daemons. */
char *
postern_master_path(const struct config *cfg)
{
    const char *dir = config_path(cfg, "daemon_directory");
    char        self[PATH_MAX], *beside;
    ssize_t     n;

    if (*dir)
        return xasprintf("%s/master", dir);
    if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
        return xstrdup("master");
    self[n] = '\0';
    beside = xasprintf("%s/master", dirname(self));
    if (access(beside, X_OK) == 0)
        return beside;
    free(beside);
    return xasprintf("%s/../libexec/postern/master", self);
}

int
postern_cmd_start(struct postern_ctx *ctx, int argc, char **argv)
{
    struct config *cfg;
    char          *master, *pid_path;
    const char    *margv[6];
    int            ch, fg = 0, status, rc = 1;
    pid_t          pid, child;

    optind = 0;
    while ((ch = getopt(argc, argv, "+f")) != -1) {
        if (ch != 'f')
            return 2;
        fg = 1;
    }
    if (postern_no_args(argc, argv, optind) == -1 || (cfg = postern_load(ctx)) == NULL)
        return argc > optind ? 2 : 1;
    pid_path = postern_pid_path(cfg);
    master = postern_master_path(cfg);
    if (postern_running(pid_path, &pid) == 1) {
        fprintf(stderr, "postern: already running (pid %ld)\n", (long)pid);
        goto out;
    }
    if (access(master, X_OK) == -1) {
        fprintf(stderr, "postern: %s: %s\n", master, strerror(errno));
        goto out;
    }
    margv[0] = "master";
    margv[1] = "-c";
    margv[2] = ctx->confdir;
    margv[3] = fg ? "-f" : NULL;
    margv[4] = NULL;
    fflush(NULL);
    if (fg) {
        execv(master, (char *const *)margv);
        fprintf(stderr, "postern: exec %s: %s\n", master, strerror(errno));
        goto out;
    }
    if ((child = fork()) == -1) {
        fprintf(stderr, "postern: fork: %s\n", strerror(errno));
        goto out;
    }
    if (child == 0) {
        execv(master, (char *const *)margv);
        fprintf(stderr, "postern: exec %s: %s\n", master, strerror(errno));
        _exit(127);
    }
    while (waitpid(child, &status, 0) == -1) {
        if (errno != EINTR) {
            fprintf(stderr, "postern: waitpid: %s\n", strerror(errno));
            goto out;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "postern: master failed to start\n");
        goto out;
    }
    for (int waited = 0; waited <= POSTERN_START_WAIT_MS; waited += POSTERN_POLL_MS) {
        if (postern_running(pid_path, &pid) == 1) {
            printf("postern: started (pid %ld)\n", (long)pid);
            rc = 0;
            goto out;
        }
        postern_sleep_ms(POSTERN_POLL_MS);
    }
    fprintf(stderr, "postern: no running master in %s after %d s\n", pid_path,
            POSTERN_START_WAIT_MS / 1000);
out:
    free(master);
    free(pid_path);
    config_free(&cfg);
    return rc;
}

/* postern_signal_master - find the running master; send sig. Returns the pid, 0 if master
 * is not running, -1 (printed) on error. */
static pid_t
postern_signal_master(const char *pid_path, int sig)
{
    pid_t pid;
    int   r = postern_running(pid_path, &pid);

    if (r <= 0)
        return r;
    if (kill(pid, sig) == -1) {
        fprintf(stderr, "postern: kill %ld: %s\n", (long)pid, strerror(errno));
        return -1;
    }
    return pid;
}

int
postern_cmd_stop(struct postern_ctx *ctx, int argc, char **argv)
{
    struct config *cfg;
    char          *pid_path;
    pid_t          pid, now;
    int            rc = 1;

    if (postern_no_args(argc, argv, 1) == -1)
        return 2;
    if ((cfg = postern_load(ctx)) == NULL)
        return 1;
    pid_path = postern_pid_path(cfg);
    if ((pid = postern_signal_master(pid_path, SIGTERM)) <= 0) {
        if (pid == 0) {
            printf("postern: not running\n");
            rc = 0;
        }
        goto out;
    }
    for (int waited = 0; waited <= POSTERN_STOP_WAIT_MS; waited += POSTERN_POLL_MS) {
        if (postern_pid_read(pid_path, &now) == 0) {
            printf("postern: stopped (pid %ld)\n", (long)pid);
            rc = 0;
            goto out;
        }
        postern_sleep_ms(POSTERN_POLL_MS);
    }
    fprintf(stderr, "postern: master (pid %ld) still running after %d s\n", (long)pid,
            POSTERN_STOP_WAIT_MS / 1000);
out:
    free(pid_path);
    config_free(&cfg);
    return rc;
}

int
postern_cmd_reload(struct postern_ctx *ctx, int argc, char **argv)
{
    struct config *cfg;
    char          *pid_path;
    pid_t          pid;

    if (postern_no_args(argc, argv, 1) == -1)
        return 2;
    if ((cfg = postern_load(ctx)) == NULL)
        return 1;
    pid_path = postern_pid_path(cfg);
    pid = postern_signal_master(pid_path, SIGHUP);
    if (pid == 0)
        fprintf(stderr, "postern: not running\n");
    else if (pid > 0)
        printf("postern: reloading (pid %ld)\n", (long)pid);
    free(pid_path);
    config_free(&cfg);
    return pid > 0 ? 0 : 1;
}

/* postern_user - a user name for uid, or the number. */
void
postern_user(uid_t uid, char *out, size_t outlen)
{
    struct passwd *pw = getpwuid(uid);

    if (pw != NULL)
        snprintf(out, outlen, "%s", pw->pw_name);
    else
        snprintf(out, outlen, "%lu", (unsigned long)uid);
}

int
postern_cmd_status(struct postern_ctx *ctx, int argc, char **argv)
{
    struct config       *cfg;
    struct postern_proc  mp, *kids;
    char                *pid_path, up[32], user[64], slot[24];
    size_t               n;
    pid_t                pid;
    int                  r;

    if (postern_no_args(argc, argv, 1) == -1)
        return 2;
    if ((cfg = postern_load(ctx)) == NULL)
        return POSTERN_EXIT_NOT_RUNNING;
    pid_path = postern_pid_path(cfg);
    r = postern_running(pid_path, &pid);
    free(pid_path);
    if (r != 1 || postern_proc_read(pid, &mp) == -1) {
        config_free(&cfg);
        printf("postern: not running\n");
        return POSTERN_EXIT_NOT_RUNNING;
    }
    postern_fmt_duration(postern_proc_uptime(&mp), up, sizeof(up));
    printf("postern: running (master pid %ld, up %s)\n", (long)pid, up);
    fflush(stdout);
    /* The control socket knows restarts, sessions and the queue; /proc is the fallback. */
    r = postern_daemon_status(cfg);
    config_free(&cfg);
    if (r == 0)
        return 0;
    kids = postern_proc_children(pid, &n);
    printf("  %-8s %-8s %-5s %-12s %s\n", "PID", "DAEMON", "SLOT", "USER", "UP");
    for (size_t i = 0; i < n; i++) {
        postern_fmt_duration(postern_proc_uptime(&kids[i]), up, sizeof(up));
        postern_user(kids[i].uid, user, sizeof(user));
        if (kids[i].slot >= 0)
            snprintf(slot, sizeof(slot), "%ld", kids[i].slot);
        else
            snprintf(slot, sizeof(slot), "-");
        printf("  %-8ld %-8s %-5s %-12s %s\n", (long)kids[i].pid, kids[i].name, slot, user,
               up);
    }
    free(kids);
    return 0;
}
