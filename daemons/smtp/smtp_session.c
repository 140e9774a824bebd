/* smtp_session - deliveries: route a job's next hop, connect, speak SMTP/LMTP, reuse.
 *
 * A job first finds its addresses: "[host]:port" and IP literals skip the MX lookup,
 * "domain" gets MX records (ordered by smtp_dns_mx_order), an A/AAAA fallback when there is
 * none, and a permanent failure for a null MX or a domain that does not exist; "unix:/path"
 * is one LMTP socket. MX hosts are resolved one at a time, when reached. The job then tries
 * its addresses in order: a failed connect, a greeting or EHLO refusal, a failed STARTTLS
 * where TLS is required or a timeout before MAIL moves on to the next address (and MX host);
 * once MAIL was sent, the replies are the recipients' results. At level `may` a failed TLS
 * handshake reconnects to the same address without TLS.
 *
 * DANE (RFC 7672, levels dane and dane-only, as in Postfix): the lookups go through the
 * validating resolver (dns_query_dnssec). An MX host whose name came from a DNSSEC-secure MX
 * answer (or is the next hop itself) and whose addresses are secure gets a TLSA lookup at
 * _port._tcp.host (the host name as listed: CNAMEs are not chased for TLSA). Usable secure
 * TLSA records (DANE-TA, DANE-EE) make TLS mandatory and authenticated by them, with the
 * host as SNI and TLSA base domain and the next-hop domain as a further name for DANE-TA;
 * records that are all unusable make TLS mandatory without authentication (encrypt); an
 * insecure name, address or TLSA answer, or no TLSA records, leave TLS opportunistic (may).
 * A failed or bogus TLSA lookup is a temporary failure for that host, never a downgrade.
 * dane-only accepts nothing but DANE: every other outcome defers the host. Each host gets
 * its own decision (host_level); every TLS session is logged as Verified, Trusted,
 * Untrusted or Anonymous, as Postfix does.
 *
 * A session is one connection driven through smtp_client (libsmtp) and, after STARTTLS, a
 * tls_conn (libtls). Output is written as soon as the socket takes it, so pipelined
 * commands leave in one write; the body is read from the spool descriptor in chunks while
 * the output is short. Every session has one deadline (connect, reply or idle) checked by a
 * timer. After a transaction the connection stays idle for smtp_connection_reuse_time and
 * serves the next job with the same transport, next hop and TLS level (RSET first; a stale
 * cached connection sends the job along a fresh route, with no attempt counted). At most
 * max_connections sessions exist; jobs beyond that wait for a slot, and an idle connection
 * is closed to make room. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "dns.h"
#include "ipc_msg.h"
#include "log.h"
#include "map.h"
#include "smtp.h"

#define SMTP_READ_CHUNK    16384
#define SMTP_BODY_CHUNK    65536
#define SMTP_OUT_HIGH      65536     /* read more body only while the output is shorter */
#define SMTP_SASL_MAX      1100      /* "user:password" of smtp_sasl_password_map */

enum smtp_sess_state {
    SS_CONNECTING = 0,
    SS_HANDSHAKE,
    SS_ACTIVE,
    SS_IDLE,
};

struct smtp_session {
    int                   fd;
    enum smtp_sess_state  state;
    struct smtp_client   *client;
    struct tls_conn      *tls;
    int                   tls_want_write;
    struct smtp_addr      addr;
    char                 *key;           /* transport|nexthop|level, for reuse */
    unsigned              level;         /* enum tls_level for this host (job->host_level) */
    char                  relay[SMTP_DNS_NAME_MAX + 80];
    char                  tls_desc[128];
    char                  sasl_user[SMTP_SASL_MAX];   /* the login we gave, or "" */
    int                   sasl_said;     /* its outcome is logged */
    struct smtp_job      *job;           /* NULL when idle */
    int                   body_active;
    uint64_t              body_off;
    uint64_t              deadline;
    uint64_t              timer;
    struct smtp_session  *prev, *next;
};

static const struct smtp_settings *S;
static struct smtp_session        *sessions;
static size_t                      nsessions;
static struct smtp_job            *jobs;          /* every job in progress */
static size_t                      njobs;
static struct smtp_job            *wait_head, *wait_tail;
static int                         wait_service_queued;
static int                         dane_warned;   /* level dane without validation: said */

static void smtp_route(struct smtp_job *);
static void smtp_try_next(struct smtp_job *);
static int  smtp_sess_run(struct smtp_session *);
static void smtp_sess_close(struct smtp_session *);

void
smtp_session_init(const struct smtp_settings *set)
{
    S = set;
}

size_t
smtp_session_active(void)
{
    return njobs;
}

/* smtp_rnd - random numbers for MX shuffling. */
static uint32_t
smtp_rnd(void *arg)
{
    (void)arg;
    return (uint32_t)random();
}

/* smtp_job_dane - does the job ask for DANE? */
static int
smtp_job_dane(const struct smtp_job *j)
{
    return j->tls_level == TLS_LEVEL_DANE || j->tls_level == TLS_LEVEL_DANE_ONLY;
}

/* smtp_job_host - the host the route is at (MX host, or the next hop itself). */
static const char *
smtp_job_host(const struct smtp_job *j)
{
    return j->nh.kind == SMTP_NH_MX ? j->mx[j->mx_cur].host : j->nh.host;
}

/* smtp_job_key - what a cached connection must match. */
static char *
smtp_job_key(const struct smtp_job *j)
{
    return xasprintf("%s|%s|%u", j->transport, j->nexthop, j->tls_level);
}

