/* SPDX-License-Identifier: MIT */
/*
 * The provider client against a fake provider (libmicrohttpd on a random
 * loopback port) serving discovery, keys, a token and a revocation endpoint,
 * with id_tokens signed by keys made at run time (jwt_forge).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "oidc/config.h"
#include "oidc/idtoken.h"
#include "oidc/provider.h"
#include "tests/unit/death.h"
#include "tests/unit/jwt_forge.h"
#include "tests/unit/test_server.h"

#define CLIENT_ID "latchkey-test"
#define NKEYS 3

static struct jwt_forge_key *keys[NKEYS]; /* kids "k0", "k1", "k2"; made once */

struct fake {
        char issuer[64];        /* what discovery and id_tokens say */
        unsigned published;     /* bit i: key i is in the JWKS */
        int signing;            /* which key signs id_tokens */
        char sub[64];
        char nonce[64];         /* echoed in id_tokens from the code grant; "" = none */
        bool no_id_token;
        unsigned token_status;  /* 0: 200 */
        const char *token_body; /* with token_status: instead of an invalid_grant body */
        const char *retry_after; /* a Retry-After header on token answers */
        const char *challenge;  /* a WWW-Authenticate header on token answers */
        unsigned jwks_status;   /* 0: 200 */
        unsigned discovery_status; /* 0: 200 */
        unsigned revoke_status; /* 0: 200 */
        int discovery_hits, jwks_hits, token_hits, revoke_hits;
        char order[64]; /* one letter per request: d(iscovery) j(wks) t(oken) r(evoke) */
        char last_form[2048];
};

static char *sign_id_token(struct fake *fk, bool with_nonce)
{
        _cleanup_free_ char *header = NULL, *payload = NULL;
        int64_t now = (int64_t)time(NULL);
        json_t *claims;

        if (asprintf(&header, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"k%d\"}",
                     fk->signing) < 0)
                return NULL;
        claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "iss", fk->issuer, "sub", fk->sub, "aud",
                           CLIENT_ID, "exp", (json_int_t)(now + 600), "iat", (json_int_t)now,
                           "preferred_username", "alice");
        if (with_nonce && fk->nonce[0])
                json_object_set_new(claims, "nonce", json_string(fk->nonce));
        payload = json_dumps(claims, JSON_COMPACT);
        json_decref(claims);
        return jwt_forge_sign(header, payload, "ES256", keys[fk->signing]);
}

static void note(struct fake *fk, char c)
{
        size_t n = strlen(fk->order);

        if (n + 1 < sizeof(fk->order)) {
                fk->order[n] = c;
                fk->order[n + 1] = 0;
        }
}

static void fake_handler(struct ts_server *s, const struct ts_request *rq, struct ts_reply *rp)
{
        struct fake *fk = s->userdata;

        if (streq(rq->url, "/.well-known/openid-configuration")) {
                _cleanup_free_ char *doc = NULL;

                fk->discovery_hits++;
                note(fk, 'd');
                /* No cmocka asserts here: this runs on the server's thread. */
                if (asprintf(&doc,
                                     "{\"issuer\":\"%s\","
                                     "\"authorization_endpoint\":\"%s/authorize\","
                                     "\"token_endpoint\":\"%s/token\","
                                     "\"jwks_uri\":\"%s/jwks\","
                                     "\"revocation_endpoint\":\"%s/revoke\","
                                     "\"id_token_signing_alg_values_supported\":[\"ES256\"]}",
                                     fk->issuer, s->base, s->base, s->base, s->base) < 0)
                        doc = NULL;
                ts_reply_text(rp, fk->discovery_status ? fk->discovery_status : 200,
                              "application/json", doc ? doc : "");
                rp->cache_control = "max-age=3600";
        } else if (streq(rq->url, "/jwks")) {
                const char *jwk[NKEYS + 1] = {0};
                char *texts[NKEYS] = {0};
                size_t n = 0;

                fk->jwks_hits++;
                note(fk, 'j');
                for (int i = 0; i < NKEYS; i++) {
                        char kid[8];

                        if (!(fk->published & (1u << i)))
                                continue;
                        snprintf(kid, sizeof(kid), "k%d", i);
                        texts[n] = jwt_forge_jwk(keys[i], kid, "ES256");
                        jwk[n] = texts[n];
                        n++;
                }
                rp->status = fk->jwks_status ? fk->jwks_status : 200;
                rp->content_type = "application/jwk-set+json";
                rp->body = jwt_forge_jwks(jwk);
                rp->body_len = strlen(rp->body);
                rp->cache_control = "public, max-age=86400";
                for (size_t i = 0; i < n; i++)
                        free(texts[i]);
        } else if (streq(rq->url, "/token")) {
                bool refresh = strstr(rq->body, "grant_type=refresh_token") != NULL;
                _cleanup_free_ char *idt = NULL, *doc = NULL;
                json_t *j;

                fk->token_hits++;
                note(fk, 't');
                snprintf(fk->last_form, sizeof(fk->last_form), "%s", rq->body);
                if (fk->token_status && fk->token_status != 200) {
                        ts_reply_text(rp, fk->token_status, "application/json",
                                      fk->token_body ? fk->token_body
                                                     : "{\"error\":\"invalid_grant\","
                                                       "\"error_description\":\"code expired\"}");
                        rp->retry_after = fk->retry_after;
                        rp->www_authenticate = fk->challenge;
                        return;
                }
                j = json_pack("{s:s,s:s,s:i,s:s}", "access_token", "at-123", "token_type", "Bearer",
                              "expires_in", 3600, "refresh_token", "rt-456");
                if (!fk->no_id_token) {
                        idt = sign_id_token(fk, !refresh);
                        json_object_set_new(j, "id_token", json_string(idt ? idt : "broken"));
                }
                doc = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                ts_reply_text(rp, 200, "application/json", doc);
                rp->cache_control = "no-store";
        } else if (streq(rq->url, "/revoke")) {
                fk->revoke_hits++;
                note(fk, 'r');
                snprintf(fk->last_form, sizeof(fk->last_form), "%s", rq->body);
                if (fk->revoke_status)
                        ts_reply_text(rp, fk->revoke_status, "application/json",
                                      "{\"error\":\"invalid_client\"}");
                else
                        ts_reply_text(rp, 200, "application/json", "");
        } else {
                ts_reply_text(rp, 404, "text/plain", "not found");
        }
}

