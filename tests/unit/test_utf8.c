/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/text.h"
#include "base/utf8.h"

#define VALID(s) assert_true(lk_utf8_valid((s), sizeof(s) - 1))
#define INVALID(s) assert_false(lk_utf8_valid((s), sizeof(s) - 1))

static void test_ascii_and_empty(void **state)
{
        VALID("");
        VALID("plain ASCII, with punctuation ~!@#$%^&*()");
        assert_true(lk_utf8_valid(NULL, 0));
        assert_false(lk_utf8_valid(NULL, 1));
        /* U+0000 is well-formed; refusing it is the caller's business. */
        VALID("a\0b");
}

static void test_multibyte(void **state)
{
        VALID("\xc2\xa3");             /* U+00A3 */
        VALID("\xdf\xbf");             /* U+07FF */
        VALID("\xe0\xa0\x80");         /* U+0800, smallest 3-byte */
        VALID("\xe2\x82\xac");         /* U+20AC */
        VALID("\xed\x9f\xbf");         /* U+D7FF, just below the surrogates */
        VALID("\xee\x80\x80");         /* U+E000, just above them */
        VALID("\xef\xbf\xbf");         /* U+FFFF */
        VALID("\xf0\x90\x80\x80");     /* U+10000, smallest 4-byte */
        VALID("\xf4\x8f\xbf\xbf");     /* U+10FFFF, the last code point */
        VALID("na\xc3\xafve caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x91");
}

static void test_overlong(void **state)
{
        INVALID("\xc0\x80");         /* overlong NUL */
        INVALID("\xc0\xaf");         /* overlong '/' */
        INVALID("\xc1\xbf");
        INVALID("\xe0\x80\x80");
        INVALID("\xe0\x9f\xbf");     /* overlong U+07FF */
        INVALID("\xf0\x80\x80\x80");
        INVALID("\xf0\x8f\xbf\xbf"); /* overlong U+FFFF */
}

static void test_surrogates(void **state)
{
        INVALID("\xed\xa0\x80"); /* U+D800 */
        INVALID("\xed\xad\xbf");
        INVALID("\xed\xb0\x80"); /* U+DC00 */
        INVALID("\xed\xbf\xbf"); /* U+DFFF */
        INVALID("\xed\xa0\xbd\xed\xb2\xa9"); /* CESU-8 pair */
}

static void test_out_of_range(void **state)
{
        INVALID("\xf4\x90\x80\x80"); /* U+110000 */
        INVALID("\xf5\x80\x80\x80");
        INVALID("\xf7\xbf\xbf\xbf");
        INVALID("\xf8\x88\x80\x80\x80"); /* old 5-byte form */
        INVALID("\xfc\x84\x80\x80\x80\x80");
        INVALID("\xfe");
        INVALID("\xff");
}

static void test_truncated_and_stray(void **state)
{
        INVALID("\x80");             /* lone continuation */
        INVALID("a\xbf" "b");
        INVALID("\xc2");             /* cut at the end */
        INVALID("\xe2\x82");
        INVALID("\xf0\x9f\x94");
        INVALID("\xc2" "a");         /* continuation missing */
        INVALID("\xe2\x28\xa1");
        INVALID("\xf0\x9f\x94\x28");
        /* The length counts, not the NUL: a cut inside a valid string. */
        assert_false(lk_utf8_valid("\xe2\x82\xac", 2));
        assert_true(lk_utf8_valid("\xe2\x82\xac" "x", 3));
}

/* What was lk_text_sanitize() (the provider's error words): now lk_text_escape(). */
static void test_sanitize(void **state)
{
        char out[16];
        char tiny[1] = { 'x' };

        lk_text_escape("access_denied", out, sizeof(out));
        assert_string_equal(out, "access_denied");
        lk_text_escape("a\nb\x1b[31m\xc3\xa9", out, sizeof(out));
        assert_string_equal(out, "a\\nb\\x1b[31m\xc3\xa9");
        lk_text_escape("0123456789abcdefghij", out, sizeof(out));
        assert_string_equal(out, "0123456789ab...");
        assert_int_equal(strlen(out), sizeof(out) - 1);
        lk_text_escape("0123456789abcde", out, sizeof(out)); /* exactly fits */
        assert_string_equal(out, "0123456789abcde");
        lk_text_escape(NULL, out, sizeof(out));
        assert_string_equal(out, "");
        lk_text_escape("abc", tiny, sizeof(tiny));
        assert_int_equal(tiny[0], 0);
}

/* What was LK_TEXT_PRINTABLE() (a kid or an issuer quoted in a message): now LK_ESCAPED(). */
static void test_quoted(void **state)
{
        char big[300];
        const char *kid = big;

        assert_string_equal(LK_ESCAPED("kid-1"), "kid-1");
        assert_string_equal(LK_ESCAPED(NULL), "(none)");
        assert_string_equal(LK_ESCAPED("a\"b\nc"), "a\"b\\nc");
        memset(big, 'k', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(strlen(LK_ESCAPED(kid)), LK_TEXT_QUOTE_SIZE - 1);
        assert_string_equal(LK_ESCAPED(kid) + LK_TEXT_QUOTE_SIZE - 4, "...");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ascii_and_empty),
                cmocka_unit_test(test_multibyte),
                cmocka_unit_test(test_overlong),
                cmocka_unit_test(test_surrogates),
                cmocka_unit_test(test_out_of_range),
                cmocka_unit_test(test_truncated_and_stray),
                cmocka_unit_test(test_sanitize),
                cmocka_unit_test(test_quoted),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
