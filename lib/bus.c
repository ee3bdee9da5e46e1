/* SPDX-License-Identifier: MIT */
/* The bus glue: the handle's connection, and the one table from error names to codes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "lib/internal.h"

static const struct {
        const char *name;
        int error;
} error_table[] = {
        { LK_BUS_ERROR_ACCESS_DENIED, LATCHKEY_ERROR_ACCESS_DENIED },
        { LK_BUS_ERROR_INVALID_ARGUMENT, LATCHKEY_ERROR_INVALID_ARGUMENT },
        { LK_BUS_ERROR_NOT_FOUND, LATCHKEY_ERROR_NOT_FOUND },
        { LK_BUS_ERROR_LOGIN_EXPIRED, LATCHKEY_ERROR_LOGIN_EXPIRED },
        { LK_BUS_ERROR_INVALID_GRANT, LATCHKEY_ERROR_INVALID_GRANT },
        { LK_BUS_ERROR_INVALID_ID_TOKEN, LATCHKEY_ERROR_INVALID_ID_TOKEN },
        { LK_BUS_ERROR_USER_MISMATCH, LATCHKEY_ERROR_USER_MISMATCH },
        { LK_BUS_ERROR_NOT_ALLOWED, LATCHKEY_ERROR_NOT_ALLOWED },
        { LK_BUS_ERROR_PROVIDER_UNAVAILABLE, LATCHKEY_ERROR_PROVIDER_UNAVAILABLE },
        { LK_BUS_ERROR_TOKEN_EXPIRED, LATCHKEY_ERROR_TOKEN_EXPIRED },
        { LK_BUS_ERROR_TOO_MANY_REQUESTS, LATCHKEY_ERROR_TOO_MANY_REQUESTS },
        { LK_BUS_ERROR_ACCOUNT_DISABLED, LATCHKEY_ERROR_ACCOUNT_DISABLED },
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
        [-LATCHKEY_ERROR_ACCOUNT_DISABLED] = "AccountDisabled",
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

/* A D-Bus error's name and message (the broker's, the bus's) as enum latchkey_error. */
static int error_named(struct latchkey *lk, const char *name, const char *message)
{
        int error = LATCHKEY_ERROR_FAILED;

        for (size_t i = 0; i < ELEMENTSOF(error_table); i++)
                if (streq(name, error_table[i].name)) {
                        error = error_table[i].error;
                        break;
                }
        message = isempty(message) ? "no reason given" : message;
        if (error == LATCHKEY_ERROR_NO_BROKER)
                return lkl_error(lk, error, "cannot reach the latchkey broker: %s", message);
        if (strncmp(name, LK_BUS_ERROR_PREFIX, strlen(LK_BUS_ERROR_PREFIX)) == 0)
                return lkl_error(lk, error, "%s", message); /* the broker's own words */
        /* the bus's, or someone else's: say whose */
        return lkl_error(lk, error, "%s: %s",
                         lk_reply_word_valid(name, 255) ? name : "?", message);
}

int lkl_error_from_dbus(struct latchkey *lk, DBusError *err)
{
        int error;

        if (!dbus_error_is_set(err))
                return lkl_error(lk, LATCHKEY_ERROR_FAILED, "the D-Bus call failed for no stated reason");
        error = error_named(lk, err->name, err->message);
        dbus_error_free(err);
        return error;
}

static int error_from_client(struct latchkey *lk, int r, const struct lk_client_error *e)
{
        switch (r) {
        case 0:
                lk->message[0] = '\0';
                return 0;
        case -ENOMEM:
                return lkl_error(lk, LATCHKEY_ERROR_NO_MEMORY, "out of memory");
        case -EINVAL:
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT, "%s", e->message);
        case -EBADMSG:
                return lkl_error(lk, LATCHKEY_ERROR_BAD_REPLY, "%s", e->message);
        default:
                return error_named(lk, e->name, e->message);
        }
}

void lkl_disconnect(DBusConnection **c)
{
        lk_client_disconnect(*c);
        *c = NULL;
}

int lkl_connect(struct latchkey *lk, DBusConnection **ret)
{
        struct lk_client_error e;
        int r;

        r = lk_client_connect(ret, &e);
        if (r == -ENOMEM)
                return lkl_error(lk, LATCHKEY_ERROR_NO_MEMORY, "out of memory");
        if (r < 0)
                return lkl_error(lk, LATCHKEY_ERROR_NO_BROKER, "cannot connect to the system bus: %s",
                                 isempty(e.message) ? "no reason given" : e.message);
        return 0;
}

int lkl_bus(struct latchkey *lk, DBusConnection **ret)
{
        int r;

        if (lk->bus && !dbus_connection_get_is_connected(lk->bus))
                lkl_disconnect(&lk->bus);
        if (!lk->bus) {
                r = lkl_connect(lk, &lk->bus);
                if (r < 0)
                        return r;
        }
        *ret = lk->bus;
        return 0;
}

int lkl_done(struct latchkey *lk, int r, const struct lk_client_error *e)
{
        r = error_from_client(lk, r, e);
        /* The bus went away (restarted): connect afresh on the next call. */
        if (r < 0 && lk->bus && !dbus_connection_get_is_connected(lk->bus))
                lkl_disconnect(&lk->bus);
        return r;
}
