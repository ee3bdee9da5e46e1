/* SPDX-License-Identifier: MIT */
/*
 * id_token verification, SPEC §6, all of it, every time. libjwt 1.10 checks
 * the signature; choosing the algorithm and the key, and every claim, is ours.
 */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "oidc/config.h"
#include "oidc/error.h"
#include "oidc/jwks.h"

/* Which check refused the token: the detail of an LK_ERR_INVALID_ID_TOKEN error. */
enum lk_idtoken_check {
        LK_IDT_OK = 0,
        LK_IDT_MALFORMED,         /* not three base64url parts of JSON, or too large */
        LK_IDT_ALG_NONE,          /* alg "none" */
        LK_IDT_ALG_NOT_ALLOWED,   /* alg missing, unknown or not in id_token_algorithms */
        LK_IDT_NO_SECRET,         /* HS* allowed but no client secret to check it with */
        LK_IDT_UNKNOWN_KID,       /* kid names no key of the set: the caller may refetch once */
        LK_IDT_NO_MATCHING_KEY,   /* no key of the algorithm's family (kty/crv) */
        LK_IDT_KEY_MISMATCH,      /* the key named by kid is of another family or curve */
        LK_IDT_BAD_SIGNATURE,
        LK_IDT_ISS,
        LK_IDT_AUD,
        LK_IDT_AZP,
        LK_IDT_EXP,
        LK_IDT_IAT,
        LK_IDT_NBF,
        LK_IDT_SUB,
        LK_IDT_NONCE,
        LK_IDT_CHANGED_ISS_SUB,   /* on refresh: iss or sub differ from the login's */
};

const char *lk_idtoken_check_name(enum lk_idtoken_check c);

struct lk_idtoken_params {
        const char *issuer;
        const char *client_id;
        const char *client_secret; /* key for HS*; NULL when there is none */
        unsigned algorithms;       /* LK_ALG_* bits allowed */
        enum lk_nonce_mode nonce_mode;
        const char *nonce;         /* the nonce sent; NULL on refresh */
        int64_t now;               /* seconds since the epoch */
        unsigned clock_skew;
        /* On refresh: the login's claims; iss and sub must stay the same. */
        const json_t *previous_claims;
};

/*
 * Verifies token against keys (may be NULL for HS*-only setups). On success
 * returns 0 and the verified claims. On failure returns
 * -LK_ERR_INVALID_ID_TOKEN with e->detail set to the enum lk_idtoken_check
 * and a message that says which check failed (never the token itself).
 */
int lk_idtoken_verify(const char *token, const struct lk_idtoken_params *p,
                      const struct lk_jwks *keys, json_t **ret_claims, struct lk_error *e);
