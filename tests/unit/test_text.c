/* SPDX-License-Identifier: MIT */
/* The base's text for a log line or a person (base/text.c): each class of character. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/text.h"
#include "base/utf8.h"

#define ESC(in) lk_text_escape((in), (char[256]){0}, 256)

static void test_kept(void **state)
{
        assert_string_equal(ESC("access_denied"), "access_denied");
        assert_string_equal(ESC("it's \"quoted\" 100% \\ fine"), "it's \"quoted\" 100% \\ fine");
        /* Well-formed UTF-8 stays, in every length */
        assert_string_equal(ESC("Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x94\x91 \xd7\x90"),
                            "Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x94\x91 \xd7\x90");
        assert_string_equal(ESC("\xc2\xa0\xc2\xa9"), "\xc2\xa0\xc2\xa9"); /* U+00A0, U+00A9 */
        assert_string_equal(ESC(""), "");
        assert_string_equal(ESC(NULL), "");
}

static void test_c0_and_del(void **state)
{
        /* A newline cannot start a forged log line; the terminal cannot be driven */
        assert_string_equal(ESC("sub\nLogin x: root signed in"), "sub\\nLogin x: root signed in");
        assert_string_equal(ESC("a\rb\tc"), "a\\rb\\tc");
        assert_string_equal(ESC("\x1b[2J\x1b[31mred"), "\\x1b[2J\\x1b[31mred");
        assert_string_equal(ESC("bell\a back\b del\x7f \x01\x1f"),
                            "bell\\x07 back\\x08 del\\x7f \\x01\\x1f");
}

static void test_c1(void **state)
{
        /* U+0085 (next line), U+009B (CSI on some terminals) */
        assert_string_equal(ESC("a\xc2\x85" "b\xc2\x9b" "31mc\xc2\x80\xc2\x9f"),
                            "a\\u0085b\\u009b31mc\\u0080\\u009f");
}

static void test_bidi_and_format(void **state)
{
        /* The embeddings and overrides, isolates, marks (Trojan Source) */
        assert_string_equal(ESC("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad\xe2\x80\xae"),
                            "\\u202a\\u202b\\u202c\\u202d\\u202e");
        assert_string_equal(ESC("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9"),
                            "\\u2066\\u2067\\u2068\\u2069");
        assert_string_equal(ESC("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c"), "\\u200e\\u200f\\u061c");
        assert_string_equal(ESC("root\xe2\x80\xae" "nimda"), "root\\u202enimda");
        /* Line and paragraph separators; zero-width and other format characters; tags */
        assert_string_equal(ESC("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c"), "a\\u2028b\\u2029c");
        assert_string_equal(ESC("\xe2\x80\x8b\xe2\x81\xa0\xef\xbb\xbf\xc2\xad"),
                            "\\u200b\\u2060\\ufeff\\u00ad");
        assert_string_equal(ESC("\xf3\xa0\x80\x81\xf3\xa0\x81\xa1"), "\\U000e0001\\U000e0061");
        /* Their neighbours are ordinary text */
        assert_string_equal(ESC("\xe2\x80\x90\xe2\x80\xaf\xe2\x81\xb0"),
                            "\xe2\x80\x90\xe2\x80\xaf\xe2\x81\xb0");
}

static void test_invalid_utf8(void **state)
{
        /* Each byte that is not part of a well-formed sequence, one by one */
        assert_string_equal(ESC("a\xff" "b\xc0\xaf" "c\xed\xa0\x80" "d"),
                            "a\\xffb\\xc0\\xafc\\xed\\xa0\\x80d");
        assert_string_equal(ESC("cut\xe2\x82"), "cut\\xe2\\x82");
        assert_string_equal(ESC("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
        assert_string_equal(ESC("\x80\xe2\x82\xac"), "\\x80\xe2\x82\xac");
}

static void test_twice_is_once(void **state)
{
        const char *nasty = "a\nb\x1b" "c\xe2\x80\xae" "d\xff\\x41";
        char once[256], twice[256];

        lk_text_escape(nasty, once, sizeof(once));
        lk_text_escape(once, twice, sizeof(twice));
        assert_string_equal(once, "a\\nb\\x1bc\\u202ed\\xff\\x41");
        assert_string_equal(twice, once);
}

static void test_cut(void **state)
{
        char out[16], tiny[1], three[3];
        char big[2000], all[LK_TEXT_ESCAPED_SIZE(sizeof(big))];

        /* fits exactly: no ellipsis */
        assert_string_equal(lk_text_escape("123456789012345", out, sizeof(out)), "123456789012345");
        /* one more: cut, with room for "..." */
        assert_string_equal(lk_text_escape("1234567890123456", out, sizeof(out)),
                            "123456789012...");
        /* never half a character, never half an escape */
        lk_text_escape("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",
                       out, sizeof(out));
        assert_string_equal(out, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac...");
        assert_true(lk_utf8_valid(out, strlen(out)));
        assert_string_equal(lk_text_escape("ab\n\n\n\n\n\n\n", out, sizeof(out)), "ab\\n\\n\\n\\n\\n...");
        assert_string_equal(lk_text_escape("abcdefghij\xe2\x80\xae", out, sizeof(out)),
                            "abcdefghij...");
        /* too small for "...": what fits of it */
        assert_string_equal(lk_text_escape("abcdef", out, 4), "...");
        assert_string_equal(lk_text_escape("abcdef", three, sizeof(three)), "..");
        assert_string_equal(lk_text_escape("abc", tiny, sizeof(tiny)), "");
        /* the size that never cuts: every byte at its worst */
        memset(big, '\xff', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        lk_text_escape(big, all, sizeof(all));
        assert_int_equal(strlen(all), 4 * (sizeof(big) - 1));
        assert_string_equal(all + strlen(all) - 4, "\\xff");
}

static void test_decode(void **state)
{
        uint32_t cp = 0;

        assert_int_equal(lk_utf8_decode("A", 1, &cp), 1);
        assert_int_equal(cp, 'A');
        assert_int_equal(lk_utf8_decode("\xc3\xa9", 2, &cp), 2);
        assert_int_equal(cp, 0xe9);
        assert_int_equal(lk_utf8_decode("\xe2\x80\xae", 3, &cp), 3);
        assert_int_equal(cp, 0x202e);
        assert_int_equal(lk_utf8_decode("\xf4\x8f\xbf\xbf", 4, &cp), 4);
        assert_int_equal(cp, 0x10ffff);
        assert_int_equal(lk_utf8_decode("\xe2\x80\xae", 2, &cp), 0); /* cut short */
        assert_int_equal(lk_utf8_decode("\xc0\xaf", 2, &cp), 0);     /* overlong */
        assert_int_equal(lk_utf8_decode("\xed\xa0\x80", 3, &cp), 0); /* surrogate */
        assert_int_equal(lk_utf8_decode("\xe2\x28\xa1", 3, &cp), 0); /* bad continuation */
        assert_int_equal(lk_utf8_decode("", 0, &cp), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kept),
                cmocka_unit_test(test_c0_and_del),
                cmocka_unit_test(test_c1),
                cmocka_unit_test(test_bidi_and_format),
                cmocka_unit_test(test_invalid_utf8),
                cmocka_unit_test(test_twice_is_once),
                cmocka_unit_test(test_cut),
                cmocka_unit_test(test_decode),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
