/* SPDX-License-Identifier: MIT */
/* TEST-ONLY: see jwt_forge.h. */
#include "tests/unit/jwt_forge.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "oidc/b64url.h"

struct jwt_forge_key {
        enum jwt_forge_kind kind;
        EVP_PKEY *pkey;
};

static const char *curve_of(enum jwt_forge_kind kind, size_t *size)
{
        switch (kind) {
        case JWT_FORGE_P256: *size = 32; return "P-256";
        case JWT_FORGE_P384: *size = 48; return "P-384";
        case JWT_FORGE_P521: *size = 66; return "P-521";
        default: *size = 0; return NULL;
        }
}

struct jwt_forge_key *jwt_forge_key_new(enum jwt_forge_kind kind)
{
        struct jwt_forge_key *k;
        const char *crv;
        size_t size;

        k = calloc(1, sizeof(*k));
        if (!k)
                return NULL;
        k->kind = kind;
        if (kind == JWT_FORGE_RSA2048 || kind == JWT_FORGE_RSA1024) {
                k->pkey = EVP_RSA_gen(kind == JWT_FORGE_RSA2048 ? 2048 : 1024);
        } else {
                crv = curve_of(kind, &size);
                k->pkey = crv ? EVP_EC_gen(crv) : NULL;
        }
        if (!k->pkey) {
                free(k);
                return NULL;
        }
        return k;
}

void jwt_forge_key_free(struct jwt_forge_key *k)
{
        if (!k)
                return;
        EVP_PKEY_free(k->pkey);
        free(k);
}

EVP_PKEY *jwt_forge_key_pkey(const struct jwt_forge_key *k)
{
        return k->pkey;
}

char *jwt_forge_b64url(const void *data, size_t len)
{
        return lk_b64url_encode(data, len);
}

/* A big-number parameter of the key as base64url, left-padded to pad bytes (0: minimal). */
static char *bn_param_b64(EVP_PKEY *pkey, const char *name, size_t pad)
{
        BIGNUM *bn = NULL;
        unsigned char buf[1024];
        size_t len;
        char *out = NULL;

        if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
                return NULL;
        len = pad ? pad : (size_t)BN_num_bytes(bn);
        if (len <= sizeof(buf) && BN_bn2binpad(bn, buf, (int)len) == (int)len)
                out = lk_b64url_encode(buf, len);
        BN_free(bn);
        return out;
}

char *jwt_forge_jwk(const struct jwt_forge_key *k, const char *kid, const char *alg)
{
        char *a = NULL, *b = NULL, *out = NULL, *extra = NULL;
        const char *crv;
        size_t size;
        int r;

        r = asprintf(&extra, "%s%s%s%s%s%s", kid ? ",\"kid\":\"" : "", kid ? kid : "",
                     kid ? "\"" : "", alg ? ",\"alg\":\"" : "", alg ? alg : "", alg ? "\"" : "");
        if (r < 0)
                return NULL;
        crv = curve_of(k->kind, &size);
        if (!crv) {
                a = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
                b = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
                if (a && b && asprintf(&out, "{\"kty\":\"RSA\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"%s}",
                                       a, b, extra) < 0)
                        out = NULL;
        } else {
                a = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, size);
                b = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, size);
                if (a && b &&
                    asprintf(&out,
                             "{\"kty\":\"EC\",\"use\":\"sig\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}",
                             crv, a, b, extra) < 0)
                        out = NULL;
        }
        free(a);
        free(b);
        free(extra);
        return out;
}

char *jwt_forge_jwks(const char *const *jwks)
{
        size_t len = sizeof("{\"keys\":[]}");
        char *out;

        for (size_t i = 0; jwks[i]; i++)
                len += strlen(jwks[i]) + 1;
        out = malloc(len);
        if (!out)
                return NULL;
        out[0] = 0;
        strncat(out, "{\"keys\":[", len - 1);
        for (size_t i = 0; jwks[i]; i++) {
                if (i > 0)
                        strncat(out, ",", len - strlen(out) - 1);
                strncat(out, jwks[i], len - strlen(out) - 1);
        }
        strncat(out, "]}", len - strlen(out) - 1);
        return out;
}

