/* policy - what a table says to do, and the access tables smtpd consults.
 *
 * An action is a table value: OK, DUNNO, REJECT [text], DEFER [text], HOLD [text],
 * DISCARD [text], WARN [text], "4NN [text]" / "5NN [text]" (access tables), and for
 * content rules also REPLACE text, PREPEND text, IGNORE. Keywords are case-insensitive.
 * A text that starts with an enhanced status code ("5.7.1 go away") sets the reply's code;
 * otherwise REJECT is 550 5.7.1 and DEFER 450 4.7.1. text is "" when the value has none:
 * the caller then says what was refused ("Client host rejected: Access denied").
 *
 * Access tables are a list of specs, each `type:path`: `hash:` (a text map built with
 * `postern map build`, read from path.db; a bare path means hash), `cidr:` (text lines
 * `network value`, first match wins, read at open) or `pcre:` (libcommon/rules). Relative
 * paths are relative to the configuration directory. policy_access_check() tries the
 * tables in order; in each table it tries the lookup keys below in order and the first key
 * found is that table's answer:
 *   POLICY_CLIENT     hash: the name, its parent domains (`example.com` matches every
 *                     subdomain too), then the address and its networks by octets
 *                     (1.2.3.4, 1.2.3, 1.2, 1; IPv6 by 16-bit groups); cidr: the address;
 *                     pcre: the name, then the address. The name "unknown" is not looked up.
 *   POLICY_HELO       hash: the name and its parent domains; pcre: the name as given.
 *   POLICY_SENDER, POLICY_RECIPIENT
 *                     hash: user@domain, domain, its parent domains, user@; pcre: the
 *                     address. The null sender is looked up as smtpd_null_access_lookup_key.
 * DUNNO ends the search in that table (the next table is tried); WARN is reported through
 * the warn callback and the search goes on (with the next key or entry of the same table,
 * for pcre the rules after the WARN rule, then the next tables); any other action is the
 * answer. Parent domains are looked up as `example.com` only (never `.example.com`), down
 * to the top-level label; an address literal HELO (`[192.0.2.1]`) is looked up as given.
 * IPv6 networks are the address's first 7..1 groups, uncompressed without leading zeros
 * (`2001:db8:0:0:0:0:0` .. `2001`). cidr: and pcre: values are checked at open; a hash value
 * that is not an action is logged and answered DEFER 451 4.3.5 "Server configuration
 * error". Used by smtpd (at connect, HELO, MAIL and RCPT) and the CLI (`postern map test`,
 * `postern check`). */
#ifndef POSTERN_POLICY_H
#define POSTERN_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define POLICY_TEXT_MAX  512
#define POLICY_WHERE_MAX 600

enum policy_kind {
    POLICY_NONE = 0,                  /* no rule or table entry applied */
    POLICY_DUNNO,
    POLICY_OK,
    POLICY_REJECT,                    /* code 5xx */
    POLICY_DEFER,                     /* code 4xx */
    POLICY_HOLD,
    POLICY_DISCARD,
    POLICY_WARN,
    POLICY_REPLACE,                   /* content rules only */
    POLICY_PREPEND,
    POLICY_IGNORE,
};

/* Which actions a table may hold (policy_action_parse's allowed mask). */
#define POLICY_BIT(k)    (1u << (k))
#define POLICY_ACCESS    (POLICY_BIT(POLICY_DUNNO) | POLICY_BIT(POLICY_OK)                \
                          | POLICY_BIT(POLICY_REJECT) | POLICY_BIT(POLICY_DEFER)          \
                          | POLICY_BIT(POLICY_HOLD) | POLICY_BIT(POLICY_DISCARD)          \
                          | POLICY_BIT(POLICY_WARN))
#define POLICY_CONTENT   (POLICY_BIT(POLICY_DUNNO) | POLICY_BIT(POLICY_OK)                \
                          | POLICY_BIT(POLICY_REJECT) | POLICY_BIT(POLICY_DEFER)          \
                          | POLICY_BIT(POLICY_HOLD) | POLICY_BIT(POLICY_DISCARD)          \
                          | POLICY_BIT(POLICY_WARN) | POLICY_BIT(POLICY_REPLACE)          \
                          | POLICY_BIT(POLICY_PREPEND) | POLICY_BIT(POLICY_IGNORE))

struct policy_action {
    enum policy_kind kind;
    int              code;            /* REJECT/DEFER: the SMTP reply code */
    char             enh[16];         /* REJECT/DEFER: enhanced status code, e.g. "5.7.1" */
    char             text[POLICY_TEXT_MAX];   /* reply or log text; REPLACE/PREPEND: the
                                               * new line (no CRLF); "" if none */
    char             where[POLICY_WHERE_MAX]; /* what decided: "pcre:/etc/postern/hc:4" or
                                               * "hash:/etc/postern/access[example.com]" */
};

/* policy_kind_name - "REJECT", "OK", ... ("NONE"). */
const char *policy_kind_name(enum policy_kind);

/* policy_action_parse - a table value as an action; -1 with a message in err if the value
 * is not an action or its kind is not in allowed (POLICY_ACCESS, POLICY_CONTENT). A
 * numeric value must be 4NN or 5NN. where is left empty. */
int policy_action_parse(const char *value, unsigned allowed, struct policy_action *,
                        char *err, size_t errlen);

enum policy_stage {
    POLICY_CLIENT = 0,
    POLICY_HELO,
    POLICY_SENDER,
    POLICY_RECIPIENT,
};
#define POLICY_STAGES 4
const char *policy_stage_name(enum policy_stage);   /* "client", "helo", ... */
/* policy_stage_key - the setting that names a stage's tables ("smtpd_client_access"...):
 * smtpd, `postern check`, `postern map test` and master's file watch all read it here. */
const char *policy_stage_key(enum policy_stage);

struct policy_tables;

/* policy_tables_open - open every spec (before a chroot). confdir makes relative paths
 * absolute; null_key is smtpd_null_access_lookup_key. NULL with "spec: message" or
 * "file:line: message" in err. n == 0 gives an empty list (every check says NONE). */
struct policy_tables *policy_tables_open(char *const *specs, size_t n, const char *confdir,
                                         uint32_t match_limit, const char *null_key,
                                         char *err, size_t errlen);
void   policy_tables_free(struct policy_tables **);
size_t policy_tables_count(const struct policy_tables *);

/* policy_tables_validate - check every entry of every table (each value parses as an
 * access action; cidr networks parse): for `postern check`. -1 with "file:line: message"
 * (hash tables: "file: key KEY: message") in err. */
int policy_tables_validate(struct policy_tables *, char *err, size_t errlen);

/* policy_spec_file - the file a table spec reads (path.db for hash:, the path itself for
 * cidr: and pcre:, made absolute with confdir), xmalloc'd; NULL if the spec does not parse.
 * For master, which watches these files for changes. */
char *policy_spec_file(const char *spec, const char *confdir);

typedef void (*policy_warn_fn)(void *arg, const struct policy_action *);

/* policy_access_check - the stage's lookups. For POLICY_CLIENT key is the client name
 * ("unknown" if none) and addr its address; for the others key is the HELO name or the
 * address (sender "" = null sender) and addr is NULL. Returns the action's kind (out
 * filled, with where) or POLICY_NONE. logctx prefixes warnings (match limits). A table
 * that fails to answer (I/O error) is logged and skipped. */
enum policy_kind policy_access_check(struct policy_tables *, enum policy_stage,
                                     const char *key, const char *addr, const char *logctx,
                                     policy_warn_fn warn, void *warn_arg,
                                     struct policy_action *out);

#endif
