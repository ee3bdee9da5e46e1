/* SPDX-License-Identifier: MIT */
/* pam_latchkey's handling of untrusted text, and its QR drawing. */
#include <errno.h>
#include <qrencode.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/qr.h"
#include "base/util.h"
#include "client/broker_client.h" /* LK_CLIENT_MESSAGE_MAX: what a person is shown */
#include "pam_module/input_check.h"

#define FOR_PERSON(in, size)                                      \
        ({                                                        \
                static char _buf[size];                           \
                lk_text_escape(in, _buf, sizeof(_buf));           \
                _buf;                                             \
        })

static void test_utf8_valid(void **state)
{
        assert_true(lkp_utf8_valid("", 0));
        assert_true(lkp_utf8_valid("plain", 5));
        assert_true(lkp_utf8_valid("Gr\xc3\xbc\xc3\x9f" "e", 7));              /* Grüße */
        assert_true(lkp_utf8_valid("\xe2\x82\xac", 3));                        /* € */
        assert_true(lkp_utf8_valid("\xf0\x9f\x94\x91", 4));                    /* 🔑 */
        assert_true(lkp_utf8_valid("\xf4\x8f\xbf\xbf", 4));                    /* U+10FFFF */
        assert_false(lkp_utf8_valid("\xc0\xaf", 2));                           /* overlong '/' */
        assert_false(lkp_utf8_valid("\xe0\x80\xaf", 3));                       /* overlong */
        assert_false(lkp_utf8_valid("\xed\xa0\x80", 3));                       /* surrogate */
        assert_false(lkp_utf8_valid("\xf4\x90\x80\x80", 4));                   /* past U+10FFFF */
        assert_false(lkp_utf8_valid("\xe2\x82", 2));                           /* cut short */
        assert_false(lkp_utf8_valid("\x80", 1));                               /* lone continuation */
        assert_false(lkp_utf8_valid("\xff", 1));
        assert_false(lkp_utf8_valid("a\0b", 3));                               /* NUL inside */
        assert_false(lkp_utf8_valid(NULL, 0));
        /* len is what counts, not the terminator */
        assert_true(lkp_utf8_valid("ab\xff", 2));
}

/* The module's messages for a person go through the base's lk_text_escape() (base/text.c). */
static void test_text_for_person_escapes_controls(void **state)
{
        /* A terminal escape cannot recolour, clear or move anything: it is shown, not run */
        assert_string_equal(FOR_PERSON("bad\x1b[2J\x1b[31mcode", 64), "bad\\x1b[2J\\x1b[31mcode");
        assert_string_equal(FOR_PERSON("one\ntwo\r\tthree", 64), "one\\ntwo\\r\\tthree");
        assert_string_equal(FOR_PERSON("bell\a back\b del\x7f", 64),
                            "bell\\x07 back\\x08 del\\x7f");
        /* C1 controls: U+009B is CSI on some terminals */
        assert_string_equal(FOR_PERSON("a\xc2\x9b" "31mb", 64), "a\\u009b31mb");
        /* Bidirectional overrides (Trojan Source) and line separators are shown; other text stays */
        assert_string_equal(FOR_PERSON("x\xe2\x80\xaey\xe2\x81\xa6z\xe2\x80\xa8w", 64),
                            "x\\u202ey\\u2066z\\u2028w");
        assert_string_equal(FOR_PERSON("Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x94\x91", 64),
                            "Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x94\x91");
        /* Bytes that are not UTF-8 are shown one by one */
        assert_string_equal(FOR_PERSON("a\xff" "b\xc0\xaf" "c\xed\xa0\x80" "d", 64),
                            "a\\xffb\\xc0\\xafc\\xed\\xa0\\x80d");
        assert_string_equal(FOR_PERSON("cut\xe2\x82", 64), "cut\\xe2\\x82");
        assert_string_equal(FOR_PERSON(NULL, 64), "");
        assert_string_equal(FOR_PERSON("", 64), "");
}

