/* SPDX-License-Identifier: MIT */
/*
 * liblatchkey's insides: the handle and its connection (bus.c); the calls themselves and the
 * checks on their replies are the client stubs' (client/broker_client.h), shared with the PAM
 * module. Nothing here is exported (latchkey.sym).
 */
#pragma once

#include <dbus/dbus.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/cleanup_dbus.h"
#include "base/util.h"
#include "client/broker_client.h"
#include "lib/latchkey.h"

_Static_assert(LATCHKEY_ID_MAX == LK_ARG_ID_MAX, "latchkey.h's cap is the interface's");
_Static_assert(LATCHKEY_ANSWER_MAX == LK_ARG_ANSWER_MAX, "latchkey.h's cap is the interface's");
_Static_assert(LATCHKEY_MESSAGE_MAX == LK_CLIENT_MESSAGE_MAX, "one message size");

struct latchkey {
        DBusConnection *bus;   /* method calls; NULL until the first call, or after a disconnect */
        DBusConnection *watch; /* SessionChanged only (latchkey_watch_fd) */
        char *broker_owner;    /* the unique name owning LK_BUS_NAME, as watch last heard */
        char message[LATCHKEY_MESSAGE_MAX];
};

/* Records a message of our own (printf-style, no secrets) and returns error. */
int lkl_error(struct latchkey *lk, int error, const char *fmt, ...) _printf_(3, 4);
/* Maps a D-Bus error (the broker's or the bus's) to enum latchkey_error, keeps its message
 * cleaned for a person, frees err and returns the code. */
int lkl_error_from_dbus(struct latchkey *lk, DBusError *err);

/* A private connection to the system bus (lk_client_connect), as a latchkey error. */
int lkl_connect(struct latchkey *lk, DBusConnection **ret);
/* Drops a connection that has gone away (NULL is fine). */
void lkl_disconnect(DBusConnection **c);

/* The handle's connection for method calls, connecting first where needed. */
int lkl_bus(struct latchkey *lk, DBusConnection **ret);
/* A client stub's result r as a latchkey error (0 clears the message); drops the connection
 * when the bus went away. */
int lkl_done(struct latchkey *lk, int r, const struct lk_client_error *e);
