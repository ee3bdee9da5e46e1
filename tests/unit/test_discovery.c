/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "oidc/discovery.h"
#include "oidc/http.h"

#define ISSUER "https://tenant.example.com/api/v1/oauth2"

/* A discovery document shaped like OneAccess's. */
static const char oneaccess_doc[] =
        "{\"issuer\":\"https://tenant.example.com/api/v1/oauth2\","
        "\"authorization_endpoint\":\"https://tenant.example.com/api/v1/oauth2/authorize\","
        "\"token_endpoint\":\"https://tenant.example.com/api/v1/oauth2/token\","
        "\"userinfo_endpoint\":\"https://tenant.example.com/api/v1/oauth2/userinfo\","
        "\"revocation_endpoint\":\"https://tenant.example.com/api/v1/oauth2/revoke\","
        "\"jwks_uri\":\"https://tenant.example.com/api/v1/oauth2/keys\","
        "\"response_types_supported\":[\"code\"],"
        "\"subject_types_supported\":[\"public\"],"
        "\"id_token_signing_alg_values_supported\":[\"RS256\",\"ES256\"],"
        "\"scopes_supported\":[\"openid\",\"profile\",\"email\",\"phone\"],"
        "\"token_endpoint_auth_methods_supported\":[\"client_secret_post\",\"client_secret_basic\"],"
        "\"code_challenge_methods_supported\":[\"S256\"]}";

static struct lk_config config(void)
{
        return (struct lk_config){
                .issuer = ISSUER,
                .discovery = true,
                .client_id = "client",
                .redirect_uri = "https://login.example.com/callback",
        };
}

/* Parses a document built from a printf format; the endpoints stay in ep. */
static int parse_doc(const struct lk_config *c, const char *doc, struct lk_endpoints *ep,
                     struct lk_error *e)
{
        lk_error_clear(e);
        return lk_discovery_parse(c, doc, strlen(doc), ep, e);
}

static void test_url(void **state)
{
        struct lk_error e = {0};
        char *url = NULL;

        assert_int_equal(lk_discovery_url(ISSUER, &url, &e), 0);
        assert_string_equal(url,
                "https://tenant.example.com/api/v1/oauth2/.well-known/openid-configuration");
        free(url);

        /* A terminating slash is dropped, so no double slash. */
        assert_int_equal(lk_discovery_url(ISSUER "/", &url, &e), 0);
        assert_string_equal(url,
                "https://tenant.example.com/api/v1/oauth2/.well-known/openid-configuration");
        free(url);

        assert_int_equal(lk_discovery_url("https://idp.example.com", &url, &e), 0);
        assert_string_equal(url, "https://idp.example.com/.well-known/openid-configuration");
        free(url);

        assert_int_equal(lk_discovery_url("http://127.0.0.1:8080/", &url, &e), 0);
        assert_string_equal(url, "http://127.0.0.1:8080/.well-known/openid-configuration");
        free(url);
}

static void test_url_bad(void **state)
{
        struct lk_error e = {0};
        char *url = NULL;

        assert_int_equal(lk_discovery_url("https://idp.example.com/x?tenant=1", &url, &e),
                         -LK_ERR_CONFIG);
        assert_null(url);
        assert_non_null(strstr(e.message, "query"));
        lk_error_clear(&e);
        assert_int_equal(lk_discovery_url("not a url", &url, &e), -LK_ERR_CONFIG);
        lk_error_clear(&e);
        assert_int_equal(lk_discovery_url("", &url, &e), -LK_ERR_CONFIG);
        assert_null(url);
}

static void test_good(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};

        assert_int_equal(parse_doc(&c, oneaccess_doc, &ep, &e), 0);
        assert_string_equal(ep.authorization_endpoint,
                            "https://tenant.example.com/api/v1/oauth2/authorize");
        assert_string_equal(ep.token_endpoint, "https://tenant.example.com/api/v1/oauth2/token");
        assert_string_equal(ep.jwks_uri, "https://tenant.example.com/api/v1/oauth2/keys");
        assert_string_equal(ep.userinfo_endpoint,
                            "https://tenant.example.com/api/v1/oauth2/userinfo");
        assert_string_equal(ep.revocation_endpoint,
                            "https://tenant.example.com/api/v1/oauth2/revoke");
        assert_non_null(ep.id_token_algs);
        assert_int_equal(lk_strv_length(ep.id_token_algs), 2);
        assert_string_equal(ep.id_token_algs[0], "RS256");
        assert_string_equal(ep.id_token_algs[1], "ES256");
        lk_endpoints_clear(&ep);
        assert_null(ep.token_endpoint);
        lk_endpoints_clear(&ep); /* twice is fine */
}

