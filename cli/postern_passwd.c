/* postern_passwd - `postern passwd [-m MAPFILE] USER`: set a submission password.
 *
 * Reads the password twice from the terminal with echo off (a Ctrl-C restores the
 * terminal), or one line from stdin when stdin is not a terminal (for scripts: `printf
 * '%s\n' "$pw" | postern passwd USER`), hashes it with pwhash_make() (yescrypt), and writes
 * `USER HASH` into the auth map text file: the map is -m MAPFILE, else smtpd_auth_map from
 * the configuration. An existing line for USER (compared case-insensitively, as map keys
 * are) is replaced in place; otherwise the line is appended. The new text is written to a
 * temporary file in the same directory, mode 0600 and, when root, the old file's owner,
 * fsync'd and renamed over the old one, so readers never see half a file; a lock on the
 * directory serialises concurrent runs. Then map_build() compiles MAPFILE.db (0600 too).
 * The password is read byte by byte into one buffer (no stdio copies) and wiped with
 * explicit_bzero, like the hash once written. Exit 0 on success, 1 on failure, 2 on a
 * usage error. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "map.h"
#include "postern.h"
#include "pwhash.h"

#define POSTERN_PASSWD_MAX      1024    /* bytes of password, without the newline */
#define POSTERN_PASSWD_USER_MAX 255

static struct termios postern_passwd_saved;
static volatile sig_atomic_t postern_passwd_echo_off;

/* postern_passwd_on_signal - restore the terminal's echo before dying of a signal. */
static void
postern_passwd_on_signal(int sig)
{
    ssize_t w;

    if (postern_passwd_echo_off)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &postern_passwd_saved);
    w = write(STDERR_FILENO, "\n", 1);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

/* postern_passwd_read_line - one line from fd into out (NUL-terminated, newline removed,
 * and a CR before it). 0 on success; -1 at EOF before any newline with nothing read, on a
 * read error, on a NUL byte or when the line is longer than the buffer (the rest of the
 * line is read and dropped). */
static int
postern_passwd_read_line(int fd, char *out, size_t outlen, const char **why)
{
    size_t  len = 0;
    int     too_long = 0, nul = 0, any = 0;
    char    c;
    ssize_t n;

    for (;;) {
        while ((n = read(fd, &c, 1)) == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            *why = strerror(errno);
            explicit_bzero(out, outlen);
            return -1;
        }
        if (n == 0) {
            if (!any) {
                *why = "no password given (end of input)";
                return -1;
            }
            break;
        }
        any = 1;
        if (c == '\n')
            break;
        if (c == '\0')
            nul = 1;
        if (len + 1 < outlen)
            out[len++] = c;
        else
            too_long = 1;
    }
    if (len > 0 && out[len - 1] == '\r')
        len--;
    out[len] = '\0';
    if (too_long || nul) {
        *why = too_long ? "password too long" : "NUL byte in the password";
        explicit_bzero(out, outlen);
        return -1;
    }
    return 0;
}

/* postern_passwd_prompt - prompt on stderr and read a line from the terminal without echo. */
static int
postern_passwd_prompt(const char *prompt, char *out, size_t outlen, const char **why)
{
    struct termios noecho;
    int            rc;

    if (tcgetattr(STDIN_FILENO, &postern_passwd_saved) == -1) {
        *why = strerror(errno);
        return -1;
    }
    noecho = postern_passwd_saved;
    noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    noecho.c_lflag |= ICANON;
    /* Echo off before the prompt appears (what is typed after it must not show), and
     * type-ahead from before the prompt dropped, as getpass(3) does. */
    postern_passwd_echo_off = 1;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho) == -1) {
        postern_passwd_echo_off = 0;
        *why = strerror(errno);
        return -1;
    }
    fprintf(stderr, "%s", prompt);
    fflush(stderr);
    rc = postern_passwd_read_line(STDIN_FILENO, out, outlen, why);
    /* TCSANOW: keep what was typed after the newline (the answer to the next prompt). */
    tcsetattr(STDIN_FILENO, TCSANOW, &postern_passwd_saved);
    postern_passwd_echo_off = 0;
    fprintf(stderr, "\n");
    return rc;
}

