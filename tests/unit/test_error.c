/* SPDX-License-Identifier: MIT */
/*
 * oidc/error.c: LK_ERR_* codes apart from errno, lk_error_set() refusing anything else, and
 * lk_error_from_errno(), the one boundary from errno, as the file helpers use it.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "oidc/error.h"
#include "oidc/fileio.h"
#include "oidc/secret.h"
#include "tests/unit/death.h"

/* Linux's MAX_ERRNO: a -errno from any system call or helper stays below our codes. */
static_assert(LK_ERR_FIRST > 4095, "LK_ERR_* overlap errno");

static void test_codes_apart_from_errno(void **state)
{
        for (int c = 0; c <= 4095; c++) {
                assert_false(lk_err_valid(c));
                assert_false(lk_err_valid(-c));
        }
        for (int c = LK_ERR_FIRST; c < _LK_ERR_MAX; c++) {
                char what[64];

                assert_true(lk_err_valid(c));
                assert_true(lk_err_valid(-c));
                /* The C library knows no errno of that number (it did for 1..16: EPERM...). */
                snprintf(what, sizeof(what), "Unknown error %d", c);
                assert_string_equal(strerror(c), what);
                /* Every code has its own name. */
                assert_string_not_equal(lk_err_name(c), "Failed");
                assert_string_equal(lk_err_name(-c), lk_err_name(c));
                for (int d = LK_ERR_FIRST; d < c; d++)
                        assert_string_not_equal(lk_err_name(d), lk_err_name(c));
        }
        assert_false(lk_err_valid(_LK_ERR_MAX));
        assert_string_equal(lk_err_name(-LK_ERR_INVALID_ID_TOKEN), "InvalidIdToken");
}

static void test_set_takes_lk_codes(void **state)
{
        struct lk_error e = {0};

        assert_int_equal(lk_error_set(&e, -LK_ERR_CONFIG, "bad %s", "key"), -LK_ERR_CONFIG);
        assert_int_equal(e.code, LK_ERR_CONFIG);
        assert_string_equal(e.message, "bad key");
        assert_int_equal(lk_error_set(NULL, LK_ERR_IO, "x"), -LK_ERR_IO);
        assert_int_equal(lk_error_set_detail(&e, LK_ERR_NOT_FOUND, 3, "later"), -LK_ERR_NOT_FOUND);
        /* The first failure stays. */
        assert_int_equal(e.code, LK_ERR_CONFIG);
        assert_string_equal(e.message, "bad key");
}

/* An errno (either sign), 0 or a number past the enum is a programming error, even with e NULL. */
static void test_set_refuses_the_rest(void **state)
{
        struct lk_error e = {0};

        assert_aborts(lk_error_set(&e, -ENOMEM, "Out of memory"));
        assert_aborts(lk_error_set(&e, EPERM, "x"));
        assert_aborts(lk_error_set(NULL, -EIO, "x"));
        assert_aborts(lk_error_set(&e, 0, "x"));
        assert_aborts(lk_error_set(&e, _LK_ERR_MAX, "x"));
        assert_aborts(lk_error_set(&e, LK_ERR_FIRST - 1, "x"));
        assert_aborts(lk_error_set_detail(&e, -ENOENT, 1, "x"));
        assert_aborts(lk_err_name(-ENOMEM));
        assert_aborts(lk_err_name(0));
        assert_aborts(lk_err_name(_LK_ERR_MAX));
        /* Nor does an LK_ERR_* pass for an errno. */
        assert_aborts(lk_error_from_errno(&e, -LK_ERR_IO, "x"));
        assert_aborts(lk_error_from_errno(&e, 0, "x"));
        assert_int_equal(e.code, 0);
}

static void test_from_errno(void **state)
{
        struct lk_error e = {0};
        char want[LK_ERROR_MESSAGE_MAX];

        assert_int_equal(lk_error_from_errno(&e, -EACCES, "Cannot open %s", "/etc/x"), -LK_ERR_IO);
        assert_int_equal(e.code, LK_ERR_IO);
        snprintf(want, sizeof(want), "Cannot open /etc/x: %s", strerror(EACCES));
        assert_string_equal(e.message, want);

        /* errno itself, as read right after the call, works alike. */
        lk_error_clear(&e);
        assert_int_equal(lk_error_from_errno(&e, ENOENT, "Cannot stat %s", "/y"), -LK_ERR_IO);
        snprintf(want, sizeof(want), "Cannot stat /y: %s", strerror(ENOENT));
        assert_string_equal(e.message, want);

        lk_error_clear(&e);
        assert_int_equal(lk_error_from_errno(&e, -ENOMEM, "Cannot read %s", "z"), -LK_ERR_NOMEM);
        assert_int_equal(e.code, LK_ERR_NOMEM);
        assert_int_equal(lk_error_from_errno(NULL, EIO, "x"), -LK_ERR_IO);
}

/* The file helpers translate where the call failed: LK codes out, the errno's text kept. */
static void test_fileio_translates(void **state)
{
        char dir[] = "/tmp/lk-test-error-XXXXXX", path[64], want[LK_ERROR_MESSAGE_MAX];
        struct lk_error e = {0};
        char *buf = NULL;
        int fd;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/missing/file", dir);

        assert_int_equal(lk_read_file(path, 16, &buf, NULL, &e), -LK_ERR_IO);
        snprintf(want, sizeof(want), "Cannot open %s: %s", path, strerror(ENOENT));
        assert_string_equal(e.message, want);

        lk_error_clear(&e);
        assert_int_equal(lk_write_file_atomic(path, "x", 1, 0600, &e), -LK_ERR_IO);
        snprintf(want, sizeof(want), "Cannot create a temporary file for %s: %s", path,
                 strerror(ENOENT));
        assert_string_equal(e.message, want);

        /* A read that fails on the fd itself. */
        lk_error_clear(&e);
        fd = open(dir, O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(lk_read_fd(fd, "the temp file", 16, &buf, NULL, &e), -LK_ERR_IO);
        snprintf(want, sizeof(want), "Cannot read the temp file: %s", strerror(EBADF));
        assert_string_equal(e.message, want);
        close(fd);

        /* "Does not exist" stays its own code for the private reads. */
        lk_error_clear(&e);
        snprintf(path, sizeof(path), "%s/none", dir);
        assert_int_equal(lk_read_private_file(path, 0, 16, &buf, NULL, NULL, &e),
                         -LK_ERR_NOT_FOUND);
        assert_null(buf);
        assert_int_equal(rmdir(dir), 0);
}

/* The size of a random value is the caller's constant, not input: a wrong one aborts. */
static void test_random_size_precondition(void **state)
{
        char *s = NULL;

        assert_int_equal(lk_random_b64url(64, &s), 0);
        assert_int_equal(strlen(s), 86);
        free(s);
        assert_aborts(lk_random_b64url(0, &s));
        assert_aborts(lk_random_b64url(65, &s));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_codes_apart_from_errno),
            cmocka_unit_test(test_set_takes_lk_codes),
            cmocka_unit_test(test_set_refuses_the_rest),
            cmocka_unit_test(test_from_errno),
            cmocka_unit_test(test_fileio_translates),
            cmocka_unit_test(test_random_size_precondition),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
