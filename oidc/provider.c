/* SPDX-License-Identifier: MIT */
/*
 * The relying party's conversations with the provider. Each operation is a
 * small state machine (struct op) that goes: endpoints known? keys fresh?
 * then its own request. Discovery and key fetches are shared: operations that
 * need one while it is under way wait for it, so a burst of logins makes one
 * fetch. Every step runs from lk_http's event processing; a user callback is
 * always the last thing a step does, so it may free the provider.
 */
#include "oidc/provider.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "oidc/idtoken.h"
#include "oidc/log.h"

enum op_kind {
        OP_PREPARE,
        OP_EXCHANGE,
        OP_REFRESH,
        OP_REVOKE,
        OP_DEVICE_AUTH, /* RFC 8628 §3.1 */
        OP_DEVICE_POLL, /* RFC 8628 §3.4: one poll of the token endpoint */
};

enum op_wait {
        WAIT_NONE,
        WAIT_DISCOVERY,
        WAIT_JWKS,
};

struct op {
        struct lk_provider *p;
        struct op *prev, *next;
        enum op_kind kind;
        enum op_wait wait;
        lk_provider_done_fn done;        /* OP_PREPARE, OP_REVOKE */
        lk_provider_grant_fn grant_done; /* OP_EXCHANGE, OP_REFRESH, OP_DEVICE_POLL */
        lk_provider_device_fn device_done; /* OP_DEVICE_AUTH */
        void *userdata;

        char *code;          /* secrets, wiped on free (OP_DEVICE_POLL: the device_code) */
        char *verifier;
        char *nonce;
        char *refresh_token;
        char *token;
        char *hint;
        char *scope;         /* OP_REFRESH for a narrower token: NULL for the session's own */
        char *audience;
        json_t *previous_claims;

        bool have_tokens;    /* the token endpoint answered; what is left is verifying */
        struct lk_tokens tokens;
        bool refetched;      /* the one key refetch for an unknown kid is used up */
        bool stuck;          /* woken, but could not be scheduled: wake_waiters() ends it */
        /* The outcome of the last shared fetch this op waited for, when it failed. */
        bool discovery_failed, jwks_failed;
        struct lk_error fetch_err;
};

struct lk_provider {
        const struct lk_config *c;
        struct lk_http *h;
        char *discovery_url;
        char *discovery_path; /* NULL: memory only */

        struct lk_endpoints ep;
        bool have_ep;
        int64_t ep_expires_at;
        bool discovery_busy;

        struct lk_jwks_cache jwks;
        bool jwks_busy;

        struct op *ops;
        struct lk_provider_stats stats;
        int64_t throttled_until; /* after a 429: no token requests before this (s, realtime) */
        bool *alive; /* while wake_waiters() calls back: false once p is freed */
};

static int64_t now_s(void)
{
        return (int64_t)time(NULL);
}

static void op_free(struct op *op)
{
        if (!op)
                return;
        lk_secret_free(op->code);
        lk_secret_free(op->verifier);
        lk_secret_free(op->nonce);
        lk_secret_free(op->refresh_token);
        lk_secret_free(op->token);
        free(op->hint);
        free(op->scope);
        free(op->audience);
        json_decref(op->previous_claims);
        lk_tokens_clear(&op->tokens);
        explicit_bzero(op, sizeof(*op));
        free(op);
}

static void op_unlink(struct op *op)
{
        struct lk_provider *p = op->p;

        if (op->prev)
                op->prev->next = op->next;
        else
                p->ops = op->next;
        if (op->next)
                op->next->prev = op->prev;
        op->prev = op->next = NULL;
}

void lk_grant_free(struct lk_grant *g)
{
        if (!g)
                return;
        lk_tokens_clear(&g->tokens);
        json_decref(g->claims);
        free(g);
}

/*
 * Ends op: hands the outcome to its callback. The callback may free the
 * provider, so the caller of op_finish must return right after it.
 */
