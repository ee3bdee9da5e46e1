/* SPDX-License-Identifier: MIT */
/*
 * pam_latchkey: sign in with the organisation's single sign-on (SPEC §2, §8).
 *
 *   auth     BeginLogin, show the address, ask for the code (or the address the
 *            browser came back to), CompleteLogin; remember the login.
 *   account  vouch for a user this module signed in.
 *   session  hand the login's tokens to the session (OpenSession), and take
 *            them back at the end (CloseSession).
 *
 * The broker keeps every secret; this module is a thin client of it. It keeps
 * no global state, never exits and installs no signal handler: what must
 * survive from auth to session travels in pam_set_data() and, because sshd
 * authenticates in another process than it opens the session in, in the PAM
 * environment.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <syslog.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>

#include "base/qr.h"
#include "base/text.h"
#include "base/util.h"
#include "client/broker_client.h"
#include "pam_module/account.h"
#include "pam_module/gdm_json.h"
#include "pam_module/input_check.h"
#include "pam_module/logind.h"
#include "pam_module/options.h"
#include "pam_module/pam_errors.h"

#define DATA_LOGIN_ID "latchkey_login_id"
#define DATA_LOGIN_USER "latchkey_login_user"
#define DATA_SESSION "latchkey_session"
#define ENV_LOGIN_ID "LATCHKEY_LOGIN_ID"
#define ENV_LOGIN_USER "LATCHKEY_LOGIN_USER"
#define ENV_SESSION "LATCHKEY_SESSION"
#define ENV_XDG_SESSION "XDG_SESSION_ID"
#define PROMPT "Code or address from the browser: "
/* Where the broker can finish the login by itself (the callback listener). */
#define PROMPT_ENTER "Press Enter when you have signed in (or paste the code): "
/* Slack beyond the login's own lifetime for a WaitLogin to be answered. */
#define WAIT_SLACK_MS 10000
#define PIN_PROMPT "PIN: "
#define PIN_NEW_PROMPT "Set a PIN for signing in while the identity provider cannot be reached (Enter to skip): "
#define PIN_AGAIN_PROMPT "The same PIN again: "
#define SESSION_ID_BYTES 16
/*
 * With authtok the answer comes from a password field, which may hold the
 * person's Unix password. A bare code shorter than this is taken for one and
 * sent nowhere: real providers' codes are longer (OneAccess 32 to 64, Dex 26,
 * the test provider 43). CODE_MAX is the broker's (oidc/answer.c).
 */
#define CODE_MIN 20
#define CODE_MAX 2048

/* A user name as it may appear in a log line: the name comes from whoever is logging in. */
struct log_name {
        char s[LK_ARG_ID_MAX + 4];
};

static const char *log_name(const char *user, struct log_name *buf)
{
        lk_text_escape(user ? user : "(unknown)", buf->s, sizeof(buf->s));
        return buf->s;
}

static void free_data(pam_handle_t *pamh, void *data, int status)
{
        lk_secret_free(data);
}

/*
 * The decision point for a failed broker call: logs it, tells the person
 * why in one line (lead first, where given), and returns the PAM code from
 * the table. Nothing is shown when the answer is PAM_IGNORE: not ours to
 * explain.
 */
static int report(pam_handle_t *pamh, const struct options *o, enum lkp_call call, const char *user,
                  const char *lead, const struct lk_client_error *e)
{
        const struct lkp_error_row *row = lkp_error_lookup(e->name);
        const char *text = row->own_text && *e->message ? e->message : row->text;
        int pam = lkp_error_pam(row, call, o);
        struct log_name n;

        if (pam == PAM_IGNORE) {
                if (o->debug)
                        pam_syslog(pamh, LOG_DEBUG, "not handling %s: %s", log_name(user, &n), e->name);
                return pam;
        }
        pam_syslog(pamh, pam == PAM_AUTHINFO_UNAVAIL ? LOG_ERR : LOG_NOTICE,
                   "%s for %s: %s: %s", lead ? lead : "sign-in failed", log_name(user, &n), e->name,
                   *e->message ? e->message : row->text);
        if (lead)
                pam_error(pamh, "%s: %s", lead, text);
        else
                pam_error(pamh, "%s", text);
        return pam;
}

/*
 * Broker calls (client/broker_client.h) wait at most the timeout= option. Each but BeginLogin
 * gets a private connection of its own (c = NULL), closed before it returns: the module keeps
 * no state between PAM calls and leaks no descriptor into the login program.
 */
static int timeout_ms(const struct options *o)
{
        return (int)o->timeout * 1000;
}

static int local_error(struct lk_client_error *e, const char *name, const char *message)
{
        snprintf(e->name, sizeof(e->name), "%s", name);
        snprintf(e->message, sizeof(e->message), "%s", message ? message : "");
        return -EIO;
}

/* libpam logs an error for removing what is not there; so look first. */
static void unset_env(pam_handle_t *pamh, const char *name)
{
        if (pam_getenv(pamh, name))
                (void)pam_putenv(pamh, name); /* a name without '=' removes it */
}

/* Forgets a login recorded by an earlier pam_authenticate() on this handle. */
static void forget_login(pam_handle_t *pamh)
{
        (void)pam_set_data(pamh, DATA_LOGIN_ID, NULL, NULL);
        (void)pam_set_data(pamh, DATA_LOGIN_USER, NULL, NULL);
        unset_env(pamh, ENV_LOGIN_ID);
        unset_env(pamh, ENV_LOGIN_USER);
}

