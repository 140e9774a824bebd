/* resolve_test - unit tests for libcommon/resolve: virtual aliases, local aliases, classes.
 *
 * Each test writes a postern.conf and the three maps (virtual, aliases, mailboxes) into a
 * fresh temporary directory, builds them with map_build()/map_build_aliases(), opens them
 * with resolve_open() and checks what resolve_rcpt() returns. The directory is removed. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "resolve.h"
#include "test.h"

static char test_dir[256];

/* The standard maps: a.test and a2.test are local, r.test is a relay domain. */
static const char resolve_test_conf[] =
    "local_domains = a.test, A2.Test.\n"
    "relay_domains = r.test\n"
    "virtual_alias_map = virtual\n"
    "alias_map = aliases\n"
    "mailbox_map = mailboxes\n";

static const char resolve_test_mailboxes[] =
    "alice@a.test /m/alice/\n"
    "bob@a.test /m/bob/\n"
    "carol@a2.test /m/carol/\n"
    "postmaster@a.test /m/pm/\n"
    "@a2.test /m/a2-catchall/\n";

static const char resolve_test_virtual[] =
    "info@a.test alice@a.test, bob@c.test\n"
    "Sales@A.Test Bob@A.test\n"
    "@catch.test alice@a.test\n"
    "exact@catch.test bob@a.test\n"
    "@old.test @a.test\n"
    "self@a.test self@a.test, alice@a.test\n"
    "loop1@a.test loop2@a.test\n"
    "loop2@a.test loop3@a.test\n"
    "loop3@a.test loop1@a.test\n"
    "list@a.test alice@a.test sub@a.test\n"
    "sub@a.test alice@a.test, bob@a.test\n"
    "mixed@a.test alice@a.test, ghost@a.test\n"
    "ghosts@a.test ghost@a.test, ghost2@a.test\n"
    "team@v.test alice@a.test, <bob@a.test>\n"
    "pipe@a.test |/bin/sh\n"
    "bare@a.test bob\n"
    "remote@a.test x@elsewhere.test, y@r.test\n";

static const char resolve_test_aliases[] =
    "# local aliases\n"
    "postmaster: alice@a.test\n"
    "root: alice\n"
    "staff: team@v.test\n"
    "me: \\alice, bob\n"
    "alice: \\alice\n"
    "\"quoted name\": bob\n";

/* resolve_test_rm - remove test_dir and its files. */
static void
resolve_test_rm(void)
{
    DIR           *d = opendir(test_dir);
    struct dirent *e;
    char           p[512];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", test_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(test_dir);
}

/* resolve_test_file - write text to test_dir/name. */
static void
resolve_test_file(const char *name, const char *text)
{
    char  path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    if ((fp = fopen(path, "w")) == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, fp);
    fclose(fp);
}

/* resolve_test_build - build test_dir/name with the map builder (aliases: 1 for aliases(5)). */
static void
resolve_test_build(const char *name, int aliases)
{
    char path[512], err[512] = "";
    int  rc;

    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    rc = aliases ? map_build_aliases(path, err, sizeof(err)) : map_build(path, err, sizeof(err));
    if (rc == -1) {
        fprintf(stderr, "  building %s: %s\n", path, err);
        exit(2);
    }
}

/* resolve_test_open - a directory with conf and maps (NULL: empty), and the resolver.
 * cfgp gets the config (freed by resolve_test_close). */
