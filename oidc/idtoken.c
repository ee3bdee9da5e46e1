/* SPDX-License-Identifier: MIT */
/*
 * id_token verification (SPEC §6). The token is split and parsed here, and
 * every decision is ours: which algorithm, which key, which claims. Only then
 * is the signature checked with OpenSSL directly (strict lengths, constant-time
 * HMAC comparison); an HS* signature is then checked by libjwt 1.10 as well, and
 * both must agree (RS* and ES*: see verify_with_key). libjwt alone would not do:
 * it takes any PEM as an HMAC secret, compares HMACs with strcmp, and its base64
 * decoding is lenient. The claims come from our own parse of the payload, never
 * from libjwt's.
 */
#include "oidc/idtoken.h"

#include <inttypes.h>
#include <jwt.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/cleanup_openssl.h"
#include "base/text.h"
#include "oidc/b64url.h"
#include "oidc/secret.h"

#define TOKEN_MAX_SIZE (64 * 1024)

#define ALG_RS (LK_ALG_RS256 | LK_ALG_RS384 | LK_ALG_RS512)
#define ALG_ES (LK_ALG_ES256 | LK_ALG_ES384 | LK_ALG_ES512)
#define ALG_HS (LK_ALG_HS256 | LK_ALG_HS384 | LK_ALG_HS512)

static const char *const check_names[] = {
        [LK_IDT_OK] = "ok",
        [LK_IDT_MALFORMED] = "malformed",
        [LK_IDT_ALG_NONE] = "alg-none",
        [LK_IDT_ALG_NOT_ALLOWED] = "alg-not-allowed",
        [LK_IDT_NO_SECRET] = "no-secret",
        [LK_IDT_UNKNOWN_KID] = "unknown-kid",
        [LK_IDT_NO_MATCHING_KEY] = "no-matching-key",
        [LK_IDT_KEY_MISMATCH] = "key-mismatch",
        [LK_IDT_BAD_SIGNATURE] = "signature",
        [LK_IDT_ISS] = "iss",
        [LK_IDT_AUD] = "aud",
        [LK_IDT_AZP] = "azp",
        [LK_IDT_EXP] = "exp",
        [LK_IDT_IAT] = "iat",
        [LK_IDT_NBF] = "nbf",
        [LK_IDT_SUB] = "sub",
        [LK_IDT_NONCE] = "nonce",
        [LK_IDT_CHANGED_ISS_SUB] = "changed-iss-sub",
};

const char *lk_idtoken_check_name(enum lk_idtoken_check c)
{
        if ((unsigned)c >= ELEMENTSOF(check_names) || !check_names[c])
                return "unknown";
        return check_names[c];
}

/* Every refusal goes through here, so each message names its check first. */
#define refuse(e, check, fmt, ...)                                                          \
        lk_error_set_detail((e), LK_ERR_INVALID_ID_TOKEN, (check),                          \
                            "id_token refused (%s): " fmt, lk_idtoken_check_name(check),    \
                            ##__VA_ARGS__)

struct jws {
        const char *token;
        size_t signing_input_len;   /* header.payload, as the signature covers it */
        json_t *header;
        json_t *payload;
        unsigned char *sig;
        size_t sig_len;
};

static void jws_done(struct jws *j)
{
        if (j->header)
                json_decref(j->header);
        if (j->payload)
                json_decref(j->payload);
        free(j->sig);
}

/* One base64url part holding a JSON object. */
static int decode_json_part(const char *s, size_t len, const char *what, json_t **ret,
                            struct lk_error *e)
{
        _cleanup_free_ unsigned char *raw = NULL;
        json_error_t jerr;
        size_t raw_len;
        json_t *j;
        int r;

        if (len == 0)
                return refuse(e, LK_IDT_MALFORMED, "the %s is empty", what);
        r = lk_b64url_decode(s, len, &raw, &raw_len);
        if (r == -LK_ERR_NOMEM)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        if (r < 0)
                return refuse(e, LK_IDT_MALFORMED, "the %s is not base64url", what);
        /* A NUL would make us and libjwt (which uses C strings) read different JSON. */
        if (memchr(raw, 0, raw_len))
                return refuse(e, LK_IDT_MALFORMED, "the %s holds a NUL byte", what);
        /* Duplicate names are refused: two "alg" or two "iss" must never be read two ways. */
        j = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, &jerr);
        explicit_bzero(raw, raw_len);
        /* Not jerr.text: it quotes the input near the fault, and the payload holds the nonce. */
        if (!j)
                return refuse(e, LK_IDT_MALFORMED, "the %s is not JSON (at byte %d)", what,
                              jerr.position);
        if (!json_is_object(j)) {
                json_decref(j);
                return refuse(e, LK_IDT_MALFORMED, "the %s is not a JSON object", what);
        }
        *ret = j;
        return 0;
}

