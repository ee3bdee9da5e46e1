/* SPDX-License-Identifier: MIT */
/*
 * The callback listener's network-free parts: which request targets are callbacks and what
 * state they carry (callback_request.c), and the rate per client address (callback_rate.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/callback_rate.h"
#include "broker/callback_request.h"
#include "oidc/secret.h"

static void test_targets(void **state)
{
        static const char *const not_callbacks[] = {
                "/", "/callback", "/callback/", "/callback/?code=a&state=b", "/Callback?state=b",
                "/callback2?state=b", "/x/callback?state=b", "callback?state=b",
                "/%63allback?state=b", "",
        };
        const char *q = NULL;
        size_t len = 0;

        for (size_t i = 0; i < ELEMENTSOF(not_callbacks); i++)
                assert_int_equal(lk_callback_target(not_callbacks[i], "/callback", &q, &len),
                                 -LK_ERR_NOT_FOUND);
        assert_int_equal(lk_callback_target("/callback?code=a&state=b#frag", "/callback", &q,
                                            &len), 0);
        assert_int_equal(len, strlen("code=a&state=b"));
        assert_memory_equal(q, "code=a&state=b", len);
        /* A path with a query of its own in redirect_uri: only the path is compared. */
        assert_int_equal(lk_callback_target("/?state=x", "/", &q, &len), 0);
}

static void test_states(void **state)
{
        struct lk_error e = {0};
        const char *q = NULL;
        size_t len = 0;
        char *st = NULL;

        assert_int_equal(lk_callback_request_state("/cb?code=c&state=a%2Bb+c&iss=x", "/cb", &q,
                                                   &len, &st, &e), 0);
        assert_string_equal(st, "a+b c");
        lk_secret_free(st);
        st = NULL;

        /* Not the path: not found; no state, empty, twice or NUL: refused with a reason. */
        assert_int_equal(lk_callback_request_state("/other?state=a", "/cb", &q, &len, &st, &e),
                         -LK_ERR_NOT_FOUND);
        lk_error_clear(&e);
        assert_int_equal(lk_callback_request_state("/cb?code=c", "/cb", &q, &len, &st, &e),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(e.message, "the address carries no state");
        lk_error_clear(&e);
        assert_int_equal(lk_callback_request_state("/cb?state=&code=c", "/cb", &q, &len, &st, &e),
                         -LK_ERR_INVALID_ARGUMENT);
        lk_error_clear(&e);
        assert_int_equal(lk_callback_request_state("/cb?state=a&state=a", "/cb", &q, &len, &st,
                                                   &e),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_string_equal(e.message, "the address holds state more than once");
        lk_error_clear(&e);
        assert_int_equal(lk_callback_request_state("/cb?state=a%00b", "/cb", &q, &len, &st, &e),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_null(st);
}

static void v4(struct sockaddr_in *a, const char *s)
{
        *a = (struct sockaddr_in){.sin_family = AF_INET};
        assert_int_equal(inet_pton(AF_INET, s, &a->sin_addr), 1);
}

static void v6(struct sockaddr_in6 *a, const char *s)
{
        *a = (struct sockaddr_in6){.sin6_family = AF_INET6};
        assert_int_equal(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
}

static void test_rate(void **state)
{
        struct lk_callback_rate *g = NULL;
        struct sockaddr_in a, b;
        struct sockaddr_in6 c, d, mapped;
        int64_t t = 1000000;

        assert_int_equal(lk_callback_rate_new(&g), 0);
        v4(&a, "192.0.2.1");
        v4(&b, "192.0.2.2");
        /* The burst, then nothing; another address is untouched. */
        for (int i = 0; i < LK_CALLBACK_RATE_BURST; i++)
                assert_true(lk_callback_rate_take(g, (struct sockaddr *)&a, t));
        assert_false(lk_callback_rate_take(g, (struct sockaddr *)&a, t));
        assert_true(lk_callback_rate_take(g, (struct sockaddr *)&b, t));
        /* One comes back every 60 / LK_CALLBACK_RATE_PER_MINUTE seconds. */
        assert_false(lk_callback_rate_take(g, (struct sockaddr *)&a,
                                           t + 60000 / LK_CALLBACK_RATE_PER_MINUTE - 1));
        assert_true(lk_callback_rate_take(g, (struct sockaddr *)&a,
                                          t + 60000 / LK_CALLBACK_RATE_PER_MINUTE));
        assert_false(lk_callback_rate_take(g, (struct sockaddr *)&a,
                                           t + 60000 / LK_CALLBACK_RATE_PER_MINUTE));

        /* IPv6: one /64 is one client; the IPv4-mapped form is its IPv4 address. */
        v6(&c, "2001:db8:1:2::1");
        v6(&d, "2001:db8:1:2:ffff::9");
        for (int i = 0; i < LK_CALLBACK_RATE_BURST; i++)
                assert_true(lk_callback_rate_take(g, (struct sockaddr *)&c, t));
        assert_false(lk_callback_rate_take(g, (struct sockaddr *)&d, t));
        v6(&mapped, "::ffff:192.0.2.1");
        assert_false(lk_callback_rate_take(g, (struct sockaddr *)&mapped, t));
        lk_callback_rate_free(g);
}

static void test_rate_table_bounded(void **state)
{
        struct lk_callback_rate *g = NULL;
        struct sockaddr_in a = {.sin_family = AF_INET};
        int64_t t = 5000;

        assert_int_equal(lk_callback_rate_new(&g), 0);
        /* LK_CALLBACK_CLIENTS_MAX addresses, each with its bucket not full... */
        for (uint32_t i = 0; i < LK_CALLBACK_CLIENTS_MAX; i++) {
                a.sin_addr.s_addr = htonl(0x0a000000u + i);
                assert_true(lk_callback_rate_take(g, (struct sockaddr *)&a, t));
        }
        /* ...then a new one is refused, until the others have refilled and are forgotten. */
        a.sin_addr.s_addr = htonl(0x0b000000u);
        assert_false(lk_callback_rate_take(g, (struct sockaddr *)&a, t));
        assert_true(lk_callback_rate_take(g, (struct sockaddr *)&a, t + 60000));
        /* A family without a key (AF_UNIX) is never served. */
        a.sin_family = AF_UNIX;
        assert_false(lk_callback_rate_take(g, (struct sockaddr *)&a, t + 60000));
        assert_false(lk_callback_rate_take(g, NULL, t));
        lk_callback_rate_free(g);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_targets),
                cmocka_unit_test(test_states),
                cmocka_unit_test(test_rate),
                cmocka_unit_test(test_rate_table_bounded),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