static struct resolve *
resolve_test_open(const char *conf, const char *virtual, const char *aliases,
                  const char *mailboxes, struct config **cfgp)
{
    const char     *t = getenv("TMPDIR");
    char            err[512] = "";
    struct resolve *r;

    snprintf(test_dir, sizeof(test_dir), "%s/resolve_test.XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(test_dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    /* A map the test does not need is built empty (the standard conf names all three). */
    resolve_test_file(CONFIG_FILE, conf);
    resolve_test_file("virtual", virtual ? virtual : "");
    resolve_test_build("virtual", 0);
    resolve_test_file("aliases", aliases ? aliases : "");
    resolve_test_build("aliases", 1);
    resolve_test_file("mailboxes", mailboxes ? mailboxes : "");
    resolve_test_build("mailboxes", 0);
    if ((*cfgp = config_load(test_dir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "  config_load: %s\n", err);
        exit(2);
    }
    r = resolve_open(*cfgp, err, sizeof(err));
    if (r == NULL)
        fprintf(stderr, "  resolve_open: %s\n", err);
    return r;
}

/* resolve_test_std - the standard configuration and maps. */
static struct resolve *
resolve_test_std(struct config **cfgp)
{
    return resolve_test_open(resolve_test_conf, resolve_test_virtual, resolve_test_aliases,
                             resolve_test_mailboxes, cfgp);
}

/* resolve_test_close - close, free the config, remove the directory. */
static void
resolve_test_close(struct resolve **r, struct config **cfg, struct resolve_list *l)
{
    resolve_close(r);
    config_free(cfg);
    if (l != NULL)
        resolve_list_free(l);
    resolve_test_rm();
}

/* resolve_test_has - the entry for address (exact string) in l, or NULL. */
static const struct resolve_rcpt *
resolve_test_has(const struct resolve_list *l, const char *address)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->rcpt[i].address, address) == 0)
            return &l->rcpt[i];
    return NULL;
}

/* Table: one address, the finals it must resolve to ("addr/class/known" joined by spaces,
 * in order), or the reply code and enhanced status it must fail with. */
struct resolve_test_case {
    const char *address;
    const char *finals;         /* NULL: must fail */
    int         code;
    const char *enh;
};

static const struct resolve_test_case resolve_test_cases[] = {
    /* plain addresses and classes */
    { "alice@a.test", "alice@a.test/local/1", 0, NULL },
    { "Alice@A.TEST", "Alice@a.test/local/1", 0, NULL },        /* local part as given */
    { "carol@A2.test.", "carol@a2.test/local/1", 0, NULL },     /* trailing dot, 2nd domain */
    { "anyone@a2.test", "anyone@a2.test/local/1", 0, NULL },    /* mailbox catch-all */
    { "nobody@a.test", NULL, 550, "5.1.1" },
    { "x@R.test", "x@r.test/relay/1", 0, NULL },
    { "X@Elsewhere.Test", "X@elsewhere.test/remote/1", 0, NULL },
    /* virtual aliases */
    { "info@a.test", "alice@a.test/local/1 bob@c.test/remote/1", 0, NULL },
    { "sales@a.test", "Bob@a.test/local/1", 0, NULL },          /* keys without case */
    { "who@catch.test", "alice@a.test/local/1", 0, NULL },      /* @domain catch-all */
    { "exact@catch.test", "bob@a.test/local/1", 0, NULL },      /* exact key wins */
    { "Alice@old.test", "Alice@a.test/local/1", 0, NULL },      /* domain rewrite */
    { "self@a.test", "self@a.test/local/0 alice@a.test/local/1", 0, NULL },
    { "loop1@a.test", NULL, 550, "5.4.6" },
    { "list@a.test", "alice@a.test/local/1 bob@a.test/local/1", 0, NULL },
    { "mixed@a.test", "alice@a.test/local/1 ghost@a.test/local/0", 0, NULL },
    { "ghosts@a.test", NULL, 550, "5.1.1" },
    { "pipe@a.test", NULL, 451, "4.3.5" },
    { "bare@a.test", "bob@a.test/local/1", 0, NULL },           /* first local domain */
    { "remote@a.test", "x@elsewhere.test/remote/1 y@r.test/relay/1", 0, NULL },
    /* local aliases: keyed by local part, in every local domain only */
    { "postmaster@a.test", "alice@a.test/local/1", 0, NULL },
    { "postmaster", "alice@a.test/local/1", 0, NULL },          /* RFC 5321 <postmaster> */
    { "root@a.test", "alice@a.test/local/1", 0, NULL },
    { "ROOT@a2.test", "alice@a.test/local/1", 0, NULL },
    { "root@elsewhere.test", "root@elsewhere.test/remote/1", 0, NULL },
    { "staff@a.test", "alice@a.test/local/1 bob@a.test/local/1", 0, NULL },  /* -> virtual */
    { "me@a.test", "alice@a.test/local/1 bob@a.test/local/1", 0, NULL },
    { "\"quoted name\"@a.test", "bob@a.test/local/1", 0, NULL },
    /* no recipient_delimiter: an extension is part of the name */
    { "alice+tag@a.test", NULL, 550, "5.1.1" },
    /* malformed */
    { "", NULL, 553, "5.1.3" },
    { "@a.test", NULL, 553, "5.1.3" },
    { "x@", NULL, 553, "5.1.3" },
    { "x@.", NULL, 553, "5.1.3" },
    { "a\tb@a.test", NULL, 553, "5.1.3" },
};

