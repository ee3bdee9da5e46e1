/* SPDX-License-Identifier: MIT */
/*
 * The device authorization grant (RFC 8628), network-free: the device authorization
 * response, and what each answer of the token endpoint to a poll means. The requests are
 * built in token.c (lk_token_request_device_authorization, lk_token_request_device_code),
 * with the other token-endpoint bodies; the provider sends them (provider.c).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "oidc/error.h"

/*
 * Limits on the device authorization response (docs/SECURITY.md). interval is the
 * provider's, within [LK_DEVICE_INTERVAL_MIN, LK_DEVICE_INTERVAL_MAX]; slow_down adds
 * LK_DEVICE_SLOW_DOWN_STEP up to LK_DEVICE_INTERVAL_MAX (RFC 8628 §3.5).
 */
#define LK_DEVICE_CODE_MAX 1024     /* bytes of device_code */
#define LK_DEVICE_USER_CODE_MAX 64  /* bytes of user_code */
#define LK_DEVICE_URI_MAX 2048      /* bytes of verification_uri(_complete) */
#define LK_DEVICE_EXPIRES_MAX 86400 /* seconds of expires_in */
#define LK_DEVICE_INTERVAL_DEFAULT 5
#define LK_DEVICE_INTERVAL_MIN 1
#define LK_DEVICE_INTERVAL_MAX 60
#define LK_DEVICE_SLOW_DOWN_STEP 5

struct lk_device_auth {
        char *device_code;               /* secret */
        char *user_code;                 /* shown to the person */
        char *verification_uri;          /* where to sign in */
        char *verification_uri_complete; /* the same with the user code in it; NULL when none */
        unsigned expires_in;             /* seconds */
        unsigned interval;               /* seconds between polls */
};
void lk_device_auth_clear(struct lk_device_auth *d);

/*
 * Parses the device authorization endpoint's answer (RFC 8628 §3.2). A status other than
 * 200 is classified as a token endpoint's (lk_token_error_parse). device_code, user_code,
 * verification_uri (or Google's verification_url) and expires_in are required; interval
 * defaults to LK_DEVICE_INTERVAL_DEFAULT; every value within the limits above, the
 * addresses https (or loopback http), the codes printable ASCII.
 */
int lk_device_auth_parse(long status, const char *content_type, const char *body, size_t len,
                         struct lk_device_auth *ret, struct lk_error *e);

/* What a failed poll (the error of the token request) means (RFC 8628 §3.5). */
enum lk_device_outcome {
        LK_DEVICE_PENDING,   /* authorization_pending: poll again at the interval */
        LK_DEVICE_SLOW_DOWN, /* slow_down (or HTTP 429): poll again, LK_DEVICE_SLOW_DOWN_STEP later */
        LK_DEVICE_DENIED,    /* access_denied: the person (or the provider) said no */
        LK_DEVICE_EXPIRED,   /* expired_token: the device code is dead */
        LK_DEVICE_RETRY,     /* the provider could not answer (network, 5xx): poll again */
        LK_DEVICE_FAILED,    /* any other refusal: the login ends */
};
enum lk_device_outcome lk_device_outcome(const struct lk_error *e);
