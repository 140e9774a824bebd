/* ev - the event loop: epoll for descriptors, a timer heap, deferred calls, signalfd.
 *
 * See ev.h. Watchers live in a table indexed by fd; each carries a generation number that
 * is also stored in the epoll event, so an event for an fd closed and reused within one turn
 * is dropped instead of reaching the new owner. Timers are nodes in a slab addressed by their
 * id (slot | generation << 32) and ordered in a binary heap, so adding, deleting and firing
 * are O(log n) with thousands of session timers. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ev.h"
#include "log.h"

#define EV_MAX_EVENTS  256
#define EV_MAX_SIGNAL  65

struct ev_io {
    ev_io_cb  cb;
    void     *arg;
    int       events;
    uint32_t  gen;
};

struct ev_tnode {
    uint64_t    when;
    ev_timer_cb cb;
    void       *arg;
    uint32_t    gen;
    int32_t     heap_pos;      /* -1: free */
    uint32_t    next_free;
};

struct ev_deferred {
    ev_defer_cb cb;
    void       *arg;
};

struct ev {
    int                 epfd;
    int                 stop;
    struct ev_io       *io;
    size_t              nio;
    uint32_t            io_gen;
    struct ev_tnode    *tn;
    size_t              ntn;
    uint32_t            free_head;     /* slot + 1; 0 = none */
    uint32_t           *heap;          /* slots */
    size_t              heap_len;
    struct ev_deferred *defer;
    size_t              ndefer, defer_cap;
    int                 sigfd;
    sigset_t            sigmask;
    void              (*sig_cb[EV_MAX_SIGNAL])(int, void *);
    void               *sig_arg[EV_MAX_SIGNAL];
};

uint64_t
ev_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct ev *
ev_new(void)
{
    struct ev *ev = xcalloc(1, sizeof(*ev));

    ev->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ev->epfd == -1)
        fatal("epoll_create1");
    ev->sigfd = -1;
    sigemptyset(&ev->sigmask);
    return ev;
}

void
ev_free(struct ev **evp)
{
    struct ev *ev = *evp;

    if (ev == NULL)
        return;
    close(ev->epfd);
    if (ev->sigfd != -1)
        close(ev->sigfd);
    free(ev->io);
    free(ev->tn);
    free(ev->heap);
    free(ev->defer);
    free(ev);
    *evp = NULL;
}

int
ev_io_set(struct ev *ev, int fd, int events, ev_io_cb cb, void *arg)
{
    struct epoll_event ee;
    int                op;

    if (fd < 0)
        return -1;
    if (events == 0) {
        ev_io_del(ev, fd);
        return 0;
    }
    if ((size_t)fd >= ev->nio) {
        size_t n = ev->nio ? ev->nio : 64;

        while (n <= (size_t)fd)
            n *= 2;
        ev->io = xrealloc(ev->io, n * sizeof(*ev->io));
        memset(ev->io + ev->nio, 0, (n - ev->nio) * sizeof(*ev->io));
        ev->nio = n;
    }
    op = ev->io[fd].events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (op == EPOLL_CTL_ADD)
        ev->io[fd].gen = ++ev->io_gen;
    memset(&ee, 0, sizeof(ee));
    ee.events = ((events & EV_READ) ? EPOLLIN : 0) | ((events & EV_WRITE) ? EPOLLOUT : 0);
    ee.data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)ev->io[fd].gen << 32);
    if (epoll_ctl(ev->epfd, op, fd, &ee) == -1) {
        log_warn("epoll_ctl fd=%d", fd);
        return -1;
    }
    ev->io[fd].cb = cb;
    ev->io[fd].arg = arg;
    ev->io[fd].events = events;
    return 0;
}

void
ev_io_del(struct ev *ev, int fd)
{
    if (fd < 0 || (size_t)fd >= ev->nio || ev->io[fd].events == 0)
        return;
    if (epoll_ctl(ev->epfd, EPOLL_CTL_DEL, fd, NULL) == -1 && errno != EBADF)
        log_warn("epoll_ctl del fd=%d", fd);
    ev->io[fd].events = 0;
    ev->io[fd].cb = NULL;
    ev->io[fd].gen = ++ev->io_gen;
}

