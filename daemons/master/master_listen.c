/* master_listen - listening sockets: parse `host:port` items and bind them.
 *
 * The config lists smtp_listen, submission_listen and smtps_listen name the sockets that
 * smtpd serves. master binds them all before any daemon starts (so ports below 1024 work when
 * master is root) and hands them to every smtpd on fds 4, 5, ... with POSTERN_LISTENERS
 * naming their services. Addresses are numeric; a host name is an error, since the master
 * resolves nothing. On reload, sockets whose service and address did not change are kept
 * (duplicated), so no port is closed under the clients' feet.
 *
 * One more listener is always there: <queue_directory>/public/submit, a UNIX stream socket
 * (mode 0666 in the 0755 public/ directory), service `submit`, where `sendmail` speaks SMTP
 * and smtpd takes the peer's uid (SO_PEERCRED) as the sender's identity. It comes last in
 * POSTERN_LISTENERS (master_listen_add_submit(), after master_listen_open()); since
 * queue_directory cannot change on reload, a reload always keeps it (duplicated like a
 * port). master_listen_unlink() removes the file when master exits. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "master.h"

/* The configuration keys, in the order their sockets are passed to smtpd. */
static const struct {
    const char *key;
    const char *service;
} master_listen_keys[] = {
    { "smtp_listen",       "smtp" },
    { "submission_listen", "submission" },
    { "smtps_listen",      "smtps" },
};

/* master_listen_port - a decimal port 1..65535; -1 if malformed. */
static int
master_listen_port(const char *s)
{
    long port = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        port = port * 10 + (*s - '0');
        if (port > 65535)
            return -1;
    }
    return port == 0 ? -1 : (int)port;
}

int
master_listen_parse(const char *spec, struct sockaddr_storage *addr, socklen_t *addrlen,
                    char *err, size_t errlen)
{
    char        host[INET6_ADDRSTRLEN + 1];
    const char *port_str;
    size_t      hlen;
    int         port, v6 = 0;

    memset(addr, 0, sizeof(*addr));
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');

        if (end == NULL || end[1] != ':') {
            snprintf(err, errlen, "expected [IPv6-address]:port");
            return -1;
        }
        hlen = (size_t)(end - spec - 1);
        if (hlen == 0 || hlen >= sizeof(host)) {
            snprintf(err, errlen, "bad IPv6 address");
            return -1;
        }
        memcpy(host, spec + 1, hlen);
        port_str = end + 2;
        v6 = 1;
    } else {
        const char *colon = strrchr(spec, ':');

        if (colon == NULL) {
            snprintf(err, errlen, "expected address:port");
            return -1;
        }
        hlen = (size_t)(colon - spec);
        if (memchr(spec, ':', hlen) != NULL) {
            snprintf(err, errlen, "an IPv6 address needs brackets: [address]:port");
            return -1;
        }
        if (hlen == 0 || hlen >= sizeof(host)) {
            snprintf(err, errlen, "bad IPv4 address");
            return -1;
        }
        memcpy(host, spec, hlen);
        port_str = colon + 1;
    }
    host[hlen] = '\0';
    if ((port = master_listen_port(port_str)) == -1) {
        snprintf(err, errlen, "bad port \"%s\"", port_str);
        return -1;
    }
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;

        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            snprintf(err, errlen, "bad IPv6 address \"%s\"", host);
            return -1;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *addrlen = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)addr;

        if (strcmp(host, "*") == 0) {
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
        } else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            snprintf(err, errlen, "bad IPv4 address \"%s\" (addresses must be numeric)", host);
            return -1;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *addrlen = sizeof(*sin);
    }
    return 0;
}

/* master_listen_bind - a non-blocking, close-on-exec listening socket on l->addr; -1 with
 * the reason in err. */
