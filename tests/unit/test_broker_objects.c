/* SPDX-License-Identifier: MIT */
/*
 * latchkeyd's objects without a broker (issue 18): logins (expiry, accounting) and sessions
 * (single-flight refresh, stale-but-valid answers, the refresh floor, expiry by the provider)
 * on a fake clock, with a fake provider whose answers the test gives by hand.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/budget.h"
#include "broker/login.h"
#include "broker/refresh_ahead.h"
#include "broker/session.h"

/* ---- the fake clock ---- */

static int64_t fake_mono_ms = 1000000;
static int64_t fake_wall_s = 1700000000;

static int64_t mono_ms(void)
{
        return fake_mono_ms;
}

static int64_t wall_s(void)
{
        return fake_wall_s;
}

static const struct lk_clock fake_clock = {.mono_ms = mono_ms, .wall_s = wall_s};

/* ---- the fake provider: records each request, answered by the test ---- */

struct fake_request {
        lk_provider_grant_fn done;
        void *userdata;
};

struct fake_idp {
        unsigned refreshes, revocations;
        lk_provider_grant_fn done; /* the oldest request under way */
        void *userdata;
        struct fake_request queue[32]; /* the others, with many */
        unsigned queued;
        bool many; /* several sessions' requests at once */
        char refresh_token[64]; /* the last one sent */
        char scope[64], audience[64]; /* of the last refresh_for; "" for a plain refresh */
        int fail;               /* < 0: the next request fails to start */
};

static const struct lk_endpoints *fake_endpoints(void *idp)
{
        return NULL;
}

static int fake_exchange(void *idp, const char *code, const char *verifier, const char *nonce,
                         lk_provider_grant_fn done, void *userdata)
{
        return -LK_ERR_PROVIDER_UNAVAILABLE;
}

static int fake_refresh(void *idp, const char *refresh_token, const json_t *claims,
                        lk_provider_grant_fn done, void *userdata)
{
        struct fake_idp *f = idp;

        if (f->fail < 0)
                return f->fail;
        f->refreshes++;
        snprintf(f->refresh_token, sizeof(f->refresh_token), "%s", refresh_token);
        if (f->done) {
                /* One request at a time per session: only tests of several have more. */
                assert_true(f->many);
                assert_true(f->queued < ELEMENTSOF(f->queue));
                f->queue[f->queued++] = (struct fake_request){done, userdata};
                return 0;
        }
        f->done = done;
        f->userdata = userdata;
        f->scope[0] = f->audience[0] = 0;
        return 0;
}

static int fake_refresh_for(void *idp, const char *refresh_token, const json_t *claims,
                            const char *scope, const char *audience, lk_provider_grant_fn done,
                            void *userdata)
{
        struct fake_idp *f = idp;
        int r = fake_refresh(idp, refresh_token, claims, done, userdata);

        snprintf(f->scope, sizeof(f->scope), "%s", scope ? scope : "");
        snprintf(f->audience, sizeof(f->audience), "%s", audience ? audience : "");
        return r;
}

static int fake_revoke(void *idp, const char *token, const char *hint, lk_provider_done_fn done,
                       void *userdata)
{
        struct fake_idp *f = idp;

        f->revocations++;
        done(userdata, NULL);
        return 0;
}

static const struct lk_idp_ops fake_ops = {
        .endpoints = fake_endpoints,
        .exchange_code = fake_exchange,
        .refresh = fake_refresh,
        .refresh_for = fake_refresh_for,
        .revoke = fake_revoke,
};

/* The provider answers the refresh under way: new tokens, or err. */
static void answer_refresh(struct fake_idp *f, const char *access_token, int64_t expires_in,
                           int code, const char *provider_error)
{
        lk_provider_grant_fn done = f->done;
        void *userdata = f->userdata;
        struct lk_grant *g = NULL;
        struct lk_error e = {0};

        assert_non_null(done);
        f->done = NULL;
        if (f->queued > 0) {
                f->done = f->queue[0].done;
                f->userdata = f->queue[0].userdata;
                memmove(f->queue, f->queue + 1, --f->queued * sizeof(f->queue[0]));
        }
        if (code == 0) {
                g = calloc(1, sizeof(*g));
                assert_non_null(g);
                g->tokens.access_token = strdup(access_token);
                g->tokens.token_type = strdup("Bearer");
                g->tokens.expires_at = fake_wall_s + expires_in;
        } else {
                lk_error_set(&e, code, "the provider said no");
                if (provider_error)
                        snprintf(e.provider_error, sizeof(e.provider_error), "%s",
                                 provider_error);
        }
        done(userdata, g, code ? &e : NULL);
}

/* The same with a new refresh token and a scope in the answer (each may be NULL). */
static void answer_refresh_with(struct fake_idp *f, const char *access_token,
                                const char *refresh_token, const char *scope)
{
        lk_provider_grant_fn done = f->done;
        struct lk_grant *g = calloc(1, sizeof(*g));

        assert_non_null(done);
        assert_non_null(g);
        f->done = NULL;
        g->tokens.access_token = strdup(access_token);
        g->tokens.token_type = strdup("Bearer");
        g->tokens.expires_at = fake_wall_s + 3600;
        g->tokens.refresh_token = refresh_token ? strdup(refresh_token) : NULL;
        g->tokens.scope = scope ? strdup(scope) : NULL;
        done(f->userdata, g, NULL);
}

