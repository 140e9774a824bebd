/* log - logging to syslog or stderr.
 *
 * Every line about a message starts with its queue ID ("4Q8ZK2M7XJ: to=<..>, status=sent");
 * the rest is key=value pairs a script can split. log_warn() appends strerror(errno),
 * log_warnx() does not. fatal()/fatalx() log and exit(1): only for start-up errors, failed
 * privilege drops, broken invariants and malformed messages from trusted processes.
 * Used by every program. */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* log_init - name the program; to_stderr=1 logs to stderr with a timestamp, else syslog. */
void log_init(const char *progname, int to_stderr);
void log_set_level(enum log_level);
int  log_level_parse(const char *name, enum log_level *out);   /* -1: unknown name */
void log_set_facility(int facility);                           /* syslog facility, e.g. LOG_MAIL */
int  log_facility_parse(const char *name, int *out);           /* "mail", "local0".. -1: unknown */
int  log_to_stderr(void);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