/* resolve_test_format - the list as the table writes it. */
static void
resolve_test_format(const struct resolve_list *l, char *out, size_t outlen)
{
    size_t off = 0;

    out[0] = '\0';
    for (size_t i = 0; i < l->n && off < outlen; i++)
        off += (size_t)snprintf(out + off, outlen - off, "%s%s/%s/%d", i ? " " : "",
                                l->rcpt[i].address, resolve_class_name(l->rcpt[i].cls),
                                l->rcpt[i].known);
}

/* resolve_test_run - resolve every case of a table with r and check the result. */
static void
resolve_test_run(struct resolve *r, const struct resolve_test_case *cases, size_t n)
{
    struct resolve_list l;
    struct resolve_err  err;
    char                got[2048];

    for (size_t i = 0; i < n; i++) {
        int rc;

        resolve_list_init(&l);
        rc = resolve_rcpt(r, cases[i].address, &l, &err);
        if (cases[i].finals != NULL) {
            resolve_test_format(&l, got, sizeof(got));
            if (rc != 0)
                fprintf(stderr, "  <%s>: %d %s %s\n", cases[i].address, err.code, err.enh,
                        err.text);
            CHECK(rc == 0);
            CHECK_STR(got, cases[i].finals);
            for (size_t j = 0; j < l.n; j++) {
                CHECK_STR(l.rcpt[j].original, cases[i].address);
                CHECK(l.rcpt[j].domain == strrchr(l.rcpt[j].address, '@') + 1);
            }
        } else {
            if (rc != -1 || err.code != cases[i].code)
                fprintf(stderr, "  <%s>: rc %d, got %d %s %s\n", cases[i].address, rc,
                        err.code, err.enh, err.text);
            CHECK(rc == -1);
            CHECK(err.code == cases[i].code);
            CHECK_STR(err.enh, cases[i].enh);
            CHECK(l.n == 0);
        }
        resolve_list_free(&l);
    }
}

/* test_resolve_table - every address in the table resolves as written, one list each. */
static void
test_resolve_table(void)
{
    struct config  *cfg;
    struct resolve *r = resolve_test_std(&cfg);

    CHECK(r != NULL);
    if (r != NULL)
        resolve_test_run(r, resolve_test_cases,
                         sizeof(resolve_test_cases) / sizeof(resolve_test_cases[0]));
    resolve_test_close(&r, &cfg, NULL);
}

/* Address extensions: the standard maps plus keys that only match with or without one. */
static const char resolve_test_ext_virtual[] =
    "info@a.test alice@a.test, bob@c.test\n"
    "info+exact@a.test carol@a2.test\n"
    "@catch.test alice@a.test\n"
    "@old.test @a.test\n"
    "self@a.test self@a.test, bob@a.test\n"
    "loop1@a.test loop2@a.test\n"
    "loop2@a.test loop1@a.test\n"
    "grow1@a.test grow2@a.test\n"
    "grow2@a.test grow1+z@a.test\n";

static const char resolve_test_ext_aliases[] =
    "sales: bob\n"
    "postmaster: alice\n"
    "owner-list: bob\n"
    "list: alice\n";

