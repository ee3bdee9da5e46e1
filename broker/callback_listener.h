/* SPDX-License-Identifier: MIT */
/*
 * The callback listener ([callback] listen): an HTTPS server (libmicrohttpd, TLS) on the
 * broker's own loop, which receives the provider's redirect for the code flow so that the
 * person need not paste it. It serves one thing: GET of redirect_uri's path with code and
 * state (or error) of a pending login, which it completes as CompleteLogin would
 * (lk_login_complete), answering the browser with a short page. Everything else is a bare
 * 404. Without [callback] listen there is none, and pasting works as always.
 */
#pragma once

#include "broker/loop.h"
#include "oidc/config.h"
#include "oidc/error.h"

struct lk_budget;
struct lk_logins;

/* Limits (docs/SECURITY.md); the rate per address is in callback_rate.h. */
#define LK_CALLBACK_REQUEST_MAX 8192      /* bytes of request target, and of all headers */
#define LK_CALLBACK_HEADERS_MAX 32        /* header lines of one request */
#define LK_CALLBACK_CONNECTIONS_MAX 64    /* connections at once */
#define LK_CALLBACK_CONNECTIONS_PER_ADDRESS 8 /* connections at once from one address */
#define LK_CALLBACK_TIMEOUT_S 10          /* a connection idle this long is closed */
#define LK_CALLBACK_PEM_MAX (64 * 1024)   /* the certificate (chain) and key files */

struct lk_callback_listener;

/* What it works on: the manager's objects. */
struct lk_callback_deps {
        const struct lk_config *config; /* [callback], redirect_uri */
        struct lk_loop *loop;
        const struct lk_clock *clock;
        struct lk_logins *logins;
        struct lk_budget *budget; /* one token-endpoint request per callback, as CompleteLogin */
};

/*
 * Reads the certificate and key (the key as a private file, lk_read_private_file), binds
 * [callback] listen and starts serving on d->loop. config must have callback_listen set.
 */
int lk_callback_listener_new(const struct lk_callback_deps *d, struct lk_callback_listener **ret,
                             struct lk_error *e);
/* Closes every connection. Call it after every login has answered (lk_logins_free_all): a
 * request waiting for its code exchange is answered then. NULL is fine. */
void lk_callback_listener_free(struct lk_callback_listener *c);
