/* rules - PCRE2 tables: files of `/pattern/flags value` lines, first match wins.
 *
 * The syntax is Postfix's pcre_table(5), so existing header_checks and access files work:
 *   /pattern/flags value      the value (e.g. "REJECT spam") of the first rule that matches
 *   !/pattern/flags value     ... that does NOT match
 *   if /pattern/flags         the rules up to the matching `endif` are tried only when the
 *   endif                     pattern matches (nesting bounded by RULES_NEST_MAX)
 *   # comment, blank lines; a line starting with white space continues the previous one.
 * As in Postfix, matching is case-insensitive by default and the `i` flag toggles it to
 * case-sensitive; other flags: m (multi-line), s (dot matches newline), x (extended),
 * A (anchored), E (dollar at the very end only), U (ungreedy). Any non-alphanumeric
 * character other than backslash and white space may delimit the pattern instead of `/`.
 * A value is not expanded: `$1` stays as written (no template language over peer data).
 *
 * Every pattern is compiled once at load (JIT where the CPU allows) and every match runs
 * under match and heap limits: a catastrophic pattern (e.g. /(a+)+$/ on a long line) stops
 * at the limit, logs a warning naming file:line, and counts as not matching; the caller
 * goes on. An error at load is "file:line: message", for a pattern with the PCRE2 message
 * and the error offset ("file:3: pattern error at offset 5: missing closing parenthesis").
 * One table is used by one thread at a time (it owns its match data). Used by libcommon's
 * policy (pcre: access tables) and content (header_checks, body_checks), smtpd and the
 * CLI (`postern check`, `postern map test`). */
#ifndef POSTERN_RULES_H
#define POSTERN_RULES_H

#include <stddef.h>
#include <stdint.h>

#define RULES_VALUE_MAX 1024          /* octets of a value */
#define RULES_NEST_MAX  16            /* if/endif depth */
#define RULES_HEAP_LIMIT_KB 20480     /* PCRE2 heap per match (non-JIT backtracking) */

struct rules;

struct rules_hit {
    const char *value;                /* the rule's value (valid until rules_free) */
    const char *file;                 /* the table's path */
    int         line;                 /* the rule's line (where it starts) */
};

/* rules_load - read and compile path. match_limit: PCRE2 match limit per match (the
 * pcre_match_limit setting). NULL with "file:line: message" in err. */
struct rules *rules_load(const char *path, uint32_t match_limit, char *err, size_t errlen);
void          rules_free(struct rules **);
const char   *rules_path(const struct rules *);
size_t        rules_count(const struct rules *);    /* rules loaded (if/endif excluded) */

/* rules_match - the first rule whose pattern matches (or, for !/.../, does not match)
 * subject[0, len) (not NUL-terminated; may contain any octet). 1: *hit filled; 0: none.
 * A rule that runs into the match limit is logged as a warning with logctx (a queue ID or
 * a client, "" for none) and file:line, counted in *limit_hits (may be NULL), and skipped. */
int rules_match(struct rules *, const char *subject, size_t len, const char *logctx,
                struct rules_hit *hit, unsigned *limit_hits);

/* rules_match_next - rules_match starting at *pos (0: the first rule). On a hit *pos moves
 * past that rule, so the next call goes on with the rules after it (policy uses this to go
 * on after a WARN). */
int rules_match_next(struct rules *, size_t *pos, const char *subject, size_t len,
                     const char *logctx, struct rules_hit *hit, unsigned *limit_hits);

/* rules_walk - call fn with every rule's value, file and line in file order (`if` lines are
 * not rules); stops at fn's first non-zero return and returns it, else 0. For validation. */
typedef int (*rules_walk_fn)(void *arg, const struct rules_hit *);
int rules_walk(const struct rules *, rules_walk_fn fn, void *arg);

#endif
