/* SPDX-License-Identifier: MIT */
/*
 * Token buckets by key, counted in thousandths of a token so that the refill needs no floating
 * point: the broker's per-uid budget of token-endpoint requests (broker/budget.c) and the
 * callback listener's rate per client address (broker/callback_rate.c). A new key's bucket is
 * full; when max_keys are tracked, the buckets that are full again are forgotten first (they
 * are as good as new).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LK_BUCKET_UNIT 1000 /* one token */
#define LK_BUCKET_KEY_MAX 16

struct lk_bucket_table;

/* burst tokens at most, refilling at per_minute; NULL when out of memory. */
struct lk_bucket_table *lk_bucket_table_new(unsigned burst, unsigned per_minute,
                                            unsigned max_keys);
void lk_bucket_table_free(struct lk_bucket_table *t);

/*
 * The level of key's bucket (in LK_BUCKET_UNITs), refilled to now_ms; with create, a key not
 * tracked gets a full bucket. Returns 0 and *ret_level pointing at the level (the caller takes
 * or gives back units there, within 0..burst units), -ENOENT (not tracked, !create), -ENOSPC
 * (max_keys tracked, none full again) or -ENOMEM.
 */
int lk_bucket_table_level(struct lk_bucket_table *t, const void *key, size_t key_len,
                          int64_t now_ms, bool create, int64_t **ret_level);
/* burst in units: the most a level holds. */
int64_t lk_bucket_table_full(const struct lk_bucket_table *t);