struct fixture {
        struct ts_server server;
        struct fake fake;
        struct lk_config *config;
        struct lk_http *h;
        struct lk_provider *p;
        char cache_dir[64];
};

static struct lk_config *load_config(const char *base, const char *extra)
{
        _cleanup_free_ char *text = NULL;
        struct lk_config *c = NULL;
        struct lk_error e = {0};

        assert_true(asprintf(&text,
                             "[provider]\n"
                             "issuer = %s\n"
                             "client_id = " CLIENT_ID "\n"
                             "client_secret = s3cret\n"
                             "redirect_uri = https://login.example.com/callback\n"
                             "id_token_algorithms = ES256\n"
                             "timeout = 5\n"
                             "%s",
                             base, extra ? extra : "") > 0);
        if (lk_config_load_string(text, "test.conf", &c, NULL, &e) < 0)
                fail_msg("config: %s", e.message);
        return c;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_int_equal(ts_start(&f->server, fake_handler, &f->fake, NULL, NULL), 0);
        snprintf(f->fake.issuer, sizeof(f->fake.issuer), "%s", f->server.base);
        snprintf(f->fake.sub, sizeof(f->fake.sub), "user-1");
        snprintf(f->fake.nonce, sizeof(f->fake.nonce), "nonce-1");
        f->fake.published = 1u << 0;
        f->fake.signing = 0;
        f->config = load_config(f->server.base, NULL);
        assert_int_equal(lk_http_new(&f->h), 0);
        snprintf(f->cache_dir, sizeof(f->cache_dir), "/tmp/lk-provider-XXXXXX");
        assert_non_null(mkdtemp(f->cache_dir));
        *state = f;
        return 0;
}

static void remove_cache_dir(struct fixture *f)
{
        static const char *names[] = { "discovery.json", "jwks.json" };
        char path[128];

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                snprintf(path, sizeof(path), "%s/%s", f->cache_dir, names[i]);
                unlink(path);
        }
        rmdir(f->cache_dir);
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        lk_provider_free(f->p);
        lk_http_free(f->h);
        lk_config_free(f->config);
        ts_stop(&f->server);
        remove_cache_dir(f);
        free(f);
        return 0;
}

static void new_provider(struct fixture *f, const char *cache_dir)
{
        struct lk_error e = {0};

        lk_provider_free(f->p);
        f->p = NULL;
        if (lk_provider_new(f->config, f->h, cache_dir, &f->p, &e) < 0)
                fail_msg("lk_provider_new: %s", e.message);
}

struct outcome {
        int calls;
        struct lk_error err;
        bool failed;
        struct lk_grant *grant;
};

static void done_cb(void *userdata, const struct lk_error *err)
{
        struct outcome *o = userdata;

        o->calls++;
        if (err) {
                o->failed = true;
                o->err = *err;
        }
}

static void grant_cb(void *userdata, struct lk_grant *grant, const struct lk_error *err)
{
        struct outcome *o = userdata;

        o->calls++;
        if (err) {
                assert_null(grant);
                o->failed = true;
                o->err = *err;
                return;
        }
        assert_non_null(grant);
        o->grant = grant;
}

static void outcome_clear(struct outcome *o)
{
        lk_grant_free(o->grant);
        *o = (struct outcome){0};
}

static void prepare(struct fixture *f, struct outcome *o)
{
        assert_int_equal(lk_provider_prepare(f->p, done_cb, o), 0);
        assert_int_equal(o->calls, 0); /* never from inside the call */
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(o->calls, 1);
}