static void test_minimal(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};

        assert_int_equal(parse_doc(&c,
                "{\"issuer\":\"" ISSUER "\","
                "\"authorization_endpoint\":\"https://tenant.example.com/a\","
                "\"token_endpoint\":\"https://tenant.example.com/t\","
                "\"jwks_uri\":\"https://tenant.example.com/k\"}", &ep, &e), 0);
        assert_null(ep.userinfo_endpoint);
        assert_null(ep.revocation_endpoint);
        assert_null(ep.id_token_algs);
        lk_endpoints_clear(&ep);
}

/* RFC 9207: only a JSON true promises iss on every authorization response. */
static void test_iss_parameter(void **state)
{
        static const char *const values[] = { "true", "false", "\"true\"", "1", "null" };
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};

        assert_int_equal(parse_doc(&c, oneaccess_doc, &ep, &e), 0);
        assert_false(ep.iss_parameter);
        lk_endpoints_clear(&ep);
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                _cleanup_free_ char *doc = NULL;

                assert_true(asprintf(&doc,
                                     "{\"issuer\":\"" ISSUER "\","
                                     "\"authorization_endpoint\":\"https://tenant.example.com/a\","
                                     "\"token_endpoint\":\"https://tenant.example.com/t\","
                                     "\"jwks_uri\":\"https://tenant.example.com/k\","
                                     "\"authorization_response_iss_parameter_supported\":%s}",
                                     values[i]) > 0);
                assert_int_equal(parse_doc(&c, doc, &ep, &e), 0);
                assert_int_equal(ep.iss_parameter, i == 0);
                lk_endpoints_clear(&ep);
        }
}

static void test_issuer_mismatch(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};

        assert_int_equal(parse_doc(&c,
                "{\"issuer\":\"https://evil.example.net/api/v1/oauth2\","
                "\"authorization_endpoint\":\"https://tenant.example.com/a\","
                "\"token_endpoint\":\"https://tenant.example.com/t\","
                "\"jwks_uri\":\"https://tenant.example.com/k\"}", &ep, &e),
                -LK_ERR_PROVIDER_RESPONSE);
        assert_string_equal(e.message,
                "discovery document names issuer https://evil.example.net/api/v1/oauth2, "
                "configured issuer is " ISSUER);
        assert_null(ep.token_endpoint);
}

static void test_issuer_trailing_slash(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};

        /* Exact comparison: a trailing slash is a different issuer. */
        assert_int_equal(parse_doc(&c,
                "{\"issuer\":\"" ISSUER "/\","
                "\"authorization_endpoint\":\"https://tenant.example.com/a\","
                "\"token_endpoint\":\"https://tenant.example.com/t\","
                "\"jwks_uri\":\"https://tenant.example.com/k\"}", &ep, &e),
                -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "names issuer " ISSUER "/, configured"));

        /* Nor is case folded. */
        assert_int_equal(parse_doc(&c,
                "{\"issuer\":\"https://TENANT.example.com/api/v1/oauth2\","
                "\"authorization_endpoint\":\"https://tenant.example.com/a\","
                "\"token_endpoint\":\"https://tenant.example.com/t\","
                "\"jwks_uri\":\"https://tenant.example.com/k\"}", &ep, &e),
                -LK_ERR_PROVIDER_RESPONSE);
}

static void test_issuer_missing(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};

        assert_int_equal(parse_doc(&c,
                "{\"authorization_endpoint\":\"https://tenant.example.com/a\","
                "\"token_endpoint\":\"https://tenant.example.com/t\","
                "\"jwks_uri\":\"https://tenant.example.com/k\"}", &ep, &e),
                -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "no issuer"));
        assert_int_equal(parse_doc(&c, "{\"issuer\":42}", &ep, &e), -LK_ERR_PROVIDER_RESPONSE);
}