/* ---- sessions ---- */

struct changes {
        char events[256]; /* "opened refreshed ..." */
};

static void on_changed(void *userdata, const struct lk_session *s, const char *event)
{
        struct changes *c = userdata;
        size_t n = strlen(c->events);

        snprintf(c->events + n, sizeof(c->events) - n, "%s%s", n ? " " : "", event);
}

struct fixture {
        struct lk_config config;
        struct fake_idp idp;
        struct changes changes;
        struct lk_budget *budget;
        struct lk_sessions ss;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        if (!f || lk_budget_new(&f->budget) < 0)
                return -1;
        f->config.refresh_margin = 60;
        f->config.login_timeout = 300;
        f->ss = (struct lk_sessions){.clock = &fake_clock, .config = &f->config, .uid_min = 1000,
                                     .idp = {&fake_ops, &f->idp}, .budget = f->budget,
                                     .changed = on_changed, .userdata = &f->changes};
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        lk_sessions_free_all(&f->ss);
        lk_budget_free(f->budget);
        free(f);
        return 0;
}

/* Opens session id of uid 1000 with an access token valid for expires_in seconds. */
static struct lk_session *open_session(struct fixture *f, const char *id, int64_t expires_in)
{
        struct lk_grant *g = calloc(1, sizeof(*g));
        struct lk_error e = {0};

        assert_non_null(g);
        g->tokens.access_token = strdup("at-1");
        g->tokens.refresh_token = strdup("rt-1");
        g->tokens.token_type = strdup("Bearer");
        g->tokens.expires_at = fake_wall_s + expires_in;
        assert_int_equal(lk_session_may_open(&f->ss, id, 1000, &e), 0);
        assert_int_equal(lk_session_open(&f->ss, id, "alice", 1000, g, &e), 0);
        return lk_session_find(&f->ss, id);
}

struct answer {
        unsigned calls;
        int r;
        char token[32];
        char message[LK_ERROR_MESSAGE_MAX];
};

static void on_token(void *userdata, struct lk_session *s, int r, const struct lk_error *e)
{
        struct answer *a = userdata;

        a->calls++;
        a->r = r;
        snprintf(a->token, sizeof(a->token), "%s", r == 0 ? s->tokens.access_token : "");
        snprintf(a->message, sizeof(a->message), "%s", r < 0 && e ? e->message : "");
}

static int get_token(struct fixture *f, struct lk_session *s, struct answer *a)
{
        struct lk_error e = {0};
        int r = lk_session_get_token(&f->ss, s, 0, on_token, a, &e);

        if (r < 0)
                snprintf(a->message, sizeof(a->message), "%s", e.message);
        return r;
}

/* Many callers near expiry: one request to the provider, every caller answered by it. */
static void test_refresh_single_flight(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s = open_session(f, "c1", 30); /* inside the 60 s margin */
        struct answer a[5] = {{0}};

        assert_string_equal(f->changes.events, "opened");
        for (int i = 0; i < 5; i++)
                assert_int_equal(get_token(f, s, &a[i]), LK_SESSION_LATER);
        assert_int_equal(f->idp.refreshes, 1);
        assert_string_equal(f->idp.refresh_token, "rt-1");
        assert_int_equal(f->ss.busy, 1);
        assert_int_equal(a[0].calls, 0);

        answer_refresh(&f->idp, "at-2", 3600, 0, NULL);
        for (int i = 0; i < 5; i++) {
                assert_int_equal(a[i].calls, 1);
                assert_int_equal(a[i].r, 0);
                assert_string_equal(a[i].token, "at-2");
        }
        assert_int_equal(f->ss.busy, 0);
        assert_string_equal(f->changes.events, "opened refreshed");
        assert_string_equal(s->tokens.refresh_token, "rt-1"); /* none came: the old one stays */

        /* Fresh now: answered at once, no request. */
        assert_int_equal(get_token(f, s, &a[0]), 0);
        assert_int_equal(f->idp.refreshes, 1);
}

/* ---- narrower tokens (GetToken's scope and audience) ---- */

struct scoped_answer {
        unsigned calls;
        int r;
        char token[32];
        char message[LK_ERROR_MESSAGE_MAX];
};

static void on_scoped(void *userdata, const struct lk_tokens *t, int r, const struct lk_error *e)
{
        struct scoped_answer *a = userdata;

        a->calls++;
        a->r = r;
        snprintf(a->token, sizeof(a->token), "%s", r == 0 ? t->access_token : "");
        snprintf(a->message, sizeof(a->message), "%s", r < 0 && e ? e->message : "");
}