/* smtp_err - remember why the current route failed (the last reason wins). */
static void
smtp_err(struct smtp_job *j, uint32_t status, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void
smtp_err(struct smtp_job *j, uint32_t status, const char *dsn, const char *fmt, ...)
{
    va_list ap;

    j->have_err = 1;
    j->err_status = status;
    snprintf(j->err_dsn, sizeof(j->err_dsn), "%s", dsn);
    va_start(ap, fmt);
    vsnprintf(j->err_text, sizeof(j->err_text), fmt, ap);
    va_end(ap);
}

/* smtp_fmt - snprintf that may cut (diagnostics are bounded on purpose). */
static void
smtp_fmt(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void
smtp_fmt(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}

/* smtp_reply_status - the delivery status a reply (or our own failure) means. */
static uint32_t
smtp_reply_status(const struct smtp_client_reply *r)
{
    int cls = r->code ? r->code / 100 : r->dsn[0] - '0';

    return cls == 2 ? IPC_DELIV_OK : cls == 5 ? IPC_DELIV_PERM : IPC_DELIV_TEMP;
}

/* smtp_reply_text - the diagnostic for a reply from the session's host. */
static void
smtp_reply_text(const struct smtp_session *s, const struct smtp_client_reply *r, char *out,
                size_t len)
{
    if (r->code / 100 == 2)
        smtp_fmt(out, len, "%s", r->text);
    else if (r->code != 0)
        smtp_fmt(out, len, "host %s[%s] said: %s (in reply to %s command)", s->addr.host,
                 s->addr.ip, r->text, smtp_client_stage_name(r->stage));
    else
        smtp_fmt(out, len, "%s with %s[%s] while in %s", r->text, s->addr.host, s->addr.ip,
                 smtp_client_stage_name(r->stage));
}

/* smtp_result_set - recipient i's outcome, unless it has one. */
static void
smtp_result_set(struct smtp_job *j, size_t i, uint32_t status, const char *dsn,
                const char *text)
{
    if (j->res[i].status != SMTP_OPEN)
        return;
    j->res[i].status = status;
    snprintf(j->res[i].dsn, sizeof(j->res[i].dsn), "%s", dsn);
    j->res[i].text = xstrdup(text);
}

/* smtp_finish - the job is over: unlink it and hand it back to smtp.c. */
static void
smtp_finish(struct smtp_job *j)
{
    for (int k = 0; k < 2; k++)
        if (j->dns_id[k] > 0) {
            dns_cancel(j->dns_id[k]);
            j->dns_id[k] = 0;
        }
    free(j->tlsa_data);
    j->tlsa_data = NULL;
    j->ntlsa = 0;
    if (j->sess != NULL) {
        j->sess->job = NULL;
        j->sess = NULL;
    }
    if (j->all_prev)
        j->all_prev->all_next = j->all_next;
    else
        jobs = j->all_next;
    if (j->all_next)
        j->all_next->all_prev = j->all_prev;
    njobs--;
    smtp_job_done(j);
}

/* smtp_finish_err - every open recipient gets the route's last failure. */
static void
smtp_finish_err(struct smtp_job *j)
{
    if (!j->have_err)
        smtp_err(j, IPC_DELIV_TEMP, "4.4.1", "no usable address for %s", j->nexthop);
    for (size_t i = 0; i < j->n; i++)
        smtp_result_set(j, i, j->err_status, j->err_dsn, j->err_text);
    smtp_finish(j);
}

/* ---------------------------------------------------------------------------------- */
/* Waiting for a connection slot */

/* smtp_wait_service - start waiting jobs while there is room (deferred to the loop's end). */
static void
smtp_wait_service(void *arg)
{
    (void)arg;
    wait_service_queued = 0;
    while (wait_head != NULL && nsessions < S->max_connections) {
        struct smtp_job *j = wait_head;

        wait_head = j->wait_next;
        if (wait_head == NULL)
            wait_tail = NULL;
        j->wait_next = NULL;
        smtp_try_next(j);
    }
}

static void
smtp_wait_kick(void)
{
    if (wait_head != NULL && !wait_service_queued) {
        wait_service_queued = 1;
        ev_defer(S->ev, smtp_wait_service, NULL);
    }
}

/* smtp_slot - room for one more connection: 1 yes (perhaps by closing an idle one), 0 no. */
static int
smtp_slot(void)
{
    struct smtp_session *s;

    if (nsessions < S->max_connections)
        return 1;
    for (s = sessions; s != NULL; s = s->next)
        if (s->state == SS_IDLE) {
            smtp_sess_close(s);
            return nsessions < S->max_connections;
        }
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Sessions */

/* smtp_sess_timer - the session's deadline may have passed. */
static void
smtp_sess_timer(void *arg)
{
    struct smtp_session *s = arg;
    struct smtp_job     *j = s->job;
    uint64_t             now = ev_now_ms();

    s->timer = 0;
    if (now < s->deadline) {
        s->timer = ev_timer_add(S->ev, s->deadline - now, smtp_sess_timer, s);
        return;
    }
    switch (s->state) {
    case SS_CONNECTING:
        smtp_err(j, IPC_DELIV_TEMP, "4.4.1", "connect to %s: timed out", s->relay);
        smtp_sess_close(s);
        smtp_try_next(j);
        return;
    case SS_HANDSHAKE:
        smtp_client_abort(s->client, "4.7.5", "TLS handshake timed out");
        s->state = SS_ACTIVE;
        smtp_sess_run(s);
        return;
    case SS_ACTIVE:
        smtp_client_abort(s->client, "4.4.2", "conversation timed out");
        smtp_sess_run(s);
        return;
    case SS_IDLE:
        log_debug("closing idle connection to %s", s->relay);
        smtp_sess_close(s);
        return;
    }
}

/* smtp_sess_deadline - the next deadline, ms from now. */
static void
smtp_sess_deadline(struct smtp_session *s, uint64_t ms)
{
    s->deadline = ev_now_ms() + ms;
    if (s->timer == 0)
        s->timer = ev_timer_add(S->ev, ms, smtp_sess_timer, s);
}

static void smtp_sess_io(int fd, int events, void *arg);

/* smtp_sess_watch - the events the session waits for now. */
static void
smtp_sess_watch(struct smtp_session *s)
{
    int ev = EV_READ;

    if (s->state == SS_CONNECTING)
        ev = EV_WRITE;
    else if (smtp_client_output(s->client)->len > 0 || s->tls_want_write)
        ev |= EV_WRITE;
    ev_io_set(S->ev, s->fd, ev, smtp_sess_io, s);
}

static void
smtp_sess_close(struct smtp_session *s)
{
    if (s->job != NULL) {
        s->job->sess = NULL;
        s->job = NULL;
    }
    ev_io_del(S->ev, s->fd);
    ev_timer_del(S->ev, s->timer);
    if (s->tls != NULL) {
        tls_conn_shutdown(s->tls);
        tls_conn_free(&s->tls);
    }
    close(s->fd);
    smtp_client_free(&s->client);
    if (s->prev)
        s->prev->next = s->next;
    else
        sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    nsessions--;
    free(s->key);
    free(s);
    smtp_wait_kick();
}

/* smtp_sess_quit - say QUIT (best effort, one write) and close. */
static void
smtp_sess_quit(struct smtp_session *s)
{
    struct buf *o;

    if (s->client != NULL && s->state != SS_CONNECTING) {
        smtp_client_quit(s->client);
        o = smtp_client_output(s->client);
        if (o->len > 0) {
            if (s->tls != NULL)
                (void)tls_conn_write(s->tls, o->data, o->len);
            else
                (void)!write(s->fd, o->data, o->len);
        }
    }
    smtp_sess_close(s);
}

/* smtp_sess_open - connect to a; 0 when under way, -1 on failure (recorded in j). */
static int
smtp_sess_open(struct smtp_job *j, const struct smtp_addr *a)
{
    struct smtp_session *s;
    int                  fd, one = 1;

    fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        smtp_err(j, IPC_DELIV_TEMP, "4.4.1", "socket: %s", strerror(errno));
        return -1;
    }
    if (a->sa.ss_family != AF_UNIX)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s = xcalloc(1, sizeof(*s));
    s->fd = fd;
    s->addr = *a;
    s->key = smtp_job_key(j);
    s->level = j->host_level;
    if (a->sa.ss_family == AF_UNIX)
        snprintf(s->relay, sizeof(s->relay), "%s[%s]", a->host, a->ip);
    else
        snprintf(s->relay, sizeof(s->relay), "%s[%s]:%u", a->host, a->ip, a->port);
    snprintf(j->relay, sizeof(j->relay), "%s", s->relay);
    j->tls[0] = '\0';
    if (connect(fd, (const struct sockaddr *)&a->sa, a->salen) == -1
        && errno != EINPROGRESS) {
        /* The commonest LMTP mistake: a socket path outside the chroot we run in. */
        if (a->sa.ss_family == AF_UNIX && errno == ENOENT && S->chroot != NULL)
            smtp_err(j, IPC_DELIV_TEMP, "4.4.1", "connect to %s: %s inside the chroot %s "
                     "(put the socket there, or set smtp_chroot = no)", s->relay,
                     strerror(errno), S->chroot);
        else
            smtp_err(j, IPC_DELIV_TEMP, "4.4.1", "connect to %s: %s", s->relay,
                     strerror(errno));
        close(fd);
        free(s->key);
        free(s);
        return -1;
    }
    s->next = sessions;
    if (sessions)
        sessions->prev = s;
    sessions = s;
    nsessions++;
    s->job = j;
    j->sess = s;
    s->state = SS_CONNECTING;
    smtp_sess_deadline(s, S->connect_timeout_ms);
    smtp_sess_watch(s);
    return 0;
}

/* smtp_sess_sasl - the login for this next hop (smtp_sasl_password_map: the next hop as
 * the route gives it, e.g. "[relay.example]:587", then the server's host name), split into
 * user and password in buf. 1: found; 0: none. */
static int
smtp_sess_sasl(const struct smtp_session *s, char *buf, size_t len, const char **user,
               const char **pass)
{
    const char *keys[2] = { s->job->nexthop, s->addr.host };
    char       *colon;
    int         rc = 0;

    if (S->sasl_map == NULL)
        return 0;
    for (size_t i = 0; i < 2 && rc == 0; i++)
        if (keys[i] != NULL && *keys[i] != '\0')
            rc = map_lookup(S->sasl_map, keys[i], buf, len);
    if (rc != 1)
        return 0;
    if ((colon = strchr(buf, ':')) == NULL || colon == buf) {
        log_warnx("%s: smtp_sasl_password_map: the entry for %s is not user:password",
                  s->job->qid, s->job->nexthop);
        explicit_bzero(buf, len);
        return 0;
    }
    *colon = '\0';
    *user = buf;
    *pass = colon + 1;
    return 1;
}

/* smtp_sess_connected - TCP is up: start the SMTP conversation. */
static void
smtp_sess_connected(struct smtp_session *s)
{
    struct smtp_client_conf conf;
    struct smtp_job        *j = s->job;
    char                    cred[SMTP_SASL_MAX];

    memset(&conf, 0, sizeof(conf));
    conf.helo_name = S->helo_name;
    conf.lmtp = j->lmtp;
    if (s->level >= TLS_LEVEL_ENCRYPT)
        conf.tls = SMTP_CLIENT_TLS_MUST;
    else if (s->level == TLS_LEVEL_MAY && !j->no_tls && S->tls != NULL)
        conf.tls = SMTP_CLIENT_TLS_MAY;
    else
        conf.tls = SMTP_CLIENT_TLS_NONE;
    if (!j->lmtp && smtp_sess_sasl(s, cred, sizeof(cred), &conf.auth_user, &conf.auth_pass))
        snprintf(s->sasl_user, sizeof(s->sasl_user), "%s", conf.auth_user);
    s->client = smtp_client_new(&conf);      /* copies the credentials */
    explicit_bzero(cred, sizeof(cred));
    s->state = SS_ACTIVE;
    smtp_sess_deadline(s, S->reply_timeout_ms);
    smtp_sess_watch(s);
}

/* smtp_sess_tls_failed - the handshake failed: plaintext again (may) or the next address. */
static void
smtp_sess_tls_failed(struct smtp_session *s, const char *why)
{
    struct smtp_job *j = s->job;

    if (s->level == TLS_LEVEL_MAY) {
        log_info("%s: TLS handshake with %s failed (%s); retrying without TLS", j->qid,
                 s->relay, why);
        j->no_tls = 1;
        if (j->addr_cur > 0)
            j->addr_cur--;
    } else {
        smtp_err(j, IPC_DELIV_TEMP, "4.7.5", "TLS is required, but the handshake with %s "
                 "failed: %s", s->relay, why);
    }
    smtp_sess_close(s);
    smtp_try_next(j);
}

/* smtp_sess_tls_log - one line per TLS session, in Postfix's words: Verified (the level's
 * authentication held: DANE, or chain and name), Trusted (the chain verifies, no more was
 * asked), Untrusted, Anonymous (no certificate). */
static void
smtp_sess_tls_log(const struct smtp_session *s, const struct tls_facts *f)
{
    const char *trust = "Untrusted";

    if (f->peer_fingerprint[0] == '\0')
        trust = "Anonymous";
    else if (f->peer_verified && s->level >= TLS_LEVEL_VERIFY)
        trust = "Verified";
    else if (f->peer_verified)
        trust = "Trusted";
    log_info("%s: %s TLS connection established to %s: %s with cipher %s (%d/%d bits)%s%s%s",
             s->job ? s->job->qid : "-", trust, s->relay, f->version, f->cipher, f->bits,
             f->bits, f->dane[0] ? ", tlsa=\"" : "", f->dane, f->dane[0] ? "\"" : "");
}

/* smtp_sess_handshake - drive the TLS handshake. -1: the session is gone. */
static int
smtp_sess_handshake(struct smtp_session *s)
{
    const struct tls_facts *f;
    int                     rc = tls_conn_handshake(s->tls);

    if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
        ev_io_set(S->ev, s->fd, rc == TLS_WANT_READ ? EV_READ : EV_WRITE, smtp_sess_io, s);
        return 0;
    }
    if (rc != TLS_OK) {
        smtp_sess_tls_failed(s, tls_conn_error(s->tls));
        return -1;
    }
    f = tls_conn_facts(s->tls);
    smtp_sess_tls_log(s, f);
    snprintf(s->tls_desc, sizeof(s->tls_desc), "%s %s%s", f->version, f->cipher,
             f->peer_verified ? " verified" : "");
    if (s->job)
        snprintf(s->job->tls, sizeof(s->job->tls), "%s", s->tls_desc);
    s->state = SS_ACTIVE;
    smtp_client_tls_done(s->client);
    smtp_sess_deadline(s, S->reply_timeout_ms);
    return smtp_sess_run(s);
}

/* smtp_sess_start_tls - EV_TLS: begin the handshake. -1: the session is gone. */
static int
smtp_sess_start_tls(struct smtp_session *s)
{
    int literal = s->addr.sa.ss_family == AF_UNIX || strcmp(s->addr.host, s->addr.ip) == 0;

    if (S->tls == NULL) {
        smtp_sess_tls_failed(s, "no TLS client context");
        return -1;
    }
    if (s->level == TLS_LEVEL_DANE) {
        struct smtp_job *j = s->job;
        const char      *names[1] = { j->nh.host };
        struct tls_dane  d = { .base = s->addr.host, .names = names, .nnames = 0,
                               .tlsa = j->tlsa, .ntlsa = j->ntlsa };

        /* The next-hop domain is a reference name for DANE-TA too (Postfix does so). */
        if (j->nh.kind == SMTP_NH_MX && strcasecmp(j->nh.host, s->addr.host) != 0)
            d.nnames = 1;
        s->tls = tls_conn_client_dane(S->tls, s->fd, &d);
    } else {
        s->tls = tls_conn_client(S->tls, s->fd, literal ? NULL : s->addr.host,
                                 (enum tls_level)s->level, s->addr.host);
    }
    if (s->tls == NULL) {
        smtp_sess_tls_failed(s, "cannot create a TLS session");
        return -1;
    }
    s->state = SS_HANDSHAKE;
    return smtp_sess_handshake(s);
}

/* smtp_sess_idle - the transaction is over: keep the connection or close it. */
static void
smtp_sess_idle(struct smtp_session *s)
{
    struct smtp_job *w, *prev = NULL;

    /* A job waiting for a slot with the same destination takes it at once. */
    for (w = wait_head; w != NULL; prev = w, w = w->wait_next) {
        char *key = smtp_job_key(w);
        int   same = strcmp(key, s->key) == 0;

        free(key);
        if (!same)
            continue;
        if (prev)
            prev->wait_next = w->wait_next;
        else
            wait_head = w->wait_next;
        if (wait_tail == w)
            wait_tail = prev;
        w->wait_next = NULL;
        s->state = SS_IDLE;
        smtp_route(w);       /* finds this idle session first */
        return;
    }
    if (S->reuse_ms == 0 || wait_head != NULL) {
        smtp_sess_quit(s);
        return;
    }
    s->state = SS_IDLE;
    s->deadline = ev_now_ms() + S->reuse_ms;
    if (s->timer == 0)
        s->timer = ev_timer_add(S->ev, S->reuse_ms, smtp_sess_timer, s);
    smtp_sess_watch(s);
}

/* smtp_sess_rcpt_results - each open recipient's result from the server's replies. A
 * recipient the server took while it announced DSN is marked so: our NOTIFY and ORCPT went
 * with its RCPT, and qmgr leaves the success notice to the next hop (RFC 3461 5.2.1). */
static void
smtp_sess_rcpt_results(struct smtp_session *s, struct smtp_job *j)
{
    int  dsn = (smtp_client_ext(s->client) & SMTP_EXT_DSN) != 0;
    char text[1200];

    for (size_t i = 0; i < j->n; i++) {
        const struct smtp_client_reply *r = smtp_client_rcpt_result(s->client, i);

        if (j->res[i].status != SMTP_OPEN)
            continue;
        smtp_reply_text(s, r, text, sizeof(text));
        smtp_result_set(j, i, smtp_reply_status(r), r->dsn, text);
        if (dsn && j->res[i].status == IPC_DELIV_OK)
            j->res[i].flags |= IPC_RELAYED_DSN;
    }
}

/* smtp_sess_done - EV_DONE: recipients' results from the replies. */
static void
smtp_sess_done(struct smtp_session *s)
{
    struct smtp_job *j = s->job;

    smtp_sess_rcpt_results(s, j);
    smtp_finish(j);
}

/* smtp_sess_error - EV_ERROR: next address, a fresh route, or the recipients' results. */
static void
smtp_sess_error(struct smtp_session *s)
{
    const struct smtp_client_reply *e = smtp_client_error(s->client);
    struct smtp_job                *j = s->job;
    char                            text[1200];

    if (j == NULL) {
        smtp_sess_quit(s);
        return;
    }
    if (j->reused && e->stage <= SMTP_STAGE_RSET) {
        /* The cached connection went stale: not an attempt. */
        log_debug("%s: cached connection to %s unusable; reconnecting", j->qid, s->relay);
        j->reused = 0;
        smtp_sess_quit(s);
        smtp_route(j);
        return;
    }
    smtp_reply_text(s, e, text, sizeof(text));
    if (e->stage < SMTP_STAGE_MAIL) {
        smtp_err(j, smtp_reply_status(e), e->dsn, "%s", text);
        smtp_sess_quit(s);
        smtp_try_next(j);
        return;
    }
    smtp_sess_rcpt_results(s, j);
    smtp_sess_quit(s);
    smtp_finish(j);
}

/* smtp_sess_ready - EV_READY: send the job's message (or refuse it locally). 0, or -1 when
 * the session is gone. */
static int
smtp_sess_ready(struct smtp_session *s)
{
    struct smtp_job *j = s->job;

    if (j == NULL) {
        smtp_sess_idle(s);
        return s->state == SS_IDLE ? 0 : -1;
    }
    if (s->sasl_user[0] != '\0' && !s->sasl_said) {
        s->sasl_said = 1;
        if (smtp_client_auth_state(s->client) == 1)
            log_info("%s: authenticated to %s as %s", j->qid, s->relay, s->sasl_user);
        else
            log_warnx("%s: %s offers no AUTH PLAIN or LOGIN: sending without logging in as %s",
                      j->qid, s->relay, s->sasl_user);
    }
    if (smtp_client_msg_start(s->client, &j->msg) == -1) {
        const struct smtp_client_reply *e = smtp_client_error(s->client);
        char                            text[1200];

        smtp_fmt(text, sizeof(text), "%s[%s]: %s", s->addr.host, s->addr.ip, e->text);
        for (size_t i = 0; i < j->n; i++)
            smtp_result_set(j, i, smtp_reply_status(e), e->dsn, text);
        smtp_finish(j);
        smtp_sess_idle(s);
        return -1;
    }
    return 0;
}

/* smtp_sess_events - act on the client's events. -1: the session is gone (or idle-moved). */
static int
smtp_sess_events(struct smtp_session *s)
{
    enum smtp_client_event ev;

    while ((ev = smtp_client_step(s->client)) != SMTP_CLIENT_EV_NONE) {
        switch (ev) {
        case SMTP_CLIENT_EV_TLS:
            /* Flush nothing: the client wrote nothing after STARTTLS. */
            return smtp_sess_start_tls(s) == -1 ? -1 : 1;
        case SMTP_CLIENT_EV_READY:
            if (smtp_sess_ready(s) == -1)
                return -1;
            break;
        case SMTP_CLIENT_EV_DATA:
            s->body_active = 1;
            s->body_off = 0;
            break;
        case SMTP_CLIENT_EV_DONE:
            smtp_sess_done(s);
            smtp_sess_idle(s);
            return -1;
        case SMTP_CLIENT_EV_ERROR:
            smtp_sess_error(s);
            return -1;
        case SMTP_CLIENT_EV_CLOSED:
            smtp_sess_close(s);
            return -1;
        default:
            break;
        }
    }
    return 0;
}

/* smtp_sess_body - read more of the body into the output while it is short. -1: a read
 * error (the client was aborted). */
static int
smtp_sess_body(struct smtp_session *s)
{
    static char chunk[SMTP_BODY_CHUNK];
    struct buf *o = smtp_client_output(s->client);

    while (s->body_active && o->len < SMTP_OUT_HIGH) {
        ssize_t n = pread(s->job->fd, chunk, sizeof(chunk), (off_t)s->body_off);

        if (n > 0) {
            smtp_client_body(s->client, chunk, (size_t)n);
            s->body_off += (uint64_t)n;
        } else if (n == 0) {
            smtp_client_body_end(s->client);
            s->body_active = 0;
        } else if (errno != EINTR) {
            s->body_active = 0;
            log_warn("%s: reading the message file", s->job->qid);
            smtp_client_abort(s->client, "4.3.0", "error reading the message file");
            return -1;
        }
    }
    return 0;
}

/* smtp_sess_write - write what the socket takes. -1 on a write error (client aborted). */
static int
smtp_sess_write(struct smtp_session *s)
{
    struct buf *o = smtp_client_output(s->client);

    s->tls_want_write = 0;
    while (o->len > 0) {
        ssize_t n;

        if (s->tls != NULL) {
            n = tls_conn_write(s->tls, o->data, o->len > 16384 ? 16384 : o->len);
            if (n == TLS_WANT_WRITE || n == TLS_WANT_READ) {
                s->tls_want_write = n == TLS_WANT_WRITE;
                return 0;
            }
            if (n < 0) {
                smtp_client_abort(s->client, "4.4.2", "TLS write error");
                return -1;
            }
        } else {
            n = write(s->fd, o->data, o->len);
            if (n == -1) {
                if (errno == EAGAIN || errno == EINTR)
                    return 0;
                smtp_client_abort(s->client, "4.4.2", strerror(errno));
                return -1;
            }
        }
        buf_consume(o, (size_t)n);
        s->deadline = ev_now_ms() + S->reply_timeout_ms;
        if (s->body_active && smtp_sess_body(s) == -1)
            return -1;
    }
    return 0;
}

/* smtp_sess_run - events, body and output until nothing moves. 0, or -1 when gone. */
static int
smtp_sess_run(struct smtp_session *s)
{
    for (int round = 0; round < 4; round++) {
        int rc = smtp_sess_events(s);

        if (rc == -1)
            return -1;
        if (rc == 1)
            return 0;               /* TLS handshake under way */
        if (s->body_active && smtp_sess_body(s) == -1)
            continue;
        if (smtp_sess_write(s) == 0)
            break;
        /* a write error: let the client report it */
    }
    if (s->state == SS_ACTIVE || s->state == SS_IDLE)
        smtp_sess_watch(s);
    return 0;
}

/* smtp_sess_read - one read from the server into the client. */
static void
smtp_sess_read(struct smtp_session *s)
{
    char    buf[SMTP_READ_CHUNK];
    ssize_t n;

    if (s->tls != NULL) {
        n = tls_conn_read(s->tls, buf, sizeof(buf));
        if (n == TLS_WANT_READ)
            return;
        if (n == TLS_WANT_WRITE) {
            s->tls_want_write = 1;
            return;
        }
        if (n < 0) {
            smtp_client_abort(s->client, "4.4.2", "TLS read error");
            return;
        }
    } else {
        n = read(s->fd, buf, sizeof(buf));
        if (n == -1) {
            if (errno != EAGAIN && errno != EINTR)
                smtp_client_abort(s->client, "4.4.2", strerror(errno));
            return;
        }
    }
    if (n == 0) {
        smtp_client_eof(s->client);
        return;
    }
    if (s->state != SS_IDLE)
        s->deadline = ev_now_ms() + S->reply_timeout_ms;
    smtp_client_feed(s->client, buf, (size_t)n);
}

/* smtp_sess_io - the socket is ready. */
static void
smtp_sess_io(int fd, int events, void *arg)
{
    struct smtp_session *s = arg;
    int                  err = 0;
    socklen_t            len = sizeof(err);

    (void)fd;
    switch (s->state) {
    case SS_CONNECTING:
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
            err = errno;
        if (err != 0) {
            struct smtp_job *j = s->job;

            smtp_err(j, IPC_DELIV_TEMP, "4.4.1", "connect to %s: %s", s->relay,
                     strerror(err));
            smtp_sess_close(s);
            smtp_try_next(j);
            return;
        }
        smtp_sess_connected(s);
        return;
    case SS_HANDSHAKE:
        smtp_sess_handshake(s);
        return;
    case SS_ACTIVE:
    case SS_IDLE:
        if (events & EV_READ || (s->tls_want_write && (events & EV_WRITE))) {
            smtp_sess_read(s);
            /* Decrypted bytes already buffered would wait for the next packet. */
            for (int k = 0; k < 64 && s->tls != NULL && tls_conn_pending(s->tls) > 0; k++) {
                if (smtp_sess_run(s) == -1)
                    return;
                if (s->tls == NULL)
                    break;
                smtp_sess_read(s);
            }
        }
        smtp_sess_run(s);
        return;
    }
}

/* ---------------------------------------------------------------------------------- */
/* Routing */

/* smtp_addr_order - IPv4 before IPv6 (keeping the DNS order within each). */
static void
smtp_addr_order(struct smtp_job *j)
{
    struct smtp_addr tmp[sizeof(j->addrs) / sizeof(j->addrs[0])];
    size_t           k = 0;

    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < j->naddrs; i++)
            if ((j->addrs[i].sa.ss_family == AF_INET) == (pass == 0))
                tmp[k++] = j->addrs[i];
    memcpy(j->addrs, tmp, k * sizeof(tmp[0]));
}