static int
master_listen_bind(const struct master_listener *l, char *err, size_t errlen)
{
    int fd, one = 1;

    fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1) {
        snprintf(err, errlen, "SO_REUSEADDR: %s", strerror(errno));
        goto fail;
    }
    if (l->addr.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) {
        snprintf(err, errlen, "IPV6_V6ONLY: %s", strerror(errno));
        goto fail;
    }
    if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) == -1) {
        snprintf(err, errlen, "bind: %s", strerror(errno));
        goto fail;
    }
    if (listen(fd, MASTER_LISTEN_BACKLOG) == -1) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        goto fail;
    }
    return fd;

fail:
    close(fd);
    return -1;
}

/* master_listen_submit_addr - the sockaddr_un of <queue_directory>/public/submit; -1 if
 * the path is too long for a UNIX socket. */
static int
master_listen_submit_addr(const struct config *cfg, struct master_listener *l)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&l->addr;
    char               *path = xasprintf("%s/%s", config_path(cfg, "queue_directory"),
                                         MASTER_SUBMIT_PATH);

    memset(&l->addr, 0, sizeof(l->addr));
    if (strlen(path) >= sizeof(sun->sun_path)) {
        free(path);
        return -1;
    }
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, strlen(path) + 1);
    l->addrlen = sizeof(*sun);
    l->spec = path;
    return 0;
}

/* master_listen_bind_unix - the public/submit socket: a stale file (a dead master's: we
 * hold the pid file lock) is replaced; mode 0666, since the peer's uid, not the mode, is
 * the identity. -1 with the reason in err. */
static int
master_listen_bind_unix(const struct master_listener *l, char *err, size_t errlen)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&l->addr;
    int                       fd;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (unlink(sun->sun_path) == -1 && errno != ENOENT) {
        snprintf(err, errlen, "unlink: %s", strerror(errno));
        goto fail;
    }
    if (bind(fd, (const struct sockaddr *)sun, l->addrlen) == -1) {
        snprintf(err, errlen, "bind: %s", strerror(errno));
        goto fail;
    }
    if (chmod(sun->sun_path, 0666) == -1) {
        snprintf(err, errlen, "chmod: %s", strerror(errno));
        goto fail;
    }
    if (listen(fd, MASTER_LISTEN_BACKLOG) == -1) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        goto fail;
    }
    return fd;

fail:
    close(fd);
    return -1;
}

/* master_listen_find - the listener of set with this service and address, or NULL. */
static const struct master_listener *
master_listen_find(const struct master_listeners *set, const struct master_listener *l)
{
    for (size_t i = 0; set != NULL && i < set->n; i++) {
        const struct master_listener *o = &set->v[i];

        if (o->fd >= 0 && strcmp(o->service, l->service) == 0 && o->addrlen == l->addrlen &&
            memcmp(&o->addr, &l->addr, l->addrlen) == 0)
            return o;
    }
    return NULL;
}

/* master_listen_collect - parse every configured item into out (no sockets yet). */
static int
master_listen_collect(const struct config *cfg, struct master_listeners *out, char *err,
                      size_t errlen)
{
    size_t total = 0, n;
    char   why[256];

    for (size_t k = 0; k < sizeof(master_listen_keys) / sizeof(master_listen_keys[0]); k++) {
        config_list(cfg, master_listen_keys[k].key, &n);
        total += n;
    }
    if (total + 1 > MASTER_LISTEN_MAX) {
        snprintf(err, errlen, "%zu listeners configured, at most %d are supported", total,
                 MASTER_LISTEN_MAX - 1);
        out->v = NULL;
        out->n = 0;
        return -1;
    }
    out->v = xcalloc(total + 1, sizeof(*out->v));
    out->n = 0;
    for (size_t k = 0; k < sizeof(master_listen_keys) / sizeof(master_listen_keys[0]); k++) {
        char *const *items = config_list(cfg, master_listen_keys[k].key, &n);

        for (size_t i = 0; i < n; i++) {
            struct master_listener *l = &out->v[out->n];

            if (master_listen_parse(items[i], &l->addr, &l->addrlen, why, sizeof(why)) == -1) {
                snprintf(err, errlen, "%s: %s: %s", master_listen_keys[k].key, items[i], why);
                return -1;
            }
            l->service = xstrdup(master_listen_keys[k].service);
            l->spec = xstrdup(items[i]);
            l->fd = -1;
            out->n++;
        }
    }
    return 0;
}