static void exchange(struct fixture *f, const char *nonce, struct outcome *o)
{
        assert_int_equal(lk_provider_exchange_code(f->p, "code-1", "verifier-1", nonce, grant_cb, o),
                         0);
        assert_int_equal(o->calls, 0);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(o->calls, 1);
}

static void assert_ok(const struct outcome *o)
{
        if (o->failed)
                fail_msg("failed: %s: %s", lk_err_name(o->err.code), o->err.message);
}

static void test_prepare_then_exchange(void **state)
{
        struct fixture *f = *state;
        struct lk_provider_stats st;
        struct outcome o = {0};
        const struct lk_endpoints *ep;
        char expected[128];

        new_provider(f, NULL);
        assert_null(lk_provider_endpoints(f->p));
        prepare(f, &o);
        assert_ok(&o);
        ep = lk_provider_endpoints(f->p);
        assert_non_null(ep);
        snprintf(expected, sizeof(expected), "%s/token", f->server.base);
        assert_string_equal(ep->token_endpoint, expected);
        lk_provider_stats(f->p, &st);
        assert_int_equal(st.discovery, 1);
        assert_int_equal(st.jwks, 1);
        assert_int_equal(st.token, 0);
        outcome_clear(&o);

        exchange(f, "nonce-1", &o);
        assert_ok(&o);
        assert_string_equal(o.grant->tokens.access_token, "at-123");
        assert_string_equal(o.grant->tokens.refresh_token, "rt-456");
        assert_non_null(o.grant->tokens.id_token);
        assert_non_null(o.grant->claims);
        assert_string_equal(json_string_value(json_object_get(o.grant->claims, "sub")), "user-1");
        assert_string_equal(json_string_value(json_object_get(o.grant->claims, "iss")),
                            f->server.base);
        assert_non_null(strstr(f->fake.last_form, "grant_type=authorization_code"));
        assert_non_null(strstr(f->fake.last_form, "code=code-1"));
        assert_non_null(strstr(f->fake.last_form, "code_verifier=verifier-1"));
        lk_provider_stats(f->p, &st);
        assert_int_equal(st.discovery, 1);
        assert_int_equal(st.jwks, 1);
        assert_int_equal(st.token, 1);
        assert_int_equal(f->fake.token_hits, 1);
        outcome_clear(&o);
}

static void test_cached_provider_one_request_per_exchange(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};

        new_provider(f, NULL);
        /* Without prepare: the first exchange fetches discovery and keys itself. */
        exchange(f, "nonce-1", &o);
        assert_ok(&o);
        assert_int_equal(lk_http_requests_started(f->h), 3);
        outcome_clear(&o);
        for (int i = 0; i < 3; i++) {
                uint64_t before = lk_http_requests_started(f->h);

                exchange(f, "nonce-1", &o);
                assert_ok(&o);
                assert_int_equal(lk_http_requests_started(f->h) - before, 1);
                outcome_clear(&o);
        }
        assert_int_equal(f->fake.discovery_hits, 1);
        assert_int_equal(f->fake.jwks_hits, 1);
        assert_int_equal(f->fake.token_hits, 4);
}

static void test_disk_cache_survives_restart(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};
        struct stat st;
        char path[128];

        new_provider(f, f->cache_dir);
        prepare(f, &o);
        assert_ok(&o);
        outcome_clear(&o);
        snprintf(path, sizeof(path), "%s/discovery.json", f->cache_dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        snprintf(path, sizeof(path), "%s/jwks.json", f->cache_dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* A restarted broker: no discovery, no keys fetched, just the token request. */
        new_provider(f, f->cache_dir);
        assert_non_null(lk_provider_endpoints(f->p));
        exchange(f, "nonce-1", &o);
        assert_ok(&o);
        assert_int_equal(f->fake.discovery_hits, 1);
        assert_int_equal(f->fake.jwks_hits, 1);
        assert_int_equal(f->fake.token_hits, 1);
        outcome_clear(&o);

        /* Without the keys' copy, the keys are fetched first, then the code exchanged. */
        assert_int_equal(unlink(path), 0);
        new_provider(f, f->cache_dir);
        exchange(f, "nonce-1", &o);
        assert_ok(&o);
        assert_int_equal(f->fake.discovery_hits, 1);
        assert_int_equal(f->fake.jwks_hits, 2);
        assert_int_equal(f->fake.token_hits, 2);
        outcome_clear(&o);

        /* A cache from another issuer is not used. */
        lk_provider_free(f->p);
        f->p = NULL;
        lk_config_free(f->config);
        f->config = load_config("http://127.0.0.1:1/other", NULL);
        new_provider(f, f->cache_dir);
        assert_null(lk_provider_endpoints(f->p));
}

/* Rewrites a disk copy so that it ends in one second. */
/*
 * Makes the disk copy at path expire a few seconds from now (long enough that
 * a busy machine still loads it as fresh) and returns when that is.
 */
static int64_t expire_soon(const char *path)
{
        struct lk_cache_file file = {0};
        struct lk_error e = {0};
        int64_t now = (int64_t)time(NULL), expires_at = now + 3;

        assert_int_equal(lk_cache_file_load(path, now, &file, &e), 0);
        file.fetched_at = now - 100;
        file.expires_at = expires_at;
        assert_int_equal(lk_cache_file_save(path, &file, &e), 0);
        lk_cache_file_clear(&file);
        return expires_at;
}

static void test_stale_cache_refreshed(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};
        int64_t expires_at;
        char path[128];

        new_provider(f, f->cache_dir);
        prepare(f, &o);
        assert_ok(&o);
        outcome_clear(&o);
        assert_string_equal(f->fake.order, "dj");

        snprintf(path, sizeof(path), "%s/discovery.json", f->cache_dir);
        expires_at = expire_soon(path);
        snprintf(path, sizeof(path), "%s/jwks.json", f->cache_dir);
        expires_at = expire_soon(path);
        new_provider(f, f->cache_dir);
        assert_non_null(lk_provider_endpoints(f->p));
        while ((int64_t)time(NULL) <= expires_at)
                usleep(100 * 1000);

        /*
         * Stale keys are fetched before the code is exchanged; the stale discovery
         * document is refreshed alongside, the old endpoints serving meanwhile.
         */
        exchange(f, "nonce-1", &o);
        assert_ok(&o);
        assert_int_equal(f->fake.discovery_hits, 2);
        assert_int_equal(f->fake.jwks_hits, 2);
        assert_int_equal(f->fake.token_hits, 1);
        assert_int_equal(f->fake.order[strlen(f->fake.order) - 1], 't');
        outcome_clear(&o);

        /* Fresh again: one request per exchange. */
        exchange(f, "nonce-1", &o);
        assert_ok(&o);
        assert_int_equal(f->fake.discovery_hits, 2);
        assert_int_equal(f->fake.jwks_hits, 2);
        assert_int_equal(f->fake.token_hits, 2);
        outcome_clear(&o);
}