static const struct resolve_test_case resolve_test_ext_cases[] = {
    /* finals keep the extension; mailbox_map matched without it */
    { "alice+tag@a.test", "alice+tag@a.test/local/1", 0, NULL },
    { "Alice+Tag@A.TEST", "Alice+Tag@a.test/local/1", 0, NULL },
    { "alice-tag@a.test", "alice-tag@a.test/local/1", 0, NULL },    /* either delimiter */
    { "alice++x@a.test", "alice++x@a.test/local/1", 0, NULL },      /* split at the first */
    { "alice+@a.test", "alice+@a.test/local/1", 0, NULL },          /* as Postfix: "+" */
    { "+alice@a.test", NULL, 550, "5.1.1" },                        /* empty user: whole */
    { "nosuch+tag@a.test", NULL, 550, "5.1.1" },
    { "anyone+x@a2.test", "anyone+x@a2.test/local/1", 0, NULL },    /* then @domain */
    /* virtual: full key first, then without the extension (propagated), then @domain */
    { "info+x@a.test", "alice+x@a.test/local/1 bob+x@c.test/remote/1", 0, NULL },
    { "info+exact@a.test", "carol@a2.test/local/1", 0, NULL },
    { "who+x@catch.test", "alice@a.test/local/1", 0, NULL },        /* catch-all: as is */
    { "alice+x@old.test", "alice+x@a.test/local/1", 0, NULL },
    { "self+x@a.test", "self+x@a.test/local/0 bob+x@a.test/local/1", 0, NULL },
    { "loop1+x@a.test", NULL, 550, "5.4.6" },
    { "grow1+x@a.test", NULL, 550, "5.4.6" },                       /* bounded by depth */
    /* aliases: the local part, then without the extension (not propagated) */
    { "sales+x@a.test", "bob@a.test/local/1", 0, NULL },
    { "SALES-x@a2.test", "bob@a.test/local/1", 0, NULL },
    { "postmaster+x@a.test", "alice@a.test/local/1", 0, NULL },
    { "owner-list@a.test", "bob@a.test/local/1", 0, NULL },         /* never split */
    { "list-request@a.test", NULL, 550, "5.1.1" },                  /* never split */
    { "list+x@a.test", "alice@a.test/local/1", 0, NULL },
};

/* test_resolve_ext_table - recipient_delimiter = +-: lookup order, propagation, loops. */
static void
test_resolve_ext_table(void)
{
    struct config  *cfg;
    struct resolve *r;
    char            conf[1024];

    snprintf(conf, sizeof(conf), "%srecipient_delimiter = +-\n", resolve_test_conf);
    r = resolve_test_open(conf, resolve_test_ext_virtual, resolve_test_ext_aliases,
                          resolve_test_mailboxes, &cfg);
    CHECK(r != NULL);
    if (r != NULL)
        resolve_test_run(r, resolve_test_ext_cases,
                         sizeof(resolve_test_ext_cases) / sizeof(resolve_test_ext_cases[0]));
    resolve_test_close(&r, &cfg, NULL);
}

/* Where extensions split: address, recipient_delimiter, the length of the user part (0:
 * not split). */
static const struct {
    const char *address;
    const char *delims;
    size_t      user;
} resolve_test_splits[] = {
    { "user+tag@x.test", "+", 4 },
    { "user+tag@x.test", "", 0 },
    { "user+tag@x.test", "-", 0 },
    { "us-er+tag@x.test", "+-", 2 },            /* the first of the set */
    { "user++x@x.test", "+", 4 },
    { "user+@x.test", "+", 4 },                 /* Postfix splits this one ("+") */
    { "+user@x.test", "+", 0 },                 /* empty user: never */
    { "\"u+v\"@x.test", "+", 0 },               /* quoted: never */
    { "a+b@c+d.test", "+", 1 },                 /* the local part only */
    { "user@x+y.test", "+", 0 },
    { "PostMaster@x.test", "a", 0 },            /* reserved names, any case */
    { "MAILER-DAEMON@x.test", "-", 0 },
    { "owner-x+y@x.test", "+-", 0 },            /* '-' in the set: owner-*, *-request */
    { "owner-x+y@x.test", "+", 7 },
    { "x-Request@x.test", "-", 0 },
    { "-request@x.test", "-", 0 },
};

/* test_resolve_ext_split - where extensions split, and the names never split. */
static void
test_resolve_ext_split(void)
{
    char *ext = NULL, *bare;

    for (size_t i = 0; i < sizeof(resolve_test_splits) / sizeof(resolve_test_splits[0]); i++) {
        size_t got = resolve_ext_split(resolve_test_splits[i].address,
                                       resolve_test_splits[i].delims);

        if (got != resolve_test_splits[i].user)
            fprintf(stderr, "  <%s> with \"%s\": %zu\n", resolve_test_splits[i].address,
                    resolve_test_splits[i].delims, got);
        CHECK(got == resolve_test_splits[i].user);
    }
    bare = resolve_ext_strip("Bob+Tag@x.test", "+", &ext);
    CHECK_STR(bare, "Bob@x.test");
    CHECK_STR(ext, "+Tag");
    free(bare);
    free(ext);
    bare = resolve_ext_strip("bob@x.test", "+", &ext);
    CHECK(bare == NULL && ext == NULL);
    bare = resolve_ext_strip("bob+", "+", NULL);
    CHECK_STR(bare, "bob");
    free(bare);
}

