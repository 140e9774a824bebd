/* qmgr_store - the Berkeley DB queue: envelopes, recipients, retry and domain indexes.
 *
 * See qmgr_store.h for the invariants. The environment lives in one directory (`db/` under
 * the queue directory) with the files msg.db, rcpt.db, retry.db and domain.db; DB_CONFIG
 * there is rewritten at every open so a stale or planted one never takes effect. qmgr is
 * single-threaded and never keeps a cursor open across a write of its own, so Berkeley DB's
 * locks never conflict; deadlock detection is on all the same. Reads outside transactions
 * see committed data only (the only writer is this process, between reads). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <db.h>

#include "buf.h"
#include "log.h"
#include "qrec.h"
#include "qmgr_store.h"

#define QMGR_STORE_FIX_BATCH 256     /* records per transaction in the recovery pass */

/* The DB_CONFIG qmgr writes: our settings, never someone else's. */
static const char qmgr_store_db_config[] =
    "# Written by qmgr at every start; changes here are overwritten.\n"
    "set_cachesize 0 67108864 1\n"
    "set_lg_bsize 4194304\n"
    "set_lg_max 16777216\n"
    "set_lk_max_locks 100000\n"
    "set_lk_max_objects 100000\n"
    "set_lk_max_lockers 10000\n"
    "set_lk_detect DB_LOCK_DEFAULT\n";

struct qmgr_store {
    DB_ENV                 *env;
    DB                     *msg;
    DB                     *rcpt;
    DB                     *retry;
    DB                     *domain;
    struct buf             *enc;
    struct qmgr_store_stats stats;
    int                     lock_fd;    /* QMGR_STORE_LOCK, flock(LOCK_EX) while open */
};

/* One (qid, index) pair in a work list. */
struct qmgr_store_ref {
    char     qid[QID_SIZE];
    uint32_t index;
};

struct qmgr_store_refs {
    struct qmgr_store_ref *v;
    size_t                 n, cap;
};

/* qmgr_store_refs_add - append to a work list. */
static void
qmgr_store_refs_add(struct qmgr_store_refs *l, const char *qid, uint32_t index)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    memcpy(l->v[l->n].qid, qid, QID_SIZE);
    l->v[l->n].qid[QID_LEN] = '\0';
    l->v[l->n].index = index;
    l->n++;
}

/* qmgr_store_dbt - point a DBT at caller memory. */
static void
qmgr_store_dbt(DBT *d, const void *data, size_t len)
{
    memset(d, 0, sizeof(*d));
    d->data = (void *)data;
    d->size = (u_int32_t)len;
}

/* qmgr_store_errcall - Berkeley DB's own error messages go to our log. */
static void
qmgr_store_errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
    (void)env;
    (void)pfx;
    log_warnx("db: %s", msg);
}

