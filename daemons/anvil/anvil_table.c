/* anvil_table - anvil's per-client counters, with no I/O inside.
 *
 * See anvil_table.h. Entries live in a hash table (chained, a power-of-two number of
 * buckets fixed at creation, at least the cap, so chains stay short) and on one of two
 * lists: busy (open sessions) or idle (none, least recently used first). The idle list is
 * where eviction and the sweep look; the busy list is what a lost peer is taken off. */
#include <stdlib.h>
#include <string.h>

#include "anvil_table.h"
#include "buf.h"

/* The rates a client has, one per counted event kind. */
enum anvil_rate {
    ANVIL_RATE_CONN = 0,
    ANVIL_RATE_MAIL,
    ANVIL_RATE_RCPT,
    ANVIL_RATE_AUTH,
    ANVIL_RATES
};

/* One peer's share of a client's open sessions. */
struct anvil_peer_count {
    uint32_t peer;
    uint32_t n;
};

struct anvil_entry {
    struct anvil_entry      *hnext;     /* bucket chain */
    struct anvil_entry      *prev;      /* on the busy or the idle list */
    struct anvil_entry      *next;
    uint64_t                 window_start;
    uint32_t                 rate[ANVIL_RATES];
    uint32_t                 concurrent;    /* sum of peers[].n */
    uint32_t                 npeers;
    struct anvil_peer_count *peers;         /* NULL while idle */
    char                     client[ANVIL_TABLE_CLIENT_MAX + 1];
};

struct anvil_list {
    struct anvil_entry *head;
    struct anvil_entry *tail;
};

struct anvil_table {
    uint64_t                 unit_ms;
    size_t                   max;
    size_t                   n;
    size_t                   mask;          /* buckets - 1 */
    struct anvil_entry     **buckets;
    uint8_t                  key[ANVIL_TABLE_KEY_LEN];
    struct anvil_list        busy;
    struct anvil_list        idle;
    struct anvil_table_stats stats;
};

#define ANVIL_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define ANVIL_SIPROUND                                                                    \
    do {                                                                                  \
        v0 += v1; v1 = ANVIL_ROTL(v1, 13); v1 ^= v0; v0 = ANVIL_ROTL(v0, 32);             \
        v2 += v3; v3 = ANVIL_ROTL(v3, 16); v3 ^= v2;                                      \
        v0 += v3; v3 = ANVIL_ROTL(v3, 21); v3 ^= v0;                                      \
        v2 += v1; v1 = ANVIL_ROTL(v1, 17); v1 ^= v2; v2 = ANVIL_ROTL(v2, 32);             \
    } while (0)

/* anvil_le64 - 8 bytes, little-endian. */
static uint64_t
anvil_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* anvil_siphash - SipHash-2-4 of in under a 16-byte key: the bucket of an address must
 * not be predictable by whoever chooses the addresses (IPv6 clients choose freely). */
static uint64_t
anvil_siphash(const uint8_t *key, const uint8_t *in, size_t len)
{
    uint64_t k0 = anvil_le64(key), k1 = anvil_le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)len << 56, m;
    size_t   i;

    for (i = 0; i + 8 <= len; i += 8) {
        m = anvil_le64(in + i);
        v3 ^= m;
        ANVIL_SIPROUND;
        ANVIL_SIPROUND;
        v0 ^= m;
    }
    for (size_t j = 0; i + j < len; j++)
        b |= (uint64_t)in[i + j] << (8 * j);
    v3 ^= b;
    ANVIL_SIPROUND;
    ANVIL_SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    ANVIL_SIPROUND;
    ANVIL_SIPROUND;
    ANVIL_SIPROUND;
    ANVIL_SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* anvil_list_del - take e off list l. */
static void
anvil_list_del(struct anvil_list *l, struct anvil_entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
}

/* anvil_list_append - put e at the tail of l (the most recent end). */
static void
anvil_list_append(struct anvil_list *l, struct anvil_entry *e)
{
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
}

