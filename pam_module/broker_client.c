/* SPDX-License-Identifier: MIT */
#include "pam_module/broker_client.h"

#include <dbus/dbus.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/cleanup_dbus.h"
#include "base/util.h"
#include "pam_module/pam_errors.h"

#define BROKER_NOT_FOUND "org.latchkey.Broker1.Error.NotFound"
#define LOGIND_BUS_NAME "org.freedesktop.login1"
#define LIST_SESSIONS_MAX 100000 /* rows read from one ListSessions reply */

static int error_set(struct lkp_broker_error *e, int r, const char *name, const char *message)
{
        if (e) {
                if (!lkp_word_valid(name, sizeof(e->name) - 1))
                        name = LKP_ERROR_BAD_REPLY;
                snprintf(e->name, sizeof(e->name), "%s", name);
                lk_text_escape(message, e->message, sizeof(e->message));
        }
        return r;
}

static int error_from_dbus(struct lkp_broker_error *e, DBusError *err)
{
        int r = -EIO;

        if (!dbus_error_is_set(err))
                return error_set(e, r, DBUS_ERROR_FAILED, NULL);
        if (dbus_error_has_name(err, DBUS_ERROR_NO_MEMORY))
                r = -ENOMEM;
        error_set(e, r, err->name, err->message);
        dbus_error_free(err);
        return r;
}

static int bad_reply(struct lkp_broker_error *e, const char *what)
{
        return error_set(e, -EIO, LKP_ERROR_BAD_REPLY, what);
}

/* Strings go out only as valid UTF-8 (libdbus would complain on stderr otherwise) and capped. */
static bool arg_valid(const char *s, size_t max)
{
        size_t n;

        if (!s)
                return false;
        n = strnlen(s, max + 1);
        return n <= max && lkp_utf8_valid(s, n);
}

static int new_call(const char *method, DBusMessage **ret)
{
        DBusMessage *m = dbus_message_new_method_call(LKP_BUS_NAME, LKP_OBJECT_PATH, LKP_INTERFACE,
                                                      method);
        if (!m)
                return -ENOMEM;
        *ret = m;
        return 0;
}

/* Appends the strings, then (where options is true) an a{sv}: end_with_caller = true. */
static int append(DBusMessage *m, const char *a, const char *b, bool options)
{
        static const char *const key = "end_with_caller";
        const dbus_bool_t yes = TRUE;
        DBusMessageIter it, dict, entry, value;

        dbus_message_iter_init_append(m, &it);
        if (a && !dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &a))
                return -ENOMEM;
        if (b && !dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &b))
                return -ENOMEM;
        if (options) {
                if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict) ||
                    !dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) ||
                    !dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) ||
                    !dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "b", &value) ||
                    !dbus_message_iter_append_basic(&value, DBUS_TYPE_BOOLEAN, &yes) ||
                    !dbus_message_iter_close_container(&entry, &value) ||
                    !dbus_message_iter_close_container(&dict, &entry) ||
                    !dbus_message_iter_close_container(&it, &dict))
                        return -ENOMEM;
        }
        return 0;
}

static int connect_bus(DBusConnection **ret, struct lkp_broker_error *e)
{
        DBusError err;
        DBusConnection *c;

        dbus_error_init(&err);
        c = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        if (!c)
                return error_from_dbus(e, &err);
        /* libdbus would _exit() the login program when the bus goes away. */
        dbus_connection_set_exit_on_disconnect(c, FALSE);
        *ret = c;
        return 0;
}

void lkp_conn_close(DBusConnection *c)
{
        if (!c)
                return;
        dbus_connection_close(c);
        dbus_connection_unref(c);
}

/* Sends m on c and waits for the reply. */
static int call_on(DBusConnection *c, const struct options *o, DBusMessage *m,
                   const char *signature, DBusMessage **ret_reply, struct lkp_broker_error *e)
{
        DBusError err;
        DBusMessage *reply;

        dbus_error_init(&err);
        reply = dbus_connection_send_with_reply_and_block(c, m, (int)o->timeout * 1000, &err);
        if (!reply)
                return error_from_dbus(e, &err);

        if (!dbus_message_has_signature(reply, signature)) {
                dbus_message_unref(reply);
                return bad_reply(e, "The sign-in service answered with arguments of the wrong types.");
        }
        *ret_reply = reply;
        return 0;
}

