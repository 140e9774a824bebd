/* smtpd_dns_test - the client's name: PTR, forward confirmation, time bound, forget
 * (daemons/smtpd/smtpd_dns.c, included here since unit tests link only the libraries;
 * linked with -lunbound).
 *
 * First with one forwarder that never answers (a UDP socket nobody reads): loopback and
 * private addresses are answered by libunbound's default zones, anything else runs into
 * smtpd_peername_timeout. Then, when dnsmasq is installed, with dnsmasq on a free loopback
 * port holding PTR and A records for 198.18.0.0/15 (not a default zone): confirmed names,
 * names that do not resolve back, invalid names, several names. dnsmasq also names hosts
 * in 10/8, 172.16/12 and 192.168/16: unknown by default (libunbound answers those zones
 * itself), named with dns_lan_zones = yes. Every loop run has a guard timer; dnsmasq is
 * stopped by its PID. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../daemons/smtpd/smtpd_dns.c"
#include "test.h"

#define GUARD_MS   5000
#define TIMEOUT_MS 300                 /* smtpd_peername_timeout in these tests */
#define FAST_MS    250                 /* local-zone and dnsmasq answers; really ~1 ms */

struct smtpd smtpd;

static int      done_calls;
static uint64_t done_at;
static int      silent_fd = -1;
static pid_t    dnsmasq_pid = -1;

/* setup - load a postern.conf with text and start the lookups. -1 on failure (printed). */
static int
setup(const char *text)
{
    char  dir[] = "/tmp/postern-dnstest-XXXXXX", path[64], err[512];
    FILE *fp;

    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/%s", dir, CONFIG_FILE);
    if ((fp = fopen(path, "w")) == NULL)
        return -1;
    fputs(text, fp);
    fclose(fp);
    config_free(&smtpd.cfg);
    smtpd.cfg = config_load(dir, err, sizeof(err));
    unlink(path);
    rmdir(dir);
    if (smtpd.cfg == NULL) {
        fprintf(stderr, "  config: %s\n", err);
        return -1;
    }
    if (smtpd_dns_init(err, sizeof(err)) == -1) {
        fprintf(stderr, "  smtpd_dns_init: %s\n", err);
        return -1;
    }
    return 0;
}

static void
done_cb(struct smtpd_session *s)
{
    (void)s;
    done_calls++;
    done_at = ev_now_ms();
    ev_stop(smtpd.ev);
}

static void
guard_cb(void *arg)
{
    (void)arg;
    ev_stop(smtpd.ev);
}

/* run_for - the loop for at most ms (or until done_cb stops it). */
static void
run_for(uint64_t ms)
{
    uint64_t guard = ev_timer_add(smtpd.ev, ms, guard_cb, NULL);

    CHECK(ev_run(smtpd.ev) == 0);
    ev_timer_del(smtpd.ev, guard);
}

/* lookup - look up addr as a client of service svc; returns smtpd_dns_client()'s result
 * and the milliseconds until the names were known in *ms. */
static int
lookup(struct smtpd_session *s, const char *addr, enum smtpd_service svc, uint64_t *ms)
{
    uint64_t t0 = ev_now_ms();
    int      rc;

    memset(s, 0, sizeof(*s));
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    s->svc = svc;
    done_calls = 0;
    rc = smtpd_dns_client(s, done_cb);
    if (rc == 0) {
        CHECK(s->dns != NULL);
        run_for(GUARD_MS);
        CHECK(done_calls == 1);
        *ms = done_at - t0;
    } else {
        CHECK(s->dns == NULL);
        *ms = 0;
    }
    CHECK(s->dns == NULL);
    return rc;
}

/* expect_names - a looked-up client ends with these names, within bound ms. */
static void
expect_names(const char *addr, const char *ptr, const char *name, uint64_t bound)
{
    struct smtpd_session s;
    uint64_t             ms;
    int                  rc = lookup(&s, addr, SMTPD_SVC_SMTP, &ms);

    if (rc != 0 || strcmp(s.client_ptr, ptr) != 0 || strcmp(s.client_name, name) != 0
        || ms >= bound)
        fprintf(stderr, "  %s: rc %d ptr=%s name=%s after %llu ms\n", addr, rc, s.client_ptr,
                s.client_name, (unsigned long long)ms);
    CHECK(rc == 0);
    CHECK_STR(s.client_ptr, ptr);
    CHECK_STR(s.client_name, name);
    CHECK(ms < bound);
}