static int jws_split(const char *token, struct jws *ret, struct lk_error *e)
{
        struct jws j = { .token = token };
        const char *dot1, *dot2;
        size_t len;
        int r;

        if (!token)
                return refuse(e, LK_IDT_MALFORMED, "there is no token");
        len = strnlen(token, TOKEN_MAX_SIZE + 1);
        if (len > TOKEN_MAX_SIZE)
                return refuse(e, LK_IDT_MALFORMED, "the token is larger than %d bytes",
                              TOKEN_MAX_SIZE);
        dot1 = memchr(token, '.', len);
        dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
        if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
                return refuse(e, LK_IDT_MALFORMED,
                              "the token is not three dot-separated parts (compact JWS)");

        r = decode_json_part(token, (size_t)(dot1 - token), "header", &j.header, e);
        if (r < 0)
                goto fail;
        r = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), "payload", &j.payload, e);
        if (r < 0)
                goto fail;
        r = lk_b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), &j.sig, &j.sig_len);
        if (r == -LK_ERR_NOMEM) {
                r = lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                goto fail;
        }
        if (r < 0) {
                r = refuse(e, LK_IDT_MALFORMED, "the signature is not base64url");
                goto fail;
        }
        j.signing_input_len = (size_t)(dot2 - token);
        *ret = j;
        return 0;
fail:
        jws_done(&j);
        return r;
}

static const EVP_MD *alg_md(unsigned alg)
{
        return lk_jwk_hash_md(lk_jwk_hash_of(alg));
}

static jwt_alg_t alg_libjwt(unsigned alg)
{
        switch (alg) {
        case LK_ALG_RS256: return JWT_ALG_RS256;
        case LK_ALG_RS384: return JWT_ALG_RS384;
        case LK_ALG_RS512: return JWT_ALG_RS512;
        case LK_ALG_ES256: return JWT_ALG_ES256;
        case LK_ALG_ES384: return JWT_ALG_ES384;
        case LK_ALG_ES512: return JWT_ALG_ES512;
        case LK_ALG_HS256: return JWT_ALG_HS256;
        case LK_ALG_HS384: return JWT_ALG_HS384;
        case LK_ALG_HS512: return JWT_ALG_HS512;
        }
        return JWT_ALG_INVAL;
}

/* The curve an ES* algorithm needs, and its coordinate size. */
static int alg_curve(unsigned alg, size_t *ret_size)
{
        switch (alg) {
        case LK_ALG_ES256: *ret_size = 32; return NID_X9_62_prime256v1;
        case LK_ALG_ES384: *ret_size = 48; return NID_secp384r1;
        case LK_ALG_ES512: *ret_size = 66; return NID_secp521r1;
        }
        *ret_size = 0;
        return NID_undef;
}

/* Is the key of the algorithm's family (kty, and crv for EC)? */
static bool key_fits_alg(const struct lk_jwk *k, unsigned alg)
{
        size_t size;

        if (alg & ALG_RS)
                return k->kty == LK_KTY_RSA;
        if (alg & ALG_ES)
                return k->kty == LK_KTY_EC && k->curve_nid == alg_curve(alg, &size);
        return false; /* HS* never uses a JWKS key */
}

static const char *key_family(const struct lk_jwk *k)
{
        if (k->kty == LK_KTY_RSA)
                return "RSA";
        switch (k->curve_nid) {
        case NID_X9_62_prime256v1: return "EC P-256";
        case NID_secp384r1: return "EC P-384";
        case NID_secp521r1: return "EC P-521";
        }
        return "EC";
}