/* test_resolve_self_expansion - an address that expands to itself is kept as final. */
static void
test_resolve_self_expansion(void)
{
    struct config      *cfg;
    struct resolve     *r;
    struct resolve_list l;
    struct resolve_err  err;

    r = resolve_test_open(resolve_test_conf,
                          "alice@a.test ALICE@a.test, bob@a.test\n"
                          "@a2.test carol@a2.test\n",
                          "bob: bob, alice\n", resolve_test_mailboxes, &cfg);
    resolve_list_init(&l);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(resolve_rcpt(r, "alice@a.test", &l, &err) == 0);
        CHECK(l.n == 2);
        CHECK(resolve_test_has(&l, "alice@a.test") != NULL);   /* kept as given */
        CHECK(resolve_test_has(&l, "bob@a.test") != NULL);
        if (l.n == 2) {
            CHECK(!l.rcpt[0].expanded);
            CHECK(l.rcpt[1].expanded);
        }
        resolve_list_free(&l);
        /* the catch-all maps carol@a2.test to itself; anyone else to carol */
        CHECK(resolve_rcpt(r, "carol@a2.test", &l, &err) == 0);
        CHECK(l.n == 1 && resolve_test_has(&l, "carol@a2.test") != NULL);
        CHECK(resolve_rcpt(r, "dave@a2.test", &l, &err) == 0);
        CHECK(l.n == 1);                        /* deduplicated against the first */
    }
    resolve_test_close(&r, &cfg, &l);
}

/* test_resolve_loop - a real cycle is 550 5.4.6 and leaves the list as it was. */
static void
test_resolve_loop(void)
{
    struct config      *cfg;
    struct resolve     *r = resolve_test_std(&cfg);
    struct resolve_list l;
    struct resolve_err  err;

    resolve_list_init(&l);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(resolve_rcpt(r, "bob@a.test", &l, &err) == 0);
        CHECK(l.n == 1);
        CHECK(resolve_rcpt(r, "loop2@a.test", &l, &err) == -1);
        CHECK(err.code == 550);
        CHECK_STR(err.enh, "5.4.6");
        CHECK(strstr(err.text, "<loop2@a.test>") == err.text);
        CHECK(strstr(err.text, "alias loop") != NULL);
        CHECK(l.n == 1);
        CHECK_STR(l.rcpt[0].address, "bob@a.test");
    }
    resolve_test_close(&r, &cfg, &l);
}

/* test_resolve_alias_loop - a loop through the local aliases is detected too. */
static void
test_resolve_alias_loop(void)
{
    struct config      *cfg;
    struct resolve     *r;
    struct resolve_list l;
    struct resolve_err  err;

    r = resolve_test_open(resolve_test_conf, NULL, "a: b\nb: c@a2.test\nc: a\n",
                          resolve_test_mailboxes, &cfg);
    resolve_list_init(&l);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(resolve_rcpt(r, "a@a.test", &l, &err) == -1);
        CHECK(err.code == 550);
        CHECK_STR(err.enh, "5.4.6");
        CHECK(l.n == 0);
    }
    resolve_test_close(&r, &cfg, &l);
}

/* test_resolve_depth_limit - a chain deeper than RESOLVE_MAX_DEPTH fails; one within it
 * resolves. */
static void
test_resolve_depth_limit(void)
{
    struct config      *cfg;
    struct resolve     *r;
    struct resolve_list l;
    struct resolve_err  err;
    struct buf          v;

    buf_init(&v, 1024);
    for (int i = 0; i < RESOLVE_MAX_DEPTH + 5; i++)
        buf_printf(&v, "d%d@a.test d%d@a.test\n", i, i + 1);
    for (int i = 0; i < RESOLVE_MAX_DEPTH - 1; i++)
        buf_printf(&v, "short%d@a.test short%d@a.test\n", i, i + 1);
    buf_printf(&v, "short%d@a.test alice@a.test\n", RESOLVE_MAX_DEPTH - 1);
    r = resolve_test_open(resolve_test_conf, buf_cstr(&v), NULL, resolve_test_mailboxes, &cfg);
    buf_release(&v);
    resolve_list_init(&l);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(resolve_rcpt(r, "d0@a.test", &l, &err) == -1);
        CHECK(err.code == 550);
        CHECK_STR(err.enh, "5.4.6");
        CHECK(l.n == 0);
        CHECK(resolve_rcpt(r, "short0@a.test", &l, &err) == 0);   /* exactly the limit */
        CHECK(l.n == 1 && strcmp(l.rcpt[0].address, "alice@a.test") == 0);
    }
    resolve_test_close(&r, &cfg, &l);
}

