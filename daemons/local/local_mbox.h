/* local_mbox - deliver one message into an mbox file.
 *
 * The file is opened for appending (created, mode 0600, if missing; its directory must
 * exist), locked with fcntl() (waiting up to LOCAL_MBOX_LOCK_WAIT seconds, then a temporary
 * failure), and the message is appended as `From sender date`, `Return-Path:`,
 * `Delivered-To:`, the body with LF line endings and mboxrd `>From ` quoting, and an empty
 * line; then fsync'd. On any failure the file is truncated back to its old size. No dot-lock
 * file is used: mail readers must honour fcntl locks. Runs with the caller's privileges. */
#ifndef POSTERN_LOCAL_MBOX_H
#define POSTERN_LOCAL_MBOX_H

#include "local.h"

#define LOCAL_MBOX_LOCK_WAIT  10

/* local_mbox_deliver - append msg to the mbox file path. 0: delivered; -1: res filled in
 * (res is filled in on success too). */
int local_mbox_deliver(const char *path, const struct local_msg *msg, struct local_result *res);

#endif
