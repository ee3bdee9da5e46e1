/* SPDX-License-Identifier: MIT */
/* The key cache: lifetimes, the refetch limit, the disk copy. */
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "oidc/fileio.h"
#include "oidc/jwks_cache.h"
#include "tests/unit/jwt_forge.h"

#define NOW 1700000000
#define DISK_COPY_FMT "{\"body\":%s,\"fetched_at\":%lld,\"expires_at\":%lld}"

struct fixture {
        char dir[64];
        char path[128];
        char *jwks_a; /* one key, kid "a" */
        char *jwks_b; /* two keys, kids "b1" and "b2" */
};

static char *make_jwks(struct jwt_forge_key *const *keys, const char *const *kids, size_t n)
{
        char *jwk[4] = {0};
        char *doc;

        assert_true(n < 4);
        for (size_t i = 0; i < n; i++)
                assert_non_null(jwk[i] = jwt_forge_jwk(keys[i], kids[i], "ES256"));
        doc = jwt_forge_jwks((const char *const *)jwk);
        for (size_t i = 0; i < n; i++)
                free(jwk[i]);
        assert_non_null(doc);
        return doc;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct jwt_forge_key *k[3];

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/lk-jwks-cache-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/jwks.json", f->dir);
        for (int i = 0; i < 3; i++)
                assert_non_null(k[i] = jwt_forge_key_new(JWT_FORGE_P256));
        f->jwks_a = make_jwks(k, (const char *const[]){"a"}, 1);
        f->jwks_b = make_jwks(k + 1, (const char *const[]){"b1", "b2"}, 2);
        for (int i = 0; i < 3; i++)
                jwt_forge_key_free(k[i]);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char tmp[256];

        unlink(f->path);
        snprintf(tmp, sizeof(tmp), "%s/sub", f->dir);
        rmdir(tmp);
        rmdir(f->dir);
        free(f->jwks_a);
        free(f->jwks_b);
        free(f);
        return 0;
}

static void store(struct lk_jwks_cache *c, const char *doc, long max_age, int64_t now)
{
        struct lk_error e = {0};

        assert_int_equal(lk_jwks_cache_store(c, doc, strlen(doc), max_age, now, &e), 0);
}

static void test_lifetime_bounds(void **state)
{
        (void)state;
        assert_int_equal(lk_cache_lifetime(-1), LK_JWKS_MIN_AGE);
        assert_int_equal(lk_cache_lifetime(0), 300);
        assert_int_equal(lk_cache_lifetime(10), 300);
        assert_int_equal(lk_cache_lifetime(299), 300);
        assert_int_equal(lk_cache_lifetime(300), 300);
        assert_int_equal(lk_cache_lifetime(3600), 3600);
        assert_int_equal(lk_cache_lifetime(86400), 86400);
        assert_int_equal(lk_cache_lifetime(1000000), 86400);
        assert_int_equal(lk_cache_lifetime(LONG_MAX), LK_JWKS_MAX_AGE);
}

static void test_store_lifetime(void **state)
{
        static const struct {
                long max_age;
                int64_t lifetime;
        } cases[] = { { -1, 300 }, { 0, 300 }, { 10, 300 }, { 3600, 3600 }, { 1000000, 86400 } };
        struct fixture *f = *state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct lk_jwks_cache c;

                assert_int_equal(lk_jwks_cache_init(&c, NULL, NOW), 0);
                store(&c, f->jwks_a, cases[i].max_age, NOW);
                assert_int_equal(c.fetched_at, NOW);
                assert_int_equal(c.expires_at, NOW + cases[i].lifetime);
                assert_false(lk_jwks_cache_stale(&c, NOW + cases[i].lifetime - 1));
                assert_true(lk_jwks_cache_stale(&c, NOW + cases[i].lifetime));
                lk_jwks_cache_clear(&c);
        }
}

static void test_stale(void **state)
{
        struct fixture *f = *state;
        struct lk_jwks_cache c;

        assert_int_equal(lk_jwks_cache_init(&c, NULL, NOW), 0);
        assert_null(c.keys);
        assert_true(lk_jwks_cache_stale(&c, NOW));
        store(&c, f->jwks_a, 600, NOW);
        assert_non_null(c.keys);
        assert_int_equal(c.keys->n, 1);
        assert_false(lk_jwks_cache_stale(&c, NOW));
        assert_false(lk_jwks_cache_stale(&c, NOW + 599));
        assert_true(lk_jwks_cache_stale(&c, NOW + 600));
        assert_true(lk_jwks_cache_stale(&c, NOW + 100000));
        /* A new fetch makes them fresh again, and replaces them. */
        store(&c, f->jwks_b, 600, NOW + 700);
        assert_false(lk_jwks_cache_stale(&c, NOW + 700));
        assert_int_equal(c.keys->n, 2);
        assert_string_equal(c.keys->keys[0].kid, "b1");
        lk_jwks_cache_clear(&c);
        assert_null(c.keys);
        assert_true(lk_jwks_cache_stale(&c, NOW));
}