static bool user_valid(const char *user)
{
        size_t len = user ? strnlen(user, LK_ARG_ID_MAX + 1) : 0;

        return len > 0 && len <= LK_ARG_ID_MAX && lkp_utf8_valid(user, len);
}

/* A login this module completed, and the user it signed in. */
struct login {
        const char *id;
        const char *user; /* NULL when not known */
};

/*
 * From this handle; else (sshd opens the session in another process than it
 * authenticated in) from the PAM environment. Only valid until forget_login().
 */
static bool find_login(pam_handle_t *pamh, struct login *ret)
{
        const void *id = NULL, *user = NULL;
        const char *env;

        if (pam_get_data(pamh, DATA_LOGIN_ID, &id) == PAM_SUCCESS && id) {
                if (pam_get_data(pamh, DATA_LOGIN_USER, &user) != PAM_SUCCESS)
                        user = NULL;
                *ret = (struct login){ id, user };
                return true;
        }
        env = pam_getenv(pamh, ENV_LOGIN_ID);
        if (!lk_reply_word_valid(env, LK_ARG_ID_MAX))
                return false;
        ret->id = env;
        env = pam_getenv(pamh, ENV_LOGIN_USER);
        ret->user = user_valid(env) ? env : NULL;
        return true;
}

/*
 * Another module may change PAM_USER after auth: the login's tokens and its
 * "yes" are for the user it signed in, and nobody else. PAM_PERM_DENIED when
 * PAM_USER is not that user (or that user is not known).
 */
static int check_login_user(pam_handle_t *pamh, const struct login *l)
{
        const char *user = NULL;
        struct log_name a, b;

        (void)pam_get_item(pamh, PAM_USER, (const void **)&user);
        if (l->user && user && streq(l->user, user))
                return PAM_SUCCESS;
        pam_syslog(pamh, LOG_NOTICE, "the user changed from %s to %s after single sign-on, refusing",
                   log_name(l->user, &a), log_name(user, &b));
        pam_error(pamh, "The user changed after single sign-on; refusing.");
        return PAM_PERM_DENIED;
}

/* Sets NAME=value in the PAM environment. */
static int put_env(pam_handle_t *pamh, const char *name, const char *value)
{
        char *s = NULL;
        int r;

        if (asprintf(&s, "%s=%s", name, value) < 0)
                return PAM_BUF_ERR;
        r = pam_putenv(pamh, s);
        lk_secret_free(s);
        return r;
}

/* PAM_USER, when it is an SSO user (else PAM_IGNORE, quietly) who exists locally. */
static int get_user(pam_handle_t *pamh, const struct options *o, const char **ret)
{
        struct lk_client_error e = {};
        const char *user = NULL;
        struct log_name n;
        int r;

        r = pam_get_user(pamh, &user, NULL);
        if (r == PAM_CONV_AGAIN)
                return PAM_INCOMPLETE;
        if (r != PAM_SUCCESS) {
                pam_syslog(pamh, LOG_ERR, "cannot get the user name: %s", pam_strerror(pamh, r));
                return r;
        }
        if (user_valid(user) && !lkp_sso_user(o, pamh, user)) {
                if (o->debug)
                        pam_syslog(pamh, LOG_DEBUG, "%s is not a single sign-on user (users, groups "
                                   "in [pam] of %s), ignoring", log_name(user, &n), o->config);
                return PAM_IGNORE;
        }
        if (!user_valid(user) || !pam_modutil_getpwnam(pamh, user)) {
                local_error(&e, LKP_ERROR_USER_UNKNOWN, "no such local user");
                return report(pamh, o, LKP_CALL_BEGIN, user, NULL, &e);
        }
        *ret = user;
        return PAM_SUCCESS;
}

/*
 * sshd's keyboard-interactive shows PAM_TEXT_INFO only together with the next prompt: there,
 * what must be seen goes into a prompt, and the device flow needs one (Enter). A console
 * login (login, a greeter) shows text at once and can wait without asking anything.
 */
static bool text_needs_prompt(pam_handle_t *pamh)
{
        const char *service = NULL, *tty = NULL;

        (void)pam_get_item(pamh, PAM_SERVICE, (const void **)&service);
        (void)pam_get_item(pamh, PAM_TTY, (const void **)&tty);
        /* sshd on Linux sets PAM_TTY "ssh" for the authentication (PAM_TTY_KLUDGE). */
        return (service && streq(service, "sshd")) || (tty && streq(tty, "ssh"));
}

/*
 * The address on a line of its own, so that it can be copied; then the QR code, with qr; for
 * the device flow the user code to confirm. Over sshd the device flow's address goes into the
 * prompt instead (device_prompt), so only the QR code is shown here.
 */
