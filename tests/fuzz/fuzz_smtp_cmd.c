/* fuzz_smtp_cmd - libFuzzer target for the command-line splitter and parser.
 *
 * The input is fed to smtp_cmd_getline() in chunks whose sizes come from the first byte, and
 * every line found is parsed; the invariants are checked with abort() so the fuzzer reports
 * them: consumed never exceeds the input, a line is within the 512-octet limit, and the
 * parsed argument lies inside the line. Build: see tests/fuzz/README or `make fuzz`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - split and parse the input. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_line l;
    char             pending[4096];
    size_t           plen = 0, pos = 1, chunk, skip, linelen, consumed;

    if (size == 0)
        return 0;
    chunk = (size_t)data[0] % 64 + 1;
    smtp_cmd_line_init(&l);
    while (pos < size) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        if (n > sizeof(pending) - plen)
            n = sizeof(pending) - plen;
        memcpy(pending + plen, data + pos, n);
        plen += n;
        pos += n;
        for (;;) {
            enum smtp_line_status st = smtp_cmd_getline(&l, pending, plen, &skip, &linelen,
                                                        &consumed);
            if (consumed > plen)
                abort();
            if (st == SMTP_LINE_OK) {
                struct smtp_cmd cmd;
                if (skip + linelen + 2 > consumed || linelen + 2 > SMTP_CMD_LINE_MAX)
                    abort();
                if (smtp_cmd_parse(pending + skip, linelen, &cmd) == SMTP_CMD_OK) {
                    const char *line = pending + skip;
                    if (cmd.arg < line || cmd.arg + cmd.arglen > line + linelen)
                        abort();
                    (void)smtp_cmd_name(cmd.verb);
                }
            }
            memmove(pending, pending + consumed, plen - consumed);
            plen -= consumed;
            if (st == SMTP_LINE_MORE)
                break;
        }
        if (plen >= SMTP_CMD_LINE_MAX)
            abort();                  /* the splitter must never let a line grow past 512 */
    }
    return 0;
}
