/* smtp_addr_test - paths (golden and hostile), lengths, SMTPUTF8, ESMTP parameters, xtext. */
#include <string.h>

#include "smtp_addr.h"
#include "test.h"

struct path_case {
    const char *in;
    int         flags;
    int         code;                 /* 0 = accepted */
    const char *addr;                 /* expected address when accepted */
    const char *rest;                 /* what follows the path */
};

#define S SMTP_PATH_SENDER
#define U SMTP_PATH_UTF8
#define P SMTP_PATH_POSTMASTER

static const struct path_case path_cases[] = {
    { "<a@b.example>", 0, 0, "a@b.example", "" },
    { "<a@b.example> SIZE=1", S, 0, "a@b.example", " SIZE=1" },
    { "<>", S, 0, "", "" },
    { "<> SIZE=1", S, 0, "", " SIZE=1" },
    { "<>", 0, 501, NULL, NULL },                               /* RCPT TO:<> */
    { "<first.last+tag@sub.b-c.example>", 0, 0, "first.last+tag@sub.b-c.example", "" },
    { "<!#$%&'*+-/=?^_`{|}~@x.example>", 0, 0, "!#$%&'*+-/=?^_`{|}~@x.example", "" },
    { "<\"john doe\"@x.example>", 0, 0, "\"john doe\"@x.example", "" },
    { "<\"a\\\"b>c\"@x.example>", 0, 0, "\"a\\\"b>c\"@x.example", "" },
    { "<@r1.example,@r2.example:u@x.example>", 0, 0, "u@x.example", "" },
    { "<@r1.example:u@x.example>", 0, 0, "u@x.example", "" },
    { "<u@[192.0.2.1]>", 0, 0, "u@[192.0.2.1]", "" },
    { "<u@[IPv6:2001:db8::1]>", 0, 0, "u@[IPv6:2001:db8::1]", "" },
    { "<u@[x-tag:abc]>", 0, 0, "u@[x-tag:abc]", "" },
    { "<postmaster>", P, 0, "postmaster", "" },
    { "<PostMaster>", P, 0, "PostMaster", "" },
    { "<postmaster>", 0, 501, NULL, NULL },
    { "<Postmaster@x.example>", 0, 0, "Postmaster@x.example", "" },
    /* hostile or malformed */
    { "a@b.example", 0, 501, NULL, NULL },                      /* no brackets */
    { "<a@b.example", 0, 501, NULL, NULL },
    { "<a@b.example>>", 0, 0, "a@b.example", ">" },             /* caller rejects the rest */
    { "<a>", 0, 501, NULL, NULL },
    { "<@b.example>", 0, 501, NULL, NULL },
    { "<a@>", 0, 501, NULL, NULL },
    { "<a@@b>", 0, 501, NULL, NULL },
    { "<a@b@c>", 0, 501, NULL, NULL },
    { "<.a@b>", 0, 501, NULL, NULL },
    { "<a.@b>", 0, 501, NULL, NULL },
    { "<a..b@c>", 0, 501, NULL, NULL },
    { "<a@b..c>", 0, 501, NULL, NULL },
    { "<a@b.>", 0, 501, NULL, NULL },
    { "<a@-b.example>", 0, 501, NULL, NULL },
    { "<a@b-.example>", 0, 501, NULL, NULL },
    { "<a@b_c.example>", 0, 501, NULL, NULL },
    { "<a b@c>", 0, 501, NULL, NULL },
    { "<a@b c>", 0, 501, NULL, NULL },
    { "<a\r\n@b>", 0, 501, NULL, NULL },
    { "<\"a\r\nb\"@c>", 0, 501, NULL, NULL },
    { "<\"unterminated@c>", 0, 501, NULL, NULL },
    { "<a@[192.0.2.256]>", 0, 501, NULL, NULL },
    { "<a@[1.2.3]>", 0, 501, NULL, NULL },
    { "<a@[IPv6:zz::1]>", 0, 501, NULL, NULL },
    { "<a@[]>", 0, 501, NULL, NULL },
    { "<a@[192.0.2.1>", 0, 501, NULL, NULL },
    { "<@r1.example u@x.example>", 0, 501, NULL, NULL },
    { "<@:u@x.example>", 0, 501, NULL, NULL },
    { "<a@b.example> ", 0, 0, "a@b.example", " " },
    { "", 0, 501, NULL, NULL },
    { "<", 0, 501, NULL, NULL },
    { "<\"\"@x.example>", 0, 0, "\"\"@x.example", "" },
    /* SMTPUTF8 */
    { "<j\xc3\xb6rg@b\xc3\xbc.example>", U, 0, "j\xc3\xb6rg@b\xc3\xbc.example", "" },
    { "<j\xc3\xb6rg@b.example>", 0, 553, NULL, NULL },
    { "<jorg@b\xc3\xbc.example>", 0, 553, NULL, NULL },
    { "<j\xc3@b.example>", U, 501, NULL, NULL },                /* truncated sequence */
    { "<j\xc0\xaf@b.example>", U, 501, NULL, NULL },            /* overlong */
    { "<j\xed\xa0\x80@b.example>", U, 501, NULL, NULL },        /* surrogate */
    { "<j\xf4\x90\x80\x80@b.example>", U, 501, NULL, NULL },    /* over U+10FFFF */
    { "<\"\xc3\xa9\"@b.example>", U, 0, "\"\xc3\xa9\"@b.example", "" },
};

