/* SPDX-License-Identifier: MIT */
/* The URL policy (oidc/url_policy.c): https unless loopback, no userinfo, no fragment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/util.h"
#include "oidc/url_policy.h"

static void test_loopback_hosts(void **state)
{
        static const char *const yes[] = {
                "localhost", "LOCALHOST", "localhost.", "127.0.0.1", "127.255.255.254",
                "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]",
        };
        static const char *const no[] = {
                "", "localhost.evil.com", "evil.localhost", "128.0.0.1", "126.255.255.255",
                "127.0.0.1.evil.com", "::1", "[::2]", "[::ffff:10.0.0.1]", "[::1", "[]",
                "0.0.0.0", "[::]",
        };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (!lk_host_is_loopback(yes[i]))
                        fail_msg("%s not taken for loopback", yes[i]);
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (lk_host_is_loopback(no[i]))
                        fail_msg("%s taken for loopback", no[i]);
}

static void expect_refused(const char *url, const char *want)
{
        char why[256] = "";

        assert_int_equal(lk_url_check(url, why, sizeof(why)), -LK_ERR_CONFIG);
        assert_string_equal(why, want);
}

static void test_refusals_say_why(void **state)
{
        char why[256];

        assert_int_equal(lk_url_check("https://idp.example.com/realms/a?x=1", why, sizeof(why)), 0);
        assert_int_equal(lk_url_check("http://127.0.0.1:8080/cb", why, sizeof(why)), 0);
        /* curl hands the host back normalised: 127.1 is 127.0.0.1 */
        assert_int_equal(lk_url_check("http://127.1/", why, sizeof(why)), 0);

        expect_refused("http://idp.example.com/",
                       "'http://idp.example.com/' is refused: http:// is allowed only for a "
                       "loopback host (127.0.0.0/8, ::1, localhost); use https://");
        expect_refused("ftp://idp.example.com/", "'ftp://idp.example.com/' is not an http(s) URL");
        expect_refused("https://idp.example.com/#top",
                       "'https://idp.example.com/#top' must not have a #fragment");
        expect_refused("https://:443/", "'https://:443/' is not an absolute http(s) URL "
                                        "(No host part in the URL)");
        /* Userinfo may hold a password: the URL is never quoted then. */
        expect_refused("https://alice:pw@idp.example.com/",
                       "the URL must not hold a user name or password");
        expect_refused("ftp://pw@idp.example.com/", "the URL is not an http(s) URL");
}

static void test_quote_is_escaped_and_cut(void **state)
{
        char url[200], why[512];

        /* A control character from a file is shown escaped, never as is. */
        assert_int_equal(lk_url_check("http://evil.example.com/\x1b[2J", why, sizeof(why)),
                         -LK_ERR_CONFIG);
        assert_null(strchr(why, '\x1b'));

        memset(url, 'a', sizeof(url) - 1);
        url[sizeof(url) - 1] = 0;
        memcpy(url, "http://", 7);
        assert_int_equal(lk_url_check(url, why, sizeof(why)), -LK_ERR_CONFIG);
        assert_non_null(strstr(why, "...' is refused: http://"));
        assert_true(strlen(why) < 200);
}

static void test_endpoint_names_the_key(void **state)
{
        struct lk_error e = {0};

        assert_int_equal(lk_check_endpoint_url(NULL, "token_endpoint", &e), -LK_ERR_CONFIG);
        assert_string_equal(e.message, "token_endpoint: empty URL");
        e = (struct lk_error){0};
        assert_int_equal(lk_check_endpoint_url("https://idp.example.com/#f", "jwks_uri", &e),
                         -LK_ERR_CONFIG);
        assert_string_equal(e.message,
                            "jwks_uri: 'https://idp.example.com/#f' must not have a #fragment");
        assert_int_equal(lk_check_endpoint_url("https://idp.example.com/k", "jwks_uri", &e), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_loopback_hosts),
                cmocka_unit_test(test_refusals_say_why),
                cmocka_unit_test(test_quote_is_escaped_and_cut),
                cmocka_unit_test(test_endpoint_names_the_key),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
