/* SPDX-License-Identifier: MIT */
/* The client stubs: build the call, send it, check the reply by client/reply_check.h's rules. */
#include "client/broker_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup_dbus.h"
#include "base/text.h"
#include "base/util.h"

static int error_set(struct lk_client_error *e, int r, const char *name, const char *message)
{
        if (e) {
                if (!lk_reply_word_valid(name, sizeof(e->name) - 1))
                        name = LK_CLIENT_ERROR_BAD_REPLY;
                snprintf(e->name, sizeof(e->name), "%s", name);
                lk_text_escape(message, e->message, sizeof(e->message));
        }
        return r;
}

static int oom(struct lk_client_error *e)
{
        return error_set(e, -ENOMEM, DBUS_ERROR_NO_MEMORY, "out of memory");
}

static int bad_reply(struct lk_client_error *e, const char *method, const char *what)
{
        char message[LK_CLIENT_MESSAGE_MAX];

        snprintf(message, sizeof(message), "the broker's answer to %s %s", method, what);
        return error_set(e, -EBADMSG, LK_CLIENT_ERROR_BAD_REPLY, message);
}

static int bad_arg(struct lk_client_error *e, const char *what, size_t max)
{
        char message[LK_CLIENT_MESSAGE_MAX];

        snprintf(message, sizeof(message), "%s must be 1 to %zu bytes of UTF-8", what, max);
        return error_set(e, -EINVAL, DBUS_ERROR_INVALID_ARGS, message);
}

/* A failed libdbus call: -ENOMEM for its out-of-memory error, else -EIO. Frees err. */
static int error_from_dbus(struct lk_client_error *e, DBusError *err)
{
        int r = dbus_error_has_name(err, DBUS_ERROR_NO_MEMORY) ? -ENOMEM : -EIO;

        if (!dbus_error_is_set(err))
                return error_set(e, r, DBUS_ERROR_FAILED, "the D-Bus call failed for no stated reason");
        error_set(e, r, err->name, err->message);
        dbus_error_free(err);
        return r;
}

void lk_client_disconnect(DBusConnection *c)
{
        if (!c)
                return;
        dbus_connection_close(c);
        dbus_connection_unref(c);
}

int lk_client_connect(DBusConnection **ret, struct lk_client_error *e)
{
        DBusError err = DBUS_ERROR_INIT;
        DBusConnection *c;
        const char *address;

        /* libdbus reads DBUS_SYSTEM_BUS_ADDRESS once per process; this reads it per
         * connection. Ignored when setuid, as libdbus does. */
        address = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
        if (!isempty(address)) {
                c = dbus_connection_open_private(address, &err);
                if (c && !dbus_bus_register(c, &err)) {
                        lk_client_disconnect(c);
                        c = NULL;
                }
        } else
                c = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        if (!c)
                return error_from_dbus(e, &err);
        /* libdbus would _exit() the process (the login program) when the bus goes away. */
        dbus_connection_set_exit_on_disconnect(c, FALSE);
        *ret = c;
        return 0;
}

int lk_client_call(DBusConnection *c, int timeout_ms, DBusMessage *m, const char *signature,
                   DBusMessage **ret_reply, struct lk_client_error *e)
{
        _cleanup_(lk_client_disconnectp) DBusConnection *own = NULL;
        DBusError err = DBUS_ERROR_INIT;
        DBusMessage *reply;
        int r;

        if (!c) {
                r = lk_client_connect(&own, e);
                if (r < 0)
                        return r;
                c = own;
        }
        reply = dbus_connection_send_with_reply_and_block(c, m, timeout_ms, &err);
        if (!reply)
                return error_from_dbus(e, &err);
        if (!dbus_message_has_signature(reply, signature)) {
                char what[64];

                dbus_message_unref(reply);
                snprintf(what, sizeof(what), "is not (%s)", signature);
                return bad_reply(e, dbus_message_get_member(m), what);
        }
        *ret_reply = reply;
        return 0;
}

static int new_call(const char *method, DBusMessage **ret, struct lk_client_error *e)
{
        DBusMessage *m = dbus_message_new_method_call(LK_BUS_NAME, LK_BUS_PATH, LK_BUS_INTERFACE,
                                                      method);
        if (!m)
                return oom(e);
        *ret = m;
        return 0;
}

