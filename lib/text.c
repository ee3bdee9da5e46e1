/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <string.h>

#include "internal.h"

/*
 * Decodes one UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF) at s with avail bytes; returns its length and the code point, or
 * 0 when the bytes are not well-formed.
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
                n = 2, cp = s[0] & 0x1f, min = 0x80;
        } else if ((s[0] & 0xf0) == 0xe0) {
                n = 3, cp = s[0] & 0x0f, min = 0x800;
        } else if ((s[0] & 0xf8) == 0xf0) {
                n = 4, cp = s[0] & 0x07, min = 0x10000;
        } else
                return 0;
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

bool lkl_string_valid(const char *s, size_t max)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t len, i = 0;

        if (!s)
                return false;
        len = strnlen(s, max + 1);
        if (len == 0 || len > max)
                return false;
        while (i < len) {
                uint32_t cp;
                size_t n = utf8_decode(p + i, len - i, &cp);

                if (n == 0)
                        return false;
                i += n;
        }
        return true;
}

bool lkl_word_valid(const char *s, size_t max)
{
        size_t len;

        if (!s)
                return false;
        len = strnlen(s, max + 1);
        if (len == 0 || len > max)
                return false;
        for (size_t i = 0; i < len; i++)
                if (s[i] <= ' ' || s[i] >= 0x7f)
                        return false;
        return true;
}

static bool dropped(uint32_t cp)
{
        return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||      /* C0, DEL, C1 */
               (cp >= 0x202a && cp <= 0x202e) ||               /* bidi embeddings, overrides */
               (cp >= 0x2066 && cp <= 0x2069) ||               /* bidi isolates */
               cp == 0x200e || cp == 0x200f || cp == 0x061c;   /* bidi marks */
}

void lkl_text_for_person(const char *in, char *out, size_t size)
{
        static const char ellipsis[] = "...";
        const unsigned char *p = (const unsigned char *)(in ? in : "");
        size_t len = strlen((const char *)p), o = 0, i = 0;

        while (i < len) {
                char one[4];
                const char *add;
                uint32_t cp;
                size_t n = utf8_decode(p + i, len - i, &cp), an;

                if (n == 0) {
                        one[0] = '?';
                        add = one, an = 1, n = 1;
                } else if (cp == '\n' || cp == '\r' || cp == '\t') {
                        one[0] = ' ';
                        add = one, an = 1;
                } else if (dropped(cp)) {
                        i += n;
                        continue;
                } else
                        add = (const char *)p + i, an = n;

                /* No room for this character (and the NUL): cut, making room for "...". */
                if (o + an + 1 > size) {
                        while (o + sizeof(ellipsis) > size && o > 0) {
                                /* step back over a whole character */
                                do
                                        o--;
                                while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80);
                        }
                        memcpy(out + o, ellipsis, sizeof(ellipsis) - 1);
                        o += sizeof(ellipsis) - 1;
                        break;
                }
                memcpy(out + o, add, an);
                o += an;
                i += n;
        }
        out[o] = '\0';
}
