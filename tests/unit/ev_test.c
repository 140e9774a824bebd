/* ev_test - the event loop: timers, deferred calls, descriptor watchers, signals.
 *
 * Every loop run here has a guard timer that stops it after a few seconds, so that a bug
 * shows up as a failed check rather than a hung test. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "ev.h"
#include "test.h"

#define GUARD_MS 3000

struct rec {
    struct ev *ev;
    char       log[256];        /* one character per event */
    size_t     n;
    int        guard_fired;
    uint64_t   t0;
    uint64_t   at[64];          /* ev_now_ms() - t0 per event */
};

static void
rec_init(struct rec *r, struct ev *ev)
{
    memset(r, 0, sizeof(*r));
    r->ev = ev;
    r->t0 = ev_now_ms();
}

static void
rec_add(struct rec *r, char c)
{
    if (r->n < sizeof(r->at) / sizeof(r->at[0]))
        r->at[r->n] = ev_now_ms() - r->t0;
    if (r->n + 1 < sizeof(r->log))
        r->log[r->n++] = c;
}

static void
guard_cb(void *arg)
{
    struct rec *r = arg;

    r->guard_fired = 1;
    ev_stop(r->ev);
}

static void
stop_cb(void *arg)
{
    struct rec *r = arg;

    rec_add(r, '.');
    ev_stop(r->ev);
}

/* A timer whose arg names the recorder and the character to log. */
struct tmark {
    struct rec *r;
    char        c;
    uint64_t    id;             /* for timers that delete others */
    struct tmark *victim;
};

static void
mark_cb(void *arg)
{
    struct tmark *m = arg;

    rec_add(m->r, m->c);
}

/* run_guarded - ev_run with a guard timer; returns ev_run's result. */
static int
run_guarded(struct ev *ev, struct rec *r)
{
    uint64_t g = ev_timer_add(ev, GUARD_MS, guard_cb, r);
    int rc = ev_run(ev);

    ev_timer_del(ev, g);
    return rc;
}