static void test_key_rotation_refetch_once(void **state)
{
        struct fixture *f = *state;
        struct lk_provider_stats st;
        struct outcome o = {0};

        new_provider(f, NULL);
        prepare(f, &o);
        assert_ok(&o);
        outcome_clear(&o);

        /* The provider rotates to k1: the unknown kid costs one key fetch, then all is well. */
        f->fake.published = (1u << 0) | (1u << 1);
        f->fake.signing = 1;
        exchange(f, "nonce-1", &o);
        assert_ok(&o);
        lk_provider_stats(f->p, &st);
        assert_int_equal(st.jwks, 2);
        assert_int_equal(f->fake.jwks_hits, 2);
        outcome_clear(&o);

        /* With k1 known now, no further fetch. */
        exchange(f, "nonce-1", &o);
        assert_ok(&o);
        assert_int_equal(f->fake.jwks_hits, 2);
        outcome_clear(&o);

        /* A second rotation within the minute is refused, without a fetch. */
        f->fake.published = (1u << 1) | (1u << 2);
        f->fake.signing = 2;
        exchange(f, "nonce-1", &o);
        assert_true(o.failed);
        assert_int_equal(o.err.code, LK_ERR_INVALID_ID_TOKEN);
        assert_int_equal(o.err.detail, LK_IDT_UNKNOWN_KID);
        lk_provider_stats(f->p, &st);
        assert_int_equal(st.jwks, 2);
        assert_int_equal(f->fake.jwks_hits, 2);
        outcome_clear(&o);
}

static void test_unknown_kid_after_refetch(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};

        new_provider(f, NULL);
        prepare(f, &o);
        outcome_clear(&o);
        /* The token names k2, which the provider does not publish: one fetch, then refused. */
        f->fake.signing = 2;
        exchange(f, "nonce-1", &o);
        assert_true(o.failed);
        assert_int_equal(o.err.code, LK_ERR_INVALID_ID_TOKEN);
        assert_int_equal(o.err.detail, LK_IDT_UNKNOWN_KID);
        assert_int_equal(f->fake.jwks_hits, 2);
        outcome_clear(&o);
}

static void test_issuer_mismatch(void **state)
{
        struct fixture *f = *state;
        struct lk_provider_stats st;
        struct outcome o = {0};

        snprintf(f->fake.issuer, sizeof(f->fake.issuer), "https://evil.example");
        new_provider(f, f->cache_dir);
        prepare(f, &o);
        assert_true(o.failed);
        assert_non_null(strstr(o.err.message, "issuer"));
        assert_null(lk_provider_endpoints(f->p));
        lk_provider_stats(f->p, &st);
        assert_int_equal(st.discovery, 1);
        assert_int_equal(st.jwks, 0);
        outcome_clear(&o);

        /* Nothing was cached: the next attempt asks again. */
        prepare(f, &o);
        assert_true(o.failed);
        assert_int_equal(f->fake.discovery_hits, 2);
        outcome_clear(&o);
}

