/* SPDX-License-Identifier: MIT */
/*
 * SessionChanged for any main loop. The signals come on a connection of
 * their own, so that a method call on the handle never swallows them into
 * libdbus's queue, where no readable descriptor would announce them.
 *
 * A match rule only chooses which broadcasts the bus routes to us: a signal
 * sent to our unique name reaches us from anyone, whatever it claims to be.
 * So a SessionChanged counts only when it was broadcast (no destination) by
 * the connection that owns the broker's name now, which we track with
 * GetNameOwner and then NameOwnerChanged (only the bus itself can send as
 * org.freedesktop.DBus).
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "lib/internal.h"

#define MATCH_RULE                                                                       \
        "type='signal',sender='" LK_BUS_NAME "',path='" LK_BUS_PATH "',interface='" \
        LK_BUS_INTERFACE "',member='" LK_BUS_SIGNAL_SESSION_CHANGED "'"
#define OWNER_MATCH_RULE                                                                 \
        "type='signal',sender='" DBUS_SERVICE_DBUS "',path='" DBUS_PATH_DBUS           \
        "',interface='" DBUS_INTERFACE_DBUS "',member='NameOwnerChanged',arg0='"          \
        LK_BUS_NAME "'"

/* Reading rounds per latchkey_dispatch(): bounds the time one call spends when signals
 * keep coming; the descriptor stays readable for the next round of the caller's loop. */
#define DISPATCH_ROUNDS 64

/* Sets the broker's unique name (NULL or "": nobody owns the name); false when out of memory,
 * leaving no owner, so that nothing is believed. */
static bool set_owner(struct latchkey *lk, const char *owner)
{
        free(lk->broker_owner);
        lk->broker_owner = NULL;
        if (isempty(owner))
                return true;
        lk->broker_owner = strdup(owner);
        return lk->broker_owner != NULL;
}

/* NameOwnerChanged first, then GetNameOwner: a change between the two is queued, not missed. */
static int subscribe(struct latchkey *lk)
{
        DBusError err = DBUS_ERROR_INIT;
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL, *reply = NULL;
        const char *name = LK_BUS_NAME, *owner = NULL;

        dbus_bus_add_match(lk->watch, OWNER_MATCH_RULE, &err);
        if (!dbus_error_is_set(&err))
                dbus_bus_add_match(lk->watch, MATCH_RULE, &err);
        if (dbus_error_is_set(&err))
                return lkl_error_from_dbus(lk, &err);

        m = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS,
                                         "GetNameOwner");
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID))
                return lkl_error(lk, LATCHKEY_ERROR_NO_MEMORY, "out of memory");
        reply = dbus_connection_send_with_reply_and_block(lk->watch, m, LATCHKEY_TIMEOUT_MS, &err);
        if (!reply) {
                /* Not running yet (activation starts it): its NameOwnerChanged will come. */
                if (dbus_error_has_name(&err, DBUS_ERROR_NAME_HAS_NO_OWNER)) {
                        dbus_error_free(&err);
                        set_owner(lk, NULL);
                        return 0;
                }
                return lkl_error_from_dbus(lk, &err);
        }
        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &owner, DBUS_TYPE_INVALID))
                return lkl_error(lk, LATCHKEY_ERROR_BAD_REPLY,
                                 "the bus answered GetNameOwner with no name");
        if (!set_owner(lk, owner))
                return lkl_error(lk, LATCHKEY_ERROR_NO_MEMORY, "out of memory");
        return 0;
}

int latchkey_watch_fd(struct latchkey *lk)
{
        int fd = -1, r;

        if (!lk)
                return LATCHKEY_ERROR_INVALID_ARGUMENT;
        if (lk->watch && !dbus_connection_get_is_connected(lk->watch))
                lkl_disconnect(&lk->watch);
        if (!lk->watch) {
                r = lkl_connect(lk, &lk->watch);
                if (r < 0)
                        return r;
                r = subscribe(lk);
                if (r < 0) {
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

/* Follows the broker's name from one owner to the next; false when out of memory. */
static bool track_owner(struct latchkey *lk, DBusMessage *m)
{
        const char *name, *old_owner, *new_owner;

        if (!dbus_message_is_signal(m, DBUS_INTERFACE_DBUS, "NameOwnerChanged") ||
            !dbus_message_has_sender(m, DBUS_SERVICE_DBUS) ||
            dbus_message_get_destination(m) ||
            !dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING,
                                   &old_owner, DBUS_TYPE_STRING, &new_owner, DBUS_TYPE_INVALID) ||
            !streq(name, LK_BUS_NAME))
                return true;
        return set_owner(lk, new_owner);
}

/* Calls back for one message when it is a well-formed SessionChanged from the broker. */
static bool deliver(struct latchkey *lk, DBusMessage *m, latchkey_session_changed_fn callback,
                    void *userdata)
{
        const char *id, *event;

        if (!dbus_message_is_signal(m, LK_BUS_INTERFACE, LK_BUS_SIGNAL_SESSION_CHANGED) ||
            dbus_message_get_destination(m) || !lk->broker_owner ||
            !dbus_message_has_sender(m, lk->broker_owner) ||
            !dbus_message_has_path(m, LK_BUS_PATH) ||
            !dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &event,
                                   DBUS_TYPE_INVALID))
                return false;
        if (!lk_reply_string_valid(id, LATCHKEY_ID_MAX) || !lk_reply_word_valid(event, 32))
                return false;
        callback(userdata, id, event);
        return true;
}

int latchkey_dispatch(struct latchkey *lk, latchkey_session_changed_fn callback, void *userdata)
{
        bool gone = false, oom = false;
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
                        else if (!track_owner(lk, m))
                                oom = true;
                        else if (deliver(lk, m, callback, userdata) && n < INT32_MAX)
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
        if (oom) {
                /* Without the owner nothing can be believed: start over with a new watch. */
                lkl_disconnect(&lk->watch);
                return lkl_error(lk, LATCHKEY_ERROR_NO_MEMORY,
                                 "out of memory following the broker's name; the descriptor "
                                 "is closed, call latchkey_watch_fd() again");
        }
        lk->message[0] = '\0';
        return n;
}
