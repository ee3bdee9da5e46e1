/* SPDX-License-Identifier: MIT */
/* The public calls: one function per broker method: check, call, check the reply. */
#include <stdlib.h>
#include <string.h>

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

/* Where the caller names no session: $LATCHKEY_SESSION, else NULL (the broker's default). */
static int pick_session(struct latchkey *lk, const char *session_id, const char **ret)
{
        if (!session_id) {
                session_id = getenv("LATCHKEY_SESSION");
                if (isempty(session_id)) {
                        *ret = NULL;
                        return 0;
                }
                if (!lkl_string_valid(session_id, LATCHKEY_ID_MAX))
                        return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT,
                                         "LATCHKEY_SESSION is not a session id (longer than %d "
                                         "bytes, or not UTF-8)", LATCHKEY_ID_MAX);
        } else if (!lkl_string_valid(session_id, LATCHKEY_ID_MAX))
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT,
                                 "a session id must be 1 to %d bytes of UTF-8", LATCHKEY_ID_MAX);
        *ret = session_id;
        return 0;
}

static int check_arg(struct latchkey *lk, const char *value, size_t max, const char *what)
{
        if (!lkl_string_valid(value, max))
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT,
                                 "%s must be 1 to %zu bytes of UTF-8", what, max);
        return 0;
}

static int bad_reply(struct latchkey *lk, const char *method, const char *what)
{
        return lkl_error(lk, LATCHKEY_ERROR_BAD_REPLY, "the broker's answer to %s %s", method,
                         what);
}

static int oom(struct latchkey *lk)
{
        return lkl_error(lk, LATCHKEY_ERROR_NO_MEMORY, "out of memory");
}

/* libdbus frees a message's buffer without wiping it: wipe the secret's bytes in place. */
static void wipe_in_message(const char *s)
{
        if (s)
                explicit_bzero((char *)s, strlen(s));
}

int latchkey_get_token(struct latchkey *lk, const char *session_id, unsigned min_valid,
                       char **ret_token, int64_t *ret_expires_at, char **ret_type)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        _cleanup_free_ char *type_copy = NULL;
        const char *token = NULL, *type = NULL;
        dbus_int64_t expires_at;
        char *token_copy = NULL;
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        r = pick_session(lk, session_id, &session_id);
        if (r < 0)
                return r;
        r = lkl_new_call(lk, "GetToken", &m);
        if (r < 0)
                return r;
        r = lkl_append_options(lk, m, session_id, min_valid);
        if (r < 0)
                return r;
        r = lkl_call(lk, m, &reply);
        if (r < 0)
                return r;

        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64,
                                   &expires_at, DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID))
                return bad_reply(lk, "GetToken", "is not (sxs)");
        if (!lkl_word_valid(token, LKL_TOKEN_MAX)) {
                wipe_in_message(token);
                return bad_reply(lk, "GetToken", "holds no usable token");
        }
        if (!lkl_word_valid(type, 64) || expires_at < 0) {
                wipe_in_message(token);
                return bad_reply(lk, "GetToken", "holds a bad token type or expiry");
        }
        if (ret_token) {
                token_copy = strdup(token);
                if (!token_copy) {
                        wipe_in_message(token);
                        return oom(lk);
                }
        }
        wipe_in_message(token);
        if (ret_type) {
                type_copy = strdup(type);
                if (!type_copy) {
                        latchkey_free_secret(token_copy);
                        return oom(lk);
                }
        }

        if (ret_token)
                *ret_token = token_copy;
        if (ret_expires_at)
                *ret_expires_at = expires_at;
        if (ret_type)
                *ret_type = TAKE_PTR(type_copy);
        return 0;
}

int latchkey_get_claims(struct latchkey *lk, const char *session_id, char **ret_json)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        const char *json;
        char *copy;
        int r;

        if (!lk || !ret_json)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "no place for the claims");
        r = pick_session(lk, session_id, &session_id);
        if (r < 0)
                return r;
        r = lkl_new_call(lk, "GetClaims", &m);
        if (r < 0)
                return r;
        r = lkl_append_options(lk, m, session_id, 0);
        if (r < 0)
                return r;
        r = lkl_call(lk, m, &reply);
        if (r < 0)
                return r;

        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &json, DBUS_TYPE_INVALID))
                return bad_reply(lk, "GetClaims", "is not (s)");
        /* libdbus checked it is UTF-8; a JSON object starts with '{'. */
        if (strlen(json) > LKL_CLAIMS_MAX || json[strspn(json, " \t\r\n")] != '{')
                return bad_reply(lk, "GetClaims", "is not a JSON object of at most 1 MiB");
        copy = strdup(json);
        if (!copy)
                return oom(lk);
        *ret_json = copy;
        return 0;
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