/* test_smtpd_dns_submit - public/submit is the local machine: no lookup. */
static void
test_smtpd_dns_submit(void)
{
    struct smtpd_session s;
    uint64_t             ms;

    CHECK(lookup(&s, "", SMTPD_SVC_SUBMIT, &ms) == 1);
    CHECK_STR(s.client_ptr, "localhost");
    CHECK_STR(s.client_name, "localhost");
    CHECK(done_calls == 0);
}

/* test_smtpd_dns_loopback - 127.0.0.1 and ::1 are localhost, confirmed, at once. */
static void
test_smtpd_dns_loopback(void)
{
    expect_names("127.0.0.1", "localhost", "localhost", FAST_MS);
    expect_names("::1", "localhost", "localhost", FAST_MS);
    expect_names("::ffff:127.0.0.1", "localhost", "localhost", FAST_MS);
}

/* test_smtpd_dns_private - private and documentation addresses: no name, at once. */
static void
test_smtpd_dns_private(void)
{
    expect_names("10.1.2.3", "unknown", "unknown", FAST_MS);
    expect_names("192.168.1.1", "unknown", "unknown", FAST_MS);
    expect_names("192.0.2.1", "unknown", "unknown", FAST_MS);
    expect_names("127.0.0.2", "unknown", "unknown", FAST_MS);
}

/* test_smtpd_dns_timeout - a server that never answers costs smtpd_peername_timeout. */
static void
test_smtpd_dns_timeout(void)
{
    struct smtpd_session s;
    uint64_t             ms;

    CHECK(lookup(&s, "8.8.8.8", SMTPD_SVC_SMTP, &ms) == 0);
    CHECK_STR(s.client_ptr, "unknown");
    CHECK_STR(s.client_name, "unknown");
    CHECK(ms >= TIMEOUT_MS - 10 && ms < TIMEOUT_MS + 1000);
}

/* test_smtpd_dns_forget - a forgotten lookup never calls back; forgetting twice or with
 * nothing in progress is harmless. */
static void
test_smtpd_dns_forget(void)
{
    struct smtpd_session s1, s2;

    memset(&s1, 0, sizeof(s1));
    memset(&s2, 0, sizeof(s2));
    snprintf(s1.addr, sizeof(s1.addr), "8.8.4.4");
    snprintf(s2.addr, sizeof(s2.addr), "127.0.0.1");
    done_calls = 0;
    CHECK(smtpd_dns_client(&s1, done_cb) == 0);
    CHECK(smtpd_dns_client(&s2, done_cb) == 0);
    smtpd_dns_forget(&s1);
    smtpd_dns_forget(&s2);
    smtpd_dns_forget(&s2);
    CHECK(s1.dns == NULL && s2.dns == NULL);
    run_for(TIMEOUT_MS + 200);
    CHECK(done_calls == 0);
}

/* test_smtpd_dns_not_an_address - a session address that is no IP: no lookup. */
static void
test_smtpd_dns_not_an_address(void)
{
    struct smtpd_session s;
    uint64_t             ms;

    CHECK(lookup(&s, "mx.example", SMTPD_SVC_SMTP, &ms) == 1);
    CHECK_STR(s.client_name, "unknown");
    CHECK_STR(s.client_ptr, "unknown");
}

/* test_smtpd_dns_disabled - smtpd_peername_lookup = no: "unknown" at once. */
static void
test_smtpd_dns_disabled(void)
{
    struct smtpd_session s;
    uint64_t             ms;

    CHECK(lookup(&s, "127.0.0.1", SMTPD_SVC_SMTP, &ms) == 1);
    CHECK_STR(s.client_ptr, "unknown");
    CHECK_STR(s.client_name, "unknown");
    CHECK(lookup(&s, "", SMTPD_SVC_SUBMIT, &ms) == 1);
    CHECK_STR(s.client_name, "localhost");
}

