/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "oidc/authorize.h"

static char *scopes[] = { "openid", "profile", "offline_access", NULL };

static struct lk_config config(void)
{
        return (struct lk_config){
                .issuer = "https://tenant.example.com/api/v1/oauth2",
                .discovery = true,
                .client_id = "latchkey client+1",
                .redirect_uri = "https://login.example.com/callback?x=1",
                .scopes = scopes,
                .pkce = true,
        };
}

static struct lk_endpoints endpoints(void)
{
        return (struct lk_endpoints){
                .authorization_endpoint = "https://tenant.example.com/api/v1/oauth2/authorize",
                .token_endpoint = "https://tenant.example.com/api/v1/oauth2/token",
                .jwks_uri = "https://tenant.example.com/api/v1/oauth2/keys",
        };
}

/* One parameter from a URL's query, form-decoded ('+' is a space); NULL when absent. */
static char *query_param(const char *url, const char *name, unsigned *count)
{
        CURLU *u = curl_url();
        char *query = NULL, *found = NULL;
        size_t ln = strlen(name);

        *count = 0;
        assert_non_null(u);
        assert_int_equal(curl_url_set(u, CURLUPART_URL, url, 0), CURLUE_OK);
        if (curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_OK) {
                curl_url_cleanup(u);
                return NULL;
        }
        for (char *p = query; p && *p;) {
                char *amp = strchr(p, '&');
                size_t len = amp ? (size_t)(amp - p) : strlen(p);

                if (len > ln && strncmp(p, name, ln) == 0 && p[ln] == '=') {
                        char *v = strndup(p + ln + 1, len - ln - 1);
                        int outlen;

                        for (char *c = v; *c; c++)
                                if (*c == '+')
                                        *c = ' ';
                        free(found);
                        char *dec = curl_easy_unescape(NULL, v, 0, &outlen);
                        found = strdup(dec);
                        curl_free(dec);
                        free(v);
                        (*count)++;
                }
                p = amp ? amp + 1 : NULL;
        }
        curl_free(query);
        curl_url_cleanup(u);
        return found;
}

static void check_param(const char *url, const char *name, const char *want)
{
        unsigned n;
        char *v = query_param(url, name, &n);

        if (!want) {
                assert_null(v);
                return;
        }
        assert_non_null(v);
        assert_int_equal(n, 1);
        assert_string_equal(v, want);
        free(v);
}

/* base64url(SHA-256(s)) with OpenSSL directly, independent of secret.c. */
static char *s256(const char *s)
{
        unsigned char md[32];
        unsigned int mdlen = 0;
        unsigned char b64[64];
        int n;
        char *out;

        assert_int_equal(EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL), 1);
        assert_int_equal(mdlen, 32);
        n = EVP_EncodeBlock(b64, md, (int)mdlen);
        assert_int_equal(n, 44);
        out = strndup((char *)b64, 43); /* drop the one '=' of padding */
        for (char *p = out; *p; p++) {
                if (*p == '+')
                        *p = '-';
                else if (*p == '/')
                        *p = '_';
        }
        return out;
}

static bool is_b64url(const char *s)
{
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
               strlen(s);
}

static void test_url_parameters(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = endpoints();
        struct lk_authorization *a = NULL;
        struct lk_error e = {0};
        CURLU *u;
        char *host = NULL, *path = NULL, *challenge;

        assert_int_equal(lk_authorization_new(&c, &ep, NULL, &a, &e), 0);
        assert_non_null(a);

        u = curl_url();
        assert_int_equal(curl_url_set(u, CURLUPART_URL, a->url, 0), CURLUE_OK);
        assert_int_equal(curl_url_get(u, CURLUPART_HOST, &host, 0), CURLUE_OK);
        assert_int_equal(curl_url_get(u, CURLUPART_PATH, &path, 0), CURLUE_OK);
        assert_string_equal(host, "tenant.example.com");
        assert_string_equal(path, "/api/v1/oauth2/authorize");
        curl_free(host);
        curl_free(path);
        curl_url_cleanup(u);

        check_param(a->url, "response_type", "code");
        check_param(a->url, "client_id", "latchkey client+1");
        check_param(a->url, "redirect_uri", "https://login.example.com/callback?x=1");
        check_param(a->url, "scope", "openid profile offline_access");
        check_param(a->url, "state", a->state);
        check_param(a->url, "nonce", a->nonce);
        check_param(a->url, "code_challenge_method", "S256");
        check_param(a->url, "login_hint", NULL);
        check_param(a->url, "prompt", NULL);

        challenge = s256(a->verifier);
        check_param(a->url, "code_challenge", challenge);
        free(challenge);

        /* The raw URL: the '+' of the client_id encoded, the spaces of scope as '+'. */
        assert_non_null(strstr(a->url, "client_id=latchkey+client%2b1") ?: strstr(a->url, "client_id=latchkey+client%2B1"));
        assert_non_null(strstr(a->url, "scope=openid+profile+offline_access"));
        assert_null(strstr(a->url, "x=1&"));

        lk_authorization_free(a);
}