static void op_finish(struct op *op, struct lk_grant *grant, const struct lk_error *err)
{
        lk_provider_grant_fn grant_done = op->grant_done;
        lk_provider_device_fn device_done = op->device_done;
        lk_provider_done_fn done = op->done;
        void *userdata = op->userdata;
        struct lk_error copy = {0};

        if (err)
                copy = *err;
        lk_http_cancel(op->p->h, op); /* nothing should be left; be sure */
        op_unlink(op);
        op_free(op);
        if (grant_done)
                grant_done(userdata, err ? NULL : grant, err ? &copy : NULL);
        else if (device_done)
                device_done(userdata, NULL, &copy); /* success goes through device_auth_done */
        else
                done(userdata, err ? &copy : NULL);
        if (err)
                lk_grant_free(grant);
}

static void op_fail(struct op *op, int code, const char *fmt, ...) _printf_(3, 4);
static void op_fail(struct op *op, int code, const char *fmt, ...)
{
        struct lk_error e = {0};
        va_list ap;

        va_start(ap, fmt);
        lk_error_setv(&e, code, fmt, ap);
        va_end(ap);
        op_finish(op, NULL, &e);
}

static void op_step(struct op *op);

static void op_step_deferred(void *userdata)
{
        op_step(userdata);
}

/*
 * Lets every op waiting for what (a discovery or key fetch) go on, in a later round. An op
 * that cannot be scheduled (out of memory) ends now with an error, so that its caller always
 * hears back: a login would otherwise stay "exchanging" for ever. Each callback may free p
 * (which then ends the rest without calling back, as lk_provider_free does): p->alive says.
 */
static void wake_waiters(struct lk_provider *p, enum op_wait what, const struct lk_error *err)
{
        bool alive = true, *outer = p->alive;
        unsigned stuck = 0;

        for (struct op *op = p->ops; op; op = op->next) {
                if (op->wait != what)
                        continue;
                op->wait = WAIT_NONE;
                if (what == WAIT_DISCOVERY)
                        op->discovery_failed = err != NULL;
                else
                        op->jwks_failed = err != NULL;
                if (err)
                        op->fetch_err = *err;
                if (lk_http_defer(p->h, op_step_deferred, op) < 0) {
                        op->stuck = true;
                        stuck++;
                }
        }
        if (!stuck)
                return;
        log_error("Out of memory: ending %u provider operation(s) that cannot go on", stuck);
        p->alive = &alive;
        while (alive) {
                struct op *op = p->ops;

                while (op && !op->stuck)
                        op = op->next;
                if (!op)
                        break;
                op_fail(op, LK_ERR_NOMEM, "Out of memory");
        }
        if (alive)
                p->alive = outer;
        else if (outer)
                *outer = false;
}

/*
 * Discovery and key fetches: 5xx is the provider being down; another 4xx means the
 * address is wrong or the provider refuses us, which no retry fixes: say where to look.
 */
static int check_status(const char *what, const char *url, const char *fix,
                        const struct lk_http_response *resp, struct lk_error *e)
{
        if (resp->status == 200)
                return 0;
        if (resp->status >= 500 && resp->status <= 599)
                return lk_error_set(e, LK_ERR_PROVIDER_UNAVAILABLE, "%s %s answered HTTP %ld",
                                    what, url, resp->status);
        if (resp->status == 429)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "%s %s answered HTTP 429 Too Many Requests", what, url);
        if (resp->status >= 400 && resp->status <= 499)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "%s %s answered HTTP %ld: a configuration problem, check %s",
                                    what, url, resp->status, fix);
        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE, "%s %s answered HTTP %ld", what, url,
                            resp->status);
}

static void discovery_done(void *userdata, const struct lk_http_response *resp,
                           const struct lk_error *err)
{
        struct lk_provider *p = userdata;
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};
        int64_t now = now_s();

        p->discovery_busy = false;
        if (!resp)
                e = *err;
        else if (check_status("The discovery document at", p->discovery_url, "[provider] issuer",
                              resp, &e) == 0 &&
                 lk_discovery_parse(p->c, resp->body, resp->body_len, &ep, &e) == 0) {
                int64_t expires_at = now + lk_cache_lifetime(resp->max_age);

                lk_endpoints_clear(&p->ep);
                p->ep = ep;
                p->have_ep = true;
                p->ep_expires_at = expires_at;
                if (lk_jwks_cache_bind(&p->jwks, p->ep.jwks_uri) < 0)
                        log_error("Out of memory keeping the jwks_uri");
                if (p->discovery_path) {
                        struct lk_cache_file f = {
                                .body = resp->body, .len = resp->body_len,
                                .url = p->discovery_url, .fetched_at = now,
                                .expires_at = expires_at,
                        };
                        struct lk_error we = {0};

                        if (lk_cache_file_save(p->discovery_path, &f, &we) < 0)
                                log_warning("Cannot keep a copy of the discovery document, "
                                            "ignoring: %s", we.message);
                }
                wake_waiters(p, WAIT_DISCOVERY, NULL);
                return;
        }

        if (p->have_ep) {
                /* A refresh of a document we have: keep using the old one for a while. */
                log_warning("Cannot refresh the provider's discovery document, keeping the "
                            "previous one: %s", e.message);
                p->ep_expires_at = now + LK_JWKS_MIN_AGE;
                wake_waiters(p, WAIT_DISCOVERY, NULL);
                return;
        }
        wake_waiters(p, WAIT_DISCOVERY, &e);
}

