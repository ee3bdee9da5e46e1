/* SPDX-License-Identifier: MIT */
/* lk_idtoken_verify against tokens forged at run time (jwt_forge.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/idtoken.h"
#include "oidc/jwks.h"
#include "tests/unit/jwt_forge.h"

#define ISS "https://idp.example.com/api/v1/oauth2"
#define CLIENT "latchkey-client"
#define SECRET "client-secret-for-tests-0123456789"
#define NONCE "n-0S6_WzA2Mj-nonce"
#define NOW INT64_C(1700000000)
#define SKEW 60

static struct jwt_forge_key *rsa1, *rsa2, *p256, *p384;
static struct lk_jwks *all_keys;     /* rsa1, rsa2, ec256, ec384, each with kid */
static struct lk_jwks *one_rsa;      /* rsa1, no kid */
static struct lk_jwks *two_rsa;      /* rsa2 then rsa1, no kid */
static struct lk_jwks *rs256_only;   /* rsa1 with kid "pinned" and alg RS256 */

static struct lk_jwks *make_set(const char *const *jwks)
{
        char *doc = jwt_forge_jwks(jwks);
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};

        if (!doc || lk_jwks_parse(doc, strlen(doc), &s, &e) < 0)
                s = NULL;
        free(doc);
        return s;
}

static int setup(void **state)
{
        char *a, *b, *c, *d, *a0, *b0, *pin;

        rsa1 = jwt_forge_key_new(JWT_FORGE_RSA2048);
        rsa2 = jwt_forge_key_new(JWT_FORGE_RSA2048);
        p256 = jwt_forge_key_new(JWT_FORGE_P256);
        p384 = jwt_forge_key_new(JWT_FORGE_P384);
        if (!rsa1 || !rsa2 || !p256 || !p384)
                return -1;
        a = jwt_forge_jwk(rsa1, "rsa1", NULL);
        b = jwt_forge_jwk(rsa2, "rsa2", NULL);
        c = jwt_forge_jwk(p256, "ec256", NULL);
        d = jwt_forge_jwk(p384, "ec384", NULL);
        a0 = jwt_forge_jwk(rsa1, NULL, NULL);
        b0 = jwt_forge_jwk(rsa2, NULL, NULL);
        pin = jwt_forge_jwk(rsa1, "pinned", "RS256");
        all_keys = make_set((const char *const[]){ a, b, c, d, NULL });
        one_rsa = make_set((const char *const[]){ a0, NULL });
        two_rsa = make_set((const char *const[]){ b0, a0, NULL });
        rs256_only = make_set((const char *const[]){ pin, NULL });
        free(a);
        free(b);
        free(c);
        free(d);
        free(a0);
        free(b0);
        free(pin);
        return all_keys && one_rsa && two_rsa && rs256_only ? 0 : -1;
}

static int teardown(void **state)
{
        lk_jwks_free(all_keys);
        lk_jwks_free(one_rsa);
        lk_jwks_free(two_rsa);
        lk_jwks_free(rs256_only);
        jwt_forge_key_free(rsa1);
        jwt_forge_key_free(rsa2);
        jwt_forge_key_free(p256);
        jwt_forge_key_free(p384);
        return 0;
}

static struct lk_idtoken_params params(void)
{
        return (struct lk_idtoken_params){
                .issuer = ISS,
                .client_id = CLIENT,
                .client_secret = NULL,
                .algorithms = LK_ALG_DEFAULT,
                .nonce_mode = LK_NONCE_REQUIRED,
                .nonce = NONCE,
                .now = NOW,
                .clock_skew = SKEW,
        };
}

/* Claims that pass every check; tests change what they test. */
static json_t *claims(void)
{
        json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "iss", ISS, "sub", "user-42",
                              "aud", CLIENT, "exp", (json_int_t)(NOW + 300), "iat",
                              (json_int_t)(NOW - 10), "nonce", NONCE, "preferred_username",
                              "alice");

        assert_non_null(c);
        return c;
}

static char *dump(json_t *j)
{
        char *s = json_dumps(j, JSON_COMPACT);

        assert_non_null(s);
        json_decref(j);
        return s;
}

static char *header(const char *alg, const char *kid)
{
        json_t *h = json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");

        if (kid)
                json_object_set_new(h, "kid", json_string(kid));
        return dump(h);
}

/* Signs c (consumed) with k under alg, header naming kid (NULL: none). */
static char *sign(const char *alg, const struct jwt_forge_key *k, const char *kid, json_t *c)
{
        char *h = header(alg, kid), *p = dump(c), *t;

        t = jwt_forge_sign(h, p, alg, k);
        assert_non_null(t);
        free(h);
        free(p);
        return t;
}

