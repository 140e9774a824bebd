/* map - lookup tables: text files compiled to Berkeley DB hash files.
 *
 * See map.h. map_build() reads SOURCE line by line: blank lines and lines whose first
 * non-blank character is `#` are skipped; any other line is a key (the first word,
 * lower-cased) and a value (the rest of the line after the separating white space, trailing
 * white space removed). A line that starts with white space (a continuation line elsewhere),
 * a key without a value, a repeated key or a NUL byte is an error "file:line: message" and no
 * .db file is written. The records go into SOURCE.db.tmp.<pid>, created with DB_EXCL without
 * a Berkeley DB environment, closed, fsync'd and renamed over SOURCE.db; the directory is
 * fsync'd last, so a reader opens either the old map or the new one, never half of one.
 *
 * map_build_aliases() reads the aliases(5) format instead (see map.h) through the same
 * temporary-file-and-rename path; its values are normalised to "a, b, c".
 *
 * Keys and values are stored without a terminating NUL. A map handle sees the file it opened:
 * after a rebuild, a process reopens the map (local on SIGHUP or when SOURCE.db changes), or
 * master replaces it (smtpd, qmgr: daemons/master/master_watch.c). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <db.h>

#include "buf.h"
#include "log.h"
#include "map.h"

struct map {
    DB   *db;
    char *path;         /* SOURCE.db, for log lines */
};

/* map_lower - copy key into a new lower-case (ASCII) string. */
static char *
map_lower(const char *key)
{
    char *s = xstrdup(key);

    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return s;
}

/* map_open - open SOURCE.db read-only, without an environment. */
struct map *
map_open(const char *source, char *err, size_t errlen)
{
    struct map  *m;
    struct stat  st_src, st_db;
    DB          *db;
    char        *path = xasprintf("%s.db", source);
    int          ret;

    if ((ret = db_create(&db, NULL, 0)) != 0) {
        snprintf(err, errlen, "%s: db_create: %s", path, db_strerror(ret));
        free(path);
        return NULL;
    }
    ret = db->open(db, NULL, path, NULL, DB_HASH, DB_RDONLY, 0);
    if (ret != 0) {
        snprintf(err, errlen, "%s: %s", path, db_strerror(ret));
        db->close(db, 0);
        free(path);
        return NULL;
    }
    if (stat(source, &st_src) == 0 && stat(path, &st_db) == 0
        && st_src.st_mtime > st_db.st_mtime)
        log_warnx("map=%s: older than its source %s; run postern map build", path, source);
    m = xcalloc(1, sizeof(*m));
    m->db = db;
    m->path = path;
    return m;
}

/* map_close - close the database handle; sets *mp = NULL. */
void
map_close(struct map **mp)
{
    struct map *m = *mp;

    if (m == NULL)
        return;
    m->db->close(m->db, 0);
    free(m->path);
    free(m);
    *mp = NULL;
}

/* map_lookup - look up the lower-cased key; copy the value into val. */
int
map_lookup(struct map *m, const char *key, char *val, size_t vallen)
{
    DBT   k, d;
    char *lkey;
    int   ret;

    if (vallen == 0 || vallen - 1 > UINT32_MAX)
        return -1;
    lkey = map_lower(key);
    memset(&k, 0, sizeof(k));
    memset(&d, 0, sizeof(d));
    k.data = lkey;
    k.size = (u_int32_t)strlen(lkey);
    d.data = val;
    d.ulen = (u_int32_t)(vallen - 1);
    d.flags = DB_DBT_USERMEM;
    ret = m->db->get(m->db, NULL, &k, &d, 0);
    free(lkey);
    switch (ret) {
    case 0:
        val[d.size] = '\0';
        return 1;
    case DB_NOTFOUND:
        return 0;
    case DB_BUFFER_SMALL:
        log_warnx("map=%s: value for key \"%s\" longer than %zu bytes", m->path, key,
                  vallen - 1);
        return -1;
    default:
        log_warnx("map=%s: lookup of \"%s\": %s", m->path, key, db_strerror(ret));
        return -1;
    }
}

/* map_fsync_path - open a file or directory read-only and fsync it. -1 with errno set. */
static int
map_fsync_path(const char *path)
{
    int fd, saved;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
        return -1;
    if (fsync(fd) == -1) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return close(fd);
}

/* map_dir_of - the directory that holds path ("." when it has no slash). */
static char *
map_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