char *jwt_forge_public_pem(const struct jwt_forge_key *k)
{
        BIO *bio = BIO_new(BIO_s_mem());
        char *data, *out = NULL;
        long len;

        if (!bio)
                return NULL;
        if (PEM_write_bio_PUBKEY(bio, k->pkey) == 1) {
                len = BIO_get_mem_data(bio, &data);
                if (len > 0)
                        out = strndup(data, (size_t)len);
        }
        BIO_free(bio);
        return out;
}

/* b64url(header) "." b64url(payload), the signing input. */
static char *signing_input(const char *header_json, const char *payload_json)
{
        char *h = lk_b64url_encode((const unsigned char *)header_json, strlen(header_json));
        char *p = lk_b64url_encode((const unsigned char *)payload_json, strlen(payload_json));
        char *out = NULL;

        if (h && p && asprintf(&out, "%s.%s", h, p) < 0)
                out = NULL;
        free(h);
        free(p);
        return out;
}

static char *finish(char *input, const unsigned char *sig, size_t sig_len)
{
        char *s = lk_b64url_encode(sig, sig_len);
        char *out = NULL;

        if (s && asprintf(&out, "%s.%s", input, s) < 0)
                out = NULL;
        free(s);
        free(input);
        return out;
}

static const EVP_MD *md_of(const char *alg)
{
        if (strlen(alg) != 5)
                return NULL;
        if (streq(alg + 2, "256"))
                return EVP_sha256();
        if (streq(alg + 2, "384"))
                return EVP_sha384();
        if (streq(alg + 2, "512"))
                return EVP_sha512();
        return NULL;
}

char *jwt_forge_sign(const char *header_json, const char *payload_json, const char *alg,
                     const struct jwt_forge_key *k)
{
        const EVP_MD *md = md_of(alg);
        EVP_MD_CTX *ctx = NULL;
        unsigned char der[1024], rs[2 * 66];
        const unsigned char *p = der;
        ECDSA_SIG *es = NULL;
        size_t der_len = sizeof(der), size;
        char *input, *out = NULL;

        if (!md || (strncmp(alg, "RS", 2) != 0 && strncmp(alg, "ES", 2) != 0))
                return NULL;
        input = signing_input(header_json, payload_json);
        ctx = EVP_MD_CTX_new();
        if (!input || !ctx || EVP_DigestSignInit(ctx, NULL, md, NULL, k->pkey) != 1 ||
            EVP_DigestSign(ctx, der, &der_len, (const unsigned char *)input, strlen(input)) != 1)
                goto done;
        if (alg[0] == 'R') {
                out = finish(TAKE_PTR(input), der, der_len);
                goto done;
        }
        /* ECDSA: OpenSSL gives DER, JOSE wants R || S, each of the curve's size. */
        if (!curve_of(k->kind, &size))
                goto done;
        es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        if (!es || BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, (int)size) != (int)size ||
            BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + size, (int)size) != (int)size)
                goto done;
        out = finish(TAKE_PTR(input), rs, 2 * size);
done:
        ECDSA_SIG_free(es);
        EVP_MD_CTX_free(ctx);
        free(input);
        return out;
}

char *jwt_forge_sign_hmac(const char *header_json, const char *payload_json, const char *alg,
                          const void *key, size_t key_len)
{
        const EVP_MD *md = md_of(alg);
        unsigned char mac[EVP_MAX_MD_SIZE];
        size_t mac_len = 0;
        char *input;

        if (!md || strncmp(alg, "HS", 2) != 0)
                return NULL;
        input = signing_input(header_json, payload_json);
        if (!input)
                return NULL;
        if (!EVP_Q_mac(NULL, "HMAC", NULL, EVP_MD_get0_name(md), NULL, key, key_len,
                       (const unsigned char *)input, strlen(input), mac, sizeof(mac), &mac_len)) {
                free(input);
                return NULL;
        }
        return finish(input, mac, mac_len);
}

char *jwt_forge_unsigned(const char *header_json, const char *payload_json)
{
        char *input = signing_input(header_json, payload_json);
        char *out = NULL;

        if (input && asprintf(&out, "%s.", input) < 0)
                out = NULL;
        free(input);
        return out;
}
