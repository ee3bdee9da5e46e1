/* SPDX-License-Identifier: MIT */
/*
 * liblatchkey: ask latchkeyd, the latchkey broker, for the access token of
 * your login session.
 *
 *     #include <latchkey.h>
 *
 *     struct latchkey *lk;
 *     char *token;
 *     if (latchkey_open(&lk) == 0 &&
 *         latchkey_get_token(lk, NULL, 60, &token, NULL, NULL) == 0) {
 *             ... "Authorization: Bearer <token>" ...
 *             latchkey_free_secret(token);
 *     }
 *     latchkey_close(lk);
 *
 * Build with `pkg-config --cflags --libs latchkey`.
 *
 * The broker is org.latchkey.Broker1 on the system bus (DBUS_SYSTEM_BUS_ADDRESS
 * where set, read at each latchkey_open()); see its interface description,
 * org.latchkey.Broker1.xml. The broker knows who is asking from the bus, so a
 * process sees only the sessions of its own uid (root sees all).
 *
 * Errors: every function that can fail returns 0 (or a documented positive
 * value) on success and a negative enum latchkey_error on failure. Output
 * parameters are written only on success. After a failure,
 * latchkey_last_error_message() tells a person what went wrong: the broker's
 * own message where it sent one (control characters, bidirectional controls
 * and invalid UTF-8 shown escaped, as \n, \x1b or \u202e; at most
 * LATCHKEY_MESSAGE_MAX bytes), else ours. It never holds a
 * token or other secret.
 *
 * Every call that talks to the broker blocks until the broker answers, for at
 * most LATCHKEY_TIMEOUT_MS (a token refresh at the provider can take seconds).
 *
 * Threads: a handle is not thread-safe; use it from one thread at a time.
 * Separate handles are independent (each has its own private connection to the
 * bus), so threads may each open their own.
 *
 * Signals: none of these functions installs signal handlers, and a lost bus
 * connection never exits the process (libdbus's exit-on-disconnect is off).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LATCHKEY_TIMEOUT_MS 60000  /* the longest a call waits for the broker */
#define LATCHKEY_MESSAGE_MAX 512   /* latchkey_last_error_message(), NUL included */
#define LATCHKEY_ID_MAX 256        /* session ids, login ids and user names, in bytes */
#define LATCHKEY_ANSWER_MAX 8192   /* an answer to latchkey_complete_login(), in bytes */

/*
 * Negative return values. The values are part of the ABI and never change;
 * new ones may be added. Most mirror the broker's
 * org.latchkey.Broker1.Error.* names (SPEC §4).
 */
enum latchkey_error {
        LATCHKEY_OK = 0,
        LATCHKEY_ERROR_NO_MEMORY = -1,
        LATCHKEY_ERROR_INVALID_ARGUMENT = -2,  /* ours (NULL, long, not UTF-8), .InvalidArgument */
        LATCHKEY_ERROR_NO_BROKER = -3,         /* no bus, no broker, broker gone or not answering */
        LATCHKEY_ERROR_ACCESS_DENIED = -4,     /* .AccessDenied, or the bus's policy refused */
        LATCHKEY_ERROR_NOT_FOUND = -5,         /* .NotFound: no such session (or not yours) */
        LATCHKEY_ERROR_LOGIN_EXPIRED = -6,     /* .LoginExpired: the login took too long */
        LATCHKEY_ERROR_INVALID_GRANT = -7,     /* .InvalidGrant: the provider refused the code */
        LATCHKEY_ERROR_INVALID_ID_TOKEN = -8,  /* .InvalidIdToken: the message says which check */
        LATCHKEY_ERROR_USER_MISMATCH = -9,     /* .UserMismatch: signed in as someone else */
        LATCHKEY_ERROR_NOT_ALLOWED = -10,      /* .NotAllowed: the user may not log in here */
        LATCHKEY_ERROR_PROVIDER_UNAVAILABLE = -11, /* .ProviderUnavailable: network, TLS, 5xx */
        LATCHKEY_ERROR_TOKEN_EXPIRED = -12,    /* .TokenExpired: cannot refresh; log in again */
        LATCHKEY_ERROR_TOO_MANY_REQUESTS = -13, /* .TooManyRequests */
        LATCHKEY_ERROR_BAD_REPLY = -14,        /* the broker's answer is not what SPEC §4 says */
        LATCHKEY_ERROR_FAILED = -15,           /* any other D-Bus error */
        LATCHKEY_ERROR_ACCOUNT_DISABLED = -16, /* .AccountDisabled: the provider refused the
                                                * account's refresh; no offline PIN */
};

