/* SPDX-License-Identifier: MIT */
/* lk_jwks_parse / lk_jwk_from_json with keys made at run time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/obj_mac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/b64url.h"
#include "oidc/config.h"
#include "oidc/jwks.h"
#include "tests/unit/jwt_forge.h"

static struct jwt_forge_key *rsa, *rsa_short, *p256, *p384, *p521;

static int setup(void **state)
{
        rsa = jwt_forge_key_new(JWT_FORGE_RSA2048);
        rsa_short = jwt_forge_key_new(JWT_FORGE_RSA1024);
        p256 = jwt_forge_key_new(JWT_FORGE_P256);
        p384 = jwt_forge_key_new(JWT_FORGE_P384);
        p521 = jwt_forge_key_new(JWT_FORGE_P521);
        return rsa && rsa_short && p256 && p384 && p521 ? 0 : -1;
}

static int teardown(void **state)
{
        jwt_forge_key_free(rsa);
        jwt_forge_key_free(rsa_short);
        jwt_forge_key_free(p256);
        jwt_forge_key_free(p384);
        jwt_forge_key_free(p521);
        return 0;
}

/* {"keys":[...]} from JWK texts, parsed. */
static int parse_keys(struct lk_jwks **ret, struct lk_error *e, const char *const *jwks)
{
        char *doc = jwt_forge_jwks(jwks);
        int r;

        assert_non_null(doc);
        r = lk_jwks_parse(doc, strlen(doc), ret, e);
        free(doc);
        return r;
}

static int parse_one(const char *jwk, struct lk_jwks **ret, struct lk_error *e)
{
        const char *l[] = { jwk, NULL };

        return parse_keys(ret, e, l);
}

/* A forged JWK with one member replaced (value NULL: removed). */
static char *jwk_with(const struct jwt_forge_key *k, const char *kid, const char *member,
                      json_t *value)
{
        char *text = jwt_forge_jwk(k, kid, NULL), *out;
        json_t *j = json_loads(text, 0, NULL);

        assert_non_null(j);
        if (value)
                json_object_set_new(j, member, value);
        else
                json_object_del(j, member);
        out = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        free(text);
        return out;
}

static void expect_refused(const char *jwk, const char *needle)
{
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};

        assert_int_equal(parse_one(jwk, &s, &e), -LK_ERR_PROVIDER_RESPONSE);
        assert_null(s);
        assert_int_equal(e.code, LK_ERR_PROVIDER_RESPONSE);
        if (!strstr(e.message, needle))
                fail_msg("message \"%s\" does not say \"%s\"", e.message, needle);
}

static void test_rsa(void **state)
{
        char *jwk = jwt_forge_jwk(rsa, "rsa-1", "RS256");
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};

        assert_int_equal(parse_one(jwk, &s, &e), 0);
        assert_int_equal(s->n, 1);
        assert_int_equal(s->keys[0].kty, LK_KTY_RSA);
        assert_string_equal(s->keys[0].kid, "rsa-1");
        assert_string_equal(s->keys[0].alg, "RS256");
        assert_non_null(s->keys[0].pkey);
        assert_int_equal(EVP_PKEY_get_bits(s->keys[0].pkey), 2048);
        assert_true(EVP_PKEY_eq(s->keys[0].pkey, jwt_forge_key_pkey(rsa)) == 1);
        /* "alg": "RS256": set up for SHA-256 only. */
        assert_non_null(s->keys[0].verify[LK_JWK_SHA256]);
        assert_null(s->keys[0].verify[LK_JWK_SHA384]);
        assert_null(s->keys[0].verify[LK_JWK_SHA512]);
        lk_jwks_free(s);
        free(jwk);
}

static void test_rsa_without_kid(void **state)
{
        char *jwk = jwt_forge_jwk(rsa, NULL, NULL);
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};

        assert_int_equal(parse_one(jwk, &s, &e), 0);
        assert_int_equal(s->n, 1);
        assert_null(s->keys[0].kid);
        assert_null(s->keys[0].alg);
        /* No "alg": RS256, RS384 and RS512 may all use it. */
        for (int h = 0; h < LK_JWK_HASHES; h++)
                assert_non_null(s->keys[0].verify[h]);
        lk_jwks_free(s);
        free(jwk);
}

