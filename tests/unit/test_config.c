/* SPDX-License-Identifier: MIT */
/* latchkey.conf loading (SPEC §3): values, defaults, and problems that name file:line. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "oidc/config.h"

#define SECRET "s3cr3t-Value-that-must-never-show"

static char tmpdir[] = "/tmp/lk-test-config-XXXXXX";

static const char minimal[] =
        "[provider]\n"
        "issuer = https://idp.example.com\n"
        "client_id = latchkey\n"
        "redirect_uri = https://login.example.com/callback\n";

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static int group_setup(void **state)
{
        if (!mkdtemp(tmpdir))
                return -1;
        unsetenv("CREDENTIALS_DIRECTORY");
        return 0;
}

static int group_teardown(void **state)
{
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

/* tmpdir/name, in a buffer that lives as long as the test */
static const char *tpath(const char *name)
{
        static char bufs[8][512];
        static unsigned next;
        char *b = bufs[next++ % 8];

        snprintf(b, sizeof(bufs[0]), "%s/%s", tmpdir, name);
        return b;
}

static const char *write_file(const char *name, mode_t mode, const char *text)
{
        const char *p = tpath(name);
        int fd;

        unlink(p);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
        return p;
}

static struct lk_config *load_ok(const char *text)
{
        struct lk_config *c = NULL;
        struct lk_error e = {0};
        int r;

        r = lk_config_load_string(text, "test.conf", &c, NULL, &e);
        if (r < 0)
                fail_msg("expected success, got: %s", e.message);
        assert_non_null(c);
        return c;
}

/* Loads text that must fail; returns the first message, checks every problem for the secret. */
static void load_bad(const char *text, struct lk_config_problems *p, struct lk_error *e)
{
        struct lk_config *c = NULL;

        assert_int_equal(lk_config_load_string(text, "test.conf", &c, p, e), -LK_ERR_CONFIG);
        assert_null(c);
        assert_int_equal(e->code, LK_ERR_CONFIG);
        assert_null(strstr(e->message, SECRET));
        for (size_t i = 0; p && i < p->n; i++) {
                char *s = lk_config_problem_string(&p->items[i]);

                assert_non_null(s);
                assert_null(strstr(s, SECRET));
                free(s);
        }
}

/* minimal + extra lines, as one string */
static char *with(const char *extra)
{
        char *s;

        assert_true(asprintf(&s, "%s%s", minimal, extra) > 0);
        return s;
}

static void expect_error(const char *text, const char *message)
{
        struct lk_config_problems p = {0};
        struct lk_error e = {0};

        load_bad(text, &p, &e);
        if (!streq(e.message, message))
                fail_msg("expected '%s'\n     got '%s'", message, e.message);
        lk_config_problems_clear(&p);
}

static void test_full(void **state)
{
        _cleanup_(lk_config_freep) struct lk_config *c = NULL;

        c = load_ok("# the whole file\n"
                    "[provider]\n"
                    "issuer = https://tenant.example.com/api/v1/oauth2\n"
                    "discovery = no\n"
                    "authorization_endpoint = https://tenant.example.com/api/v1/oauth2/authorize\n"
                    "token_endpoint = https://tenant.example.com/api/v1/oauth2/token\n"
                    "jwks_uri = https://tenant.example.com/api/v1/oauth2/keys\n"
                    "userinfo_endpoint = https://tenant.example.com/api/v1/oauth2/userinfo\n"
                    "revocation_endpoint = https://tenant.example.com/api/v1/oauth2/revoke\n"
                    "client_id = abc123\n"
                    "client_secret = " SECRET "\n"
                    "client_auth = client_secret_basic\n"
                    "redirect_uri = https://login.example.com/callback\n"
                    "scopes = openid profile offline_access\n"
                    "prompt = consent\n"
                    "pkce = no\n"
                    "nonce = if-present\n"
                    "id_token_algorithms = RS256 HS256\n"
                    "ca_file = /dev/null\n"
                    "timeout = 30\n"
                    "clock_skew = 5\n"
                    "\n"
                    "; users\n"
                    "[users]\n"
                    "username_claim = email\n"
                    "strip_suffix = @example.com\n"
                    "allowed_users = alice, bob\n"
                    "allowed_groups = admins staff\n"
                    "groups_claim = roles\n"
                    "[sessions]\n"
                    "refresh_margin = 300\n"
                    "refresh_ahead = no\n"
                    "login_timeout = 120\n"
                    "revoke_on_close = yes\n"
                    "idle_exit = 0\n");

        assert_string_equal(c->issuer, "https://tenant.example.com/api/v1/oauth2");
        assert_false(c->discovery);
        assert_string_equal(c->authorization_endpoint,
                            "https://tenant.example.com/api/v1/oauth2/authorize");
        assert_string_equal(c->token_endpoint, "https://tenant.example.com/api/v1/oauth2/token");
        assert_string_equal(c->jwks_uri, "https://tenant.example.com/api/v1/oauth2/keys");
        assert_string_equal(c->userinfo_endpoint,
                            "https://tenant.example.com/api/v1/oauth2/userinfo");
        assert_string_equal(c->revocation_endpoint,
                            "https://tenant.example.com/api/v1/oauth2/revoke");
        assert_string_equal(c->client_id, "abc123");
        assert_string_equal(c->client_secret, SECRET);
        assert_string_equal(c->client_secret_source, "client_secret");
        assert_int_equal(c->client_auth, LK_CLIENT_AUTH_BASIC);
        assert_string_equal(c->redirect_uri, "https://login.example.com/callback");
        assert_int_equal(lk_strv_length(c->scopes), 3);
        assert_string_equal(c->scopes[0], "openid");
        assert_string_equal(c->scopes[1], "profile");
        assert_string_equal(c->scopes[2], "offline_access");
        assert_false(c->pkce);
        assert_int_equal(c->nonce, LK_NONCE_IF_PRESENT);
        assert_int_equal(c->algorithms, LK_ALG_RS256 | LK_ALG_HS256);
        assert_string_equal(c->ca_file, "/dev/null");
        assert_string_equal(c->prompt, "consent");
        assert_int_equal(c->timeout, 30);
        assert_int_equal(c->clock_skew, 5);
        assert_string_equal(c->username_claim, "email");
        assert_string_equal(c->strip_suffix, "@example.com");
        assert_int_equal(lk_strv_length(c->allowed_users), 2);
        assert_string_equal(c->allowed_users[1], "bob");
        assert_int_equal(lk_strv_length(c->allowed_groups), 2);
        assert_string_equal(c->allowed_groups[0], "admins");
        assert_string_equal(c->groups_claim, "roles");
        assert_int_equal(c->refresh_margin, 300);
        assert_false(c->refresh_ahead);
        assert_int_equal(c->login_timeout, 120);
        assert_true(c->revoke_on_close);
        assert_int_equal(c->idle_exit, 0);
}