static int show_address(pam_handle_t *pamh, int flags, const struct options *o, const char *url,
                        const char *user_code)
{
        _cleanup_free_ char *qr = NULL;
        bool in_prompt = user_code && text_needs_prompt(pamh);
        int r = PAM_SUCCESS;

        if (!in_prompt) {
                r = pam_info(pamh, "To sign in, open this address in a browser:");
                if (r == PAM_SUCCESS)
                        r = pam_info(pamh, "%s", url);
                if (r == PAM_SUCCESS && user_code)
                        r = pam_info(pamh, "and confirm the code %s there.", user_code);
        }
        if (r != PAM_SUCCESS) {
                pam_syslog(pamh, LOG_ERR, "cannot show the sign-in address: %s", pam_strerror(pamh, r));
                return r;
        }
        if (!o->qr || (flags & PAM_SILENT))
                return PAM_SUCCESS;

        r = lk_qr_render(url, &qr);
        if (r == -ENOMEM)
                return PAM_BUF_ERR;
        if (r < 0) {
                pam_syslog(pamh, LOG_WARNING, "the sign-in address (%zu bytes) does not fit a QR code, "
                           "showing it without one", strlen(url));
                return PAM_SUCCESS;
        }
        r = pam_info(pamh, "%s", qr);
        if (r != PAM_SUCCESS)
                pam_syslog(pamh, LOG_WARNING, "cannot show the QR code: %s, ignoring", pam_strerror(pamh, r));
        return PAM_SUCCESS;
}

/* The person's answer: asked for, or with authtok the PAM_AUTHTOK a greeter collected. */
static int get_answer(pam_handle_t *pamh, const struct options *o, const char *prompt, char **ret)
{
        char *answer = NULL;
        int r;

        if (o->authtok) {
                const char *tok = NULL;

                r = pam_get_authtok(pamh, PAM_AUTHTOK, &tok, prompt);
                if (r == PAM_SUCCESS && tok) {
                        answer = strdup(tok);
                        if (!answer)
                                return PAM_BUF_ERR;
                }
        } else {
                r = pam_prompt(pamh, PAM_PROMPT_ECHO_ON, &answer, "%s", prompt);
        }
        if (r != PAM_SUCCESS || !answer) {
                lk_secret_free(answer);
                if (r == PAM_SUCCESS)
                        r = PAM_CONV_ERR;
                pam_syslog(pamh, LOG_ERR, "cannot get an answer: %s", pam_strerror(pamh, r));
                return r;
        }
        *ret = answer;
        return PAM_SUCCESS;
}

/* A parameter name=... at the start of the query q or after one of its '&'. */
static bool has_param(const char *q, const char *name)
{
        size_t n = strlen(name);

        for (const char *p = q; p; p = strchr(p, '&')) {
                if (*p == '&')
                        p++;
                if (strncmp(p, name, n) == 0)
                        return true;
        }
        return false;
}

/*
 * Whether the text of a password field can be an answer at all, by the
 * broker's rules (oidc/answer.c): an address (http(s)://, or with a
 * query holding code, state or error), a bare query, or a bare code. Unlike a
 * password, each is printable ASCII without spaces, and a bare code is at
 * least CODE_MIN bytes long.
 */
static bool could_be_answer(const char *s)
{
        const char *q = strchr(s, '?');
        size_t len = strlen(s);

        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
                        return false;
        if (strncasecmp(s, "https://", 8) == 0 || strncasecmp(s, "http://", 7) == 0)
                return true;
        if (q && (has_param(q + 1, "code=") || has_param(q + 1, "state=") ||
                  has_param(q + 1, "error=")))
                return true;
        if (strncmp(s, "code=", 5) == 0 || strncmp(s, "state=", 6) == 0 ||
            strncmp(s, "error=", 6) == 0)
                return true;
        return len >= CODE_MIN && len <= CODE_MAX;
}

/*
 * Checks the (stripped) answer before it goes to the broker; 0 or -EIO with e
 * set. With authtok, what cannot be an answer is taken for a password and
 * sent nowhere (nor logged: the log line names only the rule).
 */
static int check_answer(const struct options *o, const char *answer, struct lk_client_error *e)
{
        size_t len = strnlen(answer, LK_ARG_ANSWER_MAX + 1);

        if (len == 0)
                return local_error(e, LKP_ERROR_BAD_ANSWER, "Nothing was entered.");
        if (len > LK_ARG_ANSWER_MAX)
                return local_error(e, LKP_ERROR_BAD_ANSWER, "That is too long for a code or an address.");
        if (!lkp_utf8_valid(answer, len))
                return local_error(e, LKP_ERROR_BAD_ANSWER, NULL);
        if (o->authtok && !could_be_answer(answer))
                return local_error(e, LKP_ERROR_BAD_ANSWER,
                                   "That is not a code or an address from the sign-in page; "
                                   "it was not sent anywhere.");
        return 0;
}

/* The greeter speaks GDM's JSON messages, and the broker can finish the login itself. */
static bool use_gdm_json(pam_handle_t *pamh, const struct lk_client_login_info *info)
{
        return (info->device || info->callback) && lkp_gdm_json_offered(pamh) >= 0;
}

/*
 * BeginLogin and its address shown; *conn and *login_id (the earlier login's, if any) are
 * replaced. *conn stays open until the answer is in: the broker ends the login when it closes.
 */
