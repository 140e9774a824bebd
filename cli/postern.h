/* postern - the administrator's command-line tool: shared declarations.
 *
 * postern.c parses the global options and dispatches; postern_ctl.c starts, stops, reloads
 * and reports on master; postern_check.c validates the configuration (TLS certificates, the
 * auth map, access tables and content rules included); postern_map.c builds and queries
 * maps and tests the mail policy; postern_passwd.c sets submission passwords in the auth
 * map; postern_proc.c reads the pid file and /proc; postern_queue.c is `postern queue ...`
 * and mailq; postern_daemon.c is status, stats, log-level and pause|resume;
 * postern_sendmail.c is sendmail and newaliases; postern_client.c talks to the control
 * socket and reads the queue database offline when the daemons are down; postern_select.c
 * holds the pure parts (selectors, JSON strings, the summary's age buckets). Every command
 * returns the process's exit status. */
#ifndef POSTERN_CLI_H
#define POSTERN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "content.h"

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

/* postern_map.c: the map command, and how it and check open the policy smtpd applies. */
int         postern_cmd_map(struct postern_ctx *, int argc, char **argv);

struct policy_tables;
struct rules;
/* postern_spec_split - a table spec's type ("hash", "cidr", "pcre"; a bare path is "hash")
 * and, in *path, where its path starts. */
const char *postern_spec_split(const char *spec, const char **path);
/* postern_access_open - the tables an access setting lists, opened as smtpd opens them
 * (empty list: an empty set). NULL with the error printed. */
struct policy_tables *postern_access_open(const struct config *, const char *key);
/* postern_rules_open - load the content rule file spec names (`pcre:PATH`, relative to
 * confdir) and check that each value is a content action; what names the setting or option
 * in the error. NULL with the error printed ("file:line: message"). */
struct rules *postern_rules_open(const char *what, const char *spec, const char *confdir,
                                 uint32_t match_limit);
/* postern_rules_setting - the content rule file a setting (header_checks, ...) names, at
 * most one: 0 with *out NULL if none; -1 with the error printed. */
int         postern_rules_setting(const struct config *, enum content_set, struct rules **out);

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

/* postern_ctl.c: helpers shared with the other command files. */
struct config *postern_load(const struct postern_ctx *);   /* NULL: error printed */
void        postern_user(uid_t uid, char *out, size_t outlen);

/* postern_select.c */

struct buf;
struct pcre2_real_code_8;
struct pcre2_real_match_data_8;

/* One pending recipient of a listed message. */
struct postern_qrcpt {
    char     *addr;
    char     *orig;
    char     *dsn;                  /* last enhanced status code, "" if none */
    char     *text;                 /* last error, "" if none */
    uint32_t  state;                /* enum qrec_state (QREC_ACTIVE while in flight) */
    uint32_t  attempts;
    uint64_t  next_attempt;
};

/* One queued message, from qmgr (CTL_MSG) or from the offline reader. */
struct postern_qmsg {
    char                  qid[32];
    uint32_t              flags;    /* QREC_F_* */
    int                   active;   /* in qmgr's memory (always 0 offline) */
    uint64_t              arrival, expiry, size;
    char                 *sender;
    uint32_t              nrcpt;    /* recipients in all, final ones included */
    uint32_t              omitted;  /* pending recipients not listed (over the limit) */
    struct postern_qrcpt *r;        /* pending recipients */
    uint32_t              n;
};
void        postern_qmsg_clear(struct postern_qmsg *);
/* postern_qmsg_state - "hold", "active" or "deferred" (JSON queue_name). */
const char *postern_qmsg_state(const struct postern_qmsg *);

#define POSTERN_SEL_ACTIVE    0x1u
#define POSTERN_SEL_DEFERRED  0x2u
#define POSTERN_SEL_HOLD      0x4u

