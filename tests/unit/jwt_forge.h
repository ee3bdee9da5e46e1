/* SPDX-License-Identifier: MIT */
/*
 * jwt_forge: TEST-ONLY helpers to make signing keys at run time, publish them
 * as JWKs, and sign arbitrary header and payload JSON as compact JWS, the
 * right way and the wrong ways (HS256 keyed with a public key's PEM, alg
 * "none", a header that lies about alg). Nothing here checks what it signs.
 * No key is ever written to disk; nothing of this belongs in the product.
 *
 * Every char * returned is malloc'ed (free() it) and NULL means failure.
 */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>

enum jwt_forge_kind {
        JWT_FORGE_RSA2048,
        JWT_FORGE_RSA1024, /* too short for latchkey: for refusal tests */
        JWT_FORGE_P256,
        JWT_FORGE_P384,
        JWT_FORGE_P521,
};

struct jwt_forge_key;

/* A fresh key pair (RSA keys take a moment: make them once per test group). */
struct jwt_forge_key *jwt_forge_key_new(enum jwt_forge_kind kind);
void jwt_forge_key_free(struct jwt_forge_key *k);
/* The private key, for callers that sign in their own way. Owned by k. */
EVP_PKEY *jwt_forge_key_pkey(const struct jwt_forge_key *k);

/*
 * The public key as one JWK JSON object, e.g. {"kty":"RSA","n":..,"e":..}.
 * kid and alg are added when not NULL ("use":"sig" always).
 */
char *jwt_forge_jwk(const struct jwt_forge_key *k, const char *kid, const char *alg);
/* {"keys":[jwks[0],jwks[1],...]} from a NULL-terminated list of JWK object texts. */
char *jwt_forge_jwks(const char *const *jwks);
/* The public key as SubjectPublicKeyInfo PEM (what libjwt and attackers take). */
char *jwt_forge_public_pem(const struct jwt_forge_key *k);

/* base64url without padding. */
char *jwt_forge_b64url(const void *data, size_t len);

/*
 * b64url(header_json) "." b64url(payload_json) "." b64url(signature), signed
 * with k under alg "RS256", "RS384", "RS512", "ES256", "ES384" or "ES512"
 * (ES signatures as JOSE's fixed-size R || S). The header is used as given,
 * whatever alg it names.
 */
char *jwt_forge_sign(const char *header_json, const char *payload_json, const char *alg,
                     const struct jwt_forge_key *k);
/* The same with "HS256", "HS384" or "HS512", keyed with any bytes (a PEM, a secret). */
char *jwt_forge_sign_hmac(const char *header_json, const char *payload_json, const char *alg,
                          const void *key, size_t key_len);
/* b64url(header_json) "." b64url(payload_json) "." : an unsigned (alg "none") token. */
char *jwt_forge_unsigned(const char *header_json, const char *payload_json);
