/* map - lookup tables: text files compiled to Berkeley DB hash files.
 *
 * A map's source is a text file of `key value` lines (`#` comments, blank lines ignored,
 * the value is the rest of the line). `postern map build FILE` compiles it to FILE.db,
 * written to a temporary file and renamed, so readers never see half a map. Keys are stored
 * lower-case; lookups lower-case the key. Maps are opened read-only, without a Berkeley DB
 * environment, before a daemon drops privileges. Used by smtpd (recipients), local
 * (mailboxes) and the CLI (building, testing). */
#ifndef POSTERN_MAP_H
#define POSTERN_MAP_H

#include <stddef.h>

struct map;

/* map_open - open SOURCE.db read-only; NULL with the reason in err. */
struct map *map_open(const char *source, char *err, size_t errlen);
void        map_close(struct map **);
/* map_lookup - 1: found, value copied (NUL-terminated) into val; 0: not found; -1: error
 * or value longer than vallen-1 (logged). */
int         map_lookup(struct map *, const char *key, char *val, size_t vallen);
/* map_build - compile SOURCE into SOURCE.db. -1 with "file:line: message" in err. */
int         map_build(const char *source, char *err, size_t errlen);
/* map_build_aliases - newaliases: compile an aliases(5) file SOURCE into SOURCE.db, read with
 * map_open()/map_lookup() like any map (libcommon/resolve uses it as alias_map).
 *   name: target, target, ...     one alias; the key is the name, lower-cased
 *   "name with spaces": target    a quoted name (stored without the quotes)
 *       , more, targets           a line starting with white space continues the alias
 *   # comment                     blank lines and `#` lines are skipped anywhere
 * The value stored is the targets joined with ", " (`a, b, c`). Targets are separated by
 * commas (white space too) outside double quotes; a target is an address, a bare local name
 * (resolve adds the first local domain) or "\name" (deliver to name, do not expand it
 * again). Errors, reported as "file:line: message" with the line where the alias starts
 * (no .db is written): a name with '@' or unquoted white space, a missing ':', an alias
 * without targets, a repeated name, a continuation line with no alias before it, a '#'
 * inside a value, and the targets Postern never delivers to: "|command", "/file",
 * ":include:". */
int         map_build_aliases(const char *source, char *err, size_t errlen);
/* map_walk - call fn(arg, key, value) for every record, in no particular order (key and
 * value are NUL-terminated copies, valid during the call). Stops at fn's first non-zero
 * return and returns it (fn should return a positive number); -1 with the reason in err on
 * a database error. For checking every entry (`postern check`). */
typedef int (*map_walk_fn)(void *arg, const char *key, const char *value);
int         map_walk(struct map *, map_walk_fn fn, void *arg, char *err, size_t errlen);

#endif
