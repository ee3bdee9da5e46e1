/* SPDX-License-Identifier: MIT */
/*
 * No secret in the open (issue 8, part 6). Every flow runs with the broker in --debug: logins
 * through D-Bus with client_secret_post and client_secret_basic, through pam_latchkey.so
 * (pam_start_confdir, real libpam, the test's own conversation) and through `latchkeyctl
 * login`; refreshes; close with revocation; invalid_grant for a code and for a refresh token;
 * id_tokens with a bad signature and a wrong nonce. Everything the test can see is collected:
 * the broker's stderr, every D-Bus error message, every PAM message, latchkeyctl's stdout and
 * stderr, and /proc/PID/cmdline and /proc/PID/environ of the broker, the IdP and the bus.
 *
 * Then every secret the test can know is searched for in all of it: each authorization code
 * (from the browser step), each access token (GetToken), each refresh and id token (read from
 * the session file, which root may read), the client secret, and the state and nonce of every
 * login (from its authorize URL). The authorize URL itself is shown to the person by design
 * (PAM's info message, latchkeyctl's stderr), so exactly those URLs are cut out before the
 * search; anywhere else their state and nonce count as leaks.
 *
 * The PKCE verifier never reaches the test: it goes from the broker to the token endpoint only.
 * What the test has is its S256 challenge (code_challenge in the authorize URL), so it hashes
 * every run of RFC 7636 characters of verifier length (43..128) in the collected text and fails
 * when one hashes to a challenge: the verifier itself, found wherever it appears.
 *
 * The offline PIN (issue 21): set after a PAM sign-in, then typed at a PIN-only service, right
 * and wrong; the PIN, and the salt and hash of its Argon2id record (read from the state file),
 * count as secrets too.
 *
 * Also: the session files are 0600, the sessions dir and the state dir 0700, and the broker,
 * started as root outside its unit, says so exactly once in its log.
 */
#include <ctype.h>
#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <poll.h>
#include <security/pam_appl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "oidc/b64url.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"
#include "tests/harness/session_files.h"

#define ERR BC_ERR

#define VERIFIER_MIN 43
#define VERIFIER_MAX 128

/* ---- what was seen, and what must not be in it ---- */

struct text {
        char *data;
        size_t len;
};

static struct text seen;              /* everything collected, each piece on its own line */
static char *secrets[256];            /* strings that must not appear */
static const char *secret_what[256];  /* what each one is, for the failure message */
static size_t n_secrets;
static char *challenges[64];          /* S256 code_challenges of every login */
static size_t n_challenges;
static char *public_urls[64];         /* authorize URLs, shown to the person by design */
static size_t n_public_urls;

static void see(const char *where, const char *data, size_t len)
{
        char *p = realloc(seen.data, seen.len + strlen(where) + len + 4);

        assert_non_null(p);
        seen.data = p;
        seen.len += (size_t)snprintf(p + seen.len, strlen(where) + 3, "%s: ", where);
        memcpy(p + seen.len, data, len);
        seen.len += len;
        p[seen.len++] = '\n';
        p[seen.len] = '\0';
}

static void see_str(const char *where, const char *s)
{
        if (s)
                see(where, s, strlen(s));
}

static void secret(const char *what, const char *s)
{
        assert_non_null(s);
        assert_true(strlen(s) >= 8);
        assert_true(n_secrets < ELEMENTSOF(secrets));
        secret_what[n_secrets] = what;
        secrets[n_secrets++] = strdup(s);
}

/* The state, nonce and challenge of an authorize URL; the URL itself is public. */
static void authorize_url_seen(const char *url)
{
        char *state = NULL, *nonce = NULL, *challenge = NULL;

        assert_int_equal(lkh_url_param(url, "state", &state), 0);
        assert_int_equal(lkh_url_param(url, "nonce", &nonce), 0);
        assert_int_equal(lkh_url_param(url, "code_challenge", &challenge), 0);
        secret("a login's state", state);
        secret("a login's nonce", nonce);
        assert_true(n_challenges < ELEMENTSOF(challenges));
        challenges[n_challenges++] = challenge;
        assert_true(n_public_urls < ELEMENTSOF(public_urls));
        public_urls[n_public_urls++] = strdup(url);
        free(state);
        free(nonce);
}

/* ---- a small D-Bus client ---- */

static DBusConnection *bus;

/* Sends m; the reply, or NULL with *ret_error (the error name) and the message recorded. */
static DBusMessage *send_call(DBusMessage *m, char **ret_error)
{
        struct bc_reply r;

        if (bc_call(bus, m, 60000, &r) == 0)
                return TAKE_PTR(r.msg);
        see_str("D-Bus error", r.error);
        see_str("D-Bus error message", r.message);
        if (ret_error)
                *ret_error = TAKE_PTR(r.error);
        else
                fprintf(stderr, "unexpected error %s: %s\n", r.error, r.message);
        bc_reply_clear(&r);
        return NULL;
}

