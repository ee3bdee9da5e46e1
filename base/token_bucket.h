/* SPDX-License-Identifier: MIT */
/*
 * A token bucket, counted in thousandths of a token so that the refill needs no floating
 * point: the broker's per-uid budget of token-endpoint requests (broker/budget.c) and the
 * callback listener's rate per client address (broker/callback_rate.c).
 */
#pragma once

#include <stdint.h>

#define LK_BUCKET_UNIT 1000 /* one token */

struct lk_bucket {
        int64_t level; /* in LK_BUCKET_UNITs, at most full */
        int64_t at_ms; /* when level was computed */
};

/* Adds what per_minute tokens a minute gave since b->at_ms, up to full (in units). The clock
 * moves on only by the time the units added stand for: no fraction is lost, however often this
 * runs. A clock that went back adds nothing. */
static inline void lk_bucket_refill(struct lk_bucket *b, int64_t now_ms, int64_t full,
                                    unsigned per_minute)
{
        int64_t add;

        if (now_ms <= b->at_ms)
                return;
        add = (now_ms - b->at_ms) * per_minute * LK_BUCKET_UNIT / 60000;
        if (add >= full - b->level) {
                b->level = full;
                b->at_ms = now_ms;
                return;
        }
        b->level += add;
        b->at_ms += add * 60000 / ((int64_t)per_minute * LK_BUCKET_UNIT);
}
