/* smtpd_milter - smtpd_milters: the milter client on smtpd's event loop (see smtpd_milter.h).
 *
 * A session's milters hang off s->milter. A stage walks the connections in order; for
 * each one it connects and negotiates if that has not happened yet (bounded by
 * milter_connect_timeout, then milter_command_timeout), sends the stage's macros and
 * command unless the milter said it does not want them, and waits for the reply unless it
 * asked for none (SMFIP_NR_*). Every wait has one timer: milter_command_timeout, or
 * milter_content_timeout for the message; SMFIR_PROGRESS restarts it. The verdict goes to
 * the caller from a zero timer, so a callback never runs inside the caller's own call.
 *
 * At end of message the milters read the message back from the spool file (qmgr opens it
 * read-write for us), which holds everything the client sent after our own Received:
 * header and the content rules' changes: the header fields one by one, the body in chunks
 * of at most 65535 octets. A milter's modifications are kept in order while it answers
 * and applied when it is done, before the next milter is asked: to the header section in
 * the file (the body is moved to make room), to the body (a new body is written past the
 * end of the message, then moved into place) and to the envelope. So each milter sees the
 * message as the ones before it left it, as with Postfix, and the commit follows the last. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "milter.h"
#include "smtpd.h"
#include "smtpd_milter.h"

#define SMTPD_MILTER_MAX       16            /* entries of smtpd_milters */
#define SMTPD_MILTER_MODS_MAX  1024          /* modifications kept from one message */
#define SMTPD_MILTER_OUT_MAX   (256 * 1024)  /* queued to a milter before we wait */
#define SMTPD_MILTER_HDR_SLACK (64 * 1024)   /* our Received: and added fields */
#define SMTPD_MILTER_READ      (64 * 1024)

/* The actions we apply and the steps we can leave out or send without a reply. */
#define SMTPD_MILTER_ACTIONS (MILTER_F_ADDHDRS | MILTER_F_CHGHDRS | MILTER_F_CHGBODY       \
                              | MILTER_F_ADDRCPT | MILTER_F_DELRCPT | MILTER_F_QUARANTINE   \
                              | MILTER_F_CHGFROM | MILTER_F_ADDRCPT_PAR)
#define SMTPD_MILTER_PROTO   (MILTER_P_NOCONNECT | MILTER_P_NOHELO | MILTER_P_NOMAIL        \
                              | MILTER_P_NORCPT | MILTER_P_NOBODY | MILTER_P_NOHDRS         \
                              | MILTER_P_NOEOH | MILTER_P_NR_HDR | MILTER_P_NOUNKNOWN       \
                              | MILTER_P_NODATA | MILTER_P_SKIP | MILTER_P_NR_CONN          \
                              | MILTER_P_NR_HELO | MILTER_P_NR_MAIL | MILTER_P_NR_RCPT      \
                              | MILTER_P_NR_DATA | MILTER_P_NR_UNKN | MILTER_P_NR_EOH       \
                              | MILTER_P_NR_BODY)

struct smtpd_milter_conf {
    char                    name[128];       /* as configured, for logs */
    struct sockaddr_storage sa;
    socklen_t               salen;
};

enum smtpd_milter_stage { MS_CONNECT, MS_HELO, MS_MAIL, MS_RCPT, MS_DATA, MS_EOM };
enum smtpd_milter_cstate { MC_IDLE, MC_CONNECTING, MC_OPTNEG, MC_READY, MC_FAILED };
enum smtpd_milter_sub { SUB_START, SUB_HDRS, SUB_EOH, SUB_BODY, SUB_EOM, SUB_DONE };

struct smtpd_milter;

struct smtpd_milter_conn {
    struct smtpd_milter            *m;
    const struct smtpd_milter_conf *conf;
    enum smtpd_milter_cstate        state;
    int                             fd;
    int                             events;
    uint32_t                        actions, proto;
    int                             accept_session;  /* ACCEPT before MAIL */
    int                             accept_txn;      /* ACCEPT from MAIL on */
    struct buf                      in, out;
};

struct smtpd_milter_mod {
    char   cmd;
    char  *data;
    size_t len;
};

struct smtpd_milter {
    struct smtpd_session       *s;
    struct smtpd_milter_conn   *c;
    size_t                      n, cur;
    enum smtpd_milter_stage     stage;
    enum smtpd_milter_sub       sub;
    int                         busy;            /* a stage is running */
    int                         waiting;         /* a reply is due from c[cur] */
    int                         room_wait;       /* ... or room in its output queue */
    int                         txn_open;        /* MAIL was shown, the message not ended */
    smtpd_milter_cb             cb;
    uint64_t                    timer;
    struct smtpd_milter_verdict v;
    struct smtpd_milter_verdict session_v;       /* a refusal at connect: from MAIL on */
    char                       *rcpt;
    char                       *rcpt_esmtp;      /* its ESMTP parameters as given */
    /* end of message */
    struct milter_hdrs          hdrs;
    size_t                      hdr_end;         /* the section's end in the file */
    uint64_t                    body_start, body_off;
    size_t                      hidx;
    struct smtpd_milter_mod    *mods;            /* c[cur]'s, applied when it is done */
    size_t                      nmods;
    int                         repl;            /* c[cur] replaces the body: the new */
    uint64_t                    repl_len;        /* one is written after the message */
    int                         repl_error;      /* ... a write failed */
    int                         repl_too_big;    /* ... over message_size_limit */
    char                        repl_last;       /* ... its last octet */
};

static struct smtpd_milter_conf smtpd_milter_confs[SMTPD_MILTER_MAX];
static size_t                   smtpd_milter_nconf;
static enum policy_kind         smtpd_milter_default;   /* NONE (accept), DEFER, REJECT */
static uint64_t                 smtpd_milter_connect_ms, smtpd_milter_command_ms;
static uint64_t                 smtpd_milter_content_ms;

static void smtpd_milter_step(struct smtpd_milter *);
static int  smtpd_milter_eom_done(struct smtpd_milter *);
static void smtpd_milter_io(int fd, int events, void *arg);