static void smtp_resolve_host(struct smtp_job *j, const char *host);
static void smtp_next_mx(struct smtp_job *j);

/* smtp_dane_none - no DANE for this host: at level dane TLS is opportunistic as at may
 * (RFC 7672 2.2); dane-only defers the host and moves on to the next one. */
static void
smtp_dane_none(struct smtp_job *j, const char *host, const char *why)
{
    if (j->tls_level == TLS_LEVEL_DANE_ONLY) {
        smtp_err(j, IPC_DELIV_TEMP, "4.7.5", "DANE is required for %s:%u, but %s", host,
                 j->nh.port, why);
        smtp_next_mx(j);
        return;
    }
    log_debug("%s: no DANE for %s:%u (%s): TLS as at level may", j->qid, host, j->nh.port,
              why);
    j->host_level = TLS_LEVEL_MAY;
    smtp_try_next(j);
}

/* smtp_tlsa_keep - copy the selected records' data: the answer is gone after the callback. */
static void
smtp_tlsa_keep(struct smtp_job *j, size_t n)
{
    size_t total = 0, off = 0;

    for (size_t i = 0; i < n; i++)
        total += j->tlsa[i].len;
    free(j->tlsa_data);
    j->tlsa_data = xmalloc(total);
    for (size_t i = 0; i < n; i++) {
        memcpy(j->tlsa_data + off, j->tlsa[i].data, j->tlsa[i].len);
        j->tlsa[i].data = j->tlsa_data + off;
        off += j->tlsa[i].len;
    }
    j->ntlsa = n;
}