/* test_smtpd_dns_confirm - forward-confirmed reverse DNS against dnsmasq's records. */
static void
test_smtpd_dns_confirm(void)
{
    expect_names("198.18.0.1", "good.test", "good.test", FAST_MS);
    /* The PTR name's A record is another address: named, not confirmed. */
    expect_names("198.18.0.2", "liar.test", "unknown", FAST_MS);
    /* No PTR record at all. */
    expect_names("198.18.0.9", "unknown", "unknown", FAST_MS);
    /* Only a name with an underscore: counts as no name. */
    expect_names("198.18.0.4", "unknown", "unknown", FAST_MS);
}

/* test_smtpd_dns_several - of several PTR names the one that resolves back is taken,
 * invalid ones are skipped; client_ptr is the first valid one. */
static void
test_smtpd_dns_several(void)
{
    struct smtpd_session s;
    uint64_t             ms;

    CHECK(lookup(&s, "198.18.0.3", SMTPD_SVC_SMTP, &ms) == 0);
    CHECK_STR(s.client_name, "second.test");
    CHECK(strcmp(s.client_ptr, "first.test") == 0 || strcmp(s.client_ptr, "second.test") == 0);
    CHECK(ms < FAST_MS);
}

/* test_smtpd_dns_lan_default - dns_lan_zones = no: the server holds names for LAN
 * addresses, but libunbound answers their reverse zones NXDOMAIN itself. */
static void
test_smtpd_dns_lan_default(void)
{
    expect_names("10.1.2.3", "unknown", "unknown", FAST_MS);
    expect_names("192.168.1.1", "unknown", "unknown", FAST_MS);
    expect_names("172.16.0.1", "unknown", "unknown", FAST_MS);
}

/* test_smtpd_dns_lan_zones - dns_lan_zones = yes: the RFC 1918 reverse zones are asked of
 * the server and its names confirmed; the loopback is still answered locally, other
 * names as before. */
static void
test_smtpd_dns_lan_zones(void)
{
    expect_names("10.1.2.3", "lan.test", "lan.test", FAST_MS);
    expect_names("::ffff:10.1.2.3", "lan.test", "lan.test", FAST_MS);
    expect_names("192.168.1.1", "lan2.test", "lan2.test", FAST_MS);
    expect_names("172.16.0.1", "lan3.test", "lan3.test", FAST_MS);
    expect_names("10.9.9.9", "unknown", "unknown", FAST_MS);     /* no record there */
    expect_names("127.0.0.1", "localhost", "localhost", FAST_MS);
    expect_names("198.18.0.1", "good.test", "good.test", FAST_MS);
}

/* free_port - a loopback port free for UDP and TCP right now. */
static int
free_port(void)
{
    struct sockaddr_in sin;
    socklen_t          len = sizeof(sin);
    int                fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd != -1 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0
        && getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    if (fd != -1)
        close(fd);
    return port;
}

/* silent_server - a UDP socket on loopback that nobody reads; returns its port. */
static int
silent_server(void)
{
    struct sockaddr_in sin;
    socklen_t          len = sizeof(sin);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    silent_fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (silent_fd == -1 || bind(silent_fd, (struct sockaddr *)&sin, sizeof(sin)) == -1
        || getsockname(silent_fd, (struct sockaddr *)&sin, &len) == -1)
        return -1;
    return ntohs(sin.sin_port);
}

/* dnsmasq_answers - 1 once a query for good.test gets any reply on the port. */
static int
dnsmasq_answers(int port)
{
    static const unsigned char q[] = {
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
        4, 'g', 'o', 'o', 'd', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,
    };
    struct sockaddr_in sin;
    struct pollfd      pfd;
    unsigned char      buf[512];
    int                fd = socket(AF_INET, SOCK_DGRAM, 0), ok = 0;

    if (fd == -1)
        return 0;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sendto(fd, q, sizeof(q), 0, (struct sockaddr *)&sin, sizeof(sin)) == sizeof(q)) {
        pfd.fd = fd;
        pfd.events = POLLIN;
        ok = poll(&pfd, 1, 100) == 1 && recv(fd, buf, sizeof(buf), 0) > 2;
    }
    close(fd);
    return ok;
}