/* smtpd_milter_parse - "inet:host:port" or "unix:/path" into c. */
static int
smtpd_milter_parse(const char *spec, struct smtpd_milter_conf *c, char *err, size_t errlen)
{
    snprintf(c->name, sizeof(c->name), "%s", spec);
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&c->sa;

        if (spec[5] != '/' || strlen(spec + 5) >= sizeof(un->sun_path)) {
            snprintf(err, errlen, "smtpd_milters: %s: need unix:/absolute/path", spec);
            return -1;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, spec + 5, strlen(spec + 5) + 1);
        c->salen = sizeof(*un);
        return 0;
    }
    if (strncmp(spec, "inet:", 5) == 0) {
        char             host[256];
        const char      *colon = strrchr(spec + 5, ':');
        struct addrinfo  hints, *res = NULL;
        size_t           hl;
        int              rc;

        if (colon == NULL || (hl = (size_t)(colon - (spec + 5))) == 0 || hl >= sizeof(host)) {
            snprintf(err, errlen, "smtpd_milters: %s: need inet:host:port", spec);
            return -1;
        }
        memcpy(host, spec + 5, hl);
        host[hl] = '\0';
        if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
            memmove(host, host + 1, hl - 2);
            host[hl - 2] = '\0';
        }
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
            snprintf(err, errlen, "smtpd_milters: %s: %s", spec, gai_strerror(rc));
            return -1;
        }
        memcpy(&c->sa, res->ai_addr, res->ai_addrlen);
        c->salen = res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
    }
    snprintf(err, errlen, "smtpd_milters: %s: need inet:host:port or unix:/path", spec);
    return -1;
}

int
smtpd_milter_init(char *err, size_t errlen)
{
    char *const *v;
    const char  *act = config_str(smtpd.cfg, "milter_default_action");
    size_t       n, i;

    v = config_list(smtpd.cfg, "smtpd_milters", &n);
    if (n > SMTPD_MILTER_MAX) {
        snprintf(err, errlen, "smtpd_milters: more than %d milters", SMTPD_MILTER_MAX);
        return -1;
    }
    for (i = 0; i < n; i++)
        if (smtpd_milter_parse(v[i], &smtpd_milter_confs[i], err, errlen) == -1)
            return -1;
    smtpd_milter_nconf = n;
    smtpd_milter_default = strcmp(act, "accept") == 0   ? POLICY_NONE
                           : strcmp(act, "reject") == 0 ? POLICY_REJECT
                                                        : POLICY_DEFER;
    smtpd_milter_connect_ms = config_time_ms(smtpd.cfg, "milter_connect_timeout");
    smtpd_milter_command_ms = config_time_ms(smtpd.cfg, "milter_command_timeout");
    smtpd_milter_content_ms = config_time_ms(smtpd.cfg, "milter_content_timeout");
    return 0;
}

/* smtpd_milter_get - the session's milters, created on first use; NULL: none apply. */
static struct smtpd_milter *
smtpd_milter_get(struct smtpd_session *s)
{
    struct smtpd_milter *m = s->milter;
    size_t               i;

    if (m != NULL || smtpd_milter_nconf == 0 || s->svc == SMTPD_SVC_SUBMIT)
        return m;
    m = xcalloc(1, sizeof(*m));
    m->s = s;
    m->n = smtpd_milter_nconf;
    m->c = xcalloc(m->n, sizeof(*m->c));
    for (i = 0; i < m->n; i++) {
        m->c[i].m = m;
        m->c[i].conf = &smtpd_milter_confs[i];
        m->c[i].fd = -1;
        buf_init(&m->c[i].in, 0);
        buf_init(&m->c[i].out, 0);
    }
    s->milter = m;
    return m;
}

/* smtpd_milter_set_verdict - a refusal with its reply. */
static void
smtpd_milter_set_verdict(struct smtpd_milter *m, enum policy_kind k, int code, const char *enh,
                         const char *text)
{
    m->v.kind = k;
    m->v.code = code;
    snprintf(m->v.enh, sizeof(m->v.enh), "%s", enh);
    snprintf(m->v.text, sizeof(m->v.text), "%s", text);
    snprintf(m->v.who, sizeof(m->v.who), "%s", m->cur < m->n ? m->c[m->cur].conf->name : "");
}

/* smtpd_milter_default_verdict - milter_default_action for a milter that failed; 1 if it
 * refuses (the stage is over), 0 if the milter is skipped. */
static int
smtpd_milter_default_verdict(struct smtpd_milter *m)
{
    if (smtpd_milter_default == POLICY_NONE)
        return 0;
    if (smtpd_milter_default == POLICY_REJECT)
        smtpd_milter_set_verdict(m, POLICY_REJECT, 550, "5.7.1", "Command rejected");
    else
        smtpd_milter_set_verdict(m, POLICY_DEFER, 451, "4.7.1",
                                 "Service unavailable - try again later");
    return 1;
}

/* smtpd_milter_close - forget a connection's socket and buffers. */
static void
smtpd_milter_close(struct smtpd_milter_conn *c)
{
    if (c->fd >= 0) {
        if (c->events)
            ev_io_del(smtpd.ev, c->fd);
        close(c->fd);
    }
    c->fd = -1;
    c->events = 0;
    buf_release(&c->in);
    buf_release(&c->out);
    buf_init(&c->in, 0);
    buf_init(&c->out, 0);
}

/* smtpd_milter_watch - read always, write while something is queued. */
static void
smtpd_milter_watch(struct smtpd_milter_conn *c)
{
    int want = EV_READ | (c->out.len > 0 || c->state == MC_CONNECTING ? EV_WRITE : 0);

    if (c->fd >= 0 && want != c->events) {
        (void)ev_io_set(smtpd.ev, c->fd, want, smtpd_milter_io, c);
        c->events = want;
    }
}

/* smtpd_milter_timer_set - (re)start the wait for c[cur]. */
static void smtpd_milter_timeout(void *arg);

static void
smtpd_milter_timer_set(struct smtpd_milter *m, uint64_t ms)
{
    ev_timer_del(smtpd.ev, m->timer);
    m->timer = ev_timer_add(smtpd.ev, ms, smtpd_milter_timeout, m);
}

static uint64_t
smtpd_milter_wait_ms(const struct smtpd_milter *m)
{
    if (m->c[m->cur].state == MC_CONNECTING)
        return smtpd_milter_connect_ms;
    return m->stage == MS_EOM ? smtpd_milter_content_ms : smtpd_milter_command_ms;
}

/* smtpd_milter_deliver - the verdict to the caller, from the loop. */
static void
smtpd_milter_deliver(void *arg)
{
    struct smtpd_milter        *m = arg;
    struct smtpd_session       *s = m->s;
    struct smtpd_milter_verdict v = m->v;
    smtpd_milter_cb             cb = m->cb;

    m->timer = 0;
    m->busy = 0;
    s->milter_wait = 0;
    if (m->stage == MS_EOM)
        m->txn_open = 0;              /* the milters reset themselves after EOM */
    if (m->stage == MS_CONNECT && v.kind != POLICY_NONE)
        m->session_v = v;             /* said to every transaction, as Postfix does */
    cb(s, &v);
}

/* smtpd_milter_finish - the stage is over: tell the caller from a zero timer. Each
 * milter's modifications are in place already (smtpd_milter_eom_done). */
static void smtpd_milter_pending_drop(struct smtpd_milter *);

