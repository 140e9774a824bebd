/* smtp_auth_test - SASL PLAIN/LOGIN decoding, base64 strictness, password hashes. */
#include <string.h>

#include "base64.h"
#include "pwhash.h"
#include "smtp_auth.h"
#include "test.h"

static void
test_base64_round_trip(void)
{
    static const char *cases[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                 "Zm9vYmFy" };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char          out[32];
        unsigned char dec[32];
        long          n;

        base64_encode(cases[i], strlen(cases[i]), out);
        CHECK_STR(out, enc[i]);
        n = base64_decode(enc[i], dec, sizeof(dec));
        CHECK(n == (long)strlen(cases[i]) && memcmp(dec, cases[i], (size_t)n) == 0);
    }
}

static void
test_base64_rejects_sloppy_input(void)
{
    static const char *bad[] = { "Zg", "Zg=", "Z===", "Zm9v\r\n", "Zm 9v", "Zh==", "Zm9=",
                                 "=Zm9", "Zg==Zg==", "Zm9v!A==" };
    unsigned char      dec[32];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(base64_decode(bad[i], dec, sizeof(dec)) == -1);
}

static void
test_smtp_auth_plain_initial_response(void)
{
    struct smtp_auth a;
    char             b64[128];

    base64_encode("\0alice\0secret", 13, b64);
    CHECK(smtp_auth_start(&a, (char[160]){ 0 }) == SMTP_AUTH_UNSUPPORTED);
    {
        char arg[160] = "PLAIN ";

        strcat(arg, b64);
        CHECK(smtp_auth_start(&a, arg) == SMTP_AUTH_CHECK);
        CHECK_STR(a.user, "alice");
        CHECK_STR(a.password, "secret");
    }
    smtp_auth_clear(&a);
    CHECK(a.password[0] == '\0');
}

static void
test_smtp_auth_plain_challenge_and_authzid(void)
{
    struct smtp_auth a;
    char             b64[128];

    CHECK(smtp_auth_start(&a, "plain") == SMTP_AUTH_CHALLENGE);
    base64_encode("alice\0alice\0pw", 14, b64);
    CHECK(smtp_auth_next(&a, b64) == SMTP_AUTH_CHECK);
    CHECK_STR(a.user, "alice");
    /* Acting as someone else is not offered. */
    CHECK(smtp_auth_start(&a, "PLAIN") == SMTP_AUTH_CHALLENGE);
    base64_encode("bob\0alice\0pw", 12, b64);
    CHECK(smtp_auth_next(&a, b64) == SMTP_AUTH_SYNTAX);
    /* Missing separators, empty user, cancel. */
    CHECK(smtp_auth_start(&a, "PLAIN") == SMTP_AUTH_CHALLENGE);
    base64_encode("alicepw", 7, b64);
    CHECK(smtp_auth_next(&a, b64) == SMTP_AUTH_SYNTAX);
    base64_encode("\0\0pw", 4, b64);
    CHECK(smtp_auth_next(&a, b64) == SMTP_AUTH_SYNTAX);
    CHECK(smtp_auth_next(&a, "*") == SMTP_AUTH_CANCEL);
}

static void
test_smtp_auth_login_steps(void)
{
    struct smtp_auth a;

    CHECK(smtp_auth_start(&a, "LOGIN") == SMTP_AUTH_CHALLENGE);
    CHECK_STR(a.challenge, "VXNlcm5hbWU6");
    CHECK(smtp_auth_next(&a, "YWxpY2U=") == SMTP_AUTH_CHALLENGE);   /* alice */
    CHECK_STR(a.challenge, "UGFzc3dvcmQ6");
    CHECK(smtp_auth_next(&a, "c2VjcmV0") == SMTP_AUTH_CHECK);       /* secret */
    CHECK_STR(a.user, "alice");
    CHECK_STR(a.password, "secret");
    CHECK(smtp_auth_start(&a, "LOGIN YWxpY2U=") == SMTP_AUTH_CHALLENGE);
    CHECK(smtp_auth_next(&a, "not base64!") == SMTP_AUTH_SYNTAX);
}

static void
test_pwhash_make_and_check(void)
{
    char hash[PWHASH_MAX];

    CHECK(pwhash_make("correct horse", hash) == 0);
    CHECK(strncmp(hash, "$y$", 3) == 0);
    CHECK(pwhash_check("correct horse", hash) == 1);
    CHECK(pwhash_check("correct horsf", hash) == 0);
    CHECK(pwhash_check("", hash) == 0);
    /* Weak kinds are refused even when they match. */
    CHECK(pwhash_check("pw", "pw") == 0);
    CHECK(pwhash_check("password", "$1$abcdefgh$G//4keteveJp0qb8z2DxG/") == 0);
    CHECK(pwhash_acceptable("$6$salt$x") == 1);
}

int
main(void)
{
    TEST_RUN(test_base64_round_trip);
    TEST_RUN(test_base64_rejects_sloppy_input);
    TEST_RUN(test_smtp_auth_plain_initial_response);
    TEST_RUN(test_smtp_auth_plain_challenge_and_authzid);
    TEST_RUN(test_smtp_auth_login_steps);
    TEST_RUN(test_pwhash_make_and_check);
    TEST_END();
}
