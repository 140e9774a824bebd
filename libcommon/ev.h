/* ev - the event loop: epoll for descriptors, a timer heap, deferred calls.
 *
 * One loop per process. Callbacks run on the loop's thread; a callback may add or remove any
 * watcher, including its own. Deferred calls (ev_defer) run once at the end of the current
 * turn, after every ready descriptor was served: qmgr uses this to group-commit everything
 * that arrived in one turn. Used by master, smtpd, qmgr, local and libtls. */
#ifndef POSTERN_EV_H
#define POSTERN_EV_H

#include <stdint.h>

#define EV_READ   0x1
#define EV_WRITE  0x2

struct ev;
typedef void (*ev_io_cb)(int fd, int events, void *arg);
typedef void (*ev_timer_cb)(void *arg);
typedef void (*ev_defer_cb)(void *arg);

struct ev  *ev_new(void);
void        ev_free(struct ev **);
/* ev_io_set - watch fd for events (EV_READ|EV_WRITE); 0 events = stop watching; adding an
 * fd again replaces its callback and mask. Returns -1 on epoll error (logged). */
int         ev_io_set(struct ev *, int fd, int events, ev_io_cb cb, void *arg);
void        ev_io_del(struct ev *, int fd);          /* call before close(fd) */
/* ev_timer_add - call cb once after ms milliseconds; returns an id > 0 for ev_timer_del. */
uint64_t    ev_timer_add(struct ev *, uint64_t ms, ev_timer_cb cb, void *arg);
void        ev_timer_del(struct ev *, uint64_t id);  /* id 0 or a fired timer: no-op */
void        ev_defer(struct ev *, ev_defer_cb cb, void *arg);  /* once, end of this turn */
int         ev_run(struct ev *);                     /* until ev_stop(); -1 on epoll error */
void        ev_stop(struct ev *);
uint64_t    ev_now_ms(void);                         /* monotonic clock, milliseconds */
/* ev_signal - deliver signal sig through the loop (signalfd); cb runs on the loop. */
int         ev_signal(struct ev *, int sig, void (*cb)(int sig, void *arg), void *arg);
/* ev_signal_reset - unblock every signal; call in a child after fork() and before exec(),
 * since ev_signal() blocks the signals it routes and the mask survives exec(). */
void        ev_signal_reset(void);

#endif
