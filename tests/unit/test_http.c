/* SPDX-License-Identifier: MIT */
/* lk_http against a libmicrohttpd server on a random loopback port. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "oidc/http.h"
#include "tests/unit/test_server.h"

/* What the server saw of the last /echo request (under the server lock). */
struct seen {
        char method[16];
        char body[4096];
        char content_type[128];
        char accept[128];
        char authorization[256];
        char user_agent[128];
        int hello_hits;
};

static void copy_header(char *dst, size_t size, const char *v)
{
        snprintf(dst, size, "%s", v ? v : "");
}

static void handler(struct ts_server *s, const struct ts_request *rq, struct ts_reply *rp)
{
        struct seen *seen = s->userdata;

        if (streq(rq->url, "/hello")) {
                seen->hello_hits++;
                ts_reply_text(rp, 200, "text/plain; charset=utf-8", "hello");
                rp->cache_control = "public, max-age=123";
        } else if (streq(rq->url, "/cc")) {
                ts_reply_text(rp, 200, "application/json", "{}");
                rp->cache_control = ts_arg(rq, "v");
        } else if (streq(rq->url, "/echo")) {
                copy_header(seen->method, sizeof(seen->method), rq->method);
                copy_header(seen->body, sizeof(seen->body), rq->body);
                copy_header(seen->content_type, sizeof(seen->content_type),
                            ts_header(rq, "Content-Type"));
                copy_header(seen->accept, sizeof(seen->accept), ts_header(rq, "Accept"));
                copy_header(seen->authorization, sizeof(seen->authorization),
                            ts_header(rq, "Authorization"));
                copy_header(seen->user_agent, sizeof(seen->user_agent),
                            ts_header(rq, "User-Agent"));
                ts_reply_text(rp, 200, "application/json", "{\"ok\":true}");
        } else if (streq(rq->url, "/big")) {
                const char *n = ts_arg(rq, "n");
                size_t len = n ? strtoul(n, NULL, 10) : 0;

                rp->body = malloc(len + 1);
                memset(rp->body, 'x', len);
                rp->body_len = len;
                rp->chunked = ts_arg(rq, "chunked") != NULL;
                rp->content_type = "application/octet-stream";
        } else if (streq(rq->url, "/slow")) {
                const char *ms = ts_arg(rq, "ms");

                ts_reply_text(rp, 200, "text/plain", "slow");
                rp->delay_ms = ms ? (unsigned)strtoul(ms, NULL, 10) : 0;
        } else if (streq(rq->url, "/redirect")) {
                ts_reply_text(rp, 302, "text/plain", "moved");
                rp->location = "/hello";
        } else if (streq(rq->url, "/status")) {
                const char *code = ts_arg(rq, "code");

                ts_reply_text(rp, code ? (unsigned)strtoul(code, NULL, 10) : 500,
                              "application/json", "{\"error\":\"server_error\"}");
        } else {
                ts_reply_text(rp, 404, "text/plain", "not found");
        }
}

struct fixture {
        struct ts_server server;
        struct seen seen;
        struct lk_http *h;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_int_equal(ts_start(&f->server, handler, &f->seen, NULL, NULL), 0);
        assert_int_equal(lk_http_new(&f->h), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        lk_http_free(f->h);
        ts_stop(&f->server);
        free(f);
        return 0;
}

struct result {
        int calls;
        bool ok;
        long status;
        char *body;
        size_t body_len;
        char *content_type;
        long max_age;
        struct lk_error err;
        int order; /* when it completed, among others */
        int64_t at_ms; /* when its callback ran (CLOCK_MONOTONIC) */
};

static int completed;

static int64_t mono_ms(void);

static void result_clear(struct result *r)
{
        free(r->body);
        free(r->content_type);
        *r = (struct result){0};
}

static void record_cb(void *userdata, const struct lk_http_response *resp,
                      const struct lk_error *err)
{
        struct result *r = userdata;

        r->calls++;
        r->order = ++completed;
        r->at_ms = mono_ms();
        if (!resp) {
                assert_non_null(err);
                r->err = *err;
                return;
        }
        assert_null(err);
        r->ok = true;
        r->status = resp->status;
        r->body = malloc(resp->body_len + 1);
        memcpy(r->body, resp->body, resp->body_len + 1);
        r->body_len = resp->body_len;
        r->content_type = resp->content_type ? strdup(resp->content_type) : NULL;
        r->max_age = resp->max_age;
}

static char *url(struct fixture *f, const char *path)
{
        char *u;

        assert_true(asprintf(&u, "%s%s", f->server.base, path) > 0);
        return u;
}

static void fetch(struct fixture *f, const struct lk_http_request *req, struct result *r)
{
        struct lk_error e = {0};

        assert_int_equal(lk_http_submit(f->h, req, record_cb, r, &e), 0);
        assert_int_equal(lk_http_pending(f->h), 1);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(lk_http_pending(f->h), 0);
        assert_int_equal(r->calls, 1);
}

static void get(struct fixture *f, const char *path, unsigned timeout, struct result *r)
{
        _cleanup_free_ char *u = url(f, path);
        struct lk_http_request req = {.url = u, .timeout = timeout};

        fetch(f, &req, r);
}

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_get(void **state)
{
        struct fixture *f = *state;
        struct result r = {0};

        get(f, "/hello", 5, &r);
        assert_true(r.ok);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "hello");
        assert_int_equal(r.body_len, 5);
        assert_string_equal(r.content_type, "text/plain; charset=utf-8");
        assert_int_equal(r.max_age, 123);
        assert_int_equal(lk_http_requests_started(f->h), 1);
        result_clear(&r);
}