static bool append_entry(DBusMessageIter *dict, const char *key, int type, const char *sig,
                         const void *value)
{
        DBusMessageIter entry, v;

        return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
               dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) &&
               dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, sig, &v) &&
               dbus_message_iter_append_basic(&v, type, value) &&
               dbus_message_iter_close_container(&entry, &v) &&
               dbus_message_iter_close_container(dict, &entry);
}

/*
 * A call of method with up to two string arguments (NULL: none), then, where options is
 * true, an a{sv} of session_id (when not NULL), min_valid (when not 0) and end_with_caller
 * (when true).
 */
struct call_args {
        const char *a, *b;
        bool options;
        bool options_first; /* the a{sv} before the strings (ChangePin) */
        const char *session_id;
        uint32_t min_valid;
        bool end_with_caller;
        bool offline, probe; /* CheckPin, GetPinState */
        const char *scope, *audience;
};

static bool append_options(DBusMessageIter *it, const struct call_args *args)
{
        const dbus_bool_t yes = TRUE;
        DBusMessageIter dict;

        return dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &dict) &&
               (!args->session_id ||
                append_entry(&dict, "session_id", DBUS_TYPE_STRING, "s", &args->session_id)) &&
               (!args->min_valid ||
                append_entry(&dict, "min_valid", DBUS_TYPE_UINT32, "u", &args->min_valid)) &&
               (!args->end_with_caller ||
                append_entry(&dict, "end_with_caller", DBUS_TYPE_BOOLEAN, "b", &yes)) &&
               (!args->offline || append_entry(&dict, "offline", DBUS_TYPE_BOOLEAN, "b", &yes)) &&
               (!args->probe || append_entry(&dict, "probe", DBUS_TYPE_BOOLEAN, "b", &yes)) &&
               (!args->scope || append_entry(&dict, "scope", DBUS_TYPE_STRING, "s", &args->scope)) &&
               (!args->audience ||
                append_entry(&dict, "audience", DBUS_TYPE_STRING, "s", &args->audience)) &&
               dbus_message_iter_close_container(it, &dict);
}

static int build(const char *method, const struct call_args *args, DBusMessage **ret,
                 struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL;
        DBusMessageIter it;
        int r;

        r = new_call(method, &m, e);
        if (r < 0)
                return r;
        dbus_message_iter_init_append(m, &it);
        if (args->options && args->options_first && !append_options(&it, args))
                return oom(e);
        if (args->a && !dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &args->a))
                return oom(e);
        if (args->b && !dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &args->b))
                return oom(e);
        if (args->options && !args->options_first && !append_options(&it, args))
                return oom(e);
        *ret = TAKE_PTR(m);
        return 0;
}

/* Builds, calls and checks the reply's signature. */
static int call(DBusConnection *c, int timeout_ms, const char *method, const char *signature,
                const struct call_args *args, DBusMessage **ret_reply, struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL;
        int r;

        r = build(method, args, &m, e);
        if (r < 0)
                return r;
        return lk_client_call(c, timeout_ms, m, signature, ret_reply, e);
}

static int dup_out(const char *s, char **ret, struct lk_client_error *e)
{
        char *copy;

        if (!ret)
                return 0;
        copy = strdup(s);
        if (!copy)
                return oom(e);
        *ret = copy;
        return 0;
}

int lk_client_parse_begin_login(DBusMessage *reply, char **ret_login_id, char **ret_url,
                                struct lk_client_error *e)
{
        _cleanup_free_ char *id_copy = NULL;
        const char *id = NULL, *url = NULL;
        int r;

        /* get_args reads the first arguments only: the whole signature must match */
        if (!dbus_message_has_signature(reply, LK_BUS_BEGIN_LOGIN_OUT) ||
            !dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &url,
                                   DBUS_TYPE_INVALID))
                return bad_reply(e, LK_BUS_METHOD_BEGIN_LOGIN, "is not (" LK_BUS_BEGIN_LOGIN_OUT ")");
        if (!lk_reply_word_valid(id, LK_ARG_ID_MAX))
                return bad_reply(e, LK_BUS_METHOD_BEGIN_LOGIN, "holds no usable login id");
        /* It goes onto a screen: printable, and an http(s) address. */
        if (!lk_reply_url_valid(url))
                return bad_reply(e, LK_BUS_METHOD_BEGIN_LOGIN, "holds no usable http(s) address");
        r = dup_out(id, &id_copy, e);
        if (r < 0)
                return r;
        r = dup_out(url, ret_url, e);
        if (r < 0)
                return r;
        *ret_login_id = TAKE_PTR(id_copy);
        return 0;
}