/* smtp_tlsa_answer - the TLSA answer for the current host decides its level. */
static void
smtp_tlsa_answer(void *arg, const struct dns_answer *a)
{
    struct smtp_job *j = arg;
    const char      *host = smtp_job_host(j);
    size_t           n;

    j->dns_id[0] = 0;
    switch (a->status) {
    case DNS_TEMP:
        /* Perhaps an attacker hiding the records: defer, never downgrade (RFC 7672 2.2). */
        smtp_err(j, IPC_DELIV_TEMP, "4.7.5", "TLSA lookup error for %s:%u: %s", host,
                 j->nh.port, a->why ? a->why : "temporary failure");
        smtp_next_mx(j);
        return;
    case DNS_OK:
        break;
    default:
        smtp_dane_none(j, host, "it has no TLSA records");
        return;
    }
    if (!a->secure) {
        smtp_dane_none(j, host, "its TLSA records are not DNSSEC-validated");
        return;
    }
    n = smtp_dns_tlsa_usable(a->data, a->len, a->n, j->tlsa, SMTP_DNS_TLSA_MAX);
    if (n == 0 && j->tls_level == TLS_LEVEL_DANE_ONLY) {
        smtp_err(j, IPC_DELIV_TEMP, "4.7.5", "DANE is required for %s:%u, but none of its "
                 "%zu TLSA records is usable", host, j->nh.port, a->n);
        smtp_next_mx(j);
        return;
    }
    if (n == 0) {
        /* Someone published TLSA: TLS is meant to be there, just not verifiable by us. */
        log_info("%s: no usable TLSA records for %s:%u (%zu found): TLS is mandatory, "
                 "without authentication", j->qid, host, j->nh.port, a->n);
        j->host_level = TLS_LEVEL_ENCRYPT;
        smtp_try_next(j);
        return;
    }
    smtp_tlsa_keep(j, n);
    log_debug("%s: %zu usable TLSA records for %s:%u", j->qid, n, host, j->nh.port);
    j->host_level = TLS_LEVEL_DANE;
    smtp_try_next(j);
}