/* postern_passwd_get - the new password into pw: twice from a terminal, else once from
 * stdin. -1 (printed) if none was given, they differ, or it is empty. */
static int
postern_passwd_get(char *pw, size_t pwlen)
{
    static const int  sigs[] = { SIGINT, SIGTERM, SIGQUIT, SIGHUP };
    char              again[POSTERN_PASSWD_MAX + 2];
    const char       *why = NULL;
    int               rc = -1;

    if (!isatty(STDIN_FILENO)) {
        if (postern_passwd_read_line(STDIN_FILENO, pw, pwlen, &why) == -1) {
            fprintf(stderr, "postern: passwd: %s\n", why);
            return -1;
        }
    } else {
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            signal(sigs[i], postern_passwd_on_signal);
        if (postern_passwd_prompt("New password: ", pw, pwlen, &why) == -1 ||
            postern_passwd_prompt("Again: ", again, sizeof(again), &why) == -1) {
            fprintf(stderr, "postern: passwd: %s\n", why);
            goto out;
        }
        if (strcmp(pw, again) != 0) {
            fprintf(stderr, "postern: passwd: the two passwords differ; nothing changed\n");
            goto out;
        }
    }
    if (pw[0] == '\0') {
        fprintf(stderr, "postern: passwd: empty password refused\n");
        goto out;
    }
    rc = 0;
out:
    explicit_bzero(again, sizeof(again));
    if (rc == -1)
        explicit_bzero(pw, pwlen);
    return rc;
}

/* postern_passwd_user_ok - a user name that is one map key: printable, no white space,
 * not a comment. */
static int
postern_passwd_user_ok(const char *user)
{
    size_t n = strlen(user);

    if (n == 0 || n > POSTERN_PASSWD_USER_MAX || user[0] == '#')
        return 0;
    for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    }
    return 1;
}

/* postern_passwd_line_user - 1 if the source line is an entry for user (its first word,
 * compared case-insensitively). */
static int
postern_passwd_line_user(const char *line, size_t len, const char *user)
{
    size_t ulen = strlen(user);

    if (len <= ulen || strncasecmp(line, user, ulen) != 0)
        return 0;
    return line[ulen] == ' ' || line[ulen] == '\t';
}

/* postern_passwd_write - the new text of the map: every line of the old one (if any) with
 * user's entries replaced by one `user hash` line. -1 (printed) on error. */
static int
postern_passwd_write(const char *path, const char *user, const char *hash)
{
    struct buf  *text = buf_new(4096);
    struct stat  st;
    FILE        *fp;
    char        *tmp = NULL, *line = NULL, *dir = NULL, *copy;
    size_t       cap = 0;
    ssize_t      n;
    int          fd = -1, dfd = -1, replaced = 0, rc = -1, have_old = 0;

    copy = xstrdup(path);
    dir = xstrdup(dirname(copy));
    free(copy);
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
        fprintf(stderr, "postern: passwd: %s: %s\n", dir, strerror(errno));
        goto out;
    }
    if (flock(dfd, LOCK_EX) == -1) {
        fprintf(stderr, "postern: passwd: lock %s: %s\n", dir, strerror(errno));
        goto out;
    }
    if ((fp = fopen(path, "re")) != NULL) {
        have_old = 1;
        if (fstat(fileno(fp), &st) == -1) {
            fprintf(stderr, "postern: passwd: %s: %s\n", path, strerror(errno));
            fclose(fp);
            goto out;
        }
        while ((n = getline(&line, &cap, fp)) != -1) {
            if (postern_passwd_line_user(line, (size_t)n, user)) {
                if (!replaced)
                    buf_printf(text, "%s %s\n", user, hash);
                replaced = 1;
                continue;
            }
            buf_append(text, line, (size_t)n);
            if (n > 0 && line[n - 1] != '\n')
                buf_puts(text, "\n");
        }
        if (ferror(fp)) {
            fprintf(stderr, "postern: passwd: %s: read: %s\n", path, strerror(errno));
            fclose(fp);
            goto out;
        }
        fclose(fp);
    } else if (errno != ENOENT) {
        fprintf(stderr, "postern: passwd: %s: %s\n", path, strerror(errno));
        goto out;
    }
    if (!replaced)
        buf_printf(text, "%s %s\n", user, hash);

    tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    (void)unlink(tmp);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
        fprintf(stderr, "postern: passwd: %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) == -1 ||
        (have_old && geteuid() == 0 && fchown(fd, st.st_uid, st.st_gid) == -1)) {
        fprintf(stderr, "postern: passwd: %s: %s\n", tmp, strerror(errno));
        goto out_unlink;
    }
    for (size_t off = 0; off < text->len;) {
        ssize_t w = write(fd, text->data + off, text->len - off);

        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "postern: passwd: %s: write: %s\n", tmp, strerror(errno));
            goto out_unlink;
        }
        off += (size_t)w;
    }
    if (fsync(fd) == -1 || close(fd) == -1) {
        fd = -1;
        fprintf(stderr, "postern: passwd: %s: %s\n", tmp, strerror(errno));
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp, path) == -1) {
        fprintf(stderr, "postern: passwd: rename %s to %s: %s\n", tmp, path, strerror(errno));
        goto out_unlink;
    }
    if (fsync(dfd) == -1)
        fprintf(stderr, "postern: passwd: warning: fsync %s: %s\n", dir, strerror(errno));
    printf("postern: %s %s in %s\n", replaced ? "changed the password of" : "added", user,
           path);
    rc = 0;
    goto out;

