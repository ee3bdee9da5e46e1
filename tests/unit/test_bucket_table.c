/* SPDX-License-Identifier: MIT */
/* base/bucket_table.c: token buckets by key (the budget's and the listener's rate). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>

#include "base/bucket_table.h"

/* A new key is full; each take is one unit; the refill is per_minute a minute, to the unit. */
static void test_take_and_refill(void **state)
{
        struct lk_bucket_table *t = lk_bucket_table_new(3, 60, 8); /* one a second */
        int64_t *level;
        int k = 7;

        assert_non_null(t);
        assert_int_equal(lk_bucket_table_level(t, &k, sizeof(k), 1000, false, &level), -ENOENT);
        assert_int_equal(lk_bucket_table_level(t, &k, sizeof(k), 1000, true, &level), 0);
        assert_int_equal(*level, 3 * LK_BUCKET_UNIT);
        *level -= 3 * LK_BUCKET_UNIT;
        /* 0.5 s gives half a token, kept to the unit; 2.5 s more give the rest, never more */
        assert_int_equal(lk_bucket_table_level(t, &k, sizeof(k), 1500, false, &level), 0);
        assert_int_equal(*level, LK_BUCKET_UNIT / 2);
        assert_int_equal(lk_bucket_table_level(t, &k, sizeof(k), 1501, false, &level), 0);
        assert_int_equal(*level, LK_BUCKET_UNIT / 2 + 1);
        assert_int_equal(lk_bucket_table_level(t, &k, sizeof(k), 60000, false, &level), 0);
        assert_int_equal(*level, lk_bucket_table_full(t));
        /* a clock that goes back adds nothing */
        *level = 0;
        assert_int_equal(lk_bucket_table_level(t, &k, sizeof(k), 10, false, &level), 0);
        assert_int_equal(*level, 0);
        lk_bucket_table_free(t);
}

/* At max_keys, the full buckets are forgotten for a new key; without any, -ENOSPC. */
static void test_max_keys(void **state)
{
        struct lk_bucket_table *t = lk_bucket_table_new(2, 60, 2); /* one a second */
        int64_t *level;
        int a = 1, b = 2, c = 3;

        assert_non_null(t);
        assert_int_equal(lk_bucket_table_level(t, &a, sizeof(a), 0, true, &level), 0);
        *level = 0;
        assert_int_equal(lk_bucket_table_level(t, &b, sizeof(b), 0, true, &level), 0);
        *level = LK_BUCKET_UNIT;
        assert_int_equal(lk_bucket_table_level(t, &c, sizeof(c), 0, true, &level), -ENOSPC);
        /* a second later b is full again, a is not: b's place goes to c */
        assert_int_equal(lk_bucket_table_level(t, &c, sizeof(c), 1000, true, &level), 0);
        assert_int_equal(*level, lk_bucket_table_full(t));
        assert_int_equal(lk_bucket_table_level(t, &b, sizeof(b), 1000, false, &level), -ENOENT);
        assert_int_equal(lk_bucket_table_level(t, &a, sizeof(a), 1000, false, &level), 0);
        assert_int_equal(*level, LK_BUCKET_UNIT);
        /* keys are compared with their length */
        assert_int_equal(lk_bucket_table_level(t, &a, 1, 1000, false, &level), -ENOENT);
        assert_int_equal(lk_bucket_table_level(t, &a, LK_BUCKET_KEY_MAX + 1, 0, true, &level),
                         -EINVAL);
        lk_bucket_table_free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_take_and_refill),
                cmocka_unit_test(test_max_keys),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