int lk_client_begin_login(DBusConnection *c, int timeout_ms, const char *user,
                          bool end_with_caller, char **ret_login_id, char **ret_url,
                          struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *reply = NULL;
        const struct call_args args = { .a = user, .options = true,
                                        .end_with_caller = end_with_caller };
        int r;

        if (!lk_reply_string_valid(user, LK_ARG_ID_MAX))
                return bad_arg(e, "a user name", LK_ARG_ID_MAX);
        r = call(c, timeout_ms, LK_BUS_METHOD_BEGIN_LOGIN, LK_BUS_BEGIN_LOGIN_OUT, &args, &reply,
                 e);
        if (r < 0)
                return r;
        return lk_client_parse_begin_login(reply, ret_login_id, ret_url, e);
}

/* CompleteLogin's and WaitLogin's reply: (s user). */
static int parse_user(DBusMessage *reply, const char *method, char **ret_user,
                      struct lk_client_error *e)
{
        const char *user = NULL;

        /* get_args reads the first arguments only: the whole signature must match */
        if (!dbus_message_has_signature(reply, "s") ||
            !dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID))
                return bad_reply(e, method, "is not (s)");
        if (!lk_reply_user_valid(user))
                return bad_reply(e, method, "holds no usable user name");
        return dup_out(user, ret_user, e);
}

_Static_assert(sizeof(LK_BUS_COMPLETE_LOGIN_OUT) == 2 && sizeof(LK_BUS_WAIT_LOGIN_OUT) == 2,
               "CompleteLogin and WaitLogin answer (s)");

int lk_client_parse_complete_login(DBusMessage *reply, char **ret_user,
                                   struct lk_client_error *e)
{
        return parse_user(reply, LK_BUS_METHOD_COMPLETE_LOGIN, ret_user, e);
}

int lk_client_wait_login(DBusConnection *c, int timeout_ms, const char *login_id,
                         char **ret_user, struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *reply = NULL;
        int r;

        if (!lk_reply_string_valid(login_id, LK_ARG_ID_MAX))
                return bad_arg(e, "a login id", LK_ARG_ID_MAX);
        r = call(c, timeout_ms, LK_BUS_METHOD_WAIT_LOGIN, LK_BUS_WAIT_LOGIN_OUT,
                 &(struct call_args){ .a = login_id }, &reply, e);
        if (r < 0)
                return r;
        return parse_user(reply, LK_BUS_METHOD_WAIT_LOGIN, ret_user, e);
}

void lk_client_login_info_clear(struct lk_client_login_info *i)
{
        free(i->url);
        free(i->user_code);
        *i = (struct lk_client_login_info){0};
}

/* One entry of GetLoginInfo's a{sv}: the value's type must be the key's. */
static int info_entry(DBusMessageIter *entry, struct lk_client_login_info *i,
                      struct lk_client_error *e)
{
        const char *m = LK_BUS_METHOD_GET_LOGIN_INFO;
        DBusMessageIter v;
        const char *key, *s = NULL;
        dbus_bool_t b;
        int type;

