/* pwhash - password hashes for SMTP AUTH, over libxcrypt.
 *
 * crypt_rn() with a struct crypt_data on the heap (it is about 32 KB), wiped after use
 * since it holds the password. The comparison is constant-time. */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pwhash.h"

int
pwhash_acceptable(const char *hash)
{
    return strncmp(hash, "$y$", 3) == 0 || strncmp(hash, "$6$", 3) == 0;
}

int
pwhash_make(const char *password, char out[PWHASH_MAX])
{
    char               salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd;
    int                rc = -1;

    if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
        return -1;
    cd = xcalloc(1, sizeof(*cd));
    if (crypt_rn(password, salt, cd, sizeof(*cd)) != NULL && cd->output[0] != '*' &&
        strlen(cd->output) < PWHASH_MAX) {
        strcpy(out, cd->output);
        rc = 0;
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return rc;
}

/* pwhash_equal - compare without leaking where the first difference is. */
static int
pwhash_equal(const char *a, const char *b)
{
    size_t        la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);

    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

int
pwhash_check(const char *password, const char *hash)
{
    struct crypt_data *cd;
    int                ok = 0;

    if (!pwhash_acceptable(hash))
        return 0;
    cd = xcalloc(1, sizeof(*cd));
    if (crypt_rn(password, hash, cd, sizeof(*cd)) != NULL && cd->output[0] != '*')
        ok = pwhash_equal(cd->output, hash);
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return ok;
}
