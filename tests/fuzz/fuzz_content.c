/* fuzz_content - libFuzzer target for content inspection (libcommon/content and mime).
 *
 * A few rules of every action kind (one catastrophic pattern among them) are written to a
 * temporary directory once, loaded, and the files removed. Each input is inspected whole,
 * then again in chunks whose sizes come from its first bytes; both runs must give the same
 * output and verdict, and when no rule changed anything the output must be the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "content.h"
#include "log.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct content_rules fuzz_rules;

/* fuzz_load - write text to dir/name, load it as rules, remove the file. */
static struct rules *
fuzz_load(const char *dir, const char *name, const char *text)
{
    char          path[512], err[512];
    FILE         *fp;
    struct rules *r;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) == EOF || fclose(fp) != 0)
        abort();
    r = rules_load(path, 10000, err, sizeof(err));
    unlink(path);
    if (r == NULL) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    return r;
}

/* fuzz_init - the rules, once. */
static void
fuzz_init(void)
{
    char dir[] = "/tmp/fuzz_content.XXXXXX";

    log_init("fuzz_content", 1);
    log_set_level(LOG_LVL_ERR);       /* match-limit warnings are expected */
    if (mkdtemp(dir) == NULL)
        abort();
    fuzz_rules.header = fuzz_load(dir, "header.pcre",
        "/^Subject:.*\\bspam\\b/ REJECT 5.7.1 spam\n"
        "/^X-Drop:/ IGNORE\n"
        "/^X-Rep:/ REPLACE X-Rep: replaced\n"
        "/^X-Pre:/ PREPEND X-Pre-Added: 1\n"
        "/^X-W:/ WARN w\n"
        "/^X-H:/ HOLD h\n");
    fuzz_rules.mime_header = fuzz_load(dir, "mime.pcre",
        "/name=.*\\.exe/ DISCARD exe\n"
        "/^Content-Type:/ WARN ct\n"
        "/^X-Rep:/ REPLACE X-Rep: part\n");
    fuzz_rules.body = fuzz_load(dir, "body.pcre",
        "/^(a+)+$/ WARN catastrophic\n"
        "/^drop/ IGNORE\n"
        "/^rep/ REPLACE replaced\n"
        "/^pre/ PREPEND prepended\n"
        "/^defer$/ DEFER 4.7.1 later\n"
        "/^hold/ HOLD h\n");
    fuzz_rules.body_size_limit = 300;
    fuzz_rules.header_max = 200;
    rmdir(dir);
}

/* fuzz_run - inspect in[0, len) in chunks (cuts from the seed bytes; none: whole). */
static void
fuzz_run(struct content *c, const char *in, size_t len, const uint8_t *seed, size_t nseed,
         struct buf *out)
{
    size_t pos = 0, k = 0;

    content_begin(c, "FUZZ");
    while (pos < len) {
        size_t n = nseed == 0 ? len - pos : (size_t)seed[k++ % nseed] * 7 % 1100 + 1;

        if (n > len - pos)
            n = len - pos;
        content_feed(c, in + pos, n, out);
        pos += n;
    }
    content_end(c, out);
}

/* LLVMFuzzerTestOneInput - inspect whole and chunked, compare. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct content *c1, *c2;
    struct content_verdict v1, v2;
    struct buf             o1, o2;
    size_t                 nseed;

    if (c1 == NULL) {
        fuzz_init();
        c1 = content_new(&fuzz_rules, NULL, NULL);
        c2 = content_new(&fuzz_rules, NULL, NULL);
    }
    if (size == 0)
        return 0;
    nseed = data[0] % 8 + 1;
    if (nseed >= size)
        nseed = size - 1;
    buf_init(&o1, 256);
    buf_init(&o2, 256);
    fuzz_run(c1, (const char *)data + 1, size - 1, NULL, 0, &o1);
    fuzz_run(c2, (const char *)data + 1, size - 1, data + 1, nseed, &o2);
    v1 = *content_verdict(c1);
    v2 = *content_verdict(c2);
    if (o1.len != o2.len || memcmp(o1.data, o2.data, o1.len) != 0 || v1.kind != v2.kind
        || v1.warnings != v2.warnings || v1.changes != v2.changes
        || strcmp(v1.action.text, v2.action.text) != 0)
        abort();
    if (v1.changes == 0 && (o1.len != size - 1 || memcmp(o1.data, data + 1, o1.len) != 0))
        abort();
    buf_release(&o1);
    buf_release(&o2);
    return 0;
}