/* anvil_bucket - the chain head for client. */
static struct anvil_entry **
anvil_bucket(struct anvil_table *t, const char *client, size_t len)
{
    return &t->buckets[anvil_siphash(t->key, (const uint8_t *)client, len) & t->mask];
}

/* anvil_find - the entry of client, or NULL. */
static struct anvil_entry *
anvil_find(struct anvil_table *t, const char *client, size_t len)
{
    struct anvil_entry *e;

    for (e = *anvil_bucket(t, client, len); e != NULL; e = e->hnext) {
        if (strcmp(e->client, client) == 0)
            return e;
    }
    return NULL;
}

/* anvil_drop - remove an idle entry from the table and free it. */
static void
anvil_drop(struct anvil_table *t, struct anvil_entry *e)
{
    struct anvil_entry **pp = anvil_bucket(t, e->client, strlen(e->client));

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    anvil_list_del(&t->idle, e);
    free(e->peers);
    free(e);
    t->n--;
}

/* anvil_add - a new idle entry for client; when the table is full it replaces the least
 * recently used idle entry, and when there is none NULL (the caller fails open). */
static struct anvil_entry *
anvil_add(struct anvil_table *t, const char *client, size_t len, uint64_t now_ms)
{
    struct anvil_entry **head, *e;

    if (t->n >= t->max) {
        if (t->idle.head == NULL)
            return NULL;
        anvil_drop(t, t->idle.head);
        t->stats.evictions++;
    }
    e = xcalloc(1, sizeof(*e));
    memcpy(e->client, client, len + 1);
    e->window_start = now_ms;
    head = anvil_bucket(t, client, len);
    e->hnext = *head;
    *head = e;
    anvil_list_append(&t->idle, e);
    t->n++;
    return e;
}

/* anvil_window - restart the client's time unit if it is over. */
static void
anvil_window(const struct anvil_table *t, struct anvil_entry *e, uint64_t now_ms)
{
    if (now_ms - e->window_start < t->unit_ms)
        return;
    memset(e->rate, 0, sizeof(e->rate));
    e->window_start = now_ms;
}

/* anvil_peer_find - the index of peer's share in e, or -1. */
static int
anvil_peer_find(const struct anvil_entry *e, uint32_t peer)
{
    for (uint32_t i = 0; i < e->npeers; i++) {
        if (e->peers[i].peer == peer)
            return (int)i;
    }
    return -1;
}

/* anvil_session_add - one more open session of e, counted for peer. */
static void
anvil_session_add(struct anvil_table *t, struct anvil_entry *e, uint32_t peer)
{
    int i = anvil_peer_find(e, peer);

    if (e->concurrent == UINT32_MAX)
        return;
    if (i < 0) {
        e->peers = xrealloc(e->peers, (e->npeers + 1) * sizeof(*e->peers));
        i = (int)e->npeers++;
        e->peers[i].peer = peer;
        e->peers[i].n = 0;
    }
    e->peers[i].n++;
    if (e->concurrent++ == 0) {
        anvil_list_del(&t->idle, e);
        anvil_list_append(&t->busy, e);
    }
}

/* anvil_session_del - n of peer's sessions of e end (at most as many as it has). */
static void
anvil_session_del(struct anvil_table *t, struct anvil_entry *e, uint32_t peer, uint32_t n)
{
    int i = anvil_peer_find(e, peer);

    if (i < 0)
        return;
    if (n > e->peers[i].n)
        n = e->peers[i].n;
    e->peers[i].n -= n;
    e->concurrent -= n;
    if (e->peers[i].n == 0)
        e->peers[i] = e->peers[--e->npeers];
    if (e->concurrent == 0) {
        free(e->peers);
        e->peers = NULL;
        e->npeers = 0;
        anvil_list_del(&t->busy, e);
        anvil_list_append(&t->idle, e);
    }
}

