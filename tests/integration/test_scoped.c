/* SPDX-License-Identifier: MIT */
/*
 * GetToken's options scope and audience (issue 22) against the real broker and the test
 * IdP: a narrower token per (session, scope, audience), fetched with a refresh request that
 * carries them (the IdP writes what it was asked into the token: "<random>.<base64url of
 * {scope, resource or audience}>"), cached, single-flight, never wider than asked, a scope
 * outside the grant refused by name, at most 8 per session, and the rotated refresh token
 * kept for the session's own refreshes. Runs as root.
 */
#include <dbus/dbus.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/util.h"
#include "oidc/b64url.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"

#define ERR BC_ERR

static DBusConnection *open_session(struct lkh *h, const char *id)
{
        DBusConnection *c = bc_open(h->bus_address);

        assert_non_null(c);
        assert_int_equal(bc_open_session(h, c, "root", id), 0);
        return c;
}

/* What the IdP wrote into a narrower token; NULL for a token of the whole grant. */
static json_t *token_marks(const char *token)
{
        const char *dot = strrchr(token, '.');
        unsigned char *text = NULL;
        size_t len;
        json_t *j;

        if (!dot)
                return NULL;
        assert_int_equal(lk_b64url_decode(dot + 1, strlen(dot + 1), &text, &len), 0);
        j = json_loadb((const char *)text, len, 0, NULL);
        free(text);
        assert_non_null(j);
        return j;
}

static const char *mark(json_t *marks, const char *key)
{
        return json_string_value(json_object_get(marks, key));
}

static long refreshes(struct lkh *h)
{
        long n = -1;

        assert_int_equal(lkh_idp_stat(h, "token_refresh", &n), 0);
        return n;
}

static int setup(void **state)
{
        return lkh_setup_broker(state, NULL, "[sessions]\nrefresh_margin = 60\n");
}

static int setup_audience_parameter(void **state)
{
        return lkh_setup_broker(state, NULL,
                                "audience_parameter = audience\n[sessions]\nrefresh_margin = 60\n");
}

static void test_narrower_scope(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_session(h, "scoped1");
        _cleanup_free_ char *own = NULL, *narrow = NULL, *again = NULL, *e = NULL, *msg = NULL;
        int64_t exp = 0, exp2 = 0;
        long before;
        json_t *m;

        e = bc_get_token(c, "scoped1", 0, &own, NULL, &msg);
        assert_null(e);
        assert_null(token_marks(own));
        before = refreshes(h);

        e = bc_get_token_for(c, "scoped1", "openid", NULL, 0, &narrow, &exp, &msg);
        assert_null(e);
        assert_string_not_equal(narrow, own);
        m = token_marks(narrow);
        assert_non_null(m);
        assert_string_equal(mark(m, "scope"), "openid");
        assert_null(json_object_get(m, "resource"));
        json_decref(m);
        assert_int_equal(refreshes(h), before + 1);
        assert_true(exp > 0);

        /* Cached: the same token, the same scope written otherwise, no new request. */
        e = bc_get_token_for(c, "scoped1", "  openid openid ", NULL, 0, &again, &exp2, &msg);
        assert_null(e);
        assert_string_equal(again, narrow);
        assert_int_equal(exp2, exp);
        assert_int_equal(refreshes(h), before + 1);

        /* The session's own token is still the whole grant's, and unchanged. */
        free(again);
        again = NULL;
        e = bc_get_token(c, "scoped1", 0, &again, NULL, &msg);
        assert_null(e);
        assert_string_equal(again, own);
        bc_close(c);
}

static void test_scope_outside_grant(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_session(h, "scoped2");
        _cleanup_free_ char *e = NULL, *msg = NULL, *e2 = NULL, *msg2 = NULL;
        long before = refreshes(h);

        e = bc_get_token_for(c, "scoped2", "openid admin", NULL, 0, NULL, NULL, &msg);
        assert_non_null(e);
        assert_string_equal(e, ERR("InvalidArgument"));
        assert_non_null(strstr(msg, "scope 'admin'"));
        assert_non_null(strstr(msg, "openid profile"));
        /* A bad character is named too, and nothing reached the provider. */
        e2 = bc_get_token_for(c, "scoped2", "openid \"x\"", NULL, 0, NULL, NULL, &msg2);
        assert_non_null(e2);
        assert_string_equal(e2, ERR("InvalidArgument"));
        assert_non_null(strstr(msg2, "0x22"));
        assert_int_equal(refreshes(h), before);
        bc_close(c);
}

