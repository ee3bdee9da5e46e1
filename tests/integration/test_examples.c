/* SPDX-License-Identifier: MIT */
/*
 * The examples of examples/ as an application developer would run them: a
 * login through the real broker and the test IdP on a private bus (the
 * harness), then examples/get_token.c calls the IdP's userinfo endpoint with
 * the session's token and prints its JSON, and examples/get_token.py prints
 * the token (and, given a URL, the userinfo JSON too). Runs as root, which
 * is the local user that logs in.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "lib/latchkey.h"
#include "tests/harness/harness.h"

#if !defined(LK_GET_TOKEN) || !defined(LK_GET_TOKEN_PY) || !defined(LK_PYTHON)
#error "LK_GET_TOKEN, LK_GET_TOKEN_PY and LK_PYTHON must name the examples and python3"
#endif

#define OUTPUT_MAX (1024 * 1024)
#define RUN_TIMEOUT_MS 60000

static struct lkh *H;

/* ---- running a program ---- */

struct run {
        int code; /* exit status; -1 when killed by a signal */
        char *out, *err;
};

static void run_clear(struct run *r)
{
        free(r->out);
        free(r->err);
        *r = (struct run){0};
}

static void append(int *fd, char **text, size_t *len)
{
        assert_int_equal(lkh_read_more(fd, text, len, OUTPUT_MAX), 0);
}

/*
 * Runs argv (NULL-terminated) with env applied first: "K=V" sets, "K" unsets
 * (NULL-terminated, may be NULL). Stdin is /dev/null. Returns everything it printed.
 */
static struct run run(const char *const *env, const char *const *argv)
{
        struct run r = { .out = calloc(1, 1), .err = calloc(1, 1) };
        size_t out_len = 0, err_len = 0;
        int out[2], err[2], status;
        pid_t pid;

        assert_non_null(r.out);
        assert_non_null(r.err);
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        assert_int_equal(pipe2(err, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY);

                dup2(null, 0);
                dup2(out[1], 1);
                dup2(err[1], 2);
                for (; env && *env; env++) {
                        const char *eq = strchr(*env, '=');

                        if (eq) {
                                char name[128];

                                snprintf(name, sizeof(name), "%.*s", (int)(eq - *env), *env);
                                setenv(name, eq + 1, 1);
                        } else
                                unsetenv(*env);
                }
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        while (out[0] >= 0 || err[0] >= 0) {
                struct pollfd f[2] = { { .fd = out[0], .events = POLLIN },
                                       { .fd = err[0], .events = POLLIN } };

                assert_true(poll(f, 2, RUN_TIMEOUT_MS) > 0);
                if (f[0].revents)
                        append(&out[0], &r.out, &out_len);
                if (f[1].revents)
                        append(&err[0], &r.err, &err_len);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (getenv("LATCHKEY_TEST_VERBOSE") || r.code == 127)
                fprintf(stderr, "%s -> %d\n--- out\n%s--- err\n%s---\n", argv[0], r.code, r.out,
                        r.err);
        return r;
}

#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define C_EXAMPLE(env, ...) run(env, (const char *const[]){ LK_GET_TOKEN, __VA_ARGS__, NULL })
#define PY_EXAMPLE(env, ...) \
        run(env, (const char *const[]){ LK_PYTHON, LK_GET_TOKEN_PY, __VA_ARGS__ })

/* A failure: the exit code, nothing on stdout, one line on stderr holding what. */
static void assert_failure(const struct run *r, int code, const char *what)
{
        if (r->code != code || !strstr(r->err, what))
                fprintf(stderr, "expected exit %d and '%s'; got %d, stderr: %s", code, what,
                        r->code, r->err);
        assert_int_equal(r->code, code);
        assert_string_equal(r->out, "");
        assert_non_null(strstr(r->err, what));
        assert_non_null(strchr(r->err, '\n'));
        assert_true(strchr(r->err, '\n') == r->err + strlen(r->err) - 1);
}

/* ---- the broker, the IdP and a session ---- */

static char *userinfo_url(void)
{
        char *url;

        assert_true(asprintf(&url, "%s/userinfo", H->issuer) > 0);
        return url;
}

/* A whole login through liblatchkey, the IdP playing the browser; the session is sid. */
static void open_session(const char *sid)
{
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL, *who = NULL;
        struct latchkey *lk = NULL;

        assert_int_equal(latchkey_open(&lk), 0);
        assert_int_equal(latchkey_begin_login(lk, "root", &id, &url), 0);
        assert_int_equal(lkh_browser_login(H, url, "root", false, &location, NULL), 0);
        assert_int_equal(latchkey_complete_login(lk, id, location, &who), 0);
        assert_string_equal(who, "root");
        assert_int_equal(latchkey_open_session(lk, id, sid), 0);
        latchkey_close(lk);
}

/* The session's token as the library hands it out (no refresh: it is valid for an hour). */
static char *token_of(const char *sid)
{
        struct latchkey *lk = NULL;
        char *token = NULL;

        assert_int_equal(latchkey_open(&lk), 0);
        assert_int_equal(latchkey_get_token(lk, sid, 0, &token, NULL, NULL), 0);
        latchkey_close(lk);
        return token;
}

static char *sub_of(const char *sid)
{
        _cleanup_free_ char *text = NULL;
        struct latchkey *lk = NULL;
        json_t *claims;
        char *sub;

        assert_int_equal(latchkey_open(&lk), 0);
        assert_int_equal(latchkey_get_claims(lk, sid, &text), 0);
        latchkey_close(lk);
        claims = json_loads(text, 0, NULL);
        assert_non_null(claims);
        sub = strdup(json_string_value(json_object_get(claims, "sub")));
        json_decref(claims);
        assert_non_null(sub);
        return sub;
}

static long userinfo_calls(void)
{
        long n = -1;

        assert_int_equal(lkh_idp_stat(H, "userinfo", &n), 0);
        return n;
}

/* The body the IdP's userinfo endpoint gives for root, from the session sid. */
static void assert_userinfo(const char *body, const char *sid)
{
        _cleanup_free_ char *sub = sub_of(sid);
        json_error_t jerr;
        json_t *j = json_loads(body, 0, &jerr);

        if (!j)
                fprintf(stderr, "not JSON (%s): %s\n", jerr.text, body);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "userName")), "root");
        assert_string_equal(json_string_value(json_object_get(j, "sub")), sub);
        assert_string_equal(json_string_value(json_object_get(j, "email")), "root@example.com");
        json_decref(j);
}

