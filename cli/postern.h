/* postern - the administrator's command-line tool: shared declarations.
 *
 * postern.c parses the global options and dispatches; postern_ctl.c starts, stops, reloads
 * and reports on master; postern_check.c validates the configuration (TLS certificates and
 * the auth map included) and builds and queries maps; postern_passwd.c sets submission
 * passwords in the auth map; postern_proc.c reads the pid file and /proc. Every command
 * returns the process's exit status. */
#ifndef POSTERN_CLI_H
#define POSTERN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define POSTERN_PID_FILE  "pid/master.pid"

/* What every command gets: the configuration directory chosen by -c/$POSTERN_CONFIG. */
struct postern_ctx {
    const char *confdir;
};

/* A command: argv[0] is its name; options follow. Returns the exit status. */
typedef int (*postern_cmd_fn)(struct postern_ctx *, int argc, char **argv);

void        postern_usage(FILE *);                 /* the help text */

/* postern_ctl.c */

struct config;
/* postern_master_path - the master program: daemon_directory, else beside this binary,
 * else ../libexec/postern/ from it (xmalloc'd). */
char       *postern_master_path(const struct config *);
int         postern_cmd_start(struct postern_ctx *, int argc, char **argv);
int         postern_cmd_stop(struct postern_ctx *, int argc, char **argv);
int         postern_cmd_reload(struct postern_ctx *, int argc, char **argv);
int         postern_cmd_status(struct postern_ctx *, int argc, char **argv);

/* postern_check.c */
int         postern_cmd_check(struct postern_ctx *, int argc, char **argv);
int         postern_cmd_map(struct postern_ctx *, int argc, char **argv);

/* postern_passwd.c */
int         postern_cmd_passwd(struct postern_ctx *, int argc, char **argv);

/* postern_proc.c */

/* postern_pid_read - the master's pid from <queue_directory>/pid/master.pid: 1 and *pid if a
 * master holds the file's lock, 0 if none runs (no file, or a stale one), -1 on error. */
int         postern_pid_read(const char *path, pid_t *pid);
/* postern_pid_parse - the pid in a pid file's text ("123\n"); -1 if none. */
pid_t       postern_pid_parse(const char *text);

/* One process as /proc shows it. */
struct postern_proc {
    pid_t     pid;
    pid_t     ppid;
    uid_t     uid;            /* effective */
    uint64_t  start_ticks;    /* since boot, in clock ticks */
    char      name[64];       /* basename of argv[0] */
    long      slot;           /* the -i argument, -1 if none */
};

/* postern_proc_parse_stat - ppid and start time from /proc/PID/stat text; -1 if malformed. */
int         postern_proc_parse_stat(const char *text, pid_t *ppid, uint64_t *start_ticks);
/* postern_proc_parse_cmdline - argv[0]'s basename and the -i slot from /proc/PID/cmdline
 * bytes (NUL-separated, len bytes). */
void        postern_proc_parse_cmdline(const char *bytes, size_t len, char *name,
                                       size_t namelen, long *slot);
int         postern_proc_read(pid_t pid, struct postern_proc *);   /* -1: gone */
/* postern_proc_children - the live children of ppid, by pid; *n gets the count. */
struct postern_proc *postern_proc_children(pid_t ppid, size_t *n);
/* postern_proc_uptime - seconds the process has run; 0 if unknown. */
uint64_t    postern_proc_uptime(const struct postern_proc *);
/* postern_fmt_duration - "42s", "5m02s", "3h05m", "2d03h". */
void        postern_fmt_duration(uint64_t secs, char *out, size_t outlen);

#endif