static void refresh(struct fixture *f, const json_t *claims, struct outcome *o)
{
        assert_int_equal(lk_provider_refresh(f->p, "rt-456", claims, grant_cb, o), 0);
        assert_int_equal(o->calls, 0);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(o->calls, 1);
}

static void test_refresh(void **state)
{
        struct fixture *f = *state;
        struct outcome login = {0}, o = {0};

        new_provider(f, NULL);
        exchange(f, "nonce-1", &login);
        assert_ok(&login);

        refresh(f, login.grant->claims, &o);
        assert_ok(&o);
        assert_non_null(strstr(f->fake.last_form, "grant_type=refresh_token"));
        assert_non_null(strstr(f->fake.last_form, "refresh_token=rt-456"));
        assert_string_equal(o.grant->tokens.access_token, "at-123");
        assert_non_null(o.grant->claims);
        assert_string_equal(json_string_value(json_object_get(o.grant->claims, "sub")), "user-1");
        assert_string_equal(json_string_value(json_object_get(o.grant->claims, "iss")),
                            f->server.base);
        outcome_clear(&o);

        /* Another sub in the new id_token is refused. */
        snprintf(f->fake.sub, sizeof(f->fake.sub), "user-2");
        refresh(f, login.grant->claims, &o);
        assert_true(o.failed);
        assert_int_equal(o.err.code, LK_ERR_INVALID_ID_TOKEN);
        assert_int_equal(o.err.detail, LK_IDT_CHANGED_ISS_SUB);
        outcome_clear(&o);

        /* A refresh answer without id_token keeps no claims, and is fine. */
        f->fake.no_id_token = true;
        refresh(f, login.grant->claims, &o);
        assert_ok(&o);
        assert_null(o.grant->claims);
        assert_string_equal(o.grant->tokens.access_token, "at-123");
        outcome_clear(&o);
        outcome_clear(&login);
}

static void test_refresh_claims_copied(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};
        json_t *claims;

        new_provider(f, NULL);
        claims = json_pack("{s:s,s:s}", "iss", f->server.base, "sub", "user-1");
        assert_int_equal(lk_provider_refresh(f->p, "rt-456", claims, grant_cb, &o), 0);
        json_decref(claims); /* the caller may drop them while the refresh is under way */
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(o.calls, 1);
        assert_ok(&o);
        outcome_clear(&o);
}

static void test_exchange_without_id_token(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};

        new_provider(f, NULL);
        f->fake.no_id_token = true;
        exchange(f, "nonce-1", &o);
        assert_true(o.failed);
        assert_int_equal(o.err.code, LK_ERR_INVALID_ID_TOKEN);
        outcome_clear(&o);
}

static void test_wrong_nonce(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};

        new_provider(f, NULL);
        exchange(f, "another-nonce", &o);
        assert_true(o.failed);
        assert_int_equal(o.err.code, LK_ERR_INVALID_ID_TOKEN);
        assert_int_equal(o.err.detail, LK_IDT_NONCE);
        assert_null(strstr(o.err.message, "nonce-1"));
        assert_null(strstr(o.err.message, "another-nonce"));
        outcome_clear(&o);
}

static void test_invalid_grant(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};

        new_provider(f, NULL);
        f->fake.token_status = 400;
        exchange(f, "nonce-1", &o);
        assert_true(o.failed);
        assert_int_equal(o.err.code, LK_ERR_INVALID_GRANT);
        assert_string_equal(o.err.provider_error, "invalid_grant");
        assert_string_equal(o.err.provider_description, "code expired");
        outcome_clear(&o);
}

/* Refusals keep their meaning through the provider (issue 15): words, and whose problem. */
static void test_refusal_shapes(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};

        new_provider(f, NULL);
        f->fake.token_status = 403;
        f->fake.token_body = "{\"error\":\"invalid_grant\",\"error_description\":\"reused\"}";
        exchange(f, "nonce-1", &o);
        assert_int_equal(o.err.code, LK_ERR_INVALID_GRANT);
        assert_string_equal(o.err.provider_description, "reused");
        outcome_clear(&o);

        f->fake.token_status = 400;
        f->fake.token_body = "";
        exchange(f, "nonce-1", &o);
        assert_int_equal(o.err.code, LK_ERR_INVALID_GRANT);
        outcome_clear(&o);

        f->fake.token_status = 401;
        f->fake.token_body = "{\"error\":\"invalid_client\"}";
        exchange(f, "nonce-1", &o);
        assert_int_equal(o.err.code, LK_ERR_CLIENT_REFUSED);
        assert_non_null(strstr(o.err.message, "client credentials (invalid_client)"));
        outcome_clear(&o);

        /* An empty 401: the grant refused; with a Basic challenge, the client's secret. */
        f->fake.token_body = "";
        exchange(f, "nonce-1", &o);
        assert_int_equal(o.err.code, LK_ERR_INVALID_GRANT);
        outcome_clear(&o);
        f->fake.challenge = "Basic realm=\"oauth\"";
        exchange(f, "nonce-1", &o);
        assert_int_equal(o.err.code, LK_ERR_CLIENT_REFUSED);
        assert_non_null(strstr(o.err.message, "authentication challenge"));
        outcome_clear(&o);
        /* A challenge does not turn an OAuth error into something else. */
        f->fake.token_body = "{\"error\":\"invalid_grant\"}";
        exchange(f, "nonce-1", &o);
        assert_int_equal(o.err.code, LK_ERR_INVALID_GRANT);
        outcome_clear(&o);
}