static void test_cache_control(void **state)
{
        static const struct {
                const char *query;
                long max_age;
        } cases[] = {
                { "/cc", -1 },                                    /* absent */
                { "/cc?v=max-age%3D60", 60 },
                { "/cc?v=MAX-AGE%3D7%2C%20public", 7 },
                { "/cc?v=max-age%3D%2260%22", 60 },               /* quoted */
                { "/cc?v=no-store%2C%20max-age%3D100", -1 },
                { "/cc?v=max-age%3D100%2C%20no-cache", -1 },
                { "/cc?v=max-age%3Dabc", -1 },
                { "/cc?v=max-age%3D-5", -1 },
                { "/cc?v=max-age%3D12x", -1 },
                { "/cc?v=max-age%3D", -1 },
                { "/cc?v=max-age%3D99999999999999999999999", LONG_MAX },
                { "/cc?v=s-maxage%3D50", -1 },
        };
        struct fixture *f = *state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct result r = {0};

                get(f, cases[i].query, 5, &r);
                assert_true(r.ok);
                if (r.max_age != cases[i].max_age)
                        fail_msg("%s: max_age %ld, expected %ld", cases[i].query, r.max_age,
                                 cases[i].max_age);
                result_clear(&r);
        }
}

static void test_parse_cache_control(void **state)
{
        long age = -1;
        bool no_store = false;
        /* Not NUL-terminated where the value ends: "max-age=12" must not read on into "34". */
        static const char buf[] = "max-age=1234";

        (void)state;
        lk_http_parse_cache_control(buf, 10, &age, &no_store);
        assert_int_equal(age, 12);
        assert_false(no_store);
        age = -1;
        lk_http_parse_cache_control("", 0, &age, &no_store);
        lk_http_parse_cache_control(",,, ,", 5, &age, &no_store);
        lk_http_parse_cache_control("max-age", 7, &age, &no_store);
        lk_http_parse_cache_control("max-age=\"\"", 10, &age, &no_store);
        lk_http_parse_cache_control("max-age=+5", 10, &age, &no_store);
        lk_http_parse_cache_control("max-age= 5", 10, &age, &no_store);
        assert_int_equal(age, -1);
        assert_false(no_store);
        lk_http_parse_cache_control("No-Cache", 8, &age, &no_store);
        assert_true(no_store);
        lk_http_parse_cache_control("max-age=0", 9, &age, &no_store);
        assert_int_equal(age, 0);
}

static void test_post_form(void **state)
{
        static const char form[] =
                "grant_type=authorization_code&code=a%2Fb%3D%26c&redirect_uri=https%3A%2F%2Fx%2Fcb"
                "&v=%E2%9C%93+z";
        struct fixture *f = *state;
        _cleanup_free_ char *u = url(f, "/echo");
        struct lk_http_request req = {.url = u, .form = form, .timeout = 5};
        struct result r = {0};

        fetch(f, &req, &r);
        assert_true(r.ok);
        assert_int_equal(r.status, 200);
        assert_string_equal(f->seen.method, "POST");
        assert_string_equal(f->seen.body, form);
        assert_string_equal(f->seen.content_type, "application/x-www-form-urlencoded");
        assert_string_equal(f->seen.accept, "application/json");
        assert_string_equal(f->seen.user_agent, "latchkey/" LATCHKEY_VERSION);
        assert_string_equal(f->seen.authorization, "");
        result_clear(&r);
}

static void test_get_is_get(void **state)
{
        struct fixture *f = *state;
        struct result r = {0};

        get(f, "/echo", 5, &r);
        assert_true(r.ok);
        assert_string_equal(f->seen.method, "GET");
        assert_string_equal(f->seen.body, "");
        assert_string_equal(f->seen.accept, "application/json");
        result_clear(&r);
}

static void test_basic_auth(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *u = url(f, "/echo");
        struct lk_http_request req = {
                .url = u, .form = "grant_type=refresh_token", .timeout = 5,
                .basic_user = "client%201", .basic_password = "s3cr%3At",
        };
        const char *pair = "client%201:s3cr%3At";
        unsigned char b64[128];
        char expected[160];
        struct result r = {0};

        EVP_EncodeBlock(b64, (const unsigned char *)pair, (int)strlen(pair));
        snprintf(expected, sizeof(expected), "Basic %s", (char *)b64);
        fetch(f, &req, &r);
        assert_true(r.ok);
        assert_string_equal(f->seen.authorization, expected);
        assert_string_equal(f->seen.body, "grant_type=refresh_token");
        result_clear(&r);
}

