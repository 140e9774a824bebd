/* postern_check - `postern check [-v]` and `postern map build|query`.
 *
 * check loads the configuration exactly as the daemons do (the first error is printed as
 * "file:line: message", exit 1), has `master -n` check the listener addresses (master owns
 * that parser), then opens every map it names: a map whose .db is missing or unreadable is
 * an error, one whose text is newer than its .db gets a warning that it needs `postern map
 * build`. -v prints every setting with its effective value. The map commands wrap
 * map_build() and map_lookup(); query exits 0 if found, 1 if not, 2 on error, like
 * postmap -q. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "postern.h"

/* The settings that name a map. */
static const char *const postern_map_keys[] = { "mailbox_map" };

/* postern_check_map - open the map that key names; -1 (printed) if it is unusable. */
static int
postern_check_map(const struct config *cfg, const char *key)
{
    const char  *source = config_path(cfg, key);
    struct stat  st_src, st_db;
    struct map  *m;
    char        *db, err[1024];
    int          rc = -1;

    if (*source == '\0')
        return 0;
    db = xasprintf("%s.db", source);
    if (stat(db, &st_db) == -1) {
        fprintf(stderr, "postern: %s: %s: %s (run postern map build %s)\n", key, db,
                strerror(errno), source);
        goto out;
    }
    /* map_open() logs its own staleness warning; the one below names the command to run. */
    log_set_level(LOG_LVL_ERR);
    m = map_open(source, err, sizeof(err));
    log_set_level(LOG_LVL_INFO);
    if (m == NULL) {
        fprintf(stderr, "postern: %s: %s\n", key, err);
        goto out;
    }
    map_close(&m);
    if (stat(source, &st_src) == -1)
        fprintf(stderr, "postern: warning: %s: %s: %s\n", key, source, strerror(errno));
    else if (st_src.st_mtim.tv_sec > st_db.st_mtim.tv_sec ||
             (st_src.st_mtim.tv_sec == st_db.st_mtim.tv_sec &&
              st_src.st_mtim.tv_nsec > st_db.st_mtim.tv_nsec))
        fprintf(stderr, "postern: warning: %s: %s is older than %s: run postern map build %s\n",
                key, db, source, source);
    rc = 0;
out:
    free(db);
    return rc;
}

/* postern_check_master - `master -n`: the checks only master can make (listener
 * addresses); it prints its own error. -1 if it found one. */
static int
postern_check_master(const struct postern_ctx *ctx, const struct config *cfg)
{
    char       *master = postern_master_path(cfg);
    const char *argv[] = { "master", "-c", ctx->confdir, "-n", NULL };
    int         status, rc = -1;
    pid_t       pid, w;

    if (access(master, X_OK) == -1) {
        fprintf(stderr, "postern: warning: %s: %s: listeners not checked\n", master,
                strerror(errno));
        free(master);
        return 0;
    }
    fflush(NULL);
    if ((pid = fork()) == -1) {
        fprintf(stderr, "postern: fork: %s\n", strerror(errno));
    } else if (pid == 0) {
        execv(master, (char *const *)argv);
        fprintf(stderr, "postern: exec %s: %s\n", master, strerror(errno));
        _exit(127);
    } else {
        while ((w = waitpid(pid, &status, 0)) == -1 && errno == EINTR)
            continue;
        if (w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
            rc = 0;
    }
    free(master);
    return rc;
}

/* postern_check_emit - one line of `postern check -v`. */
static void
postern_check_emit(const char *key, const char *value, void *arg)
{
    (void)arg;
    printf("%s = %s\n", key, value);
}

int
postern_cmd_check(struct postern_ctx *ctx, int argc, char **argv)
{
    struct config *cfg;
    char           err[1024];
    int            ch, verbose = 0, rc = 0;

    optind = 0;
    while ((ch = getopt(argc, argv, "+v")) != -1) {
        if (ch != 'v')
            return 2;
        verbose = 1;
    }
    if (optind < argc) {
        fprintf(stderr, "postern: check: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if ((cfg = config_load(ctx->confdir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (postern_check_master(ctx, cfg) == -1)
        rc = 1;
    for (size_t i = 0; i < sizeof(postern_map_keys) / sizeof(postern_map_keys[0]); i++) {
        if (postern_check_map(cfg, postern_map_keys[i]) == -1)
            rc = 1;
    }
    if (verbose)
        config_dump(cfg, postern_check_emit, NULL);
    if (rc == 0)
        printf("postern: configuration ok\n");
    config_free(&cfg);
    return rc;
}

/* postern_map_query - print the value of key in the map built from source. */
static int
postern_map_query(const char *source, const char *key)
{
    struct map *m;
    char        err[1024], val[4096];
    int         r;

    if ((m = map_open(source, err, sizeof(err))) == NULL) {
        fprintf(stderr, "postern: %s\n", err);
        return 2;
    }
    r = map_lookup(m, key, val, sizeof(val));
    map_close(&m);
    if (r == 1)
        printf("%s\n", val);
    else if (r == -1)
        fprintf(stderr, "postern: %s: lookup of %s failed\n", source, key);
    return r == 1 ? 0 : r == 0 ? 1 : 2;
}

int
postern_cmd_map(struct postern_ctx *ctx, int argc, char **argv)
{
    char err[1024];

    (void)ctx;
    if (argc == 3 && strcmp(argv[1], "build") == 0) {
        if (map_build(argv[2], err, sizeof(err)) == -1) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "query") == 0)
        return postern_map_query(argv[2], argv[3]);
    fprintf(stderr, "usage: postern map build FILE\n"
                    "       postern map query FILE KEY\n");
    return 2;
}
