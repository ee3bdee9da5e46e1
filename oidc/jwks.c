/* SPDX-License-Identifier: MIT */
/*
 * JWKS parsing (RFC 7517, RFC 7518 §6). Every key we keep is a public key
 * built from its parameters with OpenSSL 3 (EVP_PKEY_fromdata) and checked:
 * RSA moduli of 2048..16384 bits, EC points on P-256/P-384/P-521 with
 * coordinates of exactly the curve's size. Kinds of key we do not use are
 * skipped; a broken key of a kind we do use makes the whole set unusable,
 * since it says the document is not what the provider meant to publish.
 */
#include "oidc/jwks.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>

#include "base/cleanup_openssl.h"
#include "base/text.h"
#include "oidc/b64url.h"
#include "oidc/config.h"

#define JWKS_MAX_SIZE (1024 * 1024)
#define JWK_KID_MAX 1024
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 16384
#define RSA_E_MAX_BYTES 8

/* lk_jwk_from_json's "not a key latchkey uses" result. */
#define JWK_SKIP 1

/* An optional string member: 0 and NULL when absent, -1 when of another type. */
static int get_string(const json_t *obj, const char *name, const char **ret)
{
        const json_t *v = json_object_get(obj, name);

        if (!v) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return -1;
        *ret = json_string_value(v);
        return 0;
}

static int decode_member(const json_t *obj, const char *name, unsigned char **ret,
                         size_t *ret_len, struct lk_error *e)
{
        _cleanup_free_ unsigned char *buf = NULL;
        const char *s;
        size_t len;
        int r;

        if (get_string(obj, name, &s) < 0 || !s)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWK member \"%s\" is missing or not a string", name);
        r = lk_b64url_decode(s, strlen(s), &buf, &len);
        if (r == -LK_ERR_NOMEM)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        if (r < 0)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWK member \"%s\" is not base64url", name);
        if (len == 0)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE, "JWK member \"%s\" is empty",
                                    name);
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* invalid: what is wrong when OpenSSL refuses the parameters or the key check fails. */
static int pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, const char *invalid,
                            EVP_PKEY **ret, struct lk_error *e)
{
        _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = NULL;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *check = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;

        params = OSSL_PARAM_BLD_to_param(bld);
        if (!params)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
        if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0)
                return lk_error_set(e, LK_ERR_NOMEM, "Cannot set up an OpenSSL %s key", type);
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0 || !pkey)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE, "%s", invalid);
        /*
         * EC: public_check confirms the point is in range, on the curve and of the group's
         * order, which guards against invalid-curve points; it stays. RSA: OpenSSL's check is
         * SP 800-56B's (a Miller-Rabin round and a GCD against small primes on n), meant for
         * keys used to agree or encrypt, and costs ~15 ms for a 2048-bit key at every start.
         * For verifying signatures it adds nothing: whoever serves the JWKS could as well
         * serve a sound key whose private half it holds, and a broken modulus only makes
         * signatures fail to verify. rsa_from_json checks what matters for verification
         * (size, odd n, odd e > 1).
         */
        if (!streq(type, "RSA")) {
                check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
                if (!check)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                if (EVP_PKEY_public_check(check) != 1)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE, "%s", invalid);
        }
        *ret = TAKE_PTR(pkey);
        return 0;
}

static int rsa_from_json(const json_t *obj, EVP_PKEY **ret, struct lk_error *e)
{
        _cleanup_free_ unsigned char *n = NULL, *ev = NULL;
        _cleanup_(BN_freep) BIGNUM *bn_n = NULL, *bn_e = NULL;
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
        size_t n_len, e_len;
        int bits, r;

        r = decode_member(obj, "n", &n, &n_len, e);
        if (r < 0)
                return r;
        r = decode_member(obj, "e", &ev, &e_len, e);
        if (r < 0)
                return r;
        if (n_len > RSA_MAX_BITS / 8 + 1)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "RSA modulus of %zu bytes is too large (at most %d bits)",
                                    n_len, RSA_MAX_BITS);
        if (e_len > RSA_E_MAX_BYTES)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "RSA exponent of %zu bytes is too large", e_len);

        bn_n = BN_bin2bn(n, (int)n_len, NULL);
        bn_e = BN_bin2bn(ev, (int)e_len, NULL);
        if (!bn_n || !bn_e)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        bits = BN_num_bits(bn_n);
        if (bits < RSA_MIN_BITS)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "RSA modulus has %d bits, at least %d are required", bits,
                                    RSA_MIN_BITS);
        if (bits > RSA_MAX_BITS)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "RSA modulus has %d bits, at most %d are allowed", bits,
                                    RSA_MAX_BITS);
        if (!BN_is_odd(bn_n))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE, "RSA modulus is even");
        if (!BN_is_odd(bn_e) || BN_is_one(bn_e))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "RSA exponent must be odd and greater than 1");

        bld = OSSL_PARAM_BLD_new();
        if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        return pkey_from_params("RSA", bld, "RSA public key is not valid", ret, e);
}

