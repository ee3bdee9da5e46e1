/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "oidc/token.h"

#define NOW 1700000000
#define TOKEN_URL "https://tenant.example.com/api/v1/oauth2/token"
#define JSON "application/json"

static char *scopes[] = { "openid", NULL };

static struct lk_config config(enum lk_client_auth auth, char *secret)
{
        return (struct lk_config){
                .issuer = "https://tenant.example.com/api/v1/oauth2",
                .client_id = "latchkey",
                .client_secret = secret,
                .client_auth = auth,
                .redirect_uri = "https://login.example.com/callback",
                .scopes = scopes,
                .pkce = true,
        };
}

/* Form-decodes one value ('+' is a space, then %XX). */
static char *form_decode(const char *s, size_t len)
{
        char *copy = strndup(s, len), *dec, *out;
        int outlen;

        for (char *p = copy; *p; p++)
                if (*p == '+')
                        *p = ' ';
        dec = curl_easy_unescape(NULL, copy, 0, &outlen);
        out = strdup(dec);
        curl_free(dec);
        free(copy);
        return out;
}

/* The decoded value of name in a form body, NULL when absent; fails on duplicates. */
static char *form_get(const char *form, const char *name)
{
        size_t ln = strlen(name);
        char *found = NULL;

        for (const char *p = form; p && *p;) {
                const char *amp = strchr(p, '&');
                size_t len = amp ? (size_t)(amp - p) : strlen(p);

                /* Every piece is name=value, with only form-safe characters. */
                assert_non_null(memchr(p, '=', len));
                for (size_t i = 0; i < len; i++)
                        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                               "0123456789-._~%+=", p[i]));
                if (len > ln && strncmp(p, name, ln) == 0 && p[ln] == '=') {
                        assert_null(found);
                        found = form_decode(p + ln + 1, len - ln - 1);
                }
                p = amp ? amp + 1 : NULL;
        }
        return found;
}

static void check_form(const char *form, const char *name, const char *want)
{
        char *v = form_get(form, name);

        if (!want) {
                assert_null(v);
                return;
        }
        assert_non_null(v);
        assert_string_equal(v, want);
        free(v);
}

static void test_code_post(void **state)
{
        struct lk_config c = config(LK_CLIENT_AUTH_POST, "s3cr&t=+ %x");
        struct lk_token_request req = {0};
        struct lk_error e = {0};

        assert_int_equal(lk_token_request_code(&c, TOKEN_URL, "SplxlOBe/ZQQ+YbY=", "ver-ifier_~",
                                               &req, &e), 0);
        assert_string_equal(req.url, TOKEN_URL);
        assert_null(req.basic_user);
        assert_null(req.basic_password);
        check_form(req.form, "grant_type", "authorization_code");
        check_form(req.form, "code", "SplxlOBe/ZQQ+YbY=");
        check_form(req.form, "redirect_uri", "https://login.example.com/callback");
        check_form(req.form, "code_verifier", "ver-ifier_~");
        check_form(req.form, "client_id", "latchkey");
        check_form(req.form, "client_secret", "s3cr&t=+ %x");
        assert_int_equal(strncmp(req.form, "grant_type=authorization_code&", 30), 0);
        /* RFC 6749 Appendix B: a space is '+', a '+' is %2B. */
        assert_non_null(strstr(req.form, "client_secret=s3cr%26t%3D%2B+%25x"));
        lk_token_request_clear(&req);
        assert_null(req.form);
        lk_token_request_clear(&req);
}