/* test_smtp_addr_paths - the golden table. */
static void
test_smtp_addr_paths(void)
{
    size_t i;

    for (i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
        const struct path_case *c = &path_cases[i];
        struct smtp_path p;
        struct smtp_addr_err err = { 0, NULL, NULL };
        size_t end, len = strlen(c->in);
        int r = smtp_addr_parse_path(c->in, len, c->flags, &p, &end, &err);
        int ok;
        if (c->code == 0)
            ok = r == 0 && strcmp(p.addr, c->addr) == 0 && strcmp(c->in + end, c->rest) == 0;
        else
            ok = r == -1 && err.code == c->code;
        if (!ok)
            fprintf(stderr, "  case %zu \"%s\": r=%d code=%d addr=\"%s\"\n", i, c->in, r,
                    err.code, r == 0 ? p.addr : "");
        CHECK(ok);
    }
}

/* test_smtp_addr_fields - local part, domain and flags of a parsed path. */
static void
test_smtp_addr_fields(void)
{
    struct smtp_path p;
    struct smtp_addr_err err;
    size_t end;

    CHECK(smtp_addr_parse_path("<Bob@Example.COM>", 17, 0, &p, &end, &err) == 0);
    CHECK(p.local_len == 3 && strcmp(p.domain, "Example.COM") == 0 && !p.is_null);
    CHECK(smtp_addr_parse_path("<>", 2, SMTP_PATH_SENDER, &p, &end, &err) == 0);
    CHECK(p.is_null && p.addr[0] == '\0' && p.domain[0] == '\0');
    CHECK(smtp_addr_parse_path("<postmaster>", 12, P, &p, &end, &err) == 0);
    CHECK(p.is_postmaster && p.domain[0] == '\0');
    CHECK(smtp_addr_parse_path("<u@[192.0.2.1]>", 15, 0, &p, &end, &err) == 0);
    CHECK(p.domain_literal);
    CHECK(smtp_addr_parse_path("<x>", 3, S, &p, &end, &err) == -1);
    CHECK(err.code == 501 && strcmp(err.enh, "5.1.7") == 0);
    CHECK(smtp_addr_parse_path("<x>", 3, 0, &p, &end, &err) == -1);
    CHECK(err.code == 501 && strcmp(err.enh, "5.1.3") == 0);
}

/* path_of - "<" local "@" domain ">" with a local part of l and a domain of d octets. */
static size_t
path_of(char *out, size_t l, size_t d)
{
    size_t n = 0, i;

    out[n++] = '<';
    for (i = 0; i < l; i++)
        out[n++] = 'a';
    out[n++] = '@';
    for (i = 0; i < d; i++)
        out[n++] = (i % 10 == 9) ? '.' : 'b';
    if (out[n - 1] == '.')
        out[n - 1] = 'c';
    out[n++] = '>';
    out[n] = '\0';
    return n;
}

