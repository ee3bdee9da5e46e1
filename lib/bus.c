/* SPDX-License-Identifier: MIT */
/* The bus glue: connecting, calling the broker, and the one table of error names. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "lib/internal.h"

#define BROKER_ERROR "org.latchkey.Broker1.Error."

static const struct {
        const char *name;
        int error;
} error_table[] = {
        { BROKER_ERROR "AccessDenied", LATCHKEY_ERROR_ACCESS_DENIED },
        { BROKER_ERROR "InvalidArgument", LATCHKEY_ERROR_INVALID_ARGUMENT },
        { BROKER_ERROR "NotFound", LATCHKEY_ERROR_NOT_FOUND },
        { BROKER_ERROR "LoginExpired", LATCHKEY_ERROR_LOGIN_EXPIRED },
        { BROKER_ERROR "InvalidGrant", LATCHKEY_ERROR_INVALID_GRANT },
        { BROKER_ERROR "InvalidIdToken", LATCHKEY_ERROR_INVALID_ID_TOKEN },
        { BROKER_ERROR "UserMismatch", LATCHKEY_ERROR_USER_MISMATCH },
        { BROKER_ERROR "NotAllowed", LATCHKEY_ERROR_NOT_ALLOWED },
        { BROKER_ERROR "ProviderUnavailable", LATCHKEY_ERROR_PROVIDER_UNAVAILABLE },
        { BROKER_ERROR "TokenExpired", LATCHKEY_ERROR_TOKEN_EXPIRED },
        { BROKER_ERROR "TooManyRequests", LATCHKEY_ERROR_TOO_MANY_REQUESTS },
        /* The bus: the broker is not there, cannot be started, or does not answer. */
        { DBUS_ERROR_SERVICE_UNKNOWN, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_NAME_HAS_NO_OWNER, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_NO_REPLY, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_TIMEOUT, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_TIMED_OUT, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_DISCONNECTED, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_NO_SERVER, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_NO_NETWORK, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_FILE_NOT_FOUND, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_IO_ERROR, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_SPAWN_EXEC_FAILED, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_SPAWN_CHILD_EXITED, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_SPAWN_CHILD_SIGNALED, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_SPAWN_FAILED, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_SPAWN_SERVICE_INVALID, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_SPAWN_FILE_INVALID, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_SPAWN_NO_MEMORY, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_SPAWN_PERMISSIONS_INVALID, LATCHKEY_ERROR_NO_BROKER },
        { DBUS_ERROR_NO_MEMORY, LATCHKEY_ERROR_NO_MEMORY },
        { DBUS_ERROR_ACCESS_DENIED, LATCHKEY_ERROR_ACCESS_DENIED },
        { DBUS_ERROR_AUTH_FAILED, LATCHKEY_ERROR_ACCESS_DENIED },
};

static const char *const error_names[] = {
        [0] = "OK",
        [-LATCHKEY_ERROR_NO_MEMORY] = "NoMemory",
        [-LATCHKEY_ERROR_INVALID_ARGUMENT] = "InvalidArgument",
        [-LATCHKEY_ERROR_NO_BROKER] = "NoBroker",
        [-LATCHKEY_ERROR_ACCESS_DENIED] = "AccessDenied",
        [-LATCHKEY_ERROR_NOT_FOUND] = "NotFound",
        [-LATCHKEY_ERROR_LOGIN_EXPIRED] = "LoginExpired",
        [-LATCHKEY_ERROR_INVALID_GRANT] = "InvalidGrant",
        [-LATCHKEY_ERROR_INVALID_ID_TOKEN] = "InvalidIdToken",
        [-LATCHKEY_ERROR_USER_MISMATCH] = "UserMismatch",
        [-LATCHKEY_ERROR_NOT_ALLOWED] = "NotAllowed",
        [-LATCHKEY_ERROR_PROVIDER_UNAVAILABLE] = "ProviderUnavailable",
        [-LATCHKEY_ERROR_TOKEN_EXPIRED] = "TokenExpired",
        [-LATCHKEY_ERROR_TOO_MANY_REQUESTS] = "TooManyRequests",
        [-LATCHKEY_ERROR_BAD_REPLY] = "BadReply",
        [-LATCHKEY_ERROR_FAILED] = "Failed",
};

const char *latchkey_error_name(int error)
{
        if (error > 0 || (size_t)-(long)error >= ELEMENTSOF(error_names) ||
            !error_names[-error])
                return "Unknown";
        return error_names[-error];
}

int lkl_error(struct latchkey *lk, int error, const char *fmt, ...)
{
        char raw[LATCHKEY_MESSAGE_MAX];
        va_list ap;

        if (lk) {
                va_start(ap, fmt);
                vsnprintf(raw, sizeof(raw), fmt, ap);
                va_end(ap);
                lk_text_escape(raw, lk->message, sizeof(lk->message));
        }
        return error;
}