static void test_audience(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_session(h, "scoped3");
        _cleanup_free_ char *a = NULL, *b = NULL, *e = NULL, *msg = NULL;
        json_t *m;

        e = bc_get_token_for(c, "scoped3", NULL, "https://api.example.com", 0, &a, NULL, &msg);
        assert_null(e);
        m = token_marks(a);
        assert_non_null(m);
        assert_string_equal(mark(m, "resource"), "https://api.example.com");
        assert_null(json_object_get(m, "scope")); /* no scope asked: the grant's */
        json_decref(m);

        /* Another (scope, audience) pair is another token. */
        e = bc_get_token_for(c, "scoped3", "profile", "https://api.example.com", 0, &b, NULL,
                             &msg);
        assert_null(e);
        assert_string_not_equal(a, b);
        m = token_marks(b);
        assert_string_equal(mark(m, "resource"), "https://api.example.com");
        assert_string_equal(mark(m, "scope"), "profile");
        json_decref(m);

        free(e);
        e = bc_get_token_for(c, "scoped3", NULL, "has space", 0, NULL, NULL, &msg);
        assert_non_null(e);
        assert_string_equal(e, ERR("InvalidArgument"));
        bc_close(c);
}

/* The IdP rotates refresh tokens: the one a narrower request got must serve the next. */
static void test_rotation_kept(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_session(h, "scoped4");
        _cleanup_free_ char *own = NULL, *fresh = NULL, *narrow = NULL, *e = NULL, *msg = NULL;
        long before;

        e = bc_get_token(c, "scoped4", 0, &own, NULL, &msg);
        assert_null(e);
        e = bc_get_token_for(c, "scoped4", "profile", NULL, 0, &narrow, NULL, &msg);
        assert_null(e);
        before = refreshes(h);
        /* min_valid above the lifetime: the session's own refresh, with the rotated token. */
        e = bc_get_token(c, "scoped4", 86400, &fresh, NULL, &msg);
        assert_null(e);
        assert_int_equal(refreshes(h), before + 1);
        assert_string_not_equal(fresh, own);
        assert_null(token_marks(fresh));
        bc_close(c);
}

/* A provider that answers a wider scope than asked: the token is not handed out. */
static void test_never_widens(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_session(h, "scoped5");
        _cleanup_free_ char *own = NULL, *e = NULL, *msg = NULL;

        assert_int_equal(lkh_idp_set(h, "widen_scope", "1"), 0);
        e = bc_get_token_for(c, "scoped5", "openid", NULL, 0, NULL, NULL, &msg);
        assert_int_equal(lkh_idp_reset(h), 0);
        assert_non_null(e);
        assert_string_equal(e, ERR("ProviderUnavailable"));
        assert_non_null(strstr(msg, "wider than asked"));
        /* The session goes on. */
        free(e);
        e = bc_get_token(c, "scoped5", 0, &own, NULL, &msg);
        assert_null(e);
        bc_close(c);
}

/* Many callers of one narrower token at once: one request to the provider. */
static void test_single_flight(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_session(h, "scoped6");
        DBusPendingCall *p[16];
        const char *first = NULL;
        char *tokens[16];
        long before = refreshes(h);

        assert_int_equal(lkh_idp_set(h, "delay_ms", "300"), 0);
        for (size_t i = 0; i < ELEMENTSOF(p); i++) {
                DBusMessage *m = bc_get_token_message("scoped6", "openid", "urn:one", 0);

                assert_true(dbus_connection_send_with_reply(c, m, &p[i], 30000));
                dbus_message_unref(m);
        }
        for (size_t i = 0; i < ELEMENTSOF(p); i++) {
                DBusMessage *r;
                const char *t = NULL;
                dbus_int64_t exp;
                const char *type;

                dbus_pending_call_block(p[i]);
                r = dbus_pending_call_steal_reply(p[i]);
                dbus_pending_call_unref(p[i]);
                assert_int_equal(dbus_message_get_type(r), DBUS_MESSAGE_TYPE_METHOD_RETURN);
                assert_true(dbus_message_get_args(r, NULL, DBUS_TYPE_STRING, &t, DBUS_TYPE_INT64,
                                                  &exp, DBUS_TYPE_STRING, &type,
                                                  DBUS_TYPE_INVALID));
                tokens[i] = strdup(t);
                dbus_message_unref(r);
                if (!first)
                        first = tokens[0];
                assert_string_equal(tokens[i], first);
        }
        assert_int_equal(refreshes(h), before + 1);
        assert_int_equal(lkh_idp_set(h, "delay_ms", "0"), 0);
        for (size_t i = 0; i < ELEMENTSOF(p); i++)
                free(tokens[i]);
        bc_close(c);
}