/* GETs url unless a fetch of it is under way (*busy), counting it in *count. */
static int start_fetch(struct lk_provider *p, const char *url, lk_http_done_fn done, bool *busy,
                       uint64_t *count, struct lk_error *e)
{
        struct lk_http_request req = {
                .url = url, .ca_file = p->c->ca_file, .timeout = p->c->timeout,
        };
        int r;

        if (*busy)
                return 0;
        r = lk_http_submit(p->h, &req, done, p, e);
        if (r < 0)
                return r;
        *busy = true;
        (*count)++;
        return 0;
}

static int start_discovery(struct lk_provider *p, struct lk_error *e)
{
        return start_fetch(p, p->discovery_url, discovery_done, &p->discovery_busy,
                           &p->stats.discovery, e);
}

static void jwks_done(void *userdata, const struct lk_http_response *resp,
                      const struct lk_error *err)
{
        struct lk_provider *p = userdata;
        struct lk_error e = {0};

        p->jwks_busy = false;
        if (!resp)
                e = *err;
        else if (check_status("The key set at", p->ep.jwks_uri,
                              "the jwks_uri ([provider] jwks_uri, or discovery's)", resp,
                              &e) == 0 &&
                 lk_jwks_cache_store(&p->jwks, resp->body, resp->body_len, resp->max_age, now_s(),
                                     &e) == 0) {
                wake_waiters(p, WAIT_JWKS, NULL);
                return;
        }
        wake_waiters(p, WAIT_JWKS, &e);
}

static int start_jwks(struct lk_provider *p, struct lk_error *e)
{
        return start_fetch(p, p->ep.jwks_uri, jwks_done, &p->jwks_busy, &p->stats.jwks, e);
}

/* Waits for a key fetch (one under way, or a new one). Returns false when op was finished. */
static bool op_wait_for_keys(struct op *op)
{
        struct lk_error e = {0};

        if (start_jwks(op->p, &e) < 0) {
                op_finish(op, NULL, &e);
                return false;
        }
        op->wait = WAIT_JWKS;
        return true;
}

static void verify_and_finish(struct op *op)
{
        struct lk_provider *p = op->p;
        const struct lk_config *c = p->c;
        struct lk_idtoken_params params = {
                .issuer = c->issuer,
                .client_id = c->client_id,
                .client_secret = c->client_secret,
                .algorithms = c->algorithms,
                /* RFC 8628 has no nonce: every other check holds (docs/latchkey.conf.5). */
                .nonce_mode = op->kind == OP_DEVICE_POLL ? LK_NONCE_OFF : c->nonce,
                .nonce = op->nonce,
                .now = now_s(),
                .clock_skew = c->clock_skew,
                .previous_claims = op->kind == OP_REFRESH ? op->previous_claims : NULL,
        };
        struct lk_grant *grant;
        struct lk_error e = {0};
        json_t *claims = NULL;
        int r;

        if (!op->tokens.id_token) {
                if (op->kind == OP_EXCHANGE || op->kind == OP_DEVICE_POLL) {
                        op_fail(op, LK_ERR_INVALID_ID_TOKEN,
                                "The token endpoint answered without an id_token");
                        return;
                }
        } else {
                r = lk_idtoken_verify(op->tokens.id_token, &params, p->jwks.keys, &claims, &e);
                if (r < 0 && e.code == LK_ERR_INVALID_ID_TOKEN && e.detail == LK_IDT_UNKNOWN_KID &&
                    !op->refetched) {
                        /* A fetch under way counts as the refetch; else one a minute at most. */
                        if (p->jwks_busy || lk_jwks_cache_may_refetch(&p->jwks, params.now)) {
                                log_info("The id_token names a key we do not know; fetching "
                                         "the provider's keys again");
                                op->refetched = true;
                                op_wait_for_keys(op);
                                return;
                        }
                        log_warning("The id_token names a key we do not know, and the keys "
                                    "were fetched less than %d s ago",
                                    LK_JWKS_REFETCH_INTERVAL);
                }
                if (r < 0 && op->refetched && op->jwks_failed) {
                        op_finish(op, NULL, &op->fetch_err);
                        return;
                }
                if (r < 0) {
                        op_finish(op, NULL, &e);
                        return;
                }
        }

        grant = calloc(1, sizeof(*grant));
        if (!grant) {
                json_decref(claims);
                op_fail(op, LK_ERR_NOMEM, "Out of memory");
                return;
        }
        grant->tokens = op->tokens;
        op->tokens = (struct lk_tokens){0};
        grant->claims = claims;
        op_finish(op, grant, NULL);
}

