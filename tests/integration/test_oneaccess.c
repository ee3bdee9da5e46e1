/* SPDX-License-Identifier: MIT */
/*
 * The OneAccess profile, end to end: latchkeyd runs with docs/oneaccess.conf.example
 * (only issuer, client_secret_file and ca_file replaced, so the documented file
 * cannot drift from what is tested) against the test IdP in OneAccess mode
 * (oneaccess=1, tests/idp/README.md), through the whole D-Bus flow: BeginLogin,
 * the browser, CompleteLogin, OpenSession, GetToken, CloseSession.
 *
 * The person signing in is the user running the test (BeginLogin allows a uid
 * its own user), so it needs no root.
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"

#if !defined(ONEACCESS_CONF_EXAMPLE) || !defined(ONEACCESS_DOC)
#error "ONEACCESS_CONF_EXAMPLE and ONEACCESS_DOC must be defined by meson"
#endif

#define ERR BC_ERR
#define TEXT_MAX (64 * 1024)
/* OneAccess's words for a refused code (IssueIDToken / RenewOIDCToken, status 400). */
#define ONEACCESS_INVALID_CODE "Invalid authorization code"

static char *me; /* who signs in: the user running the test */

/* ---- the profile ---------------------------------------------------------- */

static char *read_text(const char *path)
{
        FILE *f = fopen(path, "re");
        char *text;
        size_t len;

        if (!f) {
                fprintf(stderr, "cannot open %s: %m\n", path);
                return NULL;
        }
        text = malloc(TEXT_MAX + 1);
        if (!text)
                abort();
        len = fread(text, 1, TEXT_MAX, f);
        fclose(f);
        if (len == 0 || len == TEXT_MAX) {
                fprintf(stderr, "%s is empty or too large\n", path);
                free(text);
                return NULL;
        }
        text[len] = '\0';
        return text;
}

static char *read_example(void)
{
        return read_text(ONEACCESS_CONF_EXAMPLE);
}

/* The value of the one line "key = value" in text; NULL when absent or repeated. */
static char *example_value(const char *text, const char *key)
{
        size_t klen = strlen(key);
        char *found = NULL;

        for (const char *l = text; *l; l = strchrnul(l, '\n'), l += *l == '\n') {
                const char *end = strchrnul(l, '\n');

                if (strncmp(l, key, klen) != 0 || strncmp(l + klen, " = ", 3) != 0)
                        continue;
                if (found) {
                        free(found);
                        return NULL;
                }
                found = strndup(l + klen + 3, (size_t)(end - l - klen - 3));
        }
        return found;
}

struct edit {
        const char *prefix; /* a line starting with this is replaced... */
        char *line;         /* ...by this */
        unsigned hits;
};

/*
 * Writes DIR/latchkey.conf: the example with issuer, client_secret_file and ca_file
 * pointing at the test IdP and (with nonce_required) nonce = required, and the test's
 * user in [users] allow_system_users at the end. Every other line stays as it is; each
 * edited line must be in the example exactly once.
 */
