/* SPDX-License-Identifier: MIT */
/*
 * The device authorization grant (RFC 8628) and the two methods that finish a login without
 * an answer (GetLoginInfo, WaitLogin), end to end: the test IdP with its device endpoint and
 * every RFC 8628 answer, a private bus, the real latchkeyd. Runs as root; nobody (65534) is the
 * second uid.
 */
#include <dbus/dbus.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>
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

#ifndef LATCHKEYCTL_PATH
#error "LATCHKEYCTL_PATH must name the latchkeyctl binary"
#endif

#define NOBODY 65534
#define USER "daemon" /* a local account the harness's config lets sign in */

static DBusConnection *open_bus(struct lkh *h)
{
        DBusConnection *c = bc_open(h->bus_address);

        assert_non_null(c);
        return c;
}

/* GetLoginInfo's answer, the parts the tests look at. */
struct info {
        char flow[16], state[16], url[2048], user_code[128];
        uint32_t interval, seconds_left;
        bool callback, has_interval;
};

static char *get_info(DBusConnection *c, const char *id, struct info *ret, char **ret_message)
{
        DBusMessage *m = bc_new("GetLoginInfo");
        DBusMessageIter it, dict;
        struct bc_reply r;

        dbus_message_append_args(m, DBUS_TYPE_STRING, &id, DBUS_TYPE_INVALID);
        if (bc_call(c, m, 30000, &r) < 0)
                return bc_take_error(&r, ret_message);
        assert_string_equal(dbus_message_get_signature(r.msg), "a{sv}");
        *ret = (struct info){0};
        dbus_message_iter_init(r.msg, &it);
        dbus_message_iter_recurse(&it, &dict);
        for (; dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
             dbus_message_iter_next(&dict)) {
                DBusMessageIter entry, v;
                const char *key, *s;
                dbus_bool_t b;

                dbus_message_iter_recurse(&dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &v);
                if (dbus_message_iter_get_arg_type(&v) == DBUS_TYPE_STRING) {
                        dbus_message_iter_get_basic(&v, &s);
                        if (streq(key, "flow"))
                                snprintf(ret->flow, sizeof(ret->flow), "%s", s);
                        else if (streq(key, "state"))
                                snprintf(ret->state, sizeof(ret->state), "%s", s);
                        else if (streq(key, "url"))
                                snprintf(ret->url, sizeof(ret->url), "%s", s);
                        else if (streq(key, "user_code"))
                                snprintf(ret->user_code, sizeof(ret->user_code), "%s", s);
                } else if (streq(key, "interval")) {
                        dbus_message_iter_get_basic(&v, &ret->interval);
                        ret->has_interval = true;
                } else if (streq(key, "seconds_left")) {
                        dbus_message_iter_get_basic(&v, &ret->seconds_left);
                } else if (streq(key, "callback")) {
                        dbus_message_iter_get_basic(&v, &b);
                        ret->callback = b;
                }
        }
        bc_reply_clear(&r);
        return NULL;
}

/* A WaitLogin on a connection of its own, in a thread, while the test plays the person. */
struct waiter {
        pthread_t thread;
        const char *address;
        const char *id;
        char *error, *message, *user;
};

static void *wait_thread(void *userdata)
{
        struct waiter *w = userdata;
        DBusConnection *c = bc_open(w->address);

        if (!c) {
                w->error = strdup("cannot connect");
                return NULL;
        }
        w->error = bc_call_s(c, "WaitLogin", w->id, NULL, &w->user, &w->message);
        bc_close(c);
        return NULL;
}

static void wait_start(struct waiter *w, struct lkh *h, const char *id)
{
        *w = (struct waiter){.address = h->bus_address, .id = id};
        assert_int_equal(pthread_create(&w->thread, NULL, wait_thread, w), 0);
}

static void wait_end(struct waiter *w)
{
        assert_int_equal(pthread_join(w->thread, NULL), 0);
}

static void wait_clear(struct waiter *w)
{
        free(w->error);
        free(w->message);
        free(w->user);
}

static long idp_stat(struct lkh *h, const char *name)
{
        long n = -1;

        assert_int_equal(lkh_idp_stat(h, name, &n), 0);
        return n;
}

