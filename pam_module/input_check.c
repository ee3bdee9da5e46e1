/* SPDX-License-Identifier: MIT */
#include "pam_module/input_check.h"

#include <stdlib.h>
#include <string.h>

bool lkp_utf8_valid(const char *s, size_t len)
{
        return s && !memchr(s, 0, len) && lk_utf8_valid(s, len);
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
