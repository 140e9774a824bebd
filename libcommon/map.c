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
 * Keys and values are stored without a terminating NUL. A map handle sees the file it opened:
 * after a rebuild, a process reopens the map (local on SIGHUP or when SOURCE.db changes). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* map_build - compile SOURCE into SOURCE.db via a temporary file and rename. */
int
map_build(const char *source, char *err, size_t errlen)
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
    if (map_build_records(source, fp, db, err, errlen) == -1)
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