static void test_refetch_limit(void **state)
{
        struct lk_jwks_cache c;

        (void)state;
        assert_int_equal(lk_jwks_cache_init(&c, NULL, NOW), 0);
        assert_true(lk_jwks_cache_may_refetch(&c, NOW));
        assert_false(lk_jwks_cache_may_refetch(&c, NOW));
        assert_false(lk_jwks_cache_may_refetch(&c, NOW + 30));
        assert_false(lk_jwks_cache_may_refetch(&c, NOW + LK_JWKS_REFETCH_INTERVAL - 1));
        assert_true(lk_jwks_cache_may_refetch(&c, NOW + LK_JWKS_REFETCH_INTERVAL));
        /* The refusals did not move the window; the grant did. */
        assert_false(lk_jwks_cache_may_refetch(&c, NOW + LK_JWKS_REFETCH_INTERVAL + 59));
        assert_true(lk_jwks_cache_may_refetch(&c, NOW + 2 * LK_JWKS_REFETCH_INTERVAL));
        /* A clock that steps back a little does not open the gate; far back, it does. */
        assert_false(lk_jwks_cache_may_refetch(&c, NOW + 2 * LK_JWKS_REFETCH_INTERVAL - 10));
        assert_true(lk_jwks_cache_may_refetch(&c, NOW - 3600));
        lk_jwks_cache_clear(&c);
}

static void test_bad_document_keeps_keys(void **state)
{
        static const char *bad[] = { "", "not json", "{}", "{\"keys\":[]}",
                                     "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\"}]}" };
        struct fixture *f = *state;
        struct lk_jwks_cache c;

        assert_int_equal(lk_jwks_cache_init(&c, f->path, NOW), 0);
        store(&c, f->jwks_a, 600, NOW);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lk_error e = {0};

                assert_true(lk_jwks_cache_store(&c, bad[i], strlen(bad[i]), 3600, NOW + 10, &e) < 0);
                assert_int_equal(e.code, LK_ERR_PROVIDER_RESPONSE);
                assert_non_null(c.keys);
                assert_string_equal(c.keys->keys[0].kid, "a");
                assert_int_equal(c.expires_at, NOW + 600);
        }
        lk_jwks_cache_clear(&c);

        /* Nor did the disk copy change. */
        assert_int_equal(lk_jwks_cache_init(&c, f->path, NOW + 20), 0);
        assert_non_null(c.keys);
        assert_string_equal(c.keys->keys[0].kid, "a");
        lk_jwks_cache_clear(&c);
}

static void test_disk_round_trip(void **state)
{
        struct fixture *f = *state;
        struct lk_jwks_cache c, d;
        struct lk_cache_file file = {0};
        struct lk_error e = {0};
        struct stat st;

        assert_int_equal(lk_jwks_cache_init(&c, f->path, NOW), 0);
        assert_null(c.keys); /* nothing on disk yet */
        assert_int_equal(lk_jwks_cache_bind(&c, "https://idp.example/jwks"), 0);
        store(&c, f->jwks_b, 3600, NOW);

        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(lk_cache_file_load(f->path, NOW, &file, &e), 0);
        assert_string_equal(file.body, f->jwks_b);
        assert_int_equal(file.len, strlen(f->jwks_b));
        assert_string_equal(file.url, "https://idp.example/jwks");
        assert_int_equal(file.fetched_at, NOW);
        assert_int_equal(file.expires_at, NOW + 3600);
        lk_cache_file_clear(&file);

        /* A restarted broker finds the keys without asking anybody. */
        assert_int_equal(lk_jwks_cache_init(&d, f->path, NOW + 100), 0);
        assert_non_null(d.keys);
        assert_int_equal(d.keys->n, 2);
        assert_string_equal(d.keys->keys[1].kid, "b2");
        assert_int_equal(d.fetched_at, NOW);
        assert_int_equal(d.expires_at, NOW + 3600);
        assert_string_equal(d.url, "https://idp.example/jwks");
        assert_false(lk_jwks_cache_stale(&d, NOW + 100));
        /* The same URL keeps them. */
        assert_int_equal(lk_jwks_cache_bind(&d, "https://idp.example/jwks"), 0);
        assert_non_null(d.keys);
        lk_jwks_cache_clear(&d);

        /* Another jwks_uri (the configuration changed) drops them. */
        assert_int_equal(lk_jwks_cache_init(&d, f->path, NOW + 100), 0);
        assert_int_equal(lk_jwks_cache_bind(&d, "https://other.example/jwks"), 0);
        assert_null(d.keys);
        assert_true(lk_jwks_cache_stale(&d, NOW + 100));
        lk_jwks_cache_clear(&d);

        /* Past its lifetime the disk copy is not used. */
        assert_int_equal(lk_jwks_cache_init(&d, f->path, NOW + 3600), 0);
        assert_null(d.keys);
        lk_jwks_cache_clear(&d);
        lk_jwks_cache_clear(&c);
}