static void test_code_basic(void **state)
{
        struct lk_config c = config(LK_CLIENT_AUTH_BASIC, "pa:ss+w rd/%");
        struct lk_token_request req = {0};
        struct lk_error e = {0};
        char *dec;

        c.client_id = "my app:1+x";
        assert_int_equal(lk_token_request_code(&c, TOKEN_URL, "abc", "verifier", &req, &e), 0);
        check_form(req.form, "client_id", NULL);
        check_form(req.form, "client_secret", NULL);
        check_form(req.form, "code", "abc");
        check_form(req.form, "code_verifier", "verifier");

        /*
         * RFC 6749 §2.3.1: each form-encoded before Basic; so a ':' in the id
         * cannot split user from password, and the server decodes them back.
         */
        assert_string_equal(req.basic_user, "my+app%3A1%2Bx");
        assert_string_equal(req.basic_password, "pa%3Ass%2Bw+rd%2F%25");
        assert_null(strchr(req.basic_user, ':'));
        dec = form_decode(req.basic_user, strlen(req.basic_user));
        assert_string_equal(dec, "my app:1+x");
        free(dec);
        dec = form_decode(req.basic_password, strlen(req.basic_password));
        assert_string_equal(dec, "pa:ss+w rd/%");
        free(dec);
        lk_token_request_clear(&req);
}

static void test_public_client(void **state)
{
        /* No secret: client_id goes in the body, whatever client_auth says; no Basic. */
        struct lk_config c = config(LK_CLIENT_AUTH_BASIC, NULL);
        struct lk_token_request req = {0};
        struct lk_error e = {0};

        assert_int_equal(lk_token_request_code(&c, TOKEN_URL, "abc", NULL, &req, &e), 0);
        assert_null(req.basic_user);
        assert_null(req.basic_password);
        check_form(req.form, "client_id", "latchkey");
        check_form(req.form, "client_secret", NULL);
        check_form(req.form, "code_verifier", NULL);
        lk_token_request_clear(&req);

        c.client_auth = LK_CLIENT_AUTH_POST;
        c.client_secret = "";
        assert_int_equal(lk_token_request_code(&c, TOKEN_URL, "abc", NULL, &req, &e), 0);
        check_form(req.form, "client_secret", NULL);
        lk_token_request_clear(&req);
}

static void test_refresh_form(void **state)
{
        struct lk_config c = config(LK_CLIENT_AUTH_POST, "secret");
        struct lk_token_request req = {0};
        struct lk_error e = {0};

        assert_int_equal(lk_token_request_refresh(&c, TOKEN_URL, "8xLOxBtZp8+/=", &req, &e), 0);
        assert_string_equal(req.url, TOKEN_URL);
        check_form(req.form, "grant_type", "refresh_token");
        check_form(req.form, "refresh_token", "8xLOxBtZp8+/=");
        check_form(req.form, "client_id", "latchkey");
        check_form(req.form, "client_secret", "secret");
        check_form(req.form, "code", NULL);
        check_form(req.form, "redirect_uri", NULL);
        lk_token_request_clear(&req);

        c.client_auth = LK_CLIENT_AUTH_BASIC;
        assert_int_equal(lk_token_request_refresh(&c, TOKEN_URL, "rt", &req, &e), 0);
        check_form(req.form, "client_id", NULL);
        assert_string_equal(req.basic_user, "latchkey");
        assert_string_equal(req.basic_password, "secret");
        lk_token_request_clear(&req);
}

/* A narrower token (issue 22): scope, and the audience under the configured parameter. */
static void test_refresh_for_form(void **state)
{
        struct lk_config c = config(LK_CLIENT_AUTH_POST, "secret");
        struct lk_token_request req = {0};
        struct lk_error e = {0};

        assert_int_equal(lk_token_request_refresh_for(&c, TOKEN_URL, "rt", "openid read",
                                                      "https://api.example.com/v1?x=1", &req,
                                                      &e), 0);
        check_form(req.form, "grant_type", "refresh_token");
        check_form(req.form, "scope", "openid read");
        check_form(req.form, "resource", "https://api.example.com/v1?x=1");
        check_form(req.form, "audience", NULL);
        lk_token_request_clear(&req);

        c.audience_parameter = LK_AUDIENCE_AUDIENCE;
        assert_int_equal(lk_token_request_refresh_for(&c, TOKEN_URL, "rt", NULL, "my-api", &req,
                                                      &e), 0);
        check_form(req.form, "audience", "my-api");
        check_form(req.form, "resource", NULL);
        check_form(req.form, "scope", NULL);
        lk_token_request_clear(&req);
}