static void begin_login(const char *user, char **ret_id, char **ret_url)
{
        DBusMessage *m = bc_new("BeginLogin"), *reply;
        const char *id, *url;

        dbus_message_append_args(m, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID);
        bc_append_options(m, NULL, 0);
        reply = send_call(m, NULL);
        assert_non_null(reply);
        assert_true(dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING,
                                          &url, DBUS_TYPE_INVALID));
        *ret_id = strdup(id);
        *ret_url = strdup(url);
        dbus_message_unref(reply);
        authorize_url_seen(*ret_url);
}

/* A call with string arguments; NULL on success, else the error name. */
static char *call_ss(const char *method, const char *a1, const char *a2)
{
        DBusMessage *m = bc_new(method), *reply;
        char *e = NULL;

        if (a2)
                dbus_message_append_args(m, DBUS_TYPE_STRING, &a1, DBUS_TYPE_STRING, &a2,
                                         DBUS_TYPE_INVALID);
        else
                dbus_message_append_args(m, DBUS_TYPE_STRING, &a1, DBUS_TYPE_INVALID);
        reply = send_call(m, &e);
        if (reply)
                dbus_message_unref(reply);
        return e;
}

/* GetToken; NULL on success (the token recorded as a secret), else the error name. */
static char *get_token(const char *session_id, uint32_t min_valid, char **ret_token)
{
        DBusMessage *m = bc_new("GetToken"), *reply;
        const char *token, *type;
        dbus_int64_t exp;
        char *e = NULL;

        bc_append_options(m, session_id, min_valid);
        reply = send_call(m, &e);
        if (!reply)
                return e;
        assert_true(dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64,
                                          &exp, DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID));
        secret("an access token", token);
        if (ret_token)
                *ret_token = strdup(token);
        dbus_message_unref(reply);
        return NULL;
}

/* The browser step: the callback URL; its code is a secret. */
static char *browser(struct lkh *h, const char *url, const char *user)
{
        char *location = NULL, *code = NULL;

        assert_int_equal(lkh_browser_login(h, url, user, false, &location, &code), 0);
        assert_non_null(code);
        secret("an authorization code", code);
        free(code);
        return location;
}

static char *read_file(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "re");
        char *buf;
        size_t len;

        if (!f)
                return NULL;
        buf = calloc(1, 1 << 20);
        assert_non_null(buf);
        len = fread(buf, 1, (1 << 20) - 1, f);
        fclose(f);
        if (ret_len)
                *ret_len = len;
        return buf;
}

/* The refresh and id tokens of a session, from its file (root may read it); checks its mode. */
static void session_file_secrets(struct lkh *h, const char *sid)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        struct stat st;
        json_t *j, *v;

        assert_true(asprintf(&path, "%s/sessions/%s.json", h->state_dir, sid) > 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_uid, geteuid());
        j = lkh_read_session(h, sid);
        assert_non_null(j);
        /* Sealed at rest (issue 22): no token of the session in the file's bytes. */
        {
                size_t len = 0;
                const char *keys[] = {"access_token", "refresh_token", "id_token"};

                text = read_file(path, &len);
                assert_non_null(text);
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        const char *t = json_string_value(json_object_get(j, keys[i]));

                        if (t)
                                assert_null(memmem(text, len, t, strlen(t)));
                }
        }
        v = json_object_get(j, "refresh_token");
        if (json_is_string(v))
                secret("a refresh token", json_string_value(v));
        v = json_object_get(j, "id_token");
        assert_true(json_is_string(v));
        secret("an id_token", json_string_value(v));
        /* The key that seals the files is a secret of its own. */
        {
                _cleanup_free_ char *key = lkh_session_key_hex(h);

                assert_non_null(key);
                secret("the session key", key);
        }
        /* The id_token's signature alone, as a log might cut it. */
        {
                const char *dot = strrchr(json_string_value(v), '.');
                assert_non_null(dot);
                secret("an id_token's signature", dot + 1);
        }
        json_decref(j);
}

/* ---- the broker, with its stderr in a file ---- */

static char *broker_log;

static int setup_broker(void **state, bool basic, bool device)
{
        static const char *const args[] = {"--debug", NULL};
        struct lkh_idp_options o = {.basic = basic};
        struct lkh *h = NULL;
        int r = -1;

        if (lkh_new(&h) < 0 || lkh_start_idp(h, &o) < 0 ||
            (device && (lkh_idp_set(h, "device_discovery", "1") < 0 ||
                        lkh_idp_set(h, "device_interval", "1") < 0)) ||
            lkh_write_config(h, "[sessions]\nrefresh_margin = 60\nrevoke_on_close = yes\n"
                                "[offline]\npin = yes\nargon2_memory = 8192\nargon2_time = 1\n") < 0 ||
            lkh_start_bus(h) < 0)
                goto out;
        free(broker_log);
        if (asprintf(&broker_log, "%s/broker-stderr.log", h->dir) < 0)
                goto out;
        r = lkh_start_broker_logging(h, args, broker_log);
        if (r < 0)
                goto out;
        bus = bc_open(h->bus_address);
        if (!bus) {
                r = -1;
                goto out;
        }
        *state = h;
        return 0;
out:
        lkh_free(h);
        return -1;
}

static int setup_post(void **state)
{
        return setup_broker(state, false, false);
}

static int setup_basic(void **state)
{
        return setup_broker(state, true, false);
}

