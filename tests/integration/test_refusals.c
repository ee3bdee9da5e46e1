/* SPDX-License-Identifier: MIT */
/*
 * How the provider says no, end to end (issue 15 "Provider refusals are refusals", "Root and
 * system accounts", "RFC 9207"; issue 16 item 7): each refusal shape of the test IdP
 * (refuse_code, refuse_refresh, retry_after, iss_parameter; tests/idp/README.md) against
 * latchkeyd on a private bus, with the D-Bus error, the session's state afterwards and the
 * SessionChanged signals counted. The PAM codes for the same shapes are in test_pam.c.
 * Runs as root and signs in as root, which the harness lists in allow_system_users.
 */
#include <dbus/dbus.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"

#define ERR BC_ERR

/* ---- a client, and a listener that counts SessionChanged per session and event ---- */

static DBusConnection *bus_open(struct lkh *h)
{
        DBusConnection *c = bc_open(h->bus_address);

        assert_non_null(c);
        return c;
}

static DBusConnection *listener_open(struct lkh *h)
{
        DBusConnection *l = bus_open(h);

        dbus_bus_add_match(l,
                           "type='signal',sender='" BC_NAME "',interface='" BC_IFACE
                           "',member='SessionChanged'",
                           NULL);
        dbus_connection_flush(l);
        return l;
}

/* Reads signals for wait_ms and counts those of session sid with that event. */
static int count_events(DBusConnection *l, const char *sid, const char *event, int wait_ms)
{
        int64_t deadline = lkh_now_ms() + wait_ms;
        int n = 0;

        while (lkh_now_ms() < deadline) {
                DBusMessage *m;

                dbus_connection_read_write(l, 50);
                while ((m = dbus_connection_pop_message(l))) {
                        const char *id, *ev;

                        if (dbus_message_is_signal(m, BC_IFACE, "SessionChanged") &&
                            dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING,
                                                  &ev, DBUS_TYPE_INVALID) &&
                            streq(id, sid) && streq(ev, event))
                                n++;
                        dbus_message_unref(m);
                }
        }
        return n;
}

static long stat_of(struct lkh *h, const char *name)
{
        long n = -1;

        assert_int_equal(lkh_idp_stat(h, name, &n), 0);
        return n;
}

/* GetToken: the error name (NULL on success) and its message. */
static char *get_token(DBusConnection *c, const char *sid, uint32_t min_valid, char **ret_msg)
{
        _cleanup_free_ char *token = NULL;
        char *e = bc_get_token(c, sid, min_valid, &token, NULL, ret_msg);

        assert_false(bc_bad_reply(e));
        return e;
}

static void open_session(struct lkh *h, DBusConnection *c, const char *sid)
{
        assert_int_equal(bc_open_session(h, c, "root", sid), 0);
}

/* BeginLogin and the browser, as root for root: the login id and the callback address. */
static void begin(struct lkh *h, DBusConnection *c, char **ret_id, char **ret_location)
{
        _cleanup_free_ char *url = NULL, *e = NULL;

        e = bc_begin_login(c, "root", ret_id, &url);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url, "root", false, ret_location, NULL), 0);
}

/* A BeginLogin that must fail: its error name and message. */
static char *begin_refused(DBusConnection *c, const char *user, char **ret_msg)
{
        DBusMessage *m = bc_new("BeginLogin");
        struct bc_reply r;

        assert_true(dbus_message_append_args(m, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID));
        bc_append_options(m, NULL, 0);
        assert_int_equal(bc_call(c, m, 30000, &r), -1);
        return bc_take_error(&r, ret_msg);
}

/* CompleteLogin: the error name (NULL on success) and its message. */
static char *complete(DBusConnection *c, const char *id, const char *answer, char **ret_msg)
{
        char *e = bc_call_s(c, "CompleteLogin", id, answer, NULL, ret_msg);

        assert_false(bc_bad_reply(e));
        return e;
}

static void close_session(DBusConnection *c, const char *sid)
{
        _cleanup_free_ char *e = bc_call_s(c, "CloseSession", sid, NULL, NULL, NULL);

        assert_null(e);
}

/*
 * A new broker on the same state: the sessions come back from disk, and one refresh per
 * LK_REFRESH_INTERVAL_MIN of each session (an in-memory floor) starts again.
 */
static void restart_broker(struct lkh *h)
{
        lkh_stop_broker(h);
        assert_int_equal(lkh_start_broker(h, NULL), 0);
}