/* One (ssuxx) row. */
static int read_session(struct latchkey *lk, DBusMessageIter *row, struct latchkey_session *ret)
{
        DBusMessageIter st;
        const char *id, *user;
        dbus_uint32_t uid;
        dbus_int64_t opened_at, expires_at;

        dbus_message_iter_recurse(row, &st);
        dbus_message_iter_get_basic(&st, &id);
        dbus_message_iter_next(&st);
        dbus_message_iter_get_basic(&st, &user);
        dbus_message_iter_next(&st);
        dbus_message_iter_get_basic(&st, &uid);
        dbus_message_iter_next(&st);
        dbus_message_iter_get_basic(&st, &opened_at);
        dbus_message_iter_next(&st);
        dbus_message_iter_get_basic(&st, &expires_at);

        if (!lkl_string_valid(id, LATCHKEY_ID_MAX) || !lkl_string_valid(user, LATCHKEY_ID_MAX))
                return bad_reply(lk, "ListSessions", "holds an overlong session id or user name");
        ret->session_id = strdup(id);
        ret->user = strdup(user);
        if (!ret->session_id || !ret->user)
                return oom(lk);
        ret->uid = uid;
        ret->opened_at = opened_at;
        ret->expires_at = expires_at;
        return 0;
}

int latchkey_list_sessions(struct latchkey *lk, struct latchkey_session **ret, size_t *ret_n)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        struct latchkey_session *list = NULL;
        size_t n = 0, allocated = 0;
        DBusMessageIter it, arr;
        int r;

        if (!lk || !ret || !ret_n)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "no place for the sessions");
        r = lkl_new_call(lk, "ListSessions", &m);
        if (r < 0)
                return r;
        r = lkl_call(lk, m, &reply);
        if (r < 0)
                return r;
        if (!dbus_message_has_signature(reply, "a(ssuxx)"))
                return bad_reply(lk, "ListSessions", "is not a(ssuxx)");

        dbus_message_iter_init(reply, &it);
        dbus_message_iter_recurse(&it, &arr);
        while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRUCT) {
                if (n == LKL_SESSIONS_MAX) {
                        latchkey_free_sessions(list, n);
                        return bad_reply(lk, "ListSessions", "holds too many sessions");
                }
                if (n == allocated) {
                        size_t na = allocated ? allocated * 2 : 8;
                        struct latchkey_session *nl = reallocarray(list, na, sizeof(*nl));

                        if (!nl) {
                                latchkey_free_sessions(list, n);
                                return oom(lk);
                        }
                        list = nl;
                        allocated = na;
                }
                list[n] = (struct latchkey_session){0};
                r = read_session(lk, &arr, &list[n]);
                n++;
                if (r < 0) {
                        latchkey_free_sessions(list, n);
                        return r;
                }
                dbus_message_iter_next(&arr);
        }
        if (n == 0) {
                free(list);
                list = NULL;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

/* Methods that take strings and answer nothing. */
static int call_strings(struct latchkey *lk, const char *method, const char *a, const char *b)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        int r;

        r = lkl_new_call(lk, method, &m);
        if (r < 0)
                return r;
        if (!dbus_message_append_args(m, DBUS_TYPE_STRING, &a, DBUS_TYPE_INVALID) ||
            (b && !dbus_message_append_args(m, DBUS_TYPE_STRING, &b, DBUS_TYPE_INVALID)))
                return oom(lk);
        return lkl_call(lk, m, &reply);
}

int latchkey_close_session(struct latchkey *lk, const char *session_id)
{
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        r = pick_session(lk, session_id, &session_id);
        if (r < 0)
                return r;
        if (!session_id)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT,
                                 "which session? Neither a session id nor LATCHKEY_SESSION is set");
        return call_strings(lk, "CloseSession", session_id, NULL);
}

