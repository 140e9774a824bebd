/* postern - the administrator's tool: `postern [-c DIR] COMMAND [ARGS]`.
 *
 * One binary, also installed as sendmail, mailq and newaliases: it looks at the name it was
 * called by first (mailq is `postern queue list`; sendmail and newaliases: doc/sendmail.md).
 * The configuration
 * directory is -c DIR, else $POSTERN_CONFIG, else /etc/postern (config_dir_from()). Each
 * command lives in its own file (postern.h says which) and returns the exit status: 0
 * success, 1 failure, 2 usage error, 3 (status only) not running. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "postern.h"

static const struct {
    const char     *name;
    postern_cmd_fn  fn;
} postern_cmds[] = {
    { "start",  postern_cmd_start },
    { "stop",   postern_cmd_stop },
    { "reload", postern_cmd_reload },
    { "status", postern_cmd_status },
    { "check",  postern_cmd_check },
    { "map",    postern_cmd_map },
    { "passwd", postern_cmd_passwd },
    { "queue",  postern_cmd_queue },
    { "stats",  postern_cmd_stats },
    { "log-level", postern_cmd_log_level },
    { "pause",  postern_cmd_pause },
    { "resume", postern_cmd_pause },
};

void
postern_usage(FILE *f)
{
    fprintf(f,
        "usage: postern [-c DIR] COMMAND [ARGS]\n"
        "\n"
        "  -c DIR              configuration directory (default $POSTERN_CONFIG,\n"
        "                      else /etc/postern); the file is DIR/postern.conf\n"
        "\n"
        "commands:\n"
        "  start [-f]          check the configuration and start master; -f keeps it in the\n"
        "                      foreground, logging to stderr\n"
        "  stop                stop master and every daemon (waits up to 20 s)\n"
        "  reload              re-read the configuration and restart the daemons gracefully\n"
        "  status              master and its daemons (pid, uptime, restarts), sessions and\n"
        "                      queue counts; exit 0 if running, 3 if not\n"
        "  stats [--json]      counters of every daemon: messages received, delivered,\n"
        "                      deferred, bounced, bytes, ... (doc/status.md)\n"
        "  log-level LEVEL     err, warn, info or debug, now, in master and the daemons\n"
        "  pause delivery      qmgr stops starting deliveries (resume delivery undoes it)\n"
        "  pause smtpd         smtpd stops accepting connections (resume smtpd)\n"
        "  queue COMMAND ...   list, show, summary, hold, release, delete, retry, expire\n"
        "                      messages (postern queue --help; doc/queue.md)\n"
        "  check [-v]          validate the configuration, its maps, the access tables and\n"
        "                      content rules (file:line of a bad entry or pattern), the TLS\n"
        "                      certificates and keys (readable, matching) and the auth\n"
        "                      map's hashes; -v prints every setting with its effective value\n"
        "  map build FILE      compile the text map FILE into FILE.db\n"
        "  map build --aliases FILE\n"
        "                      compile the aliases(5) file FILE into FILE.db (newaliases)\n"
        "  map query TABLE KEY print KEY's value in TABLE (exit 1 if not found): FILE or\n"
        "                      hash:FILE (FILE.db), cidr:FILE (KEY is an address), pcre:FILE\n"
        "  map test [--client ADDR [--name NAME]] [--helo NAME] [--sender ADDR]\n"
        "           [--rcpt ADDR]...\n"
        "                      run the configured access checks stage by stage and print\n"
        "                      what each would do and which table entry decided\n"
        "  map test --message FILE|- [--output FILE] [--header-checks pcre:PATH]\n"
        "           [--mime-header-checks pcre:PATH] [--body-checks pcre:PATH]\n"
        "                      run the content rules (the configured ones, or only those\n"
        "                      given) over a message: each action, then the verdict;\n"
        "                      --output writes the message as rewritten (doc/policy.md)\n"
        "  passwd [-m MAPFILE] USER\n"
        "                      set USER's submission (SMTP AUTH) password in the auth map\n"
        "                      (smtpd_auth_map, or MAPFILE) and rebuild its .db; reads it\n"
        "                      twice from the terminal, or one line from stdin if piped\n"
        "  help                this text\n");
}

/* postern_personality - sendmail, mailq, newaliases: called by another name. mailq is
 * `postern queue list` (options: selectors and --json); sendmail and newaliases are in
 * postern_sendmail.c. The configuration comes from $POSTERN_CONFIG (sendmail: also -C). */
static int
postern_personality(const char *name, int argc, char **argv)
{
    struct postern_ctx ctx = { config_dir_from(NULL) };

    if (strcmp(name, "mailq") == 0)
        return postern_mailq(&ctx, argc, argv);
    if (strcmp(name, "sendmail") == 0)
        return postern_sendmail(argc, argv);
    if (strcmp(name, "newaliases") == 0) {
        if (argc > 1) {
            fprintf(stderr, "usage: newaliases (alias_map of $POSTERN_CONFIG/postern.conf)\n");
            return 64;
        }
        return postern_newaliases(&ctx);
    }
    return -1;
}

int
main(int argc, char **argv)
{
    struct postern_ctx ctx;
    const char        *confarg = NULL, *self;
    int                i, rc;

    self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    log_init("postern", 1);
    if ((rc = postern_personality(self, argc, argv)) != -1)
        return rc;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            postern_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            confarg = argv[++i];
        } else if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2] != '\0') {
            confarg = argv[i] + 2;
        } else {
            fprintf(stderr, "postern: unknown option %s\n", argv[i]);
            postern_usage(stderr);
            return 2;
        }
    }
    if (i == argc) {
        postern_usage(stderr);
        return 2;
    }
    if (strcmp(argv[i], "help") == 0) {
        postern_usage(stdout);
        if (i + 1 < argc && strcmp(argv[i + 1], "queue") == 0)
            postern_queue_usage(stdout);
        return 0;
    }
    ctx.confdir = config_dir_from(confarg);
    for (size_t c = 0; c < sizeof(postern_cmds) / sizeof(postern_cmds[0]); c++) {
        if (strcmp(argv[i], postern_cmds[c].name) == 0)
            return postern_cmds[c].fn(&ctx, argc - i, argv + i);
    }
    fprintf(stderr, "postern: unknown command \"%s\"\n", argv[i]);
    postern_usage(stderr);
    return 2;
}