static void test_revoke_form(void **state)
{
        struct lk_config c = config(LK_CLIENT_AUTH_POST, "secret");
        struct lk_token_request req = {0};
        struct lk_error e = {0};

        assert_int_equal(lk_token_request_revoke(&c, "https://tenant.example.com/revoke", "tok en",
                                                 "refresh_token", &req, &e), 0);
        assert_string_equal(req.url, "https://tenant.example.com/revoke");
        check_form(req.form, "token", "tok en");
        check_form(req.form, "token_type_hint", "refresh_token");
        check_form(req.form, "client_id", "latchkey");
        check_form(req.form, "client_secret", "secret");
        check_form(req.form, "grant_type", NULL);
        lk_token_request_clear(&req);

        assert_int_equal(lk_token_request_revoke(&c, "https://tenant.example.com/revoke", "t",
                                                 NULL, &req, &e), 0);
        check_form(req.form, "token_type_hint", NULL);
        lk_token_request_clear(&req);
}

static void test_request_errors(void **state)
{
        struct lk_config c = config(LK_CLIENT_AUTH_POST, "secret");
        struct lk_token_request req = {0};
        struct lk_error e = {0};

        assert_int_equal(lk_token_request_code(&c, NULL, "abc", NULL, &req, &e), -LK_ERR_CONFIG);
        assert_int_equal(lk_token_request_code(&c, TOKEN_URL, "", NULL, &req, &e),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_token_request_refresh(&c, TOKEN_URL, NULL, &req, &e),
                         -LK_ERR_INVALID_ARGUMENT);
        assert_int_equal(lk_token_request_revoke(&c, NULL, "t", NULL, &req, &e), -LK_ERR_CONFIG);
        c.client_id = NULL;
        assert_int_equal(lk_token_request_code(&c, TOKEN_URL, "abc", NULL, &req, &e),
                         -LK_ERR_CONFIG);
        assert_null(req.url);
        assert_null(req.form);
}

/* ---- responses ---- */

static struct lk_error err;

static int respond(long status, const char *type, const char *body, struct lk_tokens *t)
{
        lk_error_clear(&err);
        *t = (struct lk_tokens){0};
        return lk_token_response_parse(status, type, body, body ? strlen(body) : 0, NOW, t, &err);
}

/* Expects a failure with code want; message must mention needle (when given). */
static void refuse(long status, const char *type, const char *body, int want, const char *needle)
{
        struct lk_tokens t;

        assert_int_equal(respond(status, type, body, &t), want);
        assert_null(t.access_token);
        assert_int_equal(err.code, -want);
        if (needle && !strstr(err.message, needle))
                fail_msg("message '%s' lacks '%s'", err.message, needle);
        /* No token from the body ever reaches the message. */
        assert_null(strstr(err.message, "2YotnFZFEjr1zCsicMWpAA"));
}

#define GOOD_ID_TOKEN "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"

static void test_response_good(void **state)
{
        struct lk_tokens t;

        assert_int_equal(respond(200, "application/json;charset=UTF-8",
                                 "{\"access_token\":\"2YotnFZFEjr1zCsicMWpAA\","
                                 "\"token_type\":\"Bearer\",\"expires_in\":3600,"
                                 "\"refresh_token\":\"tGzv3JOkF0XG5Qx2TlKWIA\","
                                 "\"id_token\":\"" GOOD_ID_TOKEN "\","
                                 "\"scope\":\"openid profile\"}", &t), 0);
        assert_string_equal(t.access_token, "2YotnFZFEjr1zCsicMWpAA");
        assert_string_equal(t.refresh_token, "tGzv3JOkF0XG5Qx2TlKWIA");
        assert_string_equal(t.id_token, GOOD_ID_TOKEN);
        assert_string_equal(t.token_type, "Bearer");
        assert_string_equal(t.scope, "openid profile");
        assert_int_equal(t.expires_at, NOW + 3600);
        lk_tokens_clear(&t);
        assert_null(t.access_token);
        assert_int_equal(t.expires_at, 0);
        lk_tokens_clear(&t);
}

