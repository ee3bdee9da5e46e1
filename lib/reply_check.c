/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "base/utf8.h"
#include "lib/internal.h"

bool lkl_string_valid(const char *s, size_t max)
{
        size_t len;

        if (!s)
                return false;
        len = strnlen(s, max + 1);
        return len > 0 && len <= max && lk_utf8_valid(s, len);
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