/* test_resolve_size_limit - RESOLVE_MAX_ADDRS finals are fine, one more is 550 5.5.3. */
static void
test_resolve_size_limit(void)
{
    struct config      *cfg;
    struct resolve     *r;
    struct resolve_list l;
    struct resolve_err  err;
    struct buf          v;

    buf_init(&v, 65536);
    buf_puts(&v, "big@a.test ");
    for (int i = 0; i < RESOLVE_MAX_ADDRS; i++)
        buf_printf(&v, "%su%d@x.test", i ? ", " : "", i);
    buf_puts(&v, "\nbigger@a.test big@a.test, one-more@x.test\n");
    r = resolve_test_open(resolve_test_conf, buf_cstr(&v), NULL, resolve_test_mailboxes, &cfg);
    buf_release(&v);
    resolve_list_init(&l);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(resolve_rcpt(r, "big@a.test", &l, &err) == 0);
        CHECK(l.n == RESOLVE_MAX_ADDRS);
        resolve_list_free(&l);
        CHECK(resolve_rcpt(r, "bigger@a.test", &l, &err) == -1);
        CHECK(err.code == 550);
        CHECK_STR(err.enh, "5.5.3");
        CHECK(l.n == 0);
    }
    resolve_test_close(&r, &cfg, &l);
}

/* test_resolve_diamond - a wide, shared expansion is walked once per address (bounded). */
static void
test_resolve_diamond(void)
{
    struct config      *cfg;
    struct resolve     *r;
    struct resolve_list l;
    struct resolve_err  err;
    struct buf          v;

    /* level i: n0..n9 at each level all point to all ten of level i+1: 10^15 paths. */
    buf_init(&v, 65536);
    for (int lvl = 0; lvl < 15; lvl++)
        for (int j = 0; j < 10; j++) {
            buf_printf(&v, "n%d.%d@a.test ", lvl, j);
            for (int k = 0; k < 10; k++)
                buf_printf(&v, "%sn%d.%d@%s", k ? ", " : "", lvl + 1, k,
                           lvl + 1 == 15 ? "x.test" : "a.test");
            buf_puts(&v, "\n");
        }
    r = resolve_test_open(resolve_test_conf, buf_cstr(&v), NULL, resolve_test_mailboxes, &cfg);
    buf_release(&v);
    resolve_list_init(&l);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(resolve_rcpt(r, "n0.0@a.test", &l, &err) == 0);
        CHECK(l.n == 10);
        CHECK(resolve_test_has(&l, "n15.9@x.test") != NULL);
    }
    resolve_test_close(&r, &cfg, &l);
}

/* test_resolve_dedup_across_calls - a second RCPT adds only what is new. */
static void
test_resolve_dedup_across_calls(void)
{
    struct config      *cfg;
    struct resolve     *r = resolve_test_std(&cfg);
    struct resolve_list l;
    struct resolve_err  err;

    resolve_list_init(&l);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(resolve_rcpt(r, "ALICE@a.test", &l, &err) == 0);
        CHECK(resolve_rcpt(r, "info@a.test", &l, &err) == 0);
        CHECK(l.n == 2);
        CHECK(resolve_test_has(&l, "ALICE@a.test") != NULL);
        CHECK(resolve_test_has(&l, "bob@c.test") != NULL);
        if (l.n == 2) {
            CHECK_STR(l.rcpt[0].original, "ALICE@a.test");
            CHECK_STR(l.rcpt[1].original, "info@a.test");
            CHECK(l.rcpt[1].expanded);
        }
        CHECK(resolve_rcpt(r, "alice@a.test", &l, &err) == 0);  /* nothing new */
        CHECK(l.n == 2);
    }
    resolve_test_close(&r, &cfg, &l);
}