static void test_missing_endpoint(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};

        assert_int_equal(parse_doc(&c,
                "{\"issuer\":\"" ISSUER "\","
                "\"authorization_endpoint\":\"https://tenant.example.com/a\","
                "\"jwks_uri\":\"https://tenant.example.com/k\"}", &ep, &e),
                -LK_ERR_PROVIDER_RESPONSE);
        assert_string_equal(e.message, "discovery document has no token_endpoint");

        assert_int_equal(parse_doc(&c,
                "{\"issuer\":\"" ISSUER "\","
                "\"authorization_endpoint\":\"https://tenant.example.com/a\","
                "\"token_endpoint\":\"https://tenant.example.com/t\"}", &ep, &e),
                -LK_ERR_PROVIDER_RESPONSE);
        assert_string_equal(e.message, "discovery document has no jwks_uri");

        assert_int_equal(parse_doc(&c,
                "{\"issuer\":\"" ISSUER "\","
                "\"authorization_endpoint\":[\"https://tenant.example.com/a\"],"
                "\"token_endpoint\":\"https://tenant.example.com/t\","
                "\"jwks_uri\":\"https://tenant.example.com/k\"}", &ep, &e),
                -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "authorization_endpoint is not a string"));
        assert_null(ep.token_endpoint);
}

static void test_http_endpoint(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};

        assert_int_equal(parse_doc(&c,
                "{\"issuer\":\"" ISSUER "\","
                "\"authorization_endpoint\":\"https://tenant.example.com/a\","
                "\"token_endpoint\":\"http://tenant.example.com/t\","
                "\"jwks_uri\":\"https://tenant.example.com/k\"}", &ep, &e),
                -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "discovery document"));
        assert_non_null(strstr(e.message, "token_endpoint"));
        assert_null(ep.token_endpoint);

        /* Plain HTTP to a loopback address is allowed (test providers). */
        c.issuer = "http://127.0.0.1:8080";
        assert_int_equal(parse_doc(&c,
                "{\"issuer\":\"http://127.0.0.1:8080\","
                "\"authorization_endpoint\":\"http://127.0.0.1:8080/a\","
                "\"token_endpoint\":\"http://127.0.0.1:8080/t\","
                "\"jwks_uri\":\"http://127.0.0.1:8080/k\"}", &ep, &e), 0);
        assert_string_equal(ep.token_endpoint, "http://127.0.0.1:8080/t");
        lk_endpoints_clear(&ep);

        /* An optional endpoint is checked too. */
        c.issuer = ISSUER;
        assert_int_equal(parse_doc(&c,
                "{\"issuer\":\"" ISSUER "\","
                "\"authorization_endpoint\":\"https://tenant.example.com/a\","
                "\"token_endpoint\":\"https://tenant.example.com/t\","
                "\"revocation_endpoint\":\"ftp://tenant.example.com/r\","
                "\"jwks_uri\":\"https://tenant.example.com/k\"}", &ep, &e),
                -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "revocation_endpoint"));
}

static void test_manual_override(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};

        c.token_endpoint = "https://proxy.example.com/token";
        c.revocation_endpoint = "https://proxy.example.com/revoke";
        assert_int_equal(parse_doc(&c, oneaccess_doc, &ep, &e), 0);
        assert_string_equal(ep.token_endpoint, "https://proxy.example.com/token");
        assert_string_equal(ep.revocation_endpoint, "https://proxy.example.com/revoke");
        assert_string_equal(ep.authorization_endpoint,
                            "https://tenant.example.com/api/v1/oauth2/authorize");
        lk_endpoints_clear(&ep);

        /* A hand-set endpoint fills in what the document lacks. */
        c.jwks_uri = "https://proxy.example.com/keys";
        assert_int_equal(parse_doc(&c,
                "{\"issuer\":\"" ISSUER "\","
                "\"authorization_endpoint\":\"https://tenant.example.com/a\"}", &ep, &e), 0);
        assert_string_equal(ep.jwks_uri, "https://proxy.example.com/keys");
        lk_endpoints_clear(&ep);
}