static char *sign_hmac(const char *alg, const char *key, const char *kid, json_t *c)
{
        char *h = header(alg, kid), *p = dump(c), *t;

        t = jwt_forge_sign_hmac(h, p, alg, key, strlen(key));
        assert_non_null(t);
        free(h);
        free(p);
        return t;
}

static void expect_ok(const char *token, const struct lk_idtoken_params *p,
                      const struct lk_jwks *keys)
{
        json_t *c = NULL;
        struct lk_error e = {0};
        int r = lk_idtoken_verify(token, p, keys, &c, &e);

        if (r != 0)
                fail_msg("refused: %s", e.message);
        assert_non_null(c);
        assert_string_equal(json_string_value(json_object_get(c, "sub")), "user-42");
        assert_int_equal(e.code, 0);
        json_decref(c);
}

static void expect_refused(const char *token, const struct lk_idtoken_params *p,
                           const struct lk_jwks *keys, enum lk_idtoken_check check,
                           const char *needle)
{
        json_t *c = NULL;
        struct lk_error e = {0};
        char name[64];
        const char *sig;

        assert_int_equal(lk_idtoken_verify(token, p, keys, &c, &e), -LK_ERR_INVALID_ID_TOKEN);
        assert_null(c);
        assert_int_equal(e.code, LK_ERR_INVALID_ID_TOKEN);
        if (e.detail != (int)check)
                fail_msg("detail %s, expected %s (%s)", lk_idtoken_check_name(e.detail),
                         lk_idtoken_check_name(check), e.message);
        snprintf(name, sizeof(name), "(%s)", lk_idtoken_check_name(check));
        if (!strstr(e.message, name) || !strstr(e.message, needle))
                fail_msg("message \"%s\" does not say \"%s\" and \"%s\"", e.message, name, needle);
        /* Never the nonce, never the token or its signature. */
        assert_null(strstr(e.message, NONCE));
        if (token && strlen(token) > 20) {
                assert_null(strstr(e.message, token));
                sig = strrchr(token, '.');
                if (sig && strlen(sig + 1) > 8)
                        assert_null(strstr(e.message, sig + 1));
        }
}

/* --- signatures and algorithms --- */

static void test_good_rs256(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS256", rsa1, "rsa1", claims());
        json_t *c = NULL;
        struct lk_error e = {0};

        assert_int_equal(lk_idtoken_verify(t, &p, all_keys, &c, &e), 0);
        assert_string_equal(json_string_value(json_object_get(c, "preferred_username")), "alice");
        assert_string_equal(json_string_value(json_object_get(c, "iss")), ISS);
        json_decref(c);
        free(t);
}

static void test_good_rs384(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS384", rsa2, "rsa2", claims());

        expect_ok(t, &p, all_keys);
        free(t);
}

static void test_good_rs512(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS512", rsa1, "rsa1", claims());

        expect_ok(t, &p, all_keys);
        free(t);
}

static void test_good_es256(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("ES256", p256, "ec256", claims());

        expect_ok(t, &p, all_keys);
        free(t);
}

static void test_good_es384(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("ES384", p384, "ec384", claims());

        expect_ok(t, &p, all_keys);
        free(t);
}

static void test_good_es512(void **state)
{
        struct lk_idtoken_params p = params();
        struct jwt_forge_key *k = jwt_forge_key_new(JWT_FORGE_P521);
        char *jwk = jwt_forge_jwk(k, "ec521", "ES512");
        struct lk_jwks *s = make_set((const char *const[]){ jwk, NULL });
        char *t = sign("ES512", k, "ec521", claims());

        assert_non_null(s);
        expect_ok(t, &p, s);
        free(t);
        lk_jwks_free(s);
        free(jwk);
        jwt_forge_key_free(k);
}

static void flip_signature_byte(char *t)
{
        char *sig = strrchr(t, '.') + 1;
        char *c = sig + strlen(sig) / 2;

        *c = *c == 'A' ? 'B' : 'A';
}

static void test_bad_signature(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS256", rsa1, "rsa1", claims());
        char *t2 = sign("ES256", p256, "ec256", claims());

        flip_signature_byte(t);
        expect_refused(t, &p, all_keys, LK_IDT_BAD_SIGNATURE, "does not match key \"rsa1\"");
        flip_signature_byte(t2);
        expect_refused(t2, &p, all_keys, LK_IDT_BAD_SIGNATURE, "ES256 signature");
        free(t);
        free(t2);
}

