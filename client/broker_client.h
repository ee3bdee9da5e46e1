/* SPDX-License-Identifier: MIT */
/*
 * The client stubs of org.latchkey.Broker1 (SPEC §4), shared by pam_latchkey.so and
 * liblatchkey (as OpenSSH's monitor_wrap.c: one function per method, with the method's own
 * arguments). Each checks its arguments, calls, and checks the reply by the one rule set of
 * client/reply_check.h before it hands anything out.
 *
 * Connections are the caller's: c is a connection of lk_client_connect(), or NULL for a
 * private connection made for this call alone and closed before it returns (the PAM module,
 * which keeps nothing between PAM calls). timeout_ms bounds the wait for the reply.
 *
 * Each returns 0, or with e filled in (the D-Bus error name, and its message escaped for a
 * person by lk_text_escape):
 *   -ENOMEM   out of memory                        (e: DBUS_ERROR_NO_MEMORY)
 *   -EINVAL   an argument breaks the rules; not sent (e: DBUS_ERROR_INVALID_ARGS)
 *   -EBADMSG  the reply is not what SPEC §4 says     (e: LK_CLIENT_ERROR_BAD_REPLY)
 *   -EIO      the broker or the bus answered with an error (e: its name and message)
 * Output parameters are written only on success.
 */
#pragma once

#include <dbus/dbus.h>
#include <stdbool.h>
#include <stdint.h>

#include "client/reply_check.h"
#include "dbus/broker_wire.h"

#define LK_CLIENT_ERROR_BAD_REPLY "org.latchkey.client.Error.BadReply"
#define LK_CLIENT_MESSAGE_MAX 512     /* a one-line reason for a person, NUL included */
#define LK_CLIENT_SESSIONS_MAX 100000 /* rows read from one ListSessions reply */

struct lk_client_error {
        char name[128];                      /* a D-Bus error name, printable ASCII */
        char message[LK_CLIENT_MESSAGE_MAX]; /* for a person; may be empty */
};

/* One row of ListSessions. */
struct lk_client_session {
        char *session_id;
        char *user;
        uint32_t uid;
        int64_t opened_at;
        int64_t expires_at;
};

/*
 * A private connection to the system bus, registered, exit-on-disconnect off. The address is
 * DBUS_SYSTEM_BUS_ADDRESS, read per connection (so a process, a test, may move between buses),
 * ignored when setuid as libdbus does.
 */
int lk_client_connect(DBusConnection **ret, struct lk_client_error *e);
/* Closes and releases c; NULL is fine. */
void lk_client_disconnect(DBusConnection *c);
static inline void lk_client_disconnectp(DBusConnection **c)
{
        lk_client_disconnect(*c);
}

/*
 * Sends m on c (or a connection of its own, when c is NULL) and waits for a reply of the given
 * signature; for calls to other services (logind) too.
 */
int lk_client_call(DBusConnection *c, int timeout_ms, DBusMessage *m, const char *signature,
                   DBusMessage **ret_reply, struct lk_client_error *e);

/* BeginLogin(user, {end_with_caller}) → a login id (a word) and an http(s) address. */
int lk_client_begin_login(DBusConnection *c, int timeout_ms, const char *user,
                          bool end_with_caller, char **ret_login_id, char **ret_url,
                          struct lk_client_error *e);
/* CompleteLogin(login_id, answer) → the local user the provider vouched for. */
int lk_client_complete_login(DBusConnection *c, int timeout_ms, const char *login_id,
                             const char *answer, char **ret_user, struct lk_client_error *e);
int lk_client_cancel_login(DBusConnection *c, int timeout_ms, const char *login_id,
                           struct lk_client_error *e);

/* GetLoginInfo: what to show for a login (the flow, the address, the device user code). */
#define LK_CLIENT_USER_CODE_MAX 64 /* bytes of a device flow's user code shown */
struct lk_client_login_info {
        bool device;         /* flow "device" (else "code") */
        bool done;           /* state "done" (else "pending") */
        bool callback;       /* the broker's callback listener receives the redirect */
        char *url;           /* an http(s) address, a word */
        char *user_code;     /* device flow only: a word; else NULL */
        uint32_t interval;   /* device flow: seconds between the broker's polls */
        uint32_t seconds_left;
};
void lk_client_login_info_clear(struct lk_client_login_info *i);
int lk_client_get_login_info(DBusConnection *c, int timeout_ms, const char *login_id,
                             struct lk_client_login_info *ret, struct lk_client_error *e);