static void test_body_over_cap(void **state)
{
        struct fixture *f = *state;
        static const char *paths[] = { "/big?n=1048577", "/big?n=1048577&chunked=1",
                                       "/big?n=3000000&chunked=1" };

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                struct result r = {0};

                get(f, paths[i], 10, &r);
                assert_false(r.ok);
                assert_int_equal(r.err.code, LK_ERR_PROVIDER_UNAVAILABLE);
                assert_non_null(strstr(r.err.message, "response larger than 1 MiB"));
                result_clear(&r);
        }
}

static void test_body_exactly_cap(void **state)
{
        struct fixture *f = *state;
        static const char *paths[] = { "/big?n=1048576", "/big?n=1048576&chunked=1" };

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                struct result r = {0};

                get(f, paths[i], 10, &r);
                assert_true(r.ok);
                assert_int_equal(r.body_len, LK_HTTP_MAX_BODY);
                assert_int_equal(r.body[LK_HTTP_MAX_BODY - 1], 'x');
                assert_int_equal(r.body[LK_HTTP_MAX_BODY], 0);
                result_clear(&r);
        }
}

static void test_empty_body(void **state)
{
        struct fixture *f = *state;
        struct result r = {0};

        get(f, "/big?n=0", 5, &r);
        assert_true(r.ok);
        assert_int_equal(r.body_len, 0);
        assert_string_equal(r.body, "");
        result_clear(&r);
}

static void test_timeout(void **state)
{
        struct fixture *f = *state;
        struct result r = {0};
        int64_t t0 = mono_ms(), elapsed;

        get(f, "/slow?ms=5000", 1, &r);
        elapsed = mono_ms() - t0;
        assert_false(r.ok);
        assert_int_equal(r.err.code, LK_ERR_PROVIDER_UNAVAILABLE);
        print_message("%s\n", r.err.message);
        assert_non_null(strstr(r.err.message, "timeout"));
        assert_non_null(strstr(r.err.message, f->server.base));
        assert_true(elapsed >= 900);
        assert_true(elapsed < 2000);
        result_clear(&r);
}

/* A port nobody listens on: bound (so nobody else takes it) but not listening. */
static int unused_port(int *ret_fd)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        assert_true(fd >= 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        *ret_fd = fd;
        return ntohs(sa.sin_port);
}

static void test_connection_refused(void **state)
{
        struct fixture *f = *state;
        struct lk_http_request req = {.timeout = 5};
        struct result r = {0};
        char u[64];
        int fd;

        snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", unused_port(&fd));
        req.url = u;
        fetch(f, &req, &r);
        close(fd);
        assert_false(r.ok);
        assert_int_equal(r.err.code, LK_ERR_PROVIDER_UNAVAILABLE);
        print_message("%s\n", r.err.message);
        assert_non_null(strstr(r.err.message, u));
        result_clear(&r);
}

static void test_redirect_not_followed(void **state)
{
        struct fixture *f = *state;
        struct result r = {0};

        get(f, "/redirect", 5, &r);
        assert_true(r.ok);
        assert_int_equal(r.status, 302);
        assert_string_equal(r.body, "moved");
        pthread_mutex_lock(&f->server.lock);
        assert_int_equal(f->seen.hello_hits, 0);
        pthread_mutex_unlock(&f->server.lock);
        assert_int_equal(atomic_load(&f->server.requests), 1);
        result_clear(&r);
}

static void test_server_error_is_a_response(void **state)
{
        struct fixture *f = *state;
        struct result r = {0};

        get(f, "/status?code=503", 5, &r);
        assert_true(r.ok);
        assert_int_equal(r.status, 503);
        assert_string_equal(r.content_type, "application/json");
        result_clear(&r);
}

static void test_other_protocols_refused(void **state)
{
        static const char *urls[] = { "ftp://127.0.0.1/x", "file:///etc/passwd",
                                      "gopher://127.0.0.1/" };
        struct fixture *f = *state;

        for (size_t i = 0; i < ELEMENTSOF(urls); i++) {
                struct lk_http_request req = {.url = urls[i], .timeout = 5};
                struct result r = {0};

                fetch(f, &req, &r);
                assert_false(r.ok);
                assert_int_equal(r.err.code, LK_ERR_PROVIDER_UNAVAILABLE);
                print_message("%s\n", r.err.message);
                assert_non_null(strstr(r.err.message, urls[i]));
                result_clear(&r);
        }
        assert_int_equal(atomic_load(&f->server.requests), 0);
}

