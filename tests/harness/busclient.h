/* SPDX-License-Identifier: MIT */
/*
 * A small blocking D-Bus client for the broker, part of lk-harness and shared
 * by the integration tests. Nothing here asserts (children and lkh_run_as()
 * functions use it too): calls return NULL on success or the D-Bus error name
 * (malloc'd; BC_BAD_REPLY when the answer had the wrong shape), and print
 * nothing. Output parameters are written only on success.
 *
 * libdbus reads DBUS_SYSTEM_BUS_ADDRESS once per process, and each test group
 * has its own bus: connect to the group's h->bus_address with bc_open().
 */
#pragma once

#include <dbus/dbus.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "dbus/broker_wire.h"
#include "tests/harness/harness.h"

/* The wire names, from the interface XML (dbus/broker_wire.h), under the tests' short names. */
#define BC_NAME LK_BUS_NAME
#define BC_PATH LK_BUS_PATH
#define BC_IFACE LK_BUS_INTERFACE
#define BC_ERR(x) LK_BUS_ERROR_PREFIX x
/* What the calls below return when the broker's answer has the wrong arguments. */
#define BC_BAD_REPLY "bad-reply"

/* Whether calls made by bc_new() may start the broker through the bus (default true). */
extern bool bc_autostart;

/* A private connection to that bus address, registered; NULL on failure. */
DBusConnection *bc_open(const char *address);
/* The same; on failure the D-Bus error's message in *ret_message (when not NULL). */
DBusConnection *bc_open_err(const char *address, char **ret_message);
/*
 * bc_open_err() with the effective ids uid/gid while connecting: the bus takes the peer's
 * credentials at connect time, so the connection is uid's from then on. Needs root, and glibc
 * changes the ids of every thread for that moment: call it while no other thread depends on
 * them. NULL with *ret_message set (when not NULL) on failure, the ids back as they were.
 */
DBusConnection *bc_open_as(const char *address, uid_t uid, gid_t gid, char **ret_message);
void bc_close(DBusConnection *c);

/* A method call to the broker's interface. */
DBusMessage *bc_new(const char *method);
/* org.freedesktop.DBus.Peer.Ping to the broker: the bus's own round trip, beside a method's. */
DBusMessage *bc_new_ping(void);
/* Appends an a{sv} of session_id (when not NULL) and min_valid (when not 0). */
void bc_append_options(DBusMessage *m, const char *session_id, uint32_t min_valid);

struct bc_reply {
        DBusMessage *msg; /* the method return, NULL on error */
        char *error;      /* error name, NULL on success */
        char *message;    /* error message */
};
/* Sends m (taking it over) and waits for the answer; 0 on a method return, -1 otherwise. */
int bc_call(DBusConnection *c, DBusMessage *m, int timeout_ms, struct bc_reply *r);
void bc_reply_clear(struct bc_reply *r);
/* The error name of a failed call (taken out of r, which is cleared), with its message in
 * *ret_message when ret_message is not NULL. */
char *bc_take_error(struct bc_reply *r, char **ret_message);

char *bc_begin_login(DBusConnection *c, const char *user, char **ret_id, char **ret_url);
/* The same, with the option end_with_caller (b) set when asked. */
char *bc_begin_login_with(DBusConnection *c, const char *user, bool end_with_caller,
                          char **ret_id, char **ret_url);
/* A method with one (a2 == NULL) or two string arguments; ret_out takes a string answer. */
char *bc_call_s(DBusConnection *c, const char *method, const char *a1, const char *a2,
                char **ret_out, char **ret_message);
char *bc_get_token(DBusConnection *c, const char *session_id, uint32_t min_valid,
                   char **ret_token, int64_t *ret_expires, char **ret_message);
/* The same, with the answer's token_type in *ret_type (when not NULL). */
char *bc_get_token_typed(DBusConnection *c, const char *session_id, uint32_t min_valid,
                         char **ret_token, int64_t *ret_expires, char **ret_type,
                         char **ret_message);
/* GetToken with the options scope and audience too (each left out when NULL). */
char *bc_get_token_for(DBusConnection *c, const char *session_id, const char *scope,
                       const char *audience, uint32_t min_valid, char **ret_token,
                       int64_t *ret_expires, char **ret_message);
/* The GetToken call itself, for sending several at once. */
DBusMessage *bc_get_token_message(const char *session_id, const char *scope,
                                  const char *audience, uint32_t min_valid);
char *bc_get_claims(DBusConnection *c, const char *session_id, char **ret_json,
                    char **ret_message);
/* Whether e (a call's result) says the broker's answer had the wrong shape. */
static inline bool bc_bad_reply(const char *e)
{
        return e && strcmp(e, BC_BAD_REPLY) == 0;
}

/* The session ids the caller sees (a NULL-terminated list), or NULL on error. */
char **bc_list_sessions(DBusConnection *c);
/* The session ids in a ListSessions reply (a NULL-terminated list). */
char **bc_session_ids(DBusMessage *reply);

/* BeginLogin, the browser, CompleteLogin: the login id, or NULL (what failed on stderr). */
char *bc_login(struct lkh *h, DBusConnection *c, const char *user);
/* bc_login() then OpenSession: 0, or -1. */
int bc_open_session(struct lkh *h, DBusConnection *c, const char *user, const char *session_id);

/* String lists (NULL-terminated, malloc'd), for sets of session ids. */
bool bc_strv_has(char **l, const char *s);
void bc_strv_add(char ***l, const char *s);
void bc_strv_del(char ***l, const char *s);