static void check_ec(struct jwt_forge_key *k, const char *alg, int nid)
{
        char *jwk = jwt_forge_jwk(k, "ec", alg);
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};

        assert_int_equal(parse_one(jwk, &s, &e), 0);
        assert_int_equal(s->n, 1);
        assert_int_equal(s->keys[0].kty, LK_KTY_EC);
        assert_int_equal(s->keys[0].curve_nid, nid);
        assert_string_equal(s->keys[0].alg, alg);
        assert_true(EVP_PKEY_eq(s->keys[0].pkey, jwt_forge_key_pkey(k)) == 1);
        /* Only the curve's hash: P-256 with SHA-256 (ES256), and so on. */
        for (int h = 0; h < LK_JWK_HASHES; h++)
                if (h == (int)lk_jwk_hash_of(lk_alg_from_name(alg)))
                        assert_non_null(s->keys[0].verify[h]);
                else
                        assert_null(s->keys[0].verify[h]);
        lk_jwks_free(s);
        free(jwk);
}

static void test_ec_p256(void **state)
{
        check_ec(p256, "ES256", NID_X9_62_prime256v1);
}

static void test_ec_p384(void **state)
{
        check_ec(p384, "ES384", NID_secp384r1);
}

static void test_ec_p521(void **state)
{
        check_ec(p521, "ES512", NID_secp521r1);
}

static void test_several_keys(void **state)
{
        char *a = jwt_forge_jwk(rsa, "a", NULL), *b = jwt_forge_jwk(p256, "b", NULL),
             *c = jwt_forge_jwk(p384, "c", NULL);
        const char *l[] = { a, b, c, NULL };
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};

        assert_int_equal(parse_keys(&s, &e, l), 0);
        assert_int_equal(s->n, 3);
        assert_string_equal(s->keys[0].kid, "a");
        assert_string_equal(s->keys[1].kid, "b");
        assert_string_equal(s->keys[2].kid, "c");
        lk_jwks_free(s);
        free(a);
        free(b);
        free(c);
}

static void test_enc_key_skipped(void **state)
{
        char *enc = jwk_with(rsa, "enc", "use", json_string("enc"));
        char *sig = jwt_forge_jwk(p256, "sig", NULL);
        const char *l[] = { enc, sig, NULL };
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};

        assert_int_equal(parse_keys(&s, &e, l), 0);
        assert_int_equal(s->n, 1);
        assert_string_equal(s->keys[0].kid, "sig");
        lk_jwks_free(s);

        /* Alone, the encryption key leaves nothing to verify with. */
        expect_refused(enc, "no usable signing key (1 skipped)");
        free(enc);
        free(sig);
}

static void test_jwk_from_json_skip_result(void **state)
{
        json_t *j = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "use", "enc", "n", "AQAB");
        struct lk_jwk k = {0};
        struct lk_error e = {0};

        assert_int_equal(lk_jwk_from_json(j, &k, &e), 1);
        assert_null(k.pkey);
        assert_int_equal(e.code, 0);
        json_decref(j);
}

static void test_other_kinds_skipped(void **state)
{
        char *good = jwt_forge_jwk(rsa, "good", NULL);
        char *k256 = jwk_with(p256, "k1", "crv", json_string("secp256k1"));
        char *ps = jwt_forge_jwk(rsa, "ps", "PS256");
        char *noverify = jwk_with(rsa, "nv", "key_ops", json_pack("[s]", "encrypt"));
        const char *l[] = {
                "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"hmac\"}",
                "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
                "{\"kty\":\"XYZ\"}",
                k256, ps, noverify, good, NULL,
        };
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};

        assert_int_equal(parse_keys(&s, &e, l), 0);
        assert_int_equal(s->n, 1);
        assert_string_equal(s->keys[0].kid, "good");
        lk_jwks_free(s);
        free(good);
        free(k256);
        free(ps);
        free(noverify);
}

