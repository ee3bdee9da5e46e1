/* SPDX-License-Identifier: MIT */
/*
 * lk-get-token: what `latchkeyctl token` will do, for test-sshd until the CLI
 * exists. Runs inside an ssh session as the logged-in user: GetToken on the
 * system bus for the session in $LATCHKEY_SESSION, and prints the access token
 * on stdout (the token never goes to argv or stderr). Exit 0, or 1 with one
 * line on stderr.
 */
#include <dbus/dbus.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbus/broker_wire.h"

#define SESSION_ID_MAX 256
#define TIMEOUT_MS 30000

static int fail(const char *what, const char *detail)
{
        fprintf(stderr, "lk-get-token: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
        return 1;
}

/* a{sv} with session_id; false when out of memory. */
static bool append_options(DBusMessage *m, const char *session_id)
{
        DBusMessageIter it, dict, entry, v;
        const char *key = "session_id";

        dbus_message_iter_init_append(m, &it);
        return dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict) &&
               dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
               dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) &&
               dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "s", &v) &&
               dbus_message_iter_append_basic(&v, DBUS_TYPE_STRING, &session_id) &&
               dbus_message_iter_close_container(&entry, &v) &&
               dbus_message_iter_close_container(&dict, &entry) &&
               dbus_message_iter_close_container(&it, &dict);
}

int main(int argc, char *argv[])
{
        const char *session_id = getenv("LATCHKEY_SESSION");
        DBusError err = DBUS_ERROR_INIT;
        DBusConnection *c;
        DBusMessage *m, *reply;
        const char *token = NULL, *type = NULL;
        dbus_int64_t expires_at = 0;
        int r = 1;

        if (argc != 1)
                return fail("usage: lk-get-token (reads LATCHKEY_SESSION)", NULL);
        if (!session_id || !*session_id)
                return fail("LATCHKEY_SESSION is not set", NULL);
        if (strnlen(session_id, SESSION_ID_MAX + 1) > SESSION_ID_MAX)
                return fail("LATCHKEY_SESSION is too long", NULL);

        c = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        if (!c) {
                r = fail("cannot connect to the system bus", err.message);
                dbus_error_free(&err);
                return r;
        }
        dbus_connection_set_exit_on_disconnect(c, FALSE);
        m = dbus_message_new_method_call(LK_BUS_NAME, LK_BUS_PATH, LK_BUS_INTERFACE,
                                         LK_BUS_METHOD_GET_TOKEN);
        if (!m || !append_options(m, session_id)) {
                r = fail("out of memory", NULL);
                goto out;
        }
        reply = dbus_connection_send_with_reply_and_block(c, m, TIMEOUT_MS, &err);
        dbus_message_unref(m);
        if (!reply) {
                /* The broker's messages name what went wrong and never carry a secret. */
                fprintf(stderr, "lk-get-token: GetToken failed: %s: %s\n", err.name, err.message);
                dbus_error_free(&err);
                goto out;
        }
        if (!dbus_message_get_args(reply, &err, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64,
                                   &expires_at, DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID)) {
                r = fail("GetToken answered with the wrong signature", err.message);
                dbus_error_free(&err);
        } else if (!*token) {
                r = fail("GetToken answered with an empty token", NULL);
        } else {
                printf("%s\n", token);
                r = fflush(stdout) == 0 ? 0 : fail("cannot write the token", NULL);
        }
        dbus_message_unref(reply);
out:
        dbus_connection_close(c);
        dbus_connection_unref(c);
        return r;
}
