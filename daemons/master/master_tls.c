/* master_tls - the session-ticket keys that every smtpd process shares.
 *
 * A TLS client that got a session ticket from one smtpd process may come back to any other
 * (they share the listening sockets, so the kernel picks one), and to one started after a
 * reload or a crash. So the keys live here, in the one process that outlives the others:
 * master makes the first key at start with tls_ticket_key_new(), holds the current and the
 * previous key (newest first: keys[0] encrypts new tickets, both decrypt), and sends both
 * as IPC_MASTER_TLS_KEYS to every smtpd after its HELLO (master_spawn.c) and to all of them
 * after each rotation. Every smtpd_tls_ticket_rotation a new key goes in front and the
 * oldest is wiped, so a ticket issued just before a rotation still resumes for one more
 * period; a ticket is therefore good for between one and two periods. Key material is
 * kept in one locked allocation (best effort: mlock fails quietly without the privilege)
 * and wiped with explicit_bzero whenever a key, or an encoded frame, is dropped. A failure
 * of the random generator at start is fatal; at rotation it is logged and the old keys are
 * kept until the next period. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "buf.h"
#include "config.h"
#include "ev.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "log.h"
#include "master.h"
#include "tls.h"

#define MASTER_TLS_NKEYS    2       /* current and previous */

struct master_tls {
    uint8_t   keys[MASTER_TLS_NKEYS][TLS_TICKET_KEY_LEN];   /* newest first */
    size_t    n;
    uint64_t  period_ms;            /* smtpd_tls_ticket_rotation; 0: never */
    uint64_t  rotated_ms;           /* ev_now_ms() of the newest key */
    uint64_t  timer;
    unsigned  generation;           /* keys made so far, for the log */
};

static void master_tls_arm(struct master *);

/* master_tls_rotate - the period is over: new key in front, the oldest wiped, tell smtpd. */
static void
master_tls_rotate(void *arg)
{
    struct master     *m = arg;
    struct master_tls *t = m->tls;
    uint8_t            fresh[TLS_TICKET_KEY_LEN];

    t->timer = 0;
    if (tls_ticket_key_new(fresh) == -1) {
        log_warnx("tls: cannot make a new session-ticket key; keeping the current ones");
        t->rotated_ms = ev_now_ms();
        master_tls_arm(m);
        return;
    }
    memmove(t->keys[1], t->keys[0], TLS_TICKET_KEY_LEN);
    memcpy(t->keys[0], fresh, TLS_TICKET_KEY_LEN);
    explicit_bzero(fresh, sizeof(fresh));
    t->n = MASTER_TLS_NKEYS;
    t->rotated_ms = ev_now_ms();
    t->generation++;
    log_info("tls: session-ticket key rotated generation=%u", t->generation);
    master_spawn_tls_keys(m);
    master_tls_arm(m);
}

/* master_tls_arm - (re)start the rotation timer: due one period after the last rotation. */
static void
master_tls_arm(struct master *m)
{
    struct master_tls *t = m->tls;
    uint64_t           now = ev_now_ms(), due;

    ev_timer_del(m->ev, t->timer);
    t->timer = 0;
    if (t->period_ms == 0)
        return;
    due = t->rotated_ms + t->period_ms;
    t->timer = ev_timer_add(m->ev, due > now ? due - now : 1, master_tls_rotate, m);
}

void
master_tls_start(struct master *m)
{
    struct master_tls *t = m->tls;

    if (t == NULL) {
        t = m->tls = xcalloc(1, sizeof(*t));
        /* Keep the keys out of swap where we may; without CAP_IPC_LOCK this fails. */
        if (mlock(t, sizeof(*t)) == -1)
            log_debug("tls: mlock of the ticket keys failed; they may be swapped");
        if (tls_ticket_key_new(t->keys[0]) == -1)
            fatalx("tls: cannot make a session-ticket key (random generator)");
        t->n = 1;
        t->rotated_ms = ev_now_ms();
        t->generation = 1;
    }
    t->period_ms = config_time_ms(m->cfg, "smtpd_tls_ticket_rotation");
    master_tls_arm(m);
}

int
master_tls_send(const struct master *m, struct ipc_conn *chan)
{
    const struct master_tls    *t = m->tls;
    uint8_t                     flat[MASTER_TLS_NKEYS * TLS_TICKET_KEY_LEN];
    struct ipc_master_tls_keys  msg;
    struct buf                 *b;
    int                         rc;

    if (t == NULL || chan == NULL)
        return -1;
    memcpy(flat, t->keys, t->n * TLS_TICKET_KEY_LEN);
    msg.keys = flat;
    msg.keys_len = (uint32_t)(t->n * TLS_TICKET_KEY_LEN);
    b = buf_new(sizeof(flat) + 16);
    ipc_master_tls_keys_enc(b, &msg);
    rc = ipc_conn_send(chan, IPC_MASTER_TLS_KEYS, 0, b, -1);
    explicit_bzero(flat, sizeof(flat));
    buf_wipe(b);
    buf_free(&b);
    return rc;
}

void
master_tls_free(struct master *m)
{
    struct master_tls *t = m->tls;

    if (t == NULL)
        return;
    if (m->ev != NULL)
        ev_timer_del(m->ev, t->timer);
    explicit_bzero(t, sizeof(*t));
    munlock(t, sizeof(*t));
    free(t);
    m->tls = NULL;
}