static void test_invalid_requests(void **state)
{
        struct fixture *f = *state;
        struct lk_http_request req = {.url = "http://127.0.0.1:1/", .timeout = 0};
        struct lk_error e = {0};
        struct result r = {0};

        assert_int_equal(lk_http_submit(f->h, &req, record_cb, &r, &e), -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(e.code, LK_ERR_INVALID_ARGUMENT);
        lk_error_clear(&e);
        req = (struct lk_http_request){.url = NULL, .timeout = 5};
        assert_int_equal(lk_http_submit(f->h, &req, record_cb, &r, &e), -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_http_pending(f->h), 0);
        assert_int_equal(lk_http_requests_started(f->h), 0);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(r.calls, 0);
}

static void test_parallel(void **state)
{
        enum { N = 20 };
        struct fixture *f = *state;
        _cleanup_free_ char *u = url(f, "/slow?ms=300");
        struct lk_http_request req = {.url = u, .timeout = 10};
        struct result r[N] = {0};
        struct lk_error e = {0};
        int64_t t0 = mono_ms();

        completed = 0;
        for (int i = 0; i < N; i++)
                assert_int_equal(lk_http_submit(f->h, &req, record_cb, &r[i], &e), 0);
        assert_int_equal(lk_http_pending(f->h), N);
        assert_int_equal(lk_http_run(f->h), 0);
        for (int i = 0; i < N; i++) {
                assert_int_equal(r[i].calls, 1);
                assert_true(r[i].ok);
                assert_string_equal(r[i].body, "slow");
                assert_true(r[i].order >= 1 && r[i].order <= N);
                result_clear(&r[i]);
        }
        assert_int_equal(completed, N);
        assert_int_equal(atomic_load(&f->server.requests), N);
        /* They were at the server at the same time, not one after another. */
        assert_true(atomic_load(&f->server.peak) >= N / 2);
        assert_true(mono_ms() - t0 < N * 300 / 2);
}

struct chain {
        struct fixture *f;
        char *url;
        int left;
        int calls;
        bool all_ok;
};

static void chain_cb(void *userdata, const struct lk_http_response *resp,
                     const struct lk_error *err)
{
        struct chain *c = userdata;
        struct lk_http_request req = {.url = c->url, .timeout = 5};
        struct lk_error e = {0};

        c->calls++;
        if (!resp || resp->status != 200 || !streq(resp->body, "hello"))
                c->all_ok = false;
        /* The finished exchange is no longer pending while its callback runs. */
        if (lk_http_pending(c->f->h) != 0)
                c->all_ok = false;
        if (c->left-- > 0 && lk_http_submit(c->f->h, &req, chain_cb, c, &e) < 0)
                c->all_ok = false;
}

static void test_callback_submits(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *u = url(f, "/hello");
        struct chain c = {.f = f, .url = u, .left = 3, .all_ok = true};
        struct lk_http_request req = {.url = u, .timeout = 5};
        struct lk_error e = {0};

        assert_int_equal(lk_http_submit(f->h, &req, chain_cb, &c, &e), 0);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(c.calls, 4);
        assert_true(c.all_ok);
        assert_int_equal(lk_http_requests_started(f->h), 4);
        assert_int_equal(f->seen.hello_hits, 4);
}

static void test_cancel(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *u = url(f, "/slow?ms=100");
        struct lk_http_request req = {.url = u, .timeout = 5};
        struct result a = {0}, b = {0};
        struct lk_error e = {0};

        assert_int_equal(lk_http_submit(f->h, &req, record_cb, &a, &e), 0);
        assert_int_equal(lk_http_submit(f->h, &req, record_cb, &b, &e), 0);
        assert_int_equal(lk_http_submit(f->h, &req, record_cb, &a, &e), 0);
        assert_int_equal(lk_http_cancel(f->h, &a), 2);
        assert_int_equal(lk_http_pending(f->h), 1);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(a.calls, 0);
        assert_int_equal(b.calls, 1);
        assert_true(b.ok);
        assert_int_equal(lk_http_cancel(f->h, &b), 0);
        result_clear(&b);
}

/* A callback that cancels an exchange that finished in the same round. */
struct canceller {
        struct lk_http *h;
        void *victim;
        int calls;
};

static void cancel_cb(void *userdata, const struct lk_http_response *resp,
                      const struct lk_error *err)
{
        struct canceller *c = userdata;

        c->calls++;
        lk_http_cancel(c->h, c->victim);
}

static void test_cancel_from_callback(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *u = url(f, "/hello");
        struct lk_http_request req = {.url = u, .timeout = 5};
        struct canceller c1 = {.h = f->h}, c2;
        struct lk_error e = {0};

        /* Whichever of the two finishes first cancels the other (or nothing is left to cancel). */
        c2 = c1;
        c1.victim = &c2;
        c2.victim = &c1;
        assert_int_equal(lk_http_submit(f->h, &req, cancel_cb, &c1, &e), 0);
        assert_int_equal(lk_http_submit(f->h, &req, cancel_cb, &c2, &e), 0);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(c1.calls + c2.calls, 1);
        assert_int_equal(lk_http_pending(f->h), 0);
}

struct deferral {
        struct lk_http *h;
        int *log;
        int n;
        int id;
        bool inside;
        bool ran_inside;
};

static int defer_log[8];
static int defer_n;

static void defer_cb(void *userdata)
{
        struct deferral *d = userdata;

        if (d->inside)
                d->ran_inside = true;
        defer_log[defer_n++] = d->id;
        if (d->id == 1) {
                /* Queued from a deferred call: runs after the ones already queued. */
                static struct deferral again = {.id = 9};

                assert_int_equal(lk_http_defer(d->h, defer_cb, &again), 0);
        }
}

static void test_defer(void **state)
{
        struct fixture *f = *state;
        struct deferral d[3];

        defer_n = 0;
        for (int i = 0; i < 3; i++) {
                d[i] = (struct deferral){.h = f->h, .id = i + 1, .inside = true};
                assert_int_equal(lk_http_defer(f->h, defer_cb, &d[i]), 0);
                d[i].inside = false;
        }
        assert_int_equal(lk_http_cancel(f->h, &d[1]), 1);
        assert_int_equal(defer_n, 0);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(defer_n, 3);
        assert_int_equal(defer_log[0], 1);
        assert_int_equal(defer_log[1], 3);
        assert_int_equal(defer_log[2], 9);
        for (int i = 0; i < 3; i++)
                assert_false(d[i].ran_inside);
}

/* A small poll loop, standing in for the broker's, driving lk_http through its callbacks. */
#define LOOP_FDS_MAX 512
struct loop {
        struct pollfd fds[LOOP_FDS_MAX];
        int n;
        int64_t deadline; /* -1: none */
        int watch_calls, timer_calls;
};

static void loop_watch(void *userdata, int fd, int what)
{
        struct loop *l = userdata;
        int i;

        l->watch_calls++;
        for (i = 0; i < l->n; i++)
                if (l->fds[i].fd == fd)
                        break;
        if (what == 0) {
                if (i < l->n)
                        l->fds[i] = l->fds[--l->n];
                return;
        }
        if (i == l->n) {
                assert_true(l->n < LOOP_FDS_MAX);
                l->n++;
        }
        l->fds[i] = (struct pollfd){
                .fd = fd,
                .events = (short)(((what & LK_HTTP_WATCH_IN) ? POLLIN : 0) |
                                  ((what & LK_HTTP_WATCH_OUT) ? POLLOUT : 0)),
        };
}

static void loop_timer(void *userdata, long timeout_ms)
{
        struct loop *l = userdata;

        l->timer_calls++;
        l->deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
}

/* Runs until *counter reaches target or the time limit; returns false on the time limit. */
static bool loop_run(struct lk_http *h, struct loop *l, const int *counter, int target,
                     int64_t limit_ms)
{
        int64_t end = mono_ms() + limit_ms;

        while (*counter < target) {
                struct pollfd fds[LOOP_FDS_MAX];
                int n = l->n, wait = 100;
                int64_t now = mono_ms();

                if (now > end)
                        return false;
                if (l->deadline >= 0)
                        wait = l->deadline <= now ? 0 : (int)(l->deadline - now);
                if (wait > 100)
                        wait = 100;
                memcpy(fds, l->fds, sizeof(fds[0]) * (size_t)n);
                assert_true(poll(fds, (nfds_t)n, wait) >= 0);
                for (int i = 0; i < n; i++) {
                        int what = 0;

                        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
                                what |= LK_HTTP_WATCH_IN;
                        if (fds[i].revents & POLLOUT)
                                what |= LK_HTTP_WATCH_OUT;
                        if (what)
                                lk_http_on_socket(h, fds[i].fd, what);
                }
                if (l->deadline >= 0 && l->deadline <= mono_ms()) {
                        l->deadline = -1;
                        lk_http_on_timeout(h);
                }
        }
        return true;
}

static void count_cb(void *userdata)
{
        (*(int *)userdata)++;
}

static void test_event_loop(void **state)
{
        enum { N = 5 };
        struct fixture *f = *state;
        _cleanup_free_ char *u = url(f, "/slow?ms=50"), *e_url = url(f, "/echo");
        struct lk_http_request req = {.url = u, .timeout = 5};
        struct lk_http_request post = {.url = e_url, .form = "a=1&b=2", .timeout = 5};
        struct result r[N + 1] = {0};
        struct loop l = {.deadline = -1};
        struct lk_error e = {0};
        int deferred = 0;

        lk_http_set_loop(f->h, loop_watch, loop_timer, &l);
        assert_int_equal(lk_http_run(f->h), -LK_ERR_INVALID_ARGUMENT);
        completed = 0;
        for (int i = 0; i < N; i++)
                assert_int_equal(lk_http_submit(f->h, &req, record_cb, &r[i], &e), 0);
        assert_int_equal(lk_http_submit(f->h, &post, record_cb, &r[N], &e), 0);
        assert_int_equal(lk_http_defer(f->h, count_cb, &deferred), 0);
        assert_int_equal(deferred, 0);
        assert_true(loop_run(f->h, &l, &completed, N + 1, 5000));
        assert_true(loop_run(f->h, &l, &deferred, 1, 1000));
        for (int i = 0; i <= N; i++) {
                assert_int_equal(r[i].calls, 1);
                assert_true(r[i].ok);
                result_clear(&r[i]);
        }
        assert_int_equal(deferred, 1);
        assert_string_equal(f->seen.body, "a=1&b=2");
        assert_true(l.watch_calls > 0);
        assert_true(l.timer_calls > 0);
        assert_int_equal(lk_http_pending(f->h), 0);
        /* Here, while l lives: freeing h tells the loop about the sockets it closes. */
        lk_http_free(f->h);
        f->h = NULL;
}

static void test_event_loop_timeout(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *u = url(f, "/slow?ms=5000");
        struct lk_http_request req = {.url = u, .timeout = 1};
        struct loop l = {.deadline = -1};
        struct result r = {0};
        struct lk_error e = {0};
        int64_t t0 = mono_ms();

        lk_http_set_loop(f->h, loop_watch, loop_timer, &l);
        assert_int_equal(lk_http_submit(f->h, &req, record_cb, &r, &e), 0);
        assert_true(loop_run(f->h, &l, &r.calls, 1, 3000));
        assert_false(r.ok);
        assert_non_null(strstr(r.err.message, "timeout"));
        assert_true(mono_ms() - t0 < 2000);
        /* Every socket curl asked us to watch was released again. */
        assert_int_equal(l.n, 0);
        lk_http_free(f->h);
        f->h = NULL;
}

/* ---- many requests to one host: at most 128 at once, the rest queued (http.c) ---- */

#define HOST_MAX 128

/* The loop of the tests below: static, since lk_http_free() in the teardown still tells it
 * about the sockets it closes. */
static struct loop big_loop;

/* Connections open at the server at once, counted by libmicrohttpd's connection notices. */
static atomic_int conns_now, conns_peak;

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
        (void)cls;
        (void)conn;
        (void)socket_context;
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                int now = atomic_fetch_add(&conns_now, 1) + 1;
                int peak = atomic_load(&conns_peak);

                while (now > peak && !atomic_compare_exchange_weak(&conns_peak, &peak, now))
                        ;
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                atomic_fetch_sub(&conns_now, 1);
        }
}