static void expect_contains(const char *text, const char *needle)
{
        if (!text || !strstr(text, needle))
                fail_msg("'%s' lacks '%s'", text ? text : "(null)", needle);
}

/* ---- a refresh refused: the session becomes TokenExpired, "expired" once ---- */

static void test_refresh_refusals_expire(void **state)
{
        static const char *const shapes[] = {
                "403:invalid_grant", "401:invalid_grant", "400:invalid_grant",
                "400",               /* an empty 400: a dead refresh token */
                "401",               /* an empty 401 */
                "400:invalid_request", /* a dead refresh token, as some providers say it */
                "403:access_denied",
        };
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h), *l = listener_open(h);

        for (size_t i = 0; i < ELEMENTSOF(shapes); i++) {
                _cleanup_free_ char *e = NULL, *msg = NULL, *e2 = NULL, *msg2 = NULL;
                char sid[32];
                long before;

                snprintf(sid, sizeof(sid), "rr-%zu", i);
                assert_int_equal(lkh_idp_reset(h), 0);
                open_session(h, c, sid);
                assert_int_equal(lkh_idp_set(h, "refuse_refresh", shapes[i]), 0);
                before = stat_of(h, "token_refresh");

                e = get_token(c, sid, 7200, &msg);
                if (!e || !streq(e, ERR("TokenExpired")))
                        fail_msg("%s: %s: %s", shapes[i], e ? e : "success", msg ? msg : "");
                expect_contains(msg, "the provider refused the refresh token");
                expect_contains(msg, "log in again");
                if (strchr(shapes[i], ':'))
                        expect_contains(msg, strchr(shapes[i], ':') + 1);
                else
                        expect_contains(msg, "without an OAuth error");

                /* It stays expired, without asking the provider again. */
                e2 = get_token(c, sid, 0, &msg2);
                assert_string_equal(e2, ERR("TokenExpired"));
                assert_int_equal(stat_of(h, "token_refresh"), before + 1);
                assert_int_equal(count_events(l, sid, "expired", 300), 1);
                close_session(c, sid);
        }
        bc_close(l);
        bc_close(c);
}

/*
 * invalid_client on a refresh: latchkey's registration is refused (a rotated secret). The
 * session stays; GetToken says whose problem it is (ProviderUnavailable, so that stacks fall
 * back) and works again once the provider takes the client again.
 */
static void test_refresh_client_refused_keeps_session(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h), *l = listener_open(h);
        _cleanup_free_ char *e = NULL, *msg = NULL, *e2 = NULL;

        assert_int_equal(lkh_idp_reset(h), 0);
        assert_int_equal(lkh_idp_set(h, "expires_in", "1"), 0);
        open_session(h, c, "cr-1");
        assert_int_equal(lkh_idp_reset(h), 0);
        assert_int_equal(lkh_idp_set(h, "refuse_refresh", "401:invalid_client"), 0);
        usleep(1500 * 1000); /* the access token is gone: only a refresh can answer */

        e = get_token(c, "cr-1", 0, &msg);
        assert_non_null(e);
        assert_string_equal(e, ERR("ProviderUnavailable"));
        expect_contains(msg, "refused latchkey's client credentials (invalid_client");
        expect_contains(msg, "check [provider] client_id and the client secret");
        assert_int_equal(count_events(l, "cr-1", "expired", 300), 0);

        /* Within the refresh floor, the same answer again, and no request. */
        free(e);
        free(msg);
        e = get_token(c, "cr-1", 0, &msg);
        assert_string_equal(e, ERR("ProviderUnavailable"));
        expect_contains(msg, "refused latchkey's client credentials (invalid_client");

        /* The admin fixes the registration and restarts the broker (a new secret is read at
         * start): the same session refreshes. */
        assert_int_equal(lkh_idp_set(h, "refuse_refresh", "0"), 0);
        restart_broker(h);
        e2 = get_token(c, "cr-1", 0, NULL);
        assert_null(e2);
        assert_int_equal(count_events(l, "cr-1", "refreshed", 300), 1);
        close_session(c, "cr-1");
        bc_close(l);
        bc_close(c);
}

