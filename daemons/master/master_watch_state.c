/* master_watch_state - has a watched file changed, and has it stopped changing?
 *
 * The pure part of master_watch.c, so that it can be unit-tested without a loop or daemons
 * (tests/unit/master_watch_state_test.c includes this file). A file is known by what stat()
 * says: device, inode, size, mtime and ctime in nanoseconds (a map build or certbot renames
 * a new file into place: a new inode; an editor that rewrites in place changes size or
 * times; ctime also catches a copy that restores the old mtime, and a chmod). A file that
 * differs from what the daemons loaded is a change only once it has looked the same for
 * settle_ms, so a file still being written is not loaded half-way. A file that disappears
 * is reported once (the daemons keep what they opened; nothing is restarted for it), and a
 * file that comes back exactly as it was is no change at all. */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "master.h"

/* master_watch_state_read - what stat() says about path now; exists = 0 if it fails. */
void
master_watch_state_read(const char *path, struct master_watch_stat *out)
{
    struct stat st;

    memset(out, 0, sizeof(*out));
    if (stat(path, &st) == -1)
        return;
    out->exists = 1;
    out->dev = (uint64_t)st.st_dev;
    out->ino = (uint64_t)st.st_ino;
    out->size = (int64_t)st.st_size;
    out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    out->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
}

/* master_watch_state_same - 1 if a and b describe the same file contents (both missing
 * counts as the same). */
static int
master_watch_state_same(const struct master_watch_stat *a, const struct master_watch_stat *b)
{
    if (!a->exists || !b->exists)
        return a->exists == b->exists;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

void
master_watch_state_init(struct master_watch_state *w, const struct master_watch_stat *now)
{
    memset(w, 0, sizeof(*w));
    w->loaded = *now;
}

enum master_watch_change
master_watch_state_step(struct master_watch_state *w, const struct master_watch_stat *now,
                        uint64_t now_ms, uint64_t settle_ms)
{
    if (master_watch_state_same(now, &w->loaded)) {
        w->pending = 0;
        return MASTER_WATCH_SAME;
    }
    if (!w->pending || !master_watch_state_same(now, &w->seen)) {
        w->seen = *now;
        w->seen_ms = now_ms;
        w->pending = 1;
        w->reported = 0;
    }
    if (w->reported)
        return MASTER_WATCH_SAME;
    if (now_ms - w->seen_ms < settle_ms)
        return MASTER_WATCH_SETTLING;
    if (!now->exists) {
        w->reported = 1;
        return MASTER_WATCH_GONE;
    }
    return MASTER_WATCH_CHANGED;
}

void
master_watch_state_accept(struct master_watch_state *w)
{
    w->loaded = w->seen;
    w->pending = 0;
    w->reported = 0;
}
