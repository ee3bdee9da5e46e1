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
#include <sys/random.h>
#include <syslog.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>

#include "broker_client.h"
#include "errors.h"
#include "options.h"
#include "qr.h"
#include "text.h"
#include "util.h"

#define DATA_LOGIN_ID "latchkey_login_id"
#define DATA_SESSION "latchkey_session"
#define ENV_LOGIN_ID "LATCHKEY_LOGIN_ID"
#define ENV_SESSION "LATCHKEY_SESSION"
#define ENV_XDG_SESSION "XDG_SESSION_ID"
#define PROMPT "Code or address from the browser: "
#define SESSION_ID_BYTES 16

/* A user name as it may appear in a log line: the name comes from whoever is logging in. */
struct log_name {
        char s[LKP_ID_MAX + 4];
};

static const char *log_name(const char *user, struct log_name *buf)
{
        lk_text_escape(user ? user : "(unknown)", buf->s, sizeof(buf->s));
        return buf->s;
}

static void free_data(pam_handle_t *pamh, void *data, int status)
{
        lkp_secret_free(data);
}

/*
 * The decision point for a failed broker call: logs it, tells the person
 * why in one line (lead first, where given), and returns the PAM code from
 * the table. Nothing is shown when the answer is PAM_IGNORE: not ours to
 * explain.
 */
static int report(pam_handle_t *pamh, const struct options *o, enum lkp_call call, const char *user,
                  const char *lead, const struct lkp_broker_error *e)
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

static int local_error(struct lkp_broker_error *e, const char *name, const char *message)
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
        unset_env(pamh, ENV_LOGIN_ID);
}

/* The login this module completed, from this handle or (sshd) from the PAM environment. */
static const char *find_login_id(pam_handle_t *pamh)
{
        const void *data = NULL;
        const char *env;

        if (pam_get_data(pamh, DATA_LOGIN_ID, &data) == PAM_SUCCESS && data)
                return data;
        env = pam_getenv(pamh, ENV_LOGIN_ID);
        return lkp_word_valid(env, LKP_ID_MAX) ? env : NULL;
}

/* Sets NAME=value in the PAM environment. */
static int put_env(pam_handle_t *pamh, const char *name, const char *value)
{
        char *s = NULL;
        int r;

        if (asprintf(&s, "%s=%s", name, value) < 0)
                return PAM_BUF_ERR;
        r = pam_putenv(pamh, s);
        lkp_secret_free(s);
        return r;
}

static int get_user(pam_handle_t *pamh, const struct options *o, const char **ret)
{
        struct lkp_broker_error e = {};
        const char *user = NULL;
        size_t len;
        int r;

        r = pam_get_user(pamh, &user, NULL);
        if (r == PAM_CONV_AGAIN)
                return PAM_INCOMPLETE;
        if (r != PAM_SUCCESS) {
                pam_syslog(pamh, LOG_ERR, "cannot get the user name: %s", pam_strerror(pamh, r));
                return r;
        }
        len = user ? strnlen(user, LKP_ID_MAX + 1) : 0;
        if (len == 0 || len > LKP_ID_MAX || !lkp_utf8_valid(user, len) ||
            !pam_modutil_getpwnam(pamh, user)) {
                local_error(&e, LKP_ERROR_USER_UNKNOWN, "no such local user");
                return report(pamh, o, LKP_CALL_BEGIN, user, NULL, &e);
        }
        *ret = user;
        return PAM_SUCCESS;
}

