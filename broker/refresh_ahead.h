/* SPDX-License-Identifier: MIT */
/*
 * Background refresh (refresh_ahead = yes): every session with a refresh token is refreshed
 * when refresh_margin is reached, up to LK_REFRESH_AHEAD_JITTER_MAX seconds earlier (drawn
 * per token, so that sessions opened together do not refresh together), by the session's one
 * refresh (session.c: callers who need it meanwhile wait on the same request), at most
 * LK_REFRESH_AHEAD_MAX at a time across sessions, and within the owner's token-endpoint budget
 * minus LK_BUDGET_AHEAD_RESERVE (budget.h): a refresh that would exceed it waits. So GetToken
 * answers from memory. A failed refresh is tried again after LK_REFRESH_INTERVAL_MIN, doubling
 * with each failure in a row up to LK_REFRESH_AHEAD_BACKOFF_MAX; a refused refresh token ends
 * the session ("expired", once). The manager runs it on a timer of the loop.
 */
#pragma once

#include <stdint.h>

#include "broker/session.h"

/* Background refreshes under way at once, across all sessions. */
#define LK_REFRESH_AHEAD_MAX 8
/* At most this many seconds (and a quarter of refresh_margin) before the margin. */
#define LK_REFRESH_AHEAD_JITTER_MAX 30
/* The longest wait after failed refreshes in a row (seconds). */
#define LK_REFRESH_AHEAD_BACKOFF_MAX 600

/* The wall second from which s is due for a background refresh, or -1 for never (now). */
int64_t lk_refresh_ahead_due(const struct lk_sessions *ss, struct lk_session *s);

/*
 * Starts the background refreshes due by ss->clock, as many as the bounds allow. Returns the
 * wall second when the next is due (now when one waits for a free slot), or -1 for none.
 */
int64_t lk_refresh_ahead_run(struct lk_sessions *ss);