int lkl_error_from_dbus(struct latchkey *lk, DBusError *err)
{
        int error = LATCHKEY_ERROR_FAILED;
        const char *message;

        if (!dbus_error_is_set(err))
                return lkl_error(lk, error, "the D-Bus call failed for no stated reason");
        for (size_t i = 0; i < ELEMENTSOF(error_table); i++)
                if (dbus_error_has_name(err, error_table[i].name)) {
                        error = error_table[i].error;
                        break;
                }
        message = isempty(err->message) ? "no reason given" : err->message;
        if (error == LATCHKEY_ERROR_NO_BROKER)
                lkl_error(lk, error, "cannot reach the latchkey broker: %s", message);
        else if (strncmp(err->name, BROKER_ERROR, strlen(BROKER_ERROR)) == 0)
                lkl_error(lk, error, "%s", message); /* the broker's own words */
        else    /* the bus's, or someone else's: say whose */
                lkl_error(lk, error, "%s: %s", lkl_word_valid(err->name, 255) ? err->name : "?",
                          message);
        dbus_error_free(err);
        return error;
}

void lkl_disconnect(DBusConnection **c)
{
        if (*c) {
                dbus_connection_close(*c);
                dbus_connection_unref(*c);
                *c = NULL;
        }
}

int lkl_connect(struct latchkey *lk, DBusConnection **ret)
{
        DBusError err = DBUS_ERROR_INIT;
        DBusConnection *c;
        const char *address;

        /* libdbus reads DBUS_SYSTEM_BUS_ADDRESS once per process; we read it per connection,
         * so a process (a test) may move between buses. Ignored when setuid, as libdbus does. */
        address = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
        if (!isempty(address)) {
                c = dbus_connection_open_private(address, &err);
                if (c && !dbus_bus_register(c, &err))
                        lkl_disconnect(&c);
        } else
                c = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        if (!c) {
                int r;

                if (dbus_error_has_name(&err, DBUS_ERROR_NO_MEMORY))
                        return lkl_error_from_dbus(lk, &err);
                r = lkl_error(lk, LATCHKEY_ERROR_NO_BROKER, "cannot connect to the system bus: %s",
                              err.message ? err.message : "no reason given");
                dbus_error_free(&err);
                return r;
        }
        dbus_connection_set_exit_on_disconnect(c, FALSE);
        *ret = c;
        return 0;
}

int lkl_new_call(struct latchkey *lk, const char *method, DBusMessage **ret)
{
        DBusMessage *m = dbus_message_new_method_call(LKL_BUS_NAME, LKL_OBJECT_PATH, LKL_INTERFACE,
                                                      method);

        if (!m)
                return lkl_error(lk, LATCHKEY_ERROR_NO_MEMORY, "out of memory");
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

int lkl_append_options(struct latchkey *lk, DBusMessage *m, const char *session_id,
                       unsigned min_valid)
{
        DBusMessageIter it, dict;
        dbus_uint32_t mv = min_valid;

        dbus_message_iter_init_append(m, &it);
        if (!dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict))
                goto oom;
        if (session_id && !append_entry(&dict, "session_id", DBUS_TYPE_STRING, "s", &session_id))
                goto oom;
        if (min_valid && !append_entry(&dict, "min_valid", DBUS_TYPE_UINT32, "u", &mv))
                goto oom;
        if (!dbus_message_iter_close_container(&it, &dict))
                goto oom;
        return 0;
oom:
        return lkl_error(lk, LATCHKEY_ERROR_NO_MEMORY, "out of memory");
}

int lkl_call(struct latchkey *lk, DBusMessage *m, DBusMessage **ret_reply)
{
        DBusError err = DBUS_ERROR_INIT;
        DBusMessage *reply;
        int r;

        if (lk->bus && !dbus_connection_get_is_connected(lk->bus))
                lkl_disconnect(&lk->bus);
        if (!lk->bus) {
                r = lkl_connect(lk, &lk->bus);
                if (r < 0)
                        return r;
        }

        reply = dbus_connection_send_with_reply_and_block(lk->bus, m, LATCHKEY_TIMEOUT_MS, &err);
        if (!reply) {
                r = lkl_error_from_dbus(lk, &err);
                /* The bus went away (restarted): connect afresh on the next call. */
                if (!dbus_connection_get_is_connected(lk->bus))
                        lkl_disconnect(&lk->bus);
                return r;
        }
        lk->message[0] = '\0';
        *ret_reply = reply;
        return 0;
}