/* The address on a line of its own, so that it can be copied; then the QR code, with qr. */
static int show_address(pam_handle_t *pamh, int flags, const struct options *o, const char *url)
{
        _cleanup_free_ char *qr = NULL;
        int r;

        r = pam_info(pamh, "To sign in, open this address in a browser:");
        if (r == PAM_SUCCESS)
                r = pam_info(pamh, "%s", url);
        if (r != PAM_SUCCESS) {
                pam_syslog(pamh, LOG_ERR, "cannot show the sign-in address: %s", pam_strerror(pamh, r));
                return r;
        }
        if (!o->qr || (flags & PAM_SILENT))
                return PAM_SUCCESS;

        r = lkp_qr_render(url, &qr);
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
static int get_answer(pam_handle_t *pamh, const struct options *o, char **ret)
{
        char *answer = NULL;
        int r;

        if (o->authtok) {
                const char *tok = NULL;

                r = pam_get_authtok(pamh, PAM_AUTHTOK, &tok, PROMPT);
                if (r == PAM_SUCCESS && tok) {
                        answer = strdup(tok);
                        if (!answer)
                                return PAM_BUF_ERR;
                }
        } else {
                r = pam_prompt(pamh, PAM_PROMPT_ECHO_ON, &answer, "%s", PROMPT);
        }
        if (r != PAM_SUCCESS || !answer) {
                lkp_secret_free(answer);
                if (r == PAM_SUCCESS)
                        r = PAM_CONV_ERR;
                pam_syslog(pamh, LOG_ERR, "cannot get an answer: %s", pam_strerror(pamh, r));
                return r;
        }
        *ret = answer;
        return PAM_SUCCESS;
}

/* Checks the (stripped) answer before it goes to the broker; 0 or -EIO with e set. */
static int check_answer(const char *answer, struct lkp_broker_error *e)
{
        size_t len = strnlen(answer, LKP_ANSWER_MAX + 1);

        if (len == 0)
                return local_error(e, LKP_ERROR_BAD_ANSWER, "Nothing was entered.");
        if (len > LKP_ANSWER_MAX)
                return local_error(e, LKP_ERROR_BAD_ANSWER, "That is too long for a code or an address.");
        if (!lkp_utf8_valid(answer, len))
                return local_error(e, LKP_ERROR_BAD_ANSWER, NULL);
        return 0;
}

/*
 * BeginLogin and its address shown; *conn and *login_id (the earlier login's, if any) are
 * replaced. *conn stays open until the answer is in: the broker ends the login when it closes.
 */
static int begin(pam_handle_t *pamh, int flags, const struct options *o, const char *user,
                 struct DBusConnection **conn, char **login_id)
{
        _cleanup_free_ char *url = NULL;
        struct lkp_broker_error e = {};
        int r;

        lkp_conn_close(TAKE_PTR(*conn));
        lkp_secret_free(TAKE_PTR(*login_id));
        r = lkp_begin_login(o, user, conn, login_id, &url, &e);
        if (r == -ENOMEM)
                return PAM_BUF_ERR;
        if (r < 0)
                return report(pamh, o, LKP_CALL_BEGIN, user, NULL, &e);
        return show_address(pamh, flags, o, url);
}

/*
 * Up to `tries` answers (one with authtok). A refused answer (the table's
 * retry) asks again; anything else ends the sign-in. The provider's refusal
 * ends the broker's login, so the next answer goes to a new one, with a new
 * address. The answer is a secret: it is wiped as soon as the broker has it.
 */
static int ask_and_complete(pam_handle_t *pamh, int flags, const struct options *o,
                            const char *user, struct DBusConnection **conn, char **login_id)
{
        unsigned tries = o->authtok ? 1 : o->tries;

        for (unsigned attempt = 1;; attempt++) {
                _cleanup_wipe_ char *answer = NULL;
                _cleanup_free_ char *vouched = NULL;
                struct lkp_broker_error e = {};
                const struct lkp_error_row *row;
                struct log_name n;
                int r;

                r = get_answer(pamh, o, &answer);
                if (r != PAM_SUCCESS)
                        return r;
                r = check_answer(lkp_strip(answer), &e);
                if (r == 0)
                        r = lkp_complete_login(o, *login_id, answer, &vouched, &e);
                lkp_secret_free(TAKE_PTR(answer));
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
                        r = begin(pamh, flags, o, user, conn, login_id);
                        if (r != PAM_SUCCESS)
                                return r;
                }
        }
}

