/* SPDX-License-Identifier: MIT */
/*
 * The relying party: everything latchkey asks of the provider, as
 * asynchronous operations on an lk_http. Discovery and keys are fetched once
 * and cached; each operation calls its callback exactly once, from within
 * lk_http's event processing (never from inside the call that started it).
 * An operation that returns < 0 (bad arguments, out of memory) never calls
 * its callback. Operations that need the endpoints or keys fetch them first;
 * concurrent operations share one fetch. A callback may free the provider.
 */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "oidc/config.h"
#include "oidc/device.h"
#include "oidc/discovery.h"
#include "oidc/error.h"
#include "oidc/http.h"
#include "oidc/jwks_cache.h"
#include "oidc/token.h"

struct lk_provider;

/*
 * After a 429 from the token endpoint, no exchange or refresh is sent for the
 * provider's Retry-After (seconds or a date), at most LK_PROVIDER_THROTTLE_MAX, or
 * LK_PROVIDER_THROTTLE_DEFAULT without one; they fail with LK_ERR_TOO_MANY_REQUESTS.
 */
#define LK_PROVIDER_THROTTLE_DEFAULT 30
#define LK_PROVIDER_THROTTLE_MAX 600

/*
 * cache_dir: where the keys (jwks.json) and discovery (discovery.json)
 * are cached on disk; NULL for memory only. c and h must outlive p.
 */
int lk_provider_new(const struct lk_config *c, struct lk_http *h, const char *cache_dir,
                    struct lk_provider **ret, struct lk_error *e);
/* Drops the operations under way without calling their callbacks. */
void lk_provider_free(struct lk_provider *p);

/*
 * NULL until the endpoints are known: from the config (discovery = no), from
 * a fresh disk copy of the discovery document, or once lk_provider_prepare()
 * (or any operation) fetched it. A refreshed discovery document replaces
 * them: do not keep the pointer across event processing.
 */
const struct lk_endpoints *lk_provider_endpoints(const struct lk_provider *p);

/*
 * err is NULL on success. For every operation below done must not be NULL (it aborts); a
 * missing code or token is returned at once as -LK_ERR_INVALID_ARGUMENT.
 */
typedef void (*lk_provider_done_fn)(void *userdata, const struct lk_error *err);

/* Makes sure the endpoints and keys are known (cache, else discovery and jwks_uri). */
int lk_provider_prepare(struct lk_provider *p, lk_provider_done_fn done, void *userdata);

/* The outcome of a code exchange or refresh: tokens and the verified id_token claims. */
struct lk_grant {
        struct lk_tokens tokens;
        json_t *claims; /* verified id_token claims; on a refresh without id_token, NULL */
};
void lk_grant_free(struct lk_grant *g);

/* grant is handed over (the callee frees it); NULL on error. */
typedef void (*lk_provider_grant_fn)(void *userdata, struct lk_grant *grant,
                                     const struct lk_error *err);

/*
 * Exchanges the code (with the verifier), then verifies the id_token with
 * the nonce sent; an unknown kid triggers one key refetch (rate-limited).
 * A response without id_token is an LK_ERR_INVALID_ID_TOKEN error.
 */
int lk_provider_exchange_code(struct lk_provider *p, const char *code, const char *verifier,
                              const char *nonce, lk_provider_grant_fn done, void *userdata);

/* Refreshes; a new id_token, when one comes, must keep previous_claims' iss and sub. */
int lk_provider_refresh(struct lk_provider *p, const char *refresh_token,
                        const json_t *previous_claims, lk_provider_grant_fn done, void *userdata);

/*
 * The same for a narrower token (GetToken's scope and audience, either may be NULL): the
 * request carries scope and the audience (config's audience_parameter). The grant's
 * refresh token, when a new one comes, still stands for the whole grant (RFC 6749 §6).
 */
int lk_provider_refresh_for(struct lk_provider *p, const char *refresh_token,
                            const json_t *previous_claims, const char *scope,
                            const char *audience, lk_provider_grant_fn done, void *userdata);

/* RFC 7009; done gets an error (LK_ERR_NOT_FOUND) when no revocation endpoint is known. */
int lk_provider_revoke(struct lk_provider *p, const char *token, const char *hint,
                       lk_provider_done_fn done, void *userdata);

/* RFC 8628: the device authorization; auth is handed over (lk_device_auth_clear, free). */
typedef void (*lk_provider_device_fn)(void *userdata, struct lk_device_auth *auth,
                                      const struct lk_error *err);
int lk_provider_device_authorize(struct lk_provider *p, lk_provider_device_fn done,
                                 void *userdata);

/*
 * One poll of the token endpoint with the device code. The id_token is verified as for a code
 * exchange, but for the nonce (the grant has none). A refusal keeps the provider's error
 * (authorization_pending, slow_down, ...) in err->provider_error: lk_device_outcome() says
 * what it means.
 */
int lk_provider_device_poll(struct lk_provider *p, const char *device_code,
                            lk_provider_grant_fn done, void *userdata);

/* Counters for tests and the benchmark: requests sent per kind. */
struct lk_provider_stats {
        uint64_t discovery, jwks, token, revoke, device; /* device: device authorizations */
};
void lk_provider_stats(const struct lk_provider *p, struct lk_provider_stats *ret);