static void test_payload_swapped(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *other = claims();
        char *t, *t2, *mixed;
        const char *d1, *d2, *d2b;

        json_object_set_new(other, "preferred_username", json_string("root"));
        t = sign("RS256", rsa1, "rsa1", claims());
        t2 = sign("RS256", rsa1, "rsa1", other);
        /* t2's header and payload with t's signature */
        d1 = strrchr(t, '.');
        d2 = strchr(t2, '.');
        d2b = strrchr(t2, '.');
        assert_true(asprintf(&mixed, "%.*s%s", (int)(d2b - t2), t2, d1) > 0);
        (void)d2;
        expect_refused(mixed, &p, all_keys, LK_IDT_BAD_SIGNATURE, "RS256");
        free(t);
        free(t2);
        free(mixed);
}

static void test_signed_by_other_key_same_kid(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS256", rsa2, "rsa1", claims());

        expect_refused(t, &p, all_keys, LK_IDT_BAD_SIGNATURE, "key \"rsa1\"");
        free(t);
}

static void test_es256_der_signature(void **state)
{
        /* An ECDSA signature in DER, as OpenSSL makes it, is not JOSE's R || S. */
        struct lk_idtoken_params p = params();
        char *h = header("ES256", "ec256"), *c = dump(claims()), *input, *sig, *t;
        unsigned char der[256];
        size_t der_len = sizeof(der);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        char *hb = jwt_forge_b64url(h, strlen(h)), *cb = jwt_forge_b64url(c, strlen(c));

        assert_true(asprintf(&input, "%s.%s", hb, cb) > 0);
        assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, jwt_forge_key_pkey(p256)), 1);
        assert_int_equal(EVP_DigestSign(md, der, &der_len, (unsigned char *)input, strlen(input)), 1);
        sig = jwt_forge_b64url(der, der_len);
        assert_true(asprintf(&t, "%s.%s", input, sig) > 0);
        expect_refused(t, &p, all_keys, LK_IDT_BAD_SIGNATURE, "ES256");
        EVP_MD_CTX_free(md);
        free(h);
        free(c);
        free(hb);
        free(cb);
        free(input);
        free(sig);
        free(t);
}

static void test_alg_none(void **state)
{
        struct lk_idtoken_params p = params();
        char *pl = dump(claims());
        char *t = jwt_forge_unsigned("{\"alg\":\"none\"}", pl);
        char *t2 = jwt_forge_unsigned("{\"alg\":\"NONE\",\"typ\":\"JWT\"}", pl);
        char *t3 = jwt_forge_unsigned("{\"alg\":\"nOnE\",\"kid\":\"rsa1\"}", pl);

        expect_refused(t, &p, all_keys, LK_IDT_ALG_NONE, "alg \"none\"");
        expect_refused(t2, &p, all_keys, LK_IDT_ALG_NONE, "alg \"NONE\"");
        expect_refused(t3, &p, all_keys, LK_IDT_ALG_NONE, "never accepted");
        free(pl);
        free(t);
        free(t2);
        free(t3);
}

static void test_alg_none_with_signature(void **state)
{
        struct lk_idtoken_params p = params();
        char *pl = dump(claims());
        char *t = jwt_forge_sign("{\"alg\":\"none\"}", pl, "RS256", rsa1);

        expect_refused(t, &p, all_keys, LK_IDT_ALG_NONE, "never accepted");
        free(pl);
        free(t);
}

static void test_hs256_rsa_pem_not_configured(void **state)
{
        /* The classic confusion: HMAC keyed with the provider's public key. */
        struct lk_idtoken_params p = params();
        char *pem = jwt_forge_public_pem(rsa1);
        char *t = sign_hmac("HS256", pem, "rsa1", claims());

        expect_refused(t, &p, all_keys, LK_IDT_ALG_NOT_ALLOWED, "alg \"HS256\" is not in");
        free(pem);
        free(t);
}

static void test_hs256_rsa_pem_configured_other_secret(void **state)
{
        struct lk_idtoken_params p = params();
        char *pem = jwt_forge_public_pem(rsa1);
        char *t = sign_hmac("HS256", pem, "rsa1", claims());
        char *t2 = sign_hmac("HS256", pem, NULL, claims());

        p.algorithms |= LK_ALG_HS256;
        p.client_secret = SECRET;
        expect_refused(t, &p, all_keys, LK_IDT_BAD_SIGNATURE,
                       "HS256 signature does not match the client secret");
        expect_refused(t2, &p, all_keys, LK_IDT_BAD_SIGNATURE, "client secret");
        free(pem);
        free(t);
        free(t2);
}

static void test_hs256_not_configured(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign_hmac("HS256", SECRET, NULL, claims());

        p.client_secret = SECRET;
        expect_refused(t, &p, all_keys, LK_IDT_ALG_NOT_ALLOWED, "\"HS256\"");
        free(t);
}

static void test_hs256_no_secret(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign_hmac("HS256", SECRET, NULL, claims());

        p.algorithms |= LK_ALG_HS256;
        expect_refused(t, &p, all_keys, LK_IDT_NO_SECRET, "needs the client secret");
        p.client_secret = "";
        expect_refused(t, &p, all_keys, LK_IDT_NO_SECRET, "none is configured");
        free(t);
}