static int setup_device(void **state)
{
        return setup_broker(state, false, true);
}

static int teardown(void **state)
{
        bc_close(bus);
        bus = NULL;
        lkh_free(*state);
        return 0;
}

static void see_proc(const char *what, pid_t pid)
{
        static const char *const files[] = {"cmdline", "environ"};

        assert_true(pid > 0);
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *path = NULL, *where = NULL, *data = NULL;
                size_t len = 0;

                assert_true(asprintf(&path, "/proc/%d/%s", (int)pid, files[i]) > 0);
                assert_true(asprintf(&where, "%s's %s", what, files[i]) > 0);
                data = read_file(path, &len);
                assert_non_null(data);
                assert_true(len > 0 || streq(files[i], "environ"));
                for (size_t k = 0; k < len; k++) /* NUL-separated: one string to search */
                        if (data[k] == '\0')
                                data[k] = ' ';
                see(where, data, len);
        }
}

/* ---- the search ---- */

static bool verifier_char(char c)
{
        return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* What secret is in text (any secret, or a string hashing to a code_challenge), else NULL. */
static const char *find_leak(char *text, size_t len)
{
        /* Cut out the authorize URLs, shown to the person by design. */
        for (size_t i = 0; i < n_public_urls; i++) {
                size_t ulen = strlen(public_urls[i]);
                for (char *p = text; (p = memmem(p, len - (size_t)(p - text), public_urls[i], ulen));)
                        memset(p, '#', ulen);
        }
        for (size_t i = 0; i < n_secrets; i++)
                if (memmem(text, len, secrets[i], strlen(secrets[i])))
                        return secret_what[i];

        for (size_t start = 0; start < len;) {
                size_t run = 0;

                while (start + run < len && verifier_char(text[start + run]))
                        run++;
                for (size_t off = 0; run >= VERIFIER_MIN && off + VERIFIER_MIN <= run; off++) {
                        for (size_t l = VERIFIER_MIN; l <= VERIFIER_MAX && off + l <= run; l++) {
                                unsigned char md[32];
                                _cleanup_free_ char *b64 = NULL;

                                if (!EVP_Digest(text + start + off, l, md, NULL, EVP_sha256(),
                                                NULL) ||
                                    !(b64 = lk_b64url_encode(md, sizeof(md))))
                                        return "(out of memory while searching)";
                                for (size_t c = 0; c < n_challenges; c++)
                                        if (streq(b64, challenges[c]))
                                                return "a PKCE verifier";
                        }
                }
                start += run ? run : 1;
        }
        return NULL;
}

static void search(const char *what, char *text, size_t len)
{
        const char *found = find_leak(text, len);

        if (found)
                fail_msg("%s found in %s", found, what);
}

/* ---- the flows ---- */

/* Login, session, refresh, close with revocation; then the error flows. */
static void flows_over_dbus(struct lkh *h, const char *sid)
{
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL, *e = NULL, *t1 = NULL;
        _cleanup_free_ char *t2 = NULL, *id2 = NULL, *url2 = NULL;
        long revoked = 0;

        assert_int_equal(lkh_idp_reset(h), 0);
        begin_login("root", &id, &url);
        location = browser(h, url, "root");
        e = call_ss("CompleteLogin", id, location);
        assert_null(e);
        e = call_ss("OpenSession", id, sid);
        assert_null(e);
        e = get_token(sid, 0, &t1);
        assert_null(e);
        session_file_secrets(h, sid);
        e = get_token(sid, 7200, &t2); /* a refresh */
        assert_null(e);
        assert_string_not_equal(t1, t2);
        session_file_secrets(h, sid);
        /* A narrower token (scope, audience; issue 22), and the refresh token it rotated. */
        {
                DBusMessage *reply;
                const char *token, *type, *dot;
                dbus_int64_t exp;
                char *part;

                reply = send_call(bc_get_token_message(sid, "openid", "https://api.example.com",
                                                       0), &e);
                assert_non_null(reply);
                assert_true(dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &token,
                                                  DBUS_TYPE_INT64, &exp, DBUS_TYPE_STRING,
                                                  &type, DBUS_TYPE_INVALID));
                secret("a narrower access token", token);
                dot = strchr(token, '.');
                assert_non_null(dot);
                part = strndup(token, (size_t)(dot - token));
                secret("a narrower access token's random part", part);
                free(part);
                dbus_message_unref(reply);
                session_file_secrets(h, sid);
                /* Refused by name, in a message that must hold no token. */
                reply = send_call(bc_get_token_message(sid, "openid admin", NULL, 0), &e);
                assert_null(reply);
                assert_non_null(e);
                free(TAKE_PTR(e));
        }

        /* Closed: the refresh token is revoked at the provider (after the reply). */
        e = call_ss("CloseSession", sid, NULL);
        assert_null(e);
        for (int i = 0; i < 100 && revoked < 1; i++) {
                usleep(100 * 1000);
                assert_int_equal(lkh_idp_stat(h, "revoke", &revoked), 0);
        }
        assert_true(revoked >= 1);

        /* A refresh the provider refuses: its refresh token must not be in the message. */
        {
                _cleanup_free_ char *lid = NULL, *lurl = NULL, *loc = NULL, *sid2 = NULL;

                assert_true(asprintf(&sid2, "%s-refused", sid) > 0);
                begin_login("root", &lid, &lurl);
                loc = browser(h, lurl, "root");
                e = call_ss("CompleteLogin", lid, loc);
                assert_null(e);
                e = call_ss("OpenSession", lid, sid2);
                assert_null(e);
                session_file_secrets(h, sid2);
                assert_int_equal(lkh_idp_set(h, "refresh_invalid_grant", "1"), 0);
                e = get_token(sid2, 7200, NULL);
                assert_non_null(e);
                free(e);
                e = call_ss("CloseSession", sid2, NULL);
                assert_null(e);
                assert_int_equal(lkh_idp_reset(h), 0);
        }

        /* A code replayed: the provider's real invalid_grant, with its error_description. */
        begin_login("root", &id2, &url2);
        {
                _cleanup_free_ char *code = NULL;
                assert_int_equal(lkh_url_param(location, "code", &code), 0);
                e = call_ss("CompleteLogin", id2, code); /* a bare code: no state to match */
        }
        assert_non_null(e);
        assert_string_equal(e, ERR("InvalidGrant"));
        free(e);
        e = NULL;
        free(location);
        location = NULL;
        e = call_ss("CancelLogin", id2, NULL);
        free(e);
        e = NULL;

        /* The code refused (code_invalid_grant), a bad signature, a wrong nonce. */
        {
                static const char *const sw[][2] = {
                    {"code_invalid_grant", "1"},
                    {"bad_signature", "1"},
                    {"wrong_nonce", "1"},
                    {"wrong_aud", "1"},
                };
                static const char *const want[] = {ERR("InvalidGrant"), ERR("InvalidIdToken"),
                                                   ERR("InvalidIdToken"), ERR("InvalidIdToken")};

                for (size_t i = 0; i < ELEMENTSOF(sw); i++) {
                        _cleanup_free_ char *lid = NULL, *lurl = NULL, *loc = NULL;

                        begin_login("root", &lid, &lurl);
                        loc = browser(h, lurl, "root");
                        assert_int_equal(lkh_idp_set(h, sw[i][0], sw[i][1]), 0);
                        e = call_ss("CompleteLogin", lid, loc);
                        assert_non_null(e);
                        if (!streq(e, want[i]))
                                fail_msg("%s: %s, not %s", sw[i][0], e, want[i]);
                        free(e);
                        e = call_ss("CancelLogin", lid, NULL);
                        free(e);
                        e = NULL;
                        assert_int_equal(lkh_idp_reset(h), 0);
                }
        }
}