static const struct curve {
        const char *crv;     /* JWK name */
        const char *group;   /* OpenSSL group name */
        int nid;
        size_t size;         /* bytes per coordinate */
        enum lk_jwk_hash hash; /* ES256, ES384, ES512 */
} curves[] = {
        { "P-256", "prime256v1", NID_X9_62_prime256v1, 32, LK_JWK_SHA256 },
        { "P-384", "secp384r1", NID_secp384r1, 48, LK_JWK_SHA384 },
        { "P-521", "secp521r1", NID_secp521r1, 66, LK_JWK_SHA512 },
};

static const struct curve *curve_by_name(const char *crv)
{
        for (size_t i = 0; i < ELEMENTSOF(curves); i++)
                if (streq(curves[i].crv, crv))
                        return &curves[i];
        return NULL;
}

static int ec_from_json(const json_t *obj, const struct curve *c, EVP_PKEY **ret,
                        struct lk_error *e)
{
        _cleanup_free_ unsigned char *x = NULL, *y = NULL, *point = NULL;
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
        char invalid[64];
        size_t x_len, y_len;
        int r;

        r = decode_member(obj, "x", &x, &x_len, e);
        if (r < 0)
                return r;
        r = decode_member(obj, "y", &y, &y_len, e);
        if (r < 0)
                return r;
        if (x_len != c->size || y_len != c->size)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "EC %s coordinates must be %zu bytes each, not %zu and %zu",
                                    c->crv, c->size, x_len, y_len);

        /* The uncompressed SEC1 encoding: 0x04 || x || y. */
        point = malloc(1 + 2 * c->size);
        if (!point)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        point[0] = 0x04;
        memcpy(point + 1, x, c->size);
        memcpy(point + 1 + c->size, y, c->size);

        bld = OSSL_PARAM_BLD_new();
        if (!bld ||
            !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, c->group, 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                              1 + 2 * c->size))
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        /* fromdata refuses a point off the curve; public_check also checks range and order. */
        snprintf(invalid, sizeof(invalid), "EC point (x, y) is not on the curve %s", c->crv);
        return pkey_from_params("EC", bld, invalid, ret, e);
}

enum lk_jwk_hash lk_jwk_hash_of(unsigned alg)
{
        if (alg & (LK_ALG_RS256 | LK_ALG_ES256 | LK_ALG_HS256))
                return LK_JWK_SHA256;
        if (alg & (LK_ALG_RS384 | LK_ALG_ES384 | LK_ALG_HS384))
                return LK_JWK_SHA384;
        return LK_JWK_SHA512;
}

const EVP_MD *lk_jwk_hash_md(enum lk_jwk_hash h)
{
        switch (h) {
        case LK_JWK_SHA256: return EVP_sha256();
        case LK_JWK_SHA384: return EVP_sha384();
        default: return EVP_sha512();
        }
}