static void test_hs256_configured(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign_hmac("HS256", SECRET, NULL, claims());
        char *t2 = sign_hmac("HS512", SECRET, "whatever", claims());

        p.algorithms |= LK_ALG_HS256;
        p.client_secret = SECRET;
        expect_ok(t, &p, NULL);
        expect_ok(t, &p, all_keys);
        /* HS512 is a separate choice. */
        expect_refused(t2, &p, all_keys, LK_IDT_ALG_NOT_ALLOWED, "\"HS512\"");
        p.algorithms |= LK_ALG_HS512;
        expect_ok(t2, &p, all_keys);
        free(t);
        free(t2);
}

static void test_alg_not_allowed(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS256", rsa1, "rsa1", claims());

        p.algorithms = LK_ALG_ES256;
        expect_refused(t, &p, all_keys, LK_IDT_ALG_NOT_ALLOWED,
                       "alg \"RS256\" is not in id_token_algorithms");
        free(t);
}

static void test_alg_unknown_or_missing(void **state)
{
        struct lk_idtoken_params p = params();
        char *pl = dump(claims());
        char *t = jwt_forge_sign("{\"alg\":\"PS256\",\"kid\":\"rsa1\"}", pl, "RS256", rsa1);
        char *t2 = jwt_forge_sign("{\"kid\":\"rsa1\"}", pl, "RS256", rsa1);
        char *t3 = jwt_forge_sign("{\"alg\":\"rs256\",\"kid\":\"rsa1\"}", pl, "RS256", rsa1);
        char *t4 = jwt_forge_sign("{\"alg\":256,\"kid\":\"rsa1\"}", pl, "RS256", rsa1);

        expect_refused(t, &p, all_keys, LK_IDT_ALG_NOT_ALLOWED, "\"PS256\"");
        expect_refused(t2, &p, all_keys, LK_IDT_ALG_NOT_ALLOWED, "no alg");
        expect_refused(t3, &p, all_keys, LK_IDT_ALG_NOT_ALLOWED, "\"rs256\"");
        expect_refused(t4, &p, all_keys, LK_IDT_ALG_NOT_ALLOWED, "no alg");
        free(pl);
        free(t);
        free(t2);
        free(t3);
        free(t4);
}

static void test_header_typ_and_crit(void **state)
{
        struct lk_idtoken_params p = params();
        char *pl = dump(claims());
        char *t = jwt_forge_sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"at+jwt\"}", pl,
                                 "RS256", rsa1);
        char *t2 = jwt_forge_sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"exp\"],\"exp\":1}",
                                  pl, "RS256", rsa1);
        char *t3 = jwt_forge_sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", pl, "RS256", rsa1);
        char *t4 = jwt_forge_sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"jwt\"}", pl,
                                  "RS256", rsa1);

        expect_refused(t, &p, all_keys, LK_IDT_MALFORMED, "typ is not \"JWT\"");
        expect_refused(t2, &p, all_keys, LK_IDT_MALFORMED, "\"crit\"");
        expect_ok(t3, &p, all_keys); /* no typ at all is fine */
        expect_ok(t4, &p, all_keys);
        free(pl);
        free(t);
        free(t2);
        free(t3);
        free(t4);
}

/* --- key choice --- */

static void test_no_kid_one_key(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS256", rsa1, NULL, claims());

        expect_ok(t, &p, one_rsa);
        expect_ok(t, &p, all_keys);
        free(t);
}

static void test_no_kid_several_keys(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS256", rsa1, NULL, claims());
        char *t2 = sign("RS256", rsa2, NULL, claims());

        expect_ok(t, &p, two_rsa); /* rsa1 is the second key */
        expect_ok(t2, &p, two_rsa);
        free(t);
        free(t2);
}

static void test_no_kid_none_verifies(void **state)
{
        struct lk_idtoken_params p = params();
        struct jwt_forge_key *other = jwt_forge_key_new(JWT_FORGE_RSA2048);
        char *t = sign("RS256", other, NULL, claims());

        expect_refused(t, &p, two_rsa, LK_IDT_BAD_SIGNATURE, "matches none of the 2 keys");
        free(t);
        jwt_forge_key_free(other);
}

static void test_no_kid_no_key_of_family(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("ES256", p256, NULL, claims());

        expect_refused(t, &p, two_rsa, LK_IDT_NO_MATCHING_KEY, "no key of the set fits alg ES256");
        expect_refused(t, &p, NULL, LK_IDT_NO_MATCHING_KEY, "ES256");
        free(t);
}