/* A 429 stops every token request for Retry-After: the provider is never hammered. */
static void test_too_many_requests_waits(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0}, r = {0};
        json_t *claims = json_pack("{s:s,s:s}", "iss", f->server.base, "sub", "user-1");

        new_provider(f, NULL);
        f->fake.token_status = 429;
        f->fake.token_body = "";
        f->fake.retry_after = "120";
        exchange(f, "nonce-1", &o);
        assert_int_equal(o.err.code, LK_ERR_TOO_MANY_REQUESTS);
        assert_non_null(strstr(o.err.message, "120 s"));
        assert_int_equal(f->fake.token_hits, 1);
        outcome_clear(&o);

        /* The provider is back, but asked us to wait: nothing is sent. */
        f->fake.token_status = 0;
        exchange(f, "nonce-1", &o);
        assert_int_equal(o.err.code, LK_ERR_TOO_MANY_REQUESTS);
        assert_non_null(strstr(o.err.message, "try again later"));
        refresh(f, claims, &r);
        assert_int_equal(r.err.code, LK_ERR_TOO_MANY_REQUESTS);
        assert_int_equal(f->fake.token_hits, 1);
        outcome_clear(&o);
        outcome_clear(&r);
        json_decref(claims);
}

/* Without Retry-After (or with a huge one), the wait has bounds. */
static void test_too_many_requests_bounds(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};
        char want[32];

        new_provider(f, NULL);
        f->fake.token_status = 429;
        f->fake.token_body = "{\"error\":\"slow_down\"}";
        exchange(f, "nonce-1", &o);
        snprintf(want, sizeof(want), "for %d s", LK_PROVIDER_THROTTLE_DEFAULT);
        assert_non_null(strstr(o.err.message, want));
        outcome_clear(&o);

        new_provider(f, NULL);
        f->fake.retry_after = "86400";
        exchange(f, "nonce-1", &o);
        snprintf(want, sizeof(want), "for %d s", LK_PROVIDER_THROTTLE_MAX);
        assert_non_null(strstr(o.err.message, want));
        outcome_clear(&o);
}

/* A 4xx on discovery is a configuration problem, and the message says where to look. */
static void test_discovery_refused(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};

        new_provider(f, NULL);
        f->fake.discovery_status = 404;
        prepare(f, &o);
        assert_int_equal(o.err.code, LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(o.err.message, "HTTP 404: a configuration problem, check "
                                              "[provider] issuer"));
        outcome_clear(&o);

        f->fake.discovery_status = 0;
        f->fake.jwks_status = 403;
        prepare(f, &o);
        assert_int_equal(o.err.code, LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(o.err.message, "/jwks answered HTTP 403: a configuration"));
        outcome_clear(&o);
}

/* The revocation endpoint's refusals are classified as the token endpoint's. */
static void test_revoke_client_refused(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};

        new_provider(f, NULL);
        f->fake.revoke_status = 401;
        assert_int_equal(lk_provider_revoke(f->p, "rt-456", "refresh_token", done_cb, &o), 0);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(o.calls, 1);
        assert_int_equal(o.err.code, LK_ERR_CLIENT_REFUSED);
        assert_non_null(strstr(o.err.message, "check [provider] client_id"));
}

static void test_revoke(void **state)
{
        struct fixture *f = *state;
        struct lk_provider_stats st;
        struct outcome o = {0};

        new_provider(f, NULL);
        assert_int_equal(lk_provider_revoke(f->p, "rt-456", "refresh_token", done_cb, &o), 0);
        assert_int_equal(o.calls, 0);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(o.calls, 1);
        assert_ok(&o);
        assert_int_equal(f->fake.revoke_hits, 1);
        assert_non_null(strstr(f->fake.last_form, "token=rt-456"));
        assert_non_null(strstr(f->fake.last_form, "token_type_hint=refresh_token"));
        lk_provider_stats(f->p, &st);
        assert_int_equal(st.revoke, 1);
        assert_int_equal(st.jwks, 0); /* revoking needs no keys */
        outcome_clear(&o);
}

