/* SPDX-License-Identifier: MIT */
/*
 * The provider's keys, cached in memory and on disk (SPEC §6). The lifetime
 * follows Cache-Control max-age, bounded to 5 min .. 24 h. An unknown kid may
 * trigger one refetch, at most once a minute. The decisions take "now" so
 * tests can drive them.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "jwks.h"

#define LK_JWKS_MIN_AGE 300
#define LK_JWKS_MAX_AGE 86400
#define LK_JWKS_REFETCH_INTERVAL 60

struct lk_jwks_cache {
        struct lk_jwks *keys;  /* NULL until the first fetch */
        int64_t fetched_at;
        int64_t expires_at;
        int64_t last_forced;   /* when an unknown kid last caused a fetch */
        char *path;            /* disk copy, NULL for none */
};

/* path may be NULL (memory only). Loads the disk copy when it is there and still fresh. */
int lk_jwks_cache_init(struct lk_jwks_cache *c, const char *path, int64_t now);
void lk_jwks_cache_clear(struct lk_jwks_cache *c);

/* true when there are no keys or they are past their lifetime */
bool lk_jwks_cache_stale(const struct lk_jwks_cache *c, int64_t now);

/* For an unknown kid: true (and remembers now) when a refetch is allowed now. */
bool lk_jwks_cache_may_refetch(struct lk_jwks_cache *c, int64_t now);

/*
 * Takes a freshly fetched document: parses it, keeps it with a lifetime from
 * max_age (-1 = none given: the minimum), writes the disk copy (whole, 0600).
 */
int lk_jwks_cache_store(struct lk_jwks_cache *c, const char *body, size_t len, long max_age,
                        int64_t now, struct lk_error *e);