static void test_response_minimal(void **state)
{
        struct lk_tokens t;

        assert_int_equal(respond(200, JSON,
                                 "{\"access_token\":\"2YotnFZFEjr1zCsicMWpAA\","
                                 "\"token_type\":\"bearer\"}", &t), 0);
        assert_int_equal(t.expires_at, 0);
        assert_null(t.refresh_token);
        assert_null(t.id_token);
        assert_null(t.scope);
        lk_tokens_clear(&t);
}

static void test_expires_in_string(void **state)
{
        struct lk_tokens t;

        /* OneAccess documents a string. */
        assert_int_equal(respond(200, JSON,
                                 "{\"access_token\":\"at\",\"token_type\":\"Bearer\","
                                 "\"expires_in\":\"7200\"}", &t), 0);
        assert_int_equal(t.expires_at, NOW + 7200);
        lk_tokens_clear(&t);
        assert_int_equal(respond(200, JSON,
                                 "{\"access_token\":\"at\",\"token_type\":\"Bearer\","
                                 "\"expires_in\":3600.0}", &t), 0);
        assert_int_equal(t.expires_at, NOW + 3600);
        lk_tokens_clear(&t);
}

static void test_expires_in_bad(void **state)
{
#define WITH_EXPIRES(x) "{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"expires_in\":" x "}"
        refuse(200, JSON, WITH_EXPIRES("\"12abc\""), -LK_ERR_PROVIDER_RESPONSE,
               "expires_in '12abc' is not a whole number");
        refuse(200, JSON, WITH_EXPIRES("-5"), -LK_ERR_PROVIDER_RESPONSE, "out of range");
        refuse(200, JSON, WITH_EXPIRES("0"), -LK_ERR_PROVIDER_RESPONSE, "out of range");
        refuse(200, JSON, WITH_EXPIRES("\"-5\""), -LK_ERR_PROVIDER_RESPONSE, "expires_in");
        refuse(200, JSON, WITH_EXPIRES("\"\""), -LK_ERR_PROVIDER_RESPONSE, "expires_in");
        refuse(200, JSON, WITH_EXPIRES("\" 3600\""), -LK_ERR_PROVIDER_RESPONSE, "expires_in");
        refuse(200, JSON, WITH_EXPIRES("3599.5"), -LK_ERR_PROVIDER_RESPONSE, "expires_in");
        refuse(200, JSON, WITH_EXPIRES("true"), -LK_ERR_PROVIDER_RESPONSE,
               "neither a number nor a string");
        refuse(200, JSON, WITH_EXPIRES("315360001"), -LK_ERR_PROVIDER_RESPONSE, "10 years");
        refuse(200, JSON, WITH_EXPIRES("\"99999999999999999999\""), -LK_ERR_PROVIDER_RESPONSE,
               "expires_in");
        refuse(200, JSON, WITH_EXPIRES("9223372036854775807"), -LK_ERR_PROVIDER_RESPONSE,
               "out of range");
        refuse(200, JSON, WITH_EXPIRES("1e300"), -LK_ERR_PROVIDER_RESPONSE, "expires_in");
#undef WITH_EXPIRES
}