static void test_defaults(void **state)
{
        _cleanup_(lk_config_freep) struct lk_config *c = load_ok(minimal);

        assert_true(c->discovery);
        assert_null(c->authorization_endpoint);
        assert_null(c->token_endpoint);
        assert_null(c->jwks_uri);
        assert_null(c->userinfo_endpoint);
        assert_null(c->revocation_endpoint);
        assert_null(c->client_secret);
        assert_null(c->client_secret_source);
        assert_int_equal(c->client_auth, LK_CLIENT_AUTH_POST);
        assert_int_equal(lk_strv_length(c->scopes), 2);
        assert_string_equal(c->scopes[0], "openid");
        assert_string_equal(c->scopes[1], "profile");
        assert_true(c->pkce);
        assert_int_equal(c->nonce, LK_NONCE_REQUIRED);
        assert_int_equal(c->algorithms, LK_ALG_DEFAULT);
        assert_null(c->ca_file);
        assert_null(c->prompt);
        assert_int_equal(c->timeout, 15);
        assert_int_equal(c->clock_skew, 60);
        assert_string_equal(c->username_claim, "preferred_username");
        assert_null(c->strip_suffix);
        assert_null(c->allowed_users);
        assert_null(c->allowed_groups);
        assert_string_equal(c->groups_claim, "groups");
        assert_int_equal(c->refresh_margin, 120);
        assert_true(c->refresh_ahead);
        assert_int_equal(c->login_timeout, 600);
        assert_false(c->revoke_on_close);
        assert_int_equal(c->idle_exit, 300);
        assert_int_equal(c->max_offline_days, 30);
        assert_false(c->offline_pin);
        assert_int_equal(c->pin_min_length, 4);
        assert_int_equal(c->argon2_memory, 65536);
        assert_int_equal(c->argon2_time, 3);
        assert_int_equal(c->argon2_parallelism, 1);
        assert_int_equal(c->lockout_after, 3);
        assert_int_equal(c->lockout_delay, 30);
        assert_int_equal(c->max_failures, 10);
}

/* [offline] and [accounts] (issue 21): set, and the bounds of the Argon2id parameters. */
static void test_offline_keys(void **state)
{
        _cleanup_free_ char *t = with("[accounts]\nmax_offline_days = 7\n[offline]\npin = yes\n"
                                      "argon2_memory = 8192\nargon2_time = 2\n"
                                      "argon2_parallelism = 2\nlockout_after = 5\n"
                                      "lockout_delay = 60\nmax_failures = 20\n"
                                      "pin_min_length = 6\n");
        _cleanup_free_ char *small = with("[offline]\nargon2_memory = 1024\n");
        _cleanup_free_ char *zero = with("[accounts]\nmax_offline_days = 0\n");
        struct lk_config *c = load_ok(t);

        assert_int_equal(c->max_offline_days, 7);
        assert_true(c->offline_pin);
        assert_int_equal(c->argon2_memory, 8192);
        assert_int_equal(c->argon2_time, 2);
        assert_int_equal(c->argon2_parallelism, 2);
        assert_int_equal(c->lockout_after, 5);
        assert_int_equal(c->lockout_delay, 60);
        assert_int_equal(c->max_failures, 20);
        assert_int_equal(c->pin_min_length, 6);
        lk_config_free(c);
        expect_error(small, "test.conf:6: [offline] argon2_memory: 1024 is out of range (8192..1048576)");
        expect_error(zero, "test.conf:6: [accounts] max_offline_days: 0 is out of range (1..3650)");
}

static void test_error_names_line(void **state)
{
        _cleanup_free_ char *t = with("timeout = abc\n");

        expect_error(t, "test.conf:5: [provider] timeout: 'abc' is not a number");
}

static void test_all_problems_collected(void **state)
{
        struct lk_config_problems p = {0};
        struct lk_error e = {0};
        _cleanup_free_ char *t = with("pkce = maybe\n"
                                      "[sessions]\n"
                                      "idle_exit = -1\n"
                                      "refresh_margin = 99999999999999999999999\n"
                                      "[users]\n"
                                      "colour = blue\n");

        load_bad(t, &p, &e);
        assert_int_equal(p.n, 4);
        assert_int_equal(p.items[0].line, 5);
        assert_string_equal(p.items[0].section, "provider");
        assert_string_equal(p.items[0].key, "pkce");
        assert_int_equal(p.items[1].line, 7);
        assert_string_equal(p.items[1].key, "idle_exit");
        assert_int_equal(p.items[2].line, 8);
        assert_int_equal(p.items[3].line, 10);
        assert_string_equal(p.items[3].file, "test.conf");
        assert_string_equal(p.items[3].message, "unknown key");
        /* The first one is also the error. */
        assert_string_equal(e.message, "test.conf:5: [provider] pkce: 'maybe' is not a boolean "
                                       "(yes, no, true, false, on, off, 1, 0)");
        lk_config_problems_clear(&p);
        assert_int_equal(p.n, 0);
        assert_null(p.items);
}

static void test_unknown_key(void **state)
{
        _cleanup_free_ char *a = with("client_sercet = " SECRET "\n");
        _cleanup_free_ char *b = with("allowed_users = alice\n");

        /* the value is never quoted: a mistyped key may hold a secret */
        expect_error(a, "test.conf:5: [provider] client_sercet: unknown key");
        expect_error(b, "test.conf:5: [provider] allowed_users: unknown key here; it belongs "
                        "under [users]");
}

static void test_unknown_section(void **state)
{
        struct lk_config_problems p = {0};
        struct lk_error e = {0};
        _cleanup_free_ char *t = with("[provder]\n"
                                      "timeout = abc\n"
                                      "[users]\n"
                                      "username_claim = sub\n");

        /* One problem: the keys under an unknown section are not judged again. */
        load_bad(t, &p, &e);
        assert_int_equal(p.n, 1);
        assert_string_equal(e.message, "test.conf:5: [provder]: unknown section (known: "
                                       "[provider], [users], [sessions], [callback], [accounts], "
                                       "[offline], [pam])");
        lk_config_problems_clear(&p);
}

/* [pam] is pam_latchkey's (issue 15): the broker takes its keys without a word, and names typos. */
static void test_pam_section(void **state)
{
        _cleanup_free_ char *good = with("[pam]\n"
                                         "services = sshd login\n"
                                         "users = alice, bob\n"
                                         "groups = sso\n"
                                         "[sessions]\n"
                                         "login_timeout = 300\n");
        _cleanup_free_ char *typo = with("[pam]\nservice = sshd\n");
        _cleanup_(lk_config_freep) struct lk_config *c = load_ok(good);

        assert_int_equal(c->login_timeout, 300);
        expect_error(typo, "test.conf:6: [pam] service: unknown key (known here: services, users, "
                           "groups, methods)");
}