static void
smtpd_milter_finish(struct smtpd_milter *m)
{
    m->waiting = 0;
    if (m->stage == MS_EOM && m->v.kind == POLICY_NONE && m->s->nrcpt == 0)
        smtpd_milter_set_verdict(m, POLICY_DISCARD, 250, "2.0.0", "no recipients left");
    ev_timer_del(smtpd.ev, m->timer);
    m->timer = ev_timer_add(smtpd.ev, 0, smtpd_milter_deliver, m);
}

/* smtpd_milter_drop - c failed (why): closed for the rest of the session. */
static void
smtpd_milter_drop(struct smtpd_milter_conn *c, const char *why)
{
    struct smtpd_session *s = c->m->s;

    log_warnx("milter %s: %s; client=[%s]%s%s", c->conf->name, why, s->addr,
              s->qid[0] ? " qid=" : "", s->qid);
    smtpd_milter_close(c);
    c->state = MC_FAILED;
}

/* smtpd_milter_fail - c[cur] failed (why) during a stage: dropped; the default action. */
static void
smtpd_milter_fail(struct smtpd_milter *m, const char *why)
{
    smtpd_milter_drop(&m->c[m->cur], why);
    if (m->stage == MS_EOM)
        smtpd_milter_pending_drop(m);  /* what a failed milter asked for is not done */
    m->waiting = m->room_wait = 0;
    ev_timer_del(smtpd.ev, m->timer);
    m->timer = 0;
    if (smtpd_milter_default_verdict(m)) {
        smtpd_milter_finish(m);
        return;
    }
    m->cur++;
    m->sub = SUB_START;
    smtpd_milter_step(m);
}

static void
smtpd_milter_timeout(void *arg)
{
    struct smtpd_milter *m = arg;

    m->timer = 0;
    smtpd_milter_fail(m, m->c[m->cur].state == MC_CONNECTING ? "connect timeout"
                                                             : "timeout waiting for a reply");
}

/* smtpd_milter_flush - write what is queued; -1 on a write error (the caller fails it). */
static int
smtpd_milter_flush(struct smtpd_milter_conn *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);

        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        buf_consume(&c->out, (size_t)n);
    }
    smtpd_milter_watch(c);
    return 0;
}

/* smtpd_milter_connect_start - a non-blocking connect to c; -1 at once on failure. */
static int
smtpd_milter_connect_start(struct smtpd_milter_conn *c)
{
    c->fd = socket(c->conf->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd == -1)
        return -1;
    if (connect(c->fd, (const struct sockaddr *)&c->conf->sa, c->conf->salen) == -1
        && errno != EINPROGRESS)
        return -1;
    c->state = MC_CONNECTING;
    smtpd_milter_watch(c);
    return 0;
}

/* smtpd_milter_negotiate - connected: offer what we do (SMFIC_OPTNEG). */
static void
smtpd_milter_negotiate(struct smtpd_milter_conn *c)
{
    c->state = MC_OPTNEG;
    milter_put_optneg(&c->out, SMTPD_MILTER_ACTIONS, SMTPD_MILTER_PROTO);
}

/* smtpd_milter_tls - the TLS facts for macros, or NULL values in plaintext. */
static void
smtpd_milter_tls(const struct smtpd_session *s, const char **version, const char **cipher,
                 const char **subject, char *bits, size_t bitslen)
{
    *version = *cipher = *subject = NULL;
    snprintf(bits, bitslen, "0");
    if (s->tls != NULL && s->tls_phase == SMTPD_TLS_ON) {
        const struct tls_facts *f = tls_conn_facts(s->tls);

        *version = f->version;
        *cipher = f->cipher;
        *subject = f->peer_subject[0] ? f->peer_subject : NULL;
        snprintf(bits, bitslen, "%d", f->bits);
    }
}

/* smtpd_milter_route - {mail_host}/{rcpt_host} and {mail_mailer}/{rcpt_mailer} as Postfix
 * gives them: the domain it goes to and the transport (local, relay or smtp). NULL for an
 * address without a domain (<>, a bare <postmaster>). */
static void
smtpd_milter_route(const char *addr, const char **host, const char **mailer)
{
    const char *at = addr != NULL ? strrchr(addr, '@') : NULL;

    *host = *mailer = NULL;
    if (at == NULL || at[1] == '\0')
        return;
    *host = at + 1;
    switch (resolve_domain_class(smtpd.resolve, at + 1)) {
    case RESOLVE_LOCAL: *mailer = "local"; break;
    case RESOLVE_RELAY_DOMAIN: *mailer = "relay"; break;
    default: *mailer = "smtp"; break;
    }
}

/* smtpd_milter_daemon_addr - {daemon_addr}: our end of the client's connection. */
static const char *
smtpd_milter_daemon_addr(const struct smtpd_session *s, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t               len = sizeof(ss);

    if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == -1
        || getnameinfo((struct sockaddr *)&ss, len, out, (socklen_t)outlen, NULL, 0,
                       NI_NUMERICHOST) != 0)
        return NULL;
    return out;
}

/* smtpd_milter_put_stage - the macros and the command of a stage before the message: the
 * macros of Postfix's milter_*_macros defaults (and Sendmail's client ones at connect). */