static int begin(pam_handle_t *pamh, int flags, const struct options *o, const char *user,
                 DBusConnection **conn, char **login_id, struct lk_client_login_info *info)
{
        _cleanup_free_ char *url = NULL;
        struct lk_client_error e = {};
        int r;

        lk_client_disconnect(TAKE_PTR(*conn));
        lk_secret_free(TAKE_PTR(*login_id));
        lk_client_login_info_clear(info);
        /* Until the login is complete the broker ends it when this connection closes
         * (end_with_caller), so a conversation that dies (sshd's child killed when the client
         * drops) frees its login at once. */
        r = lk_client_connect(conn, &e);
        if (r == 0)
                r = lk_client_begin_login(*conn, timeout_ms(o), user, true, login_id, &url, &e);
        if (r < 0)
                lk_client_disconnect(TAKE_PTR(*conn));
        if (r == -ENOMEM)
                return PAM_BUF_ERR;
        if (r < 0)
                return report(pamh, o, LKP_CALL_BEGIN, user, NULL, &e);
        /* The flow, the user code, whether the broker finishes by itself. A broker without
         * GetLoginInfo (an older one) knows only the code flow: paste, as before. */
        if (lk_client_get_login_info(*conn, timeout_ms(o), *login_id, info, &e) < 0) {
                if (o->debug)
                        pam_syslog(pamh, LOG_DEBUG, "GetLoginInfo failed: %s; pasting the code",
                                   e.name);
                lk_client_login_info_clear(info);
        }
        /* GNOME's login screen shows it itself, from the JSON message (gdm_sign_in). */
        if (use_gdm_json(pamh, info))
                return PAM_SUCCESS;
        return show_address(pamh, flags, o, url, info->device ? info->user_code : NULL);
}

/*
 * WaitLogin: the broker finishes the login itself (the device flow's approval, the callback
 * listener's redirect) and answers with the user, or why not.
 */
static int wait_login(pam_handle_t *pamh, const struct options *o, const char *user,
                      const char *login_id, const struct lk_client_login_info *info)
{
        _cleanup_free_ char *vouched = NULL;
        struct lk_client_error e = {};
        long wait_ms = (long)info->seconds_left * 1000 + WAIT_SLACK_MS;
        int r;

        if (o->debug)
                pam_syslog(pamh, LOG_DEBUG, "waiting up to %u s for the sign-in to complete",
                           info->seconds_left);
        r = lk_client_wait_login(NULL, wait_ms > INT32_MAX ? INT32_MAX : (int)wait_ms, login_id,
                                 &vouched, &e);
        if (r == -ENOMEM)
                return PAM_BUF_ERR;
        if (r < 0)
                return report(pamh, o, LKP_CALL_COMPLETE, user, NULL, &e);
        if (!streq(vouched, user)) {
                local_error(&e, LKP_ERROR_USER_MISMATCH,
                            "You signed in at the identity provider as a different user.");
                return report(pamh, o, LKP_CALL_COMPLETE, user, NULL, &e);
        }
        return PAM_SUCCESS;
}

/* Whether the broker says the login has expired (Done came too late: a new address). */
static bool login_expired(const struct options *o, const char *login_id)
{
        _cleanup_(lk_client_login_info_clear) struct lk_client_login_info now = {};
        struct lk_client_error e = {};

        return lk_client_get_login_info(NULL, timeout_ms(o), login_id, &now, &e) < 0 &&
               streq(e.name, LK_BUS_ERROR_LOGIN_EXPIRED);
}

/*
 * GNOME's login screen: the eidp web-login mechanism (the address, the code, how long it
 * holds) in a JSON message; the greeter answers when the person presses Done, then the broker
 * finishes. When Done comes after the login has expired, a new login (a new address) is sent,
 * at most `tries` times in all.
 */
static int gdm_sign_in(pam_handle_t *pamh, int flags, const struct options *o, const char *user,
                       DBusConnection **conn, char **login_id, struct lk_client_login_info *info)
{
        for (unsigned round = 1;; round++) {
                _cleanup_free_ char *request = NULL, *reply = NULL;
                int type = lkp_gdm_json_offered(pamh);
                struct log_name n;
                int r;

                request = lkp_gdm_eidp_request(info->url, info->device ? info->user_code : NULL,
                                               info->seconds_left);
                if (!request)
                        return PAM_BUF_ERR;
                r = lkp_gdm_json_exchange(pamh, type, request, &reply);
                if (r != PAM_SUCCESS) {
                        pam_syslog(pamh, LOG_ERR, "the greeter's JSON conversation failed: %s",
                                   pam_strerror(pamh, r));
                        return r;
                }
                r = lkp_gdm_eidp_reply_parse(reply, strlen(reply));
                if (r == -ECANCELED) {
                        pam_syslog(pamh, LOG_NOTICE, "sign-in for %s cancelled at the greeter",
                                   log_name(user, &n));
                        return PAM_AUTH_ERR;
                }
                if (r < 0) {
                        pam_syslog(pamh, LOG_ERR, "the greeter's JSON reply is not the "
                                                  "auth-mechanisms protocol's");
                        return PAM_CONV_ERR;
                }
                if (round >= o->tries || !login_expired(o, *login_id))
                        return wait_login(pamh, o, user, *login_id, info);
                /* The address has expired meanwhile: a new login, a new address. */
                pam_syslog(pamh, LOG_INFO, "the sign-in address for %s expired at the greeter; "
                                           "sending a new one", log_name(user, &n));
                r = begin(pamh, flags, o, user, conn, login_id, info);
                if (r != PAM_SUCCESS)
                        return r;
                if (!use_gdm_json(pamh, info))
                        return PAM_AUTH_ERR;
        }
}

/* The prompt of the device flow over sshd: the address, the code, then Enter. */
static char *device_prompt(const struct lk_client_login_info *info)
{
        char *s = NULL;

        if (asprintf(&s, "To sign in, open %s and confirm the code %s there. Press Enter when "
                         "you have signed in: ",
                     info->url, info->user_code) < 0)
                return NULL;
        return s;
}