static int get_scoped(struct fixture *f, struct lk_session *s, const char *scope,
                      const char *audience, struct scoped_answer *a)
{
        const struct lk_tokens *t = NULL;
        struct lk_error e = {0};
        int r = lk_session_get_token_for(&f->ss, s, scope, audience, 0, on_scoped, a, &t, &e);

        if (r == 0)
                snprintf(a->token, sizeof(a->token), "%s", t->access_token);
        if (r < 0)
                snprintf(a->message, sizeof(a->message), "%s", e.message);
        return r;
}

static struct lk_session *open_scoped_session(struct fixture *f, const char *id,
                                              int64_t expires_in)
{
        struct lk_session *s = open_session(f, id, expires_in);

        s->tokens.scope = strdup("openid profile email");
        return s;
}

/*
 * One request with the refresh token at a time: the session's own refresh waits for a
 * narrower one under way, and goes with the refresh token that one brought back.
 */
static void test_narrow_serialized(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s = open_scoped_session(f, "n1", 30); /* its own is due too */
        struct scoped_answer n = {0}, n2 = {0};
        struct answer own = {0};

        assert_int_equal(get_scoped(f, s, "profile  openid", "urn:api", &n), LK_SESSION_LATER);
        assert_int_equal(f->idp.refreshes, 1);
        assert_string_equal(f->idp.scope, "openid profile"); /* canonical */
        assert_string_equal(f->idp.audience, "urn:api");
        /* The session's own caller waits: no second request (the fake would abort). */
        assert_int_equal(get_token(f, s, &own), LK_SESSION_LATER);
        assert_int_equal(f->idp.refreshes, 1);

        answer_refresh_with(&f->idp, "at-narrow", "rt-2", "openid profile");
        assert_int_equal(n.calls, 1);
        assert_int_equal(n.r, 0);
        assert_string_equal(n.token, "at-narrow");
        assert_string_equal(s->tokens.refresh_token, "rt-2");
        /* Then the session's own refresh, with the rotated refresh token. */
        assert_int_equal(f->idp.refreshes, 2);
        assert_string_equal(f->idp.refresh_token, "rt-2");
        assert_string_equal(f->idp.scope, "");
        assert_int_equal(own.calls, 0);
        answer_refresh(&f->idp, "at-2", 3600, 0, NULL);
        assert_int_equal(own.calls, 1);
        assert_string_equal(own.token, "at-2");

        /* Cached: the same pair, written otherwise, answers at once. */
        assert_int_equal(get_scoped(f, s, "openid profile", "urn:api", &n2), 0);
        assert_string_equal(n2.token, "at-narrow");
        assert_int_equal(f->idp.refreshes, 2);
        assert_int_equal(f->ss.busy, 0);
}

