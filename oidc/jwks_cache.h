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

#include "oidc/error.h"
#include "oidc/jwks.h"

#define LK_JWKS_MIN_AGE 300
#define LK_JWKS_MAX_AGE 86400
#define LK_JWKS_REFETCH_INTERVAL 60

struct lk_jwks_cache {
        struct lk_jwks *keys;  /* NULL until the first fetch */
        int64_t fetched_at;
        int64_t expires_at;
        int64_t last_forced;   /* when an unknown kid last caused a fetch; INT64_MIN: never */
        char *path;            /* disk copy, NULL for none */
        char *url;             /* the jwks_uri the keys came from; NULL when not known */
};

/*
 * path may be NULL (memory only). Loads the disk copy when it is there and
 * still fresh; a missing, unreadable or corrupt one is ignored (debug log).
 */
int lk_jwks_cache_init(struct lk_jwks_cache *c, const char *path, int64_t now);
void lk_jwks_cache_clear(struct lk_jwks_cache *c);

/*
 * Binds the cache to the jwks_uri in use: keys that came from another URL
 * (a disk copy from before a configuration change) are dropped; the disk
 * copy written by later stores records url.
 */
int lk_jwks_cache_bind(struct lk_jwks_cache *c, const char *url);

/* true when there are no keys or they are past their lifetime */
bool lk_jwks_cache_stale(const struct lk_jwks_cache *c, int64_t now);

/*
 * For an unknown kid: true (and remembers now) when a refetch is allowed now,
 * i.e. none was allowed in the last LK_JWKS_REFETCH_INTERVAL seconds.
 */
bool lk_jwks_cache_may_refetch(struct lk_jwks_cache *c, int64_t now);

/*
 * Takes a freshly fetched document: parses it, keeps it with a lifetime from
 * max_age (-1 = none given: the minimum), writes the disk copy (whole, 0600).
 * A document that does not parse is an error and the previous keys stay; a
 * disk copy that cannot be written is logged and ignored.
 */
int lk_jwks_cache_store(struct lk_jwks_cache *c, const char *body, size_t len, long max_age,
                        int64_t now, struct lk_error *e);

/*
 * The same lifetime rules and disk format serve the discovery document
 * (provider.c). A disk copy is a JSON object
 *   {"fetched_at": N, "expires_at": N, "body": "<the document as fetched>", "url": "<its URL>"}
 */

/* max_age (-1 = none given) bounded to [LK_JWKS_MIN_AGE, LK_JWKS_MAX_AGE]. */
long lk_cache_lifetime(long max_age);

/*
 * Reads a disk copy; only a fresh one (expires_at > now, not fetched in the
 * future, lifetime within the bounds) is returned. -LK_ERR_NOT_FOUND when
 * the file is missing or stale, -LK_ERR_IO when unreadable or corrupt, or
 * when it is not the broker's own (not a regular file, not owned by the
 * euid, writable by group or others).
 */
struct lk_cache_file {
        char *body; /* NUL-terminated */
        size_t len;
        char *url;  /* NULL when the file names none */
        int64_t fetched_at, expires_at;
};
void lk_cache_file_clear(struct lk_cache_file *f);
int lk_cache_file_load(const char *path, int64_t now, struct lk_cache_file *ret,
                       struct lk_error *e);
/* Writes a disk copy whole, mode 0600. url may be NULL. */
int lk_cache_file_save(const char *path, const struct lk_cache_file *f, struct lk_error *e);