static void test_revoke_without_endpoint(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};
        _cleanup_free_ char *extra = NULL;

        lk_config_free(f->config);
        assert_true(asprintf(&extra,
                             "discovery = no\n"
                             "authorization_endpoint = %s/authorize\n"
                             "token_endpoint = %s/token\n"
                             "jwks_uri = %s/jwks\n",
                             f->server.base, f->server.base, f->server.base) > 0);
        f->config = load_config(f->server.base, extra);
        new_provider(f, NULL);
        assert_non_null(lk_provider_endpoints(f->p));
        assert_int_equal(lk_provider_revoke(f->p, "rt-456", NULL, done_cb, &o), 0);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(o.calls, 1);
        assert_true(o.failed);
        assert_int_equal(f->fake.revoke_hits, 0);
        outcome_clear(&o);

        /* discovery = no: the exchange needs the keys and the token, never discovery. */
        exchange(f, "nonce-1", &o);
        assert_ok(&o);
        assert_int_equal(f->fake.discovery_hits, 0);
        assert_int_equal(f->fake.jwks_hits, 1);
        outcome_clear(&o);
}

static void test_provider_unreachable(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};

        lk_config_free(f->config);
        f->config = load_config("http://127.0.0.1:1", NULL);
        new_provider(f, NULL);
        prepare(f, &o);
        assert_true(o.failed);
        assert_int_equal(o.err.code, LK_ERR_PROVIDER_UNAVAILABLE);
        outcome_clear(&o);
}

static void test_jwks_server_error(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};

        new_provider(f, NULL);
        f->fake.jwks_status = 503;
        prepare(f, &o);
        assert_true(o.failed);
        assert_int_equal(o.err.code, LK_ERR_PROVIDER_UNAVAILABLE);
        assert_non_null(strstr(o.err.message, "/jwks"));
        outcome_clear(&o);

        /* Once the provider is back, the keys come. */
        f->fake.jwks_status = 0;
        prepare(f, &o);
        assert_ok(&o);
        outcome_clear(&o);
}

static void test_parallel_cold_exchanges_share_fetches(void **state)
{
        enum { N = 6 };
        struct fixture *f = *state;
        struct outcome o[N] = {0};
        struct lk_provider_stats st;

        new_provider(f, NULL);
        for (int i = 0; i < N; i++)
                assert_int_equal(lk_provider_exchange_code(f->p, "code-1", "verifier-1", "nonce-1",
                                                           grant_cb, &o[i]),
                                 0);
        assert_int_equal(lk_http_run(f->h), 0);
        for (int i = 0; i < N; i++) {
                assert_int_equal(o[i].calls, 1);
                assert_ok(&o[i]);
                outcome_clear(&o[i]);
        }
        lk_provider_stats(f->p, &st);
        assert_int_equal(st.discovery, 1);
        assert_int_equal(st.jwks, 1);
        assert_int_equal(st.token, N);
}

static void free_provider_deferred(void *userdata)
{
        struct fixture *f = userdata;

        /* The discovery request is under way now. */
        assert_int_equal(lk_http_pending(f->h), 1);
        lk_provider_free(f->p);
        f->p = NULL;
        assert_int_equal(lk_http_pending(f->h), 0);
}

static void test_free_with_operations_pending(void **state)
{
        struct fixture *f = *state;
        struct outcome a = {0}, b = {0}, c = {0};

        new_provider(f, NULL);
        assert_int_equal(lk_provider_prepare(f->p, done_cb, &a), 0);
        assert_int_equal(lk_provider_exchange_code(f->p, "c", "v", "n", grant_cb, &b), 0);
        assert_int_equal(lk_http_defer(f->h, free_provider_deferred, f), 0);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(a.calls, 0);
        assert_int_equal(b.calls, 0);
        assert_null(f->p);

        /* And a provider freed before anything ran. */
        new_provider(f, NULL);
        assert_int_equal(lk_provider_revoke(f->p, "t", NULL, done_cb, &c), 0);
        lk_provider_free(f->p);
        f->p = NULL;
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(c.calls, 0);
}

struct freer {
        struct fixture *f;
        int calls;
};

static void free_provider_cb(void *userdata, const struct lk_error *err)
{
        struct freer *fr = userdata;

        fr->calls++;
        lk_provider_free(fr->f->p);
        fr->f->p = NULL;
}

static void test_free_from_callback(void **state)
{
        struct fixture *f = *state;
        struct freer a = {.f = f}, b = {.f = f};

        new_provider(f, NULL);
        /* Both wait for the same fetches; whichever finishes first frees the provider. */
        assert_int_equal(lk_provider_prepare(f->p, free_provider_cb, &a), 0);
        assert_int_equal(lk_provider_prepare(f->p, free_provider_cb, &b), 0);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(a.calls + b.calls, 1);
        assert_null(f->p);
        assert_int_equal(lk_http_pending(f->h), 0);
}

/*
 * Allocation failure in lk_http_defer(), the one allocation between a shared fetch's end and
 * the operations waiting on it (meson links this test with -Wl,--wrap=lk_http_defer): the
 * calls numbered [defer_fail_from, defer_fail_to) since the count was reset fail as calloc's
 * failure does.
 */
int __real_lk_http_defer(struct lk_http *h, lk_http_defer_fn fn, void *userdata);
int __wrap_lk_http_defer(struct lk_http *h, lk_http_defer_fn fn, void *userdata);
static int defer_calls, defer_fail_from = -1, defer_fail_to = -1;