static void test_outside_section(void **state)
{
        expect_error("timeout = 3\n[provider]\n",
                     "test.conf:1: timeout: is outside any section; put it under [provider]");
}

static void test_syntax_errors(void **state)
{
        struct lk_config_problems p = {0};
        struct lk_error e = {0};
        _cleanup_free_ char *t = with("just some words\n"
                                      "[users\n"
                                      "username_claim = sub\n"
                                      "[sessions] trailing\n");

        load_bad(t, &p, &e);
        assert_int_equal(p.n, 3);
        assert_string_equal(e.message, "test.conf:5: [provider]: expected 'key = value', a "
                                       "[section] header or a comment");
        assert_int_equal(p.items[1].line, 6);
        assert_string_equal(p.items[1].message, "section header without a closing ']'");
        assert_int_equal(p.items[2].line, 8);
        assert_string_equal(p.items[2].message, "unexpected text after ']'");
        lk_config_problems_clear(&p);
}

static void test_bad_numbers(void **state)
{
        static const char *const bad[] = { "abc", "-1", "+5", "0x10", "1.5", "15s",
                                           "99999999999999999999999" };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *t = NULL, *msg = NULL;

                assert_true(asprintf(&t, "%stimeout = %s\n", minimal, bad[i]) > 0);
                assert_true(asprintf(&msg, "test.conf:5: [provider] timeout: '%s' is not a number",
                                     bad[i]) > 0);
                expect_error(t, msg);
        }

        _cleanup_free_ char *zero = with("timeout = 0\n"), *big = with("timeout = 301\n");
        expect_error(zero, "test.conf:5: [provider] timeout: 0 is out of range (1..300)");
        expect_error(big, "test.conf:5: [provider] timeout: 301 is out of range (1..300)");

        _cleanup_free_ char *edge = with("timeout = 300\n[sessions]\nidle_exit = 0\n");
        _cleanup_(lk_config_freep) struct lk_config *c = load_ok(edge);
        assert_int_equal(c->timeout, 300);
        assert_int_equal(c->idle_exit, 0);
}

static void test_bools(void **state)
{
        static const struct {
                const char *text;
                bool value;
        } ok[] = { { "yes", true }, { "no", false }, { "true", true }, { "false", false },
                   { "1", true },   { "0", false }, { "on", true },   { "OFF", false } };

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                _cleanup_free_ char *t = NULL;

                assert_true(asprintf(&t, "%spkce = %s\n", minimal, ok[i].text) > 0);
                _cleanup_(lk_config_freep) struct lk_config *c = load_ok(t);
                assert_int_equal(c->pkce, ok[i].value);
        }

        _cleanup_free_ char *bad = with("discovery = yep\n"), *empty = with("discovery =\n");
        expect_error(bad, "test.conf:5: [provider] discovery: 'yep' is not a boolean (yes, no, "
                          "true, false, on, off, 1, 0)");
        expect_error(empty, "test.conf:5: [provider] discovery: '' is not a boolean (yes, no, "
                            "true, false, on, off, 1, 0)");
}

static void test_nonce(void **state)
{
        static const struct {
                const char *text;
                enum lk_nonce_mode mode;
        } ok[] = { { "required", LK_NONCE_REQUIRED },
                   { "if-present", LK_NONCE_IF_PRESENT },
                   { "off", LK_NONCE_OFF } };

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                _cleanup_free_ char *t = NULL;

                assert_true(asprintf(&t, "%snonce = %s\n", minimal, ok[i].text) > 0);
                _cleanup_(lk_config_freep) struct lk_config *c = load_ok(t);
                assert_int_equal(c->nonce, ok[i].mode);
        }
        _cleanup_free_ char *bad = with("nonce = sometimes\n");
        expect_error(bad, "test.conf:5: [provider] nonce: 'sometimes' is not one of required, "
                          "if-present, off");
}

static void test_flow(void **state)
{
        _cleanup_(lk_config_freep) struct lk_config *d = load_ok(minimal);
        _cleanup_free_ char *dev = with("flow = device\n"
                                        "device_authorization_endpoint = "
                                        "https://tenant.example.com/device\n");
        _cleanup_(lk_config_freep) struct lk_config *c = load_ok(dev);
        _cleanup_free_ char *bad = with("flow = polling\n");
        _cleanup_free_ char *manual = with("discovery = no\n"
                                           "authorization_endpoint = https://t.example.com/a\n"
                                           "token_endpoint = https://t.example.com/t\n"
                                           "jwks_uri = https://t.example.com/k\n"
                                           "flow = device\n");
        struct lk_config_problems p = {0};
        struct lk_error e = {0};
        bool found = false;

        assert_int_equal(d->flow, LK_FLOW_AUTO);
        assert_null(d->device_authorization_endpoint);
        assert_int_equal(c->flow, LK_FLOW_DEVICE);
        assert_string_equal(c->device_authorization_endpoint, "https://tenant.example.com/device");
        expect_error(bad, "test.conf:5: [provider] flow: 'polling' is not one of auto, code, device");
        /* Without discovery, the device flow needs its endpoint by hand. */
        load_bad(manual, &p, &e);
        for (size_t i = 0; i < p.n; i++)
                found |= p.items[i].key && streq(p.items[i].key, "device_authorization_endpoint");
        assert_true(found);
        lk_config_problems_clear(&p);
}

static void test_client_auth(void **state)
{
        _cleanup_free_ char *bad = with("client_auth = private_key_jwt\n");

        expect_error(bad, "test.conf:5: [provider] client_auth: 'private_key_jwt' is not one of "
                          "client_secret_post, client_secret_basic");
}

static void test_audience_parameter(void **state)
{
        _cleanup_(lk_config_freep) struct lk_config *d = load_ok(minimal);
        _cleanup_free_ char *t = with("audience_parameter = audience\n");
        _cleanup_(lk_config_freep) struct lk_config *c = load_ok(t);
        _cleanup_free_ char *bad = with("audience_parameter = aud\n");

        assert_int_equal(d->audience_parameter, LK_AUDIENCE_RESOURCE);
        assert_int_equal(c->audience_parameter, LK_AUDIENCE_AUDIENCE);
        expect_error(bad, "test.conf:5: [provider] audience_parameter: 'aud' is not one of "
                          "resource, audience");
}