/* After a 429, the provider's Retry-After within bounds, else a default. */
static int64_t throttle_seconds(long retry_after)
{
        if (retry_after <= 0)
                return LK_PROVIDER_THROTTLE_DEFAULT;
        if (retry_after > LK_PROVIDER_THROTTLE_MAX)
                return LK_PROVIDER_THROTTLE_MAX;
        return retry_after;
}

/*
 * The provider's refusals that are nobody's but the admin's, or that concern every
 * caller alike, are decided here: invalid_client is logged at error level (once per
 * request, whatever the caller logs), and a 429 stops every token request until the
 * time is up, so that no caller hammers a provider that asked us to wait.
 */
static void note_refusal(struct lk_provider *p, const struct lk_http_response *resp,
                         struct lk_error *e)
{
        /*
         * A 401 that challenges (WWW-Authenticate) without an OAuth error: the client's
         * authentication failed (RFC 6749 §5.2 answers client_secret_basic so), not the
         * grant; expiring every session for it would punish people for a rotated secret.
         */
        if (e->code == LK_ERR_INVALID_GRANT && resp->status == 401 && resp->challenge &&
            !e->provider_error[0]) {
                lk_error_clear(e);
                lk_error_set(e, LK_ERR_CLIENT_REFUSED,
                             "The provider refused latchkey's client credentials (HTTP 401 with "
                             "an authentication challenge): check [provider] client_id and the "
                             "client secret");
        }
        if (e->code == LK_ERR_CLIENT_REFUSED) {
                log_error("%s", e->message);
        } else if (e->code == LK_ERR_TOO_MANY_REQUESTS) {
                int64_t wait = throttle_seconds(resp->retry_after);

                p->throttled_until = now_s() + wait;
                lk_error_clear(e);
                lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                             "The provider answered HTTP 429 Too Many Requests; no token "
                             "requests for %lld s",
                             (long long)wait);
                log_warning("%s", e->message);
        }
}

static void token_done(void *userdata, const struct lk_http_response *resp,
                       const struct lk_error *err)
{
        struct op *op = userdata;
        struct lk_error e = {0};

        if (!resp) {
                op_finish(op, NULL, err);
                return;
        }
        if (lk_token_response_parse(resp->status, resp->content_type, resp->body, resp->body_len,
                                    now_s(), &op->tokens, &e) < 0) {
                note_refusal(op->p, resp, &e);
                op_finish(op, NULL, &e);
                return;
        }
        op->have_tokens = true;
        verify_and_finish(op);
}

static void device_auth_done(void *userdata, const struct lk_http_response *resp,
                             const struct lk_error *err)
{
        struct op *op = userdata;
        lk_provider_device_fn done = op->device_done;
        void *done_userdata = op->userdata;
        struct lk_device_auth *auth;
        struct lk_error e = {0};

        if (!resp) {
                op_finish(op, NULL, err);
                return;
        }
        auth = calloc(1, sizeof(*auth));
        if (!auth) {
                op_fail(op, LK_ERR_NOMEM, "Out of memory");
                return;
        }
        if (lk_device_auth_parse(resp->status, resp->content_type, resp->body, resp->body_len,
                                 auth, &e) < 0) {
                free(auth);
                if (e.code == LK_ERR_CLIENT_REFUSED)
                        log_error("%s", e.message);
                op_finish(op, NULL, &e);
                return;
        }
        op_unlink(op);
        op_free(op);
        done(done_userdata, auth, NULL);
}