/* A code refused in each shape: InvalidGrant with the provider's words, or the admin's. */
static void test_exchange_refusals(void **state)
{
        static const struct {
                const char *shape, *error, *words;
        } shapes[] = {
                { "403:invalid_grant", ERR("InvalidGrant"), "invalid_grant" },
                { "401:invalid_grant", ERR("InvalidGrant"), "invalid_grant" },
                { "400:invalid_request", ERR("InvalidGrant"), "invalid_request" },
                { "400", ERR("InvalidGrant"), "HTTP 400, without an OAuth error" },
                { "401:invalid_client", ERR("ProviderUnavailable"), "client credentials" },
                { "400:unauthorized_client", ERR("ProviderUnavailable"), "unauthorized_client" },
        };
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h);

        for (size_t i = 0; i < ELEMENTSOF(shapes); i++) {
                _cleanup_free_ char *id = NULL, *location = NULL, *e = NULL, *msg = NULL;

                assert_int_equal(lkh_idp_reset(h), 0);
                assert_int_equal(lkh_idp_set(h, "refuse_code", shapes[i].shape), 0);
                begin(h, c, &id, &location);
                e = complete(c, id, location, &msg);
                if (!e || !streq(e, shapes[i].error))
                        fail_msg("%s: %s: %s", shapes[i].shape, e ? e : "success",
                                 msg ? msg : "");
                expect_contains(msg, shapes[i].words);
                assert_int_equal(stat_of(h, "token_code"), 1);
                free(bc_call_s(c, "CancelLogin", id, NULL, NULL, NULL));
        }
        assert_int_equal(lkh_idp_reset(h), 0);
        bc_close(c);
}

/*
 * 429: TooManyRequests, and no token request at all until Retry-After is up; the session is
 * not expired by it. Its own broker: the wait holds for every caller of the provider.
 */
static void test_too_many_requests(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h), *l = listener_open(h);
        _cleanup_free_ char *e = NULL, *msg = NULL, *e2 = NULL, *msg2 = NULL;
        _cleanup_free_ char *id = NULL, *location = NULL, *e3 = NULL, *msg3 = NULL;
        long refreshes, codes;

        assert_int_equal(lkh_idp_reset(h), 0);
        assert_int_equal(lkh_idp_set(h, "expires_in", "1"), 0);
        open_session(h, c, "tm-1");
        assert_int_equal(lkh_idp_reset(h), 0);
        assert_int_equal(lkh_idp_set(h, "refuse_refresh", "429"), 0);
        assert_int_equal(lkh_idp_set(h, "retry_after", "120"), 0);
        usleep(1500 * 1000);

        e = get_token(c, "tm-1", 0, &msg);
        assert_non_null(e);
        assert_string_equal(e, ERR("TooManyRequests"));
        expect_contains(msg, "HTTP 429");
        expect_contains(msg, "120 s");
        refreshes = stat_of(h, "token_refresh");
        assert_int_equal(refreshes, 1);

        /* The provider is fine again, but asked for two minutes: nothing is sent. */
        assert_int_equal(lkh_idp_reset(h), 0);
        e2 = get_token(c, "tm-1", 0, &msg2);
        assert_non_null(e2);
        assert_string_equal(e2, ERR("TooManyRequests"));
        /* Within the session's refresh floor the broker repeats the 429's answer. */
        expect_contains(msg2, "HTTP 429");
        begin(h, c, &id, &location);
        e3 = complete(c, id, location, &msg3);
        assert_non_null(e3);
        assert_string_equal(e3, ERR("TooManyRequests"));
        assert_int_equal(lkh_idp_stat(h, "token_refresh", &refreshes), 0);
        assert_int_equal(lkh_idp_stat(h, "token_code", &codes), 0);
        assert_int_equal(refreshes + codes, 0);
        assert_int_equal(count_events(l, "tm-1", "expired", 300), 0);
        bc_close(l);
        bc_close(c);
}

/* ---- issue 16 item 7: a refresh re-applies [users] ---- */