/* ---- the device flow ---- */

static void test_device_flow(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *id = NULL, *url = NULL, *user = NULL, *e = NULL, *msg = NULL;
        _cleanup_free_ char *token = NULL;
        struct info info;
        struct waiter w;
        long polls_before;

        assert_null(bc_begin_login(c, USER, &id, &url));
        /* The address to show is the complete verification address, code included. */
        assert_non_null(strstr(url, "/device?user_code="));
        assert_null(get_info(c, id, &info, NULL));
        assert_string_equal(info.flow, "device");
        assert_string_equal(info.state, "pending");
        assert_string_equal(info.url, url);
        assert_non_null(strstr(url, info.user_code));
        assert_int_equal(strlen(info.user_code), 9);
        assert_true(info.has_interval);
        assert_int_equal(info.interval, 1);
        assert_true(info.seconds_left > 0 && info.seconds_left <= 600);
        assert_false(info.callback);

        /* Nothing to paste in the device flow. */
        e = bc_call_s(c, "CompleteLogin", id, "some-code", NULL, &msg);
        assert_string_equal(e, BC_ERR("InvalidArgument"));
        free(e);
        free(msg);
        e = msg = NULL;

        /* The broker polls by itself: pending answers, then the approval. */
        polls_before = idp_stat(h, "token_device");
        wait_start(&w, h, id);
        lkh_sleep_ms(2500);
        assert_true(idp_stat(h, "token_device") >= polls_before + 1);
        /* How soon after the approval the login completes is the bench's (group 7). */
        assert_int_equal(lkh_device_approve(h, url, USER, false), 0);
        wait_end(&w);
        assert_null(w.error);
        assert_string_equal(w.user, USER);
        wait_clear(&w);

        /* Done: a later WaitLogin answers at once, GetLoginInfo says so, the session opens. */
        assert_null(bc_call_s(c, "WaitLogin", id, NULL, &user, NULL));
        assert_string_equal(user, USER);
        assert_null(get_info(c, id, &info, NULL));
        assert_string_equal(info.state, "done");
        assert_null(bc_call_s(c, "OpenSession", id, "device-1", NULL, NULL));
        assert_null(bc_get_token(c, "device-1", 0, &token, NULL, NULL));
        assert_true(strlen(token) > 10);
        assert_null(bc_call_s(c, "CloseSession", "device-1", NULL, NULL, NULL));
        bc_close(c);
}

/* The approval before anyone waits: WaitLogin answers at once with the user. */
static void test_device_approved_first(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *id = NULL, *url = NULL, *user = NULL;
        struct info info;

        assert_null(bc_begin_login(c, USER, &id, &url));
        assert_int_equal(lkh_device_approve(h, url, USER, false), 0);
        for (int i = 0; i < 50; i++) {
                assert_null(get_info(c, id, &info, NULL));
                if (streq(info.state, "done"))
                        break;
                lkh_sleep_ms(100);
        }
        assert_string_equal(info.state, "done");
        assert_null(bc_call_s(c, "WaitLogin", id, NULL, &user, NULL));
        assert_string_equal(user, USER);
        assert_null(bc_call_s(c, "CancelLogin", id, NULL, NULL, NULL));
        bc_close(c);
}

static void expect_wait_error(struct lkh *h, const char *id, const char *error,
                              const char *words)
{
        struct waiter w;

        wait_start(&w, h, id);
        wait_end(&w);
        assert_non_null(w.error);
        assert_string_equal(w.error, error);
        if (words && !strcasestr(w.message, words)) {
                fprintf(stderr, "message: %s\n", w.message);
                fail();
        }
        wait_clear(&w);
}

static void test_device_denied(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *id = NULL, *url = NULL, *e = NULL;
        struct info info;
        long polls;

        assert_null(bc_begin_login(c, USER, &id, &url));
        assert_int_equal(lkh_device_approve(h, url, USER, true), 0);
        expect_wait_error(h, id, BC_ERR("AccessDenied"), "refused at the provider");
        /* A clear refusal, no retry: the login has ended and nothing polls any more. */
        e = get_info(c, id, &info, NULL);
        assert_string_equal(e, BC_ERR("LoginExpired"));
        polls = idp_stat(h, "token_device");
        lkh_sleep_ms(2200);
        assert_int_equal(idp_stat(h, "token_device"), polls);
        bc_close(c);
}

