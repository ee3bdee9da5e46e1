/* SPDX-License-Identifier: MIT */
/*
 * JSON Web Key Sets (RFC 7517): parsing a provider's jwks_uri document into
 * OpenSSL public keys, and picking candidate keys for a token.
 * Keys that latchkey cannot use (other kty, "use": "enc", unknown crv,
 * symmetric keys) are skipped, not fatal; a set with no usable key is.
 */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>

#include "oidc/error.h"

#define LK_JWKS_MAX_KEYS 64

/* The SHA-2 hashes JWS signatures use (RS256/ES256, RS384/ES384, RS512/ES512). */
enum lk_jwk_hash {
        LK_JWK_SHA256,
        LK_JWK_SHA384,
        LK_JWK_SHA512,
        LK_JWK_HASHES,
};

/* The hash of an RS*, ES* or HS* algorithm (enum lk_alg bit), and its OpenSSL digest. */
enum lk_jwk_hash lk_jwk_hash_of(unsigned alg);
const EVP_MD *lk_jwk_hash_md(enum lk_jwk_hash h);

enum lk_kty {
        LK_KTY_RSA = 1,
        LK_KTY_EC,
};

struct lk_jwk {
        char *kid;       /* NULL when the key has none */
        enum lk_kty kty;
        int curve_nid;   /* for EC: NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1 */
        char *alg;       /* the key's own "alg" when it names one, else NULL */
        EVP_PKEY *pkey;
        /*
         * pkey set up once to verify signatures over a digest made with each hash it may be
         * used with (EVP_PKEY_verify_init, the digest named, PKCS#1 v1.5 for RSA), so that a
         * token costs one EVP_PKEY_verify, not a fresh context. NULL for a hash the key cannot
         * use: an EC key has only its curve's, a key whose "alg" names one has only that one.
         */
        EVP_PKEY_CTX *verify[LK_JWK_HASHES];
};

struct lk_jwks {
        struct lk_jwk *keys;
        size_t n;
};

/*
 * One JWK object to a key. Returns 0 and fills ret; 1 (ret untouched) for a
 * key latchkey does not use and skips ("use" other than "sig", "key_ops"
 * without "verify", kty other than RSA/EC, unknown crv, an "alg" latchkey
 * does not know); -LK_ERR_PROVIDER_RESPONSE naming the bad member for a
 * broken key (bad base64url, RSA under 2048 bits, EC point not on the curve...).
 */
int lk_jwk_from_json(const void *json_object /* json_t* */, struct lk_jwk *ret, struct lk_error *e);
void lk_jwk_clear(struct lk_jwk *k);

/* A whole JWKS document (at most 1 MiB, at most LK_JWKS_MAX_KEYS keys). */
int lk_jwks_parse(const char *body, size_t len, struct lk_jwks **ret, struct lk_error *e);
void lk_jwks_free(struct lk_jwks *s);
static inline void lk_jwks_freep(struct lk_jwks **s)
{
        lk_jwks_free(*s);
}