static void test_algorithms(void **state)
{
        _cleanup_free_ char *none = with("id_token_algorithms = RS256 none\n");
        _cleanup_free_ char *none2 = with("id_token_algorithms = NONE\n");
        _cleanup_free_ char *unknown = with("id_token_algorithms = RS256 PS256\n");
        _cleanup_free_ char *empty = with("id_token_algorithms =\n");
        _cleanup_free_ char *hs_nosecret = with("id_token_algorithms = HS256\n");
        _cleanup_free_ char *hs = with("id_token_algorithms = ES256,HS384\n"
                                       "client_secret = " SECRET "\n");

        expect_error(none, "test.conf:5: [provider] id_token_algorithms: 'none' is never "
                           "accepted: an unsigned id_token proves nothing");
        expect_error(none2, "test.conf:5: [provider] id_token_algorithms: 'none' is never "
                            "accepted: an unsigned id_token proves nothing");
        expect_error(unknown, "test.conf:5: [provider] id_token_algorithms: 'PS256' is not an "
                              "algorithm latchkey knows (RS256 RS384 RS512 ES256 ES384 ES512 "
                              "HS256 HS384 HS512)");
        expect_error(empty, "test.conf:5: [provider] id_token_algorithms: names no algorithm");
        expect_error(hs_nosecret, "test.conf:5: [provider] id_token_algorithms: HS* algorithms "
                                  "need the client secret as key, and none is set");

        _cleanup_(lk_config_freep) struct lk_config *c = load_ok(hs);
        assert_int_equal(c->algorithms, LK_ALG_ES256 | LK_ALG_HS384);
        /* HS* only when listed: never part of the default */
        assert_int_equal(LK_ALG_DEFAULT & (LK_ALG_HS256 | LK_ALG_HS384 | LK_ALG_HS512), 0);
}

static void test_scopes(void **state)
{
        _cleanup_free_ char *t = with("scopes = email openid profile email offline_access\n");
        _cleanup_free_ char *only = with("scopes =\n");
        _cleanup_free_ char *bad = with("scopes = openid \"quoted\"\n");
        _cleanup_(lk_config_freep) struct lk_config *c = load_ok(t);
        _cleanup_(lk_config_freep) struct lk_config *d = load_ok(only);

        assert_int_equal(lk_strv_length(c->scopes), 4);
        assert_string_equal(c->scopes[0], "openid");
        assert_string_equal(c->scopes[1], "email");
        assert_string_equal(c->scopes[2], "profile");
        assert_string_equal(c->scopes[3], "offline_access");
        assert_int_equal(lk_strv_length(d->scopes), 1);
        assert_string_equal(d->scopes[0], "openid");
        expect_error(bad, "test.conf:5: [provider] scopes: '\"quoted\"' is not a valid scope");
}

static void test_http_refused(void **state)
{
        _cleanup_free_ char *t = with("token_endpoint = http://idp.example.com/token\n");

        expect_error(t, "test.conf:5: [provider] token_endpoint: 'http://idp.example.com/token' "
                        "is refused: http:// is allowed only for a loopback host (127.0.0.0/8, "
                        "::1, localhost); use https://");
}

static void test_loopback_accepted(void **state)
{
        _cleanup_(lk_config_freep) struct lk_config *c = load_ok(
                "[provider]\n"
                "issuer = http://127.0.0.1:8080/realms/test\n"
                "client_id = x\n"
                "redirect_uri = http://[::1]:9000/cb\n"
                "token_endpoint = http://localhost/token\n"
                "jwks_uri = http://127.1.2.3/keys\n");

        assert_string_equal(c->issuer, "http://127.0.0.1:8080/realms/test");
        assert_string_equal(c->redirect_uri, "http://[::1]:9000/cb");
}

static void test_check_endpoint_url(void **state)
{
        static const char *const good[] = {
                "https://idp.example.com/x", "http://127.0.0.1/", "http://[::1]:8443/a?b=c",
                "http://LOCALHOST:80/", "https://[2001:db8::1]/", "HTTPS://idp.example.com",
                "http://127.1/", "http://[::ffff:127.0.0.1]/",
        };
        static const char *const bad[] = {
                "idp.example.com/x",          "/relative",
                "ftp://idp.example.com/",     "file:///etc/passwd",
                "http://128.0.0.1/",          "http://localhost.evil.com/",
                "http://127.0.0.1.evil.com/", "http://[::2]/",
                "https://idp.example.com/#x", "https://idp.example.com/a b",
                "https://:443/",              "",
        };
        struct lk_error e;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                e = (struct lk_error){0};
                if (lk_check_endpoint_url(good[i], "jwks_uri", &e) < 0)
                        fail_msg("%s refused: %s", good[i], e.message);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                e = (struct lk_error){0};
                if (lk_check_endpoint_url(bad[i], "jwks_uri", &e) != -LK_ERR_CONFIG)
                        fail_msg("%s accepted", bad[i]);
                assert_int_equal(strncmp(e.message, "jwks_uri: ", 10), 0);
        }

        /* A password in a URL is refused, and not repeated. */
        e = (struct lk_error){0};
        assert_int_equal(lk_check_endpoint_url("https://user:" SECRET "@idp.example.com/", "x", &e),
                         -LK_ERR_CONFIG);
        assert_string_equal(e.message, "x: the URL must not hold a user name or password");
}

/* The messages of the types no other test reaches: one per parse_<type>() of config_values.c. */
static void test_type_messages(void **state)
{
        _cleanup_free_ char *path = with("ca_file = certs/ca.pem\n");
        _cleanup_free_ char *claim = with("[users]\ngroups_claim = gr\"oups\n");
        _cleanup_free_ char *secret_path = with("client_secret_file = secret\n");
        _cleanup_free_ char *url = with("userinfo_endpoint = http://idp.example.com/me\n");
        _cleanup_(lk_config_freep) struct lk_config *c = NULL;

        expect_error(path, "test.conf:5: [provider] ca_file: 'certs/ca.pem' is not an absolute path");
        expect_error(claim, "test.conf:6: [users] groups_claim: 'gr\"oups' is not a claim name");
        expect_error(secret_path, "test.conf:5: [provider] client_secret_file: 'secret' is not an "
                                  "absolute path");
        expect_error(url, "test.conf:5: [provider] userinfo_endpoint: 'http://idp.example.com/me' "
                          "is refused: http:// is allowed only for a loopback host (127.0.0.0/8, "
                          "::1, localhost); use https://");
        expect_error("clientid = x\n",
                     "test.conf:1: clientid: is outside any section, and not a key latchkey knows");

        /* Empty values unset a string, a list, a URL. */
        c = load_ok("[provider]\nissuer = https://idp.example.com\nclient_id = latchkey\n"
                    "redirect_uri = https://login.example.com/callback\nprompt = consent\n"
                    "prompt =\nuserinfo_endpoint =\n[users]\nallowed_users = a b\n"
                    "allowed_users =\n");
        assert_null(c->prompt);
        assert_null(c->userinfo_endpoint);
        assert_null(c->allowed_users);
}

