/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "oidc/answer.h"

#define STATE "Qm9vdHN0cmFwcGluZy1zdGF0ZS0yNTYtYml0cy14eHh4"
#define CODE "SplxlOBeZQQYbYS6WxSbIA"

static struct lk_error err;

#define ISSUER "https://idp.example.com/api/v1/oauth2"
#define ISSUER_ENC "https%3A%2F%2Fidp.example.com%2Fapi%2Fv1%2Foauth2"

/*
 * Parses answer (against ISSUER where issuer is set, with iss required where required is);
 * on success returns the code (owned by the caller), else NULL with err set.
 */
static char *parse_iss(const char *answer, const char *expected_state, const char *issuer,
                       bool required, int want)
{
        char *code = NULL;
        int r;

        lk_error_clear(&err);
        r = lk_answer_parse(answer, expected_state, issuer, required, &code, &err);
        assert_int_equal(r, want);
        if (r < 0) {
                assert_null(code);
                assert_int_equal(err.code, -want);
                assert_true(strlen(err.message) > 0);
                /* The answer's code never ends up in the message. */
                assert_null(strstr(err.message, CODE));
                assert_null(strstr(err.message, STATE));
        }
        return code;
}

static char *parse(const char *answer, const char *expected_state, int want)
{
        return parse_iss(answer, expected_state, NULL, false, want);
}

static void expect_code(const char *answer, const char *expected_state, const char *want)
{
        char *code = parse(answer, expected_state, 0);

        assert_non_null(code);
        assert_string_equal(code, want);
        free(code);
}

static void test_bare_code(void **state)
{
        expect_code(CODE, STATE, CODE);
        expect_code("  \t" CODE "\r\n", STATE, CODE);
        /* Printable ASCII is allowed as it is, even characters a URL would encode. */
        expect_code("4/0AX4XfWh-Ek_tilde~.dots!*", STATE, "4/0AX4XfWh-Ek_tilde~.dots!*");
        /* A '?' without code/state/error after it is still a bare code. */
        expect_code("abc?def", STATE, "abc?def");
}

static void test_bare_code_bad(void **state)
{
        char big[3000];

        parse("abc def", STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "printable ASCII"));
        parse("caf\xc3\xa9", STATE, -LK_ERR_INVALID_ARGUMENT);
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        parse(big, STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "longer than 2048"));
}

static void test_full_url(void **state)
{
        expect_code("https://login.example.com/callback?code=" CODE "&state=" STATE, STATE, CODE);
        /* Order, extra parameters (RFC 9207 iss, session_state) and a fragment do not matter. */
        expect_code("https://login.example.com/callback?session_state=abc&state=" STATE
                    "&iss=https%3A%2F%2Ftenant.example.com&code=" CODE "#_=_",
                    STATE, CODE);
        /* Scheme in any case, surrounded by white space. */
        expect_code("  HTTPS://login.example.com/callback?code=" CODE "&state=" STATE "\n",
                    STATE, CODE);
        expect_code("http://localhost:8080/cb?state=" STATE "&code=" CODE, STATE, CODE);
}

static void test_url_percent_encoded(void **state)
{
        /* %2F, %2B and '+' (a space in a form-encoded query, refused in a code). */
        expect_code("https://login.example.com/callback?code=4%2F0AX4Xf%2BWh%3D%3D&state=" STATE,
                    STATE, "4/0AX4Xf+Wh==");
        /* The state can be encoded too. */
        expect_code("https://login.example.com/callback?code=abc&state=Qm9vdHN0cmFwcGluZy1zdGF0ZS0"
                    "yNTYtYml0cy14eHh%34",
                    STATE, "abc");
        parse("https://login.example.com/callback?code=a+b&state=" STATE, STATE,
              -LK_ERR_INVALID_ARGUMENT);
        parse("https://login.example.com/callback?code=a%00b&state=" STATE, STATE,
              -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "NUL"));
        parse("https://login.example.com/callback?code=a%0Ab&state=" STATE, STATE,
              -LK_ERR_INVALID_ARGUMENT);
}

static void test_without_scheme(void **state)
{
        expect_code("login.example.com/callback?code=" CODE "&state=" STATE, STATE, CODE);
        expect_code("?state=" STATE "&code=" CODE, STATE, CODE);
        expect_code("code=" CODE "&state=" STATE, STATE, CODE);
        expect_code("code=" CODE "&state=" STATE "#frag", STATE, CODE);
        /* A bare query is still held to the state rule. */
        parse("code=" CODE, STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "no state"));
}

