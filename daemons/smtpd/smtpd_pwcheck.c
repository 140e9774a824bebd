/* smtpd_pwcheck - password hash checks on worker threads, answered on the event loop.
 *
 * See smtpd_pwcheck.h for the contract. One mutex guards the queue, the done list and every
 * job's state and cancelled flag. A job moves QUEUED -> RUNNING (a worker owns its password
 * and hash copies from here on, checks, wipes and frees them) -> DONE (on the done list,
 * eventfd bumped) -> called back and freed by the loop. Cancelling a QUEUED job frees it at
 * once; a RUNNING or DONE one is only marked, and the loop frees it unannounced. So the
 * loop never waits for a worker except in smtpd_pwcheck_free(), and a worker never touches
 * a job after putting it on the done list. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "pwhash.h"
#include "smtpd_pwcheck.h"

enum smtpd_pwcheck_state {
    SMTPD_PWCHECK_QUEUED = 1,
    SMTPD_PWCHECK_RUNNING,
    SMTPD_PWCHECK_DONE,
};

struct smtpd_pwcheck_job {
    struct smtpd_pwcheck_job *next;     /* queue or done list */
    char                     *password;
    char                     *hash;
    smtpd_pwcheck_cb          cb;
    void                     *arg;
    enum smtpd_pwcheck_state  state;
    int                       cancelled;
    int                       ok;
};

struct smtpd_pwcheck {
    struct ev                *ev;
    int                       efd;      /* workers -> loop: "done list not empty" */
    pthread_mutex_t           lock;
    pthread_cond_t            cond;     /* a job was queued, or stop */
    struct smtpd_pwcheck_job *qhead, **qtail;
    struct smtpd_pwcheck_job *dhead, **dtail;
    size_t                    queued;   /* on the queue */
    size_t                    waiting;  /* jobs whose callback is still to come */
    int                       stop;
    pthread_t                *threads;
    int                       nthreads;
};

/* smtpd_pwcheck_job_free - a job and whatever secrets it still holds. */
static void
smtpd_pwcheck_job_free(struct smtpd_pwcheck_job *j)
{
    xfree_secret(&j->password);
    xfree_secret(&j->hash);
    free(j);
}

/* smtpd_pwcheck_worker - take jobs until told to stop. */
static void *
smtpd_pwcheck_worker(void *arg)
{
    struct smtpd_pwcheck     *p = arg;
    struct smtpd_pwcheck_job *j;
    uint64_t                  one = 1;
    int                       ok;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->qhead == NULL)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->stop) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        j = p->qhead;
        p->qhead = j->next;
        if (p->qhead == NULL)
            p->qtail = &p->qhead;
        p->queued--;
        j->next = NULL;
        j->state = SMTPD_PWCHECK_RUNNING;
        pthread_mutex_unlock(&p->lock);

        ok = pwhash_check(j->password, j->hash);
        xfree_secret(&j->password);
        xfree_secret(&j->hash);

        pthread_mutex_lock(&p->lock);
        j->ok = ok;
        j->state = SMTPD_PWCHECK_DONE;
        *p->dtail = j;
        p->dtail = &j->next;
        pthread_mutex_unlock(&p->lock);
        /* the counter cannot overflow (one per job); EAGAIN would mean it is already set */
        while (write(p->efd, &one, sizeof(one)) == -1 && errno == EINTR)
            ;
    }
}

/* smtpd_pwcheck_done - the eventfd fired: call back every finished job, in order. */
static void
smtpd_pwcheck_done(int fd, int events, void *arg)
{
    struct smtpd_pwcheck     *p = arg;
    struct smtpd_pwcheck_job *list, *j;
    uint64_t                  n;

    (void)events;
    if (read(fd, &n, sizeof(n)) == -1 && errno != EAGAIN && errno != EINTR)
        log_warn("password check eventfd: read");
    pthread_mutex_lock(&p->lock);
    list = p->dhead;
    p->dhead = NULL;
    p->dtail = &p->dhead;
    pthread_mutex_unlock(&p->lock);
    while ((j = list) != NULL) {
        list = j->next;
        /* a callback may cancel a job further down this list: only the flag changes */
        if (!j->cancelled) {
            p->waiting--;
            j->cb(j->ok, j->arg);
        }
        smtpd_pwcheck_job_free(j);
    }
}