        dbus_message_iter_get_basic(entry, &key);
        dbus_message_iter_next(entry);
        dbus_message_iter_recurse(entry, &v);
        type = dbus_message_iter_get_arg_type(&v);
        if (type == DBUS_TYPE_STRING)
                dbus_message_iter_get_basic(&v, &s);
        if (streq(key, "flow") || streq(key, "state")) {
                if (!s)
                        return bad_reply(e, m, "has a flow or state that is not a string");
                if (streq(key, "flow") && (streq(s, "code") || streq(s, "device")))
                        i->device = streq(s, "device");
                else if (streq(key, "state") && (streq(s, "pending") || streq(s, "done")))
                        i->done = streq(s, "done");
                else
                        return bad_reply(e, m, "has an unknown flow or state");
        } else if (streq(key, "url")) {
                if (!s || !lk_reply_url_valid(s))
                        return bad_reply(e, m, "holds no usable http(s) address");
                free(i->url);
                return dup_out(s, &i->url, e);
        } else if (streq(key, "user_code")) {
                /* It goes onto a screen, to be typed: a word. */
                if (!s || !lk_reply_word_valid(s, LK_CLIENT_USER_CODE_MAX))
                        return bad_reply(e, m, "holds no usable user code");
                free(i->user_code);
                return dup_out(s, &i->user_code, e);
        } else if (streq(key, "interval") || streq(key, "seconds_left")) {
                if (type != DBUS_TYPE_UINT32)
                        return bad_reply(e, m, "has an interval or seconds_left that is not (u)");
                dbus_message_iter_get_basic(&v, streq(key, "interval") ? &i->interval
                                                                       : &i->seconds_left);
        } else if (streq(key, "callback")) {
                if (type != DBUS_TYPE_BOOLEAN)
                        return bad_reply(e, m, "has a callback that is not (b)");
                dbus_message_iter_get_basic(&v, &b);
                i->callback = b;
        }
        /* Unknown keys are ignored: the broker may say more one day. */
        return 0;
}

int lk_client_parse_login_info(DBusMessage *reply, struct lk_client_login_info *ret,
                               struct lk_client_error *e)
{
        struct lk_client_login_info i = {0};
        DBusMessageIter it, dict;
        int r = 0;

        if (!dbus_message_has_signature(reply, LK_BUS_GET_LOGIN_INFO_OUT) ||
            !dbus_message_iter_init(reply, &it))
                return bad_reply(e, LK_BUS_METHOD_GET_LOGIN_INFO,
                                 "is not (" LK_BUS_GET_LOGIN_INFO_OUT ")");
        dbus_message_iter_recurse(&it, &dict);
        for (; r >= 0 && dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
             dbus_message_iter_next(&dict)) {
                DBusMessageIter entry;

                dbus_message_iter_recurse(&dict, &entry);
                r = info_entry(&entry, &i, e);
        }
        if (r >= 0 && !i.url)
                r = bad_reply(e, LK_BUS_METHOD_GET_LOGIN_INFO, "names no address");
        if (r >= 0 && i.device && !i.user_code)
                r = bad_reply(e, LK_BUS_METHOD_GET_LOGIN_INFO, "names no user code");
        if (r < 0) {
                lk_client_login_info_clear(&i);
                return r;
        }
        *ret = i;
        return 0;
}

int lk_client_get_login_info(DBusConnection *c, int timeout_ms, const char *login_id,
                             struct lk_client_login_info *ret, struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *reply = NULL;
        int r;

        if (!lk_reply_string_valid(login_id, LK_ARG_ID_MAX))
                return bad_arg(e, "a login id", LK_ARG_ID_MAX);
        r = call(c, timeout_ms, LK_BUS_METHOD_GET_LOGIN_INFO, LK_BUS_GET_LOGIN_INFO_OUT,
                 &(struct call_args){ .a = login_id }, &reply, e);
        if (r < 0)
                return r;
        return lk_client_parse_login_info(reply, ret, e);
}

int lk_client_complete_login(DBusConnection *c, int timeout_ms, const char *login_id,
                             const char *answer, char **ret_user, struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *reply = NULL;
        const struct call_args args = { .a = login_id, .b = answer };
        int r;

        if (!lk_reply_string_valid(login_id, LK_ARG_ID_MAX))
                return bad_arg(e, "a login id", LK_ARG_ID_MAX);
        if (!lk_reply_string_valid(answer, LK_ARG_ANSWER_MAX))
                return bad_arg(e, "the answer", LK_ARG_ANSWER_MAX);
        r = call(c, timeout_ms, LK_BUS_METHOD_COMPLETE_LOGIN, LK_BUS_COMPLETE_LOGIN_OUT, &args,
                 &reply, e);
        if (r < 0)
                return r;
        return lk_client_parse_complete_login(reply, ret_user, e);
}

/* The methods that answer nothing. */
static int call_void(DBusConnection *c, int timeout_ms, const char *method,
                     const struct call_args *args, struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *reply = NULL;

        return call(c, timeout_ms, method, "", args, &reply, e);
}