/* ---- pam_latchkey.so through libpam, with our own conversation ---- */
/* Single sign-on for this service and every local user (the [pam] settings, as arguments). */
#define SSO_ARGS "services=latchkey-secrets users=*"

struct pam_talk {
        struct lkh *h;
        int infos, errors, prompts;
        const char *password; /* typed into a greeter's password field (authtok) */
};

static int conversation(int n, const struct pam_message **msg, struct pam_response **resp,
                        void *userdata)
{
        struct pam_talk *t = userdata;
        struct pam_response *r = calloc((size_t)n, sizeof(*r));
        static char *last_url;

        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++) {
                const char *text = msg[i]->msg ? msg[i]->msg : "";

                switch (msg[i]->msg_style) {
                case PAM_TEXT_INFO: {
                        const char *u = strstr(text, "https://");
                        t->infos++;
                        if (u) {
                                size_t ulen = strcspn(u, " \n\t");
                                free(last_url);
                                last_url = strndup(u, ulen);
                                if (last_url && strstr(last_url, "code_challenge="))
                                        authorize_url_seen(last_url);
                        }
                        see_str("PAM info", text);
                        break;
                }
                case PAM_ERROR_MSG:
                        t->errors++;
                        see_str("PAM error", text);
                        break;
                case PAM_PROMPT_ECHO_ON:
                case PAM_PROMPT_ECHO_OFF:
                        t->prompts++;
                        see_str("PAM prompt", text);
                        if (t->password && msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
                                r[i].resp = strdup(t->password);
                        else if (last_url) {
                                char *location = NULL, *code = NULL;
                                if (lkh_browser_login(t->h, last_url, "root", false, &location,
                                                      &code) == 0 && code) {
                                        secret("an authorization code", code);
                                        r[i].resp = location;
                                } else {
                                        free(location);
                                }
                                free(code);
                        }
                        if (!r[i].resp)
                                r[i].resp = strdup("no-code");
                        break;
                default:
                        break;
                }
        }
        *resp = r;
        return PAM_SUCCESS;
}