/*
 * Up to `tries` answers (one with authtok). A refused answer (the table's
 * retry) asks again; anything else ends the sign-in. The provider's refusal
 * ends the broker's login, so the next answer goes to a new one, with a new
 * address. The answer is a secret: it is wiped as soon as the broker has it.
 */
static int ask_and_complete(pam_handle_t *pamh, int flags, const struct options *o,
                            const char *user, DBusConnection **conn, char **login_id,
                            struct lk_client_login_info *info)
{
        unsigned tries = o->authtok ? 1 : o->tries;

        for (unsigned attempt = 1;; attempt++) {
                _cleanup_secret_ char *answer = NULL;
                _cleanup_free_ char *vouched = NULL, *prompt = NULL;
                struct lk_client_error e = {};
                const struct lkp_error_row *row;
                struct log_name n;
                int r;

                if (use_gdm_json(pamh, info))
                        return gdm_sign_in(pamh, flags, o, user, conn, login_id, info);
                /* The device flow: nothing to paste; where text shows at once, nothing to ask. */
                if (info->device && (o->authtok || !text_needs_prompt(pamh))) {
                        if (!(flags & PAM_SILENT))
                                (void)pam_info(pamh, "Waiting for the sign-in to complete...");
                        return wait_login(pamh, o, user, *login_id, info);
                }
                if (info->device && !(prompt = device_prompt(info)))
                        return PAM_BUF_ERR;
                r = get_answer(pamh, o,
                               prompt ? prompt : info->callback ? PROMPT_ENTER : PROMPT,
                               &answer);
                if (r != PAM_SUCCESS)
                        return r;
                /* Enter alone: the broker finishes it (device approval, the callback). */
                if (info->device || (info->callback && !*lkp_strip(answer)))
                        return wait_login(pamh, o, user, *login_id, info);
                r = check_answer(o, lkp_strip(answer), &e);
                if (r == 0)
                        r = lk_client_complete_login(NULL, timeout_ms(o), *login_id, answer,
                                                     &vouched, &e);
                if (r == -EINVAL)
                        local_error(&e, LKP_ERROR_BAD_ANSWER, NULL);
                lk_secret_free(TAKE_PTR(answer));
                if (r == -ENOMEM)
                        return PAM_BUF_ERR;
                if (r == 0) {
                        if (streq(vouched, user))
                                return PAM_SUCCESS;
                        /* The broker checks this; a second look costs nothing. */
                        local_error(&e, LKP_ERROR_USER_MISMATCH,
                                    "You signed in at the identity provider as a different user.");
                        return report(pamh, o, LKP_CALL_COMPLETE, user, NULL, &e);
                }

                row = lkp_error_lookup(e.name);
                if (!row->retry || o->authtok)
                        return report(pamh, o, LKP_CALL_COMPLETE, user, NULL, &e);
                (void)report(pamh, o, LKP_CALL_COMPLETE, user, NULL, &e);
                if (attempt >= tries) {
                        pam_syslog(pamh, LOG_NOTICE, "sign-in failed for %s: %u attempts used up",
                                   log_name(user, &n), tries);
                        pam_error(pamh, "No attempts left.");
                        return PAM_MAXTRIES;
                }
                if (streq(e.name, LKP_ERROR_INVALID_GRANT)) {
                        r = begin(pamh, flags, o, user, conn, login_id, info);
                        if (r != PAM_SUCCESS)
                                return r;
                }
        }
}

/* Keeps a copy of value as pam data. */
static int set_data(pam_handle_t *pamh, const char *name, const char *value)
{
        char *copy = strdup(value);
        int r;

        if (!copy)
                return PAM_BUF_ERR;
        r = pam_set_data(pamh, name, copy, free_data);
        if (r != PAM_SUCCESS)
                lk_secret_free(copy);
        return r;
}

/*
 * For the account and session steps: this handle, or sshd's next process,
 * finds the login and the user it signed in.
 */
static int remember_login(pam_handle_t *pamh, const char *login_id, const char *user)
{
        int r;

        r = set_data(pamh, DATA_LOGIN_ID, login_id);
        if (r == PAM_SUCCESS)
                r = set_data(pamh, DATA_LOGIN_USER, user);
        if (r == PAM_SUCCESS)
                r = put_env(pamh, ENV_LOGIN_ID, login_id);
        if (r == PAM_SUCCESS)
                r = put_env(pamh, ENV_LOGIN_USER, user);
        return r;
}

/* Frees the broker's pending login after a failure; that can fail too, quietly. */
static void cancel_login(pam_handle_t *pamh, const struct options *o, const char *login_id)
{
        struct lk_client_error e = {};

        if (lk_client_cancel_login(NULL, timeout_ms(o), login_id, &e) < 0 && o->debug)
                pam_syslog(pamh, LOG_DEBUG, "CancelLogin failed: %s, ignoring", e.name);
}

/* ---- the offline PIN (the broker's SetPin, GetPinState, CheckPin) ---- */

