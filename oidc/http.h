/* SPDX-License-Identifier: MIT */
/*
 * HTTP exchanges with the provider, on libcurl's multi interface, so the
 * broker runs many from one event loop without blocking. Every exchange has a
 * timeout, TLS is always verified, bodies are capped at LK_HTTP_MAX_BODY.
 * Request bodies may carry secrets: they are wiped when the exchange ends.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oidc/error.h"

#define LK_HTTP_MAX_BODY (1024 * 1024)

struct lk_http_request {
        const char *url;
        const char *form;           /* NULL: GET; else POST application/x-www-form-urlencoded */
        const char *basic_user;     /* HTTP Basic, when set (already form-encoded, RFC 6749 §2.3.1) */
        const char *basic_password;
        const char *ca_file;        /* extra CA bundle, or NULL */
        unsigned timeout;           /* seconds, > 0 */
};

struct lk_http_response {
        long status;
        char *content_type; /* NULL when absent */
        char *body;         /* NUL-terminated */
        size_t body_len;
        long max_age;       /* Cache-Control max-age in seconds, -1 when absent or no-store */
        long retry_after;   /* Retry-After in seconds from now (either form), -1 when absent */
        bool challenge;     /* a WWW-Authenticate header came with it */
};

/*
 * Called once per exchange. On a transport failure (DNS, connect, TLS,
 * timeout, body over the cap) resp is NULL and err says what happened
 * (LK_ERR_PROVIDER_UNAVAILABLE). Any HTTP status counts as a response;
 * redirects are not followed, so a 3xx arrives as such. resp is freed after
 * the callback returns. The exchange is already finished when its callback
 * runs: the callback may submit, cancel or defer (but not lk_http_free(h)).
 */
typedef void (*lk_http_done_fn)(void *userdata, const struct lk_http_response *resp,
                                const struct lk_error *err);

struct lk_http;

int lk_http_new(struct lk_http **ret);
/* Cancels what is under way without calling its callbacks. */
void lk_http_free(struct lk_http *h);
static inline void lk_http_freep(struct lk_http **h)
{
        lk_http_free(*h);
}

/* Copies what it needs from req (wiping the copies at the end). */
int lk_http_submit(struct lk_http *h, const struct lk_http_request *req, lk_http_done_fn done,
                   void *userdata, struct lk_error *e);

/* Exchanges under way. */
unsigned lk_http_pending(const struct lk_http *h);

/*
 * Runs fn(userdata) from the next event processing (lk_http_on_timeout, or
 * lk_http_run), never from inside this call: for callbacks that must not run
 * inside the call that started an operation. With an event loop it arms a
 * 0 ms timer. Calls deferred from a deferred call run in a later round.
 */
typedef void (*lk_http_defer_fn)(void *userdata);
int lk_http_defer(struct lk_http *h, lk_http_defer_fn fn, void *userdata);

/*
 * Drops every exchange and deferred call whose userdata is userdata, without
 * calling them (for an owner that goes away while its requests are under
 * way). Safe from within callbacks. Returns how many were dropped.
 */
unsigned lk_http_cancel(struct lk_http *h, void *userdata);

/*
 * Event loop integration. watch_socket is told which fd to watch for what
 * (LK_HTTP_WATCH_* bits, 0 = stop watching); set_timer is told when to call
 * lk_http_on_timeout (-1 = no timer). The loop then calls lk_http_on_socket /
 * lk_http_on_timeout, which run finished callbacks.
 */
enum {
        LK_HTTP_WATCH_IN = 1,
        LK_HTTP_WATCH_OUT = 2,
};
typedef void (*lk_http_watch_fn)(void *loop, int fd, int what);
typedef void (*lk_http_timer_fn)(void *loop, long timeout_ms);
void lk_http_set_loop(struct lk_http *h, lk_http_watch_fn watch_socket, lk_http_timer_fn set_timer,
                      void *loop);
void lk_http_on_socket(struct lk_http *h, int fd, int what);
void lk_http_on_timeout(struct lk_http *h);

/*
 * For the command line and tests: runs until no exchange and no deferred call
 * is pending. Not for an lk_http that has a loop set (-LK_ERR_INVALID_ARGUMENT).
 */
int lk_http_run(struct lk_http *h);

/*
 * One Cache-Control header value (not NUL-terminated): sets *max_age from
 * max-age=N (digits only, a quoted value tolerated, huge values LONG_MAX) and
 * *no_store on no-store or no-cache; leaves them alone otherwise. Exposed for
 * the fuzzer and tests.
 */
void lk_http_parse_cache_control(const char *value, size_t len, long *max_age, bool *no_store);

/* For statistics and tests: how many exchanges were started, in all. */
uint64_t lk_http_requests_started(const struct lk_http *h);