static void test_unknown_kid(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS256", rsa1, "rotated-away", claims());

        expect_refused(t, &p, all_keys, LK_IDT_UNKNOWN_KID, "no key has kid \"rotated-away\"");
        expect_refused(t, &p, NULL, LK_IDT_UNKNOWN_KID, "rotated-away");
        free(t);
}

static void test_kid_not_string(void **state)
{
        struct lk_idtoken_params p = params();
        char *pl = dump(claims());
        char *t = jwt_forge_sign("{\"alg\":\"RS256\",\"kid\":[\"rsa1\"]}", pl, "RS256", rsa1);

        expect_refused(t, &p, all_keys, LK_IDT_MALFORMED, "kid is not a string");
        free(pl);
        free(t);
}

static void test_es256_with_p384_key(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("ES256", p384, "ec384", claims());

        expect_refused(t, &p, all_keys, LK_IDT_KEY_MISMATCH,
                       "alg ES256 cannot use key \"ec384\" (EC P-384)");
        free(t);
}

static void test_rs256_naming_ec_key(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS256", rsa1, "ec256", claims());

        expect_refused(t, &p, all_keys, LK_IDT_KEY_MISMATCH,
                       "alg RS256 cannot use key \"ec256\" (EC P-256)");
        free(t);
}

static void test_es256_naming_rsa_key(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("ES256", p256, "rsa1", claims());

        expect_refused(t, &p, all_keys, LK_IDT_KEY_MISMATCH, "(RSA)");
        free(t);
}

static void test_key_alg_differs(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS512", rsa1, "pinned", claims());
        char *t2 = sign("RS512", rsa1, NULL, claims());
        char *t3 = sign("RS256", rsa1, "pinned", claims());

        expect_refused(t, &p, rs256_only, LK_IDT_KEY_MISMATCH, "meant for RS256 only");
        expect_refused(t2, &p, rs256_only, LK_IDT_NO_MATCHING_KEY, "RS512");
        expect_ok(t3, &p, rs256_only);
        free(t);
        free(t2);
        free(t3);
}

/* --- claims --- */

static void claim_refused(json_t *c, const struct lk_idtoken_params *p,
                          enum lk_idtoken_check check, const char *needle)
{
        char *t = sign("RS256", rsa1, "rsa1", c);

        expect_refused(t, p, all_keys, check, needle);
        free(t);
}

static void claim_ok(json_t *c, const struct lk_idtoken_params *p)
{
        char *t = sign("RS256", rsa1, "rsa1", c);

        expect_ok(t, p, all_keys);
        free(t);
}

static void test_wrong_iss(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims(), *c3 = claims();

        json_object_set_new(c, "iss", json_string("https://evil.example.com"));
        claim_refused(c, &p, LK_IDT_ISS, "iss \"https://evil.example.com\" is not the issuer");
        json_object_set_new(c2, "iss", json_string(ISS "/"));
        claim_refused(c2, &p, LK_IDT_ISS, "is not the issuer \"" ISS "\"");
        json_object_del(c3, "iss");
        claim_refused(c3, &p, LK_IDT_ISS, "iss is missing");
}

static void test_no_sub(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims();

        json_object_del(c, "sub");
        claim_refused(c, &p, LK_IDT_SUB, "sub is missing");
}

static void test_empty_sub(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims();

        json_object_set_new(c, "sub", json_string(""));
        claim_refused(c, &p, LK_IDT_SUB, "empty");
        json_object_set_new(c2, "sub", json_integer(42));
        claim_refused(c2, &p, LK_IDT_SUB, "not a string");
}

static void test_no_aud(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims();

        json_object_del(c, "aud");
        claim_refused(c, &p, LK_IDT_AUD, "aud is missing");
}

static void test_aud_without_client(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims(), *c3 = claims();

        json_object_set_new(c, "aud", json_string("someone-else"));
        claim_refused(c, &p, LK_IDT_AUD, "aud \"someone-else\" is not client_id \"" CLIENT "\"");
        json_object_set_new(c2, "aud", json_pack("[s,s]", "a", "b"));
        json_object_set_new(c2, "azp", json_string(CLIENT));
        claim_refused(c2, &p, LK_IDT_AUD, "none of the 2 aud values");
        json_object_set_new(c3, "aud", json_array());
        claim_refused(c3, &p, LK_IDT_AUD, "empty array");
}

static void test_aud_array_single(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims();

        json_object_set_new(c, "aud", json_pack("[s]", CLIENT));
        claim_ok(c, &p);
}

static void test_several_aud_without_azp(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims();

        json_object_set_new(c, "aud", json_pack("[s,s]", CLIENT, "other-api"));
        claim_refused(c, &p, LK_IDT_AZP, "aud has 2 values but there is no azp");
        json_object_set_new(c2, "aud", json_pack("[s,s]", "other-api", CLIENT));
        json_object_set_new(c2, "azp", json_string(CLIENT));
        claim_ok(c2, &p);
}