/* smtp_host_ready - the host's addresses are known: decide its TLS level (a TLSA lookup
 * for DANE), then connect. insecure: why DANE cannot apply, or NULL to judge by DNSSEC. */
static void
smtp_host_ready(struct smtp_job *j, const char *host, const char *insecure)
{
    char name[SMTP_DNS_NAME_MAX + 16];
    int  id;

    j->ntlsa = 0;
    if (!smtp_job_dane(j)) {
        j->host_level = j->tls_level;
        smtp_try_next(j);
        return;
    }
    if (insecure == NULL && !j->mx_secure)
        insecure = "its MX records are not DNSSEC-validated";
    if (insecure == NULL && !(j->dns_secure[0] && j->dns_secure[1]))
        insecure = "its address records are not DNSSEC-validated";
    if (insecure != NULL) {
        smtp_dane_none(j, host, insecure);
        return;
    }
    snprintf(name, sizeof(name), "_%u._tcp.%s", j->nh.port, host);
    if ((id = dns_query_dnssec(name, DNS_T_TLSA, smtp_tlsa_answer, j)) < 0) {
        smtp_err(j, IPC_DELIV_TEMP, "4.7.5", "TLSA lookup error for %s:%u: resolver "
                 "unavailable", host, j->nh.port);
        smtp_next_mx(j);
        return;
    }
    j->dns_id[0] = id;
}