static void
smtpd_milter_put_stage(struct smtpd_milter *m, struct smtpd_milter_conn *c)
{
    struct smtpd_session *s = m->s;
    char                  underscore[600], addr[520], bits[16], daddr[NI_MAXHOST];
    const char           *tv, *ci, *subj, *host, *mailer;

    switch (m->stage) {
    case MS_CONNECT: {
        const char *mac[] = { "j", smtpd.hostname, "{daemon_name}", "postern",
                              "{daemon_addr}", smtpd_milter_daemon_addr(s, daddr,
                                                                        sizeof(daddr)),
                              "v", "Postern", "_", underscore, "{client_addr}", s->addr,
                              "{client_name}", s->client_name[0] ? s->client_name : "unknown",
                              "{client_port}", s->addr_port };

        snprintf(underscore, sizeof(underscore), "%s [%s]",
                 s->client_name[0] ? s->client_name : "unknown", s->addr);
        milter_put_macros(&c->out, MILTER_C_CONNECT, mac, sizeof(mac) / sizeof(mac[0]) / 2);
        milter_put_connect(&c->out, s->client_name[0] ? s->client_name : "unknown", s->addr,
                           (unsigned)atoi(s->addr_port));
        break;
    }
    case MS_HELO: {
        const char *h = s->helo ? s->helo : "";

        smtpd_milter_tls(s, &tv, &ci, &subj, bits, sizeof(bits));
        {
            const char *mac[] = { "{tls_version}", tv, "{cipher}", ci,
                                  "{cipher_bits}", tv ? bits : NULL, "{cert_subject}", subj };

            milter_put_macros(&c->out, MILTER_C_HELO, mac, sizeof(mac) / sizeof(mac[0]) / 2);
        }
        milter_put_strings(&c->out, MILTER_C_HELO, &h, 1);
        break;
    }
    case MS_MAIL: {
        smtpd_milter_tls(s, &tv, &ci, &subj, bits, sizeof(bits));
        smtpd_milter_route(s->sender, &host, &mailer);
        {
            const char *mac[] = { "{mail_addr}", s->sender ? s->sender : "",
                                  "{mail_host}", host, "{mail_mailer}", mailer,
                                  "{auth_authen}", s->auth_user,
                                  "{auth_type}", s->auth_user ? s->auth_method : NULL,
                                  "{tls_version}", tv, "{cipher}", ci,
                                  "{cipher_bits}", tv ? bits : NULL };

            milter_put_macros(&c->out, MILTER_C_MAIL, mac, sizeof(mac) / sizeof(mac[0]) / 2);
        }
        snprintf(addr, sizeof(addr), "<%s>", s->sender ? s->sender : "");
        milter_put_args(&c->out, MILTER_C_MAIL, addr, s->mail_esmtp ? s->mail_esmtp : "");
        break;
    }
    case MS_RCPT: {
        smtpd_milter_route(m->rcpt, &host, &mailer);
        {
            const char *mac[] = { "{rcpt_addr}", m->rcpt, "{rcpt_host}", host,
                                  "{rcpt_mailer}", mailer };

            milter_put_macros(&c->out, MILTER_C_RCPT, mac, sizeof(mac) / sizeof(mac[0]) / 2);
        }
        snprintf(addr, sizeof(addr), "<%s>", m->rcpt);
        milter_put_args(&c->out, MILTER_C_RCPT, addr, m->rcpt_esmtp ? m->rcpt_esmtp : "");
        break;
    }
    case MS_DATA: {
        const char *mac[] = { "i", s->qid[0] ? s->qid : NULL };

        milter_put_macros(&c->out, MILTER_C_DATA, mac, 1);
        milter_put(&c->out, MILTER_C_DATA, NULL, 0);
        break;
    }
    case MS_EOM:
        break;
    }
}

/* smtpd_milter_stage_flags - the "not wanted" and "no reply" flags of a stage. */
static void
smtpd_milter_stage_flags(enum smtpd_milter_stage st, uint32_t *no, uint32_t *nr)
{
    static const uint32_t nos[] = { MILTER_P_NOCONNECT, MILTER_P_NOHELO, MILTER_P_NOMAIL,
                                    MILTER_P_NORCPT, MILTER_P_NODATA, 0 };
    static const uint32_t nrs[] = { MILTER_P_NR_CONN, MILTER_P_NR_HELO, MILTER_P_NR_MAIL,
                                    MILTER_P_NR_RCPT, MILTER_P_NR_DATA, 0 };

    *no = nos[st];
    *nr = nrs[st];
}

/* smtpd_milter_put_eom - the next packet of the message for c; 1 if a reply is due,
 * 0 if not (call again), 2 when the EOM reply is due, -1 on a spool read error. */
static int
smtpd_milter_put_eom(struct smtpd_milter *m, struct smtpd_milter_conn *c)
{
    struct smtpd_session *s = m->s;

    if (m->sub == SUB_START) {
        m->hidx = 0;                  /* each milter gets every field, as it now stands */
        m->sub = (c->proto & MILTER_P_NOHDRS) ? SUB_EOH : SUB_HDRS;
    }
    if (m->sub == SUB_HDRS) {
        if (m->hidx < m->hdrs.n) {
            const struct milter_field *f = &m->hdrs.f[m->hidx++];
            struct buf                 v;

            buf_init(&v, 256);
            milter_field_value(f, &v);
            milter_put_header(&c->out, f->name, strlen(f->name), v.data ? v.data : "",
                              v.len);
            buf_release(&v);
            return (c->proto & MILTER_P_NR_HDR) ? 0 : 1;
        }
        m->sub = SUB_EOH;
    }
    if (m->sub == SUB_EOH) {
        const char *mac[] = { "i", s->qid };

        m->sub = SUB_BODY;
        m->body_off = m->body_start;
        if (!(c->proto & MILTER_P_NOEOH)) {
            milter_put_macros(&c->out, MILTER_C_EOH, mac, 1);
            milter_put(&c->out, MILTER_C_EOH, NULL, 0);
            return (c->proto & MILTER_P_NR_EOH) ? 0 : 1;
        }
    }
    if (m->sub == SUB_BODY) {
        if (!(c->proto & MILTER_P_NOBODY) && m->body_off < s->body_written) {
            char    chunk[MILTER_CHUNK_MAX];
            size_t  want = s->body_written - m->body_off;
            ssize_t n;

            if (want > sizeof(chunk))
                want = sizeof(chunk);
            n = pread(s->body_fd, chunk, want, (off_t)m->body_off);
            if (n <= 0) {
                log_warn("%s: spool file read for milters", s->qid);
                return -1;
            }
            m->body_off += (uint64_t)n;
            milter_put(&c->out, MILTER_C_BODY, chunk, (size_t)n);
            return (c->proto & MILTER_P_NR_BODY) ? 0 : 1;
        }
        m->sub = SUB_EOM;
    }
    {
        const char *mac[] = { "i", s->qid };

        milter_put_macros(&c->out, MILTER_C_EOM, mac, 1);
        milter_put(&c->out, MILTER_C_EOM, NULL, 0);
        m->sub = SUB_DONE;
        return 2;
    }
}

/* smtpd_milter_skip - does c sit out this stage? */
static int
smtpd_milter_skip(const struct smtpd_milter *m, const struct smtpd_milter_conn *c)
{
    if (c->accept_session)
        return 1;
    if (c->accept_txn && m->stage >= MS_MAIL)
        return 1;
    return 0;
}

/* smtpd_milter_send - queue the stage's next packets for c[cur]: 1 when a reply is due,
 * 0 when c is done with the stage, -1 on failure (already handled). */
static int
smtpd_milter_send(struct smtpd_milter *m, struct smtpd_milter_conn *c)
{
    uint32_t no, nr;
    int      rc;

    if (m->stage != MS_EOM) {
        smtpd_milter_stage_flags(m->stage, &no, &nr);
        if (c->proto & no)
            return 0;
        smtpd_milter_put_stage(m, c);
        return (c->proto & nr) ? 0 : 1;
    }
    while ((rc = smtpd_milter_put_eom(m, c)) == 0) {
        if (c->out.len < SMTPD_MILTER_OUT_MAX)
            continue;
        if (smtpd_milter_flush(c) == -1) {
            smtpd_milter_fail(m, "write error");
            return -1;
        }
        if (c->out.len > 0) {
            m->room_wait = 1;         /* no reply is due: go on once the queue drains */
            return 1;
        }
    }
    if (rc == -1) {
        smtpd_milter_fail(m, "cannot read the message");
        return -1;
    }
    return 1;
}

