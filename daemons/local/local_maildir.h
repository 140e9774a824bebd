/* local_maildir - deliver one message into a Maildir.
 *
 * The message is written to tmp/<unique> (time.M<usec>P<pid>Q<counter>.<host>) with
 * `Return-Path:` and `Delivered-To:` in front of the body (LF line endings), fsync'd, hard-
 * linked into new/ (rename where the file system has no hard links), and new/ is fsync'd:
 * only then is the delivery reported done. A Maildir (with any missing parent directories)
 * is created, mode 0700, when it does not exist. Every failure is temporary and leaves no
 * file behind. Runs with the privileges the caller set (the mailbox owner). */
#ifndef POSTERN_LOCAL_MAILDIR_H
#define POSTERN_LOCAL_MAILDIR_H

#include <stddef.h>

#include "local.h"

/* local_maildir_deliver - deliver msg into the Maildir dir (ending in '/'); host names the
 * machine in the file name. 0: delivered, path (if pathlen > 0) gets the file in new/;
 * -1: not delivered, res filled in. res is filled in on success too. */
int local_maildir_deliver(const char *dir, const struct local_msg *msg, const char *host,
                          char *path, size_t pathlen, struct local_result *res);

#endif
