/* log - logging to syslog or stderr.
 *
 * See log.h. In the foreground every program logs to stderr as
 * "2026-11-28T01:02:03.456Z smtpd[123]: info: text"; otherwise to syslog with the program
 * name as ident. errno is saved on entry so log_warn() reports the caller's error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char    *log_progname = "postern";
static int            log_stderr = 1;
static enum log_level log_cur_level = LOG_LVL_INFO;
static int            log_facility = LOG_MAIL;

static const char *const log_level_names[] = { "err", "warn", "info", "debug" };

void
log_init(const char *progname, int to_stderr)
{
    const char *slash = strrchr(progname, '/');

    log_progname = slash ? slash + 1 : progname;
    log_stderr = to_stderr;
    if (!to_stderr)
        openlog(log_progname, LOG_PID | LOG_NDELAY, log_facility);
}

void
log_set_level(enum log_level level)
{
    log_cur_level = level;
}

int
log_level_parse(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
        if (strcasecmp(name, log_level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int
log_facility_parse(const char *name, int *out)
{
    static const struct {
        const char *name;
        int         facility;
    } t[] = {
        { "mail", LOG_MAIL },     { "daemon", LOG_DAEMON }, { "local0", LOG_LOCAL0 },
        { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
        { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
        { "local7", LOG_LOCAL7 },
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcmp(name, t[i].name) == 0) {
            *out = t[i].facility;
            return 0;
        }
    }
    return -1;
}

void
log_set_facility(int facility)
{
    log_facility = facility;
    if (!log_stderr) {
        closelog();
        openlog(log_progname, LOG_PID | LOG_NDELAY, log_facility);
    }
}

int
log_to_stderr(void)
{
    return log_stderr;
}

/* log_emit - format one line and write it where logs go; err >= 0 appends strerror(err). */
static void
log_emit(enum log_level level, int err, const char *fmt, va_list ap)
{
    static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
    char             msg[4096];
    int              n;

    if (level > log_cur_level)
        return;
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        return;
    if (err >= 0 && (size_t)n < sizeof(msg))
        snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(err));
    /* Never let a peer's bytes forge a second log line. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (log_stderr) {
        struct timespec ts;
        struct tm       tm;
        char            stamp[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ %s[%d]: %s: %s\n", stamp, ts.tv_nsec / 1000000,
                log_progname, (int)getpid(), log_level_names[level], msg);
    } else {
        syslog(prio[level], "%s: %s", log_level_names[level], msg);
    }
}

#define LOG_FN(name, level, with_errno)                                 \
    void name(const char *fmt, ...)                                     \
    {                                                                   \
        int     saved = errno;                                          \
        va_list ap;                                                     \
        va_start(ap, fmt);                                              \
        log_emit(level, with_errno ? saved : -1, fmt, ap);              \
        va_end(ap);                                                     \
        errno = saved;                                                  \
    }

LOG_FN(log_debug, LOG_LVL_DEBUG, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)
LOG_FN(log_err, LOG_LVL_ERR, 0)

void
fatal(const char *fmt, ...)
{
    int     saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_emit(LOG_LVL_ERR, saved, fmt, ap);
    va_end(ap);
    exit(1);
}

void
fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_emit(LOG_LVL_ERR, -1, fmt, ap);
    va_end(ap);
    exit(1);
}
