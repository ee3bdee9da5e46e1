/* SPDX-License-Identifier: MIT */
/*
 * The device authorization grant, network-free (oidc/device.c, and its requests in token.c):
 * the device authorization answer, what each poll answer means, the request bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "oidc/device.h"
#include "oidc/discovery.h"
#include "oidc/token.h"

#define JSON "application/json"
#define GOOD "{\"device_code\":\"dc-123\",\"user_code\":\"WDJB-MJHT\"," \
             "\"verification_uri\":\"https://idp.example.com/device\"," \
             "\"verification_uri_complete\":\"https://idp.example.com/device?user_code=WDJB-MJHT\"," \
             "\"expires_in\":1800,\"interval\":7}"

static int parse(const char *body, struct lk_device_auth *d, struct lk_error *e)
{
        *d = (struct lk_device_auth){0};
        *e = (struct lk_error){0};
        return lk_device_auth_parse(200, JSON, body, strlen(body), d, e);
}

static void test_parse_good(void **state)
{
        struct lk_device_auth d;
        struct lk_error e;

        assert_int_equal(parse(GOOD, &d, &e), 0);
        assert_string_equal(d.device_code, "dc-123");
        assert_string_equal(d.user_code, "WDJB-MJHT");
        assert_string_equal(d.verification_uri, "https://idp.example.com/device");
        assert_string_equal(d.verification_uri_complete,
                            "https://idp.example.com/device?user_code=WDJB-MJHT");
        assert_int_equal(d.expires_in, 1800);
        assert_int_equal(d.interval, 7);
        lk_device_auth_clear(&d);

        /* interval defaults to 5; Google's verification_url; no _complete */
        assert_int_equal(parse("{\"device_code\":\"a\",\"user_code\":\"B\",\"verification_url\":"
                               "\"https://www.google.com/device\",\"expires_in\":60}",
                               &d, &e),
                         0);
        assert_int_equal(d.interval, LK_DEVICE_INTERVAL_DEFAULT);
        assert_null(d.verification_uri_complete);
        assert_string_equal(d.verification_uri, "https://www.google.com/device");
        lk_device_auth_clear(&d);
}

static void refused(const char *body, const char *words)
{
        struct lk_device_auth d;
        struct lk_error e;

        assert_int_equal(parse(body, &d, &e), -LK_ERR_PROVIDER_RESPONSE);
        assert_null(d.device_code);
        if (!strstr(e.message, words)) {
                fprintf(stderr, "message: %s\n", e.message);
                fail();
        }
        /* The device code never reaches a message. */
        assert_null(strstr(e.message, "secret-device-code"));
}

static void test_parse_bad(void **state)
{
        refused("[]", "not a JSON object");
        refused("{\"device_code\":", "not valid JSON");
        refused("{\"user_code\":\"B\",\"verification_uri\":\"https://x.example/\",\"expires_in\":5}",
                "no device_code");
        refused("{\"device_code\":\"secret-device-code\",\"verification_uri\":"
                "\"https://x.example/\",\"expires_in\":5}",
                "no user_code");
        refused("{\"device_code\":\"secret-device-code\",\"user_code\":\"B\",\"expires_in\":5}",
                "no verification_uri");
        refused("{\"device_code\":\"secret-device-code\",\"user_code\":\"B\","
                "\"verification_uri\":\"http://evil.example/\",\"expires_in\":5}",
                "verification_uri");
        refused("{\"device_code\":\"secret-device-code\",\"user_code\":\"B\\u001b[2J\","
                "\"verification_uri\":\"https://x.example/\",\"expires_in\":5}",
                "printable ASCII");
        refused("{\"device_code\":\"secret-device-code\",\"user_code\":\"B\","
                "\"verification_uri\":\"https://x.example/\"}",
                "no expires_in");
        refused("{\"device_code\":\"secret-device-code\",\"user_code\":\"B\","
                "\"verification_uri\":\"https://x.example/\",\"expires_in\":5,\"interval\":0}",
                "interval");
        refused("{\"device_code\":\"secret-device-code\",\"user_code\":\"B\","
                "\"verification_uri\":\"https://x.example/\",\"expires_in\":5,\"interval\":61}",
                "interval");
        refused("{\"device_code\":\"secret-device-code\",\"user_code\":\"B\","
                "\"verification_uri\":\"https://x.example/\",\"expires_in\":86401}",
                "expires_in");
        refused("{\"device_code\":\"secret-device-code\",\"user_code\":"
                "\"0123456789012345678901234567890123456789012345678901234567890123456789\","
                "\"verification_uri\":\"https://x.example/\",\"expires_in\":5}",
                "longer than 64");
}