/* qmgr_store_write_config - replace home/DB_CONFIG atomically with ours. */
static int
qmgr_store_write_config(const char *home, char *err, size_t errlen)
{
    char    tmp[4096], path[4096];
    size_t  len = sizeof(qmgr_store_db_config) - 1;
    int     fd;

    snprintf(path, sizeof(path), "%s/DB_CONFIG", home);
    snprintf(tmp, sizeof(tmp), "%s/DB_CONFIG.tmp", home);
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd == -1) {
        snprintf(err, errlen, "open %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write(fd, qmgr_store_db_config, len) != (ssize_t)len || fsync(fd) == -1) {
        snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) == -1) {
        snprintf(err, errlen, "rename %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* qmgr_store_take_lock - create home/QMGR_STORE_LOCK and flock() it exclusively. An
 * offline reader (the CLI, root or the queue owner) may hold a shared lock for the moment
 * of a listing: we wait for it, never for long. */
static int
qmgr_store_take_lock(const char *home, char *err, size_t errlen)
{
    char path[4096];
    int  fd;

    snprintf(path, sizeof(path), "%s/%s", home, QMGR_STORE_LOCK);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd == -1) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX) == -1) {
        if (errno != EINTR) {
            snprintf(err, errlen, "flock %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* qmgr_store_open_db - open (create) one btree of the environment. */
static int
qmgr_store_open_db(struct qmgr_store *s, DB **dbp, const char *file, char *err, size_t errlen)
{
    DB  *db;
    int  ret;

    if ((ret = db_create(&db, s->env, 0)) != 0) {
        snprintf(err, errlen, "db_create %s: %s", file, db_strerror(ret));
        return -1;
    }
    ret = db->open(db, NULL, file, NULL, DB_BTREE, DB_CREATE | DB_AUTO_COMMIT, 0600);
    if (ret != 0) {
        snprintf(err, errlen, "open %s: %s", file, db_strerror(ret));
        db->close(db, 0);
        return -1;
    }
    *dbp = db;
    return 0;
}

/* qmgr_store_open - create and recover the environment, open the four databases. */
struct qmgr_store *
qmgr_store_open(const char *home, char *err, size_t errlen)
{
    struct qmgr_store *s;
    int                ret;
    u_int32_t          flags = DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG
                               | DB_INIT_MPOOL | DB_RECOVER;

    if (mkdir(home, 0700) == -1 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", home, strerror(errno));
        return NULL;
    }
    if (qmgr_store_write_config(home, err, errlen) == -1)
        return NULL;
    s = xcalloc(1, sizeof(*s));
    s->enc = buf_new(512);
    if ((s->lock_fd = qmgr_store_take_lock(home, err, errlen)) == -1) {
        buf_free(&s->enc);
        free(s);
        return NULL;
    }
    if ((ret = db_env_create(&s->env, 0)) != 0) {
        snprintf(err, errlen, "db_env_create: %s", db_strerror(ret));
        close(s->lock_fd);
        buf_free(&s->enc);
        free(s);
        return NULL;
    }
    s->env->set_errcall(s->env, qmgr_store_errcall);
    s->env->set_lk_detect(s->env, DB_LOCK_DEFAULT);
    s->env->log_set_config(s->env, DB_LOG_AUTO_REMOVE, 1);
    if ((ret = s->env->open(s->env, home, flags, 0600)) != 0) {
        snprintf(err, errlen, "open environment %s: %s", home, db_strerror(ret));
        s->env->close(s->env, 0);
        close(s->lock_fd);
        buf_free(&s->enc);
        free(s);
        return NULL;
    }
    if (qmgr_store_open_db(s, &s->msg, "msg.db", err, errlen) == -1
        || qmgr_store_open_db(s, &s->rcpt, "rcpt.db", err, errlen) == -1
        || qmgr_store_open_db(s, &s->retry, "retry.db", err, errlen) == -1
        || qmgr_store_open_db(s, &s->domain, "domain.db", err, errlen) == -1) {
        qmgr_store_close(&s);
        return NULL;
    }
    return s;
}

/* qmgr_store_close - checkpoint, close the databases and the environment. */
void
qmgr_store_close(struct qmgr_store **sp)
{
    struct qmgr_store *s = *sp;
    DB               **dbs[4];
    int                i, ret;

    if (s == NULL)
        return;
    dbs[0] = &s->msg;
    dbs[1] = &s->rcpt;
    dbs[2] = &s->retry;
    dbs[3] = &s->domain;
    if (s->msg && s->rcpt && s->retry && s->domain)
        qmgr_store_checkpoint(s);
    for (i = 0; i < 4; i++) {
        if (*dbs[i] != NULL && (ret = (*dbs[i])->close(*dbs[i], 0)) != 0)
            log_warnx("db close: %s", db_strerror(ret));
        *dbs[i] = NULL;
    }
    if ((ret = s->env->close(s->env, 0)) != 0)
        log_warnx("db environment close: %s", db_strerror(ret));
    if (s->lock_fd >= 0)
        close(s->lock_fd);          /* releases the flock: offline readers may go on */
    buf_free(&s->enc);
    free(s);
    *sp = NULL;
}

/* qmgr_store_checkpoint - write dirty pages and a checkpoint record; old logs go away. */
int
qmgr_store_checkpoint(struct qmgr_store *s)
{
    int ret;

    if ((ret = s->env->txn_checkpoint(s->env, 0, 0, 0)) != 0) {
        log_warnx("db checkpoint: %s", db_strerror(ret));
        return -1;
    }
    return 0;
}

/* qmgr_store_put - put key/value in db under txn. */
static int
qmgr_store_put(DB *db, DB_TXN *txn, const void *k, size_t klen, const void *v, size_t vlen)
{
    DBT key, val;
    int ret;

    qmgr_store_dbt(&key, k, klen);
    qmgr_store_dbt(&val, v, vlen);
    if ((ret = db->put(db, txn, &key, &val, 0)) != 0)
        log_warnx("db put %s: %s", db->fname ? db->fname : "?", db_strerror(ret));
    return ret;
}

/* qmgr_store_del - delete key from db under txn; a missing key is not an error. */
static int
qmgr_store_del(DB *db, DB_TXN *txn, const void *k, size_t klen)
{
    DBT key;
    int ret;

    qmgr_store_dbt(&key, k, klen);
    ret = db->del(db, txn, &key, 0);
    if (ret == DB_NOTFOUND)
        return 0;
    if (ret != 0)
        log_warnx("db del %s: %s", db->fname ? db->fname : "?", db_strerror(ret));
    return ret;
}

/* qmgr_store_put_rcpt - write a recipient record. */
static int
qmgr_store_put_rcpt(struct qmgr_store *s, DB_TXN *txn, const char *qid, uint32_t index,
                    const struct qrec_rcpt *r)
{
    uint8_t k[QREC_KEY_RCPT_LEN];

    buf_reset(s->enc);
    if (qrec_rcpt_enc(s->enc, r) == -1) {
        log_warnx("%s: recipient %u record too large", qid, index);
        return EINVAL;
    }
    qrec_key_rcpt(k, qid, index);
    return qmgr_store_put(s->rcpt, txn, k, sizeof(k), s->enc->data, s->enc->len);
}

/* qmgr_store_put_index - write the retry and domain keys of a pending recipient. */
static int
qmgr_store_put_index(struct qmgr_store *s, DB_TXN *txn, const char *qid, uint32_t index,
                     const struct qrec_rcpt *r)
{
    uint8_t k[QREC_KEY_RETRY_LEN], d[QREC_KEY_DOMAIN_MAX];
    size_t  dlen;
    int     ret;

    qrec_key_retry(k, r->next_attempt, qid, index);
    if ((ret = qmgr_store_put(s->retry, txn, k, sizeof(k), "", 0)) != 0)
        return ret;
    dlen = qrec_key_domain(d, r->domain ? r->domain : "", qid, index);
    return qmgr_store_put(s->domain, txn, d, dlen, "", 0);
}

/* qmgr_store_del_index - delete the retry and domain keys of a recipient. */
static int
qmgr_store_del_index(struct qmgr_store *s, DB_TXN *txn, const char *qid, uint32_t index,
                     const struct qrec_rcpt *r, int domain_too)
{
    uint8_t k[QREC_KEY_RETRY_LEN], d[QREC_KEY_DOMAIN_MAX];
    size_t  dlen;
    int     ret;

    qrec_key_retry(k, r->next_attempt, qid, index);
    if ((ret = qmgr_store_del(s->retry, txn, k, sizeof(k))) != 0 || !domain_too)
        return ret;
    dlen = qrec_key_domain(d, r->domain ? r->domain : "", qid, index);
    return qmgr_store_del(s->domain, txn, d, dlen);
}

/* qmgr_store_insert - group commit of new messages. */
int
qmgr_store_insert(struct qmgr_store *s, struct qmgr_store_new *const *v, size_t n,
                  int flush, int *errcode, char *err, size_t errlen)
{
    DB_TXN *txn;
    uint8_t k[QREC_KEY_MSG_LEN];
    size_t  i;
    int     ret;

    if ((ret = s->env->txn_begin(s->env, NULL, &txn, 0)) != 0) {
        snprintf(err, errlen, "txn_begin: %s", db_strerror(ret));
        *errcode = EIO;
        return -1;
    }
    for (i = 0; i < n; i++) {
        const struct qmgr_store_new *m = v[i];
        uint32_t                     j;

        buf_reset(s->enc);
        if (qrec_msg_enc(s->enc, &m->msg) == -1) {
            snprintf(err, errlen, "%s: envelope record too large", m->qid);
            ret = EINVAL;
            goto fail;
        }
        qrec_key_msg(k, m->qid);
        if ((ret = qmgr_store_put(s->msg, txn, k, sizeof(k), s->enc->data, s->enc->len)) != 0)
            goto dbfail;
        for (j = 0; j < m->msg.nrcpt; j++) {
            if ((ret = qmgr_store_put_rcpt(s, txn, m->qid, j, &m->rcpts[j])) != 0
                || (ret = qmgr_store_put_index(s, txn, m->qid, j, &m->rcpts[j])) != 0) {
                if (ret == EINVAL) {
                    snprintf(err, errlen, "%s: recipient record too large", m->qid);
                    goto fail;
                }
                goto dbfail;
            }
        }
    }
    /* The durability point: a synchronous log flush, or (flush 0) the caller's syncfs
     * right after; never DB_TXN_NOSYNC, which may not even write the log. */
    if ((ret = txn->commit(txn, flush ? DB_TXN_SYNC : DB_TXN_WRITE_NOSYNC)) != 0) {
        snprintf(err, errlen, "commit: %s", db_strerror(ret));
        *errcode = EIO;
        return -1;
    }
    s->stats.insert_txns++;
    s->stats.inserted_msgs += n;
    return 0;

dbfail:
    snprintf(err, errlen, "database write: %s", db_strerror(ret));
    ret = EIO;
fail:
    txn->abort(txn);
    *errcode = ret;
    return -1;
}

int
qmgr_store_log_flush(struct qmgr_store *s)
{
    int ret;

    if ((ret = s->env->log_flush(s->env, NULL)) != 0) {
        log_warnx("log flush: %s", db_strerror(ret));
        return -1;
    }
    return 0;
}

/* qmgr_store_all_final - 1 if every recipient of qid is final (0 if any is not or one is
 * unreadable), reading under txn; -1 on a database error. *count gets the number seen. */
static int
qmgr_store_all_final(struct qmgr_store *s, DB_TXN *txn, const char *qid, size_t *count)
{
    uint8_t          k[QREC_KEY_RCPT_LEN];
    DBC             *c;
    DBT              key, val;
    struct qrec_rcpt r;
    int              ret, all = 1;

    *count = 0;
    if ((ret = s->rcpt->cursor(s->rcpt, txn, &c, 0)) != 0) {
        log_warnx("db cursor: %s", db_strerror(ret));
        return -1;
    }
    qrec_key_rcpt(k, qid, 0);
    qmgr_store_dbt(&key, k, sizeof(k));
    memset(&val, 0, sizeof(val));
    for (ret = c->get(c, &key, &val, DB_SET_RANGE); ret == 0;
         ret = c->get(c, &key, &val, DB_NEXT)) {
        if (key.size != QREC_KEY_RCPT_LEN || memcmp(key.data, qid, QID_LEN) != 0)
            break;
        (*count)++;
        if (qrec_rcpt_dec(val.data, val.size, &r) == -1) {
            all = 0;
            break;
        }
        if (!qrec_state_final(r.state))
            all = 0;
        qrec_rcpt_clear(&r);
        if (!all)
            break;
    }
    c->close(c);
    if (ret != 0 && ret != DB_NOTFOUND) {
        log_warnx("%s: db read recipients: %s", qid, db_strerror(ret));
        return -1;
    }
    return all;
}

/* qmgr_store_remove - delete a message's envelope, recipients and their index keys. */
static int
qmgr_store_remove(struct qmgr_store *s, DB_TXN *txn, const char *qid)
{
    uint8_t          k[QREC_KEY_RCPT_LEN], mk[QREC_KEY_MSG_LEN];
    DBC             *c;
    DBT              key, val;
    struct qrec_rcpt r;
    int              ret;

    if ((ret = s->rcpt->cursor(s->rcpt, txn, &c, 0)) != 0) {
        log_warnx("db cursor: %s", db_strerror(ret));
        return ret;
    }
    qrec_key_rcpt(k, qid, 0);
    qmgr_store_dbt(&key, k, sizeof(k));
    memset(&val, 0, sizeof(val));
    for (ret = c->get(c, &key, &val, DB_SET_RANGE); ret == 0;
         ret = c->get(c, &key, &val, DB_NEXT)) {
        if (key.size != QREC_KEY_RCPT_LEN || memcmp(key.data, qid, QID_LEN) != 0)
            break;
        if (qrec_rcpt_dec(val.data, val.size, &r) == 0) {
            uint32_t index = ((uint32_t)((uint8_t *)key.data)[QID_LEN] << 24)
                             | ((uint32_t)((uint8_t *)key.data)[QID_LEN + 1] << 16)
                             | ((uint32_t)((uint8_t *)key.data)[QID_LEN + 2] << 8)
                             | ((uint8_t *)key.data)[QID_LEN + 3];

            if (!qrec_state_final(r.state))
                ret = qmgr_store_del_index(s, txn, qid, index, &r, 1);
            qrec_rcpt_clear(&r);
            if (ret != 0)
                break;
        }
        if ((ret = c->del(c, 0)) != 0) {
            log_warnx("%s: db delete recipient: %s", qid, db_strerror(ret));
            break;
        }
    }
    c->close(c);
    if (ret != 0 && ret != DB_NOTFOUND)
        return ret;
    qrec_key_msg(mk, qid);
    return qmgr_store_del(s->msg, txn, mk, sizeof(mk));
}

/* qmgr_store_apply - apply one result under txn; *became_final is set when the recipient
 * is now final. 0: applied or skipped; a Berkeley DB (or errno) code otherwise. */
static int
qmgr_store_apply(struct qmgr_store *s, DB_TXN *txn, const struct qmgr_store_result *u,
                 int *became_final)
{
    uint8_t          k[QREC_KEY_RCPT_LEN];
    DBT              key, val;
    struct qrec_rcpt r;
    int              ret, final;

    *became_final = 0;
    qrec_key_rcpt(k, u->qid, u->index);
    qmgr_store_dbt(&key, k, sizeof(k));
    memset(&val, 0, sizeof(val));
    ret = s->rcpt->get(s->rcpt, txn, &key, &val, DB_RMW);
    if (ret == DB_NOTFOUND) {
        log_warnx("%s: result for unknown recipient %u ignored", u->qid, u->index);
        return 0;
    }
    if (ret != 0) {
        log_warnx("%s: db read recipient %u: %s", u->qid, u->index, db_strerror(ret));
        return ret;
    }
    if (qrec_rcpt_dec(val.data, val.size, &r) == -1) {
        log_warnx("%s: recipient %u record corrupt, set aside", u->qid, u->index);
        return 0;
    }
    if (qrec_state_final(r.state)) {
        qrec_rcpt_clear(&r);
        return 0;
    }
    final = qrec_state_final(u->state);
    if ((ret = qmgr_store_del_index(s, txn, u->qid, u->index, &r, final)) != 0)
        goto out;
    r.state = u->state;
    if (u->attempted) {
        r.attempts++;
        r.last_attempt = u->now;
    }
    if (!final)
        r.next_attempt = u->next_attempt;
    if (u->dsn != NULL) {
        free(r.dsn);
        r.dsn = xstrdup(u->dsn);
    }
    if (u->text != NULL) {
        free(r.text);
        r.text = xstrndup(u->text, 1000);
    }
    if (u->relay != NULL) {
        free(r.relay);
        r.relay = xstrndup(u->relay, 300);
    }
    if ((ret = qmgr_store_put_rcpt(s, txn, u->qid, u->index, &r)) != 0)
        goto out;
    if (!final) {
        uint8_t rk[QREC_KEY_RETRY_LEN];

        qrec_key_retry(rk, r.next_attempt, u->qid, u->index);
        ret = qmgr_store_put(s->retry, txn, rk, sizeof(rk), "", 0);
    }
out:
    qrec_rcpt_clear(&r);
    *became_final = ret == 0 && final;
    return ret;
}

/* qmgr_store_insert_msg - write one new message's records under txn. */
static int
qmgr_store_insert_msg(struct qmgr_store *s, DB_TXN *txn, const struct qmgr_store_new *m)
{
    uint8_t  k[QREC_KEY_MSG_LEN];
    uint32_t j;
    int      ret;

    buf_reset(s->enc);
    if (qrec_msg_enc(s->enc, &m->msg) == -1) {
        log_warnx("%s: envelope record too large", m->qid);
        return EINVAL;
    }
    qrec_key_msg(k, m->qid);
    if ((ret = qmgr_store_put(s->msg, txn, k, sizeof(k), s->enc->data, s->enc->len)) != 0)
        return ret;
    for (j = 0; j < m->msg.nrcpt; j++)
        if ((ret = qmgr_store_put_rcpt(s, txn, m->qid, j, &m->rcpts[j])) != 0
            || (ret = qmgr_store_put_index(s, txn, m->qid, j, &m->rcpts[j])) != 0)
            return ret;
    return 0;
}

/* qmgr_store_set_warned - set QREC_F_WARNED on an envelope under txn (absent: skipped). */
static int
qmgr_store_set_warned(struct qmgr_store *s, DB_TXN *txn, const char *qid)
{
    uint8_t         k[QREC_KEY_MSG_LEN];
    DBT             key, val;
    struct qrec_msg m;
    int             ret;

    qrec_key_msg(k, qid);
    qmgr_store_dbt(&key, k, sizeof(k));
    memset(&val, 0, sizeof(val));
    if ((ret = s->msg->get(s->msg, txn, &key, &val, DB_RMW)) != 0)
        return ret == DB_NOTFOUND ? 0 : ret;
    if (qrec_msg_dec(val.data, val.size, &m) == -1) {
        log_warnx("%s: envelope record corrupt, set aside", qid);
        return 0;
    }
    m.flags |= QREC_F_WARNED;
    buf_reset(s->enc);
    ret = qrec_msg_enc(s->enc, &m) == -1 ? EINVAL
          : qmgr_store_put(s->msg, txn, k, sizeof(k), s->enc->data, s->enc->len);
    qrec_msg_clear(&m);
    return ret;
}

/* qmgr_store_results - one WRITE_NOSYNC transaction for a turn's delivery results. */
int
qmgr_store_results(struct qmgr_store *s, const struct qmgr_store_result *v, size_t n,
                   qmgr_store_gone_cb gone, void *arg)
{
    struct qmgr_store_batch b;

    memset(&b, 0, sizeof(b));
    b.results = v;
    b.nresults = n;
    return qmgr_store_apply_batch(s, &b, gone, arg);
}

/* qmgr_store_apply_batch - results, new DSN messages and flags in one transaction. */
int
qmgr_store_apply_batch(struct qmgr_store *s, const struct qmgr_store_batch *b,
                       qmgr_store_gone_cb gone, void *arg)
{
    const struct qmgr_store_result *v = b->results;
    struct qmgr_store_refs          check = { 0 }, done = { 0 };
    DB_TXN                         *txn;
    size_t                          n = b->nresults, i, j, count;
    int                             ret = 0, all;

    if (n == 0 && b->nadd == 0 && b->nwarned == 0)
        return 0;
    if ((ret = s->env->txn_begin(s->env, NULL, &txn, DB_TXN_WRITE_NOSYNC)) != 0) {
        log_warnx("db txn_begin: %s", db_strerror(ret));
        return -1;
    }
    for (i = 0; i < b->nadd; i++)
        if (qmgr_store_insert_msg(s, txn, b->add[i]) != 0)
            goto fail;
    for (i = 0; i < b->nwarned; i++)
        if (qmgr_store_set_warned(s, txn, b->warned[i]) != 0)
            goto fail;
    for (i = 0; i < n; i++) {
        int became_final;

        if (qmgr_store_apply(s, txn, &v[i], &became_final) != 0)
            goto fail;
        if (became_final) {
            for (j = 0; j < check.n; j++)
                if (strcmp(check.v[j].qid, v[i].qid) == 0)
                    break;
            if (j == check.n)
                qmgr_store_refs_add(&check, v[i].qid, 0);
        }
    }
    for (i = 0; i < check.n; i++) {
        if ((all = qmgr_store_all_final(s, txn, check.v[i].qid, &count)) == -1) {
            ret = -1;
            goto fail;
        }
        if (all == 1) {
            if ((ret = qmgr_store_remove(s, txn, check.v[i].qid)) != 0)
                goto fail;
            qmgr_store_refs_add(&done, check.v[i].qid, 0);
        }
    }
    if ((ret = txn->commit(txn, DB_TXN_WRITE_NOSYNC)) != 0) {
        log_warnx("db commit results: %s", db_strerror(ret));
        ret = -1;
        goto out;
    }
    s->stats.result_txns++;
    if (gone != NULL)
        for (i = 0; i < done.n; i++)
            gone(done.v[i].qid, arg);
    goto out;

fail:
    txn->abort(txn);
    ret = -1;
out:
    free(check.v);
    free(done.v);
    return ret;
}

/* qmgr_store_get_msg - read and decode one envelope. */
int
qmgr_store_get_msg(struct qmgr_store *s, const char *qid, struct qrec_msg *out)
{
    uint8_t k[QREC_KEY_MSG_LEN];
    DBT     key, val;
    int     ret;

    qrec_key_msg(k, qid);
    qmgr_store_dbt(&key, k, sizeof(k));
    memset(&val, 0, sizeof(val));
    ret = s->msg->get(s->msg, NULL, &key, &val, 0);
    if (ret == DB_NOTFOUND)
        return 1;
    if (ret != 0) {
        log_warnx("%s: db read envelope: %s", qid, db_strerror(ret));
        return -1;
    }
    if (qrec_msg_dec(val.data, val.size, out) == -1) {
        log_warnx("%s: envelope record corrupt, set aside", qid);
        return -1;
    }
    return 0;
}

/* qmgr_store_get_rcpt - read and decode one recipient. */
int
qmgr_store_get_rcpt(struct qmgr_store *s, const char *qid, uint32_t index,
                    struct qrec_rcpt *out)
{
    uint8_t k[QREC_KEY_RCPT_LEN];
    DBT     key, val;
    int     ret;

    qrec_key_rcpt(k, qid, index);
    qmgr_store_dbt(&key, k, sizeof(k));
    memset(&val, 0, sizeof(val));
    ret = s->rcpt->get(s->rcpt, NULL, &key, &val, 0);
    if (ret == DB_NOTFOUND)
        return 1;
    if (ret != 0) {
        log_warnx("%s: db read recipient %u: %s", qid, index, db_strerror(ret));
        return -1;
    }
    if (qrec_rcpt_dec(val.data, val.size, out) == -1) {
        log_warnx("%s: recipient %u record corrupt, set aside", qid, index);
        return -1;
    }
    return 0;
}

/* qmgr_store_has_msg - does an envelope exist for qid? */
int
qmgr_store_has_msg(struct qmgr_store *s, const char *qid)
{
    uint8_t k[QREC_KEY_MSG_LEN];
    DBT     key, val;
    int     ret;

    qrec_key_msg(k, qid);
    qmgr_store_dbt(&key, k, sizeof(k));
    memset(&val, 0, sizeof(val));
    val.flags = DB_DBT_PARTIAL;     /* existence only: read no bytes */
    ret = s->msg->get(s->msg, NULL, &key, &val, 0);
    if (ret == DB_NOTFOUND)
        return 0;
    if (ret != 0) {
        log_warnx("%s: db read envelope: %s", qid, db_strerror(ret));
        return -1;
    }
    return 1;
}

/* qmgr_store_scan_due - walk the retry index from the earliest key. */
int
qmgr_store_scan_due(struct qmgr_store *s, uint64_t now, qmgr_store_due_cb cb, void *arg,
                    uint64_t *next)
{
    DBC      *c;
    DBT       key, val;
    char      qid[QID_SIZE];
    uint64_t  when;
    uint32_t  index;
    int       ret;

    *next = 0;
    if ((ret = s->retry->cursor(s->retry, NULL, &c, 0)) != 0) {
        log_warnx("db cursor retry: %s", db_strerror(ret));
        return -1;
    }
    memset(&key, 0, sizeof(key));
    memset(&val, 0, sizeof(val));
    for (ret = c->get(c, &key, &val, DB_FIRST); ret == 0;
         ret = c->get(c, &key, &val, DB_NEXT)) {
        if (qrec_key_retry_dec(key.data, key.size, &when, qid, &index) == -1) {
            log_warnx("retry index: malformed key of %u bytes skipped", key.size);
            continue;
        }
        if (when > now) {
            *next = when;
            break;
        }
        if (cb(when, qid, index, arg) != 0)
            break;
    }
    c->close(c);
    if (ret != 0 && ret != DB_NOTFOUND) {
        log_warnx("db read retry index: %s", db_strerror(ret));
        return -1;
    }
    return 0;
}

/* qmgr_store_drop_retry - delete one stale retry key. */
int
qmgr_store_drop_retry(struct qmgr_store *s, uint64_t when, const char *qid, uint32_t index)
{
    uint8_t  k[QREC_KEY_RETRY_LEN];
    DB_TXN  *txn;
    int      ret;

    if ((ret = s->env->txn_begin(s->env, NULL, &txn, DB_TXN_WRITE_NOSYNC)) != 0) {
        log_warnx("db txn_begin: %s", db_strerror(ret));
        return -1;
    }
    qrec_key_retry(k, when, qid, index);
    if (qmgr_store_del(s->retry, txn, k, sizeof(k)) != 0) {
        txn->abort(txn);
        return -1;
    }
    if ((ret = txn->commit(txn, DB_TXN_WRITE_NOSYNC)) != 0) {
        log_warnx("db commit: %s", db_strerror(ret));
        return -1;
    }
    return 0;
}

/* qmgr_store_key_exists - 1 if key is in db (read outside a transaction). */
static int
qmgr_store_key_exists(DB *db, const void *k, size_t klen)
{
    DBT key, val;
    int ret;

    qmgr_store_dbt(&key, k, klen);
    memset(&val, 0, sizeof(val));
    val.flags = DB_DBT_PARTIAL;
    ret = db->get(db, NULL, &key, &val, 0);
    return ret == 0 ? 1 : ret == DB_NOTFOUND ? 0 : -1;
}

/* qmgr_store_fix_rcpt - under txn: ACTIVE back to QUEUED, retry and domain keys present. */
static int
qmgr_store_fix_rcpt(struct qmgr_store *s, DB_TXN *txn, const struct qmgr_store_ref *f)
{
    struct qrec_rcpt r;
    uint8_t          k[QREC_KEY_RCPT_LEN];
    DBT              key, val;
    int              ret;

    qrec_key_rcpt(k, f->qid, f->index);
    qmgr_store_dbt(&key, k, sizeof(k));
    memset(&val, 0, sizeof(val));
    if ((ret = s->rcpt->get(s->rcpt, txn, &key, &val, DB_RMW)) != 0)
        return ret == DB_NOTFOUND ? 0 : ret;
    if (qrec_rcpt_dec(val.data, val.size, &r) == -1)
        return 0;
    if (r.state == QREC_ACTIVE) {
        r.state = QREC_QUEUED;
        ret = qmgr_store_put_rcpt(s, txn, f->qid, f->index, &r);
    }
    if (ret == 0 && !qrec_state_final(r.state))
        ret = qmgr_store_put_index(s, txn, f->qid, f->index, &r);
    qrec_rcpt_clear(&r);
    return ret;
}

/* qmgr_store_run_fixes - apply the recovery work lists in transactions of bounded size. */
static int
qmgr_store_run_fixes(struct qmgr_store *s, const struct qmgr_store_refs *fix,
                     const struct qmgr_store_refs *rm, qmgr_store_gone_cb gone, void *arg)
{
    size_t  i, done_from;
    DB_TXN *txn = NULL;
    int     ret = 0;

    for (i = 0; i < fix->n; i++) {
        if (txn == NULL && (ret = s->env->txn_begin(s->env, NULL, &txn, 0)) != 0)
            goto dberr;
        if ((ret = qmgr_store_fix_rcpt(s, txn, &fix->v[i])) != 0)
            goto dberr;
        if ((i + 1) % QMGR_STORE_FIX_BATCH == 0 || i + 1 == fix->n) {
            ret = txn->commit(txn, DB_TXN_WRITE_NOSYNC);
            txn = NULL;
            if (ret != 0)
                goto dberr;
        }
    }
    for (i = 0, done_from = 0; i < rm->n; i++) {
        if (txn == NULL && (ret = s->env->txn_begin(s->env, NULL, &txn, 0)) != 0)
            goto dberr;
        if ((ret = qmgr_store_remove(s, txn, rm->v[i].qid)) != 0)
            goto dberr;
        if ((i + 1) % QMGR_STORE_FIX_BATCH == 0 || i + 1 == rm->n) {
            ret = txn->commit(txn, DB_TXN_WRITE_NOSYNC);
            txn = NULL;
            if (ret != 0)
                goto dberr;
            for (; done_from <= i; done_from++)
                if (gone != NULL)
                    gone(rm->v[done_from].qid, arg);
        }
    }
    return 0;

dberr:
    if (txn != NULL)
        txn->abort(txn);
    log_warnx("recovery pass: %s", db_strerror(ret));
    return -1;
}

/* qmgr_store_recover - the start-up consistency pass (see the header). */
int
qmgr_store_recover(struct qmgr_store *s, qmgr_store_gone_cb gone, void *arg)
{
    struct qmgr_store_refs fix = { 0 }, rm = { 0 };
    struct qrec_rcpt       r;
    DBC                   *c = NULL, *c2 = NULL;
    DBT                    key, val;
    char                   qid[QID_SIZE], cur[QID_SIZE] = "";
    uint32_t               index;
    size_t                 nrcpt = 0, corrupt = 0, requeued = 0;
    int                    ret, all_final = 1, have_msg = 1, rc = -1;

    if ((ret = s->rcpt->cursor(s->rcpt, NULL, &c, 0)) != 0)
        goto dberr;
    memset(&key, 0, sizeof(key));
    memset(&val, 0, sizeof(val));
    for (ret = c->get(c, &key, &val, DB_FIRST);; ret = c->get(c, &key, &val, DB_NEXT)) {
        int end = ret != 0;

        if (ret != 0 && ret != DB_NOTFOUND)
            goto dberr;
        if (!end && qrec_key_rcpt_dec(key.data, key.size, qid, &index) == -1) {
            log_warnx("rcpt: malformed key of %u bytes set aside", key.size);
            corrupt++;
            continue;
        }
        /* A group (one message's recipients) ends: decide its fate. */
        if (cur[0] != '\0' && (end || strcmp(qid, cur) != 0)) {
            if (!have_msg) {
                log_warnx("%s: recipients without an envelope removed", cur);
                qmgr_store_refs_add(&rm, cur, 0);
            } else if (all_final) {
                qmgr_store_refs_add(&rm, cur, 0);
            }
            cur[0] = '\0';
        }
        if (end)
            break;
        if (cur[0] == '\0') {
            memcpy(cur, qid, QID_SIZE);
            all_final = 1;
            if ((have_msg = qmgr_store_has_msg(s, qid)) == -1)
                goto out;
        }
        nrcpt++;
        if (qrec_rcpt_dec(val.data, val.size, &r) == -1) {
            log_warnx("%s: recipient %u record corrupt, set aside", qid, index);
            corrupt++;
            all_final = 0;
            continue;
        }
        if (!qrec_state_final(r.state)) {
            uint8_t rk[QREC_KEY_RETRY_LEN], dk[QREC_KEY_DOMAIN_MAX];
            size_t  dlen = qrec_key_domain(dk, r.domain, qid, index);
            int     has_retry, has_domain;

            all_final = 0;
            qrec_key_retry(rk, r.next_attempt, qid, index);
            has_retry = qmgr_store_key_exists(s->retry, rk, sizeof(rk));
            has_domain = qmgr_store_key_exists(s->domain, dk, dlen);
            if (r.state == QREC_ACTIVE || has_retry != 1 || has_domain != 1) {
                qmgr_store_refs_add(&fix, qid, index);
                requeued += r.state == QREC_ACTIVE;
            }
        }
        qrec_rcpt_clear(&r);
    }
    c->close(c);
    c = NULL;

    /* Envelopes with no recipient at all. */
    if ((ret = s->msg->cursor(s->msg, NULL, &c, 0)) != 0
        || (ret = s->rcpt->cursor(s->rcpt, NULL, &c2, 0)) != 0)
        goto dberr;
    for (ret = c->get(c, &key, &val, DB_FIRST); ret == 0; ret = c->get(c, &key, &val, DB_NEXT)) {
        uint8_t rk[QREC_KEY_RCPT_LEN];
        DBT     k2, v2;
        int     r2;

        if (key.size != QREC_KEY_MSG_LEN)
            continue;
        memcpy(qid, key.data, QID_LEN);
        qid[QID_LEN] = '\0';
        qrec_key_rcpt(rk, qid, 0);
        qmgr_store_dbt(&k2, rk, sizeof(rk));
        memset(&v2, 0, sizeof(v2));
        v2.flags = DB_DBT_PARTIAL;
        r2 = c2->get(c2, &k2, &v2, DB_SET_RANGE);
        if (r2 != 0 && r2 != DB_NOTFOUND) {
            ret = r2;
            goto dberr;
        }
        if (r2 == DB_NOTFOUND || memcmp(k2.data, qid, QID_LEN) != 0) {
            log_warnx("%s: envelope without recipients removed", qid);
            qmgr_store_refs_add(&rm, qid, 0);
        }
    }
    if (ret != DB_NOTFOUND)
        goto dberr;
    c->close(c);
    c2->close(c2);
    c = c2 = NULL;

    if (qmgr_store_run_fixes(s, &fix, &rm, gone, arg) == -1)
        goto out;
    log_info("queue recovery: recipients=%zu requeued=%zu repaired=%zu removed=%zu corrupt=%zu",
             nrcpt, requeued, fix.n - requeued, rm.n, corrupt);
    rc = 0;
    goto out;

dberr:
    log_warnx("queue recovery: %s", db_strerror(ret));
out:
    if (c != NULL)
        c->close(c);
    if (c2 != NULL)
        c2->close(c2);
    free(fix.v);
    free(rm.v);
    return rc;
}

/* qmgr_store_get_stats - our counters plus Berkeley DB's log flush count. */
void
qmgr_store_get_stats(struct qmgr_store *s, struct qmgr_store_stats *st)
{
    DB_LOG_STAT *ls = NULL;

    *st = s->stats;
    if (s->env->log_stat(s->env, &ls, 0) == 0 && ls != NULL) {
        st->log_syncs = ls->st_scount;
        free(ls);
    }
}

/* qmgr_store_get_rcpts - all recipient records of one message, in index order. */
int
qmgr_store_get_rcpts(struct qmgr_store *s, const char *qid, struct qrec_rcpt **vp,
                     uint32_t **idxp, uint32_t *np)
{
    uint8_t           k[QREC_KEY_RCPT_LEN];
    DBC              *c;
    DBT               key, val;
    struct qrec_rcpt *v = NULL;
    uint32_t         *idx = NULL, n = 0, cap = 0, index;
    char              kq[QID_SIZE];
    int               ret;

    *vp = NULL;
    *idxp = NULL;
    *np = 0;
    if ((ret = s->rcpt->cursor(s->rcpt, NULL, &c, 0)) != 0) {
        log_warnx("db cursor: %s", db_strerror(ret));
        return -1;
    }
    qrec_key_rcpt(k, qid, 0);
    qmgr_store_dbt(&key, k, sizeof(k));
    memset(&val, 0, sizeof(val));
    for (ret = c->get(c, &key, &val, DB_SET_RANGE); ret == 0;
         ret = c->get(c, &key, &val, DB_NEXT)) {
        if (qrec_key_rcpt_dec(key.data, key.size, kq, &index) == -1
            || memcmp(kq, qid, QID_LEN) != 0)
            break;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = xrealloc(v, cap * sizeof(*v));
            idx = xrealloc(idx, cap * sizeof(*idx));
        }
        if (qrec_rcpt_dec(val.data, val.size, &v[n]) == -1) {
            log_warnx("%s: recipient %u record corrupt, set aside", qid, index);
            continue;
        }
        idx[n++] = index;
    }
    c->close(c);
    if (ret != 0 && ret != DB_NOTFOUND) {
        log_warnx("%s: db read recipients: %s", qid, db_strerror(ret));
        for (uint32_t i = 0; i < n; i++)
            qrec_rcpt_clear(&v[i]);
        free(v);
        free(idx);
        return -1;
    }
    *vp = v;
    *idxp = idx;
    *np = n;
    return 0;
}

/* qmgr_store_next_msg - walk the envelopes in queue ID order, one at a time. */
int
qmgr_store_next_msg(struct qmgr_store *s, const char *after, char qid_out[QID_SIZE],
                    struct qrec_msg *out)
{
    uint8_t k[QREC_KEY_MSG_LEN];
    DBC    *c;
    DBT     key, val;
    int     ret, rc = 1;

    if ((ret = s->msg->cursor(s->msg, NULL, &c, 0)) != 0) {
        log_warnx("db cursor: %s", db_strerror(ret));
        return -1;
    }
    memset(&key, 0, sizeof(key));
    memset(&val, 0, sizeof(val));
    if (after[0] != '\0') {
        qrec_key_msg(k, after);
        qmgr_store_dbt(&key, k, sizeof(k));
        ret = c->get(c, &key, &val, DB_SET_RANGE);
    } else {
        ret = c->get(c, &key, &val, DB_FIRST);
    }
    for (; ret == 0; ret = c->get(c, &key, &val, DB_NEXT)) {
        if (key.size != QREC_KEY_MSG_LEN)
            continue;
        if (after[0] != '\0' && memcmp(key.data, after, QID_LEN) <= 0)
            continue;
        memcpy(qid_out, key.data, QID_LEN);
        qid_out[QID_LEN] = '\0';
        if (qrec_msg_dec(val.data, val.size, out) == -1) {
            log_warnx("%s: envelope record corrupt, set aside", qid_out);
            continue;
        }
        rc = 0;
        break;
    }
    c->close(c);
    if (ret != 0 && ret != DB_NOTFOUND) {
        log_warnx("db read envelopes: %s", db_strerror(ret));
        return -1;
    }
    return rc;
}

/* qmgr_store_due_now - under txn: every pending recipient of qid due at `now`. */
static int
qmgr_store_due_now(struct qmgr_store *s, DB_TXN *txn, const char *qid, uint32_t nrcpt,
                   uint64_t now)
{
    uint8_t          k[QREC_KEY_RCPT_LEN], rk[QREC_KEY_RETRY_LEN];
    DBT              key, val;
    struct qrec_rcpt r;
    int              ret;

    for (uint32_t i = 0; i < nrcpt; i++) {
        qrec_key_rcpt(k, qid, i);
        qmgr_store_dbt(&key, k, sizeof(k));
        memset(&val, 0, sizeof(val));
        if ((ret = s->rcpt->get(s->rcpt, txn, &key, &val, DB_RMW)) == DB_NOTFOUND)
            continue;
        if (ret != 0)
            return ret;
        if (qrec_rcpt_dec(val.data, val.size, &r) == -1)
            continue;
        if (qrec_state_final(r.state) || r.next_attempt == now) {
            qrec_rcpt_clear(&r);
            continue;
        }
        ret = qmgr_store_del_index(s, txn, qid, i, &r, 0);
        r.next_attempt = now;
        if (ret == 0)
            ret = qmgr_store_put_rcpt(s, txn, qid, i, &r);
        if (ret == 0) {
            qrec_key_retry(rk, now, qid, i);
            ret = qmgr_store_put(s->retry, txn, rk, sizeof(rk), "", 0);
        }
        qrec_rcpt_clear(&r);
        if (ret != 0)
            return ret;
    }
    return 0;
}

/* qmgr_store_admin - one administrative change to one message, in one transaction. */
int
qmgr_store_admin(struct qmgr_store *s, const char *qid, enum qmgr_store_op op, uint64_t now,
                 uint32_t *nrcpt)
{
    uint8_t         k[QREC_KEY_MSG_LEN];
    DBT             key, val;
    DB_TXN         *txn;
    struct qrec_msg m;
    int             ret, changed = 0;

    *nrcpt = 0;
    if ((ret = s->env->txn_begin(s->env, NULL, &txn, DB_TXN_WRITE_NOSYNC)) != 0) {
        log_warnx("db txn_begin: %s", db_strerror(ret));
        return -1;
    }
    qrec_key_msg(k, qid);
    qmgr_store_dbt(&key, k, sizeof(k));
    memset(&val, 0, sizeof(val));
    if ((ret = s->msg->get(s->msg, txn, &key, &val, DB_RMW)) != 0) {
        txn->abort(txn);
        if (ret == DB_NOTFOUND)
            return 1;
        log_warnx("%s: db read envelope: %s", qid, db_strerror(ret));
        return -1;
    }
    if (qrec_msg_dec(val.data, val.size, &m) == -1) {
        txn->abort(txn);
        log_warnx("%s: envelope record corrupt, set aside", qid);
        return -1;
    }
    *nrcpt = m.nrcpt;
    switch (op) {
    case QMGR_STORE_HOLD:
        changed = !(m.flags & QREC_F_HOLD);
        m.flags |= QREC_F_HOLD;
        break;
    case QMGR_STORE_RELEASE:
        changed = (m.flags & QREC_F_HOLD) != 0;
        m.flags &= ~QREC_F_HOLD;
        ret = qmgr_store_due_now(s, txn, qid, m.nrcpt, now);
        break;
    case QMGR_STORE_RETRY:
        ret = qmgr_store_due_now(s, txn, qid, m.nrcpt, now);
        break;
    case QMGR_STORE_EXPIRE:
        changed = m.expiry != now;
        m.expiry = now;
        ret = qmgr_store_due_now(s, txn, qid, m.nrcpt, now);
        break;
    case QMGR_STORE_DELETE:
        ret = qmgr_store_remove(s, txn, qid);
        break;
    }
    if (ret == 0 && changed) {
        buf_reset(s->enc);
        ret = qrec_msg_enc(s->enc, &m) == -1 ? EINVAL
              : qmgr_store_put(s->msg, txn, k, sizeof(k), s->enc->data, s->enc->len);
    }
    qrec_msg_clear(&m);
    if (ret != 0) {
        txn->abort(txn);
        log_warnx("%s: administrative change failed: %s", qid,
                  ret == EINVAL ? "record too large" : db_strerror(ret));
        return -1;
    }
    if ((ret = txn->commit(txn, DB_TXN_WRITE_NOSYNC)) != 0) {
        log_warnx("%s: db commit: %s", qid, db_strerror(ret));
        return -1;
    }
    return 0;
}

/* qmgr_store_count - walk the envelopes: how many, how many held, how many bytes. */
int
qmgr_store_count(struct qmgr_store *s, uint64_t *msgs, uint64_t *held, uint64_t *bytes)
{
    DBC            *c;
    DBT             key, val;
    struct qrec_msg m;
    int             ret;

    *msgs = *held = *bytes = 0;
    if ((ret = s->msg->cursor(s->msg, NULL, &c, 0)) != 0) {
        log_warnx("db cursor: %s", db_strerror(ret));
        return -1;
    }
    memset(&key, 0, sizeof(key));
    memset(&val, 0, sizeof(val));
    while ((ret = c->get(c, &key, &val, DB_NEXT)) == 0) {
        if (qrec_msg_dec(val.data, val.size, &m) == -1)
            continue;
        (*msgs)++;
        *held += (m.flags & QREC_F_HOLD) != 0;
        *bytes += m.size;
        qrec_msg_clear(&m);
    }
    c->close(c);
    if (ret != DB_NOTFOUND) {
        log_warnx("db read envelopes: %s", db_strerror(ret));
        return -1;
    }
    return 0;
}