int lk_client_cancel_login(DBusConnection *c, int timeout_ms, const char *login_id,
                           struct lk_client_error *e)
{
        if (!lk_reply_string_valid(login_id, LK_ARG_ID_MAX))
                return bad_arg(e, "a login id", LK_ARG_ID_MAX);
        return call_void(c, timeout_ms, LK_BUS_METHOD_CANCEL_LOGIN,
                         &(struct call_args){ .a = login_id }, e);
}

int lk_client_open_session(DBusConnection *c, int timeout_ms, const char *login_id,
                           const char *session_id, struct lk_client_error *e)
{
        if (!lk_reply_string_valid(login_id, LK_ARG_ID_MAX))
                return bad_arg(e, "a login id", LK_ARG_ID_MAX);
        if (!lk_reply_string_valid(session_id, LK_ARG_ID_MAX))
                return bad_arg(e, "a session id", LK_ARG_ID_MAX);
        return call_void(c, timeout_ms, LK_BUS_METHOD_OPEN_SESSION,
                         &(struct call_args){ .a = login_id, .b = session_id }, e);
}

int lk_client_close_session(DBusConnection *c, int timeout_ms, const char *session_id,
                            struct lk_client_error *e)
{
        if (!lk_reply_string_valid(session_id, LK_ARG_ID_MAX))
                return bad_arg(e, "a session id", LK_ARG_ID_MAX);
        return call_void(c, timeout_ms, LK_BUS_METHOD_CLOSE_SESSION,
                         &(struct call_args){ .a = session_id }, e);
}

int lk_client_forget_account(DBusConnection *c, int timeout_ms, const char *user,
                             struct lk_client_error *e)
{
        if (!lk_reply_string_valid(user, LK_ARG_ID_MAX))
                return bad_arg(e, "a user name", LK_ARG_ID_MAX);
        return call_void(c, timeout_ms, LK_BUS_METHOD_FORGET_ACCOUNT,
                         &(struct call_args){ .a = user }, e);
}

/* libdbus frees a message's buffer without wiping it: wipe the secret's bytes in place. */
static void wipe_in_message(const char *s)
{
        if (s)
                explicit_bzero((char *)s, strlen(s));
}

int lk_client_parse_get_token(DBusMessage *reply, char **ret_token, int64_t *ret_expires_at,
                              char **ret_type, struct lk_client_error *e)
{
        _cleanup_secret_ char *token_copy = NULL;
        const char *token = NULL, *type = NULL;
        dbus_int64_t expires_at = 0;
        int r;

        /* get_args reads the first arguments only: the whole signature must match */
        if (!dbus_message_has_signature(reply, LK_BUS_GET_TOKEN_OUT) ||
            !dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64,
                                   &expires_at, DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID))
                return bad_reply(e, LK_BUS_METHOD_GET_TOKEN, "is not (" LK_BUS_GET_TOKEN_OUT ")");
        if (!lk_reply_word_valid(token, LK_ARG_ACCESS_TOKEN_MAX))
                r = bad_reply(e, LK_BUS_METHOD_GET_TOKEN, "holds no usable token");
        else if (!lk_reply_word_valid(type, LK_ARG_TOKEN_TYPE_MAX) || expires_at < 0)
                r = bad_reply(e, LK_BUS_METHOD_GET_TOKEN, "holds a bad token type or expiry");
        else
                r = dup_out(token, ret_token ? &token_copy : NULL, e);
        wipe_in_message(token);
        if (r < 0)
                return r;
        r = dup_out(type, ret_type, e);
        if (r < 0)
                return r;
        if (ret_token)
                *ret_token = TAKE_PTR(token_copy);
        if (ret_expires_at)
                *ret_expires_at = expires_at;
        return 0;
}

int lk_client_get_token(DBusConnection *c, int timeout_ms, const char *session_id,
                        uint32_t min_valid, char **ret_token, int64_t *ret_expires_at,
                        char **ret_type, struct lk_client_error *e)
{
        return lk_client_get_token_for(c, timeout_ms, session_id, NULL, NULL, min_valid,
                                       ret_token, ret_expires_at, ret_type, e);
}