/* test_smtp_addr_lengths - 64 local, 255 domain, 256 path. */
static void
test_smtp_addr_lengths(void)
{
    char in[700];
    struct smtp_path p;
    struct smtp_addr_err err;
    size_t end, n;

    n = path_of(in, 64, 20);
    CHECK(smtp_addr_parse_path(in, n, 0, &p, &end, &err) == 0);
    n = path_of(in, 65, 20);
    CHECK(smtp_addr_parse_path(in, n, 0, &p, &end, &err) == -1 && err.code == 501);
    n = path_of(in, 64, 189);                    /* 1 + 64 + 1 + 189 + 1 = 256 */
    CHECK(n == 256 && smtp_addr_parse_path(in, n, 0, &p, &end, &err) == 0);
    CHECK(strlen(p.addr) == 254);
    n = path_of(in, 64, 190);                    /* 257 */
    CHECK(smtp_addr_parse_path(in, n, 0, &p, &end, &err) == -1 && err.code == 501);
    n = path_of(in, 10, 300);
    CHECK(smtp_addr_parse_path(in, n, 0, &p, &end, &err) == -1 && err.code == 501);
    n = path_of(in, 500, 100);
    CHECK(smtp_addr_parse_path(in, n, 0, &p, &end, &err) == -1 && err.code == 501);
    /* a 64-octet label is too long */
    memcpy(in, "<a@", 3);
    memset(in + 3, 'x', 64);
    memcpy(in + 67, ".example>", 10);
    CHECK(smtp_addr_parse_path(in, strlen(in), 0, &p, &end, &err) == -1);
}

/* test_smtp_addr_mail_params - SIZE, BODY, SMTPUTF8, RET, ENVID and their errors. */
static void
test_smtp_addr_mail_params(void)
{
    struct smtp_mail_params mp;
    struct smtp_addr_err err;
#define MP(s) smtp_addr_parse_mail_params(s, strlen(s), &mp, &err)

    CHECK(MP("") == 0 && !mp.size_set && mp.body == SMTP_BODY_UNSET);
    CHECK(MP(" SIZE=12345") == 0 && mp.size_set && mp.size == 12345);
    CHECK(MP(" size=0  body=8bitmime") == 0 && mp.size == 0 && mp.body == SMTP_BODY_8BITMIME);
    CHECK(MP(" BODY=7BIT") == 0 && mp.body == SMTP_BODY_7BIT);
    CHECK(MP(" SIZE=99999999999999999999") == 0 && mp.size == UINT64_MAX);
    CHECK(MP(" SMTPUTF8") == 0 && mp.smtputf8);
    CHECK(MP(" RET=HDRS ENVID=QQ+2B314") == 0 && mp.ret == SMTP_RET_HDRS);
    CHECK_STR(mp.envid, "QQ+314");
    CHECK(MP(" RET=full") == 0 && mp.ret == SMTP_RET_FULL);
    CHECK(MP(" SIZE=") == -1 && err.code == 501);
    CHECK(MP(" SIZE") == -1 && err.code == 501);
    CHECK(MP(" SIZE=12a") == -1 && err.code == 501);
    CHECK(MP(" SIZE=-1") == -1 && err.code == 501);
    CHECK(MP(" SIZE=1 SIZE=2") == -1 && err.code == 501);
    CHECK(MP(" SIZE=123456789012345678901") == -1 && err.code == 501);
    CHECK(MP(" BODY=BINARYMIME") == -1 && err.code == 555);
    CHECK(MP(" BODY=") == -1 && err.code == 501);
    CHECK(MP(" SMTPUTF8=yes") == -1 && err.code == 501);
    CHECK(MP(" RET=ALL") == -1 && err.code == 501);
    CHECK(MP(" ENVID=a+0D+0Ab") == -1 && err.code == 501);       /* CRLF in ENVID */
    CHECK(MP(" ENVID=a+zz") == -1 && err.code == 501);
    CHECK(MP(" FOO=bar") == -1 && err.code == 555 && strcmp(err.enh, "5.5.4") == 0);
    CHECK(MP(" AUTH=<>") == -1 && err.code == 555);
    CHECK(MP(" =x") == -1 && err.code == 501);
    CHECK(MP("SIZE=1") == -1 && err.code == 501);                /* no space after '>' */
    CHECK(MP(" SIZE=1=2") == -1 && err.code == 501);
#undef MP
}

