/* SPDX-License-Identifier: MIT */
#include "text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Decodes one well-formed UTF-8 sequence at s (at most avail bytes) into
 * *ret_cp and returns its length, or 0 when the bytes there are not UTF-8.
 * Overlongs, surrogates and values past U+10FFFF are refused.
 */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *ret_cp)
{
        uint32_t cp, min;
        size_t n;

        if (avail == 0)
                return 0;
        if (s[0] < 0x80) {
                *ret_cp = s[0];
                return 1;
        }
        if ((s[0] & 0xe0) == 0xc0) {
                n = 2;
                cp = s[0] & 0x1f;
                min = 0x80;
        } else if ((s[0] & 0xf0) == 0xe0) {
                n = 3;
                cp = s[0] & 0x0f;
                min = 0x800;
        } else if ((s[0] & 0xf8) == 0xf0) {
                n = 4;
                cp = s[0] & 0x07;
                min = 0x10000;
        } else {
                return 0;
        }
        if (avail < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return n;
}

bool lkp_utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;

        if (!s)
                return false;
        while (i < len) {
                uint32_t cp;
                size_t n = utf8_decode(p + i, len - i, &cp);

                if (n == 0 || cp == 0)
                        return false;
                i += n;
        }
        return true;
}

bool lkp_word_valid(const char *s, size_t max)
{
        size_t i;

        if (!s || !*s)
                return false;
        for (i = 0; s[i]; i++) {
                if (i >= max)
                        return false;
                if (s[i] <= ' ' || s[i] >= 0x7f)
                        return false;
        }
        return true;
}

/* Characters that reorder or hide the text around them (Trojan Source), or break lines. */
static bool is_invisible_control(uint32_t cp)
{
        return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
               (cp >= 0x2066 && cp <= 0x2069);
}

void lkp_text_for_person(const char *in, char *out, size_t size)
{
        static const char ellipsis[] = "...";
        const unsigned char *p = (const unsigned char *)in;
        size_t i = 0, o = 0, last_fit = 0;

        /* Callers pass fixed buffers of LKP_MESSAGE_MAX or so; a tiny one is a bug. */
        if (size < sizeof(ellipsis)) {
                if (size > 0)
                        out[0] = 0;
                return;
        }
        if (!in) {
                out[0] = 0;
                return;
        }

        while (p[i]) {
                char one[4];
                const char *add;
                size_t avail = strnlen(in + i, 4), n, addlen;
                uint32_t cp;

                n = utf8_decode(p + i, avail, &cp);
                if (n == 0) {
                        one[0] = '?';
                        add = one;
                        addlen = 1;
                        n = 1;
                } else if (cp == '\t' || cp == '\n' || cp == '\r') {
                        one[0] = ' ';
                        add = one;
                        addlen = 1;
                } else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
                           is_invisible_control(cp)) {
                        i += n;
                        continue;
                } else {
                        add = in + i;
                        addlen = n;
                }

                if (o + addlen > size - 1) {
                        /* Does not fit: cut at the last boundary that leaves room for "...". */
                        memcpy(out + last_fit, ellipsis, sizeof(ellipsis));
                        return;
                }
                memcpy(out + o, add, addlen);
                o += addlen;
                if (o + sizeof(ellipsis) <= size)
                        last_fit = o;
                i += n;
        }
        out[o] = 0;
}

char *lkp_strip(char *s)
{
        size_t start = 0, end, len;

        if (!s)
                return s;
        end = len = strlen(s);
        while (start < end && strchr(" \t\r\n", s[start]))
                start++;
        while (end > start && strchr(" \t\r\n", s[end - 1]))
                end--;
        memmove(s, s + start, end - start);
        /* The string may be a secret: leave no copy of its tail behind the new end. */
        explicit_bzero(s + (end - start), len - (end - start));
        return s;
}

void lkp_secret_free(char *s)
{
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}
