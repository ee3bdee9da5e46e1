/* SPDX-License-Identifier: MIT */
/*
 * latchkeyd over D-Bus, end to end: a private system bus with the project's
 * policy, the test IdP, and the broker (tests/harness). Runs as root; the
 * second uid is nobody (65534), through lkh_run_as().
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"
#include "tests/harness/session_files.h"

#define NAME BC_NAME
#define PATH BC_PATH
#define IFACE BC_IFACE
#define ERR BC_ERR
#define NOBODY 65534

/* ---- a small D-Bus client (tests/harness/busclient.h), asserting on the answers' shape ---- */

static const char *bus_address; /* the group's bus */

static DBusConnection *bus_open(void)
{
        _cleanup_free_ char *msg = NULL;
        DBusConnection *c = bc_open_err(bus_address, &msg);

        if (!c)
                fprintf(stderr, "cannot connect to the test bus: %s\n", msg);
        return c;
}

/* An error name, or NULL on success; a malformed answer fails the test. */
static char *checked(char *e)
{
        assert_false(bc_bad_reply(e));
        return e;
}

/* *ret_id and *ret_url on success. */
static char *begin_login(DBusConnection *c, const char *user, char **ret_id, char **ret_url)
{
        return checked(bc_begin_login(c, user, ret_id, ret_url));
}

static char *call_ss(DBusConnection *c, const char *method, const char *a1, const char *a2,
                     char **ret_out, char **ret_message)
{
        return checked(bc_call_s(c, method, a1, a2, ret_out, ret_message));
}

static char *get_token(DBusConnection *c, const char *session_id, uint32_t min_valid,
                       char **ret_token, int64_t *ret_expires)
{
        _cleanup_free_ char *type = NULL;
        char *e = checked(bc_get_token_typed(c, session_id, min_valid, ret_token, ret_expires,
                                             &type, NULL));

        if (!e)
                assert_string_equal(type, "Bearer");
        return e;
}

static char *get_claims(DBusConnection *c, const char *session_id, char **ret_json)
{
        return checked(bc_get_claims(c, session_id, ret_json, NULL));
}

/* Session ids the caller sees, space-separated, with their uids: "id:uid id:uid". */
static char *list_sessions(DBusConnection *c)
{
        DBusMessage *m = bc_new("ListSessions");
        DBusMessageIter it, arr;
        struct bc_reply a;
        char *out = strdup(""), *n;

        if (bc_call(c, m, 30000, &a) < 0) {
                fprintf(stderr, "ListSessions: %s: %s\n", a.error, a.message);
                bc_reply_clear(&a);
                free(out);
                return NULL;
        }
        dbus_message_iter_init(a.msg, &it);
        dbus_message_iter_recurse(&it, &arr);
        while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRUCT) {
                DBusMessageIter st;
                const char *id, *user;
                dbus_uint32_t uid;
                dbus_int64_t opened, expires;

                dbus_message_iter_recurse(&arr, &st);
                dbus_message_iter_get_basic(&st, &id);
                dbus_message_iter_next(&st);
                dbus_message_iter_get_basic(&st, &user);
                dbus_message_iter_next(&st);
                dbus_message_iter_get_basic(&st, &uid);
                dbus_message_iter_next(&st);
                dbus_message_iter_get_basic(&st, &opened);
                dbus_message_iter_next(&st);
                dbus_message_iter_get_basic(&st, &expires);
                if (opened <= 0 || (expires != 0 && expires < opened))
                        fprintf(stderr, "odd times in ListSessions: %lld %lld\n", (long long)opened,
                                (long long)expires);
                if (asprintf(&n, "%s%s%s:%u", out, *out ? " " : "", id, uid) < 0)
                        abort();
                free(out);
                out = n;
                dbus_message_iter_next(&arr);
        }
        bc_reply_clear(&a);
        return out;
}

static bool has_word(const char *list, const char *word)
{
        size_t n = strlen(word);

        for (const char *p = list; p && (p = strstr(p, word)); p += n)
                if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
                        return true;
        return false;
}

/* ---- the harness per group ---- */

/* The harness writes timeout = 10; some tests want the provider to time out sooner. */
static int set_http_timeout(struct lkh *h, unsigned seconds)
{
        char buf[8192], *p;
        size_t len;
        FILE *f = fopen(h->config_file, "re");

        if (!f)
                return -errno;
        len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        p = strstr(buf, "timeout = 10\n");
        if (!p)
                return -EINVAL;
        f = fopen(h->config_file, "we");
        if (!f)
                return -errno;
        fprintf(f, "%.*stimeout = %u\n%s", (int)(p - buf), buf, seconds,
                p + strlen("timeout = 10\n"));
        return fclose(f) == 0 ? 0 : -EIO;
}

/* Longer under valgrind (LATCHKEY_TEST_VALGRIND, tests/integration/valgrind-check), where one
 * TLS handshake of the broker alone may take seconds. */
static unsigned http_timeout_short = 2;

static int setup_full(void **state, bool basic, const char *extra, unsigned timeout,
                      const char *const *broker_args)
{
        struct lkh_idp_options o = {.basic = basic};
        struct lkh *h = NULL;

        if (lkh_new(&h) < 0 || lkh_start_idp(h, &o) < 0 || lkh_write_config(h, extra) < 0 ||
            (timeout && set_http_timeout(h, timeout) < 0) || lkh_start_bus(h) < 0 ||
            lkh_start_broker(h, broker_args) < 0) {
                lkh_free(h);
                return -1;
        }
        bus_address = h->bus_address;
        *state = h;
        return 0;
}

static int setup_with(void **state, bool basic, const char *extra)
{
        return setup_full(state, basic, extra, 0, NULL);
}

static int setup_short_timeout(void **state)
{
        return setup_full(state, false, "[sessions]\nrefresh_margin = 60\n", http_timeout_short,
                          NULL);
}

static int setup_post(void **state)
{
        return setup_with(state, false, "[sessions]\nrefresh_margin = 60\n");
}

static int setup_basic(void **state)
{
        return setup_with(state, true, "[sessions]\nrefresh_margin = 60\n");
}

static int setup_short_logins(void **state)
{
        return setup_with(state, false, "[sessions]\nlogin_timeout = 1\n");
}

/* BeginLogin for user, the browser, CompleteLogin; returns the login id. */
static char *login(struct lkh *h, DBusConnection *c, const char *user, char **ret_code)
{
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL, *code = NULL;
        _cleanup_free_ char *who = NULL, *e = NULL, *msg = NULL;

        e = begin_login(c, user, &id, &url);
        if (e)
                fprintf(stderr, "BeginLogin: %s\n", e);
        assert_null(e);
        assert_non_null(strstr(url, "code_challenge="));
        assert_int_equal(lkh_browser_login(h, url, user, false, &location, &code), 0);
        assert_non_null(code);
        e = call_ss(c, "CompleteLogin", id, location, &who, &msg);
        if (e)
                fprintf(stderr, "CompleteLogin: %s: %s\n", e, msg);
        assert_null(e);
        assert_string_equal(who, user);
        if (ret_code)
                *ret_code = TAKE_PTR(code);
        return TAKE_PTR(id);
}

