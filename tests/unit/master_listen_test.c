/* master_listen_test - listener address parsing and binding in master.
 *
 * The test includes daemons/master/master_listen.c itself, since unit tests link only the
 * libraries. Parsing is table-driven (good and bad `host:port` items); binding uses a real
 * configuration in a temporary directory and loopback ports, and checks that a reload keeps
 * the sockets whose service and address did not change. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../daemons/master/master_listen.c"
#include "test.h"

/* test_master_listen_addr - "addr port" of a parsed address, for comparisons. */
static void
test_master_listen_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "6 %s %u", host, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "4 %s %u", host, ntohs(s4->sin_port));
    }
}

/* test_master_listen_parse_good - accepted items and what they parse to. */
static void
test_master_listen_parse_good(void)
{
    static const struct {
        const char *spec, *want;
    } cases[] = {
        { "127.0.0.1:25", "4 127.0.0.1 25" },
        { "0.0.0.0:587", "4 0.0.0.0 587" },
        { "*:465", "4 0.0.0.0 465" },
        { "192.0.2.1:65535", "4 192.0.2.1 65535" },
        { "[::1]:2525", "6 ::1 2525" },
        { "[::]:25", "6 :: 25" },
        { "[2001:db8::5]:1", "6 2001:db8::5 1" },
        { "[::ffff:127.0.0.1]:25", "6 ::ffff:127.0.0.1 25" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t               len = 0;
        char                    err[256] = "", got[128] = "";

        CHECK(master_listen_parse(cases[i].spec, &ss, &len, err, sizeof(err)) == 0);
        test_master_listen_addr(&ss, got, sizeof(got));
        CHECK_STR(got, cases[i].want);
        CHECK(len == (ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                               : sizeof(struct sockaddr_in)));
    }
}

/* test_master_listen_parse_bad - refused items, each with a reason. */
static void
test_master_listen_parse_bad(void)
{
    static const char *const cases[] = {
        "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:25x",
        "127.0.0.1:-1", "127.0.0.1: 25", ":25", "localhost:25", "mx.example.org:25",
        "256.0.0.1:25", "::1:25", "[::1]25", "[::1]", "[::1:25", "[]:25", "[127.0.0.1]:25",
        "[::1]:", "[::1]:99999", "1.2.3.4:25:26", "[zz::1]:25",
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t               len = 0;
        char                    err[256] = "";

        if (master_listen_parse(cases[i], &ss, &len, err, sizeof(err)) != -1) {
            fprintf(stderr, "  accepted \"%s\"\n", cases[i]);
            CHECK(0);
        }
        CHECK(err[0] != '\0');
    }
}

/* test_master_listen_free_port - a loopback port that was free a moment ago. */
static int
test_master_listen_free_port(void)
{
    struct sockaddr_in sin;
    socklen_t          len = sizeof(sin);
    int                fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    getsockname(fd, (struct sockaddr *)&sin, &len);
    port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

/* test_master_listen_config - a config in a fresh directory; NULL on error. */
static struct config *
test_master_listen_config(char *dir, const char *text)
{
    char  path[512], err[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/postern.conf", dir);
    if ((f = fopen(path, "w")) == NULL)
        return NULL;
    fputs(text, f);
    fclose(f);
    return config_load(dir, err, sizeof(err));
}

/* test_master_listen_open_reuse - binding, services order, errors, and reuse on reload. */
static void
test_master_listen_open_reuse(void)
{
    char                    dir[] = "/tmp/master_listen_test.XXXXXX", text[512], err[512];
    int                     p1 = test_master_listen_free_port();
    int                     p2 = test_master_listen_free_port();
    struct master_listeners a = { NULL, 0 }, b = { NULL, 0 }, c = { NULL, 0 };
    struct config          *cfg;
    char                   *services;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(text, sizeof(text), "smtp_listen = 127.0.0.1:%d\nsubmission_listen = "
             "127.0.0.1:%d\n", p1, p2);
    cfg = test_master_listen_config(dir, text);
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return;
    CHECK(master_listen_open(cfg, NULL, &a, err, sizeof(err)) == 0);
    CHECK(a.n == 2);
    services = master_listen_services(&a);
    CHECK_STR(services, "smtp,submission");
    free(services);
    for (size_t i = 0; i < a.n; i++) {
        int       v = 0;
        socklen_t l = sizeof(v);

        CHECK(getsockopt(a.v[i].fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0 && v == 1);
    }

    /* The same addresses again without reuse: already bound. */
    CHECK(master_listen_open(cfg, NULL, &b, err, sizeof(err)) == -1);
    CHECK(strstr(err, "smtp_listen") != NULL && strstr(err, "127.0.0.1") != NULL);
    CHECK(b.n == 0 && b.v == NULL);

    /* A reload with the same config reuses both sockets. */
    CHECK(master_listen_open(cfg, &a, &b, err, sizeof(err)) == 0);
    CHECK(master_listen_same(&a, &b));
    for (size_t i = 0; i < b.n; i++)
        CHECK(b.v[i].fd != a.v[i].fd);
    config_free(&cfg);

    /* One port changed: the other is kept, the set differs. */
    snprintf(text, sizeof(text), "smtp_listen = 127.0.0.1:%d\n", p1);
    cfg = test_master_listen_config(dir, text);
    CHECK(cfg != NULL);
    if (cfg != NULL) {
        CHECK(master_listen_open(cfg, &a, &c, err, sizeof(err)) == 0);
        CHECK(c.n == 1 && !master_listen_same(&a, &c));
        config_free(&cfg);
    }

    /* A bad item names its key and the item. */
    cfg = test_master_listen_config(dir, "smtps_listen = localhost:465\n");
    CHECK(cfg != NULL);
    if (cfg != NULL) {
        master_listen_close(&c);
        CHECK(master_listen_open(cfg, NULL, &c, err, sizeof(err)) == -1);
        CHECK(strstr(err, "smtps_listen: localhost:465: ") == err);
        config_free(&cfg);
    }
    master_listen_close(&a);
    master_listen_close(&b);
    master_listen_close(&c);
    snprintf(text, sizeof(text), "%s/postern.conf", dir);
    unlink(text);
    rmdir(dir);
}

int
main(void)
{
    TEST_RUN(test_master_listen_parse_good);
    TEST_RUN(test_master_listen_parse_bad);
    TEST_RUN(test_master_listen_open_reuse);
    TEST_END();
}