static void test_token_type(void **state)
{
        struct lk_tokens t;

        assert_int_equal(respond(200, JSON, "{\"access_token\":\"at\",\"token_type\":\"BEARER\"}",
                                 &t), 0);
        assert_string_equal(t.token_type, "Bearer");
        lk_tokens_clear(&t);
        assert_int_equal(respond(200, JSON, "{\"access_token\":\"at\",\"token_type\":\"bearer\"}",
                                 &t), 0);
        assert_string_equal(t.token_type, "Bearer");
        lk_tokens_clear(&t);

        refuse(200, JSON, "{\"access_token\":\"at\",\"token_type\":\"mac\"}",
               -LK_ERR_PROVIDER_RESPONSE, "token_type is 'mac', not Bearer");
        refuse(200, JSON, "{\"access_token\":\"at\",\"token_type\":\"DPoP\"}",
               -LK_ERR_PROVIDER_RESPONSE, "not Bearer");
        refuse(200, JSON, "{\"access_token\":\"at\"}", -LK_ERR_PROVIDER_RESPONSE,
               "no token_type");
        refuse(200, JSON, "{\"access_token\":\"at\",\"token_type\":1}",
               -LK_ERR_PROVIDER_RESPONSE, "token_type is not a string");
}

static void test_access_token_bad(void **state)
{
        refuse(200, JSON, "{\"token_type\":\"Bearer\",\"expires_in\":3600}",
               -LK_ERR_PROVIDER_RESPONSE, "has no access_token");
        refuse(200, JSON, "{\"access_token\":42,\"token_type\":\"Bearer\"}",
               -LK_ERR_PROVIDER_RESPONSE, "access_token is not a string");
        refuse(200, JSON, "{\"access_token\":\"\",\"token_type\":\"Bearer\"}",
               -LK_ERR_PROVIDER_RESPONSE, "access_token is empty");
        refuse(200, JSON, "{\"access_token\":\"a\\r\\nX-Evil: 1\",\"token_type\":\"Bearer\"}",
               -LK_ERR_PROVIDER_RESPONSE, "printable ASCII");
        refuse(200, JSON, "{\"access_token\":\"a\\u0000b\",\"token_type\":\"Bearer\"}",
               -LK_ERR_PROVIDER_RESPONSE, "not valid JSON");
}

static void test_optional_non_string(void **state)
{
        refuse(200, JSON, "{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"refresh_token\":7}",
               -LK_ERR_PROVIDER_RESPONSE, "refresh_token is not a string");
        refuse(200, JSON, "{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"id_token\":{}}",
               -LK_ERR_PROVIDER_RESPONSE, "id_token is not a string");
        refuse(200, JSON, "{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"scope\":[\"a\"]}",
               -LK_ERR_PROVIDER_RESPONSE, "scope is not a string");
}

static void test_invalid_grant(void **state)
{
        refuse(400, JSON, "{\"error\":\"invalid_grant\","
                          "\"error_description\":\"Invalid authorization code\"}",
               -LK_ERR_INVALID_GRANT, NULL);
        assert_string_equal(err.message,
                            "The provider refused the request: invalid_grant (Invalid "
                            "authorization code)");
        assert_string_equal(err.provider_error, "invalid_grant");
        assert_string_equal(err.provider_description, "Invalid authorization code");
}

/* Providers answer a dead refresh token with invalid_request too: a refusal all the same. */
static void test_invalid_request(void **state)
{
        refuse(400, "application/json", "{\"error\":\"invalid_request\"}",
               -LK_ERR_INVALID_GRANT, NULL);
        assert_string_equal(err.message, "The provider refused the request: invalid_request");
        assert_string_equal(err.provider_error, "invalid_request");
        assert_string_equal(err.provider_description, "");
}

