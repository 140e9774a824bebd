/* fuzz_smtp_addr - libFuzzer target for paths and ESMTP parameters.
 *
 * The first byte picks the path flags; the rest is parsed as a MAIL or RCPT argument:
 * path, then parameters. Checks: the end offset lies within the input, an accepted address
 * fits its limits, and an accepted UTF-8 address is valid UTF-8. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - parse one path and its parameters. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_path        p;
    struct smtp_addr_err    err;
    struct smtp_mail_params mp;
    struct smtp_rcpt_params rp;
    const char *s;
    size_t      end, len;
    int         flags;

    if (size == 0)
        return 0;
    flags = data[0] & 0x07;
    s = (const char *)data + 1;
    len = size - 1;
    if (smtp_addr_parse_path(s, len, flags, &p, &end, &err) == 0) {
        size_t alen = strlen(p.addr);
        if (end > len || alen > SMTP_PATH_MAX - 2 || p.local_len > SMTP_LOCAL_MAX
            || strlen(p.domain) > SMTP_DOMAIN_MAX)
            abort();
        if (p.has_utf8 && (!(flags & SMTP_PATH_UTF8) || !smtp_addr_utf8_valid(p.addr, alen)))
            abort();
        if (smtp_addr_parse_mail_params(s + end, len - end, &mp, &err) == 0) {
            if (strlen(mp.envid) > SMTP_ENVID_MAX)
                abort();
        }
        if (smtp_addr_parse_rcpt_params(s + end, len - end, flags & 1, &rp, &err) == 0) {
            for (const char *c = rp.orcpt; *c; c++)
                if ((unsigned char)*c < 32)
                    abort();
        }
    } else if (err.code < 400 || err.code > 599 || err.enh == NULL || err.text == NULL) {
        abort();
    }
    return 0;
}