static void test_bad_n(void **state)
{
        char *jwk = jwk_with(rsa, "bad", "n", json_string("not*base64url"));

        expect_refused(jwk, "\"n\" is not base64url");
        free(jwk);
}

static void test_missing_e(void **state)
{
        char *jwk = jwk_with(rsa, "bad", "e", NULL);

        expect_refused(jwk, "\"e\" is missing or not a string");
        free(jwk);
}

static void test_even_exponent(void **state)
{
        char *jwk = jwk_with(rsa, "bad", "e", json_string("AQAA")); /* 65536 */

        expect_refused(jwk, "exponent must be odd");
        free(jwk);
}

static void test_short_rsa(void **state)
{
        char *jwk = jwt_forge_jwk(rsa_short, "short", NULL);

        expect_refused(jwk, "RSA modulus has 1024 bits, at least 2048 are required");
        expect_refused(jwk, "kid \"short\"");
        free(jwk);
}

static void test_huge_rsa(void **state)
{
        unsigned char n[2100];
        char *b64, *jwk;

        memset(n, 0xff, sizeof(n));
        b64 = lk_b64url_encode(n, sizeof(n));
        jwk = jwk_with(rsa, "huge", "n", json_string(b64));
        expect_refused(jwk, "too large");
        free(b64);
        free(jwk);
}

static void test_wrong_coordinate_length(void **state)
{
        /* P-384's coordinates (48 bytes) under crv P-256 (32). */
        char *text = jwt_forge_jwk(p384, "odd", NULL), *jwk;
        json_t *j = json_loads(text, 0, NULL);

        json_object_set_new(j, "crv", json_string("P-256"));
        jwk = json_dumps(j, JSON_COMPACT);
        expect_refused(jwk, "EC P-256 coordinates must be 32 bytes each, not 48 and 48");
        json_decref(j);
        free(text);
        free(jwk);
}

static void test_short_coordinate(void **state)
{
        /* The RFC wants the full size even when the number has leading zeros. */
        char *jwk = jwk_with(p256, "short", "x", json_string("AQID"));

        expect_refused(jwk, "must be 32 bytes each, not 3 and 32");
        free(jwk);
}

static void test_empty_coordinate(void **state)
{
        /* Found by fuzz-jwks: an empty member once freed its buffer twice. */
        char *jwk = jwk_with(p384, "empty", "x", json_string(""));
        char *jwk2 = jwk_with(rsa, "empty", "n", json_string(""));

        expect_refused(jwk, "\"x\" is empty");
        expect_refused(jwk2, "\"n\" is empty");
        free(jwk);
        free(jwk2);
}

static void test_point_not_on_curve(void **state)
{
        char *text = jwt_forge_jwk(p256, "off", NULL), *jwk, *y64;
        json_t *j = json_loads(text, 0, NULL);
        unsigned char *y;
        size_t y_len;
        const char *ys = json_string_value(json_object_get(j, "y"));

        assert_int_equal(lk_b64url_decode(ys, strlen(ys), &y, &y_len), 0);
        assert_int_equal(y_len, 32);
        y[31] ^= 0x01;
        y64 = lk_b64url_encode(y, y_len);
        json_object_set_new(j, "y", json_string(y64));
        jwk = json_dumps(j, JSON_COMPACT);
        expect_refused(jwk, "not on the curve");
        json_decref(j);
        free(text);
        free(jwk);
        free(y);
        free(y64);
}

static void test_alg_does_not_fit_key(void **state)
{
        char *jwk = jwt_forge_jwk(rsa, "mix", "ES256");
        char *jwk2 = jwt_forge_jwk(p256, "mix2", "ES384");

        expect_refused(jwk, "names alg \"ES256\", which does not fit it");
        expect_refused(jwk2, "EC P-256 names alg \"ES384\"");
        free(jwk);
        free(jwk2);
}

static void test_kid_not_string(void **state)
{
        char *jwk = jwk_with(rsa, NULL, "kid", json_integer(7));

        expect_refused(jwk, "\"kid\" is not a string");
        free(jwk);
}

