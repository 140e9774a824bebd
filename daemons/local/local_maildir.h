/* local_maildir - deliver messages into Maildirs, in stages.
 *
 * A message is written to tmp/<unique> (time.M<usec>P<pid>Q<counter>.<host>) with
 * `Return-Path:` and `Delivered-To:` in front of the body (LF line endings); once its data is
 * durable it is hard-linked into new/ (renamed where the file system has no hard links); once
 * new/ is durable the delivery may be reported done and the tmp/ name is removed. The caller
 * does the flushing between the stages (local_batch: one flush for a whole batch). A Maildir
 * (with any missing parent directories) is created, mode 0700, when it does not exist. Every
 * failure is temporary and, through local_maildir_discard(), leaves no file behind. Every
 * stage runs with the privileges the caller set (the mailbox owner). */
#ifndef POSTERN_LOCAL_MAILDIR_H
#define POSTERN_LOCAL_MAILDIR_H

#include <stddef.h>
#include <sys/types.h>

#include "local.h"

/* One message on its way into one Maildir. */
struct local_maildir_file {
    char  *dir;         /* the Maildir, ending in '/' */
    char  *name;        /* the unique file name */
    char  *tmp;         /* dir + "tmp/" + name */
    char  *newp;        /* dir + "new/" + name once linked, else NULL */
    int    fd;          /* write descriptor on tmp until closed, else -1 */
    dev_t  dev;         /* the file system it lives on */
    int    created;     /* the Maildir was (re)created for it */
    int    linked;      /* new/ holds a hard link: the tmp name is still to go */
};

/* local_maildir_write - create a new file in dir's tmp/ (dir ends in '/'; host names the
 * machine in the file name) and write msg into it, not flushed; f->fd stays open so that a
 * flush can report write-back errors. 0: f filled in; -1: res filled in, nothing left. */
int   local_maildir_write(const char *dir, const struct local_msg *msg, const char *host,
                          struct local_maildir_file *f, struct local_result *res);
/* local_maildir_close - close f->fd (after its data was flushed). -1: res filled in. */
int   local_maildir_close(struct local_maildir_file *f, struct local_result *res);
/* local_maildir_link - put the (durable, closed) tmp file into new/, creating a missing
 * new/. -1: res filled in, f->newp NULL. */
int   local_maildir_link(struct local_maildir_file *f, struct local_result *res);
/* local_maildir_newdir - "<dir>new", the directory to flush after linking (to free). */
char *local_maildir_newdir(const struct local_maildir_file *f);
/* local_maildir_fsync_dir - fsync a directory's entries. -1 with errno set. */
int   local_maildir_fsync_dir(const char *dir);
/* local_maildir_finish - once new/ is durable: remove the tmp/ name, free f's memory. */
void  local_maildir_finish(struct local_maildir_file *f, const char *qid);
/* local_maildir_discard - a delivery that will not be reported: close, remove the new/
 * entry (if linked) and the tmp/ file, free f's memory. qid is for the log. */
void  local_maildir_discard(struct local_maildir_file *f, const char *qid);
/* local_maildir_free - close and free f without touching any file. */
void  local_maildir_free(struct local_maildir_file *f);

#endif