/* The PIN: PAM_AUTHTOK with authtok (a lock screen's field), else one echo-off prompt. */
static int get_pin(pam_handle_t *pamh, const struct options *o, const char *prompt, char **ret)
{
        char *pin = NULL;
        int r;

        if (o->authtok && streq(prompt, PIN_PROMPT)) {
                const char *tok = NULL;

                r = pam_get_authtok(pamh, PAM_AUTHTOK, &tok, prompt);
                if (r == PAM_SUCCESS && tok && !(pin = strdup(tok)))
                        return PAM_BUF_ERR;
        } else
                r = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &pin, "%s", prompt);
        if (r != PAM_SUCCESS || !pin) {
                lk_secret_free(pin);
                return r == PAM_SUCCESS ? PAM_CONV_ERR : r;
        }
        *ret = pin;
        return PAM_SUCCESS;
}

/*
 * After an online sign-in where offline is allowed and the broker keeps PINs: asks once for a
 * PIN (twice, to be sure of it) when none is set. Skipping it, or a failure, never fails the
 * sign-in that already succeeded.
 */
static void offer_pin(pam_handle_t *pamh, const struct options *o, const char *user,
                      const char *login_id)
{
        _cleanup_secret_ char *pin = NULL, *again = NULL;
        struct lk_client_pin_state st;
        struct lk_client_error e = {};

        if (o->authtok || lk_client_get_pin_state(NULL, timeout_ms(o), user, false, &st, &e) < 0 ||
            !st.enabled || st.pin)
                return;
        if (get_pin(pamh, o, PIN_NEW_PROMPT, &pin) != PAM_SUCCESS || !*pin)
                return;
        if (get_pin(pamh, o, PIN_AGAIN_PROMPT, &again) != PAM_SUCCESS || !streq(pin, again)) {
                pam_error(pamh, "The PINs differ; no PIN was set (latchkeyctl pin sets one).");
                return;
        }
        if (lk_client_set_pin(NULL, timeout_ms(o), login_id, pin, &e) < 0) {
                pam_syslog(pamh, LOG_NOTICE, "SetPin failed: %s", e.name);
                pam_error(pamh, "No PIN was set: %s", e.message);
                return;
        }
        pam_info(pamh, "The PIN is set.");
}

/* CheckPin with up to tries PINs (one for a PIN-only service or with authtok). */
static int pin_sign_in(pam_handle_t *pamh, const struct options *o, const char *user,
                       bool offline)
{
        unsigned tries = o->authtok || !offline ? 1 : o->tries;
        struct log_name n;

        for (unsigned attempt = 1;; attempt++) {
                _cleanup_secret_ char *pin = NULL;
                struct lk_client_error e = {};
                int r;

                r = get_pin(pamh, o, PIN_PROMPT, &pin);
                if (r != PAM_SUCCESS)
                        return r;
                r = lk_client_check_pin(NULL, timeout_ms(o), user, pin, offline, &e);
                lk_secret_free(TAKE_PTR(pin));
                if (r == -ENOMEM)
                        return PAM_BUF_ERR;
                if (r == 0) {
                        pam_syslog(pamh, LOG_INFO, "%s signed in with the %s PIN",
                                   log_name(user, &n), offline ? "offline" : "local");
                        return PAM_SUCCESS;
                }
                r = report(pamh, o, LKP_CALL_OTHER, user, NULL, &e);
                if (!streq(e.name, LK_BUS_ERROR_ACCESS_DENIED) || attempt >= tries)
                        return r;
        }
}

/*
 * A service that may take the PIN instead of a web sign-in: when the broker says a PIN is
 * ready and the provider cannot be reached (its own probe), tells so and signs in with the
 * PIN; *ret_done false when the web sign-in should go ahead.
 */
static int try_offline(pam_handle_t *pamh, const struct options *o, const char *user,
                       bool *ret_done)
{
        struct lk_client_pin_state st;
        struct lk_client_error e = {};
        char date[64];

        *ret_done = false;
        if (lk_client_get_pin_state(NULL, timeout_ms(o), user, true, &st, &e) < 0 ||
            !streq(st.state, "ready") || !streq(st.provider, "unreachable"))
                return PAM_SUCCESS;
        *ret_done = true;
        pam_info(pamh, "The identity provider cannot be reached (offline PIN possible until %s).",
                 lk_text_utc_date(st.until, date, sizeof(date)));
        return pin_sign_in(pamh, o, user, true);
}

/*
 * A PIN-only service (sudo, a lock screen): quiet when the user has no usable PIN (PAM_IGNORE,
 * the stack goes on), the reason in one line when it is spent, else one prompt.
 */
static int pin_only(pam_handle_t *pamh, const struct options *o, const char *user)
{
        struct lk_client_pin_state st;
        struct lk_client_error e = {};
        char date[64];

        if (lk_client_get_pin_state(NULL, timeout_ms(o), user, false, &st, &e) < 0) {
                if (o->debug)
                        pam_syslog(pamh, LOG_DEBUG, "GetPinState failed: %s, ignoring", e.name);
                return PAM_IGNORE;
        }
        if (streq(st.state, "ready") || streq(st.state, "locked"))
                return pin_sign_in(pamh, o, user, false);
        if (streq(st.state, "expired"))
                pam_error(pamh, "Your sign-in has expired: sign in again (the PIN worked until %s).",
                          lk_text_utc_date(st.until, date, sizeof(date)));
        else if (streq(st.state, "disabled"))
                pam_error(pamh, "Account disabled at the provider: no PIN until you sign in online.");
        else if (streq(st.state, "spent"))
                pam_error(pamh, "Too many wrong PINs: your sign-in has expired: sign in again.");
        return PAM_IGNORE;
}