int lk_client_get_token_for(DBusConnection *c, int timeout_ms, const char *session_id,
                            const char *scope, const char *audience, uint32_t min_valid,
                            char **ret_token, int64_t *ret_expires_at, char **ret_type,
                            struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *reply = NULL;
        const struct call_args args = { .options = true, .session_id = session_id,
                                        .min_valid = min_valid,
                                        .scope = isempty(scope) ? NULL : scope,
                                        .audience = isempty(audience) ? NULL : audience };
        int r;

        if (session_id && !lk_reply_string_valid(session_id, LK_ARG_ID_MAX))
                return bad_arg(e, "a session id", LK_ARG_ID_MAX);
        if (args.scope && !lk_reply_string_valid(scope, LK_ARG_ID_MAX))
                return bad_arg(e, "a scope", LK_ARG_ID_MAX);
        if (args.audience && !lk_reply_string_valid(audience, LK_ARG_ID_MAX))
                return bad_arg(e, "an audience", LK_ARG_ID_MAX);
        r = call(c, timeout_ms, LK_BUS_METHOD_GET_TOKEN, LK_BUS_GET_TOKEN_OUT, &args, &reply, e);
        if (r < 0)
                return r;
        return lk_client_parse_get_token(reply, ret_token, ret_expires_at, ret_type, e);
}

int lk_client_parse_get_claims(DBusMessage *reply, char **ret_json, struct lk_client_error *e)
{
        const char *json = NULL;

        /* get_args reads the first arguments only: the whole signature must match */
        if (!dbus_message_has_signature(reply, LK_BUS_GET_CLAIMS_OUT) ||
            !dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &json, DBUS_TYPE_INVALID))
                return bad_reply(e, LK_BUS_METHOD_GET_CLAIMS, "is not (" LK_BUS_GET_CLAIMS_OUT ")");
        if (!lk_reply_claims_valid(json))
                return bad_reply(e, LK_BUS_METHOD_GET_CLAIMS, "is not a JSON object of at most 1 MiB");
        return dup_out(json, ret_json, e);
}

int lk_client_get_claims(DBusConnection *c, int timeout_ms, const char *session_id,
                         char **ret_json, struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *reply = NULL;
        const struct call_args args = { .options = true, .session_id = session_id };
        int r;

        if (session_id && !lk_reply_string_valid(session_id, LK_ARG_ID_MAX))
                return bad_arg(e, "a session id", LK_ARG_ID_MAX);
        r = call(c, timeout_ms, LK_BUS_METHOD_GET_CLAIMS, LK_BUS_GET_CLAIMS_OUT, &args, &reply, e);
        if (r < 0)
                return r;
        return lk_client_parse_get_claims(reply, ret_json, e);
}

void lk_client_free_sessions(struct lk_client_session *sessions, size_t n)
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
static int parse_session(DBusMessageIter *row, struct lk_client_session *ret,
                         struct lk_client_error *e)
{
        DBusMessageIter st;
        const char *id, *user;
        dbus_uint32_t uid;
        dbus_int64_t opened_at, expires_at;
        int r;

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

        if (!lk_reply_string_valid(id, LK_ARG_ID_MAX) || !lk_reply_user_valid(user))
                return bad_reply(e, LK_BUS_METHOD_LIST_SESSIONS,
                                 "holds an unusable session id or user name");
        r = dup_out(id, &ret->session_id, e);
        if (r < 0)
                return r;
        r = dup_out(user, &ret->user, e);
        if (r < 0)
                return r;
        ret->uid = uid;
        ret->opened_at = opened_at;
        ret->expires_at = expires_at;
        return 0;
}