/*
 * Sends m on a private connection of its own and waits for the reply; the
 * connection is closed and released before this returns, whatever happened.
 */
static int call(const struct options *o, DBusMessage *m, const char *signature,
                DBusMessage **ret_reply, struct lkp_broker_error *e)
{
        DBusConnection *c = NULL;
        int r;

        r = connect_bus(&c, e);
        if (r < 0)
                return r;
        r = call_on(c, o, m, signature, ret_reply, e);
        lkp_conn_close(c);
        return r;
}

/* A call whose reply has no arguments. */
static int call_void(const struct options *o, const char *method, const char *a, const char *b,
                     struct lkp_broker_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        int r;

        r = new_call(method, &m);
        if (r < 0)
                return r;
        r = append(m, a, b, false);
        if (r < 0)
                return r;
        return call(o, m, "", &reply, e);
}

static bool url_valid(const char *url)
{
        return lkp_word_valid(url, LKP_URL_MAX) &&
               (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0);
}

int lkp_begin_login(const struct options *o, const char *user, DBusConnection **ret_conn,
                    char **ret_login_id, char **ret_url, struct lkp_broker_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        _cleanup_(lkp_conn_closep) DBusConnection *c = NULL;
        _cleanup_free_ char *id_copy = NULL, *url_copy = NULL;
        const char *id = NULL, *url = NULL;
        int r;

        if (!arg_valid(user, LKP_ID_MAX))
                return error_set(e, -EIO, DBUS_ERROR_INVALID_ARGS, "The user name is not usable.");
        r = new_call("BeginLogin", &m);
        if (r < 0)
                return r;
        r = append(m, user, NULL, true);
        if (r < 0)
                return r;
        r = connect_bus(&c, e);
        if (r < 0)
                return r;
        r = call_on(c, o, m, "ss", &reply, e);
        if (r < 0)
                return r;

        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &url,
                                   DBUS_TYPE_INVALID))
                return bad_reply(e, "The sign-in service sent an unreadable answer.");
        if (!lkp_word_valid(id, LKP_ID_MAX))
                return bad_reply(e, "The sign-in service sent an unusable login id.");
        if (!url_valid(url))
                return bad_reply(e, "The sign-in service sent an unusable sign-in address.");

        id_copy = strdup(id);
        url_copy = strdup(url);
        if (!id_copy || !url_copy)
                return -ENOMEM;
        *ret_conn = TAKE_PTR(c);
        *ret_login_id = TAKE_PTR(id_copy);
        *ret_url = TAKE_PTR(url_copy);
        return 0;
}

int lkp_complete_login(const struct options *o, const char *login_id, const char *answer,
                       char **ret_user, struct lkp_broker_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        const char *user = NULL;
        char *copy;
        int r;

        if (!arg_valid(login_id, LKP_ID_MAX) || !arg_valid(answer, LKP_ANSWER_MAX))
                return error_set(e, -EIO, LKP_ERROR_BAD_ANSWER, NULL);
        r = new_call("CompleteLogin", &m);
        if (r < 0)
                return r;
        r = append(m, login_id, answer, false);
        if (r < 0)
                return r;
        r = call(o, m, "s", &reply, e);
        if (r < 0)
                return r;

        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID))
                return bad_reply(e, "The sign-in service sent an unreadable answer.");
        if (!*user || !arg_valid(user, LKP_ID_MAX))
                return bad_reply(e, "The sign-in service sent an unusable user name.");
        copy = strdup(user);
        if (!copy)
                return -ENOMEM;
        *ret_user = copy;
        return 0;
}

int lkp_cancel_login(const struct options *o, const char *login_id, struct lkp_broker_error *e)
{
        if (!arg_valid(login_id, LKP_ID_MAX))
                return error_set(e, -EIO, DBUS_ERROR_INVALID_ARGS, "The login id is not usable.");
        return call_void(o, "CancelLogin", login_id, NULL, e);
}

