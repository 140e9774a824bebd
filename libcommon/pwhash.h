/* pwhash - password hashes for SMTP AUTH: make them, check them.
 *
 * Hashes are crypt(3) strings from libxcrypt: yescrypt ($y$) for new ones; SHA-512 ($6$)
 * and yescrypt are accepted when checking. Anything else (DES, MD5, plaintext) is refused
 * outright, so a weak map entry cannot quietly work. Used by smtpd (check) and the CLI
 * (`postern passwd`). Callers wipe the passwords they hold. */
#ifndef POSTERN_PWHASH_H
#define POSTERN_PWHASH_H

#include <stddef.h>

#define PWHASH_MAX 384

/* pwhash_make - hash password with a fresh random salt into out; -1 on failure. */
int pwhash_make(const char *password, char out[PWHASH_MAX]);
/* pwhash_check - 1: the password matches; 0: it does not, or the hash is of a refused kind. */
int pwhash_check(const char *password, const char *hash);
/* pwhash_acceptable - 1 if the hash is a kind pwhash_check() accepts. */
int pwhash_acceptable(const char *hash);

#endif