/* Our own registration refused: the admin's problem, said in words that say so. */
static void test_invalid_client(void **state)
{
        /* A mislabelled error body is read all the same. */
        refuse(401, "text/plain", "{\"error\":\"invalid_client\",\"error_description\":"
                                  "\"Client authentication failed\\n\\u001b[0m\"}",
               -LK_ERR_CLIENT_REFUSED, "(invalid_client: Client authentication failed\\n\\x1b[0m)");
        assert_string_equal(err.provider_error, "invalid_client");
        assert_non_null(strstr(err.message, "refused latchkey's client credentials"));
        assert_non_null(strstr(err.message, "client_id"));

        refuse(400, JSON, "{\"error\":\"unauthorized_client\"}", -LK_ERR_CLIENT_REFUSED,
               "client credentials");
        refuse(403, JSON, "{\"error\":\"invalid_client\"}", -LK_ERR_CLIENT_REFUSED,
               "invalid_client");
        /* In a 200, too. */
        refuse(200, JSON, "{\"error\":\"invalid_client\"}", -LK_ERR_CLIENT_REFUSED,
               "invalid_client");
}

/* Every refusal shape of SPEC §5 and issue 15, by status and body. */
static void test_refusal_shapes(void **state)
{
        /* Any 4xx with an OAuth error is a refusal, with the provider's words. */
        refuse(403, JSON, "{\"error\":\"invalid_grant\",\"error_description\":\"reused\"}",
               -LK_ERR_INVALID_GRANT, "invalid_grant (reused)");
        assert_string_equal(err.provider_error, "invalid_grant");
        assert_string_equal(err.provider_description, "reused");
        refuse(403, JSON, "{\"error\":\"access_denied\"}", -LK_ERR_INVALID_GRANT,
               "refused the request: access_denied");
        refuse(401, JSON, "{\"error\":\"invalid_grant\"}", -LK_ERR_INVALID_GRANT, NULL);
        refuse(404, JSON, "{\"error\":\"invalid_grant\"}", -LK_ERR_INVALID_GRANT, NULL);

        /* 400, 401, 403 without an OAuth body: refused (a dead refresh token, say). */
        refuse(400, NULL, "", -LK_ERR_INVALID_GRANT, "HTTP 400, without an OAuth error");
        assert_string_equal(err.provider_error, "");
        refuse(401, NULL, NULL, -LK_ERR_INVALID_GRANT, "HTTP 401");
        refuse(401, "text/html", "<html>Unauthorized</html>", -LK_ERR_INVALID_GRANT,
               "HTTP 401, without an OAuth error");
        refuse(403, "text/html", "<html>Forbidden</html>", -LK_ERR_INVALID_GRANT, "HTTP 403");
        refuse(400, JSON, "{\"error\":5}", -LK_ERR_INVALID_GRANT, "HTTP 400");

        /* 429: too many requests, whatever the body says. */
        refuse(429, NULL, "", -LK_ERR_TOO_MANY_REQUESTS, "HTTP 429");
        refuse(429, JSON, "{\"error\":\"invalid_grant\"}", -LK_ERR_TOO_MANY_REQUESTS, "429");

        /* Other 4xx without an OAuth body: not a refusal, an answer we cannot use. */
        refuse(404, "text/html", "<h1>Not Found</h1>", -LK_ERR_PROVIDER_RESPONSE, "HTTP 404");
        refuse(405, NULL, "", -LK_ERR_PROVIDER_RESPONSE, "HTTP 405");
}

static void test_server_errors(void **state)
{
        refuse(500, "text/html", "<h1>Internal Server Error</h1>", -LK_ERR_PROVIDER_UNAVAILABLE,
               NULL);
        assert_string_equal(err.message, "provider answered HTTP 500");
        refuse(503, NULL, NULL, -LK_ERR_PROVIDER_UNAVAILABLE, NULL);
        assert_string_equal(err.message, "provider answered HTTP 503");
        refuse(503, JSON, "{\"error\":\"invalid_grant\"}", -LK_ERR_PROVIDER_UNAVAILABLE, NULL);
        refuse(404, "text/html", "<h1>Not Found</h1>", -LK_ERR_PROVIDER_RESPONSE, "HTTP 404");
        refuse(302, NULL, "", -LK_ERR_PROVIDER_RESPONSE, "HTTP 302");
        refuse(302, JSON, "{\"error\":\"access_denied\"}", -LK_ERR_PROVIDER_RESPONSE,
               "HTTP 302: access_denied");
}

