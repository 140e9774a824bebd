/* config - postern.conf: parse, validate, defaults.
 *
 * The file is `name = value` lines with whole-line `#` comments; a line that starts with
 * white space continues the previous one (as in Postfix's main.cf). Sizes take k/M/G
 * suffixes (1024-based, an optional B), times take ms/s/m/h/d/w (default unit seconds),
 * booleans yes/no/true/false/on/off/1/0, lists are separated by spaces or commas. Every
 * key, its type and its default live in one table in config.c, which conf/postern.conf
 * documents. An unknown key, a repeated key or a bad value is an error reported as
 * "file:line: message". Relative paths are relative to the configuration directory.
 * Used by every program; the CLI's `check` calls config_load() and prints its error. */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_FILE "postern.conf"

struct config;

/* config_dir_from - the configuration directory: the -c argument if given, else
 * $POSTERN_CONFIG, else the compiled-in default (/etc/postern). */
const char    *config_dir_from(const char *arg);

/* config_load - read DIR/postern.conf. Returns NULL with "file:line: message" in err. */
struct config *config_load(const char *dir, char *err, size_t errlen);
void           config_free(struct config **);

const char    *config_dir(const struct config *);
const char    *config_str(const struct config *, const char *key);   /* never NULL */
/* config_path - the value as an absolute path (relative to the config dir); "" stays "". */
const char    *config_path(const struct config *, const char *key);
long long      config_int(const struct config *, const char *key);
uint64_t       config_size(const struct config *, const char *key);  /* bytes */
uint64_t       config_time_ms(const struct config *, const char *key);
int            config_bool(const struct config *, const char *key);
/* config_list - the list's items; *n gets the count. The array ends with NULL. */
char *const   *config_list(const struct config *, const char *key, size_t *n);

/* Value parsers, exported for the unit tests and for the CLI. -1: malformed. */
int config_parse_size(const char *s, uint64_t *out);
int config_parse_time_ms(const char *s, uint64_t *out);
int config_parse_bool(const char *s, int *out);

/* config_dump - print every key with its effective value (postern check -v). */
void config_dump(const struct config *, void (*emit)(const char *key, const char *value,
                                                      void *arg), void *arg);

#endif
