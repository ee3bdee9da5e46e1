/* SPDX-License-Identifier: MIT */
#include "base/utf8.h"

/*
 * The table of well-formed byte sequences from the Unicode Standard (ch. 3,
 * table 3-7): the first byte fixes the length and narrows the range of the
 * second byte, which is how overlongs, surrogates and values past U+10FFFF
 * are refused.
 */
size_t lk_utf8_decode(const char *s, size_t avail, uint32_t *ret_cp)
{
        const unsigned char *p = (const unsigned char *)s;
        unsigned char c, lo = 0x80, hi = 0xbf;
        uint32_t cp;
        size_t n;

        if (avail == 0)
                return 0;
        c = p[0];
        if (c < 0x80) {
                *ret_cp = c;
                return 1;
        }
        if (c >= 0xc2 && c <= 0xdf) {
                n = 1, cp = c & 0x1f;
        } else if (c == 0xe0) {
                n = 2, cp = c & 0x0f;
                lo = 0xa0; /* below is an overlong 3-byte form */
        } else if (c == 0xed) {
                n = 2, cp = c & 0x0f;
                hi = 0x9f; /* above are the surrogates */
        } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
                n = 2, cp = c & 0x0f;
        } else if (c == 0xf0) {
                n = 3, cp = c & 0x07;
                lo = 0x90; /* below is an overlong 4-byte form */
        } else if (c >= 0xf1 && c <= 0xf3) {
                n = 3, cp = c & 0x07;
        } else if (c == 0xf4) {
                n = 3, cp = c & 0x07;
                hi = 0x8f; /* above is past U+10FFFF */
        } else {
                /* 0x80..0xc1 (continuation bytes, overlong 2-byte forms), 0xf5..0xff */
                return 0;
        }

        if (avail - 1 < n)
                return 0;
        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t k = 1; k <= n; k++) {
                if (k > 1 && (p[k] < 0x80 || p[k] > 0xbf))
                        return 0;
                cp = (cp << 6) | (p[k] & 0x3f);
        }
        *ret_cp = cp;
        return n + 1;
}

bool lk_utf8_valid(const char *s, size_t len)
{
        size_t i = 0;

        if (!s)
                return len == 0;
        while (i < len) {
                uint32_t cp;
                size_t n = lk_utf8_decode(s + i, len - i, &cp);

                if (n == 0)
                        return false;
                i += n;
        }
        return true;
}