static void open_session(struct lkh *h, DBusConnection *c, const char *user, const char *sid)
{
        _cleanup_free_ char *id = login(h, c, user, NULL);
        _cleanup_free_ char *e = call_ss(c, "OpenSession", id, sid, NULL, NULL);

        assert_null(e);
}

/* ---- the whole flow ---- */

static void test_flow(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *id = NULL, *e = NULL, *token = NULL, *claims = NULL, *list = NULL;
        _cleanup_free_ char *token2 = NULL;
        int64_t exp = 0;
        long n;

        assert_non_null(c);
        assert_int_equal(lkh_idp_reset(h), 0);
        id = login(h, c, "root", NULL);
        e = call_ss(c, "OpenSession", id, "flow-1", NULL, NULL);
        assert_null(e);

        e = get_token(c, "flow-1", 0, &token, &exp);
        assert_null(e);
        assert_true(strlen(token) > 10);
        assert_true(exp > time(NULL) + 1000);
        /* Without session_id: the caller's newest session. */
        e = get_token(c, NULL, 0, &token2, NULL);
        assert_null(e);
        assert_string_equal(token, token2);

        e = get_claims(c, "flow-1", &claims);
        assert_null(e);
        {
                json_t *j = json_loads(claims, 0, NULL);
                assert_non_null(j);
                assert_string_equal(json_string_value(json_object_get(j, "preferred_username")),
                                    "root");
                assert_non_null(json_object_get(j, "sub"));
                json_decref(j);
        }

        list = list_sessions(c);
        assert_non_null(list);
        assert_true(has_word(list, "flow-1:0"));

        /* The right client authentication reached the IdP. */
        assert_int_equal(
            lkh_idp_stat(h, h->client_basic ? "token_auth_basic" : "token_auth_post", &n), 0);
        assert_int_equal(n, 1);

        free(e);
        e = call_ss(c, "CloseSession", "flow-1", NULL, NULL, NULL);
        assert_null(e);
        free(token2);
        token2 = NULL;
        e = get_token(c, "flow-1", 0, &token2, NULL);
        assert_string_equal(e, ERR("NotFound"));
        free(list);
        list = list_sessions(c);
        assert_false(has_word(list, "flow-1:0"));
        /* The login is used up. */
        free(e);
        e = call_ss(c, "OpenSession", id, "flow-2", NULL, NULL);
        assert_string_equal(e, ERR("NotFound"));
        bc_close(c);
}

static void test_introspect_and_version(void **state)
{
        DBusConnection *c = bus_open();
        DBusMessage *m;
        struct bc_reply a;
        const char *xml;
        DBusMessageIter it, v;
        const char *iface = IFACE, *prop = "Version", *ver;

        m = dbus_message_new_method_call(NAME, PATH, "org.freedesktop.DBus.Introspectable",
                                         "Introspect");
        assert_int_equal(bc_call(c, m, 10000, &a), 0);
        assert_true(
            dbus_message_get_args(a.msg, NULL, DBUS_TYPE_STRING, &xml, DBUS_TYPE_INVALID));
        assert_non_null(strstr(xml, "<method name=\"GetToken\">"));
        assert_non_null(strstr(xml, "<signal name=\"SessionChanged\">"));
        bc_reply_clear(&a);

        m = dbus_message_new_method_call(NAME, PATH, "org.freedesktop.DBus.Properties", "Get");
        dbus_message_append_args(m, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &prop,
                                 DBUS_TYPE_INVALID);
        assert_int_equal(bc_call(c, m, 10000, &a), 0);
        dbus_message_iter_init(a.msg, &it);
        dbus_message_iter_recurse(&it, &v);
        dbus_message_iter_get_basic(&v, &ver);
        assert_true(strlen(ver) > 0);
        bc_reply_clear(&a);

        /* A wrong signature is refused, not crashed on. */
        m = bc_new("GetToken");
        dbus_message_append_args(m, DBUS_TYPE_STRING, &iface, DBUS_TYPE_INVALID);
        assert_int_equal(bc_call(c, m, 10000, &a), -1);
        assert_string_equal(a.error, "org.latchkey.Broker1.Error.InvalidArgument");
        bc_reply_clear(&a);
        bc_close(c);
}

static void test_bad_arguments(void **state)
{
        DBusConnection *c = bus_open();
        char big[9000];
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL, *id = NULL;

        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        e1 = begin_login(c, "no-such-user-here", NULL, NULL);
        assert_string_equal(e1, ERR("NotFound"));
        e2 = begin_login(c, "root", &id, NULL);
        assert_null(e2);
        e3 = call_ss(c, "CompleteLogin", id, big, NULL, NULL);
        assert_string_equal(e3, ERR("InvalidArgument"));
        e4 = call_ss(c, "OpenSession", id, "../../etc/passwd", NULL, NULL);
        assert_string_equal(e4, ERR("InvalidArgument"));
        free(e4);
        e4 = call_ss(c, "CancelLogin", id, NULL, NULL, NULL);
        assert_null(e4);
        bc_close(c);
}

/* ---- uid isolation ---- */

struct as_nobody {
        const char *root_session;
        const char *root_login;
};

enum { NB_OK = 0 };

#define CHECK(cond, code)                                                                          \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "as nobody: check %d failed (line %d)\n", code, __LINE__); \
                        r = code;                                                                  \
                        goto out;                                                                  \
                }                                                                                  \
        } while (0)

static int nobody_tries(void *userdata)
{
        struct as_nobody *x = userdata;
        DBusConnection *c = bus_open();
        char *e = NULL, *list = NULL, *token = NULL;
        int r = NB_OK;

        if (!c)
                return 1;
        e = get_token(c, x->root_session, 0, &token, NULL);
        CHECK(e && streq(e, ERR("NotFound")), 2);
        free(e);
        e = call_ss(c, "CloseSession", x->root_session, NULL, NULL, NULL);
        CHECK(e && streq(e, ERR("NotFound")), 3);
        free(e);
        e = begin_login(c, "root", NULL, NULL);
        CHECK(e && streq(e, ERR("AccessDenied")), 4);
        free(e);
        e = call_ss(c, "CompleteLogin", x->root_login, "somecode", NULL, NULL);
        CHECK(e && streq(e, ERR("NotFound")), 5);
        free(e);
        e = call_ss(c, "CancelLogin", x->root_login, NULL, NULL, NULL);
        CHECK(e && streq(e, ERR("NotFound")), 6);
        free(e);
        e = get_claims(c, x->root_session, &token);
        CHECK(e && streq(e, ERR("NotFound")), 7);
        free(e);
        /* ForgetAccount is root's alone (issue 20). */
        e = call_ss(c, "ForgetAccount", "nobody", NULL, NULL, NULL);
        CHECK(e && streq(e, ERR("AccessDenied")), 11);
        list = list_sessions(c);
        CHECK(list && streq(list, "iso-nobody:65534"), 8);
        free(e);
        /* Its own session, by default. */
        e = get_token(c, NULL, 0, &token, NULL);
        CHECK(!e && token && *token, 9);
        /* A login for itself is fine. */
        free(e);
        e = begin_login(c, "nobody", NULL, NULL);
        CHECK(!e, 10);
out:
        free(e);
        free(list);
        free(token);
        bc_close(c);
        return r;
}

