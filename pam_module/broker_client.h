/* SPDX-License-Identifier: MIT */
/*
 * The module's side of org.latchkey.Broker1 (SPEC §4). Every call opens its
 * own private connection to the system bus (DBUS_SYSTEM_BUS_ADDRESS where
 * set), waits at most o->timeout seconds for the reply, and closes the
 * connection before it returns, but for BeginLogin's, which the caller
 * closes before its PAM call returns: nothing outlives the PAM call, so the
 * module keeps no state between PAM calls and leaks no descriptor into the
 * login program.
 *
 * Each function returns 0, -ENOMEM, or -EIO with e filled in: the D-Bus error
 * name (the broker's, the bus's, or LKP_ERROR_BAD_REPLY when the reply is
 * not what SPEC §4 says) and its message, sanitised for a person. Every string
 * in a reply is checked (valid, capped, printable) before it is handed out.
 */
#pragma once

#include <sys/types.h>

#include "pam_module/input_check.h"
#include "pam_module/options.h"

#define LKP_BUS_NAME "org.latchkey.Broker1"
#define LKP_OBJECT_PATH "/org/latchkey/Broker1"
#define LKP_INTERFACE "org.latchkey.Broker1"

struct lkp_broker_error {
        char name[128];                /* printable ASCII */
        char message[LKP_MESSAGE_MAX]; /* for a person; may be empty */
};

struct DBusConnection;

/*
 * BeginLogin(user, {end_with_caller: true}) → a login id (printable, ≤ LKP_ID_MAX) and an
 * http(s) address. *ret_conn is the call's connection, left open: until the login is complete
 * the broker ends it when that connection closes, so a conversation that dies (sshd's child
 * killed when the client drops) frees its login at once. Close it with lkp_conn_close() once the
 * answer is in, or given up.
 */
int lkp_begin_login(const struct options *o, const char *user, struct DBusConnection **ret_conn,
                    char **ret_login_id, char **ret_url, struct lkp_broker_error *e);
void lkp_conn_close(struct DBusConnection *c);
static inline void lkp_conn_closep(struct DBusConnection **c)
{
        lkp_conn_close(*c);
}

/* CompleteLogin(login_id, answer) → the local user name the provider vouched for. */
int lkp_complete_login(const struct options *o, const char *login_id, const char *answer,
                       char **ret_user, struct lkp_broker_error *e);

int lkp_cancel_login(const struct options *o, const char *login_id, struct lkp_broker_error *e);
int lkp_open_session(const struct options *o, const char *login_id, const char *session_id,
                     struct lkp_broker_error *e);
int lkp_close_session(const struct options *o, const char *session_id, struct lkp_broker_error *e);

/*
 * The user a session belongs to, from ListSessions. -EIO with e set to the
 * broker's NotFound error when the caller cannot see such a session.
 */
int lkp_session_user(const struct options *o, const char *session_id, char **ret_user,
                     struct lkp_broker_error *e);

/*
 * The uid logind (org.freedesktop.login1 on the same bus) gives as the owner
 * of a session id: GetSession, then the session's User property.
 */
int lkp_logind_session_uid(const struct options *o, const char *session_id, uid_t *ret_uid,
                           struct lkp_broker_error *e);