/* As setup, with a server that counts its connections and takes many more than 128. */
static int setup_counting(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        const union MHD_DaemonInfo *info;
        struct ts_server *s;

        assert_non_null(f);
        s = &f->server;
        s->handler = handler;
        s->userdata = &f->seen;
        pthread_mutex_init(&s->lock, NULL);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        atomic_store(&conns_now, 0);
        atomic_store(&conns_peak, 0);
        s->daemon = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0,
                NULL, NULL, ts_access, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                MHD_OPTION_NOTIFY_COMPLETED, ts_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
                on_connection, s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
        assert_non_null(s->daemon);
        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
        assert_true(info && info->port != 0);
        s->port = info->port;
        snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%u", (unsigned)s->port);
        assert_int_equal(lk_http_new(&f->h), 0);
        *state = f;
        return 0;
}

/*
 * N requests at once to one host whose answers take delay_ms: all complete, never more than
 * 128 connections at the server at once, and the queue is first in, first out: each of those
 * submitted past the first 128 completes after every one of the first 128.
 */
static void many_at_once(struct fixture *f, bool with_loop)
{
        enum { N = 200, DELAY_MS = 500 };
        _cleanup_free_ char *u = url(f, "/slow?ms=500");
        struct lk_http_request req = {.url = u, .timeout = 15};
        struct result *r = calloc(N, sizeof(*r));
        struct loop *l = &big_loop;
        struct lk_error e = {0};
        int64_t t0 = mono_ms();
        int last_of_first = 0, first_of_rest = N + 1;

        assert_non_null(r);
        *l = (struct loop){.deadline = -1};
        completed = 0;
        if (with_loop)
                lk_http_set_loop(f->h, loop_watch, loop_timer, l);
        for (int i = 0; i < N; i++)
                assert_int_equal(lk_http_submit(f->h, &req, record_cb, &r[i], &e), 0);
        assert_int_equal(lk_http_pending(f->h), N);
        if (with_loop)
                assert_true(loop_run(f->h, l, &completed, N, 20000));
        else
                assert_int_equal(lk_http_run(f->h), 0);
        print_message("%d requests, %d ms each: %lld ms; at most %d connections, %d requests "
                      "at once at the server\n",
                      N, DELAY_MS, (long long)(mono_ms() - t0), atomic_load(&conns_peak),
                      atomic_load(&f->server.peak));

        assert_int_equal(completed, N);
        assert_int_equal(lk_http_pending(f->h), 0);
        assert_int_equal(atomic_load(&f->server.requests), N);
        for (int i = 0; i < N; i++) {
                if (r[i].calls != 1 || !r[i].ok)
                        fail_msg("request %d: %d calls, %s", i, r[i].calls,
                                 r[i].ok ? "ok" : r[i].err.message);
                assert_string_equal(r[i].body, "slow");
                if (i < HOST_MAX && r[i].order > last_of_first)
                        last_of_first = r[i].order;
                if (i >= HOST_MAX && r[i].order < first_of_rest)
                        first_of_rest = r[i].order;
                result_clear(&r[i]);
        }
        /* The cap held, and was used: the first 128 were under way together. */
        assert_true(atomic_load(&conns_peak) <= HOST_MAX);
        assert_true(atomic_load(&f->server.peak) <= HOST_MAX);
        assert_true(atomic_load(&f->server.peak) >= HOST_MAX * 3 / 4);
        /* Completion order: the queued ones after all of the first 128 (callbacks 1..128). */
        assert_int_equal(last_of_first, HOST_MAX);
        assert_int_equal(first_of_rest, HOST_MAX + 1);
        /* Two rounds of the provider's delay, not N of them. */
        assert_true(mono_ms() - t0 < 6 * DELAY_MS);
        free(r);
}