static void test_not_json(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};
        char *big;

        assert_int_equal(parse_doc(&c, "<html>Not Found</html>", &ep, &e),
                         -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "not valid JSON"));
        assert_int_equal(parse_doc(&c, "[1,2]", &ep, &e), -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "not a JSON object"));
        assert_int_equal(parse_doc(&c, "", &ep, &e), -LK_ERR_PROVIDER_RESPONSE);
        lk_error_clear(&e);
        assert_int_equal(lk_discovery_parse(&c, NULL, 0, &ep, &e), -LK_ERR_PROVIDER_RESPONSE);
        /* Duplicate keys could make two parsers disagree: refused. */
        assert_int_equal(parse_doc(&c, "{\"issuer\":\"" ISSUER "\",\"issuer\":\"" ISSUER "\"}",
                                   &ep, &e), -LK_ERR_PROVIDER_RESPONSE);

        big = malloc(LK_HTTP_MAX_BODY + 2);
        assert_non_null(big);
        memset(big, ' ', LK_HTTP_MAX_BODY + 1);
        big[0] = '{';
        big[LK_HTTP_MAX_BODY] = '}';
        big[LK_HTTP_MAX_BODY + 1] = 0;
        assert_int_equal(parse_doc(&c, big, &ep, &e), -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "larger than"));
        free(big);
}

static void test_algs(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};

#define DOC_WITH_ALGS(a)                                                                \
        "{\"issuer\":\"" ISSUER "\","                                                   \
        "\"authorization_endpoint\":\"https://tenant.example.com/a\","                  \
        "\"token_endpoint\":\"https://tenant.example.com/t\","                          \
        "\"jwks_uri\":\"https://tenant.example.com/k\","                                \
        "\"id_token_signing_alg_values_supported\":" a "}"

        assert_int_equal(parse_doc(&c, DOC_WITH_ALGS("[]"), &ep, &e), 0);
        assert_non_null(ep.id_token_algs);
        assert_int_equal(lk_strv_length(ep.id_token_algs), 0);
        lk_endpoints_clear(&ep);

        assert_int_equal(parse_doc(&c, DOC_WITH_ALGS("\"RS256\""), &ep, &e),
                         -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "not an array"));
        assert_int_equal(parse_doc(&c, DOC_WITH_ALGS("[\"RS256\",7]"), &ep, &e),
                         -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "[1]"));
        assert_null(ep.id_token_algs);
#undef DOC_WITH_ALGS
}

static void test_from_config(void **state)
{
        struct lk_config c = config();
        struct lk_endpoints ep = {0};
        struct lk_error e = {0};

        c.discovery = false;
        c.authorization_endpoint = "https://tenant.example.com/api/v1/oauth2/authorize";
        c.token_endpoint = "https://tenant.example.com/api/v1/oauth2/token";
        assert_int_equal(lk_endpoints_from_config(&c, &ep, &e), -LK_ERR_CONFIG);
        assert_non_null(strstr(e.message, "jwks_uri"));
        assert_null(ep.token_endpoint);

        lk_error_clear(&e);
        c.jwks_uri = "https://tenant.example.com/api/v1/oauth2/keys";
        assert_int_equal(lk_endpoints_from_config(&c, &ep, &e), 0);
        assert_string_equal(ep.token_endpoint, c.token_endpoint);
        assert_string_equal(ep.jwks_uri, c.jwks_uri);
        assert_ptr_not_equal(ep.jwks_uri, c.jwks_uri);
        assert_null(ep.userinfo_endpoint);
        assert_null(ep.id_token_algs);
        lk_endpoints_clear(&ep);

        c.token_endpoint = "http://tenant.example.com/token";
        assert_int_not_equal(lk_endpoints_from_config(&c, &ep, &e), 0);
        assert_null(ep.token_endpoint);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_url),
                cmocka_unit_test(test_url_bad),
                cmocka_unit_test(test_good),
                cmocka_unit_test(test_minimal),
                cmocka_unit_test(test_iss_parameter),
                cmocka_unit_test(test_issuer_mismatch),
                cmocka_unit_test(test_issuer_trailing_slash),
                cmocka_unit_test(test_issuer_missing),
                cmocka_unit_test(test_missing_endpoint),
                cmocka_unit_test(test_http_endpoint),
                cmocka_unit_test(test_manual_override),
                cmocka_unit_test(test_not_json),
                cmocka_unit_test(test_algs),
                cmocka_unit_test(test_from_config),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
