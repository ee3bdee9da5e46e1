/* SPDX-License-Identifier: MIT */
#include "pam_module/logind.h"

#include <errno.h>
#include <stdio.h>

#include "base/cleanup_dbus.h"
#include "pam_module/pam_errors.h"

#define LOGIND_BUS_NAME "org.freedesktop.login1"

static int error_set(struct lk_client_error *e, int r, const char *name, const char *message)
{
        snprintf(e->name, sizeof(e->name), "%s", name);
        snprintf(e->message, sizeof(e->message), "%s", message);
        return r;
}

int lkp_logind_session_uid(int timeout_ms, const char *session_id, uid_t *ret_uid,
                           struct lk_client_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL, *get = NULL,
                                                   *value = NULL;
        const char *iface = LOGIND_BUS_NAME ".Session", *prop = "User", *path = NULL;
        DBusMessageIter it, v, user;
        dbus_uint32_t uid;
        int r;

        if (!lk_reply_string_valid(session_id, LK_ARG_ID_MAX))
                return error_set(e, -EINVAL, DBUS_ERROR_INVALID_ARGS, "The session id is not usable.");
        m = dbus_message_new_method_call(LOGIND_BUS_NAME, "/org/freedesktop/login1",
                                         LOGIND_BUS_NAME ".Manager", "GetSession");
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &session_id, DBUS_TYPE_INVALID))
                return -ENOMEM;
        r = lk_client_call(NULL, timeout_ms, m, "o", &reply, e);
        if (r < 0)
                return r;
        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_OBJECT_PATH, &path, DBUS_TYPE_INVALID))
                return error_set(e, -EBADMSG, LKP_ERROR_BAD_REPLY, "logind sent an unreadable answer.");

        get = dbus_message_new_method_call(LOGIND_BUS_NAME, path, DBUS_INTERFACE_PROPERTIES, "Get");
        if (!get || !dbus_message_append_args(get, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING,
                                              &prop, DBUS_TYPE_INVALID))
                return -ENOMEM;
        r = lk_client_call(NULL, timeout_ms, get, "v", &value, e);
        if (r < 0)
                return r;
        /* User is (uo): the uid and the user's object */
        dbus_message_iter_init(value, &it);
        dbus_message_iter_recurse(&it, &v);
        if (dbus_message_iter_get_arg_type(&v) != DBUS_TYPE_STRUCT)
                return error_set(e, -EBADMSG, LKP_ERROR_BAD_REPLY, "logind sent a User of the wrong type.");
        dbus_message_iter_recurse(&v, &user);
        if (dbus_message_iter_get_arg_type(&user) != DBUS_TYPE_UINT32)
                return error_set(e, -EBADMSG, LKP_ERROR_BAD_REPLY, "logind sent a User of the wrong type.");
        dbus_message_iter_get_basic(&user, &uid);
        *ret_uid = (uid_t)uid;
        return 0;
}