static void test_many_at_once_loop(void **state)
{
        many_at_once(*state, true);
}

static void test_many_at_once_run(void **state)
{
        many_at_once(*state, false);
}

/*
 * 128 slow requests hold every slot; one more, with a timeout of 1 s, waits in the queue and
 * never starts: it must still fail with a timeout after about 1 s (its own), not when a slot
 * comes free, and the server must never see it.
 */
static void queued_times_out(struct fixture *f, bool with_loop)
{
        _cleanup_free_ char *slow = url(f, "/slow?ms=4000"), *quick = url(f, "/hello");
        struct lk_http_request req = {.url = slow, .timeout = 15};
        struct lk_http_request late = {.url = quick, .timeout = 1};
        struct result *r = calloc(HOST_MAX, sizeof(*r));
        struct loop *l = &big_loop;
        struct result q = {0};
        struct lk_error e = {0};
        int64_t t0;

        assert_non_null(r);
        *l = (struct loop){.deadline = -1};
        completed = 0;
        if (with_loop)
                lk_http_set_loop(f->h, loop_watch, loop_timer, l);
        for (int i = 0; i < HOST_MAX; i++)
                assert_int_equal(lk_http_submit(f->h, &req, record_cb, &r[i], &e), 0);
        if (with_loop) {
                /* Let the 128 reach the server, so the slots are really taken. */
                int64_t end = mono_ms() + 5000;

                while (atomic_load(&f->server.in_flight) < HOST_MAX && mono_ms() < end) {
                        (void)loop_run(f->h, l, &completed, 1, 20);
                        assert_int_equal(completed, 0);
                }
                assert_int_equal(atomic_load(&f->server.in_flight), HOST_MAX);
        }
        t0 = mono_ms();
        assert_int_equal(lk_http_submit(f->h, &late, record_cb, &q, &e), 0);
        if (with_loop)
                assert_true(loop_run(f->h, l, &q.calls, 1, 3000));
        else
                assert_int_equal(lk_http_run(f->h), 0);
        print_message("queued request: %s after %lld ms\n", q.ok ? "ok" : q.err.message,
                      (long long)(q.at_ms - t0));
        assert_int_equal(q.calls, 1);
        assert_false(q.ok);
        assert_int_equal(q.err.code, LK_ERR_PROVIDER_UNAVAILABLE);
        assert_non_null(strstr(q.err.message, "timeout"));
        assert_non_null(strstr(q.err.message, quick));
        assert_true(q.at_ms - t0 >= 900);
        assert_true(q.at_ms - t0 < 2000);
        pthread_mutex_lock(&f->server.lock);
        assert_int_equal(f->seen.hello_hits, 0);
        pthread_mutex_unlock(&f->server.lock);
        if (with_loop) {
                /* The slow ones are still under way; none of them ended with it. */
                assert_int_equal(completed, 1);
                assert_int_equal(lk_http_pending(f->h), HOST_MAX);
        }
        for (int i = 0; i < HOST_MAX; i++)
                result_clear(&r[i]);
        result_clear(&q);
        /* The teardown frees h with the slow ones under way, and stops the server at once. */
        free(r);
}

