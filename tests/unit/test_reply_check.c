/* SPDX-License-Identifier: MIT */
/*
 * The client stubs' one rule set for text crossing the bus (client/reply_check.c), the replies
 * it judges (client/broker_client.c's parsers, on messages built here), and the base's
 * lk_text_escape() that the messages for a person go through. pam_latchkey.so and liblatchkey
 * both call the broker through these.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/text.h"
#include "base/util.h"
#include "client/broker_client.h"

static void test_string_valid(void **state)
{
        char big[300];

        assert_true(lk_reply_string_valid("session-1", 256));
        assert_true(lk_reply_string_valid("Grüße \u20ac \U0001F600", 256));
        assert_false(lk_reply_string_valid(NULL, 256));
        assert_false(lk_reply_string_valid("", 256));
        assert_false(lk_reply_string_valid("\xff", 256));
        assert_false(lk_reply_string_valid("\xc0\xaf", 256));          /* overlong '/' */
        assert_false(lk_reply_string_valid("\xed\xa0\x80", 256));      /* a surrogate */
        assert_false(lk_reply_string_valid("\xf4\x90\x80\x80", 256));  /* above U+10FFFF */
        assert_false(lk_reply_string_valid("\xe2\x82", 256));          /* cut short */
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_false(lk_reply_string_valid(big, 256));
        big[256] = '\0';
        assert_true(lk_reply_string_valid(big, 256));
}

static void test_word_valid_tokens(void **state)
{
        assert_true(lk_reply_word_valid("eyJhbGciOi.x-y_z~+/=", 100));
        assert_false(lk_reply_word_valid("two words", 100));
        assert_false(lk_reply_word_valid("tab\t", 100));
        assert_false(lk_reply_word_valid("caf\xc3\xa9", 100));
        assert_false(lk_reply_word_valid("", 100));
        assert_false(lk_reply_word_valid("abcdef", 5));
        assert_true(lk_reply_word_valid("abcde", 5));
}

/* From pam_latchkey's tests (the module had its own copy of this rule). */
static void test_word_valid(void **state)
{
        assert_true(lk_reply_word_valid("c2Vzc2lvbi1pZA", 256));
        assert_true(lk_reply_word_valid("https://idp.example/authorize?a=b&c=d", 8192));
        assert_false(lk_reply_word_valid("", 256));
        assert_false(lk_reply_word_valid(NULL, 256));
        assert_false(lk_reply_word_valid("has space", 256));
        assert_false(lk_reply_word_valid("new\nline", 256));
        assert_false(lk_reply_word_valid("esc\x1b[2J", 256));
        assert_false(lk_reply_word_valid("del\x7f", 256));
        assert_false(lk_reply_word_valid("caf\xc3\xa9", 256));
        assert_true(lk_reply_word_valid("abcd", 4));
        assert_false(lk_reply_word_valid("abcde", 4));
}

/* The caps come from the interface XML (dbus/broker_wire.h), as the broker's do. */
static void test_caps_from_the_xml(void **state)
{
        assert_int_equal(LK_ARG_ID_MAX, 256);
        assert_int_equal(LK_ARG_ANSWER_MAX, 8192);
        assert_int_equal(LK_ARG_AUTHORIZE_URL_MAX, 8192);
        assert_int_equal(LK_ARG_ACCESS_TOKEN_MAX, 64 * 1024);
        assert_int_equal(LK_ARG_TOKEN_TYPE_MAX, 64);
        assert_int_equal(LK_ARG_CLAIMS_JSON_MAX, 1024 * 1024);
        assert_string_equal(LK_BUS_NAME, "org.latchkey.Broker1");
        assert_string_equal(LK_BUS_PATH, "/org/latchkey/Broker1");
        assert_string_equal(LK_BUS_INTERFACE, "org.latchkey.Broker1");
        assert_string_equal(LK_BUS_ERROR_NOT_FOUND, "org.latchkey.Broker1.Error.NotFound");
        assert_string_equal(LK_BUS_ERROR_TOO_MANY_REQUESTS,
                            "org.latchkey.Broker1.Error.TooManyRequests");
        assert_string_equal(LK_BUS_METHOD_BEGIN_LOGIN, "BeginLogin");
        assert_string_equal(LK_BUS_BEGIN_LOGIN_IN, "sa{sv}");
        assert_string_equal(LK_BUS_GET_TOKEN_OUT, "sxs");
        assert_string_equal(LK_BUS_LIST_SESSIONS_OUT, "a(ssuxx)");
}

