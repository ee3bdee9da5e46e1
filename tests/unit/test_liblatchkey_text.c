/* SPDX-License-Identifier: MIT */
/* liblatchkey's checks on text crossing the bus (lib/reply_check.c, compiled in directly), and the
 * base's lk_text_escape() that its messages for a person go through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "base/text.h"
#include "lib/internal.h"

static void test_string_valid(void **state)
{
        char big[300];

        assert_true(lkl_string_valid("session-1", 256));
        assert_true(lkl_string_valid("Grüße \u20ac \U0001F600", 256));
        assert_false(lkl_string_valid(NULL, 256));
        assert_false(lkl_string_valid("", 256));
        assert_false(lkl_string_valid("\xff", 256));
        assert_false(lkl_string_valid("\xc0\xaf", 256));          /* overlong '/' */
        assert_false(lkl_string_valid("\xed\xa0\x80", 256));      /* a surrogate */
        assert_false(lkl_string_valid("\xf4\x90\x80\x80", 256));  /* above U+10FFFF */
        assert_false(lkl_string_valid("\xe2\x82", 256));          /* cut short */
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_false(lkl_string_valid(big, 256));
        big[256] = '\0';
        assert_true(lkl_string_valid(big, 256));
}

static void test_word_valid(void **state)
{
        assert_true(lkl_word_valid("eyJhbGciOi.x-y_z~+/=", 100));
        assert_false(lkl_word_valid("two words", 100));
        assert_false(lkl_word_valid("tab\t", 100));
        assert_false(lkl_word_valid("caf\xc3\xa9", 100));
        assert_false(lkl_word_valid("", 100));
        assert_false(lkl_word_valid("abcdef", 5));
        assert_true(lkl_word_valid("abcde", 5));
}

static void test_text_for_person(void **state)
{
        char out[32];

        lk_text_escape("No session 'x'", out, sizeof(out));
        assert_string_equal(out, "No session 'x'");
        lk_text_escape(NULL, out, sizeof(out));
        assert_string_equal(out, "");
        /* Line breaks, tabs, escapes and bidi overrides are shown escaped. */
        lk_text_escape("a\nb\tc\x1b[2Jd\u202eE\x7f", out, sizeof(out));
        assert_string_equal(out, "a\\nb\\tc\\x1b[2Jd\\u202eE\\x7f");
        /* C1 controls (U+0085, U+009B) and invalid bytes too. */
        lk_text_escape("x\xc2\x85y\xc2\x9bz\xff!", out, sizeof(out));
        assert_string_equal(out, "x\\u0085y\\u009bz\\xff!");
        /* Exactly fitting: no ellipsis. */
        lk_text_escape("0123456789012345678901234567890", out, sizeof(out));
        assert_string_equal(out, "0123456789012345678901234567890");
        /* One more: cut, with "...", within size. */
        lk_text_escape("01234567890123456789012345678901", out, sizeof(out));
        assert_string_equal(out, "0123456789012345678901234567...");
        /* Never half a character. */
        lk_text_escape("\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac",
                            out, 16);
        assert_string_equal(out, "\u20ac\u20ac\u20ac\u20ac...");
        lk_text_escape("abcdef", out, 4);
        assert_string_equal(out, "...");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_string_valid),
                cmocka_unit_test(test_word_valid),
                cmocka_unit_test(test_text_for_person),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