static void revoke_done(void *userdata, const struct lk_http_response *resp,
                        const struct lk_error *err)
{
        struct op *op = userdata;
        struct lk_error e = {0};

        if (!resp) {
                op_finish(op, NULL, err);
                return;
        }
        if (resp->status == 200) {
                op_finish(op, NULL, NULL);
                return;
        }
        /* The token endpoint's error rules (RFC 7009 §2.2.1 reuses RFC 6749 §5.2). */
        lk_token_error_parse(resp->status, resp->body, resp->body_len, &e);
        if (e.code == LK_ERR_CLIENT_REFUSED)
                log_error("%s", e.message);
        op_finish(op, NULL, &e);
}

static void send_token_request(struct op *op)
{
        struct lk_provider *p = op->p;
        struct lk_token_request tr = {0};
        struct lk_error e = {0};
        int r;

        if (op->kind != OP_REVOKE && op->kind != OP_DEVICE_AUTH && now_s() < p->throttled_until) {
                op_fail(op, LK_ERR_TOO_MANY_REQUESTS,
                        "The provider asked for no requests for another %lld s (HTTP 429); "
                        "try again later",
                        (long long)(p->throttled_until - now_s()));
                return;
        }
        switch (op->kind) {
        case OP_EXCHANGE:
                r = lk_token_request_code(p->c, p->ep.token_endpoint, op->code, op->verifier, &tr,
                                          &e);
                break;
        case OP_REFRESH:
                r = lk_token_request_refresh_for(p->c, p->ep.token_endpoint, op->refresh_token,
                                                 op->scope, op->audience, &tr, &e);
                break;
        case OP_DEVICE_POLL:
                r = lk_token_request_device_code(p->c, p->ep.token_endpoint, op->code, &tr, &e);
                break;
        case OP_DEVICE_AUTH:
                r = lk_token_request_device_authorization(
                    p->c, p->ep.device_authorization_endpoint, &tr, &e);
                break;
        default:
                if (!p->ep.revocation_endpoint) {
                        op_fail(op, LK_ERR_NOT_FOUND, "The provider has no revocation endpoint");
                        return;
                }
                r = lk_token_request_revoke(p->c, p->ep.revocation_endpoint, op->token, op->hint,
                                            &tr, &e);
        }
        if (r >= 0) {
                struct lk_http_request req = {
                        .url = tr.url,
                        .form = tr.form,
                        .basic_user = tr.basic_user,
                        .basic_password = tr.basic_password,
                        .ca_file = p->c->ca_file,
                        .timeout = p->c->timeout,
                };

                r = lk_http_submit(p->h, &req,
                                   op->kind == OP_REVOKE        ? revoke_done
                                   : op->kind == OP_DEVICE_AUTH ? device_auth_done
                                                                : token_done,
                                   op, &e);
        }
        lk_token_request_clear(&tr);
        if (r < 0) {
                op_finish(op, NULL, &e);
                return;
        }
        if (op->kind == OP_REVOKE)
                p->stats.revoke++;
        else if (op->kind == OP_DEVICE_AUTH)
                p->stats.device++;
        else
                p->stats.token++;
}

