/* base64 - RFC 4648 base64, strict on decode (SMTP AUTH, MIME later). */
#ifndef POSTERN_BASE64_H
#define POSTERN_BASE64_H

#include <stddef.h>

/* base64_encode - out needs 4 * ((len + 2) / 3) + 1 bytes; returns the length written. */
size_t base64_encode(const void *in, size_t len, char *out);
/* base64_decode - strict: padding required, no white space or stray characters. Returns
 * the decoded length, or -1; out needs 3 * (strlen(in) / 4) bytes. */
long   base64_decode(const char *in, unsigned char *out, size_t outlen);

#endif