static void test_issuer_no_query(void **state)
{
        expect_error("[provider]\nissuer = https://idp.example.com/?tenant=a\nclient_id = x\n"
                     "redirect_uri = https://x.example.com/\n",
                     "test.conf:2: [provider] issuer: 'https://idp.example.com/?tenant=a': an "
                     "issuer has no ?query");
}

static void test_required_missing(void **state)
{
        struct lk_config_problems p = {0};
        struct lk_error e = {0};

        load_bad("[provider]\nissuer =\n", &p, &e);
        assert_int_equal(p.n, 3);
        /* set but empty: named at its line; never set: the file only */
        assert_string_equal(e.message, "test.conf:2: [provider] issuer: required, but not set");
        _cleanup_free_ char *s1 = lk_config_problem_string(&p.items[1]);
        _cleanup_free_ char *s2 = lk_config_problem_string(&p.items[2]);
        assert_string_equal(s1, "test.conf: [provider] client_id: required, but not set");
        assert_string_equal(s2, "test.conf: [provider] redirect_uri: required, but not set");
        lk_config_problems_clear(&p);

        /* A bad value is reported once, not again as missing. */
        expect_error("[provider]\nissuer = http://idp.example.com\nclient_id = x\n"
                     "redirect_uri = https://x.example.com/\n",
                     "test.conf:2: [provider] issuer: 'http://idp.example.com' is refused: "
                     "http:// is allowed only for a loopback host (127.0.0.0/8, ::1, "
                     "localhost); use https://");
}

static void test_discovery_no_needs_endpoints(void **state)
{
        struct lk_config_problems p = {0};
        struct lk_error e = {0};
        _cleanup_free_ char *t = with("discovery = no\n"
                                      "token_endpoint = https://idp.example.com/t\n");

        load_bad(t, &p, &e);
        assert_int_equal(p.n, 2);
        assert_string_equal(e.message, "test.conf:5: [provider] authorization_endpoint: must be "
                                       "set when discovery = no");
        assert_string_equal(p.items[1].key, "jwks_uri");
        lk_config_problems_clear(&p);
}

static void test_comments(void **state)
{
        _cleanup_free_ char *note = with("pkce = yes   # as in the example\n");
        _cleanup_free_ char *semi = with("client_id = abc ; note\n");
        _cleanup_free_ char *ok = with("  # indented comment\n"
                                       "; another\n"
                                       "client_secret = a ;b #c\n"
                                       "   timeout = 7\n"
                                       "client_id = a#b\n");

        expect_error(note, "test.conf:5: [provider] pkce: 'yes   # as in the example' holds a "
                           "comment; a comment must be a whole line starting with # or ;");
        expect_error(semi, "test.conf:5: [provider] client_id: 'abc ; note' holds a comment; a "
                           "comment must be a whole line starting with # or ;");

        /* client_secret is taken verbatim; an indented key is a key; '#' inside a word stays */
        _cleanup_(lk_config_freep) struct lk_config *c = load_ok(ok);
        assert_string_equal(c->client_secret, "a ;b #c");
        assert_int_equal(c->timeout, 7);
        assert_string_equal(c->client_id, "a#b");
}

static void test_duplicate_key_later_wins(void **state)
{
        _cleanup_free_ char *t = with("timeout = 20\ntimeout = 25\n");
        _cleanup_(lk_config_freep) struct lk_config *c = load_ok(t);

        assert_int_equal(c->timeout, 25);
}

static void test_bom_crlf(void **state)
{
        _cleanup_(lk_config_freep) struct lk_config *c = load_ok(
                "\xEF\xBB\xBF[provider]\r\n"
                "issuer = https://idp.example.com\r\n"
                "client_id = x\r\n"
                "redirect_uri = https://x.example.com/cb\r\n");

        assert_string_equal(c->client_id, "x");
        assert_string_equal(c->redirect_uri, "https://x.example.com/cb");
}

static void test_long_line(void **state)
{
        _cleanup_free_ char *t = NULL;
        char *big = malloc(5000);

        assert_non_null(big);
        memset(big, 'a', 4999);
        big[4999] = 0;
        assert_true(asprintf(&t, "%sclient_id = %s\n", minimal, big) > 0);
        free(big);
        expect_error(t, "test.conf:5: line is longer than 4096 bytes");
}

static void test_files_and_dropins(void **state)
{
        _cleanup_(lk_config_freep) struct lk_config *c = NULL;
        struct lk_config_problems p = {0};
        struct lk_error e = {0};
        const char *main_path;

        main_path = write_file("a.conf", 0644, minimal);
        assert_int_equal(mkdir(tpath("a.conf.d"), 0755), 0);
        write_file("a.conf.d/20-b.conf", 0644, "[provider]\ntimeout = 30\n");
        write_file("a.conf.d/10-a.conf", 0644,
                   "[provider]\ntimeout = 20\nclock_skew = 9\n[users]\nusername_claim = email\n");
        write_file("a.conf.d/30-c.conf.disabled", 0644, "[provider]\ntimeout = 99\n");
        write_file("a.conf.d/.hidden.conf", 0644, "[provider]\ntimeout = 98\n");

        assert_int_equal(lk_config_load(main_path, &c, &p, &e), 0);
        assert_int_equal(p.n, 0);
        assert_int_equal(c->timeout, 30); /* 20-b.conf after 10-a.conf */
        assert_int_equal(c->clock_skew, 9);
        assert_string_equal(c->username_claim, "email");
        assert_string_equal(c->issuer, "https://idp.example.com");

        /* A problem in a drop-in names the drop-in. */
        write_file("a.conf.d/15-bad.conf", 0644, "[sessions]\n\nlogin_timeout = soon\n");
        e = (struct lk_error){0};
        struct lk_config *d = NULL;
        assert_int_equal(lk_config_load(main_path, &d, &p, &e), -LK_ERR_CONFIG);
        assert_null(d);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want, "%s/a.conf.d/15-bad.conf:3: [sessions] login_timeout: 'soon' "
                                    "is not a number",
                             tmpdir) > 0);
        assert_string_equal(e.message, want);
        assert_int_equal(p.n, 1);
        lk_config_problems_clear(&p);
}