static void pam_flow(struct lkh *h, bool fail_code)
{
        _cleanup_free_ char *confdir = NULL, *service = NULL, *text = NULL;
        struct pam_talk talk = {.h = h};
        struct pam_conv conv = {conversation, &talk};
        pam_handle_t *ph = NULL;
        const char *sid;
        int r;

        assert_true(asprintf(&confdir, "%s/pam.d", h->dir) > 0);
        (void)mkdir(confdir, 0755);
        assert_true(asprintf(&service, "%s/latchkey-secrets", confdir) > 0);
        assert_true(asprintf(&text,
                             "auth     required %s debug noqr tries=1 " SSO_ARGS "\n"
                             "account  required %s debug\n"
                             "session  required %s debug " SSO_ARGS "\n",
                             PAM_LATCHKEY_SO, PAM_LATCHKEY_SO, PAM_LATCHKEY_SO) > 0);
        {
                FILE *f = fopen(service, "we");
                assert_non_null(f);
                fputs(text, f);
                assert_int_equal(fclose(f), 0);
        }
        assert_int_equal(pam_start_confdir("latchkey-secrets", "root", &conv, confdir, &ph),
                         PAM_SUCCESS);
        if (fail_code)
                assert_int_equal(lkh_idp_set(h, "code_invalid_grant", "1"), 0);
        r = pam_authenticate(ph, 0);
        if (fail_code) {
                /* A refused code; with tries=1 that is also the last attempt. */
                if (r != PAM_AUTH_ERR && r != PAM_MAXTRIES)
                        fail_msg("pam_authenticate with a refused code: %s", pam_strerror(ph, r));
                assert_true(talk.errors >= 1);
                assert_int_equal(lkh_idp_reset(h), 0);
                pam_end(ph, r);
                return;
        }
        if (r != PAM_SUCCESS)
                fail_msg("pam_authenticate: %s", pam_strerror(ph, r));
        assert_int_equal(pam_acct_mgmt(ph, 0), PAM_SUCCESS);
        assert_int_equal(pam_open_session(ph, 0), PAM_SUCCESS);
        sid = pam_getenv(ph, "LATCHKEY_SESSION");
        assert_non_null(sid);
        {
                _cleanup_free_ char *e = get_token(sid, 0, NULL);
                assert_null(e);
        }
        session_file_secrets(h, sid);
        {
                char **list = pam_getenvlist(ph);
                for (char **env = list; env && *env; env++) {
                        see_str("PAM environment", *env);
                        free(*env);
                }
                free(list);
        }
        assert_int_equal(pam_close_session(ph, 0), PAM_SUCCESS);
        assert_int_equal(pam_end(ph, PAM_SUCCESS), PAM_SUCCESS);
        assert_true(talk.infos >= 1);
        assert_true(talk.prompts >= 1);
}

/*
 * authtok with a Unix password in the password field (issue 16 item 11): refused
 * by the module, and the password is in no message and in no broker log line.
 */
