/* SPDX-License-Identifier: MIT */
/*
 * Sessions: the tokens of one login session, from OpenSession until
 * CloseSession, kept in memory and on disk (session_store.c). GetToken refreshes when
 * little time is left; one refresh per session at a time, however many
 * callers wait on it.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/budget.h"
#include "broker/idp.h"
#include "broker/loop.h"
#include "broker/session_store.h"
#include "broker/token_cache.h"
#include "oidc/config.h"
#include "oidc/error.h"
#include "oidc/provider.h"
#include "oidc/token.h"

struct lk_session;
/* Callers waiting on one session's refresh; more are refused. */
#define LK_SESSION_WAITERS_MAX 256
/* Open sessions per uid (the login's user, whoever opened them); more are refused. */
#define LK_SESSIONS_PER_UID_MAX 1024
/* GetToken's min_valid above this counts as this much (seconds). */
#define LK_MIN_VALID_MAX 86400
/*
 * Seconds after a refresh of a session (whatever its outcome) before the next: meanwhile
 * GetToken answers the current token while it is valid, else the last refresh's error.
 */
#define LK_REFRESH_INTERVAL_MIN 30

/* A GetToken decided: r == 0 with the session's (fresh) tokens, or r < 0 and e. */
typedef void (*lk_token_fn)(void *userdata, struct lk_session *s, int r,
                            const struct lk_error *e);

struct lk_token_waiter {
        lk_token_fn fn;
        void *userdata;
        uint32_t min_valid; /* what it asked: it asks again after a narrower token's refresh */
};

/* A session was "opened", "refreshed", "expired" or "closed" (SessionChanged). */
typedef void (*lk_session_changed_fn)(void *userdata, const struct lk_session *s,
                                      const char *event);

/* Every session; what they need from outside, given by whoever makes it (manager.c, tests). */
struct lk_sessions {
        struct lk_session *list;   /* newest first */
        struct lk_session **table; /* by id, chained through hnext */
        size_t buckets;            /* a power of two, or 0 before the first */
        size_t n;
        struct lk_session *closed; /* closed while a refresh was under way */
        unsigned busy;             /* refreshes and revocations under way */
        unsigned ahead_busy;       /* of those, background refreshes (refresh_ahead.c) */
        const struct lk_clock *clock;
        const struct lk_config *config; /* refresh_margin, revoke_on_close, [users] */
        uid_t uid_min;
        struct lk_idp idp;
        struct lk_budget *budget;       /* token-endpoint requests per uid */
        struct lk_session_store *store; /* NULL: in memory only */
        lk_session_changed_fn changed;  /* may be NULL */
        void *userdata;
};

struct lk_session {
        struct lk_session *next;
        struct lk_session *hnext; /* the next in its bucket of the table */
        struct lk_sessions *owner;
        char *id;
        char *user;
        uid_t uid;         /* the owner */
        int64_t opened_at; /* seconds since the epoch */
        bool expired;      /* the provider refused the refresh token: log in again */
        bool closed;       /* closed while refreshing: the refresh callback frees it */
        bool refreshing;
        int64_t refreshed_at;             /* seconds since the epoch of the last refresh, or 0 */
        struct lk_error *refresh_error;   /* how it failed, when it did */
        /* The background refresh (refresh_ahead.c): its jitter, drawn per token (for the
         * expires_at it was drawn for), its wait (budget, a failed start), and the refreshes
         * failed in a row (the backoff). ahead: the refresh under way is the background's. */
        int64_t ahead_jitter_for;
        unsigned ahead_jitter;
        int64_t ahead_not_before;
        unsigned ahead_failures;
        bool ahead;
        struct lk_tokens tokens;
        json_t *claims; /* the verified id_token claims */
        /* GetToken's answer for these tokens, built once and copied per call (broker_dbus.c):
         * appending its three arguments cost more than the rest of the call. Dropped with
         * lk_session_tokens_changed() whenever the tokens change. */
        struct DBusMessage *token_reply;
        struct lk_token_waiter *waiters;
        size_t n_waiters;
        /* Tokens for narrower scopes and other audiences (token_cache.h). One request with the
         * refresh token at a time, for them and for the session's own tokens alike (a provider
         * that rotates refresh tokens would refuse the second): refreshing is true for either,
         * narrowing names the entry while one of theirs is under way. */
        struct lk_token_cache narrowed;
        struct lk_scoped_token *narrowing;
};