static void test_device_expired_token(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *id = NULL, *url = NULL;

        assert_null(bc_begin_login(c, USER, &id, &url));
        assert_int_equal(lkh_idp_set(h, "device_answer", "expired_token"), 0);
        expect_wait_error(h, id, BC_ERR("LoginExpired"), "expired");
        assert_int_equal(lkh_idp_set(h, "device_answer", ""), 0);
        bc_close(c);
}

/* slow_down: 5 s more each time; authorization_pending changes nothing. */
static void test_device_slow_down(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *id = NULL, *url = NULL;
        struct info info;
        long polls;

        assert_null(bc_begin_login(c, USER, &id, &url));
        assert_int_equal(lkh_idp_set(h, "device_answer", "slow_down"), 0);
        polls = idp_stat(h, "token_device");
        lkh_sleep_ms(1600);
        assert_int_equal(lkh_idp_set(h, "device_answer", ""), 0);
        assert_true(idp_stat(h, "token_device") >= polls + 1);
        assert_null(get_info(c, id, &info, NULL));
        assert_int_equal(info.interval, 6);
        /* No poll before those 6 s are up. */
        polls = idp_stat(h, "token_device");
        lkh_sleep_ms(3000);
        assert_int_equal(idp_stat(h, "token_device"), polls);
        assert_null(bc_call_s(c, "CancelLogin", id, NULL, NULL, NULL));
        bc_close(c);
}

/* CancelLogin ends a waiting WaitLogin; at most 4 wait on one login. */
static void test_wait_cancel_and_cap(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *id = NULL, *url = NULL, *e = NULL, *msg = NULL;
        struct waiter w[4];

        assert_null(bc_begin_login(c, USER, &id, &url));
        for (int i = 0; i < 4; i++)
                wait_start(&w[i], h, id);
        lkh_sleep_ms(500);
        e = bc_call_s(c, "WaitLogin", id, NULL, NULL, &msg);
        assert_string_equal(e, BC_ERR("TooManyRequests"));
        assert_null(bc_call_s(c, "CancelLogin", id, NULL, NULL, NULL));
        for (int i = 0; i < 4; i++) {
                wait_end(&w[i]);
                assert_string_equal(w[i].error, BC_ERR("LoginExpired"));
                assert_non_null(strstr(w[i].message, "cancelled"));
                wait_clear(&w[i]);
        }
        bc_close(c);
}

/* Only the uid that began a login may read or wait on it; not found and not yours are one. */
static int other_uid_calls(void *userdata)
{
        const char *const *a = userdata;
        DBusConnection *c = bc_open(a[0]);
        _cleanup_free_ char *e1 = NULL, *e2 = NULL;
        struct info info;

        if (!c)
                return 1;
        e1 = get_info(c, a[1], &info, NULL);
        e2 = bc_call_s(c, "WaitLogin", a[1], NULL, NULL, NULL);
        bc_close(c);
        return e1 && streq(e1, BC_ERR("NotFound")) && e2 && streq(e2, BC_ERR("NotFound")) ? 0 : 2;
}

static void test_other_uid(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *id = NULL, *url = NULL;
        const char *args[2];
        int result = -1;

        assert_null(bc_begin_login(c, USER, &id, &url));
        args[0] = h->bus_address;
        args[1] = id;
        assert_int_equal(lkh_run_as(NOBODY, NOBODY, other_uid_calls, args, &result), 0);
        assert_int_equal(result, 0);
        assert_null(bc_call_s(c, "CancelLogin", id, NULL, NULL, NULL));
        bc_close(c);
}

/* ---- latchkeyctl: login waits for the approval, check-config names the flows ---- */

struct ctl {
        pid_t pid;
        int out, err;
        char *out_text, *err_text;
        size_t out_len, err_len;
};