static void pam_password_flow(struct lkh *h)
{
        static const char password[] = "my unix password 1234";
        _cleanup_free_ char *confdir = lkh_xasprintf("%s/pam.d", h->dir);
        _cleanup_free_ char *service = lkh_xasprintf("%s/latchkey-secrets-greeter", confdir);
        _cleanup_free_ char *text = lkh_xasprintf(
                "auth     required %s debug authtok services=latchkey-secrets-greeter users=*\n",
                PAM_LATCHKEY_SO);
        struct pam_talk talk = {.h = h, .password = password};
        struct pam_conv conv = {conversation, &talk};
        pam_handle_t *ph = NULL;
        FILE *f;

        secret("a Unix password", password);
        (void)mkdir(confdir, 0755);
        f = fopen(service, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(pam_start_confdir("latchkey-secrets-greeter", "root", &conv, confdir, &ph),
                         PAM_SUCCESS);
        assert_int_equal(pam_authenticate(ph, 0), PAM_AUTH_ERR);
        assert_int_equal(talk.prompts, 1);
        assert_int_equal(talk.errors, 1);
        pam_end(ph, PAM_AUTH_ERR);
}

/*
 * The offline PIN: set after a web sign-in (its two echo-off prompts get it), then typed at a
 * PIN-only service, wrong and right. The PIN and its record's salt and hash are secrets.
 */
static void pam_pin_service(struct lkh *h, const char *name, const char *methods)
{
        _cleanup_free_ char *confdir = lkh_xasprintf("%s/pam.d", h->dir);
        _cleanup_free_ char *service = lkh_xasprintf("%s/%s", confdir, name);
        FILE *f;

        (void)mkdir(confdir, 0755);
        f = fopen(service, "we");
        assert_non_null(f);
        fprintf(f, "auth required %s debug noqr tries=1 services=latchkey-secrets-pin users=* "
                   "methods=%s\n", PAM_LATCHKEY_SO, methods);
        assert_int_equal(fclose(f), 0);
}

static int pam_pin_auth(const char *service, const char *pin, struct lkh *h)
{
        _cleanup_free_ char *confdir = lkh_xasprintf("%s/pam.d", h->dir);
        struct pam_talk talk = {.h = h, .password = pin};
        struct pam_conv conv = {conversation, &talk};
        pam_handle_t *ph = NULL;
        int r;

        assert_int_equal(pam_start_confdir(service, "root", &conv, confdir, &ph), PAM_SUCCESS);
        r = pam_authenticate(ph, 0);
        pam_end(ph, r);
        return r;
}

static void pam_pin_flow(struct lkh *h)
{
        static const char pin[] = "pin-of-the-test-8642";
        _cleanup_free_ char *record = NULL;
        const char *hash;

        secret("the offline PIN", pin);
        pam_pin_service(h, "latchkey-secrets-pin", "latchkey-secrets-pin:web+offline");
        pam_pin_service(h, "latchkey-secrets-lock", "latchkey-secrets-lock:pin");
        assert_int_equal(pam_pin_auth("latchkey-secrets-pin", pin, h), PAM_SUCCESS);
        /* Sealed on disk (issue 22 item 4): opened with the key file, as the broker does. */
        record = lkh_read_offline_record(h, 0);
        assert_non_null(record);
        hash = strstr(record, "$argon2id$");
        assert_non_null(hash);
        {
                /* $argon2id$v=19$m=...,t=...,p=...$SALT$HASH */
                char *salt = strdup(strchr(strchr(strchr(hash + 1, '$') + 1, '$') + 1, '$') + 1);
                char *end = strchr(salt, '$'), *digest;

                assert_non_null(end);
                *end = 0;
                digest = strndup(end + 1, strcspn(end + 1, "\n"));
                secret("the offline PIN's salt", salt);
                secret("the offline PIN's hash", digest);
                free(salt);
                free(digest);
        }
        assert_int_equal(pam_pin_auth("latchkey-secrets-lock", "wrong-pin-1234", h), PAM_AUTH_ERR);
        assert_int_equal(pam_pin_auth("latchkey-secrets-lock", pin, h), PAM_SUCCESS);
}

/* ---- latchkeyctl ---- */

/* Runs latchkeyctl args with input on stdin (may be NULL); collects stdout and stderr. For
 * `login`, plays the browser when the address appears. Returns the exit status. */
static int latchkeyctl(struct lkh *h, const char *const *args, bool stdout_has_token,
                       char **ret_stdout)
{
        const char *argv[16];
        int in[2], out[2], err[2], status;
        struct text o = {0}, e = {0};
        bool answered = false, is_login = streq(args[0], "login");
        size_t n = 0;
        pid_t pid;

        argv[n++] = LATCHKEYCTL_PATH;
        for (size_t i = 0; args[i] && n < 15; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        assert_int_equal(pipe2(in, O_CLOEXEC), 0);
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        assert_int_equal(pipe2(err, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(in[0], STDIN_FILENO);
                dup2(out[1], STDOUT_FILENO);
                dup2(err[1], STDERR_FILENO);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        close(err[1]);
        if (!is_login) {
                close(in[1]);
                in[1] = -1;
        }
        for (int open_fds = 2; open_fds > 0;) {
                struct pollfd p[2] = {{.fd = out[0], .events = POLLIN},
                                      {.fd = err[0], .events = POLLIN}};
                int pr = poll(p, 2, 60000);

                assert_true(pr > 0);
                for (int k = 0; k < 2; k++) {
                        struct text *t = k ? &e : &o;
                        char buf[4096];
                        ssize_t got;

                        if (p[k].fd < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        got = read(p[k].fd, buf, sizeof(buf));
                        if (got <= 0) {
                                close(k ? err[0] : out[0]);
                                if (k)
                                        err[0] = -1;
                                else
                                        out[0] = -1;
                                open_fds--;
                                continue;
                        }
                        t->data = realloc(t->data, t->len + (size_t)got + 1);
                        assert_non_null(t->data);
                        memcpy(t->data + t->len, buf, (size_t)got);
                        t->len += (size_t)got;
                        t->data[t->len] = '\0';
                }
                if (is_login && !answered && e.data && strstr(e.data, "Then paste")) {
                        const char *u = strstr(e.data, "https://");
                        _cleanup_free_ char *url = NULL, *location = NULL;

                        assert_non_null(u);
                        url = strndup(u, strcspn(u, " \n"));
                        authorize_url_seen(url);
                        location = browser(h, url, "root");
                        assert_true(write(in[1], location, strlen(location)) > 0);
                        assert_int_equal(write(in[1], "\n", 1), 1);
                        close(in[1]);
                        in[1] = -1;
                        answered = true;
                }
                if (out[0] < 0 && err[0] < 0)
                        break;
        }
        if (in[1] >= 0)
                close(in[1]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        {
                _cleanup_free_ char *w1 = NULL, *w2 = NULL;
                assert_true(asprintf(&w1, "latchkeyctl %s stderr", args[0]) > 0);
                assert_true(asprintf(&w2, "latchkeyctl %s stdout", args[0]) > 0);
                if (e.len)
                        see(w1, e.data, e.len);
                /* `latchkeyctl token` prints the access token: that is its job. Its stdout is
                 * checked here instead: one line, nothing but an access token GetToken gave. */
                if (o.len && !stdout_has_token)
                        see(w2, o.data, o.len);
        }
        if (ret_stdout)
                *ret_stdout = o.data ? o.data : strdup("");
        else
                free(o.data);
        free(e.data);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void cli_flows(struct lkh *h)
{
        _cleanup_free_ char *sid = NULL, *tok = NULL, *out = NULL;

        {
                const char *args[] = {"login", "--no-qr", "root", NULL};
                assert_int_equal(latchkeyctl(h, args, false, &sid), 0);
                sid[strcspn(sid, "\n")] = '\0';
                assert_true(*sid);
        }
        session_file_secrets(h, sid);
        {
                const char *args[] = {"token", "--session", sid, NULL};
                assert_int_equal(latchkeyctl(h, args, true, &tok), 0);
                tok[strcspn(tok, "\n")] = '\0';
                secret("an access token", tok);
        }
        {
                const char *args[] = {"token", "--session", sid, "--min-valid", "7200", NULL};
                _cleanup_free_ char *t2 = NULL;
                assert_int_equal(latchkeyctl(h, args, true, &t2), 0);
                t2[strcspn(t2, "\n")] = '\0';
                secret("an access token", t2);
                assert_string_not_equal(tok, t2);
        }
        session_file_secrets(h, sid);
        {
                const char *status_args[] = {"status", "--session", sid, NULL};
                const char *json_args[] = {"status", "--session", sid, "--json", NULL};
                const char *claims_args[] = {"claims", "--session", sid, NULL};
                const char *sessions_args[] = {"sessions", NULL};
                const char *check_args[] = {"check-config", h->config_file, NULL};
                const char *bad_args[] = {"token", "--session", "no-such-session", NULL};
                assert_int_equal(latchkeyctl(h, status_args, false, NULL), 0);
                assert_int_equal(latchkeyctl(h, json_args, false, NULL), 0);
                assert_int_equal(latchkeyctl(h, claims_args, false, NULL), 0);
                assert_int_equal(latchkeyctl(h, sessions_args, false, NULL), 0);
                assert_int_equal(latchkeyctl(h, check_args, false, &out), 0);
                assert_int_not_equal(latchkeyctl(h, bad_args, false, NULL), 0);
        }
        {
                const char *args[] = {"logout", "--session", sid, NULL};
                assert_int_equal(latchkeyctl(h, args, false, NULL), 0);
        }
}

/* ---- the tests ---- */

static void check_everything(struct lkh *h)
{
        _cleanup_free_ char *log = NULL, *sessions = NULL;
        size_t len = 0;
        struct stat st;
        const char *p;
        int lines = 0, status;

        /* Modes on disk. */
        assert_int_equal(stat(h->state_dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_true(asprintf(&sessions, "%s/sessions", h->state_dir) > 0);
        assert_int_equal(stat(sessions, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);

        /* The processes, while they run. */
        see_proc("the broker", h->broker_pid);
        see_proc("the IdP", h->idp_pid);
        see_proc("the bus", h->bus_pid);
        if (getenv("LATCHKEY_TEST_VERBOSE"))
                fprintf(stderr, "---- collected ----\n%s---- end ----\n", seen.data);
        search("the collected messages, argv and environments", seen.data, seen.len);

        /* The broker's log, once it has stopped (and said all it will say); a clean exit. */
        status = lkh_stop_process(&h->broker_pid, 60000);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("the broker's exit: status 0x%x", (unsigned)status);
        log = read_file(broker_log, &len);
        assert_non_null(log);
        /* It is a real log: the sessions' story, with fingerprints instead of tokens. */
        assert_non_null(strstr(log, "sha256:"));
        assert_true(len > 1000);
        for (p = log; (p = strstr(p, "Running as root")); p++)
                lines++;
        if (geteuid() == 0)
                assert_int_equal(lines, 1);
        search("the broker's --debug log", log, len);
        printf("searched %zu bytes of messages and %zu bytes of broker log for %zu secrets and "
               "%zu PKCE verifiers\n",
               seen.len, len, n_secrets, n_challenges);
}

static void reset_seen(void)
{
        for (size_t i = 0; i < n_secrets; i++)
                free(secrets[i]);
        for (size_t i = 0; i < n_challenges; i++)
                free(challenges[i]);
        for (size_t i = 0; i < n_public_urls; i++)
                free(public_urls[i]);
        n_secrets = n_challenges = n_public_urls = 0;
        free(seen.data);
        seen = (struct text){0};
}

static void test_every_flow_post(void **state)
{
        struct lkh *h = *state;

        reset_seen();
        secret("the client secret", h->client_secret);
        flows_over_dbus(h, "sec-post");
        pam_flow(h, false);
        pam_flow(h, true);
        pam_password_flow(h);
        pam_pin_flow(h);
        cli_flows(h);
        check_everything(h);
}

static void test_every_flow_basic(void **state)
{
        struct lkh *h = *state;

        reset_seen();
        secret("the client secret", h->client_secret);
        assert_true(h->client_basic);
        flows_over_dbus(h, "sec-basic");
        check_everything(h);
}

/*
 * The device flow (RFC 8628): a login approved, one refused, one whose code expired, each
 * polled by the broker; then every device code the IdP issued is a secret, and the address
 * with the user code (shown by design) is cut out.
 */
static void test_device_flow(void **state)
{
        struct lkh *h = *state;
        static const char *const answers[] = {"", "access_denied", "expired_token"};
        _cleanup_free_ char *body = NULL;
        json_t *list, *v;
        long status = 0;
        size_t i;

        reset_seen();
        secret("the client secret", h->client_secret);
        for (i = 0; i < ELEMENTSOF(answers); i++) {
                _cleanup_free_ char *id = NULL, *url = NULL, *e = NULL, *token = NULL;
                _cleanup_free_ char *sid = NULL;
                DBusMessage *m = bc_new("BeginLogin"), *reply;
                const char *rid, *rurl;

                dbus_message_append_args(m, DBUS_TYPE_STRING, &(const char *){"root"},
                                         DBUS_TYPE_INVALID);
                bc_append_options(m, NULL, 0);
                reply = send_call(m, NULL);
                assert_non_null(reply);
                assert_true(dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &rid,
                                                  DBUS_TYPE_STRING, &rurl, DBUS_TYPE_INVALID));
                id = strdup(rid);
                url = strdup(rurl);
                dbus_message_unref(reply);
                assert_non_null(strstr(url, "/device?user_code="));
                public_urls[n_public_urls++] = strdup(url);
                assert_int_equal(lkh_idp_set(h, "device_answer", answers[i]), 0);
                if (!*answers[i])
                        assert_int_equal(lkh_device_approve(h, url, "root", false), 0);
                e = call_ss("WaitLogin", id, NULL);
                if (!*answers[i]) {
                        assert_null(e);
                        assert_true(asprintf(&sid, "sec-device-%zu", i) > 0);
                        assert_null(call_ss("OpenSession", id, sid));
                        assert_null(get_token(sid, 0, &token));
                        session_file_secrets(h, sid);
                        assert_null(call_ss("CloseSession", sid, NULL));
                } else {
                        assert_non_null(e);
                }
        }
        assert_int_equal(lkh_idp_set(h, "device_answer", ""), 0);
        assert_int_equal(lkh_http(h, "/control/devices", NULL, NULL, &status, &body, NULL), 0);
        assert_int_equal(status, 200);
        list = json_loads(body, 0, NULL);
        assert_int_equal(json_array_size(list), ELEMENTSOF(answers));
        json_array_foreach(list, i, v)
                secret("a device code", json_string_value(json_object_get(v, "device_code")));
        json_decref(list);
        check_everything(h);
}

/* The search itself finds what it looks for (a test that cannot fail is a defect). */
static void test_search_finds(void **state)
{
        char text[512];
        char verifier[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        _cleanup_free_ char *challenge = NULL;
        unsigned char md[32];
        const char *found;

        reset_seen();
        assert_true(EVP_Digest(verifier, strlen(verifier), md, NULL, EVP_sha256(), NULL));
        challenge = lk_b64url_encode(md, sizeof(md));
        /* RFC 7636's own example. */
        assert_string_equal(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        challenges[n_challenges++] = strdup(challenge);
        snprintf(text, sizeof(text), "debug: exchanging code_verifier=%s&x=1\n", verifier);
        found = find_leak(text, strlen(text));
        assert_non_null(found);
        assert_string_equal(found, "a PKCE verifier");
        /* Inside a longer run of the same characters, too. */
        snprintf(text, sizeof(text), "{\"v\":\"xx.%s~yy\"}", verifier);
        assert_non_null(find_leak(text, strlen(text)));
        snprintf(text, sizeof(text), "challenge %s only", challenge);
        assert_null(find_leak(text, strlen(text)));

        reset_seen();
        secret("a test secret", "abcdefgh12345678");
        snprintf(text, sizeof(text), "token abcdefgh12345678 here");
        assert_non_null(find_leak(text, strlen(text)));

        /* Cut out: an authorize URL carrying the state; the state elsewhere is still found. */
        reset_seen();
        secret("a test state", "STATE12345678");
        public_urls[n_public_urls++] = strdup("https://idp/authorize?state=STATE12345678");
        snprintf(text, sizeof(text), "open https://idp/authorize?state=STATE12345678 now");
        assert_null(find_leak(text, strlen(text)));
        snprintf(text, sizeof(text), "open https://idp/authorize?state=STATE12345678 STATE12345678");
        assert_non_null(find_leak(text, strlen(text)));
        reset_seen();
}

int main(void)
{
        const struct CMUnitTest self[] = {
            cmocka_unit_test(test_search_finds),
        };
        const struct CMUnitTest post[] = {
            cmocka_unit_test(test_every_flow_post),
        };
        const struct CMUnitTest basic[] = {
            cmocka_unit_test(test_every_flow_basic),
        };
        const struct CMUnitTest device[] = {
            cmocka_unit_test(test_device_flow),
        };
        int failed = 0;

        if (geteuid() != 0) {
                fprintf(stderr, "test-secrets needs root (PAM as root, the state files); "
                                "skipping\n");
                return 77;
        }
        failed += cmocka_run_group_tests_name("secrets: the search", self, NULL, NULL);
        failed += cmocka_run_group_tests_name("secrets, client_secret_post", post, setup_post,
                                              teardown);
        failed += cmocka_run_group_tests_name("secrets, client_secret_basic", basic, setup_basic,
                                              teardown);
        failed += cmocka_run_group_tests_name("secrets, the device flow", device, setup_device,
                                              teardown);
        reset_seen();
        free(broker_log);
        return failed ? 1 : 0;
}