/* Timer heap helpers: the heap holds slots ordered by their node's `when`. */
static int
ev_heap_less(struct ev *ev, size_t a, size_t b)
{
    return ev->tn[ev->heap[a]].when < ev->tn[ev->heap[b]].when;
}

static void
ev_heap_swap(struct ev *ev, size_t a, size_t b)
{
    uint32_t t = ev->heap[a];

    ev->heap[a] = ev->heap[b];
    ev->heap[b] = t;
    ev->tn[ev->heap[a]].heap_pos = (int32_t)a;
    ev->tn[ev->heap[b]].heap_pos = (int32_t)b;
}

static void
ev_heap_up(struct ev *ev, size_t i)
{
    while (i > 0 && ev_heap_less(ev, i, (i - 1) / 2)) {
        ev_heap_swap(ev, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
ev_heap_down(struct ev *ev, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < ev->heap_len && ev_heap_less(ev, l, m))
            m = l;
        if (r < ev->heap_len && ev_heap_less(ev, r, m))
            m = r;
        if (m == i)
            return;
        ev_heap_swap(ev, i, m);
        i = m;
    }
}

/* ev_heap_remove - take slot out of the heap and put it on the free list. */
static void
ev_heap_remove(struct ev *ev, uint32_t slot)
{
    size_t i = (size_t)ev->tn[slot].heap_pos;

    ev->heap_len--;
    if (i != ev->heap_len) {
        ev_heap_swap(ev, i, ev->heap_len);
        ev_heap_down(ev, i);
        ev_heap_up(ev, i);
    }
    ev->tn[slot].heap_pos = -1;
    ev->tn[slot].gen++;
    ev->tn[slot].next_free = ev->free_head;
    ev->free_head = slot + 1;
}

uint64_t
ev_timer_add(struct ev *ev, uint64_t ms, ev_timer_cb cb, void *arg)
{
    uint32_t slot;

    if (ev->free_head == 0) {
        size_t n = ev->ntn ? ev->ntn * 2 : 64;

        ev->tn = xrealloc(ev->tn, n * sizeof(*ev->tn));
        ev->heap = xrealloc(ev->heap, n * sizeof(*ev->heap));
        for (size_t i = ev->ntn; i < n; i++) {
            ev->tn[i].heap_pos = -1;
            ev->tn[i].gen = 1;
            ev->tn[i].next_free = (i + 1 < n) ? (uint32_t)(i + 2) : 0;
        }
        ev->free_head = (uint32_t)ev->ntn + 1;
        ev->ntn = n;
    }
    slot = ev->free_head - 1;
    ev->free_head = ev->tn[slot].next_free;
    ev->tn[slot].when = ev_now_ms() + ms;
    ev->tn[slot].cb = cb;
    ev->tn[slot].arg = arg;
    ev->tn[slot].heap_pos = (int32_t)ev->heap_len;
    ev->heap[ev->heap_len++] = slot;
    ev_heap_up(ev, ev->heap_len - 1);
    return ((uint64_t)ev->tn[slot].gen << 32) | slot;
}

void
ev_timer_del(struct ev *ev, uint64_t id)
{
    uint32_t slot = (uint32_t)(id & 0xffffffffu);

    if (id == 0 || slot >= ev->ntn)
        return;
    if (ev->tn[slot].gen != (uint32_t)(id >> 32) || ev->tn[slot].heap_pos < 0)
        return;
    ev_heap_remove(ev, slot);
}

void
ev_defer(struct ev *ev, ev_defer_cb cb, void *arg)
{
    if (ev->ndefer == ev->defer_cap) {
        ev->defer_cap = ev->defer_cap ? ev->defer_cap * 2 : 16;
        ev->defer = xrealloc(ev->defer, ev->defer_cap * sizeof(*ev->defer));
    }
    ev->defer[ev->ndefer].cb = cb;
    ev->defer[ev->ndefer].arg = arg;
    ev->ndefer++;
}

/* ev_run_timers - fire every timer that is due; a callback may add or delete timers. */
static void
ev_run_timers(struct ev *ev)
{
    uint64_t now = ev_now_ms();

    while (ev->heap_len > 0) {
        uint32_t    slot = ev->heap[0];
        ev_timer_cb cb;
        void       *arg;

        if (ev->tn[slot].when > now)
            break;
        cb = ev->tn[slot].cb;
        arg = ev->tn[slot].arg;
        ev_heap_remove(ev, slot);
        cb(arg);
    }
}

/* ev_run_deferred - run the calls deferred in this turn, and those they defer in turn. */
static void
ev_run_deferred(struct ev *ev)
{
    for (int round = 0; round < 16 && ev->ndefer > 0; round++) {
        size_t              n = ev->ndefer;
        struct ev_deferred *list = xmalloc(n * sizeof(*list));

        memcpy(list, ev->defer, n * sizeof(*list));
        ev->ndefer = 0;
        for (size_t i = 0; i < n; i++)
            list[i].cb(list[i].arg);
        free(list);
    }
}

static int
ev_next_timeout(struct ev *ev)
{
    uint64_t now, when;

    if (ev->ndefer > 0)
        return 0;
    if (ev->heap_len == 0)
        return -1;
    now = ev_now_ms();
    when = ev->tn[ev->heap[0]].when;
    if (when <= now)
        return 0;
    return (when - now > 60000) ? 60000 : (int)(when - now);
}

int
ev_run(struct ev *ev)
{
    struct epoll_event events[EV_MAX_EVENTS];

    ev->stop = 0;
    while (!ev->stop) {
        int n = epoll_wait(ev->epfd, events, EV_MAX_EVENTS, ev_next_timeout(ev));

        if (n == -1) {
            if (errno == EINTR)
                continue;
            log_warn("epoll_wait");
            return -1;
        }
        for (int i = 0; i < n && !ev->stop; i++) {
            int          fd = (int)(uint32_t)(events[i].data.u64 & 0xffffffffu);
            uint32_t     gen = (uint32_t)(events[i].data.u64 >> 32);
            struct ev_io *w;
            int          got = 0;

            if ((size_t)fd >= ev->nio)
                continue;
            w = &ev->io[fd];
            if (w->events == 0 || w->gen != gen || w->cb == NULL)
                continue;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                got |= EV_READ;
            if (events[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                got |= EV_WRITE;
            got &= w->events;
            if (got)
                w->cb(fd, got, w->arg);
        }
        ev_run_timers(ev);
        ev_run_deferred(ev);
    }
    return 0;
}

void
ev_stop(struct ev *ev)
{
    ev->stop = 1;
}

/* ev_signal_read - drain the signalfd and call each signal's callback. */
static void
ev_signal_read(int fd, int events, void *arg)
{
    struct ev              *ev = arg;
    struct signalfd_siginfo si;

    (void)events;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        int sig = (int)si.ssi_signo;

        if (sig > 0 && sig < EV_MAX_SIGNAL && ev->sig_cb[sig])
            ev->sig_cb[sig](sig, ev->sig_arg[sig]);
    }
}

int
ev_signal(struct ev *ev, int sig, void (*cb)(int sig, void *arg), void *arg)
{
    if (sig <= 0 || sig >= EV_MAX_SIGNAL)
        return -1;
    sigaddset(&ev->sigmask, sig);
    if (sigprocmask(SIG_BLOCK, &ev->sigmask, NULL) == -1) {
        log_warn("sigprocmask");
        return -1;
    }
    ev->sigfd = signalfd(ev->sigfd, &ev->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (ev->sigfd == -1) {
        log_warn("signalfd");
        return -1;
    }
    ev->sig_cb[sig] = cb;
    ev->sig_arg[sig] = arg;
    return ev_io_set(ev, ev->sigfd, EV_READ, ev_signal_read, ev);
}

void
ev_signal_reset(void)
{
    sigset_t none;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}