static void test_refresh_reapplies_users(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h), *l = listener_open(h);
        _cleanup_free_ char *e = NULL, *msg = NULL, *e2 = NULL, *msg2 = NULL, *e3 = NULL;
        _cleanup_free_ char *e4 = NULL, *e5 = NULL;

        /* Moved out of allowed_groups at the provider: the next refresh ends the session. */
        assert_int_equal(lkh_idp_reset(h), 0);
        open_session(h, c, "ug-1");
        assert_int_equal(lkh_idp_set(h, "groups", "others"), 0);
        e = get_token(c, "ug-1", 7200, &msg);
        assert_non_null(e);
        assert_string_equal(e, ERR("TokenExpired"));
        expect_contains(msg, "the provider no longer allows this user here");
        expect_contains(msg, "none of the allowed_groups");
        free(e);
        e = get_token(c, "ug-1", 0, NULL);
        assert_string_equal(e, ERR("TokenExpired"));
        assert_int_equal(count_events(l, "ug-1", "expired", 300), 1);
        close_session(c, "ug-1");

        /* Renamed at the provider: the id_token no longer maps to the session's user. */
        assert_int_equal(lkh_idp_reset(h), 0);
        open_session(h, c, "ug-2");
        assert_int_equal(lkh_idp_set(h, "id_token_user", "someone-else"), 0);
        e2 = get_token(c, "ug-2", 7200, &msg2);
        assert_non_null(e2);
        assert_string_equal(e2, ERR("TokenExpired"));
        expect_contains(msg2, "no longer allows this user");
        expect_contains(msg2, "'someone-else'");
        assert_int_equal(count_events(l, "ug-2", "expired", 300), 1);
        close_session(c, "ug-2");

        /* A refresh without a new id_token has nothing new to judge: the session goes on. */
        assert_int_equal(lkh_idp_reset(h), 0);
        open_session(h, c, "ug-3");
        assert_int_equal(lkh_idp_set(h, "omit_id_token", "1"), 0);
        assert_int_equal(lkh_idp_set(h, "groups", "others"), 0);
        e3 = get_token(c, "ug-3", 7200, NULL);
        assert_null(e3);
        assert_int_equal(count_events(l, "ug-3", "refreshed", 300), 1);
        /* And the next one that carries an id_token is judged again (after a restart: the
         * refresh floor would answer the current token within 30 s). */
        assert_int_equal(lkh_idp_set(h, "omit_id_token", "0"), 0);
        restart_broker(h);
        e4 = get_token(c, "ug-3", 7200, NULL);
        assert_string_equal(e4, ERR("TokenExpired"));
        /* Still allowed: fine. */
        assert_int_equal(lkh_idp_reset(h), 0);
        open_session(h, c, "ug-4");
        e5 = get_token(c, "ug-4", 7200, NULL);
        assert_null(e5);
        close_session(c, "ug-3");
        close_session(c, "ug-4");
        bc_close(l);
        bc_close(c);
}

/* ---- root and system accounts ---- */

/* Refused at BeginLogin, before any provider request; a normal uid is not. */
static void test_system_account_refused(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h);
        _cleanup_free_ char *id = NULL, *url = NULL, *e = NULL, *msg = NULL, *e2 = NULL;
        _cleanup_free_ char *e3 = NULL, *msg3 = NULL;

        assert_int_equal(lkh_idp_reset(h), 0);
        e = begin_refused(c, "root", &msg);
        assert_string_equal(e, ERR("NotAllowed"));
        assert_string_equal(msg, "root is root (uid 0): single sign-on may log in as root only "
                                 "where [users] allow_system_users names it");
        e3 = begin_refused(c, "daemon", &msg3);
        assert_string_equal(e3, ERR("NotAllowed"));
        expect_contains(msg3, "daemon is a system account (uid 1, below UID_MIN");
        /* Not one request to the provider: not even discovery. */
        assert_int_equal(stat_of(h, "discovery"), 0);
        assert_int_equal(stat_of(h, "authorize"), 0);

        /* nobody (65534) is above UID_MIN: SSO may begin for it. */
        e2 = bc_begin_login(c, "nobody", &id, &url);
        assert_null(e2);
        assert_int_equal(stat_of(h, "discovery"), 1);
        free(bc_call_s(c, "CancelLogin", id, NULL, NULL, NULL));
        bc_close(c);
}

/* ---- RFC 9207 ---- */

/* location without its iss parameter (which the IdP puts last). */
static char *strip_iss(const char *location)
{
        const char *p = strstr(location, "&iss=");

        assert_non_null(p);
        return strndup(location, (size_t)(p - location));
}

/* A callback carrying another provider's iss is refused before any token request. */
static void test_iss_mismatch(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h);
        _cleanup_free_ char *id = NULL, *location = NULL, *bad = NULL, *e = NULL, *msg = NULL;
        _cleanup_free_ char *e2 = NULL;

        assert_int_equal(lkh_idp_reset(h), 0);
        begin(h, c, &id, &location);
        assert_null(strstr(location, "iss=")); /* this provider does not send it */
        assert_true(asprintf(&bad, "%s&iss=https%%3A%%2F%%2Fevil.example.net", location) > 0);
        e = complete(c, id, bad, &msg);
        assert_string_equal(e, ERR("InvalidArgument"));
        expect_contains(msg, "'https://evil.example.net' is not this provider's issuer");
        assert_int_equal(stat_of(h, "token_code"), 0);
        /* The login is still there for the right answer. */
        e2 = complete(c, id, location, NULL);
        assert_null(e2);
        free(bc_call_s(c, "CancelLogin", id, NULL, NULL, NULL));
        bc_close(c);
}