static int write_profile(struct lkh *h, bool nonce_required)
{
        _cleanup_free_ char *text = read_example(), *path = NULL;
        struct edit edits[] = {
                {"issuer = ", NULL, 0},
                {"#client_secret_file = ", NULL, 0},
                {"#ca_file = ", NULL, 0},
                {"nonce = if-present\n", NULL, 0},
        };
        size_t n_edits = nonce_required ? 4 : 3;
        FILE *f;
        int r = 0;

        if (!text)
                return -EIO;
        if (asprintf(&edits[0].line, "issuer = %s\n", h->issuer) < 0 ||
            asprintf(&edits[1].line, "client_secret_file = %s\n", h->client_secret_file) < 0 ||
            asprintf(&edits[2].line, "ca_file = %s\n", h->cert_file) < 0 ||
            !(edits[3].line = strdup("nonce = required\n")))
                abort();
        if (asprintf(&path, "%s/latchkey.conf", h->dir) < 0)
                abort();
        f = fopen(path, "we");
        if (!f)
                return -errno;
        for (const char *l = text; *l;) {
                const char *end = strchrnul(l, '\n');
                size_t len = (size_t)(end - l) + (*end == '\n');
                bool replaced = false;

                for (size_t i = 0; i < n_edits; i++)
                        if (strncmp(l, edits[i].prefix, strlen(edits[i].prefix)) == 0) {
                                fputs(edits[i].line, f);
                                edits[i].hits++;
                                replaced = true;
                        }
                if (!replaced)
                        fwrite(l, 1, len, f);
                l += len;
        }
        /* The test signs in as whoever runs it, root as a rule: a system account to latchkey. */
        fprintf(f, "\n[users]\nallow_system_users = %s\n", me);
        if (fclose(f) != 0)
                r = -EIO;
        for (size_t i = 0; i < ELEMENTSOF(edits); i++) {
                if (i < n_edits && edits[i].hits != 1) {
                        fprintf(stderr, "%s: want one line starting '%s', found %u\n",
                                ONEACCESS_CONF_EXAMPLE, edits[i].prefix, edits[i].hits);
                        r = -EINVAL;
                }
                free(edits[i].line);
        }
        if (r < 0)
                return r;
        free(h->config_file);
        h->config_file = TAKE_PTR(path);
        return 0;
}

/* ---- a small D-Bus client ------------------------------------------------- */

static const char *bus_address;

static DBusConnection *bus_open(void)
{
        _cleanup_free_ char *msg = NULL;
        DBusConnection *c = bc_open_err(bus_address, &msg);

        if (!c)
                fprintf(stderr, "cannot connect to the test bus: %s\n", msg);
        return c;
}

/* BeginLogin(user): an error name, or NULL and the login id and authorize URL. */
static char *begin_login(DBusConnection *c, const char *user, char **ret_id, char **ret_url)
{
        char *e = bc_begin_login(c, user, ret_id, ret_url);

        assert_false(bc_bad_reply(e));
        return e;
}

/* A method taking one or two strings and answering nothing or one string. */
static char *call_ss(DBusConnection *c, const char *method, const char *a1, const char *a2,
                     char **ret_out, char **ret_message)
{
        char *e = bc_call_s(c, method, a1, a2, ret_out, ret_message);

        assert_false(bc_bad_reply(e));
        return e;
}

static char *get_token(DBusConnection *c, const char *session_id, uint32_t min_valid,
                       char **ret_token, int64_t *ret_expires, char **ret_message)
{
        _cleanup_free_ char *type = NULL;
        char *e = bc_get_token_typed(c, session_id, min_valid, ret_token, ret_expires, &type,
                                     ret_message);

        assert_false(bc_bad_reply(e));
        if (!e)
                assert_string_equal(type, "Bearer");
        return e;
}

static json_t *get_claims(DBusConnection *c, const char *session_id)
{
        _cleanup_free_ char *e = NULL, *text = NULL;
        json_t *j;

        e = bc_get_claims(c, session_id, &text, NULL);
        assert_null(e);
        j = json_loads(text, 0, NULL);
        assert_non_null(j);
        return j;
}

/* ---- the person ----------------------------------------------------------- */

struct login {
        char *id;
        char *code;
        char *error;   /* CompleteLogin's error name, NULL on success */
        char *message; /* and its message */
};

static void login_clear(struct login *l)
{
        free(l->id);
        free(l->code);
        free(l->error);
        free(l->message);
        *l = (struct login){0};
}