/* At most 8 per session: a ninth pushes out the least recently asked, fetched again later. */
static void test_bounded(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_session(h, "scoped7");
        char aud[32];
        long before = refreshes(h);

        for (int i = 0; i < 9; i++) {
                _cleanup_free_ char *e = NULL, *msg = NULL;

                snprintf(aud, sizeof(aud), "urn:api:%d", i);
                e = bc_get_token_for(c, "scoped7", NULL, aud, 0, NULL, NULL, &msg);
                assert_null(e);
        }
        assert_int_equal(refreshes(h), before + 9);
        /* urn:api:8 and 2..7 are cached; urn:api:0 went first. */
        for (int i = 8; i >= 2; i--) {
                _cleanup_free_ char *e = NULL, *msg = NULL;

                snprintf(aud, sizeof(aud), "urn:api:%d", i);
                e = bc_get_token_for(c, "scoped7", NULL, aud, 0, NULL, NULL, &msg);
                assert_null(e);
        }
        assert_int_equal(refreshes(h), before + 9);
        {
                _cleanup_free_ char *e = NULL, *msg = NULL;

                e = bc_get_token_for(c, "scoped7", NULL, "urn:api:0", 0, NULL, NULL, &msg);
                assert_null(e);
        }
        assert_int_equal(refreshes(h), before + 10);
        bc_close(c);
}

/* audience_parameter = audience: the same request names it audience, not resource. */
static void test_audience_parameter(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_session(h, "scoped8");
        _cleanup_free_ char *t = NULL, *e = NULL, *msg = NULL;
        json_t *m;

        e = bc_get_token_for(c, "scoped8", NULL, "https://api.example.com", 0, &t, NULL, &msg);
        assert_null(e);
        m = token_marks(t);
        assert_non_null(m);
        assert_string_equal(mark(m, "audience"), "https://api.example.com");
        assert_null(json_object_get(m, "resource"));
        json_decref(m);
        bc_close(c);
}

/* A closed session's narrower tokens go with it. */
static void test_closed(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_session(h, "scoped9");
        _cleanup_free_ char *e = NULL, *msg = NULL, *e2 = NULL, *msg2 = NULL;

        e = bc_get_token_for(c, "scoped9", "openid", NULL, 0, NULL, NULL, &msg);
        assert_null(e);
        e = bc_call_s(c, "CloseSession", "scoped9", NULL, NULL, &msg);
        assert_null(e);
        e2 = bc_get_token_for(c, "scoped9", "openid", NULL, 0, NULL, NULL, &msg2);
        assert_non_null(e2);
        assert_string_equal(e2, ERR("NotFound"));
        bc_close(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_narrower_scope),
                cmocka_unit_test(test_scope_outside_grant),
                cmocka_unit_test(test_audience),
                cmocka_unit_test(test_rotation_kept),
                cmocka_unit_test(test_never_widens),
                cmocka_unit_test(test_single_flight),
                cmocka_unit_test(test_bounded),
                cmocka_unit_test(test_closed),
        };
        const struct CMUnitTest audience_tests[] = {
                cmocka_unit_test(test_audience_parameter),
        };
        int r;

        r = cmocka_run_group_tests_name("scoped", tests, setup, lkh_teardown);
        return r | cmocka_run_group_tests_name("audience_parameter", audience_tests,
                                               setup_audience_parameter, lkh_teardown);
}