/*
 * The session of that id, or NULL. While the sessions of the last run are still being
 * read (session_store.c), one not read yet is read from its file now.
 */
struct lk_session *lk_session_find(struct lk_sessions *ss, const char *id);
/* The same among the sessions in memory only. */
struct lk_session *lk_session_find_loaded(struct lk_sessions *ss, const char *id);
/* The session uid opened last, or NULL. Only once every session is read (lk_sessions_loading). */
struct lk_session *lk_session_latest(struct lk_sessions *ss, uid_t uid);

/*
 * 0 when a session of uid may take that id: none has it, or one of the same uid (su inside a
 * session, or a session whose close never came), which the new one replaces. A session of
 * another uid is never replaced or touched, whoever asks (root included): the id may come
 * from an environment the user wrote. TooManyRequests when uid has LK_SESSIONS_PER_UID_MAX.
 */
int lk_session_may_open(struct lk_sessions *ss, const char *id, uid_t uid, struct lk_error *e);

/*
 * Makes the session from a login's grant (taken over, also on failure), saves it, announces
 * it. The caller checked lk_session_may_open().
 */
int lk_session_open(struct lk_sessions *ss, const char *id, const char *user, uid_t uid,
                    struct lk_grant *grant, struct lk_error *e);

/* true when GetToken with min_valid must refresh first: inside refresh_margin, or with
 * refresh_ahead (the background refreshes then) only when the token has expired or has less
 * than min_valid left. */
bool lk_session_needs_refresh(struct lk_sessions *ss, const struct lk_session *s,
                              uint32_t min_valid);

/*
 * Sends the refresh of s (not under way, not expired, with a refresh token), already charged
 * to the budget of s->uid, which this gives back when the refresh cannot start. ahead: the
 * background's (refresh_ahead.c), counted in ss->ahead_busy. Waiters are answered when it ends.
 */
int lk_session_refresh_begin(struct lk_sessions *ss, struct lk_session *s, bool ahead,
                             struct lk_error *e);

/*
 * 0 when s->tokens can be given now; LK_SESSION_LATER when fn will be
 * called once a refresh ends; or an error (TokenExpired, ...).
 */
#define LK_SESSION_LATER 1
int lk_session_get_token(struct lk_sessions *ss, struct lk_session *s, uint32_t min_valid,
                         lk_token_fn fn, void *userdata, struct lk_error *e);

/*
 * GetToken with option scope (space-separated, a subset of the session's granted scopes) or
 * audience (either may be NULL, not both): a token of its own for that pair, fetched with a
 * refresh request carrying them and cached in s->narrowed. 0 with *ret (valid until the
 * next event processing), LK_SESSION_LATER when fn will be called, or an error:
 * InvalidArgument naming a scope outside the grant, or when there is no refresh token.
 */
int lk_session_get_token_for(struct lk_sessions *ss, struct lk_session *s, const char *scope,
                             const char *audience, uint32_t min_valid, lk_scoped_fn fn,
                             void *userdata, const struct lk_tokens **ret, struct lk_error *e);

/* Erases it from memory and disk, revokes it where configured, announces it. */
void lk_session_close(struct lk_sessions *ss, struct lk_session *s);

/* Takes over a session (read from disk, or made by a test). */
void lk_session_adopt(struct lk_sessions *ss, struct lk_session *s);
/* Starts reading the sessions of the last run from the store (lk_store_load_some reads them). */
int lk_sessions_load_begin(struct lk_sessions *ss, struct lk_error *e);
/* Reads them all now. */
int lk_sessions_load_all(struct lk_sessions *ss, struct lk_error *e);
/* true while sessions of the last run are still being read. */
bool lk_sessions_loading(const struct lk_sessions *ss);
void lk_session_free(struct lk_session *s);
/* The tokens changed (refreshed, cleared): forgets the prepared GetToken answer. */
void lk_session_tokens_changed(struct lk_session *s);
void lk_sessions_free_all(struct lk_sessions *ss);