/* test_ev_timers_order - timers fire in deadline order, none early. */
static void
test_ev_timers_order(void)
{
    static const struct {
        uint64_t ms;
        char     c;
    } cases[] = { { 30, 'c' }, { 10, 'a' }, { 20, 'b' }, { 0, '0' }, { 45, 'd' } };
    struct ev *ev = ev_new();
    struct tmark m[5];
    struct rec r;

    rec_init(&r, ev);
    for (size_t i = 0; i < 5; i++) {
        m[i].r = &r;
        m[i].c = cases[i].c;
        CHECK(ev_timer_add(ev, cases[i].ms, mark_cb, &m[i]) > 0);
    }
    ev_timer_add(ev, 60, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(!r.guard_fired);
    CHECK_STR(r.log, "0abcd.");
    if (r.n == 6) {
        CHECK(r.at[1] >= 10 && r.at[2] >= 20 && r.at[3] >= 30 && r.at[4] >= 45);
        CHECK(r.at[5] >= 60 && r.at[5] < 1000);
    }
    ev_free(&ev);
    CHECK(ev == NULL);
}

/* test_ev_timer_ids - ids are > 0 and distinct. */
static void
test_ev_timer_ids(void)
{
    struct ev *ev = ev_new();
    struct rec r;
    uint64_t ids[100];
    int bad = 0;

    rec_init(&r, ev);
    for (int i = 0; i < 100; i++) {
        ids[i] = ev_timer_add(ev, 100000, stop_cb, &r);
        if (ids[i] == 0)
            bad++;
        for (int j = 0; j < i; j++)
            if (ids[j] == ids[i])
                bad++;
    }
    CHECK(bad == 0);
    for (int i = 0; i < 100; i += 2)
        ev_timer_del(ev, ids[i]);
    ev_free(&ev);           /* with timers still pending: no leak under SAN=1 */
}

/* test_ev_timer_del - a deleted timer never fires; deleting 0, a fired or an unknown id is a
 * no-op. */
static void
test_ev_timer_del(void)
{
    struct ev *ev = ev_new();
    struct tmark a, b;
    struct rec r;
    uint64_t ida, idb;

    rec_init(&r, ev);
    a.r = b.r = &r;
    a.c = 'a';
    b.c = 'b';
    ida = ev_timer_add(ev, 10, mark_cb, &a);
    idb = ev_timer_add(ev, 20, mark_cb, &b);
    ev_timer_del(ev, ida);
    ev_timer_del(ev, 0);
    ev_timer_add(ev, 40, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK_STR(r.log, "b.");

    /* idb fired: deleting it now must not disturb other timers. */
    r.n = 0;
    memset(r.log, 0, sizeof(r.log));
    ida = ev_timer_add(ev, 10, mark_cb, &a);
    ev_timer_del(ev, idb);
    ev_timer_del(ev, idb);
    ev_timer_del(ev, 0xfffffffffull);
    ev_timer_add(ev, 30, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK_STR(r.log, "a.");
    ev_free(&ev);
}

static void
del_victim_cb(void *arg)
{
    struct tmark *m = arg;

    rec_add(m->r, m->c);
    ev_timer_del(m->r->ev, m->victim->id);
}

static void
del_self_cb(void *arg)
{
    struct tmark *m = arg;

    rec_add(m->r, m->c);
    ev_timer_del(m->r->ev, m->id);
}

/* test_ev_timer_del_in_callback - a timer callback may delete another timer (it then does
 * not fire, even if due in the same turn) or itself. */
static void
test_ev_timer_del_in_callback(void)
{
    struct ev *ev = ev_new();
    struct tmark killer, victim, victim2, self;
    struct rec r;

    rec_init(&r, ev);
    killer.r = victim.r = victim2.r = self.r = &r;
    killer.c = 'k';
    victim.c = 'v';
    victim2.c = 'w';
    self.c = 's';
    killer.victim = &victim;
    killer.id = ev_timer_add(ev, 10, del_victim_cb, &killer);
    victim.id = ev_timer_add(ev, 20, mark_cb, &victim);
    self.id = ev_timer_add(ev, 25, del_self_cb, &self);
    ev_timer_add(ev, 50, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK_STR(r.log, "ks.");

    /* Both due in the same turn: the first deletes the second. */
    memset(r.log, 0, sizeof(r.log));
    r.n = 0;
    killer.victim = &victim2;
    killer.id = ev_timer_add(ev, 10, del_victim_cb, &killer);
    victim2.id = ev_timer_add(ev, 11, mark_cb, &victim2);
    usleep(30000);           /* both are overdue when the loop starts */
    ev_timer_add(ev, 20, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK_STR(r.log, "k.");
    ev_free(&ev);
}

static void
add_more_cb(void *arg)
{
    struct tmark *m = arg;

    rec_add(m->r, m->c);
    m->victim->id = ev_timer_add(m->r->ev, 5, mark_cb, m->victim);
}

/* test_ev_timer_add_in_callback - a timer added by a timer callback fires. */
static void
test_ev_timer_add_in_callback(void)
{
    struct ev *ev = ev_new();
    struct tmark a, b;
    struct rec r;

    rec_init(&r, ev);
    a.r = b.r = &r;
    a.c = 'a';
    b.c = 'b';
    a.victim = &b;
    ev_timer_add(ev, 5, add_more_cb, &a);
    ev_timer_add(ev, 200, stop_cb, &r);   /* the chain is two turns: room for a stall */
    CHECK(run_guarded(ev, &r) == 0);
    CHECK_STR(r.log, "ab.");
    ev_free(&ev);
}

/* Timers that record their index, for test_ev_timers_many. */
enum { MANY = 500 };
static struct {
    int      order[MANY];
    int      count;
    uint64_t delay[MANY];
    uint64_t earliest[MANY];    /* clock read just before ev_timer_add, plus the delay */
    uint64_t latest[MANY];      /* and just after: ev's own deadline lies between */
} many;

static void
many_cb(void *arg)
{
    int i = (int)(intptr_t)arg;

    if (many.count < MANY)
        many.order[many.count] = i;
    many.count++;
}

/* test_ev_timers_many - 500 timers with mixed delays, a third deleted: the rest fire once
 * each, in deadline order. */
static void
test_ev_timers_many(void)
{
    struct ev *ev = ev_new();
    static uint64_t id[MANY];
    int seen[MANY], want = 0, dup = 0, deleted_fired = 0, out_of_order = 0;
    struct rec r;

    rec_init(&r, ev);
    memset(&many, 0, sizeof(many));
    memset(seen, 0, sizeof(seen));
    srand(12345);
    for (int i = 0; i < MANY; i++) {
        many.delay[i] = (uint64_t)(rand() % 60);
        many.earliest[i] = ev_now_ms() + many.delay[i];
        id[i] = ev_timer_add(ev, many.delay[i], many_cb, (void *)(intptr_t)i);
        many.latest[i] = ev_now_ms() + many.delay[i];
    }
    for (int i = 0; i < MANY; i += 3)
        ev_timer_del(ev, id[i]);
    for (int i = 0; i < MANY; i++)
        if (i % 3 != 0)
            want++;
    ev_timer_add(ev, 120, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(!r.guard_fired);
    CHECK(many.count == want);
    for (int k = 0; k < many.count && k < MANY; k++) {
        int i = many.order[k];

        if (seen[i]++)
            dup++;
        if (i % 3 == 0)
            deleted_fired++;
        /* A millisecond tick between the test's clock read and ev's must not count. */
        if (k > 0 && many.earliest[many.order[k - 1]] > many.latest[i])
            out_of_order++;
    }
    CHECK(dup == 0);
    CHECK(deleted_fired == 0);
    CHECK(out_of_order == 0);
    ev_free(&ev);
}

/* ---- deferred calls ---- */

struct dstate {
    struct rec *r;
    int         rfd[2];
    int         deferred;
    int         deferred_at_io;     /* io callbacks seen when the deferred call ran */
    int         io_calls;
};

static void
defer_cb(void *arg)
{
    struct dstate *d = arg;

    d->deferred++;
    d->deferred_at_io = d->io_calls;
    rec_add(d->r, 'd');
}

static void
defer_io_cb(int fd, int events, void *arg)
{
    struct dstate *d = arg;
    char c;

    (void)events;
    if (read(fd, &c, 1) != 1)
        return;
    d->io_calls++;
    rec_add(d->r, 'r');
    if (d->io_calls == 1)
        ev_defer(d->r->ev, defer_cb, d);
}

/* test_ev_defer_end_of_turn - a call deferred by the first ready descriptor runs once, after
 * every descriptor ready in that turn was served. */
static void
test_ev_defer_end_of_turn(void)
{
    struct ev *ev = ev_new();
    struct dstate d;
    struct rec r;
    int p1[2], p2[2], p3[2];

    rec_init(&r, ev);
    memset(&d, 0, sizeof(d));
    d.r = &r;
    CHECK(pipe(p1) == 0 && pipe(p2) == 0 && pipe(p3) == 0);
    CHECK(write(p1[1], "x", 1) == 1 && write(p2[1], "x", 1) == 1 && write(p3[1], "x", 1) == 1);
    CHECK(ev_io_set(ev, p1[0], EV_READ, defer_io_cb, &d) == 0);
    CHECK(ev_io_set(ev, p2[0], EV_READ, defer_io_cb, &d) == 0);
    CHECK(ev_io_set(ev, p3[0], EV_READ, defer_io_cb, &d) == 0);
    ev_timer_add(ev, 50, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(d.deferred == 1);
    CHECK(d.deferred_at_io == 3);
    CHECK_STR(r.log, "rrrd.");
    ev_io_del(ev, p1[0]);
    ev_io_del(ev, p2[0]);
    ev_io_del(ev, p3[0]);
    for (int i = 0; i < 2; i++) {
        close(p1[i]);
        close(p2[i]);
        close(p3[i]);
    }
    ev_free(&ev);
}

static void
defer_twice_timer_cb(void *arg)
{
    struct dstate *d = arg;

    rec_add(d->r, 't');
    ev_defer(d->r->ev, defer_cb, d);
    ev_defer(d->r->ev, defer_cb, d);
}

/* test_ev_defer_from_timer - deferred from a timer: runs after it, once per ev_defer call,
 * never again in later turns. */
static void
test_ev_defer_from_timer(void)
{
    struct ev *ev = ev_new();
    struct dstate d;
    struct rec r;

    rec_init(&r, ev);
    memset(&d, 0, sizeof(d));
    d.r = &r;
    ev_timer_add(ev, 5, defer_twice_timer_cb, &d);
    ev_timer_add(ev, 40, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(d.deferred == 2);
    CHECK_STR(r.log, "tdd.");
    ev_free(&ev);
}

/* ---- descriptor watchers ---- */

struct iostate {
    struct rec *r;
    int         calls;
    int         last_fd;
    int         last_events;
    int         other_fd;       /* for callbacks that remove another watcher */
    int         other_closed;
};

static void
io_read_stop_cb(int fd, int events, void *arg)
{
    struct iostate *s = arg;
    char buf[16];

    s->calls++;
    s->last_fd = fd;
    s->last_events = events;
    if (read(fd, buf, sizeof(buf)) > 0)
        rec_add(s->r, 'r');
    ev_stop(s->r->ev);
}

/* test_ev_io_pipe_read - a read watcher on a pipe fires with the fd and EV_READ. */
static void
test_ev_io_pipe_read(void)
{
    struct ev *ev = ev_new();
    struct iostate s;
    struct rec r;
    int p[2];

    rec_init(&r, ev);
    memset(&s, 0, sizeof(s));
    s.r = &r;
    CHECK(pipe(p) == 0);
    CHECK(ev_io_set(ev, p[0], EV_READ, io_read_stop_cb, &s) == 0);
    CHECK(write(p[1], "hello", 5) == 5);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(!r.guard_fired);
    CHECK(s.calls == 1);
    CHECK(s.last_fd == p[0]);
    CHECK((s.last_events & EV_READ) != 0);
    CHECK_STR(r.log, "r");

    /* Nothing written: the watcher stays quiet until data arrives. */
    s.calls = 0;
    ev_timer_add(ev, 30, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(s.calls == 0);
    ev_io_del(ev, p[0]);
    close(p[0]);
    close(p[1]);
    ev_free(&ev);
}

/* test_ev_io_pipe_eof - the read end of a pipe whose writer closed is readable (EOF). */
static void
test_ev_io_pipe_eof(void)
{
    struct ev *ev = ev_new();
    struct iostate s;
    struct rec r;
    int p[2];

    rec_init(&r, ev);
    memset(&s, 0, sizeof(s));
    s.r = &r;
    CHECK(pipe(p) == 0);
    close(p[1]);
    CHECK(ev_io_set(ev, p[0], EV_READ, io_read_stop_cb, &s) == 0);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(!r.guard_fired);
    CHECK(s.calls == 1);
    CHECK((s.last_events & EV_READ) != 0);
    ev_io_del(ev, p[0]);
    close(p[0]);
    ev_free(&ev);
}

/* test_ev_io_write - a write watcher on an empty pipe fires with EV_WRITE. */
static void
test_ev_io_write(void)
{
    struct ev *ev = ev_new();
    struct iostate s;
    struct rec r;
    int p[2];

    rec_init(&r, ev);
    memset(&s, 0, sizeof(s));
    s.r = &r;
    CHECK(pipe(p) == 0);
    CHECK(ev_io_set(ev, p[1], EV_WRITE, io_read_stop_cb, &s) == 0);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(s.calls == 1);
    CHECK(s.last_fd == p[1]);
    CHECK((s.last_events & EV_WRITE) != 0);
    CHECK((s.last_events & EV_READ) == 0);
    ev_io_del(ev, p[1]);
    close(p[0]);
    close(p[1]);
    ev_free(&ev);
}

static void
io_count_cb(int fd, int events, void *arg)
{
    struct iostate *s = arg;
    char buf[16];

    (void)events;
    s->calls++;
    s->last_fd = fd;
    if (read(fd, buf, sizeof(buf)) > 0)
        rec_add(s->r, 'c');
}

static void
io_count2_cb(int fd, int events, void *arg)
{
    struct iostate *s = arg;
    char buf[16];

    (void)events;
    s->calls += 100;
    if (read(fd, buf, sizeof(buf)) > 0)
        rec_add(s->r, '2');
}

/* test_ev_io_set_zero_and_replace - 0 events stops watching; setting again replaces the
 * callback and the mask. */
static void
test_ev_io_set_zero_and_replace(void)
{
    struct ev *ev = ev_new();
    struct iostate s;
    struct rec r;
    int p[2];

    rec_init(&r, ev);
    memset(&s, 0, sizeof(s));
    s.r = &r;
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(ev_io_set(ev, p[0], EV_READ, io_count_cb, &s) == 0);
    CHECK(ev_io_set(ev, p[0], 0, io_count_cb, &s) == 0);
    ev_timer_add(ev, 30, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(s.calls == 0);

    /* Watch again, with another callback: only that one runs. */
    CHECK(ev_io_set(ev, p[0], EV_READ, io_count_cb, &s) == 0);
    CHECK(ev_io_set(ev, p[0], EV_READ, io_count2_cb, &s) == 0);
    ev_timer_add(ev, 30, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(s.calls == 100);
    CHECK_STR(r.log, ".2.");

    /* Replace the mask: a write-only watch on a read end never fires. */
    CHECK(write(p[1], "y", 1) == 1);
    s.calls = 0;
    CHECK(ev_io_set(ev, p[0], EV_WRITE, io_count_cb, &s) == 0);
    ev_timer_add(ev, 30, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(s.calls == 0);
    ev_io_del(ev, p[0]);
    close(p[0]);
    close(p[1]);
    ev_free(&ev);
}

static void
io_del_self_cb(int fd, int events, void *arg)
{
    struct iostate *s = arg;

    (void)events;
    s->calls++;
    ev_io_del(s->r->ev, fd);
    close(fd);
}

/* test_ev_io_del_self - a callback removing (and closing) its own watcher is safe and is not
 * called again. */
static void
test_ev_io_del_self(void)
{
    struct ev *ev = ev_new();
    struct iostate s;
    struct rec r;
    int p[2];

    rec_init(&r, ev);
    memset(&s, 0, sizeof(s));
    s.r = &r;
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], "abc", 3) == 3);       /* stays readable: would fire every turn */
    CHECK(ev_io_set(ev, p[0], EV_READ, io_del_self_cb, &s) == 0);
    ev_timer_add(ev, 40, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(s.calls == 1);
    CHECK_STR(r.log, ".");
    close(p[1]);
    ev_free(&ev);
}

static void
io_del_other_cb(int fd, int events, void *arg)
{
    struct iostate *s = arg;
    char c;

    (void)events;
    s->calls++;
    if (read(fd, &c, 1) != 1)
        s->calls += 1000;
    if (!s->other_closed) {
        int other = fd == s->last_fd ? s->other_fd : s->last_fd;

        ev_io_del(s->r->ev, other);
        close(other);
        s->other_closed = 1;
    }
}

/* test_ev_io_del_other_same_turn - two descriptors ready in one turn: the first callback
 * removes and closes the other, whose callback must then not run. */
static void
test_ev_io_del_other_same_turn(void)
{
    struct ev *ev = ev_new();
    struct iostate s;
    struct rec r;
    int p1[2], p2[2];

    rec_init(&r, ev);
    memset(&s, 0, sizeof(s));
    s.r = &r;
    CHECK(pipe(p1) == 0 && pipe(p2) == 0);
    s.last_fd = p1[0];
    s.other_fd = p2[0];
    CHECK(write(p1[1], "x", 1) == 1 && write(p2[1], "y", 1) == 1);
    CHECK(ev_io_set(ev, p1[0], EV_READ, io_del_other_cb, &s) == 0);
    CHECK(ev_io_set(ev, p2[0], EV_READ, io_del_other_cb, &s) == 0);
    ev_timer_add(ev, 40, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(s.calls == 1);
    /* Whichever survived is still open; the other was closed by the callback. */
    if (fcntl(p1[0], F_GETFD) != -1) {
        ev_io_del(ev, p1[0]);
        close(p1[0]);
    }
    if (fcntl(p2[0], F_GETFD) != -1) {
        ev_io_del(ev, p2[0]);
        close(p2[0]);
    }
    close(p1[1]);
    close(p2[1]);
    ev_free(&ev);
}

/* test_ev_io_many - many pipes at once all get served. */
static void
test_ev_io_many(void)
{
    enum { NP = 200 };
    struct ev *ev = ev_new();
    struct iostate s;
    struct rec r;
    int p[NP][2], opened = 0;

    rec_init(&r, ev);
    memset(&s, 0, sizeof(s));
    s.r = &r;
    for (int i = 0; i < NP; i++) {
        if (pipe(p[i]) != 0)
            break;
        opened++;
        CHECK(write(p[i][1], "z", 1) == 1);
        CHECK(ev_io_set(ev, p[i][0], EV_READ, io_count_cb, &s) == 0);
    }
    CHECK(opened == NP);
    ev_timer_add(ev, 50, stop_cb, &r);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(s.calls == opened);
    for (int i = 0; i < opened; i++) {
        ev_io_del(ev, p[i][0]);
        close(p[i][0]);
        close(p[i][1]);
    }
    ev_free(&ev);
}

/* test_ev_io_set_error - epoll refusing a descriptor (a regular file, a closed fd) is -1,
 * and the loop still works for other descriptors afterwards. */
static void
test_ev_io_set_error(void)
{
    struct ev *ev = ev_new();
    struct iostate s;
    struct rec r;
    char path[] = "/tmp/postern-ev-test-XXXXXX";
    int file = mkstemp(path), p[2];

    rec_init(&r, ev);
    memset(&s, 0, sizeof(s));
    s.r = &r;
    CHECK(file != -1);
    unlink(path);
    CHECK(ev_io_set(ev, file, EV_READ, io_count_cb, &s) == -1);
    close(file);
    CHECK(pipe(p) == 0);
    close(p[1]);
    close(p[0]);
    CHECK(ev_io_set(ev, p[0], EV_READ, io_count_cb, &s) == -1);
    CHECK(ev_io_set(ev, -1, EV_READ, io_count_cb, &s) == -1);

    CHECK(pipe(p) == 0);
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(ev_io_set(ev, p[0], EV_READ, io_read_stop_cb, &s) == 0);
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(!r.guard_fired);
    CHECK(s.calls == 1);
    ev_io_del(ev, p[0]);
    close(p[0]);
    close(p[1]);
    ev_free(&ev);
}

/* test_ev_run_again - ev_run returns 0 after ev_stop and the loop can be run again. */
static void
test_ev_run_again(void)
{
    struct ev *ev = ev_new();
    struct rec r;

    rec_init(&r, ev);
    for (int i = 0; i < 3; i++) {
        ev_timer_add(ev, 1, stop_cb, &r);
        CHECK(run_guarded(ev, &r) == 0);
    }
    CHECK_STR(r.log, "...");
    CHECK(!r.guard_fired);
    ev_free(&ev);
}

/* test_ev_now_ms - the clock is monotonic and in milliseconds. */
static void
test_ev_now_ms(void)
{
    uint64_t a = ev_now_ms(), b;

    usleep(20000);
    b = ev_now_ms();
    CHECK(b >= a + 19);
    CHECK(b < a + 2000);
}

static void
sig_cb(int sig, void *arg)
{
    struct rec *r = arg;

    rec_add(r, sig == SIGUSR1 ? 'u' : '?');
    ev_stop(r->ev);
}

/* test_ev_signal - a routed signal runs its callback on the loop, not asynchronously. */
static void
test_ev_signal(void)
{
    struct ev *ev = ev_new();
    struct rec r;
    sigset_t set;

    rec_init(&r, ev);
    CHECK(ev_signal(ev, SIGUSR1, sig_cb, &r) == 0);
    kill(getpid(), SIGUSR1);
    CHECK(r.n == 0);                /* not run before the loop runs */
    CHECK(run_guarded(ev, &r) == 0);
    CHECK(!r.guard_fired);
    CHECK_STR(r.log, "u");
    ev_free(&ev);
    ev_signal_reset();
    CHECK(sigprocmask(SIG_SETMASK, NULL, &set) == 0);
    CHECK(!sigismember(&set, SIGUSR1));
}

int
main(void)
{
    TEST_RUN(test_ev_timers_order);
    TEST_RUN(test_ev_timer_ids);
    TEST_RUN(test_ev_timer_del);
    TEST_RUN(test_ev_timer_del_in_callback);
    TEST_RUN(test_ev_timer_add_in_callback);
    TEST_RUN(test_ev_timers_many);
    TEST_RUN(test_ev_defer_end_of_turn);
    TEST_RUN(test_ev_defer_from_timer);
    TEST_RUN(test_ev_io_pipe_read);
    TEST_RUN(test_ev_io_pipe_eof);
    TEST_RUN(test_ev_io_write);
    TEST_RUN(test_ev_io_set_zero_and_replace);
    TEST_RUN(test_ev_io_del_self);
    TEST_RUN(test_ev_io_del_other_same_turn);
    TEST_RUN(test_ev_io_many);
    TEST_RUN(test_ev_io_set_error);
    TEST_RUN(test_ev_run_again);
    TEST_RUN(test_ev_now_ms);
    TEST_RUN(test_ev_signal);
    TEST_END();
}