static void test_parse_status(void **state)
{
        static const char body[] = "{\"error\":\"invalid_client\"}";
        struct lk_device_auth d = {0};
        struct lk_error e = {0};

        assert_int_equal(lk_device_auth_parse(401, JSON, body, strlen(body), &d, &e),
                         -LK_ERR_CLIENT_REFUSED);
        e = (struct lk_error){0};
        assert_int_equal(lk_device_auth_parse(503, NULL, "", 0, &d, &e),
                         -LK_ERR_PROVIDER_UNAVAILABLE);
        e = (struct lk_error){0};
        assert_int_equal(lk_device_auth_parse(200, "text/html", GOOD, strlen(GOOD), &d, &e),
                         -LK_ERR_PROVIDER_RESPONSE);
}

static enum lk_device_outcome outcome_of(long status, const char *body)
{
        struct lk_error e = {0};

        lk_token_error_parse(status, body, body ? strlen(body) : 0, &e);
        return lk_device_outcome(&e);
}

static void test_outcome(void **state)
{
        assert_int_equal(outcome_of(400, "{\"error\":\"authorization_pending\"}"),
                         LK_DEVICE_PENDING);
        assert_int_equal(outcome_of(400, "{\"error\":\"slow_down\"}"), LK_DEVICE_SLOW_DOWN);
        assert_int_equal(outcome_of(429, NULL), LK_DEVICE_SLOW_DOWN);
        assert_int_equal(outcome_of(400, "{\"error\":\"access_denied\"}"), LK_DEVICE_DENIED);
        assert_int_equal(outcome_of(400, "{\"error\":\"expired_token\"}"), LK_DEVICE_EXPIRED);
        assert_int_equal(outcome_of(503, NULL), LK_DEVICE_RETRY);
        assert_int_equal(outcome_of(400, "{\"error\":\"invalid_grant\"}"), LK_DEVICE_FAILED);
        assert_int_equal(outcome_of(401, "{\"error\":\"invalid_client\"}"), LK_DEVICE_FAILED);
}

static char *scopes[] = { "openid", "profile", NULL };

static void test_requests(void **state)
{
        struct lk_config c = {
                .client_id = "latchkey", .client_secret = "s3cr:t", .scopes = scopes,
                .client_auth = LK_CLIENT_AUTH_POST,
        };
        struct lk_token_request r = {0};
        struct lk_error e = {0};

        assert_int_equal(lk_token_request_device_authorization(
                             &c, "https://idp.example.com/device_authorization", &r, &e),
                         0);
        assert_string_equal(r.form, "scope=openid+profile&client_id=latchkey&client_secret=s3cr%3At");
        lk_token_request_clear(&r);

        c.client_auth = LK_CLIENT_AUTH_BASIC;
        assert_int_equal(lk_token_request_device_code(&c, "https://idp.example.com/token",
                                                      "dc 1", &r, &e),
                         0);
        assert_string_equal(r.form, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
                                    "&device_code=dc+1");
        assert_string_equal(r.basic_user, "latchkey");
        assert_string_equal(r.basic_password, "s3cr%3At");
        lk_token_request_clear(&r);

        assert_int_equal(lk_token_request_device_authorization(&c, NULL, &r, &e), -LK_ERR_CONFIG);
}

static void test_flow_choice(void **state)
{
        struct lk_config c = { .flow = LK_FLOW_AUTO };
        struct lk_endpoints with = { .device_authorization_endpoint = "https://x.example/d" };
        struct lk_endpoints without = {0};

        assert_int_equal(lk_endpoints_flow(&c, &with), LK_FLOW_DEVICE);
        assert_int_equal(lk_endpoints_flow(&c, &without), LK_FLOW_CODE);
        c.flow = LK_FLOW_CODE;
        assert_int_equal(lk_endpoints_flow(&c, &with), LK_FLOW_CODE);
        c.flow = LK_FLOW_DEVICE;
        assert_int_equal(lk_endpoints_flow(&c, &without), LK_FLOW_DEVICE);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_good),   cmocka_unit_test(test_parse_bad),
            cmocka_unit_test(test_parse_status), cmocka_unit_test(test_outcome),
            cmocka_unit_test(test_requests),     cmocka_unit_test(test_flow_choice),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