static int setup(void **state)
{
        if (lkh_new(&H) < 0 || lkh_start_idp(H, NULL) < 0 || lkh_write_config(H, NULL) < 0 ||
            lkh_start_bus(H) < 0 || lkh_start_broker(H, NULL) < 0) {
                lkh_free(H);
                H = NULL;
                return -1;
        }
        unsetenv("LATCHKEY_SESSION");
        unsetenv("CURL_CA_BUNDLE");
        unsetenv("SSL_CERT_FILE");
        return 0;
}

static int teardown(void **state)
{
        lkh_free(H);
        H = NULL;
        return 0;
}

/* ---- examples/get_token.c ---- */

static void test_c_calls_userinfo(void **state)
{
        _cleanup_free_ char *url = userinfo_url(), *ca = NULL;
        long before;
        struct run r;

        open_session("ex-c");
        assert_true(asprintf(&ca, "CURL_CA_BUNDLE=%s", H->cert_file) > 0);
        before = userinfo_calls();
        r = C_EXAMPLE(ENV("LATCHKEY_SESSION=ex-c", ca), url);
        assert_int_equal(r.code, 0);
        assert_string_equal(r.err, "");
        assert_userinfo(r.out, "ex-c");
        assert_int_equal(userinfo_calls(), before + 1);
        run_clear(&r);

        /* --cacert instead of the environment. */
        r = C_EXAMPLE(ENV("LATCHKEY_SESSION=ex-c"), "--cacert", H->cert_file, url);
        assert_int_equal(r.code, 0);
        assert_userinfo(r.out, "ex-c");
        run_clear(&r);
}

/* Without $LATCHKEY_SESSION the broker picks the caller's newest session. */
static void test_c_default_session(void **state)
{
        _cleanup_free_ char *url = userinfo_url();
        struct run r;

        open_session("ex-newest");
        r = C_EXAMPLE(ENV("LATCHKEY_SESSION"), "--cacert", H->cert_file, url);
        assert_int_equal(r.code, 0);
        assert_userinfo(r.out, "ex-newest");
        run_clear(&r);
}

static void test_c_errors(void **state)
{
        _cleanup_free_ char *url = userinfo_url(), *ca = NULL, *plain = NULL, *missing = NULL;
        long before;
        struct run r;

        open_session("ex-err");
        assert_true(asprintf(&ca, "CURL_CA_BUNDLE=%s", H->cert_file) > 0);

        /* No such session: the broker's NotFound, and no request at all. */
        before = userinfo_calls();
        r = C_EXAMPLE(ENV("LATCHKEY_SESSION=ex-nope", ca), url);
        assert_failure(&r, 1, "(NotFound)");
        run_clear(&r);
        assert_int_equal(userinfo_calls(), before);

        /* The IdP's certificate is not trusted without the test CA. */
        r = C_EXAMPLE(ENV("LATCHKEY_SESSION=ex-err", "CURL_CA_BUNDLE"), url);
        assert_failure(&r, 3, url);
        assert_non_null(strcasestr(r.err, "certificate"));
        run_clear(&r);

        /* The token never goes out over plain http. */
        assert_true(asprintf(&plain, "http://127.0.0.1:%u/api/v1/oauth2/userinfo",
                             H->idp_port) > 0);
        r = C_EXAMPLE(ENV("LATCHKEY_SESSION=ex-err", ca), plain);
        assert_failure(&r, 2, "must start with https://");
        run_clear(&r);

        /* An answer other than 2xx. */
        assert_true(asprintf(&missing, "%s/no-such-endpoint", H->issuer) > 0);
        r = C_EXAMPLE(ENV("LATCHKEY_SESSION=ex-err", ca), missing);
        assert_failure(&r, 3, "answered HTTP 404");
        run_clear(&r);
        assert_int_equal(userinfo_calls(), before);

        /* A closed session: its token is gone. */
        {
                struct latchkey *lk = NULL;

                assert_int_equal(latchkey_open(&lk), 0);
                assert_int_equal(latchkey_close_session(lk, "ex-err"), 0);
                latchkey_close(lk);
        }
        r = C_EXAMPLE(ENV("LATCHKEY_SESSION=ex-err", ca), url);
        assert_failure(&r, 1, "(NotFound)");
        run_clear(&r);

        r = C_EXAMPLE(ENV("LATCHKEY_SESSION=ex-c"), "--cacert");
        assert_failure(&r, 2, "Usage: get_token");
        run_clear(&r);
}

