/* smtp_auth - SASL PLAIN and LOGIN (RFC 4954, RFC 4616) decoding, no I/O.
 *
 * smtpd feeds the AUTH argument and each continuation line; the module says what to send
 * next (a 334 challenge) or hands back the user name and password to check. Decoded
 * secrets live inside struct smtp_auth and are wiped by smtp_auth_clear(). */
#ifndef POSTERN_SMTP_AUTH_H
#define POSTERN_SMTP_AUTH_H

#include <stddef.h>

#define SMTP_AUTH_MAX 512      /* user or password, bytes */

enum smtp_auth_step {
    SMTP_AUTH_CHALLENGE,       /* send "334 <challenge>" and feed the next line */
    SMTP_AUTH_CHECK,           /* user and password are ready */
    SMTP_AUTH_CANCEL,          /* client sent "*": 501 5.7.0 */
    SMTP_AUTH_SYNTAX,          /* malformed: 501 5.5.2 */
    SMTP_AUTH_UNSUPPORTED,     /* unknown mechanism: 504 5.5.4 */
};

struct smtp_auth {
    int  mech;                 /* 1 PLAIN, 2 LOGIN */
    int  stage;
    char challenge[16];        /* base64 text after "334 " */
    char user[SMTP_AUTH_MAX];
    char password[SMTP_AUTH_MAX];
};

/* smtp_auth_start - the AUTH command's argument ("PLAIN [initial-response]"). */
enum smtp_auth_step smtp_auth_start(struct smtp_auth *, const char *arg);
/* smtp_auth_next - one continuation line from the client (without CRLF). */
enum smtp_auth_step smtp_auth_next(struct smtp_auth *, const char *line);
void                smtp_auth_clear(struct smtp_auth *);
/* smtp_auth_mechanisms - what EHLO advertises after "AUTH ". */
const char         *smtp_auth_mechanisms(void);

#endif