static int authenticate(pam_handle_t *pamh, int flags, const struct options *o)
{
        _cleanup_secret_ char *login_id = NULL;
        _cleanup_(lk_client_disconnectp) DBusConnection *conn = NULL;
        _cleanup_(lk_client_login_info_clear) struct lk_client_login_info info = {};
        const char *user = NULL, *service = NULL;
        struct log_name n;
        unsigned methods;
        bool done = false;
        int r;

        forget_login(pamh);
        /* Not an SSO service, not an SSO user: PAM_IGNORE before any prompt or broker call. */
        (void)pam_get_item(pamh, PAM_SERVICE, (const void **)&service);
        methods = lkp_service_methods(o, service);
        if (!methods) {
                if (o->debug)
                        pam_syslog(pamh, LOG_DEBUG, "single sign-on is not offered for this service "
                                   "(services, methods in [pam] of %s), ignoring", o->config);
                return PAM_IGNORE;
        }
        r = get_user(pamh, o, &user);
        if (r != PAM_SUCCESS)
                return r;
        /* Where only the PIN fits: no sign-in address, no request to the provider. */
        if (!(methods & LKP_METHOD_WEB))
                return pin_only(pamh, o, user);
        if (methods & LKP_METHOD_OFFLINE) {
                r = try_offline(pamh, o, user, &done);
                if (done)
                        return r;
        }

        r = begin(pamh, flags, o, user, &conn, &login_id, &info);
        if (r == PAM_SUCCESS)
                r = ask_and_complete(pamh, flags, o, user, &conn, &login_id, &info);
        if (r == PAM_SUCCESS)
                r = remember_login(pamh, login_id, user);
        if (r != PAM_SUCCESS) {
                forget_login(pamh);
                if (login_id)
                        cancel_login(pamh, o, login_id);
                return r;
        }
        pam_syslog(pamh, LOG_INFO, "%s signed in through single sign-on", log_name(user, &n));
        if (methods & LKP_METHOD_OFFLINE)
                offer_pin(pamh, o, user, login_id);
        return PAM_SUCCESS;
}

/*
 * Whether logind says session id is user's. XDG_SESSION_ID is only a value in
 * the PAM environment, which the user may write (pam_env's user_readenv), and
 * naming another uid's session would file this login's tokens under it.
 */
static bool logind_session_of(pam_handle_t *pamh, const struct options *o, const char *id,
                              const char *user)
{
        const struct passwd *pw = user ? pam_modutil_getpwnam(pamh, user) : NULL;
        struct lk_client_error e = {};
        struct log_name n;
        uid_t uid;

        if (!pw)
                return false;
        if (lkp_logind_session_uid(timeout_ms(o), id, &uid, &e) < 0) {
                pam_syslog(pamh, LOG_NOTICE, "logind does not confirm " ENV_XDG_SESSION " %s: %s; "
                           "using a random session id", id, e.name);
                return false;
        }
        if (uid != pw->pw_uid) {
                pam_syslog(pamh, LOG_WARNING, ENV_XDG_SESSION " %s is logind's session of uid %u, "
                           "not of %s; using a random session id", id, (unsigned)uid,
                           log_name(user, &n));
                return false;
        }
        return true;
}

/*
 * XDG_SESSION_ID where pam_systemd set it (it runs first) and logind confirms
 * it is the user's, else 128 random bits in hex.
 */
static int pick_session_id(pam_handle_t *pamh, const struct options *o, const char *user,
                           char **ret)
{
        unsigned char bytes[SESSION_ID_BYTES];
        const char *xdg = pam_getenv(pamh, ENV_XDG_SESSION);
        char *id;
        size_t got = 0;

        if (lk_reply_word_valid(xdg, LK_ARG_ID_MAX) && logind_session_of(pamh, o, xdg, user)) {
                id = strdup(xdg);
                if (!id)
                        return PAM_BUF_ERR;
                *ret = id;
                return PAM_SUCCESS;
        }
        while (got < sizeof(bytes)) {
                ssize_t k = getrandom(bytes + got, sizeof(bytes) - got, 0);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        pam_syslog(pamh, LOG_ERR, "getrandom() failed: %m");
                        return PAM_SYSTEM_ERR;
                }
                got += (size_t)k;
        }
        id = malloc(2 * sizeof(bytes) + 1);
        if (!id)
                return PAM_BUF_ERR;
        for (size_t i = 0; i < sizeof(bytes); i++)
                snprintf(id + 2 * i, 3, "%02x", bytes[i]);
        *ret = id;
        return PAM_SUCCESS;
}