static void test_queued_times_out_loop(void **state)
{
        queued_times_out(*state, true);
}

static void test_queued_times_out_run(void **state)
{
        queued_times_out(*state, false);
}

static void write_tmp(const char *text, char *path_template)
{
        int fd = mkstemp(path_template);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static void test_https(void **state)
{
        _cleanup_free_ char *cert = NULL, *key = NULL, *u = NULL;
        char ca_path[] = "/tmp/lk-test-ca-XXXXXX";
        struct ts_server s;
        struct seen seen = {0};
        struct lk_http *h;
        struct lk_error e = {0};
        struct result r = {0}, untrusted = {0};

        (void)state;
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
                skip();
        assert_int_equal(ts_make_cert(&cert, &key), 0);
        write_tmp(cert, ca_path);
        assert_int_equal(ts_start(&s, handler, &seen, cert, key), 0);
        assert_int_equal(lk_http_new(&h), 0);
        assert_true(asprintf(&u, "%s/hello", s.base) > 0);

        struct lk_http_request req = {.url = u, .timeout = 5, .ca_file = ca_path};
        assert_int_equal(lk_http_submit(h, &req, record_cb, &r, &e), 0);
        req.ca_file = NULL; /* the system bundle does not know our certificate */
        assert_int_equal(lk_http_submit(h, &req, record_cb, &untrusted, &e), 0);
        assert_int_equal(lk_http_run(h), 0);

        assert_true(r.ok);
        assert_string_equal(r.body, "hello");
        assert_false(untrusted.ok);
        assert_int_equal(untrusted.err.code, LK_ERR_PROVIDER_UNAVAILABLE);
        print_message("%s\n", untrusted.err.message);
        assert_non_null(strstr(untrusted.err.message, u));
        assert_int_equal(seen.hello_hits, 1);

        result_clear(&r);
        result_clear(&untrusted);
        lk_http_free(h);
        ts_stop(&s);
        unlink(ca_path);
}

/* The subject-hash name OpenSSL looks a CA up by in a CA folder ("%08lx.0", as c_rehash). */
static char *hash_name(const char *cert_pem)
{
        BIO *b = BIO_new_mem_buf(cert_pem, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        char *name = NULL;
        int ok = 0;
        unsigned long hash = x ? X509_NAME_hash_ex(X509_get_subject_name(x), NULL, NULL, &ok) : 0;

        if (ok && asprintf(&name, "%08lx.0", hash) < 0)
                name = NULL;
        X509_free(x);
        BIO_free(b);
        return name;
}

/* In the child of test_system_ca_folder, in a mount namespace of its own: 0 when both hold. */
static int system_ca_folder_child(const char *url, const char *cert, const char *other_ca)
{
        char dir[] = "/tmp/lk-test-certs-XXXXXX", other[] = "/tmp/lk-test-other-XXXXXX";
        struct result trusted = {0}, alone = {0};
        struct lk_error e = {0};
        struct lk_http *h;
        char *name = hash_name(cert), *path = NULL;
        FILE *f;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return 77;
        if (!name || !mkdtemp(dir) || asprintf(&path, "%s/%s", dir, name) < 0)
                return 2;
        f = fopen(path, "we");
        if (!f || fputs(cert, f) < 0 || fclose(f) != 0)
                return 2;
        /* The system's CA folder is now one that trusts the test server; its bundle is gone. */
        if (access("/etc/ssl/certs", F_OK) < 0 ||
            mount(dir, "/etc/ssl/certs", NULL, MS_BIND, NULL) < 0)
                return 77;
        write_tmp(other_ca, other);
        if (lk_http_new(&h) < 0)
                return 2;
        struct lk_http_request req = {.url = url, .timeout = 5};
        if (lk_http_submit(h, &req, record_cb, &trusted, &e) < 0)
                return 2;
        req.ca_file = other; /* ca_file alone: the folder that trusts the server is not asked */
        if (lk_http_submit(h, &req, record_cb, &alone, &e) < 0 || lk_http_run(h) < 0)
                return 2;
        if (!trusted.ok)
                fprintf(stderr, "without ca_file, the system's CA folder was not used: %s\n",
                        trusted.err.message);
        if (alone.ok)
                fprintf(stderr, "with ca_file, the system's CA folder was asked too\n");
        return trusted.ok && !alone.ok && alone.err.code == LK_ERR_PROVIDER_UNAVAILABLE ? 0 : 1;
}

/*
 * Which CAs a request trusts (oidc/http.c): without ca_file, the system's CA folder (libcurl's
 * built-in one, whose bundle it holds); with ca_file, that file alone. Root only: the test
 * binds a folder that trusts its server over /etc/ssl/certs in a mount namespace of a child.
 */
static void test_system_ca_folder(void **state)
{
        _cleanup_free_ char *cert = NULL, *key = NULL, *other = NULL, *other_key = NULL;
        _cleanup_free_ char *u = NULL;
        const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
        struct ts_server s;
        struct seen seen = {0};
        int status = 0;
        pid_t pid;

        (void)state;
        if (geteuid() != 0 || MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
            !vi->capath || strcmp(vi->capath, "/etc/ssl/certs") != 0)
                skip();
        assert_int_equal(ts_make_cert(&cert, &key), 0);
        /* Another name: the server's issuer is then looked up in the folder, not found in it. */
        assert_int_equal(ts_make_cert_named("lk-test-other-ca", &other, &other_key), 0);
        assert_int_equal(ts_start(&s, handler, &seen, cert, key), 0);
        assert_true(asprintf(&u, "%s/hello", s.base) > 0);
        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(system_ca_folder_child(u, cert, other));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        ts_stop(&s);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77)
                skip(); /* no mount namespace here */
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(seen.hello_hits, 1); /* the trusted one */
}

static void test_free_with_pending(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *u = url(f, "/slow?ms=200");
        struct lk_http_request req = {.url = u, .form = "secret=1", .timeout = 5};
        struct result r = {0};
        struct lk_error e = {0};
        int deferred = 0;

        assert_int_equal(lk_http_submit(f->h, &req, record_cb, &r, &e), 0);
        assert_int_equal(lk_http_defer(f->h, count_cb, &deferred), 0);
        lk_http_free(f->h);
        f->h = NULL;
        assert_int_equal(r.calls, 0);
        assert_int_equal(deferred, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_get, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cache_control, setup, teardown),
                cmocka_unit_test(test_parse_cache_control),
                cmocka_unit_test_setup_teardown(test_post_form, setup, teardown),
                cmocka_unit_test_setup_teardown(test_get_is_get, setup, teardown),
                cmocka_unit_test_setup_teardown(test_basic_auth, setup, teardown),
                cmocka_unit_test_setup_teardown(test_body_over_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_body_exactly_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_empty_body, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_redirect_not_followed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_error_is_a_response, setup, teardown),
                cmocka_unit_test_setup_teardown(test_other_protocols_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_requests, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parallel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_callback_submits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel_from_callback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_defer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_event_loop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_event_loop_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many_at_once_loop, setup_counting, teardown),
                cmocka_unit_test_setup_teardown(test_many_at_once_run, setup_counting, teardown),
                cmocka_unit_test_setup_teardown(test_queued_times_out_loop, setup_counting,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_queued_times_out_run, setup_counting,
                                                teardown),
                cmocka_unit_test(test_https),
                cmocka_unit_test(test_system_ca_folder),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
