/* content - header_checks and body_checks over a message as it streams in.
 *
 * Feed it the message as libsmtp/smtp_data stores it (CRLF lines, dots unstuffed, cut
 * anywhere); it appends the message to the caller's buffer, rewritten where a rule says
 * REPLACE, PREPEND or IGNORE, and keeps a verdict. It follows the MIME structure
 * (libcommon/mime): the primary header section and the header sections of every MIME part
 * and attached message/rfc822 are split into logical headers (a header with its
 * continuation lines, at most the header_max octets); each is matched unfolded (CRLF
 * before white space removed) against header_checks, or for MIME part and attached
 * headers against mime_header_checks when that is set. Every other line is a body line,
 * matched (without its CRLF) against body_checks until body_checks_size_limit octets of
 * the current part's body have been inspected; the rest of that part is passed unmatched.
 * A header that is not changed is written exactly as received (folding kept).
 *
 * Actions: REJECT and DISCARD end inspection (the rest is passed through, unmatched);
 * HOLD is kept and inspection goes on (a later REJECT or DISCARD wins); WARN is logged;
 * REPLACE writes its text instead of the header or line, PREPEND writes its text before
 * it, IGNORE drops it; OK and DUNNO do nothing. DEFER is a temporary reject. Every action
 * but OK/DUNNO is reported through the log callback, for the caller's log with its queue
 * ID. No I/O. Used by smtpd (DATA) and the CLI (`postern map test`). */
#ifndef POSTERN_CONTENT_H
#define POSTERN_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "policy.h"
#include "rules.h"

struct content_rules {
    struct rules *header;             /* header_checks, NULL: none */
    struct rules *mime_header;        /* mime_header_checks, NULL: header_checks apply */
    struct rules *body;               /* body_checks, NULL: none */
    uint64_t      body_size_limit;    /* octets per part inspected by body_checks */
    size_t        header_max;         /* octets of one logical header kept for matching */
};

/* Where a line was when a rule applied. */
enum content_part {
    CONTENT_HEADER = 0,               /* primary message header */
    CONTENT_MIME_HEADER,              /* a MIME part's or attached message's header */
    CONTENT_BODY,
};

/* content_log_fn - an action applied: what (header or body), the rule's action (with
 * where = "pcre:file:line"), and the subject it matched (unfolded, cut to a loggable
 * length, not NUL-safe: len octets). */
typedef void (*content_log_fn)(void *arg, enum content_part what,
                               const struct policy_action *, const char *subject,
                               size_t len);

struct content_verdict {
    enum policy_kind     kind;        /* NONE, REJECT, DEFER, DISCARD or HOLD */
    struct policy_action action;      /* the rule that decided (kind != NONE) */
    unsigned             warnings;    /* WARN actions */
    unsigned             changes;     /* REPLACE, PREPEND, IGNORE actions */
    unsigned             limit_hits;  /* matches stopped by pcre_match_limit */
};

/* The three settings that name content rule files, in this order everywhere. */
enum content_set {
    CONTENT_SET_HEADER = 0,           /* header_checks */
    CONTENT_SET_MIME_HEADER,          /* mime_header_checks */
    CONTENT_SET_BODY,                 /* body_checks */
};
#define CONTENT_SETS 3

struct config;

/* content_set_key - the setting's name: smtpd, `postern check`, `postern map test` and
 * master's file watch all read it here. */
const char     *content_set_key(enum content_set);
/* content_rules_slot - where a set's rules go in r. */
struct rules  **content_rules_slot(struct content_rules *r, enum content_set);
/* content_set_path - the file the setting names: nothing (0, *path NULL) or exactly one
 * pcre: table, relative paths taken from the configuration directory (0, *path malloc'd).
 * -1 with "setting: reason" in err. */
int             content_set_path(const struct config *, enum content_set, char **path,
                                 char *err, size_t errlen);

struct content;

/* content_action_parse - a rule's value as content applies it: -1 with the reason in err
 * when it cannot apply (not a content action; REPLACE or PREPEND without text or with a
 * line break; in a header rule (header != 0) a REPLACE or PREPEND text that is not a
 * "Name: value" header). content skips such a rule with a warning; `postern check`
 * refuses it. */
int content_action_parse(const char *value, int header, struct policy_action *, char *err,
                         size_t errlen);

/* content_new - rules stay the caller's and must outlive the content. */
struct content *content_new(const struct content_rules *, content_log_fn, void *log_arg);
void            content_free(struct content **);
/* content_any - 1 if any rules are set (else the caller can skip content entirely). */
int             content_any(const struct content_rules *);

/* content_begin - ready for a new message; logctx (a queue ID) is copied for warnings. */
void content_begin(struct content *, const char *logctx);
/* content_feed - data[0, len) of the message; the output is appended to out. */
void content_feed(struct content *, const char *data, size_t len, struct buf *out);
/* content_end - the message is complete: flush what is held (a last header or a line
 * without CRLF) to out. */
void content_end(struct content *, struct buf *out);
const struct content_verdict *content_verdict(const struct content *);

#endif