/* BeginLogin, the browser at the IdP, CompleteLogin with the callback address. */
static void login(struct lkh *h, DBusConnection *c, struct login *l)
{
        _cleanup_free_ char *url = NULL, *location = NULL, *who = NULL, *e = NULL;

        *l = (struct login){0};
        e = begin_login(c, me, &l->id, &url);
        assert_null(e);
        /* The profile keeps PKCE and sends a nonce, which OneAccess may ignore. */
        assert_non_null(strstr(url, "/api/v1/oauth2/authorize?"));
        assert_non_null(strstr(url, "code_challenge="));
        assert_non_null(strstr(url, "scope=openid"));
        assert_null(strstr(url, "profile"));
        assert_int_equal(lkh_browser_login(h, url, me, false, &location, &l->code), 0);
        assert_non_null(l->code);
        l->error = call_ss(c, "CompleteLogin", l->id, location, &who, &l->message);
        if (!l->error)
                assert_string_equal(who, me);
}

/* A login that must succeed, made into session sid. */
static void open_session(struct lkh *h, DBusConnection *c, const char *sid)
{
        struct login l;
        _cleanup_free_ char *e = NULL;

        login(h, c, &l);
        if (l.error)
                fprintf(stderr, "CompleteLogin: %s: %s\n", l.error, l.message);
        assert_null(l.error);
        e = call_ss(c, "OpenSession", l.id, sid, NULL, NULL);
        assert_null(e);
        login_clear(&l);
}

static void close_session(DBusConnection *c, const char *sid)
{
        _cleanup_free_ char *e = call_ss(c, "CloseSession", sid, NULL, NULL, NULL);
        _cleanup_free_ char *e2 = NULL, *token = NULL;
        int64_t exp;

        assert_null(e);
        e2 = get_token(c, sid, 0, &token, &exp, NULL);
        assert_string_equal(e2, ERR("NotFound"));
}

static long stat_of(struct lkh *h, const char *name)
{
        long n = -1;

        assert_int_equal(lkh_idp_stat(h, name, &n), 0);
        return n;
}

/* The IdP in OneAccess mode, with more switches after it ("name", "value", ..., NULL). */
static void oneaccess_mode(struct lkh *h, ...)
{
        va_list ap;
        const char *name;

        assert_int_equal(lkh_idp_reset(h), 0);
        assert_int_equal(lkh_idp_set(h, "oneaccess", "1"), 0);
        va_start(ap, h);
        while ((name = va_arg(ap, const char *))) {
                const char *value = va_arg(ap, const char *);
                assert_int_equal(lkh_idp_set(h, name, value), 0);
        }
        va_end(ap);
}

/* ---- harness per group ---------------------------------------------------- */

static int setup_profile(void **state, bool nonce_required)
{
        _cleanup_free_ char *text = read_example();
        struct lkh *h = NULL;
        char *client_id, *redirect_uri;

        if (!text || lkh_new(&h) < 0)
                return -1;
        /* The IdP registers the example's own client_id and redirect_uri. */
        client_id = example_value(text, "client_id");
        redirect_uri = example_value(text, "redirect_uri");
        if (!client_id || !redirect_uri) {
                fprintf(stderr, "%s: want one client_id and one redirect_uri line\n",
                        ONEACCESS_CONF_EXAMPLE);
                free(client_id);
                free(redirect_uri);
                lkh_free(h);
                return -1;
        }
        free(h->client_id);
        h->client_id = client_id;
        free(h->redirect_uri);
        h->redirect_uri = redirect_uri;
        if (lkh_start_idp(h, NULL) < 0 || write_profile(h, nonce_required) < 0 ||
            lkh_start_bus(h) < 0 || lkh_start_broker(h, NULL) < 0) {
                lkh_free(h);
                return -1;
        }
        bus_address = h->bus_address;
        *state = h;
        return 0;
}

static int setup_if_present(void **state)
{
        return setup_profile(state, false);
}

static int setup_nonce_required(void **state)
{
        return setup_profile(state, true);
}

/* ---- tests ---------------------------------------------------------------- */