static int open_session(pam_handle_t *pamh, const struct options *o)
{
        _cleanup_free_ char *session_id = NULL;
        struct lk_client_error e = {};
        const char *user = NULL;
        struct login l;
        int r;

        if (!find_login(pamh, &l)) {
                if (o->debug)
                        pam_syslog(pamh, LOG_DEBUG, "no single sign-on login to open a session for");
                return PAM_IGNORE;
        }
        r = check_login_user(pamh, &l);
        if (r != PAM_SUCCESS) {
                cancel_login(pamh, o, l.id);
                forget_login(pamh);
                return r;
        }
        (void)pam_get_item(pamh, PAM_USER, (const void **)&user);

        r = pick_session_id(pamh, o, user, &session_id);
        if (r != PAM_SUCCESS)
                return r;
        r = lk_client_open_session(NULL, timeout_ms(o), l.id, session_id, &e);
        if (r == -ENOMEM)
                return PAM_BUF_ERR;
        if (r < 0) {
                (void)report(pamh, o, LKP_CALL_OTHER, user, "No single sign-on tokens in this session", &e);
                return PAM_SESSION_ERR;
        }
        /* The login is spent; its id must not linger in the session's environment. */
        forget_login(pamh);

        r = put_env(pamh, ENV_SESSION, session_id);
        if (r == PAM_SUCCESS)
                r = pam_set_data(pamh, DATA_SESSION, session_id, free_data);
        if (r != PAM_SUCCESS) {
                pam_syslog(pamh, LOG_ERR, "cannot record the session: %s", pam_strerror(pamh, r));
                (void)lk_client_close_session(NULL, timeout_ms(o), session_id, &e);
                return r;
        }
        TAKE_PTR(session_id);
        return PAM_SUCCESS;
}

/* The user a session belongs to, from ListSessions; NotFound when the caller cannot see it. */
static int session_user(const struct options *o, const char *session_id, char **ret_user,
                        struct lk_client_error *e)
{
        struct lk_client_session *list = NULL;
        size_t n = 0;
        int r;

        r = lk_client_list_sessions(NULL, timeout_ms(o), &list, &n, e);
        if (r < 0)
                return r;
        r = local_error(e, LK_BUS_ERROR_NOT_FOUND, "No such session.");
        for (size_t i = 0; i < n; i++)
                if (streq(list[i].session_id, session_id)) {
                        *ret_user = TAKE_PTR(list[i].user);
                        r = 0;
                        break;
                }
        lk_client_free_sessions(list, n);
        return r;
}

/*
 * The session this handle opened; else LATCHKEY_SESSION from the PAM
 * environment, but only when the broker says it is PAM_USER's: that
 * environment can be written by the user (pam_env's user_readenv), and we
 * may run as root, who may close anyone's session.
 */
static int find_session(pam_handle_t *pamh, const struct options *o, const char **ret)
{
        _cleanup_free_ char *owner = NULL;
        struct lk_client_error e = {};
        const void *data = NULL;
        const char *sid, *user = NULL, *service = NULL;
        struct log_name n;
        int r;

        if (pam_get_data(pamh, DATA_SESSION, &data) == PAM_SUCCESS && data) {
                *ret = data;
                return PAM_SUCCESS;
        }
        sid = pam_getenv(pamh, ENV_SESSION);
        if (!sid)
                return PAM_IGNORE;
        (void)pam_get_item(pamh, PAM_USER, (const void **)&user);
        (void)pam_get_item(pamh, PAM_SERVICE, (const void **)&service);
        if (!lkp_sso_service(o, service) || !user_valid(user) || !lkp_sso_user(o, pamh, user))
                return PAM_IGNORE; /* not ours: the broker is not asked */
        if (!lk_reply_word_valid(sid, LK_ARG_ID_MAX)) {
                pam_syslog(pamh, LOG_WARNING, "unusable " ENV_SESSION " in the environment, ignoring");
                return PAM_IGNORE;
        }
        r = session_user(o, sid, &owner, &e);
        if (r == -ENOMEM)
                return PAM_BUF_ERR;
        if (r < 0 || !streq(owner, user)) {
                pam_syslog(pamh, LOG_WARNING, "not closing session from the environment for %s: %s",
                           log_name(user, &n), r < 0 ? e.name : "it belongs to another user");
                return PAM_IGNORE;
        }
        *ret = sid;
        return PAM_SUCCESS;
}

static int close_session(pam_handle_t *pamh, const struct options *o)
{
        struct lk_client_error e = {};
        const char *sid = NULL;
        int r;

        r = find_session(pamh, o, &sid);
        if (r != PAM_SUCCESS)
                return r;
        r = lk_client_close_session(NULL, timeout_ms(o), sid, &e);
        if (r == -ENOMEM)
                return PAM_BUF_ERR;
        if (r < 0) {
                pam_syslog(pamh, LOG_ERR, "CloseSession failed: %s: %s", e.name, e.message);
                return PAM_SESSION_ERR;
        }
        unset_env(pamh, ENV_SESSION);
        (void)pam_set_data(pamh, DATA_SESSION, NULL, NULL); /* frees sid */
        return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        struct options o;

        (void)lkp_options_parse(&o, pamh, argc, argv);
        return authenticate(pamh, flags, &o);
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        return PAM_SUCCESS;
}

/*
 * A provider account, however it authenticated (SSO, an ssh key), only while the provider
 * stands behind it (account.c); then vouches for the user this module signed in,
 * PAM_PERM_DENIED when PAM_USER changed since.
 */
PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        const char *user = NULL;
        struct options o;
        struct login l;
        int r;

        (void)lkp_options_parse(&o, pamh, argc, argv);
        (void)pam_get_item(pamh, PAM_USER, (const void **)&user);
        r = user_valid(user) ? lkp_account_check(pamh, o.config, user) : PAM_IGNORE;
        if (r != PAM_SUCCESS && r != PAM_IGNORE)
                return r;
        return find_login(pamh, &l) ? check_login_user(pamh, &l) : r;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        struct options o;

        (void)lkp_options_parse(&o, pamh, argc, argv);
        return open_session(pamh, &o);
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        struct options o;

        (void)lkp_options_parse(&o, pamh, argc, argv);
        return close_session(pamh, &o);
}