int lk_client_parse_list_sessions(DBusMessage *reply, struct lk_client_session **ret,
                                  size_t *ret_n, struct lk_client_error *e)
{
        struct lk_client_session *list = NULL;
        size_t n = 0, allocated = 0;
        DBusMessageIter it, arr;
        int r = 0;

        if (!dbus_message_has_signature(reply, LK_BUS_LIST_SESSIONS_OUT))
                return bad_reply(e, LK_BUS_METHOD_LIST_SESSIONS,
                                 "is not (" LK_BUS_LIST_SESSIONS_OUT ")");
        dbus_message_iter_init(reply, &it);
        dbus_message_iter_recurse(&it, &arr);
        for (; dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRUCT;
             dbus_message_iter_next(&arr)) {
                if (n == LK_CLIENT_SESSIONS_MAX) {
                        r = bad_reply(e, LK_BUS_METHOD_LIST_SESSIONS, "holds too many sessions");
                        break;
                }
                if (n == allocated) {
                        size_t na = allocated ? allocated * 2 : 8;
                        struct lk_client_session *nl = reallocarray(list, na, sizeof(*nl));

                        if (!nl) {
                                r = oom(e);
                                break;
                        }
                        list = nl;
                        allocated = na;
                }
                list[n] = (struct lk_client_session){0};
                r = parse_session(&arr, &list[n], e);
                n++;
                if (r < 0)
                        break;
        }
        if (r < 0) {
                lk_client_free_sessions(list, n);
                return r;
        }
        if (n == 0) {
                free(list);
                list = NULL;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

int lk_client_list_sessions(DBusConnection *c, int timeout_ms, struct lk_client_session **ret,
                            size_t *ret_n, struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *reply = NULL;
        int r;

        r = call(c, timeout_ms, LK_BUS_METHOD_LIST_SESSIONS, LK_BUS_LIST_SESSIONS_OUT,
                 &(struct call_args){0}, &reply, e);
        if (r < 0)
                return r;
        return lk_client_parse_list_sessions(reply, ret, ret_n, e);
}

int lk_client_get_version(DBusConnection *c, int timeout_ms, char **ret_version,
                          struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        const char *iface = LK_BUS_INTERFACE, *prop = LK_BUS_PROPERTY_VERSION, *v;
        DBusMessageIter it, var;
        int r;

        m = dbus_message_new_method_call(LK_BUS_NAME, LK_BUS_PATH, DBUS_INTERFACE_PROPERTIES,
                                         "Get");
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &prop,
                                            DBUS_TYPE_INVALID))
                return oom(e);
        r = lk_client_call(c, timeout_ms, m, "v", &reply, e);
        if (r < 0)
                return r;
        dbus_message_iter_init(reply, &it);
        dbus_message_iter_recurse(&it, &var);
        if (dbus_message_iter_get_arg_type(&var) != DBUS_TYPE_STRING)
                return bad_reply(e, "Get(Version)", "is not a string");
        dbus_message_iter_get_basic(&var, &v);
        if (!lk_reply_word_valid(v, LK_ARG_VERSION_MAX))
                return bad_reply(e, "Get(Version)", "is not a version");
        return dup_out(v, ret_version, e);
}

/* ---- the offline PIN ---- */

int lk_client_set_pin(DBusConnection *c, int timeout_ms, const char *login_id, const char *pin,
                      struct lk_client_error *e)
{
        if (!lk_reply_string_valid(login_id, LK_ARG_ID_MAX))
                return bad_arg(e, "a login id", LK_ARG_ID_MAX);
        if (!lk_reply_string_valid(pin, LK_ARG_ID_MAX))
                return bad_arg(e, "the PIN", LK_ARG_ID_MAX);
        return call_void(c, timeout_ms, LK_BUS_METHOD_SET_PIN,
                         &(struct call_args){ .a = login_id, .b = pin }, e);
}

int lk_client_change_pin(DBusConnection *c, int timeout_ms, const char *session_id,
                         const char *pin, struct lk_client_error *e)
{
        if (session_id && !lk_reply_string_valid(session_id, LK_ARG_ID_MAX))
                return bad_arg(e, "a session id", LK_ARG_ID_MAX);
        /* Empty removes the PIN. */
        if (*pin && !lk_reply_string_valid(pin, LK_ARG_ID_MAX))
                return bad_arg(e, "the PIN", LK_ARG_ID_MAX);
        return call_void(c, timeout_ms, LK_BUS_METHOD_CHANGE_PIN,
                         &(struct call_args){ .a = pin, .options = true, .options_first = true,
                                              .session_id = session_id }, e);
}

int lk_client_check_pin(DBusConnection *c, int timeout_ms, const char *user, const char *pin,
                        bool offline, struct lk_client_error *e)
{
        if (!lk_reply_string_valid(user, LK_ARG_ID_MAX))
                return bad_arg(e, "a user name", LK_ARG_ID_MAX);
        if (!lk_reply_string_valid(pin, LK_ARG_ID_MAX))
                return bad_arg(e, "the PIN", LK_ARG_ID_MAX);
        return call_void(c, timeout_ms, LK_BUS_METHOD_CHECK_PIN,
                         &(struct call_args){ .a = user, .b = pin, .options = true,
                                              .offline = offline }, e);
}