/* anvil_rate_of - the rate an event kind counts or answers; -1 for none, -2 unknown. */
static int
anvil_rate_of(uint32_t event)
{
    switch (event) {
    case IPC_ANVIL_CONNECT:
        return ANVIL_RATE_CONN;
    case IPC_ANVIL_DISCONNECT:
        return -1;
    case IPC_ANVIL_MAIL:
        return ANVIL_RATE_MAIL;
    case IPC_ANVIL_RCPT:
        return ANVIL_RATE_RCPT;
    case IPC_ANVIL_AUTH_FAIL:
    case IPC_ANVIL_AUTH_QUERY:
        return ANVIL_RATE_AUTH;
    }
    return -2;
}

struct anvil_table *
anvil_table_new(uint64_t unit_ms, size_t max, const uint8_t *key)
{
    struct anvil_table *t = xcalloc(1, sizeof(*t));
    size_t              nb = 16;

    while (nb < max)
        nb <<= 1;
    t->unit_ms = unit_ms > 0 ? unit_ms : 1;
    t->max = max > 0 ? max : 1;
    t->mask = nb - 1;
    t->buckets = xcalloc(nb, sizeof(*t->buckets));
    memcpy(t->key, key, ANVIL_TABLE_KEY_LEN);
    return t;
}

void
anvil_table_free(struct anvil_table **tp)
{
    struct anvil_table *t = *tp;
    struct anvil_list  *lists[2];

    if (t == NULL)
        return;
    lists[0] = &t->busy;
    lists[1] = &t->idle;
    for (int i = 0; i < 2; i++) {
        while (lists[i]->head != NULL) {
            struct anvil_entry *e = lists[i]->head;

            lists[i]->head = e->next;
            free(e->peers);
            free(e);
        }
    }
    free(t->buckets);
    free(t);
    *tp = NULL;
}

int
anvil_table_event(struct anvil_table *t, uint32_t peer, uint32_t event, const char *client,
                  uint64_t now_ms, struct anvil_counts *out)
{
    struct anvil_entry *e;
    size_t              len = strnlen(client, ANVIL_TABLE_CLIENT_MAX + 1);
    int                 rate = anvil_rate_of(event);

    memset(out, 0, sizeof(*out));
    if (rate == -2 || len == 0 || len > ANVIL_TABLE_CLIENT_MAX)
        return -1;
    if ((e = anvil_find(t, client, len)) == NULL) {
        /* ending or asking about a client we do not know creates nothing */
        if (event == IPC_ANVIL_DISCONNECT || event == IPC_ANVIL_AUTH_QUERY)
            return 0;
        if ((e = anvil_add(t, client, len, now_ms)) == NULL) {
            t->stats.full++;
            return 0;
        }
    }
    anvil_window(t, e, now_ms);
    if (event == IPC_ANVIL_CONNECT)
        anvil_session_add(t, e, peer);
    else if (event == IPC_ANVIL_DISCONNECT)
        anvil_session_del(t, e, peer, 1);
    if (rate >= 0 && event != IPC_ANVIL_AUTH_QUERY && e->rate[rate] < UINT32_MAX)
        e->rate[rate]++;
    if (e->concurrent == 0) {
        /* used just now: the last to be evicted */
        anvil_list_del(&t->idle, e);
        anvil_list_append(&t->idle, e);
    }
    out->concurrent = e->concurrent;
    out->rate = rate >= 0 ? e->rate[rate] : 0;
    return 0;
}

void
anvil_table_peer_gone(struct anvil_table *t, uint32_t peer)
{
    struct anvil_entry *e, *next;

    for (e = t->busy.head; e != NULL; e = next) {
        int i = anvil_peer_find(e, peer);

        next = e->next;
        if (i >= 0)
            anvil_session_del(t, e, peer, e->peers[i].n);
    }
}

size_t
anvil_table_sweep(struct anvil_table *t, uint64_t now_ms)
{
    struct anvil_entry *e, *next;
    size_t              n = 0;

    for (e = t->idle.head; e != NULL; e = next) {
        next = e->next;
        if (now_ms - e->window_start >= t->unit_ms) {
            anvil_drop(t, e);
            n++;
        }
    }
    t->stats.swept += n;
    return n;
}

void
anvil_table_get_stats(const struct anvil_table *t, struct anvil_table_stats *st)
{
    *st = t->stats;
    st->clients = t->n;
}
