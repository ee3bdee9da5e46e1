/* SPDX-License-Identifier: MIT */
#include "pam_module/input_check.h"

#include <stdlib.h>
#include <string.h>

bool lkp_utf8_valid(const char *s, size_t len)
{
        return s && !memchr(s, 0, len) && lk_utf8_valid(s, len);
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