/* test_resolve_value_too_long - a map value over RESOLVE_VALUE_MAX is a temporary error. */
static void
test_resolve_value_too_long(void)
{
    struct config      *cfg;
    struct resolve     *r;
    struct resolve_list l;
    struct resolve_err  err;
    struct buf          v;

    buf_init(&v, RESOLVE_VALUE_MAX + 64);
    buf_puts(&v, "huge@a.test ");
    while (v.len < RESOLVE_VALUE_MAX + 10)
        buf_puts(&v, "alice@a.test, ");
    buf_puts(&v, "bob@a.test\n");
    r = resolve_test_open(resolve_test_conf, buf_cstr(&v), NULL, resolve_test_mailboxes, &cfg);
    buf_release(&v);
    resolve_list_init(&l);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(resolve_rcpt(r, "huge@a.test", &l, &err) == -1);
        CHECK(err.code == 451);
        CHECK_STR(err.enh, "4.3.0");
        CHECK(l.n == 0);
    }
    resolve_test_close(&r, &cfg, &l);
}

/* test_resolve_no_maps - without maps nothing expands and every local user is unknown. */
static void
test_resolve_no_maps(void)
{
    struct config      *cfg;
    struct resolve     *r;
    struct resolve_list l;
    struct resolve_err  err;

    r = resolve_test_open("local_domains = a.test\n", NULL, NULL, NULL, &cfg);
    resolve_list_init(&l);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(resolve_rcpt(r, "alice@a.test", &l, &err) == -1);
        CHECK(err.code == 550);
        CHECK_STR(err.enh, "5.1.1");
        CHECK(resolve_rcpt(r, "x@b.test", &l, &err) == 0);
        CHECK(l.n == 1 && l.rcpt[0].cls == RESOLVE_REMOTE);
        CHECK(resolve_domain_class(r, "A.TEST.") == RESOLVE_LOCAL);
        CHECK(resolve_domain_class(r, "b.test") == RESOLVE_REMOTE);
    }
    resolve_test_close(&r, &cfg, &l);

    /* no local_domains: a bare name cannot be completed */
    r = resolve_test_open("relay_domains = r.test\n", NULL, NULL, NULL, &cfg);
    resolve_list_init(&l);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(resolve_rcpt(r, "postmaster", &l, &err) == -1);
        CHECK(err.code == 553);
        CHECK(resolve_domain_class(r, "R.test") == RESOLVE_RELAY_DOMAIN);
    }
    resolve_test_close(&r, &cfg, &l);
}

/* Table: a relay_domains entry (as resolve_open() leaves it), a domain, match or not. */
static const struct {
    const char *entry;
    const char *domain;
    int         match;
} resolve_test_matches[] = {
    { "example.com", "example.com", 1 },
    { "example.com", "sub.example.com", 1 },
    { "example.com", "a.b.example.com", 1 },
    { "example.com", "badexample.com", 0 },        /* a label boundary, not a suffix */
    { "example.com", "example.com.evil.test", 0 },
    { "example.com", "com", 0 },
    { "example.com", ".example.com", 1 },          /* never a normalised domain; harmless */
    { ".example.com", "example.com", 0 },          /* Postfix's form: subdomains only */
    { ".example.com", "sub.example.com", 1 },
    { ".example.com", "a.b.example.com", 1 },
    { ".example.com", "badexample.com", 0 },
    { "", "example.com", 0 },                      /* "." or "" in the list: nothing */
    { "", "", 0 },
    { ".", "sub.example.com", 0 },
    { "com", "example.com", 1 },
};

/* test_resolve_domain_match - each entry/domain pair of the table. */
static void
test_resolve_domain_match(void)
{
    for (size_t i = 0; i < sizeof(resolve_test_matches) / sizeof(resolve_test_matches[0]);
         i++) {
        int got = resolve_domain_match(resolve_test_matches[i].entry,
                                       resolve_test_matches[i].domain);

        if (got != resolve_test_matches[i].match)
            fprintf(stderr, "  entry \"%s\" domain \"%s\": %d\n",
                    resolve_test_matches[i].entry, resolve_test_matches[i].domain, got);
        CHECK(got == resolve_test_matches[i].match);
    }
}

/* test_resolve_relay_subdomains - relay_domains entries take their subdomains, a leading
 * dot only the subdomains; local_domains stay exact and win over relay_domains. */