/* map_parse_line - split one source line in place. 0: key and value set (key NULL for a
 * line to skip); -1: malformed, the reason in why. */
static int
map_parse_line(char *line, size_t len, char **key, char **val, char *why, size_t whylen)
{
    char *p, *end;

    *key = *val = NULL;
    if (strlen(line) != len) {
        snprintf(why, whylen, "NUL byte in line");
        return -1;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'
                       || line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    for (p = line; *p == ' ' || *p == '\t'; p++)
        ;
    if (*p == '\0' || *p == '#')
        return 0;
    if (p != line) {
        snprintf(why, whylen, "line starts with white space (continuation lines are not "
                 "supported)");
        return -1;
    }
    for (end = p; *end && *end != ' ' && *end != '\t'; end++)
        ;
    if (*end == '\0') {
        snprintf(why, whylen, "missing value for key \"%.200s\"", p);
        return -1;
    }
    *end++ = '\0';
    while (*end == ' ' || *end == '\t')
        end++;
    for (char *c = p; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    *key = p;
    *val = end;
    return 0;
}

/* map_build_records - read the source and put every record into db. -1 with err set. */
static int
map_build_records(const char *source, FILE *fp, DB *db, char *err, size_t errlen)
{
    char    *line = NULL, *key, *val, why[256];
    size_t   cap = 0;
    ssize_t  n;
    unsigned lineno = 0;
    int      ret, rc = 0;

    while ((n = getline(&line, &cap, fp)) != -1) {
        DBT k, d;

        lineno++;
        if (map_parse_line(line, (size_t)n, &key, &val, why, sizeof(why)) == -1) {
            snprintf(err, errlen, "%s:%u: %s", source, lineno, why);
            rc = -1;
            break;
        }
        if (key == NULL)
            continue;
        memset(&k, 0, sizeof(k));
        memset(&d, 0, sizeof(d));
        k.data = key;
        k.size = (u_int32_t)strlen(key);
        d.data = val;
        d.size = (u_int32_t)strlen(val);
        ret = db->put(db, NULL, &k, &d, DB_NOOVERWRITE);
        if (ret == DB_KEYEXIST) {
            snprintf(err, errlen, "%s:%u: duplicate key \"%.200s\"", source, lineno, key);
            rc = -1;
            break;
        }
        if (ret != 0) {
            snprintf(err, errlen, "%s:%u: db put: %s", source, lineno, db_strerror(ret));
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(fp)) {
        snprintf(err, errlen, "%s: read: %s", source, strerror(errno));
        rc = -1;
    }
    free(line);
    return rc;
}

typedef int (*map_records_fn)(const char *source, FILE *fp, DB *db, char *err, size_t errlen);

/* map_build_db - compile SOURCE into SOURCE.db with the given reader, via a temporary file
 * and rename. */
static int
map_build_db(const char *source, map_records_fn records, char *err, size_t errlen)
{
    FILE        *fp;
    DB          *db = NULL;
    struct stat  st;
    char        *path = NULL, *tmp = NULL, *dir = NULL;
    int          ret, rc = -1;

    if ((fp = fopen(source, "re")) == NULL) {
        snprintf(err, errlen, "%s: %s", source, strerror(errno));
        return -1;
    }
    if (fstat(fileno(fp), &st) == -1) {
        snprintf(err, errlen, "%s: %s", source, strerror(errno));
        goto out;
    }
    path = xasprintf("%s.db", source);
    tmp = xasprintf("%s.db.tmp.%ld", source, (long)getpid());
    /* A leftover from a build that died with our pid is garbage; nobody else uses the name. */
    if (unlink(tmp) == -1 && errno != ENOENT) {
        snprintf(err, errlen, "%s: unlink: %s", tmp, strerror(errno));
        goto out;
    }
    if ((ret = db_create(&db, NULL, 0)) != 0) {
        snprintf(err, errlen, "%s: db_create: %s", tmp, db_strerror(ret));
        db = NULL;
        goto out;
    }
    /* The .db is as private as its source (a mailbox map may be readable by root only). */
    ret = db->open(db, NULL, tmp, NULL, DB_HASH, DB_CREATE | DB_EXCL,
                   (int)(st.st_mode & 0666));
    if (ret != 0) {
        snprintf(err, errlen, "%s: %s", tmp, db_strerror(ret));
        db->close(db, 0);
        db = NULL;
        goto out;
    }
    if (records(source, fp, db, err, errlen) == -1)
        goto out_unlink;
    ret = db->close(db, 0);
    db = NULL;
    if (ret != 0) {
        snprintf(err, errlen, "%s: db close: %s", tmp, db_strerror(ret));
        goto out_unlink;
    }
    if (map_fsync_path(tmp) == -1) {
        snprintf(err, errlen, "%s: fsync: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    if (rename(tmp, path) == -1) {
        snprintf(err, errlen, "%s: rename to %s: %s", tmp, path, strerror(errno));
        goto out_unlink;
    }
    dir = map_dir_of(path);
    if (map_fsync_path(dir) == -1) {
        snprintf(err, errlen, "%s: fsync: %s", dir, strerror(errno));
        goto out;
    }
    rc = 0;
    goto out;

out_unlink:
    if (db != NULL) {
        db->close(db, 0);
        db = NULL;
    }
    unlink(tmp);
out:
    if (db != NULL)
        db->close(db, 0);
    fclose(fp);
    free(dir);
    free(tmp);
    free(path);
    return rc;
}

/* map_build - compile SOURCE (`key value` lines) into SOURCE.db. */
int
map_build(const char *source, char *err, size_t errlen)
{
    return map_build_db(source, map_build_records, err, errlen);
}

/* map_alias_name - parse the alias name at the start of a logical line (`name:` or
 * `"quoted name":`); on success *rest points after the colon. NULL with why set. */
static char *
map_alias_name(char *line, char **rest, char *why, size_t whylen)
{
    char *p = line, *name, *end;

    if (*p == '"') {
        name = ++p;
        if ((end = strchr(p, '"')) == NULL) {
            snprintf(why, whylen, "unterminated quoted alias name");
            return NULL;
        }
        *end = '\0';
        p = end + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ':') {
            snprintf(why, whylen, "missing ':' after alias name \"%.200s\"", name);
            return NULL;
        }
    } else {
        name = p;
        p += strcspn(p, ": \t");
        end = p;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ':') {
            *end = '\0';
            if (*p == '\0')
                snprintf(why, whylen, "missing ':' after alias name \"%.200s\"", name);
            else
                snprintf(why, whylen, "white space in alias name \"%.200s %.50s\" (quote "
                         "names with spaces)", name, p);
            return NULL;
        }
        *end = '\0';
    }
    *rest = p + 1;
    if (*name == '\0') {
        snprintf(why, whylen, "empty alias name");
        return NULL;
    }
    if (strchr(name, '@') != NULL) {
        snprintf(why, whylen, "alias name \"%.200s\" has a domain (aliases are local parts; "
                 "use virtual_alias_map for addresses)", name);
        return NULL;
    }
    for (char *c = name; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return name;
}

/* map_alias_targets - the targets after the colon, checked, as "a, b, c" in out. -1 with
 * why set. Targets are separated by commas (or white space) outside double quotes. */
static int
map_alias_targets(const char *name, const char *p, struct buf *out, char *why, size_t whylen)
{
    while (*p) {
        const char *start, *t;
        size_t      len;
        int         quoted = 0;

        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        for (start = p; *p; p++) {
            if (*p == '"')
                quoted = !quoted;
            else if (*p == '\\' && quoted && p[1] != '\0')
                p++;
            else if (!quoted && (*p == ',' || *p == ' ' || *p == '\t'))
                break;
        }
        if (quoted) {
            snprintf(why, whylen, "alias \"%.200s\": unterminated quote", name);
            return -1;
        }
        len = (size_t)(p - start);
        t = start + (*start == '\\' || *start == '"');
        if (*t == '|' || *t == '/' || strncasecmp(t, ":include:", 9) == 0) {
            snprintf(why, whylen, "alias \"%.200s\": \"%.*s\": pipes, files and :include: "
                     "are not supported", name, (int)(len > 200 ? 200 : len), start);
            return -1;
        }
        if (*t == '#') {
            snprintf(why, whylen, "alias \"%.200s\": '#' in a value (comments go on lines of "
                     "their own)", name);
            return -1;
        }
        if (out->len > 0)
            buf_puts(out, ", ");
        buf_append(out, start, len);
    }
    if (out->len == 0) {
        snprintf(why, whylen, "alias \"%.200s\" has no targets", name);
        return -1;
    }
    return 0;
}

/* map_alias_record - parse one logical line and store it. -1 with err set. */
static int
map_alias_record(const char *source, unsigned lineno, char *line, DB *db, char *err,
                 size_t errlen)
{
    struct buf  val;
    char        why[512], *name, *rest;
    DBT         k, d;
    int         ret, rc = -1;

    buf_init(&val, 64);
    if ((name = map_alias_name(line, &rest, why, sizeof(why))) == NULL
        || map_alias_targets(name, rest, &val, why, sizeof(why)) == -1) {
        snprintf(err, errlen, "%s:%u: %s", source, lineno, why);
        goto out;
    }
    memset(&k, 0, sizeof(k));
    memset(&d, 0, sizeof(d));
    k.data = name;
    k.size = (u_int32_t)strlen(name);
    d.data = val.data;
    d.size = (u_int32_t)val.len;
    ret = db->put(db, NULL, &k, &d, DB_NOOVERWRITE);
    if (ret == DB_KEYEXIST)
        snprintf(err, errlen, "%s:%u: duplicate alias \"%.200s\"", source, lineno, name);
    else if (ret != 0)
        snprintf(err, errlen, "%s:%u: db put: %s", source, lineno, db_strerror(ret));
    else
        rc = 0;
out:
    buf_release(&val);
    return rc;
}

/* map_build_alias_records - read an aliases(5) file: logical lines are a line that starts
 * with a non-blank character and the lines after it that start with white space; blank
 * lines and `#` lines are skipped (also between continuation lines). */
static int
map_build_alias_records(const char *source, FILE *fp, DB *db, char *err, size_t errlen)
{
    struct buf  logical;
    char       *line = NULL, *p;
    size_t      cap = 0, len;
    ssize_t     n;
    unsigned    lineno = 0, start = 0;
    int         rc = 0;

    buf_init(&logical, 256);
    while (rc == 0 && (n = getline(&line, &cap, fp)) != -1) {
        lineno++;
        len = (size_t)n;
        if (strlen(line) != len) {
            snprintf(err, errlen, "%s:%u: NUL byte in line", source, lineno);
            rc = -1;
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'
                           || line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        for (p = line; *p == ' ' || *p == '\t'; p++)
            ;
        if (*p == '\0' || *p == '#')
            continue;
        if (p != line) {
            if (start == 0) {
                snprintf(err, errlen, "%s:%u: continuation line without an alias before it",
                         source, lineno);
                rc = -1;
                break;
            }
            buf_puts(&logical, " ");
            buf_puts(&logical, p);
            continue;
        }
        if (start != 0)
            rc = map_alias_record(source, start, logical.data, db, err, errlen);
        buf_reset(&logical);
        buf_puts(&logical, line);
        start = lineno;
    }
    if (rc == 0 && ferror(fp)) {
        snprintf(err, errlen, "%s: read: %s", source, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && start != 0)
        rc = map_alias_record(source, start, logical.data, db, err, errlen);
    buf_release(&logical);
    free(line);
    return rc;
}

/* map_build_aliases - compile an aliases(5) file SOURCE into SOURCE.db (newaliases). */
int
map_build_aliases(const char *source, char *err, size_t errlen)
{
    return map_build_db(source, map_build_alias_records, err, errlen);
}

/* map_walk - every record through fn, with a cursor; see map.h. */
int
map_walk(struct map *m, map_walk_fn fn, void *arg, char *err, size_t errlen)
{
    DBC  *cur;
    DBT   k, d;
    int   ret, rc = 0;

    if ((ret = m->db->cursor(m->db, NULL, &cur, 0)) != 0) {
        snprintf(err, errlen, "%s: cursor: %s", m->path, db_strerror(ret));
        return -1;
    }
    memset(&k, 0, sizeof(k));
    memset(&d, 0, sizeof(d));
    while ((ret = cur->get(cur, &k, &d, DB_NEXT)) == 0) {
        char *key = xstrndup(k.data, k.size), *val = xstrndup(d.data, d.size);

        rc = fn(arg, key, val);
        free(key);
        free(val);
        if (rc != 0)
            break;
    }
    if (rc == 0 && ret != DB_NOTFOUND) {
        snprintf(err, errlen, "%s: read: %s", m->path, db_strerror(ret));
        rc = -1;
    }
    cur->close(cur);
    return rc;
}