int lkp_open_session(const struct options *o, const char *login_id, const char *session_id,
                     struct lkp_broker_error *e)
{
        if (!arg_valid(login_id, LKP_ID_MAX) || !arg_valid(session_id, LKP_ID_MAX))
                return error_set(e, -EIO, DBUS_ERROR_INVALID_ARGS, "The login or session id is not usable.");
        return call_void(o, "OpenSession", login_id, session_id, e);
}

int lkp_close_session(const struct options *o, const char *session_id, struct lkp_broker_error *e)
{
        if (!arg_valid(session_id, LKP_ID_MAX))
                return error_set(e, -EIO, DBUS_ERROR_INVALID_ARGS, "The session id is not usable.");
        return call_void(o, "CloseSession", session_id, NULL, e);
}

int lkp_session_user(const struct options *o, const char *session_id, char **ret_user,
                     struct lkp_broker_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        DBusMessageIter it, rows;
        int r;

        r = new_call("ListSessions", &m);
        if (r < 0)
                return r;
        r = call(o, m, "a(ssuxx)", &reply, e);
        if (r < 0)
                return r;

        dbus_message_iter_init(reply, &it);
        dbus_message_iter_recurse(&it, &rows);
        for (unsigned n = 0; n < LIST_SESSIONS_MAX &&
                             dbus_message_iter_get_arg_type(&rows) == DBUS_TYPE_STRUCT; n++) {
                DBusMessageIter row;
                const char *sid = NULL, *user = NULL;

                dbus_message_iter_recurse(&rows, &row);
                dbus_message_iter_get_basic(&row, &sid);
                dbus_message_iter_next(&row);
                dbus_message_iter_get_basic(&row, &user);
                if (streq(sid, session_id)) {
                        char *copy;

                        if (!*user || !arg_valid(user, LKP_ID_MAX))
                                return bad_reply(e, "The sign-in service sent an unusable user name.");
                        copy = strdup(user);
                        if (!copy)
                                return -ENOMEM;
                        *ret_user = copy;
                        return 0;
                }
                dbus_message_iter_next(&rows);
        }
        return error_set(e, -EIO, BROKER_NOT_FOUND, "No such session.");
}

/* logind (org.freedesktop.login1), asked for the owner of a session id. */
int lkp_logind_session_uid(const struct options *o, const char *session_id, uid_t *ret_uid,
                           struct lkp_broker_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL, *get = NULL,
                                                   *value = NULL;
        const char *path = NULL;
        DBusMessageIter it, v, user;
        dbus_uint32_t uid;
        int r;

        if (!arg_valid(session_id, LKP_ID_MAX))
                return error_set(e, -EIO, DBUS_ERROR_INVALID_ARGS, "The session id is not usable.");
        m = dbus_message_new_method_call(LOGIND_BUS_NAME, "/org/freedesktop/login1",
                                         LOGIND_BUS_NAME ".Manager", "GetSession");
        if (!m)
                return -ENOMEM;
        r = append(m, session_id, NULL, false);
        if (r < 0)
                return r;
        r = call(o, m, "o", &reply, e);
        if (r < 0)
                return r;
        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_OBJECT_PATH, &path, DBUS_TYPE_INVALID))
                return bad_reply(e, "logind sent an unreadable answer.");

        get = dbus_message_new_method_call(LOGIND_BUS_NAME, path, DBUS_INTERFACE_PROPERTIES, "Get");
        if (!get)
                return -ENOMEM;
        r = append(get, LOGIND_BUS_NAME ".Session", "User", false);
        if (r < 0)
                return r;
        r = call(o, get, "v", &value, e);
        if (r < 0)
                return r;
        /* User is (uo): the uid and the user's object */
        dbus_message_iter_init(value, &it);
        dbus_message_iter_recurse(&it, &v);
        if (dbus_message_iter_get_arg_type(&v) != DBUS_TYPE_STRUCT)
                return bad_reply(e, "logind sent a User of the wrong type.");
        dbus_message_iter_recurse(&v, &user);
        if (dbus_message_iter_get_arg_type(&user) != DBUS_TYPE_UINT32)
                return bad_reply(e, "logind sent a User of the wrong type.");
        dbus_message_iter_get_basic(&user, &uid);
        *ret_uid = (uid_t)uid;
        return 0;
}