/* smtp_next_mx - on to the next MX host, or the end of the route. */
static void
smtp_next_mx(struct smtp_job *j)
{
    if (j->nh.kind == SMTP_NH_MX && j->mx_cur + 1 < j->nmx) {
        j->mx_cur++;
        smtp_resolve_host(j, j->mx[j->mx_cur].host);
        return;
    }
    smtp_finish_err(j);
}

/* smtp_addr_answer - an A or AAAA answer for the current host. */
static void
smtp_addr_answer(void *arg, const struct dns_answer *a)
{
    struct smtp_job *j = arg;
    int              k = a->rrtype == DNS_T_A ? 0 : 1;
    const char      *host = smtp_job_host(j);

    j->dns_id[k] = 0;
    j->dns_status[k] = a->status;
    j->dns_secure[k] = a->status != DNS_OK || a->secure;
    for (size_t i = 0; i < a->n && j->naddrs < sizeof(j->addrs) / sizeof(j->addrs[0]); i++)
        if (smtp_dns_addr(a->rrtype, a->data[i], (size_t)a->len[i], host, j->nh.port,
                          &j->addrs[j->naddrs]) == 0)
            j->naddrs++;
    if (--j->dns_pending > 0)
        return;
    if (j->naddrs > 0) {
        smtp_addr_order(j);
        smtp_host_ready(j, host, NULL);
        return;
    }
    if (j->dns_status[0] == DNS_TEMP || j->dns_status[1] == DNS_TEMP) {
        smtp_err(j, IPC_DELIV_TEMP, "4.4.3", "Host or domain name not found. Name service "
                 "error for name=%s type=A: %s (try again)", host,
                 a->why ? a->why : "temporary failure");
    } else if (j->implicit_mx) {
        int nx = j->dns_status[0] == DNS_NXDOMAIN;

        smtp_err(j, IPC_DELIV_PERM, nx ? "5.1.2" : "5.4.4", "Host or domain name not found. "
                 "Name service error for name=%s type=A: %s", host,
                 nx ? "Host not found" : "No address associated with hostname");
    } else {
        smtp_err(j, IPC_DELIV_TEMP, "4.4.3", "Host or domain name not found. Name service "
                 "error for name=%s type=A: %s", host,
                 j->dns_status[0] == DNS_NXDOMAIN ? "Host not found"
                                                  : "No address associated with hostname");
    }
    smtp_next_mx(j);
}