int
master_listen_check(const struct config *cfg, char *err, size_t errlen)
{
    struct master_listeners set = { NULL, 0 };
    int                     rc = master_listen_collect(cfg, &set, err, errlen);

    master_listen_close(&set);
    return rc;
}

int
master_listen_open(const struct config *cfg, const struct master_listeners *old,
                   struct master_listeners *out, char *err, size_t errlen)
{
    char why[256];

    if (master_listen_collect(cfg, out, err, errlen) == -1) {
        master_listen_close(out);
        return -1;
    }
    for (size_t i = 0; i < out->n; i++) {
        struct master_listener       *l = &out->v[i];
        const struct master_listener *o = master_listen_find(old, l);

        if (o != NULL) {
            if ((l->fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 3)) == -1) {
                snprintf(err, errlen, "%s %s: dup: %s", l->service, l->spec, strerror(errno));
                master_listen_close(out);
                return -1;
            }
        } else if ((l->fd = master_listen_bind(l, why, sizeof(why))) == -1) {
            snprintf(err, errlen, "%s_listen: %s: %s", l->service, l->spec, why);
            master_listen_close(out);
            return -1;
        }
    }
    return 0;
}

int
master_listen_add_submit(const struct config *cfg, const struct master_listeners *old,
                         struct master_listeners *set, char *err, size_t errlen)
{
    struct master_listener        l;
    const struct master_listener *o;
    char                          why[256];

    memset(&l, 0, sizeof(l));
    if (master_listen_submit_addr(cfg, &l) == -1) {
        snprintf(err, errlen, "queue_directory: %s/%s: path too long for a UNIX socket",
                 config_path(cfg, "queue_directory"), MASTER_SUBMIT_PATH);
        return -1;
    }
    l.service = xstrdup("submit");
    if ((o = master_listen_find(old, &l)) != NULL) {
        if ((l.fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 3)) == -1)
            snprintf(err, errlen, "%s: dup: %s", l.spec, strerror(errno));
    } else if ((l.fd = master_listen_bind_unix(&l, why, sizeof(why))) == -1) {
        snprintf(err, errlen, "%s: %s", l.spec, why);
    }
    if (l.fd == -1) {
        free(l.service);
        free(l.spec);
        return -1;
    }
    set->v = xrealloc(set->v, (set->n + 1) * sizeof(*set->v));
    set->v[set->n++] = l;
    return 0;
}

int
master_listen_same(const struct master_listeners *a, const struct master_listeners *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->v[i].service, b->v[i].service) != 0 ||
            a->v[i].addrlen != b->v[i].addrlen ||
            memcmp(&a->v[i].addr, &b->v[i].addr, a->v[i].addrlen) != 0)
            return 0;
    }
    return 1;
}

char *
master_listen_services(const struct master_listeners *set)
{
    struct buf b;
    char      *s;

    buf_init(&b, 64);
    for (size_t i = 0; i < set->n; i++)
        buf_printf(&b, "%s%s", i ? "," : "", set->v[i].service);
    s = xstrdup(buf_cstr(&b));
    buf_release(&b);
    return s;
}

void
master_listen_close(struct master_listeners *set)
{
    for (size_t i = 0; i < set->n; i++) {
        if (set->v[i].fd >= 0)
            close(set->v[i].fd);
        free(set->v[i].service);
        free(set->v[i].spec);
    }
    free(set->v);
    set->v = NULL;
    set->n = 0;
}

void
master_listen_unlink(const struct master_listeners *set)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&set->v[i].addr;

        if (set->v[i].addr.ss_family == AF_UNIX && unlink(sun->sun_path) == -1 &&
            errno != ENOENT)
            log_warn("unlink %s", sun->sun_path);
    }
}