/* dnsmasq_stop - SIGTERM by PID and reap. */
static void
dnsmasq_stop(void)
{
    if (dnsmasq_pid <= 0)
        return;
    kill(dnsmasq_pid, SIGTERM);
    waitpid(dnsmasq_pid, NULL, 0);
    dnsmasq_pid = -1;
}

/* dnsmasq_start - dnsmasq with our records on a free loopback port; -1 if not possible. */
static int
dnsmasq_start(void)
{
    char  port_opt[32];
    int   port = free_port(), devnull;
    char *argv[] = {
        "dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts",
        "--no-poll", port_opt, "--listen-address=127.0.0.1", "--bind-interfaces",
        "--conf-file=/dev/null", "--pid-file=", "--user=root",
        "--host-record=good.test,198.18.0.1",
        "--ptr-record=2.0.18.198.in-addr.arpa,liar.test",
        "--host-record=liar.test,198.18.0.99",
        "--ptr-record=3.0.18.198.in-addr.arpa,first.test",
        "--ptr-record=3.0.18.198.in-addr.arpa,second.test",
        "--host-record=first.test,198.18.0.33",
        "--host-record=second.test,198.18.0.3",
        "--ptr-record=4.0.18.198.in-addr.arpa,bad_name.test",
        "--host-record=bad_name.test,198.18.0.4",
        "--host-record=lan.test,10.1.2.3",             /* A and PTR */
        "--host-record=lan2.test,192.168.1.1",
        "--host-record=lan3.test,172.16.0.1",
        NULL,
    };

    if (port == -1 || access("/usr/sbin/dnsmasq", X_OK) == -1)
        return -1;
    snprintf(port_opt, sizeof(port_opt), "--port=%d", port);
    if ((dnsmasq_pid = fork()) == -1)
        return -1;
    if (dnsmasq_pid == 0) {
        if ((devnull = open("/dev/null", O_RDWR)) != -1) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execv("/usr/sbin/dnsmasq", argv);
        _exit(127);
    }
    for (int i = 0; i < 30; i++) {
        if (dnsmasq_answers(port))
            return port;
        if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid) {
            dnsmasq_pid = -1;
            return -1;
        }
        usleep(100000);
    }
    dnsmasq_stop();
    return -1;
}

int
main(void)
{
    char conf[512];
    int  port;

    log_init("smtpd_dns_test", 1);
    smtpd.ev = ev_new();
    if ((port = silent_server()) == -1) {
        perror("silent server");
        return 1;
    }
    snprintf(conf, sizeof(conf), "dns_servers = 127.0.0.1@%d\n"
             "smtpd_peername_timeout = %dms\n", port, TIMEOUT_MS);
    if (setup(conf) == -1)
        return 1;
    TEST_RUN(test_smtpd_dns_submit);
    TEST_RUN(test_smtpd_dns_loopback);
    TEST_RUN(test_smtpd_dns_private);
    TEST_RUN(test_smtpd_dns_timeout);
    TEST_RUN(test_smtpd_dns_forget);
    TEST_RUN(test_smtpd_dns_not_an_address);
    smtpd_dns_free();

    if (setup("smtpd_peername_lookup = no\n") == -1)
        return 1;
    TEST_RUN(test_smtpd_dns_disabled);
    smtpd_dns_free();

    if ((port = dnsmasq_start()) == -1) {
        fprintf(stderr, "  dnsmasq not available: forward-confirmation cases not run\n");
    } else {
        snprintf(conf, sizeof(conf), "dns_servers = 127.0.0.1@%d\n", port);
        if (setup(conf) == 0) {
            TEST_RUN(test_smtpd_dns_confirm);
            TEST_RUN(test_smtpd_dns_several);
            TEST_RUN(test_smtpd_dns_lan_default);
        } else {
            test_failed++;
        }
        smtpd_dns_free();
        snprintf(conf, sizeof(conf), "dns_servers = 127.0.0.1@%d\n"
                 "dns_lan_zones = yes\n", port);
        if (setup(conf) == 0)
            TEST_RUN(test_smtpd_dns_lan_zones);
        else
            test_failed++;
        smtpd_dns_free();
        dnsmasq_stop();
    }
    config_free(&smtpd.cfg);
    ev_free(&smtpd.ev);
    close(silent_fd);
    TEST_END();
}
