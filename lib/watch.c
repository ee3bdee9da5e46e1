/* SPDX-License-Identifier: MIT */
/*
 * SessionChanged for any main loop. The signals come on a connection of
 * their own, so that a method call on the handle never swallows them into
 * libdbus's queue, where no readable descriptor would announce them.
 */
#include <poll.h>

#include "internal.h"

#define MATCH_RULE                                                                       \
        "type='signal',sender='" LKL_BUS_NAME "',path='" LKL_OBJECT_PATH "',interface='" \
        LKL_INTERFACE "',member='SessionChanged'"

/* Reading rounds per latchkey_dispatch(): bounds the time one call spends when signals
 * keep coming; the descriptor stays readable for the next round of the caller's loop. */
#define DISPATCH_ROUNDS 64

int latchkey_watch_fd(struct latchkey *lk)
{
        DBusError err = DBUS_ERROR_INIT;
        int fd = -1, r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        if (lk->watch && !dbus_connection_get_is_connected(lk->watch))
                lkl_disconnect(&lk->watch);
        if (!lk->watch) {
                r = lkl_connect(lk, &lk->watch);
                if (r < 0)
                        return r;
                dbus_bus_add_match(lk->watch, MATCH_RULE, &err);
                if (dbus_error_is_set(&err)) {
                        r = lkl_error_from_dbus(lk, &err);
                        lkl_disconnect(&lk->watch);
                        /* The bus answered: it is there, it refused. */
                        return r == LATCHKEY_ERROR_NO_BROKER ? LATCHKEY_ERROR_FAILED : r;
                }
        }
        if (!dbus_connection_get_unix_fd(lk->watch, &fd) || fd < 0) {
                lkl_disconnect(&lk->watch);
                return lkl_error(lk, LATCHKEY_ERROR_FAILED,
                                 "the bus connection has no file descriptor to watch");
        }
        lk->message[0] = '\0';
        return fd;
}

/* Calls back for one message when it is a well-formed SessionChanged. */
static bool deliver(DBusMessage *m, latchkey_session_changed_fn callback, void *userdata)
{
        const char *id, *event;

        if (!dbus_message_is_signal(m, LKL_INTERFACE, "SessionChanged") ||
            !dbus_message_has_path(m, LKL_OBJECT_PATH) ||
            !dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &event,
                                   DBUS_TYPE_INVALID))
                return false;
        if (!lkl_string_valid(id, LATCHKEY_ID_MAX) || !lkl_word_valid(event, 32))
                return false;
        callback(userdata, id, event);
        return true;
}

int latchkey_dispatch(struct latchkey *lk, latchkey_session_changed_fn callback, void *userdata)
{
        bool gone = false;
        int n = 0;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        if (!lk->watch || !callback)
                return lkl_error(lk, LATCHKEY_ERROR_INVALID_ARGUMENT,
                                 "latchkey_dispatch() without latchkey_watch_fd() or a callback");

        for (int round = 0; round < DISPATCH_ROUNDS && !gone; round++) {
                DBusMessage *m;
                struct pollfd p = { .events = POLLIN };

                /* Reads what the socket holds now, without waiting; FALSE once disconnected. */
                if (!dbus_connection_read_write(lk->watch, 0))
                        gone = true;
                while ((m = dbus_connection_pop_message(lk->watch))) {
                        if (dbus_message_is_signal(m, DBUS_INTERFACE_LOCAL, "Disconnected"))
                                gone = true;
                        else if (deliver(m, callback, userdata) && n < INT32_MAX)
                                n++;
                        dbus_message_unref(m);
                }
                if (!dbus_connection_get_is_connected(lk->watch) ||
                    !dbus_connection_get_unix_fd(lk->watch, &p.fd))
                        gone = true;
                else if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR)))
                        break;
        }
        if (gone) {
                lkl_disconnect(&lk->watch);
                return lkl_error(lk, LATCHKEY_ERROR_NO_BROKER,
                                 "the connection to the system bus was lost");
        }
        lk->message[0] = '\0';
        return n;
}