/* For the account and session steps: this handle, or sshd's next process, finds it. */
static int remember_login(pam_handle_t *pamh, const char *login_id)
{
        char *copy = strdup(login_id);
        int r;

        if (!copy)
                return PAM_BUF_ERR;
        r = pam_set_data(pamh, DATA_LOGIN_ID, copy, free_data);
        if (r != PAM_SUCCESS) {
                lkp_secret_free(copy);
                return r;
        }
        return put_env(pamh, ENV_LOGIN_ID, login_id);
}

/* Frees the broker's pending login after a failure; that can fail too, quietly. */
static void cancel_login(pam_handle_t *pamh, const struct options *o, const char *login_id)
{
        struct lkp_broker_error e = {};

        if (lkp_cancel_login(o, login_id, &e) < 0 && o->debug)
                pam_syslog(pamh, LOG_DEBUG, "CancelLogin failed: %s, ignoring", e.name);
}

static int authenticate(pam_handle_t *pamh, int flags, const struct options *o)
{
        _cleanup_wipe_ char *login_id = NULL;
        _cleanup_(lkp_conn_closep) struct DBusConnection *conn = NULL;
        const char *user = NULL;
        struct log_name n;
        int r;

        forget_login(pamh);
        r = get_user(pamh, o, &user);
        if (r != PAM_SUCCESS)
                return r;

        r = begin(pamh, flags, o, user, &conn, &login_id);
        if (r == PAM_SUCCESS)
                r = ask_and_complete(pamh, flags, o, user, &conn, &login_id);
        if (r == PAM_SUCCESS)
                r = remember_login(pamh, login_id);
        if (r != PAM_SUCCESS) {
                forget_login(pamh);
                if (login_id)
                        cancel_login(pamh, o, login_id);
                return r;
        }
        pam_syslog(pamh, LOG_INFO, "%s signed in through single sign-on", log_name(user, &n));
        return PAM_SUCCESS;
}

/* XDG_SESSION_ID where pam_systemd set it (it runs first), else 128 random bits in hex. */
static int pick_session_id(pam_handle_t *pamh, char **ret)
{
        unsigned char bytes[SESSION_ID_BYTES];
        const char *xdg = pam_getenv(pamh, ENV_XDG_SESSION);
        char *id;
        size_t got = 0;

        if (lkp_word_valid(xdg, LKP_ID_MAX)) {
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
        struct lkp_broker_error e = {};
        const char *login_id = find_login_id(pamh), *user = NULL;
        int r;

        if (!login_id) {
                if (o->debug)
                        pam_syslog(pamh, LOG_DEBUG, "no single sign-on login to open a session for");
                return PAM_IGNORE;
        }
        (void)pam_get_item(pamh, PAM_USER, (const void **)&user);

        r = pick_session_id(pamh, &session_id);
        if (r != PAM_SUCCESS)
                return r;
        r = lkp_open_session(o, login_id, session_id, &e);
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
                (void)lkp_close_session(o, session_id, &e);
                return r;
        }
        TAKE_PTR(session_id);
        return PAM_SUCCESS;
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
        struct lkp_broker_error e = {};
        const void *data = NULL;
        const char *sid, *user = NULL;
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
        if (!lkp_word_valid(sid, LKP_ID_MAX) || !user) {
                pam_syslog(pamh, LOG_WARNING, "unusable " ENV_SESSION " in the environment, ignoring");
                return PAM_IGNORE;
        }
        r = lkp_session_user(o, sid, &owner, &e);
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
        struct lkp_broker_error e = {};
        const char *sid = NULL;
        int r;

        r = find_session(pamh, o, &sid);
        if (r != PAM_SUCCESS)
                return r;
        r = lkp_close_session(o, sid, &e);
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

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        struct options o;

        (void)lkp_options_parse(&o, pamh, argc, argv);
        return find_login_id(pamh) ? PAM_SUCCESS : PAM_IGNORE;
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