static void test_isolation(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *pending = NULL, *list = NULL, *e = NULL, *token = NULL;
        struct as_nobody x = {.root_session = "iso-root"};
        int result = -1;

        open_session(h, c, "root", "iso-root");
        open_session(h, c, "nobody", "iso-nobody");
        e = begin_login(c, "root", &pending, NULL);
        assert_null(e);
        x.root_login = pending;

        assert_int_equal(lkh_run_as(NOBODY, NOBODY, nobody_tries, &x, &result), 0);
        assert_int_equal(result, NB_OK);

        /* Root still has its session and sees both. */
        e = get_token(c, "iso-root", 0, &token, NULL);
        assert_null(e);
        list = list_sessions(c);
        assert_true(has_word(list, "iso-root:0"));
        assert_true(has_word(list, "iso-nobody:65534"));
        /* Root may act on another's session. */
        e = call_ss(c, "CloseSession", "iso-nobody", NULL, NULL, NULL);
        assert_null(e);
        e = call_ss(c, "CloseSession", "iso-root", NULL, NULL, NULL);
        assert_null(e);
        e = call_ss(c, "CancelLogin", pending, NULL, NULL, NULL);
        assert_null(e);
        /* Root may call ForgetAccount; with [accounts] off there is no account to forget. */
        e = call_ss(c, "ForgetAccount", "nobody", NULL, NULL, NULL);
        assert_true(e && streq(e, ERR("NotFound")));
        free(e);
        e = NULL;
        bc_close(c);
}

/* ---- limits, expiry, replay ---- */

static void test_pending_limit(void **state)
{
        DBusConnection *c = bus_open();
        char *ids[17] = {0};
        char *e;

        for (int i = 0; i < 16; i++) {
                e = begin_login(c, "root", &ids[i], NULL);
                assert_null(e);
        }
        e = begin_login(c, "root", &ids[16], NULL);
        assert_string_equal(e, ERR("TooManyRequests"));
        free(e);
        /* Cancelling one makes room for one. */
        e = call_ss(c, "CancelLogin", ids[0], NULL, NULL, NULL);
        assert_null(e);
        e = begin_login(c, "root", &ids[16], NULL);
        assert_null(e);
        for (int i = 1; i < 17; i++) {
                e = call_ss(c, "CancelLogin", ids[i], NULL, NULL, NULL);
                assert_null(e);
        }
        for (int i = 0; i < 17; i++)
                free(ids[i]);
        bc_close(c);
}

static void test_login_expiry(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL, *e = NULL;

        e = begin_login(c, "root", &id, &url);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &location, NULL), 0);
        sleep(2);
        e = call_ss(c, "CompleteLogin", id, location, NULL, NULL);
        assert_string_equal(e, ERR("LoginExpired"));
        bc_close(c);
}

