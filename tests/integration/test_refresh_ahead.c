/* SPDX-License-Identifier: MIT */
/*
 * Background refresh (refresh_ahead = yes, issue 22 item 3), end to end: latchkeyd on a
 * private bus with the test IdP, tokens of 8 s and refresh_margin = 5, so that each refresh
 * time comes within seconds. While the background refresh is at the provider (held there by
 * delay_ms), GetToken answers the current token: a caller that waited would get the new one.
 * A provider down during the background refresh: the cached token until it expires, then
 * ProviderUnavailable. A refresh token the provider refuses: SessionChanged "expired" once,
 * then TokenExpired. Runs as root and signs in as root (allow_system_users).
 */
#include <dbus/dbus.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"

#define LIFETIME "8"

static int setup(void **state)
{
        return lkh_setup_broker(state, NULL,
                                "[sessions]\nrefresh_margin = 5\nrefresh_ahead = yes\n");
}

static DBusConnection *bus_open(struct lkh *h)
{
        DBusConnection *c = bc_open(h->bus_address);

        assert_non_null(c);
        return c;
}

static long stat_of(struct lkh *h, const char *name)
{
        long n = -1;

        assert_int_equal(lkh_idp_stat(h, name, &n), 0);
        return n;
}

/* GetToken(sid), which must succeed: the token, its expiry in *ret_expires. */
static char *token_of(DBusConnection *c, const char *sid, int64_t *ret_expires)
{
        _cleanup_free_ char *e = NULL, *m = NULL;
        char *t = NULL;

        e = bc_get_token(c, sid, 0, &t, ret_expires, &m);
        if (e)
                fail_msg("GetToken %s: %s: %s", sid, e, m);
        return t;
}

/* The session's tokens are refreshed by the background while callers keep getting the current
 * one from memory; the provider sees one request. */
static void test_callers_never_wait(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h);
        _cleanup_free_ char *first = NULL, *after = NULL;
        int64_t exp = 0, deadline;
        long r0;

        assert_int_equal(lkh_idp_reset(h), 0); /* whatever a failed test left */
        assert_int_equal(lkh_idp_set(h, "expires_in", LIFETIME), 0);
        assert_int_equal(bc_open_session(h, c, "root", "ra-1"), 0);
        /* The refresh will wait 4 s at the provider: longer than the token has left then. */
        assert_int_equal(lkh_idp_set(h, "delay_ms", "4000"), 0);
        r0 = stat_of(h, "token_refresh");
        first = token_of(c, "ra-1", &exp);

        /* Until the background refresh reaches the provider (at 5 or 6 s before expiry). */
        deadline = lkh_now_ms() + 8000;
        while (stat_of(h, "token_refresh") == r0 && lkh_now_ms() < deadline) {
                _cleanup_free_ char *t = token_of(c, "ra-1", NULL);

                assert_string_equal(t, first);
                lkh_sleep_ms(50);
        }
        assert_int_equal(stat_of(h, "token_refresh"), r0 + 1);
        /* It is at the provider for 4 s: every caller meanwhile gets the current token at once
         * (one that waited for the refresh would have the new one). */
        for (int i = 0; i < 10; i++) {
                _cleanup_free_ char *t = token_of(c, "ra-1", NULL);

                assert_string_equal(t, first);
                lkh_sleep_ms(100);
        }
        /* Then the new token, still from one request. */
        deadline = lkh_now_ms() + 8000;
        do {
                free(after);
                lkh_sleep_ms(100);
                after = token_of(c, "ra-1", NULL);
        } while (streq(after, first) && lkh_now_ms() < deadline);
        assert_string_not_equal(after, first);
        assert_int_equal(stat_of(h, "token_refresh"), r0 + 1);
        assert_int_equal(lkh_idp_reset(h), 0);
        assert_null(bc_call_s(c, "CloseSession", "ra-1", NULL, NULL, NULL));
        bc_close(c);
}

/* The provider is down at the background refresh: the cached token until it expires, then
 * ProviderUnavailable (the session stays: its refresh token may work again). */