/* test_smtp_addr_rcpt_params - NOTIFY and ORCPT. */
static void
test_smtp_addr_rcpt_params(void)
{
    struct smtp_rcpt_params rp;
    struct smtp_addr_err err;
#define RP(s, u) smtp_addr_parse_rcpt_params(s, strlen(s), u, &rp, &err)

    CHECK(RP("", 0) == 0 && rp.notify == 0 && rp.orcpt[0] == '\0');
    CHECK(RP(" NOTIFY=NEVER", 0) == 0 && rp.notify == SMTP_NOTIFY_NEVER);
    CHECK(RP(" NOTIFY=success,failure,DELAY", 0) == 0
          && rp.notify == (SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY));
    CHECK(RP(" ORCPT=rfc822;bob+2Bx@b.example", 0) == 0);
    CHECK_STR(rp.orcpt, "rfc822;bob+x@b.example");
    CHECK(RP(" ORCPT=utf-8;bob@b.example", 1) == 0);
    CHECK(RP(" ORCPT=utf-8;bob@b.example", 0) == -1 && err.code == 501);
    CHECK(RP(" NOTIFY=NEVER,SUCCESS", 0) == -1 && err.code == 501);
    CHECK(RP(" NOTIFY=SUCCESS,SUCCESS", 0) == -1 && err.code == 501);
    CHECK(RP(" NOTIFY=", 0) == -1 && err.code == 501);
    CHECK(RP(" NOTIFY=SUCCESS,", 0) == -1 && err.code == 501);
    CHECK(RP(" ORCPT=bob@b.example", 0) == -1 && err.code == 501);
    CHECK(RP(" ORCPT=rfc822;", 0) == -1 && err.code == 501);
    CHECK(RP(" ORCPT=rfc822;a+0Ab", 0) == -1 && err.code == 501);
    CHECK(RP(" SIZE=10", 0) == -1 && err.code == 555);
    CHECK(RP(" NOTIFY=NEVER NOTIFY=NEVER", 0) == -1 && err.code == 501);
#undef RP
}

/* test_smtp_addr_xtext - decoding and its limits. */
static void
test_smtp_addr_xtext(void)
{
    char out[8];

    CHECK(smtp_addr_xtext_decode("abc", 3, out, sizeof(out)) == 0);
    CHECK_STR(out, "abc");
    CHECK(smtp_addr_xtext_decode("a+2Bb", 5, out, sizeof(out)) == 0);
    CHECK_STR(out, "a+b");
    CHECK(smtp_addr_xtext_decode("a+2", 3, out, sizeof(out)) == -1);
    CHECK(smtp_addr_xtext_decode("a b", 3, out, sizeof(out)) == -1);
    CHECK(smtp_addr_xtext_decode("a+00", 4, out, sizeof(out)) == -1);
    CHECK(smtp_addr_xtext_decode("12345678", 8, out, sizeof(out)) == -1);   /* too long */
    CHECK(smtp_addr_xtext_decode("1234567", 7, out, sizeof(out)) == 0);
}

/* test_smtp_addr_utf8 - the validator on its own. */
static void
test_smtp_addr_utf8(void)
{
    CHECK(smtp_addr_utf8_valid("abc", 3));
    CHECK(smtp_addr_utf8_valid("\xc3\xa9", 2));
    CHECK(smtp_addr_utf8_valid("\xe2\x82\xac", 3));
    CHECK(smtp_addr_utf8_valid("\xf0\x9f\x98\x80", 4));
    CHECK(!smtp_addr_utf8_valid("\xc3", 1));
    CHECK(!smtp_addr_utf8_valid("\x80", 1));
    CHECK(!smtp_addr_utf8_valid("\xc1\xbf", 2));
    CHECK(!smtp_addr_utf8_valid("\xe0\x80\xaf", 3));
    CHECK(!smtp_addr_utf8_valid("\xf8\x88\x80\x80\x80", 5));
    CHECK(!smtp_addr_utf8_valid("\xff", 1));
}

int
main(void)
{
    TEST_RUN(test_smtp_addr_paths);
    TEST_RUN(test_smtp_addr_fields);
    TEST_RUN(test_smtp_addr_lengths);
    TEST_RUN(test_smtp_addr_mail_params);
    TEST_RUN(test_smtp_addr_rcpt_params);
    TEST_RUN(test_smtp_addr_xtext);
    TEST_RUN(test_smtp_addr_utf8);
    TEST_END();
}