/* Loading path fails, and its first problem says what asprintf(...) gives. */
static void expect_load_refused(const char *path, const char *want)
{
        struct lk_config *c = NULL;
        struct lk_error e = {0};

        if (lk_config_load(path, &c, NULL, &e) != -LK_ERR_CONFIG)
                fail_msg("loaded %s, which should say %s", path, want);
        assert_null(c);
        if (!streq(e.message, want))
                fail_msg("expected '%s'\n     got '%s'", want, e.message);
}
#define EXPECT_REFUSED(path, ...)                                         \
        do {                                                              \
                _cleanup_free_ char *_want = NULL;                        \
                assert_true(asprintf(&_want, __VA_ARGS__) > 0);           \
                expect_load_refused((path), _want);                       \
        } while (0)

/* Issue 16 item 8: a file, folder or drop-in that someone else may change decides nothing. */
static void test_others_may_write(void **state)
{
        _cleanup_(lk_config_freep) struct lk_config *c = NULL;
        struct lk_error e = {0};
        const char *dir = tpath("w"), *path = tpath("w/latchkey.conf"), *d = tpath("w/latchkey.conf.d");
        const char *drop = tpath("w/latchkey.conf.d/10-users.conf"), *link = tpath("w/link.conf");

        assert_int_equal(mkdir(dir, 0755), 0);
        write_file("w/latchkey.conf", 0644, minimal);
        assert_int_equal(lk_config_load(path, &c, NULL, &e), 0);

        /* The file: group- or world-writable */
        assert_int_equal(chmod(path, 0664), 0);
        EXPECT_REFUSED(path, "%s: %s has mode 0664; it is writable by group or others "
                             "(chmod go-w %s)", path, path, path);
        assert_int_equal(chmod(path, 0646), 0);
        EXPECT_REFUSED(path, "%s: %s has mode 0646; it is writable by group or others "
                             "(chmod go-w %s)", path, path, path);
        assert_int_equal(chmod(path, 0644), 0);

        /* A symbolic link to it */
        assert_int_equal(symlink(path, link), 0);
        EXPECT_REFUSED(link, "%s: %s is a symbolic link; name the file itself", link, link);

        /* Its folder */
        assert_int_equal(chmod(dir, 0757), 0);
        EXPECT_REFUSED(path, "%s: %s has mode 0757; it is writable by group or others "
                             "(chmod go-w %s)", path, dir, dir);
        assert_int_equal(chmod(dir, 0755), 0);

        /* The drop-in folder, and a drop-in */
        assert_int_equal(mkdir(d, 0755), 0);
        assert_int_equal(chmod(d, 0775), 0); /* past the umask */
        write_file("w/latchkey.conf.d/10-users.conf", 0644, "[users]\nallowed_users = eve\n");
        EXPECT_REFUSED(path, "%s: %s has mode 0775; it is writable by group or others "
                             "(chmod go-w %s)", d, d, d);
        assert_int_equal(chmod(d, 0755), 0);
        assert_int_equal(chmod(drop, 0666), 0);
        EXPECT_REFUSED(path, "%s: %s has mode 0666; it is writable by group or others "
                             "(chmod go-w %s)", drop, drop, drop);
        assert_int_equal(chmod(drop, 0644), 0);
        lk_config_free(TAKE_PTR(c));
        assert_int_equal(lk_config_load(path, &c, NULL, &e), 0);
        assert_string_equal(c->allowed_users[0], "eve");

        /* Owned by another user (tests run as root in CI; chown needs it) */
        if (geteuid() != 0)
                return;
        /* the drop-in, its folder, the file, its folder; and which source the problem names */
        const char *const owned[][2] = { { drop, drop }, { d, d }, { path, path }, { dir, path } };
        for (size_t i = 0; i < ELEMENTSOF(owned); i++) {
                assert_int_equal(chown(owned[i][0], 65534, 65534), 0);
                EXPECT_REFUSED(path, "%s: %s is owned by uid 65534; it must be owned by root or by "
                                     "uid 0 (chown root %s)", owned[i][1], owned[i][0], owned[i][0]);
                assert_int_equal(chown(owned[i][0], 0, 0), 0);
        }
}

static void test_missing_file(void **state)
{
        struct lk_config *c = NULL;
        struct lk_error e = {0};
        _cleanup_free_ char *want = NULL;

        assert_int_equal(lk_config_load(tpath("nope.conf"), &c, NULL, &e), -LK_ERR_CONFIG);
        assert_true(asprintf(&want, "%s/nope.conf: %s/nope.conf does not exist", tmpdir,
                             tmpdir) > 0);
        assert_string_equal(e.message, want);
}

static void test_nul_byte_in_file(void **state)
{
        const char *p = tpath("nul.conf");
        struct lk_config *c = NULL;
        struct lk_error e = {0};
        _cleanup_free_ char *want = NULL;
        static const char text[] = "[provider]\nclient_id = a\0b\n";
        int fd;

        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
        close(fd);
        assert_int_equal(lk_config_load(p, &c, NULL, &e), -LK_ERR_CONFIG);
        assert_true(asprintf(&want, "%s:2: line holds a NUL byte", p) > 0);
        assert_string_equal(e.message, want);
}

static char *config_with_secret_file(const char *secret_path)
{
        char *t;

        assert_true(asprintf(&t, "%sclient_secret_file = %s\n", minimal, secret_path) > 0);
        return t;
}

static void test_secret_file_modes(void **state)
{
        _cleanup_free_ char *t = NULL, *want = NULL;
        struct lk_config *c = NULL;
        struct lk_error e = {0};
        const char *sp;

        sp = write_file("secret-0644", 0644, SECRET "\n");
        t = config_with_secret_file(sp);
        assert_true(asprintf(&want, "test.conf:5: [provider] client_secret_file: %s has mode 0644; "
                                    "a secret must not be open to group or others (chmod 0600 %s)",
                             sp, sp) > 0);
        expect_error(t, want);
        free(t);
        free(want);

        sp = write_file("secret-0640", 0640, SECRET "\n");
        t = config_with_secret_file(sp);
        assert_int_equal(lk_config_load_string(t, "test.conf", &c, NULL, &e), -LK_ERR_CONFIG);
        assert_non_null(strstr(e.message, "has mode 0640"));
        free(t);

        sp = write_file("secret-0600", 0600, SECRET "\r\n");
        t = config_with_secret_file(sp);
        c = load_ok(t);
        assert_string_equal(c->client_secret, SECRET); /* newline stripped */
        assert_string_equal(c->client_secret_source, sp);
        lk_config_free(c);
        free(t);

        sp = write_file("secret-0400", 0400, SECRET);
        t = config_with_secret_file(sp);
        c = load_ok(t);
        assert_string_equal(c->client_secret, SECRET);
        lk_config_free(c);
        free(t);

        sp = write_file("secret-empty", 0600, "\n");
        t = config_with_secret_file(sp);
        want = NULL;
        assert_true(asprintf(&want, "test.conf:5: [provider] client_secret_file: %s is empty",
                             sp) > 0);
        expect_error(t, want);
        free(t);
        t = NULL;
}