static void test_azp_other_client(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims();

        json_object_set_new(c, "aud", json_pack("[s,s]", CLIENT, "other-api"));
        json_object_set_new(c, "azp", json_string("other-api"));
        claim_refused(c, &p, LK_IDT_AZP, "azp \"other-api\" is not client_id");
        /* A single aud does not excuse a wrong azp. */
        json_object_set_new(c2, "azp", json_string("other-api"));
        claim_refused(c2, &p, LK_IDT_AZP, "azp \"other-api\"");
}

static void test_expired(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims();

        json_object_set_new(c, "exp", json_integer(NOW - SKEW));
        claim_refused(c, &p, LK_IDT_EXP, "the token expired at 1699999940");
        json_object_set_new(c2, "exp", json_real((double)(NOW - SKEW) + 0.5));
        claim_refused(c2, &p, LK_IDT_EXP, "expired");
}

static void test_exp_within_skew(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims();

        json_object_set_new(c, "exp", json_integer(NOW - SKEW + 1));
        claim_ok(c, &p);
}

static void test_exp_missing_or_not_number(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims();

        json_object_del(c, "exp");
        claim_refused(c, &p, LK_IDT_EXP, "exp is missing");
        json_object_set_new(c2, "exp", json_string("1800000000"));
        claim_refused(c2, &p, LK_IDT_EXP, "not a number");
}

static void test_exp_huge(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims();

        /* No overflow: far future is valid, far past is expired. */
        json_object_set_new(c, "exp", json_integer(INT64_MAX));
        claim_ok(c, &p);
        json_object_set_new(c2, "exp", json_integer(INT64_MIN));
        claim_refused(c2, &p, LK_IDT_EXP, "expired");
}

static void test_iat_in_future(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims();

        json_object_set_new(c, "iat", json_integer(NOW + SKEW + 1));
        claim_refused(c, &p, LK_IDT_IAT, "issued in the future, at 1700000061");
        json_object_set_new(c2, "iat", json_integer(NOW + SKEW));
        claim_ok(c2, &p);
}

static void test_no_iat(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims();

        json_object_del(c, "iat");
        claim_refused(c, &p, LK_IDT_IAT, "iat is missing");
}

static void test_nbf(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims(), *c3 = claims();

        json_object_set_new(c, "nbf", json_integer(NOW + SKEW + 1));
        claim_refused(c, &p, LK_IDT_NBF, "not valid before 1700000061");
        json_object_set_new(c2, "nbf", json_integer(NOW + SKEW));
        claim_ok(c2, &p);
        json_object_set_new(c3, "nbf", json_true());
        claim_refused(c3, &p, LK_IDT_NBF, "nbf is not a number");
}

static void test_wrong_nonce(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims();

        json_object_set_new(c, "nonce", json_string(NONCE "x"));
        claim_refused(c, &p, LK_IDT_NONCE, "not the one sent");
        p.nonce_mode = LK_NONCE_IF_PRESENT;
        json_object_set_new(c2, "nonce", json_string("other"));
        claim_refused(c2, &p, LK_IDT_NONCE, "not the one sent");
}

static void test_missing_nonce_required(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims();

        json_object_del(c, "nonce");
        claim_refused(c, &p, LK_IDT_NONCE, "no nonce, and nonce = required");
}

static void test_missing_nonce_if_present(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims();

        p.nonce_mode = LK_NONCE_IF_PRESENT;
        json_object_del(c, "nonce");
        claim_ok(c, &p);
}

static void test_nonce_off(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *c2 = claims();

        p.nonce_mode = LK_NONCE_OFF;
        json_object_set_new(c, "nonce", json_string("anything"));
        claim_ok(c, &p);
        json_object_del(c2, "nonce");
        claim_ok(c2, &p);
}

static void test_no_expected_nonce_at_login(void **state)
{
        /* Fail closed: required mode without a nonce of ours and no refresh. */
        struct lk_idtoken_params p = params();

        p.nonce = NULL;
        claim_refused(claims(), &p, LK_IDT_NONCE, "not the one sent");
}

static void test_previous_claims(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *prev = json_pack("{s:s, s:s}", "iss", ISS, "sub", "user-42");
        json_t *prev2 = json_pack("{s:s, s:s}", "iss", ISS, "sub", "user-41");
        json_t *c = claims();

        p.nonce = NULL; /* refresh: no nonce of ours */
        p.previous_claims = prev;
        json_object_del(c, "nonce");
        claim_ok(c, &p);
        claim_ok(claims(), &p);
        p.previous_claims = prev2;
        claim_refused(claims(), &p, LK_IDT_CHANGED_ISS_SUB, "sub differs");
        json_decref(prev);
        json_decref(prev2);
}