static void test_text_for_person_cuts_on_characters(void **state)
{
        char big[2000];
        char out[16];

        /* fits exactly: no ellipsis */
        lk_text_escape("123456789012345", out, sizeof(out));
        assert_string_equal(out, "123456789012345");
        /* one more: cut, with room for "..." */
        lk_text_escape("1234567890123456", out, sizeof(out));
        assert_string_equal(out, "123456789012...");
        /* never half a character: each € is 3 bytes */
        lk_text_escape("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",
                            out, sizeof(out));
        assert_string_equal(out, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac...");
        assert_true(lkp_utf8_valid(out, strlen(out)));

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        char msg[LK_CLIENT_MESSAGE_MAX];
        lk_text_escape(big, msg, sizeof(msg));
        assert_int_equal(strlen(msg), LK_CLIENT_MESSAGE_MAX - 1);
        assert_string_equal(msg + LK_CLIENT_MESSAGE_MAX - 4, "...");
}

static void test_strip(void **state)
{
        char s[] = "  \t code-123 \r\n";
        char none[] = "abc";
        char blank[] = " \n\t ";

        assert_string_equal(lkp_strip(s), "code-123");
        /* the secret's old tail is wiped, not left behind the new end */
        for (size_t i = strlen("code-123"); i < sizeof(s); i++)
                assert_int_equal(s[i], 0);
        assert_string_equal(lkp_strip(none), "abc");
        assert_string_equal(lkp_strip(blank), "");
        assert_null(lkp_strip(NULL));
        lk_secret_free(NULL);
        lk_secret_free(strdup("a secret"));
}

/* Reads the drawing back into modules: true = dark. */
static void decode_drawing(const char *drawing, int side, unsigned char *dark)
{
        const char *p = drawing;

        for (int y = 0; y < side; y += 2) {
                for (int x = 0; x < side; x++) {
                        bool top, bottom;

                        if (strncmp(p, "\u2588", 3) == 0) {
                                top = bottom = false;
                                p += 3;
                        } else if (strncmp(p, "\u2580", 3) == 0) {
                                top = false;
                                bottom = true;
                                p += 3;
                        } else if (strncmp(p, "\u2584", 3) == 0) {
                                top = true;
                                bottom = false;
                                p += 3;
                        } else {
                                assert_int_equal(*p, ' ');
                                top = bottom = true;
                                p++;
                        }
                        dark[y * side + x] = top;
                        if (y + 1 < side)
                                dark[(y + 1) * side + x] = bottom;
                        else
                                assert_false(bottom); /* the half row below is light */
                }
                assert_int_equal(*p, y + 2 < side ? '\n' : 0);
                if (*p)
                        p++;
        }
}

static void test_qr_draws_the_symbol(void **state)
{
        const char *url = "https://idp.example.com/api/v1/oauth2/authorize?response_type=code"
                          "&client_id=latchkey&state=abcDEF123&code_challenge=xyz";
        _cleanup_free_ char *drawing = NULL;
        QRcode *q;
        int side;
        unsigned char *dark;

        assert_int_equal(lk_qr_render(url, &drawing), 0);
        q = QRcode_encodeString(url, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
        assert_non_null(q);
        side = q->width + 2 * LK_QR_QUIET_ZONE;
        dark = calloc((size_t)side * (size_t)side, 1);
        assert_non_null(dark);
        decode_drawing(drawing, side, dark);

        for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++) {
                        int mx = x - LK_QR_QUIET_ZONE, my = y - LK_QR_QUIET_ZONE;
                        bool want = mx >= 0 && my >= 0 && mx < q->width && my < q->width &&
                                    (q->data[my * q->width + mx] & 1);

                        assert_int_equal(dark[y * side + x], want);
                }
        /* the finder pattern's corner is dark; the quiet zone around it is light */
        assert_true(dark[LK_QR_QUIET_ZONE * side + LK_QR_QUIET_ZONE]);
        assert_false(dark[0]);
        free(dark);
        QRcode_free(q);
}

static void test_qr_refuses_what_it_cannot_draw(void **state)
{
        char *drawing = NULL;
        char *huge = malloc(3001);

        assert_non_null(huge);
        memset(huge, 'a', 3000);
        huge[3000] = 0;
        assert_int_equal(lk_qr_render(huge, &drawing), -E2BIG);
        assert_null(drawing);
        assert_int_equal(lk_qr_render("", &drawing), -EINVAL);
        assert_int_equal(lk_qr_render(NULL, &drawing), -EINVAL);
        assert_null(drawing);
        free(huge);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_utf8_valid),
                cmocka_unit_test(test_text_for_person_escapes_controls),
                cmocka_unit_test(test_text_for_person_cuts_on_characters),
                cmocka_unit_test(test_strip),
                cmocka_unit_test(test_qr_draws_the_symbol),
                cmocka_unit_test(test_qr_refuses_what_it_cannot_draw),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