static void write_file(const char *path, const char *text)
{
        struct lk_error e = {0};

        assert_int_equal(lk_write_file_atomic(path, text, strlen(text), 0600, &e), 0);
}

static void test_corrupt_disk_copy_ignored(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *body = NULL;
        char doc[8192];
        json_t *s;
        struct {
                const char *what;
                long long fetched_at, expires_at;
        } ranges[] = {
                { "from the future", NOW + 3600, NOW + 7200 },
                { "too long a lifetime", NOW, NOW + 2 * LK_JWKS_MAX_AGE },
                { "expires before fetched", NOW, NOW - 10 },
        };
        static const char *garbage[] = {
                "", "not json at all", "{\"body\": 3, \"fetched_at\": 1, \"expires_at\": 2}",
                "{\"body\":\"{}\"}", "[1,2,3]", "{\"body\":\"x\",\"fetched_at\":\"1\",\"expires_at\":2}",
                "{\"body\":\"{\\\"keys\\\":[]}\",\"fetched_at\":1700000000,\"expires_at\":1700003600}",
                "{\"body\":\"{\\\"keys\\\":[]}\",\"fetched_at\":1700000000,\"expires_at\":1700003600,\"url\":5}",
        };

        for (size_t i = 0; i < ELEMENTSOF(garbage); i++) {
                struct lk_jwks_cache c;

                write_file(f->path, garbage[i]);
                assert_int_equal(lk_jwks_cache_init(&c, f->path, NOW), 0);
                assert_null(c.keys);
                assert_true(lk_jwks_cache_stale(&c, NOW));
                /* ...and a fetch then replaces it. */
                store(&c, f->jwks_a, 600, NOW);
                assert_non_null(c.keys);
                lk_jwks_cache_clear(&c);
        }

        s = json_string(f->jwks_a);
        body = json_dumps(s, JSON_ENCODE_ANY);
        json_decref(s);
        for (size_t i = 0; i < ELEMENTSOF(ranges); i++) {
                struct lk_jwks_cache c;

                snprintf(doc, sizeof(doc), DISK_COPY_FMT, body, ranges[i].fetched_at, ranges[i].expires_at);
                write_file(f->path, doc);
                assert_int_equal(lk_jwks_cache_init(&c, f->path, NOW), 0);
                if (c.keys)
                        fail_msg("a disk copy %s was used", ranges[i].what);
                lk_jwks_cache_clear(&c);
        }

        /* The same document with sane times is used: the cases above failed for their times. */
        snprintf(doc, sizeof(doc), DISK_COPY_FMT, body, (long long)NOW, (long long)NOW + 600);
        write_file(f->path, doc);
        {
                struct lk_jwks_cache c;

                assert_int_equal(lk_jwks_cache_init(&c, f->path, NOW), 0);
                assert_non_null(c.keys);
                lk_jwks_cache_clear(&c);
        }
}

/* Times whose difference overflows int64_t must not pass for a short lifetime. */
static void test_disk_copy_extreme_times(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *body = NULL;
        struct lk_cache_file file = {0};
        struct lk_error e = {0};
        struct lk_jwks_cache c;
        char doc[8192];
        json_t *s;

        s = json_string(f->jwks_a);
        body = json_dumps(s, JSON_ENCODE_ANY);
        json_decref(s);
        snprintf(doc, sizeof(doc), DISK_COPY_FMT, body, -9000000000000000000LL,
                 9000000000000000000LL);
        write_file(f->path, doc);
        assert_int_equal(lk_cache_file_load(f->path, NOW, &file, &e), -LK_ERR_IO);
        assert_int_equal(lk_jwks_cache_init(&c, f->path, NOW), 0);
        if (c.keys)
                fail_msg("a disk copy valid until %lld was used", (long long)c.expires_at);
        lk_jwks_cache_clear(&c);
}