/* One entry of GetPinState's a{sv}, by its key and type; the rest is ignored. */
static int read_pin_entry(DBusMessageIter *entry, struct lk_client_pin_state *st)
{
        static const struct {
                const char *key;
                int type;
        } known[] = {
                {"enabled", DBUS_TYPE_BOOLEAN}, {"pin", DBUS_TYPE_BOOLEAN},
                {"state", DBUS_TYPE_STRING},    {"until", DBUS_TYPE_INT64},
                {"locked_until", DBUS_TYPE_INT64}, {"failures", DBUS_TYPE_UINT32},
                {"provider", DBUS_TYPE_STRING},
        };
        DBusMessageIter v;
        const char *key;
        size_t i;

        dbus_message_iter_get_basic(entry, &key);
        dbus_message_iter_next(entry);
        dbus_message_iter_recurse(entry, &v);
        for (i = 0; i < ELEMENTSOF(known); i++)
                if (streq(key, known[i].key))
                        break;
        if (i == ELEMENTSOF(known))
                return 0;
        if (dbus_message_iter_get_arg_type(&v) != known[i].type)
                return -EBADMSG;
        switch (i) {
        case 0:
        case 1: {
                dbus_bool_t b;
                dbus_message_iter_get_basic(&v, &b);
                *(i == 0 ? &st->enabled : &st->pin) = b;
                return 0;
        }
        case 2:
        case 6: {
                const char *s;
                char *dst = i == 2 ? st->state : st->provider;
                dbus_message_iter_get_basic(&v, &s);
                if (!lk_reply_word_valid(s, sizeof(st->state) - 1))
                        return -EBADMSG;
                snprintf(dst, sizeof(st->state), "%s", s);
                return 0;
        }
        case 3:
        case 4: {
                dbus_int64_t x;
                dbus_message_iter_get_basic(&v, &x);
                if (x < 0)
                        return -EBADMSG;
                *(i == 3 ? &st->until : &st->locked_until) = x;
                return 0;
        }
        default: {
                dbus_uint32_t u;
                dbus_message_iter_get_basic(&v, &u);
                st->failures = u;
                return 0;
        }
        }
}

int lk_client_parse_pin_state(DBusMessage *reply, struct lk_client_pin_state *ret,
                              struct lk_client_error *e)
{
        struct lk_client_pin_state st = {0};
        DBusMessageIter it, dict;

        if (!dbus_message_has_signature(reply, LK_BUS_GET_PIN_STATE_OUT) ||
            !dbus_message_iter_init(reply, &it))
                return bad_reply(e, LK_BUS_METHOD_GET_PIN_STATE,
                                 "is not (" LK_BUS_GET_PIN_STATE_OUT ")");
        dbus_message_iter_recurse(&it, &dict);
        for (; dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
             dbus_message_iter_next(&dict)) {
                DBusMessageIter entry;

                dbus_message_iter_recurse(&dict, &entry);
                if (read_pin_entry(&entry, &st) < 0)
                        return bad_reply(e, LK_BUS_METHOD_GET_PIN_STATE, "holds a bad entry");
        }
        if (!st.state[0])
                return bad_reply(e, LK_BUS_METHOD_GET_PIN_STATE, "holds no state");
        *ret = st;
        return 0;
}

int lk_client_get_pin_state(DBusConnection *c, int timeout_ms, const char *user, bool probe,
                            struct lk_client_pin_state *ret, struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *reply = NULL;
        int r;

        if (!lk_reply_string_valid(user, LK_ARG_ID_MAX))
                return bad_arg(e, "a user name", LK_ARG_ID_MAX);
        r = call(c, timeout_ms, LK_BUS_METHOD_GET_PIN_STATE, LK_BUS_GET_PIN_STATE_OUT,
                 &(struct call_args){ .a = user, .options = true, .probe = probe }, &reply, e);
        if (r < 0)
                return r;
        return lk_client_parse_pin_state(reply, ret, e);
}