/* --- malformed tokens --- */

static void test_malformed_parts(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS256", rsa1, "rsa1", claims());
        char *four, *two;

        assert_true(asprintf(&four, "%s.AAAA", t) > 0);
        two = strndup(t, (size_t)(strrchr(t, '.') - t));
        expect_refused(two, &p, all_keys, LK_IDT_MALFORMED, "three dot-separated parts");
        expect_refused(four, &p, all_keys, LK_IDT_MALFORMED, "three dot-separated parts");
        expect_refused("", &p, all_keys, LK_IDT_MALFORMED, "three");
        expect_refused("..", &p, all_keys, LK_IDT_MALFORMED, "header is empty");
        expect_refused(NULL, &p, all_keys, LK_IDT_MALFORMED, "no token");
        free(t);
        free(four);
        free(two);
}

static void test_malformed_base64(void **state)
{
        struct lk_idtoken_params p = params();
        char *t = sign("RS256", rsa1, "rsa1", claims());
        char *bad_header = strdup(t), *bad_sig, *bad_payload = strdup(t);

        bad_header[3] = '+';
        expect_refused(bad_header, &p, all_keys, LK_IDT_MALFORMED, "header is not base64url");
        *(strchr(bad_payload, '.') + 2) = '/';
        expect_refused(bad_payload, &p, all_keys, LK_IDT_MALFORMED, "payload is not base64url");
        assert_true(asprintf(&bad_sig, "%s=x", t) > 0);
        expect_refused(bad_sig, &p, all_keys, LK_IDT_MALFORMED, "signature is not base64url");
        free(t);
        free(bad_header);
        free(bad_payload);
        free(bad_sig);
}

static void test_malformed_json(void **state)
{
        struct lk_idtoken_params p = params();
        char *pl = dump(claims());
        char *t = jwt_forge_sign("alg: RS256", pl, "RS256", rsa1);
        char *t2 = jwt_forge_sign("[\"RS256\"]", pl, "RS256", rsa1);
        char *t3 = jwt_forge_sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", "\"claims\"", "RS256", rsa1);
        char *t4 = jwt_forge_sign("{\"alg\":\"none\",\"alg\":\"RS256\",\"kid\":\"rsa1\"}", pl,
                                  "RS256", rsa1);

        expect_refused(t, &p, all_keys, LK_IDT_MALFORMED, "header is not JSON");
        expect_refused(t2, &p, all_keys, LK_IDT_MALFORMED, "header is not a JSON object");
        expect_refused(t3, &p, all_keys, LK_IDT_MALFORMED, "payload is not");
        expect_refused(t4, &p, all_keys, LK_IDT_MALFORMED, "header is not JSON");
        free(pl);
        free(t);
        free(t2);
        free(t3);
        free(t4);
}

/* jansson's error text quotes the input near the fault: never the payload's (the nonce). */
static void test_malformed_payload_not_quoted(void **state)
{
        struct lk_idtoken_params p = params();
        static const char *const payloads[] = {
                "{\"iss\":\"" ISS "\",\"nonce\":\"" NONCE "\x01\"}",
                "{\"iss\":\"" ISS "\",\"nonce\":\"" NONCE "\\q\"}",
                "{\"iss\":\"" ISS "\",\"nonce\":" NONCE "}",
        };

        for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
                char *t = jwt_forge_sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", payloads[i],
                                         "RS256", rsa1);

                assert_non_null(t);
                /* expect_refused also asserts that the message does not hold NONCE. */
                expect_refused(t, &p, all_keys, LK_IDT_MALFORMED, "payload is not JSON");
                free(t);
        }
}

static void test_duplicate_claim(void **state)
{
        struct lk_idtoken_params p = params();
        char *pl = dump(claims()), *pl2, *t;

        /* {"iss":"evil",<the good claims>} */
        assert_true(asprintf(&pl2, "{\"iss\":\"https://evil.example.com\",%s", pl + 1) > 0);
        t = jwt_forge_sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", pl2, "RS256", rsa1);
        expect_refused(t, &p, all_keys, LK_IDT_MALFORMED, "payload is not JSON");
        free(pl);
        free(pl2);
        free(t);
}

static void test_too_large(void **state)
{
        struct lk_idtoken_params p = params();
        json_t *c = claims();
        char *pad = malloc(70 * 1024), *t;

        memset(pad, 'a', 70 * 1024 - 1);
        pad[70 * 1024 - 1] = 0;
        json_object_set_new(c, "padding", json_string(pad));
        t = sign("RS256", rsa1, "rsa1", c);
        assert_true(strlen(t) > 70 * 1024);
        expect_refused(t, &p, all_keys, LK_IDT_MALFORMED, "larger than 65536 bytes");
        free(pad);
        free(t);
}

