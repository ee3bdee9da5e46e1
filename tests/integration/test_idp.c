/* SPDX-License-Identifier: MIT */
/* The test IdP, driven through lk-harness without the broker. */
#include <errno.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "base/util.h"
#include "oidc/b64url.h"
#include "oidc/secret.h"
#include "tests/harness/harness.h"

static struct lkh *H;

static int group_setup(void **state)
{
        if (lkh_new(&H) < 0)
                return -1;
        if (lkh_start_idp(H, NULL) < 0) {
                lkh_free(H);
                H = NULL;
                return -1;
        }
        return 0;
}

static int group_teardown(void **state)
{
        lkh_free(H);
        H = NULL;
        return 0;
}

static int reset(void **state)
{
        return lkh_idp_reset(H) < 0 ? -1 : 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *esc(const char *s)
{
        char *e = curl_easy_escape(NULL, s, 0);
        char *d = strdup(e);
        curl_free(e);
        assert_non_null(d);
        return d;
}

struct pkce {
        char *verifier;
        char *challenge;
};

static void pkce_new(struct pkce *p)
{
        assert_int_equal(lk_random_b64url(32, &p->verifier), 0);
        assert_int_equal(lk_sha256_b64url(p->verifier, &p->challenge), 0);
}

static void pkce_free(struct pkce *p)
{
        lk_secret_free(p->verifier);
        free(p->challenge);
}

/* Signs in as user and returns the code. */
static char *get_code(const char *user, const char *nonce, const char *challenge)
{
        _cleanup_free_ char *url = lkh_idp_authorize_url(H, "state-1", nonce, challenge);
        _cleanup_free_ char *location = NULL;
        char *code = NULL;

        assert_int_equal(lkh_browser_login(H, url, user, false, &location, &code), 0);
        assert_non_null(code);
        return code;
}

/* client_secret_post credentials for the main client. */
static char *post_creds(void)
{
        _cleanup_free_ char *id = esc(H->client_id), *secret = esc(H->client_secret);
        char *s;
        assert_true(asprintf(&s, "client_id=%s&client_secret=%s", id, secret) > 0);
        return s;
}

/* "Authorization: Basic ..." for id, with RFC 6749 §2.3.1 form-encoding first. */
static char *basic_header(const char *id, const char *secret)
{
        _cleanup_free_ char *i = esc(id), *s = esc(secret), *raw = NULL;
        unsigned char out[1024];
        char *h;
        int n;

        assert_true(asprintf(&raw, "%s:%s", i, s) > 0);
        assert_true(strlen(raw) < 700);
        n = EVP_EncodeBlock(out, (const unsigned char *)raw, (int)strlen(raw));
        assert_true(n > 0);
        assert_true(asprintf(&h, "Authorization: Basic %s", (char *)out) > 0);
        return h;
}

/* POSTs form to the token endpoint; returns the status and the parsed body (NULL if not JSON). */
static long token_request(const char *form, const char *auth_header, json_t **ret)
{
        const char *headers[] = { auth_header, NULL };
        _cleanup_free_ char *body = NULL;
        long status = 0;

        assert_int_equal(lkh_http(H, "/api/v1/oauth2/token", form, auth_header ? headers : NULL,
                                  &status, &body, NULL),
                         0);
        if (ret)
                *ret = json_loads(body, 0, NULL);
        return status;
}

static long exchange_code(const char *code, const char *verifier, json_t **ret)
{
        _cleanup_free_ char *creds = post_creds(), *c = esc(code), *ru = esc(H->redirect_uri);
        _cleanup_free_ char *form = NULL;

        assert_true(asprintf(&form, "grant_type=authorization_code&code=%s&redirect_uri=%s%s%s&%s",
                             c, ru, verifier ? "&code_verifier=" : "", verifier ? verifier : "",
                             creds) > 0);
        return token_request(form, NULL, ret);
}

static long refresh(const char *refresh_token, json_t **ret)
{
        _cleanup_free_ char *creds = post_creds(), *r = esc(refresh_token), *form = NULL;

        assert_true(asprintf(&form, "grant_type=refresh_token&refresh_token=%s&%s", r, creds) > 0);
        return token_request(form, NULL, ret);
}

static const char *jstr(json_t *j, const char *key)
{
        return json_string_value(json_object_get(j, key));
}

static json_t *jwt_part(const char *jwt, int which)
{
        const char *p = jwt;
        unsigned char *data = NULL;
        size_t len = 0;
        json_t *j;

        for (int i = 0; i < which; i++) {
                p = strchr(p, '.');
                assert_non_null(p);
                p++;
        }
        assert_int_equal(lk_b64url_decode(p, strcspn(p, "."), &data, &len), 0);
        j = json_loadb((const char *)data, len, 0, NULL);
        free(data);
        assert_non_null(j);
        return j;
}

static json_t *get_json(const char *path, long want_status, char **ret_headers)
{
        _cleanup_free_ char *body = NULL;
        long status = 0;
        json_t *j;

        assert_int_equal(lkh_http(H, path, NULL, NULL, &status, &body, ret_headers), 0);
        assert_int_equal(status, want_status);
        j = json_loads(body, 0, NULL);
        assert_non_null(j);
        return j;
}

/* Checks an RS256 JWS against the RSA key of that kid in the IdP's JWKS. */
static bool rs256_valid(const char *jwt, json_t *jwks)
{
        json_t *hdr = jwt_part(jwt, 0), *key = NULL, *k;
        const char *kid = jstr(hdr, "kid"), *sig_b64 = strrchr(jwt, '.');
        unsigned char *n = NULL, *e = NULL, *sig = NULL;
        size_t nlen, elen, siglen;
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        EVP_PKEY *pkey = NULL;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        BIGNUM *bn_n = NULL, *bn_e = NULL;
        size_t i;
        bool ok = false;

        json_array_foreach(json_object_get(jwks, "keys"), i, k)
                if (kid && streq_ptr(jstr(k, "kid"), kid))
                        key = k;
        if (!key || !sig_b64 || !streq_ptr(jstr(hdr, "alg"), "RS256"))
                goto out;
        if (lk_b64url_decode(jstr(key, "n"), strlen(jstr(key, "n")), &n, &nlen) < 0 ||
            lk_b64url_decode(jstr(key, "e"), strlen(jstr(key, "e")), &e, &elen) < 0 ||
            lk_b64url_decode(sig_b64 + 1, strlen(sig_b64 + 1), &sig, &siglen) < 0)
                goto out;
        bn_n = BN_bin2bn(n, (int)nlen, NULL);
        bn_e = BN_bin2bn(e, (int)elen, NULL);
        if (!bld || !pctx || !md || !bn_n || !bn_e ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
            !(params = OSSL_PARAM_BLD_to_param(bld)) || EVP_PKEY_fromdata_init(pctx) != 1 ||
            EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
                goto out;
        ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
             EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt,
                              (size_t)(sig_b64 - jwt)) == 1;
out:
        json_decref(hdr);
        free(n);
        free(e);
        free(sig);
        BN_free(bn_n);
        BN_free(bn_e);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        EVP_PKEY_free(pkey);
        EVP_PKEY_CTX_free(pctx);
        EVP_MD_CTX_free(md);
        return ok;
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_discovery(void **state)
{
        json_t *d = get_json("/api/v1/oauth2/.well-known/openid-configuration", 200, NULL);
        _cleanup_free_ char *token_ep = NULL, *revoke_ep = NULL;
        json_t *algs = json_object_get(d, "id_token_signing_alg_values_supported");
        long n = 0;

        assert_string_equal(jstr(d, "issuer"), H->issuer);
        assert_true(asprintf(&token_ep, "%s/token", H->issuer) > 0);
        assert_true(asprintf(&revoke_ep, "%s/revoke", H->issuer) > 0);
        assert_string_equal(jstr(d, "token_endpoint"), token_ep);
        assert_string_equal(jstr(d, "revocation_endpoint"), revoke_ep);
        assert_non_null(jstr(d, "userinfo_endpoint"));
        assert_non_null(jstr(d, "jwks_uri"));
        assert_true(json_is_array(algs) && json_array_size(algs) >= 1);
        assert_string_equal(json_string_value(json_array_get(algs, 0)), "RS256");
        json_decref(d);
        assert_int_equal(lkh_idp_stat(H, "discovery", &n), 0);
        assert_int_equal(n, 1);
}

static void test_jwks_and_max_age(void **state)
{
        _cleanup_free_ char *headers = NULL, *headers2 = NULL;
        json_t *j = get_json("/api/v1/oauth2/jwks", 200, &headers);
        json_t *keys = json_object_get(j, "keys");
        long n = 0;

        assert_int_equal(json_array_size(keys), 2);
        assert_string_equal(jstr(json_array_get(keys, 0), "kid"), "rsa1");
        assert_string_equal(jstr(json_array_get(keys, 0), "kty"), "RSA");
        assert_string_equal(jstr(json_array_get(keys, 1), "kid"), "ec1");
        assert_string_equal(jstr(json_array_get(keys, 1), "crv"), "P-256");
        assert_non_null(strcasestr(headers, "Cache-Control: public, max-age=300"));
        json_decref(j);

        assert_int_equal(lkh_idp_set(H, "jwks_max_age", "42"), 0);
        j = get_json("/api/v1/oauth2/jwks", 200, &headers2);
        assert_non_null(strcasestr(headers2, "max-age=42\r\n"));
        json_decref(j);
        assert_int_equal(lkh_idp_stat(H, "jwks", &n), 0);
        assert_int_equal(n, 2);
}

static void test_authorize_login_hint(void **state)
{
        _cleanup_free_ char *url = lkh_idp_authorize_url(H, "st-42", "n-1", NULL);
        _cleanup_free_ char *location = NULL, *code = NULL, *st = NULL, *prefix = NULL;
        long n = 0;

        assert_int_equal(lkh_browser_login(H, url, "alice", false, &location, &code), 0);
        assert_non_null(code);
        assert_true(strlen(code) >= 32);
        assert_true(asprintf(&prefix, "%s?code=", H->redirect_uri) > 0);
        assert_true(strncmp(location, prefix, strlen(prefix)) == 0);
        assert_int_equal(lkh_url_param(location, "state", &st), 0);
        assert_string_equal(st, "st-42");
        assert_int_equal(lkh_idp_stat(H, "authorize", &n), 0);
        assert_int_equal(n, 1);
}

static void test_authorize_form(void **state)
{
        _cleanup_free_ char *url = lkh_idp_authorize_url(H, "st-form", NULL, NULL);
        _cleanup_free_ char *location = NULL, *code = NULL;
        json_t *tok = NULL, *claims;

        assert_int_equal(lkh_browser_login(H, url, "carol", true, &location, &code), 0);
        assert_non_null(code);
        assert_int_equal(exchange_code(code, NULL, &tok), 200);
        claims = jwt_part(jstr(tok, "id_token"), 1);
        assert_string_equal(jstr(claims, "preferred_username"), "carol");
        assert_null(json_object_get(claims, "nonce"));
        json_decref(claims);
        json_decref(tok);
}

static void test_authorize_refuses_unknown_redirect(void **state)
{
        _cleanup_free_ char *url = NULL, *location = NULL, *cid = esc(H->client_id);
        long status = 0;

        assert_true(asprintf(&url, "%s/authorize?response_type=code&client_id=%s&redirect_uri="
                                   "https%%3A%%2F%%2Fevil.example%%2Fcb&login_hint=alice",
                             H->issuer, cid) > 0);
        assert_int_equal(lkh_http(H, url, NULL, NULL, &status, NULL, NULL), 0);
        assert_int_equal(status, 400);
        /* A bad request is refused by the browser helper, not silently "logged in". */
        assert_int_not_equal(lkh_browser_login(H, url, "alice", false, &location, NULL), 0);
        assert_null(location);
}

static void test_error_on_authorize(void **state)
{
        _cleanup_free_ char *url = lkh_idp_authorize_url(H, "st-err", NULL, NULL);
        _cleanup_free_ char *location = NULL, *code = NULL, *err = NULL, *st = NULL;

        assert_int_equal(lkh_idp_set(H, "error_on_authorize", "1"), 0);
        assert_int_equal(lkh_browser_login(H, url, "alice", false, &location, &code), 0);
        assert_null(code);
        assert_int_equal(lkh_url_param(location, "error", &err), 0);
        assert_string_equal(err, "access_denied");
        assert_int_equal(lkh_url_param(location, "state", &st), 0);
        assert_string_equal(st, "st-err");
}

static void test_token_pkce_right_verifier(void **state)
{
        struct pkce p;
        _cleanup_free_ char *code = NULL;
        json_t *tok = NULL, *claims, *jwks;
        long n = 0;

        pkce_new(&p);
        code = get_code("alice", "nonce-xyz", p.challenge);
        assert_int_equal(exchange_code(code, p.verifier, &tok), 200);
        assert_non_null(jstr(tok, "access_token"));
        assert_non_null(jstr(tok, "refresh_token"));
        assert_string_equal(jstr(tok, "token_type"), "Bearer");
        assert_true(json_is_integer(json_object_get(tok, "expires_in")));
        assert_int_equal(json_integer_value(json_object_get(tok, "expires_in")), 3600);

        claims = jwt_part(jstr(tok, "id_token"), 1);
        assert_string_equal(jstr(claims, "iss"), H->issuer);
        assert_string_equal(jstr(claims, "aud"), H->client_id);
        assert_string_equal(jstr(claims, "nonce"), "nonce-xyz");
        assert_string_equal(jstr(claims, "preferred_username"), "alice");
        assert_non_null(jstr(claims, "sub"));
        assert_true(json_integer_value(json_object_get(claims, "exp")) > (json_int_t)time(NULL));
        assert_true(json_is_array(json_object_get(claims, "groups")));

        jwks = get_json("/api/v1/oauth2/jwks", 200, NULL);
        assert_true(rs256_valid(jstr(tok, "id_token"), jwks));
        json_decref(jwks);
        json_decref(claims);
        json_decref(tok);
        pkce_free(&p);
        assert_int_equal(lkh_idp_stat(H, "token_code", &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(lkh_idp_stat(H, "token_auth_post", &n), 0);
        assert_int_equal(n, 1);
}

static void test_token_pkce_wrong_verifier(void **state)
{
        struct pkce p, other;
        _cleanup_free_ char *code = NULL, *code2 = NULL;
        json_t *tok = NULL;

        pkce_new(&p);
        pkce_new(&other);
        code = get_code("alice", NULL, p.challenge);
        assert_int_equal(exchange_code(code, other.verifier, &tok), 400);
        assert_string_equal(jstr(tok, "error"), "invalid_grant");
        json_decref(tok);
        /* No verifier at all is refused as well. */
        code2 = get_code("alice", NULL, p.challenge);
        assert_int_equal(exchange_code(code2, NULL, &tok), 400);
        assert_string_equal(jstr(tok, "error"), "invalid_grant");
        json_decref(tok);
        pkce_free(&p);
        pkce_free(&other);
}

static void test_code_replay_refused(void **state)
{
        struct pkce p;
        _cleanup_free_ char *code = NULL, *auth = NULL, *body = NULL;
        const char *headers[2] = { NULL, NULL };
        json_t *tok = NULL, *again = NULL;
        long status = 0;

        pkce_new(&p);
        code = get_code("alice", NULL, p.challenge);
        assert_int_equal(exchange_code(code, p.verifier, &tok), 200);
        assert_true(asprintf(&auth, "Authorization: Bearer %s", jstr(tok, "access_token")) > 0);
        headers[0] = auth;
        assert_int_equal(lkh_http(H, "/api/v1/oauth2/userinfo", NULL, headers, &status, NULL,
                                  NULL), 0);
        assert_int_equal(status, 200);

        assert_int_equal(exchange_code(code, p.verifier, &again), 400);
        assert_string_equal(jstr(again, "error"), "invalid_grant");
        assert_string_equal(jstr(again, "error_description"), "Invalid authorization code");
        /* ...and what the code gave is revoked. */
        assert_int_equal(lkh_http(H, "/api/v1/oauth2/userinfo", NULL, headers, &status, &body,
                                  NULL), 0);
        assert_int_equal(status, 401);
        json_decref(tok);
        json_decref(again);
        pkce_free(&p);
}

static void test_refresh_rotation(void **state)
{
        _cleanup_free_ char *code = get_code("bob", "n", NULL);
        _cleanup_free_ char *rt1 = NULL, *rt2 = NULL, *sub1 = NULL;
        json_t *tok = NULL, *tok2 = NULL, *tok3 = NULL, *tok4 = NULL, *claims;
        long n = 0;

        assert_int_equal(exchange_code(code, NULL, &tok), 200);
        rt1 = strdup(jstr(tok, "refresh_token"));
        claims = jwt_part(jstr(tok, "id_token"), 1);
        sub1 = strdup(jstr(claims, "sub"));
        json_decref(claims);

        assert_int_equal(refresh(rt1, &tok2), 200);
        rt2 = strdup(jstr(tok2, "refresh_token"));
        assert_string_not_equal(rt1, rt2);
        assert_string_not_equal(jstr(tok, "access_token"), jstr(tok2, "access_token"));
        claims = jwt_part(jstr(tok2, "id_token"), 1);
        assert_string_equal(jstr(claims, "sub"), sub1);
        assert_string_equal(jstr(claims, "iss"), H->issuer);
        json_decref(claims);

        /* The old refresh token is spent; the new one works. */
        assert_int_equal(refresh(rt1, &tok3), 400);
        assert_string_equal(jstr(tok3, "error"), "invalid_grant");
        assert_int_equal(refresh(rt2, &tok4), 200);
        assert_int_equal(lkh_idp_stat(H, "token_refresh", &n), 0);
        assert_int_equal(n, 3);
        json_decref(tok);
        json_decref(tok2);
        json_decref(tok3);
        json_decref(tok4);
}

static void test_client_auth_basic_and_post(void **state)
{
        _cleanup_free_ char *code = NULL, *code2 = NULL, *code3 = NULL, *form = NULL;
        _cleanup_free_ char *c = NULL, *ru = esc(H->redirect_uri), *alt_url = NULL;
        _cleanup_free_ char *alt_basic = basic_header(H->alt_client_id, H->client_secret);
        _cleanup_free_ char *main_basic = basic_header(H->client_id, H->client_secret);
        _cleanup_free_ char *wrong_basic = basic_header(H->alt_client_id, "not-the-secret");
        _cleanup_free_ char *location = NULL, *alt_id = esc(H->alt_client_id), *base = NULL;
        json_t *tok = NULL;
        long n = 0;

        /* The alternative client is registered for client_secret_basic. */
        base = lkh_idp_authorize_url(H, "s", NULL, NULL);
        {
                _cleanup_free_ char *main_id = esc(H->client_id), *needle = NULL;
                char *p;
                assert_true(asprintf(&needle, "client_id=%s&", main_id) > 0);
                p = strstr(base, needle);
                assert_non_null(p);
                assert_true(asprintf(&alt_url, "%.*sclient_id=%s&%s", (int)(p - base), base,
                                     alt_id, p + strlen(needle)) > 0);
        }
        assert_int_equal(lkh_browser_login(H, alt_url, "dave", false, &location, &code), 0);
        c = esc(code);
        assert_true(asprintf(&form, "grant_type=authorization_code&code=%s&redirect_uri=%s", c,
                             ru) > 0);
        assert_int_equal(token_request(form, wrong_basic, &tok), 401);
        assert_string_equal(jstr(tok, "error"), "invalid_client");
        json_decref(tok);
        assert_int_equal(token_request(form, alt_basic, &tok), 200);
        assert_non_null(jstr(tok, "access_token"));
        json_decref(tok);
        assert_int_equal(lkh_idp_stat(H, "token_auth_basic", &n), 0);
        assert_int_equal(n, 1);

        /* The main client uses client_secret_post: Basic is refused for it. */
        code2 = get_code("dave", NULL, NULL);
        free(c);
        free(form);
        c = esc(code2);
        assert_true(asprintf(&form, "grant_type=authorization_code&code=%s&redirect_uri=%s", c,
                             ru) > 0);
        assert_int_equal(token_request(form, main_basic, &tok), 401);
        assert_string_equal(jstr(tok, "error"), "invalid_client");
        json_decref(tok);
        code3 = get_code("dave", NULL, NULL);
        assert_int_equal(exchange_code(code3, NULL, &tok), 200);
        json_decref(tok);
}

static void test_expires_in_string_switch(void **state)
{
        _cleanup_free_ char *code = get_code("erin", NULL, NULL);
        json_t *tok = NULL, *v;
        long before = 0, after = 0;

        assert_int_equal(lkh_idp_stat(H, "token_code", &before), 0);
        assert_int_equal(lkh_idp_set(H, "expires_in_string", "1"), 0);
        assert_int_equal(lkh_idp_set(H, "expires_in", "900"), 0);
        assert_int_equal(exchange_code(code, NULL, &tok), 200);
        v = json_object_get(tok, "expires_in");
        assert_true(json_is_string(v));
        assert_string_equal(json_string_value(v), "900");
        json_decref(tok);
        assert_int_equal(lkh_idp_stat(H, "token_code", &after), 0);
        assert_int_equal(after, before + 1);
        /* An unknown switch is refused. */
        assert_int_not_equal(lkh_idp_set(H, "no_such_switch", "1"), 0);
}

static void test_id_token_defect_switches(void **state)
{
        _cleanup_free_ char *code = get_code("frank", "n1", NULL);
        _cleanup_free_ char *code2 = get_code("frank", "n1", NULL);
        json_t *tok = NULL, *claims, *hdr;

        assert_int_equal(lkh_idp_set(H, "wrong_aud", "1"), 0);
        assert_int_equal(lkh_idp_set(H, "omit_nonce", "1"), 0);
        assert_int_equal(lkh_idp_set(H, "id_token_user", "mallory"), 0);
        assert_int_equal(exchange_code(code, NULL, &tok), 200);
        claims = jwt_part(jstr(tok, "id_token"), 1);
        assert_string_equal(jstr(claims, "aud"), "someone-else");
        assert_null(json_object_get(claims, "nonce"));
        assert_string_equal(jstr(claims, "preferred_username"), "mallory");
        json_decref(claims);
        json_decref(tok);

        assert_int_equal(lkh_idp_reset(H), 0);
        assert_int_equal(lkh_idp_set(H, "alg", "ES256"), 0);
        assert_int_equal(exchange_code(code2, NULL, &tok), 200);
        hdr = jwt_part(jstr(tok, "id_token"), 0);
        assert_string_equal(jstr(hdr, "alg"), "ES256");
        assert_string_equal(jstr(hdr, "kid"), "ec1");
        json_decref(hdr);
        json_decref(tok);
}

static void test_userinfo_and_revoke(void **state)
{
        _cleanup_free_ char *code = get_code("grace", NULL, NULL);
        _cleanup_free_ char *auth = NULL, *body = NULL, *form = NULL, *creds = post_creds();
        _cleanup_free_ char *rt = NULL;
        const char *headers[2] = { NULL, NULL };
        json_t *tok = NULL, *info, *again = NULL;
        long status = 0, n = 0;

        assert_int_equal(exchange_code(code, NULL, &tok), 200);
        assert_true(asprintf(&auth, "Authorization: Bearer %s", jstr(tok, "access_token")) > 0);
        headers[0] = auth;
        assert_int_equal(lkh_http(H, "/api/v1/oauth2/userinfo", NULL, headers, &status, &body,
                                  NULL), 0);
        assert_int_equal(status, 200);
        info = json_loads(body, 0, NULL);
        assert_non_null(info);
        assert_string_equal(jstr(info, "userName"), "grace");
        assert_non_null(jstr(info, "id"));
        assert_non_null(jstr(info, "name"));
        assert_string_equal(jstr(info, "email"), "grace@example.com");
        json_decref(info);

        rt = esc(jstr(tok, "refresh_token"));
        assert_true(asprintf(&form, "token=%s&token_type_hint=refresh_token&%s", rt, creds) > 0);
        assert_int_equal(lkh_http(H, "/api/v1/oauth2/revoke", form, NULL, &status, NULL, NULL),
                         0);
        assert_int_equal(status, 200);
        assert_int_equal(refresh(jstr(tok, "refresh_token"), &again), 400);
        assert_int_equal(lkh_http(H, "/api/v1/oauth2/userinfo", NULL, headers, &status, NULL,
                                  NULL), 0);
        assert_int_equal(status, 401);
        assert_int_equal(lkh_idp_stat(H, "revoke", &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(lkh_idp_stat(H, "userinfo", &n), 0);
        assert_int_equal(n, 2);
        json_decref(again);
        json_decref(tok);
}

struct slow_call {
        char *code;
        long status;
        double seconds;
        atomic_int done;
};

static void *slow_token(void *arg)
{
        struct slow_call *s = arg;
        _cleanup_free_ char *creds = post_creds(), *c = esc(s->code), *ru = esc(H->redirect_uri);
        _cleanup_free_ char *form = NULL;
        double t0 = now_s();

        if (asprintf(&form, "grant_type=authorization_code&code=%s&redirect_uri=%s&%s", c, ru,
                     creds) < 0)
                return NULL;
        if (lkh_http(H, "/api/v1/oauth2/token", form, NULL, &s->status, NULL, NULL) < 0)
                s->status = -1;
        s->seconds = now_s() - t0;
        atomic_store(&s->done, 1);
        return NULL;
}

static void test_delay_does_not_block_others(void **state)
{
        struct slow_call s = { .code = get_code("heidi", NULL, NULL) };
        pthread_t t;
        double t0, fast;
        long status = 0;

        assert_int_equal(lkh_idp_set(H, "delay_ms", "2000"), 0);
        assert_int_equal(pthread_create(&t, NULL, slow_token, &s), 0);
        usleep(300 * 1000);
        t0 = now_s();
        assert_int_equal(lkh_http(H, "/api/v1/oauth2/.well-known/openid-configuration", NULL, NULL,
                                  &status, NULL, NULL), 0);
        fast = now_s() - t0;
        assert_int_equal(status, 200);
        assert_true(fast < 1.0);
        assert_int_equal(atomic_load(&s.done), 0); /* the token request is still waiting */
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(s.status, 200);
        assert_true(s.seconds >= 1.9);
        free(s.code);
}

static void test_fail_status_and_bad_bodies(void **state)
{
        _cleanup_free_ char *code = get_code("ivan", NULL, NULL);
        _cleanup_free_ char *creds = post_creds(), *c = esc(code), *ru = esc(H->redirect_uri);
        _cleanup_free_ char *form = NULL, *body = NULL, *big = NULL;
        json_t *tok = NULL;
        long status = 0;

        assert_true(asprintf(&form, "grant_type=authorization_code&code=%s&redirect_uri=%s&%s", c,
                             ru, creds) > 0);
        assert_int_equal(lkh_idp_set(H, "fail_status", "503"), 0);
        assert_int_equal(lkh_http(H, "/api/v1/oauth2/token", form, NULL, &status, NULL, NULL), 0);
        assert_int_equal(status, 503);
        assert_int_equal(lkh_idp_reset(H), 0);
        assert_int_equal(lkh_idp_set(H, "malformed_json", "1"), 0);
        assert_int_equal(lkh_http(H, "/api/v1/oauth2/token", form, NULL, &status, &body, NULL), 0);
        assert_int_equal(status, 200);
        tok = json_loads(body, 0, NULL);
        assert_null(tok);
        assert_int_equal(lkh_idp_reset(H), 0);
        assert_int_equal(lkh_idp_set(H, "oversized_body", "1"), 0);
        assert_int_equal(lkh_http(H, "/api/v1/oauth2/token", form, NULL, &status, &big, NULL), 0);
        assert_true(strlen(big) >= 2 * 1024 * 1024);
        /* None of those used the code up. */
        assert_int_equal(lkh_idp_reset(H), 0);
        assert_int_equal(exchange_code(code, NULL, &tok), 200);
        json_decref(tok);
}

static void test_rotate_keys(void **state)
{
        _cleanup_free_ char *code = get_code("judy", NULL, NULL);
        json_t *jwks, *tok = NULL, *hdr;

        assert_int_equal(lkh_idp_set(H, "rotate_keys", "1"), 0);
        jwks = get_json("/api/v1/oauth2/jwks", 200, NULL);
        assert_string_not_equal(jstr(json_array_get(json_object_get(jwks, "keys"), 0), "kid"),
                                "rsa1");
        assert_int_equal(exchange_code(code, NULL, &tok), 200);
        hdr = jwt_part(jstr(tok, "id_token"), 0);
        assert_string_equal(jstr(hdr, "kid"),
                            jstr(json_array_get(json_object_get(jwks, "keys"), 0), "kid"));
        assert_true(rs256_valid(jstr(tok, "id_token"), jwks));
        json_decref(hdr);
        json_decref(tok);
        json_decref(jwks);
}

static int report_uid(void *userdata)
{
        return (int)getuid() * 2 + (getgid() == 65534 ? 1 : 0);
}

static void test_run_as(void **state)
{
        int result = -1;

        if (geteuid() != 0)
                skip();
        assert_int_equal(lkh_run_as(65534, 65534, report_uid, NULL, &result), 0);
        assert_int_equal(result, 65534 * 2 + 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_discovery, reset),
                cmocka_unit_test_setup(test_jwks_and_max_age, reset),
                cmocka_unit_test_setup(test_authorize_login_hint, reset),
                cmocka_unit_test_setup(test_authorize_form, reset),
                cmocka_unit_test_setup(test_authorize_refuses_unknown_redirect, reset),
                cmocka_unit_test_setup(test_error_on_authorize, reset),
                cmocka_unit_test_setup(test_token_pkce_right_verifier, reset),
                cmocka_unit_test_setup(test_token_pkce_wrong_verifier, reset),
                cmocka_unit_test_setup(test_code_replay_refused, reset),
                cmocka_unit_test_setup(test_refresh_rotation, reset),
                cmocka_unit_test_setup(test_client_auth_basic_and_post, reset),
                cmocka_unit_test_setup(test_expires_in_string_switch, reset),
                cmocka_unit_test_setup(test_id_token_defect_switches, reset),
                cmocka_unit_test_setup(test_userinfo_and_revoke, reset),
                cmocka_unit_test_setup(test_delay_does_not_block_others, reset),
                cmocka_unit_test_setup(test_fail_status_and_bad_bodies, reset),
                cmocka_unit_test_setup(test_rotate_keys, reset),
                cmocka_unit_test_setup(test_run_as, reset),
        };

        return cmocka_run_group_tests_name("idp", tests, group_setup, group_teardown);
}