/*
 * A stable name for an error code ("NotFound", "NoBroker", ...; "OK" for 0,
 * "Unknown" for anything else). The string is static.
 */
const char *latchkey_error_name(int error);

struct latchkey;

/*
 * Makes a handle. It connects to the system bus on its first call (a private
 * connection of its own), and again on a later call when the bus went away;
 * the bus starts the broker on demand. So this fails only for lack of memory.
 * Errors: NO_MEMORY, INVALID_ARGUMENT (ret is NULL).
 */
int latchkey_open(struct latchkey **ret);

/* Closes the connection and frees the handle. NULL is fine. */
void latchkey_close(struct latchkey *lk);

/*
 * What went wrong in the last failed call on lk, for a person (one line, no
 * secrets); "" when nothing failed yet. Valid until the next call on lk.
 */
const char *latchkey_last_error_message(const struct latchkey *lk);

/* Wipes a secret string (a token) with explicit_bzero, then frees it. NULL is fine. */
void latchkey_free_secret(char *secret);

/*
 * Which session a call is about, where a function takes session_id: the
 * given id; or, when NULL, $LATCHKEY_SESSION (set by pam_latchkey in login
 * sessions) where set and not empty; else the broker's default, the caller's
 * most recently opened session.
 */

/*
 * GetToken: a valid access token of the session, refreshed by the broker first
 * when fewer than min_valid seconds (0: the broker's refresh_margin) are left.
 * *ret_token: free it with latchkey_free_secret(). *ret_expires_at: seconds
 * since the epoch (0 when the provider gave no lifetime). *ret_type: the
 * token type, e.g. "Bearer"; free() it. Any of the three may be NULL.
 * Errors: INVALID_ARGUMENT, NO_MEMORY, NO_BROKER, NOT_FOUND (no such session),
 * TOKEN_EXPIRED (the refresh token was refused: log in again),
 * PROVIDER_UNAVAILABLE, ACCESS_DENIED, BAD_REPLY, FAILED.
 */
int latchkey_get_token(struct latchkey *lk, const char *session_id, unsigned min_valid,
                       char **ret_token, int64_t *ret_expires_at, char **ret_type);

/*
 * GetToken with options scope and audience (symbol version LATCHKEY_0.2): a token of its own for them,
 * which the broker fetches from the provider with the session's refresh token and keeps
 * for later callers. scope: space-separated, every one among the scopes the session was
 * granted (NULL or "": the grant's); audience: the API the token is for, sent to the
 * provider as RFC 8707 resource or as audience, as the broker's configuration says (NULL or
 * "": none). Each at most LATCHKEY_ID_MAX bytes. The token is never wider than asked.
 * Errors: as latchkey_get_token(), and INVALID_ARGUMENT naming a scope outside the grant
 * (or when the session has no refresh token), INVALID_GRANT when the provider refused the
 * scope or audience.
 */
int latchkey_get_token_for(struct latchkey *lk, const char *session_id, const char *scope,
                           const char *audience, unsigned min_valid, char **ret_token,
                           int64_t *ret_expires_at, char **ret_type);

/*
 * GetClaims: the verified id_token claims of the session as a JSON object
 * (text, at most 1 MiB); free() it.
 * Errors: as latchkey_get_token().
 */
int latchkey_get_claims(struct latchkey *lk, const char *session_id, char **ret_json);

struct latchkey_session {
        char *session_id;
        char *user;          /* the local user name */
        uint32_t uid;
        int64_t opened_at;   /* seconds since the epoch */
        int64_t expires_at;  /* of the access token; 0 when unknown */
};

/*
 * ListSessions: the sessions the caller may see (root: all; others: their
 * own), in the broker's order. *ret is an array of *ret_n entries (NULL when
 * there are none); free it with latchkey_free_sessions().
 * Errors: NO_MEMORY, NO_BROKER, ACCESS_DENIED, BAD_REPLY, FAILED.
 */
int latchkey_list_sessions(struct latchkey *lk, struct latchkey_session **ret, size_t *ret_n);
void latchkey_free_sessions(struct latchkey_session *sessions, size_t n);

