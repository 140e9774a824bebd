/* smtpd_pwcheck - password hash checks on worker threads, answered on the event loop.
 *
 * A yescrypt check costs tens of milliseconds of CPU; run on the loop it would stall every
 * other session of the process. smtpd_pwcheck_submit() copies the password and the hash
 * into a job on a FIFO queue; a small fixed set of threads takes jobs, runs pwhash_check(),
 * wipes both copies and hands the result back through an eventfd that the loop watches, so
 * the callback always runs on the loop's thread. A job can be cancelled at any time (its
 * session went away): its callback is then never called, and a job already running is
 * finished and dropped. The workers touch nothing but their job: no maps, no logging, no
 * session. Out of memory and a thread that cannot be created are fatal (start-up). */
#ifndef POSTERN_SMTPD_PWCHECK_H
#define POSTERN_SMTPD_PWCHECK_H

#include <stddef.h>

#include "ev.h"

#define SMTPD_PWCHECK_THREADS    2      /* workers per smtpd process */
#define SMTPD_PWCHECK_QUEUE_MAX  512    /* jobs waiting for a worker before we refuse more */

struct smtpd_pwcheck;
struct smtpd_pwcheck_job;

/* Called on the loop thread with ok = 1 (the password matches) or 0; the job is freed
 * after the call returns, so the caller must forget its handle. */
typedef void (*smtpd_pwcheck_cb)(int ok, void *arg);

/* smtpd_pwcheck_new - start nthreads workers (all signals blocked in them, so signalfd
 * keeps receiving) and watch their eventfd on ev. Never returns NULL. */
struct smtpd_pwcheck *smtpd_pwcheck_new(struct ev *, int nthreads);
/* smtpd_pwcheck_free - stop and join the workers (a running check finishes first), drop
 * every job without calling back, wipe what they held; sets *pp = NULL. */
void smtpd_pwcheck_free(struct smtpd_pwcheck **pp);

/* smtpd_pwcheck_submit - queue a check of password against hash (both copied; the caller
 * wipes its own). NULL when SMTPD_PWCHECK_QUEUE_MAX jobs already wait: try again later. */
struct smtpd_pwcheck_job *smtpd_pwcheck_submit(struct smtpd_pwcheck *, const char *password,
                                               const char *hash, smtpd_pwcheck_cb cb,
                                               void *arg);
/* smtpd_pwcheck_cancel - the callback of *jp will not be called; sets *jp = NULL. A NULL
 * *jp is a no-op. Loop thread only, and only before the callback ran. */
void smtpd_pwcheck_cancel(struct smtpd_pwcheck *, struct smtpd_pwcheck_job **jp);

/* smtpd_pwcheck_waiting - jobs queued or running whose callback is still to come (a
 * cancelled job no longer counts, even while a worker finishes it). */
size_t smtpd_pwcheck_waiting(struct smtpd_pwcheck *);

#endif