/* docs/oneaccess.md quotes the tested file whole, in one ini block. */
static void test_doc_quotes_example(void **state)
{
        _cleanup_free_ char *doc = read_text(ONEACCESS_DOC), *example = read_example();
        _cleanup_free_ char *block = NULL;

        assert_non_null(doc);
        assert_non_null(example);
        assert_true(asprintf(&block, "```ini\n%s```\n", example) > 0);
        assert_non_null(strstr(doc, block));
}

/* application/x-www-form-urlencoded, for a form we post to the IdP ourselves. */
static char *form_escape(const char *s)
{
        char *out = malloc(strlen(s) * 3 + 1), *p = out;

        if (!out)
                abort();
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~')
                        *p++ = (char)ch;
                else
                        p += snprintf(p, 4, "%%%02X", ch);
        }
        *p = '\0';
        return out;
}

/* GET userinfo with access_token: the status and the parsed body. */
static json_t *userinfo(struct lkh *h, const char *access_token, long *ret_status)
{
        _cleanup_free_ char *auth = NULL, *body = NULL;
        const char *headers[] = {NULL, "Accept: application/json", NULL};
        json_t *j;

        assert_true(asprintf(&auth, "Authorization: Bearer %s", access_token) > 0);
        headers[0] = auth;
        assert_int_equal(
            lkh_http(h, "/api/v1/oauth2/userinfo", NULL, headers, ret_status, &body, NULL), 0);
        j = json_loads(body, 0, NULL);
        assert_non_null(j);
        return j;
}

/* The preset is what tests/idp/README.md says; the token endpoint and userinfo answer in
 * OneAccess's documented shapes. */
static void test_idp_mode(void **state)
{
        struct lkh *h = *state;
        _cleanup_free_ char *body = NULL, *url = NULL, *location = NULL, *code = NULL;
        _cleanup_free_ char *form = NULL, *code_e = NULL, *id_e = NULL, *secret_e = NULL;
        _cleanup_free_ char *uri_e = NULL, *access_token = NULL;
        json_t *j;
        long status = 0;

        assert_int_equal(lkh_idp_reset(h), 0);
        assert_int_equal(lkh_http(h, "/control?oneaccess=1", NULL, NULL, &status, &body, NULL),
                         0);
        assert_int_equal(status, 200);
        j = json_loads(body, 0, NULL);
        assert_non_null(j);
        assert_true(json_is_true(json_object_get(j, "oneaccess")));
        assert_true(json_is_true(json_object_get(j, "expires_in_string")));
        assert_true(json_is_true(json_object_get(j, "omit_refresh_token")));
        assert_true(json_is_true(json_object_get(j, "omit_nonce")));
        assert_string_equal(json_string_value(json_object_get(j, "alg")), "RS512");
        json_decref(j);

        /* A token as OneAccess documents it: expires_in a string, no refresh token. */
        url = lkh_idp_authorize_url(h, "st", "nonce-x", NULL);
        assert_non_null(url);
        assert_int_equal(lkh_browser_login(h, url, me, false, &location, &code), 0);
        assert_non_null(code);
        code_e = form_escape(code);
        id_e = form_escape(h->client_id);
        secret_e = form_escape(h->client_secret);
        uri_e = form_escape(h->redirect_uri);
        assert_true(asprintf(&form,
                             "grant_type=authorization_code&code=%s&client_id=%s"
                             "&client_secret=%s&redirect_uri=%s",
                             code_e, id_e, secret_e, uri_e) > 0);
        free(body);
        body = NULL;
        assert_int_equal(lkh_http(h, "/api/v1/oauth2/token", form, NULL, &status, &body, NULL),
                         0);
        assert_int_equal(status, 200);
        j = json_loads(body, 0, NULL);
        assert_non_null(j);
        assert_true(json_is_string(json_object_get(j, "expires_in")));
        assert_string_equal(json_string_value(json_object_get(j, "expires_in")), "3600");
        assert_null(json_object_get(j, "refresh_token"));
        assert_non_null(json_object_get(j, "id_token"));
        assert_true(json_is_string(json_object_get(j, "access_token")));
        access_token = strdup(json_string_value(json_object_get(j, "access_token")));
        json_decref(j);

        /* userinfo: id and userName, no sub. */
        j = userinfo(h, access_token, &status);
        assert_int_equal(status, 200);
        assert_string_equal(json_string_value(json_object_get(j, "userName")), me);
        assert_true(json_is_string(json_object_get(j, "id")));
        assert_null(json_object_get(j, "sub"));
        json_decref(j);

        /* The same code again: OneAccess's own 400 body, byte for byte. */
        free(body);
        body = NULL;
        assert_int_equal(lkh_http(h, "/api/v1/oauth2/token", form, NULL, &status, &body, NULL),
                         0);
        assert_int_equal(status, 400);
        assert_string_equal(body, "{\"error\":\"invalid_grant\",\"error_description\":\""
                                  ONEACCESS_INVALID_CODE "\"}");

        /* The replay revoked what the code gave: userinfo's 401 in OneAccess's words. */
        j = userinfo(h, access_token, &status);
        assert_int_equal(status, 401);
        assert_string_equal(json_string_value(json_object_get(j, "error")), "unauthorized");
        json_decref(j);
}