static void op_step(struct op *op)
{
        struct lk_provider *p = op->p;
        struct lk_error e = {0};
        int64_t now = now_s();

        /* The endpoints: fetched once, refreshed in the background once their lifetime ends. */
        if (!p->have_ep) {
                if (op->discovery_failed) {
                        op_finish(op, NULL, &op->fetch_err);
                        return;
                }
                if (start_discovery(p, &e) < 0) {
                        op_finish(op, NULL, &e);
                        return;
                }
                op->wait = WAIT_DISCOVERY;
                return;
        }
        if (p->c->discovery && now >= p->ep_expires_at && start_discovery(p, &e) < 0)
                log_warning("Cannot refresh the discovery document, ignoring: %s", e.message);

        /* The keys, unless only a revocation is wanted or they are already being fetched again. */
        if (op->kind != OP_REVOKE && p->ep.jwks_uri && !op->refetched &&
            lk_jwks_cache_stale(&p->jwks, now)) {
                if (!op->jwks_failed) {
                        op_wait_for_keys(op);
                        return;
                }
                if (!p->jwks.keys) {
                        op_finish(op, NULL, &op->fetch_err);
                        return;
                }
                log_warning("Cannot refresh the provider's keys, using the previous ones: %s",
                            op->fetch_err.message);
        }

        switch (op->kind) {
        case OP_PREPARE:
                op_finish(op, NULL, NULL);
                return;
        case OP_EXCHANGE:
        case OP_REFRESH:
        case OP_DEVICE_POLL:
                if (op->have_tokens) {
                        verify_and_finish(op); /* after a key refetch */
                        return;
                }
                send_token_request(op);
                return;
        case OP_REVOKE:
        case OP_DEVICE_AUTH:
                send_token_request(op);
                return;
        }
}

static int op_start(struct lk_provider *p, struct op *op)
{
        int r;

        op->p = p;
        r = lk_http_defer(p->h, op_step_deferred, op);
        if (r < 0) {
                op_free(op);
                return r;
        }
        op->next = p->ops;
        if (p->ops)
                p->ops->prev = op;
        p->ops = op;
        return 0;
}

static int dup_opt(const char *s, char **ret)
{
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -LK_ERR_NOMEM;
}

static void load_discovery_copy(struct lk_provider *p, int64_t now)
{
        struct lk_cache_file f = {0};
        struct lk_error e = {0};

        if (lk_cache_file_load(p->discovery_path, now, &f, &e) < 0) {
                log_debug("Not using the cached discovery document: %s", e.message);
                return;
        }
        if (!streq_ptr(f.url, p->discovery_url))
                log_debug("Not using the cached discovery document: it came from %s",
                          f.url ? f.url : "an unknown URL");
        else if (lk_discovery_parse(p->c, f.body, f.len, &p->ep, &e) < 0)
                log_debug("Not using the cached discovery document: %s", e.message);
        else {
                p->have_ep = true;
                p->ep_expires_at = f.expires_at;
        }
        lk_cache_file_clear(&f);
}

int lk_provider_new(const struct lk_config *c, struct lk_http *h, const char *cache_dir,
                    struct lk_provider **ret, struct lk_error *e)
{
        struct lk_provider *p;
        _cleanup_free_ char *jwks_path = NULL;
        int64_t now = now_s();
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        p->c = c;
        p->h = h;
        if (cache_dir) {
                if (asprintf(&p->discovery_path, "%s/discovery.json", cache_dir) < 0) {
                        p->discovery_path = NULL;
                        goto nomem;
                }
                if (asprintf(&jwks_path, "%s/jwks.json", cache_dir) < 0) {
                        jwks_path = NULL;
                        goto nomem;
                }
        }
        r = lk_jwks_cache_init(&p->jwks, jwks_path, now);
        if (r < 0)
                goto nomem;

        if (c->discovery) {
                r = lk_discovery_url(c->issuer, &p->discovery_url, e);
                if (r < 0)
                        goto fail;
                if (p->discovery_path)
                        load_discovery_copy(p, now);
        } else {
                r = lk_endpoints_from_config(c, &p->ep, e);
                if (r < 0)
                        goto fail;
                p->have_ep = true;
                p->ep_expires_at = INT64_MAX;
        }
        if (p->have_ep && lk_jwks_cache_bind(&p->jwks, p->ep.jwks_uri) < 0)
                goto nomem;
        *ret = p;
        return 0;

nomem:
        r = lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
fail:
        lk_provider_free(p);
        return r;
}

void lk_provider_free(struct lk_provider *p)
{
        if (!p)
                return;
        if (p->alive)
                *p->alive = false;
        while (p->ops) {
                struct op *op = p->ops;

                lk_http_cancel(p->h, op);
                op_unlink(op);
                op_free(op);
        }
        lk_http_cancel(p->h, p);
        lk_endpoints_clear(&p->ep);
        lk_jwks_cache_clear(&p->jwks);
        free(p->discovery_url);
        free(p->discovery_path);
        free(p);
}

