/* SPDX-License-Identifier: MIT */
/*
 * The per-uid budget of token-endpoint requests (code exchanges and refreshes), so that no
 * local user can make the broker hammer the provider (which would then rate-limit or lock our
 * client, and nobody could log in). A token bucket per uid: LK_BUDGET_BURST requests at once,
 * refilling at LK_BUDGET_PER_MINUTE. A request the provider granted gives its token back:
 * each of those is a real sign-in or a live refresh token, so only refused and failed
 * requests (junk codes, dead refresh tokens, a provider that is down) spend the budget.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "oidc/error.h"

#define LK_BUDGET_BURST 30
#define LK_BUDGET_PER_MINUTE 30
/* uids tracked at once; full buckets are forgotten to make room. */
#define LK_BUDGET_UIDS_MAX 4096

struct lk_budget;

int lk_budget_new(struct lk_budget **ret);
void lk_budget_free(struct lk_budget *g);

/* Takes one request from uid's bucket at now_ms: 0, or TooManyRequests with e set. */
int lk_budget_take(struct lk_budget *g, uid_t uid, int64_t now_ms, struct lk_error *e);
/*
 * Requests a background refresh (refresh_ahead.c) leaves to those a caller waits for: with
 * the provider down, the background's retries never use up a uid's logins.
 */
#define LK_BUDGET_AHEAD_RESERVE 10
/* lk_budget_take() that succeeds only while more than keep requests would be left. */
int lk_budget_take_spare(struct lk_budget *g, uid_t uid, int64_t now_ms, unsigned keep,
                         struct lk_error *e);
/* Gives one back: the request was granted (or never sent). */
void lk_budget_refund(struct lk_budget *g, uid_t uid);
