/* SPDX-License-Identifier: MIT */
/*
 * The offline PIN ([offline], [accounts] max_offline_days): one record per account in
 * STATE_DIR/offline/UID (pin_record.h), what may be checked when, and the counting of wrong
 * PINs. The Argon2id work runs on pin_worker.c's threads; this file decides, on the loop.
 *
 * A PIN is accepted only while: [offline] pin is on; the account has one; the provider has
 * not refused the account's refresh since its last online sign-in (disabled); that sign-in is
 * at most max_offline_days old; no wait is running (lockout_after wrong PINs, then a wait of
 * lockout_delay that doubles with each further one, at most LK_PIN_DELAY_MAX); fewer than
 * max_failures wrong PINs. An online sign-in (lk_offline_note_online) clears the count, the
 * wait and disabled.
 *
 * The records are sealed at rest (issue 22 item 4) as session files are: sealed_file.h, under
 * the session keys (session_key.h), with "offline/UID" as the name bound into the seal. A
 * record read in cleartext (as before) or under an older key is sealed again under the current
 * one; lk_offline_init() does so for every record, and counts in n_older those whose rewrite
 * failed, so that the older keys are kept for them (lk_store_hold_older_keys). A record under
 * a key the broker does not have is left in place, unread, and logged.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/loop.h"
#include "broker/pin_record.h"
#include "broker/pin_worker.h"
#include "broker/session_key.h"
#include "oidc/config.h"
#include "oidc/error.h"

#define LK_PIN_DELAY_MAX 86400 /* seconds: the longest wait after wrong PINs */

struct lk_offline {
        const struct lk_config *config;
        const struct lk_clock *clock;
        const struct lk_session_keys *keys; /* the session store's: keys[0] seals */
        char *dir; /* STATE_DIR/offline */
        unsigned n_older; /* records still under an older key after lk_offline_init */
        struct lk_pin_worker *worker;
};

int lk_offline_init(struct lk_offline *o, const struct lk_config *c, const struct lk_clock *clock,
                    const char *state_dir, const struct lk_session_keys *keys,
                    struct lk_loop *loop, struct lk_error *e);
void lk_offline_done(struct lk_offline *o);

/* The account's record: 0, -LK_ERR_NOT_FOUND when it has none, or another error. */
int lk_offline_load(struct lk_offline *o, uid_t uid, struct lk_pin_record *ret,
                    struct lk_error *e);
int lk_offline_save(struct lk_offline *o, const struct lk_pin_record *r, struct lk_error *e);

/* An online sign-in of uid as user succeeded (CompleteLogin): a record that exists is renewed. */
void lk_offline_note_online(struct lk_offline *o, uid_t uid, const char *user);
/* The provider refused uid's refresh: its record (if any) loses offline access. */
void lk_offline_note_refused(struct lk_offline *o, uid_t uid);

/* What GetPinState reports. */
struct lk_offline_state {
        bool enabled;         /* [offline] pin */
        bool pin;             /* a PIN is set */
        const char *state;    /* "off", "none", "ready", "expired", "disabled", "locked", "spent" */
        int64_t until;        /* the PIN works until (seconds since the epoch), or 0 */
        int64_t locked_until; /* no check before, or 0 */
        unsigned failures;
};
void lk_offline_state(struct lk_offline *o, uid_t uid, struct lk_offline_state *ret);

/*
 * 0 when a check of uid's PIN may run now (*ret its record), else the reason: NotAllowed (off,
 * or no PIN), AccountDisabled, TokenExpired (the sign-in is too old, or max_failures spent),
 * TooManyRequests (a wait runs).
 */
int lk_offline_may_check(struct lk_offline *o, uid_t uid, struct lk_pin_record *ret,
                         struct lk_error *e);
/* The outcome of a check: counts a wrong PIN (e: AccessDenied saying what comes next), clears
 * the count on a right one. Returns 0 (right) or the error. */
int lk_offline_checked(struct lk_offline *o, uid_t uid, bool right, struct lk_error *e);

/* The PIN's own rules ([offline] pin_min_length, at most LK_ARG_ID_MAX, UTF-8 checked by the
 * bus). 0 or InvalidArgument. */
int lk_offline_check_new_pin(const struct lk_offline *o, const char *pin, struct lk_error *e);
/* Stores a new hash for uid as user; online_at as given (0: keep the record's). */
int lk_offline_store_hash(struct lk_offline *o, uid_t uid, const char *user, int64_t online_at,
                          const char *hash, struct lk_error *e);
/* The Argon2id parameters of the config. */
void lk_offline_params(const struct lk_offline *o, struct lk_pin_params *ret);
