/* SPDX-License-Identifier: MIT */
/*
 * lk_idtoken_verify() on anything, against a small key set made once
 * (RSA 2048 with kid "r1", P-256 with kid "e1", P-256 without kid) and a
 * client secret for HS256. The first byte picks the mode and the settings:
 *   bit 0 clear: the rest is the token as it is;
 *   bit 0 set:   the rest is "header JSON" NUL "payload JSON", signed here
 *                (bits 1-2: HS256 with the client secret, RS256 with r1,
 *                ES256 with e1, or HS256 keyed with r1's PEM), so the
 *                header and claim checks run behind valid signatures;
 *   bits 3-4: nonce mode; bit 5: a refresh (previous claims, no nonce);
 *   bit 6: no key set at all.
 * Whatever happens, a token that passes must have passed every check.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/idtoken.h"
#include "oidc/jwks.h"
#include "tests/unit/jwt_forge.h"

#define ISS "https://tenant.example.com/api/v1/oauth2"
#define CLIENT "latchkey"
#define SECRET "fuzz-client-secret"
#define NONCE "fuzz-nonce-0123456789"
#define NOW 1700000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct jwt_forge_key *rsa, *ec;
static struct lk_jwks *keys;
static char *rsa_pem;
static json_t *previous;

static void init(void)
{
        char *a, *b, *c, *doc;
        struct lk_error e = {0};

        rsa = jwt_forge_key_new(JWT_FORGE_RSA2048);
        ec = jwt_forge_key_new(JWT_FORGE_P256);
        if (!rsa || !ec)
                abort();
        a = jwt_forge_jwk(rsa, "r1", NULL);
        b = jwt_forge_jwk(ec, "e1", "ES256");
        c = jwt_forge_jwk(ec, NULL, NULL);
        doc = jwt_forge_jwks((const char *const[]){ a, b, c, NULL });
        if (!doc || lk_jwks_parse(doc, strlen(doc), &keys, &e) < 0)
                abort();
        rsa_pem = jwt_forge_public_pem(rsa);
        previous = json_pack("{s:s, s:s}", "iss", ISS, "sub", "user-1");
        if (!rsa_pem || !previous)
                abort();
        free(a);
        free(b);
        free(c);
        free(doc);
}

/* "header\0payload" to a signed token; NULL when the input has no NUL. */
static char *signed_token(const uint8_t *data, size_t size, unsigned how)
{
        char *copy, *payload, *t = NULL;

        copy = malloc(size + 1);
        if (!copy)
                return NULL;
        memcpy(copy, data, size);
        copy[size] = 0;
        payload = memchr(copy, 0, size);
        if (payload) {
                payload++;
                switch (how) {
                case 0: t = jwt_forge_sign_hmac(copy, payload, "HS256", SECRET, strlen(SECRET)); break;
                case 1: t = jwt_forge_sign(copy, payload, "RS256", rsa); break;
                case 2: t = jwt_forge_sign(copy, payload, "ES256", ec); break;
                default: t = jwt_forge_sign_hmac(copy, payload, "HS256", rsa_pem, strlen(rsa_pem)); break;
                }
        }
        free(copy);
        return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lk_idtoken_params p = {
                .issuer = ISS,
                .client_id = CLIENT,
                .client_secret = SECRET,
                .algorithms = LK_ALG_DEFAULT | LK_ALG_HS256,
                .nonce = NONCE,
                .now = NOW,
                .clock_skew = 60,
        };
        struct lk_error e = {0};
        json_t *claims = NULL;
        char *token;
        unsigned flags;
        int r;

        if (!keys)
                init();
        if (size < 1 || size > 128 * 1024)
                return 0;
        flags = data[0];
        data++;
        size--;

        if (flags & 1) {
                token = signed_token(data, size, (flags >> 1) & 3);
        } else {
                token = malloc(size + 1);
                if (token) {
                        memcpy(token, data, size);
                        token[size] = 0;
                }
        }
        if (!token)
                return 0;

        p.nonce_mode = ((flags >> 3) & 3) % 3;
        if (flags & 0x20) {
                p.nonce = NULL;
                p.previous_claims = previous;
        }

        r = lk_idtoken_verify(token, &p, (flags & 0x40) ? NULL : keys, &claims, &e);
        if (r == 0) {
                const char *iss = json_string_value(json_object_get(claims, "iss"));
                const char *sub = json_string_value(json_object_get(claims, "sub"));

                /* Whatever passed must be ours: right issuer, a subject, and never the PEM-keyed HMAC. */
                if (!iss || strcmp(iss, ISS) != 0 || !sub || !*sub || e.code != 0)
                        abort();
                if ((flags & 1) && ((flags >> 1) & 3) == 3)
                        abort();
                json_decref(claims);
        } else if (claims || e.code == 0 || !e.message[0]) {
                abort();
        }
        free(token);
        return 0;
}