static void test_user_url_claims_rules(void **state)
{
        char big[LK_ARG_ID_MAX + 2];

        /* One rule for user names, wherever they come from: UTF-8, 1..256 bytes. */
        assert_true(lk_reply_user_valid("alice"));
        assert_true(lk_reply_user_valid("Gr\u00fc\u00dfe"));
        assert_true(lk_reply_user_valid("first last"));
        assert_false(lk_reply_user_valid(""));
        assert_false(lk_reply_user_valid(NULL));
        assert_false(lk_reply_user_valid("\xff"));
        memset(big, 'u', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_false(lk_reply_user_valid(big));
        big[LK_ARG_ID_MAX] = '\0';
        assert_true(lk_reply_user_valid(big));

        assert_true(lk_reply_url_valid("https://idp.example/authorize?x=1"));
        assert_true(lk_reply_url_valid("http://127.0.0.1:8080/auth"));
        assert_false(lk_reply_url_valid("javascript:alert(1)"));
        assert_false(lk_reply_url_valid("https://idp.example/a b"));
        assert_false(lk_reply_url_valid("ftp://idp.example/"));
        assert_false(lk_reply_url_valid(NULL));

        assert_true(lk_reply_claims_valid("{\"sub\":\"x\"}"));
        assert_true(lk_reply_claims_valid(" \n{}"));
        assert_false(lk_reply_claims_valid("[1]"));
        assert_false(lk_reply_claims_valid(""));
        assert_false(lk_reply_claims_valid("   "));
}

/* A method return carrying the given basic arguments (type, value pointer)..., DBUS_TYPE_INVALID. */
static DBusMessage *reply_of(int first_type, ...)
{
        DBusMessage *m = dbus_message_new(DBUS_MESSAGE_TYPE_METHOD_RETURN);
        va_list ap;
        dbus_bool_t ok;

        assert_non_null(m);
        va_start(ap, first_type);
        ok = dbus_message_append_args_valist(m, first_type, ap);
        va_end(ap);
        assert_true(ok);
        return m;
}

static void test_parse_begin_login(void **state)
{
        const char *id = "login-1", *url = "https://idp.example/authorize?state=s";
        const char *bad_id = "login 1", *bad_url = "https://idp.example/\x1b[2J";
        struct lk_client_error e = {};
        char *got_id = NULL, *got_url = NULL;
        DBusMessage *m;

        m = reply_of(DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &url, DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_begin_login(m, &got_id, &got_url, &e), 0);
        assert_string_equal(got_id, id);
        assert_string_equal(got_url, url);
        free(got_id);
        free(got_url);
        got_id = got_url = NULL;
        dbus_message_unref(m);

        m = reply_of(DBUS_TYPE_STRING, &bad_id, DBUS_TYPE_STRING, &url, DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_begin_login(m, &got_id, &got_url, &e), -EBADMSG);
        assert_string_equal(e.name, LK_CLIENT_ERROR_BAD_REPLY);
        assert_string_equal(e.message, "the broker's answer to BeginLogin holds no usable login id");
        assert_null(got_id);
        dbus_message_unref(m);

        m = reply_of(DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &bad_url, DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_begin_login(m, &got_id, &got_url, &e), -EBADMSG);
        assert_non_null(strstr(e.message, "http(s) address"));
        assert_null(got_id);
        assert_null(got_url);
        dbus_message_unref(m);

        m = reply_of(DBUS_TYPE_STRING, &id, DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_begin_login(m, &got_id, &got_url, &e), -EBADMSG);
        assert_string_equal(e.message, "the broker's answer to BeginLogin is not (ss)");
        dbus_message_unref(m);

        /* One argument too many is the wrong signature too (found by fuzz-reply-check) */
        m = reply_of(DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &url, DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_complete_login(m, &got_id, &e), -EBADMSG);
        assert_string_equal(e.message, "the broker's answer to CompleteLogin is not (s)");
        assert_int_equal(lk_client_parse_get_claims(m, &got_id, &e), -EBADMSG);
        assert_null(got_id);
        dbus_message_unref(m);
}

/*
 * CompleteLogin's user name: the PAM module took any UTF-8, liblatchkey printable ASCII only
 * (and UTF-8 again in ListSessions). Now one rule for both, the same as for ListSessions.
 */
static void test_parse_user_names_one_rule(void **state)
{
        const char *names[] = { "alice", "Gr\u00fc\u00dfe", "first last" };
        const char *empty = "";
        struct lk_client_error e = {};

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const char *sid = "s1";
                dbus_uint32_t uid = 1000;
                dbus_int64_t t = 5;
                DBusMessageIter it, arr, row;
                struct lk_client_session *list = NULL;
                char *user = NULL;
                size_t n = 0;
                DBusMessage *m = reply_of(DBUS_TYPE_STRING, &names[i], DBUS_TYPE_INVALID);

                assert_int_equal(lk_client_parse_complete_login(m, &user, &e), 0);
                assert_string_equal(user, names[i]);
                free(user);
                dbus_message_unref(m);

                m = dbus_message_new(DBUS_MESSAGE_TYPE_METHOD_RETURN);
                assert_non_null(m);
                dbus_message_iter_init_append(m, &it);
                assert_true(dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(ssuxx)", &arr));
                assert_true(dbus_message_iter_open_container(&arr, DBUS_TYPE_STRUCT, NULL, &row));
                assert_true(dbus_message_iter_append_basic(&row, DBUS_TYPE_STRING, &sid));
                assert_true(dbus_message_iter_append_basic(&row, DBUS_TYPE_STRING, &names[i]));
                assert_true(dbus_message_iter_append_basic(&row, DBUS_TYPE_UINT32, &uid));
                assert_true(dbus_message_iter_append_basic(&row, DBUS_TYPE_INT64, &t));
                assert_true(dbus_message_iter_append_basic(&row, DBUS_TYPE_INT64, &t));
                assert_true(dbus_message_iter_close_container(&arr, &row));
                assert_true(dbus_message_iter_close_container(&it, &arr));
                assert_int_equal(lk_client_parse_list_sessions(m, &list, &n, &e), 0);
                assert_int_equal(n, 1);
                assert_string_equal(list[0].session_id, "s1");
                assert_string_equal(list[0].user, names[i]);
                assert_int_equal(list[0].uid, 1000);
                assert_int_equal(list[0].opened_at, 5);
                lk_client_free_sessions(list, n);
                dbus_message_unref(m);
        }

        DBusMessage *m = reply_of(DBUS_TYPE_STRING, &empty, DBUS_TYPE_INVALID);
        char *user = NULL;

        assert_int_equal(lk_client_parse_complete_login(m, &user, &e), -EBADMSG);
        assert_string_equal(e.message, "the broker's answer to CompleteLogin holds no usable user name");
        assert_null(user);
        dbus_message_unref(m);
}

static void test_parse_list_sessions_empty_and_wrong(void **state)
{
        struct lk_client_session *list = (void *)1;
        struct lk_client_error e = {};
        const char *s = "x";
        DBusMessageIter it, arr;
        size_t n = 7;
        DBusMessage *m = dbus_message_new(DBUS_MESSAGE_TYPE_METHOD_RETURN);

        dbus_message_iter_init_append(m, &it);
        assert_true(dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(ssuxx)", &arr));
        assert_true(dbus_message_iter_close_container(&it, &arr));
        assert_int_equal(lk_client_parse_list_sessions(m, &list, &n, &e), 0);
        assert_null(list);
        assert_int_equal(n, 0);
        dbus_message_unref(m);

        m = reply_of(DBUS_TYPE_STRING, &s, DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_list_sessions(m, &list, &n, &e), -EBADMSG);
        assert_string_equal(e.message, "the broker's answer to ListSessions is not (a(ssuxx))");
        dbus_message_unref(m);
}

static void test_parse_get_token(void **state)
{
        const char *token = "eyJhbGciOi.payload.sig", *type = "Bearer", *spaced = "two words";
        const char *bad_type = "Bear er";
        dbus_int64_t at = 1700000000, negative = -1;
        struct lk_client_error e = {};
        char *got = NULL, *got_type = NULL;
        int64_t got_at = 0;
        DBusMessage *m;

        m = reply_of(DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64, &at, DBUS_TYPE_STRING, &type,
                     DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_get_token(m, &got, &got_at, &got_type, &e), 0);
        assert_string_equal(got, "eyJhbGciOi.payload.sig");
        assert_string_equal(got_type, "Bearer");
        assert_int_equal(got_at, 1700000000);
        lk_secret_free(got);
        free(got_type);
        got = got_type = NULL;
        dbus_message_unref(m);

        /* NULL outputs are fine */
        m = reply_of(DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64, &at, DBUS_TYPE_STRING, &type,
                     DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_get_token(m, NULL, NULL, NULL, &e), 0);
        dbus_message_unref(m);

        m = reply_of(DBUS_TYPE_STRING, &spaced, DBUS_TYPE_INT64, &at, DBUS_TYPE_STRING, &type,
                     DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_get_token(m, &got, &got_at, &got_type, &e), -EBADMSG);
        assert_string_equal(e.message, "the broker's answer to GetToken holds no usable token");
        assert_null(got);
        dbus_message_unref(m);

        m = reply_of(DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64, &negative, DBUS_TYPE_STRING,
                     &type, DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_get_token(m, &got, &got_at, &got_type, &e), -EBADMSG);
        assert_null(got);
        dbus_message_unref(m);

        m = reply_of(DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64, &at, DBUS_TYPE_STRING, &bad_type,
                     DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_get_token(m, &got, &got_at, &got_type, &e), -EBADMSG);
        assert_string_equal(e.message, "the broker's answer to GetToken holds a bad token type or expiry");
        assert_null(got_type);
        dbus_message_unref(m);
}

static void test_parse_get_claims(void **state)
{
        const char *json = "{\"sub\":\"248289761001\"}", *array = "[]";
        struct lk_client_error e = {};
        char *got = NULL;
        DBusMessage *m;

        m = reply_of(DBUS_TYPE_STRING, &json, DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_get_claims(m, &got, &e), 0);
        assert_string_equal(got, json);
        free(got);
        got = NULL;
        dbus_message_unref(m);

        m = reply_of(DBUS_TYPE_STRING, &array, DBUS_TYPE_INVALID);
        assert_int_equal(lk_client_parse_get_claims(m, &got, &e), -EBADMSG);
        assert_null(got);
        dbus_message_unref(m);
}

/* Arguments that break the rules are not sent: -EINVAL before any connection is made. */
static void test_arguments_refused_before_sending(void **state)
{
        struct lk_client_error e = {};
        char *id = NULL, *url = NULL, *user = NULL;
        char big[LK_ARG_ANSWER_MAX + 2];

        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        /* No bus here: a call that got past the checks would fail with -EIO instead. */
        setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus", 1);
        assert_int_equal(lk_client_begin_login(NULL, 1000, "\xff", true, &id, &url, &e), -EINVAL);
        assert_string_equal(e.name, DBUS_ERROR_INVALID_ARGS);
        assert_string_equal(e.message, "a user name must be 1 to 256 bytes of UTF-8");
        assert_int_equal(lk_client_complete_login(NULL, 1000, "id", big, &user, &e), -EINVAL);
        assert_string_equal(e.message, "the answer must be 1 to 8192 bytes of UTF-8");
        assert_int_equal(lk_client_open_session(NULL, 1000, "id", "", &e), -EINVAL);
        assert_int_equal(lk_client_close_session(NULL, 1000, NULL, &e), -EINVAL);
        assert_int_equal(lk_client_cancel_login(NULL, 1000, "\xc0\xaf", &e), -EINVAL);
        assert_int_equal(lk_client_get_token(NULL, 1000, "", 0, NULL, NULL, NULL, &e), -EINVAL);
        assert_null(id);
        assert_null(user);

        /* And one that passes them meets the missing bus: its error, escaped, is handed on. */
        assert_int_equal(lk_client_close_session(NULL, 1000, "s1", &e), -EIO);
        assert_true(lk_reply_word_valid(e.name, sizeof(e.name)));
        assert_null(strchr(e.message, '\n'));
        unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
}

static void test_text_for_person(void **state)
{
        char out[32];

        lk_text_escape("No session 'x'", out, sizeof(out));
        assert_string_equal(out, "No session 'x'");
        lk_text_escape(NULL, out, sizeof(out));
        assert_string_equal(out, "");
        /* Line breaks, tabs, escapes and bidi overrides are shown escaped. */
        lk_text_escape("a\nb\tc\x1b[2Jd\u202eE\x7f", out, sizeof(out));
        assert_string_equal(out, "a\\nb\\tc\\x1b[2Jd\\u202eE\\x7f");
        /* C1 controls (U+0085, U+009B) and invalid bytes too. */
        lk_text_escape("x\xc2\x85y\xc2\x9bz\xff!", out, sizeof(out));
        assert_string_equal(out, "x\\u0085y\\u009bz\\xff!");
        /* Exactly fitting: no ellipsis. */
        lk_text_escape("0123456789012345678901234567890", out, sizeof(out));
        assert_string_equal(out, "0123456789012345678901234567890");
        /* One more: cut, with "...", within size. */
        lk_text_escape("01234567890123456789012345678901", out, sizeof(out));
        assert_string_equal(out, "0123456789012345678901234567...");
        /* Never half a character. */
        lk_text_escape("\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac",
                            out, 16);
        assert_string_equal(out, "\u20ac\u20ac\u20ac\u20ac...");
        lk_text_escape("abcdef", out, 4);
        assert_string_equal(out, "...");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_string_valid),
                cmocka_unit_test(test_word_valid_tokens),
                cmocka_unit_test(test_word_valid),
                cmocka_unit_test(test_caps_from_the_xml),
                cmocka_unit_test(test_user_url_claims_rules),
                cmocka_unit_test(test_parse_begin_login),
                cmocka_unit_test(test_parse_user_names_one_rule),
                cmocka_unit_test(test_parse_list_sessions_empty_and_wrong),
                cmocka_unit_test(test_parse_get_token),
                cmocka_unit_test(test_parse_get_claims),
                cmocka_unit_test(test_arguments_refused_before_sending),
                cmocka_unit_test(test_text_for_person),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