/* smtpd_milter_step - go on with the stage from c[cur]: connect, negotiate, send, wait. */
static void
smtpd_milter_step(struct smtpd_milter *m)
{
    while (m->cur < m->n) {
        struct smtpd_milter_conn *c = &m->c[m->cur];
        int                       rc;

        if (c->state == MC_FAILED) {
            if (m->stage != MS_HELO && smtpd_milter_default_verdict(m)) {
                smtpd_milter_finish(m);
                return;
            }
        } else if (!smtpd_milter_skip(m, c)) {
            if (c->state == MC_IDLE) {
                if (smtpd_milter_connect_start(c) == -1) {
                    smtpd_milter_fail(m, strerror(errno));
                    return;
                }
                m->waiting = 1;
                smtpd_milter_timer_set(m, smtpd_milter_connect_ms);
                return;
            }
            if ((rc = smtpd_milter_send(m, c)) == -1)
                return;
            if (smtpd_milter_flush(c) == -1) {
                smtpd_milter_fail(m, "write error");
                return;
            }
            if (rc == 1) {
                m->waiting = 1;
                smtpd_milter_timer_set(m, smtpd_milter_wait_ms(m));
                return;
            }
        }
        m->cur++;
        m->sub = SUB_START;
    }
    smtpd_milter_finish(m);
}

/* smtpd_milter_repl_chunk - SMFIR_REPLBODY: the first chunk of a milter starts a new body,
 * the next ones go on with it. The new body is written past the end of the message in the
 * spool file (nothing of it is held in memory) and moved into place when the milter is
 * done; the message with it may not exceed message_size_limit. */
static void
smtpd_milter_repl_chunk(struct smtpd_milter *m, const char *p, size_t n)
{
    struct smtpd_session *s = m->s;
    struct buf            b;

    if (!m->repl) {
        m->repl = 1;
        m->repl_len = 0;
        m->repl_last = '\n';
    }
    if (m->repl_error || m->repl_too_big || n == 0)
        return;
    buf_init(&b, n + n / 8 + 2);
    milter_body_crlf(p, n, &b);
    if (smtpd.size_limit != 0 && m->body_start + m->repl_len + b.len + 2 > smtpd.size_limit) {
        log_warnx("%s: milter %s: replacement body over message_size_limit", s->qid,
                  m->c[m->cur].conf->name);
        m->repl_too_big = 1;
    } else if (b.len > 0) {
        if (pwrite(s->body_fd, b.data, b.len, (off_t)(s->body_written + m->repl_len))
            != (ssize_t)b.len) {
            log_warn("%s: spool file write of a milter's body", s->qid);
            m->repl_error = 1;
        }
        m->repl_len += b.len;
        m->repl_last = b.data[b.len - 1];
    }
    buf_release(&b);
}

/* smtpd_milter_keep_mod - a modification at end of message, if its action was agreed. */
static int
smtpd_milter_keep_mod(struct smtpd_milter *m, struct smtpd_milter_conn *c,
                      const struct milter_packet *p)
{
    uint32_t need;

    switch (p->cmd) {
    case MILTER_R_ADDHEADER: case MILTER_R_INSHEADER: need = MILTER_F_ADDHDRS; break;
    case MILTER_R_CHGHEADER: need = MILTER_F_CHGHDRS; break;
    case MILTER_R_ADDRCPT: need = MILTER_F_ADDRCPT; break;
    case MILTER_R_ADDRCPT_PAR: need = MILTER_F_ADDRCPT_PAR; break;
    case MILTER_R_DELRCPT: need = MILTER_F_DELRCPT; break;
    case MILTER_R_CHGFROM: need = MILTER_F_CHGFROM; break;
    case MILTER_R_QUARANTINE: need = MILTER_F_QUARANTINE; break;
    case MILTER_R_REPLBODY: need = MILTER_F_CHGBODY; break;
    default: return -1;
    }
    if (m->stage != MS_EOM || !(c->actions & need) || m->nmods >= SMTPD_MILTER_MODS_MAX)
        return -1;
    if (p->cmd == MILTER_R_REPLBODY) {
        smtpd_milter_repl_chunk(m, p->data, p->len);
        return 0;
    }
    m->mods = xrealloc(m->mods, (m->nmods + 1) * sizeof(*m->mods));
    m->mods[m->nmods].cmd = p->cmd;
    m->mods[m->nmods].data = xmalloc(p->len + 1);
    memcpy(m->mods[m->nmods].data, p->data, p->len);
    m->mods[m->nmods].data[p->len] = '\0';
    m->mods[m->nmods].len = p->len;
    m->nmods++;
    return 0;
}

/* smtpd_milter_optneg - the milter's answer to SMFIC_OPTNEG. */
static int
smtpd_milter_optneg(struct smtpd_milter_conn *c, const struct milter_packet *p)
{
    uint32_t version, actions, proto;

    if (milter_parse_optneg(p, &version, &actions, &proto) == -1)
        return -1;
    c->actions = actions & SMTPD_MILTER_ACTIONS;
    c->proto = proto & SMTPD_MILTER_PROTO;
    c->state = MC_READY;
    return 0;
}

/* smtpd_milter_refuse - REJECT, TEMPFAIL or REPLYCODE: the stage's verdict. */
static int
smtpd_milter_refuse(struct smtpd_milter *m, const struct milter_packet *p)
{
    int  eom = m->stage == MS_EOM;
    char enh[16], text[MILTER_TEXT_MAX];
    int  code;

    if (p->cmd == MILTER_R_REJECT) {
        smtpd_milter_set_verdict(m, POLICY_REJECT, 550, "5.7.1",
                                 eom ? "Message content rejected" : "Command rejected");
        return 0;
    }
    if (p->cmd == MILTER_R_TEMPFAIL) {
        smtpd_milter_set_verdict(m, POLICY_DEFER, 451, "4.7.1",
                                 "Service unavailable - try again later");
        return 0;
    }
    if (milter_parse_replycode(p, &code, enh, sizeof(enh), text, sizeof(text)) == -1)
        return -1;
    if (enh[0] == '\0')
        snprintf(enh, sizeof(enh), "%s", code >= 500 ? "5.7.1" : "4.7.1");
    smtpd_milter_set_verdict(m, code >= 500 ? POLICY_REJECT : POLICY_DEFER, code, enh,
                             text[0] ? text : code >= 500 ? "Command rejected"
                                                          : "Try again later");
    return 0;
}