static void check_userinfo(struct lkh *h, const char *access_token)
{
        long status = 0;
        json_t *j = userinfo(h, access_token, &status);

        assert_int_equal(status, 200);
        assert_string_equal(json_string_value(json_object_get(j, "userName")), me);
        assert_true(json_is_string(json_object_get(j, "id")));
        assert_null(json_object_get(j, "sub"));
        json_decref(j);
}

/* The whole flow with expires_in = N, as a string or as a number. */
static void flow(struct lkh *h, bool as_string, long lifetime)
{
        DBusConnection *c = bus_open();
        _cleanup_free_ char *token = NULL, *token2 = NULL, *e = NULL;
        char n[32];
        int64_t exp = 0, exp2 = 0, before, after;
        json_t *claims;

        assert_non_null(c);
        snprintf(n, sizeof(n), "%ld", lifetime);
        oneaccess_mode(h, "expires_in_string", as_string ? "1" : "0", "expires_in", n, NULL);

        before = time(NULL);
        open_session(h, c, "oa-flow");
        after = time(NULL);

        e = get_token(c, "oa-flow", 0, &token, &exp, NULL);
        assert_null(e);
        assert_true(strlen(token) > 10);
        /* expires_at = the broker's clock at the token response + expires_in */
        assert_in_range(exp, before + lifetime, after + lifetime);
        e = get_token(c, NULL, 0, &token2, &exp2, NULL);
        assert_null(e);
        assert_string_equal(token, token2);
        assert_int_equal(exp, exp2);

        /* The id_token had no nonce, RS512 (the profile allows nothing else), our user. */
        claims = get_claims(c, "oa-flow");
        assert_null(json_object_get(claims, "nonce"));
        assert_string_equal(json_string_value(json_object_get(claims, "preferred_username")), me);
        json_decref(claims);

        /* latchkey never needs userinfo, so OneAccess's lack of sub there does not matter. */
        assert_int_equal(stat_of(h, "userinfo"), 0);
        check_userinfo(h, token);
        assert_int_equal(stat_of(h, "token_auth_post"), 1);
        assert_int_equal(stat_of(h, "token_refresh"), 0);

        close_session(c, "oa-flow");
        bc_close(c);
}

static void test_flow_expires_in_string(void **state)
{
        flow(*state, true, 5400);
}

static void test_flow_expires_in_number(void **state)
{
        flow(*state, false, 4000);
}

/*
 * No refresh token (OneAccess's default). GetToken with min_valid beyond the lifetime
 * cannot refresh: the broker answers the token it has, still valid, with its own
 * expires_at (the caller sees it falls short); once that has passed: TokenExpired.
 */