/* k->verify[] for the hashes k may be used with: alg_bit's when set, else the curve's or all. */
static int prepare_verify(struct lk_jwk *k, unsigned alg_bit, const struct curve *c,
                          struct lk_error *e)
{
        for (int h = 0; h < LK_JWK_HASHES; h++) {
                const EVP_MD *md = lk_jwk_hash_md((enum lk_jwk_hash)h);
                EVP_PKEY_CTX *ctx;

                if ((alg_bit && (int)lk_jwk_hash_of(alg_bit) != h) || (c && (int)c->hash != h))
                        continue;
                ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
                k->verify[h] = ctx;
                if (!ctx || EVP_PKEY_verify_init(ctx) != 1 ||
                    (k->kty == LK_KTY_RSA &&
                     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) ||
                    EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
                        return lk_error_set(e, LK_ERR_NOMEM,
                                            "Cannot set up the key to verify %s signatures",
                                            EVP_MD_get0_name(md));
        }
        return 0;
}

/* true when key_ops is present and does not allow "verify" */
static bool ops_exclude_verify(const json_t *obj)
{
        const json_t *ops = json_object_get(obj, "key_ops"), *v;
        size_t i;

        if (!json_is_array(ops))
                return false;
        json_array_foreach(ops, i, v)
                if (json_is_string(v) && streq(json_string_value(v), "verify"))
                        return false;
        return true;
}

void lk_jwk_clear(struct lk_jwk *k)
{
        if (!k)
                return;
        free(k->kid);
        free(k->alg);
        for (int h = 0; h < LK_JWK_HASHES; h++)
                EVP_PKEY_CTX_free(k->verify[h]);
        EVP_PKEY_free(k->pkey);
        *k = (struct lk_jwk){0};
}

static void jwk_clearp(struct lk_jwk *k)
{
        lk_jwk_clear(k);
}

int lk_jwk_from_json(const void *json_object, struct lk_jwk *ret, struct lk_error *e)
{
        const json_t *obj = json_object;
        _cleanup_(jwk_clearp) struct lk_jwk k = {0};
        const char *kty, *use, *kid, *alg, *crv;
        const struct curve *c = NULL;
        unsigned alg_bit = 0;
        int r;

        if (!json_is_object(obj))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE, "JWK is not a JSON object");
        if (get_string(obj, "kty", &kty) < 0 || !kty)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWK member \"kty\" is missing or not a string");
        if (get_string(obj, "use", &use) < 0)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWK member \"use\" is not a string");
        if (get_string(obj, "kid", &kid) < 0)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWK member \"kid\" is not a string");
        if (kid && strlen(kid) > JWK_KID_MAX)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWK member \"kid\" is longer than %d bytes", JWK_KID_MAX);
        if (get_string(obj, "alg", &alg) < 0)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWK member \"alg\" is not a string");

        /* Not for signatures, or not a kind of key we verify with: skip. */
        if (use && !streq(use, "sig"))
                return JWK_SKIP;
        if (ops_exclude_verify(obj))
                return JWK_SKIP;
        if (streq(kty, "RSA"))
                k.kty = LK_KTY_RSA;
        else if (streq(kty, "EC"))
                k.kty = LK_KTY_EC;
        else
                return JWK_SKIP;
        if (alg) {
                alg_bit = lk_alg_from_name(alg);
                /* PS256, RSA-OAEP, EdDSA...: never used for an id_token we accept. */
                if (alg_bit == 0)
                        return JWK_SKIP;
        }

        if (k.kty == LK_KTY_EC) {
                if (get_string(obj, "crv", &crv) < 0 || !crv)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "EC JWK member \"crv\" is missing or not a string");
                c = curve_by_name(crv);
                if (!c)
                        return JWK_SKIP;
                k.curve_nid = c->nid;
        }

        if (alg_bit) {
                bool fits;

                if (k.kty == LK_KTY_RSA)
                        fits = alg_bit & (LK_ALG_RS256 | LK_ALG_RS384 | LK_ALG_RS512);
                else
                        fits = (alg_bit == LK_ALG_ES256 && c->nid == NID_X9_62_prime256v1) ||
                               (alg_bit == LK_ALG_ES384 && c->nid == NID_secp384r1) ||
                               (alg_bit == LK_ALG_ES512 && c->nid == NID_secp521r1);
                if (!fits)
                        return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                            "JWK of type %s%s%s names alg \"%s\", "
                                            "which does not fit it",
                                            kty, c ? " " : "", c ? c->crv : "", alg);
        }

        if (k.kty == LK_KTY_RSA)
                r = rsa_from_json(obj, &k.pkey, e);
        else
                r = ec_from_json(obj, c, &k.pkey, e);
        if (r < 0)
                return r;

        r = prepare_verify(&k, alg_bit, c, e);
        if (r < 0)
                return r;
        if (kid) {
                k.kid = strdup(kid);
                if (!k.kid)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        if (alg) {
                k.alg = strdup(alg);
                if (!k.alg)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        *ret = k;
        k = (struct lk_jwk){0};
        return 0;
}

void lk_jwks_free(struct lk_jwks *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n; i++)
                lk_jwk_clear(&s->keys[i]);
        free(s->keys);
        free(s);
}

int lk_jwks_parse(const char *body, size_t len, struct lk_jwks **ret, struct lk_error *e)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(lk_jwks_freep) struct lk_jwks *s = NULL;
        json_error_t jerr;
        const json_t *keys, *v;
        size_t i, count, skipped = 0;

        if (!body)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE, "JWKS document is missing");
        if (len > JWKS_MAX_SIZE)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWKS document of %zu bytes is larger than %d", len,
                                    JWKS_MAX_SIZE);
        doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWKS document is not JSON (line %d: %s)", jerr.line,
                                    jerr.text);
        keys = json_object_get(doc, "keys");
        if (!json_is_array(keys))
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWKS document has no \"keys\" array");
        count = json_array_size(keys);
        if (count > LK_JWKS_MAX_KEYS)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWKS document has %zu keys, at most %d are allowed", count,
                                    LK_JWKS_MAX_KEYS);

        s = calloc(1, sizeof(*s));
        if (!s)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        if (count > 0) {
                s->keys = calloc(count, sizeof(*s->keys));
                if (!s->keys)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }

        json_array_foreach(keys, i, v) {
                struct lk_error ke = {0};
                const char *kid = NULL;
                int r;

                r = lk_jwk_from_json(v, &s->keys[s->n], &ke);
                if (r == JWK_SKIP) {
                        skipped++;
                        continue;
                }
                if (r < 0) {
                        if (json_is_object(v))
                                (void)get_string(v, "kid", &kid);
                        return lk_error_set(e, -r, "JWKS key %zu (kid \"%s\"): %s", i,
                                            LK_ESCAPED(kid), ke.message);
                }
                s->n++;
        }
        if (s->n == 0)
                return lk_error_set(e, LK_ERR_PROVIDER_RESPONSE,
                                    "JWKS document has no usable signing key (%zu skipped)",
                                    skipped);
        *ret = TAKE_PTR(s);
        return 0;
}