struct postern_sel {
    char                           **qids;
    size_t                           nqids;
    int                              all;           /* --all */
    int                              stdin_ids;     /* "-": queue IDs on stdin */
    struct pcre2_real_code_8        *sender_re, *rcpt_re;
    struct pcre2_real_match_data_8  *md;
    char                            *domain;
    uint64_t                         older_than, younger_than, larger_than;  /* s, bytes */
    int                              have_older, have_younger, have_larger;
    unsigned                         states;        /* POSTERN_SEL_* */
};
void        postern_sel_init(struct postern_sel *);
void        postern_sel_free(struct postern_sel *);
/* postern_sel_option - a selector option: 1 it took val, 0 it took none, -2 not a
 * selector option, -1 bad value (reason in err). */
int         postern_sel_option(struct postern_sel *, const char *opt, const char *val,
                               char *err, size_t errlen);
int         postern_sel_add_qid(struct postern_sel *, const char *qid, char *err,
                                size_t errlen);     /* -1: not a queue ID */
int         postern_sel_criteria(const struct postern_sel *);  /* 1: more than IDs/--all */
int         postern_sel_given(const struct postern_sel *);     /* 1: anything at all */
/* postern_sel_match - 1 if m is selected (now: seconds since the epoch). */
int         postern_sel_match(struct postern_sel *, const struct postern_qmsg *, uint64_t now);
/* postern_json_str - append s as a JSON string (quotes, escapes, control characters). */
void        postern_json_str(struct buf *, const char *s);
/* postern_summary_bucket - qshape's age buckets: <5m, <10m, ... <1280m, 1280m+ (0..9). */
#define POSTERN_SUMMARY_BUCKETS 10
int         postern_summary_bucket(uint64_t age_s);

/* postern_client.c */

struct ipc_ctl_stats;
/* What a reply brings; any callback may be NULL. on_msg gets fd >= 0 with SHOW (it owns
 * it) and returns -1 to stop reading. */
struct postern_reply {
    int       (*on_msg)(struct postern_qmsg *, int fd, void *arg);
    void      (*on_result)(const char *qid, uint32_t status, const char *text, void *arg);
    void      (*on_stats)(const struct ipc_ctl_stats *, void *arg);
    void       *arg;
    uint32_t    status;             /* CTL_DONE's */
    char        text[1024];
};
/* postern_call - connect to public/control, send one request, read the reply to its end;
 * while qmgr is starting or busy (EAGAIN, EBUSY) ask again for up to 15 s. 0: a CTL_DONE
 * came (status and text in r); -1: no control socket answers (errno: ENOENT or
 * ECONNREFUSED, message not printed); -2: the conversation failed (printed). */
int         postern_call(const struct config *, uint32_t cmd, char *const *args, size_t nargs,
                         struct postern_reply *r);
/* postern_offline_list - when no qmgr runs: read the queue database files directly
 * (read-only, no environment) and give each message to on_msg in queue-ID order.
 * 0, or -1 with the reason printed. */
int         postern_offline_list(const struct config *, struct postern_reply *r);
/* postern_offline_body - open a message's spool file read-only (offline show); -1. */
int         postern_offline_body(const struct config *, const char *qid);

/* postern_queue.c */
int         postern_cmd_queue(struct postern_ctx *, int argc, char **argv);
int         postern_mailq(struct postern_ctx *, int argc, char **argv);
void        postern_queue_usage(FILE *);

/* postern_sendmail.c */
/* postern_sendmail - argv[0] sendmail (doc/sendmail.md); the exit status is sysexits(3)'s. */
int         postern_sendmail(int argc, char **argv);
/* postern_newaliases - argv[0] newaliases (and sendmail -bi): build alias_map, reload. */
int         postern_newaliases(struct postern_ctx *);

/* postern_daemon.c */
int         postern_cmd_stats(struct postern_ctx *, int argc, char **argv);
int         postern_cmd_log_level(struct postern_ctx *, int argc, char **argv);
int         postern_cmd_pause(struct postern_ctx *, int argc, char **argv);
/* postern_daemon_status - the running daemons' part of `postern status` from the control
 * socket; 0 printed, -1 not available (the caller shows /proc instead). */
int         postern_daemon_status(const struct config *);

#endif