/* smtpd_milter_reply - one packet from c[cur]; -1: a protocol violation. */
static int
smtpd_milter_reply(struct smtpd_milter *m, struct smtpd_milter_conn *c,
                   const struct milter_packet *p)
{
    if (!m->waiting || c != &m->c[m->cur])
        return -1;                    /* nothing was asked */
    if (c->state == MC_OPTNEG) {
        if (smtpd_milter_optneg(c, p) == -1)
            return -1;
        m->waiting = 0;
        smtpd_milter_step(m);
        return 0;
    }
    switch (p->cmd) {
    case MILTER_R_PROGRESS:
        smtpd_milter_timer_set(m, smtpd_milter_wait_ms(m));
        return 0;
    case MILTER_R_CONTINUE:
        break;
    case MILTER_R_SKIP:
        if (m->stage == MS_EOM && m->sub == SUB_BODY)
            m->sub = SUB_EOM;
        break;
    case MILTER_R_ACCEPT:
        if (m->stage < MS_MAIL)
            c->accept_session = 1;
        else
            c->accept_txn = 1;
        m->sub = SUB_DONE;
        break;
    case MILTER_R_DISCARD:
        if (m->stage >= MS_MAIL) {
            smtpd_milter_set_verdict(m, POLICY_DISCARD, 250, "2.0.0", "discarded");
            smtpd_milter_finish(m);
            return 0;
        }
        c->accept_session = 1;
        m->sub = SUB_DONE;
        break;
    case MILTER_R_REJECT:
    case MILTER_R_TEMPFAIL:
    case MILTER_R_REPLYCODE:
        if (smtpd_milter_refuse(m, p) == -1)
            return -1;
        smtpd_milter_finish(m);
        return 0;
    default:
        return smtpd_milter_keep_mod(m, c, p);
    }
    m->waiting = 0;
    if (m->stage == MS_EOM && m->sub == SUB_DONE && smtpd_milter_eom_done(m) == -1) {
        smtpd_milter_finish(m);
        return 0;
    }
    if (m->stage != MS_EOM || m->sub == SUB_DONE) {
        m->cur++;
        m->sub = SUB_START;
    }
    ev_timer_del(smtpd.ev, m->timer);
    m->timer = 0;
    smtpd_milter_step(m);
    return 0;
}

/* smtpd_milter_read - what the milter sent: packets to smtpd_milter_reply. */
static void
smtpd_milter_read(struct smtpd_milter *m, struct smtpd_milter_conn *c)
{
    char    tmp[SMTPD_MILTER_READ];
    ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
    struct milter_packet p;
    size_t  used;
    int     rc;

    if (n == -1 && (errno == EAGAIN || errno == EINTR))
        return;
    if (!m->busy || c != &m->c[m->cur]) {
        smtpd_milter_drop(c, n == 0 ? "connection closed" : "reply out of turn");
        return;
    }
    if (n <= 0) {
        smtpd_milter_fail(m, n == 0 ? "connection closed" : "read error");
        return;
    }
    (void)buf_append(&c->in, tmp, (size_t)n);
    while (c->fd >= 0 && (rc = milter_take(c->in.data, c->in.len, &p, &used)) != 0) {
        if (rc == -1) {
            smtpd_milter_fail(m, "malformed reply");
            return;
        }
        /* the packet points into c->in: handle it before the buffer moves */
        rc = smtpd_milter_reply(m, c, &p);
        if (rc == -1) {
            smtpd_milter_fail(m, "unexpected reply");
            return;
        }
        if (c->fd >= 0)
            buf_consume(&c->in, used);
    }
}

/* smtpd_milter_io - a milter socket is ready. */
static void
smtpd_milter_io(int fd, int events, void *arg)
{
    struct smtpd_milter_conn *c = arg;
    struct smtpd_milter      *m = c->m;
    int                       err = 0;
    socklen_t                 len = sizeof(err);

    (void)fd;
    if (c->state == MC_CONNECTING) {
        if (!(events & EV_WRITE))
            return;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
            smtpd_milter_fail(m, strerror(err ? err : errno));
            return;
        }
        smtpd_milter_negotiate(c);
        smtpd_milter_timer_set(m, smtpd_milter_command_ms);
    }
    if ((events & EV_WRITE) && c->out.len > 0) {
        if (smtpd_milter_flush(c) == -1) {
            smtpd_milter_fail(m, "write error");
            return;
        }
        /* the message waits for room: produce more once the queue is drained */
        if (c->out.len == 0 && m->busy && m->room_wait && c == &m->c[m->cur]) {
            m->room_wait = m->waiting = 0;
            smtpd_milter_step(m);
            return;
        }
    }
    if ((events & EV_READ) && c->fd >= 0)
        smtpd_milter_read(m, c);
    else
        smtpd_milter_watch(c);
}

/* smtpd_milter_start - run a stage for s; 1 if there is nothing to ask. */
static int
smtpd_milter_start(struct smtpd_session *s, enum smtpd_milter_stage st, smtpd_milter_cb cb)
{
    struct smtpd_milter *m = smtpd_milter_get(s);

    if (m == NULL)
        return 1;
    memset(&m->v, 0, sizeof(m->v));
    m->stage = st;
    m->cb = cb;
    m->cur = 0;
    m->sub = SUB_START;
    m->busy = 1;
    s->milter_wait = 1;
    if (st == MS_MAIL)
        m->txn_open = 1;
    if (st >= MS_MAIL && m->session_v.kind != POLICY_NONE) {
        m->v = m->session_v;
        smtpd_milter_finish(m);
        return 0;
    }
    smtpd_milter_step(m);
    return 0;
}

int
smtpd_milter_connect(struct smtpd_session *s, smtpd_milter_cb cb)
{
    return smtpd_milter_start(s, MS_CONNECT, cb);
}

int
smtpd_milter_helo(struct smtpd_session *s, smtpd_milter_cb cb)
{
    return smtpd_milter_start(s, MS_HELO, cb);
}

int
smtpd_milter_mail(struct smtpd_session *s, smtpd_milter_cb cb)
{
    smtpd_milter_abort(s);
    return smtpd_milter_start(s, MS_MAIL, cb);
}

int
smtpd_milter_rcpt(struct smtpd_session *s, const char *rcpt, const char *esmtp,
                  smtpd_milter_cb cb)
{
    struct smtpd_milter *m = smtpd_milter_get(s);

    if (m != NULL) {
        free(m->rcpt);
        m->rcpt = xstrdup(rcpt);
        free(m->rcpt_esmtp);
        m->rcpt_esmtp = xstrdup(esmtp ? esmtp : "");
    }
    return smtpd_milter_start(s, MS_RCPT, cb);
}

int
smtpd_milter_data(struct smtpd_session *s, smtpd_milter_cb cb)
{
    return smtpd_milter_start(s, MS_DATA, cb);
}