/* JOSE's ECDSA signature is R || S of fixed size; OpenSSL wants DER. */
static int ecdsa_der(const unsigned char *sig, size_t size, unsigned char **ret, size_t *ret_len)
{
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *s = NULL;
        _cleanup_(BN_freep) BIGNUM *r = NULL, *sv = NULL;
        unsigned char *der = NULL;
        int len;

        r = BN_bin2bn(sig, (int)size, NULL);
        sv = BN_bin2bn(sig + size, (int)size, NULL);
        s = ECDSA_SIG_new();
        if (!r || !sv || !s || ECDSA_SIG_set0(s, r, sv) != 1)
                return -LK_ERR_NOMEM;
        r = sv = NULL; /* owned by s now */
        len = i2d_ECDSA_SIG(s, &der);
        if (len <= 0)
                return -LK_ERR_NOMEM;
        *ret = der;
        *ret_len = (size_t)len;
        return 0;
}

/*
 * RS* and ES*: OpenSSL's verdict alone. libjwt 1.10 (its OpenSSL flavour, the one we link)
 * would verify these by PEM_read_bio_PUBKEY on a PEM of this very key, then
 * EVP_DigestVerify over the same signing input: the check made here, by the same library on
 * the same key, so its "yes" would add no second judgement of the signature.
 * Its own parts would be its lenient base64 and its R||S handling, where ours are stricter
 * (exact signature length, canonical base64url), and the PEM decode, which OpenSSL 3.0 runs
 * through its decoder framework: ~4 M instructions (~1.3 ms) per token, nine tenths of a
 * login's CPU time in the broker. HS* keeps both checks (libjwt's HMAC is cheap): there
 * libjwt computes the MAC itself from the secret. A signature OpenSSL refuses is refused
 * either way; nothing OpenSSL refuses can be accepted.
 *
 * Returns 1 verified, 0 not, negative on error: the digest of the signing input, then one
 * EVP_PKEY_verify with the context the key keeps for that hash (jwks.h).
 */
static int verify_with_key(const struct jws *j, unsigned alg, const struct lk_jwk *k)
{
        EVP_PKEY_CTX *ctx = k->verify[lk_jwk_hash_of(alg)];
        unsigned char digest[EVP_MAX_MD_SIZE], *der = NULL;
        unsigned int digest_len = 0;
        const unsigned char *sig = j->sig;
        size_t sig_len = j->sig_len, size;
        int r;

        if (!ctx)
                return 0;
        if (alg & ALG_ES) {
                (void)alg_curve(alg, &size);
                if (j->sig_len != 2 * size)
                        return 0;
                r = ecdsa_der(j->sig, size, &der, &sig_len);
                if (r < 0)
                        return r;
                sig = der;
        } else if (EVP_PKEY_get_size(k->pkey) <= 0 ||
                   j->sig_len != (size_t)EVP_PKEY_get_size(k->pkey)) {
                return 0;
        }

        if (EVP_Digest(j->token, j->signing_input_len, digest, &digest_len, alg_md(alg), NULL) != 1) {
                OPENSSL_free(der);
                return -LK_ERR_NOMEM;
        }
        r = EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1;
        OPENSSL_free(der);
        return r;
}

static int openssl_verify_hmac(const struct jws *j, unsigned alg, const char *secret)
{
        unsigned char mac[EVP_MAX_MD_SIZE];
        size_t mac_len = 0;
        int r;

        if (!EVP_Q_mac(NULL, "HMAC", NULL, EVP_MD_get0_name(alg_md(alg)), NULL, secret,
                       strlen(secret), (const unsigned char *)j->token, j->signing_input_len,
                       mac, sizeof(mac), &mac_len))
                return -LK_ERR_NOMEM;
        r = mac_len == j->sig_len && CRYPTO_memcmp(mac, j->sig, mac_len) == 0;
        explicit_bzero(mac, sizeof(mac));
        return r;
}

/*
 * libjwt's view, asked only once our own check passed, with the key and
 * algorithm we chose (so its strcmp of HMACs never sees a wrong guess).
 */