int __wrap_lk_http_defer(struct lk_http *h, lk_http_defer_fn fn, void *userdata)
{
        int n = defer_calls++;

        if (n >= defer_fail_from && n < defer_fail_to)
                return -LK_ERR_NOMEM;
        return __real_lk_http_defer(h, fn, userdata);
}

static void fail_defers(int from, int to)
{
        defer_calls = 0;
        defer_fail_from = from;
        defer_fail_to = to;
}

/* An operation that cannot be woken after the discovery it waited for still ends, with NOMEM. */
static void test_wake_out_of_memory(void **state)
{
        enum { N = 3 };
        struct fixture *f = *state;
        struct outcome o[N] = {0};
        int failed = 0;

        new_provider(f, NULL);
        /* Calls 0-2: the starts; 3: the first waiter woken after the discovery. */
        fail_defers(3, 4);
        for (int i = 0; i < N; i++)
                assert_int_equal(lk_provider_exchange_code(f->p, "code-1", "verifier-1", "nonce-1",
                                                           grant_cb, &o[i]),
                                 0);
        assert_int_equal(lk_http_run(f->h), 0);
        fail_defers(-1, -1);
        for (int i = 0; i < N; i++) {
                assert_int_equal(o[i].calls, 1);
                if (o[i].failed) {
                        assert_int_equal(o[i].err.code, LK_ERR_NOMEM);
                        failed++;
                }
                outcome_clear(&o[i]);
        }
        assert_int_equal(failed, 1);
        assert_int_equal(f->fake.token_hits, N - 1);
}

/* The same with every waiter stuck, and the first callback freeing the provider. */
static void test_wake_out_of_memory_free_from_callback(void **state)
{
        struct fixture *f = *state;
        struct freer a = {.f = f}, b = {.f = f};

        new_provider(f, NULL);
        fail_defers(2, 1000);
        assert_int_equal(lk_provider_prepare(f->p, free_provider_cb, &a), 0);
        assert_int_equal(lk_provider_prepare(f->p, free_provider_cb, &b), 0);
        assert_int_equal(lk_http_run(f->h), 0);
        fail_defers(-1, -1);
        assert_int_equal(a.calls + b.calls, 1);
        assert_null(f->p);
}

static void test_invalid_arguments(void **state)
{
        struct fixture *f = *state;
        struct outcome o = {0};

        new_provider(f, NULL);
        assert_int_equal(lk_provider_exchange_code(f->p, "", "v", "n", grant_cb, &o),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_provider_exchange_code(f->p, NULL, "v", "n", grant_cb, &o),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_provider_refresh(f->p, "rt", NULL, grant_cb, &o),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_provider_revoke(f->p, NULL, NULL, done_cb, &o),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_http_run(f->h), 0);
        assert_int_equal(o.calls, 0);
        assert_int_equal(lk_http_requests_started(f->h), 0);
}

/* A NULL callback is never valid from a caller: a bug, caught where it is made. */
static void test_callback_required(void **state)
{
        struct fixture *f = *state;
        json_t *claims = json_object();

        new_provider(f, NULL);
        assert_aborts(lk_provider_prepare(f->p, NULL, NULL));
        assert_aborts(lk_provider_exchange_code(f->p, "c", "v", "n", NULL, NULL));
        assert_aborts(lk_provider_refresh(f->p, "rt", claims, NULL, NULL));
        assert_aborts(lk_provider_revoke(f->p, "t", NULL, NULL, NULL));
        json_decref(claims);
        assert_int_equal(lk_http_requests_started(f->h), 0);
}

static int group_setup(void **state)
{
        (void)state;
        for (int i = 0; i < NKEYS; i++)
                assert_non_null(keys[i] = jwt_forge_key_new(JWT_FORGE_P256));
        return 0;
}

static int group_teardown(void **state)
{
        (void)state;
        for (int i = 0; i < NKEYS; i++)
                jwt_forge_key_free(keys[i]);
        return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_prepare_then_exchange),
                T(test_cached_provider_one_request_per_exchange),
                T(test_disk_cache_survives_restart),
                T(test_stale_cache_refreshed),
                T(test_key_rotation_refetch_once),
                T(test_unknown_kid_after_refetch),
                T(test_issuer_mismatch),
                T(test_refresh),
                T(test_refresh_claims_copied),
                T(test_exchange_without_id_token),
                T(test_wrong_nonce),
                T(test_invalid_grant),
                T(test_refusal_shapes),
                T(test_too_many_requests_waits),
                T(test_too_many_requests_bounds),
                T(test_discovery_refused),
                T(test_revoke_client_refused),
                T(test_revoke),
                T(test_revoke_without_endpoint),
                T(test_provider_unreachable),
                T(test_jwks_server_error),
                T(test_parallel_cold_exchanges_share_fetches),
                T(test_free_with_operations_pending),
                T(test_free_from_callback),
                T(test_wake_out_of_memory),
                T(test_wake_out_of_memory_free_from_callback),
                T(test_invalid_arguments),
                T(test_callback_required),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
