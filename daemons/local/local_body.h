/* local_body - copy a spool body into a mailbox file.
 *
 * The spool file has CRLF line endings; mailboxes on this system use LF. The copy reads the
 * spool file with pread() from offset 0 (the descriptor's offset is not touched, so a shared
 * descriptor is harmless), turns each CRLF into LF (a lone CR stays), and writes through a
 * buffer. In mbox mode it also quotes every line that matches `^>*From ` with one more `>`
 * (mboxrd) and makes the message end with an empty line. Reading fewer bytes than the
 * envelope says is a temporary failure, like every read or write error. Called by
 * local_maildir and local_mbox with the mailbox owner's privileges. */
#ifndef POSTERN_LOCAL_BODY_H
#define POSTERN_LOCAL_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "local.h"

#define LOCAL_BODY_MBOX  0x1     /* mboxrd From-quoting and a final empty line */

/* local_body_copy - write prefix (headers already in LF form), then the converted body, to
 * out_fd. *written gets the bytes written. 0: done (not yet fsync'd); -1: res filled in. */
int local_body_copy(const struct local_msg *, int out_fd, const char *prefix, int flags,
                    uint64_t *written, struct local_result *res);

/* local_body_header_value - a copy (to free) of an address for a header line, with control
 * characters (CR, LF, ...) replaced by '?' so that no envelope value can add a header line. */
char *local_body_header_value(const char *in);

#endif