static bool libjwt_agrees(const struct jws *j, unsigned alg, const char *key)
{
        jwt_t *jwt = NULL;
        bool ok;

        if (jwt_decode(&jwt, j->token, (const unsigned char *)key, (int)strlen(key)) != 0 || !jwt)
                return false;
        ok = jwt_get_alg(jwt) == alg_libjwt(alg);
        jwt_free(jwt);
        return ok;
}

static int verify_signature(const struct jws *j, unsigned alg, const char *alg_name,
                            const struct lk_idtoken_params *p, const struct lk_jwks *keys,
                            struct lk_error *e)
{
        const json_t *kid_json = json_object_get(j->header, "kid");
        const char *kid = NULL;
        const struct lk_jwk *refused = NULL;
        size_t n = keys ? keys->n : 0, named = 0, tried = 0;
        int r;

        if (kid_json) {
                if (!json_is_string(kid_json))
                        return refuse(e, LK_IDT_MALFORMED, "the header's kid is not a string");
                kid = json_string_value(kid_json);
        }

        if (alg & ALG_HS) {
                /* Only the client secret, never a JWKS key, whatever kid says. */
                if (isempty(p->client_secret))
                        return refuse(e, LK_IDT_NO_SECRET,
                                      "alg %s needs the client secret, and none is configured",
                                      alg_name);
                r = openssl_verify_hmac(j, alg, p->client_secret);
                if (r < 0)
                        return lk_error_set(e, LK_ERR_NOMEM, "Cannot compute an HMAC");
                if (r == 0 || !libjwt_agrees(j, alg, p->client_secret))
                        return refuse(e, LK_IDT_BAD_SIGNATURE,
                                      "the %s signature does not match the client secret",
                                      alg_name);
                return 0;
        }

        for (size_t i = 0; i < n; i++) {
                const struct lk_jwk *k = &keys->keys[i];

                if (kid) {
                        if (!k->kid || !streq(k->kid, kid))
                                continue;
                        named++;
                }
                if (!key_fits_alg(k, alg) || (k->alg && !streq(k->alg, alg_name))) {
                        refused = k;
                        continue;
                }
                tried++;
                r = verify_with_key(j, alg, k);
                if (r < 0)
                        return lk_error_set(e, LK_ERR_NOMEM, "Cannot verify a signature");
                if (r > 0)
                        return 0;
        }

        if (kid && named == 0)
                return refuse(e, LK_IDT_UNKNOWN_KID, "no key has kid \"%s\"", LK_ESCAPED(kid));
        if (kid && tried == 0)
                return refuse(e, LK_IDT_KEY_MISMATCH,
                              "alg %s cannot use key \"%s\" (%s%s%s%s)", alg_name,
                              LK_ESCAPED(kid), key_family(refused),
                              refused->alg ? ", meant for " : "", refused->alg ? refused->alg : "",
                              refused->alg ? " only" : "");
        if (tried == 0)
                return refuse(e, LK_IDT_NO_MATCHING_KEY, "no key of the set fits alg %s",
                              alg_name);
        if (kid)
                return refuse(e, LK_IDT_BAD_SIGNATURE, "the %s signature does not match key \"%s\"",
                              alg_name, LK_ESCAPED(kid));
        return refuse(e, LK_IDT_BAD_SIGNATURE,
                      "the %s signature matches none of the %zu keys that fit", alg_name, tried);
}