static void test_no_refresh_token(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *token = NULL, *token2 = NULL, *e = NULL, *msg = NULL;
        int64_t exp = 0, exp2 = 0;

        assert_non_null(c);
        oneaccess_mode(h, "expires_in", "3600", NULL);
        open_session(h, c, "oa-nort");
        e = get_token(c, "oa-nort", 0, &token, &exp, NULL);
        assert_null(e);
        e = get_token(c, "oa-nort", 7200, &token2, &exp2, NULL);
        assert_null(e);
        assert_string_equal(token, token2);
        assert_int_equal(exp, exp2);
        assert_true(exp2 < time(NULL) + 7200);
        assert_int_equal(stat_of(h, "token_refresh"), 0);
        close_session(c, "oa-nort");

        /* A token that lives 2 s. */
        oneaccess_mode(h, "expires_in", "2", NULL);
        open_session(h, c, "oa-short");
        free(token);
        token = NULL;
        e = get_token(c, "oa-short", 0, &token, &exp, NULL);
        assert_null(e);
        while (time(NULL) <= exp)
                usleep(200 * 1000);
        free(token);
        token = NULL;
        e = get_token(c, "oa-short", 3600, &token, &exp, &msg);
        assert_non_null(e);
        assert_string_equal(e, ERR("TokenExpired"));
        print_message("    TokenExpired: %s\n", msg);
        assert_non_null(strstr(msg, "no refresh token"));
        assert_non_null(strstr(msg, "log in again"));
        assert_int_equal(stat_of(h, "token_refresh"), 0);
        close_session(c, "oa-short");
        bc_close(c);
}

/* With "Refresh Token validity period" set in the application: refresh works. */
static void test_refresh(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *token = NULL, *token2 = NULL, *token3 = NULL, *e = NULL;
        int64_t exp = 0, exp2 = 0, exp3 = 0, before, after;
        json_t *claims;
        _cleanup_free_ char *sub = NULL;

        assert_non_null(c);
        oneaccess_mode(h, "omit_refresh_token", "0", "expires_in", "3600", NULL);
        open_session(h, c, "oa-ref");
        e = get_token(c, "oa-ref", 0, &token, &exp, NULL);
        assert_null(e);
        claims = get_claims(c, "oa-ref");
        sub = strdup(json_string_value(json_object_get(claims, "sub")));
        json_decref(claims);

        /* The refreshed token lives 5000 s, its expires_in a string again. */
        assert_int_equal(lkh_idp_set(h, "expires_in", "5000"), 0);
        before = time(NULL);
        e = get_token(c, "oa-ref", 7200, &token2, &exp2, NULL);
        after = time(NULL);
        assert_null(e);
        assert_string_not_equal(token, token2);
        assert_in_range(exp2, before + 5000, after + 5000);
        assert_int_equal(stat_of(h, "token_refresh"), 1);
        /* Same iss and sub; the refreshed id_token has no nonce either. */
        claims = get_claims(c, "oa-ref");
        assert_string_equal(json_string_value(json_object_get(claims, "sub")), sub);
        assert_null(json_object_get(claims, "nonce"));
        json_decref(claims);

        /* Nothing more to do: the new token is answered as it is. */
        e = get_token(c, "oa-ref", 0, &token3, &exp3, NULL);
        assert_null(e);
        assert_string_equal(token2, token3);
        assert_int_equal(stat_of(h, "token_refresh"), 1);
        close_session(c, "oa-ref");
        bc_close(c);
}