static void test_code_replay(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *id1 = NULL, *code = NULL, *id2 = NULL, *e = NULL, *msg = NULL;

        id1 = login(h, c, "root", &code);
        e = begin_login(c, "root", &id2, NULL);
        assert_null(e);
        /* The same code again, as a bare code: the IdP refuses a used code. */
        e = call_ss(c, "CompleteLogin", id2, code, NULL, &msg);
        assert_string_equal(e, ERR("InvalidGrant"));
        assert_non_null(strstr(msg, "invalid_grant"));
        free(e);
        e = call_ss(c, "CancelLogin", id1, NULL, NULL, NULL);
        assert_null(e);
        e = call_ss(c, "CancelLogin", id2, NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

/* ---- login accounting: how PAM really uses logins (issue 15) ---- */

static char *begin_ending(DBusConnection *c, const char *user, char **ret_id, char **ret_url)
{
        return checked(bc_begin_login_with(c, user, true, ret_id, ret_url));
}

/* In a process of nobody's: 0 when its answers are as expected, else which one was not. */
struct nobody_begins {
        bool expect_full; /* root's logins for nobody fill nobody's share already */
};

static int nobody_begins(void *userdata)
{
        const struct nobody_begins *x = userdata;
        DBusConnection *c = bc_open(bus_address);
        char *e;
        int r = 0;

        if (!c)
                return 100;
        for (int i = 0; i < (x->expect_full ? 0 : 16) && r == 0; i++) {
                /* With end_with_caller: they end when this process leaves. */
                e = bc_begin_login_with(c, "nobody", true, NULL, NULL);
                if (e)
                        r = 10 + i;
                free(e);
        }
        e = bc_begin_login_with(c, "nobody", true, NULL, NULL);
        if (r == 0 && (!e || !streq(e, ERR("TooManyRequests"))))
                r = 50;
        free(e);
        bc_close(c);
        return r;
}

/* Root's logins count against the user they are for; a user's own against that user. */
static void test_accounting_per_user(void **state)
{
        DBusConnection *c = bus_open();
        char *root_ids[16] = {0}, *daemon_ids[16] = {0}, *nobody_ids[16] = {0};
        struct nobody_begins x = {0};
        char *e;
        int result = -1;
        int64_t t0;

        /* sshd begins everyone's logins as root: root's 16 leave room for daemon's 16. */
        for (int i = 0; i < 16; i++) {
                e = begin_login(c, "root", &root_ids[i], NULL);
                assert_null(e);
                e = begin_login(c, "daemon", &daemon_ids[i], NULL);
                assert_null(e);
        }
        e = begin_login(c, "root", NULL, NULL);
        assert_string_equal(e, ERR("TooManyRequests"));
        free(e);
        e = begin_login(c, "daemon", NULL, NULL);
        assert_string_equal(e, ERR("TooManyRequests"));
        free(e);

        /* Root's logins for nobody fill nobody's share: nobody's own is refused. */
        for (int i = 0; i < 16; i++) {
                e = begin_login(c, "nobody", &nobody_ids[i], NULL);
                assert_null(e);
        }
        x.expect_full = true;
        assert_int_equal(lkh_run_as(NOBODY, NOBODY, nobody_begins, &x, &result), 0);
        assert_int_equal(result, 0);
        for (int i = 0; i < 16; i++) {
                e = call_ss(c, "CancelLogin", nobody_ids[i], NULL, NULL, NULL);
                assert_null(e);
                free(nobody_ids[i]);
        }

        /* nobody's own 16, then no more; they end when its process leaves the bus. */
        x.expect_full = false;
        assert_int_equal(lkh_run_as(NOBODY, NOBODY, nobody_begins, &x, &result), 0);
        assert_int_equal(result, 0);
        t0 = lkh_now_ms();
        while ((e = begin_login(c, "nobody", &nobody_ids[0], NULL)) && lkh_now_ms() - t0 < 5000) {
                assert_string_equal(e, ERR("TooManyRequests"));
                free(e);
                lkh_sleep_ms(20);
        }
        assert_null(e);
        print_message("nobody's logins ended %lld ms after it left\n",
                      (long long)(lkh_now_ms() - t0));
        e = call_ss(c, "CancelLogin", nobody_ids[0], NULL, NULL, NULL);
        assert_null(e);
        free(nobody_ids[0]);

        for (int i = 0; i < 16; i++) {
                e = call_ss(c, "CancelLogin", root_ids[i], NULL, NULL, NULL);
                assert_null(e);
                e = call_ss(c, "CancelLogin", daemon_ids[i], NULL, NULL, NULL);
                assert_null(e);
                free(root_ids[i]);
                free(daemon_ids[i]);
        }
        bc_close(c);
}

/* An auth-only stack: completed logins that no session takes never block the next ones. */
static void test_done_logins_not_counted(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        char *ids[40];
        char *e, *msg = NULL, *pending = NULL;

        for (int i = 0; i < 40; i++)
                ids[i] = login(h, c, "root", NULL);
        /* The 16 newest wait for OpenSession; the older ones were dropped, oldest first. */
        for (int i = 0; i < 24; i++) {
                e = call_ss(c, "OpenSession", ids[i], "done-old", NULL, &msg);
                assert_string_equal(e, ERR("LoginExpired"));
                assert_non_null(strstr(msg, "dropped"));
                free(e);
                free(msg);
                msg = NULL;
        }
        e = call_ss(c, "OpenSession", ids[24], "done-1", NULL, NULL);
        assert_null(e);
        e = call_ss(c, "OpenSession", ids[39], "done-2", NULL, NULL);
        assert_null(e);
        /* Pending logins still fit. */
        e = begin_login(c, "root", &pending, NULL);
        assert_null(e);
        e = call_ss(c, "CancelLogin", pending, NULL, NULL, NULL);
        assert_null(e);
        for (int i = 0; i < 40; i++) {
                if (i != 24 && i != 39) {
                        e = call_ss(c, "CancelLogin", ids[i], NULL, NULL, NULL);
                        assert_null(e);
                }
                free(ids[i]);
        }
        free(pending);
        e = call_ss(c, "CloseSession", "done-1", NULL, NULL, NULL);
        assert_null(e);
        e = call_ss(c, "CloseSession", "done-2", NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

/* A login whose answer the provider refused, or whose id_token names another user, ends. */
static void test_refused_answer_ends_login(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *id = NULL, *url = NULL, *loc = NULL, *id2 = NULL, *url2 = NULL;
        _cleanup_free_ char *loc2 = NULL, *loc3 = NULL;
        char *e, *msg = NULL;
        long codes, after;

        e = begin_login(c, "root", &id, &url);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &loc, NULL), 0);
        e = call_ss(c, "CompleteLogin", id, "not-a-code-the-provider-knows", NULL, NULL);
        assert_string_equal(e, ERR("InvalidGrant"));
        free(e);
        /* The right answer comes too late: the provider is not asked again. */
        assert_int_equal(lkh_idp_stat(h, "token_code", &codes), 0);
        e = call_ss(c, "CompleteLogin", id, loc, NULL, &msg);
        assert_string_equal(e, ERR("LoginExpired"));
        assert_non_null(strstr(msg, "refused"));
        free(e);
        free(msg);
        msg = NULL;
        assert_int_equal(lkh_idp_stat(h, "token_code", &after), 0);
        assert_int_equal(after, codes);

        assert_int_equal(lkh_idp_set(h, "id_token_user", "daemon"), 0);
        e = begin_login(c, "root", &id2, &url2);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url2, "root", false, &loc2, NULL), 0);
        e = call_ss(c, "CompleteLogin", id2, loc2, NULL, NULL);
        assert_string_equal(e, ERR("UserMismatch"));
        free(e);
        assert_int_equal(lkh_idp_reset(h), 0);
        assert_int_equal(lkh_browser_login(h, url2, "root", false, &loc3, NULL), 0);
        e = call_ss(c, "CompleteLogin", id2, loc3, NULL, &msg);
        assert_string_equal(e, ERR("LoginExpired"));
        assert_non_null(strstr(msg, "refused"));
        free(e);
        free(msg);
        /* What remains of an ended login can be cancelled. */
        e = call_ss(c, "CancelLogin", id, NULL, NULL, NULL);
        assert_null(e);
        e = call_ss(c, "CancelLogin", id2, NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

/* Unusable answers: at most 3 per login, then it ends; an outage leaves it open. */
static void test_answers_per_login(void **state)
{
        static const char *const bad = "https://127.0.0.1/cb?code=abc&state=not-this-login";
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        char *id, *url, *loc, *e, *msg = NULL;

        /* Two wrong pastes, then the right one: signed in. */
        e = begin_login(c, "root", &id, &url);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &loc, NULL), 0);
        for (int i = 0; i < 2; i++) {
                e = call_ss(c, "CompleteLogin", id, bad, NULL, NULL);
                assert_string_equal(e, ERR("InvalidArgument"));
                free(e);
        }
        e = call_ss(c, "CompleteLogin", id, loc, NULL, NULL);
        assert_null(e);
        e = call_ss(c, "CancelLogin", id, NULL, NULL, NULL);
        assert_null(e);
        free(id);
        free(url);
        free(loc);

        /* Three: the login has ended, the right one is refused. */
        e = begin_login(c, "root", &id, &url);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &loc, NULL), 0);
        for (int i = 0; i < 3; i++) {
                e = call_ss(c, "CompleteLogin", id, bad, NULL, NULL);
                assert_string_equal(e, ERR("InvalidArgument"));
                free(e);
        }
        e = call_ss(c, "CompleteLogin", id, loc, NULL, &msg);
        assert_string_equal(e, ERR("LoginExpired"));
        assert_non_null(strstr(msg, "3 answers"));
        free(e);
        free(msg);
        e = call_ss(c, "CancelLogin", id, NULL, NULL, NULL);
        assert_null(e);
        free(id);
        free(url);
        free(loc);

        /* The provider failing (503) judged nothing: the same login takes the answer again. */
        e = begin_login(c, "root", &id, &url);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &loc, NULL), 0);
        assert_int_equal(lkh_idp_set(h, "fail_status", "503"), 0);
        e = call_ss(c, "CompleteLogin", id, loc, NULL, NULL);
        assert_string_equal(e, ERR("ProviderUnavailable"));
        free(e);
        assert_int_equal(lkh_idp_reset(h), 0);
        e = call_ss(c, "CompleteLogin", id, loc, NULL, NULL);
        assert_null(e);
        e = call_ss(c, "CancelLogin", id, NULL, NULL, NULL);
        assert_null(e);
        free(id);
        free(url);
        free(loc);
        bc_close(c);
}