/* Header checks, then the signature. On success the algorithm is known good. */
static int check_header_and_signature(const struct jws *j, const struct lk_idtoken_params *p,
                                      const struct lk_jwks *keys, struct lk_error *e)
{
        const json_t *v;
        const char *alg_name;
        unsigned alg;

        v = json_object_get(j->header, "alg");
        if (!json_is_string(v))
                return refuse(e, LK_IDT_ALG_NOT_ALLOWED, "the header has no alg string");
        alg_name = json_string_value(v);
        if (strcasecmp(alg_name, "none") == 0)
                return refuse(e, LK_IDT_ALG_NONE, "alg \"%s\" (unsigned) is never accepted",
                              LK_ESCAPED(alg_name));
        alg = lk_alg_from_name(alg_name);
        if (alg == 0 || !(p->algorithms & alg))
                return refuse(e, LK_IDT_ALG_NOT_ALLOWED,
                              "alg \"%s\" is not in id_token_algorithms", LK_ESCAPED(alg_name));

        /* RFC 7515 §4.1.11: extensions we do not understand must not be ignored. */
        if (json_object_get(j->header, "crit"))
                return refuse(e, LK_IDT_MALFORMED, "the header has \"crit\" extensions");
        /* libjwt refuses any other typ; saying so here gives the true reason. */
        v = json_object_get(j->header, "typ");
        if (v && (!json_is_string(v) || strcasecmp(json_string_value(v), "JWT") != 0))
                return refuse(e, LK_IDT_MALFORMED, "the header's typ is not \"JWT\"");

        return verify_signature(j, alg, alg_name, p, keys, e);
}

/* A NumericDate, rounded the strict way (down for exp, up for iat and nbf). */
static bool numeric_date(const json_t *v, bool round_up, int64_t *ret)
{
        double d;

        if (json_is_integer(v)) {
                *ret = (int64_t)json_integer_value(v);
                return true;
        }
        if (!json_is_real(v))
                return false;
        d = round_up ? ceil(json_real_value(v)) : floor(json_real_value(v));
        if (d >= 9.2e18)
                *ret = INT64_MAX;
        else if (d <= -9.2e18)
                *ret = INT64_MIN;
        else
                *ret = (int64_t)d;
        return true;
}

static int check_aud(const json_t *c, const struct lk_idtoken_params *p, struct lk_error *e)
{
        const json_t *aud = json_object_get(c, "aud"), *v, *azp;
        size_t i, n = 0;
        bool ours = false;

        if (json_is_string(aud)) {
                n = 1;
                ours = streq(json_string_value(aud), p->client_id);
                if (!ours)
                        return refuse(e, LK_IDT_AUD, "aud \"%s\" is not client_id \"%s\"",
                                      LK_ESCAPED(json_string_value(aud)), LK_ESCAPED(p->client_id));
        } else if (json_is_array(aud)) {
                n = json_array_size(aud);
                if (n == 0)
                        return refuse(e, LK_IDT_AUD, "aud is an empty array");
                json_array_foreach(aud, i, v) {
                        if (!json_is_string(v))
                                return refuse(e, LK_IDT_AUD,
                                              "aud holds a value that is not a string");
                        if (streq(json_string_value(v), p->client_id))
                                ours = true;
                }
                if (!ours)
                        return refuse(e, LK_IDT_AUD,
                                      "none of the %zu aud values (first \"%s\") "
                                      "is client_id \"%s\"",
                                      n, LK_ESCAPED(json_string_value(json_array_get(aud, 0))),
                                      LK_ESCAPED(p->client_id));
        } else {
                return refuse(e, LK_IDT_AUD, "aud is missing or not a string or array");
        }

        azp = json_object_get(c, "azp");
        if (azp) {
                if (!json_is_string(azp))
                        return refuse(e, LK_IDT_AZP, "azp is not a string");
                if (!streq(json_string_value(azp), p->client_id))
                        return refuse(e, LK_IDT_AZP, "azp \"%s\" is not client_id \"%s\"",
                                      LK_ESCAPED(json_string_value(azp)), LK_ESCAPED(p->client_id));
        } else if (n > 1) {
                return refuse(e, LK_IDT_AZP, "aud has %zu values but there is no azp", n);
        }
        return 0;
}