/*
 * WaitLogin(login_id) → the user, once the login completes by itself (device approval,
 * callback listener) or by a CompleteLogin; timeout_ms should cover the login's seconds_left.
 */
int lk_client_wait_login(DBusConnection *c, int timeout_ms, const char *login_id,
                         char **ret_user, struct lk_client_error *e);
int lk_client_open_session(DBusConnection *c, int timeout_ms, const char *login_id,
                           const char *session_id, struct lk_client_error *e);
int lk_client_close_session(DBusConnection *c, int timeout_ms, const char *session_id,
                            struct lk_client_error *e);
/* ForgetAccount(user): root only; the provider account leaves the accounts cache. */
int lk_client_forget_account(DBusConnection *c, int timeout_ms, const char *user,
                             struct lk_client_error *e);
/*
 * GetToken({session_id, min_valid}): session_id NULL and min_valid 0 are left out. *ret_token
 * is a secret (free with lk_secret_free); the reply's copy is wiped. Any ret_ may be NULL.
 */
int lk_client_get_token(DBusConnection *c, int timeout_ms, const char *session_id,
                        uint32_t min_valid, char **ret_token, int64_t *ret_expires_at,
                        char **ret_type, struct lk_client_error *e);
/* The same with the options scope and audience (each left out when NULL or empty). */
int lk_client_get_token_for(DBusConnection *c, int timeout_ms, const char *session_id,
                            const char *scope, const char *audience, uint32_t min_valid,
                            char **ret_token, int64_t *ret_expires_at, char **ret_type,
                            struct lk_client_error *e);
int lk_client_get_claims(DBusConnection *c, int timeout_ms, const char *session_id,
                         char **ret_json, struct lk_client_error *e);
/* ListSessions → *ret_n rows (*ret NULL when none); free with lk_client_free_sessions. */
int lk_client_list_sessions(DBusConnection *c, int timeout_ms, struct lk_client_session **ret,
                            size_t *ret_n, struct lk_client_error *e);
void lk_client_free_sessions(struct lk_client_session *sessions, size_t n);
/* Get(Version): the broker's version, a word. */
int lk_client_get_version(DBusConnection *c, int timeout_ms, char **ret_version,
                          struct lk_client_error *e);

/*
 * The offline PIN. SetPin(login_id, pin) after an online sign-in; ChangePin({session_id}, pin)
 * in a session (pin "" removes it); CheckPin(user, pin, {offline}) where offline means "instead
 * of a web sign-in" (the broker then checks that the provider cannot be reached);
 * GetPinState(user, {probe}).
 */
struct lk_client_pin_state {
        bool enabled, pin;
        char state[32];    /* off, none, ready, expired, disabled, locked, spent */
        char provider[32]; /* "reachable", "unreachable", or "" when not probed */
        int64_t until, locked_until;
        uint32_t failures;
};
int lk_client_set_pin(DBusConnection *c, int timeout_ms, const char *login_id, const char *pin,
                      struct lk_client_error *e);
int lk_client_change_pin(DBusConnection *c, int timeout_ms, const char *session_id,
                         const char *pin, struct lk_client_error *e);
int lk_client_check_pin(DBusConnection *c, int timeout_ms, const char *user, const char *pin,
                        bool offline, struct lk_client_error *e);
int lk_client_get_pin_state(DBusConnection *c, int timeout_ms, const char *user, bool probe,
                            struct lk_client_pin_state *ret, struct lk_client_error *e);
int lk_client_parse_pin_state(DBusMessage *reply, struct lk_client_pin_state *ret,
                              struct lk_client_error *e);

/*
 * The reply checks on their own, for the unit tests and the fuzz target: each takes a method
 * return of the method's out signature and fills what the matching call hands out.
 */
int lk_client_parse_begin_login(DBusMessage *reply, char **ret_login_id, char **ret_url,
                                struct lk_client_error *e);
int lk_client_parse_complete_login(DBusMessage *reply, char **ret_user,
                                   struct lk_client_error *e);
int lk_client_parse_login_info(DBusMessage *reply, struct lk_client_login_info *ret,
                               struct lk_client_error *e);
int lk_client_parse_get_token(DBusMessage *reply, char **ret_token, int64_t *ret_expires_at,
                              char **ret_type, struct lk_client_error *e);
int lk_client_parse_get_claims(DBusMessage *reply, char **ret_json, struct lk_client_error *e);
int lk_client_parse_list_sessions(DBusMessage *reply, struct lk_client_session **ret,
                                  size_t *ret_n, struct lk_client_error *e);