/* smtpd_milter_read_header - the header section from the spool file into m->hdrs. */
static int
smtpd_milter_read_header(struct smtpd_milter *m)
{
    struct smtpd_session *s = m->s;
    size_t                max = (size_t)smtpd.header_limit + SMTPD_MILTER_HDR_SLACK;
    char                 *p;
    ssize_t               n;
    int                   rc;

    if (max > s->body_written)
        max = (size_t)s->body_written;
    p = xmalloc(max + 1);
    n = pread(s->body_fd, p, max, 0);
    if (n < 0 || (size_t)n != max) {
        log_warn("%s: spool file read for milters", s->qid);
        free(p);
        return -1;
    }
    rc = milter_hdrs_split(p, max, &m->hdrs, &m->hdr_end);
    if (rc == -1) {                   /* no body: the whole file is the section */
        p[max] = '\n';
        rc = milter_hdrs_split(p, max + (max > 0 && p[max - 1] == '\n'), &m->hdrs,
                               &m->hdr_end);
    }
    if (rc == 0) {
        m->body_start = m->hdr_end;
        if (m->hdr_end + 1 < max && p[m->hdr_end] == '\r' && p[m->hdr_end + 1] == '\n')
            m->body_start += 2;
        else if (m->hdr_end < max && p[m->hdr_end] == '\n')
            m->body_start += 1;
        if (m->body_start > s->body_written)
            m->body_start = s->body_written;
    }
    free(p);
    return rc;
}

/* smtpd_milter_load_header - the header section as the file has it now, for the next milter
 * (none if it cannot be split: the whole file is then the body). */
static void
smtpd_milter_load_header(struct smtpd_milter *m)
{
    milter_hdrs_free(&m->hdrs);
    if (smtpd_milter_read_header(m) == -1) {
        memset(&m->hdrs, 0, sizeof(m->hdrs));
        m->hdr_end = 0;
        m->body_start = 0;
    }
}

int
smtpd_milter_eom(struct smtpd_session *s, smtpd_milter_cb cb)
{
    struct smtpd_milter *m = smtpd_milter_get(s);

    if (m == NULL)
        return 1;
    smtpd_milter_load_header(m);
    return smtpd_milter_start(s, MS_EOM, cb);
}

/* smtpd_milter_strip - an address without its angle brackets, into out. */
static const char *
smtpd_milter_strip(const char *a, char *out, size_t outlen)
{
    size_t n = strlen(a);

    if (n >= 2 && a[0] == '<' && a[n - 1] == '>')
        snprintf(out, outlen, "%.*s", (int)(n - 2), a + 1);
    else
        snprintf(out, outlen, "%s", a);
    return out;
}

/* smtpd_milter_rcpt_add - SMFIR_ADDRCPT: a recipient as given, no DSN options. */
static void
smtpd_milter_rcpt_add(struct smtpd_session *s, const char *addr)
{
    struct smtpd_rcpt *r;
    size_t             i;

    if (*addr == '\0' || strchr(addr, '@') == NULL)
        return;
    for (i = 0; i < s->nrcpt; i++)
        if (strcasecmp(s->rcpts[i].addr, addr) == 0)
            return;
    if (s->nrcpt == s->rcpt_cap) {
        s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 4;
        s->rcpts = xrealloc(s->rcpts, s->rcpt_cap * sizeof(*s->rcpts));
    }
    r = &s->rcpts[s->nrcpt++];
    r->addr = xstrdup(addr);
    r->orcpt = xstrdup("");
    r->given = xstrdup(addr);
    r->notify = 0;
}

/* smtpd_milter_rcpt_del - SMFIR_DELRCPT: every recipient with that address. */
static void
smtpd_milter_rcpt_del(struct smtpd_session *s, const char *addr)
{
    size_t i = 0;

    while (i < s->nrcpt) {
        if (strcasecmp(s->rcpts[i].addr, addr) != 0 && strcasecmp(s->rcpts[i].given, addr) != 0) {
            i++;
            continue;
        }
        free(s->rcpts[i].addr);
        free(s->rcpts[i].orcpt);
        free(s->rcpts[i].given);
        memmove(&s->rcpts[i], &s->rcpts[i + 1], (s->nrcpt - i - 1) * sizeof(*s->rcpts));
        s->nrcpt--;
    }
}

/* smtpd_milter_envelope - one envelope modification. */
static void
smtpd_milter_envelope(struct smtpd_session *s, const struct smtpd_milter_mod *d)
{
    struct milter_packet p = { d->cmd, d->data, d->len };
    const char          *v[2];
    char                 addr[1024];

    if (milter_parse_strings(&p, v, 2, 1) == -1)
        return;
    smtpd_milter_strip(v[0], addr, sizeof(addr));
    switch (d->cmd) {
    case MILTER_R_ADDRCPT:
    case MILTER_R_ADDRCPT_PAR:
        smtpd_milter_rcpt_add(s, addr);
        log_info("%s: milter: add recipient <%s>", s->qid, addr);
        break;
    case MILTER_R_DELRCPT:
        smtpd_milter_rcpt_del(s, addr);
        log_info("%s: milter: delete recipient <%s>", s->qid, addr);
        break;
    case MILTER_R_CHGFROM:
        free(s->sender);
        s->sender = xstrdup(addr);
        log_info("%s: milter: change sender to <%s>", s->qid, addr);
        break;
    case MILTER_R_QUARANTINE:
        s->hold = 1;
        log_info("%s: hold: milter quarantine: %s", s->qid, v[0]);
        break;
    default:
        break;
    }
}

/* smtpd_milter_header_mod - one header modification; 1 if the section changed. */
static int
smtpd_milter_header_mod(struct smtpd_milter *m, const struct smtpd_milter_mod *d)
{
    struct milter_packet p = { d->cmd, d->data, d->len };
    const char          *v[2];
    uint32_t             idx;

    if (d->cmd == MILTER_R_ADDHEADER) {
        if (milter_parse_strings(&p, v, 2, 2) == -1)
            return 0;
        milter_hdrs_add(&m->hdrs, m->hdrs.n, v[0], v[1]);
    } else if (milter_parse_index(&p, &idx, v, 2) == -1) {
        return 0;
    } else if (d->cmd == MILTER_R_INSHEADER) {
        milter_hdrs_add(&m->hdrs, idx, v[0], v[1]);
    } else {
        milter_hdrs_change(&m->hdrs, idx, v[0], v[1]);
    }
    return 1;
}

/* smtpd_milter_file_move - move the file's octets from `from` on to `to` (the body after a
 * new header section), then cut the file at its new size; -1 on an I/O error. */
static int
smtpd_milter_file_move(int fd, uint64_t size, uint64_t from, uint64_t to)
{
    char     chunk[SMTPD_MILTER_READ];
    uint64_t len = size - from, done = 0;

    while (done < len) {
        size_t   n = len - done > sizeof(chunk) ? sizeof(chunk) : (size_t)(len - done);
        /* forward moves copy from the start, backward ones from the end */
        uint64_t off = to > from ? len - done - n : done;

        if (pread(fd, chunk, n, (off_t)(from + off)) != (ssize_t)n
            || pwrite(fd, chunk, n, (off_t)(to + off)) != (ssize_t)n)
            return -1;
        done += n;
    }
    return ftruncate(fd, (off_t)(to + len));
}