out_unlink:
    unlink(tmp);
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);             /* releases the lock */
    if (line != NULL) {
        explicit_bzero(line, cap);
        free(line);
    }
    buf_wipe(text);
    buf_free(&text);
    free(tmp);
    free(dir);
    return rc;
}

/* postern_passwd_map - the map file: -m, else smtpd_auth_map (xmalloc'd; NULL printed). */
static char *
postern_passwd_map(const struct postern_ctx *ctx, const char *opt)
{
    struct config *cfg;
    char           err[1024], *out = NULL;

    if (opt != NULL)
        return xstrdup(opt);
    if ((cfg = config_load(ctx->confdir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    if (*config_path(cfg, "smtpd_auth_map") == '\0')
        fprintf(stderr, "postern: passwd: smtpd_auth_map is not set in %s/%s (or use -m "
                "MAPFILE)\n", config_dir(cfg), CONFIG_FILE);
    else
        out = xstrdup(config_path(cfg, "smtpd_auth_map"));
    config_free(&cfg);
    return out;
}

int
postern_cmd_passwd(struct postern_ctx *ctx, int argc, char **argv)
{
    const char *mapopt = NULL, *user;
    char        pw[POSTERN_PASSWD_MAX + 2], hash[PWHASH_MAX], err[1024], real[PATH_MAX];
    char       *map;
    int         ch, rc = 1;

    optind = 0;
    while ((ch = getopt(argc, argv, "+m:")) != -1) {
        if (ch != 'm')
            goto usage;
        mapopt = optarg;
    }
    if (optind + 1 != argc)
        goto usage;
    user = argv[optind];
    if (!postern_passwd_user_ok(user)) {
        fprintf(stderr, "postern: passwd: \"%s\" cannot be a user name (no white space or "
                "control characters, at most %d bytes, not starting with #)\n", user,
                POSTERN_PASSWD_USER_MAX);
        return 2;
    }
    if ((map = postern_passwd_map(ctx, mapopt)) == NULL)
        return 1;
    /* Work on the file a symbolic link points to, so the link stays a link. */
    if (realpath(map, real) != NULL) {
        free(map);
        map = xstrdup(real);
    }
    if (postern_passwd_get(pw, sizeof(pw)) == -1)
        goto out;
    if (pwhash_make(pw, hash) == -1) {
        explicit_bzero(pw, sizeof(pw));
        fprintf(stderr, "postern: passwd: cannot hash the password (crypt failed)\n");
        goto out;
    }
    explicit_bzero(pw, sizeof(pw));
    if (postern_passwd_write(map, user, hash) == -1)
        goto out;
    if (map_build(map, err, sizeof(err)) == -1) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    rc = 0;
out:
    explicit_bzero(hash, sizeof(hash));
    free(map);
    return rc;
usage:
    fprintf(stderr, "usage: postern passwd [-m MAPFILE] USER\n");
    return 2;
}
