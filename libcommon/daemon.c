/* daemon - what every Postern daemon does at start, in one place.
 *
 * See daemon.h. Kept small on purpose: privilege dropping (priv), the master channel (ipc)
 * and signals (ev) stay in the daemons, because what each opens before dropping differs. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "buf.h"
#include "daemon.h"
#include "ipc_msg.h"
#include "log.h"

static void __attribute__((noreturn))
daemon_usage(const char *name)
{
    fprintf(stderr, "usage: %s [-d] [-c config_dir] [-i slot]\n", name);
    exit(2);
}

void
daemon_start(struct daemon_args *a, const char *name, int argc, char **argv)
{
    const char    *confarg = NULL;
    char           err[1024];
    enum log_level level;
    int            ch, facility;

    a->name = name;
    a->slot = 0;
    a->foreground = 0;
    while ((ch = getopt(argc, argv, "c:i:d")) != -1) {
        switch (ch) {
        case 'c':
            confarg = optarg;
            break;
        case 'i':
            a->slot = atoi(optarg);
            break;
        case 'd':
            a->foreground = 1;
            break;
        default:
            daemon_usage(name);
        }
    }
    if (optind != argc)
        daemon_usage(name);
    log_init(name, a->foreground);
    a->cfg = config_load(config_dir_from(confarg), err, sizeof(err));
    if (a->cfg == NULL)
        fatalx("%s", err);
    if (log_level_parse(config_str(a->cfg, "log_level"), &level) == 0)
        log_set_level(level);
    if (!a->foreground &&
        log_facility_parse(config_str(a->cfg, "syslog_facility"), &facility) == 0)
        log_set_facility(facility);
}

const char *
daemon_hostname(const struct config *cfg)
{
    static char name[256];
    const char *conf = config_str(cfg, "myhostname");

    if (*conf)
        return conf;
    if (name[0] == '\0' && gethostname(name, sizeof(name) - 1) == -1)
        snprintf(name, sizeof(name), "localhost");
    return name;
}

void
daemon_fd_prepare(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
        fatal("fcntl O_NONBLOCK on fd %d", fd);
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
        fatal("fcntl FD_CLOEXEC on fd %d", fd);
}

struct ipc_conn *
daemon_master_open(struct ev *ev, unsigned kind, ipc_frame_cb cb, void *arg)
{
    struct ipc_master_hello hello;
    struct ipc_conn        *conn;

    if (fcntl(DAEMON_MASTER_FD, F_GETFD) == -1)
        fatalx("fd %d is not open: daemons are started by master", DAEMON_MASTER_FD);
    daemon_fd_prepare(DAEMON_MASTER_FD);
    conn = ipc_conn_new(ev, DAEMON_MASTER_FD, cb, arg);
    hello.version = IPC_VERSION;
    hello.kind = kind;
    hello.pid = (uint32_t)getpid();
    if (ipc_master_hello_send(conn, 0, &hello, -1) == -1)
        fatalx("cannot say hello to master");
    return conn;
}

void
daemon_send_counters(struct ipc_conn *master, uint32_t reqid, const char **names,
                     const uint64_t *values, size_t n)
{
    struct ipc_ctl_counters out;
    uint8_t                *vals = xcalloc(n ? n : 1, 8);

    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++)
            vals[i * 8 + (size_t)b] = (uint8_t)(values[i] >> (56 - 8 * b));
    out.name = names;
    out.name_n = (uint32_t)n;
    out.value = vals;
    out.value_len = (uint32_t)(n * 8);
    if (ipc_ctl_counters_send(master, reqid, &out, -1) == -1)
        log_warnx("cannot send counters to master");
    free(vals);
}

void
daemon_ctl_log_level(const struct ipc_frame *f)
{
    static const char *const names[] = { "err", "warn", "info", "debug" };
    struct ipc_ctl_log_level lvl;

    /* master is trusted: a malformed frame is a bug, not an attack */
    if (f->fd >= 0 || ipc_ctl_log_level_dec(f, &lvl) == -1 || lvl.level > LOG_LVL_DEBUG)
        fatalx("master: malformed %s", ipc_type_name(f->type));
    log_set_level((enum log_level)lvl.level);
    log_info("log level set to %s by postern log-level", names[lvl.level]);
}