static void test_secret_file_symlink_and_owner(void **state)
{
        _cleanup_free_ char *t = NULL, *want = NULL;
        const char *target = write_file("secret-real", 0600, SECRET "\n");
        const char *link = tpath("secret-link");

        assert_int_equal(symlink(target, link), 0);
        t = config_with_secret_file(link);
        assert_true(asprintf(&want, "test.conf:5: [provider] client_secret_file: %s is a symbolic "
                                    "link; name the file itself",
                             link) > 0);
        expect_error(t, want);

        if (geteuid() != 0)
                return; /* chown needs root */
        const char *other = write_file("secret-other", 0600, SECRET "\n");
        assert_int_equal(chown(other, 4242, 4242), 0);
        free(t);
        free(want);
        t = config_with_secret_file(other);
        assert_true(asprintf(&want, "test.conf:5: [provider] client_secret_file: %s is owned by "
                                    "uid 4242; it must be owned by root or by uid 0 (chown root %s)",
                             other, other) > 0);
        expect_error(t, want);
}

static void test_secret_both_set(void **state)
{
        _cleanup_free_ char *t = NULL;
        const char *sp = write_file("secret-both", 0600, SECRET);

        assert_true(asprintf(&t, "%sclient_secret_file = %s\nclient_secret = " SECRET "\n",
                             minimal, sp) > 0);
        expect_error(t, "test.conf:6: [provider] client_secret: client_secret_file and "
                        "client_secret are both set; keep one");
}

static void test_inline_secret_in_readable_file(void **state)
{
        _cleanup_free_ char *text = with("client_secret = " SECRET "\n"), *want = NULL;
        struct lk_config_problems p = {0};
        struct lk_config *c = NULL;
        struct lk_error e = {0};
        const char *path;

        path = write_file("inline.conf", 0644, text);
        assert_int_equal(lk_config_load(path, &c, &p, &e), -LK_ERR_CONFIG);
        assert_true(asprintf(&want, "%s:5: [provider] client_secret: this file holds the client "
                                    "secret, but %s has mode 0644; a secret must not be open to "
                                    "group or others (chmod 0600 %s); or use client_secret_file",
                             path, path, path) > 0);
        assert_string_equal(e.message, want);
        assert_null(strstr(e.message, SECRET));
        lk_config_problems_clear(&p);

        assert_int_equal(chmod(path, 0600), 0);
        e = (struct lk_error){0};
        assert_int_equal(lk_config_load(path, &c, &p, &e), 0);
        assert_string_equal(c->client_secret, SECRET);
        lk_config_free(c);
}

static void test_credentials_directory(void **state)
{
        _cleanup_(lk_config_freep) struct lk_config *c = NULL;
        _cleanup_free_ char *source = NULL;
        struct lk_config *d = NULL;
        struct lk_error e = {0};
        const char *dir = tpath("creds");

        assert_int_equal(mkdir(dir, 0700), 0);
        setenv("CREDENTIALS_DIRECTORY", dir, 1);

        /* No credential there: no secret, and no error. */
        c = load_ok(minimal);
        assert_null(c->client_secret);
        lk_config_free(TAKE_PTR(c));

        write_file("creds/client_secret", 0400, SECRET "\n");
        c = load_ok(minimal);
        assert_string_equal(c->client_secret, SECRET);
        assert_true(asprintf(&source, "%s/client_secret", dir) > 0);
        assert_string_equal(c->client_secret_source, source);

        /* A secret set in the file comes first. */
        _cleanup_free_ char *t = with("client_secret = other\n");
        _cleanup_(lk_config_freep) struct lk_config *f = load_ok(t);
        assert_string_equal(f->client_secret, "other");

        /* The same rules as any secret file. */
        assert_int_equal(chmod(source, 0444), 0);
        assert_int_equal(lk_config_load_string(minimal, "test.conf", &d, NULL, &e), -LK_ERR_CONFIG);
        assert_non_null(strstr(e.message, "systemd credential"));
        assert_non_null(strstr(e.message, "has mode 0444"));
        assert_null(strstr(e.message, SECRET));
        unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_secret_never_in_messages(void **state)
{
        struct lk_config_problems p = {0};
        struct lk_error e = {0};
        /* Every line here is wrong, and each holds the secret somewhere. */
        _cleanup_free_ char *t = with("client_secret = " SECRET "\n"
                                      "client_secret = " SECRET " # note\n"
                                      "client_secret\n"
                                      SECRET "\n"
                                      "id_token_algorithms = HS256 none\n"
                                      "secret = " SECRET "\n"
                                      "client_secret = " SECRET "\n"
                                      "[provider]\n"
                                      "redirect_uri = https://a:" SECRET "@x.example.com/\n");

        load_bad(t, &p, &e); /* checks every problem for the secret */
        assert_int_equal(p.n, 5);
        lk_config_problems_clear(&p);
}

static void test_groups_claim_needed(void **state)
{
        _cleanup_free_ char *t = with("[users]\nallowed_groups = admins\ngroups_claim =\n");

        expect_error(t, "test.conf:7: [users] groups_claim: must be set when allowed_groups is "
                        "set");

        _cleanup_free_ char *u = with("[users]\nusername_claim =\n");
        expect_error(u, "test.conf:6: [users] username_claim: must not be empty");
}

static void test_problem_cap(void **state)
{
        struct lk_config_problems p = {0};
        struct lk_error e = {0};
        char *t = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&t, &len);

        assert_non_null(f);
        fputs(minimal, f);
        for (int i = 0; i < 150; i++)
                fputs("timeout = x\n", f);
        fclose(f);
        load_bad(t, &p, &e);
        assert_int_equal(p.n, 101);
        assert_int_equal(p.items[99].line, 104);
        assert_int_equal(p.items[100].line, 0);
        assert_string_equal(p.items[100].message, "more than 100 problems; not reporting further "
                                                  "ones");
        lk_config_problems_clear(&p);
        free(t);
}

static void test_problem_string(void **state)
{
        struct lk_config_problem a = { .file = (char *)"f.conf", .line = 3,
                                       .section = (char *)"users", .key = (char *)"k",
                                       .message = (char *)"bad" };
        struct lk_config_problem b = { .file = (char *)"f.conf", .message = (char *)"gone" };
        _cleanup_free_ char *sa = lk_config_problem_string(&a);
        _cleanup_free_ char *sb = lk_config_problem_string(&b);

        assert_string_equal(sa, "f.conf:3: [users] k: bad");
        assert_string_equal(sb, "f.conf: gone");
}