/*
 * The disk copy decides which keys sign id_tokens: one that others may write
 * is not used (only the broker's own files are trusted).
 */
static void test_disk_copy_not_ours_ignored(void **state)
{
        struct fixture *f = *state;
        struct lk_cache_file file = {0};
        struct lk_error e = {0};
        struct lk_jwks_cache c;

        assert_int_equal(lk_jwks_cache_init(&c, f->path, NOW), 0);
        store(&c, f->jwks_a, 3600, NOW);
        lk_jwks_cache_clear(&c);

        /* Mode 0600 as written: used. */
        assert_int_equal(lk_jwks_cache_init(&c, f->path, NOW), 0);
        assert_non_null(c.keys);
        lk_jwks_cache_clear(&c);

        /* Open to writing by group or others: not used. */
        for (int i = 0; i < 2; i++) {
                assert_int_equal(chmod(f->path, i ? 0602 : 0620), 0);
                assert_int_equal(lk_cache_file_load(f->path, NOW, &file, &e), -LK_ERR_IO);
                assert_non_null(strstr(e.message, "writable"));
                lk_error_clear(&e);
                assert_int_equal(lk_jwks_cache_init(&c, f->path, NOW), 0);
                assert_null(c.keys);
                lk_jwks_cache_clear(&c);
        }

        /* Not a regular file: not used. */
        assert_int_equal(chmod(f->path, 0600), 0);
        assert_int_equal(lk_cache_file_load(f->dir, NOW, &file, &e), -LK_ERR_IO);
        assert_non_null(strstr(e.message, "not a regular file"));
        lk_error_clear(&e);

        /* A missing file is still "not found". */
        unlink(f->path);
        assert_int_equal(lk_cache_file_load(f->path, NOW, &file, &e), -LK_ERR_NOT_FOUND);
}

static void test_unreadable_disk_copy_ignored(void **state)
{
        struct fixture *f = *state;
        struct lk_jwks_cache c;
        char sub[256];

        /* A folder where the file should be: cannot be read, cannot be replaced. */
        snprintf(sub, sizeof(sub), "%s/sub", f->dir);
        assert_int_equal(mkdir(sub, 0700), 0);
        assert_int_equal(lk_jwks_cache_init(&c, sub, NOW), 0);
        assert_null(c.keys);
        /* Writing the copy fails too; the keys are still kept in memory. */
        store(&c, f->jwks_a, 600, NOW);
        assert_non_null(c.keys);
        lk_jwks_cache_clear(&c);
}

static void test_disk_write_failure_ignored(void **state)
{
        struct fixture *f = *state;
        struct lk_jwks_cache c;
        char path[256];

        snprintf(path, sizeof(path), "%s/missing/jwks.json", f->dir);
        assert_int_equal(lk_jwks_cache_init(&c, path, NOW), 0);
        store(&c, f->jwks_a, 600, NOW);
        assert_non_null(c.keys);
        assert_false(lk_jwks_cache_stale(&c, NOW));
        lk_jwks_cache_clear(&c);
}

static void test_memory_only(void **state)
{
        struct fixture *f = *state;
        struct lk_jwks_cache c;

        assert_int_equal(lk_jwks_cache_init(&c, NULL, NOW), 0);
        assert_null(c.path);
        store(&c, f->jwks_a, 600, NOW);
        assert_non_null(c.keys);
        assert_int_equal(access(f->path, F_OK), -1);
        lk_jwks_cache_clear(&c);
}

static void test_cache_file_not_utf8(void **state)
{
        struct fixture *f = *state;
        struct lk_cache_file file = {.body = (char *)"\xff\xfe", .len = 2, .expires_at = 1};
        struct lk_error e = {0};

        assert_true(lk_cache_file_save(f->path, &file, &e) < 0);
        assert_int_equal(access(f->path, F_OK), -1);
        lk_error_clear(&e);
        assert_int_equal(lk_cache_file_load(f->path, NOW, &file, &e), -LK_ERR_NOT_FOUND);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lifetime_bounds),
                cmocka_unit_test_setup_teardown(test_store_lifetime, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stale, setup, teardown),
                cmocka_unit_test(test_refetch_limit),
                cmocka_unit_test_setup_teardown(test_bad_document_keeps_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disk_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_disk_copy_ignored, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disk_copy_extreme_times, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disk_copy_not_ours_ignored, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unreadable_disk_copy_ignored, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disk_write_failure_ignored, setup, teardown),
                cmocka_unit_test_setup_teardown(test_memory_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cache_file_not_utf8, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
