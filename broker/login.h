/* SPDX-License-Identifier: MIT */
/*
 * Logins: from BeginLogin until OpenSession. A login is bound to the uid that
 * began it and to one local user; it holds the state, nonce and PKCE verifier
 * until CompleteLogin, then the grant until OpenSession. It expires after
 * login_timeout. It ends sooner when the provider refuses its answer (or the
 * id_token or user that came back is refused), after LK_LOGIN_ANSWERS_MAX
 * answers, when its caller leaves the bus (end_with_caller, while not yet
 * complete), or, complete, when newer completed logins push it out (the caps
 * in this file). An ended login is remembered (without its secrets) for a
 * while, so that a late caller hears LoginExpired and why, not NotFound.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/accounts.h"
#include "broker/idp.h"
#include "broker/loop.h"
#include "oidc/authorize.h"
#include "oidc/config.h"
#include "oidc/error.h"
#include "oidc/provider.h"

/*
 * Login limits (SPEC §4; docs/SECURITY.md). A login counts against the user it is for when root
 * began it (sshd, login and greeters begin everyone's), else against the uid that began it.
 * Pending logins (waiting for an answer, or exchanging its code) are refused beyond the caps;
 * completed ones (waiting for OpenSession) never block a new login: beyond their caps the
 * oldest is dropped. Ended logins are remembered, the oldest forgotten first.
 */
#define LK_LOGINS_PER_USER_MAX 16      /* pending, per user */
#define LK_LOGINS_MAX 1024             /* pending, host-wide */
#define LK_LOGINS_DONE_PER_USER_MAX 16 /* completed, per user */
#define LK_LOGINS_DONE_MAX 1024        /* completed, host-wide */
#define LK_LOGINS_ENDED_MAX 1024       /* ended, remembered to say LoginExpired */
#define LK_LOGIN_ANSWERS_MAX 3         /* CompleteLogin answers per login (the module's tries) */
#define LK_LOGIN_WAITERS_MAX 4         /* WaitLogin calls waiting on one login */

struct lk_login;

/*
 * A login has finished: done (user set, r 0), or ended for good (r < 0, e says why: the
 * provider's refusal, the id_token, the user, the device code expired, cancelled, ...).
 * Called once per login, whichever way it finishes (CompleteLogin's exchange, a device
 * poll's tokens, the callback listener's redirect, expiry, cancel), before its secrets go.
 */
typedef void (*lk_login_finished_fn)(void *userdata, struct lk_login *l, const char *user, int r,
                                     const struct lk_error *e);

/* Every login; what they need from outside, given by whoever makes it (manager.c, tests). */
struct lk_logins {
        struct lk_login *list; /* newest first */
        unsigned n;            /* including ended ones still remembered */
        unsigned exchanging;   /* code exchanges under way */
        const struct lk_clock *clock;
        const struct lk_config *config; /* login_timeout, [users], the client's settings */
        uid_t uid_min;                  /* UID_MIN of login.defs: below it, system accounts */
        struct lk_idp idp;
        struct lk_accounts *accounts;   /* provider accounts ([accounts]); NULL: none */
        lk_login_finished_fn finished; /* may be NULL */
        void *userdata;
};

enum lk_login_state {
        LK_LOGIN_STARTING,   /* device flow: the device authorization under way */
        LK_LOGIN_PENDING,    /* waiting for the person's answer (device: for the approval) */
        LK_LOGIN_EXCHANGING, /* code exchange under way */
        LK_LOGIN_DONE,       /* grant waiting for OpenSession */
        LK_LOGIN_EXPIRED,    /* secrets gone; remembered to say so */
};

/* BeginLogin of the device flow: the login once the provider gave its codes, else r < 0. */
typedef void (*lk_login_started_fn)(void *userdata, struct lk_login *l, int r,
                                    const struct lk_error *e);

/* Called once when CompleteLogin is decided: user on success, else r < 0 and e. */
typedef void (*lk_login_done_fn)(void *userdata, const char *user, int r, const struct lk_error *e);

struct lk_login {
        struct lk_login *next;
        struct lk_logins *owner;
        char *id;
        uid_t owner_uid; /* who began it */
        char *user;      /* the local user it is for */
        uid_t user_uid;
        char *caller;       /* the unique bus name that began it, with end_with_caller */
        enum lk_login_state state;
        bool cancelled;     /* cancelled while exchanging: freed when the exchange ends */
        unsigned answers;   /* CompleteLogin answers taken */
        const char *ended;  /* LK_LOGIN_EXPIRED: why, when before its time ("ended after ...") */
        int64_t expires_ms; /* CLOCK_MONOTONIC; LK_LOGIN_EXPIRED: when it ended */
        struct lk_authorization *auth; /* until the code is exchanged */
        struct lk_grant *grant;        /* LK_LOGIN_DONE */
        lk_login_done_fn done;
        void *done_userdata;
        lk_login_started_fn started;   /* LK_LOGIN_STARTING: BeginLogin's, with done_userdata */
        enum lk_flow flow;             /* LK_FLOW_CODE or LK_FLOW_DEVICE */
        struct lk_device_auth *device; /* LK_FLOW_DEVICE: the codes, where, the interval now */
        bool reported;                 /* finished() was called */
        /* Whoever waits for it to finish (the D-Bus face's WaitLogin calls), answered from
         * finished(); login.c only keeps the room. */
        void *waiting[LK_LOGIN_WAITERS_MAX];
        unsigned n_waiting;
};