/* smtp_resolve_host - look up the addresses of one host (or take a literal). */
static void
smtp_resolve_host(struct smtp_job *j, const char *host)
{
    static const int types[2] = { DNS_T_A, DNS_T_AAAA };
    struct smtp_addr lit;
    int              failed[2] = { 0, 0 };
    int              dnssec = smtp_job_dane(j) && j->mx_secure;

    j->naddrs = j->addr_cur = 0;
    if (smtp_dns_literal(host, j->nh.port, &lit) == 0) {
        j->addrs[j->naddrs++] = lit;
        smtp_host_ready(j, host, "it is an IP address");
        return;
    }
    /* dns_query() never calls back from inside (dns.h): both queries are out first. Only
     * DANE needs validated addresses, and only for a host name that is itself secure. */
    j->dns_pending = 2;
    for (int k = 0; k < 2; k++) {
        j->dns_status[k] = DNS_TEMP;
        j->dns_secure[k] = 0;
        j->dns_id[k] = dnssec ? dns_query_dnssec(host, types[k], smtp_addr_answer, j)
                              : dns_query(host, types[k], smtp_addr_answer, j);
        if (j->dns_id[k] < 0)
            failed[k] = 1;
    }
    /* Failed queries answer now; the last such call may finish the job. */
    for (int k = 0; k < 2; k++)
        if (failed[k]) {
            struct dns_answer a = { .status = DNS_TEMP, .rrtype = types[k],
                                    .why = "resolver unavailable" };
            int last = k == 1 || !failed[1];

            smtp_addr_answer(j, &a);
            if (last)
                return;
        }
}