/*
 * CloseSession: erases the session's tokens at the broker (and revokes them
 * at the provider where configured). session_id as above, but without a
 * broker default: with neither an id nor $LATCHKEY_SESSION, INVALID_ARGUMENT.
 * Errors: INVALID_ARGUMENT, NO_MEMORY, NO_BROKER, NOT_FOUND, ACCESS_DENIED,
 * BAD_REPLY, FAILED.
 */
int latchkey_close_session(struct latchkey *lk, const char *session_id);

/*
 * The broker's Version property ("0.1.0"); free() it.
 * Errors: NO_MEMORY, NO_BROKER, BAD_REPLY, FAILED.
 */
int latchkey_broker_version(struct latchkey *lk, char **ret_version);

/*
 * Watching SessionChanged(session_id, event), event being "opened",
 * "refreshed", "expired" or "closed", for every session the bus lets us see
 * (the signal carries only the id; ask the broker about it).
 *
 * latchkey_watch_fd() subscribes (the first time; a second connection of the
 * handle, used for nothing else) and returns a file descriptor that becomes
 * readable when signals may be waiting: watch it for POLLIN in any main loop
 * (level-triggered), and call latchkey_dispatch() when it is. Call
 * latchkey_dispatch() once right after latchkey_watch_fd() too, before the
 * first wait: a signal may already be queued. The descriptor belongs to lk;
 * do not read it or close it.
 * Errors: NO_MEMORY, NO_BROKER (no bus), ACCESS_DENIED, FAILED.
 *
 * latchkey_dispatch() reads what has arrived without blocking and calls
 * callback once per SessionChanged signal, in order, then returns how many
 * it delivered (0 or more). The strings are valid during the callback only.
 * The callback may call any latchkey function on lk except latchkey_close()
 * and latchkey_dispatch(). Signals whose arguments are malformed, too long or
 * not UTF-8 are dropped, and so is any signal that the current owner of
 * org.latchkey.Broker1 did not broadcast (one sent to this connection alone,
 * or by another connection, is a forgery).
 * Errors: INVALID_ARGUMENT (latchkey_watch_fd() was not called), NO_BROKER
 * (the bus connection is gone and its descriptor closed: stop watching it at
 * once; a later latchkey_watch_fd() connects again and gives a new one),
 * NO_MEMORY (likewise closed).
 */
typedef void (*latchkey_session_changed_fn)(void *userdata, const char *session_id,
                                            const char *event);
int latchkey_watch_fd(struct latchkey *lk);
int latchkey_dispatch(struct latchkey *lk, latchkey_session_changed_fn callback, void *userdata);

/*
 * The login flow without PAM (SPEC §2), for latchkeyctl login, greeters and
 * screen lockers re-authenticating their own user. Most applications never
 * need these.
 *
 * latchkey_begin_login(): BeginLogin(user). *ret_login_id (free()) names the
 * pending login; *ret_url (free()) is the address to open in a browser; it
 * carries the login's state and nonce, so show it only to the person logging
 * in. Errors: INVALID_ARGUMENT, NO_MEMORY, NO_BROKER, ACCESS_DENIED (only root
 * or user's own uid may), NOT_FOUND (no such local user), TOO_MANY_REQUESTS,
 * PROVIDER_UNAVAILABLE, BAD_REPLY, FAILED.
 *
 * latchkey_complete_login(): CompleteLogin(login_id, answer), where answer is
 * what the person pasted: the code, or the whole address the browser was sent
 * back to (a secret: wipe it yourself afterwards). *ret_user (may be NULL;
 * free()) is the local user the provider vouched for. Errors: as BeginLogin,
 * and LOGIN_EXPIRED, INVALID_GRANT, INVALID_ID_TOKEN, USER_MISMATCH,
 * NOT_ALLOWED.
 *
 * latchkey_cancel_login(): CancelLogin(login_id).
 *
 * latchkey_open_session(): OpenSession(login_id, session_id): the completed
 * login's tokens now belong to session_id ([A-Za-z0-9._-], at most 64
 * characters, not starting with '.'), and are kept across broker restarts
 * until latchkey_close_session().
 */
int latchkey_begin_login(struct latchkey *lk, const char *user, char **ret_login_id,
                         char **ret_url);
int latchkey_complete_login(struct latchkey *lk, const char *login_id, const char *answer,
                            char **ret_user);