static void test_wrong_content(void **state)
{
        struct lk_tokens t;

        refuse(200, "text/html; charset=utf-8", "<html>Sign in</html>",
               -LK_ERR_PROVIDER_RESPONSE, "content type text/html; charset=utf-8");
        refuse(200, NULL, "{\"access_token\":\"at\",\"token_type\":\"Bearer\"}",
               -LK_ERR_PROVIDER_RESPONSE, "no content type");
        refuse(200, "application/jsonp", "{}", -LK_ERR_PROVIDER_RESPONSE, "content type");
        refuse(200, JSON, "access_token=at&token_type=bearer", -LK_ERR_PROVIDER_RESPONSE,
               "not valid JSON");
        refuse(200, JSON, "{\"access_token\":\"at\",", -LK_ERR_PROVIDER_RESPONSE,
               "not valid JSON");
        refuse(200, JSON, "[{\"access_token\":\"at\",\"token_type\":\"Bearer\"}]",
               -LK_ERR_PROVIDER_RESPONSE, "not a JSON object");
        refuse(200, JSON, "\"at\"", -LK_ERR_PROVIDER_RESPONSE, "");
        refuse(200, JSON, "", -LK_ERR_PROVIDER_RESPONSE, "empty");

        /* Any case and parameters are fine. */
        assert_int_equal(respond(200, "Application/JSON ; charset=UTF-8",
                                 "{\"access_token\":\"at\",\"token_type\":\"Bearer\"}", &t), 0);
        lk_tokens_clear(&t);
}

static void test_too_big(void **state)
{
        static const char json[] = "{\"access_token\":\"at\",\"token_type\":\"Bearer\"}";
        size_t n = LK_HTTP_MAX_BODY + 1;
        char *body = malloc(n + 1);
        struct lk_tokens t = {0};
        int r;

        assert_non_null(body);
        memset(body, ' ', n);
        memcpy(body, json, sizeof(json) - 1);
        body[n] = 0;
        lk_error_clear(&err);
        r = lk_token_response_parse(200, JSON, body, n, NOW, &t, &err);
        assert_int_equal(r, -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(err.message, "larger than"));
        assert_null(t.access_token);

        /* At the cap exactly, it is read. */
        lk_error_clear(&err);
        r = lk_token_response_parse(200, JSON, body, n - 1, NOW, &t, &err);
        assert_int_equal(r, 0);
        lk_tokens_clear(&t);
        free(body);
}

static void test_error_in_200(void **state)
{
        refuse(200, JSON, "{\"error\":\"invalid_grant\",\"error_description\":\"expired\"}",
               -LK_ERR_INVALID_GRANT, "invalid_grant (expired)");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_code_post),
                cmocka_unit_test(test_code_basic),
                cmocka_unit_test(test_public_client),
                cmocka_unit_test(test_refresh_form),
                cmocka_unit_test(test_refresh_for_form),
                cmocka_unit_test(test_revoke_form),
                cmocka_unit_test(test_request_errors),
                cmocka_unit_test(test_response_good),
                cmocka_unit_test(test_response_minimal),
                cmocka_unit_test(test_expires_in_string),
                cmocka_unit_test(test_expires_in_bad),
                cmocka_unit_test(test_token_type),
                cmocka_unit_test(test_access_token_bad),
                cmocka_unit_test(test_optional_non_string),
                cmocka_unit_test(test_invalid_grant),
                cmocka_unit_test(test_invalid_request),
                cmocka_unit_test(test_invalid_client),
                cmocka_unit_test(test_refusal_shapes),
                cmocka_unit_test(test_server_errors),
                cmocka_unit_test(test_wrong_content),
                cmocka_unit_test(test_too_big),
                cmocka_unit_test(test_error_in_200),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