static void
test_resolve_relay_subdomains(void)
{
    struct config      *cfg;
    struct resolve     *r;
    struct resolve_list l;
    struct resolve_err  err;

    r = resolve_test_open("local_domains = a.test, mail.r.test\n"
                          "relay_domains = R.Test., .sub.test, .\n", NULL, NULL, NULL, &cfg);
    resolve_list_init(&l);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(resolve_domain_class(r, "r.test") == RESOLVE_RELAY_DOMAIN);
        CHECK(resolve_domain_class(r, "x.r.test") == RESOLVE_RELAY_DOMAIN);
        CHECK(resolve_domain_class(r, "Y.X.R.TEST.") == RESOLVE_RELAY_DOMAIN);
        CHECK(resolve_domain_class(r, "bar.test") == RESOLVE_REMOTE);
        CHECK(resolve_domain_class(r, "r.test.example") == RESOLVE_REMOTE);
        CHECK(resolve_domain_class(r, "mail.r.test") == RESOLVE_LOCAL);
        CHECK(resolve_domain_class(r, "x.mail.r.test") == RESOLVE_RELAY_DOMAIN);
        CHECK(resolve_domain_class(r, "sub.test") == RESOLVE_REMOTE);
        CHECK(resolve_domain_class(r, "x.sub.test") == RESOLVE_RELAY_DOMAIN);
        CHECK(resolve_domain_class(r, "a.test") == RESOLVE_LOCAL);
        CHECK(resolve_domain_class(r, "x.a.test") == RESOLVE_REMOTE);
        CHECK(resolve_domain_class(r, "test") == RESOLVE_REMOTE);
        CHECK(resolve_rcpt(r, "bob@Deep.R.Test", &l, &err) == 0);
        CHECK(l.n == 1 && l.rcpt[0].cls == RESOLVE_RELAY_DOMAIN);
        if (l.n == 1)
            CHECK_STR(l.rcpt[0].address, "bob@deep.r.test");
    }
    resolve_test_close(&r, &cfg, &l);
}

/* test_resolve_open_missing_map - a configured map without its .db: NULL naming the key. */
static void
test_resolve_open_missing_map(void)
{
    struct config  *cfg;
    struct resolve *r;
    char            err[512] = "";

    r = resolve_test_std(&cfg);
    CHECK(r != NULL);
    resolve_close(&r);
    snprintf(err, sizeof(err), "%s/virtual.db", test_dir);
    CHECK(unlink(err) == 0);
    r = resolve_open(cfg, err, sizeof(err));
    CHECK(r == NULL);
    CHECK(strstr(err, "virtual_alias_map: ") == err);
    CHECK(strstr(err, "virtual.db") != NULL);
    resolve_test_close(&r, &cfg, NULL);
}

/* test_resolve_close_null - closing NULL is a no-op; freeing an empty list too. */
static void
test_resolve_close_null(void)
{
    struct resolve     *r = NULL;
    struct resolve_list l;

    resolve_close(&r);
    CHECK(r == NULL);
    resolve_list_init(&l);
    resolve_list_free(&l);
    CHECK(l.n == 0 && l.rcpt == NULL);
    CHECK_STR(resolve_class_name(RESOLVE_LOCAL), "local");
    CHECK_STR(resolve_class_name(RESOLVE_RELAY_DOMAIN), "relay");
    CHECK_STR(resolve_class_name(RESOLVE_REMOTE), "remote");
}

/* main - run every test; prints "N passed, N failed". */
int
main(void)
{
    log_init("resolve_test", 1);
    log_set_level(LOG_LVL_ERR);
    TEST_RUN(test_resolve_table);
    TEST_RUN(test_resolve_ext_table);
    TEST_RUN(test_resolve_ext_split);
    TEST_RUN(test_resolve_self_expansion);
    TEST_RUN(test_resolve_loop);
    TEST_RUN(test_resolve_alias_loop);
    TEST_RUN(test_resolve_depth_limit);
    TEST_RUN(test_resolve_size_limit);
    TEST_RUN(test_resolve_diamond);
    TEST_RUN(test_resolve_dedup_across_calls);
    TEST_RUN(test_resolve_value_too_long);
    TEST_RUN(test_resolve_no_maps);
    TEST_RUN(test_resolve_domain_match);
    TEST_RUN(test_resolve_relay_subdomains);
    TEST_RUN(test_resolve_open_missing_map);
    TEST_RUN(test_resolve_close_null);
    TEST_END();
}