/*
 * Verified id_token claims against the local user they must stand for: [users]
 * mapping and policy (lk_usermap), the same name, and the root and system account
 * rule. Used after the code exchange and after every refresh with a new id_token.
 */
int lk_login_check_claims(const struct lk_config *config, uid_t uid_min, const json_t *claims,
                          const char *user, uid_t uid, struct lk_error *e);

/* The uid a login counts against: the user it is for when root began it, else its owner. */
uid_t lk_login_account(const struct lk_login *l);

/* 0 when a new login of owner_uid for user_uid fits the pending caps, else TooManyRequests. */
int lk_login_admit(struct lk_logins *ls, uid_t owner_uid, uid_t user_uid, struct lk_error *e);

/*
 * Makes a login for user (uid user_uid) begun by owner_uid, with its authorization URL.
 * caller (may be NULL): the unique bus name whose leaving ends it while it is not complete.
 */
int lk_login_begin(struct lk_logins *ls, uid_t owner_uid, const char *user, uid_t user_uid,
                   const char *caller, struct lk_login **ret, struct lk_error *e);

/*
 * The device flow (RFC 8628): makes a login, as lk_login_begin(), whose start is the device
 * authorization request; started is called later, exactly once, with the login once the
 * provider gave its codes (ret_login NULL and r < 0 when it did not). Its lifetime is the
 * shorter of login_timeout and the device code's.
 */
int lk_login_begin_device(struct lk_logins *ls, uid_t owner_uid, const char *user,
                          uid_t user_uid, const char *caller, lk_login_started_fn started,
                          void *userdata, struct lk_error *e);

/* What the person is shown: the authorization URL, or the device verification address. */
const char *lk_login_url(const struct lk_login *l);
/* Seconds until it expires (0 once it has). */
unsigned lk_login_seconds_left(const struct lk_logins *ls, const struct lk_login *l);

/* The login of that id, expired or not; NULL when there is none. */
struct lk_login *lk_login_find(struct lk_logins *ls, const char *id);

/*
 * The login whose authorization carries that state (the callback listener's lookup), NULL when
 * none: every login still holding its authorization is compared, in constant time
 * (lk_secret_equal), so the time taken says nothing about which state is near one.
 */
struct lk_login *lk_login_find_by_state(struct lk_logins *ls, const char *state);

/* 0 when the login waits for its answer, else LoginExpired / TooManyRequests / InvalidArgument. */
int lk_login_check_pending(struct lk_logins *ls, struct lk_login *l, struct lk_error *e);

/* 0 when the login has not ended (pending, being completed or done), else LoginExpired. */
int lk_login_check_live(struct lk_logins *ls, struct lk_login *l, struct lk_error *e);

/*
 * The one way a login gets its outcome, whatever brought it (the code exchange of
 * CompleteLogin or of the callback listener, a device poll): grant (verified id_token
 * claims, taken over) or err. With a grant, the claims are checked against the login's user
 * ([users], the same name, system accounts) and the login is done; refused, or with an error
 * the provider gave as its judgement, the login ends; an error that judged nothing
 * (provider unreachable) leaves it pending for another answer, within LK_LOGIN_ANSWERS_MAX.
 * finished() hears of either end. Returns 0 when done, else the error, in e.
 */
int lk_login_finish(struct lk_login *l, struct lk_grant *grant, const struct lk_error *err,
                    struct lk_error *e);

/*
 * Checks the answer and starts the code exchange; done (may be NULL: the callback listener
 * needs no reply) is called later, exactly once.
 */
int lk_login_complete(struct lk_logins *ls, struct lk_login *l, const char *answer,
                      lk_login_done_fn done, void *userdata, struct lk_error *e);

/* 0 when the login holds a grant ready for a session, else LoginExpired / InvalidArgument. */
int lk_login_check_done(struct lk_logins *ls, struct lk_login *l, struct lk_error *e);

/* Hands the grant over; the login, used, is then forgotten (lk_login_forget). */
struct lk_grant *lk_login_take_grant(struct lk_login *l);
void lk_login_forget(struct lk_logins *ls, struct lk_login *l);

void lk_login_cancel(struct lk_logins *ls, struct lk_login *l);

/* l has just completed: drops the oldest completed login beyond the caps (its user's first). */
void lk_logins_bound_done(struct lk_logins *ls, struct lk_login *l);

/* Forgets the oldest ended logins beyond LK_LOGINS_ENDED_MAX. */
void lk_logins_bound_ended(struct lk_logins *ls);

/* That unique bus name left: its end_with_caller logins that are not complete end. */
void lk_logins_caller_left(struct lk_logins *ls, const char *name);

/* Expires what is due and forgets what ended long ago; returns the logins not yet ended. */
unsigned lk_logins_sweep(struct lk_logins *ls);

void lk_logins_free_all(struct lk_logins *ls);