static void test_narrow_refusals(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s = open_scoped_session(f, "n2", 3600);
        struct scoped_answer a = {0};

        /* Outside the grant, or unusable: refused before any request, by name. */
        assert_int_equal(get_scoped(f, s, "openid admin", NULL, &a), -LK_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(a.message, "scope 'admin'"));
        assert_int_equal(get_scoped(f, s, "   ", NULL, &a), -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(get_scoped(f, s, NULL, "a b", &a), -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(f->idp.refreshes, 0);

        /* The provider widens it: not handed out, the session goes on. */
        assert_int_equal(get_scoped(f, s, "openid", NULL, &a), LK_SESSION_LATER);
        answer_refresh_with(&f->idp, "at-wide", NULL, "openid profile");
        assert_int_equal(a.r, -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(a.message, "wider than asked"));
        assert_false(s->expired);

        /* invalid_scope: this token only; invalid_grant: the refresh token is dead. */
        memset(&a, 0, sizeof(a));
        assert_int_equal(get_scoped(f, s, "email", NULL, &a), LK_SESSION_LATER);
        answer_refresh(&f->idp, NULL, 0, LK_ERR_INVALID_GRANT, "invalid_scope");
        assert_int_equal(a.r, -LK_ERR_INVALID_GRANT);
        assert_false(s->expired);
        memset(&a, 0, sizeof(a));
        assert_int_equal(get_scoped(f, s, "profile", NULL, &a), LK_SESSION_LATER);
        answer_refresh(&f->idp, NULL, 0, LK_ERR_INVALID_GRANT, "invalid_grant");
        assert_int_equal(a.r, -LK_ERR_TOKEN_EXPIRED);
        assert_true(s->expired);
        assert_int_equal(s->narrowed.n, 0);
        assert_string_equal(f->changes.events, "opened expired");
}

/* Closed while a narrower token is fetched: its caller hears NotFound, nothing leaks. */
static void test_narrow_closed(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s = open_scoped_session(f, "n3", 3600);
        struct scoped_answer a = {0}, b = {0};

        assert_int_equal(get_scoped(f, s, "openid", NULL, &a), LK_SESSION_LATER);
        assert_int_equal(get_scoped(f, s, NULL, "urn:other", &b), LK_SESSION_LATER); /* queued */
        assert_int_equal(f->idp.refreshes, 1);
        lk_session_close(&f->ss, s);
        assert_int_equal(a.r, -LK_ERR_NOT_FOUND);
        assert_int_equal(b.r, -LK_ERR_NOT_FOUND);
        answer_refresh_with(&f->idp, "at-late", NULL, NULL);
        assert_int_equal(a.calls, 1);
        assert_null(f->ss.closed);
        assert_int_equal(f->ss.busy, 0);
        assert_int_equal(f->idp.refreshes, 1);
}

/* At most LK_TOKEN_CACHE_MAX per session: the least recently asked goes. */
static void test_narrow_bounded(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s = open_scoped_session(f, "n4", 3600);
        char aud[16];

        for (int i = 0; i <= LK_TOKEN_CACHE_MAX; i++) {
                struct scoped_answer a = {0};

                snprintf(aud, sizeof(aud), "urn:%d", i);
                fake_wall_s++;
                assert_int_equal(get_scoped(f, s, NULL, aud, &a), LK_SESSION_LATER);
                answer_refresh_with(&f->idp, aud, NULL, NULL);
                assert_int_equal(a.r, 0);
                assert_true(s->narrowed.n <= LK_TOKEN_CACHE_MAX);
        }
        assert_int_equal(s->narrowed.n, LK_TOKEN_CACHE_MAX);
        assert_null(lk_token_cache_find(&s->narrowed, "", "urn:0"));
        assert_non_null(lk_token_cache_find(&s->narrowed, "", "urn:1"));
}

/* A failed refresh while the token is still valid: every caller gets the current token. */
static void test_stale_but_valid(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s = open_session(f, "c2", 30);
        struct answer a = {0}, b = {0};

        assert_int_equal(get_token(f, s, &a), LK_SESSION_LATER);
        assert_int_equal(get_token(f, s, &b), LK_SESSION_LATER);
        answer_refresh(&f->idp, NULL, 0, LK_ERR_PROVIDER_UNAVAILABLE, NULL);
        assert_int_equal(a.r, 0);
        assert_string_equal(a.token, "at-1");
        assert_int_equal(b.r, 0);
        assert_string_equal(b.token, "at-1");
        assert_string_equal(f->changes.events, "opened"); /* nothing changed */

        /* The floor: within LK_REFRESH_INTERVAL_MIN, no new request; the valid token. */
        fake_wall_s += LK_REFRESH_INTERVAL_MIN - 1;
        assert_int_equal(get_token(f, s, &a), 0);
        assert_int_equal(f->idp.refreshes, 1);

        /* Expired inside the floor (its lifetime cut short here): the last refresh's error,
         * still no request. */
        s->tokens.expires_at = fake_wall_s - 1;
        lk_session_tokens_changed(s);
        assert_int_equal(get_token(f, s, &a), -LK_ERR_PROVIDER_UNAVAILABLE);
        assert_non_null(strstr(a.message, "the provider said no"));
        assert_int_equal(f->idp.refreshes, 1);

        /* Past the floor: a new request, and its failure reaches the caller now. */
        fake_wall_s += 1;
        assert_int_equal(get_token(f, s, &a), LK_SESSION_LATER);
        assert_int_equal(f->idp.refreshes, 2);
        answer_refresh(&f->idp, NULL, 0, LK_ERR_PROVIDER_UNAVAILABLE, NULL);
        assert_int_equal(a.r, -LK_ERR_PROVIDER_UNAVAILABLE);
}

/* The provider refuses the refresh token: the session expires once, for every caller. */
static void test_refresh_refused(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s = open_session(f, "c3", 30);
        struct answer a = {0}, b = {0};

        assert_int_equal(get_token(f, s, &a), LK_SESSION_LATER);
        assert_int_equal(get_token(f, s, &b), LK_SESSION_LATER);
        answer_refresh(&f->idp, NULL, 0, LK_ERR_INVALID_GRANT, "invalid_grant");
        assert_int_equal(a.r, -LK_ERR_TOKEN_EXPIRED);
        assert_int_equal(b.r, -LK_ERR_TOKEN_EXPIRED);
        assert_non_null(strstr(a.message, "invalid_grant"));
        assert_true(s->expired);
        assert_null(s->tokens.access_token);
        assert_string_equal(f->changes.events, "opened expired");

        /* Later callers hear it at once; no request is ever sent again. */
        fake_wall_s += 3600;
        assert_int_equal(get_token(f, s, &a), -LK_ERR_TOKEN_EXPIRED);
        assert_int_equal(f->idp.refreshes, 1);
}

/* Closed while its refresh is under way: the callers hear NotFound, nothing is left over. */
static void test_closed_while_refreshing(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s = open_session(f, "c4", 30);
        struct answer a = {0};

        assert_int_equal(get_token(f, s, &a), LK_SESSION_LATER);
        lk_session_close(&f->ss, s);
        assert_null(lk_session_find(&f->ss, "c4"));
        assert_string_equal(f->changes.events, "opened closed");
        assert_int_equal(a.calls, 0);
        answer_refresh(&f->idp, "at-2", 3600, 0, NULL);
        assert_int_equal(a.r, -LK_ERR_NOT_FOUND);
        assert_null(f->ss.closed);
        assert_int_equal(f->ss.busy, 0);
}

/* A provider that cannot be asked: the valid token, else the reason. */
static void test_refresh_cannot_start(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s = open_session(f, "c5", 30);
        struct answer a = {0};

        f->idp.fail = -LK_ERR_NOMEM;
        assert_int_equal(get_token(f, s, &a), 0); /* still valid for 30 s */
        fake_wall_s += 31;
        assert_int_equal(get_token(f, s, &a), -LK_ERR_NOMEM);
        assert_non_null(strstr(a.message, "Cannot start the refresh"));
        assert_int_equal(f->idp.refreshes, 0);
}

/* ---- background refresh (refresh_ahead.c) ---- */

/* Runs the background refresh once; true when it sent a request. */
static bool ahead_run(struct fixture *f)
{
        unsigned before = f->idp.refreshes;

        lk_refresh_ahead_run(&f->ss);
        return f->idp.refreshes != before;
}

/* GetToken from memory, without a request: 0 and the token it would give. */
static void assert_from_memory(struct fixture *f, struct lk_session *s, const char *token)
{
        unsigned before = f->idp.refreshes;
        struct answer a = {0};

        assert_int_equal(get_token(f, s, &a), 0);
        assert_string_equal(s->tokens.access_token, token);
        assert_int_equal(f->idp.refreshes, before);
}

/*
 * Four hours of 10-minute tokens, second by second: every refresh is the background's, each
 * when refresh_margin (60 s) is reached, up to a quarter of it (15 s) earlier, at random; no
 * GetToken ever sends a request or waits.
 */
static void test_ahead_never_waits(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s;
        unsigned background = 0, lefts = 0;
        int64_t end;

        f->config.refresh_ahead = true;
        s = open_session(f, "a1", 600);
        for (end = fake_wall_s + 4 * 3600; fake_wall_s < end; fake_wall_s++) {
                int64_t left = s->tokens.expires_at - fake_wall_s;

                if (ahead_run(f)) {
                        background++;
                        assert_true(left >= 60 && left <= 60 + 15);
                        lefts |= 1u << (left - 60);
                        assert_true(s->refreshing);
                        /* Callers meanwhile: the current token, at once. */
                        assert_from_memory(f, s, background == 1 ? "at-1" : "at-n");
                        answer_refresh(&f->idp, "at-n", 600, 0, NULL);
                }
                assert_from_memory(f, s, background ? "at-n" : "at-1");
        }
        /* One refresh per token: 4 h / (600 s less 60 to 75 s) */
        assert_true(background >= 4 * 3600 / 540 && background <= 4 * 3600 / 525 + 1);
        assert_int_equal(f->idp.refreshes, background);
        assert_int_not_equal(lefts & (lefts - 1), 0); /* the jitter varies */
}

/*
 * The provider is down when the background refresh comes: the cached token is served until it
 * expires (retries after 30 s, then doubling); then ProviderUnavailable; once the provider is
 * back, a fresh token.
 */
static void test_ahead_outage(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s;
        struct answer a = {0};
        int r;

        f->config.refresh_ahead = true;
        s = open_session(f, "a2", 600);
        fake_wall_s += 600 - 60; /* the margin: due, whatever the jitter */
        assert_true(ahead_run(f));
        answer_refresh(&f->idp, NULL, 0, LK_ERR_PROVIDER_UNAVAILABLE, NULL);
        for (; fake_wall_s < s->tokens.expires_at; fake_wall_s++) {
                if (ahead_run(f))
                        answer_refresh(&f->idp, NULL, 0, LK_ERR_PROVIDER_UNAVAILABLE, NULL);
                assert_from_memory(f, s, "at-1");
        }
        assert_int_equal(f->idp.refreshes, 2); /* at 60 s left, and 30 s later */
        assert_string_equal(f->changes.events, "opened");

        /* Expired: the caller now waits for a refresh of its own, and hears the outage. */
        r = get_token(f, s, &a);
        if (r == LK_SESSION_LATER) {
                answer_refresh(&f->idp, NULL, 0, LK_ERR_PROVIDER_UNAVAILABLE, NULL);
                r = a.r;
        }
        assert_int_equal(r, -LK_ERR_PROVIDER_UNAVAILABLE);
        /* Within the floor: the same error at once, no request. */
        fake_wall_s += 1;
        r = f->idp.refreshes;
        assert_int_equal(get_token(f, s, &a), -LK_ERR_PROVIDER_UNAVAILABLE);
        assert_int_equal(f->idp.refreshes, r);
        assert_false(s->expired);

        /* Back: the background's next try brings a fresh token. */
        for (int i = 0; i < LK_REFRESH_AHEAD_BACKOFF_MAX && !ahead_run(f); i++)
                fake_wall_s++;
        answer_refresh(&f->idp, "at-back", 600, 0, NULL);
        assert_from_memory(f, s, "at-back");
        assert_string_equal(f->changes.events, "opened refreshed");
}

/* The background refresh finds the refresh token dead: "expired" once, then TokenExpired. */
static void test_ahead_refused(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s;
        struct answer a = {0};

        f->config.refresh_ahead = true;
        s = open_session(f, "a3", 600);
        fake_wall_s += 600 - 60;
        assert_true(ahead_run(f));
        answer_refresh(&f->idp, NULL, 0, LK_ERR_INVALID_GRANT, "invalid_grant");
        assert_true(s->expired);
        assert_string_equal(f->changes.events, "opened expired");
        for (int i = 0; i < 3600; i += 10) {
                fake_wall_s += 10;
                assert_false(ahead_run(f));
        }
        assert_string_equal(f->changes.events, "opened expired");
        assert_int_equal(get_token(f, s, &a), -LK_ERR_TOKEN_EXPIRED);
        assert_int_equal(f->idp.refreshes, 1);
}

/* 20 sessions due at once: LK_REFRESH_AHEAD_MAX (8) requests at a time, each session once. */
static void test_ahead_bounded(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s[20];

        f->config.refresh_ahead = true;
        f->idp.many = true;
        for (int i = 0; i < 20; i++) {
                char id[16];

                snprintf(id, sizeof(id), "b%02d", i);
                s[i] = open_session(f, id, 30);
        }
        assert_true(ahead_run(f));
        assert_int_equal(f->idp.refreshes, LK_REFRESH_AHEAD_MAX);
        assert_int_equal(f->ss.ahead_busy, LK_REFRESH_AHEAD_MAX);
        assert_false(ahead_run(f));
        answer_refresh(&f->idp, "at-2", 3600, 0, NULL);
        assert_true(ahead_run(f));
        assert_int_equal(f->idp.refreshes, LK_REFRESH_AHEAD_MAX + 1);
        while (f->idp.done) {
                answer_refresh(&f->idp, "at-2", 3600, 0, NULL);
                assert_true(f->ss.ahead_busy < LK_REFRESH_AHEAD_MAX);
                ahead_run(f);
                assert_true(f->ss.ahead_busy <= LK_REFRESH_AHEAD_MAX);
        }
        assert_int_equal(f->idp.refreshes, 20);
        for (int i = 0; i < 20; i++)
                assert_string_equal(s[i]->tokens.access_token, "at-2");
        assert_int_equal(f->ss.ahead_busy, 0);
        assert_int_equal(f->ss.busy, 0);
}

/*
 * The owner's budget: the background leaves LK_BUDGET_AHEAD_RESERVE requests to callers; a
 * refresh that would take one of those waits until the budget refills.
 */
static void test_ahead_budget(void **state)
{
        struct fixture *f = *state;
        struct lk_session *s;
        struct lk_error e = {0};
        struct answer a = {0};

        f->config.refresh_ahead = true;
        s = open_session(f, "a5", 30);
        for (int i = 0; i < LK_BUDGET_BURST - LK_BUDGET_AHEAD_RESERVE; i++)
                assert_int_equal(lk_budget_take(f->budget, 1000, fake_mono_ms, &e), 0);
        assert_false(ahead_run(f));
        assert_true(s->ahead_not_before > fake_wall_s);
        /* A caller who needs more than is left still gets its refresh, from the reserve. */
        assert_int_equal(lk_session_get_token(&f->ss, s, 60, on_token, &a, &e), LK_SESSION_LATER);
        assert_int_equal(f->idp.refreshes, 1);
        answer_refresh(&f->idp, "at-2", 30, 0, NULL);
        assert_int_equal(a.r, 0);

        /* The budget refills: the background goes on (after the refresh floor). */
        fake_mono_ms += 60 * 1000;
        fake_wall_s += LK_REFRESH_INTERVAL_MIN;
        assert_true(ahead_run(f));
        answer_refresh(&f->idp, "at-3", 3600, 0, NULL);
        assert_from_memory(f, s, "at-3");
}

/* ---- logins ---- */

static struct lk_login *fake_login(struct lk_logins *ls, uid_t owner, uid_t user,
                                   enum lk_login_state state)
{
        static unsigned n;
        struct lk_login *l = calloc(1, sizeof(*l));

        assert_non_null(l);
        *l = (struct lk_login){.owner = ls, .owner_uid = owner, .user_uid = user, .state = state,
                               .expires_ms = ls->clock->mono_ms() +
                                             (int64_t)ls->config->login_timeout * 1000};
        assert_true(asprintf(&l->id, "login-%u", n++) > 0);
        l->user = strdup("someone");
        l->next = ls->list;
        ls->list = l;
        ls->n++;
        return l;
}

/* Who a login counts against: the user it is for when root began it, else who began it. */
static void test_login_accounting(void **state)
{
        struct lk_config config = {.login_timeout = 300};
        struct lk_logins ls = {.clock = &fake_clock, .config = &config};
        struct lk_login *by_root = fake_login(&ls, 0, 1000, LK_LOGIN_PENDING);
        struct lk_login *by_self = fake_login(&ls, 1000, 1000, LK_LOGIN_PENDING);
        struct lk_login *by_other = fake_login(&ls, 1001, 1000, LK_LOGIN_PENDING);

        assert_int_equal(lk_login_account(by_root), 1000);
        assert_int_equal(lk_login_account(by_self), 1000);
        assert_int_equal(lk_login_account(by_other), 1001);

        /* uid 1000 holds two pending logins; filled up to the cap, the next is refused. */
        for (int i = 2; i < LK_LOGINS_PER_USER_MAX; i++)
                fake_login(&ls, 0, 1000, LK_LOGIN_PENDING);
        assert_int_equal(lk_login_admit(&ls, 1000, 1000, NULL), -LK_ERR_TOO_MANY_REQUESTS);
        assert_int_equal(lk_login_admit(&ls, 1001, 1000, NULL), 0); /* counts against 1001 */

        /* Pending logins whose time has passed no longer count, even before the sweep. */
        fake_mono_ms += 300 * 1000;
        assert_int_equal(lk_login_admit(&ls, 1000, 1000, NULL), 0);
        lk_logins_free_all(&ls);
}

/* Expiry on the clock: ended at login_timeout, remembered, then forgotten. */
static void test_login_expiry(void **state)
{
        struct lk_config config = {.login_timeout = 300};
        struct lk_logins ls = {.clock = &fake_clock, .config = &config};
        struct lk_login *pending = fake_login(&ls, 0, 1000, LK_LOGIN_PENDING);
        struct lk_login *done = fake_login(&ls, 0, 1000, LK_LOGIN_DONE);
        struct lk_login *exchanging = fake_login(&ls, 0, 1000, LK_LOGIN_EXCHANGING);
        struct lk_error e = {0};

        assert_int_equal(lk_logins_sweep(&ls), 3);
        assert_int_equal(lk_login_check_pending(&ls, pending, NULL), 0);
        assert_int_equal(lk_login_check_done(&ls, done, NULL), 0);
        assert_int_equal(lk_login_check_pending(&ls, exchanging, &e), -LK_ERR_TOO_MANY_REQUESTS);

        /* One millisecond before its time, alive; at its time, ended. */
        fake_mono_ms += 300 * 1000 - 1;
        assert_int_equal(lk_logins_sweep(&ls), 3);
        fake_mono_ms += 1;
        lk_error_clear(&e);
        assert_int_equal(lk_login_check_pending(&ls, pending, &e), -LK_ERR_LOGIN_EXPIRED);
        assert_non_null(strstr(e.message, "after 300 s"));
        lk_error_clear(&e);
        assert_int_equal(lk_login_check_done(&ls, done, &e), -LK_ERR_LOGIN_EXPIRED);
        assert_non_null(strstr(e.message, "expired before its session was opened"));
        assert_null(done->grant);
        /* An exchange under way is never cut short by the clock. */
        assert_int_equal(lk_logins_sweep(&ls), 1);
        assert_int_equal(exchanging->state, LK_LOGIN_EXCHANGING);

        /* Remembered (to say LoginExpired, not NotFound) for two minutes, then forgotten. */
        assert_ptr_equal(lk_login_find(&ls, pending->id), pending);
        fake_mono_ms += 120 * 1000 - 1;
        lk_logins_sweep(&ls);
        assert_int_equal(ls.n, 3);
        fake_mono_ms += 1;
        lk_logins_sweep(&ls);
        assert_int_equal(ls.n, 1);
        assert_ptr_equal(ls.list, exchanging);
        lk_logins_free_all(&ls);
}

/* ---- finishing: finished() once per login, whichever way; the device flow's start ---- */

struct finished {
        unsigned calls;
        int r;
        char message[LK_ERROR_MESSAGE_MAX];
};

static void on_finished(void *userdata, struct lk_login *l, const char *user, int r,
                        const struct lk_error *e)
{
        struct finished *f = userdata;

        f->calls++;
        f->r = r;
        snprintf(f->message, sizeof(f->message), "%s", e ? e->message : "");
}

static void test_login_finished_once(void **state)
{
        struct lk_config config = {.login_timeout = 300};
        struct finished f = {0};
        struct lk_logins ls = {.clock = &fake_clock, .config = &config, .finished = on_finished,
                               .userdata = &f};
        struct lk_login *expiring = fake_login(&ls, 0, 1000, LK_LOGIN_PENDING);
        struct lk_login *cancelled = fake_login(&ls, 0, 1000, LK_LOGIN_PENDING);

        lk_login_cancel(&ls, cancelled);
        assert_int_equal(f.calls, 1);
        assert_int_equal(f.r, -LK_ERR_LOGIN_EXPIRED);
        assert_string_equal(f.message, "The login was cancelled");

        /* Expiry tells once, and the tombstone's later sweeps tell nothing more. */
        fake_mono_ms += 300 * 1000;
        lk_logins_sweep(&ls);
        assert_int_equal(f.calls, 2);
        assert_int_equal(f.r, -LK_ERR_LOGIN_EXPIRED);
        assert_non_null(strstr(f.message, "expired"));
        lk_logins_sweep(&ls);
        assert_int_equal(f.calls, 2);
        assert_int_equal(expiring->state, LK_LOGIN_EXPIRED);

        /* A refusal from the provider ends it with the provider's error, once. */
        {
                struct lk_login *refused = fake_login(&ls, 0, 1000, LK_LOGIN_PENDING);
                struct lk_error err = {0}, out = {0};

                refused->flow = LK_FLOW_DEVICE;
                lk_error_set(&err, LK_ERR_ACCESS_DENIED, "The sign-in was refused at the provider");
                assert_int_equal(lk_login_finish(refused, NULL, &err, &out), -LK_ERR_ACCESS_DENIED);
                assert_int_equal(f.calls, 3);
                assert_int_equal(f.r, -LK_ERR_ACCESS_DENIED);
                assert_int_equal(refused->state, LK_LOGIN_EXPIRED);
        }
        lk_logins_free_all(&ls);
        assert_int_equal(f.calls, 3);
}

static struct lk_endpoints device_endpoints = {
        .device_authorization_endpoint = "https://idp.example/device_authorization",
};
static lk_provider_device_fn device_done;
static void *device_userdata;

static const struct lk_endpoints *device_endpoints_of(void *idp)
{
        return &device_endpoints;
}

static int fake_device_authorize(void *idp, lk_provider_device_fn done, void *userdata)
{
        device_done = done;
        device_userdata = userdata;
        return 0;
}

static const struct lk_idp_ops device_ops = {
        .endpoints = device_endpoints_of,
        .exchange_code = fake_exchange,
        .refresh = fake_refresh,
        .revoke = fake_revoke,
        .device_authorize = fake_device_authorize,
};

struct started {
        struct lk_login *l;
        int r;
        unsigned calls;
};

static void on_started(void *userdata, struct lk_login *l, int r, const struct lk_error *e)
{
        struct started *s = userdata;

        s->calls++;
        s->l = l;
        s->r = r;
}

/* The device flow's start: invisible until the codes come; its lifetime the shorter one. */
static void test_device_login_start(void **state)
{
        struct lk_config config = {.login_timeout = 300};
        struct lk_logins ls = {.clock = &fake_clock, .config = &config,
                               .idp = {&device_ops, NULL}};
        struct started st = {0};
        struct lk_device_auth *auth = calloc(1, sizeof(*auth));
        struct lk_error e = {0};
        struct lk_login *l;

        assert_int_equal(lk_login_begin_device(&ls, 0, "someone", 1000, NULL, on_started, &st,
                                               &e),
                         0);
        assert_int_equal(st.calls, 0);
        l = ls.list;
        assert_int_equal(l->state, LK_LOGIN_STARTING);
        assert_null(lk_login_find(&ls, l->id)); /* nobody knows its id yet */
        /* Counts as pending for the caps while the request is under way. */
        assert_int_equal(lk_logins_sweep(&ls), 1);

        auth->device_code = strdup("dc");
        auth->user_code = strdup("ABCD-EFGH");
        auth->verification_uri = strdup("https://idp.example/device");
        auth->verification_uri_complete = strdup("https://idp.example/device?user_code=ABCD-EFGH");
        auth->expires_in = 120;
        auth->interval = 5;
        device_done(device_userdata, auth, NULL);
        assert_int_equal(st.calls, 1);
        assert_int_equal(st.r, 0);
        assert_ptr_equal(st.l, l);
        assert_int_equal(l->state, LK_LOGIN_PENDING);
        assert_int_equal(l->flow, LK_FLOW_DEVICE);
        assert_string_equal(lk_login_url(l), "https://idp.example/device?user_code=ABCD-EFGH");
        assert_int_equal(lk_login_seconds_left(&ls, l), 120); /* not login_timeout's 300 */
        assert_ptr_equal(lk_login_find(&ls, l->id), l);
        /* Nothing to paste. */
        assert_int_equal(lk_login_complete(&ls, l, "code", NULL, NULL, &e),
                         -LK_ERR_INVALID_ARGUMENT);

        /* A failed device authorization: the caller hears, the login goes without a trace. */
        st = (struct started){0};
        assert_int_equal(lk_login_begin_device(&ls, 0, "someone", 1000, NULL, on_started, &st,
                                               &e),
                         0);
        lk_error_clear(&e);
        lk_error_set(&e, LK_ERR_CLIENT_REFUSED, "invalid_client");
        device_done(device_userdata, NULL, &e);
        assert_int_equal(st.calls, 1);
        assert_int_equal(st.r, -LK_ERR_CLIENT_REFUSED);
        assert_null(st.l);
        assert_int_equal(ls.n, 1);
        lk_logins_free_all(&ls);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_login_finished_once),
            cmocka_unit_test(test_device_login_start),
            cmocka_unit_test_setup_teardown(test_refresh_single_flight, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stale_but_valid, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refresh_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_closed_while_refreshing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refresh_cannot_start, setup, teardown),
            cmocka_unit_test_setup_teardown(test_narrow_serialized, setup, teardown),
            cmocka_unit_test_setup_teardown(test_narrow_refusals, setup, teardown),
            cmocka_unit_test_setup_teardown(test_narrow_closed, setup, teardown),
            cmocka_unit_test_setup_teardown(test_narrow_bounded, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ahead_never_waits, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ahead_outage, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ahead_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ahead_bounded, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ahead_budget, setup, teardown),
            cmocka_unit_test(test_login_accounting),
            cmocka_unit_test(test_login_expiry),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
