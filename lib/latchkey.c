/* SPDX-License-Identifier: MIT */
/* The public calls: one per broker method, each on its client stub (client/broker_client.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/internal.h"

int latchkey_open(struct latchkey **ret)
{
        struct latchkey *lk;

        if (!ret)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        /* Since libdbus 1.7 this happens by itself; older ones need it for separate handles in
         * separate threads. */
        if (!dbus_threads_init_default())
                return LATCHKEY_ERROR_NO_MEMORY;
        lk = calloc(1, sizeof(*lk));
        if (!lk)
                return LATCHKEY_ERROR_NO_MEMORY;
        *ret = lk;
        return 0;
}

void latchkey_close(struct latchkey *lk)
{
        if (!lk)
                return;
        lkl_disconnect(&lk->bus);
        lkl_disconnect(&lk->watch);
        free(lk->broker_owner);
        explicit_bzero(lk, sizeof(*lk));
        free(lk);
}

const char *latchkey_last_error_message(const struct latchkey *lk)
{
        return lk ? lk->message : "";
}

void latchkey_free_secret(char *secret)
{
        lk_secret_free(secret);
}

/*
 * Where the caller names no session: $LATCHKEY_SESSION, else NULL (the broker's default), or
 * an error where the call needs one (required).
 */
static int pick_session(struct latchkey *lk, const char *session_id, bool required,
                        const char **ret)
{
        if (!session_id) {
                session_id = getenv("LATCHKEY_SESSION");
                if (isempty(session_id)) {
                        if (required)
                                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT,
                                                 "which session? Neither a session id nor "
                                                 "LATCHKEY_SESSION is set");
                        *ret = NULL;
                        return 0;
                }
                if (!lk_reply_string_valid(session_id, LATCHKEY_ID_MAX))
                        return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT,
                                         "LATCHKEY_SESSION is not a session id (longer than %d "
                                         "bytes, or not UTF-8)", LATCHKEY_ID_MAX);
        } else if (!lk_reply_string_valid(session_id, LATCHKEY_ID_MAX))
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT,
                                 "a session id must be 1 to %d bytes of UTF-8", LATCHKEY_ID_MAX);
        *ret = session_id;
        return 0;
}

/* The steps of a call about one session: which one (pick_session), then the bus. */
static int session_bus(struct latchkey *lk, const char **session_id, bool required,
                       DBusConnection **ret)
{
        int r = pick_session(lk, *session_id, required, session_id);

        return r < 0 ? r : lkl_bus(lk, ret);
}

static int oom(struct latchkey *lk)
{
        return lkl_error(lk, LATCHKEY_ERROR_NO_MEMORY, "out of memory");
}

int latchkey_get_token(struct latchkey *lk, const char *session_id, unsigned min_valid,
                       char **ret_token, int64_t *ret_expires_at, char **ret_type)
{
        return latchkey_get_token_for(lk, session_id, NULL, NULL, min_valid, ret_token,
                                      ret_expires_at, ret_type);
}

int latchkey_get_token_for(struct latchkey *lk, const char *session_id, const char *scope,
                           const char *audience, unsigned min_valid, char **ret_token,
                           int64_t *ret_expires_at, char **ret_type)
{
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        r = session_bus(lk, &session_id, false, &c);
        if (r < 0)
                return r;
        r = lk_client_get_token_for(c, LATCHKEY_TIMEOUT_MS, session_id, scope, audience,
                                    min_valid, ret_token, ret_expires_at, ret_type, &e);
        return lkl_done(lk, r, &e);
}

int latchkey_get_claims(struct latchkey *lk, const char *session_id, char **ret_json)
{
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk || !ret_json)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "no place for the claims");
        r = session_bus(lk, &session_id, false, &c);
        if (r < 0)
                return r;
        r = lk_client_get_claims(c, LATCHKEY_TIMEOUT_MS, session_id, ret_json, &e);
        return lkl_done(lk, r, &e);
}

void latchkey_free_sessions(struct latchkey_session *sessions, size_t n)
{
        if (!sessions)
                return;
        for (size_t i = 0; i < n; i++) {
                free(sessions[i].session_id);
                free(sessions[i].user);
        }
        free(sessions);
}

int latchkey_list_sessions(struct latchkey *lk, struct latchkey_session **ret, size_t *ret_n)
{
        struct lk_client_session *rows = NULL;
        struct latchkey_session *list = NULL;
        struct lk_client_error e;
        DBusConnection *c;
        size_t n = 0;
        int r;

        if (!lk || !ret || !ret_n)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "no place for the sessions");
        r = lkl_bus(lk, &c);
        if (r < 0)
                return r;
        r = lkl_done(lk, lk_client_list_sessions(c, LATCHKEY_TIMEOUT_MS, &rows, &n, &e), &e);
        if (r < 0)
                return r;
        if (n > 0) {
                list = calloc(n, sizeof(*list));
                if (!list) {
                        lk_client_free_sessions(rows, n);
                        return oom(lk);
                }
        }
        /* The public struct is the ABI's; the rows move into it. */
        for (size_t i = 0; i < n; i++)
                list[i] = (struct latchkey_session){
                        .session_id = TAKE_PTR(rows[i].session_id),
                        .user = TAKE_PTR(rows[i].user),
                        .uid = rows[i].uid,
                        .opened_at = rows[i].opened_at,
                        .expires_at = rows[i].expires_at,
                };
        lk_client_free_sessions(rows, n);
        *ret = list;
        *ret_n = n;
        return 0;
}

int latchkey_close_session(struct latchkey *lk, const char *session_id)
{
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        r = session_bus(lk, &session_id, true, &c);
        if (r < 0)
                return r;
        r = lk_client_close_session(c, LATCHKEY_TIMEOUT_MS, session_id, &e);
        return lkl_done(lk, r, &e);
}