/* A code used twice: the person reads OneAccess's own words. */
static void test_code_reused(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        _cleanup_free_ char *id2 = NULL, *url2 = NULL, *e = NULL, *msg = NULL;
        struct login l;

        assert_non_null(c);
        oneaccess_mode(h, NULL);
        login(h, c, &l);
        assert_null(l.error);
        e = begin_login(c, me, &id2, &url2);
        assert_null(e);
        e = call_ss(c, "CompleteLogin", id2, l.code, NULL, &msg);
        assert_non_null(e);
        assert_string_equal(e, ERR("InvalidGrant"));
        print_message("    InvalidGrant: %s\n", msg);
        assert_non_null(strstr(msg, ONEACCESS_INVALID_CODE));
        assert_non_null(strstr(msg, "invalid_grant"));
        /* No secret in what the person reads. */
        assert_null(strstr(msg, l.code));
        free(e);
        e = call_ss(c, "CancelLogin", l.id, NULL, NULL, NULL);
        assert_null(e);
        free(e);
        e = call_ss(c, "CancelLogin", id2, NULL, NULL, NULL);
        assert_null(e);
        login_clear(&l);
        bc_close(c);
}

/* The profile allows the application's one algorithm: an RS256 id_token is refused. */
static void test_other_alg_refused(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        struct login l;

        assert_non_null(c);
        oneaccess_mode(h, "alg", "RS256", NULL);
        login(h, c, &l);
        assert_non_null(l.error);
        assert_string_equal(l.error, ERR("InvalidIdToken"));
        print_message("    InvalidIdToken: %s\n", l.message);
        assert_non_null(strstr(l.message, "RS256"));
        login_clear(&l);
        bc_close(c);
}

/* nonce = if-present (the profile): a nonce that is there must still be ours. */
static void test_wrong_nonce_refused(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        struct login l;

        assert_non_null(c);
        oneaccess_mode(h, "wrong_nonce", "1", NULL);
        login(h, c, &l);
        assert_string_equal(l.error, ERR("InvalidIdToken"));
        assert_non_null(strstr(l.message, "nonce"));
        login_clear(&l);
        bc_close(c);
}

/* The same profile with nonce = required: OneAccess's id_token (no nonce) is refused. */
static void test_nonce_required_refuses(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open();
        struct login l;

        assert_non_null(c);
        oneaccess_mode(h, NULL);
        login(h, c, &l);
        assert_non_null(l.error);
        assert_string_equal(l.error, ERR("InvalidIdToken"));
        print_message("    InvalidIdToken: %s\n", l.message);
        assert_non_null(strstr(l.message, "nonce"));
        login_clear(&l);

        /* The same broker takes an id_token that echoes the nonce. */
        assert_int_equal(lkh_idp_set(h, "omit_nonce", "0"), 0);
        login(h, c, &l);
        assert_null(l.error);
        {
                _cleanup_free_ char *e = call_ss(c, "CancelLogin", l.id, NULL, NULL, NULL);
                /* A completed login waits for OpenSession; cancelling it drops the tokens. */
                assert_null(e);
        }
        login_clear(&l);
        bc_close(c);
}

int main(void)
{
        const struct CMUnitTest if_present[] = {
                cmocka_unit_test(test_doc_quotes_example),
                cmocka_unit_test(test_idp_mode),
                cmocka_unit_test(test_flow_expires_in_string),
                cmocka_unit_test(test_flow_expires_in_number),
                cmocka_unit_test(test_no_refresh_token),
                cmocka_unit_test(test_refresh),
                cmocka_unit_test(test_code_reused),
                cmocka_unit_test(test_other_alg_refused),
                cmocka_unit_test(test_wrong_nonce_refused),
        };
        const struct CMUnitTest required[] = {
                cmocka_unit_test(test_nonce_required_refuses),
        };
        struct passwd *pw = getpwuid(geteuid());
        int failed = 0;

        if (!pw) {
                fprintf(stderr, "no passwd entry for uid %u\n", (unsigned)geteuid());
                return 1;
        }
        me = strdup(pw->pw_name);
        if (!me)
                return 1;
        failed += cmocka_run_group_tests_name("oneaccess profile (nonce = if-present)", if_present,
                                              setup_if_present, lkh_teardown);
        failed += cmocka_run_group_tests_name("oneaccess profile with nonce = required", required,
                                              setup_nonce_required, lkh_teardown);
        free(me);
        return failed ? 1 : 0;
}
