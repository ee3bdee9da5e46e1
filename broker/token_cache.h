/* SPDX-License-Identifier: MIT */
/*
 * A session's narrower tokens: GetToken with option scope (a subset of the session's grant)
 * or audience gets an access token of its own, which the broker fetches with a refresh
 * request carrying them (session.c) and keeps here, one entry per (scope, audience), at most
 * LK_TOKEN_CACHE_MAX per session. In memory only: after a broker restart the first caller
 * fetches it again. This file holds the entries and the scope rules; it sends nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oidc/error.h"
#include "oidc/token.h"

/* Entries per session; the least recently asked one nobody waits for makes room. */
#define LK_TOKEN_CACHE_MAX 8
/* Callers waiting on one entry's refresh; more are refused. */
#define LK_TOKEN_CACHE_WAITERS_MAX 256

/* An entry's GetToken decided: r == 0 with its tokens, or r < 0 and e. */
typedef void (*lk_scoped_fn)(void *userdata, const struct lk_tokens *t, int r,
                             const struct lk_error *e);

struct lk_scoped_waiter {
        lk_scoped_fn fn;
        void *userdata;
};

struct lk_scoped_token {
        char *scope;    /* canonical (lk_scope_normalize); "" for the grant's own */
        char *audience; /* "" for none */
        struct lk_tokens tokens; /* access_token NULL until the first refresh gave one */
        int64_t refreshed_at;    /* seconds since the epoch of its last refresh, or 0 */
        int64_t used_at;         /* of the last GetToken for it: which entry goes when full */
        struct lk_error *refresh_error; /* how the last refresh failed, when it did */
        bool wanted;             /* callers wait for a refresh not started yet */
        struct lk_scoped_waiter *waiters;
        size_t n_waiters;
};

struct lk_token_cache {
        struct lk_scoped_token *entry[LK_TOKEN_CACHE_MAX];
        size_t n;
};

/*
 * scope as GetToken sends it (scope-tokens of RFC 6749 §3.3, separated by spaces) in a
 * canonical form: each once, sorted, one space between. InvalidArgument naming a bad
 * character, or for no scope at all.
 */
int lk_scope_normalize(const char *scope, char **ret, struct lk_error *e);
/* 0 when every scope of want (canonical) is in granted (space-separated); else
 * InvalidArgument naming the first that is not. */
int lk_scope_check_subset(const char *want, const char *granted, struct lk_error *e);
/* The words of l, one space between (the configured scopes); NULL when out of memory. */
char *lk_scope_join(char *const *l);
/* true when every scope of got (space-separated) is in want: the provider did not widen it. */
bool lk_scope_within(const char *got, const char *want);
/* An audience: 1 to 256 visible ASCII characters (a URI or a provider's API name). */
int lk_audience_check(const char *audience, struct lk_error *e);

/* The entry of (scope, audience), canonical, or NULL. */
struct lk_scoped_token *lk_token_cache_find(struct lk_token_cache *c, const char *scope,
                                            const char *audience);
/*
 * A new empty entry; when the cache is full, the least recently used entry that nobody
 * waits for and that is not being refreshed (busy) goes. TooManyRequests when none may.
 */
int lk_token_cache_add(struct lk_token_cache *c, const char *scope, const char *audience,
                       const struct lk_scoped_token *busy, struct lk_scoped_token **ret,
                       struct lk_error *e);
/* The first entry whose callers wait for a refresh not started yet, or NULL. */
struct lk_scoped_token *lk_token_cache_next_wanted(struct lk_token_cache *c);
/* Adds a caller waiting for t's refresh; TooManyRequests past LK_TOKEN_CACHE_WAITERS_MAX. */
int lk_scoped_wait(struct lk_scoped_token *t, lk_scoped_fn fn, void *userdata,
                   struct lk_error *e);
/*
 * Answers t's callers: with r < 0 (but TokenExpired, NotFound) a still valid token (at now)
 * is answered instead of the error.
 */
void lk_scoped_answer(struct lk_scoped_token *t, int r, const struct lk_error *e, int64_t now);
/* Answers every caller with r and e, wipes and frees every entry. */
void lk_token_cache_clear(struct lk_token_cache *c, int r, const struct lk_error *e);