static void test_secrets_shape(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = endpoints();
        struct lk_authorization *a = NULL;
        struct lk_error e = {0};

        assert_int_equal(lk_authorization_new(&c, &ep, NULL, &a, &e), 0);
        /* 256 bits each: 43 base64url characters; RFC 7636 wants 43..128 for the verifier. */
        assert_true(strlen(a->state) >= 43);
        assert_true(strlen(a->nonce) >= 43);
        assert_true(strlen(a->verifier) >= 43 && strlen(a->verifier) <= 128);
        assert_true(is_b64url(a->state));
        assert_true(is_b64url(a->nonce));
        assert_true(is_b64url(a->verifier));
        assert_string_not_equal(a->state, a->nonce);
        assert_string_not_equal(a->state, a->verifier);
        assert_string_not_equal(a->nonce, a->verifier);
        /* The verifier itself never travels in the URL. */
        assert_null(strstr(a->url, a->verifier));
        lk_authorization_free(a);
}

static void test_unique(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = endpoints();
        struct lk_authorization *a[16] = {0};
        struct lk_error e = {0};

        for (size_t i = 0; i < ELEMENTSOF(a); i++)
                assert_int_equal(lk_authorization_new(&c, &ep, NULL, &a[i], &e), 0);
        for (size_t i = 0; i < ELEMENTSOF(a); i++)
                for (size_t j = i + 1; j < ELEMENTSOF(a); j++) {
                        assert_string_not_equal(a[i]->state, a[j]->state);
                        assert_string_not_equal(a[i]->nonce, a[j]->nonce);
                        assert_string_not_equal(a[i]->verifier, a[j]->verifier);
                }
        for (size_t i = 0; i < ELEMENTSOF(a); i++)
                lk_authorization_free(a[i]);
}

static void test_existing_query(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = endpoints();
        struct lk_authorization *a = NULL;
        struct lk_error e = {0};

        ep.authorization_endpoint = "https://idp.example.com/authorize?tenant=acme&ui=compact";
        assert_int_equal(lk_authorization_new(&c, &ep, NULL, &a, &e), 0);
        check_param(a->url, "tenant", "acme");
        check_param(a->url, "ui", "compact");
        check_param(a->url, "response_type", "code");
        check_param(a->url, "state", a->state);
        assert_non_null(strstr(a->url, "?tenant=acme&ui=compact&response_type=code&"));
        lk_authorization_free(a);
}

static void test_login_hint(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = endpoints();
        struct lk_authorization *a = NULL;
        struct lk_error e = {0};

        assert_int_equal(lk_authorization_new(&c, &ep, "j.doe+test@example.com &x=y", &a, &e), 0);
        check_param(a->url, "login_hint", "j.doe+test@example.com &x=y");
        check_param(a->url, "x", NULL);
        lk_authorization_free(a);

        /* An empty hint is no hint. */
        assert_int_equal(lk_authorization_new(&c, &ep, "", &a, &e), 0);
        check_param(a->url, "login_hint", NULL);
        lk_authorization_free(a);
}

static void test_prompt(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = endpoints();
        struct lk_authorization *a = NULL;
        struct lk_error e = {0};

        c.prompt = (char *)"consent login";
        assert_int_equal(lk_authorization_new(&c, &ep, NULL, &a, &e), 0);
        check_param(a->url, "prompt", "consent login");
        lk_authorization_free(a);
}

static void test_no_pkce(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = endpoints();
        struct lk_authorization *a = NULL;
        struct lk_error e = {0};

        c.pkce = false;
        c.scopes = NULL;
        assert_int_equal(lk_authorization_new(&c, &ep, NULL, &a, &e), 0);
        assert_null(a->verifier);
        check_param(a->url, "code_challenge", NULL);
        check_param(a->url, "code_challenge_method", NULL);
        check_param(a->url, "scope", "openid");
        check_param(a->url, "nonce", a->nonce);
        lk_authorization_free(a);
}

static void test_bad_endpoint(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = endpoints();
        struct lk_authorization *a = NULL;
        struct lk_error e = {0};

        ep.authorization_endpoint = NULL;
        assert_int_equal(lk_authorization_new(&c, &ep, NULL, &a, &e), -LK_ERR_CONFIG);
        assert_null(a);
        lk_error_clear(&e);
        ep.authorization_endpoint = "no scheme at all";
        assert_int_equal(lk_authorization_new(&c, &ep, NULL, &a, &e), -LK_ERR_CONFIG);
        assert_null(a);
        lk_error_clear(&e);
        ep = endpoints();
        c.client_id = NULL;
        assert_int_equal(lk_authorization_new(&c, &ep, NULL, &a, &e), -LK_ERR_CONFIG);
        assert_null(a);
        lk_authorization_free(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_url_parameters),
                cmocka_unit_test(test_secrets_shape),
                cmocka_unit_test(test_unique),
                cmocka_unit_test(test_existing_query),
                cmocka_unit_test(test_login_hint),
                cmocka_unit_test(test_prompt),
                cmocka_unit_test(test_no_pkce),
                cmocka_unit_test(test_bad_endpoint),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