int latchkey_cancel_login(struct latchkey *lk, const char *login_id);
int latchkey_open_session(struct latchkey *lk, const char *login_id, const char *session_id);

/*
 * Signing in again inside a session (issue 21): when a session's refresh token died
 * (SessionChanged "expired", GetToken TOKEN_EXPIRED), the same session id takes the tokens of
 * a new login: latchkey_begin_login() and latchkey_complete_login() for the session's user,
 * then latchkey_renew_session(), which hands them to session_id (NULL: $LATCHKEY_SESSION), a
 * session the caller owns (OpenSession on an id the same uid holds replaces it; no new PAM
 * session, and the applications' next GetToken works). Errors: as latchkey_open_session(), and
 * NOT_FOUND when session_id is not one of the caller's sessions.
 */
int latchkey_renew_session(struct latchkey *lk, const char *login_id, const char *session_id);

/*
 * The offline PIN (latchkey.conf(5) [offline]). latchkey_change_pin(): sets the PIN of the
 * user of session_id (NULL: $LATCHKEY_SESSION, else the caller's newest session), or removes
 * it with pin "". The session must be live (TOKEN_EXPIRED otherwise: sign in again first).
 * Errors: INVALID_ARGUMENT (too short, too long), NOT_ALLOWED ([offline] pin is off),
 * TOKEN_EXPIRED, NOT_FOUND, TOO_MANY_REQUESTS, NO_BROKER, NO_MEMORY, FAILED.
 *
 * latchkey_get_pin_state(): the state of user's PIN, without any secret; with probe, the
 * broker also says whether the provider can be reached (when the PIN could be used).
 */
struct latchkey_pin_state {
        int enabled;       /* [offline] pin is on */
        int pin;           /* one is set */
        char state[32];    /* off, none, ready, expired, disabled, locked, spent */
        char provider[32]; /* reachable, unreachable, or "" when not asked */
        int64_t until;     /* the PIN works until (seconds since the epoch), or 0 */
        int64_t locked_until;
        unsigned failures;
};
int latchkey_change_pin(struct latchkey *lk, const char *session_id, const char *pin);
int latchkey_get_pin_state(struct latchkey *lk, const char *user, int probe,
                           struct latchkey_pin_state *ret);

/*
 * Finishing a login without an answer (since 0.2): the device flow (RFC 8628, [provider] flow
 * in latchkey.conf(5)), where the broker polls the provider itself, and the code flow where
 * the broker's callback listener receives the redirect.
 *
 * latchkey_login_info(): GetLoginInfo(login_id): what to show the person. *ret (free with
 * latchkey_login_info_free()) says the flow (device: 1 for the device flow, then user_code is
 * the code the person confirms at url; 0 for the code flow), the address (url: the
 * authorization address, or the device flow's verification address with the code in it),
 * interval (device flow: seconds between the broker's polls), seconds_left (until the login
 * expires), callback (1 when the broker itself receives the browser's redirect: nothing to
 * paste) and done (1 once signed in). The library may add fields at the end: never allocate
 * this struct yourself. Errors: INVALID_ARGUMENT, NO_MEMORY, NO_BROKER, NOT_FOUND (no such
 * login, or not yours), LOGIN_EXPIRED, BAD_REPLY, FAILED.
 *
 * latchkey_wait_login(): WaitLogin(login_id): returns once the login completes by itself (the
 * approval at the provider, the callback) or by a latchkey_complete_login() elsewhere, waiting
 * at most timeout_s seconds (1..86400; give seconds_left). *ret_user (may be NULL; free()) as
 * for latchkey_complete_login(). Errors: as latchkey_complete_login(), and ACCESS_DENIED
 * (the sign-in was refused at the provider), LOGIN_EXPIRED (the device code or the login
 * expired, or the login was cancelled), TOO_MANY_REQUESTS (4 already wait on it), NO_BROKER
 * when timeout_s passed.
 */
struct latchkey_login_info {
        int device;
        int done;
        int callback;
        char *url;
        char *user_code; /* NULL for the code flow */
        unsigned interval;
        unsigned seconds_left;
};
int latchkey_login_info(struct latchkey *lk, const char *login_id,
                        struct latchkey_login_info **ret);
void latchkey_login_info_free(struct latchkey_login_info *info);
int latchkey_wait_login(struct latchkey *lk, const char *login_id, unsigned timeout_s,
                        char **ret_user);

#ifdef __cplusplus
}
#endif