/* ---- examples/get_token.py ---- */

static void test_py_prints_token(void **state)
{
        _cleanup_secret_ char *token = NULL;
        _cleanup_free_ char *expected = NULL;
        struct run r;

        open_session("ex-py");
        token = token_of("ex-py");
        assert_true(asprintf(&expected, "%s\n", token) > 0);

        r = PY_EXAMPLE(ENV("LATCHKEY_SESSION=ex-py"), NULL);
        assert_int_equal(r.code, 0);
        assert_string_equal(r.err, "");
        assert_string_equal(r.out, expected);
        run_clear(&r);
}

/* Without $LATCHKEY_SESSION: the newest session, as for the C example. */
static void test_py_default_session(void **state)
{
        _cleanup_secret_ char *token = NULL;
        _cleanup_free_ char *expected = NULL;
        struct run r;

        open_session("ex-py-newest");
        token = token_of("ex-py-newest");
        assert_true(asprintf(&expected, "%s\n", token) > 0);
        r = PY_EXAMPLE(ENV("LATCHKEY_SESSION"), NULL);
        assert_int_equal(r.code, 0);
        assert_string_equal(r.out, expected);
        run_clear(&r);
}

static void test_py_calls_userinfo(void **state)
{
        _cleanup_free_ char *url = userinfo_url(), *ca = NULL;
        long before;
        struct run r;

        open_session("ex-py-api");
        assert_true(asprintf(&ca, "SSL_CERT_FILE=%s", H->cert_file) > 0);
        before = userinfo_calls();
        r = PY_EXAMPLE(ENV("LATCHKEY_SESSION=ex-py-api", ca), url, NULL);
        assert_int_equal(r.code, 0);
        assert_string_equal(r.err, "");
        assert_userinfo(r.out, "ex-py-api");
        assert_int_equal(userinfo_calls(), before + 1);
        run_clear(&r);

        /* Not trusted without the test CA. */
        r = PY_EXAMPLE(ENV("LATCHKEY_SESSION=ex-py-api", "SSL_CERT_FILE"), url, NULL);
        assert_failure(&r, 3, "CERTIFICATE_VERIFY_FAILED");
        run_clear(&r);
}

static void test_py_errors(void **state)
{
        struct run r;

        r = PY_EXAMPLE(ENV("LATCHKEY_SESSION=ex-py-nope"), NULL);
        assert_failure(&r, 1, "(org.latchkey.Broker1.Error.NotFound)");
        run_clear(&r);

        r = PY_EXAMPLE(ENV("LATCHKEY_SESSION=ex-py"), "http://127.0.0.1/", NULL);
        assert_failure(&r, 2, "Usage: get_token.py");
        run_clear(&r);
}

/* Last: with the broker gone, both say so in one line. */
static void test_no_broker(void **state)
{
        _cleanup_free_ char *url = userinfo_url();
        struct run r;

        lkh_stop_broker(H);
        lkh_stop_bus(H);

        r = C_EXAMPLE(ENV("LATCHKEY_SESSION=ex-c"), "--cacert", H->cert_file, url);
        assert_failure(&r, 1, "(NoBroker)");
        run_clear(&r);

        r = PY_EXAMPLE(ENV("LATCHKEY_SESSION=ex-py"), NULL);
        assert_failure(&r, 1, "get_token.py: no token: ");
        run_clear(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_c_calls_userinfo),
                cmocka_unit_test(test_c_default_session),
                cmocka_unit_test(test_c_errors),
                cmocka_unit_test(test_py_prints_token),
                cmocka_unit_test(test_py_default_session),
                cmocka_unit_test(test_py_calls_userinfo),
                cmocka_unit_test(test_py_errors),
                cmocka_unit_test(test_no_broker),
        };

        return cmocka_run_group_tests_name("examples", tests, setup, teardown);
}