static int check_times(const json_t *c, const struct lk_idtoken_params *p, struct lk_error *e)
{
        const __int128 now = p->now, skew = p->clock_skew;
        const json_t *v;
        int64_t t;

        if (!numeric_date(json_object_get(c, "exp"), false, &t))
                return refuse(e, LK_IDT_EXP, "exp is missing or not a number");
        if (!(now < (__int128)t + skew))
                return refuse(e, LK_IDT_EXP,
                              "the token expired at %" PRId64 " (now %" PRId64 ", clock_skew %u)",
                              t, p->now, p->clock_skew);

        if (!numeric_date(json_object_get(c, "iat"), true, &t))
                return refuse(e, LK_IDT_IAT, "iat is missing or not a number");
        if (!((__int128)t <= now + skew))
                return refuse(e, LK_IDT_IAT,
                              "the token is issued in the future, at %" PRId64
                              " (now %" PRId64 ", clock_skew %u)",
                              t, p->now, p->clock_skew);

        v = json_object_get(c, "nbf");
        if (v) {
                if (!numeric_date(v, true, &t))
                        return refuse(e, LK_IDT_NBF, "nbf is not a number");
                if (!(now >= (__int128)t - skew))
                        return refuse(e, LK_IDT_NBF,
                                      "the token is not valid before %" PRId64
                                      " (now %" PRId64 ", clock_skew %u)",
                                      t, p->now, p->clock_skew);
        }
        return 0;
}

static int check_nonce(const json_t *c, const struct lk_idtoken_params *p, struct lk_error *e)
{
        const json_t *v = json_object_get(c, "nonce");

        if (p->nonce_mode == LK_NONCE_OFF)
                return 0;
        /* On refresh there is no nonce of ours (OIDC Core §12.2: the provider may echo the old one). */
        if (!p->nonce && p->previous_claims)
                return 0;
        if (!v) {
                if (p->nonce_mode == LK_NONCE_IF_PRESENT)
                        return 0;
                return refuse(e, LK_IDT_NONCE, "the token has no nonce, and nonce = required");
        }
        if (!json_is_string(v))
                return refuse(e, LK_IDT_NONCE, "nonce is not a string");
        if (!lk_secret_equal(json_string_value(v), p->nonce))
                return refuse(e, LK_IDT_NONCE, "nonce is not the one sent with the request");
        return 0;
}

static int check_previous(const json_t *c, const struct lk_idtoken_params *p, struct lk_error *e)
{
        const char *iss, *sub;

        if (!p->previous_claims)
                return 0;
        iss = json_string_value(json_object_get(p->previous_claims, "iss"));
        sub = json_string_value(json_object_get(p->previous_claims, "sub"));
        if (!iss || !streq_ptr(iss, json_string_value(json_object_get(c, "iss"))))
                return refuse(e, LK_IDT_CHANGED_ISS_SUB, "iss differs from the login's id_token");
        if (!sub || !streq_ptr(sub, json_string_value(json_object_get(c, "sub"))))
                return refuse(e, LK_IDT_CHANGED_ISS_SUB, "sub differs from the login's id_token");
        return 0;
}

static int check_claims(const json_t *c, const struct lk_idtoken_params *p, struct lk_error *e)
{
        const json_t *v;
        int r;

        v = json_object_get(c, "iss");
        if (!json_is_string(v))
                return refuse(e, LK_IDT_ISS, "iss is missing or not a string");
        if (!streq(json_string_value(v), p->issuer))
                return refuse(e, LK_IDT_ISS, "iss \"%s\" is not the issuer \"%s\"",
                              LK_ESCAPED(json_string_value(v)), LK_ESCAPED(p->issuer));

        r = check_aud(c, p, e);
        if (r < 0)
                return r;
        r = check_times(c, p, e);
        if (r < 0)
                return r;

        v = json_object_get(c, "sub");
        if (!json_is_string(v) || isempty(json_string_value(v)))
                return refuse(e, LK_IDT_SUB, "sub is missing, empty or not a string");

        r = check_nonce(c, p, e);
        if (r < 0)
                return r;
        return check_previous(c, p, e);
}

int lk_idtoken_verify(const char *token, const struct lk_idtoken_params *p,
                      const struct lk_jwks *keys, json_t **ret_claims, struct lk_error *e)
{
        struct jws j = {0};
        int r;

        if (!p || !p->issuer || !p->client_id || !ret_claims)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "id_token verification needs an issuer and a client_id");

        r = jws_split(token, &j, e);
        if (r < 0)
                return r;
        r = check_header_and_signature(&j, p, keys, e);
        if (r >= 0)
                r = check_claims(j.payload, p, e);
        if (r >= 0)
                *ret_claims = json_incref(j.payload);
        jws_done(&j);
        return r < 0 ? r : 0;
}
