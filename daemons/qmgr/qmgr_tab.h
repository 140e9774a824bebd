/* qmgr_tab - a string-keyed hash table for qmgr's in-memory indexes.
 *
 * Keys are not copied: each entry points at a key that lives inside the value (a queue ID or
 * a job key), so the caller must delete an entry before freeing its value. The table grows
 * to keep chains short. Out of memory is fatal. Used by qmgr_smtpd (open bodies by queue
 * ID) and qmgr_sched (jobs by queue ID + recipient index). */
#ifndef POSTERN_QMGR_TAB_H
#define POSTERN_QMGR_TAB_H

#include <stddef.h>

struct qmgr_tab;

struct qmgr_tab *qmgr_tab_new(void);
void             qmgr_tab_free(struct qmgr_tab **);     /* entries only, not the values */
/* qmgr_tab_put - add or replace key -> val; key must stay valid while it is in the table. */
void             qmgr_tab_put(struct qmgr_tab *, const char *key, void *val);
void            *qmgr_tab_get(const struct qmgr_tab *, const char *key);   /* NULL: absent */
void            *qmgr_tab_del(struct qmgr_tab *, const char *key);         /* the old value */
size_t           qmgr_tab_count(const struct qmgr_tab *);

#endif