static void test_state_mismatch(void **state)
{
        parse("https://login.example.com/callback?code=" CODE "&state=AAAA" STATE, STATE,
              -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the address's state does not match this login");
        parse("https://login.example.com/callback?code=" CODE "&state=" STATE "x", STATE,
              -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the address's state does not match this login");
        parse("https://login.example.com/callback?code=" CODE "&state=", STATE,
              -LK_ERR_INVALID_ARGUMENT);
        /* Given twice: refused, whatever the values. */
        parse("https://login.example.com/callback?code=" CODE "&state=" STATE "&state=" STATE,
              STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "more than once"));
        parse("https://login.example.com/callback?code=" CODE "&code=x&state=" STATE, STATE,
              -LK_ERR_INVALID_ARGUMENT);
}

static void test_missing_state(void **state)
{
        parse("https://login.example.com/callback?code=" CODE, STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "no state"));
        /* "State" is not "state". */
        parse("https://login.example.com/callback?code=" CODE "&State=" STATE, STATE,
              -LK_ERR_INVALID_ARGUMENT);
        /* Without an expected state (a caller that made none) it is not checked. */
        expect_code("https://login.example.com/callback?code=" CODE, NULL, CODE);
}

static void test_missing_code(void **state)
{
        parse("https://login.example.com/callback?state=" STATE, STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the address carries no code");
        parse("https://login.example.com/callback", STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "no code"));
        parse("https://login.example.com/callback?code=&state=" STATE, STATE,
              -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the code is empty");
        parse("https://login.example.com/callback#code=" CODE "&state=" STATE, STATE,
              -LK_ERR_INVALID_ARGUMENT);
}

static void test_error(void **state)
{
        parse("https://login.example.com/callback?error=access_denied&error_description=User+"
              "cancelled&state=" STATE,
              STATE, -LK_ERR_ACCESS_DENIED_BY_USER);
        assert_string_equal(err.message,
                            "The provider refused the login: access_denied (User cancelled)");
        assert_string_equal(err.provider_error, "access_denied");
        assert_string_equal(err.provider_description, "User cancelled");

        /* Without a description, and without a state (some providers drop it on errors). */
        parse("https://login.example.com/callback?error=login_required", STATE,
              -LK_ERR_ACCESS_DENIED_BY_USER);
        assert_string_equal(err.message, "The provider refused the login: login_required");
        assert_string_equal(err.provider_description, "");

        /* A state that is there must still match. */
        parse("https://login.example.com/callback?error=access_denied&state=nope", STATE,
              -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the address's state does not match this login");
        assert_string_equal(err.provider_error, "");
}

static void test_error_sanitized(void **state)
{
        char url[4096];
        size_t n;

        /* %1B (ESC) and %0A are made harmless; a long description is cut. */
        n = (size_t)snprintf(url, sizeof(url),
                             "https://login.example.com/cb?state=" STATE
                             "&error=access%%0Adenied&error_description=%%1B%%5B31m");
        while (n < 2000)
                url[n++] = 'x';
        url[n] = 0;
        parse(url, STATE, -LK_ERR_ACCESS_DENIED_BY_USER);
        assert_string_equal(err.provider_error, "access\\ndenied");
        assert_int_equal(strncmp(err.provider_description, "\\x1b[31mxxx", 11), 0);
        assert_int_equal(strlen(err.provider_description), sizeof(err.provider_description) - 1);
        assert_true(lk_endswith(err.provider_description, "..."));
        for (const char *p = err.message; *p; p++)
                assert_true(*p >= 0x20 && *p < 0x7f);
}

static void test_empty(void **state)
{
        parse("", STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the answer is empty");
        parse(" \t\r\n ", STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the answer is empty");
        lk_error_clear(&err);
        assert_int_equal(lk_answer_parse(NULL, STATE, NULL, false, &(char *){ NULL }, &err),
                         -LK_ERR_INVALID_ARGUMENT);
}

static void test_oversized(void **state)
{
        size_t n = 64 * 1024;
        char *junk = malloc(n + 1);

        for (size_t i = 0; i < n; i++)
                junk[i] = (char)('!' + (i * 7) % 90);
        junk[n] = 0;
        parse(junk, STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "longer than 8192"));

        /* Exactly at the cap it is looked at (and refused here as too long a code). */
        junk[LK_ANSWER_MAX] = 0;
        parse(junk, STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_null(strstr(err.message, "longer than 8192"));
        free(junk);
}

static void test_invalid_utf8(void **state)
{
        parse("abc\xff", STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the answer is not valid UTF-8");
        parse("https://login.example.com/cb?code=\xc0\xaf&state=" STATE, STATE,
              -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the answer is not valid UTF-8");
        parse("\xed\xa0\x80", STATE, -LK_ERR_INVALID_ARGUMENT);
}

static void test_control_chars(void **state)
{
        parse("abc\x1b[2Jdef", STATE, -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the answer holds control characters");
        parse("abc\tdef", STATE, -LK_ERR_INVALID_ARGUMENT);
        parse("abc\x7f", STATE, -LK_ERR_INVALID_ARGUMENT);
        parse("abc\xc2\x9b" "def", STATE, -LK_ERR_INVALID_ARGUMENT); /* C1 CSI */
        parse("https://login.example.com/cb?code=" CODE "\n&state=" STATE, STATE,
              -LK_ERR_INVALID_ARGUMENT);
}

static void test_bad_url(void **state)
{
        parse("https://login example.com/cb?code=" CODE "&state=" STATE, STATE,
              -LK_ERR_INVALID_ARGUMENT);
        parse("https://", STATE, -LK_ERR_INVALID_ARGUMENT);
}

/* RFC 9207: an iss that is there must be ours; a provider that promises it must send it. */
static void test_iss(void **state)
{
        static const char base[] = "https://login.example.com/cb?code=" CODE "&state=" STATE;
        char *code;

        /* Ours: fine, encoded or not, with or without the promise. */
        code = parse_iss("https://login.example.com/cb?code=" CODE "&state=" STATE
                         "&iss=" ISSUER_ENC, STATE, ISSUER, true, 0);
        assert_string_equal(code, CODE);
        free(code);
        code = parse_iss("?iss=" ISSUER "&code=" CODE "&state=" STATE, STATE, ISSUER, false, 0);
        assert_string_equal(code, CODE);
        free(code);
        /* Without iss and without the promise: as before RFC 9207. */
        free(parse_iss(base, STATE, ISSUER, false, 0));

        /* Another issuer: refused, on a code as on an error, even without the promise. */
        parse_iss("https://login.example.com/cb?code=" CODE "&state=" STATE
                  "&iss=https%3A%2F%2Fevil.example.net", STATE, ISSUER, false,
                  -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the address's iss 'https://evil.example.net' is not "
                                         "this provider's issuer: it answers a login at another "
                                         "provider (RFC 9207)");
        parse_iss("code=" CODE "&state=" STATE "&iss=" ISSUER "/", STATE, ISSUER, false,
                  -LK_ERR_INVALID_ARGUMENT);
        parse_iss("https://login.example.com/cb?error=access_denied&state=" STATE
                  "&iss=https%3A%2F%2Fevil.example.net", STATE, ISSUER, false,
                  -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "RFC 9207"));
        /* Twice, or empty. */
        parse_iss("?code=" CODE "&state=" STATE "&iss=" ISSUER "&iss=" ISSUER, STATE, ISSUER,
                  false, -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.message, "the address holds iss more than once");
        parse_iss("?code=" CODE "&state=" STATE "&iss=", STATE, ISSUER, false,
                  -LK_ERR_INVALID_ARGUMENT);

        /* Promised but absent: refused, errors included. */
        parse_iss(base, STATE, ISSUER, true, -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "carries no iss"));
        parse_iss("https://login.example.com/cb?error=access_denied&state=" STATE, STATE, ISSUER,
                  true, -LK_ERR_INVALID_ARGUMENT);

        /* A bare code carries no iss and is taken (PKCE binds it to the login). */
        code = parse_iss(CODE, STATE, ISSUER, true, 0);
        assert_string_equal(code, CODE);
        free(code);

        /* A caller that names no issuer does not check one. */
        free(parse_iss(base, STATE, NULL, true, 0));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bare_code),
                cmocka_unit_test(test_bare_code_bad),
                cmocka_unit_test(test_full_url),
                cmocka_unit_test(test_url_percent_encoded),
                cmocka_unit_test(test_without_scheme),
                cmocka_unit_test(test_state_mismatch),
                cmocka_unit_test(test_missing_state),
                cmocka_unit_test(test_missing_code),
                cmocka_unit_test(test_error),
                cmocka_unit_test(test_error_sanitized),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_oversized),
                cmocka_unit_test(test_invalid_utf8),
                cmocka_unit_test(test_control_chars),
                cmocka_unit_test(test_bad_url),
                cmocka_unit_test(test_iss),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