const struct lk_endpoints *lk_provider_endpoints(const struct lk_provider *p)
{
        return p->have_ep ? &p->ep : NULL;
}

static struct op *op_new(enum op_kind kind, void *userdata)
{
        struct op *op = calloc(1, sizeof(*op));

        if (op) {
                op->kind = kind;
                op->userdata = userdata;
        }
        return op;
}

int lk_provider_prepare(struct lk_provider *p, lk_provider_done_fn done, void *userdata)
{
        struct op *op;

        assert(done);
        op = op_new(OP_PREPARE, userdata);
        if (!op)
                return -LK_ERR_NOMEM;
        op->done = done;
        return op_start(p, op);
}

int lk_provider_exchange_code(struct lk_provider *p, const char *code, const char *verifier,
                              const char *nonce, lk_provider_grant_fn done, void *userdata)
{
        struct op *op;

        assert(done);
        if (isempty(code))
                return -LK_ERR_INVALID_ARGUMENT;
        op = op_new(OP_EXCHANGE, userdata);
        if (!op)
                return -LK_ERR_NOMEM;
        op->grant_done = done;
        if (dup_opt(code, &op->code) < 0 || dup_opt(verifier, &op->verifier) < 0 ||
            dup_opt(nonce, &op->nonce) < 0) {
                op_free(op);
                return -LK_ERR_NOMEM;
        }
        return op_start(p, op);
}

int lk_provider_refresh(struct lk_provider *p, const char *refresh_token,
                        const json_t *previous_claims, lk_provider_grant_fn done, void *userdata)
{
        return lk_provider_refresh_for(p, refresh_token, previous_claims, NULL, NULL, done,
                                       userdata);
}

int lk_provider_refresh_for(struct lk_provider *p, const char *refresh_token,
                            const json_t *previous_claims, const char *scope,
                            const char *audience, lk_provider_grant_fn done, void *userdata)
{
        struct op *op;

        assert(done);
        if (isempty(refresh_token) || !previous_claims)
                return -LK_ERR_INVALID_ARGUMENT;
        op = op_new(OP_REFRESH, userdata);
        if (!op)
                return -LK_ERR_NOMEM;
        op->grant_done = done;
        /* A copy: the caller may drop its claims while the refresh is under way. */
        op->previous_claims = json_deep_copy(previous_claims);
        if (!op->previous_claims || dup_opt(refresh_token, &op->refresh_token) < 0 ||
            dup_opt(scope, &op->scope) < 0 || dup_opt(audience, &op->audience) < 0) {
                op_free(op);
                return -LK_ERR_NOMEM;
        }
        return op_start(p, op);
}

int lk_provider_revoke(struct lk_provider *p, const char *token, const char *hint,
                       lk_provider_done_fn done, void *userdata)
{
        struct op *op;

        assert(done);
        if (isempty(token))
                return -LK_ERR_INVALID_ARGUMENT;
        op = op_new(OP_REVOKE, userdata);
        if (!op)
                return -LK_ERR_NOMEM;
        op->done = done;
        if (dup_opt(token, &op->token) < 0 || dup_opt(hint, &op->hint) < 0) {
                op_free(op);
                return -LK_ERR_NOMEM;
        }
        return op_start(p, op);
}

int lk_provider_device_authorize(struct lk_provider *p, lk_provider_device_fn done,
                                 void *userdata)
{
        struct op *op;

        assert(done);
        op = op_new(OP_DEVICE_AUTH, userdata);
        if (!op)
                return -LK_ERR_NOMEM;
        op->device_done = done;
        return op_start(p, op);
}

int lk_provider_device_poll(struct lk_provider *p, const char *device_code,
                            lk_provider_grant_fn done, void *userdata)
{
        struct op *op;

        assert(done);
        if (isempty(device_code))
                return -LK_ERR_INVALID_ARGUMENT;
        op = op_new(OP_DEVICE_POLL, userdata);
        if (!op)
                return -LK_ERR_NOMEM;
        op->grant_done = done;
        if (dup_opt(device_code, &op->code) < 0) {
                op_free(op);
                return -LK_ERR_NOMEM;
        }
        return op_start(p, op);
}

void lk_provider_stats(const struct lk_provider *p, struct lk_provider_stats *ret)
{
        *ret = p->stats;
}
