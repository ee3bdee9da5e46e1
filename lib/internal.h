/* SPDX-License-Identifier: MIT */
/*
 * liblatchkey's insides: the handle, the bus glue (bus.c) and the checks on
 * text crossing the bus (reply_check.c; messages for a person go through the base's
 * lk_text_escape()). Nothing here is exported (latchkey.sym).
 */
#pragma once

#include <dbus/dbus.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/cleanup_dbus.h"
#include "base/util.h"
#include "lib/latchkey.h"

#define LKL_BUS_NAME "org.latchkey.Broker1"
#define LKL_OBJECT_PATH "/org/latchkey/Broker1"
#define LKL_INTERFACE "org.latchkey.Broker1"

#define LKL_TOKEN_MAX (64 * 1024)       /* an access token from the broker */
#define LKL_CLAIMS_MAX (1024 * 1024)    /* GetClaims' JSON */
#define LKL_URL_MAX 8192                /* BeginLogin's address */
#define LKL_SESSIONS_MAX 100000         /* rows read from one ListSessions reply */

struct latchkey {
        DBusConnection *bus;   /* method calls; NULL until the first call, or after a disconnect */
        DBusConnection *watch; /* SessionChanged only (latchkey_watch_fd) */
        char *broker_owner;    /* the unique name owning LKL_BUS_NAME, as watch last heard */
        char message[LATCHKEY_MESSAGE_MAX];
};

/* Records a message of our own (printf-style, no secrets) and returns error. */
int lkl_error(struct latchkey *lk, int error, const char *fmt, ...) _printf_(3, 4);
/* Maps a D-Bus error (the broker's or the bus's) to enum latchkey_error, keeps its message
 * cleaned for a person, frees err and returns the code. */
int lkl_error_from_dbus(struct latchkey *lk, DBusError *err);

/* A private connection to the system bus, registered, exit-on-disconnect off. */
int lkl_connect(struct latchkey *lk, DBusConnection **ret);
/* Drops a connection that has gone away (NULL is fine). */
void lkl_disconnect(DBusConnection **c);

/* A method call on the broker's object; NO_MEMORY when it cannot be made. */
int lkl_new_call(struct latchkey *lk, const char *method, DBusMessage **ret);
/* Appends the a{sv} options: session_id (when not NULL) and min_valid (when not 0). */
int lkl_append_options(struct latchkey *lk, DBusMessage *m, const char *session_id,
                       unsigned min_valid);
/* Sends m and waits for the reply, connecting first where needed. An error reply becomes a
 * negative code (lkl_error_from_dbus). */
int lkl_call(struct latchkey *lk, DBusMessage *m, DBusMessage **ret_reply);

/* true when s is 1..max bytes of valid UTF-8 without NUL (what libdbus insists on) */
bool lkl_string_valid(const char *s, size_t max);
/* true when s is 1..max bytes of printable ASCII without spaces (tokens, ids, addresses) */
bool lkl_word_valid(const char *s, size_t max);
