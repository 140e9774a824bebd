/* qmgr_tab - a string-keyed hash table for qmgr's in-memory indexes.
 *
 * Separate chaining with FNV-1a, power-of-two bucket counts, doubling when the table holds
 * more entries than buckets. See qmgr_tab.h for the key ownership rule. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "qmgr_tab.h"

struct qmgr_tab_ent {
    const char          *key;
    void                *val;
    uint32_t             hash;
    struct qmgr_tab_ent *next;
};

struct qmgr_tab {
    struct qmgr_tab_ent **b;
    size_t                nb;       /* power of two */
    size_t                n;
};

/* qmgr_tab_hash - FNV-1a over the key. */
static uint32_t
qmgr_tab_hash(const char *key)
{
    uint32_t h = 2166136261u;

    for (; *key; key++)
        h = (h ^ (uint8_t)*key) * 16777619u;
    return h;
}

/* qmgr_tab_new - an empty table. */
struct qmgr_tab *
qmgr_tab_new(void)
{
    struct qmgr_tab *t = xcalloc(1, sizeof(*t));

    t->nb = 64;
    t->b = xcalloc(t->nb, sizeof(*t->b));
    return t;
}

/* qmgr_tab_free - free the table and its entries (not the values). */
void
qmgr_tab_free(struct qmgr_tab **tp)
{
    struct qmgr_tab *t = *tp;
    size_t           i;

    if (t == NULL)
        return;
    for (i = 0; i < t->nb; i++) {
        while (t->b[i] != NULL) {
            struct qmgr_tab_ent *e = t->b[i];

            t->b[i] = e->next;
            free(e);
        }
    }
    free(t->b);
    free(t);
    *tp = NULL;
}

/* qmgr_tab_grow - double the bucket array and rehash. */
static void
qmgr_tab_grow(struct qmgr_tab *t)
{
    size_t                nb = t->nb * 2, i;
    struct qmgr_tab_ent **b = xcalloc(nb, sizeof(*b));

    for (i = 0; i < t->nb; i++) {
        while (t->b[i] != NULL) {
            struct qmgr_tab_ent *e = t->b[i];

            t->b[i] = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

/* qmgr_tab_find - the link that points at key's entry (or at the NULL ending its chain). */
static struct qmgr_tab_ent **
qmgr_tab_find(const struct qmgr_tab *t, const char *key, uint32_t h)
{
    struct qmgr_tab_ent **ep = &t->b[h & (t->nb - 1)];

    while (*ep != NULL && ((*ep)->hash != h || strcmp((*ep)->key, key) != 0))
        ep = &(*ep)->next;
    return ep;
}

/* qmgr_tab_put - add or replace. */
void
qmgr_tab_put(struct qmgr_tab *t, const char *key, void *val)
{
    uint32_t              h = qmgr_tab_hash(key);
    struct qmgr_tab_ent **ep = qmgr_tab_find(t, key, h), *e;

    if (*ep != NULL) {
        (*ep)->key = key;
        (*ep)->val = val;
        return;
    }
    e = xmalloc(sizeof(*e));
    e->key = key;
    e->val = val;
    e->hash = h;
    e->next = NULL;
    *ep = e;
    if (++t->n > t->nb)
        qmgr_tab_grow(t);
}

/* qmgr_tab_get - look up. */
void *
qmgr_tab_get(const struct qmgr_tab *t, const char *key)
{
    struct qmgr_tab_ent **ep = qmgr_tab_find(t, key, qmgr_tab_hash(key));

    return *ep ? (*ep)->val : NULL;
}

/* qmgr_tab_del - remove and return the value (NULL if absent). */
void *
qmgr_tab_del(struct qmgr_tab *t, const char *key)
{
    struct qmgr_tab_ent **ep = qmgr_tab_find(t, key, qmgr_tab_hash(key)), *e = *ep;
    void                 *val;

    if (e == NULL)
        return NULL;
    val = e->val;
    *ep = e->next;
    free(e);
    t->n--;
    return val;
}

/* qmgr_tab_count - entries in the table. */
size_t
qmgr_tab_count(const struct qmgr_tab *t)
{
    return t->n;
}
