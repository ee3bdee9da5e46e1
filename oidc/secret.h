/* SPDX-License-Identifier: MIT */
/* Handling of secrets: random values, constant-time comparison, loggable fingerprints. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * A fresh random string of nbytes (1..64) from the CSPRNG, base64url without padding.
 * -LK_ERR_IO when the CSPRNG fails, -LK_ERR_NOMEM.
 */
int lk_random_b64url(size_t nbytes, char **ret);

/* Compares two strings in time that depends only on their lengths. NULL never equals. */
bool lk_secret_equal(const char *a, const char *b);

/* "sha256:" followed by the first 12 hex digits of SHA-256(s): safe to log. */
#define LK_FINGERPRINT_SIZE 20
void lk_fingerprint(const char *s, char out[LK_FINGERPRINT_SIZE]);

/* base64url(SHA-256(s)), as PKCE's S256 code_challenge and OIDC's at_hash want. */
int lk_sha256_b64url(const char *s, char **ret);