static void ctl_start(struct ctl *x, struct lkh *h, const char *const *args)
{
        int o[2], e[2];
        const char *argv[8] = {LATCHKEYCTL_PATH};

        for (size_t i = 0; args[i] && i < 6; i++)
                argv[i + 1] = args[i];
        assert_int_equal(pipe2(o, O_CLOEXEC), 0);
        assert_int_equal(pipe2(e, O_CLOEXEC), 0);
        *x = (struct ctl){.out = o[0], .err = e[0]};
        x->pid = fork();
        assert_true(x->pid >= 0);
        if (x->pid == 0) {
                int null = open("/dev/null", O_RDONLY);

                dup2(null, 0);
                dup2(o[1], 1);
                dup2(e[1], 2);
                setenv("DBUS_SYSTEM_BUS_ADDRESS", h->bus_address, 1);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(o[1]);
        close(e[1]);
}

/* Reads stderr until needle shows (or 20 s pass). */
static bool ctl_wait_err(struct ctl *x, const char *needle)
{
        int64_t end = lkh_now_ms() + 20000;

        while (!(x->err_text && strstr(x->err_text, needle)) && x->err >= 0 &&
               lkh_now_ms() < end) {
                struct pollfd p = {.fd = x->err, .events = POLLIN};

                if (poll(&p, 1, 200) > 0 &&
                    lkh_read_more(&x->err, &x->err_text, &x->err_len, 1 << 20) < 0)
                        return false;
        }
        return x->err_text && strstr(x->err_text, needle);
}

static int ctl_finish(struct ctl *x)
{
        int status = -1;

        while (x->out >= 0)
                if (lkh_read_more(&x->out, &x->out_text, &x->out_len, 1 << 20) < 0)
                        break;
        while (x->err >= 0)
                if (lkh_read_more(&x->err, &x->err_text, &x->err_len, 1 << 20) < 0)
                        break;
        waitpid(x->pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void ctl_clear(struct ctl *x)
{
        if (x->out >= 0)
                close(x->out);
        if (x->err >= 0)
                close(x->err);
        free(x->out_text);
        free(x->err_text);
}

static void test_ctl_login_device(void **state)
{
        struct lkh *h = *state;
        _cleanup_free_ char *url = NULL;
        struct ctl x;
        const char *p;

        ctl_start(&x, h, (const char *const[]){"login", USER, NULL});
        assert_true(ctl_wait_err(&x, "Waiting for the sign-in"));
        assert_non_null(strstr(x.err_text, "Confirm the code "));
        p = strstr(x.err_text, "https://");
        assert_non_null(p);
        url = strndup(p, strcspn(p, "\n"));
        assert_non_null(strstr(url, "/device?user_code="));
        /* Nothing typed: stdin is /dev/null. */
        assert_int_equal(lkh_device_approve(h, url, USER, false), 0);
        assert_int_equal(ctl_finish(&x), 0);
        assert_non_null(x.out_text);
        assert_int_equal(strncmp(x.out_text, "lk-", 3), 0);
        assert_non_null(strstr(x.err_text, "Logged in as " USER));
        ctl_clear(&x);
}

static void test_ctl_check_config_flows(void **state)
{
        struct lkh *h = *state;
        struct ctl x;

        ctl_start(&x, h, (const char *const[]){"check-config", h->config_file, NULL});
        assert_int_equal(ctl_finish(&x), 0);
        assert_non_null(x.out_text);
        if (!strstr(x.out_text, "the provider offers the code flow and the device flow (RFC "
                                "8628); logins use the device flow (flow = auto)")) {
                fprintf(stderr, "%s", x.out_text);
                fail();
        }
        ctl_clear(&x);
}

/* ---- the code flow: WaitLogin hears CompleteLogin's outcome, from any caller of the uid ---- */

static void test_code_wait(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *id = NULL, *url = NULL, *code = NULL, *user = NULL;
        _cleanup_free_ char *id2 = NULL, *url2 = NULL, *e = NULL;
        struct info info;
        struct waiter w;

        assert_null(bc_begin_login(c, USER, &id, &url));
        assert_null(get_info(c, id, &info, NULL));
        assert_string_equal(info.flow, "code");
        assert_string_equal(info.url, url);
        assert_false(info.has_interval);
        assert_string_equal(info.user_code, "");

        wait_start(&w, h, id);
        lkh_sleep_ms(300);
        assert_int_equal(lkh_browser_login(h, url, USER, false, NULL, &code), 0);
        assert_null(bc_call_s(c, "CompleteLogin", id, code, &user, NULL));
        wait_end(&w);
        assert_null(w.error);
        assert_string_equal(w.user, USER);
        wait_clear(&w);
        assert_null(bc_call_s(c, "CancelLogin", id, NULL, NULL, NULL));

        /* A refused code ends the login: the waiter hears the same refusal. */
        assert_null(bc_begin_login(c, USER, &id2, &url2));
        wait_start(&w, h, id2);
        lkh_sleep_ms(300);
        e = bc_call_s(c, "CompleteLogin", id2, "not-a-code", NULL, NULL);
        assert_string_equal(e, BC_ERR("InvalidGrant"));
        wait_end(&w);
        assert_string_equal(w.error, BC_ERR("InvalidGrant"));
        wait_clear(&w);
        bc_close(c);
}

/* flow = device by hand, against a provider that offers no device endpoint: a clear refusal. */
static void test_device_not_offered(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = open_bus(h);
        _cleanup_free_ char *e = NULL;

        e = bc_begin_login(c, USER, NULL, NULL);
        assert_non_null(e);
        assert_string_equal(e, BC_ERR("ProviderUnavailable"));
        bc_close(c);
}

static int setup_device(void **state)
{
        struct lkh *h = NULL;

        if (lkh_new(&h) < 0 || lkh_start_idp(h, NULL) < 0 ||
            lkh_idp_set(h, "device_discovery", "1") < 0 ||
            lkh_idp_set(h, "device_interval", "1") < 0 || lkh_write_config(h, NULL) < 0 ||
            lkh_start_bus(h) < 0 || lkh_start_broker(h, NULL) < 0) {
                lkh_free(h);
                return -1;
        }
        *state = h;
        return 0;
}

static int setup_basic_device(void **state)
{
        struct lkh *h = NULL;
        struct lkh_idp_options o = {.basic = true};

        if (lkh_new(&h) < 0 || lkh_start_idp(h, &o) < 0 ||
            lkh_idp_set(h, "device_discovery", "1") < 0 ||
            lkh_idp_set(h, "device_interval", "1") < 0 || lkh_write_config(h, NULL) < 0 ||
            lkh_start_bus(h) < 0 || lkh_start_broker(h, NULL) < 0) {
                lkh_free(h);
                return -1;
        }
        *state = h;
        return 0;
}

static int setup_code(void **state)
{
        return lkh_setup_broker(state, NULL, NULL);
}

static int setup_device_by_hand(void **state)
{
        return lkh_setup_broker(state, NULL, "flow = device\n");
}

int main(void)
{
        const struct CMUnitTest device[] = {
            cmocka_unit_test(test_device_flow),
            cmocka_unit_test(test_device_approved_first),
            cmocka_unit_test(test_device_denied),
            cmocka_unit_test(test_device_expired_token),
            cmocka_unit_test(test_device_slow_down),
            cmocka_unit_test(test_wait_cancel_and_cap),
            cmocka_unit_test(test_other_uid),
            cmocka_unit_test(test_ctl_login_device),
            cmocka_unit_test(test_ctl_check_config_flows),
        };
        const struct CMUnitTest basic[] = {
            cmocka_unit_test(test_device_flow),
        };
        const struct CMUnitTest code[] = {
            cmocka_unit_test(test_code_wait),
        };
        const struct CMUnitTest not_offered[] = {
            cmocka_unit_test(test_device_not_offered),
        };
        int failed = 0;

        if (geteuid() != 0) {
                fprintf(stderr, "test-device needs root (a second uid); skipping\n");
                return 77;
        }
        dbus_threads_init_default();
        failed += cmocka_run_group_tests_name("device flow, client_secret_post", device,
                                              setup_device, lkh_teardown);
        failed += cmocka_run_group_tests_name("device flow, client_secret_basic", basic,
                                              setup_basic_device, lkh_teardown);
        failed += cmocka_run_group_tests_name("code flow, WaitLogin", code, setup_code,
                                              lkh_teardown);
        failed += cmocka_run_group_tests_name("flow = device, none offered", not_offered,
                                              setup_device_by_hand, lkh_teardown);
        return failed ? 1 : 0;
}