static void test_missing_kty(void **state)
{
        char *jwk = jwk_with(rsa, "x", "kty", NULL);

        expect_refused(jwk, "\"kty\" is missing");
        free(jwk);
}

static void test_empty_set(void **state)
{
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};
        const char *doc = "{\"keys\":[]}";

        assert_int_equal(lk_jwks_parse(doc, strlen(doc), &s, &e), -LK_ERR_PROVIDER_RESPONSE);
        assert_null(s);
        assert_non_null(strstr(e.message, "no usable signing key (0 skipped)"));
}

static void test_not_json(void **state)
{
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};
        const char *doc = "<html>keys</html>";

        assert_int_equal(lk_jwks_parse(doc, strlen(doc), &s, &e), -LK_ERR_PROVIDER_RESPONSE);
        assert_null(s);
        assert_non_null(strstr(e.message, "is not JSON"));
}

static void test_no_keys_array(void **state)
{
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};
        const char *doc = "{\"keys\":{}}";

        assert_int_equal(lk_jwks_parse(doc, strlen(doc), &s, &e), -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "has no \"keys\" array"));
}

static void test_duplicate_members(void **state)
{
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};
        const char *doc = "{\"keys\":[],\"keys\":[]}";

        assert_int_equal(lk_jwks_parse(doc, strlen(doc), &s, &e), -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "is not JSON"));
}

static void test_65_keys(void **state)
{
        const char *l[66];
        char *jwk = jwt_forge_jwk(p256, "same", NULL);
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};

        for (int i = 0; i < 65; i++)
                l[i] = jwk;
        l[65] = NULL;
        assert_int_equal(parse_keys(&s, &e, l), -LK_ERR_PROVIDER_RESPONSE);
        assert_null(s);
        assert_non_null(strstr(e.message, "has 65 keys, at most 64"));

        /* 64 is fine. */
        l[64] = NULL;
        lk_error_clear(&e);
        assert_int_equal(parse_keys(&s, &e, l), 0);
        assert_int_equal(s->n, 64);
        lk_jwks_free(s);
        free(jwk);
}

static void test_too_large(void **state)
{
        size_t len = 1024 * 1024 + 1;
        char *doc = malloc(len);
        struct lk_jwks *s = NULL;
        struct lk_error e = {0};

        memset(doc, ' ', len);
        assert_int_equal(lk_jwks_parse(doc, len, &s, &e), -LK_ERR_PROVIDER_RESPONSE);
        assert_non_null(strstr(e.message, "larger than 1048576"));
        free(doc);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rsa),
                cmocka_unit_test(test_rsa_without_kid),
                cmocka_unit_test(test_ec_p256),
                cmocka_unit_test(test_ec_p384),
                cmocka_unit_test(test_ec_p521),
                cmocka_unit_test(test_several_keys),
                cmocka_unit_test(test_enc_key_skipped),
                cmocka_unit_test(test_jwk_from_json_skip_result),
                cmocka_unit_test(test_other_kinds_skipped),
                cmocka_unit_test(test_bad_n),
                cmocka_unit_test(test_missing_e),
                cmocka_unit_test(test_even_exponent),
                cmocka_unit_test(test_short_rsa),
                cmocka_unit_test(test_huge_rsa),
                cmocka_unit_test(test_wrong_coordinate_length),
                cmocka_unit_test(test_short_coordinate),
                cmocka_unit_test(test_empty_coordinate),
                cmocka_unit_test(test_point_not_on_curve),
                cmocka_unit_test(test_alg_does_not_fit_key),
                cmocka_unit_test(test_kid_not_string),
                cmocka_unit_test(test_missing_kty),
                cmocka_unit_test(test_empty_set),
                cmocka_unit_test(test_not_json),
                cmocka_unit_test(test_no_keys_array),
                cmocka_unit_test(test_duplicate_members),
                cmocka_unit_test(test_65_keys),
                cmocka_unit_test(test_too_large),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