int latchkey_broker_version(struct latchkey *lk, char **ret_version)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        const char *iface = LKL_INTERFACE, *prop = "Version", *v;
        DBusMessageIter it, var;
        char *copy;
        int r;

        if (!lk || !ret_version)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "no place for the version");
        m = dbus_message_new_method_call(LKL_BUS_NAME, LKL_OBJECT_PATH,
                                         DBUS_INTERFACE_PROPERTIES, "Get");
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &prop,
                                            DBUS_TYPE_INVALID))
                return oom(lk);
        r = lkl_call(lk, m, &reply);
        if (r < 0)
                return r;
        if (!dbus_message_has_signature(reply, "v"))
                return bad_reply(lk, "Get(Version)", "is not a variant");
        dbus_message_iter_init(reply, &it);
        dbus_message_iter_recurse(&it, &var);
        if (dbus_message_iter_get_arg_type(&var) != DBUS_TYPE_STRING)
                return bad_reply(lk, "Get(Version)", "is not a string");
        dbus_message_iter_get_basic(&var, &v);
        if (!lkl_word_valid(v, 64))
                return bad_reply(lk, "Get(Version)", "is not a version");
        copy = strdup(v);
        if (!copy)
                return oom(lk);
        *ret_version = copy;
        return 0;
}

int latchkey_begin_login(struct latchkey *lk, const char *user, char **ret_login_id,
                         char **ret_url)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        _cleanup_free_ char *id_copy = NULL, *url_copy = NULL;
        const char *id, *url;
        int r;

        if (!lk || !ret_login_id || !ret_url)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "no place for the login");
        r = check_arg(lk, user, LATCHKEY_ID_MAX, "a user name");
        if (r < 0)
                return r;
        r = lkl_new_call(lk, "BeginLogin", &m);
        if (r < 0)
                return r;
        if (!dbus_message_append_args(m, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID))
                return oom(lk);
        r = lkl_append_options(lk, m, NULL, 0);
        if (r < 0)
                return r;
        r = lkl_call(lk, m, &reply);
        if (r < 0)
                return r;

        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &url,
                                   DBUS_TYPE_INVALID))
                return bad_reply(lk, "BeginLogin", "is not (ss)");
        if (!lkl_word_valid(id, LATCHKEY_ID_MAX))
                return bad_reply(lk, "BeginLogin", "holds no usable login id");
        /* It goes onto a screen: printable, and an http(s) address. */
        if (!lkl_word_valid(url, LKL_URL_MAX) ||
            (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
                return bad_reply(lk, "BeginLogin", "holds no usable http(s) address");
        id_copy = strdup(id);
        url_copy = strdup(url);
        if (!id_copy || !url_copy)
                return oom(lk);
        *ret_login_id = TAKE_PTR(id_copy);
        *ret_url = TAKE_PTR(url_copy);
        return 0;
}

int latchkey_complete_login(struct latchkey *lk, const char *login_id, const char *answer,
                            char **ret_user)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        const char *user;
        char *copy = NULL;
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        r = check_arg(lk, login_id, LATCHKEY_ID_MAX, "a login id");
        if (r < 0)
                return r;
        r = check_arg(lk, answer, LATCHKEY_ANSWER_MAX, "the answer");
        if (r < 0)
                return r;
        r = lkl_new_call(lk, "CompleteLogin", &m);
        if (r < 0)
                return r;
        if (!dbus_message_append_args(m, DBUS_TYPE_STRING, &login_id, DBUS_TYPE_STRING, &answer,
                                      DBUS_TYPE_INVALID))
                return oom(lk);
        r = lkl_call(lk, m, &reply);
        if (r < 0)
                return r;

        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID))
                return bad_reply(lk, "CompleteLogin", "is not (s)");
        if (!lkl_word_valid(user, LATCHKEY_ID_MAX))
                return bad_reply(lk, "CompleteLogin", "holds no usable user name");
        if (ret_user) {
                copy = strdup(user);
                if (!copy)
                        return oom(lk);
                *ret_user = copy;
        }
        return 0;
}

int latchkey_cancel_login(struct latchkey *lk, const char *login_id)
{
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        r = check_arg(lk, login_id, LATCHKEY_ID_MAX, "a login id");
        if (r < 0)
                return r;
        return call_strings(lk, "CancelLogin", login_id, NULL);
}

int latchkey_open_session(struct latchkey *lk, const char *login_id, const char *session_id)
{
        int r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        r = check_arg(lk, login_id, LATCHKEY_ID_MAX, "a login id");
        if (r < 0)
                return r;
        r = check_arg(lk, session_id, LATCHKEY_ID_MAX, "a session id");
        if (r < 0)
                return r;
        return call_strings(lk, "OpenSession", login_id, session_id);
}