static void test_outage(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h);
        _cleanup_free_ char *first = NULL, *e = NULL, *m = NULL;
        int64_t exp = 0;
        long r0;

        assert_int_equal(lkh_idp_reset(h), 0); /* whatever a failed test left */
        assert_int_equal(lkh_idp_set(h, "expires_in", LIFETIME), 0);
        assert_int_equal(bc_open_session(h, c, "root", "ra-2"), 0);
        assert_int_equal(lkh_idp_set(h, "fail_status", "503"), 0);
        r0 = stat_of(h, "token_refresh");
        first = token_of(c, "ra-2", &exp);
        /* To the last second before expiry (the broker's clock may be a second on). */
        while (time(NULL) < exp - 1) {
                _cleanup_free_ char *t = token_of(c, "ra-2", NULL);

                assert_string_equal(t, first);
                lkh_sleep_ms(100);
        }
        assert_true(stat_of(h, "token_refresh") > r0); /* the background tried */
        while (time(NULL) <= exp)
                lkh_sleep_ms(100);
        e = bc_get_token(c, "ra-2", 0, NULL, NULL, &m);
        assert_non_null(e);
        assert_string_equal(e, BC_ERR("ProviderUnavailable"));
        assert_int_equal(lkh_idp_reset(h), 0);
        assert_null(bc_call_s(c, "CloseSession", "ra-2", NULL, NULL, NULL));
        bc_close(c);
}

/* Signals of session sid for wait_ms, as "opened expired ...". */
static void read_events(DBusConnection *l, const char *sid, int wait_ms, char *seen, size_t size)
{
        int64_t deadline = lkh_now_ms() + wait_ms;

        while (lkh_now_ms() < deadline) {
                DBusMessage *msg;

                dbus_connection_read_write(l, 50);
                while ((msg = dbus_connection_pop_message(l))) {
                        const char *id, *ev;

                        if (dbus_message_is_signal(msg, BC_IFACE, "SessionChanged") &&
                            dbus_message_get_args(msg, NULL, DBUS_TYPE_STRING, &id,
                                                  DBUS_TYPE_STRING, &ev, DBUS_TYPE_INVALID) &&
                            streq(id, sid)) {
                                size_t n = strlen(seen);

                                snprintf(seen + n, size - n, "%s%s", n ? " " : "", ev);
                        }
                        dbus_message_unref(msg);
                }
        }
}

/* The background refresh finds the refresh token refused: "expired" once, then TokenExpired. */
static void test_dead_refresh_token(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h), *l = bus_open(h);
        _cleanup_free_ char *e = NULL, *m = NULL;
        char seen[256] = "";

        assert_int_equal(lkh_idp_reset(h), 0); /* whatever a failed test left */
        dbus_bus_add_match(l,
                           "type='signal',sender='" BC_NAME "',interface='" BC_IFACE
                           "',member='SessionChanged'",
                           NULL);
        dbus_connection_flush(l);
        assert_int_equal(lkh_idp_set(h, "expires_in", LIFETIME), 0);
        assert_int_equal(bc_open_session(h, c, "root", "ra-3"), 0);
        assert_int_equal(lkh_idp_set(h, "refresh_invalid_grant", "1"), 0);
        /* The refresh comes 2 to 3 s after the login; then 3 s more to see no second one. */
        read_events(l, "ra-3", 6000, seen, sizeof(seen));
        assert_string_equal(seen, "opened expired");
        e = bc_get_token(c, "ra-3", 0, NULL, NULL, &m);
        assert_non_null(e);
        assert_string_equal(e, BC_ERR("TokenExpired"));
        assert_int_equal(stat_of(h, "token_refresh") > 0, 1);
        assert_int_equal(lkh_idp_reset(h), 0);
        assert_null(bc_call_s(c, "CloseSession", "ra-3", NULL, NULL, NULL));
        bc_close(l);
        bc_close(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_callers_never_wait),
            cmocka_unit_test(test_outage),
            cmocka_unit_test(test_dead_refresh_token),
        };

        return cmocka_run_group_tests(tests, setup, lkh_teardown);
}