/* smtpd_pwcheck_new - see smtpd_pwcheck.h. */
struct smtpd_pwcheck *
smtpd_pwcheck_new(struct ev *ev, int nthreads)
{
    struct smtpd_pwcheck *p = xcalloc(1, sizeof(*p));
    sigset_t              all, old;
    int                   i, rc;

    if (nthreads < 1)
        nthreads = 1;
    p->ev = ev;
    p->qtail = &p->qhead;
    p->dtail = &p->dhead;
    if (pthread_mutex_init(&p->lock, NULL) != 0 || pthread_cond_init(&p->cond, NULL) != 0)
        fatalx("password check: cannot initialise the lock");
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd == -1)
        fatal("password check: eventfd");
    if (ev_io_set(ev, p->efd, EV_READ, smtpd_pwcheck_done, p) == -1)
        fatalx("password check: cannot watch the eventfd");
    p->threads = xcalloc((size_t)nthreads, sizeof(*p->threads));
    /* signals are delivered through signalfd on the loop: no worker may take one */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (i = 0; i < nthreads; i++) {
        if ((rc = pthread_create(&p->threads[i], NULL, smtpd_pwcheck_worker, p)) != 0) {
            errno = rc;
            fatal("password check: pthread_create");
        }
        p->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return p;
}

/* smtpd_pwcheck_free - see smtpd_pwcheck.h. */
void
smtpd_pwcheck_free(struct smtpd_pwcheck **pp)
{
    struct smtpd_pwcheck     *p = *pp;
    struct smtpd_pwcheck_job *j;
    int                       i;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    while ((j = p->qhead) != NULL) {
        p->qhead = j->next;
        smtpd_pwcheck_job_free(j);
    }
    while ((j = p->dhead) != NULL) {
        p->dhead = j->next;
        smtpd_pwcheck_job_free(j);
    }
    ev_io_del(p->ev, p->efd);
    close(p->efd);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
    *pp = NULL;
}

/* smtpd_pwcheck_submit - see smtpd_pwcheck.h. */
struct smtpd_pwcheck_job *
smtpd_pwcheck_submit(struct smtpd_pwcheck *p, const char *password, const char *hash,
                     smtpd_pwcheck_cb cb, void *arg)
{
    struct smtpd_pwcheck_job *j;

    pthread_mutex_lock(&p->lock);
    if (p->queued >= SMTPD_PWCHECK_QUEUE_MAX) {
        pthread_mutex_unlock(&p->lock);
        return NULL;
    }
    pthread_mutex_unlock(&p->lock);
    j = xcalloc(1, sizeof(*j));
    j->password = xstrdup(password);
    j->hash = xstrdup(hash);
    j->cb = cb;
    j->arg = arg;
    j->state = SMTPD_PWCHECK_QUEUED;
    pthread_mutex_lock(&p->lock);
    *p->qtail = j;
    p->qtail = &j->next;
    p->queued++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    p->waiting++;
    return j;
}

/* smtpd_pwcheck_cancel - see smtpd_pwcheck.h. */
void
smtpd_pwcheck_cancel(struct smtpd_pwcheck *p, struct smtpd_pwcheck_job **jp)
{
    struct smtpd_pwcheck_job *j = *jp, **pp;

    if (j == NULL)
        return;
    *jp = NULL;
    p->waiting--;
    pthread_mutex_lock(&p->lock);
    if (j->state != SMTPD_PWCHECK_QUEUED) {
        j->cancelled = 1;             /* the worker finishes it, smtpd_pwcheck_done drops it */
        pthread_mutex_unlock(&p->lock);
        return;
    }
    for (pp = &p->qhead; *pp != NULL && *pp != j; pp = &(*pp)->next)
        ;
    if (*pp == j) {
        *pp = j->next;
        if (p->qtail == &j->next)
            p->qtail = pp;
        p->queued--;
    }
    pthread_mutex_unlock(&p->lock);
    smtpd_pwcheck_job_free(j);
}

/* smtpd_pwcheck_waiting - see smtpd_pwcheck.h. */
size_t
smtpd_pwcheck_waiting(struct smtpd_pwcheck *p)
{
    return p->waiting;
}