int latchkey_broker_version(struct latchkey *lk, char **ret_version)
{
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk || !ret_version)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "no place for the version");
        r = lkl_bus(lk, &c);
        if (r < 0)
                return r;
        r = lk_client_get_version(c, LATCHKEY_TIMEOUT_MS, ret_version, &e);
        return lkl_done(lk, r, &e);
}

/* Without end_with_caller, as ever (lib/latchkey.h): the login does not end with the handle. */
int latchkey_begin_login(struct latchkey *lk, const char *user, char **ret_login_id,
                         char **ret_url)
{
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk || !ret_login_id || !ret_url)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "no place for the login");
        r = lkl_bus(lk, &c);
        if (r < 0)
                return r;
        r = lk_client_begin_login(c, LATCHKEY_TIMEOUT_MS, user, false, ret_login_id, ret_url, &e);
        return lkl_done(lk, r, &e);
}

int latchkey_complete_login(struct latchkey *lk, const char *login_id, const char *answer,
                            char **ret_user)
{
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        r = lkl_bus(lk, &c);
        if (r < 0)
                return r;
        r = lk_client_complete_login(c, LATCHKEY_TIMEOUT_MS, login_id, answer, ret_user, &e);
        return lkl_done(lk, r, &e);
}

int latchkey_cancel_login(struct latchkey *lk, const char *login_id)
{
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        r = lkl_bus(lk, &c);
        if (r < 0)
                return r;
        r = lk_client_cancel_login(c, LATCHKEY_TIMEOUT_MS, login_id, &e);
        return lkl_done(lk, r, &e);
}

int latchkey_open_session(struct latchkey *lk, const char *login_id, const char *session_id)
{
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        r = lkl_bus(lk, &c);
        if (r < 0)
                return r;
        r = lk_client_open_session(c, LATCHKEY_TIMEOUT_MS, login_id, session_id, &e);
        return lkl_done(lk, r, &e);
}

int latchkey_renew_session(struct latchkey *lk, const char *login_id, const char *session_id)
{
        struct latchkey_session *list = NULL;
        bool mine = false;
        size_t n = 0;
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        r = pick_session(lk, session_id, true, &session_id);
        if (r < 0)
                return r;
        /* Renew, never make: only a session the caller already owns. */
        r = latchkey_list_sessions(lk, &list, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                mine |= streq(list[i].session_id, session_id) && list[i].uid == getuid();
        latchkey_free_sessions(list, n);
        if (!mine)
                return lkl_error(lk, LATCHKEY_ERROR_NOT_FOUND, "no session '%.64s' of yours to renew",
                                 session_id);
        return latchkey_open_session(lk, login_id, session_id);
}

int latchkey_change_pin(struct latchkey *lk, const char *session_id, const char *pin)
{
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk || !pin)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "no PIN");
        r = session_bus(lk, &session_id, false, &c);
        if (r < 0)
                return r;
        r = lk_client_change_pin(c, LATCHKEY_TIMEOUT_MS, session_id, pin, &e);
        return lkl_done(lk, r, &e);
}

int latchkey_get_pin_state(struct latchkey *lk, const char *user, int probe,
                           struct latchkey_pin_state *ret)
{
        struct lk_client_pin_state st;
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk || !ret)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "no place for the state");
        r = lkl_bus(lk, &c);
        if (r < 0)
                return r;
        r = lk_client_get_pin_state(c, LATCHKEY_TIMEOUT_MS, user, probe, &st, &e);
        r = lkl_done(lk, r, &e);
        if (r < 0)
                return r;
        *ret = (struct latchkey_pin_state){.enabled = st.enabled, .pin = st.pin,
                                           .until = st.until, .locked_until = st.locked_until,
                                           .failures = st.failures};
        snprintf(ret->state, sizeof(ret->state), "%s", st.state);
        snprintf(ret->provider, sizeof(ret->provider), "%s", st.provider);
        return 0;
}

int latchkey_login_info(struct latchkey *lk, const char *login_id,
                        struct latchkey_login_info **ret)
{
        struct lk_client_login_info i = {0};
        struct latchkey_login_info *out;
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk || !ret)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "no place for the answer");
        r = lkl_bus(lk, &c);
        if (r < 0)
                return r;
        r = lk_client_get_login_info(c, LATCHKEY_TIMEOUT_MS, login_id, &i, &e);
        if (r < 0)
                return lkl_done(lk, r, &e);
        out = calloc(1, sizeof(*out));
        if (!out) {
                lk_client_login_info_clear(&i);
                return lkl_error(lk, LATCHKEY_ERROR_NO_MEMORY, "out of memory");
        }
        *out = (struct latchkey_login_info){
                .device = i.device, .done = i.done, .callback = i.callback,
                .url = TAKE_PTR(i.url), .user_code = TAKE_PTR(i.user_code),
                .interval = i.interval, .seconds_left = i.seconds_left,
        };
        *ret = out;
        return lkl_done(lk, 0, &e);
}

void latchkey_login_info_free(struct latchkey_login_info *info)
{
        if (!info)
                return;
        free(info->url);
        free(info->user_code);
        free(info);
}

int latchkey_wait_login(struct latchkey *lk, const char *login_id, unsigned timeout_s,
                        char **ret_user)
{
        struct lk_client_error e;
        DBusConnection *c;
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        if (timeout_s < 1 || timeout_s > 86400)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT,
                                 "the time to wait must be 1 to 86400 seconds");
        r = lkl_bus(lk, &c);
        if (r < 0)
                return r;
        r = lk_client_wait_login(c, (int)timeout_s * 1000, login_id, ret_user, &e);
        return lkl_done(lk, r, &e);
}
