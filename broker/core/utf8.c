/* SPDX-License-Identifier: MIT */
#include "utf8.h"

#include <string.h>

/*
 * The table of well-formed byte sequences from the Unicode Standard (ch. 3,
 * table 3-7): the first byte fixes the length and narrows the range of the
 * second byte, which is how overlongs, surrogates and values past U+10FFFF
 * are refused without decoding.
 */
bool lk_utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;

        if (!s)
                return len == 0;

        while (i < len) {
                unsigned char c = p[i];
                unsigned char lo = 0x80, hi = 0xbf;
                size_t n;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                } else if (c == 0xe0) {
                        n = 2;
                        lo = 0xa0; /* below is an overlong 3-byte form */
                } else if (c == 0xed) {
                        n = 2;
                        hi = 0x9f; /* above are the surrogates */
                } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
                        n = 2;
                } else if (c == 0xf0) {
                        n = 3;
                        lo = 0x90; /* below is an overlong 4-byte form */
                } else if (c >= 0xf1 && c <= 0xf3) {
                        n = 3;
                } else if (c == 0xf4) {
                        n = 3;
                        hi = 0x8f; /* above is past U+10FFFF */
                } else {
                        /* 0x80..0xc1 (continuation bytes, overlong 2-byte forms), 0xf5..0xff */
                        return false;
                }

                if (len - i - 1 < n)
                        return false;
                if (p[i + 1] < lo || p[i + 1] > hi)
                        return false;
                for (size_t k = 2; k <= n; k++)
                        if (p[i + k] < 0x80 || p[i + k] > 0xbf)
                                return false;
                i += n + 1;
        }
        return true;
}

void lk_text_sanitize(const char *in, char *out, size_t size)
{
        static const char ellipsis[] = "...";
        size_t o = 0;

        if (size == 0)
                return;
        if (!in) {
                out[0] = 0;
                return;
        }
        for (size_t i = 0; in[i]; i++) {
                if (o + 1 >= size) {
                        /* Cut: say so, in the last bytes of out. */
                        if (size > sizeof(ellipsis))
                                memcpy(out + size - sizeof(ellipsis), ellipsis,
                                       sizeof(ellipsis) - 1);
                        o = size - 1;
                        break;
                }
                unsigned char c = (unsigned char)in[i];
                out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        out[o] = 0;
}

const char *lk_text_printable(const char *s, char *buf, size_t size)
{
        size_t i = 0, j = 0;

        if (!s)
                return "(none)";
        for (; s[i] && j + 4 < size; i++)
                buf[j++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
        if (s[i]) {
                buf[j++] = '.';
                buf[j++] = '.';
                buf[j++] = '.';
        }
        buf[j] = 0;
        return buf;
}
