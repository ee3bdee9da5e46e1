/* SPDX-License-Identifier: MIT */
/*
 * The identity provider as logins and sessions see it: the calls they make of it. latchkeyd
 * passes oidc/provider.c (manager.c); the unit tests pass a fake they answer by hand.
 */
#pragma once

#include <jansson.h>

#include "oidc/provider.h"

struct lk_idp_ops {
        /* NULL until discovery is done (lk_provider_endpoints). */
        const struct lk_endpoints *(*endpoints)(void *idp);
        int (*exchange_code)(void *idp, const char *code, const char *verifier, const char *nonce,
                             lk_provider_grant_fn done, void *userdata);
        int (*refresh)(void *idp, const char *refresh_token, const json_t *previous_claims,
                       lk_provider_grant_fn done, void *userdata);
        /* A narrower token (scope, audience; either may be NULL): session_narrow.c. */
        int (*refresh_for)(void *idp, const char *refresh_token, const json_t *previous_claims,
                           const char *scope, const char *audience, lk_provider_grant_fn done,
                           void *userdata);
        int (*revoke)(void *idp, const char *token, const char *hint, lk_provider_done_fn done,
                      void *userdata);
        /* RFC 8628 (may be NULL: no device flow) */
        int (*device_authorize)(void *idp, lk_provider_device_fn done, void *userdata);
        int (*device_poll)(void *idp, const char *device_code, lk_provider_grant_fn done,
                           void *userdata);
};

struct lk_idp {
        const struct lk_idp_ops *ops;
        void *idp;
};