/* OpenSession's answer for a login that is not complete: InvalidArgument while pending. */
static char *wait_ended(DBusConnection *c, const char *id, int64_t *ret_ms)
{
        int64_t t0 = lkh_now_ms();
        char *e, *msg = NULL;

        while ((e = call_ss(c, "OpenSession", id, "never", NULL, &msg)) &&
               streq(e, ERR("InvalidArgument")) && lkh_now_ms() - t0 < 5000) {
                free(e);
                free(msg);
                msg = NULL;
                lkh_sleep_ms(10);
        }
        *ret_ms = lkh_now_ms() - t0;
        free(e);
        return msg;
}

/* end_with_caller: a pending login ends when its caller leaves the bus; a complete one does not. */
static void test_end_with_caller(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(), *pam;
        DBusPendingCall *pending = NULL;
        DBusMessage *m, *reply;
        _cleanup_free_ char *id = NULL, *url = NULL, *loc = NULL, *msg = NULL;
        _cleanup_free_ char *id2 = NULL, *url2 = NULL, *loc2 = NULL;
        _cleanup_free_ char *id3 = NULL, *url3 = NULL, *msg3 = NULL;
        _cleanup_free_ char *id4 = NULL, *url4 = NULL, *loc4 = NULL;
        const char *a1, *a2;
        char *e;
        int64_t ms;

        /* Pending: ends within moments of the connection closing. */
        pam = bus_open();
        e = begin_ending(pam, "root", &id, &url);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &loc, NULL), 0);
        bc_close(pam);
        msg = wait_ended(c, id, &ms);
        print_message("ended %lld ms after its caller left: %s\n", (long long)ms, msg);
        assert_non_null(strstr(msg, "caller left"));
        assert_true(ms < 5000);
        e = call_ss(c, "CompleteLogin", id, loc, NULL, NULL);
        assert_string_equal(e, ERR("LoginExpired"));
        free(e);

        /* Complete: stays for OpenSession from another process (sshd's session). */
        pam = bus_open();
        e = begin_ending(pam, "root", &id2, &url2);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url2, "root", false, &loc2, NULL), 0);
        e = call_ss(pam, "CompleteLogin", id2, loc2, NULL, NULL);
        assert_null(e);
        bc_close(pam);
        /* A pending one closed after it: once that one has ended, the first close was seen. */
        pam = bus_open();
        e = begin_ending(pam, "root", &id3, &url3);
        assert_null(e);
        bc_close(pam);
        msg3 = wait_ended(c, id3, &ms);
        assert_non_null(strstr(msg3, "caller left"));
        e = call_ss(c, "OpenSession", id2, "ewc-1", NULL, NULL);
        assert_null(e);
        e = call_ss(c, "CloseSession", "ewc-1", NULL, NULL, NULL);
        assert_null(e);

        /* Exchanging: cancelled; the CompleteLogin under way hears NotFound. */
        pam = bus_open();
        e = begin_ending(pam, "root", &id4, &url4);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url4, "root", false, &loc4, NULL), 0);
        assert_int_equal(lkh_idp_set(h, "delay_ms", "1500"), 0);
        m = bc_new("CompleteLogin");
        a1 = id4;
        a2 = loc4;
        dbus_message_append_args(m, DBUS_TYPE_STRING, &a1, DBUS_TYPE_STRING, &a2,
                                 DBUS_TYPE_INVALID);
        assert_true(dbus_connection_send_with_reply(c, m, &pending, 30000));
        dbus_connection_flush(c);
        dbus_message_unref(m);
        lkh_sleep_ms(300);
        bc_close(pam);
        dbus_pending_call_block(pending);
        reply = dbus_pending_call_steal_reply(pending);
        dbus_pending_call_unref(pending);
        assert_int_equal(dbus_message_get_type(reply), DBUS_MESSAGE_TYPE_ERROR);
        assert_string_equal(dbus_message_get_error_name(reply), ERR("NotFound"));
        dbus_message_unref(reply);
        assert_int_equal(lkh_idp_reset(h), 0);

        /* Without the option (the default) a login outlives its caller's connection. */
        free(id);
        free(url);
        free(loc);
        pam = bus_open();
        e = begin_login(pam, "root", &id, &url);
        assert_null(e);
        bc_close(pam);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &loc, NULL), 0);
        lkh_sleep_ms(300);
        e = call_ss(c, "CompleteLogin", id, loc, NULL, NULL);
        assert_null(e);
        e = call_ss(c, "CancelLogin", id, NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

/* ---- refresh ---- */

static void test_refresh_once(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        DBusPendingCall *pending[8];
        _cleanup_free_ char *old = NULL, *e = NULL, *after = NULL;
        char *tokens[8] = {0};
        long refreshes = -1;
        int64_t exp = 0;

        /* A token with 30 s left, under refresh_margin (60 s): near expiry. */
        assert_int_equal(lkh_idp_set(h, "expires_in", "30"), 0);
        open_session(h, c, "root", "ref-1");
        assert_int_equal(lkh_idp_reset(h), 0); /* the refreshed one lives an hour */
        assert_int_equal(lkh_idp_set(h, "delay_ms", "500"), 0);

        /* Every caller needs the refresh; they all wait on one. */
        for (int i = 0; i < 8; i++) {
                DBusMessage *m = bc_new("GetToken");
                bc_append_options(m, "ref-1", 0);
                assert_true(dbus_connection_send_with_reply(c, m, &pending[i], 60000));
                dbus_message_unref(m);
        }
        for (int i = 0; i < 8; i++) {
                DBusMessage *reply;
                const char *t;

                dbus_pending_call_block(pending[i]);
                reply = dbus_pending_call_steal_reply(pending[i]);
                dbus_pending_call_unref(pending[i]);
                assert_int_equal(dbus_message_get_type(reply), DBUS_MESSAGE_TYPE_METHOD_RETURN);
                {
                        dbus_int64_t exp2;
                        const char *type;
                        assert_true(dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &t,
                                                          DBUS_TYPE_INT64, &exp2, DBUS_TYPE_STRING,
                                                          &type, DBUS_TYPE_INVALID));
                }
                tokens[i] = strdup(t);
                dbus_message_unref(reply);
        }
        assert_int_equal(lkh_idp_stat(h, "token_refresh", &refreshes), 0);
        assert_int_equal(refreshes, 1);
        e = get_token(c, "ref-1", 0, &old, &exp);
        assert_null(e);
        assert_true(exp > time(NULL) + 3000);
        for (int i = 0; i < 8; i++)
                assert_string_equal(tokens[i], old);
        for (int i = 0; i < 8; i++)
                free(tokens[i]);
        assert_int_equal(lkh_idp_set(h, "delay_ms", "0"), 0);

        /* Without need, no refresh; with min_valid beyond the lifetime, none either within
         * LK_REFRESH_INTERVAL_MIN (30 s) of the last: the current token, still valid. */
        e = get_token(c, "ref-1", 0, &after, NULL);
        assert_null(e);
        assert_int_equal(lkh_idp_stat(h, "token_refresh", &refreshes), 0);
        assert_int_equal(refreshes, 1);
        free(after);
        e = get_token(c, "ref-1", 7200, &after, NULL);
        assert_null(e);
        assert_string_equal(after, old);
        assert_int_equal(lkh_idp_stat(h, "token_refresh", &refreshes), 0);
        assert_int_equal(refreshes, 1);
        e = call_ss(c, "CloseSession", "ref-1", NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

static void test_refresh_invalid_grant(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *e = NULL, *t = NULL;

        open_session(h, c, "root", "ref-2");
        assert_int_equal(lkh_idp_set(h, "refresh_invalid_grant", "1"), 0);
        e = get_token(c, "ref-2", 7200, &t, NULL);
        assert_string_equal(e, ERR("TokenExpired"));
        free(e);
        /* And it stays so, without asking the provider again. */
        e = get_token(c, "ref-2", 0, &t, NULL);
        assert_string_equal(e, ERR("TokenExpired"));
        assert_int_equal(lkh_idp_reset(h), 0);
        free(e);
        e = call_ss(c, "CloseSession", "ref-2", NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

/* ---- the signal ---- */

static void test_session_changed(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(), *listener = bus_open();
        _cleanup_free_ char *e = NULL, *t = NULL;
        char seen[256] = "";
        int64_t deadline;

        dbus_bus_add_match(
            listener,
            "type='signal',sender='" NAME "',interface='" IFACE "',member='SessionChanged'", NULL);
        dbus_connection_flush(listener);
        open_session(h, c, "root", "sig-1");
        e = get_token(c, "sig-1", 7200, &t, NULL); /* a refresh */
        assert_null(e);
        e = call_ss(c, "CloseSession", "sig-1", NULL, NULL, NULL);
        assert_null(e);

        deadline = lkh_now_ms() + 5000;
        while (lkh_now_ms() < deadline && !strstr(seen, "closed")) {
                DBusMessage *m;

                dbus_connection_read_write(listener, 100);
                while ((m = dbus_connection_pop_message(listener))) {
                        const char *id, *event;

                        if (dbus_message_is_signal(m, IFACE, "SessionChanged") &&
                            dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING,
                                                  &event, DBUS_TYPE_INVALID) &&
                            streq(id, "sig-1")) {
                                size_t n = strlen(seen);
                                snprintf(seen + n, sizeof(seen) - n, "%s%s", n ? " " : "", event);
                        }
                        dbus_message_unref(m);
                }
        }
        assert_string_equal(seen, "opened refreshed closed");
        bc_close(listener);
        bc_close(c);
}

/* ---- restart ---- */

static int write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fputs(text, f);
        return fclose(f) == 0 ? 0 : -EIO;
}

/* Runs latchkeyd with args; its exit status and what it printed on stderr. */
static int run_broker(const char *const *args, int *ret_status, char **ret_stderr)
{
        const char *argv[16];
        char buf[4096];
        size_t n = 0, len = 0;
        ssize_t k;
        int fds[2], status;
        pid_t pid;

        argv[n++] = lkh_latchkeyd_path();
        for (size_t i = 0; args[i] && n < 15; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                dup2(fds[1], STDERR_FILENO);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(fds[1]);
        while (len < sizeof(buf) - 1 && (k = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t)k;
        close(fds[0]);
        buf[len] = '\0';
        if (waitpid(pid, &status, 0) != pid)
                return -ECHILD;
        *ret_status = status;
        *ret_stderr = strdup(buf);
        return 0;
}

static void test_refuses_bad_config(void **state)
{
        struct lkh *h = *state;
        _cleanup_free_ char *conf = NULL, *out = NULL, *dir = NULL, *out2 = NULL;
        int status = 0;

        assert_true(asprintf(&conf, "%s/bad.conf", h->dir) > 0);
        assert_int_equal(write_text(conf, "[provider]\nissuer = https://127.0.0.1/x\n"
                                          "client_id = a\nclient_secret = b\n"
                                          "redirect_uri = https://127.0.0.1/cb\n"
                                          "timeout = soon\n"),
                         0);
        {
                const char *args[] = {"--config", conf, "--state-dir", h->state_dir, NULL};
                assert_int_equal(run_broker(args, &status, &out), 0);
        }
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 0);
        assert_non_null(strstr(out, "bad.conf"));
        assert_non_null(strstr(out, "timeout"));

        /* A state dir others can read is refused too. */
        assert_true(asprintf(&dir, "%s/open-state", h->dir) > 0);
        assert_int_equal(mkdir(dir, 0755), 0);
        {
                const char *args[] = {"--config", h->config_file, "--state-dir", dir, NULL};
                assert_int_equal(run_broker(args, &status, &out2), 0);
        }
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 0);
        assert_non_null(strstr(out2, "0700"));
}

static void test_restart(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *e = NULL, *before = NULL, *after = NULL, *list = NULL;
        _cleanup_free_ char *corrupt = NULL, *old_boot = NULL, *aside = NULL;
        int status, r = -1;

        open_session(h, c, "root", "rs-1");
        open_session(h, c, "nobody", "rs-2");
        e = get_token(c, "rs-1", 0, &before, NULL);
        assert_null(e);
        bc_close(c);

        assert_true(h->broker_pid > 0);
        assert_int_equal(kill(h->broker_pid, SIGKILL), 0);
        assert_int_equal(waitpid(h->broker_pid, &status, 0), h->broker_pid);
        h->broker_pid = 0;

        /* A corrupt file is set aside; a session of another boot is dropped. */
        assert_true(asprintf(&corrupt, "%s/sessions/bad.json", h->state_dir) > 0);
        assert_true(asprintf(&old_boot, "%s/sessions/old.json", h->state_dir) > 0);
        assert_true(asprintf(&aside, "%s/sessions/bad.json.corrupt", h->state_dir) > 0);
        assert_int_equal(write_text(corrupt, "{\"version\": 1, \"session_id\": \"bad\", tru"), 0);
        assert_int_equal(write_text(old_boot,
                                    "{\"version\":1,\"session_id\":\"old\",\"user\":\"root\","
                                    "\"uid\":0,\"opened_at\":1,\"boot_id\":"
                                    "\"00000000-0000-0000-0000-000000000000\",\"expired\":false,"
                                    "\"access_token\":\"x\",\"token_type\":\"Bearer\","
                                    "\"expires_at\":0,\"claims\":{}}"),
                         0);
        for (int i = 0; i < 50 && r < 0; i++) {
                r = lkh_start_broker(h, NULL);
                if (r < 0)
                        usleep(100 * 1000);
        }
        assert_int_equal(r, 0);

        c = bus_open();
        list = list_sessions(c);
        assert_true(has_word(list, "rs-1:0"));
        assert_true(has_word(list, "rs-2:65534"));
        assert_false(has_word(list, "bad:0"));
        assert_false(has_word(list, "old:0"));
        assert_int_equal(access(aside, F_OK), 0);
        assert_int_not_equal(access(corrupt, F_OK), 0);
        assert_int_not_equal(access(old_boot, F_OK), 0);
        e = get_token(c, "rs-1", 0, &after, NULL);
        assert_null(e);
        assert_string_equal(before, after);
        e = call_ss(c, "CloseSession", "rs-1", NULL, NULL, NULL);
        assert_null(e);
        e = call_ss(c, "CloseSession", "rs-2", NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

/* ---- steady state ---- */

static void test_one_request_per_login(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *e = NULL, *t = NULL;
        long n;

        /* Warm: discovery and keys are known from earlier logins. */
        open_session(h, c, "root", "ss-0");
        assert_int_equal(lkh_idp_reset(h), 0);
        open_session(h, c, "root", "ss-1");
        e = get_token(c, "ss-1", 0, &t, NULL);
        assert_null(e);
        assert_int_equal(lkh_idp_stat(h, "token_code", &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(lkh_idp_stat(h, "token_refresh", &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(lkh_idp_stat(h, "discovery", &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(lkh_idp_stat(h, "jwks", &n), 0);
        assert_int_equal(n, 0);
        e = call_ss(c, "CloseSession", "ss-0", NULL, NULL, NULL);
        assert_null(e);
        e = call_ss(c, "CloseSession", "ss-1", NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

/* ---- the provider misbehaving ---- */

static void expect_unavailable(struct lkh *h, const char *sw, const char *value)
{
        DBusConnection *c = bus_open(), *other = bus_open();
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL, *e = NULL, *list = NULL;
        DBusPendingCall *pending = NULL;
        DBusMessage *m, *reply;
        const char *loc;
        int64_t t0, t1, t2;

        assert_non_null(c);
        assert_non_null(other);
        e = begin_login(c, "root", &id, &url);
        assert_null(e);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &location, NULL), 0);
        if (sw)
                assert_int_equal(lkh_idp_set(h, sw, value), 0);
        else
                lkh_stop_idp(h); /* the provider is down */

        m = bc_new("CompleteLogin");
        loc = location;
        dbus_message_append_args(m, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &loc,
                                 DBUS_TYPE_INVALID);
        t0 = lkh_now_ms();
        assert_true(dbus_connection_send_with_reply(c, m, &pending, 60000));
        dbus_connection_flush(c);
        dbus_message_unref(m);

        /* Meanwhile the broker answers others at once. */
        usleep(200 * 1000);
        t1 = lkh_now_ms();
        list = list_sessions(other);
        assert_non_null(list);
        assert_true(lkh_now_ms() - t1 < 1000);

        dbus_pending_call_block(pending);
        t2 = lkh_now_ms();
        reply = dbus_pending_call_steal_reply(pending);
        dbus_pending_call_unref(pending);
        assert_int_equal(dbus_message_get_type(reply), DBUS_MESSAGE_TYPE_ERROR);
        fprintf(stderr, "%s=%s: %s after %lld ms\n", sw ? sw : "down", sw ? value : "",
                dbus_message_get_error_name(reply), (long long)(t2 - t0));
        assert_string_equal(dbus_message_get_error_name(reply), ERR("ProviderUnavailable"));
        assert_true(t2 - t0 < http_timeout_short * 1000 + 1500);
        dbus_message_unref(reply);
        if (sw)
                assert_int_equal(lkh_idp_reset(h), 0);
        free(e);
        e = call_ss(c, "CancelLogin", id, NULL, NULL, NULL);
        assert_null(e);
        bc_close(other);
        bc_close(c);
}

static void test_provider_slow(void **state)
{
        char delay[32];

        snprintf(delay, sizeof(delay), "%u", (http_timeout_short + 3) * 1000);
        expect_unavailable(*state, "delay_ms", delay);
}

static void test_provider_500(void **state)
{
        expect_unavailable(*state, "fail_status", "500");
}

static void test_provider_garbage(void **state)
{
        expect_unavailable(*state, "malformed_json", "1");
}

/* SIGTERM while callers wait on a refresh: each still gets an answer, not a timeout. */
static void test_shutdown_answers_waiters(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        DBusPendingCall *pending = NULL;
        DBusMessage *m, *reply;
        _cleanup_free_ char *e = NULL, *t = NULL;

        open_session(h, c, "root", "term-1");
        assert_int_equal(lkh_idp_set(h, "delay_ms", "3000"), 0);
        m = bc_new("GetToken");
        bc_append_options(m, "term-1", 7200);
        assert_true(dbus_connection_send_with_reply(c, m, &pending, 60000));
        dbus_connection_flush(c);
        dbus_message_unref(m);
        usleep(300 * 1000);
        lkh_stop_broker(h);
        dbus_pending_call_block(pending);
        reply = dbus_pending_call_steal_reply(pending);
        dbus_pending_call_unref(pending);
        /* The token is still valid, so the answer may be the token itself; never no answer. */
        if (dbus_message_get_type(reply) == DBUS_MESSAGE_TYPE_ERROR)
                assert_string_equal(dbus_message_get_error_name(reply), ERR("ProviderUnavailable"));
        else
                assert_int_equal(dbus_message_get_type(reply), DBUS_MESSAGE_TYPE_METHOD_RETURN);
        dbus_message_unref(reply);

        assert_int_equal(lkh_idp_reset(h), 0);
        assert_int_equal(lkh_start_broker(h, NULL), 0);
        e = get_token(c, "term-1", 0, &t, NULL);
        assert_null(e);
        e = call_ss(c, "CloseSession", "term-1", NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
}

/* Last of its group: stops the IdP. */
static void test_provider_down(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *e = NULL, *before = NULL, *after = NULL;

        open_session(h, c, "root", "down-1");
        e = get_token(c, "down-1", 0, &before, NULL);
        assert_null(e);
        expect_unavailable(h, NULL, NULL);
        /* A refresh that cannot happen: the token is still valid, so it comes back. */
        e = get_token(c, "down-1", 7200, &after, NULL);
        assert_null(e);
        assert_string_equal(before, after);
        bc_close(c);
}

/* ---- nothing secret in a --debug log ---- */

static char *debug_log_path;

static int setup_debug(void **state)
{
        static const char *const args[] = {"--debug", NULL};
        int saved, fd, r;

        if (asprintf(&debug_log_path, "/tmp/latchkey-broker-debug-%d.log", (int)getpid()) < 0)
                return -1;
        fd = open(debug_log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -1;
        /* The broker inherits our stderr: point it at the log while it starts. */
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        r = setup_full(state, false, "[sessions]\nrefresh_margin = 60\n", 0, args);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        return r;
}

static int teardown_debug(void **state)
{
        lkh_free(*state);
        if (debug_log_path) {
                if (!getenv("LATCHKEY_TEST_KEEP"))
                        unlink(debug_log_path);
                free(debug_log_path);
        }
        return 0;
}

static char *read_text(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf;
        size_t len;

        if (!f)
                return NULL;
        buf = calloc(1, 1 << 20);
        len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
        fclose(f);
        if (buf)
                buf[len] = '\0';
        return buf;
}

static void test_debug_log_has_no_secrets(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL, *code = NULL;
        _cleanup_free_ char *who = NULL, *e = NULL, *t1 = NULL, *t2 = NULL, *claims = NULL;
        _cleanup_free_ char *state_param = NULL, *nonce = NULL, *log = NULL;
        _cleanup_free_ char *session_path = NULL;
        const char *secrets[16];
        size_t n = 0;
        json_t *j;

        e = begin_login(c, "root", &id, &url);
        assert_null(e);
        assert_int_equal(lkh_url_param(url, "state", &state_param), 0);
        assert_int_equal(lkh_url_param(url, "nonce", &nonce), 0);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &location, &code), 0);
        e = call_ss(c, "CompleteLogin", id, location, &who, NULL);
        assert_null(e);
        e = call_ss(c, "OpenSession", id, "dbg-1", NULL, NULL);
        assert_null(e);
        e = get_token(c, "dbg-1", 0, &t1, NULL);
        assert_null(e);
        e = get_token(c, "dbg-1", 7200, &t2, NULL); /* a refresh */
        assert_null(e);
        assert_string_not_equal(t1, t2);
        e = get_claims(c, "dbg-1", &claims);
        assert_null(e);

        /* The session file holds what D-Bus never shows: the refresh and id tokens. */
        assert_true(asprintf(&session_path, "%s/sessions/dbg-1.json", h->state_dir) > 0);
        {
                struct stat st;
                assert_int_equal(stat(session_path, &st), 0);
                assert_int_equal(st.st_mode & 0777, 0600);
        }
        j = lkh_read_session(h, "dbg-1");
        assert_non_null(j);

        secrets[n++] = code;
        secrets[n++] = state_param;
        secrets[n++] = nonce;
        secrets[n++] = t1;
        secrets[n++] = t2;
        secrets[n++] = h->client_secret;
        secrets[n++] = json_string_value(json_object_get(j, "refresh_token"));
        secrets[n++] = json_string_value(json_object_get(j, "id_token"));
        assert_non_null(secrets[n - 1]);
        assert_non_null(secrets[n - 2]);

        e = call_ss(c, "CloseSession", "dbg-1", NULL, NULL, NULL);
        assert_null(e);
        bc_close(c);
        assert_int_not_equal(access(session_path, F_OK), 0);
        lkh_stop_broker(h);

        log = read_text(debug_log_path);
        assert_non_null(log);
        /* The log is real: it has the session's story, with fingerprints. */
        assert_non_null(strstr(log, "dbg-1"));
        assert_non_null(strstr(log, "sha256:"));
        for (size_t i = 0; i < n; i++) {
                if (strstr(log, secrets[i]))
                        fail_msg("secret #%zu found in the --debug log", i);
        }
        json_decref(j);
}

/* ---- idle exit, and bus activation bringing the sessions back ---- */

static int setup_idle(void **state)
{
        static const char *const args[] = {"--idle-exit", "1", NULL};

        return setup_full(state, false, "[sessions]\nrefresh_margin = 60\n", 0, args);
}

static void test_idle_exit(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *e = NULL, *list = NULL, *t = NULL;
        int status = 0;
        pid_t r = 0;

        open_session(h, c, "root", "idle-1");
        for (int i = 0; i < 100 && r == 0; i++) {
                usleep(100 * 1000);
                r = waitpid(h->broker_pid, &status, WNOHANG);
        }
        assert_int_equal(r, h->broker_pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        h->broker_pid = 0;

        /* The next call activates a new broker (the harness's activation file). */
        list = list_sessions(c);
        assert_non_null(list);
        assert_true(has_word(list, "idle-1:0"));
        e = get_token(c, "idle-1", 0, &t, NULL);
        assert_null(e);
        bc_close(c);
}

int main(void)
{
        const struct CMUnitTest post[] = {
            cmocka_unit_test(test_flow),
            cmocka_unit_test(test_introspect_and_version),
            cmocka_unit_test(test_bad_arguments),
            cmocka_unit_test(test_isolation),
            cmocka_unit_test(test_pending_limit),
            cmocka_unit_test(test_code_replay),
            cmocka_unit_test(test_refresh_once),
            cmocka_unit_test(test_refresh_invalid_grant),
            cmocka_unit_test(test_session_changed),
            cmocka_unit_test(test_one_request_per_login),
            cmocka_unit_test(test_restart),
            cmocka_unit_test(test_refuses_bad_config),
        };
        const struct CMUnitTest basic[] = {
            cmocka_unit_test(test_flow),
        };
        const struct CMUnitTest short_logins[] = {
            cmocka_unit_test(test_login_expiry),
        };
        const struct CMUnitTest provider[] = {
            cmocka_unit_test(test_provider_slow),
            cmocka_unit_test(test_provider_500),
            cmocka_unit_test(test_provider_garbage),
            cmocka_unit_test(test_shutdown_answers_waiters),
            cmocka_unit_test(test_provider_down),
        };
        const struct CMUnitTest accounting[] = {
            cmocka_unit_test(test_accounting_per_user),
            cmocka_unit_test(test_done_logins_not_counted),
            cmocka_unit_test(test_refused_answer_ends_login),
            cmocka_unit_test(test_answers_per_login),
            cmocka_unit_test(test_end_with_caller),
        };
        const struct CMUnitTest debug[] = {
            cmocka_unit_test(test_debug_log_has_no_secrets),
        };
        const struct CMUnitTest idle[] = {
            cmocka_unit_test(test_idle_exit),
        };
        int failed = 0;

        if (getenv("LATCHKEY_TEST_VALGRIND"))
                http_timeout_short = 10;
        if (geteuid() != 0) {
                fprintf(stderr, "test-broker needs root (a second uid, a system-like bus); "
                                "skipping\n");
                return 77;
        }
        failed +=
            cmocka_run_group_tests_name("broker, client_secret_post", post, setup_post, lkh_teardown);
        failed += cmocka_run_group_tests_name("broker, client_secret_basic", basic, setup_basic,
                                              lkh_teardown);
        failed += cmocka_run_group_tests_name("broker, login accounting", accounting, setup_post,
                                              lkh_teardown);
        failed += cmocka_run_group_tests_name("broker, login_timeout = 1", short_logins,
                                              setup_short_logins, lkh_teardown);
        failed += cmocka_run_group_tests_name("broker, provider misbehaving", provider,
                                              setup_short_timeout, lkh_teardown);
        failed +=
            cmocka_run_group_tests_name("broker, --debug log", debug, setup_debug, teardown_debug);
        failed += cmocka_run_group_tests_name("broker, idle exit", idle, setup_idle, lkh_teardown);
        return failed ? 1 : 0;
}