/* smtpd_milter_rewrite - the changed header section into the spool file. */
static int
smtpd_milter_rewrite(struct smtpd_milter *m)
{
    struct smtpd_session *s = m->s;
    struct buf            h;
    int                   rc = -1;

    buf_init(&h, 4096);
    milter_hdrs_join(&m->hdrs, &h);
    if (smtpd_milter_file_move(s->body_fd, s->body_written, m->hdr_end, h.len) == 0
        && pwrite(s->body_fd, h.data, h.len, 0) == (ssize_t)h.len) {
        s->body_written = s->body_written - m->hdr_end + h.len;
        rc = 0;
    }
    buf_release(&h);
    return rc;
}

/* smtpd_milter_body_replace - the new body, written after the message, moved into the
 * place of the old one (after an empty line, which a message without a body gets now);
 * -1 on an I/O error. */
static int
smtpd_milter_body_replace(struct smtpd_milter *m)
{
    struct smtpd_session *s = m->s;
    uint64_t              to = m->body_start, len = m->repl_len;
    int                   sep = m->body_start == m->hdr_end;

    if (len > 0 && m->repl_last != '\n') {
        if (pwrite(s->body_fd, "\r\n", 2, (off_t)(s->body_written + len)) != 2)
            return -1;
        len += 2;
    }
    if (sep)
        to += 2;
    if (smtpd_milter_file_move(s->body_fd, s->body_written + len, s->body_written, to) == -1
        || (sep && pwrite(s->body_fd, "\r\n", 2, (off_t)m->hdr_end) != 2))
        return -1;
    s->body_written = to + len;
    return 0;
}

/* smtpd_milter_eom_done - c[cur] is done with the message: what it asked for goes into the
 * file and the envelope now, in the order it came, so that the next milter sees the message
 * as this one left it (as with Postfix). -1 if that failed: m->v says what to answer. */
static int
smtpd_milter_eom_done(struct smtpd_milter *m)
{
    struct smtpd_session *s = m->s;
    const char           *who = m->c[m->cur].conf->name;
    size_t                i;
    int                   hdr_changed = 0, rc = 0;

    if (m->repl_too_big) {
        smtpd_milter_set_verdict(m, POLICY_REJECT, 552, "5.3.4",
                                 "Error: message size exceeds fixed limit");
        rc = -1;
    } else if (m->repl && (m->repl_error || smtpd_milter_body_replace(m) == -1)) {
        log_warn("%s: spool file rewrite for milter %s", s->qid, who);
        smtpd_milter_set_verdict(m, POLICY_DEFER, 451, "4.3.0", "queue file write error");
        rc = -1;
    } else if (m->repl) {
        log_info("%s: milter %s: body replaced", s->qid, who);
    }
    for (i = 0; rc == 0 && i < m->nmods; i++) {
        const struct smtpd_milter_mod *d = &m->mods[i];

        if (d->cmd == MILTER_R_ADDHEADER || d->cmd == MILTER_R_INSHEADER
            || d->cmd == MILTER_R_CHGHEADER)
            hdr_changed |= smtpd_milter_header_mod(m, d);
        else
            smtpd_milter_envelope(s, d);
    }
    if (rc == 0 && hdr_changed) {
        log_info("%s: milter %s: header section changed", s->qid, who);
        if (smtpd_milter_rewrite(m) == -1) {
            log_warn("%s: spool file rewrite for milter %s", s->qid, who);
            smtpd_milter_set_verdict(m, POLICY_DEFER, 451, "4.3.0", "queue file write error");
            rc = -1;
        }
    }
    if (rc == 0 && (hdr_changed || m->repl))
        smtpd_milter_load_header(m);
    m->repl = 0;                      /* in place now: nothing to drop */
    smtpd_milter_pending_drop(m);
    return rc;
}

/* smtpd_milter_pending_drop - forget c[cur]'s modifications not applied, and cut off a new
 * body it was writing past the end of the message. */
static void
smtpd_milter_pending_drop(struct smtpd_milter *m)
{
    size_t i;

    for (i = 0; i < m->nmods; i++)
        free(m->mods[i].data);
    free(m->mods);
    m->mods = NULL;
    m->nmods = 0;
    if (m->repl && m->s->body_fd >= 0 && ftruncate(m->s->body_fd, (off_t)m->s->body_written))
        log_warn("%s: spool file truncate", m->s->qid);
    m->repl = m->repl_error = m->repl_too_big = 0;
    m->repl_len = 0;
}

/* smtpd_milter_mods_free - forget the message's modifications and header copy. */
static void
smtpd_milter_mods_free(struct smtpd_milter *m)
{
    smtpd_milter_pending_drop(m);
    milter_hdrs_free(&m->hdrs);
}

/* smtpd_milter_stop - a stage in progress is abandoned (the session or its transaction
 * ends): its connection, mid-exchange, cannot be reused. */
static void
smtpd_milter_stop(struct smtpd_milter *m)
{
    if (!m->busy)
        return;
    ev_timer_del(smtpd.ev, m->timer);
    m->timer = 0;
    if (m->waiting && m->cur < m->n) {
        smtpd_milter_close(&m->c[m->cur]);
        m->c[m->cur].state = MC_FAILED;
    }
    m->busy = m->waiting = m->room_wait = 0;
    m->s->milter_wait = 0;
}

void
smtpd_milter_abort(struct smtpd_session *s)
{
    struct smtpd_milter *m = s->milter;
    size_t               i;

    if (m == NULL)
        return;
    smtpd_milter_stop(m);
    smtpd_milter_mods_free(m);
    for (i = 0; i < m->n; i++) {
        struct smtpd_milter_conn *c = &m->c[i];

        if (c->state == MC_READY && !c->accept_session && m->txn_open) {
            milter_put(&c->out, MILTER_C_ABORT, NULL, 0);
            if (smtpd_milter_flush(c) == -1) {
                smtpd_milter_close(c);
                c->state = MC_FAILED;
            }
        }
        c->accept_txn = 0;
    }
    m->txn_open = 0;
}

void
smtpd_milter_end(struct smtpd_session *s)
{
    struct smtpd_milter *m = s->milter;
    size_t               i;

    if (m == NULL)
        return;
    smtpd_milter_stop(m);
    for (i = 0; i < m->n; i++) {
        struct smtpd_milter_conn *c = &m->c[i];

        if (c->state == MC_READY) {
            milter_put(&c->out, MILTER_C_QUIT, NULL, 0);
            (void)smtpd_milter_flush(c);     /* best effort, never waited for */
        }
        smtpd_milter_close(c);
        buf_release(&c->in);
        buf_release(&c->out);
    }
    smtpd_milter_mods_free(m);
    free(m->rcpt);
    free(m->rcpt_esmtp);
    free(m->c);
    free(m);
    s->milter = NULL;
}
