/* SPDX-License-Identifier: MIT */
#include "base/text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/utf8.h"

/*
 * Unicode's format characters (general category Cf, Unicode 15) and the line
 * and paragraph separators (Zl, Zp): invisible, yet they reorder text (bidi
 * controls, "Trojan Source"), hide it (zero-width, tags) or break a line.
 */
static const struct {
        uint32_t first, last;
} invisible[] = {
        { 0x00ad, 0x00ad },   { 0x0600, 0x0605 },   { 0x061c, 0x061c },   { 0x06dd, 0x06dd },
        { 0x070f, 0x070f },   { 0x0890, 0x0891 },   { 0x08e2, 0x08e2 },   { 0x180e, 0x180e },
        { 0x200b, 0x200f },   { 0x2028, 0x202e },   { 0x2060, 0x2064 },   { 0x2066, 0x206f },
        { 0xfeff, 0xfeff },   { 0xfff9, 0xfffb },   { 0x110bd, 0x110bd }, { 0x110cd, 0x110cd },
        { 0x13430, 0x1343f }, { 0x1bca0, 0x1bca3 }, { 0x1d173, 0x1d17a }, { 0xe0001, 0xe0001 },
        { 0xe0020, 0xe007f },
};

static bool shown_escaped(uint32_t cp)
{
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
                return true;
        for (size_t i = 0; i < sizeof(invisible) / sizeof(invisible[0]); i++)
                if (cp >= invisible[i].first && cp <= invisible[i].last)
                        return true;
        return false;
}

/* The escape for one character (or one bad byte, cp > 0x10ffff meaning byte cp & 0xff). */
static size_t escape_one(uint32_t cp, char buf[static 11])
{
        switch (cp) {
        case '\n':
                return (size_t)snprintf(buf, 11, "\\n");
        case '\r':
                return (size_t)snprintf(buf, 11, "\\r");
        case '\t':
                return (size_t)snprintf(buf, 11, "\\t");
        }
        if (cp < 0x80 || cp > 0x10ffff)
                return (size_t)snprintf(buf, 11, "\\x%02x", (unsigned)(cp & 0xff));
        if (cp <= 0xffff)
                return (size_t)snprintf(buf, 11, "\\u%04x", (unsigned)cp);
        return (size_t)snprintf(buf, 11, "\\U%08x", (unsigned)cp);
}

const char *lk_text_escape(const char *in, char *out, size_t size)
{
        static const char ellipsis[] = "...";
        size_t len, i = 0, o = 0, last_fit = 0;

        if (size == 0)
                return out;
        len = in ? strlen(in) : 0;
        while (i < len) {
                char esc[11];
                const char *add;
                uint32_t cp;
                size_t n = lk_utf8_decode(in + i, len - i, &cp), addlen;

                if (n == 0) {
                        addlen = escape_one(0x110000 | (unsigned char)in[i], esc);
                        add = esc;
                        n = 1;
                } else if (shown_escaped(cp)) {
                        addlen = escape_one(cp, esc);
                        add = esc;
                } else {
                        add = in + i;
                        addlen = n;
                }

                if (o + addlen > size - 1) {
                        /* Does not fit: cut at the last boundary that leaves room for "...". */
                        size_t dots = size - 1 - last_fit < 3 ? size - 1 - last_fit : 3;

                        memcpy(out + last_fit, ellipsis, dots);
                        out[last_fit + dots] = '\0';
                        return out;
                }
                memcpy(out + o, add, addlen);
                o += addlen;
                if (o + sizeof(ellipsis) <= size)
                        last_fit = o;
                i += n;
        }
        out[o] = '\0';
        return out;
}

const char *lk_text_utc_date(int64_t t, char *buf, size_t size)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
                snprintf(buf, size, "%lld", (long long)t);
        return buf;
}