static void test_check_names(void **state)
{
        assert_string_equal(lk_idtoken_check_name(LK_IDT_ALG_NONE), "alg-none");
        assert_string_equal(lk_idtoken_check_name(LK_IDT_UNKNOWN_KID), "unknown-kid");
        assert_string_equal(lk_idtoken_check_name(LK_IDT_CHANGED_ISS_SUB), "changed-iss-sub");
        assert_string_equal(lk_idtoken_check_name((enum lk_idtoken_check)999), "unknown");
        for (int c = LK_IDT_OK; c <= LK_IDT_CHANGED_ISS_SUB; c++)
                assert_string_not_equal(lk_idtoken_check_name(c), "unknown");
}

static void test_first_failure_kept(void **state)
{
        /* An error already set is not overwritten, and output stays untouched. */
        struct lk_idtoken_params p = params();
        json_t *c = claims(), *out = (json_t *)0x1;
        struct lk_error e = {0};
        char *t;

        json_object_set_new(c, "iss", json_string("x"));
        t = sign("RS256", rsa1, "rsa1", c);
        assert_int_equal(lk_idtoken_verify(t, &p, all_keys, &out, &e), -LK_ERR_INVALID_ID_TOKEN);
        assert_ptr_equal(out, (json_t *)0x1);
        assert_int_equal(e.detail, LK_IDT_ISS);
        free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_rs256),
                cmocka_unit_test(test_good_rs384),
                cmocka_unit_test(test_good_rs512),
                cmocka_unit_test(test_good_es256),
                cmocka_unit_test(test_good_es384),
                cmocka_unit_test(test_good_es512),
                cmocka_unit_test(test_bad_signature),
                cmocka_unit_test(test_payload_swapped),
                cmocka_unit_test(test_signed_by_other_key_same_kid),
                cmocka_unit_test(test_es256_der_signature),
                cmocka_unit_test(test_alg_none),
                cmocka_unit_test(test_alg_none_with_signature),
                cmocka_unit_test(test_hs256_rsa_pem_not_configured),
                cmocka_unit_test(test_hs256_rsa_pem_configured_other_secret),
                cmocka_unit_test(test_hs256_not_configured),
                cmocka_unit_test(test_hs256_no_secret),
                cmocka_unit_test(test_hs256_configured),
                cmocka_unit_test(test_alg_not_allowed),
                cmocka_unit_test(test_alg_unknown_or_missing),
                cmocka_unit_test(test_header_typ_and_crit),
                cmocka_unit_test(test_no_kid_one_key),
                cmocka_unit_test(test_no_kid_several_keys),
                cmocka_unit_test(test_no_kid_none_verifies),
                cmocka_unit_test(test_no_kid_no_key_of_family),
                cmocka_unit_test(test_unknown_kid),
                cmocka_unit_test(test_kid_not_string),
                cmocka_unit_test(test_es256_with_p384_key),
                cmocka_unit_test(test_rs256_naming_ec_key),
                cmocka_unit_test(test_es256_naming_rsa_key),
                cmocka_unit_test(test_key_alg_differs),
                cmocka_unit_test(test_wrong_iss),
                cmocka_unit_test(test_no_sub),
                cmocka_unit_test(test_empty_sub),
                cmocka_unit_test(test_no_aud),
                cmocka_unit_test(test_aud_without_client),
                cmocka_unit_test(test_aud_array_single),
                cmocka_unit_test(test_several_aud_without_azp),
                cmocka_unit_test(test_azp_other_client),
                cmocka_unit_test(test_expired),
                cmocka_unit_test(test_exp_within_skew),
                cmocka_unit_test(test_exp_missing_or_not_number),
                cmocka_unit_test(test_exp_huge),
                cmocka_unit_test(test_iat_in_future),
                cmocka_unit_test(test_no_iat),
                cmocka_unit_test(test_nbf),
                cmocka_unit_test(test_wrong_nonce),
                cmocka_unit_test(test_missing_nonce_required),
                cmocka_unit_test(test_missing_nonce_if_present),
                cmocka_unit_test(test_nonce_off),
                cmocka_unit_test(test_no_expected_nonce_at_login),
                cmocka_unit_test(test_previous_claims),
                cmocka_unit_test(test_malformed_parts),
                cmocka_unit_test(test_malformed_base64),
                cmocka_unit_test(test_malformed_json),
                cmocka_unit_test(test_malformed_payload_not_quoted),
                cmocka_unit_test(test_duplicate_claim),
                cmocka_unit_test(test_too_large),
                cmocka_unit_test(test_check_names),
                cmocka_unit_test(test_first_failure_kept),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