/* [callback]: the listen address's forms, and what the listener needs besides. */
static void test_callback_section(void **state)
{
        static const char *const good[] = { "127.0.0.1:8443", "0.0.0.0:1", "[::1]:8443",
                                            "[::]:65535", "[::ffff:192.0.2.1]:443" };
        static const struct {
                const char *value, *message;
        } bad[] = {
                { "localhost:8443", "is not a numeric IPv4 address (an IPv6 address: "
                                    "[ADDRESS]:PORT; no host names)" },
                { "127.0.0.1", "is not ADDRESS:PORT (an IPv6 address: [ADDRESS]:PORT)" },
                { "127.0.0.1:0", "the port is not a number from 1 to 65535" },
                { "127.0.0.1:65536", "the port is not a number from 1 to 65535" },
                { "127.0.0.1:+80", "the port is not a number from 1 to 65535" },
                { "::1:8443", "is not a numeric IPv4 address (an IPv6 address: [ADDRESS]:PORT; "
                              "no host names)" },
                { "[::1]8443", "an IPv6 address is written [ADDRESS]:PORT" },
                { "[127.0.0.1]:8443", "is not a numeric IPv6 address in brackets" },
                { ":8443", "has no numeric address before the port" },
        };
        const char *cert = write_file("cb.pem", 0644, "not read by the loader\n");
        const char *key = write_file("cb.key", 0600, "not read by the loader\n");
        _cleanup_free_ char *files = NULL;

        assert_true(asprintf(&files, "certificate = %s\nkey = %s\n", cert, key) > 0);
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_free_ char *t = NULL;

                assert_true(asprintf(&t, "%s[callback]\nlisten = %s\n%s", minimal, good[i],
                                     files) > 0);
                _cleanup_(lk_config_freep) struct lk_config *c = load_ok(t);
                assert_string_equal(c->callback_listen, good[i]);
                assert_string_equal(c->callback_certificate, cert);
                assert_string_equal(c->callback_key, key);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *t = NULL, *m = NULL;

                assert_true(asprintf(&t, "%s[callback]\nlisten = %s\n%s", minimal, bad[i].value,
                                     files) > 0);
                assert_true(asprintf(&m, "test.conf:6: [callback] listen: '%s' %s", bad[i].value,
                                     bad[i].message) > 0);
                expect_error(t, m);
        }

        /* Without listen nothing listens: no [callback] at all is the default. */
        {
                _cleanup_(lk_config_freep) struct lk_config *c = load_ok(minimal);
                assert_null(c->callback_listen);
        }
        {
                _cleanup_free_ char *t = with("[callback]\nlisten = 127.0.0.1:8443\n");
                expect_error(t, "test.conf:6: [callback] listen: needs [callback] certificate "
                                "(the listener speaks only HTTPS)");
        }
        {
                _cleanup_free_ char *t = NULL;

                assert_true(asprintf(&t, "%s[callback]\nlisten = 127.0.0.1:8443\ncertificate = %s\n",
                                     minimal, cert) > 0);
                expect_error(t, "test.conf:6: [callback] listen: needs [callback] key (the "
                                "certificate's private key)");
        }
        {
                _cleanup_free_ char *t = NULL;

                assert_true(asprintf(&t, "%s[callback]\ncertificate = %s\n", minimal, cert) > 0);
                expect_error(t, "test.conf:6: [callback] certificate: is set, but [callback] "
                                "listen is not: nothing listens");
        }
        {
                _cleanup_free_ char *t = NULL, *m = NULL;

                assert_true(asprintf(&t, "%s[callback]\nlisten = 127.0.0.1:8443\n"
                                     "certificate = %s/absent.pem\nkey = %s\n",
                                     minimal, tpath(""), key) > 0);
                assert_true(asprintf(&m, "test.conf:7: [callback] certificate: cannot read "
                                     "%s/absent.pem: No such file or directory", tpath("")) > 0);
                expect_error(t, m);
        }
        {
                _cleanup_free_ char *t = NULL;

                assert_true(asprintf(&t, "[provider]\nissuer = https://idp.example.com\n"
                                     "client_id = latchkey\nredirect_uri = http://127.0.0.1:8080/cb\n"
                                     "[callback]\nlisten = 127.0.0.1:8443\n%s", files) > 0);
                expect_error(t, "test.conf:4: [provider] redirect_uri: must be an https:// "
                                "address of this host (or a name that reaches it) when "
                                "[callback] listen is set: the listener speaks only HTTPS");
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_offline_keys),
                cmocka_unit_test(test_error_names_line),
                cmocka_unit_test(test_all_problems_collected),
                cmocka_unit_test(test_unknown_key),
                cmocka_unit_test(test_unknown_section),
                cmocka_unit_test(test_callback_section),
                cmocka_unit_test(test_pam_section),
                cmocka_unit_test(test_outside_section),
                cmocka_unit_test(test_syntax_errors),
                cmocka_unit_test(test_bad_numbers),
                cmocka_unit_test(test_bools),
                cmocka_unit_test(test_nonce),
                cmocka_unit_test(test_client_auth),
                cmocka_unit_test(test_flow),
                cmocka_unit_test(test_audience_parameter),
                cmocka_unit_test(test_algorithms),
                cmocka_unit_test(test_scopes),
                cmocka_unit_test(test_http_refused),
                cmocka_unit_test(test_loopback_accepted),
                cmocka_unit_test(test_check_endpoint_url),
                cmocka_unit_test(test_issuer_no_query),
                cmocka_unit_test(test_required_missing),
                cmocka_unit_test(test_discovery_no_needs_endpoints),
                cmocka_unit_test(test_comments),
                cmocka_unit_test(test_duplicate_key_later_wins),
                cmocka_unit_test(test_bom_crlf),
                cmocka_unit_test(test_long_line),
                cmocka_unit_test(test_files_and_dropins),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_others_may_write),
                cmocka_unit_test(test_nul_byte_in_file),
                cmocka_unit_test(test_secret_file_modes),
                cmocka_unit_test(test_secret_file_symlink_and_owner),
                cmocka_unit_test(test_secret_both_set),
                cmocka_unit_test(test_inline_secret_in_readable_file),
                cmocka_unit_test(test_credentials_directory),
                cmocka_unit_test(test_secret_never_in_messages),
                cmocka_unit_test(test_groups_claim_needed),
                cmocka_unit_test(test_problem_cap),
                cmocka_unit_test(test_problem_string),
                cmocka_unit_test(test_type_messages),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