/* smtp_mx_answer - the MX answer for the next-hop domain. */
static void
smtp_mx_answer(void *arg, const struct dns_answer *a)
{
    struct smtp_job *j = arg;

    j->dns_id[0] = 0;
    switch (a->status) {
    case DNS_OK:
        j->mx_secure = a->secure;
        j->nmx = 0;
        for (size_t i = 0; i < a->n && j->nmx < SMTP_DNS_MX_MAX; i++)
            if (smtp_dns_mx_parse(a->data[i], (size_t)a->len[i], &j->mx[j->nmx]) == 0)
                j->nmx++;
        if (smtp_dns_mx_null(j->mx, j->nmx)) {
            smtp_err(j, IPC_DELIV_PERM, "5.1.10", "Recipient address rejected: Domain %s "
                     "does not accept mail (nullMX)", j->nh.host);
            smtp_finish_err(j);
            return;
        }
        j->nmx = smtp_dns_mx_clean(j->mx, j->nmx);
        j->nmx = smtp_dns_mx_order(j->mx, j->nmx, smtp_rnd, NULL);
        if (j->nmx == 0) {
            smtp_err(j, IPC_DELIV_TEMP, "4.4.3", "no usable MX records for %s", j->nh.host);
            smtp_finish_err(j);
            return;
        }
        j->mx_cur = 0;
        smtp_resolve_host(j, j->mx[0].host);
        return;
    case DNS_NODATA:
        /* No MX: the host is the next-hop domain itself, a name we did not learn from DNS
         * (RFC 7672 2.2.1). */
        j->mx_secure = 1;
        j->implicit_mx = 1;
        j->nmx = 1;
        j->mx_cur = 0;
        snprintf(j->mx[0].host, sizeof(j->mx[0].host), "%s", j->nh.host);
        j->mx[0].pref = 0;
        smtp_resolve_host(j, j->nh.host);
        return;
    case DNS_NXDOMAIN:
        smtp_err(j, IPC_DELIV_PERM, "5.1.2", "Host or domain name not found. Name service "
                 "error for name=%s type=MX: Host not found", j->nh.host);
        smtp_finish_err(j);
        return;
    default:
        smtp_err(j, IPC_DELIV_TEMP, "4.4.3", "Host or domain name not found. Name service "
                 "error for name=%s type=MX: %s (try again)", j->nh.host,
                 a->why ? a->why : "temporary failure");
        smtp_finish_err(j);
        return;
    }
}

/* smtp_try_next - connect to the next address of the route (or move on, or give up). */
static void
smtp_try_next(struct smtp_job *j)
{
    while (j->addr_cur < j->naddrs) {
        if (!smtp_slot()) {
            /* Wait for a connection slot; this address is tried then. */
            j->wait_next = NULL;
            if (wait_tail)
                wait_tail->wait_next = j;
            else
                wait_head = j;
            wait_tail = j;
            return;
        }
        if (smtp_sess_open(j, &j->addrs[j->addr_cur++]) == 0)
            return;
    }
    smtp_next_mx(j);
}

/* smtp_route - start from the next hop: a cached connection, else DNS. */
static void
smtp_route(struct smtp_job *j)
{
    struct smtp_session *s;
    char                *key = smtp_job_key(j);

    for (s = sessions; s != NULL; s = s->next)
        if (s->state == SS_IDLE && strcmp(s->key, key) == 0)
            break;
    free(key);
    if (s != NULL) {
        s->job = j;
        j->sess = s;
        j->reused = 1;
        snprintf(j->relay, sizeof(j->relay), "%s", s->relay);
        snprintf(j->tls, sizeof(j->tls), "%s", s->tls_desc);
        s->state = SS_ACTIVE;
        s->deadline = ev_now_ms() + S->reply_timeout_ms;
        log_debug("%s: reusing the connection to %s", j->qid, s->relay);
        if (smtp_sess_ready(s) == 0)
            smtp_sess_run(s);
        return;
    }
    j->naddrs = j->addr_cur = 0;
    j->nmx = j->mx_cur = 0;
    j->implicit_mx = 0;
    j->host_level = j->tls_level;
    j->mx_secure = j->nh.kind != SMTP_NH_MX;    /* "[host]" comes from our own settings */
    switch (j->nh.kind) {
    case SMTP_NH_UNIX: {
        struct smtp_addr   *a = &j->addrs[0];
        struct sockaddr_un *sun = (struct sockaddr_un *)&a->sa;

        memset(a, 0, sizeof(*a));
        sun->sun_family = AF_UNIX;
        snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", j->nh.path);
        a->salen = sizeof(*sun);
        snprintf(a->host, sizeof(a->host), "%s", j->nh.host);
        snprintf(a->ip, sizeof(a->ip), "%s", j->nh.path);
        j->naddrs = 1;
        smtp_host_ready(j, a->host, "it is a UNIX socket");
        return;
    }
    case SMTP_NH_HOST:
        smtp_resolve_host(j, j->nh.host);
        return;
    case SMTP_NH_MX: {
        int id = smtp_job_dane(j) ? dns_query_dnssec(j->nh.host, DNS_T_MX, smtp_mx_answer, j)
                                  : dns_query(j->nh.host, DNS_T_MX, smtp_mx_answer, j);

        if (id < 0) {
            smtp_err(j, IPC_DELIV_TEMP, "4.4.3", "resolver unavailable");
            smtp_finish_err(j);
            return;
        }
        j->dns_id[0] = id;
        return;
    }
    }
}

void
smtp_deliver(struct smtp_job *j)
{
    j->all_next = jobs;
    if (jobs)
        jobs->all_prev = j;
    jobs = j;
    njobs++;
    j->lmtp = strcmp(j->transport, "lmtp") == 0;
    if (smtp_dns_nexthop_parse(j->nexthop, j->lmtp, &j->nh) == -1) {
        smtp_err(j, IPC_DELIV_TEMP, "4.3.5", "malformed next hop \"%s\"", j->nexthop);
        smtp_finish_err(j);
        return;
    }
    if (j->tls_level > TLS_LEVEL_DANE_ONLY)
        j->tls_level = TLS_LEVEL_DANE_ONLY;
    if (smtp_job_dane(j) && !dns_dnssec_enabled() && !dane_warned) {
        dane_warned = 1;
        log_warnx("%s: TLS level %s without DNSSEC validation (dnssec_trust_anchor_file): "
                  "nothing is secure, so %s", j->qid,
                  j->tls_level == TLS_LEVEL_DANE ? "dane" : "dane-only",
                  j->tls_level == TLS_LEVEL_DANE ? "TLS is opportunistic"
                                                 : "such mail is deferred");
    }
    smtp_route(j);
}

void
smtp_session_idle_close(void)
{
    struct smtp_session *s, *next;

    for (s = sessions; s != NULL; s = next) {
        next = s->next;
        if (s->state == SS_IDLE)
            smtp_sess_quit(s);
    }
}

void
smtp_session_abort_all(const char *why)
{
    wait_head = wait_tail = NULL;
    while (jobs != NULL) {
        struct smtp_job *j = jobs;

        if (j->sess != NULL)
            smtp_sess_quit(j->sess);
        for (size_t i = 0; i < j->n; i++)
            smtp_result_set(j, i, IPC_DELIV_TEMP, "4.3.2", why);
        smtp_finish(j);
    }
}