/* A provider that promises iss (discovery): it must be there, and be the issuer. */
static void test_iss_required(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h);
        _cleanup_free_ char *id = NULL, *location = NULL, *bare = NULL, *evil = NULL;
        _cleanup_free_ char *e = NULL, *msg = NULL, *e2 = NULL, *msg2 = NULL, *e3 = NULL;
        _cleanup_free_ char *id2 = NULL, *location2 = NULL, *code = NULL, *url = NULL;
        _cleanup_free_ char *e4 = NULL;

        begin(h, c, &id, &location);
        expect_contains(location, "&iss=https%3A%2F%2F");
        bare = strip_iss(location);
        e = complete(c, id, bare, &msg);
        assert_string_equal(e, ERR("InvalidArgument"));
        expect_contains(msg, "carries no iss, though the provider says it always sends one");
        assert_true(asprintf(&evil, "%s&iss=https%%3A%%2F%%2Fevil.example.net", bare) > 0);
        e2 = complete(c, id, evil, &msg2);
        assert_string_equal(e2, ERR("InvalidArgument"));
        expect_contains(msg2, "RFC 9207");
        assert_int_equal(stat_of(h, "token_code"), 0);
        e3 = complete(c, id, location, NULL);
        assert_null(e3);
        assert_int_equal(stat_of(h, "token_code"), 1);
        free(bc_call_s(c, "CancelLogin", id, NULL, NULL, NULL));

        /* A bare code carries no iss and is taken: PKCE binds it to its login. */
        e4 = bc_begin_login(c, "root", &id2, &url);
        assert_null(e4);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &location2, &code), 0);
        free(e4);
        e4 = complete(c, id2, code, NULL);
        assert_null(e4);
        free(bc_call_s(c, "CancelLogin", id2, NULL, NULL, NULL));
        bc_close(c);
}

/* ---- groups ---- */

static int setup_plain(void **state)
{
        return lkh_setup_broker(state, NULL, "[sessions]\nrefresh_margin = 60\n");
}

static int setup_groups(void **state)
{
        return lkh_setup_broker(state, NULL, "[users]\nallowed_groups = users\n");
}

/* No allow_system_users: the harness's list is taken back. */
static int setup_no_system_users(void **state)
{
        return lkh_setup_broker(state, NULL, "[users]\nallow_system_users =\n");
}

/* The IdP promises iss before the broker has read its discovery document (it reads it late). */
static int setup_iss(void **state)
{
        if (lkh_setup_broker(state, NULL, NULL) < 0)
                return -1;
        return lkh_idp_set(*state, "iss_parameter", "1") < 0 ? -1 : 0;
}

int main(void)
{
        const struct CMUnitTest plain[] = {
                cmocka_unit_test(test_refresh_refusals_expire),
                cmocka_unit_test(test_refresh_client_refused_keeps_session),
                cmocka_unit_test(test_exchange_refusals),
                cmocka_unit_test(test_iss_mismatch),
        };
        const struct CMUnitTest throttled[] = {
                cmocka_unit_test(test_too_many_requests),
        };
        const struct CMUnitTest groups[] = {
                cmocka_unit_test(test_refresh_reapplies_users),
        };
        const struct CMUnitTest system_users[] = {
                cmocka_unit_test(test_system_account_refused),
        };
        const struct CMUnitTest iss[] = {
                cmocka_unit_test(test_iss_required),
        };
        int failed = 0;

        if (geteuid() != 0) {
                fprintf(stderr, "test-refusals needs root (a system-like bus); skipping\n");
                return 77;
        }
        failed += cmocka_run_group_tests_name("refusals", plain, setup_plain, lkh_teardown);
        failed += cmocka_run_group_tests_name("refusals, 429", throttled, setup_plain,
                                              lkh_teardown);
        failed += cmocka_run_group_tests_name("refusals, [users] on refresh", groups,
                                              setup_groups, lkh_teardown);
        failed += cmocka_run_group_tests_name("refusals, system accounts", system_users,
                                              setup_no_system_users, lkh_teardown);
        failed += cmocka_run_group_tests_name("refusals, RFC 9207", iss, setup_iss, lkh_teardown);
        return failed ? 1 : 0;
}
